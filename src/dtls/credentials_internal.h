/*
 * For the dtls module only: the GnuTLS objects behind dtls_credentials_t.
 * Nothing outside src/dtls/ includes this header.
 */
#pragma once

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "dtls/credentials.h"

/*
 * Every object below is owned by creds and lives until
 * dtls_credentials_free. They are never modified after loading, so any
 * worker thread may attach them to its sessions; callers must not
 * change or free them.
 */

/*
 * The server's X.509 chain and key, with the trusted CAs set as the
 * credentials' trust. NULL when no certificate was configured.
 */
gnutls_certificate_credentials_t dtls_credentials_x509(const dtls_credentials_t *creds);

/*
 * The server key with its raw public key (RFC 7250), no certificate.
 * NULL when no certificate was configured.
 */
gnutls_certificate_credentials_t dtls_credentials_rpk(const dtls_credentials_t *creds);

/*
 * Both of the above in one object (the X.509 chain and the raw public
 * key, same key, plus the trusted CAs): a session can hold only one
 * certificate credentials object, and with GNUTLS_ENABLE_RAWPK GnuTLS
 * picks the entry that matches the negotiated certificate type. NULL
 * when no certificate was configured.
 */
gnutls_certificate_credentials_t dtls_credentials_certificate(const dtls_credentials_t *creds);

/* The trusted CAs (LWM2M_TRUST_*). Never NULL; empty when no trust is configured. */
gnutls_x509_trust_list_t dtls_credentials_trust(const dtls_credentials_t *creds);

/*
 * The server key's SubjectPublicKeyInfo, DER: what RPK clients pin.
 * NULL (and *len 0) when no certificate was configured.
 */
const uint8_t *dtls_credentials_spki(const dtls_credentials_t *creds, size_t *len);
