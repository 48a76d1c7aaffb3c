/* `lwm2md device ...`: provision, list, inspect and remove devices in the store. */
#include "main/cli.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "dtls/credentials.h"
#include "store/store.h"

#define CLI_MESSAGE_MAX 512
#define CLI_OPERANDS_MAX 2
#define CLI_SHA256_LEN 32

/* ---- usage texts ---- */

static const char device_usage[] =
    "Usage: lwm2md device COMMAND [ARGUMENTS]\n"
    "\n"
    "Manages the devices allowed to register, in the store under LWM2MD_DATA_DIR.\n"
    "A running server picks the changes up by itself.\n"
    "\n"
    "Commands:\n"
    "  add ENDPOINT MODE [--name NAME]  provision a device with one credential\n"
    "  list                             one line per device and its registration\n"
    "  show ENDPOINT                    the details of one device\n"
    "  remove ENDPOINT                  delete a device and its registration\n"
    "\n"
    "'lwm2md device COMMAND --help' describes a command.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const char add_usage[] =
    "Usage: lwm2md device add ENDPOINT (--nosec | --psk IDENTITY:HEXKEY | --rpk FILE |\n"
    "                                   --x509 [--cert FILE]) [--name NAME]\n"
    "\n"
    "Provisions the device whose LwM2M endpoint client name is ENDPOINT (1 to 256\n"
    "bytes, no control characters) with exactly one credential:\n"
    "  --nosec                no security; the device registers on the NoSec port only\n"
    "  --psk IDENTITY:HEXKEY  a pre-shared key: the identity (1 to 128 bytes, may hold\n"
    "                         ':') and, after the last ':', the key as 2 to 128 hex\n"
    "                         digits (1 to 64 bytes)\n"
    "  --rpk FILE             a raw public key: an EC public key or a certificate\n"
    "                         holding one, PEM or DER\n"
    "  --x509                 a certificate: any one issued by a trusted CA whose CN\n"
    "                         is ENDPOINT, or with --cert FILE exactly that\n"
    "                         certificate (PEM or DER)\n"
    "  --name NAME            a display name (at most 256 bytes)\n"
    "\n"
    "An endpoint, a PSK identity, a public key and a pinned certificate each belong\n"
    "to one device only. The key is never printed; note that while the command runs,\n"
    "its arguments are visible to other local users in the process list.\n";

static const char list_usage[] =
    "Usage: lwm2md device list\n"
    "\n"
    "Prints one line per device in endpoint order, in aligned columns:\n"
    "  ENDPOINT  SECURITY  STATUS\n"
    "SECURITY is nosec, psk, rpk or x509. STATUS is 'not registered' or\n"
    "  registered id=ID peer=ADDRESS:PORT left=SECONDSs lwm2m=VERSION\n"
    "where left is the time before the registration expires. An endpoint that\n"
    "registered without being provisioned (LWM2MD_ALLOW_UNKNOWN_NOSEC) is listed\n"
    "too, with '(unprovisioned)' at the end of its line. Prints nothing when there\n"
    "is no device.\n";

static const char show_usage[] =
    "Usage: lwm2md device show ENDPOINT\n"
    "\n"
    "Prints 'key: value' lines: the endpoint, name and security mode, the PSK\n"
    "identity and key length, or the SHA-256 fingerprint of the public key or of\n"
    "the pinned certificate, then the registration: id, peer, transport, LwM2M\n"
    "version, binding, queue mode, lifetime, times (UTC) and object links.\n";

static const char remove_usage[] =
    "Usage: lwm2md device remove ENDPOINT\n"
    "\n"
    "Deletes the device and its registration. The device can no longer register;\n"
    "a running server drops its registration.\n";

/* ---- argument parsing ---- */

typedef struct cli_option {
    const char *name; /* without the leading "--" */
    bool has_value;
    bool seen;
    char *value; /* points into argv, so that a key in it can be wiped */
} cli_option_t;

