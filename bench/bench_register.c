/* bench_register: a load client that registers N NoSec endpoints over UDP and times it. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "common.h"
#include "base/random.h"
#include "coap/msg.h"
#include "net/addr.h"

#define EXIT_ALL_CREATED 0
#define EXIT_SOME_FAILED 1
#define EXIT_USAGE 2

#define PREFIX_MAX 200 /* leaves room for the index within STORE_ENDPOINT_MAX */
#define SOCKETS_MAX 1024
#define CONCURRENCY_MAX 65535
#define MIDS_PER_SOCKET 65536
#define RETRIES_MAX 8
#define DATAGRAM_MAX 2048
#define RECV_BATCH 32
#define SOCKET_BUFFER_BYTES (4 * 1024 * 1024)
#define TOKEN_LEN 8
#define NS_PER_MS 1000000ull

/* A typical client: Security, Server, Device, Connectivity Monitoring, Firmware, a sensor. */
static const char register_links[] =
    "</>;rt=\"oma.lwm2m\";ct=11543,</1/0>,</3/0>,</4/0>,</5/0>,</3303/0>";

static const char usage_text[] =
    "usage: bench_register --server HOST:PORT [options]\n"
    "\n"
    "Registers simulated NoSec LwM2M endpoints (CoAP CON POST /rd) and reports\n"
    "registrations per second and latency. The last line, RESULT ..., is for scripts.\n"
    "\n"
    "  --server HOST:PORT   the server's NoSec CoAP address (numeric; [v6]:port)\n"
    "  --count N            endpoints to register (default 10000)\n"
    "  --concurrency C      requests in flight at once (default 64)\n"
    "  --prefix NAME        endpoint name prefix (default \"bench-\")\n"
    "  --lifetime S         registration lifetime in seconds (default 86400)\n"
    "  --sockets K          local UDP sockets; endpoint i uses socket i mod K (default 16)\n"
    "  --timeout-ms T       first retransmission timeout, doubled each time (default 2000)\n"
    "  --retries R          retransmissions before giving up, 0-8 (default 4)\n"
    "  --max-seconds S      overall time limit (default 600)\n"
    "\n"
    "Exit status: 0 all created, 1 some failed or timed out, 2 usage or socket error.\n";

typedef struct bench_options {
    net_addr_t server;
    uint32_t count;
    uint32_t concurrency;
    const char *prefix;
    uint32_t lifetime;
    uint32_t sockets;
    uint32_t timeout_ms;
    uint32_t retries;
    uint32_t max_seconds;
} bench_options_t;

enum endpoint_status {
    STATUS_WAITING = 0,
    STATUS_IN_FLIGHT,
    STATUS_DONE,
};

/* One simulated endpoint's single Register exchange. */
typedef struct endpoint_state {
    uint64_t first_ns; /* first transmission */
    uint64_t next_ns;  /* next retransmission, or when to give up */
    uint32_t slot;     /* index in bench_t.in_flight while in flight */
    uint16_t mid;
    uint8_t transmissions;
    uint8_t status;
} endpoint_state_t;

/* Outcomes; every endpoint ends up in exactly one of the counted ones. */
typedef struct bench_counts {
    uint64_t created;
    uint64_t other_code; /* a response other than 2.01 with Location-Path rd/<id> */
    uint64_t reset;
    uint64_t timed_out;  /* no answer after every retransmission */
    uint64_t unfinished; /* still waiting at --max-seconds */
    uint64_t retransmissions;
    uint64_t stray; /* datagrams that matched no request in flight */
    uint64_t send_errors;
    uint64_t icmp_errors;
    uint64_t codes[256];
} bench_counts_t;

typedef struct bench {
    bench_options_t opt;
    int *fds;
    uint16_t *next_mid;  /* per socket */
    uint32_t *mid_owner; /* per socket and MID: endpoint index + 1, or 0 */
    endpoint_state_t *endpoints;
    uint32_t *in_flight;
    uint32_t in_flight_count;
    uint32_t next_start;
    uint32_t finished;
    uint64_t next_wake; /* no timer is due before this; may be early, never late */
    uint32_t token_salt;
    uint32_t *latency_us;
    uint32_t latency_count;
    bench_counts_t counts;
    uint8_t recv_buf[RECV_BATCH][DATAGRAM_MAX];
} bench_t;

