#!/usr/bin/env python3
"""Batch peer for envcrypt's interoperability tests: the real AWS Encryption SDK for Python,
4.x (keyrings of the Material Providers Library) or 3.x (the version the AWS Encryption CLI
pins: master keys, no MPL, raw AES keys only), whichever the interpreter has.

Usage: esdk_peer.py JOB.json RESULTS.json [--sdk 3|4]   (--sdk: the major version required)

JOB.json:
    {"cases": [CASE, ...]}
CASE (every field required unless marked optional):
    {"id": "unique string",
     "op": "encrypt" | "decrypt",
     "key": KEY,
     "input": "path",            # plaintext (encrypt) or ciphertext (decrypt)
     "output": "path",           # ciphertext (encrypt) or plaintext (decrypt)
     "api": "oneshot" | "stream",  # optional, default "oneshot"
     # encrypt only:
     "suite": "0478" | "0578",
     "frame_length": int,        # 0 = non-framed; else a multiple of 128 (the SDK's rule)
     "context": {str: str}}
KEY, one of:
    {"namespace": str, "name": str, "hex": "64 hex digits (AES-256 wrapping key)"}
        # raw AES ("type": "raw-aes" optional)
    {"type": "raw-rsa", "namespace": str, "name": str,
     "padding": "pkcs1" | "oaep-sha1" | "oaep-sha256" | "oaep-sha384" | "oaep-sha512",
     "public_pem": "path",       # optional: SubjectPublicKeyInfo PEM
     "private_pem": "path"}      # optional: PKCS#8 PEM; needed to decrypt
        # raw RSA (MPL create_raw_rsa_keyring); at least one of the two PEM paths

RESULTS.json:
    {"esdk_version": str, "python": str, "seconds": float,
     "results": [{"id": str, "ok": true, "suite": "0578", "frame_length": int,
                  "content_type": "framed" | "non-framed", "context": {str: str}}
                 | {"id": str, "ok": false, "error_type": str, "error": str}]}
    "context" is the encryption context of the header the SDK wrote (encrypt) or read
    (decrypt); it includes the SDK-reserved "aws-crypto-public-key" on signed suites.

Errors raised by the SDK while encrypting or decrypting one case are reported in that
case's result (a test may expect them, e.g. a wrong key). Anything else (missing package,
malformed job, unreadable input, unwritable output, ...) is unexpected: the peer prints a
message to stderr and exits non-zero, writing no results file.
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

INSTALL_HINTS = {
    "4": "install it with: python3 -m venv target/esdk-venv && "
    "target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5' "
    "(needs Python >= 3.11), then set ENVCRYPT_PYTHON=target/esdk-venv/bin/python",
    "3": "install it with: python3 -m venv target/esdk3-venv && "
    "target/esdk3-venv/bin/pip install 'aws-encryption-sdk>=3,<4', "
    "then set ENVCRYPT_PYTHON_ESDK3=target/esdk3-venv/bin/python",
}

SUITES = ("0478", "0578")
RSA_PADDINGS = ("pkcs1", "oaep-sha1", "oaep-sha256", "oaep-sha384", "oaep-sha512")


def die(code, message):
    sys.stderr.write("esdk_peer: %s\n" % message)
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
            "case %r: field %r must be %s, got %r"
            % (case.get("id"), field, getattr(kind, "__name__", kind), value)
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
        key_type = key.get("type", "raw-aes")
        if key_type == "raw-rsa":
            validate_rsa_key(case_id, op, key)
        elif key_type != "raw-aes":
            raise BadJob("case %r: unknown key.type %r" % (case_id, key_type))
        else:
            for field in ("namespace", "name", "hex"):
                if not isinstance(key.get(field), str):
                    raise BadJob("case %r: key.%s must be a string" % (case_id, field))
            try:
                raw = bytes.fromhex(key["hex"])
            except ValueError:
                raise BadJob("case %r: key.hex is not hex" % case_id)
            if len(raw) != 32:
                raise BadJob(
                    "case %r: key must be 32 bytes (AES-256), got %d" % (case_id, len(raw))
                )
        need(case, "input", str)
        need(case, "output", str)
        api = case.get("api", "oneshot")
        if api not in ("oneshot", "stream"):
            raise BadJob("case %r: unknown api %r" % (case_id, api))
        if op == "encrypt":
            if need(case, "suite", str) not in SUITES:
                raise BadJob("case %r: suite must be one of %s" % (case_id, SUITES))
            frame_length = need(case, "frame_length", int)
            if frame_length < 0 or frame_length % 128 != 0:
                raise BadJob(
                    "case %r: frame_length %d is not 0 or a multiple of 128 "
                    "(the Python SDK refuses it)" % (case_id, frame_length)
                )
            if frame_length == 0 and api == "stream":
                raise BadJob("case %r: non-framed encryption needs api oneshot" % case_id)
            context = need(case, "context", dict)
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
                raise BadJob("case %r: context keys and values must be strings" % case_id)


def validate_rsa_key(case_id, op, key):
    for field in ("namespace", "name", "padding"):
        if not isinstance(key.get(field), str):
            raise BadJob("case %r: key.%s must be a string" % (case_id, field))
    if key["padding"] not in RSA_PADDINGS:
        raise BadJob("case %r: key.padding must be one of %s" % (case_id, RSA_PADDINGS))
    paths = [f for f in ("public_pem", "private_pem") if f in key]
    if not paths:
        raise BadJob("case %r: a raw-rsa key needs public_pem or private_pem" % case_id)
    for field in paths:
        if not isinstance(key[field], str):
            raise BadJob("case %r: key.%s must be a path" % (case_id, field))
    if op == "decrypt" and "private_pem" not in key:
        raise BadJob("case %r: decrypting with raw-rsa needs key.private_pem" % case_id)


def main(argv):
    sdk = "4"
    if len(argv) == 5 and argv[3] == "--sdk" and argv[4] in INSTALL_HINTS:
        sdk = argv[4]
    elif len(argv) != 3:
        die(EXIT_USAGE, "usage: esdk_peer.py JOB.json RESULTS.json [--sdk 3|4]")
    hint = INSTALL_HINTS[sdk]
    job_path, results_path = argv[1], argv[2]
    try:
        with open(job_path, "rb") as f:
            job = json.loads(f.read().decode("utf-8"))
        validate(job)
        if sdk == "3" and any(c["key"].get("type", "raw-aes") != "raw-aes" for c in job["cases"]):
            raise BadJob("the 3.x peer takes raw AES keys only")
    except (OSError, ValueError, BadJob) as e:
        die(EXIT_BAD_JOB, "bad job file %s: %s" % (job_path, e))

    if sys.version_info < (3, 11):
        die(EXIT_MISSING_PACKAGE, "Python %s is too old; %s" % (sys.version.split()[0], hint))
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk import CommitmentPolicy
        from aws_encryption_sdk.identifiers import Algorithm, ContentType
    except ImportError as e:
        die(
            EXIT_MISSING_PACKAGE,
            "cannot import the AWS Encryption SDK (%s) into %s; %s" % (e, sys.executable, hint),
        )
    version = aws_encryption_sdk.__version__
    if not version.startswith(sdk + "."):
        die(EXIT_MISSING_PACKAGE, "aws-encryption-sdk %s found, %s.x required; %s" % (version, sdk, hint))
    # A stream closed after a refusal logs a second traceback ("Footer not read") to
    # stderr; the refusal itself is reported in the case's result.
    logging.getLogger("aws_encryption_sdk").addHandler(logging.NullHandler())
    key_argument = keyrings_4x(hint) if sdk == "4" else master_keys_3x(hint)

    algorithms = {
        "0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
        "0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
    }
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )

    def describe(header):
        return {
            "suite": "%04x" % header.algorithm.algorithm_id,
            "frame_length": header.frame_length,
            "content_type": "framed"
            if header.content_type == ContentType.FRAMED_DATA
            else "non-framed",
            "context": dict(header.encryption_context),
        }

    def run(case, data):
        """Encrypts or decrypts `data`; returns (output bytes, header)."""
        kwargs = key_argument(case["key"])
        if case["op"] == "encrypt":
            kwargs.update(
                algorithm=algorithms[case["suite"]],
                frame_length=case["frame_length"],
                encryption_context=case["context"],
            )
            mode = "e"
        else:
            mode = "d"
        if case.get("api", "oneshot") == "oneshot":
            if mode == "e":
                return client.encrypt(source=data, **kwargs)
            return client.decrypt(source=data, **kwargs)
        # Streaming: feed the data from a file-like object, collect the chunks.
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


def read_pem(path):
    # An unreadable key file is a broken job, not an SDK refusal.
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        die(EXIT_BAD_JOB, "cannot read key file %s: %s" % (path, e))


def keyrings_4x(hint):
    """The 4.x way to name a key: MPL keyrings (raw AES, raw RSA), one per key."""
    try:
        from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
        from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
        from aws_cryptographic_material_providers.mpl.models import (
            AesWrappingAlg,
            CreateRawAesKeyringInput,
            CreateRawRsaKeyringInput,
            PaddingScheme,
        )
    except ImportError as e:
        die(
            EXIT_MISSING_PACKAGE,
            "cannot import the Material Providers Library (%s) into %s; %s" % (e, sys.executable, hint),
        )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    paddings = {
        "pkcs1": PaddingScheme.PKCS1,
        "oaep-sha1": PaddingScheme.OAEP_SHA1_MGF1,
        "oaep-sha256": PaddingScheme.OAEP_SHA256_MGF1,
        "oaep-sha384": PaddingScheme.OAEP_SHA384_MGF1,
        "oaep-sha512": PaddingScheme.OAEP_SHA512_MGF1,
    }
    keyrings = {}

    def keyring_for(key):
        if key.get("type") == "raw-rsa":
            public, private = key.get("public_pem"), key.get("private_pem")
            ident = ("raw-rsa", key["namespace"], key["name"], key["padding"], public, private)
            if ident not in keyrings:
                keyrings[ident] = mpl.create_raw_rsa_keyring(
                    input=CreateRawRsaKeyringInput(
                        key_namespace=key["namespace"],
                        key_name=key["name"],
                        padding_scheme=paddings[key["padding"]],
                        public_key=read_pem(public) if public else None,
                        private_key=read_pem(private) if private else None,
                    )
                )
            return dict(keyring=keyrings[ident])
        ident = (key["namespace"], key["name"], key["hex"])
        if ident not in keyrings:
            keyrings[ident] = mpl.create_raw_aes_keyring(
                input=CreateRawAesKeyringInput(
                    key_namespace=key["namespace"],
                    key_name=key["name"],
                    wrapping_key=bytes.fromhex(key["hex"]),
                    wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
                )
            )
        return dict(keyring=keyrings[ident])

    return keyring_for


def master_keys_3x(hint):
    """The 3.x way: a RawMasterKey as envcrypt's RawAesKeyring sees it (provider id =
    namespace, key id = name as UTF-8, AES_256_GCM_IV12_TAG16_NO_PADDING)."""
    try:
        from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKey
    except ImportError as e:
        die(EXIT_MISSING_PACKAGE, "cannot import the 3.x master keys (%s); %s" % (e, hint))
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
        return dict(key_provider=master_keys[ident])

    return master_key


if __name__ == "__main__":
    try:
        main(sys.argv)
    except SystemExit:
        raise
    except BaseException:
        sys.stderr.write("esdk_peer: unexpected error:\n" + traceback.format_exc())
        sys.stderr.flush()
        sys.exit(EXIT_UNEXPECTED)
