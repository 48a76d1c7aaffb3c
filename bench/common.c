/* Helpers the benchmark load programs share. */
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

bool bench_parse_uint(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || value < min ||
        value > max) {
        return false;
    }
    *out = (uint32_t)value;
    return true;
}

static int compare_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x;
    uint32_t b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

void bench_sort_u32(uint32_t *values, uint32_t n)
{
    qsort(values, n, sizeof(*values), compare_u32);
}

double bench_percentile_ms(const uint32_t *sorted, uint32_t n, double q)
{
    if (n == 0) {
        return 0.0;
    }
    uint32_t rank = (uint32_t)(q * n + 0.999999);
    rank = rank < 1 ? 1 : rank;
    return sorted[rank - 1] / 1000.0;
}
