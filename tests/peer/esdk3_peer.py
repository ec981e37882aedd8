#!/usr/bin/env python3
"""Batch peer for envcrypt's interoperability tests: the AWS Encryption SDK for Python 3.x,
the version the AWS Encryption CLI 4.x pins (master-key API, no MPL).

Usage: esdk3_peer.py JOB.json RESULTS.json

JOB.json:
    {"cases": [CASE, ...]}
CASE (every field required unless marked optional):
    {"id": "unique string",
     "op": "encrypt" | "decrypt",
     "key": {"namespace": str, "name": str, "hex": "64 hex digits (AES-256 wrapping key)"},
     "input": "path",            # plaintext (encrypt) or ciphertext (decrypt)
     "output": "path",           # ciphertext (encrypt) or plaintext (decrypt)
     "api": "oneshot" | "stream",  # optional, default "oneshot":
                                   # client.encrypt/decrypt or client.stream(mode="e"/"d")
     # encrypt only:
     "suite": "0478" | "0578",
     "frame_length": int,        # a positive multiple of 128 (the SDK's rule)
     "context": {str: str}}
The key is a RawMasterKey as envcrypt's RawAesKeyring sees it: provider id = namespace,
key id = name (UTF-8), AES_256_GCM_IV12_TAG16_NO_PADDING.

RESULTS.json:
    {"esdk_version": str, "python": str, "seconds": float,
     "results": [{"id": str, "ok": true, "suite": "0578", "frame_length": int,
                  "content_type": "framed" | "non-framed", "context": {str: str}}
                 | {"id": str, "ok": false, "error_type": str, "error": str}]}
    "context" is the encryption context of the header the SDK wrote (encrypt) or read
    (decrypt); it includes the SDK-reserved "aws-crypto-public-key" on signed suites.

Errors raised by the SDK on one case are reported in that case's result, with the
exception's module-qualified type (a test may expect them: a wrong key, a full-length final
frame). Anything else (missing package, malformed job, unreadable input, ...) is unexpected:
the peer prints a message to stderr and exits non-zero, writing no results file.
"""

import io
import json
import logging
import os
import sys
import time
import traceback

EXIT_USAGE = 2
EXIT_MISSING_PACKAGE = 3
EXIT_BAD_JOB = 4
EXIT_UNEXPECTED = 5

INSTALL_HINT = (
    "install it with: python3 -m venv target/esdk3-venv && "
    "target/esdk3-venv/bin/pip install 'aws-encryption-sdk>=3,<4', "
    "then set ENVCRYPT_PYTHON_ESDK3=target/esdk3-venv/bin/python"
)

SUITES = ("0478", "0578")


def die(code, message):
    sys.stderr.write("esdk3_peer: %s\n" % message)
    sys.stderr.flush()
    sys.exit(code)


class BadJob(Exception):
    pass


def need(case, field, kind):
    if field not in case:
        raise BadJob("case %r: missing field %r" % (case.get("id"), field))
    value = case[field]
    # bool is an int in Python; never accept it as a number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadJob(
            "case %r: field %r must be %s, got %r" % (case.get("id"), field, kind.__name__, value)
        )
    return value


def validate(job):
    if not isinstance(job, dict) or not isinstance(job.get("cases"), list):
        raise BadJob('the job must be an object with a "cases" list')
    seen = set()
    for case in job["cases"]:
        if not isinstance(case, dict):
            raise BadJob("every case must be an object, got %r" % (case,))
        case_id = need(case, "id", str)
        if case_id in seen:
            raise BadJob("duplicate case id %r" % case_id)
        seen.add(case_id)
        op = need(case, "op", str)
        if op not in ("encrypt", "decrypt"):
            raise BadJob("case %r: unknown op %r" % (case_id, op))
        key = need(case, "key", dict)
        for field in ("namespace", "name", "hex"):
            if not isinstance(key.get(field), str):
                raise BadJob("case %r: key.%s must be a string" % (case_id, field))
        try:
            raw = bytes.fromhex(key["hex"])
        except ValueError:
            raise BadJob("case %r: key.hex is not hex" % case_id)
        if len(raw) != 32:
            raise BadJob("case %r: key must be 32 bytes (AES-256), got %d" % (case_id, len(raw)))
        need(case, "input", str)
        need(case, "output", str)
        if case.get("api", "oneshot") not in ("oneshot", "stream"):
            raise BadJob("case %r: unknown api %r" % (case_id, case.get("api")))
        if op == "encrypt":
            if need(case, "suite", str) not in SUITES:
                raise BadJob("case %r: suite must be one of %s" % (case_id, SUITES))
            frame_length = need(case, "frame_length", int)
            if frame_length <= 0 or frame_length % 128 != 0:
                raise BadJob(
                    "case %r: frame_length %d is not a positive multiple of 128 "
                    "(the Python SDK refuses it)" % (case_id, frame_length)
                )
            context = need(case, "context", dict)
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
                raise BadJob("case %r: context keys and values must be strings" % case_id)


