/*
 * Crash-resume of both drains (docs/spec/lifecycle.md, "Crash safety"): the host (drain_host, a
 * process of its own) is killed with SIGKILL at every point of a drain in turn (just before and
 * just after each action it performs), and for the primary also at fixed times into the drain
 * (inside mgo_drain calls: during the promotion, the repointing...). A fresh host then resumes
 * from the persisted annotations and must reach ready-for-deletion, with zero acknowledged
 * commits lost (a writer commits throughout through the current primary) and never two
 * primaries. The shard: n0 primary, n1 and n2 under "ANY 1 (n1, n2)"; after each primary drain
 * the old primary rejoins as a standby, after each standby drain the set is restored.
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dhost.h"
#include "pg_harness.h"
#include "writer.h"

static struct pg_shard shard;
static struct writer *writer;
static int primary;
static char state_path[300];
static int max_primaries;
static mgo_plugin *plugin; /* the test's own, for mgo_observe */

/* The restored shard, checked by the observer: no violation. */
static void restore_and_observe(void)
{
    char report[8192];
    assert_int_equal(dhost_restore_sync_set(&shard, primary), 0);
    int ok = dhost_observe(plugin, &shard, report, sizeof(report));
    if (ok != 1)
        print_message("observe: %s\n", report);
    assert_int_equal(ok, 1);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_state(const char *instance)
{
    json_t *nodes = json_array(), *drains = json_array();
    for (int i = 0; i < shard.n; i++) {
        json_array_append_new(nodes,
                              json_pack("{s:i, s:s, s:s}", "port", shard.nodes[i].port, "name",
                                        shard.nodes[i].name, "datadir", shard.nodes[i].datadir));
        json_array_append_new(drains, json_string(""));
    }
    json_t *doc = json_pack("{s:{s:s, s:s, s:o}, s:s, s:s, s:s, s:o}", "shard", "dir", shard.dir,
                            "sockdir", shard.sockdir, "nodes", nodes, "instance", instance, "state",
                            "requested", "switchover", "", "node_drain", drains);
    assert_int_equal(json_dump_file(doc, state_path, 0), 0);
    json_decref(doc);
}

/* The persisted annotations: state and switchover. */
static void read_state(char *state, size_t ssize, char *sw, size_t swsize)
{
    json_t *doc = json_load_file(state_path, 0, NULL);
    const char *s = json_string_value(json_object_get(doc, "state"));
    const char *w = json_string_value(json_object_get(doc, "switchover"));
    (void)snprintf(state, ssize, "%s", s ? s : "?");
    (void)snprintf(sw, swsize, "%s", w ? w : "");
    json_decref(doc);
}

/* Nodes that answer as a primary right now (quiet: a node that is down does not count). */
static int count_primaries(void)
{
    int n = 0;
    for (int i = 0; i < shard.n; i++) {
        char ci[256], err[256];
        PGconn *c = NULL;
        PGresult *r = NULL;
        pg_node_conninfo(&shard, i, ci, sizeof(ci));
        if (pg_harness_connect(ci, 300, &c, err, sizeof(err)) != 0)
            continue;
        if (pg_harness_query(c, "SELECT pg_is_in_recovery()", 300, &r, err, sizeof(err)) == 0 &&
            PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "f") == 0)
            n++;
        PQclear(r);
        PQfinish(c);
    }
    return n;
}

/* Follow the persisted switchover: the writer goes to the new primary once it may be promoted. */
static void follow(void)
{
    char state[64], sw[96];
    read_state(state, sizeof(state), sw, sizeof(sw));
    if (strncmp(sw, "promoting:", 10) == 0) {
        for (int i = 0; i < shard.n; i++)
            if (strcmp(shard.nodes[i].name, sw + 10) == 0 && i != primary) {
                char ci[256];
                pg_node_conninfo(&shard, i, ci, sizeof(ci));
                writer_switch(writer, ci);
                primary = i;
            }
    }
}

#define HOST_TIME_LIMIT_MS 120000

/* Run the host once: kill_at > 0 a kill point, kill_on a log message to die on, kill_after_ms
 * > 0 a SIGKILL from here. The exit status (0, 1, 4), or -SIGKILL when it was killed. A host
 * that runs past HOST_TIME_LIMIT_MS is killed and the test fails. */
static int run_host_on(int kill_at, const char *kill_on, int kill_after_ms)
{
    char arg[16];
    (void)snprintf(arg, sizeof(arg), "%d", kill_at);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (kill_on)
            execl(DRAIN_HOST, DRAIN_HOST, state_path, arg, kill_on, (char *)NULL);
        else
            execl(DRAIN_HOST, DRAIN_HOST, state_path, arg, (char *)NULL);
        _exit(127);
    }
    int64_t start = now_ms();
    int status = 0, sent = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r != 0 || now_ms() - start > HOST_TIME_LIMIT_MS) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            fail_msg("drain_host ran past %d ms", HOST_TIME_LIMIT_MS);
        }
        follow();
        int p = count_primaries();
        if (p > max_primaries)
            max_primaries = p;
        if (kill_after_ms > 0 && !sent && now_ms() - start >= kill_after_ms) {
            char state[64], sw[96];
            kill(pid, SIGKILL);
            sent = 1;
            read_state(state, sizeof(state), sw, sizeof(sw));
            print_message("SIGKILL after %d ms, persisted: %s %s\n", kill_after_ms, state, sw);
        }
        pause_ms(10);
    }
    follow();
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return WEXITSTATUS(status);
}

static int run_host(int kill_at, int kill_after_ms)
{
    return run_host_on(kill_at, NULL, kill_after_ms);
}

