/* DTLS 1.2 server: stateless cookies, a table of per-peer sessions, caps, idle eviction. */
#include "dtls/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/random.h"
#include "dtls/auth.h"
#include "dtls/conn.h"
#include "dtls/cookie.h"
#include "dtls/record.h"
#include "log/log.h"

enum {
    SWEEP_MIN_MS = 100,
    SWEEP_MAX_MS = 10000,
    LOG_PER_SECOND = 1,
    LOG_BURST = 10,
};

/* A doubly linked list of conns through their prev/next links. */
typedef struct conn_list {
    dtls_conn_t *head; /* oldest: the least recently active session */
    dtls_conn_t *tail;
} conn_list_t;

struct dtls_server {
    uv_loop_t *loop;
    dtls_callbacks_t callbacks;
    dtls_shared_t shared;
    dtls_cookie_t cookie;
    htable_t peers; /* every conn, keyed by peer address */
    uint64_t hash_seed;
    conn_list_t handshakes;
    conn_list_t sessions; /* by last activity, oldest first */
    uint32_t max_sessions;
    uint32_t max_handshakes;
    uint64_t idle_ms; /* 0: never evicted */
    uv_timer_t cookie_timer;
    uv_timer_t sweep_timer;
    int open_handles; /* the server is freed when both timers have closed */
    dtls_stats_t stats;
    log_limiter_t failure_log;
    log_limiter_t cap_log;
};

const char *dtls_failure_name(dtls_failure_t reason)
{
    switch (reason) {
    case DTLS_FAIL_UNKNOWN_IDENTITY:
        return "unknown psk identity";
    case DTLS_FAIL_BAD_KEY:
        return "bad key";
    case DTLS_FAIL_UNKNOWN_RPK:
        return "unknown raw public key";
    case DTLS_FAIL_BAD_CERT:
        return "bad certificate";
    case DTLS_FAIL_CERT_EXPIRED:
        return "certificate expired";
    case DTLS_FAIL_CN_MISMATCH:
        return "no device for certificate";
    case DTLS_FAIL_TIMEOUT:
        return "timeout";
    case DTLS_FAIL_PROTOCOL:
        return "protocol error";
    default:
        return "unknown";
    }
}

static const char *mode_name(store_security_t mode)
{
    switch (mode) {
    case STORE_SECURITY_PSK:
        return "psk";
    case STORE_SECURITY_RPK:
        return "rpk";
    case STORE_SECURITY_X509:
        return "x509";
    default:
        return "nosec";
    }
}

static void list_append(conn_list_t *list, dtls_conn_t *conn)
{
    conn->next = NULL;
    conn->prev = list->tail;
    if (list->tail != NULL) {
        list->tail->next = conn;
    } else {
        list->head = conn;
    }
    list->tail = conn;
}

static void list_remove(conn_list_t *list, dtls_conn_t *conn)
{
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        list->head = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    } else {
        list->tail = conn->prev;
    }
    conn->prev = NULL;
    conn->next = NULL;
}

/* The peer's conn in the given state, or NULL. */
static dtls_conn_t *find_conn(const dtls_server_t *server, const net_addr_t *peer,
                              dtls_conn_state_t state)
{
    uint64_t hash = net_addr_hash(peer, server->hash_seed);
    for (htable_node_t *node = htable_first(&server->peers, hash); node != NULL;
         node = htable_next(node, hash)) {
        dtls_conn_t *conn = HTABLE_ENTRY(node, dtls_conn_t, node);
        if (conn->state == state && net_addr_equal(&conn->peer, peer)) {
            return conn;
        }
    }
    return NULL;
}

/* Takes a conn out of the table and its list, fixes the counters and frees it. */
static void drop_conn(dtls_server_t *server, dtls_conn_t *conn)
{
    htable_remove(&server->peers, &conn->node);
    if (conn->state == DTLS_CONN_HANDSHAKE) {
        list_remove(&server->handshakes, conn);
        server->stats.handshakes--;
    } else {
        list_remove(&server->sessions, conn);
        server->stats.sessions--;
    }
    dtls_conn_free(conn);
}

