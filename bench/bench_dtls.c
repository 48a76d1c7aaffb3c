/* bench_dtls: a DTLS 1.2 client load generator that times full and resumed handshakes. */
#include <errno.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "common.h"
#include "net/addr.h"

#define EXIT_ALL_DONE 0
#define EXIT_SOME_FAILED 1
#define EXIT_USAGE 2

#define COUNT_MAX 10000000
#define CONCURRENCY_MAX 4096
#define PSK_DEVICES_MAX 100000
#define PSK_KEY_MAX 64
#define PSK_IDENTITY_MAX 128
#define ERROR_KINDS_MAX 16
#define STEPS_MAX 16      /* gnutls_handshake calls in a row while it reports warnings */
#define READS_MAX 64      /* records read from one datagram of a kept session */
#define FEEDS_MAX 64      /* datagrams taken from one socket per wake-up */
#define FAILURES_SHOWN 5  /* on stderr, with their local address */
#define SPARE_FDS 32      /* descriptors left for stdio, GnuTLS and the signal fd */
#define DATAGRAM_MAX 2048 /* larger than any datagram at the server MTU */
#define NS_PER_MS 1000000ull
#define KEPT_CHECK_NS (100 * NS_PER_MS) /* kept sessions are polled this often */

/*
 * The cipher suites LwM2M mandates, after the IoT profile of RFC 7925
 * (4.2 for PSK, 4.3 and 4.4 for raw keys and certificates):
 * TLS_PSK_WITH_AES_128_CCM_8 and TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 on
 * secp256r1, DTLS 1.2 only.
 * "+SIGN-ECDSA-SHA256" is the TLS 1.2 name GnuTLS needs for the suites.
 */
#define PRIORITY_COMMON                                                                            \
    "NONE:+VERS-DTLS1.2:+COMP-NULL:+AES-128-CCM-8:+AEAD:+SIGN-ECDSA-SHA256:+GROUP-SECP256R1"
static const char priority_psk[] = PRIORITY_COMMON ":+PSK";
static const char priority_x509[] = PRIORITY_COMMON ":+ECDHE-ECDSA";
static const char priority_rpk[] =
    PRIORITY_COMMON ":+ECDHE-ECDSA:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK";

static const char usage_text[] =
    "usage: bench_dtls --server HOST:PORT --mode psk|rpk|x509 [options]\n"
    "\n"
    "Runs DTLS 1.2 client handshakes against a server and reports handshakes per\n"
    "second and latency. Each handshake has its own UDP socket (a new local port).\n"
    "The last line of the report, RESULT ..., is for scripts.\n"
    "\n"
    "  --server HOST:PORT        the server's DTLS address (numeric; [v6]:port)\n"
    "  --mode psk|rpk|x509       the credential the clients prove themselves with\n"
    "  --count N                 handshakes to run (default 1000)\n"
    "  --concurrency C           handshakes in flight at once (default 32)\n"
    "  --resume                  first one full handshake per slot (C of them, not\n"
    "                            timed), then N resumed ones: each slot keeps its socket,\n"
    "                            ends its session with close_notify and resumes it\n"
    "  --keep                    keep every session open after its handshake, then hold\n"
    "                            them until SIGTERM/SIGINT or --hold-seconds\n"
    "  --hold-seconds S          how long --keep holds the sessions (default 300)\n"
    "  --psk-identity-prefix P   PSK identities are P0, P1, ... (default \"bench-psk-\")\n"
    "  --psk-devices D           identities in use; handshake i uses P(i mod D) (default 1)\n"
    "  --psk-key HEX             the key all those identities share (1-64 bytes)\n"
    "  --key FILE                rpk, x509: the client's private key (PEM)\n"
    "  --cert FILE               rpk: the client's public key (PEM); x509: its certificate\n"
    "  --ca FILE                 x509: verify the server's chain against these CAs and\n"
    "                            its name against HOST (without it: no verification)\n"
    "  --priority STRING         GnuTLS priority string instead of the mode's default\n"
    "  --timeout-ms T            first retransmission timeout (default 1000)\n"
    "  --handshake-timeout-ms T  give up a handshake after this long (default 30000)\n"
    "  --mtu BYTES               DTLS datagram size limit (default 1232)\n"
    "  --max-seconds S           overall time limit of the handshakes (default 600)\n"
    "\n"
    "Exit status: 0 every handshake done, 1 some failed or unfinished, 2 usage or\n"
    "set-up error.\n";

typedef enum bench_mode {
    MODE_PSK,
    MODE_RPK,
    MODE_X509,
} bench_mode_t;

typedef struct bench_options {
    net_addr_t server;
    char host[NET_ADDR_STRING_MAX]; /* the name checked in the server's certificate */
    bench_mode_t mode;
    bool have_mode;
    uint32_t count;
    uint32_t concurrency;
    bool resume;
    bool keep;
    uint32_t hold_seconds;
    const char *psk_prefix;
    uint32_t psk_devices;
    uint8_t psk_key[PSK_KEY_MAX];
    size_t psk_key_len;
    const char *key_file;
    const char *cert_file;
    const char *ca_file;
    const char *priority;
    uint32_t timeout_ms;
    uint32_t handshake_timeout_ms;
    uint32_t mtu;
    uint32_t max_seconds;
} bench_options_t;

