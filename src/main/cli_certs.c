/* `lwm2md certs generate`: a test CA, a server certificate and client credentials. */
#include "main/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CERTS_CLIENTS_MAX 256
/* RFC 5280 A.1: ub-common-name is 64 characters. */
#define CERTS_CN_MAX 64
#define CERTS_DNS_NAME_MAX 253
#define CERTS_DAYS_DEFAULT 365
#define CERTS_DAYS_MAX 36500
#define CERTS_NAME_MAX 96
/* Fixed files, plus four per client. */
#define CERTS_FILES_MAX (6 + 4 * CERTS_CLIENTS_MAX)
/* Backdated a little, so a peer whose clock is slightly behind accepts it. */
#define CERTS_BACKDATE_SEC 300
#define CERTS_SERIAL_LEN 16
#define CERTS_KEY_ID_MAX 64

static const char certs_usage[] =
    "Usage: lwm2md certs generate --out DIR [OPTIONS]\n"
    "\n"
    "Creates a small certificate authority and credentials signed by it, for tests\n"
    "and first deployments. 'lwm2md certs generate --help' describes the files.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const char generate_usage[] =
    "Usage: lwm2md certs generate --out DIR [--server-name NAME] [--client ENDPOINT]...\n"
    "                             [--days N] [--force]\n"
    "\n"
    "Writes into DIR (created with mode 0700 if missing), every key ECDSA P-256,\n"
    "every key file mode 0600:\n"
    "  ca.pem, ca_key.pem            a self-signed root CA (CA:true, keyCertSign)\n"
    "  server.pem, server_key.pem    the server certificate, signed by the CA: CN and\n"
    "                                subjectAltName NAME (DNS, or IP for an address),\n"
    "                                extended key usage serverAuth\n"
    "  server_chain.pem              server.pem then ca.pem: LWM2M_SERVER_PEM_CERT\n"
    "  server_rpk_pub.pem            the server's public key, for RPK clients\n"
    "and for each --client ENDPOINT:\n"
    "  ENDPOINT.pem, ENDPOINT_key.pem          a client certificate, CN=ENDPOINT,\n"
    "                                          extended key usage clientAuth\n"
    "  ENDPOINT_rpk_key.pem, ENDPOINT_rpk_pub.pem  a separate raw public key pair\n"
    "\n"
    "Options:\n"
    "  --out DIR           where to write (required)\n"
    "  --server-name NAME  the server's DNS name or IP address (default localhost)\n"
    "  --client ENDPOINT   a client endpoint name (1 to 64 bytes, no '/'); repeatable\n"
    "  --days N            validity of every certificate, 1 to 36500 (default 365)\n"
    "  --force             replace existing files instead of refusing\n"
    "\n"
    "Then: LWM2M_SERVER_PEM_CERT=DIR/server_chain.pem,\n"
    "LWM2M_SERVER_PEM_KEY=DIR/server_key.pem, LWM2M_TRUST_PEM_CERT=DIR/ca.pem.\n";

typedef struct certs_options {
    const char *out;
    const char *server_name;
    const char *clients[CERTS_CLIENTS_MAX];
    size_t client_count;
    unsigned days;
    bool force;
    bool help;
} certs_options_t;

/* One file to write: its name in DIR and its contents (wiped when freed). */
typedef struct certs_file {
    char name[CERTS_NAME_MAX];
    gnutls_datum_t data;
    bool secret;
} certs_file_t;

typedef struct certs_output {
    certs_file_t files[CERTS_FILES_MAX];
    size_t count;
} certs_output_t;

/* What one certificate says; the issuer signs it (itself for the CA). */
typedef struct cert_spec {
    const char *cn;
    bool is_ca;
    const char *purpose; /* an extended key usage OID, or NULL */
    const char *dns_name;
    const uint8_t *ip;
    size_t ip_len;
    unsigned days;
} cert_spec_t;

/* ---- messages ---- */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    fprintf(stderr, "lwm2md certs generate: ");
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, " (see 'lwm2md certs generate --help')\n");
    return CLI_EXIT_USAGE;
}

