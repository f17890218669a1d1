/* The local host; see lhost.h. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "lhost.h"

#define STATE_KEY        "drain.multigres.com/state"
#define REQUESTED_AT_KEY "drain.multigres.com/requested-at"
#define SWITCHOVER_KEY   "drain.multigres.com/switchover"
#define CALL_DEADLINE_MS 10000
#define DRAIN_CALLS      12
#define PROBE_TIMEOUT_S  "3"
#define IDLE_PAUSE_MS    200

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

__attribute__((format(printf, 2, 3))) static int fail(struct lhost *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(h->error, sizeof(h->error), fmt, ap);
    va_end(ap);
    return -1;
}

void lhost_say(struct lhost *h, const char *fmt, ...)
{
    va_list ap;
    if (h->quiet)
        return;
    int64_t t = mono_ms() - h->started_ms;
    fprintf(stderr, "mgo: [%3d.%ds] ", (int)(t / 1000), (int)(t % 1000 / 100));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *path2(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

static json_t *section(struct lhost *h, const char *name)
{
    json_t *s = json_object_get(h->st, name);
    if (!json_is_object(s)) {
        s = json_object();
        json_object_set_new(h->st, name, s);
    }
    return s;
}

static const char *drain_state(const json_t *rec)
{
    return str(json_object_get(rec, "annotations"), STATE_KEY);
}

static const json_t *ispec(const json_t *rec)
{
    return path2(rec, "object", "spec");
}

static int iport(const json_t *rec)
{
    return (int)json_integer_value(json_object_get(ispec(rec), "port"));
}

static const char *idata(const json_t *rec)
{
    return str(ispec(rec), "dataDir");
}

/* "database/tablegroup/shard" of an Instance object */
static void shard_key_of(const json_t *obj, char *buf, size_t size)
{
    const json_t *s = json_object_get(obj, "spec");
    (void)snprintf(buf, size, "%s/%s/%s", str(s, "database") ? str(s, "database") : "",
                   str(s, "tablegroup") ? str(s, "tablegroup") : "",
                   str(s, "shard") ? str(s, "shard") : "");
}

/* The same for a record of the state */
static void shard_key(const json_t *rec, char *buf, size_t size)
{
    shard_key_of(json_object_get(rec, "object"), buf, size);
}

/* ---- state ------------------------------------------------------------------------------- */

/* buf (absolute) made canonical: the longest part that exists through realpath (links, ".",
 * "..", "//" resolved), the rest lexically. mgo finds its processes by their exact paths, so
 * two spellings of one directory must become one. 0, or -1 when it does not fit. */
static int canonical(char *buf, size_t size)
{
    char head[PATH_MAX], real[PATH_MAX], out[PATH_MAX];
    size_t cut = strlen(buf);
    if (cut >= sizeof(head))
        return -1;
    memcpy(head, buf, cut + 1);
    /* the longest existing prefix */
    while (!realpath(head, real)) {
        char *slash = strrchr(head, '/');
        if (!slash || slash == head) {
            (void)snprintf(real, sizeof(real), "/");
            cut = 0;
            break;
        }
        *slash = '\0';
        cut = (size_t)(slash - head);
    }
    (void)snprintf(out, sizeof(out), "%s", strcmp(real, "/") == 0 ? "" : real);
    /* the rest, component by component */
    char rest[PATH_MAX];
    (void)snprintf(rest, sizeof(rest), "%s", buf + cut);
    char *save = NULL;
    for (char *c = strtok_r(rest, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        if (strcmp(c, "..") == 0) {
            char *slash = strrchr(out, '/');
            if (slash)
                *slash = '\0';
            continue;
        }
        size_t l = strlen(out);
        if (l + 1 + strlen(c) + 1 > sizeof(out))
            return -1;
        (void)snprintf(out + l, sizeof(out) - l, "/%s", c);
    }
    if (!out[0])
        (void)snprintf(out, sizeof(out), "/");
    if (strlen(out) + 1 > size)
        return -1;
    memcpy(buf, out, strlen(out) + 1);
    return 0;
}

int lhost_default_root(const char *opt, char *buf, size_t size)
{
    const char *e = getenv("MGO_STATE_DIR"), *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char cwd[512] = "";
    int n;
    if (opt && *opt)
        n = snprintf(buf, size, "%s", opt);
    else if (e && *e)
        n = snprintf(buf, size, "%s", e);
    else if (geteuid() == 0)
        n = snprintf(buf, size, "/var/lib/mgo");
    else if (x && *x)
        n = snprintf(buf, size, "%s/mgo", x);
    else
        n = snprintf(buf, size, "%s/.local/state/mgo", home ? home : "/tmp");
    if (n > 0 && (size_t)n < size && buf[0] != '/') { /* absolute */
        char *rel = strdup(buf);
        n = rel && getcwd(cwd, sizeof(cwd)) ? snprintf(buf, size, "%s/%s", cwd, rel) : -1;
        free(rel);
    }
    if (n < 0 || (size_t)n >= size)
        return -1;
    return canonical(buf, size);
}

static void log_cb(void *user, int32_t level, const char *msg, size_t len)
{
    (void)user;
    if (level <= MGO_LOG_WARN)
        fprintf(stderr, "mgo: library: %.*s\n", (int)len, msg);
}

int lhost_open(struct lhost *h, struct loader_lib *lib, const char *root, const char *cluster,
               int create, int lock)
{
    char dir[700], path[800];
    memset(h, 0, sizeof(*h));
    h->lib = lib;
    h->lock_fd = -1;
    h->started_ms = mono_ms();
    (void)snprintf(h->root, sizeof(h->root), "%s", root);
    if (!cluster || !*cluster || strlen(cluster) >= sizeof(h->cluster) || strchr(cluster, '/'))
        return h->exit_hint = 2, fail(h, "not a cluster name: '%s'", cluster ? cluster : "");
    (void)snprintf(h->cluster, sizeof(h->cluster), "%s", cluster);
    (void)snprintf(dir, sizeof(dir), "%s/%s", root, cluster);
    (void)snprintf(path, sizeof(path), "%s/state.json", dir);
    if (!create && access(path, F_OK) != 0) {
        (void)snprintf(h->error, sizeof(h->error),
                       "no cluster '%s' in %s (run 'mgo up FILE' first, or pass --state-dir)",
                       cluster, root);
        return 5;
    }
    if (proc_env_init(&h->env, dir, h->error, sizeof(h->error)) != 0) {
        h->exit_hint = 2; /* PostgreSQL missing, a state directory it cannot use */
        return -1;
    }
    if (lock) {
        (void)snprintf(path, sizeof(path), "%s/lock", dir);
        h->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (h->lock_fd < 0)
            return fail(h, "open %s: %s", path, strerror(errno));
        if (flock(h->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            lhost_say(h, "another mgo command is changing cluster %s: waiting for it", cluster);
            if (flock(h->lock_fd, LOCK_EX) != 0)
                return fail(h, "lock %s: %s", path, strerror(errno));
        }
    }
    (void)snprintf(path, sizeof(path), "%s/state.json", dir);
    /* a purge that ran while this command waited for the lock took the cluster away */
    if (!create && access(path, F_OK) != 0) {
        (void)snprintf(h->error, sizeof(h->error), "cluster '%s' was removed from %s meanwhile",
                       cluster, root);
        return 5;
    }
    json_error_t je;
    h->st = json_load_file(path, 0, &je);
    if (!h->st && access(path, F_OK) == 0)
        return h->exit_hint = 2,
               fail(h, "%s is unreadable (%s); restore it or remove the cluster's directory", path,
                    je.text);
    if (!h->st)
        h->st = json_pack("{s:i, s:s, s:i}", "version", 1, "cluster", cluster, "next_uid", 1);
    const char *su = str(h->st, "superuser");
    if (su)
        (void)snprintf(h->env.superuser, sizeof(h->env.superuser), "%s", su);
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    host.log = log_cb;
    host.log_level = MGO_LOG_WARN;
    int32_t rc = lib->open(&host, &h->plugin);
    if (rc != MGO_OK)
        return fail(h, "mgo_open: %s", lib->strerror(rc));
    return 0;
}

void lhost_close(struct lhost *h)
{
    if (h->plugin)
        h->lib->close(h->plugin);
    json_decref(h->st);
    json_decref(h->desired);
    json_decref(h->resolved);
    if (h->lock_fd >= 0)
        close(h->lock_fd); /* releases the lock */
    h->plugin = NULL;
    h->st = h->desired = h->resolved = NULL;
    h->lock_fd = -1;
}

int lhost_save(struct lhost *h)
{
    char path[800], tmp[820];
    (void)snprintf(path, sizeof(path), "%s/state.json", h->env.dir);
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char *text = json_dumps(h->st, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!text)
        return fail(h, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), e = 0;
    size_t len = strlen(text), off = 0;
    while (fd >= 0 && off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? errno : ENOSPC;
            break;
        }
        off += (size_t)w;
    }
    free(text);
    if (fd < 0)
        e = errno;
    else if (!e && fsync(fd) != 0)
        e = errno;
    if (fd >= 0 && close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        if (fd >= 0)
            (void)unlink(tmp);
        return fail(h, "write %s: %s", path, strerror(e));
    }
    return 0;
}

char **lhost_clusters(const char *root)
{
    DIR *d = opendir(root);
    size_t n = 0, bytes = 0;
    char names[64][64];
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 64) {
        char path[1200];
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 64)
            continue;
        (void)snprintf(path, sizeof(path), "%s/%s/state.json", root, e->d_name);
        if (access(path, F_OK) != 0)
            continue;
        (void)snprintf(names[n++], 64, "%.63s", e->d_name);
        bytes += strlen(e->d_name) + 1;
    }
    if (d)
        closedir(d);
    char **out = malloc((n + 1) * sizeof(char *) + bytes);
    if (!out)
        return NULL;
    char *p = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        out[i] = p;
        p = stpcpy(p, names[i]) + 1;
    }
    out[n] = NULL;
    return out;
}

