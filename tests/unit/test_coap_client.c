/* Server-originated requests over real UDP, answered by libcoap's coap-server. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/error.h"
#include "coap/endpoint.h"
#include "net/udp.h"

typedef struct fixture {
    uv_loop_t loop;
    net_udp_t *udp;
    coap_endpoint_t *ep;
    net_addr_t server;
    pid_t server_pid;
    bool done;
    int status;
    uint8_t code;
    char body[256];
} fixture_t;

static void on_datagram(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    fixture_t *f = ctx;
    coap_endpoint_input(f->ep, peer, NULL, data, len);
}

static int send_udp(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    fixture_t *f = ctx;
    return net_udp_send(f->udp, peer, data, len);
}

static void on_response(void *ctx, int status, const coap_msg_t *response, const uint8_t *body,
                        size_t body_len)
{
    fixture_t *f = ctx;
    f->done = true;
    f->status = status;
    f->code = response != NULL ? response->code : 0;
    size_t n = body_len < sizeof(f->body) - 1 ? body_len : sizeof(f->body) - 1;
    if (n > 0) {
        memcpy(f->body, body, n);
    }
    f->body[n] = '\0';
}

/* A port nobody listens on now: bind, read it, close. */
static uint16_t free_port(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_addr_t any;
    net_addr_parse(&any, "127.0.0.1", 0);
    net_udp_t *udp = NULL;
    int sys_errno = 0;
    assert_int_equal(net_udp_open(&loop, &any, on_datagram, NULL, &udp, &sys_errno), 0);
    net_addr_t local;
    net_udp_local(udp, &local);
    net_udp_close(udp);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return net_addr_port(&local);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    net_addr_t local;
    net_addr_parse(&local, "127.0.0.1", 0);
    int sys_errno = 0;
    assert_int_equal(net_udp_open(&f->loop, &local, on_datagram, f, &f->udp, &sys_errno), 0);

    coap_transport_t transport = {.send = send_udp, .ctx = f};
    coap_params_t params = {
        .ack_timeout_ms = 200,
        .ack_random_factor = 1.5,
        .max_retransmit = 3,
        .max_body_size = 4096,
        .block_size = 1024,
        .max_dedup = 16,
        .max_transfers = 4,
        .max_outgoing = 4,
    };
    assert_int_equal(coap_endpoint_new(&f->loop, &transport, &params, NULL, NULL, &f->ep), 0);

    /* libcoap's example server, on loopback, stopped in teardown. */
    uint16_t port = free_port();
    net_addr_parse(&f->server, "127.0.0.1", port);
    char port_text[8];
    snprintf(port_text, sizeof(port_text), "%u", port);
    f->server_pid = fork();
    assert_true(f->server_pid >= 0);
    if (f->server_pid == 0) {
        freopen("/dev/null", "w", stderr);
        execlp("timeout", "timeout", "60", "coap-server-notls", "-A", "127.0.0.1", "-p", port_text,
               (char *)NULL);
        _exit(127);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    kill(f->server_pid, SIGTERM);
    waitpid(f->server_pid, NULL, 0);
    coap_endpoint_free(f->ep);
    net_udp_close(f->udp);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    free(f);
    return 0;
}

/* Runs the loop until the request completes (bounded by the CoAP timeouts). */
static void wait_done(fixture_t *f)
{
    while (!f->done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void test_get_answered_by_libcoap(void **state)
{
    fixture_t *f = *state;
    const char *path[] = {NULL};

    /* The server may still be starting: our retransmissions cover that. */
    assert_int_equal(
        coap_endpoint_request(f->ep, &f->server, COAP_GET, path, NULL, -1, NULL, 0, on_response, f),
        0);
    wait_done(f);
    assert_int_equal(f->status, 0);
    assert_int_equal(f->code, COAP_CONTENT);
    assert_non_null(strstr(f->body, "libcoap"));
}

static void test_put_then_get(void **state)
{
    fixture_t *f = *state;
    const char *path[] = {"example_data", NULL};
    const uint8_t value[] = "lwm2md was here";

    assert_int_equal(coap_endpoint_request(f->ep, &f->server, COAP_PUT, path, NULL,
                                           COAP_FORMAT_TEXT, value, sizeof(value) - 1, on_response,
                                           f),
                     0);
    wait_done(f);
    assert_int_equal(f->status, 0);
    assert_true(f->code == COAP_CHANGED || f->code == COAP_CREATED);

    f->done = false;
    assert_int_equal(
        coap_endpoint_request(f->ep, &f->server, COAP_GET, path, NULL, -1, NULL, 0, on_response, f),
        0);
    wait_done(f);
    assert_int_equal(f->code, COAP_CONTENT);
    assert_string_equal(f->body, "lwm2md was here");
}

static void test_unanswered_request_times_out(void **state)
{
    fixture_t *f = *state;
    net_addr_t nobody;
    net_addr_parse(&nobody, "127.0.0.1", free_port());
    const char *path[] = {"3", "0", NULL};

    assert_int_equal(
        coap_endpoint_request(f->ep, &nobody, COAP_GET, path, NULL, -1, NULL, 0, on_response, f),
        0);
    wait_done(f);
    assert_int_equal(f->status, LWM2MD_ERR_AGAIN);
    coap_endpoint_stats_t stats;
    coap_endpoint_get_stats(f->ep, &stats);
    assert_int_equal(stats.retransmissions, 3);
    assert_int_equal(stats.timeouts, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_answered_by_libcoap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_then_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered_request_times_out, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