static int usage_error(const char *message, const char *arg)
{
    fprintf(stderr, "bench_register: %s%s%s\n", message, arg != NULL ? ": " : "",
            arg != NULL ? arg : "");
    fprintf(stderr, "Try 'bench_register --help'.\n");
    return EXIT_USAGE;
}

/* Numeric options: name, bounds and where the value goes. */
typedef struct uint_option {
    const char *name;
    uint32_t min;
    uint32_t max;
    size_t offset;
} uint_option_t;

static const uint_option_t uint_options[] = {
    {"--count", 1, 100000000, offsetof(bench_options_t, count)},
    {"--concurrency", 1, CONCURRENCY_MAX, offsetof(bench_options_t, concurrency)},
    {"--lifetime", 1, UINT32_MAX, offsetof(bench_options_t, lifetime)},
    {"--sockets", 1, SOCKETS_MAX, offsetof(bench_options_t, sockets)},
    {"--timeout-ms", 1, 600000, offsetof(bench_options_t, timeout_ms)},
    {"--retries", 0, RETRIES_MAX, offsetof(bench_options_t, retries)},
    {"--max-seconds", 1, 86400, offsetof(bench_options_t, max_seconds)},
};

static int parse_option(bench_options_t *opt, const char *name, const char *value,
                        bool *have_server)
{
    for (size_t i = 0; i < sizeof(uint_options) / sizeof(uint_options[0]); i++) {
        const uint_option_t *u = &uint_options[i];
        if (strcmp(name, u->name) == 0) {
            uint32_t *field = (uint32_t *)((char *)opt + u->offset);
            return bench_parse_uint(value, u->min, u->max, field) ? 0
                                                                  : usage_error("bad value", name);
        }
    }
    if (strcmp(name, "--server") == 0) {
        if (net_addr_parse_text(&opt->server, value) != LWM2MD_OK ||
            net_addr_port(&opt->server) == 0) {
            return usage_error("--server needs a numeric HOST:PORT", value);
        }
        *have_server = true;
        return 0;
    }
    if (strcmp(name, "--prefix") == 0) {
        if (value[0] == '\0' || strlen(value) > PREFIX_MAX || strpbrk(value, "&=") != NULL) {
            return usage_error("--prefix must be 1-200 bytes without '&' or '='", NULL);
        }
        opt->prefix = value;
        return 0;
    }
    return usage_error("unknown option", name);
}

/* Returns 0, EXIT_USAGE, or -1 after printing the help. */
static int parse_options(int argc, char **argv, bench_options_t *opt)
{
    *opt = (bench_options_t){.count = 10000,
                             .concurrency = 64,
                             .prefix = "bench-",
                             .lifetime = 86400,
                             .sockets = 16,
                             .timeout_ms = 2000,
                             .retries = 4,
                             .max_seconds = 600};
    bool have_server = false;

    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return -1;
        }
        if (i + 1 >= argc) {
            return usage_error("missing value after", argv[i]);
        }
        int rc = parse_option(opt, argv[i], argv[i + 1], &have_server);
        if (rc != 0) {
            return rc;
        }
    }

    if (!have_server) {
        return usage_error("--server HOST:PORT is required", NULL);
    }
    /* A socket's MIDs must not wrap, or the server's duplicate cache would answer. */
    if ((opt->count + opt->sockets - 1) / opt->sockets >= MIDS_PER_SOCKET) {
        return usage_error("more than 65535 endpoints per socket; raise --sockets", NULL);
    }
    return 0;
}

/* A socket of the server's family on an ephemeral port, connected to the server. */
static int open_socket(const bench_options_t *opt)
{
    int fd = socket(opt->server.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("bench_register: socket");
        return -1;
    }

    int size = SOCKET_BUFFER_BYTES;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));

    if (connect(fd, (const struct sockaddr *)&opt->server.ss, opt->server.len) != 0) {
        perror("bench_register: connect");
        close(fd);
        return -1;
    }
    return fd;
}

static void bench_free(bench_t *b)
{
    for (uint32_t i = 0; b->fds != NULL && i < b->opt.sockets; i++) {
        if (b->fds[i] >= 0) {
            close(b->fds[i]);
        }
    }
    free(b->fds);
    free(b->next_mid);
    free(b->mid_owner);
    free(b->endpoints);
    free(b->in_flight);
    free(b->latency_us);
    free(b);
}

