/* lwm2md: the command line. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "config/config.h"
#include "main/cli.h"
#include "main/serve.h"

#define FLAGS_MAX 64

static const char usage_text[] =
    "usage: lwm2md [serve] [-c FILE] [--set NAME=VALUE]...\n"
    "       lwm2md device add|list|show|remove ...\n"
    "       lwm2md certs generate --out DIR ...\n"
    "       lwm2md --help | --version\n"
    "\n"
    "Runs an OMA LwM2M server (CoAP on UDP, DTLS 1.2 with PSK, RPK or X.509).\n"
    "Settings come from flags, the environment, then the conf file (-c FILE or\n"
    "LWM2MD_CONFIG); docs/CONFIGURATION.md lists every one.\n"
    "\n"
    "serve options:\n"
    "  -c, --config FILE     read settings from FILE (export NAME=value lines)\n"
    "  --set NAME=VALUE      set one setting; overrides environment and file\n"
    "\n"
    "Run 'lwm2md device --help' or 'lwm2md certs --help' for those commands.\n";

static int usage_error(const char *message, const char *arg)
{
    fprintf(stderr, "lwm2md: %s%s%s\n", message, arg != NULL ? ": " : "", arg != NULL ? arg : "");
    fprintf(stderr, "Try 'lwm2md --help'.\n");
    return CLI_EXIT_USAGE;
}

static int load_config(config_t *cfg, const char *conf_file, const char *const *flags)
{
    char err[512] = "";
    config_source_t src = {.conf_file = conf_file, .flags = flags, .env = NULL};
    if (config_load(cfg, &src, err, sizeof(err)) != LWM2MD_OK) {
        fprintf(stderr, "lwm2md: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* `lwm2md [serve] [-c FILE] [--set NAME=VALUE]...`; argv starts after "serve". */
static int serve_main(int argc, char **argv)
{
    const char *conf_file = NULL;
    const char *flags[FLAGS_MAX + 1] = {NULL};
    size_t flag_count = 0;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            return CLI_EXIT_OK;
        }
        bool has_value = i + 1 < argc;
        if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0) {
            if (!has_value) {
                return usage_error("missing FILE after", arg);
            }
            conf_file = argv[++i];
        } else if (strcmp(arg, "--set") == 0) {
            if (!has_value || strchr(argv[i + 1], '=') == NULL) {
                return usage_error("--set needs NAME=VALUE", NULL);
            }
            /* Name only in the message: a mistyped password setting must not echo its value. */
            const char *flag = argv[i + 1];
            int name_len = (int)(strchr(flag, '=') - flag);
            if (!config_is_setting(flag, (size_t)name_len)) {
                fprintf(stderr, "lwm2md: --set %.*s: unknown setting\nTry 'lwm2md --help'.\n",
                        name_len, flag);
                return CLI_EXIT_USAGE;
            }
            if (flag_count == FLAGS_MAX) {
                return usage_error("too many --set flags", NULL);
            }
            flags[flag_count++] = argv[++i];
        } else {
            return usage_error("unknown argument", arg);
        }
    }

    config_t cfg;
    int rc = load_config(&cfg, conf_file, flags);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    return serve_run(&cfg);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("lwm2md %s\n", LWM2MD_VERSION);
        return CLI_EXIT_OK;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2 || argv[1][0] == '-') {
        return serve_main(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "serve") == 0) {
        return serve_main(argc - 2, argv + 2);
    }
    if (strcmp(argv[1], "certs") == 0) {
        return cli_certs_main(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "device") == 0) {
        config_t cfg;
        int rc = load_config(&cfg, NULL, NULL);
        return rc != CLI_EXIT_OK ? rc : cli_device_main(argc - 1, argv + 1, &cfg);
    }
    return usage_error("unknown command", argv[1]);
}