static int failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int failure(const char *fmt, ...)
{
    fprintf(stderr, "lwm2md certs generate: ");
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

/* ---- arguments ---- */

static bool has_control(const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return true;
        }
    }
    return false;
}

static int parse_days(const char *text, unsigned *days)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 1 || value > CERTS_DAYS_MAX) {
        return usage_error("--days '%s': not a number of days from 1 to %d",
                           has_control(text) ? "?" : text, CERTS_DAYS_MAX);
    }
    *days = (unsigned)value;
    return CLI_EXIT_OK;
}

/* A client endpoint becomes a CN and file names: short, printable, no path. */
static int check_client(const char *endpoint)
{
    size_t len = strlen(endpoint);
    if (len == 0 || len > CERTS_CN_MAX || has_control(endpoint)) {
        return usage_error("--client: an endpoint of 1 to %d printable bytes is needed",
                           CERTS_CN_MAX);
    }
    if (strchr(endpoint, '/') != NULL || strcmp(endpoint, ".") == 0 ||
        strcmp(endpoint, "..") == 0) {
        return usage_error("--client '%s': an endpoint used as a file name cannot hold '/' or "
                           "be '.' or '..'",
                           endpoint);
    }
    return CLI_EXIT_OK;
}

static bool dns_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > CERTS_DNS_NAME_MAX || name[0] == '.' || name[0] == '-') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.';
        if (!ok || (c == '.' && name[i + 1] == '.')) {
            return false;
        }
    }
    return true;
}

/* Takes one option (and its value) from argv; *index moves past what it used. */
static int take_option(certs_options_t *options, int argc, char **argv, int *index)
{
    const char *arg = argv[*index];
    const char *equals = strchr(arg, '=');
    size_t len = equals != NULL ? (size_t)(equals - arg) : strlen(arg);
    const char *names[] = {"--out", "--server-name", "--client", "--days", "--force"};
    size_t which = 0;
    while (which < 5 && (strlen(names[which]) != len || strncmp(arg, names[which], len) != 0)) {
        which++;
    }
    if (which == 5) {
        return usage_error("unknown option '%.*s'", (int)len, has_control(arg) ? "?" : arg);
    }
    if (which == 4) {
        options->force = true;
        return equals == NULL ? CLI_EXIT_OK : usage_error("option '--force' takes no value");
    }

    const char *value = equals != NULL ? equals + 1 : NULL;
    if (value == NULL && *index + 1 >= argc) {
        return usage_error("option '%s' needs a value", names[which]);
    }
    if (value == NULL) {
        *index += 1;
        value = argv[*index];
    }
    if (which == 0) {
        options->out = value;
    } else if (which == 1) {
        options->server_name = value;
    } else if (which == 3) {
        return parse_days(value, &options->days);
    } else if (options->client_count == CERTS_CLIENTS_MAX) {
        return usage_error("at most %d --client options", CERTS_CLIENTS_MAX);
    } else {
        options->clients[options->client_count++] = value;
        return check_client(value);
    }
    return CLI_EXIT_OK;
}

static int parse_options(certs_options_t *options, int argc, char **argv)
{
    *options = (certs_options_t){.server_name = "localhost", .days = CERTS_DAYS_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            options->help = true;
            return CLI_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0) {
            return usage_error("unexpected argument '%s'", has_control(arg) ? "?" : arg);
        }
        int rc = take_option(options, argc, argv, &i);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
    }

    if (options->out == NULL || options->out[0] == '\0') {
        return usage_error("--out DIR is required");
    }
    return CLI_EXIT_OK;
}

/* ---- files ---- */

static void output_free(certs_output_t *output)
{
    for (size_t i = 0; i < output->count; i++) {
        gnutls_datum_t *data = &output->files[i].data;
        if (data->data != NULL) {
            gnutls_memset(data->data, 0, data->size);
            gnutls_free(data->data);
        }
    }
    output->count = 0;
}

