/* DTLS record headers, read before GnuTLS sees a datagram, to route it (RFC 6347 4.1). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the record headers of one datagram say; nothing is decrypted. */
typedef struct dtls_datagram_info {
    bool valid;              /* one or more records, each header and body inside the datagram */
    bool client_hello;       /* the first record is an unfragmented epoch-0 ClientHello */
    bool handshake;          /* some record is a handshake message or ChangeCipherSpec */
    bool alert;              /* some record is an alert */
    bool application_data;   /* some record carries application data */
    bool change_cipher_spec; /* some record is a ChangeCipherSpec */
    bool encrypted;          /* some record has an epoch above 0 */
} dtls_datagram_info_t;

/*
 * Reads the record headers of a datagram into out. A datagram that is
 * not a sequence of whole DTLS 1.x records (unknown content type, wrong
 * version byte, a length past the end) gets valid = false. Pure; any
 * thread.
 */
void dtls_datagram_scan(const uint8_t *data, size_t len, dtls_datagram_info_t *out);

/*
 * True when a ClientHello datagram (client_hello set by
 * dtls_datagram_scan) asks to authenticate with a raw public key first
 * (RFC 7250 client_certificate_type) and accepts one from the server
 * (server_certificate_type): an RPK device, which expects the server's
 * raw public key as well. False for anything malformed. Pure; any thread.
 */
bool dtls_client_hello_wants_rpk(const uint8_t *data, size_t len);
