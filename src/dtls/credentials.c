/* Server credentials for DTLS: PEM, PKCS#12 or JKS files, checked, as GnuTLS objects. */
#include "dtls/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/pkcs12.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "dtls/credentials_internal.h"
#include "dtls/jks.h"
#include "log/log.h"

/* Key stores and PEM files hold a few KB; a CA bundle a few hundred. */
#define CREDS_FILE_MAX (4 * 1024 * 1024)
/* Certificates the server sends: leaf, intermediates, root. */
#define CREDS_CHAIN_MAX 10
#define CREDS_VAR_MAX 64

struct dtls_credentials {
    gnutls_certificate_credentials_t x509;
    gnutls_certificate_credentials_t rpk;
    gnutls_certificate_credentials_t both;
    gnutls_x509_trust_list_t trust;
    size_t trust_count;
    uint8_t *spki;
    size_t spki_len;
};

/* Where messages go and how variables are named ("LWM2M_SERVER", "LWM2M_BS"). */
typedef struct creds_ctx {
    const char *prefix;
    char *err;
    size_t err_size;
} creds_ctx_t;

/* A file read whole; wiped when freed since it may hold a key. */
typedef struct creds_file {
    uint8_t *data;
    size_t len;
} creds_file_t;

/* A key and certificates, before checks; the certificates in any order. */
typedef struct key_material {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t *certs;
    size_t cert_count;
    size_t cert_cap;
    char var[CREDS_VAR_MAX]; /* the variable that named the key's file */
    const char *path;
} key_material_t;

/* A growable list of certificates (trust anchors, or a store's contents). */
typedef struct cert_list {
    gnutls_x509_crt_t *certs;
    size_t count;
    size_t cap;
} cert_list_t;

/* One PKCS#12 safe bag: a key (shrouded or plain) or a certificate. */
typedef struct p12_item {
    bool is_key;
    bool encrypted;
    char *name;
    gnutls_datum_t der;
} p12_item_t;

typedef struct p12_items {
    p12_item_t *items;
    size_t count;
    size_t cap;
} p12_items_t;

__attribute__((format(printf, 3, 4))) static int fail(const creds_ctx_t *ctx, int rc,
                                                      const char *fmt, ...)
{
    if (ctx->err != NULL && ctx->err_size > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(ctx->err, ctx->err_size, fmt, args);
        va_end(args);
    }
    return rc;
}

static void var_name(char *out, const creds_ctx_t *ctx, const char *suffix)
{
    snprintf(out, CREDS_VAR_MAX, "%s_%s", ctx->prefix, suffix);
}

/* ---- files ---- */

static void file_free(creds_file_t *file)
{
    if (file->data != NULL) {
        gnutls_memset(file->data, 0, file->len);
        free(file->data);
    }
    *file = (creds_file_t){0};
}

/* strerror in the house style: lowercase ("no such file or directory"). */
static const char *errno_text(int error_number, char *buf, size_t size)
{
    char scratch[128];
    const char *text = strerror_r(error_number, scratch, sizeof(scratch));
    snprintf(buf, size, "%s", text);
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

/* Reads a whole regular file, NUL-terminated for text searches. */
static int file_read(const char *path, creds_file_t *out, int *error_number)
{
    *out = (creds_file_t){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        *error_number = errno;
        if (fd >= 0) {
            close(fd);
        }
        return LWM2MD_ERR_IO;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CREDS_FILE_MAX) {
        *error_number = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        close(fd);
        return S_ISREG(st.st_mode) ? LWM2MD_ERR_TOO_BIG : LWM2MD_ERR_IO;
    }

    size_t size = (size_t)st.st_size;
    out->data = malloc(size + 1);
    int rc = out->data == NULL ? LWM2MD_ERR_NOMEM : 0;
    while (rc == 0 && out->len < size) {
        ssize_t got = read(fd, out->data + out->len, size - out->len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            *error_number = got < 0 ? errno : EIO;
            rc = LWM2MD_ERR_IO;
            break;
        }
        out->len += (size_t)got;
    }
    close(fd);
    if (rc != 0) {
        file_free(out);
        return rc;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* Reads the file a variable names, or explains in err why not. */
static int read_var_file(const creds_ctx_t *ctx, const char *var, const char *path,
                         creds_file_t *out)
{
    if (path == NULL || path[0] == '\0') {
        return fail(ctx, LWM2MD_ERR_INVALID, "%s: not set", var);
    }

    int error_number = 0;
    int rc = file_read(path, out, &error_number);
    if (rc == LWM2MD_ERR_TOO_BIG) {
        return fail(ctx, rc, "%s=%s: larger than %d bytes", var, path, CREDS_FILE_MAX);
    }
    if (rc == LWM2MD_ERR_IO && error_number == EINVAL) {
        return fail(ctx, rc, "%s=%s: not a regular file", var, path);
    }
    if (rc != 0) {
        char reason[128];
        return fail(ctx, rc, "%s=%s: cannot read (%s)", var, path,
                    errno_text(error_number, reason, sizeof(reason)));
    }
    return 0;
}

static bool file_has(const creds_file_t *file, const char *text)
{
    return memmem(file->data, file->len, text, strlen(text)) != NULL;
}

static bool file_is_pem(const creds_file_t *file)
{
    return file_has(file, "-----BEGIN ");
}

/* ---- certificate lists ---- */

static void cert_list_free(cert_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        gnutls_x509_crt_deinit(list->certs[i]);
    }
    free(list->certs);
    *list = (cert_list_t){0};
}

/* Takes ownership of crt, also on failure. */
static int cert_list_add(cert_list_t *list, gnutls_x509_crt_t crt)
{
    if (list->count == list->cap) {
        size_t cap = list->cap == 0 ? 8 : list->cap * 2;
        gnutls_x509_crt_t *grown = realloc(list->certs, cap * sizeof(*grown));
        if (grown == NULL) {
            gnutls_x509_crt_deinit(crt);
            return LWM2MD_ERR_NOMEM;
        }
        list->certs = grown;
        list->cap = cap;
    }
    list->certs[list->count++] = crt;
    return 0;
}

static int cert_list_add_der(cert_list_t *list, const uint8_t *der, size_t len)
{
    gnutls_x509_crt_t crt = NULL;
    if (gnutls_x509_crt_init(&crt) < 0) {
        return LWM2MD_ERR_NOMEM;
    }

    gnutls_datum_t datum = {.data = (unsigned char *)der, .size = (unsigned)len};
    if (gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_DER) < 0) {
        gnutls_x509_crt_deinit(crt);
        return LWM2MD_ERR_INVALID;
    }
    return cert_list_add(list, crt);
}

/* Every certificate of a PEM file, or the one certificate of a DER file. */
static int cert_list_add_file(cert_list_t *list, const creds_file_t *file)
{
    if (!file_is_pem(file)) {
        return cert_list_add_der(list, file->data, file->len);
    }
    if (!file_has(file, "-----BEGIN CERTIFICATE-----")) {
        return LWM2MD_ERR_NOT_FOUND;
    }

    gnutls_x509_crt_t *certs = NULL;
    unsigned count = 0;
    gnutls_datum_t datum = {.data = file->data, .size = (unsigned)file->len};
    if (gnutls_x509_crt_list_import2(&certs, &count, &datum, GNUTLS_X509_FMT_PEM, 0) < 0) {
        return LWM2MD_ERR_INVALID;
    }

    int rc = 0;
    for (unsigned i = 0; i < count; i++) {
        if (rc == 0) {
            rc = cert_list_add(list, certs[i]);
        } else {
            gnutls_x509_crt_deinit(certs[i]);
        }
    }
    gnutls_free(certs);
    return rc;
}

/* ---- public keys ---- */

/* The DER SubjectPublicKeyInfo of a public key (gnutls_free the result). */
static int pubkey_spki(gnutls_pubkey_t pub, gnutls_datum_t *out)
{
    return gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, out) < 0 ? LWM2MD_ERR_CRYPTO : 0;
}

