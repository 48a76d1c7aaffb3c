/* Logging: one line per event, levels chosen at run time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} log_level_t;

/*
 * Sets the process-wide level. Called once at start, before any thread
 * logs; the level is the one piece of process state that logging keeps.
 */
void log_set_level(log_level_t level);

/* Parses "error", "warn", "info" or "debug". Returns 0 or LWM2MD_ERR_INVALID. */
int log_level_parse(const char *text, log_level_t *out);

/* True when a message at this level would be written; cheap, any thread. */
bool log_enabled(log_level_t level);

/*
 * Writes one line to stderr: UTC time, level, then the message. Lines
 * from several threads do not interleave. Never pass keys, PSKs or
 * passwords.
 */
void log_write(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_LEVEL_DEBUG)) {                                                        \
            log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                               \
        }                                                                                          \
    } while (0)

/*
 * A token bucket for peer faults: at most `burst` lines, refilled at
 * `per_second`. One limiter per event kind, owned by the thread that
 * logs it (not thread-safe). `suppressed` counts lines dropped since the
 * last line written, so the next line can say so.
 */
typedef struct log_limiter {
    double per_second;
    double burst;
    double tokens;
    uint64_t last_ms;
    uint64_t suppressed;
} log_limiter_t;

void log_limiter_init(log_limiter_t *limiter, double per_second, double burst);

/* True when a line may be written now; counts it otherwise. */
bool log_limiter_allow(log_limiter_t *limiter, uint64_t now_ms);
