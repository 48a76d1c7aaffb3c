/* Tests of the CoAP message codec (src/coap/msg.c) against RFC 7252 and 7959. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"
#include "coap/msg.h"

static const uint8_t token4[] = {0xde, 0xad, 0xbe, 0xef};

/* A Register request as a client sends it, encoded by hand. */
static const uint8_t register_bytes[] = {
    0x44, 0x02, 0x12, 0x34,                /* CON POST mid 0x1234 tkl 4 */
    0xde, 0xad, 0xbe, 0xef,                /* token */
    0xb2, 'r',  'd',                       /* Uri-Path (11) "rd" */
    0x11, 0x28,                            /* Content-Format (12) 40 */
    0x36, 'e',  'p',  '=',  'a', 'b', 'c', /* Uri-Query (15) "ep=abc" */
    0x05, 'l',  't',  '=',  '6', '0',      /* Uri-Query "lt=60" */
    0xff, '<',  '/',  '1',  '/', '0', '>', /* payload */
};

/* A copy in a heap block of exactly len bytes, so ASan sees any over-read. */
static uint8_t *exact_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, data, len);
    }
    return copy;
}

/* Parses an exact copy; option values and payload dangle afterwards. */
static int parse_exact(const uint8_t *data, size_t len, coap_msg_t *msg, bool *header_ok)
{
    uint8_t *copy = exact_copy(data, len);
    int rc = coap_msg_parse(copy, len, msg, header_ok);
    free(copy);
    return rc;
}

static void test_parse_register_request(void **state)
{
    coap_msg_t msg;
    bool header_ok = false;

    assert_int_equal(coap_msg_parse(register_bytes, sizeof(register_bytes), &msg, &header_ok), 0);
    assert_true(header_ok);
    assert_int_equal(msg.type, COAP_TYPE_CON);
    assert_int_equal(msg.code, COAP_POST);
    assert_int_equal(msg.mid, 0x1234);
    assert_int_equal(msg.token_len, 4);
    assert_memory_equal(msg.token, token4, 4);
    assert_int_equal(msg.option_count, 4);
    assert_int_equal(msg.options[0].number, COAP_OPTION_URI_PATH);
    assert_memory_equal(msg.options[0].value, "rd", 2);
    assert_int_equal(msg.options[2].number, COAP_OPTION_URI_QUERY);
    assert_int_equal(msg.options[2].length, 6);
    assert_int_equal(msg.options[3].number, COAP_OPTION_URI_QUERY);
    assert_memory_equal(msg.options[3].value, "lt=60", 5);
    assert_int_equal(msg.payload_len, 6);
    assert_memory_equal(msg.payload, "</1/0>", 6);

    uint32_t format = 0;
    const coap_option_t *ct = coap_msg_find(&msg, COAP_OPTION_CONTENT_FORMAT);
    assert_non_null(ct);
    assert_int_equal(coap_option_uint(ct, &format), 0);
    assert_int_equal(format, COAP_FORMAT_LINK);

    /* find returns the first of repeated options, NULL for absent ones. */
    assert_ptr_equal(coap_msg_find(&msg, COAP_OPTION_URI_QUERY), &msg.options[2]);
    assert_null(coap_msg_find(&msg, COAP_OPTION_BLOCK1));
    assert_null(coap_msg_find(&msg, COAP_OPTION_IF_MATCH));
}

static void test_writer_matches_hand_encoding(void **state)
{
    uint8_t buf[128];
    coap_writer_t w;

    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_POST, 0x1234, token4, 4);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "rd");
    coap_writer_add_uint(&w, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_LINK);
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, "ep=abc");
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, "lt=60");
    coap_writer_payload(&w, "</1/0>", 6);

    int len = coap_writer_finish(&w);
    assert_int_equal(len, sizeof(register_bytes));
    assert_memory_equal(buf, register_bytes, sizeof(register_bytes));
}

