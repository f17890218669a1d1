/* mgo-kube's metrics (kmetrics.h) on the registry of metrics.h. */
#include "kmetrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define N_PHASES 4
static const char *const PHASES[N_PHASES] = {"Initializing", "Progressing", "Healthy", "Degraded"};

struct kmetrics {
    struct metrics *reg;
    struct metrics_family *reconciles, *duration, *writes, *write_errors, *conflicts, *depth,
        *objects, *phase, *leader, *relists, *watch_failures;
    pthread_mutex_t mu; /* a cluster's phase series are replaced together */
};

int kmetrics_new(struct kmetrics **ret)
{
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    const char *result[] = {"result"}, *verb[] = {"verb"};
    const char *cluster[] = {"namespace", "cluster", "phase"};
    struct kmetrics *m = calloc(1, sizeof(*m));
    int rc;

    if (!m)
        return -ENOMEM;
    pthread_mutex_init(&m->mu, NULL);
    rc = metrics_new(&m->reg);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->reconciles, METRICS_COUNTER, "mgo_kube_reconcile_total",
                                "Reconcile passes by result.", result, 1, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->duration, METRICS_HISTOGRAM,
                                "mgo_kube_reconcile_duration_seconds",
                                "Time of one reconcile pass, the library call and the writes.",
                                NULL, 0, buckets, sizeof(buckets) / sizeof(buckets[0]));
    if (rc == 0)
        rc =
            metrics_family_new(m->reg, &m->writes, METRICS_COUNTER, "mgo_kube_api_writes_total",
                               "Write requests sent to the API server, by verb.", verb, 1, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->write_errors, METRICS_COUNTER,
                                "mgo_kube_api_write_errors_total",
                                "Write requests that failed, by verb.", verb, 1, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(
            m->reg, &m->conflicts, METRICS_COUNTER, "mgo_kube_status_conflicts_total",
            "Status writes refused with 409 Conflict (done again).", NULL, 0, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->depth, METRICS_GAUGE, "mgo_kube_workqueue_depth",
                                "Cluster keys ready to be reconciled.", NULL, 0, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->objects, METRICS_GAUGE, "mgo_kube_cached_objects",
                                "Objects held by the informers' caches.", NULL, 0, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->relists, METRICS_GAUGE, "mgo_kube_informer_relists",
                                "Full lists by the informers since the start: one per informer at "
                                "start, then one after each expired (410) watch.",
                                NULL, 0, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(
            m->reg, &m->watch_failures, METRICS_GAUGE, "mgo_kube_informer_failures",
            "Failed lists and watches of the informers since the start.", NULL, 0, NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->phase, METRICS_GAUGE, "mgo_kube_cluster_phase",
                                "1 for the phase each cluster's last pass published.", cluster, 3,
                                NULL, 0);
    if (rc == 0)
        rc = metrics_family_new(m->reg, &m->leader, METRICS_GAUGE, "mgo_kube_leader",
                                "1 while this replica holds the leader Lease (or runs alone).",
                                NULL, 0, NULL, 0);
    if (rc != 0) {
        kmetrics_free(m);
        return rc;
    }
    *ret = m;
    return 0;
}

void kmetrics_free(struct kmetrics *m)
{
    if (!m)
        return;
    metrics_free(m->reg);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void kmetrics_reconcile(struct kmetrics *m, const char *result, double seconds)
{
    const char *v[] = {result};

    if (!m)
        return;
    (void)metrics_counter_inc(m->reconciles, v); /* fails only on ENOMEM: a lost sample */
    (void)metrics_histogram_observe(m->duration, NULL, seconds);
}

void kmetrics_api_write(struct kmetrics *m, const char *verb, int rc)
{
    const char *v[] = {verb};

    if (!m)
        return;
    (void)metrics_counter_inc(m->writes, v);
    if (rc != 0)
        (void)metrics_counter_inc(m->write_errors, v);
}

void kmetrics_conflict(struct kmetrics *m)
{
    if (m)
        (void)metrics_counter_inc(m->conflicts, NULL);
}

void kmetrics_cluster_phase(struct kmetrics *m, const char *ns, const char *name, const char *phase)
{
    bool known = false;

    for (int i = 0; i < N_PHASES; i++)
        known = known || (phase && strcmp(phase, PHASES[i]) == 0);
    if (!m || !ns || !name || !known)
        return; /* an unknown phase would leave a series nothing removes */
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < N_PHASES; i++) {
        const char *v[] = {ns, name, PHASES[i]};
        (void)metrics_remove(m->phase, v); /* -ENOENT when it was not set */
    }
    const char *v[] = {ns, name, phase};
    (void)metrics_gauge_set(m->phase, v, 1);
    pthread_mutex_unlock(&m->mu);
}

void kmetrics_cluster_gone(struct kmetrics *m, const char *ns, const char *name)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < N_PHASES; i++) {
        const char *v[] = {ns, name, PHASES[i]};
        (void)metrics_remove(m->phase, v);
    }
    pthread_mutex_unlock(&m->mu);
}

void kmetrics_sample(struct kmetrics *m, size_t queue_depth, size_t cached_objects,
                     uint64_t relists, uint64_t watch_failures)
{
    if (!m)
        return;
    (void)metrics_gauge_set(m->relists, NULL, (double)relists);
    (void)metrics_gauge_set(m->watch_failures, NULL, (double)watch_failures);
    (void)metrics_gauge_set(m->depth, NULL, (double)queue_depth);
    (void)metrics_gauge_set(m->objects, NULL, (double)cached_objects);
}

void kmetrics_leader(struct kmetrics *m, bool leading)
{
    if (m)
        (void)metrics_gauge_set(m->leader, NULL, leading ? 1 : 0);
}

int kmetrics_render(struct kmetrics *m, char **text, size_t *len)
{
    if (!m)
        return -EINVAL;
    return metrics_render(m->reg, text, len);
}
