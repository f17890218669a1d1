/*
 * A real PostgreSQL shard for tests (see pg_harness.h).
 *
 * Why the postmaster is a direct child started with `postgres -D ...`, not `pg_ctl start` or
 * `runuser -u postgres -- postgres`: pg_ctl daemonizes the postmaster (no parent-death signal
 * can reach it, a watchdog process would be needed), and runuser forks and stays as a watching
 * parent, so a PR_SET_PDEATHSIG set on it never reaches the postmaster (and runuser forwards
 * only SIGTERM, a smart shutdown, then SIGKILLs its child after 2 s). Here the forked child
 * drops to the user postgres itself (setgroups, setgid, setuid), then sets PR_SET_PDEATHSIG
 * (credential changes clear it, so it comes after) and execs the program. The postmaster is
 * thus our child: it dies with the test (SIGQUIT: an immediate shutdown, which also removes its
 * shared memory), signals go straight to it (SIGINT fast, SIGQUIT immediate), and we reap it
 * ourselves, so the zombie-reaping lag of PID 1 (facts P5) does not apply. initdb,
 * pg_basebackup and pg_controldata go through the same fork wrapper (with SIGKILL as the
 * parent-death signal), so there is one way to run a PostgreSQL program.
 *
 * Ports are drawn at random below the kernel's ephemeral range (20000 up to
 * ip_local_port_range's low end) and probed with bind(): a stopped node restarts on the same
 * port, and an outgoing connection's local port, which comes from the ephemeral range, cannot
 * take it in the meantime.
 */
#define _DEFAULT_SOURCE /* setgroups */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "pg_harness.h"

#define SHARD_MAX            8
#define START_ATTEMPTS       5
#define READY_TIMEOUT_MS     60000
#define STREAMING_TIMEOUT_MS 60000
#define TOOL_TIMEOUT_MS      120000
#define FAST_STOP_TIMEOUT_MS 30000
#define NODE_STOP_TIMEOUT_MS 60000
#define QUIT_STOP_TIMEOUT_MS 10000
#define LOG_TAIL_BYTES       3000
#define PORT_LOW             20000
#define SQL_TRY_TIMEOUT_MS   5000
#define TMPDIR_MAX_LEN       60 /* + /mgo-pg-<pid>-XXXXXX/.s.PGSQL.NNNNN within sun_path */

/* Process-wide state (test code): where the programs are, whom they run as, running shards. */
static char pg_bindir[256];
static int as_postgres; /* running as root: PostgreSQL programs run as the user postgres */
static uid_t pg_uid;
static gid_t pg_gid;
static char env_home[300];
static char *child_env[] = {"PATH=/usr/bin:/bin", env_home, "LC_ALL=C", NULL};
static struct pg_shard *volatile shards[SHARD_MAX];
static const int handled_signals[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                                      SIGSEGV, SIGBUS,  SIGFPE, SIGILL};
#define N_HANDLED (sizeof(handled_signals) / sizeof(handled_signals[0]))
static struct sigaction old_actions[N_HANDLED];
static int handlers_installed;
static int ports_handed_out[256];
static unsigned n_ports_handed_out;
static unsigned port_seed;

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

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    if (left < 1)
        return 1;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* A node in use: a slot forgotten by pg_node_forget() has no name. */
static int valid_node(const struct pg_shard *s, int i)
{
    return s && i >= 0 && i < s->n && i < PG_SHARD_MAX_NODES && s->nodes[i].name[0];
}

/* ---- processes ------------------------------------------------------------------------- */

/* rm -rf dir, with async-signal-safe calls only (used from the signal handler). */
static void remove_dir(const char *dir)
{
    pid_t pid;
    int status;

    if (!dir[0])
        return;
    pid = fork();
    if (pid == 0) {
        char *const argv[] = {"rm", "-rf", (char *)dir, NULL};
        execv("/bin/rm", argv);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
}

/*
 * Fork and exec argv[0] (a full path) in cwd, as the user postgres when running as root, with
 * a fixed environment, stdin from /dev/null and stdout and stderr to `log` (truncated or
 * appended). The child gets `deathsig` when the calling thread ends. The pid, or -1.
 */
static pid_t spawn(char *const argv[], const char *cwd, const char *log, int truncate, int deathsig)
{
    int log_fd = open(log, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0644);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    long max_fd = sysconf(_SC_OPEN_MAX);
    pid_t parent = getpid();
    pid_t pid = -1;

    if (log_fd < 0 || null_fd < 0) {
        fprintf(stderr, "pg_harness: open %s: %s\n", log, strerror(errno));
        goto out;
    }
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;
    pid = fork();
    if (pid == 0) {
        /* the child: async-signal-safe calls only (the test may have threads) */
        static const char failed[] = "pg_harness: could not become postgres or exec: ";
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (size_t k = 0; k < N_HANDLED; k++)
            signal(handled_signals[k], SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        dup2(null_fd, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        for (long fd = 3; fd < max_fd; fd++)
            close((int)fd);
        if (as_postgres && (setgroups(1, &pg_gid) != 0 || setgid(pg_gid) != 0 ||
                            setuid(pg_uid) != 0 || getuid() != pg_uid))
            goto child_failed;
        if (prctl(PR_SET_PDEATHSIG, deathsig) != 0 || getppid() != parent)
            _exit(126);
        if (chdir(cwd) != 0)
            goto child_failed;
        execve(argv[0], argv, child_env);
    child_failed:
        if (write(2, failed, sizeof(failed) - 1) < 0 || write(2, argv[0], strlen(argv[0])) < 0 ||
            write(2, "\n", 1) < 0)
            _exit(127);
        _exit(127);
    }
    if (pid < 0)
        fprintf(stderr, "pg_harness: fork: %s\n", strerror(errno));
out:
    if (log_fd >= 0)
        close(log_fd);
    if (null_fd >= 0)
        close(null_fd);
    return pid;
}

static void print_log_tail(const char *path)
{
    char buf[LOG_TAIL_BYTES + 1];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f) {
        fprintf(stderr, "--- %s: %s\n", path, strerror(errno));
        return;
    }
    if (fseek(f, -(long)LOG_TAIL_BYTES, SEEK_END) != 0)
        rewind(f);
    n = fread(buf, 1, LOG_TAIL_BYTES, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "--- %s (tail)\n%s%s--- end of %s\n", path, buf,
            n > 0 && buf[n - 1] != '\n' ? "\n" : "", path);
}

/* Wait for a child to exit, up to timeout_ms: 0 with its status, or -ETIMEDOUT. */
static int wait_child(pid_t pid, int timeout_ms, int *ret_status)
{
    int64_t deadline = now_ms() + timeout_ms;
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            *ret_status = status;
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            *ret_status = -1;
            return 0;
        }
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(10);
    }
}

