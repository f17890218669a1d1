/* The data-safety writer (see writer.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_harness.h"
#include "writer.h"

#define RETRY_PAUSE_MS   20
#define CHECK_CONNECT_MS 10000
#define CHECK_QUERY_MS   60000
#define FIRST_MISSING    10

struct writer {
    pthread_mutex_t lock; /* guards everything below but the thread handle */
    pthread_t thread;
    int thread_started;
    int stop;
    char conninfo[512];
    unsigned conninfo_version;
    int commit_timeout_ms;
    int64_t next_id;
    int64_t *acked_ids; /* ascending: ids grow, one thread appends in commit order */
    size_t n_acked, cap_acked;
    struct writer_stats stats;
    int64_t start_ms, stop_ms, last_ack_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The lock of a writer the caller only reads (locking is not a change of its value). */
static pthread_mutex_t *lock_of(const struct writer *w)
{
    return (pthread_mutex_t *)&w->lock;
}

/* Record the outcome of one attempt (rc of pg_harness_*; id 0 when nothing was sent). */
static void record(struct writer *w, int64_t id, int rc, const char *err)
{
    int64_t now = now_ms();

    pthread_mutex_lock(&w->lock);
    w->stats.attempts++;
    if (rc == 0) {
        if (w->n_acked == w->cap_acked) {
            size_t cap = w->cap_acked ? w->cap_acked * 2 : 4096;
            int64_t *ids = realloc(w->acked_ids, cap * sizeof(*ids));
            if (!ids) {
                /* cannot remember the ack: fail loudly rather than under-report */
                fprintf(stderr, "writer: out of memory recording acknowledged id %" PRId64 "\n",
                        id);
                abort();
            }
            w->acked_ids = ids;
            w->cap_acked = cap;
        }
        w->acked_ids[w->n_acked++] = id;
        w->stats.acked++;
        if (!w->stats.first_acked_id)
            w->stats.first_acked_id = id;
        w->stats.last_acked_id = id;
        if (w->last_ack_ms && now - w->last_ack_ms > w->stats.longest_stall_ms)
            w->stats.longest_stall_ms = now - w->last_ack_ms;
        w->last_ack_ms = now;
    } else {
        if (rc == -ETIMEDOUT)
            w->stats.timed_out++;
        else
            w->stats.failed++;
        snprintf(w->stats.last_error, sizeof(w->stats.last_error), "%s", err);
    }
    pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    PGconn *conn = NULL;
    unsigned version = 0;
    char conninfo[512], err[512], sql[96];

    for (;;) {
        int64_t id;
        int rc, timeout_ms;

        pthread_mutex_lock(&w->lock);
        if (w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        if (w->conninfo_version != version || !conn) {
            version = w->conninfo_version;
            snprintf(conninfo, sizeof(conninfo), "%s", w->conninfo);
            if (conn) {
                PQfinish(conn);
                conn = NULL;
            }
        }
        timeout_ms = w->commit_timeout_ms;
        pthread_mutex_unlock(&w->lock);

        if (!conn) {
            rc = pg_harness_connect(conninfo, timeout_ms, &conn, err, sizeof(err));
            if (rc < 0) {
                record(w, 0, rc, err);
                sleep_ms(RETRY_PAUSE_MS);
                continue;
            }
        }
        pthread_mutex_lock(&w->lock);
        id = w->next_id++;
        pthread_mutex_unlock(&w->lock);
        snprintf(sql, sizeof(sql), "INSERT INTO acked(id) VALUES (%" PRId64 ")", id);
        rc = pg_harness_query(conn, sql, timeout_ms, NULL, err, sizeof(err));
        record(w, id, rc, err);
        if (rc < 0) {
            /* after a timeout the connection is in an unknown state; after an error the node
             * may have gone: start over with a fresh connection */
            PQfinish(conn);
            conn = NULL;
            sleep_ms(RETRY_PAUSE_MS);
        }
    }
    if (conn)
        PQfinish(conn);
    return NULL;
}

struct writer *writer_start(const char *conninfo, int commit_timeout_ms)
{
    static const char create[] =
        "BEGIN; SET LOCAL synchronous_commit = local; "
        "CREATE TABLE IF NOT EXISTS acked(id bigint PRIMARY KEY, at timestamptz DEFAULT now()); "
        "COMMIT";
    struct writer *w;
    PGconn *conn;
    char err[512];
    int rc;

    if (!conninfo || commit_timeout_ms <= 0)
        return NULL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    snprintf(w->conninfo, sizeof(w->conninfo), "%s", conninfo);
    w->conninfo_version = 1;
    w->commit_timeout_ms = commit_timeout_ms;
    w->next_id = 1;
    rc = pg_harness_connect(conninfo, 10000, &conn, err, sizeof(err));
    if (rc == 0) {
        rc = pg_harness_query(conn, create, 10000, NULL, err, sizeof(err));
        PQfinish(conn);
    }
    if (rc < 0) {
        fprintf(stderr, "writer: creating table acked through %s: %s\n", conninfo, err);
        writer_free(w);
        return NULL;
    }
    w->start_ms = now_ms();
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        fprintf(stderr, "writer: pthread_create: %s\n", strerror(rc));
        writer_free(w);
        return NULL;
    }
    w->thread_started = 1;
    return w;
}

