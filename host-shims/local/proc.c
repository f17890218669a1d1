/* The processes of a local cluster; see proc.h. */
#define _DEFAULT_SOURCE /* setgroups, mkdtemp */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proc.h"

#define TOOL_TIMEOUT_MS 300000 /* initdb, pg_basebackup, pg_rewind */
#define CTL_TIMEOUT_S   "120"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void proc_path(const struct proc_env *env, const char *rel, char *buf, size_t size)
{
    int n = rel[0] == '/' ? snprintf(buf, size, "%s", rel)
                          : snprintf(buf, size, "%s/%s", env->dir, rel);
    /* a path cut short could name a parent of the one meant: name nothing instead */
    if (n < 0 || (size_t)n >= size || strstr(buf, "/../") ||
        (strlen(buf) >= 3 && strcmp(buf + strlen(buf) - 3, "/..") == 0))
        (void)snprintf(buf, size, "%s/.invalid-path", env->dir);
}

static int find_bindir(char *out, size_t size)
{
    const char *env = getenv("MGO_PG_BINDIR");
    glob_t g;
    if (env && *env) {
        (void)snprintf(out, size, "%s", env);
        return 0;
    }
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0)
        return -1;
    /* the highest major version: compare numerically */
    int best = -1;
    long best_v = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (v > best_v) {
            best_v = v;
            best = (int)i;
        }
    }
    if (best >= 0) {
        (void)snprintf(out, size, "%s", g.gl_pathv[best]);
        *strrchr(out, '/') = '\0';
    }
    globfree(&g);
    return best >= 0 ? 0 : -1;
}

static int make_dir(const struct proc_env *env, const char *path, mode_t mode, int for_pg)
{
    int made = mkdir(path, mode) == 0;
    if (!made && errno != EEXIST)
        return -1;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR; /* a link or a file where a directory belongs: not followed */
        return -1;
    }
    if (made && chmod(path, mode) != 0) /* whatever the umask */
        return -1;
    if (for_pg && env->as_postgres &&
        fchownat(AT_FDCWD, path, env->pg_uid, env->pg_gid, AT_SYMLINK_NOFOLLOW) != 0)
        return -1;
    return 0;
}

int proc_env_init(struct proc_env *env, const char *dir, char *err, size_t err_size)
{
    memset(env, 0, sizeof(*env));
    if (find_bindir(env->bindir, sizeof(env->bindir)) != 0)
        return fail(err, err_size,
                    "PostgreSQL's programs were not found under /usr/lib/postgresql/*/bin (install "
                    "the postgresql package, or set MGO_PG_BINDIR)");
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw)
            return fail(err, err_size,
                        "running as root, PostgreSQL must run as the user 'postgres', which does "
                        "not exist (install the postgresql package)");
        env->as_postgres = 1;
        env->pg_uid = pw->pw_uid;
        env->pg_gid = pw->pw_gid;
    }
    if (strlen(dir) >= sizeof(env->dir) - 64 || dir[0] != '/')
        return fail(err, err_size,
                    "the state directory %s: must be an absolute path of at most %zu bytes", dir,
                    sizeof(env->dir) - 64);
    for (const char *c = dir; *c; c++)
        if (*c == ' ' || *c == '\'' || *c == '"' || *c == '\\')
            return fail(err, err_size,
                        "the state directory %s: spaces, quotes and backslashes are not allowed "
                        "(PostgreSQL settings and conninfo strings carry it)",
                        dir);
    (void)snprintf(env->dir, sizeof(env->dir), "%s", dir);
    (void)snprintf(env->passfile, sizeof(env->passfile), "%s/pgpass", dir);
    (void)snprintf(env->superuser, sizeof(env->superuser), "postgres");
    /* the state directory (and its missing parents, made 0755) and the cluster's (0711) */
    char parent[600];
    (void)snprintf(parent, sizeof(parent), "%s", dir);
    for (char *p = parent + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        mode_t mode = c ? 0755 : 0711;
        if (mkdir(parent, mode) == 0) {
            if (chmod(parent, mode) != 0) /* whatever the umask */
                return fail(err, err_size, "chmod %s: %s", parent, strerror(errno));
        } else if (errno != EEXIST) {
            return fail(err, err_size, "mkdir %s: %s", parent, strerror(errno));
        }
        if (c == '\0')
            break;
        *p = c;
    }
    /* PostgreSQL's user must pass every directory down to the cluster's: one it cannot enter
     * is named, not changed (it is the user's) */
    for (char *p = parent + 1; env->as_postgres; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        struct stat st;
        *p = '\0';
        if (stat(parent, &st) != 0)
            return fail(err, err_size, "stat %s: %s", parent, strerror(errno));
        if (!(st.st_mode & S_IXOTH) && st.st_uid != env->pg_uid &&
            !(st.st_gid == env->pg_gid && (st.st_mode & S_IXGRP)))
            return fail(err, err_size,
                        "PostgreSQL runs as the user postgres, which cannot enter %s: run "
                        "'chmod o+x %s', or choose a --state-dir it can reach (as root the "
                        "default is /var/lib/mgo)",
                        parent, parent);
        if (c == '\0')
            break;
        *p = c;
    }
    char logs[600];
    (void)snprintf(logs, sizeof(logs), "%s/logs", dir);
    if (make_dir(env, logs, 0711, 0) != 0)
        return fail(err, err_size, "mkdir %s: %s", logs, strerror(errno));
    return 0;
}

