/* CoAP exchanges (RFC 7252 4, RFC 7959): one endpoint per listener per worker. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "coap/msg.h"
#include "net/addr.h"

typedef struct coap_endpoint coap_endpoint_t;

/* How the endpoint sends a datagram: UDP directly, or through DTLS. */
typedef struct coap_transport {
    int (*send)(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len);
    void *ctx;
} coap_transport_t;

/* Transmission parameters (RFC 7252 4.8) and bounds. */
typedef struct coap_params {
    uint32_t ack_timeout_ms;
    double ack_random_factor;
    uint32_t max_retransmit;
    uint32_t max_body_size; /* largest reassembled Block1 body or response body */
    uint32_t block_size;    /* our preferred block size (16..1024) */
    uint32_t max_dedup;     /* cached responses for duplicate detection */
    uint32_t max_transfers; /* Block1 transfers in progress */
    uint32_t max_outgoing;  /* server-originated requests awaiting an answer */
} coap_params_t;

/*
 * An incoming request after duplicate detection and Block1 reassembly.
 * Everything is borrowed for the handler call. `auth` is the identity
 * the transport vouched for (NULL on a NoSec listener).
 */
typedef struct coap_request {
    const net_addr_t *peer;
    const void *auth;
    const coap_msg_t *msg; /* the request (the last block, for Block1) */
    const uint8_t *body;   /* whole body, reassembled */
    size_t body_len;
} coap_request_t;

#define COAP_RESPONSE_MAX_LOCATION 4
#define COAP_RESPONSE_LOCATION_MAX 64

/* What a handler answers; the endpoint builds, blocks and caches the message. */
typedef struct coap_response {
    uint8_t code;
    int32_t content_format; /* -1: none */
    size_t location_count;
    char location[COAP_RESPONSE_MAX_LOCATION][COAP_RESPONSE_LOCATION_MAX];
    const uint8_t *payload; /* borrowed until the handler returns */
    size_t payload_len;
} coap_response_t;

/* Called for each new request; fill resp (code is preset to 4.04). Loop thread. */
typedef void (*coap_handler_fn)(void *ctx, const coap_request_t *req, coap_response_t *resp);

/*
 * Creates an endpoint on `loop`. transport and params are copied. With
 * handler NULL (a client-only endpoint) every request is answered 4.04.
 * Returns 0 or a negative lwm2md_error_t.
 */
int coap_endpoint_new(uv_loop_t *loop, const coap_transport_t *transport,
                      const coap_params_t *params, coap_handler_fn handler, void *handler_ctx,
                      coap_endpoint_t **out);

/*
 * Stops timers and frees all state; pending outgoing requests complete
 * with LWM2MD_ERR_AGAIN. Loop thread. The memory is released once libuv
 * has closed the timers (run the loop afterwards).
 */
void coap_endpoint_free(coap_endpoint_t *ep);

/*
 * A datagram arrived (plaintext). Parses it, answers malformed CON
 * messages with RST, detects duplicates, reassembles Block1, calls the
 * handler, serves Block2, matches responses to outgoing requests.
 */
void coap_endpoint_input(coap_endpoint_t *ep, const net_addr_t *peer, const void *auth,
                         const uint8_t *data, size_t len);

/* Result of a server-originated request: the response, or an error (timeout: LWM2MD_ERR_AGAIN). */
typedef void (*coap_response_fn)(void *ctx, int status, const coap_msg_t *response,
                                 const uint8_t *body, size_t body_len);

/*
 * Sends a CON request to peer: code, Uri-Path segments (NULL-terminated),
 * optional Uri-Query items (NULL-terminated or NULL), optional payload
 * and content format (-1 none). Retransmits with exponential back-off
 * per the params; a separate or piggybacked response completes it. A
 * 2.05 with Block2 is followed, block after block under the same token,
 * until the whole body has arrived (bounded by max_body_size, else
 * LWM2MD_ERR_TOO_BIG); fn then gets the whole body. fn is called exactly
 * once. Loop thread.
 */
int coap_endpoint_request(coap_endpoint_t *ep, const net_addr_t *peer, uint8_t code,
                          const char *const *path, const char *const *query, int32_t content_format,
                          const uint8_t *payload, size_t payload_len, coap_response_fn fn,
                          void *ctx);

typedef struct coap_endpoint_stats {
    uint64_t requests;
    uint64_t duplicates;
    uint64_t malformed;
    uint64_t resets_sent;
    uint64_t retransmissions;
    uint64_t timeouts;
    uint32_t dedup_entries;
    uint32_t transfers;
    uint32_t outgoing;
} coap_endpoint_stats_t;

void coap_endpoint_get_stats(const coap_endpoint_t *ep, coap_endpoint_stats_t *out);

/* EXCHANGE_LIFETIME in ms for these params (RFC 7252 4.8.2). */
uint64_t coap_params_exchange_lifetime_ms(const coap_params_t *params);
