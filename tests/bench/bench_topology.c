/*
 * Benchmark of the topology hook against a real etcd (tests/topo/etcd_harness.c starts one on
 * free loopback ports and stops it): the time mgo_topology takes to register a generated
 * 50-cell cluster (first registration, then an idempotent second one), and to list 1,000
 * pooler records of one cell (written by the benchmark with its own protobuf encoder), plus
 * the process's peak RSS. Prints figures; asserts nothing about speed.
 *
 * usage: bench_topology [LIST_RUNS]   (default 5 runs of list_poolers; min and median shown)
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../topo/etcd_harness.h"
#include "../topology/topo_wire.h"
#include "mgo/mgo.h"

#define CELLS   50
#define POOLERS 1000
#define ROOT    "/multigres/global"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A 50-cell cluster, one zone each; pools default to every cell. */
static char *cluster_yaml(void)
{
    size_t size = 1024 + CELLS * 64;
    char *y = malloc(size);
    if (!y)
        return NULL;
    int len = snprintf(y, size,
                       "apiVersion: multigres.com/v1alpha1\n"
                       "kind: MultigresCluster\n"
                       "metadata: {name: bench, namespace: default}\n"
                       "spec:\n"
                       "  postgresPasswordSecretRef: {name: pw, key: password}\n"
                       "  cells:\n");
    for (int i = 0; i < CELLS; i++)
        len +=
            snprintf(y + len, size - (size_t)len, "    - {name: cell-%02d, zoneId: z%02d}\n", i, i);
    return y;
}

/* One mgo_topology call; its status, result text (mgo_free) and wall time. */
static int32_t topo_call(mgo_plugin *p, const json_t *req, char **out, double *secs)
{
    char *text = json_dumps(req, JSON_COMPACT);
    size_t out_len = 0;
    if (!text)
        return MGO_ENOMEM;
    double t0 = now_s();
    int32_t rc = mgo_topology(p, text, strlen(text), out, &out_len);
    *secs = now_s() - t0;
    free(text);
    return rc;
}

static int expect_ok(int32_t rc, char *out, const char *what)
{
    if (rc == MGO_OK)
        return 0;
    fprintf(stderr, "bench_topology: %s: %s: %s\n", what, mgo_strerror(rc), out ? out : "");
    return -1;
}

/* How many report entries of `section` have `outcome`. */
static size_t count_outcome(const char *out, const char *section, const char *outcome)
{
    json_t *doc = json_loads(out, 0, NULL);
    size_t i, n = 0;
    json_t *e;
    json_array_foreach (json_object_get(doc, section), i, e)
        n += strcmp(json_string_value(json_object_get(e, "outcome")), outcome) == 0;
    json_decref(doc);
    return n;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    struct etcd_harness h;
    mgo_plugin *p = NULL;
    char *yaml = cluster_yaml(), *out = NULL;
    json_t *reg = NULL, *list = NULL;
    double secs, *t = NULL;
    int status = 1;

    if (runs < 1 || runs > 1000 || !yaml) {
        fprintf(stderr, "usage: bench_topology [LIST_RUNS 1..1000]\n");
        return 2;
    }
    memset(&h, 0, sizeof(h));
    curl_global_init(CURL_GLOBAL_ALL);
    if (etcd_harness_start(&h) != 0)
        return 1;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    if (mgo_open(&host, &p) != MGO_OK)
        goto done;
    printf("etcd %s; %d cells, %d poolers\n", h.endpoint, CELLS, POOLERS);

    /* Registration: first (creates 50 Cells and the Database), then idempotent. */
    reg = json_pack("{s:s, s:[{s:s, s:s}], s:{s:[s]}, s:i}", "op", "register", "manifests",
                    "source", "bench.yaml", "text", yaml, "etcd", "endpoints", h.endpoint,
                    "deadline_ms", 120000);
    int32_t rc = topo_call(p, reg, &out, &secs);
    if (expect_ok(rc, out, "first register"))
        goto done;
    printf("register, first (%zu cells created):   %8.2f ms\n",
           count_outcome(out, "cells", "created"), secs * 1e3);
    mgo_free(out);
    out = NULL;
    rc = topo_call(p, reg, &out, &secs);
    if (expect_ok(rc, out, "second register"))
        goto done;
    printf("register, again (%zu cells unchanged): %8.2f ms\n",
           count_outcome(out, "cells", "unchanged"), secs * 1e3);
    mgo_free(out);
    out = NULL;

    /* 1,000 poolers of one shard in cell-00, as poolers write them. */
    double t0 = now_s();
    for (int i = 0; i < POOLERS; i++) {
        char name[32], hostname[64], key[256];
        struct pbw w;
        (void)snprintf(name, sizeof(name), "p-%04d", i);
        (void)snprintf(hostname, sizeof(hostname), "%s.pool.default.svc", name);
        const struct pooler_spec s = {"cell-00", name,  "postgres", "default", "0-inf",
                                      hostname,  15270, 5432,       2,         i == 0 ? 1 : 2,
                                      0,         NULL,  0};
        enc_pooler(&w, &s);
        (void)snprintf(key, sizeof(key), ROOT "/poolers/multipooler-cell-00-%s/Pooler", name);
        if (etcd_put(h.endpoint, key, w.b, w.len) <= 0)
            goto done;
    }
    printf("(writing %d pooler records directly: %.2f s)\n", POOLERS, now_s() - t0);

    list = json_pack("{s:s, s:{s:[s], s:s}, s:s, s:s, s:s, s:s, s:i}", "op", "list_poolers", "etcd",
                     "endpoints", h.endpoint, "root", ROOT, "cell", "cell-00", "database",
                     "postgres", "table_group", "default", "shard", "0-inf", "deadline_ms", 120000);
    t = calloc((size_t)runs, sizeof(*t));
    size_t listed = 0;
    for (int r = 0; r < runs && t; r++) {
        rc = topo_call(p, list, &out, &t[r]);
        if (expect_ok(rc, out, "list_poolers"))
            goto done;
        json_t *doc = json_loads(out, 0, NULL);
        listed = json_array_size(json_object_get(doc, "poolers"));
        json_decref(doc);
        mgo_free(out);
        out = NULL;
    }
    if (!t)
        goto done;
    qsort(t, (size_t)runs, sizeof(*t), cmp_double);
    printf("list_poolers, %zu records (%d runs):  min %8.2f ms, median %8.2f ms\n", listed, runs,
           t[0] * 1e3, t[runs / 2] * 1e3);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS of this process:              %8.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    status = 0;
done:
    free(t);
    json_decref(reg);
    json_decref(list);
    mgo_free(out);
    mgo_close(p);
    etcd_harness_stop(&h);
    free(yaml);
    curl_global_cleanup();
    return status;
}
