/* Tests of server credential loading (src/dtls/credentials.c): PEM, PKCS#12, JKS, trust. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "dtls/credentials.h"
#include "dtls/credentials_internal.h"

#define ERR_SIZE 512
#define STOREPASS "storepass"
#define KEYPASS "keypass"

static void fixture(char *out, size_t size, const char *name)
{
    const char *dir = getenv("LWM2MD_TEST_DATA");
    snprintf(out, size, "%s/credentials/%s", dir != NULL ? dir : "tests/data", name);
}

static config_credentials_t pem(const char *cert, const char *key, const char *password)
{
    config_credentials_t creds = {.enabled = true, .type = CONFIG_CREDENTIALS_PEM};
    fixture(creds.pem_cert, sizeof(creds.pem_cert), cert);
    if (key != NULL) {
        fixture(creds.pem_key, sizeof(creds.pem_key), key);
    }
    snprintf(creds.pem_key_password, sizeof(creds.pem_key_password), "%s",
             password != NULL ? password : "");
    return creds;
}

static config_credentials_t store(config_keystore_type_t type, const char *file,
                                  const char *store_password, const char *alias,
                                  const char *key_password)
{
    config_credentials_t creds = {
        .enabled = true, .type = CONFIG_CREDENTIALS_KEYSTORE, .key_store_type = type};
    fixture(creds.key_store, sizeof(creds.key_store), file);
    snprintf(creds.key_store_password, sizeof(creds.key_store_password), "%s", store_password);
    snprintf(creds.key_alias, sizeof(creds.key_alias), "%s", alias);
    snprintf(creds.key_password, sizeof(creds.key_password), "%s", key_password);
    return creds;
}

static config_trust_t trust_pem(const char *file)
{
    config_trust_t trust = {.enabled = true, .type = CONFIG_CREDENTIALS_PEM};
    fixture(trust.pem_cert, sizeof(trust.pem_cert), file);
    return trust;
}

static config_trust_t trust_store(config_keystore_type_t type, const char *file,
                                  const char *password)
{
    config_trust_t trust = {
        .enabled = true, .type = CONFIG_CREDENTIALS_KEYSTORE, .key_store_type = type};
    fixture(trust.key_store, sizeof(trust.key_store), file);
    snprintf(trust.key_store_password, sizeof(trust.key_store_password), "%s", password);
    return trust;
}

/* The DER SubjectPublicKeyInfo of a certificate fixture. */
static gnutls_datum_t cert_spki(const char *name)
{
    char path[512];
    fixture(path, sizeof(path), name);
    gnutls_datum_t file = {0};
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t spki = {0};
    assert_int_equal(gnutls_load_file(path, &file), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &file, GNUTLS_X509_FMT_PEM), 0);
    assert_int_equal(gnutls_pubkey_init(&pub), 0);
    assert_int_equal(gnutls_pubkey_import_x509(pub, crt, 0), 0);
    assert_int_equal(gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki), 0);
    gnutls_pubkey_deinit(pub);
    gnutls_x509_crt_deinit(crt);
    gnutls_free(file.data);
    return spki;
}

/* Loads what must load, and checks that the server key is the certificate's. */
static dtls_credentials_t *load_ok(const config_credentials_t *server, const config_trust_t *trust,
                                   const char *leaf)
{
    char err[ERR_SIZE] = "untouched";
    dtls_credentials_t *creds = NULL;
    int rc = dtls_credentials_load(server, "LWM2M_SERVER", trust, &creds, err, sizeof(err));
    if (rc != 0) {
        fail_msg("load failed: %s (%s)", err, lwm2md_strerror(rc));
    }
    assert_non_null(creds);
    if (leaf != NULL) {
        assert_true(dtls_credentials_has_certificate(creds));
        assert_non_null(dtls_credentials_x509(creds));
        assert_non_null(dtls_credentials_rpk(creds));
        assert_non_null(dtls_credentials_certificate(creds));
        gnutls_datum_t expected = cert_spki(leaf);
        size_t len = 0;
        const uint8_t *spki = dtls_credentials_spki(creds, &len);
        assert_int_equal(len, expected.size);
        assert_memory_equal(spki, expected.data, len);
        gnutls_free(expected.data);
    }
    assert_non_null(dtls_credentials_trust(creds));
    return creds;
}