/* An established session ends: tell the layers above, then free it. */
static void end_session(dtls_server_t *server, dtls_conn_t *conn, bool send_bye)
{
    net_addr_t peer = conn->peer;
    if (send_bye) {
        dtls_conn_bye(conn);
    }
    drop_conn(server, conn);
    if (server->callbacks.closed != NULL) {
        server->callbacks.closed(server->callbacks.ctx, &peer);
    }
}

/* The conn's server: the shared state is a member of it. */
static dtls_server_t *server_of(dtls_conn_t *conn)
{
    return (dtls_server_t *)((char *)conn->shared - offsetof(dtls_server_t, shared));
}

/* " (N suppressed)" when the limiter dropped lines since the last one written; resets it. */
static const char *suppressed_note(log_limiter_t *limiter, char *buf, size_t size)
{
    buf[0] = '\0';
    if (limiter->suppressed > 0) {
        snprintf(buf, size, " (%llu similar suppressed)", (unsigned long long)limiter->suppressed);
        limiter->suppressed = 0;
    }
    return buf;
}

/* One warn line per failed handshake, rate-limited (peer faults). */
static void log_failure(dtls_server_t *server, const dtls_conn_t *conn)
{
    if (!log_limiter_allow(&server->failure_log, uv_now(server->loop))) {
        return;
    }
    char peer[NET_ADDR_STRING_MAX];
    char note[48];
    net_addr_format(&conn->peer, peer, sizeof(peer));
    log_warn("dtls peer %s: %s handshake failed (%s%s%s)%s", peer, dtls_conn_mode_name(conn),
             dtls_failure_name(conn->failure), conn->detail[0] != '\0' ? ", " : "", conn->detail,
             suppressed_note(&server->failure_log, note, sizeof(note)));
}

/* A handshake failed: count, log, tell the peer, free. */
static void fail_handshake(dtls_server_t *server, dtls_conn_t *conn)
{
    uv_timer_stop(&conn->timer);
    if (!conn->failure_set) {
        dtls_conn_set_failure(conn, DTLS_FAIL_PROTOCOL, NULL);
    }
    server->stats.failures[conn->failure]++;
    log_failure(server, conn);
    dtls_conn_alert_failure(conn);
    drop_conn(server, conn);
}

static void log_established(const dtls_conn_t *conn, bool resumed)
{
    char peer[NET_ADDR_STRING_MAX];
    const char *suite = gnutls_ciphersuite_get(conn->session);
    log_debug("dtls peer %s: endpoint '%s' authenticated (%s, %s%s)",
              net_addr_format(&conn->peer, peer, sizeof(peer)), conn->auth.endpoint,
              mode_name(conn->auth.mode), suite != NULL ? suite : "?", resumed ? ", resumed" : "");
}

/*
 * The handshake finished: authenticate, then the conn replaces the
 * peer's older session, if any (a rebooted device). False when the conn
 * was refused and freed.
 */
static bool establish(dtls_server_t *server, dtls_conn_t *conn)
{
    uv_timer_stop(&conn->timer);
    if (dtls_auth_established(conn) != 0) {
        fail_handshake(server, conn);
        return false;
    }

    dtls_conn_t *old = find_conn(server, &conn->peer, DTLS_CONN_ESTABLISHED);
    if (old != NULL) {
        end_session(server, old, false);
    } else if (server->stats.sessions >= server->max_sessions) {
        /* Only when the old session was evicted while this one shook hands. */
        server->stats.rejected_at_cap++;
        dtls_conn_bye(conn);
        drop_conn(server, conn);
        return false;
    }

    list_remove(&server->handshakes, conn);
    server->stats.handshakes--;
    conn->state = DTLS_CONN_ESTABLISHED;
    conn->last_active_ms = uv_now(server->loop);
    list_append(&server->sessions, conn);
    server->stats.sessions++;
    server->stats.handshakes_completed++;
    bool resumed = gnutls_session_is_resumed(conn->session) != 0;
    if (resumed) {
        server->stats.handshakes_resumed++;
    }
    if (log_enabled(LOG_LEVEL_DEBUG)) {
        log_established(conn, resumed);
    }
    return true;
}

