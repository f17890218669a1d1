/*
 * The process render target (see render.h): what a local process host runs for one cluster with
 * the `postgres` data-plane driver. One Etcd object per managed topology server, and per shard,
 * per pool x cell group, per index an Instance (one PostgreSQL server) followed by its Volume.
 * Paths are relative to the host's state directory. Ports are sticky: a port recorded for an
 * object is reused, new ones are handed out upward from the port base in render order.
 * User-facing description: docs/spec/render-process.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "render/render.h"
#include "spec/names.h"
#include "spec/pgparams.h"

#define KIND_ETCD         "Etcd"
#define DEFAULT_PORT_BASE 15432
#define MAX_PORT          65535
/* Both synchronous policies (AT_LEAST_2, MULTI_CELL_AT_LEAST_2) need two copies of a commit. */
#define DURABILITY_REQUIRED_COUNT 2
/* Sized for every standby of a large shard plus a base backup's two WAL streams; a constant, so
 * that scaling a pool does not change the spec hash of every instance. postgresConfig may raise
 * them. */
#define DEFAULT_MAX_WAL_SENDERS       "20"
#define DEFAULT_MAX_REPLICATION_SLOTS "20"

/* Settings mgo owns on the command line: a postgresConfig entry of the same name is ignored. */
static const char *const pinned_settings[] = {
    "port",
    "listen_addresses",
    "unix_socket_directories",
    "hot_standby",
    "wal_level",
    "wal_log_hints",
    "cluster_name",
    NULL,
};

/* Defaults on the command line that a postgresConfig entry replaces. */
static const char *const default_settings[][2] = {
    {"max_wal_senders", DEFAULT_MAX_WAL_SENDERS},
    {"max_replication_slots", DEFAULT_MAX_REPLICATION_SLOTS},
    {NULL, NULL},
};

/* One render pass: the model, the output array and the port cursor. */
struct process {
    const struct model *m;
    const json_t *recorded; /* {"<object>": {"<port name>": n}} or NULL */
    int64_t next_port;      /* the lowest port that may still be handed out */
    json_t *out;
};

/* One Instance being rendered. */
struct instance {
    const struct model_shard *s;
    const struct model_group *g;
    int index;
    char name[72];
    const char *primary; /* the shard's bootstrap primary; NULL when this is it */
    int64_t port;
};

/* ---- ports -------------------------------------------------------------------------------- */

static int64_t valid_port(const json_t *v)
{
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
    return n >= 1 && n <= MAX_PORT ? (int64_t)n : 0;
}

/* Whether any object, rendered or not, has `port` recorded under any port name. */
static int port_is_recorded(const json_t *recorded, int64_t port)
{
    const char *object, *key;
    const json_t *ports, *v;
    json_object_foreach ((json_t *)recorded, object, ports)
        json_object_foreach ((json_t *)ports, key, v)
            if (valid_port(v) == port)
                return 1;
    return 0;
}

/* The port `key` of object `name`: the recorded one, else the next free one. 0 or -ERANGE when
 * the range above the port base is exhausted. */
static int take_port(struct process *p, const char *name, const char *key, int64_t *ret)
{
    int64_t port = valid_port(json_object_get(json_object_get(p->recorded, name), key));
    if (port) {
        *ret = port;
        return 0;
    }
    /* Ports handed out in this pass lie below the cursor; recorded ones are skipped here. */
    while (p->next_port <= MAX_PORT && port_is_recorded(p->recorded, p->next_port))
        p->next_port++;
    if (p->next_port > MAX_PORT)
        return -ERANGE;
    *ret = p->next_port++;
    return 0;
}

/* ---- shared steps ------------------------------------------------------------------------- */

/* Stamp `obj` and append it to the output; `obj` is consumed in every case. */
static int stamp_append(struct process *p, json_t *obj, int pod_like)
{
    int rc = render_stamp(obj, pod_like);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    return json_array_append_new(p->out, obj) ? -ENOMEM : 0;
}

