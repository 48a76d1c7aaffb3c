/* CoAP exchanges: dedup, Block1 reassembly, Block2 slicing, retransmission. */
#include "coap/endpoint.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/htable.h"
#include "base/random.h"
#include "log/log.h"

/*
 * Message IDs come from counters in buckets picked by a hash of the peer
 * address. A counter only increases, so each peer still sees distinct IDs
 * within EXCHANGE_LIFETIME (RFC 7252 4.4), and no state is allocated per
 * peer; peers that share a bucket share its 65536 IDs per lifetime.
 */
#define MID_BUCKETS 4096

#define SWEEP_INTERVAL_MS 1000

/* A Block2 option added to a request: a 2-byte header and up to 3 bytes of value. */
#define BLOCK2_OPTION_ROOM 8

/* Largest datagram the endpoint builds: a 1024-byte block and its header. */
#define DATAGRAM_MAX 1400

/* A cached response, replayed for a duplicate request (RFC 7252 4.5). */
typedef struct dedup_entry {
    htable_node_t node;
    struct dedup_entry *next; /* FIFO by expiry: all share one lifetime */
    net_addr_t peer;
    uint16_t mid;
    uint64_t expires_ms;
    size_t len;
    uint8_t data[];
} dedup_entry_t;

/* A Block1 body being received (RFC 7959 2.5), keyed by peer and URI. */
typedef struct transfer {
    htable_node_t node;
    struct transfer *prev;
    struct transfer *next;
    net_addr_t peer;
    uint64_t uri_hash;
    uint64_t expires_ms;
    size_t len;
    size_t capacity;
    uint8_t *body;
} transfer_t;

/* A server-originated CON request awaiting its answer. */
typedef struct outgoing {
    htable_node_t by_token;
    htable_node_t by_mid;
    coap_endpoint_t *ep;
    net_addr_t peer;
    uint8_t token[COAP_TOKEN_MAX];
    uint16_t mid;
    bool acked;
    bool done;
    uint32_t timeout_ms;
    uint32_t retransmits;
    uv_timer_t timer;
    coap_response_fn fn;
    void *fn_ctx;
    uint8_t *body; /* a Block2 response being collected (RFC 7959 2.4) */
    size_t body_len;
    size_t capacity; /* of data: room for a Block2 option added later */
    size_t len;
    uint8_t data[];
} outgoing_t;

struct coap_endpoint {
    uv_loop_t *loop;
    coap_transport_t transport;
    coap_params_t params;
    coap_handler_fn handler;
    void *handler_ctx;
    uint64_t seed;
    uint16_t mids[MID_BUCKETS];

    htable_t dedup;
    dedup_entry_t *dedup_head;
    dedup_entry_t *dedup_tail;

    htable_t transfers;
    transfer_t *transfer_head; /* least recently used first */
    transfer_t *transfer_tail;

    htable_t out_by_token;
    htable_t out_by_mid;

    uv_timer_t sweep;
    coap_endpoint_stats_t stats;
    log_limiter_t malformed_log;
    uint8_t scratch[DATAGRAM_MAX];
};

uint64_t coap_params_exchange_lifetime_ms(const coap_params_t *params)
{
    /* RFC 7252 4.8.2: MAX_TRANSMIT_SPAN + 2 * MAX_LATENCY + PROCESSING_DELAY. */
    double span = params->ack_timeout_ms * (double)((1u << params->max_retransmit) - 1) *
                  params->ack_random_factor;
    return (uint64_t)span + 2 * 100000 + params->ack_timeout_ms;
}

static uint16_t next_mid(coap_endpoint_t *ep, const net_addr_t *peer)
{
    size_t bucket = net_addr_hash(peer, ep->seed) % MID_BUCKETS;
    return ep->mids[bucket]++;
}

static void send_datagram(coap_endpoint_t *ep, const net_addr_t *peer, const uint8_t *data,
                          size_t len)
{
    ep->transport.send(ep->transport.ctx, peer, data, len);
}

static void send_empty(coap_endpoint_t *ep, const net_addr_t *peer, coap_type_t type, uint16_t mid)
{
    uint8_t buf[4];
    coap_writer_t w;
    coap_writer_init(&w, buf, sizeof(buf), type, COAP_CODE_EMPTY, mid, NULL, 0);
    int len = coap_writer_finish(&w);
    if (len > 0) {
        send_datagram(ep, peer, buf, (size_t)len);
    }
    if (type == COAP_TYPE_RST) {
        ep->stats.resets_sent++;
    }
}

/* ---- duplicate detection ---- */

static uint64_t peer_mid_hash(const coap_endpoint_t *ep, const net_addr_t *peer, uint16_t mid)
{
    return net_addr_hash(peer, ep->seed) ^ ((uint64_t)mid * 0x9e3779b97f4a7c15ULL);
}

