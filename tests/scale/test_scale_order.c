/*
 * The order and the gates of a scale-down (issue 6) on real PostgreSQL 15 and etcd, through the
 * tests' process host (phost.c), each test on its own cluster of five instances (cluster.yaml
 * sized 5) under a writer committing continuously, the observer (scenario.h) after every step:
 *   - a drain still `requested` is cancelled when the scale-down is reverted: annotations
 *     removed, a DrainCancelled event, the instance untouched; one reverted at `draining`
 *     completes, and the instance is recreated on its own volume (lifecycle.md "Deadline and
 *     cancellation");
 *   - the victim is never the primary while another candidate exists: with index 4 the primary,
 *     5 -> 2 drains -3, -2, then -4 through a planned switchover (lifecycle.md "Scale down" 3);
 *   - the health gate: while a staying standby is down nothing is requested and
 *     ScaleDownBlocked is reported; once it is back the scale-down proceeds (ibid. 2);
 *   - a candidate that is not ready goes before the ready ones (ibid. 3).
 * Expected values from docs/spec/lifecycle.md and docs/abi.md ("mgo_reconcile" events,
 * "mgo_scale" plan fields: drain order, role, ready, waiting_for).
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

#include "checks.h"

#define STATE_KEY        "drain.multigres.com/state"
#define REQUESTED_AT_KEY "drain.multigres.com/requested-at"

static struct scenario sc;

static int setup5(void **st)
{
    (void)st;
    if (scenario_start_at(&sc, SCALE_MANIFEST, 5) != 0) {
        fprintf(stderr, "setup: %s\n", sc.host.error);
        scenario_stop(&sc);
        return -1;
    }
    print_message("bring-up of 5 instances: %lld ms\n", (long long)sc.bring_up_ms);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    scenario_stop(&sc);
    return 0;
}

static const char *annotation(const char *name, const char *key)
{
    struct phost_object *o = phost_instance(&sc.host, name);
    assert_non_null(o);
    return json_string_value(json_object_get(o->annotations, key));
}

/* Events of `reason` regarding `name` since event `mark`. */
static int count_events(size_t mark, const char *reason, const char *name)
{
    int n = 0;
    for (size_t k = mark; k < json_array_size(sc.host.events); k++) {
        const json_t *e = json_array_get(sc.host.events, k);
        const char *r = json_string_value(json_object_get(e, "reason"));
        const char *about =
            json_string_value(json_object_get(json_object_get(e, "regarding"), "name"));
        n += r && about && strcmp(r, reason) == 0 && strcmp(about, name) == 0;
    }
    return n;
}

/* The instance streams from the primary (pg_stat_replication there). */
static void assert_streams(const char *name)
{
    char sql[300];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' AND "
                   "state = 'streaming'",
                   name);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_int_equal(pg_sql_wait(&sc.host.shard, sc.host.primary, sql, "1", 30000), 0);
}

/* ---- cancellation ----------------------------------------------------------------------- */

