#!/usr/bin/env python3
"""KMS peer for envcrypt's interoperability tests: the AWS Encryption SDK for Python with the
MPL's AWS KMS keyrings, talking to a KMS endpoint (moto's server in the tests).

Usage: esdk_kms_peer.py JOB.json RESULTS.json

JOB.json:
    {"endpoint": "http://127.0.0.1:PORT", "region": "us-east-1", "cases": [CASE, ...]}
CASE:
    {"id": "unique string",
     "op": "encrypt" | "decrypt",
     "keyring": {"type": "strict", "key": "key ARN (or alias, encrypt only)"}
              | {"type": "discovery", "partition": "aws", "accounts": ["123456789012", ...]}
              | {"type": "discovery"},                    # no filter
     "input": "path", "output": "path",
     # encrypt only:
     "suite": "0478" | "0578", "frame_length": int (multiple of 128), "context": {str: str}}

RESULTS.json:
    {"esdk_version": str,
     "results": [{"id": str, "ok": true, "suite": "0578", "context": {str: str},
                  "edks": [{"provider_id": str, "provider_info": str}]}
                 | {"id": str, "ok": false, "error_type": str, "error": str}]}

Credentials are dummies (moto accepts any); the boto3 client gets the endpoint explicitly.
SDK errors of one case go into its result; anything else exits non-zero without results.
"""

import json
import sys
import traceback

INSTALL_HINT = (
    "install it with: python3 -m venv target/esdk-venv && "
    "target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5' 'moto[server]>=5,<6'"
)


def die(code, message):
    sys.stderr.write("esdk_kms_peer: %s\n" % message)
    sys.exit(code)


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def main(argv):
    if len(argv) != 3:
        die(2, "usage: esdk_kms_peer.py JOB.json RESULTS.json")
    try:
        with open(argv[1], "rb") as f:
            job = json.loads(f.read().decode("utf-8"))
        endpoint, region, cases = job["endpoint"], job["region"], job["cases"]
    except (OSError, ValueError, KeyError) as e:
        die(4, "bad job file %s: %r" % (argv[1], e))
    try:
        import boto3
        import aws_encryption_sdk
        from aws_encryption_sdk import CommitmentPolicy
        from aws_encryption_sdk.identifiers import Algorithm
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import (
            CreateAwsKmsDiscoveryKeyringInput,
            CreateAwsKmsKeyringInput,
            DiscoveryFilter,
        )
    except ImportError as e:
        die(3, "cannot import the Python ESDK, MPL or boto3 (%s) into %s; %s" % (e, sys.executable, INSTALL_HINT))

    kms = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    algorithms = {
        "0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        "0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    }

    def keyring(spec):
        if spec["type"] == "strict":
            return mpl.create_aws_kms_keyring(
                input=CreateAwsKmsKeyringInput(kms_key_id=spec["key"], kms_client=kms)
            )
        if spec["type"] == "discovery":
            flt = None
            if "accounts" in spec:
                flt = DiscoveryFilter(account_ids=spec["accounts"], partition=spec.get("partition", "aws"))
            return mpl.create_aws_kms_discovery_keyring(
                input=CreateAwsKmsDiscoveryKeyringInput(kms_client=kms, discovery_filter=flt)
            )
        raise ValueError("unknown keyring type %r" % spec["type"])

    results = []
    for case in cases:
        try:
            kr = keyring(case["keyring"])
            with open(case["input"], "rb") as f:
                data = f.read()
        except (OSError, KeyError, ValueError) as e:
            die(4, "case %r: %r" % (case.get("id"), e))
        try:
            if case["op"] == "encrypt":
                out, header = client.encrypt(
                    source=data,
                    keyring=kr,
                    algorithm=algorithms[case["suite"]],
                    frame_length=case.get("frame_length", 4096),
                    encryption_context=case.get("context", {}),
                )
            else:
                out, header = client.decrypt(source=data, keyring=kr)
        except Exception as e:  # the SDK's errors are results, not crashes
            results.append(
                {
                    "id": case["id"],
                    "ok": False,
                    "error_type": type(e).__name__,
                    "error": "".join(traceback.format_exception_only(type(e), e)).strip(),
                }
            )
            continue
        with open(case["output"], "wb") as f:
            f.write(out)
        results.append(
            {
                "id": case["id"],
                "ok": True,
                "suite": "%04x" % header.algorithm.algorithm_id,
                "context": dict(header.encryption_context),
                "edks": [
                    {
                        "provider_id": text(k.key_provider.provider_id),
                        "provider_info": text(k.key_provider.key_info),
                    }
                    for k in header.encrypted_data_keys
                ],
            }
        )
    with open(argv[2], "w", encoding="utf-8") as f:
        json.dump({"esdk_version": aws_encryption_sdk.__version__, "results": results}, f)


if __name__ == "__main__":
    main(sys.argv)