static bench_t *bench_new(const bench_options_t *opt)
{
    bench_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->opt = *opt;
    b->fds = malloc(opt->sockets * sizeof(*b->fds));
    b->next_mid = malloc(opt->sockets * sizeof(*b->next_mid));
    b->mid_owner = calloc((size_t)opt->sockets * MIDS_PER_SOCKET, sizeof(*b->mid_owner));
    b->endpoints = calloc(opt->count, sizeof(*b->endpoints));
    b->in_flight = malloc(opt->concurrency * sizeof(*b->in_flight));
    b->latency_us = malloc(opt->count * sizeof(*b->latency_us));
    for (uint32_t i = 0; b->fds != NULL && i < opt->sockets; i++) {
        b->fds[i] = -1; /* so that bench_free() closes only what was opened */
    }
    if (b->fds == NULL || b->next_mid == NULL || b->mid_owner == NULL || b->endpoints == NULL ||
        b->in_flight == NULL || b->latency_us == NULL) {
        bench_free(b);
        return NULL;
    }

    /* Random first MIDs and token salt: answers from an earlier run cannot match. */
    b->next_wake = UINT64_MAX;
    b->token_salt = (uint32_t)random_u64();
    for (uint32_t i = 0; i < opt->sockets; i++) {
        b->next_mid[i] = (uint16_t)random_u64();
        b->fds[i] = open_socket(opt);
        if (b->fds[i] < 0) {
            bench_free(b);
            return NULL;
        }
    }
    return b;
}

static uint32_t socket_of(const bench_t *b, uint32_t index)
{
    return index % b->opt.sockets;
}

static uint32_t *owner_slot(bench_t *b, uint32_t sock, uint16_t mid)
{
    return &b->mid_owner[(size_t)sock * MIDS_PER_SOCKET + mid];
}

/* Token: the run's salt, then the endpoint index, both big-endian. */
static void make_token(const bench_t *b, uint32_t index, uint8_t token[TOKEN_LEN])
{
    uint32_t parts[2] = {b->token_salt, index};
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < 4; i++) {
            token[p * 4 + i] = (uint8_t)(parts[p] >> (24 - 8 * i));
        }
    }
}

/* The endpoint index a token names, or -1 when it is not one of this run's. */
static int64_t token_index(const bench_t *b, const coap_msg_t *msg)
{
    if (msg->token_len != TOKEN_LEN) {
        return -1;
    }
    uint32_t salt = 0;
    uint32_t index = 0;
    for (int i = 0; i < 4; i++) {
        salt = salt << 8 | msg->token[i];
        index = index << 8 | msg->token[4 + i];
    }
    if (salt != b->token_salt || index >= b->opt.count) {
        return -1;
    }
    return index;
}

/* CON POST /rd?ep=..&lt=..&lwm2m=1.1&b=U with the link-format body (LwM2M Transport 6.2.1). */
static int build_register(const bench_t *b, uint32_t index, uint8_t *buf, size_t size)
{
    const endpoint_state_t *e = &b->endpoints[index];
    uint8_t token[TOKEN_LEN];
    make_token(b, index, token);
    char ep[PREFIX_MAX + 16];
    snprintf(ep, sizeof(ep), "ep=%s%u", b->opt.prefix, index);
    char lifetime[16];
    snprintf(lifetime, sizeof(lifetime), "lt=%u", b->opt.lifetime);

    coap_writer_t w;
    coap_writer_init(&w, buf, size, COAP_TYPE_CON, COAP_POST, e->mid, token, sizeof(token));
    coap_writer_add_string(&w, COAP_OPTION_URI_PATH, "rd");
    coap_writer_add_uint(&w, COAP_OPTION_CONTENT_FORMAT, COAP_FORMAT_LINK);
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, ep);
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, lifetime);
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, "lwm2m=1.1");
    coap_writer_add_string(&w, COAP_OPTION_URI_QUERY, "b=U");
    coap_writer_payload(&w, register_links, sizeof(register_links) - 1);
    return coap_writer_finish(&w);
}

static void arm(bench_t *b, endpoint_state_t *e, uint64_t at)
{
    e->next_ns = at;
    if (at < b->next_wake) {
        b->next_wake = at;
    }
}