/*
 * Loads what must fail: the code, and a one-line message holding `want`
 * that never shows a password.
 */
static void load_fails(const config_credentials_t *server, const char *prefix,
                       const config_trust_t *trust, int want_rc, const char *want)
{
    char err[ERR_SIZE] = "";
    dtls_credentials_t *creds = (dtls_credentials_t *)err;
    int rc = dtls_credentials_load(server, prefix, trust, &creds, err, sizeof(err));
    assert_null(creds);
    if (rc != want_rc || strstr(err, want) == NULL) {
        fail_msg("got %d '%s', want %d '%s'", rc, err, want_rc, want);
    }
    assert_null(strchr(err, '\n'));
    const char *secrets[] = {STOREPASS, KEYPASS, "wrongpass"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        assert_null(strstr(err, secrets[i]));
    }
}

static void test_pem_key_in_cert_file(void **state)
{
    config_credentials_t server = pem("server_with_key.pem", NULL, NULL);
    dtls_credentials_t *creds = load_ok(&server, NULL, "server.pem");
    assert_int_equal(dtls_credentials_trust_count(creds), 0);
    dtls_credentials_free(creds);
}

static void test_pem_separate_key(void **state)
{
    config_credentials_t server = pem("server_chain.pem", "server_key.pem", NULL);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    /* An unneeded password is harmless. */
    server = pem("server.pem", "server_key.pem", "wrongpass");
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));
}

/* What docs/SECURITY.md promises: traditional and DER keys, a chain in any order. */
static void test_pem_layouts(void **state)
{
    config_credentials_t server = pem("server.pem", "server_key_traditional.pem", NULL);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));
    server = pem("server.pem", "server_key.der", NULL);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    server = pem("server_chain_reversed.pem", "server_key.pem", NULL);
    dtls_credentials_t *creds = load_ok(&server, NULL, "server.pem");
    gnutls_x509_crt_t *chain = NULL;
    unsigned count = 0;
    assert_int_equal(
        gnutls_certificate_get_x509_crt(dtls_credentials_x509(creds), 0, &chain, &count), 0);
    assert_int_equal(count, 2);
    char cn[64];
    size_t cn_len = sizeof(cn);
    assert_int_equal(
        gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len), 0);
    assert_string_equal(cn, "localhost");
    for (unsigned i = 0; i < count; i++) {
        gnutls_x509_crt_deinit(chain[i]);
    }
    gnutls_free(chain);
    dtls_credentials_free(creds);
}

