/* Tests of the SQLite store and its writer thread, on real files in temporary directories. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "store/store.h"
#include "store/writer.h"

typedef struct fixture {
    char dir[64];
    char data_dir[96]; /* a not yet existing subdirectory, so open must create it */
    store_t *store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/lwm2md-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->data_dir, sizeof(f->data_dir), "%s/a/b", f->dir);
    assert_int_equal(store_open(f->data_dir, &f->store), LWM2MD_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->store);
    char command[160];
    snprintf(command, sizeof(command), "rm -rf '%s'", f->dir);
    assert_int_equal(system(command), 0);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static store_device_t nosec_device(const char *endpoint)
{
    store_device_t device;
    memset(&device, 0, sizeof(device));
    snprintf(device.endpoint, sizeof(device.endpoint), "%s", endpoint);
    device.mode = STORE_SECURITY_NOSEC;
    return device;
}

static store_device_t psk_device(const char *endpoint, const char *identity, uint8_t fill)
{
    store_device_t device = nosec_device(endpoint);
    device.mode = STORE_SECURITY_PSK;
    snprintf(device.psk_identity, sizeof(device.psk_identity), "%s", identity);
    memset(device.psk_key, fill, 16);
    device.psk_key_len = 16;
    return device;
}

/* The device borrows `key`. */
static store_device_t rpk_device(const char *endpoint, uint8_t *key, size_t len)
{
    store_device_t device = nosec_device(endpoint);
    device.mode = STORE_SECURITY_RPK;
    device.rpk = key;
    device.rpk_len = len;
    return device;
}

static store_registration_t registration(const char *id, const char *endpoint)
{
    store_registration_t reg;
    memset(&reg, 0, sizeof(reg));
    snprintf(reg.id, sizeof(reg.id), "%s", id);
    snprintf(reg.endpoint, sizeof(reg.endpoint), "%s", endpoint);
    snprintf(reg.peer, sizeof(reg.peer), "127.0.0.1:5683");
    snprintf(reg.version, sizeof(reg.version), "1.1");
    snprintf(reg.binding, sizeof(reg.binding), "U");
    reg.lifetime = 300;
    reg.registered_at = 1700000000;
    reg.updated_at = 1700000100;
    reg.expires_at = 1700000400;
    reg.links = "</1/0>,</3/0>";
    return reg;
}

static int count_device(const store_device_t *device, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

static int count_registration(const store_registration_t *reg, void *ctx)
{
    (*(int *)ctx)++;
    return 0;
}

static int device_count(store_t *store)
{
    int count = 0;
    assert_int_equal(store_device_foreach(store, count_device, &count), 0);
    return count;
}

static int registration_count(store_t *store)
{
    int count = 0;
    assert_int_equal(store_registration_foreach(store, count_registration, &count), 0);
    return count;
}

/* Runs one SQL query answering an integer on a separate raw connection. */
static int64_t query_int(const fixture_t *f, const char *sql)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->data_dir, STORE_FILE_NAME);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    int64_t value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
}

/* ---- opening ---- */

static void test_open_creates_private_dir_and_schema(void **state)
{
    fixture_t *f = *state;
    struct stat st;
    assert_int_equal(stat(f->data_dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->data_dir, STORE_FILE_NAME);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);

    assert_int_equal(query_int(f, "PRAGMA user_version"), 2);
    assert_int_equal(query_int(f, "SELECT count(*) FROM sqlite_master WHERE name = 'devices'"), 1);
    assert_int_equal(
        query_int(f, "SELECT count(*) FROM sqlite_master WHERE name = 'registrations'"), 1);
}

static void test_open_uses_wal(void **state)
{
    fixture_t *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->data_dir, STORE_FILE_NAME);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

static void test_open_refuses_newer_schema(void **state)
{
    fixture_t *f = *state;
    store_close(f->store);
    f->store = NULL;

    char path[160];
    snprintf(path, sizeof(path), "%s/%s", f->data_dir, STORE_FILE_NAME);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    store_t *store = NULL;
    assert_int_equal(store_open(f->data_dir, &store), LWM2MD_ERR_UNSUPPORTED);
    assert_null(store);
}

static void test_open_refuses_a_file_as_dir(void **state)
{
    fixture_t *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/plainfile", f->dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);

    store_t *store = NULL;
    assert_int_equal(store_open(path, &store), LWM2MD_ERR_IO);
    assert_null(store);
    assert_int_equal(store_open("", &store), LWM2MD_ERR_INVALID);
}

