/*
 * Lease-based leader election: client-go's tryAcquireOrRenew, acquire and renew loops, and
 * release on cancel, on the kc client. The contract is in leader.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "leader.h"

#define DAY_MS (86400LL * 1000)
/* Writes of the empty record release() tries (the later ones after a conflict and a fresh GET). */
#define RELEASE_TRIES 3

static const struct kc_resource LEASES = {"coordination.k8s.io", "v1", "leases", true};

/* The LeaderElectionRecord as the Lease spec holds it. Strings are owned (times may be NULL). */
struct lease_record {
    char *holder; /* never NULL once parsed: "" when absent */
    int64_t duration_s;
    char *acquire_time;
    char *renew_time;
    int64_t transitions;
};

struct leader {
    char *namespace;
    char *name;
    char *identity;
    struct leader_config cfg; /* its strings point at the copies above */
    struct kc_client *client;

    pthread_t thread;
    bool thread_running; /* started and not yet joined */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping; /* under mu */

    atomic_bool is_leader;

    /* The elector thread's view (and leader_stop's, after the join): the record last seen or
     * written, its canonical text, the Lease object it came in, and when it was first seen. */
    struct lease_record observed;
    char *observed_raw;
    json_t *observed_obj;
    int64_t observed_ms;

    /* Under mu: what other threads may read. */
    char *holder_seen;
    struct leader_stats stats;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

__attribute__((format(printf, 3, 4))) static void le_log(const struct leader *le, int level,
                                                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!le->cfg.log)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a truncated log line is still useful */
    va_end(ap);
    le->cfg.log(le->cfg.log_ctx, level, msg);
}

/* MicroTime: "2006-01-02T15:04:05.000000Z" (UTC). buf holds at least 32 bytes. */
static void micro_time_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    char date[24];

    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0'; /* a year past 9999: the server refuses the record, the round fails */
    (void)snprintf(buf, len, "%s.%06ldZ", date, ts.tv_nsec / 1000); /* 27 bytes fit in 32 */
}

static void record_fini(struct lease_record *r)
{
    free(r->holder);
    free(r->acquire_time);
    free(r->renew_time);
    memset(r, 0, sizeof(*r));
}

/* An optional string member: absent or null gives NULL; another type is -EPROTO. */
static int spec_string(const json_t *spec, const char *key, char **ret)
{
    const json_t *v = json_object_get(spec, key);

    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -EPROTO;
    *ret = strdup(json_string_value(v));
    return *ret ? 0 : -ENOMEM;
}

/* An optional int32 member that must not be negative: absent or null gives 0. */
static int spec_int(const json_t *spec, const char *key, int64_t *ret)
{
    const json_t *v = json_object_get(spec, key);

    *ret = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return -EPROTO;
    *ret = json_integer_value(v);
    return 0;
}

/* The record in a Lease object from the server (untrusted). -EPROTO when malformed. */
static int record_from_lease(const json_t *lease, struct lease_record *out)
{
    const json_t *spec = json_object_get(lease, "spec");
    struct lease_record r = {0};
    int rc;

    if (!json_is_object(lease) || (spec && !json_is_null(spec) && !json_is_object(spec)))
        return -EPROTO;
    rc = spec_string(spec, "holderIdentity", &r.holder);
    if (rc == 0 && !r.holder)
        rc = (r.holder = strdup("")) ? 0 : -ENOMEM;
    if (rc == 0)
        rc = spec_int(spec, "leaseDurationSeconds", &r.duration_s);
    if (rc == 0)
        rc = spec_string(spec, "acquireTime", &r.acquire_time);
    if (rc == 0)
        rc = spec_string(spec, "renewTime", &r.renew_time);
    if (rc == 0)
        rc = spec_int(spec, "leaseTransitions", &r.transitions);
    if (rc != 0) {
        record_fini(&r);
        return rc;
    }
    *out = r;
    return 0;
}