/* Wait for a program started by spawn(); 0 when it exited 0, else -1 after printing why. */
static int finish_tool(pid_t pid, const char *what, const char *log, int64_t deadline)
{
    int status;

    if (wait_child(pid, remaining_ms(deadline), &status) < 0) {
        fprintf(stderr, "pg_harness: %s did not finish in time: killed\n", what);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        print_log_tail(log);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "pg_harness: %s failed (wait status %d)\n", what, status);
        print_log_tail(log);
        return -1;
    }
    return 0;
}

static int run_tool(char *const argv[], const char *cwd, const char *log, const char *what)
{
    pid_t pid = spawn(argv, cwd, log, 1, SIGKILL);
    if (pid < 0)
        return -1;
    return finish_tool(pid, what, log, now_ms() + TOOL_TIMEOUT_MS);
}

/* 1 when node's postmaster has exited (reaped now or earlier), 0 while it runs. */
static int reap(struct pg_node *node)
{
    int status;
    pid_t r;

    if (node->pid <= 0) {
        node->running = 0;
        return 1;
    }
    do
        r = waitpid(node->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == node->pid || r < 0) {
        node->pid = 0;
        node->running = 0;
        return 1;
    }
    return 0;
}

/* ---- cleanup at exit and on signals ---------------------------------------------------- */

/* Immediate shutdown of every node of s and removal of its directory; async-signal-safe. */
static void stop_shard_now(struct pg_shard *s)
{
    int64_t deadline = now_ms() + QUIT_STOP_TIMEOUT_MS;
    int left;

    for (int i = 0; i < s->n && i < PG_SHARD_MAX_NODES; i++)
        if (s->nodes[i].pid > 0)
            kill(s->nodes[i].pid, SIGQUIT);
    do {
        left = 0;
        for (int i = 0; i < s->n && i < PG_SHARD_MAX_NODES; i++)
            left += !reap(&s->nodes[i]);
        if (left) {
            struct timespec ts = {0, 20000000L};
            nanosleep(&ts, NULL);
        }
    } while (left && now_ms() < deadline);
    for (int i = 0; i < s->n && i < PG_SHARD_MAX_NODES; i++) {
        if (s->nodes[i].pid > 0) {
            int status;
            kill(s->nodes[i].pid, SIGKILL);
            waitpid(s->nodes[i].pid, &status, 0);
            s->nodes[i].pid = 0;
            s->nodes[i].running = 0;
        }
    }
    remove_dir(s->dir);
    s->dir[0] = '\0';
}

static void stop_all_now(void)
{
    for (int i = 0; i < SHARD_MAX; i++) {
        struct pg_shard *s = shards[i];
        if (s) {
            shards[i] = NULL;
            stop_shard_now(s);
        }
    }
}

/* Clean up, then let the signal do what it did before (another harness's handler, cmocka's, or
 * the default action) once this handler returns. */
static void on_signal(int sig)
{
    stop_all_now();
    for (size_t k = 0; k < N_HANDLED; k++)
        if (handled_signals[k] == sig)
            sigaction(sig, &old_actions[k], NULL);
    raise(sig);
}

static void install_handlers(void)
{
    struct sigaction sa;

    if (handlers_installed)
        return;
    handlers_installed = 1;
    atexit(stop_all_now);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < N_HANDLED; k++) {
        sigaction(handled_signals[k], NULL, &old_actions[k]);
        if (old_actions[k].sa_handler == SIG_IGN) /* e.g. SIGHUP under nohup: keep ignoring it */
            continue;
        sigaction(handled_signals[k], &sa, NULL);
    }
}

static int track(struct pg_shard *s, int on)
{
    for (int i = 0; i < SHARD_MAX; i++) {
        if (on && !shards[i]) {
            shards[i] = s;
            return 0;
        }
        if (!on && shards[i] == s)
            shards[i] = NULL;
    }
    return on ? -1 : 0;
}

/* ---- set-up: programs, user, directory, ports ------------------------------------------ */

static int is_program(const char *dir, const char *name)
{
    char path[300];
    return snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path) &&
           access(path, X_OK) == 0;
}

/* $MGO_PG_BINDIR, /usr/lib/postgresql/15/bin, or the newest /usr/lib/postgresql/<N>/bin. */
static int find_bindir(void)
{
    const char *env = getenv("MGO_PG_BINDIR");
    long best = -1;
    DIR *d;
    struct dirent *e;

    if (env && *env) {
        snprintf(pg_bindir, sizeof(pg_bindir), "%s", env);
        if (is_program(pg_bindir, "postgres"))
            return 0;
        fprintf(stderr, "pg_harness: no executable postgres in MGO_PG_BINDIR=%s\n", env);
        return -1;
    }
    snprintf(pg_bindir, sizeof(pg_bindir), "/usr/lib/postgresql/15/bin");
    if (is_program(pg_bindir, "postgres"))
        return 0;
    d = opendir("/usr/lib/postgresql");
    while (d && (e = readdir(d)) != NULL) {
        char *end, bin[64];
        long major;
        errno = 0;
        major = strtol(e->d_name, &end, 10);
        if (errno != 0 || end == e->d_name || *end != '\0' || major <= best || major > 999)
            continue;
        snprintf(bin, sizeof(bin), "/usr/lib/postgresql/%ld/bin", major);
        if (is_program(bin, "postgres")) {
            best = major;
            snprintf(pg_bindir, sizeof(pg_bindir), "%s", bin);
        }
    }
    if (d)
        closedir(d);
    if (best >= 0)
        return 0;
    fprintf(stderr, "pg_harness: no PostgreSQL server: neither /usr/lib/postgresql/15/bin/postgres "
                    "nor another /usr/lib/postgresql/<major>/bin/postgres (install postgresql, "
                    "or set MGO_PG_BINDIR)\n");
    return -1;
}

static int setup(void)
{
    static int done;
    const char *home = getenv("HOME");

    if (done)
        return 0;
    if (find_bindir() < 0)
        return -1;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "pg_harness: running as root, and there is no user postgres to run "
                            "PostgreSQL as (PostgreSQL refuses to run as root)\n");
            return -1;
        }
        as_postgres = 1;
        pg_uid = pw->pw_uid;
        pg_gid = pw->pw_gid;
        home = pw->pw_dir;
    }
    snprintf(env_home, sizeof(env_home), "HOME=%s", home && *home ? home : "/");
    done = 1;
    return 0;
}

