/* One peer's GnuTLS session inside the DTLS server: transport, handshake steps, records. */
#pragma once

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/htable.h"
#include "dtls/credentials.h"
#include "dtls/server.h"
#include "net/addr.h"

/* Largest plaintext of one record (RFC 6347 4.1, TLS 1.2 2^14). */
#define DTLS_RECORD_PLAINTEXT_MAX 16384
/* Largest datagram a coalesced flight may fill: the link MTU conn.c sets. */
#define DTLS_FLIGHT_MAX 1232
/* A failure's detail for the log line; never holds key material. */
#define DTLS_DETAIL_MAX 128

/*
 * What every session of one server shares: GnuTLS settings built once
 * at dtls_server_new. Owned by the server, used on its thread only.
 */
typedef struct dtls_shared {
    uv_loop_t *loop;
    const dtls_callbacks_t *callbacks;
    const dtls_credentials_t *creds; /* borrowed; shared by the workers */
    gnutls_priority_t priority;
    gnutls_priority_t priority_server_rpk; /* for RPK devices: only our raw public key */
    gnutls_psk_server_credentials_t psk;
    gnutls_certificate_credentials_t certificate; /* NULL when only PSK is served */
    gnutls_datum_t ticket_key;                    /* session tickets (RFC 5077) */
    unsigned int retransmit_ms;
    unsigned int handshake_timeout_ms;
    bool skip_validity_check;
    uint8_t plaintext[DTLS_RECORD_PLAINTEXT_MAX]; /* one record, read then delivered */
    /* Records of one handshake flight, sent together (see transport_push). */
    bool coalescing;
    size_t flight_len;
    uint8_t flight[DTLS_FLIGHT_MAX];
} dtls_shared_t;

typedef enum dtls_conn_state {
    DTLS_CONN_HANDSHAKE,
    DTLS_CONN_ESTABLISHED,
} dtls_conn_state_t;

/* What one handshake step came to. */
typedef enum dtls_step {
    DTLS_STEP_CONTINUE,    /* waiting for the peer or the retransmission timer */
    DTLS_STEP_ESTABLISHED, /* handshake done; authenticate, then serve */
    DTLS_STEP_FAILED,      /* conn->failure and conn->detail say why */
} dtls_step_t;

/* What reading an established session's datagram came to. */
typedef enum dtls_read {
    DTLS_READ_OK,     /* zero or more records delivered */
    DTLS_READ_CLOSED, /* the peer sent close_notify */
    DTLS_READ_FAILED, /* a fatal alert or error; the session is unusable */
} dtls_read_t;

/*
 * One GnuTLS session with one peer, in the server's table by address. A
 * peer has at most one handshake and one established session (the old
 * one is kept while a rebooted device handshakes again).
 */
typedef struct dtls_conn {
    htable_node_t node;            /* server's table, keyed by peer */
    struct dtls_conn *prev, *next; /* server's list: handshakes, or sessions by last activity */
    dtls_shared_t *shared;
    gnutls_session_t session;
    uv_timer_t timer; /* handshake retransmission; its close frees the conn */
    net_addr_t peer;
    dtls_conn_state_t state;
    const uint8_t *input; /* the datagram GnuTLS may pull, or NULL */
    size_t input_len;
    uint64_t deadline_ms; /* the handshake fails with DTLS_FAIL_TIMEOUT after this */
    uint64_t last_active_ms;
    dtls_peer_auth_t auth;
    bool authenticated;        /* auth names a provisioned endpoint */
    bool psk_identity_unknown; /* the PSK callback handed out a random key */
    bool change_cipher_spec;   /* the peer's ChangeCipherSpec has arrived */
    bool server_hello_sent;    /* the ServerHello went out: the key exchange is chosen */
    bool failure_set;          /* an authentication callback chose the failure */
    dtls_failure_t failure;
    int error; /* the gnutls_handshake result that failed it */
    char detail[DTLS_DETAIL_MAX];
    bool delivering;  /* inside callbacks->deliver: closing must wait */
    bool close_asked; /* dtls_server_close was called while delivering */
} dtls_conn_t;

