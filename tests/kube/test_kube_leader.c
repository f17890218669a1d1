/*
 * Lease leader election (host-shims/kube/ctrl/leader.h) against a real kube-apiserver and etcd
 * (started by run_with_apiserver.sh with tests/kube/kube_harness.sh). Expected values come from
 * the protocol (shared/facts/kubernetes-controller.md §1.7, client-go's leaderelection.go) and
 * from the Lease objects read back from the server with a client of the test's own; the
 * electors' flags are sampled every 50 ms while anything may change, and two leaders at once
 * fail the test. Prints "ok N - ..." per step; the first failure prints why, stops every
 * elector (atexit) and exits 1.
 *
 * Durations: lease 3 s, renew deadline 2 s, retry 0.5 s (so the acquire loop's jittered wait is
 * 0.5 .. 1.1 s).
 *
 * Environment (from kube_harness.sh): KUBECONFIG.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
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

#define NS        "le-test"
#define LEASE_MS  3000
#define RENEW_MS  2000
#define RETRY_MS  500
#define SAMPLE_MS 50
/* the longest jittered wait of the acquire loop: retry x (1 + 1.2) */
#define MAX_RETRY_WAIT_MS (RETRY_MS * 22 / 10)

static const struct kc_resource NAMESPACES = {"", "v1", "namespaces", false};
static const struct kc_resource LEASES = {"coordination.k8s.io", "v1", "leases", true};

struct elector {
    char id[64];
    struct leader *le;
    atomic_int started;   /* on_started_leading calls */
    atomic_int stopped;   /* on_stopped_leading calls */
    atomic_llong lost_ms; /* when on_stopped_leading was called (monotonic ms) */
};

#define MAX_ELECTORS 8
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

static struct leader_config config_for(const char *lease, struct elector *e)
{
    struct leader_config c = {.namespace = NS,
                              .name = lease,
                              .identity = e->id,
                              .lease_duration_ms = LEASE_MS,
                              .renew_deadline_ms = RENEW_MS,
                              .retry_period_ms = RETRY_MS,
                              .on_started_leading = on_started,
                              .on_stopped_leading = on_stopped,
                              .callback_ctx = e,
                              .log = log_line,
                              .log_ctx = e};
    return c;
}

static struct elector *start_on(const char *lease, const char *id, const struct kc_config *kc)
{
    struct elector *e;
    struct leader_config c;
    int rc;

    CHECK(n_electors < MAX_ELECTORS, "too many electors");
    e = &electors[n_electors++];
    (void)snprintf(e->id, sizeof(e->id), "%s", id); /* short literals */
    c = config_for(lease, e);
    rc = leader_start(&c, kc, &e->le);
    CHECK(rc == 0, "leader_start %s: %d", id, rc);
    return e;
}

static struct elector *start(const char *lease, const char *id)
{
    return start_on(lease, id, &kcfg);
}

static bool leading(const struct elector *e)
{
    return e->le && leader_is_leader(e->le);
}

/* The invariant: never two leaders of one lease at once (every running elector here shares
 * the lease in use, except in the steps that use their own lease alone). */
static int sample(void)
{
    int n = 0;

    for (int i = 0; i < n_electors; i++)
        n += leading(&electors[i]);
    CHECK(n <= 1, "%d electors lead at once", n);
    return n;
}

/* Sample every 50 ms until e leads (true) or timeout_ms passed (false). */
static bool wait_leading(const struct elector *e, int64_t timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;

    for (;;) {
        (void)sample(); /* fails by itself */
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
        (void)sample();
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

/* ---- steps --------------------------------------------------------------------------------- */

/* 1: two electors, one leader; the lease names it; the other never leads meanwhile. */
static void two_electors(struct elector **ret_leader, struct elector **ret_standby)
{
    struct elector *a = start("le-two", "alpha");
    struct elector *b = start("le-two", "bravo");
    struct elector *x, *y;
    char held[64];
    char renew1[64];
    json_t *lease;
    int64_t end;

    x = wait_either(a, b, 10000);
    CHECK(x, "no elector leads within 10 s");
    y = x == a ? b : a;
    end = now_ms() + 4000;
    while (now_ms() < end) {
        CHECK(sample() == 1 && leading(x), "%s stopped leading while renewing", x->id);
        pause_ms(SAMPLE_MS);
    }
    CHECK(atomic_load(&x->started) == 1 && atomic_load(&y->started) == 0,
          "on_started_leading: %s %d, %s %d", x->id, atomic_load(&x->started), y->id,
          atomic_load(&y->started));
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), x->id) == 0, "holder %s, expected %s",
          spec_str(lease, "holderIdentity"), x->id);
    CHECK(spec_int(lease, "leaseDurationSeconds") == LEASE_MS / 1000, "leaseDurationSeconds %lld",
          (long long)spec_int(lease, "leaseDurationSeconds"));
    CHECK(spec_int(lease, "leaseTransitions") == 0, "leaseTransitions %lld on a new lease",
          (long long)spec_int(lease, "leaseTransitions"));
    CHECK(is_micro_time(spec_str(lease, "acquireTime")) &&
              is_micro_time(spec_str(lease, "renewTime")),
          "times %s %s", spec_str(lease, "acquireTime"), spec_str(lease, "renewTime"));
    (void)snprintf(renew1, sizeof(renew1), "%s", spec_str(lease, "renewTime"));
    json_decref(lease);
    holder_of(y, held, sizeof(held));
    CHECK(strcmp(held, x->id) == 0, "%s sees holder \"%s\"", y->id, held);
    pause_ms(2 * RETRY_MS);
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "renewTime"), renew1) != 0, "renewTime did not move: %s", renew1);
    json_decref(lease);
    ok("two electors: %s leads, %s stands by, never both for 4 s; the lease names %s, renewed",
       x->id, y->id, x->id);
    *ret_leader = x;
    *ret_standby = y;
}

