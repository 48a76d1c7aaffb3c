/* Stateless DTLS cookies (RFC 6347 4.2.1) with a rotating key. */
#pragma once

#include <gnutls/dtls.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/*
 * The cookie keys of one DTLS server: cookies made with the current or
 * the previous key verify, so a cookie lives between one and two
 * rotation periods. Owned by one server, used on its thread only.
 */
typedef struct dtls_cookie {
    gnutls_datum_t current;
    gnutls_datum_t previous;
} dtls_cookie_t;

/* Sends one HelloVerifyRequest datagram; returns 0 or a negative lwm2md_error_t. */
typedef int (*dtls_cookie_send_fn)(void *ctx, const uint8_t *data, size_t len);

/* Generates the first key (previous = current). 0 or LWM2MD_ERR_CRYPTO. */
int dtls_cookie_init(dtls_cookie_t *cookie);

/* Makes a new current key; the old one becomes previous. On failure nothing changes. */
int dtls_cookie_rotate(dtls_cookie_t *cookie);

/* Wipes and frees both keys. */
void dtls_cookie_destroy(dtls_cookie_t *cookie);

/*
 * True when `client_hello` (a whole datagram whose first record is an
 * unfragmented ClientHello, see dtls_datagram_scan) carries a cookie made
 * for `peer` with the current or previous key; then *prestate is filled
 * for gnutls_dtls_prestate_set(). Allocates nothing.
 */
bool dtls_cookie_verify(dtls_cookie_t *cookie, const net_addr_t *peer, const uint8_t *client_hello,
                        size_t len, gnutls_dtls_prestate_st *prestate);

/*
 * Answers the ClientHello with a HelloVerifyRequest for `peer`, made
 * with the current key, through send(ctx, ...). Allocates nothing.
 * Returns 0 or a negative lwm2md_error_t.
 */
int dtls_cookie_send(dtls_cookie_t *cookie, const net_addr_t *peer, const uint8_t *client_hello,
                     size_t len, dtls_cookie_send_fn send, void *ctx);
