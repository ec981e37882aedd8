/* Streaming sessions: output buffers from 1 byte up, input pieces of varied sizes, mixed
 * with the one-shot calls both ways; finish until done; truncated and tampered messages;
 * the expected context. */
#include "check.h"

#define FRAME 4096u

/* Set by drive: whether its error came from envcrypt_session_finish. */
static int failed_at_finish;

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const uint8_t *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        CHECK(d != NULL);
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* No run of 16 bytes of `v` in p[0..n) (the marker of a frame that must never come out). */
static int has_run(const uint8_t *p, size_t n, uint8_t v) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        run = p[i] == v ? run + 1 : 0;
        if (run >= 16) return 1;
    }
    return 0;
}

/* Runs `in` through session `s`: in pieces of the sizes cycling through `pieces` (0-ended),
 * output through a buffer of `out_cap` bytes (cleared to 0 before every call), then
 * finish until done. Appends what successful calls wrote to `out`. Returns the first
 * error. After an error, *last is the output buffer of the failing call (to check that
 * nothing it must not hold was written), else NULL; the caller frees it. */
static envcrypt_result drive(envcrypt_session *s, const uint8_t *in, size_t n, const size_t *pieces,
                             size_t out_cap, buf_t *out, uint8_t **last) {
    uint8_t *ob = xmalloc(out_cap);
    envcrypt_result rc = ENVCRYPT_OK;
    size_t pos = 0, k = 0, w, r;
    *last = NULL;
    failed_at_finish = 0;
    while (pos < n) {
        size_t piece = pieces[k++];
        if (pieces[k] == 0) k = 0;
        if (piece > n - pos) piece = n - pos;
        size_t done = 0;
        int idle = 0;
        while (done < piece) {
            memset(ob, 0, out_cap);
            w = r = (size_t)-1;
            rc = envcrypt_session_process(s, ob, out_cap, &w, in + pos + done, piece - done, &r);
            if (rc != ENVCRYPT_OK) goto failed;
            CHECK(w <= out_cap && r <= piece - done);
            buf_put(out, ob, w);
            done += r;
            idle = (w == 0 && r == 0) ? idle + 1 : 0;
            CHECK(idle < 2); /* no progress twice in a row: it would spin forever */
        }
        pos += piece;
    }
    /* An empty piece is fine at any time before the end. */
    CHECK_OK(envcrypt_session_process(s, ob, out_cap, &w, NULL, 0, &r));
    CHECK(r == 0);
    buf_put(out, ob, w);
    int idle = 0;
    while (!envcrypt_session_is_done(s)) {
        memset(ob, 0, out_cap);
        w = (size_t)-1;
        rc = envcrypt_session_finish(s, ob, out_cap, &w);
        if (rc != ENVCRYPT_OK) {
            failed_at_finish = 1;
            goto failed;
        }
        CHECK(w <= out_cap);
        buf_put(out, ob, w);
        idle = w == 0 ? idle + 1 : 0;
        CHECK(idle < 2);
    }
    /* Finish on a done session: OK, nothing written. */
    memset(ob, 0x5A, out_cap);
    w = 77;
    CHECK_OK(envcrypt_session_finish(s, ob, out_cap, &w));
    CHECK(w == 0 && ob[0] == 0x5A);
    CHECK(envcrypt_session_is_done(s));
    /* Process after finish: refused, out parameters untouched. */
    const uint8_t more = 1;
    w = r = 77;
    CHECK_RC(envcrypt_session_process(s, ob, out_cap, &w, &more, 1, &r), ENVCRYPT_SESSION_FINISHED);
    CHECK_RC(envcrypt_session_process(s, ob, out_cap, &w, NULL, 0, &r), ENVCRYPT_SESSION_FINISHED);
    CHECK(w == 77 && r == 77 && ob[0] == 0x5A);
    CHECK(envcrypt_session_is_done(s));
    free(ob);
    return ENVCRYPT_OK;
failed:
    /* A failed session refuses everything but free. */
    w = r = 77;
    CHECK_RC(envcrypt_session_process(s, NULL, 0, &w, NULL, 0, &r), ENVCRYPT_SESSION_FINISHED);
    CHECK_RC(envcrypt_session_finish(s, NULL, 0, &w), ENVCRYPT_SESSION_FINISHED);
    CHECK(w == 77 && r == 77);
    CHECK(!envcrypt_session_is_done(s));
    *last = ob;
    return rc;
}