static int write_file(const struct proc_env *env, const char *path, const char *text, int for_pg)
{
    char tmp[700];
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* PostgreSQL's user owns the data directory and could plant a link where mgo (root)
     * writes: the temporary file is created anew, never through a link, and renamed over the
     * name (rename replaces a link, it does not follow it) */
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    if ((for_pg && env->as_postgres && fchown(fd, env->pg_uid, env->pg_gid) != 0) ||
        fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    if (close(fd) != 0)
        return -1;
    return rename(tmp, path);
}

int proc_write_password(const struct proc_env *env, const char *password, int generated, char *err,
                        size_t err_size)
{
    char line[1024], path[700];
    size_t o = (size_t)snprintf(line, sizeof(line), "127.0.0.1:*:*:");
    for (const char *c = env->superuser; *c && o + 3 < sizeof(line); c++) {
        if (*c == ':' || *c == '\\')
            line[o++] = '\\';
        line[o++] = *c;
    }
    line[o++] = ':';
    for (const char *c = password; *c && o + 3 < sizeof(line); c++) {
        if (*c == ':' || *c == '\\')
            line[o++] = '\\';
        line[o++] = *c;
    }
    line[o++] = '\n';
    line[o] = '\0';
    if (strpbrk(password, "\n\r") || o + 3 >= sizeof(line))
        return fail(err, err_size, "the superuser password has a line break or is too long");
    if (write_file(env, env->passfile, line, 1) != 0)
        return fail(err, err_size, "write %s: %s", env->passfile, strerror(errno));
    if (generated) {
        (void)snprintf(path, sizeof(path), "%s/password", env->dir);
        (void)snprintf(line, sizeof(line), "%s\n", password);
        if (write_file(env, path, line, 0) != 0)
            return fail(err, err_size, "write %s: %s", path, strerror(errno));
    }
    return 0;
}

int proc_mkdir(const struct proc_env *env, const char *rel, int for_pg, char *err, size_t err_size)
{
    char path[700];
    proc_path(env, rel, path, sizeof(path));
    size_t base = strlen(env->dir);
    if (strncmp(path, env->dir, base) != 0 || path[base] != '/')
        return fail(err, err_size, "%s is not under %s", path, env->dir);
    for (char *p = path + base + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (make_dir(env, path, 0700, for_pg) != 0)
            return fail(err, err_size, "mkdir %s: %s", path, strerror(errno));
        if (c == '\0')
            return 0;
        *p = c;
    }
}

/* Remove what `dirfd` holds under `name`, never through a link: each directory is opened
 * with O_NOFOLLOW relative to its parent, so one replaced by a link meanwhile is unlinked as a
 * link, not followed. */
static int remove_at(int at, const char *name, int depth)
{
    if (unlinkat(at, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > 64)
        return -1;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            remove_at(dirfd(d), e->d_name, depth + 1) != 0)
            rc = -1;
    closedir(d);
    return rc == 0 && unlinkat(at, name, AT_REMOVEDIR) != 0 && errno != ENOENT ? -1 : rc;
}

static int remove_tree(const char *path)
{
    char parent[700];
    (void)snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1])
        return -1;
    *slash = '\0';
    int dirfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = remove_at(dirfd, slash + 1, 0);
    close(dirfd);
    return rc;
}

