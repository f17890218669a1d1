/*
 * wq: the work queue of mgo-kube's reconcile workers, with the semantics of client-go's
 * util/workqueue (a rate-limiting, delaying queue as a controller-runtime controller uses it).
 * Module prefix wq_.
 *
 * Keys are strings ("namespace/name"), copied by the queue. A key is in at most one of the
 * ready list and a worker's hands at a time:
 *   - wq_add of a key that is already queued (dirty) does nothing;
 *   - wq_add of a key that a worker holds (processing) only marks it dirty: wq_done re-queues it;
 *   - so a key is never handed to two workers at once.
 * Delayed keys (wq_add_after, wq_add_rate_limited, wq_add_backoff) wait beside the queue and are
 * added (as by wq_add) when their ready time has come; a key waits once, with the earliest ready
 * time asked. The per-key rate limiter is client-go's ItemExponentialFailureRateLimiter: delay =
 * min(max_delay, base_delay * 2^failures), then failures++; wq_forget resets it. wq_add_backoff
 * raises that delay to a floor, which may exceed max_delay.
 *
 * Threads. Every function may be called from any thread; one mutex guards the queue. wq_get
 * blocks (see there); nothing else blocks beyond the mutex.
 *
 * Complexity. The queue keeps one record per key that is queued, held, waiting or has failures,
 * in an array searched linearly: every operation is O(n) in those keys, meant for up to a few
 * thousand keys (a controller's objects), not for millions.
 *
 * Return values: 0 on success or a negative errno-style code (-EINVAL bad arguments, -ENOMEM
 * allocation failed, -ESHUTDOWN the queue is shut down, -ETIMEDOUT nothing ready in time).
 */
#ifndef MGO_KUBE_WORKQUEUE_H
#define MGO_KUBE_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#define WQ_DEFAULT_BASE_DELAY_MS 5
#define WQ_DEFAULT_MAX_DELAY_MS  1000000

struct wq;

struct wq_options {
    /*
     * A monotonic clock in milliseconds, called with the queue's mutex held (it must not call
     * back into the queue). NULL: CLOCK_MONOTONIC. Ready times of delayed keys are read on this
     * clock; wq_get's timeout is always real time (CLOCK_MONOTONIC).
     */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
    int64_t base_delay_ms; /* first rate-limited delay; <= 0: WQ_DEFAULT_BASE_DELAY_MS */
    int64_t max_delay_ms;  /* cap of the rate-limited delay; <= 0: WQ_DEFAULT_MAX_DELAY_MS */
};

/*
 * Create a queue. opts may be NULL (all defaults); it is copied. On success *ret owns the queue
 * (wq_free). -EINVAL: ret is NULL or max_delay_ms < base_delay_ms; -ENOMEM; or the negative
 * code of a failed pthread initialisation.
 */
int wq_new(struct wq **ret, const struct wq_options *opts);

/*
 * Free the queue and every key it holds. Accepts NULL. No thread may use the queue any more:
 * call wq_shutdown and join the workers first.
 */
void wq_free(struct wq *q);

/*
 * Queue key (copied) unless it is already queued; if a worker holds it, mark it dirty so that
 * wq_done re-queues it. Wakes one waiting wq_get. -EINVAL: q or key NULL; -ENOMEM;
 * -ESHUTDOWN: the queue is shut down (the key is dropped, as client-go does).
 */
int wq_add(struct wq *q, const char *key);

/*
 * Add key when delay_ms have passed on the queue's clock. If the key already waits, the earlier
 * of the two ready times is kept. delay_ms <= 0 is wq_add. Errors as wq_add.
 */
int wq_add_after(struct wq *q, const char *key, int64_t delay_ms);

/*
 * wq_add_after(key, min(max_delay, base_delay * 2^failures)) and count one more failure of key.
 * With the defaults: 5, 10, 20, 40, ... ms, capped at 1000 s. Errors as wq_add.
 */
int wq_add_rate_limited(struct wq *q, const char *key);

/* wq_add_rate_limited, but waiting at least min_delay_ms, even beyond max_delay (for a failure
 * that a retry cannot mend sooner, such as a write refused because the cache was stale); it
 * counts as a failure too. Errors as wq_add. */
int wq_add_backoff(struct wq *q, const char *key, int64_t min_delay_ms);

/* Reset key's failure count (the key succeeded). Unknown keys and a NULL q are ignored. */
void wq_forget(struct wq *q, const char *key);

/* The failure count of key (wq_add_rate_limited and wq_add_backoff calls since the last
 * wq_forget); 0 if unknown. */
int wq_num_requeues(struct wq *q, const char *key);

/*
 * Take the next ready key, first in first out, and hand it to the caller, who then holds it
 * (processing) until wq_done. On success *key_out is a malloc'd copy owned by the caller (free).
 * Delayed keys whose time has come are moved to the ready list first.
 * timeout_ms: 0 polls without waiting, < 0 waits without limit, > 0 waits at most that long
 * (real time). Returns -ETIMEDOUT when nothing became ready in time, -ESHUTDOWN at once when
 * the queue is or becomes shut down (even with keys still queued: see wq_shutdown), -EINVAL,
 * -ENOMEM.
 */
int wq_get(struct wq *q, char **key_out, int64_t timeout_ms);

/*
 * The worker finished with key (taken by wq_get). If the key was added meanwhile it is queued
 * again. -EINVAL: q or key NULL; -ENOENT: key is not held by a worker.
 */
int wq_done(struct wq *q, const char *key);

/*
 * Wake waiting wq_get calls so that they look at the clock again: for tests with an injected
 * clock, after advancing it. Accepts NULL.
 */
void wq_tick(struct wq *q);

/* Keys ready to be taken (the queue depth), after moving due delayed keys. 0 for NULL. */
size_t wq_len(struct wq *q);

/* Keys waiting for their ready time (delayed adds not yet due). 0 for NULL. */
size_t wq_waiting(struct wq *q);

/*
 * wq_get calls currently asleep waiting for a key (blocked on the queue's condition variable,
 * the mutex released). For tests that must know a waiter is really blocked. 0 for NULL.
 */
size_t wq_blocked_gets(struct wq *q);

/*
 * Shut the queue down: every wq_get, waiting or future, returns -ESHUTDOWN at once, even while
 * keys are still queued (they are not handed out any more); later adds are dropped. wq_done
 * still works. Idempotent; accepts NULL.
 *
 * This differs from client-go on purpose. client-go's ShutDown lets workers go on taking the
 * keys already queued until the queue is empty (and ShutDownWithDrain also waits for the keys in
 * hand). mgo-kube shuts the queue down in ctrl_stop_workers, at a signal or when leadership is
 * lost, to stop reconciling: a worker must not start another reconcile (another write to the
 * cluster) after that, since another replica may be the leader by now. Keys dropped so are
 * reconciled again by the next leader's first list.
 */
void wq_shutdown(struct wq *q);

#endif