/* Credentials and priorities shared by every session. */
typedef struct bench_creds {
    gnutls_priority_t priority;
    gnutls_psk_client_credentials_t *psk; /* one per identity */
    uint32_t psk_count;
    gnutls_certificate_credentials_t cert;
} bench_creds_t;

/*
 * What a session's transport callbacks see: its socket, and the one
 * datagram it may read during the current GnuTLS call.
 */
typedef struct transport {
    int fd;               /* -1: none */
    const uint8_t *input; /* NULL: nothing to read */
    size_t input_len;
} transport_t;

/* One handshake in flight at a time. */
typedef struct slot {
    gnutls_session_t session; /* NULL: idle */
    transport_t io;
    uint32_t psk_index;
    uint64_t started_ns;   /* the first ClientHello */
    uint64_t wake_ns;      /* GnuTLS wants to be called again (retransmission) */
    gnutls_datum_t ticket; /* --resume: the session data of the warm-up */
} slot_t;

/* An established session held open by --keep. */
typedef struct kept {
    gnutls_session_t session; /* NULL: closed by the server */
    transport_t io;
} kept_t;

typedef struct error_count {
    int code;
    uint64_t count;
} error_count_t;

/* One run of handshakes (the warm-up, or the timed one) and its outcomes. */
typedef struct phase {
    uint32_t count;
    bool warm_up;
    uint32_t next_start;
    uint32_t finished;
    uint32_t in_flight;
    uint64_t done;
    uint64_t resumed;
    uint64_t unfinished;   /* still running at the time limit or the signal */
    uint64_t setup_errors; /* no socket or no session */
    uint64_t other_errors; /* kinds beyond ERROR_KINDS_MAX */
    error_count_t errors[ERROR_KINDS_MAX];
    uint32_t error_kinds;
    const char *suite;
    uint32_t latency_count;
} phase_t;

typedef struct bench {
    bench_options_t opt;
    bench_creds_t creds;
    slot_t *slots;
    kept_t *kept;
    uint32_t kept_count;
    uint64_t kept_lost;  /* kept sessions that the server closed or that failed */
    struct pollfd *pfds; /* [0] the signal fd, [1 + s] slot s, then the kept sessions */
    int signal_fd;
    bool stop; /* SIGTERM or SIGINT arrived */
    bool poll_failed;
    uint64_t deadline;
    uint64_t next_kept_check;
    uint32_t *latency_us;
    phase_t phase;
    uint8_t datagram[DATAGRAM_MAX]; /* the one being fed to a session */
} bench_t;

static int usage_error(const char *message, const char *arg)
{
    fprintf(stderr, "bench_dtls: %s%s%s\n", message, arg != NULL ? ": " : "",
            arg != NULL ? arg : "");
    fprintf(stderr, "Try 'bench_dtls --help'.\n");
    return EXIT_USAGE;
}