/* ---- probing ----------------------------------------------------------------------------- */

/* 1 primary, 0 standby, -1 does not answer */
static int probe_role(const struct lhost *h, const json_t *rec)
{
    char ci[1100];
    if (!proc_pg_pid(&h->env, idata(rec)))
        return -1;
    proc_pg_conninfo(&h->env, iport(rec), ci, sizeof(ci));
    size_t l = strlen(ci);
    (void)snprintf(ci + l, sizeof(ci) - l, " options='-c statement_timeout=3000'");
    PGconn *c = PQconnectdb(ci);
    int role = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, "SELECT pg_is_in_recovery()");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            role = strcmp(PQgetvalue(r, 0, 0), "f") == 0;
        PQclear(r);
    }
    PQfinish(c);
    return role;
}

/* The instance of shard `key` answering as primary (the first), or NULL. */
static json_t *shard_primary(struct lhost *h, const char *key, const char *except)
{
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "instances"), name, rec) {
        char k[400];
        shard_key(rec, k, sizeof(k));
        if (strcmp(k, key) == 0 && (!except || strcmp(name, except) != 0) &&
            strcmp(str(rec, "phase") ? str(rec, "phase") : "", "created") == 0 &&
            probe_role(h, rec) == 1)
            return rec;
    }
    return NULL;
}

/* ---- processes --------------------------------------------------------------------------- */

static void free_settings(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* The instance's command line as "name=value" strings (free the array and strings). */
static char **settings_of(const json_t *rec)
{
    const json_t *cl = path2(ispec(rec), "postgres", "commandLine");
    size_t n = json_object_size(cl), i = 0;
    char **v = calloc(n + 1, sizeof(char *));
    const char *k;
    json_t *x;
    if (!v)
        return NULL;
    json_object_foreach ((json_t *)cl, k, x) {
        const char *s = json_string_value(x);
        size_t len = strlen(k) + (s ? strlen(s) : 0) + 2;
        v[i] = malloc(len);
        if (!v[i]) {
            free_settings(v);
            return NULL;
        }
        (void)snprintf(v[i], len, "%s=%s", k, s ? s : "");
        i++;
    }
    return v;
}

static int start_instance(struct lhost *h, const char *name, const json_t *rec)
{
    char **settings = settings_of(rec);
    if (!settings)
        return fail(h, "out of memory");
    int rc = proc_pg_start(&h->env, name, idata(rec), (const char *const *)settings, h->error,
                           sizeof(h->error));
    free_settings(settings);
    return rc;
}

/* An existing data directory made a standby of `primary` (stopped, rewound when it was a
 * primary, pointed at it); start it afterwards. */
static int follow_on_volume(struct lhost *h, const char *name, const json_t *rec,
                            const json_t *primary, const char **how)
{
    char state[64] = "";
    if (!primary)
        return fail(h, "%s: its volume exists and no primary of its shard answers to follow", name);
    if (proc_pg_pid(&h->env, idata(rec)) &&
        proc_pg_stop(&h->env, idata(rec), "fast", h->error, sizeof(h->error)) != 0)
        return -1;
    if (proc_pg_controldata(&h->env, idata(rec), "Database cluster state", state, sizeof(state)) !=
        0)
        return fail(h, "%s: pg_controldata failed", name);
    *how = "volume";
    /* a primary when it stopped (cleanly or not): its history may have diverged */
    if (strcmp(state, "shut down") == 0 || strcmp(state, "in production") == 0) {
        *how = "volume+rewind";
        lhost_say(h, "%s: pg_rewind from %s (it was a primary)", name,
                  str(path2(primary, "object", "metadata"), "name"));
        if (proc_pg_rewind(&h->env, name, idata(rec), iport(primary), h->error, sizeof(h->error)) !=
            0)
            return -1;
    }
    return proc_pg_follow(&h->env, idata(rec), iport(primary), h->error, sizeof(h->error));
}

/* initdb arguments of the spec: null, a string (split at spaces) or an array */
static char **initdb_args(const json_t *rec)
{
    const json_t *a = json_object_get(ispec(rec), "initdbArgs");
    char **v = calloc(33, sizeof(char *));
    size_t n = 0, i;
    json_t *x;
    if (!v)
        return NULL;
    int bad = 0;
    if (json_is_string(a)) {
        char *copy = strdup(json_string_value(a)), *save = NULL;
        bad = !copy;
        for (char *t = copy ? strtok_r(copy, " \t", &save) : NULL; t && !bad;
             t = strtok_r(NULL, " \t", &save))
            bad = n == 32 || !(v[n++] = strdup(t));
        free(copy);
    } else if (json_is_array(a)) {
        json_array_foreach (a, i, x)
            if (json_is_string(x) && !bad)
                bad = n == 32 || !(v[n++] = strdup(json_string_value(x)));
    }
    if (bad) { /* out of memory, or more arguments than initdb takes here */
        free_settings(v);
        return NULL;
    }
    return v;
}

/* A new uid for a record ("uid-N"). */
static void next_uid(struct lhost *h, char *buf, size_t size)
{
    json_int_t next = json_integer_value(json_object_get(h->st, "next_uid"));
    (void)snprintf(buf, size, "uid-%lld", (long long)next);
    json_object_set_new(h->st, "next_uid", json_integer(next + 1));
}

/* Apply an annotate patch: null deletes a key. */
static void merge_annotations(json_t *ann, const json_t *patch)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)patch, key, v) {
        if (json_is_null(v))
            json_object_del(ann, key);
        else
            json_object_set(ann, key, v);
    }
}

/* A new record "creating" for Instance obj (saved), or NULL (h->error). */
static json_t *new_record(struct lhost *h, const json_t *obj)
{
    const char *name = str(json_object_get(obj, "metadata"), "name");
    char uid[32];
    next_uid(h, uid, sizeof(uid));
    json_t *rec = json_pack("{s:s, s:O, s:O?, s:s}", "uid", uid, "object", obj, "annotations",
                            path2(obj, "metadata", "annotations"), "phase", "creating");
    if (!rec || !name) {
        json_decref(rec);
        fail(h, "an Instance without a name");
        return NULL;
    }
    if (!json_object_get(rec, "annotations"))
        json_object_set_new(rec, "annotations", json_object());
    if (!idata(rec) || iport(rec) <= 0) {
        json_decref(rec);
        fail(h, "Instance %s has no data directory or port", name);
        return NULL;
    }
    json_object_set_new(rec, "reuse", json_boolean(proc_pg_exists(&h->env, idata(rec))));
    json_object_set_new(section(h, "instances"), name, rec);
    return lhost_save(h) == 0 ? rec : NULL;
}

static int is_create(const json_t *a)
{
    const json_t *obj = json_object_get(a, "object");
    return strcmp(str(a, "type") ? str(a, "type") : "", "apply") == 0 &&
           strcmp(str(a, "reason") ? str(a, "reason") : "", "create") == 0 &&
           strcmp(str(obj, "kind") ? str(obj, "kind") : "", "Instance") == 0;
}

/* The data directories of the Instances this pass creates in shard `key` from action `from`
 * on (new data directories only): one base backup of its primary, copied (cp -a, several at
 * once) for the others, so that N new standbys cost one backup and its checkpoint. Concurrent
 * base backups would not do: each one's fast checkpoint can recycle the WAL another has not
 * begun to stream yet. Each record is then "creating" with "copied": create_instance points it
 * at the primary and starts it. Without a primary nothing is done here. */