int proc_remove_purged(const char *path, char *err, size_t err_size)
{
    const char *base = strrchr(path, '/');
    if (!base || strncmp(base + 1, ".purge.", 7) != 0 || strstr(path, "/../"))
        return fail(err, err_size, "%s is not a purged cluster directory", path);
    if (remove_tree(path) != 0)
        return fail(err, err_size, "remove %s: %s", path, strerror(errno));
    return 0;
}

int proc_remove(const struct proc_env *env, const char *rel, char *err, size_t err_size)
{
    char path[700];
    proc_path(env, rel, path, sizeof(path));
    size_t base = strlen(env->dir);
    if (strncmp(path, env->dir, base) != 0 || (path[base] != '/' && path[base] != '\0') ||
        strstr(path, "/../"))
        return fail(err, err_size, "%s is not under %s", path, env->dir);
    if (remove_tree(path) != 0)
        return fail(err, err_size, "remove %s: %s", path, strerror(errno));
    return 0;
}

/* ---- running programs ---------------------------------------------------------------------- */

/* Start argv (as PostgreSQL's user when as_pg), its output appended to `log`, in a process
 * group of its own. 0 with job filled, or -1. */
static int spawn(const struct proc_env *env, char *const argv[], int as_pg, const char *log,
                 struct proc_job *job, char *err, size_t err_size)
{
    pid_t parent = getpid();
    (void)snprintf(job->log, sizeof(job->log), "%s", log);
    (void)snprintf(job->program, sizeof(job->program), "%s", argv[0]);
    job->pid = fork();
    if (job->pid < 0)
        return fail(err, err_size, "fork: %s", strerror(errno));
    if (job->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        (void)setpgid(0, 0);
        if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        if (as_pg && env->as_postgres &&
            (fchown(fd, env->pg_uid, env->pg_gid) != 0 || setgroups(0, NULL) != 0 ||
             setgid(env->pg_gid) != 0 || setuid(env->pg_uid) != 0))
            _exit(126);
        /* a tool dies with mgo (set after the credentials change, which clears it): a killed
         * command leaves no initdb or pg_basebackup writing into a directory the next one
         * removes. pg_ctl's postmaster is not affected: pg_ctl forks it into a session of its
         * own, and the signal is not inherited across fork. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        if (chdir(env->dir) != 0)
            _exit(126);
        if (as_pg) {
            (void)setenv("PGPASSFILE", env->passfile, 1);
            (void)setenv("PGCONNECT_TIMEOUT", "10", 1);
        }
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return 0;
}

int proc_wait(struct proc_job *job, int timeout_ms, char *err, size_t err_size)
{
    long long deadline = mono_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(job->pid, &status, WNOHANG);
        if (r == job->pid)
            break;
        if (r < 0 && errno != EINTR)
            return fail(err, err_size, "waitpid: %s", strerror(errno));
        if (mono_ms() > deadline) {
            (void)kill(-job->pid, SIGKILL);
            (void)kill(job->pid, SIGKILL);
            (void)waitpid(job->pid, &status, 0);
            return fail(err, err_size, "%s did not finish within %d s (log: %s)", job->program,
                        timeout_ms / 1000, job->log);
        }
        sleep_ms(20);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    /* the log's last line says why */
    char last[300] = "";
    FILE *f = fopen(job->log, "r");
    if (f) {
        char line[300];
        while (fgets(line, sizeof(line), f))
            if (line[0] != '\n')
                (void)snprintf(last, sizeof(last), "%s", line);
        fclose(f);
        last[strcspn(last, "\n")] = '\0';
    }
    return fail(err, err_size, "%s failed (%s %d): %s (log: %s)", job->program,
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), last, job->log);
}

/* Run argv and wait up to timeout_ms (then SIGKILL): 0, or -1 with err. */
static int run(const struct proc_env *env, char *const argv[], int as_pg, const char *log,
               int timeout_ms, char *err, size_t err_size)
{
    struct proc_job job;
    if (spawn(env, argv, as_pg, log, &job, err, err_size) != 0)
        return -1;
    return proc_wait(&job, timeout_ms, err, err_size);
}

static void tool(const struct proc_env *env, const char *name, char *buf, size_t size)
{
    (void)snprintf(buf, size, "%s/%s", env->bindir, name);
}

static void log_path(const struct proc_env *env, const char *name, const char *suffix, char *buf,
                     size_t size)
{
    (void)snprintf(buf, size, "%s/logs/%s%s", env->dir, name, suffix);
}

