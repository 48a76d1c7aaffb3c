/* The LwM2M registration interface (LwM2M Core 1.2, 6.2; Transport 6.4). */
#include "lwm2m/registration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "lwm2m/objlinks.h"

#define PATH_MAX_SEGMENTS 4
#define SEGMENT_MAX 64
#define DEFAULT_LIFETIME 86400 /* LwM2M Core: the Server object's default */

/* The query parameters of Register and Update (Core 6.2.1, 6.2.2). */
typedef struct reg_query {
    char endpoint[STORE_ENDPOINT_MAX + 1];
    bool has_endpoint;
    uint32_t lifetime; /* 0: absent */
    char version[STORE_VERSION_MAX + 1];
    char binding[STORE_BINDING_MAX + 1];
    bool has_binding;
    char sms[STORE_SMS_MAX + 1];
    bool has_sms;
    bool queue_mode;
} reg_query_t;

void reg_handler_init(reg_handler_t *handler, registry_t *registry, bool secure,
                      bool allow_unknown_nosec)
{
    handler->registry = registry;
    handler->secure = secure;
    handler->allow_unknown_nosec = allow_unknown_nosec;
    log_limiter_init(&handler->refusal_log, 5.0, 20.0);
}

/* Copies an option value as a string; LWM2MD_ERR_INVALID when too long or holding NUL. */
static int option_text(const coap_option_t *opt, char *out, size_t size)
{
    if (opt->length >= size || memchr(opt->value, '\0', opt->length) != NULL) {
        return LWM2MD_ERR_INVALID;
    }
    memcpy(out, opt->value, opt->length);
    out[opt->length] = '\0';
    return LWM2MD_OK;
}

static size_t uri_path(const coap_msg_t *msg, char segments[][SEGMENT_MAX], int *error)
{
    size_t count = 0;
    *error = LWM2MD_OK;
    for (size_t i = 0; i < msg->option_count; i++) {
        if (msg->options[i].number != COAP_OPTION_URI_PATH) {
            continue;
        }
        if (count == PATH_MAX_SEGMENTS ||
            option_text(&msg->options[i], segments[count], SEGMENT_MAX) != LWM2MD_OK) {
            *error = LWM2MD_ERR_INVALID;
            return count;
        }
        count++;
    }
    return count;
}

static bool parse_uint(const char *text, uint32_t max, uint32_t *out)
{
    if (*text == '\0' || strlen(text) > 10) {
        return false;
    }
    uint64_t value = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10 + (uint64_t)(*p - '0');
    }
    if (value > max) {
        return false;
    }
    *out = (uint32_t)value;
    return true;
}

/* Binding letters: U, S, Q (1.0), T, N (1.1); each at most once. */
static bool valid_binding(const char *b)
{
    if (*b == '\0') {
        return false;
    }
    for (const char *p = b; *p != '\0'; p++) {
        if (strchr("UQSTN", *p) == NULL || strchr(p + 1, *p) != NULL) {
            return false;
        }
    }
    return true;
}

