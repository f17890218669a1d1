/*
 * The PostgreSQL harness (pg_harness.c) and the data-safety writer (writer.c) against real
 * PostgreSQL 15: a primary with two quorum-synchronous standbys; a planned switchover n0 -> n1
 * done by hand with the steps of the facts (shared/facts/postgres-etcd-local.md §3) while the
 * writer keeps committing, with every acknowledged row proven present afterwards; proof that
 * the checker does report a missing row; and a commit whose synchronous standbys are absent,
 * which must time out on the client instead of hanging (facts P4); and a shard whose nodes come
 * and go (pg_shard_open, pg_node_create, pg_node_attach, pg_node_forget, pg_shard_remove).
 *
 * Expected values are literals from the facts file and PostgreSQL's documentation (sync_state
 * 'quorum' for ANY, 'async' for a standby not named; timeline 2 after one promotion), or read
 * back from the real servers; none is computed by the harness under test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "pg_harness.h"
#include "writer.h"

#define T_SQL_MS          30000 /* timeout of statements that should succeed */
#define COMMIT_TIMEOUT_MS 2000
#define REPLICATION_STATE                                                                          \
    "select string_agg(application_name || ':' || state || ':' || sync_state, ',' "                \
    "order by application_name) from pg_stat_replication"

/* Static storage: the harness's exit handlers keep pointers to the shards. */
struct ctx {
    struct pg_shard shard;
    struct writer *w;
};
static struct ctx switchover_ctx, absent_standbys_ctx, dynamic_ctx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    writer_free(c->w);
    c->w = NULL;
    pg_shard_stop(&c->shard);
    return 0;
}

/* Run sql on node i, which must succeed; its first value goes to out (may be NULL). */
static void sql_ok(const struct pg_shard *s, int i, const char *sql, char *out, size_t size)
{
    int rc = pg_sql(s, i, sql, T_SQL_MS, out, size);
    if (rc != 0)
        fail_msg("%s on n%d: %d", sql, i, rc);
}

static void expect_sql(const struct pg_shard *s, int i, const char *sql, const char *expected)
{
    char out[512];
    sql_ok(s, i, sql, out, sizeof(out));
    if (strcmp(out, expected) != 0)
        fail_msg("%s on n%d: \"%s\", expected \"%s\"", sql, i, out, expected);
}

static void conninfo_of(const struct pg_shard *s, int i, char *buf, size_t size)
{
    pg_node_conninfo(s, i, buf, size);
    assert_true(buf[0] != '\0');
}

/* Let the writer run until at least min_ms passed and it acknowledged min_acks more commits. */
static void run_writer(struct writer *w, int64_t min_ms, size_t min_acks)
{
    struct writer_stats st;
    int64_t start = now_ms(), deadline = start + 60000;
    size_t base;

    writer_get_stats(w, &st);
    base = st.acked;
    for (;;) {
        writer_get_stats(w, &st);
        if (now_ms() - start >= min_ms && st.acked >= base + min_acks)
            return;
        if (now_ms() >= deadline)
            fail_msg("writer: %zu new acknowledged commits in 60 s (wanted %zu); last error: %s",
                     st.acked - base, min_acks, st.last_error);
        sleep_ms(50);
    }
}

static void check_no_loss(const char *conninfo, const struct writer *w, const char *when)
{
    char report[1024];
    size_t missing = (size_t)-1;
    int rc = writer_check(conninfo, w, &missing, report, sizeof(report));

    printf("# %s: %s\n", when, report);
    if (rc != 0)
        fail_msg("%s: %s", when, report);
    assert_int_equal(missing, 0);
}

static void print_stats(const struct writer *w, const char *when)
{
    struct writer_stats st;
    writer_get_stats(w, &st);
    printf("# writer %s: %zu attempts in %lld ms, %zu acknowledged (ids %lld..%lld), %zu failed, "
           "%zu timed out, longest stall %lld ms%s%s\n",
           when, st.attempts, (long long)st.running_ms, st.acked, (long long)st.first_acked_id,
           (long long)st.last_acked_id, st.failed, st.timed_out, (long long)st.longest_stall_ms,
           st.last_error[0] ? "; last error: " : "", st.last_error);
}