/* The Lease spec of a record (NULL when memory ran out). */
static json_t *record_spec(const struct lease_record *r)
{
    json_t *spec =
        json_pack("{s:s, s:I, s:I}", "holderIdentity", r->holder, "leaseDurationSeconds",
                  (json_int_t)r->duration_s, "leaseTransitions", (json_int_t)r->transitions);

    if (spec && r->acquire_time &&
        json_object_set_new(spec, "acquireTime", json_string(r->acquire_time)) != 0)
        goto fail;
    if (spec && r->renew_time &&
        json_object_set_new(spec, "renewTime", json_string(r->renew_time)) != 0)
        goto fail;
    return spec;
fail:
    json_decref(spec);
    return NULL;
}

/* The canonical text of a record, to see whether it changed (client-go compares raw records). */
static char *record_raw(const struct lease_record *r)
{
    json_t *spec = record_spec(r);
    char *raw = spec ? json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(spec);
    return raw;
}

static bool holds_lease(const struct leader *le)
{
    return le->observed_raw && strcmp(le->observed.holder, le->identity) == 0;
}

/* Whether the observed record's lease has not yet run out, by this process's clock. */
static bool lease_valid(const struct leader *le, int64_t now)
{
    return le->observed_raw && le->observed_ms + le->observed.duration_s * 1000 > now;
}

/* Make `lease` the observed record when it differs from it (first seen at `now`), or always
 * after this elector wrote it. Takes ownership of nothing; -ENOMEM or -EPROTO. */
static int observe(struct leader *le, json_t *lease, int64_t now, bool written)
{
    struct lease_record r;
    char *raw;
    bool changed;
    int rc = record_from_lease(lease, &r);

    if (rc != 0)
        return rc;
    raw = record_raw(&r);
    if (!raw) {
        record_fini(&r);
        return -ENOMEM;
    }
    if (!written && le->observed_raw && strcmp(raw, le->observed_raw) == 0) {
        /* unchanged: keep the time it was first seen, but take the newer resourceVersion */
        free(raw);
        record_fini(&r);
        json_decref(le->observed_obj);
        le->observed_obj = json_incref(lease);
        return 0;
    }
    pthread_mutex_lock(&le->mu);
    changed = strcmp(r.holder, le->holder_seen ? le->holder_seen : "") != 0;
    if (changed) {
        char *copy = strdup(r.holder);

        if (copy) {
            free(le->holder_seen);
            le->holder_seen = copy;
            le->stats.holder_changes++;
        }
    }
    le->stats.lease_transitions = r.transitions;
    pthread_mutex_unlock(&le->mu);
    if (changed)
        le_log(le, LEADER_LOG_DEBUG, "lease %s/%s: holder \"%s\", transitions %" PRId64,
               le->namespace, le->name, r.holder, r.transitions);
    record_fini(&le->observed);
    free(le->observed_raw);
    json_decref(le->observed_obj);
    le->observed = r;
    le->observed_raw = raw;
    le->observed_obj = json_incref(lease);
    le->observed_ms = now;
    return 0;
}

/* A new Lease object for POST (no base) or PUT (base: the observed object, resourceVersion and
 * metadata kept, as client-go's LeaseLock.Update does). NULL when memory ran out. */
