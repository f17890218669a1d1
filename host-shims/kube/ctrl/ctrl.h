/*
 * mgo-kube's controller: informers over MultigresClusters, their templates and the objects mgo
 * owns; a work queue of cluster keys; workers that call mgo_reconcile and apply what it returns
 * (docs/kube.md). Module prefix ctrl_.
 */
#ifndef MGO_KUBE_CTRL_H
#define MGO_KUBE_CTRL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kc.h"

struct loader_lib;
struct kmetrics;

/* One --resolve rule: an address equal to `from` (or, when from starts with '*', ending with the
 * rest of it) is reached at `to` instead. */
struct ctrl_resolve {
    char *from;
    char *to;
};

struct ctrl_options {
    const char *namespace; /* watch only this namespace; NULL: every namespace */
    int workers;           /* reconciles at once (different clusters); >= 1 */
    bool topology;         /* register Cell and Database records (default on) */
    int64_t topology_deadline_ms;
    const struct ctrl_resolve *resolve; /* borrowed */
    size_t n_resolve;
    const char *identity;   /* this replica's name (events' reportingInstance) */
    const char *user_agent; /* of the workers' requests; NULL: the client's default. Borrowed:
                             * the caller keeps it until ctrl_free */
};

struct ctrl;

/*
 * Start the informers (each on its own thread and client). Workers are not started yet: see
 * ctrl_start_workers. `lib` and `reg` are borrowed and must outlive the controller. -ENOMEM,
 * -EINVAL, or a negated pthread error; nothing is left running on failure.
 */
int ctrl_new(const struct kc_config *cfg, const struct ctrl_options *opts,
             const struct loader_lib *lib, struct kmetrics *reg, struct ctrl **ret);
/* Every informer listed once (what /readyz reports). */
bool ctrl_synced(struct ctrl *c);
/* Start the workers (once leading). Idempotent; does nothing after ctrl_stop_workers. Each
 * worker waits for ctrl_synced before its first pass. */
int ctrl_start_workers(struct ctrl *c);
/* Stop writing, at once and for good, without waiting: no pass starts and no API request is
 * begun after it returns, and one in flight is dropped within about a second
 * (kc_client_set_cancel; the server may still carry out a write it had received). A pass already
 * inside mgo_reconcile may go on registering its topology records (idempotent) until the
 * topology deadline (--topology-deadline-ms); the library has no cancel. Any thread, for example
 * the leader elector's when leadership is lost. NULL is fine. */
void ctrl_cancel(struct ctrl *c);
/* ctrl_cancel, then wait for the workers to end, and free them. Safe against a concurrent
 * ctrl_start_workers. NULL is fine. */
void ctrl_stop_workers(struct ctrl *c);
/* ctrl_stop_workers, then stop the informers and free. NULL is fine. */
void ctrl_free(struct ctrl *c);
/* Update the gauges that are sampled (queue depth, cached objects) before /metrics renders. */
void ctrl_sample_metrics(struct ctrl *c);

#endif
