/* One peer's GnuTLS session: shared settings, datagram transport, handshake steps, records. */
#include "dtls/conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/error.h"
#include "dtls/auth.h"
#include "dtls/credentials_internal.h"
#include "dtls/record.h"
#include "log/log.h"

/*
 * 1280 bytes is the IPv6 minimum MTU (RFC 8200 5); less 40 bytes of IPv6
 * and 8 of UDP header, every DTLS datagram fits any path unfragmented.
 */
enum {
    DTLS_LINK_MTU = DTLS_FLIGHT_MAX,
    HANDSHAKE_ROUNDS_MAX = 16, /* gnutls_handshake calls per datagram (warning alerts) */
    READ_ROUNDS_MAX = 128,     /* records read per datagram; each is at least 13 bytes */
    TIMER_MIN_MS = 10,
    DTLS_CONTENT_HANDSHAKE = 22,
    DTLS_HANDSHAKE_SERVER_HELLO = 2,
    DTLS_FIRST_MESSAGE_TYPE = 13,       /* after the record header */
    CLIENT_RANDOM_OFFSET = 13 + 12 + 2, /* record header, handshake header, client_version */
    CLIENT_RANDOM_SIZE = 32,
};

/*
 * Cipher suites (RFC 7925 4.3 and 4.4, LwM2M 1.1 core 7.1): PSK and
 * ECDHE-ECDSA with AES-128 in CCM-8, CCM, GCM and CBC-SHA256, DTLS 1.2
 * only. TLS_PSK_WITH_AES_128_CCM_8 and TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8
 * are the suites LwM2M mandates. The "recommended ciphers" setting keeps
 * only AEAD suites (drops CBC); the "recommended groups" setting keeps
 * secp256r1 and secp384r1, the two curves our server keys may use, and
 * drops secp521r1 and x25519. Client preference picks among them.
 */
#define PRIORITY_BASE                                                                              \
    "NONE:+VERS-DTLS1.2:+COMP-NULL:+PSK:+ECDHE-ECDSA:+AES-128-CCM-8:+AES-128-CCM:+AES-128-GCM:"    \
    "+AEAD:+SIGN-ECDSA-SECP256R1-SHA256:+SIGN-ECDSA-SECP384R1-SHA384:+SIGN-ECDSA-SHA256:"          \
    "+SIGN-ECDSA-SHA384:+CTYPE-CLI-RAWPK:+CTYPE-CLI-X509"
#define PRIORITY_CBC ":+AES-128-CBC:+SHA256"
#define PRIORITY_GROUPS ":+GROUP-SECP256R1:+GROUP-SECP384R1"
#define PRIORITY_MORE_GROUPS ":+GROUP-SECP521R1:+GROUP-X25519"
/*
 * GnuTLS takes the server's certificate type in the client's order of
 * preference (RFC 7250 4.2), and clients such as libcoap list X.509
 * first even when they authenticate with a raw public key. An RPK
 * device expects the server's raw public key (LwM2M 1.1 core E.1,
 * Server Public Key), so for a ClientHello that leads with a raw public
 * key the server offers only its own.
 */
#define PRIORITY_SERVER_ANY ":+CTYPE-SRV-RAWPK:+CTYPE-SRV-X509"
#define PRIORITY_SERVER_RPK ":+CTYPE-SRV-RAWPK"

void dtls_priority_string(bool recommended_ciphers, bool recommended_groups, bool server_rpk,
                          char *out, size_t size)
{
    snprintf(out, size, "%s%s%s%s%s", PRIORITY_BASE, recommended_ciphers ? "" : PRIORITY_CBC,
             PRIORITY_GROUPS, recommended_groups ? "" : PRIORITY_MORE_GROUPS,
             server_rpk ? PRIORITY_SERVER_RPK : PRIORITY_SERVER_ANY);
}

static int init_priority(gnutls_priority_t *priority, const config_t *cfg, bool server_rpk)
{
    char text[DTLS_PRIORITY_MAX];
    dtls_priority_string(cfg->recommended_ciphers, cfg->recommended_supported_groups, server_rpk,
                         text, sizeof(text));
    if (gnutls_priority_init(priority, text, NULL) < 0) {
        log_error("dtls: gnutls rejected the priority string '%s'", text);
        return LWM2MD_ERR_CRYPTO;
    }
    return LWM2MD_OK;
}

