/* Store: devices, credentials and registrations in one SQLite file (WAL, versioned schema). */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "log/log.h"

/* The CLI and a running server share the file; a writer waits this long for the other. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* Bounds on credential blobs: an EC SubjectPublicKeyInfo is ~100 bytes, a certificate ~1 KB. */
#define STORE_RPK_MAX 4096
#define STORE_CERT_MAX 65536
#define STORE_SHA256_LEN 32

/*
 * Schema steps: entry i upgrades a database from user_version i to i + 1.
 * A released step is never edited; a change is a new step.
 * Registrations carry no foreign key to devices: with LWM2MD_ALLOW_UNKNOWN_NOSEC
 * an endpoint that is not provisioned may register.
 */
static const char *const schema_steps[] = {
    "CREATE TABLE devices ("
    " endpoint TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL DEFAULT '',"
    " mode INTEGER NOT NULL CHECK (mode BETWEEN 0 AND 3),"
    " psk_identity TEXT UNIQUE,"
    " psk_key BLOB,"
    " rpk BLOB UNIQUE,"
    " cert BLOB,"
    " cert_sha256 BLOB UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " CHECK ((mode = 1) = (psk_identity IS NOT NULL AND psk_key IS NOT NULL)),"
    " CHECK ((mode = 2) = (rpk IS NOT NULL)),"
    " CHECK (mode = 3 OR cert IS NULL),"
    " CHECK ((cert IS NULL) = (cert_sha256 IS NULL)));"
    "CREATE TABLE registrations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " endpoint TEXT NOT NULL UNIQUE,"
    " peer TEXT NOT NULL,"
    " secure INTEGER NOT NULL,"
    " version TEXT NOT NULL,"
    " binding TEXT NOT NULL,"
    " sms TEXT NOT NULL DEFAULT '',"
    " queue_mode INTEGER NOT NULL,"
    " lifetime INTEGER NOT NULL,"
    " registered_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " links TEXT);",

    /* Step 2: a counter the server polls to notice device changes made by
     * other processes; PRAGMA data_version also moves on every registration
     * write, which would reload the device index needlessly. */
    "CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT INTO counters (name, value) VALUES ('devices', 0);"
    "CREATE TRIGGER devices_inserted AFTER INSERT ON devices BEGIN"
    " UPDATE counters SET value = value + 1 WHERE name = 'devices'; END;"
    "CREATE TRIGGER devices_updated AFTER UPDATE ON devices BEGIN"
    " UPDATE counters SET value = value + 1 WHERE name = 'devices'; END;"
    "CREATE TRIGGER devices_deleted AFTER DELETE ON devices BEGIN"
    " UPDATE counters SET value = value + 1 WHERE name = 'devices'; END;",
};

#define STORE_SCHEMA_VERSION ((int)(sizeof(schema_steps) / sizeof(schema_steps[0])))

enum store_stmt {
    STMT_DEVICE_INSERT,
    STMT_DEVICE_SELECT,
    STMT_DEVICE_DELETE,
    STMT_DEVICE_ALL,
    STMT_REG_PUT,
    STMT_REG_DELETE,
    STMT_REG_DELETE_ENDPOINT,
    STMT_REG_SELECT,
    STMT_REG_ALL,
    STMT_DATA_VERSION,
    STMT_DEVICES_VERSION,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_COUNT,
};

#define DEVICE_COLUMNS "endpoint, name, mode, psk_identity, psk_key, rpk, cert"
#define REG_COLUMNS                                                                                \
    "id, endpoint, peer, secure, version, binding, sms, queue_mode, lifetime, registered_at,"      \
    " updated_at, expires_at, links"