/* The session saw traffic: it moves to the young end of the idle list. */
static void touch_session(dtls_server_t *server, dtls_conn_t *conn)
{
    if (server->sessions.tail != conn) {
        list_remove(&server->sessions, conn);
        list_append(&server->sessions, conn);
    }
}

/* Records from an established session's datagram (data NULL: left over from its handshake). */
static void read_session(dtls_server_t *server, dtls_conn_t *conn, const uint8_t *data, size_t len)
{
    uint64_t active_before = conn->last_active_ms;
    dtls_read_t result = dtls_conn_read(conn, data, len, uv_now(server->loop));
    if (conn->close_asked || result != DTLS_READ_OK) {
        end_session(server, conn, result == DTLS_READ_OK);
        return;
    }
    if (conn->last_active_ms != active_before) {
        touch_session(server, conn);
    }
}

static void on_handshake_timer(uv_timer_t *timer);

/* Runs one handshake step on a datagram (NULL: the timer fired) and acts on the result. */
static void drive_handshake(dtls_server_t *server, dtls_conn_t *conn, const uint8_t *data,
                            size_t len)
{
    uint64_t now = uv_now(server->loop);
    switch (dtls_conn_handshake(conn, data, len, now)) {
    case DTLS_STEP_CONTINUE:
        uv_timer_start(&conn->timer, on_handshake_timer, dtls_conn_handshake_wait(conn, now), 0);
        return;
    case DTLS_STEP_FAILED:
        fail_handshake(server, conn);
        return;
    case DTLS_STEP_ESTABLISHED:
        /* The datagram may hold application data behind the Finished. */
        if (establish(server, conn)) {
            read_session(server, conn, NULL, 0);
        }
        return;
    }
}

/* GnuTLS retransmits its last flight, or gives up, when called after the timeout (RFC 6347 4.2.4).
 */
static void on_handshake_timer(uv_timer_t *timer)
{
    dtls_conn_t *conn = timer->data;
    drive_handshake(server_of(conn), conn, NULL, 0);
}

/*
 * True, counted and logged, when one more handshake would pass a cap. A
 * new peer must fit the session cap once every handshake in flight has
 * finished; a peer that replaces its session needs only a handshake slot.
 */
static bool over_cap(dtls_server_t *server, const net_addr_t *peer, bool replaces)
{
    uint64_t would_be = (uint64_t)server->stats.sessions + server->stats.handshakes;
    if (server->stats.handshakes < server->max_handshakes &&
        (replaces || would_be < server->max_sessions)) {
        return false;
    }

    server->stats.rejected_at_cap++;
    if (log_limiter_allow(&server->cap_log, uv_now(server->loop))) {
        char addr[NET_ADDR_STRING_MAX];
        char note[48];
        log_warn("dtls peer %s: ClientHello dropped (%u handshakes, %u sessions; caps %u, %u)%s",
                 net_addr_format(peer, addr, sizeof(addr)), server->stats.handshakes,
                 server->stats.sessions, server->max_handshakes, server->max_sessions,
                 suppressed_note(&server->cap_log, note, sizeof(note)));
    }
    return true;
}

/* A ClientHello that passed the cookie check: start a handshake unless at a cap. */
static void start_handshake(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data,
                            size_t len, const gnutls_dtls_prestate_st *prestate, bool replaces)
{
    if (over_cap(server, peer, replaces)) {
        return;
    }

    dtls_conn_t *conn = NULL;
    int rc = dtls_conn_new(&server->shared, peer, data, len, prestate, uv_now(server->loop), &conn);
    if (rc != LWM2MD_OK) {
        log_error("dtls: cannot start a handshake (%s)", lwm2md_strerror(rc));
        return;
    }
    htable_insert(&server->peers, &conn->node, net_addr_hash(peer, server->hash_seed));
    list_append(&server->handshakes, conn);
    server->stats.handshakes++;
    server->stats.handshakes_started++;
    drive_handshake(server, conn, data, len);
}

/* The HelloVerifyRequest goes straight to the socket: no state for this peer. */
typedef struct cookie_reply {
    dtls_server_t *server;
    const net_addr_t *peer;
} cookie_reply_t;

