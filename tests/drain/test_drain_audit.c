/*
 * mgo_drain against the cases a bug audit reproduced on a real shard (tests/pg harness): a
 * victim named without quotes while it is down, a commit still waiting on the victim when the
 * drain would acknowledge, two drains at once in a shard, MULTI_CELL_AT_LEAST_2 with a node
 * whose cell is unknown. Expected outcomes from docs/abi.md "mgo_drain" and lifecycle.md.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include "mgo/mgo.h"
#include "pg_harness.h"

static struct pg_shard shard;
static mgo_plugin *plugin;

struct nspec {
    const char *cell;
    const char *drain;
};

static json_t *nodes_doc(const struct nspec *ns)
{
    json_t *nodes = json_array();
    for (int i = 0; i < shard.n; i++) {
        char ci[256];
        pg_node_conninfo(&shard, i, ci, sizeof(ci));
        json_t *n = json_pack("{s:s, s:i, s:b, s:s}", "name", shard.nodes[i].name, "index", i,
                              "ready", 1, "conninfo", ci);
        if (ns && ns[i].cell)
            json_object_set_new(n, "cell", json_string(ns[i].cell));
        if (ns && ns[i].drain)
            json_object_set_new(n, "drain", json_string(ns[i].drain));
        json_array_append_new(nodes, n);
    }
    return nodes;
}

static int32_t step(const char *instance, const char *state, const char *dur,
                    const struct nspec *ns, char *out, size_t size)
{
    json_t *req = json_pack("{s:s, s:{s:s}, s:s, s:o, s:i}", "instance", instance, "annotations",
                            "drain.multigres.com/state", state, "durability", dur, "nodes",
                            nodes_doc(ns), "deadline_ms", 5000);
    char *text = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_drain(plugin, text, strlen(text), &res, &len);
    free(text);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(r, "state"));
    const char *m = json_string_value(json_object_get(r, "message"));
    if (!m)
        m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    (void)snprintf(out, size, "%s", s ? s : state);
    print_message("  drain %s [%s] -> %s rc=%d msg=%s\n", instance, state, out, rc, m ? m : "");
    json_decref(r);
    mgo_free(res);
    return rc;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void show_ssn(const char *when)
{
    char out[512] = "";
    pg_sql(&shard, 0, "SHOW synchronous_standby_names", 2000, out, sizeof(out));
    print_message("  [%s] primary synchronous_standby_names = %s\n", when, out);
}

static void open_plugin(void)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    assert_int_equal(mgo_open(&host, &plugin), MGO_OK);
}

/* The victim is down and named without quotes: it is still named (PostgreSQL reads the
 * unquoted name), so the drain rewrites the setting before it acknowledges, and commits flow. */
static void test_unquoted_victim_down(void **st)
{
    (void)st;
    char state[64], out[512];
    assert_int_equal(pg_shard_start(&shard, 2, "n2"), 0);
    open_plugin();
    assert_int_equal(pg_sql(&shard, 0, "CREATE TABLE t(x int)", 3000, NULL, 0), 0);
    show_ssn("start");
    assert_int_equal(pg_node_stop(&shard, 2, "fast"), 0);
    int rc = pg_sql(&shard, 0, "INSERT INTO t VALUES (1)", 1500, NULL, 0);
    print_message("  commit with n2 down before drain: %d\n", rc);
    int32_t r = step("n2", "draining", "AT_LEAST_2", NULL, state, sizeof(state));
    if (strcmp(state, "draining") == 0)
        r = step("n2", "draining", "AT_LEAST_2", NULL, state, sizeof(state));
    show_ssn("after drain step");
    rc = pg_sql(&shard, 0, "INSERT INTO t VALUES (2)", 3000, NULL, 0);
    print_message("  commit after n2 reached %s: %d (-110 = timed out)\n", state, rc);
    pg_sql(&shard, 0, "SELECT count(*) FROM pg_stat_activity WHERE wait_event='SyncRep'", 2000, out,
           sizeof(out));
    print_message("  backends waiting in SyncRep: %s\n", out);
    (void)r;
    pg_sql(&shard, 0, "SHOW synchronous_standby_names", 2000, out, sizeof(out));
    mgo_close(plugin);
    pg_shard_stop(&shard);
    assert_null(strstr(out, "n2"));
    assert_int_equal(rc, 0); /* the commit after the drain step did not hang */
}