/* 2: stop the leader with release: the standby takes over at its next try. */
static void release_hands_over(struct elector *x, struct elector *y)
{
    int64_t t0 = now_ms(), stopped, took;
    json_t *lease;

    leader_stop(x->le, true);
    stopped = now_ms() - t0;
    CHECK(!leader_is_leader(x->le), "%s still leads after leader_stop", x->id);
    CHECK(wait_leading(y, 10000), "%s did not take over within 10 s", y->id);
    took = now_ms() - t0;
    printf("# takeover after release: %" PRId64 " ms (leader_stop took %" PRId64 " ms)\n", took,
           stopped);
    /* empty holder: the standby's next try (at most 1.2 x retry jittered) wins at once */
    CHECK(took <= MAX_RETRY_WAIT_MS + 500, "takeover after release took %" PRId64 " ms", took);
    CHECK(took < LEASE_MS, "takeover after release took %" PRId64 " ms", took);
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), y->id) == 0, "holder %s, expected %s",
          spec_str(lease, "holderIdentity"), y->id);
    CHECK(spec_int(lease, "leaseTransitions") == 1, "leaseTransitions %lld, expected 1",
          (long long)spec_int(lease, "leaseTransitions"));
    json_decref(lease);
    ok("stop with release: %s leads after %" PRId64 " ms (< %d ms lease), leaseTransitions 1",
       y->id, took, LEASE_MS);
}

/* Note when the lease, still held by `holder`, changed (a new resourceVersion). */
static void track_renewals(const char *name, const char *holder, char *rv, size_t rv_len,
                           int64_t *changed)
{
    json_t *lease = lease_get(name);

    if (strcmp(spec_str(lease, "holderIdentity"), holder) == 0) {
        const char *v = json_string_value(
            json_object_get(json_object_get(lease, "metadata"), "resourceVersion"));

        CHECK(v, "lease without resourceVersion");
        if (strcmp(v, rv) != 0) {
            (void)snprintf(rv, rv_len, "%s", v);
            *changed = now_ms();
        }
    }
    json_decref(lease);
}

/* 3: stop the leader without release (a kill): a standby waits out the lease duration from when
 * it last saw the record change. */
static struct elector *expiry_takeover(struct elector *y)
{
    struct elector *c = start("le-two", "charlie");
    char held[64] = "";
    char rv[64] = "";
    int64_t end = now_ms() + 5000, changed = 0, t0, since;
    json_t *lease;

    while (strcmp(held, y->id) != 0) { /* charlie has read the lease */
        CHECK(now_ms() < end, "charlie never saw holder %s (sees \"%s\")", y->id, held);
        (void)sample();
        pause_ms(SAMPLE_MS);
        holder_of(c, held, sizeof(held));
    }
    /* watch y's renewals for a while first, so that the last one is seen when it happens */
    end = now_ms() + 2 * RETRY_MS;
    while (now_ms() < end) {
        (void)sample();
        track_renewals("le-two", y->id, rv, sizeof(rv), &changed);
        pause_ms(SAMPLE_MS);
    }
    CHECK(changed > 0, "the test never saw %s's record", y->id);
    t0 = now_ms();
    leader_stop(y->le, false);
    end = t0 + LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 5000;
    while (!leading(c)) {
        CHECK(now_ms() < end, "charlie did not take over");
        (void)sample();
        track_renewals("le-two", y->id, rv, sizeof(rv), &changed);
        pause_ms(SAMPLE_MS);
    }
    since = now_ms() - changed;
    printf("# takeover after a kill: %" PRId64 " ms after the last change this test saw, %" PRId64
           " ms after leader_stop\n",
           since, now_ms() - t0);
    /* the test saw the last change at most one sample plus a GET after it happened */
    CHECK(since >= LEASE_MS - 250, "took over %" PRId64 " ms after the last change (lease %d ms)",
          since, LEASE_MS);
    CHECK(since <= LEASE_MS + 2 * MAX_RETRY_WAIT_MS + 3000, "took over only after %" PRId64 " ms",
          since);
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), c->id) == 0, "holder %s, expected charlie",
          spec_str(lease, "holderIdentity"));
    CHECK(spec_int(lease, "leaseTransitions") == 2, "leaseTransitions %lld, expected 2",
          (long long)spec_int(lease, "leaseTransitions"));
    json_decref(lease);
    ok("stop without release: charlie leads %" PRId64 " ms after the last renewal (>= %d ms), "
       "leaseTransitions 2",
       since, LEASE_MS);
    return c;
}

