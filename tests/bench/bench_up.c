/*
 * `mgo up` from start to a healthy cluster, through the real `mgo` binary (a subprocess, as a
 * user runs it): for a cluster of 1 cell x 3 instances (tests/cli/up3.yaml) and one of 3 cells
 * x 3 instances (tests/bench/up9.yaml: one pool spanning the three cells), each round in a
 * fresh state directory on free ports. Prints per round the wall time from the start of
 * `mgo up` to its exit (it returns once the cluster is healthy: contract of issue 7), mgo's
 * peak resident memory (wait4's ru_maxrss of the `mgo up` child, which on Linux is the larger
 * of its own peak and that of the children it waited for, initdb and pg_basebackup included;
 * and its own VmHWM sampled from /proc while it ran), and the time of `mgo down --purge`; then
 * the median and maximum over the rounds. Every round's cluster is downed and purged, and
 * whatever still runs under its directory is killed (it is reported; the exit status is then
 * 1, as when `up` or `down` fails or status does not show the expected instances).
 *
 *   build/tests/bench/bench_up [ROUNDS]     (default 3; MGO_CLI overrides the mgo binary)
 */
#define _DEFAULT_SOURCE /* mkdtemp */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgorun.h"

#define UP_TIMEOUT    "300"
#define UP_TIMEOUT_MS 360000

struct config {
    const char *label, *manifest, *cluster;
    int instances;
};

static const struct config configs[] = {
    {"1 cell x 3", UP3_MANIFEST, "up3", 3},
    {"3 cells x 3", UP9_MANIFEST, "up9", 9},
};
#define N_CONFIGS (sizeof(configs) / sizeof(configs[0]))

static const char *mgo;
static char dir[64]; /* the current round's state directory, "" when none */
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;

/* Down, purge and remove the current state directory; kill what is left. Returns the number
 * of processes that had to be killed (-1 when down --purge failed). */
static int teardown(const char *cluster, int64_t *down_ms)
{
    int rc = 0;
    pthread_mutex_lock(&dir_lock);
    if (dir[0]) {
        const char *argv[] = {mgo, "down", "--state-dir", dir, "--purge", cluster, NULL};
        struct mgorun r;
        if (mgorun_cmd(&r, argv, 180000, 0) != 0 || r.code != 0) {
            fprintf(stderr, "bench_up: mgo down --purge failed:\n");
            mgorun_print(&r, stderr);
            rc = -1;
        }
        if (down_ms)
            *down_ms = r.ms;
        mgorun_free(&r);
        int killed = mgorun_kill_under(dir);
        if (killed) {
            fprintf(stderr, "bench_up: %d process(es) still ran under %s after down: killed\n",
                    killed, dir);
            if (rc == 0)
                rc = killed;
        }
        mgorun_rmtree(dir);
        dir[0] = '\0';
    }
    pthread_mutex_unlock(&dir_lock);
    return rc;
}

static const char *current_cluster = "";

static void at_exit(void)
{
    teardown(current_cluster, NULL);
}