static const char *const stmt_sql[STMT_COUNT] = {
    [STMT_DEVICE_INSERT] = "INSERT INTO devices (" DEVICE_COLUMNS ", cert_sha256, created_at)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [STMT_DEVICE_SELECT] = "SELECT " DEVICE_COLUMNS " FROM devices WHERE endpoint = ?1",
    [STMT_DEVICE_DELETE] = "DELETE FROM devices WHERE endpoint = ?1",
    [STMT_DEVICE_ALL] = "SELECT " DEVICE_COLUMNS " FROM devices ORDER BY endpoint",
    /* REPLACE drops a row that clashes on the id or on the endpoint: one per endpoint. */
    [STMT_REG_PUT] = "INSERT OR REPLACE INTO registrations (" REG_COLUMNS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [STMT_REG_DELETE] = "DELETE FROM registrations WHERE id = ?1",
    [STMT_REG_DELETE_ENDPOINT] = "DELETE FROM registrations WHERE endpoint = ?1",
    [STMT_REG_SELECT] = "SELECT " REG_COLUMNS " FROM registrations WHERE endpoint = ?1",
    [STMT_REG_ALL] = "SELECT " REG_COLUMNS " FROM registrations ORDER BY endpoint",
    [STMT_DATA_VERSION] = "PRAGMA data_version",
    [STMT_DEVICES_VERSION] = "SELECT value FROM counters WHERE name = 'devices'",
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_SAVEPOINT] = "SAVEPOINT store_step",
    [STMT_RELEASE] = "RELEASE store_step",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO store_step",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmts[STMT_COUNT];
};

const char *store_security_name(store_security_t mode)
{
    switch (mode) {
    case STORE_SECURITY_NOSEC:
        return "nosec";
    case STORE_SECURITY_PSK:
        return "psk";
    case STORE_SECURITY_RPK:
        return "rpk";
    case STORE_SECURITY_X509:
        return "x509";
    default:
        return "unknown";
    }
}

void store_device_clear(store_device_t *device)
{
    free(device->rpk);
    free(device->cert);
    explicit_bzero(device, sizeof(*device));
}

void store_registration_clear(store_registration_t *reg)
{
    free(reg->links);
    memset(reg, 0, sizeof(*reg));
}

/* ---- validation ---- */

/* True when text holds a NUL within max + 1 bytes. */
static bool text_bounded(const char *text, size_t max)
{
    return memchr(text, '\0', max + 1) != NULL;
}

/* Registration ids: 1..max printable ASCII characters, no spaces. */
static bool token_valid(const char *text, size_t max)
{
    if (!text_bounded(text, max) || text[0] == '\0') {
        return false;
    }
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            return false;
        }
    }
    return true;
}

/* Free text (names, identities, peer strings): bounded, no control characters. */
static bool free_text_valid(const char *text, size_t max)
{
    if (!text_bounded(text, max)) {
        return false;
    }
    for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* Endpoints: 1..max bytes, no control characters (what the registration interface accepts). */
static bool endpoint_valid(const char *endpoint)
{
    return free_text_valid(endpoint, STORE_ENDPOINT_MAX) && endpoint[0] != '\0';
}

/* The credential fields match the mode, and fields of other modes are empty. */
static bool credential_valid(const store_device_t *device)
{
    bool psk = device->mode == STORE_SECURITY_PSK;
    bool rpk = device->mode == STORE_SECURITY_RPK;
    bool x509 = device->mode == STORE_SECURITY_X509;

    if (!free_text_valid(device->psk_identity, STORE_PSK_IDENTITY_MAX) ||
        (device->psk_identity[0] != '\0') != psk || (device->psk_key_len != 0) != psk ||
        device->psk_key_len > STORE_PSK_KEY_MAX) {
        return false;
    }
    if ((device->rpk != NULL) != rpk || (device->rpk_len != 0) != rpk ||
        device->rpk_len > STORE_RPK_MAX) {
        return false;
    }
    if (device->cert != NULL && (!x509 || device->cert_len == 0)) {
        return false;
    }
    return device->cert_len <= STORE_CERT_MAX && (device->cert != NULL || device->cert_len == 0);
}

static int device_validate(const store_device_t *device)
{
    if (!endpoint_valid(device->endpoint) || !free_text_valid(device->name, STORE_NAME_MAX)) {
        return LWM2MD_ERR_INVALID;
    }
    if (device->mode < STORE_SECURITY_NOSEC || device->mode > STORE_SECURITY_X509) {
        return LWM2MD_ERR_INVALID;
    }
    return credential_valid(device) ? LWM2MD_OK : LWM2MD_ERR_INVALID;
}

static int registration_validate(const store_registration_t *reg)
{
    if (!token_valid(reg->id, STORE_REG_ID_MAX) || !endpoint_valid(reg->endpoint)) {
        return LWM2MD_ERR_INVALID;
    }
    if (!free_text_valid(reg->peer, STORE_PEER_MAX) ||
        !free_text_valid(reg->version, STORE_VERSION_MAX) ||
        !free_text_valid(reg->binding, STORE_BINDING_MAX) ||
        !free_text_valid(reg->sms, STORE_SMS_MAX)) {
        return LWM2MD_ERR_INVALID;
    }
    return LWM2MD_OK;
}

/* ---- statement helpers ---- */

/* Logs a database failure once, here where it is handled, and returns LWM2MD_ERR_STORE. */
static int store_failed(store_t *store, const char *what)
{
    log_error("store: %s failed (%s)", what, sqlite3_errmsg(store->db));
    return LWM2MD_ERR_STORE;
}

/* Maps the result of a step: unique keys to EXISTS, other constraints to INVALID. */
static int step_result(store_t *store, int rc, const char *what)
{
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        return LWM2MD_OK;
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return LWM2MD_ERR_EXISTS;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        return LWM2MD_ERR_INVALID;
    }
    return store_failed(store, what);
}

