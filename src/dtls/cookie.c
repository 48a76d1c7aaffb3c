/* Stateless DTLS cookies (RFC 6347 4.2.1): an HMAC of the client's address under a rotating key. */
#include "dtls/cookie.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/types.h>

#include "base/error.h"

enum {
    COOKIE_KEY_SIZE = 32,
    CLIENT_DATA_MAX = 1 + 2 + 16, /* family, port, IPv6 address */
    RECORD_SEQUENCE_LOW = 10,     /* last byte of the record sequence number */
};

/* The HelloVerifyRequest goes out through the caller's function. */
typedef struct cookie_push {
    dtls_cookie_send_fn send;
    void *ctx;
} cookie_push_t;

int dtls_cookie_init(dtls_cookie_t *cookie)
{
    memset(cookie, 0, sizeof(*cookie));
    if (gnutls_key_generate(&cookie->current, COOKIE_KEY_SIZE) < 0) {
        return LWM2MD_ERR_CRYPTO;
    }
    if (gnutls_key_generate(&cookie->previous, COOKIE_KEY_SIZE) < 0) {
        dtls_cookie_destroy(cookie);
        return LWM2MD_ERR_CRYPTO;
    }
    memcpy(cookie->previous.data, cookie->current.data, COOKIE_KEY_SIZE);
    return LWM2MD_OK;
}

static void wipe_key(gnutls_datum_t *key)
{
    if (key->data != NULL) {
        gnutls_memset(key->data, 0, key->size);
        gnutls_free(key->data);
    }
    key->data = NULL;
    key->size = 0;
}

int dtls_cookie_rotate(dtls_cookie_t *cookie)
{
    gnutls_datum_t fresh = {NULL, 0};
    if (gnutls_key_generate(&fresh, COOKIE_KEY_SIZE) < 0) {
        return LWM2MD_ERR_CRYPTO;
    }
    wipe_key(&cookie->previous);
    cookie->previous = cookie->current;
    cookie->current = fresh;
    return LWM2MD_OK;
}

void dtls_cookie_destroy(dtls_cookie_t *cookie)
{
    wipe_key(&cookie->current);
    wipe_key(&cookie->previous);
}

/* The bytes a cookie is bound to: address family, port and address. */
static size_t client_data(const net_addr_t *peer, uint8_t *out)
{
    uint16_t port = net_addr_port(peer);
    out[0] = (uint8_t)peer->ss.ss_family;
    out[1] = (uint8_t)(port >> 8);
    out[2] = (uint8_t)port;
    if (peer->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&peer->ss;
        memcpy(out + 3, &in6->sin6_addr, 16);
        return 3 + 16;
    }
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&peer->ss;
    memcpy(out + 3, &in4->sin_addr, 4);
    return 3 + 4;
}

bool dtls_cookie_verify(dtls_cookie_t *cookie, const net_addr_t *peer, const uint8_t *client_hello,
                        size_t len, gnutls_dtls_prestate_st *prestate)
{
    uint8_t data[CLIENT_DATA_MAX];
    size_t data_len = client_data(peer, data);

    /* GnuTLS only reads the message; its prototype lacks the const. */
    void *msg = (void *)(uintptr_t)client_hello;
    memset(prestate, 0, sizeof(*prestate));
    if (gnutls_dtls_cookie_verify(&cookie->current, data, data_len, msg, len, prestate) == 0) {
        return true;
    }
    return gnutls_dtls_cookie_verify(&cookie->previous, data, data_len, msg, len, prestate) == 0;
}

static ssize_t push_cookie(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
    const cookie_push_t *push = ptr;
    if (push->send(push->ctx, data, len) < 0) {
        return -1;
    }
    return (ssize_t)len;
}

int dtls_cookie_send(dtls_cookie_t *cookie, const net_addr_t *peer, const uint8_t *client_hello,
                     size_t len, dtls_cookie_send_fn send, void *ctx)
{
    uint8_t data[CLIENT_DATA_MAX];
    size_t data_len = client_data(peer, data);

    /* The HelloVerifyRequest repeats the ClientHello's record sequence number (RFC 6347 4.2.1). */
    gnutls_dtls_prestate_st prestate;
    memset(&prestate, 0, sizeof(prestate));
    if (len > RECORD_SEQUENCE_LOW) {
        prestate.record_seq = client_hello[RECORD_SEQUENCE_LOW];
    }

    cookie_push_t push = {send, ctx};
    int rc =
        gnutls_dtls_cookie_send(&cookie->current, data, data_len, &prestate, &push, push_cookie);
    return rc < 0 ? LWM2MD_ERR_IO : LWM2MD_OK;
}