static void test_cancel_reverted_while_requested(void **st)
{
    (void)st;
    char name4[64], started[64], again[64];
    struct writer_stats before;
    (void)snprintf(name4, sizeof(name4), "%s", check_name_at(&sc, 4));
    struct phost_object *o = phost_instance(&sc.host, name4);
    pid_t pid = sc.host.shard.nodes[o->node].pid;
    assert_int_equal(
        scenario_sql(&sc, 4, "SELECT pg_postmaster_start_time()::text", started, sizeof(started)),
        0);
    size_t mark = json_array_size(sc.host.log), events = json_array_size(sc.host.events);
    writer_get_stats(sc.writer, &before);

    /* 5 -> 4 with the host holding drains for a step: the drain is requested, nothing more */
    sc.host.hold_drains = 1;
    assert_int_equal(scenario_edit(&sc, "replicasPerCell: 5", "replicasPerCell: 4"), 0);
    check_step(&sc, "5 -> 4, drains held");
    assert_non_null(annotation(name4, STATE_KEY));
    assert_string_equal(annotation(name4, STATE_KEY), "requested");
    assert_non_null(annotation(name4, REQUESTED_AT_KEY));
    for (int i = 0; i < 4; i++)
        assert_null(annotation(check_name_at(&sc, i), STATE_KEY));
    assert_int_equal(count_events(events, "DrainStarted", name4), 1);

    /* reverted before the drain began: cancelled, both annotations removed */
    sc.host.hold_drains = 0;
    assert_int_equal(scenario_edit(&sc, "replicasPerCell: 4", "replicasPerCell: 5"), 0);
    check_step(&sc, "reverted to 5");
    assert_null(annotation(name4, STATE_KEY));
    assert_null(annotation(name4, REQUESTED_AT_KEY));
    assert_int_equal(count_events(events, "DrainCancelled", name4), 1);
    check_converge(&sc, 30000, "after the revert");
    check_no_failed_commits(&sc, &before, "the reverted scale-down");

    /* the instance was never touched: no drain step, stop, delete or create; same postmaster */
    assert_int_equal(scenario_count_ops(&sc, mark, "drain", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "stop", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "create", NULL), 0);
    o = phost_instance(&sc.host, name4);
    assert_non_null(o);
    assert_int_equal(sc.host.shard.nodes[o->node].pid, pid);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(
        scenario_sql(&sc, 4, "SELECT pg_postmaster_start_time()::text", again, sizeof(again)), 0);
    assert_string_equal(again, started);
    /* still named and streaming */
    assert_streams(name4);
    check_sync_set(&sc, (const int[]){1, 2, 3, 4}, 4);
    check_writes(&sc, "after the cancelled drain");
}

static ino_t pg_version_inode(struct phost_object *o)
{
    char path[700];
    struct stat stbuf;
    (void)snprintf(path, sizeof(path), "%s/PG_VERSION", sc.host.shard.nodes[o->node].datadir);
    assert_int_equal(stat(path, &stbuf), 0);
    return stbuf.st_ino;
}

static void test_revert_while_draining_completes(void **st)
{
    (void)st;
    char name4[64];
    struct writer_stats before;
    (void)snprintf(name4, sizeof(name4), "%s", check_name_at(&sc, 4));
    struct phost_object *o = phost_instance(&sc.host, name4);
    pid_t pid = sc.host.shard.nodes[o->node].pid;
    ino_t inode = pg_version_inode(o);
    size_t mark = json_array_size(sc.host.log), events = json_array_size(sc.host.events);
    writer_get_stats(sc.writer, &before);

    /* 5 -> 4, one mgo_drain call: requested, then draining */
    sc.host.drain_call_limit = 1;
    assert_int_equal(scenario_edit(&sc, "replicasPerCell: 5", "replicasPerCell: 4"), 0);
    check_step(&sc, "5 -> 4, one drain call");
    assert_non_null(annotation(name4, STATE_KEY));
    assert_string_equal(annotation(name4, STATE_KEY), "draining");

    /* reverted once the drain began: it completes, then -4 comes back on its own volume */
    sc.host.drain_call_limit = 0;
    assert_int_equal(scenario_edit(&sc, "replicasPerCell: 4", "replicasPerCell: 5"), 0);
    check_converge(&sc, 60000, "reverted at draining");
    check_no_failed_commits(&sc, &before, "the scale-down reverted at draining");
    assert_int_equal(count_events(events, "DrainCancelled", name4), 0);
    assert_true(check_drain_went_through(&sc, mark, name4, "acknowledged"));
    assert_true(check_drain_went_through(&sc, mark, name4, "ready-for-deletion"));
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", NULL), 1);
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", name4), 1);
    assert_int_equal(scenario_count_ops(&sc, mark, "create", NULL), 1);
    assert_int_equal(scenario_count_ops(&sc, mark, "remove-volume", NULL), 0);
    int deleted = scenario_first_op(&sc, mark, "delete", name4);
    int created = scenario_first_op(&sc, mark, "create", name4);
    assert_true(deleted < created);
    const char *how =
        json_string_value(json_object_get(json_array_get(sc.host.log, (size_t)created), "how"));
    print_message("%s: deleted at log %d, created again (%s) at log %d\n", name4, deleted, how,
                  created);
    assert_string_equal(how, "volume"); /* a standby's volume: no rewind */
    o = phost_instance(&sc.host, name4);
    assert_non_null(o);
    assert_int_not_equal(sc.host.shard.nodes[o->node].pid, pid);
    assert_true(pg_version_inode(o) == inode); /* the same data directory, not a new copy */
    assert_int_equal(sc.host.ninst, 5);
    assert_null(annotation(name4, STATE_KEY));
    assert_streams(name4);
    check_streaming(&sc, 4);
    check_sync_set(&sc, (const int[]){1, 2, 3, 4}, 4);
    check_writes(&sc, "after -4 came back");
}

