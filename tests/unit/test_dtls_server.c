/*
 * DTLS server tests: a UDP socket on 127.0.0.1 wired to dtls_server_t,
 * driven by real clients: libcoap's coap-client (GnuTLS and OpenSSL
 * builds), gnutls-cli, a GnuTLS client in a thread, and raw datagrams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/error.h"
#include "dtls/cookie.h"
#include "dtls/credentials.h"
#include "dtls/record.h"
#include "dtls/server.h"
#include "log/log.h"

#define PSK_IDENTITY "dev-psk-1"
#define PSK_KEY "secret-key-0123"
#define PSK_KEY_HEX "7365637265742d6b65792d30313233"
#define PSK_ENDPOINT "ep-psk-1"
#define X509_ENDPOINT "client-ep-1" /* the CN of tests/data/credentials/client.pem */
#define RPK_ENDPOINT "ep-rpk-1"
#define PINNED_ENDPOINT "ep-pinned-1"
#define CLIENT_WAIT_MS 20000
#define OUTPUT_MAX 16384

/* ---------------------------------------------------------------- fixture */

/* The in-test registry: what the store's indexes would answer. */
typedef struct registry {
    bool psk_enabled;
    uint8_t *rpk; /* DER SPKI of the one RPK device, or NULL */
    size_t rpk_len;
    uint8_t *pinned; /* DER certificate of the one pinned X.509 device, or NULL */
    size_t pinned_len;
    bool cn_device; /* X509_ENDPOINT is an X.509 device without a pinned certificate */
} registry_t;

typedef struct fixture {
    uv_loop_t loop;
    uv_udp_t udp;
    uv_timer_t tick;
    uint16_t port;
    config_t cfg;
    dtls_credentials_t *creds;
    dtls_server_t *server;
    registry_t registry;
    uint8_t recv_buf[4096];
    /* What the layers above saw. */
    int delivered;
    char last_endpoint[STORE_ENDPOINT_MAX + 1];
    store_security_t last_mode;
    int closed;
    /* The last ClientHello datagram seen, to replay it. */
    uint8_t hello[1024];
    size_t hello_len;
    net_addr_t hello_peer;
} fixture_t;

static const char *data_path(const char *name, char *buf, size_t size)
{
    const char *dir = getenv("LWM2MD_TEST_DATA");
    snprintf(buf, size, "%s/credentials/%s", dir != NULL ? dir : "tests/data", name);
    return buf;
}

static int psk_lookup(void *ctx, const char *identity, uint8_t *key, size_t *key_len,
                      char *endpoint, size_t endpoint_size)
{
    fixture_t *fx = ctx;
    if (!fx->registry.psk_enabled || strcmp(identity, PSK_IDENTITY) != 0 ||
        *key_len < strlen(PSK_KEY)) {
        return LWM2MD_ERR_NOT_FOUND;
    }
    memcpy(key, PSK_KEY, strlen(PSK_KEY));
    *key_len = strlen(PSK_KEY);
    snprintf(endpoint, endpoint_size, "%s", PSK_ENDPOINT);
    return LWM2MD_OK;
}

static int rpk_lookup(void *ctx, const uint8_t *spki, size_t spki_len, char *endpoint,
                      size_t endpoint_size)
{
    fixture_t *fx = ctx;
    if (fx->registry.rpk == NULL || spki_len != fx->registry.rpk_len ||
        memcmp(spki, fx->registry.rpk, spki_len) != 0) {
        return LWM2MD_ERR_NOT_FOUND;
    }
    snprintf(endpoint, endpoint_size, "%s", RPK_ENDPOINT);
    return LWM2MD_OK;
}

static int cert_lookup(void *ctx, const uint8_t *der, size_t der_len, const char *cn,
                       bool chain_trusted, char *endpoint, size_t endpoint_size)
{
    fixture_t *fx = ctx;
    if (fx->registry.pinned != NULL && der_len == fx->registry.pinned_len &&
        memcmp(der, fx->registry.pinned, der_len) == 0) {
        snprintf(endpoint, endpoint_size, "%s", PINNED_ENDPOINT);
        return LWM2MD_OK;
    }
    if (chain_trusted && fx->registry.cn_device && strcmp(cn, X509_ENDPOINT) == 0) {
        snprintf(endpoint, endpoint_size, "%s", X509_ENDPOINT);
        return LWM2MD_OK;
    }
    return LWM2MD_ERR_NOT_FOUND;
}

/* Answers a CoAP request (RFC 7252 3) with 2.05 "hello": piggybacked ACK for CON, NON for NON. */
static void deliver(void *ctx, const net_addr_t *peer, const dtls_peer_auth_t *auth,
                    const uint8_t *data, size_t len)
{
    fixture_t *fx = ctx;
    fx->delivered++;
    snprintf(fx->last_endpoint, sizeof(fx->last_endpoint), "%s", auth->endpoint);
    fx->last_mode = auth->mode;

    size_t token_len = len > 0 ? (data[0] & 0x0f) : 0;
    if (len < 4 || token_len > 8 || len < 4 + token_len || (data[0] >> 6) != 1 || data[1] == 0) {
        return;
    }
    uint8_t reply[32] = {0};
    bool con = ((data[0] >> 4) & 3) == 0;
    reply[0] = (uint8_t)(0x40 | ((con ? 2 : 1) << 4) | token_len);
    reply[1] = 0x45; /* 2.05 Content */
    reply[2] = data[2];
    reply[3] = (uint8_t)(data[3] + (con ? 0 : 1));
    memcpy(reply + 4, data + 4, token_len);
    size_t n = 4 + token_len;
    reply[n++] = 0xff;
    memcpy(reply + n, "hello", 5);
    n += 5;
    assert_int_equal(dtls_server_send(fx->server, peer, reply, n), 0);
}

static int send_datagram(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    fixture_t *fx = ctx;
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned int)len);
    int rc = uv_udp_try_send(&fx->udp, &buf, 1, (const struct sockaddr *)&peer->ss);
    return rc < 0 ? LWM2MD_ERR_IO : LWM2MD_OK;
}

static void closed(void *ctx, const net_addr_t *peer)
{
    fixture_t *fx = ctx;
    fx->closed++;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    fixture_t *fx = handle->data;
    *buf = uv_buf_init((char *)fx->recv_buf, sizeof(fx->recv_buf));
}

static void on_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned int flags)
{
    fixture_t *fx = udp->data;
    if (nread <= 0 || addr == NULL || fx->server == NULL) {
        return;
    }
    net_addr_t peer;
    assert_int_equal(net_addr_set(&peer, addr), 0);
    const uint8_t *data = (const uint8_t *)buf->base;
    if (nread > 13 && (size_t)nread <= sizeof(fx->hello) && data[0] == 22 && data[13] == 1) {
        memcpy(fx->hello, data, (size_t)nread);
        fx->hello_len = (size_t)nread;
        fx->hello_peer = peer;
    }
    dtls_server_input(fx->server, &peer, data, (size_t)nread);
}

static void on_tick(uv_timer_t *timer)
{
}

static void test_config(config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dtls_retransmission_timeout_ms = 300;
    cfg->dtls_handshake_timeout_ms = 10000;
    cfg->dtls_max_sessions = 100;
    cfg->dtls_max_handshakes = 100;
    cfg->dtls_session_idle_sec = 600;
    cfg->dtls_cookie_rotate_sec = 300;
    cfg->recommended_supported_groups = true;
}

/* Loads the server certificate and the CA trust from the fixtures. */
static dtls_credentials_t *load_credentials(bool trust)
{
    config_credentials_t server;
    config_trust_t trust_cfg;
    memset(&server, 0, sizeof(server));
    memset(&trust_cfg, 0, sizeof(trust_cfg));
    server.enabled = true;
    server.type = CONFIG_CREDENTIALS_PEM;
    data_path("server.pem", server.pem_cert, sizeof(server.pem_cert));
    data_path("server_key.pem", server.pem_key, sizeof(server.pem_key));
    trust_cfg.enabled = trust;
    trust_cfg.type = CONFIG_CREDENTIALS_PEM;
    data_path("ca.pem", trust_cfg.pem_cert, sizeof(trust_cfg.pem_cert));

    dtls_credentials_t *creds = NULL;
    char err[256] = "";
    int rc = dtls_credentials_load(&server, "LWM2M_SERVER", &trust_cfg, &creds, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "credentials: %s\n", err);
    }
    assert_int_equal(rc, 0);
    return creds;
}

