/* Tests of the configuration loader (src/config/config.c): defaults, types, layers, conf file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "config/config.h"

#define ERR_SIZE 1024

/* The group's scratch directory; each test writes its conf files there. */
typedef struct scratch {
    char dir[64];
    char path[128]; /* the last file written */
} scratch_t;

/* An environment with nothing in it, so the process env cannot leak in. */
static const char *const no_env[] = {NULL};

static int group_setup(void **state)
{
    scratch_t *scratch = calloc(1, sizeof(*scratch));
    if (scratch == NULL) {
        return -1;
    }
    snprintf(scratch->dir, sizeof(scratch->dir), "/tmp/test_config.XXXXXX");
    if (mkdtemp(scratch->dir) == NULL) {
        free(scratch);
        return -1;
    }
    *state = scratch;
    return 0;
}

static int group_teardown(void **state)
{
    scratch_t *scratch = *state;
    DIR *dir = opendir(scratch->dir);
    struct dirent *entry;
    char path[512];

    while (dir != NULL && (entry = readdir(dir)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", scratch->dir, entry->d_name);
        if (entry->d_name[0] != '.' && unlink(path) != 0) {
            rmdir(path);
        }
    }
    if (dir != NULL) {
        closedir(dir);
    }
    rmdir(scratch->dir);
    free(scratch);
    return 0;
}

/* Writes len bytes to <dir>/<name>; returns the path (valid until the next write). */
static const char *write_bytes(void **state, const char *name, const char *data, size_t len)
{
    scratch_t *scratch = *state;
    snprintf(scratch->path, sizeof(scratch->path), "%s/%s", scratch->dir, name);
    FILE *file = fopen(scratch->path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
    return scratch->path;
}

static const char *write_conf(void **state, const char *name, const char *text)
{
    return write_bytes(state, name, text, strlen(text));
}

static int load(config_t *cfg, const char *conf, const char *const *env, const char *const *flags,
                char *err)
{
    config_source_t src = {.conf_file = conf, .flags = flags, .env = env};
    return config_load(cfg, &src, err, ERR_SIZE);
}

/* Loads with one flag and no env or conf file. */
static int load_flag(config_t *cfg, const char *flag, char *err)
{
    const char *flags[] = {flag, NULL};
    return load(cfg, NULL, no_env, flags, err);
}

static config_t flag_ok(const char *flag)
{
    config_t cfg;
    char err[ERR_SIZE];
    int rc = load_flag(&cfg, flag, err);
    if (rc != LWM2MD_OK) {
        fail_msg("%s: unexpected error: %s", flag, err);
    }
    return cfg;
}

static void flag_fails(const char *flag, const char *message)
{
    config_t cfg;
    char err[ERR_SIZE];
    assert_int_equal(load_flag(&cfg, flag, err), LWM2MD_ERR_INVALID);
    assert_string_equal(err, message);
}

/* Loads a conf file given as -c and expects an error. */
static void conf_fails(void **state, const char *text, int code, const char *message_after_path)
{
    config_t cfg;
    char err[ERR_SIZE];
    char expected[ERR_SIZE];
    const char *path = write_conf(state, "bad.conf", text);

    snprintf(expected, sizeof(expected), "%s:%s", path, message_after_path);
    assert_int_equal(load(&cfg, path, no_env, NULL, err), code);
    assert_string_equal(err, expected);
}

static uint32_t online_cores(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : (cores > 64 ? 64 : (uint32_t)cores);
}

static void test_defaults(void **state)
{
    config_t cfg;
    config_defaults(&cfg);

    assert_true(cfg.enabled);
    assert_string_equal(cfg.bind_address, "0.0.0.0");
    assert_int_equal(cfg.bind_port, 5685);
    assert_string_equal(cfg.security_bind_address, "0.0.0.0");
    assert_int_equal(cfg.security_bind_port, 5686);
    assert_true(cfg.bs_enabled);
    assert_string_equal(cfg.bs_bind_address, "0.0.0.0");
    assert_int_equal(cfg.bs_bind_port, 5687);
    assert_string_equal(cfg.bs_security_bind_address, "0.0.0.0");
    assert_int_equal(cfg.bs_security_bind_port, 5688);
    assert_int_equal(cfg.server_id, 123);
    assert_int_equal(cfg.server_id_bs, 111);
    assert_int_equal(cfg.timeout_ms, 120000);
    assert_int_equal(cfg.clean_period_sec, 2);
    assert_int_equal(cfg.dtls_retransmission_timeout_ms, 9000);
    assert_false(cfg.recommended_ciphers);
    assert_true(cfg.recommended_supported_groups);
    assert_false(cfg.skip_validity_check_for_client_cert);
    assert_int_equal(cfg.dtls_max_sessions, 100000);
    assert_int_equal(cfg.dtls_max_handshakes, 1000);
    assert_int_equal(cfg.dtls_session_idle_sec, 90000);
    assert_int_equal(cfg.dtls_handshake_timeout_ms, 60000);
    assert_int_equal(cfg.dtls_cookie_rotate_sec, 300);
    assert_string_equal(cfg.data_dir, "./data");
    assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
    assert_false(cfg.allow_unknown_nosec);
    assert_int_equal(cfg.workers, online_cores());
    assert_int_equal(cfg.max_registrations, 100000);
    assert_int_equal(cfg.coap_ack_timeout_ms, 2000);
    assert_true(cfg.coap_ack_random_factor == 1.5);
    assert_int_equal(cfg.coap_max_retransmit, 4);
    assert_int_equal(cfg.coap_max_body_size, 65536);
    assert_int_equal(cfg.coap_block_size, 1024);
    assert_int_equal(cfg.coap_max_peers, 100000);
}

static void test_credential_defaults(void **state)
{
    config_t cfg;
    config_defaults(&cfg);

    const config_credentials_t *server = &cfg.server_credentials;
    assert_false(server->enabled);
    assert_int_equal(server->type, CONFIG_CREDENTIALS_PEM);
    assert_string_equal(server->pem_cert, "lwm2mserver.pem");
    assert_string_equal(server->pem_key, "lwm2mserver_key.pem");
    assert_string_equal(server->pem_key_password, "server_key_password");
    assert_int_equal(server->key_store_type, CONFIG_KEYSTORE_JKS);
    assert_string_equal(server->key_store, "lwm2mserver.jks");
    assert_string_equal(server->key_store_password, "server_ks_password");
    assert_string_equal(server->key_alias, "server");
    assert_string_equal(server->key_password, "server_ks_password");

    const config_credentials_t *bs = &cfg.bs_credentials;
    assert_false(bs->enabled);
    assert_int_equal(bs->type, CONFIG_CREDENTIALS_PEM);
    assert_string_equal(bs->pem_cert, "lwm2mserver.pem");
    assert_string_equal(bs->pem_key, "lwm2mserver_key.pem");
    assert_string_equal(bs->pem_key_password, "server_key_password");
    assert_int_equal(bs->key_store_type, CONFIG_KEYSTORE_JKS);
    assert_string_equal(bs->key_store, "lwm2mserver.jks");
    assert_string_equal(bs->key_store_password, "server_ks_password");
    assert_string_equal(bs->key_alias, "bootstrap");
    assert_string_equal(bs->key_password, "server_ks_password");

    assert_false(cfg.trust.enabled);
    assert_int_equal(cfg.trust.type, CONFIG_CREDENTIALS_PEM);
    assert_string_equal(cfg.trust.pem_cert, "lwm2mtruststorechain.pem");
    assert_int_equal(cfg.trust.key_store_type, CONFIG_KEYSTORE_JKS);
    assert_string_equal(cfg.trust.key_store, "lwm2mtruststorechain.jks");
    assert_string_equal(cfg.trust.key_store_password, "server_ks_password");
}

/* With no conf file, env or flags, config_load gives exactly the defaults. */
static void test_load_nothing_gives_defaults(void **state)
{
    config_t defaults;
    config_t cfg;
    char err[ERR_SIZE];

    config_defaults(&defaults);
    assert_int_equal(load(&cfg, NULL, no_env, NULL, err), LWM2MD_OK);
    assert_memory_equal(&cfg, &defaults, sizeof(cfg));
    assert_string_equal(err, "");
}

static void test_workers_default_is_cores(void **state)
{
    config_t cfg = flag_ok("LWM2MD_LOG_LEVEL=info");
    assert_int_equal(cfg.workers, online_cores());

    assert_int_equal(flag_ok("LWM2MD_WORKERS=1").workers, 1);
    assert_int_equal(flag_ok("LWM2MD_WORKERS=64").workers, 64);
    flag_fails("LWM2MD_WORKERS=0", "LWM2MD_WORKERS=0: out of range (1-64)");
    flag_fails("LWM2MD_WORKERS=65", "LWM2MD_WORKERS=65: out of range (1-64)");
}

static void test_booleans(void **state)
{
    assert_false(flag_ok("LWM2M_ENABLED=false").enabled);
    assert_true(flag_ok("LWM2M_ENABLED=true").enabled);
    assert_false(flag_ok("LWM2M_ENABLED=FALSE").enabled);
    assert_true(flag_ok("LWM2MD_ALLOW_UNKNOWN_NOSEC=True").allow_unknown_nosec);
    assert_true(flag_ok("TB_LWM2M_SERVER_SECURITY_SKIP_VALIDITY_CHECK_FOR_CLIENT_CERT=true")
                    .skip_validity_check_for_client_cert);

    flag_fails("LWM2M_ENABLED=yes", "LWM2M_ENABLED=yes: not a boolean (true or false)");
    flag_fails("LWM2M_ENABLED=1", "LWM2M_ENABLED=1: not a boolean (true or false)");
    flag_fails("LWM2M_ENABLED=", "LWM2M_ENABLED=: not a boolean (true or false)");
    flag_fails("LWM2M_ENABLED= true", "LWM2M_ENABLED= true: not a boolean (true or false)");
    flag_fails("LWM2M_ENABLED_BS=truee", "LWM2M_ENABLED_BS=truee: not a boolean (true or false)");
}

static void test_ports(void **state)
{
    assert_int_equal(flag_ok("LWM2M_BIND_PORT=0").bind_port, 0);
    assert_int_equal(flag_ok("LWM2M_BIND_PORT=65535").bind_port, 65535);
    assert_int_equal(flag_ok("LWM2M_BS_SECURITY_BIND_PORT=15688").bs_security_bind_port, 15688);
    assert_int_equal(flag_ok("LWM2M_SECURITY_BIND_PORT=05686").security_bind_port, 5686);

    flag_fails("LWM2M_BIND_PORT=70000", "LWM2M_BIND_PORT=70000: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=65536", "LWM2M_BIND_PORT=65536: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=-1", "LWM2M_BIND_PORT=-1: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=+1", "LWM2M_BIND_PORT=+1: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=0x10", "LWM2M_BIND_PORT=0x10: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=12a", "LWM2M_BIND_PORT=12a: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT= 1", "LWM2M_BIND_PORT= 1: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=", "LWM2M_BIND_PORT=: not a port (0-65535)");
    flag_fails("LWM2M_BIND_PORT=99999999999999999999999",
               "LWM2M_BIND_PORT=99999999999999999999999: not a port (0-65535)");
}

static void test_addresses(void **state)
{
    assert_string_equal(flag_ok("LWM2M_BIND_ADDRESS=127.0.0.1").bind_address, "127.0.0.1");
    assert_string_equal(flag_ok("LWM2M_BIND_ADDRESS=::1").bind_address, "::1");
    assert_string_equal(flag_ok("LWM2M_BS_BIND_ADDRESS=::").bs_bind_address, "::");
    assert_string_equal(flag_ok("LWM2M_SECURITY_BIND_ADDRESS=fe80::1:2").security_bind_address,
                        "fe80::1:2");
    assert_string_equal(
        flag_ok("LWM2M_BS_SECURITY_BIND_ADDRESS=::ffff:10.0.0.1").bs_security_bind_address,
        "::ffff:10.0.0.1");

    const char *bad[] = {"localhost", "1.2.3", "256.1.1.1", "", "[::1]", "10.0.0.1 ", "::1%lo"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char flag[128];
        char message[256];
        snprintf(flag, sizeof(flag), "LWM2M_BIND_ADDRESS=%s", bad[i]);
        snprintf(message, sizeof(message), "%s: not a numeric IPv4 or IPv6 address", flag);
        flag_fails(flag, message);
    }
}

static void test_integers(void **state)
{
    assert_int_equal(flag_ok("LWM2M_SERVER_ID=65534").server_id, 65534);
    assert_int_equal(flag_ok("LWM2M_SERVER_ID_BS=1").server_id_bs, 1);
    assert_int_equal(flag_ok("LWM2MD_COAP_MAX_RETRANSMIT=0").coap_max_retransmit, 0);
    assert_int_equal(flag_ok("LWM2MD_COAP_MAX_RETRANSMIT=20").coap_max_retransmit, 20);
    assert_int_equal(flag_ok("LWM2MD_COAP_MAX_BODY_SIZE=16777216").coap_max_body_size, 16777216);
    assert_int_equal(flag_ok("LWM2MD_COAP_MAX_BODY_SIZE=64").coap_max_body_size, 64);
    assert_int_equal(flag_ok("LWM2M_TIMEOUT=007000").timeout_ms, 7000);
    assert_int_equal(flag_ok("LWM2MD_DTLS_SESSION_IDLE_SEC=60").dtls_session_idle_sec, 60);

    flag_fails("LWM2M_SERVER_ID=0", "LWM2M_SERVER_ID=0: out of range (1-65534)");
    flag_fails("LWM2M_SERVER_ID=65535", "LWM2M_SERVER_ID=65535: out of range (1-65534)");
    flag_fails("LWM2MD_COAP_MAX_RETRANSMIT=21",
               "LWM2MD_COAP_MAX_RETRANSMIT=21: out of range (0-20)");
    flag_fails("LWM2MD_COAP_MAX_BODY_SIZE=63",
               "LWM2MD_COAP_MAX_BODY_SIZE=63: out of range (64-16777216)");
    flag_fails("LWM2MD_COAP_MAX_BODY_SIZE=16777217",
               "LWM2MD_COAP_MAX_BODY_SIZE=16777217: out of range (64-16777216)");
    flag_fails("LWM2MD_MAX_REGISTRATIONS=4294967296",
               "LWM2MD_MAX_REGISTRATIONS=4294967296: out of range (1-100000000)");
    flag_fails("LWM2MD_MAX_REGISTRATIONS=1e5",
               "LWM2MD_MAX_REGISTRATIONS=1e5: not a decimal number");
    flag_fails("LWM2M_TIMEOUT=-5", "LWM2M_TIMEOUT=-5: not a decimal number");
    flag_fails("LWM2M_TIMEOUT=+5000", "LWM2M_TIMEOUT=+5000: not a decimal number");
    flag_fails("LWM2M_TIMEOUT=5000ms", "LWM2M_TIMEOUT=5000ms: not a decimal number");
    flag_fails("LWM2M_TIMEOUT=", "LWM2M_TIMEOUT=: not a decimal number");
    flag_fails("LWM2M_CLEAN_PERIOD_IN_SEC=0",
               "LWM2M_CLEAN_PERIOD_IN_SEC=0: out of range (1-86400)");
    flag_fails("LWM2MD_DTLS_MAX_HANDSHAKES=0",
               "LWM2MD_DTLS_MAX_HANDSHAKES=0: out of range (1-1000000)");
}

static void test_decimals(void **state)
{
    assert_true(flag_ok("LWM2MD_COAP_ACK_RANDOM_FACTOR=1").coap_ack_random_factor == 1.0);
    assert_true(flag_ok("LWM2MD_COAP_ACK_RANDOM_FACTOR=1.0").coap_ack_random_factor == 1.0);
    assert_true(flag_ok("LWM2MD_COAP_ACK_RANDOM_FACTOR=2.75").coap_ack_random_factor == 2.75);
    assert_true(flag_ok("LWM2MD_COAP_ACK_RANDOM_FACTOR=10").coap_ack_random_factor == 10.0);

    flag_fails("LWM2MD_COAP_ACK_RANDOM_FACTOR=0.99",
               "LWM2MD_COAP_ACK_RANDOM_FACTOR=0.99: out of range (1.0-10.0)");
    flag_fails("LWM2MD_COAP_ACK_RANDOM_FACTOR=10.01",
               "LWM2MD_COAP_ACK_RANDOM_FACTOR=10.01: out of range (1.0-10.0)");
    flag_fails("LWM2MD_COAP_ACK_RANDOM_FACTOR=99999999999999",
               "LWM2MD_COAP_ACK_RANDOM_FACTOR=99999999999999: out of range (1.0-10.0)");

    const char *bad[] = {"1e0", "nan", "inf", "-1.5", "+1.5", "1.", ".5", "1,5", "", "1.5.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char flag[128];
        char message[256];
        snprintf(flag, sizeof(flag), "LWM2MD_COAP_ACK_RANDOM_FACTOR=%s", bad[i]);
        snprintf(message, sizeof(message), "%s: not a decimal number (like 1.5)", flag);
        flag_fails(flag, message);
    }
}

static void test_block_sizes(void **state)
{
    for (uint32_t size = 16; size <= 1024; size *= 2) {
        char flag[64];
        snprintf(flag, sizeof(flag), "LWM2MD_COAP_BLOCK_SIZE=%u", size);
        assert_int_equal(flag_ok(flag).coap_block_size, size);
    }

    const char *bad[] = {"0", "8", "48", "1000", "2048", "abc", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char flag[64];
        char message[256];
        snprintf(flag, sizeof(flag), "LWM2MD_COAP_BLOCK_SIZE=%s", bad[i]);
        snprintf(message, sizeof(message),
                 "%s: not a block size (16, 32, 64, 128, 256, 512 or 1024)", flag);
        flag_fails(flag, message);
    }
}

static void test_enumerations(void **state)
{
    assert_int_equal(flag_ok("LWM2M_SERVER_CREDENTIALS_TYPE=KEYSTORE").server_credentials.type,
                     CONFIG_CREDENTIALS_KEYSTORE);
    assert_int_equal(flag_ok("LWM2M_BS_CREDENTIALS_TYPE=keystore").bs_credentials.type,
                     CONFIG_CREDENTIALS_KEYSTORE);
    assert_int_equal(flag_ok("LWM2M_TRUST_CREDENTIALS_TYPE=PEM").trust.type,
                     CONFIG_CREDENTIALS_PEM);
    assert_int_equal(
        flag_ok("LWM2M_SERVER_KEY_STORE_TYPE=PKCS12").server_credentials.key_store_type,
        CONFIG_KEYSTORE_PKCS12);
    assert_int_equal(flag_ok("LWM2M_BS_KEY_STORE_TYPE=pkcs12").bs_credentials.key_store_type,
                     CONFIG_KEYSTORE_PKCS12);
    assert_int_equal(flag_ok("LWM2M_TRUST_KEY_STORE_TYPE=JKS").trust.key_store_type,
                     CONFIG_KEYSTORE_JKS);
    assert_int_equal(flag_ok("LWM2MD_LOG_LEVEL=debug").log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(flag_ok("LWM2MD_LOG_LEVEL=WARN").log_level, LOG_LEVEL_WARN);
    assert_int_equal(flag_ok("LWM2MD_LOG_LEVEL=error").log_level, LOG_LEVEL_ERROR);

    flag_fails("LWM2M_SERVER_CREDENTIALS_TYPE=JKS",
               "LWM2M_SERVER_CREDENTIALS_TYPE=JKS: not PEM or KEYSTORE");
    flag_fails("LWM2M_TRUST_KEY_STORE_TYPE=P12",
               "LWM2M_TRUST_KEY_STORE_TYPE=P12: not JKS or PKCS12");
    flag_fails("LWM2M_BS_KEY_STORE_TYPE=", "LWM2M_BS_KEY_STORE_TYPE=: not JKS or PKCS12");
    flag_fails("LWM2MD_LOG_LEVEL=verbose",
               "LWM2MD_LOG_LEVEL=verbose: not a log level (error, warn, info or debug)");
    flag_fails("LWM2MD_LOG_LEVEL=debugging",
               "LWM2MD_LOG_LEVEL=debugging: not a log level (error, warn, info or debug)");
    flag_fails("LWM2MD_LOG_LEVEL=",
               "LWM2MD_LOG_LEVEL=: not a log level (error, warn, info or debug)");
}

static void test_text_values(void **state)
{
    char flag[700];
    char message[800];

    assert_string_equal(flag_ok("LWM2MD_DATA_DIR=/var/lib/lwm2md").data_dir, "/var/lib/lwm2md");
    assert_string_equal(flag_ok("LWM2M_SERVER_PEM_KEY=").server_credentials.pem_key, "");
    assert_string_equal(flag_ok("LWM2M_BS_PEM_CERT=/etc/a b/$x.pem").bs_credentials.pem_cert,
                        "/etc/a b/$x.pem");
    flag_fails("LWM2MD_DATA_DIR=", "LWM2MD_DATA_DIR=: must not be empty");
    flag_fails("LWM2M_SERVER_KEY_ALIAS=", "LWM2M_SERVER_KEY_ALIAS=: must not be empty");
    flag_fails("LWM2MD_DATA_DIR=a\tb\n", "LWM2MD_DATA_DIR=a?b?: contains a control character");

    /* 511 bytes fit a 512-byte field; 512 do not. */
    snprintf(flag, sizeof(flag), "LWM2M_TRUST_PEM_CERT=/%0510d", 0);
    assert_int_equal(strlen(flag_ok(flag).trust.pem_cert), 511);
    snprintf(flag, sizeof(flag), "LWM2M_TRUST_PEM_CERT=/%0511d", 0);
    snprintf(message, sizeof(message), "%.101s...: too long (at most 511 bytes)", flag);
    flag_fails(flag, message);
}

static void test_passwords_not_echoed(void **state)
{
    char flag[600];
    char secret[300];
    char err[ERR_SIZE];
    config_t cfg;

    /* A valid password is taken exactly, blanks and all. */
    config_t ok = flag_ok("LWM2M_SERVER_KEY_STORE_PASSWORD=p@ss w$rd \"x\"");
    assert_string_equal(ok.server_credentials.key_store_password, "p@ss w$rd \"x\"");
    assert_string_equal(flag_ok("LWM2M_BS_PEM_KEY_PASSWORD=").bs_credentials.pem_key_password, "");

    /* A bad one is named, never shown. */
    memset(secret, 'S', 256);
    secret[256] = '\0';
    snprintf(flag, sizeof(flag), "LWM2M_SERVER_KEY_STORE_PASSWORD=%s", secret);
    flag_fails(flag, "LWM2M_SERVER_KEY_STORE_PASSWORD: too long (at most 255 bytes)");
    snprintf(flag, sizeof(flag), "LWM2M_TRUST_KEY_STORE_PASSWORD=%s", secret);
    flag_fails(flag, "LWM2M_TRUST_KEY_STORE_PASSWORD: too long (at most 255 bytes)");

    /* Nor when the name is misspelt, nor when it came from the conf file. */
    flag_fails("LWM2M_SERVER_KEY_STORE_PASWORD=hunter2",
               "LWM2M_SERVER_KEY_STORE_PASWORD: unknown setting");
    snprintf(flag, sizeof(flag), "export LWM2M_BS_KEY_PASSWORD='%s'\n", secret);
    const char *path = write_conf(state, "secret.conf", flag);
    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_ERR_INVALID);
    assert_null(strstr(err, "SSS"));
    assert_non_null(strstr(err, ":1: LWM2M_BS_KEY_PASSWORD: too long (at most 255 bytes)"));
}

static void test_flag_errors(void **state)
{
    flag_fails("LWM2M_BIND_PORT", "LWM2M_BIND_PORT: expected NAME=value");
    flag_fails("=5", ": expected NAME=value");
    flag_fails("LWM2M_NO_SUCH=1", "LWM2M_NO_SUCH: unknown setting");
    flag_fails("lwm2m_bind_port=1", "lwm2m_bind_port: unknown setting");

    /* A usage error is reported before the conf file is even opened. */
    const char *unknown[] = {"LWM2M_NO_SUCH=1", NULL};
    config_t cfg;
    char err[ERR_SIZE];
    assert_int_equal(load(&cfg, "/nonexistent.conf", no_env, unknown, err), LWM2MD_ERR_INVALID);
    assert_string_equal(err, "LWM2M_NO_SUCH: unknown setting");

    /* The last of two flags for one name wins. */
    const char *flags[] = {"LWM2M_BIND_PORT=1", "LWM2M_BIND_PORT=2", NULL};
    assert_int_equal(load(&cfg, NULL, no_env, flags, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 2);
}

static void test_unknown_env_ignored(void **state)
{
    const char *env[] = {"PATH=/bin", "LWM2M_NO_SUCH=1",    "garbage",
                         "=x",        "LWM2M_BIND_PORT=77", NULL};
    config_t cfg;
    char err[ERR_SIZE];

    assert_int_equal(load(&cfg, NULL, env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 77);

    /* A known variable with a bad value in the env is an error. */
    const char *bad_env[] = {"LWM2M_SECURITY_BIND_PORT=x", NULL};
    assert_int_equal(load(&cfg, NULL, bad_env, NULL, err), LWM2MD_ERR_INVALID);
    assert_string_equal(err, "LWM2M_SECURITY_BIND_PORT=x: not a port (0-65535)");
}

/* Each layer wins over the ones below it: flags > env > conf file > defaults. */
static void test_precedence(void **state)
{
    const char *path = write_conf(state, "layers.conf",
                                  "export LWM2M_BIND_PORT=1001\n"
                                  "export LWM2M_SECURITY_BIND_PORT=1002\n"
                                  "export LWM2M_BS_BIND_PORT=1003\n");
    const char *env[] = {"LWM2M_SECURITY_BIND_PORT=2002", "LWM2M_BS_BIND_PORT=2003", NULL};
    const char *flags[] = {"LWM2M_BS_BIND_PORT=3003", NULL};
    config_t cfg;
    char err[ERR_SIZE];

    assert_int_equal(load(&cfg, path, env, flags, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 1001);
    assert_int_equal(cfg.security_bind_port, 2002);
    assert_int_equal(cfg.bs_bind_port, 3003);
    assert_int_equal(cfg.bs_security_bind_port, 5688);

    /* Only the winning text is checked: a bad value below a good one is moot. */
    path = write_conf(state, "shadowed.conf", "LWM2M_BIND_PORT=junk\n");
    const char *good_env[] = {"LWM2M_BIND_PORT=9", NULL};
    assert_int_equal(load(&cfg, path, good_env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 9);
}

/* src->env NULL reads the process environment, LWM2MD_CONFIG included. */
static void test_process_env(void **state)
{
    const char *path = write_conf(state, "env.conf", "LWM2M_BS_BIND_PORT=4003\n");
    config_t cfg;
    char err[ERR_SIZE];
    char expected[ERR_SIZE];

    assert_int_equal(setenv("LWM2M_BIND_PORT", "4001", 1), 0);
    assert_int_equal(setenv("LWM2MD_CONFIG", path, 1), 0);
    int rc = load(&cfg, NULL, NULL, NULL, err);
    assert_int_equal(rc, LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 4001);
    assert_int_equal(cfg.bs_bind_port, 4003);

    assert_int_equal(setenv("LWM2MD_CONFIG", "/nonexistent/lwm2md.conf", 1), 0);
    assert_int_equal(load(&cfg, NULL, NULL, NULL, err), LWM2MD_ERR_IO);
    snprintf(expected, sizeof(expected),
             "LWM2MD_CONFIG=/nonexistent/lwm2md.conf: cannot read (No such file or directory)");
    assert_string_equal(err, expected);

    assert_int_equal(setenv("LWM2M_BIND_PORT", "port", 1), 0);
    assert_int_equal(unsetenv("LWM2MD_CONFIG"), 0);
    assert_int_equal(load(&cfg, NULL, NULL, NULL, err), LWM2MD_ERR_INVALID);
    assert_string_equal(err, "LWM2M_BIND_PORT=port: not a port (0-65535)");
    assert_int_equal(unsetenv("LWM2M_BIND_PORT"), 0);
}

/* The conf file is named by -c, else LWM2MD_CONFIG from the flags, else from the env. */
static void test_conf_file_choice(void **state)
{
    scratch_t *scratch = *state;
    char a[256];
    char b[256];
    char flag[300];
    config_t cfg;
    char err[ERR_SIZE];

    snprintf(a, sizeof(a), "%s", write_conf(state, "a.conf", "LWM2M_BIND_PORT=1\n"));
    snprintf(b, sizeof(b), "%s", write_conf(state, "b.conf", "LWM2M_BIND_PORT=2\n"));
    snprintf(flag, sizeof(flag), "LWM2MD_CONFIG=%s", b);
    const char *flags[] = {flag, NULL};
    char env_var[300];
    snprintf(env_var, sizeof(env_var), "LWM2MD_CONFIG=%s", a);
    const char *env[] = {env_var, NULL};

    assert_int_equal(load(&cfg, NULL, env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 1);
    assert_int_equal(load(&cfg, NULL, env, flags, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 2);
    assert_int_equal(load(&cfg, a, env, flags, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 1);

    /* An empty LWM2MD_CONFIG means no file. */
    const char *empty_flags[] = {"LWM2MD_CONFIG=", NULL};
    assert_int_equal(load(&cfg, NULL, env, empty_flags, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 5685);
    (void)scratch;
}

static void test_conf_unreadable(void **state)
{
    scratch_t *scratch = *state;
    config_t cfg;
    char err[ERR_SIZE];
    char expected[ERR_SIZE];
    char missing[256];

    snprintf(missing, sizeof(missing), "%s/missing.conf", scratch->dir);
    assert_int_equal(load(&cfg, missing, no_env, NULL, err), LWM2MD_ERR_IO);
    snprintf(expected, sizeof(expected), "-c %s: cannot read (No such file or directory)", missing);
    assert_string_equal(err, expected);

    assert_int_equal(load(&cfg, scratch->dir, no_env, NULL, err), LWM2MD_ERR_IO);
    snprintf(expected, sizeof(expected), "-c %s: cannot read (Is a directory)", scratch->dir);
    assert_string_equal(err, expected);

    char env_var[300];
    snprintf(env_var, sizeof(env_var), "LWM2MD_CONFIG=%s", missing);
    const char *env[] = {env_var, NULL};
    assert_int_equal(load(&cfg, NULL, env, NULL, err), LWM2MD_ERR_IO);
    snprintf(expected, sizeof(expected),
             "LWM2MD_CONFIG=%s: cannot read (No such file or directory)", missing);
    assert_string_equal(err, expected);
}

static void test_conf_syntax(void **state)
{
    const char *path = write_conf(state, "syntax.conf",
                                  "#!/bin/sh\n"
                                  "# a comment\n"
                                  "   \t# an indented comment\n"
                                  "\n"
                                  "   \n"
                                  "export LWM2M_BIND_PORT=1111\n"
                                  "LWM2M_SECURITY_BIND_PORT=2222   # after blanks\n"
                                  "export\tLWM2M_BS_BIND_PORT=\"3333\"\t# quoted\n"
                                  "  export   LWM2M_BS_SECURITY_BIND_PORT='4444'\n"
                                  "LWM2M_BS_KEY_ALIAS='it'\"'\"'s \"quoted\"'\n"
                                  "LWM2M_SERVER_KEY_PASSWORD=\"a \\\"b\\\" \\\\ $HOME `id` \\x\"\n"
                                  "LWM2M_SERVER_KEY_STORE_PASSWORD=$SECRET\n"
                                  "LWM2M_SERVER_KEY_ALIAS=name#not-a-comment\n"
                                  "LWM2MD_DATA_DIR=\"/var/lib/lwm2md data\"\n"
                                  "LWM2M_TRUST_PEM_CERT=~/ca.pem\n"
                                  "LWM2M_BS_PEM_CERT=a\\ b\n"
                                  "LWM2M_BS_PEM_KEY=\n"
                                  "LWM2M_TRUST_KEY_STORE_PASSWORD='$(cat /etc/secret)'\n"
                                  "UNKNOWN_THING=whatever\n"
                                  "export JAVA_OPTS=\"$JAVA_OPTS -Xmx512m\"\n"
                                  "exportLWM2M_ENABLED=false\n"
                                  "LWM2M_SERVER_ID=1\n"
                                  "LWM2M_SERVER_ID=2\n"
                                  "LWM2MD_CONFIG=/ignored/in/a/file\n"
                                  "LWM2MD_LOG_LEVEL=debug");
    config_t cfg;
    char err[ERR_SIZE];

    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 1111);
    assert_int_equal(cfg.security_bind_port, 2222);
    assert_int_equal(cfg.bs_bind_port, 3333);
    assert_int_equal(cfg.bs_security_bind_port, 4444);
    assert_string_equal(cfg.bs_credentials.key_alias, "it's \"quoted\"");
    assert_string_equal(cfg.server_credentials.key_password, "a \"b\" \\ $HOME `id` \\x");
    assert_string_equal(cfg.server_credentials.key_store_password, "$SECRET");
    assert_string_equal(cfg.server_credentials.key_alias, "name#not-a-comment");
    assert_string_equal(cfg.data_dir, "/var/lib/lwm2md data");
    assert_string_equal(cfg.trust.pem_cert, "~/ca.pem");
    assert_string_equal(cfg.bs_credentials.pem_cert, "a b");
    assert_string_equal(cfg.bs_credentials.pem_key, "");
    assert_string_equal(cfg.trust.key_store_password, "$(cat /etc/secret)");
    assert_true(cfg.enabled);
    assert_int_equal(cfg.server_id, 2);
    assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
}

static void test_conf_crlf(void **state)
{
    const char *path = write_conf(state, "crlf.conf",
                                  "# written on Windows\r\n"
                                  "\r\n"
                                  "export LWM2M_BIND_PORT=1234\r\n"
                                  "LWM2M_BS_KEY_ALIAS=\"x y\" # comment\r\n"
                                  "LWM2MD_DATA_DIR=/srv/data\r\n");
    config_t cfg;
    char err[ERR_SIZE];

    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 1234);
    assert_string_equal(cfg.bs_credentials.key_alias, "x y");
    assert_string_equal(cfg.data_dir, "/srv/data");

    /* An empty file is fine, too. */
    path = write_conf(state, "empty.conf", "");
    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_OK);
    assert_int_equal(cfg.bind_port, 5685);
}

static void test_conf_malformed(void **state)
{
    static const struct {
        const char *line;
        const char *problem;
    } cases[] = {
        {"LWM2M_BIND_PORT = 5", "expected [export] NAME=value"},
        {"LWM2M_BIND_PORT =5", "expected [export] NAME=value"},
        {"export", "expected [export] NAME=value"},
        {"export LWM2M_BIND_PORT", "expected [export] NAME=value"},
        {"1ABC=5", "expected [export] NAME=value"},
        {"LWM2M-BIND-PORT=5", "expected [export] NAME=value"},
        {"echo hello", "expected [export] NAME=value"},
        {"LWM2M_BS_KEY_ALIAS='abc", "unterminated single quote"},
        {"LWM2M_BS_KEY_ALIAS=\"abc", "unterminated double quote"},
        {"LWM2M_BS_KEY_ALIAS=\"abc\\\"", "unterminated double quote"},
        {"LWM2M_BS_KEY_ALIAS=abc def", "text after the value; quote a value that holds blanks"},
        {"A=1 B=2", "text after the value; quote a value that holds blanks"},
        {"LWM2M_BS_KEY_ALIAS=abc;rm -rf /", "unquoted shell operator; quote the value"},
        {"LWM2M_BS_KEY_ALIAS=a|b", "unquoted shell operator; quote the value"},
        {"LWM2M_BS_KEY_ALIAS=$(id)", "unquoted shell operator; quote the value"},
        {"LWM2M_BS_KEY_ALIAS=abc\\", "line continuation is not supported"},
    };
    char text[256];
    char message[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "export LWM2M_BIND_PORT=1\n%s\nLWM2M_BIND_PORT=2\n",
                 cases[i].line);
        snprintf(message, sizeof(message), "2: malformed line (%s)", cases[i].problem);
        conf_fails(state, text, LWM2MD_ERR_INVALID, message);
    }
}

static void test_conf_bad_bytes(void **state)
{
    static const char with_nul[] = "LWM2M_BIND_PORT=1\n# ok\nLWM2M_BS_KEY_ALIAS=a\0b\n";
    const char *path = write_bytes(state, "nul.conf", with_nul, sizeof(with_nul) - 1);
    config_t cfg;
    char err[ERR_SIZE];
    char expected[ERR_SIZE];

    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_ERR_INVALID);
    snprintf(expected, sizeof(expected), "%s:3: malformed line (NUL byte)", path);
    assert_string_equal(err, expected);

    /* Over 1 MiB is refused before any line is read. */
    size_t big_len = 1024 * 1024 + 1;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, '#', big_len);
    path = write_bytes(state, "big.conf", big, big_len);
    free(big);
    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_ERR_INVALID);
    snprintf(expected, sizeof(expected), "-c %s: too big (over 1048576 bytes)", path);
    assert_string_equal(err, expected);
}

/* A bad value in the file names the file and line, then NAME=value. */
static void test_conf_bad_value(void **state)
{
    conf_fails(state, "# ports\n\nexport LWM2M_BIND_PORT=70000\n", LWM2MD_ERR_INVALID,
               "3: LWM2M_BIND_PORT=70000: not a port (0-65535)");
    conf_fails(state, "LWM2M_RECOMMENDED_CIPHERS=\"yes\"\n", LWM2MD_ERR_INVALID,
               "1: LWM2M_RECOMMENDED_CIPHERS=yes: not a boolean (true or false)");
}

/* A thingsboard.conf as the Debian package ships it, with LwM2M lines added. */
static void test_thingsboard_conf(void **state)
{
    const char *path = write_conf(
        state, "thingsboard.conf",
        "export JAVA_OPTS=\"$JAVA_OPTS -Dplatform=deb -Dinstall.data_dir=/usr/share/thingsboard\"\n"
        "export JAVA_OPTS=\"$JAVA_OPTS -Xlog:gc*,heap*,age*,safepoint=debug:file=/var/log/"
        "thingsboard/gc.log:time,uptime,level,tags:filecount=10,filesize=10M\"\n"
        "export JAVA_OPTS=\"$JAVA_OPTS -XX:+IgnoreUnrecognizedVMOptions "
        "-XX:+HeapDumpOnOutOfMemoryError\"\n"
        "export LOG_FILENAME=thingsboard.out\n"
        "export LOADER_PATH=/usr/share/thingsboard/conf,/usr/share/thingsboard/extensions\n"
        "export SQL_DATA_FOLDER=/usr/share/thingsboard/data/sql\n"
        "\n"
        "# DB Configuration\n"
        "export DATABASE_TS_TYPE=sql\n"
        "export SPRING_DATASOURCE_PASSWORD=postgres\n"
        "\n"
        "export LWM2M_SERVER_CREDENTIALS_ENABLED=true\n"
        "export LWM2M_SERVER_CREDENTIALS_TYPE=PEM\n"
        "export LWM2M_SERVER_PEM_CERT=server.pem\n"
        "export LWM2M_SERVER_PEM_KEY=server_key.pem\n"
        "export LWM2M_SERVER_PEM_KEY_PASSWORD=secret\n"
        "export LWM2M_ENABLED_BS=false\n");
    config_t cfg;
    char err[ERR_SIZE];

    assert_int_equal(load(&cfg, path, no_env, NULL, err), LWM2MD_OK);
    assert_true(cfg.server_credentials.enabled);
    assert_int_equal(cfg.server_credentials.type, CONFIG_CREDENTIALS_PEM);
    assert_string_equal(cfg.server_credentials.pem_cert, "server.pem");
    assert_string_equal(cfg.server_credentials.pem_key, "server_key.pem");
    assert_string_equal(cfg.server_credentials.pem_key_password, "secret");
    assert_false(cfg.bs_enabled);
}

/* A failed load leaves the caller's config untouched. */
static void test_failure_changes_nothing(void **state)
{
    const char *flags[] = {"LWM2M_BIND_PORT=1", "LWM2M_SECURITY_BIND_PORT=bad", NULL};
    config_t cfg;
    config_t before;
    char err[ERR_SIZE];

    memset(&cfg, 0xab, sizeof(cfg));
    memcpy(&before, &cfg, sizeof(cfg));
    assert_int_equal(load(&cfg, NULL, no_env, flags, err), LWM2MD_ERR_INVALID);
    assert_memory_equal(&cfg, &before, sizeof(cfg));

    /* A short error buffer is cut, still terminated; none at all is allowed. */
    config_source_t src = {.flags = flags, .env = no_env};
    assert_int_equal(config_load(&cfg, &src, err, 10), LWM2MD_ERR_INVALID);
    assert_string_equal(err, "LWM2M_SEC");
    assert_int_equal(config_load(&cfg, &src, NULL, 0), LWM2MD_ERR_INVALID);
}

/* Reads the next `text` cell of a docs table row: "`x`" gives x, anything else NULL. */
static const char *code_cell(const char *cell, char *out, size_t size)
{
    const char *end;

    while (*cell == ' ') {
        cell++;
    }
    if (*cell != '`' || (end = strchr(cell + 1, '`')) == NULL || (size_t)(end - cell - 1) >= size) {
        return NULL;
    }
    memcpy(out, cell + 1, (size_t)(end - cell - 1));
    out[end - cell - 1] = '\0';
    return out;
}

/* Checks one row "| `NAME` | `default` | ...": known name, and the default is ours. */
static void check_doc_row(const char *row, const config_t *defaults)
{
    char name[128];
    char value[600];
    char flag[800];
    char err[ERR_SIZE];
    config_t cfg;

    assert_non_null(code_cell(row + 1, name, sizeof(name)));
    const char *second = strchr(row + 1, '|');
    assert_non_null(second);
    if (code_cell(second + 1, value, sizeof(value)) == NULL) {
        value[0] = '\0';
    }
    snprintf(flag, sizeof(flag), "%s=%s", name, value);
    int rc = load_flag(&cfg, flag, err);
    if (rc != LWM2MD_OK) {
        /* No code default (computed, or none): the name must still be known. */
        assert_null(strstr(err, "unknown setting"));
        return;
    }
    if (strcmp(name, "LWM2MD_WORKERS") != 0 && memcmp(&cfg, defaults, sizeof(cfg)) != 0) {
        fail_msg("docs/CONFIGURATION.md: %s: documented default differs from the code", name);
    }
}

/* docs/CONFIGURATION.md lists every setting, with the defaults the code has. */
static void test_docs_match_code(void **state)
{
    const char *data = getenv("LWM2MD_TEST_DATA");
    char path[512];
    char line[1024];
    config_t defaults;
    char err[ERR_SIZE];
    int rows = 0;

    assert_non_null(data);
    snprintf(path, sizeof(path), "%s/../../docs/CONFIGURATION.md", data);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    assert_int_equal(load(&defaults, NULL, no_env, NULL, err), LWM2MD_OK);
    while (fgets(line, sizeof(line), file) != NULL) {
        if (strncmp(line, "| `", 3) == 0) {
            check_doc_row(line, &defaults);
            rows++;
        }
    }
    fclose(file);

    /* 60 settings in the table, and LWM2MD_CONFIG. */
    assert_int_equal(rows, 61);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_credential_defaults),
        cmocka_unit_test(test_load_nothing_gives_defaults),
        cmocka_unit_test(test_workers_default_is_cores),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_ports),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_decimals),
        cmocka_unit_test(test_block_sizes),
        cmocka_unit_test(test_enumerations),
        cmocka_unit_test(test_text_values),
        cmocka_unit_test(test_passwords_not_echoed),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_unknown_env_ignored),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_process_env),
        cmocka_unit_test(test_conf_file_choice),
        cmocka_unit_test(test_conf_unreadable),
        cmocka_unit_test(test_conf_syntax),
        cmocka_unit_test(test_conf_crlf),
        cmocka_unit_test(test_conf_malformed),
        cmocka_unit_test(test_conf_bad_bytes),
        cmocka_unit_test(test_conf_bad_value),
        cmocka_unit_test(test_thingsboard_conf),
        cmocka_unit_test(test_failure_changes_nothing),
        cmocka_unit_test(test_docs_match_code),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