/* "X/Y" with hexadecimal X and Y (pg_controldata's LSN), safe to quote in SQL. */
static void assert_lsn(const char *lsn)
{
    size_t slash = strspn(lsn, "0123456789ABCDEFabcdef");
    if (slash == 0 || lsn[slash] != '/' || lsn[slash + 1] == '\0' ||
        strspn(lsn + slash + 1, "0123456789ABCDEFabcdef") != strlen(lsn + slash + 1))
        fail_msg("not an LSN: \"%s\"", lsn);
}

static void test_planned_switchover_loses_no_acknowledged_commit(void **state)
{
    struct ctx *c = *state;
    struct pg_shard *s = &c->shard;
    char n0[200], n1[200], sql[512], lsn[64], value[128], dir[256];
    int ports[3];
    int64_t t0, t_switch, t_stopped, t_promoted, t_repointed;
    struct writer_stats st;
    size_t missing = 0;

    t0 = now_ms();
    assert_int_equal(pg_shard_start(s, 2, "ANY 1 (n1, n2)"), 0);
    printf("# shard with 2 standbys up in %lld ms (ports %d %d %d, %s)\n",
           (long long)(now_ms() - t0), s->nodes[0].port, s->nodes[1].port, s->nodes[2].port,
           s->dir);
    assert_int_equal(s->n, 3);
    expect_sql(s, 0, REPLICATION_STATE, "n1:streaming:quorum,n2:streaming:quorum");
    expect_sql(s, 0, "select pg_is_in_recovery()", "f");
    expect_sql(s, 1, "select pg_is_in_recovery()", "t");
    expect_sql(s, 2, "select pg_is_in_recovery()", "t");
    expect_sql(s, 1, "show synchronous_standby_names", "ANY 1 (n1, n2)");

    /* about 2 s of acknowledged commits on n0 */
    conninfo_of(s, 0, n0, sizeof(n0));
    conninfo_of(s, 1, n1, sizeof(n1));
    c->w = writer_start(n0, COMMIT_TIMEOUT_MS);
    assert_non_null(c->w);
    run_writer(c->w, 2000, 100);
    print_stats(c->w, "on n0");
    check_no_loss(n0, c->w, "before the switchover, n0");

    /* the planned switchover, the writer still running against n0 */
    t_switch = now_ms();
    assert_int_equal(pg_node_stop(s, 0, "fast"), 0);
    t_stopped = now_ms();
    assert_int_equal(pg_node_controldata(s, 0, "Database cluster state", value, sizeof(value)), 0);
    assert_string_equal(value, "shut down");
    assert_int_equal(pg_node_controldata(s, 0, "Latest checkpoint location", lsn, sizeof(lsn)), 0);
    assert_lsn(lsn);
    snprintf(sql, sizeof(sql), "select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '%s') > 0", lsn);
    assert_int_equal(pg_sql_wait(s, 1, sql, "t", 10000), 0);
    assert_int_equal(pg_sql_wait(s, 2, sql, "t", 10000), 0);
    expect_sql(s, 1, "select pg_promote(wait => true, wait_seconds => 60)", "t");
    writer_switch(c->w, n1);
    sql_ok(s, 1, "CHECKPOINT", NULL, 0); /* facts P3: pg_control must show the new timeline */
    t_promoted = now_ms();
    snprintf(sql, sizeof(sql),
             "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=%d user=postgres'",
             s->nodes[1].port);
    sql_ok(s, 2, sql, NULL, 0);
    expect_sql(s, 2, "select pg_reload_conf()", "t");
    t_repointed = now_ms();
    assert_int_equal(pg_node_follow(s, 0, 1), 0);
    assert_int_equal(pg_node_start(s, 0), 0);
    assert_int_equal(
        pg_sql_wait(s, 1, REPLICATION_STATE, "n0:streaming:async,n2:streaming:quorum", 30000), 0);
    printf("# switchover in %lld ms: n0 stopped %lld ms, verified and promoted %lld ms, n2 "
           "repointed %lld ms, n0 restarted as a standby and both streaming %lld ms\n",
           (long long)(now_ms() - t_switch), (long long)(t_stopped - t_switch),
           (long long)(t_promoted - t_stopped), (long long)(t_repointed - t_promoted),
           (long long)(now_ms() - t_repointed));
    expect_sql(s, 1, "select pg_is_in_recovery()", "f");
    expect_sql(s, 0, "select pg_is_in_recovery()", "t");
    expect_sql(s, 1, "select timeline_id from pg_control_checkpoint()", "2");
    assert_int_equal(pg_sql_wait(s, 0, "select received_tli from pg_stat_wal_receiver", "2", 10000),
                     0);
    assert_int_equal(pg_sql_wait(s, 2, "select received_tli from pg_stat_wal_receiver", "2", 10000),
                     0);

    /* commits keep being acknowledged on n1, then nothing acknowledged is missing anywhere */
    run_writer(c->w, 1000, 100);
    writer_stop(c->w);
    print_stats(c->w, "through the switchover");
    check_no_loss(n1, c->w, "after the switchover, n1 (the new primary)");
    sql_ok(s, 1, "select pg_current_wal_lsn()", lsn, sizeof(lsn));
    snprintf(sql, sizeof(sql), "select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '%s') >= 0", lsn);
    for (int i = 0; i < 3; i += 2) {
        char conninfo[200], when[64];
        assert_int_equal(pg_sql_wait(s, i, sql, "t", 30000), 0);
        conninfo_of(s, i, conninfo, sizeof(conninfo));
        snprintf(when, sizeof(when), "after the switchover, standby n%d", i);
        check_no_loss(conninfo, c->w, when);
    }

    /* the checker is not blind: remove one acknowledged row and it must say which */
    writer_get_stats(c->w, &st);
    assert_true(st.acked >= 200);
    snprintf(sql, sizeof(sql), "DELETE FROM acked WHERE id = %lld RETURNING id",
             (long long)st.last_acked_id);
    snprintf(value, sizeof(value), "%lld", (long long)st.last_acked_id);
    expect_sql(s, 1, sql, value);
    {
        char report[1024], first[64];
        assert_int_equal(writer_check(n1, c->w, &missing, report, sizeof(report)), -1);
        printf("# one acknowledged row deleted on n1: %s\n", report);
        assert_int_equal(missing, 1);
        snprintf(first, sizeof(first), "first: %lld", (long long)st.last_acked_id);
        assert_non_null(strstr(report, first));
    }

    /* stop: nothing listens any more, the directory is gone; stopping again is harmless */
    snprintf(dir, sizeof(dir), "%s", s->dir);
    for (int i = 0; i < 3; i++)
        ports[i] = s->nodes[i].port;
    t0 = now_ms();
    pg_shard_stop(s);
    printf("# shard stopped in %lld ms\n", (long long)(now_ms() - t0));
    assert_string_equal(s->dir, "");
    {
        struct stat sb;
        assert_int_equal(stat(dir, &sb), -1);
        assert_int_equal(errno, ENOENT);
    }
    for (int i = 0; i < 3; i++) {
        char conninfo[200];
        assert_int_equal(s->nodes[i].running, 0);
        assert_int_equal(s->nodes[i].pid, 0);
        snprintf(conninfo, sizeof(conninfo),
                 "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=2",
                 ports[i]);
        assert_int_equal(PQping(conninfo), PQPING_NO_RESPONSE);
    }
    pg_shard_stop(s);
}

