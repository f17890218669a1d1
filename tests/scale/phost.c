/* The process host of the tests; see phost.h. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "phost.h"

#define STATE_KEY        "drain.multigres.com/state"
#define REQUESTED_AT_KEY "drain.multigres.com/requested-at"
#define SWITCHOVER_KEY   "drain.multigres.com/switchover"
#define PROBE_TIMEOUT_MS 3000
#define CALL_DEADLINE_MS 10000
#define DRAIN_CALLS      12 /* per instance and step: a primary's drain takes about 5 */
#define IDLE_PAUSE_MS    150

static int64_t now_ms(void)
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

__attribute__((format(printf, 2, 3))) static int fail(struct phost *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(h->error, sizeof(h->error), fmt, ap);
    va_end(ap);
    fprintf(stderr, "phost: %s\n", h->error);
    return -1;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *path2(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

static void log_op(struct phost *h, const char *op, const char *instance, json_t *extra)
{
    json_t *e = extra ? extra : json_object();
    json_object_set_new(e, "op", json_string(op));
    json_object_set_new(e, "instance", json_string(instance));
    json_object_set_new(e, "step", json_integer(h->steps));
    json_array_append_new(h->log, e);
}

/* ---- objects the host keeps ----------------------------------------------------------- */

static struct phost_object *find(struct phost_object *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    return NULL;
}

struct phost_object *phost_instance(struct phost *h, const char *name)
{
    return name ? find(h->inst, h->ninst, name) : NULL;
}

static long spec_index(const struct phost_object *o)
{
    const json_t *i = path2(o->object, "spec", "index");
    return json_is_integer(i) ? (long)json_integer_value(i) : -1;
}

struct phost_object *phost_instance_at(struct phost *h, int index)
{
    for (int i = 0; i < h->ninst; i++)
        if (spec_index(&h->inst[i]) == index)
            return &h->inst[i];
    return NULL;
}

static struct phost_object *add(struct phost *h, struct phost_object *v, int *n, const json_t *obj)
{
    const char *name = str(json_object_get(obj, "metadata"), "name");
    struct phost_object *o;
    if (!name || *n == PHOST_MAX_OBJECTS || strlen(name) >= sizeof(o->name))
        return NULL;
    o = &v[(*n)++];
    memset(o, 0, sizeof(*o));
    (void)snprintf(o->name, sizeof(o->name), "%s", name);
    (void)snprintf(o->uid, sizeof(o->uid), "uid-%ld", ++h->next_uid);
    o->node = -1;
    o->object = json_deep_copy(obj);
    o->annotations = json_deep_copy(path2(obj, "metadata", "annotations"));
    if (!o->annotations)
        o->annotations = json_object();
    return o;
}

static void drop(struct phost_object *v, int *n, struct phost_object *o)
{
    json_decref(o->object);
    json_decref(o->annotations);
    size_t at = (size_t)(o - v);
    memmove(o, o + 1, (size_t)(*n - 1 - (int)at) * sizeof(*o));
    (*n)--;
}

/* A newly applied object: the object and its own annotations replace the old ones; the
 * host's annotations (drain) stay. */
static void reapply(struct phost_object *o, const json_t *obj)
{
    json_decref(o->object);
    o->object = json_deep_copy(obj);
    json_object_update(o->annotations, path2(obj, "metadata", "annotations"));
}

static const char *drain_state(const struct phost_object *o)
{
    return str(o->annotations, STATE_KEY);
}

/* ---- probing ---------------------------------------------------------------------------- */

static int node_running(const struct phost *h, int node)
{
    char path[600];
    (void)snprintf(path, sizeof(path), "%s/postmaster.pid", h->shard.nodes[node].datadir);
    return access(path, F_OK) == 0;
}

static int host_ready(const struct phost *h, const char *name)
{
    for (int i = 0; i < PHOST_MAX_OBJECTS; i++)
        if (h->not_ready[i][0] && strcmp(h->not_ready[i], name) == 0)
            return 0;
    return 1;
}

int phost_set_ready(struct phost *h, const char *name, int ready)
{
    int free_slot = -1;
    for (int i = 0; i < PHOST_MAX_OBJECTS; i++) {
        if (h->not_ready[i][0] && strcmp(h->not_ready[i], name) == 0) {
            if (ready)
                h->not_ready[i][0] = '\0';
            return 0;
        }
        if (!h->not_ready[i][0] && free_slot < 0)
            free_slot = i;
    }
    if (ready)
        return 0;
    if (free_slot < 0 || strlen(name) >= sizeof(h->not_ready[0]))
        return -1;
    (void)snprintf(h->not_ready[free_slot], sizeof(h->not_ready[0]), "%s", name);
    return 0;
}

/* 1 primary, 0 standby, -1 does not answer. */
static int probe_role(const struct phost *h, int node)
{
    char ci[256], err[256];
    PGconn *c = NULL;
    PGresult *r = NULL;
    int role = -1;

    if (node < 0 || !node_running(h, node))
        return -1;
    pg_node_conninfo(&h->shard, node, ci, sizeof(ci));
    if (pg_harness_connect(ci, PROBE_TIMEOUT_MS, &c, err, sizeof(err)) != 0)
        return -1;
    if (pg_harness_query(c, "SELECT pg_is_in_recovery()", PROBE_TIMEOUT_MS, &r, err, sizeof(err)) ==
            0 &&
        r && PQntuples(r) == 1)
        role = strcmp(PQgetvalue(r, 0, 0), "f") == 0;
    PQclear(r);
    PQfinish(c);
    return role;
}

static void follow_primary(struct phost *h)
{
    char ci[256];
    if (!h->writer || h->primary < 0 || h->primary == h->writer_node)
        return;
    pg_node_conninfo(&h->shard, h->primary, ci, sizeof(ci));
    writer_switch(h->writer, ci);
    h->writer_node = h->primary;
}

int phost_probe_primary(struct phost *h)
{
    int primary = -1;
    for (int i = 0; i < h->ninst; i++)
        if (primary < 0 && probe_role(h, h->inst[i].node) == 1)
            primary = h->inst[i].node;
    h->primary = primary;
    return primary;
}

/* ---- the reconcile pass ---------------------------------------------------------------- */

static json_t *observed_object(const char *kind, const struct phost_object *o)
{
    return json_pack("{s:s, s:s, s:s, s:O?, s:O}", "kind", kind, "name", o->name, "uid", o->uid,
                     "labels", path2(o->object, "metadata", "labels"), "annotations",
                     o->annotations);
}

json_t *phost_observed(struct phost *h)
{
    char name[128];
    (void)snprintf(name, sizeof(name), "%s-global-topo", h->cluster);
    json_t *objects = json_array();
    json_t *etcd = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:b, s:{s:i, s:i}}", "kind", "Etcd",
                             "name", name, "uid", "uid-etcd", "labels", "multigres.com/cluster",
                             h->cluster, "app.kubernetes.io/managed-by", "mgo", "ready", 1, "ports",
                             "clientPort", h->etcd->client_port, "peerPort", h->etcd->peer_port);
    if (h->etcd_object) { /* as last applied */
        json_object_set(etcd, "labels", path2(h->etcd_object, "metadata", "labels"));
        json_object_set(etcd, "annotations", path2(h->etcd_object, "metadata", "annotations"));
    }
    json_array_append_new(objects, etcd);
    for (int i = 0; i < h->ninst; i++) {
        struct phost_object *o = &h->inst[i];
        json_t *x = observed_object("Instance", o);
        int role = probe_role(h, o->node);
        json_object_set_new(x, "ready", json_boolean(role >= 0 && host_ready(h, o->name)));
        if (role >= 0)
            json_object_set_new(x, "role", json_string(role ? "primary" : "standby"));
        json_object_set_new(x, "ports",
                            json_pack("{s:O}", "port", path2(o->object, "spec", "port")));
        json_array_append_new(objects, x);
    }
    for (int i = 0; i < h->nvol; i++) {
        json_t *x = observed_object("Volume", &h->vol[i]);
        json_object_set_new(x, "ready", json_true());
        json_array_append_new(objects, x);
    }
    json_t *obs = json_pack("{s:o}", "objects", objects);
    if (h->status)
        json_object_set(obs, "status", h->status);
    return obs;
}