/* ---- the victim is never the primary while another candidate exists ----------------------- */

/* A switchover by hand, with the harness (lifecycle.md "Drain of the primary" as a script):
 * the new primary `to` gets the other standbys as its synchronous set, the old `from` stops
 * cleanly, `to` replays past its last checkpoint and is promoted, the others are repointed, and
 * `from` rejoins as a standby of `to`. */
static void switch_primary_by_hand(int from, int to)
{
    struct phost *h = &sc.host;
    struct phost_object *a = phost_instance_at(h, from), *b = phost_instance_at(h, to);
    char names[600] = "", sql[800], lsn[64], out[64];
    assert_true(a && b);
    for (int i = 0, k = 0; i < 8; i++) {
        struct phost_object *c = phost_instance_at(h, i);
        if (!c || c == a || c == b)
            continue;
        size_t used = strlen(names);
        (void)snprintf(names + used, sizeof(names) - used, "%s\"%s\"", k++ ? ", " : "", c->name);
    }
    (void)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (%s)'",
                   names);
    assert_int_equal(pg_sql(&h->shard, b->node, sql, 5000, NULL, 0), 0);
    assert_int_equal(pg_sql(&h->shard, b->node, "SELECT pg_reload_conf()", 5000, NULL, 0), 0);
    assert_int_equal(pg_node_stop(&h->shard, a->node, "fast"), 0);
    assert_int_equal(
        pg_node_controldata(&h->shard, a->node, "Latest checkpoint location", lsn, sizeof(lsn)), 0);
    (void)snprintf(sql, sizeof(sql), "SELECT pg_last_wal_replay_lsn() > '%s'::pg_lsn", lsn);
    assert_int_equal(pg_sql_wait(&h->shard, b->node, sql, "t", 30000), 0);
    assert_int_equal(
        pg_sql(&h->shard, b->node, "SELECT pg_promote(true, 60)", 70000, out, sizeof(out)), 0);
    assert_string_equal(out, "t");
    (void)snprintf(sql, sizeof(sql),
                   "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres'",
                   h->shard.nodes[b->node].port);
    for (int i = 0; i < h->ninst; i++) {
        struct phost_object *c = &h->inst[i];
        if (c == a || c == b)
            continue;
        assert_int_equal(pg_sql(&h->shard, c->node, sql, 5000, NULL, 0), 0);
        assert_int_equal(pg_sql(&h->shard, c->node, "SELECT pg_reload_conf()", 5000, NULL, 0), 0);
    }
    assert_int_equal(dhost_rejoin(&h->shard, a->node, b->node), 0);
    char count[16];
    (void)snprintf(count, sizeof(count), "%d", h->ninst - 1);
    assert_int_equal(pg_sql_wait(&h->shard, b->node,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 count, 30000),
                     0);
    phost_follow(h, sc.writer);
    assert_int_equal(h->primary, b->node);
    print_message("switched by hand: %s -> %s\n", a->name, b->name);
}

