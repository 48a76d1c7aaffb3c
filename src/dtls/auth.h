/* Peer authentication for the DTLS server: PSK keys, raw public keys, X.509 chains. */
#pragma once

#include <gnutls/gnutls.h>

#include "dtls/conn.h"

/*
 * GnuTLS's PSK key callback (set on the shared PSK credentials): looks
 * the identity up through callbacks->psk_lookup. An unknown identity
 * gets a random key, so the handshake fails exactly as with a wrong key
 * and the peer cannot learn which identities exist (RFC 4279 2); the
 * conn remembers which case it was for the log. Always returns 0.
 */
int dtls_auth_psk_key(gnutls_session_t session, const gnutls_datum_t *identity,
                      gnutls_datum_t *key);

/*
 * GnuTLS's certificate verify callback (set per session): maps the
 * client's raw public key or X.509 chain to a provisioned endpoint.
 * Returns 0, or -1 with the failure recorded on the conn (GnuTLS then
 * fails the handshake with GNUTLS_E_CERTIFICATE_ERROR).
 */
int dtls_auth_verify_certificate(gnutls_session_t session);

/*
 * Called once the handshake has finished: a resumed session skipped the
 * callbacks above, so its identity is looked up again from the resumed
 * state (the device may have been removed since). Returns 0 when
 * conn->auth names an endpoint, else -1 with the failure recorded.
 */
int dtls_auth_established(dtls_conn_t *conn);