/* Runs a bound statement that returns no rows, then resets it. */
static int run_write(store_t *store, sqlite3_stmt *stmt, bool bind_failed, const char *what)
{
    int err;
    if (bind_failed) {
        err = store_failed(store, what);
    } else {
        err = step_result(store, sqlite3_step(stmt), what);
    }

    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return err;
}

/* Runs one of the parameterless control statements (BEGIN, COMMIT, ...). */
static int run_control(store_t *store, enum store_stmt id)
{
    return run_write(store, store->stmts[id], false, stmt_sql[id]);
}

static bool bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
    if (text == NULL || text[0] == '\0') {
        return sqlite3_bind_null(stmt, index) == SQLITE_OK;
    }
    return sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC) == SQLITE_OK;
}

static bool bind_blob(sqlite3_stmt *stmt, int index, const void *data, size_t len)
{
    if (data == NULL || len == 0) {
        return sqlite3_bind_null(stmt, index) == SQLITE_OK;
    }
    return sqlite3_bind_blob64(stmt, index, data, len, SQLITE_STATIC) == SQLITE_OK;
}

/* Copies a TEXT column (NULL reads as "") into a bounded buffer. */
static int column_text(sqlite3_stmt *stmt, int column, char *out, size_t size)
{
    const unsigned char *text = sqlite3_column_text(stmt, column);
    size_t len = (size_t)sqlite3_column_bytes(stmt, column);
    if (text == NULL) {
        out[0] = '\0';
        return LWM2MD_OK;
    }
    if (len >= size || strlen((const char *)text) != len) {
        return LWM2MD_ERR_INVALID;
    }
    memcpy(out, text, len + 1);
    return LWM2MD_OK;
}

/* Copies a BLOB column (NULL reads as empty) into a fresh heap buffer of at most max bytes. */
static int column_blob(sqlite3_stmt *stmt, int column, size_t max, uint8_t **out, size_t *len)
{
    const void *data = sqlite3_column_blob(stmt, column);
    size_t size = (size_t)sqlite3_column_bytes(stmt, column);
    *out = NULL;
    *len = 0;
    if (data == NULL || size == 0) {
        return LWM2MD_OK;
    }
    if (size > max) {
        return LWM2MD_ERR_INVALID;
    }

    *out = malloc(size);
    if (*out == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    memcpy(*out, data, size);
    *len = size;
    return LWM2MD_OK;
}

/* ---- opening ---- */

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(buf)) {
        return LWM2MD_ERR_INVALID;
    }
    memcpy(buf, path, len + 1);

    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            log_error("store: cannot create directory '%s' (%s)", buf, strerror(errno));
            return LWM2MD_ERR_IO;
        }
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        log_error("store: cannot create directory '%s' (%s)", buf, strerror(errno));
        return LWM2MD_ERR_IO;
    }

    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("store: data directory '%s' is not a directory", buf);
        return LWM2MD_ERR_IO;
    }
    return LWM2MD_OK;
}

/*
 * Creates the database file readable by its owner only, before SQLite does:
 * it holds PSKs. SQLite gives its -wal and -shm files the same mode.
 *
 * Only a missing file is created (O_EXCL). Opening and closing a file that
 * another connection of this process already has open would drop that
 * connection's POSIX advisory locks (close(2) releases every lock the
 * process holds on the file), and SQLite's WAL then goes wrong: another
 * process can take the file for the last user, checkpoint and remove the
 * WAL while this process still writes into it.
 */
static int create_private_file(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        return LWM2MD_OK;
    }
    if (fd < 0) {
        log_error("store: cannot create '%s' (%s)", path, strerror(errno));
        return LWM2MD_ERR_IO;
    }
    close(fd);
    return LWM2MD_OK;
}

