/*
 * libFuzzer target for the plaintext path a NoSec device reaches: CoAP
 * endpoint (dedup, Block1, replies) and the registration interface over
 * a live registry. The input is a sequence of datagrams, each a 2-byte
 * big-endian length and that many bytes (the last one takes what is
 * left). A Uri-Path holding "@ID@" gets the id of the last 2.01 Created
 * in its place, so Register then Update or De-register is reachable.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/error.h"
#include "coap/endpoint.h"
#include "coap/msg.h"
#include "log/log.h"
#include "lwm2m/registration.h"
#include "lwm2m/registry.h"
#include "net/addr.h"
#include "store/store.h"

/* Trap rather than report: libFuzzer records the input that failed. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_REGISTRATIONS 1000
#define TABLE_CAP 64  /* cached responses and Block1 transfers */
#define MAX_BODY 1024 /* small, so that 4.13 is reachable within one input */
#define SENT_MAX 1400 /* the largest datagram the endpoint builds */
#define ID_MARK "@ID@"
#define ID_MARK_LEN 4
#define CLEAR_ALL (INT64_MAX / 4) /* a "now" past every expiry */

typedef struct fuzz_ctx {
    uv_loop_t loop;
    registry_t *registry;
    reg_handler_t handler;
    coap_endpoint_t *endpoint;
    net_addr_t peer;
    uint32_t inputs;
    char last_id[STORE_REG_ID_MAX + 1];

    /* What the endpoint sent for the datagram being fed. */
    size_t sent_count;
    uint8_t sent[SENT_MAX];
    coap_msg_t reply; /* the last datagram sent, parsed; borrows `sent` */
} fuzz_ctx_t;

/* The transport: keeps the datagram for the checks and notes a new registration id. */
static int capture_send(void *arg, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    fuzz_ctx_t *ctx = arg;
    CHECK(net_addr_equal(peer, &ctx->peer));
    CHECK(len > 0 && len <= sizeof(ctx->sent));
    memcpy(ctx->sent, data, len);
    ctx->sent_count++;

    /* The server never sends a malformed message. */
    CHECK(coap_msg_parse(ctx->sent, len, &ctx->reply, NULL) == LWM2MD_OK);

    for (size_t i = 0; i < ctx->reply.option_count; i++) {
        const coap_option_t *opt = &ctx->reply.options[i];
        if (opt->number == COAP_OPTION_LOCATION_PATH) {
            CHECK(opt->length <= STORE_REG_ID_MAX);
            memcpy(ctx->last_id, opt->value, opt->length);
            ctx->last_id[opt->length] = '\0';
        }
    }
    return 0;
}

static fuzz_ctx_t *context_new(void)
{
    fuzz_ctx_t *ctx = calloc(1, sizeof(*ctx));
    CHECK(ctx != NULL);
    log_set_level(LOG_LEVEL_ERROR);
    CHECK(uv_loop_init(&ctx->loop) == 0);
    CHECK(registry_new(MAX_REGISTRATIONS, NULL, &ctx->registry) == LWM2MD_OK);
    reg_handler_init(&ctx->handler, ctx->registry, false, true);

    coap_transport_t transport = {.send = capture_send, .ctx = ctx};
    coap_params_t params = {
        .ack_timeout_ms = 2000,
        .ack_random_factor = 1.5,
        .max_retransmit = 4,
        .max_body_size = MAX_BODY,
        .block_size = 1024,
        .max_dedup = TABLE_CAP,
        .max_transfers = TABLE_CAP,
        .max_outgoing = TABLE_CAP,
    };
    CHECK(coap_endpoint_new(&ctx->loop, &transport, &params, reg_handle_request, &ctx->handler,
                            &ctx->endpoint) == LWM2MD_OK);
    return ctx;
}

/*
 * The one server instance, made on first use and kept across inputs for
 * speed: libFuzzer's entry points take no context argument.
 */
static fuzz_ctx_t *fuzz_context(void)
{
    static fuzz_ctx_t *ctx;
    if (ctx == NULL) {
        ctx = context_new();
    }
    return ctx;
}

/*
 * Each input starts with no registrations and comes from a peer port of
 * its own, so the duplicate cache and the Block1 transfers of earlier
 * inputs (capped at TABLE_CAP, oldest out first) never answer for it.
 */
static void start_input(fuzz_ctx_t *ctx)
{
    registry_expire(ctx->registry, CLEAR_ALL, 0);
    CHECK(registry_count(ctx->registry) == 0);
    ctx->inputs++;
    uint16_t port = (uint16_t)(1 + ctx->inputs % 65535);
    CHECK(net_addr_parse(&ctx->peer, "127.0.0.1", port) == LWM2MD_OK);
    ctx->last_id[0] = '\0';
}

