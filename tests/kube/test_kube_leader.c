/*
 * Lease leader election (host-shims/kube/ctrl/leader.h) against a real kube-apiserver and etcd
 * (started by run_with_apiserver.sh with tests/kube/kube_harness.sh). Expected values come from
 * the protocol (shared/facts/kubernetes-controller.md §1.7, client-go's leaderelection.go) and
 * from the Lease objects read back from the server with a client of the test's own; the
 * electors' flags are sampled every 50 ms while anything may change, and two leaders of one
 * lease at once fail the test. Prints "ok N - ..." per step; the first failure prints why, stops
 * every elector (atexit) and exits 1.
 *
 * Durations: lease 3 s (10 s for the two electors of steps 1-3, so that a hand-over by release
 * and one by expiry are seconds apart), renew deadline 2 s, retry 0.5 s (so the acquire loop's
 * jittered wait is 0.5 .. 1.1 s), request timeout 1 s (the default).
 *
 * Timing bounds are one-sided where they can be made exact: when the test needs the earliest
 * moment a record can have been written, it takes the start of the last GET that still showed
 * the record before (the write came after that GET was sent); upper bounds allow seconds of
 * slack for a loaded machine.
 *
 * Environment (from kube_harness.sh): KUBECONFIG.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kc.h"
#include "leader.h"

#define NS            "le-test"
#define LEASE_MS      3000
#define LONG_LEASE_MS 10000
#define RENEW_MS      2000
#define RETRY_MS      500
#define SAMPLE_MS     50
/* leader.h's default, which config_for keeps */
#define REQUEST_MS LEADER_DEFAULT_REQUEST_TIMEOUT_MS
/* the longest jittered wait of the acquire loop: retry x (1 + 1.2) */
#define MAX_RETRY_WAIT_MS (RETRY_MS * 22 / 10)

static const struct kc_resource NAMESPACES = {"", "v1", "namespaces", false};
static const struct kc_resource LEASES = {"coordination.k8s.io", "v1", "leases", true};

struct elector {
    char id[64];
    const char *lease; /* the Lease's name (a literal) */
    struct leader *le;
    atomic_int started;   /* on_started_leading calls */
    atomic_int stopped;   /* on_stopped_leading calls */
    atomic_llong lost_ms; /* when on_stopped_leading was called (monotonic ms) */
};

#define MAX_ELECTORS 12
static struct elector electors[MAX_ELECTORS];
static int n_electors;
static struct kc_config kcfg;
static struct kc_client *admin;
static int checks;
static struct timespec t_start;

/* ---- helpers ------------------------------------------------------------------------------- */

static void stop_all(void)
{
    for (int i = 0; i < n_electors; i++) {
        leader_free(electors[i].le);
        electors[i].le = NULL;
    }
}

__attribute__((noreturn, format(printf, 3, 4))) static void fail_at(const char *file, int line,
                                                                    const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1); /* stop_all runs from atexit */
}
#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL(__VA_ARGS__);                                                                     \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void pause_ms(long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

__attribute__((format(printf, 1, 2))) static void ok(const char *fmt, ...)
{
    va_list ap;

    printf("ok %d - ", ++checks);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" [%.1f s]\n", seconds_since(&t_start));
    fflush(stdout);
}

static void on_started(void *ctx)
{
    struct elector *e = ctx;

    atomic_fetch_add(&e->started, 1);
}

static void on_stopped(void *ctx)
{
    struct elector *e = ctx;

    atomic_store(&e->lost_ms, (long long)now_ms());
    atomic_fetch_add(&e->stopped, 1);
}

static void log_line(void *ctx, int level, const char *msg)
{
    struct elector *e = ctx;

    fprintf(stderr, "  [%s L%d %.1f s] %s\n", e->id, level, seconds_since(&t_start), msg);
}

static struct leader_config config_for(const char *lease, struct elector *e, int64_t lease_ms)
{
    struct leader_config c = {.namespace = NS,
                              .name = lease,
                              .identity = e->id,
                              .lease_duration_ms = lease_ms,
                              .renew_deadline_ms = RENEW_MS,
                              .retry_period_ms = RETRY_MS,
                              .on_started_leading = on_started,
                              .on_stopped_leading = on_stopped,
                              .callback_ctx = e,
                              .log = log_line,
                              .log_ctx = e};
    return c;
}

static struct elector *start_on(const char *lease, const char *id, const struct kc_config *kc,
                                int64_t lease_ms)
{
    struct elector *e;
    struct leader_config c;
    int rc;

    CHECK(n_electors < MAX_ELECTORS, "too many electors");
    e = &electors[n_electors++];
    (void)snprintf(e->id, sizeof(e->id), "%s", id); /* short literals */
    e->lease = lease;
    c = config_for(lease, e, lease_ms);
    rc = leader_start(&c, kc, &e->le);
    CHECK(rc == 0, "leader_start %s: %d", id, rc);
    return e;
}

static struct elector *start(const char *lease, const char *id)
{
    return start_on(lease, id, &kcfg, LEASE_MS);
}

static bool leading(const struct elector *e)
{
    return e->le && leader_is_leader(e->le);
}

/* The invariant: never two leaders of one lease at once. */
static void sample(void)
{
    for (int i = 0; i < n_electors; i++)
        for (int j = i + 1; j < n_electors; j++)
            CHECK(!(strcmp(electors[i].lease, electors[j].lease) == 0 && leading(&electors[i]) &&
                    leading(&electors[j])),
                  "%s and %s lead %s at once", electors[i].id, electors[j].id, electors[i].lease);
}

