#!/usr/bin/env python3
"""S3 peer for envcrypt's S3 tests (tests/s3.rs): the real AWS Encryption SDK for Python
4.x (with the MPL, raw AES keyring) reading and writing objects through boto3 on an S3
endpoint (moto's server).

Usage: esdk_s3_peer.py JOB.json RESULTS.json

JOB.json:
    {"endpoint": "http://127.0.0.1:PORT",
     "cases": [{"id": str,
                "op": "decrypt" | "encrypt",
                "key": {"namespace": str, "name": str, "hex": 32, 48 or 64 hex digits},
                "bucket": str, "object": str,
                # decrypt: GetObject, decrypt, write the plaintext to "output"
                "output": path,
                # encrypt: read "input", encrypt, upload (one PutObject, or boto3's
                # multipart transfer in 5 MiB parts when "multipart" is true)
                "input": path, "suite": "0478" | "0578",
                "frame_length": int (multiple of 128), "context": {str: str},
                "multipart": bool}]}
RESULTS.json:
    {"esdk_version": str, "boto3_version": str,
     "results": [{"id": str, "ok": true, "context": {str: str}, "bytes": int}
                 | {"id": str, "ok": false, "error_type": str, "error": str}]}

An SDK or S3 error on one case is reported in its result (the test decides); anything else
(missing package, bad job) prints one line to stderr and exits non-zero without writing
RESULTS.json (3: a package is missing).
"""

import io
import json
import os
import sys
import traceback

HINT = (
    "install it with: python3 -m venv target/esdk-venv && "
    "target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5' 'moto[server]>=5,<6' "
    "(needs Python >= 3.11; boto3 comes with moto), then set "
    "ENVCRYPT_PYTHON=target/esdk-venv/bin/python"
)


def die(code, message):
    sys.stderr.write("esdk_s3_peer: %s\n" % message)
    sys.exit(code)


def main(argv):
    if len(argv) != 3:
        die(2, "usage: esdk_s3_peer.py JOB.json RESULTS.json")
    with open(argv[1], "rb") as f:
        job = json.loads(f.read().decode("utf-8"))
    cases = job.get("cases")
    if not isinstance(cases, list) or not isinstance(job.get("endpoint"), str):
        die(4, 'the job must be an object with an "endpoint" and a "cases" list')
    try:
        import aws_encryption_sdk
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
        from aws_encryption_sdk import CommitmentPolicy
        from aws_encryption_sdk.identifiers import Algorithm
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import (
            AesWrappingAlg,
            CreateRawAesKeyringInput,
        )
    except ImportError as e:
        die(3, "cannot import the AWS Encryption SDK with MPL or boto3 (%s) into %s; %s" % (e, sys.executable, HINT))

    algorithms = {
        "0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        "0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    }
    wrapping = {
        16: AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16,
        24: AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16,
        32: AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
    }
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    s3 = boto3.client(
        "s3",
        endpoint_url=job["endpoint"],
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    multipart = TransferConfig(
        multipart_threshold=5 << 20, multipart_chunksize=5 << 20, use_threads=False
    )

    def keyring(key):
        raw = bytes.fromhex(key["hex"])
        if len(raw) not in wrapping:
            die(4, "key must be 16, 24 or 32 bytes, got %d" % len(raw))
        return mpl.create_raw_aes_keyring(
            input=CreateRawAesKeyringInput(
                key_namespace=key["namespace"],
                key_name=key["name"],
                wrapping_key=raw,
                wrapping_alg=wrapping[len(raw)],
            )
        )

    results = []
    for case in cases:
        try:
            if case["op"] == "decrypt":
                body = s3.get_object(Bucket=case["bucket"], Key=case["object"])["Body"].read()
                output, header = client.decrypt(source=body, keyring=keyring(case["key"]))
                with open(case["output"], "wb") as f:
                    f.write(output)
                size = len(output)
            elif case["op"] == "encrypt":
                with open(case["input"], "rb") as f:
                    data = f.read()
                message, header = client.encrypt(
                    source=data,
                    keyring=keyring(case["key"]),
                    algorithm=algorithms[case["suite"]],
                    frame_length=case["frame_length"],
                    encryption_context=case["context"],
                )
                if case.get("multipart"):
                    s3.upload_fileobj(
                        io.BytesIO(message), case["bucket"], case["object"], Config=multipart
                    )
                else:
                    s3.put_object(Bucket=case["bucket"], Key=case["object"], Body=message)
                size = len(message)
            else:
                die(4, "case %r: unknown op %r" % (case.get("id"), case.get("op")))
        except Exception as e:  # an SDK or S3 refusal: reported, the test decides
            results.append(
                {
                    "id": case["id"],
                    "ok": False,
                    "error_type": "%s.%s" % (type(e).__module__, type(e).__name__),
                    "error": str(e) or repr(e),
                }
            )
            continue
        results.append(
            {
                "id": case["id"],
                "ok": True,
                "context": dict(header.encryption_context),
                "bytes": size,
            }
        )

    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(
            {
                "esdk_version": aws_encryption_sdk.__version__,
                "boto3_version": boto3.__version__,
                "results": results,
            },
            f,
        )
    os.replace(tmp, argv[2])


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit:
        raise
    except BaseException:
        sys.stderr.write("esdk_s3_peer: unexpected error:\n" + traceback.format_exc())
        sys.exit(5)