/* One Uri-Path value with its first "@ID@" replaced by id; false when it has none. */
static bool replace_mark(const coap_option_t *opt, const char *id, uint8_t *value, size_t *len)
{
    if (opt->number != COAP_OPTION_URI_PATH || opt->length < ID_MARK_LEN ||
        opt->length > COAP_OPTION_VALUE_MAX) {
        return false;
    }
    const uint8_t *mark = memmem(opt->value, opt->length, ID_MARK, ID_MARK_LEN);
    if (mark == NULL) {
        return false;
    }
    size_t head = (size_t)(mark - opt->value);
    size_t tail = opt->length - head - ID_MARK_LEN;
    size_t id_len = strlen(id);
    memcpy(value, opt->value, head);
    memcpy(value + head, id, id_len);
    memcpy(value + head + id_len, mark + ID_MARK_LEN, tail);
    *len = head + id_len + tail;
    return true;
}

/* Rewrites msg with the id in place of each Uri-Path mark; 0 when nothing changed. */
static size_t substitute_id(const coap_msg_t *msg, const char *id, uint8_t *out, size_t capacity)
{
    bool changed = false;
    coap_writer_t w;
    coap_writer_init(&w, out, capacity, msg->type, msg->code, msg->mid, msg->token, msg->token_len);
    for (size_t i = 0; i < msg->option_count; i++) {
        const coap_option_t *opt = &msg->options[i];
        uint8_t value[COAP_OPTION_VALUE_MAX + STORE_REG_ID_MAX];
        size_t len = 0;
        if (replace_mark(opt, id, value, &len)) {
            coap_writer_add(&w, opt->number, value, len);
            changed = true;
        } else {
            coap_writer_add(&w, opt->number, opt->value, opt->length);
        }
    }
    coap_writer_payload(&w, msg->payload, msg->payload_len);
    int len = coap_writer_finish(&w);
    return changed && len > 0 ? (size_t)len : 0;
}

/* The datagram to feed, in a heap block of its exact size so over-reads trip ASan. */
static uint8_t *prepare(const fuzz_ctx_t *ctx, const uint8_t *chunk, size_t len, size_t *out_len)
{
    size_t capacity = len + COAP_MSG_MAX_OPTIONS * STORE_REG_ID_MAX;
    uint8_t *scratch = malloc(capacity);
    CHECK(scratch != NULL);

    coap_msg_t msg;
    size_t rewritten = 0;
    if (coap_msg_parse(chunk, len, &msg, NULL) == LWM2MD_OK) {
        rewritten = substitute_id(&msg, ctx->last_id, scratch, capacity);
    }
    const uint8_t *source = rewritten > 0 ? scratch : chunk;
    *out_len = rewritten > 0 ? rewritten : len;

    uint8_t *datagram = malloc(*out_len > 0 ? *out_len : 1);
    CHECK(datagram != NULL);
    if (*out_len > 0) {
        memcpy(datagram, source, *out_len);
    }
    free(scratch);
    return datagram;
}

/* Nothing, or one RST with this message ID. */
static void check_empty_reply(const fuzz_ctx_t *ctx, bool expected, uint16_t mid)
{
    if (!expected) {
        CHECK(ctx->sent_count == 0);
        return;
    }
    CHECK(ctx->sent_count == 1);
    CHECK(ctx->reply.type == COAP_TYPE_RST && ctx->reply.mid == mid);
    CHECK(ctx->reply.code == COAP_CODE_EMPTY && ctx->reply.token_len == 0);
}

/* The codes the endpoint (RFC 7252, 7959) and the handler (LwM2M Core 6.2) answer with. */
static bool known_reply_code(uint8_t code)
{
    switch (code) {
    case COAP_CREATED:
    case COAP_DELETED:
    case COAP_CHANGED:
    case COAP_CONTINUE:
    case COAP_BAD_REQUEST:
    case COAP_BAD_OPTION:
    case COAP_FORBIDDEN:
    case COAP_NOT_FOUND:
    case COAP_METHOD_NOT_ALLOWED:
    case COAP_REQUEST_ENTITY_INCOMPLETE:
    case COAP_PRECONDITION_FAILED:
    case COAP_REQUEST_ENTITY_TOO_LARGE:
    case COAP_UNSUPPORTED_CONTENT_FORMAT:
    case COAP_INTERNAL_SERVER_ERROR:
    case COAP_SERVICE_UNAVAILABLE:
        return true;
    default:
        return false;
    }
}