static json_t *lease_object(const struct leader *le, const json_t *base,
                            const struct lease_record *r)
{
    json_t *spec = record_spec(r);
    json_t *obj =
        base ? json_deep_copy(base)
             : json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "coordination.k8s.io/v1", "kind",
                         "Lease", "metadata", "name", le->name, "namespace", le->namespace);

    if (!spec || !obj || json_object_set_new(obj, "spec", spec) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* PUT the record over the observed Lease; on success it becomes the observed one. */
static int write_record(struct leader *le, const struct lease_record *r, int64_t now,
                        int64_t timeout_ms)
{
    json_t *obj = lease_object(le, le->observed_obj, r);
    json_t *answer = NULL;
    int rc;

    if (!obj)
        return -ENOMEM;
    rc = kc_replace(le->client, &LEASES, le->namespace, obj, timeout_ms, &answer);
    if (rc == 0)
        rc = observe(le, answer, now, true);
    json_decref(answer);
    json_decref(obj);
    return rc;
}

static int create_record(struct leader *le, const struct lease_record *r, int64_t now,
                         int64_t timeout_ms)
{
    json_t *obj = lease_object(le, NULL, r);
    json_t *answer = NULL;
    int rc;

    if (!obj)
        return -ENOMEM;
    rc = kc_create(le->client, &LEASES, le->namespace, obj, timeout_ms, &answer);
    if (rc == 0)
        rc = observe(le, answer, now, true);
    json_decref(answer);
    json_decref(obj);
    return rc;
}

/* Whether leader_stop asked the elector to end (any thread). */
static bool stop_requested(struct leader *le)
{
    bool stopping;

    pthread_mutex_lock(&le->mu);
    stopping = le->stopping;
    pthread_mutex_unlock(&le->mu);
    return stopping;
}

/* ---- the election step (client-go's tryAcquireOrRenew) --------------------------------------- */

/* One attempt: up to three requests (renewal PUT, GET, PUT or POST), each with timeout_ms; when
 * leader_stop was called meanwhile, the attempt ends (false) before its next request, so that
 * leader_stop waits for one request at most. */
static bool try_acquire_or_renew(struct leader *le, int64_t now, int64_t timeout_ms)
{
    char stamp[32];
    struct lease_record want = {.holder = le->identity,
                                .duration_s = le->cfg.lease_duration_ms / 1000,
                                .acquire_time = stamp,
                                .renew_time = stamp};
    json_t *lease = NULL;
    bool ok = false;
    int rc;

    micro_time_now(stamp, sizeof(stamp));
    if (holds_lease(le) && lease_valid(le, now)) {
        /* the fast path: renew over the record this elector wrote last */
        want.acquire_time = le->observed.acquire_time;
        want.transitions = le->observed.transitions;
        if (write_record(le, &want, now, timeout_ms) == 0)
            return true;
        le_log(le, LEADER_LOG_DEBUG, "lease %s/%s: renewing: %s", le->namespace, le->name,
               kc_last_error(le->client));
        want.acquire_time = stamp;
        want.transitions = 0;
        if (stop_requested(le))
            return false;
    }
    rc = kc_get(le->client, &LEASES, le->namespace, le->name, timeout_ms, &lease);
    if (rc == -EREMOTEIO && kc_last_reason(le->client) == KC_REASON_NOT_FOUND) {
        if (stop_requested(le))
            return false;
        rc = create_record(le, &want, now, timeout_ms);
        if (rc != 0)
            le_log(le, LEADER_LOG_INFO, "lease %s/%s: creating: %s", le->namespace, le->name,
                   rc == -ENOMEM ? "out of memory" : kc_last_error(le->client));
        return rc == 0;
    }
    if (rc != 0) {
        le_log(le, LEADER_LOG_WARN, "lease %s/%s: reading: %s", le->namespace, le->name,
               kc_last_error(le->client));
        return false;
    }
    /* first seen when the answer came (client-go's setObservedRecord takes clock.Now() then):
     * `now`, from before the GET, could be earlier than the write itself */
    rc = observe(le, lease, monotonic_ms(), false);
    if (rc != 0) {
        le_log(le, LEADER_LOG_ERROR, "lease %s/%s: the server's lease is unreadable (%s)",
               le->namespace, le->name, rc == -EPROTO ? "bad spec" : "out of memory");
        goto out;
    }
    if (le->observed.holder[0] && lease_valid(le, now) && !holds_lease(le))
        goto out; /* another holder's lease has not run out */
    if (holds_lease(le)) {
        want.acquire_time = le->observed.acquire_time;
        want.transitions = le->observed.transitions;
    } else {
        want.transitions = le->observed.transitions + 1;
    }
    if (stop_requested(le))
        goto out;
    rc = write_record(le, &want, now, timeout_ms);
    if (rc != 0)
        le_log(le, LEADER_LOG_INFO, "lease %s/%s: writing: %s", le->namespace, le->name,
               rc == -ENOMEM ? "out of memory" : kc_last_error(le->client));
    ok = rc == 0;
out:
    json_decref(lease);
    return ok;
}

/* ---- the elector thread ---------------------------------------------------------------------- */

/* Wait ms unless stopped meanwhile; true when stopping. */
static bool wait_or_stop(struct leader *le, int64_t ms)
{
    int64_t until = monotonic_ms() + (ms > 0 ? ms : 0);
    bool stopping;

    pthread_mutex_lock(&le->mu);
    for (;;) {
        int64_t left = until - monotonic_ms();
        struct timespec ts;

        if (le->stopping || left <= 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&le->cond, &le->mu, &ts); /* the loop re-checks both */
    }
    stopping = le->stopping;
    pthread_mutex_unlock(&le->mu);
    return stopping;
}

/* retry .. retry x 2.2 (wait.JitterUntil with jitter factor 1.2) */
static int64_t jittered(int64_t retry_ms)
{
    double u = (double)(kc_random_u64() >> 11) / (double)(1ULL << 53); /* uniform in [0, 1) */

    return retry_ms + (int64_t)(u * 1.2 * (double)retry_ms);
}

/* Acquire; false when stopped first. */
static bool acquire(struct leader *le)
{
    for (;;) {
        if (try_acquire_or_renew(le, monotonic_ms(), le->cfg.request_timeout_ms))
            return true;
        if (wait_or_stop(le, jittered(le->cfg.retry_period_ms)))
            return false;
    }
}

/* Renew until stopped (true) or until no renewal succeeded within the deadline (false). */
static bool renew(struct leader *le, int64_t last_ok)
{
    for (;;) {
        if (wait_or_stop(le, le->cfg.retry_period_ms))
            return true;
        for (;;) {
            int64_t deadline = last_ok + le->cfg.renew_deadline_ms;
            int64_t now = monotonic_ms();
            int64_t timeout = deadline - now;

            if (timeout <= 0)
                return false;
            if (timeout > le->cfg.request_timeout_ms)
                timeout = le->cfg.request_timeout_ms;
            if (try_acquire_or_renew(le, now, timeout)) {
                last_ok = now;
                break;
            }
            if (stop_requested(le))
                return true; /* an attempt cut short by leader_stop is no failure */
            pthread_mutex_lock(&le->mu);
            le->stats.renew_failures++;
            pthread_mutex_unlock(&le->mu);
            timeout = deadline - monotonic_ms();
            if (wait_or_stop(le,
                             timeout < le->cfg.retry_period_ms ? timeout : le->cfg.retry_period_ms))
                return true;
        }
    }
}

static void *elector_main(void *arg)
{
    struct leader *le = arg;
    int64_t acquired_at;

    le_log(le, LEADER_LOG_INFO, "lease %s/%s: trying to acquire as %s", le->namespace, le->name,
           le->identity);
    if (!acquire(le))
        return NULL;
    acquired_at = le->observed_ms; /* when the winning attempt started */
    pthread_mutex_lock(&le->mu);
    le->stats.acquisitions++;
    pthread_mutex_unlock(&le->mu);
    atomic_store(&le->is_leader, true);
    le_log(le, LEADER_LOG_INFO, "lease %s/%s: acquired as %s (transitions %" PRId64 ")",
           le->namespace, le->name, le->identity, le->observed.transitions);
    if (le->cfg.on_started_leading)
        le->cfg.on_started_leading(le->cfg.callback_ctx);
    if (renew(le, acquired_at))
        return NULL;
    atomic_store(&le->is_leader, false);
    le_log(le, LEADER_LOG_ERROR,
           "lease %s/%s: leadership lost: no renewal succeeded within %" PRId64 " ms",
           le->namespace, le->name, le->cfg.renew_deadline_ms);
    if (le->cfg.on_stopped_leading)
        le->cfg.on_stopped_leading(le->cfg.callback_ctx);
    return NULL;
}

/* ---- release --------------------------------------------------------------------------------- */

/* Write an empty holder with leaseDurationSeconds 1, retrying a conflict while the Lease still
 * names this elector, within LEADER_RELEASE_BUDGET_MS. Runs after the elector thread ended. */
static void release(struct leader *le)
{
    int64_t end = monotonic_ms() + LEADER_RELEASE_BUDGET_MS;

    for (int attempt = 0; attempt < RELEASE_TRIES; attempt++) {
        char stamp[32];
        struct lease_record want = {.holder = "",
                                    .duration_s = 1,
                                    .acquire_time = stamp,
                                    .renew_time = stamp,
                                    .transitions = le->observed.transitions};
        int64_t now = monotonic_ms();
        json_t *lease = NULL;
        int rc;

        if (now >= end)
            break;
        micro_time_now(stamp, sizeof(stamp));
        rc = write_record(le, &want, now, end - now);
        if (rc == 0) {
            le_log(le, LEADER_LOG_INFO, "lease %s/%s: released", le->namespace, le->name);
            return;
        }
        if (rc != -EREMOTEIO || kc_last_reason(le->client) != KC_REASON_CONFLICT)
            break;
        now = monotonic_ms();
        if (now >= end ||
            kc_get(le->client, &LEASES, le->namespace, le->name, end - now, &lease) != 0)
            break;
        rc = observe(le, lease, monotonic_ms(), false);
        json_decref(lease);
        if (rc != 0 || !holds_lease(le)) {
            le_log(le, LEADER_LOG_INFO, "lease %s/%s: not released: held by \"%s\" now",
                   le->namespace, le->name, rc == 0 ? le->observed.holder : "?");
            return;
        }
    }
    le_log(le, LEADER_LOG_WARN, "lease %s/%s: releasing: %s", le->namespace, le->name,
           kc_last_error(le->client));
}

/* ---- public ---------------------------------------------------------------------------------- */

static void config_resolve(const struct leader_config *in, struct leader_config *out)
{
    *out = *in;
    if (out->lease_duration_ms == 0)
        out->lease_duration_ms = LEADER_DEFAULT_LEASE_DURATION_MS;
    if (out->renew_deadline_ms == 0)
        out->renew_deadline_ms = LEADER_DEFAULT_RENEW_DEADLINE_MS;
    if (out->retry_period_ms == 0)
        out->retry_period_ms = LEADER_DEFAULT_RETRY_PERIOD_MS;
    if (out->request_timeout_ms == 0)
        out->request_timeout_ms = LEADER_DEFAULT_REQUEST_TIMEOUT_MS;
}

static bool in_range(int64_t ms)
{
    return ms > 0 && ms <= DAY_MS;
}

int leader_config_check(const struct leader_config *in, char *err, size_t err_len)
{
    struct leader_config c;
    const char *why = NULL;

    if (!in) {
        why = "no configuration";
        goto out;
    }
    config_resolve(in, &c);
    if (!c.namespace || !c.namespace[0])
        why = "namespace: required";
    else if (!c.name || !c.name[0])
        why = "name: required";
    else if (!c.identity || !c.identity[0])
        why = "identity: required";
    else if (!in_range(c.lease_duration_ms) || !in_range(c.renew_deadline_ms) ||
             !in_range(c.retry_period_ms) || !in_range(c.request_timeout_ms))
        why = "durations: must be positive and at most one day";
    else if (c.lease_duration_ms % 1000 != 0)
        why = "lease_duration_ms: must be a whole number of seconds";
    else if (c.lease_duration_ms <= c.renew_deadline_ms)
        why = "lease_duration_ms: must be greater than renew_deadline_ms";
    else if (c.renew_deadline_ms * 10 <= c.retry_period_ms * 12)
        why = "renew_deadline_ms: must be greater than 1.2 x retry_period_ms";
out:
    if (why && err && err_len > 0)
        (void)snprintf(err, err_len, "leader election: %s", why); /* truncation is fine */
    return why ? -EINVAL : 0;
}

static void leader_destroy(struct leader *le)
{
    kc_client_free(le->client);
    record_fini(&le->observed);
    free(le->observed_raw);
    json_decref(le->observed_obj);
    free(le->holder_seen);
    free(le->namespace);
    free(le->name);
    free(le->identity);
    pthread_cond_destroy(&le->cond);
    pthread_mutex_destroy(&le->mu);
    free(le);
}

static int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);

    if (rc != 0)
        return -rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return -rc;
}

