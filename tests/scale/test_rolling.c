/*
 * Rolling updates (issue 6) on real PostgreSQL 15 and etcd, through the tests' process host
 * (phost.c): the cluster of cluster.yaml (three instances, AT_LEAST_2) brought up from mgo's
 * process render with a writer committing continuously through the primary, then
 *   (a) a restart-class change (postgresConfig shared_buffers 32MB -> 48MB): every instance is
 *       drained, deleted and replaced on its own volume exactly once, the standbys first in
 *       index order (each replacement streaming before the next standby leaves the synchronous
 *       set), the primary last through a planned switchover; every instance then shows the
 *       new value; no acknowledged commit is lost;
 *   (b) a reload-class change (work_mem 8MB -> 12MB): nothing restarts (same postmaster PIDs
 *       and start times) and every instance shows the new value in pg_settings, from
 *       postgresql.auto.conf.
 * The observer (scenario.h) runs after every step; during (a) it tolerates, only while a
 * switchover is under way, the transients the planned switchover makes by design (no primary
 * between the fence and the promotion, never two; repointed standbys not streaming yet; the
 * new primary's commits waiting for them meanwhile), counts and prints them, and the test
 * checks they all fall within the primary's drain; in (b) none. Each test runs on its own
 * cluster, so that one failure does not cascade.
 *
 * A switchover may be abandoned and retried when no standby held the primary's final WAL in
 * time (lifecycle.md "Drain of the primary": the fence is lifted and the old primary started
 * again). The primary is then stopped more than once: each extra stop must be followed, in the
 * host's log, by the drain step that abandoned it and a start of the same instance.
 *
 * Expected values from docs/spec/lifecycle.md ("Rolling update", "Drain of the primary",
 * "PostgreSQL settings: reload or restart"), docs/spec/render-process.md ("Restart-class and
 * reload-class settings": shared_buffers is of postmaster context, work_mem of user context;
 * "Hashes") and docs/abi.md ("mgo_converge" 2: settings in postgresql.auto.conf, confirmed in
 * pg_settings' sourcefile). 12MB reads 12288 (unit kB) in pg_settings.setting (PostgreSQL's
 * documentation of pg_settings).
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

#include "checks.h"

#define N              3
#define STATE_KEY      "drain.multigres.com/state"
#define SWITCHOVER_KEY "drain.multigres.com/switchover"

static struct scenario sc;

static int setup(void **st)
{
    (void)st;
    if (scenario_start(&sc, SCALE_MANIFEST) != 0) {
        fprintf(stderr, "setup: %s\n", sc.host.error);
        scenario_stop(&sc);
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

/* What identifies a running postmaster of each instance: the harness's child PID and
 * pg_postmaster_start_time(). */
struct postmasters {
    char name[N][64];
    pid_t pid[N];
    char started[N][64];
};

static void read_postmasters(struct postmasters *p)
{
    assert_int_equal(sc.host.ninst, N);
    for (int i = 0; i < N; i++) {
        struct phost_object *o = phost_instance_at(&sc.host, i);
        assert_non_null(o);
        (void)snprintf(p->name[i], sizeof(p->name[i]), "%s", o->name);
        p->pid[i] = sc.host.shard.nodes[o->node].pid;
        assert_true(p->pid[i] > 0);
        assert_int_equal(scenario_sql(&sc, i, "SELECT pg_postmaster_start_time()::text",
                                      p->started[i], sizeof(p->started[i])),
                         0);
    }
}

static void expect_everywhere(const char *sql, const char *want)
{
    char out[256];
    for (int i = 0; i < N; i++) {
        assert_int_equal(scenario_sql(&sc, i, sql, out, sizeof(out)), 0);
        assert_string_equal(out, want);
    }
}

static const char *log_str(const json_t *e, const char *key)
{
    const char *v = json_string_value(json_object_get(e, key));
    return v ? v : "";
}

/* The stops and starts since `mark` are all of the old primary `name`: the last stop led to the
 * promotion (a drain step to `promoting:` after it), and every earlier one was a switchover
 * abandoned by mgo_drain (its next drain step went from `draining fenced:...` to `draining`)
 * with a start of the instance in that same step. The number of abandoned switchovers. */
