/*
 * The primary's drain under the faults a bug audit found (each reproduced first on a real
 * shard; docs/spec/lifecycle.md "Drain of the primary", docs/abi.md "mgo_drain"):
 *  - a primary whose switchover began is never held up by a standby drain that started
 *    meanwhile, and a drain does not begin while another node drains;
 *  - after an unclean stop, a standby restarted meanwhile (whose received position falls back
 *    to the start of its segment) still counts with all the WAL it holds: it is promoted, and no
 *    acknowledged commit is lost;
 *  - a standby that hangs (its postmaster stopped with SIGSTOP) does not use up the calls'
 *    time: the switchover completes while it hangs;
 *  - standby names too long for synchronous_standby_names are refused before anything is
 *    fenced, and a long setting (over 511 bytes) is read;
 *  - deadline_ms must be an integer from 1 to 600000.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
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

static struct pg_shard shard;
static mgo_plugin *plugin;
static struct writer *writer;
static int primary;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static struct dhost_follow follow = {.primary = &primary};

static void host_init(struct dhost *h, const char *instance)
{
    dhost_init(h, plugin, &shard, instance, &follow);
}

static void check_writes(const char *when)
{
    char report[1024];
    int rc = dhost_check_writes(writer, &shard, primary, report, sizeof(report));
    print_message("%s: %s\n", when, report);
    assert_int_equal(rc, 0);
}

static void set_setting(int i, const char *name, const char *value)
{
    char sql[2048];
    (void)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET %s = '%s'", name, value);
    assert_int_equal(pg_sql(&shard, i, sql, 5000, NULL, 0), 0);
    assert_int_equal(pg_sql(&shard, i, "SELECT pg_reload_conf()", 5000, NULL, 0), 0);
}

static int32_t call_raw(const char *req, char *out, size_t size)
{
    char *res = NULL;
    size_t len = 0;
    int32_t rc = mgo_drain(plugin, req, strlen(req), &res, &len);
    (void)snprintf(out, size, "%.*s", (int)len, res ? res : "");
    mgo_free(res);
    return rc;
}

/* ---- group 1: a shard whose primary's name sorts last: n2 primary, n0 and n1 standbys ---- */

static int setup_named(void **st)
{
    (void)st;
    static const char *const names[] = {"n2", "n0", "n1"};
    static char settings[3][6][128];
    static const char *argv[3][7];
    struct pg_node_spec specs[3];
    for (int i = 0; i < 3; i++) {
        int port = dhost_free_port();
        if (port < 0)
            return -1;
        (void)snprintf(settings[i][0], 128, "port=%d", port);
        (void)snprintf(settings[i][1], 128, "cluster_name=%s", names[i]);
        (void)snprintf(settings[i][2], 128, "listen_addresses=127.0.0.1");
        (void)snprintf(settings[i][3], 128, "unix_socket_directories=run");
        (void)snprintf(settings[i][4], 128, "hot_standby=on");
        (void)snprintf(settings[i][5], 128, "wal_level=logical");
        for (int k = 0; k < 6; k++)
            argv[i][k] = settings[i][k];
        argv[i][6] = NULL;
        specs[i] = (struct pg_node_spec){
            .name = names[i], .datadir = names[i], .port = port, .settings = argv[i]};
    }
    static const char *const sql[] = {
        "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (n0, n1)'", "SELECT pg_reload_conf()",
        NULL};
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    primary = 0;
    if (pg_shard_start_spec(&shard, 3, specs, sql) != 0 || mgo_open(&host, &plugin) != MGO_OK)
        return -1;
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, 2000);
    follow.writer = writer;
    return writer ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    writer_free(writer);
    writer = follow.writer = NULL;
    mgo_close(plugin);
    pg_shard_stop(&shard);
    return 0;
}

static int start_fails(struct dhost *h, int i)
{
    (void)h;
    (void)i;
    return -1;
}

