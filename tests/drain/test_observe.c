/*
 * mgo_observe on a real shard (n0 primary, n1 and n2 under "ANY 1 (n1, n2)"): expected
 * invariants and evidence from docs/abi.md "mgo_observe". A healthy shard is ok; a named
 * standby that is down is reported, and once both are down so is the durability policy; a drain
 * past its deadline (by the host's clock) is reported; two primaries are reported; bad requests
 * get the exact error and probe nothing.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgo/mgo.h"
#include "pg_harness.h"

static struct pg_shard shard;
static mgo_plugin *plugin;
static int64_t clock_ms; /* the host's clock: 2026-11-26T12:00:00Z */

static int64_t host_now(void *user)
{
    (void)user;
    return clock_ms;
}

/* One observation; the result (decref it) and the status in *rc. `extra` is JSON for node 2. */
static json_t *observe(const char *extra, int32_t *rc)
{
    char req[4096], ci[3][256], *res = NULL;
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        pg_node_conninfo(&shard, i, ci[i], sizeof(ci[i]));
    (void)snprintf(req, sizeof(req),
                   "{\"deadline_ms\": 5000, \"shards\": [{\"name\": \"postgres/default/0-inf\", "
                   "\"nodes\": [{\"name\": \"n0\", \"conninfo\": \"%s\"}, {\"name\": \"n1\", "
                   "\"conninfo\": \"%s\"}, {\"name\": \"n2\", \"conninfo\": \"%s\"%s}]}]}",
                   ci[0], ci[1], ci[2], extra ? extra : "");
    *rc = mgo_observe(plugin, req, strlen(req), &res, &len);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    char *dump = json_dumps(r, JSON_COMPACT);
    print_message("observe: %d %s\n", *rc, dump ? dump : "");
    free(dump);
    return r;
}

/* How many violations of `invariant` (for `instance` when not NULL) the result lists. */
static int count(const json_t *r, const char *invariant, const char *instance)
{
    size_t i;
    json_t *v;
    int n = 0;
    json_array_foreach (json_object_get(r, "violations"), i, v)
        if (strcmp(json_string_value(json_object_get(v, "invariant")), invariant) == 0 &&
            (!instance ||
             (json_string_value(json_object_get(v, "instance")) &&
              strcmp(json_string_value(json_object_get(v, "instance")), instance) == 0)))
            n++;
    return n;
}

static const json_t *node(const json_t *r, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(json_array_get(json_object_get(r, "shards"), 0), "nodes"),
                        i, e)
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0)
            return e;
    return NULL;
}

static int setup(void **st)
{
    (void)st;
    clock_ms = 1795694400000LL; /* 2026-11-26T12:00:00Z */
    if (pg_shard_start(&shard, 2, "ANY 1 (n1, n2)") != 0)
        return -1;
    mgo_host host = {
        .struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION, .now_ms = host_now};
    return mgo_open(&host, &plugin) == MGO_OK ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    mgo_close(plugin);
    pg_shard_stop(&shard);
    return 0;
}

static void test_healthy(void **st)
{
    (void)st;
    int32_t rc;
    json_t *r = observe(NULL, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_true(json_is_true(json_object_get(r, "ok")));
    assert_int_equal(json_array_size(json_object_get(r, "violations")), 0);
    const json_t *s = json_array_get(json_object_get(r, "shards"), 0);
    assert_string_equal(json_string_value(json_object_get(s, "primary")), "n0");
    assert_string_equal(json_string_value(json_object_get(s, "synchronous_standby_names")),
                        "ANY 1 (n1, n2)");
    assert_string_equal(json_string_value(json_object_get(node(r, "n0"), "role")), "primary");
    for (int i = 1; i <= 2; i++) {
        const json_t *n = node(r, i == 1 ? "n1" : "n2");
        assert_string_equal(json_string_value(json_object_get(n, "role")), "standby");
        assert_string_equal(json_string_value(json_object_get(n, "state")), "streaming");
        assert_string_equal(json_string_value(json_object_get(n, "sync_state")), "quorum");
        assert_true(json_is_true(json_object_get(n, "synchronous")));
        assert_true(json_is_integer(json_object_get(n, "lag_bytes")));
        assert_true(json_integer_value(json_object_get(n, "lag_bytes")) >= 0);
    }
    json_decref(r);
}

static void test_drain_deadline(void **st)
{
    (void)st;
    int32_t rc;
    /* requested 6 minutes before the host's now: past the 5-minute deadline */
    json_t *r =
        observe(", \"drain\": \"draining\", \"requested_at\": \"2026-11-26T11:54:00Z\"", &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(count(r, "drain-deadline", "n2"), 1);
    assert_false(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    /* 4 minutes: within it */
    r = observe(", \"drain\": \"draining\", \"requested_at\": \"2026-11-26T11:56:00Z\"", &rc);
    assert_int_equal(count(r, "drain-deadline", NULL), 0);
    json_decref(r);
}

/* A standby whose replay is paused lags: lag_bytes is at least the primary's own measure. */
static void test_lag(void **st)
{
    (void)st;
    int32_t rc;
    char want[32];
    assert_int_equal(pg_sql(&shard, 1, "SELECT pg_wal_replay_pause()", 5000, NULL, 0), 0);
    assert_int_equal(pg_sql(&shard, 0,
                            "CREATE TABLE IF NOT EXISTS observe_lag AS "
                            "SELECT g FROM generate_series(1, 20000) AS g",
                            10000, NULL, 0),
                     0);
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) > "
                                 "100000 FROM pg_stat_replication WHERE application_name = 'n1'",
                                 "t", 10000),
                     0);
    assert_int_equal(pg_sql(&shard, 0,
                            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint "
                            "FROM pg_stat_replication WHERE application_name = 'n1'",
                            5000, want, sizeof(want)),
                     0);
    json_t *r = observe(NULL, &rc);
    assert_int_equal(rc, MGO_OK);
    json_int_t lag = json_integer_value(json_object_get(node(r, "n1"), "lag_bytes"));
    print_message("lag of n1: %lld bytes (the primary said %s just before)\n", (long long)lag,
                  want);
    assert_true(lag >= strtoll(want, NULL, 10));
    assert_true(lag > 100000);
    json_decref(r);
    assert_int_equal(pg_sql(&shard, 1, "SELECT pg_wal_replay_resume()", 5000, NULL, 0), 0);
}

