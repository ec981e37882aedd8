#!/usr/bin/env bash
# Side by side with other AWS Encryption SDK implementations on the same file (issue 6), run
# by hand, outside CI. Same message parameters for all: suite 0478 (committing, unsigned), a
# raw AES-256 keyring bench/bench-key, frame length BENCH_PEERS_FRAME, no encryption context;
# a synthetic file of BENCH_PEERS_SIZE bytes (default 256 MiB) in the page cache.
#   - envcrypt tool (release build), file to file: output synced and renamed into place;
#   - envcrypt tool, output to stdout into /dev/null (no output file, no fsync);
#     envcrypt's in-memory figures are the criterion benches' (BENCHMARKS.md);
#   - the official Rust ESDK crate `aws-esdk` (Dafny-generated, bench-peers/aws-esdk-rs):
#     its encrypt/decrypt call alone (whole message in memory; it has no streaming API), and
#     its whole process (read the file, call, write the file);
#   - the Python ESDK (ENVCRYPT_PYTHON, default target/esdk-venv; skipped if absent), in memory.
# Each time is the best of 3; peak RSS is the largest of the 3 (/usr/bin/time). Then interop:
# envcrypt decrypts the aws-esdk crate's message and aws-esdk decrypts envcrypt's, both cmp'd.
# Usage: scripts/bench-peers.sh [WORKDIR]   (needs ~4 x SIZE free in WORKDIR, and RAM for
#        aws-esdk's in-memory messages)
# Env:   BENCH_PEERS_SIZE (bytes), BENCH_PEERS_FRAME (default 65536),
#        ENVCRYPT_SKIP_BUILD=1 (use the existing target/release/envcrypt),
#        ENVCRYPT_BIN=PATH (use that envcrypt binary instead; implies ENVCRYPT_SKIP_BUILD).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
size=${BENCH_PEERS_SIZE:-$((256 << 20))}
frame=${BENCH_PEERS_FRAME:-65536}
py=${ENVCRYPT_PYTHON:-$root/target/esdk-venv/bin/python}
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

if [ -n "${ENVCRYPT_BIN:-}" ]; then
  T=$ENVCRYPT_BIN
else
  [ -n "${ENVCRYPT_SKIP_BUILD:-}" ] || cargo build --release -p envcrypt-cli --quiet
  T=$root/target/release/envcrypt
fi
peer_dir=$root/bench-peers/aws-esdk-rs
# The peer is big (the Dafny-generated crate, the AWS SDK for KMS and DynamoDB): built niced.
nice -n 19 cargo build --release --quiet --manifest-path "$peer_dir/Cargo.toml"
P=$peer_dir/target/release/aws-esdk-peer

key=$work/bench.key
rm -f "$key"; $T keygen aes256 -o "$key"
K="raw-aes:bench:bench-key:$key"
f=$work/peers.bin
[ "$(stat -c %s "$f" 2>/dev/null)" = "$size" ] || head -c "$size" /dev/urandom > "$f"
cat "$f" > /dev/null

# Best of 3 runs of a command: sets WALL (least wall-clock seconds), RSS (largest peak RSS,
# MiB) and INNER (least "seconds" of the JSON line the command printed on stdout, or -).
best() {
  local walls="" rsss="" inners="" w r
  for _ in 1 2 3; do
    if ! /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" > "$work/stdout.txt" 2> "$work/stderr.txt"; then
      echo "failed: $*" >&2; cat "$work/stderr.txt" "$work/time.txt" >&2; return 1
    fi
    read -r w r < <(tail -1 "$work/time.txt")
    walls+="$w,"; rsss+="$r,"
    inners+="$(python3 -c 'import json,sys
try: print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["seconds"])
except Exception: print("None")' "$work/stdout.txt"),"
  done
  WALL=$(python3 -c "print(f'{min([$walls]):.2f}')")
  RSS=$(python3 -c "print(max([$rsss]) // 1024)")
  INNER=$(python3 -c "v = [x for x in [$inners] if x is not None]; print(f'{min(v):.2f}' if v else '-')")
}
gbps() { python3 -c "print(f'{$1 / $2 / 1e9:.2f}')"; }
times() { python3 -c "print(f'{$1 / $2:.1f}x')"; }  # their time / envcrypt's time

esdk_version=$(awk '/^name = "aws-esdk"$/ { getline; gsub(/"/, "", $3); print $3 }' "$peer_dir/Cargo.lock")
lc_version=$(awk '/^name = "aws-lc-sys"$/ { getline; gsub(/"/, "", $3); print $3 }' "$peer_dir/Cargo.lock")
if [ -n "${ENVCRYPT_BIN:-}" ]; then built="binary $T"
else built="built from $(git -C "$root" describe --always --dirty 2>/dev/null || echo "this checkout")"; fi
echo "envcrypt ($built): $($T info)"
echo "aws-esdk $esdk_version (aws-lc-sys $lc_version), $(rustc --version)"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $size bytes of random data in the page cache, suite 0478, frame length $frame"
echo