/* ---- devices ---- */

static void test_device_nosec_roundtrip(void **state)
{
    fixture_t *f = *state;
    store_device_t device = nosec_device("sensor-1");
    snprintf(device.name, sizeof(device.name), "Boiler room");
    assert_int_equal(store_device_add(f->store, &device), 0);

    store_device_t got;
    assert_int_equal(store_device_get(f->store, "sensor-1", &got), 0);
    assert_string_equal(got.endpoint, "sensor-1");
    assert_string_equal(got.name, "Boiler room");
    assert_int_equal(got.mode, STORE_SECURITY_NOSEC);
    assert_int_equal(got.psk_key_len, 0);
    assert_null(got.rpk);
    assert_null(got.cert);
    store_device_clear(&got);

    assert_int_equal(store_device_get(f->store, "sensor-2", &got), LWM2MD_ERR_NOT_FOUND);
}

static void test_device_psk_roundtrip(void **state)
{
    fixture_t *f = *state;
    store_device_t device = psk_device("psk-1", "id:with:colons", 0xab);
    assert_int_equal(store_device_add(f->store, &device), 0);

    store_device_t got;
    assert_int_equal(store_device_get(f->store, "psk-1", &got), 0);
    assert_int_equal(got.mode, STORE_SECURITY_PSK);
    assert_string_equal(got.psk_identity, "id:with:colons");
    assert_int_equal(got.psk_key_len, 16);
    assert_memory_equal(got.psk_key, device.psk_key, 16);
    store_device_clear(&got);
}

static void test_device_rpk_and_x509_roundtrip(void **state)
{
    fixture_t *f = *state;
    uint8_t key[91];
    memset(key, 0x42, sizeof(key));
    store_device_t device = rpk_device("rpk-1", key, sizeof(key));
    assert_int_equal(store_device_add(f->store, &device), 0);

    uint8_t cert[700];
    memset(cert, 0x30, sizeof(cert));
    store_device_t pinned = nosec_device("x509-pinned");
    pinned.mode = STORE_SECURITY_X509;
    pinned.cert = cert;
    pinned.cert_len = sizeof(cert);
    assert_int_equal(store_device_add(f->store, &pinned), 0);
    store_device_t by_ca = nosec_device("x509-ca");
    by_ca.mode = STORE_SECURITY_X509;
    assert_int_equal(store_device_add(f->store, &by_ca), 0);

    store_device_t got;
    assert_int_equal(store_device_get(f->store, "rpk-1", &got), 0);
    assert_int_equal(got.mode, STORE_SECURITY_RPK);
    assert_int_equal(got.rpk_len, sizeof(key));
    assert_memory_equal(got.rpk, key, sizeof(key));
    store_device_clear(&got);

    assert_int_equal(store_device_get(f->store, "x509-pinned", &got), 0);
    assert_int_equal(got.mode, STORE_SECURITY_X509);
    assert_int_equal(got.cert_len, sizeof(cert));
    assert_memory_equal(got.cert, cert, sizeof(cert));
    store_device_clear(&got);

    assert_int_equal(store_device_get(f->store, "x509-ca", &got), 0);
    assert_int_equal(got.mode, STORE_SECURITY_X509);
    assert_null(got.cert);
    store_device_clear(&got);
    assert_int_equal(device_count(f->store), 3);
}

static void test_device_uniqueness(void **state)
{
    fixture_t *f = *state;
    store_device_t a = psk_device("a", "shared-id", 1);
    assert_int_equal(store_device_add(f->store, &a), 0);

    /* Same endpoint, any mode. */
    store_device_t same_endpoint = nosec_device("a");
    assert_int_equal(store_device_add(f->store, &same_endpoint), LWM2MD_ERR_EXISTS);

    /* Same PSK identity on another endpoint. */
    store_device_t same_identity = psk_device("b", "shared-id", 2);
    assert_int_equal(store_device_add(f->store, &same_identity), LWM2MD_ERR_EXISTS);

    /* Same RPK on another endpoint. */
    uint8_t key[65];
    memset(key, 7, sizeof(key));
    store_device_t r1 = rpk_device("r1", key, sizeof(key));
    store_device_t r2 = rpk_device("r2", key, sizeof(key));
    assert_int_equal(store_device_add(f->store, &r1), 0);
    assert_int_equal(store_device_add(f->store, &r2), LWM2MD_ERR_EXISTS);

    /* Same pinned certificate on another endpoint. */
    uint8_t cert[300];
    memset(cert, 9, sizeof(cert));
    store_device_t c1 = nosec_device("c1");
    c1.mode = STORE_SECURITY_X509;
    c1.cert = cert;
    c1.cert_len = sizeof(cert);
    store_device_t c2 = c1;
    snprintf(c2.endpoint, sizeof(c2.endpoint), "c2");
    assert_int_equal(store_device_add(f->store, &c1), 0);
    assert_int_equal(store_device_add(f->store, &c2), LWM2MD_ERR_EXISTS);

    /* Nothing of the refused adds was stored. */
    assert_int_equal(device_count(f->store), 3);
    store_device_t got;
    assert_int_equal(store_device_get(f->store, "a", &got), 0);
    assert_int_equal(got.mode, STORE_SECURITY_PSK);
    store_device_clear(&got);
}

