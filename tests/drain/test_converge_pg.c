/*
 * mgo_converge on a real shard (n0 primary; n1, n2, n3 standbys started with no synchronous
 * standby) and a real etcd. Expected values from docs/abi.md "mgo_converge": standbys that
 * stream join the synchronous set as ANY 1 in the order of the request; one that does not
 * stream is not named and is reported as waited for; a drained one leaves; reload-class
 * settings are written on every instance and confirmed in pg_settings without a restart, and
 * removed ones are reset; pooler records follow the instances and their roles; a converged shard
 * gets no write at all (no reload, no new record revision); bad requests change nothing.
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

#include "../topo/etcd_harness.h"
#include "mgo/mgo.h"
#include "pg_harness.h"

static struct pg_shard shard;
static struct etcd_harness etcd;
static mgo_plugin *plugin;

/* The request: nodes n0..n3 (n3 left out when nodes == 3), with `extra` JSON appended to the
 * request object and drain states / running flags per node. */
struct opts {
    int nodes;
    const char *drain[4];
    int stopped[4];
    const char *settings; /* JSON object text, or NULL */
    int topology;
};

static json_t *converge(const struct opts *o, int32_t *rc)
{
    json_t *req =
        json_pack("{s:s, s:[], s:i}", "durability", "AT_LEAST_2", "nodes", "deadline_ms", 10000);
    for (int i = 0; i < o->nodes; i++) {
        char ci[256], name[16];
        pg_node_conninfo(&shard, i, ci, sizeof(ci));
        (void)snprintf(name, sizeof(name), "n%d", i);
        json_t *n = json_pack("{s:s, s:s, s:s, s:i, s:b}", "name", name, "conninfo", ci, "cell",
                              "zone-a", "index", i, "running", !o->stopped[i]);
        if (o->drain[i])
            json_object_set_new(n, "drain", json_string(o->drain[i]));
        json_array_append_new(json_object_get(req, "nodes"), n);
    }
    if (o->settings)
        json_object_set_new(req, "settings", json_loads(o->settings, 0, NULL));
    if (o->topology)
        json_object_set_new(req, "topology",
                            json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:s}}}", "database", "postgres",
                                      "tablegroup", "default", "shard", "0-inf", "cells", "zone-a",
                                      "endpoints", etcd.endpoint, "root", "/multigres/zone-a"));
    char *body = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    *rc = mgo_converge(plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    char *dump = json_dumps(r, JSON_COMPACT);
    print_message("converge: %d %s\n", *rc, dump ? dump : "");
    free(dump);
    return r;
}

static void sql(int node, const char *q, char *out, size_t size)
{
    assert_int_equal(pg_sql(&shard, node, q, 5000, out, size), 0);
}

static void assert_sync_names(const char *want)
{
    char out[512];
    sql(0, "SHOW synchronous_standby_names", out, sizeof(out));
    assert_string_equal(out, want);
}

/* The number of changes of kind `change` in a result. */
static int changes(const json_t *r, const char *change)
{
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach (json_object_get(r, "changes"), i, c)
        n += strcmp(json_string_value(json_object_get(c, "change")), change) == 0;
    return n;
}

static int waits_for(const json_t *r, const char *instance)
{
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(r, "waiting"), i, c)
        if (strcmp(json_string_value(json_object_get(c, "instance")), instance) == 0)
            return 1;
    return 0;
}

/* pg_conf_load_time() and pg_postmaster_start_time() of every running node, concatenated. */
static void times(int nodes, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < nodes; i++) {
        char t[128];
        sql(i, "SELECT pg_conf_load_time()::text || '/' || pg_postmaster_start_time()::text", t,
            sizeof(t));
        o += (size_t)snprintf(out + o, size - o, "%s;", t);
    }
}

static int setup(void **st)
{
    (void)st;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    if (etcd_harness_start(&etcd) != 0 || mgo_open(&host, &plugin) != MGO_OK)
        return -1;
    return pg_shard_start(&shard, 3, NULL);
}