int dtls_shared_init(dtls_shared_t *shared, uv_loop_t *loop, const config_t *cfg,
                     const dtls_credentials_t *creds, const dtls_callbacks_t *callbacks)
{
    memset(shared, 0, sizeof(*shared));
    shared->loop = loop;
    shared->callbacks = callbacks;
    shared->creds = creds;
    shared->retransmit_ms = cfg->dtls_retransmission_timeout_ms;
    shared->handshake_timeout_ms = cfg->dtls_handshake_timeout_ms;
    shared->skip_validity_check = cfg->skip_validity_check_for_client_cert;

    if (init_priority(&shared->priority, cfg, false) != LWM2MD_OK ||
        init_priority(&shared->priority_server_rpk, cfg, true) != LWM2MD_OK) {
        dtls_shared_destroy(shared);
        return LWM2MD_ERR_CRYPTO;
    }

    if (gnutls_psk_allocate_server_credentials(&shared->psk) < 0) {
        dtls_shared_destroy(shared);
        return LWM2MD_ERR_NOMEM;
    }
    gnutls_psk_set_server_credentials_function2(shared->psk, dtls_auth_psk_key);

    if (creds != NULL && dtls_credentials_has_certificate(creds)) {
        shared->certificate = dtls_credentials_certificate(creds);
    }

    if (gnutls_session_ticket_key_generate(&shared->ticket_key) < 0) {
        dtls_shared_destroy(shared);
        return LWM2MD_ERR_CRYPTO;
    }
    return LWM2MD_OK;
}

void dtls_shared_destroy(dtls_shared_t *shared)
{
    if (shared->priority != NULL) {
        gnutls_priority_deinit(shared->priority);
        shared->priority = NULL;
    }
    if (shared->priority_server_rpk != NULL) {
        gnutls_priority_deinit(shared->priority_server_rpk);
        shared->priority_server_rpk = NULL;
    }
    if (shared->psk != NULL) {
        gnutls_psk_free_server_credentials(shared->psk);
        shared->psk = NULL;
    }
    if (shared->ticket_key.data != NULL) {
        gnutls_memset(shared->ticket_key.data, 0, shared->ticket_key.size);
        gnutls_free(shared->ticket_key.data);
        shared->ticket_key.data = NULL;
    }
    shared->certificate = NULL; /* borrowed from creds */
}

/* Transport: one received datagram is pulled once; sends go to the caller's UDP socket. */
static ssize_t transport_push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    dtls_conn_t *conn = ptr;
    const dtls_callbacks_t *callbacks = conn->shared->callbacks;
    const uint8_t *bytes = data;
    if (len > DTLS_FIRST_MESSAGE_TYPE && bytes[0] == DTLS_CONTENT_HANDSHAKE &&
        bytes[DTLS_FIRST_MESSAGE_TYPE] == DTLS_HANDSHAKE_SERVER_HELLO) {
        conn->server_hello_sent = true;
    }

    /*
     * During a handshake step the records of a flight are gathered into as
     * few datagrams as the MTU allows (RFC 6347 4.1.1 lets a datagram hold
     * several records). GnuTLS 3.7.9 clients can miss a final flight that
     * arrives as several datagrams within one of their handshake calls.
     */
    dtls_shared_t *shared = conn->shared;
    if (shared->coalescing && len <= sizeof(shared->flight)) {
        if (shared->flight_len + len > sizeof(shared->flight)) {
            dtls_conn_flush_flight(conn);
        }
        memcpy(shared->flight + shared->flight_len, data, len);
        shared->flight_len += len;
        return (ssize_t)len;
    }

    /* A datagram the socket drops is lost as UDP may lose it; DTLS retransmits. */
    (void)callbacks->send_datagram(callbacks->ctx, &conn->peer, data, len);
    return (ssize_t)len;
}

void dtls_conn_flush_flight(dtls_conn_t *conn)
{
    dtls_shared_t *shared = conn->shared;
    if (shared->flight_len > 0) {
        const dtls_callbacks_t *callbacks = shared->callbacks;
        (void)callbacks->send_datagram(callbacks->ctx, &conn->peer, shared->flight,
                                       shared->flight_len);
        shared->flight_len = 0;
    }
}