/* Sample every 50 ms until e leads (true) or timeout_ms passed (false). */
static bool wait_leading(const struct elector *e, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    for (;;) {
        sample(); /* fails by itself */
        if (leading(e))
            return true;
        if (now_ms() >= end)
            return false;
        pause_ms(SAMPLE_MS);
    }
}

/* the first of a and b to lead within timeout_ms */
static struct elector *wait_either(struct elector *a, struct elector *b, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    while (now_ms() < end) {
        sample();
        if (leading(a))
            return a;
        if (leading(b))
            return b;
        pause_ms(SAMPLE_MS);
    }
    return NULL;
}

static json_t *lease_get(const char *name)
{
    json_t *obj = NULL;
    int rc = kc_get(admin, &LEASES, NS, name, 5000, &obj);

    CHECK(rc == 0, "GET lease %s: %d: %s", name, rc, kc_last_error(admin));
    return obj;
}

static const char *spec_str(json_t *lease, const char *key)
{
    json_t *v = json_object_get(json_object_get(lease, "spec"), key);

    CHECK(json_is_string(v), "lease spec.%s is not a string", key);
    return json_string_value(v);
}

static json_int_t spec_int(json_t *lease, const char *key)
{
    json_t *v = json_object_get(json_object_get(lease, "spec"), key);

    CHECK(json_is_integer(v), "lease spec.%s is not an integer", key);
    return json_integer_value(v);
}

/* "2006-01-02T15:04:05.000000Z": digits where the layout has digits, the rest literally */
static bool is_micro_time(const char *s)
{
    const char *layout = "2006-01-02T15:04:05.000000Z";

    if (strlen(s) != strlen(layout))
        return false;
    for (size_t i = 0; layout[i]; i++) {
        bool digit = layout[i] >= '0' && layout[i] <= '9';

        if (digit ? !(s[i] >= '0' && s[i] <= '9') : s[i] != layout[i])
            return false;
    }
    return true;
}

static void holder_of(const struct elector *e, char *buf, size_t len)
{
    CHECK(leader_get_holder(e->le, buf, len) == 0, "leader_get_holder %s", e->id);
}

static void ensure_namespace(void)
{
    json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                           "metadata", "name", NS);
    int rc = kc_create(admin, &NAMESPACES, NULL, ns, 5000, NULL);

    CHECK(rc == 0 || kc_last_reason(admin) == KC_REASON_ALREADY_EXISTS, "create namespace: %s",
          kc_last_error(admin));
    json_decref(ns);
}

static const char *rv_of(json_t *obj)
{
    const char *v =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));

    CHECK(v && v[0], "object without resourceVersion");
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A MicroTime (UTC) as this process's monotonic ms (the clocks' offset read now). */
static int64_t micro_time_to_monotonic_ms(const char *s)
{
    int y, mo, d, h, mi, sec, us, n = 0;
    struct timespec rt, mt;
    int64_t epoch_ms, offset;

    CHECK(is_micro_time(s) &&
              sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &y, &mo, &d, &h, &mi, &sec, &us, &n) ==
                  7 &&
              n == (int)strlen(s),
          "MicroTime %s", s);
    epoch_ms =
        ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + us / 1000;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    offset = ((int64_t)rt.tv_sec - mt.tv_sec) * 1000 + (rt.tv_nsec - mt.tv_nsec) / 1000000;
    return epoch_ms - offset;
}

/*
 * Follows a Lease's record by GETs. change_lb: the earliest moment the last record by `holder`
 * seen can have been written: the start of the GET before the one that first showed it (the
 * write came after that GET was sent); 0 while unknown (only the first record seen was holder's).
 */
struct tracker {
    char rv[64];
    int64_t prev_start;
    int64_t change_lb;
};

/* One GET of `name` (returned, owned by the caller) noted in tr. */
static json_t *track(struct tracker *tr, const char *name, const char *holder)
{
    int64_t start = now_ms();
    json_t *lease = lease_get(name);
    const char *rv = rv_of(lease);

    if (strcmp(rv, tr->rv) != 0) {
        /* another holder's record (a takeover) leaves the bound of holder's last one alone */
        if (strcmp(spec_str(lease, "holderIdentity"), holder) == 0)
            tr->change_lb = tr->rv[0] ? tr->prev_start : 0;
        (void)snprintf(tr->rv, sizeof(tr->rv), "%s", rv); /* resourceVersions are short */
    }
    tr->prev_start = start;
    return lease;
}

/* Wait (sampling) until e's elector has read the Lease and seen `holder` in it. */
static void wait_sees(const struct elector *e, const char *holder, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    char held[64] = "";

    for (;;) {
        sample();
        holder_of(e, held, sizeof(held));
        if (strcmp(held, holder) == 0)
            return;
        CHECK(now_ms() < end, "%s never saw holder %s (sees \"%s\")", e->id, holder, held);
        pause_ms(SAMPLE_MS);
    }
}

/* ---- a TCP proxy to the API server that can stop forwarding (fault injection) -------------- */

#define PROXY_PAIRS 8

static struct {
    int listen_fd;
    struct sockaddr_in upstream;
    int fds[PROXY_PAIRS][2]; /* a client's socket and its upstream one; -1: free (thread's) */
    atomic_bool frozen;      /* forward nothing more */
    atomic_bool held;        /* a client sent bytes while frozen */
    atomic_bool quit;
    pthread_t thread;
} proxy;

