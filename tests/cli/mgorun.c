/* Running the real mgo binary from a test (see mgorun.h). */
#define _DEFAULT_SOURCE     /* wait4, struct rusage */
#define _XOPEN_SOURCE   700 /* nftw */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "mgorun.h"

#define POLL_MS     20
#define MAX_RUNNING 8

/* The children running now (any thread's), for mgorun_kill_running(). */
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t running[MAX_RUNNING];
static int only_set; /* after mgorun_kill_running(): only its thread starts commands */
static pthread_t only_thread;

/* Under running_lock. */
static void running_set(pid_t pid, int add)
{
    for (int i = 0; i < MAX_RUNNING; i++)
        if (add ? running[i] == 0 : running[i] == pid) {
            running[i] = add ? pid : 0;
            break;
        }
}

int mgorun_kill_running(void)
{
    int n = 0;
    pthread_mutex_lock(&running_lock);
    only_set = 1;
    only_thread = pthread_self();
    for (int i = 0; i < MAX_RUNNING; i++)
        if (running[i] > 0 && kill(running[i], SIGKILL) == 0)
            n++;
    pthread_mutex_unlock(&running_lock);
    return n;
}

int64_t mgorun_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mgorun_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The whole content of an open file from its start, NUL-terminated (never NULL: "" on error). */
static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    if (lseek(fd, 0, SEEK_SET) == 0) {
        for (;;) {
            if (len + 1 >= cap) {
                char *b = realloc(buf, cap * 2);
                if (!b)
                    break;
                buf = b;
                cap *= 2;
            }
            ssize_t n = read(fd, buf + len, cap - len - 1);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            len += (size_t)n;
        }
    }
    buf[len] = '\0';
    return buf;
}

