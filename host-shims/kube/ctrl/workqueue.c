/*
 * The work queue (workqueue.h): one record per known key, a FIFO of records ready to be taken,
 * all under one mutex; delayed keys are promoted whenever the queue is looked at.
 */
#include "workqueue.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wq_entry {
    char *key;
    bool dirty;      /* queued, or added again while processing */
    bool processing; /* held by a worker (between wq_get and wq_done) */
    bool waiting;    /* a delayed add is pending, due at ready_at */
    int64_t ready_at;
    unsigned failures;
};

struct wq {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* waits on CLOCK_MONOTONIC */
    struct wq_options opts;
    struct wq_entry **entries; /* every known key; pointers stay put when the array moves */
    size_t n_entries;
    size_t cap;              /* capacity of entries and of ready alike */
    struct wq_entry **ready; /* FIFO of dirty, not processing records; never overflows */
    size_t n_ready;
    size_t n_waiting;
    size_t n_blocked_gets; /* wq_get calls asleep on cond */
    bool shut;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t queue_now(struct wq *q)
{
    if (q->opts.now_ms)
        return q->opts.now_ms(q->opts.now_ctx);
    return monotonic_ms();
}

static struct wq_entry *entry_find(struct wq *q, const char *key)
{
    for (size_t i = 0; i < q->n_entries; i++)
        if (strcmp(q->entries[i]->key, key) == 0)
            return q->entries[i];
    return NULL;
}

static int grow(struct wq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 16;
    struct wq_entry **entries, **ready;

    entries = realloc(q->entries, cap * sizeof(*entries));
    if (!entries)
        return -ENOMEM;
    q->entries = entries;
    ready = realloc(q->ready, cap * sizeof(*ready));
    if (!ready)
        return -ENOMEM; /* entries grew; harmless, cap stays until both succeed */
    q->ready = ready;
    q->cap = cap;
    return 0;
}

static int entry_get(struct wq *q, const char *key, struct wq_entry **ret)
{
    struct wq_entry *e = entry_find(q, key);
    int r;

    if (e) {
        *ret = e;
        return 0;
    }
    if (q->n_entries == q->cap && (r = grow(q)) < 0)
        return r;
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return -ENOMEM;
    }
    q->entries[q->n_entries++] = e;
    *ret = e;
    return 0;
}

/* Drop the record of a key the queue no longer needs to remember. */
static void entry_release_if_idle(struct wq *q, struct wq_entry *e)
{
    if (e->dirty || e->processing || e->waiting || e->failures > 0)
        return;
    for (size_t i = 0; i < q->n_entries; i++) {
        if (q->entries[i] == e) {
            q->entries[i] = q->entries[--q->n_entries];
            break;
        }
    }
    free(e->key);
    free(e);
}

/* client-go's Add on a record: never fails, the FIFO has room for every record. */
static void entry_add(struct wq *q, struct wq_entry *e)
{
    if (e->dirty)
        return;
    e->dirty = true;
    if (e->processing)
        return;
    q->ready[q->n_ready++] = e;
    (void)pthread_cond_signal(&q->cond); /* only fails for an invalid cond */
}

/* Move delayed keys whose time has come to the FIFO, earliest first. */
static void promote_due(struct wq *q)
{
    int64_t now;

    if (q->n_waiting == 0)
        return;
    now = queue_now(q);
    for (;;) {
        struct wq_entry *first = NULL;

        for (size_t i = 0; i < q->n_entries; i++) {
            struct wq_entry *e = q->entries[i];
            if (e->waiting && e->ready_at <= now && (!first || e->ready_at < first->ready_at))
                first = e;
        }
        if (!first)
            return;
        first->waiting = false;
        q->n_waiting--;
        entry_add(q, first);
    }
}

/* Milliseconds until the next delayed key is due on the queue's clock; -1 if none waits. */
static int64_t next_due_in(struct wq *q)
{
    int64_t now, next = -1;

    if (q->n_waiting == 0)
        return -1;
    now = queue_now(q);
    for (size_t i = 0; i < q->n_entries; i++) {
        struct wq_entry *e = q->entries[i];
        if (e->waiting && (next < 0 || e->ready_at - now < next))
            next = e->ready_at - now;
    }
    return next < 1 ? 1 : next;
}

