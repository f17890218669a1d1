/*
 * Tests of plugin/pg (libpq with deadlines): LSN text on hand-written values, argument and
 * conninfo checks, and, against a real PostgreSQL primary with one streaming synchronous
 * standby (tests/pg/pg_harness.h starts them), probes, commands, deadlines on a stopped
 * server, the cancel of a commit waiting for a synchronous standby (P4), and a promote (P3).
 *
 * Expectations come from the shard's configuration (ports, names, settings) and from the
 * harness's own libpq connections (pg_sql), never from the code under test. Calls that must
 * fail by their deadline are checked against a generous hang guard only (deadline +
 * HANG_MARGIN_MS), and SIGALRM ends a call that hangs anyway (after resuming a stopped server,
 * so that the harness can stop the shard).
 *
 * pg_harness.h includes <libpq-fe.h>, whose PGconn is libpq's `struct pg_conn`: the same tag
 * as pg.h's opaque type, so in this file the compiler would not catch one passed for the
 * other. Keep them apart by hand.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/core.h"
#include "pg/pg.h"
#include "pg_harness.h"

#define T_MS           10000 /* time given to calls that should succeed */
#define HANG_MARGIN_MS 3000  /* a call that must time out may take this much longer */
#define HANG_ALARM_S   60    /* SIGALRM: a test that hangs this long is killed */
#define SYNC_NAMES     "FIRST 1 (n1)"

/* ---- the shard (tests/pg/pg_harness.h), stopping a server, ports -------------------------- */

static struct pg_shard shard;

/* processes sent SIGSTOP, resumed by the hang guard before the harness stops the shard */
static volatile pid_t stopped[64];
static volatile int nstopped;

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

/* SIGALRM: a call hung. Resume what was stopped, then SIGTERM, which the harness turns into
 * stopping the shard before the process dies. */
static void on_hang(int sig)
{
    (void)sig;
    for (int i = 0; i < nstopped; i++)
        kill(stopped[i], SIGCONT);
    static const char msg[] = "pg_probe: a call hung (hang guard)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    raise(SIGTERM);
}

/* SIGSTOP a postmaster and its children (each a session leader of its own, so not a process
 * group), or SIGCONT what was stopped. */
static void stop_server(pid_t postmaster)
{
    DIR *d = opendir("/proc");
    struct dirent *e;

    nstopped = 0;
    stopped[nstopped++] = postmaster;
    kill(postmaster, SIGSTOP);
    while (d && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        long ppid = 0;
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[got] = '\0';
        const char *paren = strrchr(buf, ')'); /* the command name may hold spaces */
        if (!paren || sscanf(paren + 1, " %*c %ld", &ppid) != 1 || ppid != postmaster)
            continue;
        kill(pid, SIGSTOP);
        if (nstopped < (int)(sizeof(stopped) / sizeof(stopped[0])))
            stopped[nstopped++] = pid;
    }
    if (d)
        closedir(d);
}

static void resume_server(void)
{
    for (int i = 0; i < nstopped; i++)
        kill(stopped[i], SIGCONT);
    nstopped = 0;
}

