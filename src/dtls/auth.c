/* Peer authentication: PSK identities, raw public keys (RFC 7250) and X.509 chains. */
#include "dtls/auth.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "dtls/credentials_internal.h"
#include "store/store.h"

enum {
    RANDOM_PSK_SIZE = 16, /* stands in for an unknown identity's key */
    IDENTITY_LOG_MAX = 64,
    CHAIN_MAX = 8, /* client chains longer than this are refused */
};

/* The peer proved to be `endpoint` with `mode`. */
static void set_identity(dtls_conn_t *conn, store_security_t mode, const char *endpoint)
{
    conn->auth.mode = mode;
    snprintf(conn->auth.endpoint, sizeof(conn->auth.endpoint), "%s", endpoint);
    conn->authenticated = true;
}

/* A peer-chosen string made safe for a log line: printable ASCII, bounded. */
static void printable(const uint8_t *data, size_t len, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size && i < IDENTITY_LOG_MAX; i++) {
        out[n++] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char)data[i] : '?';
    }
    out[n] = '\0';
}

/*
 * Looks an identity up. Identities with a NUL byte or longer than the
 * store allows cannot be provisioned, so they are unknown.
 */
static int lookup_psk(dtls_conn_t *conn, const gnutls_datum_t *identity, uint8_t *key,
                      size_t *key_len, char *endpoint)
{
    if (identity->size == 0 || identity->size > STORE_PSK_IDENTITY_MAX ||
        memchr(identity->data, '\0', identity->size) != NULL) {
        return LWM2MD_ERR_NOT_FOUND;
    }
    char name[STORE_PSK_IDENTITY_MAX + 1];
    memcpy(name, identity->data, identity->size);
    name[identity->size] = '\0';

    /* *key_len goes in as the buffer's size and comes back as the key's length. */
    const dtls_callbacks_t *callbacks = conn->shared->callbacks;
    *key_len = STORE_PSK_KEY_MAX;
    int rc =
        callbacks->psk_lookup(callbacks->ctx, name, key, key_len, endpoint, STORE_ENDPOINT_MAX + 1);
    if (rc == LWM2MD_OK && (*key_len == 0 || *key_len > STORE_PSK_KEY_MAX)) {
        rc = LWM2MD_ERR_NOT_FOUND;
    }
    endpoint[STORE_ENDPOINT_MAX] = '\0';
    return rc;
}

int dtls_auth_psk_key(gnutls_session_t session, const gnutls_datum_t *identity, gnutls_datum_t *key)
{
    dtls_conn_t *conn = gnutls_session_get_ptr(session);
    uint8_t secret[STORE_PSK_KEY_MAX];
    size_t secret_len = 0;
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";

    /* The identity goes into the failure detail; it is a name, not a secret. */
    char shown[IDENTITY_LOG_MAX + 1];
    printable(identity->data, identity->size, shown, sizeof(shown));
    snprintf(conn->detail, sizeof(conn->detail), "identity '%s'", shown);

    if (lookup_psk(conn, identity, secret, &secret_len, endpoint) == LWM2MD_OK) {
        set_identity(conn, STORE_SECURITY_PSK, endpoint);
    } else {
        /* RFC 4279 2: go on as if the key were wrong, so unknown identities stay hidden. */
        conn->psk_identity_unknown = true;
        secret_len = RANDOM_PSK_SIZE;
        if (gnutls_rnd(GNUTLS_RND_RANDOM, secret, secret_len) < 0) {
            return -1;
        }
    }

    key->data = gnutls_malloc(secret_len);
    if (key->data == NULL) {
        gnutls_memset(secret, 0, sizeof(secret));
        return -1;
    }
    memcpy(key->data, secret, secret_len);
    key->size = (unsigned int)secret_len;
    gnutls_memset(secret, 0, sizeof(secret));
    return 0;
}

static int refuse(dtls_conn_t *conn, dtls_failure_t failure, const char *detail)
{
    conn->authenticated = false;
    dtls_conn_set_failure(conn, failure, detail);
    return -1;
}

