/* An intrusive chained hash table that grows; the caller owns the nodes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embed in the item; the table links items through it and never frees them. */
typedef struct htable_node {
    struct htable_node *next;
    uint64_t hash;
} htable_node_t;

typedef struct htable {
    htable_node_t **buckets;
    size_t mask;
    size_t count;
} htable_t;

/* Starts with `initial` buckets (rounded up to a power of two). 0 or LWM2MD_ERR_NOMEM. */
int htable_init(htable_t *table, size_t initial);
/* Frees the bucket array; the nodes are the caller's. */
void htable_destroy(htable_t *table);

/* Links node under hash; doubles the buckets when the load passes 1 (if memory allows). */
void htable_insert(htable_t *table, htable_node_t *node, uint64_t hash);
/* Unlinks node; it must be in the table. */
void htable_remove(htable_t *table, htable_node_t *node);

/*
 * Iterates over the nodes whose hash equals `hash`: start with
 * htable_first, continue with htable_next; the caller compares keys.
 */
htable_node_t *htable_first(const htable_t *table, uint64_t hash);
htable_node_t *htable_next(const htable_node_t *node, uint64_t hash);

/* Hashes bytes (FNV-1a, 64 bits) with a seed; for string and blob keys. */
uint64_t htable_hash_bytes(const void *data, size_t len, uint64_t seed);

/* Member to container, for intrusive nodes. */
#define HTABLE_ENTRY(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))
