/* Configuration: one table of settings drives defaults, parsing and validation. */
#include "config/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/error.h"

/* A conf file larger than this is refused: thingsboard.conf is a few KB. */
#define CONF_MAX_BYTES (1024 * 1024)

/* Room for the text of one problem, before the NAME=value prefix. */
#define PROBLEM_MAX 128

#define WORKERS_MAX 64

/* Error lines show at most this much of a value. */
#define ECHO_MAX 80

typedef enum setting_type {
    SETTING_BOOL,       /* "true" or "false", any case */
    SETTING_PORT,       /* 0..65535; 0 lets the kernel pick */
    SETTING_ADDRESS,    /* numeric IPv4 or IPv6 */
    SETTING_UINT,       /* decimal, min..max, into uint16_t or uint32_t */
    SETTING_DECIMAL,    /* digits[.digits], min..max, into a double */
    SETTING_BLOCK_SIZE, /* a power of two, min..max (RFC 7959 2.2, SZX) */
    SETTING_TEXT,       /* no control characters; min..max is the length */
    SETTING_SECRET,     /* any text up to max bytes; never echoed */
    SETTING_ENUM,       /* one of `names`, any case; the index is the value */
    SETTING_LOG_LEVEL,  /* log_level_parse, any case */
} setting_type_t;

typedef struct setting {
    const char *name;
    setting_type_t type;
    size_t offset; /* of the field in config_t */
    size_t size;   /* of the field */
    uint32_t min;
    uint32_t max;
    const char *default_text; /* NULL: computed by config_defaults */
    const char *const *names; /* SETTING_ENUM only */
} setting_t;

static const char *const credentials_type_names[] = {"PEM", "KEYSTORE", NULL};
static const char *const keystore_type_names[] = {"JKS", "PKCS12", NULL};

_Static_assert(CONFIG_CREDENTIALS_PEM == 0 && CONFIG_CREDENTIALS_KEYSTORE == 1,
               "credentials_type_names follows the enum");
_Static_assert(CONFIG_KEYSTORE_JKS == 0 && CONFIG_KEYSTORE_PKCS12 == 1,
               "keystore_type_names follows the enum");
_Static_assert(sizeof(config_credentials_type_t) == sizeof(int) &&
                   sizeof(config_keystore_type_t) == sizeof(int) &&
                   sizeof(log_level_t) == sizeof(int),
               "enum fields are stored as int");

#define FIELD(member) offsetof(config_t, member), sizeof(((config_t *)0)->member)
#define TEXT_MAX(member) (uint32_t)(sizeof(((config_t *)0)->member) - 1)

/* Kept by hand: clang-format would spread each initializer over four lines. */
// clang-format off
#define BOOL(name, member, def) {name, SETTING_BOOL, FIELD(member), 0, 1, def, NULL}
#define PORT(name, member, def) {name, SETTING_PORT, FIELD(member), 0, 65535, def, NULL}
#define ADDRESS(name, member) {name, SETTING_ADDRESS, FIELD(member), 0, 0, "0.0.0.0", NULL}
#define UINT(name, member, min, max, def) {name, SETTING_UINT, FIELD(member), min, max, def, NULL}
#define DECIMAL(name, member, min, max, def) \
    {name, SETTING_DECIMAL, FIELD(member), min, max, def, NULL}
#define BLOCK(name, member, def) {name, SETTING_BLOCK_SIZE, FIELD(member), 16, 1024, def, NULL}
/* min_len 1: the value may not be empty. */
#define TEXT(name, member, min_len, def) \
    {name, SETTING_TEXT, FIELD(member), min_len, TEXT_MAX(member), def, NULL}
#define SECRET(name, member, def) \
    {name, SETTING_SECRET, FIELD(member), 0, TEXT_MAX(member), def, NULL}
#define CREDS_TYPE(name, member) \
    {name, SETTING_ENUM, FIELD(member), 0, 0, "PEM", credentials_type_names}
#define STORE_TYPE(name, member) \
    {name, SETTING_ENUM, FIELD(member), 0, 0, "JKS", keystore_type_names}
#define LOG_LEVEL(name, member, def) \
    {name, SETTING_LOG_LEVEL, FIELD(member), 0, 0, def, NULL}
// clang-format on

/*
 * Every setting. Names, defaults and meanings of the LWM2M_* and
 * TB_LWM2M_* ones follow ThingsBoard's LwM2M transport; the LWM2MD_*
 * ones are ours. docs/CONFIGURATION.md documents each line, and a unit
 * test checks that its defaults match these.
 */
