/* A worker thread: one libuv loop with its own sockets on every listener. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "dtls/credentials.h"
#include "lwm2m/registry.h"
#include "net/addr.h"

typedef struct worker worker_t;

/* What every worker shares, read-only once the workers run. */
typedef struct worker_shared {
    const config_t *config;
    registry_t *registry;            /* locked inside */
    const dtls_credentials_t *creds; /* NULL: no DTLS listener */
    net_addr_t nosec_bind;           /* port filled in after the first bind */
    net_addr_t secure_bind;
} worker_shared_t;

/*
 * Creates worker `index` and binds its sockets (on the calling thread,
 * so a bind failure stops the start before anything runs). When a bind
 * port is 0 the kernel picks one, and the shared address is updated so
 * that the next workers bind the same port. On failure writes one line
 * to err and returns a negative lwm2md_error_t.
 */
int worker_new(worker_shared_t *shared, unsigned index, worker_t **out, char *err, size_t err_size);

/* Starts the worker's thread. */
int worker_start(worker_t *worker);

/* Asks the loop to close everything and end (any thread), then joins and frees. */
void worker_stop(worker_t *worker);
