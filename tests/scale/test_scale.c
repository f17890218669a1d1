/*
 * Scale up and down (issue 6) on real PostgreSQL 15 and etcd, through the tests' process host
 * (phost.c): the cluster of cluster.yaml (one pool, one cell, AT_LEAST_2) brought up from mgo's
 * process render, a writer committing continuously through the primary, then resized through
 * mgo_scale's `spec` (its plan checked against what the host then did). Each test brings up its
 * own cluster, so that one failure does not cascade. After every step of the host the observer
 * (scenario.h) runs mgo_observe and its own SQL checks, including every acknowledged commit on
 * the primary; no test here allows a switchover, so the observer tolerates nothing but the
 * fault a test injects on purpose, and no commit may fail.
 *
 * Expected values come from docs/spec/lifecycle.md (scale up: every missing instance in one
 * pass, seeded from the primary, named in the synchronous set only once it streams; scale
 * down: never the primary, highest index first, one at a time, volume per whenScaled, Delete
 * by default), docs/spec/render-process.md (names end with the index; bootstrap primary index
 * 0), docs/abi.md (mgo_converge: ANY 1 over the standbys in the order of the nodes, a standby
 * not streaming listed in `waiting`, pooler records deleted with the instance; mgo_scale's plan
 * fields) and docs/topology.md with facts/multigres-core.md (the pooler records' keys and
 * fields, read from etcd directly).
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks.h"

static struct scenario sc;

static int start(int replicas)
{
    if (scenario_start_at(&sc, SCALE_MANIFEST, replicas) != 0) {
        fprintf(stderr, "setup: %s\n", sc.host.error);
        scenario_stop(&sc);
        return -1;
    }
    print_message("bring-up of %d instances: %lld ms\n", replicas, (long long)sc.bring_up_ms);
    return 0;
}

static int setup3(void **st)
{
    (void)st;
    return start(3);
}

static int setup5(void **st)
{
    (void)st;
    return start(5);
}

static int teardown(void **st)
{
    (void)st;
    scenario_stop(&sc);
    return 0;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The primary's synchronous_standby_names names `name` (as written by mgo: double-quoted). */
static int named(const char *name)
{
    char ssn[1100], needle[80];
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_int_equal(pg_sql(&sc.host.shard, sc.host.primary, "SHOW synchronous_standby_names", 5000,
                            ssn, sizeof(ssn)),
                     0);
    (void)snprintf(needle, sizeof(needle), "\"%s\"", name);
    return strstr(ssn, needle) != NULL;
}

static void test_bring_up(void **st)
{
    (void)st;
    char out[256];
    assert_int_equal(sc.host.ninst, 3);
    assert_int_equal(sc.host.nvol, 3);
    check_instance_names(&sc);
    /* the bootstrap primary is index 0 (render-process.md), initdb'ed; the others copies */
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, check_name_at(&sc, 0));
    assert_int_equal(scenario_count_ops(&sc, 0, "create", NULL), 3);
    for (int i = 0; i < 3; i++) {
        const json_t *e = json_array_get(sc.host.log, (size_t)i);
        assert_string_equal(json_string_value(json_object_get(e, "how")),
                            i == 0 ? "initdb" : "basebackup");
        assert_int_equal(scenario_sql(&sc, i, "SHOW cluster_name", out, sizeof(out)), 0);
        assert_string_equal(out, check_name_at(&sc, i));
    }
    check_streaming(&sc, 2);
    check_sync_set(&sc, (const int[]){1, 2}, 2);
    check_topology(&sc, NULL, 0);
    check_writes(&sc, "after the bring-up");
}