static void test_pem_no_key(void **state)
{
    config_credentials_t server = pem("server_chain.pem", NULL, NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_PEM_KEY: not set, and LWM2M_SERVER_PEM_CERT=");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "server_chain.pem holds no private key");

    /* A key file that holds a certificate, and a certificate file that holds a key. */
    server = pem("server.pem", "server.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_INVALID, "not a valid private key");
    server = pem("server_key.pem", "server_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND, "holds no certificate");
}

static void test_pem_encrypted_pkcs8(void **state)
{
    config_credentials_t server = pem("server.pem", "server_key_pkcs8_enc.pem", KEYPASS);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    server = pem("server.pem", "server_key_pkcs8_enc.pem", "wrongpass");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_PEM_KEY_PASSWORD: wrong password for ");
    server = pem("server.pem", "server_key_pkcs8_enc.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_PEM_KEY_PASSWORD: not set, and LWM2M_SERVER_PEM_KEY=");
}

/* OpenSSL's traditional "BEGIN EC PRIVATE KEY" with Proc-Type/DEK-Info headers. */
static void test_pem_encrypted_legacy(void **state)
{
    config_credentials_t server = pem("server.pem", "server_key_legacy_enc.pem", KEYPASS);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    server = pem("server.pem", "server_key_legacy_enc.pem", "wrongpass");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_PEM_KEY_PASSWORD: wrong password for ");
}

static void test_missing_file(void **state)
{
    config_credentials_t server = pem("server.pem", NULL, NULL);
    snprintf(server.pem_cert, sizeof(server.pem_cert), "/nonexistent/cert.pem");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_IO,
               "LWM2M_SERVER_PEM_CERT=/nonexistent/cert.pem: cannot read (no such file or "
               "directory)");

    server = pem("server.pem", "absent_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_IO, "absent_key.pem: cannot read");

    /* A directory is not a credentials file. */
    server = pem("server.pem", NULL, NULL);
    fixture(server.pem_key, sizeof(server.pem_key), "");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_IO, "not a regular file");
}

static void test_rsa_refused(void **state)
{
    config_credentials_t server = pem("rsa.pem", "rsa_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_UNSUPPORTED,
               "rsa_key.pem: the key is RSA; an ECDSA key is required");
}

static void test_key_mismatch(void **state)
{
    config_credentials_t server = pem("server.pem", "other_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_INVALID,
               "other_key.pem: the key does not match the certificate");
    server = pem("p384.pem", "server_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_INVALID, "LWM2M_SERVER_PEM_KEY=");
}

static void test_curves(void **state)
{
    config_credentials_t server = pem("p384.pem", "p384_key.pem", NULL);
    dtls_credentials_free(load_ok(&server, NULL, "p384.pem"));

    server = pem("p521.pem", "p521_key.pem", NULL);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_UNSUPPORTED,
               "p521_key.pem: the key's curve is P-521; P-256 or P-384 is required");
}

/* The bootstrap server's variables are named in its messages. */
static void test_prefix_in_messages(void **state)
{
    config_credentials_t server = pem("server.pem", "server_key_pkcs8_enc.pem", "wrongpass");
    load_fails(&server, "LWM2M_BS", NULL, LWM2MD_ERR_PASSWORD, "LWM2M_BS_PEM_KEY_PASSWORD: ");
}

static void test_pkcs12(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_PKCS12, "server.p12", STOREPASS, "server", STOREPASS);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    /* The key password defaults to the store password; the alias ignores case. */
    server = store(CONFIG_KEYSTORE_PKCS12, "server.p12", STOREPASS, "Server", "");
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));
}

