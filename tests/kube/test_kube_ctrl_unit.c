/*
 * Unit tests of mgo-kube's utilities (host-shims/kube/ctrl, mgo_kube_util): the work queue with
 * an injected clock (client-go util/workqueue semantics: dedupe, dirty re-queue while processing,
 * earliest delayed add wins, ItemExponentialFailureRateLimiter delays 5 ms * 2^n capped at
 * 1000 s, delayed adds of a held key, shutdown without drain), the work queue under several
 * worker threads (waiters observed asleep through wq_blocked_gets), the Prometheus registry's
 * text (exposition format 0.0.4, expected text written by hand, also after concurrent writers)
 * and the probe/metrics HTTP server on a kernel-chosen loopback port with plain sockets as the
 * client (silent and slowloris clients included). Tests that start threads or servers run with
 * fx_setup/fx_teardown, which stop them also when an assertion fails.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "httpd.h"
#include "metrics.h"
#include "workqueue.h"

/* ---- fixture: what a test starts, teardown stops, also after a failed assertion ------------ */

#define FX_MAX_THREADS 8
#define FX_MAX_FDS     4

struct probe_ctx {
    atomic_int calls;
    char last_path[64];
};

/*
 * cmocka leaves a test function by longjmp when an assertion fails, so everything a running
 * thread or server uses lives here (heap), and fx_teardown stops and frees it in every case.
 */
struct fixture {
    struct wq *q; /* shut down before the threads are joined (wakes wq_get), freed after */
    pthread_t threads[FX_MAX_THREADS];
    int n_threads;          /* started and not joined yet; each one ends by itself or at shutdown */
    struct httpd *h, *h2;   /* stopped by teardown unless NULL */
    struct probe_ctx probe; /* the servers' handler ctx */
    int fds[FX_MAX_FDS];    /* client sockets; -1: none */
    struct metrics *reg;    /* freed after the threads are joined */
    void *shared;           /* what the threads share: freed after they are joined */
    struct rlimit nofile;   /* the descriptor limit to restore, if nofile_lowered */
    bool nofile_lowered;
};

static int fx_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    for (int i = 0; i < FX_MAX_FDS; i++)
        fx->fds[i] = -1;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fixture *fx = *state;

    if (fx->nofile_lowered)
        (void)setrlimit(RLIMIT_NOFILE, &fx->nofile); /* raising back to the old soft limit */
    wq_shutdown(fx->q);
    while (fx->n_threads > 0)
        (void)pthread_join(fx->threads[--fx->n_threads], NULL); /* nothing to do on failure */
    httpd_stop(fx->h);
    httpd_stop(fx->h2);
    for (int i = 0; i < FX_MAX_FDS; i++)
        if (fx->fds[i] >= 0)
            (void)close(fx->fds[i]);
    wq_free(fx->q);
    metrics_free(fx->reg);
    free(fx->shared);
    free(fx);
    return 0;
}

static void fx_thread(struct fixture *fx, void *(*fn)(void *), void *arg)
{
    assert_true(fx->n_threads < FX_MAX_THREADS);
    assert_int_equal(pthread_create(&fx->threads[fx->n_threads], NULL, fn, arg), 0);
    fx->n_threads++;
}

/* Join the n threads started last, newest first. */
static void fx_join_last(struct fixture *fx, int n)
{
    assert_true(n <= fx->n_threads);
    for (; n > 0; n--)
        assert_int_equal(pthread_join(fx->threads[--fx->n_threads], NULL), 0);
}

static void fx_join_all(struct fixture *fx)
{
    fx_join_last(fx, fx->n_threads);
}

/* Keep fd so that teardown closes it; returns fd. */
static int fx_keep_fd(struct fixture *fx, int fd)
{
    for (int i = 0; i < FX_MAX_FDS; i++) {
        if (fx->fds[i] < 0) {
            fx->fds[i] = fd;
            return fd;
        }
    }
    (void)close(fd);
    fail_msg("more than %d client sockets in one test", FX_MAX_FDS);
    return -1;
}

static void fx_close_fd(struct fixture *fx, int fd)
{
    for (int i = 0; i < FX_MAX_FDS; i++)
        if (fx->fds[i] == fd)
            fx->fds[i] = -1;
    (void)close(fd);
}

static void fx_stop_server(struct fixture *fx)
{
    httpd_stop(fx->h);
    fx->h = NULL;
}

static void *fx_calloc_shared(struct fixture *fx, size_t size)
{
    assert_null(fx->shared);
    fx->shared = calloc(1, size);
    assert_non_null(fx->shared);
    return fx->shared;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};

    (void)nanosleep(&t, NULL); /* an early wake-up only shortens a poll interval */
}

/*
 * Wait until n wq_get calls are asleep in q (polled; 10 s is a deadline against a hang, not a
 * timing assertion).
 */
static void wait_blocked_gets(struct wq *q, size_t n)
{
    int64_t deadline = now_ms() + 10000;

    while (wq_blocked_gets(q) < n) {
        assert_true(now_ms() < deadline);
        sleep_ms(1);
    }
}

/* ---- work queue ---------------------------------------------------------------------------- */

struct fake_clock {
    int64_t now;
};

static int64_t fake_now(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

static struct wq *new_fake_queue(struct fake_clock *clk, int64_t base, int64_t max)
{
    struct wq_options o = {
        .now_ms = fake_now, .now_ctx = clk, .base_delay_ms = base, .max_delay_ms = max};
    struct wq *q = NULL;

    assert_int_equal(wq_new(&q, &o), 0);
    assert_non_null(q);
    return q;
}

/* Take the next key without waiting; it must be want. */
static void expect_get(struct wq *q, const char *want)
{
    char *key = NULL;

    assert_int_equal(wq_get(q, &key, 0), 0);
    assert_string_equal(key, want);
    free(key);
}

static void expect_empty(struct wq *q)
{
    char *key = NULL;

    assert_int_equal(wq_get(q, &key, 0), -ETIMEDOUT);
    assert_null(key);
}

static void test_wq_dedupe(void **state)
{
    struct fake_clock clk = {1000};
    struct wq *q = new_fake_queue(&clk, 0, 0);

    (void)state;
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/b"), 0);
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_len(q), 2);
    expect_get(q, "ns/a");
    expect_get(q, "ns/b");
    expect_empty(q);
    assert_int_equal(wq_len(q), 0);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    assert_int_equal(wq_done(q, "ns/b"), 0);
    assert_int_equal(wq_add(q, NULL), -EINVAL);
    assert_int_equal(wq_new(NULL, NULL), -EINVAL);
    wq_free(q);
    wq_free(NULL);
}

static void test_wq_dirty_while_processing(void **state)
{
    struct fake_clock clk = {0};
    struct wq *q = new_fake_queue(&clk, 0, 0);

    (void)state;
    assert_int_equal(wq_add(q, "ns/a"), 0);
    expect_get(q, "ns/a");
    /* added twice while a worker holds it: not handed out again, remembered once */
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/a"), 0);
    assert_int_equal(wq_len(q), 0);
    expect_empty(q);
    assert_int_equal(wq_add(q, "ns/b"), 0);
    expect_get(q, "ns/b");
    assert_int_equal(wq_done(q, "ns/a"), 0);
    assert_int_equal(wq_len(q), 1);
    expect_get(q, "ns/a");
    expect_empty(q);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    assert_int_equal(wq_done(q, "ns/b"), 0);
    assert_int_equal(wq_len(q), 0);
    /* done for a key nobody holds */
    assert_int_equal(wq_done(q, "ns/a"), -ENOENT);
    assert_int_equal(wq_done(q, "ns/never"), -ENOENT);
    wq_free(q);
}

