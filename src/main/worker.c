/* Worker threads: UDP → (DTLS) → CoAP → registration, all on one loop. */
#include "main/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "coap/endpoint.h"
#include "dtls/server.h"
#include "log/log.h"
#include "lwm2m/registration.h"
#include "net/udp.h"

struct worker {
    unsigned index;
    worker_shared_t *shared;
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    bool started;

    net_udp_t *nosec_udp;
    coap_endpoint_t *nosec_coap;
    reg_handler_t nosec_reg;

    net_udp_t *secure_udp;
    config_t dtls_config; /* the DTLS caps are this worker's share of the totals */
    dtls_server_t *dtls;
    coap_endpoint_t *secure_coap;
    reg_handler_t secure_reg;
};

/* Bytes of unfinished Block1 bodies one CoAP endpoint may hold. */
#define TRANSFER_BUDGET (16u * 1024 * 1024)

/* ---- NoSec: UDP straight to CoAP ---- */

static void nosec_recv(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    coap_endpoint_input(w->nosec_coap, peer, NULL, data, len);
}

static int nosec_send(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    return net_udp_send(w->nosec_udp, peer, data, len);
}

/* ---- DTLS: UDP to the DTLS server, plaintext to CoAP ---- */

static void secure_recv(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    dtls_server_input(w->dtls, peer, data, len);
}

static int secure_send_datagram(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    return net_udp_send(w->secure_udp, peer, data, len);
}

static int secure_send_plaintext(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    return dtls_server_send(w->dtls, peer, data, len);
}

static void secure_deliver(void *ctx, const net_addr_t *peer, const dtls_peer_auth_t *auth,
                           const uint8_t *data, size_t len)
{
    worker_t *w = ctx;
    coap_endpoint_input(w->secure_coap, peer, auth->endpoint, data, len);
}

static int psk_lookup(void *ctx, const char *identity, uint8_t *key, size_t *key_len,
                      char *endpoint, size_t endpoint_size)
{
    worker_t *w = ctx;
    return registry_psk_lookup(w->shared->registry, identity, key, key_len, endpoint,
                               endpoint_size);
}

static int rpk_lookup(void *ctx, const uint8_t *spki, size_t spki_len, char *endpoint,
                      size_t endpoint_size)
{
    worker_t *w = ctx;
    return registry_rpk_lookup(w->shared->registry, spki, spki_len, endpoint, endpoint_size);
}

static int cert_lookup(void *ctx, const uint8_t *der, size_t der_len, const char *cn,
                       bool chain_trusted, char *endpoint, size_t endpoint_size)
{
    worker_t *w = ctx;
    return registry_cert_lookup(w->shared->registry, der, der_len, cn, chain_trusted, endpoint,
                                endpoint_size);
}

static void coap_params_from(const config_t *cfg, coap_params_t *p)
{
    p->ack_timeout_ms = cfg->coap_ack_timeout_ms;
    p->ack_random_factor = cfg->coap_ack_random_factor;
    p->max_retransmit = cfg->coap_max_retransmit;
    p->max_body_size = cfg->coap_max_body_size;
    p->block_size = cfg->coap_block_size;
    p->max_dedup = cfg->coap_max_peers;
    /*
     * Block1 bodies in progress are held whole: at most TRANSFER_BUDGET
     * bytes of them per listener, however many spoofed peers start one.
     */
    uint32_t transfers = TRANSFER_BUDGET / cfg->coap_max_body_size;
    p->max_transfers = transfers < 16 ? 16 : transfers;
    p->max_outgoing = cfg->coap_max_peers;
}

/* Binds one listener; with port 0 the first worker's port becomes everyone's. */
static int bind_listener(worker_t *w, net_addr_t *bind_addr, const char *name, net_udp_recv_fn fn,
                         net_udp_t **udp, char *err, size_t err_size)
{
    int sys_errno = 0;
    int rc = LWM2MD_OK;
    if (w->index == 0 && net_addr_port(bind_addr) != 0) {
        rc = net_udp_probe(bind_addr, &sys_errno);
    }
    if (rc == LWM2MD_OK) {
        rc = net_udp_open(&w->loop, bind_addr, fn, w, udp, &sys_errno);
    }
    if (rc != LWM2MD_OK) {
        char where[NET_ADDR_STRING_MAX];
        snprintf(err, err_size, "%s listener %s: cannot bind (%s)", name,
                 net_addr_format(bind_addr, where, sizeof(where)),
                 sys_errno != 0 ? strerror(sys_errno) : lwm2md_strerror(rc));
        return rc;
    }
    if (net_addr_port(bind_addr) == 0) {
        net_udp_local(*udp, bind_addr);
    }
    return LWM2MD_OK;
}