def main(argv):
    if len(argv) != 3:
        die(EXIT_USAGE, "usage: esdk3_peer.py JOB.json RESULTS.json")
    job_path, results_path = argv[1], argv[2]
    try:
        with open(job_path, "rb") as f:
            job = json.loads(f.read().decode("utf-8"))
        validate(job)
    except (OSError, ValueError, BadJob) as e:
        die(EXIT_BAD_JOB, "bad job file %s: %s" % (job_path, e))

    try:
        import aws_encryption_sdk
        from aws_encryption_sdk import CommitmentPolicy
        from aws_encryption_sdk.identifiers import (
            Algorithm,
            ContentType,
            EncryptionKeyType,
            WrappingAlgorithm,
        )
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKey
    except ImportError as e:
        die(
            EXIT_MISSING_PACKAGE,
            "cannot import the AWS Encryption SDK 3.x (%s) into %s; %s" % (e, sys.executable, INSTALL_HINT),
        )
    version = aws_encryption_sdk.__version__
    if not version.startswith("3."):
        die(EXIT_MISSING_PACKAGE, "aws-encryption-sdk %s found, 3.x required; %s" % (version, INSTALL_HINT))
    # A stream closed after a refusal logs a second traceback ("Footer not read") to
    # stderr; the refusal itself is reported in the case's result.
    logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())

    algorithms = {
        "0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        "0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    }
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    master_keys = {}

    def master_key(key):
        ident = (key["namespace"], key["name"], key["hex"])
        if ident not in master_keys:
            master_keys[ident] = RawMasterKey(
                provider_id=key["namespace"],
                key_id=key["name"].encode("utf-8"),
                wrapping_key=WrappingKey(
                    wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                    wrapping_key=bytes.fromhex(key["hex"]),
                    wrapping_key_type=EncryptionKeyType.SYMMETRIC,
                ),
            )
        return master_keys[ident]

    def describe(header):
        return {
            "suite": "%04x" % header.algorithm.algorithm_id,
            "frame_length": header.frame_length,
            "content_type": "framed" if header.content_type == ContentType.FRAMED_DATA else "non-framed",
            "context": dict(header.encryption_context),
        }

    def run(case, data):
        """Encrypts or decrypts `data`; returns (output bytes, header)."""
        kwargs = dict(key_provider=master_key(case["key"]))
        mode = "d"
        if case["op"] == "encrypt":
            kwargs.update(
                algorithm=algorithms[case["suite"]],
                frame_length=case["frame_length"],
                encryption_context=case["context"],
            )
            mode = "e"
        if case.get("api", "oneshot") == "oneshot":
            if mode == "e":
                return client.encrypt(source=data, **kwargs)
            return client.decrypt(source=data, **kwargs)
        chunks = []
        with client.stream(mode=mode, source=io.BytesIO(data), **kwargs) as s:
            for chunk in s:
                chunks.append(chunk)
            header = s.header
        return b"".join(chunks), header

    results = []
    started = time.monotonic()
    for case in job["cases"]:
        try:
            with open(case["input"], "rb") as f:
                data = f.read()
        except OSError as e:
            die(EXIT_BAD_JOB, "case %r: cannot read %s: %s" % (case["id"], case["input"], e))
        try:
            output, header = run(case, data)
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
        result = {"id": case["id"], "ok": True}
        result.update(describe(header))
        results.append(result)

    out = {
        "esdk_version": version,
        "python": sys.version.split()[0],
        "seconds": round(time.monotonic() - started, 3),
        "results": results,
    }
    tmp = results_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    os.replace(tmp, results_path)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit:
        raise
    except BaseException:
        sys.stderr.write("esdk3_peer: unexpected error:\n" + traceback.format_exc())
        sys.stderr.flush()
        sys.exit(EXIT_UNEXPECTED)