static dedup_entry_t *dedup_find(coap_endpoint_t *ep, const net_addr_t *peer, uint16_t mid)
{
    uint64_t hash = peer_mid_hash(ep, peer, mid);
    for (htable_node_t *n = htable_first(&ep->dedup, hash); n != NULL; n = htable_next(n, hash)) {
        dedup_entry_t *entry = HTABLE_ENTRY(n, dedup_entry_t, node);
        if (entry->mid == mid && net_addr_equal(&entry->peer, peer)) {
            return entry;
        }
    }
    return NULL;
}

static void dedup_pop(coap_endpoint_t *ep)
{
    dedup_entry_t *entry = ep->dedup_head;
    ep->dedup_head = entry->next;
    if (ep->dedup_head == NULL) {
        ep->dedup_tail = NULL;
    }
    htable_remove(&ep->dedup, &entry->node);
    free(entry);
}

/* Remembers the response to (peer, mid); at the cap the oldest entry goes first. */
static void dedup_add(coap_endpoint_t *ep, const net_addr_t *peer, uint16_t mid,
                      const uint8_t *data, size_t len)
{
    if (ep->params.max_dedup == 0) {
        return;
    }
    if (ep->dedup.count >= ep->params.max_dedup) {
        dedup_pop(ep);
    }
    dedup_entry_t *entry = malloc(sizeof(*entry) + len);
    if (entry == NULL) {
        return;
    }
    entry->peer = *peer;
    entry->mid = mid;
    entry->expires_ms = uv_now(ep->loop) + coap_params_exchange_lifetime_ms(&ep->params);
    entry->len = len;
    entry->next = NULL;
    memcpy(entry->data, data, len);
    htable_insert(&ep->dedup, &entry->node, peer_mid_hash(ep, peer, mid));
    if (ep->dedup_tail != NULL) {
        ep->dedup_tail->next = entry;
    } else {
        ep->dedup_head = entry;
    }
    ep->dedup_tail = entry;
}

/* ---- Block1 transfers ---- */

/* The request URI (Uri-Path and Uri-Query) identifies a transfer with the peer. */
static uint64_t uri_hash(const coap_msg_t *msg, uint64_t seed)
{
    uint64_t h = seed;
    for (size_t i = 0; i < msg->option_count; i++) {
        const coap_option_t *opt = &msg->options[i];
        if (opt->number == COAP_OPTION_URI_PATH || opt->number == COAP_OPTION_URI_QUERY) {
            h = htable_hash_bytes(&opt->number, sizeof(opt->number), h);
            h = htable_hash_bytes(opt->value, opt->length, h);
        }
    }
    return h;
}

static void transfer_unlink(coap_endpoint_t *ep, transfer_t *t)
{
    if (t->prev != NULL) {
        t->prev->next = t->next;
    } else {
        ep->transfer_head = t->next;
    }
    if (t->next != NULL) {
        t->next->prev = t->prev;
    } else {
        ep->transfer_tail = t->prev;
    }
    t->prev = NULL;
    t->next = NULL;
}

static void transfer_append(coap_endpoint_t *ep, transfer_t *t)
{
    t->prev = ep->transfer_tail;
    t->next = NULL;
    if (ep->transfer_tail != NULL) {
        ep->transfer_tail->next = t;
    } else {
        ep->transfer_head = t;
    }
    ep->transfer_tail = t;
}

static void transfer_free(coap_endpoint_t *ep, transfer_t *t)
{
    transfer_unlink(ep, t);
    htable_remove(&ep->transfers, &t->node);
    free(t->body);
    free(t);
}

static transfer_t *transfer_find(coap_endpoint_t *ep, const net_addr_t *peer, uint64_t uri)
{
    uint64_t hash = net_addr_hash(peer, ep->seed) ^ uri;
    for (htable_node_t *n = htable_first(&ep->transfers, hash); n != NULL;
         n = htable_next(n, hash)) {
        transfer_t *t = HTABLE_ENTRY(n, transfer_t, node);
        if (t->uri_hash == uri && net_addr_equal(&t->peer, peer)) {
            return t;
        }
    }
    return NULL;
}

static transfer_t *transfer_start(coap_endpoint_t *ep, const net_addr_t *peer, uint64_t uri)
{
    transfer_t *old = transfer_find(ep, peer, uri);
    if (old != NULL) {
        transfer_free(ep, old);
    }
    if (ep->transfers.count >= ep->params.max_transfers) {
        /* The least recently active transfer makes room. */
        transfer_free(ep, ep->transfer_head);
    }
    transfer_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->peer = *peer;
    t->uri_hash = uri;
    htable_insert(&ep->transfers, &t->node, net_addr_hash(peer, ep->seed) ^ uri);
    transfer_append(ep, t);
    return t;
}