static const setting_t settings[] = {
    /* Listeners. */
    BOOL("LWM2M_ENABLED", enabled, "true"),
    ADDRESS("LWM2M_BIND_ADDRESS", bind_address),
    PORT("LWM2M_BIND_PORT", bind_port, "5685"),
    ADDRESS("LWM2M_SECURITY_BIND_ADDRESS", security_bind_address),
    PORT("LWM2M_SECURITY_BIND_PORT", security_bind_port, "5686"),
    BOOL("LWM2M_ENABLED_BS", bs_enabled, "true"),
    ADDRESS("LWM2M_BS_BIND_ADDRESS", bs_bind_address),
    PORT("LWM2M_BS_BIND_PORT", bs_bind_port, "5687"),
    ADDRESS("LWM2M_BS_SECURITY_BIND_ADDRESS", bs_security_bind_address),
    PORT("LWM2M_BS_SECURITY_BIND_PORT", bs_security_bind_port, "5688"),
    /* Short Server ID: 1..65534 (LwM2M 1.1 Core, Object 1 Resource 0). */
    UINT("LWM2M_SERVER_ID", server_id, 1, 65534, "123"),
    UINT("LWM2M_SERVER_ID_BS", server_id_bs, 1, 65534, "111"),
    UINT("LWM2M_TIMEOUT", timeout_ms, 1000, 86400000, "120000"),
    UINT("LWM2M_CLEAN_PERIOD_IN_SEC", clean_period_sec, 1, 86400, "2"),

    /* DTLS. */
    UINT("LWM2M_DTLS_RETRANSMISSION_TIMEOUT_MS", dtls_retransmission_timeout_ms, 100, 600000,
         "9000"),
    BOOL("LWM2M_RECOMMENDED_CIPHERS", recommended_ciphers, "false"),
    BOOL("LWM2M_RECOMMENDED_SUPPORTED_GROUPS", recommended_supported_groups, "true"),
    BOOL("TB_LWM2M_SERVER_SECURITY_SKIP_VALIDITY_CHECK_FOR_CLIENT_CERT",
         skip_validity_check_for_client_cert, "false"),

    /* Server credentials. */
    BOOL("LWM2M_SERVER_CREDENTIALS_ENABLED", server_credentials.enabled, "false"),
    CREDS_TYPE("LWM2M_SERVER_CREDENTIALS_TYPE", server_credentials.type),
    TEXT("LWM2M_SERVER_PEM_CERT", server_credentials.pem_cert, 1, "lwm2mserver.pem"),
    TEXT("LWM2M_SERVER_PEM_KEY", server_credentials.pem_key, 0, "lwm2mserver_key.pem"),
    SECRET("LWM2M_SERVER_PEM_KEY_PASSWORD", server_credentials.pem_key_password,
           "server_key_password"),
    STORE_TYPE("LWM2M_SERVER_KEY_STORE_TYPE", server_credentials.key_store_type),
    TEXT("LWM2M_SERVER_KEY_STORE", server_credentials.key_store, 1, "lwm2mserver.jks"),
    SECRET("LWM2M_SERVER_KEY_STORE_PASSWORD", server_credentials.key_store_password,
           "server_ks_password"),
    TEXT("LWM2M_SERVER_KEY_ALIAS", server_credentials.key_alias, 1, "server"),
    SECRET("LWM2M_SERVER_KEY_PASSWORD", server_credentials.key_password, "server_ks_password"),

    /* Bootstrap server credentials. */
    BOOL("LWM2M_BS_CREDENTIALS_ENABLED", bs_credentials.enabled, "false"),
    CREDS_TYPE("LWM2M_BS_CREDENTIALS_TYPE", bs_credentials.type),
    TEXT("LWM2M_BS_PEM_CERT", bs_credentials.pem_cert, 1, "lwm2mserver.pem"),
    TEXT("LWM2M_BS_PEM_KEY", bs_credentials.pem_key, 0, "lwm2mserver_key.pem"),
    SECRET("LWM2M_BS_PEM_KEY_PASSWORD", bs_credentials.pem_key_password, "server_key_password"),
    STORE_TYPE("LWM2M_BS_KEY_STORE_TYPE", bs_credentials.key_store_type),
    TEXT("LWM2M_BS_KEY_STORE", bs_credentials.key_store, 1, "lwm2mserver.jks"),
    SECRET("LWM2M_BS_KEY_STORE_PASSWORD", bs_credentials.key_store_password, "server_ks_password"),
    TEXT("LWM2M_BS_KEY_ALIAS", bs_credentials.key_alias, 1, "bootstrap"),
    SECRET("LWM2M_BS_KEY_PASSWORD", bs_credentials.key_password, "server_ks_password"),

    /* Trust store for client certificates. */
    BOOL("LWM2M_TRUST_CREDENTIALS_ENABLED", trust.enabled, "false"),
    CREDS_TYPE("LWM2M_TRUST_CREDENTIALS_TYPE", trust.type),
    TEXT("LWM2M_TRUST_PEM_CERT", trust.pem_cert, 1, "lwm2mtruststorechain.pem"),
    STORE_TYPE("LWM2M_TRUST_KEY_STORE_TYPE", trust.key_store_type),
    TEXT("LWM2M_TRUST_KEY_STORE", trust.key_store, 1, "lwm2mtruststorechain.jks"),
    SECRET("LWM2M_TRUST_KEY_STORE_PASSWORD", trust.key_store_password, "server_ks_password"),

    /* DTLS bounds. */
    UINT("LWM2MD_DTLS_MAX_SESSIONS", dtls_max_sessions, 1, 10000000, "100000"),
    UINT("LWM2MD_DTLS_MAX_HANDSHAKES", dtls_max_handshakes, 1, 1000000, "1000"),
    UINT("LWM2MD_DTLS_SESSION_IDLE_SEC", dtls_session_idle_sec, 60, 2678400, "90000"),
    UINT("LWM2MD_DTLS_HANDSHAKE_TIMEOUT_MS", dtls_handshake_timeout_ms, 1000, 600000, "60000"),
    UINT("LWM2MD_DTLS_COOKIE_ROTATE_SEC", dtls_cookie_rotate_sec, 10, 86400, "300"),

    /* Our own. */
    TEXT("LWM2MD_DATA_DIR", data_dir, 1, "./data"),
    LOG_LEVEL("LWM2MD_LOG_LEVEL", log_level, "info"),
    BOOL("LWM2MD_ALLOW_UNKNOWN_NOSEC", allow_unknown_nosec, "false"),
    UINT("LWM2MD_WORKERS", workers, 1, WORKERS_MAX, NULL),
    UINT("LWM2MD_MAX_REGISTRATIONS", max_registrations, 1, 100000000, "100000"),

    /* CoAP transmission parameters (RFC 7252 4.8) and bounds. */
    UINT("LWM2MD_COAP_ACK_TIMEOUT_MS", coap_ack_timeout_ms, 100, 60000, "2000"),
    DECIMAL("LWM2MD_COAP_ACK_RANDOM_FACTOR", coap_ack_random_factor, 1, 10, "1.5"),
    UINT("LWM2MD_COAP_MAX_RETRANSMIT", coap_max_retransmit, 0, 20, "4"),
    UINT("LWM2MD_COAP_MAX_BODY_SIZE", coap_max_body_size, 64, 16777216, "65536"),
    BLOCK("LWM2MD_COAP_BLOCK_SIZE", coap_block_size, "1024"),
    UINT("LWM2MD_COAP_MAX_PEERS", coap_max_peers, 1, 10000000, "100000"),
};

