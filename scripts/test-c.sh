#!/usr/bin/env bash
# Tests the INSTALLED C API (scripts/install-c.sh PREFIX) from C, C++ and Python, through
# pkg-config, with no Rust in the tests themselves:
#   - each C program of ffi/tests/test_*.c built twice: with ASan+UBSan (leaks detected),
#     and plain under valgrind (definite leaks and memory errors fail); test_misuse also
#     linked statically (libenvcrypt.a with the .pc file's Libs.private);
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
mkdir -p "$work/bin" "$work/logs"
passed=0
started=$SECONDS
# step NAME CMD...: runs CMD with its output in $work/logs/NAME.log; prints one line with the
# time. CMD runs in the background and is waited for, so that `set -e` holds inside the
# shell functions used as steps (it is ignored in an `if` condition).
step() {
    local name=$1 log t0=${EPOCHREALTIME/./} us pid status=0
    log="$work/logs/$(tr -c 'A-Za-z0-9_.+\n-' '-' <<<"$name" | tr -s '-').log"
    shift
    "$@" >"$log" 2>&1 &
    pid=$!
    wait "$pid" || status=$?
    us=$((${EPOCHREALTIME/./} - t0))
    if [[ $status -ne 0 ]]; then
        printf 'FAIL %-46s %4d.%02d s (exit %d)\n' "$name" $((us / 1000000)) $((us / 10000 % 100)) "$status"
        echo "---- last lines of $log:" >&2
        tail -n 60 "$log" >&2
        exit 1
    fi
    printf 'ok   %-46s %4d.%02d s\n' "$name" $((us / 1000000)) $((us / 10000 % 100))
    passed=$((passed + 1))
}

# The interop peer first: fail before the long steps if it is missing.
python="${ENVCRYPT_PYTHON:-$root/target/esdk-venv/bin/python}"
if ! "$python" -c 'import aws_encryption_sdk as e, aws_cryptographic_material_providers; assert e.__version__.startswith("4."), e.__version__' >"$work/logs/python-check.log" 2>&1; then
    echo "test-c: the Python ESDK 4.x is not usable at ENVCRYPT_PYTHON=$python:" >&2
    cat "$work/logs/python-check.log" >&2
    echo "install it with: python3 -m venv target/esdk-venv && target/esdk-venv/bin/pip install 'aws-encryption-sdk[MPL]>=4,<5'" >&2
    exit 1
fi
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

# --- The static library: linked with the .pc file's private libraries ----------------------
pc_static=()
for lib in $(pkg-config --static --libs-only-l envcrypt); do
    [[ $lib == -lenvcrypt ]] || pc_static+=("$lib")
done
step "test_misuse: build (static libenvcrypt.a)" gcc "${cwarn[@]}" -g "${pc_cflags[@]}" \
    "$tests/test_misuse.c" -o "$work/bin/test_misuse.static" \
    -L"$prefix/lib" -Wl,-Bstatic -lenvcrypt -Wl,-Bdynamic "${pc_static[@]}"
static_run() {
    if ldd "$work/bin/test_misuse.static" | grep libenvcrypt; then
        echo "linked to the shared library, not the static one" >&2
        return 1
    fi
    "$work/bin/test_misuse.static"
}
step "test_misuse: run (static)" static_run

# --- C++ ------------------------------------------------------------------------------------
step "header_cpp: build (g++ -std=c++17)" g++ -std=c++17 -Wall -Wextra -Werror -g \
    "${pc_cflags[@]}" "$tests/header_cpp.cpp" -o "$work/bin/header_cpp" "${pc_libs[@]}"
step "header_cpp: run (valgrind)" valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite "$work/bin/header_cpp"

# --- Interop: the Python ESDK 4.x and the envcrypt tool, both directions ----------------------
bin="${ENVCRYPT_BIN:-$target/debug/envcrypt}"
if [[ ! -x "$bin" ]]; then
    [[ -z "${ENVCRYPT_BIN:-}" ]] || { echo "test-c: ENVCRYPT_BIN=$bin is not executable" >&2; exit 1; }
    step "envcrypt tool: build (cargo build -p envcrypt-cli)" \
        cargo build --locked -q -p envcrypt-cli --manifest-path "$root/Cargo.toml"
fi
io="$work/interop"
mkdir -p "$io"
tool="$work/bin/interop_tool"
keyfile="$io/wrapping.key"
# check.h's test_key, as raw bytes (the tool reads 32 raw bytes or their base64).
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 37 + 11) & 255 for i in range(32)))' >"$keyfile"
chmod 600 "$keyfile"
keyring="raw-aes:envcrypt-interop:aes-256-wrapping-key:$keyfile"
head -c $((3 * 1024 * 1024 + 5)) /dev/urandom >"$io/big.bin"
head -c 1000 /dev/urandom >"$io/small.bin"
: >"$io/empty.bin"
inputs=(big small empty)
suites=(0478 0578)

c_encrypt() {
    local suite api in
    for suite in "${suites[@]}"; do
        for api in oneshot session; do
            for in in "${inputs[@]}"; do
                "$tool" encrypt "$suite" 0 "$api" "$io/$in.bin" "$io/c-$suite-$api-$in.enc" \
                    purpose=interop origin=c
            done
        done
        "$tool" encrypt "$suite" 4096 session "$io/big.bin" "$io/c-$suite-f4096-big.enc" purpose=interop origin=c
    done
}

