/* DTLS 1.2 server: stateless cookies, per-peer GnuTLS sessions, authentication. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "dtls/credentials.h"
#include "net/addr.h"
#include "store/store.h"

typedef struct dtls_server dtls_server_t;

/* Who the peer proved to be; passed up with every plaintext datagram. */
typedef struct dtls_peer_auth {
    store_security_t mode; /* PSK, RPK or X.509 */
    char endpoint[STORE_ENDPOINT_MAX + 1];
} dtls_peer_auth_t;

/* Why a handshake failed, for logs and counters. */
typedef enum dtls_failure {
    DTLS_FAIL_UNKNOWN_IDENTITY,
    DTLS_FAIL_BAD_KEY,         /* PSK mismatch (bad record MAC / finished) */
    DTLS_FAIL_UNKNOWN_RPK,
    DTLS_FAIL_BAD_CERT,        /* chain does not verify */
    DTLS_FAIL_CERT_EXPIRED,
    DTLS_FAIL_CN_MISMATCH,     /* CN names no X.509 device */
    DTLS_FAIL_TIMEOUT,
    DTLS_FAIL_PROTOCOL,        /* anything else GnuTLS refuses */
    DTLS_FAIL_COUNT
} dtls_failure_t;

const char *dtls_failure_name(dtls_failure_t reason);

/*
 * What the DTLS server asks of the layers around it. All are called on
 * the worker thread that owns the server.
 */
typedef struct dtls_callbacks {
    void *ctx;
    /*
     * The device a PSK identity belongs to and its key. *key_len holds the
     * size of key (STORE_PSK_KEY_MAX) on entry, the key's length on
     * return. 0 or LWM2MD_ERR_NOT_FOUND.
     */
    int (*psk_lookup)(void *ctx, const char *identity, uint8_t *key, size_t *key_len,
                      char *endpoint, size_t endpoint_size);
    /* The RPK device whose key equals this DER SPKI. */
    int (*rpk_lookup)(void *ctx, const uint8_t *spki, size_t spki_len, char *endpoint,
                      size_t endpoint_size);
    /*
     * The X.509 device for a client certificate: one whose pinned
     * certificate equals `der`, else (when chain_trusted) the X.509
     * device without a pinned certificate whose endpoint equals `cn`.
     */
    int (*cert_lookup)(void *ctx, const uint8_t *der, size_t der_len, const char *cn,
                       bool chain_trusted, char *endpoint, size_t endpoint_size);
    /* Decrypted application data from an authenticated peer. */
    void (*deliver)(void *ctx, const net_addr_t *peer, const dtls_peer_auth_t *auth,
                    const uint8_t *data, size_t len);
    /* Send a datagram to the peer (the UDP socket). */
    int (*send_datagram)(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len);
    /* A session ended (close_notify, eviction, replacement). May be NULL. */
    void (*closed)(void *ctx, const net_addr_t *peer);
} dtls_callbacks_t;

/* Counters for the metrics endpoint; read on the owning thread. */
typedef struct dtls_stats {
    uint64_t cookies_sent;
    uint64_t handshakes_started;
    uint64_t handshakes_completed;
    uint64_t handshakes_resumed;
    uint64_t failures[DTLS_FAIL_COUNT];
    uint64_t rejected_at_cap; /* ClientHello dropped: too many handshakes or sessions */
    uint64_t sessions_evicted;
    uint32_t sessions;        /* established, now */
    uint32_t handshakes;      /* in flight, now */
} dtls_stats_t;

/*
 * Creates a server on `loop` (it owns its timers there). `creds` is
 * borrowed and shared with other workers; cfg supplies the retransmit
 * and handshake timeouts, caps, idle time, cookie rotation, cipher and
 * group restrictions and the validity-check flag. Returns 0 or a
 * negative lwm2md_error_t.
 */
int dtls_server_new(uv_loop_t *loop, const config_t *cfg, const dtls_credentials_t *creds,
                    const dtls_callbacks_t *callbacks, dtls_server_t **out);

/*
 * Closes all sessions (close_notify; `closed` is not called), stops
 * timers, frees. On the owning thread, never from a callback. The last
 * bytes are released when the loop next runs the timers' close callbacks.
 */
void dtls_server_free(dtls_server_t *server);

/*
 * A datagram arrived from peer. Before a valid cookie, answers a
 * ClientHello with HelloVerifyRequest and keeps nothing. Drives
 * handshakes and delivers application data through callbacks.
 */
void dtls_server_input(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data,
                       size_t len);

/* Encrypts and sends plaintext to an established peer. LWM2MD_ERR_NOT_FOUND if none. */
int dtls_server_send(dtls_server_t *server, const net_addr_t *peer, const uint8_t *data,
                     size_t len);

/* Ends a peer's session (close_notify) if there is one. */
void dtls_server_close(dtls_server_t *server, const net_addr_t *peer);

void dtls_server_get_stats(const dtls_server_t *server, dtls_stats_t *out);