#define COPY_AT_ONCE 4
static int copy_batch(struct lhost *h, const json_t *actions, size_t from, const char *key)
{
    json_t *primary = shard_primary(h, key, NULL);
    struct proc_job jobs[COPY_AT_ONCE];
    json_t *recs[COPY_AT_ONCE], *first = NULL;
    int n = 0, rc = 0, copied = 0;
    if (!primary)
        return 0;
    for (size_t i = from; rc == 0 && i <= json_array_size(actions); i++) {
        const json_t *a = json_array_get(actions, i), *obj = json_object_get(a, "object");
        const char *name = str(json_object_get(obj, "metadata"), "name");
        char k[400] = "";
        if (a)
            shard_key_of(obj, k, sizeof(k));
        int wanted = a && is_create(a) && strcmp(k, key) == 0 && name &&
                     !json_object_get(section(h, "instances"), name) &&
                     !proc_pg_exists(&h->env, str(json_object_get(obj, "spec"), "dataDir"));
        /* a full window, or the end: wait for the oldest copy */
        while (n > 0 && (n == COPY_AT_ONCE || !a)) {
            char err[1024];
            if (proc_wait(&jobs[0], PROC_TOOL_TIMEOUT_MS, err, sizeof(err)) != 0) {
                if (rc == 0)
                    (void)snprintf(h->error, sizeof(h->error), "%s", err);
                rc = -1;
            } else {
                json_object_set_new(recs[0], "copied", json_true());
                copied++;
            }
            memmove(jobs, jobs + 1, (size_t)(n - 1) * sizeof(jobs[0]));
            memmove(recs, recs + 1, (size_t)(n - 1) * sizeof(recs[0]));
            n--;
        }
        if (!wanted || rc != 0)
            continue;
        json_t *rec = new_record(h, obj);
        if (!rec) {
            rc = -1;
            continue;
        }
        if (!first) {
            lhost_say(h, "%s: base backup from %s (port %d)", name,
                      str(path2(primary, "object", "metadata"), "name"), iport(rec));
            if (proc_pg_basebackup(&h->env, name, idata(rec), iport(primary), h->error,
                                   sizeof(h->error)) != 0) {
                rc = -1;
                continue;
            }
            json_object_set_new(rec, "copied", json_true());
            copied++;
            first = rec;
            continue;
        }
        lhost_say(h, "%s: a copy of that base backup (port %d)", name, iport(rec));
        if (proc_pg_copy_spawn(&h->env, name, idata(first), idata(rec), &jobs[n], h->error,
                               sizeof(h->error)) != 0)
            rc = -1;
        else
            recs[n++] = rec;
    }
    /* copies still running after a failure are waited for: none is left writing */
    for (int i = 0; i < n; i++) {
        char err[1024];
        (void)proc_wait(&jobs[i], PROC_TOOL_TIMEOUT_MS, err, sizeof(err));
    }
    if (copied && lhost_save(h) != 0)
        return -1;
    return rc;
}

static int create_instance(struct lhost *h, const json_t *obj)
{
    const char *name = str(json_object_get(obj, "metadata"), "name");
    json_t *insts = section(h, "instances");
    json_t *rec = json_object_get(insts, name);
    char key[400];
    if (rec && !json_is_true(json_object_get(rec, "copied")))
        return fail(h, "create of Instance %s, which exists", name);
    if (!rec && !(rec = new_record(h, obj)))
        return -1;
    shard_key(rec, key, sizeof(key));
    json_t *primary = shard_primary(h, key, name);
    int reuse = json_is_true(json_object_get(rec, "reuse"));
    const char *how = "basebackup";
    int rc;
    const char *role = str(json_object_get(obj, "bootstrap"), "role");
    int others = 0;
    const char *n2;
    json_t *r2;
    json_object_foreach (insts, n2, r2) {
        char k2[400];
        shard_key(r2, k2, sizeof(k2));
        others += strcmp(n2, name) != 0 && strcmp(k2, key) == 0;
    }
    /* the data directory first; once it is complete the record says "created" (a command
     * killed after that starts it again; before, the next pass starts the creation over) */
    if (reuse) {
        lhost_say(h, "%s: starting on its volume", name);
        rc = follow_on_volume(h, name, rec, primary, &how);
    } else if (role && strcmp(role, "primary") == 0 && others == 0 && !primary) {
        how = "initdb";
        lhost_say(h, "%s: initdb and start as the primary of %s (port %d)", name, key, iport(rec));
        char **args = initdb_args(rec);
        rc = args ? proc_pg_initdb(&h->env, name, idata(rec), str(h->st, "password"),
                                   (const char *const *)args, h->error, sizeof(h->error))
                  : fail(h, "%s: initdbArgs: out of memory, or more than 32 arguments", name);
        free_settings(args);
        /* initdb's postgresql.conf sets shared_buffers and max_connections: entries the
         * command line also sets are commented out, or every reload would log that the file
         * asks for a restart */
        char **settings = rc == 0 ? settings_of(rec) : NULL;
        if (rc == 0)
            rc = settings ? proc_pg_conf_defer(&h->env, idata(rec), (const char *const *)settings,
                                               h->error, sizeof(h->error))
                          : fail(h, "out of memory");
        free_settings(settings);
    } else if (!primary) {
        rc = fail(h, "%s: no primary of shard %s answers to copy from", name, key);
    } else if (json_is_true(json_object_get(rec, "copied"))) {
        lhost_say(h, "%s: start as a standby of %s", name,
                  str(path2(primary, "object", "metadata"), "name"));
        rc = proc_pg_follow(&h->env, idata(rec), iport(primary), h->error, sizeof(h->error));
    } else {
        lhost_say(h, "%s: base backup from %s, start as a standby (port %d)", name,
                  str(path2(primary, "object", "metadata"), "name"), iport(rec));
        rc = proc_pg_basebackup(&h->env, name, idata(rec), iport(primary), h->error,
                                sizeof(h->error));
        if (rc == 0)
            rc = proc_pg_follow(&h->env, idata(rec), iport(primary), h->error, sizeof(h->error));
    }
    if (rc != 0)
        return -1; /* the "creating" record is cleaned up by the next step */
    json_object_set_new(rec, "phase", json_string("created"));
    json_object_set_new(rec, "how", json_string(how));
    if (lhost_save(h) != 0)
        return -1;
    return start_instance(h, name, rec);
}

/* A record "creating" found at the start of a step: a command died while creating it. */
static int clean_creating(struct lhost *h)
{
    json_t *insts = section(h, "instances");
    const char *name;
    json_t *rec, *tmp;
    json_object_foreach_safe (insts, tmp, name, rec) {
        if (strcmp(str(rec, "phase") ? str(rec, "phase") : "", "creating") != 0)
            continue;
        lhost_say(h, "%s: its creation was interrupted: starting it over", name);
        if (proc_pg_stop(&h->env, idata(rec), "immediate", h->error, sizeof(h->error)) != 0)
            return -1;
        /* a tool's children outlive a killed mgo (the parent-death signal reaches the tool
         * only): none may still write into the directory */
        if (proc_kill_users(&h->env, idata(rec)) < 0)
            return fail(h, "%s: processes working in its data directory would not stop", name);
        if (!json_is_true(json_object_get(rec, "reuse")) &&
            proc_remove(&h->env, idata(rec), h->error, sizeof(h->error)) != 0)
            return -1;
        json_object_del(insts, name);
        if (lhost_save(h) != 0)
            return -1;
    }
    return 0;
}

static int etcd_client_port(const json_t *rec)
{
    return (int)json_integer_value(path2(json_object_get(rec, "object"), "spec", "clientPort"));
}

static int start_etcd(struct lhost *h, const char *name, const json_t *rec)
{
    const json_t *spec = path2(rec, "object", "spec");
    lhost_say(h, "etcd %s: starting on 127.0.0.1:%d", name, etcd_client_port(rec));
    return proc_etcd_start(&h->env, name, str(spec, "dataDir"),
                           (int)json_integer_value(json_object_get(spec, "clientPort")),
                           (int)json_integer_value(json_object_get(spec, "peerPort")), 30000,
                           h->error, sizeof(h->error));
}