static int check_stops_and_starts(size_t mark, const char *name)
{
    int stops = scenario_count_ops(&sc, mark, "stop", NULL);
    int starts = scenario_count_ops(&sc, mark, "start", NULL);
    print_message("%s: stopped %d times, started %d times by mgo_drain\n", name, stops, starts);
    assert_int_equal(scenario_count_ops(&sc, mark, "stop", name), stops);
    assert_int_equal(scenario_count_ops(&sc, mark, "start", name), starts);
    assert_int_equal(stops, starts + 1);
    int pending_stop = -1, last_stop = -1;
    for (size_t k = mark; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        const char *op = log_str(e, "op");
        if (strcmp(op, "stop") == 0) {
            assert_int_equal(pending_stop, -1); /* never stopped twice without a start */
            pending_stop = last_stop = (int)k;
        } else if (strcmp(op, "start") == 0) {
            assert_true(pending_stop >= 0);
            /* the call that started it abandoned the switchover: its drain step comes next */
            size_t d = k + 1;
            while (d < json_array_size(sc.host.log) &&
                   strcmp(log_str(json_array_get(sc.host.log, d), "op"), "drain") != 0)
                d++;
            assert_true(d < json_array_size(sc.host.log));
            const json_t *step = json_array_get(sc.host.log, d);
            print_message("  abandoned: stop at log %d, start at %zu, drain [%s] -> [%s]: %s\n",
                          pending_stop, k, log_str(step, "from"), log_str(step, "to"),
                          log_str(step, "message"));
            assert_string_equal(log_str(step, "instance"), name);
            assert_int_equal(strncmp(log_str(step, "from"), "draining fenced:", 16), 0);
            assert_string_equal(log_str(step, "to"), "draining");
            pending_stop = -1;
        }
    }
    assert_true(pending_stop >= 0 && pending_stop == last_stop);
    for (size_t k = (size_t)last_stop; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        if (strcmp(log_str(e, "op"), "drain") == 0 && strstr(log_str(e, "to"), "promoting:"))
            return starts;
    }
    fail_msg("%s: no promotion after its last stop", name);
    return -1;
}

/* The first observation (scenario.h "watch") after log entry `from` in which the primary's
 * synchronous_standby_names no longer names `next` (its drain took it out) shows `prev` named
 * and streaming: a standby leaves the synchronous set only while the replacement before it
 * holds the durability policy (lifecycle.md "Rolling update": each must be streaming before
 * the next one starts). */
static void assert_streamed_before_leaving(int from, const char *next, const char *prev)
{
    char needle[70];
    assert_true(snprintf(needle, sizeof(needle), ",%s,", prev) < (int)sizeof(needle));
    for (size_t k = (size_t)from; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        const char *ssn = json_string_value(json_object_get(e, "ssn"));
        if (strcmp(json_string_value(json_object_get(e, "op")), "watch") != 0 || strstr(ssn, next))
            continue;
        print_message("  %s left the synchronous set (%s); %s streams: %s\n", next, ssn, prev,
                      json_string_value(json_object_get(e, "streaming")));
        assert_non_null(strstr(json_string_value(json_object_get(e, "streaming")), needle));
        assert_non_null(strstr(ssn, prev));
        return;
    }
    fail_msg("%s never left the synchronous set after log entry %d", next, from);
}

/* The restart-class roll of (a); `abandoned` switchovers expected before the one that
 * promotes. */