static void test_response_with_location_path(void **state)
{
    uint8_t buf[64];
    coap_writer_t w;
    coap_msg_t msg;

    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CREATED, 0x1234, token4, 4);
    coap_writer_add_string(&w, COAP_OPTION_LOCATION_PATH, "rd");
    coap_writer_add_string(&w, COAP_OPTION_LOCATION_PATH, "Xa9fQ2");
    int len = coap_writer_finish(&w);
    assert_true(len > 0);

    assert_int_equal(coap_msg_parse(buf, (size_t)len, &msg, NULL), 0);
    assert_int_equal(msg.type, COAP_TYPE_ACK);
    assert_int_equal(msg.code, COAP_CREATED);
    assert_int_equal(msg.option_count, 2);
    assert_int_equal(msg.options[1].number, COAP_OPTION_LOCATION_PATH);
    assert_int_equal(msg.options[1].length, 6);
    assert_memory_equal(msg.options[1].value, "Xa9fQ2", 6);
    assert_null(msg.payload);
    assert_int_equal(msg.payload_len, 0);
}

static void test_empty_message(void **state)
{
    const uint8_t ack[] = {0x60, 0x00, 0xab, 0xcd};
    const uint8_t with_token[] = {0x61, 0x00, 0xab, 0xcd, 0x01};
    const uint8_t tkl_only[] = {0x61, 0x00, 0xab, 0xcd};
    const uint8_t with_byte[] = {0x70, 0x00, 0xab, 0xcd, 0xff};
    coap_msg_t msg;
    bool header_ok = false;

    assert_int_equal(parse_exact(ack, sizeof(ack), &msg, &header_ok), 0);
    assert_true(header_ok);
    assert_int_equal(msg.type, COAP_TYPE_ACK);
    assert_int_equal(msg.code, COAP_CODE_EMPTY);
    assert_int_equal(msg.mid, 0xabcd);

    /* RFC 7252 4.1: anything after the header is a format error. */
    assert_int_equal(parse_exact(with_token, sizeof(with_token), &msg, &header_ok),
                     LWM2MD_ERR_INVALID);
    assert_true(header_ok);
    assert_int_equal(msg.mid, 0xabcd);
    assert_int_equal(parse_exact(tkl_only, sizeof(tkl_only), &msg, &header_ok), LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact(with_byte, sizeof(with_byte), &msg, &header_ok),
                     LWM2MD_ERR_INVALID);
    assert_true(header_ok);
    assert_int_equal(msg.type, COAP_TYPE_RST);

    /* And the writer refuses to build one. */
    uint8_t buf[16];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_RST, COAP_CODE_EMPTY, 7, NULL, 0);
    assert_int_equal(coap_writer_finish(&w), 4);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CODE_EMPTY, 7, token4, 1);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CODE_EMPTY, 7, NULL, 0);
    coap_writer_add_uint(&w, COAP_OPTION_OBSERVE, 1);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CODE_EMPTY, 7, NULL, 0);
    coap_writer_payload(&w, "x", 1);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
}

static void test_header_errors(void **state)
{
    const uint8_t version2[] = {0x84, 0x01, 0x00, 0x01, 1, 2, 3, 4};
    const uint8_t version0[] = {0x00, 0x01, 0x00, 0x01};
    coap_msg_t msg;
    bool header_ok = true;

    /* Shorter than the fixed header: no header to answer. */
    for (size_t len = 0; len < 4; len++) {
        header_ok = true;
        assert_int_equal(parse_exact(register_bytes, len, &msg, &header_ok), LWM2MD_ERR_TRUNCATED);
        assert_false(header_ok);
    }

    /* Unknown version: silently ignored (RFC 7252 3), so no RST. */
    assert_int_equal(parse_exact(version2, sizeof(version2), &msg, &header_ok), LWM2MD_ERR_INVALID);
    assert_false(header_ok);
    assert_int_equal(parse_exact(version0, sizeof(version0), &msg, &header_ok), LWM2MD_ERR_INVALID);
    assert_false(header_ok);

    /* A NULL out-flag is allowed. */
    assert_int_equal(coap_msg_parse(version0, sizeof(version0), &msg, NULL), LWM2MD_ERR_INVALID);
}

