/* CoAP exchanges: duplicates, pings, Block1, Block2 and retransmission. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/error.h"
#include "coap/endpoint.h"

#define SENT_MAX 16

/* A transport that records what the endpoint sends. */
typedef struct fixture {
    uv_loop_t loop;
    coap_endpoint_t *ep;
    net_addr_t peer;
    size_t sent_count;
    size_t sent_len[SENT_MAX];
    uint8_t sent[SENT_MAX][1500];
    size_t handled;
    size_t last_body_len;
    uint8_t last_body[4096];
    uint8_t reply[1024];
    size_t reply_len;
    int result_status;
    size_t results;
    uint8_t result_code;
    size_t result_len;
    uint8_t result_body[1024];
} fixture_t;

static int record_send(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    fixture_t *f = ctx;
    (void)peer;
    if (f->sent_count < SENT_MAX) {
        memcpy(f->sent[f->sent_count], data, len);
        f->sent_len[f->sent_count] = len;
    }
    f->sent_count++;
    return 0;
}

static void handler(void *ctx, const coap_request_t *req, coap_response_t *resp)
{
    fixture_t *f = ctx;
    f->handled++;
    f->last_body_len = req->body_len;
    if (req->body_len > 0) {
        memcpy(f->last_body, req->body, req->body_len);
    }
    resp->code = COAP_CHANGED;
    resp->payload = f->reply;
    resp->payload_len = f->reply_len;
}

static coap_params_t test_params(void)
{
    coap_params_t p = {
        .ack_timeout_ms = 20,
        .ack_random_factor = 1.0,
        .max_retransmit = 2,
        .max_body_size = 1000,
        .block_size = 128,
        .max_dedup = 100,
        .max_transfers = 4,
        .max_outgoing = 4,
    };
    return p;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    coap_transport_t transport = {.send = record_send, .ctx = f};
    coap_params_t params = test_params();
    assert_int_equal(coap_endpoint_new(&f->loop, &transport, &params, handler, f, &f->ep), 0);
    assert_int_equal(net_addr_parse(&f->peer, "127.0.0.1", 5683), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    coap_endpoint_free(f->ep);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Builds a POST /rd request with an optional Block1 option and payload. */
static size_t make_request(uint8_t *buf, coap_type_t type, uint16_t mid, const coap_block_t *b1,
                           const coap_block_t *b2, const void *payload, size_t len)
{
    static const uint8_t token[] = {0xaa, 0xbb};
    coap_writer_t w;
    coap_writer_init(&w, buf, 1500, type, COAP_POST, mid, token, sizeof(token));
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "rd");
    if (b2 != NULL) {
        coap_writer_add_uint(&w, COAP_OPTION_BLOCK2, coap_block_encode(b2));
    }
    if (b1 != NULL) {
        coap_writer_add_uint(&w, COAP_OPTION_BLOCK1, coap_block_encode(b1));
    }
    coap_writer_payload(&w, payload, len);
    int n = coap_writer_finish(&w);
    assert_true(n > 0);
    return (size_t)n;
}

static coap_msg_t last_sent(fixture_t *f)
{
    coap_msg_t msg;
    assert_true(f->sent_count > 0);
    size_t i = f->sent_count - 1;
    assert_int_equal(coap_msg_parse(f->sent[i], f->sent_len[i], &msg, NULL), 0);
    return msg;
}

static void test_piggybacked_and_duplicate(void **state)
{
    fixture_t *f = *state;
    uint8_t req[1500];
    size_t len = make_request(req, COAP_TYPE_CON, 0x1234, NULL, NULL, "hi", 2);

    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    coap_msg_t ack = last_sent(f);
    assert_int_equal(ack.type, COAP_TYPE_ACK);
    assert_int_equal(ack.mid, 0x1234);
    assert_int_equal(ack.code, COAP_CHANGED);
    assert_int_equal(ack.token_len, 2);

    /* The duplicate is answered with the same bytes and not handled again. */
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    assert_int_equal(f->handled, 1);
    assert_int_equal(f->sent_count, 2);
    assert_int_equal(f->sent_len[0], f->sent_len[1]);
    assert_memory_equal(f->sent[0], f->sent[1], f->sent_len[0]);

    /* The same message ID from another peer is a new request. */
    net_addr_t other;
    net_addr_parse(&other, "127.0.0.2", 5683);
    coap_endpoint_input(f->ep, &other, NULL, req, len);
    assert_int_equal(f->handled, 2);
}

static void test_ping_and_malformed_get_reset(void **state)
{
    fixture_t *f = *state;
    const uint8_t ping[] = {0x40, 0x00, 0x00, 0x07};
    coap_endpoint_input(f->ep, &f->peer, NULL, ping, sizeof(ping));
    coap_msg_t rst = last_sent(f);
    assert_int_equal(rst.type, COAP_TYPE_RST);
    assert_int_equal(rst.mid, 7);

    /* Token length 9 is a format error: a CON is reset, a NON is dropped. */
    const uint8_t bad_con[] = {0x49, 0x02, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    coap_endpoint_input(f->ep, &f->peer, NULL, bad_con, sizeof(bad_con));
    rst = last_sent(f);
    assert_int_equal(rst.type, COAP_TYPE_RST);
    assert_int_equal(rst.mid, 8);
    size_t before = f->sent_count;
    const uint8_t bad_non[] = {0x59, 0x02, 0x00, 0x09};
    coap_endpoint_input(f->ep, &f->peer, NULL, bad_non, sizeof(bad_non));
    const uint8_t tiny[] = {0x40};
    coap_endpoint_input(f->ep, &f->peer, NULL, tiny, sizeof(tiny));
    assert_int_equal(f->sent_count, before);
    assert_int_equal(f->handled, 0);
}

static void test_unknown_critical_option(void **state)
{
    fixture_t *f = *state;
    uint8_t buf[64];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_POST, 9, NULL, 0);
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "rd");
    coap_writer_add_uint(&w, 2049, 1); /* odd: critical, unknown */
    int len = coap_writer_finish(&w);
    assert_true(len > 0);
    coap_endpoint_input(f->ep, &f->peer, NULL, buf, (size_t)len);
    assert_int_equal(last_sent(f).code, COAP_BAD_OPTION);
    assert_int_equal(f->handled, 0);
}