static void test_wq_add_after_earliest_wins(void **state)
{
    struct fake_clock clk = {1000};
    struct wq *q = new_fake_queue(&clk, 0, 0);

    (void)state;
    assert_int_equal(wq_add_after(q, "ns/a", 100), 0); /* due 1100 */
    assert_int_equal(wq_add_after(q, "ns/a", 50), 0);  /* due 1050: earlier, wins */
    assert_int_equal(wq_add_after(q, "ns/a", 200), 0); /* due 1200: later, ignored */
    assert_int_equal(wq_waiting(q), 1);
    assert_int_equal(wq_len(q), 0);
    clk.now = 1049;
    expect_empty(q);
    assert_int_equal(wq_waiting(q), 1);
    clk.now = 1050;
    assert_int_equal(wq_len(q), 1);
    assert_int_equal(wq_waiting(q), 0);
    expect_get(q, "ns/a");
    assert_int_equal(wq_done(q, "ns/a"), 0);
    clk.now = 5000;
    expect_empty(q); /* the later asks did not leave a second entry behind */

    /* delayed keys come out in the order of their due times, not of the calls */
    assert_int_equal(wq_add_after(q, "ns/late", 30), 0);
    assert_int_equal(wq_add_after(q, "ns/early", 20), 0);
    assert_int_equal(wq_add_after(q, "ns/now", 0), 0); /* delay 0 is a plain add */
    assert_int_equal(wq_add_after(q, "ns/neg", -5), 0);
    assert_int_equal(wq_len(q), 2);
    assert_int_equal(wq_waiting(q), 2);
    clk.now = 5030;
    expect_get(q, "ns/now");
    expect_get(q, "ns/neg");
    expect_get(q, "ns/early");
    expect_get(q, "ns/late");
    expect_empty(q);

    /* a key both queued and waiting is handed out once when the wait ends */
    assert_int_equal(wq_add(q, "ns/both"), 0);
    assert_int_equal(wq_add_after(q, "ns/both", 10), 0);
    clk.now = 5040;
    assert_int_equal(wq_len(q), 1);
    expect_get(q, "ns/both");
    expect_empty(q);
    wq_free(q); /* frees held keys too (ASan checks) */
}

/* Rate-limit key once at the current time and prove its delay is exactly want_ms. */
static void expect_rate_limited_delay(struct wq *q, struct fake_clock *clk, const char *key,
                                      int64_t want_ms)
{
    int64_t start = clk->now;

    assert_int_equal(wq_add_rate_limited(q, key), 0);
    assert_int_equal(wq_waiting(q), 1);
    clk->now = start + want_ms - 1;
    assert_int_equal(wq_len(q), 0);
    clk->now = start + want_ms;
    assert_int_equal(wq_len(q), 1);
    expect_get(q, key);
    assert_int_equal(wq_done(q, key), 0);
}

static void test_wq_rate_limiter(void **state)
{
    /* 5 ms * 2^n, by hand; 5 * 2^18 = 1310720 is over the 1000 s cap */
    static const int64_t want[] = {5,     10,     20,     40,     80,      160,     320,
                                   640,   1280,   2560,   5120,   10240,   20480,   40960,
                                   81920, 163840, 327680, 655360, 1000000, 1000000, 1000000};
    struct fake_clock clk = {0};
    struct wq *q = new_fake_queue(&clk, 0, 0); /* defaults: 5 ms and 1000 s */

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        expect_rate_limited_delay(q, &clk, "ns/a", want[i]);
        assert_int_equal(wq_num_requeues(q, "ns/a"), (int)i + 1);
    }
    /* another key has its own count */
    assert_int_equal(wq_num_requeues(q, "ns/b"), 0);
    expect_rate_limited_delay(q, &clk, "ns/b", 5);
    assert_int_equal(wq_num_requeues(q, "ns/b"), 1);
    /* forget resets: back to the base delay */
    wq_forget(q, "ns/a");
    assert_int_equal(wq_num_requeues(q, "ns/a"), 0);
    expect_rate_limited_delay(q, &clk, "ns/a", 5);
    expect_rate_limited_delay(q, &clk, "ns/a", 10);
    wq_forget(q, "ns/unknown");
    wq_free(q);

    /* a custom base and cap */
    q = new_fake_queue(&clk, 7, 30);
    expect_rate_limited_delay(q, &clk, "k", 7);
    expect_rate_limited_delay(q, &clk, "k", 14);
    expect_rate_limited_delay(q, &clk, "k", 28);
    expect_rate_limited_delay(q, &clk, "k", 30);
    expect_rate_limited_delay(q, &clk, "k", 30);
    wq_free(q);

    /* a floor: 300 ms while 5 * 2^n is below it (n = 0..5), then the doubling, capped; every
     * call counts a failure */
    q = new_fake_queue(&clk, 0, 1000);
    static const int64_t floored[] = {300, 300, 300, 300, 300, 300, 320, 640, 1000, 1000};
    for (size_t i = 0; i < sizeof(floored) / sizeof(floored[0]); i++) {
        int64_t start = clk.now;
        assert_int_equal(wq_add_backoff(q, "k", 300), 0);
        clk.now = start + floored[i] - 1;
        assert_int_equal(wq_len(q), 0);
        clk.now = start + floored[i];
        assert_int_equal(wq_len(q), 1);
        expect_get(q, "k");
        assert_int_equal(wq_done(q, "k"), 0);
        assert_int_equal(wq_num_requeues(q, "k"), (int)i + 1);
    }
    /* and the plain rate limit goes on from the same count: 5 * 2^10 = 5120, capped at 1000 */
    expect_rate_limited_delay(q, &clk, "k", 1000);
    wq_free(q);

    struct wq_options bad = {.base_delay_ms = 10, .max_delay_ms = 5};
    struct wq *none = NULL;
    assert_int_equal(wq_new(&none, &bad), -EINVAL);
    assert_null(none);
}

/*
 * The rule the queue exists for: a key a worker holds is not handed out again before wq_done,
 * whichever way it is added meanwhile; the delayed adds (wq_add_after, wq_add_rate_limited)
 * included, also when their delay ends while the key is held.
 */