static uint8_t *session_encrypt(const envcrypt_client *c, const envcrypt_context *ctx,
                                const uint8_t *in, size_t n, const size_t *pieces, size_t out_cap,
                                size_t *len) {
    envcrypt_session *s = NULL;
    CHECK_OK(envcrypt_session_new_encrypt(c, ctx, &s));
    CHECK(!envcrypt_session_is_done(s));
    buf_t out = {0};
    uint8_t *last;
    CHECK_OK(drive(s, in, n, pieces, out_cap, &out, &last));
    envcrypt_session_free(s);
    *len = out.len;
    return out.data ? out.data : xmalloc(0);
}

/* Decrypts through a session; returns the code, the output in *out. */
static envcrypt_result session_decrypt(const envcrypt_client *c, const envcrypt_context *expected,
                                       const uint8_t *in, size_t n, const size_t *pieces,
                                       size_t out_cap, buf_t *out, uint8_t **last) {
    envcrypt_session *s = NULL;
    CHECK_OK(envcrypt_session_new_decrypt(c, expected, &s));
    envcrypt_result rc = drive(s, in, n, pieces, out_cap, out, last);
    envcrypt_session_free(s);
    return rc;
}

static const size_t VARIED[] = {1, 7, 100, 4096, 65539, 2, 0};
static const size_t WHOLE[] = {(size_t)-1, 0};
static const size_t LARGE[] = {3 * 65536 + 1, 1000, 1024 * 1024, 0};

/* Session encryption -> one-shot and session decryption; one-shot encryption -> session
 * decryption. */
static void both_ways(uint16_t suite, uint32_t frame, size_t n, const size_t *pieces, size_t out_cap) {
    envcrypt_client *c = test_client(suite, frame);
    uint8_t *plain = pattern(n, (uint32_t)(n * 7 + out_cap));
    size_t mlen = 0, plen = 0;

    uint8_t *msg = session_encrypt(c, NULL, plain, n, pieces, out_cap, &mlen);
    CHECK(mlen > n && msg[0] == 0x02 && msg[1] == (uint8_t)(suite >> 8));
    uint8_t *back = decrypt_alloc(c, NULL, msg, mlen, &plen);
    CHECK(plen == n && (n == 0 || memcmp(back, plain, n) == 0));
    free(back);
    buf_t out = {0};
    uint8_t *last;
    CHECK_OK(session_decrypt(c, NULL, msg, mlen, pieces, out_cap, &out, &last));
    CHECK(out.len == n && (n == 0 || memcmp(out.data, plain, n) == 0));
    free(out.data);
    free(msg);

    msg = encrypt_alloc(c, NULL, plain, n, &mlen);
    out = (buf_t){0};
    CHECK_OK(session_decrypt(c, NULL, msg, mlen, pieces, out_cap, &out, &last));
    CHECK(out.len == n && (n == 0 || memcmp(out.data, plain, n) == 0));
    free(out.data);
    free(msg);
    free(plain);
    envcrypt_client_free(c);
}

/* A message of 3 full frames and a final one of 100 bytes; frame i's plaintext is pattern
 * bytes, except frame `marked` (if < 4), all 0xEE (a run never seen elsewhere). */
static uint8_t *four_frames(const envcrypt_client *c, size_t marked, uint8_t **plain, size_t *len) {
    size_t n = 3 * FRAME + 100;
    *plain = pattern(n, 4);
    for (size_t i = 0; i < n; i++)
        if ((*plain)[i] == 0xEE) (*plain)[i] = 0xED;
    if (marked < 4) memset(*plain + marked * FRAME, 0xEE, marked == 3 ? 100 : FRAME);
    return encrypt_alloc(c, NULL, *plain, n, len);
}

/* Length of the footer (u16 length + signature) of a signed message, 0 if unsigned. */
static size_t footer_len(uint16_t suite, const uint8_t *msg, size_t len) {
    if (suite != 0x0578) return 0;
    for (size_t sig = 90; sig <= 110; sig++)
        if (((size_t)msg[len - sig - 2] << 8 | msg[len - sig - 1]) == sig) return sig + 2;
    CHECK(!"no signature footer found");
    return 0;
}

enum { REGULAR = 4 + 12 + FRAME + 16, FINAL = 4 + 4 + 12 + 4 + 100 + 16 };

/* Output so far is a prefix of the plaintext holding at most `frames` full frames. */
static void check_prefix(const buf_t *out, const uint8_t *plain, size_t frames) {
    CHECK(out->len <= frames * FRAME);
    CHECK(out->len == 0 || memcmp(out->data, plain, out->len) == 0);
}

