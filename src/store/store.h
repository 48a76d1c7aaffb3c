/* Store: devices, credentials and registrations in one SQLite file. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_ENDPOINT_MAX 256   /* bytes of an endpoint name, without NUL */
#define STORE_NAME_MAX 256
#define STORE_PSK_IDENTITY_MAX 128
#define STORE_PSK_KEY_MAX 64
#define STORE_REG_ID_MAX 32
#define STORE_PEER_MAX 64        /* "[v6addr]:port" or "a.b.c.d:port" */
#define STORE_VERSION_MAX 8      /* "1.0", "1.1", "1.2" */
#define STORE_BINDING_MAX 8
#define STORE_SMS_MAX 32

typedef struct store store_t;

typedef enum store_security {
    STORE_SECURITY_NOSEC = 0,
    STORE_SECURITY_PSK = 1,
    STORE_SECURITY_RPK = 2,
    STORE_SECURITY_X509 = 3,
} store_security_t;

/* "nosec", "psk", "rpk" or "x509". */
const char *store_security_name(store_security_t mode);

/*
 * A provisioned device and its one credential. Fields not used by the
 * mode are empty. rpk and cert are heap buffers owned by the struct;
 * store_device_clear() frees them.
 */
typedef struct store_device {
    char endpoint[STORE_ENDPOINT_MAX + 1];
    char name[STORE_NAME_MAX + 1]; /* display name, may be empty */
    store_security_t mode;
    char psk_identity[STORE_PSK_IDENTITY_MAX + 1];
    uint8_t psk_key[STORE_PSK_KEY_MAX];
    size_t psk_key_len;
    uint8_t *rpk; /* DER SubjectPublicKeyInfo (RPK mode) */
    size_t rpk_len;
    uint8_t *cert; /* DER pinned certificate (X.509 mode); NULL: trust CA, CN = endpoint */
    size_t cert_len;
} store_device_t;

void store_device_clear(store_device_t *device);

/* A registration as kept in the store (the lwm2m layer owns the live one). */
typedef struct store_registration {
    char id[STORE_REG_ID_MAX + 1];
    char endpoint[STORE_ENDPOINT_MAX + 1];
    char peer[STORE_PEER_MAX + 1];
    bool secure;                    /* registered over DTLS */
    char version[STORE_VERSION_MAX + 1];
    char binding[STORE_BINDING_MAX + 1];
    char sms[STORE_SMS_MAX + 1];
    bool queue_mode;
    uint32_t lifetime;              /* seconds */
    int64_t registered_at;          /* Unix seconds */
    int64_t updated_at;             /* Unix seconds of the last Register or Update */
    int64_t expires_at;             /* Unix seconds */
    char *links;                    /* heap; the object links as registered; may be NULL */
} store_registration_t;

void store_registration_clear(store_registration_t *reg);

/*
 * Opens (creating when missing) the data directory and the database
 * file inside it, in WAL mode, with a busy timeout so that the CLI and
 * a running server can share it. Creates or upgrades the versioned
 * schema. One store_t per thread: SQLite connections are not shared.
 * Returns 0 and sets *out, or a negative lwm2md_error_t.
 */
int store_open(const char *data_dir, store_t **out);
void store_close(store_t *store);

/* Path of the database file inside a data directory. */
#define STORE_FILE_NAME "lwm2md.db"

/*
 * Device registry. add refuses an existing endpoint, a PSK identity
 * already used and an RPK key already used (LWM2MD_ERR_EXISTS). get
 * fills *out (caller clears it). remove also removes the device's
 * registration. All return 0 or a negative lwm2md_error_t
 * (LWM2MD_ERR_NOT_FOUND when absent).
 */
int store_device_add(store_t *store, const store_device_t *device);
int store_device_get(store_t *store, const char *endpoint, store_device_t *out);
int store_device_remove(store_t *store, const char *endpoint);

/*
 * Calls fn for each device in endpoint order. The device is borrowed
 * for the call. A non-zero return from fn stops the walk and is
 * returned.
 */
typedef int (*store_device_fn)(const store_device_t *device, void *ctx);
int store_device_foreach(store_t *store, store_device_fn fn, void *ctx);

/* Registrations: one per endpoint; put replaces by endpoint. */
int store_registration_put(store_t *store, const store_registration_t *reg);
int store_registration_delete(store_t *store, const char *id);
int store_registration_get(store_t *store, const char *endpoint, store_registration_t *out);
typedef int (*store_registration_fn)(const store_registration_t *reg, void *ctx);
int store_registration_foreach(store_t *store, store_registration_fn fn, void *ctx);

/*
 * A number that changes when another connection (the CLI, another
 * process) has committed a change since the last call on this store
 * (SQLite's PRAGMA data_version). The server polls it to reload.
 */
int store_data_version(store_t *store, int64_t *out);

/*
 * A counter that moves whenever a device is added, changed or removed,
 * by any process. Cheap; the server reads it when the data version moved.
 */
int store_devices_version(store_t *store, int64_t *out);

/* Runs fn inside one transaction (BEGIN IMMEDIATE ... COMMIT/ROLLBACK). */
int store_transaction(store_t *store, int (*fn)(store_t *store, void *ctx), void *ctx);
