#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets rewrap, audit_log, c_api and keyring_spec into
# fuzz/corpus/<target>/ (seed-* files; anything else there is the fuzzer's own and is kept).
#
# rewrap and c_api: selector bytes for each mode and sample, edit instructions, and
# well-formed messages of both committing suites (framed, several frame lengths, signed
# footers) whose keys and tags are random: they parse but never decrypt, as the targets
# require of anything that is not one of their own samples.
# audit_log: a chained log like JsonLinesSink writes (12 events, a checkpoint after every 4,
# signed with a fresh ECDSA P-384 key when the Python `cryptography` package is there), as
# a whole log, as event fields for the target to chain, and as line edits of its sample.
# keyring_spec: one spec of each grammar (paths and modules that do not exist), behind the
# target's selector character.
# Usage: scripts/fuzz-seeds.sh   (PYTHON, or ENVCRYPT_PYTHON, picks the interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-${ENVCRYPT_PYTHON:-python3}}
"$python" - <<'EOF'
import base64, hashlib, json, os, random, struct

rng = random.Random(14)
root = "fuzz/corpus"


def write(target, name, data):
    os.makedirs(f"{root}/{target}", exist_ok=True)
    with open(f"{root}/{target}/seed-{name}", "wb") as f:
        f.write(bytes(data))


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def blob(b):
    return u16(len(b)) + b


def message(suite, frame_length, plaintext_len):
    """A v2 message under a key nobody has: valid structure, random data key and tags."""
    context = {"purpose": "fuzz", "é": "ü"}
    if suite == 0x0578:
        context["aws-crypto-public-key"] = base64.b64encode(b"\x02" + rng.randbytes(48)).decode()
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    aad = u16(len(pairs)) + b"".join(blob(k) + blob(v) for k, v in pairs)
    info = b"fuzz-key" + u32(128) + u32(12) + rng.randbytes(12)
    edk = blob(b"fuzz-ns") + blob(info) + blob(rng.randbytes(48))
    header = (bytes([2]) + u16(suite) + rng.randbytes(32) + blob(aad) + u16(1) + edk
              + bytes([2]) + u32(frame_length) + rng.randbytes(32) + rng.randbytes(16))
    body, seq, left = b"", 1, plaintext_len
    while left >= frame_length:
        body += u32(seq) + rng.randbytes(12 + frame_length + 16)
        seq, left = seq + 1, left - frame_length
    body += b"\xff\xff\xff\xff" + u32(seq) + rng.randbytes(12) + u32(left) + rng.randbytes(left + 16)
    footer = blob(rng.randbytes(103)) if suite == 0x0578 else b""
    return header, body + footer


messages = [message(s, fl, n) for s in (0x0478, 0x0578) for fl, n in ((16, 40), (1, 3), (100, 0), (7, 7))]
edits = [
    b"",                          # unchanged
    bytes([0, 0, 5, 0x01]),       # xor a header byte
    bytes([0, 0, 200, 0x80]),     # xor a byte of the body
    bytes([2, 0, 150, 0]),        # truncate
    bytes([3, 0xff, 0xff, 0]),    # append a byte
    bytes([1, 0, 1, 0x78, 0, 0, 2, 0x04]),  # set the suite id
]

# rewrap: selector (mode, pipeline, sample), read chunking, then the mode's bytes.
for i, (header, body) in enumerate(messages):
    write("rewrap", f"as-is-{i}", [0, 0x21] + list(header + body))
    write("rewrap", f"header-{i}", [1 | 4 | (i << 3), 0x07] + list(body))
for sample in range(10):
    for j, e in enumerate(edits):
        write("rewrap", f"edit-{sample}-{j}", [2 | (sample << 3), 0x3f] + list(e))
    for limit in (0, 100, 0xffff):
        write("rewrap", f"output-{sample}-{limit}", [3 | 4 | (sample << 3), 0x10] + list(u16(limit)))

