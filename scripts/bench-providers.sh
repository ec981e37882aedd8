#!/usr/bin/env bash
# Per-provider benchmarks in the default build (aws-lc-rs + RustCrypto) and the FIPS build,
# back to back, then the report (ratios to each provider's raw seal/open, FIPS vs default).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench providers --features rust-crypto
cargo bench --bench providers --features fips
python3 scripts/bench_report.py