static const char *mode_name(bench_mode_t mode)
{
    switch (mode) {
    case MODE_PSK:
        return "psk";
    case MODE_RPK:
        return "rpk";
    default:
        return "x509";
    }
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* An even number of hex digits, 1 to PSK_KEY_MAX bytes. */
static bool parse_hex_key(const char *text, uint8_t *out, size_t *len)
{
    size_t digits = strlen(text);
    if (digits == 0 || digits % 2 != 0 || digits / 2 > PSK_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < digits / 2; i++) {
        int high = hex_digit(text[2 * i]);
        int low = hex_digit(text[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = (uint8_t)(high << 4 | low);
    }
    *len = digits / 2;
    return true;
}

/* The address, and its host part as written ("[::1]:5684" gives "::1") for name checks. */
static int parse_server(bench_options_t *opt, const char *value)
{
    if (net_addr_parse_text(&opt->server, value) != LWM2MD_OK || net_addr_port(&opt->server) == 0) {
        return usage_error("--server needs a numeric HOST:PORT", value);
    }
    const char *start = value[0] == '[' ? value + 1 : value;
    const char *end = value[0] == '[' ? strchr(value, ']') : strrchr(value, ':');
    size_t len = end != NULL ? (size_t)(end - start) : 0;
    if (len == 0 || len >= sizeof(opt->host)) {
        return usage_error("--server needs a numeric HOST:PORT", value);
    }
    memcpy(opt->host, start, len);
    opt->host[len] = '\0';
    return 0;
}

static int parse_mode(bench_options_t *opt, const char *value)
{
    static const char *const names[] = {"psk", "rpk", "x509"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(value, names[i]) == 0) {
            opt->mode = (bench_mode_t)i;
            opt->have_mode = true;
            return 0;
        }
    }
    return usage_error("--mode must be psk, rpk or x509", value);
}

/* Numeric options: name, bounds and where the value goes. */
typedef struct uint_option {
    const char *name;
    uint32_t min;
    uint32_t max;
    size_t offset;
} uint_option_t;

static const uint_option_t uint_options[] = {
    {"--count", 1, COUNT_MAX, offsetof(bench_options_t, count)},
    {"--concurrency", 1, CONCURRENCY_MAX, offsetof(bench_options_t, concurrency)},
    {"--hold-seconds", 0, 86400, offsetof(bench_options_t, hold_seconds)},
    {"--psk-devices", 1, PSK_DEVICES_MAX, offsetof(bench_options_t, psk_devices)},
    {"--timeout-ms", 10, 600000, offsetof(bench_options_t, timeout_ms)},
    {"--handshake-timeout-ms", 100, 3600000, offsetof(bench_options_t, handshake_timeout_ms)},
    {"--mtu", 256, 65507, offsetof(bench_options_t, mtu)},
    {"--max-seconds", 1, 86400, offsetof(bench_options_t, max_seconds)},
};

/* Options that take a file name or text as it is. */
typedef struct text_option {
    const char *name;
    size_t offset;
} text_option_t;

static const text_option_t text_options[] = {
    {"--key", offsetof(bench_options_t, key_file)},
    {"--cert", offsetof(bench_options_t, cert_file)},
    {"--ca", offsetof(bench_options_t, ca_file)},
    {"--priority", offsetof(bench_options_t, priority)},
};

static int parse_option(bench_options_t *opt, const char *name, const char *value)
{
    for (size_t i = 0; i < sizeof(uint_options) / sizeof(uint_options[0]); i++) {
        const uint_option_t *u = &uint_options[i];
        if (strcmp(name, u->name) == 0) {
            uint32_t *field = (uint32_t *)((char *)opt + u->offset);
            return bench_parse_uint(value, u->min, u->max, field) ? 0
                                                                  : usage_error("bad value", name);
        }
    }
    for (size_t i = 0; i < sizeof(text_options) / sizeof(text_options[0]); i++) {
        if (strcmp(name, text_options[i].name) == 0) {
            *(const char **)((char *)opt + text_options[i].offset) = value;
            return value[0] != '\0' ? 0 : usage_error("empty value", name);
        }
    }
    if (strcmp(name, "--server") == 0) {
        return parse_server(opt, value);
    }
    if (strcmp(name, "--mode") == 0) {
        return parse_mode(opt, value);
    }
    if (strcmp(name, "--psk-identity-prefix") == 0) {
        opt->psk_prefix = value;
        return strlen(value) + 10 <= PSK_IDENTITY_MAX ? 0 : usage_error("prefix too long", name);
    }
    if (strcmp(name, "--psk-key") == 0) {
        return parse_hex_key(value, opt->psk_key, &opt->psk_key_len)
                   ? 0
                   : usage_error("--psk-key needs 2 to 128 hex digits", NULL);
    }
    return usage_error("unknown option", name);
}

/* What each mode needs, and options that do not go together. */
static int check_options(const bench_options_t *opt, bool have_server)
{
    if (!have_server || !opt->have_mode) {
        return usage_error("--server HOST:PORT and --mode are required", NULL);
    }
    if (opt->mode == MODE_PSK && opt->psk_key_len == 0) {
        return usage_error("--mode psk needs --psk-key", NULL);
    }
    if (opt->mode != MODE_PSK && (opt->key_file == NULL || opt->cert_file == NULL)) {
        return usage_error("--mode rpk and x509 need --key and --cert", NULL);
    }
    if (opt->resume && opt->keep) {
        return usage_error("--resume and --keep do not go together", NULL);
    }
    return 0;
}

/* Returns 0, EXIT_USAGE, or -1 after printing the help. */
static int parse_options(int argc, char **argv, bench_options_t *opt)
{
    *opt = (bench_options_t){.count = 1000,
                             .concurrency = 32,
                             .hold_seconds = 300,
                             .psk_prefix = "bench-psk-",
                             .psk_devices = 1,
                             .timeout_ms = 1000,
                             .handshake_timeout_ms = 30000,
                             .mtu = 1232,
                             .max_seconds = 600};
    bool have_server = false;

    int i = 1;
    while (i < argc) {
        const char *name = argv[i];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (strcmp(name, "--resume") == 0) {
            opt->resume = true;
            i++;
            continue;
        }
        if (strcmp(name, "--keep") == 0) {
            opt->keep = true;
            i++;
            continue;
        }
        if (i + 1 >= argc) {
            return usage_error("missing value after", name);
        }
        int rc = parse_option(opt, name, argv[i + 1]);
        if (rc != 0) {
            return rc;
        }
        have_server = have_server || strcmp(name, "--server") == 0;
        i += 2;
    }
    return check_options(opt, have_server);
}

static int gnutls_failed(const char *what, const char *file, int rc)
{
    fprintf(stderr, "bench_dtls: %s%s%s: %s\n", what, file != NULL ? " " : "",
            file != NULL ? file : "", gnutls_strerror(rc));
    return -1;
}

/* One PSK credential per identity, all with the same key. */
static int psk_creds_init(bench_creds_t *creds, const bench_options_t *opt)
{
    creds->psk = calloc(opt->psk_devices, sizeof(*creds->psk));
    if (creds->psk == NULL) {
        return -1;
    }
    gnutls_datum_t key = {(unsigned char *)opt->psk_key, (unsigned int)opt->psk_key_len};
    for (uint32_t i = 0; i < opt->psk_devices; i++) {
        char identity[PSK_IDENTITY_MAX + 1];
        snprintf(identity, sizeof(identity), "%s%u", opt->psk_prefix, i);
        int rc = gnutls_psk_allocate_client_credentials(&creds->psk[i]);
        if (rc < 0) {
            return gnutls_failed("PSK credentials", NULL, rc);
        }
        creds->psk_count++;
        rc = gnutls_psk_set_client_credentials(creds->psk[i], identity, &key, GNUTLS_PSK_KEY_RAW);
        if (rc < 0) {
            return gnutls_failed("PSK credentials", NULL, rc);
        }
    }
    return 0;
}

/* RPK: the client's key pair. X.509: its certificate and key, and the CAs if given. */
static int cert_creds_init(bench_creds_t *creds, const bench_options_t *opt)
{
    int rc = gnutls_certificate_allocate_credentials(&creds->cert);
    if (rc < 0) {
        return gnutls_failed("certificate credentials", NULL, rc);
    }
    if (opt->mode == MODE_RPK) {
        rc = gnutls_certificate_set_rawpk_key_file(creds->cert, opt->cert_file, opt->key_file,
                                                   GNUTLS_X509_FMT_PEM, NULL, 0, NULL, 0, 0, 0);
        return rc < 0 ? gnutls_failed("raw public key pair", opt->cert_file, rc) : 0;
    }
    rc = gnutls_certificate_set_x509_key_file(creds->cert, opt->cert_file, opt->key_file,
                                              GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        return gnutls_failed("certificate and key", opt->cert_file, rc);
    }
    if (opt->ca_file != NULL) {
        rc = gnutls_certificate_set_x509_trust_file(creds->cert, opt->ca_file, GNUTLS_X509_FMT_PEM);
        if (rc <= 0) {
            return gnutls_failed("CA certificates", opt->ca_file,
                                 rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND);
        }
    }
    return 0;
}

static void creds_free(bench_creds_t *creds)
{
    for (uint32_t i = 0; i < creds->psk_count; i++) {
        gnutls_psk_free_client_credentials(creds->psk[i]);
    }
    free(creds->psk);
    if (creds->cert != NULL) {
        gnutls_certificate_free_credentials(creds->cert);
    }
    if (creds->priority != NULL) {
        gnutls_priority_deinit(creds->priority);
    }
}

static int creds_init(bench_creds_t *creds, const bench_options_t *opt)
{
    memset(creds, 0, sizeof(*creds));
    const char *priority = opt->priority;
    if (priority == NULL) {
        priority = opt->mode == MODE_PSK   ? priority_psk
                   : opt->mode == MODE_RPK ? priority_rpk
                                           : priority_x509;
    }
    const char *error_at = NULL;
    int rc = gnutls_priority_init(&creds->priority, priority, &error_at);
    if (rc < 0) {
        fprintf(stderr, "bench_dtls: priority string rejected at '%s': %s\n",
                error_at != NULL ? error_at : priority, gnutls_strerror(rc));
        return -1;
    }
    return opt->mode == MODE_PSK ? psk_creds_init(creds, opt) : cert_creds_init(creds, opt);
}

/* A UDP socket of the server's family on a new ephemeral port, connected to the server. */
static int open_socket(const bench_options_t *opt)
{
    int fd = socket(opt->server.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&opt->server.ss, opt->server.len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * GnuTLS transport. Sends go straight to the socket; a read sees only
 * the datagram fed to the current call, never the socket itself.
 *
 * Notes on GnuTLS 3.7.9 (Debian 12): a non-blocking DTLS client that
 * reads its socket directly can hang. Waiting for the server's
 * Finished, gnutls_handshake asks the pull-timeout function whether
 * data waits, and on "no" goes to its retransmission path, which asks
 * again. When the Finished arrives between the two asks, that path
 * reads it into the handshake buffer and returns GNUTLS_E_AGAIN; later
 * calls wait on the socket only, so the handshake never completes (and
 * its "retransmissions" send nothing, the flight being cleared). One
 * full PSK handshake in 1000 to 5000 stuck that way on a busy loopback.
 * So datagrams are fed one at a time, as the server does: within one
 * call the answer to "is there data?" cannot change.
 */
static ssize_t transport_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    const transport_t *io = ptr;
    return send(io->fd, data, len, 0);
}

static ssize_t transport_pull(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
    transport_t *io = ptr;
    if (io->input == NULL) {
        errno = EAGAIN;
        return -1;
    }
    size_t len = io->input_len < size ? io->input_len : size;
    memcpy(data, io->input, len);
    io->input = NULL;
    return (ssize_t)len;
}

static int transport_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    const transport_t *io = ptr;
    return io->input != NULL ? 1 : 0;
}

static void set_transport(gnutls_session_t session, transport_t *io)
{
    gnutls_transport_set_ptr(session, io);
    gnutls_transport_set_push_function(session, transport_push);
    gnutls_transport_set_pull_function(session, transport_pull);
    gnutls_transport_set_pull_timeout_function(session, transport_pull_timeout);
}

/* The next datagram on the socket into b->datagram: 1, 0 when none waits, -1 on an error. */
static int receive(bench_t *b, int fd, size_t *len)
{
    ssize_t n = recv(fd, b->datagram, sizeof(b->datagram), 0);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    }
    *len = (size_t)n;
    return 1;
}

/* A client session on the slot's socket, resuming the slot's ticket if it has one. */
static int new_session(bench_t *b, slot_t *slot)
{
    const bench_options_t *opt = &b->opt;
    unsigned int flags = GNUTLS_CLIENT | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
    flags |= opt->mode == MODE_RPK ? GNUTLS_ENABLE_RAWPK : 0;
    gnutls_session_t session = NULL;
    int rc = gnutls_init(&session, flags);
    if (rc < 0) {
        return gnutls_failed("session", NULL, rc);
    }

    rc = gnutls_priority_set(session, b->creds.priority);
    if (rc >= 0 && opt->mode == MODE_PSK) {
        rc = gnutls_credentials_set(session, GNUTLS_CRD_PSK, b->creds.psk[slot->psk_index]);
    } else if (rc >= 0) {
        rc = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, b->creds.cert);
    }
    if (rc >= 0 && slot->ticket.size > 0) {
        rc = gnutls_session_set_data(session, slot->ticket.data, slot->ticket.size);
    }
    if (rc < 0) {
        gnutls_deinit(session);
        return gnutls_failed("session set-up", NULL, rc);
    }

    set_transport(session, &slot->io);
    gnutls_dtls_set_mtu(session, opt->mtu);
    gnutls_dtls_set_timeouts(session, opt->timeout_ms, opt->handshake_timeout_ms);
    if (opt->mode == MODE_X509 && opt->ca_file != NULL) {
        gnutls_session_set_verify_cert(session, opt->host, 0);
    }
    slot->session = session;
    return 0;
}

