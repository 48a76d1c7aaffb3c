/* Random bytes from the kernel, for tokens, identifiers and seeds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Fills buf from getrandom(2). Any thread. 0 or LWM2MD_ERR_IO. */
int random_bytes(void *buf, size_t len);

/* A random 64-bit value; aborts only if the kernel has no randomness to give. */
uint64_t random_u64(void);
