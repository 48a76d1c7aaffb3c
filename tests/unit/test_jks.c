/* Tests of the JKS reader (src/dtls/jks.c): keytool's files, passwords, malformed input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "dtls/jks.h"

#define STOREPASS "storepass"
#define KEYPASS "keypass"

/* A whole file from tests/data/credentials. */
typedef struct blob {
    uint8_t *data;
    size_t len;
} blob_t;

static blob_t load(const char *name)
{
    const char *dir = getenv("LWM2MD_TEST_DATA");
    char path[512];
    snprintf(path, sizeof(path), "%s/credentials/%s", dir != NULL ? dir : "tests/data", name);
    gnutls_datum_t datum = {0};
    assert_int_equal(gnutls_load_file(path, &datum), 0);
    blob_t blob = {.data = malloc(datum.size), .len = datum.size};
    assert_non_null(blob.data);
    memcpy(blob.data, datum.data, datum.size);
    gnutls_free(datum.data);
    return blob;
}

/* A certificate fixture as DER, to compare with what the store returns. */
static blob_t load_cert_der(const char *name)
{
    blob_t pem = load(name);
    gnutls_datum_t in = {.data = pem.data, .size = (unsigned)pem.len};
    gnutls_datum_t out = {0};
    assert_int_equal(gnutls_pem_base64_decode2("CERTIFICATE", &in, &out), 0);
    blob_t der = {.data = malloc(out.size), .len = out.size};
    memcpy(der.data, out.data, out.size);
    gnutls_free(out.data);
    free(pem.data);
    return der;
}

/* Rewrites the trailing digest for `password`, as keytool would have. */
static void reseal(uint8_t *data, size_t len, const char *password)
{
    size_t pw_len = strlen(password);
    size_t whitener = strlen("Mighty Aphrodite");
    size_t total = 2 * pw_len + whitener + len - 20;
    uint8_t *input = malloc(total);
    assert_non_null(input);
    for (size_t i = 0; i < pw_len; i++) {
        input[2 * i] = 0;
        input[2 * i + 1] = (uint8_t)password[i];
    }
    memcpy(input + 2 * pw_len, "Mighty Aphrodite", whitener);
    memcpy(input + 2 * pw_len + whitener, data, len - 20);
    assert_int_equal(gnutls_hash_fast(GNUTLS_DIG_SHA1, input, total, data + len - 20), 0);
    free(input);
}