static void test_token_lengths(void **state)
{
    uint8_t datagram[4 + 15] = {0x40, COAP_GET, 0x55, 0x66};
    coap_msg_t msg;
    bool header_ok = false;

    for (unsigned tkl = 0; tkl <= 8; tkl++) {
        datagram[0] = (uint8_t)(0x40 | tkl);
        for (unsigned i = 0; i < tkl; i++) {
            datagram[4 + i] = (uint8_t)(0xa0 + i);
        }
        assert_int_equal(parse_exact(datagram, 4 + tkl, &msg, &header_ok), 0);
        assert_int_equal(msg.token_len, tkl);
        assert_memory_equal(msg.token, datagram + 4, tkl);
        if (tkl > 0) {
            assert_int_equal(parse_exact(datagram, 4 + tkl - 1, &msg, &header_ok),
                             LWM2MD_ERR_TRUNCATED);
            assert_true(header_ok);
        }
    }

    /* Token lengths 9-15 are reserved: a format error (RFC 7252 3). */
    for (unsigned tkl = 9; tkl <= 15; tkl++) {
        datagram[0] = (uint8_t)(0x40 | tkl);
        header_ok = false;
        assert_int_equal(parse_exact(datagram, sizeof(datagram), &msg, &header_ok),
                         LWM2MD_ERR_INVALID);
        assert_true(header_ok);
        assert_int_equal(msg.type, COAP_TYPE_CON);
        assert_int_equal(msg.mid, 0x5566);
    }
}

static void test_payload_marker(void **state)
{
    const uint8_t marker_only[] = {0x50, COAP_CONTENT, 0, 1, 0xff};
    const uint8_t marker_after_option[] = {0x50, COAP_CONTENT, 0, 1, 0xc1, 0x00, 0xff};
    const uint8_t one_byte[] = {0x50, COAP_CONTENT, 0, 1, 0xff, 'x'};
    const uint8_t marker_in_payload[] = {0x50, COAP_CONTENT, 0, 1, 0xff, 0xff, 0xff};
    coap_msg_t msg;
    bool header_ok = false;

    /* RFC 7252 3: a marker followed by a zero-length payload is an error. */
    assert_int_equal(parse_exact(marker_only, sizeof(marker_only), &msg, &header_ok),
                     LWM2MD_ERR_INVALID);
    assert_true(header_ok);
    assert_int_equal(parse_exact(marker_after_option, sizeof(marker_after_option), &msg, NULL),
                     LWM2MD_ERR_INVALID);

    assert_int_equal(parse_exact(one_byte, sizeof(one_byte), &msg, NULL), 0);
    assert_int_equal(msg.payload_len, 1);
    assert_int_equal(parse_exact(marker_in_payload, sizeof(marker_in_payload), &msg, NULL), 0);
    assert_int_equal(msg.payload_len, 2);
    assert_int_equal(msg.option_count, 0);

    /* The writer writes nothing for an empty payload. */
    uint8_t buf[16];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_NON, COAP_CONTENT, 1, NULL, 0);
    coap_writer_payload(&w, NULL, 0);
    assert_int_equal(coap_writer_finish(&w), 4);
}

static void test_reserved_nibbles(void **state)
{
    const uint8_t delta15[] = {0x40, COAP_GET, 0, 1, 0xf1, 'x'};
    const uint8_t length15[] = {0x40, COAP_GET, 0, 1, 0x1f, 'x'};
    const uint8_t delta15_length0[] = {0x40, COAP_GET, 0, 1, 0xf0};
    coap_msg_t msg;
    bool header_ok = false;

    assert_int_equal(parse_exact(delta15, sizeof(delta15), &msg, &header_ok), LWM2MD_ERR_INVALID);
    assert_true(header_ok);
    assert_int_equal(parse_exact(length15, sizeof(length15), &msg, NULL), LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact(delta15_length0, sizeof(delta15_length0), &msg, NULL),
                     LWM2MD_ERR_INVALID);
}