static void test_commit_without_sync_standby_times_out(void **state)
{
    struct ctx *c = *state;
    struct pg_shard *s = &c->shard;
    char conninfo[300], err[512], value[64], pidfile[600];
    PGconn *conn = NULL;
    PGresult *r = NULL;
    struct writer_stats st;
    long rows;
    int64_t t0, elapsed;
    int rc;

    t0 = now_ms();
    assert_int_equal(pg_shard_start(s, 0, "ANY 1 (absent1, absent2)"), 0);
    printf("# primary without standbys up in %lld ms\n", (long long)(now_ms() - t0));
    expect_sql(s, 0, "show synchronous_standby_names", "ANY 1 (absent1, absent2)");
    sql_ok(s, 0, "BEGIN; SET LOCAL synchronous_commit = local; CREATE TABLE p4(x int); COMMIT",
           NULL, 0);

    /* the commit waits for a standby that never comes: the client gives up after 1.5 s */
    t0 = now_ms();
    rc = pg_sql(s, 0, "INSERT INTO p4 VALUES (1)", 1500, NULL, 0);
    elapsed = now_ms() - t0;
    printf("# commit without a synchronous standby: %d after %lld ms\n", rc, (long long)elapsed);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(elapsed >= 1500 && elapsed < 10000);

    /* statement_timeout (200 ms, in effect in the session) does not end that wait */
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d user=postgres dbname=postgres "
             "options='-c statement_timeout=200'",
             s->nodes[0].port);
    assert_int_equal(pg_harness_connect(conninfo, 5000, &conn, err, sizeof(err)), 0);
    assert_int_equal(pg_harness_query(conn, "show statement_timeout", 5000, &r, err, sizeof(err)),
                     0);
    assert_string_equal(PQgetvalue(r, 0, 0), "200ms");
    PQclear(r);
    t0 = now_ms();
    rc = pg_harness_query(conn, "INSERT INTO p4 VALUES (2)", 1500, NULL, err, sizeof(err));
    elapsed = now_ms() - t0;
    PQfinish(conn);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(elapsed >= 1500);

    /* the cancel ended both waits on the server, and both rows committed locally (P4) */
    assert_int_equal(
        pg_sql_wait(s, 0, "select count(*) from pg_stat_activity where wait_event = 'SyncRep'", "0",
                    5000),
        0);
    expect_sql(s, 0, "select count(*) from p4", "2");

    /* the writer: nothing acknowledged, every attempt timed out, rows committed locally */
    pg_node_conninfo(s, 0, conninfo, sizeof(conninfo));
    c->w = writer_start(conninfo, 500);
    assert_non_null(c->w);
    for (t0 = now_ms();; sleep_ms(50)) {
        writer_get_stats(c->w, &st);
        if (st.timed_out >= 2)
            break;
        if (now_ms() - t0 > 20000)
            fail_msg("writer: %zu timed out after 20 s", st.timed_out);
    }
    writer_stop(c->w);
    print_stats(c->w, "without a synchronous standby");
    writer_get_stats(c->w, &st);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.attempts, st.timed_out);
    check_no_loss(conninfo, c->w, "without a synchronous standby");
    sql_ok(s, 0, "select count(*) from acked", value, sizeof(value));
    rows = strtol(value, NULL, 10);
    printf("# rows committed locally but never acknowledged: %ld\n", rows);
    assert_true(rows >= 1 && (size_t)rows <= st.timed_out);

    /* immediate stop and restart: the pid file goes, the committed rows stay */
    assert_int_equal(pg_node_stop(s, 0, "bogus"), -EINVAL);
    snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", s->nodes[0].datadir);
    assert_int_equal(access(pidfile, F_OK), 0);
    assert_int_equal(pg_node_stop(s, 0, "immediate"), 0);
    assert_int_equal(access(pidfile, F_OK), -1);
    assert_int_equal(s->nodes[0].running, 0);
    assert_int_equal(pg_node_stop(s, 0, "fast"), 0); /* already stopped */
    t0 = now_ms();
    assert_int_equal(pg_node_start(s, 0), 0);
    printf("# restart after an immediate stop (crash recovery): %lld ms\n",
           (long long)(now_ms() - t0));
    expect_sql(s, 0, "select count(*) from p4", "2");
}

