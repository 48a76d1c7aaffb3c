/* Configuration: defaults, conf file, environment and flags, validated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/log.h"

#define CONFIG_ADDRESS_MAX 64
#define CONFIG_PATH_MAX 512
#define CONFIG_SECRET_MAX 256

typedef enum config_credentials_type {
    CONFIG_CREDENTIALS_PEM,
    CONFIG_CREDENTIALS_KEYSTORE,
} config_credentials_type_t;

typedef enum config_keystore_type {
    CONFIG_KEYSTORE_JKS,
    CONFIG_KEYSTORE_PKCS12,
} config_keystore_type_t;

/*
 * A server's own key and certificate chain (LWM2M_SERVER_* or
 * LWM2M_BS_*). Only checked for syntax here; the dtls module reads the
 * files and stops the start when they do not load.
 */
typedef struct config_credentials {
    bool enabled;
    config_credentials_type_t type;
    char pem_cert[CONFIG_PATH_MAX];
    char pem_key[CONFIG_PATH_MAX];
    char pem_key_password[CONFIG_SECRET_MAX];
    config_keystore_type_t key_store_type;
    char key_store[CONFIG_PATH_MAX];
    char key_store_password[CONFIG_SECRET_MAX];
    char key_alias[CONFIG_SECRET_MAX];
    char key_password[CONFIG_SECRET_MAX];
} config_credentials_t;

/* The CAs that client certificates are verified against (LWM2M_TRUST_*). */
typedef struct config_trust {
    bool enabled;
    config_credentials_type_t type;
    char pem_cert[CONFIG_PATH_MAX];
    config_keystore_type_t key_store_type;
    char key_store[CONFIG_PATH_MAX];
    char key_store_password[CONFIG_SECRET_MAX];
} config_trust_t;

/* Every setting, after validation. A plain value: copy it freely. */
typedef struct config {
    /* Listeners (ThingsBoard names). */
    bool enabled;                                      /* LWM2M_ENABLED */
    char bind_address[CONFIG_ADDRESS_MAX];             /* LWM2M_BIND_ADDRESS */
    uint16_t bind_port;                                /* LWM2M_BIND_PORT */
    char security_bind_address[CONFIG_ADDRESS_MAX];    /* LWM2M_SECURITY_BIND_ADDRESS */
    uint16_t security_bind_port;                       /* LWM2M_SECURITY_BIND_PORT */
    bool bs_enabled;                                   /* LWM2M_ENABLED_BS */
    char bs_bind_address[CONFIG_ADDRESS_MAX];          /* LWM2M_BS_BIND_ADDRESS */
    uint16_t bs_bind_port;                             /* LWM2M_BS_BIND_PORT */
    char bs_security_bind_address[CONFIG_ADDRESS_MAX]; /* LWM2M_BS_SECURITY_BIND_ADDRESS */
    uint16_t bs_security_bind_port;                    /* LWM2M_BS_SECURITY_BIND_PORT */
    uint16_t server_id;                                /* LWM2M_SERVER_ID */
    uint16_t server_id_bs;                             /* LWM2M_SERVER_ID_BS */
    uint32_t timeout_ms;                               /* LWM2M_TIMEOUT */
    uint32_t clean_period_sec;                         /* LWM2M_CLEAN_PERIOD_IN_SEC */

    /* DTLS (ThingsBoard names). */
    uint32_t dtls_retransmission_timeout_ms; /* LWM2M_DTLS_RETRANSMISSION_TIMEOUT_MS */
    bool recommended_ciphers;                /* LWM2M_RECOMMENDED_CIPHERS */
    bool recommended_supported_groups;       /* LWM2M_RECOMMENDED_SUPPORTED_GROUPS */
    bool skip_validity_check_for_client_cert;
    /* TB_LWM2M_SERVER_SECURITY_SKIP_VALIDITY_CHECK_FOR_CLIENT_CERT */
    config_credentials_t server_credentials; /* LWM2M_SERVER_* */
    config_credentials_t bs_credentials;     /* LWM2M_BS_* */
    config_trust_t trust;                    /* LWM2M_TRUST_* */

    /* DTLS bounds (our own). */
    uint32_t dtls_max_sessions;         /* LWM2MD_DTLS_MAX_SESSIONS */
    uint32_t dtls_max_handshakes;       /* LWM2MD_DTLS_MAX_HANDSHAKES */
    uint32_t dtls_session_idle_sec;     /* LWM2MD_DTLS_SESSION_IDLE_SEC */
    uint32_t dtls_handshake_timeout_ms; /* LWM2MD_DTLS_HANDSHAKE_TIMEOUT_MS */
    uint32_t dtls_cookie_rotate_sec;    /* LWM2MD_DTLS_COOKIE_ROTATE_SEC */

    /* Our own. */
    char data_dir[CONFIG_PATH_MAX]; /* LWM2MD_DATA_DIR */
    log_level_t log_level;          /* LWM2MD_LOG_LEVEL */
    bool allow_unknown_nosec;       /* LWM2MD_ALLOW_UNKNOWN_NOSEC */
    uint32_t workers;               /* LWM2MD_WORKERS, default: cores */
    uint32_t max_registrations;     /* LWM2MD_MAX_REGISTRATIONS */

    /* CoAP transmission (RFC 7252 4.8) and bounds (our own). */
    uint32_t coap_ack_timeout_ms;  /* LWM2MD_COAP_ACK_TIMEOUT_MS */
    double coap_ack_random_factor; /* LWM2MD_COAP_ACK_RANDOM_FACTOR */
    uint32_t coap_max_retransmit;  /* LWM2MD_COAP_MAX_RETRANSMIT */
    uint32_t coap_max_body_size;   /* LWM2MD_COAP_MAX_BODY_SIZE */
    uint32_t coap_block_size;      /* LWM2MD_COAP_BLOCK_SIZE */
    uint32_t coap_max_peers;       /* LWM2MD_COAP_MAX_PEERS */
} config_t;

/*
 * Where settings come from. Precedence: flags, then env, then the conf
 * file, then defaults.
 */
typedef struct config_source {
    /* -c FILE; when NULL, LWM2MD_CONFIG from env names the file, if set. */
    const char *conf_file;
    /* "NAME=value" strings from the command line; NULL-terminated or NULL. */
    const char *const *flags;
    /* "NAME=value" strings; NULL-terminated. NULL means the process env. */
    const char *const *env;
} config_source_t;

/* True when the first len bytes of name are a setting's name (for usage checks). */
bool config_is_setting(const char *name, size_t len);

/* Fills every field with its default. */
void config_defaults(config_t *cfg);

/*
 * Loads and validates every setting. On failure returns a negative
 * lwm2md_error_t and writes one line to `err` naming the variable, the
 * value and the problem (passwords are never echoed), e.g.
 *   LWM2M_BIND_PORT=70000: not a port (1-65535)
 * Reads the conf file (never executes it). Any thread, no side effects
 * beyond `cfg` and `err`.
 */
int config_load(config_t *cfg, const config_source_t *src, char *err, size_t err_size);