static void test_pkcs12_errors(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_PKCS12, "server.p12", "wrongpass", "server", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_KEY_STORE_PASSWORD: wrong password for ");

    server = store(CONFIG_KEYSTORE_PKCS12, "server.p12", STOREPASS, "server", "wrongpass");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_KEY_PASSWORD: wrong password for key 'server' in ");

    server = store(CONFIG_KEYSTORE_PKCS12, "server.p12", STOREPASS, "nope", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS=nope: no such alias in ");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND, "(its keys: 'server')");

    server = store(CONFIG_KEYSTORE_PKCS12, "key_only.p12", STOREPASS, "server", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS=server: the key has no certificate in ");

    server = store(CONFIG_KEYSTORE_PKCS12, "server.jks", STOREPASS, "server", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_INVALID,
               "server.jks: not a valid PKCS#12 key store");
}

/* keytool's PKCS#12 with two keys and a trusted certificate. */
static void test_pkcs12_choosing(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_PKCS12, "multi.p12", STOREPASS, "p384", STOREPASS);
    dtls_credentials_free(load_ok(&server, NULL, "p384.pem"));

    server = store(CONFIG_KEYSTORE_PKCS12, "multi.p12", STOREPASS, "ca", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS=ca: a certificate without a private key in ");

    server = store(CONFIG_KEYSTORE_PKCS12, "multi.p12", STOREPASS, "", STOREPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS: not set, and ");
}

static void test_jks(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_JKS, "server.jks", STOREPASS, "server", KEYPASS);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    /* With the alias empty, a store's only key is taken. */
    server = store(CONFIG_KEYSTORE_JKS, "server.jks", STOREPASS, "", KEYPASS);
    dtls_credentials_free(load_ok(&server, NULL, "server.pem"));

    server = store(CONFIG_KEYSTORE_JKS, "multi.jks", STOREPASS, "P384", KEYPASS);
    dtls_credentials_free(load_ok(&server, NULL, "p384.pem"));
}

static void test_jks_errors(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_JKS, "server.jks", "wrongpass", "server", KEYPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_KEY_STORE_PASSWORD: wrong password for ");

    server = store(CONFIG_KEYSTORE_JKS, "server.jks", STOREPASS, "server", "wrongpass");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_KEY_PASSWORD: wrong password for key 'server' in ");

    /* Without its own password the key is tried with the store's, as keytool does. */
    server = store(CONFIG_KEYSTORE_JKS, "server.jks", STOREPASS, "server", "");
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_PASSWORD,
               "LWM2M_SERVER_KEY_STORE_PASSWORD: wrong password for key 'server'");

    server = store(CONFIG_KEYSTORE_JKS, "multi.jks", STOREPASS, "nope", KEYPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS=nope: no such alias in ");

    server = store(CONFIG_KEYSTORE_JKS, "multi.jks", STOREPASS, "ca", KEYPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND,
               "LWM2M_SERVER_KEY_ALIAS=ca: a certificate without a private key in ");

    server = store(CONFIG_KEYSTORE_JKS, "multi.jks", STOREPASS, "", KEYPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_NOT_FOUND, "holds several keys");

    server = store(CONFIG_KEYSTORE_JKS, "server.p12", STOREPASS, "server", KEYPASS);
    load_fails(&server, "LWM2M_SERVER", NULL, LWM2MD_ERR_INVALID,
               "server.p12: not a valid JKS key store");
}

/* The trust list verifies a client certificate issued by a trusted CA. */
static void assert_trusts(const dtls_credentials_t *creds, const char *cert, bool trusted)
{
    char path[512];
    fixture(path, sizeof(path), cert);
    gnutls_datum_t file = {0};
    gnutls_x509_crt_t crt = NULL;
    assert_int_equal(gnutls_load_file(path, &file), 0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &file, GNUTLS_X509_FMT_PEM), 0);
    unsigned status = 0;
    assert_int_equal(gnutls_x509_trust_list_verify_crt2(dtls_credentials_trust(creds), &crt, 1,
                                                        NULL, 0, 0, &status, NULL),
                     0);
    assert_int_equal(status == 0, trusted);
    gnutls_x509_crt_deinit(crt);
    gnutls_free(file.data);
}

static void test_trust_sources(void **state)
{
    config_credentials_t server = pem("server_with_key.pem", NULL, NULL);
    config_trust_t trusts[] = {
        trust_pem("trust_2ca.pem"),
        trust_store(CONFIG_KEYSTORE_JKS, "trust.jks", STOREPASS),
        trust_store(CONFIG_KEYSTORE_PKCS12, "trust.p12", STOREPASS),
    };
    for (size_t i = 0; i < sizeof(trusts) / sizeof(trusts[0]); i++) {
        dtls_credentials_t *creds = load_ok(&server, &trusts[i], "server.pem");
        assert_int_equal(dtls_credentials_trust_count(creds), 2);
        assert_trusts(creds, "client.pem", true);
        dtls_credentials_free(creds);
    }

    /* A trust store alone, for a PSK-only server; one CA trusts nothing else. */
    config_credentials_t none = {.enabled = false};
    config_trust_t one = trust_pem("ca2.pem");
    dtls_credentials_t *creds = load_ok(&none, &one, NULL);
    assert_false(dtls_credentials_has_certificate(creds));
    assert_int_equal(dtls_credentials_trust_count(creds), 1);
    assert_trusts(creds, "client.pem", false);
    dtls_credentials_free(creds);
}

static void test_trust_errors(void **state)
{
    config_trust_t trust = trust_store(CONFIG_KEYSTORE_JKS, "trust.jks", "wrongpass");
    load_fails(NULL, "LWM2M_SERVER", &trust, LWM2MD_ERR_PASSWORD,
               "LWM2M_TRUST_KEY_STORE_PASSWORD: wrong password for ");
    trust = trust_store(CONFIG_KEYSTORE_PKCS12, "trust.p12", "wrongpass");
    load_fails(NULL, "LWM2M_SERVER", &trust, LWM2MD_ERR_PASSWORD,
               "LWM2M_TRUST_KEY_STORE_PASSWORD: wrong password for ");
    trust = trust_pem("server_key.pem");
    load_fails(NULL, "LWM2M_SERVER", &trust, LWM2MD_ERR_NOT_FOUND, "LWM2M_TRUST_PEM_CERT=");
    load_fails(NULL, "LWM2M_SERVER", &trust, LWM2MD_ERR_NOT_FOUND,
               "server_key.pem: holds no certificate");
    trust = trust_pem("absent.pem");
    load_fails(NULL, "LWM2M_SERVER", &trust, LWM2MD_ERR_IO, "absent.pem: cannot read");
}

static void test_nothing_configured(void **state)
{
    config_credentials_t server = {.enabled = false};
    config_trust_t trust = {.enabled = false};
    dtls_credentials_t *creds = load_ok(&server, &trust, NULL);
    assert_false(dtls_credentials_has_certificate(creds));
    assert_null(dtls_credentials_x509(creds));
    assert_null(dtls_credentials_rpk(creds));
    size_t len = 9;
    assert_null(dtls_credentials_spki(creds, &len));
    assert_int_equal(len, 0);
    assert_int_equal(dtls_credentials_trust_count(creds), 0);
    dtls_credentials_free(creds);
    dtls_credentials_free(NULL);
}

static void assert_spki_of(const char *file, const gnutls_datum_t *expected)
{
    char path[512];
    char err[ERR_SIZE] = "";
    uint8_t *der = NULL;
    size_t len = 0;
    fixture(path, sizeof(path), file);
    if (dtls_read_public_key(path, &der, &len, err, sizeof(err)) != 0) {
        fail_msg("%s: %s", file, err);
    }
    assert_int_equal(len, expected->size);
    assert_memory_equal(der, expected->data, len);
    free(der);
}

static void read_fails(int (*reader)(const char *, uint8_t **, size_t *, char *, size_t),
                       const char *file, int want_rc, const char *want)
{
    char path[512];
    char err[ERR_SIZE] = "";
    uint8_t *der = (uint8_t *)err;
    size_t len = 1;
    fixture(path, sizeof(path), file);
    int rc = reader(path, &der, &len, err, sizeof(err));
    if (rc != want_rc || strstr(err, want) == NULL) {
        fail_msg("%s: got %d '%s', want %d '%s'", file, rc, err, want_rc, want);
    }
    assert_null(der);
    assert_int_equal(len, 0);
}

static void test_read_public_key(void **state)
{
    gnutls_datum_t expected = cert_spki("client.pem");
    const char *forms[] = {"client_pub.pem", "client_pub.der", "client.pem", "client.der"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_spki_of(forms[i], &expected);
    }
    gnutls_free(expected.data);

    read_fails(dtls_read_public_key, "rsa_pub.pem", LWM2MD_ERR_UNSUPPORTED,
               "the key is RSA; an EC key is required");
    read_fails(dtls_read_public_key, "client_key.pem", LWM2MD_ERR_INVALID, "holds a private key");
    read_fails(dtls_read_public_key, "make-fixtures.sh", LWM2MD_ERR_INVALID,
               "not a public key or certificate");
    read_fails(dtls_read_public_key, "absent.pem", LWM2MD_ERR_IO, "absent.pem: cannot read");
}

static void test_read_certificate(void **state)
{
    char path[512];
    char err[ERR_SIZE] = "";
    gnutls_datum_t expected = {0};
    fixture(path, sizeof(path), "client.der");
    assert_int_equal(gnutls_load_file(path, &expected), 0);

    const char *forms[] = {"client.pem", "client.der"};
    for (size_t i = 0; i < 2; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        fixture(path, sizeof(path), forms[i]);
        assert_int_equal(dtls_read_certificate(path, &der, &len, err, sizeof(err)), 0);
        assert_int_equal(len, expected.size);
        assert_memory_equal(der, expected.data, len);
        free(der);
    }
    gnutls_free(expected.data);

    /* A chain file gives its first certificate. */
    uint8_t *der = NULL;
    size_t len = 0;
    fixture(path, sizeof(path), "server_chain.pem");
    assert_int_equal(dtls_read_certificate(path, &der, &len, err, sizeof(err)), 0);
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t datum = {.data = der, .size = (unsigned)len};
    char cn[64];
    size_t cn_len = sizeof(cn);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_DER), 0);
    assert_int_equal(
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len), 0);
    assert_string_equal(cn, "localhost");
    gnutls_x509_crt_deinit(crt);
    free(der);

    read_fails(dtls_read_certificate, "server_key.pem", LWM2MD_ERR_NOT_FOUND,
               "holds no certificate");
    read_fails(dtls_read_certificate, "client_pub.der", LWM2MD_ERR_INVALID,
               "not a valid certificate");
    read_fails(dtls_read_certificate, "absent.pem", LWM2MD_ERR_IO, "cannot read");
}