int leader_start(const struct leader_config *cfg, const struct kc_config *kc, struct leader **ret)
{
    char err[160];
    struct leader *le;
    int rc = leader_config_check(cfg, err, sizeof(err));

    if (rc != 0) {
        if (cfg && cfg->log)
            cfg->log(cfg->log_ctx, LEADER_LOG_ERROR, err);
        return rc;
    }
    if (!kc || !ret) {
        if (cfg->log)
            cfg->log(cfg->log_ctx, LEADER_LOG_ERROR,
                     "leader election: no client configuration or no result pointer");
        return -EINVAL;
    }
    le = calloc(1, sizeof(*le));
    if (!le)
        return -ENOMEM;
    config_resolve(cfg, &le->cfg);
    rc = -pthread_mutex_init(&le->mu, NULL);
    if (rc != 0) {
        free(le);
        return rc;
    }
    rc = cond_init_monotonic(&le->cond);
    if (rc != 0) {
        pthread_mutex_destroy(&le->mu);
        free(le);
        return rc;
    }
    atomic_init(&le->is_leader, false);
    le->stats.lease_transitions = -1;
    le->namespace = strdup(cfg->namespace);
    le->name = strdup(cfg->name);
    le->identity = strdup(cfg->identity);
    if (!le->namespace || !le->name || !le->identity) {
        rc = -ENOMEM;
        goto fail;
    }
    le->cfg.namespace = le->namespace;
    le->cfg.name = le->name;
    le->cfg.identity = le->identity;
    rc = kc_client_new(kc, NULL, &le->client);
    if (rc != 0)
        goto fail;
    rc = -pthread_create(&le->thread, NULL, elector_main, le);
    if (rc != 0)
        goto fail;
    le->thread_running = true;
    *ret = le;
    return 0;
fail:
    leader_destroy(le);
    return rc;
}