static json_t *reconcile(struct phost *h, int32_t *ret_rc)
{
    json_t *req =
        json_pack("{s:s, s:b, s:o, s:{s:i}, s:{s:{s:[s]}}}", "target", "process", "include_desired",
                  1, "observed", phost_observed(h), "process", "port_base", h->port_base,
                  "topology", "etcd", "endpoints", h->etcd->endpoint);
    if (h->spec_text)
        json_object_set_new(
            req, "manifests",
            json_pack("[{s:s, s:s}]", "source", "cluster.yaml", "text", h->spec_text));
    else
        json_object_set_new(req, "objects", json_pack("[O]", h->spec_object));
    if (h->previous_text)
        json_object_set_new(req, "previous", json_string(h->previous_text));
    else if (h->previous_object)
        json_object_set(req, "previous", h->previous_object);
    char *body = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!body)
        return NULL;
    *ret_rc = mgo_reconcile(h->plugin, body, strlen(body), &res, &len);
    free(body);
    h->passes++;
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    return r;
}

/* ---- executing actions ------------------------------------------------------------------ */

/* The node spec of an Instance object; settings point into the object and `buf`. */
struct node_layout {
    struct pg_node_spec spec;
    const char *settings[65];
    char values[64][320];
};

static int layout(const json_t *obj, struct node_layout *l)
{
    const json_t *spec = json_object_get(obj, "spec");
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach ((json_t *)path2(spec, "postgres", "commandLine"), key, v) {
        if (n == 64 || !json_is_string(v))
            return -1;
        (void)snprintf(l->values[n], sizeof(l->values[n]), "%s=%s", key, json_string_value(v));
        l->settings[n] = l->values[n];
        n++;
    }
    l->settings[n] = NULL;
    l->spec = (struct pg_node_spec){
        .name = str(json_object_get(obj, "metadata"), "name"),
        .datadir = str(spec, "dataDir"),
        .port = (int)json_integer_value(json_object_get(spec, "port")),
        .settings = l->settings,
    };
    return l->spec.name && l->spec.datadir && l->spec.port > 0 ? 0 : -1;
}