/* ---- the credentials serve real handshakes ---- */

typedef struct handshake {
    gnutls_session_t server;
    gnutls_session_t client;
    gnutls_certificate_credentials_t client_creds;
    int fds[2];
} handshake_t;

/* A TLS 1.2 handshake over a socket pair, both ends driven from this thread. */
static int run_handshake(gnutls_certificate_credentials_t server_creds, const char *client_prio,
                         handshake_t *hs)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, hs->fds), 0);
    for (int i = 0; i < 2; i++) {
        fcntl(hs->fds[i], F_SETFL, fcntl(hs->fds[i], F_GETFL) | O_NONBLOCK);
    }
    unsigned flags = GNUTLS_NONBLOCK | GNUTLS_ENABLE_RAWPK;
    assert_int_equal(gnutls_init(&hs->server, GNUTLS_SERVER | flags), 0);
    assert_int_equal(gnutls_init(&hs->client, GNUTLS_CLIENT | flags), 0);
    assert_int_equal(
        gnutls_priority_set_direct(hs->server, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+CTYPE-ALL", NULL),
        0);
    assert_int_equal(gnutls_priority_set_direct(hs->client, client_prio, NULL), 0);
    assert_int_equal(gnutls_credentials_set(hs->server, GNUTLS_CRD_CERTIFICATE, server_creds), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&hs->client_creds), 0);
    char ca[512];
    fixture(ca, sizeof(ca), "ca.pem");
    assert_int_equal(
        gnutls_certificate_set_x509_trust_file(hs->client_creds, ca, GNUTLS_X509_FMT_PEM), 1);
    assert_int_equal(gnutls_credentials_set(hs->client, GNUTLS_CRD_CERTIFICATE, hs->client_creds),
                     0);
    gnutls_transport_set_int(hs->server, hs->fds[0]);
    gnutls_transport_set_int(hs->client, hs->fds[1]);

    int server_rc = GNUTLS_E_AGAIN;
    int client_rc = GNUTLS_E_AGAIN;
    for (int round = 0; round < 1000; round++) {
        if (server_rc == GNUTLS_E_AGAIN || server_rc == GNUTLS_E_INTERRUPTED) {
            server_rc = gnutls_handshake(hs->server);
        }
        if (client_rc == GNUTLS_E_AGAIN || client_rc == GNUTLS_E_INTERRUPTED) {
            client_rc = gnutls_handshake(hs->client);
        }
        if (server_rc != GNUTLS_E_AGAIN && client_rc != GNUTLS_E_AGAIN) {
            break;
        }
    }
    return server_rc != 0 ? server_rc : client_rc;
}