/* Writes one option with the writer and checks its exact wire form. */
static void check_option_encoding(uint16_t number, size_t length, const uint8_t *expect_head,
                                  size_t head_len)
{
    uint8_t value[COAP_OPTION_VALUE_MAX];
    uint8_t buf[4 + 5 + COAP_OPTION_VALUE_MAX];
    coap_writer_t w;
    coap_msg_t msg;

    for (size_t i = 0; i < length; i++) {
        value[i] = (uint8_t)(i * 7);
    }
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 9, NULL, 0);
    coap_writer_add(&w, number, value, length);
    int len = coap_writer_finish(&w);
    assert_int_equal(len, 4 + head_len + length);
    assert_memory_equal(buf + 4, expect_head, head_len);

    assert_int_equal(coap_msg_parse(buf, (size_t)len, &msg, NULL), 0);
    assert_int_equal(msg.option_count, 1);
    assert_int_equal(msg.options[0].number, number);
    assert_int_equal(msg.options[0].length, length);
    if (length > 0) {
        assert_memory_equal(msg.options[0].value, value, length);
    }
}

static void test_extended_deltas_and_lengths(void **state)
{
    /* Deltas: 12 in the nibble, 13 and 268 in one byte, 269 and up in two. */
    check_option_encoding(12, 0, (const uint8_t[]){0xc0}, 1);
    check_option_encoding(13, 0, (const uint8_t[]){0xd0, 0x00}, 2);
    check_option_encoding(268, 0, (const uint8_t[]){0xd0, 0xff}, 2);
    check_option_encoding(269, 0, (const uint8_t[]){0xe0, 0x00, 0x00}, 3);
    check_option_encoding(65535, 0, (const uint8_t[]){0xe0, 0xfe, 0xf2}, 3);

    /* Lengths, the same boundaries. */
    check_option_encoding(1, 12, (const uint8_t[]){0x1c}, 1);
    check_option_encoding(1, 13, (const uint8_t[]){0x1d, 0x00}, 2);
    check_option_encoding(1, 268, (const uint8_t[]){0x1d, 0xff}, 2);
    check_option_encoding(1, 269, (const uint8_t[]){0x1e, 0x00, 0x00}, 3);
    check_option_encoding(1, COAP_OPTION_VALUE_MAX, (const uint8_t[]){0x1e, 0x02, 0xfd}, 3);

    /* Both extended in one option: delta 300, length 20. */
    check_option_encoding(300, 20, (const uint8_t[]){0xed, 0x00, 0x1f, 0x07}, 4);
}

static void test_option_bounds(void **state)
{
    /* Delta reaching past 65535: option 65535 then a delta of 1. */
    const uint8_t past_max[] = {0x40, COAP_GET, 0, 1, 0xe0, 0xfe, 0xf2, 0x10};
    /* The 16-bit extension at its top: 269 + 65535 > 65535. */
    const uint8_t huge_delta[] = {0x40, COAP_GET, 0, 1, 0xe0, 0xff, 0xff};
    /* A length over COAP_OPTION_VALUE_MAX (1035). */
    uint8_t too_long[4 + 3 + 1035] = {0x40, COAP_GET, 0, 1, 0x1e, 0x02, 0xfe};
    const uint8_t value_cut[] = {0x40, COAP_GET, 0, 1, 0x13, 'a', 'b'};
    const uint8_t ext8_cut[] = {0x40, COAP_GET, 0, 1, 0xd0};
    const uint8_t ext16_cut[] = {0x40, COAP_GET, 0, 1, 0x1e, 0x01};
    coap_msg_t msg;

    assert_int_equal(parse_exact(past_max, sizeof(past_max), &msg, NULL), LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact(past_max, sizeof(past_max) - 1, &msg, NULL), 0);
    assert_int_equal(msg.options[0].number, 65535);
    assert_int_equal(parse_exact(huge_delta, sizeof(huge_delta), &msg, NULL), LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact(too_long, sizeof(too_long), &msg, NULL), LWM2MD_ERR_TOO_BIG);
    assert_int_equal(parse_exact(value_cut, sizeof(value_cut), &msg, NULL), LWM2MD_ERR_TRUNCATED);
    assert_int_equal(parse_exact(ext8_cut, sizeof(ext8_cut), &msg, NULL), LWM2MD_ERR_TRUNCATED);
    assert_int_equal(parse_exact(ext16_cut, sizeof(ext16_cut), &msg, NULL), LWM2MD_ERR_TRUNCATED);

    /* The writer refuses the same length. */
    uint8_t value[COAP_OPTION_VALUE_MAX + 1] = {0};
    uint8_t buf[2048];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add(&w, COAP_OPTION_PROXY_URI, value, sizeof(value));
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_TOO_BIG);
}