static ssize_t transport_pull(gnutls_transport_ptr_t ptr, void *buf, size_t size)
{
    dtls_conn_t *conn = ptr;
    if (conn->input == NULL) {
        gnutls_transport_set_errno(conn->session, EAGAIN);
        return -1;
    }

    size_t len = conn->input_len < size ? conn->input_len : size;
    memcpy(buf, conn->input, len);
    conn->input = NULL;
    conn->input_len = 0;
    return (ssize_t)len;
}

/* Non-blocking: data is ready exactly when a datagram is being fed. */
static int transport_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
    const dtls_conn_t *conn = ptr;
    return conn->input != NULL ? 1 : 0;
}

static void conn_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void dtls_conn_free(dtls_conn_t *conn)
{
    if (conn->session != NULL) {
        gnutls_deinit(conn->session);
        conn->session = NULL;
    }
    uv_close((uv_handle_t *)&conn->timer, conn_timer_closed);
}

/* Settings of one session: credentials, tickets, timeouts, transport. */
static int configure_session(dtls_conn_t *conn, const gnutls_dtls_prestate_st *prestate,
                             bool server_rpk)
{
    dtls_shared_t *shared = conn->shared;
    gnutls_session_t session = conn->session;

    gnutls_priority_t priority = server_rpk ? shared->priority_server_rpk : shared->priority;
    if (gnutls_priority_set(session, priority) < 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_PSK, shared->psk) < 0 ||
        gnutls_session_ticket_enable_server(session, &shared->ticket_key) < 0) {
        return LWM2MD_ERR_CRYPTO;
    }

    /* Certificates: the client must present one when a certificate suite is chosen. */
    if (shared->certificate != NULL) {
        if (gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, shared->certificate) < 0) {
            return LWM2MD_ERR_CRYPTO;
        }
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        /* No CA list in CertificateRequest: a GnuTLS client then sends a pinned self-signed one. */
        gnutls_certificate_send_x509_rdn_sequence(session, 1);
        gnutls_session_set_verify_function(session, dtls_auth_verify_certificate);
    }

    gnutls_dtls_set_timeouts(session, shared->retransmit_ms, shared->handshake_timeout_ms);
    gnutls_dtls_set_mtu(session, DTLS_LINK_MTU);
    gnutls_session_set_ptr(session, conn);
    gnutls_transport_set_ptr(session, conn);
    gnutls_transport_set_push_function(session, transport_push);
    gnutls_transport_set_pull_function(session, transport_pull);
    gnutls_transport_set_pull_timeout_function(session, transport_pull_timeout);

    /* The cookie exchange already used sequence numbers; continue from them. */
    gnutls_dtls_prestate_set(session, (gnutls_dtls_prestate_st *)prestate);
    return LWM2MD_OK;
}

int dtls_conn_new(dtls_shared_t *shared, const net_addr_t *peer, const uint8_t *client_hello,
                  size_t len, const gnutls_dtls_prestate_st *prestate, uint64_t now_ms,
                  dtls_conn_t **out)
{
    dtls_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    if (uv_timer_init(shared->loop, &conn->timer) != 0) {
        free(conn);
        return LWM2MD_ERR_IO;
    }
    conn->timer.data = conn;
    conn->shared = shared;
    conn->peer = *peer;
    conn->state = DTLS_CONN_HANDSHAKE;
    conn->deadline_ms = now_ms + shared->handshake_timeout_ms;
    conn->last_active_ms = now_ms;

    /* Raw public keys (RFC 7250) are negotiated only when asked for. */
    unsigned int flags = GNUTLS_SERVER | GNUTLS_DATAGRAM | GNUTLS_NONBLOCK;
    if (shared->certificate != NULL) {
        flags |= GNUTLS_ENABLE_RAWPK;
    }
    int rc = LWM2MD_ERR_NOMEM;
    if (gnutls_init(&conn->session, flags) == 0) {
        bool server_rpk =
            shared->certificate != NULL && dtls_client_hello_wants_rpk(client_hello, len);
        rc = configure_session(conn, prestate, server_rpk);
    }
    if (rc != LWM2MD_OK) {
        dtls_conn_free(conn);
        return rc;
    }
    *out = conn;
    return LWM2MD_OK;
}