static void test_block1_reassembly(void **state)
{
    fixture_t *f = *state;
    uint8_t body[300];
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = (uint8_t)('a' + i % 26);
    }
    uint8_t req[1500];
    coap_block_t b = {.num = 0, .more = true, .szx = 3}; /* 128 bytes */

    size_t len = make_request(req, COAP_TYPE_CON, 100, &b, NULL, body, 128);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    assert_int_equal(last_sent(f).code, COAP_CONTINUE);

    /* Out of order: block 2 before block 1. */
    coap_block_t skip = {.num = 2, .more = false, .szx = 3};
    len = make_request(req, COAP_TYPE_CON, 101, &skip, NULL, body + 256, 44);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    assert_int_equal(last_sent(f).code, COAP_REQUEST_ENTITY_INCOMPLETE);

    b.num = 1;
    len = make_request(req, COAP_TYPE_CON, 102, &b, NULL, body + 128, 128);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    assert_int_equal(last_sent(f).code, COAP_CONTINUE);
    b.num = 2;
    b.more = false;
    len = make_request(req, COAP_TYPE_CON, 103, &b, NULL, body + 256, 44);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    coap_msg_t done = last_sent(f);
    assert_int_equal(done.code, COAP_CHANGED);
    assert_non_null(coap_msg_find(&done, COAP_OPTION_BLOCK1));
    assert_int_equal(f->handled, 1);
    assert_int_equal(f->last_body_len, sizeof(body));
    assert_memory_equal(f->last_body, body, sizeof(body));
}