static int teardown(void **st)
{
    (void)st;
    pg_shard_stop(&shard);
    mgo_close(plugin);
    etcd_harness_stop(&etcd);
    return 0;
}

static void test_sync_set(void **st)
{
    (void)st;
    int32_t rc;
    assert_sync_names("");
    /* n3 is stopped: it is not named, and is waited for */
    assert_int_equal(pg_node_stop(&shard, 3, "fast"), 0);
    struct opts o = {.nodes = 4, .stopped = {0, 0, 0, 1}};
    json_t *r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_false(json_is_true(json_object_get(r, "converged")));
    assert_string_equal(json_string_value(json_object_get(r, "primary")), "n0");
    assert_int_equal(changes(r, "synchronous_standby_names"), 1);
    assert_true(waits_for(r, "n3"));
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\", \"n2\")");

    /* n3 back and streaming: it joins */
    assert_int_equal(pg_node_start(&shard, 3), 0);
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "SELECT state FROM pg_stat_replication WHERE "
                                 "application_name = 'n3'",
                                 "streaming", 30000),
                     0);
    o.stopped[3] = 0;
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "synchronous_standby_names"), 1);
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\", \"n2\", \"n3\")");

    /* converged: a second call writes nothing, not even a reload */
    char before[1024], after[1024];
    times(4, before, sizeof(before));
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_true(json_is_true(json_object_get(r, "converged")));
    assert_int_equal(json_array_size(json_object_get(r, "changes")), 0);
    json_decref(r);
    times(4, after, sizeof(after));
    assert_string_equal(before, after);

    /* a node being drained keeps its place (the drain takes it out); one past the set leaves */
    o.drain[3] = "draining";
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "synchronous_standby_names"), 0);
    json_decref(r);
    o.drain[3] = "acknowledged";
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "synchronous_standby_names"), 1);
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\", \"n2\")");
    /* a node no longer in the request leaves too */
    o.nodes = 3;
    o.drain[3] = NULL;
    r = converge(&o, &rc);
    json_decref(r);
    o.nodes = 2;
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\")");
    /* never weakened: with n1 the only streaming named standby, marking it past the set while
     * nothing can replace it leaves the set alone */
    o.drain[1] = "acknowledged";
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_true(waits_for(r, "n0"));
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\")");
    o.drain[1] = NULL;
    o.nodes = 4;
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    json_decref(r);
    assert_sync_names("ANY 1 (\"n1\", \"n2\", \"n3\")");
}

static void assert_setting(int node, const char *name, const char *value, int from_auto)
{
    char q[512], out[512];
    (void)snprintf(q, sizeof(q),
                   "SELECT current_setting('%s') || '|' || (coalesce(sourcefile, '') = "
                   "current_setting('data_directory') || '/postgresql.auto.conf')::text "
                   "FROM pg_settings WHERE name = '%s'",
                   name, name);
    char want[256];
    (void)snprintf(want, sizeof(want), "%s|%s", value, from_auto ? "true" : "false");
    assert_int_equal(pg_sql_wait(&shard, node, q, want, 1000), 0);
    (void)out;
}