void dtls_conn_set_failure(dtls_conn_t *conn, dtls_failure_t failure, const char *detail)
{
    if (conn->failure_set) {
        return;
    }
    conn->failure_set = true;
    conn->failure = failure;
    if (detail != NULL) {
        snprintf(conn->detail, sizeof(conn->detail), "%s", detail);
    }
}

const char *dtls_conn_mode_name(const dtls_conn_t *conn)
{
    if (!conn->server_hello_sent) {
        return "unknown";
    }
    switch (gnutls_kx_get(conn->session)) {
    case GNUTLS_KX_PSK:
        return "psk";
    case GNUTLS_KX_ECDHE_ECDSA:
        break;
    default:
        return "unknown";
    }
    switch (gnutls_certificate_type_get2(conn->session, GNUTLS_CTYPE_CLIENT)) {
    case GNUTLS_CRT_RAWPK:
        return "rpk";
    case GNUTLS_CRT_X509:
        return "x509";
    default:
        return "unknown";
    }
}

/*
 * The peer's Finished did not decrypt. With PSK that means a wrong key,
 * or an unknown identity that was given a random key: the two look the
 * same on the wire and differ only here, in our own log.
 */
static dtls_step_t fail_finished(dtls_conn_t *conn)
{
    if (gnutls_kx_get(conn->session) != GNUTLS_KX_PSK) {
        dtls_conn_set_failure(conn, DTLS_FAIL_PROTOCOL, "finished message did not decrypt");
    } else if (conn->psk_identity_unknown) {
        dtls_conn_set_failure(conn, DTLS_FAIL_UNKNOWN_IDENTITY, NULL);
    } else {
        dtls_conn_set_failure(conn, DTLS_FAIL_BAD_KEY, NULL);
    }
    return DTLS_STEP_FAILED;
}

static dtls_step_t fail_with(dtls_conn_t *conn, dtls_failure_t failure, const char *detail)
{
    dtls_conn_set_failure(conn, failure, detail);
    return DTLS_STEP_FAILED;
}

/*
 * Every gnutls_handshake result, mapped to a step.
 *
 * Notes on GnuTLS 3.7.9 (Debian 12):
 * - DTLS drops records that fail to decrypt and answers GNUTLS_E_AGAIN
 *   (RFC 6347 4.1.2.7), so a wrong PSK never surfaces here as
 *   GNUTLS_E_DECRYPTION_FAILED: it is caught by finished_discarded().
 *   The two decryption codes below stay for a future GnuTLS that reports.
 * - GNUTLS_E_TIMEDOUT only comes out of a gnutls_handshake call; with
 *   GNUTLS_NONBLOCK nothing calls it but our timer.
 * - The verify function also runs when the client's Certificate is
 *   empty; GNUTLS_CERT_REQUIRE makes that GNUTLS_E_NO_CERTIFICATE_FOUND.
 * - A warning alert (e.g. no_certificate from an old client) returns
 *   GNUTLS_E_WARNING_ALERT_RECEIVED; the handshake goes on.
 * - GNUTLS_E_GOT_APPLICATION_DATA only happens on a rehandshake, which
 *   this server never starts.
 * - A failure before the ServerHello (no common cipher suite) gets its
 *   alert, but a GnuTLS 3.7.9 client ignores it and retransmits its
 *   ClientHello until its own timeout; each copy fails again here.
 */