#undef BOOL
#undef PORT
#undef ADDRESS
#undef UINT
#undef DECIMAL
#undef BLOCK
#undef TEXT
#undef SECRET
#undef CREDS_TYPE
#undef STORE_TYPE
#undef LOG_LEVEL

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

/* Names the conf file; not a field of config_t. */
static const char config_file_variable[] = "LWM2MD_CONFIG";

/* ---- Parsing one value ---- */

static void *field_of(config_t *cfg, const setting_t *setting)
{
    return (char *)cfg + setting->offset;
}

/*
 * Reads an unsigned decimal with no sign, spaces or other characters.
 * Values past UINT32_MAX saturate to UINT32_MAX + 1, which every range
 * check refuses.
 */
static bool parse_unsigned(const char *text, uint64_t *out)
{
    uint64_t value = 0;

    if (*text == '\0') {
        return false;
    }
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10 + (uint64_t)(*p - '0');
        if (value > UINT32_MAX) {
            value = (uint64_t)UINT32_MAX + 1;
        }
    }
    *out = value;
    return true;
}

/* Reads digits[.digits] without locale, exponent, sign, inf or nan. */
static bool parse_decimal(const char *text, double *out)
{
    const char *dot = strchr(text, '.');
    size_t int_len = dot != NULL ? (size_t)(dot - text) : strlen(text);
    uint64_t whole = 0;
    double fraction = 0.0;
    double scale = 0.1;

    if (int_len == 0 || (dot != NULL && dot[1] == '\0')) {
        return false;
    }
    for (size_t i = 0; i < int_len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return false;
        }
        whole = whole * 10 + (uint64_t)(text[i] - '0');
        if (whole > UINT32_MAX) {
            whole = (uint64_t)UINT32_MAX + 1;
        }
    }
    for (const char *p = dot != NULL ? dot + 1 : ""; *p != '\0'; p++, scale /= 10) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        fraction += (*p - '0') * scale;
    }
    *out = (double)whole + fraction;
    return true;
}

