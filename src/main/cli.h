/* Command-line subcommands other than `serve`. */
#pragma once

#include "config/config.h"

/* Exit codes of every command. */
enum cli_exit {
    CLI_EXIT_OK = 0,      /* success */
    CLI_EXIT_FAILURE = 1, /* runtime failure */
    CLI_EXIT_USAGE = 2,   /* usage error */
};

/*
 * `lwm2md device add|list|show|remove ...`. argv[0] is "device". Works
 * on cfg->data_dir directly (a running server notices the change).
 * Prints results on stdout, one-line errors on stderr. Returns a
 * cli_exit code.
 */
int cli_device_main(int argc, char **argv, const config_t *cfg);

/* `lwm2md certs generate --out DIR ...`. argv[0] is "certs". */
int cli_certs_main(int argc, char **argv);
