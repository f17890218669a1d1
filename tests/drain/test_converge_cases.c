/*
 * mgo_converge, the rules test_converge_pg.c leaves open, each case written from docs/abi.md
 * "mgo_converge" and kept because a mutation of the code survived without it: the order of the
 * request, a named standby that stopped, never weakening (also through a standby the request
 * does not list), a draining standby not yet named, ready-for-deletion, the empty set never
 * written, MULTI_CELL_AT_LEAST_2, the exact change entries, no reload when converged, the
 * confirmation in pg_settings (a role-level setting hides the file's), a value PostgreSQL
 * refuses, pooler records read back from etcd with their own decoder (keys, serving status, no
 * new revision when nothing changed), etcd down, two primaries.
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
#include "../topology/topo_wire.h"
#include "mgo/mgo.h"
#include "pg_harness.h"

static struct pg_shard shard;
static struct etcd_harness etcd;
static mgo_plugin *plugin;

/* nodes: list of node indexes in request order; per index: drain, stopped flag, cell */
struct req {
    int n, order[4];
    const char *drain[4];
    int down[4];
    const char *cell[4];
    const char *durability, *settings, *endpoint;
    int topology, deadline;
};

static json_t *converge(const struct req *q, int32_t *rc)
{
    json_t *req =
        json_pack("{s:s, s:[], s:i}", "durability", q->durability ? q->durability : "AT_LEAST_2",
                  "nodes", "deadline_ms", q->deadline ? q->deadline : 10000);
    for (int k = 0; k < q->n; k++) {
        int i = q->order[k];
        char ci[256], name[16];
        pg_node_conninfo(&shard, i, ci, sizeof(ci));
        (void)snprintf(name, sizeof(name), "n%d", i);
        json_t *n =
            json_pack("{s:s, s:s, s:s, s:i, s:b}", "name", name, "conninfo", ci, "cell",
                      q->cell[i] ? q->cell[i] : "zone-a", "index", i, "running", !q->down[i]);
        if (q->drain[i])
            json_object_set_new(n, "drain", json_string(q->drain[i]));
        json_array_append_new(json_object_get(req, "nodes"), n);
    }
    if (q->settings)
        json_object_set_new(req, "settings", json_loads(q->settings, 0, NULL));
    if (q->topology)
        json_object_set_new(req, "topology",
                            json_pack("{s:s, s:s, s:s, s:{s:{s:[s], s:s}}}", "database", "postgres",
                                      "tablegroup", "default", "shard", "0-inf", "cells", "zone-a",
                                      "endpoints", q->endpoint ? q->endpoint : etcd.endpoint,
                                      "root", "/multigres/zone-a"));
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

static void assert_sync(const char *want)
{
    char out[512];
    sql(0, "SHOW synchronous_standby_names", out, sizeof(out));
    assert_string_equal(out, want);
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

static void times(int nodes, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < nodes; i++) {
        char t[128];
        sql(i, "SELECT pg_conf_load_time()::text", t, sizeof(t));
        o += (size_t)snprintf(out + o, size - o, "%s;", t);
    }
}

static void wait_streaming(int i)
{
    char q[256];
    (void)snprintf(q, sizeof(q),
                   "SELECT state FROM pg_stat_replication WHERE application_name = 'n%d'", i);
    assert_int_equal(pg_sql_wait(&shard, 0, q, "streaming", 30000), 0);
}

#define ALL4 .n = 4, .order = {0, 1, 2, 3}

/* Call, assert MGO_OK and that the reported set is what n0 shows, return r. */
static json_t *ok(const struct req *q)
{
    int32_t rc;
    json_t *r = converge(q, &rc);
    assert_int_equal(rc, MGO_OK);
    char out[512];
    sql(0, "SHOW synchronous_standby_names", out, sizeof(out));
    assert_string_equal(json_string_value(json_object_get(r, "synchronous_standby_names")), out);
    return r;
}

static int setup(void **st)
{
    (void)st;
    curl_global_init(CURL_GLOBAL_DEFAULT);
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

static void x_sync(void **st)
{
    (void)st;
    struct req all = {ALL4};
    json_decref(ok(&all));
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");

    /* order of nodes (m22) */
    struct req ord = {.n = 3, .order = {0, 3, 2}};
    json_decref(ok(&ord));
    assert_sync("ANY 1 (\"n3\", \"n2\")");
    json_decref(ok(&all));
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");

    /* named but stopped: stays named (m11) */
    assert_int_equal(pg_node_stop(&shard, 2, "fast"), 0);
    struct req s2 = {ALL4, .down = {0, 0, 1, 0}};
    json_t *r = ok(&s2);
    assert_true(waits_for(r, "n2"));
    json_decref(r);
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");

    /* never weaken; an unlisted named streaming standby counts (m04, m12) */
    struct req w = {.n = 2, .order = {0, 2}, .down = {0, 0, 1, 0}};
    r = ok(&w);
    assert_true(waits_for(r, "n0"));
    json_decref(r);
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");
    assert_int_equal(pg_node_start(&shard, 2), 0);
    wait_streaming(2);

    /* a draining standby not yet named does not join (m07d) */
    struct req three = {.n = 3, .order = {0, 1, 2}};
    json_decref(ok(&three));
    assert_sync("ANY 1 (\"n1\", \"n2\")");
    struct req d3 = {ALL4, .drain = {NULL, NULL, NULL, "draining"}};
    json_decref(ok(&d3));
    assert_sync("ANY 1 (\"n1\", \"n2\")");

    /* ready-for-deletion leaves (m08) */
    json_decref(ok(&all));
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");
    struct req rfd = {ALL4, .drain = {NULL, NULL, NULL, "ready-for-deletion"}};
    json_decref(ok(&rfd));
    assert_sync("ANY 1 (\"n1\", \"n2\")");
    json_decref(ok(&all));

    /* a running node that does not answer: not converged (m19) */
    assert_int_equal(pg_node_stop(&shard, 3, "fast"), 0);
    r = ok(&d3);
    assert_false(json_is_true(json_object_get(r, "converged")));
    assert_true(waits_for(r, "n3"));
    json_decref(r);
    assert_int_equal(pg_node_start(&shard, 3), 0);
    wait_streaming(3);

    /* empty set never written (m05) */
    struct req one = {.n = 2, .order = {0, 1}};
    json_decref(ok(&one));
    assert_sync("ANY 1 (\"n1\")");
    assert_int_equal(pg_node_stop(&shard, 1, "fast"), 0);
    struct req gone1 = {.n = 2, .order = {0, 1}, .down = {0, 1}, .drain = {NULL, "acknowledged"}};
    r = ok(&gone1);
    assert_true(waits_for(r, "n0"));
    json_decref(r);
    assert_sync("ANY 1 (\"n1\")");
    assert_int_equal(pg_node_start(&shard, 1), 0);
    wait_streaming(1);
    json_decref(ok(&all));
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");

    /* MULTI_CELL: only standbys outside the primary's cell (m13) */
    struct req mc = {ALL4, .durability = "MULTI_CELL_AT_LEAST_2",
                     .cell = {"zone-a", "zone-a", "zone-b", "zone-b"}};
    json_decref(ok(&mc));
    assert_sync("ANY 1 (\"n2\", \"n3\")");
    json_decref(ok(&all));
}

static void x_settings(void **st)
{
    (void)st;
    int32_t rc;
    char b[1024], a[1024];
    struct req q = {ALL4,
                    .settings = "{\"work_mem\": \"8MB\", \"log_min_duration_statement\": \"250\"}"};
    json_decref(ok(&q));
    times(4, b, sizeof(b));
    json_decref(ok(&q));
    times(4, a, sizeof(a));
    assert_string_equal(b, a); /* m15 */
    q.settings = "{\"work_mem\": \"16MB\"}";
    json_t *r = ok(&q);
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(r, "changes"), i, c) { /* m16 */
        char *s = json_dumps(json_object_get(c, "set"), JSON_COMPACT);
        char *t = json_dumps(json_object_get(c, "reset"), JSON_COMPACT);
        assert_string_equal(s, "[\"work_mem\"]");
        assert_string_equal(t, "[\"log_min_duration_statement\"]");
        free(s);
        free(t);
    }
    json_decref(r);
    /* a value PostgreSQL refuses: MGO_EINVAL with its message (m18) */
    q.settings = "{\"timezone\": \"Mars/Olympus\"}";
    r = converge(&q, &rc);
    assert_int_equal(rc, MGO_EINVAL);
    json_decref(r);
    /* a role-level setting outranks the file for that role's sessions only: the file's value
     * is still in place server-wide, so the change counts as applied */
    char out[64];
    sql(0, "ALTER ROLE postgres SET work_mem = '1MB'", out, sizeof(out));
    q.settings = "{\"work_mem\": \"12MB\"}";
    q.deadline = 5000;
    r = converge(&q, &rc);
    assert_int_equal(rc, MGO_OK);
    json_decref(r);
    sql(0,
        "SELECT setting FROM pg_file_settings WHERE name = 'work_mem' AND sourcefile = "
        "current_setting('data_directory') || '/postgresql.auto.conf'",
        out, sizeof(out));
    assert_string_equal(out, "12MB");
    sql(0, "ALTER ROLE postgres RESET work_mem", out, sizeof(out));
    /* a refused value leaves the file as it was: the entry before it is put back */
    q.settings = "{\"work_mem\": \"13MB\", \"timezone\": \"Mars/Olympus\"}";
    r = converge(&q, &rc);
    assert_int_equal(rc, MGO_EINVAL);
    json_decref(r);
    sql(0,
        "SELECT setting FROM pg_file_settings WHERE name = 'work_mem' AND sourcefile = "
        "current_setting('data_directory') || '/postgresql.auto.conf'",
        out, sizeof(out));
    assert_string_equal(out, "12MB");
}

static long pooler_keys(char *out, size_t size, int64_t *rev)
{
    struct kv *kvs = calloc(16, sizeof(*kvs));
    long n = etcd_range(etcd.endpoint, "/multigres/zone-a/poolers/", kvs, 16, rev);
    size_t o = 0;
    out[0] = '\0';
    for (long i = 0; i < n && i < 16; i++) {
        struct pb_msg m;
        assert_int_equal(pb_parse(kvs[i].value, kvs[i].len, &m), 0);
        const struct pb_field *ss = pb_get(&m, 7, 0);
        o += (size_t)snprintf(out + o, size - o, "%s:%s;", kvs[i].key,
                              ss && ss->v ? "notserving" : "serving");
    }
    free(kvs);
    return n;
}

static void x_pooler(void **st)
{
    (void)st;
    int32_t rc;
    char got[4096], got2[4096];
    int64_t r1, r2;
    struct req q = {ALL4, .topology = 1, .settings = "{\"work_mem\": \"12MB\"}"};
    json_decref(ok(&q));
    assert_int_equal(pooler_keys(got, sizeof(got), &r1), 4);
    assert_string_equal(got, "/multigres/zone-a/poolers/multipooler-zone-a-n0/Pooler:serving;"
                             "/multigres/zone-a/poolers/multipooler-zone-a-n1/Pooler:serving;"
                             "/multigres/zone-a/poolers/multipooler-zone-a-n2/Pooler:serving;"
                             "/multigres/zone-a/poolers/multipooler-zone-a-n3/Pooler:serving;");
    json_decref(ok(&q));
    pooler_keys(got2, sizeof(got2), &r2);
    assert_int_equal(r1, r2); /* m06b: no write at all */
    /* requested: still SERVING, nothing written (m09) */
    q.drain[3] = "requested";
    json_decref(ok(&q));
    pooler_keys(got2, sizeof(got2), &r2);
    assert_string_equal(got, got2);
    assert_int_equal(r1, r2);
    /* ready-for-deletion: deleted (m08) */
    q.drain[3] = "ready-for-deletion";
    json_decref(ok(&q));
    assert_int_equal(pooler_keys(got2, sizeof(got2), &r2), 3);
    q.drain[3] = NULL;
    json_decref(ok(&q));
    /* etcd not answering: MGO_EAGAIN naming it */
    char ep[64];
    (void)snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", etcd_harness_closed_port());
    q.endpoint = ep;
    json_t *r = converge(&q, &rc);
    assert_int_equal(rc, MGO_EAGAIN);
    const char *m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    assert_non_null(m);
    assert_non_null(strstr(m, ep + 7));
    json_decref(r);
}

static void x_two_primaries(void **st)
{
    (void)st;
    int32_t rc;
    char out[64], b[1024], a[1024];
    sql(3, "SELECT pg_promote()", out, sizeof(out));
    assert_int_equal(pg_sql_wait(&shard, 3, "SELECT pg_is_in_recovery()::text", "false", 30000), 0);
    times(4, b, sizeof(b));
    struct req q = {ALL4, .settings = "{\"work_mem\": \"3MB\"}"};
    json_t *r = converge(&q, &rc);
    assert_int_equal(rc, MGO_EAGAIN); /* m17 */
    json_decref(r);
    times(4, a, sizeof(a));
    assert_string_equal(b, a);
}

/* One mgo_topology call on the test etcd (cell root /multigres/zone-a); the status. */
static int32_t topo(const char *fields)
{
    char req[2048], *res = NULL;
    size_t len = 0;
    (void)snprintf(req, sizeof(req),
                   "{\"etcd\": {\"endpoints\": [\"%s\"], \"root\": \"/multigres/global\"}, "
                   "\"cell_root\": \"/multigres/zone-a\", %s}",
                   etcd.endpoint, fields);
    int32_t rc = mgo_topology(plugin, req, strlen(req), &res, &len);
    mgo_free(res);
    return rc;
}

/* The serving_status (field 7; 0 SERVING, 1 DISABLED, 4 DRAINING) of a node's record, and
 * whether field `extra` is present; -1 when the record is missing. */
static long serving_of(int node, uint32_t extra, int *has_extra)
{
    struct kv *kvs = calloc(16, sizeof(*kvs));
    int64_t rev;
    char key[128];
    long out = -1;
    (void)snprintf(key, sizeof(key), "/multigres/zone-a/poolers/multipooler-zone-a-n%d/Pooler",
                   node);
    long n = etcd_range(etcd.endpoint, "/multigres/zone-a/poolers/", kvs, 16, &rev);
    for (long i = 0; i < n && i < 16; i++) {
        if (strcmp(kvs[i].key, key) != 0)
            continue;
        struct pb_msg m;
        assert_int_equal(pb_parse(kvs[i].value, kvs[i].len, &m), 0);
        const struct pb_field *ss = pb_get(&m, 7, 0);
        out = ss ? (long)ss->v : 0;
        if (has_extra)
            *has_extra = pb_get(&m, extra, 0) != NULL;
    }
    free(kvs);
    return out;
}

static void x_set_compare(void **st)
{
    (void)st;
    char out[512], b[1024], a[1024];
    struct req all = {ALL4};
    json_decref(ok(&all));
    assert_sync("ANY 1 (\"n1\", \"n2\", \"n3\")");
    /* the same standbys in another order: nothing written */
    times(4, b, sizeof(b));
    struct req other = {.n = 4, .order = {0, 3, 1, 2}};
    json_t *r = ok(&other);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    times(4, a, sizeof(a));
    assert_string_equal(b, a);
    /* a stronger value than mgo writes is left alone, and reported */
    sql(0, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 2 (n1, n2, n3)'", out, sizeof(out));
    sql(0, "SELECT pg_reload_conf()", out, sizeof(out));
    assert_int_equal(
        pg_sql_wait(&shard, 0, "SHOW synchronous_standby_names", "ANY 2 (n1, n2, n3)", 10000), 0);
    r = ok(&all);
    assert_true(waits_for(r, "n0"));
    json_decref(r);
    assert_sync("ANY 2 (n1, n2, n3)");
    sql(0, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (\"n1\", \"n2\", \"n3\")'", out,
        sizeof(out));
    sql(0, "SELECT pg_reload_conf()", out, sizeof(out));
    assert_int_equal(pg_sql_wait(&shard, 0, "SHOW synchronous_standby_names",
                                 "ANY 1 (\"n1\", \"n2\", \"n3\")", 10000),
                     0);
}

/* ALTER SYSTEM of a custom name needs the placeholder in the same session. */
static void alter_marker(int node, const char *value)
{
    char ci[256], err[256], q[256];
    PGconn *conn = NULL;
    pg_node_conninfo(&shard, node, ci, sizeof(ci));
    assert_int_equal(pg_harness_connect(ci, 5000, &conn, err, sizeof(err)), 0);
    assert_int_equal(
        pg_harness_query(conn, "SET mgo.settings_hash = ''", 5000, NULL, err, sizeof(err)), 0);
    (void)snprintf(q, sizeof(q), "ALTER SYSTEM SET mgo.settings_hash = '%s'", value);
    assert_int_equal(pg_harness_query(conn, q, 5000, NULL, err, sizeof(err)), 0);
    PQfinish(conn);
}

static void x_settings_more(void **st)
{
    (void)st;
    char out[512], marker[64];
    /* a list parameter: element by element, compared element by element */
    struct req q = {ALL4, .settings = "{\"work_mem\": \"12MB\", \"search_path\": \"\\\"$user\\\", "
                                      "public, App\"}"};
    json_decref(ok(&q));
    for (int i = 0; i < 4; i++) {
        sql(i, "SHOW search_path", out, sizeof(out));
        assert_string_equal(out, "\"$user\", public, app");
    }
    json_t *r = ok(&q);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    /* the host's recovery settings stay; a restart-class entry stays and is reported */
    sql(1, "ALTER SYSTEM SET restore_command = 'false'", out, sizeof(out));
    sql(2, "ALTER SYSTEM SET max_connections = '120'", out, sizeof(out));
    r = ok(&q);
    assert_true(waits_for(r, "n2"));
    json_decref(r);
    sql(1,
        "SELECT setting FROM pg_file_settings WHERE name = 'restore_command' AND sourcefile = "
        "current_setting('data_directory') || '/postgresql.auto.conf'",
        out, sizeof(out));
    assert_string_equal(out, "false");
    sql(2,
        "SELECT setting FROM pg_file_settings WHERE name = 'max_connections' AND sourcefile = "
        "current_setting('data_directory') || '/postgresql.auto.conf'",
        out, sizeof(out));
    assert_string_equal(out, "120");
    sql(1, "ALTER SYSTEM RESET restore_command", out, sizeof(out));
    sql(2, "ALTER SYSTEM RESET max_connections", out, sizeof(out));
    /* a host that died between mgo's writes and the reload: n3's file is right (the setting and
     * the marker) but nothing was reloaded; the next call reloads it */
    struct req three = {.n = 3,
                        .order = {0, 1, 2},
                        .settings = "{\"work_mem\": \"14MB\", \"search_path\": \"\\\"$user\\\", "
                                    "public, App\"}"};
    json_decref(ok(&three));
    sql(0,
        "SELECT setting FROM pg_file_settings WHERE name = 'mgo.settings_hash' AND sourcefile = "
        "current_setting('data_directory') || '/postgresql.auto.conf'",
        marker, sizeof(marker));
    sql(3, "ALTER SYSTEM SET work_mem = '14MB'", out, sizeof(out));
    alter_marker(3, marker);
    sql(3, "SHOW work_mem", out, sizeof(out));
    assert_string_equal(out, "12MB");
    q.settings = three.settings;
    r = ok(&q);
    json_decref(r);
    sql(3, "SHOW work_mem", out, sizeof(out));
    assert_string_equal(out, "14MB");
    r = ok(&q);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
}

static void x_pooler_more(void **st)
{
    (void)st;
    struct req q = {ALL4, .topology = 1};
    json_decref(ok(&q));
    int extra = 0;
    /* draining, then the drain cancelled: DRAINING, then SERVING again */
    q.drain[2] = "draining";
    json_decref(ok(&q));
    assert_int_equal(serving_of(2, 0, NULL), 4);
    q.drain[2] = NULL;
    json_decref(ok(&q));
    assert_int_equal(serving_of(2, 0, NULL), 0);
    /* a field mgo does not own is kept, and the record then compares equal */
    char fields[1024], ci[256];
    pg_node_conninfo(&shard, 1, ci, sizeof(ci));
    (void)snprintf(fields, sizeof(fields),
                   "\"op\": \"publish_pooler\", \"pooler\": {\"id\": {\"component\": "
                   "\"MULTIPOOLER\", \"cell\": \"zone-a\", \"name\": \"n1\"}, \"shard_key\": "
                   "{\"database\": \"postgres\", \"table_group\": \"default\", \"shard\": "
                   "\"0-inf\"}, \"type\": \"REPLICA\", \"hostname\": \"127.0.0.1\", "
                   "\"port_map\": {\"postgres\": %d}, \"pooler_dir\": \"/var/x\"}",
                   shard.nodes[1].port);
    assert_int_equal(topo(fields), MGO_OK);
    json_decref(ok(&q));
    serving_of(1, 10, &extra); /* pooler_dir */
    assert_true(extra);
    json_t *r = ok(&q);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    /* a stopped node keeps its record, DISABLED */
    assert_int_equal(pg_node_stop(&shard, 3, "fast"), 0);
    q.down[3] = 1;
    json_decref(ok(&q));
    assert_int_equal(serving_of(3, 0, NULL), 1);
    /* a shut-down record of a node no longer in the request is deleted */
    assert_int_equal(topo("\"op\": \"mark_pooler_shutdown\", \"cell\": \"zone-a\", \"name\": "
                          "\"n3\""),
                     MGO_OK);
    struct req without = {.n = 3, .order = {0, 1, 2}, .topology = 1};
    json_decref(ok(&without));
    assert_int_equal(serving_of(3, 0, NULL), -1);
    assert_int_equal(pg_node_start(&shard, 3), 0);
    wait_streaming(3);
    q.down[3] = 0;
    json_decref(ok(&q));
    assert_int_equal(serving_of(3, 0, NULL), 0);
}

static void x_audit_cases(void **st)
{
    (void)st;
    int32_t rc;
    char b[1024], a[1024];
    /* an empty list converges (PostgreSQL stores it as "") */
    struct req q = {ALL4, .settings = "{\"search_path\": \"\"}"};
    json_decref(ok(&q));
    json_t *r = ok(&q);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    /* refused before anything is written: a list PostgreSQL cannot read, a parameter it does
     * not take in a configuration file */
    const char *bad[] = {"{\"work_mem\": \"5MB\", \"search_path\": \"a b\"}",
                         "{\"work_mem\": \"5MB\", \"transaction_isolation\": \"serializable\"}"};
    for (size_t k = 0; k < 2; k++) {
        times(4, b, sizeof(b));
        q.settings = bad[k];
        r = converge(&q, &rc);
        assert_int_equal(rc, MGO_EINVAL);
        const char *m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
        assert_non_null(strstr(m, "request: settings."));
        json_decref(r);
        times(4, a, sizeof(a));
        assert_string_equal(b, a);
    }
    /* a record at a node's own key with another shard key (left by someone else) is taken over */
    char fields[1024], ci[256];
    (void)snprintf(fields, sizeof(fields),
                   "\"op\": \"publish_pooler\", \"pooler\": {\"id\": {\"component\": "
                   "\"MULTIPOOLER\", \"cell\": \"zone-a\", \"name\": \"n1\"}, \"shard_key\": "
                   "{\"database\": \"olddb\", \"table_group\": \"default\", \"shard\": "
                   "\"0-inf\"}, \"type\": \"REPLICA\"}");
    assert_int_equal(topo(fields), MGO_OK);
    struct req t = {ALL4, .topology = 1};
    json_decref(ok(&t));
    r = ok(&t);
    assert_true(json_is_true(json_object_get(r, "converged")));
    json_decref(r);
    assert_int_equal(serving_of(1, 0, NULL), 0);
    /* with topology, a conninfo must name its port (an environment default is no address) */
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    const char *noport = "{\"nodes\": [{\"name\": \"n0\", \"conninfo\": \"host=127.0.0.1 "
                         "user=postgres\", \"cell\": \"zone-a\"}], \"topology\": {\"database\": "
                         "\"postgres\", \"tablegroup\": \"default\", \"shard\": \"0-inf\", "
                         "\"cells\": {\"zone-a\": {\"endpoints\": [\"http://127.0.0.1:1\"], "
                         "\"root\": \"/multigres/zone-a\"}}}}";
    char *res = NULL;
    size_t len = 0;
    assert_int_equal(mgo_converge(plugin, noport, strlen(noport), &res, &len), MGO_EINVAL);
    assert_non_null(strstr(res, "needs port="));
    mgo_free(res);
}

static void x_bad(void **st)
{
    (void)st;
    const char *bad = "{\"durability\": \"MULTI_CELL_AT_LEAST_2\", \"nodes\": [{\"name\": \"n0\", "
                      "\"conninfo\": \"port=1\"}]}";
    char *res = NULL;
    size_t len = 0;
    assert_int_equal(mgo_converge(plugin, bad, strlen(bad), &res, &len), MGO_EINVAL); /* m21 */
    mgo_free(res);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(x_bad),           cmocka_unit_test(x_sync),
        cmocka_unit_test(x_settings),      cmocka_unit_test(x_pooler),
        cmocka_unit_test(x_set_compare),   cmocka_unit_test(x_settings_more),
        cmocka_unit_test(x_pooler_more),   cmocka_unit_test(x_audit_cases),
        cmocka_unit_test(x_two_primaries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
