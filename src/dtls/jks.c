/* Java KeyStore (JKS) reader: file structure, integrity digest, Sun's key protector. */
#include "dtls/jks.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

/*
 * The JKS layout (all integers big-endian), as written by the JDK's
 * sun.security.provider.JavaKeyStore:
 *   u32 magic 0xFEEDFEED, u32 version (1 or 2), u32 entry count,
 *   entries, then a 20-byte SHA-1 over
 *   password (UTF-16BE) || "Mighty Aphrodite" || every preceding byte.
 * Entry: u32 tag (1 private key, 2 trusted certificate), alias (u16
 * length + modified UTF-8), u64 timestamp, then
 *   key:     u32 length + EncryptedPrivateKeyInfo DER, u32 chain count,
 *            that many certificates;
 *   trusted: one certificate.
 * Certificate: (version 2 only) u16 length + type "X.509", then u32
 * length + DER.
 */
#define JKS_MAGIC 0xFEEDFEEDu
#define JKS_SHA1_LEN 20
#define JKS_TAG_KEY 1
#define JKS_TAG_TRUSTED 2
#define JKS_CERT_TYPE "X.509"
#define JKS_WHITENER "Mighty Aphrodite"

/* 1.3.6.1.4.1.42.2.17.1.1: Sun's proprietary key protector, DER content. */
static const uint8_t key_protector_oid[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                            0x2a, 0x02, 0x11, 0x01, 0x01};

typedef struct jks_blob {
    uint8_t *data;
    size_t len;
} jks_blob_t;

typedef struct jks_entry {
    char *alias;
    bool is_key;
    jks_blob_t protected_key; /* salt(20) || ciphertext || check(20) */
    size_t first_cert;        /* index into jks->certs */
    size_t cert_count;
} jks_entry_t;

struct jks {
    jks_entry_t *entries;
    size_t entry_count;
    size_t entry_cap;
    jks_blob_t *certs; /* every certificate, entry by entry */
    size_t cert_count;
    size_t cert_cap;
};

/* A cursor over untrusted bytes: every read is bounded by len. */
typedef struct jks_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
} jks_reader_t;

static int read_bytes(jks_reader_t *reader, size_t count, const uint8_t **out)
{
    if (count > reader->len - reader->pos) {
        return LWM2MD_ERR_TRUNCATED;
    }
    *out = reader->data + reader->pos;
    reader->pos += count;
    return 0;
}

static int read_uint(jks_reader_t *reader, size_t width, uint64_t *out)
{
    const uint8_t *bytes = NULL;
    int rc = read_bytes(reader, width, &bytes);
    if (rc != 0) {
        return rc;
    }

    uint64_t value = 0;
    for (size_t i = 0; i < width; i++) {
        value = (value << 8) | bytes[i];
    }
    *out = value;
    return 0;
}

static int read_u16(jks_reader_t *reader, size_t *out)
{
    uint64_t value = 0;
    int rc = read_uint(reader, 2, &value);
    *out = (size_t)value;
    return rc;
}

static int read_u32(jks_reader_t *reader, uint32_t *out)
{
    uint64_t value = 0;
    int rc = read_uint(reader, 4, &value);
    *out = (uint32_t)value;
    return rc;
}

