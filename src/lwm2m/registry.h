/* Registry: the provisioned devices and the live registrations, shared by all workers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "store/store.h"
#include "store/writer.h"

typedef struct registry registry_t;

/*
 * Creates an empty registry. Registrations are capped at
 * max_registrations. `writer` (borrowed, may be NULL in tests) receives
 * every registration change for the store. Returns 0 or a negative code.
 */
int registry_new(size_t max_registrations, store_writer_t *writer, registry_t **out);
void registry_free(registry_t *registry);

/*
 * Replaces the device index with the devices in the store, then removes
 * registrations whose device is gone or changed its security mode (unless
 * `keep_unknown_nosec` and the registration is NoSec). Removed
 * registrations are logged. Any thread; blocks on the database, so
 * never call it from an event loop.
 */
int registry_load_devices(registry_t *registry, store_t *store, bool keep_unknown_nosec);

/*
 * Loads registrations from the store that have not expired at `now`
 * (Unix seconds), so that a restart keeps registered devices. At start,
 * before workers run.
 */
int registry_restore(registry_t *registry, store_t *store, int64_t now);

/* The security mode of a provisioned device; LWM2MD_ERR_NOT_FOUND if none. Any thread. */
int registry_device_mode(registry_t *registry, const char *endpoint, store_security_t *mode);

/* Credential lookups for the DTLS layer (see dtls_callbacks_t). Any thread. */
int registry_psk_lookup(registry_t *registry, const char *identity, uint8_t *key, size_t *key_len,
                        char *endpoint, size_t endpoint_size);
int registry_rpk_lookup(registry_t *registry, const uint8_t *spki, size_t spki_len, char *endpoint,
                        size_t endpoint_size);
int registry_cert_lookup(registry_t *registry, const uint8_t *der, size_t der_len, const char *cn,
                         bool chain_trusted, char *endpoint, size_t endpoint_size);

/* What a Register or Update sets. Strings are borrowed. */
typedef struct registry_params {
    const char *endpoint;
    const net_addr_t *peer;
    bool secure;
    uint32_t lifetime;
    const char *version;
    const char *binding; /* NULL on Update: unchanged */
    const char *sms;     /* NULL on Update: unchanged */
    bool queue_mode;
    bool has_queue_mode; /* false on Update without Q */
    const char *links;   /* NULL on Update: unchanged */
    size_t links_len;
} registry_params_t;

/*
 * Registers an endpoint, replacing its previous registration if any
 * (*replaced_id then names it). The new id is written to id_out
 * (STORE_REG_ID_MAX + 1 bytes): random, never reused. Returns 0,
 * LWM2MD_ERR_FULL at the cap, LWM2MD_ERR_NOMEM. Any thread.
 */
int registry_register(registry_t *registry, const registry_params_t *params, int64_t now,
                      char *id_out, char *replaced_id);

/*
 * Applies an Update to registration `id`. Only the fields the params
 * set change (lifetime 0: unchanged), the expiry restarts from `now`,
 * the peer address follows the device. `endpoint_out` receives the
 * endpoint. Returns 0, LWM2MD_ERR_NOT_FOUND, or LWM2MD_ERR_DENIED when
 * the request did not come over the same kind of transport (secure) or,
 * for DTLS, from the authenticated endpoint that registered
 * (auth_endpoint; NULL for NoSec). Any thread.
 */
int registry_update(registry_t *registry, const char *id, const registry_params_t *params,
                    const char *auth_endpoint, int64_t now, char *endpoint_out);

/* De-registers `id`, with the same checks as Update. */
int registry_deregister(registry_t *registry, const char *id, bool secure,
                        const char *auth_endpoint, char *endpoint_out);

/*
 * Removes registrations whose lifetime ended more than `grace` seconds
 * before `now`, logging each. Returns the number removed. Any thread.
 */
size_t registry_expire(registry_t *registry, int64_t now, int64_t grace);

/* The number of live registrations. */
size_t registry_count(registry_t *registry);

/* Fills out with a copy of the registration of endpoint (caller clears). */
int registry_get(registry_t *registry, const char *endpoint, store_registration_t *out);
