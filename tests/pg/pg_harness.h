/*
 * Test helper: a real PostgreSQL shard (one primary, up to 7 streaming standbys) on free
 * loopback ports, in a fresh temporary directory ($TMPDIR/mgo-pg-<pid>-XXXXXX, or /tmp when
 * the user postgres could not reach $TMPDIR or its path is too long for a Unix socket).
 *
 * Binaries: $MGO_PG_BINDIR when set, else /usr/lib/postgresql/15/bin, else the newest
 * /usr/lib/postgresql/<major>/bin. PostgreSQL refuses to run as root: when the test runs as
 * root, every PostgreSQL program runs as the user postgres (the harness forks, drops to that
 * user's uid and gid, then execs; see pg_harness.c for why not `runuser`), and the temporary
 * directory is given to postgres.
 *
 * Every postmaster is a child of the test process, started with the node-local settings on its
 * command line (port, cluster_name, unix_socket_directories, listen_addresses): base backups
 * copy the configuration files from the primary, and the command line beats them. A started
 * node is stopped and the directory removed by pg_shard_stop(), and also when the test process
 * exits (atexit) or is killed by SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT or a crash signal
 * (immediate shutdown, SIGQUIT). If the process dies by SIGKILL, each postmaster gets SIGQUIT
 * from the kernel (PR_SET_PDEATHSIG) and only the directory stays behind, until a later start
 * removes the directories of processes that no longer exist.
 *
 * PR_SET_PDEATHSIG fires when the THREAD that forked the postmaster ends, not the process:
 * start and restart nodes from a thread that outlives them (the test's main thread).
 *
 * Not thread-safe: one thread drives a shard; pg_sql(), pg_harness_connect() and
 * pg_harness_query() may be called from any thread.
 */
#ifndef MGO_TESTS_PG_HARNESS_H
#define MGO_TESTS_PG_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>

#define PG_SHARD_MAX_NODES 8

struct pg_node {
    int port;
    char name[64];     /* "n<i>": cluster_name, hence the walreceiver's application_name */
    char datadir[512]; /* <dir>/n<i>; the server log is <dir>/n<i>.log */
    int running;       /* the postmaster was started and has not been seen to exit */
    pid_t pid;         /* the postmaster (a child of this process), 0 when not running */
    /* pg_shard_start_spec: the whole command line ("-c" each), NUL-separated, and whether the
     * port is fixed (never retried with another) */
    char settings[2048];
    int nsettings, fixed_port;
};

struct pg_shard {
    char dir[256];     /* the temporary directory; "" when stopped */
    char sockdir[256]; /* unix_socket_directories of every node (= dir) */
    int n; /* nodes: n0 (the first primary) and n-1 standbys; pg_shard_open: slots in use */
    struct pg_node nodes[PG_SHARD_MAX_NODES];
};

/*
 * initdb n0 as the primary (trust authentication, fsync=off, wal_level=logical,
 * max_wal_senders=16, wal_log_hints=on, wal_keep_size=256MB, hot_standby=on), start it,
 * pg_basebackup n1..n<standbys> from it (in parallel) and start them streaming.
 * synchronous_standby_names = sync_names (e.g. "ANY 1 (n1, n2)"; NULL for none) is written to
 * n0's postgresql.conf before the base backups, so every node has it: a promoted standby keeps
 * it (facts P7). 0 <= standbys <= 7.
 *
 * Retries a node with another port when its postmaster exits during start (a port taken
 * between the probe and the bind). Blocks until every standby is streaming and has reported a
 * flush position (checked in n0's pg_stat_replication: before its first reply a standby cannot
 * acknowledge a synchronous commit and shows as async), at most about a minute. Returns 0, or -1
 * after printing why (and the tail of the failing log) to stderr and stopping whatever it started.
 *
 * `s` is filled in here; it must stay at the same address until pg_shard_stop() (the exit and
 * signal handlers keep a pointer to it). At most 8 shards run at once per process.
 */
int pg_shard_start(struct pg_shard *s, int standbys, const char *sync_names);