/* Whether the user postgres may search directory st (it has no supplementary groups here). */
static int postgres_may_search(const struct stat *st)
{
    if (st->st_uid == pg_uid)
        return (st->st_mode & S_IXUSR) != 0;
    if (st->st_gid == pg_gid)
        return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

/* Whether postgres can reach into absolute directory `dir` (it and every parent searchable). */
static int reachable_by_postgres(const char *dir)
{
    char path[256];
    struct stat st;

    if (!as_postgres)
        return 1;
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
        return 0;
    for (;;) {
        char *slash;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode) || !postgres_may_search(&st))
            return 0;
        slash = strrchr(path, '/');
        if (!slash)
            return 0;
        if (slash == path) {
            if (path[1] == '\0')
                return 1;
            path[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
}

/* $TMPDIR when postgres can reach it and its path leaves room for the Unix socket, else /tmp. */
static const char *base_dir(void)
{
    const char *tmp = getenv("TMPDIR");

    if (!tmp || !*tmp)
        return "/tmp";
    if (tmp[0] != '/' || strlen(tmp) > TMPDIR_MAX_LEN) {
        fprintf(stderr,
                "pg_harness: TMPDIR=%s is relative or longer than %d bytes (the "
                "Unix socket path would not fit): using /tmp\n",
                tmp, TMPDIR_MAX_LEN);
        return "/tmp";
    }
    if (!reachable_by_postgres(tmp)) {
        fprintf(stderr, "pg_harness: the user postgres cannot reach TMPDIR=%s: using /tmp\n", tmp);
        return "/tmp";
    }
    return tmp;
}

/* 1 when the postmaster.pid of any node directory under dir names a live process. */
static int has_live_postmaster(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int live = 0;

    while (d && !live && (e = readdir(d)) != NULL) {
        char path[600];
        long pid = 0;
        FILE *f;
        if (e->d_name[0] != 'n')
            continue;
        if (snprintf(path, sizeof(path), "%s/%s/postmaster.pid", dir, e->d_name) >=
            (int)sizeof(path))
            continue;
        f = fopen(path, "r");
        if (!f)
            continue;
        if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
            live = 1;
        fclose(f);
    }
    if (d)
        closedir(d);
    return live;
}

/* Remove the directories of earlier test processes that died by SIGKILL (their postmasters
 * got SIGQUIT with them): mgo-pg-<pid>-* whose process no longer exists. A directory with a
 * live postmaster in it is left alone. */
static void remove_stale_dirs(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char *end, path[512];
        long pid;
        if (strncmp(e->d_name, "mgo-pg-", 7) != 0)
            continue;
        errno = 0;
        pid = strtol(e->d_name + 7, &end, 10);
        if (errno != 0 || end == e->d_name + 7 || *end != '-' || pid <= 0 ||
            pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
        if (!has_live_postmaster(path))
            remove_dir(path);
    }
    closedir(d);
}

static int ephemeral_port_low(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int low = 32768;

    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* Bind 127.0.0.1:port (port 0: any) without SO_REUSEADDR; the bound port, or -1. */
static int probe_port(int port)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), bound = -1;

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        bound = ntohs(addr.sin_port);
    close(fd);
    return bound;
}

static int handed_out(int port)
{
    unsigned n = n_ports_handed_out < 256 ? n_ports_handed_out : 256;
    for (unsigned k = 0; k < n; k++)
        if (ports_handed_out[k] == port)
            return 1;
    return 0;
}

/* A free loopback port not handed out before by this process; -1 when none was found. */
static int free_port(void)
{
    int high = ephemeral_port_low(), port = -1;

    if (!port_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        port_seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
    }
    for (int tries = 0; tries < 500 && port < 0; tries++) {
        int candidate;
        if (high - PORT_LOW >= 1000) {
            port_seed = port_seed * 1103515245u + 12345u;
            candidate = PORT_LOW + (int)((port_seed >> 8) % (unsigned)(high - PORT_LOW));
            if (handed_out(candidate) || probe_port(candidate) != candidate)
                continue;
        } else {
            candidate = probe_port(0); /* no room below the ephemeral range */
            if (candidate <= 0 || handed_out(candidate))
                continue;
        }
        port = candidate;
    }
    if (port > 0)
        ports_handed_out[n_ports_handed_out++ % 256] = port;
    return port;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static void node_log_path(const struct pg_shard *s, int i, const char *suffix, char *buf,
                          size_t size)
{
    snprintf(buf, size, "%s/%s%s", s->dir, s->nodes[i].name, suffix);
}

/* Start node i's postmaster with the node-local settings on its command line (facts P1). */
static int node_spawn(struct pg_shard *s, int i)
{
    struct pg_node *node = &s->nodes[i];
    char program[300], port[32], cluster[96], sockets[300], log[300];
    char *argv[3 + 2 * 64 + 1] = {program,
                                  "-D",
                                  node->datadir,
                                  "-c",
                                  port,
                                  "-c",
                                  cluster,
                                  "-c",
                                  sockets,
                                  "-c",
                                  "listen_addresses=127.0.0.1",
                                  NULL};
    pid_t pid;

    snprintf(program, sizeof(program), "%s/postgres", pg_bindir);
    snprintf(port, sizeof(port), "port=%d", node->port);
    snprintf(cluster, sizeof(cluster), "cluster_name=%s", node->name);
    snprintf(sockets, sizeof(sockets), "unix_socket_directories=%s", s->sockdir);
    if (node->nsettings > 0) { /* the host's command line, as it is */
        const char *c = node->settings;
        int a = 3;
        for (int k = 0; k < node->nsettings && k < 64; k++, c += strlen(c) + 1) {
            argv[a++] = "-c";
            argv[a++] = (char *)c;
        }
        argv[a] = NULL;
    }
    node_log_path(s, i, ".log", log, sizeof(log));
    pid = spawn(argv, s->dir, log, 0, SIGQUIT);
    if (pid < 0)
        return -1;
    node->pid = pid;
    node->running = 1;
    return 0;
}

/* Wait until node i accepts connections: 0; 1 when its postmaster exited; -1 on timeout. */
static int wait_ready(struct pg_shard *s, int i, int64_t deadline)
{
    char conninfo[200];

    pg_node_conninfo(s, i, conninfo, sizeof(conninfo));
    for (;;) {
        if (reap(&s->nodes[i]))
            return 1;
        if (PQping(conninfo) == PQPING_OK)
            return 0;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(50);
    }
}

/* Wait until node's postmaster has exited and its postmaster.pid is gone: 0 or -ETIMEDOUT. */
static int wait_stopped(struct pg_node *node, int64_t deadline)
{
    char pidfile[600];
    int64_t reaped_at = 0;

    snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", node->datadir);
    for (;;) {
        if (reap(node)) {
            if (access(pidfile, F_OK) != 0)
                return 0;
            /* the postmaster removes it before it exits; still there means it was killed */
            if (!reaped_at)
                reaped_at = now_ms();
            else if (now_ms() - reaped_at > 1000)
                return 0;
        }
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(10);
    }
}

/* After a timed-out stop: immediate shutdown, then SIGKILL. */
static void force_stop(struct pg_node *node)
{
    int status;

    if (reap(node))
        return;
    kill(node->pid, SIGQUIT);
    if (wait_stopped(node, now_ms() + QUIT_STOP_TIMEOUT_MS) == 0)
        return;
    fprintf(stderr, "pg_harness: postmaster %d ignored SIGQUIT: SIGKILL\n", (int)node->pid);
    kill(node->pid, SIGKILL);
    waitpid(node->pid, &status, 0);
    node->pid = 0;
    node->running = 0;
}

/*
 * Start nodes first..last on fresh ports, all at once, and wait until each accepts
 * connections; a node whose postmaster exits early (most likely a port taken since the probe)
 * is retried on another port. 0, or -1 after printing why.
 */
static int start_new_nodes(struct pg_shard *s, int first, int last)
{
    int pending[PG_SHARD_MAX_NODES] = {0};
    int n_pending = 0;

    for (int i = first; i <= last; i++, n_pending++)
        pending[i] = 1;
    for (int attempt = 0; attempt < START_ATTEMPTS && n_pending > 0; attempt++) {
        int64_t deadline = now_ms() + READY_TIMEOUT_MS;
        for (int i = first; i <= last; i++) {
            if (!pending[i])
                continue;
            if (s->nodes[i].fixed_port) {
                if (attempt > 0) {
                    fprintf(stderr, "pg_harness: %s: port %d is fixed; not retrying\n",
                            s->nodes[i].name, s->nodes[i].port);
                    return -1;
                }
                if (node_spawn(s, i) < 0)
                    return -1;
                continue;
            }
            s->nodes[i].port = free_port();
            if (s->nodes[i].port <= 0) {
                fprintf(stderr, "pg_harness: no free loopback port\n");
                return -1;
            }
            if (node_spawn(s, i) < 0)
                return -1;
        }
        for (int i = first; i <= last; i++) {
            char log[300];
            int r;
            if (!pending[i])
                continue;
            r = wait_ready(s, i, deadline);
            node_log_path(s, i, ".log", log, sizeof(log));
            if (r == 0) {
                pending[i] = 0;
                n_pending--;
                continue;
            }
            if (r < 0) {
                fprintf(stderr, "pg_harness: %s (port %d) not accepting connections after %d ms\n",
                        s->nodes[i].name, s->nodes[i].port, READY_TIMEOUT_MS);
                print_log_tail(log);
                return -1;
            }
            fprintf(stderr, "pg_harness: %s exited during start on port %d (attempt %d)\n",
                    s->nodes[i].name, s->nodes[i].port, attempt + 1);
            print_log_tail(log);
        }
    }
    if (n_pending > 0) {
        fprintf(stderr, "pg_harness: gave up starting after %d attempts\n", START_ATTEMPTS);
        return -1;
    }
    return 0;
}

static int run_initdb(struct pg_shard *s, int i)
{
    char program[300], log[300];
    char *argv[] = {program,
                    "-D",
                    s->nodes[i].datadir,
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    NULL};

    snprintf(program, sizeof(program), "%s/initdb", pg_bindir);
    snprintf(log, sizeof(log), "%s/initdb.log", s->dir);
    return run_tool(argv, s->dir, log, "initdb");
}

/* Append the shard-wide settings to node i's postgresql.conf (the base backups copy them). */
static int write_primary_conf(struct pg_shard *s, int i, const char *sync_names)
{
    char path[600];
    FILE *f;
    int rc;

    snprintf(path, sizeof(path), "%s/postgresql.conf", s->nodes[i].datadir);
    f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "pg_harness: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "\n# mgo test harness (tests/pg/pg_harness.c); port, cluster_name,\n"
               "# unix_socket_directories and listen_addresses are on each node's command line\n"
               "fsync = off # tests only\n"
               "wal_level = logical\n"
               "max_wal_senders = 16\n"
               "max_replication_slots = 16\n"
               "wal_log_hints = on\n"
               "wal_keep_size = '256MB'\n"
               "hot_standby = on\n"
               "shared_buffers = '32MB'\n"
               "log_line_prefix = '%%m [%%p] %%q%%a '\n");
    if (sync_names) {
        fputs("synchronous_standby_names = '", f);
        for (const char *c = sync_names; *c; c++) {
            if (*c == '\'')
                fputc('\'', f);
            fputc(*c, f);
        }
        fputs("'\n", f);
    }
    rc = ferror(f);
    if (fclose(f) != 0 || rc) {
        fprintf(stderr, "pg_harness: write %s failed\n", path);
        return -1;
    }
    return 0;
}

/* Start pg_basebackup of node i from node `source` (-R: standby.signal and primary_conninfo);
 * its log path goes to log. The pid, or -1. */
static pid_t spawn_base_backup(struct pg_shard *s, int i, int source, char *log, size_t log_size)
{
    char program[300], from[128];
    char *argv[] = {program, "-D",   s->nodes[i].datadir, "-R", "-X", "stream",
                    "-c",    "fast", "--no-sync",         "-d", from, NULL};

    snprintf(program, sizeof(program), "%s/pg_basebackup", pg_bindir);
    snprintf(from, sizeof(from), "host=127.0.0.1 port=%d user=postgres", s->nodes[source].port);
    node_log_path(s, i, ".basebackup.log", log, log_size);
    return spawn(argv, s->dir, log, 1, SIGKILL);
}

/* pg_basebackup n1..n(n-1) from n0, all at once. */
static int base_backups(struct pg_shard *s)
{
    char logs[PG_SHARD_MAX_NODES][300];
    pid_t pids[PG_SHARD_MAX_NODES] = {0};
    int64_t deadline = now_ms() + TOOL_TIMEOUT_MS;
    int rc = 0;

    for (int i = 1; i < s->n; i++) {
        pids[i] = spawn_base_backup(s, i, 0, logs[i], sizeof(logs[i]));
        if (pids[i] < 0)
            rc = -1;
    }
    for (int i = 1; i < s->n; i++) {
        char what[96];
        snprintf(what, sizeof(what), "pg_basebackup of %s", s->nodes[i].name);
        if (pids[i] > 0 && finish_tool(pids[i], what, logs[i], deadline) < 0)
            rc = -1;
    }
    return rc;
}

/* ---- public: shard -------------------------------------------------------------------- */

/* Create dir and its missing parents below s->dir, for the user PostgreSQL runs as. */
static int make_dirs(const struct pg_shard *s, const char *dir)
{
    char path[600];
    size_t base = strlen(s->dir);
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path) ||
        strncmp(path, s->dir, base) != 0)
        return -1;
    for (char *p = path + base + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "pg_harness: mkdir %s: %s\n", path, strerror(errno));
            return -1;
        }
        if (as_postgres && chown(path, pg_uid, pg_gid) != 0) {
            fprintf(stderr, "pg_harness: chown %s: %s\n", path, strerror(errno));
            return -1;
        }
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/* The temporary directory and the handlers: the start of every shard. */
static int shard_begin(struct pg_shard *s)
{
    const char *base;

    if (setup() < 0)
        return -1;
    install_handlers();
    base = base_dir();
    remove_stale_dirs(base);
    snprintf(s->dir, sizeof(s->dir), "%s/mgo-pg-%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "pg_harness: mkdtemp %s: %s\n", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    if (track(s, 1) < 0) {
        fprintf(stderr, "pg_harness: more than %d shards at once\n", SHARD_MAX);
        remove_dir(s->dir);
        s->dir[0] = '\0';
        return -1;
    }
    if (chmod(s->dir, 0755) != 0 || (as_postgres && chown(s->dir, pg_uid, pg_gid) != 0)) {
        fprintf(stderr, "pg_harness: chmod/chown %s: %s\n", s->dir, strerror(errno));
        return -1;
    }
    snprintf(s->sockdir, sizeof(s->sockdir), "%s", s->dir);
    return 0;
}

