/* Registry: device index and live registrations, behind locks. */
#include "lwm2m/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/htable.h"
#include "base/random.h"
#include "log/log.h"

/* ---- device index ---- */

/* One provisioned device, as the hot lookups need it. */
typedef struct device_entry {
    htable_node_t by_endpoint;
    htable_node_t by_identity;
    htable_node_t by_key; /* RPK key or pinned certificate */
    struct device_entry *next_all;
    store_security_t mode;
    char *endpoint;
    char *psk_identity;
    uint8_t psk_key[STORE_PSK_KEY_MAX];
    size_t psk_key_len;
    uint8_t *blob; /* RPK SPKI or pinned certificate, DER */
    size_t blob_len;
} device_entry_t;

/* An immutable snapshot, rebuilt whole when the store changes. */
typedef struct device_index {
    htable_t by_endpoint;
    htable_t by_identity;
    htable_t by_key;
    device_entry_t *all;
    uint64_t seed;
} device_index_t;

/* ---- registrations ---- */

typedef struct registration {
    htable_node_t by_id;
    htable_node_t by_endpoint;
    size_t heap_index;
    net_addr_t peer;
    store_registration_t rec;
} registration_t;

struct registry {
    pthread_rwlock_t devices_lock;
    device_index_t *devices;

    pthread_mutex_t lock; /* guards everything below */
    htable_t by_id;
    htable_t by_endpoint;
    registration_t **heap; /* min-heap on rec.expires_at */
    size_t heap_count;
    size_t max_registrations;
    uint64_t seed;
    store_writer_t *writer;
};

static uint64_t string_hash(const char *s, uint64_t seed)
{
    return htable_hash_bytes(s, strlen(s), seed);
}

static void index_free(device_index_t *index)
{
    if (index == NULL) {
        return;
    }
    device_entry_t *entry = index->all;
    while (entry != NULL) {
        device_entry_t *next = entry->next_all;
        free(entry->endpoint);
        free(entry->psk_identity);
        free(entry->blob);
        memset(entry->psk_key, 0, sizeof(entry->psk_key));
        free(entry);
        entry = next;
    }
    htable_destroy(&index->by_endpoint);
    htable_destroy(&index->by_identity);
    htable_destroy(&index->by_key);
    free(index);
}

static device_index_t *index_new(void)
{
    device_index_t *index = calloc(1, sizeof(*index));
    if (index == NULL) {
        return NULL;
    }
    index->seed = random_u64();
    if (htable_init(&index->by_endpoint, 256) != LWM2MD_OK ||
        htable_init(&index->by_identity, 256) != LWM2MD_OK ||
        htable_init(&index->by_key, 64) != LWM2MD_OK) {
        index_free(index);
        return NULL;
    }
    return index;
}