/* "A, B or C" from a NULL-terminated list. */
static void join_names(const char *const *names, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; names[i] != NULL && used < size; i++) {
        const char *sep = i == 0 ? "" : (names[i + 1] == NULL ? " or " : ", ");
        int n = snprintf(buf + used, size - used, "%s%s", sep, names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

static int parse_bool(const char *text, bool *out, char *problem, size_t size)
{
    if (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0) {
        *out = strcasecmp(text, "true") == 0;
        return LWM2MD_OK;
    }
    snprintf(problem, size, "not a boolean (true or false)");
    return LWM2MD_ERR_INVALID;
}

static int parse_port(const char *text, uint16_t *out, char *problem, size_t size)
{
    uint64_t value;

    if (!parse_unsigned(text, &value) || value > 65535) {
        snprintf(problem, size, "not a port (0-65535)");
        return LWM2MD_ERR_INVALID;
    }
    *out = (uint16_t)value;
    return LWM2MD_OK;
}

static int parse_address(const char *text, char *out, size_t out_size, char *problem, size_t size)
{
    unsigned char binary[sizeof(struct in6_addr)];

    if (strlen(text) >= out_size ||
        (inet_pton(AF_INET, text, binary) != 1 && inet_pton(AF_INET6, text, binary) != 1)) {
        snprintf(problem, size, "not a numeric IPv4 or IPv6 address");
        return LWM2MD_ERR_INVALID;
    }
    memcpy(out, text, strlen(text) + 1);
    return LWM2MD_OK;
}

/* Stores into a uint16_t or uint32_t field, as the setting's size says. */
static int parse_uint(const setting_t *setting, const char *text, void *field, char *problem,
                      size_t size)
{
    uint64_t value;

    if (!parse_unsigned(text, &value)) {
        snprintf(problem, size, "not a decimal number");
        return LWM2MD_ERR_INVALID;
    }
    if (value < setting->min || value > setting->max) {
        snprintf(problem, size, "out of range (%u-%u)", setting->min, setting->max);
        return LWM2MD_ERR_INVALID;
    }
    if (setting->size == sizeof(uint16_t)) {
        *(uint16_t *)field = (uint16_t)value;
    } else {
        *(uint32_t *)field = (uint32_t)value;
    }
    return LWM2MD_OK;
}

static int parse_double(const setting_t *setting, const char *text, double *out, char *problem,
                        size_t size)
{
    double value;

    if (!parse_decimal(text, &value)) {
        snprintf(problem, size, "not a decimal number (like 1.5)");
        return LWM2MD_ERR_INVALID;
    }
    if (value < setting->min || value > setting->max) {
        snprintf(problem, size, "out of range (%u.0-%u.0)", setting->min, setting->max);
        return LWM2MD_ERR_INVALID;
    }
    *out = value;
    return LWM2MD_OK;
}

static int parse_block_size(const setting_t *setting, const char *text, uint32_t *out,
                            char *problem, size_t size)
{
    uint64_t value;

    if (!parse_unsigned(text, &value) || value < setting->min || value > setting->max ||
        (value & (value - 1)) != 0) {
        snprintf(problem, size, "not a block size (16, 32, 64, 128, 256, 512 or 1024)");
        return LWM2MD_ERR_INVALID;
    }
    *out = (uint32_t)value;
    return LWM2MD_OK;
}

/* Text and secrets: bounded length; text also refuses control characters. */
static int parse_text(const setting_t *setting, const char *text, char *out, char *problem,
                      size_t size)
{
    size_t len = strlen(text);

    if (len > setting->max) {
        snprintf(problem, size, "too long (at most %u bytes)", setting->max);
        return LWM2MD_ERR_INVALID;
    }
    if (len < setting->min) {
        snprintf(problem, size, "must not be empty");
        return LWM2MD_ERR_INVALID;
    }
    for (size_t i = 0; setting->type == SETTING_TEXT && i < len; i++) {
        if (iscntrl((unsigned char)text[i])) {
            snprintf(problem, size, "contains a control character");
            return LWM2MD_ERR_INVALID;
        }
    }
    memcpy(out, text, len + 1);
    return LWM2MD_OK;
}

static int parse_enum(const setting_t *setting, const char *text, int *out, char *problem,
                      size_t size)
{
    char choices[PROBLEM_MAX / 2];

    for (int i = 0; setting->names[i] != NULL; i++) {
        if (strcasecmp(text, setting->names[i]) == 0) {
            *out = i;
            return LWM2MD_OK;
        }
    }
    join_names(setting->names, choices, sizeof(choices));
    snprintf(problem, size, "not %s", choices);
    return LWM2MD_ERR_INVALID;
}

static int parse_log_level(const char *text, log_level_t *out, char *problem, size_t size)
{
    char lower[8] = "";
    size_t len = strlen(text);

    for (size_t i = 0; i < len && len < sizeof(lower); i++) {
        lower[i] = (char)tolower((unsigned char)text[i]);
    }
    if (len >= sizeof(lower) || log_level_parse(lower, out) != LWM2MD_OK) {
        snprintf(problem, size, "not a log level (error, warn, info or debug)");
        return LWM2MD_ERR_INVALID;
    }
    return LWM2MD_OK;
}

/*
 * Validates `text` for one setting and stores it into cfg. On failure
 * writes the problem (without the name or value) and leaves the field.
 */
static int setting_parse(const setting_t *setting, const char *text, config_t *cfg, char *problem,
                         size_t size)
{
    void *field = field_of(cfg, setting);

    switch (setting->type) {
    case SETTING_BOOL:
        return parse_bool(text, field, problem, size);
    case SETTING_PORT:
        return parse_port(text, field, problem, size);
    case SETTING_ADDRESS:
        return parse_address(text, field, setting->size, problem, size);
    case SETTING_UINT:
        return parse_uint(setting, text, field, problem, size);
    case SETTING_DECIMAL:
        return parse_double(setting, text, field, problem, size);
    case SETTING_BLOCK_SIZE:
        return parse_block_size(setting, text, field, problem, size);
    case SETTING_TEXT:
    case SETTING_SECRET:
        return parse_text(setting, text, field, problem, size);
    case SETTING_ENUM:
        return parse_enum(setting, text, field, problem, size);
    case SETTING_LOG_LEVEL:
        return parse_log_level(text, field, problem, size);
    }
    return LWM2MD_ERR_INVALID;
}

static const setting_t *setting_find(const char *name, size_t len)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0) {
            return &settings[i];
        }
    }
    return NULL;
}