/* Ends the slot's session; with `bye` the server is told (close_notify) and frees its side. */
static void end_slot_session(bench_t *b, slot_t *slot, bool bye)
{
    if (bye) {
        gnutls_bye(slot->session, GNUTLS_SHUT_WR);
    }
    gnutls_deinit(slot->session);
    slot->session = NULL;

    /* --resume keeps the socket: the same address reaches the same server worker. */
    if (!b->opt.resume) {
        close(slot->io.fd);
        slot->io.fd = -1;
    }
}

static void finish(bench_t *b, uint32_t s)
{
    b->pfds[1 + s].fd = -1;
    b->phase.in_flight--;
    b->phase.finished++;
}

static void count_error(phase_t *p, int code)
{
    for (uint32_t i = 0; i < p->error_kinds; i++) {
        if (p->errors[i].code == code) {
            p->errors[i].count++;
            return;
        }
    }
    if (p->error_kinds == ERROR_KINDS_MAX) {
        p->other_errors++;
        return;
    }
    p->errors[p->error_kinds++] = (error_count_t){code, 1};
}

/* The first few failures name their local address, to find them in the server's log. */
static void log_failure(const bench_t *b, const slot_t *slot, int code)
{
    uint64_t failures = b->phase.finished - b->phase.done;
    if (failures >= FAILURES_SHOWN) {
        return;
    }
    net_addr_t local = {.len = sizeof(local.ss)};
    char text[NET_ADDR_STRING_MAX] = "?";
    if (getsockname(slot->io.fd, (struct sockaddr *)&local.ss, &local.len) == 0) {
        net_addr_format(&local, text, sizeof(text));
    }
    double ms = (double)(bench_now_ns() - slot->started_ns) / NS_PER_MS;
    fprintf(stderr, "bench_dtls: handshake from %s failed after %.0f ms: %s\n", text, ms,
            gnutls_strerror_name(code));
}

