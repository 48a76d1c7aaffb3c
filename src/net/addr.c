/* Peer addresses: comparison, hashing and formatting. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

int net_addr_set(net_addr_t *addr, const struct sockaddr *sa)
{
    memset(addr, 0, sizeof(*addr));
    if (sa->sa_family == AF_INET) {
        memcpy(&addr->ss, sa, sizeof(struct sockaddr_in));
        addr->len = sizeof(struct sockaddr_in);
        return LWM2MD_OK;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(&addr->ss, sa, sizeof(struct sockaddr_in6));
        addr->len = sizeof(struct sockaddr_in6);
        return LWM2MD_OK;
    }
    return LWM2MD_ERR_INVALID;
}

int net_addr_parse(net_addr_t *addr, const char *host, uint16_t port)
{
    memset(addr, 0, sizeof(*addr));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr->ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        addr->len = sizeof(*in4);
        return LWM2MD_OK;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr->ss;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        addr->len = sizeof(*in6);
        return LWM2MD_OK;
    }
    return LWM2MD_ERR_INVALID;
}

int net_addr_parse_text(net_addr_t *addr, const char *text)
{
    char host[NET_ADDR_STRING_MAX];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text) {
        return LWM2MD_ERR_INVALID;
    }
    const char *start = text;
    size_t len = (size_t)(colon - text);
    if (text[0] == '[') {
        if (colon[-1] != ']' || len < 3) {
            return LWM2MD_ERR_INVALID;
        }
        start = text + 1;
        len -= 2;
    }
    if (len >= sizeof(host)) {
        return LWM2MD_ERR_INVALID;
    }
    memcpy(host, start, len);
    host[len] = '\0';

    char *end = NULL;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || port > 65535) {
        return LWM2MD_ERR_INVALID;
    }
    return net_addr_parse(addr, host, (uint16_t)port);
}

const char *net_addr_format(const net_addr_t *addr, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&addr->ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(in4->sin_port));
    } else if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr->ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
    return buf;
}

bool net_addr_equal(const net_addr_t *a, const net_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family) {
        return false;
    }
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
           x->sin6_scope_id == y->sin6_scope_id;
}

/* FNV-1a over the address bytes and port, mixed with a per-table seed. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t net_addr_hash(const net_addr_t *addr, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    if (addr->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&addr->ss;
        h = hash_bytes(h, &in4->sin_addr, sizeof(in4->sin_addr));
        h = hash_bytes(h, &in4->sin_port, sizeof(in4->sin_port));
    } else if (addr->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&addr->ss;
        h = hash_bytes(h, &in6->sin6_addr, sizeof(in6->sin6_addr));
        h = hash_bytes(h, &in6->sin6_port, sizeof(in6->sin6_port));
    }
    return h;
}

uint16_t net_addr_port(const net_addr_t *addr)
{
    if (addr->ss.ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
    }
    if (addr->ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
    }
    return 0;
}
