/*
 * Drain decisions: expected values written by hand from docs/spec/lifecycle.md ("Drain of a
 * standby", "Drain of the primary: planned switchover", the durability terms) and from
 * PostgreSQL's synchronous_standby_names syntax (ANY 1 (...), quoted identifiers).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "drain/select.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A healthy standby: ready, streaming, not draining. */
#define STANDBY(nm, cl, idx, recv, repl)                                                           \
    {                                                                                              \
        .name = (nm), .cell = (cl), .index = (idx), .ready = 1, .streaming = 1,                    \
        .received_lsn = (recv), .replayed_lsn = (repl)                                             \
    }
#define PRIMARY(nm, cl, idx)                                                                       \
    {                                                                                              \
        .name = (nm), .cell = (cl), .index = (idx), .ready = 1, .primary = 1                       \
    }

static void test_policy_parse(void **state)
{
    (void)state;
    enum drain_policy p = DRAIN_MULTI_CELL_AT_LEAST_2;

    assert_int_equal(drain_policy_parse("AT_LEAST_2", &p), 0);
    assert_int_equal(p, DRAIN_AT_LEAST_2);
    assert_int_equal(drain_policy_parse("MULTI_CELL_AT_LEAST_2", &p), 0);
    assert_int_equal(p, DRAIN_MULTI_CELL_AT_LEAST_2);

    const char *bad[] = {"at_least_2", "AT_LEAST_3", "", "MULTI_CELL", "AT_LEAST_2 "};
    for (size_t i = 0; i < N(bad); i++) {
        p = DRAIN_MULTI_CELL_AT_LEAST_2;
        assert_int_equal(drain_policy_parse(bad[i], &p), -EINVAL);
        assert_int_equal(p, DRAIN_MULTI_CELL_AT_LEAST_2); /* untouched on failure */
    }
    assert_int_equal(drain_policy_parse(NULL, &p), -EINVAL);
}

static void test_pick_caught_up_over_lagging(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        PRIMARY("p-0", "a", 0),
        STANDBY("p-1", "a", 1, 100, 100), /* lagging */
        STANDBY("p-2", "a", 2, 200, 150),
    };
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 2);
}

/* A standby that lacks the old primary's final WAL (unfit) is never the candidate, however far
 * ahead it looks, but still counts as the standby the new primary needs. */
static void test_pick_never_unfit(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        PRIMARY("p-0", "a", 0),
        STANDBY("p-1", "a", 1, 300, 300),
        STANDBY("p-2", "a", 2, 200, 150),
    };
    size_t got = 99;

    nodes[1].unfit = 1;
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 2);
    nodes[2].unfit = 1;
    got = 99;
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0),
                     -ENOENT);
    assert_int_equal(got, 99);
}

static void test_pick_received_beats_replayed(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        STANDBY("p-1", "a", 1, 200, 200),
        PRIMARY("p-0", "a", 0),
        STANDBY("p-2", "a", 2, 300, 100),
    };
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, &got, NULL, 0), 0);
    assert_int_equal(got, 2);

    /* Same received position: the higher replayed position wins. */
    nodes[2].received_lsn = 200;
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, &got, NULL, 0), 0);
    assert_int_equal(got, 0);
}

static void test_pick_tie_lowest_index_numeric(void **state)
{
    (void)state;
    /* "p-10" sorts before "p-2" as text; as indexes, 2 comes first. */
    struct drain_node nodes[] = {
        PRIMARY("p-0", "a", 0),
        STANDBY("p-10", "a", 10, 500, 500),
        STANDBY("p-2", "a", 2, 500, 500),
        STANDBY("p-9", "a", 9, 500, 500),
    };
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 2);

    /* Same index in two cells: the lower name. */
    struct drain_node cells[] = {
        PRIMARY("p-a-0", "a", 0),
        STANDBY("p-c-1", "c", 1, 500, 500),
        STANDBY("p-b-1", "b", 1, 500, 500),
    };
    assert_int_equal(drain_pick_candidate(cells, N(cells), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 2);
}