static void fixture_start(fixture_t *fx, const config_t *cfg, dtls_credentials_t *creds)
{
    fx->cfg = *cfg;
    fx->creds = creds;
    fx->registry.psk_enabled = true;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    assert_int_equal(uv_udp_init(&fx->loop, &fx->udp), 0);
    fx->udp.data = fx;

    struct sockaddr_in bind_addr;
    uv_ip4_addr("127.0.0.1", 0, &bind_addr);
    assert_int_equal(uv_udp_bind(&fx->udp, (const struct sockaddr *)&bind_addr, 0), 0);
    struct sockaddr_in local;
    int local_len = sizeof(local);
    assert_int_equal(uv_udp_getsockname(&fx->udp, (struct sockaddr *)&local, &local_len), 0);
    fx->port = ntohs(local.sin_port);
    assert_int_equal(uv_udp_recv_start(&fx->udp, on_alloc, on_recv), 0);

    /* The tick makes every uv_run(ONCE) return within 5 ms so waits can poll. */
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, on_tick, 5, 5);

    dtls_callbacks_t callbacks = {
        .ctx = fx,
        .psk_lookup = psk_lookup,
        .rpk_lookup = rpk_lookup,
        .cert_lookup = cert_lookup,
        .deliver = deliver,
        .send_datagram = send_datagram,
        .closed = closed,
    };
    assert_int_equal(dtls_server_new(&fx->loop, &fx->cfg, creds, &callbacks, &fx->server), 0);
}

static void close_handle(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle)) {
        uv_close(handle, NULL);
    }
}