static int data_exists(const struct phost *h, const char *datadir)
{
    char path[700];
    (void)snprintf(path, sizeof(path), "%s/%s/PG_VERSION", h->shard.dir, datadir);
    return access(path, F_OK) == 0;
}

/* An existing data directory started as a standby of the current primary. */
static int start_on_volume(struct phost *h, const struct node_layout *l, const char **how)
{
    char state[64] = "";
    int node = pg_node_attach(&h->shard, &l->spec);
    if (node < 0)
        return fail(h, "%s: attach to its data directory failed (%d)", l->spec.name, node);
    if (h->primary < 0) {
        (void)pg_node_forget(&h->shard, node);
        return fail(h, "%s: its volume exists and no primary answers to follow", l->spec.name);
    }
    if (pg_node_controldata(&h->shard, node, "Database cluster state", state, sizeof(state)) != 0) {
        (void)pg_node_forget(&h->shard, node);
        return fail(h, "%s: pg_controldata failed", l->spec.name);
    }
    *how = "volume";
    /* a primary when it stopped (cleanly or not): its history may have diverged from the
     * current primary's; any recovery state was a standby's, which follows as it is */
    if (strcmp(state, "shut down") == 0 || strcmp(state, "in production") == 0) {
        *how = "volume+rewind";
        if (pg_node_rewind(&h->shard, node, h->primary) != 0) {
            (void)pg_node_forget(&h->shard, node);
            return fail(h, "%s: pg_rewind from %s failed (was %s)", l->spec.name,
                        h->shard.nodes[h->primary].name, state);
        }
    }
    if (pg_node_follow(&h->shard, node, h->primary) != 0 || pg_node_start(&h->shard, node) != 0) {
        (void)pg_node_forget(&h->shard, node);
        return fail(h, "%s: could not start it as a standby of %s", l->spec.name,
                    h->shard.nodes[h->primary].name);
    }
    return node;
}

static int create_instance(struct phost *h, const json_t *obj)
{
    struct node_layout *l = calloc(1, sizeof(*l));
    const char *how = "basebackup";
    int node = -1;
    if (!l || layout(obj, l) != 0) {
        free(l);
        return fail(h, "an Instance without a name, data directory, port or command line");
    }
    const char *role = str(json_object_get(obj, "bootstrap"), "role");
    (void)phost_probe_primary(h);
    if (data_exists(h, l->spec.datadir)) {
        node = start_on_volume(h, l, &how);
    } else if (role && strcmp(role, "primary") == 0 && h->ninst == 0 && h->primary < 0) {
        how = "initdb";
        node = pg_node_create(&h->shard, &l->spec, -1);
        if (node < 0)
            fail(h, "%s: initdb and start failed (%d)", l->spec.name, node);
    } else if (h->primary < 0) {
        fail(h, "%s: no primary answers to copy", l->spec.name);
    } else {
        node = pg_node_create(&h->shard, &l->spec, h->primary);
        if (node < 0)
            fail(h, "%s: base backup from %s and start failed (%d)", l->spec.name,
                 h->shard.nodes[h->primary].name, node);
    }
    free(l);
    if (node < 0)
        return -1;
    struct phost_object *o = add(h, h->inst, &h->ninst, obj);
    if (!o) {
        (void)pg_node_forget(&h->shard, node);
        return fail(h, "too many instances");
    }
    o->node = node;
    o->starts = 1;
    log_op(h, "create", o->name,
           json_pack("{s:s, s:i, s:I}", "how", how, "node", node, "pid",
                     (json_int_t)h->shard.nodes[node].pid));
    if (strcmp(how, "initdb") == 0)
        h->primary = node;
    if (h->after_create && h->after_create(h, o, h->after_ctx) != 0)
        return fail(h, "the fault injector failed after creating %s", o->name);
    return 0;
}