static void test_pick_never_unhealthy(void **state)
{
    (void)state;
    /* Each unhealthy standby is the most advanced; the healthy laggard must still win. */
    struct drain_node nodes[] = {
        PRIMARY("p-0", "a", 0),           STANDBY("p-1", "a", 1, 900, 900),
        STANDBY("p-2", "a", 2, 800, 800), STANDBY("p-3", "a", 3, 700, 700),
        STANDBY("p-4", "a", 4, 100, 100), STANDBY("p-5", "a", 5, 50, 50),
    };
    nodes[1].ready = 0;
    nodes[2].draining = 1;
    nodes[3].streaming = 0;
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 4);

    /* No healthy standby at all: -ENOENT, *ret untouched, and a reason. */
    nodes[4].ready = 0;
    nodes[5].draining = 1;
    char why[128] = "";
    got = 99;
    assert_int_equal(
        drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, why, sizeof(why)),
        -ENOENT);
    assert_int_equal(got, 99);
    assert_string_equal(why, "no ready, streaming standby of p-0 that is not draining");
}

static void test_pick_at_least_2_needs_a_standby_after_promotion(void **state)
{
    (void)state;
    /* Promoting the only healthy standby would leave the new primary without any. */
    struct drain_node nodes[] = {
        PRIMARY("p-0", "a", 0),
        STANDBY("p-1", "a", 1, 100, 100),
        STANDBY("p-2", "a", 2, 300, 300),
    };
    nodes[2].streaming = 0;
    char why[128] = "";
    size_t got = 99;

    assert_int_equal(
        drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, why, sizeof(why)),
        -ENOENT);
    assert_string_equal(why, "promoting p-1 would leave no other streaming standby");

    nodes[2].streaming = 1;
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 2);
}

static void test_pick_multi_cell(void **state)
{
    (void)state;
    /* Primary in a; the healthy standbys are all in b: whichever is promoted, the other one is
     * in the new primary's own cell, and c-1 (the only other cell) is not ready. */
    struct drain_node nodes[] = {
        PRIMARY("a-0", "a", 0),
        STANDBY("b-1", "b", 1, 300, 300),
        STANDBY("b-2", "b", 2, 200, 200),
        STANDBY("c-1", "c", 1, 100, 100),
    };
    nodes[3].ready = 0;
    char why[128] = "";
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 0, &got,
                                          why, sizeof(why)),
                     -ENOENT);
    assert_int_equal(got, 99);
    assert_string_equal(why, "promoting b-1 would leave no other streaming standby outside cell b");

    /* The same shard under AT_LEAST_2 has a candidate: cells do not matter there. */
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 1);

    /* Once c-1 is ready, promoting b-1 leaves c-1 in another cell. */
    nodes[3].ready = 1;
    assert_int_equal(
        drain_pick_candidate(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 1);

    /* A standby in the old primary's cell may take over if the rest are elsewhere. */
    struct drain_node same[] = {
        PRIMARY("a-0", "a", 0),
        STANDBY("a-1", "a", 1, 400, 400),
        STANDBY("b-1", "b", 1, 300, 300),
    };
    assert_int_equal(
        drain_pick_candidate(same, N(same), DRAIN_MULTI_CELL_AT_LEAST_2, 0, &got, NULL, 0), 0);
    assert_int_equal(got, 1);
}

static void test_pick_rejects_bad_arguments(void **state)
{
    (void)state;
    struct drain_node nodes[] = {PRIMARY("p-0", "a", 0), STANDBY("p-1", "b", 1, 1, 1)};
    size_t got = 99;

    assert_int_equal(drain_pick_candidate(nodes, N(nodes), DRAIN_AT_LEAST_2, 2, &got, NULL, 0),
                     -EINVAL);
    assert_int_equal(drain_pick_candidate(NULL, 0, DRAIN_AT_LEAST_2, 0, &got, NULL, 0), -EINVAL);
    assert_int_equal(drain_pick_candidate(nodes, N(nodes), (enum drain_policy)7, 0, &got, NULL, 0),
                     -EINVAL);
    assert_int_equal(got, 99);
}

