/*
 * The processes of a local cluster: etcd and PostgreSQL programs run by the `mgo` host
 * (docs/local.md). Every path is under the cluster's directory (env->dir). When mgo runs as
 * root, PostgreSQL's programs run as the user `postgres` (PostgreSQL refuses root); etcd runs as
 * the invoking user.
 *
 * The servers outlive the command that starts them: etcd is started in a session of its own,
 * the postmaster through `pg_ctl start`, which daemonizes it. Their pids are found again from
 * etcd's pid file and PostgreSQL's postmaster.pid, each checked against /proc before a signal is
 * sent, so a recycled pid is never signalled.
 */
#ifndef MGO_LOCAL_PROC_H
#define MGO_LOCAL_PROC_H

#include <stddef.h>
#include <sys/types.h>

struct proc_env {
    char dir[512];    /* the cluster's directory, absolute */
    char bindir[256]; /* PostgreSQL's programs */
    char superuser[64];
    char passfile[600]; /* <dir>/pgpass */
    int as_postgres;    /* run PostgreSQL's programs as `postgres` */
    uid_t pg_uid;
    gid_t pg_gid;
    int quiet;
};

/* Fill env for the cluster directory `dir` (absolute; created when missing, with its
 * parents). As root, every directory down to it must be enterable by the user postgres. 0, or
 * -1 with err. */
int proc_env_init(struct proc_env *env, const char *dir, char *err, size_t err_size);

/* Write the password file pgpass (and `password`, when `generated`) for the superuser. */
int proc_write_password(const struct proc_env *env, const char *password, int generated, char *err,
                        size_t err_size);

/* Make `rel` (a path under env->dir) and its missing parents, owned by PostgreSQL's user when
 * `for_pg`. */
int proc_mkdir(const struct proc_env *env, const char *rel, int for_pg, char *err, size_t err_size);

/* Every process whose arguments hold "-D <dir>" with dir under env->dir (the postmasters of
 * the cluster's directory, whether or not their directory still exists): cb(ctx, pid, dir)
 * for each. */
void proc_pg_postmasters(const struct proc_env *env,
                         void (*cb)(void *ctx, pid_t pid, const char *datadir), void *ctx);

/* SIGKILL every process with an argument exactly the path of `rel` (a tool's children that
 * outlived it: initdb's postgres --boot, pg_basebackup's WAL streamer, cp), until none is
 * left. How many were killed, or -1 when some would not go within 5 s. */
int proc_kill_users(const struct proc_env *env, const char *rel);

/* Remove `path`, a cluster directory renamed aside by a purge (its last component starts with
 * ".purge."), recursively; absent: done. */
int proc_remove_purged(const char *path, char *err, size_t err_size);

/* Remove `rel` under env->dir recursively (absent: done). */
int proc_remove(const struct proc_env *env, const char *rel, char *err, size_t err_size);

/* The absolute path of `rel`. */
void proc_path(const struct proc_env *env, const char *rel, char *buf, size_t size);

/* ---- etcd ---- */

/* Start etcd `name` with data in `datadir` (relative), listening on 127.0.0.1 client and peer
 * ports, and wait until it answers (up to timeout_ms). Fails at once when either port
 * answers already (another program has it). */
int proc_etcd_start(const struct proc_env *env, const char *name, const char *datadir, int client,
                    int peer, int timeout_ms, char *err, size_t err_size);

/* The pid of etcd `name` if it runs (from its pid file, checked in /proc), else 0. */
pid_t proc_etcd_pid(const struct proc_env *env, const char *name);

/* Stop etcd `name` (SIGTERM, SIGKILL after 10 s). 0 when it no longer runs. */
int proc_etcd_stop(const struct proc_env *env, const char *name, char *err, size_t err_size);

/* An etcd answers at 127.0.0.1:port (a TCP connection is accepted). */
int proc_port_open(int port);

/* ---- PostgreSQL ---- */

/* The conninfo of the instance on `port` (superuser, the password file, timeouts). */
void proc_pg_conninfo(const struct proc_env *env, int port, char *buf, size_t size);

/* datadir/PG_VERSION exists. */
int proc_pg_exists(const struct proc_env *env, const char *datadir);

/* The postmaster's pid from datadir/postmaster.pid when it runs, else 0. */
pid_t proc_pg_pid(const struct proc_env *env, const char *datadir);

/* initdb (superuser, password, scram-sha-256 for TCP; extra arguments `args`, NULL-ended). */
int proc_pg_initdb(const struct proc_env *env, const char *name, const char *datadir,
                   const char *password, const char *const *args, char *err, size_t err_size);

/* pg_basebackup of the instance on source_port into datadir (which must not exist). */
int proc_pg_basebackup(const struct proc_env *env, const char *name, const char *datadir,
                       int source_port, char *err, size_t err_size);

/* A program started and not waited for. */
struct proc_job {
    pid_t pid;
    char program[300];
    char log[700];
};

/* The same, started: several base backups of one primary run at once. Then proc_wait. */
int proc_pg_basebackup_spawn(const struct proc_env *env, const char *name, const char *datadir,
                             int source_port, struct proc_job *job, char *err, size_t err_size);

/* cp -a of a stopped data directory `from` to `to` (which must not exist), started: the copies
 * of one fresh base backup are as many independent standbys. Then proc_wait. */
int proc_pg_copy_spawn(const struct proc_env *env, const char *name, const char *from,
                       const char *to, struct proc_job *job, char *err, size_t err_size);

/* Wait for a started program up to timeout_ms (then SIGKILL): 0, or -1 with err (the last line
 * of its log). */
int proc_wait(struct proc_job *job, int timeout_ms, char *err, size_t err_size);

#define PROC_TOOL_TIMEOUT_MS 300000

/* Comment out the lines of datadir/postgresql.conf that set a parameter of `settings`
 * ("name=value", NULL-ended): the command line sets those. */
int proc_pg_conf_defer(const struct proc_env *env, const char *datadir, const char *const *settings,
                       char *err, size_t err_size);

/* Make the stopped instance a standby of the one on primary_port (standby.signal,
 * primary_conninfo, recovery_target_timeline latest). */
int proc_pg_follow(const struct proc_env *env, const char *datadir, int primary_port, char *err,
                   size_t err_size);

/* pg_rewind the stopped instance from the one on source_port. */
int proc_pg_rewind(const struct proc_env *env, const char *name, const char *datadir,
                   int source_port, char *err, size_t err_size);

/* One field of pg_controldata ("Database cluster state", ...). 0, or -1. */
int proc_pg_controldata(const struct proc_env *env, const char *datadir, const char *field,
                        char *out, size_t size);

/* Start with `settings` ("name=value" strings, NULL-ended, passed as -c), log to
 * logs/<name>.log; waits until it accepts connections. unix_socket_directories, when relative,
 * is made absolute under env->dir. */
int proc_pg_start(const struct proc_env *env, const char *name, const char *datadir,
                  const char *const *settings, char *err, size_t err_size);

/* Stop: mode "fast" (then "immediate" when fast fails) or "immediate". Not running: done. */
int proc_pg_stop(const struct proc_env *env, const char *datadir, const char *mode, char *err,
                 size_t err_size);

#endif