static void put_u32(uint8_t *at, uint32_t value)
{
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

/* The offset of a byte string in a blob, which must be there. */
static size_t find(const blob_t *blob, const uint8_t *needle, size_t len)
{
    const uint8_t *at = memmem(blob->data, blob->len, needle, len);
    assert_non_null(at);
    return (size_t)(at - blob->data);
}

static const uint8_t protector_oid[] = {0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04,
                                        0x01, 0x2a, 0x02, 0x11, 0x01, 0x01};

static void test_keytool_key_entry(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    assert_int_equal(jks_entry_count(jks), 1);
    bool is_key = false;
    assert_string_equal(jks_entry_alias(jks, 0, &is_key), "server");
    assert_true(is_key);
    assert_null(jks_entry_alias(jks, 1, &is_key));

    /* The key decrypts to a P-256 PKCS#8 key; the chain is server then CA. */
    uint8_t *key = NULL;
    uint8_t **chain = NULL;
    size_t key_len = 0;
    size_t *lens = NULL;
    size_t count = 0;
    assert_int_equal(jks_get_key(jks, "server", KEYPASS, &key, &key_len, &chain, &lens, &count), 0);
    gnutls_x509_privkey_t pk = NULL;
    gnutls_datum_t datum = {.data = key, .size = (unsigned)key_len};
    assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
    assert_int_equal(
        gnutls_x509_privkey_import_pkcs8(pk, &datum, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN),
        0);
    unsigned bits = 0;
    assert_int_equal(gnutls_x509_privkey_get_pk_algorithm2(pk, &bits), GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 256);
    gnutls_x509_privkey_deinit(pk);

    assert_int_equal(count, 2);
    blob_t server = load_cert_der("server.pem");
    blob_t ca = load_cert_der("ca.pem");
    assert_int_equal(lens[0], server.len);
    assert_memory_equal(chain[0], server.data, server.len);
    assert_int_equal(lens[1], ca.len);
    assert_memory_equal(chain[1], ca.data, ca.len);
    assert_int_equal(jks_certificate_count(jks), 2);

    free(server.data);
    free(ca.data);
    free(key);
    jks_free_chain(chain, lens, count);
    jks_free(jks);
    free(file.data);
}

static void test_alias_ignores_case(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    uint8_t *key = NULL;
    uint8_t **chain = NULL;
    size_t key_len = 0;
    size_t *lens = NULL;
    size_t count = 0;
    assert_int_equal(jks_get_key(jks, "SeRvEr", KEYPASS, &key, &key_len, &chain, &lens, &count), 0);
    free(key);
    jks_free_chain(chain, lens, count);
    jks_free(jks);
    free(file.data);
}

static void test_wrong_store_password(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = (jks_t *)&file;
    assert_int_equal(jks_parse(file.data, file.len, "storepasS", &jks), LWM2MD_ERR_PASSWORD);
    assert_null(jks);
    assert_int_equal(jks_parse(file.data, file.len, "", &jks), LWM2MD_ERR_PASSWORD);
    assert_int_equal(jks_parse(file.data, file.len, NULL, &jks), LWM2MD_ERR_PASSWORD);
    free(file.data);
}

static void test_wrong_key_password(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    uint8_t *key = (uint8_t *)&file;
    uint8_t **chain = NULL;
    size_t key_len = 1;
    size_t *lens = NULL;
    size_t count = 1;
    /* The store password is not the key password in this fixture. */
    assert_int_equal(jks_get_key(jks, "server", STOREPASS, &key, &key_len, &chain, &lens, &count),
                     LWM2MD_ERR_PASSWORD);
    assert_null(key);
    assert_null(chain);
    assert_int_equal(count, 0);
    jks_free(jks);
    free(file.data);
}

static void test_missing_alias_and_trusted_entry(void **state)
{
    blob_t file = load("multi.jks");
    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    assert_int_equal(jks_entry_count(jks), 3);

    /* keytool sorts nothing: check each alias by name, not position. */
    int keys = 0;
    for (size_t i = 0; i < jks_entry_count(jks); i++) {
        bool is_key = false;
        const char *alias = jks_entry_alias(jks, i, &is_key);
        keys += is_key;
        assert_true(is_key == (strcmp(alias, "ca") != 0));
    }
    assert_int_equal(keys, 2);

    uint8_t *key = NULL;
    uint8_t **chain = NULL;
    size_t key_len = 0;
    size_t *lens = NULL;
    size_t count = 0;
    assert_int_equal(jks_get_key(jks, "nope", KEYPASS, &key, &key_len, &chain, &lens, &count),
                     LWM2MD_ERR_NOT_FOUND);
    assert_int_equal(jks_get_key(jks, "ca", KEYPASS, &key, &key_len, &chain, &lens, &count),
                     LWM2MD_ERR_NOT_FOUND);
    assert_int_equal(jks_get_key(jks, "p384", KEYPASS, &key, &key_len, &chain, &lens, &count), 0);
    assert_int_equal(count, 1);
    free(key);
    jks_free_chain(chain, lens, count);

    /* Two key chains (2 + 1) and one trusted certificate. */
    assert_int_equal(jks_certificate_count(jks), 4);
    jks_free(jks);
    free(file.data);
}

static void test_trust_store(void **state)
{
    blob_t file = load("trust.jks");
    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    assert_int_equal(jks_certificate_count(jks), 2);
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        const uint8_t *der = jks_certificate(jks, i, &len);
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t datum = {.data = (unsigned char *)der, .size = (unsigned)len};
        assert_int_equal(gnutls_x509_crt_init(&crt), 0);
        assert_int_equal(gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_DER), 0);
        gnutls_x509_crt_deinit(crt);
    }
    size_t len = 7;
    assert_null(jks_certificate(jks, 2, &len));
    assert_int_equal(len, 0);
    jks_free(jks);
    free(file.data);
}

/* keytool hashes the password as UTF-16BE; U+1D11E needs a surrogate pair. */
static void test_non_ascii_password(void **state)
{
    blob_t file = load("trust_utf8.jks");
    jks_t *jks = NULL;
    assert_int_equal(
        jks_parse(file.data, file.len, "p\xc3\xa4ssw\xc3\xb6rd\xe2\x82\xac\xf0\x9d\x84\x9e", &jks),
        0);
    assert_int_equal(jks_certificate_count(jks), 1);
    jks_free(jks);
    assert_int_equal(jks_parse(file.data, file.len, "p\xc3\xa4sswörd", &jks), LWM2MD_ERR_PASSWORD);
    /* Invalid UTF-8 is not a crash, only a wrong password. */
    assert_int_equal(jks_parse(file.data, file.len, "\xff\xf0\x9d", &jks), LWM2MD_ERR_PASSWORD);
    free(file.data);
}