static void test_victim_never_the_primary(void **st)
{
    (void)st;
    char names[3][64];
    for (int i = 0; i < 3; i++) /* -3, -2, then the primary -4 */
        (void)snprintf(names[i], sizeof(names[i]), "%s", check_name_at(&sc, i == 2 ? 4 : 3 - i));
    const char *order[3] = {names[0], names[1], names[2]};
    switch_primary_by_hand(0, 4);
    check_converge(&sc, 30000, "after the switchover by hand");
    check_topology(&sc, NULL, 0); /* -4's record says PRIMARY now */
    check_writes(&sc, "after the switchover by hand");

    json_t *plan = check_resize(&sc, 5, 2, 0);
    size_t mark = json_array_size(sc.host.log);
    sc.allow_switchover = 1;
    check_converge(&sc, 90000, "5 -> 2 with -4 the primary");
    sc.allow_switchover = 0;
    if (sc.transients)
        print_message("transients during the switchover:\n%s", sc.transient_log);
    check_one_at_a_time(&sc, mark, order, 3);
    /* as mgo_scale planned it, the primary last */
    check_plan_drains(plan, order, (const char *const[]){"standby", "standby", "primary"},
                      (const int[]){1, 1, 1}, 3);
    json_decref(plan);
    /* the primary went last, through a planned switchover */
    assert_false(check_drain_went_through(&sc, mark, names[0], "fenced:"));
    assert_false(check_drain_went_through(&sc, mark, names[1], "fenced:"));
    assert_true(check_drain_went_through(&sc, mark, names[2], "fenced:"));
    assert_true(check_drain_went_through(&sc, mark, names[2], "promoting:"));
    /* transients only within that switchover: from its request to its delete */
    int from = json_integer_value(json_object_get(
            json_array_get(sc.host.log, (size_t)check_requested_at(&sc, mark, names[2])), "step")),
        to = json_integer_value(json_object_get(
            json_array_get(sc.host.log, (size_t)scenario_first_op(&sc, mark, "delete", names[2])),
            "step"));
    for (size_t k = mark; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        long step = (long)json_integer_value(json_object_get(e, "step"));
        if (strcmp(json_string_value(json_object_get(e, "op")), "transient") == 0 &&
            (step < from || step > to))
            fail_msg("a transient at step %ld, outside the switchover (steps %d to %d)", step, from,
                     to);
    }
    assert_int_equal(sc.host.ninst, 2);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    const char *now = sc.host.shard.nodes[sc.host.primary].name;
    assert_true(strcmp(now, check_name_at(&sc, 0)) == 0 || strcmp(now, check_name_at(&sc, 1)) == 0);
    check_topology(&sc, order, 3);
    check_streaming(&sc, 1);
    check_writes(&sc, "after 5 -> 2");
}

/* ---- the health gate and not-ready candidates --------------------------------------------- */

