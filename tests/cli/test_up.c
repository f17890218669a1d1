/*
 * `mgo up` and the local-cluster commands, end to end (the contract of issue 7): the real `mgo`
 * binary run as a subprocess against a fresh state directory, real PostgreSQL and etcd, and a
 * writer committing continuously through the primary (tests/pg/writer.c).
 *
 * Steps: invalid manifests refused by `up` before anything starts; up of tests/cli/up3.yaml
 * (one cell, one pool of 3 instances, AT_LEAST_2, a Secret); `logs`; scale 3 -> 5 -> 2 (the
 * removed instances' volumes deleted); a drain of the primary of that pool of 2, which cannot
 * hand over without breaking AT_LEAST_2 (refused: exit 2, "Nothing was changed", state.json
 * byte-identical, the primary stays); scale 2 -> 3; drain of the primary; a restart-class
 * `apply` (shared_buffers) (both with a marker file in every data directory: each instance comes
 * back on its own volume); invalid edits refused by `apply` with nothing changed; an `apply`
 * and a `drain` killed with SIGKILL mid-way (timers), then rerun; crash points triggered by
 * state.json: a drain of the primary killed once it records `promoting:` (the fenced primary
 * never comes back writable) and `scale 4` killed once a record is "creating", both rerun;
 * scale 4 -> 3; etcd killed (observe reports it, `apply` restarts it); down; down --purge.
 *
 * After each step the cluster is read back from the real system, not only from mgo: the
 * postmaster pid files, pg_is_in_recovery() and pg_stat_replication on every instance, the
 * processes under the state directory (/proc: every postmaster there must be one `status`
 * lists, and every one it lists must run), and `mgo observe`; the writer's acknowledged commits
 * are all checked on the primary. Expected values come from the manifest and the contract
 * (/tmp/up/contract.md) and docs/spec (lifecycle.md, errors.md).
 *
 * Whatever happens, `mgo down --purge` runs at exit (atexit, and a watchdog thread on SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT and at 570 s, before ctest's TIMEOUT), then every process still
 * holding the state directory is killed and the directories are removed.
 *
 * Needs: MGO_CLI (else the build's mgo, MGO_BIN); UP3_MANIFEST. Output: one "ok" or "FAIL" line
 * per check, figures per step; exit status 1 when any check failed.
 */
#define _DEFAULT_SOURCE /* mkdtemp */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <dirent.h>

#include "mgorun.h"
#include "pg_harness.h"
#include "writer.h"

#define CLUSTER        "up3"
#define POOL           "main"
#define CELL           "z1"
#define PASSWORD       "up3-s3cret" /* the Secret of up3.yaml */
#define CMD_TIMEOUT    "240"        /* --timeout of the commands that converge */
#define CMD_TIMEOUT_MS 300000       /* and our deadline for them */
#define COMMIT_TIMEOUT 2000
#define WATCHDOG_S     570
#define MAX_BAD_DIRS   8
#define PORTS_RESERVED 64

static struct {
    const char *mgo;
    char state[64]; /* the state directory of the cluster */
    char work[64];  /* manifests written by the test */
    char cdir[128]; /* STATE/<cluster> */
    char passfile[160];
    char bad[MAX_BAD_DIRS][64]; /* fresh state directories of the refused `up`s */
    int n_bad;
    char port_base[16];
    char *manifest; /* the text of tests/cli/up3.yaml */
    struct writer *writer;
} g;

static int passed, failed;
static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static int cleaned;
static volatile int stopping; /* the watchdog is cleaning up: the main thread's checks are moot */
static int quiet_notes;       /* note() prints nothing (the main thread's tries before the last) */

static int check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int check(int ok, const char *fmt, ...)
{
    va_list ap;
    if (stopping)
        return ok;
    va_start(ap, fmt);
    fputs(ok ? "ok   " : "FAIL ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    if (ok)
        passed++;
    else
        failed++;
    return ok;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    if (stopping || quiet_notes)
        return;
    va_start(ap, fmt);
    fputs("     ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static void vmgo(struct mgorun *r, int timeout_ms, int kill_after_ms, int (*kill_when)(void *),
                 void *arg, va_list ap)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = g.mgo;
    for (const char *a = va_arg(ap, const char *); a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
    if (mgorun_cmd_when(r, argv, timeout_ms, kill_after_ms, kill_when, arg, 10) != 0 && !stopping)
        fprintf(stdout, "     cannot run %s: %s", r->cmd, r->err);
}

/* Run `mgo ARGS...` (NULL-terminated), killed at kill_after_ms when > 0. */
static void mgo(struct mgorun *r, int timeout_ms, int kill_after_ms, ...)
{
    va_list ap;
    va_start(ap, kill_after_ms);
    vmgo(r, timeout_ms, kill_after_ms, NULL, NULL, ap);
    va_end(ap);
}

/* A crash trigger on the state: fires once STATE/<cluster>/state.json contains `needle`. */
struct state_trigger {
    const char *needle;
    int fired;
};

static int state_has(const char *needle);

static int trigger_fires(void *arg)
{
    struct state_trigger *t = arg;
    if (state_has(t->needle))
        t->fired = 1;
    return t->fired;
}

/* Run `mgo ARGS...` (NULL-terminated), killed with SIGKILL as soon as state.json contains
 * t->needle (polled every 10 ms). */
static void mgo_until(struct mgorun *r, int timeout_ms, struct state_trigger *t, ...)
{
    va_list ap;
    va_start(ap, t);
    t->fired = 0;
    vmgo(r, timeout_ms, 0, trigger_fires, t, ap);
    va_end(ap);
}

/* Whether text is valid UTF-8 with no control character but newline and tab; else *bad gets
 * the offset of the first offending byte. */
static int is_text(const char *text, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; p[i];) {
        unsigned c = p[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        int ok = n > 0 && (c >= 0x20 || c == '\n' || c == '\t') && c != 0x7F;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (!ok) {
            *bad = i;
            return 0;
        }
        i += n;
    }
    return 1;
}

/* Check the exit status of a finished command, and that what it printed is readable text;
 * print it all when either is wrong. */
static int check_exit(struct mgorun *r, int want, const char *what)
{
    char how[64];
    int ok = !r->timed_out && !r->signo && r->code == want;
    check(ok, "%s: %s (want exit %d) in %lld ms", what, mgorun_how(r, how, sizeof(how)), want,
          (long long)r->ms);
    size_t bo = 0, be = 0;
    int text_out = is_text(r->out, &bo), text_err = is_text(r->err, &be);
    if (!text_out || !text_err) {
        check(0, "%s: prints readable text (invalid byte at %s offset %zu)", what,
              text_out ? "stderr" : "stdout", text_out ? be : bo);
        ok = 0;
    }
    if (!ok)
        mgorun_print(r, stdout);
    return ok;
}

/* ---- cleanup ---------------------------------------------------------------------------- */

static void down_and_remove(const char *dir)
{
    if (!dir[0])
        return;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char names[16][256];
        int n = 0;
        while ((de = readdir(d)) && n < 16)
            if (de->d_name[0] != '.')
                snprintf(names[n++], sizeof(names[0]), "%s", de->d_name);
        closedir(d);
        for (int i = 0; i < n; i++) {
            char sub[400];
            struct stat sb;
            snprintf(sub, sizeof(sub), "%.100s/%.255s", dir, names[i]);
            if (stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode))
                continue;
            struct mgorun r;
            mgo(&r, 120000, 0, "down", "--state-dir", dir, "--purge", names[i], NULL);
            if (r.code != 0) {
                printf("cleanup: `mgo down --purge %s` did not succeed:\n", names[i]);
                mgorun_print(&r, stdout);
            }
            mgorun_free(&r);
        }
    }
    int killed = mgorun_kill_under(dir);
    if (killed)
        printf("cleanup: killed %d process(es) left under %s\n", killed, dir);
    if (mgorun_rmtree(dir) != 0)
        printf("cleanup: could not remove %s\n", dir);
}

static void cleanup(void)
{
    pthread_mutex_lock(&cleanup_lock);
    if (!cleaned) {
        cleaned = 1;
        mgorun_kill_running();
        if (g.writer)
            writer_stop(g.writer);
        down_and_remove(g.state);
        for (int i = 0; i < g.n_bad; i++)
            down_and_remove(g.bad[i]);
        if (g.work[0])
            mgorun_rmtree(g.work);
        fflush(stdout);
    }
    pthread_mutex_unlock(&cleanup_lock);
}

static sigset_t watched;

