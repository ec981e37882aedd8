#!/usr/bin/env python3
"""The installed libenvcrypt.so from Python's ctypes alone (no Rust, no ESDK): a buffer
through envcrypt_encrypt / envcrypt_decrypt, a file through envcrypt_encrypt_file /
envcrypt_decrypt_file, and a few error codes.

Usage: ctypes_roundtrip.py PREFIX/lib/libenvcrypt.so EMPTY_DIR
"""

import ctypes
import os
import sys

OK, NULL_PARAMETER, BUFFER_TOO_SMALL, INVALID_ARGUMENT = 0, 100, 101, 105
POLICY, AUTHENTICATION, IO = 4000, 3000, 6000


def load(path):
    lib = ctypes.CDLL(path)
    p, size, u8p = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint8)
    res = ctypes.c_uint32
    sigs = {
        "envcrypt_version": (ctypes.c_char_p, []),
        "envcrypt_error_message": (size, [res, ctypes.c_char_p, size]),
        "envcrypt_keyring_raw_aes_new": (
            res, [ctypes.c_char_p, ctypes.c_char_p, u8p, size, ctypes.POINTER(p)]),
        "envcrypt_keyring_free": (None, [p]),
        "envcrypt_client_new_with": (
            res, [p, ctypes.c_uint16, ctypes.c_uint32, ctypes.POINTER(p)]),
        "envcrypt_client_free": (None, [p]),
        "envcrypt_context_new": (res, [ctypes.POINTER(p)]),
        "envcrypt_context_add": (res, [p, ctypes.c_char_p, ctypes.c_char_p]),
        "envcrypt_context_free": (None, [p]),
        "envcrypt_encrypt": (res, [p, p, u8p, size, u8p, size, ctypes.POINTER(size)]),
        "envcrypt_decrypt": (res, [p, p, u8p, size, u8p, size, ctypes.POINTER(size)]),
        "envcrypt_encrypt_file": (res, [p, p, ctypes.c_char_p, ctypes.c_char_p]),
        "envcrypt_decrypt_file": (res, [p, p, ctypes.c_char_p, ctypes.c_char_p]),
    }
    for name, (restype, argtypes) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def message(lib, code):
    buf = ctypes.create_string_buffer(256)
    lib.envcrypt_error_message(code, buf, len(buf))
    return buf.value.decode()


def check(lib, what, got, want=OK):
    if got != want:
        sys.exit("ctypes_roundtrip: %s returned %d (%s), expected %d (%s)"
                 % (what, got, message(lib, got), want, message(lib, want)))


def as_u8(data):
    return (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")


def encrypt(lib, client, ctx, data):
    need = ctypes.c_size_t(0)
    check(lib, "encrypt (size)",
          lib.envcrypt_encrypt(client, ctx, as_u8(data), len(data), None, 0,
                               ctypes.byref(need)), BUFFER_TOO_SMALL)
    out = (ctypes.c_uint8 * need.value)()
    n = ctypes.c_size_t(0)
    check(lib, "encrypt", lib.envcrypt_encrypt(client, ctx, as_u8(data), len(data), out,
                                               need.value, ctypes.byref(n)))
    return bytes(out[: n.value])


def decrypt(lib, client, ctx, message_bytes, want=OK):
    cap = len(message_bytes)  # the plaintext is shorter than its message
    out = (ctypes.c_uint8 * cap)()
    n = ctypes.c_size_t(0)
    check(lib, "decrypt", lib.envcrypt_decrypt(client, ctx, as_u8(message_bytes),
                                               len(message_bytes), out, cap,
                                               ctypes.byref(n)), want)
    return bytes(out[: n.value]) if want == OK else None


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ctypes_roundtrip.py LIBENVCRYPT_SO EMPTY_DIR")
    lib, work = load(sys.argv[1]), sys.argv[2]
    version = lib.envcrypt_version().decode()
    assert version, "empty version"

    key = bytes((i * 37 + 11) & 255 for i in range(32))
    keyring, client, ctx, wrong = (ctypes.c_void_p() for _ in range(4))
    check(lib, "keyring", lib.envcrypt_keyring_raw_aes_new(
        b"envcrypt-interop", b"aes-256-wrapping-key", as_u8(key), 32, ctypes.byref(keyring)))
    check(lib, "keyring with a 31-byte key", lib.envcrypt_keyring_raw_aes_new(
        b"n", b"k", as_u8(key), 31, ctypes.byref(ctypes.c_void_p())), INVALID_ARGUMENT)
    check(lib, "client", lib.envcrypt_client_new_with(keyring, 0x0578, 4096,
                                                      ctypes.byref(client)))
    lib.envcrypt_keyring_free(keyring)
    check(lib, "client(NULL)", lib.envcrypt_client_new_with(None, 0, 0, ctypes.byref(wrong)),
          NULL_PARAMETER)
    check(lib, "context", lib.envcrypt_context_new(ctypes.byref(ctx)))
    check(lib, "context add", lib.envcrypt_context_add(ctx, b"purpose", b"ctypes"))
    check(lib, "context", lib.envcrypt_context_new(ctypes.byref(wrong)))
    check(lib, "context add", lib.envcrypt_context_add(wrong, b"purpose", b"other"))

    # A buffer, several sizes.
    for size in (0, 1, 4096, 100_003):
        data = os.urandom(size)
        msg = encrypt(lib, client, ctx, data)
        assert msg[:3] == b"\x02\x05\x78", msg[:3]
        assert decrypt(lib, client, ctx, msg) == data, "buffer of %d bytes" % size
        decrypt(lib, client, wrong, msg, POLICY)
        tampered = bytearray(msg)
        tampered[len(msg) // 2] ^= 1
        decrypt(lib, client, None, bytes(tampered), AUTHENTICATION)

    # A file.
    plain, enc, out = (os.path.join(work, n) for n in ("plain.bin", "plain.enc", "copy.bin"))
    data = os.urandom(3 * 1024 * 1024 + 11)
    with open(plain, "wb") as f:
        f.write(data)
    check(lib, "encrypt_file", lib.envcrypt_encrypt_file(client, ctx, plain.encode(),
                                                         enc.encode()))
    check(lib, "decrypt_file", lib.envcrypt_decrypt_file(client, ctx, enc.encode(),
                                                         out.encode()))
    with open(out, "rb") as f:
        assert f.read() == data, "the file came back different"
    check(lib, "decrypt_file onto an existing file",
          lib.envcrypt_decrypt_file(client, ctx, enc.encode(), out.encode()), IO)
    with open(enc, "rb") as f:
        assert decrypt(lib, client, ctx, f.read()) == data
    os.unlink(out)
    check(lib, "decrypt_file with a wrong context",
          lib.envcrypt_decrypt_file(client, wrong, enc.encode(), out.encode()), POLICY)
    assert not os.path.exists(out)

    lib.envcrypt_context_free(wrong)
    lib.envcrypt_context_free(ctx)
    lib.envcrypt_client_free(client)
    print("ctypes_roundtrip: ok (envcrypt %s)" % version)


if __name__ == "__main__":
    main()