static void proxy_close_pair(int i)
{
    close(proxy.fds[i][0]);
    close(proxy.fds[i][1]);
    proxy.fds[i][0] = proxy.fds[i][1] = -1;
}

static void proxy_accept(void)
{
    int c = accept(proxy.listen_fd, NULL, NULL), u;

    if (c < 0)
        return;
    u = socket(AF_INET, SOCK_STREAM, 0);
    if (u >= 0 && connect(u, (struct sockaddr *)&proxy.upstream, sizeof(proxy.upstream)) == 0)
        for (int i = 0; i < PROXY_PAIRS; i++)
            if (proxy.fds[i][0] < 0) {
                proxy.fds[i][0] = c;
                proxy.fds[i][1] = u;
                return;
            }
    close(c); /* the client sees the connection drop */
    if (u >= 0)
        close(u);
}

/* Copy what fds[i][k] has to the other side of the pair; false when the pair is done. */
static bool proxy_forward(int i, int k)
{
    char buf[16384];
    ssize_t n = read(proxy.fds[i][k], buf, sizeof(buf));

    for (ssize_t off = 0; n > 0 && off < n;) {
        ssize_t w = write(proxy.fds[i][1 - k], buf + off, (size_t)(n - off));

        if (w <= 0)
            return false;
        off += w;
    }
    return n > 0;
}

static void *proxy_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&proxy.quit)) {
        struct pollfd p[1 + 2 * PROXY_PAIRS];

        p[0] = (struct pollfd){.fd = proxy.listen_fd, .events = POLLIN};
        for (int i = 0; i < PROXY_PAIRS; i++)
            for (int k = 0; k < 2; k++) /* poll skips fd -1 */
                p[1 + 2 * i + k] = (struct pollfd){.fd = proxy.fds[i][k], .events = POLLIN};
        if (poll(p, 1 + 2 * PROXY_PAIRS, SAMPLE_MS) <= 0)
            continue;
        if (p[0].revents & POLLIN)
            proxy_accept();
        for (int i = 0; i < PROXY_PAIRS; i++)
            for (int k = 0; k < 2 && proxy.fds[i][k] >= 0; k++) {
                if (!p[1 + 2 * i + k].revents)
                    continue;
                if (atomic_load(&proxy.frozen)) {
                    if (k == 0)
                        atomic_store(&proxy.held, true);
                    continue;
                }
                if (!proxy_forward(i, k))
                    proxy_close_pair(i);
            }
        if (atomic_load(&proxy.frozen))
            pause_ms(SAMPLE_MS); /* what waits stays readable: do not spin */
    }
    for (int i = 0; i < PROXY_PAIRS; i++)
        if (proxy.fds[i][0] >= 0)
            proxy_close_pair(i);
    return NULL;
}

/* Start the proxy to kcfg's server (https://127.0.0.1:PORT); its port. */
static unsigned proxy_start(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    unsigned port = 0;
    int n = 0;

    CHECK(sscanf(kcfg.server, "https://127.0.0.1:%5u%n", &port, &n) == 1 &&
              n == (int)strlen(kcfg.server) && port > 0 && port < 65536,
          "the proxy wants https://127.0.0.1:PORT, not %s", kcfg.server);
    proxy.upstream = addr;
    proxy.upstream.sin_port = htons((uint16_t)port);
    for (int i = 0; i < PROXY_PAIRS; i++)
        proxy.fds[i][0] = proxy.fds[i][1] = -1;
    proxy.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(proxy.listen_fd >= 0 &&
              bind(proxy.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
              listen(proxy.listen_fd, 16) == 0 &&
              getsockname(proxy.listen_fd, (struct sockaddr *)&addr, &alen) == 0,
          "proxy socket");
    CHECK(pthread_create(&proxy.thread, NULL, proxy_main, NULL) == 0, "proxy thread");
    return ntohs(addr.sin_port);
}

static void proxy_stop(void)
{
    atomic_store(&proxy.quit, true);
    (void)pthread_join(proxy.thread, NULL); /* joinable, joined once */
    close(proxy.listen_fd);
}

/* ---- steps --------------------------------------------------------------------------------- */

/* 1: two electors, one leader; the lease names it; the other never leads meanwhile; renewals
 * move renewTime and keep acquireTime. */
static void two_electors(struct elector **ret_leader, struct elector **ret_standby)
{
    struct elector *a = start_on("le-two", "alpha", &kcfg, LONG_LEASE_MS);
    struct elector *b = start_on("le-two", "bravo", &kcfg, LONG_LEASE_MS);
    struct elector *x, *y;
    char held[64];
    char renew_last[64];
    char acquire1[64];
    int renewals = 0;
    json_t *lease;
    int64_t end;

    x = wait_either(a, b, 10000);
    CHECK(x, "no elector leads within 10 s");
    y = x == a ? b : a;
    end = now_ms() + 4000;
    while (now_ms() < end) {
        sample();
        CHECK(leading(x) && !leading(y), "%s stopped leading while renewing", x->id);
        pause_ms(SAMPLE_MS);
    }
    CHECK(atomic_load(&x->started) == 1 && atomic_load(&y->started) == 0,
          "on_started_leading: %s %d, %s %d", x->id, atomic_load(&x->started), y->id,
          atomic_load(&y->started));
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), x->id) == 0, "holder %s, expected %s",
          spec_str(lease, "holderIdentity"), x->id);
    CHECK(spec_int(lease, "leaseDurationSeconds") == LONG_LEASE_MS / 1000,
          "leaseDurationSeconds %lld", (long long)spec_int(lease, "leaseDurationSeconds"));
    CHECK(spec_int(lease, "leaseTransitions") == 0, "leaseTransitions %lld on a new lease",
          (long long)spec_int(lease, "leaseTransitions"));
    CHECK(is_micro_time(spec_str(lease, "acquireTime")) &&
              is_micro_time(spec_str(lease, "renewTime")),
          "times %s %s", spec_str(lease, "acquireTime"), spec_str(lease, "renewTime"));
    (void)snprintf(renew_last, sizeof(renew_last), "%s", spec_str(lease, "renewTime"));
    (void)snprintf(acquire1, sizeof(acquire1), "%s", spec_str(lease, "acquireTime"));
    json_decref(lease);
    holder_of(y, held, sizeof(held));
    CHECK(strcmp(held, x->id) == 0, "%s sees holder \"%s\"", y->id, held);
    /* two more renewals: renewTime moves, acquireTime stays (client-go keeps it when renewing) */
    end = now_ms() + 10000;
    while (renewals < 2) {
        CHECK(now_ms() < end, "renewTime moved %d times in 10 s (%s)", renewals, renew_last);
        sample();
        lease = lease_get("le-two");
        CHECK(strcmp(spec_str(lease, "holderIdentity"), x->id) == 0, "holder %s, expected %s",
              spec_str(lease, "holderIdentity"), x->id);
        CHECK(strcmp(spec_str(lease, "acquireTime"), acquire1) == 0,
              "acquireTime %s changed from %s while %s renewed", spec_str(lease, "acquireTime"),
              acquire1, x->id);
        if (strcmp(spec_str(lease, "renewTime"), renew_last) != 0) {
            renewals++;
            (void)snprintf(renew_last, sizeof(renew_last), "%s", spec_str(lease, "renewTime"));
        }
        json_decref(lease);
        pause_ms(SAMPLE_MS);
    }
    ok("two electors: %s leads, %s stands by, never both for 4 s; the lease names %s; renewals "
       "move renewTime and keep acquireTime %s",
       x->id, y->id, x->id, acquire1);
    *ret_leader = x;
    *ret_standby = y;
}