/* Whether /proc/<pid>/cmdline has the argument `flag` followed by exactly `value` (or, with
 * flag NULL, any argument exactly `value`). A substring would match another state directory
 * whose path contains this one. */
static int cmdline_arg(pid_t pid, const char *flag, const char *value)
{
    char path[64], buf[8192];
    (void)snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *prev = NULL;
    for (const char *arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
        if (strcmp(arg, value) == 0 && (!flag || (prev && strcmp(prev, flag) == 0)))
            return 1;
        prev = arg;
    }
    return 0;
}

/* A live process (a zombie child is reaped and counts as gone). */
static int alive(pid_t pid)
{
    int st;
    if (pid <= 0)
        return 0;
    if (waitpid(pid, &st, WNOHANG) == pid)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    char path[64], buf[256];
    (void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int zombie = fgets(buf, sizeof(buf), f) && strstr(buf, ") Z");
    fclose(f);
    return !zombie;
}

int proc_port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int e = 0;
        socklen_t el = sizeof(e);
        ok = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0;
    }
    close(fd);
    return ok;
}

void proc_pg_postmasters(const struct proc_env *env,
                         void (*cb)(void *ctx, pid_t pid, const char *datadir), void *ctx)
{
    size_t base = strlen(env->dir);
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end, path[64], buf[8192];
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        (void)snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        const char *prev = NULL;
        for (const char *arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
            if (prev && strcmp(prev, "-D") == 0 && strncmp(arg, env->dir, base) == 0 &&
                arg[base] == '/' && alive((pid_t)pid)) {
                cb(ctx, (pid_t)pid, arg);
                break;
            }
            prev = arg;
        }
    }
    if (d)
        closedir(d);
}

int proc_kill_users(const struct proc_env *env, const char *rel)
{
    char path[700];
    proc_path(env, rel, path, sizeof(path));
    int killed = 0;
    for (int round = 0; round < 50; round++) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        int found = 0;
        while (d && (e = readdir(d)) != NULL) {
            char *end;
            long pid = strtol(e->d_name, &end, 10);
            if (*end || pid <= 1 || pid == (long)getpid())
                continue;
            /* initdb's `postgres --single` names its directory only in PGDATA and its working
             * directory */
            char cwdlink[64], cwd[700];
            (void)snprintf(cwdlink, sizeof(cwdlink), "/proc/%ld/cwd", pid);
            ssize_t cl = readlink(cwdlink, cwd, sizeof(cwd) - 1);
            cwd[cl > 0 ? cl : 0] = '\0';
            size_t plen = strlen(path);
            int inside =
                cl > 0 && strncmp(cwd, path, plen) == 0 && (cwd[plen] == '\0' || cwd[plen] == '/');
            if (!inside && !cmdline_arg((pid_t)pid, NULL, path))
                continue;
            if (alive((pid_t)pid)) {
                (void)kill((pid_t)pid, SIGKILL);
                found++;
            }
        }
        if (d)
            closedir(d);
        killed += found;
        if (!found)
            return killed;
        sleep_ms(100);
    }
    return -1;
}

/* ---- etcd ---------------------------------------------------------------------------------- */

static void etcd_pidfile(const struct proc_env *env, const char *name, char *buf, size_t size)
{
    (void)snprintf(buf, size, "%s/etcd/%s.pid", env->dir, name);
}

/* The number on the first line of a pid file, or 0. */
static long pid_in_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

pid_t proc_etcd_pid(const struct proc_env *env, const char *name)
{
    char path[700];
    etcd_pidfile(env, name, path, sizeof(path));
    long pid = pid_in_file(path);
    char data[700];
    (void)snprintf(data, sizeof(data), "%s/etcd/%s", env->dir, name);
    return pid > 0 && alive((pid_t)pid) && cmdline_arg((pid_t)pid, "--name", name) &&
                   cmdline_arg((pid_t)pid, "--data-dir", data)
               ? (pid_t)pid
               : 0;
}

static const char *etcd_program(void)
{
    const char *e = getenv("MGO_ETCD");
    if (e && *e)
        return e;
    return access("/usr/bin/etcd", X_OK) == 0 ? "/usr/bin/etcd" : "etcd";
}