static void test_settings(void **st)
{
    (void)st;
    int32_t rc;
    char before[1024], after[1024], starts_before[1024];
    struct opts o = {.nodes = 4,
                     .settings = "{\"work_mem\": \"8MB\", \"log_min_duration_statement\": "
                                 "\"250\"}"};
    times(4, before, sizeof(before));
    (void)snprintf(starts_before, sizeof(starts_before), "%s", before);
    json_t *r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "settings"), 4);
    json_decref(r);
    for (int i = 0; i < 4; i++) {
        assert_setting(i, "work_mem", "8MB", 1);
        assert_setting(i, "log_min_duration_statement", "250ms", 1);
    }
    /* nothing restarted: the postmasters started when they did */
    for (int i = 0; i < 4; i++) {
        char q1[128];
        sql(i, "SELECT pg_postmaster_start_time()::text", q1, sizeof(q1));
        assert_non_null(strstr(starts_before, q1));
    }
    r = converge(&o, &rc);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);

    /* a change and a removal: work_mem 16MB, log_min_duration_statement back to the default */
    o.settings = "{\"work_mem\": \"16MB\"}";
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "settings"), 4);
    json_decref(r);
    for (int i = 0; i < 4; i++) {
        assert_setting(i, "work_mem", "16MB", 1);
        assert_setting(i, "log_min_duration_statement", "-1", 0);
    }
    /* an ALTER SYSTEM by hand is undone */
    char out[64];
    sql(2, "ALTER SYSTEM SET maintenance_work_mem = '99MB'", out, sizeof(out));
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "settings"), 1);
    json_decref(r);
    assert_setting(2, "maintenance_work_mem", "64MB", 0);
    times(4, after, sizeof(after));
    (void)after;

    /* bad settings change nothing */
    const char *bad[] = {"{\"shared_buffers\": \"64MB\"}",
                         "{\"work_mem\": \"banana\"}",
                         "{\"synchronous_standby_names\": \"*\"}",
                         "{\"work_mem\": \"1MB\", \" WORK_MEM\": \"2MB\"}",
                         "{\"auto_explain.log_min_duration\": \"1s\"}",
                         "{\"work_mem\": 5}"};
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        times(4, before, sizeof(before));
        o.settings = bad[b];
        r = converge(&o, &rc);
        assert_int_equal(rc, MGO_EINVAL);
        const char *m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
        assert_non_null(m);
        assert_non_null(strstr(m, "settings."));
        json_decref(r);
        times(4, after, sizeof(after));
        assert_string_equal(before, after);
    }
    assert_setting(1, "work_mem", "16MB", 1);
}

/* The pooler records under the cell root: "name=TYPE/serving" sorted by name, joined. */
static void records(char *out, size_t size)
{
    char req[512], *res = NULL;
    size_t len = 0;
    (void)snprintf(req, sizeof(req),
                   "{\"op\": \"list_poolers\", \"etcd\": {\"endpoints\": [\"%s\"], \"root\": "
                   "\"/multigres/global\"}, \"cell\": \"zone-a\", \"cell_root\": "
                   "\"/multigres/zone-a\", \"database\": \"postgres\", \"table_group\": "
                   "\"default\", \"shard\": \"0-inf\"}",
                   etcd.endpoint);
    assert_int_equal(mgo_topology(plugin, req, strlen(req), &res, &len), MGO_OK);
    json_t *r = json_loadb(res, len, 0, NULL);
    mgo_free(res);
    size_t i, o = 0;
    json_t *p;
    out[0] = '\0';
    json_array_foreach (json_object_get(r, "poolers"), i, p) {
        const char *serving = json_string_value(json_object_get(p, "serving_status"));
        o += (size_t)snprintf(
            out + o, size - o, "%s=%s/%s/%s:%d;",
            json_string_value(json_object_get(json_object_get(p, "id"), "name")),
            json_string_value(json_object_get(p, "type")), serving ? serving : "SERVING",
            json_string_value(json_object_get(p, "hostname")),
            (int)json_integer_value(json_object_get(json_object_get(p, "port_map"), "postgres")));
    }
    json_decref(r);
}