static void test_fenced_primary_not_blocked(void **st)
{
    (void)st;
    struct dhost h, other;
    host_init(&h, "n2");
    /* requested -> draining -> fenced:<c> -> the primary stopped */
    for (int k = 0; k < 3; k++)
        assert_int_equal(dhost_call(&h), MGO_OK);
    assert_int_equal(strncmp(h.switchover, "fenced:", 7), 0);
    assert_false(dhost_node_running(&h, 0));
    /* a standby drain asked for now does not begin while the primary drains */
    host_init(&other, "n0");
    (void)snprintf(other.node_drain[0], sizeof(other.node_drain[0]), "draining");
    assert_int_equal(dhost_call(&other), MGO_EAGAIN);
    assert_string_equal(other.state, "requested");
    assert_non_null(strstr(other.message, "another drain is under way (n2)"));
    /* a standby drain that did begin (a host that did not ask) does not hold up the fenced
     * primary, whose name sorts after it: its switchover goes on (here it is abandoned, as the
     * draining standby does not count and the other cannot be promoted without it), so the
     * primary is writable again rather than waiting on a drain that waits for a primary */
    (void)snprintf(h.node_drain[1], sizeof(h.node_drain[1]), "draining");
    /* ... and the host dies after persisting the abandonment, before it starts the primary: the
     * next call still starts it (the other drain does not hold that up either) */
    h.start = start_fails;
    assert_int_equal(dhost_call(&h), -1000);
    assert_string_equal(h.switchover, "");
    assert_non_null(strstr(h.message, "(start) failed"));
    assert_false(dhost_node_running(&h, 0));
    h.start = dhost_start_harness;
    assert_int_equal(dhost_call(&h), MGO_OK);
    assert_non_null(strstr(h.message, "starting it"));
    assert_true(dhost_node_running(&h, 0));
    assert_int_equal(primary, 0);
    check_writes("after the fenced primary went on past another drain");
    /* without the other drain, it completes (once the standbys stream from the restarted
     * primary again: a WAL receiver retries every 5 s) */
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 "2", 30000),
                     0);
    h.node_drain[1][0] = '\0';
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 20, 100), 0);
    assert_int_not_equal(primary, 0);
    check_writes("after the switchover");
}

/* ---- group 2: n0 primary, n1..n3 synchronous standbys (ANY 1) ---------------------------- */

static int setup_four(void **st)
{
    (void)st;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    primary = 0;
    if (pg_shard_start(&shard, 3, "ANY 1 (n1, n2, n3)") != 0 || mgo_open(&host, &plugin) != MGO_OK)
        return -1;
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, 2000);
    follow.writer = writer;
    return writer ? 0 : -1;
}

/* The current primary's standbys back in one synchronous set, all streaming. */
static void reset_shard(void)
{
    for (int i = 0; i < shard.n; i++)
        if (i != primary) {
            char out[8] = "";
            if (pg_sql(&shard, i, "SELECT pg_is_in_recovery()", 2000, out, sizeof(out)) != 0)
                assert_int_equal(dhost_rejoin(&shard, i, primary), 0);
            else
                set_setting(i, "primary_conninfo", ""); /* replaced just below */
        }
    for (int i = 0; i < shard.n; i++)
        if (i != primary) {
            char ci[128];
            (void)snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres",
                           shard.nodes[primary].port);
            set_setting(i, "primary_conninfo", ci);
        }
    assert_int_equal(dhost_restore_sync_set(&shard, primary), 0);
}

static int keep = -1;

/* Once the candidate is persisted (fenced:C), only C receives WAL: the other standbys'
 * replication is cut (primary_conninfo ''), and for half a second commits are acknowledged by
 * C alone. */
static int persist_cut_others(struct dhost *h)
{
    if (keep < 0 && strncmp(h->switchover, "fenced:", 7) == 0) {
        keep = dhost_node(h, h->switchover + 7);
        for (int i = 0; i < shard.n; i++)
            if (i != primary && i != keep) {
                set_setting(i, "primary_conninfo", "");
                if (pg_sql_wait(&shard, i, "SELECT count(*) FROM pg_stat_wal_receiver", "0",
                                10000) != 0)
                    return -1;
            }
        pause_ms(500);
    }
    return dhost_follow_switchover(h);
}