static int crt_spki(gnutls_x509_crt_t crt, gnutls_datum_t *out)
{
    gnutls_pubkey_t pub = NULL;
    if (gnutls_pubkey_init(&pub) < 0) {
        return LWM2MD_ERR_NOMEM;
    }

    int rc = gnutls_pubkey_import_x509(pub, crt, 0) < 0 ? LWM2MD_ERR_CRYPTO : 0;
    if (rc == 0) {
        rc = pubkey_spki(pub, out);
    }
    gnutls_pubkey_deinit(pub);
    return rc;
}

/* The public half of a private key: its SPKI and, for EC keys, its curve. */
static int key_public(gnutls_x509_privkey_t key, gnutls_datum_t *spki, gnutls_ecc_curve_t *curve)
{
    gnutls_privkey_t priv = NULL;
    gnutls_pubkey_t pub = NULL;
    int rc = 0;
    if (gnutls_privkey_init(&priv) < 0 || gnutls_pubkey_init(&pub) < 0) {
        rc = LWM2MD_ERR_NOMEM;
    }
    if (rc == 0 && (gnutls_privkey_import_x509(priv, key, 0) < 0 ||
                    gnutls_pubkey_import_privkey(pub, priv, 0, 0) < 0)) {
        rc = LWM2MD_ERR_CRYPTO;
    }
    if (rc == 0) {
        rc = pubkey_spki(pub, spki);
    }

    *curve = GNUTLS_ECC_CURVE_INVALID;
    if (rc == 0 && gnutls_pubkey_get_pk_algorithm(pub, NULL) == GNUTLS_PK_ECDSA &&
        gnutls_pubkey_export_ecc_raw2(pub, curve, NULL, NULL, 0) < 0) {
        *curve = GNUTLS_ECC_CURVE_INVALID;
    }
    gnutls_pubkey_deinit(pub);
    gnutls_privkey_deinit(priv);
    return rc;
}

static bool datum_equal(const gnutls_datum_t *a, const gnutls_datum_t *b)
{
    return a->size == b->size && memcmp(a->data, b->data, a->size) == 0;
}

static const char *curve_name(gnutls_ecc_curve_t curve)
{
    switch (curve) {
    case GNUTLS_ECC_CURVE_SECP256R1:
        return "P-256";
    case GNUTLS_ECC_CURVE_SECP384R1:
        return "P-384";
    case GNUTLS_ECC_CURVE_SECP521R1:
        return "P-521";
    default: {
        const char *name = gnutls_ecc_curve_get_name(curve);
        return name != NULL ? name : "unknown";
    }
    }
}

/* ---- key material ---- */

static void material_free(key_material_t *material)
{
    if (material->key != NULL) {
        gnutls_x509_privkey_deinit(material->key);
    }
    for (size_t i = 0; i < material->cert_count; i++) {
        gnutls_x509_crt_deinit(material->certs[i]);
    }
    free(material->certs);
    *material = (key_material_t){0};
}

static void material_take_certs(key_material_t *material, cert_list_t *list)
{
    material->certs = list->certs;
    material->cert_count = list->count;
    material->cert_cap = list->cap;
    *list = (cert_list_t){0};
}

/*
 * The server key must be ECDSA on P-256 or P-384 (the curves LwM2M
 * clients implement, RFC 7251 / LwM2M 1.1 Transport E.1), and a
 * certificate must carry its public key. On success *spki holds the key's
 * SubjectPublicKeyInfo and *leaf the index of its certificate.
 */
static int check_key(const creds_ctx_t *ctx, const key_material_t *material, gnutls_datum_t *spki,
                     size_t *leaf)
{
    int algorithm = gnutls_x509_privkey_get_pk_algorithm2(material->key, NULL);
    if (algorithm != GNUTLS_PK_ECDSA) {
        const char *name = algorithm > 0 ? gnutls_pk_get_name(algorithm) : NULL;
        return fail(ctx, LWM2MD_ERR_UNSUPPORTED, "%s=%s: the key is %s; an ECDSA key is required",
                    material->var, material->path, name != NULL ? name : "of an unknown type");
    }

    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    int rc = key_public(material->key, spki, &curve);
    if (rc != 0) {
        return fail(ctx, rc, "%s=%s: cannot read the key's public half", material->var,
                    material->path);
    }
    if (curve != GNUTLS_ECC_CURVE_SECP256R1 && curve != GNUTLS_ECC_CURVE_SECP384R1) {
        gnutls_free(spki->data);
        spki->data = NULL;
        return fail(ctx, LWM2MD_ERR_UNSUPPORTED,
                    "%s=%s: the key's curve is %s; P-256 or P-384 is required", material->var,
                    material->path, curve_name(curve));
    }

    for (size_t i = 0; i < material->cert_count; i++) {
        gnutls_datum_t cert_spki = {0};
        bool match = crt_spki(material->certs[i], &cert_spki) == 0 && datum_equal(spki, &cert_spki);
        gnutls_free(cert_spki.data);
        if (match) {
            *leaf = i;
            return 0;
        }
    }
    gnutls_free(spki->data);
    spki->data = NULL;
    return fail(ctx, LWM2MD_ERR_INVALID, "%s=%s: the key does not match the certificate",
                material->var, material->path);
}