/* Only 2.01 carries a Location-Path, and it is rd/{id}, the id letters and digits. */
static void check_location(const coap_msg_t *reply)
{
    const coap_option_t *path[COAP_MSG_MAX_OPTIONS];
    size_t count = 0;
    for (size_t i = 0; i < reply->option_count; i++) {
        if (reply->options[i].number == COAP_OPTION_LOCATION_PATH) {
            path[count++] = &reply->options[i];
        }
    }
    if (reply->code != COAP_CREATED) {
        CHECK(count == 0);
        return;
    }
    CHECK(count == 2);
    CHECK(path[0]->length == 2 && memcmp(path[0]->value, "rd", 2) == 0);
    CHECK(path[1]->length > 0 && path[1]->length <= STORE_REG_ID_MAX);
    for (size_t i = 0; i < path[1]->length; i++) {
        uint8_t c = path[1]->value[i];
        CHECK((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'));
    }
}

/* A request gets exactly one answer: piggybacked in an ACK for a CON, a NON for a NON. */
static void check_request_reply(const fuzz_ctx_t *ctx, const coap_msg_t *req,
                                const coap_endpoint_stats_t *before)
{
    coap_endpoint_stats_t after;
    coap_endpoint_get_stats(ctx->endpoint, &after);
    CHECK(ctx->sent_count == 1);
    const coap_msg_t *reply = &ctx->reply;
    CHECK(known_reply_code(reply->code));
    check_location(reply);

    /* A duplicate replays the first answer, which may differ in type and token. */
    if (after.duplicates != before->duplicates) {
        CHECK(after.requests == before->requests);
        return;
    }
    CHECK(after.requests == before->requests + 1);
    CHECK(reply->type == (req->type == COAP_TYPE_CON ? COAP_TYPE_ACK : COAP_TYPE_NON));
    CHECK(req->type != COAP_TYPE_CON || reply->mid == req->mid);
    CHECK(reply->token_len == req->token_len);
    CHECK(memcmp(reply->token, req->token, req->token_len) == 0);
}

static void check_answer(const fuzz_ctx_t *ctx, int parsed, bool header_ok, const coap_msg_t *req,
                         const coap_endpoint_stats_t *before)
{
    /* RFC 7252 4.2: a CON with a format error is rejected with RST, anything else dropped. */
    if (parsed != LWM2MD_OK) {
        check_empty_reply(ctx, header_ok && req->type == COAP_TYPE_CON, req->mid);
        return;
    }

    /* No request of ours is outstanding, so an ACK or RST matches nothing. */
    if (req->type == COAP_TYPE_ACK || req->type == COAP_TYPE_RST) {
        CHECK(ctx->sent_count == 0);
        return;
    }

    /* A ping (RFC 7252 4.3), an unmatched response or a reserved class: RST for a CON. */
    if (req->code == COAP_CODE_EMPTY || COAP_CODE_CLASS(req->code) != 0) {
        check_empty_reply(ctx, req->type == COAP_TYPE_CON, req->mid);
        return;
    }
    check_request_reply(ctx, req, before);
}

/* Everything a peer can grow stays within its cap. */
static void check_bounds(const fuzz_ctx_t *ctx, int parsed, const coap_endpoint_stats_t *before)
{
    coap_endpoint_stats_t after;
    coap_endpoint_get_stats(ctx->endpoint, &after);
    CHECK(after.dedup_entries <= TABLE_CAP && after.transfers <= TABLE_CAP);
    CHECK(after.outgoing == 0);
    CHECK(after.malformed == before->malformed + (parsed != LWM2MD_OK ? 1 : 0));
    CHECK(registry_count(ctx->registry) <= MAX_REGISTRATIONS);
}

static void feed(fuzz_ctx_t *ctx, const uint8_t *chunk, size_t chunk_len)
{
    size_t len = 0;
    uint8_t *datagram = prepare(ctx, chunk, chunk_len, &len);

    /* What the endpoint will make of it decides the answer to expect. */
    coap_msg_t req;
    bool header_ok = false;
    int parsed = coap_msg_parse(datagram, len, &req, &header_ok);
    coap_endpoint_stats_t before;
    coap_endpoint_get_stats(ctx->endpoint, &before);

    ctx->sent_count = 0;
    coap_endpoint_input(ctx->endpoint, &ctx->peer, NULL, datagram, len);
    check_answer(ctx, parsed, header_ok, &req, &before);
    check_bounds(ctx, parsed, &before);
    free(datagram);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_context();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_ctx_t *ctx = fuzz_context();
    start_input(ctx);

    size_t pos = 0;
    while (pos < size) {
        size_t len = size - pos;
        if (len >= 2) {
            size_t declared = ((size_t)data[pos] << 8) | data[pos + 1];
            pos += 2;
            len = declared < size - pos ? declared : size - pos;
        }
        feed(ctx, data + pos, len);
        pos += len;
    }
    return 0;
}