bool config_is_setting(const char *name, size_t len)
{
    return setting_find(name, len) != NULL;
}

/* Online cores, within the LWM2MD_WORKERS range. */
static uint32_t default_workers(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    if (cores < 1) {
        return 1;
    }
    return cores > WORKERS_MAX ? WORKERS_MAX : (uint32_t)cores;
}

void config_defaults(config_t *cfg)
{
    char problem[PROBLEM_MAX];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (settings[i].default_text != NULL) {
            int rc = setting_parse(&settings[i], settings[i].default_text, cfg, problem,
                                   sizeof(problem));
            assert(rc == LWM2MD_OK);
            (void)rc;
        }
    }
    cfg->workers = default_workers();
}

/* ---- Gathering the winning text of each setting ---- */

typedef enum origin {
    ORIGIN_NONE,
    ORIGIN_FILE,
    ORIGIN_ENV,
    ORIGIN_FLAG,
} origin_t;

/* The text that wins for one setting, and where it came from. Higher origins win. */
typedef struct pick {
    const char *text;
    origin_t origin;
    unsigned line; /* ORIGIN_FILE only */
} pick_t;

typedef struct loader {
    pick_t picks[SETTING_COUNT];
    const char *conf_path;  /* NULL: no conf file */
    const char *conf_label; /* how messages name the file: "-c" or "LWM2MD_CONFIG=" */
    char *conf_text;        /* owned; file values point into it */
    char *err;
    size_t err_size;
} loader_t;

