/*
 * Benchmark: time to validate (mgo_validate) and resolve (mgo_reconcile) each upstream sample
 * and a generated 50-cell cluster, and the library's peak heap (through the host allocator) and
 * the process's peak RSS. Prints figures; asserts nothing about speed.
 *
 * usage: bench_spec [ITERATIONS]   (MGO_SHARED_DIR locates the samples)
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mgo/mgo.h"

/* A counting allocator: every block carries its size, so live and peak bytes are exact. */
struct heap {
    size_t live, peak, calls;
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
    h->calls++;
    if (h->live > h->peak)
        h->peak = h->live;
    return b + 1;
}

static void heap_free(void *user, void *ptr)
{
    struct heap *h = user;
    if (!ptr)
        return;
    union block *b = (union block *)ptr - 1;
    h->live -= b->size;
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
    h->calls++;
    if (h->live > h->peak)
        h->peak = h->live;
    return b + 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

/* A 50-cell cluster: every cell with a gateway, five pools of ten cells, three replicas each. */
static char *fifty_cells(void)
{
    size_t cap = 1 << 16, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s + o, cap - o,
                          "apiVersion: multigres.com/v1alpha1\nkind: MultigresCluster\n"
                          "metadata: {name: fifty, namespace: default}\n"
                          "spec:\n  postgresPasswordSecretRef: {name: pw, key: password}\n"
                          "  cells:\n");
    for (int i = 0; i < 50; i++)
        o += (size_t)snprintf(s + o, cap - o,
                              "    - name: cell-%02d\n      zoneId: zone-%02d\n"
                              "      spec: {multigateway: {replicas: 2}}\n",
                              i, i);
    o += (size_t)snprintf(s + o, cap - o,
                          "  databases:\n  - name: postgres\n    default: true\n"
                          "    tablegroups:\n    - name: default\n      default: true\n"
                          "      shards:\n      - name: 0-inf\n        spec:\n"
                          "          postgresConfig: {max_connections: \"300\", work_mem: "
                          "\"8MB\"}\n          pools:\n");
    for (int p = 0; p < 5; p++) {
        o += (size_t)snprintf(s + o, cap - o,
                              "            pool-%d:\n              replicasPerCell: 3\n"
                              "              storage: {size: 20Gi}\n              cells: [",
                              p);
        for (int c = 0; c < 10; c++)
            o += (size_t)snprintf(s + o, cap - o, "%scell-%02d", c ? ", " : "", p * 10 + c);
        o += (size_t)snprintf(s + o, cap - o, "]\n");
    }
    return s;
}

static void bench(mgo_plugin *p, struct heap *h, const char *label, const char *text, int iters)
{
    json_t *req = json_pack("{s:s}", "manifests", text);
    char *req_text = json_dumps(req, JSON_COMPACT);
    size_t len = strlen(req_text);
    double t_validate = 0, t_resolve = 0;
    int32_t rc_v = 0, rc_r = 0;
    size_t peak_before = h->peak;

    h->peak = h->live;
    for (int i = 0; i < iters; i++) {
        char *out = NULL;
        size_t out_len = 0;
        double t0 = now_s();
        rc_v = mgo_validate(p, req_text, len, &out, &out_len);
        double t1 = now_s();
        mgo_free(out);
        rc_r = mgo_reconcile(p, req_text, len, &out, &out_len);
        double t2 = now_s();
        mgo_free(out);
        t_validate += t1 - t0;
        t_resolve += t2 - t1;
    }
    const char *resolved = !strstr(text, "kind: MultigresCluster") ? "no cluster"
                           : rc_r == MGO_OK                        ? "resolved"
                                                                   : "refused";
    printf("%-36s %9.1f %9.1f %10.1f  %s, %s\n", label, t_validate / iters * 1e6,
           t_resolve / iters * 1e6, (double)h->peak / 1024.0, rc_v == MGO_OK ? "valid" : "invalid",
           resolved);
    if (peak_before > h->peak)
        h->peak = peak_before;
    free(req_text);
    json_decref(req);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 200;
    const char *shared = getenv("MGO_SHARED_DIR");
    char dir[4096];
    struct heap h = {0};
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION, .user = &h};
    mgo_plugin *p = NULL;

    host.alloc = heap_alloc;
    host.realloc = heap_realloc;
    host.free = heap_free;
    if (mgo_open(&host, &p) != MGO_OK)
        return 1;
    (void)snprintf(dir, sizeof(dir), "%s/compat/upstream-samples", shared ? shared : "../shared");
    printf("mgo spec benchmark: %d iterations each; times are means per call\n", iters);
    printf("%-36s %9s %9s %10s  %s\n", "input", "validate", "resolve", "peak heap", "outcome");
    printf("%-36s %9s %9s %10s\n", "", "(us)", "(us)", "(KiB)");

    DIR *d = opendir(dir);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 64)
        if (strstr(e->d_name, ".yaml"))
            names[n++] = strdup(e->d_name);
    if (d)
        closedir(d);
    if (n == 0) {
        fprintf(stderr, "bench_spec: no samples in %s (set MGO_SHARED_DIR)\n", dir);
        mgo_close(p);
        return 2;
    }
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        char *text = read_file(path);
        if (text)
            bench(p, &h, names[i], text, iters);
        free(text);
        free(names[i]);
    }
    /* The templated sample as deployed: with its three templates. */
    static const char *const parts[] = {"templated-cluster.yaml", "templates__core.yaml",
                                        "templates__cell.yaml", "templates__shard.yaml", NULL};
    size_t total = 0;
    char *joined = calloc(1, 1);
    for (const char *const *part = parts; *part; part++) {
        char path[8192];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, *part);
        char *text = read_file(path);
        if (!text)
            continue;
        joined = realloc(joined, total + strlen(text) + 6);
        total += (size_t)snprintf(joined + total, strlen(text) + 6, "%s\n---\n", text);
        free(text);
    }
    bench(p, &h, "templated-cluster + its templates", joined, iters);
    free(joined);

    char *big = fifty_cells();
    bench(p, &h, "generated: 50 cells, 5 pools x 10", big, iters / 4 > 0 ? iters / 4 : 1);
    free(big);
    mgo_close(p);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("library heap: peak %.1f KiB overall, %zu allocator calls, %zu bytes live after "
           "close\n",
           (double)h.peak / 1024.0, h.calls, h.live);
    printf("process peak RSS: %ld KiB\n", ru.ru_maxrss);
    return h.live == 0 ? 0 : 1;
}