/* Names the next file; false when the name is taken, so no file overwrites another. */
static bool output_add(certs_output_t *output, const char *stem, const char *suffix, bool secret)
{
    certs_file_t *file = &output->files[output->count];
    snprintf(file->name, sizeof(file->name), "%s%s.pem", stem, suffix);
    for (size_t i = 0; i < output->count; i++) {
        if (strcmp(output->files[i].name, file->name) == 0) {
            return false;
        }
    }
    file->data = (gnutls_datum_t){0};
    file->secret = secret;
    output->count++;
    return true;
}

/* Refuses to touch anything when a file exists, unless --force. */
static int check_existing(const certs_options_t *options, const certs_output_t *output)
{
    for (size_t i = 0; i < output->count && !options->force; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", options->out, output->files[i].name);
        struct stat st;
        if (lstat(path, &st) == 0) {
            return failure("%s exists; nothing was written (use --force to replace)", path);
        }
    }
    return CLI_EXIT_OK;
}

/* strerror in the house style: lowercase. */
static const char *error_text(int error_number, char *buf, size_t size)
{
    char scratch[128];
    snprintf(buf, size, "%s", strerror_r(error_number, scratch, sizeof(scratch)));
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

/* Creates DIR and any missing parent, each 0700, like mkdir -p with a private mode. */
static int make_directory(const char *dir)
{
    char path[PATH_MAX];
    char reason[128];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        return failure("%s: path too long", dir);
    }

    for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash != NULL) {
            *slash = '\0';
        }
        struct stat st;
        if (stat(path, &st) != 0 && (errno != ENOENT || mkdir(path, 0700) != 0)) {
            return failure("%s: cannot create the directory (%s)", path,
                           error_text(errno, reason, sizeof(reason)));
        }
        if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
            return failure("%s: not a directory", path);
        }
        if (slash == NULL || slash[1] == '\0') {
            return CLI_EXIT_OK;
        }
        *slash = '/';
    }
}

/* A new file with its final mode from the start; --force replaces, never follows a link. */
static int write_file(const char *dir, const certs_file_t *file, bool force)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, file->name);
    if (force && unlink(path) != 0 && errno != ENOENT) {
        char reason[128];
        return failure("%s: cannot replace (%s)", path, error_text(errno, reason, sizeof(reason)));
    }

    mode_t mode = file->secret ? 0600 : 0644;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    char reason[128];
    if (fd < 0) {
        return failure("%s: cannot create (%s)", path, error_text(errno, reason, sizeof(reason)));
    }
    size_t done = 0;
    while (done < file->data.size) {
        ssize_t n = write(fd, file->data.data + done, file->data.size - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int error_number = errno;
            close(fd);
            return failure("%s: cannot write (%s)", path,
                           error_text(error_number, reason, sizeof(reason)));
        }
        done += (size_t)n;
    }
    /* The umask may have narrowed the mode; the key files' mode is the point. */
    if (fchmod(fd, mode) != 0 || close(fd) != 0) {
        return failure("%s: cannot finish (%s)", path, error_text(errno, reason, sizeof(reason)));
    }
    return CLI_EXIT_OK;
}

/* ---- keys and certificates ---- */

static int new_key(gnutls_x509_privkey_t *key)
{
    if (gnutls_x509_privkey_init(key) < 0) {
        *key = NULL;
        return -1;
    }
    unsigned bits = GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1);
    return gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA, bits, 0) < 0 ? -1 : 0;
}

static int export_key(gnutls_x509_privkey_t key, gnutls_datum_t *out)
{
    return gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
                                             out) < 0
               ? -1
               : 0;
}

/*
 * An RPK private key as PEM "EC PRIVATE KEY" (SEC1, RFC 5915): the form
 * constrained devices and libcoap's -M option read.
 */
static int export_sec1_key(gnutls_x509_privkey_t key, gnutls_datum_t *out)
{
    return gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, out) < 0 ? -1 : 0;
}