static void test_block1_over_limit(void **state)
{
    fixture_t *f = *state;
    uint8_t block[128] = {0};
    uint8_t req[1500];
    coap_block_t b = {.num = 0, .more = true, .szx = 3};
    for (uint16_t i = 0; i < 8; i++) {
        b.num = i;
        size_t len = make_request(req, COAP_TYPE_CON, (uint16_t)(200 + i), &b, NULL, block, 128);
        coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    }
    coap_msg_t msg = last_sent(f);
    assert_int_equal(msg.code, COAP_REQUEST_ENTITY_TOO_LARGE);
    uint32_t size1 = 0;
    assert_int_equal(coap_option_uint(coap_msg_find(&msg, COAP_OPTION_SIZE1), &size1), 0);
    assert_int_equal(size1, 1000);
    assert_int_equal(f->handled, 0);
}

static void test_block2_slicing(void **state)
{
    fixture_t *f = *state;
    f->reply_len = 300;
    for (size_t i = 0; i < f->reply_len; i++) {
        f->reply[i] = (uint8_t)i;
    }
    uint8_t req[1500];
    size_t len = make_request(req, COAP_TYPE_CON, 300, NULL, NULL, NULL, 0);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    coap_msg_t first = last_sent(f);
    coap_block_t b2;
    assert_int_equal(coap_block_decode(coap_msg_find(&first, COAP_OPTION_BLOCK2), &b2), 0);
    assert_int_equal(b2.num, 0);
    assert_true(b2.more);
    assert_int_equal(first.payload_len, 128);
    uint32_t size2 = 0;
    assert_int_equal(coap_option_uint(coap_msg_find(&first, COAP_OPTION_SIZE2), &size2), 0);
    assert_int_equal(size2, 300);

    coap_block_t ask = {.num = 2, .more = false, .szx = 3};
    len = make_request(req, COAP_TYPE_CON, 301, NULL, &ask, NULL, 0);
    coap_endpoint_input(f->ep, &f->peer, NULL, req, len);
    coap_msg_t last = last_sent(f);
    assert_int_equal(coap_block_decode(coap_msg_find(&last, COAP_OPTION_BLOCK2), &b2), 0);
    assert_int_equal(b2.num, 2);
    assert_false(b2.more);
    assert_int_equal(last.payload_len, 44);
    assert_memory_equal(last.payload, f->reply + 256, 44);
}

/* Found by fuzz_registration: a block past the end of an empty answer, and an empty block. */
static void test_blocks_of_nothing(void **state)
{
    fixture_t *f = *state;
    const uint8_t block2_past_empty[] = {0x40, 0x01, 0x00, 0x01, 0xd1, 0x0a, 0x10};
    coap_endpoint_input(f->ep, &f->peer, NULL, block2_past_empty, sizeof(block2_past_empty));
    coap_msg_t msg = last_sent(f);
    assert_int_equal(msg.code, COAP_BAD_OPTION);
    assert_int_equal(msg.payload_len, 0);

    const uint8_t empty_block1[] = {0x40, 0x01, 0x00, 0x39, 0xd0, 0x0e};
    coap_endpoint_input(f->ep, &f->peer, NULL, empty_block1, sizeof(empty_block1));
    assert_int_equal(last_sent(f).mid, 0x39);
}

static void on_result(void *ctx, int status, const coap_msg_t *response, const uint8_t *body,
                      size_t body_len)
{
    fixture_t *f = ctx;
    f->results++;
    f->result_len = body_len;
    if (body_len > 0 && body_len <= sizeof(f->result_body)) {
        memcpy(f->result_body, body, body_len);
    }
    f->result_status = status;
    f->result_code = response != NULL ? response->code : 0;
}

static void test_request_retransmits_then_times_out(void **state)
{
    fixture_t *f = *state;
    const char *path[] = {"3", "0", NULL};
    assert_int_equal(
        coap_endpoint_request(f->ep, &f->peer, COAP_GET, path, NULL, -1, NULL, 0, on_result, f), 0);
    uv_run(&f->loop, UV_RUN_ONCE); /* first timeout: 20 ms */
    while (f->results == 0) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    /* One transmission and max_retransmit (2) retransmissions, identical. */
    assert_int_equal(f->sent_count, 3);
    assert_memory_equal(f->sent[0], f->sent[2], f->sent_len[0]);
    assert_int_equal(f->result_status, LWM2MD_ERR_AGAIN);
}

