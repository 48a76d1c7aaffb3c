/* `lwm2md serve`: start-up, the maintenance tick, and shutdown. */
#include "main/serve.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/error.h"
#include "dtls/credentials.h"
#include "log/log.h"
#include "lwm2m/registry.h"
#include "main/cli.h"
#include "main/worker.h"
#include "store/store.h"
#include "store/writer.h"

#define WORKERS_MAX 64
#define WRITER_QUEUE 65536

typedef struct server {
    const config_t *cfg;
    store_t *store; /* the maintenance thread's connection */
    store_writer_t *writer;
    registry_t *registry;
    dtls_credentials_t *creds;
    worker_shared_t shared;
    worker_t *workers[WORKERS_MAX];
    unsigned worker_count;
    int lock_fd; /* holds the data directory for this server */
} server_t;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "lwm2md: %s%s%s\n", what, detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
}

/* Credentials load before any port is bound: a bad key stops the start. */
static int load_credentials(server_t *s)
{
    char err[512] = "";
    int rc = dtls_credentials_load(&s->cfg->server_credentials, "LWM2M_SERVER", &s->cfg->trust,
                                   &s->creds, err, sizeof(err));

    /* The bootstrap listener comes later; its credentials are checked now all the same. */
    if (rc == LWM2MD_OK && s->cfg->bs_enabled && s->cfg->bs_credentials.enabled) {
        dtls_credentials_t *bs = NULL;
        rc = dtls_credentials_load(&s->cfg->bs_credentials, "LWM2M_BS", &s->cfg->trust, &bs, err,
                                   sizeof(err));
        dtls_credentials_free(bs);
    }
    if (rc != LWM2MD_OK) {
        fail(err[0] != '\0' ? err : "server credentials",
             err[0] != '\0' ? NULL : lwm2md_strerror(rc));
        return rc;
    }
    return LWM2MD_OK;
}

/* One server per data directory: a second would fight over registrations. */
static int lock_data_dir(server_t *s)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/lwm2md.lock", s->cfg->data_dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        fprintf(stderr, "lwm2md: LWM2MD_DATA_DIR=%s: %s\n", s->cfg->data_dir,
                err == EWOULDBLOCK ? "another lwm2md server is using it" : strerror(err));
        return LWM2MD_ERR_IO;
    }
    return LWM2MD_OK;
}

static int open_store(server_t *s)
{
    const config_t *cfg = s->cfg;
    int rc = store_open(cfg->data_dir, &s->store);
    if (rc != LWM2MD_OK) {
        char what[CONFIG_PATH_MAX + 64];
        snprintf(what, sizeof(what), "LWM2MD_DATA_DIR=%s: cannot open the store", cfg->data_dir);
        fail(what, lwm2md_strerror(rc));
        return rc;
    }
    rc = lock_data_dir(s);
    if (rc != LWM2MD_OK) {
        return rc;
    }
    rc = store_writer_start(cfg->data_dir, WRITER_QUEUE, &s->writer);
    if (rc == LWM2MD_OK) {
        rc = registry_new(cfg->max_registrations, s->writer, &s->registry);
    }
    if (rc == LWM2MD_OK) {
        rc = registry_load_devices(s->registry, s->store, cfg->allow_unknown_nosec);
    }
    if (rc == LWM2MD_OK) {
        rc = registry_restore(s->registry, s->store, (int64_t)time(NULL));
    }
    if (rc != LWM2MD_OK) {
        fail("cannot load the registry", lwm2md_strerror(rc));
    }
    return rc;
}

static int parse_bind(const char *name, const char *host, uint16_t port, net_addr_t *out)
{
    if (net_addr_parse(out, host, port) != LWM2MD_OK) {
        fprintf(stderr, "lwm2md: %s=%s: not a numeric IPv4 or IPv6 address\n", name, host);
        return LWM2MD_ERR_INVALID;
    }
    return LWM2MD_OK;
}

static int start_workers(server_t *s)
{
    const config_t *cfg = s->cfg;
    s->shared.config = cfg;
    s->shared.registry = s->registry;
    s->shared.creds = s->creds;
    if (parse_bind("LWM2M_BIND_ADDRESS", cfg->bind_address, cfg->bind_port,
                   &s->shared.nosec_bind) != LWM2MD_OK ||
        parse_bind("LWM2M_SECURITY_BIND_ADDRESS", cfg->security_bind_address,
                   cfg->security_bind_port, &s->shared.secure_bind) != LWM2MD_OK) {
        return LWM2MD_ERR_INVALID;
    }

    /* Bind every socket first; only then start the threads. */
    unsigned count = cfg->workers < WORKERS_MAX ? cfg->workers : WORKERS_MAX;
    for (unsigned i = 0; i < count; i++) {
        char err[512];
        int rc = worker_new(&s->shared, i, &s->workers[i], err, sizeof(err));
        if (rc != LWM2MD_OK) {
            fail(err, NULL);
            return rc;
        }
        s->worker_count++;
    }
    for (unsigned i = 0; i < s->worker_count; i++) {
        if (worker_start(s->workers[i]) != LWM2MD_OK) {
            fail("cannot start a worker thread", NULL);
            return LWM2MD_ERR_IO;
        }
    }
    return LWM2MD_OK;
}