/*
 * Builds the shared GnuTLS state: priority string from cfg, PSK
 * credentials, the server certificate credentials when creds has a
 * certificate, a session ticket key. 0 or a negative lwm2md_error_t; on
 * failure nothing is left allocated.
 */
int dtls_shared_init(dtls_shared_t *shared, uv_loop_t *loop, const config_t *cfg,
                     const dtls_credentials_t *creds, const dtls_callbacks_t *callbacks);
void dtls_shared_destroy(dtls_shared_t *shared);

/* Room for any priority string dtls_priority_string writes. */
#define DTLS_PRIORITY_MAX 512

/*
 * Writes the GnuTLS priority string for these settings into out;
 * server_rpk: the server presents only its raw public key.
 */
void dtls_priority_string(bool recommended_ciphers, bool recommended_groups, bool server_rpk,
                          char *out, size_t size);

/*
 * A handshake session for peer, after its ClientHello (the datagram
 * client_hello, read for its certificate type wishes) passed the cookie
 * check. Starts nothing; feed the ClientHello with dtls_conn_handshake.
 * now_ms: loop time, for the deadline. 0 or a negative lwm2md_error_t.
 */
int dtls_conn_new(dtls_shared_t *shared, const net_addr_t *peer, const uint8_t *client_hello,
                  size_t len, const gnutls_dtls_prestate_st *prestate, uint64_t now_ms,
                  dtls_conn_t **out);

/*
 * Frees the GnuTLS session now and the conn once libuv has closed its
 * timer. The conn must be out of every table and list.
 */
void dtls_conn_free(dtls_conn_t *conn);

/*
 * Runs the handshake on a datagram (data NULL: the retransmission timer
 * fired). Maps every gnutls_handshake result to a step.
 */
/* Sends the records gathered during a handshake step, if any, as one datagram. */
void dtls_conn_flush_flight(dtls_conn_t *conn);

dtls_step_t dtls_conn_handshake(dtls_conn_t *conn, const uint8_t *data, size_t len,
                                uint64_t now_ms);

/* Milliseconds until the handshake needs dtls_conn_handshake(conn, NULL, ...) again. */
uint64_t dtls_conn_handshake_wait(const dtls_conn_t *conn, uint64_t now_ms);

/*
 * Reads a datagram's records (data NULL: records GnuTLS kept from the
 * handshake's last datagram) and hands each plaintext to
 * callbacks->deliver. Stops early when close_asked is set.
 */
dtls_read_t dtls_conn_read(dtls_conn_t *conn, const uint8_t *data, size_t len, uint64_t now_ms);

/* Encrypts and sends one record. 0, LWM2MD_ERR_TOO_BIG or LWM2MD_ERR_CRYPTO. */
int dtls_conn_send(dtls_conn_t *conn, const uint8_t *data, size_t len);

/* Sends close_notify (established) without waiting for the peer's. */
void dtls_conn_bye(dtls_conn_t *conn);

/* Sends a fatal alert, e.g. after authentication refused a finished handshake. */
void dtls_conn_alert(dtls_conn_t *conn, gnutls_alert_description_t alert);

/*
 * Tells the peer why its handshake failed, unless it went silent
 * (timeout) or sent a fatal alert itself.
 */
void dtls_conn_alert_failure(dtls_conn_t *conn);

/*
 * True when this ClientHello datagram (see dtls_datagram_scan) carries
 * the client random of the hello that started conn's handshake: a late
 * or duplicated copy, not a new handshake.
 */
bool dtls_conn_started_by(const dtls_conn_t *conn, const uint8_t *client_hello, size_t len);

/* "psk", "rpk", "x509" or "unknown" (before the ServerHello chose a key exchange). */
const char *dtls_conn_mode_name(const dtls_conn_t *conn);

/* Records why the handshake fails, once: the first reason set wins. */
void dtls_conn_set_failure(dtls_conn_t *conn, dtls_failure_t failure, const char *detail);