static int send_cookie_datagram(void *ctx, const uint8_t *data, size_t len)
{
    const cookie_reply_t *reply = ctx;
    const dtls_callbacks_t *callbacks = &reply->server->callbacks;
    return callbacks->send_datagram(callbacks->ctx, reply->peer, data, len);
}

/*
 * RFC 6347 4.2.1: a ClientHello without a valid cookie gets a
 * HelloVerifyRequest and nothing is kept; one with a cookie proves the
 * peer receives at its address, and only then is a session allocated.
 */
static void on_client_hello(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data,
                            size_t len)
{
    gnutls_dtls_prestate_st prestate;
    if (!dtls_cookie_verify(&server->cookie, peer, data, len, &prestate)) {
        cookie_reply_t reply = {server, peer};
        if (dtls_cookie_send(&server->cookie, peer, data, len, send_cookie_datagram, &reply) ==
            LWM2MD_OK) {
            server->stats.cookies_sent++;
        }
        return;
    }

    /* A retransmitted ClientHello belongs to the handshake it started. */
    dtls_conn_t *handshake = find_conn(server, peer, DTLS_CONN_HANDSHAKE);
    if (handshake != NULL) {
        drive_handshake(server, handshake, data, len);
        return;
    }

    /* A late copy of the hello behind the current session is no reboot. */
    dtls_conn_t *session = find_conn(server, peer, DTLS_CONN_ESTABLISHED);
    if (session != NULL && dtls_conn_started_by(session, data, len)) {
        return;
    }
    start_handshake(server, peer, data, len, &prestate, session != NULL);
}

void dtls_server_input(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data,
                       size_t len)
{
    /* Anything that is not whole DTLS records is dropped silently (RFC 6347 4.1.2.7). */
    dtls_datagram_info_t info;
    dtls_datagram_scan(data, len, &info);
    if (!info.valid) {
        return;
    }
    if (info.client_hello) {
        on_client_hello(server, peer, data, len);
        return;
    }

    /*
     * While a rebooted device shakes hands again, its old session stays:
     * handshake records and alerts go to the new handshake, application
     * data to the old session.
     */
    dtls_conn_t *handshake = find_conn(server, peer, DTLS_CONN_HANDSHAKE);
    dtls_conn_t *session = find_conn(server, peer, DTLS_CONN_ESTABLISHED);
    bool for_handshake = info.handshake || info.alert || session == NULL;
    if (handshake != NULL && for_handshake) {
        drive_handshake(server, handshake, data, len);
    } else if (session != NULL) {
        read_session(server, session, data, len);
    }
}

int dtls_server_send(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    dtls_conn_t *session = find_conn(server, peer, DTLS_CONN_ESTABLISHED);
    if (session == NULL) {
        return LWM2MD_ERR_NOT_FOUND;
    }
    return dtls_conn_send(session, data, len);
}

void dtls_server_close(dtls_server_t *server, const net_addr_t *peer)
{
    dtls_conn_t *session = find_conn(server, peer, DTLS_CONN_ESTABLISHED);
    if (session == NULL) {
        return;
    }

    /* Inside deliver the read loop still holds the conn; it ends the session on return. */
    if (session->delivering) {
        session->close_asked = true;
        return;
    }
    end_session(server, session, true);
}

void dtls_server_get_stats(const dtls_server_t *server, dtls_stats_t *out)
{
    *out = server->stats;
}

/* Sessions idle longer than the setting end; the list is oldest first, so this stops early. */
static void on_sweep_timer(uv_timer_t *timer)
{
    dtls_server_t *server = timer->data;
    uint64_t now = uv_now(server->loop);
    while (server->sessions.head != NULL &&
           now - server->sessions.head->last_active_ms >= server->idle_ms) {
        dtls_conn_t *idle = server->sessions.head;
        server->stats.sessions_evicted++;
        end_session(server, idle, true);
    }
}

static void on_cookie_timer(uv_timer_t *timer)
{
    dtls_server_t *server = timer->data;
    if (dtls_cookie_rotate(&server->cookie) != LWM2MD_OK) {
        log_error("dtls: cannot make a new cookie key; keeping the current one");
    }
}