/*
 * A shard laid out by its host (the tests' process host runs one from mgo's process render):
 * node i is named specs[i].name, its data directory is specs[i].datadir relative to the shard's
 * directory (parents created for the user postgres), it listens on specs[i].port (fixed: no
 * retry on another port), and its command line is exactly specs[i].settings ("name=value"
 * each, NULL-terminated; a relative unix_socket_directories is resolved against the shard's
 * directory, and created). Node 0 is initdb'ed as the primary (with the same test settings in
 * postgresql.conf as pg_shard_start(), which the command line overrides); after it started,
 * each of primary_sql (NULL-terminated, may be NULL) runs on it alone (ALTER SYSTEM of reload
 * settings and synchronous_standby_names, say); then every other node is a base backup of it,
 * started as its standby; returns once they all stream, like pg_shard_start().
 */
struct pg_node_spec {
    const char *name;
    const char *datadir;
    int port;
    const char *const *settings;
};
int pg_shard_start_spec(struct pg_shard *s, int n, const struct pg_node_spec *specs,
                        const char *const *primary_sql);

/* Stop every running node (fast shutdown, all at once; immediate after 30 s, SIGKILL after 10
 * more), remove the directory. Idempotent; accepts a zeroed or stopped shard. */
void pg_shard_stop(struct pg_shard *s);

/*
 * A shard whose nodes come and go, as a host creates and deletes instances (the tests' process
 * host, tests/scale/phost.c). pg_shard_open() makes the temporary directory and installs the
 * cleanup, with no node; nodes are then laid out from pg_node_spec (as pg_shard_start_spec(),
 * fixed ports), each in a slot: the first slot a pg_node_forget() freed, else the next one
 * (at most PG_SHARD_MAX_NODES at once). A forgotten slot has an empty name; the other
 * functions refuse its index (-EINVAL), and s->n shrinks past trailing free slots. Node
 * indexes therefore stay put while a node exists; look one up by name with pg_node_find().
 * pg_shard_stop() stops and removes everything, as for the other shards.
 *
 * pg_shard_open: 0, or -1 after printing why (nothing is left behind).
 *
 * pg_node_create: a new node from spec, started. source < 0: initdb'ed as a primary (with the
 * test settings of pg_shard_start() in postgresql.conf, which the command line overrides);
 * otherwise a pg_basebackup (-R: standby.signal and primary_conninfo naming the source's
 * port) of the running node `source`, started as its standby. Returns once the postmaster
 * accepts connections (a standby: once consistent; streaming is the caller's to wait for), up
 * to a minute plus the time of initdb or the base backup (2 minutes at most). The node's
 * index; -EEXIST when a node has that name or the data directory exists already (nothing
 * touched), -ENOSPC, -EINVAL, or -1 after printing why (the data directory is then removed
 * and the slot free again).
 *
 * pg_node_attach: a node from spec on a data directory that exists already (a retained
 * volume, or one whose instance was replaced), NOT started: the caller rewinds, follows and
 * starts it (pg_node_rewind, pg_node_follow, pg_node_start). Its index; -ENOENT when the
 * directory holds no PG_VERSION, -EEXIST, -ENOSPC, -EINVAL, or -1.
 *
 * pg_node_forget: stop node i (fast; escalated as pg_node_stop() does) and free its slot. Its
 * data directory stays. 0, -EINVAL, or -1 when it had to be killed (it is gone all the same).
 *
 * pg_shard_mkdir / pg_shard_remove: create (for the user PostgreSQL runs as, parents too) or
 * remove (rm -rf) `path`, relative to the shard's directory, without "." or ".." components.
 * pg_shard_remove refuses (-EBUSY) a path that holds the data directory of a node still in a
 * slot. 0, -EINVAL, or -1 after printing why.
 *
 * pg_node_find: the index of the node named `name`, or -1.
 */
int pg_shard_open(struct pg_shard *s);
int pg_node_create(struct pg_shard *s, const struct pg_node_spec *spec, int source);
int pg_node_attach(struct pg_shard *s, const struct pg_node_spec *spec);
int pg_node_forget(struct pg_shard *s, int i);
int pg_shard_mkdir(struct pg_shard *s, const char *path);
int pg_shard_remove(struct pg_shard *s, const char *path);
int pg_node_find(const struct pg_shard *s, const char *name);