/*
 * Orders the chain: the leaf, then each certificate's issuer found among
 * the rest, until a self-signed one or none. Certificates that are not
 * part of the chain are dropped. Returns the chain length.
 */
static size_t order_chain(key_material_t *material, size_t leaf)
{
    gnutls_x509_crt_t *certs = material->certs;
    gnutls_x509_crt_t swap = certs[0];
    certs[0] = certs[leaf];
    certs[leaf] = swap;

    size_t length = 1;
    while (length < material->cert_count && length < CREDS_CHAIN_MAX) {
        gnutls_x509_crt_t last = certs[length - 1];
        if (gnutls_x509_crt_check_issuer(last, last)) {
            break;
        }
        size_t found = material->cert_count;
        for (size_t i = length; i < material->cert_count && found == material->cert_count; i++) {
            if (gnutls_x509_crt_check_issuer(last, certs[i])) {
                found = i;
            }
        }
        if (found == material->cert_count) {
            break;
        }
        swap = certs[length];
        certs[length] = certs[found];
        certs[found] = swap;
        length++;
    }
    return length;
}

/* Warns about a server certificate outside its validity: clients will refuse it. */
static void warn_validity(const creds_ctx_t *ctx, gnutls_x509_crt_t leaf)
{
    time_t now = time(NULL);
    time_t not_after = gnutls_x509_crt_get_expiration_time(leaf);
    time_t not_before = gnutls_x509_crt_get_activation_time(leaf);
    if (not_after != (time_t)-1 && not_after < now) {
        log_warn("%s credentials: the server certificate expired (clients will refuse it)",
                 ctx->prefix);
    } else if (not_before != (time_t)-1 && not_before > now) {
        log_warn("%s credentials: the server certificate is not valid yet", ctx->prefix);
    }
}

/* ---- PEM ---- */

/* Imports a private key, PEM (plain, PKCS#8 encrypted, OpenSSL-encrypted) or DER. */
static int import_key_file(const creds_ctx_t *ctx, key_material_t *material,
                           const creds_file_t *file, const char *password)
{
    if (gnutls_x509_privkey_init(&material->key) < 0) {
        return fail(ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", material->var);
    }

    /* import2 detects the PEM flavour and decrypts PKCS#8 and OpenSSL's Proc-Type keys. */
    gnutls_datum_t datum = {.data = file->data, .size = (unsigned)file->len};
    gnutls_x509_crt_fmt_t format = file_is_pem(file) ? GNUTLS_X509_FMT_PEM : GNUTLS_X509_FMT_DER;
    bool has_password = password != NULL && password[0] != '\0';
    int ret = gnutls_x509_privkey_import2(material->key, &datum, format,
                                          has_password ? password : NULL, 0);
    if (ret >= 0) {
        return 0;
    }

    char password_var[CREDS_VAR_MAX];
    var_name(password_var, ctx, "PEM_KEY_PASSWORD");
    if (ret == GNUTLS_E_DECRYPTION_FAILED && !has_password) {
        return fail(ctx, LWM2MD_ERR_PASSWORD, "%s: not set, and %s=%s holds an encrypted key",
                    password_var, material->var, material->path);
    }
    if (ret == GNUTLS_E_DECRYPTION_FAILED) {
        return fail(ctx, LWM2MD_ERR_PASSWORD, "%s: wrong password for %s", password_var,
                    material->path);
    }
    return fail(ctx, LWM2MD_ERR_INVALID, "%s=%s: not a valid private key", material->var,
                material->path);
}

static int load_pem(const creds_ctx_t *ctx, const config_credentials_t *server,
                    key_material_t *material)
{
    char cert_var[CREDS_VAR_MAX];
    var_name(cert_var, ctx, "PEM_CERT");
    creds_file_t cert_file = {0};
    int rc = read_var_file(ctx, cert_var, server->pem_cert, &cert_file);
    if (rc != 0) {
        return rc;
    }

    cert_list_t certs = {0};
    rc = cert_list_add_file(&certs, &cert_file);
    if (rc == 0 && certs.count == 0) {
        rc = LWM2MD_ERR_NOT_FOUND;
    }
    if (rc != 0) {
        cert_list_free(&certs);
        file_free(&cert_file);
        return fail(ctx, rc, "%s=%s: %s", cert_var, server->pem_cert,
                    rc == LWM2MD_ERR_NOT_FOUND ? "holds no certificate"
                                               : "not a valid certificate file");
    }
    material_take_certs(material, &certs);

    /* The key: its own file, or else the certificate file. */
    bool separate = server->pem_key[0] != '\0';
    creds_file_t key_file = {0};
    var_name(material->var, ctx, separate ? "PEM_KEY" : "PEM_CERT");
    material->path = separate ? server->pem_key : server->pem_cert;
    if (separate) {
        rc = read_var_file(ctx, material->var, material->path, &key_file);
    } else if (!file_has(&cert_file, "PRIVATE KEY-----")) {
        char key_var[CREDS_VAR_MAX];
        var_name(key_var, ctx, "PEM_KEY");
        rc = fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s: not set, and %s=%s holds no private key", key_var,
                  cert_var, server->pem_cert);
    }
    if (rc == 0) {
        rc = import_key_file(ctx, material, separate ? &key_file : &cert_file,
                             server->pem_key_password);
    }
    file_free(&key_file);
    file_free(&cert_file);
    return rc;
}

/* ---- key stores: choosing the entry ---- */

/* "'a', 'b'" for messages; aliases are names, never secrets. */
static void list_keys(char *out, size_t size, const char *const *names, const bool *is_key,
                      size_t count)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && used < size; i++) {
        if (is_key[i]) {
            int n = snprintf(out + used, size - used, "%s'%s'", used > 0 ? ", " : "",
                             names[i] != NULL ? names[i] : "");
            used += n > 0 ? (size_t)n : 0;
        }
    }
}

/*
 * Picks the key entry named by LWM2M_*_KEY_ALIAS (ignoring case, as
 * keytool does). With the alias empty, the store must hold exactly one
 * key. A PKCS#12 key without a friendly name is chosen only that way.
 */