/* Runs a PRAGMA that answers one row and returns its first column as text. */
static int pragma_text(store_t *store, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        return store_failed(store, sql);
    }

    int err = LWM2MD_OK;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        err = store_failed(store, sql);
    } else if (column_text(stmt, 0, out, size) != LWM2MD_OK) {
        log_error("store: %s answered an unexpected value", sql);
        err = LWM2MD_ERR_STORE;
    }
    sqlite3_finalize(stmt);
    return err;
}

static int exec_sql(store_t *store, const char *sql, const char *what)
{
    char *message = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &message) != SQLITE_OK) {
        log_error("store: %s failed (%s)", what, message != NULL ? message : "unknown");
        sqlite3_free(message);
        return LWM2MD_ERR_STORE;
    }
    return LWM2MD_OK;
}

/* WAL so that readers (the CLI) never block the server; NORMAL is durable across crashes. */
static int configure(store_t *store)
{
    if (sqlite3_extended_result_codes(store->db, 1) != SQLITE_OK ||
        sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        return store_failed(store, "configuration");
    }

    char mode[16];
    int err = pragma_text(store, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
    if (err != LWM2MD_OK) {
        return err;
    }
    if (strcmp(mode, "wal") != 0) {
        log_error("store: the database refused WAL mode (journal mode '%s')", mode);
        return LWM2MD_ERR_STORE;
    }
    return exec_sql(store, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    "configuration");
}

static int read_schema_version(store_t *store, int *version)
{
    char text[24];
    int err = pragma_text(store, "PRAGMA user_version", text, sizeof(text));
    if (err != LWM2MD_OK) {
        return err;
    }
    *version = atoi(text);
    return LWM2MD_OK;
}

/* Applies the steps from `from` to the current version; inside the caller's transaction. */
static int apply_schema_steps(store_t *store, int from)
{
    for (int version = from; version < STORE_SCHEMA_VERSION; version++) {
        int err = exec_sql(store, schema_steps[version], "schema upgrade");
        if (err != LWM2MD_OK) {
            return err;
        }

        char sql[48];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version + 1);
        err = exec_sql(store, sql, "schema upgrade");
        if (err != LWM2MD_OK) {
            return err;
        }
    }
    return LWM2MD_OK;
}

/* Creates the schema on first start, or upgrades it one version step at a time. */
static int upgrade_schema(store_t *store)
{
    int version = 0;
    int err = read_schema_version(store, &version);
    if (err != LWM2MD_OK || version == STORE_SCHEMA_VERSION) {
        return err;
    }

    /* Another process may be upgrading too: read again under the write lock. */
    err = exec_sql(store, "BEGIN IMMEDIATE", "schema upgrade");
    if (err != LWM2MD_OK) {
        return err;
    }
    err = read_schema_version(store, &version);
    if (err == LWM2MD_OK && version > STORE_SCHEMA_VERSION) {
        log_error("store: database schema version %d is newer than this lwm2md supports (%d)",
                  version, STORE_SCHEMA_VERSION);
        err = LWM2MD_ERR_UNSUPPORTED;
    }
    if (err == LWM2MD_OK) {
        err = apply_schema_steps(store, version);
    }

    if (err == LWM2MD_OK) {
        return exec_sql(store, "COMMIT", "schema upgrade");
    }
    exec_sql(store, "ROLLBACK", "schema rollback");
    return err;
}

static int prepare_statements(store_t *store)
{
    for (int i = 0; i < STMT_COUNT; i++) {
        int rc = sqlite3_prepare_v3(store->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &store->stmts[i], NULL);
        if (rc != SQLITE_OK) {
            return store_failed(store, "statement preparation");
        }
    }
    return LWM2MD_OK;
}

static int open_database(store_t *store, const char *path)
{
    int rc = sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        log_error("store: cannot open '%s' (%s)", path,
                  store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        return LWM2MD_ERR_STORE;
    }

    int err = configure(store);
    if (err == LWM2MD_OK) {
        err = upgrade_schema(store);
    }
    if (err == LWM2MD_OK) {
        err = prepare_statements(store);
    }
    return err;
}