static void *watchdog(void *arg)
{
    (void)arg;
    int64_t deadline = mgorun_now_ms() + (int64_t)WATCHDOG_S * 1000;
    for (;;) {
        int64_t left = deadline - mgorun_now_ms();
        if (left <= 0) {
            printf("FAIL watchdog: %d s elapsed, stopping the cluster\n", WATCHDOG_S);
            break;
        }
        struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
        int sig = sigtimedwait(&watched, NULL, &ts);
        if (sig > 0) {
            printf("FAIL signal %d: stopping the cluster\n", sig);
            break;
        }
    }
    fflush(stdout);
    stopping = 1;
    cleanup();
    _exit(1);
}

/* ---- reading the real cluster ----------------------------------------------------------- */

static void conninfo_port(int port, char *buf, size_t size)
{
    snprintf(buf, size,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres passfile=%s "
             "connect_timeout=5",
             port, g.passfile);
}

/* Every instance's port, libpq picking the read-write one. */
static void conninfo_multi(const struct mgorun_status *st, char *buf, size_t size)
{
    char hosts[256] = "", ports[256] = "";
    for (int i = 0; i < st->n; i++) {
        size_t h = strlen(hosts), p = strlen(ports);
        snprintf(hosts + h, sizeof(hosts) - h, "%s127.0.0.1", i ? "," : "");
        snprintf(ports + p, sizeof(ports) - p, "%s%d", i ? "," : "", st->in[i].port);
    }
    snprintf(buf, size,
             "host=%s port=%s user=postgres dbname=postgres passfile=%s "
             "target_session_attrs=read-write connect_timeout=2",
             hosts, ports, g.passfile);
}

/* The first value of `sql` on the node at conninfo; 0, or -1 with out = the error. */
static int sql_ci(const char *ci, const char *sql, char *out, size_t size)
{
    PGconn *conn;
    PGresult *res = NULL;
    char err[512];
    out[0] = '\0';
    if (pg_harness_connect(ci, 10000, &conn, err, sizeof(err)) != 0) {
        snprintf(out, size, "%s", err);
        return -1;
    }
    int rc = pg_harness_query(conn, sql, 20000, &res, err, sizeof(err));
    if (rc == 0 && res && PQntuples(res) > 0 && PQnfields(res) > 0)
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    else if (rc != 0)
        snprintf(out, size, "%s", err);
    if (res)
        PQclear(res);
    PQfinish(conn);
    return rc == 0 ? 0 : -1;
}

static int sql_port(int port, const char *sql, char *out, size_t size)
{
    char ci[512];
    conninfo_port(port, ci, sizeof(ci));
    return sql_ci(ci, sql, out, size);
}

static const struct mgorun_instance *primary_of(const struct mgorun_status *st)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->in[i].role, "primary") == 0)
            return &st->in[i];
    return NULL;
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void state_file(char *buf, size_t size)
{
    snprintf(buf, size, "%s/state.json", g.cdir);
}

/* Whether STATE/<cluster>/state.json contains needle now. */
static int state_has(const char *needle)
{
    char path[200];
    state_file(path, sizeof(path));
    char *text = mgorun_read_file(path, NULL);
    int hit = text && strstr(text, needle) != NULL;
    free(text);
    return hit;
}

/* The size of a file, 0 when it cannot be read. */
static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* `mgo observe` exits 0. */
static int check_observe(const char *step)
{
    struct mgorun r;
    mgo(&r, 120000, 0, "observe", "--state-dir", g.state, CLUSTER, NULL);
    char what[160];
    snprintf(what, sizeof(what), "%s: `mgo observe` reports no violation", step);
    int ok = check_exit(&r, 0, what);
    mgorun_free(&r);
    return ok;
}

/*
 * The processes under the state directory against status: every postmaster running there is
 * an instance status lists with that pid, every etcd running there is one of its etcd, and
 * nothing else runs there but their children (PostgreSQL backends).
 */
struct proc_counts {
    int postmasters, etcds, listed_running, etcd_running;
};

/* One look at the processes (check_processes); notes only when `report`. */
static int scan_processes(const struct mgorun_status *st, int report, struct proc_counts *c)
{
    static struct mgorun_proc ps[256];
    size_t n = mgorun_procs(g.state, ps, 256);
    int ok = n <= 256, postmasters = 0, etcds = 0;
    quiet_notes = !report;
    for (size_t i = 0; i < n && i < 256; i++) {
        if (ps[i].postmaster) {
            postmasters++;
            int listed = 0;
            for (int k = 0; k < st->n; k++)
                listed |= st->in[k].pid == ps[i].pid;
            if (!listed) {
                ok = 0;
                note("orphan postmaster pid %d, cwd %s: %s", (int)ps[i].pid, ps[i].cwd, ps[i].cmd);
            }
        } else if (strcmp(ps[i].exe, "etcd") == 0) {
            etcds++;
            int listed = 0;
            for (int k = 0; k < st->n_etcd; k++)
                listed |= st->etcd[k].pid == ps[i].pid;
            if (!listed) {
                ok = 0;
                note("etcd pid %d not in status: %s", (int)ps[i].pid, ps[i].cmd);
            }
        } else if (strcmp(ps[i].exe, "postgres") != 0) {
            /* a leftover pg_ctl, pg_basebackup, initdb, mgo... once no command runs */
            ok = 0;
            note("unexpected process pid %d (%s), cwd %s: %s", (int)ps[i].pid, ps[i].exe, ps[i].cwd,
                 ps[i].cmd);
        }
    }
    int listed_running = 0;
    for (int k = 0; k < st->n; k++)
        for (size_t i = 0; i < n && i < 256; i++)
            if (ps[i].postmaster && ps[i].pid == st->in[k].pid)
                listed_running++;
    if (listed_running != st->n)
        ok = 0;
    int etcd_running = 0;
    for (int k = 0; k < st->n_etcd; k++) {
        if (!st->etcd[k].running || st->etcd[k].pid <= 0) {
            ok = 0;
            note("etcd %s not running according to status", st->etcd[k].name);
        }
        for (size_t i = 0; i < n && i < 256; i++)
            if (ps[i].pid == st->etcd[k].pid && strcmp(ps[i].exe, "etcd") == 0)
                etcd_running++;
    }
    if (etcd_running != st->n_etcd)
        ok = 0;
    quiet_notes = 0;
    c->postmasters = postmasters;
    c->etcds = etcds;
    c->listed_running = listed_running;
    c->etcd_running = etcd_running;
    return ok;
}

/* The processes under the state directory against status (above). A process seen in passing
 * (a backend or pg_ctl exiting) is not an orphan: up to 5 looks, 0.5 s apart, and the
 * problems of the last one reported. */
static int check_processes(const char *step, const struct mgorun_status *st)
{
    struct proc_counts c;
    int ok = 0;
    for (int attempt = 0; attempt < 5 && !ok; attempt++) {
        if (attempt)
            mgorun_sleep_ms(500);
        ok = scan_processes(st, attempt == 4, &c);
    }
    return check(ok,
                 "%s: processes under the state directory: %d postmaster(s) (status lists %d, "
                 "%d of them running), %d etcd (status lists %d, %d running), no orphan",
                 step, c.postmasters, st->n, c.listed_running, c.etcds, st->n_etcd, c.etcd_running);
}

/* Whether each standby's "synchronous" in status (at `st`) is what the primary (at port)
 * reports in pg_stat_replication: sync_state 'sync' or 'quorum' for its application_name (no
 * row: not synchronous). Notes the differences when `report`. */
static int synchronous_agree(const struct mgorun_status *st, int port, int report)
{
    int ok = 1;
    for (int i = 0; i < st->n; i++) {
        const struct mgorun_instance *in = &st->in[i];
        if (strcmp(in->role, "primary") == 0)
            continue;
        char sql[512], v[512];
        snprintf(sql, sizeof(sql),
                 "SELECT coalesce(bool_or(sync_state IN ('sync', 'quorum')), false) FROM "
                 "pg_stat_replication WHERE application_name = '%s'",
                 in->name);
        int rc = sql_port(port, sql, v, sizeof(v));
        int real = rc == 0 && strcmp(v, "t") == 0;
        if (rc != 0 || in->synchronous < 0 || in->synchronous != real) {
            ok = 0;
            if (report)
                note("%s: status synchronous %s, pg_stat_replication says %s", in->name,
                     in->synchronous < 0 ? "(absent)"
                     : in->synchronous   ? "true"
                                         : "false",
                     rc != 0 ? v
                     : real  ? "sync/quorum"
                             : "not synchronous");
        }
    }
    return ok;
}

/* synchronous_agree, with up to 10 fresh reads of status 0.5 s apart (status and
 * pg_stat_replication are not read at the same instant). */
static int check_synchronous(const char *step, const struct mgorun_status *st, int port)
{
    static struct mgorun_status now;
    char err[1024];
    int ok = synchronous_agree(st, port, 0);
    for (int attempt = 0; attempt < 10 && !ok; attempt++) {
        mgorun_sleep_ms(500);
        if (mgorun_status(g.mgo, g.state, CLUSTER, &now, err, sizeof(err)) == 0)
            ok = synchronous_agree(&now, port, attempt == 9);
    }
    return check(ok,
                 "%s: each standby's \"synchronous\" in status is its pg_stat_replication "
                 "sync_state in (sync, quorum) on the primary",
                 step);
}