/* Sends (or resends) the endpoint's request and arms its timer (RFC 7252 4.2 back-off). */
static void transmit(bench_t *b, uint32_t index, uint64_t now)
{
    endpoint_state_t *e = &b->endpoints[index];
    uint8_t buf[DATAGRAM_MAX];
    int len = build_register(b, index, buf, sizeof(buf));

    /* A send that fails is a lost datagram: the timer retransmits it. */
    if (len < 0 || send(b->fds[socket_of(b, index)], buf, (size_t)len, 0) < 0) {
        b->counts.send_errors++;
    }
    arm(b, e, now + ((uint64_t)b->opt.timeout_ms << e->transmissions) * NS_PER_MS);
    e->transmissions++;
}

static void start_endpoint(bench_t *b, uint32_t index, uint64_t now)
{
    endpoint_state_t *e = &b->endpoints[index];
    uint32_t sock = socket_of(b, index);
    e->mid = b->next_mid[sock]++;
    *owner_slot(b, sock, e->mid) = index + 1;
    e->first_ns = now;
    e->status = STATUS_IN_FLIGHT;
    e->slot = b->in_flight_count;
    b->in_flight[b->in_flight_count++] = index;
    transmit(b, index, now);
}

/* Ends the exchange; `outcome` is the counter to bump. */
static void finish(bench_t *b, uint32_t index, uint64_t *outcome)
{
    endpoint_state_t *e = &b->endpoints[index];
    *owner_slot(b, socket_of(b, index), e->mid) = 0;

    uint32_t last = b->in_flight[--b->in_flight_count];
    b->in_flight[e->slot] = last;
    b->endpoints[last].slot = e->slot;

    e->status = STATUS_DONE;
    b->finished++;
    (*outcome)++;
}

/* 2.01 Created must name the registration: Location-Path rd/<id> (LwM2M Transport 6.2.1). */
static bool is_created(const coap_msg_t *msg)
{
    if (msg->code != COAP_CREATED) {
        return false;
    }
    size_t segments = 0;
    bool first_is_rd = false;
    for (size_t i = 0; i < msg->option_count; i++) {
        const coap_option_t *o = &msg->options[i];
        if (o->number != COAP_OPTION_LOCATION_PATH) {
            continue;
        }
        if (segments == 0) {
            first_is_rd = o->length == 2 && memcmp(o->value, "rd", 2) == 0;
        }
        segments++;
    }
    return first_is_rd && segments >= 2;
}

static void on_response(bench_t *b, uint32_t index, const coap_msg_t *msg, uint64_t now)
{
    b->counts.codes[msg->code]++;
    if (!is_created(msg)) {
        finish(b, index, &b->counts.other_code);
        return;
    }
    uint64_t micros = (now - b->endpoints[index].first_ns) / 1000;
    b->latency_us[b->latency_count++] = micros > UINT32_MAX ? UINT32_MAX : (uint32_t)micros;
    finish(b, index, &b->counts.created);
}

/* An empty ACK promises a separate response: stop resending, wait one more back-off. */
static void on_empty_ack(bench_t *b, uint32_t index, uint64_t now)
{
    endpoint_state_t *e = &b->endpoints[index];
    e->transmissions = (uint8_t)(b->opt.retries + 1);
    arm(b, e, now + ((uint64_t)b->opt.timeout_ms << b->opt.retries) * NS_PER_MS);
}

/* ACK or RST: matched by MID on the socket, then (piggybacked) by token. */
static void on_ack_or_reset(bench_t *b, uint32_t sock, const coap_msg_t *msg, uint64_t now)
{
    uint32_t owner = *owner_slot(b, sock, msg->mid);
    if (owner == 0) {
        b->counts.stray++;
        return;
    }
    uint32_t index = owner - 1;

    if (msg->type == COAP_TYPE_RST) {
        finish(b, index, &b->counts.reset);
    } else if (msg->code == COAP_CODE_EMPTY) {
        on_empty_ack(b, index, now);
    } else if (token_index(b, msg) == (int64_t)index) {
        on_response(b, index, msg, now);
    } else {
        b->counts.stray++;
    }
}

/*
 * A separate response (CON or NON), matched by token. A CON response is
 * acknowledged; a CON request from the server is not served by these
 * simulated clients, so it gets a Reset (RFC 7252 4.2).
 */