void writer_switch(struct writer *w, const char *conninfo)
{
    pthread_mutex_lock(&w->lock);
    snprintf(w->conninfo, sizeof(w->conninfo), "%s", conninfo);
    w->conninfo_version++;
    pthread_mutex_unlock(&w->lock);
}

void writer_stop(struct writer *w)
{
    int join;

    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    join = w->thread_started;
    w->thread_started = 0;
    pthread_mutex_unlock(&w->lock);
    if (join) {
        pthread_join(w->thread, NULL);
        pthread_mutex_lock(&w->lock);
        w->stop_ms = now_ms();
        pthread_mutex_unlock(&w->lock);
    }
}

void writer_get_stats(const struct writer *w, struct writer_stats *out)
{
    pthread_mutex_lock(lock_of(w));
    *out = w->stats;
    out->running_ms = w->start_ms ? (w->stop_ms ? w->stop_ms : now_ms()) - w->start_ms : 0;
    pthread_mutex_unlock(lock_of(w));
}

void writer_reset_stall(struct writer *w)
{
    pthread_mutex_lock(lock_of(w));
    w->stats.longest_stall_ms = 0;
    pthread_mutex_unlock(lock_of(w));
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    writer_stop(w);
    pthread_mutex_destroy(&w->lock);
    free(w->acked_ids);
    free(w);
}

/* A copy of the acknowledged ids (ascending; the caller frees it); -1 when out of memory. */
static int snapshot_acked(const struct writer *w, int64_t **ret_ids, size_t *ret_n)
{
    int64_t *ids;
    size_t n;

    pthread_mutex_lock(lock_of(w));
    n = w->n_acked;
    ids = malloc((n ? n : 1) * sizeof(*ids));
    if (ids && n)
        memcpy(ids, w->acked_ids, n * sizeof(*ids));
    pthread_mutex_unlock(lock_of(w));
    if (!ids)
        return -1;
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

/* The ids in a result of "SELECT id ... ORDER BY id" (ascending), or -1 on a malformed value. */
static int parse_ids(const PGresult *r, int64_t *ids, size_t n, char *err, size_t err_size)
{
    for (size_t k = 0; k < n; k++) {
        const char *text = PQgetvalue(r, (int)k, 0);
        char *end;
        long long v;
        errno = 0;
        v = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || PQgetisnull(r, (int)k, 0)) {
            snprintf(err, err_size, "row %zu of acked: id \"%s\" is not a bigint", k, text);
            return -1;
        }
        ids[k] = (int64_t)v;
    }
    return 0;
}

/* Compare ascending acknowledged ids with the ascending ids on the node: the report in err. */
static size_t compare_ids(const int64_t *acked, size_t n_acked, const int64_t *rows, size_t n_rows,
                          const char *conninfo, char *err, size_t err_size)
{
    int64_t first[FIRST_MISSING];
    size_t missing = 0, r = 0, len;

    for (size_t a = 0; a < n_acked; a++) {
        while (r < n_rows && rows[r] < acked[a])
            r++;
        if (r < n_rows && rows[r] == acked[a])
            continue;
        if (missing < FIRST_MISSING)
            first[missing] = acked[a];
        missing++;
    }
    if (missing == 0) {
        snprintf(err, err_size,
                 "all %zu acknowledged ids present on [%s]; the node has %zu rows, %zu of them "
                 "not acknowledged when the check began",
                 n_acked, conninfo, n_rows, n_rows - n_acked);
        return 0;
    }
    snprintf(err, err_size,
             "%zu of %zu acknowledged ids missing on [%s] (%zu rows); first:", missing, n_acked,
             conninfo, n_rows);
    for (size_t k = 0; k < missing && k < FIRST_MISSING; k++) {
        len = strlen(err);
        snprintf(err + len, err_size - len, " %" PRId64, first[k]);
    }
    return missing;
}

int writer_check(const char *conninfo, const struct writer *w, size_t *missing, char *err,
                 size_t err_size)
{
    int64_t *acked = NULL, *rows = NULL;
    size_t n_acked = 0, n_rows, count;
    PGconn *conn = NULL;
    PGresult *r = NULL;
    char why[512];
    int rc = -1;

    if (snapshot_acked(w, &acked, &n_acked) < 0) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    /* read after the snapshot: every id in it was committed before the read began */
    if (pg_harness_connect(conninfo, CHECK_CONNECT_MS, &conn, why, sizeof(why)) < 0 ||
        pg_harness_query(conn, "SELECT id FROM acked ORDER BY id", CHECK_QUERY_MS, &r, why,
                         sizeof(why)) < 0) {
        snprintf(err, err_size, "reading acked on [%s]: %s", conninfo, why);
        goto out;
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 1) {
        snprintf(err, err_size, "reading acked on [%s]: not one column of rows", conninfo);
        goto out;
    }
    n_rows = (size_t)PQntuples(r);
    rows = malloc((n_rows ? n_rows : 1) * sizeof(*rows));
    if (!rows) {
        snprintf(err, err_size, "out of memory");
        goto out;
    }
    if (parse_ids(r, rows, n_rows, err, err_size) < 0)
        goto out;
    count = compare_ids(acked, n_acked, rows, n_rows, conninfo, err, err_size);
    *missing = count;
    rc = count == 0 ? 0 : -1;
out:
    PQclear(r);
    if (conn)
        PQfinish(conn);
    free(rows);
    free(acked);
    return rc;
}