static void test_policy_satisfied(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        PRIMARY("a-0", "a", 0),
        STANDBY("a-1", "a", 1, 1, 1),
        STANDBY("b-1", "b", 1, 1, 1),
    };
    char why[128] = "";

    assert_int_equal(
        drain_policy_satisfied(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, NULL, 0), 1);
    assert_int_equal(
        drain_policy_satisfied(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 0, SIZE_MAX, NULL, 0),
        1);
    /* Without b-1 only a same-cell standby is left. */
    assert_int_equal(drain_policy_satisfied(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 0, 2, why,
                                            sizeof(why)),
                     0);
    assert_string_equal(why, "no other streaming standby outside cell a");
    assert_int_equal(drain_policy_satisfied(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, 2, NULL, 0), 1);

    nodes[1].streaming = 0;
    nodes[2].draining = 1;
    assert_int_equal(
        drain_policy_satisfied(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, why, sizeof(why)),
        0);
    assert_string_equal(why, "no streaming standby");
}

static void test_standby_may_leave(void **state)
{
    (void)state;
    /* b-1 is being drained (step 1 persisted `draining`); a-1 shares the primary's cell. */
    struct drain_node nodes[] = {
        STANDBY("a-1", "a", 1, 1, 1),
        PRIMARY("a-0", "a", 0),
        STANDBY("b-1", "b", 1, 1, 1),
    };
    nodes[2].draining = 1;
    char why[128] = "";

    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 2, why, sizeof(why)),
        0);
    assert_string_equal(why, "no other streaming standby outside cell a");
    /* Under AT_LEAST_2, a-1 is enough. */
    assert_int_equal(drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 2, NULL, 0), 1);

    /* The last synchronous standby the policy needs may not leave. */
    nodes[2].draining = 0;
    nodes[2].streaming = 0;
    nodes[0].draining = 1;
    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, why, sizeof(why)), 0);
    assert_string_equal(why, "no other streaming standby");

    /* Once b-1 streams again, a-1 may go, under both policies. */
    nodes[2].streaming = 1;
    assert_int_equal(drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, NULL, 0), 1);
    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 0, NULL, 0), 1);
}

static void test_standby_may_leave_refusals(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        PRIMARY("a-0", "a", 0),
        STANDBY("a-1", "a", 1, 1, 1),
        STANDBY("a-2", "a", 2, 1, 1),
    };
    char why[128] = "";

    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "a-0 is the primary: it hands over by switchover first");
    assert_int_equal(drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 3, NULL, 0),
                     -EINVAL);

    nodes[0].primary = 0;
    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, why, sizeof(why)), 0);
    assert_string_equal(why, "the shard has no primary");

    nodes[0].primary = 1;
    nodes[2].primary = 1;
    assert_int_equal(
        drain_standby_may_leave(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, why, sizeof(why)), 0);
    assert_string_equal(why, "two primaries: a-0 and a-2");
}

static void test_sync_names(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        STANDBY("n1", "a", 1, 1, 1),
        PRIMARY("n0", "a", 0),
        STANDBY("n2", "b", 2, 1, 1),
        STANDBY("n3", "c", 3, 1, 1),
    };
    char out[128];

    assert_int_equal(
        drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, SIZE_MAX, out, sizeof(out)), 0);
    assert_string_equal(out, "ANY 1 (\"n1\", \"n2\", \"n3\")");
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 1, 2, out, sizeof(out)),
                     0);
    assert_string_equal(out, "ANY 1 (\"n1\", \"n3\")");
    /* MULTI_CELL: n1 shares the primary's cell a. */
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 1, SIZE_MAX,
                                      out, sizeof(out)),
                     0);
    assert_string_equal(out, "ANY 1 (\"n2\", \"n3\")");
    assert_int_equal(
        drain_sync_names(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 1, 3, out, sizeof(out)), 0);
    assert_string_equal(out, "ANY 1 (\"n2\")");

    /* A standby that is not streaming yet is still listed: it counts once it catches up. */
    nodes[2].streaming = 0;
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_MULTI_CELL_AT_LEAST_2, 1, SIZE_MAX,
                                      out, sizeof(out)),
                     0);
    assert_string_equal(out, "ANY 1 (\"n2\", \"n3\")");

    /* Nobody left: the empty setting. */
    struct drain_node alone[] = {PRIMARY("n0", "a", 0), STANDBY("n1", "a", 1, 1, 1)};
    assert_int_equal(drain_sync_names(alone, N(alone), DRAIN_AT_LEAST_2, 0, 1, out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(drain_sync_names(alone, N(alone), DRAIN_MULTI_CELL_AT_LEAST_2, 0, SIZE_MAX,
                                      out, sizeof(out)),
                     0);
    assert_string_equal(out, "");
}

static void test_sync_names_quoting(void **state)
{
    (void)state;
    struct drain_node nodes[] = {
        PRIMARY("n0", "a", 0),
        STANDBY("a\"b", "a", 1, 1, 1),
        STANDBY("Upper Case", "a", 2, 1, 1),
    };
    char out[128];

    assert_int_equal(
        drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, out, sizeof(out)), 0);
    assert_string_equal(out, "ANY 1 (\"a\"\"b\", \"Upper Case\")");

    nodes[2].name = "";
    assert_int_equal(
        drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, out, sizeof(out)),
        -EINVAL);
    nodes[2].name = NULL;
    assert_int_equal(
        drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, out, sizeof(out)),
        -EINVAL);
    /* Excluded, it is not written, so it does not matter. */
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, 2, out, sizeof(out)),
                     0);
    assert_string_equal(out, "ANY 1 (\"a\"\"b\")");
}