/* What a subcommand accepts, and what was given. */
typedef struct cli_args {
    const char *command; /* "add", for messages */
    cli_option_t *options;
    size_t option_count;
    size_t operand_max;
    const char *operands[CLI_OPERANDS_MAX];
    size_t operand_count;
} cli_args_t;

typedef enum cli_parse {
    CLI_PARSE_OK,
    CLI_PARSE_HELP,
    CLI_PARSE_ERROR,
} cli_parse_t;

/* Prints one usage error line on stderr; returns CLI_EXIT_USAGE. */
static int usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *command, const char *fmt, ...)
{
    fprintf(stderr, "lwm2md device%s%s: ", command != NULL ? " " : "",
            command != NULL ? command : "");
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, " (see 'lwm2md device%s%s --help')\n", command != NULL ? " " : "",
            command != NULL ? command : "");
    return CLI_EXIT_USAGE;
}

static cli_option_t *find_option(cli_args_t *args, const char *name, size_t len)
{
    for (size_t i = 0; i < args->option_count; i++) {
        cli_option_t *option = &args->options[i];
        if (strlen(option->name) == len && strncmp(option->name, name, len) == 0) {
            return option;
        }
    }
    return NULL;
}

/* Parses the option at argv[*index] ("--name", "--name=value" or "--name value"). */
static cli_parse_t parse_option(cli_args_t *args, int argc, char **argv, int *index)
{
    char *arg = argv[*index];
    const char *name = arg + 2;
    char *equals = strchr(arg + 2, '=');
    size_t len = equals != NULL ? (size_t)(equals - name) : strlen(name);
    cli_option_t *option = arg[1] == '-' ? find_option(args, name, len) : NULL;
    if (option == NULL) {
        usage_error(args->command, "unknown option '%.*s'", (int)(len + 2), arg);
        return CLI_PARSE_ERROR;
    }
    if (option->seen) {
        usage_error(args->command, "option '--%s' given twice", option->name);
        return CLI_PARSE_ERROR;
    }

    option->seen = true;
    if (!option->has_value) {
        if (equals != NULL) {
            usage_error(args->command, "option '--%s' takes no value", option->name);
            return CLI_PARSE_ERROR;
        }
        return CLI_PARSE_OK;
    }
    if (equals != NULL) {
        option->value = equals + 1;
        return CLI_PARSE_OK;
    }
    if (*index + 1 >= argc) {
        usage_error(args->command, "option '--%s' needs a value", option->name);
        return CLI_PARSE_ERROR;
    }
    *index += 1;
    option->value = argv[*index];
    return CLI_PARSE_OK;
}

/* Parses argv[1..] (argv[0] is the subcommand). "--" ends the options. */
static cli_parse_t parse_args(cli_args_t *args, int argc, char **argv)
{
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            return CLI_PARSE_HELP;
        }
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            cli_parse_t result = parse_option(args, argc, argv, &i);
            if (result != CLI_PARSE_OK) {
                return result;
            }
            continue;
        }
        if (args->operand_count == args->operand_max) {
            usage_error(args->command, "unexpected argument '%s'", arg);
            return CLI_PARSE_ERROR;
        }
        args->operands[args->operand_count++] = arg;
    }
    return CLI_PARSE_OK;
}

/* ---- output helpers ---- */

/* Copies text for a terminal: control characters become '?'. */
static const char *printable(const char *text, char *out, size_t size)
{
    size_t i = 0;
    for (; text[i] != '\0' && i + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
    return out;
}

static const char *format_utc(int64_t seconds, char *out, size_t size)
{
    time_t t = (time_t)seconds;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, size, "%lld", (long long)seconds);
    }
    return out;
}

/* Lowercase hex SHA-256 of data; "?" when hashing fails. */
static const char *sha256_hex(const uint8_t *data, size_t len, char *out, size_t size)
{
    uint8_t digest[CLI_SHA256_LEN];
    if (size < 2 * CLI_SHA256_LEN + 1 ||
        gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, digest) < 0) {
        snprintf(out, size, "?");
        return out;
    }
    for (size_t i = 0; i < CLI_SHA256_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    }
    return out;
}

