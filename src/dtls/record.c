/* DTLS record headers and ClientHello extensions, read before GnuTLS sees a datagram. */
#include "dtls/record.h"

#include <string.h>

enum {
    RECORD_HEADER_SIZE = 13,    /* type, version, epoch, sequence number, length */
    HANDSHAKE_HEADER_SIZE = 12, /* type, length, message_seq, fragment offset and length */
    DTLS_VERSION_MAJOR = 254,   /* every DTLS version is {254, x} */
    CONTENT_CHANGE_CIPHER_SPEC = 20,
    CONTENT_ALERT = 21,
    CONTENT_HANDSHAKE = 22,
    CONTENT_APPLICATION_DATA = 23,
    HANDSHAKE_CLIENT_HELLO = 1,
    /* client_version, random, session_id length, cookie length */
    CLIENT_HELLO_MIN_BODY = 2 + 32 + 1 + 1,
    /* RFC 7250 3: the certificate type extensions and the raw public key type. */
    EXTENSION_CLIENT_CERTIFICATE_TYPE = 19,
    EXTENSION_SERVER_CERTIFICATE_TYPE = 20,
    CERT_TYPE_RAW_PUBLIC_KEY = 2,
};

static uint32_t read_u16(const uint8_t *p)
{
    return ((uint32_t)p[0] << 8) | p[1];
}

static uint32_t read_u24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

/*
 * A ClientHello in one fragment: only such a message is answered
 * statelessly (RFC 6347 4.2.1); GnuTLS's cookie check reads it at fixed
 * offsets, so its framing is checked here first.
 */
static bool is_client_hello(const uint8_t *body, size_t len)
{
    if (len < HANDSHAKE_HEADER_SIZE || body[0] != HANDSHAKE_CLIENT_HELLO) {
        return false;
    }

    uint32_t length = read_u24(body + 1);
    uint32_t fragment_offset = read_u24(body + 6);
    uint32_t fragment_length = read_u24(body + 9);
    return fragment_offset == 0 && fragment_length == length &&
           length <= len - HANDSHAKE_HEADER_SIZE && length >= CLIENT_HELLO_MIN_BODY;
}

/* Notes one record's content type; false for a type DTLS 1.2 does not have. */
static bool note_content_type(uint8_t type, dtls_datagram_info_t *out)
{
    switch (type) {
    case CONTENT_CHANGE_CIPHER_SPEC:
        out->change_cipher_spec = true;
        out->handshake = true;
        return true;
    case CONTENT_ALERT:
        out->alert = true;
        return true;
    case CONTENT_HANDSHAKE:
        out->handshake = true;
        return true;
    case CONTENT_APPLICATION_DATA:
        out->application_data = true;
        return true;
    default:
        return false;
    }
}

void dtls_datagram_scan(const uint8_t *data, size_t len, dtls_datagram_info_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t pos = 0;
    while (pos < len) {
        /* One record: its header and body must lie inside the datagram. */
        const uint8_t *record = data + pos;
        if (len - pos < RECORD_HEADER_SIZE || record[1] != DTLS_VERSION_MAJOR) {
            return;
        }
        size_t body_len = read_u16(record + 11);
        if (body_len > len - pos - RECORD_HEADER_SIZE || !note_content_type(record[0], out)) {
            return;
        }

        uint32_t epoch = read_u16(record + 3);
        if (epoch > 0) {
            out->encrypted = true;
        }
        if (pos == 0 && epoch == 0 && record[0] == CONTENT_HANDSHAKE) {
            out->client_hello = is_client_hello(record + RECORD_HEADER_SIZE, body_len);
        }
        pos += RECORD_HEADER_SIZE + body_len;
    }
    out->valid = len > 0;
}

/* A bounded reader over one ClientHello body; any overrun makes it fail. */
typedef struct reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool failed;
} reader_t;

static uint32_t read_bytes(reader_t *reader, size_t count)
{
    uint32_t value = 0;
    if (reader->failed || count > reader->len - reader->pos) {
        reader->failed = true;
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        value = (value << 8) | reader->data[reader->pos++];
    }
    return value;
}

/* Skips a vector whose length prefix is `prefix` bytes; returns where its body starts. */
static size_t skip_vector(reader_t *reader, size_t prefix, size_t *body_len)
{
    size_t len = read_bytes(reader, prefix);
    size_t start = reader->pos;
    if (reader->failed || len > reader->len - reader->pos) {
        reader->failed = true;
        *body_len = 0;
        return start;
    }
    reader->pos += len;
    *body_len = len;
    return start;
}

/* The certificate types of one RFC 7250 extension body (a list with a 1-byte length). */
typedef struct cert_types {
    bool present;
    uint8_t first;
    bool raw_public_key;
} cert_types_t;

static cert_types_t read_cert_types(const uint8_t *body, size_t len)
{
    cert_types_t types = {false, 0, false};
    if (len < 2 || body[0] != len - 1) {
        return types;
    }
    types.present = true;
    types.first = body[1];
    for (size_t i = 1; i < len; i++) {
        types.raw_public_key = types.raw_public_key || body[i] == CERT_TYPE_RAW_PUBLIC_KEY;
    }
    return types;
}

/* Positions `out` on the extensions of a ClientHello datagram; false when it has none or is bad. */
static bool find_extensions(const uint8_t *data, size_t len, reader_t *out)
{
    if (len < RECORD_HEADER_SIZE + HANDSHAKE_HEADER_SIZE) {
        return false;
    }
    size_t body_len = read_u24(data + RECORD_HEADER_SIZE + 1);
    if (body_len > len - RECORD_HEADER_SIZE - HANDSHAKE_HEADER_SIZE) {
        return false;
    }
    reader_t reader = {data + RECORD_HEADER_SIZE + HANDSHAKE_HEADER_SIZE, body_len, 0, false};

    /* client_version, random, session_id, cookie, cipher_suites, compression (RFC 6347 4.2.2). */
    size_t skipped;
    read_bytes(&reader, 2 + 32);
    skip_vector(&reader, 1, &skipped);
    skip_vector(&reader, 1, &skipped);
    skip_vector(&reader, 2, &skipped);
    skip_vector(&reader, 1, &skipped);
    size_t extensions_len;
    size_t at = skip_vector(&reader, 2, &extensions_len);
    if (reader.failed) {
        return false;
    }
    *out = (reader_t){reader.data + at, extensions_len, 0, false};
    return true;
}

bool dtls_client_hello_wants_rpk(const uint8_t *data, size_t len)
{
    reader_t extensions;
    if (!find_extensions(data, len, &extensions)) {
        return false;
    }

    /* Each extension: type, length, body (RFC 5246 7.4.1.4). */
    cert_types_t client = {false, 0, false};
    cert_types_t server = {false, 0, false};
    while (extensions.pos < extensions.len) {
        uint32_t type = read_bytes(&extensions, 2);
        size_t ext_len;
        size_t at = skip_vector(&extensions, 2, &ext_len);
        if (extensions.failed) {
            return false;
        }
        if (type == EXTENSION_CLIENT_CERTIFICATE_TYPE) {
            client = read_cert_types(extensions.data + at, ext_len);
        } else if (type == EXTENSION_SERVER_CERTIFICATE_TYPE) {
            server = read_cert_types(extensions.data + at, ext_len);
        }
    }
    return client.present && client.first == CERT_TYPE_RAW_PUBLIC_KEY && server.raw_public_key;
}