static void test_sync_names_range(void **state)
{
    (void)state;
    struct drain_node nodes[] = {PRIMARY("n0", "a", 0), STANDBY("n1", "b", 1, 1, 1)};
    char out[32];

    /* ANY 1 ("n1") is 12 characters: 13 bytes with the NUL. */
    memset(out, 'x', sizeof(out));
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, out, 12),
                     -ERANGE);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 'x'); /* untouched on failure */
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, SIZE_MAX, out, 13), 0);
    assert_string_equal(out, "ANY 1 (\"n1\")");
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 0, 1, out, 0), -ERANGE);
    assert_int_equal(drain_sync_names(nodes, N(nodes), DRAIN_AT_LEAST_2, 2, 1, out, 32), -EINVAL);
}

/* synchronous_standby_names read as PostgreSQL reads it (values written by hand). */
static void test_names_mention(void **state)
{
    (void)state;
    assert_int_equal(drain_names_mention("ANY 1 (n1, n2)", "n2"), 1);
    assert_int_equal(drain_names_mention("ANY 1 (\"n1\")", "n2"), 0);
    assert_int_equal(drain_names_mention("FIRST 2 (N2, n3)", "n2"), 1); /* any case */
    assert_int_equal(drain_names_mention("n2", "n2"), 1);               /* a bare name */
    assert_int_equal(drain_names_mention("2 (n1, n20)", "n2"), 0);      /* not a prefix */
    assert_int_equal(drain_names_mention("*", "n2"), 1);                /* every standby */
    assert_int_equal(drain_names_mention("ANY 1 (\"a\"\"b\")", "a\"b"), 1);
    assert_int_equal(drain_names_mention("", "n2"), 0);
    assert_int_equal(drain_names_mention("ANY 1 (\"n2", "n1"), 1);    /* unreadable: still named */
    assert_int_equal(drain_names_mention("ANY 1 (n1; n3)", "n2"), 1); /* unreadable */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_mention),
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_pick_caught_up_over_lagging),
        cmocka_unit_test(test_pick_received_beats_replayed),
        cmocka_unit_test(test_pick_never_unfit),
        cmocka_unit_test(test_pick_tie_lowest_index_numeric),
        cmocka_unit_test(test_pick_never_unhealthy),
        cmocka_unit_test(test_pick_at_least_2_needs_a_standby_after_promotion),
        cmocka_unit_test(test_pick_multi_cell),
        cmocka_unit_test(test_pick_rejects_bad_arguments),
        cmocka_unit_test(test_policy_satisfied),
        cmocka_unit_test(test_standby_may_leave),
        cmocka_unit_test(test_standby_may_leave_refusals),
        cmocka_unit_test(test_sync_names),
        cmocka_unit_test(test_sync_names_quoting),
        cmocka_unit_test(test_sync_names_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