/* 2: leader_stop with release by an elector that does not lead writes nothing. */
static void standby_release_writes_nothing(struct elector *x)
{
    struct elector *d = start_on("le-two", "delta", &kcfg, LONG_LEASE_MS);
    json_t *lease;

    wait_sees(d, x->id, 10000);
    leader_stop(d->le, true);
    sample();
    CHECK(!leader_is_leader(d->le) && leading(x), "delta %d, %s %d after delta's stop",
          leader_is_leader(d->le), x->id, leading(x));
    /* a blanked record would show here, or as leaseTransitions 1 once x took it back */
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), x->id) == 0 &&
              spec_int(lease, "leaseDurationSeconds") == LONG_LEASE_MS / 1000 &&
              spec_int(lease, "leaseTransitions") == 0,
          "after a standby's leader_stop(release): holder \"%s\", leaseDurationSeconds %lld, "
          "leaseTransitions %lld",
          spec_str(lease, "holderIdentity"), (long long)spec_int(lease, "leaseDurationSeconds"),
          (long long)spec_int(lease, "leaseTransitions"));
    json_decref(lease);
    ok("a standby's leader_stop(release) leaves %s's lease alone", x->id);
}

/* 3: stop the leader with release: the record is released and the standby takes over at its
 * next try, long before the 10 s lease could have run out. */
static void release_hands_over(struct elector *x, struct elector *y)
{
    int64_t t0 = now_ms(), stopped, took;
    const char *holder;
    json_t *lease;

    leader_stop(x->le, true);
    stopped = now_ms();
    CHECK(!leader_is_leader(x->le), "%s still leads after leader_stop", x->id);
    lease = lease_get("le-two");
    holder = spec_str(lease, "holderIdentity");
    if (holder[0] == '\0')
        CHECK(spec_int(lease, "leaseDurationSeconds") == 1 &&
                  spec_int(lease, "leaseTransitions") == 0,
              "released record: leaseDurationSeconds %lld, leaseTransitions %lld",
              (long long)spec_int(lease, "leaseDurationSeconds"),
              (long long)spec_int(lease, "leaseTransitions"));
    else /* the standby was quicker than this GET */
        CHECK(strcmp(holder, y->id) == 0, "holder \"%s\" right after %s released", holder, x->id);
    json_decref(lease);
    CHECK(wait_leading(y, 10000), "%s did not take over within 10 s", y->id);
    took = now_ms() - stopped;
    printf("# takeover %" PRId64 " ms after leader_stop(release) returned (it took %" PRId64
           " ms)\n",
           took, stopped - t0);
    /* the next try comes within 1.1 s; waiting out x's lease instead would take >= 10 s from
     * x's last renewal (<= retry + a request before t0), i.e. >= 5.5 s after stop returned */
    CHECK(took <= LONG_LEASE_MS / 2 - 500, "takeover %" PRId64 " ms after the release", took);
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), y->id) == 0, "holder %s, expected %s",
          spec_str(lease, "holderIdentity"), y->id);
    CHECK(spec_int(lease, "leaseTransitions") == 1, "leaseTransitions %lld, expected 1",
          (long long)spec_int(lease, "leaseTransitions"));
    json_decref(lease);
    ok("stop with release: %s leads %" PRId64 " ms after it (lease %d ms), leaseTransitions 1",
       y->id, took, LONG_LEASE_MS);
}