/* An unlinked temporary file, opened read-write; -1 on failure. */
static int anon_file(void)
{
    char path[] = "/tmp/mgorun-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static long read_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = 0;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int mgorun_cmd(struct mgorun *r, const char *const *argv, int timeout_ms, int kill_after_ms)
{
    return mgorun_cmd_when(r, argv, timeout_ms, kill_after_ms, NULL, NULL, POLL_MS);
}

int mgorun_cmd_when(struct mgorun *r, const char *const *argv, int timeout_ms, int kill_after_ms,
                    int (*kill_when)(void *arg), void *arg, int poll_ms)
{
    memset(r, 0, sizeof(*r));
    r->code = -1;
    size_t off = 0;
    for (int i = 0; argv[i] && off + 1 < sizeof(r->cmd); i++) {
        int n = snprintf(r->cmd + off, sizeof(r->cmd) - off, "%s%s", i ? " " : "", argv[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    if (off >= sizeof(r->cmd))
        off = sizeof(r->cmd) - 1;

    int fo = anon_file(), fe = anon_file();
    if (fo < 0 || fe < 0) {
        if (fo >= 0)
            close(fo);
        if (fe >= 0)
            close(fe);
        r->out = strdup("");
        r->err = strdup("mgorun: cannot create a temporary file\n");
        return -1;
    }
    int maxfd = (int)sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    int64_t t0 = mgorun_now_ms();
    pthread_mutex_lock(&running_lock);
    if (only_set && !pthread_equal(only_thread, pthread_self())) {
        pthread_mutex_unlock(&running_lock);
        close(fo);
        close(fe);
        r->out = strdup("");
        r->err = strdup("mgorun: not started: the test is cleaning up\n");
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* only async-signal-safe calls from here to exec: the parent has threads */
        sigset_t none;
        sigemptyset(&none);
        for (int s = 1; s < 32; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        dup2(fo, 1);
        dup2(fe, 2);
        for (int fd = 3; fd < maxfd; fd++)
            close(fd);
        execv(argv[0], (char *const *)argv);
        static const char msg[] = "mgorun: exec failed\n";
        ssize_t ignored = write(2, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(127);
    }
    if (pid > 0)
        running_set(pid, 1);
    pthread_mutex_unlock(&running_lock);
    if (pid < 0) {
        close(fo);
        close(fe);
        r->out = strdup("");
        r->err = strdup("mgorun: fork failed\n");
        return -1;
    }

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    for (;;) {
        pid_t w = wait4(pid, &status, WNOHANG, &ru);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = 0;
            break;
        }
        long hwm = read_hwm_kb(pid);
        if (hwm > 0)
            r->hwm_kb = hwm;
        int64_t elapsed = mgorun_now_ms() - t0;
        if (!r->killed &&
            ((kill_after_ms > 0 && elapsed >= kill_after_ms) || (kill_when && kill_when(arg)))) {
            kill(pid, SIGKILL);
            r->killed = 1;
        } else if (elapsed >= timeout_ms && !r->timed_out && !r->killed) {
            kill(pid, SIGKILL);
            r->timed_out = 1;
        }
        mgorun_sleep_ms(poll_ms > 0 ? poll_ms : POLL_MS);
    }
    pthread_mutex_lock(&running_lock);
    running_set(pid, 0);
    pthread_mutex_unlock(&running_lock);
    r->ms = mgorun_now_ms() - t0;
    r->maxrss_kb = ru.ru_maxrss;
    if (WIFEXITED(status)) {
        r->code = WEXITSTATUS(status);
        /* it ended on its own before the kill was sent */
        if (r->killed && r->code >= 0)
            r->killed = 0;
    } else if (WIFSIGNALED(status)) {
        r->signo = WTERMSIG(status);
        if (r->killed && r->signo != SIGKILL)
            r->killed = 0;
    }
    r->out = slurp_fd(fo);
    r->err = slurp_fd(fe);
    close(fo);
    close(fe);
    if (!r->out)
        r->out = strdup("");
    if (!r->err)
        r->err = strdup("");
    return 0;
}

void mgorun_free(struct mgorun *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

const char *mgorun_how(const struct mgorun *r, char *buf, size_t size)
{
    if (r->timed_out)
        snprintf(buf, size, "timed out after %lld ms", (long long)r->ms);
    else if (r->signo)
        snprintf(buf, size, "signal %d", r->signo);
    else
        snprintf(buf, size, "exit %d", r->code);
    return buf;
}

static void print_indented(FILE *f, const char *tag, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "    %s| %.*s\n", tag, len, p);
        p += len + (nl ? 1 : 0);
    }
}

void mgorun_print(const struct mgorun *r, FILE *f)
{
    char how[64];
    fprintf(f, "    $ %s   (%s, %lld ms)\n", r->cmd, mgorun_how(r, how, sizeof(how)),
            (long long)r->ms);
    print_indented(f, "out", r->out ? r->out : "");
    print_indented(f, "err", r->err ? r->err : "");
}

/* Copy a JSON string member into buf; 0 when present and a string, -1 otherwise. */
static int get_str(json_t *o, const char *key, char *buf, size_t size)
{
    json_t *v = json_object_get(o, key);
    buf[0] = '\0';
    if (!json_is_string(v))
        return -1;
    snprintf(buf, size, "%s", json_string_value(v));
    return 0;
}

/* A number member (null allowed when nullable: *out = dflt); 0, or -1 when absent or mistyped. */
static int get_num(json_t *o, const char *key, int nullable, long long dflt, long long *out)
{
    json_t *v = json_object_get(o, key);
    *out = dflt;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        *out = (long long)json_real_value(v);
        return 0;
    }
    return nullable && json_is_null(v) ? 0 : -1;
}

int mgorun_status_parse(const char *text, struct mgorun_status *st, char *err, size_t err_size)
{
    json_error_t je;
    memset(st, 0, sizeof(*st));
    json_t *doc = json_loads(text, 0, &je);
    if (!doc) {
        snprintf(err, err_size, "status --json is not JSON: %s (line %d)", je.text, je.line);
        return -1;
    }
    int rc = -1;
    json_t *insts = json_object_get(doc, "instances"), *etcd = json_object_get(doc, "etcd");
    if (!json_is_object(doc) || get_str(doc, "cluster", st->cluster, sizeof(st->cluster)) ||
        get_str(doc, "phase", st->phase, sizeof(st->phase)) || !json_is_array(insts) ||
        !json_is_array(etcd)) {
        snprintf(err, err_size, "status --json lacks cluster, phase, instances or etcd");
        goto out;
    }
    if (json_array_size(insts) > MGORUN_MAX_INSTANCES || json_array_size(etcd) > MGORUN_MAX_ETCD) {
        snprintf(err, err_size, "status --json lists too many instances (%zu) or etcd (%zu)",
                 json_array_size(insts), json_array_size(etcd));
        goto out;
    }
    size_t i;
    json_t *o;
    json_array_foreach (insts, i, o) {
        struct mgorun_instance *in = &st->in[st->n++];
        long long port = 0;
        const char *miss = NULL;
        if (!json_is_object(o))
            miss = "(not an object)";
        else if (get_str(o, "name", in->name, sizeof(in->name)))
            miss = "name";
        else if (get_str(o, "cell", in->cell, sizeof(in->cell)))
            miss = "cell";
        else if (get_str(o, "pool", in->pool, sizeof(in->pool)))
            miss = "pool";
        else if (get_str(o, "database", in->database, sizeof(in->database)))
            miss = "database";
        else if (get_str(o, "tablegroup", in->tablegroup, sizeof(in->tablegroup)))
            miss = "tablegroup";
        else if (get_str(o, "shard", in->shard, sizeof(in->shard)))
            miss = "shard";
        else if (get_num(o, "index", 0, -1, &in->index))
            miss = "index";
        else if (get_str(o, "role", in->role, sizeof(in->role)))
            miss = "role";
        else if (get_str(o, "state", in->state, sizeof(in->state)))
            miss = "state";
        else if (get_str(o, "host", in->host, sizeof(in->host)))
            miss = "host";
        else if (get_num(o, "port", 0, 0, &port))
            miss = "port";
        else if (get_num(o, "lag_bytes", 1, -1, &in->lag_bytes))
            miss = "lag_bytes";
        else if (get_num(o, "pid", 1, 0, &in->pid))
            miss = "pid";
        else if (get_str(o, "data_dir", in->data_dir, sizeof(in->data_dir)))
            miss = "data_dir";
        else if (!json_is_null(json_object_get(o, "drain")) &&
                 get_str(o, "drain", in->drain, sizeof(in->drain)))
            miss = "drain";
        json_t *sync_v = json_is_object(o) ? json_object_get(o, "synchronous") : NULL;
        in->synchronous = json_is_boolean(sync_v) ? json_is_true(sync_v) : -1;
        in->port = (int)port;
        in->has_all_fields = miss == NULL;
        snprintf(in->missing_field, sizeof(in->missing_field), "%s", miss ? miss : "");
    }
    json_array_foreach (etcd, i, o) {
        struct mgorun_etcd *e = &st->etcd[st->n_etcd++];
        long long cp = 0, pp = 0;
        json_t *run_v = json_object_get(o, "running");
        if (!json_is_object(o) || get_str(o, "name", e->name, sizeof(e->name)) ||
            get_num(o, "client_port", 0, 0, &cp) || get_num(o, "peer_port", 0, 0, &pp) ||
            !json_is_boolean(run_v) || get_num(o, "pid", 1, 0, &e->pid)) {
            snprintf(err, err_size,
                     "status --json: etcd[%zu] lacks name, client_port, "
                     "peer_port, running or pid",
                     i);
            goto out;
        }
        e->client_port = (int)cp;
        e->peer_port = (int)pp;
        e->running = json_is_true(run_v);
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

int mgorun_status(const char *mgo, const char *state, const char *cluster, struct mgorun_status *st,
                  char *err, size_t err_size)
{
    const char *argv[] = {mgo, "status", "--state-dir", state, "--json", cluster, NULL};
    struct mgorun r;
    char how[64];
    if (mgorun_cmd(&r, argv, 60000, 0) != 0 || r.code != 0) {
        snprintf(err, err_size, "`%s`: %s: %.600s%.600s", r.cmd, mgorun_how(&r, how, sizeof(how)),
                 r.out ? r.out : "", r.err ? r.err : "");
        mgorun_free(&r);
        return -1;
    }
    int rc = mgorun_status_parse(r.out, st, err, err_size);
    mgorun_free(&r);
    return rc;
}

const struct mgorun_instance *mgorun_find(const struct mgorun_status *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->in[i].name, name) == 0)
            return &st->in[i];
    return NULL;
}

/* Is path `dir` itself or under it? */
static int path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The process's parent and whether it is a zombie, from /proc/<pid>/stat. -1 when gone. */
static int read_stat(pid_t pid, pid_t *ppid, int *zombie)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
    char st = 0;
    int pp = 0;
    if (!p || sscanf(p + 1, " %c %d", &st, &pp) != 2)
        return -1;
    *ppid = pp;
    *zombie = st == 'Z' || st == 'X';
    return 0;
}

size_t mgorun_procs(const char *dir, struct mgorun_proc *out, size_t max)
{
    DIR *d = opendir("/proc");
    size_t found = 0;
    if (!d)
        return 0;
    struct dirent *de;
    pid_t self = getpid();
    struct mgorun_proc p;
    while ((de = readdir(d))) {
        char *end;
        long v = strtol(de->d_name, &end, 10);
        if (*end || v <= 0 || (pid_t)v == self)
            continue;
        memset(&p, 0, sizeof(p));
        p.pid = (pid_t)v;
        int zombie = 0;
        if (read_stat(p.pid, &p.ppid, &zombie) != 0 || zombie)
            continue;
        char path[64], link[512];
        snprintf(path, sizeof(path), "/proc/%d/cwd", (int)p.pid);
        ssize_t n = readlink(path, p.cwd, sizeof(p.cwd) - 1);
        p.cwd[n > 0 ? n : 0] = '\0';
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)p.pid);
        n = readlink(path, link, sizeof(link) - 1);
        link[n > 0 ? n : 0] = '\0';
        char *del = strstr(link, " (deleted)");
        if (del)
            *del = '\0';
        const char *base = strrchr(link, '/');
        snprintf(p.exe, sizeof(p.exe), "%.63s", base ? base + 1 : link);
        int mine = p.cwd[0] && path_under(p.cwd, dir);
        /* the command line: NUL-separated arguments */
        char cmd[4096];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)p.pid);
        int fd = open(path, O_RDONLY);
        ssize_t len = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (len < 0)
            len = 0;
        cmd[len] = '\0';
        for (ssize_t i = 0; i < len;) {
            if (strstr(cmd + i, dir))
                mine = 1;
            i += (ssize_t)strlen(cmd + i) + 1;
        }
        if (!mine)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        snprintf(p.cmd, sizeof(p.cmd), "%.255s", cmd);
        if (found < max)
            out[found] = p;
        found++;
    }
    closedir(d);
    /* a postmaster: a postgres whose parent is not a postgres of this set */
    size_t n = found < max ? found : max;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(out[i].exe, "postgres") != 0)
            continue;
        out[i].postmaster = 1;
        for (size_t j = 0; j < n; j++)
            if (out[j].pid == out[i].ppid && strcmp(out[j].exe, "postgres") == 0)
                out[i].postmaster = 0;
    }
    return found;
}

