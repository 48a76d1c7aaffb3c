/* CoAP message codec: the RFC 7252 section 3 wire format, both ways. */
#include "coap/msg.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

#define COAP_VERSION 1
#define COAP_HEADER_LEN 4
#define COAP_PAYLOAD_MARKER 0xff

/* Option delta and length nibbles (RFC 7252 3.1). */
#define NIBBLE_EXT8 13     /* an 8-bit extension follows, value - 13 */
#define NIBBLE_EXT16 14    /* a 16-bit extension follows, value - 269 */
#define NIBBLE_RESERVED 15 /* payload marker when both nibbles are 15 */
#define EXT8_BASE 13u
#define EXT16_BASE 269u

/* Largest block number: 20 bits in a 3-byte option (RFC 7959 2.2). */
#define BLOCK_NUM_MAX 0xfffffu
#define BLOCK_SZX_RESERVED 7

/* A read position in a datagram; every read checks `end`. */
typedef struct cursor {
    const uint8_t *pos;
    const uint8_t *end;
} cursor_t;

static size_t cursor_left(const cursor_t *c)
{
    return (size_t)(c->end - c->pos);
}

/*
 * Decodes one delta or length nibble with its extension bytes
 * (RFC 7252 3.1). Nibble 15 is reserved outside the payload marker and
 * is a message format error.
 */
static int read_extended(cursor_t *c, unsigned nibble, uint32_t *out)
{
    if (nibble < NIBBLE_EXT8) {
        *out = nibble;
        return 0;
    }
    if (nibble == NIBBLE_RESERVED) {
        return LWM2MD_ERR_INVALID;
    }

    size_t need = nibble == NIBBLE_EXT8 ? 1 : 2;
    if (cursor_left(c) < need) {
        return LWM2MD_ERR_TRUNCATED;
    }

    if (nibble == NIBBLE_EXT8) {
        *out = EXT8_BASE + c->pos[0];
    } else {
        *out = EXT16_BASE + (((uint32_t)c->pos[0] << 8) | c->pos[1]);
    }
    c->pos += need;
    return 0;
}

/*
 * Reads one option at the cursor, whose first byte is not the payload
 * marker. `number` carries the previous option number in and the new one
 * out. Values longer than COAP_OPTION_VALUE_MAX (no defined option is)
 * are refused so that every value length fits the 16-bit field.
 */
static int read_option(cursor_t *c, uint16_t *number, coap_option_t *out)
{
    unsigned first = *c->pos++;
    uint32_t delta = 0;
    uint32_t length = 0;

    int rc = read_extended(c, first >> 4, &delta);
    if (rc == 0) {
        rc = read_extended(c, first & 0x0f, &length);
    }
    if (rc != 0) {
        return rc;
    }

    /* Option numbers are 16 bits (RFC 7252 5.4.6, 12.2). */
    if (*number + delta > UINT16_MAX) {
        return LWM2MD_ERR_INVALID;
    }
    if (length > COAP_OPTION_VALUE_MAX) {
        return LWM2MD_ERR_TOO_BIG;
    }
    if (cursor_left(c) < length) {
        return LWM2MD_ERR_TRUNCATED;
    }

    *number = (uint16_t)(*number + delta);
    out->number = *number;
    out->length = (uint16_t)length;
    out->value = c->pos;
    c->pos += length;
    return 0;
}

/*
 * Reads options up to the end of the datagram or the payload marker,
 * then the payload. A marker followed by nothing is a format error
 * (RFC 7252 3).
 */
static int read_options_and_payload(cursor_t *c, coap_msg_t *out)
{
    uint16_t number = 0;

    while (cursor_left(c) > 0 && *c->pos != COAP_PAYLOAD_MARKER) {
        if (out->option_count == COAP_MSG_MAX_OPTIONS) {
            return LWM2MD_ERR_TOO_BIG;
        }
        int rc = read_option(c, &number, &out->options[out->option_count]);
        if (rc != 0) {
            return rc;
        }
        out->option_count++;
    }

    if (cursor_left(c) == 0) {
        return 0;
    }

    c->pos++;
    if (cursor_left(c) == 0) {
        return LWM2MD_ERR_INVALID;
    }
    out->payload = c->pos;
    out->payload_len = cursor_left(c);
    c->pos = c->end;
    return 0;
}

/* Checks the token length and copies the token (RFC 7252 3: 9-15 reserved). */
static int read_token(cursor_t *c, unsigned token_len, coap_msg_t *out)
{
    if (token_len > COAP_TOKEN_MAX) {
        return LWM2MD_ERR_INVALID;
    }
    if (cursor_left(c) < token_len) {
        return LWM2MD_ERR_TRUNCATED;
    }

    out->token_len = (uint8_t)token_len;
    memcpy(out->token, c->pos, token_len);
    c->pos += token_len;
    return 0;
}