void leader_stop(struct leader *le, bool release_lease)
{
    bool was_leader;

    if (!le || !le->thread_running)
        return;
    pthread_mutex_lock(&le->mu);
    le->stopping = true;
    pthread_cond_broadcast(&le->cond);
    pthread_mutex_unlock(&le->mu);
    (void)pthread_join(le->thread, NULL); /* cannot fail: a joinable thread, joined once */
    le->thread_running = false;
    was_leader = atomic_exchange(&le->is_leader, false);
    if (was_leader && release_lease && holds_lease(le))
        release(le);
}

void leader_free(struct leader *le)
{
    if (!le)
        return;
    leader_stop(le, false);
    leader_destroy(le);
}

bool leader_is_leader(const struct leader *le)
{
    return atomic_load(&le->is_leader);
}

void leader_get_stats(const struct leader *le, struct leader_stats *out)
{
    struct leader *m = (struct leader *)le; /* the mutex changes; the counters do not */

    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}

int leader_get_holder(const struct leader *le, char *buf, size_t len)
{
    struct leader *m = (struct leader *)le;
    size_t n;

    pthread_mutex_lock(&m->mu);
    n = (size_t)snprintf(buf, len, "%s", m->holder_seen ? m->holder_seen : "");
    pthread_mutex_unlock(&m->mu);
    return n < len ? 0 : -ERANGE;
}
