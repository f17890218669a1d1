/*
 * cmocka checks shared by the scale and rolling-update tests (each fails the running test).
 */
#ifndef MGO_TESTS_SCALE_CHECKS_H
#define MGO_TESTS_SCALE_CHECKS_H

#include "scenario.h"

/* phost_converge within timeout_ms, the observer ran after every step and saw no violation,
 * and every instance is named as check_instance_names says. */
void check_converge(struct scenario *s, int timeout_ms, const char *what);

/* One phost_step; the observer ran after it and saw no violation. */
void check_step(struct scenario *s, const char *what);

/* Every instance's name is the same stem followed by "-<its spec.index>" (render-process.md:
 * names end with the index), the suffix written here by hand. */
void check_instance_names(struct scenario *s);

/* The pooler records in etcd, read directly (tests/topology/topo_wire.h, not mgo_topology):
 * under /multigres/global/poolers/ (docs/topology.md: a cell without its own topology server
 * has the global root, default /multigres/global) exactly one record per instance that exists,
 * key multipooler-z1-<name>/Pooler, decoded from the wire by Multigres' field numbers
 * (facts/multigres-core.md): id {MULTIPOOLER, "z1", name}, shard_key {postgres, default,
 * 0-inf}, port_map postgres = its port, routing_state.role PRIMARY (1) for the primary and
 * REPLICA (2) for the others, serving (no serving_status). `gone` (n_gone names) have none. */
void check_topology(struct scenario *s, const char *const *gone, int n_gone);

/* The writer's failed and timed-out counts are what `before` had: no commit failed. */
void check_no_failed_commits(struct scenario *s, const struct writer_stats *before,
                             const char *when);

/* Writes go on and no acknowledged commit is missing on the current primary. */
void check_writes(struct scenario *s, const char *when);

/* The name of the instance of spec.index `index` (it must exist). */
const char *check_name_at(struct scenario *s, int index);

/* The primary's synchronous_standby_names is exactly ANY 1 over the instances of these
 * indexes, in this order, each name double-quoted (docs/abi.md "mgo_converge"). */
void check_sync_set(struct scenario *s, const int *indexes, int n);

/* `standbys` connections stream from the primary (waits up to 10 s). */
void check_streaming(struct scenario *s, int standbys);

/* The name an instance of `index` gets: the stem of the instance of `of` (an existing index)
 * followed by "-<index>" (render-process.md "Instance"). */
void check_name_for_index(struct scenario *s, int of, int index, char *out, size_t size);

/* mgo_scale of pool main to `to` (from `from`) with the host's observed objects; its common
 * fields checked against docs/abi.md "mgo_scale" (cluster.yaml's shard has an inline spec: the
 * size is written there), `waiting` entries in waiting_for (unless < 0: the caller checks it);
 * the host then runs its `spec`.
 * The plan (json_decref it). */
json_t *check_resize(struct scenario *s, int from, int to, int waiting);

/* The plan's drain list is exactly these names in this order, each with this role ("primary"
 * or "standby") and readiness, pool main, cell z1, its index as its name says, volume Delete. */
void check_plan_drains(const json_t *plan, const char *const *names, const char *const *roles,
                       const int *ready, int n);

/* The instances whose drain was requested (an annotate of state `requested`) since log entry
 * `mark`, in order, at most max; their number. */
int check_drains_requested(struct scenario *s, size_t mark, char names[][64], int max);

/* The log position of the request of `name`'s drain since `mark`, or -1. */
int check_requested_at(struct scenario *s, size_t mark, const char *name);

/* One at a time (lifecycle.md "Scale down" 6): since `mark`, the drains of names[0..n-1] were
 * requested in this order, each instance deleted once, and each request after the first comes
 * after the delete of the instance before it, in a later step (no pass that deletes starts a
 * drain). */
void check_one_at_a_time(struct scenario *s, size_t mark, const char *const *names, int n);

/* Whether `name`'s drain went, since `mark`, to a state or switchover containing `what`. */
int check_drain_went_through(struct scenario *s, size_t mark, const char *name, const char *what);

#endif