static void test_pooler_records(void **st)
{
    (void)st;
    int32_t rc;
    struct opts o = {.nodes = 4, .topology = 1, .settings = "{\"work_mem\": \"16MB\"}"};
    json_t *r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(changes(r, "pooler"), 4);
    json_decref(r);
    char got[1024], want[1024];
    (void)snprintf(want, sizeof(want),
                   "n0=PRIMARY/SERVING/127.0.0.1:%d;n1=REPLICA/SERVING/127.0.0.1:%d;"
                   "n2=REPLICA/SERVING/127.0.0.1:%d;n3=REPLICA/SERVING/127.0.0.1:%d;",
                   shard.nodes[0].port, shard.nodes[1].port, shard.nodes[2].port,
                   shard.nodes[3].port);
    records(got, sizeof(got));
    assert_string_equal(got, want);
    r = converge(&o, &rc);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    /* a drain under way: DRAINING; then past the set: deleted; then gone from the request */
    o.drain[3] = "draining";
    r = converge(&o, &rc);
    assert_int_equal(changes(r, "pooler"), 1);
    json_decref(r);
    records(got, sizeof(got));
    assert_non_null(strstr(got, "n3=REPLICA/DRAINING/"));
    o.drain[3] = "acknowledged";
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    json_decref(r);
    records(got, sizeof(got));
    assert_null(strstr(got, "n3="));
    /* n2 leaves the request: its record goes */
    o.nodes = 2;
    r = converge(&o, &rc);
    assert_int_equal(rc, MGO_OK);
    json_decref(r);
    records(got, sizeof(got));
    (void)snprintf(want, sizeof(want),
                   "n0=PRIMARY/SERVING/127.0.0.1:%d;n1=REPLICA/SERVING/127.0.0.1:%d;",
                   shard.nodes[0].port, shard.nodes[1].port);
    assert_string_equal(got, want);
    o.nodes = 4;
    o.drain[3] = NULL;
    r = converge(&o, &rc);
    json_decref(r);
}

static void test_bad_requests(void **st)
{
    (void)st;
    const char *bad[] = {
        "{}",
        "{\"nodes\": []}",
        "{\"nodes\": [{\"name\": \"n0\"}]}",
        "{\"nodes\": [{\"name\": \"n0\", \"conninfo\": \"port=1\", \"drain\": \"gone\"}]}",
        "{\"nodes\": [{\"name\": \"n0\", \"conninfo\": \"port=1\"}, {\"name\": \"N0\", "
        "\"conninfo\": \"port=1\"}]}",
        "{\"durability\": \"ALL\", \"nodes\": [{\"name\": \"n0\", \"conninfo\": \"port=1\"}]}",
        "{\"deadline_ms\": 0, \"nodes\": [{\"name\": \"n0\", \"conninfo\": \"port=1\"}]}",
        "{\"topology\": {\"database\": \"d\"}, \"nodes\": [{\"name\": \"n0\", \"conninfo\": "
        "\"port=1\"}]}",
        "{\"topology\": {\"database\": \"d\", \"tablegroup\": \"t\", \"shard\": \"s\", "
        "\"cells\": {\"a\": {\"endpoints\": [\"x\"], \"root\": \"/r\"}}}, \"nodes\": "
        "[{\"name\": \"n0\", \"conninfo\": \"port=1\", \"cell\": \"b\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *res = NULL;
        size_t len = 0;
        assert_int_equal(mgo_converge(plugin, bad[i], strlen(bad[i]), &res, &len), MGO_EINVAL);
        assert_non_null(strstr(res, "request:"));
        mgo_free(res);
    }
}

static void test_no_single_primary(void **st)
{
    (void)st;
    int32_t rc;
    /* n0 stopped: no primary answers; nothing is written on the standbys */
    assert_int_equal(pg_node_stop(&shard, 0, "fast"), 0);
    char before[1024], after[1024], t[128];
    before[0] = after[0] = '\0';
    for (int i = 1; i < 4; i++) {
        sql(i, "SELECT pg_conf_load_time()::text", t, sizeof(t));
        strcat(before, t);
    }
    struct opts o = {.nodes = 4, .stopped = {1, 0, 0, 0}, .settings = "{\"work_mem\": \"4MB\"}"};
    json_t *r = converge(&o, &rc);
    assert_int_equal(rc, MGO_EAGAIN);
    json_decref(r);
    for (int i = 1; i < 4; i++) {
        sql(i, "SELECT pg_conf_load_time()::text", t, sizeof(t));
        strcat(after, t);
    }
    assert_string_equal(before, after);
    assert_setting(1, "work_mem", "16MB", 1);
    assert_int_equal(pg_node_start(&shard, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests),      cmocka_unit_test(test_sync_set),
        cmocka_unit_test(test_settings),          cmocka_unit_test(test_pooler_records),
        cmocka_unit_test(test_no_single_primary),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