static void test_option_count_bound(void **state)
{
    uint8_t buf[4 + COAP_MSG_MAX_OPTIONS + 2];
    coap_msg_t msg;

    /* Forty zero-length Uri-Path options fit, the forty-first does not. */
    memcpy(buf, (const uint8_t[]){0x40, COAP_GET, 0, 1}, 4);
    buf[4] = 0xb0;
    memset(buf + 5, 0x00, sizeof(buf) - 5);
    assert_int_equal(parse_exact(buf, 4 + COAP_MSG_MAX_OPTIONS, &msg, NULL), 0);
    assert_int_equal(msg.option_count, COAP_MSG_MAX_OPTIONS);
    assert_int_equal(msg.options[COAP_MSG_MAX_OPTIONS - 1].number, COAP_OPTION_URI_PATH);
    assert_int_equal(parse_exact(buf, 4 + COAP_MSG_MAX_OPTIONS + 1, &msg, NULL),
                     LWM2MD_ERR_TOO_BIG);

    /* A payload after the fortieth option is fine. */
    buf[4 + COAP_MSG_MAX_OPTIONS] = 0xff;
    buf[4 + COAP_MSG_MAX_OPTIONS + 1] = 'p';
    assert_int_equal(parse_exact(buf, sizeof(buf), &msg, NULL), 0);
    assert_int_equal(msg.payload_len, 1);
}

/* Builds a message with long options and a payload for the truncation test. */
static size_t build_rich_message(uint8_t *buf, size_t capacity, size_t *cuts, size_t *cut_count)
{
    static const uint8_t long_value[300] = {1};
    coap_writer_t w;
    size_t n = 0;

    coap_writer_init(&w, buf, capacity, COAP_TYPE_CON, COAP_PUT, 0x0102, token4, 4);
    cuts[n++] = w.len;
    coap_writer_add(&w, COAP_OPTION_IF_MATCH, token4, 2);
    cuts[n++] = w.len;
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "a-path-segment");
    cuts[n++] = w.len;
    coap_writer_add_uint(&w, COAP_OPTION_BLOCK1, 0x1e);
    cuts[n++] = w.len;
    coap_writer_add(&w, 300, long_value, sizeof(long_value));
    cuts[n++] = w.len;
    coap_writer_add(&w, 2000, NULL, 0);
    cuts[n++] = w.len;
    size_t marker = w.len;
    coap_writer_payload(&w, "payload!", 8);

    /* Every cut inside the payload leaves a shorter, valid payload. */
    for (size_t end = marker + 2; end <= w.len; end++) {
        cuts[n++] = end;
    }
    *cut_count = n;
    int len = coap_writer_finish(&w);
    assert_true(len > 0);
    return (size_t)len;
}

static bool is_cut(const size_t *cuts, size_t count, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        if (cuts[i] == len) {
            return true;
        }
    }
    return false;
}

