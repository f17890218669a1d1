/*
 * Test helper: a process host. It runs ONE cluster from mgo's process target on real servers
 * and drives it only through the library, level-triggered, as a real host would (docs/abi.md
 * "mgo_reconcile", "mgo_drain", "mgo_converge"; docs/spec/render-process.md):
 *
 *   - PostgreSQL instances are nodes of a pg_harness shard opened empty (pg_shard_open), laid
 *     out exactly as the rendered Instance says: name, data directory, port and the whole
 *     command line of spec.postgres.commandLine; the host's state directory is the shard's
 *     temporary directory. The test's etcd (tests/topo/etcd_harness) is the cluster's managed
 *     global topology server `<cluster>-global-topo`: its ports are recorded for that Etcd
 *     object, which is ready.
 *   - One step (phost_step): build `observed` (the Etcd object, each Instance and Volume that
 *     exists with the labels and annotations of the object last applied plus the host's own
 *     annotations, `ready` = the postmaster answers and the host has not marked it not
 *     ready (not_ready), `role` from pg_is_in_recovery(), `ports`),
 *     call mgo_reconcile (target "process", include_desired, `previous` = the last spec that
 *     converged, topology etcd = the test's), and execute its actions in order:
 *       apply Instance create: on a data directory that exists (a rolling update's
 *         replacement or a retained volume), start it as a standby of the current primary
 *         (pg_rewind first when pg_controldata says it was a primary: "shut down" or "in
 *         production");
 *         otherwise pg_basebackup from the current primary, started streaming; the
 *         bootstrap primary of an empty shard is initdb'ed;
 *       apply Instance reload: record the object (mgo_converge writes the settings);
 *       apply Volume create: mkdir; apply Etcd: record it (its ports must be the recorded ones);
 *       annotate: the host's annotations of the object (in memory);
 *       delete Instance: fast stop, forget (uid precondition checked; logged with the
 *         switchover annotation it had, if any); delete Volume: rm -rf;
 *       status: remembered and sent back as observed.status; event: printed and kept.
 *     Then (unless hold_drains) every instance with a drain annotation short of
 *     ready-for-deletion is stepped with mgo_drain (tests/drain/dhost.c, at most
 *     drain_call_limit calls when set) until it reaches ready-for-deletion or MGO_EAGAIN, its
 *     annotations persisted before each next action, its stop and start performed; then
 *     mgo_converge for the shard (nodes = the instances that exist, settings = the desired
 *     Instance's reload.settings, durability = its spec.durability.policy, topology = the
 *     instance's database, tablegroup and shard with the cell's root on the test etcd).
 *   - A writer, when given (phost_follow), is pointed at the primary whenever it changes:
 *     at `promoting:<new primary>` of a switchover (dhost_follow_switchover) and whenever a
 *     step finds another primary answering.
 *
 * Failures of the host itself (a server that does not start, a library call that fails other
 * than with MGO_EAGAIN) make phost_step return -1 with h->error saying why. Every server is
 * stopped by pg_shard_stop() in phost_fini(), and by the harness's exit and signal handlers.
 *
 * One thread drives a host; the struct must stay at the same address from phost_init to
 * phost_fini (the harness keeps a pointer to its shard).
 */
#ifndef MGO_TESTS_SCALE_PHOST_H
#define MGO_TESTS_SCALE_PHOST_H

#include <jansson.h>
#include <stdint.h>

#include "../topo/etcd_harness.h"
#include "dhost.h"
#include "mgo/mgo.h"
#include "pg_harness.h"
#include "writer.h"

#define PHOST_MAX_OBJECTS PG_SHARD_MAX_NODES

struct phost_object {
    char name[64];
    char uid[32];
    int node;            /* an Instance's node in the shard; -1 for a Volume */
    int starts;          /* an Instance's postmaster starts since it was created */
    json_t *object;      /* the object last applied */
    json_t *annotations; /* its annotations, then the host's writes (annotate, drain) */
};

/* What one step did. */
struct phost_step {
    int actions;     /* actions of the pass other than status */
    int writes;      /* apply, delete and annotate actions among them */
    int drains;      /* instances with a drain annotation after the step */
    int drain_moves; /* mgo_drain calls that moved a drain or acted */
    int converged;   /* the shard's mgo_converge said "converged": true */
    int changes;     /* changes mgo_converge reported */
    int32_t converge_rc;
};