int coap_msg_parse(const uint8_t *data, size_t len, coap_msg_t *out, bool *header_ok)
{
    memset(out, 0, sizeof(*out));
    if (header_ok != NULL) {
        *header_ok = false;
    }

    /* Fixed header; another version is silently ignored (RFC 7252 3). */
    if (data == NULL || len < COAP_HEADER_LEN) {
        return LWM2MD_ERR_TRUNCATED;
    }
    if (data[0] >> 6 != COAP_VERSION) {
        return LWM2MD_ERR_INVALID;
    }
    out->type = (coap_type_t)((data[0] >> 4) & 0x03);
    out->code = data[1];
    out->mid = (uint16_t)((data[2] << 8) | data[3]);
    if (header_ok != NULL) {
        *header_ok = true;
    }

    /* An Empty message is the header alone (RFC 7252 4.1). */
    if (out->code == COAP_CODE_EMPTY) {
        return len == COAP_HEADER_LEN && (data[0] & 0x0f) == 0 ? 0 : LWM2MD_ERR_INVALID;
    }

    cursor_t cursor = {data + COAP_HEADER_LEN, data + len};
    int rc = read_token(&cursor, data[0] & 0x0f, out);
    if (rc == 0) {
        rc = read_options_and_payload(&cursor, out);
    }
    return rc;
}

const coap_option_t *coap_msg_find(const coap_msg_t *msg, uint16_t number)
{
    for (size_t i = 0; i < msg->option_count; i++) {
        if (msg->options[i].number == number) {
            return &msg->options[i];
        }
        /* Options are sorted by number on the wire (RFC 7252 3.1). */
        if (msg->options[i].number > number) {
            break;
        }
    }
    return NULL;
}

int coap_option_uint(const coap_option_t *opt, uint32_t *out)
{
    /* uint format: big-endian, leading zeros allowed (RFC 7252 3.2). */
    if (opt->length > 4) {
        return LWM2MD_ERR_INVALID;
    }

    uint32_t value = 0;
    for (uint16_t i = 0; i < opt->length; i++) {
        value = (value << 8) | opt->value[i];
    }
    *out = value;
    return 0;
}

int coap_block_decode(const coap_option_t *opt, coap_block_t *out)
{
    /* NUM | M | SZX in 0-3 bytes (RFC 7959 2.2). */
    if (opt->length > 3) {
        return LWM2MD_ERR_INVALID;
    }

    uint32_t value = 0;
    int rc = coap_option_uint(opt, &value);
    if (rc != 0) {
        return rc;
    }
    if ((value & 0x07) == BLOCK_SZX_RESERVED) {
        return LWM2MD_ERR_INVALID;
    }

    out->num = value >> 4;
    out->more = (value & 0x08) != 0;
    out->szx = (uint8_t)(value & 0x07);
    return 0;
}

/* The caller keeps num within 20 bits; a larger num encodes to 4 bytes,
 * which coap_block_decode() refuses, so it cannot pass unnoticed. */
uint32_t coap_block_encode(const coap_block_t *block)
{
    return (block->num << 4) | (block->more ? 0x08u : 0u) | (block->szx & 0x07u);
}

/* The reserved szx 7 has no size in RFC 7959; it yields 0 here. */
size_t coap_block_size(uint8_t szx)
{
    if (szx >= BLOCK_SZX_RESERVED) {
        return 0;
    }
    return (size_t)16 << szx;
}

bool coap_option_is_critical(uint16_t number)
{
    return (number & 1) != 0;
}

/* Sets the sticky error once; the first error is the one reported. */
static void writer_fail(coap_writer_t *w, int error)
{
    if (w->error == 0) {
        w->error = error;
    }
}

static bool writer_reserve(coap_writer_t *w, size_t need)
{
    if (w->capacity - w->len < need) {
        writer_fail(w, LWM2MD_ERR_TOO_BIG);
        return false;
    }
    return true;
}

void coap_writer_init(coap_writer_t *w, uint8_t *buf, size_t capacity, coap_type_t type,
                      uint8_t code, uint16_t mid, const uint8_t *token, size_t token_len)
{
    *w = (coap_writer_t){.buf = buf, .capacity = buf != NULL ? capacity : 0};

    /* An Empty message carries no token (RFC 7252 4.1). */
    if ((unsigned)type > COAP_TYPE_RST || token_len > COAP_TOKEN_MAX ||
        (token_len > 0 && token == NULL) || (code == COAP_CODE_EMPTY && token_len > 0)) {
        writer_fail(w, LWM2MD_ERR_INVALID);
        return;
    }
    if (!writer_reserve(w, COAP_HEADER_LEN + token_len)) {
        return;
    }

    buf[0] = (uint8_t)((COAP_VERSION << 6) | ((unsigned)type << 4) | token_len);
    buf[1] = code;
    buf[2] = (uint8_t)(mid >> 8);
    buf[3] = (uint8_t)(mid & 0xff);
    if (token_len > 0) {
        memcpy(buf + COAP_HEADER_LEN, token, token_len);
    }
    w->len = COAP_HEADER_LEN + token_len;
}

