/*
 * Benchmark: mgo_reconcile for 1, 10, 100 and 1,000 clusters held in one process: a fresh pass
 * (nothing exists: every object is created) and a no-op pass over the converged state (every
 * object observed, ready, hashes current). Prints the time per pass, the library's peak heap
 * (through a counting host allocator) and the process's peak RSS. Asserts nothing about speed.
 *
 * usage: bench_reconcile [TARGET] [MAX_CLUSTERS]   (TARGET kubernetes (default) or process)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mgo/mgo.h"

struct heap {
    size_t live, peak;
};

union block {
    size_t size;
    max_align_t align;
};

static void *heap_alloc(void *user, size_t size)
{
    struct heap *h = user;
    union block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->size = size;
    h->live += size;
    if (h->live > h->peak)
        h->peak = h->live;
    return b + 1;
}

static void heap_free(void *user, void *ptr)
{
    if (!ptr)
        return;
    union block *b = (union block *)ptr - 1;
    ((struct heap *)user)->live -= b->size;
    free(b);
}

static void *heap_realloc(void *user, void *ptr, size_t size)
{
    struct heap *h = user;
    if (!ptr)
        return heap_alloc(user, size);
    union block *old = (union block *)ptr - 1;
    size_t old_size = old->size;
    union block *b = realloc(old, sizeof(*b) + size);
    if (!b)
        return NULL;
    b->size = size;
    h->live = h->live - old_size + size;
    if (h->live > h->peak)
        h->peak = h->live;
    return b + 1;
}

static int64_t fixed_clock(void *user)
{
    (void)user;
    return 1767225600000;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Three cells, a pool of three per cell (nine instances), a gateway per cell, managed etcd. */
static json_t *cluster(int i)
{
    char name[32];
    (void)snprintf(name, sizeof(name), "c%04d", i);
    return json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s}, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}],"
        " s:[{s:s, s:b, s:[{s:s, s:b, s:[{s:s, s:{s:{s:s}, s:{s:{s:i, s:[s, s, s]}}}}]}]}]}}",
        "apiVersion", "multigres.com/v1alpha1", "kind", "MultigresCluster", "metadata", "name",
        name, "namespace", "bench", "spec", "postgresPasswordSecretRef", "name", "pw", "key",
        "password", "cells", "name", "a", "zoneId", "z1", "name", "b", "zoneId", "z2", "name", "c",
        "zoneId", "z3", "databases", "name", "postgres", "default", 1, "tablegroups", "name",
        "default", "default", 1, "shards", "name", "0-inf", "spec", "postgresConfig",
        "shared_buffers", "256MB", "pools", "main", "replicasPerCell", 3, "cells", "a", "b", "c");
}

/* The observed state a host would record after executing the actions. */
static void record(json_t *observed, const json_t *actions)
{
    size_t i;
    const json_t *a;
    int primary_given = 0;
    json_array_foreach ((json_t *)actions, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        if (strcmp(type, "status") == 0) {
            json_object_set(observed, "status", json_object_get(a, "status"));
            continue;
        }
        if (strcmp(type, "apply") != 0)
            continue;
        const json_t *obj = json_object_get(a, "object"), *meta = json_object_get(obj, "metadata");
        const char *kind = json_string_value(json_object_get(obj, "kind"));
        json_t *o =
            json_pack("{s:s, s:O, s:O, s:O, s:b}", "kind", kind, "name",
                      json_object_get(meta, "name"), "labels", json_object_get(meta, "labels"),
                      "annotations", json_object_get(meta, "annotations"), "ready", 1);
        if (strcmp(kind, "Pod") == 0 || strcmp(kind, "Instance") == 0) {
            json_object_set_new(o, "role", json_string(primary_given ? "standby" : "primary"));
            primary_given = 1;
        }
        json_array_append_new(json_object_get(observed, "objects"), o);
    }
}

