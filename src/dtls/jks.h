/* Java KeyStore (JKS) reading: private keys and certificates. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct jks jks_t;

/*
 * Parses a JKS file image (magic 0xFEEDFEED, version 1 or 2) and checks
 * its SHA-1 integrity digest keyed with the store password. Returns 0,
 * LWM2MD_ERR_PASSWORD when the digest does not match, LWM2MD_ERR_INVALID
 * or LWM2MD_ERR_TRUNCATED for malformed data. Bounds every count and
 * length against the input size. The result owns copies of all data.
 */
int jks_parse(const uint8_t *data, size_t len, const char *store_password, jks_t **out);
void jks_free(jks_t *jks);

/*
 * The entries in file order: how many, and each one's alias (borrowed
 * from jks, NUL-terminated, as stored) and whether it is a private key
 * entry (false: a trusted certificate entry). Lets a caller choose a key
 * and say what a store holds. Any thread once parsed.
 */
size_t jks_entry_count(const jks_t *jks);
const char *jks_entry_alias(const jks_t *jks, size_t index, bool *is_key);

/*
 * The private key of entry `alias` (case-insensitive, as keytool stores
 * aliases in lowercase), decrypted with key_password (Sun's JKS key
 * protector), as DER PKCS#8 PrivateKeyInfo (malloc'd, caller frees and
 * should wipe it), and its certificate chain, leaf first, as DER
 * (arrays malloc'd; free with jks_free_chain). Returns
 * LWM2MD_ERR_NOT_FOUND for no such key entry, LWM2MD_ERR_PASSWORD when
 * the key does not decrypt.
 */
int jks_get_key(const jks_t *jks, const char *alias, const char *key_password, uint8_t **key_der,
                size_t *key_len, uint8_t ***chain, size_t **chain_lens, size_t *chain_count);
void jks_free_chain(uint8_t **chain, size_t *chain_lens, size_t chain_count);

/* Every certificate in the store (trusted entries and key entries' chains). */
size_t jks_certificate_count(const jks_t *jks);
const uint8_t *jks_certificate(const jks_t *jks, size_t index, size_t *len);
