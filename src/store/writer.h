/* Store writer: a thread that applies registration changes in batches. */
#pragma once

#include "store/store.h"

typedef struct store_writer store_writer_t;

/*
 * Starts the writer thread with its own connection to the data dir and
 * a queue of at most `capacity` pending operations. Returns 0 or a
 * negative lwm2md_error_t.
 */
int store_writer_start(const char *data_dir, size_t capacity, store_writer_t **out);

/*
 * Drains the queue, writes what is pending, stops the thread and frees
 * everything. Call from the thread that started it.
 */
void store_writer_stop(store_writer_t *writer);

/*
 * Queue a write; any thread, never blocks on the disk. The registration
 * is copied (links too). Returns LWM2MD_ERR_FULL when the queue is at
 * its cap (the caller logs; the in-memory state stays authoritative).
 */
int store_writer_put_registration(store_writer_t *writer, const store_registration_t *reg);
int store_writer_delete_registration(store_writer_t *writer, const char *id);

/* Blocks until everything queued before the call is written (tests, shutdown). */
void store_writer_flush(store_writer_t *writer);