/* 4: stop the leader without release (a kill): a standby waits out the lease duration of the
 * record (10 s, not its own 3 s) from when it last saw the record change. */
static struct elector *expiry_takeover(struct elector *y)
{
    struct elector *c = start("le-two", "charlie");
    struct tracker tr = {0};
    int64_t end = now_ms() + 10000, t0, since;
    json_t *lease;

    wait_sees(c, y->id, 10000);
    /* follow y's renewals until the test knows when one was written at the earliest */
    while (tr.change_lb == 0) {
        CHECK(now_ms() < end, "the test never saw %s renew", y->id);
        sample();
        json_decref(track(&tr, "le-two", y->id));
        pause_ms(SAMPLE_MS);
    }
    t0 = now_ms();
    leader_stop(y->le, false);
    end = t0 + LONG_LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 10000;
    while (!leading(c)) {
        CHECK(now_ms() < end, "charlie did not take over");
        sample();
        json_decref(track(&tr, "le-two", y->id)); /* y's last renewal may land after t0 */
        pause_ms(SAMPLE_MS);
    }
    since = now_ms() - tr.change_lb;
    printf("# takeover after a kill: %" PRId64 " ms after the last renewal was written (at the "
           "earliest), %" PRId64 " ms after leader_stop\n",
           since, now_ms() - t0);
    CHECK(tr.change_lb > 0, "the test lost track of %s's renewals", y->id);
    /* exact but for ms rounding: charlie saw the record after it was written */
    CHECK(since >= LONG_LEASE_MS - 250,
          "took over %" PRId64 " ms after the last renewal (lease %d ms)", since, LONG_LEASE_MS);
    CHECK(since <= LONG_LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 5000,
          "took over only after %" PRId64 " ms", since);
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), c->id) == 0, "holder %s, expected charlie",
          spec_str(lease, "holderIdentity"));
    CHECK(spec_int(lease, "leaseTransitions") == 2, "leaseTransitions %lld, expected 2",
          (long long)spec_int(lease, "leaseTransitions"));
    CHECK(spec_int(lease, "leaseDurationSeconds") == LEASE_MS / 1000,
          "leaseDurationSeconds %lld, expected charlie's",
          (long long)spec_int(lease, "leaseDurationSeconds"));
    json_decref(lease);
    ok("stop without release: charlie leads %" PRId64 " ms after the last renewal (>= %d ms), "
       "leaseTransitions 2",
       since, LONG_LEASE_MS);
    return c;
}

/* 5: a third party writes another holder: the leader cannot renew and gives up at its renew
 * deadline (not before), then never writes again, and its leader_stop(release) neither. */
static void foreign_holder(struct elector *c)
{
    struct tracker tr = {0};
    int64_t t_write = 0, end = now_ms() + 10000, lost_at, renewed_at = 0, quiet_until;
    char rv[64] = "";
    struct leader_stats st;
    char held[64];
    json_t *lease;

    while (!t_write) {
        json_t *spec, *answer = NULL;

        CHECK(now_ms() < end, "the intruder's PUT kept conflicting");
        sample();
        lease = track(&tr, "le-two", c->id);
        if (tr.change_lb == 0) { /* wait until the test has seen charlie write */
            json_decref(lease);
            pause_ms(SAMPLE_MS);
            continue;
        }
        /* the renewal this PUT overwrites: charlie's last successful one if the PUT succeeds */
        renewed_at = micro_time_to_monotonic_ms(spec_str(lease, "renewTime"));
        spec = json_object_get(lease, "spec");
        CHECK(json_object_set_new(spec, "holderIdentity", json_string("intruder")) == 0 &&
                  json_object_set_new(spec, "leaseDurationSeconds",
                                      json_integer(LEASE_MS / 1000)) == 0 &&
                  json_object_set_new(spec, "leaseTransitions",
                                      json_integer(spec_int(lease, "leaseTransitions") + 1)) == 0,
              "building the intruder's record");
        if (kc_replace(admin, &LEASES, NS, lease, 5000, &answer) == 0) {
            t_write = now_ms();
            (void)snprintf(rv, sizeof(rv), "%s", rv_of(answer));
        } else {
            CHECK(kc_last_reason(admin) == KC_REASON_CONFLICT, "PUT intruder: %s",
                  kc_last_error(admin));
        }
        json_decref(answer);
        json_decref(lease);
    }
    /* renewTime is stamped as the renewal starts: not before the earliest write time less the
     * at most two requests of an attempt, and before the intruder's write */
    CHECK(renewed_at >= tr.change_lb - 2 * REQUEST_MS - 250 && renewed_at <= t_write,
          "charlie's renewTime is %" PRId64 " ms from the intruder's write", renewed_at - t_write);
    while (atomic_load(&c->stopped) == 0) {
        CHECK(now_ms() - t_write < RENEW_MS + 5000, "charlie still leads %d ms after the intruder",
              RENEW_MS + 5000);
        sample();
        pause_ms(SAMPLE_MS);
    }
    lost_at = (int64_t)atomic_load(&c->lost_ms);
    printf("# leadership lost %" PRId64 " ms after the foreign write, %" PRId64
           " ms after charlie's last renewal\n",
           lost_at - t_write, lost_at - renewed_at);
    CHECK(!leader_is_leader(c->le), "charlie's flag is still set after on_stopped_leading");
    /* not before the renew deadline after the last renewal (250 ms: ms rounding, the clocks) */
    CHECK(lost_at >= renewed_at + RENEW_MS - 250,
          "gave up %" PRId64 " ms after its last renewal (renew deadline %d ms)",
          lost_at - renewed_at, RENEW_MS);
    CHECK(lost_at <= t_write + RENEW_MS + 1500, "lost only %" PRId64 " ms after the foreign write",
          lost_at - t_write);
    leader_get_stats(c->le, &st);
    CHECK(st.renew_failures >= 1, "renew_failures %" PRIu64, st.renew_failures);
    holder_of(c, held, sizeof(held));
    CHECK(strcmp(held, "intruder") == 0, "charlie sees holder \"%s\"", held);
    /* an elector that lost must not write again, not even once the intruder's lease (3 s) ran
     * out by its clock (the intruder never renews): wait that out and the retries after it */
    quiet_until = t_write + LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 1000;
    while (now_ms() < quiet_until) {
        sample();
        CHECK(!leading(c), "charlie leads again");
        pause_ms(SAMPLE_MS);
    }
    lease = lease_get("le-two");
    CHECK(strcmp(rv_of(lease), rv) == 0, "the lease changed after charlie lost: holder %s",
          spec_str(lease, "holderIdentity"));
    json_decref(lease);
    leader_stop(c->le, true); /* lost: nothing to release */
    lease = lease_get("le-two");
    CHECK(strcmp(rv_of(lease), rv) == 0, "leader_stop(release) after losing wrote: holder \"%s\"",
          spec_str(lease, "holderIdentity"));
    json_decref(lease);
    ok("foreign holder: charlie stops leading %" PRId64 " ms after its last renewal (renew "
       "deadline %d ms), %" PRIu64 " renew failures; no write in the %" PRId64 " ms after",
       lost_at - renewed_at, RENEW_MS, st.renew_failures, quiet_until - t_write);
}

