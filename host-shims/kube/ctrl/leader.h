/*
 * Lease-based leader election for mgo-kube (coordination.k8s.io/v1 Lease), module prefix leader_.
 *
 * The algorithm is client-go's (tools/leaderelection/leaderelection.go; shared/facts/
 * kubernetes-controller.md §1.7):
 *  - acquire: every retry period with jitter factor 1.2 (waits of retry .. 2.2 x retry), GET the
 *    Lease; create it on 404 (a 409 AlreadyExists means another elector won the race: try again
 *    next round). When another holder's record has not changed since this process first saw it
 *    and its leaseDurationSeconds have not passed since then (since the answer that first showed
 *    it arrived), measured by this process's own monotonic clock (never from renewTime, so clock
 *    skew between nodes does not matter), give up the round. Otherwise PUT the record with the
 *    resourceVersion read, so that a race loses with 409 Conflict. leaseTransitions grows by one
 *    when the holder changes (0 on creation); acquireTime is kept while renewing one's own lease.
 *  - renew: every retry period (no jitter), the same step. When no renewal succeeded within the
 *    renew deadline after the last successful one, leadership is lost: the is_leader flag is
 *    cleared, on_stopped_leading is called, and the elector does nothing more (as in client-go,
 *    it does not try to lead again). mgo-kube then exits, like controller-runtime's manager
 *    ("leader election lost"): whatever it started as leader must not go on.
 *  - release (leader_stop with release): the record is written with holderIdentity "" and
 *    leaseDurationSeconds 1, so that a standby takes over at its next try instead of waiting for
 *    the lease to expire (controller-runtime's LeaderElectionReleaseOnCancel).
 *
 * Lease spec written: holderIdentity, leaseDurationSeconds (lease_duration_ms / 1000),
 * acquireTime, renewTime (MicroTime "2006-01-02T15:04:05.000000Z", UTC from the real-time
 * clock: informational only), leaseTransitions.
 *
 * Threads. An elector runs one thread of its own with its own kc client; the functions below may
 * be called from any thread, except that leader_stop and leader_free must not be called from the
 * elector's callbacks (they wait for the elector's thread). Electors share nothing. The host
 * calls kc_global_init() once before the first elector starts.
 *
 * Return values: 0 on success or a negative errno-style code: -EINVAL (bad configuration; the
 * log callback, when set, gets the reason), -ENOMEM, or what pthread_create answered.
 */
#ifndef MGO_KUBE_LEADER_H
#define MGO_KUBE_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kc.h"

/* Defaults for zero fields of struct leader_config (controller-runtime's). */
#define LEADER_DEFAULT_LEASE_DURATION_MS  15000
#define LEADER_DEFAULT_RENEW_DEADLINE_MS  10000
#define LEADER_DEFAULT_RETRY_PERIOD_MS    2000
#define LEADER_DEFAULT_REQUEST_TIMEOUT_MS 1000
/* The longest leader_stop spends releasing the lease (all tries together). */
#define LEADER_RELEASE_BUDGET_MS 2000

/* Levels of the log callback (the same numbers as klog's and MGO_LOG_*). */
#define LEADER_LOG_ERROR 0
#define LEADER_LOG_WARN  1
#define LEADER_LOG_INFO  2
#define LEADER_LOG_DEBUG 3

/*
 * An elector's configuration. Strings are borrowed by leader_start, which copies them.
 * Durations of 0 take the defaults above; after that leader_start requires
 * lease_duration_ms > renew_deadline_ms > 1.2 x retry_period_ms > 0, lease_duration_ms a whole
 * number of seconds (the Lease holds seconds; a fraction dropped would let others take over
 * before this elector gives up), request_timeout_ms > 0, and every duration at most one day.
 */
struct leader_config {
    const char *namespace; /* of the Lease; required */
    const char *name;      /* of the Lease; required */
    const char *identity;  /* this elector's holderIdentity, unique per process (mgo-kube:
                            * hostname + "_" + random hex); required, not empty */
    int64_t lease_duration_ms;
    int64_t renew_deadline_ms;
    int64_t retry_period_ms;
    /* The timeout of each request of the election loop (capped by the time left before the
     * renew deadline while leading); leader_stop waits for at most one such request. */
    int64_t request_timeout_ms;

    /* Called on the elector's thread once this elector holds the lease (is_leader is already
     * true). It must return promptly (start the work on other threads): renewals wait for it. */
    void (*on_started_leading)(void *ctx);
    /* Called on the elector's thread when leadership is lost (is_leader already false). Not
     * called by leader_stop. The host should stop everything it did as leader (mgo-kube exits). */
    void (*on_stopped_leading)(void *ctx);
    void *callback_ctx;

    /* Log lines (no trailing newline), on the elector's thread or the caller's; may be NULL. */
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
};

/* Counters of an elector since it started, for metrics and tests. */
struct leader_stats {
    uint64_t holder_changes;   /* times the holder seen in the Lease differed from the one seen
                                * before (the first reading counts when it names a holder) */
    uint64_t renew_failures;   /* renewals that failed while leading */
    uint64_t acquisitions;     /* times this elector became leader (0 or 1) */
    int64_t lease_transitions; /* leaseTransitions of the record last seen or written; -1: none */
};

struct leader;

/*
 * Check a configuration after applying the defaults, without starting anything. -EINVAL with a
 * one-line reason in err (err_len bytes, may be 0) when it is refused, else 0.
 */
int leader_config_check(const struct leader_config *cfg, char *err, size_t err_len);

/*
 * Start an elector: check cfg (as leader_config_check; -EINVAL, logged; a NULL kc or ret is
 * -EINVAL too), make a kc client for `kc` (copied by kc_client_new; the caller keeps its own) and
 * start the elector's thread, which begins to acquire at once. Does not block on the network. *ret
 * (written only on success) is owned by the caller: leader_free.
 */
int leader_start(const struct leader_config *cfg, const struct kc_config *kc, struct leader **ret);

/*
 * Stop the elector's thread and wait for it. When this elector holds the lease and `release` is
 * true, the record is then written with holderIdentity "" and leaseDurationSeconds 1 (a conflict
 * is retried after a fresh GET while the Lease still names this elector), within
 * LEADER_RELEASE_BUDGET_MS. Returns within about request_timeout_ms + LEADER_RELEASE_BUDGET_MS
 * (3 s with the defaults) even when the server is unreachable. Afterwards is_leader is false;
 * the counters and the holder stay readable. A second call does nothing. No callback is called.
 */
void leader_stop(struct leader *le, bool release);

/* leader_stop(le, false) when still running, then free everything. NULL is accepted. */
void leader_free(struct leader *le);

/* Whether this elector leads now (an atomic read; any thread). */
bool leader_is_leader(const struct leader *le);

/* A consistent copy of the counters (any thread). */
void leader_get_stats(const struct leader *le, struct leader_stats *out);

/*
 * Copy the holderIdentity last seen in the Lease ("" when none was seen, or the Lease names no
 * holder) into buf (len bytes, NUL-terminated when len > 0). Any thread. Returns 0, or -ERANGE
 * when it did not fit (buf then holds the truncated start).
 */
int leader_get_holder(const struct leader *le, char *buf, size_t len);

#endif