static int choose_key(const creds_ctx_t *ctx, const char *path, const char *alias,
                      const char *const *names, const bool *is_key, size_t count, size_t *out)
{
    char alias_var[CREDS_VAR_MAX];
    var_name(alias_var, ctx, "KEY_ALIAS");
    size_t keys = 0;
    size_t certificate = count;
    for (size_t i = 0; i < count; i++) {
        bool named = alias[0] != '\0' && names[i] != NULL && strcasecmp(names[i], alias) == 0;
        if (is_key[i] && (named || alias[0] == '\0')) {
            *out = i;
            keys++;
        } else if (named) {
            certificate = i;
        }
    }
    if (keys == 1) {
        return 0;
    }

    char listed[256];
    list_keys(listed, sizeof(listed), names, is_key, count);
    if (alias[0] == '\0') {
        return fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s: not set, and %s holds %s", alias_var, path,
                    keys == 0 ? "no private key" : "several keys; name one of them");
    }
    if (certificate < count) {
        return fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: a certificate without a private key in %s",
                    alias_var, alias, path);
    }
    if (listed[0] == '\0') {
        return fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: no such alias in %s (it holds no key)",
                    alias_var, alias, path);
    }
    return fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: no such alias in %s (its keys: %s)", alias_var,
                alias, path, listed);
}

/* The password for a key in a store: its own, else the store's (keytool's default). */
static const char *key_password(const config_credentials_t *server, char *var,
                                const creds_ctx_t *ctx)
{
    bool own = server->key_password[0] != '\0';
    var_name(var, ctx, own ? "KEY_PASSWORD" : "KEY_STORE_PASSWORD");
    return own ? server->key_password : server->key_store_password;
}

/* ---- JKS ---- */

static int jks_open(const creds_ctx_t *ctx, const char *var, const char *path, const char *password,
                    jks_t **out)
{
    creds_file_t file = {0};
    int rc = read_var_file(ctx, var, path, &file);
    if (rc != 0) {
        return rc;
    }

    rc = jks_parse(file.data, file.len, password, out);
    file_free(&file);
    if (rc == LWM2MD_ERR_PASSWORD) {
        char password_var[CREDS_VAR_MAX];
        snprintf(password_var, sizeof(password_var), "%s_PASSWORD", var);
        return fail(ctx, rc, "%s: wrong password for %s", password_var, path);
    }
    if (rc != 0) {
        return fail(ctx, rc, "%s=%s: not a valid JKS key store (%s)", var, path,
                    lwm2md_strerror(rc));
    }
    return 0;
}

static int jks_choose(const creds_ctx_t *ctx, const jks_t *jks, const config_credentials_t *server,
                      const char **alias)
{
    size_t count = jks_entry_count(jks);
    const char **names = calloc(count + 1, sizeof(*names));
    bool *is_key = calloc(count + 1, sizeof(*is_key));
    int rc = names == NULL || is_key == NULL ? LWM2MD_ERR_NOMEM : 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        names[i] = jks_entry_alias(jks, i, &is_key[i]);
    }

    size_t chosen = 0;
    if (rc == 0) {
        rc = choose_key(ctx, server->key_store, server->key_alias, names, is_key, count, &chosen);
    }
    if (rc == 0) {
        *alias = names[chosen];
    }
    free(names);
    free(is_key);
    return rc;
}

static int jks_take_key(const creds_ctx_t *ctx, const uint8_t *der, size_t len,
                        key_material_t *material)
{
    gnutls_datum_t datum = {.data = (unsigned char *)der, .size = (unsigned)len};
    if (gnutls_x509_privkey_init(&material->key) < 0) {
        return fail(ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", material->var);
    }
    if (gnutls_x509_privkey_import_pkcs8(material->key, &datum, GNUTLS_X509_FMT_DER, NULL,
                                         GNUTLS_PKCS_PLAIN) < 0) {
        return fail(ctx, LWM2MD_ERR_INVALID, "%s=%s: the key entry is not a valid key",
                    material->var, material->path);
    }
    return 0;
}

static int jks_take_chain(const creds_ctx_t *ctx, const char *alias, uint8_t **chain,
                          const size_t *lens, size_t count, key_material_t *material)
{
    cert_list_t certs = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        rc = cert_list_add_der(&certs, chain[i], lens[i]);
    }
    if (rc == 0 && certs.count == 0) {
        char alias_var[CREDS_VAR_MAX];
        var_name(alias_var, ctx, "KEY_ALIAS");
        rc = fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: the key has no certificate in %s", alias_var,
                  alias, material->path);
    } else if (rc != 0) {
        rc = fail(ctx, rc, "%s=%s: the key entry '%s' holds an invalid certificate", material->var,
                  material->path, alias);
    }
    if (rc == 0) {
        material_take_certs(material, &certs);
    }
    cert_list_free(&certs);
    return rc;
}

static int load_jks(const creds_ctx_t *ctx, const config_credentials_t *server,
                    key_material_t *material)
{
    jks_t *jks = NULL;
    int rc = jks_open(ctx, material->var, material->path, server->key_store_password, &jks);
    const char *alias = NULL;
    if (rc == 0) {
        rc = jks_choose(ctx, jks, server, &alias);
    }

    uint8_t *key = NULL;
    size_t key_len = 0;
    uint8_t **chain = NULL;
    size_t *lens = NULL;
    size_t count = 0;
    char password_var[CREDS_VAR_MAX];
    if (rc == 0) {
        const char *password = key_password(server, password_var, ctx);
        rc = jks_get_key(jks, alias, password, &key, &key_len, &chain, &lens, &count);
        if (rc == LWM2MD_ERR_PASSWORD) {
            rc = fail(ctx, rc, "%s: wrong password for key '%s' in %s", password_var, alias,
                      material->path);
        } else if (rc != 0) {
            rc = fail(ctx, rc, "%s=%s: cannot read key '%s' (%s)", material->var, material->path,
                      alias, lwm2md_strerror(rc));
        }
    }
    if (rc == 0) {
        rc = jks_take_key(ctx, key, key_len, material);
    }
    if (rc == 0) {
        rc = jks_take_chain(ctx, alias, chain, lens, count, material);
    }

    if (key != NULL) {
        gnutls_memset(key, 0, key_len);
        free(key);
    }
    jks_free_chain(chain, lens, count);
    jks_free(jks);
    return rc;
}

/* ---- PKCS#12 ---- */

