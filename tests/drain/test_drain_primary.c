/*
 * The drain of the primary (planned switchover) through mgo_drain on a real shard: n0 primary,
 * n1 and n2 synchronous standbys under "ANY 1 (n1, n2)", a writer committing continuously
 * through the current primary and an observer counting, every few milliseconds, the nodes that
 * answer as a primary. Expected behaviour from docs/spec/lifecycle.md ("Drain of the primary")
 * and docs/abi.md ("mgo_drain"):
 *  - a standby is promoted, the old primary is stopped and fenced, the drain reaches
 *    ready-for-deletion; never two primaries; zero acknowledged commits lost; the old primary
 *    rejoins as a standby of the new one;
 *  - a standby that has not replayed the old primary's final WAL is never promoted while one
 *    that has exists;
 *  - when no standby holds the final WAL, the switchover is abandoned and the old primary takes
 *    writes again; once the standbys are back, the drain finishes.
 */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dhost.h"
#include "mgo/mgo.h"
#include "pg_harness.h"
#include "writer.h"

#define COMMIT_TIMEOUT_MS 2000

static struct pg_shard shard;
static mgo_plugin *plugin;
static struct writer *writer;
static int primary = 0; /* the current primary's node index */

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the observer: nodes answering as a primary, at every observation ---------------- */

static struct {
    pthread_t thread;
    _Atomic int stop, max_primaries, observations;
} obs;

static void *observe(void *arg)
{
    (void)arg;
    PGconn *conns[PG_SHARD_MAX_NODES] = {0};
    while (!obs.stop) {
        int primaries = 0;
        for (int i = 0; i < shard.n; i++) {
            char err[256];
            PGresult *r = NULL;
            if (!conns[i]) {
                char ci[256];
                pg_node_conninfo(&shard, i, ci, sizeof(ci));
                if (pg_harness_connect(ci, 200, &conns[i], err, sizeof(err)) != 0)
                    continue;
            }
            if (pg_harness_query(conns[i], "SELECT pg_is_in_recovery()", 500, &r, err,
                                 sizeof(err)) == 0 &&
                PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "f") == 0)
                primaries++;
            else if (!r || PQstatus(conns[i]) != CONNECTION_OK) {
                PQfinish(conns[i]);
                conns[i] = NULL;
            }
            PQclear(r);
        }
        if (primaries > obs.max_primaries)
            obs.max_primaries = primaries;
        obs.observations++;
        pause_ms(5);
    }
    for (int i = 0; i < shard.n; i++)
        PQfinish(conns[i]);
    return NULL;
}

/* ---- host hooks -------------------------------------------------------------------------- */

static struct dhost_follow follow = {.primary = &primary};

static void host_init(struct dhost *h, const char *instance)
{
    dhost_init(h, plugin, &shard, instance, &follow);
}

/* Writes go on, and every acknowledged commit is on the current primary. */
static void check_writes(const char *when)
{
    char report[1024];
    int rc = dhost_check_writes(writer, &shard, primary, report, sizeof(report));
    print_message("%s: %s\n", when, report);
    assert_int_equal(rc, 0);
}

static void rejoin(int old)
{
    assert_int_equal(dhost_rejoin(&shard, old, primary), 0);
}

/* The shard as the tests start it, checked by the observer: no violation. */
static void restore_sync_set(void)
{
    char report[8192];
    assert_int_equal(dhost_restore_sync_set(&shard, primary), 0);
    int ok = dhost_observe(plugin, &shard, report, sizeof(report));
    if (ok != 1)
        print_message("observe: %s\n", report);
    assert_int_equal(ok, 1);
}

static int setup(void **st)
{
    (void)st;
    if (pg_shard_start(&shard, 2, "ANY 1 (n1, n2)") != 0)
        return -1;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    if (mgo_open(&host, &plugin) != MGO_OK)
        return -1;
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, COMMIT_TIMEOUT_MS);
    follow.writer = writer;
    if (!writer)
        return -1;
    obs.stop = 0;
    return pthread_create(&obs.thread, NULL, observe, NULL) == 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    obs.stop = 1;
    pthread_join(obs.thread, NULL);
    writer_stop(writer);
    writer_free(writer);
    mgo_close(plugin);
    pg_shard_stop(&shard);
    return 0;
}

