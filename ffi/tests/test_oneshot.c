/* One-shot encrypt/decrypt round trips for both suites, sizes, contexts; the version and
 * the error messages. */
#include "check.h"

#define KIB 1024u

static void round_trip(uint16_t suite, uint32_t frame, size_t n, const envcrypt_context *ctx) {
    envcrypt_client *c = test_client(suite, frame);
    uint8_t *plain = pattern(n, (uint32_t)n + suite);
    size_t mlen = 0, plen = 0;
    uint8_t *msg = encrypt_alloc(c, ctx, plain, n, &mlen);
    CHECK(mlen > n);
    /* The message starts with version 2 and the suite. */
    CHECK(msg[0] == 0x02 && msg[1] == (uint8_t)(suite >> 8) && msg[2] == (uint8_t)suite);
    uint8_t *back = decrypt_alloc(c, ctx, msg, mlen, &plen);
    CHECK(plen == n);
    CHECK(n == 0 || memcmp(back, plain, n) == 0);
    /* A second client over another keyring object with the same key opens it too. */
    envcrypt_client *other = test_client(0, 0);
    free(back);
    back = decrypt_alloc(other, NULL, msg, mlen, &plen);
    CHECK(plen == n && (n == 0 || memcmp(back, plain, n) == 0));
    envcrypt_client_free(other);
    free(back);
    free(msg);
    free(plain);
    envcrypt_client_free(c);
}

static void default_client(void) {
    envcrypt_keyring *kr = test_keyring();
    envcrypt_client *c = NULL;
    CHECK_OK(envcrypt_client_new(kr, &c));
    envcrypt_keyring_free(kr); /* the client keeps the keyring alive */
    const uint8_t in[] = "default settings";
    size_t mlen = 0, plen = 0;
    uint8_t *msg = encrypt_alloc(c, NULL, in, sizeof in, &mlen);
    CHECK(msg[1] == 0x05 && msg[2] == 0x78); /* the default suite is 0x0578 */
    uint8_t *back = decrypt_alloc(c, NULL, msg, mlen, &plen);
    CHECK(plen == sizeof in && memcmp(back, in, sizeof in) == 0);
    free(back);
    free(msg);
    envcrypt_client_free(c);
}

static void contexts(void) {
    envcrypt_context *ctx = NULL, *wrong = NULL, *subset = NULL, *extra = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    CHECK_OK(envcrypt_context_add(ctx, "purpose", "archive"));
    CHECK_OK(envcrypt_context_add(ctx, "site", "h\xc3\xb4pital")); /* UTF-8 is fine */
    CHECK_OK(envcrypt_context_new(&wrong));
    CHECK_OK(envcrypt_context_add(wrong, "purpose", "research"));
    CHECK_OK(envcrypt_context_new(&subset));
    CHECK_OK(envcrypt_context_add(subset, "purpose", "archive"));
    CHECK_OK(envcrypt_context_new(&extra));
    CHECK_OK(envcrypt_context_add(extra, "purpose", "archive"));
    CHECK_OK(envcrypt_context_add(extra, "other", "x"));

    for (int s = 0; s < 2; s++) {
        envcrypt_client *c = test_client(s ? 0x0578 : 0x0478, 0);
        const uint8_t in[] = "with a context";
        size_t mlen = 0, plen = 0;
        uint8_t *msg = encrypt_alloc(c, ctx, in, sizeof in, &mlen);
        uint8_t out[64];
        CHECK_OK(envcrypt_decrypt(c, ctx, msg, mlen, out, sizeof out, &plen));
        CHECK(plen == sizeof in && memcmp(out, in, plen) == 0);
        CHECK_OK(envcrypt_decrypt(c, subset, msg, mlen, out, sizeof out, &plen));
        CHECK_OK(envcrypt_decrypt(c, NULL, msg, mlen, out, sizeof out, &plen));
        /* Wrong value, or a pair the message lacks: refused, nothing written. */
        memset(out, 0xAB, sizeof out);
        plen = 12345;
        CHECK_RC(envcrypt_decrypt(c, wrong, msg, mlen, out, sizeof out, &plen), ENVCRYPT_POLICY);
        CHECK_RC(envcrypt_decrypt(c, extra, msg, mlen, out, sizeof out, &plen), ENVCRYPT_POLICY);
        CHECK(plen == 12345);
        for (size_t i = 0; i < sizeof out; i++) CHECK(out[i] == 0xAB);
        free(msg);
        envcrypt_client_free(c);
    }
    envcrypt_context_free(extra);
    envcrypt_context_free(subset);
    envcrypt_context_free(wrong);
    envcrypt_context_free(ctx);
}

static void version_and_messages(void) {
    const char *v = envcrypt_version();
    CHECK(v != NULL && strlen(v) > 0 && v[0] >= '0' && v[0] <= '9');
    CHECK(envcrypt_version() == v);

    const envcrypt_result codes[] = {
        ENVCRYPT_OK, ENVCRYPT_NULL_PARAMETER, ENVCRYPT_BUFFER_TOO_SMALL, ENVCRYPT_INVALID_UTF8,
        ENVCRYPT_PANIC, ENVCRYPT_SESSION_FINISHED, ENVCRYPT_INVALID_ARGUMENT, ENVCRYPT_USAGE,
        ENVCRYPT_FORMAT, ENVCRYPT_AUTHENTICATION, ENVCRYPT_POLICY, ENVCRYPT_KEYRING_UNAVAILABLE,
        ENVCRYPT_KEYRING_REFUSED, ENVCRYPT_IO, ENVCRYPT_CANCELLED, ENVCRYPT_INTERNAL};
    char unknown[128];
    size_t ulen = envcrypt_error_message(424242, unknown, sizeof unknown);
    CHECK(ulen > 0 && ulen == strlen(unknown));
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char full[256];
        size_t n = envcrypt_error_message(codes[i], NULL, 0); /* length only */
        CHECK(n > 0 && n < sizeof full);
        CHECK(envcrypt_error_message(codes[i], full, sizeof full) == n);
        CHECK(strlen(full) == n);
        CHECK(strcmp(full, unknown) != 0); /* every code has its own message */
        /* Exactly fitting, one short, tiny: truncated, terminated, nothing past buf_len. */
        for (size_t cap = 1; cap <= n + 1; cap++) {
            char buf[258];
            memset(buf, 0x7f, sizeof buf);
            CHECK(envcrypt_error_message(codes[i], buf, cap) == n);
            size_t kept = cap - 1 < n ? cap - 1 : n;
            CHECK(memcmp(buf, full, kept) == 0);
            CHECK(buf[kept] == '\0');
            for (size_t j = kept + 1; j < sizeof buf; j++) CHECK(buf[j] == 0x7f);
        }
        /* A non-NULL buffer of length 0 is not touched. */
        char none = 0x7f;
        CHECK(envcrypt_error_message(codes[i], &none, 0) == n && none == 0x7f);
    }
}

int main(void) {
    version_and_messages();
    default_client();
    const size_t sizes[] = {0, 1, 4096, 3 * 4096, 4096 + 1, 64 * KIB, big_size()};
    const uint16_t suites[] = {0x0478, 0x0578};
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            round_trip(suites[s], 4096, sizes[i], NULL); /* small frames: many of them */
            if (sizes[i] >= 64 * KIB) round_trip(suites[s], 0, sizes[i], NULL); /* 64 KiB */
        }
    round_trip(0x0478, 128, 1000, NULL); /* smallest useful frames */
    contexts();
    printf("test_oneshot: ok\n");
    return 0;
}