/*
 * The cluster after a step: `status --json` and the real servers agree on want_n instances of
 * the manifest's pool, indexes 0..want_n-1 (docs/spec/lifecycle.md), exactly one primary and
 * want_n - 1 standbys streaming from it, one of them synchronous (AT_LEAST_2), all running
 * with the pid of their postmaster.pid; no orphan process; observe clean.
 */
static int check_cluster(const char *step, int want_n, struct mgorun_status *st)
{
    char err[2048];
    int ok = 1;
    if (!check(mgorun_status(g.mgo, g.state, CLUSTER, st, err, sizeof(err)) == 0,
               "%s: `mgo status --json` answers", step)) {
        note("%s", err);
        return 0;
    }
    ok &= check(strcmp(st->cluster, CLUSTER) == 0 && strcmp(st->phase, "Healthy") == 0,
                "%s: status: cluster \"%s\" (want %s), phase \"%s\" (want Healthy)", step,
                st->cluster, CLUSTER, st->phase);
    ok &= check(st->n == want_n, "%s: status lists %d instances (want %d)", step, st->n, want_n);

    int primaries = 0, standbys = 0, fields = 1, labels = 1, running = 1, dirs = 1, indexes = 1;
    unsigned seen = 0;
    for (int i = 0; i < st->n; i++) {
        const struct mgorun_instance *in = &st->in[i];
        char want_dir[512], suffix[32];
        if (!in->has_all_fields) {
            fields = 0;
            note("instance %d (%s): field \"%s\" missing or mistyped", i, in->name,
                 in->missing_field);
        }
        if (strcmp(in->cell, CELL) || strcmp(in->pool, POOL) || strcmp(in->database, "postgres") ||
            strcmp(in->tablegroup, "default") || strcmp(in->shard, "0-inf") ||
            strcmp(in->host, "127.0.0.1") || strncmp(in->name, CLUSTER "-", 4) != 0) {
            labels = 0;
            note("%s: cell %s pool %s database %s tablegroup %s shard %s host %s", in->name,
                 in->cell, in->pool, in->database, in->tablegroup, in->shard, in->host);
        }
        snprintf(suffix, sizeof(suffix), "-%lld", in->index);
        size_t ln = strlen(in->name), ls = strlen(suffix);
        if (in->index < 0 || in->index >= want_n || ((seen >> in->index) & 1u) || ln < ls ||
            strcmp(in->name + ln - ls, suffix) != 0) {
            indexes = 0;
            note("%s: index %lld", in->name, in->index);
        } else {
            seen |= 1u << in->index;
        }
        if (strcmp(in->role, "primary") == 0)
            primaries++;
        else if (strcmp(in->role, "standby") == 0)
            standbys++;
        if (strcmp(in->state, "running") || in->pid <= 0 || in->drain[0] || in->port <= 0) {
            running = 0;
            note("%s: state %s pid %lld drain \"%s\" port %d", in->name, in->state, in->pid,
                 in->drain, in->port);
        }
        snprintf(want_dir, sizeof(want_dir), "%s/instances/%s/data", g.cdir, in->name);
        if (strcmp(in->data_dir, want_dir) != 0) {
            dirs = 0;
            note("%s: data_dir %s, want %s", in->name, in->data_dir, want_dir);
        }
    }
    ok &= check(fields, "%s: every instance has the fields of the contract", step);
    ok &= check(labels,
                "%s: every instance is in cell %s, pool %s, postgres/default/0-inf, host "
                "127.0.0.1, named %s-...",
                step, CELL, POOL, CLUSTER);
    ok &= check(indexes && seen == (1u << want_n) - 1,
                "%s: indexes are 0..%d, each ending its name", step, want_n - 1);
    ok &= check(primaries == 1 && standbys == want_n - 1,
                "%s: status: %d primary, %d standbys (want 1 and %d)", step, primaries, standbys,
                want_n - 1);
    ok &= check(running, "%s: every instance is running with a pid, no drain", step);
    ok &= check(dirs, "%s: data_dir is STATE/%s/instances/<name>/data", step, CLUSTER);

    /* the real servers */
    int pidfiles = 1, roles = 1;
    for (int i = 0; i < st->n; i++) {
        const struct mgorun_instance *in = &st->in[i];
        long long pm = mgorun_postmaster_pid(in->data_dir);
        if (pm != in->pid) {
            pidfiles = 0;
            note("%s: postmaster.pid says %lld, status %lld", in->name, pm, in->pid);
        }
        char v[512];
        int is_primary = strcmp(in->role, "primary") == 0;
        if (sql_port(in->port, "SELECT pg_is_in_recovery()", v, sizeof(v)) != 0 ||
            strcmp(v, is_primary ? "f" : "t") != 0) {
            roles = 0;
            note("%s (port %d, %s): pg_is_in_recovery() = %s", in->name, in->port, in->role, v);
        }
    }
    ok &= check(pidfiles, "%s: each pid of status is the one in its postmaster.pid", step);
    ok &= check(roles, "%s: pg_is_in_recovery() is false on the primary only", step);

    const struct mgorun_instance *p = primary_of(st);
    if (p && primaries == 1) {
        /* the standbys stream from the primary; AT_LEAST_2: at least one is synchronous */
        char v[512] = "", sync[512] = "";
        char want[16];
        snprintf(want, sizeof(want), "%d", want_n - 1);
        int64_t deadline = mgorun_now_ms() + 15000;
        do {
            sql_port(p->port, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                     v, sizeof(v));
            sql_port(p->port,
                     "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN "
                     "('sync', 'quorum')",
                     sync, sizeof(sync));
            if (strcmp(v, want) == 0 && atoi(sync) >= 1)
                break;
            mgorun_sleep_ms(200);
        } while (mgorun_now_ms() < deadline);
        ok &= check(strcmp(v, want) == 0 && atoi(sync) >= 1,
                    "%s: the primary streams to %s standbys (want %s), %s synchronous (want >= 1)",
                    step, v, want, sync);
        ok &= check_synchronous(step, st, p->port);
    }
    ok &= check_processes(step, st);
    ok &= check_observe(step);
    return ok;
}

/* Print what status says now (after a crash, say): no check. */
static void print_status(const char *when)
{
    struct mgorun_status mid;
    char err[1024];
    if (mgorun_status(g.mgo, g.state, CLUSTER, &mid, err, sizeof(err)) != 0) {
        note("%s: status: %s", when, err);
        return;
    }
    note("%s: phase %s", when, mid.phase);
    for (int i = 0; i < mid.n; i++)
        note("  %s %s %s pid %lld drain %s", mid.in[i].name, mid.in[i].role, mid.in[i].state,
             mid.in[i].pid, mid.in[i].drain);
}

/* ---- the writer ------------------------------------------------------------------------- */

struct step {
    const char *name;
    struct writer_stats before;
    int64_t t0;
};

static void step_begin(struct step *s, const char *name)
{
    s->name = name;
    printf("\n== %s\n", name);
    fflush(stdout);
    if (g.writer) {
        writer_get_stats(g.writer, &s->before);
        writer_reset_stall(g.writer);
    }
    s->t0 = mgorun_now_ms();
}

/* After a step: re-point the writer at the new set of instances, check that every
 * acknowledged commit is on the primary and that commits go on; print the figures. */
static int step_end(struct step *s, const struct mgorun_status *st)
{
    if (!g.writer)
        return 1;
    char ci[512];
    conninfo_multi(st, ci, sizeof(ci));
    writer_switch(g.writer, ci);
    const struct mgorun_instance *p = primary_of(st);
    int ok = 1;
    size_t missing = 0;
    if (p) {
        char pci[512], report[1024];
        conninfo_port(p->port, pci, sizeof(pci));
        int rc = writer_check(pci, g.writer, &missing, report, sizeof(report));
        ok &= check(rc == 0, "%s: every acknowledged commit is on the primary %s: %s", s->name,
                    p->name, report);
    } else {
        ok &= check(0, "%s: no primary to check the writer on", s->name);
    }
    /* writes go on: at least 5 more acknowledged commits within 30 s */
    struct writer_stats a, b;
    writer_get_stats(g.writer, &a);
    int64_t deadline = mgorun_now_ms() + 30000;
    do {
        mgorun_sleep_ms(100);
        writer_get_stats(g.writer, &b);
    } while (b.acked < a.acked + 5 && mgorun_now_ms() < deadline);
    ok &= check(b.acked >= a.acked + 5, "%s: commits go on afterwards (%zu more acknowledged)",
                s->name, b.acked - a.acked);
    if (!ok && b.last_error[0])
        note("writer's last error: %s", b.last_error);
    printf("     figures %-28s %7lld ms, commits acked %6zu, failed %4zu, timed out %3zu, "
           "longest stall %6lld ms, lost %zu\n",
           s->name, (long long)(mgorun_now_ms() - s->t0), b.acked - s->before.acked,
           b.failed - s->before.failed, b.timed_out - s->before.timed_out,
           (long long)b.longest_stall_ms, missing);
    fflush(stdout);
    return ok;
}