/* A commit that waited on the (down) victim is released before the drain acknowledges. */
static void test_syncrep_waiter_at_ack(void **st)
{
    (void)st;
    char state[64] = "draining", out[512];
    assert_int_equal(pg_shard_start(&shard, 2, "\"n2\""), 0);
    open_plugin();
    assert_int_equal(pg_sql(&shard, 0, "CREATE TABLE t(x int)", 3000, NULL, 0), 0);
    assert_int_equal(
        pg_sql(&shard, 0, "ALTER SYSTEM SET wal_receiver_status_interval = '10s'", 3000, NULL, 0),
        0);
    assert_int_equal(pg_node_stop(&shard, 2, "fast"), 0);
    /* a commit waiting on n2 (async conn, left waiting) */
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    PGconn *c = PQconnectdb(ci);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    assert_int_equal(PQsendQuery(c, "INSERT INTO t VALUES (1)"), 1);
    pause_ms(300);
    for (int i = 0; i < 10 && strcmp(state, "acknowledged") != 0; i++) {
        step("n2", state, "AT_LEAST_2", NULL, state, sizeof(state));
        if (strcmp(state, "draining") == 0)
            pause_ms(100);
    }
    show_ssn("at acknowledged");
    pg_sql(&shard, 0, "SELECT count(*) FROM pg_stat_activity WHERE wait_event='SyncRep'", 2000, out,
           sizeof(out));
    print_message("  backends waiting in SyncRep when the hook said %s: %s\n", state, out);
    int waiting = atoi(out);
    for (int k = 0; k < 150; k++) {
        pg_sql(&shard, 0, "SELECT count(*) FROM pg_stat_activity WHERE wait_event='SyncRep'", 2000,
               out, sizeof(out));
        if (atoi(out) == 0) {
            print_message("  SyncRep waiter released %d ms after acknowledged\n", k * 100);
            break;
        }
        pause_ms(100);
    }
    PQfinish(c);
    mgo_close(plugin);
    pg_shard_stop(&shard);
    assert_int_equal(waiting, 0);
}

/* Two drains at once in a shard: the second waits, and never names the first victim again. */
static void test_concurrent_readd(void **st)
{
    (void)st;
    char state[64];
    assert_int_equal(pg_shard_start(&shard, 3, "ANY 1 (\"n1\", \"n2\", \"n3\")"), 0);
    open_plugin();
    struct nspec both[4] = {{0, 0}, {0, 0}, {0, "draining"}, {0, "draining"}};
    /* n2's drain */
    snprintf(state, sizeof(state), "draining");
    for (int i = 0; i < 10 && strcmp(state, "acknowledged"); i++) {
        step("n2", state, "AT_LEAST_2", both, state, sizeof(state));
        pause_ms(100);
    }
    show_ssn("n2 acknowledged");
    /* n3's drain, its request built before n2's acknowledged was persisted */
    char s3[64];
    step("n3", "draining", "AT_LEAST_2", both, s3, sizeof(s3));
    pause_ms(200);
    show_ssn("after n3's step");
    char out[512];
    pg_sql(&shard, 0, "SHOW synchronous_standby_names", 2000, out, sizeof(out));
    mgo_close(plugin);
    pg_shard_stop(&shard);
    assert_null(strstr(out, "\"n2\""));
}

/* MULTI_CELL_AT_LEAST_2 needs every node's cell: an unknown cell is not "another cell". */
static void test_multicell_missing_cell(void **st)
{
    (void)st;
    char state[64];
    assert_int_equal(pg_shard_start(&shard, 2, "ANY 1 (\"n1\", \"n2\")"), 0);
    open_plugin();
    struct nspec all[3] = {{"z1", 0}, {"z1", 0}, {"z1", 0}};
    struct nspec nocell[3] = {{NULL, 0}, {"z1", 0}, {"z1", 0}};
    int32_t r1 = step("n2", "draining", "MULTI_CELL_AT_LEAST_2", all, state, sizeof(state));
    int32_t r2 = step("n2", "draining", "MULTI_CELL_AT_LEAST_2", nocell, state, sizeof(state));
    pause_ms(200);
    show_ssn("after");
    mgo_close(plugin);
    pg_shard_stop(&shard);
    assert_int_equal(r1, MGO_EAGAIN);
    assert_int_not_equal(r2, MGO_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unquoted_victim_down),
        cmocka_unit_test(test_syncrep_waiter_at_ack),
        cmocka_unit_test(test_concurrent_readd),
        cmocka_unit_test(test_multicell_missing_cell),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