static void truncated(uint16_t suite) {
    envcrypt_client *c = test_client(suite, FRAME);
    uint8_t *plain;
    size_t len;
    uint8_t *msg = four_frames(c, 3, &plain, &len);
    size_t foot = footer_len(suite, msg, len);
    size_t final_end = len - foot, final_start = final_end - FINAL;
    /* Cut: inside the footer, right after the final frame, inside the final frame's tag,
     * inside its ciphertext, right before it, inside frame 2. */
    size_t cuts[] = {len - 1, len - foot / 2, final_end, final_end - 1, final_end - 8,
                     final_start + 30, final_start, final_start - 2000};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= len) continue; /* unsigned: the footer cuts are the whole message */
        size_t caps[] = {1024 * 1024, 7};
        for (size_t j = 0; j < 2; j++) {
            buf_t out = {0};
            uint8_t *last = NULL;
            envcrypt_result rc = session_decrypt(c, NULL, msg, cuts[i], VARIED, caps[j], &out, &last);
            if (rc != ENVCRYPT_FORMAT)
                fprintf(stderr, "suite %04x cut at %zu of %zu\n", suite, cuts[i], len);
            CHECK_RC(rc, ENVCRYPT_FORMAT);
            CHECK(failed_at_finish); /* every piece was taken: only the end tells */
            /* The final frame (all 0xEE) never came out, not even in the failing call. */
            check_prefix(&out, plain, 3);
            CHECK(!has_run(out.data ? out.data : msg, out.len, 0xEE));
            CHECK(last != NULL && !has_run(last, caps[j], 0xEE));
            free(last);
            free(out.data);
        }
        /* The one-shot call refuses it too, writing nothing. */
        uint8_t small[16];
        size_t plen = 999;
        CHECK_RC(envcrypt_decrypt(c, NULL, msg, cuts[i], small, sizeof small, &plen), ENVCRYPT_FORMAT);
        CHECK(plen == 999);
    }
    free(msg);
    free(plain);
    envcrypt_client_free(c);
}

static void tampered(uint16_t suite) {
    envcrypt_client *c = test_client(suite, FRAME);
    for (size_t marked = 0; marked < 4; marked++) {
        uint8_t *plain;
        size_t len;
        uint8_t *msg = four_frames(c, marked, &plain, &len);
        size_t foot = footer_len(suite, msg, len);
        size_t body = len - foot - FINAL - 3 * REGULAR; /* the header's length */
        /* A byte of the marked frame's ciphertext. */
        size_t at = marked < 3 ? body + marked * REGULAR + 16 + 1000 : len - foot - FINAL + 24 + 50;
        msg[at] ^= 0x01;
        size_t caps[] = {1024 * 1024, 4096, 1};
        for (size_t j = 0; j < 3; j++) {
            buf_t out = {0};
            uint8_t *last = NULL;
            CHECK_RC(session_decrypt(c, NULL, msg, len, VARIED, caps[j], &out, &last),
                     ENVCRYPT_AUTHENTICATION);
            check_prefix(&out, plain, marked);
            CHECK(!has_run(out.data ? out.data : msg, out.len, 0xEE));
            CHECK(last != NULL && !has_run(last, caps[j], 0xEE));
            free(last);
            free(out.data);
        }
        size_t plen = 999;
        uint8_t *big = xmalloc(len);
        memset(big, 0, len);
        CHECK_RC(envcrypt_decrypt(c, NULL, msg, len, big, len, &plen), ENVCRYPT_AUTHENTICATION);
        CHECK(plen == 999 && !has_run(big, len, 0xEE) && big[0] == 0 && big[100] == 0);
        free(big);
        msg[at] ^= 0x01;
        if (suite == 0x0578 && marked == 3) {
            /* A bad signature: the final frame stays unwritten. */
            msg[len - 5] ^= 0x40;
            buf_t out = {0};
            uint8_t *last = NULL;
            CHECK_RC(session_decrypt(c, NULL, msg, len, WHOLE, 1024 * 1024, &out, &last),
                     ENVCRYPT_AUTHENTICATION);
            check_prefix(&out, plain, 3);
            CHECK(last != NULL && !has_run(last, 1024 * 1024, 0xEE));
            free(last);
            free(out.data);
            msg[len - 5] ^= 0x40;
        }
        /* A flipped header byte (in the EDK or the commitment): nothing at all comes out. */
        msg[body - 10] ^= 0x01;
        buf_t out = {0};
        uint8_t *last = NULL;
        CHECK_RC(session_decrypt(c, NULL, msg, len, VARIED, 4096, &out, &last), ENVCRYPT_AUTHENTICATION);
        CHECK(out.len == 0);
        free(last);
        msg[body - 10] ^= 0x01;
        /* Restored: it decrypts. */
        out = (buf_t){0};
        CHECK_OK(session_decrypt(c, NULL, msg, len, VARIED, 4096, &out, &last));
        CHECK(out.len == 3 * FRAME + 100 && memcmp(out.data, plain, out.len) == 0);
        free(out.data);
        free(msg);
        free(plain);
    }
    envcrypt_client_free(c);
}