static void test_switchover(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary;
    pause_ms(500);
    host_init(&h, shard.nodes[old].name);
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 100, 100), 0);
    assert_int_not_equal(primary, old);
    assert_int_equal(h.stops, 1);
    assert_int_equal(h.starts, 0);
    assert_false(dhost_node_running(&h, old));
    /* the new primary takes writes and names only the remaining standby */
    char out[256], want[128];
    assert_int_equal(pg_sql(&shard, primary, "SELECT pg_is_in_recovery()", 5000, out, sizeof(out)),
                     0);
    assert_string_equal(out, "f");
    int other = 3 - old - primary;
    (void)snprintf(want, sizeof(want), "ANY 1 (\"%s\")", shard.nodes[other].name);
    assert_int_equal(
        pg_sql(&shard, primary, "SHOW synchronous_standby_names", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    pause_ms(300);
    check_writes("after the switchover");
    assert_int_equal(obs.max_primaries, 1);
    rejoin(old);
    restore_sync_set();
    check_writes("after the rejoin");
    assert_int_equal(obs.max_primaries, 1);
    print_message("observer: %d observations, at most %d primary\n", obs.observations,
                  obs.max_primaries);
}

/* A standby whose replay is paused has not replayed the final checkpoint: never promoted. Its
 * replay resumes once the choice is persisted (a paused standby cannot follow the new
 * primary's timeline, and the new primary needs it as its synchronous standby). */
static int lagging = -1;

static int persist_resume(struct dhost *h)
{
    int rc = dhost_follow_switchover(h);
    if (rc == 0 && strncmp(h->switchover, "promoting:", 10) == 0 && lagging >= 0) {
        rc = pg_sql(&shard, lagging, "SELECT pg_wal_replay_resume()", 5000, NULL, 0);
        lagging = -1;
    }
    return rc;
}

static void test_lagging_not_chosen(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary, lag = -1, good = -1;
    for (int i = 0; i < shard.n; i++)
        if (i != old) {
            if (lag < 0)
                lag = i; /* the lower index: it would win a tie */
            else
                good = i;
        }
    assert_int_equal(pg_sql(&shard, lag, "SELECT pg_wal_replay_pause()", 5000, NULL, 0), 0);
    pause_ms(300); /* the writer moves on; the paused standby's replay does not */
    host_init(&h, shard.nodes[old].name);
    h.persist = persist_resume;
    lagging = lag;
    int32_t rc = dhost_run(&h, "ready-for-deletion", 100, 100);
    if (lagging >= 0)
        (void)pg_sql(&shard, lag, "SELECT pg_wal_replay_resume()", 5000, NULL, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(primary, good);
    pause_ms(300);
    check_writes("after the switchover past a lagging standby");
    rejoin(old);
    restore_sync_set();
    assert_int_equal(obs.max_primaries, 1);
}

/* Standbys lost once the primary is stopped: no standby holds its final WAL, so the switchover
 * is abandoned and the primary restarted; with the standbys back, the drain completes. */
static int lose_standbys(struct dhost *h, int i)
{
    int rc = dhost_stop_harness(h, i);
    for (int k = 0; k < shard.n; k++)
        if (k != i && pg_node_stop(&shard, k, "immediate") != 0)
            rc = -1;
    return rc;
}

static int start_fails(struct dhost *h, int i)
{
    (void)h;
    (void)i;
    return -1;
}

static void test_abandoned(void **st)
{
    (void)st;
    struct dhost h;
    char out[16];
    int old = primary;
    host_init(&h, shard.nodes[old].name);
    h.deadline_ms = 2000;
    h.stop = lose_standbys;
    /* the host dies after persisting the abandonment, before it starts the primary */
    h.start = start_fails;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 8, 100), -1000);
    assert_string_equal(h.switchover, "");
    assert_false(dhost_node_running(&h, old));
    /* the next call finds the primary stopped with no switchover holding it: start */
    h.start = dhost_start_harness;
    int32_t rc = dhost_run(&h, "ready-for-deletion", 8, 100);
    assert_int_equal(rc, MGO_EAGAIN);
    assert_int_equal(h.stops, 1);
    assert_int_equal(h.starts, 2);
    assert_string_equal(h.switchover, "");
    assert_non_null(strstr(h.message, "blocked"));
    assert_true(dhost_node_running(&h, old));
    assert_int_equal(pg_sql(&shard, old, "SELECT pg_is_in_recovery()", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, "f");
    assert_int_equal(primary, old);
    /* the standbys come back as they were; the drain then goes through */
    for (int k = 0; k < shard.n; k++)
        if (k != old)
            assert_int_equal(pg_node_start(&shard, k), 0);
    h.stop = dhost_stop_harness;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 100, 100), 0);
    assert_int_not_equal(primary, old);
    pause_ms(300);
    check_writes("after the abandoned then completed switchover");
    rejoin(old);
    restore_sync_set();
    assert_int_equal(obs.max_primaries, 1);
}

