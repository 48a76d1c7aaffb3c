/* `lwm2md serve`: assembles the store, registry, credentials and workers, and runs them. */
#pragma once

#include "config/config.h"

/*
 * Runs the servers until SIGINT or SIGTERM. Loads credentials and binds
 * every port before serving; any failure there stops the start with one
 * line on stderr. Returns a cli_exit code.
 */
int serve_run(const config_t *cfg);
