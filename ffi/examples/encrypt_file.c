/* Encrypts a file with a raw AES key, then decrypts it back, through the C API.
 *
 *   scripts/install-c.sh /opt/envcrypt
 *   export PKG_CONFIG_PATH=/opt/envcrypt/lib/pkgconfig
 *   cc ffi/examples/encrypt_file.c $(pkg-config --cflags --libs envcrypt) -o encrypt_file
 *   LD_LIBRARY_PATH=/opt/envcrypt/lib ./encrypt_file scan.dcm scan.dcm.enc scan.copy.dcm
 */
#include <stdio.h>
#include <string.h>

#include <envcrypt.h>

static int fail(const char *what, envcrypt_result r) {
    char msg[256];
    envcrypt_error_message(r, msg, sizeof msg);
    fprintf(stderr, "%s: %s (code %u)\n", what, msg, r);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s INPUT ENCRYPTED DECRYPTED\n", argv[0]);
        return 2;
    }
    /* A real program reads its key from a KMS, an HSM or a protected file. */
    uint8_t key[32];
    memset(key, 0x42, sizeof key);

    envcrypt_keyring *keyring = NULL;
    envcrypt_client *client = NULL;
    envcrypt_context *ctx = NULL;
    int status = 1;
    envcrypt_result r = envcrypt_keyring_raw_aes_new("hospital-a", "imaging-2026", key, sizeof key, &keyring);
    if (r != ENVCRYPT_OK) { status = fail("keyring", r); goto out; }
    r = envcrypt_client_new(keyring, &client);
    if (r != ENVCRYPT_OK) { status = fail("client", r); goto out; }
    r = envcrypt_context_new(&ctx);
    if (r == ENVCRYPT_OK) r = envcrypt_context_add(ctx, "purpose", "archive");
    if (r != ENVCRYPT_OK) { status = fail("context", r); goto out; }

    /* Atomic: the output appears only when complete; an existing one is refused. */
    r = envcrypt_encrypt_file(client, ctx, argv[1], argv[2]);
    if (r != ENVCRYPT_OK) { status = fail("encrypt", r); goto out; }
    /* The output appears only if the whole message verified (signature included). */
    r = envcrypt_decrypt_file(client, ctx, argv[2], argv[3]);
    if (r != ENVCRYPT_OK) { status = fail("decrypt", r); goto out; }
    printf("envcrypt %s: %s -> %s -> %s\n", envcrypt_version(), argv[1], argv[2], argv[3]);
    status = 0;
out:
    envcrypt_context_free(ctx);
    envcrypt_client_free(client);
    envcrypt_keyring_free(keyring);
    return status;
}