/* ---- manifests -------------------------------------------------------------------------- */

/* The manifest with (from -> to) edits applied (NULL-terminated pairs), each edit required to
 * match exactly once; written to WORK/name. 0 or -1. */
static int write_variant(const char *name, char *path, size_t size, ...)
{
    char *text = strdup(g.manifest);
    va_list ap;
    int ok = text != NULL;
    va_start(ap, size);
    for (const char *from = va_arg(ap, const char *); from && ok; from = va_arg(ap, const char *)) {
        const char *to = va_arg(ap, const char *);
        int count = 0;
        char *next = mgorun_replace(text, from, to, &count);
        free(text);
        text = next;
        if (!text || count != 1) {
            printf("FAIL manifest %s: \"%s\" found %d times in up3.yaml (want 1)\n", name, from,
                   count);
            failed++;
            ok = 0;
        }
    }
    va_end(ap);
    snprintf(path, size, "%s/%s", g.work, name);
    if (ok && mgorun_write_file(path, text) != 0) {
        printf("FAIL cannot write %s\n", path);
        failed++;
        ok = 0;
    }
    free(text);
    return ok ? 0 : -1;
}

/* ---- steps ------------------------------------------------------------------------------ */

#define MARKER "mgo_test_marker"

/* DATA_DIR/mgo_test_marker = the instance's name, in every instance of st (a file PostgreSQL
 * ignores): which volume an instance runs on afterwards. */
static int write_markers(const char *step, const struct mgorun_status *st)
{
    int ok = 1;
    for (int i = 0; i < st->n; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/" MARKER, st->in[i].data_dir);
        if (mgorun_write_file(path, st->in[i].name) != 0) {
            ok = 0;
            note("cannot write %s: %s", path, strerror(errno));
        }
    }
    return check(ok, "%s: a marker file written into each of the %d data directories", step, st->n);
}

/* Each instance of st runs on its own volume: its data directory holds the marker with its
 * own name (written by write_markers). */
static int check_markers(const char *step, const struct mgorun_status *st)
{
    int ok = 1;
    for (int i = 0; i < st->n; i++) {
        char path[600];
        snprintf(path, sizeof(path), "%s/" MARKER, st->in[i].data_dir);
        char *text = mgorun_read_file(path, NULL);
        if (!text || strcmp(text, st->in[i].name) != 0) {
            ok = 0;
            note("%s: %s holds %s", st->in[i].name, path, text ? text : "(nothing: no file)");
        }
        free(text);
    }
    return check(ok, "%s: each instance came back on its own volume (its own marker in %s)", step,
                 MARKER);
}

/* The names of the entries of STATE/<cluster>/instances; how many (at most max). */
static int instance_dirs(char names[][128], int max)
{
    char path[200];
    snprintf(path, sizeof(path), "%s/instances", g.cdir);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            if (n < max)
                snprintf(names[n], 128, "%.127s", de->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* After a scale-down from `before` to want_n instances: the volumes of the removed instances
 * (indexes want_n and up, docs/spec/lifecycle.md; whenScaled defaults to Delete) are gone,
 * STATE/<cluster>/instances holds the want_n others only. */
static int check_volumes_removed(const char *step, const struct mgorun_status *before, int want_n)
{
    int ok = 1, removed = 0;
    for (int i = 0; i < before->n; i++) {
        char dir[400];
        snprintf(dir, sizeof(dir), "%s/instances/%s", g.cdir, before->in[i].name);
        int exists = access(dir, F_OK) == 0;
        if (before->in[i].index >= want_n) {
            removed++;
            if (exists) {
                ok = 0;
                note("%s (index %lld) still has its volume %s", before->in[i].name,
                     before->in[i].index, dir);
            }
        } else if (!exists) {
            ok = 0;
            note("%s (index %lld) lost its volume %s", before->in[i].name, before->in[i].index,
                 dir);
        }
    }
    char names[16][128];
    int n = instance_dirs(names, 16);
    for (int i = 0; i < n && i < 16; i++)
        note("STATE/%s/instances/%s", CLUSTER, names[i]);
    ok &= n == want_n && removed == before->n - want_n;
    return check(ok,
                 "%s: the volumes of the %d removed instances are gone, STATE/%s/instances holds "
                 "%d (want %d)",
                 step, removed, CLUSTER, n, want_n);
}

/* The lines of a PostgreSQL log from byte `from` on that say it accepts read-write connections
 * ("database system is ready to accept connections"; a standby says "... read-only
 * connections"), and whether any says it accepts read-only ones. -1 when unreadable. */
static int writable_lines_since(const char *log, long long from, int *read_only)
{
    size_t len = 0;
    char *text = mgorun_read_file(log, &len);
    *read_only = 0;
    if (!text)
        return -1;
    if ((long long)len < from)
        from = 0; /* the file was started over */
    int n = 0;
    for (const char *p = text + from; (p = strstr(p, "ready to accept ")); p++) {
        if (strncmp(p, "ready to accept connections", 27) == 0)
            n++;
        else if (strncmp(p, "ready to accept read-only connections", 37) == 0)
            *read_only = 1;
    }
    free(text);
    return n;
}

struct bad_case {
    const char *what;
    const char *from, *to, *from2, *to2;
    const char *path;   /* "path: " must be printed (errors.md: "FILE: path: reason") */
    const char *reason; /* and this part of the reason */
};

/* Invalid manifests into a fresh state directory: exit 1, the field path printed, no
 * STATE/<cluster> and no process. */
static void bad_up(void)
{
    static const struct bad_case cases[] = {
        {"zoneId and region", "{name: z1, zoneId: z1}", "{name: z1, zoneId: z1, region: r1}", NULL,
         NULL, "spec.cells[0]", "cannot specify both 'zoneId' and 'region'"},
        {"replicasPerCell a string", "replicasPerCell: 3", "replicasPerCell: \"three\"", NULL, NULL,
         "spec.databases[0].tablegroups[0].shards[0].spec.pools[main].replicasPerCell",
         "must be of type integer"},
        {"shared_buffers not a size", "shared_buffers: \"32MB\"", "shared_buffers: \"lots\"", NULL,
         NULL, "spec.databases[0].tablegroups[0].shards[0].spec.postgresConfig[shared_buffers]",
         "shared_buffers"},
        {"cluster name over 25 characters", "{name: up3, namespace",
         "{name: up3-a-name-far-too-long-to-use, namespace", NULL, NULL, "metadata.name",
         "at most 25 characters"},
    };
    struct step s;
    step_begin(&s, "up of invalid manifests");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]) && g.n_bad < MAX_BAD_DIRS; c++) {
        const struct bad_case *k = &cases[c];
        char file[256], name[32];
        snprintf(name, sizeof(name), "bad-up-%zu.yaml", c);
        if (write_variant(name, file, sizeof(file), k->from, k->to, NULL) != 0)
            continue;
        char *dir = g.bad[g.n_bad];
        snprintf(dir, 64, "/tmp/mb.XXXXXX");
        if (!mkdtemp(dir)) {
            check(0, "mkdtemp: %s", strerror(errno));
            dir[0] = '\0';
            continue;
        }
        g.n_bad++;
        chmod(dir, 0755);
        struct mgorun r;
        char what[160];
        snprintf(what, sizeof(what), "up refuses %s", k->what);
        mgo(&r, 120000, 0, "up", "--state-dir", dir, "--port-base", g.port_base, "--timeout", "60",
            file, NULL);
        check_exit(&r, 1, what);
        char want[256];
        snprintf(want, sizeof(want), "%s: ", k->path);
        int printed = (strstr(r.out, want) || strstr(r.err, want)) &&
                      (strstr(r.out, k->reason) || strstr(r.err, k->reason));
        if (!check(printed, "up refuses %s: prints \"%s\" and \"%s\"", k->what, want, k->reason))
            mgorun_print(&r, stdout);
        mgorun_free(&r);
        /* nothing created: no cluster directory of either name, no process */
        char cdir[160], cdir2[160];
        snprintf(cdir, sizeof(cdir), "%s/%s", dir, CLUSTER);
        snprintf(cdir2, sizeof(cdir2), "%s/up3-a-name-far-too-long-to-use", dir);
        check(!is_dir(cdir) && !is_dir(cdir2), "up refuses %s: no %s/<cluster> created", k->what,
              dir);
        struct mgorun_proc ps[16];
        size_t n = mgorun_procs(dir, ps, 16);
        if (!check(n == 0, "up refuses %s: no process started (%zu found)", k->what, n))
            for (size_t i = 0; i < n && i < 16; i++)
                note("pid %d: %s", (int)ps[i].pid, ps[i].cmd);
    }
}