/* RFC 7250: the client's raw public key is its DER SubjectPublicKeyInfo. */
static int authenticate_rpk(dtls_conn_t *conn, const gnutls_datum_t *spki)
{
    const dtls_callbacks_t *callbacks = conn->shared->callbacks;
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";
    if (callbacks->rpk_lookup(callbacks->ctx, spki->data, spki->size, endpoint, sizeof(endpoint)) !=
        LWM2MD_OK) {
        return refuse(conn, DTLS_FAIL_UNKNOWN_RPK, NULL);
    }
    endpoint[STORE_ENDPOINT_MAX] = '\0';
    set_identity(conn, STORE_SECURITY_RPK, endpoint);
    return 0;
}

/* The client certificate's validity period covers now. */
static bool within_validity(gnutls_x509_crt_t crt)
{
    time_t now = time(NULL);
    time_t activation = gnutls_x509_crt_get_activation_time(crt);
    time_t expiration = gnutls_x509_crt_get_expiration_time(crt);
    return activation != (time_t)-1 && expiration != (time_t)-1 && activation <= now &&
           now <= expiration;
}

/* The X.509 chain verification result against the configured CAs. */
typedef struct chain_check {
    bool trusted;
    bool expired; /* some certificate of the chain is out of its validity period */
} chain_check_t;

static chain_check_t verify_chain(const dtls_conn_t *conn, gnutls_x509_crt_t *certs,
                                  unsigned int count)
{
    chain_check_t check = {false, false};
    const dtls_credentials_t *creds = conn->shared->creds;
    if (creds == NULL || dtls_credentials_trust_count(creds) == 0) {
        return check;
    }

    /* The chain must be fit for TLS client authentication (RFC 5280 4.2.1.12). */
    unsigned int flags = 0;
    if (conn->shared->skip_validity_check) {
        flags |= GNUTLS_VERIFY_DISABLE_TIME_CHECKS | GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS;
    }
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
        .size = 0,
    };
    unsigned int status = 0;
    int rc = gnutls_x509_trust_list_verify_crt2(dtls_credentials_trust(creds), certs, count,
                                                &purpose, 1, flags, &status, NULL);
    check.trusted = rc == 0 && status == 0;
    check.expired = rc == 0 && (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED));
    return check;
}

/* The certificate's first CN, or "" when it has none that fits. */
static void common_name(gnutls_x509_crt_t crt, char *out, size_t size)
{
    size_t len = size;
    if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, out, &len) < 0) {
        out[0] = '\0';
    }
    out[size - 1] = '\0';
}

/* Decodes the chain; 0 or -1 (certs holds *count decoded certificates either way). */
static int import_chain(const gnutls_datum_t *chain, unsigned int n, gnutls_x509_crt_t *certs,
                        unsigned int *count)
{
    *count = 0;
    for (unsigned int i = 0; i < n; i++) {
        if (gnutls_x509_crt_init(&certs[i]) < 0) {
            return -1;
        }
        *count = i + 1;
        if (gnutls_x509_crt_import(certs[i], &chain[i], GNUTLS_X509_FMT_DER) < 0) {
            return -1;
        }
    }
    return 0;
}

static void free_chain(gnutls_x509_crt_t *certs, unsigned int count)
{
    for (unsigned int i = 0; i < count; i++) {
        gnutls_x509_crt_deinit(certs[i]);
    }
}

/*
 * The device for a client certificate: its pinned certificate
 * (byte-for-byte, CA trust not needed), else a CA-trusted chain whose
 * leaf CN is an X.509 endpoint. Validity periods count unless the
 * skip-validity setting is on.
 */
