/* Store writer: one thread applies queued registration writes, a batch per transaction. */
#include "store/writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "log/log.h"

typedef enum writer_op_kind {
    WRITER_OP_PUT,
    WRITER_OP_DELETE,
} writer_op_kind_t;

/* One queued write. PUT owns a copy of the registration (links too); DELETE uses reg.id. */
typedef struct writer_op {
    writer_op_kind_t kind;
    store_registration_t reg;
} writer_op_t;

struct store_writer {
    store_t *store; /* used by the writer thread only, once started */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* ops were queued, or stop was asked */
    pthread_cond_t written; /* a batch was written */

    /* Guarded by lock. */
    writer_op_t *queue; /* ring of `capacity` ops */
    size_t capacity;
    size_t head;
    size_t count;
    uint64_t queued; /* ops ever queued */
    uint64_t done;   /* ops ever taken and written (or failed) */
    bool stopping;

    writer_op_t *batch; /* the thread's batch, `capacity` ops */
};

/* The outcome of one batch, for its one log line. */
typedef struct writer_batch {
    store_writer_t *writer;
    size_t count;
    size_t failed;
    int first_error;
} writer_batch_t;

/* Applies one op; a delete of a registration already gone is not a failure. */
static int apply_op(store_t *store, const writer_op_t *op)
{
    if (op->kind == WRITER_OP_PUT) {
        return store_registration_put(store, &op->reg);
    }
    int err = store_registration_delete(store, op->reg.id);
    return err == LWM2MD_ERR_NOT_FOUND ? LWM2MD_OK : err;
}

/* Runs inside the batch's transaction. A database failure aborts it; a bad op is skipped. */
static int apply_batch(store_t *store, void *ctx)
{
    writer_batch_t *batch = ctx;
    for (size_t i = 0; i < batch->count; i++) {
        int err = apply_op(store, &batch->writer->batch[i]);
        if (err == LWM2MD_OK) {
            continue;
        }
        if (batch->failed == 0) {
            batch->first_error = err;
        }
        batch->failed++;
        if (err == LWM2MD_ERR_STORE || err == LWM2MD_ERR_NOMEM) {
            return err;
        }
    }
    return LWM2MD_OK;
}

/* Writes the taken batch in one transaction, logs once when anything failed, frees the ops. */
static void write_batch(store_writer_t *writer, size_t count)
{
    writer_batch_t batch = {.writer = writer, .count = count};
    int err = store_transaction(writer->store, apply_batch, &batch);
    if (err != LWM2MD_OK) {
        log_error("store writer: a batch of %zu registration writes was lost (%s)", count,
                  lwm2md_strerror(err));
    } else if (batch.failed > 0) {
        log_error("store writer: %zu of %zu registration writes failed (%s)", batch.failed, count,
                  lwm2md_strerror(batch.first_error));
    }

    for (size_t i = 0; i < count; i++) {
        store_registration_clear(&writer->batch[i].reg);
    }
}

/* Moves every queued op into the batch buffer; called with the lock held. */
static size_t take_batch(store_writer_t *writer)
{
    size_t count = writer->count;
    for (size_t i = 0; i < count; i++) {
        writer->batch[i] = writer->queue[(writer->head + i) % writer->capacity];
    }
    writer->head = 0;
    writer->count = 0;
    return count;
}

static void *writer_main(void *arg)
{
    store_writer_t *writer = arg;
    pthread_mutex_lock(&writer->lock);
    for (;;) {
        while (writer->count == 0 && !writer->stopping) {
            pthread_cond_wait(&writer->wake, &writer->lock);
        }
        /* Stop only once drained. */
        if (writer->count == 0) {
            break;
        }

        size_t count = take_batch(writer);
        pthread_mutex_unlock(&writer->lock);
        write_batch(writer, count);
        pthread_mutex_lock(&writer->lock);

        writer->done += count;
        pthread_cond_broadcast(&writer->written);
    }
    pthread_mutex_unlock(&writer->lock);
    return NULL;
}

/* Frees a writer whose thread is not running. */
static void writer_free(store_writer_t *writer)
{
    store_close(writer->store);
    free(writer->queue);
    free(writer->batch);
    free(writer);
}