static char *request(const json_t *c, const char *target, const json_t *observed)
{
    json_t *r = json_pack("{s:[O], s:s, s:{s:b}}", "objects", c, "target", target, "topology",
                          "register", 0);
    if (observed)
        json_object_set(r, "observed", (json_t *)observed);
    char *text = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    return text;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* One pass per cluster; returns the seconds spent inside mgo_reconcile and the actions seen. */
static double passes(mgo_plugin *p, json_t **clusters, json_t **observed, int n, const char *target,
                     int fresh, size_t *ret_actions)
{
    double spent = 0;
    *ret_actions = 0;
    for (int i = 0; i < n; i++) {
        char *req = request(clusters[i], target, fresh ? NULL : observed[i]);
        char *out = NULL;
        size_t len = 0;
        double t0 = now_s();
        int32_t rc = mgo_reconcile(p, req, strlen(req), &out, &len);
        spent += now_s() - t0;
        free(req);
        json_t *res = json_loadb(out, len, 0, NULL);
        mgo_free(out);
        if (rc != MGO_OK || !res) {
            fprintf(stderr, "bench_reconcile: pass failed (%d)\n", rc);
            exit(1);
        }
        *ret_actions += json_array_size(json_object_get(res, "actions"));
        if (fresh)
            record(observed[i], json_object_get(res, "actions"));
        json_decref(res);
    }
    return spent;
}

int main(int argc, char **argv)
{
    const char *target = argc > 1 ? argv[1] : "kubernetes";
    int max = argc > 2 ? atoi(argv[2]) : 1000;
    struct heap h = {0};
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    host.user = &h;
    host.now_ms = fixed_clock;
    host.alloc = heap_alloc;
    host.realloc = heap_realloc;
    host.free = heap_free;
    mgo_plugin *p = NULL;
    if (mgo_open(&host, &p) != MGO_OK)
        return 1;
    printf("reconcile (%s target; a cluster = 3 cells x 3 instances, managed etcd%s)\n", target,
           strcmp(target, "kubernetes") == 0 ? ", gateways, orchestrators" : "");
    printf("%9s %14s %14s %12s %14s %14s %12s\n", "clusters", "fresh ms/pass", "fresh actions",
           "noop ms/pass", "noop actions", "lib peak KiB", "RSS KiB");
    for (int n = 1; n <= max; n *= 10) {
        json_t **clusters = calloc((size_t)n, sizeof(*clusters));
        json_t **observed = calloc((size_t)n, sizeof(*observed));
        for (int i = 0; i < n; i++) {
            clusters[i] = cluster(i);
            if (!clusters[i]) {
                fprintf(stderr, "bench_reconcile: cannot build the cluster document\n");
                return 1;
            }
            observed[i] = json_pack("{s:[]}", "objects");
        }
        size_t fresh_actions, noop_actions;
        h.peak = h.live;
        double t_fresh = passes(p, clusters, observed, n, target, 1, &fresh_actions);
        /* A second pass publishes the status of a cluster whose objects are all ready. */
        size_t settle_actions;
        (void)passes(p, clusters, observed, n, target, 0, &settle_actions);
        for (int i = 0; i < n; i++) {
            json_t *again = json_pack("{s:O}", "objects", json_object_get(observed[i], "objects"));
            char *req = request(clusters[i], target, again);
            char *out = NULL;
            size_t len = 0;
            (void)mgo_reconcile(p, req, strlen(req), &out, &len);
            json_t *res = json_loadb(out, len, 0, NULL);
            mgo_free(out);
            free(req);
            json_object_set(observed[i], "status", json_object_get(res, "status"));
            json_decref(res);
            json_decref(again);
        }
        double t_noop = passes(p, clusters, observed, n, target, 0, &noop_actions);
        printf("%9d %14.3f %14zu %12.3f %14zu %14zu %12ld\n", n, 1e3 * t_fresh / n,
               fresh_actions / (size_t)n, 1e3 * t_noop / n, noop_actions, h.peak / 1024,
               peak_rss_kib());
        if (noop_actions != 0) {
            fprintf(stderr, "bench_reconcile: a converged cluster got %zu action(s)\n",
                    noop_actions);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            json_decref(clusters[i]);
            json_decref(observed[i]);
        }
        free(clusters);
        free(observed);
    }
    mgo_close(p);
    return 0;
}
