/* UDP listeners on a libuv loop, one socket per worker with SO_REUSEPORT. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/addr.h"

typedef struct net_udp net_udp_t;

/* A datagram arrived. data is borrowed for the call only. Loop thread. */
typedef void (*net_udp_recv_fn)(void *ctx, const net_addr_t *peer, const uint8_t *data, size_t len);

/* Largest datagram read or sent; anything longer is dropped on receive. */
#define NET_UDP_MAX_DATAGRAM 2048

/*
 * Opens a UDP socket bound to `bind` on `loop` and starts reading.
 * SO_REUSEPORT is set so that every worker binds its own socket on the
 * same port and the kernel spreads peers over them. An IPv6 wildcard
 * ("::") accepts IPv4 peers too (IPV6_V6ONLY off). Returns 0 or a
 * negative lwm2md_error_t; on LWM2MD_ERR_IO, *sys_errno says why.
 */
int net_udp_open(uv_loop_t *loop, const net_addr_t *bind, net_udp_recv_fn fn, void *ctx,
                 net_udp_t **out, int *sys_errno);

/*
 * Checks that nobody else has the port: binds and closes a socket
 * without SO_REUSEPORT (which another process's SO_REUSEPORT sockets
 * would otherwise silently share). Returns 0, or LWM2MD_ERR_IO with
 * *sys_errno (EADDRINUSE when taken).
 */
int net_udp_probe(const net_addr_t *bind, int *sys_errno);

/* The address the socket is bound to (with the port the kernel chose). */
int net_udp_local(const net_udp_t *udp, net_addr_t *out);

/*
 * Sends a datagram now if the socket can take it, else copies it and
 * queues it on the loop (bounded; beyond the bound the datagram is
 * dropped, as UDP may). After net_udp_close() every send is dropped.
 * Loop thread. Returns 0 or a negative code.
 */
int net_udp_send(net_udp_t *udp, const net_addr_t *peer, const uint8_t *data, size_t len);

/* Stops reading and closes; memory is freed when libuv has closed the handle. */
void net_udp_close(net_udp_t *udp);

/* Counters, loop thread. */
typedef struct net_udp_stats {
    uint64_t received;
    uint64_t sent;
    uint64_t dropped; /* oversized on receive, or send queue full */
} net_udp_stats_t;

void net_udp_get_stats(const net_udp_t *udp, net_udp_stats_t *out);
