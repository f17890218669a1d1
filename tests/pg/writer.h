/*
 * Test helper: the data-safety writer. A thread inserts into
 *     acked(id bigint primary key, at timestamptz default now())
 * through the CURRENT primary, one row per transaction (an autocommit INSERT), each with a
 * client-side timeout (async libpq and poll; on timeout the query is cancelled and the
 * connection closed, because a commit waiting for a synchronous standby ignores
 * statement_timeout: facts P4). It records the id of every INSERT whose commit returned
 * success (acknowledged), counts failed and timed-out attempts, and measures the longest stall
 * (time between consecutive acknowledged commits). Ids grow by one per attempt and are never
 * reused: a timed-out commit may have committed locally without being acknowledged.
 *
 * The test points the writer at the primary with writer_switch() (a mutex-protected conninfo);
 * the thread reconnects before its next attempt. While the target refuses (down, or a standby),
 * attempts fail and are retried every 20 ms.
 *
 * writer_check() then proves every acknowledged id is on a node.
 *
 * All functions are thread-safe; one thread should own start and free.
 */
#ifndef MGO_TESTS_PG_WRITER_H
#define MGO_TESTS_PG_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct writer;

struct writer_stats {
    size_t attempts;          /* INSERTs sent, plus failed connection attempts */
    size_t acked;             /* commits that returned success */
    size_t failed;            /* errors: connection refused or lost, read-only standby, ... */
    size_t timed_out;         /* cancelled at the client timeout: NOT acknowledged */
    int64_t first_acked_id;   /* 0 when none */
    int64_t last_acked_id;    /* 0 when none */
    int64_t longest_stall_ms; /* longest time between consecutive acknowledged commits */
    int64_t running_ms;       /* from writer_start to writer_stop (or now) */
    char last_error[256];     /* the last failure, "" when none */
};

/*
 * Create the table (CREATE TABLE IF NOT EXISTS, committed with synchronous_commit = local so
 * that it does not wait for standbys) through `conninfo`, then start the thread with
 * commit_timeout_ms per attempt (e.g. 2000). The writer (free with writer_free()), or NULL
 * after printing why to stderr.
 */
struct writer *writer_start(const char *conninfo, int commit_timeout_ms);

/* Point the next attempts at another node (the new primary). Copies conninfo. */
void writer_switch(struct writer *w, const char *conninfo);

/* Stop the thread: it finishes its current attempt (at most the commit timeout) and exits.
 * Idempotent. Statistics and acknowledged ids stay readable. */
void writer_stop(struct writer *w);

/* A consistent snapshot of the counters. */
void writer_get_stats(const struct writer *w, struct writer_stats *out);

/* Start a new measuring window: longest_stall_ms becomes the longest gap between two
 * consecutive acknowledged commits among the gaps that END after this call (the first may begin
 * before it), so that a benchmark measures each operation's stall on its own. */
void writer_reset_stall(struct writer *w);

/* Stop if needed and free. Accepts NULL. */
void writer_free(struct writer *w);

/*
 * Read every id in `acked` on the node at `conninfo` (connect 10 s, query 60 s) and check that
 * each id the writer acknowledged BEFORE this call is present. The writer may still be running;
 * on a standby, wait for replay first. Returns 0 when all are present; -1 when some are missing
 * (*missing = their number) or the table could not be read (*missing not written). err always
 * gets a report: how many acknowledged ids were checked, how many rows the node has and how
 * many of them were not acknowledged when the check began (timed-out or failed commits that
 * committed anyway, or commits acknowledged during the check), or the first missing ids, or
 * why the read failed.
 */
int writer_check(const char *conninfo, const struct writer *w, size_t *missing, char *err,
                 size_t err_size);

#endif
