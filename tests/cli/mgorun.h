/*
 * Test helper: run the real `mgo` binary as a subprocess and read back what it left running.
 *
 * mgorun_cmd() forks and execs a command (no shell) with its stdout and stderr captured into
 * unlinked temporary files (not pipes: a server the command starts may inherit them and keep a
 * pipe open long after the command exited), waits for it with a deadline (SIGKILL at the
 * deadline), and can kill it on purpose after kill_after_ms (the crash injector of the tests).
 * It records the wall time, wait4's ru_maxrss (the child's peak, which on Linux includes the
 * children it waited for) and the child's own VmHWM sampled from /proc while it ran.
 *
 * mgorun_status() runs `mgo status --json` and decodes the document of the contract
 * (/tmp/up/contract.md, "mgo status") with jansson.
 *
 * mgorun_procs() lists the processes that belong to a directory: those whose working directory
 * is in it (a postmaster's is its data directory) or whose command line names it. The tests use
 * it to find orphans and, in the cleanup, to kill whatever outlived `mgo down`.
 */
#ifndef MGO_TESTS_CLI_MGORUN_H
#define MGO_TESTS_CLI_MGORUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct mgorun {
    int code;       /* the exit status (0..255), or -1 when it did not exit normally */
    int signo;      /* the signal that ended it, 0 when it exited */
    int timed_out;  /* killed at the deadline */
    int killed;     /* killed on purpose at kill_after_ms */
    int64_t ms;     /* wall time from fork to its end */
    long maxrss_kb; /* wait4's ru_maxrss */
    long hwm_kb;    /* the last VmHWM read from /proc/<pid>/status while it ran, 0 if none */
    char *out;      /* its stdout, NUL-terminated (never NULL after mgorun_cmd) */
    char *err;      /* its stderr */
    char cmd[1024]; /* the command line, for reports */
};

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t mgorun_now_ms(void);

/* Sleep (EINTR resumed). */
void mgorun_sleep_ms(long ms);

/*
 * Run argv (argv[0] is a path, no PATH lookup) to completion, or SIGKILL it after
 * kill_after_ms (> 0: r->killed then tells whether it was still running), or at timeout_ms.
 * The child starts with every signal unblocked and default, and no descriptor but 0, 1, 2.
 * 0 when it was started and waited for (whatever its status), -1 when it could not be started
 * (r->err says why). Free with mgorun_free().
 */
int mgorun_cmd(struct mgorun *r, const char *const *argv, int timeout_ms, int kill_after_ms);
void mgorun_free(struct mgorun *r);

/* mgorun_cmd(), and also SIGKILL it as soon as kill_when(arg) returns nonzero (asked every
 * poll_ms while it runs; NULL: never): the crash injector triggered by state rather than by
 * time. r->killed tells whether it was still running when killed. */
int mgorun_cmd_when(struct mgorun *r, const char *const *argv, int timeout_ms, int kill_after_ms,
                    int (*kill_when)(void *arg), void *arg, int poll_ms);

/* SIGKILL every command mgorun_cmd() is running now, in any thread, and from then on refuse
 * to start commands but from the calling thread (a cleanup's first step: a killed mgo releases
 * the cluster's lock, and no other thread's next command can start servers again after the
 * cleanup's `mgo down`). How many were signalled. */
int mgorun_kill_running(void);

/* Print the command, its status and its output (indented) to f. */
void mgorun_print(const struct mgorun *r, FILE *f);

/* A short description of how it ended: "exit 0", "signal 9", "timed out". */
const char *mgorun_how(const struct mgorun *r, char *buf, size_t size);

#define MGORUN_MAX_INSTANCES 32
#define MGORUN_MAX_ETCD      8

struct mgorun_instance {
    char name[128], cell[64], pool[64], database[64], tablegroup[64], shard[64];
    long long index;
    char role[32], state[32], host[64], data_dir[512], drain[64]; /* drain "" when null */
    int port;
    long long pid;           /* 0 when null */
    long long lag_bytes;     /* -1 when null */
    int synchronous;         /* "synchronous": 1 true, 0 false, -1 absent or not a boolean */
    int has_all_fields;      /* every key of the contract present with its type */
    char missing_field[128]; /* the first one that was not, for reports */
};

struct mgorun_etcd {
    char name[128];
    int client_port, peer_port, running;
    long long pid; /* 0 when null */
};

struct mgorun_status {
    char cluster[128], phase[64];
    int n;
    struct mgorun_instance in[MGORUN_MAX_INSTANCES];
    int n_etcd;
    struct mgorun_etcd etcd[MGORUN_MAX_ETCD];
};

/* Decode a `status --json` document. 0, or -1 with err saying why. */
int mgorun_status_parse(const char *json, struct mgorun_status *st, char *err, size_t err_size);

/*
 * `MGO status --state-dir STATE --json CLUSTER` (timeout 60 s), decoded. 0; -1 with err saying
 * why (the command's status and output when it failed).
 */
int mgorun_status(const char *mgo, const char *state, const char *cluster, struct mgorun_status *st,
                  char *err, size_t err_size);

/* The instance named `name` in st, or NULL. */
const struct mgorun_instance *mgorun_find(const struct mgorun_status *st, const char *name);

struct mgorun_proc {
    pid_t pid, ppid;
    char exe[64];   /* basename of /proc/<pid>/exe, "" when unreadable */
    char cwd[512];  /* "" when unreadable */
    int postmaster; /* exe "postgres" and its parent is not a postgres of the same set */
    char cmd[256];  /* the command line, arguments joined by spaces (cut) */
};

/*
 * The live (not zombie) processes, other than this one, whose working directory is `dir` or
 * under it, or one of whose arguments contains `dir`. At most max; returns how many were found
 * (may exceed max: only max are written).
 */
size_t mgorun_procs(const char *dir, struct mgorun_proc *out, size_t max);

/* SIGKILL every process of mgorun_procs(dir) (several passes, until none is left or ~5 s).
 * Returns how many were killed. */
int mgorun_kill_under(const char *dir);

/* The first line of DATADIR/postmaster.pid as a number, 0 when it cannot be read. */
long long mgorun_postmaster_pid(const char *data_dir);

/* A base port p such that p .. p+count-1 are free on 127.0.0.1 (TCP), between 20000 and the
 * kernel's ephemeral range, seeded by the pid; 0 when none was found. */
int mgorun_free_port_base(int count);

/* rm -rf path (no symlink followed). 0, or -1. */
int mgorun_rmtree(const char *path);

/* Read a whole file (NUL-terminated, malloc'ed), NULL when it cannot be read. */
char *mgorun_read_file(const char *path, size_t *len);

/* Write text to path (0644). 0 or -1. */
int mgorun_write_file(const char *path, const char *text);

/* A copy of text with every occurrence of from replaced by to (malloc'ed); *count gets the
 * number of replacements. NULL on allocation failure. */
char *mgorun_replace(const char *text, const char *from, const char *to, int *count);

#endif