int mgorun_kill_under(const char *dir)
{
    struct mgorun_proc ps[256];
    int killed = 0;
    for (int pass = 0; pass < 50; pass++) {
        size_t n = mgorun_procs(dir, ps, 256);
        if (n == 0)
            break;
        for (size_t i = 0; i < n && i < 256; i++)
            if (kill(ps[i].pid, SIGKILL) == 0)
                killed++;
        mgorun_sleep_ms(100);
    }
    return killed;
}

long long mgorun_postmaster_pid(const char *data_dir)
{
    char path[600], buf[64];
    snprintf(path, sizeof(path), "%s/postmaster.pid", data_dir);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoll(buf, NULL, 10);
}

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* The low end of the kernel's ephemeral range (outgoing connections take their local port
 * from it, so a port there may be taken by a client before a server binds it). */
static int ephemeral_low(void)
{
    int low = 32768, high = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    return low;
}

int mgorun_free_port_base(int count)
{
    /* below the ephemeral range, as tests/pg/pg_harness.c does: the ports are bound later,
     * by mgo, some only when a scale-up creates an instance */
    int low = 20000, high = ephemeral_low() - count;
    if (high <= low)
        return 0;
    unsigned seed = (unsigned)getpid() * 2654435761u;
    for (int attempt = 0; attempt < 200; attempt++) {
        int base = low + (int)((seed + (unsigned)attempt * 7919u) % (unsigned)(high - low));
        int ok = 1;
        for (int p = base; p < base + count && ok; p++)
            ok = port_free(p);
        if (ok)
            return base;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int mgorun_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

char *mgorun_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    char *s = slurp_fd(fd);
    close(fd);
    if (s && len)
        *len = strlen(s);
    return s;
}

int mgorun_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *mgorun_replace(const char *text, const char *from, const char *to, int *count)
{
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    *count = 0;
    for (const char *p = strstr(text, from); p && lf; p = strstr(p + lf, from))
        n++;
    char *out = malloc(strlen(text) + n * lt + 1);
    if (!out)
        return NULL;
    char *w = out;
    const char *p = text;
    for (const char *q = lf ? strstr(p, from) : NULL; q; q = strstr(p, from)) {
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, to, lt);
        w += lt;
        p = q + lf;
        (*count)++;
    }
    strcpy(w, p);
    return out;
}