/* The pid of every instance by name. */
struct pidmap {
    int n;
    char name[MGORUN_MAX_INSTANCES][128];
    long long pid[MGORUN_MAX_INSTANCES];
};

static void pids_of(const struct mgorun_status *st, struct pidmap *m)
{
    m->n = st->n;
    for (int i = 0; i < st->n; i++) {
        snprintf(m->name[i], sizeof(m->name[i]), "%s", st->in[i].name);
        m->pid[i] = st->in[i].pid;
    }
}

/* SHOW shared_buffers = want on every instance of st. */
static int check_setting(const char *step, const struct mgorun_status *st, const char *want)
{
    int values = 1;
    for (int i = 0; i < st->n; i++) {
        char v[512];
        if (sql_port(st->in[i].port, "SHOW shared_buffers", v, sizeof(v)) != 0 ||
            strcmp(v, want) != 0) {
            values = 0;
            note("%s: shared_buffers = %s", st->in[i].name, v);
        }
    }
    return check(values, "%s: SHOW shared_buffers = %s on every instance", step, want);
}

/* Every instance of st has a postmaster other than the one in `before` (restarted), and
 * SHOW shared_buffers = want on it. */
static int check_restarted(const char *step, const struct mgorun_status *st,
                           const struct pidmap *before, const char *want)
{
    int restarted = 1;
    for (int i = 0; i < st->n; i++) {
        const struct mgorun_instance *in = &st->in[i];
        for (int k = 0; k < before->n; k++)
            if (strcmp(before->name[k], in->name) == 0 && before->pid[k] == in->pid) {
                restarted = 0;
                note("%s: still the postmaster %lld", in->name, in->pid);
            }
    }
    check(restarted, "%s: every instance's postmaster was restarted (pid changed)", step);
    return check_setting(step, st, want) && restarted;
}

static int same_pids(const struct mgorun_status *st, const struct pidmap *m)
{
    if (st->n != m->n)
        return 0;
    for (int i = 0; i < st->n; i++) {
        int found = 0;
        for (int k = 0; k < m->n; k++)
            found |= strcmp(m->name[k], st->in[i].name) == 0 && m->pid[k] == st->in[i].pid;
        if (!found)
            return 0;
    }
    return 1;
}

/* Invalid edits of the applied manifest: exit 1, the path printed, nothing changed (the same
 * postmasters, state.json as it was, shared_buffers as it was). */
static void bad_apply(const char *current_sb)
{
    static const struct bad_case cases[] = {
        {"replicasPerCell 0", "replicasPerCell: 3", "replicasPerCell: 0", NULL, NULL,
         "spec.databases[0].tablegroups[0].shards[0].spec.pools[main].replicasPerCell",
         "must be greater than or equal to 1"},
        {"shared_buffers not a size", "shared_buffers: \"32MB\"", "shared_buffers: \"lots\"", NULL,
         NULL, "spec.databases[0].tablegroups[0].shards[0].spec.postgresConfig[shared_buffers]",
         "shared_buffers"},
        {"a renamed cell", "{name: z1, zoneId: z1}", "{name: z9, zoneId: z1}", "cells: [z1]",
         "cells: [z9]", "spec.cells", "Append-Only"},
        {"a renamed pool", "main: {cells", "other: {cells", NULL, NULL,
         "spec.databases[0].tablegroups[0].shards[0].spec.pools", "Append-Only"},
    };
    struct step s;
    struct mgorun_status st;
    char err[1024], statefile[200];
    step_begin(&s, "apply of invalid edits");
    if (!check(mgorun_status(g.mgo, g.state, CLUSTER, &st, err, sizeof(err)) == 0,
               "status before the invalid edits")) {
        note("%s", err);
        return;
    }
    struct pidmap before;
    pids_of(&st, &before);
    snprintf(statefile, sizeof(statefile), "%s/state.json", g.cdir);
    char *state_before = mgorun_read_file(statefile, NULL);
    check(state_before != NULL, "STATE/%s/state.json exists", CLUSTER);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct bad_case *k = &cases[c];
        char file[256], name[32];
        snprintf(name, sizeof(name), "bad-apply-%zu.yaml", c);
        /* the applied manifest (its setting) with the invalid change */
        const char *sb_from = strstr(k->from, "shared_buffers") ? NULL : "shared_buffers: \"32MB\"";
        char sb_to[64];
        snprintf(sb_to, sizeof(sb_to), "shared_buffers: \"%s\"", current_sb);
        int rc;
        if (k->from2)
            rc = write_variant(name, file, sizeof(file), k->from, k->to, k->from2, k->to2, sb_from,
                               sb_to, NULL);
        else
            rc = write_variant(name, file, sizeof(file), k->from, k->to, sb_from, sb_to, NULL);
        if (rc != 0)
            continue;
        struct mgorun r;
        char what[160], want[256];
        snprintf(what, sizeof(what), "apply refuses %s", k->what);
        mgo(&r, 120000, 0, "apply", "--state-dir", g.state, "--timeout", "60", file, NULL);
        check_exit(&r, 1, what);
        snprintf(want, sizeof(want), "%s: ", k->path);
        int printed = (strstr(r.out, want) || strstr(r.err, want)) &&
                      (strstr(r.out, k->reason) || strstr(r.err, k->reason));
        if (!check(printed, "apply refuses %s: prints \"%s\" and \"%s\"", k->what, want, k->reason))
            mgorun_print(&r, stdout);
        mgorun_free(&r);
        char *state_after = mgorun_read_file(statefile, NULL);
        check(state_before && state_after && strcmp(state_before, state_after) == 0,
              "apply refuses %s: state.json unchanged", k->what);
        free(state_after);
        struct mgorun_status now;
        if (mgorun_status(g.mgo, g.state, CLUSTER, &now, err, sizeof(err)) != 0) {
            check(0, "apply refuses %s: status answers: %s", k->what, err);
            continue;
        }
        check(same_pids(&now, &before), "apply refuses %s: the same instances and postmasters",
              k->what);
        snprintf(what, sizeof(what), "apply refuses %s: nothing changed", k->what);
        check_setting(what, &now, current_sb);
    }
    free(state_before);
    if (mgorun_status(g.mgo, g.state, CLUSTER, &st, err, sizeof(err)) == 0)
        step_end(&s, &st);
}

/*
 * A drain of the primary killed with SIGKILL the moment state.json records the switchover's
 * `promoting:<new primary>` (drain.multigres.com/switchover, docs/spec/lifecycle.md): the old
 * primary is fenced then. The rerun completes it: one primary, no acknowledged commit lost, and
 * the old primary never came back writable (its log since the drain began has no "ready to
 * accept connections", and it is a standby now). When the drain ends before the trigger, it is
 * tried once more on the new primary; then the test fails.
 */
static int drain_killed_at_promoting(struct mgorun_status *st)
{
    struct step s;
    struct mgorun r;
    char old[128] = "", log[400] = "", how[64];
    long long from = 0;
    int landed = 0;
    step_begin(&s, "drain killed at promoting, rerun");
    if (!check(!state_has("promoting:"), "state.json records no \"promoting:\" before the drain"))
        return 0;
    for (int attempt = 0; attempt < 2 && !landed; attempt++) {
        const struct mgorun_instance *p = primary_of(st);
        if (!check(p != NULL, "status names a primary"))
            return 0;
        snprintf(old, sizeof(old), "%s", p->name);
        snprintf(log, sizeof(log), "%s/logs/%s.log", g.cdir, old);
        from = file_size(log);
        struct state_trigger t = {"promoting:", 0};
        mgo_until(&r, CMD_TIMEOUT_MS, &t, "drain", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
                  old, NULL);
        landed = t.fired && r.killed;
        if (landed) {
            note("drain of %s killed with SIGKILL after %lld ms, state.json showing promoting:",
                 old, (long long)r.ms);
        } else {
            note("drain of %s ended (%s) before state.json showed promoting:", old,
                 mgorun_how(&r, how, sizeof(how)));
            mgorun_print(&r, stdout);
        }
        mgorun_free(&r);
        if (!landed && attempt == 0 && !check_cluster("drain that ended before the trigger", 3, st))
            return 0;
    }
    if (!check(landed, "the drain was killed once state.json showed promoting: (crash injected)"))
        return 0;
    print_status("after the kill");
    mgo(&r, CMD_TIMEOUT_MS, 0, "drain", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, old,
        NULL);
    int ok = check_exit(&r, 0, "drain rerun after the kill at promoting:");
    mgorun_free(&r);
    if (!ok)
        return 0;
    int cl = check_cluster("drain after a kill at promoting", 3, st);
    const struct mgorun_instance *np = primary_of(st), *o = mgorun_find(st, old);
    check(np && strcmp(np->name, old) != 0,
          "drain after a kill at promoting: another instance is primary (%s, was %s)",
          np ? np->name : "none", old);
    char v[512] = "";
    if (o)
        sql_port(o->port, "SELECT pg_is_in_recovery()", v, sizeof(v));
    check(o && strcmp(o->role, "standby") == 0 && strcmp(v, "t") == 0,
          "drain after a kill at promoting: the old primary %s is a standby "
          "(pg_is_in_recovery() = %s)",
          old, v);
    int read_only = 0;
    int writable = writable_lines_since(log, from, &read_only);
    check(writable == 0,
          "the fenced primary never came back writable: %d \"ready to accept connections\" in "
          "STATE/%s/logs/%s.log since the drain began (read-only start seen: %s)",
          writable, CLUSTER, old, read_only ? "yes" : "no");
    check(!state_has("promoting:"), "drain after a kill at promoting: no switchover left in "
                                    "state.json");
    step_end(&s, st);
    return cl;
}