static dtls_step_t map_handshake_result(dtls_conn_t *conn, int rc)
{
    switch (rc) {
    case GNUTLS_E_SUCCESS:
        return DTLS_STEP_ESTABLISHED;
    case GNUTLS_E_AGAIN:
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_WARNING_ALERT_RECEIVED:
    case GNUTLS_E_GOT_APPLICATION_DATA:
        return DTLS_STEP_CONTINUE;
    case GNUTLS_E_TIMEDOUT:
        return fail_with(conn, DTLS_FAIL_TIMEOUT, NULL);
    case GNUTLS_E_CERTIFICATE_ERROR:
    case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
        return fail_with(conn, DTLS_FAIL_BAD_CERT, gnutls_strerror(rc));
    case GNUTLS_E_NO_CERTIFICATE_FOUND:
        return fail_with(conn, DTLS_FAIL_BAD_CERT, "no client certificate");
    case GNUTLS_E_DECRYPTION_FAILED:
    case GNUTLS_E_ERROR_IN_FINISHED_PACKET:
        return fail_finished(conn);
    case GNUTLS_E_FATAL_ALERT_RECEIVED: {
        char detail[DTLS_DETAIL_MAX];
        const char *alert = gnutls_alert_get_name(gnutls_alert_get(conn->session));
        snprintf(detail, sizeof(detail), "peer sent alert '%s'", alert ? alert : "?");
        return fail_with(conn, DTLS_FAIL_PROTOCOL, detail);
    }
    default:
        if (!gnutls_error_is_fatal(rc)) {
            return DTLS_STEP_CONTINUE;
        }
        return fail_with(conn, DTLS_FAIL_PROTOCOL, gnutls_strerror(rc));
    }
}

/*
 * True when this datagram carried encrypted records after the peer's
 * ChangeCipherSpec and GnuTLS dropped one: the peer's Finished, made
 * with keys we do not share. A reordered Finished that overtook the
 * ChangeCipherSpec does not count (change_cipher_spec is still false).
 */
static bool finished_discarded(const dtls_conn_t *conn, const dtls_datagram_info_t *info,
                               unsigned int discarded_before)
{
    return info->encrypted && conn->change_cipher_spec &&
           gnutls_record_get_discarded(conn->session) > discarded_before;
}

dtls_step_t dtls_conn_handshake(dtls_conn_t *conn, const uint8_t *data, size_t len, uint64_t now_ms)
{
    dtls_datagram_info_t info;
    memset(&info, 0, sizeof(info));
    if (data != NULL) {
        dtls_datagram_scan(data, len, &info);
        conn->change_cipher_spec = conn->change_cipher_spec || info.change_cipher_spec;
    }
    unsigned int discarded_before = gnutls_record_get_discarded(conn->session);

    /* Feed the datagram; warning alerts interrupt, later records are still buffered. */
    conn->input = data;
    conn->input_len = len;
    int rc = GNUTLS_E_AGAIN;
    conn->shared->coalescing = true;
    for (int round = 0; round < HANDSHAKE_ROUNDS_MAX; round++) {
        rc = gnutls_handshake(conn->session);
        if (rc != GNUTLS_E_WARNING_ALERT_RECEIVED && rc != GNUTLS_E_INTERRUPTED) {
            break;
        }
    }
    conn->shared->coalescing = false;
    dtls_conn_flush_flight(conn);
    conn->input = NULL;

    dtls_step_t step = map_handshake_result(conn, rc);
    if (step == DTLS_STEP_CONTINUE && finished_discarded(conn, &info, discarded_before)) {
        step = fail_finished(conn);
    }
    if (step == DTLS_STEP_CONTINUE && now_ms >= conn->deadline_ms) {
        step = fail_with(conn, DTLS_FAIL_TIMEOUT, NULL);
    }
    conn->error = rc;
    return step;
}

uint64_t dtls_conn_handshake_wait(const dtls_conn_t *conn, uint64_t now_ms)
{
    uint64_t wait = gnutls_dtls_get_timeout(conn->session);
    if (conn->deadline_ms > now_ms && conn->deadline_ms - now_ms < wait) {
        wait = conn->deadline_ms - now_ms;
    }
    return wait < TIMER_MIN_MS ? TIMER_MIN_MS : wait;
}

static void deliver(dtls_conn_t *conn, size_t len, uint64_t now_ms)
{
    const dtls_callbacks_t *callbacks = conn->shared->callbacks;
    conn->last_active_ms = now_ms;
    conn->delivering = true;
    callbacks->deliver(callbacks->ctx, &conn->peer, &conn->auth, conn->shared->plaintext, len);
    conn->delivering = false;
}

/*
 * A non-positive gnutls_record_recv result: more to read, or the end.
 * Renegotiation is refused with a warning (RFC 5246 7.2.2).
 */