/* Start what the state records and does not run: etcd, and instances no drain stopped. */
static int ensure_running(struct lhost *h, int *started)
{
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "etcd"), name, rec) {
        if (proc_etcd_pid(&h->env, name))
            continue;
        if (start_etcd(h, name, rec) != 0)
            return -1;
        (*started)++;
    }
    /* primaries first: a stopped standby follows whoever is the primary now */
    for (int pass = 0; pass < 2; pass++) {
        json_object_foreach (section(h, "instances"), name, rec) {
            const char *ds = drain_state(rec);
            if (strcmp(str(rec, "phase") ? str(rec, "phase") : "", "created") != 0 ||
                (ds && strcmp(ds, "requested") != 0) || proc_pg_pid(&h->env, idata(rec)))
                continue;
            char path[800];
            proc_path(&h->env, idata(rec), path, sizeof(path));
            (void)snprintf(path + strlen(path), sizeof(path) - strlen(path), "/standby.signal");
            int standby = access(path, F_OK) == 0;
            if (pass == 0 && standby)
                continue;
            if (pass == 1 && !standby)
                continue;
            char key[400];
            shard_key(rec, key, sizeof(key));
            json_t *primary = shard_primary(h, key, name);
            const char *how = "restart";
            int rc;
            if (!standby && primary) {
                lhost_say(h, "%s: stopped former primary; %s is the primary now: rejoining", name,
                          str(path2(primary, "object", "metadata"), "name"));
                rc = follow_on_volume(h, name, rec, primary, &how);
                if (rc == 0)
                    rc = start_instance(h, name, rec);
            } else {
                lhost_say(h, "%s: not running: starting it", name);
                rc = start_instance(h, name, rec);
            }
            if (rc != 0) {
                /* one instance that cannot start holds no other work up (a scale-down may be
                 * what removes it): said, and tried again next pass */
                lhost_say(h, "%s: could not start: %s", name, h->error);
                continue;
            }
            (*started)++;
        }
    }
    return 0;
}

/* ---- the reconcile pass ------------------------------------------------------------------ */

static json_t *observed_object(const char *kind, const char *name, const json_t *rec)
{
    return json_pack("{s:s, s:s, s:O, s:O?, s:O}", "kind", kind, "name", name, "uid",
                     json_object_get(rec, "uid"), "labels",
                     path2(json_object_get(rec, "object"), "metadata", "labels"), "annotations",
                     json_object_get(rec, "annotations"));
}

json_t *lhost_observed(struct lhost *h)
{
    json_t *objects = json_array();
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "etcd"), name, rec) {
        const json_t *spec = path2(rec, "object", "spec");
        json_t *x = observed_object("Etcd", name, rec);
        json_object_set_new(
            x, "ready",
            json_boolean(proc_etcd_pid(&h->env, name) && proc_port_open(etcd_client_port(rec))));
        json_object_set_new(x, "ports",
                            json_pack("{s:O, s:O}", "clientPort",
                                      json_object_get(spec, "clientPort"), "peerPort",
                                      json_object_get(spec, "peerPort")));
        json_array_append_new(objects, x);
    }
    json_object_foreach (section(h, "instances"), name, rec) {
        json_t *x = observed_object("Instance", name, rec);
        int role = probe_role(h, rec);
        json_object_set_new(x, "ready", json_boolean(role >= 0));
        if (role >= 0)
            json_object_set_new(x, "role", json_string(role ? "primary" : "standby"));
        json_object_set_new(x, "ports", json_pack("{s:i}", "port", iport(rec)));
        json_array_append_new(objects, x);
    }
    json_object_foreach (section(h, "volumes"), name, rec) {
        json_t *x = observed_object("Volume", name, rec);
        json_object_set_new(x, "ready", json_true());
        json_array_append_new(objects, x);
    }
    json_t *obs = json_pack("{s:o}", "objects", objects);
    if (json_is_object(json_object_get(h->st, "status")))
        json_object_set(obs, "status", json_object_get(h->st, "status"));
    return obs;
}

static json_t *global_etcd(struct lhost *h)
{
    char name[128];
    (void)snprintf(name, sizeof(name), "%s-global-topo", h->cluster);
    return json_object_get(section(h, "etcd"), name);
}

static json_t *call(struct lhost *h, loader_hook_fn fn, json_t *req, int32_t *ret_rc)
{
    return loader_call_json(h->lib, h->plugin, fn, req, ret_rc);
}

static json_t *reconcile_request(struct lhost *h)
{
    json_t *req = json_pack("{s:s, s:s, s:b, s:o, s:{s:O}}", "cluster", h->cluster, "target",
                            "process", "include_desired", 1, "observed", lhost_observed(h),
                            "process", "port_base", json_object_get(h->st, "port_base"));
    json_object_set(req, "manifests", json_object_get(h->st, "manifests"));
    if (str(h->st, "namespace"))
        json_object_set(req, "namespace", json_object_get(h->st, "namespace"));
    if (json_object_get(h->st, "previous") && !json_is_null(json_object_get(h->st, "previous")))
        json_object_set(req, "previous", json_object_get(h->st, "previous"));
    /* a managed global etcd: its local endpoint once it runs; before that no registration
     * (the pass that applies it comes first). An external one: the spec's endpoints. */
    const json_t *gts = path2(h->resolved, "spec", "globalTopoServer");
    int external = json_is_object(json_object_get(gts, "external"));
    json_t *g = global_etcd(h);
    if (g && proc_etcd_pid(&h->env, str(path2(g, "object", "metadata"), "name"))) {
        char ep[64];
        (void)snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", etcd_client_port(g));
        json_object_set_new(req, "topology", json_pack("{s:{s:[s]}}", "etcd", "endpoints", ep));
    } else if (!external) {
        json_object_set_new(req, "topology", json_pack("{s:b}", "register", 0));
    }
    return req;
}

static int apply_object(struct lhost *h, const json_t *a)
{
    const json_t *obj = json_object_get(a, "object");
    const char *kind = str(obj, "kind"), *reason = str(a, "reason");
    const char *name = str(json_object_get(obj, "metadata"), "name");
    if (!kind || !name || !reason)
        return fail(h, "an apply without kind, name or reason");
    if (strcmp(kind, "Etcd") == 0) {
        json_t *etcd = section(h, "etcd");
        json_t *rec = json_object_get(etcd, name);
        if (rec) {
            json_object_set(rec, "object", (json_t *)obj);
        } else {
            char uid[32];
            next_uid(h, uid, sizeof(uid));
            rec = json_pack("{s:s, s:O, s:O?}", "uid", uid, "object", obj, "annotations",
                            path2(obj, "metadata", "annotations"));
            if (!json_object_get(rec, "annotations"))
                json_object_set_new(rec, "annotations", json_object());
            json_object_set_new(etcd, name, rec);
        }
        json_object_update(json_object_get(rec, "annotations"),
                           path2(obj, "metadata", "annotations"));
        if (lhost_save(h) != 0)
            return -1;
        if (!proc_etcd_pid(&h->env, name)) {
            if (start_etcd(h, name, rec) != 0)
                return -1;
        }
        return 0;
    }
    if (strcmp(kind, "Volume") == 0) {
        json_t *vols = section(h, "volumes");
        json_t *rec = json_object_get(vols, name);
        const char *path = str(json_object_get(obj, "spec"), "path");
        if (!path || proc_mkdir(&h->env, path, 1, h->error, sizeof(h->error)) != 0)
            return path ? -1 : fail(h, "Volume %s has no path", name);
        if (!rec) {
            char uid[32];
            next_uid(h, uid, sizeof(uid));
            rec = json_pack("{s:s, s:O, s:o}", "uid", uid, "object", obj, "annotations",
                            json_object());
            json_object_set_new(vols, name, rec);
        } else {
            json_object_set(rec, "object", (json_t *)obj);
        }
        json_object_update(json_object_get(rec, "annotations"),
                           path2(obj, "metadata", "annotations"));
        return lhost_save(h);
    }
    if (strcmp(kind, "Instance") != 0)
        return fail(h, "apply of an unknown kind %s", kind);
    json_t *rec = json_object_get(section(h, "instances"), name);
    if (strcmp(reason, "create") == 0)
        return create_instance(h, obj);
    if (strcmp(reason, "reload") == 0 && rec) {
        json_object_set(rec, "object", (json_t *)obj);
        json_object_update(json_object_get(rec, "annotations"),
                           path2(obj, "metadata", "annotations"));
        return lhost_save(h);
    }
    return fail(h, "apply %s of Instance %s: an instance changes only by create or reload", reason,
                name);
}

static int delete_object(struct lhost *h, const json_t *a)
{
    const char *kind = str(a, "kind"), *name = str(a, "name"), *uid = str(a, "uid");
    if (!kind || !name)
        return fail(h, "a delete without kind or name");
    const char *sec = strcmp(kind, "Instance") == 0 ? "instances"
                      : strcmp(kind, "Volume") == 0 ? "volumes"
                      : strcmp(kind, "Etcd") == 0   ? "etcd"
                                                    : NULL;
    json_t *rec = sec ? json_object_get(section(h, sec), name) : NULL;
    if (!rec || (uid && str(rec, "uid") && strcmp(uid, str(rec, "uid")) != 0))
        return 0; /* gone, or another object by that name: the precondition fails */
    if (strcmp(kind, "Instance") == 0) {
        lhost_say(h, "%s: stopping and removing the instance (%s)", name,
                  str(a, "reason") ? str(a, "reason") : "deleted");
        if (proc_pg_stop(&h->env, idata(rec), "fast", h->error, sizeof(h->error)) != 0)
            return -1;
    } else if (strcmp(kind, "Volume") == 0) {
        const char *path = str(path2(rec, "object", "spec"), "path");
        lhost_say(h, "%s: removing its volume", name);
        if (path && proc_remove(&h->env, path, h->error, sizeof(h->error)) != 0)
            return -1;
    } else {
        if (proc_etcd_stop(&h->env, name, h->error, sizeof(h->error)) != 0)
            return -1;
        const char *dd = str(path2(rec, "object", "spec"), "dataDir");
        if (dd && proc_remove(&h->env, dd, h->error, sizeof(h->error)) != 0)
            return -1;
    }
    json_object_del(section(h, sec), name);
    return lhost_save(h);
}