/* The primary crashes (immediate shutdown) and C restarts meanwhile. */
static int stop_crash_restart(struct dhost *h, int i)
{
    (void)h;
    if (pg_node_stop(&shard, i, "immediate") != 0)
        return -1;
    return pg_node_stop(&shard, keep, "fast") == 0 && pg_node_start(&shard, keep) == 0 ? 0 : -1;
}

static void test_unclean_restarted_standby(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary;
    char out[64];
    keep = -1;
    host_init(&h, shard.nodes[old].name);
    h.persist = persist_cut_others;
    h.stop = stop_crash_restart;
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 20, 100), 0);
    /* the one standby that holds every acknowledged commit was promoted */
    assert_int_equal(primary, keep);
    assert_int_equal(pg_sql(&shard, keep, "SELECT pg_is_in_recovery()", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, "f");
    check_writes("after an unclean stop with the most advanced standby restarted");
    assert_int_equal(pg_node_rewind(&shard, old, primary), 0);
    reset_shard();
}

static int frozen = -1;

/* A standby that is not the candidate hangs once the fence is persisted. */
static int persist_freeze(struct dhost *h)
{
    if (frozen < 0 && strncmp(h->switchover, "fenced:", 7) == 0) {
        int c = dhost_node(h, h->switchover + 7);
        for (int i = 0; i < shard.n && frozen < 0; i++)
            if (i != primary && i != c)
                frozen = i;
        if (frozen < 0 || kill(shard.nodes[frozen].pid, SIGSTOP) != 0)
            return -1;
    }
    return dhost_follow_switchover(h);
}

static void test_hung_standby(void **st)
{
    (void)st;
    struct dhost h;
    int old = primary;
    host_init(&h, shard.nodes[old].name);
    h.persist = persist_freeze;
    /* the switchover finishes while the standby hangs, in a few calls */
    int32_t rc = dhost_run(&h, "ready-for-deletion", 8, 100);
    int was = frozen;
    if (frozen >= 0)
        kill(shard.nodes[frozen].pid, SIGCONT);
    frozen = -1;
    assert_int_equal(rc, 0);
    assert_int_not_equal(primary, old);
    assert_int_not_equal(primary, was);
    check_writes("after a switchover with a hung standby");
    assert_int_equal(dhost_rejoin(&shard, old, primary), 0);
    reset_shard(); /* the hung standby was not repointed: the host does that when it is back */
}

static void test_long_names(void **st)
{
    (void)st;
    char req[8192], out[4096], ci[256], before[1200], now[1200];
    size_t o;
    /* a setting of over 511 bytes is read: the primary names many standbys */
    char names[1100] = "ANY 1 (";
    for (int i = 0; i < shard.n; i++)
        if (i != primary)
            (void)snprintf(names + strlen(names), sizeof(names) - strlen(names), "\"%s\", ",
                           shard.nodes[i].name);
    for (int k = 0; k < 10; k++)
        (void)snprintf(names + strlen(names), sizeof(names) - strlen(names),
                       "\"standby-with-a-rather-long-name-of-fifty-five-chars-%02d\", ", k);
    strcpy(names + strlen(names) - 2, ")");
    assert_true(strlen(names) > 600);
    set_setting(primary, "synchronous_standby_names", names);
    assert_int_equal(
        pg_sql(&shard, primary, "SHOW synchronous_standby_names", 5000, before, sizeof(before)), 0);
    assert_string_equal(before, names);
    /* names that cannot fit in the new primary's setting: refused before anything is fenced */
    pg_node_conninfo(&shard, primary, ci, sizeof(ci));
    o = (size_t)snprintf(req, sizeof(req),
                         "{\"instance\": \"%s\", \"annotations\": {\"drain.multigres.com/state\": "
                         "\"draining\"}, \"deadline_ms\": 5000, \"nodes\": [{\"name\": \"%s\", "
                         "\"conninfo\": \"%s\"}",
                         shard.nodes[primary].name, shard.nodes[primary].name, ci);
    for (int i = 0; i < shard.n; i++)
        if (i != primary) {
            pg_node_conninfo(&shard, i, ci, sizeof(ci));
            o += (size_t)snprintf(req + o, sizeof(req) - o,
                                  ", {\"name\": \"%s\", \"conninfo\": \"%s\"}", shard.nodes[i].name,
                                  ci);
        }
    for (int k = 0; k < 17; k++)
        o += (size_t)snprintf(req + o, sizeof(req) - o,
                              ", {\"name\": \"standby-with-a-long-name-of-sixty-three-characters-"
                              "xxxxxxx-%02d\", \"conninfo\": \"%s\"}",
                              k, ci);
    (void)snprintf(req + o, sizeof(req) - o, "]}");
    assert_int_equal(call_raw(req, out, sizeof(out)), MGO_EINVAL);
    assert_non_null(strstr(out, "do not fit in synchronous_standby_names"));
    assert_null(strstr(out, "fenced:"));
    assert_int_equal(pg_sql(&shard, primary, "SELECT pg_is_in_recovery()", 5000, now, sizeof(now)),
                     0);
    assert_string_equal(now, "f");
    assert_int_equal(
        pg_sql(&shard, primary, "SHOW synchronous_standby_names", 5000, now, sizeof(now)), 0);
    assert_string_equal(now, before);
    reset_shard();
}