static int fixture_stop(void **state)
{
    fixture_t *fx = *state;
    if (fx->server != NULL) {
        dtls_server_free(fx->server);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    }
    uv_walk(&fx->loop, close_handle, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    dtls_credentials_free(fx->creds);
    free(fx->registry.rpk);
    free(fx->registry.pinned);
    free(fx);
    return 0;
}

static int fixture_new(void **state)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    *state = fx;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef bool (*predicate_fn)(fixture_t *fx, void *arg);

/* Runs the loop until done(fx, arg) or timeout_ms pass; returns done's last answer. */
static bool run_until(fixture_t *fx, predicate_fn done, void *arg, uint64_t timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (!done(fx, arg)) {
        if (now_ms() > end) {
            return false;
        }
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(fixture_t *fx, void *arg)
{
    return false;
}

static void run_for(fixture_t *fx, uint64_t ms)
{
    run_until(fx, never, NULL, ms);
}

static dtls_stats_t stats(const fixture_t *fx)
{
    dtls_stats_t out;
    dtls_server_get_stats(fx->server, &out);
    return out;
}

/* ---------------------------------------------------------- subprocesses */

typedef struct child {
    uv_process_t process;
    uv_pipe_t out;
    uv_pipe_t err;
    uv_pipe_t in;
    bool has_stdin;
    int open_handles;
    bool exited;
    int64_t status;
    char output[OUTPUT_MAX];
    size_t output_len;
} child_t;

static void child_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    child_t *child = handle->data;
    size_t room = sizeof(child->output) - 1 - child->output_len;
    *buf = uv_buf_init(child->output + child->output_len, (unsigned int)room);
}

static void child_handle_closed(uv_handle_t *handle)
{
    child_t *child = handle->data;
    child->open_handles--;
}

static void child_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    child_t *child = stream->data;
    if (nread > 0) {
        child->output_len += (size_t)nread;
        child->output[child->output_len] = '\0';
        if (child->output_len + 1 >= sizeof(child->output)) {
            uv_read_stop(stream);
        }
    } else if (nread < 0) {
        uv_close((uv_handle_t *)stream, child_handle_closed);
    }
}

static void child_exited(uv_process_t *process, int64_t status, int signal)
{
    child_t *child = process->data;
    child->exited = true;
    child->status = signal != 0 ? 128 + signal : status;
    uv_close((uv_handle_t *)process, child_handle_closed);
}

/* Starts argv[0]; stdout and stderr are collected; stdin is a pipe kept open, or /dev/null. */
static void child_start(fixture_t *fx, child_t *child, char **argv, bool keep_stdin)
{
    memset(child, 0, sizeof(*child));
    uv_pipe_init(&fx->loop, &child->out, 0);
    uv_pipe_init(&fx->loop, &child->err, 0);
    child->out.data = child->err.data = child->process.data = child;
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    if (keep_stdin) {
        uv_pipe_init(&fx->loop, &child->in, 0);
        child->in.data = child;
        child->has_stdin = true;
        stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
        stdio[0].data.stream = (uv_stream_t *)&child->in;
    }
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&child->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&child->err;

    uv_process_options_t options;
    memset(&options, 0, sizeof(options));
    options.file = argv[0];
    options.args = argv;
    options.exit_cb = child_exited;
    options.stdio = stdio;
    options.stdio_count = 3;
    int rc = uv_spawn(&fx->loop, &child->process, &options);
    if (rc != 0) {
        fprintf(stderr, "cannot run %s: %s\n", argv[0], uv_strerror(rc));
    }
    assert_int_equal(rc, 0);
    child->open_handles = keep_stdin ? 4 : 3;
    uv_read_start((uv_stream_t *)&child->out, child_alloc, child_read);
    uv_read_start((uv_stream_t *)&child->err, child_alloc, child_read);
}

static bool child_finished(fixture_t *fx, void *arg)
{
    child_t *child = arg;
    return child->exited && child->open_handles == (child->has_stdin ? 1 : 0);
}

/* Closes the child's stdin (it sees EOF). */
static void child_close_stdin(child_t *child)
{
    if (child->has_stdin && !uv_is_closing((uv_handle_t *)&child->in)) {
        uv_close((uv_handle_t *)&child->in, child_handle_closed);
        child->has_stdin = false;
    }
}

/* Waits for the child; kills it when it overstays. Returns its exit status. */
static int64_t child_wait(fixture_t *fx, child_t *child, uint64_t timeout_ms)
{
    if (!run_until(fx, child_finished, child, timeout_ms)) {
        uv_process_kill(&child->process, SIGKILL);
        run_until(fx, child_finished, child, 5000);
        fprintf(stderr, "%s: killed after %llu ms\n", "child", (unsigned long long)timeout_ms);
    }
    child_close_stdin(child);
    run_for(fx, 1);
    return child->status;
}

static int64_t run_child(fixture_t *fx, child_t *child, char **argv)
{
    child_start(fx, child, argv, false);
    return child_wait(fx, child, CLIENT_WAIT_MS);
}

static void dump_child(const child_t *child)
{
    fprintf(stderr, "--- client output (status %lld) ---\n%s\n---\n", (long long)child->status,
            child->output);
}

/* coap-client GET coaps://127.0.0.1:port/x with PSK; returns the exit status. */
static int64_t coap_client_psk(fixture_t *fx, child_t *child, const char *tool,
                               const char *identity, const char *key, const char *wait_sec)
{
    char uri[64];
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%u/x", fx->port);
    char *argv[] = {(char *)tool, "-u", (char *)identity, "-k", (char *)key, "-m",
                    "get",        "-B", (char *)wait_sec, uri,  NULL};
    return run_child(fx, child, argv);
}

/* ---------------------------------------------------- GnuTLS client thread */

/*
 * A real DTLS client running in its own thread on a UDP socket connected
 * to the server, one blocking operation at a time while the test's loop
 * serves; between operations the test may use its socket directly.
 */
typedef struct tls_client {
    int fd;
    uint16_t local_port;
    gnutls_session_t session;
    gnutls_psk_client_credentials_t psk;
    gnutls_certificate_credentials_t cert;
    bool rawpk;
    const char *priority;
    gnutls_datum_t resume;
    pthread_t thread;
    int (*op)(struct tls_client *client);
    atomic_int done;
    int rc;
    gnutls_alert_description_t alert;
} tls_client_t;

static void client_socket(tls_client_t *client, uint16_t server_port)
{
    client->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(client->fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(client->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(client->fd, (struct sockaddr *)&addr, &len);
    client->local_port = ntohs(addr.sin_port);
    addr.sin_port = htons(server_port);
    assert_int_equal(connect(client->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
}

static void client_init_psk(tls_client_t *client, uint16_t port, const char *identity,
                            const char *key)
{
    memset(client, 0, sizeof(*client));
    client_socket(client, port);
    assert_int_equal(gnutls_psk_allocate_client_credentials(&client->psk), 0);
    gnutls_datum_t datum = {(unsigned char *)key, (unsigned int)strlen(key)};
    assert_int_equal(
        gnutls_psk_set_client_credentials(client->psk, identity, &datum, GNUTLS_PSK_KEY_RAW), 0);
    client->priority = "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK";
}

static void client_free_session(tls_client_t *client)
{
    if (client->session != NULL) {
        gnutls_deinit(client->session);
        client->session = NULL;
    }
}

static void client_free(tls_client_t *client)
{
    client_free_session(client);
    if (client->psk != NULL) {
        gnutls_psk_free_client_credentials(client->psk);
    }
    if (client->cert != NULL) {
        gnutls_certificate_free_credentials(client->cert);
    }
    gnutls_free(client->resume.data);
    if (client->fd >= 0) {
        close(client->fd);
    }
}

/* In the thread: a fresh session and a full (or resumed) handshake. */
static int op_handshake(tls_client_t *client)
{
    client_free_session(client);
    unsigned int flags =
        GNUTLS_CLIENT | GNUTLS_DATAGRAM | (client->rawpk ? GNUTLS_ENABLE_RAWPK : 0);
    if (gnutls_init(&client->session, flags) < 0 ||
        gnutls_priority_set_direct(client->session, client->priority, NULL) < 0) {
        return -1;
    }
    if (client->psk != NULL) {
        gnutls_credentials_set(client->session, GNUTLS_CRD_PSK, client->psk);
    }
    if (client->cert != NULL) {
        gnutls_credentials_set(client->session, GNUTLS_CRD_CERTIFICATE, client->cert);
    }
    if (client->resume.data != NULL) {
        gnutls_session_set_data(client->session, client->resume.data, client->resume.size);
    }
    gnutls_transport_set_int(client->session, client->fd);
    gnutls_dtls_set_timeouts(client->session, 300, 5000);
    gnutls_handshake_set_timeout(client->session, 5000);
    gnutls_record_set_timeout(client->session, 3000);
    int rc;
    do {
        rc = gnutls_handshake(client->session);
    } while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        client->alert = gnutls_alert_get(client->session);
    }
    return rc;
}

/* In the thread: CoAP GET (CON), expects our piggybacked 2.05 "hello". */
static int op_get(tls_client_t *client)
{
    static const uint8_t request[] = {0x41, 0x01, 0x12, 0x34, 0x77, 0xb1, 'x'};
    if (gnutls_record_send(client->session, request, sizeof(request)) < 0) {
        return -1;
    }
    uint8_t reply[256];
    ssize_t n;
    do {
        n = gnutls_record_recv(client->session, reply, sizeof(reply));
    } while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    if (n <= 0) {
        return n == 0 ? -100 : (int)n; /* -100: the server closed the session */
    }
    bool ok = n == 11 && reply[0] == 0x61 && reply[1] == 0x45 && reply[2] == 0x12 &&
              reply[3] == 0x34 && reply[4] == 0x77 && memcmp(reply + 6, "hello", 5) == 0;
    return ok ? 0 : -2;
}

/* In the thread: waits for a record; 0 when the server's close_notify arrives. */
static int op_expect_close(tls_client_t *client)
{
    uint8_t buf[256];
    ssize_t n;
    do {
        n = gnutls_record_recv(client->session, buf, sizeof(buf));
    } while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
    return (int)n;
}

static int op_bye(tls_client_t *client)
{
    return gnutls_bye(client->session, GNUTLS_SHUT_WR);
}

static void *client_thread(void *arg)
{
    tls_client_t *client = arg;
    client->rc = client->op(client);
    atomic_store(&client->done, 1);
    return NULL;
}

static bool client_done(fixture_t *fx, void *arg)
{
    tls_client_t *client = arg;
    return atomic_load(&client->done) != 0;
}

/* Runs one client operation in the thread while the loop serves; returns its result. */
static int client_do(fixture_t *fx, tls_client_t *client, int (*op)(tls_client_t *))
{
    client->op = op;
    atomic_store(&client->done, 0);
    assert_int_equal(pthread_create(&client->thread, NULL, client_thread, client), 0);
    bool finished = run_until(fx, client_done, client, CLIENT_WAIT_MS);
    pthread_join(client->thread, NULL);
    assert_true(finished);
    return client->rc;
}

/* ------------------------------------------------------- raw datagrams */

static int raw_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    return fd;
}

static void raw_send(int fd, uint16_t port, const uint8_t *data, size_t len)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ssize_t n = sendto(fd, data, len, 0, (struct sockaddr *)&addr, sizeof(addr));
    assert_int_equal(n, (ssize_t)len);
}

/* One datagram if there is one (non-blocking); its length or -1. */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t size)
{
    return recv(fd, buf, size, MSG_DONTWAIT);
}

static size_t put_u16(uint8_t *p, unsigned int v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put_u24(uint8_t *p, unsigned int v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
    return 3;
}

/*
 * A DTLS 1.2 ClientHello (RFC 6347 4.2.2, 4.3.2) offering
 * TLS_PSK_WITH_AES_128_CCM_8 and the renegotiation SCSV, with an
 * optional cookie, in one record.
 */
static size_t client_hello(uint8_t *out, const uint8_t *cookie, size_t cookie_len,
                           unsigned int message_seq, unsigned int record_seq)
{
    uint8_t body[128];
    size_t n = put_u16(body, 0xfefd);
    memset(body + n, 0x5a, 32); /* random */
    n += 32;
    body[n++] = 0; /* session_id */
    body[n++] = (uint8_t)cookie_len;
    if (cookie_len > 0) {
        memcpy(body + n, cookie, cookie_len);
        n += cookie_len;
    }
    n += put_u16(body + n, 4);
    n += put_u16(body + n, 0xc0a8);
    n += put_u16(body + n, 0x00ff);
    body[n++] = 1; /* compression methods: null */
    body[n++] = 0;

    size_t pos = 0;
    out[pos++] = 22; /* handshake */
    pos += put_u16(out + pos, 0xfefd);
    memset(out + pos, 0, 8); /* epoch 0, sequence number */
    out[pos + 7] = (uint8_t)record_seq;
    pos += 8;
    pos += put_u16(out + pos, (unsigned int)(12 + n));
    out[pos++] = 1; /* client_hello */
    pos += put_u24(out + pos, (unsigned int)n);
    pos += put_u16(out + pos, message_seq);
    pos += put_u24(out + pos, 0);
    pos += put_u24(out + pos, (unsigned int)n);
    memcpy(out + pos, body, n);
    return pos + n;
}

/* The cookie of a HelloVerifyRequest datagram, or 0 when it is not one. */
static size_t hello_verify_cookie(const uint8_t *data, ssize_t len, uint8_t *cookie)
{
    if (len < 13 + 12 + 3 || data[0] != 22 || data[13] != 3) {
        return 0;
    }
    size_t cookie_len = data[13 + 12 + 2];
    if ((size_t)len < 13 + 12 + 3 + cookie_len || cookie_len > 32) {
        return 0;
    }
    memcpy(cookie, data + 13 + 12 + 3, cookie_len);
    return cookie_len;
}

typedef struct raw_wait {
    int fd;
    uint8_t buf[2048];
    ssize_t len;
} raw_wait_t;

static bool raw_arrived(fixture_t *fx, void *arg)
{
    raw_wait_t *wait = arg;
    wait->len = raw_recv(wait->fd, wait->buf, sizeof(wait->buf));
    return wait->len > 0;
}

/* Sends a cookie-less ClientHello from fd, then the one with the cookie; a handshake starts. */
static void raw_cookie_exchange(fixture_t *fx, int fd, raw_wait_t *wait)
{
    uint8_t hello[256];
    size_t len = client_hello(hello, NULL, 0, 0, 0);
    raw_send(fd, fx->port, hello, len);
    wait->fd = fd;
    assert_true(run_until(fx, raw_arrived, wait, 2000));
    uint8_t cookie[32];
    size_t cookie_len = hello_verify_cookie(wait->buf, wait->len, cookie);
    assert_true(cookie_len > 0);
    len = client_hello(hello, cookie, cookie_len, 1, 1);
    raw_send(fd, fx->port, hello, len);
}

/* ------------------------------------------------------------------ PSK */

static void start_psk_server(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    fixture_start(fx, &cfg, NULL);
}

static void expect_coap_success(fixture_t *fx, const char *tool)
{
    child_t child;
    int64_t status = coap_client_psk(fx, &child, tool, PSK_IDENTITY, PSK_KEY, "5");
    if (status != 0 || strstr(child.output, "hello") == NULL) {
        dump_child(&child);
    }
    assert_int_equal(status, 0);
    assert_non_null(strstr(child.output, "hello"));
}

static void test_psk_coap_client_gnutls(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    expect_coap_success(fx, "coap-client-gnutls");

    dtls_stats_t s = stats(fx);
    assert_int_equal(s.handshakes_completed, 1);
    assert_int_equal(s.handshakes, 0);
    assert_int_equal(fx->delivered, 1);
    assert_string_equal(fx->last_endpoint, PSK_ENDPOINT);
    assert_int_equal(fx->last_mode, STORE_SECURITY_PSK);
}

static void test_psk_coap_client_openssl(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    expect_coap_success(fx, "coap-client-openssl");
    assert_int_equal(stats(fx).handshakes_completed, 1);
    assert_string_equal(fx->last_endpoint, PSK_ENDPOINT);
}

/* LwM2M's mandatory suite alone (LwM2M 1.1 core 7.1): the client offers nothing else. */
static void test_psk_ccm8_only(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    char port[8];
    snprintf(port, sizeof(port), "%u", fx->port);
    char *argv[] = {"/usr/bin/gnutls-cli",
                    "--udp",
                    "--priority",
                    "NORMAL:-CIPHER-ALL:+AES-128-CCM-8:-MAC-ALL:+AEAD:-KX-ALL:+PSK:-VERS-ALL:"
                    "+VERS-DTLS1.2",
                    "--pskusername",
                    PSK_IDENTITY,
                    "--pskkey",
                    PSK_KEY_HEX,
                    "-p",
                    port,
                    "127.0.0.1",
                    NULL};
    child_t child;
    int64_t status = run_child(fx, &child, argv);
    if (status != 0 || strstr(child.output, "AES-128-CCM-8") == NULL) {
        dump_child(&child);
    }
    assert_int_equal(status, 0);
    assert_non_null(strstr(child.output, "(PSK)-(AES-128-CCM-8)"));
    assert_int_equal(stats(fx).handshakes_completed, 1);
}

/* A wrong key and an unknown identity fail alike for the client; the server tells them apart. */
static void test_psk_wrong_key_and_unknown_identity(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);

    tls_client_t wrong;
    client_init_psk(&wrong, fx->port, PSK_IDENTITY, "not-the-key-000");
    int wrong_rc = client_do(fx, &wrong, op_handshake);
    tls_client_t unknown;
    client_init_psk(&unknown, fx->port, "nobody", "not-the-key-000");
    int unknown_rc = client_do(fx, &unknown, op_handshake);

    /* Same error and alert on the wire for both (RFC 4279 2). */
    assert_int_equal(wrong_rc, GNUTLS_E_FATAL_ALERT_RECEIVED);
    assert_int_equal(unknown_rc, wrong_rc);
    assert_int_equal(wrong.alert, GNUTLS_A_DECRYPT_ERROR);
    assert_int_equal(unknown.alert, wrong.alert);
    client_free(&wrong);
    client_free(&unknown);

    dtls_stats_t s = stats(fx);
    assert_int_equal(s.failures[DTLS_FAIL_BAD_KEY], 1);
    assert_int_equal(s.failures[DTLS_FAIL_UNKNOWN_IDENTITY], 1);
    assert_int_equal(s.handshakes, 0);
    assert_int_equal(s.sessions, 0);

    /* libcoap's clients fail too (they exit 0 regardless), and the server keeps serving. */
    child_t child;
    coap_client_psk(fx, &child, "coap-client-gnutls", PSK_IDENTITY, "wrong", "3");
    assert_null(strstr(child.output, "hello"));
    coap_client_psk(fx, &child, "coap-client-openssl", "unknown-id", PSK_KEY, "3");
    assert_null(strstr(child.output, "hello"));
    s = stats(fx);
    assert_true(s.failures[DTLS_FAIL_BAD_KEY] >= 2);
    assert_true(s.failures[DTLS_FAIL_UNKNOWN_IDENTITY] >= 2);
    assert_int_equal(s.handshakes_completed, 0);
    expect_coap_success(fx, "coap-client-gnutls");
    assert_int_equal(fx->delivered, 1);
}

static void test_psk_resumption_gnutls_cli(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    char port[8];
    snprintf(port, sizeof(port), "%u", fx->port);
    char *argv[] = {"/usr/bin/gnutls-cli",
                    "--udp",
                    "--resume",
                    "--priority",
                    "NORMAL:-KX-ALL:+PSK:-VERS-ALL:+VERS-DTLS1.2",
                    "--pskusername",
                    PSK_IDENTITY,
                    "--pskkey",
                    PSK_KEY_HEX,
                    "-p",
                    port,
                    "127.0.0.1",
                    NULL};
    child_t child;
    int64_t status = run_child(fx, &child, argv);
    if (status != 0 || strstr(child.output, "This is a resumed session") == NULL) {
        dump_child(&child);
    }
    assert_int_equal(status, 0);
    assert_non_null(strstr(child.output, "This is a resumed session"));
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.handshakes_completed, 2);
    assert_int_equal(s.handshakes_resumed, 1);
}