static int add_after_locked(struct wq *q, const char *key, int64_t delay_ms)
{
    struct wq_entry *e;
    int64_t at;
    int r;

    if (q->shut)
        return -ESHUTDOWN;
    r = entry_get(q, key, &e);
    if (r < 0)
        return r;
    if (delay_ms <= 0) {
        entry_add(q, e);
        return 0;
    }
    at = queue_now(q) + delay_ms;
    if (!e->waiting) {
        e->waiting = true;
        e->ready_at = at;
        q->n_waiting++;
    } else if (at < e->ready_at) {
        e->ready_at = at;
    }
    /* waiters sleep until the earliest due time they saw: let them look again */
    (void)pthread_cond_broadcast(&q->cond);
    return 0;
}

int wq_new(struct wq **ret, const struct wq_options *opts)
{
    pthread_condattr_t attr;
    struct wq *q;
    int r;

    if (!ret)
        return -EINVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    if (opts)
        q->opts = *opts;
    if (q->opts.base_delay_ms <= 0)
        q->opts.base_delay_ms = WQ_DEFAULT_BASE_DELAY_MS;
    if (q->opts.max_delay_ms <= 0)
        q->opts.max_delay_ms = WQ_DEFAULT_MAX_DELAY_MS;
    if (q->opts.max_delay_ms < q->opts.base_delay_ms) {
        free(q);
        return -EINVAL;
    }
    r = pthread_mutex_init(&q->lock, NULL);
    if (r != 0)
        goto fail_free;
    r = pthread_condattr_init(&attr);
    if (r != 0)
        goto fail_mutex;
    r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (r == 0)
        r = pthread_cond_init(&q->cond, &attr);
    (void)pthread_condattr_destroy(&attr); /* cannot fail on an initialised attr */
    if (r != 0)
        goto fail_mutex;
    *ret = q;
    return 0;

fail_mutex:
    (void)pthread_mutex_destroy(&q->lock);
fail_free:
    free(q);
    return -r;
}

void wq_free(struct wq *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n_entries; i++) {
        free(q->entries[i]->key);
        free(q->entries[i]);
    }
    free(q->entries);
    free(q->ready);
    (void)pthread_cond_destroy(&q->cond);
    (void)pthread_mutex_destroy(&q->lock);
    free(q);
}

int wq_add(struct wq *q, const char *key)
{
    return wq_add_after(q, key, 0);
}

int wq_add_after(struct wq *q, const char *key, int64_t delay_ms)
{
    int r;

    if (!q || !key)
        return -EINVAL;
    (void)pthread_mutex_lock(&q->lock);
    r = add_after_locked(q, key, delay_ms);
    (void)pthread_mutex_unlock(&q->lock);
    return r;
}

int wq_add_rate_limited(struct wq *q, const char *key)
{
    return wq_add_backoff(q, key, 0);
}

int wq_add_backoff(struct wq *q, const char *key, int64_t min_delay_ms)
{
    struct wq_entry *e;
    int64_t delay;
    int r;

    if (!q || !key)
        return -EINVAL;
    (void)pthread_mutex_lock(&q->lock);
    if (q->shut) {
        r = -ESHUTDOWN;
        goto out;
    }
    r = entry_get(q, key, &e);
    if (r < 0)
        goto out;
    delay = q->opts.base_delay_ms;
    /* double until the cap; stops long before int64_t could overflow */
    for (unsigned i = 0; i < e->failures && delay < q->opts.max_delay_ms; i++)
        delay *= 2;
    if (delay > q->opts.max_delay_ms)
        delay = q->opts.max_delay_ms;
    if (delay < min_delay_ms)
        delay = min_delay_ms;
    if (e->failures < UINT_MAX)
        e->failures++;
    r = add_after_locked(q, key, delay);
out:
    (void)pthread_mutex_unlock(&q->lock);
    return r;
}

void wq_forget(struct wq *q, const char *key)
{
    struct wq_entry *e;

    if (!q || !key)
        return;
    (void)pthread_mutex_lock(&q->lock);
    e = entry_find(q, key);
    if (e) {
        e->failures = 0;
        entry_release_if_idle(q, e);
    }
    (void)pthread_mutex_unlock(&q->lock);
}

