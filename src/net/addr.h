/* Peer addresses: IPv4 and IPv6 socket addresses as values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NET_ADDR_STRING_MAX 64 /* "[ffff:...:ffff]:65535" fits */

typedef struct net_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} net_addr_t;

/* Copies a sockaddr (AF_INET or AF_INET6) in. Returns 0 or LWM2MD_ERR_INVALID. */
int net_addr_set(net_addr_t *addr, const struct sockaddr *sa);

/* Parses a numeric host ("0.0.0.0", "::1") and a port. */
int net_addr_parse(net_addr_t *addr, const char *host, uint16_t port);

/* Parses the form net_addr_format() writes. 0 or LWM2MD_ERR_INVALID. */
int net_addr_parse_text(net_addr_t *addr, const char *text);

/* "a.b.c.d:port" or "[v6]:port" into buf; returns buf. */
const char *net_addr_format(const net_addr_t *addr, char *buf, size_t size);

bool net_addr_equal(const net_addr_t *a, const net_addr_t *b);
uint64_t net_addr_hash(const net_addr_t *addr, uint64_t seed);
uint16_t net_addr_port(const net_addr_t *addr);