static void roll_restart_class(int abandoned_expected)
{
    struct postmasters before, after;
    read_postmasters(&before);
    expect_everywhere("SHOW shared_buffers", "32MB");
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_equal(sc.host.shard.nodes[sc.host.primary].name, before.name[0]);
    size_t mark = json_array_size(sc.host.log);

    assert_int_equal(scenario_edit(&sc, "shared_buffers: \"32MB\"", "shared_buffers: \"48MB\""), 0);
    sc.allow_switchover = 1;
    check_converge(&sc, 150000, "restart-class change (shared_buffers)");
    sc.allow_switchover = 0;
    if (sc.transients)
        print_message("transients during the switchover:\n%s", sc.transient_log);

    /* each instance exactly once: drain requested, deleted, created again on its own volume */
    const int order[N] = {1, 2, 0}; /* standbys in index order, the primary last */
    int last = -1;
    for (int k = 0; k < N; k++) {
        const char *name = before.name[order[k]];
        assert_int_equal(scenario_count_ops(&sc, mark, "delete", name), 1);
        assert_int_equal(scenario_count_ops(&sc, mark, "create", name), 1);
        int requested = check_requested_at(&sc, mark, name);
        int deleted = scenario_first_op(&sc, mark, "delete", name);
        int created = scenario_first_op(&sc, mark, "create", name);
        const json_t *e = json_array_get(sc.host.log, (size_t)created);
        const char *how = json_string_value(json_object_get(e, "how"));
        print_message("%s: drain requested at %d, deleted at %d, created (%s) at %d\n", name,
                      requested, deleted, how, created);
        /* one at a time: the previous replacement exists before this drain is requested */
        assert_true(last < requested && requested < deleted && deleted < created);
        if (k > 0 && k < N - 1) /* a standby after a standby */
            assert_streamed_before_leaving(requested, name, before.name[order[k - 1]]);
        last = created;
        assert_non_null(how);
        assert_int_equal(strncmp(how, "volume", 6), 0); /* never a fresh copy: same volume */
    }
    assert_int_equal(scenario_count_ops(&sc, mark, "remove-volume", NULL), 0);
    /* the primary handed over: fenced, stopped by the drain (again after each abandoned
     * attempt), a standby promoted; the standbys were never stopped by a drain */
    assert_true(check_drain_went_through(&sc, mark, before.name[0], "fenced:"));
    assert_true(check_drain_went_through(&sc, mark, before.name[0], "promoting:"));
    int abandoned = check_stops_and_starts(mark, before.name[0]);
    if (abandoned)
        print_message("%d switchover(s) abandoned and retried\n", abandoned);
    if (abandoned_expected >= 0)
        assert_int_equal(abandoned, abandoned_expected);
    /* transients only within the primary's drain: from its request to its delete */
    int from = (int)json_integer_value(json_object_get(
            json_array_get(sc.host.log, (size_t)check_requested_at(&sc, mark, before.name[0])),
            "step")),
        to = (int)json_integer_value(json_object_get(
            json_array_get(sc.host.log,
                           (size_t)scenario_first_op(&sc, mark, "delete", before.name[0])),
            "step"));
    for (size_t k = mark; k < json_array_size(sc.host.log); k++) {
        const json_t *e = json_array_get(sc.host.log, k);
        int step = (int)json_integer_value(json_object_get(e, "step"));
        if (strcmp(log_str(e, "op"), "transient") == 0 && (step < from || step > to))
            fail_msg("a transient at step %d, outside the primary's drain (steps %d to %d): %s",
                     step, from, to, log_str(e, "what"));
    }
    assert_true(phost_probe_primary(&sc.host) >= 0);
    assert_string_not_equal(sc.host.shard.nodes[sc.host.primary].name, before.name[0]);

    /* every postmaster is a new one, started once, and runs the new setting */
    read_postmasters(&after);
    for (int i = 0; i < N; i++) {
        struct phost_object *o = phost_instance_at(&sc.host, i);
        assert_string_equal(after.name[i], before.name[i]);
        assert_int_not_equal(after.pid[i], before.pid[i]);
        assert_string_not_equal(after.started[i], before.started[i]);
        assert_int_equal(o->starts, 1);
        print_message("%s: pid %d -> %d, started %s -> %s\n", after.name[i], (int)before.pid[i],
                      (int)after.pid[i], before.started[i], after.started[i]);
    }
    expect_everywhere("SHOW shared_buffers", "48MB");
    check_streaming(&sc, N - 1);
    int primary_index = -1, standbys[N - 1], n = 0;
    for (int i = 0; i < N; i++) {
        if (strcmp(after.name[i], sc.host.shard.nodes[sc.host.primary].name) == 0)
            primary_index = i;
        else
            standbys[n++] = i;
    }
    assert_true(primary_index > 0);
    check_sync_set(&sc, standbys, n);
    check_writes(&sc, "after the restart-class roll");
}