static int blob_copy(jks_blob_t *blob, const uint8_t *data, size_t len)
{
    blob->data = malloc(len > 0 ? len : 1);
    if (blob->data == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(blob->data, data, len);
    blob->len = len;
    return 0;
}

/* Grows an array by doubling; bounded by the input because each item consumes bytes. */
static int grow(void **array, size_t *cap, size_t count, size_t item_size)
{
    if (count < *cap) {
        return 0;
    }

    size_t new_cap = *cap == 0 ? 4 : *cap * 2;
    void *grown = realloc(*array, new_cap * item_size);
    if (grown == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    *array = grown;
    *cap = new_cap;
    return 0;
}

/*
 * The next code point of UTF-8 text at *pos. A byte that does not start a
 * valid sequence counts as one Latin-1 character, so any bytes convert.
 */
static uint32_t utf8_next(const uint8_t *in, size_t len, size_t *pos)
{
    uint32_t lead = in[*pos];
    size_t extra = 0;
    if (lead >= 0xf0 && lead <= 0xf4) {
        extra = 3;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        extra = 2;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
        extra = 1;
    }
    if (extra == 0 || extra > len - *pos - 1) {
        *pos += 1;
        return lead;
    }

    uint32_t code = lead & (0x3fu >> extra);
    for (size_t k = 1; k <= extra; k++) {
        uint8_t next = in[*pos + k];
        if ((next & 0xc0) != 0x80) {
            *pos += 1;
            return lead;
        }
        code = (code << 6) | (next & 0x3f);
    }
    *pos += extra + 1;
    return code;
}

/*
 * The password as Java hashes it: each UTF-16 code unit big-endian
 * (characters beyond U+FFFF as surrogate pairs). Caller wipes and frees.
 */
static int password_utf16be(const char *password, uint8_t **out, size_t *out_len)
{
    const uint8_t *in = (const uint8_t *)(password != NULL ? password : "");
    size_t in_len = strlen((const char *)in);
    /* Each UTF-8 byte yields at most two bytes of UTF-16. */
    uint8_t *buf = malloc(2 * in_len + 1);
    if (buf == NULL) {
        return LWM2MD_ERR_NOMEM;
    }

    size_t used = 0;
    size_t pos = 0;
    while (pos < in_len) {
        uint32_t code = utf8_next(in, in_len, &pos);
        if (code >= 0x10000) {
            uint32_t high = 0xd800 | ((code - 0x10000) >> 10);
            buf[used++] = (uint8_t)(high >> 8);
            buf[used++] = (uint8_t)high;
            code = 0xdc00 | ((code - 0x10000) & 0x3ff);
        }
        buf[used++] = (uint8_t)(code >> 8);
        buf[used++] = (uint8_t)code;
    }
    *out = buf;
    *out_len = used;
    return 0;
}

/* SHA-1 over two consecutive pieces. */
static int sha1_two(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                    uint8_t digest[JKS_SHA1_LEN])
{
    gnutls_hash_hd_t hash = NULL;
    if (gnutls_hash_init(&hash, GNUTLS_DIG_SHA1) < 0) {
        return LWM2MD_ERR_CRYPTO;
    }

    int rc = 0;
    if (gnutls_hash(hash, a, a_len) < 0 || gnutls_hash(hash, b, b_len) < 0) {
        rc = LWM2MD_ERR_CRYPTO;
    }
    gnutls_hash_deinit(hash, digest);
    return rc;
}

/* Compares without an early exit, so timing says nothing about the digest. */
static bool digest_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < JKS_SHA1_LEN; i++) {
        diff |= (uint8_t)(a[i] ^ b[i]);
    }
    return diff == 0;
}

/* One DER tag and definite length; the content must lie within the reader. */
static int der_enter(jks_reader_t *reader, uint8_t tag, jks_reader_t *content)
{
    const uint8_t *head = NULL;
    if (read_bytes(reader, 2, &head) != 0 || head[0] != tag) {
        return LWM2MD_ERR_INVALID;
    }

    size_t len = head[1];
    if (len >= 0x80) {
        size_t width = len & 0x7f;
        uint64_t value = 0;
        if (width == 0 || width > 4 || read_uint(reader, width, &value) != 0) {
            return LWM2MD_ERR_INVALID;
        }
        len = (size_t)value;
    }

    const uint8_t *body = NULL;
    if (read_bytes(reader, len, &body) != 0) {
        return LWM2MD_ERR_INVALID;
    }
    *content = (jks_reader_t){.data = body, .len = len, .pos = 0};
    return 0;
}

/*
 * EncryptedPrivateKeyInfo (RFC 5208 6) with Sun's key protector:
 * SEQUENCE { SEQUENCE { OID, NULL (optional) }, OCTET STRING }, nothing
 * after. Copies the OCTET STRING content.
 */
static int parse_protected_key(const uint8_t *der, size_t len, jks_blob_t *out)
{
    jks_reader_t outer = {.data = der, .len = len, .pos = 0};
    jks_reader_t info;
    jks_reader_t algorithm;
    jks_reader_t oid;
    jks_reader_t octets;
    if (der_enter(&outer, 0x30, &info) != 0 || outer.pos != outer.len ||
        der_enter(&info, 0x30, &algorithm) != 0 || der_enter(&algorithm, 0x06, &oid) != 0) {
        return LWM2MD_ERR_INVALID;
    }

    /* Only Sun's protector is defined for JKS key entries. */
    if (oid.len != sizeof(key_protector_oid) || memcmp(oid.data, key_protector_oid, oid.len) != 0) {
        return LWM2MD_ERR_INVALID;
    }
    if (algorithm.pos != algorithm.len) {
        jks_reader_t params;
        if (der_enter(&algorithm, 0x05, &params) != 0 || params.len != 0 ||
            algorithm.pos != algorithm.len) {
            return LWM2MD_ERR_INVALID;
        }
    }

    if (der_enter(&info, 0x04, &octets) != 0 || info.pos != info.len ||
        octets.len <= 2 * JKS_SHA1_LEN) {
        return LWM2MD_ERR_INVALID;
    }
    return blob_copy(out, octets.data, octets.len);
}

