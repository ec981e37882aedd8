/* Shared by the C tests of libenvcrypt (scripts/test-c.sh): CHECK macros that print
 * file:line (and the library's message for a result code) and exit 1, plus a few helpers. */
#ifndef ENVCRYPT_TEST_CHECK_H
#define ENVCRYPT_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <envcrypt.h>

static inline void check_fail_code(const char *file, int line, const char *expr,
                                   envcrypt_result got, envcrypt_result want) {
    char got_msg[128], want_msg[128];
    envcrypt_error_message(got, got_msg, sizeof got_msg);
    envcrypt_error_message(want, want_msg, sizeof want_msg);
    fprintf(stderr, "%s:%d: %s returned %u (%s), expected %u (%s)\n", file, line, expr,
            (unsigned)got, got_msg, (unsigned)want, want_msg);
    exit(1);
}

/* CHECK(cond): the condition must hold. */
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

/* CHECK_RC(call, code): the call must return this result code. */
#define CHECK_RC(call, want)                                                  \
    do {                                                                      \
        envcrypt_result check_rc_ = (call);                                   \
        if (check_rc_ != (envcrypt_result)(want))                             \
            check_fail_code(__FILE__, __LINE__, #call, check_rc_, (want));    \
    } while (0)

/* CHECK_OK(call): the call must succeed. */
#define CHECK_OK(call) CHECK_RC(call, ENVCRYPT_OK)

/* Memory that must be there. */
static inline void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* n bytes of a reproducible pattern that differs with seed. */
static inline uint8_t *pattern(size_t n, uint32_t seed) {
    uint8_t *p = xmalloc(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* The multi-MiB payload size: 3 MiB + 17, or 1 MiB + 17 when ENVCRYPT_TEST_QUICK is set
 * (scripts/test-c.sh sets it under valgrind, where the debug library runs ~30x slower). */
static inline size_t big_size(void) {
    const char *quick = getenv("ENVCRYPT_TEST_QUICK");
    return (quick != NULL && quick[0] != '\0' ? 1u : 3u) * 1024u * 1024u + 17u;
}

/* The wrapping key of the tests (also the interop tests': envcrypt-interop). */
static inline void test_key(uint8_t key[32]) {
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(i * 37 + 11);
}

/* A raw AES keyring over test_key. */
static inline envcrypt_keyring *test_keyring(void) {
    uint8_t key[32];
    test_key(key);
    envcrypt_keyring *kr = NULL;
    CHECK_OK(envcrypt_keyring_raw_aes_new("envcrypt-interop", "aes-256-wrapping-key", key,
                                          sizeof key, &kr));
    CHECK(kr != NULL);
    return kr;
}

/* A client over a fresh test keyring (the client keeps its own reference). */
static inline envcrypt_client *test_client(uint16_t suite, uint32_t frame_length) {
    envcrypt_keyring *kr = test_keyring();
    envcrypt_client *c = NULL;
    CHECK_OK(envcrypt_client_new_with(kr, suite, frame_length, &c));
    CHECK(c != NULL);
    envcrypt_keyring_free(kr);
    return c;
}

/* One-shot encryption into a buffer of the size the library asks for; *len = its length. */
static inline uint8_t *encrypt_alloc(const envcrypt_client *c, const envcrypt_context *ctx,
                                     const uint8_t *in, size_t in_len, size_t *len) {
    size_t need = 0;
    CHECK_RC(envcrypt_encrypt(c, ctx, in, in_len, NULL, 0, &need), ENVCRYPT_BUFFER_TOO_SMALL);
    CHECK(need > in_len);
    uint8_t *out = xmalloc(need);
    CHECK_OK(envcrypt_encrypt(c, ctx, in, in_len, out, need, len));
    CHECK(*len <= need);
    return out;
}

/* One-shot decryption into a buffer of the size the library asks for. */
static inline uint8_t *decrypt_alloc(const envcrypt_client *c, const envcrypt_context *expected,
                                     const uint8_t *in, size_t in_len, size_t *len) {
    size_t need = 0;
    envcrypt_result r = envcrypt_decrypt(c, expected, in, in_len, NULL, 0, &need);
    if (r == ENVCRYPT_OK) { /* an empty plaintext fits in nothing */
        CHECK(need == 0);
        *len = 0;
        return xmalloc(0);
    }
    CHECK_RC(r, ENVCRYPT_BUFFER_TOO_SMALL);
    uint8_t *out = xmalloc(need);
    CHECK_OK(envcrypt_decrypt(c, expected, in, in_len, out, need, len));
    CHECK(*len == need);
    return out;
}

#endif
