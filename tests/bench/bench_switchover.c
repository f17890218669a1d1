/*
 * Planned switchovers on a real shard (tests/pg harness: n0 primary, n1 and n2 synchronous
 * standbys under "ANY 1 (...)"), driven by mgo_drain through the tests' drain host
 * (tests/drain/dhost.c), under a writer that commits continuously through the current primary.
 * For each of N switchovers (default 10) it prints: the total drain time (requested to
 * ready-for-deletion), the window in which writes failed or waited (the longest time between
 * two acknowledged commits during the switchover), failed and timed-out attempts, and the
 * acknowledged commits missing from the new primary afterwards (must be 0); then the median
 * and maximum. Between switchovers the old primary rejoins as a standby (not timed).
 *
 *   build/tests/bench/bench_switchover [N]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dhost.h"
#include "pg_harness.h"
#include "writer.h"

static struct pg_shard shard;
static struct writer *writer;
static int primary;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static struct dhost_follow follow = {.primary = &primary};

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void summary(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    int64_t median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("  %-34s median %6lld   max %6lld\n", what, (long long)median, (long long)v[n - 1]);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    mgo_plugin *plugin = NULL;
    char ci[256];
    int64_t *total = NULL, *window = NULL, *lost = NULL;
    int rc = 1;
    if (n < 1 || n > 1000) {
        fprintf(stderr, "usage: bench_switchover [N], 1 <= N <= 1000\n");
        return 2;
    }
    if (pg_shard_start(&shard, 2, "ANY 1 (n1, n2)") != 0)
        return 1;
    if (mgo_open(&host, &plugin) != MGO_OK)
        goto out;
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, 2000);
    follow.writer = writer;
    total = calloc((size_t)n, sizeof(int64_t));
    window = calloc((size_t)n, sizeof(int64_t));
    lost = calloc((size_t)n, sizeof(int64_t));
    if (!writer || !total || !window || !lost)
        goto out;
    rc = 0;
    pause_ms(500);
    printf("bench_switchover: %d planned switchovers, 1 primary + 2 synchronous standbys "
           "(ANY 1), continuous single-row commits\n",
           n);
    printf("  %3s %-10s %10s %12s %7s %9s %5s\n", "#", "from->to", "drain ms", "window ms",
           "failed", "timed out", "lost");
    for (int k = 0; k < n && rc == 0; k++) {
        struct dhost h;
        struct writer_stats a, b;
        int old = primary;
        dhost_init(&h, plugin, &shard, shard.nodes[old].name, &follow);
        writer_get_stats(writer, &a);
        writer_reset_stall(writer);
        int64_t t0 = now_ms();
        if (dhost_run(&h, "ready-for-deletion", 60, 50) != 0) {
            fprintf(stderr, "bench_switchover: drain %d did not finish: %s\n", k, h.message);
            rc = 1;
            break;
        }
        total[k] = now_ms() - t0;
        pause_ms(300); /* the window closes with the first acknowledged commit after it */
        writer_get_stats(writer, &b);
        window[k] = b.longest_stall_ms;
        size_t missing = 0;
        char report[512];
        pg_node_conninfo(&shard, primary, ci, sizeof(ci));
        if (writer_check(ci, writer, &missing, report, sizeof(report)) != 0) {
            fprintf(stderr, "bench_switchover: %s\n", report);
            rc = 1;
        }
        lost[k] = (int64_t)missing;
        printf("  %3d %-4s->%-4s %10lld %12lld %7zu %9zu %5zu\n", k + 1, shard.nodes[old].name,
               shard.nodes[primary].name, (long long)total[k], (long long)window[k],
               b.failed - a.failed, b.timed_out - a.timed_out, missing);
        fflush(stdout);
        if (rc == 0 && (dhost_rejoin(&shard, old, primary) != 0 ||
                        dhost_restore_sync_set(&shard, primary) != 0))
            rc = 1;
    }
    if (rc == 0) {
        struct writer_stats st;
        writer_get_stats(writer, &st);
        summary("total drain time (ms)", total, n);
        summary("writes failed or waited (ms)", window, n);
        summary("acknowledged commits lost", lost, n);
        printf("  writer: %zu commits acknowledged in all\n", st.acked);
    }
out:
    writer_free(writer);
    if (plugin)
        mgo_close(plugin);
    pg_shard_stop(&shard);
    free(total);
    free(window);
    free(lost);
    return rc;
}