int store_open(const char *data_dir, store_t **out)
{
    *out = NULL;
    int err = make_dirs(data_dir);
    if (err != LWM2MD_OK) {
        return err;
    }

    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", data_dir, STORE_FILE_NAME);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return LWM2MD_ERR_INVALID;
    }
    err = create_private_file(path);
    if (err != LWM2MD_OK) {
        return err;
    }

    store_t *store = calloc(1, sizeof(*store));
    if (store == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    err = open_database(store, path);
    if (err != LWM2MD_OK) {
        store_close(store);
        return err;
    }
    *out = store;
    return LWM2MD_OK;
}

void store_close(store_t *store)
{
    if (store == NULL) {
        return;
    }
    for (int i = 0; i < STMT_COUNT; i++) {
        sqlite3_finalize(store->stmts[i]);
    }
    if (sqlite3_close(store->db) != SQLITE_OK) {
        store_failed(store, "close");
    }
    free(store);
}

/* ---- transactions ---- */

/* A savepoint nests inside store_transaction() and works on its own too. */
static int savepoint_begin(store_t *store)
{
    return run_control(store, STMT_SAVEPOINT);
}

/* Releases the savepoint on success, undoes its changes otherwise. Returns err or a failure. */
static int savepoint_end(store_t *store, int err)
{
    if (err == LWM2MD_OK) {
        err = run_control(store, STMT_RELEASE);
        if (err == LWM2MD_OK) {
            return LWM2MD_OK;
        }
    }
    if (!sqlite3_get_autocommit(store->db)) {
        run_control(store, STMT_ROLLBACK_TO);
        run_control(store, STMT_RELEASE);
    }
    return err;
}

int store_transaction(store_t *store, int (*fn)(store_t *store, void *ctx), void *ctx)
{
    int err = run_control(store, STMT_BEGIN);
    if (err != LWM2MD_OK) {
        return err;
    }

    err = fn(store, ctx);
    if (err == LWM2MD_OK) {
        err = run_control(store, STMT_COMMIT);
    }

    /* A failed statement may already have ended the transaction. */
    if (err != LWM2MD_OK && !sqlite3_get_autocommit(store->db)) {
        run_control(store, STMT_ROLLBACK);
    }
    return err;
}

int store_data_version(store_t *store, int64_t *out)
{
    sqlite3_stmt *stmt = store->stmts[STMT_DATA_VERSION];
    int err = LWM2MD_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
    } else {
        err = store_failed(store, "data version");
    }
    sqlite3_reset(stmt);
    return err;
}

int store_devices_version(store_t *store, int64_t *out)
{
    sqlite3_stmt *stmt = store->stmts[STMT_DEVICES_VERSION];
    int err = LWM2MD_OK;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0);
    } else {
        err = store_failed(store, "devices version");
    }
    sqlite3_reset(stmt);
    return err;
}

/* ---- devices ---- */

static int sha256(const uint8_t *data, size_t len, uint8_t digest[STORE_SHA256_LEN])
{
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0) {
        log_error("store: sha-256 of a certificate failed");
        return LWM2MD_ERR_CRYPTO;
    }
    return LWM2MD_OK;
}

int store_device_add(store_t *store, const store_device_t *device)
{
    int err = device_validate(device);
    if (err != LWM2MD_OK) {
        return err;
    }
    uint8_t digest[STORE_SHA256_LEN];
    if (device->cert != NULL) {
        err = sha256(device->cert, device->cert_len, digest);
        if (err != LWM2MD_OK) {
            return err;
        }
    }

    sqlite3_stmt *stmt = store->stmts[STMT_DEVICE_INSERT];
    bool ok = sqlite3_bind_text(stmt, 1, device->endpoint, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 2, device->name, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_int(stmt, 3, (int)device->mode) == SQLITE_OK &&
              bind_text(stmt, 4, device->psk_identity) &&
              bind_blob(stmt, 5, device->psk_key, device->psk_key_len) &&
              bind_blob(stmt, 6, device->rpk, device->rpk_len) &&
              bind_blob(stmt, 7, device->cert, device->cert_len) &&
              bind_blob(stmt, 8, device->cert != NULL ? digest : NULL, sizeof(digest)) &&
              sqlite3_bind_int64(stmt, 9, (sqlite3_int64)time(NULL)) == SQLITE_OK;
    return run_write(store, stmt, !ok, "device insert");
}

/* Reads a device row (DEVICE_COLUMNS) and checks it as add would. */
static int device_from_row(sqlite3_stmt *stmt, store_device_t *out)
{
    memset(out, 0, sizeof(*out));
    int err = column_text(stmt, 0, out->endpoint, sizeof(out->endpoint));
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 1, out->name, sizeof(out->name));
    }
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 3, out->psk_identity, sizeof(out->psk_identity));
    }
    out->mode = (store_security_t)sqlite3_column_int(stmt, 2);

    size_t key_len = (size_t)sqlite3_column_bytes(stmt, 4);
    const void *key = sqlite3_column_blob(stmt, 4);
    if (err == LWM2MD_OK && key_len > sizeof(out->psk_key)) {
        err = LWM2MD_ERR_INVALID;
    } else if (err == LWM2MD_OK && key != NULL) {
        memcpy(out->psk_key, key, key_len);
        out->psk_key_len = key_len;
    }

    if (err == LWM2MD_OK) {
        err = column_blob(stmt, 5, STORE_RPK_MAX, &out->rpk, &out->rpk_len);
    }
    if (err == LWM2MD_OK) {
        err = column_blob(stmt, 6, STORE_CERT_MAX, &out->cert, &out->cert_len);
    }
    if (err == LWM2MD_OK) {
        err = device_validate(out);
    }
    if (err != LWM2MD_OK) {
        store_device_clear(out);
    }
    return err;
}