static void *on_signal(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    sigwait(set, &sig);
    fprintf(stderr, "bench_up: signal %d: stopping the cluster\n", sig);
    mgorun_kill_running(); /* a running `mgo up` holds the cluster's lock */
    teardown(current_cluster, NULL);
    _exit(1);
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t median(int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One round of one configuration. 0, or -1 after saying why. */
static int round_run(const struct config *c, int64_t *up_ms, int64_t *rss_kb, int64_t *hwm_kb,
                     int64_t *down_ms)
{
    char base[16];
    int port = mgorun_free_port_base(64);
    if (!port) {
        fprintf(stderr, "bench_up: no 64 free consecutive ports\n");
        return -1;
    }
    snprintf(base, sizeof(base), "%d", port);
    pthread_mutex_lock(&dir_lock);
    snprintf(dir, sizeof(dir), "/tmp/mbu.XXXXXX");
    if (!mkdtemp(dir)) {
        dir[0] = '\0';
        pthread_mutex_unlock(&dir_lock);
        perror("bench_up: mkdtemp");
        return -1;
    }
    chmod(dir, 0755); /* the servers may run as the user postgres */
    current_cluster = c->cluster;
    pthread_mutex_unlock(&dir_lock);

    const char *argv[] = {mgo,  "up",        "--state-dir", dir,         "--port-base",
                          base, "--timeout", UP_TIMEOUT,    c->manifest, NULL};
    struct mgorun r;
    int rc = 0;
    if (mgorun_cmd(&r, argv, UP_TIMEOUT_MS, 0) != 0 || r.code != 0) {
        fprintf(stderr, "bench_up: %s: mgo up failed:\n", c->label);
        mgorun_print(&r, stderr);
        rc = -1;
    }
    *up_ms = r.ms;
    *rss_kb = r.maxrss_kb;
    *hwm_kb = r.hwm_kb;
    mgorun_free(&r);
    if (rc == 0) {
        /* healthy as the contract defines it: every instance up, one primary */
        struct mgorun_status st;
        char err[1024];
        /* a role is read live: on a loaded machine a probe can miss its deadline, and the
         * role is then "unknown" for that one read; a few reads a second apart tell that from
         * a cluster that is not healthy */
        for (int attempt = 1; attempt <= 5; attempt++) {
            int primaries = 0, running = 0;
            if (mgorun_status(mgo, dir, c->cluster, &st, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_up: %s: %s\n", c->label, err);
                rc = -1;
                break;
            }
            for (int i = 0; i < st.n; i++) {
                primaries += strcmp(st.in[i].role, "primary") == 0;
                running += strcmp(st.in[i].state, "running") == 0 && st.in[i].pid > 0;
            }
            if (strcmp(st.phase, "Healthy") == 0 && st.n == c->instances && primaries == 1 &&
                running == c->instances)
                break;
            fprintf(stderr,
                    "bench_up: %s: after up (read %d): phase %s, %d instances (want %d), %d "
                    "primaries, %d running; roles:",
                    c->label, attempt, st.phase, st.n, c->instances, primaries, running);
            for (int i = 0; i < st.n; i++)
                fprintf(stderr, " %s", st.in[i].role);
            fputc('\n', stderr);
            if (attempt == 5)
                rc = -1;
            else
                sleep(1);
        }
    }
    if (teardown(c->cluster, down_ms) != 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3, rc = 0;
    if (rounds < 1 || rounds > 100) {
        fprintf(stderr, "usage: bench_up [ROUNDS], 1 <= ROUNDS <= 100\n");
        return 2;
    }
    const char *env = getenv("MGO_CLI");
    mgo = env && env[0] ? env : MGO_BIN;

    static sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, on_signal, &set) != 0)
        return 1;
    pthread_detach(t);
    atexit(at_exit);

    int64_t *up = calloc((size_t)rounds * N_CONFIGS, sizeof(int64_t));
    int64_t *down = calloc((size_t)rounds * N_CONFIGS, sizeof(int64_t));
    int64_t rss_max[N_CONFIGS] = {0}, hwm_max[N_CONFIGS] = {0};
    int done[N_CONFIGS] = {0};
    if (!up || !down)
        return 1;
    printf("bench_up: %d round(s) of `mgo up` (%s) to a healthy cluster, fresh state directory "
           "each\n",
           rounds, mgo);
    printf("  %-12s %5s %10s %14s %12s %10s\n", "cluster", "round", "up ms", "ru_maxrss KB",
           "VmHWM KB", "down ms");
    for (int r = 0; r < rounds && rc == 0; r++)
        for (size_t c = 0; c < N_CONFIGS && rc == 0; c++) {
            int64_t u = 0, rss = 0, hwm = 0, d = 0;
            if (round_run(&configs[c], &u, &rss, &hwm, &d) != 0) {
                rc = 1;
                break;
            }
            printf("  %-12s %5d %10lld %14lld %12lld %10lld\n", configs[c].label, r + 1,
                   (long long)u, (long long)rss, (long long)hwm, (long long)d);
            fflush(stdout);
            up[c * (size_t)rounds + (size_t)done[c]] = u;
            down[c * (size_t)rounds + (size_t)done[c]] = d;
            done[c]++;
            if (rss > rss_max[c])
                rss_max[c] = rss;
            if (hwm > hwm_max[c])
                hwm_max[c] = hwm;
        }
    for (size_t c = 0; c < N_CONFIGS; c++) {
        int n = done[c];
        if (n == 0)
            continue;
        int64_t *v = up + c * (size_t)rounds, *w = down + c * (size_t)rounds;
        int64_t m = median(v, n), dm = median(w, n);
        printf("  %-12s up to healthy: median %7lld ms, max %7lld ms (%d rounds); mgo peak RSS: "
               "ru_maxrss max %lld KB, own VmHWM max %lld KB; down --purge median %lld ms\n",
               configs[c].label, (long long)m, (long long)v[n - 1], n, (long long)rss_max[c],
               (long long)hwm_max[c], (long long)dm);
    }
    free(up);
    free(down);
    return rc;
}
