#!/usr/bin/env bash
# S3 upload and download through envcrypt against `aws s3 cp` (the AWS CLI v1 on boto3's
# s3transfer) moving the same bytes WITHOUT encryption, both against one moto S3 server on
# loopback, in the same run. Also the tool's peak RSS at 256 MiB and 1 GiB (flat memory).
#   upload:   envcrypt encrypt FILE -o s3://bench/e.enc    vs  aws s3 cp FILE s3://bench/plain
#   download: envcrypt decrypt s3://bench/e.enc -o OUT     vs  aws s3 cp s3://bench/plain OUT
# moto itself (Python) is the slowest part of both; the ratio says what envcrypt adds.
# Usage: [ROUNDS=5] [SUITE=0478] [MIB=1024] scripts/bench-s3.sh [WORKDIR]
#   (needs 3 x MIB free in WORKDIR plus moto's copy in /tmp; installs awscli in
#   target/awscli-venv and moto in target/esdk-venv when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d)}
rounds=${ROUNDS:-5}
suite=${SUITE:-0478}
mib=${MIB:-1024}
aws_venv=$root/target/awscli-venv
[ -x "$aws_venv/bin/aws" ] || { python3 -m venv "$aws_venv" && "$aws_venv/bin/pip" install --quiet "awscli>=1.36,<2"; }
moto=${ENVCRYPT_MOTO_SERVER:-$root/target/esdk-venv/bin/moto_server}
[ -x "$moto" ] || { echo "moto_server missing: run scripts/test-all.sh once, or set ENVCRYPT_MOTO_SERVER" >&2; exit 1; }
cargo build --release -p envcrypt-cli --quiet
T=$root/target/release/envcrypt

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$moto" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; rm -f "$work"/pt.bin "$work"/out.bin "$work"/pt256.bin' EXIT
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
aws=("$aws_venv/bin/aws" --endpoint-url "$AWS_ENDPOINT_URL_S3")
for _ in $(seq 50); do "${aws[@]}" s3 mb s3://bench >/dev/null 2>&1 && break; sleep 0.2; done
"${aws[@]}" s3 ls s3://bench >/dev/null

head -c $((mib << 20)) /dev/urandom > "$work/pt.bin"
head -c $((256 << 20)) /dev/urandom > "$work/pt256.bin"
key=$work/bench.key
rm -f "$key"; $T keygen aes256 -o "$key"
k="raw-aes:bench:k:$key"

# Median wall seconds of ROUNDS runs of "$@".
median() {
  local times=()
  for _ in $(seq "$rounds"); do
    local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null || { echo "failed: $*" >&2; exit 1; }; t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
ratio() { echo "scale=3; $2 / $1" | bc; }   # speed of A relative to B = time B / time A
gbps() { echo "scale=3; $mib * 1048576 / $1 / 1000000000" | bc; }

echo "moto on 127.0.0.1:$port; $mib MiB random; suite $suite; median of $rounds"
up_e=$(median $T encrypt -q --force --suite "$suite" -k "$k" "$work/pt.bin" -o s3://bench/e.enc)
up_c=$(median "${aws[@]}" s3 cp --quiet "$work/pt.bin" s3://bench/plain)
echo "upload:   envcrypt $up_e s ($(gbps "$up_e") GB/s)  aws s3 cp $up_c s ($(gbps "$up_c") GB/s)  envcrypt/cp speed $(ratio "$up_e" "$up_c")"
down_e=$(median $T decrypt -q --force -k "$k" s3://bench/e.enc -o "$work/out.bin")
cmp "$work/pt.bin" "$work/out.bin"
# One GET for cp as for envcrypt (its default ranged GETs make moto re-read the object).
printf '[default]\ns3 =\n    multipart_threshold = 100GB\n' > "$work/aws-config"
down_c=$(AWS_CONFIG_FILE=$work/aws-config median "${aws[@]}" s3 cp --quiet s3://bench/plain "$work/out.bin")
echo "download: envcrypt $down_e s ($(gbps "$down_e") GB/s)  aws s3 cp $down_c s ($(gbps "$down_c") GB/s)  envcrypt/cp speed $(ratio "$down_e" "$down_c")"

# Peak RSS (KiB) of one upload and one download at 256 MiB and at MIB.
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
for f in pt256.bin pt.bin; do
  up=$(rss $T encrypt -q --force --suite "$suite" -k "$k" "$work/$f" -o s3://bench/r.enc)
  down=$(rss $T decrypt -q --force -k "$k" s3://bench/r.enc -o "$work/out.bin")
  echo "peak RSS $f: upload $((up / 1024)) MiB, download $((down / 1024)) MiB"
done