/* One failure line on stderr about a device; returns CLI_EXIT_FAILURE. */
static int device_error(const char *endpoint, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int device_error(const char *endpoint, const char *fmt, ...)
{
    char safe[STORE_ENDPOINT_MAX + 1];
    fprintf(stderr, "lwm2md: device '%s': ", printable(endpoint, safe, sizeof(safe)));
    va_list args;
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

static int open_store(const config_t *cfg, store_t **store)
{
    int err = store_open(cfg->data_dir, store);
    if (err != LWM2MD_OK) {
        fprintf(stderr, "lwm2md: cannot open the store in '%s' (%s)\n", cfg->data_dir,
                lwm2md_strerror(err));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* ---- add: credentials ---- */

static bool text_valid(const char *text, size_t min, size_t max)
{
    size_t len = strlen(text);
    if (len < min || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes the hex key of --psk. Never echoes the key. */
static int decode_psk_key(const char *hex, store_device_t *device)
{
    size_t digits = strlen(hex);
    if (digits == 0 || digits % 2 != 0 || digits / 2 > STORE_PSK_KEY_MAX) {
        return usage_error("add",
                           "the PSK key must be 1 to %d bytes: an even number of hex "
                           "digits, 2 to %d",
                           STORE_PSK_KEY_MAX, 2 * STORE_PSK_KEY_MAX);
    }
    for (size_t i = 0; i < digits / 2; i++) {
        int high = hex_digit(hex[2 * i]);
        int low = hex_digit(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return usage_error("add", "the PSK key must be hex digits (0-9, a-f)");
        }
        device->psk_key[i] = (uint8_t)(high << 4 | low);
    }
    device->psk_key_len = digits / 2;
    return CLI_EXIT_OK;
}

static int copy_psk_identity(const char *identity, size_t len, store_device_t *device)
{
    if (len == 0 || len > STORE_PSK_IDENTITY_MAX) {
        return usage_error("add", "the PSK identity must be 1 to %d bytes", STORE_PSK_IDENTITY_MAX);
    }
    memcpy(device->psk_identity, identity, len);
    device->psk_identity[len] = '\0';
    if (!text_valid(device->psk_identity, 1, STORE_PSK_IDENTITY_MAX)) {
        return usage_error("add", "the PSK identity holds control characters");
    }
    return CLI_EXIT_OK;
}

/*
 * IDENTITY:HEXKEY, split at the last ':' (hex holds none). The key digits are
 * then wiped from argv, which shortens the time they show in the process list.
 */
static int parse_psk(char *value, store_device_t *device)
{
    char *colon = strrchr(value, ':');
    if (colon == NULL) {
        explicit_bzero(value, strlen(value));
        return usage_error("add", "--psk takes IDENTITY:HEXKEY");
    }

    char *hex = colon + 1;
    int exit_code = copy_psk_identity(value, (size_t)(colon - value), device);
    if (exit_code == CLI_EXIT_OK) {
        exit_code = decode_psk_key(hex, device);
    }
    explicit_bzero(hex, strlen(hex));
    return exit_code;
}

/* Reads a credential file with the dtls module's reader. */
static int read_credential(const char *endpoint, const char *path,
                           int (*reader)(const char *, uint8_t **, size_t *, char *, size_t),
                           uint8_t **der, size_t *der_len)
{
    char message[CLI_MESSAGE_MAX] = "";
    int err = reader(path, der, der_len, message, sizeof(message));
    if (err == LWM2MD_OK) {
        return CLI_EXIT_OK;
    }
    if (message[0] == '\0') {
        return device_error(endpoint, "cannot read '%s' (%s)", path, lwm2md_strerror(err));
    }
    return device_error(endpoint, "%s", message);
}

enum add_option {
    ADD_NOSEC,
    ADD_PSK,
    ADD_RPK,
    ADD_X509,
    ADD_CERT,
    ADD_NAME,
    ADD_OPTION_COUNT,
};

/* Exactly one of --nosec, --psk, --rpk, --x509; --cert only with --x509. */
static int check_modes(const cli_option_t *options)
{
    int modes = 0;
    for (int i = ADD_NOSEC; i <= ADD_X509; i++) {
        modes += options[i].seen ? 1 : 0;
    }
    if (modes != 1) {
        return usage_error("add", "give exactly one of --nosec, --psk, --rpk and --x509");
    }
    if (options[ADD_CERT].seen && !options[ADD_X509].seen) {
        return usage_error("add", "--cert goes with --x509");
    }
    return CLI_EXIT_OK;
}

/* Fills the device from the parsed arguments; reads key and certificate files. */
static int build_device(const cli_args_t *args, store_device_t *device)
{
    const cli_option_t *options = args->options;
    const char *endpoint = args->operands[0];
    if (!text_valid(endpoint, 1, STORE_ENDPOINT_MAX)) {
        return usage_error("add",
                           "the endpoint must be 1 to %d bytes without control "
                           "characters",
                           STORE_ENDPOINT_MAX);
    }
    snprintf(device->endpoint, sizeof(device->endpoint), "%s", endpoint);
    const char *name = options[ADD_NAME].seen ? options[ADD_NAME].value : "";
    if (!text_valid(name, 0, STORE_NAME_MAX)) {
        return usage_error("add",
                           "the name must be at most %d bytes without control "
                           "characters",
                           STORE_NAME_MAX);
    }
    snprintf(device->name, sizeof(device->name), "%s", name);

    if (options[ADD_PSK].seen) {
        device->mode = STORE_SECURITY_PSK;
        return parse_psk(options[ADD_PSK].value, device);
    }
    if (options[ADD_RPK].seen) {
        device->mode = STORE_SECURITY_RPK;
        return read_credential(endpoint, options[ADD_RPK].value, dtls_read_public_key, &device->rpk,
                               &device->rpk_len);
    }
    if (options[ADD_X509].seen) {
        device->mode = STORE_SECURITY_X509;
        if (options[ADD_CERT].seen) {
            return read_credential(endpoint, options[ADD_CERT].value, dtls_read_certificate,
                                   &device->cert, &device->cert_len);
        }
        return CLI_EXIT_OK;
    }
    device->mode = STORE_SECURITY_NOSEC;
    return CLI_EXIT_OK;
}

/* ---- add: refusals ---- */

typedef struct add_conflict {
    const store_device_t *wanted;
    char owner[STORE_ENDPOINT_MAX + 1];
} add_conflict_t;

static bool same_bytes(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a != NULL && b != NULL && a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* Finds the device whose credential the wanted one duplicates. */
static int find_conflict(const store_device_t *device, void *ctx)
{
    add_conflict_t *conflict = ctx;
    const store_device_t *wanted = conflict->wanted;
    bool same = false;
    if (wanted->mode == STORE_SECURITY_PSK && device->mode == STORE_SECURITY_PSK) {
        same = strcmp(wanted->psk_identity, device->psk_identity) == 0;
    } else if (wanted->mode == STORE_SECURITY_RPK) {
        same = same_bytes(wanted->rpk, wanted->rpk_len, device->rpk, device->rpk_len);
    } else if (wanted->mode == STORE_SECURITY_X509) {
        same = same_bytes(wanted->cert, wanted->cert_len, device->cert, device->cert_len);
    }
    if (!same) {
        return 0;
    }
    snprintf(conflict->owner, sizeof(conflict->owner), "%s", device->endpoint);
    return 1;
}

/* Says which unique field an add clashed on. */
static int report_exists(store_t *store, const store_device_t *device)
{
    store_device_t existing;
    if (store_device_get(store, device->endpoint, &existing) == LWM2MD_OK) {
        store_device_clear(&existing);
        return device_error(device->endpoint, "already exists");
    }

    add_conflict_t conflict = {.wanted = device};
    if (store_device_foreach(store, find_conflict, &conflict) != 1) {
        return device_error(device->endpoint, "its credential is already used by another device");
    }
    char owner[STORE_ENDPOINT_MAX + 1];
    printable(conflict.owner, owner, sizeof(owner));
    if (device->mode == STORE_SECURITY_PSK) {
        char identity[STORE_PSK_IDENTITY_MAX + 1];
        return device_error(device->endpoint, "PSK identity '%s' is already used by device '%s'",
                            printable(device->psk_identity, identity, sizeof(identity)), owner);
    }
    if (device->mode == STORE_SECURITY_RPK) {
        return device_error(device->endpoint, "this public key is already used by device '%s'",
                            owner);
    }
    return device_error(device->endpoint, "this certificate is already pinned for device '%s'",
                        owner);
}

static int store_new_device(const config_t *cfg, const store_device_t *device)
{
    store_t *store = NULL;
    int exit_code = open_store(cfg, &store);
    if (exit_code != CLI_EXIT_OK) {
        return exit_code;
    }

    int err = store_device_add(store, device);
    if (err == LWM2MD_ERR_EXISTS) {
        exit_code = report_exists(store, device);
    } else if (err != LWM2MD_OK) {
        exit_code = device_error(device->endpoint, "cannot add (%s)", lwm2md_strerror(err));
    } else {
        char safe[STORE_ENDPOINT_MAX + 1];
        printf("device '%s' added (%s)\n", printable(device->endpoint, safe, sizeof(safe)),
               store_security_name(device->mode));
    }
    store_close(store);
    return exit_code;
}

static int cmd_add(int argc, char **argv, const config_t *cfg)
{
    cli_option_t options[ADD_OPTION_COUNT] = {
        [ADD_NOSEC] = {.name = "nosec"},
        [ADD_PSK] = {.name = "psk", .has_value = true},
        [ADD_RPK] = {.name = "rpk", .has_value = true},
        [ADD_X509] = {.name = "x509"},
        [ADD_CERT] = {.name = "cert", .has_value = true},
        [ADD_NAME] = {.name = "name", .has_value = true},
    };
    cli_args_t args = {
        .command = "add", .options = options, .option_count = ADD_OPTION_COUNT, .operand_max = 1};
    cli_parse_t parsed = parse_args(&args, argc, argv);
    if (parsed == CLI_PARSE_HELP) {
        fputs(add_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (parsed == CLI_PARSE_ERROR) {
        return CLI_EXIT_USAGE;
    }
    if (args.operand_count == 0) {
        return usage_error("add", "missing ENDPOINT");
    }
    int exit_code = check_modes(options);
    if (exit_code != CLI_EXIT_OK) {
        return exit_code;
    }

    store_device_t device;
    memset(&device, 0, sizeof(device));
    exit_code = build_device(&args, &device);
    if (exit_code == CLI_EXIT_OK) {
        exit_code = store_new_device(cfg, &device);
    }
    store_device_clear(&device);
    return exit_code;
}

/* ---- list ---- */

typedef struct list_row {
    char endpoint[STORE_ENDPOINT_MAX + 1];
    const char *security;
    bool provisioned;
    bool registered;
    char id[STORE_REG_ID_MAX + 1];
    char peer[STORE_PEER_MAX + 1];
    char version[STORE_VERSION_MAX + 1];
    int64_t expires_at;
} list_row_t;

typedef struct list_rows {
    list_row_t *rows;
    size_t count;
    size_t capacity;
    size_t devices; /* rows[0..devices) are the devices, in endpoint order */
    int64_t now;
} list_rows_t;

static list_row_t *append_row(list_rows_t *list)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 64 : list->capacity * 2;
        list_row_t *rows = realloc(list->rows, capacity * sizeof(*rows));
        if (rows == NULL) {
            return NULL;
        }
        list->rows = rows;
        list->capacity = capacity;
    }
    list_row_t *row = &list->rows[list->count++];
    memset(row, 0, sizeof(*row));
    return row;
}

static int collect_device(const store_device_t *device, void *ctx)
{
    list_row_t *row = append_row(ctx);
    if (row == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    snprintf(row->endpoint, sizeof(row->endpoint), "%s", device->endpoint);
    row->security = store_security_name(device->mode);
    row->provisioned = true;
    return 0;
}

static int compare_rows(const void *a, const void *b)
{
    return strcmp(((const list_row_t *)a)->endpoint, ((const list_row_t *)b)->endpoint);
}

/* Attaches a live registration to its device's row, or adds an unprovisioned row. */
static int collect_registration(const store_registration_t *reg, void *ctx)
{
    list_rows_t *list = ctx;
    if (reg->expires_at <= list->now) {
        return 0;
    }
    list_row_t key;
    snprintf(key.endpoint, sizeof(key.endpoint), "%s", reg->endpoint);
    list_row_t *row = bsearch(&key, list->rows, list->devices, sizeof(*row), compare_rows);
    if (row == NULL) {
        row = append_row(list);
        if (row == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
        snprintf(row->endpoint, sizeof(row->endpoint), "%s", reg->endpoint);
        row->security = reg->secure ? "-" : store_security_name(STORE_SECURITY_NOSEC);
    }
    row->registered = true;
    snprintf(row->id, sizeof(row->id), "%s", reg->id);
    snprintf(row->peer, sizeof(row->peer), "%s", reg->peer);
    snprintf(row->version, sizeof(row->version), "%s", reg->version);
    row->expires_at = reg->expires_at;
    return 0;
}

static void print_row(const list_row_t *row, int width, int64_t now)
{
    char endpoint[STORE_ENDPOINT_MAX + 1];
    printf("%-*s  %-5s  ", width, printable(row->endpoint, endpoint, sizeof(endpoint)),
           row->security);
    if (!row->registered) {
        printf("not registered\n");
        return;
    }
    char id[STORE_REG_ID_MAX + 1];
    char peer[STORE_PEER_MAX + 1];
    char version[STORE_VERSION_MAX + 1];
    printf("registered id=%s peer=%s left=%llds lwm2m=%s%s\n", printable(row->id, id, sizeof(id)),
           printable(row->peer, peer, sizeof(peer)), (long long)(row->expires_at - now),
           printable(row->version, version, sizeof(version)),
           row->provisioned ? "" : "  (unprovisioned)");
}

static int collect_rows(store_t *store, list_rows_t *list)
{
    int err = store_device_foreach(store, collect_device, list);
    list->devices = list->count;
    if (err == LWM2MD_OK) {
        err = store_registration_foreach(store, collect_registration, list);
    }
    if (err != LWM2MD_OK) {
        fprintf(stderr, "lwm2md: cannot list the devices (%s)\n", lwm2md_strerror(err));
        return CLI_EXIT_FAILURE;
    }
    qsort(list->rows, list->count, sizeof(list_row_t), compare_rows);
    return CLI_EXIT_OK;
}

static int cmd_list(int argc, char **argv, const config_t *cfg)
{
    cli_args_t args = {.command = "list"};
    cli_parse_t parsed = parse_args(&args, argc, argv);
    if (parsed == CLI_PARSE_HELP) {
        fputs(list_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (parsed == CLI_PARSE_ERROR) {
        return CLI_EXIT_USAGE;
    }
    store_t *store = NULL;
    int exit_code = open_store(cfg, &store);
    if (exit_code != CLI_EXIT_OK) {
        return exit_code;
    }

    list_rows_t list = {.now = (int64_t)time(NULL)};
    exit_code = collect_rows(store, &list);
    store_close(store);

    int width = 0;
    for (size_t i = 0; exit_code == CLI_EXIT_OK && i < list.count; i++) {
        int len = (int)strlen(list.rows[i].endpoint);
        width = len > width ? len : width;
    }
    for (size_t i = 0; exit_code == CLI_EXIT_OK && i < list.count; i++) {
        print_row(&list.rows[i], width, list.now);
    }
    free(list.rows);
    return exit_code;
}

/* ---- show ---- */

static void show_credential(const store_device_t *device)
{
    char text[STORE_PSK_IDENTITY_MAX + 1];
    switch (device->mode) {
    case STORE_SECURITY_PSK:
        printf("psk identity: %s\n", printable(device->psk_identity, text, sizeof(text)));
        printf("psk key: <%zu bytes>\n", device->psk_key_len);
        break;
    case STORE_SECURITY_RPK:
        printf("rpk sha256: %s\n", sha256_hex(device->rpk, device->rpk_len, text, sizeof(text)));
        break;
    case STORE_SECURITY_X509:
        if (device->cert != NULL) {
            printf("certificate sha256: %s\n",
                   sha256_hex(device->cert, device->cert_len, text, sizeof(text)));
        } else {
            printf("certificate: any from a trusted CA with CN = endpoint\n");
        }
        break;
    default:
        break;
    }
}

static void show_device(const store_device_t *device)
{
    char text[STORE_NAME_MAX + 1];
    printf("endpoint: %s\n", printable(device->endpoint, text, sizeof(text)));
    printf("name: %s\n",
           device->name[0] != '\0' ? printable(device->name, text, sizeof(text)) : "-");
    printf("security: %s\n", store_security_name(device->mode));
    show_credential(device);
}

static void show_registration_times(const store_registration_t *reg, int64_t now)
{
    char time_text[32];
    printf("lifetime: %us\n", reg->lifetime);
    printf("registered at: %s\n", format_utc(reg->registered_at, time_text, sizeof(time_text)));
    printf("updated at: %s\n", format_utc(reg->updated_at, time_text, sizeof(time_text)));
    printf("expires at: %s (in %llds)\n", format_utc(reg->expires_at, time_text, sizeof(time_text)),
           (long long)(reg->expires_at - now));
}

static void show_registration(const store_registration_t *reg, int64_t now)
{
    char text[STORE_PEER_MAX + 1];
    if (reg->expires_at <= now) {
        char time_text[32];
        printf("registration: none (the last one expired at %s)\n",
               format_utc(reg->expires_at, time_text, sizeof(time_text)));
        return;
    }
    printf("registration: %s\n", printable(reg->id, text, sizeof(text)));
    printf("peer: %s\n", printable(reg->peer, text, sizeof(text)));
    printf("transport: %s\n", reg->secure ? "dtls" : "udp");
    printf("lwm2m version: %s\n", printable(reg->version, text, sizeof(text)));
    printf("binding: %s\n", printable(reg->binding, text, sizeof(text)));
    printf("queue mode: %s\n", reg->queue_mode ? "yes" : "no");
    printf("sms: %s\n", reg->sms[0] != '\0' ? printable(reg->sms, text, sizeof(text)) : "-");
    show_registration_times(reg, now);

    /* Links come from the device: strip control characters before they reach a terminal. */
    const char *links = reg->links != NULL && reg->links[0] != '\0' ? reg->links : "-";
    fputs("object links: ", stdout);
    for (const char *c = links; *c != '\0'; c++) {
        unsigned char byte = (unsigned char)*c;
        fputc(byte < 0x20 || byte == 0x7f ? '?' : byte, stdout);
    }
    fputc('\n', stdout);
}

static int show_endpoint(store_t *store, const char *endpoint)
{
    store_device_t device;
    store_registration_t reg;
    int device_err = store_device_get(store, endpoint, &device);
    int reg_err = store_registration_get(store, endpoint, &reg);
    if (device_err != LWM2MD_OK && device_err != LWM2MD_ERR_NOT_FOUND) {
        return device_error(endpoint, "cannot read (%s)", lwm2md_strerror(device_err));
    }
    if (reg_err != LWM2MD_OK && reg_err != LWM2MD_ERR_NOT_FOUND) {
        store_device_clear(&device);
        return device_error(endpoint, "cannot read (%s)", lwm2md_strerror(reg_err));
    }
    if (device_err == LWM2MD_ERR_NOT_FOUND && reg_err == LWM2MD_ERR_NOT_FOUND) {
        return device_error(endpoint, "not found");
    }

    if (device_err == LWM2MD_OK) {
        show_device(&device);
    } else {
        char text[STORE_ENDPOINT_MAX + 1];
        printf("endpoint: %s\nname: -\nsecurity: %s (unprovisioned)\n",
               printable(endpoint, text, sizeof(text)), reg.secure ? "-" : "nosec");
    }
    if (reg_err == LWM2MD_OK) {
        show_registration(&reg, (int64_t)time(NULL));
    } else {
        printf("registration: none\n");
    }
    store_device_clear(&device);
    store_registration_clear(&reg);
    return CLI_EXIT_OK;
}

/* Parses `show ENDPOINT` and `remove ENDPOINT`. Returns -1 to go on, or an exit code. */
static int parse_endpoint_args(cli_args_t *args, int argc, char **argv, const char *usage)
{
    cli_parse_t parsed = parse_args(args, argc, argv);
    if (parsed == CLI_PARSE_HELP) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (parsed == CLI_PARSE_ERROR) {
        return CLI_EXIT_USAGE;
    }
    if (args->operand_count == 0) {
        return usage_error(args->command, "missing ENDPOINT");
    }
    return -1;
}

static int cmd_show(int argc, char **argv, const config_t *cfg)
{
    cli_args_t args = {.command = "show", .operand_max = 1};
    int exit_code = parse_endpoint_args(&args, argc, argv, show_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    store_t *store = NULL;
    exit_code = open_store(cfg, &store);
    if (exit_code != CLI_EXIT_OK) {
        return exit_code;
    }
    exit_code = show_endpoint(store, args.operands[0]);
    store_close(store);
    return exit_code;
}

/* ---- remove ---- */

static int cmd_remove(int argc, char **argv, const config_t *cfg)
{
    cli_args_t args = {.command = "remove", .operand_max = 1};
    int exit_code = parse_endpoint_args(&args, argc, argv, remove_usage);
    if (exit_code >= 0) {
        return exit_code;
    }
    store_t *store = NULL;
    exit_code = open_store(cfg, &store);
    if (exit_code != CLI_EXIT_OK) {
        return exit_code;
    }

    const char *endpoint = args.operands[0];
    int err = store_device_remove(store, endpoint);
    store_close(store);
    if (err == LWM2MD_ERR_NOT_FOUND) {
        return device_error(endpoint, "not found");
    }
    if (err != LWM2MD_OK) {
        return device_error(endpoint, "cannot remove (%s)", lwm2md_strerror(err));
    }
    char safe[STORE_ENDPOINT_MAX + 1];
    printf("device '%s' removed\n", printable(endpoint, safe, sizeof(safe)));
    return CLI_EXIT_OK;
}

/* ---- dispatch ---- */

typedef struct device_command {
    const char *name;
    int (*run)(int argc, char **argv, const config_t *cfg);
} device_command_t;

static const device_command_t device_commands[] = {
    {"add", cmd_add},
    {"list", cmd_list},
    {"show", cmd_show},
    {"remove", cmd_remove},
};

int cli_device_main(int argc, char **argv, const config_t *cfg)
{
    if (argc < 2) {
        return usage_error(NULL, "missing command: add, list, show or remove");
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
        strcmp(command, "help") == 0) {
        fputs(device_usage, stdout);
        return CLI_EXIT_OK;
    }

    for (size_t i = 0; i < sizeof(device_commands) / sizeof(device_commands[0]); i++) {
        if (strcmp(command, device_commands[i].name) == 0) {
            return device_commands[i].run(argc - 1, argv + 1, cfg);
        }
    }
    char safe[64];
    return usage_error(NULL, "unknown command '%s'", printable(command, safe, sizeof(safe)));
}