static void on_failed(bench_t *b, uint32_t s, int code)
{
    slot_t *slot = &b->slots[s];
    log_failure(b, slot, code);
    count_error(&b->phase, code);
    gnutls_alert_send_appropriate(slot->session, code);
    end_slot_session(b, slot, false);
    finish(b, s);
}

/* --keep: the session and its socket move to the kept list; the slot gets a new socket later. */
static void keep_session(bench_t *b, slot_t *slot)
{
    uint32_t k = b->kept_count++;
    b->kept[k] = (kept_t){.session = slot->session, .io = {.fd = slot->io.fd}};
    set_transport(b->kept[k].session, &b->kept[k].io);
    b->pfds[1 + b->opt.concurrency + k] = (struct pollfd){.fd = slot->io.fd, .events = POLLIN};
    slot->session = NULL;
    slot->io.fd = -1;
}

static void on_established(bench_t *b, uint32_t s, uint64_t now)
{
    slot_t *slot = &b->slots[s];
    phase_t *p = &b->phase;
    uint64_t micros = (now - slot->started_ns) / 1000;
    b->latency_us[p->latency_count++] = micros > UINT32_MAX ? UINT32_MAX : (uint32_t)micros;
    p->done++;
    p->resumed += gnutls_session_is_resumed(slot->session) != 0;
    if (p->suite == NULL) {
        p->suite = gnutls_ciphersuite_get(slot->session);
    }

    if (p->warm_up) {
        gnutls_free(slot->ticket.data);
        slot->ticket = (gnutls_datum_t){NULL, 0};
        if (gnutls_session_get_data2(slot->session, &slot->ticket) < 0) {
            slot->ticket = (gnutls_datum_t){NULL, 0}; /* the slot's handshakes will be full */
        }
    }

    if (b->opt.keep) {
        keep_session(b, slot);
    } else {
        end_slot_session(b, slot, true);
    }
    finish(b, s);
}

/* Drives the slot's handshake as far as it goes without blocking (RFC 6347 4.2.4 timers). */
static void step(bench_t *b, uint32_t s)
{
    slot_t *slot = &b->slots[s];
    int rc = GNUTLS_E_AGAIN;
    for (int i = 0; i < STEPS_MAX; i++) {
        rc = gnutls_handshake(slot->session);
        if (rc == GNUTLS_E_SUCCESS || rc == GNUTLS_E_AGAIN || gnutls_error_is_fatal(rc)) {
            break;
        }
    }
    slot->io.input = NULL;

    uint64_t now = bench_now_ns();
    if (rc == GNUTLS_E_SUCCESS) {
        on_established(b, s, now);
    } else if (gnutls_error_is_fatal(rc)) {
        on_failed(b, s, rc);
    } else {
        slot->wake_ns = now + (uint64_t)gnutls_dtls_get_timeout(slot->session) * NS_PER_MS;
    }
}

