#!/usr/bin/env bash
# Builds and runs every library example in examples/: file, stream and async_stream as they
# are; kms and s3 against a moto server on loopback (a key and a bucket created for the
# run); hsm against a
# SoftHSM2 token in a temporary directory (an AES key generated inside it). A missing piece
# fails the script.
# Usage: scripts/run-examples.sh FEATURES   (e.g. rust-crypto,aws-kms,aws-s3,pkcs11,tokio)
# Needs ENVCRYPT_PYTHON (a Python with boto3) and ENVCRYPT_MOTO_SERVER, as scripts/test-all.sh
# sets them, SoftHSM2 (ENVCRYPT_SOFTHSM_MODULE) and pkcs11-tool.
set -euo pipefail
cd "$(dirname "$0")/.."
features=${1:?usage: scripts/run-examples.sh FEATURES}
: "${ENVCRYPT_PYTHON:?set ENVCRYPT_PYTHON to a Python with boto3}"
: "${ENVCRYPT_MOTO_SERVER:?set ENVCRYPT_MOTO_SERVER to a moto_server binary}"
module=${ENVCRYPT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
test -f "$module" || { echo "SoftHSM2 module $module missing (apt-get install softhsm2)" >&2; exit 1; }

scratch=$(mktemp -d)
moto_pid=
cleanup() {
  [ -z "$moto_pid" ] || kill "$moto_pid" 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

run() {
  echo "--- example $1"
  cargo run --release --quiet --features "$features" --example "$1"
}

for example in file stream async_stream; do
  run "$example"
done

# kms: a moto server on a free port, one symmetric key.
port=$("$ENVCRYPT_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ENVCRYPT_MOTO_SERVER" -H 127.0.0.1 -p "$port" >"$scratch/moto.log" 2>&1 &
moto_pid=$!
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_KMS="http://127.0.0.1:$port"
for _ in $(seq 100); do
  "$ENVCRYPT_PYTHON" -c "import urllib.request; urllib.request.urlopen('$AWS_ENDPOINT_URL_KMS/moto-api/')" \
    2>/dev/null && break
  sleep 0.2
done
ENVCRYPT_KMS_KEY_ARN=$("$ENVCRYPT_PYTHON" -c '
import boto3, os
kms = boto3.client("kms", region_name=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL_KMS"])
print(kms.create_key()["KeyMetadata"]["Arn"])')
export ENVCRYPT_KMS_KEY_ARN
run kms

# s3: the same moto server, one bucket.
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" ENVCRYPT_S3_BUCKET=examples
"$ENVCRYPT_PYTHON" -c '
import boto3, os
boto3.client("s3", region_name=os.environ["AWS_REGION"], endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket="examples")'
run s3

# hsm: a SoftHSM2 token with an AES-256 key generated inside it.
export SOFTHSM2_CONF="$scratch/softhsm2.conf"
mkdir "$scratch/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$scratch/tokens" > "$SOFTHSM2_CONF"
pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
softhsm2-util --init-token --free --label examples --pin "$pin" --so-pin "$pin$pin" >/dev/null
pkcs11-tool --module "$module" --token-label examples --login --pin "$pin" --keygen \
  --key-type AES:32 --label kek-2026 --id 01 --sensitive --usage-decrypt \
  >"$scratch/keygen.log" 2>&1 || { cat "$scratch/keygen.log" >&2; exit 1; }
ENVCRYPT_PKCS11_MODULE="$module" ENVCRYPT_PKCS11_TOKEN=examples ENVCRYPT_PKCS11_KEY=kek-2026 \
  ENVCRYPT_PKCS11_PIN="$pin" run hsm
echo "every example ran"