/* Set `key` of `obj` to `value` (consumed); -ENOMEM when `value` is NULL or the set fails. */
static int set_new(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0 ? 0 : -ENOMEM;
}

/* ---- Etcd --------------------------------------------------------------------------------- */

static int add_etcd(struct process *p, const char *name, const json_t *etcd, const char *root,
                    const char *component, const char *cell)
{
    char data_dir[300];
    int64_t client = 0, peer = 0;
    int rc = take_port(p, name, "clientPort", &client);
    if (!rc)
        rc = take_port(p, name, "peerPort", &peer);
    if (rc)
        return rc;
    const char *set_root = json_string_value(json_object_get(etcd, "rootPath"));
    (void)snprintf(data_dir, sizeof(data_dir), "etcd/%s", name); /* names are at most 253 */
    json_t *obj = render_object(p->m, RENDER_PROCESS_API, KIND_ETCD, name,
                                render_labels(p->m, component, NULL, NULL, NULL, NULL, cell), 1);
    if (!obj)
        return -ENOMEM;
    /* One member whatever `replicas` says: replicas sizes the Kubernetes StatefulSet, while a
     * local host keeps every member on one machine, where more members add no fault tolerance. */
    rc = set_new(obj, "spec",
                 json_pack("{s:s, s:s, s:I, s:I, s:i}", "dataDir", data_dir, "rootPath",
                           set_root ? set_root : root, "clientPort", (json_int_t)client, "peerPort",
                           (json_int_t)peer, "members", 1));
    if (rc) {
        json_decref(obj);
        return rc;
    }
    return stamp_append(p, obj, 0);
}

/* The global topology (unless external), then each cell's managed local topology. */
static int add_etcds(struct process *p)
{
    const struct model *m = p->m;
    char name[300];
    const json_t *global =
        json_object_get(json_object_get(m->resolved, "spec"), "globalTopoServer");
    const json_t *etcd = json_object_get(global, "etcd");
    int rc = 0;
    if (json_is_object(etcd)) {
        (void)snprintf(name, sizeof(name), "%s-global-topo", m->cluster);
        rc = add_etcd(p, name, etcd, "/multigres/global", "global-topo", NULL);
    }
    for (size_t i = 0; !rc && i < m->ncells; i++) {
        const struct model_cell *cell = &m->cells[i];
        etcd = json_object_get(json_object_get(cell->spec, "localTopoServer"), "etcd");
        if (!json_is_object(etcd))
            continue;
        const char *parts[2] = {cell->cr_name, "topo"};
        char root[300];
        names_join(NAMES_STATEFULSET, parts, 2, name, sizeof(name));
        (void)snprintf(root, sizeof(root), "/multigres/%s", cell->name);
        rc = add_etcd(p, name, etcd, root, "local-topo", cell->name);
    }
    return rc;
}

/* ---- PostgreSQL settings ------------------------------------------------------------------ */

/* A parameter PostgreSQL lists with postmaster context needs a restart; so do extension
 * (dotted) and unknown names, since mgo cannot know when they take effect (docs/spec/
 * lifecycle.md): a reload could never be confirmed for one that needs a restart. */
static int is_restart_class(const char *name)
{
    const struct pg_param *param = pg_param_lookup(name);
    return !param || param->context == PG_CONTEXT_POSTMASTER;
}

/* PostgreSQL compares parameter names case-insensitively in ASCII, whatever the locale. */
static int same_name(const char *a, const char *b)
{
    for (;; a++, b++) {
        char x = (char)(*a >= 'A' && *a <= 'Z' ? *a - 'A' + 'a' : *a);
        char y = (char)(*b >= 'A' && *b <= 'Z' ? *b - 'A' + 'a' : *b);
        if (x != y)
            return 0;
        if (!x)
            return 1;
    }
}