static void test_wq_delayed_add_of_held_key(void **state)
{
    struct fake_clock clk = {1000};
    struct wq *q = new_fake_queue(&clk, 0, 0); /* base delay 5 ms */

    (void)state;
    assert_int_equal(wq_add(q, "ns/a"), 0);
    expect_get(q, "ns/a"); /* a worker holds ns/a from here */

    /* wq_add_after, due at 1010 while the key is held: not handed out */
    assert_int_equal(wq_add_after(q, "ns/a", 10), 0);
    assert_int_equal(wq_waiting(q), 1);
    clk.now = 1010;
    assert_int_equal(wq_waiting(q), 0);
    assert_int_equal(wq_len(q), 0);
    expect_empty(q);
    clk.now = 9000;
    expect_empty(q);
    assert_int_equal(wq_add(q, "ns/b"), 0); /* other keys still flow */
    expect_get(q, "ns/b");
    assert_int_equal(wq_done(q, "ns/b"), 0);
    expect_empty(q);
    /* out again after wq_done, once */
    assert_int_equal(wq_done(q, "ns/a"), 0);
    assert_int_equal(wq_len(q), 1);
    expect_get(q, "ns/a");
    expect_empty(q);

    /* wq_add_rate_limited (5 ms, due at 9005) while held: the same */
    assert_int_equal(wq_add_rate_limited(q, "ns/a"), 0);
    clk.now = 9005;
    assert_int_equal(wq_len(q), 0);
    expect_empty(q);
    clk.now = 20000;
    expect_empty(q);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    expect_get(q, "ns/a");
    expect_empty(q);
    assert_int_equal(wq_num_requeues(q, "ns/a"), 1);

    /* wq_done before the delay ends: the key waits out its delay, then comes out once */
    assert_int_equal(wq_add_after(q, "ns/a", 10), 0); /* due at 20010 */
    assert_int_equal(wq_done(q, "ns/a"), 0);
    expect_empty(q);
    assert_int_equal(wq_waiting(q), 1);
    clk.now = 20009;
    expect_empty(q);
    clk.now = 20010;
    expect_get(q, "ns/a");
    expect_empty(q);

    /* held: a rate-limited add (10 ms now, due at 20020) and a plain add; done: out once */
    assert_int_equal(wq_add_rate_limited(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/a"), 0);
    expect_empty(q);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    expect_get(q, "ns/a");
    expect_empty(q);
    clk.now = 20020; /* the delayed add falls due while held again: still not handed out */
    expect_empty(q);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    expect_get(q, "ns/a");
    expect_empty(q);
    assert_int_equal(wq_done(q, "ns/a"), 0);
    wq_free(q);
}

static void test_wq_get_timeout_real_clock(void **state)
{
    struct wq *q = NULL;
    char *key = NULL;
    int64_t t0, took;

    (void)state;
    assert_int_equal(wq_new(&q, NULL), 0);
    assert_int_equal(wq_get(q, &key, 20), -ETIMEDOUT);
    assert_null(key);
    /* a real-clock delay waiting before the get: returned once due, not before, nor 10 s later */
    t0 = now_ms();
    assert_int_equal(wq_add_after(q, "ns/a", 30), 0);
    assert_int_equal(wq_get(q, &key, 10000), 0);
    took = now_ms() - t0;
    assert_string_equal(key, "ns/a");
    free(key);
    assert_true(took >= 30);
    assert_true(took < 5000); /* generous: a loaded CI box */
    /* a timeout too large to add to the clock waits without overflowing (and finds the key) */
    assert_int_equal(wq_done(q, "ns/a"), 0);
    assert_int_equal(wq_add(q, "ns/b"), 0);
    assert_int_equal(wq_get(q, &key, INT64_MAX), 0);
    assert_string_equal(key, "ns/b");
    free(key);
    wq_free(q);
}

struct blocked_get {
    struct wq *q;
    int64_t timeout_ms;
    atomic_int rc;
    atomic_llong returned_at; /* now_ms() when wq_get returned */
    char key[32];             /* written by the thread, read after the join */
};

static void *blocked_get_run(void *arg)
{
    struct blocked_get *b = arg;
    char *key = NULL;
    int r = wq_get(b->q, &key, b->timeout_ms);

    atomic_store(&b->returned_at, now_ms());
    if (r == 0)
        (void)snprintf(b->key, sizeof(b->key), "%s", key);
    free(key);
    atomic_store(&b->rc, r);
    return NULL;
}

/*
 * A wq_get asleep with nothing ready wakes when a delayed key added after it fell asleep is
 * due, not at its own timeout (30 s) nor at the next add: first with nothing else waiting, then
 * with a key already waiting that is due much later (the sleep it chose).
 */
static void test_wq_delayed_key_wakes_blocked_get(void **state)
{
    struct fixture *fx = *state;
    struct blocked_get *b = fx_calloc_shared(fx, sizeof(*b));
    int64_t t0;

    assert_int_equal(wq_new(&fx->q, NULL), 0);
    b->q = fx->q;
    b->timeout_ms = 30000;
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            assert_int_equal(wq_add_after(fx->q, "ns/later", 600000), 0);
        atomic_store(&b->rc, 1);
        fx_thread(fx, blocked_get_run, b);
        wait_blocked_gets(fx->q, 1);
        t0 = now_ms();
        assert_int_equal(wq_add_after(fx->q, "ns/soon", 50), 0);
        fx_join_all(fx);
        assert_int_equal(atomic_load(&b->rc), 0);
        assert_string_equal(b->key, "ns/soon");
        assert_true(atomic_load(&b->returned_at) - t0 >= 50);  /* not before it was due */
        assert_true(atomic_load(&b->returned_at) - t0 < 5000); /* generous for a 50 ms delay */
        assert_int_equal(wq_done(fx->q, "ns/soon"), 0);
    }
    assert_int_equal(wq_waiting(fx->q), 1); /* ns/later still waits */
}

struct waiter {
    struct wq *q;
    atomic_int shutdown_seen;
    atomic_int other;
};

static void *wait_for_key(void *arg)
{
    struct waiter *w = arg;
    char *key = NULL;
    int r;

    r = wq_get(w->q, &key, -1);
    if (r == -ESHUTDOWN && !key)
        atomic_fetch_add(&w->shutdown_seen, 1);
    else
        atomic_fetch_add(&w->other, 1);
    free(key);
    return NULL;
}

static void test_wq_shutdown_wakes_waiters(void **state)
{
    struct fixture *fx = *state;
    struct waiter *w = fx_calloc_shared(fx, sizeof(*w));
    char *key = NULL;

    assert_int_equal(wq_new(&fx->q, NULL), 0);
    w->q = fx->q;
    for (int i = 0; i < 3; i++)
        fx_thread(fx, wait_for_key, w);
    /* all three are asleep in wq_get (no timeout) before the shutdown */
    wait_blocked_gets(fx->q, 3);
    assert_int_equal(atomic_load(&w->shutdown_seen) + atomic_load(&w->other), 0);
    wq_shutdown(fx->q);
    fx_join_all(fx);
    assert_int_equal(atomic_load(&w->shutdown_seen), 3);
    assert_int_equal(atomic_load(&w->other), 0);
    assert_int_equal(wq_blocked_gets(fx->q), 0);
    /* after shutdown: adds are refused, gets answer -ESHUTDOWN at once */
    assert_int_equal(wq_add(fx->q, "ns/a"), -ESHUTDOWN);
    assert_int_equal(wq_add_after(fx->q, "ns/a", 10), -ESHUTDOWN);
    assert_int_equal(wq_add_rate_limited(fx->q, "ns/a"), -ESHUTDOWN);
    assert_int_equal(wq_get(fx->q, &key, -1), -ESHUTDOWN);
    assert_null(key);
    wq_shutdown(fx->q); /* idempotent */
}

/*
 * Pinned on purpose (workqueue.h, wq_shutdown): unlike client-go's ShutDown, keys still queued
 * are not handed out after shutdown, so no worker starts another reconcile once the controller
 * stops (leadership lost). The key in hand can still be finished.
 */
static void test_wq_shutdown_does_not_drain(void **state)
{
    struct fake_clock clk = {0};
    struct wq *q = new_fake_queue(&clk, 0, 0);
    char *key = NULL;

    (void)state;
    assert_int_equal(wq_add(q, "ns/held"), 0);
    expect_get(q, "ns/held");
    assert_int_equal(wq_add(q, "ns/queued1"), 0);
    assert_int_equal(wq_add(q, "ns/queued2"), 0);
    assert_int_equal(wq_add(q, "ns/held"), 0); /* dirty while held */
    wq_shutdown(q);
    assert_int_equal(wq_get(q, &key, 0), -ESHUTDOWN); /* client-go would give ns/queued1 */
    assert_null(key);
    assert_int_equal(wq_get(q, &key, 10000), -ESHUTDOWN);
    assert_null(key);
    assert_int_equal(wq_done(q, "ns/held"), 0);       /* done still works ... */
    assert_int_equal(wq_get(q, &key, 0), -ESHUTDOWN); /* ... and re-queues nothing to take */
    assert_null(key);
    assert_int_equal(wq_add(q, "ns/new"), -ESHUTDOWN);
    wq_free(q); /* frees the keys left queued (ASan checks) */
}

#define STRESS_KEYS      16
#define STRESS_WORKERS   4
#define STRESS_PRODUCERS 2
#define STRESS_ADDS      20000

struct stress {
    struct wq *q;
    atomic_int in_hand[STRESS_KEYS];  /* 1 while a worker holds the key */
    atomic_long added[STRESS_KEYS];   /* adds made, counted before each add */
    atomic_long seen_at[STRESS_KEYS]; /* added[] as read by the last worker to take the key */
    atomic_int producers_left;
    atomic_int seed;
    atomic_long violations;
    atomic_long processed;
    atomic_long errors;
    atomic_long delayed; /* adds by wq_add_after or wq_add_rate_limited */
};

static const char *const stress_keys[STRESS_KEYS] = {
    "ns/k0", "ns/k1", "ns/k2",  "ns/k3",  "ns/k4",  "ns/k5",  "ns/k6",  "ns/k7",
    "ns/k8", "ns/k9", "ns/k10", "ns/k11", "ns/k12", "ns/k13", "ns/k14", "ns/k15"};

static int stress_index(const char *key)
{
    for (int i = 0; i < STRESS_KEYS; i++)
        if (strcmp(stress_keys[i], key) == 0)
            return i;
    return -1;
}

static void *stress_worker(void *arg)
{
    struct stress *s = arg;

    for (;;) {
        char *key = NULL;
        int r = wq_get(s->q, &key, 100);
        int k;

        if (r == -ETIMEDOUT && atomic_load(&s->producers_left) == 0)
            break;
        if (r == -ETIMEDOUT)
            continue;
        k = r == 0 ? stress_index(key) : -1;
        if (k < 0) {
            atomic_fetch_add(&s->errors, 1);
            free(key);
            break;
        }
        if (atomic_exchange(&s->in_hand[k], 1) != 0)
            atomic_fetch_add(&s->violations, 1);
        atomic_store(&s->seen_at[k], atomic_load(&s->added[k]));
        /* hold the key a while (longer than the delays) so that others try to take it and
         * delayed adds of it fall due meanwhile */
        sleep_ms(2);
        atomic_fetch_add(&s->processed, 1);
        atomic_store(&s->in_hand[k], 0);
        if (wq_done(s->q, key) != 0)
            atomic_fetch_add(&s->errors, 1);
        free(key);
    }
    return NULL;
}

/* Adds with a fixed seed each: 5 in 8 wq_add, 2 in 8 wq_add_after 1..2 ms, 1 in 8 rate-limited. */
static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    uint32_t x = 12345u + (uint32_t)atomic_fetch_add(&s->seed, 1);

    for (int i = 0; i < STRESS_ADDS; i++) {
        unsigned op;
        int k, r;

        x = x * 1103515245u + 12345u;
        k = (int)((x >> 16) % STRESS_KEYS);
        op = (x >> 8) % 8;
        atomic_fetch_add(&s->added[k], 1);
        if (op < 5) {
            r = wq_add(s->q, stress_keys[k]);
        } else if (op < 7) {
            r = wq_add_after(s->q, stress_keys[k], op - 4);
            atomic_fetch_add(&s->delayed, 1);
        } else {
            r = wq_add_rate_limited(s->q, stress_keys[k]);
            atomic_fetch_add(&s->delayed, 1);
        }
        if (r != 0)
            atomic_fetch_add(&s->errors, 1);
    }
    return NULL;
}