/* Nibble and extension size for a delta or length (RFC 7252 3.1). */
static unsigned ext_nibble(uint32_t value, size_t *ext_len)
{
    if (value < EXT8_BASE) {
        *ext_len = 0;
        return value;
    }
    if (value < EXT16_BASE) {
        *ext_len = 1;
        return NIBBLE_EXT8;
    }
    *ext_len = 2;
    return NIBBLE_EXT16;
}

static uint8_t *put_ext(uint8_t *p, uint32_t value, size_t ext_len)
{
    if (ext_len == 1) {
        *p++ = (uint8_t)(value - EXT8_BASE);
    } else if (ext_len == 2) {
        uint32_t v = value - EXT16_BASE;
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)(v & 0xff);
    }
    return p;
}

void coap_writer_add(coap_writer_t *w, uint16_t number, const void *value, size_t length)
{
    if (w->error != 0) {
        return;
    }

    /* Options go in order; an Empty message has none (RFC 7252 3.1, 4.1). */
    if (number < w->last_option || (length > 0 && value == NULL) || w->buf[1] == COAP_CODE_EMPTY) {
        writer_fail(w, LWM2MD_ERR_INVALID);
        return;
    }
    if (length > COAP_OPTION_VALUE_MAX) {
        writer_fail(w, LWM2MD_ERR_TOO_BIG);
        return;
    }

    uint32_t delta = (uint32_t)number - w->last_option;
    size_t delta_ext = 0;
    size_t length_ext = 0;
    unsigned delta_nibble = ext_nibble(delta, &delta_ext);
    unsigned length_nibble = ext_nibble((uint32_t)length, &length_ext);
    if (!writer_reserve(w, 1 + delta_ext + length_ext + length)) {
        return;
    }

    uint8_t *p = w->buf + w->len;
    *p++ = (uint8_t)((delta_nibble << 4) | length_nibble);
    p = put_ext(p, delta, delta_ext);
    p = put_ext(p, (uint32_t)length, length_ext);
    if (length > 0) {
        memcpy(p, value, length);
    }
    w->len = (size_t)(p - w->buf) + length;
    w->last_option = number;
}

void coap_writer_add_uint(coap_writer_t *w, uint16_t number, uint32_t value)
{
    uint8_t bytes[4];
    size_t length = 0;

    /* Shortest form: no leading zero bytes, 0 as no bytes (RFC 7252 3.2). */
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint8_t byte = (uint8_t)(value >> shift);
        if (length > 0 || byte != 0) {
            bytes[length++] = byte;
        }
    }
    coap_writer_add(w, number, bytes, length);
}

void coap_writer_add_string(coap_writer_t *w, uint16_t number, const char *value)
{
    if (value == NULL) {
        writer_fail(w, LWM2MD_ERR_INVALID);
        return;
    }
    coap_writer_add(w, number, value, strlen(value));
}

/*
 * After a payload the message is closed: capacity shrinks to the length
 * and the option order moves to the end, so a later option or payload
 * fails (order or room) instead of corrupting the message.
 */
void coap_writer_payload(coap_writer_t *w, const void *data, size_t len)
{
    if (w->error != 0 || len == 0) {
        return;
    }
    if (data == NULL || w->buf[1] == COAP_CODE_EMPTY) {
        writer_fail(w, LWM2MD_ERR_INVALID);
        return;
    }
    if (!writer_reserve(w, 1 + len)) {
        return;
    }

    w->buf[w->len] = COAP_PAYLOAD_MARKER;
    memcpy(w->buf + w->len + 1, data, len);
    w->len += 1 + len;
    w->capacity = w->len;
    w->last_option = UINT16_MAX;
}

int coap_writer_finish(coap_writer_t *w)
{
    if (w->error != 0) {
        return w->error;
    }
    if (w->len > INT_MAX) {
        return LWM2MD_ERR_TOO_BIG;
    }
    return (int)w->len;
}

const char *coap_code_string(uint8_t code, char buf[5])
{
    snprintf(buf, 5, "%u.%02u", (unsigned)COAP_CODE_CLASS(code), (unsigned)COAP_CODE_DETAIL(code));
    return buf;
}
