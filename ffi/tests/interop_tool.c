/* Encrypts and decrypts files through the C API for the interop tests of scripts/test-c.sh
 * (against the Python ESDK and the envcrypt tool), with the raw AES key the peers use
 * (namespace "envcrypt-interop", name "aes-256-wrapping-key", check.h's test_key).
 *
 *   interop_tool encrypt SUITE FRAME_LENGTH oneshot|session IN OUT [KEY=VALUE...]
 *   interop_tool decrypt oneshot|session IN OUT [KEY=VALUE...]   (the pairs: expected)
 *
 * SUITE is 0478 or 0578. The session mode streams: 64 KiB of input and 4 KiB of output a
 * call. Exit 0 on success, 1 on a library error (its message on stderr), 2 on usage. */
#include "check.h"

static uint8_t *read_all(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    CHECK(f != NULL);
    size_t cap = 1 << 20, len = 0;
    uint8_t *data = xmalloc(cap);
    size_t got;
    while ((got = fread(data + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            data = realloc(data, cap);
            CHECK(data != NULL);
        }
    }
    CHECK(!ferror(f));
    fclose(f);
    *n = len;
    return data;
}

static int stream(envcrypt_session *s, const char *in_path, const char *out_path) {
    FILE *in = fopen(in_path, "rb"), *out = fopen(out_path, "wb");
    CHECK(in != NULL && out != NULL);
    static uint8_t ib[65536], ob[4096];
    size_t got, w, r;
    envcrypt_result rc = ENVCRYPT_OK;
    while (rc == ENVCRYPT_OK && (got = fread(ib, 1, sizeof ib, in)) > 0) {
        size_t pos = 0;
        while (pos < got) {
            rc = envcrypt_session_process(s, ob, sizeof ob, &w, ib + pos, got - pos, &r);
            if (rc != ENVCRYPT_OK) break;
            CHECK(fwrite(ob, 1, w, out) == w);
            pos += r;
        }
    }
    CHECK(!ferror(in));
    while (rc == ENVCRYPT_OK && !envcrypt_session_is_done(s)) {
        rc = envcrypt_session_finish(s, ob, sizeof ob, &w);
        if (rc == ENVCRYPT_OK) CHECK(fwrite(ob, 1, w, out) == w);
    }
    fclose(in);
    CHECK(fclose(out) == 0);
    return rc;
}

int main(int argc, char **argv) {
    int enc = argc >= 6 && strcmp(argv[1], "encrypt") == 0;
    int dec = argc >= 5 && strcmp(argv[1], "decrypt") == 0;
    if (!enc && !dec) {
        fprintf(stderr, "usage: %s encrypt SUITE FRAME oneshot|session IN OUT [K=V...]\n"
                        "       %s decrypt oneshot|session IN OUT [K=V...]\n", argv[0], argv[0]);
        return 2;
    }
    int a = 2;
    uint16_t suite = 0;
    uint32_t frame = 0;
    if (enc) {
        suite = (uint16_t)strtoul(argv[a++], NULL, 16);
        frame = (uint32_t)strtoul(argv[a++], NULL, 10);
    }
    int session = strcmp(argv[a++], "session") == 0;
    const char *in = argv[a++], *out = argv[a++];
    envcrypt_client *c = test_client(suite, frame);
    envcrypt_context *ctx = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    for (; a < argc; a++) {
        char *eq = strchr(argv[a], '=');
        CHECK(eq != NULL);
        *eq = '\0';
        CHECK_OK(envcrypt_context_add(ctx, argv[a], eq + 1));
    }
    envcrypt_result rc;
    if (session) {
        envcrypt_session *s = NULL;
        CHECK_OK(enc ? envcrypt_session_new_encrypt(c, ctx, &s) : envcrypt_session_new_decrypt(c, ctx, &s));
        rc = stream(s, in, out);
        envcrypt_session_free(s);
    } else {
        size_t n, len = 0;
        uint8_t *data = read_all(in, &n);
        size_t need = 0;
        rc = enc ? envcrypt_encrypt(c, ctx, data, n, NULL, 0, &need)
                 : envcrypt_decrypt(c, ctx, data, n, NULL, 0, &need);
        uint8_t *result = xmalloc(need);
        if (rc == ENVCRYPT_BUFFER_TOO_SMALL)
            rc = enc ? envcrypt_encrypt(c, ctx, data, n, result, need, &len)
                     : envcrypt_decrypt(c, ctx, data, n, result, need, &len);
        if (rc == ENVCRYPT_OK) {
            FILE *f = fopen(out, "wb");
            CHECK(f != NULL && fwrite(result, 1, len, f) == len && fclose(f) == 0);
        }
        free(result);
        free(data);
    }
    envcrypt_context_free(ctx);
    envcrypt_client_free(c);
    if (rc != ENVCRYPT_OK) {
        char msg[256];
        envcrypt_error_message(rc, msg, sizeof msg);
        fprintf(stderr, "interop_tool %s %s: %s (code %u)\n", argv[1], in, msg, (unsigned)rc);
        return 1;
    }
    return 0;
}