/* Steps the slot's handshake once per datagram waiting on its socket. */
static void feed_slot(bench_t *b, uint32_t s)
{
    slot_t *slot = &b->slots[s];
    for (int i = 0; i < FEEDS_MAX && slot->session != NULL; i++) {
        size_t len = 0;
        int rc = receive(b, slot->io.fd, &len);
        if (rc == 0) {
            return;
        }
        if (rc < 0) {
            on_failed(b, s, GNUTLS_E_PULL_ERROR); /* e.g. ECONNREFUSED: nothing listens */
            return;
        }
        slot->io.input = b->datagram;
        slot->io.input_len = len;
        step(b, s);
    }
}

static void start_handshake(bench_t *b, uint32_t s, uint32_t index)
{
    slot_t *slot = &b->slots[s];
    phase_t *p = &b->phase;
    if (b->opt.mode == MODE_PSK && slot->ticket.size == 0) {
        slot->psk_index = index % b->creds.psk_count; /* a resumed session keeps its identity */
    }
    if (slot->io.fd < 0) {
        slot->io.fd = open_socket(&b->opt);
    }
    if (slot->io.fd < 0 || new_session(b, slot) != 0) {
        if (p->setup_errors++ == 0 && slot->io.fd < 0) {
            perror("bench_dtls: socket");
        }
        p->finished++;
        return;
    }

    slot->started_ns = bench_now_ns();
    p->in_flight++;
    b->pfds[1 + s] = (struct pollfd){.fd = slot->io.fd, .events = POLLIN};
    step(b, s);
}

static void start_more(bench_t *b)
{
    phase_t *p = &b->phase;
    for (uint32_t s = 0; s < b->opt.concurrency && p->next_start < p->count; s++) {
        if (b->slots[s].session == NULL) {
            start_handshake(b, s, p->next_start++);
        }
    }
}

/* Steps the handshakes whose retransmission timer is due. */
static void run_timers(bench_t *b)
{
    uint64_t now = bench_now_ns();
    for (uint32_t s = 0; s < b->opt.concurrency; s++) {
        if (b->slots[s].session != NULL && b->slots[s].wake_ns <= now) {
            step(b, s);
        }
    }
}

static uint64_t earliest_timer(const bench_t *b)
{
    uint64_t earliest = UINT64_MAX;
    for (uint32_t s = 0; s < b->opt.concurrency; s++) {
        if (b->slots[s].session != NULL && b->slots[s].wake_ns < earliest) {
            earliest = b->slots[s].wake_ns;
        }
    }
    return earliest;
}

/* What is still running at the time limit, or at a signal, counts as unfinished. */
static void abandon_rest(bench_t *b)
{
    phase_t *p = &b->phase;
    for (uint32_t s = 0; s < b->opt.concurrency; s++) {
        if (b->slots[s].session != NULL) {
            end_slot_session(b, &b->slots[s], false);
            finish(b, s);
            p->unfinished++;
        }
    }
    p->unfinished += p->count - p->next_start;
    p->finished += p->count - p->next_start;
    p->next_start = p->count;
}

static void drop_kept(bench_t *b, uint32_t k)
{
    kept_t *kept = &b->kept[k];
    gnutls_deinit(kept->session);
    close(kept->io.fd);
    kept->session = NULL;
    kept->io.fd = -1;
    b->pfds[1 + b->opt.concurrency + k].fd = -1;
    b->kept_lost++;
}

/*
 * Reads the records of the datagram fed to a kept session: a
 * retransmitted flight is answered by GnuTLS, application data is
 * ignored. True when the session ended (close_notify, fatal error).
 */
static bool read_records(gnutls_session_t session)
{
    uint8_t buf[DATAGRAM_MAX];
    for (int i = 0; i < READS_MAX; i++) {
        ssize_t n = gnutls_record_recv(session, buf, sizeof(buf));
        if (n == GNUTLS_E_AGAIN) {
            return false;
        }
        if (n == 0 || (n < 0 && gnutls_error_is_fatal((int)n))) {
            return true;
        }
    }
    return false;
}

static void service_kept(bench_t *b, uint32_t k)
{
    kept_t *kept = &b->kept[k];
    for (int i = 0; i < FEEDS_MAX && kept->session != NULL; i++) {
        size_t len = 0;
        int rc = receive(b, kept->io.fd, &len);
        if (rc == 0) {
            return;
        }
        kept->io.input = b->datagram;
        kept->io.input_len = len;
        bool ended = rc < 0 || read_records(kept->session);
        kept->io.input = NULL;
        if (ended) {
            drop_kept(b, k);
        }
    }
}