static void test_wq_never_two_workers_on_one_key(void **state)
{
    /* the rate limiter at 1 ms doubling to 4 ms: every delayed add is due long before the
     * workers give up after 100 ms without a key */
    struct wq_options o = {.base_delay_ms = 1, .max_delay_ms = 4};
    struct fixture *fx = *state;
    struct stress *s = fx_calloc_shared(fx, sizeof(*s));

    assert_int_equal(wq_new(&fx->q, &o), 0);
    s->q = fx->q;
    atomic_store(&s->producers_left, STRESS_PRODUCERS);
    for (int i = 0; i < STRESS_WORKERS; i++)
        fx_thread(fx, stress_worker, s);
    for (int i = 0; i < STRESS_PRODUCERS; i++)
        fx_thread(fx, stress_producer, s);
    fx_join_last(fx, STRESS_PRODUCERS);
    atomic_store(&s->producers_left, 0);
    /* workers leave once nothing was ready for 100 ms after the last add */
    fx_join_all(fx);

    long total_added = 0;
    assert_int_equal(atomic_load(&s->violations), 0);
    assert_int_equal(atomic_load(&s->errors), 0);
    for (int k = 0; k < STRESS_KEYS; k++) {
        total_added += atomic_load(&s->added[k]);
        /* the last processing of every key started after its last add */
        assert_int_equal(atomic_load(&s->seen_at[k]), atomic_load(&s->added[k]));
    }
    assert_int_equal(total_added, (long)STRESS_PRODUCERS * STRESS_ADDS);
    assert_true(atomic_load(&s->delayed) > 0);
    assert_true(atomic_load(&s->processed) >= STRESS_KEYS);
    assert_true(atomic_load(&s->processed) <= total_added);
    assert_int_equal(wq_len(fx->q), 0);
    assert_int_equal(wq_waiting(fx->q), 0);
}

/* ---- metrics ------------------------------------------------------------------------------- */

#define LV(...) ((const char *const[]){__VA_ARGS__})