/* The public key as PEM "PUBLIC KEY" (SubjectPublicKeyInfo). */
static int export_public(gnutls_x509_privkey_t key, gnutls_datum_t *out)
{
    gnutls_privkey_t priv = NULL;
    gnutls_pubkey_t pub = NULL;
    int rc = gnutls_privkey_init(&priv) < 0 || gnutls_pubkey_init(&pub) < 0 ? -1 : 0;
    if (rc == 0 && (gnutls_privkey_import_x509(priv, key, 0) < 0 ||
                    gnutls_pubkey_import_privkey(pub, priv, 0, 0) < 0 ||
                    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_PEM, out) < 0)) {
        rc = -1;
    }
    if (pub != NULL) {
        gnutls_pubkey_deinit(pub);
    }
    if (priv != NULL) {
        gnutls_privkey_deinit(priv);
    }
    return rc;
}

/* Serial number, validity, subject and key (RFC 5280 4.1). */
static int set_identity(gnutls_x509_crt_t crt, const cert_spec_t *spec, gnutls_x509_privkey_t key)
{
    /* A positive 128-bit random serial (RFC 5280 4.1.2.2 allows up to 20 octets). */
    uint8_t serial[CERTS_SERIAL_LEN];
    if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0) {
        return -1;
    }
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x01);

    time_t now = time(NULL);
    time_t expires = now + (time_t)spec->days * 86400;
    if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, now - CERTS_BACKDATE_SEC) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, expires) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec->cn,
                                      (unsigned)strlen(spec->cn)) < 0 ||
        gnutls_x509_crt_set_key(crt, key) < 0) {
        return -1;
    }
    return 0;
}