static void handshake_end(handshake_t *hs)
{
    gnutls_deinit(hs->server);
    gnutls_deinit(hs->client);
    gnutls_certificate_free_credentials(hs->client_creds);
    close(hs->fds[0]);
    close(hs->fds[1]);
}

static void assert_x509_served(gnutls_certificate_credentials_t server_creds)
{
    handshake_t hs = {0};
    int rc = run_handshake(server_creds, "NORMAL:-VERS-ALL:+VERS-TLS1.2", &hs);
    if (rc != 0) {
        fail_msg("x509 handshake: %s", gnutls_strerror(rc));
    }
    assert_int_equal(gnutls_certificate_type_get2(hs.client, GNUTLS_CTYPE_SERVER), GNUTLS_CRT_X509);
    unsigned status = 1;
    assert_int_equal(gnutls_certificate_verify_peers3(hs.client, "localhost", &status), 0);
    assert_int_equal(status, 0);
    handshake_end(&hs);
}

static void assert_rpk_served(gnutls_certificate_credentials_t server_creds,
                              const dtls_credentials_t *creds)
{
    handshake_t hs = {0};
    int rc = run_handshake(server_creds,
                           "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CTYPE-SRV-ALL:+CTYPE-SRV-RAWPK", &hs);
    if (rc != 0) {
        fail_msg("rpk handshake: %s", gnutls_strerror(rc));
    }
    assert_int_equal(gnutls_certificate_type_get2(hs.client, GNUTLS_CTYPE_SERVER),
                     GNUTLS_CRT_RAWPK);
    unsigned count = 0;
    const gnutls_datum_t *peer = gnutls_certificate_get_peers(hs.client, &count);
    size_t len = 0;
    const uint8_t *spki = dtls_credentials_spki(creds, &len);
    assert_int_equal(count, 1);
    assert_int_equal(peer[0].size, len);
    assert_memory_equal(peer[0].data, spki, len);
    handshake_end(&hs);
}