static void test_metrics_render(void **state)
{
    static const char *const reconcile_labels[] = {"controller", "result"};
    static const char *const phase_labels[] = {"namespace", "name", "phase"};
    static const char *const ctrl_label[] = {"controller"};
    static const double buckets[] = {0.125, 0.5, 1};
    struct metrics_family *total, *phase, *duration, *depth, *unused, *plain_hist;
    struct metrics *reg = NULL;
    char *text = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(metrics_new(&reg), 0);
    assert_int_equal(metrics_family_new(reg, &total, METRICS_COUNTER, "mgo_reconcile_total",
                                        "Reconciliations by result.", reconcile_labels, 2, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(reg, &phase, METRICS_GAUGE, "mgo_cluster_phase",
                                        "Phase of each cluster.", phase_labels, 3, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(reg, &duration, METRICS_HISTOGRAM,
                                        "mgo_reconcile_duration_seconds", "Reconcile time.",
                                        ctrl_label, 1, buckets, 3),
                     0);
    assert_int_equal(metrics_family_new(reg, &depth, METRICS_GAUGE, "mgo_workqueue_depth",
                                        "Depth of the queue.\nSecond line \\ end", NULL, 0, NULL,
                                        0),
                     0);
    assert_int_equal(metrics_family_new(reg, &unused, METRICS_COUNTER, "mgo_unused_total",
                                        "Never incremented.", ctrl_label, 1, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(reg, &plain_hist, METRICS_HISTOGRAM, "mgo_a_seconds",
                                        "No labels, no observations.", NULL, 0, buckets + 2, 1),
                     0);

    assert_int_equal(metrics_counter_inc(total, LV("cluster", "success")), 0);
    assert_int_equal(metrics_counter_inc(total, LV("cluster", "success")), 0);
    assert_int_equal(metrics_counter_add(total, LV("cluster", "error"), 3), 0);
    assert_int_equal(metrics_counter_inc(total, LV("backup", "success")), 0);

    assert_int_equal(metrics_gauge_set(phase, LV("ns1", "a", "Running"), 1), 0);
    assert_int_equal(metrics_gauge_set(phase, LV("ns1", "b", "Pending"), 1), 0);
    assert_int_equal(metrics_gauge_set(phase, LV("ns0", "z", "Running"), 0.5), 0);
    assert_int_equal(metrics_gauge_set(phase, LV("ns1", "q\"x\\y\nz", "Failed"), 0.1), 0);
    assert_int_equal(metrics_remove(phase, LV("ns1", "b", "Pending")), 0);
    assert_int_equal(metrics_remove(phase, LV("ns1", "b", "Pending")), -ENOENT);

    /* binary fractions, so that the sum is exact: 0.0625 + 0.125 + 0.25 + 2 = 2.4375 */
    assert_int_equal(metrics_histogram_observe(duration, LV("cluster"), 0.0625), 0);
    assert_int_equal(metrics_histogram_observe(duration, LV("cluster"), 0.125), 0);
    assert_int_equal(metrics_histogram_observe(duration, LV("cluster"), 0.25), 0);
    assert_int_equal(metrics_histogram_observe(duration, LV("cluster"), 2), 0);

    assert_int_equal(metrics_gauge_set(depth, NULL, 3), 0);
    assert_int_equal(metrics_gauge_inc(depth, NULL), 0);
    assert_int_equal(metrics_gauge_inc(depth, NULL), 0);
    assert_int_equal(metrics_gauge_dec(depth, NULL), 0);
    assert_int_equal(metrics_gauge_add(depth, NULL, 3), 0);

    assert_int_equal(metrics_render(reg, &text, &len), 0);
    static const char want[] =
        "# HELP mgo_a_seconds No labels, no observations.\n"
        "# TYPE mgo_a_seconds histogram\n"
        "mgo_a_seconds_bucket{le=\"1\"} 0\n"
        "mgo_a_seconds_bucket{le=\"+Inf\"} 0\n"
        "mgo_a_seconds_sum 0\n"
        "mgo_a_seconds_count 0\n"
        "# HELP mgo_cluster_phase Phase of each cluster.\n"
        "# TYPE mgo_cluster_phase gauge\n"
        "mgo_cluster_phase{namespace=\"ns0\",name=\"z\",phase=\"Running\"} 0.5\n"
        "mgo_cluster_phase{namespace=\"ns1\",name=\"a\",phase=\"Running\"} 1\n"
        "mgo_cluster_phase{namespace=\"ns1\",name=\"q\\\"x\\\\y\\nz\",phase=\"Failed\"} 0.1\n"
        "# HELP mgo_reconcile_duration_seconds Reconcile time.\n"
        "# TYPE mgo_reconcile_duration_seconds histogram\n"
        "mgo_reconcile_duration_seconds_bucket{controller=\"cluster\",le=\"0.125\"} 2\n"
        "mgo_reconcile_duration_seconds_bucket{controller=\"cluster\",le=\"0.5\"} 3\n"
        "mgo_reconcile_duration_seconds_bucket{controller=\"cluster\",le=\"1\"} 3\n"
        "mgo_reconcile_duration_seconds_bucket{controller=\"cluster\",le=\"+Inf\"} 4\n"
        "mgo_reconcile_duration_seconds_sum{controller=\"cluster\"} 2.4375\n"
        "mgo_reconcile_duration_seconds_count{controller=\"cluster\"} 4\n"
        "# HELP mgo_reconcile_total Reconciliations by result.\n"
        "# TYPE mgo_reconcile_total counter\n"
        "mgo_reconcile_total{controller=\"backup\",result=\"success\"} 1\n"
        "mgo_reconcile_total{controller=\"cluster\",result=\"error\"} 3\n"
        "mgo_reconcile_total{controller=\"cluster\",result=\"success\"} 2\n"
        "# HELP mgo_workqueue_depth Depth of the queue.\\nSecond line \\\\ end\n"
        "# TYPE mgo_workqueue_depth gauge\n"
        "mgo_workqueue_depth 7\n";
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
    metrics_free(reg);
    metrics_free(NULL);
}

static void test_metrics_numbers(void **state)
{
    static const char *const v[] = {"v"};
    struct metrics_family *g;
    struct metrics *reg = NULL;
    char *text = NULL;

    (void)state;
    assert_int_equal(metrics_new(&reg), 0);
    assert_int_equal(metrics_family_new(reg, &g, METRICS_GAUGE, "g", "h", v, 1, NULL, 0), 0);
    assert_int_equal(metrics_gauge_set(g, LV("a"), 0.1), 0);
    assert_int_equal(metrics_gauge_set(g, LV("b"), 1.0 / 3.0), 0);
    assert_int_equal(metrics_gauge_set(g, LV("c"), 1e21), 0);
    assert_int_equal(metrics_gauge_set(g, LV("d"), INFINITY), 0);
    assert_int_equal(metrics_gauge_set(g, LV("e"), -INFINITY), 0);
    assert_int_equal(metrics_gauge_set(g, LV("f"), NAN), 0);
    assert_int_equal(metrics_gauge_set(g, LV("g"), -2.5), 0);
    assert_int_equal(metrics_gauge_set(g, LV("h"), 123456789), 0);
    assert_int_equal(metrics_gauge_set(g, LV("i"), 0.30000000000000004), 0);
    assert_int_equal(metrics_render(reg, &text, NULL), 0);
    assert_string_equal(text, "# HELP g h\n"
                              "# TYPE g gauge\n"
                              "g{v=\"a\"} 0.1\n"
                              "g{v=\"b\"} 0.3333333333333333\n"
                              "g{v=\"c\"} 1e+21\n"
                              "g{v=\"d\"} +Inf\n"
                              "g{v=\"e\"} -Inf\n"
                              "g{v=\"f\"} NaN\n"
                              "g{v=\"g\"} -2.5\n"
                              "g{v=\"h\"} 123456789\n"
                              "g{v=\"i\"} 0.30000000000000004\n");
    free(text);
    metrics_free(reg);
}

static void test_metrics_rejects(void **state)
{
    static const char *const one[] = {"a"};
    static const char *const dup[] = {"a", "a"};
    static const char *const reserved[] = {"__a"};
    static const char *const le[] = {"le"};
    static const char *const bad_label[] = {"a-b"};
    static const char *const four[] = {"a", "b", "c", "d"};
    static const double flat[] = {1, 1};
    static const double ok_buckets[] = {1};
    static const double inf_bucket[] = {INFINITY};
    struct metrics_family *f = NULL, *c, *g, *h;
    struct metrics *reg = NULL;
    char *text = NULL;

    (void)state;
    assert_int_equal(metrics_new(&reg), 0);
    /* a table of invalid families: each one -EINVAL */
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "1abc", "h", NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "a-b", "h", NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "", "h", NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", NULL, NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", "h", dup, 2, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", "h", reserved, 1, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", "h", bad_label, 1, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", "h", four, 4, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_HISTOGRAM, "x", "h", le, 1, ok_buckets, 1),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_HISTOGRAM, "x", "h", NULL, 0, flat, 2),
                     -EINVAL);
    assert_int_equal(
        metrics_family_new(reg, &f, METRICS_HISTOGRAM, "x", "h", NULL, 0, inf_bucket, 1), -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_HISTOGRAM, "x", "h", NULL, 0, NULL, 0),
                     -EINVAL);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "x", "h", NULL, 0, ok_buckets, 1),
                     -EINVAL);
    assert_null(f);

    assert_int_equal(metrics_family_new(reg, &c, METRICS_COUNTER, "c:total", "h", one, 1, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(reg, &f, METRICS_GAUGE, "c:total", "h", NULL, 0, NULL, 0),
                     -EEXIST);
    assert_int_equal(metrics_family_new(reg, &g, METRICS_GAUGE, "g", "h", NULL, 0, NULL, 0), 0);
    assert_int_equal(
        metrics_family_new(reg, &h, METRICS_HISTOGRAM, "h", "h", one, 1, ok_buckets, 1), 0);
    /* a table of invalid operations: each one -EINVAL and nothing recorded */
    assert_int_equal(metrics_counter_add(c, LV("x"), -1), -EINVAL);
    assert_int_equal(metrics_counter_add(c, LV("x"), NAN), -EINVAL);
    assert_int_equal(metrics_counter_inc(c, NULL), -EINVAL);
    assert_int_equal(metrics_counter_inc(c, LV(NULL)), -EINVAL);
    assert_int_equal(metrics_gauge_set(c, LV("x"), 1), -EINVAL);
    assert_int_equal(metrics_counter_inc(g, NULL), -EINVAL);
    assert_int_equal(metrics_histogram_observe(g, NULL, 1), -EINVAL);
    assert_int_equal(metrics_histogram_observe(h, LV("x"), NAN), -EINVAL);
    assert_int_equal(metrics_remove(g, NULL), -EINVAL);
    assert_int_equal(metrics_counter_inc(NULL, NULL), -EINVAL);
    assert_int_equal(metrics_render(reg, &text, NULL), 0);
    assert_string_equal(text, "# HELP g h\n# TYPE g gauge\ng 0\n");
    free(text);
    metrics_free(reg);
}