/*
 * Stop node i: mode "smart", "fast" (SIGINT) or "immediate" (SIGQUIT). Waits until the
 * postmaster has exited (this process reaps it) and its postmaster.pid is gone (facts P5),
 * up to 60 s, then escalates (immediate, then SIGKILL) and returns -1. 0 when stopped, also
 * when it was not running; -EINVAL for a bad index or mode.
 */
int pg_node_stop(struct pg_shard *s, int i, const char *mode);

/*
 * Start node i as it is configured now (same port and command line as before) and wait, up to
 * 60 s, until it accepts connections (PQping OK: for a standby, once it is consistent). 0 (also
 * when it was running), -EINVAL for a bad index or a stopped shard, or -1 after printing why and
 * the tail of its log (the postmaster, if still running, is then stopped).
 */
int pg_node_start(struct pg_shard *s, int i);

/*
 * Make the STOPPED node i a standby of node `primary`: create standby.signal and append
 * primary_conninfo (host=127.0.0.1 port=<primary's port> user=postgres) and
 * recovery_target_timeline='latest' to its postgresql.auto.conf. Start it with
 * pg_node_start(). 0, -EBUSY when node i is running, -EINVAL, or -1 (I/O error, printed).
 */
int pg_node_follow(struct pg_shard *s, int i, int primary);

/*
 * pg_rewind the STOPPED node i from the running node `source` (its history then follows the
 * source's; after an unclean stop pg_rewind first runs crash recovery itself). The data
 * directory's configuration files are the source's afterwards (facts P1): follow with
 * pg_node_follow(). 0, -EBUSY when node i runs, -EINVAL, or -1 after printing why.
 */
int pg_node_rewind(struct pg_shard *s, int i, int source);
/*
 * "host=127.0.0.1 port=N user=postgres dbname=postgres connect_timeout=5" for node i
 * (truncated to size; "" for a bad index).
 */
void pg_node_conninfo(const struct pg_shard *s, int i, char *buf, size_t size);

/*
 * The value of one line of `pg_controldata -D <datadir>` (C locale) for node i, e.g. field
 * "Database cluster state" gives "shut down" and "Latest checkpoint location" gives "0/4F3CDC0".
 * 0, or -1 after printing why (the program failed or no such field). Blocks up to 60 s.
 * Needs only s->dir and the node's name and datadir: another process may call it on a copy.
 */
int pg_node_controldata(const struct pg_shard *s, int i, const char *field, char *out,
                        size_t out_size);

/*
 * Run one SQL string on node i over a fresh connection, with a client-side timeout covering
 * connect and execution (async libpq and poll; on timeout the query is cancelled with
 * PQcancel, because statement_timeout does not end a commit waiting for a synchronous
 * standby: facts P4). The first column of the first row goes to out ("" when there is none or
 * it is NULL; out may be NULL). Returns 0, -ETIMEDOUT, or -1 after printing the error.
 */
int pg_sql(const struct pg_shard *s, int i, const char *sql, int timeout_ms, char *out,
           size_t out_size);

/*
 * Poll node i with `sql` (every 50 ms, each try with its own timeout) until the first column
 * of its first row equals `expect`, for up to timeout_ms. 0, or -ETIMEDOUT after printing the
 * last value or error seen.
 */
int pg_sql_wait(const struct pg_shard *s, int i, const char *sql, const char *expect,
                int timeout_ms);

/*
 * Asynchronous libpq with deadlines, shared with the writer (writer.c).
 *
 * pg_harness_connect: connect within timeout_ms. 0 with *ret_conn (the caller PQfinish()es
 * it), -ETIMEDOUT, or -1; on failure err says why and *ret_conn is not written.
 *
 * pg_harness_query: send `sql` on conn and wait up to timeout_ms for all its results. 0 when
 * every result was a success; *ret_result (when not NULL) then gets the first result that has
 * rows, else the last one (the caller PQclear()s it). On timeout the query is cancelled
 * (PQcancel) and -ETIMEDOUT returned; the connection is then in an unknown state: close it.
 * -1 on an error (err says why). A commit that timed out may have committed locally: it was
 * not acknowledged.
 */
int pg_harness_connect(const char *conninfo, int timeout_ms, PGconn **ret_conn, char *err,
                       size_t err_size);
int pg_harness_query(PGconn *conn, const char *sql, int timeout_ms, PGresult **ret_result,
                     char *err, size_t err_size);

#endif