# The peer's job: decrypt every C message; encrypt big/small/empty with both suites and
# several frame lengths (0: non-framed).
peer_job() {
    python3 - "$io" <<'PY'
import glob, json, os, sys
io = sys.argv[1]
key = {"namespace": "envcrypt-interop", "name": "aes-256-wrapping-key",
       "hex": bytes((i * 37 + 11) & 255 for i in range(32)).hex()}
cases = []
for enc in sorted(glob.glob(os.path.join(io, "c-*.enc"))):
    name = os.path.basename(enc)[:-4]
    cases.append({"id": "dec-" + name, "op": "decrypt", "key": key, "input": enc,
                  "output": os.path.join(io, "py-dec-" + name + ".bin")})
for suite in ("0478", "0578"):
    for frame in (0, 4096, 65536):
        for inp in ("big", "small", "empty"):
            name = "%s-f%d-%s" % (suite, frame, inp)
            cases.append({"id": "enc-" + name, "op": "encrypt", "key": key, "suite": suite,
                          "frame_length": frame,
                          "context": {"purpose": "interop", "origin": "python"},
                          "input": os.path.join(io, inp + ".bin"),
                          "output": os.path.join(io, "py-" + name + ".enc")})
json.dump({"cases": cases}, open(os.path.join(io, "job.json"), "w"))
PY
}

python_peer() {
    peer_job
    "$python" "$root/tests/peer/esdk_peer.py" "$io/job.json" "$io/results.json"
    python3 - "$io" <<'PY'
import json, os, sys
io = sys.argv[1]
report = json.load(open(os.path.join(io, "results.json")))
print("aws-encryption-sdk", report["esdk_version"], "on Python", report["python"])
bad = [r for r in report["results"] if not r["ok"]]
for r in bad:
    print("case %s failed: %s: %s" % (r["id"], r.get("error_type"), r.get("error")))
for r in report["results"]:
    if r["ok"] and r["id"].startswith("dec-c-"):
        assert r["context"].get("purpose") == "interop" and r["context"].get("origin") == "c", r
sys.exit(1 if bad else 0)
PY
    local f name
    for f in "$io"/py-dec-c-*.bin; do
        name=$(basename "$f" .bin)
        cmp "$f" "$io/${name##*-}.bin"
    done
}

c_decrypt_python() {
    local f api
    for f in "$io"/py-*.enc; do
        for api in oneshot session; do
            "$tool" decrypt "$api" "$f" "$f.$api.c.bin" purpose=interop origin=python
            cmp "$f.$api.c.bin" "$io/$(basename "$f" .enc | sed 's/.*-//').bin"
        done
    done
    # A context the messages lack: refused (exit 1), by both APIs.
    for api in oneshot session; do
        if "$tool" decrypt "$api" "$io/py-0578-f65536-small.enc" "$io/refused.bin" origin=c; then
            echo "a context mismatch was not refused ($api)" >&2
            return 1
        fi
    done
}

tool_decrypt_c() {
    local f
    for f in "$io"/c-*.enc; do
        "$bin" decrypt -q -k "$keyring" -c purpose=interop -c origin=c -o "$f.tool.bin" "$f"
        cmp "$f.tool.bin" "$io/$(basename "$f" .enc | sed 's/.*-//').bin"
    done
}

c_decrypt_tool() {
    local suite frame in api
    for suite in "${suites[@]}"; do
        for frame in 4096 65536; do
            for in in "${inputs[@]}"; do
                "$bin" encrypt -q -k "$keyring" --suite "$suite" --frame-length "$frame" \
                    -c purpose=interop -c origin=tool -o "$io/tool-$suite-$frame-$in.enc" "$io/$in.bin"
                for api in oneshot session; do
                    "$tool" decrypt "$api" "$io/tool-$suite-$frame-$in.enc" \
                        "$io/tool-$suite-$frame-$in.$api.bin" purpose=interop origin=tool
                    cmp "$io/tool-$suite-$frame-$in.$api.bin" "$io/$in.bin"
                done
            done
        done
    done
}

step "interop_tool: build" gcc "${cwarn[@]}" -g "${pc_cflags[@]}" "$tests/interop_tool.c" \
    -o "$tool" "${pc_libs[@]}"
step "interop: C encrypts (both suites, both APIs)" c_encrypt
step "interop: Python ESDK decrypts C, encrypts" python_peer
step "interop: C decrypts the Python ESDK's" c_decrypt_python
step "interop: the tool decrypts C's" tool_decrypt_c
step "interop: C decrypts the tool's" c_decrypt_tool

# --- Python ctypes ----------------------------------------------------------------------------
mkdir -p "$work/run-ctypes"
step "ctypes_roundtrip.py (system python3)" python3 "$tests/ctypes_roundtrip.py" \
    "$prefix/lib/libenvcrypt.so" "$work/run-ctypes"

echo "C tests: $passed passed ($((SECONDS - started)) s)"