static void loader_error(loader_t *loader, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void loader_error(loader_t *loader, const char *fmt, ...)
{
    va_list args;

    if (loader->err_size == 0) {
        return;
    }
    va_start(args, fmt);
    vsnprintf(loader->err, loader->err_size, fmt, args);
    va_end(args);
}

/*
 * Records `text` unless a higher layer already gave this setting a
 * value; within one layer the later text wins.
 */
static void loader_take(loader_t *loader, const setting_t *setting, const char *text,
                        origin_t origin, unsigned line)
{
    pick_t *pick = &loader->picks[setting - settings];

    if (pick->origin > origin) {
        return;
    }
    pick->text = text;
    pick->origin = origin;
    pick->line = line;
}

/* The value of the last "name=value" in a NULL-terminated list, or NULL. */
static const char *list_lookup(const char *const *list, const char *name)
{
    size_t len = strlen(name);
    const char *found = NULL;

    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strncmp(list[i], name, len) == 0 && list[i][len] == '=') {
            found = list[i] + len + 1;
        }
    }
    return found;
}

/* -c FILE wins, then LWM2MD_CONFIG from the flags, then from the env. */
static void loader_find_conf_file(loader_t *loader, const config_source_t *src)
{
    const char *path = list_lookup(src->flags, config_file_variable);

    if (src->conf_file != NULL) {
        loader->conf_path = src->conf_file;
        loader->conf_label = "-c ";
        return;
    }
    if (path == NULL) {
        path = src->env != NULL ? list_lookup(src->env, config_file_variable)
                                : getenv(config_file_variable);
    }
    if (path != NULL && path[0] != '\0') {
        loader->conf_path = path;
        loader->conf_label = "LWM2MD_CONFIG=";
    }
}

static void loader_take_env(loader_t *loader, const char *const *env)
{
    for (size_t i = 0; env == NULL && i < SETTING_COUNT; i++) {
        const char *text = getenv(settings[i].name);
        if (text != NULL) {
            loader_take(loader, &settings[i], text, ORIGIN_ENV, 0);
        }
    }
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        const char *eq = strchr(env[i], '=');
        const setting_t *setting = eq != NULL ? setting_find(env[i], (size_t)(eq - env[i])) : NULL;
        if (setting != NULL) {
            loader_take(loader, setting, eq + 1, ORIGIN_ENV, 0);
        }
    }
}

/* Flags must be NAME=value with a known NAME; the value is not echoed here. */
static int loader_take_flags(loader_t *loader, const char *const *flags)
{
    for (size_t i = 0; flags != NULL && flags[i] != NULL; i++) {
        const char *eq = strchr(flags[i], '=');
        size_t name_len = eq != NULL ? (size_t)(eq - flags[i]) : strlen(flags[i]);
        const setting_t *setting = setting_find(flags[i], name_len);
        bool is_conf = name_len == strlen(config_file_variable) &&
                       memcmp(flags[i], config_file_variable, name_len) == 0;

        if (eq == NULL || name_len == 0) {
            loader_error(loader, "%.*s: expected NAME=value", (int)name_len, flags[i]);
            return LWM2MD_ERR_INVALID;
        }
        if (setting == NULL && !is_conf) {
            loader_error(loader, "%.*s: unknown setting", (int)name_len, flags[i]);
            return LWM2MD_ERR_INVALID;
        }
        if (setting != NULL) {
            loader_take(loader, setting, eq + 1, ORIGIN_FLAG, 0);
        }
    }
    return LWM2MD_OK;
}

/* ---- The conf file ---- */