static int is_pinned(const char *name)
{
    for (size_t i = 0; pinned_settings[i]; i++)
        if (same_name(name, pinned_settings[i]))
            return 1;
    return 0;
}

/* Whether postgresConfig sets `name`. */
static int config_sets(const json_t *config, const char *name)
{
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)config, key, v)
        if (json_is_string(v) && same_name(key, name))
            return 1;
    return 0;
}

/* Copy the string entries of postgresConfig of one class (restart or reload) into `into`,
 * leaving out the names mgo pins. Values stay the strings the user wrote. */
static int copy_settings(const json_t *config, int restart, json_t *into)
{
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)config, key, v) {
        if (!json_is_string(v) || is_pinned(key) || is_restart_class(key) != restart)
            continue;
        if (json_object_set_new(into, key, json_string(json_string_value(v))))
            return -ENOMEM;
    }
    return 0;
}

/* The settings that must stay on the postgres command line: pg_basebackup and pg_rewind copy
 * postgresql.conf and postgresql.auto.conf from the source, so node-local and restart-class
 * values written there would be overwritten by the primary's. NULL on allocation failure. */
static json_t *command_line(const struct instance *in, const json_t *config)
{
    char port[16], run_dir[96];
    (void)snprintf(port, sizeof(port), "%lld", (long long)in->port);
    (void)snprintf(run_dir, sizeof(run_dir), "instances/%s/run", in->name);
    json_t *cl = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "port", port, "listen_addresses",
                           "127.0.0.1", "unix_socket_directories", run_dir, "hot_standby", "on",
                           "wal_level", "logical", "wal_log_hints", "on", "cluster_name", in->name);
    int rc = cl ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && default_settings[i][0]; i++)
        if (!config_sets(config, default_settings[i][0]))
            rc = set_new(cl, default_settings[i][0], json_string(default_settings[i][1]));
    if (!rc)
        rc = copy_settings(config, 1, cl);
    if (rc) {
        json_decref(cl);
        return NULL;
    }
    return cl;
}

/* {"settings": {every reload-class postgresConfig entry}}. NULL on allocation failure. */
static json_t *reload_settings(const json_t *config)
{
    json_t *settings = json_object();
    if (!settings || copy_settings(config, 0, settings)) {
        json_decref(settings);
        return NULL;
    }
    return json_pack("{s:o}", "settings", settings);
}

/* ---- Instance and Volume ------------------------------------------------------------------ */

/* The Instance's spec; `cl` (the command line) is consumed. NULL on allocation failure. */
static json_t *instance_spec(const struct model *m, const struct instance *in, json_t *cl)
{
    const json_t *spec = json_object_get(m->resolved, "spec");
    const json_t *secret = json_object_get(spec, "postgresPasswordSecretRef");
    json_t *secret_copy = secret ? json_deep_copy(secret) : json_null();
    char data_dir[96];
    if (!secret_copy || !cl) {
        json_decref(secret_copy);
        json_decref(cl);
        return NULL;
    }
    (void)snprintf(data_dir, sizeof(data_dir), "instances/%s/data", in->name);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:s?, s:s?, s:o, s:{s:s, s:i},"
                     " s:{s:s}, s:{s:o}}",
                     "database", in->s->database, "tablegroup", in->s->tablegroup, "shard",
                     in->s->shard, "pool", in->g->pool, "cell", in->g->cell, "index", in->index,
                     "dataDir", data_dir, "port", (json_int_t)in->port, "initdbArgs",
                     json_string_value(json_object_get(in->s->spec, "initdbArgs")), "superuser",
                     json_string_value(json_object_get(spec, "postgresSuperuser")),
                     "passwordSecretRef", secret_copy, "durability", "policy", in->s->durability,
                     "requiredCount", DURABILITY_REQUIRED_COUNT, "topology", "cell", in->g->cell,
                     "postgres", "commandLine", cl);
}

static json_t *instance_labels(const struct model *m, const struct instance *in)
{
    return render_labels(m, "shard-pool", in->s->database, in->s->tablegroup, in->s->shard,
                         in->g->pool, in->g->cell);
}