int store_device_get(store_t *store, const char *endpoint, store_device_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = store->stmts[STMT_DEVICE_SELECT];
    if (sqlite3_bind_text(stmt, 1, endpoint, -1, SQLITE_STATIC) != SQLITE_OK) {
        return run_write(store, stmt, true, "device lookup");
    }

    int err;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        err = device_from_row(stmt, out);
        if (err == LWM2MD_ERR_INVALID) {
            log_error("store: device '%s' has a malformed row", endpoint);
            err = LWM2MD_ERR_STORE;
        }
    } else if (rc == SQLITE_DONE) {
        err = LWM2MD_ERR_NOT_FOUND;
    } else {
        err = store_failed(store, "device lookup");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return err;
}

/* Deletes rows matching one text parameter; *changes counts them when not NULL. */
static int delete_by_text(store_t *store, enum store_stmt id, const char *key, int *changes)
{
    sqlite3_stmt *stmt = store->stmts[id];
    bool ok = sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) == SQLITE_OK;
    int err = run_write(store, stmt, !ok, stmt_sql[id]);
    if (err == LWM2MD_OK && changes != NULL) {
        *changes = sqlite3_changes(store->db);
    }
    return err;
}

int store_device_remove(store_t *store, const char *endpoint)
{
    int err = savepoint_begin(store);
    if (err != LWM2MD_OK) {
        return err;
    }

    /* No foreign key (unprovisioned endpoints may register): delete the registration here. */
    err = delete_by_text(store, STMT_REG_DELETE_ENDPOINT, endpoint, NULL);
    int changes = 0;
    if (err == LWM2MD_OK) {
        err = delete_by_text(store, STMT_DEVICE_DELETE, endpoint, &changes);
    }
    if (err == LWM2MD_OK && changes == 0) {
        err = LWM2MD_ERR_NOT_FOUND;
    }
    return savepoint_end(store, err);
}

int store_device_foreach(store_t *store, store_device_fn fn, void *ctx)
{
    sqlite3_stmt *stmt = store->stmts[STMT_DEVICE_ALL];
    int result = LWM2MD_OK;
    int rc = sqlite3_step(stmt);
    for (; result == LWM2MD_OK && rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
        store_device_t device;
        int err = device_from_row(stmt, &device);
        if (err == LWM2MD_ERR_INVALID) {
            log_warn("store: skipping a malformed device row");
            continue;
        }
        if (err != LWM2MD_OK) {
            result = err;
            break;
        }
        result = fn(&device, ctx);
        store_device_clear(&device);
    }
    if (result == LWM2MD_OK && rc != SQLITE_DONE) {
        result = store_failed(store, "device listing");
    }
    sqlite3_reset(stmt);
    return result;
}

/* ---- registrations ---- */