static bool read_ended(dtls_conn_t *conn, ssize_t rc, dtls_read_t *result)
{
    switch (rc) {
    case 0:
        *result = DTLS_READ_CLOSED;
        return true;
    case GNUTLS_E_AGAIN:
        *result = DTLS_READ_OK;
        return true;
    case GNUTLS_E_INTERRUPTED:
    case GNUTLS_E_WARNING_ALERT_RECEIVED:
        return false;
    case GNUTLS_E_REHANDSHAKE:
        gnutls_alert_send(conn->session, GNUTLS_AL_WARNING, GNUTLS_A_NO_RENEGOTIATION);
        return false;
    default:
        *result = gnutls_error_is_fatal((int)rc) ? DTLS_READ_FAILED : DTLS_READ_OK;
        return true;
    }
}

dtls_read_t dtls_conn_read(dtls_conn_t *conn, const uint8_t *data, size_t len, uint64_t now_ms)
{
    dtls_read_t result = DTLS_READ_OK;
    conn->input = data;
    conn->input_len = len;
    for (int round = 0; round < READ_ROUNDS_MAX && !conn->close_asked; round++) {
        ssize_t rc = gnutls_record_recv(conn->session, conn->shared->plaintext,
                                        sizeof(conn->shared->plaintext));
        if (rc > 0) {
            deliver(conn, (size_t)rc, now_ms);
        } else if (read_ended(conn, rc, &result)) {
            break;
        }
    }
    conn->input = NULL;
    return result;
}

int dtls_conn_send(dtls_conn_t *conn, const uint8_t *data, size_t len)
{
    if (len > gnutls_dtls_get_data_mtu(conn->session)) {
        return LWM2MD_ERR_TOO_BIG;
    }
    ssize_t rc = gnutls_record_send(conn->session, data, len);
    if (rc == GNUTLS_E_LARGE_PACKET) {
        return LWM2MD_ERR_TOO_BIG;
    }
    return rc < 0 ? LWM2MD_ERR_CRYPTO : LWM2MD_OK;
}

void dtls_conn_bye(dtls_conn_t *conn)
{
    /* SHUT_WR: send close_notify and do not wait for the peer's (RFC 5246 7.2.1). */
    (void)gnutls_bye(conn->session, GNUTLS_SHUT_WR);
}

void dtls_conn_alert(dtls_conn_t *conn, gnutls_alert_description_t alert)
{
    (void)gnutls_alert_send(conn->session, GNUTLS_AL_FATAL, alert);
}

void dtls_conn_alert_failure(dtls_conn_t *conn)
{
    if (conn->failure == DTLS_FAIL_TIMEOUT || conn->error == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        return;
    }

    /* RFC 4279 2: decrypt_error for both, so an unknown identity looks like a wrong key. */
    if (conn->failure == DTLS_FAIL_BAD_KEY || conn->failure == DTLS_FAIL_UNKNOWN_IDENTITY) {
        dtls_conn_alert(conn, GNUTLS_A_DECRYPT_ERROR);
        return;
    }

    /* The handshake finished but the identity was refused; or the Finished did not decrypt. */
    if (conn->error == GNUTLS_E_SUCCESS) {
        dtls_conn_alert(conn, GNUTLS_A_ACCESS_DENIED);
    } else if (conn->error == GNUTLS_E_AGAIN) {
        dtls_conn_alert(conn, GNUTLS_A_BAD_RECORD_MAC);
    } else {
        (void)gnutls_alert_send_appropriate(conn->session, conn->error);
    }
}

bool dtls_conn_started_by(const dtls_conn_t *conn, const uint8_t *client_hello, size_t len)
{
    gnutls_datum_t client_random = {NULL, 0};
    gnutls_datum_t server_random = {NULL, 0};
    if (len < CLIENT_RANDOM_OFFSET + CLIENT_RANDOM_SIZE) {
        return false;
    }
    gnutls_session_get_random(conn->session, &client_random, &server_random);
    return client_random.size == CLIENT_RANDOM_SIZE &&
           memcmp(client_random.data, client_hello + CLIENT_RANDOM_OFFSET, CLIENT_RANDOM_SIZE) == 0;
}