#define MT_WRITERS 4
#define MT_ROUNDS  10000

struct metrics_race {
    struct metrics *reg;
    struct metrics_family *events, *inflight, *seconds;
    atomic_int next_writer;
    atomic_int writers_left;
    atomic_long errors;
    atomic_long renders;
    atomic_long inconsistent; /* renderings that broke a rule of a consistent snapshot */
};

static void *metrics_writer(void *arg)
{
    struct metrics_race *m = arg;
    char own[8];

    (void)snprintf(own, sizeof(own), "w%d", atomic_fetch_add(&m->next_writer, 1));
    for (int i = 0; i < MT_ROUNDS; i++) {
        long bad = 0;

        bad += metrics_counter_inc(m->events, LV("shared")) != 0;
        bad += metrics_counter_add(m->events, LV(own), 1) != 0;
        bad += metrics_gauge_inc(m->inflight, NULL) != 0;
        if (i % 2 == 0)
            bad += metrics_gauge_dec(m->inflight, NULL) != 0;
        bad += metrics_histogram_observe(m->seconds, LV("x"), i % 2 ? 2 : 0.25) != 0;
        if (bad)
            atomic_fetch_add(&m->errors, bad);
    }
    atomic_fetch_sub(&m->writers_left, 1);
    return NULL;
}

/* The number after prefix in text; -1 if the line is not there. */
static double sample_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);

    return p ? strtod(p + strlen(prefix), NULL) : -1;
}

/* Render while the writers write: every rendering is one snapshot, counters never go back. */
static void *metrics_renderer(void *arg)
{
    struct metrics_race *m = arg;
    double last_shared = 0;

    do {
        char *text = NULL;
        double shared, inf, count;

        if (metrics_render(m->reg, &text, NULL) != 0) {
            atomic_fetch_add(&m->errors, 1);
            return NULL;
        }
        shared = sample_value(text, "mt_events_total{source=\"shared\"} ");
        inf = sample_value(text, "mt_seconds_bucket{op=\"x\",le=\"+Inf\"} ");
        count = sample_value(text, "mt_seconds_count{op=\"x\"} ");
        if ((shared >= 0 && shared < last_shared) || inf != count)
            atomic_fetch_add(&m->inconsistent, 1);
        if (shared >= 0)
            last_shared = shared;
        atomic_fetch_add(&m->renders, 1);
        free(text);
    } while (atomic_load(&m->writers_left) > 0);
    return NULL;
}

static void test_metrics_concurrent(void **state)
{
    static const char *const source[] = {"source"};
    static const char *const op[] = {"op"};
    static const double buckets[] = {0.5, 1};
    struct fixture *fx = *state;
    struct metrics_race *m = fx_calloc_shared(fx, sizeof(*m));
    char *text = NULL;

    assert_int_equal(metrics_new(&fx->reg), 0);
    m->reg = fx->reg;
    assert_int_equal(metrics_family_new(fx->reg, &m->events, METRICS_COUNTER, "mt_events_total",
                                        "Events.", source, 1, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(fx->reg, &m->inflight, METRICS_GAUGE, "mt_inflight",
                                        "In flight.", NULL, 0, NULL, 0),
                     0);
    assert_int_equal(metrics_family_new(fx->reg, &m->seconds, METRICS_HISTOGRAM, "mt_seconds",
                                        "Durations.", op, 1, buckets, 2),
                     0);
    atomic_store(&m->writers_left, MT_WRITERS);
    fx_thread(fx, metrics_renderer, m);
    for (int i = 0; i < MT_WRITERS; i++)
        fx_thread(fx, metrics_writer, m);
    fx_join_all(fx);
    assert_int_equal(atomic_load(&m->errors), 0);
    assert_int_equal(atomic_load(&m->inconsistent), 0);
    assert_true(atomic_load(&m->renders) > 0);

    /*
     * By hand, 4 writers x 10000 rounds: shared 40000, each writer's own 10000; the gauge
     * +10000 -5000 per writer = 20000; half the observations 0.25 (le 0.5), half 2 (only +Inf):
     * 20000, 20000, 40000; sum 20000 * 0.25 + 20000 * 2 = 45000 (exact in binary).
     */
    assert_int_equal(metrics_render(fx->reg, &text, NULL), 0);
    assert_string_equal(text, "# HELP mt_events_total Events.\n"
                              "# TYPE mt_events_total counter\n"
                              "mt_events_total{source=\"shared\"} 40000\n"
                              "mt_events_total{source=\"w0\"} 10000\n"
                              "mt_events_total{source=\"w1\"} 10000\n"
                              "mt_events_total{source=\"w2\"} 10000\n"
                              "mt_events_total{source=\"w3\"} 10000\n"
                              "# HELP mt_inflight In flight.\n"
                              "# TYPE mt_inflight gauge\n"
                              "mt_inflight 20000\n"
                              "# HELP mt_seconds Durations.\n"
                              "# TYPE mt_seconds histogram\n"
                              "mt_seconds_bucket{op=\"x\",le=\"0.5\"} 20000\n"
                              "mt_seconds_bucket{op=\"x\",le=\"1\"} 20000\n"
                              "mt_seconds_bucket{op=\"x\",le=\"+Inf\"} 40000\n"
                              "mt_seconds_sum{op=\"x\"} 45000\n"
                              "mt_seconds_count{op=\"x\"} 40000\n");
    free(text);
}

/* ---- httpd --------------------------------------------------------------------------------- */

static char *dup_text(const char *s)
{
    char *p = strdup(s);

    if (!p)
        abort(); /* the test cannot go on without memory */
    return p;
}

static int probe_handler(void *ctx, const char *path, int is_head, struct httpd_response *resp)
{
    struct probe_ctx *p = ctx;

    (void)is_head;
    atomic_fetch_add(&p->calls, 1);
    (void)snprintf(p->last_path, sizeof(p->last_path), "%s", path);
    if (strcmp(path, "/healthz") == 0) {
        resp->body = dup_text("ok\n");
        resp->body_len = 3;
    } else if (strcmp(path, "/metrics") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        resp->body = dup_text("up 1\n");
        resp->body_len = 5;
    } else if (strcmp(path, "/fail") == 0) {
        resp->body = dup_text("leaked unless httpd frees it");
        resp->body_len = 28;
        return -EIO;
    } else {
        resp->status = 404;
        resp->body = dup_text("not found\n");
        resp->body_len = 10;
    }
    return 0;
}

static int connect_local(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Read until EOF, at most 10 s (a deadline against a hang, not a timing assertion). */
static char *read_all(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    int64_t deadline = now_ms() + 10000;

    assert_non_null(buf);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - now_ms();
        ssize_t n;

        assert_true(left > 0);
        assert_true(poll(&p, 1, (int)left) >= 0);
        if (p.revents == 0)
            continue;
        n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == ECONNRESET)
            break; /* a connection the server never accepted; a cut answer fails the compare */
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        assert_true(len < cap - 1);
    }
    buf[len] = '\0';
    return buf;
}