/* A loopback port the kernel reports free now (bound to port 0, read, closed). */
static int any_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A node laid out as a host lays it out: <name>/data, its socket directory <name>/run. */
struct layout {
    char port[32], cluster[80], sockets[96];
    const char *settings[6];
    char datadir[80];
    struct pg_node_spec spec;
};

static void lay_out(struct layout *l, const char *name)
{
    int port = any_port();
    assert_true(port > 0);
    snprintf(l->port, sizeof(l->port), "port=%d", port);
    snprintf(l->cluster, sizeof(l->cluster), "cluster_name=%s", name);
    snprintf(l->sockets, sizeof(l->sockets), "unix_socket_directories=%s/run", name);
    snprintf(l->datadir, sizeof(l->datadir), "%s/data", name);
    l->settings[0] = l->port;
    l->settings[1] = l->cluster;
    l->settings[2] = l->sockets;
    l->settings[3] = "listen_addresses=127.0.0.1";
    l->settings[4] = "hot_standby=on";
    l->settings[5] = NULL;
    l->spec = (struct pg_node_spec){
        .name = name, .datadir = l->datadir, .port = port, .settings = l->settings};
}

/*
 * A shard whose nodes come and go, as a process host runs one: opened empty, a primary
 * initdb'ed, a standby copied from it; the standby forgotten (its process gone, its data
 * directory kept), attached again on that directory in the freed slot, made to follow the
 * primary and started: it streams and has the rows written meanwhile; then forgotten and its
 * directory removed. Bad uses are refused without touching anything.
 */