static void test_scale_up(void **st)
{
    (void)st;
    char primary[64], name3[128], name4[128];
    struct writer_stats before;
    (void)snprintf(primary, sizeof(primary), "%s", check_name_at(&sc, 0));
    check_name_for_index(&sc, 0, 3, name3, sizeof(name3));
    check_name_for_index(&sc, 0, 4, name4, sizeof(name4));
    json_t *plan = check_resize(&sc, 3, 5, 0);
    const json_t *create = json_object_get(plan, "create");
    assert_int_equal(json_array_size(create), 2);
    assert_int_equal(json_array_size(json_object_get(plan, "drain")), 0);
    for (size_t k = 0; k < 2; k++) {
        const json_t *c = json_array_get(create, k);
        assert_string_equal(json_string_value(json_object_get(c, "name")), k == 0 ? name3 : name4);
        assert_string_equal(json_string_value(json_object_get(c, "cell")), "z1");
        assert_int_equal(json_integer_value(json_object_get(c, "index")), (int)k + 3);
    }
    json_decref(plan);
    size_t mark = json_array_size(sc.host.log);
    int step0 = sc.host.steps;
    writer_get_stats(sc.writer, &before);
    check_converge(&sc, 60000, "3 -> 5");
    check_no_failed_commits(&sc, &before, "3 -> 5");
    /* both created in the same pass, as copies of the primary; nothing drained or deleted */
    assert_int_equal(scenario_count_ops(&sc, mark, "create", NULL), 2);
    assert_int_equal(scenario_count_ops(&sc, mark, "create", name3), 1);
    assert_int_equal(scenario_count_ops(&sc, mark, "create", name4), 1);
    for (size_t k = mark; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        if (strcmp(json_string_value(json_object_get(e, "op")), "create") == 0) {
            assert_string_equal(json_string_value(json_object_get(e, "how")), "basebackup");
            assert_int_equal(json_integer_value(json_object_get(e, "step")), step0 + 1);
        }
    }
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "drain", NULL), 0);
    assert_int_equal(sc.host.ninst, 5);
    assert_string_equal(check_name_at(&sc, 3), name3);
    assert_string_equal(check_name_at(&sc, 4), name4);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, primary);
    check_streaming(&sc, 4);
    check_sync_set(&sc, (const int[]){1, 2, 3, 4}, 4);
    check_topology(&sc, NULL, 0);
    check_writes(&sc, "after 3 -> 5");
}

/* ---- a new standby joins the synchronous set only once it streams ------------------------ */

static char fault_target[128];
static int closed_port;

/* Fault injector (phost after_create): the new standby `fault_target` is pointed at a port
 * nothing listens on, and stops streaming from the primary (its walreceiver restarts on the
 * reload with the new primary_conninfo and keeps failing). */
static int point_at_closed_port(struct phost *h, struct phost_object *o, void *ctx)
{
    char sql[300];
    (void)ctx;
    if (strcmp(o->name, fault_target) != 0)
        return 0;
    (void)snprintf(sql, sizeof(sql),
                   "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres "
                   "connect_timeout=2'",
                   closed_port);
    if (pg_sql(&h->shard, o->node, sql, 5000, NULL, 0) != 0 ||
        pg_sql(&h->shard, o->node, "SELECT pg_reload_conf()", 5000, NULL, 0) != 0)
        return -1;
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s'",
                   o->name);
    print_message("fault: %s points at the closed port %d\n", o->name, closed_port);
    return pg_sql_wait(&h->shard, h->primary, sql, "0", 20000);
}

static void test_scale_up_joins_only_when_streaming(void **st)
{
    (void)st;
    char name3[128], name4[128], sql[300];
    check_name_for_index(&sc, 0, 3, name3, sizeof(name3));
    check_name_for_index(&sc, 0, 4, name4, sizeof(name4));
    (void)snprintf(fault_target, sizeof(fault_target), "%s", name4);
    closed_port = dhost_free_port(); /* bound, read and closed: nothing listens there */
    assert_true(closed_port > 0);
    sc.host.after_create = point_at_closed_port;
    /* not declared a fault to the observer: named while not streaming fails the step */
    json_decref(check_resize(&sc, 3, 5, 0));

    /* step until -3 has joined; -4 exists, answers, and never joins */
    int64_t deadline = scenario_now_ms() + 30000;
    do {
        check_step(&sc, "3 -> 5 with -4 pointed away");
        if (!named(name3))
            pause_ms(150);
    } while (!named(name3) && scenario_now_ms() < deadline);
    assert_true(named(name3));
    for (int extra = 0; extra < 3; extra++) {
        assert_non_null(phost_instance(&sc.host, name4));
        assert_false(named(name4));
        /* mgo_converge says why (docs/abi.md "mgo_converge": `waiting`) */
        const json_t *waiting = json_object_get(sc.host.last_converge, "waiting"), *w;
        size_t k;
        int listed = 0;
        json_array_foreach (waiting, k, w)
            if (strcmp(json_string_value(json_object_get(w, "instance")), name4) == 0) {
                listed = 1;
                assert_non_null(
                    strstr(json_string_value(json_object_get(w, "reason")), "not streaming"));
            }
        assert_true(listed);
        assert_false(json_is_true(json_object_get(sc.host.last_converge, "converged")));
        check_step(&sc, "-4 still pointed away");
        pause_ms(100);
    }
    assert_false(named(name4));

    /* repoint it at the primary: it streams, then joins */
    struct phost_object *o = phost_instance(&sc.host, name4);
    assert_non_null(o);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    (void)snprintf(sql, sizeof(sql),
                   "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres'",
                   sc.host.shard.nodes[sc.host.primary].port);
    assert_int_equal(pg_sql(&sc.host.shard, o->node, sql, 5000, NULL, 0), 0);
    assert_int_equal(pg_sql(&sc.host.shard, o->node, "SELECT pg_reload_conf()", 5000, NULL, 0), 0);
    size_t mark = json_array_size(sc.host.log);
    check_converge(&sc, 60000, "-4 repointed");
    /* the first observation that names it shows it streaming (the observer checks every one) */
    char needle[140];
    (void)snprintf(needle, sizeof(needle), ",%s,", name4);
    int seen = 0;
    for (size_t k = mark; k < json_array_size(sc.host.log) && !seen; k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        const char *ssn = json_string_value(json_object_get(e, "ssn"));
        if (strcmp(json_string_value(json_object_get(e, "op")), "watch") != 0 ||
            !strstr(ssn, name4))
            continue;
        seen = 1;
        assert_non_null(strstr(json_string_value(json_object_get(e, "streaming")), needle));
    }
    assert_true(seen);
    check_streaming(&sc, 4);
    check_sync_set(&sc, (const int[]){1, 2, 3, 4}, 4);
    check_writes(&sc, "after -4 joined");
}