static void test_every_truncation(void **state)
{
    uint8_t buf[512];
    size_t cuts[32];
    size_t cut_count = 0;
    coap_msg_t full;
    coap_msg_t msg;
    size_t len = build_rich_message(buf, sizeof(buf), cuts, &cut_count);

    assert_int_equal(coap_msg_parse(buf, len, &full, NULL), 0);
    assert_int_equal(full.option_count, 5);

    /* A prefix parses only at an option boundary or inside the payload. */
    for (size_t cut = 0; cut < len; cut++) {
        int rc = parse_exact(buf, cut, &msg, NULL);
        if (!is_cut(cuts, cut_count, cut)) {
            assert_true(rc == LWM2MD_ERR_TRUNCATED || rc == LWM2MD_ERR_INVALID);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_true(msg.option_count <= full.option_count);
        for (size_t i = 0; i < msg.option_count; i++) {
            assert_int_equal(msg.options[i].number, full.options[i].number);
            assert_int_equal(msg.options[i].length, full.options[i].length);
        }
        assert_true(msg.payload_len < full.payload_len);
    }
}

/* xorshift32: a reproducible stream of garbage. */
static uint32_t next_random(uint32_t *seed)
{
    uint32_t x = *seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *seed = x;
    return x;
}

/* Rewrites a parsed message with the writer; the wire form is canonical. */
static int reserialise(const coap_msg_t *msg, uint8_t *buf, size_t capacity)
{
    coap_writer_t w;
    coap_writer_init(&w, buf, capacity, msg->type, msg->code, msg->mid, msg->token, msg->token_len);
    for (size_t i = 0; i < msg->option_count; i++) {
        coap_writer_add(&w, msg->options[i].number, msg->options[i].value, msg->options[i].length);
    }
    coap_writer_payload(&w, msg->payload, msg->payload_len);
    return coap_writer_finish(&w);
}

static void test_garbage_datagrams(void **state)
{
    uint32_t seed = 0x1234567u;
    uint8_t datagram[96];
    uint8_t again[128];
    coap_msg_t msg;
    size_t accepted = 0;

    for (int round = 0; round < 20000; round++) {
        size_t len = next_random(&seed) % sizeof(datagram);
        for (size_t i = 0; i < len; i++) {
            datagram[i] = (uint8_t)next_random(&seed);
        }
        /* Bias towards version 1 and small token lengths to get deeper. */
        if (len > 0 && round % 2 == 0) {
            datagram[0] = (uint8_t)(0x40 | (datagram[0] & 0x37));
        }

        uint8_t *copy = exact_copy(datagram, len);
        int rc = coap_msg_parse(copy, len, &msg, NULL);
        if (rc == 0) {
            accepted++;
            int again_len = reserialise(&msg, again, sizeof(again));
            assert_int_equal(again_len, len);
            assert_memory_equal(again, datagram, len);
        } else {
            assert_true(rc == LWM2MD_ERR_INVALID || rc == LWM2MD_ERR_TRUNCATED ||
                        rc == LWM2MD_ERR_TOO_BIG);
        }
        free(copy);
    }
    assert_true(accepted > 100);
}

static void test_writer_errors(void **state)
{
    uint8_t buf[32];
    uint8_t big_token[9] = {0};
    coap_writer_t w;

    /* A token over 8 bytes. */
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, big_token, 9);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);

    /* Options out of order; the error sticks through later calls. */
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "a");
    coap_writer_add_string(&w, COAP_OPTION_URI_HOST, "h");
    size_t len_at_error = w.len;
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, "q");
    coap_writer_payload(&w, "x", 1);
    assert_int_equal(w.len, len_at_error);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);

    /* A buffer too small for the header, then for an option. */
    coap_writer_init(&w, buf, 3, COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_TOO_BIG);
    coap_writer_init(&w, buf, 8, COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "abcd");
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_TOO_BIG);
    coap_writer_init(&w, buf, 8, COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "abc");
    assert_int_equal(coap_writer_finish(&w), 8);
    coap_writer_init(&w, buf, 8, COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_payload(&w, "abcd", 4);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_TOO_BIG);

    /* Nothing may follow the payload. */
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_payload(&w, "x", 1);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "a");
    assert_true(coap_writer_finish(&w) < 0);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_payload(&w, "x", 1);
    coap_writer_add(&w, 65535, NULL, 0);
    assert_true(coap_writer_finish(&w) < 0);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_payload(&w, "x", 1);
    coap_writer_payload(&w, "y", 1);
    assert_true(coap_writer_finish(&w) < 0);

    /* Bad arguments. */
    coap_writer_init(&w, buf, sizeof(buf), (coap_type_t)4, COAP_GET, 1, NULL, 0);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, NULL);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_GET, 1, NULL, 0);
    coap_writer_add(&w, COAP_OPTION_ETAG, NULL, 2);
    assert_int_equal(coap_writer_finish(&w), LWM2MD_ERR_INVALID);
}