/* One certificate: the type string (version 2) and the DER bytes. */
static int parse_certificate(jks_reader_t *reader, uint32_t version, jks_t *jks)
{
    int rc = 0;
    if (version == 2) {
        size_t type_len = 0;
        const uint8_t *type = NULL;
        rc = read_u16(reader, &type_len);
        if (rc == 0) {
            rc = read_bytes(reader, type_len, &type);
        }
        if (rc != 0) {
            return rc;
        }
        if (type_len != strlen(JKS_CERT_TYPE) || memcmp(type, JKS_CERT_TYPE, type_len) != 0) {
            return LWM2MD_ERR_INVALID;
        }
    }

    uint32_t der_len = 0;
    const uint8_t *der = NULL;
    rc = read_u32(reader, &der_len);
    if (rc == 0) {
        rc = read_bytes(reader, der_len, &der);
    }
    if (rc != 0) {
        return rc;
    }
    if (der_len == 0) {
        return LWM2MD_ERR_INVALID;
    }

    rc = grow((void **)&jks->certs, &jks->cert_cap, jks->cert_count, sizeof(*jks->certs));
    if (rc != 0) {
        return rc;
    }
    rc = blob_copy(&jks->certs[jks->cert_count], der, der_len);
    if (rc == 0) {
        jks->cert_count++;
    }
    return rc;
}

/* The alias: modified UTF-8, which never holds a zero byte; unique ignoring case. */
static int parse_alias(jks_reader_t *reader, const jks_t *jks, char **out)
{
    size_t len = 0;
    const uint8_t *bytes = NULL;
    int rc = read_u16(reader, &len);
    if (rc == 0) {
        rc = read_bytes(reader, len, &bytes);
    }
    if (rc != 0) {
        return rc;
    }
    if (memchr(bytes, 0, len) != NULL) {
        return LWM2MD_ERR_INVALID;
    }

    char *alias = malloc(len + 1);
    if (alias == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(alias, bytes, len);
    alias[len] = '\0';

    for (size_t i = 0; i < jks->entry_count; i++) {
        if (strcasecmp(jks->entries[i].alias, alias) == 0) {
            free(alias);
            return LWM2MD_ERR_INVALID;
        }
    }
    *out = alias;
    return 0;
}

/* A private key entry's body: the protected key, then its chain. */
static int parse_key_body(jks_reader_t *reader, uint32_t version, jks_t *jks, jks_entry_t *entry)
{
    uint32_t key_len = 0;
    const uint8_t *key = NULL;
    int rc = read_u32(reader, &key_len);
    if (rc == 0) {
        rc = read_bytes(reader, key_len, &key);
    }
    if (rc == 0) {
        rc = parse_protected_key(key, key_len, &entry->protected_key);
    }
    if (rc != 0) {
        return rc;
    }

    uint32_t chain_count = 0;
    rc = read_u32(reader, &chain_count);
    for (uint32_t i = 0; rc == 0 && i < chain_count; i++) {
        rc = parse_certificate(reader, version, jks);
        if (rc == 0) {
            entry->cert_count++;
        }
    }
    return rc;
}

static int parse_entry(jks_reader_t *reader, uint32_t version, jks_t *jks)
{
    int rc = grow((void **)&jks->entries, &jks->entry_cap, jks->entry_count, sizeof(*jks->entries));
    if (rc != 0) {
        return rc;
    }

    /* Counted once it owns its alias, so jks_free releases whatever it holds next. */
    jks_entry_t *entry = &jks->entries[jks->entry_count];
    *entry = (jks_entry_t){.first_cert = jks->cert_count};
    uint32_t tag = 0;
    uint64_t timestamp = 0;
    rc = read_u32(reader, &tag);
    if (rc == 0 && tag != JKS_TAG_KEY && tag != JKS_TAG_TRUSTED) {
        rc = LWM2MD_ERR_INVALID;
    }
    if (rc == 0) {
        rc = parse_alias(reader, jks, &entry->alias);
    }
    if (rc != 0) {
        return rc;
    }
    jks->entry_count++;

    rc = read_uint(reader, 8, &timestamp);
    if (rc != 0) {
        return rc;
    }
    entry->is_key = tag == JKS_TAG_KEY;
    if (entry->is_key) {
        return parse_key_body(reader, version, jks, entry);
    }
    rc = parse_certificate(reader, version, jks);
    if (rc == 0) {
        entry->cert_count = 1;
    }
    return rc;
}

/* The header and every entry; ends exactly where the digest starts. */
static int parse_structure(jks_reader_t *reader, jks_t *jks)
{
    uint32_t magic = 0;
    uint32_t version = 0;
    uint32_t count = 0;
    int rc = read_u32(reader, &magic);
    if (rc == 0 && magic != JKS_MAGIC) {
        return LWM2MD_ERR_INVALID;
    }
    if (rc == 0) {
        rc = read_u32(reader, &version);
    }
    if (rc == 0 && version != 1 && version != 2) {
        return LWM2MD_ERR_INVALID;
    }
    if (rc == 0) {
        rc = read_u32(reader, &count);
    }

    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        rc = parse_entry(reader, version, jks);
    }
    if (rc != 0) {
        return rc;
    }

    size_t left = reader->len - reader->pos;
    if (left < JKS_SHA1_LEN) {
        return LWM2MD_ERR_TRUNCATED;
    }
    return left == JKS_SHA1_LEN ? 0 : LWM2MD_ERR_INVALID;
}

