/*
 * An informer: one list-then-watch loop per resource type (client-go's reflector), feeding a cache
 * of the objects that exist now and reporting every change to a handler. Module prefix inf_.
 *
 * Each informer runs one thread with its own kc client. It lists (replacing the cache, and
 * reporting objects that vanished meanwhile as deleted), then watches from the list's
 * resourceVersion; a 410 relists; failures back off as kc_watch says (kc.h, "The contract").
 *
 * The cache keeps, per object, what `project` makes of it (the whole object when NULL): mgo-kube
 * keeps only what a reconcile pass reads of its owned objects (labels, annotations, readiness),
 * so that many clusters cost little memory.
 */
#ifndef MGO_KUBE_INFORMER_H
#define MGO_KUBE_INFORMER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>

#include "kc.h"

enum inf_change { INF_ADDED = 1, INF_UPDATED, INF_DELETED };

/*
 * Called on the informer's thread after the cache changed, without the cache's lock held: `key`
 * is "namespace/name" (or "name" for a cluster-scoped kind); `old` is the cached value before the
 * change (NULL for INF_ADDED), `cur` after it (the last known value for INF_DELETED). Both are
 * borrowed for the call. It must not block for long (it enqueues).
 */
typedef void (*inf_handler_fn)(void *ctx, enum inf_change change, const char *key,
                               const json_t *old, const json_t *cur);

/* Make the cached value of an object (a new reference), or NULL to keep the object itself. */
typedef json_t *(*inf_project_fn)(const json_t *object);

struct inf_options {
    const struct kc_resource *resource; /* borrowed; required */
    /* The kind's apiVersion and kind, set on objects that come without them (a list's items of
     * built-in kinds do), before they are projected; both required. */
    const char *api_version;
    const char *kind;
    const char *namespace;      /* NULL: every namespace */
    const char *label_selector; /* may be NULL */
    inf_project_fn project;     /* may be NULL */
    inf_handler_fn handler;     /* may be NULL */
    void *handler_ctx;
    /* log a failure line (may be NULL) */
    void (*log)(void *ctx, const char *resource, const char *msg);
    void *log_ctx;
};

struct informer;

/*
 * Start an informer for `opts` (copied; the strings and resource must outlive the informer) on
 * a new kc client for `cfg` (copied). The thread runs until inf_free. -ENOMEM, -EINVAL (the
 * client refused the configuration), or a pthread error (negated).
 */
int inf_start(const struct kc_config *cfg, const struct inf_options *opts, struct informer **ret);
/* Ask the thread to stop, without waiting (inf_free waits): stopping many informers at once
 * takes one cancel delay instead of one each. NULL is fine. */
void inf_stop(struct informer *inf);
/* Stop the thread (within about a second: kc_watch's cancel) and free everything. NULL is fine. */
void inf_free(struct informer *inf);

/* The first list has filled the cache (it stays true through later relists). */
bool inf_synced(const struct informer *inf);

/* The cached value of `key`, a new reference, or NULL. */
json_t *inf_get(struct informer *inf, const char *key);

/*
 * Call fn for every cached object whose key starts with `prefix` (NULL: all), in no particular
 * order, with the cache's lock held: fn must be quick and must not call back into this informer.
 */
void inf_each(struct informer *inf, const char *prefix,
              void (*fn)(void *ctx, const char *key, const json_t *value), void *ctx);

/* Counters for metrics and tests. */
struct inf_stats {
    size_t objects;
    uint64_t relists;
    uint64_t failures; /* failed lists and watches */
};
void inf_stats(struct informer *inf, struct inf_stats *out);

#endif