/* The Instance: spec (hashed) and, outside it, the reload-class settings with their own hash, so
 * that a reload-class change leaves the spec hash alone and is applied without a restart. */
static int add_instance(struct process *p, const struct instance *in)
{
    const json_t *config = json_object_get(in->s->spec, "postgresConfig");
    json_t *obj = render_object(p->m, RENDER_PROCESS_API, RENDER_KIND_INSTANCE, in->name,
                                instance_labels(p->m, in), 1);
    json_t *reload = reload_settings(config);
    char hash[9];
    int rc = obj && reload ? 0 : -ENOMEM;
    if (!rc)
        rc = set_new(obj, "spec", instance_spec(p->m, in, command_line(in, config)));
    if (!rc)
        rc = render_hash(reload, hash);
    if (!rc) {
        rc = set_new(json_object_get(json_object_get(obj, "metadata"), "annotations"),
                     RENDER_RELOAD_HASH, json_string(hash));
    }
    if (!rc) {
        rc = json_object_set_new(obj, "reload", reload) ? -ENOMEM : 0;
        reload = NULL;
    }
    /* Outside spec: who bootstraps a shard without data is no reason to replace an instance
     * when pools are added or resized later. */
    if (!rc)
        rc = set_new(obj, "bootstrap",
                     json_pack("{s:s, s:s?}", "role", in->primary ? "standby" : "primary",
                               "upstream", in->primary));
    json_decref(reload);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    return stamp_append(p, obj, 1);
}

static int add_volume(struct process *p, const struct instance *in)
{
    char path[96];
    const char *size =
        json_string_value(json_object_get(json_object_get(in->g->pool_spec, "storage"), "size"));
    json_t *obj = render_object(p->m, RENDER_PROCESS_API, RENDER_KIND_VOLUME, in->name,
                                instance_labels(p->m, in), 1);
    if (!obj)
        return -ENOMEM;
    (void)snprintf(path, sizeof(path), "instances/%s", in->name);
    int rc = set_new(obj, "spec",
                     json_pack("{s:s, s:s?, s:s, s:s}", "path", path, "size", size, "whenScaled",
                               in->g->when_scaled_delete ? "Delete" : "Retain", "whenDeleted",
                               in->g->when_deleted_delete ? "Delete" : "Retain"));
    if (rc) {
        json_decref(obj);
        return rc;
    }
    return stamp_append(p, obj, 0);
}

/* Every instance of the shard, with its volume. The first instance in order (groups are sorted:
 * pools by name, then cells) bootstraps as the primary; every other one clones it. */
static int add_shard(struct process *p, const struct model_shard *s)
{
    char primary[72] = "";
    int rc = 0;
    for (size_t i = 0; !rc && i < s->ngroups; i++) {
        const struct model_group *g = &s->groups[i];
        for (int k = 0; !rc && k < g->replicas; k++) {
            struct instance in = {.s = s, .g = g, .index = k};
            model_instance_name(g, k, in.name, sizeof(in.name));
            if (!primary[0])
                (void)snprintf(primary, sizeof(primary), "%s", in.name);
            else
                in.primary = primary;
            rc = take_port(p, in.name, "port", &in.port);
            if (!rc)
                rc = add_instance(p, &in);
            if (!rc)
                rc = add_volume(p, &in);
        }
    }
    return rc;
}

int render_process(const struct render_ctx *c, json_t *out)
{
    struct process p = {
        .m = c->m,
        .recorded = json_is_object(c->ports) ? c->ports : NULL,
        .next_port = c->port_base > 0 ? c->port_base : DEFAULT_PORT_BASE,
        .out = out,
    };
    int rc = add_etcds(&p);
    for (size_t i = 0; !rc && i < c->m->nshards; i++)
        rc = add_shard(&p, &c->m->shards[i]);
    return rc;
}