static void read_signal(bench_t *b)
{
    struct signalfd_siginfo info;
    if (read(b->signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        b->stop = true;
    }
}

/* Acts on what poll() reported: the signal fd, the slots, then the kept sessions it watched. */
static void handle_ready(bench_t *b, nfds_t nfds)
{
    if (b->pfds[0].revents != 0) {
        read_signal(b);
    }
    for (uint32_t s = 0; s < b->opt.concurrency; s++) {
        if (b->pfds[1 + s].revents != 0 && b->slots[s].session != NULL) {
            feed_slot(b, s);
        }
    }
    for (nfds_t i = 1 + b->opt.concurrency; i < nfds; i++) {
        uint32_t k = (uint32_t)(i - 1 - b->opt.concurrency);
        if (b->pfds[i].revents != 0 && b->kept[k].session != NULL) {
            service_kept(b, k);
        }
    }
}

static int poll_wait_ms(uint64_t now, uint64_t wake)
{
    if (wake <= now) {
        return 0;
    }
    uint64_t ms = (wake - now + NS_PER_MS - 1) / NS_PER_MS;
    return ms > 1000 ? 1000 : (int)ms;
}

/* The kept sessions join the poll set every KEPT_CHECK_NS; returns how many fds to poll. */
static nfds_t poll_set_size(bench_t *b, uint64_t now, uint64_t *wake)
{
    nfds_t nfds = 1 + b->opt.concurrency;
    if (b->kept_count == 0) {
        return nfds;
    }
    if (now >= b->next_kept_check) {
        b->next_kept_check = now + KEPT_CHECK_NS;
        nfds += b->kept_count;
    }
    if (b->next_kept_check < *wake) {
        *wake = b->next_kept_check;
    }
    return nfds;
}

static void wait_and_handle(bench_t *b, uint64_t wake)
{
    uint64_t now = bench_now_ns();
    if (b->deadline < wake) {
        wake = b->deadline;
    }
    nfds_t nfds = poll_set_size(b, now, &wake);
    int ready = poll(b->pfds, nfds, poll_wait_ms(now, wake));
    if (ready < 0 && errno != EINTR) {
        perror("bench_dtls: poll");
        b->poll_failed = true;
        return;
    }
    if (ready > 0) {
        handle_ready(b, nfds);
    }
}

/* Runs p->count handshakes, C at a time. Returns the time from the first to the last. */
static uint64_t run_phase(bench_t *b)
{
    phase_t *p = &b->phase;
    uint64_t start = bench_now_ns();
    for (;;) {
        run_timers(b);
        start_more(b); /* after the timers, which may have freed slots */
        if (p->finished == p->count) {
            break;
        }

        wait_and_handle(b, earliest_timer(b));
        if (b->stop || b->poll_failed || bench_now_ns() >= b->deadline) {
            abandon_rest(b);
        }
    }
    return bench_now_ns() - start;
}

/* --keep: holds the sessions open, serving them, until a signal or --hold-seconds. */
static void hold(bench_t *b)
{
    uint64_t until = bench_now_ns() + (uint64_t)b->opt.hold_seconds * NS_PER_SEC;
    nfds_t nfds = 1 + b->opt.concurrency + b->kept_count;
    for (uint64_t now = bench_now_ns(); !b->stop && now < until; now = bench_now_ns()) {
        if (b->kept_lost == b->kept_count) {
            break;
        }
        int ready = poll(b->pfds, nfds, poll_wait_ms(now, until));
        if (ready < 0 && errno != EINTR) {
            perror("bench_dtls: poll");
            return;
        }
        if (ready > 0) {
            handle_ready(b, nfds);
        }
    }
}

static void print_errors(const phase_t *p)
{
    for (uint32_t i = 0; i < p->error_kinds; i++) {
        printf("  %s: %llu (%s)\n", gnutls_strerror_name(p->errors[i].code),
               (unsigned long long)p->errors[i].count, gnutls_strerror(p->errors[i].code));
    }
    if (p->other_errors > 0) {
        printf("  other errors: %llu\n", (unsigned long long)p->other_errors);
    }
}

static void report(bench_t *b, uint64_t elapsed_ns)
{
    const phase_t *p = &b->phase;
    double seconds = (double)elapsed_ns / NS_PER_SEC;
    double rate = seconds > 0 ? (double)p->done / seconds : 0.0;
    uint64_t failed = p->count - p->done;
    bench_sort_u32(b->latency_us, p->latency_count);
    double p50 = bench_percentile_ms(b->latency_us, p->latency_count, 0.50);
    double p99 = bench_percentile_ms(b->latency_us, p->latency_count, 0.99);
    double max = bench_percentile_ms(b->latency_us, p->latency_count, 1.0);
    const char *kind = b->opt.resume ? "resumed" : "full";

    printf("done %llu of %u %s handshakes in %.3f s: %.0f handshakes/s (%s)\n",
           (unsigned long long)p->done, p->count, kind, seconds, rate,
           p->suite != NULL ? p->suite : "no suite");
    if (b->opt.resume) {
        printf("resumed %llu of %llu done (the rest fell back to a full handshake)\n",
               (unsigned long long)p->resumed, (unsigned long long)p->done);
    }
    printf("failed %llu (unfinished %llu, set-up errors %llu)\n", (unsigned long long)failed,
           (unsigned long long)p->unfinished, (unsigned long long)p->setup_errors);
    print_errors(p);
    printf("latency (first ClientHello to Finished, cookie exchange included): "
           "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           p50, p99, max);
    printf("RESULT mode=%s resume=%d count=%u done=%llu failed=%llu resumed=%llu seconds=%.3f "
           "rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           mode_name(b->opt.mode), b->opt.resume ? 1 : 0, p->count, (unsigned long long)p->done,
           (unsigned long long)failed, (unsigned long long)p->resumed, seconds, rate, p50, p99);
    fflush(stdout);
}

/* --resume: one untimed full handshake per slot, whose session data the timed ones resume. */
static bool warm_up(bench_t *b)
{
    b->phase = (phase_t){.count = b->opt.concurrency, .warm_up = true};
    run_phase(b);
    const phase_t *p = &b->phase;
    printf("warm-up: %llu of %u full handshakes done\n", (unsigned long long)p->done, p->count);
    if (p->done < p->count) {
        print_errors(p);
    }
    return p->done > 0 && !b->stop;
}

static void bench_free(bench_t *b)
{
    for (uint32_t s = 0; b->slots != NULL && s < b->opt.concurrency; s++) {
        if (b->slots[s].session != NULL) {
            gnutls_deinit(b->slots[s].session);
        }
        if (b->slots[s].io.fd >= 0) {
            close(b->slots[s].io.fd);
        }
        gnutls_free(b->slots[s].ticket.data);
    }
    for (uint32_t k = 0; k < b->kept_count; k++) {
        if (b->kept[k].session != NULL) {
            gnutls_bye(b->kept[k].session, GNUTLS_SHUT_WR);
            gnutls_deinit(b->kept[k].session);
            close(b->kept[k].io.fd);
        }
    }
    if (b->signal_fd >= 0) {
        close(b->signal_fd);
    }
    creds_free(&b->creds);
    free(b->slots);
    free(b->kept);
    free(b->pfds);
    free(b->latency_us);
    free(b);
}

/* SIGTERM and SIGINT arrive through a descriptor that poll() watches, not a handler. */
static int open_signal_fd(void)
{
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0) {
        return -1;
    }
    return signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
}

static bench_t *bench_new(const bench_options_t *opt)
{
    bench_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->opt = *opt;
    b->signal_fd = open_signal_fd();
    uint32_t kept_max = opt->keep ? opt->count : 0;
    uint32_t latency_max = opt->count > opt->concurrency ? opt->count : opt->concurrency;
    b->slots = calloc(opt->concurrency, sizeof(*b->slots));
    b->kept = calloc(kept_max + 1, sizeof(*b->kept));
    b->pfds = calloc(1 + (size_t)opt->concurrency + kept_max, sizeof(*b->pfds));
    b->latency_us = calloc(latency_max, sizeof(*b->latency_us));
    if (b->slots == NULL || b->kept == NULL || b->pfds == NULL || b->latency_us == NULL ||
        b->signal_fd < 0) {
        bench_free(b);
        return NULL;
    }

    b->pfds[0] = (struct pollfd){.fd = b->signal_fd, .events = POLLIN};
    for (uint32_t s = 0; s < opt->concurrency; s++) {
        b->slots[s].io.fd = -1;
        b->pfds[1 + s].fd = -1;
    }
    if (creds_init(&b->creds, opt) != 0) {
        bench_free(b);
        return NULL;
    }
    return b;
}

/* Every socket and kept session is a descriptor: raise the limit, then check it suffices. */
static int check_fd_limit(const bench_options_t *opt)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    uint64_t needed = (uint64_t)opt->concurrency + (opt->keep ? opt->count : 0) + SPARE_FDS;
    if (limit.rlim_cur != RLIM_INFINITY && needed > limit.rlim_cur) {
        fprintf(stderr, "bench_dtls: needs %llu descriptors, the limit is %llu (ulimit -n)\n",
                (unsigned long long)needed, (unsigned long long)limit.rlim_cur);
        return EXIT_USAGE;
    }
    return 0;
}