static int open_nosec(worker_t *w, char *err, size_t err_size)
{
    const config_t *cfg = w->shared->config;
    coap_transport_t transport = {.send = nosec_send, .ctx = w};
    coap_params_t params;
    coap_params_from(cfg, &params);
    reg_handler_init(&w->nosec_reg, w->shared->registry, false, cfg->allow_unknown_nosec);
    int rc = coap_endpoint_new(&w->loop, &transport, &params, reg_handle_request, &w->nosec_reg,
                               &w->nosec_coap);
    if (rc != LWM2MD_OK) {
        snprintf(err, err_size, "worker %u: %s", w->index, lwm2md_strerror(rc));
        return rc;
    }
    return bind_listener(w, &w->shared->nosec_bind, "NoSec", nosec_recv, &w->nosec_udp, err,
                         err_size);
}

static int open_secure(worker_t *w, char *err, size_t err_size)
{
    const config_t *cfg = w->shared->config;
    dtls_callbacks_t callbacks = {
        .ctx = w,
        .psk_lookup = psk_lookup,
        .rpk_lookup = rpk_lookup,
        .cert_lookup = cert_lookup,
        .deliver = secure_deliver,
        .send_datagram = secure_send_datagram,
        .closed = NULL,
    };
    /* The kernel spreads peers evenly over the workers' sockets; each holds its share. */
    unsigned workers = cfg->workers > 0 ? cfg->workers : 1;
    w->dtls_config = *cfg;
    w->dtls_config.dtls_max_sessions = (cfg->dtls_max_sessions + workers - 1) / workers;
    w->dtls_config.dtls_max_handshakes = (cfg->dtls_max_handshakes + workers - 1) / workers;
    int rc = dtls_server_new(&w->loop, &w->dtls_config, w->shared->creds, &callbacks, &w->dtls);
    if (rc != LWM2MD_OK) {
        snprintf(err, err_size, "worker %u: DTLS server: %s", w->index, lwm2md_strerror(rc));
        return rc;
    }
    coap_transport_t transport = {.send = secure_send_plaintext, .ctx = w};
    coap_params_t params;
    coap_params_from(cfg, &params);
    reg_handler_init(&w->secure_reg, w->shared->registry, true, false);
    rc = coap_endpoint_new(&w->loop, &transport, &params, reg_handle_request, &w->secure_reg,
                           &w->secure_coap);
    if (rc != LWM2MD_OK) {
        snprintf(err, err_size, "worker %u: %s", w->index, lwm2md_strerror(rc));
        return rc;
    }
    return bind_listener(w, &w->shared->secure_bind, "DTLS", secure_recv, &w->secure_udp, err,
                         err_size);
}

/* Closes every handle of the loop's; memory goes when the loop has run their callbacks. */
static void close_all(worker_t *w)
{
    /* Top down: the DTLS server still sends close_notify through the socket. */
    coap_endpoint_free(w->nosec_coap);
    coap_endpoint_free(w->secure_coap);
    if (w->dtls != NULL) {
        dtls_server_free(w->dtls);
    }
    net_udp_close(w->nosec_udp);
    net_udp_close(w->secure_udp);
    w->nosec_udp = NULL;
    w->secure_udp = NULL;
    w->nosec_coap = NULL;
    w->secure_coap = NULL;
    w->dtls = NULL;
    uv_close((uv_handle_t *)&w->stop, NULL);
}

static void free_worker(worker_t *w)
{
    close_all(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    free(w);
}

static void on_stop(uv_async_t *async)
{
    close_all(async->data);
}

int worker_new(worker_shared_t *shared, unsigned index, worker_t **out, char *err, size_t err_size)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, err_size, "out of memory");
        return LWM2MD_ERR_NOMEM;
    }
    w->index = index;
    w->shared = shared;
    if (uv_loop_init(&w->loop) != 0) {
        free(w);
        snprintf(err, err_size, "worker %u: cannot create its event loop", index);
        return LWM2MD_ERR_IO;
    }
    uv_async_init(&w->loop, &w->stop, on_stop);
    w->stop.data = w;

    int rc = LWM2MD_OK;
    if (shared->config->enabled) {
        rc = open_nosec(w, err, err_size);
    }
    if (rc == LWM2MD_OK && shared->config->enabled && shared->creds != NULL) {
        rc = open_secure(w, err, err_size);
    }
    if (rc != LWM2MD_OK) {
        free_worker(w);
        return rc;
    }
    *out = w;
    return LWM2MD_OK;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

int worker_start(worker_t *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        return LWM2MD_ERR_IO;
    }
    w->started = true;
    return LWM2MD_OK;
}

void worker_stop(worker_t *w)
{
    if (w == NULL) {
        return;
    }
    if (!w->started) {
        free_worker(w);
        return;
    }
    uv_async_send(&w->stop);
    pthread_join(w->thread, NULL);
    uv_loop_close(&w->loop);
    free(w);
}
