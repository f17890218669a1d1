/* An informer: list, then watch, into a cache (informer.h). */
#include "informer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct informer {
    struct inf_options o;
    struct kc_client *client;
    struct kc_watch w;
    pthread_t thread;
    bool started;
    atomic_int stop;
    atomic_bool synced;
    pthread_mutex_t mu;
    json_t *cache; /* key -> projected value; its "metadata.resourceVersion" is kept by
                    * inf_entry as "_rv" when projected */
    struct inf_stats stats;
};

/* "ns/name" or "name" of a watched object; NULL when it has no name. */
static int object_key(const json_t *obj, char *buf, size_t size)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *name = json_string_value(json_object_get(md, "name"));
    const char *ns = json_string_value(json_object_get(md, "namespace"));
    int n;

    if (!name || !*name)
        return -EINVAL;
    n = ns && *ns ? snprintf(buf, size, "%s/%s", ns, name) : snprintf(buf, size, "%s", name);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static const char *object_rv(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* The cached value of an object: the projection, tagged with the object's resourceVersion ("_rv")
 * when the projection dropped its metadata, so that a relist can tell an unchanged object from a
 * changed one. */
static json_t *inf_entry(const struct informer *inf, const json_t *obj)
{
    json_t *v = inf->o.project ? inf->o.project(obj) : json_deep_copy(obj);
    const char *rv = object_rv(obj);

    if (v && !object_rv(v) && rv && json_object_set_new(v, "_rv", json_string(rv)) != 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static const char *entry_rv(const json_t *v)
{
    return object_rv(v) ? object_rv(v) : json_string_value(json_object_get(v, "_rv"));
}

static void logf_inf(struct informer *inf, const char *msg)
{
    if (inf->o.log)
        inf->o.log(inf->o.log_ctx, inf->o.resource->plural, msg);
}

/* Put `cur` (a new reference, or NULL for INF_DELETED) into the cache at `key`, or remove the
 * key, and report the change. */
static void change_key(struct informer *inf, enum inf_change change, const char *key, json_t *cur)
{
    json_t *old;

    pthread_mutex_lock(&inf->mu);
    old = json_incref(json_object_get(inf->cache, key));
    if (change == INF_DELETED) {
        (void)json_object_del(inf->cache, key); /* absent: nothing to do */
    } else if (json_object_set(inf->cache, key, cur) != 0) {
        pthread_mutex_unlock(&inf->mu);
        logf_inf(inf, "out of memory caching an object: it is dropped until the next relist");
        json_decref(old);
        json_decref(cur);
        return;
    }
    inf->stats.objects = json_object_size(inf->cache);
    pthread_mutex_unlock(&inf->mu);
    if (change == INF_DELETED && !old)
        return;
    if (change != INF_DELETED)
        change = old ? INF_UPDATED : INF_ADDED;
    if (inf->o.handler)
        inf->o.handler(inf->o.handler_ctx, change, key, old, change == INF_DELETED ? old : cur);
    json_decref(old);
    json_decref(cur);
}

/* Put one watched or listed object into the cache (or remove it) and report the change. */
static void apply_change(struct informer *inf, enum inf_change change, const json_t *obj)
{
    char key[512];
    json_t *cur = NULL;

    if (object_key(obj, key, sizeof(key)) != 0)
        return;
    if (change != INF_DELETED && !(cur = inf_entry(inf, obj))) {
        logf_inf(inf, "out of memory caching an object: it is dropped until the next relist");
        return;
    }
    change_key(inf, change, key, cur);
}

static int on_event(void *ctx, enum kc_event_type type, json_t *obj)
{
    struct informer *inf = ctx;

    if (type == KC_EVENT_ADDED || type == KC_EVENT_MODIFIED)
        apply_change(inf, INF_UPDATED, obj);
    else if (type == KC_EVENT_DELETED)
        apply_change(inf, INF_DELETED, obj);
    return atomic_load(&inf->stop) ? KC_WATCH_STOP : KC_WATCH_CONTINUE;
}

/* Replace the cache by a list: report new and changed objects, and those that vanished. false
 * when memory ran out: which objects vanished is not known, and the caller lists again. */
static bool replace_cache(struct informer *inf, json_t *items)
{
    json_t *seen = json_object(), *gone = json_array(), *v;
    bool complete = true;
    size_t i;
    const char *key;
    char k[512];

    if (!seen || !gone) {
        complete = false;
        goto out;
    }
    json_array_foreach (items, i, v) {
        if (object_key(v, k, sizeof(k)) != 0)
            continue;
        /* list items of built-in kinds carry no kind; the projection and mgo need it. The list
         * is the caller's to change. */
        if (!json_object_get(v, "kind") &&
            (json_object_set_new(v, "kind", json_string(inf->o.kind)) != 0 ||
             json_object_set_new(v, "apiVersion", json_string(inf->o.api_version)) != 0)) {
            complete = false; /* ENOMEM: not seen, yet it may exist */
            continue;
        }
        if (json_object_set(seen, k, json_null()) != 0)
            complete = false; /* ENOMEM: which objects vanished is not known this time */
        pthread_mutex_lock(&inf->mu);
        json_t *old = json_object_get(inf->cache, k);
        const char *orv = old ? entry_rv(old) : NULL, *nrv = object_rv(v);
        bool same = orv && nrv && strcmp(orv, nrv) == 0;
        pthread_mutex_unlock(&inf->mu);
        if (!same)
            apply_change(inf, INF_UPDATED, v);
    }
    if (!complete)
        goto out;
    pthread_mutex_lock(&inf->mu);
    json_object_foreach (inf->cache, key, v)
        if (!json_object_get(seen, key))
            (void)json_array_append_new(gone, json_string(key)); /* ENOMEM: next relist */
    pthread_mutex_unlock(&inf->mu);
    json_array_foreach (gone, i, v)
        change_key(inf, INF_DELETED, json_string_value(v), NULL);
out:
    json_decref(seen);
    json_decref(gone);
    return complete;
}

/* Sleep up to `ms`, or less once the informer is stopped. */
static void pause_ms(struct informer *inf, int ms)
{
    for (int i = 0; i < ms / 100 && !atomic_load(&inf->stop); i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
}

static void count(struct informer *inf, uint64_t *counter)
{
    pthread_mutex_lock(&inf->mu);
    (*counter)++;
    pthread_mutex_unlock(&inf->mu);
}

static void *run(void *arg)
{
    struct informer *inf = arg;
    char msg[768];

    while (!atomic_load(&inf->stop)) {
        int rc;
        if (inf->w.must_relist) {
            struct kc_list l = {0};
            rc = kc_watch_list(inf->client, &inf->w, NULL, &l);
            if (rc == -EINVAL) {
                (void)snprintf(msg, sizeof(msg), "list refused, informer stopped: %s",
                               kc_last_error(inf->client));
                logf_inf(inf, msg);
                break;
            }
            if (rc < 0) {
                if (rc != -ECANCELED) {
                    (void)snprintf(msg, sizeof(msg), "list: %s", kc_last_error(inf->client));
                    logf_inf(inf, msg);
                    count(inf, &inf->stats.failures);
                }
                continue;
            }
            bool complete = replace_cache(inf, l.items);
            kc_list_fini(&l);
            count(inf, &inf->stats.relists);
            atomic_store(&inf->synced, true);
            if (!complete) { /* out of memory: list again, after a pause */
                logf_inf(inf, "out of memory replacing the cache: listing again in a second");
                inf->w.must_relist = true;
                pause_ms(inf, 1000);
                continue;
            }
        }
        rc = kc_watch(inf->client, &inf->w);
        if (rc == KC_WATCH_STOPPED || rc == -EINVAL)
            break;
        if (rc < 0) {
            (void)snprintf(msg, sizeof(msg), "watch: %s", kc_last_error(inf->client));
            logf_inf(inf, msg);
            count(inf, &inf->stats.failures);
        }
    }
    return NULL;
}

int inf_start(const struct kc_config *cfg, const struct inf_options *opts, struct informer **ret)
{
    struct informer *inf;
    int rc;

    if (!cfg || !opts || !opts->resource || !opts->kind || !opts->api_version || !ret)
        return -EINVAL;
    inf = calloc(1, sizeof(*inf));
    if (!inf)
        return -ENOMEM;
    inf->o = *opts;
    pthread_mutex_init(&inf->mu, NULL);
    kc_watch_init(&inf->w);
    inf->w.resource = opts->resource;
    inf->w.namespace = opts->namespace;
    inf->w.label_selector = opts->label_selector;
    inf->w.fn = on_event;
    inf->w.ctx = inf;
    inf->w.cancel = &inf->stop;
    inf->cache = json_object();
    rc = inf->cache ? kc_client_new(cfg, NULL, &inf->client) : -ENOMEM;
    if (rc == 0)
        kc_client_set_cancel(inf->client, &inf->stop); /* a list in flight ends at inf_stop */
    if (rc == 0) {
        rc = -pthread_create(&inf->thread, NULL, run, inf);
        inf->started = rc == 0;
    }
    if (rc != 0) {
        inf_free(inf);
        return rc;
    }
    *ret = inf;
    return 0;
}

void inf_stop(struct informer *inf)
{
    if (inf)
        atomic_store(&inf->stop, 1);
}

void inf_free(struct informer *inf)
{
    if (!inf)
        return;
    atomic_store(&inf->stop, 1);
    if (inf->started)
        pthread_join(inf->thread, NULL);
    kc_client_free(inf->client);
    kc_watch_fini(&inf->w);
    json_decref(inf->cache);
    pthread_mutex_destroy(&inf->mu);
    free(inf);
}

bool inf_synced(const struct informer *inf)
{
    return atomic_load(&inf->synced);
}

json_t *inf_get(struct informer *inf, const char *key)
{
    json_t *v;

    pthread_mutex_lock(&inf->mu);
    v = json_incref(json_object_get(inf->cache, key));
    pthread_mutex_unlock(&inf->mu);
    return v;
}

void inf_each(struct informer *inf, const char *prefix,
              void (*fn)(void *ctx, const char *key, const json_t *value), void *ctx)
{
    const char *key;
    json_t *v;
    size_t plen = prefix ? strlen(prefix) : 0;

    pthread_mutex_lock(&inf->mu);
    json_object_foreach (inf->cache, key, v)
        if (strncmp(key, prefix ? prefix : "", plen) == 0)
            fn(ctx, key, v);
    pthread_mutex_unlock(&inf->mu);
}

void inf_stats(struct informer *inf, struct inf_stats *out)
{
    pthread_mutex_lock(&inf->mu);
    *out = inf->stats;
    pthread_mutex_unlock(&inf->mu);
}