static void test_device_validation(void **state)
{
    fixture_t *f = *state;
    store_device_t device = nosec_device("");
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    device = nosec_device("tab\there");
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    /* The longest endpoint fits; the struct cannot hold a longer one unterminated. */
    device = nosec_device("");
    memset(device.endpoint, 'e', STORE_ENDPOINT_MAX);
    assert_int_equal(store_device_add(f->store, &device), 0);
    memset(device.endpoint, 'e', sizeof(device.endpoint));
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    device = nosec_device("n");
    snprintf(device.name, sizeof(device.name), "bad\nname");
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    device = psk_device("p", "", 1);
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);
    device = psk_device("p", "id", 1);
    device.psk_key_len = 0;
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);
    device.psk_key_len = STORE_PSK_KEY_MAX + 1;
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    /* Fields of another mode must be empty. */
    device = nosec_device("q");
    snprintf(device.psk_identity, sizeof(device.psk_identity), "stray");
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);
    uint8_t key[4] = {1, 2, 3, 4};
    device = rpk_device("r", NULL, 0);
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);
    device = psk_device("r", "id2", 1);
    device.rpk = key;
    device.rpk_len = sizeof(key);
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);
    device = nosec_device("s");
    device.mode = (store_security_t)7;
    assert_int_equal(store_device_add(f->store, &device), LWM2MD_ERR_INVALID);

    /* Spaces and UTF-8 are allowed in endpoints, as the registration interface allows them. */
    device = nosec_device("urn:dev:ops:caf\xc3\xa9 1");
    assert_int_equal(store_device_add(f->store, &device), 0);
    assert_int_equal(device_count(f->store), 2);
}

static void test_device_remove_also_removes_registration(void **state)
{
    fixture_t *f = *state;
    store_device_t device = nosec_device("gone");
    assert_int_equal(store_device_add(f->store, &device), 0);
    store_registration_t reg = registration("R1", "gone");
    assert_int_equal(store_registration_put(f->store, &reg), 0);
    store_registration_t other = registration("R2", "unprovisioned");
    assert_int_equal(store_registration_put(f->store, &other), 0);

    assert_int_equal(store_device_remove(f->store, "gone"), 0);
    store_device_t got;
    assert_int_equal(store_device_get(f->store, "gone", &got), LWM2MD_ERR_NOT_FOUND);
    store_registration_t got_reg;
    assert_int_equal(store_registration_get(f->store, "gone", &got_reg), LWM2MD_ERR_NOT_FOUND);
    assert_int_equal(registration_count(f->store), 1);

    assert_int_equal(store_device_remove(f->store, "gone"), LWM2MD_ERR_NOT_FOUND);
    /* A registration alone is not a device. */
    assert_int_equal(store_device_remove(f->store, "unprovisioned"), LWM2MD_ERR_NOT_FOUND);
    assert_int_equal(registration_count(f->store), 1);
}

static int collect_endpoints(const store_device_t *device, void *ctx)
{
    char *out = ctx;
    strcat(out, device->endpoint);
    strcat(out, ",");
    return 0;
}

static int stop_at_second(const store_device_t *device, void *ctx)
{
    int *seen = ctx;
    (*seen)++;
    return *seen == 2 ? 42 : 0;
}

static void test_device_foreach_order_and_stop(void **state)
{
    fixture_t *f = *state;
    const char *names[] = {"c", "a", "b"};
    for (size_t i = 0; i < 3; i++) {
        store_device_t device = nosec_device(names[i]);
        assert_int_equal(store_device_add(f->store, &device), 0);
    }

    char order[32] = "";
    assert_int_equal(store_device_foreach(f->store, collect_endpoints, order), 0);
    assert_string_equal(order, "a,b,c,");

    int seen = 0;
    assert_int_equal(store_device_foreach(f->store, stop_at_second, &seen), 42);
    assert_int_equal(seen, 2);

    /* The walk restarts cleanly after a stop. */
    assert_int_equal(device_count(f->store), 3);
}