static char *http_exchange(int port, const char *request)
{
    int fd = connect_local(port);
    char *resp;

    send_all(fd, request, strlen(request));
    resp = read_all(fd);
    close(fd);
    return resp;
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void expect_exchange(int port, const char *request, const char *want)
{
    char *got = http_exchange(port, request);

    assert_string_equal(got, want);
    free(got);
}

/* What the probe handler answers to GET /healthz (its body "ok\n"), byte for byte. */
static const char HEALTHZ_OK[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Length: 3\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "ok\n";

static void test_httpd_requests(void **state)
{
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    int port;

    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    port = httpd_port(fx->h);
    assert_true(port > 0 && port < 65536);

    expect_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", HEALTHZ_OK);
    assert_string_equal(ctx->last_path, "/healthz");
    expect_exchange(port, "GET /metrics?name[]=x HTTP/1.0\r\n\r\n",
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                    "Content-Length: 5\r\n"
                    "Connection: close\r\n"
                    "\r\n"
                    "up 1\n");
    assert_string_equal(ctx->last_path, "/metrics");
    expect_exchange(port, "HEAD /healthz HTTP/1.1\r\n\r\n",
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 3\r\n"
                    "Connection: close\r\n"
                    "\r\n");
    expect_exchange(port, "GET /nope HTTP/1.1\r\n\r\n",
                    "HTTP/1.1 404 Not Found\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 10\r\n"
                    "Connection: close\r\n"
                    "\r\n"
                    "not found\n");
    expect_exchange(port, "GET /fail HTTP/1.1\r\n\r\n",
                    "HTTP/1.1 500 Internal Server Error\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 22\r\n"
                    "Connection: close\r\n"
                    "\r\n"
                    "internal server error\n");
    assert_int_equal(atomic_load(&ctx->calls), 5);

    /* refused before the handler: the call count does not move */
    expect_exchange(port, "POST /healthz HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
                    "HTTP/1.1 405 Method Not Allowed\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 19\r\n"
                    "Allow: GET, HEAD\r\n"
                    "Connection: close\r\n"
                    "\r\n"
                    "method not allowed\n");
    static const char *const bad_requests[] = {
        "HELLO\r\n\r\n",
        "GET\r\n\r\n",
        "GET /healthz\r\n\r\n",
        "GET healthz HTTP/1.1\r\n\r\n",
        "GET /healthz SPDY/3\r\n\r\n",
        "G(T /healthz HTTP/1.1\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++)
        expect_exchange(port, bad_requests[i],
                        "HTTP/1.1 400 Bad Request\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 12\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "bad request\n");
    assert_int_equal(atomic_load(&ctx->calls), 5);
    fx_stop_server(fx);
}

static void test_httpd_oversized_head(void **state)
{
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    char *req, *got;
    size_t n = 20000;
    int fd;

    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    /* a head of 20000 bytes, never terminated: answered 431 after 8 KiB */
    req = malloc(n + 1);
    assert_non_null(req);
    memcpy(req, "GET /healthz HTTP/1.1\r\nX-Pad: ", 30);
    memset(req + 30, 'a', n - 30);
    req[n] = '\0';
    fd = fx_keep_fd(fx, connect_local(httpd_port(fx->h)));
    send_all(fd, req, n);
    got = read_all(fd);
    fx_close_fd(fx, fd);
    assert_string_equal(got, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 23\r\n"
                             "Connection: close\r\n"
                             "\r\n"
                             "request head too large\n");
    free(got);

    /* exactly at the limit with its terminator: still served (8192 bytes in all) */
    size_t at = HTTPD_MAX_HEAD;
    memcpy(req, "GET /healthz HTTP/1.1\r\nX-Pad: ", 30);
    memset(req + 30, 'a', at - 30 - 4);
    memcpy(req + at - 4, "\r\n\r\n", 5);
    assert_int_equal(strlen(req), 8192);
    got = http_exchange(httpd_port(fx->h), req);
    assert_int_equal(strncmp(got, "HTTP/1.1 200 OK\r\n", 17), 0);
    free(got);
    free(req);
    assert_int_equal(atomic_load(&ctx->calls), 1);
    fx_stop_server(fx);
}

static void test_httpd_silent_client(void **state)
{
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    int silent, half;
    char *got;

    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    silent = fx_keep_fd(fx, connect_local(httpd_port(fx->h)));
    half = fx_keep_fd(fx, connect_local(httpd_port(fx->h)));
    send_all(half, "GET /heal", 9); /* half a request line, then nothing */
    expect_exchange(httpd_port(fx->h), "GET /healthz HTTP/1.1\r\n\r\n", HEALTHZ_OK);
    /* the server gives up on both after its read timeout: EOF without an answer */
    got = read_all(silent);
    assert_string_equal(got, "");
    free(got);
    got = read_all(half);
    assert_string_equal(got, "");
    free(got);
    fx_close_fd(fx, silent);
    fx_close_fd(fx, half);
    assert_int_equal(atomic_load(&ctx->calls), 1);
    fx_stop_server(fx);
}

/*
 * A slowloris client, one byte a second, never finishing its head: the read deadline counts from
 * the accept, not from the last byte, so the server cuts it off (after HTTPD_TIMEOUT_MS, 5 s)
 * without an answer; another client is served meanwhile. 20 bytes (about 20 s) is the bound:
 * a server that waited from the last byte would never cut it.
 */
static void test_httpd_slowloris(void **state)
{
    static const char dribble[] = "GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaa";
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    struct pollfd p;
    bool cut = false;
    size_t sent = 0;
    int fd;

    /* more bytes than the loop sends, and never the end of a head */
    assert_true(sizeof(dribble) - 1 > 20);
    assert_null(strstr(dribble, "\r\n\r\n"));
    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    fd = fx_keep_fd(fx, connect_local(httpd_port(fx->h)));
    while (!cut && sent < 20) {
        ssize_t n = send(fd, dribble + sent, 1, MSG_NOSIGNAL);

        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            cut = true;
            break;
        }
        assert_int_equal(n, 1);
        sent++;
        if (sent == 1) {
            /* served while the slow client holds its connection (well within its 5 s) */
            expect_exchange(httpd_port(fx->h), "GET /healthz HTTP/1.1\r\n\r\n", HEALTHZ_OK);
            assert_int_equal(atomic_load(&ctx->calls), 1);
        }
        /* a second until the next byte, unless the server closes first */
        p = (struct pollfd){.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, 1000) >= 0);
        if (p.revents) {
            char c;
            ssize_t r = recv(fd, &c, 1, 0);

            /* EOF or a reset, never an answer */
            assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
            cut = true;
        }
    }
    assert_true(cut);
    assert_true(sent >= 2); /* it had been sending for a while: a timeout, not a refusal */
    assert_int_equal(atomic_load(&ctx->calls), 1);
    fx_close_fd(fx, fd);
    /* and the server still serves */
    expect_exchange(httpd_port(fx->h), "GET /healthz HTTP/1.1\r\n\r\n", HEALTHZ_OK);
}

/*
 * accept running out of descriptors (EMFILE) leaves the connection queued and the listening
 * socket readable: the server must not spin on it, and serves the connection once descriptors
 * are free again. The spin is seen as CPU time: a thread polling in a loop burns about the whole
 * second it is watched; the pause (100 ms between tries) costs a few milliseconds.
 */
static void test_httpd_out_of_descriptors(void **state)
{
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    struct timespec c0, c1;
    struct rlimit low;
    int64_t cpu_ms;
    char *got;
    int fd, lowest_free;

    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    /* descriptors are handed out lowest first: the client gets lowest_free, accept would need
     * the next one, which the lowered limit forbids */
    lowest_free = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lowest_free >= 0);
    (void)close(lowest_free);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &fx->nofile), 0);
    low = fx->nofile;
    low.rlim_cur = (rlim_t)lowest_free + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    fx->nofile_lowered = true;
    fd = fx_keep_fd(fx, connect_local(httpd_port(fx->h)));
    assert_int_equal(fd, lowest_free);
    send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n", 25);

    sleep_ms(200); /* let the server meet EMFILE */
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0), 0);
    sleep_ms(1000);
    assert_int_equal(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1), 0);
    cpu_ms = (int64_t)(c1.tv_sec - c0.tv_sec) * 1000 + (c1.tv_nsec - c0.tv_nsec) / 1000000;
    print_message("server CPU while out of descriptors: %lld ms in 1 s\n", (long long)cpu_ms);
    assert_true(cpu_ms < 250);
    assert_int_equal(atomic_load(&ctx->calls), 0);

    assert_int_equal(setrlimit(RLIMIT_NOFILE, &fx->nofile), 0);
    fx->nofile_lowered = false;
    got = read_all(fd);
    assert_string_equal(got, HEALTHZ_OK);
    free(got);
    assert_int_equal(atomic_load(&ctx->calls), 1);
}