static int annotate(struct lhost *h, const json_t *a)
{
    const char *kind = str(a, "kind"), *name = str(a, "name");
    const char *sec = !kind                           ? NULL
                      : strcmp(kind, "Instance") == 0 ? "instances"
                      : strcmp(kind, "Volume") == 0   ? "volumes"
                      : strcmp(kind, "Etcd") == 0     ? "etcd"
                                                      : NULL;
    json_t *rec = sec && name ? json_object_get(section(h, sec), name) : NULL;
    if (!rec)
        return fail(h, "annotate of %s %s, which does not exist", kind ? kind : "?",
                    name ? name : "?");
    json_t *ann = json_object_get(rec, "annotations");
    merge_annotations(ann, json_object_get(a, "annotations"));
    if (str(ann, STATE_KEY) && json_object_get(json_object_get(a, "annotations"), STATE_KEY))
        lhost_say(h, "%s: drain %s", name, str(ann, STATE_KEY));
    return lhost_save(h);
}

static int execute(struct lhost *h, const json_t *actions, struct lhost_step *st)
{
    size_t k;
    json_t *a;
    json_array_foreach (actions, k, a) {
        const char *type = str(a, "type");
        int rc = 0;
        if (!type)
            return fail(h, "an action without a type");
        if (strcmp(type, "status") == 0) {
            json_object_set(h->st, "status", json_object_get(a, "status"));
            if (lhost_save(h) != 0)
                return -1;
            continue;
        }
        st->actions++;
        if (strcmp(type, "event") == 0) {
            if (strcmp(str(a, "eventType") ? str(a, "eventType") : "", "Warning") == 0)
                lhost_say(h, "warning: %s: %s", str(a, "reason"), str(a, "message"));
            continue;
        }
        st->writes++;
        if (is_create(a)) {
            char key[400];
            shard_key_of(json_object_get(a, "object"), key, sizeof(key));
            if (copy_batch(h, actions, k, key) != 0)
                return -1;
        }
        if (strcmp(type, "apply") == 0)
            rc = apply_object(h, a);
        else if (strcmp(type, "delete") == 0)
            rc = delete_object(h, a);
        else if (strcmp(type, "annotate") == 0)
            rc = annotate(h, a);
        else
            rc = fail(h, "unknown action %s", type);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- drains ------------------------------------------------------------------------------ */

static json_t *shard_nodes(struct lhost *h, const char *key, const char *self, int for_observe)
{
    json_t *nodes = json_array();
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "instances"), name, rec) {
        char k[400], ci[1100];
        shard_key(rec, k, sizeof(k));
        if (strcmp(k, key) != 0 || strcmp(str(rec, "phase") ? str(rec, "phase") : "", "created"))
            continue;
        proc_pg_conninfo(&h->env, iport(rec), ci, sizeof(ci));
        int running = proc_pg_pid(&h->env, idata(rec)) != 0;
        json_t *x = json_pack(
            "{s:s, s:s?, s:O, s:s, s:b}", "name", name, "cell", str(ispec(rec), "cell"), "index",
            json_object_get(ispec(rec), "index"), "conninfo", ci, "running", running);
        const char *ds = drain_state(rec);
        if (for_observe == 2) { /* mgo_drain */
            json_object_set_new(x, "ready", json_boolean(running && probe_role(h, rec) >= 0));
            if (ds && (!self || strcmp(name, self) != 0))
                json_object_set_new(x, "drain", json_string(ds));
            if (!running) {
                char state[64], lsn[64];
                if (proc_pg_controldata(&h->env, idata(rec), "Database cluster state", state,
                                        sizeof(state)) == 0)
                    json_object_set_new(x, "control_state", json_string(state));
                if (proc_pg_controldata(&h->env, idata(rec), "Latest checkpoint location", lsn,
                                        sizeof(lsn)) == 0)
                    json_object_set_new(x, "checkpoint_lsn", json_string(lsn));
            }
        } else if (for_observe) {
            if (ds) {
                json_object_set_new(x, "drain", json_string(ds));
                if (str(json_object_get(rec, "annotations"), REQUESTED_AT_KEY))
                    json_object_set(
                        x, "requested_at",
                        json_object_get(json_object_get(rec, "annotations"), REQUESTED_AT_KEY));
            }
        } else {
            json_object_set_new(x, "drain", ds ? json_string(ds) : json_null());
        }
        json_array_append_new(nodes, x);
    }
    return nodes;
}

static const char *durability_of(const json_t *rec)
{
    const char *p = str(json_object_get(ispec(rec), "durability"), "policy");
    return p ? p : "AT_LEAST_2";
}

static int drain_action(struct lhost *h, const char *self, const json_t *a)
{
    const char *type = str(a, "type"), *inst = str(a, "instance");
    json_t *insts = section(h, "instances");
    if (type && strcmp(type, "annotate") == 0) {
        json_t *rec = json_object_get(insts, self);
        merge_annotations(json_object_get(rec, "annotations"), json_object_get(a, "annotations"));
        return lhost_save(h);
    }
    json_t *rec = inst ? json_object_get(insts, inst) : NULL;
    if (!rec)
        return fail(h, "a drain action %s on an unknown instance", type ? type : "?");
    if (type && strcmp(type, "stop") == 0) {
        if (strcmp(inst, self) == 0)
            lhost_say(h, "%s: stopping it (its drain)", inst);
        else
            lhost_say(h, "%s: stopping it (the drain of %s)", inst, self);
        return proc_pg_stop(&h->env, idata(rec), "fast", h->error, sizeof(h->error));
    }
    if (type && strcmp(type, "start") == 0) {
        lhost_say(h, "%s: starting it again (the drain of %s)", inst, self);
        return start_instance(h, inst, rec);
    }
    return fail(h, "unknown drain action %s", type ? type : "?");
}

/* Step the drain of `name` until ready-for-deletion or MGO_EAGAIN (or `until` reached). */
static int step_drain(struct lhost *h, const char *name, const char *until, struct lhost_step *st)
{
    for (int n = 0; n < DRAIN_CALLS; n++) {
        json_t *rec = json_object_get(section(h, "instances"), name);
        char key[400];
        if (!rec || !drain_state(rec))
            return 0;
        if (strcmp(drain_state(rec), "ready-for-deletion") == 0 ||
            (until && strcmp(drain_state(rec), until) == 0))
            return 0;
        shard_key(rec, key, sizeof(key));
        json_t *ann = json_pack("{s:s}", STATE_KEY, drain_state(rec));
        if (str(json_object_get(rec, "annotations"), SWITCHOVER_KEY))
            json_object_set(ann, SWITCHOVER_KEY,
                            json_object_get(json_object_get(rec, "annotations"), SWITCHOVER_KEY));
        json_t *req = json_pack("{s:s, s:o, s:s, s:o, s:i}", "instance", name, "annotations", ann,
                                "durability", durability_of(rec), "nodes",
                                shard_nodes(h, key, name, 2), "deadline_ms", CALL_DEADLINE_MS);
        int32_t rc;
        json_t *r = call(h, h->lib->drain, req, &rc);
        char m[600];
        const char *msg = str(r, "message");
        if (!msg)
            msg = str(json_object_get(r, "error"), "message");
        (void)snprintf(m, sizeof(m), "%s", msg ? msg : "");
        if (rc == MGO_OK) {
            size_t k;
            json_t *a;
            int acted = 0;
            json_array_foreach (json_object_get(r, "actions"), k, a) {
                acted++;
                if (drain_action(h, name, a) != 0) {
                    json_decref(r);
                    return -1;
                }
            }
            st->drain_moves += acted > 0;
            if (acted)
                json_object_del(rec, "waiting");
            json_decref(r);
            if (acted == 0)
                return 0;
            continue;
        }
        json_decref(r);
        if (rc == MGO_EAGAIN) {
            json_object_set_new(rec, "waiting", json_string(m));
            return 0;
        }
        h->exit_hint = 3;
        return fail(h, "mgo_drain of %s: %s: %s", name, h->lib->strerror(rc), m);
    }
    return 0;
}

