/* Helpers the benchmark load programs share: time, numbers, percentiles. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define NS_PER_SEC 1000000000ull

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* A decimal option value in [min, max]; false for anything else. */
bool bench_parse_uint(const char *text, uint32_t min, uint32_t max, uint32_t *out);

/* Sorts latencies (microseconds) in place, for bench_percentile_ms(). */
void bench_sort_u32(uint32_t *values, uint32_t n);

/* Nearest-rank percentile q (0..1] of sorted microseconds, in milliseconds. */
double bench_percentile_ms(const uint32_t *sorted, uint32_t n, double q);