static void test_httpd_stop(void **state)
{
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int before, port, fd, idle;

    before = count_threads();
    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    assert_int_equal(count_threads(), before + 1);
    port = httpd_port(fx->h);
    idle = fx_keep_fd(fx, connect_local(port)); /* an open connection does not hold up the stop */
    fx_stop_server(fx);
    assert_int_equal(count_threads(), before);
    /* the connection was closed and nothing listens on the port any more */
    char *got = read_all(idle);
    assert_string_equal(got, "");
    free(got);
    fx_close_fd(fx, idle);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    (void)fx_keep_fd(fx, fd);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    fx_close_fd(fx, fd);
    httpd_stop(NULL);
}

static void test_httpd_bind_addresses(void **state)
{
    static const char *const bad[] = {"",
                                      "abc",
                                      "127.0.0.1:",
                                      "::1:80",
                                      "[::1]80",
                                      "[::1",
                                      "127.0.0.1:99999",
                                      "127.0.0.1:-1",
                                      "127.0.0.1:8a",
                                      ":+80"};
    static const char *const good[] = {"0", ":0", "127.0.0.1:0", "localhost:0"};
    struct fixture *fx = *state;
    struct probe_ctx *ctx = &fx->probe;
    char addr[64];
    int r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(httpd_start(&fx->h, bad[i], probe_handler, ctx), -EINVAL);
        assert_null(fx->h);
    }
    assert_int_equal(httpd_start(&fx->h, NULL, probe_handler, ctx), -EINVAL);
    assert_int_equal(httpd_start(&fx->h, "0", NULL, ctx), -EINVAL);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(httpd_start(&fx->h, good[i], probe_handler, ctx), 0);
        expect_exchange(httpd_port(fx->h), "GET /healthz HTTP/1.1\r\n\r\n", HEALTHZ_OK);
        fx_stop_server(fx);
    }
    /* the port of a running server is taken, SO_REUSEADDR or not */
    assert_int_equal(httpd_start(&fx->h, "127.0.0.1:0", probe_handler, ctx), 0);
    (void)snprintf(addr, sizeof(addr), "127.0.0.1:%d", httpd_port(fx->h));
    assert_int_equal(httpd_start(&fx->h2, addr, probe_handler, ctx), -EADDRINUSE);
    fx_stop_server(fx);
    /* IPv6 loopback where the host has it */
    r = httpd_start(&fx->h, "[::1]:0", probe_handler, ctx);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
        print_message("no IPv6 loopback here (%d): [::1] not tried\n", r);
        return;
    }
    assert_int_equal(r, 0);
    assert_true(httpd_port(fx->h) > 0);
    fx_stop_server(fx);
}

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wq_dedupe),
        cmocka_unit_test(test_wq_dirty_while_processing),
        cmocka_unit_test(test_wq_add_after_earliest_wins),
        cmocka_unit_test(test_wq_rate_limiter),
        cmocka_unit_test(test_wq_delayed_add_of_held_key),
        cmocka_unit_test(test_wq_get_timeout_real_clock),
        FX_TEST(test_wq_delayed_key_wakes_blocked_get),
        FX_TEST(test_wq_shutdown_wakes_waiters),
        cmocka_unit_test(test_wq_shutdown_does_not_drain),
        FX_TEST(test_wq_never_two_workers_on_one_key),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_numbers),
        cmocka_unit_test(test_metrics_rejects),
        FX_TEST(test_metrics_concurrent),
        FX_TEST(test_httpd_requests),
        FX_TEST(test_httpd_oversized_head),
        FX_TEST(test_httpd_silent_client),
        FX_TEST(test_httpd_slowloris),
        FX_TEST(test_httpd_out_of_descriptors),
        FX_TEST(test_httpd_stop),
        FX_TEST(test_httpd_bind_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