/* Basic constraints, key usage, EKU, subjectAltName and key identifiers. */
static int set_extensions(gnutls_x509_crt_t crt, const cert_spec_t *spec, gnutls_x509_privkey_t key,
                          gnutls_x509_crt_t issuer)
{
    unsigned usage =
        spec->is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN : GNUTLS_KEY_DIGITAL_SIGNATURE;
    if (gnutls_x509_crt_set_basic_constraints(crt, spec->is_ca ? 1 : 0, -1) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, usage) < 0) {
        return -1;
    }
    if (spec->purpose != NULL && gnutls_x509_crt_set_key_purpose_oid(crt, spec->purpose, 0) < 0) {
        return -1;
    }
    if (spec->dns_name != NULL && gnutls_x509_crt_set_subject_alt_name(
                                      crt, GNUTLS_SAN_DNSNAME, spec->dns_name,
                                      (unsigned)strlen(spec->dns_name), GNUTLS_FSAN_SET) < 0) {
        return -1;
    }
    if (spec->ip != NULL &&
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, spec->ip,
                                             (unsigned)spec->ip_len, GNUTLS_FSAN_SET) < 0) {
        return -1;
    }

    uint8_t id[CERTS_KEY_ID_MAX];
    size_t id_len = sizeof(id);
    if (gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA1, id, &id_len) < 0 ||
        gnutls_x509_crt_set_subject_key_id(crt, id, id_len) < 0) {
        return -1;
    }
    if (issuer != NULL) {
        id_len = sizeof(id);
        if (gnutls_x509_crt_get_subject_key_id(issuer, id, &id_len, NULL) < 0 ||
            gnutls_x509_crt_set_authority_key_id(crt, id, id_len) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A certificate for key, signed by issuer (NULL: self-signed with key). */
static int new_cert(const cert_spec_t *spec, gnutls_x509_privkey_t key, gnutls_x509_crt_t issuer,
                    gnutls_x509_privkey_t issuer_key, gnutls_x509_crt_t *out)
{
    gnutls_x509_crt_t crt = NULL;
    if (gnutls_x509_crt_init(&crt) < 0) {
        return -1;
    }

    int rc = set_identity(crt, spec, key);
    if (rc == 0) {
        rc = set_extensions(crt, spec, key, issuer);
    }
    if (rc == 0 &&
        gnutls_x509_crt_sign2(crt, issuer != NULL ? issuer : crt, issuer != NULL ? issuer_key : key,
                              GNUTLS_DIG_SHA256, 0) < 0) {
        rc = -1;
    }
    if (rc != 0) {
        gnutls_x509_crt_deinit(crt);
        return -1;
    }
    *out = crt;
    return 0;
}

static int export_cert(gnutls_x509_crt_t crt, gnutls_datum_t *out)
{
    return gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, out) < 0 ? -1 : 0;
}

/* Two PEM certificates in one file: the chain the server sends. */
static int concat(gnutls_x509_crt_t first, gnutls_x509_crt_t second, gnutls_datum_t *out)
{
    gnutls_datum_t a = {0};
    gnutls_datum_t b = {0};
    int rc = export_cert(first, &a) == 0 && export_cert(second, &b) == 0 ? 0 : -1;
    if (rc == 0) {
        out->data = gnutls_malloc(a.size + b.size);
        rc = out->data == NULL ? -1 : 0;
    }
    if (rc == 0) {
        memcpy(out->data, a.data, a.size);
        memcpy(out->data + a.size, b.data, b.size);
        out->size = a.size + b.size;
    }
    gnutls_free(a.data);
    gnutls_free(b.data);
    return rc;
}

/* ---- what generate makes ---- */

/* The CA in memory, to sign the rest. */
typedef struct certs_ca {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
} certs_ca_t;

static void ca_free(certs_ca_t *ca)
{
    if (ca->crt != NULL) {
        gnutls_x509_crt_deinit(ca->crt);
    }
    if (ca->key != NULL) {
        gnutls_x509_privkey_deinit(ca->key);
    }
}

/* Fills ca.pem and ca_key.pem (files 0 and 1). */
static int make_ca(const certs_options_t *options, certs_ca_t *ca, certs_file_t *files)
{
    cert_spec_t spec = {.cn = "lwm2md CA", .is_ca = true, .days = options->days};
    if (new_key(&ca->key) != 0 || new_cert(&spec, ca->key, NULL, NULL, &ca->crt) != 0) {
        return -1;
    }
    if (export_cert(ca->crt, &files[0].data) != 0 || export_key(ca->key, &files[1].data) != 0) {
        return -1;
    }
    return 0;
}

/* Fills server.pem, server_key.pem, server_chain.pem and server_rpk_pub.pem. */
static int make_server(const certs_options_t *options, const certs_ca_t *ca, certs_file_t *files)
{
    uint8_t ip[16];
    size_t ip_len = 0;
    if (inet_pton(AF_INET, options->server_name, ip) == 1) {
        ip_len = 4;
    } else if (inet_pton(AF_INET6, options->server_name, ip) == 1) {
        ip_len = 16;
    }
    cert_spec_t spec = {.cn = options->server_name,
                        .purpose = GNUTLS_KP_TLS_WWW_SERVER,
                        .dns_name = ip_len == 0 ? options->server_name : NULL,
                        .ip = ip_len > 0 ? ip : NULL,
                        .ip_len = ip_len,
                        .days = options->days};

    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc = new_key(&key) == 0 && new_cert(&spec, key, ca->crt, ca->key, &crt) == 0 ? 0 : -1;
    if (rc == 0) {
        rc = export_cert(crt, &files[0].data) == 0 && export_key(key, &files[1].data) == 0 &&
                     concat(crt, ca->crt, &files[2].data) == 0 &&
                     export_public(key, &files[3].data) == 0
                 ? 0
                 : -1;
    }
    if (crt != NULL) {
        gnutls_x509_crt_deinit(crt);
    }
    if (key != NULL) {
        gnutls_x509_privkey_deinit(key);
    }
    return rc;
}

/* A client certificate, and a separate raw public key pair. */
static int make_client(const certs_options_t *options, const char *endpoint, const certs_ca_t *ca,
                       certs_file_t *files)
{
    cert_spec_t spec = {.cn = endpoint, .purpose = GNUTLS_KP_TLS_WWW_CLIENT, .days = options->days};
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_privkey_t rpk = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc = new_key(&key) == 0 && new_key(&rpk) == 0 &&
                     new_cert(&spec, key, ca->crt, ca->key, &crt) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        rc = export_cert(crt, &files[0].data) == 0 && export_key(key, &files[1].data) == 0 &&
                     export_sec1_key(rpk, &files[2].data) == 0 &&
                     export_public(rpk, &files[3].data) == 0
                 ? 0
                 : -1;
    }
    if (crt != NULL) {
        gnutls_x509_crt_deinit(crt);
    }
    if (key != NULL) {
        gnutls_x509_privkey_deinit(key);
    }
    if (rpk != NULL) {
        gnutls_x509_privkey_deinit(rpk);
    }
    return rc;
}

