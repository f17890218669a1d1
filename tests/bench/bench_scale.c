/*
 * Scale and rolling updates on real PostgreSQL and etcd, through the tests' process host
 * (tests/scale/phost.c, scenario.c) under a writer committing continuously through the
 * primary. Each round runs a fresh cluster (tests/scale/cluster.yaml: one pool of three
 * instances, AT_LEAST_2) and prints the wall time of each operation, from the spec edit until
 * the host has converged (no action left, no drain pending, mgo_converge converged): the
 * bring-up of 3 instances, a reload-class change (work_mem), a restart-class roll of the 3
 * instances (shared_buffers: standbys, then the primary through a switchover), 3 -> 5 and
 * 5 -> 2; with each the longest time between two acknowledged commits, the failed and
 * timed-out commit attempts, and the acknowledged commits missing from the primary afterwards
 * (must be 0; the exit status is 1 otherwise). The observer of the tests does not run here:
 * the figures are the host's and the library's own. Then the median and maximum over rounds.
 *
 *   build/tests/bench/bench_scale [ROUNDS]      (default 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scenario.h"

#define OPS 5

static const char *const op_names[OPS] = {"bring-up (3)", "reload-class change",
                                          "restart-class roll (3)", "scale 3 -> 5", "scale 5 -> 2"};
static const char *const edits[OPS][2] = {
    {NULL, NULL},
    {"work_mem: \"8MB\"", "work_mem: \"12MB\""},
    {"shared_buffers: \"32MB\"", "shared_buffers: \"48MB\""},
    {"replicasPerCell: 3", "replicasPerCell: 5"},
    {"replicasPerCell: 5", "replicasPerCell: 2"},
};

static struct scenario sc;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void summary(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    int64_t median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    printf("  %-26s median %7lld ms   max %7lld ms\n", what, (long long)median,
           (long long)v[n - 1]);
}

/* One round: the operations' wall times into ms[], the lost commits into *lost. 0 or -1. */
static int round_run(int64_t ms[OPS], size_t *lost)
{
    struct writer_stats a, b;
    *lost = 0;
    if (scenario_start(&sc, SCALE_MANIFEST) != 0) {
        fprintf(stderr, "bench_scale: bring-up failed: %s\n", sc.host.error);
        return -1;
    }
    sc.watching = 0;
    ms[0] = sc.bring_up_ms;
    printf("  %-26s %9lld %12s %7s %9s %5s\n", op_names[0], (long long)ms[0], "-", "-", "-", "-");
    pause_ms(300);
    for (int op = 1; op < OPS; op++) {
        char report[1024];
        size_t missing = 0;
        char ci[256];
        writer_get_stats(sc.writer, &a);
        writer_reset_stall(sc.writer);
        int64_t t0 = scenario_now_ms();
        if (scenario_edit(&sc, edits[op][0], edits[op][1]) != 0 ||
            phost_converge(&sc.host, 180000) != 0) {
            fprintf(stderr, "bench_scale: %s failed: %s\n", op_names[op], sc.host.error);
            return -1;
        }
        ms[op] = scenario_now_ms() - t0;
        pause_ms(300); /* the stall window closes with the next acknowledged commit */
        writer_get_stats(sc.writer, &b);
        if (phost_probe_primary(&sc.host) < 0)
            return -1;
        pg_node_conninfo(&sc.host.shard, sc.host.primary, ci, sizeof(ci));
        int rc = writer_check(ci, sc.writer, &missing, report, sizeof(report));
        *lost += missing;
        printf("  %-26s %9lld %12lld %7zu %9zu %5zu\n", op_names[op], (long long)ms[op],
               (long long)b.longest_stall_ms, b.failed - a.failed, b.timed_out - a.timed_out,
               missing);
        fflush(stdout);
        if (rc != 0) {
            fprintf(stderr, "bench_scale: %s\n", report);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1, rc = 0;
    if (rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: bench_scale [ROUNDS], 1 <= ROUNDS <= 100\n");
        return 2;
    }
    int64_t *ms = calloc((size_t)(rounds * OPS), sizeof(int64_t));
    if (!ms)
        return 1;
    size_t lost_total = 0;
    printf("bench_scale: %d round(s) of a fresh 3-instance cluster (process target, AT_LEAST_2) "
           "under continuous single-row commits\n",
           rounds);
    for (int r = 0; r < rounds && rc == 0; r++) {
        size_t lost = 0;
        printf("round %d\n  %-26s %9s %12s %7s %9s %5s\n", r + 1, "operation", "wall ms",
               "stall ms", "failed", "timed out", "lost");
        int64_t row[OPS] = {0};
        if (round_run(row, &lost) != 0)
            rc = 1;
        lost_total += lost;
        for (int op = 0; op < OPS; op++)
            ms[op * rounds + r] = row[op];
        struct writer_stats st;
        if (sc.writer) {
            writer_get_stats(sc.writer, &st);
            printf("  writer: %zu commits acknowledged, %zu lost\n", st.acked, lost);
        }
        scenario_stop(&sc);
    }
    if (rc == 0 && rounds > 1)
        for (int op = 0; op < OPS; op++)
            summary(op_names[op], ms + op * rounds, rounds);
    printf("  acknowledged commits lost: %zu (must be 0)\n", lost_total);
    free(ms);
    return rc != 0 || lost_total != 0 ? 1 : 0;
}
