/* The atomic file API: round trips, an existing output refused, nothing left behind by a
 * tampered, truncated or refused message. argv[1]: an empty directory to work in. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static const char *dir;

/* dir/name, in one of 4 rotating buffers: copy a path to keep it. */
static char *path(const char *name) {
    static char bufs[4][4096];
    static int next;
    char *p = bufs[next++ % 4];
    snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    return p;
}

static void write_file(const char *p, const uint8_t *data, size_t n) {
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

static uint8_t *read_file(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long len = ftell(f);
    CHECK(len >= 0);
    rewind(f);
    uint8_t *data = xmalloc((size_t)len);
    CHECK(fread(data, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return data;
}

static int exists(const char *p) {
    struct stat st;
    if (stat(p, &st) == 0) return 1;
    CHECK(errno == ENOENT);
    return 0;
}

/* Files in the directory (temporary files left behind would show here). */
static int count_files(void) {
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void same_file(const char *p, const uint8_t *want, size_t n) {
    size_t got_n;
    uint8_t *got = read_file(p, &got_n);
    CHECK(got_n == n && (n == 0 || memcmp(got, want, n) == 0));
    free(got);
}

static void round_trip(uint16_t suite, uint32_t frame, size_t n) {
    envcrypt_client *c = test_client(suite, frame);
    envcrypt_context *ctx = NULL, *wrong = NULL;
    CHECK_OK(envcrypt_context_new(&ctx));
    CHECK_OK(envcrypt_context_add(ctx, "purpose", "files"));
    CHECK_OK(envcrypt_context_new(&wrong));
    CHECK_OK(envcrypt_context_add(wrong, "purpose", "other"));
    uint8_t *plain = pattern(n, (uint32_t)n);
    char in[4096], enc[4096], out[4096];
    snprintf(in, sizeof in, "%s", path("plain.bin"));
    snprintf(enc, sizeof enc, "%s", path("plain.bin.enc"));
    snprintf(out, sizeof out, "%s", path("copy.bin"));
    write_file(in, plain, n);
    CHECK_OK(envcrypt_encrypt_file(c, ctx, in, enc));
    CHECK_OK(envcrypt_decrypt_file(c, ctx, enc, out));
    same_file(out, plain, n);
    CHECK(count_files() == 3);

    /* The file is a message the one-shot call opens too. */
    size_t mlen, plen;
    uint8_t *msg = read_file(enc, &mlen);
    uint8_t *back = decrypt_alloc(c, ctx, msg, mlen, &plen);
    CHECK(plen == n && (n == 0 || memcmp(back, plain, n) == 0));
    free(back);

    /* An existing output is refused and left as it was. */
    const uint8_t other[] = "already here";
    CHECK_RC(envcrypt_encrypt_file(c, ctx, in, out), ENVCRYPT_IO);
    same_file(out, plain, n);
    write_file(out, other, sizeof other);
    CHECK_RC(envcrypt_decrypt_file(c, ctx, enc, out), ENVCRYPT_IO);
    same_file(out, other, sizeof other);
    CHECK(unlink(out) == 0);
    CHECK(count_files() == 2);

    /* A context mismatch: no output. */
    CHECK_RC(envcrypt_decrypt_file(c, wrong, enc, out), ENVCRYPT_POLICY);
    CHECK(!exists(out) && count_files() == 2);

    /* Tampered (a body byte, then the last byte: the tag or signature): no output. */
    size_t spots[] = {mlen - 1 - (n > 1000 ? 1000 : 0), mlen - 1};
    for (int i = 0; i < 2; i++) {
        msg[spots[i]] ^= 0x10;
        write_file(enc, msg, mlen);
        CHECK_RC(envcrypt_decrypt_file(c, NULL, enc, out), ENVCRYPT_AUTHENTICATION);
        CHECK(!exists(out) && count_files() == 2);
        msg[spots[i]] ^= 0x10;
    }
    /* Truncated: no output. */
    write_file(enc, msg, mlen - 3);
    CHECK_RC(envcrypt_decrypt_file(c, NULL, enc, out), ENVCRYPT_FORMAT);
    CHECK(!exists(out) && count_files() == 2);
    /* Restored: it decrypts again. */
    write_file(enc, msg, mlen);
    CHECK_OK(envcrypt_decrypt_file(c, NULL, enc, out));
    same_file(out, plain, n);

    /* A missing input, an output in a missing directory: I/O errors, nothing created. */
    CHECK_RC(envcrypt_encrypt_file(c, NULL, path("missing"), path("m.enc")), ENVCRYPT_IO);
    CHECK_RC(envcrypt_decrypt_file(c, NULL, path("missing"), path("m.out")), ENVCRYPT_IO);
    CHECK_RC(envcrypt_encrypt_file(c, NULL, in, path("no/such/dir.enc")), ENVCRYPT_IO);
    CHECK(!exists(path("m.enc")) && !exists(path("m.out")));

    CHECK(unlink(in) == 0 && unlink(enc) == 0 && unlink(out) == 0);
    CHECK(count_files() == 0);
    free(msg);
    free(plain);
    envcrypt_context_free(wrong);
    envcrypt_context_free(ctx);
    envcrypt_client_free(c);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EMPTY_DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    CHECK(count_files() == 0);
    const size_t sizes[] = {0, 1, 4096, 100000, big_size()};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        round_trip(0x0478, 4096, sizes[i]);
        round_trip(0x0578, 0, sizes[i]);
    }
    printf("test_files: ok\n");
    return 0;
}