static int transfer_append_block(transfer_t *t, const uint8_t *data, size_t len, size_t max)
{
    if (len == 0) {
        return LWM2MD_OK;
    }
    if (t->len + len > max) {
        return LWM2MD_ERR_TOO_BIG;
    }
    if (t->len + len > t->capacity) {
        size_t capacity = t->capacity == 0 ? 1024 : t->capacity;
        while (capacity < t->len + len) {
            capacity *= 2;
        }
        uint8_t *body = realloc(t->body, capacity);
        if (body == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
        t->body = body;
        t->capacity = capacity;
    }
    memcpy(t->body + t->len, data, len);
    t->len += len;
    return LWM2MD_OK;
}

/* ---- responses ---- */

/* Options a response may carry besides what the handler set. */
typedef struct reply_extra {
    bool has_block1;
    coap_block_t block1;
    bool has_size1;
    uint32_t size1;
} reply_extra_t;

static uint8_t preferred_szx(const coap_endpoint_t *ep)
{
    uint8_t szx = 0;
    while (szx < 6 && coap_block_size((uint8_t)(szx + 1)) <= ep->params.block_size) {
        szx++;
    }
    return szx;
}

/* Writes the options of a handler's response up to, not including, Block2. */
static void write_response_head(coap_writer_t *w, const coap_response_t *resp)
{
    for (size_t i = 0; i < resp->location_count; i++) {
        coap_writer_add_string(w, COAP_OPTION_LOCATION_PATH, resp->location[i]);
    }
    if (resp->content_format >= 0) {
        coap_writer_add_uint(w, COAP_OPTION_CONTENT_FORMAT, (uint32_t)resp->content_format);
    }
}

/*
 * Builds the answer to req: piggybacked in an ACK for a CON, a NON for a
 * NON. A payload larger than the block size is served one Block2 block
 * at a time (RFC 7959 2.4), the block the request asked for.
 */
static int build_reply(coap_endpoint_t *ep, const net_addr_t *peer, const coap_msg_t *req,
                       const coap_response_t *resp, const reply_extra_t *extra, uint8_t *buf,
                       size_t capacity)
{
    coap_type_t type = req->type == COAP_TYPE_CON ? COAP_TYPE_ACK : COAP_TYPE_NON;
    uint16_t mid = req->type == COAP_TYPE_CON ? req->mid : next_mid(ep, peer);
    coap_block_t block2 = {.num = 0, .more = false, .szx = preferred_szx(ep)};
    const coap_option_t *opt = coap_msg_find(req, COAP_OPTION_BLOCK2);
    coap_block_t asked;
    if (opt != NULL && coap_block_decode(opt, &asked) == LWM2MD_OK) {
        block2.num = asked.num;
        if (asked.szx < block2.szx) {
            block2.szx = asked.szx;
        }
    }

    size_t size = coap_block_size(block2.szx);
    bool blockwise = resp->payload_len > size || (opt != NULL && block2.num > 0);
    size_t offset = blockwise ? (size_t)block2.num * size : 0;
    size_t len = resp->payload_len;
    uint8_t code = resp->code;
    if (blockwise && offset >= resp->payload_len) {
        code = COAP_BAD_OPTION; /* a block past the end */
        len = 0;
    } else if (blockwise) {
        len = resp->payload_len - offset < size ? resp->payload_len - offset : size;
        block2.more = offset + len < resp->payload_len;
    }

    coap_writer_t w;
    coap_writer_init(&w, buf, capacity, type, code, mid, req->token, req->token_len);
    if (code == resp->code) {
        write_response_head(&w, resp);
    }
    if (blockwise && code == resp->code) {
        coap_writer_add_uint(&w, COAP_OPTION_BLOCK2, coap_block_encode(&block2));
    }
    if (extra != NULL && extra->has_block1) {
        coap_writer_add_uint(&w, COAP_OPTION_BLOCK1, coap_block_encode(&extra->block1));
    }
    if (blockwise && code == resp->code && block2.num == 0) {
        coap_writer_add_uint(&w, COAP_OPTION_SIZE2, (uint32_t)resp->payload_len);
    }
    if (extra != NULL && extra->has_size1) {
        coap_writer_add_uint(&w, COAP_OPTION_SIZE1, extra->size1);
    }
    if (len > 0 && code == resp->code) {
        coap_writer_payload(&w, resp->payload + offset, len);
    }
    return coap_writer_finish(&w);
}

/* Sends a reply and remembers it for duplicates of the same request. */
static void send_reply(coap_endpoint_t *ep, const net_addr_t *peer, const coap_msg_t *req,
                       const coap_response_t *resp, const reply_extra_t *extra)
{
    int len = build_reply(ep, peer, req, resp, extra, ep->scratch, sizeof(ep->scratch));
    if (len < 0) {
        coap_response_t fallback = {.code = COAP_INTERNAL_SERVER_ERROR, .content_format = -1};
        len = build_reply(ep, peer, req, &fallback, NULL, ep->scratch, sizeof(ep->scratch));
        if (len < 0) {
            return;
        }
    }
    send_datagram(ep, peer, ep->scratch, (size_t)len);
    dedup_add(ep, peer, req->mid, ep->scratch, (size_t)len);
}

static void reply_code(coap_endpoint_t *ep, const net_addr_t *peer, const coap_msg_t *req,
                       uint8_t code, const reply_extra_t *extra)
{
    coap_response_t resp = {.code = code, .content_format = -1};
    send_reply(ep, peer, req, &resp, extra);
}

/* ---- requests ---- */

/* RFC 7252 5.4.1: an unrecognised critical option in a request is 4.02. */
static bool has_unknown_critical(const coap_msg_t *msg)
{
    for (size_t i = 0; i < msg->option_count; i++) {
        switch (msg->options[i].number) {
        case COAP_OPTION_IF_MATCH:
        case COAP_OPTION_URI_HOST:
        case COAP_OPTION_IF_NONE_MATCH:
        case COAP_OPTION_URI_PORT:
        case COAP_OPTION_URI_PATH:
        case COAP_OPTION_URI_QUERY:
        case COAP_OPTION_ACCEPT:
        case COAP_OPTION_BLOCK2:
        case COAP_OPTION_BLOCK1:
            break;
        default:
            if (coap_option_is_critical(msg->options[i].number)) {
                return true;
            }
        }
    }
    return false;
}

static void dispatch(coap_endpoint_t *ep, const net_addr_t *peer, const void *auth,
                     const coap_msg_t *msg, const uint8_t *body, size_t body_len,
                     const reply_extra_t *extra)
{
    coap_request_t req = {
        .peer = peer, .auth = auth, .msg = msg, .body = body, .body_len = body_len};
    coap_response_t resp = {.code = COAP_NOT_FOUND, .content_format = -1};

    if (ep->handler != NULL) {
        ep->handler(ep->handler_ctx, &req, &resp);
    }
    send_reply(ep, peer, msg, &resp, extra);
}

/*
 * Block1 (RFC 7959 2.5): each block but the last is answered 2.31
 * Continue; the last hands the whole body to the handler. A block out
 * of sequence is 4.08, a body over the limit 4.13 with Size1.
 */
static void handle_block1(coap_endpoint_t *ep, const net_addr_t *peer, const void *auth,
                          const coap_msg_t *msg, const coap_option_t *opt)
{
    reply_extra_t extra = {.has_block1 = true};
    coap_block_t block;
    if (coap_block_decode(opt, &block) != LWM2MD_OK) {
        reply_code(ep, peer, msg, COAP_BAD_OPTION, NULL);
        return;
    }
    extra.block1 = block;
    size_t size = coap_block_size(block.szx);
    if (msg->payload_len > size || (block.more && msg->payload_len != size)) {
        reply_code(ep, peer, msg, COAP_BAD_REQUEST, NULL);
        return;
    }

    /* Refuse early what the client says will not fit (Size1, RFC 7959 4). */
    uint32_t size1 = 0;
    const coap_option_t *size1_opt = coap_msg_find(msg, COAP_OPTION_SIZE1);
    if (size1_opt != NULL && coap_option_uint(size1_opt, &size1) == LWM2MD_OK &&
        size1 > ep->params.max_body_size) {
        reply_extra_t too_big = {.has_size1 = true, .size1 = ep->params.max_body_size};
        reply_code(ep, peer, msg, COAP_REQUEST_ENTITY_TOO_LARGE, &too_big);
        return;
    }

    uint64_t uri = uri_hash(msg, ep->seed);
    transfer_t *t = block.num == 0 ? transfer_start(ep, peer, uri) : transfer_find(ep, peer, uri);
    if (t == NULL || (size_t)block.num * size != t->len) {
        reply_code(ep, peer, msg,
                   t == NULL && block.num == 0 ? COAP_SERVICE_UNAVAILABLE
                                               : COAP_REQUEST_ENTITY_INCOMPLETE,
                   NULL);
        return;
    }

    int rc = transfer_append_block(t, msg->payload, msg->payload_len, ep->params.max_body_size);
    if (rc != LWM2MD_OK) {
        transfer_free(ep, t);
        reply_extra_t too_big = {.has_size1 = true, .size1 = ep->params.max_body_size};
        reply_code(ep, peer, msg, COAP_REQUEST_ENTITY_TOO_LARGE, &too_big);
        return;
    }
    t->expires_ms = uv_now(ep->loop) + coap_params_exchange_lifetime_ms(&ep->params);
    transfer_unlink(ep, t);
    transfer_append(ep, t);

    if (block.more) {
        reply_code(ep, peer, msg, COAP_CONTINUE, &extra);
        return;
    }

    /* The handler borrows the body; the transfer ends after the call. */
    htable_remove(&ep->transfers, &t->node);
    transfer_unlink(ep, t);
    dispatch(ep, peer, auth, msg, t->body, t->len, &extra);
    free(t->body);
    free(t);
}

static void handle_request(coap_endpoint_t *ep, const net_addr_t *peer, const void *auth,
                           const coap_msg_t *msg)
{
    /* A duplicate gets the same answer again, without a second handling. */
    dedup_entry_t *dup = dedup_find(ep, peer, msg->mid);
    if (dup != NULL) {
        ep->stats.duplicates++;
        send_datagram(ep, peer, dup->data, dup->len);
        return;
    }
    ep->stats.requests++;

    if (has_unknown_critical(msg)) {
        reply_code(ep, peer, msg, COAP_BAD_OPTION, NULL);
        return;
    }

    const coap_option_t *block1 = coap_msg_find(msg, COAP_OPTION_BLOCK1);
    if (block1 != NULL) {
        handle_block1(ep, peer, auth, msg, block1);
        return;
    }
    if (msg->payload_len > ep->params.max_body_size) {
        reply_extra_t too_big = {.has_size1 = true, .size1 = ep->params.max_body_size};
        reply_code(ep, peer, msg, COAP_REQUEST_ENTITY_TOO_LARGE, &too_big);
        return;
    }
    dispatch(ep, peer, auth, msg, msg->payload, msg->payload_len, NULL);
}

/* ---- server-originated requests ---- */

static uint64_t token_hash(const coap_endpoint_t *ep, const net_addr_t *peer, const uint8_t *token,
                           size_t len)
{
    return htable_hash_bytes(token, len, net_addr_hash(peer, ep->seed));
}

static void on_outgoing_closed(uv_handle_t *handle)
{
    outgoing_t *out = handle->data;
    free(out->body);
    free(out);
}

/* Reports the result once and releases the request. */
static void outgoing_finish(outgoing_t *out, int status, const coap_msg_t *response)
{
    coap_endpoint_t *ep = out->ep;
    if (out->done) {
        return;
    }
    out->done = true;
    htable_remove(&ep->out_by_token, &out->by_token);
    if (!out->acked) {
        htable_remove(&ep->out_by_mid, &out->by_mid);
    }
    uv_timer_stop(&out->timer);
    if (status == LWM2MD_ERR_AGAIN) {
        ep->stats.timeouts++;
    }
    const uint8_t *body = response != NULL ? response->payload : NULL;
    size_t body_len = response != NULL ? response->payload_len : 0;
    if (out->body != NULL && status == LWM2MD_OK) {
        body = out->body;
        body_len = out->body_len;
    }
    out->fn(out->fn_ctx, status, response, body, body_len);
    uv_close((uv_handle_t *)&out->timer, on_outgoing_closed);
}

/* RFC 7252 4.2: retransmit with a doubling timeout, then give up. */
static void on_outgoing_timer(uv_timer_t *timer)
{
    outgoing_t *out = timer->data;
    coap_endpoint_t *ep = out->ep;
    if (out->acked || out->retransmits >= ep->params.max_retransmit) {
        outgoing_finish(out, LWM2MD_ERR_AGAIN, NULL);
        return;
    }
    out->retransmits++;
    out->timeout_ms *= 2;
    ep->stats.retransmissions++;
    send_datagram(ep, &out->peer, out->data, out->len);
    uv_timer_start(&out->timer, on_outgoing_timer, out->timeout_ms, 0);
}

static size_t write_request(coap_endpoint_t *ep, outgoing_t *out, uint8_t code,
                            const char *const *path, const char *const *query,
                            int32_t content_format, const uint8_t *payload, size_t payload_len,
                            uint8_t *buf, size_t capacity)
{
    coap_writer_t w;
    coap_writer_init(&w, buf, capacity, COAP_TYPE_CON, code, out->mid, out->token,
                     sizeof(out->token));
    for (size_t i = 0; path != NULL && path[i] != NULL; i++) {
        coap_writer_add_string(&w, COAP_OPTION_URI_PATH, path[i]);
    }
    if (content_format >= 0) {
        coap_writer_add_uint(&w, COAP_OPTION_CONTENT_FORMAT, (uint32_t)content_format);
    }
    for (size_t i = 0; query != NULL && query[i] != NULL; i++) {
        coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, query[i]);
    }
    coap_writer_payload(&w, payload, payload_len);
    int len = coap_writer_finish(&w);
    return len > 0 ? (size_t)len : 0;
}