static void test_restart_class_change_rolls(void **st)
{
    (void)st;
    roll_restart_class(-1); /* a retried switchover is allowed (lifecycle.md) */
}

/* The fault that makes mgo_drain abandon a switchover, forced (review rule 10): once the old
 * primary's drain persists `fenced:`, WAL replay pauses on every other instance, so no standby
 * replays the primary's final checkpoint before the deadline; once the switchover is abandoned
 * (`draining` without a switchover persisted), replay resumes and the retry promotes. */
static int paused;

static int pause_replay_at_fence(struct phost *h, struct phost_object *o, void *ctx)
{
    const char *sw = json_string_value(json_object_get(o->annotations, SWITCHOVER_KEY));
    const char *state = json_string_value(json_object_get(o->annotations, STATE_KEY));
    int rc = scenario_after_persist(h, o, ctx);
    int fence = sw && strncmp(sw, "fenced:", 7) == 0 && paused == 0;
    int lifted = !sw && state && strcmp(state, "draining") == 0 && paused == 1;
    if (!fence && !lifted)
        return rc;
    for (int i = 0; i < h->ninst; i++) {
        char out[16];
        if (&h->inst[i] == o)
            continue;
        if (pg_sql(&h->shard, h->inst[i].node,
                   fence ? "SELECT pg_wal_replay_pause()" : "SELECT pg_wal_replay_resume()", 5000,
                   out, sizeof(out)) != 0)
            rc = -1;
    }
    print_message("fault: WAL replay %s on the standbys of %s\n", fence ? "paused" : "resumed",
                  o->name);
    paused++;
    return rc;
}

static void test_abandoned_switchover_is_retried(void **st)
{
    (void)st;
    paused = 0;
    sc.host.after_persist = pause_replay_at_fence;
    sc.host.drain_deadline_ms = 3000; /* the abandoned attempt waits this long */
    roll_restart_class(1);
    assert_int_equal(paused, 2);
}

static void test_reload_class_change_restarts_nothing(void **st)
{
    (void)st;
    struct postmasters before, after;
    read_postmasters(&before);
    expect_everywhere("SHOW work_mem", "8MB");
    size_t mark = json_array_size(sc.host.log);
    struct writer_stats stats;
    writer_get_stats(sc.writer, &stats);

    assert_int_equal(scenario_edit(&sc, "work_mem: \"8MB\"", "work_mem: \"12MB\""), 0);
    check_converge(&sc, 60000, "reload-class change (work_mem)");
    check_no_failed_commits(&sc, &stats, "the reload-class change");

    /* an in-place apply per instance, nothing drained, stopped or created */
    for (int i = 0; i < N; i++)
        assert_int_equal(scenario_count_ops(&sc, mark, "reload", before.name[i]), 1);
    assert_int_equal(scenario_count_ops(&sc, mark, "annotate", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "drain", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "delete", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "create", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "stop", NULL), 0);
    assert_int_equal(scenario_count_ops(&sc, mark, "start", NULL), 0);
    read_postmasters(&after);
    for (int i = 0; i < N; i++) {
        assert_string_equal(after.name[i], before.name[i]);
        assert_int_equal(after.pid[i], before.pid[i]);
        assert_string_equal(after.started[i], before.started[i]);
    }
    expect_everywhere("SHOW work_mem", "12MB");
    expect_everywhere("SELECT setting || ' ' || unit || ' ' || "
                      "(sourcefile LIKE '%/postgresql.auto.conf')::text || ' ' || "
                      "pending_restart::text FROM pg_settings WHERE name = 'work_mem'",
                      "12288 kB true false");
    check_writes(&sc, "after the reload-class change");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restart_class_change_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_switchover_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_class_change_restarts_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