/* Create Lease `name` held by `holder` (3 s lease) with both times `stamp`; *before: when the
 * POST was sent. Returns when it was answered. */
static int64_t create_foreign(const char *name, const char *holder, const char *stamp,
                              int transitions, int64_t *before)
{
    json_t *obj =
        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
                  "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", name, "namespace",
                  NS, "spec", "holderIdentity", holder, "leaseDurationSeconds", LEASE_MS / 1000,
                  "acquireTime", stamp, "renewTime", stamp, "leaseTransitions", transitions);
    int rc;

    CHECK(obj, "building lease %s", name);
    *before = now_ms();
    rc = kc_create(admin, &LEASES, NS, obj, 5000, NULL);
    CHECK(rc == 0, "POST lease %s: %s", name, kc_last_error(admin));
    json_decref(obj);
    return now_ms();
}

/* 6: expiry is judged by the elector's own clock, never from renewTime: a foreign record whose
 * renewTime is long past, and one whose renewTime is far in the future, both make a new elector
 * wait the record's lease duration (3 s) from when it saw it. Then release keeps
 * leaseTransitions > 0 and clears the holder. */
static void renew_time_ignored(void)
{
    static const struct {
        const char *lease, *holder, *id, *stamp;
        int transitions;
    } cases[] = {
        {"le-past", "ghost-past", "golf", "2001-02-03T04:05:06.000000Z", 7},
        {"le-future", "ghost-future", "hotel", "2101-02-03T04:05:06.000000Z", 4},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    int64_t before[N], after[N], led[N] = {0}, end;
    struct elector *e[N];
    int waiting = N;

    for (int i = 0; i < N; i++)
        after[i] = create_foreign(cases[i].lease, cases[i].holder, cases[i].stamp,
                                  cases[i].transitions, &before[i]);
    for (int i = 0; i < N; i++)
        e[i] = start(cases[i].lease, cases[i].id);
    end = now_ms() + LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 10000;
    while (waiting > 0) {
        CHECK(now_ms() < end, "%s did not take over %s", led[0] ? e[1]->id : e[0]->id,
              led[0] ? cases[1].lease : cases[0].lease);
        sample();
        for (int i = 0; i < N; i++)
            if (!led[i] && leading(e[i])) {
                led[i] = now_ms();
                waiting--;
            }
        pause_ms(SAMPLE_MS);
    }
    for (int i = 0; i < N; i++) {
        json_t *lease;

        printf("# %s: took over %s (renewTime %s) %" PRId64 " ms after it was written\n", e[i]->id,
               cases[i].lease, cases[i].stamp, led[i] - after[i]);
        CHECK(led[i] - after[i] >= LEASE_MS - 1000,
              "%s took over %" PRId64 " ms after the record with renewTime %s was written",
              e[i]->id, led[i] - after[i], cases[i].stamp);
        CHECK(led[i] - before[i] <= LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 5000,
              "%s took over only %" PRId64 " ms after the record was written", e[i]->id,
              led[i] - before[i]);
        lease = lease_get(cases[i].lease);
        CHECK(strcmp(spec_str(lease, "holderIdentity"), e[i]->id) == 0 &&
                  spec_int(lease, "leaseTransitions") == cases[i].transitions + 1 &&
                  is_micro_time(spec_str(lease, "acquireTime")) &&
                  strcmp(spec_str(lease, "acquireTime"), cases[i].stamp) != 0,
              "%s: holder %s, leaseTransitions %lld, acquireTime %s", cases[i].lease,
              spec_str(lease, "holderIdentity"), (long long)spec_int(lease, "leaseTransitions"),
              spec_str(lease, "acquireTime"));
        json_decref(lease);
        leader_stop(e[i]->le, true);
        lease = lease_get(cases[i].lease);
        CHECK(strcmp(spec_str(lease, "holderIdentity"), "") == 0 &&
                  spec_int(lease, "leaseDurationSeconds") == 1 &&
                  spec_int(lease, "leaseTransitions") == cases[i].transitions + 1,
              "%s after release: holder \"%s\", leaseDurationSeconds %lld, leaseTransitions %lld",
              cases[i].lease, spec_str(lease, "holderIdentity"),
              (long long)spec_int(lease, "leaseDurationSeconds"),
              (long long)spec_int(lease, "leaseTransitions"));
        json_decref(lease);
    }
    ok("renewTime ignored: past and future renewTime both wait out the 3 s lease (%" PRId64
       ", %" PRId64 " ms); release keeps leaseTransitions %d and %d",
       led[0] - after[0], led[1] - after[1], cases[0].transitions + 1, cases[1].transitions + 1);
}
/* 7: configurations the rules refuse, and nothing written for them. */
static void bad_configs(void)
{
    static const struct {
        const char *what;
        const char *ns, *name, *identity;
        int64_t lease, renew, retry;
        int want;
    } cases[] = {
        {"renew == lease", NS, "le-bad", "x", 3000, 3000, 500, -EINVAL},
        {"renew > lease", NS, "le-bad", "x", 3000, 4000, 500, -EINVAL},
        {"renew == 1.2 x retry", NS, "le-bad", "x", 3000, 1200, 1000, -EINVAL},
        {"renew < 1.2 x retry", NS, "le-bad", "x", 3000, 1100, 1000, -EINVAL},
        {"lease not whole seconds", NS, "le-bad", "x", 2500, 2000, 500, -EINVAL},
        {"negative retry", NS, "le-bad", "x", 3000, 2000, -1, -EINVAL},
        {"default lease 15 s < renew 20 s", NS, "le-bad", "x", 0, 20000, 500, -EINVAL},
        {"empty identity", NS, "le-bad", "", 3000, 2000, 500, -EINVAL},
        {"no identity", NS, "le-bad", NULL, 3000, 2000, 500, -EINVAL},
        {"no name", NS, NULL, "x", 3000, 2000, 500, -EINVAL},
        {"no namespace", NULL, "le-bad", "x", 3000, 2000, 500, -EINVAL},
        {"renew just above 1.2 x retry", NS, "le-bad", "x", 3000, 1201, 1000, 0},
        {"the defaults", NS, "le-bad", "x", 0, 0, 0, 0},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);

    for (size_t i = 0; i < n; i++) {
        struct leader_config c = {.namespace = cases[i].ns,
                                  .name = cases[i].name,
                                  .identity = cases[i].identity,
                                  .lease_duration_ms = cases[i].lease,
                                  .renew_deadline_ms = cases[i].renew,
                                  .retry_period_ms = cases[i].retry};
        struct leader *le = NULL;
        char err[160] = "";
        int rc = leader_config_check(&c, err, sizeof(err));

        CHECK(rc == cases[i].want, "%s: leader_config_check %d, expected %d", cases[i].what, rc,
              cases[i].want);
        CHECK((rc == 0) == (err[0] == '\0'), "%s: message \"%s\"", cases[i].what, err);
        if (cases[i].want == 0)
            continue;
        rc = leader_start(&c, &kcfg, &le);
        CHECK(rc == -EINVAL && le == NULL, "%s: leader_start %d", cases[i].what, rc);
        printf("#   %s: %s\n", cases[i].what, err);
    }
    CHECK(kc_get(admin, &LEASES, NS, "le-bad", 5000, NULL) == -EREMOTEIO &&
              kc_last_reason(admin) == KC_REASON_NOT_FOUND,
          "lease le-bad exists: %s", kc_last_error(admin));
    ok("bad configurations: %zu cases, -EINVAL with a reason, nothing written", n);
}

/* 8: release of a new lease with nobody waiting: the record itself. */
static void release_record(void)
{
    struct elector *e = start("le-solo", "echo");
    json_t *lease;

    CHECK(wait_leading(e, 10000), "echo did not lead le-solo");
    leader_stop(e->le, true);
    lease = lease_get("le-solo");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), "") == 0, "holder \"%s\" after release",
          spec_str(lease, "holderIdentity"));
    CHECK(spec_int(lease, "leaseDurationSeconds") == 1, "leaseDurationSeconds %lld after release",
          (long long)spec_int(lease, "leaseDurationSeconds"));
    CHECK(spec_int(lease, "leaseTransitions") == 0, "leaseTransitions %lld after release",
          (long long)spec_int(lease, "leaseTransitions"));
    CHECK(is_micro_time(spec_str(lease, "renewTime")), "renewTime %s",
          spec_str(lease, "renewTime"));
    json_decref(lease);
    ok("release writes holderIdentity \"\" and leaseDurationSeconds 1, transitions kept");
}

