/* CoAP messages (RFC 7252 section 3): parsing and serialisation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types (RFC 7252 3). */
typedef enum coap_type {
    COAP_TYPE_CON = 0,
    COAP_TYPE_NON = 1,
    COAP_TYPE_ACK = 2,
    COAP_TYPE_RST = 3,
} coap_type_t;

/* Codes as class << 5 | detail. */
#define COAP_CODE(class, detail) ((uint8_t)(((class) << 5) | (detail)))
#define COAP_CODE_CLASS(code) ((code) >> 5)
#define COAP_CODE_DETAIL(code) ((code) & 0x1f)

enum coap_code {
    COAP_CODE_EMPTY = COAP_CODE(0, 0),
    COAP_GET = COAP_CODE(0, 1),
    COAP_POST = COAP_CODE(0, 2),
    COAP_PUT = COAP_CODE(0, 3),
    COAP_DELETE = COAP_CODE(0, 4),
    COAP_FETCH = COAP_CODE(0, 5),
    COAP_PATCH = COAP_CODE(0, 6),
    COAP_IPATCH = COAP_CODE(0, 7),
    COAP_CREATED = COAP_CODE(2, 1),
    COAP_DELETED = COAP_CODE(2, 2),
    COAP_VALID = COAP_CODE(2, 3),
    COAP_CHANGED = COAP_CODE(2, 4),
    COAP_CONTENT = COAP_CODE(2, 5),
    COAP_CONTINUE = COAP_CODE(2, 31),
    COAP_BAD_REQUEST = COAP_CODE(4, 0),
    COAP_UNAUTHORIZED = COAP_CODE(4, 1),
    COAP_BAD_OPTION = COAP_CODE(4, 2),
    COAP_FORBIDDEN = COAP_CODE(4, 3),
    COAP_NOT_FOUND = COAP_CODE(4, 4),
    COAP_METHOD_NOT_ALLOWED = COAP_CODE(4, 5),
    COAP_NOT_ACCEPTABLE = COAP_CODE(4, 6),
    COAP_REQUEST_ENTITY_INCOMPLETE = COAP_CODE(4, 8),
    COAP_PRECONDITION_FAILED = COAP_CODE(4, 12),
    COAP_REQUEST_ENTITY_TOO_LARGE = COAP_CODE(4, 13),
    COAP_UNSUPPORTED_CONTENT_FORMAT = COAP_CODE(4, 15),
    COAP_INTERNAL_SERVER_ERROR = COAP_CODE(5, 0),
    COAP_NOT_IMPLEMENTED = COAP_CODE(5, 1),
    COAP_SERVICE_UNAVAILABLE = COAP_CODE(5, 3),
};

/* Option numbers (RFC 7252 5.10, RFC 7641, RFC 7959). */
enum coap_option_number {
    COAP_OPTION_IF_MATCH = 1,
    COAP_OPTION_URI_HOST = 3,
    COAP_OPTION_ETAG = 4,
    COAP_OPTION_IF_NONE_MATCH = 5,
    COAP_OPTION_OBSERVE = 6,
    COAP_OPTION_URI_PORT = 7,
    COAP_OPTION_LOCATION_PATH = 8,
    COAP_OPTION_URI_PATH = 11,
    COAP_OPTION_CONTENT_FORMAT = 12,
    COAP_OPTION_MAX_AGE = 14,
    COAP_OPTION_URI_QUERY = 15,
    COAP_OPTION_ACCEPT = 17,
    COAP_OPTION_LOCATION_QUERY = 20,
    COAP_OPTION_BLOCK2 = 23,
    COAP_OPTION_BLOCK1 = 27,
    COAP_OPTION_SIZE2 = 28,
    COAP_OPTION_PROXY_URI = 35,
    COAP_OPTION_PROXY_SCHEME = 39,
    COAP_OPTION_SIZE1 = 60,
};

/* Content formats used by LwM2M. */
enum coap_content_format {
    COAP_FORMAT_TEXT = 0,
    COAP_FORMAT_LINK = 40,
    COAP_FORMAT_OPAQUE = 42,
    COAP_FORMAT_CBOR = 60,
    COAP_FORMAT_SENML_JSON = 110,
    COAP_FORMAT_SENML_CBOR = 112,
    COAP_FORMAT_LWM2M_TLV = 11542,
    COAP_FORMAT_LWM2M_JSON = 11543,
    COAP_FORMAT_LWM2M_CBOR = 11544,
};