static void test_nodes_come_and_go(void **state)
{
    struct ctx *c = *state;
    struct pg_shard *s = &c->shard;
    struct layout a, b;
    char path[600], conninfo[200];

    assert_int_equal(pg_shard_open(s), 0);
    assert_int_equal(s->n, 0);
    lay_out(&a, "alpha");
    lay_out(&b, "beta");
    assert_int_equal(pg_node_create(s, &a.spec, -1), 0);
    expect_sql(s, 0, "select pg_is_in_recovery()", "f");
    expect_sql(s, 0, "show cluster_name", "alpha");
    assert_int_equal(pg_node_create(s, &b.spec, 0), 1);
    assert_int_equal(pg_node_create(s, &b.spec, 0), -EEXIST);
    assert_int_equal(pg_node_find(s, "beta"), 1);
    expect_sql(s, 1, "select pg_is_in_recovery()", "t");
    assert_int_equal(pg_sql_wait(s, 0,
                                 "select string_agg(application_name || ':' || state, ',') from "
                                 "pg_stat_replication",
                                 "beta:streaming", T_SQL_MS),
                     0);
    sql_ok(s, 0, "create table t (i int); insert into t values (1)", NULL, 0);

    /* forgotten: no process, the directory stays, the slot is free */
    conninfo_of(s, 1, conninfo, sizeof(conninfo));
    assert_int_equal(pg_node_forget(s, 1), 0);
    assert_int_equal(PQping(conninfo), PQPING_NO_RESPONSE);
    assert_int_equal(s->n, 1);
    assert_int_equal(pg_node_find(s, "beta"), -1);
    assert_int_equal(pg_node_start(s, 1), -EINVAL);
    snprintf(path, sizeof(path), "%s/beta/data/PG_VERSION", s->dir);
    assert_int_equal(access(path, F_OK), 0);
    sql_ok(s, 0, "insert into t values (2)", NULL, 0);

    /* back on its directory: attached (not started), following the primary */
    assert_int_equal(pg_node_attach(s, &b.spec), 1);
    assert_int_equal(s->nodes[1].running, 0);
    assert_int_equal(pg_shard_remove(s, "beta"), -EBUSY);
    assert_int_equal(pg_shard_remove(s, "../beta"), -EINVAL);
    assert_int_equal(pg_shard_remove(s, "/tmp"), -EINVAL);
    assert_int_equal(pg_node_follow(s, 1, 0), 0);
    assert_int_equal(pg_node_start(s, 1), 0);
    assert_int_equal(pg_sql_wait(s, 1, "select count(*) from t", "2", T_SQL_MS), 0);

    /* gone for good */
    assert_int_equal(pg_node_forget(s, 1), 0);
    assert_int_equal(pg_shard_mkdir(s, "beta/extra/dir"), 0);
    assert_int_equal(pg_shard_remove(s, "beta"), 0);
    snprintf(path, sizeof(path), "%s/beta", s->dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(pg_node_attach(s, &b.spec), -ENOENT);
    assert_int_equal(s->n, 1);
    expect_sql(s, 0, "select count(*) from t", "2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_planned_switchover_loses_no_acknowledged_commit, NULL, teardown, &switchover_ctx),
        cmocka_unit_test_prestate_setup_teardown(test_commit_without_sync_standby_times_out, NULL,
                                                 teardown, &absent_standbys_ctx),
        cmocka_unit_test_prestate_setup_teardown(test_nodes_come_and_go, NULL, teardown,
                                                 &dynamic_ctx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