static int decide_x509(dtls_conn_t *conn, const gnutls_datum_t *leaf, gnutls_x509_crt_t *certs,
                       unsigned int count)
{
    const dtls_callbacks_t *callbacks = conn->shared->callbacks;
    bool skip = conn->shared->skip_validity_check;
    bool leaf_expired = !skip && !within_validity(certs[0]);
    chain_check_t chain = verify_chain(conn, certs, count);

    char cn[STORE_ENDPOINT_MAX + 1];
    common_name(certs[0], cn, sizeof(cn));
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";
    int rc = callbacks->cert_lookup(callbacks->ctx, leaf->data, leaf->size, cn, chain.trusted,
                                    endpoint, sizeof(endpoint));
    endpoint[STORE_ENDPOINT_MAX] = '\0';

    char detail[DTLS_DETAIL_MAX];
    char shown[IDENTITY_LOG_MAX + 1];
    printable((const uint8_t *)cn, strlen(cn), shown, sizeof(shown));
    snprintf(detail, sizeof(detail), "CN '%s'", shown);
    if (leaf_expired || (rc != LWM2MD_OK && chain.expired)) {
        return refuse(conn, DTLS_FAIL_CERT_EXPIRED, detail);
    }
    if (rc != LWM2MD_OK) {
        return refuse(conn, chain.trusted ? DTLS_FAIL_CN_MISMATCH : DTLS_FAIL_BAD_CERT, detail);
    }
    set_identity(conn, STORE_SECURITY_X509, endpoint);
    return 0;
}

static int authenticate_x509(dtls_conn_t *conn, const gnutls_datum_t *chain, unsigned int n)
{
    if (n > CHAIN_MAX) {
        return refuse(conn, DTLS_FAIL_BAD_CERT, "certificate chain too long");
    }
    gnutls_x509_crt_t certs[CHAIN_MAX];
    unsigned int count = 0;
    int rc;
    if (import_chain(chain, n, certs, &count) != 0) {
        rc = refuse(conn, DTLS_FAIL_BAD_CERT, "malformed certificate");
    } else {
        rc = decide_x509(conn, &chain[0], certs, count);
    }
    free_chain(certs, count);
    return rc;
}

static int authenticate_certificate(dtls_conn_t *conn)
{
    unsigned int count = 0;
    const gnutls_datum_t *chain = gnutls_certificate_get_peers(conn->session, &count);
    if (chain == NULL || count == 0) {
        return refuse(conn, DTLS_FAIL_BAD_CERT, "no client certificate");
    }
    switch (gnutls_certificate_type_get2(conn->session, GNUTLS_CTYPE_PEERS)) {
    case GNUTLS_CRT_RAWPK:
        return authenticate_rpk(conn, &chain[0]);
    case GNUTLS_CRT_X509:
        return authenticate_x509(conn, chain, count);
    default:
        return refuse(conn, DTLS_FAIL_BAD_CERT, "unsupported certificate type");
    }
}

int dtls_auth_verify_certificate(gnutls_session_t session)
{
    dtls_conn_t *conn = gnutls_session_get_ptr(session);
    return authenticate_certificate(conn) == 0 ? 0 : -1;
}

/* A resumed PSK session: its identity must still belong to a device. */
static int reauthenticate_psk(dtls_conn_t *conn)
{
    gnutls_datum_t identity = {NULL, 0};
    if (gnutls_psk_server_get_username2(conn->session, &identity) < 0) {
        return refuse(conn, DTLS_FAIL_UNKNOWN_IDENTITY, "resumed session without identity");
    }

    uint8_t secret[STORE_PSK_KEY_MAX];
    size_t secret_len = 0;
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";
    int rc = lookup_psk(conn, &identity, secret, &secret_len, endpoint);
    gnutls_memset(secret, 0, sizeof(secret));
    if (rc != LWM2MD_OK) {
        char shown[IDENTITY_LOG_MAX + 1];
        char detail[DTLS_DETAIL_MAX];
        printable(identity.data, identity.size, shown, sizeof(shown));
        snprintf(detail, sizeof(detail), "resumed identity '%s'", shown);
        return refuse(conn, DTLS_FAIL_UNKNOWN_IDENTITY, detail);
    }
    set_identity(conn, STORE_SECURITY_PSK, endpoint);
    return 0;
}

int dtls_auth_established(dtls_conn_t *conn)
{
    if (gnutls_session_is_resumed(conn->session)) {
        conn->authenticated = false;
        int rc = gnutls_kx_get(conn->session) == GNUTLS_KX_PSK ? reauthenticate_psk(conn)
                                                               : authenticate_certificate(conn);
        if (rc != 0) {
            return rc;
        }
    }
    if (!conn->authenticated) {
        return refuse(conn, DTLS_FAIL_PROTOCOL, "handshake finished without an identity");
    }
    return 0;
}