/* The integrity digest: SHA-1(password || "Mighty Aphrodite" || body). */
static int check_digest(const uint8_t *data, size_t body_len, const char *password)
{
    uint8_t *pw = NULL;
    size_t pw_len = 0;
    int rc = password_utf16be(password, &pw, &pw_len);
    if (rc != 0) {
        return rc;
    }

    gnutls_hash_hd_t hash = NULL;
    uint8_t digest[JKS_SHA1_LEN];
    rc = gnutls_hash_init(&hash, GNUTLS_DIG_SHA1) < 0 ? LWM2MD_ERR_CRYPTO : 0;
    if (rc == 0) {
        if (gnutls_hash(hash, pw, pw_len) < 0 ||
            gnutls_hash(hash, JKS_WHITENER, strlen(JKS_WHITENER)) < 0 ||
            gnutls_hash(hash, data, body_len) < 0) {
            rc = LWM2MD_ERR_CRYPTO;
        }
        gnutls_hash_deinit(hash, digest);
    }
    if (rc == 0 && !digest_equal(digest, data + body_len)) {
        rc = LWM2MD_ERR_PASSWORD;
    }

    gnutls_memset(pw, 0, pw_len);
    free(pw);
    return rc;
}

int jks_parse(const uint8_t *data, size_t len, const char *store_password, jks_t **out)
{
    *out = NULL;
    if (data == NULL && len > 0) {
        return LWM2MD_ERR_INVALID;
    }

    jks_t *jks = calloc(1, sizeof(*jks));
    if (jks == NULL) {
        return LWM2MD_ERR_NOMEM;
    }

    /* Structure first, so a damaged file is reported as such, not as a wrong password. */
    jks_reader_t reader = {.data = data, .len = len, .pos = 0};
    int rc = parse_structure(&reader, jks);
    if (rc == 0) {
        rc = check_digest(data, len - JKS_SHA1_LEN, store_password);
    }
    if (rc != 0) {
        jks_free(jks);
        return rc;
    }
    *out = jks;
    return 0;
}

void jks_free(jks_t *jks)
{
    if (jks == NULL) {
        return;
    }
    for (size_t i = 0; i < jks->entry_count; i++) {
        jks_entry_t *entry = &jks->entries[i];
        free(entry->alias);
        if (entry->protected_key.data != NULL) {
            gnutls_memset(entry->protected_key.data, 0, entry->protected_key.len);
            free(entry->protected_key.data);
        }
    }
    for (size_t i = 0; i < jks->cert_count; i++) {
        free(jks->certs[i].data);
    }
    free(jks->entries);
    free(jks->certs);
    free(jks);
}

static const jks_entry_t *find_entry(const jks_t *jks, const char *alias)
{
    for (size_t i = 0; i < jks->entry_count; i++) {
        if (strcasecmp(jks->entries[i].alias, alias) == 0) {
            return &jks->entries[i];
        }
    }
    return NULL;
}

/*
 * Sun's key protector: keystream blocks D_i = SHA-1(password || D_(i-1))
 * with D_0 = salt; plaintext = ciphertext XOR keystream; the trailing
 * check must equal SHA-1(password || plaintext). On success *out holds
 * the PKCS#8 PrivateKeyInfo (caller wipes and frees).
 */