/* ---- scale down ------------------------------------------------------------------------- */

static void test_scale_down(void **st)
{
    (void)st;
    char primary[64], removed[3][64];
    const char *names[3];
    pid_t pids[3];
    int ports[3];
    struct writer_stats before;
    for (int i = 0; i < 3; i++) {
        struct phost_object *o = phost_instance_at(&sc.host, 4 - i);
        assert_non_null(o);
        (void)snprintf(removed[i], sizeof(removed[i]), "%s", o->name);
        names[i] = removed[i];
        pids[i] = sc.host.shard.nodes[o->node].pid;
        ports[i] = sc.host.shard.nodes[o->node].port;
        assert_true(pids[i] > 0);
    }
    (void)snprintf(primary, sizeof(primary), "%s", check_name_at(&sc, 0));
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, primary);
    json_t *plan = check_resize(&sc, 5, 2, 0);
    size_t mark = json_array_size(sc.host.log);
    int acks = sc.ack_checks, after_deletes = sc.delete_checks;
    writer_get_stats(sc.writer, &before);
    /* while the first drain is pending (the host holds drains for two steps), no other starts */
    sc.host.hold_drains = 1;
    for (int k = 0; k < 2; k++) {
        check_step(&sc, "5 -> 2, drains held");
        for (int i = 0; i < 5; i++) {
            const char *state = json_string_value(json_object_get(
                phost_instance_at(&sc.host, i)->annotations, "drain.multigres.com/state"));
            if (i == 4)
                assert_string_equal(state ? state : "(none)", "requested");
            else if (state)
                fail_msg("instance %d's drain is %s while -4's is pending", i, state);
        }
    }
    sc.host.hold_drains = 0;
    check_converge(&sc, 60000, "5 -> 2");
    check_no_failed_commits(&sc, &before, "5 -> 2");

    /* one at a time, highest index first (lifecycle.md "Scale down"), as the plan said:
     * all standbys and ready, volumes deleted (whenScaled unset) */
    check_one_at_a_time(&sc, mark, names, 3);
    assert_int_equal(json_array_size(json_object_get(plan, "create")), 0);
    check_plan_drains(plan, names, (const char *const[]){"standby", "standby", "standby"},
                      (const int[]){1, 1, 1}, 3);
    json_decref(plan);
    /* the observer read the primary when each drain persisted `acknowledged`, and after each
     * delete before mgo_converge ran */
    assert_int_equal(sc.ack_checks - acks, 3);
    assert_int_equal(sc.delete_checks - after_deletes, 3);
    /* the primary stayed, the survivors are indexes 0 and 1 */
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, primary);
    assert_int_equal(sc.host.ninst, 2);
    assert_non_null(phost_instance_at(&sc.host, 0));
    assert_non_null(phost_instance_at(&sc.host, 1));
    assert_int_equal(sc.host.nvol, 2);
    for (int i = 0; i < 3; i++) {
        char conninfo[128], dir[700];
        /* its process gone, its data directory removed (whenScaled Delete) in the pass that
         * deleted it (lifecycle.md "How a reconcile pass decides" 3) */
        assert_int_equal(scenario_count_ops(&sc, mark, "remove-volume", removed[i]), 1);
        const json_t *del =
            json_array_get(sc.host.log, (size_t)scenario_first_op(&sc, mark, "delete", removed[i]));
        const json_t *rm = json_array_get(
            sc.host.log, (size_t)scenario_first_op(&sc, mark, "remove-volume", removed[i]));
        assert_int_equal(json_integer_value(json_object_get(rm, "step")),
                         json_integer_value(json_object_get(del, "step")));
        assert_int_equal(kill(pids[i], 0), -1);
        assert_int_equal(errno, ESRCH);
        (void)snprintf(conninfo, sizeof(conninfo),
                       "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2",
                       ports[i]);
        assert_int_equal(PQping(conninfo), PQPING_NO_RESPONSE);
        (void)snprintf(dir, sizeof(dir), "%s/instances/%s", sc.host.shard.dir, removed[i]);
        assert_int_equal(access(dir, F_OK), -1);
    }
    /* gone from the topology: read from etcd itself (docs/abi.md "mgo_converge" 4) */
    check_topology(&sc, names, 3);
    check_streaming(&sc, 1);
    check_sync_set(&sc, (const int[]){1}, 1);
    check_writes(&sc, "after 5 -> 2");
}