/* Base backups of node 0 for every other node, started as its standbys, all streaming. */
static int start_standbys(struct pg_shard *s)
{
    char expect[16];

    if (s->n == 1)
        return 0;
    if (base_backups(s) < 0 || start_new_nodes(s, 1, s->n - 1) < 0)
        return -1;
    snprintf(expect, sizeof(expect), "%d", s->n - 1);
    /* until its first reply, a streaming standby has no flush position: it cannot acknowledge
     * a synchronous commit yet, and pg_stat_replication shows it as async, priority 0 */
    if (pg_sql_wait(s, 0,
                    "select count(*) from pg_stat_replication "
                    "where state = 'streaming' and flush_lsn is not null",
                    expect, STREAMING_TIMEOUT_MS) < 0) {
        for (int i = 1; i < s->n; i++) {
            char log[300];
            node_log_path(s, i, ".log", log, sizeof(log));
            print_log_tail(log);
        }
        return -1;
    }
    return 0;
}

int pg_shard_start(struct pg_shard *s, int standbys, const char *sync_names)
{
    memset(s, 0, sizeof(*s));
    if (standbys < 0 || standbys >= PG_SHARD_MAX_NODES) {
        fprintf(stderr, "pg_harness: %d standbys: must be 0..%d\n", standbys,
                PG_SHARD_MAX_NODES - 1);
        return -1;
    }
    if (shard_begin(s) < 0)
        goto fail;
    s->n = standbys + 1;
    for (int i = 0; i < s->n; i++) {
        snprintf(s->nodes[i].name, sizeof(s->nodes[i].name), "n%d", i);
        snprintf(s->nodes[i].datadir, sizeof(s->nodes[i].datadir), "%s/n%d", s->dir, i);
    }
    if (run_initdb(s, 0) < 0 || write_primary_conf(s, 0, sync_names) < 0 ||
        start_new_nodes(s, 0, 0) < 0 || start_standbys(s) < 0)
        goto fail;
    return 0;
fail:
    pg_shard_stop(s);
    return -1;
}