/* Two drains requested at once (a host that did not wait): the one whose name sorts first
 * begins, the other waits; names that differ only in case are duplicates. */
static void test_two_requested(void **st)
{
    (void)st;
    struct dhost a, b;
    int s1 = primary == 1 ? 2 : 1, s2 = primary == 3 ? 2 : 3;
    host_init(&a, shard.nodes[s1].name); /* sorts first */
    host_init(&b, shard.nodes[s2].name);
    (void)snprintf(a.node_drain[s2], sizeof(a.node_drain[s2]), "requested");
    (void)snprintf(b.node_drain[s1], sizeof(b.node_drain[s1]), "requested");
    assert_int_equal(dhost_call(&b), MGO_EAGAIN);
    assert_string_equal(b.state, "requested");
    assert_int_equal(dhost_call(&a), MGO_OK);
    assert_string_equal(a.state, "draining");
    char req[1024], out[1024], ci[256];
    pg_node_conninfo(&shard, primary, ci, sizeof(ci));
    (void)snprintf(req, sizeof(req),
                   "{\"instance\": \"n1\", \"annotations\": {\"drain.multigres.com/state\": "
                   "\"draining\"}, \"nodes\": [{\"name\": \"n1\", \"conninfo\": \"%s\"}, "
                   "{\"name\": \"N1\", \"conninfo\": \"%s\"}]}",
                   ci, ci);
    assert_int_equal(call_raw(req, out, sizeof(out)), MGO_EINVAL);
    assert_non_null(strstr(out, "appears twice"));
}

static void test_deadline_values(void **st)
{
    (void)st;
    static const char *const bad[] = {"0",        "-1",     "600001", "9223372036854775807",
                                      "\"1000\"", "1000.5", "true"};
    char req[1024], out[1024], ci[256];
    pg_node_conninfo(&shard, primary, ci, sizeof(ci));
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        (void)snprintf(req, sizeof(req),
                       "{\"instance\": \"%s\", \"annotations\": {\"drain.multigres.com/state\": "
                       "\"draining\"}, \"deadline_ms\": %s, \"nodes\": [{\"name\": \"%s\", "
                       "\"conninfo\": \"%s\"}]}",
                       shard.nodes[primary].name, bad[k], shard.nodes[primary].name, ci);
        assert_int_equal(call_raw(req, out, sizeof(out)), MGO_EINVAL);
        assert_non_null(strstr(out, "\\\"deadline_ms\\\" must be an integer from 1 to 600000"));
    }
}

int main(void)
{
    const struct CMUnitTest named[] = {
        cmocka_unit_test(test_fenced_primary_not_blocked),
    };
    const struct CMUnitTest four[] = {
        cmocka_unit_test(test_deadline_values), cmocka_unit_test(test_two_requested),
        cmocka_unit_test(test_long_names),      cmocka_unit_test(test_unclean_restarted_standby),
        cmocka_unit_test(test_hung_standby),
    };
    int failed = cmocka_run_group_tests_name("named", named, setup_named, teardown);
    return failed + cmocka_run_group_tests_name("four", four, setup_four, teardown);
}