#define COAP_TOKEN_MAX 8
#define COAP_MSG_MAX_OPTIONS 40
#define COAP_OPTION_VALUE_MAX 1034 /* Proxy-Uri is the longest defined */

/* An option as it appears in a parsed message; value borrows the datagram. */
typedef struct coap_option {
    uint16_t number;
    uint16_t length;
    const uint8_t *value;
} coap_option_t;

/*
 * A parsed message. Options are in the order they were on the wire,
 * which RFC 7252 3.1 makes non-decreasing by number. Option values and
 * the payload borrow the buffer given to coap_msg_parse(); the message
 * is valid only as long as that buffer.
 */
typedef struct coap_msg {
    coap_type_t type;
    uint8_t code;
    uint16_t mid;
    uint8_t token_len;
    uint8_t token[COAP_TOKEN_MAX];
    size_t option_count;
    coap_option_t options[COAP_MSG_MAX_OPTIONS];
    const uint8_t *payload;
    size_t payload_len;
} coap_msg_t;

/*
 * Parses a datagram. Checks: version 1, token length 0-8, option
 * delta/length extensions (nibble 15 only as the payload marker, which
 * then must be followed by at least one byte), option values within
 * the datagram, at most COAP_MSG_MAX_OPTIONS options, an empty message
 * (code 0.00) has no token, options or payload.
 *
 * Returns 0 on success. On a format error returns LWM2MD_ERR_INVALID
 * (or LWM2MD_ERR_TRUNCATED, LWM2MD_ERR_TOO_BIG); if the first four bytes
 * were a valid version-1 header, out->type and out->mid are still set
 * and the function sets *header_ok (when not NULL) so the caller can
 * answer a CON with RST (RFC 7252 4.2). Never reads past len.
 */
int coap_msg_parse(const uint8_t *data, size_t len, coap_msg_t *out, bool *header_ok);

/* The first option with this number, or NULL. */
const coap_option_t *coap_msg_find(const coap_msg_t *msg, uint16_t number);

/* Decodes a uint option (0-4 bytes, big-endian). Returns 0 or LWM2MD_ERR_INVALID. */
int coap_option_uint(const coap_option_t *opt, uint32_t *out);

/* Block1/Block2 value (RFC 7959 2.2). size = 16 << szx; szx 7 is reserved. */
typedef struct coap_block {
    uint32_t num;
    bool more;
    uint8_t szx;
} coap_block_t;

/* Decodes a block option; LWM2MD_ERR_INVALID for szx 7 or > 3 bytes. */
int coap_block_decode(const coap_option_t *opt, coap_block_t *out);
/* Encodes into a uint for coap_writer_add_uint(). */
uint32_t coap_block_encode(const coap_block_t *block);
/* 16 << szx. */
size_t coap_block_size(uint8_t szx);

/* True when the option number is critical (odd, RFC 7252 5.4.1). */
bool coap_option_is_critical(uint16_t number);

/*
 * Serialises a message into a caller-owned buffer. Options must be
 * added in non-decreasing number order; a wrong order, a buffer too
 * small or a token over 8 bytes sets a sticky error that
 * coap_writer_finish() returns.
 */
typedef struct coap_writer {
    uint8_t *buf;
    size_t capacity;
    size_t len;
    uint16_t last_option;
    int error;
} coap_writer_t;

void coap_writer_init(coap_writer_t *w, uint8_t *buf, size_t capacity, coap_type_t type,
                      uint8_t code, uint16_t mid, const uint8_t *token, size_t token_len);
void coap_writer_add(coap_writer_t *w, uint16_t number, const void *value, size_t length);
/* Adds a uint option in its shortest form (0 encodes as zero bytes). */
void coap_writer_add_uint(coap_writer_t *w, uint16_t number, uint32_t value);
void coap_writer_add_string(coap_writer_t *w, uint16_t number, const char *value);
/* Adds the payload marker and payload (nothing when len is 0). Last call before finish. */
void coap_writer_payload(coap_writer_t *w, const void *data, size_t len);
/* Returns the message length (> 0) or a negative lwm2md_error_t. */
int coap_writer_finish(coap_writer_t *w);

/* "2.05", "4.04", ... into buf (at least 5 bytes). Returns buf. */
const char *coap_code_string(uint8_t code, char buf[5]);