/* Malformed either way: the parser may run into the digest and find a bad field there. */
static void assert_malformed(int rc)
{
    assert_true(rc == LWM2MD_ERR_TRUNCATED || rc == LWM2MD_ERR_INVALID);
}

/* Every proper prefix of a valid file is refused, and none reads out of bounds. */
static void test_every_truncation(void **state)
{
    const char *names[] = {"server.jks", "multi.jks", "trust.jks"};
    for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        blob_t file = load(names[n]);
        for (size_t len = 0; len < file.len; len++) {
            /* An exact-size copy, so ASan sees any read past the end. */
            uint8_t *copy = malloc(len > 0 ? len : 1);
            memcpy(copy, file.data, len);
            jks_t *jks = NULL;
            assert_malformed(jks_parse(len > 0 ? copy : NULL, len, STOREPASS, &jks));
            assert_null(jks);
            free(copy);
        }
        free(file.data);
    }
}

static void test_bad_header(void **state)
{
    blob_t file = load("trust.jks");
    jks_t *jks = NULL;

    file.data[0] = 0xfe;
    file.data[3] = 0xee;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[3] = 0xed;

    /* JCEKS (0xCECECECE) and unknown versions are not JKS. */
    put_u32(file.data, 0xcececece);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    put_u32(file.data, 0xfeedfeed);
    put_u32(file.data + 4, 3);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    put_u32(file.data + 4, 0);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    assert_null(jks);
    free(file.data);
}

/* Counts and lengths far beyond the input are refused, not allocated for. */
static void test_huge_counts(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = NULL;

    put_u32(file.data + 8, 0xffffffffu);
    assert_malformed(jks_parse(file.data, file.len, STOREPASS, &jks));
    put_u32(file.data + 8, 1);

    /* The protected key length (after tag, alias "server" and the timestamp). */
    size_t key_length_at = 12 + 4 + 2 + 6 + 8;
    put_u32(file.data + key_length_at, 0xfffffff0u);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_TRUNCATED);
    free(file.data);

    /* The chain count, then the first certificate's length. */
    file = load("server.jks");
    size_t key_len = ((size_t)file.data[key_length_at + 2] << 8) | file.data[key_length_at + 3];
    size_t chain_count_at = key_length_at + 4 + key_len;
    put_u32(file.data + chain_count_at, 0x7fffffffu);
    assert_malformed(jks_parse(file.data, file.len, STOREPASS, &jks));
    put_u32(file.data + chain_count_at, 2);
    size_t cert_len_at = chain_count_at + 4 + 2 + 5;
    put_u32(file.data + cert_len_at, 0xffffffffu);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_TRUNCATED);
    put_u32(file.data + cert_len_at, 0);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    assert_null(jks);
    free(file.data);
}

