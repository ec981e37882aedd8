#!/usr/bin/env python3
"""Raw AES peer for envcrypt's PKCS#11 tests: the real AWS Encryption SDK for Python 4.x
(with the MPL) holding the same AES key bytes as a key imported into a PKCS#11 token.

Usage: esdk_raw_aes_peer.py JOB.json RESULTS.json

JOB.json:
    {"cases": [{"id": str,
                "op": "encrypt" | "decrypt",
                "key": {"namespace": str, "name": str, "hex": 32, 48 or 64 hex digits},
                "input": path, "output": path,
                # encrypt only:
                "suite": "0478" | "0578", "frame_length": int (multiple of 128, or 0),
                "context": {str: str}}]}
RESULTS.json:
    {"esdk_version": str,
     "results": [{"id": str, "ok": true, "context": {str: str}}
                 | {"id": str, "ok": false, "error_type": str, "error": str}]}

An SDK error on one case is reported in its result (the test decides); anything else
(missing package, bad job, unreadable input) prints one line to stderr and exits non-zero
without writing RESULTS.json.
"""

import json
import os
import sys
import traceback

HINT = (
    "install it with: python3 -m venv target/esdk-venv && "
    "target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5' "
    "(needs Python >= 3.11), then set ENVCRYPT_PYTHON=target/esdk-venv/bin/python"
)


def die(code, message):
    sys.stderr.write("esdk_raw_aes_peer: %s\n" % message)
    sys.exit(code)


def main(argv):
    if len(argv) != 3:
        die(2, "usage: esdk_raw_aes_peer.py JOB.json RESULTS.json")
    with open(argv[1], "rb") as f:
        job = json.loads(f.read().decode("utf-8"))
    cases = job.get("cases")
    if not isinstance(cases, list):
        die(4, 'the job must be an object with a "cases" list')
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk import CommitmentPolicy
        from aws_encryption_sdk.identifiers import Algorithm
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import (
            AesWrappingAlg,
            CreateRawAesKeyringInput,
        )
    except ImportError as e:
        die(3, "cannot import the AWS Encryption SDK with MPL (%s) into %s; %s" % (e, sys.executable, HINT))

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
        with open(case["input"], "rb") as f:
            data = f.read()
        try:
            if case["op"] == "encrypt":
                output, header = client.encrypt(
                    source=data,
                    keyring=keyring(case["key"]),
                    algorithm=algorithms[case["suite"]],
                    frame_length=case["frame_length"],
                    encryption_context=case["context"],
                )
            elif case["op"] == "decrypt":
                output, header = client.decrypt(source=data, keyring=keyring(case["key"]))
            else:
                die(4, "case %r: unknown op %r" % (case.get("id"), case.get("op")))
        except Exception as e:  # an SDK refusal: reported, the test decides
            results.append(
                {
                    "id": case["id"],
                    "ok": False,
                    "error_type": "%s.%s" % (type(e).__module__, type(e).__name__),
                    "error": str(e) or repr(e),
                }
            )
            continue
        with open(case["output"], "wb") as f:
            f.write(output)
        results.append({"id": case["id"], "ok": True, "context": dict(header.encryption_context)})

    tmp = argv[2] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"esdk_version": aws_encryption_sdk.__version__, "results": results}, f)
    os.replace(tmp, argv[2])


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit:
        raise
    except BaseException:
        sys.stderr.write("esdk_raw_aes_peer: unexpected error:\n" + traceback.format_exc())
        sys.exit(5)