static int run_drains(struct lhost *h, struct lhost_step *st)
{
    json_t *names = json_array();
    const char *name;
    json_t *rec;
    size_t i;
    json_t *v;
    json_object_foreach (section(h, "instances"), name, rec)
        if (drain_state(rec))
            json_array_append_new(names, json_string(name));
    json_array_foreach (names, i, v) {
        if (step_drain(h, json_string_value(v), NULL, st) != 0) {
            json_decref(names);
            return -1;
        }
    }
    json_decref(names);
    json_object_foreach (section(h, "instances"), name, rec)
        st->drains += drain_state(rec) != NULL;
    return 0;
}

int lhost_request_drain(struct lhost *h, const char *name, int timeout_ms)
{
    json_t *rec = json_object_get(section(h, "instances"), name);
    if (!rec) {
        (void)snprintf(h->error, sizeof(h->error),
                       "cluster %s has no instance %s ('mgo status' lists them)", h->cluster, name);
        return 5;
    }
    int role = drain_state(rec) ? -2 : probe_role(h, rec);
    if (role >= 0) {
        /* what the drain leaves must still meet the durability policy, or it would stop past
         * the point where it can be cancelled: a primary hands over only to a standby that
         * leaves another behind it (lifecycle.md "Drain of the primary", 2); a standby leaves
         * only while another one stays. Refuse now rather than wait for one. */
        char key[400];
        const char *other;
        json_t *o;
        int standbys = 0, need = role == 1 ? 2 : 1;
        shard_key(rec, key, sizeof(key));
        json_object_foreach (section(h, "instances"), other, o) {
            char k[400];
            shard_key(o, k, sizeof(k));
            if (strcmp(other, name) != 0 && strcmp(k, key) == 0 && drain_state(o)) {
                (void)snprintf(h->error, sizeof(h->error),
                               "the drain of %s is under way in shard %s, and a shard drains one "
                               "instance at a time. Nothing was changed; run 'mgo apply' (or "
                               "this command again) once it is done",
                               other, key);
                return 2;
            }
            standbys += strcmp(other, name) != 0 && strcmp(k, key) == 0 && !drain_state(o) &&
                        probe_role(h, o) == 0;
        }
        if (standbys < need) {
            (void)snprintf(h->error, sizeof(h->error),
                           "%s is %s of shard %s, which has %d other running standby(s): "
                           "draining it needs %d (%s). Nothing was changed; scale the pool up "
                           "first ('mgo scale %s POOL N')",
                           name, role == 1 ? "the primary" : "a standby", key, standbys, need,
                           role == 1 ? "the new primary must keep a synchronous standby of its own"
                                     : "the primary must keep a synchronous standby",
                           h->cluster);
            return 2;
        }
    }
    if (!drain_state(rec)) {
        char at[32];
        time_t now = time(NULL);
        struct tm tm;
        (void)gmtime_r(&now, &tm);
        (void)strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *ann = json_object_get(rec, "annotations");
        json_object_set_new(ann, STATE_KEY, json_string("requested"));
        json_object_set_new(ann, REQUESTED_AT_KEY, json_string(at));
        if (lhost_save(h) != 0)
            return -1;
        lhost_say(h, "%s: drain requested", name);
    }
    /* move it past `requested` now: a reconcile pass cancels a drain still requested on an
     * instance the spec wants as it is */
    struct lhost_step st = {0};
    for (int64_t end = mono_ms() + timeout_ms; mono_ms() < end;) {
        rec = json_object_get(section(h, "instances"), name);
        if (!rec || !drain_state(rec) || strcmp(drain_state(rec), "requested") != 0)
            return 0;
        if (step_drain(h, name, "draining", &st) != 0)
            return -1;
        pause_ms(300);
    }
    return fail(h, "the drain of %s did not begin within %d s: %s", name, timeout_ms / 1000,
                str(rec, "waiting") ? str(rec, "waiting") : "no reason given");
}

/* ---- topology and mgo_converge ------------------------------------------------------------ */

/* {"endpoints": [...], "root": ...} of the topology server holding `cell`'s records (NULL:
 * global), or NULL when unknown. */
static json_t *topo_where(struct lhost *h, const char *cell)
{
    const json_t *spec = json_object_get(h->resolved, "spec");
    const json_t *server = json_object_get(spec, "globalTopoServer");
    const char *etcd_name = NULL;
    char gname[128];
    (void)snprintf(gname, sizeof(gname), "%s-global-topo", h->cluster);
    etcd_name = gname;
    if (cell) {
        size_t i;
        json_t *c;
        json_array_foreach (json_object_get(spec, "cells"), i, c) {
            if (!str(c, "name") || strcmp(str(c, "name"), cell) != 0)
                continue;
            const json_t *local = path2(c, "spec", "localTopoServer");
            if (json_is_object(local)) {
                server = local;
                etcd_name = NULL;
                const char *n;
                json_t *rec;
                json_object_foreach (section(h, "etcd"), n, rec) {
                    const json_t *labels =
                        json_object_get(path2(rec, "object", "metadata"), "labels");
                    const char *lc = str(labels, "multigres.com/cell");
                    if (lc && strcmp(lc, cell) == 0)
                        etcd_name = n;
                }
            }
        }
    }
    if (json_is_object(json_object_get(server, "external"))) {
        const json_t *ext = json_object_get(server, "external");
        return json_pack("{s:O, s:s}", "endpoints", json_object_get(ext, "endpoints"), "root",
                         str(ext, "rootPath") ? str(ext, "rootPath") : "/multigres/global");
    }
    json_t *rec = etcd_name ? json_object_get(section(h, "etcd"), etcd_name) : NULL;
    if (!rec)
        return NULL;
    char ep[64];
    (void)snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", etcd_client_port(rec));
    const char *root = str(path2(rec, "object", "spec"), "rootPath");
    return json_pack("{s:[s], s:s}", "endpoints", ep, "root", root ? root : "/multigres/global");
}

/* The desired Instance of shard `key` (borrowed), or NULL. */
static const json_t *desired_of(struct lhost *h, const char *key)
{
    size_t i;
    json_t *o;
    json_array_foreach (h->desired, i, o) {
        char k[400];
        shard_key_of(o, k, sizeof(k));
        if (str(o, "kind") && strcmp(str(o, "kind"), "Instance") == 0 && strcmp(k, key) == 0)
            return o;
    }
    return NULL;
}

/* The shard keys of the recorded instances (json array of strings). */
static json_t *shard_keys(struct lhost *h)
{
    json_t *keys = json_array();
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "instances"), name, rec) {
        char k[400];
        size_t i;
        json_t *v;
        int seen = 0;
        shard_key(rec, k, sizeof(k));
        json_array_foreach (keys, i, v)
            seen |= strcmp(json_string_value(v), k) == 0;
        if (!seen)
            json_array_append_new(keys, json_string(k));
    }
    return keys;
}

static int converge_shard(struct lhost *h, const char *key, struct lhost_step *st)
{
    const json_t *want = desired_of(h, key);
    const json_t *spec = json_object_get(want, "spec");
    if (!want) { /* a shard no longer wanted: its instances are being drained */
        return 0;
    }
    json_t *cells = json_object();
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "instances"), name, rec) {
        char k[400];
        shard_key(rec, k, sizeof(k));
        const char *cell = str(ispec(rec), "cell");
        if (strcmp(k, key) != 0 || !cell || json_object_get(cells, cell))
            continue;
        json_t *w = topo_where(h, cell);
        if (!w) {
            json_decref(cells);
            st->converged = 0;
            return 0; /* the topology server does not run yet */
        }
        json_object_set_new(cells, cell, w);
    }
    json_t *settings = json_deep_copy(path2(want, "reload", "settings"));
    const char *policy = str(json_object_get(spec, "durability"), "policy");
    json_t *req = json_pack("{s:s, s:o, s:o, s:{s:s?, s:s?, s:s?, s:o}, s:i}", "durability",
                            policy ? policy : "AT_LEAST_2", "nodes", shard_nodes(h, key, NULL, 0),
                            "settings", settings ? settings : json_object(), "topology", "database",
                            str(spec, "database"), "tablegroup", str(spec, "tablegroup"), "shard",
                            str(spec, "shard"), "cells", cells, "deadline_ms", CALL_DEADLINE_MS);
    int32_t rc;
    json_t *r = call(h, h->lib->converge, req, &rc);
    const char *message = str(json_object_get(r, "error"), "message");
    if (rc == MGO_EAGAIN) {
        st->converged = 0;
        json_decref(r);
        return 0;
    }
    if (rc != MGO_OK) {
        h->exit_hint = 3;
        fail(h, "mgo_converge of %s: %s: %s", key, h->lib->strerror(rc),
             message ? message : "(no message)");
        json_decref(r);
        return -1;
    }
    if (!json_is_true(json_object_get(r, "converged")))
        st->converged = 0;
    size_t n = json_array_size(json_object_get(r, "changes"));
    st->changes += (int)n;
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(r, "changes"), i, c) {
        const char *what = str(c, "change") ? str(c, "change") : "";
        if (strcmp(what, "synchronous_standby_names") == 0)
            lhost_say(h, "%s: synchronous_standby_names = '%s'", str(c, "instance"), str(c, "to"));
        else if (strcmp(what, "pooler") == 0)
            lhost_say(h, "%s: pooler record in cell %s %s", str(c, "instance"), str(c, "cell"),
                      str(c, "outcome"));
        else {
            char *set = json_dumps(json_object_get(c, "set"), JSON_COMPACT);
            char *reset = json_dumps(json_object_get(c, "reset"), JSON_COMPACT);
            lhost_say(h, "%s: %s%s%s%s%s", str(c, "instance"), what, set ? " set " : "",
                      set ? set : "", reset ? " reset " : "", reset ? reset : "");
            free(set);
            free(reset);
        }
    }
    json_decref(r);
    return 0;
}