static void test_bad_entries(void **state)
{
    blob_t file = load("trust.jks");
    jks_t *jks = NULL;

    /* Tag 3 is a JCEKS secret key entry; JKS has none. */
    put_u32(file.data + 12, 3);
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    put_u32(file.data + 12, 2);

    /* Modified UTF-8 never holds a zero byte. */
    uint8_t saved = file.data[18];
    file.data[18] = 0;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[18] = saved;

    /* Only X.509 certificates. */
    size_t type_at = find(&file, (const uint8_t *)"X.509", 5);
    file.data[type_at + 2] = '6';
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[type_at + 2] = '5';

    /* Bytes after the digest. */
    uint8_t *longer = malloc(file.len + 1);
    memcpy(longer, file.data, file.len);
    longer[file.len] = 0;
    assert_int_equal(jks_parse(longer, file.len + 1, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    free(longer);

    /* The same file, untouched, still parses. */
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    jks_free(jks);
    free(file.data);
}

static void test_duplicate_alias(void **state)
{
    jks_t *jks = NULL;

    /* Build: magic, v2, two trusted entries with aliases "ab" and "AB". */
    blob_t ca = load_cert_der("ca.pem");
    size_t entry_len = 4 + 2 + 2 + 8 + 2 + 5 + 4 + ca.len;
    size_t len = 12 + 2 * entry_len + 20;
    uint8_t *data = calloc(1, len);
    put_u32(data, 0xfeedfeed);
    put_u32(data + 4, 2);
    put_u32(data + 8, 2);
    for (size_t e = 0; e < 2; e++) {
        uint8_t *at = data + 12 + e * entry_len;
        put_u32(at, 2);
        at[5] = 2;
        memcpy(at + 6, e == 0 ? "ab" : "AB", 2);
        at[17] = 5;
        memcpy(at + 18, "X.509", 5);
        put_u32(at + 23, (uint32_t)ca.len);
        memcpy(at + 27, ca.data, ca.len);
    }
    reseal(data, len, STOREPASS);
    assert_int_equal(jks_parse(data, len, STOREPASS, &jks), LWM2MD_ERR_INVALID);

    /* With distinct aliases the same image is fine: the builder is right. */
    data[12 + entry_len + 6] = 'x';
    reseal(data, len, STOREPASS);
    assert_int_equal(jks_parse(data, len, STOREPASS, &jks), 0);
    assert_int_equal(jks_certificate_count(jks), 2);
    jks_free(jks);
    free(data);
    free(ca.data);
}

/* Version 1 files carry no certificate type strings. */
static void test_version_1(void **state)
{
    blob_t ca = load_cert_der("ca.pem");
    size_t len = 12 + 4 + 2 + 2 + 8 + 4 + ca.len + 20;
    uint8_t *data = calloc(1, len);
    put_u32(data, 0xfeedfeed);
    put_u32(data + 4, 1);
    put_u32(data + 8, 1);
    put_u32(data + 12, 2);
    data[17] = 2;
    memcpy(data + 18, "ca", 2);
    put_u32(data + 28, (uint32_t)ca.len);
    memcpy(data + 32, ca.data, ca.len);
    reseal(data, len, STOREPASS);

    jks_t *jks = NULL;
    assert_int_equal(jks_parse(data, len, STOREPASS, &jks), 0);
    size_t cert_len = 0;
    const uint8_t *der = jks_certificate(jks, 0, &cert_len);
    assert_int_equal(cert_len, ca.len);
    assert_memory_equal(der, ca.data, ca.len);
    jks_free(jks);
    free(data);
    free(ca.data);
}

/* The EncryptedPrivateKeyInfo must be Sun's protector, well formed. */
static void test_bad_protected_key(void **state)
{
    blob_t file = load("server.jks");
    jks_t *jks = NULL;
    size_t oid_at = find(&file, protector_oid, sizeof(protector_oid));

    /* Another algorithm OID. */
    file.data[oid_at + 11] = 0x02;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[oid_at + 11] = 0x01;

    /* Parameters that are not NULL. */
    file.data[oid_at + 12] = 0x04;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[oid_at + 12] = 0x05;

    /* An inner length that overruns its SEQUENCE; a wrong tag. */
    file.data[oid_at - 1] = 0x7f;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[oid_at - 1] = 0x0e;
    file.data[oid_at - 2] = 0x31;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[oid_at - 2] = 0x30;

    /* Indefinite length on the outer SEQUENCE (30 81 xx becomes 30 80 xx). */
    file.data[oid_at - 4] = 0x80;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), LWM2MD_ERR_INVALID);
    file.data[oid_at - 4] = 0x81;

    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    jks_free(jks);
    free(file.data);
}

/* A damaged ciphertext in a well-sealed file fails the key check, not a crash. */
static void test_damaged_key_ciphertext(void **state)
{
    blob_t file = load("server.jks");
    size_t oid_at = find(&file, protector_oid, sizeof(protector_oid));
    /* OID, NULL, OCTET STRING header (04 81 xx), salt: then the ciphertext. */
    size_t cipher_at = oid_at + sizeof(protector_oid) + 2 + 3 + 20;
    file.data[cipher_at + 5] ^= 0x40;
    reseal(file.data, file.len, STOREPASS);

    jks_t *jks = NULL;
    assert_int_equal(jks_parse(file.data, file.len, STOREPASS, &jks), 0);
    uint8_t *key = NULL;
    uint8_t **chain = NULL;
    size_t key_len = 0;
    size_t *lens = NULL;
    size_t count = 0;
    assert_int_equal(jks_get_key(jks, "server", KEYPASS, &key, &key_len, &chain, &lens, &count),
                     LWM2MD_ERR_PASSWORD);
    jks_free(jks);
    free(file.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keytool_key_entry),
        cmocka_unit_test(test_alias_ignores_case),
        cmocka_unit_test(test_wrong_store_password),
        cmocka_unit_test(test_wrong_key_password),
        cmocka_unit_test(test_missing_alias_and_trusted_entry),
        cmocka_unit_test(test_trust_store),
        cmocka_unit_test(test_non_ascii_password),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_duplicate_alias),
        cmocka_unit_test(test_version_1),
        cmocka_unit_test(test_bad_protected_key),
        cmocka_unit_test(test_damaged_key_ciphertext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