static void test_request_answered(void **state)
{
    fixture_t *f = *state;
    const char *path[] = {"3", "0", "0", NULL};
    assert_int_equal(
        coap_endpoint_request(f->ep, &f->peer, COAP_GET, path, NULL, -1, NULL, 0, on_result, f), 0);
    coap_msg_t req = last_sent(f);
    assert_int_equal(req.type, COAP_TYPE_CON);

    /* An empty ACK, then the response separately in a CON, which we ACK. */
    uint8_t buf[64];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CODE_EMPTY, req.mid, NULL, 0);
    int len = coap_writer_finish(&w);
    coap_endpoint_input(f->ep, &f->peer, NULL, buf, (size_t)len);
    assert_int_equal(f->results, 0);

    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_CON, COAP_CONTENT, 0x4242, req.token,
                     req.token_len);
    coap_writer_payload(&w, "Acme", 4);
    len = coap_writer_finish(&w);
    coap_endpoint_input(f->ep, &f->peer, NULL, buf, (size_t)len);
    assert_int_equal(f->results, 1);
    assert_int_equal(f->result_status, 0);
    assert_int_equal(f->result_code, COAP_CONTENT);
    coap_msg_t ack = last_sent(f);
    assert_int_equal(ack.type, COAP_TYPE_ACK);
    assert_int_equal(ack.mid, 0x4242);
}

/* Answers the last request sent with one Block2 block of a 150-byte body. */
static void answer_block(fixture_t *f, const uint8_t *body, uint32_t num, bool more)
{
    coap_msg_t req = last_sent(f);
    uint8_t buf[256];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), COAP_TYPE_ACK, COAP_CONTENT, req.mid, req.token,
                     req.token_len);
    coap_block_t block = {.num = num, .more = more, .szx = 2}; /* 64 bytes */
    coap_writer_add_uint(&w, COAP_OPTION_BLOCK2, coap_block_encode(&block));
    size_t offset = num * 64;
    coap_writer_payload(&w, body + offset, more ? 64 : 150 - offset);
    int len = coap_writer_finish(&w);
    assert_true(len > 0);
    coap_endpoint_input(f->ep, &f->peer, NULL, buf, (size_t)len);
}

static void test_request_follows_block2(void **state)
{
    fixture_t *f = *state;
    uint8_t body[150];
    for (size_t i = 0; i < sizeof(body); i++) {
        body[i] = (uint8_t)(i * 7);
    }
    const char *path[] = {"3", NULL};
    assert_int_equal(
        coap_endpoint_request(f->ep, &f->peer, COAP_GET, path, NULL, -1, NULL, 0, on_result, f), 0);
    coap_msg_t first = last_sent(f);

    answer_block(f, body, 0, true);
    coap_msg_t second = last_sent(f);
    coap_block_t asked;
    assert_int_equal(coap_block_decode(coap_msg_find(&second, COAP_OPTION_BLOCK2), &asked), 0);
    assert_int_equal(asked.num, 1);
    assert_int_equal(asked.szx, 2);
    assert_true(second.mid != first.mid);
    assert_memory_equal(second.token, first.token, first.token_len);
    assert_non_null(coap_msg_find(&second, COAP_OPTION_URI_PATH));
    assert_int_equal(f->results, 0);

    /* Each block asks for the next; the last completes the body. */
    size_t sent = f->sent_count;
    answer_block(f, body, 1, true);
    assert_int_equal(f->sent_count, sent + 1);
    answer_block(f, body, 2, false);
    assert_int_equal(f->results, 1);
    assert_int_equal(f->result_status, 0);
    assert_int_equal(f->result_code, COAP_CONTENT);
    assert_int_equal(f->result_len, sizeof(body));
    assert_memory_equal(f->result_body, body, sizeof(body));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_piggybacked_and_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_and_malformed_get_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_critical_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block1_reassembly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block1_over_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block2_slicing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocks_of_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_retransmits_then_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_follows_block2, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