/* A resumed session names its device again: a device removed since cannot resume. */
static void test_psk_resumption_rechecks_identity(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    tls_client_t client;
    client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(gnutls_session_get_data2(client.session, &client.resume), 0);
    assert_int_equal(client_do(fx, &client, op_bye), 0);

    /* Resumes while the device exists. */
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_true(gnutls_session_is_resumed(client.session));
    assert_int_equal(client_do(fx, &client, op_get), 0);
    assert_int_equal(client_do(fx, &client, op_bye), 0);
    assert_int_equal(stats(fx).handshakes_resumed, 1);

    /*
     * The device is gone: the server refuses the resumed session once it
     * has the client's Finished, which the client sent as its last flight.
     */
    fx->registry.psk_enabled = false;
    if (client_do(fx, &client, op_handshake) == 0) {
        assert_int_not_equal(client_do(fx, &client, op_get), 0);
    }
    assert_int_equal(stats(fx).failures[DTLS_FAIL_UNKNOWN_IDENTITY], 1);
    assert_int_equal(stats(fx).sessions, 0);
    client_free(&client);
}

/* ------------------------------------------------- cookies and raw input */

static bool all_answered(fixture_t *fx, void *arg)
{
    const uint64_t *expected = arg;
    return stats(fx).cookies_sent >= *expected;
}

/* RFC 6347 4.2.1: cookie-less ClientHellos are answered and leave no state behind. */
static void test_client_hello_flood_keeps_no_state(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    int fd = raw_socket();
    uint8_t hello[256];
    size_t len = client_hello(hello, NULL, 0, 0, 0);

    /* Batches of 50, so that the loopback queue does not overflow. */
    uint64_t sent = 0;
    for (int batch = 0; batch < 20; batch++) {
        for (int i = 0; i < 50; i++) {
            raw_send(fd, fx->port, hello, len);
        }
        sent += 50;
        assert_true(run_until(fx, all_answered, &sent, 2000));
    }

    /* A forged cookie is answered with a fresh HelloVerifyRequest, no handshake. */
    static const uint8_t forged[16] = {1, 2, 3};
    len = client_hello(hello, forged, sizeof(forged), 1, 1);
    raw_send(fd, fx->port, hello, len);
    sent++;
    assert_true(run_until(fx, all_answered, &sent, 2000));

    uint8_t buf[512];
    int replies = 0;
    while (raw_recv(fd, buf, sizeof(buf)) > 0) {
        replies++;
    }
    close(fd);
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.cookies_sent, 1001);
    assert_int_equal(replies, 1001);
    assert_int_equal(s.handshakes_started, 0);
    assert_int_equal(s.handshakes, 0);
    assert_int_equal(s.sessions, 0);
}

/* Malformed datagrams are dropped silently (RFC 6347 4.1.2.7) and change nothing. */
static void test_malformed_datagrams_ignored(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    int fd = raw_socket();
    uint8_t hello[256];
    size_t len = client_hello(hello, NULL, 0, 0, 0);

    uint8_t garbage[300];
    for (size_t i = 0; i < sizeof(garbage); i++) {
        garbage[i] = (uint8_t)(i * 37 + 11);
    }
    uint8_t fragment[256];
    memcpy(fragment, hello, len);
    fragment[13 + 8] = 1; /* fragment_length no longer equals length */
    uint8_t app_data[] = {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 1, 0, 3, 1, 2, 3};
    uint8_t bad_version[256];
    memcpy(bad_version, hello, len);
    bad_version[1] = 3; /* a TLS, not DTLS, record */
    uint8_t long_record[256];
    memcpy(long_record, hello, len);
    long_record[12] = (uint8_t)(long_record[12] + 1); /* length one past the datagram */

    raw_send(fd, fx->port, garbage, sizeof(garbage));
    for (size_t cut = 1; cut < len; cut += 7) {
        raw_send(fd, fx->port, hello, cut); /* truncated ClientHellos */
    }
    raw_send(fd, fx->port, fragment, len);
    raw_send(fd, fx->port, app_data, sizeof(app_data));
    raw_send(fd, fx->port, bad_version, len);
    raw_send(fd, fx->port, long_record, len);
    run_for(fx, 200);

    uint8_t buf[512];
    assert_true(raw_recv(fd, buf, sizeof(buf)) < 0);
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.cookies_sent, 0);
    assert_int_equal(s.handshakes_started, 0);
    assert_int_equal(fx->delivered, 0);
    close(fd);
}