static int writer_sync_init(store_writer_t *writer)
{
    if (pthread_mutex_init(&writer->lock, NULL) != 0) {
        return LWM2MD_ERR_NOMEM;
    }
    if (pthread_cond_init(&writer->wake, NULL) != 0) {
        pthread_mutex_destroy(&writer->lock);
        return LWM2MD_ERR_NOMEM;
    }
    if (pthread_cond_init(&writer->written, NULL) != 0) {
        pthread_cond_destroy(&writer->wake);
        pthread_mutex_destroy(&writer->lock);
        return LWM2MD_ERR_NOMEM;
    }
    return LWM2MD_OK;
}

static void writer_sync_destroy(store_writer_t *writer)
{
    pthread_cond_destroy(&writer->written);
    pthread_cond_destroy(&writer->wake);
    pthread_mutex_destroy(&writer->lock);
}

int store_writer_start(const char *data_dir, size_t capacity, store_writer_t **out)
{
    *out = NULL;
    if (capacity == 0) {
        return LWM2MD_ERR_INVALID;
    }
    store_writer_t *writer = calloc(1, sizeof(*writer));
    if (writer == NULL) {
        return LWM2MD_ERR_NOMEM;
    }
    writer->capacity = capacity;
    writer->queue = calloc(capacity, sizeof(writer_op_t));
    writer->batch = calloc(capacity, sizeof(writer_op_t));
    if (writer->queue == NULL || writer->batch == NULL) {
        writer_free(writer);
        return LWM2MD_ERR_NOMEM;
    }

    /* Opened here so that a bad data dir fails the start, then used by the thread only. */
    int err = store_open(data_dir, &writer->store);
    if (err == LWM2MD_OK) {
        err = writer_sync_init(writer);
    }
    if (err != LWM2MD_OK) {
        writer_free(writer);
        return err;
    }

    if (pthread_create(&writer->thread, NULL, writer_main, writer) != 0) {
        log_error("store writer: cannot start its thread");
        writer_sync_destroy(writer);
        writer_free(writer);
        return LWM2MD_ERR_NOMEM;
    }
    *out = writer;
    return LWM2MD_OK;
}

void store_writer_stop(store_writer_t *writer)
{
    if (writer == NULL) {
        return;
    }
    pthread_mutex_lock(&writer->lock);
    writer->stopping = true;
    pthread_cond_signal(&writer->wake);
    pthread_mutex_unlock(&writer->lock);

    pthread_join(writer->thread, NULL);
    writer_sync_destroy(writer);
    writer_free(writer);
}

/* Queues an op, taking ownership of its heap parts on success. */
static int enqueue(store_writer_t *writer, const writer_op_t *op)
{
    pthread_mutex_lock(&writer->lock);
    int err = LWM2MD_OK;
    if (writer->stopping) {
        err = LWM2MD_ERR_AGAIN;
    } else if (writer->count == writer->capacity) {
        err = LWM2MD_ERR_FULL;
    } else {
        writer->queue[(writer->head + writer->count) % writer->capacity] = *op;
        writer->count++;
        writer->queued++;
        pthread_cond_signal(&writer->wake);
    }
    pthread_mutex_unlock(&writer->lock);
    return err;
}

int store_writer_put_registration(store_writer_t *writer, const store_registration_t *reg)
{
    writer_op_t op = {.kind = WRITER_OP_PUT, .reg = *reg};
    op.reg.links = NULL;
    if (reg->links != NULL) {
        op.reg.links = strdup(reg->links);
        if (op.reg.links == NULL) {
            return LWM2MD_ERR_NOMEM;
        }
    }

    int err = enqueue(writer, &op);
    if (err != LWM2MD_OK) {
        free(op.reg.links);
    }
    return err;
}

int store_writer_delete_registration(store_writer_t *writer, const char *id)
{
    writer_op_t op = {.kind = WRITER_OP_DELETE};
    size_t len = strnlen(id, sizeof(op.reg.id));
    if (len == 0 || len >= sizeof(op.reg.id)) {
        return LWM2MD_ERR_INVALID;
    }
    memcpy(op.reg.id, id, len + 1);
    return enqueue(writer, &op);
}

void store_writer_flush(store_writer_t *writer)
{
    pthread_mutex_lock(&writer->lock);
    uint64_t target = writer->queued;
    while (writer->done < target) {
        pthread_cond_wait(&writer->written, &writer->lock);
    }
    pthread_mutex_unlock(&writer->lock);
}