/* ---- the step ---------------------------------------------------------------------------- */

int lhost_step(struct lhost *h, struct lhost_step *out)
{
    struct lhost_step st = {0};
    int32_t rc;
    if (clean_creating(h) != 0 || ensure_running(h, &st.started) != 0)
        return -1;
    json_t *r = call(h, h->lib->reconcile, reconcile_request(h), &rc);
    if (rc != MGO_OK) {
        char *dump = r ? json_dumps(json_object_get(r, "error"), JSON_COMPACT) : NULL;
        h->exit_hint = 3;
        fail(h, "mgo_reconcile: %s %s", h->lib->strerror(rc), dump ? dump : "");
        free(dump);
        json_decref(r);
        return -1;
    }
    json_decref(h->desired);
    json_decref(h->resolved);
    h->desired = json_incref(json_object_get(r, "desired"));
    h->resolved = json_incref(json_object_get(r, "resolved"));
    int failed = execute(h, json_object_get(r, "actions"), &st);
    json_decref(r);
    if (failed || run_drains(h, &st) != 0)
        return -1;
    json_t *keys = shard_keys(h);
    size_t i;
    json_t *k;
    st.converged = 1;
    json_array_foreach (keys, i, k) {
        if (converge_shard(h, json_string_value(k), &st) != 0) {
            json_decref(keys);
            return -1;
        }
    }
    json_decref(keys);
    st.phase = str(json_object_get(h->st, "status"), "phase");
    if (out)
        *out = st;
    return 0;
}

static int observe_ok(struct lhost *h, char *why, size_t size)
{
    json_t *r = lhost_observe(h);
    if (!r) {
        (void)snprintf(why, size, "%.500s", h->error);
        return 0;
    }
    int ok = json_is_true(json_object_get(r, "ok"));
    json_t *v = json_array_get(json_object_get(r, "violations"), 0);
    (void)snprintf(why, size, "%s: %s", str(v, "invariant") ? str(v, "invariant") : "",
                   str(v, "evidence") ? str(v, "evidence") : "");
    json_decref(r);
    return ok;
}

int lhost_converge(struct lhost *h, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct lhost_step st;
    char waiting[600] = "";
    for (;;) {
        if (lhost_step(h, &st) != 0)
            return -1;
        const char *phase = st.phase ? st.phase : "";
        char why[600] = "";
        if (st.actions == 0 && st.drains == 0 && st.converged && strcmp(phase, "Healthy") == 0) {
            if (observe_ok(h, why, sizeof(why))) {
                json_t *m = json_object_get(h->st, "cluster_text");
                json_object_set(h->st, "previous", m ? m : json_null());
                return lhost_save(h);
            }
        } else {
            const char *name, *wait = NULL, *wname = NULL;
            json_t *rec;
            json_object_foreach (section(h, "instances"), name, rec)
                if (str(rec, "waiting") && drain_state(rec)) {
                    wait = str(rec, "waiting");
                    wname = name;
                }
            if (wait)
                (void)snprintf(why, sizeof(why), "the drain of %s waits: %s", wname, wait);
            else
                (void)snprintf(why, sizeof(why), "phase %s, %d actions, %d drains under way, %s",
                               phase, st.actions, st.drains,
                               st.converged ? "replication and settings in place"
                                            : "replication or settings converging");
        }
        if (strcmp(why, waiting) != 0) {
            lhost_say(h, "waiting: %s", why);
            (void)snprintf(waiting, sizeof(waiting), "%s", why);
        }
        if (mono_ms() >= deadline)
            return fail(h, "not converged after %d s: %s", timeout_ms / 1000, why);
        if (st.writes == 0 && st.drain_moves == 0 && st.changes == 0 && st.started == 0)
            pause_ms(IDLE_PAUSE_MS);
    }
}

/* ---- observe and status ------------------------------------------------------------------ */

static void violation(json_t *list, const char *inv, const char *inst, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void violation(json_t *list, const char *inv, const char *inst, const char *fmt, ...)
{
    char ev[600];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(ev, sizeof(ev), fmt, ap);
    va_end(ap);
    json_array_append_new(
        list, json_pack("{s:s, s:s?, s:s}", "invariant", inv, "instance", inst, "evidence", ev));
}

struct unrecorded_ctx {
    struct lhost *h;
    json_t *list;
};

static void unrecorded_one(void *ctx, pid_t pid, const char *datadir)
{
    struct unrecorded_ctx *u = ctx;
    const char *n;
    json_t *rec;
    json_object_foreach (section(u->h, "instances"), n, rec) {
        char abs[800];
        proc_path(&u->h->env, idata(rec) ? idata(rec) : "", abs, sizeof(abs));
        if (idata(rec) && strcmp(abs, datadir) == 0)
            return;
    }
    violation(u->list, "unregistered", NULL,
              "postmaster %ld runs from %s, which no instance of the cluster records%s", (long)pid,
              datadir, access(datadir, F_OK) == 0 ? "" : " (its directory is gone)");
}

/* Postmasters running from a data directory under the cluster's directory that no record
 * names: found by their command line, so one whose directory was deleted counts too. */
static void unrecorded(struct lhost *h, json_t *list)
{
    struct unrecorded_ctx u = {h, list};
    proc_pg_postmasters(&h->env, unrecorded_one, &u);
}

/* Pooler records of each shard and cell against the instances that run. */
static void check_poolers(struct lhost *h, json_t *list)
{
    const char *name;
    json_t *rec;
    json_t *seen = json_object(); /* "cell|key" done */
    json_object_foreach (section(h, "instances"), name, rec) {
        const json_t *s = ispec(rec);
        const char *cell = str(s, "cell");
        char k[500];
        shard_key(rec, k, sizeof(k));
        (void)snprintf(k + strlen(k), sizeof(k) - strlen(k), "|%s", cell ? cell : "");
        if (!cell || json_object_get(seen, k))
            continue;
        json_object_set_new(seen, k, json_true());
        json_t *w = topo_where(h, cell);
        if (!w)
            continue;
        json_t *req = json_pack(
            "{s:s, s:{s:O, s:O}, s:s, s:s?, s:s?, s:s?, s:O, s:i}", "op", "list_poolers", "etcd",
            "endpoints", json_object_get(w, "endpoints"), "root", json_object_get(w, "root"),
            "cell", cell, "database", str(s, "database"), "table_group", str(s, "tablegroup"),
            "shard", str(s, "shard"), "cell_root", json_object_get(w, "root"), "deadline_ms", 5000);
        json_decref(w);
        int32_t rc;
        json_t *r = call(h, h->lib->topology, req, &rc);
        if (rc != MGO_OK) {
            violation(list, "topology", NULL, "cell %s: the pooler records cannot be read: %s",
                      cell, str(json_object_get(r, "error"), "message"));
            json_decref(r);
            continue;
        }
        size_t i;
        json_t *p;
        json_t *names = json_object();
        json_array_foreach (json_object_get(r, "poolers"), i, p) {
            const char *pn = str(json_object_get(p, "id"), "name");
            if (!pn)
                continue;
            json_object_set_new(names, pn, json_true());
            json_t *ir = json_object_get(section(h, "instances"), pn);
            if (!ir)
                violation(list, "topology", pn,
                          "a pooler record of cell %s names %s, which the cluster does not run",
                          cell, pn);
        }
        const char *n2;
        json_t *r2;
        json_object_foreach (section(h, "instances"), n2, r2) {
            char k2[500];
            shard_key(r2, k2, sizeof(k2));
            (void)snprintf(k2 + strlen(k2), sizeof(k2) - strlen(k2), "|%s",
                           str(ispec(r2), "cell") ? str(ispec(r2), "cell") : "");
            if (strcmp(k2, k) == 0 && !json_object_get(names, n2) &&
                proc_pg_pid(&h->env, idata(r2)) && !drain_state(r2))
                violation(list, "topology", n2,
                          "%s runs but has no pooler record in cell %s's topology", n2, cell);
        }
        json_decref(names);
        json_decref(r);
    }
    json_decref(seen);
}

/* The resolved cluster (where each cell keeps its topology records) when no pass ran yet in
 * this command: a reconcile without a target, which only resolves. */
static void ensure_resolved(struct lhost *h)
{
    int32_t rc;
    if (h->resolved || !json_object_get(h->st, "manifests"))
        return;
    json_t *req = json_pack("{s:s, s:O, s:{s:b}}", "cluster", h->cluster, "manifests",
                            json_object_get(h->st, "manifests"), "topology", "register", 0);
    if (str(h->st, "namespace"))
        json_object_set(req, "namespace", json_object_get(h->st, "namespace"));
    json_t *r = call(h, h->lib->reconcile, req, &rc);
    if (rc == MGO_OK)
        h->resolved = json_incref(json_object_get(r, "resolved"));
    json_decref(r);
}

json_t *lhost_observe(struct lhost *h)
{
    ensure_resolved(h);
    json_t *shards = json_array();
    json_t *keys = shard_keys(h);
    size_t i;
    json_t *k;
    json_array_foreach (keys, i, k) {
        const char *key = json_string_value(k);
        const char *policy = NULL;
        const char *name;
        json_t *rec;
        json_object_foreach (section(h, "instances"), name, rec) {
            char kk[400];
            shard_key(rec, kk, sizeof(kk));
            if (strcmp(kk, key) == 0)
                policy = durability_of(rec);
        }
        json_t *nodes = shard_nodes(h, key, NULL, 1);
        if (json_array_size(nodes) == 0) { /* every instance still being created */
            json_decref(nodes);
            continue;
        }
        json_array_append_new(shards, json_pack("{s:s, s:s, s:o}", "name", key, "durability",
                                                policy ? policy : "AT_LEAST_2", "nodes", nodes));
    }
    json_decref(keys);
    int32_t rc;
    json_t *r = call(h, h->lib->observe,
                     json_pack("{s:o, s:i}", "shards", shards, "deadline_ms", 20000), &rc);
    if (rc != MGO_OK) {
        fail(h, "mgo_observe: %s: %s", h->lib->strerror(rc),
             str(json_object_get(r, "error"), "message"));
        json_decref(r);
        return NULL;
    }
    json_t *list = json_object_get(r, "violations");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(r, "violations", list);
    }
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "etcd"), name, rec) {
        if (!proc_etcd_pid(&h->env, name))
            violation(list, "process", name, "etcd %s is recorded but does not run", name);
        else if (!proc_port_open(etcd_client_port(rec)))
            violation(list, "process", name, "etcd %s runs but does not answer on port %d", name,
                      etcd_client_port(rec));
    }
    unrecorded(h, list);
    check_poolers(h, list);
    json_object_set_new(r, "ok", json_boolean(json_array_size(list) == 0));
    return r;
}