static void test_record_scan(void **state)
{
    uint8_t hello[256];
    size_t len = client_hello(hello, NULL, 0, 0, 0);
    dtls_datagram_info_t info;
    dtls_datagram_scan(hello, len, &info);
    assert_true(info.valid);
    assert_true(info.client_hello);
    assert_false(info.encrypted);

    /* Two records: a ChangeCipherSpec and an epoch-1 record. */
    uint8_t flight[] = {20,   0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 1, 22,
                        0xfe, 0xfd, 0,    1, 0, 0, 0, 0, 0, 0, 0, 2, 9, 9};
    dtls_datagram_scan(flight, sizeof(flight), &info);
    assert_true(info.valid);
    assert_true(info.change_cipher_spec);
    assert_true(info.encrypted);
    assert_false(info.client_hello);

    dtls_datagram_scan(flight, sizeof(flight) - 1, &info);
    assert_false(info.valid);
    dtls_datagram_scan(hello, 0, &info);
    assert_false(info.valid);
    hello[0] = 24; /* heartbeat: not accepted */
    dtls_datagram_scan(hello, len, &info);
    assert_false(info.valid);
}

/* A ClientHello with RFC 7250 certificate type extensions appended. */
static size_t hello_with_types(uint8_t *out, const uint8_t *client, size_t client_len,
                               const uint8_t *server, size_t server_len)
{
    size_t len = client_hello(out, NULL, 0, 0, 0);
    uint8_t ext[64];
    size_t n = 0;
    n += put_u16(ext + n, 19);
    n += put_u16(ext + n, (unsigned int)client_len + 1);
    ext[n++] = (uint8_t)client_len;
    memcpy(ext + n, client, client_len);
    n += client_len;
    n += put_u16(ext + n, 20);
    n += put_u16(ext + n, (unsigned int)server_len + 1);
    ext[n++] = (uint8_t)server_len;
    memcpy(ext + n, server, server_len);
    n += server_len;
    len += put_u16(out + len, (unsigned int)n);
    memcpy(out + len, ext, n);
    len += n;

    /* Grow the record and handshake lengths by the extensions. */
    unsigned int body = (unsigned int)(len - 13 - 12);
    put_u16(out + 11, body + 12);
    put_u24(out + 14, body);
    put_u24(out + 22, body);
    return len;
}

static void test_client_hello_wants_rpk(void **state)
{
    static const uint8_t rpk_first[] = {2, 0};
    static const uint8_t x509_first[] = {0, 2};
    static const uint8_t x509_only[] = {0};
    uint8_t hello[256];

    size_t len = hello_with_types(hello, rpk_first, 1, x509_first, 2);
    dtls_datagram_info_t info;
    dtls_datagram_scan(hello, len, &info);
    assert_true(info.client_hello);
    assert_true(dtls_client_hello_wants_rpk(hello, len));

    len = hello_with_types(hello, x509_first, 2, x509_first, 2);
    assert_false(dtls_client_hello_wants_rpk(hello, len));
    len = hello_with_types(hello, rpk_first, 2, x509_only, 1);
    assert_false(dtls_client_hello_wants_rpk(hello, len));
    len = client_hello(hello, NULL, 0, 0, 0);
    assert_false(dtls_client_hello_wants_rpk(hello, len));

    /* Malformed: every truncation, and a list length that disagrees with its extension. */
    len = hello_with_types(hello, rpk_first, 1, x509_first, 2);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t copy[256];
        memcpy(copy, hello, cut);
        assert_false(dtls_client_hello_wants_rpk(copy, cut));
    }
    hello[len - 3] = 9; /* the server list claims 9 types */
    assert_false(dtls_client_hello_wants_rpk(hello, len));
    hello[len - 3] = 2;
    hello[len - 5] = 0xff; /* the extension length runs past the end */
    assert_false(dtls_client_hello_wants_rpk(hello, len));
}

/* Cookies verify with the current and the previous key, not older ones, and only for their peer. */
static int capture_datagram(void *ctx, const uint8_t *data, size_t len)
{
    raw_wait_t *out = ctx;
    memcpy(out->buf, data, len);
    out->len = (ssize_t)len;
    return 0;
}

static void test_cookie_rotation(void **state)
{
    dtls_cookie_t cookie;
    assert_int_equal(dtls_cookie_init(&cookie), 0);
    net_addr_t peer;
    net_addr_t other;
    assert_int_equal(net_addr_parse(&peer, "192.0.2.1", 5684), 0);
    assert_int_equal(net_addr_parse(&other, "192.0.2.1", 5685), 0);

    uint8_t hello[256];
    size_t len = client_hello(hello, NULL, 0, 0, 0);
    gnutls_dtls_prestate_st prestate;
    assert_false(dtls_cookie_verify(&cookie, &peer, hello, len, &prestate));
    raw_wait_t hvr;
    assert_int_equal(dtls_cookie_send(&cookie, &peer, hello, len, capture_datagram, &hvr), 0);
    uint8_t value[32];
    size_t value_len = hello_verify_cookie(hvr.buf, hvr.len, value);
    assert_true(value_len > 0);

    len = client_hello(hello, value, value_len, 1, 1);
    assert_true(dtls_cookie_verify(&cookie, &peer, hello, len, &prestate));
    assert_int_equal(prestate.hsk_read_seq, 1);
    assert_false(dtls_cookie_verify(&cookie, &other, hello, len, &prestate));
    assert_int_equal(dtls_cookie_rotate(&cookie), 0);
    assert_true(dtls_cookie_verify(&cookie, &peer, hello, len, &prestate));
    assert_int_equal(dtls_cookie_rotate(&cookie), 0);
    assert_false(dtls_cookie_verify(&cookie, &peer, hello, len, &prestate));
    dtls_cookie_destroy(&cookie);
}

static bool handshake_count(fixture_t *fx, void *arg)
{
    const uint32_t *expected = arg;
    return stats(fx).handshakes == *expected;
}

/* A peer that answers the cookie and then goes silent: retransmissions, then a timeout. */
static void test_handshake_timeout(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.dtls_retransmission_timeout_ms = 200;
    cfg.dtls_handshake_timeout_ms = 1500;
    fixture_start(fx, &cfg, NULL);

    int fd = raw_socket();
    raw_wait_t wait;
    raw_cookie_exchange(fx, fd, &wait);
    uint32_t one = 1;
    assert_true(run_until(fx, handshake_count, &one, 2000));
    assert_int_equal(stats(fx).handshakes_started, 1);

    /* The server's first flight (ServerHello...) comes, then again when it times out. */
    int flights = 0;
    uint64_t end = now_ms() + 3000;
    uint32_t zero = 0;
    while (now_ms() < end && !handshake_count(fx, &zero)) {
        if (raw_arrived(fx, &wait) && wait.buf[0] == 22 && wait.buf[13] == 2) {
            flights++;
        }
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    close(fd);
    dtls_stats_t s = stats(fx);
    assert_true(flights >= 2);
    assert_int_equal(s.handshakes, 0);
    assert_int_equal(s.failures[DTLS_FAIL_TIMEOUT], 1);
    assert_int_equal(s.sessions, 0);
}

/* At the handshake cap a ClientHello with a valid cookie is dropped and counted. */
static void test_handshake_cap(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.dtls_max_handshakes = 1;
    fixture_start(fx, &cfg, NULL);

    int first = raw_socket();
    int second = raw_socket();
    raw_wait_t wait;
    raw_cookie_exchange(fx, first, &wait);
    uint32_t one = 1;
    assert_true(run_until(fx, handshake_count, &one, 2000));
    raw_cookie_exchange(fx, second, &wait);
    run_for(fx, 100);

    dtls_stats_t s = stats(fx);
    assert_int_equal(s.handshakes, 1);
    assert_int_equal(s.handshakes_started, 1);
    assert_int_equal(s.rejected_at_cap, 1);
    close(first);
    close(second);
}

/* ------------------------------------------------------------- sessions */

/* At the session cap a new peer is turned away; once a session ends there is room again. */
static void test_session_cap(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.dtls_max_sessions = 1;
    fixture_start(fx, &cfg, NULL);

    tls_client_t holder;
    client_init_psk(&holder, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &holder, op_handshake), 0);
    assert_int_equal(stats(fx).sessions, 1);

    child_t child;
    coap_client_psk(fx, &child, "coap-client-gnutls", PSK_IDENTITY, PSK_KEY, "2");
    assert_null(strstr(child.output, "hello"));
    assert_true(stats(fx).rejected_at_cap >= 1);
    assert_int_equal(stats(fx).sessions, 1);

    /* close_notify from the holder ends its session; the next client gets in. */
    assert_int_equal(client_do(fx, &holder, op_bye), 0);
    run_for(fx, 100);
    assert_int_equal(stats(fx).sessions, 0);
    assert_int_equal(fx->closed, 1);
    expect_coap_success(fx, "coap-client-gnutls");
    client_free(&holder);
}