struct phost {
    mgo_plugin *plugin;
    struct pg_shard shard; /* the host's state directory and its PostgreSQL nodes */
    const struct etcd_harness *etcd;
    char cluster[64];
    int port_base;
    /* the spec the host runs (YAML text, or an object) and the last one that converged */
    char *spec_text;
    json_t *spec_object;
    char *previous_text;
    json_t *previous_object;
    json_t *etcd_object; /* the Etcd object last applied, NULL before */
    json_t *status;      /* the status last published, NULL before */
    json_t *desired;     /* the last pass's desired objects */
    struct phost_object inst[PHOST_MAX_OBJECTS];
    int ninst;
    struct phost_object vol[PHOST_MAX_OBJECTS];
    int nvol;
    long next_uid;
    int primary; /* the node that answered as the primary at the last probe, -1 */
    struct writer *writer;
    int writer_node;
    struct dhost_follow follow;
    struct dhost drain;                            /* the drain host of the step under way */
    int (*after_step)(struct phost *h, void *ctx); /* nonzero fails the step (may be NULL) */
    void *after_ctx;                               /* the ctx of every hook */
    /* More hooks (each may be NULL; nonzero fails the step):
     * after_actions: once the pass's actions ran, before the drains and mgo_converge;
     *   `deleted` Instances were deleted by them;
     * after_persist: a drain's annotations were persisted on `o` (mgo_drain's annotate action);
     * after_create: fault injector: Instance `o` was just created and its node runs; called
     *   before anything else of the step (a test repoints the new standby, say). */
    int (*after_actions)(struct phost *h, int deleted, void *ctx);
    int (*after_persist)(struct phost *h, struct phost_object *o, void *ctx);
    int (*after_create)(struct phost *h, struct phost_object *o, void *ctx);
    /* Knobs of the test: hold_drains: steps call no mgo_drain at all (drains stay where they
     * are); drain_call_limit > 0: at most that many mgo_drain calls per instance and step;
     * not_ready: the instances the host reports not ready (its readiness check fails while
     * PostgreSQL may still answer: `ready` false in observed and in mgo_drain's nodes);
     * drain_deadline_ms > 0: mgo_drain's deadline_ms (default 10000). */
    int hold_drains, drain_call_limit, drain_deadline_ms;
    char not_ready[PHOST_MAX_OBJECTS][64];
    json_t *log;           /* the host's operations, in order: {"op", "instance", ...} */
    json_t *events;        /* every event action, in order */
    json_t *last_converge; /* the last mgo_converge result, NULL before */
    int steps, passes, drain_calls, converge_calls;
    char error[2048];
};

/* An empty host for `cluster` (its global topology server is `etcd`), new ports from
 * port_base. 0, or -1 (error says why). */
int phost_init(struct phost *h, mgo_plugin *plugin, const struct etcd_harness *etcd,
               const char *cluster, int port_base);

/* Stop every server and free everything. Accepts a host phost_init failed on. */
void phost_fini(struct phost *h);

/* The spec to run from now on: YAML (or JSON) text, or a MultigresCluster object (copied). */
int phost_set_spec_text(struct phost *h, const char *text);
int phost_set_spec_object(struct phost *h, const json_t *cluster);

/* Point `w` at the primary whenever it changes (NULL: stop following). */
void phost_follow(struct phost *h, struct writer *w);

/* One step (above). 0, or -1 when the host failed (error says why). */
int phost_step(struct phost *h, struct phost_step *out);

/*
 * Steps until a pass returns no action but possibly status, no drain is pending and
 * mgo_converge reports "converged": true; the spec is then `previous` of later passes. Pauses
 * 150 ms after a step that changed nothing. 0, or -1 when a step failed or timeout_ms passed.
 */
int phost_converge(struct phost *h, int timeout_ms);

/* The instance named `name`, or the one of spec.index `index` (the first pool and cell); NULL
 * when it does not exist. */
struct phost_object *phost_instance(struct phost *h, const char *name);
struct phost_object *phost_instance_at(struct phost *h, int index);

/* The host's readiness of instance `name`: ready 0 puts it in not_ready, 1 takes it out. 0, or
 * -1 when the list is full. */
int phost_set_ready(struct phost *h, const char *name, int ready);

/* Probe every running node: the node answering as the primary (the first, when several), or
 * -1; h->primary is updated. */
int phost_probe_primary(struct phost *h);

/* mgo_observe over the shard (every instance with its cell, index, running and drain): 1 when
 * it reports no violation, 0 when it does, -1 when the call failed. *ret_result (may be NULL)
 * gets the result (json_decref it). */
int phost_observe(struct phost *h, json_t **ret_result);

/* mgo_topology list_poolers of the shard in the first instance's cell: the poolers array
 * (json_decref it), or NULL (error says why). */
json_t *phost_list_poolers(struct phost *h);

/* The `observed` of the next pass, {"objects": [...], "status": ...} (json_decref it); it
 * probes every instance. */
json_t *phost_observed(struct phost *h);

/* The first desired Instance of the last pass (borrowed), or NULL. */
const json_t *phost_desired_instance(const struct phost *h);

/* A loopback port with `count` free ports from it upward, or -1. */
int phost_free_port_base(int count);

/* The contents of a file (free it), or NULL. */
char *phost_read_file(const char *path);

#endif