/* The candidate stops replaying once it is chosen (fenced:C persisted): it lacks the final
 * checkpoint, so the other standby, which has it, is promoted instead. */
static int paused[PG_SHARD_MAX_NODES];

static int persist_pause_candidate(struct dhost *h)
{
    if (strncmp(h->switchover, "fenced:", 7) == 0) {
        int c = dhost_node(h, h->switchover + 7);
        if (c < 0 || pg_sql(&shard, c, "SELECT pg_wal_replay_pause()", 5000, NULL, 0) != 0)
            return -1;
        paused[c] = 1;
    }
    if (strncmp(h->switchover, "promoting:", 10) == 0)
        for (int i = 0; i < shard.n; i++)
            if (paused[i]) {
                if (pg_sql(&shard, i, "SELECT pg_wal_replay_resume()", 5000, NULL, 0) != 0)
                    return -1;
                paused[i] = 0;
            }
    return dhost_follow_switchover(h);
}

static void test_candidate_behind_after_fence(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary;
    host_init(&h, shard.nodes[old].name);
    h.persist = persist_pause_candidate;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 100, 100), 0);
    int fenced = -1;
    for (int i = 0; i < shard.n; i++)
        if (i != old && i != primary)
            fenced = i;
    /* the chosen candidate was paused, so the other one was promoted */
    assert_int_not_equal(primary, old);
    assert_int_not_equal(primary, fenced);
    check_writes("after a switchover past a candidate that fell behind");
    rejoin(old);
    restore_sync_set();
    assert_int_equal(obs.max_primaries, 1);
}

/* Both standbys stop replaying once the primary is fenced: none holds the final checkpoint,
 * so the switchover is abandoned and the old primary takes writes again. */
static int persist_pause_all(struct dhost *h)
{
    if (strncmp(h->switchover, "fenced:", 7) == 0)
        for (int i = 0; i < shard.n; i++)
            if (i != primary && !paused[i]) {
                if (pg_sql(&shard, i, "SELECT pg_wal_replay_pause()", 5000, NULL, 0) != 0)
                    return -1;
                paused[i] = 1;
            }
    return dhost_follow_switchover(h);
}

static void test_no_standby_caught_up(void **st)
{
    (void)st;
    struct dhost h;
    char out[16];
    int old = primary;
    host_init(&h, shard.nodes[old].name);
    h.deadline_ms = 2000;
    h.persist = persist_pause_all;
    /* the standbys do not replay the shutdown checkpoint: abandoned, started, fenced again... */
    (void)dhost_run(&h, "ready-for-deletion", 5, 100);
    assert_true(h.starts >= 1);
    assert_int_equal(primary, old);
    for (int i = 0; i < shard.n; i++)
        if (paused[i]) {
            assert_int_equal(pg_sql(&shard, i, "SELECT pg_wal_replay_resume()", 5000, NULL, 0), 0);
            paused[i] = 0;
        }
    /* the old primary is running and writable, or stopped under a fresh fence: let the
     * drain finish now that the standbys replay again */
    h.persist = dhost_follow_switchover;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 100, 100), 0);
    assert_int_not_equal(primary, old);
    assert_int_equal(pg_sql(&shard, primary, "SELECT pg_is_in_recovery()", 5000, out, sizeof(out)),
                     0);
    assert_string_equal(out, "f");
    check_writes("after an abandoned switchover (standbys behind), then completed");
    rejoin(old);
    restore_sync_set();
    assert_int_equal(obs.max_primaries, 1);
}

