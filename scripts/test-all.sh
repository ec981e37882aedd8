#!/usr/bin/env bash
# Runs every test of envcrypt on a fresh machine: installs what the tests need (Python ESDK
# peer in a venv, cargo-fuzz), checks formatting, lints and docs, builds once per feature
# configuration, runs the test suites and a short fuzzing pass. Fails loudly on anything
# missing. Usage: scripts/test-all.sh   (FUZZ_SECONDS=30 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fuzz_seconds=${FUZZ_SECONDS:-30}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS"; }

step "Python ESDK peer (venv in target/esdk-venv)"
venv="$root/target/esdk-venv"
if ! "$venv/bin/python" -c 'import aws_encryption_sdk, aws_cryptographic_material_providers' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aws-encryption-sdk[MPL]>=4,<5"
fi
"$venv/bin/python" -c 'import aws_encryption_sdk; print("aws-encryption-sdk", aws_encryption_sdk.__version__)'
export ENVCRYPT_PYTHON="$venv/bin/python"

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

step "vectors"
export ENVCRYPT_ESDK_VECTORS=${ENVCRYPT_ESDK_VECTORS:-$root/../shared/vectors/esdk}
test -f "$ENVCRYPT_ESDK_VECTORS/commitment_known_answer_tests.json" \
  || { echo "conformance vectors missing at $ENVCRYPT_ESDK_VECTORS" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "cargo clippy (all targets, all features)"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

step "cargo test --release (default features)"
cargo test --release

step "benchmarks compile"
cargo bench --no-run

step "fuzz: header and decrypt targets, ${fuzz_seconds}s each"
(cd fuzz && for t in header decrypt; do
  cargo fuzz run -s none "$t" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=2048
done)

step "all green"