/*
 * Node i as its host's spec lays it out (see pg_node_spec): name, data directory under s->dir
 * (its parent created; initdb and pg_basebackup make the rest), fixed port, command line. The
 * slot is overwritten. 0, or -1 after printing why (the slot is then left without a name).
 */
static int node_from_spec(struct pg_shard *s, int i, const struct pg_node_spec *spec)
{
    struct pg_node *node = &s->nodes[i];
    char dir[sizeof(s->dir)], *dirname_end;
    size_t o = 0;

    memset(node, 0, sizeof(*node));
    memcpy(dir, s->dir, sizeof(dir)); /* gcc -O2 -Wrestrict: the node is in *s too */
    if (!spec->name || !spec->name[0] || !spec->datadir || !spec->settings || spec->port <= 0 ||
        snprintf(node->name, sizeof(node->name), "%s", spec->name) >= (int)sizeof(node->name) ||
        snprintf(node->datadir, sizeof(node->datadir), "%s/%s", dir, spec->datadir) >=
            (int)sizeof(node->datadir)) {
        fprintf(stderr,
                "pg_harness: node %d: a name, a data directory, a port and "
                "settings are required (and must fit)\n",
                i);
        goto fail;
    }
    node->port = spec->port;
    node->fixed_port = 1;
    dirname_end = strrchr(node->datadir, '/');
    *dirname_end = '\0';
    if (strlen(node->datadir) > strlen(s->dir) && make_dirs(s, node->datadir) < 0)
        goto fail;
    *dirname_end = '/';
    for (const char *const *set = spec->settings; *set; set++) {
        char value[700];
        const char *v = *set;
        if (strncmp(v, "unix_socket_directories=", 24) == 0 && v[24] != '/') {
            snprintf(value, sizeof(value), "%s/%s", s->dir, v + 24);
            if (make_dirs(s, value) < 0)
                goto fail;
            snprintf(value, sizeof(value), "unix_socket_directories=%s/%s", s->dir, v + 24);
            v = value;
        }
        if (node->nsettings == 64 || o + strlen(v) + 1 > sizeof(node->settings)) {
            fprintf(stderr, "pg_harness: %s: too many settings\n", node->name);
            goto fail;
        }
        memcpy(node->settings + o, v, strlen(v) + 1);
        o += strlen(v) + 1;
        node->nsettings++;
    }
    return 0;
fail:
    memset(node, 0, sizeof(*node));
    return -1;
}

int pg_shard_start_spec(struct pg_shard *s, int n, const struct pg_node_spec *specs,
                        const char *const *primary_sql)
{
    memset(s, 0, sizeof(*s));
    if (n < 1 || n > PG_SHARD_MAX_NODES || !specs) {
        fprintf(stderr, "pg_harness: %d nodes: must be 1..%d\n", n, PG_SHARD_MAX_NODES);
        return -1;
    }
    if (shard_begin(s) < 0)
        goto fail;
    s->n = n;
    for (int i = 0; i < n; i++)
        if (node_from_spec(s, i, &specs[i]) < 0)
            goto fail;
    if (run_initdb(s, 0) < 0 || write_primary_conf(s, 0, NULL) < 0 || start_new_nodes(s, 0, 0) < 0)
        goto fail;
    for (const char *const *sql = primary_sql; sql && *sql; sql++)
        if (pg_sql(s, 0, *sql, 10000, NULL, 0) != 0)
            goto fail;
    if (start_standbys(s) < 0)
        goto fail;
    return 0;
fail:
    pg_shard_stop(s);
    return -1;
}

