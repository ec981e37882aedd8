#!/usr/bin/env bash
# Builds the C API (crate envcrypt-ffi, release) and installs it under PREFIX:
#   PREFIX/include/envcrypt.h
#   PREFIX/lib/libenvcrypt.so (-> libenvcrypt.so.0, the soname), PREFIX/lib/libenvcrypt.a
#   PREFIX/lib/pkgconfig/envcrypt.pc
# Honours CARGO_TARGET_DIR (nothing is built twice), CARGO_FEATURES (features of
# envcrypt-ffi, e.g. "fips"; default: its defaults) and ENVCRYPT_C_PROFILE (`release`, the
# default, or `debug`: the test command installs the debug build it already has). Then:
#   cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs envcrypt)
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$(mkdir -p "$1" && cd "$1" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
features=()
if [[ -n "${CARGO_FEATURES:-}" ]]; then
    features=(--no-default-features --features "$CARGO_FEATURES")
fi
profile="${ENVCRYPT_C_PROFILE:-release}"
case "$profile" in
    release) cargo build --release --locked -p envcrypt-ffi --manifest-path "$root/Cargo.toml" "${features[@]}" ;;
    debug) cargo build --locked -p envcrypt-ffi --manifest-path "$root/Cargo.toml" "${features[@]}" ;;
    *) echo "ENVCRYPT_C_PROFILE must be release or debug" >&2; exit 2 ;;
esac
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/ffi/Cargo.toml" | head -1)"
install -d "$prefix/include" "$prefix/lib/pkgconfig"
install -m 0644 "$root/ffi/include/envcrypt.h" "$prefix/include/envcrypt.h"
install -m 0755 "$target/$profile/libenvcrypt_ffi.so" "$prefix/lib/libenvcrypt.so.0"
ln -sf libenvcrypt.so.0 "$prefix/lib/libenvcrypt.so"
install -m 0644 "$target/$profile/libenvcrypt_ffi.a" "$prefix/lib/libenvcrypt.a"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/ffi/envcrypt.pc.in" \
    > "$prefix/lib/pkgconfig/envcrypt.pc"
echo "installed envcrypt $version C API under $prefix"
