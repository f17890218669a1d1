/*
 * Test helper: a drain host. It keeps the drained instance's annotations, builds each
 * mgo_drain request from the shard as it finds it (which nodes run, and for a stopped one what
 * pg_controldata says), calls mgo_drain and performs the returned actions in order: annotate
 * (kept, then persisted through a hook before the next action), stop and start (through hooks:
 * the process that owns the postmasters does those). Written from docs/abi.md "mgo_drain".
 * Slots of the shard that pg_node_forget() freed are left out of every request.
 */
#ifndef MGO_TESTS_DRAIN_DHOST_H
#define MGO_TESTS_DRAIN_DHOST_H

#include <stdint.h>

#include "mgo/mgo.h"
#include "pg_harness.h"
#include "writer.h"

struct dhost {
    mgo_plugin *plugin;
    struct pg_shard *shard;                  /* its nodes are the shard's nodes, in order */
    char instance[64];                       /* the instance being drained */
    char durability[32];                     /* AT_LEAST_2 unless set */
    int deadline_ms;                         /* per call */
    char state[32];                          /* drain.multigres.com/state of the instance */
    char switchover[96];                     /* drain.multigres.com/switchover, "" when none */
    char node_drain[PG_SHARD_MAX_NODES][64]; /* other nodes' drain states ("" none) */
    /* hooks; 0 on success */
    int (*stop)(struct dhost *h, int node);           /* fast shutdown, then immediate */
    int (*start)(struct dhost *h, int node);          /* start it as it is configured */
    int (*persist)(struct dhost *h);                  /* the annotations changed (may be NULL) */
    void (*point)(struct dhost *h, const char *what); /* before and after each action (NULL) */
    /* the request's facts of node `node` (may be NULL: cell "z1", index = node, ready) */
    void (*describe)(const struct dhost *h, int node, const char **cell, int *index, int *ready);
    void *ctx;
    int32_t last_rc;
    char message[1024]; /* the last call's message or error message */
    int calls, stops, starts;
};

/* What a host that follows the switchover keeps (h->ctx for dhost_follow_switchover): once a
 * promotion may begin (promoting:<node>), the writer (when set) is pointed at the new primary
 * and *primary (when set) becomes its index. */
struct dhost_follow {
    struct writer *writer;
    int *primary;
};

/* A host in `requested` for `instance` on shard s, owning its postmasters (the hooks below),
 * following the switchover with f (may be NULL), 5 s per call. */
void dhost_init(struct dhost *h, mgo_plugin *plugin, struct pg_shard *s, const char *instance,
                struct dhost_follow *f);

/* Hooks for the process that owns the postmasters: stop fast, immediate when fast fails; start
 * as configured; follow the switchover (h->ctx, a struct dhost_follow or NULL). 0 or -1. */
int dhost_stop_harness(struct dhost *h, int node);
int dhost_start_harness(struct dhost *h, int node);
int dhost_follow_switchover(struct dhost *h);

/* Writes go on (more than 10 commits acknowledged within 10 s) and every acknowledged commit is
 * on node `primary`. 0, or -1; report says what was found either way. */
int dhost_check_writes(struct writer *w, const struct pg_shard *s, int primary, char *report,
                       size_t size);

/* The postmaster of node i runs: its postmaster.pid exists. */
int dhost_node_running(const struct dhost *h, int i);

/* One mgo_drain call and its actions. Returns the call's status (MGO_OK, MGO_EAGAIN, ...), or
 * -1000 when an action failed (message says which). */
int32_t dhost_call(struct dhost *h);

/* Call until the state is `until` (0), a call fails other than with MGO_EAGAIN (its status), or
 * max_calls calls were made (MGO_EAGAIN); pauses pause_ms after a call that did not move. */
int32_t dhost_run(struct dhost *h, const char *until, int max_calls, int pause_ms);

/* The node index of `name` in the shard, or -1. */
int dhost_node(const struct dhost *h, const char *name);

/* Shard chores between drains (the process owning the postmasters calls them). 0 or -1.
 * dhost_rejoin: the stopped node `old` becomes a standby of `primary` (pg_node_follow), starts,
 * and streams from it within 30 s.
 * dhost_restore_sync_set: `primary` names every other node in "ANY 1 (...)", and within 30 s
 * every other node streams from it as a quorum standby. */
int dhost_rejoin(struct pg_shard *s, int old, int primary);

/* mgo_observe over the shard (every node, `running` as its postmaster.pid says): 1 when it
 * reports no violation, 0 when it does (report gets the result), -1 when the call failed. */
int dhost_observe(mgo_plugin *plugin, const struct pg_shard *s, char *report, size_t size);

/* A loopback port the kernel reports free now (bind to port 0), or -1. */
int dhost_free_port(void);
int dhost_restore_sync_set(struct pg_shard *s, int primary);

#endif
