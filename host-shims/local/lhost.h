/*
 * The local host: one cluster run as local processes from mgo's process target
 * (docs/spec/render-process.md), driven only through the library, with everything it knows
 * persisted in STATE/<cluster>/state.json (docs/local.md).
 *
 * A step: start recorded servers that should run and do not (etcd; instances that no drain
 * has stopped), build `observed` (each object with its labels, annotations, readiness, role
 * and ports), call mgo_reconcile and execute its actions in order, persisting after each; then
 * advance every drain with mgo_drain (annotations persisted before the next action), then
 * mgo_converge for each shard. The state file is written (to a temporary file, synced, renamed)
 * before and after every change to a process, so that a command killed at any point leaves a
 * state the next command resumes from:
 *   - an instance is recorded as "creating" before initdb or pg_basebackup begins and
 *     "created" once its data directory is complete (before it starts); a "creating" one found on
 * load is stopped, its partial data directory removed (unless it was a volume reused) and its
 * record dropped, so that the next pass creates it again;
 *   - etcd writes its pid file before it execs; records of deleted objects go once their
 *     process is stopped.
 * One command changes a cluster at a time: STATE/<cluster>/lock is held (flock) meanwhile.
 */
#ifndef MGO_LOCAL_LHOST_H
#define MGO_LOCAL_LHOST_H

#include <jansson.h>
#include <stdint.h>

#include "loader.h"
#include "proc.h"

struct lhost {
    struct loader_lib *lib;
    mgo_plugin *plugin;
    struct proc_env env;
    char root[512]; /* the state directory */
    char cluster[64];
    json_t *st;       /* the state document */
    json_t *desired;  /* the last pass's desired objects */
    json_t *resolved; /* the last pass's resolved cluster */
    int lock_fd;
    int quiet;          /* no progress lines */
    int64_t started_ms; /* for progress lines */
    int exit_hint;      /* 0, or the exit code a failure calls for: 2 input or environment
                         * (fix and rerun), 3 the library failed */
    char error[2048];
};

/* What one step did. */
struct lhost_step {
    int actions, writes, drains, drain_moves, converged, changes, started;
    const char *phase; /* the status phase after the step (borrowed from the state) */
};

/* The state directory of the options, the environment or the default (docs/local.md),
 * absolute. 0, or -1 when it does not fit in buf. */
int lhost_default_root(const char *opt, char *buf, size_t size);

/* Open the cluster `cluster` under `root`: lock (when `lock`), load state.json. With `create`,
 * a cluster that has no state yet gets an empty one (nothing written until lhost_save).
 * Returns 0; -1 with h->error; 5 when the cluster does not exist (and !create). */
int lhost_open(struct lhost *h, struct loader_lib *lib, const char *root, const char *cluster,
               int create, int lock);
void lhost_close(struct lhost *h);

/* Write state.json (atomically). 0 or -1. */
int lhost_save(struct lhost *h);

/* The clusters under root (names), NULL-ended; free with free() (one block). */
char **lhost_clusters(const char *root);

/* One step (above). 0, or -1 (h->error). */
int lhost_step(struct lhost *h, struct lhost_step *out);

/* Steps until converged: a pass with no action but status, no drain pending, every shard's
 * mgo_converge converged, phase Healthy and no observer violation; then the spec is recorded
 * as the previous one. 0, or -1 on a failure or when timeout_ms passed. */
int lhost_converge(struct lhost *h, int timeout_ms);

/* The invariant report: mgo_observe over every shard, plus the host's own checks (recorded
 * processes running, etcd answering, no unrecorded postmaster under the cluster directory).
 * The result {"ok", "violations": [...], "shards": [...]} (json_decref), or NULL (h->error). */
json_t *lhost_observe(struct lhost *h);

/* The `observed` of a reconcile (or mgo_scale) request: every recorded object with its labels,
 * annotations, readiness, role and ports, and the last status (json_decref). Probes each
 * instance. */
json_t *lhost_observed(struct lhost *h);

/* The status document of `mgo status --json` (json_decref), or NULL. */
json_t *lhost_status(struct lhost *h);

/* Request the drain of instance `name` (annotations requested, requested-at) and advance it
 * with mgo_drain until it can no longer be cancelled (up to timeout_ms). Refused (2) when what
 * the drain leaves could not meet the durability policy or another drain of the shard is under
 * way. 0, 5 (no such instance), 2 (refused: nothing changed), or -1. */
int lhost_request_drain(struct lhost *h, const char *name, int timeout_ms);

/* Stop every process the state records. 0, or -1 (some did not stop; h->error). */
int lhost_stop_all(struct lhost *h);

/* Progress line on stderr ("mgo: ..."), unless quiet. */
__attribute__((format(printf, 2, 3))) void lhost_say(struct lhost *h, const char *fmt, ...);

#endif
