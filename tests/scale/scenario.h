/*
 * Test helper: the common frame of the scale and rolling-update tests and their benchmark. A
 * real etcd, a library handle, a process host (phost.h) running the cluster of a manifest
 * file, brought up (phost_converge) and then written to continuously by a writer (writer.h)
 * that follows the primary; an observer checks the shard after every later step.
 *
 * The observer (scenario_watch) runs after every step of the host:
 *   - mgo_observe over the shard: every violation fails the step, except the tolerated ones
 *     below;
 *   - independently of mgo, with SQL: exactly one instance answers as a primary, its
 *     synchronous_standby_names is not empty, every standby it names is connected to it with
 *     pg_stat_replication.state = 'streaming' (lifecycle.md: a standby counts only once it
 *     streams), none it names is past the synchronous set by its drain state (`acknowledged`,
 *     `ready-for-deletion`: lifecycle.md "Draining an instance"), at least one named streaming
 *     standby is not being drained, and every commit the writer acknowledged so far is on the
 *     primary (writer_check).
 * The same SQL check also runs in the middle of a step, after the pass's actions deleted an
 * instance and before mgo_converge (phost after_actions), and when a drain persists
 * `acknowledged` (phost after_persist) the primary is read: it neither names the instance in
 * synchronous_standby_names nor reports it sync, quorum or potential in pg_stat_replication
 * (logged as {"op": "ack-check", "instance", "primary", "ssn", "sync_state"}).
 *
 * Tolerated, and never anything else:
 *   - transient, only when s->allow_switchover is set and a switchover is under way (an
 *     instance carries drain.multigres.com/switchover, or one that did was deleted in this
 *     step, or the drain of an instance abandoned one and is still `draining`: the old
 *     primary was started again, its standbys reconnect, and the drain retries): NO instance
 *     answering as a primary (the fence: the old primary is stopped before the candidate is
 *     promoted, lifecycle.md "Drain of the primary" 3-5; two primaries are never tolerated),
 *     a named standby not streaming yet and the durability shortfall that follows (the
 *     standbys repointed at the new primary reconnect: a walreceiver retries every 5 s;
 *     mgo_drain waits only for the durability policy and, for up to half its deadline, for
 *     the others). Counted, listed, and logged as {"op": "transient", "step", "what"};
 *   - fault: a named standby not streaming, when the test made it fail on purpose
 *     (scenario_fault). Counted in s->faults.
 * Each SQL check that found a primary adds {"op": "watch", "step", "primary", "ssn" (its
 * synchronous_standby_names), "streaming" (",name,name,": the standbys streaming from it)} to
 * the host's log.
 */
#ifndef MGO_TESTS_SCALE_SCENARIO_H
#define MGO_TESTS_SCALE_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "phost.h"

struct scenario {
    struct etcd_harness etcd;
    mgo_plugin *plugin;
    struct phost host;
    struct writer *writer;
    char *manifest; /* the spec text the host runs */
    int watching;   /* the observer runs after each step (set by scenario_start) */
    int allow_switchover;
    int watched_steps, transients, faults;
    int writer_checks; /* acknowledged commits found on the primary by the observer */
    int ack_checks;    /* drains seen persisting `acknowledged`, primary read each time */
    int delete_checks; /* SQL checks between a pass's deletes and mgo_converge */
    char faulted[4][64];
    char transient_log[4096];
    char violation[2048]; /* the first violation that failed a step */
    int64_t bring_up_ms;
};

/* Start etcd and the host, bring the manifest's cluster (named "t") up (up to 2 minutes), start the
 * writer through the primary and the observer. `s` must stay at the same address until
 * scenario_stop. 0, or -1 after printing why (scenario_stop still needed). */
int scenario_start(struct scenario *s, const char *manifest_path);

/* The same with the manifest's "replicasPerCell: 3" replaced by `replicas` first. */
int scenario_start_at(struct scenario *s, const char *manifest_path, int replicas);

/* The test made instance `name` fail on purpose (on 1) or repaired it (on 0): the observer
 * tolerates that it is named and does not stream (above). 0, or -1 when the list is full. */
int scenario_fault(struct scenario *s, const char *name, int on);

/* Stop the writer, every server, free everything. Accepts a failed start. */
void scenario_stop(struct scenario *s);

/* Replace the first `from` in the spec text by `to` and give the host the new text. 0, or -1
 * when `from` is not in it. */
int scenario_edit(struct scenario *s, const char *from, const char *to);

/* Writes go on and every acknowledged commit is on the current primary (dhost_check_writes):
 * 0, or -1; report says what was found. */
int scenario_check_writes(struct scenario *s, char *report, size_t size);

/* The observer as phost hooks (ctx: the scenario): after_step, after_actions, after_persist.
 * Each returns 0, or -1 after keeping the first violation in s->violation. */
int scenario_watch(struct phost *h, void *ctx);
int scenario_after_actions(struct phost *h, int deleted, void *ctx);
int scenario_after_persist(struct phost *h, struct phost_object *o, void *ctx);

/* The names of a synchronous_standby_names value ("ANY 1 (\"a\", b)", "a, b", ...), without
 * quotes, at most max; the number found. */
int scenario_standby_names(const char *value, char names[][64], int max);

/* The host's operations (phost.h, h->log) since entry `mark`: how many are `op` (of instance
 * `name` when not NULL), and the position of the first such one (-1 when none). */
int scenario_count_ops(const struct scenario *s, size_t mark, const char *op, const char *name);
int scenario_first_op(const struct scenario *s, size_t mark, const char *op, const char *name);

/* Milliseconds of a monotonic clock. */
int64_t scenario_now_ms(void);

/* Run `sql` on the instance of spec.index `index`: 0 with the first column in out, or -1. */
int scenario_sql(struct scenario *s, int index, const char *sql, char *out, size_t size);

#endif