int proc_etcd_start(const struct proc_env *env, const char *name, const char *datadir, int client,
                    int peer, int timeout_ms, char *err, size_t err_size)
{
    char data[700], pidfile[700], log[700], cu[64], pu[64], cluster[160];
    proc_path(env, datadir, data, sizeof(data));
    etcd_pidfile(env, name, pidfile, sizeof(pidfile));
    log_path(env, name, ".log", log, sizeof(log));
    if (proc_mkdir(env, "etcd", 0, err, err_size) != 0)
        return -1;
    (void)snprintf(cu, sizeof(cu), "http://127.0.0.1:%d", client);
    (void)snprintf(pu, sizeof(pu), "http://127.0.0.1:%d", peer);
    (void)snprintf(cluster, sizeof(cluster), "%s=%s", name, pu);
    char *argv[] = {(char *)etcd_program(),
                    "--name",
                    (char *)name,
                    "--data-dir",
                    data,
                    "--listen-client-urls",
                    cu,
                    "--advertise-client-urls",
                    cu,
                    "--listen-peer-urls",
                    pu,
                    "--initial-advertise-peer-urls",
                    pu,
                    "--initial-cluster",
                    cluster,
                    "--initial-cluster-state",
                    "new",
                    NULL};
    /* a port that answers already is another server's: ours would fail to bind, and mgo
     * would talk to that one */
    if (proc_port_open(client) || proc_port_open(peer))
        return fail(err, err_size,
                    "etcd %s: port %d or %d on 127.0.0.1 is in use by another program: stop that "
                    "program, or, for a cluster just created, 'mgo down --purge' it and run "
                    "'mgo up --port-base N' with a free block",
                    name, client, peer);
    pid_t pid = fork();
    if (pid < 0)
        return fail(err, err_size, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* a session of its own: it outlives mgo and no terminal signal reaches it */
        (void)setsid();
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
            chdir(env->dir) != 0)
            _exit(126);
        /* the pid file before exec: a crash of mgo right after the fork leaves it findable */
        char tmp[720], num[32];
        (void)snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
        int p = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int len = snprintf(num, sizeof(num), "%ld\n", (long)getpid());
        if (p < 0 || write(p, num, (size_t)len) != len || close(p) != 0 || rename(tmp, pidfile))
            _exit(126);
        (void)setenv("ETCD_UNSUPPORTED_ARCH", "", 0);
        execvp(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    long long deadline = mono_ms() + timeout_ms;
    while (mono_ms() < deadline) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return fail(err, err_size, "etcd %s exited at start (log: %s)", name, log);
        /* the port answers and our etcd still runs (not another one that took the port) */
        if (proc_port_open(client) && waitpid(pid, &st, WNOHANG) == 0)
            return 0;
        sleep_ms(50);
    }
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, 0);
    return fail(err, err_size, "etcd %s did not answer on port %d within %d s (log: %s)", name,
                client, timeout_ms / 1000, log);
}

static int stop_pid(pid_t pid, int sig, int wait_ms)
{
    (void)kill(pid, sig);
    long long deadline = mono_ms() + wait_ms;
    while (alive(pid) && mono_ms() < deadline)
        sleep_ms(20);
    return alive(pid) ? -1 : 0;
}

int proc_etcd_stop(const struct proc_env *env, const char *name, char *err, size_t err_size)
{
    pid_t pid = proc_etcd_pid(env, name);
    if (pid == 0)
        return 0;
    if (stop_pid(pid, SIGTERM, 10000) == 0 || stop_pid(pid, SIGKILL, 5000) == 0)
        return 0;
    return fail(err, err_size, "etcd %s (pid %ld) did not stop", name, (long)pid);
}

/* ---- PostgreSQL ---------------------------------------------------------------------------- */

void proc_pg_conninfo(const struct proc_env *env, int port, char *buf, size_t size)
{
    /* the user name may hold anything a role name can: quoted as libpq reads values */
    char user[160];
    size_t o = 0;
    for (const char *c = env->superuser; *c && o + 3 < sizeof(user); c++) {
        if (*c == '\'' || *c == '\\')
            user[o++] = '\\';
        user[o++] = *c;
    }
    user[o] = '\0';
    /* env->dir is at most 448 bytes, so the password file's path fits in 470 */
    int n = snprintf(buf, size,
                     "host=127.0.0.1 port=%d user='%s' dbname=postgres passfile=%.470s "
                     "connect_timeout=5 sslmode=disable",
                     port, user, env->passfile);
    if (n < 0 || (size_t)n >= size)
        buf[0] = '\0'; /* never a conninfo cut short; the callers' buffers are 1100 bytes */
}