/* 4: a third party writes another holder: the leader cannot renew and gives up within the
 * renew deadline. */
static void foreign_holder(struct elector *c)
{
    int64_t t_write = 0, lost;
    struct leader_stats st;
    char held[64];
    json_t *lease;

    for (int attempt = 0; attempt < 10 && !t_write; attempt++) {
        json_t *spec;

        lease = lease_get("le-two");
        spec = json_object_get(lease, "spec");
        CHECK(json_object_set_new(spec, "holderIdentity", json_string("intruder")) == 0 &&
                  json_object_set_new(spec, "leaseTransitions",
                                      json_integer(spec_int(lease, "leaseTransitions") + 1)) == 0,
              "building the intruder's record");
        if (kc_replace(admin, &LEASES, NS, lease, 5000, NULL) == 0)
            t_write = now_ms();
        else
            CHECK(kc_last_reason(admin) == KC_REASON_CONFLICT, "PUT intruder: %s",
                  kc_last_error(admin));
        json_decref(lease);
    }
    CHECK(t_write, "the intruder's PUT kept conflicting");
    while (atomic_load(&c->stopped) == 0) {
        CHECK(now_ms() - t_write < RENEW_MS + 3000, "charlie still leads %d ms after the intruder",
              RENEW_MS + 3000);
        (void)sample();
        pause_ms(SAMPLE_MS);
    }
    lost = (int64_t)atomic_load(&c->lost_ms) - t_write;
    printf("# leadership lost %" PRId64 " ms after the foreign write\n", lost);
    CHECK(!leader_is_leader(c->le), "charlie's flag is still set after on_stopped_leading");
    CHECK(lost <= RENEW_MS + 500, "lost only %" PRId64 " ms after the foreign write", lost);
    leader_get_stats(c->le, &st);
    CHECK(st.renew_failures >= 1, "renew_failures %" PRIu64, st.renew_failures);
    holder_of(c, held, sizeof(held));
    CHECK(strcmp(held, "intruder") == 0, "charlie sees holder \"%s\"", held);
    pause_ms(RETRY_MS * 2); /* an elector that lost must not write again */
    lease = lease_get("le-two");
    CHECK(strcmp(spec_str(lease, "holderIdentity"), "intruder") == 0,
          "holder %s after charlie lost", spec_str(lease, "holderIdentity"));
    json_decref(lease);
    ok("foreign holder: charlie stops leading %" PRId64 " ms after it (renew deadline %d ms), "
       "%" PRIu64 " renew failures",
       lost, RENEW_MS, st.renew_failures);
}

/* 5: configurations the rules refuse, and nothing written for them. */
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

/* 6: release with nobody waiting: the record itself. */
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

/* 7: leader_stop is bounded when the server does not answer (a fault injector: a listening
 * socket that never accepts, so the TLS handshake hangs). */
static void stop_bounded(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char server[64];
    struct kc_config hung = kcfg; /* shallow: kc_client_new copies; never finished */
    struct elector *f;
    int64_t t0, took;

    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && listen(fd, 16) == 0 &&
              getsockname(fd, (struct sockaddr *)&addr, &alen) == 0,
          "listening socket");
    (void)snprintf(server, sizeof(server), "https://127.0.0.1:%u", ntohs(addr.sin_port));
    hung.server = server;
    f = start_on("le-hung", "foxtrot", &hung);
    pause_ms(300); /* inside its first request */
    t0 = now_ms();
    leader_stop(f->le, true);
    took = now_ms() - t0;
    close(fd);
    printf("# leader_stop against a silent server: %" PRId64 " ms\n", took);
    CHECK(!leader_is_leader(f->le), "foxtrot leads a silent server");
    CHECK(took <= 3000, "leader_stop took %" PRId64 " ms", took);
    ok("leader_stop returns in %" PRId64 " ms while the server does not answer", took);
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
    release_hands_over(x, y);
    c = expiry_takeover(y);
    foreign_holder(c);
    bad_configs();
    release_record();
    stop_bounded();

    stop_all();
    kc_client_free(admin);
    kc_config_fini(&kcfg);
    kc_global_cleanup();
    printf("all %d checks passed\n", checks);
    return 0;
}
