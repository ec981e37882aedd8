#!/usr/bin/env bash
# Regenerates the C header from ffi/src with cbindgen into a temporary place and compares it
# with the committed ffi/include/envcrypt.h: exits 1 on any difference (the committed header
# is the contract C users build against). `--write` updates the committed header instead.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cbindgen >/dev/null || { echo "cbindgen is missing (apt-get install cbindgen)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cbindgen --quiet --config ffi/cbindgen.toml --crate envcrypt-ffi --output "$tmp/envcrypt.h" ffi
if [[ "${1:-}" == "--write" ]]; then
    cp "$tmp/envcrypt.h" ffi/include/envcrypt.h
    echo "wrote ffi/include/envcrypt.h"
    exit 0
fi
if ! diff -u ffi/include/envcrypt.h "$tmp/envcrypt.h"; then
    echo "ffi/include/envcrypt.h is stale: run scripts/check-c-header.sh --write and commit it" >&2
    exit 1
fi
echo "ffi/include/envcrypt.h matches ffi/src"
