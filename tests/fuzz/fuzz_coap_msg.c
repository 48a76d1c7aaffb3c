/*
 * libFuzzer target for the CoAP codec: every datagram the parser accepts
 * must come back byte for byte from the writer (the option encoding of
 * RFC 7252 3.1 is unique), and parse again to the same message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "coap/msg.h"

/* Trap rather than report: libFuzzer records the input that failed. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

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

static void check_same(const coap_msg_t *a, const coap_msg_t *b)
{
    CHECK(a->type == b->type && a->code == b->code && a->mid == b->mid);
    CHECK(a->token_len == b->token_len && memcmp(a->token, b->token, a->token_len) == 0);
    CHECK(a->option_count == b->option_count);
    for (size_t i = 0; i < a->option_count; i++) {
        const coap_option_t *x = &a->options[i];
        const coap_option_t *y = &b->options[i];
        CHECK(x->number == y->number && x->length == y->length);
        CHECK(x->length == 0 || memcmp(x->value, y->value, x->length) == 0);
    }
    CHECK(a->payload_len == b->payload_len);
    CHECK(a->payload_len == 0 || memcmp(a->payload, b->payload, a->payload_len) == 0);
}

/* The option helpers must cope with any option value. */
static void exercise_options(const coap_msg_t *msg)
{
    char code[5];
    coap_code_string(msg->code, code);
    CHECK(strlen(code) == 4);

    for (size_t i = 0; i < msg->option_count; i++) {
        const coap_option_t *opt = &msg->options[i];
        CHECK(coap_msg_find(msg, opt->number) != NULL);

        uint32_t value = 0;
        CHECK((coap_option_uint(opt, &value) == 0) == (opt->length <= 4));

        coap_block_t block;
        if (coap_block_decode(opt, &block) == 0) {
            CHECK(opt->length <= 3 && block.szx < 7 && block.num <= 0xfffff);
            CHECK(coap_block_encode(&block) == value);
            CHECK(coap_block_size(block.szx) >= 16);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    coap_msg_t msg;
    bool header_ok = false;

    int rc = coap_msg_parse(data, size, &msg, &header_ok);
    if (rc != 0) {
        CHECK(rc == LWM2MD_ERR_INVALID || rc == LWM2MD_ERR_TRUNCATED || rc == LWM2MD_ERR_TOO_BIG);
        CHECK(!header_ok || (size >= 4 && data[0] >> 6 == 1));
        return 0;
    }
    CHECK(header_ok && msg.option_count <= COAP_MSG_MAX_OPTIONS);
    exercise_options(&msg);

    /* Writer: the same bytes, with no room to spare. */
    uint8_t *again = malloc(size);
    CHECK(again != NULL);
    CHECK(reserialise(&msg, again, size) == (int)size);
    CHECK(memcmp(again, data, size) == 0);

    /* Parser again: the same message. */
    coap_msg_t second;
    CHECK(coap_msg_parse(again, size, &second, NULL) == 0);
    check_same(&msg, &second);

    /* One byte short of room must fail cleanly. */
    CHECK(reserialise(&msg, again, size - 1) == LWM2MD_ERR_TOO_BIG);
    free(again);
    return 0;
}