/* The timed handshakes, the report, and with --keep the hold. Returns the exit status. */
static int run(bench_t *b)
{
    const bench_options_t *opt = &b->opt;
    char server[NET_ADDR_STRING_MAX];
    printf("bench_dtls: %s, %u %s handshakes, server %s, concurrency %u\n", mode_name(opt->mode),
           opt->count, opt->resume ? "resumed" : "full",
           net_addr_format(&opt->server, server, sizeof(server)), opt->concurrency);

    b->deadline = bench_now_ns() + (uint64_t)opt->max_seconds * NS_PER_SEC;
    if (opt->resume && !warm_up(b)) {
        fprintf(stderr, "bench_dtls: no warm-up handshake succeeded; nothing to resume\n");
        return EXIT_SOME_FAILED;
    }
    b->phase = (phase_t){.count = opt->count};
    uint64_t elapsed = run_phase(b);
    report(b, elapsed);
    int rc = b->phase.done == opt->count ? EXIT_ALL_DONE : EXIT_SOME_FAILED;

    if (opt->keep && !b->stop) {
        printf("holding %u sessions (until SIGTERM or %u s)\n", b->kept_count, opt->hold_seconds);
        fflush(stdout);
        hold(b);
        printf("released %u sessions; %llu had been closed by the server\n", b->kept_count,
               (unsigned long long)b->kept_lost);
    }
    return b->poll_failed ? EXIT_USAGE : rc;
}

int main(int argc, char **argv)
{
    bench_options_t opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc != 0) {
        return rc < 0 ? EXIT_ALL_DONE : rc;
    }
    rc = check_fd_limit(&opt);
    if (rc != 0) {
        return rc;
    }

    bench_t *b = bench_new(&opt);
    if (b == NULL) {
        fprintf(stderr, "bench_dtls: cannot set up (see above, or out of memory)\n");
        return EXIT_USAGE;
    }
    rc = run(b);
    bench_free(b);
    return rc;
}