static void on_separate(bench_t *b, uint32_t sock, const coap_msg_t *msg, uint64_t now)
{
    if (msg->type == COAP_TYPE_CON) {
        bool is_request = COAP_CODE_CLASS(msg->code) == 0;
        uint8_t reply[4];
        coap_writer_t w;
        coap_writer_init(&w, reply, sizeof(reply), is_request ? COAP_TYPE_RST : COAP_TYPE_ACK,
                         COAP_CODE_EMPTY, msg->mid, NULL, 0);
        if (coap_writer_finish(&w) > 0 && send(b->fds[sock], reply, sizeof(reply), 0) < 0) {
            b->counts.send_errors++;
        }
    }

    int64_t index = token_index(b, msg);
    if (index < 0 || socket_of(b, (uint32_t)index) != sock ||
        b->endpoints[index].status != STATUS_IN_FLIGHT || COAP_CODE_CLASS(msg->code) < 2) {
        b->counts.stray++;
        return;
    }
    on_response(b, (uint32_t)index, msg, now);
}

static void on_datagram(bench_t *b, uint32_t sock, const uint8_t *data, size_t len, uint64_t now)
{
    coap_msg_t msg;
    if (coap_msg_parse(data, len, &msg, NULL) != LWM2MD_OK) {
        b->counts.stray++;
        return;
    }
    if (msg.type == COAP_TYPE_ACK || msg.type == COAP_TYPE_RST) {
        on_ack_or_reset(b, sock, &msg, now);
    } else {
        on_separate(b, sock, &msg, now);
    }
}

/* Reads what the socket holds, a batch at a time. Returns false on a socket error. */
static bool drain_socket(bench_t *b, uint32_t sock)
{
    struct mmsghdr msgs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];

    for (;;) {
        memset(msgs, 0, sizeof(msgs));
        for (int i = 0; i < RECV_BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = b->recv_buf[i], .iov_len = DATAGRAM_MAX};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(b->fds[sock], msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n < 0 && (errno == ECONNREFUSED || errno == EINTR)) {
            b->counts.icmp_errors += errno == ECONNREFUSED;
            continue;
        }
        if (n < 0) {
            perror("bench_register: recvmmsg");
            return false;
        }

        uint64_t now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            on_datagram(b, sock, b->recv_buf[i], msgs[i].msg_len, now);
        }
        if (n < RECV_BATCH) {
            return true;
        }
    }
}

/*
 * Retransmits or gives up on due exchanges and recomputes next_wake. A
 * scan of everything in flight, so it runs only when a timer is due.
 */
static void run_timers(bench_t *b, uint64_t now)
{
    if (now < b->next_wake) {
        return;
    }
    uint64_t earliest = UINT64_MAX;
    uint32_t i = 0;
    while (i < b->in_flight_count) {
        uint32_t index = b->in_flight[i];
        endpoint_state_t *e = &b->endpoints[index];
        if (e->next_ns <= now && e->transmissions > b->opt.retries) {
            finish(b, index, &b->counts.timed_out); /* slot i now holds another exchange */
            continue;
        }
        if (e->next_ns <= now) {
            transmit(b, index, now);
            b->counts.retransmissions++;
        }
        if (e->next_ns < earliest) {
            earliest = e->next_ns;
        }
        i++;
    }
    b->next_wake = earliest;
}

static void start_more(bench_t *b, uint64_t now)
{
    while (b->in_flight_count < b->opt.concurrency && b->next_start < b->opt.count) {
        start_endpoint(b, b->next_start++, now);
    }
}

/* Whatever has not finished by the deadline is counted as unfinished. */
static void abandon_rest(bench_t *b)
{
    while (b->in_flight_count > 0) {
        finish(b, b->in_flight[0], &b->counts.unfinished);
    }
    b->counts.unfinished += b->opt.count - b->next_start;
    b->finished += b->opt.count - b->next_start;
    b->next_start = b->opt.count;
}

static int poll_wait_ms(uint64_t now, uint64_t wake)
{
    if (wake <= now) {
        return 0;
    }
    uint64_t ms = (wake - now + NS_PER_MS - 1) / NS_PER_MS;
    return ms > 1000 ? 1000 : (int)ms;
}