static void test_uint_options(void **state)
{
    static const struct {
        uint32_t value;
        size_t length;
    } cases[] = {{0, 0},     {1, 1},        {255, 1},       {256, 2},       {65535, 2},
                 {65536, 3}, {0xffffff, 3}, {0x1000000, 4}, {0xffffffff, 4}};
    uint8_t buf[32];
    coap_writer_t w;
    coap_msg_t msg;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_NON, COAP_CONTENT, 1, NULL, 0);
        coap_writer_add_uint(&w, COAP_OPTION_MAX_AGE, cases[i].value);
        int len = coap_writer_finish(&w);
        /* Max-Age (14) takes a one-byte delta extension. */
        assert_int_equal(len, 4 + 2 + cases[i].length);
        assert_int_equal(coap_msg_parse(buf, (size_t)len, &msg, NULL), 0);
        assert_int_equal(msg.options[0].length, cases[i].length);

        uint32_t decoded = 1234;
        assert_int_equal(coap_option_uint(&msg.options[0], &decoded), 0);
        assert_int_equal(decoded, cases[i].value);
    }

    /* Leading zeros are accepted; five bytes are not a uint. */
    const uint8_t padded[] = {0x00, 0x00, 0x01};
    const uint8_t five[] = {1, 2, 3, 4, 5};
    coap_option_t opt = {.number = COAP_OPTION_SIZE1, .length = 3, .value = padded};
    uint32_t value = 0;
    assert_int_equal(coap_option_uint(&opt, &value), 0);
    assert_int_equal(value, 1);
    opt = (coap_option_t){.number = COAP_OPTION_SIZE1, .length = 5, .value = five};
    assert_int_equal(coap_option_uint(&opt, &value), LWM2MD_ERR_INVALID);
}

static void test_block_options(void **state)
{
    const uint8_t first_of_many[] = {0x0e};       /* num 0, more, 1024 */
    const uint8_t second_last[] = {0x12};         /* num 1, last, 64 */
    const uint8_t largest[] = {0xff, 0xff, 0xfe}; /* num 2^20-1, more, 1024 */
    const uint8_t reserved_szx[] = {0x17};
    const uint8_t four_bytes[] = {0x00, 0x00, 0x00, 0x16};
    coap_option_t opt = {.number = COAP_OPTION_BLOCK1};
    coap_block_t block;

    opt.length = 0;
    opt.value = NULL;
    assert_int_equal(coap_block_decode(&opt, &block), 0);
    assert_int_equal(block.num, 0);
    assert_false(block.more);
    assert_int_equal(block.szx, 0);

    opt.length = 1;
    opt.value = first_of_many;
    assert_int_equal(coap_block_decode(&opt, &block), 0);
    assert_int_equal(block.num, 0);
    assert_true(block.more);
    assert_int_equal(coap_block_size(block.szx), 1024);

    opt.value = second_last;
    assert_int_equal(coap_block_decode(&opt, &block), 0);
    assert_int_equal(block.num, 1);
    assert_false(block.more);
    assert_int_equal(coap_block_size(block.szx), 64);

    opt.length = 3;
    opt.value = largest;
    assert_int_equal(coap_block_decode(&opt, &block), 0);
    assert_int_equal(block.num, 0xfffff);
    assert_true(block.more);
    assert_int_equal(coap_block_encode(&block), 0xfffffe);

    /* szx 7 is reserved; more than 3 bytes is not a block value. */
    opt.length = 1;
    opt.value = reserved_szx;
    assert_int_equal(coap_block_decode(&opt, &block), LWM2MD_ERR_INVALID);
    opt.length = 4;
    opt.value = four_bytes;
    assert_int_equal(coap_block_decode(&opt, &block), LWM2MD_ERR_INVALID);

    assert_int_equal(coap_block_size(0), 16);
    assert_int_equal(coap_block_size(6), 1024);
    assert_int_equal(coap_block_size(7), 0);
}