/* Makes room for at least one more byte and the terminator. */
static int grow(char **buf, size_t *cap, size_t len)
{
    if (len + 1 < *cap) {
        return LWM2MD_OK;
    }
    size_t bigger_cap = *cap == 0 ? 4096 : *cap * 2;
    char *bigger = realloc(*buf, bigger_cap);
    if (bigger == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    *buf = bigger;
    *cap = bigger_cap;
    return LWM2MD_OK;
}

/*
 * Reads the whole file, NUL-terminated, into *out (malloc'd). Returns
 * LWM2MD_ERR_IO with errno set, LWM2MD_ERR_TOO_BIG or LWM2MD_ERR_NOMEM.
 */
static int read_file(const char *path, char **out, size_t *out_len)
{
    FILE *file = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    size_t len = 0;
    int rc = LWM2MD_OK;
    int saved_errno = 0;

    if (file == NULL) {
        return LWM2MD_ERR_IO;
    }
    for (;;) {
        rc = grow(&buf, &cap, len);
        if (rc != LWM2MD_OK) {
            break;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, file);
        len += n;
        if (len > CONF_MAX_BYTES) {
            rc = LWM2MD_ERR_TOO_BIG;
            break;
        }
        if (n == 0) {
            saved_errno = errno;
            rc = ferror(file) ? LWM2MD_ERR_IO : LWM2MD_OK;
            break;
        }
    }
    fclose(file);

    if (rc != LWM2MD_OK) {
        free(buf);
        errno = saved_errno;
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return LWM2MD_OK;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *skip_blanks(char *p)
{
    while (is_blank(*p)) {
        p++;
    }
    return p;
}

static bool is_name_char(char c, bool first)
{
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (!first && c >= '0' && c <= '9');
}

/* Copies a '...' segment: everything up to the closing quote, literally. */
static const char *copy_single_quoted(char **read, char **write)
{
    char *r = *read + 1;
    char *w = *write;

    while (*r != '\0' && *r != '\'') {
        *w++ = *r++;
    }
    if (*r == '\0') {
        return "unterminated single quote";
    }
    *read = r + 1;
    *write = w;
    return NULL;
}

/* Copies a "..." segment; a backslash escapes " \ $ ` as in the shell. */
static const char *copy_double_quoted(char **read, char **write)
{
    char *r = *read + 1;
    char *w = *write;

    while (*r != '\0' && *r != '"') {
        if (r[0] == '\\' && r[1] != '\0' && strchr("\"\\$`", r[1]) != NULL) {
            r++;
        }
        *w++ = *r++;
    }
    if (*r == '\0') {
        return "unterminated double quote";
    }
    *read = r + 1;
    *write = w;
    return NULL;
}

/*
 * Unquotes one shell word in place, from *read up to a blank or the end
 * of the line; *write trails *read. Nothing is expanded: $, ` and ~
 * stay literal. Unquoted shell operators are refused, since a shell
 * sourcing the same file would run them.
 */
static const char *unquote_word(char **read, char **write)
{
    const char *problem = NULL;

    while (problem == NULL && **read != '\0' && !is_blank(**read)) {
        char c = **read;
        if (c == '\'') {
            problem = copy_single_quoted(read, write);
        } else if (c == '"') {
            problem = copy_double_quoted(read, write);
        } else if (c == '\\' && (*read)[1] == '\0') {
            problem = "line continuation is not supported";
        } else if (strchr(";&|<>()", c) != NULL) {
            problem = "unquoted shell operator; quote the value";
        } else {
            *read += c == '\\' ? 1 : 0;
            *(*write)++ = *(*read)++;
        }
    }
    return problem;
}

/*
 * Parses one line in place: blank, a comment, or [export] NAME=value
 * followed by blanks and an optional comment. Sets *name to NULL when
 * the line holds no assignment. Returns NULL or the problem.
 */
static const char *conf_parse_line(char *line, char **name, char **value)
{
    char *p = skip_blanks(line);

    *name = NULL;
    if (*p == '\0' || *p == '#') {
        return NULL;
    }
    if (strncmp(p, "export", 6) == 0 && is_blank(p[6])) {
        p = skip_blanks(p + 6);
    }

    /* NAME= with no blanks around '=', as the shell requires. */
    char *start = p;
    while (is_name_char(*p, p == start)) {
        p++;
    }
    if (p == start || *p != '=') {
        return "expected [export] NAME=value";
    }
    *p++ = '\0';

    /* The value, then only blanks and a comment. */
    char *write = p;
    const char *problem = unquote_word(&p, &write);
    if (problem != NULL) {
        return problem;
    }
    p = skip_blanks(p);
    if (*p != '\0' && *p != '#') {
        return "text after the value; quote a value that holds blanks";
    }
    *write = '\0';
    *name = start;
    *value = start + strlen(start) + 1;
    return NULL;
}

/* Splits the text into lines and takes each assignment to a known name. */
static int loader_parse_conf(loader_t *loader, char *text, size_t len)
{
    char *stop = text + len;
    unsigned line_no = 0;

    for (char *line = text; line < stop;) {
        char *end = memchr(line, '\n', (size_t)(stop - line));
        char *next = end != NULL ? end + 1 : stop;
        char *name;
        char *value;

        /* One line, without its LF or CRLF. */
        line_no++;
        end = end != NULL ? end : stop;
        if (end > line && end[-1] == '\r') {
            end--;
        }
        if (memchr(line, '\0', (size_t)(end - line)) != NULL) {
            loader_error(loader, "%s:%u: malformed line (NUL byte)", loader->conf_path, line_no);
            return LWM2MD_ERR_INVALID;
        }
        *end = '\0';

        const char *problem = conf_parse_line(line, &name, &value);
        if (problem != NULL) {
            loader_error(loader, "%s:%u: malformed line (%s)", loader->conf_path, line_no, problem);
            return LWM2MD_ERR_INVALID;
        }
        const setting_t *setting = name != NULL ? setting_find(name, strlen(name)) : NULL;
        if (setting != NULL) {
            loader_take(loader, setting, value, ORIGIN_FILE, line_no);
        }
        line = next;
    }
    return LWM2MD_OK;
}

static int loader_read_conf(loader_t *loader)
{
    size_t len = 0;
    int rc = read_file(loader->conf_path, &loader->conf_text, &len);

    if (rc == LWM2MD_ERR_TOO_BIG) {
        loader_error(loader, "%s%s: too big (over %d bytes)", loader->conf_label, loader->conf_path,
                     CONF_MAX_BYTES);
        return LWM2MD_ERR_INVALID;
    }
    if (rc == LWM2MD_ERR_NOMEM) {
        loader_error(loader, "%s%s: cannot read (out of memory)", loader->conf_label,
                     loader->conf_path);
        return rc;
    }
    if (rc != LWM2MD_OK) {
        char reason[128];
        loader_error(loader, "%s%s: cannot read (%s)", loader->conf_label, loader->conf_path,
                     strerror_r(errno, reason, sizeof(reason)));
        return LWM2MD_ERR_IO;
    }
    return loader_parse_conf(loader, loader->conf_text, len);
}

/* ---- Validating the winners ---- */

/*
 * Copies `text` for an error line: control characters become '?', so
 * the line stays one line, and a long value is cut to ECHO_MAX bytes
 * and "...".
 */
static void echo_copy(const char *text, char out[ECHO_MAX + 4])
{
    size_t i = 0;

    for (; text[i] != '\0' && i < ECHO_MAX; i++) {
        out[i] = iscntrl((unsigned char)text[i]) ? '?' : text[i];
    }
    memcpy(out + i, text[i] != '\0' ? "..." : "", text[i] != '\0' ? 4 : 1);
}

static void loader_report(loader_t *loader, const setting_t *setting, const pick_t *pick,
                          const char *problem)
{
    char where[CONFIG_PATH_MAX + 16] = "";
    char value[ECHO_MAX + 4];

    if (pick->origin == ORIGIN_FILE) {
        snprintf(where, sizeof(where), "%s:%u: ", loader->conf_path, pick->line);
    }
    if (setting->type == SETTING_SECRET) {
        loader_error(loader, "%s%s: %s", where, setting->name, problem);
        return;
    }
    echo_copy(pick->text, value);
    loader_error(loader, "%s%s=%s: %s", where, setting->name, value, problem);
}

/* Parses every value that was given, in table order, over the defaults. */
static int loader_apply(loader_t *loader, config_t *cfg)
{
    char problem[PROBLEM_MAX];

    config_defaults(cfg);
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const pick_t *pick = &loader->picks[i];
        if (pick->origin == ORIGIN_NONE) {
            continue;
        }
        int rc = setting_parse(&settings[i], pick->text, cfg, problem, sizeof(problem));
        if (rc != LWM2MD_OK) {
            loader_report(loader, &settings[i], pick, problem);
            return rc;
        }
    }
    return LWM2MD_OK;
}

int config_load(config_t *cfg, const config_source_t *src, char *err, size_t err_size)
{
    loader_t loader = {.err = err, .err_size = err_size};
    config_t parsed;
    int rc = LWM2MD_OK;

    if (err_size > 0) {
        err[0] = '\0';
    }

    /* Gather the winning text of each setting; flags first, so usage errors come first. */
    rc = loader_take_flags(&loader, src->flags);
    if (rc == LWM2MD_OK) {
        loader_take_env(&loader, src->env);
        loader_find_conf_file(&loader, src);
    }
    if (rc == LWM2MD_OK && loader.conf_path != NULL) {
        rc = loader_read_conf(&loader);
    }

    /* Validate into a copy, so that a failure leaves *cfg as it was. */
    if (rc == LWM2MD_OK) {
        rc = loader_apply(&loader, &parsed);
    }
    if (rc == LWM2MD_OK) {
        *cfg = parsed;
    }
    free(loader.conf_text);
    return rc;
}