# c_api: selector (mode, sample), options (context, buffer sizes), chunking, then bytes.
for i, (header, body) in enumerate(messages):
    write("c_api", f"as-is-{i}", [0, 0x34, 0x21] + list(header + body))
    write("c_api", f"header-{i}", [1 | (i << 2), 0x09, 0x51] + list(body))
for sample in range(8):
    for j, e in enumerate(edits):
        write("c_api", f"edit-{sample}-{j}", [2 | (sample << 2), j * 0x15 & 0xff, 0x10] + list(e))
    for options in (0x00, 0x15, 0x2a, 0x3f):
        write("c_api", f"sample-{sample}-{options:02x}", [3 | (sample << 2), options, 0xf0])
write("c_api", "nulls", [0x2a])

# audit_log: a chained, checkpointed log.
try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP384R1())
    spki = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
except ImportError:
    key = None

lines, prev = [], "0" * 64


def dump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def append(event, sign=False):
    global prev
    obj = {"seq": len(lines) + 1, **event}
    if sign:
        obj["public_key"] = spki
        unsigned = dump({**obj, "prev": prev})
        sig = key.sign(unsigned.encode(), ec.ECDSA(hashes.SHA384()))
        obj["signature"] = base64.b64encode(sig).decode()
    body = dump({**obj, "prev": prev})
    prev = hashlib.sha256(body.encode()).hexdigest()
    lines.append(body[:-1] + f',"hash":"{prev}"}}\n')


ops = ["encrypt", "generate", "wrap"]
fields = []
for i in range(12):
    event = {"time": f"2026-12-07T14:{i:02d}:00.000Z", "op": ops[i % 3], "outcome": "ok"}
    if i % 5 == 1:
        event.update(outcome="failed", error_kind="cancelled", error="cancelled")
    event["bytes"] = i * 1000
    if i % 5 == 1:
        event["path"] = 'a "quoted" ,"hash":"x\n'
    event.update(user="fuzz", host="fuzz-host", version="0.1.0")
    append(event)
    fields.append(dump(event)[1:-1])
    if i % 4 == 3 and key is not None:
        append({"time": event["time"], "op": "checkpoint", "outcome": "ok", "user": "fuzz",
                "host": "fuzz-host", "version": "0.1.0"}, sign=True)
log = "".join(lines).encode()
write("audit_log", "log", b"\x00" + log)
write("audit_log", "log-cut", b"\x00" + "".join(lines[:5]).encode())
write("audit_log", "log-pinned", b"\x04" + log)
write("audit_log", "fields", b"\x01" + "\n".join(fields).encode())
for j, e in enumerate([b"", bytes([4, 0, 3, 0]), bytes([5, 1, 2, 0]), bytes([2, 0x07, 0xd0, 0]),
                       bytes([0, 0, 40, 1]), bytes([3, 0, 0, 0x0a]), bytes([4, 0, 14, 0])]):
    write("audit_log", f"edit-pinned-{j}", b"\x02" + e)
    write("audit_log", f"edit-{j}", b"\x03" + e)
for j, spec in enumerate([
        "raw-aes:hospital-a:imaging-2026:/nonexistent/site.key",
        "raw-rsa:escrow:2026:oaep-sha256:/nonexistent/escrow.pem",
        "aws-kms:arn:aws:kms:us-east-1:111122223333:key/k1?profile=p",
        "aws-kms-discovery:111122223333,444455556666?partition=aws-us-gov&region=us-gov-west-1",
        "pkcs11:token=imaging;object=kek-2026?module-path=/nonexistent/libsofthsm2.so",
        "pkcs11:token=t;object=o;id=%01%02?module-path=/nonexistent/m.so&namespace=ns&name=n",
        "pkcs11:token=t;object=o?module-path=/nonexistent/m.so&pin-source=/nonexistent/pin"]):
    # The target's first character picks a prefix (index = code point % 6) and, with bit
    # 0x40, a PIN for pkcs11: "B" (66) adds no prefix and asks for the PIN.
    write("keyring_spec", f"spec-{j}", b"B" + spec.encode())
print("seeds:", {t: len(os.listdir(f"{root}/{t}")) for t in ("rewrap", "c_api", "audit_log", "keyring_spec")})
EOF
