/*
 * Scale up and down (issue 6) on real PostgreSQL 15 and etcd, through the tests' process host
 * (phost.c): the cluster of cluster.yaml (one pool, one cell, replicasPerCell 3, AT_LEAST_2)
 * brought up from mgo's process render, a writer committing continuously through the primary,
 * then replicasPerCell 3 -> 5 -> 2. The new size comes from mgo_scale's `spec` when the library
 * implements it (its plan is then checked against what the host did), otherwise from an edit
 * of the manifest text. After every step of the host the observer (scenario.h) runs
 * mgo_observe and its own SQL check; this test tolerates no violation at all: neither a
 * scale-up nor a standby's drain involves a switchover, so the shard keeps one primary and a
 * synchronous set of streaming standbys throughout.
 *
 * Expected values come from docs/spec/lifecycle.md (scale up: every missing instance in one
 * pass, seeded from the primary, named in the synchronous set only once it streams; scale
 * down: never the primary, highest index first, one at a time, volume per whenScaled, Delete
 * by default), docs/spec/render-process.md (names end with the index; bootstrap primary index
 * 0) and docs/abi.md (mgo_converge: ANY 1 over the standbys in the order of the nodes, pooler
 * records deleted with the instance; mgo_scale's plan fields).
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
#include <unistd.h>

#include <cmocka.h>

#include "checks.h"

static struct scenario sc;

static int setup(void **st)
{
    (void)st;
    if (scenario_start(&sc, SCALE_MANIFEST) != 0) {
        fprintf(stderr, "setup: %s\n", sc.host.error);
        return -1;
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    scenario_stop(&sc);
    return 0;
}

/* The instances whose drain was requested since `mark`, in order. */
static int drains_requested(size_t mark, char names[][64], int max)
{
    int n = 0;
    for (size_t k = mark; k < json_array_size(sc.host.log) && n < max; k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        const char *state = json_string_value(
            json_object_get(json_object_get(e, "annotations"), "drain.multigres.com/state"));
        if (strcmp(json_string_value(json_object_get(e, "op")), "annotate") == 0 && state &&
            strcmp(state, "requested") == 0)
            (void)snprintf(names[n++], 64, "%s", json_string_value(json_object_get(e, "instance")));
    }
    return n;
}

/* The name an instance of `index` gets: the pool's name stem (the name of index 0 without its
 * "-0") and the index (render-process.md "Instance"). */
static void name_for_index(int index, char *out, size_t size)
{
    const char *zero = check_name_at(&sc, 0);
    size_t stem = strlen(zero) - 2;
    assert_string_equal(zero + stem, "-0");
    (void)snprintf(out, size, "%.*s-%d", (int)stem, zero, index);
}

/* mgo_scale of pool main to `replicas` with the host's observed objects: the result, or NULL
 * when the library does not implement it (MGO_EUNSUPPORTED). */
