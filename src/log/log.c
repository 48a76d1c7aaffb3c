/* Logging to stderr with run-time levels and rate limiting. */
#include "log/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

/* Set once at start, read by every thread afterwards. */
static log_level_t current_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level_t level)
{
    current_level = level;
}

int log_level_parse(const char *text, log_level_t *out)
{
    for (int i = 0; i <= LOG_LEVEL_DEBUG; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (log_level_t)i;
            return LWM2MD_OK;
        }
    }
    return LWM2MD_ERR_INVALID;
}

bool log_enabled(log_level_t level)
{
    return level <= current_level;
}

void log_write(log_level_t level, const char *fmt, ...)
{
    if (!log_enabled(level)) {
        return;
    }

    /* Format the whole line first so that one fputs writes it. */
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    len += (size_t)snprintf(line + len, sizeof(line) - len, ".%03ldZ %-5s ", now.tv_nsec / 1000000,
                            level_names[level]);

    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, args);
    va_end(args);
    if (n < 0) {
        return;
    }
    len += (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}

void log_limiter_init(log_limiter_t *limiter, double per_second, double burst)
{
    limiter->per_second = per_second;
    limiter->burst = burst;
    limiter->tokens = burst;
    limiter->last_ms = 0;
    limiter->suppressed = 0;
}

bool log_limiter_allow(log_limiter_t *limiter, uint64_t now_ms)
{
    if (limiter->last_ms != 0 && now_ms > limiter->last_ms) {
        double refill = (double)(now_ms - limiter->last_ms) / 1000.0 * limiter->per_second;
        limiter->tokens += refill;
        if (limiter->tokens > limiter->burst) {
            limiter->tokens = limiter->burst;
        }
    }
    limiter->last_ms = now_ms;
    if (limiter->tokens >= 1.0) {
        limiter->tokens -= 1.0;
        return true;
    }
    limiter->suppressed++;
    return false;
}