static bool evicted(fixture_t *fx, void *arg)
{
    return stats(fx).sessions_evicted >= 1;
}

/* An idle session is evicted with close_notify; the layers above hear of it. */
static void test_idle_eviction(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.dtls_session_idle_sec = 1;
    fixture_start(fx, &cfg, NULL);

    tls_client_t client;
    client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(client_do(fx, &client, op_get), 0);
    uint64_t start = now_ms();
    assert_true(run_until(fx, evicted, NULL, 4000));
    assert_true(now_ms() - start >= 900);

    dtls_stats_t s = stats(fx);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(fx->closed, 1);
    assert_int_equal(client_do(fx, &client, op_expect_close), 0);
    client_free(&client);
}

/*
 * A device that rebooted handshakes again from the same address: the old
 * session is replaced only when the new handshake completes.
 */
static void test_rebooted_device_replaces_session(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    tls_client_t client;
    client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(client_do(fx, &client, op_get), 0);

    /* Reboot: the state is lost without close_notify; same socket, new handshake. */
    client_free_session(&client);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(client_do(fx, &client, op_get), 0);

    dtls_stats_t s = stats(fx);
    assert_int_equal(s.handshakes_completed, 2);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(fx->closed, 1);
    assert_int_equal(fx->delivered, 2);
    client_free(&client);
}

/* A late copy of the ClientHello behind a session starts nothing. */
static void test_duplicate_client_hello_ignored(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    tls_client_t client;
    client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_true(fx->hello_len > 0);

    /* The copy passes the cookie check (no HelloVerifyRequest) and is dropped. */
    uint64_t cookies = stats(fx).cookies_sent;
    dtls_server_input(fx->server, &fx->hello_peer, fx->hello, fx->hello_len);
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.cookies_sent, cookies);
    assert_int_equal(s.handshakes_started, 1);
    assert_int_equal(s.handshakes, 0);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(client_do(fx, &client, op_get), 0);
    client_free(&client);
}

/* A new handshake from a peer's address does not disturb its session until it completes. */
static void test_old_session_kept_during_new_handshake(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.dtls_handshake_timeout_ms = 1000;
    fixture_start(fx, &cfg, NULL);
    tls_client_t client;
    client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);

    /* A ClientHello with a valid cookie from the same address, never finished. */
    raw_wait_t wait;
    raw_cookie_exchange(fx, client.fd, &wait);
    uint32_t one = 1;
    assert_true(run_until(fx, handshake_count, &one, 2000));
    while (raw_recv(client.fd, wait.buf, sizeof(wait.buf)) > 0) {
        /* the server's flight, for the raw hello */
    }
    assert_int_equal(client_do(fx, &client, op_get), 0);

    uint32_t zero = 0;
    assert_true(run_until(fx, handshake_count, &zero, 3000));
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.failures[DTLS_FAIL_TIMEOUT], 1);
    assert_int_equal(s.sessions, 1);
    assert_int_equal(fx->closed, 0);
    while (raw_recv(client.fd, wait.buf, sizeof(wait.buf)) > 0) {
    }
    assert_int_equal(client_do(fx, &client, op_get), 0);
    client_free(&client);
}

/* dtls_server_close sends close_notify; sends to unknown peers fail; free closes the rest. */
static void test_close_send_and_free(void **state)
{
    fixture_t *fx = *state;
    start_psk_server(state);
    net_addr_t nobody;
    assert_int_equal(net_addr_parse(&nobody, "127.0.0.1", 9), 0);
    assert_int_equal(dtls_server_send(fx->server, &nobody, (const uint8_t *)"x", 1),
                     LWM2MD_ERR_NOT_FOUND);
    dtls_server_close(fx->server, &nobody);

    tls_client_t first;
    tls_client_t second;
    client_init_psk(&first, fx->port, PSK_IDENTITY, PSK_KEY);
    client_init_psk(&second, fx->port, PSK_IDENTITY, PSK_KEY);
    assert_int_equal(client_do(fx, &first, op_handshake), 0);
    assert_int_equal(client_do(fx, &second, op_handshake), 0);
    assert_int_equal(stats(fx).sessions, 2);

    net_addr_t peer;
    assert_int_equal(net_addr_parse(&peer, "127.0.0.1", first.local_port), 0);
    uint8_t big[2000] = {0};
    assert_int_equal(dtls_server_send(fx->server, &peer, big, sizeof(big)), LWM2MD_ERR_TOO_BIG);
    dtls_server_close(fx->server, &peer);
    assert_int_equal(stats(fx).sessions, 1);
    assert_int_equal(fx->closed, 1);
    assert_int_equal(client_do(fx, &first, op_expect_close), 0);

    /* Freeing the server says close_notify to the second client. */
    dtls_server_free(fx->server);
    fx->server = NULL;
    assert_int_equal(client_do(fx, &second, op_expect_close), 0);
    client_free(&first);
    client_free(&second);
}

/* ------------------------------------------------------ RPK and X.509 */

static uint8_t *read_file(const char *name, size_t *len)
{
    char path[512];
    FILE *file = fopen(data_path(name, path, sizeof(path)), "rb");
    assert_non_null(file);
    uint8_t *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65536, file);
    fclose(file);
    return buf;
}

static void start_certificate_server(void **state, bool trust, bool skip_validity)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.skip_validity_check_for_client_cert = skip_validity;
    fixture_start(fx, &cfg, load_credentials(trust));
}

/*
 * libcoap's -M wants one PEM file holding the PUBLIC KEY and the PRIVATE
 * KEY; made from the fixtures in a temporary directory.
 */
static void write_rpk_pem(char *path, size_t size, char *dir)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, size, "%s/client_rpk.pem", dir);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    const char *parts[] = {"client_pub.pem", "client_key.pem"};
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0;
        uint8_t *pem = read_file(parts[i], &len);
        assert_int_equal(fwrite(pem, 1, len, out), len);
        free(pem);
    }
    fclose(out);
}

/* coap-client with a certificate (-c/-j) or a raw public key (-M); true when it got "hello". */
static bool coap_client_certificate(fixture_t *fx, const char *tool, bool rpk)
{
    char uri[64];
    char cert[512];
    char key[512];
    char rpk_dir[] = "/tmp/dtls-test-XXXXXX";
    char rpk_file[600];
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%u/x", fx->port);
    data_path("client.pem", cert, sizeof(cert));
    data_path("client_key.pem", key, sizeof(key));
    if (rpk) {
        write_rpk_pem(rpk_file, sizeof(rpk_file), rpk_dir);
    }
    char *x509_argv[] = {(char *)tool, "-c",  cert, "-j", key, "-n",
                         "-m",         "get", "-B", "3",  uri, NULL};
    char *rpk_argv[] = {(char *)tool, "-M", rpk_file, "-m", "get", "-B", "3", uri, NULL};
    child_t child;
    run_child(fx, &child, rpk ? rpk_argv : x509_argv);
    if (rpk) {
        unlink(rpk_file);
        rmdir(rpk_dir);
    }
    bool ok = strstr(child.output, "hello") != NULL;
    if (!ok && log_enabled(LOG_LEVEL_DEBUG)) {
        dump_child(&child);
    }
    return ok;
}

static void test_rpk_coap_client_gnutls(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    fx->registry.rpk = read_file("client_pub.der", &fx->registry.rpk_len);
    assert_true(coap_client_certificate(fx, "coap-client-gnutls", true));
    assert_string_equal(fx->last_endpoint, RPK_ENDPOINT);
    assert_int_equal(fx->last_mode, STORE_SECURITY_RPK);

    /* PSK is still served next to certificates. */
    expect_coap_success(fx, "coap-client-gnutls");
    assert_string_equal(fx->last_endpoint, PSK_ENDPOINT);
}

static void test_rpk_unknown_key(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    assert_false(coap_client_certificate(fx, "coap-client-gnutls", true));
    dtls_stats_t s = stats(fx);
    assert_true(s.failures[DTLS_FAIL_UNKNOWN_RPK] >= 1);
    assert_int_equal(s.handshakes_completed, 0);
    assert_int_equal(fx->delivered, 0);
}