static bool valid_endpoint(const char *ep)
{
    if (*ep == '\0') {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)ep; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool valid_sms(const char *sms)
{
    return strspn(sms, "+0123456789") == strlen(sms);
}

/* Applies one "name=value" (or "name") query item; returns a CoAP error code or 0. */
static uint8_t apply_query_item(reg_query_t *q, const char *item)
{
    const char *eq = strchr(item, '=');
    size_t name_len = eq != NULL ? (size_t)(eq - item) : strlen(item);
    const char *value = eq != NULL ? eq + 1 : NULL;

    if (name_len == 2 && strncmp(item, "ep", 2) == 0 && value != NULL) {
        snprintf(q->endpoint, sizeof(q->endpoint), "%s", value);
        q->has_endpoint = true;
        return valid_endpoint(q->endpoint) ? 0 : COAP_BAD_REQUEST;
    }
    if (name_len == 2 && strncmp(item, "lt", 2) == 0) {
        bool ok = value != NULL && parse_uint(value, 0x7fffffff, &q->lifetime);
        return ok && q->lifetime > 0 ? 0 : COAP_BAD_REQUEST;
    }
    if (name_len == 5 && strncmp(item, "lwm2m", 5) == 0) {
        /* Core 6.2.1: versions this server speaks; clients fall back on 4.12. */
        if (value == NULL ||
            (strcmp(value, "1.0") != 0 && strcmp(value, "1.1") != 0 && strcmp(value, "1.2") != 0)) {
            return COAP_PRECONDITION_FAILED;
        }
        snprintf(q->version, sizeof(q->version), "%s", value);
        return 0;
    }
    if (name_len == 1 && item[0] == 'b') {
        if (value == NULL || strlen(value) > STORE_BINDING_MAX || !valid_binding(value)) {
            return COAP_BAD_REQUEST;
        }
        snprintf(q->binding, sizeof(q->binding), "%s", value);
        q->has_binding = true;
        q->queue_mode = q->queue_mode || strchr(value, 'Q') != NULL;
        return 0;
    }
    if (name_len == 3 && strncmp(item, "sms", 3) == 0) {
        if (value == NULL || strlen(value) > STORE_SMS_MAX || !valid_sms(value)) {
            return COAP_BAD_REQUEST;
        }
        snprintf(q->sms, sizeof(q->sms), "%s", value);
        q->has_sms = true;
        return 0;
    }
    if (name_len == 1 && item[0] == 'Q' && value == NULL) {
        q->queue_mode = true; /* LwM2M 1.1 queue mode flag */
        return 0;
    }
    return 0; /* other parameters are ignored */
}

static uint8_t parse_query(const coap_msg_t *msg, reg_query_t *q)
{
    memset(q, 0, sizeof(*q));
    snprintf(q->version, sizeof(q->version), "1.0");
    for (size_t i = 0; i < msg->option_count; i++) {
        if (msg->options[i].number != COAP_OPTION_URI_QUERY) {
            continue;
        }
        char item[STORE_ENDPOINT_MAX + 8];
        if (option_text(&msg->options[i], item, sizeof(item)) != LWM2MD_OK) {
            return COAP_BAD_REQUEST;
        }
        uint8_t code = apply_query_item(q, item);
        if (code != 0) {
            return code;
        }
    }
    return 0;
}

/* The payload must be link-format (Core 6.2.1); returns a CoAP error code or 0. */
static uint8_t check_links(const coap_request_t *req, size_t *count)
{
    *count = 0;
    const coap_option_t *cf = coap_msg_find(req->msg, COAP_OPTION_CONTENT_FORMAT);
    uint32_t format = COAP_FORMAT_LINK;
    if (cf != NULL && (coap_option_uint(cf, &format) != LWM2MD_OK || format != COAP_FORMAT_LINK)) {
        return COAP_UNSUPPORTED_CONTENT_FORMAT;
    }
    if (req->body_len == 0) {
        return 0;
    }
    objlinks_t *links = malloc(sizeof(*links));
    if (links == NULL) {
        return COAP_INTERNAL_SERVER_ERROR;
    }
    int rc = objlinks_parse((const char *)req->body, req->body_len, links);
    *count = links->count;
    free(links);
    if (rc == LWM2MD_ERR_TOO_BIG) {
        return COAP_REQUEST_ENTITY_TOO_LARGE;
    }
    return rc == LWM2MD_OK ? 0 : COAP_BAD_REQUEST;
}

static void refuse(reg_handler_t *h, const coap_request_t *req, const char *endpoint,
                   const char *reason)
{
    if (!log_limiter_allow(&h->refusal_log, (uint64_t)time(NULL) * 1000)) {
        return;
    }
    char peer[NET_ADDR_STRING_MAX];
    log_warn("endpoint '%s': registration refused (%s) from %s", endpoint, reason,
             net_addr_format(req->peer, peer, sizeof(peer)));
}

/* Security model: NoSec devices on the NoSec port, secured ones as themselves over DTLS. */
static bool authorize(reg_handler_t *h, const coap_request_t *req, const char *endpoint)
{
    char reason[STORE_ENDPOINT_MAX + 64];
    if (h->secure) {
        const char *auth = req->auth;
        if (auth != NULL && strcmp(auth, endpoint) == 0) {
            return true;
        }
        snprintf(reason, sizeof(reason), "DTLS session authenticated as '%s'",
                 auth != NULL ? auth : "");
        refuse(h, req, endpoint, reason);
        return false;
    }

    store_security_t mode;
    if (registry_device_mode(h->registry, endpoint, &mode) != LWM2MD_OK) {
        if (h->allow_unknown_nosec) {
            return true;
        }
        refuse(h, req, endpoint, "not provisioned");
        return false;
    }
    if (mode != STORE_SECURITY_NOSEC) {
        snprintf(reason, sizeof(reason), "device uses %s; not allowed on the NoSec port",
                 store_security_name(mode));
        refuse(h, req, endpoint, reason);
        return false;
    }
    return true;
}

static void do_register(reg_handler_t *h, const coap_request_t *req, coap_response_t *resp)
{
    reg_query_t q;
    size_t objects = 0;
    resp->code = parse_query(req->msg, &q);
    if (resp->code == 0 && !q.has_endpoint) {
        resp->code = COAP_BAD_REQUEST; /* ep is mandatory (Core 6.2.1) */
    }
    if (resp->code == 0) {
        resp->code = check_links(req, &objects);
    }
    if (resp->code != 0) {
        return;
    }
    if (!authorize(h, req, q.endpoint)) {
        resp->code = COAP_FORBIDDEN;
        return;
    }

    registry_params_t p = {
        .endpoint = q.endpoint,
        .peer = req->peer,
        .secure = h->secure,
        .lifetime = q.lifetime > 0 ? q.lifetime : DEFAULT_LIFETIME,
        .version = q.version,
        .binding = q.has_binding ? q.binding : "U",
        .sms = q.sms,
        .queue_mode = q.queue_mode,
        .links = (const char *)req->body,
        .links_len = req->body_len,
    };
    char id[STORE_REG_ID_MAX + 1];
    char replaced[STORE_REG_ID_MAX + 1];
    int rc = registry_register(h->registry, &p, (int64_t)time(NULL), id, replaced);
    if (rc != LWM2MD_OK) {
        log_warn("endpoint '%s': registration refused (%s)", q.endpoint, lwm2md_strerror(rc));
        resp->code = COAP_SERVICE_UNAVAILABLE;
        return;
    }

    char peer[NET_ADDR_STRING_MAX];
    log_info("endpoint '%s': registered (id=%s, peer=%s, lwm2m=%s, lifetime=%us, binding=%s%s, "
             "objects=%zu%s%s)",
             q.endpoint, id, net_addr_format(req->peer, peer, sizeof(peer)), q.version, p.lifetime,
             p.binding, q.queue_mode ? ", queue" : "", objects,
             replaced[0] != '\0' ? ", replaces " : "", replaced);
    resp->code = COAP_CREATED;
    resp->location_count = 2;
    snprintf(resp->location[0], sizeof(resp->location[0]), "rd");
    snprintf(resp->location[1], sizeof(resp->location[1]), "%s", id);
}

static void log_origin_refusal(reg_handler_t *h, const coap_request_t *req, const char *what,
                               const char *endpoint, const char *id)
{
    if (!log_limiter_allow(&h->refusal_log, (uint64_t)time(NULL) * 1000)) {
        return;
    }
    char peer[NET_ADDR_STRING_MAX];
    log_warn("endpoint '%s': %s refused (id=%s, not the session that registered) from %s", endpoint,
             what, id, net_addr_format(req->peer, peer, sizeof(peer)));
}

static uint8_t error_code(int rc)
{
    switch (rc) {
    case LWM2MD_ERR_NOT_FOUND:
        return COAP_NOT_FOUND;
    case LWM2MD_ERR_DENIED:
        return COAP_FORBIDDEN;
    default:
        return COAP_INTERNAL_SERVER_ERROR;
    }
}

static void do_update(reg_handler_t *h, const coap_request_t *req, const char *id,
                      coap_response_t *resp)
{
    reg_query_t q;
    size_t objects = 0;
    resp->code = parse_query(req->msg, &q);
    if (resp->code == 0) {
        resp->code = check_links(req, &objects);
    }
    if (resp->code != 0) {
        return;
    }

    registry_params_t p = {
        .peer = req->peer,
        .secure = h->secure,
        .lifetime = q.lifetime,
        .binding = q.has_binding ? q.binding : NULL,
        .sms = q.has_sms ? q.sms : NULL,
        .queue_mode = q.queue_mode,
        .has_queue_mode = q.queue_mode,
        .links = req->body_len > 0 ? (const char *)req->body : NULL,
        .links_len = req->body_len,
    };
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";
    int rc = registry_update(h->registry, id, &p, req->auth, (int64_t)time(NULL), endpoint);
    if (rc == LWM2MD_ERR_DENIED) {
        log_origin_refusal(h, req, "update", endpoint, id);
    }
    if (rc != LWM2MD_OK) {
        resp->code = error_code(rc);
        return;
    }
    char peer[NET_ADDR_STRING_MAX];
    log_info("endpoint '%s': registration updated (id=%s, peer=%s%s)", endpoint, id,
             net_addr_format(req->peer, peer, sizeof(peer)),
             p.links != NULL ? ", new object list" : "");
    resp->code = COAP_CHANGED;
}

static void do_deregister(reg_handler_t *h, const coap_request_t *req, const char *id,
                          coap_response_t *resp)
{
    char endpoint[STORE_ENDPOINT_MAX + 1] = "";
    int rc = registry_deregister(h->registry, id, h->secure, req->auth, endpoint);
    if (rc == LWM2MD_ERR_DENIED) {
        log_origin_refusal(h, req, "de-registration", endpoint, id);
    }
    if (rc != LWM2MD_OK) {
        resp->code = error_code(rc);
        return;
    }
    log_info("endpoint '%s': de-registered (id=%s)", endpoint, id);
    resp->code = COAP_DELETED;
}

void reg_handle_request(void *ctx, const coap_request_t *req, coap_response_t *resp)
{
    reg_handler_t *h = ctx;
    char path[PATH_MAX_SEGMENTS][SEGMENT_MAX];
    int error;
    size_t depth = uri_path(req->msg, path, &error);
    uint8_t method = req->msg->code;

    if (error != LWM2MD_OK || depth == 0 || strcmp(path[0], "rd") != 0 || depth > 2) {
        resp->code = COAP_NOT_FOUND;
    } else if (depth == 1) {
        if (method == COAP_POST) {
            do_register(h, req, resp);
        } else {
            resp->code = COAP_METHOD_NOT_ALLOWED;
        }
    } else if (method == COAP_POST) {
        do_update(h, req, path[1], resp);
    } else if (method == COAP_DELETE) {
        do_deregister(h, req, path[1], resp);
    } else {
        resp->code = COAP_METHOD_NOT_ALLOWED;
    }
}