/*
 * Names every file before any key is made, in the order make_all fills
 * them: the CA's 2, the server's 4, then 4 per client.
 */
static int plan_files(const certs_options_t *options, certs_output_t *output)
{
    output_add(output, "ca", "", false);
    output_add(output, "ca", "_key", true);
    output_add(output, "server", "", false);
    output_add(output, "server", "_key", true);
    output_add(output, "server", "_chain", false);
    output_add(output, "server", "_rpk_pub", false);

    const char *suffixes[] = {"", "_key", "_rpk_key", "_rpk_pub"};
    for (size_t c = 0; c < options->client_count; c++) {
        for (size_t s = 0; s < 4; s++) {
            const char *endpoint = options->clients[c];
            if (!output_add(output, endpoint, suffixes[s], s == 1 || s == 2)) {
                return usage_error("--client '%s': its file %s%s.pem would replace another",
                                   endpoint, endpoint, suffixes[s]);
            }
        }
    }
    return CLI_EXIT_OK;
}

static int make_all(const certs_options_t *options, certs_output_t *output)
{
    certs_ca_t ca = {0};
    int rc = make_ca(options, &ca, &output->files[0]);
    if (rc == 0) {
        rc = make_server(options, &ca, &output->files[2]);
    }
    for (size_t c = 0; rc == 0 && c < options->client_count; c++) {
        rc = make_client(options, options->clients[c], &ca, &output->files[6 + 4 * c]);
    }
    ca_free(&ca);
    return rc;
}

static bool server_name_valid(const char *name)
{
    uint8_t ip[16];
    return inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1 ||
           (strlen(name) <= CERTS_CN_MAX && dns_name_valid(name));
}

/* Creates DIR if need be and writes every file, listing each on stdout. */
static int write_all(const certs_options_t *options, const certs_output_t *output)
{
    int rc = make_directory(options->out);
    for (size_t i = 0; rc == CLI_EXIT_OK && i < output->count; i++) {
        rc = write_file(options->out, &output->files[i], options->force);
        if (rc == CLI_EXIT_OK) {
            printf("%s/%s\n", options->out, output->files[i].name);
        }
    }
    return rc;
}

static int generate(int argc, char **argv)
{
    certs_options_t options;
    int rc = parse_options(&options, argc, argv);
    if (rc != CLI_EXIT_OK || options.help) {
        if (options.help) {
            fputs(generate_usage, stdout);
        }
        return rc;
    }
    if (!server_name_valid(options.server_name)) {
        return usage_error("--server-name: a DNS name (at most %d bytes) or an IP address is "
                           "needed",
                           CERTS_CN_MAX);
    }

    certs_output_t *output = calloc(1, sizeof(*output));
    if (output == NULL) {
        return failure("out of memory");
    }
    rc = plan_files(&options, output);
    if (rc == CLI_EXIT_OK) {
        rc = check_existing(&options, output);
    }
    if (rc == CLI_EXIT_OK && make_all(&options, output) != 0) {
        rc = failure("cannot generate the keys and certificates (GnuTLS failed)");
    }
    if (rc == CLI_EXIT_OK) {
        rc = write_all(&options, output);
    }
    output_free(output);
    free(output);
    return rc;
}

int cli_certs_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "lwm2md certs: missing command: generate (see 'lwm2md certs --help')\n");
        return CLI_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        fputs(certs_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(command, "generate") != 0) {
        fprintf(stderr, "lwm2md certs: unknown command '%s' (see 'lwm2md certs --help')\n",
                has_control(command) ? "?" : command);
        return CLI_EXIT_USAGE;
    }
    return generate(argc - 1, argv + 1);
}