/*
 * `mgo scale CLUSTER POOL 4` killed with SIGKILL the moment state.json holds a record in phase
 * "creating"; the rerun converges (4 instances, nothing left over: no orphan process, no record
 * still "creating"); then back to 3, its volume removed. If the scale ends before the trigger,
 * it is scaled back and tried once more; then the test fails.
 */
static int scale_killed_at_creating(struct mgorun_status *st)
{
    static const char creating[] = "\"phase\": \"creating\"";
    struct step s;
    struct mgorun r;
    char how[64];
    int landed = 0;
    step_begin(&s, "scale 3 -> 4 killed at creating, rerun");
    if (!check(!state_has(creating), "state.json holds no record \"creating\" before the scale"))
        return 0;
    for (int attempt = 0; attempt < 2 && !landed; attempt++) {
        struct state_trigger t = {creating, 0};
        mgo_until(&r, CMD_TIMEOUT_MS, &t, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
                  CLUSTER, POOL, "4", NULL);
        landed = t.fired && r.killed;
        if (landed) {
            note("scale killed with SIGKILL after %lld ms, state.json holding a record creating",
                 (long long)r.ms);
        } else {
            note("scale ended (%s) before state.json held a record creating",
                 mgorun_how(&r, how, sizeof(how)));
            mgorun_print(&r, stdout);
        }
        mgorun_free(&r);
        if (!landed && attempt == 0) {
            mgo(&r, CMD_TIMEOUT_MS, 0, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
                CLUSTER, POOL, "3", NULL);
            int ok = check_exit(&r, 0, "scale back to 3 before trying again");
            mgorun_free(&r);
            if (!ok)
                return 0;
        }
    }
    if (!check(landed, "the scale was killed once state.json held a record creating (crash "
                       "injected)"))
        return 0;
    print_status("after the kill");
    mgo(&r, CMD_TIMEOUT_MS, 0, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, CLUSTER,
        POOL, "4", NULL);
    int ok = check_exit(&r, 0, "scale 4 rerun after the kill at creating");
    mgorun_free(&r);
    if (!ok)
        return 0;
    int cl = check_cluster("scale 4 after a kill at creating", 4, st);
    check(!state_has(creating), "scale 4 after a kill at creating: no record left \"creating\"");
    step_end(&s, st);
    if (!cl)
        return 0;

    static struct mgorun_status at4;
    at4 = *st;
    step_begin(&s, "scale 4 -> 3");
    mgo(&r, CMD_TIMEOUT_MS, 0, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, CLUSTER,
        POOL, "3", NULL);
    ok = check_exit(&r, 0, "scale 4 -> 3");
    mgorun_free(&r);
    if (!ok)
        return 0;
    cl = check_cluster("scale 4 -> 3", 3, st);
    check_volumes_removed("scale 4 -> 3", &at4, 3);
    step_end(&s, st);
    return cl;
}

/*
 * The managed etcd killed with SIGKILL: observe reports it (exit 6, "VIOLATION process"), and
 * `mgo apply FILE` starts it again (a new pid), observe clean.
 */
