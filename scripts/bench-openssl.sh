#!/usr/bin/env bash
# Suite 0578 (and 0478) per crypto provider, in memory and file to file, against OpenSSL's
# own SHA-384 measured in the same run (`openssl speed`, before and after; the ceiling of
# a signed message is one serial SHA-384 over every byte).
#   1. openssl speed -evp sha384 -bytes 65536 -seconds 3
#   2. cargo bench --bench throughput --features openssl: raw aws-lc-rs SHA-384 and the
#      by-provider groups (1 GiB in memory, 64 KiB frames, all cores)
#   3. cargo bench --bench providers --features openssl: raw seal/open at 64 KiB and
#      SHA-384 per provider through the seam (64 MiB, one thread)
#   4. the tool, 1 GiB file in the page cache to a synced file (-o) and to a redirected
#      stdout (no sync), per provider, best of ROUNDS (default 3), 0578 then 0478
#   5. openssl speed again
# Usage: [ROUNDS=3] [SUITES="0578 0478"] scripts/bench-openssl.sh [WORKDIR]
#   (needs 3 GiB free; files deleted). SUITES=0578 runs the signed suite only (and skips 3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d)}
rounds=${ROUNDS:-3}
suites=${SUITES:-0578 0478}
filter="raw/sha384|by-provider-(${suites// /|})"
speed() { openssl speed -evp sha384 -bytes 65536 -seconds 3 2>/dev/null | awk '/^sha384/ { printf "%.3f\n", $2 * 1000 / 1e9 }'; }
echo "openssl speed sha384 64 KiB (before): $(speed) GB/s ($(openssl version))"
# Criterion's median throughput per benchmark, in GB/s.
medians() {
  awk '/^[a-z0-9+-]+\/[^ ]+/ { name = $1 }
       /thrpt: +\[/ && /iB\/s/ { v = $4; u = $5; f = (u ~ /^GiB/) ? 1073741824 : 1048576
                                 printf "  %-48s %.3f GB/s\n", name, v * f / 1e9 }'
}
echo "in memory, 1 GiB, 64 KiB frames, all cores (median of 10):"
ENVCRYPT_BENCH_MIB=1024 ENVCRYPT_BENCH_QUICK=1 \
  cargo bench --bench throughput --features openssl -- "$filter" 2>&1 | medians
if [ "$suites" != 0578 ]; then
  echo "through the seam, 64 MiB, one thread (median of 10):"
  cargo bench --bench providers --features openssl -- '/(seal|open)/64KiB|sha384' 2>&1 | medians
fi
cargo build --release -p envcrypt-cli --features openssl --quiet
T=$root/target/release/envcrypt
key=$work/bench.key
rm -f "$key"; $T keygen aes256 -o "$key"
K="raw-aes:bench:bench-key:$key"
head -c $((1 << 30)) /dev/urandom > "$work/1g.bin"
once() {
  sync; rm -f "$work/1g.enc"; cat "$work/1g.bin" > /dev/null
  local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.3f}')"
}
providers=$($T info | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["providers"]))')
declare -A best
keep() { best[$1]=$(python3 -c "print(min(${best[$1]:-999999}, $2))"); }
for _ in $(seq "$rounds"); do
  for suite in $suites; do
    for p in $providers; do
      keep "$suite/$p/-o" "$(once "$T" --provider "$p" encrypt -q -k "$K" --suite $suite -o "$work/1g.enc" "$work/1g.bin")"
      keep "$suite/$p/>" "$(once sh -c "'$T' --provider '$p' encrypt -q -k '$K' --suite $suite < '$work/1g.bin' > '$work/1g.enc'")"
    done
  done
done
$T decrypt -q -k "$K" -o "$work/1g.out" "$work/1g.enc"
cmp "$work/1g.bin" "$work/1g.out"
rm -f "$work/1g.bin" "$work/1g.enc" "$work/1g.out" "$key"
echo "file to file (1 GiB in the page cache; -o: synced output; >: stdout to a file, no sync), best of $rounds:"
for suite in $suites; do
  for p in $providers; do
    for how in -o '>'; do
      s=${best[$suite/$p/$how]}
      echo "  encrypt $suite $p $how: $s s = $(python3 -c "print(f'{(1 << 30) / $s / 1e9:.3f}')") GB/s"
    done
  done
done
echo "openssl speed sha384 64 KiB (after): $(speed) GB/s"