static int apply_object(struct phost *h, const json_t *a)
{
    const json_t *obj = json_object_get(a, "object");
    const char *kind = str(obj, "kind"), *reason = str(a, "reason");
    const char *name = str(json_object_get(obj, "metadata"), "name");
    if (!kind || !name || !reason)
        return fail(h, "an apply without kind, name or reason");
    if (strcmp(kind, "Etcd") == 0) {
        const json_t *spec = json_object_get(obj, "spec");
        char want[128];
        (void)snprintf(want, sizeof(want), "%s-global-topo", h->cluster);
        if (strcmp(name, want) != 0 ||
            json_integer_value(json_object_get(spec, "clientPort")) != h->etcd->client_port ||
            json_integer_value(json_object_get(spec, "peerPort")) != h->etcd->peer_port)
            return fail(h, "apply of Etcd %s on other ports than the recorded %d/%d", name,
                        h->etcd->client_port, h->etcd->peer_port);
        json_decref(h->etcd_object);
        h->etcd_object = json_deep_copy(obj);
        return 0;
    }
    if (strcmp(kind, "Volume") == 0) {
        struct phost_object *o = find(h->vol, h->nvol, name);
        if (o) {
            reapply(o, obj);
            return 0;
        }
        const char *path = str(json_object_get(obj, "spec"), "path");
        if (!path || pg_shard_mkdir(&h->shard, path) != 0)
            return fail(h, "Volume %s: mkdir %s failed", name, path ? path : "(no path)");
        return add(h, h->vol, &h->nvol, obj) ? 0 : fail(h, "too many volumes");
    }
    if (strcmp(kind, "Instance") != 0)
        return fail(h, "apply of an unknown kind %s", kind);
    struct phost_object *o = phost_instance(h, name);
    if (strcmp(reason, "create") == 0) {
        if (o)
            return fail(h, "create of Instance %s, which exists", name);
        return create_instance(h, obj);
    }
    if (strcmp(reason, "reload") == 0 && o) {
        if (strcmp(str(path2(obj, "metadata", "annotations"), "multigres.com/spec-hash"),
                   str(o->annotations, "multigres.com/spec-hash")) != 0)
            return fail(h, "a reload of Instance %s that changes its spec hash", name);
        reapply(o, obj);
        log_op(h, "reload", name, NULL);
        return 0;
    }
    return fail(h, "apply %s of Instance %s: an instance changes only by create or reload", reason,
                name);
}

static int delete_object(struct phost *h, const json_t *a)
{
    const char *kind = str(a, "kind"), *name = str(a, "name"), *uid = str(a, "uid");
    int is_inst = kind && strcmp(kind, "Instance") == 0;
    if (!kind || !name)
        return fail(h, "a delete without kind or name");
    struct phost_object *o = is_inst                       ? phost_instance(h, name)
                             : strcmp(kind, "Volume") == 0 ? find(h->vol, h->nvol, name)
                                                           : NULL;
    if (!o || (uid && strcmp(uid, o->uid) != 0)) {
        fprintf(stderr, "phost: delete %s %s: %s\n", kind, name,
                o ? "uid precondition failed" : "not found (done)");
        return 0;
    }
    if (is_inst) {
        const char *state = drain_state(o);
        if (strcmp(str(a, "reason") ? str(a, "reason") : "", "cluster-deleted") != 0 &&
            (!state || strcmp(state, "ready-for-deletion") != 0))
            return fail(h, "delete of Instance %s in drain state %s", name,
                        state ? state : "(none)");
        if (h->primary == o->node)
            h->primary = -1;
        int rc = pg_node_forget(&h->shard, o->node);
        /* the annotations it went with: a switchover's old primary is told apart */
        log_op(h, "delete", name,
               json_pack("{s:s?, s:s?}", "reason", str(a, "reason"), "switchover",
                         str(o->annotations, SWITCHOVER_KEY)));
        drop(h->inst, &h->ninst, o);
        return rc == 0 ? 0 : fail(h, "Instance %s did not stop cleanly", name);
    }
    const char *path = str(json_object_get(o->object, "spec"), "path");
    if (!path || pg_shard_remove(&h->shard, path) != 0)
        return fail(h, "Volume %s: removing %s failed", name, path ? path : "(no path)");
    log_op(h, "remove-volume", name,
           json_pack("{s:s, s:s?}", "path", path, "reason", str(a, "reason")));
    drop(h->vol, &h->nvol, o);
    return 0;
}

static int annotate(struct phost *h, const json_t *a)
{
    const char *kind = str(a, "kind"), *name = str(a, "name"), *key;
    json_t *v;
    struct phost_object *o = !kind || !name                  ? NULL
                             : strcmp(kind, "Instance") == 0 ? phost_instance(h, name)
                             : strcmp(kind, "Volume") == 0   ? find(h->vol, h->nvol, name)
                                                             : NULL;
    if (!o)
        return fail(h, "annotate of %s %s, which does not exist", kind ? kind : "?",
                    name ? name : "?");
    json_object_foreach ((json_t *)json_object_get(a, "annotations"), key, v) {
        if (json_is_null(v))
            json_object_del(o->annotations, key);
        else
            json_object_set(o->annotations, key, v);
    }
    log_op(h, "annotate", name,
           json_pack("{s:O}", "annotations", json_object_get(a, "annotations")));
    return 0;
}

