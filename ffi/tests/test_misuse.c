/* Misuse: NULL handles and pointers on every function, _free(NULL), small buffers, bad
 * UTF-8, bad key lengths, duplicate context keys, bad suites and paddings, wrong keys,
 * and the panic boundary. Out parameters stay untouched on failure. */
#include "check.h"

/* A pointer no call may write into an out parameter on failure. */
static int sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

static void null_parameters(void) {
    uint8_t key[32];
    test_key(key);
    envcrypt_keyring *kr = test_keyring();
    envcrypt_client *c = test_client(0x0478, 0);
    envcrypt_context *ctx = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    uint8_t buf[4096];
    size_t n = 7, m = 9;

    /* Keyrings. */
    envcrypt_keyring *ko = SENTINEL;
    CHECK_RC(envcrypt_keyring_raw_aes_new(NULL, "k", key, 32, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_aes_new("n", NULL, key, 32, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_aes_new("n", "k", NULL, 32, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_aes_new("n", "k", NULL, 0, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_aes_new("n", "k", key, 32, NULL), ENVCRYPT_NULL_PARAMETER);
    const char *pem = "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n";
    CHECK_RC(envcrypt_keyring_raw_rsa_new(NULL, "k", ENVCRYPT_RSA_OAEP_SHA256, pem, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_rsa_new("n", NULL, ENVCRYPT_RSA_OAEP_SHA256, pem, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_rsa_new("n", "k", ENVCRYPT_RSA_OAEP_SHA256, NULL, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_raw_rsa_new("n", "k", ENVCRYPT_RSA_OAEP_SHA256, pem, NULL), ENVCRYPT_NULL_PARAMETER);
    const envcrypt_keyring *children[2] = {kr, NULL};
    CHECK_RC(envcrypt_keyring_multi_new(NULL, children, 1, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_multi_new(kr, NULL, 1, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_multi_new(kr, children, 2, &ko), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_keyring_multi_new(kr, children, 1, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(ko == SENTINEL);

    /* Clients and contexts. */
    envcrypt_client *co = SENTINEL;
    CHECK_RC(envcrypt_client_new(NULL, &co), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_client_new(kr, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_client_new_with(NULL, 0x0478, 4096, &co), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_client_new_with(kr, 0x0478, 4096, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(co == SENTINEL);
    CHECK_RC(envcrypt_context_new(NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_context_add(NULL, "a", "b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_context_add(ctx, NULL, "b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_context_add(ctx, "a", NULL), ENVCRYPT_NULL_PARAMETER);

    /* One-shot calls: NULL buffers are fine only with length 0. */
    const uint8_t in[] = "x";
    CHECK_RC(envcrypt_encrypt(NULL, ctx, in, 1, buf, sizeof buf, &n), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_encrypt(c, ctx, NULL, 1, buf, sizeof buf, &n), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_encrypt(c, ctx, in, 1, NULL, sizeof buf, &n), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_encrypt(c, ctx, in, 1, buf, sizeof buf, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(n == 7);
    CHECK_OK(envcrypt_encrypt(c, NULL, NULL, 0, buf, sizeof buf, &n)); /* empty, no context */
    size_t mlen = n;
    uint8_t out[16];
    CHECK_RC(envcrypt_decrypt(NULL, ctx, buf, mlen, out, sizeof out, &m), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt(c, ctx, NULL, mlen, out, sizeof out, &m), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt(c, ctx, buf, mlen, NULL, sizeof out, &m), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt(c, ctx, buf, mlen, out, sizeof out, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(m == 9);
    CHECK_OK(envcrypt_decrypt(c, NULL, buf, mlen, NULL, 0, &m));
    CHECK(m == 0);
    m = 9;
    CHECK_RC(envcrypt_decrypt(c, NULL, NULL, 0, out, sizeof out, &m), ENVCRYPT_FORMAT);
    CHECK(m == 9);

    /* Files. */
    CHECK_RC(envcrypt_encrypt_file(NULL, ctx, "/nonexistent/a", "/nonexistent/b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_encrypt_file(c, ctx, NULL, "/nonexistent/b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_encrypt_file(c, ctx, "/nonexistent/a", NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt_file(NULL, ctx, "/nonexistent/a", "/nonexistent/b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt_file(c, ctx, NULL, "/nonexistent/b"), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_decrypt_file(c, ctx, "/nonexistent/a", NULL), ENVCRYPT_NULL_PARAMETER);

    /* Sessions. */
    envcrypt_session *so = SENTINEL;
    CHECK_RC(envcrypt_session_new_encrypt(NULL, ctx, &so), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_new_encrypt(c, ctx, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_new_decrypt(NULL, ctx, &so), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_new_decrypt(c, ctx, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(so == SENTINEL);
    envcrypt_session *s = NULL;
    CHECK_OK(envcrypt_session_new_encrypt(c, ctx, &s));
    size_t w = 5, r = 6;
    CHECK_RC(envcrypt_session_process(NULL, out, sizeof out, &w, in, 1, &r), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_process(s, NULL, sizeof out, &w, in, 1, &r), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_process(s, out, sizeof out, NULL, in, 1, &r), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_process(s, out, sizeof out, &w, NULL, 1, &r), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_process(s, out, sizeof out, &w, in, 1, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_finish(NULL, out, sizeof out, &w), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_finish(s, NULL, sizeof out, &w), ENVCRYPT_NULL_PARAMETER);
    CHECK_RC(envcrypt_session_finish(s, out, sizeof out, NULL), ENVCRYPT_NULL_PARAMETER);
    CHECK(w == 5 && r == 6);
    CHECK(!envcrypt_session_is_done(NULL));
    /* A NULL argument is checked before the session is touched: it still works. */
    CHECK_OK(envcrypt_session_process(s, NULL, 0, &w, in, 1, &r));
    CHECK(w == 0 && r == 1);
    uint8_t msg[1024];
    size_t got = 0;
    while (!envcrypt_session_is_done(s)) {
        CHECK(got < sizeof msg);
        CHECK_OK(envcrypt_session_finish(s, msg + got, sizeof msg - got, &w));
        got += w;
    }
    CHECK_OK(envcrypt_decrypt(c, NULL, msg, got, out, sizeof out, &m));
    CHECK(m == 1 && out[0] == 'x');
    envcrypt_session_free(s);

    /* _free(NULL) does nothing. */
    envcrypt_session_free(NULL);
    envcrypt_client_free(NULL);
    envcrypt_context_free(NULL);
    envcrypt_keyring_free(NULL);
    CHECK(envcrypt_error_message(ENVCRYPT_NULL_PARAMETER, NULL, 0) > 0);

    envcrypt_context_free(ctx);
    envcrypt_client_free(c);
    envcrypt_keyring_free(kr);
}

static void buffer_too_small(uint16_t suite) {
    envcrypt_client *c = test_client(suite, 4096);
    size_t n = 10000;
    uint8_t *plain = pattern(n, 1);
    uint8_t small[100];
    memset(small, 0xAB, sizeof small);
    size_t need = 0;
    CHECK_RC(envcrypt_encrypt(c, NULL, plain, n, small, sizeof small, &need), ENVCRYPT_BUFFER_TOO_SMALL);
    for (size_t i = 0; i < sizeof small; i++) CHECK(small[i] == 0xAB); /* nothing written */
    CHECK(need > n);
    size_t need0 = 0;
    CHECK_RC(envcrypt_encrypt(c, NULL, plain, n, NULL, 0, &need0), ENVCRYPT_BUFFER_TOO_SMALL);
    /* Unsigned messages have one length; signed ones vary by a few bytes (the signature). */
    CHECK(suite == 0x0578 || need0 == need);
    if (need0 > need) need = need0;
    uint8_t *msg = xmalloc(need);
    size_t mlen = 0;
    CHECK_OK(envcrypt_encrypt(c, NULL, plain, n, msg, need, &mlen));
    CHECK(mlen <= need);
    /* The size asked for suffices every time (signed messages vary in length). */
    for (int i = 0; i < 20; i++) {
        size_t l;
        uint8_t *again = xmalloc(need);
        CHECK_OK(envcrypt_encrypt(c, NULL, plain, n, again, need, &l));
        free(again);
    }
    /* Decrypt: the plaintext's length is reported, nothing written; then it fits. */
    uint8_t *back = xmalloc(n);
    memset(back, 0xCD, n);
    size_t plen = 0;
    CHECK_RC(envcrypt_decrypt(c, NULL, msg, mlen, back, n - 1, &plen), ENVCRYPT_BUFFER_TOO_SMALL);
    CHECK(plen == n);
    for (size_t i = 0; i < n; i++) CHECK(back[i] == 0xCD);
    CHECK_OK(envcrypt_decrypt(c, NULL, msg, mlen, back, plen, &plen));
    CHECK(plen == n && memcmp(back, plain, n) == 0);
    free(back);
    free(msg);
    free(plain);
    envcrypt_client_free(c);
}

static void bad_arguments(void) {
    uint8_t key[33] = {0};
    envcrypt_keyring *kr = SENTINEL;
    /* Key lengths. */
    const size_t bad[] = {0, 1, 15, 17, 23, 31, 33};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_RC(envcrypt_keyring_raw_aes_new("n", "k", key, bad[i], &kr), ENVCRYPT_INVALID_ARGUMENT);
    CHECK(kr == SENTINEL);
    const size_t good[] = {16, 24, 32};
    for (size_t i = 0; i < 3; i++) {
        kr = NULL;
        CHECK_OK(envcrypt_keyring_raw_aes_new("n", "k", key, good[i], &kr));
        envcrypt_client *c = NULL;
        CHECK_OK(envcrypt_client_new(kr, &c));
        size_t l;
        uint8_t *m = encrypt_alloc(c, NULL, key, 5, &l);
        free(m);
        envcrypt_client_free(c);
        envcrypt_keyring_free(kr);
    }
    /* Invalid UTF-8 in every string argument. */
    const char *bad_utf8[] = {"\xff", "ok\xc3\x28", "\xed\xa0\x80" /* a surrogate */, "\xc0\xaf"};
    kr = test_keyring();
    envcrypt_client *c = test_client(0, 0);
    envcrypt_context *ctx = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    envcrypt_keyring *ko = SENTINEL;
    for (size_t i = 0; i < 4; i++) {
        CHECK_RC(envcrypt_keyring_raw_aes_new(bad_utf8[i], "k", key, 32, &ko), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_keyring_raw_aes_new("n", bad_utf8[i], key, 32, &ko), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_keyring_raw_rsa_new(bad_utf8[i], "k", ENVCRYPT_RSA_OAEP_SHA256, "x", &ko), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_keyring_raw_rsa_new("n", "k", ENVCRYPT_RSA_OAEP_SHA256, bad_utf8[i], &ko), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_context_add(ctx, bad_utf8[i], "v"), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_context_add(ctx, "k", bad_utf8[i]), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_encrypt_file(c, NULL, bad_utf8[i], "out"), ENVCRYPT_INVALID_UTF8);
        CHECK_RC(envcrypt_decrypt_file(c, NULL, "in", bad_utf8[i]), ENVCRYPT_INVALID_UTF8);
    }
    CHECK(ko == SENTINEL);
    /* Context keys: a duplicate or an empty key is refused; the first value stays. */
    CHECK_OK(envcrypt_context_add(ctx, "purpose", "archive"));
    CHECK_RC(envcrypt_context_add(ctx, "purpose", "archive"), ENVCRYPT_INVALID_ARGUMENT);
    CHECK_RC(envcrypt_context_add(ctx, "purpose", "other"), ENVCRYPT_INVALID_ARGUMENT);
    CHECK_RC(envcrypt_context_add(ctx, "", "v"), ENVCRYPT_INVALID_ARGUMENT);
    CHECK_OK(envcrypt_context_add(ctx, "k", "")); /* an empty value is fine */
    {
        envcrypt_context *want = NULL;
        CHECK_OK(envcrypt_context_new(&want));
        CHECK_OK(envcrypt_context_add(want, "purpose", "archive"));
        size_t l, pl;
        uint8_t *m = encrypt_alloc(c, ctx, key, 3, &l);
        uint8_t p[8];
        CHECK_OK(envcrypt_decrypt(c, want, m, l, p, sizeof p, &pl));
        free(m);
        envcrypt_context_free(want);
    }
    /* Suites and RSA paddings out of range. */
    envcrypt_client *co = SENTINEL;
    const uint16_t suites[] = {0x0001, 0x1234, 0xffff};
    for (size_t i = 0; i < 3; i++)
        CHECK_RC(envcrypt_client_new_with(kr, suites[i], 0, &co), ENVCRYPT_INVALID_ARGUMENT);
    CHECK(co == SENTINEL);
    CHECK_RC(envcrypt_keyring_raw_rsa_new("n", "k", 0, "x", &ko), ENVCRYPT_INVALID_ARGUMENT);
    CHECK_RC(envcrypt_keyring_raw_rsa_new("n", "k", 6, "x", &ko), ENVCRYPT_INVALID_ARGUMENT);
    /* Not a PEM key: refused (whatever the code), no handle. */
    envcrypt_result rc = envcrypt_keyring_raw_rsa_new("n", "k", ENVCRYPT_RSA_OAEP_SHA256, "not a key", &ko);
    CHECK(rc != ENVCRYPT_OK && rc != ENVCRYPT_PANIC && ko == SENTINEL);
    envcrypt_context_free(ctx);
    envcrypt_client_free(c);
    envcrypt_keyring_free(kr);
}

/* Another key, or a multi-keyring holding the right one. */
static void keys(void) {
    uint8_t other[32];
    test_key(other);
    other[31] ^= 1;
    envcrypt_keyring *right = test_keyring(), *wrong = NULL, *multi = NULL;
    CHECK_OK(envcrypt_keyring_raw_aes_new("envcrypt-interop", "aes-256-wrapping-key", other, 32, &wrong));
    envcrypt_client *cr = NULL, *cw = NULL, *cm = NULL;
    CHECK_OK(envcrypt_client_new_with(right, 0x0478, 0, &cr));
    CHECK_OK(envcrypt_client_new_with(wrong, 0x0478, 0, &cw));
    size_t l, pl = 3;
    uint8_t p[16];
    uint8_t *m = encrypt_alloc(cr, NULL, other, 16, &l);
    CHECK_RC(envcrypt_decrypt(cw, NULL, m, l, p, sizeof p, &pl), ENVCRYPT_AUTHENTICATION);
    CHECK(pl == 3);
    /* Multi: generated by `wrong`, also wrapped by `right`: each opens it alone. */
    const envcrypt_keyring *children[] = {right};
    CHECK_OK(envcrypt_keyring_multi_new(wrong, children, 1, &multi));
    envcrypt_keyring_free(right);
    envcrypt_keyring_free(wrong);
    CHECK_OK(envcrypt_client_new(multi, &cm));
    envcrypt_keyring_free(multi);
    free(m);
    m = encrypt_alloc(cm, NULL, other, 16, &l);
    CHECK_OK(envcrypt_decrypt(cr, NULL, m, l, p, sizeof p, &pl));
    CHECK(pl == 16 && memcmp(p, other, 16) == 0);
    CHECK_OK(envcrypt_decrypt(cw, NULL, m, l, p, sizeof p, &pl));
    free(m);
    /* A multi-keyring with no children is its generator. */
    envcrypt_keyring *lone = NULL, *gen = test_keyring();
    CHECK_OK(envcrypt_keyring_multi_new(gen, NULL, 0, &lone));
    envcrypt_keyring_free(lone);
    envcrypt_keyring_free(gen);
    envcrypt_client_free(cm);
    envcrypt_client_free(cw);
    envcrypt_client_free(cr);
}

static void panic_boundary(void) {
    for (int i = 0; i < 3; i++) CHECK_RC(envcrypt_test_force_panic(), ENVCRYPT_PANIC);
    /* The process goes on, and the library still works. */
    envcrypt_client *c = test_client(0x0578, 0);
    const uint8_t in[] = "after the panic";
    size_t l, pl;
    uint8_t *m = encrypt_alloc(c, NULL, in, sizeof in, &l);
    uint8_t *p = decrypt_alloc(c, NULL, m, l, &pl);
    CHECK(pl == sizeof in && memcmp(p, in, pl) == 0);
    free(p);
    free(m);
    envcrypt_client_free(c);
    char msg[128];
    envcrypt_error_message(ENVCRYPT_PANIC, msg, sizeof msg);
    CHECK(strstr(msg, "panic") != NULL);
}

int main(void) {
    null_parameters();
    buffer_too_small(0x0478);
    buffer_too_small(0x0578);
    bad_arguments();
    keys();
    panic_boundary();
    printf("test_misuse: ok\n");
    return 0;
}