static json_t *scale_plan(int replicas)
{
    json_t *req = json_pack("{s:s, s:i, s:o}", "pool", "main", "replicas", replicas, "observed",
                            phost_observed(&sc.host));
    if (sc.host.spec_object)
        json_object_set_new(req, "objects", json_pack("[O]", sc.host.spec_object));
    else
        json_object_set_new(
            req, "manifests",
            json_pack("[{s:s, s:s}]", "source", "cluster.yaml", "text", sc.host.spec_text));
    char *body = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_scale(sc.plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    if (rc == MGO_EUNSUPPORTED) {
        print_message("mgo_scale is not implemented: editing the manifest text instead\n");
        json_decref(r);
        return NULL;
    }
    char *dump = json_dumps(r, JSON_COMPACT);
    if (rc != MGO_OK)
        print_error("mgo_scale: %d %s\n", rc, dump ? dump : "");
    free(dump);
    assert_int_equal(rc, MGO_OK);
    return r;
}

/* Resize to `to` from `from`: through mgo_scale's spec, or by editing the text. The plan, or
 * NULL. The plan's common fields are checked against docs/abi.md "mgo_scale". */
static json_t *resize(int from, int to)
{
    json_t *plan = scale_plan(to);
    if (!plan) {
        char a[64], b[64];
        (void)snprintf(a, sizeof(a), "replicasPerCell: %d", from);
        (void)snprintf(b, sizeof(b), "replicasPerCell: %d", to);
        assert_int_equal(scenario_edit(&sc, a, b), 0);
        return NULL;
    }
    assert_string_equal(json_string_value(json_object_get(plan, "cluster")), "t");
    assert_string_equal(json_string_value(json_object_get(plan, "pool")), "main");
    assert_int_equal(json_integer_value(json_object_get(plan, "from")), from);
    assert_int_equal(json_integer_value(json_object_get(plan, "to")), to);
    /* cluster.yaml's shard has an inline spec: the size is written there */
    assert_string_equal(json_string_value(json_object_get(plan, "path")),
                        "spec.databases[0].tablegroups[0].shards[0].spec.pools[main]."
                        "replicasPerCell");
    assert_int_equal(json_array_size(json_object_get(plan, "cells")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(plan, "cells"), 0)), "z1");
    const json_t *spec = json_object_get(plan, "spec");
    const json_t *pool = json_object_get(
        json_object_get(
            json_object_get(
                json_array_get(
                    json_object_get(
                        json_array_get(
                            json_object_get(
                                json_array_get(
                                    json_object_get(json_object_get(spec, "spec"), "databases"), 0),
                                "tablegroups"),
                            0),
                        "shards"),
                    0),
                "spec"),
            "pools"),
        "main");
    assert_int_equal(json_integer_value(json_object_get(pool, "replicasPerCell")), to);
    assert_int_equal(json_array_size(json_object_get(plan, "waiting_for")), 0);
    assert_int_equal(phost_set_spec_object(&sc.host, spec), 0);
    return plan;
}

static void test_bring_up(void **st)
{
    (void)st;
    char out[256];
    print_message("bring-up: %lld ms\n", (long long)sc.bring_up_ms);
    assert_int_equal(sc.host.ninst, 3);
    assert_int_equal(sc.host.nvol, 3);
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
    json_t *poolers = phost_list_poolers(&sc.host);
    assert_non_null(poolers);
    assert_int_equal(json_array_size(poolers), 3);
    json_decref(poolers);
    check_writes(&sc, "after the bring-up");
}

static void test_scale_up(void **st)
{
    (void)st;
    char primary[64], name3[128], name4[128];
    (void)snprintf(primary, sizeof(primary), "%s", check_name_at(&sc, 0));
    name_for_index(3, name3, sizeof(name3));
    name_for_index(4, name4, sizeof(name4));
    json_t *plan = resize(3, 5);
    if (plan) {
        const json_t *create = json_object_get(plan, "create");
        assert_int_equal(json_array_size(create), 2);
        assert_int_equal(json_array_size(json_object_get(plan, "drain")), 0);
        for (size_t k = 0; k < 2; k++) {
            const json_t *c = json_array_get(create, k);
            assert_string_equal(json_string_value(json_object_get(c, "name")),
                                k == 0 ? name3 : name4);
            assert_string_equal(json_string_value(json_object_get(c, "cell")), "z1");
            assert_int_equal(json_integer_value(json_object_get(c, "index")), (int)k + 3);
        }
    }
    size_t mark = json_array_size(sc.host.log);
    int step0 = sc.host.steps;
    check_converge(&sc, 120000, "3 -> 5");
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
    json_decref(plan);
    check_writes(&sc, "after 3 -> 5");
}