/* The host's view of its processes against what answers. */
static void test_process(void **st)
{
    (void)st;
    int32_t rc;
    json_t *r = observe(", \"running\": false", &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(count(r, "process", "n2"), 1);
    json_decref(r);
    assert_int_equal(pg_node_stop(&shard, 2, "fast"), 0);
    r = observe(", \"running\": true", &rc);
    assert_int_equal(count(r, "process", "n2"), 1);
    assert_non_null(json_string_value(json_object_get(node(r, "n2"), "error")));
    json_decref(r);
    r = observe(", \"running\": false", &rc);
    assert_int_equal(count(r, "process", NULL), 0);
    json_decref(r);
    assert_int_equal(pg_node_start(&shard, 2), 0);
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 "2", 30000),
                     0);
}

static void test_standbys_down(void **st)
{
    (void)st;
    int32_t rc;
    assert_int_equal(pg_node_stop(&shard, 2, "fast"), 0);
    json_t *r = observe(NULL, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(count(r, "sync-standby-streaming", "n2"), 1);
    assert_int_equal(count(r, "sync-standby-streaming", "n1"), 0);
    assert_int_equal(count(r, "durability", NULL), 0);
    assert_string_equal(json_string_value(json_object_get(node(r, "n2"), "role")), "down");
    json_decref(r);
    assert_int_equal(pg_node_stop(&shard, 1, "fast"), 0);
    r = observe(NULL, &rc);
    assert_int_equal(count(r, "sync-standby-streaming", NULL), 2);
    assert_int_equal(count(r, "durability", NULL), 1);
    json_decref(r);
    assert_int_equal(pg_node_start(&shard, 1), 0);
    assert_int_equal(pg_node_start(&shard, 2), 0);
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 "2", 30000),
                     0);
    r = observe(NULL, &rc);
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
}

static void test_bad_requests(void **st)
{
    (void)st;
    static const struct {
        const char *req, *want;
    } cases[] = {
        {"{\"shards\": [{\"name\": \"s\", \"nodes\": [{\"name\": \"a\", \"conninfo\": \"x\"}, "
         "{\"name\": \"A\", \"conninfo\": \"y\"}]}]}",
         "shards[0].nodes[1]: the name \\\"A\\\" appears twice"},
        {"{\"shards\": [{\"name\": \"s\", \"nodes\": [{\"name\": \"a\"}]}]}",
         "shards[0].nodes[0]: needs"},
        {"{\"shards\": [{\"name\": \"s\", \"durability\": \"AT_LEAST_3\", \"nodes\": [{\"name\": "
         "\"a\", \"conninfo\": \"x\"}]}]}",
         "shards[0]: needs"},
        {"{\"deadline_ms\": 0, \"shards\": []}", "\\\"deadline_ms\\\" must be an integer"},
        {"{\"shards\": [{\"name\": \"s\", \"nodes\": [{\"name\": \"a\", \"conninfo\": \"x\", "
         "\"drain\": \"draining\"}]}]}",
         "shards[0].nodes[0]: needs"},
        {"{\"shards\": [{\"name\": \"s\", \"nodes\": [{\"name\": \"a\", \"conninfo\": \"x\", "
         "\"drain\": \"leaving\", \"requested_at\": \"2026-11-26T11:54:00Z\"}]}]}",
         "shards[0].nodes[0]: needs"},
        {"{\"shards\": [{\"name\": \"s\", \"nodes\": [{\"name\": \"a\", \"conninfo\": \"x\"}]},"
         " 7]}",
         "shards[1] must be an object"},
        {"{\"shards\": {}}", "\\\"shards\\\" must be an array"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char *res = NULL;
        size_t len = 0;
        int32_t rc = mgo_observe(plugin, cases[k].req, strlen(cases[k].req), &res, &len);
        print_message("case %zu: %d %.*s\n", k, rc, (int)len, res ? res : "");
        assert_int_equal(rc, MGO_EINVAL);
        assert_non_null(strstr(res, cases[k].want));
        mgo_free(res);
    }
}

/* Last: a standby promoted while the primary still runs. */
static void test_two_primaries(void **st)
{
    (void)st;
    int32_t rc;
    assert_int_equal(pg_sql(&shard, 1, "SELECT pg_promote()", 30000, NULL, 0), 0);
    json_t *r = observe(NULL, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(count(r, "one-primary", NULL), 1);
    const json_t *v = json_array_get(json_object_get(r, "violations"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(v, "evidence")),
                           "2 instances answer as primaries: n0, n1"));
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy),       cmocka_unit_test(test_lag),
        cmocka_unit_test(test_process),       cmocka_unit_test(test_drain_deadline),
        cmocka_unit_test(test_standbys_down), cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_two_primaries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