/* The primary does not stop cleanly (immediate shutdown: pg_control says "in production"):
 * the standby that received the most is promoted once every standby answers. */
static int stop_immediate(struct dhost *h, int i)
{
    (void)h;
    return pg_node_stop(&shard, i, "immediate");
}

static char promoting_message[1024];

static int persist_note(struct dhost *h)
{
    if (strncmp(h->switchover, "promoting:", 10) == 0 && !promoting_message[0])
        (void)snprintf(promoting_message, sizeof(promoting_message), "%s", h->message);
    return dhost_follow_switchover(h);
}

static void test_unclean_stop(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary;
    host_init(&h, shard.nodes[old].name);
    h.stop = stop_immediate;
    h.persist = persist_note;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 100, 100), 0);
    assert_int_not_equal(primary, old);
    /* chosen by the rule for a crashed primary (lifecycle.md, step 4) */
    assert_non_null(strstr(promoting_message, "crashed primary"));
    check_writes("after a switchover from a primary that stopped uncleanly");
    /* the crashed old primary may hold WAL the new one never got: it rejoins after pg_rewind */
    assert_int_equal(pg_node_rewind(&shard, old, primary), 0);
    rejoin(old);
    restore_sync_set();
    check_writes("after the crashed primary was rewound and rejoined");
    assert_int_equal(obs.max_primaries, 1);
}

/* Bad requests: the exact error, and nothing touched. */
static void test_bad_requests(void **st)
{
    (void)st;
    char p[256], others[2][256];
    int o = 0;
    pg_node_conninfo(&shard, primary, p, sizeof(p));
    for (int i = 0; i < shard.n; i++)
        if (i != primary)
            pg_node_conninfo(&shard, i, others[o++], sizeof(others[0]));
    const char *pn = shard.nodes[primary].name;
    struct {
        const char *switchover;
        const char *extra; /* JSON fields of the victim's node entry */
        const char *dup;   /* a name given to a second node */
        const char *want;
    } cases[] = {
        {"handing-over:x", "", NULL, "must be \\\"fenced:<instance>\\\" or"},
        {"promoting:nobody", "", NULL, "is not among the nodes"},
        {NULL, ", \"running\": \"no\"", NULL, "nodes[0]: needs"},
        {NULL, ", \"control_state\": 3", NULL, "nodes[0]: needs"},
        {NULL, ", \"checkpoint_lsn\": \"0/XYZ\"", NULL, "nodes[0]: needs"},
        {"fenced:x", ", \"running\": false", NULL, "(pg_controldata)"},
        {NULL, "", "dup", "appears twice"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char req[4096], *res = NULL, sw[128] = "";
        size_t len = 0;
        if (cases[k].switchover)
            (void)snprintf(sw, sizeof(sw), ", \"drain.multigres.com/switchover\": \"%s\"",
                           cases[k].switchover);
        (void)snprintf(req, sizeof(req),
                       "{\"instance\": \"%s\", \"annotations\": {\"drain.multigres.com/state\": "
                       "\"draining\"%s}, \"nodes\": [{\"name\": \"%s\", \"conninfo\": \"%s\"%s}, "
                       "{\"name\": \"%s\", \"conninfo\": \"%s\"}, {\"name\": \"%s\", \"conninfo\": "
                       "\"%s\"}]}",
                       pn, sw, pn, p, cases[k].extra, cases[k].dup ? pn : "o1", others[0], "o2",
                       others[1]);
        int32_t rc = mgo_drain(plugin, req, strlen(req), &res, &len);
        print_message("case %zu: %d %.*s\n", k, rc, (int)len, res ? res : "");
        assert_int_equal(rc, MGO_EINVAL);
        assert_non_null(res);
        assert_non_null(strstr(res, cases[k].want));
        mgo_free(res);
    }
    char out[64];
    assert_int_equal(pg_sql(&shard, primary, "SELECT pg_is_in_recovery()", 5000, out, sizeof(out)),
                     0);
    assert_string_equal(out, "f");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switchover),
        cmocka_unit_test(test_lagging_not_chosen),
        cmocka_unit_test(test_abandoned),
        cmocka_unit_test(test_candidate_behind_after_fence),
        cmocka_unit_test(test_no_standby_caught_up),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_unclean_stop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