static int by_place(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    static const char *const keys[] = {"database", "tablegroup", "shard", "pool", "cell"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int c =
            strcmp(str(x, keys[i]) ? str(x, keys[i]) : "", str(y, keys[i]) ? str(y, keys[i]) : "");
        if (c)
            return c;
    }
    json_int_t i = json_integer_value(json_object_get(x, "index")),
               j = json_integer_value(json_object_get(y, "index"));
    return i < j ? -1 : i > j;
}

json_t *lhost_status(struct lhost *h)
{
    /* roles and lag are read live; a probe that missed its deadline is tried once more */
    json_t *obs = lhost_observe(h);
    if (!obs)
        obs = lhost_observe(h);
    json_t *insts = json_array(), *etcds = json_array();
    const char *name;
    json_t *rec;
    json_object_foreach (section(h, "instances"), name, rec) {
        const json_t *s = ispec(rec);
        char key[400], data[800];
        shard_key(rec, key, sizeof(key));
        proc_path(&h->env, idata(rec) ? idata(rec) : "", data, sizeof(data));
        pid_t pid = proc_pg_pid(&h->env, idata(rec));
        const json_t *node = NULL;
        size_t i, j;
        json_t *sh, *n;
        json_array_foreach (json_object_get(obs, "shards"), i, sh)
            json_array_foreach (json_object_get(sh, "nodes"), j, n)
                if (str(n, "name") && strcmp(str(n, "name"), name) == 0)
                    node = n;
        const char *role = str(node, "role");
        const char *ds = drain_state(rec);
        const char *phase = str(rec, "phase") ? str(rec, "phase") : "";
        const char *state = strcmp(phase, "creating") == 0 ? "creating"
                            : ds                           ? "draining"
                            : pid                          ? "running"
                                                           : "stopped";
        json_t *lag = json_object_get(node, "lag_bytes");
        json_t *x = json_pack(
            "{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:O?, s:s, s:s, s:s, s:i, s:O?, s:s, s:s?}",
            "name", name, "cell", str(s, "cell"), "pool", str(s, "pool"), "database",
            str(s, "database"), "tablegroup", str(s, "tablegroup"), "shard", str(s, "shard"),
            "index", json_object_get(s, "index"), "role",
            role && strcmp(role, "down") != 0 ? role : "unknown", "state", state, "host",
            "127.0.0.1", "port", iport(rec), "lag_bytes", lag, "data_dir", data, "drain", ds);
        if (role && strcmp(role, "primary") == 0)
            json_object_set_new(x, "lag_bytes", json_integer(0));
        if (!json_object_get(x, "lag_bytes"))
            json_object_set_new(x, "lag_bytes", json_null());
        if (!json_object_get(x, "drain"))
            json_object_set_new(x, "drain", json_null());
        if (!json_object_get(x, "index"))
            json_object_set_new(x, "index", json_null());
        json_object_set_new(x, "pid", pid ? json_integer(pid) : json_null());
        json_object_set_new(x, "synchronous",
                            json_boolean(json_is_true(json_object_get(node, "synchronous"))));
        json_array_append_new(insts, x);
    }
    json_object_foreach (section(h, "etcd"), name, rec) {
        const json_t *spec = path2(rec, "object", "spec");
        pid_t pid = proc_etcd_pid(&h->env, name);
        json_t *x = json_pack("{s:s, s:O, s:O, s:b}", "name", name, "client_port",
                              json_object_get(spec, "clientPort"), "peer_port",
                              json_object_get(spec, "peerPort"), "running", pid != 0);
        json_object_set_new(x, "pid", pid ? json_integer(pid) : json_null());
        json_array_append_new(etcds, x);
    }
    /* shard by shard, pool, cell, index */
    size_t n = json_array_size(insts);
    json_t **v = calloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_incref(json_array_get(insts, i));
    if (v) {
        qsort(v, n, sizeof(*v), by_place);
        json_array_clear(insts);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(insts, v[i]);
        free(v);
    }
    /* the phase the last pass published, unless nothing of the cluster runs now */
    const char *phase = str(json_object_get(h->st, "status"), "phase");
    int running = 0;
    size_t k;
    json_t *x;
    json_array_foreach (insts, k, x)
        running |= json_is_integer(json_object_get(x, "pid"));
    json_array_foreach (etcds, k, x)
        running |= json_is_true(json_object_get(x, "running"));
    if (!running)
        phase = "Stopped";
    json_t *out = json_pack("{s:s, s:s, s:s, s:o, s:o}", "cluster", h->cluster, "phase",
                            phase ? phase : "Unknown", "state_dir", h->env.dir, "instances", insts,
                            "etcd", etcds);
    if (!obs) /* roles unknown: say why */
        json_object_set_new(out, "observe_error", json_string(h->error));
    json_object_set_new(out, "observe_ok",
                        obs ? json_boolean(json_is_true(json_object_get(obs, "ok"))) : json_null());
    json_t *vs = obs ? json_incref(json_object_get(obs, "violations")) : NULL;
    json_object_set_new(out, "violations", vs ? vs : json_array());
    json_decref(obs);
    return out;
}

int lhost_stop_all(struct lhost *h)
{
    const char *name;
    json_t *rec;
    int rc = 0;
    json_object_foreach (section(h, "instances"), name, rec) {
        if (!proc_pg_pid(&h->env, idata(rec)))
            continue;
        lhost_say(h, "%s: stopping", name);
        if (proc_pg_stop(&h->env, idata(rec), "fast", h->error, sizeof(h->error)) != 0)
            rc = -1;
    }
    json_object_foreach (section(h, "etcd"), name, rec) {
        if (!proc_etcd_pid(&h->env, name))
            continue;
        lhost_say(h, "etcd %s: stopping", name);
        if (proc_etcd_stop(&h->env, name, h->error, sizeof(h->error)) != 0)
            rc = -1;
    }
    return rc;
}
