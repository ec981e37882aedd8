#!/usr/bin/env bash
# Tests the INSTALLED C API (scripts/install-c.sh PREFIX) from C, C++ and Python, through
# pkg-config, with no Rust in the tests themselves:
#   - each C program of ffi/tests/test_*.c built twice: with ASan+UBSan (leaks detected),
#     and plain under valgrind (definite leaks and memory errors fail);
#   - ffi/tests/header_cpp.cpp: the header compiles and links as C++17;
#   - interop: ffi/tests/interop_tool.c against the Python ESDK 4.x (tests/peer/esdk_peer.py)
#     and the envcrypt tool, both directions, both suites, a multi-MiB payload;
#   - ffi/tests/ctypes_roundtrip.py: the shared library from Python's ctypes.
# Usage: scripts/test-c.sh PREFIX
#   ENVCRYPT_PYTHON  Python with aws-encryption-sdk 4.x (default target/esdk-venv/bin/python)
#   ENVCRYPT_BIN     the envcrypt tool (default target/debug/envcrypt, built if missing)
#   CARGO_TARGET_DIR where the build directory target/c-tests goes (default target)
# Needs gcc, g++, valgrind, pkg-config and python3. Ends with "C tests: N passed".
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 PREFIX   (after scripts/install-c.sh PREFIX)" >&2
    exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$(cd "$1" && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
[[ "$target" = /* ]] || target="$root/$target"
tests="$root/ffi/tests"
work="$target/c-tests"

if [[ ! -f "$prefix/lib/pkgconfig/envcrypt.pc" || ! -e "$prefix/lib/libenvcrypt.so" ]]; then
    echo "test-c: no envcrypt installed under $prefix; run scripts/install-c.sh $1 first" >&2
    exit 1
fi
for tool in gcc g++ valgrind pkg-config python3; do
    command -v "$tool" >/dev/null || { echo "test-c: $tool is required" >&2; exit 1; }
done

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
read -r -a pc_cflags <<<"$(pkg-config --cflags envcrypt)"
read -r -a pc_libs <<<"$(pkg-config --libs envcrypt)"
cwarn=(-Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L)
asan=(-fsanitize=address,undefined -fno-omit-frame-pointer -g)

rm -rf "$work"
mkdir -p "$work/bin"
passed=0
started=$SECONDS
# step NAME CMD...: runs CMD with its output in $work/NAME.log; prints one line with the time.
step() {
    local name=$1 log="$work/$1.log" t0=${EPOCHREALTIME/./} us
    shift
    if ! "$@" >"$log" 2>&1; then
        us=$((${EPOCHREALTIME/./} - t0))
        printf 'FAIL %-44s %4d.%02d s\n' "$name" $((us / 1000000)) $((us / 10000 % 100))
        echo "---- last lines of $log:" >&2
        tail -n 60 "$log" >&2
        exit 1
    fi
    us=$((${EPOCHREALTIME/./} - t0))
    printf 'ok   %-44s %4d.%02d s\n' "$name" $((us / 1000000)) $((us / 10000 % 100))
    passed=$((passed + 1))
}

echo "C tests of envcrypt $(pkg-config --modversion envcrypt) under $prefix"

# --- C test programs: ASan+UBSan, then valgrind -----------------------------------------
# Under valgrind the (debug) library runs ~30x slower: ENVCRYPT_TEST_QUICK makes the
# multi-MiB payloads 1 MiB + 17 bytes there (ASan runs them at 3 MiB + 17).
# The Rust library is not instrumented; the ASan runtime linked into each program intercepts
# malloc for the whole process (the library's allocations included), so leak detection
# covers what C leaks through the API. No LD_PRELOAD is needed: the executable itself
# carries the runtime and loads first.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=98
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# test_misuse panics on purpose: keep its log to the panic's one line.
export RUST_BACKTRACE=0
for src in "$tests"/test_*.c; do
    name=$(basename "$src" .c)
    step "$name: build (asan+ubsan)" gcc "${cwarn[@]}" "${asan[@]}" "${pc_cflags[@]}" "$src" \
        -o "$work/bin/$name.asan" "${pc_libs[@]}"
    step "$name: build (plain)" gcc "${cwarn[@]}" -g "${pc_cflags[@]}" "$src" \
        -o "$work/bin/$name" "${pc_libs[@]}"
done
for src in "$tests"/test_*.c; do
    name=$(basename "$src" .c)
    mkdir -p "$work/run-$name.asan" "$work/run-$name.vg"
    step "$name: run (asan+ubsan)" "$work/bin/$name.asan" "$work/run-$name.asan"
    step "$name: run (valgrind)" env ENVCRYPT_TEST_QUICK=1 valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite "$work/bin/$name" "$work/run-$name.vg"
done

echo "C tests: $passed passed ($((SECONDS - started)) s)"