static int execute(struct phost *h, const json_t *actions, struct phost_step *st, int *deleted)
{
    size_t k;
    json_t *a;
    json_array_foreach (actions, k, a) {
        const char *type = str(a, "type");
        int rc = 0;
        if (!type)
            return fail(h, "an action without a type");
        if (strcmp(type, "status") == 0) {
            json_decref(h->status);
            h->status = json_deep_copy(json_object_get(a, "status"));
            continue;
        }
        st->actions++;
        if (strcmp(type, "event") == 0) {
            fprintf(stderr, "phost event %s %s %s: %s\n", str(a, "eventType"), str(a, "reason"),
                    str(json_object_get(a, "regarding"), "name"), str(a, "message"));
            json_t *e = json_deep_copy(a);
            json_object_set_new(e, "step", json_integer(h->steps));
            json_array_append_new(h->events, e);
            continue;
        }
        st->writes++;
        if (strcmp(type, "apply") == 0)
            rc = apply_object(h, a);
        else if (strcmp(type, "delete") == 0) {
            int was = h->ninst;
            rc = delete_object(h, a);
            *deleted += h->ninst < was;
        } else if (strcmp(type, "annotate") == 0)
            rc = annotate(h, a);
        else
            rc = fail(h, "unknown action %s", type);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* ---- drains ----------------------------------------------------------------------------- */

static struct phost *host_of(const struct dhost *d)
{
    return (struct phost *)(void *)((char *)d - offsetof(struct phost, drain));
}

static struct phost_object *instance_of_node(struct phost *h, int node)
{
    for (int i = 0; i < h->ninst; i++)
        if (h->inst[i].node == node)
            return &h->inst[i];
    return NULL;
}

static void describe(const struct dhost *d, int node, const char **cell, int *index, int *ready)
{
    struct phost *h = host_of(d);
    struct phost_object *o = instance_of_node(h, node);
    if (!o)
        return;
    if (str(json_object_get(o->object, "spec"), "cell"))
        *cell = str(json_object_get(o->object, "spec"), "cell");
    *index = (int)spec_index(o);
    *ready = probe_role(h, node) >= 0 && host_ready(h, o->name);
}

static int persist(struct dhost *d)
{
    struct phost *h = host_of(d);
    struct phost_object *o = phost_instance(h, d->instance);
    if (!o)
        return -1;
    json_object_set_new(o->annotations, STATE_KEY, json_string(d->state));
    if (d->switchover[0])
        json_object_set_new(o->annotations, SWITCHOVER_KEY, json_string(d->switchover));
    else
        json_object_del(o->annotations, SWITCHOVER_KEY);
    if (dhost_follow_switchover(d) != 0)
        return -1;
    h->writer_node = h->primary; /* dhost_follow_switchover pointed the writer there */
    if (h->after_persist && h->after_persist(h, o, h->after_ctx) != 0) {
        fail(h, "the check after persisting %s [%s%s%s] failed", o->name, d->state,
             d->switchover[0] ? " " : "", d->switchover);
        return -1;
    }
    return 0;
}

static int stop_node(struct dhost *d, int node)
{
    struct phost *h = host_of(d);
    struct phost_object *o = instance_of_node(h, node);
    log_op(h, "stop", o ? o->name : "?", json_pack("{s:s}", "by", "mgo_drain"));
    return dhost_stop_harness(d, node);
}

static int start_node(struct dhost *d, int node)
{
    struct phost *h = host_of(d);
    struct phost_object *o = instance_of_node(h, node);
    int rc = dhost_start_harness(d, node);
    if (o)
        o->starts++;
    log_op(h, "start", o ? o->name : "?", json_pack("{s:s}", "by", "mgo_drain"));
    return rc;
}

static const char *durability(const struct phost *h)
{
    const char *p = str(path2(phost_desired_instance(h), "spec", "durability"), "policy");
    return p ? p : "AT_LEAST_2";
}

/* Step the drain of instance o until ready-for-deletion or MGO_EAGAIN. */
static int step_drain(struct phost *h, struct phost_object *o, struct phost_step *st)
{
    struct dhost *d = &h->drain;
    h->error[0] = '\0';
    dhost_init(d, h->plugin, &h->shard, o->name, &h->follow);
    (void)snprintf(d->state, sizeof(d->state), "%s", drain_state(o));
    (void)snprintf(d->switchover, sizeof(d->switchover), "%s",
                   str(o->annotations, SWITCHOVER_KEY) ? str(o->annotations, SWITCHOVER_KEY) : "");
    (void)snprintf(d->durability, sizeof(d->durability), "%s", durability(h));
    d->deadline_ms = h->drain_deadline_ms > 0 ? h->drain_deadline_ms : CALL_DEADLINE_MS;
    d->describe = describe;
    d->persist = persist;
    d->stop = stop_node;
    d->start = start_node;
    for (int i = 0; i < h->ninst; i++)
        if (&h->inst[i] != o && drain_state(&h->inst[i]) && h->inst[i].node >= 0)
            (void)snprintf(d->node_drain[h->inst[i].node], sizeof(d->node_drain[0]), "%s",
                           drain_state(&h->inst[i]));
    int calls = h->drain_call_limit > 0 ? h->drain_call_limit : DRAIN_CALLS;
    for (int call = 0; call < calls; call++) {
        char before[160];
        int acts = d->stops + d->starts;
        (void)snprintf(before, sizeof(before), "%s%s%s", d->state, d->switchover[0] ? " " : "",
                       d->switchover);
        int32_t rc = dhost_call(d);
        char after[160];
        h->drain_calls++;
        (void)snprintf(after, sizeof(after), "%s%s%s", d->state, d->switchover[0] ? " " : "",
                       d->switchover);
        st->drain_moves += strcmp(before, after) != 0 || acts != d->stops + d->starts;
        log_op(h, "drain", o->name,
               json_pack("{s:s, s:s, s:i, s:s}", "from", before, "to", after, "rc", rc, "message",
                         d->message));
        fprintf(stderr, "phost drain %s: [%s] -> [%s] (%d) %s\n", o->name, before, after, rc,
                d->message);
        if (rc == -1000) {
            char why[sizeof(h->error)];
            (void)snprintf(why, sizeof(why), "%s", h->error);
            return fail(h, "drain of %s: %s (%.1500s)", o->name, d->message, why);
        }
        if (rc == MGO_EAGAIN || strcmp(d->state, "ready-for-deletion") == 0)
            return 0;
        if (rc != MGO_OK)
            return fail(h, "mgo_drain of %s: %d %s", o->name, rc, d->message);
    }
    return 0;
}

static int run_drains(struct phost *h, struct phost_step *st)
{
    char names[PHOST_MAX_OBJECTS][64];
    int n = 0;
    for (int i = 0; i < h->ninst; i++)
        if (drain_state(&h->inst[i]))
            (void)snprintf(names[n++], sizeof(names[0]), "%s", h->inst[i].name);
    for (int i = 0; i < n && !h->hold_drains; i++) {
        struct phost_object *o = phost_instance(h, names[i]);
        if (o && strcmp(drain_state(o), "ready-for-deletion") != 0 && step_drain(h, o, st) != 0)
            return -1;
    }
    for (int i = 0; i < h->ninst; i++)
        st->drains += drain_state(&h->inst[i]) != NULL;
    return 0;
}

/* ---- mgo_converge ----------------------------------------------------------------------- */

const json_t *phost_desired_instance(const struct phost *h)
{
    size_t k;
    json_t *o;
    json_array_foreach (h->desired, k, o)
        if (str(o, "kind") && strcmp(str(o, "kind"), "Instance") == 0)
            return o;
    return NULL;
}

static int by_index(const void *a, const void *b)
{
    long x = spec_index(*(struct phost_object *const *)a),
         y = spec_index(*(struct phost_object *const *)b);
    return x < y ? -1 : x > y;
}

/* The instances in index order. */
static int sorted(struct phost *h, struct phost_object **out)
{
    for (int i = 0; i < h->ninst; i++)
        out[i] = &h->inst[i];
    qsort(out, (size_t)h->ninst, sizeof(*out), by_index);
    return h->ninst;
}

static json_t *shard_nodes(struct phost *h, int for_observe)
{
    struct phost_object *v[PHOST_MAX_OBJECTS];
    json_t *nodes = json_array();
    int n = sorted(h, v);
    for (int i = 0; i < n; i++) {
        char ci[256];
        pg_node_conninfo(&h->shard, v[i]->node, ci, sizeof(ci));
        json_t *x = json_pack("{s:s, s:s?, s:I, s:s, s:b}", "name", v[i]->name, "cell",
                              str(json_object_get(v[i]->object, "spec"), "cell"), "index",
                              (json_int_t)spec_index(v[i]), "conninfo", ci, "running",
                              node_running(h, v[i]->node));
        const char *state = drain_state(v[i]);
        json_object_set_new(x, "drain", state ? json_string(state) : json_null());
        if (for_observe && !state)
            json_object_del(x, "drain");
        if (for_observe && state && str(v[i]->annotations, REQUESTED_AT_KEY))
            json_object_set_new(x, "requested_at",
                                json_string(str(v[i]->annotations, REQUESTED_AT_KEY)));
        json_array_append_new(nodes, x);
    }
    return nodes;
}

static const char *topo_root(const struct phost *h)
{
    const char *root = str(json_object_get(h->etcd_object, "spec"), "rootPath");
    size_t k;
    json_t *o;
    json_array_foreach (h->desired, k, o)
        if (!root && str(o, "kind") && strcmp(str(o, "kind"), "Etcd") == 0)
            root = str(json_object_get(o, "spec"), "rootPath");
    return root ? root : "/multigres/global";
}

static int converge(struct phost *h, struct phost_step *st)
{
    const json_t *want = phost_desired_instance(h);
    const json_t *spec = json_object_get(want, "spec");
    if (h->ninst == 0 || !want) {
        st->converged = h->ninst == 0;
        return 0;
    }
    const char *cell = str(spec, "cell");
    json_t *settings = json_deep_copy(path2(want, "reload", "settings"));
    if (!cell || !str(spec, "database") || !str(spec, "tablegroup") || !str(spec, "shard")) {
        json_decref(settings);
        return fail(h, "the desired Instance lacks its cell, database, tablegroup or shard");
    }
    json_t *req = json_pack("{s:s, s:o, s:o, s:{s:s, s:s, s:s, s:{s:{s:[s], s:s}}}, s:i}",
                            "durability", durability(h), "nodes", shard_nodes(h, 0), "settings",
                            settings ? settings : json_object(), "topology", "database",
                            str(spec, "database"), "tablegroup", str(spec, "tablegroup"), "shard",
                            str(spec, "shard"), "cells", cell, "endpoints", h->etcd->endpoint,
                            "root", topo_root(h), "deadline_ms", CALL_DEADLINE_MS);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!body)
        return fail(h, "mgo_converge request: out of memory");
    int32_t rc = mgo_converge(h->plugin, body, strlen(body), &res, &len);
    free(body);
    h->converge_calls++;
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    st->converge_rc = rc;
    json_decref(h->last_converge);
    h->last_converge = r;
    const char *message = str(json_object_get(r, "error"), "message");
    if (rc == MGO_EAGAIN) {
        fprintf(stderr, "phost converge: retry later: %s\n", message ? message : "");
        return 0;
    }
    if (rc != MGO_OK)
        return fail(h, "mgo_converge: %d %s", rc, message ? message : "(no message)");
    st->converged = json_is_true(json_object_get(r, "converged"));
    st->changes = (int)json_array_size(json_object_get(r, "changes"));
    if (st->changes || json_array_size(json_object_get(r, "waiting"))) {
        char *c = json_dumps(json_object_get(r, "changes"), JSON_COMPACT);
        char *w = json_dumps(json_object_get(r, "waiting"), JSON_COMPACT);
        fprintf(stderr, "phost converge: changes %s waiting %s\n", c ? c : "", w ? w : "");
        free(c);
        free(w);
    }
    return 0;
}

/* ---- the step --------------------------------------------------------------------------- */

int phost_step(struct phost *h, struct phost_step *out)
{
    struct phost_step st = {0};
    int32_t rc = MGO_EINTERNAL;
    h->steps++;
    (void)phost_probe_primary(h);
    follow_primary(h);
    json_t *r = reconcile(h, &rc);
    if (rc != MGO_OK) {
        char *dump = r ? json_dumps(json_object_get(r, "error"), JSON_COMPACT) : NULL;
        fail(h, "mgo_reconcile: %d %s", rc, dump ? dump : "(no result)");
        free(dump);
        json_decref(r);
        return -1;
    }
    json_decref(h->desired);
    h->desired = json_incref(json_object_get(r, "desired"));
    int deleted = 0;
    int failed = execute(h, json_object_get(r, "actions"), &st, &deleted);
    json_decref(r);
    if (failed)
        return -1;
    if (h->after_actions && h->after_actions(h, deleted, h->after_ctx) != 0)
        return fail(h, "the check after the actions of step %d failed", h->steps);
    if (run_drains(h, &st) != 0 || converge(h, &st) != 0)
        return -1;
    (void)phost_probe_primary(h);
    follow_primary(h);
    if (out)
        *out = st;
    if (h->after_step && h->after_step(h, h->after_ctx) != 0)
        return fail(h, "the check after step %d failed", h->steps);
    return 0;
}

static void set_previous(struct phost *h)
{
    free(h->previous_text);
    json_decref(h->previous_object);
    h->previous_text = h->spec_text ? strdup(h->spec_text) : NULL;
    h->previous_object = h->spec_object ? json_deep_copy(h->spec_object) : NULL;
}

int phost_converge(struct phost *h, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct phost_step st;
    for (;;) {
        if (phost_step(h, &st) != 0)
            return -1;
        if (st.actions == 0 && st.drains == 0 && st.converged) {
            set_previous(h);
            return 0;
        }
        if (now_ms() >= deadline)
            return fail(h,
                        "not converged after %d ms: last step %d actions, %d drains pending, "
                        "mgo_converge %d converged %d",
                        timeout_ms, st.actions, st.drains, st.converge_rc, st.converged);
        if (st.writes == 0 && st.drain_moves == 0 && st.changes == 0)
            pause_ms(IDLE_PAUSE_MS);
    }
}

/* ---- observe, topology ------------------------------------------------------------------ */

int phost_observe(struct phost *h, json_t **ret_result)
{
    const json_t *spec = json_object_get(phost_desired_instance(h), "spec");
    char name[300];
    (void)snprintf(name, sizeof(name), "%s/%s/%s", str(spec, "database"), str(spec, "tablegroup"),
                   str(spec, "shard"));
    json_t *req = json_pack("{s:i, s:[{s:s, s:s, s:o}]}", "deadline_ms", CALL_DEADLINE_MS, "shards",
                            "name", name, "durability", durability(h), "nodes", shard_nodes(h, 1));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!body)
        return -1;
    int32_t rc = mgo_observe(h->plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    int ok = rc != MGO_OK ? -1 : json_is_true(json_object_get(r, "ok")) ? 1 : 0;
    if (ok < 0)
        fail(h, "mgo_observe: %d %s", rc, str(json_object_get(r, "error"), "message"));
    if (ret_result)
        *ret_result = r;
    else
        json_decref(r);
    return ok;
}

json_t *phost_list_poolers(struct phost *h)
{
    const json_t *spec = json_object_get(phost_desired_instance(h), "spec");
    json_t *req = json_pack("{s:s, s:{s:[s], s:s}, s:s?, s:s?, s:s?, s:s?, s:i}", "op",
                            "list_poolers", "etcd", "endpoints", h->etcd->endpoint, "root",
                            topo_root(h), "cell", str(spec, "cell"), "database",
                            str(spec, "database"), "table_group", str(spec, "tablegroup"), "shard",
                            str(spec, "shard"), "deadline_ms", CALL_DEADLINE_MS);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!body)
        return NULL;
    int32_t rc = mgo_topology(h->plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    json_t *poolers = json_incref(json_object_get(r, "poolers"));
    if (rc != MGO_OK || !json_is_array(poolers)) {
        fail(h, "mgo_topology list_poolers: %d %s", rc,
             str(json_object_get(r, "error"), "message"));
        json_decref(poolers);
        poolers = NULL;
    }
    json_decref(r);
    return poolers;
}

/* ---- set-up ----------------------------------------------------------------------------- */

int phost_init(struct phost *h, mgo_plugin *plugin, const struct etcd_harness *etcd,
               const char *cluster, int port_base)
{
    memset(h, 0, sizeof(*h));
    h->plugin = plugin;
    h->etcd = etcd;
    h->port_base = port_base;
    h->primary = -1;
    h->writer_node = -1;
    h->follow.primary = &h->primary;
    h->log = json_array();
    h->events = json_array();
    h->desired = json_array();
    (void)snprintf(h->cluster, sizeof(h->cluster), "%s", cluster);
    if (pg_shard_open(&h->shard) != 0)
        return fail(h, "pg_shard_open failed");
    return 0;
}

void phost_fini(struct phost *h)
{
    pg_shard_stop(&h->shard);
    for (int i = 0; i < h->ninst; i++) {
        json_decref(h->inst[i].object);
        json_decref(h->inst[i].annotations);
    }
    for (int i = 0; i < h->nvol; i++) {
        json_decref(h->vol[i].object);
        json_decref(h->vol[i].annotations);
    }
    h->ninst = h->nvol = 0;
    free(h->spec_text);
    free(h->previous_text);
    json_decref(h->spec_object);
    json_decref(h->previous_object);
    json_decref(h->etcd_object);
    json_decref(h->status);
    json_decref(h->desired);
    json_decref(h->log);
    json_decref(h->events);
    json_decref(h->last_converge);
    h->spec_text = h->previous_text = NULL;
    h->spec_object = h->previous_object = h->etcd_object = h->status = h->desired = NULL;
    h->log = h->events = h->last_converge = NULL;
}

int phost_set_spec_text(struct phost *h, const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return -1;
    free(h->spec_text);
    json_decref(h->spec_object);
    h->spec_text = copy;
    h->spec_object = NULL;
    return 0;
}

int phost_set_spec_object(struct phost *h, const json_t *cluster)
{
    json_t *copy = json_deep_copy(cluster);
    if (!copy)
        return -1;
    free(h->spec_text);
    json_decref(h->spec_object);
    h->spec_text = NULL;
    h->spec_object = copy;
    return 0;
}

void phost_follow(struct phost *h, struct writer *w)
{
    h->writer = w;
    h->follow.writer = w;
    h->writer_node = -1;
    (void)phost_probe_primary(h);
    follow_primary(h);
}

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int phost_free_port_base(int count)
{
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (int tries = 0; tries < 500; tries++) {
        seed = seed * 1103515245u + 12345u;
        int base = 20000 + (int)((seed >> 8) % 10000u), ok = 1;
        for (int p = base; p < base + count && ok; p++)
            ok = port_free(p);
        if (ok)
            return base;
    }
    return -1;
}

char *phost_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = f ? calloc(1, 65536) : NULL;
    if (buf && fread(buf, 1, 65535, f) == 0) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}