/* CA-trusted chain, CN = endpoint (the device has no pinned certificate). */
static void test_x509_trusted_cn(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    fx->registry.cn_device = true;
    assert_true(coap_client_certificate(fx, "coap-client-gnutls", false));
    assert_string_equal(fx->last_endpoint, X509_ENDPOINT);
    assert_int_equal(fx->last_mode, STORE_SECURITY_X509);
    assert_true(coap_client_certificate(fx, "coap-client-openssl", false));
    assert_int_equal(stats(fx).handshakes_completed, 2);
}

/* A trusted chain whose CN names no X.509 device. */
static void test_x509_cn_mismatch(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    assert_false(coap_client_certificate(fx, "coap-client-gnutls", false));
    assert_true(stats(fx).failures[DTLS_FAIL_CN_MISMATCH] >= 1);
    assert_int_equal(fx->delivered, 0);
}

/* A pinned certificate matches without any CA trust. */
static void test_x509_pinned_without_trust(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, false, false);
    fx->registry.pinned = read_file("client.der", &fx->registry.pinned_len);
    assert_true(coap_client_certificate(fx, "coap-client-gnutls", false));
    assert_string_equal(fx->last_endpoint, PINNED_ENDPOINT);
}

/* Neither trusted nor pinned. */
static void test_x509_untrusted(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, false, false);
    fx->registry.cn_device = true;
    assert_false(coap_client_certificate(fx, "coap-client-gnutls", false));
    assert_true(stats(fx).failures[DTLS_FAIL_BAD_CERT] >= 1);
}

/* A client with a certificate: the fixture's X.509 pair or raw public key, or a given one. */
static void client_init_certificate(tls_client_t *client, uint16_t port, bool rawpk)
{
    memset(client, 0, sizeof(*client));
    client_socket(client, port);
    assert_int_equal(gnutls_certificate_allocate_credentials(&client->cert), 0);
    char cert[512];
    char key[512];
    data_path(rawpk ? "client_pub.pem" : "client.pem", cert, sizeof(cert));
    data_path("client_key.pem", key, sizeof(key));
    if (rawpk) {
        assert_int_equal(gnutls_certificate_set_rawpk_key_file(
                             client->cert, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0, NULL, 0, 0, 0),
                         0);
    } else {
        assert_int_equal(
            gnutls_certificate_set_x509_key_file(client->cert, cert, key, GNUTLS_X509_FMT_PEM), 0);
    }
    client->rawpk = rawpk;
    client->priority = rawpk ? "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA:"
                               "-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK"
                             : "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA";
}

static void load_ca(gnutls_x509_crt_t *ca, gnutls_x509_privkey_t *ca_key)
{
    size_t len = 0;
    uint8_t *pem = read_file("ca.pem", &len);
    gnutls_datum_t datum = {pem, (unsigned int)len};
    assert_int_equal(gnutls_x509_crt_init(ca), 0);
    assert_int_equal(gnutls_x509_crt_import(*ca, &datum, GNUTLS_X509_FMT_PEM), 0);
    free(pem);
    pem = read_file("ca_key.pem", &len);
    datum.data = pem;
    datum.size = (unsigned int)len;
    assert_int_equal(gnutls_x509_privkey_init(ca_key), 0);
    assert_int_equal(gnutls_x509_privkey_import2(*ca_key, &datum, GNUTLS_X509_FMT_PEM, NULL, 0), 0);
    free(pem);
}

/*
 * A fresh P-256 client certificate for CN, valid from `activation` to
 * `expiration`, signed by the fixtures' CA; set on client->cert. Its DER
 * goes to *der (malloc'd) for pinning.
 */
static void client_make_certificate(tls_client_t *client, const char *cn, time_t activation,
                                    time_t expiration, bool self_signed, uint8_t **der,
                                    size_t *der_len)
{
    gnutls_x509_crt_t ca;
    gnutls_x509_privkey_t ca_key;
    load_ca(&ca, &ca_key);
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    static const uint8_t serial[] = {0x42, 0x17};
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
    gnutls_x509_crt_set_activation_time(crt, activation);
    gnutls_x509_crt_set_expiration_time(crt, expiration);
    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
    gnutls_x509_crt_set_key(crt, key);
    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE);
    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
    if (self_signed) {
        assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    } else {
        assert_int_equal(gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0), 0);
    }

    assert_int_equal(gnutls_certificate_allocate_credentials(&client->cert), 0);
    assert_int_equal(gnutls_certificate_set_x509_key(client->cert, &crt, 1, key), 0);
    gnutls_datum_t out = {NULL, 0};
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out), 0);
    *der = malloc(out.size);
    memcpy(*der, out.data, out.size);
    *der_len = out.size;
    gnutls_free(out.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_crt_deinit(ca);
    gnutls_x509_privkey_deinit(ca_key);
}

/* The server certificate's SubjectPublicKeyInfo, DER (gnutls_free it). */
static gnutls_datum_t server_spki(void)
{
    size_t len = 0;
    uint8_t *pem = read_file("server.pem", &len);
    gnutls_datum_t datum = {pem, (unsigned int)len};
    gnutls_x509_crt_t crt;
    gnutls_pubkey_t key;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &datum, GNUTLS_X509_FMT_PEM), 0);
    assert_int_equal(gnutls_pubkey_init(&key), 0);
    assert_int_equal(gnutls_pubkey_import_x509(key, crt, 0), 0);
    gnutls_datum_t der = {NULL, 0};
    assert_int_equal(gnutls_pubkey_export2(key, GNUTLS_X509_FMT_DER, &der), 0);
    gnutls_pubkey_deinit(key);
    gnutls_x509_crt_deinit(crt);
    free(pem);
    return der;
}

/* An RPK device that offers only raw public keys gets the server's raw public key too. */
static void test_rpk_both_ways_and_resumption(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    fx->registry.rpk = read_file("client_pub.der", &fx->registry.rpk_len);
    tls_client_t client;
    client_init_certificate(&client, fx->port, true);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(gnutls_certificate_type_get2(client.session, GNUTLS_CTYPE_SERVER),
                     GNUTLS_CRT_RAWPK);
    unsigned int count = 0;
    const gnutls_datum_t *server_key = gnutls_certificate_get_peers(client.session, &count);
    assert_int_equal(count, 1);
    gnutls_datum_t expected = server_spki();
    assert_int_equal(server_key->size, expected.size);
    assert_memory_equal(server_key->data, expected.data, expected.size);
    gnutls_free(expected.data);
    assert_int_equal(client_do(fx, &client, op_get), 0);
    assert_int_equal(fx->last_mode, STORE_SECURITY_RPK);

    /* Resumption looks the key up again; a key removed since is refused. */
    assert_int_equal(gnutls_session_get_data2(client.session, &client.resume), 0);
    assert_int_equal(client_do(fx, &client, op_bye), 0);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_true(gnutls_session_is_resumed(client.session));
    assert_int_equal(client_do(fx, &client, op_get), 0);
    assert_int_equal(client_do(fx, &client, op_bye), 0);
    free(fx->registry.rpk);
    fx->registry.rpk = NULL;
    if (client_do(fx, &client, op_handshake) == 0) {
        assert_int_not_equal(client_do(fx, &client, op_get), 0);
    }
    dtls_stats_t s = stats(fx);
    assert_int_equal(s.handshakes_resumed, 1);
    assert_int_equal(s.failures[DTLS_FAIL_UNKNOWN_RPK], 1);
    client_free(&client);
}

/* An expired certificate is refused, pinned or CA-trusted, unless the validity check is off. */
static void expired_certificate_case(void **state, bool skip_validity, bool pinned)
{
    fixture_t *fx = *state;
    start_certificate_server(state, !pinned, skip_validity);
    fx->registry.cn_device = !pinned;
    tls_client_t client;
    memset(&client, 0, sizeof(client));
    client_socket(&client, fx->port);
    client.priority = "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA";
    time_t now = time(NULL);
    uint8_t *der = NULL;
    size_t der_len = 0;
    client_make_certificate(&client, X509_ENDPOINT, now - 7200, now - 3600, false, &der, &der_len);
    if (pinned) {
        fx->registry.pinned = der;
        fx->registry.pinned_len = der_len;
    } else {
        free(der);
    }

    int rc = client_do(fx, &client, op_handshake);
    dtls_stats_t s = stats(fx);
    if (skip_validity) {
        assert_int_equal(rc, 0);
        assert_int_equal(client_do(fx, &client, op_get), 0);
        assert_string_equal(fx->last_endpoint, pinned ? PINNED_ENDPOINT : X509_ENDPOINT);
    } else {
        assert_int_equal(rc, GNUTLS_E_FATAL_ALERT_RECEIVED);
        assert_int_equal(s.failures[DTLS_FAIL_CERT_EXPIRED], 1);
        assert_int_equal(s.sessions, 0);
    }
    client_free(&client);
}