/* Drive the drain of `instance` to the end: the killed run, then fresh hosts until done. */
static void drain_with_kill_on(const char *instance, int kill_at, const char *kill_on,
                               int kill_after_ms, int *killed)
{
    write_state(instance);
    int rc = run_host_on(kill_at, kill_on, kill_after_ms);
    *killed = rc == -SIGKILL;
    for (int tries = 0; rc != 0 && tries < 10; tries++) {
        assert_true(rc == -SIGKILL || rc == 4);
        if (rc == 4) /* the host asked for a node to be started */
            for (int i = 0; i < shard.n; i++) {
                char path[600];
                (void)snprintf(path, sizeof(path), "%s/postmaster.pid", shard.nodes[i].datadir);
                if (access(path, F_OK) != 0)
                    assert_int_equal(pg_node_start(&shard, i), 0);
            }
        rc = run_host(0, 0);
    }
    assert_int_equal(rc, 0);
    char state[64], sw[96];
    read_state(state, sizeof(state), sw, sizeof(sw));
    assert_string_equal(state, "ready-for-deletion");
    assert_int_equal(count_primaries(), 1);
}

static void drain_with_kill(const char *instance, int kill_at, int kill_after_ms, int *killed)
{
    drain_with_kill_on(instance, kill_at, NULL, kill_after_ms, killed);
}

static void check_writes(const char *when)
{
    char ci[256], report[1024];
    size_t missing = 0;
    struct writer_stats st, before;
    /* writes go on through the new primary */
    writer_get_stats(writer, &before);
    for (int i = 0; i < 200; i++) {
        writer_get_stats(writer, &st);
        if (st.acked > before.acked + 10)
            break;
        pause_ms(50);
    }
    assert_true(st.acked > before.acked + 10);
    pg_node_conninfo(&shard, primary, ci, sizeof(ci));
    assert_int_equal(writer_check(ci, writer, &missing, report, sizeof(report)), 0);
    writer_get_stats(writer, &st);
    print_message("%s: %zu acknowledged, %zu failed, %zu timed out; %s\n", when, st.acked,
                  st.failed, st.timed_out, report);
    assert_int_equal(missing, 0);
    assert_true(max_primaries <= 1);
}

static int setup(void **st)
{
    (void)st;
    if (pg_shard_start(&shard, 2, "ANY 1 (n1, n2)") != 0)
        return -1;
    (void)snprintf(state_path, sizeof(state_path), "%s/drain-state.json", shard.dir);
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, 2000);
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    return writer && mgo_open(&host, &plugin) == MGO_OK ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    writer_stop(writer);
    writer_free(writer);
    mgo_close(plugin);
    pg_shard_stop(&shard);
    return 0;
}

static void primary_drain_on(int kill_at, const char *kill_on, int kill_after_ms, int *killed)
{
    int old = primary;
    char when[160];
    drain_with_kill_on(shard.nodes[old].name, kill_at, kill_on, kill_after_ms, killed);
    assert_int_not_equal(primary, old);
    if (kill_on)
        (void)snprintf(when, sizeof(when), "primary drain, kill on \"%s\"%s", kill_on,
                       *killed ? "" : " (never logged)");
    else
        (void)snprintf(when, sizeof(when), "primary drain, kill %s %d%s",
                       kill_at ? "at point" : "after ms", kill_at ? kill_at : kill_after_ms,
                       *killed ? "" : " (the drain finished first)");
    check_writes(when);
    assert_int_equal(dhost_rejoin(&shard, old, primary), 0);
    restore_and_observe();
}

static void primary_drain(int kill_at, int kill_after_ms, int *killed)
{
    primary_drain_on(kill_at, NULL, kill_after_ms, killed);
}

/* Inside mgo_drain calls, at each sub-step the library logs: the host dies right after it. */
static void test_primary_kill_inside_calls(void **st)
{
    (void)st;
    static const char *const labels[] = {"has synchronous_standby_names", "promoted",
                                         "repointed at"};
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
        int killed = 0;
        primary_drain_on(0, labels[i], 0, &killed);
        assert_true(killed);
    }
}

static void test_primary_kill_points(void **st)
{
    (void)st;
    int killed = 1;
    for (int k = 1; killed; k++)
        primary_drain(k, 0, &killed);
}

static void test_primary_kill_times(void **st)
{
    (void)st;
    /* a drain takes a few hundred milliseconds here: kills every 25 ms land at various places
     * (where each landed is printed; the deterministic kills are the other tests) */
    int killed, n = 0;
    for (int ms = 25; ms <= 500; ms += 25) {
        primary_drain(0, ms, &killed);
        n += killed;
    }
    print_message("%d of 20 timed kills landed before the drain finished\n", n);
}

static void test_standby_kill_points(void **st)
{
    (void)st;
    int killed = 1;
    for (int k = 1; killed; k++) {
        int victim = primary == 2 ? 1 : 2;
        char when[64];
        drain_with_kill(shard.nodes[victim].name, k, 0, &killed);
        if (k == 1) {
            /* and once inside the call that takes it out of the synchronous set */
            int in_call = 0;
            assert_int_equal(dhost_restore_sync_set(&shard, primary), 0);
            drain_with_kill_on(shard.nodes[victim].name, 0, "left the synchronous set", 0,
                               &in_call);
            assert_true(in_call);
        }
        (void)snprintf(when, sizeof(when), "standby drain, kill at point %d%s", k,
                       killed ? "" : " (finished first)");
        check_writes(when);
        restore_and_observe();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primary_kill_points),
        cmocka_unit_test(test_primary_kill_inside_calls),
        cmocka_unit_test(test_primary_kill_times),
        cmocka_unit_test(test_standby_kill_points),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