static void p12_items_free(p12_items_t *items)
{
    for (size_t i = 0; i < items->count; i++) {
        free(items->items[i].name);
        gnutls_memset(items->items[i].der.data, 0, items->items[i].der.size);
        free(items->items[i].der.data);
    }
    free(items->items);
    *items = (p12_items_t){0};
}

static int p12_items_add(p12_items_t *items, int type, const gnutls_datum_t *der, const char *name)
{
    if (items->count == items->cap) {
        size_t cap = items->cap == 0 ? 8 : items->cap * 2;
        p12_item_t *grown = realloc(items->items, cap * sizeof(*grown));
        if (grown == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
        items->items = grown;
        items->cap = cap;
    }

    p12_item_t item = {
        .is_key = type != GNUTLS_BAG_CERTIFICATE,
        .encrypted = type == GNUTLS_BAG_PKCS8_ENCRYPTED_KEY,
        .name = name != NULL ? strdup(name) : NULL,
        .der = {.data = malloc(der->size > 0 ? der->size : 1), .size = der->size},
    };
    if ((name != NULL && item.name == NULL) || item.der.data == NULL) {
        free(item.name);
        free(item.der.data);
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(item.der.data, der->data, der->size);
    items->items[items->count++] = item;
    return 0;
}

/* Keys and certificates of one safe bag, decrypted with the store password if need be. */
static int p12_collect_bag(gnutls_pkcs12_bag_t bag, const char *password, p12_items_t *items)
{
    if (gnutls_pkcs12_bag_get_type(bag, 0) == GNUTLS_BAG_ENCRYPTED) {
        int ret = gnutls_pkcs12_bag_decrypt(bag, password);
        if (ret < 0) {
            return ret == GNUTLS_E_DECRYPTION_FAILED ? LWM2MD_ERR_PASSWORD : LWM2MD_ERR_INVALID;
        }
    }

    int count = gnutls_pkcs12_bag_get_count(bag);
    for (int i = 0; i < count; i++) {
        int type = gnutls_pkcs12_bag_get_type(bag, (unsigned)i);
        if (type != GNUTLS_BAG_PKCS8_ENCRYPTED_KEY && type != GNUTLS_BAG_PKCS8_KEY &&
            type != GNUTLS_BAG_CERTIFICATE) {
            continue;
        }
        gnutls_datum_t der = {0};
        char *name = NULL;
        if (gnutls_pkcs12_bag_get_data(bag, (unsigned)i, &der) < 0) {
            return LWM2MD_ERR_INVALID;
        }
        if (gnutls_pkcs12_bag_get_friendly_name(bag, (unsigned)i, &name) < 0) {
            name = NULL;
        }
        int rc = p12_items_add(items, type, &der, name);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Reads every key and certificate of a PKCS#12 file, checking its MAC. */
static int p12_collect(const creds_file_t *file, const char *password, p12_items_t *items)
{
    gnutls_pkcs12_t p12 = NULL;
    if (gnutls_pkcs12_init(&p12) < 0) {
        return LWM2MD_ERR_NOMEM;
    }

    gnutls_datum_t datum = {.data = file->data, .size = (unsigned)file->len};
    int rc = gnutls_pkcs12_import(p12, &datum, GNUTLS_X509_FMT_DER, 0) < 0 ? LWM2MD_ERR_INVALID : 0;
    if (rc == 0 && gnutls_pkcs12_verify_mac(p12, password) == GNUTLS_E_MAC_VERIFY_FAILED) {
        rc = LWM2MD_ERR_PASSWORD;
    }
    for (unsigned i = 0; rc == 0; i++) {
        gnutls_pkcs12_bag_t bag = NULL;
        if (gnutls_pkcs12_bag_init(&bag) < 0) {
            rc = LWM2MD_ERR_NOMEM;
            break;
        }
        int ret = gnutls_pkcs12_get_bag(p12, (int)i, bag);
        if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
            gnutls_pkcs12_bag_deinit(bag);
            break;
        }
        rc = ret < 0 ? LWM2MD_ERR_INVALID : p12_collect_bag(bag, password, items);
        gnutls_pkcs12_bag_deinit(bag);
    }
    gnutls_pkcs12_deinit(p12);
    return rc;
}

static int p12_open(const creds_ctx_t *ctx, const char *var, const char *path, const char *password,
                    p12_items_t *items)
{
    creds_file_t file = {0};
    int rc = read_var_file(ctx, var, path, &file);
    if (rc != 0) {
        return rc;
    }

    rc = p12_collect(&file, password, items);
    file_free(&file);
    if (rc == LWM2MD_ERR_PASSWORD) {
        return fail(ctx, rc, "%s_PASSWORD: wrong password for %s", var, path);
    }
    if (rc != 0) {
        return fail(ctx, rc, "%s=%s: not a valid PKCS#12 key store (%s)", var, path,
                    lwm2md_strerror(rc));
    }
    return 0;
}

static int p12_choose(const creds_ctx_t *ctx, const p12_items_t *items,
                      const config_credentials_t *server, size_t *chosen)
{
    const char **names = calloc(items->count + 1, sizeof(*names));
    bool *is_key = calloc(items->count + 1, sizeof(*is_key));
    int rc = names == NULL || is_key == NULL ? LWM2MD_ERR_NOMEM : 0;
    for (size_t i = 0; rc == 0 && i < items->count; i++) {
        names[i] = items->items[i].name;
        is_key[i] = items->items[i].is_key;
    }
    if (rc == 0) {
        rc = choose_key(ctx, server->key_store, server->key_alias, names, is_key, items->count,
                        chosen);
    }
    free(names);
    free(is_key);
    return rc;
}

static int p12_take_key(const creds_ctx_t *ctx, const p12_item_t *item,
                        const config_credentials_t *server, key_material_t *material)
{
    char password_var[CREDS_VAR_MAX];
    const char *password = key_password(server, password_var, ctx);
    if (gnutls_x509_privkey_init(&material->key) < 0) {
        return fail(ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", material->var);
    }

    int ret = gnutls_x509_privkey_import_pkcs8(material->key, &item->der, GNUTLS_X509_FMT_DER,
                                               item->encrypted ? password : NULL,
                                               item->encrypted ? 0 : GNUTLS_PKCS_PLAIN);
    if (ret == GNUTLS_E_DECRYPTION_FAILED) {
        return fail(ctx, LWM2MD_ERR_PASSWORD, "%s: wrong password for key '%s' in %s", password_var,
                    item->name != NULL ? item->name : "", material->path);
    }
    if (ret < 0) {
        return fail(ctx, LWM2MD_ERR_INVALID, "%s=%s: the key is not valid", material->var,
                    material->path);
    }
    return 0;
}

static int load_pkcs12(const creds_ctx_t *ctx, const config_credentials_t *server,
                       key_material_t *material)
{
    p12_items_t items = {0};
    size_t chosen = 0;
    int rc = p12_open(ctx, material->var, material->path, server->key_store_password, &items);
    if (rc == 0) {
        rc = p12_choose(ctx, &items, server, &chosen);
    }
    if (rc == 0) {
        rc = p12_take_key(ctx, &items.items[chosen], server, material);
    }

    /* Every certificate of the store is a candidate; check_key finds the key's own. */
    cert_list_t certs = {0};
    for (size_t i = 0; rc == 0 && i < items.count; i++) {
        if (!items.items[i].is_key) {
            rc = cert_list_add_der(&certs, items.items[i].der.data, items.items[i].der.size);
        }
        if (rc != 0) {
            rc =
                fail(ctx, rc, "%s=%s: holds an invalid certificate", material->var, material->path);
        }
    }
    if (rc == 0 && certs.count == 0) {
        char alias_var[CREDS_VAR_MAX];
        var_name(alias_var, ctx, "KEY_ALIAS");
        rc = fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: the key has no certificate in %s", alias_var,
                  server->key_alias, material->path);
    }
    if (rc == 0) {
        material_take_certs(material, &certs);
    }
    cert_list_free(&certs);
    p12_items_free(&items);
    return rc;
}

/* ---- building the GnuTLS objects ---- */

/* The key as plain PKCS#8 DER for GnuTLS's raw-key loader; caller wipes and frees. */
static int export_key(gnutls_x509_privkey_t key, gnutls_datum_t *out)
{
    int ret =
        gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN, out);
    return ret < 0 ? LWM2MD_ERR_CRYPTO : 0;
}

static void wipe_datum(gnutls_datum_t *datum)
{
    if (datum->data != NULL) {
        gnutls_memset(datum->data, 0, datum->size);
        gnutls_free(datum->data);
    }
    *datum = (gnutls_datum_t){0};
}

/* Creates the three certificate credentials (X.509, raw key, both). */
static int build_certificate(dtls_credentials_t *creds, const key_material_t *material,
                             size_t chain_length)
{
    gnutls_datum_t spki = {.data = creds->spki, .size = (unsigned)creds->spki_len};
    gnutls_datum_t key = {0};
    int rc = export_key(material->key, &key);
    if (rc == 0 && (gnutls_certificate_allocate_credentials(&creds->x509) < 0 ||
                    gnutls_certificate_allocate_credentials(&creds->rpk) < 0 ||
                    gnutls_certificate_allocate_credentials(&creds->both) < 0)) {
        rc = LWM2MD_ERR_NOMEM;
    }

    int length = (int)chain_length;
    if (rc == 0 &&
        (gnutls_certificate_set_x509_key(creds->x509, material->certs, length, material->key) < 0 ||
         gnutls_certificate_set_x509_key(creds->both, material->certs, length, material->key) <
             0)) {
        rc = LWM2MD_ERR_CRYPTO;
    }
    unsigned usage = GNUTLS_KEY_DIGITAL_SIGNATURE;
    if (rc == 0 &&
        (gnutls_certificate_set_rawpk_key_mem(creds->rpk, &spki, &key, GNUTLS_X509_FMT_DER, NULL,
                                              usage, NULL, 0, 0) < 0 ||
         gnutls_certificate_set_rawpk_key_mem(creds->both, &spki, &key, GNUTLS_X509_FMT_DER, NULL,
                                              usage, NULL, 0, 0) < 0)) {
        rc = LWM2MD_ERR_CRYPTO;
    }
    wipe_datum(&key);
    return rc;
}

static void log_certificate(const creds_ctx_t *ctx, const key_material_t *material, size_t length)
{
    if (!log_enabled(LOG_LEVEL_INFO)) {
        return;
    }
    gnutls_datum_t dn = {0};
    if (gnutls_x509_crt_get_dn3(material->certs[0], &dn, 0) < 0) {
        dn.data = NULL;
    }
    gnutls_ecc_curve_t curve = GNUTLS_ECC_CURVE_INVALID;
    gnutls_datum_t spki = {0};
    if (key_public(material->key, &spki, &curve) == 0) {
        gnutls_free(spki.data);
    }
    log_info("%s credentials: ECDSA %s key, certificate '%s', chain of %zu", ctx->prefix,
             curve_name(curve), dn.data != NULL ? (const char *)dn.data : "?", length);
    gnutls_free(dn.data);
}

static int load_server(const creds_ctx_t *ctx, const config_credentials_t *server,
                       dtls_credentials_t *creds)
{
    key_material_t material = {0};
    int rc = 0;
    if (server->type == CONFIG_CREDENTIALS_PEM) {
        rc = load_pem(ctx, server, &material);
    } else {
        var_name(material.var, ctx, "KEY_STORE");
        material.path = server->key_store;
        rc = server->key_store_type == CONFIG_KEYSTORE_JKS ? load_jks(ctx, server, &material)
                                                           : load_pkcs12(ctx, server, &material);
    }

    gnutls_datum_t spki = {0};
    size_t leaf = 0;
    if (rc == 0) {
        rc = check_key(ctx, &material, &spki, &leaf);
    }
    if (rc == 0) {
        creds->spki = malloc(spki.size);
        rc = creds->spki == NULL ? LWM2MD_ERR_NOMEM : 0;
    }
    if (rc == 0) {
        memcpy(creds->spki, spki.data, spki.size);
        creds->spki_len = spki.size;
        size_t length = order_chain(&material, leaf);
        warn_validity(ctx, material.certs[0]);
        rc = build_certificate(creds, &material, length);
        if (rc != 0) {
            rc = fail(ctx, rc, "%s=%s: GnuTLS refused the key and certificate", material.var,
                      material.path);
        } else {
            log_certificate(ctx, &material, length);
        }
    }
    gnutls_free(spki.data);
    material_free(&material);
    return rc;
}

/* ---- trust ---- */

static int trust_from_jks(const creds_ctx_t *ctx, const config_trust_t *trust, cert_list_t *list)
{
    jks_t *jks = NULL;
    int rc =
        jks_open(ctx, "LWM2M_TRUST_KEY_STORE", trust->key_store, trust->key_store_password, &jks);
    for (size_t i = 0; rc == 0 && i < jks_certificate_count(jks); i++) {
        size_t len = 0;
        const uint8_t *der = jks_certificate(jks, i, &len);
        rc = cert_list_add_der(list, der, len);
        if (rc == LWM2MD_ERR_INVALID) {
            rc = fail(ctx, rc, "LWM2M_TRUST_KEY_STORE=%s: holds an invalid certificate",
                      trust->key_store);
        }
    }
    jks_free(jks);
    return rc;
}

static int trust_from_pkcs12(const creds_ctx_t *ctx, const config_trust_t *trust, cert_list_t *list)
{
    p12_items_t items = {0};
    int rc =
        p12_open(ctx, "LWM2M_TRUST_KEY_STORE", trust->key_store, trust->key_store_password, &items);
    for (size_t i = 0; rc == 0 && i < items.count; i++) {
        if (!items.items[i].is_key) {
            rc = cert_list_add_der(list, items.items[i].der.data, items.items[i].der.size);
        }
        if (rc == LWM2MD_ERR_INVALID) {
            rc = fail(ctx, rc, "LWM2M_TRUST_KEY_STORE=%s: holds an invalid certificate",
                      trust->key_store);
        }
    }
    p12_items_free(&items);
    return rc;
}

static int trust_from_pem(const creds_ctx_t *ctx, const config_trust_t *trust, cert_list_t *list)
{
    creds_file_t file = {0};
    int rc = read_var_file(ctx, "LWM2M_TRUST_PEM_CERT", trust->pem_cert, &file);
    if (rc != 0) {
        return rc;
    }

    rc = cert_list_add_file(list, &file);
    file_free(&file);
    if (rc == LWM2MD_ERR_INVALID) {
        return fail(ctx, rc, "LWM2M_TRUST_PEM_CERT=%s: not a valid certificate file",
                    trust->pem_cert);
    }
    if (rc != 0 && rc != LWM2MD_ERR_NOT_FOUND) {
        return fail(ctx, rc, "LWM2M_TRUST_PEM_CERT=%s: %s", trust->pem_cert, lwm2md_strerror(rc));
    }
    return 0;
}

/*
 * Gives the certificates to the trust list and to each certificate
 * credentials object; all of them copy, so the list stays the caller's.
 */
static int trust_install(dtls_credentials_t *creds, const cert_list_t *list)
{
    gnutls_certificate_credentials_t targets[] = {creds->x509, creds->both};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        if (targets[i] != NULL &&
            gnutls_certificate_set_x509_trust(targets[i], list->certs, (int)list->count) < 0) {
            return LWM2MD_ERR_CRYPTO;
        }
    }

    for (size_t i = 0; i < list->count; i++) {
        gnutls_datum_t der = {0};
        int ret = gnutls_x509_crt_export2(list->certs[i], GNUTLS_X509_FMT_DER, &der);
        if (ret >= 0) {
            ret = gnutls_x509_trust_list_add_trust_mem(creds->trust, &der, NULL,
                                                       GNUTLS_X509_FMT_DER, 0, 0);
        }
        gnutls_free(der.data);
        if (ret < 0) {
            return LWM2MD_ERR_CRYPTO;
        }
    }
    return 0;
}

/* Loads the trusted certificates into creds: the trust list and each certificate credentials. */
static int load_trust(const creds_ctx_t *ctx, const config_trust_t *trust,
                      dtls_credentials_t *creds)
{
    cert_list_t list = {0};
    bool pem = trust->type == CONFIG_CREDENTIALS_PEM;
    const char *var = pem ? "LWM2M_TRUST_PEM_CERT" : "LWM2M_TRUST_KEY_STORE";
    const char *path = pem ? trust->pem_cert : trust->key_store;
    int rc = 0;
    if (pem) {
        rc = trust_from_pem(ctx, trust, &list);
    } else if (trust->key_store_type == CONFIG_KEYSTORE_JKS) {
        rc = trust_from_jks(ctx, trust, &list);
    } else {
        rc = trust_from_pkcs12(ctx, trust, &list);
    }
    if (rc == 0 && list.count == 0) {
        rc = fail(ctx, LWM2MD_ERR_NOT_FOUND, "%s=%s: holds no certificate", var, path);
    }

    if (rc == 0 && trust_install(creds, &list) != 0) {
        rc = fail(ctx, LWM2MD_ERR_CRYPTO, "%s=%s: GnuTLS refused the certificates", var, path);
    }
    if (rc == 0) {
        creds->trust_count = list.count;
        log_info("trust: %zu CA certificate(s) from %s", creds->trust_count, path);
    }
    cert_list_free(&list);
    return rc;
}

/* ---- the interface ---- */

int dtls_credentials_load(const config_credentials_t *server, const char *prefix,
                          const config_trust_t *trust, dtls_credentials_t **out, char *err,
                          size_t err_size)
{
    *out = NULL;
    if (err != NULL && err_size > 0) {
        err[0] = '\0';
    }
    creds_ctx_t ctx = {.prefix = prefix, .err = err, .err_size = err_size};
    dtls_credentials_t *creds = calloc(1, sizeof(*creds));
    if (creds == NULL) {
        return fail(&ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", prefix);
    }

    int rc = 0;
    if (gnutls_x509_trust_list_init(&creds->trust, 0) < 0) {
        rc = fail(&ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", prefix);
    }
    if (rc == 0 && server != NULL && server->enabled) {
        rc = load_server(&ctx, server, creds);
    }
    if (rc == 0 && trust != NULL && trust->enabled) {
        rc = load_trust(&ctx, trust, creds);
    }
    if (rc != 0) {
        dtls_credentials_free(creds);
        return rc;
    }
    *out = creds;
    return 0;
}

void dtls_credentials_free(dtls_credentials_t *creds)
{
    if (creds == NULL) {
        return;
    }
    gnutls_certificate_credentials_t all[] = {creds->x509, creds->rpk, creds->both};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (all[i] != NULL) {
            gnutls_certificate_free_credentials(all[i]);
        }
    }
    if (creds->trust != NULL) {
        gnutls_x509_trust_list_deinit(creds->trust, 1);
    }
    free(creds->spki);
    free(creds);
}

int dtls_credentials_has_certificate(const dtls_credentials_t *creds)
{
    return creds->x509 != NULL;
}

size_t dtls_credentials_trust_count(const dtls_credentials_t *creds)
{
    return creds->trust_count;
}

gnutls_certificate_credentials_t dtls_credentials_x509(const dtls_credentials_t *creds)
{
    return creds->x509;
}

gnutls_certificate_credentials_t dtls_credentials_rpk(const dtls_credentials_t *creds)
{
    return creds->rpk;
}

gnutls_certificate_credentials_t dtls_credentials_certificate(const dtls_credentials_t *creds)
{
    return creds->both;
}

gnutls_x509_trust_list_t dtls_credentials_trust(const dtls_credentials_t *creds)
{
    return creds->trust;
}

const uint8_t *dtls_credentials_spki(const dtls_credentials_t *creds, size_t *len)
{
    *len = creds->spki_len;
    return creds->spki;
}

/* ---- files named on the command line ---- */

static int read_cli_file(const char *path, creds_file_t *file, char *err, size_t err_size)
{
    creds_ctx_t ctx = {.prefix = "", .err = err, .err_size = err_size};
    int error_number = 0;
    int rc = file_read(path, file, &error_number);
    if (rc == LWM2MD_ERR_IO && error_number != EINVAL) {
        char reason[128];
        return fail(&ctx, rc, "%s: cannot read (%s)", path,
                    errno_text(error_number, reason, sizeof(reason)));
    }
    if (rc != 0) {
        return fail(&ctx, rc, "%s: %s", path,
                    rc == LWM2MD_ERR_TOO_BIG ? "too large" : "not a regular file");
    }
    return 0;
}

static int copy_out(const gnutls_datum_t *datum, uint8_t **der, size_t *der_len)
{
    *der = malloc(datum->size > 0 ? datum->size : 1);
    if (*der == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(*der, datum->data, datum->size);
    *der_len = datum->size;
    return 0;
}

/* The first certificate of a PEM or DER file. */
static int first_certificate(const creds_file_t *file, gnutls_x509_crt_t *out)
{
    cert_list_t list = {0};
    int rc = cert_list_add_file(&list, file);
    if (rc == 0 && list.count == 0) {
        rc = LWM2MD_ERR_NOT_FOUND;
    }
    if (rc == 0) {
        *out = list.certs[0];
        list.certs[0] = list.certs[--list.count];
    }
    cert_list_free(&list);
    return rc;
}

/* A public key from a PEM/DER SubjectPublicKeyInfo or a PEM/DER certificate. */
static int import_public(const creds_file_t *file, gnutls_pubkey_t pub)
{
    gnutls_datum_t datum = {.data = file->data, .size = (unsigned)file->len};
    if (file_is_pem(file) && file_has(file, "-----BEGIN PUBLIC KEY-----")) {
        return gnutls_pubkey_import(pub, &datum, GNUTLS_X509_FMT_PEM) < 0 ? LWM2MD_ERR_INVALID : 0;
    }
    if (!file_is_pem(file) && gnutls_pubkey_import(pub, &datum, GNUTLS_X509_FMT_DER) >= 0) {
        return 0;
    }

    gnutls_x509_crt_t crt = NULL;
    int rc = first_certificate(file, &crt);
    if (rc == 0) {
        rc = gnutls_pubkey_import_x509(pub, crt, 0) < 0 ? LWM2MD_ERR_INVALID : 0;
        gnutls_x509_crt_deinit(crt);
    }
    return rc == LWM2MD_ERR_NOT_FOUND ? LWM2MD_ERR_INVALID : rc;
}

int dtls_read_public_key(const char *path, uint8_t **der, size_t *der_len, char *err,
                         size_t err_size)
{
    *der = NULL;
    *der_len = 0;
    creds_ctx_t ctx = {.prefix = "", .err = err, .err_size = err_size};
    creds_file_t file = {0};
    int rc = read_cli_file(path, &file, err, err_size);
    if (rc != 0) {
        return rc;
    }

    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t spki = {0};
    if (file_has(&file, "PRIVATE KEY-----")) {
        rc = fail(&ctx, LWM2MD_ERR_INVALID,
                  "%s: holds a private key; give the public key or a certificate", path);
    } else if (gnutls_pubkey_init(&pub) < 0) {
        rc = fail(&ctx, LWM2MD_ERR_NOMEM, "%s: out of memory", path);
    } else if (import_public(&file, pub) != 0) {
        rc = fail(&ctx, LWM2MD_ERR_INVALID, "%s: not a public key or certificate (PEM or DER)",
                  path);
    }
    if (rc == 0) {
        int algorithm = gnutls_pubkey_get_pk_algorithm(pub, NULL);
        if (algorithm != GNUTLS_PK_ECDSA) {
            const char *name = algorithm > 0 ? gnutls_pk_get_name(algorithm) : NULL;
            rc = fail(&ctx, LWM2MD_ERR_UNSUPPORTED, "%s: the key is %s; an EC key is required",
                      path, name != NULL ? name : "of an unknown type");
        }
    }
    if (rc == 0 && pubkey_spki(pub, &spki) != 0) {
        rc = fail(&ctx, LWM2MD_ERR_CRYPTO, "%s: cannot encode the public key", path);
    }
    if (rc == 0) {
        rc = copy_out(&spki, der, der_len);
    }
    gnutls_free(spki.data);
    if (pub != NULL) {
        gnutls_pubkey_deinit(pub);
    }
    file_free(&file);
    return rc;
}

int dtls_read_certificate(const char *path, uint8_t **der, size_t *der_len, char *err,
                          size_t err_size)
{
    *der = NULL;
    *der_len = 0;
    creds_ctx_t ctx = {.prefix = "", .err = err, .err_size = err_size};
    creds_file_t file = {0};
    int rc = read_cli_file(path, &file, err, err_size);
    if (rc != 0) {
        return rc;
    }

    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t out = {0};
    rc = first_certificate(&file, &crt);
    if (rc == LWM2MD_ERR_NOT_FOUND) {
        rc = fail(&ctx, rc, "%s: holds no certificate", path);
    } else if (rc != 0) {
        rc = fail(&ctx, rc, "%s: not a valid certificate (PEM or DER)", path);
    }
    if (rc == 0 && gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out) < 0) {
        rc = fail(&ctx, LWM2MD_ERR_CRYPTO, "%s: cannot encode the certificate", path);
    }
    if (rc == 0) {
        rc = copy_out(&out, der, der_len);
    }
    gnutls_free(out.data);
    if (crt != NULL) {
        gnutls_x509_crt_deinit(crt);
    }
    file_free(&file);
    return rc;
}