int wq_num_requeues(struct wq *q, const char *key)
{
    struct wq_entry *e;
    int n = 0;

    if (!q || !key)
        return 0;
    (void)pthread_mutex_lock(&q->lock);
    e = entry_find(q, key);
    if (e)
        n = e->failures > INT32_MAX ? INT32_MAX : (int)e->failures;
    (void)pthread_mutex_unlock(&q->lock);
    return n;
}

/* Pop the FIFO's head into the caller's hands. */
static int take_first(struct wq *q, char **key_out)
{
    struct wq_entry *e = q->ready[0];
    char *copy = strdup(e->key);

    if (!copy)
        return -ENOMEM;
    memmove(q->ready, q->ready + 1, (q->n_ready - 1) * sizeof(*q->ready));
    q->n_ready--;
    e->dirty = false;
    e->processing = true;
    *key_out = copy;
    return 0;
}

static void wait_ms(struct wq *q, int64_t ms)
{
    struct timespec ts;

    if (ms < 0) {
        (void)pthread_cond_wait(&q->cond, &q->lock);
        return;
    }
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    /* ETIMEDOUT and spurious wake-ups alike: the caller looks at the state again */
    (void)pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int wq_get(struct wq *q, char **key_out, int64_t timeout_ms)
{
    int64_t deadline = 0;
    int r;

    if (!q || !key_out)
        return -EINVAL;
    if (timeout_ms > 0) {
        int64_t now = monotonic_ms();
        /* a deadline past the end of int64_t is no deadline: avoid the signed overflow */
        if (timeout_ms > INT64_MAX - now)
            timeout_ms = -1;
        else
            deadline = now + timeout_ms;
    }
    (void)pthread_mutex_lock(&q->lock);
    for (;;) {
        int64_t wait = -1, due;

        if (q->shut) {
            r = -ESHUTDOWN;
            break;
        }
        promote_due(q);
        if (q->n_ready > 0) {
            r = take_first(q, key_out);
            break;
        }
        if (timeout_ms == 0) {
            r = -ETIMEDOUT;
            break;
        }
        if (timeout_ms > 0) {
            wait = deadline - monotonic_ms();
            if (wait <= 0) {
                r = -ETIMEDOUT;
                break;
            }
        }
        due = next_due_in(q);
        if (due >= 0 && (wait < 0 || due < wait))
            wait = due;
        q->n_blocked_gets++;
        wait_ms(q, wait);
        q->n_blocked_gets--;
    }
    (void)pthread_mutex_unlock(&q->lock);
    return r;
}

int wq_done(struct wq *q, const char *key)
{
    struct wq_entry *e;
    int r = 0;

    if (!q || !key)
        return -EINVAL;
    (void)pthread_mutex_lock(&q->lock);
    e = entry_find(q, key);
    if (!e || !e->processing) {
        r = -ENOENT;
        goto out;
    }
    e->processing = false;
    if (e->dirty) {
        q->ready[q->n_ready++] = e;
        (void)pthread_cond_signal(&q->cond);
    } else {
        entry_release_if_idle(q, e);
    }
out:
    (void)pthread_mutex_unlock(&q->lock);
    return r;
}

void wq_tick(struct wq *q)
{
    if (!q)
        return;
    (void)pthread_mutex_lock(&q->lock);
    (void)pthread_cond_broadcast(&q->cond);
    (void)pthread_mutex_unlock(&q->lock);
}

size_t wq_len(struct wq *q)
{
    size_t n;

    if (!q)
        return 0;
    (void)pthread_mutex_lock(&q->lock);
    promote_due(q);
    n = q->n_ready;
    (void)pthread_mutex_unlock(&q->lock);
    return n;
}

size_t wq_waiting(struct wq *q)
{
    size_t n;

    if (!q)
        return 0;
    (void)pthread_mutex_lock(&q->lock);
    promote_due(q);
    n = q->n_waiting;
    (void)pthread_mutex_unlock(&q->lock);
    return n;
}

size_t wq_blocked_gets(struct wq *q)
{
    size_t n;

    if (!q)
        return 0;
    (void)pthread_mutex_lock(&q->lock);
    n = q->n_blocked_gets;
    (void)pthread_mutex_unlock(&q->lock);
    return n;
}

void wq_shutdown(struct wq *q)
{
    if (!q)
        return;
    (void)pthread_mutex_lock(&q->lock);
    q->shut = true;
    (void)pthread_cond_broadcast(&q->cond);
    (void)pthread_mutex_unlock(&q->lock);
}