static void log_started(const server_t *s)
{
    const config_t *cfg = s->cfg;
    char nosec[NET_ADDR_STRING_MAX] = "off";
    char secure[NET_ADDR_STRING_MAX] = "off";
    if (cfg->enabled) {
        net_addr_format(&s->shared.nosec_bind, nosec, sizeof(nosec));
        net_addr_format(&s->shared.secure_bind, secure, sizeof(secure));
    }
    log_info("lwm2md %s started (coap=%s, coaps=%s, data dir %s, %u workers, credentials %s)",
             LWM2MD_VERSION, nosec, secure, cfg->data_dir, s->worker_count,
             dtls_credentials_has_certificate(s->creds) ? "psk+rpk+x509" : "psk only");
    if (cfg->bs_enabled) {
        log_info("bootstrap server not started (not implemented yet; see docs/LIMITATIONS.md)");
    }
    if (cfg->allow_unknown_nosec) {
        log_warn("LWM2MD_ALLOW_UNKNOWN_NOSEC=true: any endpoint may register in the clear "
                 "(development only)");
    }
}

/*
 * The main thread's loop: waits for a signal, and once a second applies
 * changes other processes made to the store (`lwm2md device ...`); every
 * LWM2M_CLEAN_PERIOD_IN_SEC it removes expired registrations. Both may
 * block on the database, which is why they run here and not on a worker.
 */
/* Reloads the device index when another process changed the devices. */
static void follow_devices(server_t *s, int64_t *data_version, int64_t *devices_version)
{
    int64_t now_data = *data_version;
    if (store_data_version(s->store, &now_data) != LWM2MD_OK || now_data == *data_version) {
        return;
    }
    *data_version = now_data;

    /* Registration writes move the data version too; only device changes matter. */
    int64_t now_devices = *devices_version;
    if (store_devices_version(s->store, &now_devices) != LWM2MD_OK ||
        now_devices == *devices_version) {
        return;
    }
    *devices_version = now_devices;
    int rc = registry_load_devices(s->registry, s->store, s->cfg->allow_unknown_nosec);
    if (rc != LWM2MD_OK) {
        log_error("registry: device reload failed (%s)", lwm2md_strerror(rc));
    } else {
        log_debug("registry: devices reloaded after a change in the store");
    }
}

/*
 * The main thread's loop: waits for a signal, and once a second applies
 * changes other processes made to the devices (`lwm2md device ...`);
 * every LWM2M_CLEAN_PERIOD_IN_SEC it removes expired registrations. Both
 * may block on the database, which is why they run here and not on a
 * worker.
 */
static void maintain(server_t *s, const sigset_t *signals)
{
    int64_t data_version = 0;
    int64_t devices_version = 0;
    int64_t last_clean = (int64_t)time(NULL);
    store_data_version(s->store, &data_version);
    store_devices_version(s->store, &devices_version);

    for (;;) {
        struct timespec tick = {.tv_sec = 1, .tv_nsec = 0};
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("lwm2md stopping (%s)", sig == SIGINT ? "SIGINT" : "SIGTERM");
            return;
        }
        follow_devices(s, &data_version, &devices_version);

        int64_t now = (int64_t)time(NULL);
        if (now - last_clean >= (int64_t)s->cfg->clean_period_sec) {
            last_clean = now;
            registry_expire(s->registry, now, (int64_t)s->cfg->clean_period_sec);
        }
    }
}

static void shutdown_server(server_t *s)
{
    for (unsigned i = 0; i < s->worker_count; i++) {
        worker_stop(s->workers[i]);
    }
    if (s->writer != NULL) {
        store_writer_stop(s->writer);
    }
    registry_free(s->registry);
    store_close(s->store);
    dtls_credentials_free(s->creds);
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
}

int serve_run(const config_t *cfg)
{
    server_t s = {.cfg = cfg, .lock_fd = -1};
    log_set_level(cfg->log_level);

    /* Signals go to the main thread only: block them before any thread starts. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = load_credentials(&s);
    if (rc == LWM2MD_OK) {
        rc = open_store(&s);
    }
    if (rc == LWM2MD_OK) {
        rc = start_workers(&s);
    }
    if (rc == LWM2MD_OK) {
        log_started(&s);
        maintain(&s, &signals);
    }
    shutdown_server(&s);
    if (rc == LWM2MD_OK) {
        log_info("lwm2md stopped");
    }
    return rc == LWM2MD_OK ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}