static int etcd_killed(struct mgorun_status *st, const char *file)
{
    struct step s;
    struct mgorun r;
    step_begin(&s, "etcd killed, apply");
    if (!check(st->n_etcd >= 1 && st->etcd[0].pid > 0, "status lists an etcd with a pid"))
        return 0;
    long long pid = st->etcd[0].pid;
    /* only a process of ours: an etcd running under the state directory */
    static struct mgorun_proc ps[256];
    size_t n = mgorun_procs(g.state, ps, 256);
    int ours = 0;
    for (size_t i = 0; i < n && i < 256; i++)
        ours |= ps[i].pid == pid && strcmp(ps[i].exe, "etcd") == 0;
    if (!check(ours, "etcd pid %lld of status is an etcd under the state directory", pid))
        return 0;
    kill((pid_t)pid, SIGKILL);
    int64_t deadline = mgorun_now_ms() + 10000;
    int gone = 0;
    while (!gone && mgorun_now_ms() < deadline) {
        char path[64], line[512] = "";
        snprintf(path, sizeof(path), "/proc/%lld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(line, sizeof(line), f))
            gone = 1;
        else {
            const char *rp = strrchr(line, ')');
            gone = rp && (rp[2] == 'Z' || rp[2] == 'X');
        }
        if (f)
            fclose(f);
        if (!gone)
            mgorun_sleep_ms(20);
    }
    check(gone, "etcd pid %lld killed with SIGKILL", pid);
    mgo(&r, 120000, 0, "observe", "--state-dir", g.state, CLUSTER, NULL);
    check_exit(&r, 6, "observe with etcd killed");
    int said = 0;
    for (const char *p = r.out; (p = strstr(p, "VIOLATION process")); p++)
        said = 1;
    if (!check(said, "observe with etcd killed: prints a line with \"VIOLATION process\""))
        mgorun_print(&r, stdout);
    mgorun_free(&r);
    mgo(&r, CMD_TIMEOUT_MS, 0, "apply", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, file,
        NULL);
    int ok = check_exit(&r, 0, "apply after etcd was killed");
    mgorun_free(&r);
    if (!ok)
        return 0;
    int cl = check_cluster("apply after etcd was killed", 3, st);
    check(st->n_etcd >= 1 && st->etcd[0].running && st->etcd[0].pid > 0 && st->etcd[0].pid != pid,
          "etcd runs again with a new pid (%lld, was %lld)", st->n_etcd ? st->etcd[0].pid : 0, pid);
    step_end(&s, st);
    return cl;
}

int main(void)
{
    const char *env = getenv("MGO_CLI");
    g.mgo = env && env[0] ? env : MGO_BIN;
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* signals are waited for by the watchdog thread only (the writer inherits the mask) */
    sigemptyset(&watched);
    sigaddset(&watched, SIGINT);
    sigaddset(&watched, SIGTERM);
    sigaddset(&watched, SIGHUP);
    sigaddset(&watched, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &watched, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0) {
        fprintf(stderr, "cli_up: cannot start the watchdog\n");
        return 1;
    }
    pthread_detach(wd);
    atexit(cleanup);

    g.manifest = mgorun_read_file(UP3_MANIFEST, NULL);
    snprintf(g.state, sizeof(g.state), "/tmp/mu.XXXXXX");
    snprintf(g.work, sizeof(g.work), "/tmp/mw.XXXXXX");
    if (!g.manifest || !mkdtemp(g.state) || !mkdtemp(g.work)) {
        fprintf(stderr, "cli_up: cannot read %s or make temporary directories\n", UP3_MANIFEST);
        if (!is_dir(g.state))
            g.state[0] = '\0';
        if (!is_dir(g.work))
            g.work[0] = '\0';
        return 1;
    }
    /* like `mkdir DIR` with the usual umask (mkdtemp makes 0700): the servers run as the user
     * postgres when the test runs as root and must reach their directories */
    chmod(g.state, 0755);
    snprintf(g.cdir, sizeof(g.cdir), "%s/%s", g.state, CLUSTER);
    snprintf(g.passfile, sizeof(g.passfile), "%s/pgpass", g.cdir);
    int base = mgorun_free_port_base(PORTS_RESERVED);
    if (!base) {
        fprintf(stderr, "cli_up: no %d free consecutive ports\n", PORTS_RESERVED);
        return 1;
    }
    snprintf(g.port_base, sizeof(g.port_base), "%d", base);
    printf("cli_up: mgo %s, state %s, ports from %d\n", g.mgo, g.state, base);

    struct mgorun r;
    struct mgorun_status st;
    struct step s;
    char file[256];

    bad_up();

    /* ---- up ---- */
    step_begin(&s, "up (1 cell, pool of 3)");
    if (write_variant("up3.yaml", file, sizeof(file), NULL) != 0)
        goto end;
    mgo(&r, CMD_TIMEOUT_MS + 60000, 0, "up", "--state-dir", g.state, "--port-base", g.port_base,
        "--timeout", CMD_TIMEOUT, file, NULL);
    int up_ok = check_exit(&r, 0, "mgo up");
    if (up_ok) {
        /* stdout: the status table; stderr: progress lines, each "mgo: " */
        int header = strstr(r.out, "INSTANCE") && strstr(r.out, "ROLE") && strstr(r.out, "PORT");
        check(header, "up prints the status table (INSTANCE ... ROLE ... PORT) on stdout");
        int prefixed = 1;
        for (const char *p = r.err; *p;) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (len && strncmp(p, "mgo: ", 5) != 0) {
                prefixed = 0;
                note("stderr line without \"mgo: \": %.*s", (int)len, p);
            }
            p += len + (nl ? 1 : 0);
        }
        check(prefixed, "every progress line of up on stderr begins with \"mgo: \"");
        if (!header)
            mgorun_print(&r, stdout);
    }
    mgorun_free(&r);
    if (!up_ok)
        goto end;
    if (!check_cluster("up", 3, &st))
        goto end;
    {
        struct stat sb;
        check(stat(g.passfile, &sb) == 0 && (sb.st_mode & 077) == 0,
              "STATE/%s/pgpass exists, not readable by group or others (libpq ignores it then)",
              CLUSTER);
        /* the superuser's password is the Secret's value (and only that one is accepted) */
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        char ci[256], v[512];
        snprintf(ci, sizeof(ci),
                 "host=127.0.0.1 port=%d user=postgres dbname=postgres password=%s "
                 "passfile=/dev/null connect_timeout=5",
                 p->port, PASSWORD);
        int good = sql_ci(ci, "SELECT 1", v, sizeof(v)) == 0;
        check(good, "the password of the manifest's Secret logs in as postgres (%s)", v);
        snprintf(ci, sizeof(ci),
                 "host=127.0.0.1 port=%d user=postgres dbname=postgres password=wrong-%s "
                 "passfile=/dev/null connect_timeout=5",
                 p->port, PASSWORD);
        int bad = sql_ci(ci, "SELECT 1", v, sizeof(v)) == 0;
        check(!bad, "a wrong password is refused (%s)", bad ? "accepted" : v);
    }
    {
        char ci[512];
        conninfo_multi(&st, ci, sizeof(ci));
        g.writer = writer_start(ci, COMMIT_TIMEOUT);
        if (!check(g.writer != NULL, "the writer starts through %s", ci))
            goto end;
        step_end(&s, &st);
    }

    /* ---- logs ---- */
    {
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        char logfile[300];
        snprintf(logfile, sizeof(logfile), "%s/logs/%s.log", g.cdir, p->name);
        struct stat sb;
        check(stat(logfile, &sb) == 0 && S_ISREG(sb.st_mode), "STATE/%s/logs/%s.log exists",
              CLUSTER, p->name);
        mgo(&r, 60000, 0, "logs", "--state-dir", g.state, "-n", "5", p->name, NULL);
        check_exit(&r, 0, "mgo logs -n 5 PRIMARY");
        /* the first 5 lines printed are 5 consecutive lines of the file, near its end (the
         * log may have grown since) */
        char *log = mgorun_read_file(logfile, NULL);
        int block = 0;
        if (log) {
            const char *nl = strchr(r.out, '\n');
            const char *end5 = r.out;
            int k = 0;
            for (; k < 5 && (end5 = strchr(end5, '\n')); k++)
                end5++;
            if (nl && k == 5) {
                size_t len = (size_t)(end5 - r.out);
                char *want = strndup(r.out, len);
                const char *at = want ? strstr(log, want) : NULL;
                int tail_lines = 0;
                for (const char *q = at ? at + len : ""; *q; q++)
                    tail_lines += *q == '\n';
                block = at && tail_lines <= 20 && (at == log || at[-1] == '\n');
                free(want);
            }
        }
        if (!check(block, "logs -n 5 prints the last 5 lines of STATE/%s/logs/%s.log", CLUSTER,
                   p->name))
            mgorun_print(&r, stdout);
        int extra = 0;
        for (const char *q = r.out; *q; q++)
            extra += *q == '\n';
        if (extra != 5)
            note("logs -n 5 printed %d lines on stdout", extra);
        free(log);
        mgorun_free(&r);
        mgo(&r, 60000, 0, "logs", "--state-dir", g.state, "no-such-instance", NULL);
        check_exit(&r, 5, "mgo logs of an unknown instance");
        mgorun_free(&r);
    }

    /* ---- scale 3 -> 5 -> 2 ---- */
    static const struct {
        const char *name, *n;
        int want;
    } scales[] = {{"scale 3 -> 5", "5", 5}, {"scale 5 -> 2", "2", 2}};
    static struct mgorun_status before_down;
    for (size_t k = 0; k < 2; k++) {
        before_down = st;
        step_begin(&s, scales[k].name);
        mgo(&r, CMD_TIMEOUT_MS, 0, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
            CLUSTER, POOL, scales[k].n, NULL);
        int ok = check_exit(&r, 0, scales[k].name);
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster(scales[k].name, scales[k].want, &st);
        if (scales[k].want < before_down.n)
            check_volumes_removed(scales[k].name, &before_down, scales[k].want);
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    /* ---- a drain of the primary that cannot proceed (docs/spec/lifecycle.md: the candidate
     * must leave enough standbys behind it; AT_LEAST_2 needs one, two instances leave none).
     * Refused up front (exit 2, docs/local.md: an input error; "Nothing was changed", state.json
     * byte-identical): the primary stays, the same postmaster, writable, observe clean, and no
     * acknowledged commit is lost ---- */
    char blocked[128] = "";
    long long blocked_pid = 0;
    int refused = 0;
    {
        step_begin(&s, "drain of the primary of 2 (blocked)");
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        snprintf(blocked, sizeof(blocked), "%s", p->name);
        blocked_pid = p->pid;
        char statefile[200];
        state_file(statefile, sizeof(statefile));
        char *state_before = mgorun_read_file(statefile, NULL);
        mgo(&r, 120000, 0, "drain", "--state-dir", g.state, "--timeout", "10", blocked, NULL);
        refused = !r.timed_out && !r.signo && r.code == 2;
        char how[64];
        check(refused,
              "drain of the primary of a pool of 2 under AT_LEAST_2: %s (want exit 2, refused)",
              mgorun_how(&r, how, sizeof(how)));
        check(strstr(r.out, "Nothing was changed") || strstr(r.err, "Nothing was changed"),
              "refused drain: says \"Nothing was changed\"");
        mgorun_print(&r, stdout);
        mgorun_free(&r);
        char *state_after = mgorun_read_file(statefile, NULL);
        check(state_before && state_after && strcmp(state_before, state_after) == 0,
              "refused drain: state.json byte-identical before and after");
        free(state_before);
        free(state_after);
        check_observe("refused drain");
        char err[1024];
        if (!check(mgorun_status(g.mgo, g.state, CLUSTER, &st, err, sizeof(err)) == 0,
                   "status after the blocked drain"))
            goto end;
        const struct mgorun_instance *q = mgorun_find(&st, blocked);
        char v[512] = "";
        if (q)
            sql_port(q->port, "SELECT pg_is_in_recovery()", v, sizeof(v));
        check(q && strcmp(q->role, "primary") == 0 && q->pid == blocked_pid && strcmp(v, "f") == 0,
              "blocked drain: %s is still the primary, same postmaster, writable "
              "(pg_is_in_recovery() = %s)",
              blocked, v);
        if (refused && q)
            check(q->drain[0] == '\0' && strcmp(st.phase, "Healthy") == 0,
                  "refused drain: nothing recorded (drain \"%s\", phase %s)", q->drain, st.phase);
        step_end(&s, &st);
    }

    /* ---- scale 2 -> 3. A drain left pending can now complete (from `draining` on, a drain
     * always completes, and the instance, still wanted, comes back as a standby); after a
     * refused one the primary is untouched ---- */
    {
        step_begin(&s, "scale 2 -> 3");
        mgo(&r, CMD_TIMEOUT_MS, 0, "scale", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
            CLUSTER, POOL, "3", NULL);
        int ok = check_exit(&r, 0, "scale 2 -> 3");
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster("scale 2 -> 3", 3, &st);
        const struct mgorun_instance *np = primary_of(&st), *o = mgorun_find(&st, blocked);
        if (refused)
            check(np && o && np == o && o->pid == blocked_pid,
                  "scale 2 -> 3: %s is still the primary, same postmaster", blocked);
        else
            check(np && strcmp(np->name, blocked) != 0 && o && strcmp(o->role, "standby") == 0 &&
                      o->pid != blocked_pid,
                  "scale 2 -> 3: the pending drain completed: %s is a standby with a new "
                  "postmaster, %s is primary",
                  blocked, np ? np->name : "none");
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    /* ---- drain the primary ---- */
    {
        step_begin(&s, "drain of the primary");
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        char old[128];
        long long old_pid = p->pid;
        snprintf(old, sizeof(old), "%s", p->name);
        write_markers("drain of the primary", &st);
        mgo(&r, CMD_TIMEOUT_MS, 0, "drain", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, old,
            NULL);
        int ok = check_exit(&r, 0, "drain PRIMARY");
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster("drain of the primary", 3, &st);
        check_markers("drain of the primary", &st);
        const struct mgorun_instance *np = primary_of(&st), *o = mgorun_find(&st, old);
        check(np && strcmp(np->name, old) != 0, "drain: another instance is primary (%s, was %s)",
              np ? np->name : "none", old);
        check(o && strcmp(o->role, "standby") == 0 && strcmp(o->state, "running") == 0 &&
                  o->pid != old_pid,
              "drain: %s is back as a running standby with a new postmaster", old);
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    /* ---- a restart-class change ---- */
    {
        step_begin(&s, "apply shared_buffers 48MB");
        struct pidmap before;
        pids_of(&st, &before);
        write_markers("apply 48MB", &st);
        if (write_variant("apply-48.yaml", file, sizeof(file), "shared_buffers: \"32MB\"",
                          "shared_buffers: \"48MB\"", NULL) != 0)
            goto end;
        mgo(&r, CMD_TIMEOUT_MS, 0, "apply", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, file,
            NULL);
        int ok = check_exit(&r, 0, "apply shared_buffers 32MB -> 48MB");
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster("apply 48MB", 3, &st);
        check_restarted("apply 48MB", &st, &before, "48MB");
        check_markers("apply 48MB", &st);
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    bad_apply("48MB");

    /* ---- apply killed while rolling, then rerun ---- */
    {
        step_begin(&s, "apply 64MB killed, rerun");
        if (mgorun_status(g.mgo, g.state, CLUSTER, &st, file, sizeof(file)) != 0)
            goto end;
        struct pidmap before;
        pids_of(&st, &before);
        if (write_variant("apply-64.yaml", file, sizeof(file), "shared_buffers: \"32MB\"",
                          "shared_buffers: \"64MB\"", NULL) != 0)
            goto end;
        mgo(&r, CMD_TIMEOUT_MS, 1500, "apply", "--state-dir", g.state, "--timeout", CMD_TIMEOUT,
            file, NULL);
        if (r.killed)
            note("apply killed with SIGKILL after %lld ms", (long long)r.ms);
        else {
            note("apply ended by itself before the kill: the crash was not injected");
            mgorun_print(&r, stdout);
        }
        mgorun_free(&r);
        print_status("after the kill");
        mgo(&r, CMD_TIMEOUT_MS, 0, "apply", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, file,
            NULL);
        int ok = check_exit(&r, 0, "apply 64MB rerun after the kill");
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster("apply 64MB after a kill", 3, &st);
        check_restarted("apply 64MB after a kill", &st, &before, "64MB");
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    /* ---- drain of the primary killed, then rerun ---- */
    {
        step_begin(&s, "drain of the primary killed, rerun");
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        char old[128];
        snprintf(old, sizeof(old), "%s", p->name);
        mgo(&r, CMD_TIMEOUT_MS, 750, "drain", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, old,
            NULL);
        if (r.killed)
            note("drain killed with SIGKILL after %lld ms", (long long)r.ms);
        else {
            note("drain ended by itself before the kill: the crash was not injected");
            mgorun_print(&r, stdout);
        }
        mgorun_free(&r);
        print_status("after the kill");
        mgo(&r, CMD_TIMEOUT_MS, 0, "drain", "--state-dir", g.state, "--timeout", CMD_TIMEOUT, old,
            NULL);
        int ok = check_exit(&r, 0, "drain rerun after the kill");
        mgorun_free(&r);
        if (!ok)
            goto end;
        int cl = check_cluster("drain after a kill", 3, &st);
        const struct mgorun_instance *np = primary_of(&st), *o = mgorun_find(&st, old);
        check(np && strcmp(np->name, old) != 0,
              "drain after a kill: another instance is primary (%s, was %s)",
              np ? np->name : "none", old);
        check(o && strcmp(o->role, "standby") == 0 && strcmp(o->state, "running") == 0,
              "drain after a kill: %s is a running standby", old);
        check_setting("drain after a kill", &st, "64MB");
        step_end(&s, &st);
        if (!cl)
            goto end;
    }

    if (!drain_killed_at_promoting(&st))
        goto end;
    if (!scale_killed_at_creating(&st))
        goto end;
    if (write_variant("apply-64.yaml", file, sizeof(file), "shared_buffers: \"32MB\"",
                      "shared_buffers: \"64MB\"", NULL) != 0 ||
        !etcd_killed(&st, file))
        goto end;

    /* ---- down ---- */
    {
        step_begin(&s, "down");
        if (mgorun_status(g.mgo, g.state, CLUSTER, &st, file, sizeof(file)) != 0)
            goto end;
        struct writer_stats ws;
        writer_stop(g.writer);
        writer_get_stats(g.writer, &ws);
        const struct mgorun_instance *p = primary_of(&st);
        if (!check(p != NULL, "status names a primary"))
            goto end;
        size_t missing = 0;
        char pci[512], report[1024];
        conninfo_port(p->port, pci, sizeof(pci));
        check(writer_check(pci, g.writer, &missing, report, sizeof(report)) == 0,
              "at the end, every acknowledged commit is on the primary: %s", report);
        printf("     writer total: %zu commits acknowledged, %zu failed, %zu timed out, %zu "
               "lost, over %lld ms\n",
               ws.acked, ws.failed, ws.timed_out, missing, (long long)ws.running_ms);
        long long pids[MGORUN_MAX_INSTANCES + MGORUN_MAX_ETCD];
        int np = 0;
        for (int i = 0; i < st.n; i++)
            pids[np++] = st.in[i].pid;
        for (int i = 0; i < st.n_etcd; i++)
            pids[np++] = st.etcd[i].pid;
        mgo(&r, 180000, 0, "down", "--state-dir", g.state, CLUSTER, NULL);
        check_exit(&r, 0, "mgo down");
        mgorun_free(&r);
        int alive = 0;
        for (int i = 0; i < np; i++) {
            char path[64], cwd[512] = "";
            snprintf(path, sizeof(path), "/proc/%lld/cwd", pids[i]);
            ssize_t n = readlink(path, cwd, sizeof(cwd) - 1);
            cwd[n > 0 ? n : 0] = '\0';
            if (pids[i] > 0 && kill((pid_t)pids[i], 0) == 0 && n > 0 &&
                strncmp(cwd, g.state, strlen(g.state)) == 0) {
                alive++;
                note("pid %lld still runs in %s", pids[i], cwd);
            }
        }
        struct mgorun_proc ps[64];
        size_t left = mgorun_procs(g.state, ps, 64);
        for (size_t i = 0; i < left && i < 64; i++)
            note("left: pid %d %s: %s", (int)ps[i].pid, ps[i].exe, ps[i].cmd);
        check(alive == 0 && left == 0,
              "down: none of the %d processes status listed runs, nothing runs under the state "
              "directory (%zu left)",
              np, left);
        char statefile[200];
        snprintf(statefile, sizeof(statefile), "%s/state.json", g.cdir);
        check(access(statefile, F_OK) == 0, "down (no --purge) keeps STATE/%s/state.json", CLUSTER);
        mgo(&r, 180000, 0, "down", "--state-dir", g.state, "--purge", CLUSTER, NULL);
        check_exit(&r, 0, "mgo down --purge");
        mgorun_free(&r);
        check(!is_dir(g.cdir) && access(g.cdir, F_OK) != 0, "down --purge removed STATE/%s",
              CLUSTER);
        mgo(&r, 60000, 0, "status", "--state-dir", g.state, CLUSTER, NULL);
        check_exit(&r, 5, "status of the purged cluster: no such cluster");
        mgorun_free(&r);
    }

end:
    if (g.writer) {
        struct writer_stats ws;
        writer_stop(g.writer);
        writer_get_stats(g.writer, &ws);
        if (ws.last_error[0])
            printf("     writer's last error: %s\n", ws.last_error);
    }
    cleanup();
    if (g.writer)
        writer_free(g.writer);
    g.writer = NULL;
    free(g.manifest);
    printf("\ncli_up: %d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