static void test_scale_down(void **st)
{
    (void)st;
    char primary[64], removed[3][64];
    pid_t pids[3];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        struct phost_object *o = phost_instance_at(&sc.host, 4 - i);
        assert_non_null(o);
        (void)snprintf(removed[i], sizeof(removed[i]), "%s", o->name);
        pids[i] = sc.host.shard.nodes[o->node].pid;
        ports[i] = sc.host.shard.nodes[o->node].port;
        assert_true(pids[i] > 0);
    }
    (void)snprintf(primary, sizeof(primary), "%s", check_name_at(&sc, 0));
    json_t *plan = resize(5, 2);
    if (plan) {
        /* highest index first, all standbys and ready, volumes deleted (whenScaled unset) */
        const json_t *drain = json_object_get(plan, "drain");
        assert_int_equal(json_array_size(json_object_get(plan, "create")), 0);
        assert_int_equal(json_array_size(drain), 3);
        for (size_t k = 0; k < 3; k++) {
            const json_t *d = json_array_get(drain, k);
            assert_string_equal(json_string_value(json_object_get(d, "name")), removed[k]);
            assert_int_equal(json_integer_value(json_object_get(d, "index")), 4 - (int)k);
            assert_string_equal(json_string_value(json_object_get(d, "pool")), "main");
            assert_string_equal(json_string_value(json_object_get(d, "cell")), "z1");
            assert_true(json_is_true(json_object_get(d, "ready")));
            assert_string_equal(json_string_value(json_object_get(d, "role")), "standby");
            assert_string_equal(json_string_value(json_object_get(d, "volume")), "Delete");
        }
    }
    size_t mark = json_array_size(sc.host.log);
    check_converge(&sc, 150000, "5 -> 2");

    /* one at a time, highest index first (lifecycle.md "Scale down") */
    char order[8][64];
    assert_int_equal(drains_requested(mark, order, 8), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(order[i], removed[i]);
    /* the primary stayed, the survivors are indexes 0 and 1 */
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, primary);
    assert_int_equal(sc.host.ninst, 2);
    assert_non_null(phost_instance_at(&sc.host, 0));
    assert_non_null(phost_instance_at(&sc.host, 1));
    assert_int_equal(sc.host.nvol, 2);
    json_t *poolers = phost_list_poolers(&sc.host);
    assert_non_null(poolers);
    assert_int_equal(json_array_size(poolers), 2);
    for (int i = 0; i < 3; i++) {
        char conninfo[128], dir[700], key[128];
        /* deleted once, its process gone, its data directory removed (whenScaled Delete) */
        assert_int_equal(scenario_count_ops(&sc, mark, "delete", removed[i]), 1);
        assert_int_equal(scenario_count_ops(&sc, mark, "remove-volume", removed[i]), 1);
        assert_int_equal(kill(pids[i], 0), -1);
        assert_int_equal(errno, ESRCH);
        (void)snprintf(conninfo, sizeof(conninfo),
                       "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2",
                       ports[i]);
        assert_int_equal(PQping(conninfo), PQPING_NO_RESPONSE);
        (void)snprintf(dir, sizeof(dir), "%s/instances/%s", sc.host.shard.dir, removed[i]);
        assert_int_equal(access(dir, F_OK), -1);
        /* its pooler record went with it (docs/abi.md "mgo_converge", 4) */
        (void)snprintf(key, sizeof(key), "/poolers/multipooler-z1-%s/Pooler", removed[i]);
        size_t k;
        json_t *p;
        json_array_foreach (poolers, k, p)
            assert_null(strstr(json_string_value(json_object_get(p, "key")), key));
    }
    json_decref(poolers);
    if (plan) {
        const json_t *drain = json_object_get(plan, "drain");
        for (size_t k = 0; k < 3; k++)
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(drain, k), "name")), order[k]);
    }
    json_decref(plan);
    check_streaming(&sc, 1);
    check_sync_set(&sc, (const int[]){1}, 1);
    assert_int_equal(sc.transients, 0);
    check_writes(&sc, "after 5 -> 2");
}

/* The observer can fail a step: a name in the primary's synchronous_standby_names that streams
 * from nowhere (written by hand) fails its SQL check (mgo_observe leaves names that are no
 * node of the shard unreported: docs/abi.md). The host then puts it right: mgo_converge keeps
 * only named standbys that still exist (docs/abi.md "mgo_converge" 3). */
static void test_observer_fails_a_step_on_a_broken_sync_set(void **st)
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
    check_sync_set(&sc, (const int[]){1}, 1);
    check_writes(&sc, "after the ghost");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bring_up),
        cmocka_unit_test(test_scale_up),
        cmocka_unit_test(test_scale_down),
        cmocka_unit_test(test_observer_fails_a_step_on_a_broken_sync_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
