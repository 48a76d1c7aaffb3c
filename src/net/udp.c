/* UDP listeners on a libuv loop. */
#include "net/udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"

/* Sends that could not go out at once and wait on the loop. */
#define SEND_QUEUE_MAX 1024

struct net_udp {
    uv_udp_t handle;
    net_udp_recv_fn fn;
    void *ctx;
    size_t queued;
    net_udp_stats_t stats;
    uint8_t buffer[NET_UDP_MAX_DATAGRAM];
    bool reading;
};

typedef struct queued_send {
    uv_udp_send_t req;
    net_udp_t *udp;
    size_t len;
    uint8_t data[];
} queued_send_t;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    net_udp_t *udp = handle->data;
    (void)suggested;

    /* One datagram at a time; the callback consumes it before the next read. */
    *buf = uv_buf_init((char *)udp->buffer, sizeof(udp->buffer));
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags)
{
    net_udp_t *udp = handle->data;
    net_addr_t peer;

    if (nread <= 0 || addr == NULL) {
        return;
    }
    if ((flags & UV_UDP_PARTIAL) != 0) {
        udp->stats.dropped++;
        return;
    }
    if (net_addr_set(&peer, addr) != LWM2MD_OK) {
        return;
    }
    udp->stats.received++;
    udp->fn(udp->ctx, &peer, (const uint8_t *)buf->base, (size_t)nread);
}

static int open_socket(const net_addr_t *bind_addr, bool reuse_port, int *sys_errno)
{
    int family = bind_addr->ss.ss_family;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *sys_errno = errno;
        return -1;
    }

    int on = 1;
    int off = 0;
    if ((reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) ||
        (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) ||
        bind(fd, (const struct sockaddr *)&bind_addr->ss, bind_addr->len) != 0) {
        *sys_errno = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static void on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

int net_udp_open(uv_loop_t *loop, const net_addr_t *bind_addr, net_udp_recv_fn fn, void *ctx,
                 net_udp_t **out, int *sys_errno)
{
    *sys_errno = 0;
    int fd = open_socket(bind_addr, true, sys_errno);
    if (fd < 0) {
        return LWM2MD_ERR_IO;
    }

    net_udp_t *udp = calloc(1, sizeof(*udp));
    if (udp == NULL) {
        close(fd);
        return LWM2MD_ERR_NOMEM;
    }
    udp->fn = fn;
    udp->ctx = ctx;
    udp->handle.data = udp;

    int rc = uv_udp_init(loop, &udp->handle);
    if (rc != 0) {
        *sys_errno = -rc;
        close(fd);
        free(udp);
        return LWM2MD_ERR_IO;
    }

    /* From here the handle is on the loop: failures close it, and its close callback frees. */
    rc = uv_udp_open(&udp->handle, fd);
    if (rc != 0) {
        close(fd);
    } else {
        rc = uv_udp_recv_start(&udp->handle, on_alloc, on_recv);
    }
    if (rc != 0) {
        *sys_errno = -rc;
        uv_close((uv_handle_t *)&udp->handle, on_closed);
        return LWM2MD_ERR_IO;
    }
    udp->reading = true;
    *out = udp;
    return LWM2MD_OK;
}

int net_udp_probe(const net_addr_t *bind_addr, int *sys_errno)
{
    *sys_errno = 0;
    int fd = open_socket(bind_addr, false, sys_errno);
    if (fd < 0) {
        return LWM2MD_ERR_IO;
    }
    close(fd);
    return LWM2MD_OK;
}

int net_udp_local(const net_udp_t *udp, net_addr_t *out)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_udp_getsockname(&udp->handle, (struct sockaddr *)&ss, &len) != 0) {
        return LWM2MD_ERR_IO;
    }
    return net_addr_set(out, (const struct sockaddr *)&ss);
}

static void on_sent(uv_udp_send_t *req, int status)
{
    queued_send_t *send = (queued_send_t *)req;
    (void)status;
    send->udp->queued--;
    free(send);
}

int net_udp_send(net_udp_t *udp, const net_addr_t *peer, const uint8_t *data, size_t len)
{
    /* libuv would bind a new socket for a send on a closing handle. */
    if (uv_is_closing((const uv_handle_t *)&udp->handle)) {
        udp->stats.dropped++;
        return LWM2MD_ERR_IO;
    }

    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);

    /* Most sends go straight out; only a full socket buffer queues. */
    int rc = uv_udp_try_send(&udp->handle, &buf, 1, (const struct sockaddr *)&peer->ss);
    if (rc >= 0) {
        udp->stats.sent++;
        return LWM2MD_OK;
    }
    if (rc != UV_EAGAIN) {
        udp->stats.dropped++;
        return LWM2MD_ERR_IO;
    }
    if (udp->queued >= SEND_QUEUE_MAX) {
        udp->stats.dropped++;
        return LWM2MD_ERR_FULL;
    }

    queued_send_t *send = malloc(sizeof(*send) + len);
    if (send == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    send->udp = udp;
    send->len = len;
    memcpy(send->data, data, len);
    buf = uv_buf_init((char *)send->data, (unsigned)len);
    rc =
        uv_udp_send(&send->req, &udp->handle, &buf, 1, (const struct sockaddr *)&peer->ss, on_sent);
    if (rc != 0) {
        free(send);
        udp->stats.dropped++;
        return LWM2MD_ERR_IO;
    }
    udp->queued++;
    udp->stats.sent++;
    return LWM2MD_OK;
}

void net_udp_close(net_udp_t *udp)
{
    if (udp == NULL) {
        return;
    }
    uv_udp_recv_stop(&udp->handle);
    uv_close((uv_handle_t *)&udp->handle, on_closed);
}

void net_udp_get_stats(const net_udp_t *udp, net_udp_stats_t *out)
{
    *out = udp->stats;
}
