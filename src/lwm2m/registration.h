/* The LwM2M registration interface (Core 6.2): Register, Update, De-register. */
#pragma once

#include <stdbool.h>

#include "coap/endpoint.h"
#include "log/log.h"
#include "lwm2m/registry.h"

/* One per listener per worker: it keeps a log limiter, which is not thread-safe. */
typedef struct reg_handler {
    registry_t *registry; /* borrowed */
    bool secure;          /* on the DTLS listener */
    bool allow_unknown_nosec;
    log_limiter_t refusal_log;
} reg_handler_t;

void reg_handler_init(reg_handler_t *handler, registry_t *registry, bool secure,
                      bool allow_unknown_nosec);

/*
 * A coap_handler_fn serving /rd. ctx is a reg_handler_t. On a secure
 * listener req->auth is the authenticated endpoint name (const char *);
 * on NoSec it is NULL. Answers per LwM2M Core 6.2 and the project's
 * rules: 4.00 bad request, 4.03 not allowed, 4.04 unknown path or id,
 * 4.05 wrong method, 4.12 unsupported LwM2M version, 4.13 too large,
 * 4.15 not link-format. Loop thread.
 */
void reg_handle_request(void *ctx, const coap_request_t *req, coap_response_t *resp);