static void contexts_and_trailing(uint16_t suite) {
    envcrypt_client *c = test_client(suite, FRAME);
    envcrypt_context *ctx = NULL, *wrong = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    CHECK_OK(envcrypt_context_add(ctx, "purpose", "archive"));
    CHECK_OK(envcrypt_context_new(&wrong));
    CHECK_OK(envcrypt_context_add(wrong, "purpose", "other"));
    size_t n = 2 * FRAME + 5, mlen;
    uint8_t *plain = pattern(n, 9);
    uint8_t *msg = session_encrypt(c, ctx, plain, n, VARIED, 4096, &mlen);
    buf_t out = {0};
    uint8_t *last = NULL;
    CHECK_OK(session_decrypt(c, ctx, msg, mlen, VARIED, 4096, &out, &last));
    CHECK(out.len == n && memcmp(out.data, plain, n) == 0);
    free(out.data);
    out = (buf_t){0};
    CHECK_RC(session_decrypt(c, wrong, msg, mlen, VARIED, 4096, &out, &last), ENVCRYPT_POLICY);
    CHECK(out.len == 0);
    free(last);
    /* Bytes after the end of the message. */
    uint8_t *longer = xmalloc(mlen + 3);
    memcpy(longer, msg, mlen);
    memset(longer + mlen, 0, 3);
    out = (buf_t){0};
    CHECK_RC(session_decrypt(c, NULL, longer, mlen + 3, WHOLE, 1024 * 1024, &out, &last), ENVCRYPT_FORMAT);
    free(last);
    free(out.data);
    free(longer);
    /* Not a message at all. */
    out = (buf_t){0};
    CHECK_RC(session_decrypt(c, NULL, plain, n, VARIED, 4096, &out, &last), ENVCRYPT_FORMAT);
    CHECK(out.len == 0);
    free(last);
    free(msg);
    free(plain);
    envcrypt_context_free(wrong);
    envcrypt_context_free(ctx);
    envcrypt_client_free(c);
}

/* A session freed half-way (pending output wiped, no leak), and an unused one. */
static void abandoned(void) {
    envcrypt_client *c = test_client(0x0578, FRAME);
    envcrypt_session *s = NULL;
    CHECK_OK(envcrypt_session_new_encrypt(c, NULL, &s));
    uint8_t *plain = pattern(3 * FRAME, 3);
    uint8_t ob[10];
    size_t w, r;
    CHECK_OK(envcrypt_session_process(s, ob, sizeof ob, &w, plain, 3 * FRAME, &r));
    CHECK(w == sizeof ob);
    envcrypt_session_free(s);
    CHECK_OK(envcrypt_session_new_decrypt(c, NULL, &s));
    envcrypt_session_free(s);
    free(plain);
    envcrypt_client_free(c);
}

int main(void) {
    const uint16_t suites[] = {0x0478, 0x0578};
    const size_t sizes[] = {0, 1, FRAME, 3 * FRAME, 20000};
    const size_t caps[] = {1, 7, 4096, 1024 * 1024};
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (size_t j = 0; j < sizeof caps / sizeof caps[0]; j++) {
                both_ways(suites[s], FRAME, sizes[i], VARIED, caps[j]);
                both_ways(suites[s], FRAME, sizes[i], WHOLE, caps[j]);
            }
        /* Multi-MiB, 64 KiB and 4 KiB frames. */
        both_ways(suites[s], 0, big_size(), LARGE, 4096);
        both_ways(suites[s], 0, big_size(), WHOLE, 1024 * 1024);
        both_ways(suites[s], FRAME, big_size(), LARGE, 1024 * 1024);
        truncated(suites[s]);
        tampered(suites[s]);
        contexts_and_trailing(suites[s]);
    }
    abandoned();
    printf("test_session: ok\n");
    return 0;
}