static int index_add(const store_device_t *device, void *ctx)
{
    device_index_t *index = ctx;
    device_entry_t *entry = calloc(1, sizeof(*entry));
    if (entry == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    entry->next_all = index->all;
    index->all = entry;
    entry->mode = device->mode;
    entry->endpoint = strdup(device->endpoint);
    if (entry->endpoint == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    htable_insert(&index->by_endpoint, &entry->by_endpoint,
                  string_hash(entry->endpoint, index->seed));

    const uint8_t *blob = NULL;
    size_t blob_len = 0;
    if (device->mode == STORE_SECURITY_PSK) {
        entry->psk_identity = strdup(device->psk_identity);
        if (entry->psk_identity == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
        memcpy(entry->psk_key, device->psk_key, device->psk_key_len);
        entry->psk_key_len = device->psk_key_len;
        htable_insert(&index->by_identity, &entry->by_identity,
                      string_hash(entry->psk_identity, index->seed));
    } else if (device->mode == STORE_SECURITY_RPK) {
        blob = device->rpk;
        blob_len = device->rpk_len;
    } else if (device->mode == STORE_SECURITY_X509) {
        blob = device->cert;
        blob_len = device->cert_len;
    }
    if (blob != NULL && blob_len > 0) {
        entry->blob = malloc(blob_len);
        if (entry->blob == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
        memcpy(entry->blob, blob, blob_len);
        entry->blob_len = blob_len;
        htable_insert(&index->by_key, &entry->by_key,
                      htable_hash_bytes(blob, blob_len, index->seed));
    }
    return LWM2MD_OK;
}

static const device_entry_t *find_device(const device_index_t *index, const char *endpoint)
{
    uint64_t hash = string_hash(endpoint, index->seed);
    for (htable_node_t *n = htable_first(&index->by_endpoint, hash); n != NULL;
         n = htable_next(n, hash)) {
        const device_entry_t *e = HTABLE_ENTRY(n, device_entry_t, by_endpoint);
        if (strcmp(e->endpoint, endpoint) == 0) {
            return e;
        }
    }
    return NULL;
}

static const device_entry_t *find_by_key(const device_index_t *index, store_security_t mode,
                                         const uint8_t *blob, size_t len)
{
    uint64_t hash = htable_hash_bytes(blob, len, index->seed);
    for (htable_node_t *n = htable_first(&index->by_key, hash); n != NULL;
         n = htable_next(n, hash)) {
        const device_entry_t *e = HTABLE_ENTRY(n, device_entry_t, by_key);
        if (e->mode == mode && e->blob_len == len && memcmp(e->blob, blob, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static int copy_endpoint(const device_entry_t *entry, char *endpoint, size_t size)
{
    if (strlen(entry->endpoint) >= size) {
        return LWM2MD_ERR_TOO_BIG;
    }
    strcpy(endpoint, entry->endpoint);
    return LWM2MD_OK;
}

int registry_device_mode(registry_t *registry, const char *endpoint, store_security_t *mode)
{
    int rc = LWM2MD_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&registry->devices_lock);
    const device_entry_t *entry = find_device(registry->devices, endpoint);
    if (entry != NULL) {
        *mode = entry->mode;
        rc = LWM2MD_OK;
    }
    pthread_rwlock_unlock(&registry->devices_lock);
    return rc;
}

int registry_psk_lookup(registry_t *registry, const char *identity, uint8_t *key, size_t *key_len,
                        char *endpoint, size_t endpoint_size)
{
    int rc = LWM2MD_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&registry->devices_lock);
    const device_index_t *index = registry->devices;
    uint64_t hash = string_hash(identity, index->seed);
    for (htable_node_t *n = htable_first(&index->by_identity, hash); n != NULL;
         n = htable_next(n, hash)) {
        const device_entry_t *e = HTABLE_ENTRY(n, device_entry_t, by_identity);
        if (strcmp(e->psk_identity, identity) == 0 && *key_len >= e->psk_key_len) {
            memcpy(key, e->psk_key, e->psk_key_len);
            *key_len = e->psk_key_len;
            rc = copy_endpoint(e, endpoint, endpoint_size);
            break;
        }
    }
    pthread_rwlock_unlock(&registry->devices_lock);
    return rc;
}

int registry_rpk_lookup(registry_t *registry, const uint8_t *spki, size_t spki_len, char *endpoint,
                        size_t endpoint_size)
{
    int rc = LWM2MD_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&registry->devices_lock);
    const device_entry_t *e = find_by_key(registry->devices, STORE_SECURITY_RPK, spki, spki_len);
    if (e != NULL) {
        rc = copy_endpoint(e, endpoint, endpoint_size);
    }
    pthread_rwlock_unlock(&registry->devices_lock);
    return rc;
}

/*
 * A pinned certificate matches byte for byte. Otherwise a trusted chain
 * whose CN names an X.509 device without a pinned certificate matches.
 */
int registry_cert_lookup(registry_t *registry, const uint8_t *der, size_t der_len, const char *cn,
                         bool chain_trusted, char *endpoint, size_t endpoint_size)
{
    int rc = LWM2MD_ERR_NOT_FOUND;
    pthread_rwlock_rdlock(&registry->devices_lock);
    const device_entry_t *e = find_by_key(registry->devices, STORE_SECURITY_X509, der, der_len);
    if (e == NULL && chain_trusted && cn != NULL) {
        e = find_device(registry->devices, cn);
        if (e != NULL && (e->mode != STORE_SECURITY_X509 || e->blob != NULL)) {
            e = NULL;
        }
    }
    if (e != NULL) {
        rc = copy_endpoint(e, endpoint, endpoint_size);
    }
    pthread_rwlock_unlock(&registry->devices_lock);
    return rc;
}

/* ---- the expiry heap (registry->lock held) ---- */

static void heap_swap(registry_t *r, size_t a, size_t b)
{
    registration_t *tmp = r->heap[a];
    r->heap[a] = r->heap[b];
    r->heap[b] = tmp;
    r->heap[a]->heap_index = a;
    r->heap[b]->heap_index = b;
}

static void heap_fix(registry_t *r, size_t i)
{
    while (i > 0 && r->heap[(i - 1) / 2]->rec.expires_at > r->heap[i]->rec.expires_at) {
        heap_swap(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t left = 2 * i + 1;
        size_t smallest = i;
        if (left < r->heap_count &&
            r->heap[left]->rec.expires_at < r->heap[smallest]->rec.expires_at) {
            smallest = left;
        }
        if (left + 1 < r->heap_count &&
            r->heap[left + 1]->rec.expires_at < r->heap[smallest]->rec.expires_at) {
            smallest = left + 1;
        }
        if (smallest == i) {
            return;
        }
        heap_swap(r, i, smallest);
        i = smallest;
    }
}

static void heap_remove(registry_t *r, registration_t *reg)
{
    size_t i = reg->heap_index;
    r->heap_count--;
    if (i != r->heap_count) {
        r->heap[i] = r->heap[r->heap_count];
        r->heap[i]->heap_index = i;
        heap_fix(r, i);
    }
}

/* ---- registrations (registry->lock held) ---- */

static registration_t *find_by_id(registry_t *r, const char *id)
{
    uint64_t hash = string_hash(id, r->seed);
    for (htable_node_t *n = htable_first(&r->by_id, hash); n != NULL; n = htable_next(n, hash)) {
        registration_t *reg = HTABLE_ENTRY(n, registration_t, by_id);
        if (strcmp(reg->rec.id, id) == 0) {
            return reg;
        }
    }
    return NULL;
}

static registration_t *find_by_endpoint(registry_t *r, const char *endpoint)
{
    uint64_t hash = string_hash(endpoint, r->seed);
    for (htable_node_t *n = htable_first(&r->by_endpoint, hash); n != NULL;
         n = htable_next(n, hash)) {
        registration_t *reg = HTABLE_ENTRY(n, registration_t, by_endpoint);
        if (strcmp(reg->rec.endpoint, endpoint) == 0) {
            return reg;
        }
    }
    return NULL;
}

static void persist(registry_t *r, const registration_t *reg)
{
    if (r->writer != NULL && store_writer_put_registration(r->writer, &reg->rec) != LWM2MD_OK) {
        log_warn("endpoint '%s': registration not saved (store queue full)", reg->rec.endpoint);
    }
}

/* Unlinks and frees a registration; `deleted` says whether the store row goes too. */
static void drop(registry_t *r, registration_t *reg, bool delete_row)
{
    htable_remove(&r->by_id, &reg->by_id);
    htable_remove(&r->by_endpoint, &reg->by_endpoint);
    heap_remove(r, reg);
    if (delete_row && r->writer != NULL &&
        store_writer_delete_registration(r->writer, reg->rec.id) != LWM2MD_OK) {
        log_warn("endpoint '%s': registration removal not saved (store queue full)",
                 reg->rec.endpoint);
    }
    store_registration_clear(&reg->rec);
    free(reg);
}

static int link_new(registry_t *r, registration_t *reg)
{
    if (r->heap_count == r->max_registrations) {
        return LWM2MD_ERR_FULL;
    }
    htable_insert(&r->by_id, &reg->by_id, string_hash(reg->rec.id, r->seed));
    htable_insert(&r->by_endpoint, &reg->by_endpoint, string_hash(reg->rec.endpoint, r->seed));
    reg->heap_index = r->heap_count;
    r->heap[r->heap_count++] = reg;
    heap_fix(r, reg->heap_index);
    return LWM2MD_OK;
}

/* A random id of 12 letters and digits (71 bits): never reused in practice. */
static void new_id(registry_t *r, char *id)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    do {
        uint8_t bytes[12];
        random_bytes(bytes, sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes); i++) {
            id[i] = alphabet[bytes[i] % 62];
        }
        id[sizeof(bytes)] = '\0';
    } while (find_by_id(r, id) != NULL);
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

static int set_links(store_registration_t *rec, const char *links, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(copy, links, len);
    copy[len] = '\0';
    free(rec->links);
    rec->links = copy;
    return LWM2MD_OK;
}

int registry_register(registry_t *r, const registry_params_t *p, int64_t now, char *id_out,
                      char *replaced_id)
{
    registration_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    store_registration_t *rec = &reg->rec;
    reg->peer = *p->peer;
    copy_text(rec->endpoint, sizeof(rec->endpoint), p->endpoint);
    net_addr_format(p->peer, rec->peer, sizeof(rec->peer));
    rec->secure = p->secure;
    copy_text(rec->version, sizeof(rec->version), p->version);
    copy_text(rec->binding, sizeof(rec->binding), p->binding);
    copy_text(rec->sms, sizeof(rec->sms), p->sms);
    rec->queue_mode = p->queue_mode;
    rec->lifetime = p->lifetime;
    rec->registered_at = now;
    rec->updated_at = now;
    rec->expires_at = now + p->lifetime;
    if (p->links != NULL && set_links(rec, p->links, p->links_len) != LWM2MD_OK) {
        free(reg);
        return LWM2MD_ERR_NOMEM;
    }

    pthread_mutex_lock(&r->lock);
    replaced_id[0] = '\0';
    registration_t *old = find_by_endpoint(r, p->endpoint);
    if (old != NULL) {
        copy_text(replaced_id, STORE_REG_ID_MAX + 1, old->rec.id);
        drop(r, old, false); /* the store replaces the row by endpoint */
    }
    new_id(r, rec->id);
    int rc = link_new(r, reg);
    if (rc == LWM2MD_OK) {
        copy_text(id_out, STORE_REG_ID_MAX + 1, rec->id);
        persist(r, reg);
    }
    pthread_mutex_unlock(&r->lock);

    if (rc != LWM2MD_OK) {
        store_registration_clear(rec);
        free(reg);
    }
    return rc;
}

/* Update and De-register come over the transport, and from the endpoint, that registered. */
static bool same_origin(const registration_t *reg, bool secure, const char *auth_endpoint)
{
    if (reg->rec.secure != secure) {
        return false;
    }
    return !secure || (auth_endpoint != NULL && strcmp(auth_endpoint, reg->rec.endpoint) == 0);
}

static int apply_update(registration_t *reg, const registry_params_t *p, int64_t now)
{
    store_registration_t *rec = &reg->rec;
    if (p->links != NULL && set_links(rec, p->links, p->links_len) != LWM2MD_OK) {
        return LWM2MD_ERR_NOMEM;
    }
    if (p->lifetime > 0) {
        rec->lifetime = p->lifetime;
    }
    if (p->binding != NULL) {
        copy_text(rec->binding, sizeof(rec->binding), p->binding);
    }
    if (p->sms != NULL) {
        copy_text(rec->sms, sizeof(rec->sms), p->sms);
    }
    if (p->has_queue_mode) {
        rec->queue_mode = p->queue_mode;
    }
    reg->peer = *p->peer;
    net_addr_format(p->peer, rec->peer, sizeof(rec->peer));
    rec->updated_at = now;
    rec->expires_at = now + rec->lifetime;
    return LWM2MD_OK;
}

int registry_update(registry_t *r, const char *id, const registry_params_t *p,
                    const char *auth_endpoint, int64_t now, char *endpoint_out)
{
    pthread_mutex_lock(&r->lock);
    int rc = LWM2MD_ERR_NOT_FOUND;
    registration_t *reg = find_by_id(r, id);
    if (reg != NULL) {
        copy_text(endpoint_out, STORE_ENDPOINT_MAX + 1, reg->rec.endpoint);
        rc = same_origin(reg, p->secure, auth_endpoint) ? apply_update(reg, p, now)
                                                        : LWM2MD_ERR_DENIED;
    }
    if (rc == LWM2MD_OK) {
        heap_fix(r, reg->heap_index);
        persist(r, reg);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int registry_deregister(registry_t *r, const char *id, bool secure, const char *auth_endpoint,
                        char *endpoint_out)
{
    pthread_mutex_lock(&r->lock);
    int rc = LWM2MD_ERR_NOT_FOUND;
    registration_t *reg = find_by_id(r, id);
    if (reg != NULL) {
        copy_text(endpoint_out, STORE_ENDPOINT_MAX + 1, reg->rec.endpoint);
        rc = same_origin(reg, secure, auth_endpoint) ? LWM2MD_OK : LWM2MD_ERR_DENIED;
    }
    if (rc == LWM2MD_OK) {
        drop(r, reg, true);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

size_t registry_expire(registry_t *r, int64_t now, int64_t grace)
{
    size_t removed = 0;
    pthread_mutex_lock(&r->lock);
    while (r->heap_count > 0 && r->heap[0]->rec.expires_at + grace <= now) {
        registration_t *reg = r->heap[0];
        log_info("endpoint '%s': registration expired (id=%s, lifetime=%us, last update %llds "
                 "ago)",
                 reg->rec.endpoint, reg->rec.id, reg->rec.lifetime,
                 (long long)(now - reg->rec.updated_at));
        drop(r, reg, true);
        removed++;
    }
    pthread_mutex_unlock(&r->lock);
    return removed;
}

size_t registry_count(registry_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t count = r->heap_count;
    pthread_mutex_unlock(&r->lock);
    return count;
}

int registry_get(registry_t *r, const char *endpoint, store_registration_t *out)
{
    int rc = LWM2MD_ERR_NOT_FOUND;
    pthread_mutex_lock(&r->lock);
    registration_t *reg = find_by_endpoint(r, endpoint);
    if (reg != NULL) {
        *out = reg->rec;
        out->links = NULL;
        rc = reg->rec.links != NULL ? set_links(out, reg->rec.links, strlen(reg->rec.links))
                                    : LWM2MD_OK;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- lifecycle ---- */

int registry_new(size_t max_registrations, store_writer_t *writer, registry_t **out)
{
    registry_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    r->max_registrations = max_registrations;
    r->writer = writer;
    r->seed = random_u64();
    r->heap = calloc(max_registrations > 0 ? max_registrations : 1, sizeof(*r->heap));
    r->devices = index_new();
    if (r->heap == NULL || r->devices == NULL || htable_init(&r->by_id, 1024) != LWM2MD_OK ||
        htable_init(&r->by_endpoint, 1024) != LWM2MD_OK) {
        registry_free(r);
        return LWM2MD_ERR_NOMEM;
    }
    pthread_rwlock_init(&r->devices_lock, NULL);
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return LWM2MD_OK;
}

void registry_free(registry_t *r)
{
    if (r == NULL) {
        return;
    }
    while (r->heap != NULL && r->heap_count > 0) {
        drop(r, r->heap[0], false);
    }
    free(r->heap);
    htable_destroy(&r->by_id);
    htable_destroy(&r->by_endpoint);
    index_free(r->devices);
    pthread_rwlock_destroy(&r->devices_lock);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* Whether a registration may stay after the device index changed. */
static const char *stale_reason(const device_index_t *index, const registration_t *reg,
                                bool keep_unknown_nosec)
{
    const device_entry_t *device = find_device(index, reg->rec.endpoint);
    if (device == NULL) {
        return keep_unknown_nosec && !reg->rec.secure ? NULL : "device removed";
    }
    bool secure = device->mode != STORE_SECURITY_NOSEC;
    return secure == reg->rec.secure ? NULL : "device security mode changed";
}

int registry_load_devices(registry_t *r, store_t *store, bool keep_unknown_nosec)
{
    device_index_t *index = index_new();
    if (index == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    int rc = store_device_foreach(store, index_add, index);
    if (rc != LWM2MD_OK) {
        index_free(index);
        return rc;
    }

    pthread_rwlock_wrlock(&r->devices_lock);
    device_index_t *old = r->devices;
    r->devices = index;
    pthread_rwlock_unlock(&r->devices_lock);
    index_free(old);

    /* Registrations of devices that are gone or changed go too. */
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->heap_count;) {
        registration_t *reg = r->heap[i];
        const char *reason = stale_reason(index, reg, keep_unknown_nosec);
        if (reason == NULL) {
            i++;
            continue;
        }
        log_info("endpoint '%s': registration removed (%s)", reg->rec.endpoint, reason);
        drop(r, reg, true);
    }
    pthread_mutex_unlock(&r->lock);
    return LWM2MD_OK;
}

typedef struct restore_ctx {
    registry_t *registry;
    int64_t now;
    size_t restored;
} restore_ctx_t;

static int restore_one(const store_registration_t *rec, void *ctx)
{
    restore_ctx_t *rc = ctx;
    registry_t *r = rc->registry;
    if (rec->expires_at <= rc->now || find_by_id(r, rec->id) != NULL ||
        find_by_endpoint(r, rec->endpoint) != NULL) {
        return LWM2MD_OK;
    }
    registration_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    reg->rec = *rec;
    reg->rec.links = NULL;
    if (net_addr_parse_text(&reg->peer, rec->peer) != LWM2MD_OK ||
        (rec->links != NULL && set_links(&reg->rec, rec->links, strlen(rec->links)) != 0) ||
        link_new(r, reg) != LWM2MD_OK) {
        store_registration_clear(&reg->rec);
        free(reg);
        return LWM2MD_OK; /* skip what cannot be restored */
    }
    rc->restored++;
    return LWM2MD_OK;
}

int registry_restore(registry_t *r, store_t *store, int64_t now)
{
    restore_ctx_t ctx = {.registry = r, .now = now};
    pthread_mutex_lock(&r->lock);
    int rc = store_registration_foreach(store, restore_one, &ctx);
    pthread_mutex_unlock(&r->lock);
    if (rc == LWM2MD_OK && ctx.restored > 0) {
        log_info("registry: %zu registrations restored from the store", ctx.restored);
    }
    return rc;
}
