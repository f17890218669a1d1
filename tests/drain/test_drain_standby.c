/*
 * mgo_drain on real PostgreSQL (tests/pg/pg_harness.c): a primary n0 with synchronous standbys
 * n1 and n2 under "ANY 1 (n1, n2)" and a continuous writer recording every acknowledged
 * commit. Draining n2 takes it out of the synchronous set and reaches ready-for-deletion with
 * no write stalled past the step deadline and no acknowledged commit lost; draining n1 next
 * (the last synchronous standby AT_LEAST_2 needs) is refused while commits keep succeeding.
 * Expected states and names come from docs/abi.md "mgo_drain" and lifecycle.md.
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

#include "mgo/mgo.h"
#include "pg_harness.h"
#include "writer.h"

#define STEP_DEADLINE_MS  5000
#define COMMIT_TIMEOUT_MS 2000

static struct pg_shard shard;
static mgo_plugin *plugin;

/* The drain state the host keeps for each node ("" when none). */
static char node_drain[8][64];

static json_t *nodes_doc(void)
{
    json_t *nodes = json_array();
    for (int i = 0; i < shard.n; i++) {
        char ci[256];
        pg_node_conninfo(&shard, i, ci, sizeof(ci));
        json_t *n = json_pack("{s:s, s:s, s:i, s:b, s:s}", "name", shard.nodes[i].name, "cell",
                              "z1", "index", i, "ready", 1, "conninfo", ci);
        if (node_drain[i][0])
            json_object_set_new(n, "drain", json_string(node_drain[i]));
        json_array_append_new(nodes, n);
    }
    return nodes;
}

/* One mgo_drain call for `instance` in `state`; the result's state in out, the status back. */
static int32_t drain_step(const char *instance, const char *state, char *out, size_t size,
                          char *message, size_t msize)
{
    json_t *req = json_pack("{s:s, s:{s:s}, s:s, s:o, s:i}", "instance", instance, "annotations",
                            "drain.multigres.com/state", state, "durability", "AT_LEAST_2", "nodes",
                            nodes_doc(), "deadline_ms", STEP_DEADLINE_MS);
    char *text = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_drain(plugin, text, strlen(text), &res, &len);
    free(text);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    const char *s = json_string_value(json_object_get(r, "state"));
    const char *m = json_string_value(json_object_get(r, "message"));
    if (!m)
        m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    (void)snprintf(out, size, "%s", s ? s : state);
    (void)snprintf(message, msize, "%s", m ? m : "");
    json_decref(r);
    return rc;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Call until the state stops moving or `want` is reached; the last status. */
static int32_t drive(const char *instance, char *state, size_t size, const char *want,
                     char *message, size_t msize)
{
    int32_t rc = MGO_OK;
    for (int i = 0; i < 40 && strcmp(state, want) != 0; i++) {
        char next[64];
        rc = drain_step(instance, state, next, sizeof(next), message, msize);
        print_message("drain %s: %s -> %s (%d) %s\n", instance, state, next, rc, message);
        if (rc != MGO_OK && rc != MGO_EAGAIN)
            return rc;
        if (strcmp(next, state) == 0)
            pause_ms(100); /* waiting: a reload to show, or the policy */
        (void)snprintf(state, size, "%s", next);
        if (rc == MGO_EAGAIN && i > 6)
            return rc; /* refused for good */
    }
    return rc;
}

static int setup(void **st)
{
    (void)st;
    if (pg_shard_start(&shard, 2, "ANY 1 (n1, n2)") != 0)
        return -1;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    return mgo_open(&host, &plugin) == MGO_OK ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    mgo_close(plugin);
    pg_shard_stop(&shard);
    return 0;
}

static void test_drain_standbys(void **st)
{
    (void)st;
    char primary[256], state[64] = "requested", message[768], out[256];
    pg_node_conninfo(&shard, 0, primary, sizeof(primary));
    struct writer *w = writer_start(primary, COMMIT_TIMEOUT_MS);
    assert_non_null(w);
    pause_ms(500);

    /* n2: out of the synchronous set, then ready for deletion */
    int32_t rc = drive("n2", state, sizeof(state), "ready-for-deletion", message, sizeof(message));
    assert_int_equal(rc, MGO_OK);
    assert_string_equal(state, "ready-for-deletion");
    assert_int_equal(pg_sql(&shard, 0, "SHOW synchronous_standby_names", 2000, out, sizeof(out)),
                     0);
    assert_string_equal(out, "ANY 1 (\"n1\")");
    /* n2 stays up (its host has not deleted it yet): it is gone for the next drain */
    (void)snprintf(node_drain[2], sizeof(node_drain[2]), "%s", state);

    /* n1: the last synchronous standby AT_LEAST_2 needs: refused, commits go on */
    struct writer_stats before, after;
    writer_get_stats(w, &before);
    (void)snprintf(state, sizeof(state), "requested");
    rc = drive("n1", state, sizeof(state), "acknowledged", message, sizeof(message));
    assert_int_equal(rc, MGO_EAGAIN);
    assert_string_equal(state, "draining");
    assert_non_null(strstr(message, "blocked"));
    pause_ms(300);
    writer_get_stats(w, &after);
    assert_true(after.acked > before.acked);

    writer_stop(w);
    writer_get_stats(w, &after);
    size_t missing = 0;
    char report[1024];
    assert_int_equal(writer_check(primary, w, &missing, report, sizeof(report)), 0);
    print_message("writer: %zu acknowledged, %zu timed out, longest stall %lld ms; %s\n",
                  after.acked, after.timed_out, (long long)after.longest_stall_ms, report);
    assert_int_equal(missing, 0);
    assert_int_equal(after.timed_out, 0);
    /* writes never stalled longer than a step's deadline */
    assert_true(after.longest_stall_ms < STEP_DEADLINE_MS);
    writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_standbys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