/* A loopback TCP port with nothing listening on it. */
static int closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static int group_setup(void **state)
{
    struct sigaction sa;
    (void)state;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_hang;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    int64_t t0 = now_ms();
    if (pg_shard_start(&shard, 1, SYNC_NAMES) < 0)
        return -1;
    print_message("shard up in %" PRId64 " ms: n0 port %d, n1 port %d\n", now_ms() - t0,
                  shard.nodes[0].port, shard.nodes[1].port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    resume_server();
    pg_shard_stop(&shard);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static struct pg_conn *connect_node(int i)
{
    char conninfo[128], err[512] = "";
    struct pg_conn *c = NULL;

    pg_node_conninfo(&shard, i, conninfo, sizeof(conninfo));
    int rc = pg_connect(conninfo, pg_now_ms() + T_MS, &c, err, sizeof(err));
    if (rc != 0)
        fail_msg("connect to %s: %d %s", shard.nodes[i].name, rc, err);
    return c;
}

static void probe_ok(struct pg_conn *c, struct pg_node_status *s)
{
    char err[512] = "";
    int rc = pg_node_probe(c, pg_now_ms() + T_MS, s, err, sizeof(err));
    if (rc != 0)
        fail_msg("probe: %d %s", rc, err);
}

static void exec_ok(struct pg_conn *c, const char *sql)
{
    char err[512] = "";
    int rc = pg_exec(c, sql, pg_now_ms() + T_MS, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %d %s", sql, rc, err);
}

/* The harness's own libpq connection answers (independent of the code under test). */
static void sql_ok(int node, const char *sql, char *out, size_t size)
{
    if (pg_sql(&shard, node, sql, T_MS, out, size) != 0)
        fail_msg("n%d: \"%s\" failed", node, sql);
}

static uint64_t sql_lsn(int node, const char *sql)
{
    char out[64];
    uint64_t lsn = 0;
    sql_ok(node, sql, out, sizeof(out));
    if (pg_lsn_parse(out, &lsn) != 0)
        fail_msg("n%d answered \"%s\", not an LSN", node, out);
    return lsn;
}

static int upstream_port(const char *upstream)
{
    const char *colon = strrchr(upstream, ':');
    return colon ? atoi(colon + 1) : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- LSN text (no server) ------------------------------------------------------------------ */

static void test_lsn_parse_valid(void **state)
{
    static const struct {
        const char *text;
        uint64_t lsn;
    } cases[] = {
        {"0/0", 0},
        {"0/1", 1},
        {"16/B374D848", UINT64_C(0x16B374D848)},
        {"16/b374d848", UINT64_C(0x16B374D848)},
        {"0/4000000", UINT64_C(0x4000000)},
        {"1/0", UINT64_C(0x100000000)},
        {"00000000/00000001", 1},
        {"FFFFFFFF/FFFFFFFF", UINT64_MAX},
        {"7fffffff/ffffffff", UINT64_C(0x7FFFFFFFFFFFFFFF)},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t lsn = 42;
        if (pg_lsn_parse(cases[i].text, &lsn) != 0)
            fail_msg("\"%s\" rejected", cases[i].text);
        if (lsn != cases[i].lsn)
            fail_msg("\"%s\" -> %" PRIx64 ", expected %" PRIx64, cases[i].text, lsn, cases[i].lsn);
    }
}

static void test_lsn_parse_malformed(void **state)
{
    static const char *const bad[] = {
        "",       "/",     "0",           "0/",          "/0",
        "0//0",   "0/0/0", " 0/0",        "0/0 ",        "0 /0",
        "0/ 0",   "0/0\n", "0x1/0",       "1/0x0",       "+1/0",
        "-1/0",   "1/-0",  "123456789/0", "0/123456789", "G/0",
        "0/g",    "1.5/0", "0\\0",        "0:0",         "FFFFFFFF/FFFFFFFF0",
        "\xff/0", "0/0;",  "0/0\t",       "000000000/0",
    };
    uint64_t lsn = 42;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pg_lsn_parse(bad[i], &lsn) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(lsn, 42); /* untouched on failure */
    }
    assert_int_equal(pg_lsn_parse(NULL, &lsn), -EINVAL);
    assert_int_equal(pg_lsn_parse("0/0", NULL), -EINVAL);
}

static void test_lsn_format(void **state)
{
    char buf[PG_LSN_TEXT_SIZE];
    uint64_t back = 0;
    (void)state;

    pg_lsn_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "0/0");
    pg_lsn_format(UINT64_C(0x16B374D848), buf, sizeof(buf));
    assert_string_equal(buf, "16/B374D848");
    pg_lsn_format(UINT64_C(0x100000000), buf, sizeof(buf));
    assert_string_equal(buf, "1/0");
    pg_lsn_format(UINT64_MAX, buf, sizeof(buf));
    assert_string_equal(buf, "FFFFFFFF/FFFFFFFF");
    assert_int_equal(strlen(buf) + 1, PG_LSN_TEXT_SIZE);
    /* round trips */
    static const uint64_t values[] = {0, 1, 0xFFFFFFFF, UINT64_C(0x123456789ABCDEF0), UINT64_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        pg_lsn_format(values[i], buf, sizeof(buf));
        assert_int_equal(pg_lsn_parse(buf, &back), 0);
        assert_true(back == values[i]);
    }
    /* too small: "" rather than a cut LSN; exactly big enough: the text */
    char small[11];
    memset(small, 'x', sizeof(small));
    pg_lsn_format(UINT64_C(0x16B374D848), small, sizeof(small));
    assert_string_equal(small, "");
    char exact[12];
    pg_lsn_format(UINT64_C(0x16B374D848), exact, sizeof(exact));
    assert_string_equal(exact, "16/B374D848");
    pg_lsn_format(1, NULL, 0); /* no crash */
}

/* ---- arguments and conninfo (libpq, no server) --------------------------------------------- */

static void test_arguments(void **state)
{
    struct pg_node_status s;
    struct pg_conn *c = NULL;
    char err[256] = "";
    (void)state;

    assert_int_equal(pg_connect(NULL, pg_now_ms() + T_MS, &c, err, sizeof(err)), -EINVAL);
    assert_int_equal(pg_connect("host=127.0.0.1", pg_now_ms() + T_MS, NULL, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(pg_exec(NULL, "SELECT 1", pg_now_ms() + T_MS, err, sizeof(err)), -EINVAL);
    assert_int_equal(pg_node_probe(NULL, pg_now_ms() + T_MS, &s, err, sizeof(err)), -EINVAL);
    assert_int_equal(pg_promote(NULL, pg_now_ms() + T_MS, err, sizeof(err)), -EINVAL);
    pg_close(NULL);
}

static void test_conninfo_checks(void **state)
{
    static const char *const names[] = {
        "host=db.example.invalid port=5432",
        "host=localhost",
        "host=127.0.0.1,db.example.invalid",
        "postgresql://db.example.invalid:5432/postgres",
    };
    struct pg_conn *c = NULL;
    char err[512];
    (void)state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        err[0] = '\0';
        int64_t t0 = now_ms();
        assert_int_equal(pg_connect(names[i], pg_now_ms() + T_MS, &c, err, sizeof(err)), -EINVAL);
        assert_null(c);
        assert_true(now_ms() - t0 < 1000); /* refused before any lookup */
        if (!strstr(err, "is a name") && !strstr(err, "one host only"))
            fail_msg("%s: unexpected message: %s", names[i], err);
    }
    /* a host list is refused: a cancel must reach the server the query runs on */
    err[0] = '\0';
    assert_int_equal(
        pg_connect("host=127.0.0.1,127.0.0.2 port=1,2", pg_now_ms() + T_MS, &c, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "one host only"));
    /* a hostaddr makes a name harmless (libpq does not look it up); port 1 refuses */
    err[0] = '\0';
    assert_int_equal(pg_connect("host=db.example.invalid hostaddr=127.0.0.1 port=1",
                                pg_now_ms() + T_MS, &c, err, sizeof(err)),
                     -ECONNREFUSED);
    /* libpq's own parse errors */
    err[0] = '\0';
    assert_int_equal(
        pg_connect("host=127.0.0.1 nosuchoption=1", pg_now_ms() + T_MS, &c, err, sizeof(err)),
        -EINVAL);
    if (!strstr(err, "conninfo: ") || !strstr(err, "nosuchoption"))
        fail_msg("unexpected message: %s", err);
    err[0] = '\0';
    assert_int_equal(pg_connect("host='127.0.0.1", pg_now_ms() + T_MS, &c, err, sizeof(err)),
                     -EINVAL);
    assert_true(err[0] != '\0');
    assert_null(c);
}

/* A deadline that has passed is a timeout, never invalid input (review note 4). */
static void test_deadline_already_passed(void **state)
{
    struct pg_conn *c = NULL;
    char err[256] = "";
    (void)state;

    assert_int_equal(pg_connect("host=127.0.0.1 port=1", pg_now_ms() - 1, &c, err, sizeof(err)),
                     -ETIMEDOUT);
    assert_null(c);
    assert_non_null(strstr(err, "deadline"));
}

static void test_connection_refused(void **state)
{
    int port = closed_port();
    char conninfo[160], target[64], err[512] = "";
    struct pg_conn *c = NULL;
    (void)state;

    assert_true(port > 0);
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d user=postgres password=sekrit-value", port);
    snprintf(target, sizeof(target), "connecting to 127.0.0.1:%d: ", port);
    int64_t t0 = now_ms();
    assert_int_equal(pg_connect(conninfo, pg_now_ms() + T_MS, &c, err, sizeof(err)), -ECONNREFUSED);
    int64_t took = now_ms() - t0;
    assert_null(c);
    assert_true(took < T_MS); /* promptly, not at the deadline */
    if (strncmp(err, target, strlen(target)) != 0 || !strstr(err, "refused"))
        fail_msg("unexpected message: %s", err);
    assert_null(strstr(err, "sekrit"));
    assert_null(strchr(err, '\n'));
    print_message("refused in %" PRId64 " ms: %s\n", took, err);
}

/* ---- against the real shard ---------------------------------------------------------------- */

static void test_probe_primary(void **state)
{
    struct pg_conn *c = connect_node(0);
    struct pg_node_status s;
    char out[64];
    (void)state;

    uint64_t before = sql_lsn(0, "select pg_current_wal_lsn()");
    probe_ok(c, &s);
    uint64_t after = sql_lsn(0, "select pg_current_wal_lsn()");
    assert_int_equal(s.in_recovery, 0);
    assert_true(s.current_lsn >= before && s.current_lsn <= after && s.current_lsn > 0);
    assert_true(s.received_lsn == 0 && s.replayed_lsn == 0);
    sql_ok(0,
           "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), "
           "1, 8))::bit(32)::int",
           out, sizeof(out));
    assert_int_equal(s.timeline, atoi(out));
    assert_int_equal(s.timeline, 1);
    assert_string_equal(s.sync_standby_names, SYNC_NAMES);
    assert_string_equal(s.upstream, "");
    assert_string_equal(s.wal_receiver_status, "");
    assert_int_equal(s.nreplicas, 1);
    assert_string_equal(s.replicas[0].name, "n1");
    assert_string_equal(s.replicas[0].state, "streaming");
    assert_string_equal(s.replicas[0].sync_state, "sync"); /* FIRST 1 (n1) */
    assert_true(s.replicas[0].sent_lsn > 0 && s.replicas[0].sent_lsn <= after);
    assert_true(s.replicas[0].write_lsn <= s.replicas[0].sent_lsn);
    assert_true(s.replicas[0].flush_lsn <= s.replicas[0].write_lsn);
    assert_true(s.replicas[0].replay_lsn > 0);
    pg_close(c);
}

static void test_probe_standby(void **state)
{
    struct pg_conn *c = connect_node(1);
    struct pg_node_status s;
    char out[64];
    (void)state;

    probe_ok(c, &s);
    assert_int_equal(s.in_recovery, 1);
    assert_true(s.current_lsn == 0);
    assert_true(s.replayed_lsn > 0);
    assert_true(s.received_lsn >= s.replayed_lsn);
    assert_true(s.received_lsn <= sql_lsn(0, "select pg_current_wal_lsn()"));
    assert_int_equal(s.timeline, 1);
    sql_ok(1, "select received_tli from pg_stat_wal_receiver", out, sizeof(out));
    assert_int_equal(s.timeline, atoi(out));
    assert_string_equal(s.sync_standby_names, SYNC_NAMES); /* copied by pg_basebackup */
    assert_string_equal(s.wal_receiver_status, "streaming");
    assert_int_equal(upstream_port(s.upstream), shard.nodes[0].port);
    assert_int_equal(strncmp(s.upstream, "127.0.0.1:", 10), 0);
    assert_int_equal(s.nreplicas, 0);
    pg_close(c);
}

/* Latency of connect and probe over loopback (printed; no timed assertion). */
static void test_probe_latency(void **state)
{
    enum { CONNECTS = 20, PROBES = 200 };
    static int64_t us[PROBES];
    struct pg_node_status s;
    struct timespec t0, t1;
    (void)state;

    for (int node = 0; node < 2; node++) {
        for (int i = 0; i < CONNECTS; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t0);
            struct pg_conn *c = connect_node(node);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            us[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
            pg_close(c);
        }
        qsort(us, CONNECTS, sizeof(us[0]), cmp_i64);
        print_message("%s connect: min %" PRId64 " us, median %" PRId64 " us, max %" PRId64
                      " us (%d)\n",
                      shard.nodes[node].name, us[0], us[CONNECTS / 2], us[CONNECTS - 1], CONNECTS);
        struct pg_conn *c = connect_node(node);
        for (int i = 0; i < PROBES; i++) {
            clock_gettime(CLOCK_MONOTONIC, &t0);
            probe_ok(c, &s);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            us[i] = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        }
        pg_close(c);
        qsort(us, PROBES, sizeof(us[0]), cmp_i64);
        print_message("%s probe: min %" PRId64 " us, median %" PRId64 " us, p99 %" PRId64
                      " us, max %" PRId64 " us (%d)\n",
                      shard.nodes[node].name, us[0], us[PROBES / 2], us[PROBES * 99 / 100],
                      us[PROBES - 1], PROBES);
    }
}

static void test_exec_commands(void **state)
{
    struct pg_conn *c = connect_node(0), *standby = connect_node(1);
    char out[64], err[512] = "";
    (void)state;

    exec_ok(c, "CHECKPOINT");
    exec_ok(c, "SELECT pg_reload_conf()");
    exec_ok(c, "ALTER SYSTEM SET work_mem = '7MB'");
    exec_ok(c, "SELECT pg_reload_conf()");
    assert_int_equal(pg_sql_wait(&shard, 0, "show work_mem", "7MB", T_MS), 0);
    /* several statements run in one implicit transaction, where ALTER SYSTEM cannot */
    assert_int_equal(pg_exec(c, "ALTER SYSTEM RESET work_mem; SELECT pg_reload_conf()",
                             pg_now_ms() + T_MS, err, sizeof(err)),
                     -EREMOTEIO);
    assert_non_null(strstr(err, "25001"));
    /* messages name the command, never its text: a conninfo may carry a password */
    assert_int_equal(
        pg_exec(c,
                "ALTER SYSTEM SET primary_conninfo = 'host=10.0.0.1 password=hunter2'; "
                "SELECT 1",
                pg_now_ms() + T_MS, err, sizeof(err)),
        -EREMOTEIO);
    if (strstr(err, "hunter2"))
        fail_msg("a password reached the error text: %s", err);
    assert_non_null(strstr(err, "ALTER SYSTEM SET primary_conninfo"));
    exec_ok(c, "ALTER SYSTEM RESET work_mem");
    exec_ok(c, "SELECT pg_reload_conf()");
    assert_int_equal(pg_sql_wait(&shard, 0, "show work_mem", "4MB", T_MS), 0);
    exec_ok(c, ""); /* an empty query is fine */

    /* the server's error, with its SQLSTATE; the connection stays usable */
    assert_int_equal(pg_exec(c, "SELEC 1", pg_now_ms() + T_MS, err, sizeof(err)), -EREMOTEIO);
    if (!strstr(err, "42601") || !strstr(err, "syntax error"))
        fail_msg("unexpected message: %s", err);
    /* the first failure of several statements; the rest are not run */
    assert_int_equal(
        pg_exec(c, "SELECT 1; SELECT 1/0; SELECT 2", pg_now_ms() + T_MS, err, sizeof(err)),
        -EREMOTEIO);
    assert_non_null(strstr(err, "22012"));
    exec_ok(c, "SELECT 1");
    /* a write on a standby */
    assert_int_equal(
        pg_exec(standby, "CREATE TABLE t_on_standby (x int)", pg_now_ms() + T_MS, err, sizeof(err)),
        -EREMOTEIO);
    assert_non_null(strstr(err, "25006"));
    /* COPY is refused, and the connection closed */
    assert_int_equal(pg_exec(c, "COPY (SELECT 1) TO STDOUT", pg_now_ms() + T_MS, err, sizeof(err)),
                     -EPROTO);
    assert_int_equal(pg_exec(c, "SELECT 1", pg_now_ms() + T_MS, err, sizeof(err)), -ENOTCONN);
    sql_ok(0, "select 1", out, sizeof(out));
    pg_close(c);
    pg_close(standby);
}

struct captured_log {
    char text[4096];
    int warnings;
};

static void capture_log(void *user, int32_t level, const char *msg, size_t len)
{
    struct captured_log *l = user;
    size_t used = strlen(l->text);
    (void)len;
    if (level == MGO_LOG_WARN)
        l->warnings++;
    snprintf(l->text + used, sizeof(l->text) - used, "%d %s\n", (int)level, msg);
}

/* Server notices and warnings reach the host's log, and nothing reaches stderr. */
static void test_notices_are_logged_not_printed(void **state)
{
    struct captured_log log = {.text = ""};
    struct mgo_plugin plugin;
    struct core_scope saved;
    char path[320], buf[256];
    (void)state;

    memset(&plugin, 0, sizeof(plugin));
    plugin.host.user = &log;
    plugin.host.log = capture_log;
    plugin.host.log_level = MGO_LOG_DEBUG;
    snprintf(path, sizeof(path), "%s/stderr.txt", shard.dir);
    fflush(stderr);
    int saved_fd = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved_fd >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);

    core_enter(&plugin, &saved);
    struct pg_conn *c = connect_node(0);
    exec_ok(c, "DO $$BEGIN RAISE WARNING 'mgo-test-warning'; RAISE NOTICE 'mgo-test-notice'; "
               "END$$");
    pg_close(c);
    core_leave(&saved);

    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    if (got != 0)
        fail_msg("stderr got: %s", buf);
    if (!strstr(log.text, "1 postgres 127.0.0.1:") ||
        !strstr(log.text, "WARNING: mgo-test-warning") || !strstr(log.text, "3 postgres") ||
        !strstr(log.text, "NOTICE: mgo-test-notice"))
        fail_msg("log: %s", log.text);
    assert_int_equal(log.warnings, 1);
}

/* P4: a commit waiting for a synchronous standby that is not there ends only with a cancel.
 * The deadline cancels it, and no backend is left waiting. */
static void test_sync_commit_wait_is_cancelled(void **state)
{
    struct pg_conn *admin = connect_node(0);
    char out[64], err[512] = "";
    (void)state;

    exec_ok(admin, "CREATE TABLE IF NOT EXISTS mgo_p4 (x int)");
    exec_ok(admin, "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (nobody)'");
    exec_ok(admin, "SELECT pg_reload_conf()");
    assert_int_equal(
        pg_sql_wait(&shard, 0, "show synchronous_standby_names", "FIRST 1 (nobody)", T_MS), 0);

    struct pg_conn *c = connect_node(0);
    const int64_t given = 1500;
    alarm(HANG_ALARM_S);
    int64_t t0 = now_ms();
    int rc = pg_exec(c, "INSERT INTO mgo_p4 VALUES (1)", pg_now_ms() + given, err, sizeof(err));
    int64_t took = now_ms() - t0;
    alarm(0);
    print_message("sync commit wait: %d after %" PRId64 " ms (deadline %" PRId64 " ms): %s\n", rc,
                  took, given, err);
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(took <= given + HANG_MARGIN_MS);
    if (!strstr(err, "cancelled (pg_cancel_backend(") || !strstr(err, "connection closed"))
        fail_msg("unexpected message: %s", err);
    assert_int_equal(pg_exec(c, "SELECT 1", pg_now_ms() + T_MS, err, sizeof(err)), -ENOTCONN);
    pg_close(c);
    /* nobody waits on SyncRep any more; the row was committed locally all the same */
    assert_int_equal(pg_sql_wait(&shard, 0,
                                 "select count(*) from pg_stat_activity "
                                 "where wait_event = 'SyncRep'",
                                 "0", 5000),
                     0);
    sql_ok(0, "select count(*) from mgo_p4", out, sizeof(out));
    assert_string_equal(out, "1");

    exec_ok(admin, "ALTER SYSTEM RESET synchronous_standby_names");
    exec_ok(admin, "SELECT pg_reload_conf()");
    assert_int_equal(pg_sql_wait(&shard, 0, "show synchronous_standby_names", SYNC_NAMES, T_MS), 0);
    exec_ok(admin, "DROP TABLE mgo_p4"); /* commits again: the standby is sync again */
    pg_close(admin);
}

/* A stopped server (SIGSTOP: the kernel still accepts connections) times out by the deadline,
 * connecting and querying. */
static void test_stopped_server_times_out(void **state)
{
    struct pg_conn *held = connect_node(0), *c = NULL;
    struct pg_node_status s;
    char conninfo[128], connect_err[512] = "", probe_err[512] = "", again_err[512] = "";
    const int64_t given = 1000;
    int64_t connect_took, probe_took;
    int connect_rc, probe_rc, again_rc;
    (void)state;

    pg_node_conninfo(&shard, 0, conninfo, sizeof(conninfo));
    stop_server(shard.nodes[0].pid);
    alarm(HANG_ALARM_S);
    int64_t t0 = now_ms();
    connect_rc = pg_connect(conninfo, pg_now_ms() + given, &c, connect_err, sizeof(connect_err));
    connect_took = now_ms() - t0;
    t0 = now_ms();
    probe_rc = pg_node_probe(held, pg_now_ms() + given, &s, probe_err, sizeof(probe_err));
    probe_took = now_ms() - t0;
    again_rc = pg_node_probe(held, pg_now_ms() + T_MS, &s, again_err, sizeof(again_err));
    alarm(0);
    resume_server(); /* before any assertion can leave the test */

    print_message("connect to a stopped server: %d after %" PRId64 " ms: %s\n", connect_rc,
                  connect_took, connect_err);
    print_message("probe of a stopped server: %d after %" PRId64 " ms: %s\n", probe_rc, probe_took,
                  probe_err);
    assert_int_equal(connect_rc, -ETIMEDOUT);
    assert_null(c);
    assert_true(connect_took <= given + HANG_MARGIN_MS);
    assert_non_null(strstr(connect_err, "no answer before the deadline"));
    assert_int_equal(probe_rc, -ETIMEDOUT);
    assert_true(probe_took <= given + HANG_MARGIN_MS);
    assert_non_null(strstr(probe_err, "cancel failed"));
    assert_int_equal(again_rc, -ENOTCONN);
    pg_close(held);
    /* the server is fine again */
    held = connect_node(0);
    probe_ok(held, &s);
    assert_int_equal(s.in_recovery, 0);
    pg_close(held);
}

/* Every allocation of connect + probe may fail: -ENOMEM, nothing leaks. */
struct failing {
    long calls, fail_at, live;
};

static void *failing_alloc(void *user, size_t size)
{
    struct failing *f = user;
    if (++f->calls == f->fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        f->live++;
    return p;
}

static void *failing_realloc(void *user, void *ptr, size_t size)
{
    struct failing *f = user;
    if (++f->calls == f->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        f->live++;
    return p;
}

static void failing_free(void *user, void *ptr)
{
    struct failing *f = user;
    if (ptr)
        f->live--;
    free(ptr);
}

static void test_allocation_failures(void **state)
{
    char conninfo[128], err[256];
    struct pg_node_status s;
    (void)state;

    pg_node_conninfo(&shard, 0, conninfo, sizeof(conninfo));
    for (long n = 1;; n++) {
        struct failing f = {.fail_at = n};
        struct mgo_plugin plugin;
        struct core_scope saved;
        struct pg_conn *c = NULL;
        memset(&plugin, 0, sizeof(plugin));
        plugin.host.user = &f;
        plugin.host.alloc = failing_alloc;
        plugin.host.realloc = failing_realloc;
        plugin.host.free = failing_free;
        core_enter(&plugin, &saved);
        int rc = pg_connect(conninfo, pg_now_ms() + T_MS, &c, err, sizeof(err));
        if (rc == 0)
            rc = pg_node_probe(c, pg_now_ms() + T_MS, &s, err, sizeof(err));
        pg_close(c);
        core_leave(&saved);
        assert_int_equal(f.live, 0);
        if (f.calls < n) {
            assert_int_equal(rc, 0); /* no failure injected: success */
            break;
        }
        if (rc != -ENOMEM)
            fail_msg("allocation %ld failed: %d %s", n, rc, err);
    }
}

/* The primary goes away: a connection to it is lost; the standby, without a WAL receiver, still
 * knows its timeline (from pg_control_checkpoint()) and what it received. */
static void test_standby_without_primary(void **state)
{
    struct pg_conn *c = connect_node(1), *old_primary = connect_node(0);
    struct pg_node_status s;
    char err[512] = "";
    (void)state;

    assert_int_equal(pg_node_stop(&shard, 0, "fast"), 0);
    /* a connection to the stopped server: lost, then closed */
    assert_int_equal(pg_node_probe(old_primary, pg_now_ms() + T_MS, &s, err, sizeof(err)), -EIO);
    print_message("probe of a stopped primary: %s\n", err);
    assert_non_null(strstr(err, "connection lost"));
    assert_int_equal(pg_exec(old_primary, "SELECT 1", pg_now_ms() + T_MS, err, sizeof(err)),
                     -ENOTCONN);
    assert_non_null(strstr(err, "the connection was lost"));
    pg_close(old_primary);
    /* the WAL receiver exits when the primary goes; it is restarted every 5 s and fails */
    for (int64_t end = now_ms() + 20000;; sleep_ms(20)) {
        int rc = pg_node_probe(c, pg_now_ms() + T_MS, &s, err, sizeof(err));
        if (rc != 0)
            fail_msg("probe: %d %s", rc, err);
        if (!s.wal_receiver_status[0] || now_ms() > end)
            break;
    }
    print_message("standby without primary: receiver \"%s\", upstream \"%s\", timeline %d\n",
                  s.wal_receiver_status, s.upstream, s.timeline);
    assert_string_equal(s.wal_receiver_status, "");
    assert_string_equal(s.upstream, "");
    assert_int_equal(s.in_recovery, 1);
    assert_int_equal(s.timeline, 1);
    assert_true(s.received_lsn >= s.replayed_lsn && s.replayed_lsn > 0);
    pg_close(c);
}

/* Promote the standby: it is a primary on timeline 2, and pg_control says so at once (P3). */
static void test_promote(void **state)
{
    struct pg_conn *c = connect_node(1);
    struct pg_node_status s;
    char out[64], err[512] = "";
    (void)state;

    int64_t t0 = now_ms();
    int rc = pg_promote(c, pg_now_ms() + 30000, err, sizeof(err));
    print_message("promote: %d in %" PRId64 " ms %s\n", rc, now_ms() - t0, err);
    assert_int_equal(rc, 0);
    probe_ok(c, &s);
    assert_int_equal(s.in_recovery, 0);
    assert_int_equal(s.timeline, 2);
    assert_true(s.current_lsn > 0);
    assert_true(s.received_lsn == 0 && s.replayed_lsn == 0);
    assert_string_equal(s.upstream, "");
    sql_ok(1, "select timeline_id from pg_control_checkpoint()", out, sizeof(out));
    assert_string_equal(out, "2");
    /* again: already a primary */
    err[0] = '\0';
    assert_int_equal(pg_promote(c, pg_now_ms() + T_MS, err, sizeof(err)), -EALREADY);
    assert_non_null(strstr(err, "not in recovery"));
    exec_ok(c, "SELECT 1"); /* still usable */
    pg_close(c);
}

/* A role that cannot read replication details gets an answer saying so, not NULLs read as
 * "not streaming" and LSN 0. */
static void test_probe_needs_stats_role(void **state)
{
    char out[64], conninfo[256], err[512] = "";
    struct pg_conn *c = NULL;
    struct pg_node_status st;
    (void)state;

    assert_int_equal(pg_sql(&shard, 0, "CREATE ROLE mgo_nostats LOGIN", T_MS, out, sizeof(out)), 0);
    (void)snprintf(conninfo, sizeof(conninfo),
                   "host=127.0.0.1 port=%d user=mgo_nostats dbname=postgres", shard.nodes[0].port);
    assert_int_equal(pg_connect(conninfo, pg_now_ms() + T_MS, &c, err, sizeof(err)), 0);
    assert_int_equal(pg_node_probe(c, pg_now_ms() + T_MS, &st, err, sizeof(err)), -EACCES);
    assert_non_null(strstr(err, "pg_read_all_stats"));
    pg_close(c);
    assert_int_equal(pg_sql(&shard, 0, "DROP ROLE mgo_nostats", T_MS, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_lsn_parse_valid),    cmocka_unit_test(test_lsn_parse_malformed),
        cmocka_unit_test(test_lsn_format),         cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_conninfo_checks),    cmocka_unit_test(test_deadline_already_passed),
        cmocka_unit_test(test_connection_refused),
    };
    /* in this order: the last two stop the primary and promote the standby */
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_probe_primary),
        cmocka_unit_test(test_probe_standby),
        cmocka_unit_test(test_probe_latency),
        cmocka_unit_test(test_exec_commands),
        cmocka_unit_test(test_probe_needs_stats_role),
        cmocka_unit_test(test_notices_are_logged_not_printed),
        cmocka_unit_test(test_sync_commit_wait_is_cancelled),
        cmocka_unit_test(test_stopped_server_times_out),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_standby_without_primary),
        cmocka_unit_test(test_promote),
    };
    int failed = cmocka_run_group_tests_name("pg offline", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("pg live", live, group_setup, group_teardown);
    return failed;
}