# envcrypt: file to file, then to stdout (/dev/null).
best "$T" encrypt -q --force -k "$K" --suite 0478 --frame-length "$frame" -o "$work/ec.enc" "$f"
ec_enc=$WALL ec_enc_rss=$RSS
best "$T" decrypt -q --force -k "$K" -o "$work/ec.out" "$work/ec.enc"
ec_dec=$WALL ec_dec_rss=$RSS
cmp "$f" "$work/ec.out"
best sh -c "'$T' encrypt -q -k '$K' --suite 0478 --frame-length $frame '$f' > /dev/null"
ec_enc_null=$WALL ec_enc_null_rss=$RSS
best sh -c "'$T' decrypt -q -k '$K' '$work/ec.enc' > /dev/null"
ec_dec_null=$WALL ec_dec_null_rss=$RSS

# aws-esdk crate: in-memory call (its JSON) and whole process (wall clock).
best "$P" encrypt "$f" "$work/aws.enc" "$key" "$frame"
aws_enc=$INNER aws_enc_proc=$WALL aws_enc_rss=$RSS
best "$P" decrypt "$work/aws.enc" "$work/aws.out" "$key"
aws_dec=$INNER aws_dec_proc=$WALL aws_dec_rss=$RSS
cmp "$f" "$work/aws.out"

# Python ESDK, in memory (best of 3 inside one process).
py_enc="" py_dec="" py_rss="" py_note=""
if [ -x "$py" ]; then
  py_version=$("$py" -c 'import aws_encryption_sdk; print(aws_encryption_sdk.__version__)')
  cat > "$work/esdk.py" <<'PY'
import base64, os, sys, time
import aws_encryption_sdk
from aws_encryption_sdk.identifiers import CommitmentPolicy, AlgorithmSuite
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import CreateRawAesKeyringInput, AesWrappingAlg
key = base64.b64decode(os.environ["PYKEY"])
mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
kr = mpl.create_raw_aes_keyring(input=CreateRawAesKeyringInput(key_namespace="bench", key_name="bench-key", wrapping_key=key, wrapping_alg=AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16))
client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
data = open(sys.argv[1], "rb").read()
enc = dec = float("inf")
for _ in range(3):
    t = time.perf_counter()
    ct, _ = client.encrypt(source=data, keyring=kr, algorithm=AlgorithmSuite.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, frame_length=int(sys.argv[2]))
    enc = min(enc, time.perf_counter() - t)
    t = time.perf_counter()
    pt, _ = client.decrypt(source=ct, keyring=kr)
    dec = min(dec, time.perf_counter() - t)
    assert pt == data
print(f"{enc:.2f} {dec:.2f}")
PY
  py_out=$(PYKEY=$(cat "$key") /usr/bin/time -f %M -o "$work/pyrss.txt" \
    "$py" "$work/esdk.py" "$f" "$frame" 2> "$work/py.err") || { cat "$work/py.err" >&2; exit 1; }
  read -r py_enc py_dec <<< "$py_out"
  py_rss=$(($(tail -1 "$work/pyrss.txt") / 1024))
else
  py_note="Python ESDK: skipped, no venv at $py (scripts/test-all.sh makes it)."
fi

echo "| op | implementation | what is timed | seconds | GB/s | peak RSS (MiB) | envcrypt file to file is N x faster |"
echo "|---|---|---|---|---|---|---|"
for op in encrypt decrypt; do
  if [ "$op" = encrypt ]; then
    e=$ec_enc er=$ec_enc_rss en=$ec_enc_null enr=$ec_enc_null_rss
    a=$aws_enc ap=$aws_enc_proc ar=$aws_enc_rss p=$py_enc
  else
    e=$ec_dec er=$ec_dec_rss en=$ec_dec_null enr=$ec_dec_null_rss
    a=$aws_dec ap=$aws_dec_proc ar=$aws_dec_rss p=$py_dec
  fi
  echo "| $op | envcrypt tool | whole process, file to file (synced) | $e | $(gbps "$size" "$e") | $er | 1.0x |"
  echo "| $op | envcrypt tool | whole process, file to /dev/null | $en | $(gbps "$size" "$en") | $enr | - |"
  echo "| $op | aws-esdk $esdk_version | encrypt/decrypt call, in memory | $a | $(gbps "$size" "$a") | - | $(times "$a" "$e") |"
  echo "| $op | aws-esdk $esdk_version | whole process, file to file | $ap | $(gbps "$size" "$ap") | $ar | $(times "$ap" "$e") |"
  if [ -n "$p" ]; then
    echo "| $op | Python ESDK $py_version | encrypt/decrypt call, in memory | $p | $(gbps "$size" "$p") | $py_rss (whole run) | $(times "$p" "$e") |"
  fi
done
[ -z "$py_note" ] || { echo; echo "$py_note"; }

# Interop: each decrypts the other's message; both results must equal the original.
echo
echo "| interop | seconds | result |"
echo "|---|---|---|"
rm -f "$work/x1.out" "$work/x2.out"
/usr/bin/time -f %e -o "$work/time.txt" "$T" decrypt -q -k "$K" -o "$work/x1.out" "$work/aws.enc"
cmp "$f" "$work/x1.out"
echo "| envcrypt decrypts the aws-esdk message | $(tail -1 "$work/time.txt") | identical (cmp) |"
"$P" decrypt "$work/ec.enc" "$work/x2.out" "$key" > "$work/stdout.txt"
cmp "$f" "$work/x2.out"
echo "| aws-esdk decrypts the envcrypt message | $(python3 -c 'import json,sys; print("%.2f" % json.load(open(sys.argv[1]))["seconds"])' "$work/stdout.txt") (call) | identical (cmp) |"
rm -f "$work"/*.out "$work"/*.enc