static void on_timer_closed(uv_handle_t *handle)
{
    dtls_server_t *server = handle->data;
    server->open_handles--;
    if (server->open_handles == 0) {
        free(server);
    }
}

/* The two periodic timers: cookie key rotation and the idle sweep. */
static void start_timers(dtls_server_t *server, const config_t *cfg)
{
    uint64_t rotate_ms = (uint64_t)cfg->dtls_cookie_rotate_sec * 1000;
    uint64_t sweep_ms = server->idle_ms / 4;
    sweep_ms = sweep_ms < SWEEP_MIN_MS ? SWEEP_MIN_MS : sweep_ms;
    sweep_ms = sweep_ms > SWEEP_MAX_MS ? SWEEP_MAX_MS : sweep_ms;

    uv_timer_init(server->loop, &server->cookie_timer);
    uv_timer_init(server->loop, &server->sweep_timer);
    server->cookie_timer.data = server;
    server->sweep_timer.data = server;
    server->open_handles = 2;
    uv_timer_start(&server->cookie_timer, on_cookie_timer, rotate_ms, rotate_ms);
    if (server->idle_ms > 0) {
        uv_timer_start(&server->sweep_timer, on_sweep_timer, sweep_ms, sweep_ms);
    }
}

static void copy_settings(dtls_server_t *server, uv_loop_t *loop, const config_t *cfg,
                          const dtls_callbacks_t *callbacks)
{
    server->loop = loop;
    server->callbacks = *callbacks;
    server->hash_seed = random_u64();
    server->max_sessions = cfg->dtls_max_sessions;
    server->max_handshakes = cfg->dtls_max_handshakes;
    server->idle_ms = (uint64_t)cfg->dtls_session_idle_sec * 1000;
    log_limiter_init(&server->failure_log, LOG_PER_SECOND, LOG_BURST);
    log_limiter_init(&server->cap_log, LOG_PER_SECOND, LOG_BURST);
}

int dtls_server_new(uv_loop_t *loop, const config_t *cfg, const dtls_credentials_t *creds,
                    const dtls_callbacks_t *callbacks, dtls_server_t **out)
{
    if (callbacks->psk_lookup == NULL || callbacks->rpk_lookup == NULL ||
        callbacks->cert_lookup == NULL || callbacks->deliver == NULL ||
        callbacks->send_datagram == NULL || cfg->dtls_cookie_rotate_sec == 0) {
        return LWM2MD_ERR_INVALID;
    }
    dtls_server_t *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    copy_settings(server, loop, cfg, callbacks);

    /* The shared state points at server->callbacks, which lives as long as it. */
    int rc = dtls_shared_init(&server->shared, loop, cfg, creds, &server->callbacks);
    if (rc != LWM2MD_OK) {
        free(server);
        return rc;
    }
    rc = dtls_cookie_init(&server->cookie);
    if (rc == LWM2MD_OK) {
        rc = htable_init(&server->peers, 64);
        if (rc != LWM2MD_OK) {
            dtls_cookie_destroy(&server->cookie);
        }
    }
    if (rc != LWM2MD_OK) {
        dtls_shared_destroy(&server->shared);
        free(server);
        return rc;
    }
    start_timers(server, cfg);
    *out = server;
    return LWM2MD_OK;
}

/* Frees every conn of a list; established ones get close_notify first. */
static void free_list(dtls_server_t *server, conn_list_t *list)
{
    while (list->head != NULL) {
        dtls_conn_t *conn = list->head;
        if (conn->state == DTLS_CONN_ESTABLISHED) {
            dtls_conn_bye(conn);
        }
        drop_conn(server, conn);
    }
}

void dtls_server_free(dtls_server_t *server)
{
    if (server == NULL) {
        return;
    }
    free_list(server, &server->handshakes);
    free_list(server, &server->sessions);
    htable_destroy(&server->peers);
    dtls_cookie_destroy(&server->cookie);
    dtls_shared_destroy(&server->shared);

    /* libuv closes the timers on its next turn; the last close frees the server. */
    uv_close((uv_handle_t *)&server->cookie_timer, on_timer_closed);
    uv_close((uv_handle_t *)&server->sweep_timer, on_timer_closed);
}