static void test_handshakes(void **state)
{
    config_credentials_t server =
        store(CONFIG_KEYSTORE_JKS, "server.jks", STOREPASS, "server", KEYPASS);
    dtls_credentials_t *creds = load_ok(&server, NULL, "server.pem");

    assert_x509_served(dtls_credentials_x509(creds));
    assert_x509_served(dtls_credentials_certificate(creds));
    assert_rpk_served(dtls_credentials_rpk(creds), creds);
    assert_rpk_served(dtls_credentials_certificate(creds), creds);
    dtls_credentials_free(creds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_key_in_cert_file),
        cmocka_unit_test(test_pem_separate_key),
        cmocka_unit_test(test_pem_layouts),
        cmocka_unit_test(test_pem_no_key),
        cmocka_unit_test(test_pem_encrypted_pkcs8),
        cmocka_unit_test(test_pem_encrypted_legacy),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_rsa_refused),
        cmocka_unit_test(test_key_mismatch),
        cmocka_unit_test(test_curves),
        cmocka_unit_test(test_prefix_in_messages),
        cmocka_unit_test(test_pkcs12),
        cmocka_unit_test(test_pkcs12_errors),
        cmocka_unit_test(test_pkcs12_choosing),
        cmocka_unit_test(test_jks),
        cmocka_unit_test(test_jks_errors),
        cmocka_unit_test(test_trust_sources),
        cmocka_unit_test(test_trust_errors),
        cmocka_unit_test(test_nothing_configured),
        cmocka_unit_test(test_read_public_key),
        cmocka_unit_test(test_read_certificate),
        cmocka_unit_test(test_handshakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
