/*
 * mgo-kube's Prometheus metrics (docs/kube.md, "Metrics"), on the registry of metrics.h. Module
 * prefix kmetrics_. Every function is thread-safe and accepts a NULL registry (does nothing).
 */
#ifndef MGO_KUBE_KMETRICS_H
#define MGO_KUBE_KMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kmetrics;

/* -ENOMEM */
int kmetrics_new(struct kmetrics **ret);
void kmetrics_free(struct kmetrics *m);

/* One reconcile finished: result "success" or "error", its duration. */
void kmetrics_reconcile(struct kmetrics *m, const char *result, double seconds);
/* One write request sent to the API server: verb apply, patch, delete, status or event; rc its
 * kc return value (0: done). */
void kmetrics_api_write(struct kmetrics *m, const char *verb, int rc);
/* A status write refused with 409 Conflict. */
void kmetrics_conflict(struct kmetrics *m);
/* The phase a cluster's last pass published (one series per cluster, value 1). */
void kmetrics_cluster_phase(struct kmetrics *m, const char *ns, const char *name,
                            const char *phase);
/* A cluster is gone: its series are dropped. */
void kmetrics_cluster_gone(struct kmetrics *m, const char *ns, const char *name);
/* Sampled before a scrape: work queue depth, cached objects, and the informers' relists and
 * failed lists or watches since the start (all informers together). */
void kmetrics_sample(struct kmetrics *m, size_t queue_depth, size_t cached_objects,
                     uint64_t relists, uint64_t watch_failures);
/* This replica leads (1) or not (0). */
void kmetrics_leader(struct kmetrics *m, bool leading);
/* The text exposition (malloc'd, free()). -ENOMEM */
int kmetrics_render(struct kmetrics *m, char **text, size_t *len);

#endif