int coap_endpoint_request(coap_endpoint_t *ep, const net_addr_t *peer, uint8_t code,
                          const char *const *path, const char *const *query, int32_t content_format,
                          const uint8_t *payload, size_t payload_len, coap_response_fn fn,
                          void *ctx)
{
    if (ep->out_by_token.count >= ep->params.max_outgoing) {
        return LWM2MD_ERR_FULL;
    }
    size_t len = write_request(ep, &(outgoing_t){0}, code, path, query, content_format, payload,
                               payload_len, ep->scratch, sizeof(ep->scratch));
    if (len == 0) {
        return LWM2MD_ERR_TOO_BIG;
    }
    outgoing_t *out = calloc(1, sizeof(*out) + len + BLOCK2_OPTION_ROOM);
    if (out == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    out->capacity = len + BLOCK2_OPTION_ROOM;
    out->ep = ep;
    out->peer = *peer;
    out->mid = next_mid(ep, peer);
    out->fn = fn;
    out->fn_ctx = ctx;
    random_bytes(out->token, sizeof(out->token));
    out->len = write_request(ep, out, code, path, query, content_format, payload, payload_len,
                             out->data, len);

    /* RFC 7252 4.2: the first timeout is random in [ACK_TIMEOUT, ACK_TIMEOUT * factor]. */
    double spread = (double)(random_u64() % 1000) / 1000.0;
    out->timeout_ms = (uint32_t)(ep->params.ack_timeout_ms *
                                 (1.0 + spread * (ep->params.ack_random_factor - 1.0)));
    uv_timer_init(ep->loop, &out->timer);
    out->timer.data = out;
    htable_insert(&ep->out_by_token, &out->by_token,
                  token_hash(ep, peer, out->token, sizeof(out->token)));
    htable_insert(&ep->out_by_mid, &out->by_mid, peer_mid_hash(ep, peer, out->mid));
    send_datagram(ep, peer, out->data, out->len);
    uv_timer_start(&out->timer, on_outgoing_timer, out->timeout_ms, 0);
    return LWM2MD_OK;
}

/* Copies a request with its Block2 option set to `block` (RFC 7959 2.4), under a new MID. */
static int write_next_block_request(coap_endpoint_t *ep, outgoing_t *out, const coap_block_t *block)
{
    coap_msg_t req;
    if (coap_msg_parse(out->data, out->len, &req, NULL) != LWM2MD_OK) {
        return LWM2MD_ERR_INVALID;
    }
    out->mid = next_mid(ep, &out->peer);
    coap_writer_t w;
    coap_writer_init(&w, ep->scratch, sizeof(ep->scratch), COAP_TYPE_CON, req.code, out->mid,
                     req.token, req.token_len);
    bool added = false;
    for (size_t i = 0; i < req.option_count; i++) {
        const coap_option_t *opt = &req.options[i];
        if (!added && opt->number >= COAP_OPTION_BLOCK2) {
            coap_writer_add_uint(&w, COAP_OPTION_BLOCK2, coap_block_encode(block));
            added = true;
        }
        if (opt->number != COAP_OPTION_BLOCK2) {
            coap_writer_add(&w, opt->number, opt->value, opt->length);
        }
    }
    if (!added) {
        coap_writer_add_uint(&w, COAP_OPTION_BLOCK2, coap_block_encode(block));
    }
    coap_writer_payload(&w, req.payload, req.payload_len);
    int len = coap_writer_finish(&w);
    if (len < 0 || (size_t)len > out->capacity) {
        return LWM2MD_ERR_TOO_BIG;
    }
    memcpy(out->data, ep->scratch, (size_t)len);
    out->len = (size_t)len;
    return LWM2MD_OK;
}

/* Asks for the next block: a new exchange with the same token. */
static int request_next_block(coap_endpoint_t *ep, outgoing_t *out, const coap_block_t *got)
{
    coap_block_t next = {.num = got->num + 1, .more = false, .szx = got->szx};
    int rc = write_next_block_request(ep, out, &next);
    if (rc != LWM2MD_OK) {
        return rc;
    }

    /* The node leaves the table by address, so the changed MID does not matter. */
    if (!out->acked) {
        htable_remove(&ep->out_by_mid, &out->by_mid);
    }
    out->acked = false;
    htable_insert(&ep->out_by_mid, &out->by_mid, peer_mid_hash(ep, &out->peer, out->mid));
    out->retransmits = 0;
    out->timeout_ms = ep->params.ack_timeout_ms;
    send_datagram(ep, &out->peer, out->data, out->len);
    uv_timer_start(&out->timer, on_outgoing_timer, out->timeout_ms, 0);
    return LWM2MD_OK;
}

/*
 * A response to one of our requests. A 2.05 carrying Block2 is collected
 * (bounded by max_body_size) and the next block requested until the
 * last; anything else completes the request.
 */
static void outgoing_answered(coap_endpoint_t *ep, outgoing_t *out, const coap_msg_t *response)
{
    const coap_option_t *opt = coap_msg_find(response, COAP_OPTION_BLOCK2);
    coap_block_t block;
    if (response->code != COAP_CONTENT || opt == NULL ||
        coap_block_decode(opt, &block) != LWM2MD_OK) {
        outgoing_finish(out, LWM2MD_OK, response);
        return;
    }

    /* A block we already have is a duplicate (a separate response sent again). */
    size_t offset = (size_t)block.num * coap_block_size(block.szx);
    if (offset < out->body_len) {
        return;
    }
    if (offset > out->body_len) {
        outgoing_finish(out, LWM2MD_ERR_INVALID, response);
        return;
    }
    if (out->body_len + response->payload_len > ep->params.max_body_size) {
        outgoing_finish(out, LWM2MD_ERR_TOO_BIG, response);
        return;
    }
    uint8_t *body = realloc(out->body, out->body_len + response->payload_len + 1);
    if (body == NULL) {
        outgoing_finish(out, LWM2MD_ERR_NOMEM, response);
        return;
    }
    out->body = body;
    memcpy(out->body + out->body_len, response->payload, response->payload_len);
    out->body_len += response->payload_len;

    int rc = block.more ? request_next_block(ep, out, &block) : LWM2MD_OK;
    if (!block.more || rc != LWM2MD_OK) {
        outgoing_finish(out, rc, response);
    }
}

static outgoing_t *find_by_mid(coap_endpoint_t *ep, const net_addr_t *peer, uint16_t mid)
{
    uint64_t hash = peer_mid_hash(ep, peer, mid);
    for (htable_node_t *n = htable_first(&ep->out_by_mid, hash); n != NULL;
         n = htable_next(n, hash)) {
        outgoing_t *out = HTABLE_ENTRY(n, outgoing_t, by_mid);
        if (out->mid == mid && net_addr_equal(&out->peer, peer)) {
            return out;
        }
    }
    return NULL;
}

static outgoing_t *find_by_token(coap_endpoint_t *ep, const net_addr_t *peer, const coap_msg_t *msg)
{
    uint64_t hash = token_hash(ep, peer, msg->token, msg->token_len);
    for (htable_node_t *n = htable_first(&ep->out_by_token, hash); n != NULL;
         n = htable_next(n, hash)) {
        outgoing_t *out = HTABLE_ENTRY(n, outgoing_t, by_token);
        if (msg->token_len == sizeof(out->token) &&
            memcmp(out->token, msg->token, sizeof(out->token)) == 0 &&
            net_addr_equal(&out->peer, peer)) {
            return out;
        }
    }
    return NULL;
}

/* ACK or RST to one of our CON requests (RFC 7252 4.2, 5.2.2). */
static void handle_ack_or_reset(coap_endpoint_t *ep, const net_addr_t *peer, const coap_msg_t *msg)
{
    outgoing_t *out = find_by_mid(ep, peer, msg->mid);
    if (out == NULL) {
        return;
    }
    if (msg->type == COAP_TYPE_RST) {
        outgoing_finish(out, LWM2MD_ERR_DENIED, NULL);
        return;
    }
    if (msg->code != COAP_CODE_EMPTY) {
        outgoing_answered(ep, out, msg);
        return;
    }

    /* An empty ACK: the response comes separately; wait up to EXCHANGE_LIFETIME. */
    out->acked = true;
    htable_remove(&ep->out_by_mid, &out->by_mid);
    uv_timer_start(&out->timer, on_outgoing_timer, coap_params_exchange_lifetime_ms(&ep->params),
                   0);
}

/* A separate response (RFC 7252 5.2.2), matched by token. */
static void handle_separate_response(coap_endpoint_t *ep, const net_addr_t *peer,
                                     const coap_msg_t *msg)
{
    outgoing_t *out = find_by_token(ep, peer, msg);
    if (out == NULL) {
        if (msg->type == COAP_TYPE_CON) {
            send_empty(ep, peer, COAP_TYPE_RST, msg->mid);
        }
        return;
    }
    if (msg->type == COAP_TYPE_CON) {
        send_empty(ep, peer, COAP_TYPE_ACK, msg->mid);
    }
    outgoing_answered(ep, out, msg);
}

/* ---- input and housekeeping ---- */

void coap_endpoint_input(coap_endpoint_t *ep, const net_addr_t *peer, const void *auth,
                         const uint8_t *data, size_t len)
{
    coap_msg_t msg;
    bool header_ok = false;
    int rc = coap_msg_parse(data, len, &msg, &header_ok);
    if (rc != LWM2MD_OK) {
        /* RFC 7252 4.2: a CON with a format error is rejected with RST. */
        ep->stats.malformed++;
        if (log_enabled(LOG_LEVEL_DEBUG) &&
            log_limiter_allow(&ep->malformed_log, uv_now(ep->loop))) {
            char who[NET_ADDR_STRING_MAX];
            log_debug("peer %s: datagram dropped (%s)", net_addr_format(peer, who, sizeof(who)),
                      lwm2md_strerror(rc));
        }
        if (header_ok && msg.type == COAP_TYPE_CON) {
            send_empty(ep, peer, COAP_TYPE_RST, msg.mid);
        }
        return;
    }

    int code_class = COAP_CODE_CLASS(msg.code);
    if (msg.type == COAP_TYPE_ACK || msg.type == COAP_TYPE_RST) {
        handle_ack_or_reset(ep, peer, &msg);
    } else if (msg.code == COAP_CODE_EMPTY) {
        /* A CON ping is answered with RST (RFC 7252 4.3); an empty NON is ignored. */
        if (msg.type == COAP_TYPE_CON) {
            send_empty(ep, peer, COAP_TYPE_RST, msg.mid);
        }
    } else if (code_class == 0) {
        handle_request(ep, peer, auth, &msg);
    } else if (code_class == 2 || code_class == 4 || code_class == 5) {
        handle_separate_response(ep, peer, &msg);
    } else if (msg.type == COAP_TYPE_CON) {
        /* Classes 1, 3, 6 and 7 are reserved (RFC 7252 12.1). */
        send_empty(ep, peer, COAP_TYPE_RST, msg.mid);
    }
}

/* Drops cached responses and Block1 transfers whose lifetime has passed. */
static void on_sweep(uv_timer_t *timer)
{
    coap_endpoint_t *ep = timer->data;
    uint64_t now = uv_now(ep->loop);
    while (ep->dedup_head != NULL && ep->dedup_head->expires_ms <= now) {
        dedup_pop(ep);
    }
    while (ep->transfer_head != NULL && ep->transfer_head->expires_ms <= now) {
        transfer_free(ep, ep->transfer_head);
    }
}

int coap_endpoint_new(uv_loop_t *loop, const coap_transport_t *transport,
                      const coap_params_t *params, coap_handler_fn handler, void *handler_ctx,
                      coap_endpoint_t **out)
{
    coap_endpoint_t *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    ep->loop = loop;
    ep->transport = *transport;
    ep->params = *params;
    ep->handler = handler;
    ep->handler_ctx = handler_ctx;
    ep->seed = random_u64();
    random_bytes(ep->mids, sizeof(ep->mids));
    log_limiter_init(&ep->malformed_log, 1.0, 10.0);

    if (htable_init(&ep->dedup, 1024) != LWM2MD_OK ||
        htable_init(&ep->transfers, 64) != LWM2MD_OK ||
        htable_init(&ep->out_by_token, 64) != LWM2MD_OK ||
        htable_init(&ep->out_by_mid, 64) != LWM2MD_OK) {
        htable_destroy(&ep->dedup);
        htable_destroy(&ep->transfers);
        htable_destroy(&ep->out_by_token);
        free(ep);
        return LWM2MD_ERR_NOMEM;
    }
    uv_timer_init(loop, &ep->sweep);
    ep->sweep.data = ep;
    uv_timer_start(&ep->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
    *out = ep;
    return LWM2MD_OK;
}

static void on_endpoint_closed(uv_handle_t *handle)
{
    free(handle->data);
}

void coap_endpoint_free(coap_endpoint_t *ep)
{
    if (ep == NULL) {
        return;
    }

    /* Outstanding requests end now; their callbacks may not send more. */
    for (size_t i = 0; ep->out_by_token.count > 0 && i <= ep->out_by_token.mask; i++) {
        while (ep->out_by_token.buckets[i] != NULL) {
            htable_node_t *n = ep->out_by_token.buckets[i];
            outgoing_finish(HTABLE_ENTRY(n, outgoing_t, by_token), LWM2MD_ERR_AGAIN, NULL);
        }
    }
    while (ep->dedup_head != NULL) {
        dedup_pop(ep);
    }
    while (ep->transfer_head != NULL) {
        transfer_free(ep, ep->transfer_head);
    }
    htable_destroy(&ep->dedup);
    htable_destroy(&ep->transfers);
    htable_destroy(&ep->out_by_token);
    htable_destroy(&ep->out_by_mid);
    uv_timer_stop(&ep->sweep);
    uv_close((uv_handle_t *)&ep->sweep, on_endpoint_closed);
}

void coap_endpoint_get_stats(const coap_endpoint_t *ep, coap_endpoint_stats_t *out)
{
    *out = ep->stats;
    out->dedup_entries = (uint32_t)ep->dedup.count;
    out->transfers = (uint32_t)ep->transfers.count;
    out->outgoing = (uint32_t)ep->out_by_token.count;
}
