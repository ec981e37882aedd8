/* envcrypt_encrypt_file on one file, for timing from outside against the tool:
 *   farm-bench --vs 'envcrypt encrypt -q -k raw-aes:bench:key:KEYFILE -o OUT IN' -- ./file_speed IN OUT
 * The key is the one of KEYFILE's test: 32 bytes of 0x07 (base64 in the tool's key file).
 *   cc -O2 ffi/bench/file_speed.c $(pkg-config --cflags --libs envcrypt) -o file_speed
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <envcrypt.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT OUTPUT (OUTPUT is replaced)\n", argv[0]);
        return 2;
    }
    uint8_t key[32];
    memset(key, 7, sizeof key);
    envcrypt_keyring *k = NULL;
    envcrypt_client *c = NULL;
    envcrypt_result r = envcrypt_keyring_raw_aes_new("bench", "key", key, sizeof key, &k);
    if (r == ENVCRYPT_OK) r = envcrypt_client_new(k, &c);
    unlink(argv[2]);
    if (r == ENVCRYPT_OK) r = envcrypt_encrypt_file(c, NULL, argv[1], argv[2]);
    if (r != ENVCRYPT_OK) {
        char msg[200];
        envcrypt_error_message(r, msg, sizeof msg);
        fprintf(stderr, "file_speed: %s\n", msg);
    }
    envcrypt_client_free(c);
    envcrypt_keyring_free(k);
    return r == ENVCRYPT_OK ? 0 : 1;
}