static void test_block1_request_round_trip(void **state)
{
    uint8_t buf[128];
    uint8_t chunk[64];
    coap_writer_t w;
    coap_msg_t msg;
    coap_block_t sent = {.num = 300, .more = true, .szx = 2};
    coap_block_t got;

    memset(chunk, 'z', sizeof(chunk));
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_POST, 77, token4, 2);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "rd");
    coap_writer_add_uint(&w, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_LINK);
    coap_writer_add_uint(&w, COAP_OPTION_BLOCK1, coap_block_encode(&sent));
    coap_writer_add_uint(&w, COAP_OPTION_SIZE1, 4000);
    coap_writer_payload(&w, chunk, coap_block_size(sent.szx));
    int len = coap_writer_finish(&w);
    assert_true(len > 0);

    assert_int_equal(coap_msg_parse(buf, (size_t)len, &msg, NULL), 0);
    const coap_option_t *block1 = coap_msg_find(&msg, COAP_OPTION_BLOCK1);
    assert_non_null(block1);
    assert_int_equal(block1->length, 2);
    assert_int_equal(coap_block_decode(block1, &got), 0);
    assert_int_equal(got.num, 300);
    assert_true(got.more);
    assert_int_equal(got.szx, 2);
    assert_int_equal(msg.payload_len, 64);
    assert_true(coap_option_is_critical(block1->number));
}

static void test_critical_and_code_strings(void **state)
{
    char text[5];

    assert_true(coap_option_is_critical(COAP_OPTION_IF_MATCH));
    assert_true(coap_option_is_critical(COAP_OPTION_URI_PATH));
    assert_true(coap_option_is_critical(COAP_OPTION_BLOCK2));
    assert_false(coap_option_is_critical(COAP_OPTION_ETAG));
    assert_false(coap_option_is_critical(COAP_OPTION_OBSERVE));
    assert_false(coap_option_is_critical(COAP_OPTION_SIZE1));

    assert_string_equal(coap_code_string(COAP_CONTENT, text), "2.05");
    assert_string_equal(coap_code_string(COAP_NOT_FOUND, text), "4.04");
    assert_string_equal(coap_code_string(COAP_CODE_EMPTY, text), "0.00");
    assert_string_equal(coap_code_string(COAP_POST, text), "0.02");
    assert_string_equal(coap_code_string(COAP_CONTINUE, text), "2.31");
    assert_string_equal(coap_code_string(0xff, text), "7.31");
    assert_ptr_equal(coap_code_string(COAP_CREATED, text), text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_register_request),
        cmocka_unit_test(test_writer_matches_hand_encoding),
        cmocka_unit_test(test_response_with_location_path),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_token_lengths),
        cmocka_unit_test(test_payload_marker),
        cmocka_unit_test(test_reserved_nibbles),
        cmocka_unit_test(test_extended_deltas_and_lengths),
        cmocka_unit_test(test_option_bounds),
        cmocka_unit_test(test_option_count_bound),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_garbage_datagrams),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_uint_options),
        cmocka_unit_test(test_block_options),
        cmocka_unit_test(test_block1_request_round_trip),
        cmocka_unit_test(test_critical_and_code_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