void pg_shard_stop(struct pg_shard *s)
{
    int64_t deadline = now_ms() + FAST_STOP_TIMEOUT_MS;

    if (!s)
        return;
    for (int i = 0; i < s->n && i < PG_SHARD_MAX_NODES; i++)
        if (!reap(&s->nodes[i]))
            kill(s->nodes[i].pid, SIGINT);
    for (int i = 0; i < s->n && i < PG_SHARD_MAX_NODES; i++) {
        if (wait_stopped(&s->nodes[i], deadline) == 0)
            continue;
        fprintf(stderr, "pg_harness: %s did not stop (fast) in %d ms: immediate shutdown\n",
                s->nodes[i].name, FAST_STOP_TIMEOUT_MS);
        force_stop(&s->nodes[i]);
    }
    remove_dir(s->dir);
    s->dir[0] = '\0';
    track(s, 0);
}

/* ---- public: a shard whose nodes come and go -------------------------------------------- */

int pg_shard_open(struct pg_shard *s)
{
    memset(s, 0, sizeof(*s));
    if (shard_begin(s) == 0)
        return 0;
    pg_shard_stop(s);
    return -1;
}

int pg_node_find(const struct pg_shard *s, const char *name)
{
    for (int i = 0; s && name && i < s->n && i < PG_SHARD_MAX_NODES; i++)
        if (s->nodes[i].name[0] && strcmp(s->nodes[i].name, name) == 0)
            return i;
    return -1;
}

/* A slot for a new node `name`: the first forgotten one, else the next. -EEXIST when a node
 * already has that name, -ENOSPC when every slot is in use, -EINVAL for a stopped shard. */
static int new_slot(struct pg_shard *s, const char *name)
{
    int slot = -1;

    if (!s || !s->dir[0] || !name || !name[0])
        return -EINVAL;
    if (pg_node_find(s, name) >= 0)
        return -EEXIST;
    for (int i = 0; i < s->n && slot < 0; i++)
        if (!s->nodes[i].name[0])
            slot = i;
    if (slot >= 0)
        return slot;
    if (s->n >= PG_SHARD_MAX_NODES)
        return -ENOSPC;
    memset(&s->nodes[s->n], 0, sizeof(s->nodes[s->n]));
    return s->n++;
}

/* Give slot i up (its postmaster has exited); trailing free slots leave the count. */
static void release_slot(struct pg_shard *s, int i)
{
    memset(&s->nodes[i], 0, sizeof(s->nodes[i]));
    while (s->n > 0 && !s->nodes[s->n - 1].name[0])
        s->n--;
}

static int check_slot(int slot, const char *name)
{
    if (slot == -EEXIST)
        fprintf(stderr, "pg_harness: a node named %s exists already\n", name ? name : "?");
    else if (slot == -ENOSPC)
        fprintf(stderr, "pg_harness: %s: every one of the %d node slots is in use\n",
                name ? name : "?", PG_SHARD_MAX_NODES);
    else if (slot < 0)
        fprintf(stderr, "pg_harness: no node without a name or a running shard\n");
    return slot;
}

int pg_node_create(struct pg_shard *s, const struct pg_node_spec *spec, int source)
{
    char path[600], log[300], what[200];
    int i;

    if (!spec || (source >= 0 && !valid_node(s, source)))
        return -EINVAL;
    i = check_slot(new_slot(s, spec->name), spec->name);
    if (i < 0)
        return i;
    if (node_from_spec(s, i, spec) < 0)
        goto release;
    snprintf(path, sizeof(path), "%s", s->nodes[i].datadir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "pg_harness: %s: data directory %s exists already\n", spec->name, path);
        release_slot(s, i);
        return -EEXIST;
    }
    if (source < 0) {
        if (run_initdb(s, i) < 0 || write_primary_conf(s, i, NULL) < 0)
            goto remove;
    } else {
        pid_t pid = spawn_base_backup(s, i, source, log, sizeof(log));
        snprintf(what, sizeof(what), "pg_basebackup of %s from %s", s->nodes[i].name,
                 s->nodes[source].name);
        if (pid < 0 || finish_tool(pid, what, log, now_ms() + TOOL_TIMEOUT_MS) < 0)
            goto remove;
    }
    if (start_new_nodes(s, i, i) == 0)
        return i;
    force_stop(&s->nodes[i]);
remove:
    remove_dir(path);
release:
    release_slot(s, i);
    return -1;
}