/* The event loop. Returns 0, or -1 on a socket error. */
static int run(bench_t *b, struct pollfd *pfds, uint64_t *elapsed_ns)
{
    uint64_t start = bench_now_ns();
    uint64_t deadline = start + (uint64_t)b->opt.max_seconds * NS_PER_SEC;
    uint64_t now = start;

    for (;;) {
        run_timers(b, now);
        start_more(b, now); /* after the timers, which may have freed slots */
        if (b->finished == b->opt.count) {
            break;
        }

        uint64_t wake = b->next_wake < deadline ? b->next_wake : deadline;
        int ready = poll(pfds, b->opt.sockets, poll_wait_ms(now, wake));
        if (ready < 0 && errno != EINTR) {
            perror("bench_register: poll");
            return -1;
        }

        for (uint32_t s = 0; ready > 0 && s < b->opt.sockets; s++) {
            if (pfds[s].revents != 0 && !drain_socket(b, s)) {
                return -1;
            }
        }
        now = bench_now_ns();
        if (now >= deadline) {
            abandon_rest(b);
        }
    }
    *elapsed_ns = now - start;
    return 0;
}

static void print_codes(const bench_counts_t *c)
{
    for (int code = 0; code < 256; code++) {
        bool all_counted = code == COAP_CREATED && c->codes[code] == c->created;
        if (c->codes[code] > 0 && !all_counted) {
            char text[5];
            printf("  response %s: %llu\n", coap_code_string((uint8_t)code, text),
                   (unsigned long long)c->codes[code]);
        }
    }
}

static void report(bench_t *b, uint64_t elapsed_ns)
{
    const bench_counts_t *c = &b->counts;
    double seconds = (double)elapsed_ns / NS_PER_SEC;
    double rate = seconds > 0 ? (double)c->created / seconds : 0.0;
    uint64_t failed = b->opt.count - c->created;
    bench_sort_u32(b->latency_us, b->latency_count);
    double p50 = bench_percentile_ms(b->latency_us, b->latency_count, 0.50);
    double p99 = bench_percentile_ms(b->latency_us, b->latency_count, 0.99);

    printf("created %llu of %u registrations in %.3f s: %.0f registrations/s\n",
           (unsigned long long)c->created, b->opt.count, seconds, rate);
    printf("failed %llu (other response %llu, reset %llu, timed out %llu, unfinished %llu)\n",
           (unsigned long long)failed, (unsigned long long)c->other_code,
           (unsigned long long)c->reset, (unsigned long long)c->timed_out,
           (unsigned long long)c->unfinished);
    print_codes(c);
    printf("retransmissions %llu, stray datagrams %llu, send errors %llu, ICMP errors %llu\n",
           (unsigned long long)c->retransmissions, (unsigned long long)c->stray,
           (unsigned long long)c->send_errors, (unsigned long long)c->icmp_errors);
    printf("latency of created (first send to 2.01): p50 %.3f ms, p99 %.3f ms\n", p50, p99);
    printf("RESULT count=%u created=%llu failed=%llu retransmissions=%llu seconds=%.3f "
           "rate=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           b->opt.count, (unsigned long long)c->created, (unsigned long long)failed,
           (unsigned long long)c->retransmissions, seconds, rate, p50, p99);
}

int main(int argc, char **argv)
{
    bench_options_t opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc != 0) {
        return rc < 0 ? EXIT_ALL_CREATED : rc;
    }

    bench_t *b = bench_new(&opt);
    struct pollfd *pfds = calloc(opt.sockets, sizeof(*pfds));
    if (b == NULL || pfds == NULL) {
        fprintf(stderr, "bench_register: cannot set up (out of memory or sockets)\n");
        free(pfds);
        if (b != NULL) {
            bench_free(b);
        }
        return EXIT_USAGE;
    }
    for (uint32_t s = 0; s < opt.sockets; s++) {
        pfds[s] = (struct pollfd){.fd = b->fds[s], .events = POLLIN};
    }

    char server[NET_ADDR_STRING_MAX];
    printf("bench_register: %u endpoints '%s0'.., server %s, %u sockets, concurrency %u\n",
           opt.count, opt.prefix, net_addr_format(&opt.server, server, sizeof(server)), opt.sockets,
           opt.concurrency);
    uint64_t elapsed = 0;
    if (run(b, pfds, &elapsed) == 0) {
        report(b, elapsed);
        rc = b->counts.created == opt.count ? EXIT_ALL_CREATED : EXIT_SOME_FAILED;
    } else {
        rc = EXIT_USAGE;
    }
    free(pfds);
    bench_free(b);
    return rc;
}