/* ---- registrations ---- */

static void test_registration_roundtrip(void **state)
{
    fixture_t *f = *state;
    store_registration_t reg = registration("AbC123", "sensor-1");
    reg.secure = true;
    reg.queue_mode = true;
    snprintf(reg.sms, sizeof(reg.sms), "+15551234");
    assert_int_equal(store_registration_put(f->store, &reg), 0);

    store_registration_t got;
    assert_int_equal(store_registration_get(f->store, "sensor-1", &got), 0);
    assert_string_equal(got.id, "AbC123");
    assert_string_equal(got.endpoint, "sensor-1");
    assert_string_equal(got.peer, "127.0.0.1:5683");
    assert_true(got.secure);
    assert_true(got.queue_mode);
    assert_string_equal(got.version, "1.1");
    assert_string_equal(got.binding, "U");
    assert_string_equal(got.sms, "+15551234");
    assert_int_equal(got.lifetime, 300);
    assert_int_equal(got.registered_at, 1700000000);
    assert_int_equal(got.updated_at, 1700000100);
    assert_int_equal(got.expires_at, 1700000400);
    assert_string_equal(got.links, "</1/0>,</3/0>");
    store_registration_clear(&got);

    reg.links = NULL;
    assert_int_equal(store_registration_put(f->store, &reg), 0);
    assert_int_equal(store_registration_get(f->store, "sensor-1", &got), 0);
    assert_null(got.links);
    store_registration_clear(&got);
}

static void test_registration_put_replaces_by_endpoint(void **state)
{
    fixture_t *f = *state;
    store_registration_t first = registration("first", "ep");
    assert_int_equal(store_registration_put(f->store, &first), 0);
    store_registration_t second = registration("second", "ep");
    second.lifetime = 60;
    assert_int_equal(store_registration_put(f->store, &second), 0);

    assert_int_equal(registration_count(f->store), 1);
    store_registration_t got;
    assert_int_equal(store_registration_get(f->store, "ep", &got), 0);
    assert_string_equal(got.id, "second");
    assert_int_equal(got.lifetime, 60);
    store_registration_clear(&got);

    /* The old id is gone: deleting it finds nothing. */
    assert_int_equal(store_registration_delete(f->store, "first"), LWM2MD_ERR_NOT_FOUND);
    assert_int_equal(store_registration_delete(f->store, "second"), 0);
    assert_int_equal(registration_count(f->store), 0);
}

static void test_registration_validation(void **state)
{
    fixture_t *f = *state;
    store_registration_t reg = registration("", "ep");
    assert_int_equal(store_registration_put(f->store, &reg), LWM2MD_ERR_INVALID);
    reg = registration("id", "");
    assert_int_equal(store_registration_put(f->store, &reg), LWM2MD_ERR_INVALID);
    reg = registration("id with space", "ep");
    assert_int_equal(store_registration_put(f->store, &reg), LWM2MD_ERR_INVALID);
    reg = registration("id", "ep");
    snprintf(reg.peer, sizeof(reg.peer), "bad\x1b[31m");
    assert_int_equal(store_registration_put(f->store, &reg), LWM2MD_ERR_INVALID);
    reg = registration("id", "ep");
    memset(reg.version, '1', sizeof(reg.version));
    assert_int_equal(store_registration_put(f->store, &reg), LWM2MD_ERR_INVALID);
    assert_int_equal(registration_count(f->store), 0);
}

static int add_then_fail(store_t *store, void *ctx)
{
    store_device_t device = nosec_device("in-transaction");
    assert_int_equal(store_device_add(store, &device), 0);
    return *(int *)ctx;
}

static void test_transaction_commit_and_rollback(void **state)
{
    fixture_t *f = *state;
    int result = LWM2MD_ERR_INVALID;
    assert_int_equal(store_transaction(f->store, add_then_fail, &result), LWM2MD_ERR_INVALID);
    assert_int_equal(device_count(f->store), 0);

    result = 0;
    assert_int_equal(store_transaction(f->store, add_then_fail, &result), 0);
    assert_int_equal(device_count(f->store), 1);
}

/* ---- data version and persistence ---- */