int pg_node_attach(struct pg_shard *s, const struct pg_node_spec *spec)
{
    char path[600];
    int i;

    if (!spec)
        return -EINVAL;
    i = check_slot(new_slot(s, spec->name), spec->name);
    if (i < 0)
        return i;
    if (node_from_spec(s, i, spec) < 0) {
        release_slot(s, i);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/PG_VERSION", s->nodes[i].datadir);
    if (access(path, F_OK) != 0) {
        fprintf(stderr, "pg_harness: %s: no data directory at %s\n", spec->name,
                s->nodes[i].datadir);
        release_slot(s, i);
        return -ENOENT;
    }
    return i;
}

int pg_node_forget(struct pg_shard *s, int i)
{
    int rc;

    if (!valid_node(s, i))
        return -EINVAL;
    rc = pg_node_stop(s, i, "fast"); /* escalates itself: the postmaster is gone either way */
    release_slot(s, i);
    return rc < 0 ? -1 : 0;
}

/* s->dir/path for a relative path without "." or ".." components; 0, or -EINVAL. */
static int shard_path(const struct pg_shard *s, const char *path, char *out, size_t size)
{
    const char *c = path;

    if (!s || !s->dir[0] || !path || !path[0] || path[0] == '/')
        return -EINVAL;
    while (*c) {
        size_t len = strcspn(c, "/");
        if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return -EINVAL;
        c += len;
        if (*c == '/')
            c++;
    }
    return snprintf(out, size, "%s/%s", s->dir, path) < (int)size ? 0 : -EINVAL;
}

int pg_shard_mkdir(struct pg_shard *s, const char *path)
{
    char full[600];

    if (shard_path(s, path, full, sizeof(full)) < 0)
        return -EINVAL;
    return make_dirs(s, full) < 0 ? -1 : 0;
}

int pg_shard_remove(struct pg_shard *s, const char *path)
{
    char full[600];
    size_t len;

    if (shard_path(s, path, full, sizeof(full)) < 0)
        return -EINVAL;
    len = strlen(full);
    for (int i = 0; i < s->n; i++)
        if (s->nodes[i].name[0] && strncmp(s->nodes[i].datadir, full, len) == 0 &&
            (s->nodes[i].datadir[len] == '/' || s->nodes[i].datadir[len] == '\0')) {
            fprintf(stderr, "pg_harness: %s holds the data directory of %s\n", full,
                    s->nodes[i].name);
            return -EBUSY;
        }
    remove_dir(full);
    if (access(full, F_OK) == 0) {
        fprintf(stderr, "pg_harness: could not remove %s\n", full);
        return -1;
    }
    return 0;
}

/* ---- public: nodes --------------------------------------------------------------------- */

int pg_node_stop(struct pg_shard *s, int i, const char *mode)
{
    struct pg_node *node;
    char log[300];
    int sig;

    if (!valid_node(s, i) || !mode)
        return -EINVAL;
    if (strcmp(mode, "smart") == 0)
        sig = SIGTERM;
    else if (strcmp(mode, "fast") == 0)
        sig = SIGINT;
    else if (strcmp(mode, "immediate") == 0)
        sig = SIGQUIT;
    else
        return -EINVAL;
    node = &s->nodes[i];
    if (reap(node))
        return 0;
    kill(node->pid, sig);
    if (wait_stopped(node, now_ms() + NODE_STOP_TIMEOUT_MS) == 0)
        return 0;
    fprintf(stderr, "pg_harness: %s did not stop (%s) in %d ms\n", node->name, mode,
            NODE_STOP_TIMEOUT_MS);
    node_log_path(s, i, ".log", log, sizeof(log));
    print_log_tail(log);
    force_stop(node);
    return -1;
}

int pg_node_start(struct pg_shard *s, int i)
{
    char log[300];
    int r;

    if (!valid_node(s, i) || !s->dir[0])
        return -EINVAL;
    if (!reap(&s->nodes[i]))
        return 0;
    if (node_spawn(s, i) < 0)
        return -1;
    r = wait_ready(s, i, now_ms() + READY_TIMEOUT_MS);
    if (r == 0)
        return 0;
    if (r > 0)
        fprintf(stderr, "pg_harness: %s exited during start (port %d)\n", s->nodes[i].name,
                s->nodes[i].port);
    else
        fprintf(stderr, "pg_harness: %s (port %d) not accepting connections after %d ms\n",
                s->nodes[i].name, s->nodes[i].port, READY_TIMEOUT_MS);
    node_log_path(s, i, ".log", log, sizeof(log));
    print_log_tail(log);
    force_stop(&s->nodes[i]);
    return -1;
}

int pg_node_follow(struct pg_shard *s, int i, int primary)
{
    char path[600];
    FILE *f;
    int fd, rc;

    if (!valid_node(s, i) || !valid_node(s, primary) || i == primary || !s->dir[0])
        return -EINVAL;
    if (!reap(&s->nodes[i]))
        return -EBUSY;
    snprintf(path, sizeof(path), "%s/standby.signal", s->nodes[i].datadir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (as_postgres && fchown(fd, pg_uid, pg_gid) != 0)) {
        fprintf(stderr, "pg_harness: create %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    /* appended lines win over earlier ones; postgres owns the file and keeps owning it */
    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", s->nodes[i].datadir);
    f = fopen(path, "a");
    if (!f) {
        fprintf(stderr, "pg_harness: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "primary_conninfo = 'host=127.0.0.1 port=%d user=postgres'\n",
            s->nodes[primary].port);
    fprintf(f, "recovery_target_timeline = 'latest'\n");
    rc = ferror(f);
    if (fclose(f) != 0 || rc) {
        fprintf(stderr, "pg_harness: write %s failed\n", path);
        return -1;
    }
    return 0;
}

int pg_node_rewind(struct pg_shard *s, int i, int source)
{
    char program[300], log[300], server[160], what[160];
    char *argv[] = {program, "-D", s ? s->nodes[i].datadir : NULL, "--source-server", server, NULL};

    if (!valid_node(s, i) || !valid_node(s, source) || i == source || !s->dir[0])
        return -EINVAL;
    if (!reap(&s->nodes[i]))
        return -EBUSY;
    snprintf(program, sizeof(program), "%s/pg_rewind", pg_bindir);
    snprintf(server, sizeof(server), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
             s->nodes[source].port);
    node_log_path(s, i, ".rewind.log", log, sizeof(log));
    snprintf(what, sizeof(what), "pg_rewind of %s from %s", s->nodes[i].name,
             s->nodes[source].name);
    return run_tool(argv, s->dir, log, what) < 0 ? -1 : 0;
}

void pg_node_conninfo(const struct pg_shard *s, int i, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    buf[0] = '\0';
    if (valid_node(s, i))
        snprintf(buf, size,
                 "host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5",
                 s->nodes[i].port);
}

int pg_node_controldata(const struct pg_shard *s, int i, const char *field, char *out,
                        size_t out_size)
{
    char program[300], log[300], line[512], what[96];
    char *argv[] = {program, "-D", NULL, NULL};
    size_t field_len;
    FILE *f;
    int found = 0;

    if (!valid_node(s, i) || !field || !out || out_size == 0 || !s->dir[0])
        return -EINVAL;
    if (setup() < 0) /* a process that did not start the shard (a test's host child) */
        return -1;
    argv[2] = (char *)s->nodes[i].datadir;
    snprintf(program, sizeof(program), "%s/pg_controldata", pg_bindir);
    node_log_path(s, i, ".controldata", log, sizeof(log));
    snprintf(what, sizeof(what), "pg_controldata of %s", s->nodes[i].name);
    if (run_tool(argv, s->dir, log, what) < 0)
        return -1;
    f = fopen(log, "r");
    if (!f) {
        fprintf(stderr, "pg_harness: open %s: %s\n", log, strerror(errno));
        return -1;
    }
    field_len = strlen(field);
    while (!found && fgets(line, sizeof(line), f)) {
        char *value, *end;
        if (strncmp(line, field, field_len) != 0 || line[field_len] != ':')
            continue;
        value = line + field_len + 1;
        value += strspn(value, " \t");
        end = value + strlen(value);
        while (end > value && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
            *--end = '\0';
        snprintf(out, out_size, "%s", value);
        found = 1;
    }
    fclose(f);
    if (!found) {
        fprintf(stderr, "pg_harness: pg_controldata of %s has no line \"%s:\"\n", s->nodes[i].name,
                field);
        print_log_tail(log);
        return -1;
    }
    return 0;
}

/* ---- SQL with deadlines ---------------------------------------------------------------- */

static void copy_error(char *err, size_t size, const char *what, const char *message)
{
    size_t n;

    if (!err || size == 0)
        return;
    snprintf(err, size, "%s: %s", what, message && *message ? message : "unknown error");
    /* libpq's messages span lines ("...failed: Connection refused\n\tIs the server running"):
     * one line reads better in a report */
    for (char *c = err; *c; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Wait until conn's socket is ready: 1, 0 at the deadline, -1 on error. */
static int wait_socket(PGconn *conn, int for_write, int64_t deadline)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = for_write ? POLLOUT : POLLIN};

    if (p.fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - now_ms();
        int r;
        if (left <= 0)
            return 0;
        r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 1; /* also POLLERR and POLLHUP: libpq finds out what happened */
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int pg_harness_connect(const char *conninfo, int timeout_ms, PGconn **ret_conn, char *err,
                       size_t err_size)
{
    int64_t deadline = now_ms() + timeout_ms;
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;
    PGconn *conn = PQconnectStart(conninfo);

    if (!conn) {
        copy_error(err, err_size, "connect", "out of memory");
        return -1;
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
        copy_error(err, err_size, "connect", PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    for (;;) {
        int r;
        if (state == PGRES_POLLING_OK) {
            PQsetNoticeProcessor(conn, ignore_notice, NULL);
            *ret_conn = conn;
            return 0;
        }
        if (state == PGRES_POLLING_FAILED) {
            copy_error(err, err_size, "connect", PQerrorMessage(conn));
            PQfinish(conn);
            return -1;
        }
        r = wait_socket(conn, state == PGRES_POLLING_WRITING, deadline);
        if (r <= 0) {
            if (r == 0 && err && err_size)
                snprintf(err, err_size, "connect: timed out after %d ms", timeout_ms);
            else
                copy_error(err, err_size, "connect: poll", strerror(errno));
            PQfinish(conn);
            return r == 0 ? -ETIMEDOUT : -1;
        }
        state = PQconnectPoll(conn);
    }
}

static void describe_result_error(const PGresult *r, char *err, size_t size)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char text[400];

    if (!message) {
        copy_error(err, size, "query", PQresultErrorMessage(r));
        return;
    }
    snprintf(text, sizeof(text), "%s (SQLSTATE %s)", message, state ? state : "?");
    copy_error(err, size, "query", text);
}

/* Ask the server to cancel conn's running query (best effort: the caller closes conn next). */
static void cancel_query(PGconn *conn)
{
    char buf[256];
    PGcancel *cancel = PQgetCancel(conn);

    if (cancel) {
        /* a failed cancel is not reported: the caller closes the connection anyway */
        (void)PQcancel(cancel, buf, sizeof(buf));
        PQfreeCancel(cancel);
    }
}

int pg_harness_query(PGconn *conn, const char *sql, int timeout_ms, PGresult **ret_result,
                     char *err, size_t err_size)
{
    int64_t deadline = now_ms() + timeout_ms;
    PGresult *keep = NULL, *r;
    int failed = 0, flush;

    if (!PQsendQuery(conn, sql)) {
        copy_error(err, err_size, "send", PQerrorMessage(conn));
        return -1;
    }
    while ((flush = PQflush(conn)) != 0) {
        int w;
        if (flush < 0) {
            copy_error(err, err_size, "send", PQerrorMessage(conn));
            return -1;
        }
        w = wait_socket(conn, 1, deadline);
        if (w == 0)
            goto timed_out;
        if (w < 0 || !PQconsumeInput(conn)) {
            copy_error(err, err_size, "send", PQerrorMessage(conn));
            return -1;
        }
    }
    for (;;) {
        while (PQisBusy(conn)) {
            int w = wait_socket(conn, 0, deadline);
            if (w == 0)
                goto timed_out;
            if (w < 0 || !PQconsumeInput(conn)) {
                copy_error(err, err_size, "receive", PQerrorMessage(conn));
                PQclear(keep);
                return -1;
            }
        }
        r = PQgetResult(conn);
        if (!r)
            break;
        switch (PQresultStatus(r)) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_EMPTY_QUERY:
            if (keep && PQntuples(keep) > 0) {
                PQclear(r);
            } else {
                PQclear(keep);
                keep = r;
            }
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_COPY_BOTH:
            copy_error(err, err_size, "query", "COPY is not supported here");
            PQclear(r);
            PQclear(keep);
            return -1;
        default:
            if (!failed)
                describe_result_error(r, err, err_size);
            failed = 1;
            PQclear(r);
            break;
        }
    }
    if (failed) {
        PQclear(keep);
        return -1;
    }
    if (ret_result)
        *ret_result = keep;
    else
        PQclear(keep);
    return 0;
timed_out:
    cancel_query(conn);
    PQclear(keep);
    if (err && err_size)
        snprintf(err, err_size, "timed out after %d ms (cancelled)", timeout_ms);
    return -ETIMEDOUT;
}

/* One SQL string on node i over a fresh connection; see pg_sql. Prints nothing. */
static int node_sql(const struct pg_shard *s, int i, const char *sql, int timeout_ms, char *out,
                    size_t out_size, char *err, size_t err_size)
{
    int64_t deadline = now_ms() + timeout_ms;
    char conninfo[200];
    PGconn *conn;
    PGresult *r = NULL;
    int rc;

    if (out && out_size)
        out[0] = '\0';
    if (!valid_node(s, i) || !sql) {
        copy_error(err, err_size, "pg_sql", "no such node");
        return -1;
    }
    pg_node_conninfo(s, i, conninfo, sizeof(conninfo));
    rc = pg_harness_connect(conninfo, timeout_ms, &conn, err, err_size);
    if (rc < 0)
        return rc;
    rc = pg_harness_query(conn, sql, remaining_ms(deadline), &r, err, err_size);
    if (rc == 0 && out && out_size && r && PQresultStatus(r) == PGRES_TUPLES_OK &&
        PQntuples(r) > 0 && PQnfields(r) > 0 && !PQgetisnull(r, 0, 0))
        snprintf(out, out_size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int pg_sql(const struct pg_shard *s, int i, const char *sql, int timeout_ms, char *out,
           size_t out_size)
{
    char err[512];
    int rc = node_sql(s, i, sql, timeout_ms, out, out_size, err, sizeof(err));

    if (rc < 0)
        fprintf(stderr, "pg_sql %s (port %d): %s: %s\n", valid_node(s, i) ? s->nodes[i].name : "?",
                valid_node(s, i) ? s->nodes[i].port : 0, sql ? sql : "(null)", err);
    return rc;
}

int pg_sql_wait(const struct pg_shard *s, int i, const char *sql, const char *expect,
                int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    char out[256], err[512];
    int rc;

    for (;;) {
        int try_ms = remaining_ms(deadline);
        rc = node_sql(s, i, sql, try_ms < SQL_TRY_TIMEOUT_MS ? try_ms : SQL_TRY_TIMEOUT_MS, out,
                      sizeof(out), err, sizeof(err));
        if (rc == 0 && strcmp(out, expect) == 0)
            return 0;
        if (now_ms() >= deadline)
            break;
        sleep_ms(50);
    }
    fprintf(stderr,
            "pg_harness: %s (port %d): waited %d ms for [%s] to give \"%s\"; last: %s%s%s\n",
            valid_node(s, i) ? s->nodes[i].name : "?", valid_node(s, i) ? s->nodes[i].port : 0,
            timeout_ms, sql, expect, rc == 0 ? "\"" : "", rc == 0 ? out : err, rc == 0 ? "\"" : "");
    return -ETIMEDOUT;
}
