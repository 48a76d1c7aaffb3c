/* An intrusive chained hash table. */
#include "base/htable.h"

#include <stdlib.h>

#include "base/error.h"

int htable_init(htable_t *table, size_t initial)
{
    size_t size = 16;
    while (size < initial) {
        size *= 2;
    }
    table->buckets = calloc(size, sizeof(*table->buckets));
    if (table->buckets == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    table->mask = size - 1;
    table->count = 0;
    return LWM2MD_OK;
}

void htable_destroy(htable_t *table)
{
    free(table->buckets);
    table->buckets = NULL;
    table->count = 0;
}

static void grow(htable_t *table)
{
    size_t size = (table->mask + 1) * 2;
    htable_node_t **buckets = calloc(size, sizeof(*buckets));
    if (buckets == NULL) {
        return; /* Longer chains, still correct. */
    }
    for (size_t i = 0; i <= table->mask; i++) {
        htable_node_t *node = table->buckets[i];
        while (node != NULL) {
            htable_node_t *next = node->next;
            size_t b = node->hash & (size - 1);
            node->next = buckets[b];
            buckets[b] = node;
            node = next;
        }
    }
    free(table->buckets);
    table->buckets = buckets;
    table->mask = size - 1;
}

void htable_insert(htable_t *table, htable_node_t *node, uint64_t hash)
{
    if (table->count > table->mask) {
        grow(table);
    }
    size_t b = hash & table->mask;
    node->hash = hash;
    node->next = table->buckets[b];
    table->buckets[b] = node;
    table->count++;
}

void htable_remove(htable_t *table, htable_node_t *node)
{
    htable_node_t **link = &table->buckets[node->hash & table->mask];
    while (*link != NULL) {
        if (*link == node) {
            *link = node->next;
            node->next = NULL;
            table->count--;
            return;
        }
        link = &(*link)->next;
    }
}

htable_node_t *htable_first(const htable_t *table, uint64_t hash)
{
    htable_node_t *node = table->buckets[hash & table->mask];
    while (node != NULL && node->hash != hash) {
        node = node->next;
    }
    return node;
}

htable_node_t *htable_next(const htable_node_t *node, uint64_t hash)
{
    htable_node_t *next = node->next;
    while (next != NULL && next->hash != hash) {
        next = next->next;
    }
    return next;
}

uint64_t htable_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