static void test_data_version_sees_other_connection(void **state)
{
    fixture_t *f = *state;
    int64_t before = 0;
    int64_t again = 0;
    assert_int_equal(store_data_version(f->store, &before), 0);
    assert_int_equal(store_data_version(f->store, &again), 0);
    assert_int_equal(before, again);

    store_t *other = NULL;
    assert_int_equal(store_open(f->data_dir, &other), 0);
    store_device_t device = nosec_device("from-cli");
    assert_int_equal(store_device_add(other, &device), 0);
    store_close(other);

    int64_t after = 0;
    assert_int_equal(store_data_version(f->store, &after), 0);
    assert_true(after != before);

    store_device_t got;
    assert_int_equal(store_device_get(f->store, "from-cli", &got), 0);
    store_device_clear(&got);
}

static void test_devices_version_moves_only_for_devices(void **state)
{
    fixture_t *f = *state;
    int64_t start = 0;
    assert_int_equal(store_devices_version(f->store, &start), 0);

    /* A registration write leaves it alone. */
    store_registration_t reg = registration("reg-1", "anyone");
    assert_int_equal(store_registration_put(f->store, &reg), 0);
    int64_t after_reg = 0;
    assert_int_equal(store_devices_version(f->store, &after_reg), 0);
    assert_int_equal(after_reg, start);

    /* Adding and removing a device, from another connection, moves it. */
    store_t *other = NULL;
    assert_int_equal(store_open(f->data_dir, &other), 0);
    store_device_t device = nosec_device("counted");
    assert_int_equal(store_device_add(other, &device), 0);
    int64_t after_add = 0;
    assert_int_equal(store_devices_version(f->store, &after_add), 0);
    assert_true(after_add > start);
    assert_int_equal(store_device_remove(other, "counted"), 0);
    store_close(other);
    int64_t after_remove = 0;
    assert_int_equal(store_devices_version(f->store, &after_remove), 0);
    assert_true(after_remove > after_add);
}

static void test_reopen_persists(void **state)
{
    fixture_t *f = *state;
    store_device_t device = psk_device("kept", "kept-id", 5);
    assert_int_equal(store_device_add(f->store, &device), 0);
    store_registration_t reg = registration("kept-reg", "kept");
    assert_int_equal(store_registration_put(f->store, &reg), 0);
    store_close(f->store);

    assert_int_equal(store_open(f->data_dir, &f->store), 0);
    store_device_t got;
    assert_int_equal(store_device_get(f->store, "kept", &got), 0);
    assert_string_equal(got.psk_identity, "kept-id");
    store_device_clear(&got);
    store_registration_t got_reg;
    assert_int_equal(store_registration_get(f->store, "kept", &got_reg), 0);
    assert_string_equal(got_reg.id, "kept-reg");
    store_registration_clear(&got_reg);
    assert_int_equal(query_int(f, "PRAGMA user_version"), 2);
}

/* ---- writer ---- */

static void test_writer_puts_and_deletes(void **state)
{
    fixture_t *f = *state;
    store_writer_t *writer = NULL;
    assert_int_equal(store_writer_start(f->data_dir, 64, &writer), 0);

    for (int i = 0; i < 50; i++) {
        char id[16];
        char endpoint[16];
        snprintf(id, sizeof(id), "id%d", i);
        snprintf(endpoint, sizeof(endpoint), "ep%d", i);
        store_registration_t reg = registration(id, endpoint);
        assert_int_equal(store_writer_put_registration(writer, &reg), 0);
    }
    assert_int_equal(store_writer_delete_registration(writer, "id7"), 0);
    /* An unknown id is not an error for the writer. */
    assert_int_equal(store_writer_delete_registration(writer, "never-was"), 0);
    store_writer_flush(writer);

    assert_int_equal(registration_count(f->store), 49);
    store_registration_t got;
    assert_int_equal(store_registration_get(f->store, "ep3", &got), 0);
    assert_string_equal(got.links, "</1/0>,</3/0>");
    store_registration_clear(&got);
    assert_int_equal(store_registration_get(f->store, "ep7", &got), LWM2MD_ERR_NOT_FOUND);

    assert_int_equal(store_writer_delete_registration(writer, ""), LWM2MD_ERR_INVALID);
    store_writer_stop(writer);
}

/* Holds the write lock while queueing, so the writer thread cannot drain. */
typedef struct writer_fill {
    store_writer_t *writer;
    int accepted;
    int refused;
} writer_fill_t;