int store_registration_put(store_t *store, const store_registration_t *reg)
{
    int err = registration_validate(reg);
    if (err != LWM2MD_OK) {
        return err;
    }

    sqlite3_stmt *stmt = store->stmts[STMT_REG_PUT];
    bool ok = sqlite3_bind_text(stmt, 1, reg->id, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 2, reg->endpoint, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 3, reg->peer, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_int(stmt, 4, reg->secure ? 1 : 0) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 5, reg->version, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 6, reg->binding, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_text(stmt, 7, reg->sms, -1, SQLITE_STATIC) == SQLITE_OK &&
              sqlite3_bind_int(stmt, 8, reg->queue_mode ? 1 : 0) == SQLITE_OK &&
              sqlite3_bind_int64(stmt, 9, reg->lifetime) == SQLITE_OK &&
              sqlite3_bind_int64(stmt, 10, reg->registered_at) == SQLITE_OK &&
              sqlite3_bind_int64(stmt, 11, reg->updated_at) == SQLITE_OK &&
              sqlite3_bind_int64(stmt, 12, reg->expires_at) == SQLITE_OK &&
              bind_text(stmt, 13, reg->links);
    return run_write(store, stmt, !ok, "registration write");
}

int store_registration_delete(store_t *store, const char *id)
{
    int changes = 0;
    int err = delete_by_text(store, STMT_REG_DELETE, id, &changes);
    if (err == LWM2MD_OK && changes == 0) {
        err = LWM2MD_ERR_NOT_FOUND;
    }
    return err;
}

/* Reads a registration row (REG_COLUMNS) and checks it as put would. */
static int registration_from_row(sqlite3_stmt *stmt, store_registration_t *out)
{
    memset(out, 0, sizeof(*out));
    int err = column_text(stmt, 0, out->id, sizeof(out->id));
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 1, out->endpoint, sizeof(out->endpoint));
    }
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 2, out->peer, sizeof(out->peer));
    }
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 4, out->version, sizeof(out->version));
    }
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 5, out->binding, sizeof(out->binding));
    }
    if (err == LWM2MD_OK) {
        err = column_text(stmt, 6, out->sms, sizeof(out->sms));
    }
    out->secure = sqlite3_column_int(stmt, 3) != 0;
    out->queue_mode = sqlite3_column_int(stmt, 7) != 0;
    sqlite3_int64 lifetime = sqlite3_column_int64(stmt, 8);
    out->lifetime = lifetime < 0 || lifetime > UINT32_MAX ? 0 : (uint32_t)lifetime;
    out->registered_at = sqlite3_column_int64(stmt, 9);
    out->updated_at = sqlite3_column_int64(stmt, 10);
    out->expires_at = sqlite3_column_int64(stmt, 11);

    const unsigned char *links = sqlite3_column_text(stmt, 12);
    if (err == LWM2MD_OK && links != NULL) {
        out->links = strdup((const char *)links);
        err = out->links == NULL ? LWM2MD_ERR_NOMEM : LWM2MD_OK;
    }
    if (err == LWM2MD_OK) {
        err = registration_validate(out);
    }
    if (err != LWM2MD_OK) {
        store_registration_clear(out);
    }
    return err;
}

int store_registration_get(store_t *store, const char *endpoint, store_registration_t *out)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *stmt = store->stmts[STMT_REG_SELECT];
    if (sqlite3_bind_text(stmt, 1, endpoint, -1, SQLITE_STATIC) != SQLITE_OK) {
        return run_write(store, stmt, true, "registration lookup");
    }

    int err;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        err = registration_from_row(stmt, out);
        if (err == LWM2MD_ERR_INVALID) {
            log_error("store: the registration of '%s' has a malformed row", endpoint);
            err = LWM2MD_ERR_STORE;
        }
    } else if (rc == SQLITE_DONE) {
        err = LWM2MD_ERR_NOT_FOUND;
    } else {
        err = store_failed(store, "registration lookup");
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return err;
}

int store_registration_foreach(store_t *store, store_registration_fn fn, void *ctx)
{
    sqlite3_stmt *stmt = store->stmts[STMT_REG_ALL];
    int result = LWM2MD_OK;
    int rc = sqlite3_step(stmt);
    for (; result == LWM2MD_OK && rc == SQLITE_ROW; rc = sqlite3_step(stmt)) {
        store_registration_t reg;
        int err = registration_from_row(stmt, &reg);
        if (err == LWM2MD_ERR_INVALID) {
            log_warn("store: skipping a malformed registration row");
            continue;
        }
        if (err != LWM2MD_OK) {
            result = err;
            break;
        }
        result = fn(&reg, ctx);
        store_registration_clear(&reg);
    }
    if (result == LWM2MD_OK && rc != SQLITE_DONE) {
        result = store_failed(store, "registration listing");
    }
    sqlite3_reset(stmt);
    return result;
}
