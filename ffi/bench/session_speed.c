/* Throughput of a C API session: 1 GiB (ENVCRYPT_BENCH_MIB) of plaintext from memory
 * through envcrypt_session_process with 1 MiB input and output buffers, encrypt then
 * decrypt; prints GiB/s of each (the output is consumed, not kept). Paired with
 * ffi/examples/stream_speed.rs (the Rust streaming API on the same work) in BENCHMARKS.md.
 *   cc -O2 ffi/bench/session_speed.c $(pkg-config --cflags --libs envcrypt) -o session_speed
 *   ./session_speed 0478|0578
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <envcrypt.h>

#define BUF (1u << 20)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void check(envcrypt_result r, const char *what) {
    if (r != ENVCRYPT_OK) {
        char msg[200];
        envcrypt_error_message(r, msg, sizeof msg);
        fprintf(stderr, "%s: %s\n", what, msg);
        exit(1);
    }
}

/* Pushes `len` bytes of `in` through `s` in BUF pieces; `sink` sees every output piece. */
static size_t run(envcrypt_session *s, const uint8_t *in, size_t len, uint8_t *out,
                  uint8_t *keep, size_t keep_cap) {
    size_t pos = 0, total = 0, w, r;
    while (pos < len) {
        size_t piece = len - pos < BUF ? len - pos : BUF;
        check(envcrypt_session_process(s, out, BUF, &w, in + pos, piece, &r), "process");
        if (keep && total + w <= keep_cap) memcpy(keep + total, out, w);
        total += w;
        pos += r;
    }
    while (!envcrypt_session_is_done(s)) {
        check(envcrypt_session_finish(s, out, BUF, &w), "finish");
        if (keep && total + w <= keep_cap) memcpy(keep + total, out, w);
        total += w;
    }
    return total;
}

int main(int argc, char **argv) {
    uint16_t suite = (argc > 1 && strcmp(argv[1], "0578") == 0) ? 0x0578 : 0x0478;
    const char *mib = getenv("ENVCRYPT_BENCH_MIB");
    size_t len = (size_t)(mib ? atol(mib) : 1024) << 20;
    uint8_t *plain = malloc(len), *out = malloc(BUF), *message = malloc(len + (64u << 20));
    if (!plain || !out || !message) return 1;
    for (size_t i = 0; i < len; i++) plain[i] = (uint8_t)(i * 31);
    uint8_t key[32] = {7};
    envcrypt_keyring *k;
    envcrypt_client *c;
    envcrypt_session *s;
    check(envcrypt_keyring_raw_aes_new("bench", "key", key, 32, &k), "keyring");
    check(envcrypt_client_new_with(k, suite, 65536, &c), "client");

    check(envcrypt_session_new_encrypt(c, NULL, &s), "session");
    double t0 = now();
    size_t mlen = run(s, plain, len, out, message, len + (64u << 20));
    double enc = now() - t0;
    envcrypt_session_free(s);

    check(envcrypt_session_new_decrypt(c, NULL, &s), "session");
    t0 = now();
    size_t plen = run(s, message, mlen, out, NULL, 0);
    double dec = now() - t0;
    envcrypt_session_free(s);
    if (plen != len) { fprintf(stderr, "length %zu != %zu\n", plen, len); return 1; }
    double gib = len / (double)(1u << 30);
    printf("c-session %04x encrypt %.3f GiB/s decrypt %.3f GiB/s\n", suite, gib / enc, gib / dec);
    envcrypt_client_free(c);
    envcrypt_keyring_free(k);
    free(plain); free(out); free(message);
    return 0;
}
