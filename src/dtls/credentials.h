/* Server credentials and client trust for DTLS, from PEM, PKCS#12 or JKS. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/*
 * Loaded, checked server credentials: an ECDSA key (P-256 or P-384),
 * its certificate chain, its raw public key (SubjectPublicKeyInfo, for
 * RPK), and the trusted CAs. Read-only once loaded, so every worker's
 * DTLS server shares one. GnuTLS types stay inside the dtls module:
 * callers outside it see only this opaque handle; the dtls module reaches
 * the GnuTLS objects through dtls/credentials_internal.h.
 */
typedef struct dtls_credentials dtls_credentials_t;

/*
 * Loads the server credentials (server->enabled false: PSK only, no
 * certificate) and the trust store (trust->enabled false: no CA, so only
 * pinned client certificates verify). `prefix` names the variables in
 * messages ("LWM2M_SERVER" or "LWM2M_BS").
 *
 * On failure returns a negative lwm2md_error_t and writes one line to
 * err naming the variable and the cause, e.g.
 *   LWM2M_SERVER_PEM_KEY_PASSWORD: wrong password for /etc/lwm2m/key.pem
 *   LWM2M_SERVER_KEY_ALIAS=server: no such alias in /etc/lwm2m/server.jks
 *   LWM2M_SERVER_PEM_CERT=/x.pem: the key is RSA; an ECDSA key is required
 *   LWM2M_SERVER_PEM_KEY=/k.pem: the key does not match the certificate
 * Never writes a password or key material into err.
 */
int dtls_credentials_load(const config_credentials_t *server, const char *prefix,
                          const config_trust_t *trust, dtls_credentials_t **out, char *err,
                          size_t err_size);
void dtls_credentials_free(dtls_credentials_t *creds);

/* True when a certificate and key were loaded (RPK and X.509 served). */
int dtls_credentials_has_certificate(const dtls_credentials_t *creds);

/* The number of trusted CA certificates loaded. */
size_t dtls_credentials_trust_count(const dtls_credentials_t *creds);

/*
 * Reads a public key file (PEM "PUBLIC KEY" or DER SubjectPublicKeyInfo,
 * or a PEM/DER certificate, whose key is taken) into DER SPKI bytes
 * (malloc'd, caller frees). Only EC keys. For `device add --rpk`.
 */
int dtls_read_public_key(const char *path, uint8_t **der, size_t *der_len, char *err,
                         size_t err_size);

/* Reads one certificate (PEM or DER) into DER bytes (malloc'd, caller frees). */
int dtls_read_certificate(const char *path, uint8_t **der, size_t *der_len, char *err,
                          size_t err_size);
