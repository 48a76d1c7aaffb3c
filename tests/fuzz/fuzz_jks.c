/* libFuzzer target for the JKS reader (src/dtls/jks.c). */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtls/jks.h"

/* The passwords of the seed corpus (tests/data/credentials/make-fixtures.sh). */
#define STORE_PASSWORD "storepass"
#define KEY_PASSWORD "keypass"
#define DIGEST_LEN 20

/* Parses, then reads every key and certificate the store claims to hold. */
static void exercise(const uint8_t *data, size_t size)
{
    jks_t *jks = NULL;
    if (jks_parse(data, size, STORE_PASSWORD, &jks) != 0) {
        return;
    }

    for (size_t i = 0; i < jks_entry_count(jks); i++) {
        bool is_key = false;
        const char *alias = jks_entry_alias(jks, i, &is_key);
        uint8_t *key = NULL;
        uint8_t **chain = NULL;
        size_t key_len = 0;
        size_t *lens = NULL;
        size_t count = 0;
        if (is_key &&
            jks_get_key(jks, alias, KEY_PASSWORD, &key, &key_len, &chain, &lens, &count) == 0) {
            free(key);
            jks_free_chain(chain, lens, count);
        }
    }
    for (size_t i = 0; i < jks_certificate_count(jks); i++) {
        size_t len = 0;
        (void)jks_certificate(jks, i, &len);
    }
    jks_free(jks);
}

/*
 * A copy with the integrity digest recomputed, so that mutations of the
 * entries get past the digest and reach the key protector.
 */
static void exercise_resealed(const uint8_t *data, size_t size)
{
    static const char whitener[] = "Mighty Aphrodite";
    size_t pw_len = strlen(STORE_PASSWORD);
    size_t body = size - DIGEST_LEN;
    size_t total = 2 * pw_len + strlen(whitener) + body;
    uint8_t *input = malloc(total);
    uint8_t *copy = malloc(size);
    if (input != NULL && copy != NULL) {
        for (size_t i = 0; i < pw_len; i++) {
            input[2 * i] = 0;
            input[2 * i + 1] = (uint8_t)STORE_PASSWORD[i];
        }
        memcpy(input + 2 * pw_len, whitener, strlen(whitener));
        memcpy(input + 2 * pw_len + strlen(whitener), data, body);
        memcpy(copy, data, body);
        if (gnutls_hash_fast(GNUTLS_DIG_SHA1, input, total, copy + body) == 0) {
            exercise(copy, size);
        }
    }
    free(input);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    if (size >= DIGEST_LEN) {
        exercise_resealed(data, size);
    }
    return 0;
}