static void test_health_gate(void **st)
{
    (void)st;
    char names[3][64], name1[64], sql[300];
    (void)snprintf(name1, sizeof(name1), "%s", check_name_at(&sc, 1));
    for (int i = 0; i < 3; i++)
        (void)snprintf(names[i], sizeof(names[i]), "%s", check_name_at(&sc, 4 - i));
    const char *order[3] = {names[0], names[1], names[2]};
    struct phost_object *o1 = phost_instance(&sc.host, name1);
    struct writer_stats before;
    writer_get_stats(sc.writer, &before);

    /* a standby that stays is down, and the host knows it */
    assert_int_equal(pg_node_stop(&sc.host.shard, o1->node, "fast"), 0);
    assert_int_equal(phost_set_ready(&sc.host, name1, 0), 0);
    assert_int_equal(scenario_fault(&sc, name1, 1), 0);
    json_t *plan = check_resize(&sc, 5, 2, -1);
    size_t mark = json_array_size(sc.host.log), events = json_array_size(sc.host.events);
    for (int i = 0; i < 3; i++)
        check_step(&sc, "5 -> 2 with -1 down");
    /* nothing requested, drained or deleted; blocked on every pass, naming the one it waits for */
    assert_int_equal(scenario_count_ops(&sc, mark, "annotate", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "drain", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", NULL), 0);
    assert_int_equal(sc.host.ninst, 5);
    assert_int_equal(count_events(events, "ScaleDownBlocked", names[0]), 3);
    for (size_t k = events; k < json_array_size(sc.host.events); k++) {
        const json_t *e = json_array_get(sc.host.events, k);
        if (strcmp(json_string_value(json_object_get(e, "reason")), "ScaleDownBlocked") == 0) {
            assert_string_equal(json_string_value(json_object_get(e, "eventType")), "Warning");
            assert_non_null(strstr(json_string_value(json_object_get(e, "message")), name1));
        }
    }
    assert_true(sc.faults > 0); /* the observer saw -1 named and not streaming, as injected */
    /* mgo_scale said what the gate waits for */
    const json_t *w = json_array_get(json_object_get(plan, "waiting_for"), 0);
    assert_int_equal(json_array_size(json_object_get(plan, "waiting_for")), 1);
    assert_string_equal(json_string_value(json_object_get(w, "name")), name1);
    assert_int_equal(json_integer_value(json_object_get(w, "index")), 1);
    assert_string_equal(json_string_value(json_object_get(w, "reason")), "not ready");
    check_plan_drains(plan, order, (const char *const[]){"standby", "standby", "standby"},
                      (const int[]){1, 1, 1}, 3);
    json_decref(plan);

    /* back: the scale-down proceeds, one at a time, highest index first */
    assert_int_equal(pg_node_start(&sc.host.shard, o1->node), 0);
    assert_int_equal(phost_set_ready(&sc.host, name1, 1), 0);
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' AND "
                   "state = 'streaming'",
                   name1);
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_int_equal(pg_sql_wait(&sc.host.shard, sc.host.primary, sql, "1", 30000), 0);
    assert_int_equal(scenario_fault(&sc, name1, 0), 0);
    check_converge(&sc, 60000, "5 -> 2 once -1 is back");
    check_no_failed_commits(&sc, &before, "5 -> 2 behind the gate");
    check_one_at_a_time(&sc, mark, order, 3);
    check_sync_set(&sc, (const int[]){1}, 1);
    check_topology(&sc, order, 3);
    check_writes(&sc, "after 5 -> 2 behind the gate");
}

static void test_not_ready_victim_first(void **st)
{
    (void)st;
    char n2[64], n3[64], n4[64];
    (void)snprintf(n2, sizeof(n2), "%s", check_name_at(&sc, 2));
    (void)snprintf(n3, sizeof(n3), "%s", check_name_at(&sc, 3));
    (void)snprintf(n4, sizeof(n4), "%s", check_name_at(&sc, 4));
    const char *order[3] = {n3, n4, n2};
    struct writer_stats before;
    writer_get_stats(sc.writer, &before);
    /* -3's readiness check fails (PostgreSQL still runs): it goes first */
    assert_int_equal(phost_set_ready(&sc.host, n3, 0), 0);
    json_t *plan = check_resize(&sc, 5, 2, 0);
    size_t mark = json_array_size(sc.host.log);
    check_converge(&sc, 60000, "5 -> 2 with -3 not ready");
    check_no_failed_commits(&sc, &before, "5 -> 2 with -3 not ready");
    check_one_at_a_time(&sc, mark, order, 3);
    check_plan_drains(plan, order, (const char *const[]){"standby", "standby", "standby"},
                      (const int[]){0, 1, 1}, 3);
    json_decref(plan);
    check_sync_set(&sc, (const int[]){1}, 1);
    check_writes(&sc, "after 5 -> 2 with -3 not ready");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cancel_reverted_while_requested, setup5, teardown),
        cmocka_unit_test_setup_teardown(test_revert_while_draining_completes, setup5, teardown),
        cmocka_unit_test_setup_teardown(test_victim_never_the_primary, setup5, teardown),
        cmocka_unit_test_setup_teardown(test_health_gate, setup5, teardown),
        cmocka_unit_test_setup_teardown(test_not_ready_victim_first, setup5, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