static int fill_while_locked(store_t *store, void *ctx)
{
    writer_fill_t *fill = ctx;
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof(id), "full%d", i);
        store_registration_t reg = registration(id, id);
        int err = store_writer_put_registration(fill->writer, &reg);
        if (err == 0) {
            fill->accepted++;
        } else {
            assert_int_equal(err, LWM2MD_ERR_FULL);
            fill->refused++;
        }
    }
    return 0;
}

static void test_writer_queue_is_bounded(void **state)
{
    fixture_t *f = *state;
    writer_fill_t fill = {0};
    assert_int_equal(store_writer_start(f->data_dir, 4, &fill.writer), 0);

    /* At most 4 queued plus 4 taken by the blocked thread: 9 cannot all fit. */
    assert_int_equal(store_transaction(f->store, fill_while_locked, &fill), 0);
    assert_true(fill.refused >= 1);
    assert_true(fill.accepted >= 4);

    store_writer_flush(fill.writer);
    assert_int_equal(registration_count(f->store), fill.accepted);
    store_writer_stop(fill.writer);
}

static void test_writer_stop_drains(void **state)
{
    fixture_t *f = *state;
    store_writer_t *writer = NULL;
    assert_int_equal(store_writer_start(f->data_dir, 1000, &writer), 0);
    for (int i = 0; i < 500; i++) {
        char id[16];
        snprintf(id, sizeof(id), "d%d", i);
        store_registration_t reg = registration(id, id);
        assert_int_equal(store_writer_put_registration(writer, &reg), 0);
    }
    store_writer_stop(writer);
    assert_int_equal(registration_count(f->store), 500);
}

static void test_writer_survives_bad_op(void **state)
{
    fixture_t *f = *state;
    store_writer_t *writer = NULL;
    assert_int_equal(store_writer_start(f->data_dir, 16, &writer), 0);

    store_registration_t good = registration("good", "good-ep");
    store_registration_t bad = registration("bad", "bad\x01endpoint");
    store_registration_t after = registration("after", "after-ep");
    assert_int_equal(store_writer_put_registration(writer, &good), 0);
    assert_int_equal(store_writer_put_registration(writer, &bad), 0);
    assert_int_equal(store_writer_put_registration(writer, &after), 0);
    store_writer_flush(writer);

    assert_int_equal(registration_count(f->store), 2);
    store_writer_stop(writer);
}

static void test_writer_start_fails_on_bad_dir(void **state)
{
    fixture_t *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/file", f->dir);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fclose(file);

    store_writer_t *writer = NULL;
    assert_int_equal(store_writer_start(path, 8, &writer), LWM2MD_ERR_IO);
    assert_null(writer);
    assert_int_equal(store_writer_start(f->data_dir, 0, &writer), LWM2MD_ERR_INVALID);
}

static void test_security_names(void **state)
{
    assert_string_equal(store_security_name(STORE_SECURITY_NOSEC), "nosec");
    assert_string_equal(store_security_name(STORE_SECURITY_PSK), "psk");
    assert_string_equal(store_security_name(STORE_SECURITY_RPK), "rpk");
    assert_string_equal(store_security_name(STORE_SECURITY_X509), "x509");
}

#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_TEST(test_open_creates_private_dir_and_schema),
        STORE_TEST(test_open_uses_wal),
        STORE_TEST(test_open_refuses_newer_schema),
        STORE_TEST(test_open_refuses_a_file_as_dir),
        STORE_TEST(test_device_nosec_roundtrip),
        STORE_TEST(test_device_psk_roundtrip),
        STORE_TEST(test_device_rpk_and_x509_roundtrip),
        STORE_TEST(test_device_uniqueness),
        STORE_TEST(test_device_validation),
        STORE_TEST(test_device_remove_also_removes_registration),
        STORE_TEST(test_device_foreach_order_and_stop),
        STORE_TEST(test_registration_roundtrip),
        STORE_TEST(test_registration_put_replaces_by_endpoint),
        STORE_TEST(test_registration_validation),
        STORE_TEST(test_transaction_commit_and_rollback),
        STORE_TEST(test_data_version_sees_other_connection),
        STORE_TEST(test_devices_version_moves_only_for_devices),
        STORE_TEST(test_reopen_persists),
        STORE_TEST(test_writer_puts_and_deletes),
        STORE_TEST(test_writer_queue_is_bounded),
        STORE_TEST(test_writer_stop_drains),
        STORE_TEST(test_writer_survives_bad_op),
        STORE_TEST(test_writer_start_fails_on_bad_dir),
        cmocka_unit_test(test_security_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