/* ---- the observer can fail a step -------------------------------------------------------- */

/* A name in the primary's synchronous_standby_names that streams from nowhere (written by hand)
 * fails its SQL check (mgo_observe leaves names that are no node of the shard unreported:
 * docs/abi.md); the host then puts it right (mgo_converge keeps only named standbys that still
 * exist). A standby whose drain is `acknowledged` (set by hand) while still named fails it.
 * Two primaries fail it even while a switchover is allowed and under way. */
static void test_observer_fails_a_step(void **st)
{
    (void)st;
    char sql[512], value[300];
    (void)snprintf(value, sizeof(value), "ANY 1 (\"%s\", \"ghost\")", check_name_at(&sc, 1));
    (void)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = '%s'", value);
    assert_int_equal(scenario_sql(&sc, 0, sql, NULL, 0), 0);
    assert_int_equal(scenario_sql(&sc, 0, "SELECT pg_reload_conf()", NULL, 0), 0);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_int_equal(
        pg_sql_wait(&sc.host.shard, sc.host.primary, "SHOW synchronous_standby_names", value, 5000),
        0);
    assert_int_equal(scenario_watch(&sc.host, &sc), -1);
    print_message("the observer: %s\n", sc.violation);
    assert_non_null(strstr(sc.violation, "ghost is named"));
    sc.violation[0] = '\0';
    check_converge(&sc, 30000, "after the ghost");
    check_sync_set(&sc, (const int[]){1, 2}, 2);

    /* named though acknowledged */
    struct phost_object *o = phost_instance_at(&sc.host, 2);
    assert_non_null(o);
    json_object_set_new(o->annotations, "drain.multigres.com/state", json_string("acknowledged"));
    char now[40];
    time_t t = time(NULL);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    assert_true(strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0);
    json_object_set_new(o->annotations, "drain.multigres.com/requested-at", json_string(now));
    assert_int_equal(scenario_watch(&sc.host, &sc), -1);
    print_message("the observer: %s\n", sc.violation);
    assert_non_null(strstr(sc.violation, "though its drain is acknowledged"));
    sc.violation[0] = '\0';
    json_object_del(o->annotations, "drain.multigres.com/state");
    json_object_del(o->annotations, "drain.multigres.com/requested-at");
    assert_int_equal(scenario_watch(&sc.host, &sc), 0);
    check_writes(&sc, "before the second primary");

    /* two primaries: never a transient, even with a switchover annotation present */
    sc.allow_switchover = 1;
    o = phost_instance_at(&sc.host, 0);
    json_object_set_new(o->annotations, "drain.multigres.com/switchover",
                        json_string("fenced:elsewhere"));
    assert_int_equal(scenario_sql(&sc, 2, "SELECT pg_promote(true, 60)", value, sizeof(value)), 0);
    assert_string_equal(value, "t");
    int transients = sc.transients;
    assert_int_equal(scenario_watch(&sc.host, &sc), -1);
    print_message("the observer: %s\n", sc.violation);
    assert_true(strstr(sc.violation, "2 instances answer as a primary") ||
                strstr(sc.violation, "one-primary"));
    assert_int_equal(sc.transients, transients);
    /* the cluster is left broken: teardown stops it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bring_up, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_scale_up, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_scale_up_joins_only_when_streaming, setup3, teardown),
        cmocka_unit_test_setup_teardown(test_scale_down, setup5, teardown),
        cmocka_unit_test_setup_teardown(test_observer_fails_a_step, setup3, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