static void test_x509_expired_trusted(void **state)
{
    expired_certificate_case(state, false, false);
}

static void test_x509_expired_trusted_skip_validity(void **state)
{
    expired_certificate_case(state, true, false);
}

static void test_x509_expired_pinned(void **state)
{
    expired_certificate_case(state, false, true);
}

static void test_x509_expired_pinned_skip_validity(void **state)
{
    expired_certificate_case(state, true, true);
}

/*
 * A pinned self-signed certificate, with CA trust configured: the server
 * names no CAs in its CertificateRequest, so a GnuTLS client still sends
 * the certificate (it only sends ones that chain to the named CAs).
 */
static void test_x509_pinned_self_signed(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    tls_client_t client;
    memset(&client, 0, sizeof(client));
    client_socket(&client, fx->port);
    client.priority = "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA";
    time_t now = time(NULL);
    client_make_certificate(&client, "self-signed-1", now - 60, now + 3600, true,
                            &fx->registry.pinned, &fx->registry.pinned_len);
    assert_int_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(client_do(fx, &client, op_get), 0);
    assert_string_equal(fx->last_endpoint, PINNED_ENDPOINT);
    client_free(&client);
}

/* A certificate suite needs a client certificate: an empty Certificate is refused. */
static void test_x509_no_client_certificate(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    fx->registry.cn_device = true;
    tls_client_t client;
    memset(&client, 0, sizeof(client));
    client_socket(&client, fx->port);
    assert_int_equal(gnutls_certificate_allocate_credentials(&client.cert), 0);
    client.priority = "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA";
    assert_int_not_equal(client_do(fx, &client, op_handshake), 0);
    assert_int_equal(stats(fx).failures[DTLS_FAIL_BAD_CERT], 1);
    assert_int_equal(stats(fx).sessions, 0);
    client_free(&client);
}

/* Runs a handshake with one priority string; returns the result and the cipher chosen. */
static int handshake_with(fixture_t *fx, bool certificate, const char *priority,
                          gnutls_cipher_algorithm_t *cipher)
{
    tls_client_t client;
    if (certificate) {
        client_init_certificate(&client, fx->port, false);
    } else {
        client_init_psk(&client, fx->port, PSK_IDENTITY, PSK_KEY);
    }
    client.priority = priority;
    int rc = client_do(fx, &client, op_handshake);
    *cipher = rc == 0 ? gnutls_cipher_get(client.session) : GNUTLS_CIPHER_UNKNOWN;
    if (rc == 0) {
        assert_int_equal(client_do(fx, &client, op_get), 0);
        assert_int_equal(client_do(fx, &client, op_bye), 0);
    }
    client_free(&client);
    return rc;
}

#define PSK_ONLY "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:-MAC-ALL:"
#define ECDSA_ONLY "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:-MAC-ALL:"

/* Every suite of the default set connects; each is the only one the client offers. */
static void test_cipher_suites(void **state)
{
    fixture_t *fx = *state;
    start_certificate_server(state, true, false);
    fx->registry.cn_device = true;
    static const struct {
        bool certificate;
        const char *priority;
        gnutls_cipher_algorithm_t cipher;
    } suites[] = {
        {false, PSK_ONLY "+AES-128-CCM-8:+AEAD", GNUTLS_CIPHER_AES_128_CCM_8},
        {false, PSK_ONLY "+AES-128-CBC:+SHA256", GNUTLS_CIPHER_AES_128_CBC},
        {true, ECDSA_ONLY "+AES-128-CCM-8:+AEAD", GNUTLS_CIPHER_AES_128_CCM_8},
        {true, ECDSA_ONLY "+AES-128-GCM:+AEAD", GNUTLS_CIPHER_AES_128_GCM},
        {true, ECDSA_ONLY "+AES-128-CBC:+SHA256", GNUTLS_CIPHER_AES_128_CBC},
        {true, ECDSA_ONLY "+AES-128-GCM:+AEAD:-GROUP-ALL:+GROUP-SECP384R1",
         GNUTLS_CIPHER_AES_128_GCM},
    };
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        gnutls_cipher_algorithm_t cipher;
        assert_int_equal(handshake_with(fx, suites[i].certificate, suites[i].priority, &cipher), 0);
        assert_int_equal(cipher, suites[i].cipher);
    }
    assert_int_equal(fx->delivered, 6);
}

/* "Recommended" settings: AEAD suites only; secp256r1 and secp384r1 only. */
static void test_recommended_restrictions(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.recommended_ciphers = true;
    cfg.recommended_supported_groups = true;
    fixture_start(fx, &cfg, load_credentials(true));
    fx->registry.cn_device = true;

    gnutls_cipher_algorithm_t cipher;
    assert_int_not_equal(handshake_with(fx, false, PSK_ONLY "+AES-128-CBC:+SHA256", &cipher), 0);
    assert_int_not_equal(handshake_with(fx, true, ECDSA_ONLY "+AES-128-CBC:+SHA256", &cipher), 0);
    assert_int_not_equal(
        handshake_with(fx, true, ECDSA_ONLY "+AES-128-GCM:+AEAD:-GROUP-ALL:+GROUP-X25519", &cipher),
        0);
    assert_int_equal(handshake_with(fx, false, PSK_ONLY "+AES-128-CCM-8:+AEAD", &cipher), 0);
    assert_int_equal(handshake_with(fx, true, ECDSA_ONLY "+AES-128-CCM-8:+AEAD", &cipher), 0);
    assert_int_equal(stats(fx).handshakes_completed, 2);
}

/* Without the group restriction, x25519 is accepted too. */
static void test_unrestricted_groups(void **state)
{
    fixture_t *fx = *state;
    config_t cfg;
    test_config(&cfg);
    cfg.recommended_supported_groups = false;
    fixture_start(fx, &cfg, load_credentials(true));
    fx->registry.cn_device = true;
    gnutls_cipher_algorithm_t cipher;
    assert_int_equal(
        handshake_with(fx, true, ECDSA_ONLY "+AES-128-GCM:+AEAD:-GROUP-ALL:+GROUP-X25519", &cipher),
        0);
}

/* ----------------------------------------------------------------- main */

#define SERVER_TEST(name) cmocka_unit_test_setup_teardown(name, fixture_new, fixture_stop)

int main(void)
{
    /* The clients are children of this process; a dead one must not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    log_set_level(getenv("DTLS_TEST_DEBUG") != NULL ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_scan),
        cmocka_unit_test(test_cookie_rotation),
        cmocka_unit_test(test_client_hello_wants_rpk),
        SERVER_TEST(test_psk_coap_client_gnutls),
        SERVER_TEST(test_psk_coap_client_openssl),
        SERVER_TEST(test_psk_ccm8_only),
        SERVER_TEST(test_psk_wrong_key_and_unknown_identity),
        SERVER_TEST(test_psk_resumption_gnutls_cli),
        SERVER_TEST(test_psk_resumption_rechecks_identity),
        SERVER_TEST(test_client_hello_flood_keeps_no_state),
        SERVER_TEST(test_malformed_datagrams_ignored),
        SERVER_TEST(test_handshake_timeout),
        SERVER_TEST(test_handshake_cap),
        SERVER_TEST(test_session_cap),
        SERVER_TEST(test_idle_eviction),
        SERVER_TEST(test_rebooted_device_replaces_session),
        SERVER_TEST(test_duplicate_client_hello_ignored),
        SERVER_TEST(test_old_session_kept_during_new_handshake),
        SERVER_TEST(test_close_send_and_free),
        SERVER_TEST(test_rpk_coap_client_gnutls),
        SERVER_TEST(test_rpk_unknown_key),
        SERVER_TEST(test_x509_trusted_cn),
        SERVER_TEST(test_x509_cn_mismatch),
        SERVER_TEST(test_x509_pinned_without_trust),
        SERVER_TEST(test_x509_untrusted),
        SERVER_TEST(test_rpk_both_ways_and_resumption),
        SERVER_TEST(test_x509_expired_trusted),
        SERVER_TEST(test_x509_expired_trusted_skip_validity),
        SERVER_TEST(test_x509_expired_pinned),
        SERVER_TEST(test_x509_expired_pinned_skip_validity),
        SERVER_TEST(test_x509_pinned_self_signed),
        SERVER_TEST(test_x509_no_client_certificate),
        SERVER_TEST(test_cipher_suites),
        SERVER_TEST(test_recommended_restrictions),
        SERVER_TEST(test_unrestricted_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