/* 9: leader_stop is bounded when the server does not answer (a fault injector: a listening
 * socket that accepts and never answers, so the TLS handshake hangs). */
static void stop_bounded(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct pollfd pfd = {.events = POLLIN};
    char server[64];
    struct kc_config hung = kcfg; /* shallow: kc_client_new copies; never finished */
    struct elector *f;
    int64_t t0, took;

    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 16) == 0 &&
              getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
          "listening socket");
    (void)snprintf(server, sizeof(server), "https://127.0.0.1:%u", ntohs(addr.sin_port));
    hung.server = server;
    f = start_on("le-hung", "foxtrot", &hung, LEASE_MS);
    /* wait until foxtrot is inside its first request: connected, its ClientHello sent */
    pfd.fd = fd;
    CHECK(poll(&pfd, 1, 10000) == 1, "foxtrot did not connect within 10 s");
    pfd.fd = accept(fd, NULL, NULL);
    CHECK(pfd.fd >= 0, "accept");
    CHECK(poll(&pfd, 1, 10000) == 1, "foxtrot sent nothing within 10 s");
    t0 = now_ms();
    leader_stop(f->le, true);
    took = now_ms() - t0;
    close(pfd.fd);
    close(fd);
    printf("# leader_stop against a silent server: %" PRId64 " ms\n", took);
    CHECK(!leader_is_leader(f->le), "foxtrot leads a silent server");
    /* leader.h: within about request_timeout_ms + LEADER_RELEASE_BUDGET_MS (3 s); it waits for
     * the one request under way (1 s), the rest is slack for a loaded machine */
    CHECK(took <= REQUEST_MS + LEADER_RELEASE_BUDGET_MS + 1000, "leader_stop took %" PRId64 " ms",
          took);
    ok("leader_stop returns in %" PRId64 " ms while the server does not answer", took);
}