static int unprotect_key(const jks_blob_t *protected_key, const uint8_t *pw, size_t pw_len,
                         uint8_t **out, size_t *out_len)
{
    const uint8_t *salt = protected_key->data;
    const uint8_t *cipher = salt + JKS_SHA1_LEN;
    size_t len = protected_key->len - 2 * JKS_SHA1_LEN;
    const uint8_t *check = cipher + len;
    uint8_t *plain = malloc(len);
    if (plain == NULL) {
        return LWM2MD_ERR_NOMEM;
    }

    uint8_t block[JKS_SHA1_LEN];
    memcpy(block, salt, sizeof(block));
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < len; done += JKS_SHA1_LEN) {
        rc = sha1_two(pw, pw_len, block, sizeof(block), block);
        size_t n = len - done < JKS_SHA1_LEN ? len - done : JKS_SHA1_LEN;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            plain[done + i] = cipher[done + i] ^ block[i];
        }
    }

    uint8_t digest[JKS_SHA1_LEN];
    if (rc == 0) {
        rc = sha1_two(pw, pw_len, plain, len, digest);
    }
    if (rc == 0 && !digest_equal(digest, check)) {
        rc = LWM2MD_ERR_PASSWORD;
    }
    gnutls_memset(block, 0, sizeof(block));
    if (rc != 0) {
        gnutls_memset(plain, 0, len);
        free(plain);
        return rc;
    }
    *out = plain;
    *out_len = len;
    return 0;
}

/* Copies an entry's certificates into caller-owned arrays. */
static int copy_chain(const jks_t *jks, const jks_entry_t *entry, uint8_t ***chain,
                      size_t **chain_lens, size_t *chain_count)
{
    size_t count = entry->cert_count;
    uint8_t **certs = calloc(count > 0 ? count : 1, sizeof(*certs));
    size_t *lens = calloc(count > 0 ? count : 1, sizeof(*lens));
    if (certs == NULL || lens == NULL) {
        free(certs);
        free(lens);
        return LWM2MD_ERR_NOMEM;
    }

    for (size_t i = 0; i < count; i++) {
        const jks_blob_t *cert = &jks->certs[entry->first_cert + i];
        certs[i] = malloc(cert->len);
        if (certs[i] == NULL) {
            jks_free_chain(certs, lens, i);
            return LWM2MD_ERR_NOMEM;
        }
        memcpy(certs[i], cert->data, cert->len);
        lens[i] = cert->len;
    }
    *chain = certs;
    *chain_lens = lens;
    *chain_count = count;
    return 0;
}

int jks_get_key(const jks_t *jks, const char *alias, const char *key_password, uint8_t **key_der,
                size_t *key_len, uint8_t ***chain, size_t **chain_lens, size_t *chain_count)
{
    *key_der = NULL;
    *key_len = 0;
    *chain = NULL;
    *chain_lens = NULL;
    *chain_count = 0;
    const jks_entry_t *entry = alias != NULL ? find_entry(jks, alias) : NULL;
    if (entry == NULL || !entry->is_key) {
        return LWM2MD_ERR_NOT_FOUND;
    }

    uint8_t *pw = NULL;
    size_t pw_len = 0;
    int rc = password_utf16be(key_password, &pw, &pw_len);
    if (rc != 0) {
        return rc;
    }
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    rc = unprotect_key(&entry->protected_key, pw, pw_len, &plain, &plain_len);
    gnutls_memset(pw, 0, pw_len);
    free(pw);
    if (rc != 0) {
        return rc;
    }

    rc = copy_chain(jks, entry, chain, chain_lens, chain_count);
    if (rc != 0) {
        gnutls_memset(plain, 0, plain_len);
        free(plain);
        return rc;
    }
    *key_der = plain;
    *key_len = plain_len;
    return 0;
}

void jks_free_chain(uint8_t **chain, size_t *chain_lens, size_t chain_count)
{
    if (chain != NULL) {
        for (size_t i = 0; i < chain_count; i++) {
            free(chain[i]);
        }
    }
    free(chain);
    free(chain_lens);
}

size_t jks_entry_count(const jks_t *jks)
{
    return jks->entry_count;
}

const char *jks_entry_alias(const jks_t *jks, size_t index, bool *is_key)
{
    if (index >= jks->entry_count) {
        return NULL;
    }
    if (is_key != NULL) {
        *is_key = jks->entries[index].is_key;
    }
    return jks->entries[index].alias;
}

size_t jks_certificate_count(const jks_t *jks)
{
    return jks->cert_count;
}

const uint8_t *jks_certificate(const jks_t *jks, size_t index, size_t *len)
{
    if (index >= jks->cert_count) {
        *len = 0;
        return NULL;
    }
    *len = jks->certs[index].len;
    return jks->certs[index].data;
}