int proc_pg_exists(const struct proc_env *env, const char *datadir)
{
    char path[700];
    proc_path(env, datadir, path, sizeof(path));
    (void)snprintf(path + strlen(path), sizeof(path) - strlen(path), "/PG_VERSION");
    return access(path, F_OK) == 0;
}

pid_t proc_pg_pid(const struct proc_env *env, const char *datadir)
{
    char path[700];
    proc_path(env, datadir, path, sizeof(path));
    (void)snprintf(path + strlen(path), sizeof(path) - strlen(path), "/postmaster.pid");
    long pid = pid_in_file(path);
    /* a stale postmaster.pid (after a reboot) may name any process now: the postmaster's
     * command line holds its data directory */
    char dir[700];
    proc_path(env, datadir, dir, sizeof(dir));
    return pid > 0 && alive((pid_t)pid) && cmdline_arg((pid_t)pid, "-D", dir) ? (pid_t)pid : 0;
}

int proc_pg_initdb(const struct proc_env *env, const char *name, const char *datadir,
                   const char *password, const char *const *args, char *err, size_t err_size)
{
    char program[300], data[700], pwfile[700], log[700], user[80];
    char *argv[48];
    int n = 0;
    tool(env, "initdb", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    log_path(env, name, ".initdb.log", log, sizeof(log));
    (void)snprintf(pwfile, sizeof(pwfile), "%s/logs/.%s.pw", env->dir, name);
    (void)snprintf(user, sizeof(user), "--username=%s", env->superuser);
    char line[600];
    (void)snprintf(line, sizeof(line), "%s\n", password);
    if (write_file(env, pwfile, line, 1) != 0)
        return fail(err, err_size, "write %s: %s", pwfile, strerror(errno));
    char pwarg[720];
    (void)snprintf(pwarg, sizeof(pwarg), "--pwfile=%s", pwfile);
    argv[n++] = program;
    argv[n++] = "-D";
    argv[n++] = data;
    argv[n++] = user;
    argv[n++] = pwarg;
    argv[n++] = "--auth-host=scram-sha-256";
    argv[n++] = "--auth-local=peer";
    argv[n++] = "--no-sync";
    for (int i = 0; args && args[i] && n < 46; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int rc = run(env, argv, 1, log, TOOL_TIMEOUT_MS, err, err_size);
    (void)unlink(pwfile);
    return rc;
}

int proc_pg_basebackup_spawn(const struct proc_env *env, const char *name, const char *datadir,
                             int source_port, struct proc_job *job, char *err, size_t err_size)
{
    char program[300], data[700], log[700], from[1100];
    tool(env, "pg_basebackup", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    log_path(env, name, ".basebackup.log", log, sizeof(log));
    proc_pg_conninfo(env, source_port, from, sizeof(from));
    char *argv[] = {program, "-D", data, "-X", "stream", "-c", "fast", "-d", from, NULL};
    return spawn(env, argv, 1, log, job, err, err_size);
}

int proc_pg_copy_spawn(const struct proc_env *env, const char *name, const char *from,
                       const char *to, struct proc_job *job, char *err, size_t err_size)
{
    char src[700], dst[700], log[700];
    proc_path(env, from, src, sizeof(src));
    proc_path(env, to, dst, sizeof(dst));
    log_path(env, name, ".copy.log", log, sizeof(log));
    char *argv[] = {"/bin/cp", "-a", "--", src, dst, NULL};
    return spawn(env, argv, 1, log, job, err, err_size);
}

int proc_pg_basebackup(const struct proc_env *env, const char *name, const char *datadir,
                       int source_port, char *err, size_t err_size)
{
    struct proc_job job;
    if (proc_pg_basebackup_spawn(env, name, datadir, source_port, &job, err, err_size) != 0)
        return -1;
    return proc_wait(&job, TOOL_TIMEOUT_MS, err, err_size);
}

int proc_pg_conf_defer(const struct proc_env *env, const char *datadir, const char *const *settings,
                       char *err, size_t err_size)
{
    char path[700], line[1024];
    proc_path(env, datadir, path, sizeof(path));
    (void)snprintf(path + strlen(path), sizeof(path) - strlen(path), "/postgresql.conf");
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, err_size, "open %s: %s", path, strerror(errno));
    size_t cap = 65536, len = 0;
    char *out = malloc(cap);
    while (out && fgets(line, sizeof(line), f)) {
        const char *p = line + strspn(line, " \t");
        size_t n = strcspn(p, " \t=");
        int deferred = 0;
        for (int i = 0; settings && settings[i] && n && !deferred; i++)
            deferred = strncasecmp(settings[i], p, n) == 0 && settings[i][n] == '=';
        size_t need = strlen(line) + 32;
        if (len + need >= cap) {
            char *bigger = realloc(out, cap * 2);
            if (!bigger) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
            cap *= 2;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                deferred ? "#(mgo: command line) " : "", line);
    }
    fclose(f);
    if (!out)
        return fail(err, err_size, "out of memory");
    int rc = write_file(env, path, out, 1);
    free(out);
    return rc == 0 ? 0 : fail(err, err_size, "write %s: %s", path, strerror(errno));
}

int proc_pg_follow(const struct proc_env *env, const char *datadir, int primary_port, char *err,
                   size_t err_size)
{
    char path[700], ci[1100];
    proc_path(env, datadir, path, sizeof(path));
    size_t base = strlen(path);
    (void)snprintf(path + base, sizeof(path) - base, "/standby.signal");
    if (write_file(env, path, "", 1) != 0)
        return fail(err, err_size, "write %s: %s", path, strerror(errno));
    /* appended lines win over earlier ones (ALTER SYSTEM rewrites the file without them) */
    (void)snprintf(path + base, sizeof(path) - base, "/postgresql.auto.conf");
    proc_pg_conninfo(env, primary_port, ci, sizeof(ci));
    int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return fail(err, err_size, "open %s: %s", path, strerror(errno));
    }
    /* a configuration string: a quote inside doubles */
    fputs("primary_conninfo = '", f);
    for (const char *c = ci; *c; c++) {
        if (*c == '\'')
            fputc('\'', f);
        fputc(*c, f);
    }
    fputs("'\nrecovery_target_timeline = 'latest'\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return fail(err, err_size, "write %s failed", path);
    return 0;
}

int proc_pg_rewind(const struct proc_env *env, const char *name, const char *datadir,
                   int source_port, char *err, size_t err_size)
{
    char program[300], data[700], log[700], from[1100];
    tool(env, "pg_rewind", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    log_path(env, name, ".rewind.log", log, sizeof(log));
    proc_pg_conninfo(env, source_port, from, sizeof(from));
    char *argv[] = {program, "-D", data, "--source-server", from, NULL};
    return run(env, argv, 1, log, TOOL_TIMEOUT_MS, err, err_size);
}

int proc_pg_controldata(const struct proc_env *env, const char *datadir, const char *field,
                        char *out, size_t size)
{
    char program[300], data[700], log[700], e[300];
    tool(env, "pg_controldata", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    (void)snprintf(log, sizeof(log), "%s/logs/.controldata.%ld", env->dir, (long)getpid());
    (void)unlink(log);
    char *argv[] = {program, "-D", data, NULL};
    int rc = run(env, argv, 1, log, 30000, e, sizeof(e));
    FILE *f = rc == 0 ? fopen(log, "r") : NULL;
    int found = 0;
    char line[512];
    size_t flen = strlen(field);
    while (f && !found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) != 0 || line[flen] != ':')
            continue;
        char *v = line + flen + 1;
        v += strspn(v, " \t");
        v[strcspn(v, "\r\n")] = '\0';
        (void)snprintf(out, size, "%s", v);
        found = 1;
    }
    if (f)
        fclose(f);
    (void)unlink(log);
    return found ? 0 : -1;
}

/* Append s to the shell-quoted option string o. */
static int quote_append(char *o, size_t size, size_t *len, const char *s)
{
    if (*len + 2 >= size)
        return -1;
    o[(*len)++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t plen = piece ? 4 : 1;
        if (*len + plen + 2 >= size)
            return -1;
        if (piece) {
            memcpy(o + *len, piece, plen);
            *len += plen;
        } else {
            o[(*len)++] = *s;
        }
    }
    o[(*len)++] = '\'';
    o[*len] = '\0';
    return 0;
}

int proc_pg_start(const struct proc_env *env, const char *name, const char *datadir,
                  const char *const *settings, char *err, size_t err_size)
{
    char program[300], data[700], log[700], ctl_log[700];
    size_t olen = 0, osize = 16384;
    char *opts = calloc(1, osize);
    if (!opts)
        return fail(err, err_size, "out of memory");
    tool(env, "pg_ctl", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    log_path(env, name, ".log", log, sizeof(log));
    log_path(env, name, ".ctl.log", ctl_log, sizeof(ctl_log));
    for (int i = 0; settings && settings[i]; i++) {
        char s[1400];
        const char *v = settings[i];
        if (strncmp(v, "unix_socket_directories=", 24) == 0 && v[24] != '/') {
            char rel[700];
            (void)snprintf(rel, sizeof(rel), "%s", v + 24);
            /* PostgreSQL refuses a socket path (<dir>/.s.PGSQL.<port>) over 107 bytes: when the
             * rendered directory is too long, a short one in the cluster's directory,
             * sock/<hash of the instance's name> */
            if (strlen(env->dir) + 1 + strlen(rel) + strlen("/.s.PGSQL.65535") > 107) {
                uint32_t hash = 2166136261u;
                for (const char *c = name; *c; c++)
                    hash = (hash ^ (unsigned char)*c) * 16777619u;
                (void)snprintf(rel, sizeof(rel), "sock/%08x", hash);
            }
            (void)snprintf(s, sizeof(s), "unix_socket_directories=%s/%s", env->dir, rel);
            size_t len = strlen(s + 24) + strlen("/.s.PGSQL.65535");
            if (len > 107) {
                free(opts);
                return fail(err, err_size,
                            "%s: its socket path %s/.s.PGSQL.<port> is %zu bytes, PostgreSQL "
                            "allows 107: choose a shorter --state-dir",
                            name, s + 24, len);
            }
            if (proc_mkdir(env, rel, 1, err, err_size) != 0) {
                free(opts);
                return -1;
            }
            v = s;
        }
        if (olen + 4 >= osize || (opts[olen++] = ' ', opts[olen++] = '-', opts[olen++] = 'c',
                                  opts[olen++] = ' ', quote_append(opts, osize, &olen, v) != 0)) {
            free(opts);
            return fail(err, err_size, "%s: the command line is too long", name);
        }
    }
    /* the server's log is created for its user */
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || (env->as_postgres && fchown(fd, env->pg_uid, env->pg_gid) != 0)) {
        if (fd >= 0)
            close(fd);
        free(opts);
        return fail(err, err_size, "open %s: %s", log, strerror(errno));
    }
    close(fd);
    char *argv[] = {program, "-D",          data, "-l", log,     "-w",
                    "-t",    CTL_TIMEOUT_S, "-o", opts, "start", NULL};
    int rc = run(env, argv, 1, ctl_log, 150000, err, err_size);
    free(opts);
    if (rc != 0) {
        /* pg_ctl says only "examine the log": the server's last FATAL or ERROR says why */
        char line[512], why[512] = "";
        FILE *f = fopen(log, "r");
        while (f && fgets(line, sizeof(line), f))
            if (strstr(line, "FATAL:") || strstr(line, "ERROR:") || strstr(line, "PANIC:"))
                (void)snprintf(why, sizeof(why), "%s", line);
        if (f)
            fclose(f);
        why[strcspn(why, "\n")] = '\0';
        (void)snprintf(err, err_size, "%s did not start: %s (log: %s)", name,
                       why[0] ? why : "see its log", log);
    }
    return rc;
}

int proc_pg_stop(const struct proc_env *env, const char *datadir, const char *mode, char *err,
                 size_t err_size)
{
    char program[300], data[700], log[700];
    if (proc_pg_pid(env, datadir) == 0)
        return 0;
    tool(env, "pg_ctl", program, sizeof(program));
    proc_path(env, datadir, data, sizeof(data));
    (void)snprintf(log, sizeof(log), "%s/logs/.pg_ctl-stop.log", env->dir);
    char *argv[] = {program, "-D", data, "-m", (char *)mode, "-w", "-t", "60", "stop", NULL};
    int rc = run(env, argv, 1, log, 70000, err, err_size);
    if (rc != 0 && strcmp(mode, "fast") == 0) {
        argv[4] = "immediate";
        rc = run(env, argv, 1, log, 70000, err, err_size);
    }
    if (rc != 0 && proc_pg_pid(env, datadir) == 0)
        rc = 0; /* it stopped meanwhile */
    return rc;
}