/* 10: leader_stop waits for one request at most (leader.h): a leader whose renewal hangs (the
 * proxy stops forwarding) is stopped with release; request timeout 3 s, so that finishing the
 * attempt's next requests too (a GET, 3 s more) would show. */
static void stop_mid_renewal(void)
{
    char server[64];
    struct kc_config via = kcfg; /* shallow: kc_client_new copies; never finished */
    struct leader_config c;
    struct elector *e;
    int64_t end, t0, took;
    json_t *lease;
    int rc;

    (void)snprintf(server, sizeof(server), "https://127.0.0.1:%u", proxy_start());
    via.server = server;
    CHECK(n_electors < MAX_ELECTORS, "too many electors");
    e = &electors[n_electors++];
    (void)snprintf(e->id, sizeof(e->id), "india");
    e->lease = "le-proxy";
    c = config_for(e->lease, e, LONG_LEASE_MS);
    c.renew_deadline_ms = 8000;
    c.request_timeout_ms = 3000;
    rc = leader_start(&c, &via, &e->le);
    CHECK(rc == 0, "leader_start india: %d", rc);
    CHECK(wait_leading(e, 10000), "india did not lead le-proxy through the proxy");
    atomic_store(&proxy.frozen, true);
    end = now_ms() + 10000;
    while (!atomic_load(&proxy.held)) { /* its next renewal is stuck in the proxy */
        CHECK(now_ms() < end, "india sent nothing within 10 s of the freeze");
        pause_ms(SAMPLE_MS);
    }
    t0 = now_ms();
    leader_stop(e->le, true);
    took = now_ms() - t0;
    printf("# leader_stop(release) during a hung renewal: %" PRId64 " ms\n", took);
    CHECK(!leader_is_leader(e->le), "india still leads");
    /* the hung request (<= 3 s) and the release budget (2 s), then slack; the attempt's GET as
     * well would add 3 s */
    CHECK(took <= c.request_timeout_ms + LEADER_RELEASE_BUDGET_MS + 1500,
          "leader_stop took %" PRId64 " ms", took);
    proxy_stop();
    lease = lease_get("le-proxy"); /* the release could not get through */
    CHECK(strcmp(spec_str(lease, "holderIdentity"), "india") == 0, "holder \"%s\"",
          spec_str(lease, "holderIdentity"));
    json_decref(lease);
    ok("leader_stop(release) during a hung renewal returns in %" PRId64 " ms", took);
}

int main(void)
{
    char err[256];
    const char *kubeconfig = getenv("KUBECONFIG");
    struct elector *x, *y, *c;

    clock_gettime(CLOCK_MONOTONIC, &t_start);
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(kubeconfig && kubeconfig[0], "KUBECONFIG is not set");
    CHECK(kc_global_init() == 0, "kc_global_init"); /* threads follow */
    CHECK(kc_config_load_kubeconfig(kubeconfig, NULL, &kcfg, err, sizeof(err)) == 0, "%s", err);
    CHECK(kc_client_new(&kcfg, "kube-leader-test", &admin) == 0, "kc_client_new");
    atexit(stop_all);
    ensure_namespace();

    two_electors(&x, &y);
    standby_release_writes_nothing(x);
    release_hands_over(x, y);
    c = expiry_takeover(y);
    foreign_holder(c);
    renew_time_ignored();
    bad_configs();
    release_record();
    stop_bounded();
    stop_mid_renewal();

    stop_all();
    kc_client_free(admin);
    kc_config_fini(&kcfg);
    kc_global_cleanup();
    printf("all %d checks passed\n", checks);
    return 0;
}
