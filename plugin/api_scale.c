/*
 * The scale plan (docs/abi.md "mgo_scale"; lifecycle.md "Planning a change of size"): the
 * cluster object with a pool's new replicasPerCell written where it belongs, validated, and what
 * the reconcile pass will do once it is in the spec: the instances it creates, the ones it
 * drains in turn (the pass's own victim rule, applied again and again) and what its health gate
 * waits for now. Pure: no I/O, and nothing is registered anywhere.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "reconcile/reconcile.h"
#include "render/model.h"
#include "render/render.h"
#include "api.h"

/* "<pod_base>-<index>": pod_base is at most 60 characters, an index at most 10 digits. */
#define INSTANCE_NAME_MAX 80

struct scale_request {
    const char *cluster; /* NULL: the request's only cluster */
    const char *pool;
    const char *cell; /* NULL: not given */
    json_int_t replicas;
    const json_t *observed; /* {"objects": [...]}, or NULL: the current size is assumed */
};

/* One plan in the making. The models borrow the resolved clusters of before/after_clusters. */
struct scale {
    const mgo_plugin *p;
    const struct request *r;
    const struct scale_request *q;
    const char *name;    /* the cluster's */
    size_t document;     /* its document in r->docs */
    struct model before; /* the cluster as given */
    size_t shard;        /* the shard holding the pool, among before.shards */
    size_t d, t, s;      /* its position in spec.databases[d].tablegroups[t].shards[s] */
    int from;            /* the pool's resolved replicasPerCell */
    json_t *cells;       /* the pool's cells, in the pool's order */
    json_t *changed;     /* the cluster object with the new size */
    json_t *pool_entry;  /* the pool's entry in changed (borrowed) */
    char path[320];      /* where the size is written */
    json_t *report;      /* validation of the changed cluster */
    json_t *clusters;    /* its resolved clusters */
    struct model after;  /* the changed cluster (borrows from clusters) */
    char msg[1024];
};

/* ---- the request ---------------------------------------------------------------------------- */

static int32_t bad_request(char *msg, size_t size, const char *what)
{
    (void)snprintf(msg, size, "request: %s", what);
    return MGO_EINVAL;
}

static int32_t read_request(const json_t *root, struct scale_request *q, char *msg, size_t size)
{
    const json_t *cluster = api_opt(root, "cluster"), *pool = api_opt(root, "pool");
    const json_t *cell = api_opt(root, "cell"), *replicas = api_opt(root, "replicas");
    const json_t *observed = api_opt(root, "observed");
    memset(q, 0, sizeof(*q));
    if (cluster && !json_is_string(cluster))
        return bad_request(msg, size, "\"cluster\" must be a string");
    if (!json_is_string(pool) || json_string_length(pool) == 0)
        return bad_request(msg, size, "\"pool\" (a string: the pool to resize) is required");
    if (cell && !json_is_string(cell))
        return bad_request(msg, size, "\"cell\" must be a string");
    if (!json_is_integer(replicas))
        return bad_request(msg, size,
                           "\"replicas\" (an integer: the new replicasPerCell) is required");
    if (observed && (!json_is_object(observed) || (api_opt(observed, "objects") &&
                                                   !json_is_array(api_opt(observed, "objects")))))
        return bad_request(msg, size, "\"observed\" must be {\"objects\": [..]}");
    if (observed && api_check_observed(observed, msg, size) != MGO_OK)
        return MGO_EINVAL;
    q->cluster = json_string_value(cluster);
    q->pool = json_string_value(pool);
    q->cell = json_string_value(cell);
    q->replicas = json_integer_value(replicas);
    q->observed = observed;
    return MGO_OK;
}

/* ---- where the pool lives ------------------------------------------------------------------- */

static const struct model_group *first_group(const struct model_shard *s, const char *pool)
{
    for (size_t i = 0; i < s->ngroups; i++)
        if (strcmp(s->groups[i].pool, pool) == 0)
            return &s->groups[i];
    return NULL;
}

/* Append `"name"` to a message list ("a", "b") in out, cut safely when it is full. */
static void list_add(char *out, size_t size, const char *name)
{
    size_t used = strlen(out);
    if (used < size)
        (void)snprintf(out + used, size - used, "%s\"%s\"", used ? ", " : "", name);
}

/* "cluster "x" has no pool "y"; its pools: "a", "b"" (pool names, sorted, once each). */
static void no_such_pool(struct scale *c)
{
    char pools[600] = "";
    const char *last = NULL;
    for (size_t k = 0; k < c->before.nshards; k++)
        for (size_t i = 0; i < c->before.shards[k].ngroups; i++) {
            const char *pool = c->before.shards[k].groups[i].pool;
            if (!last || strcmp(last, pool) != 0)
                list_add(pools, sizeof(pools), pool);
            last = pool;
        }
    (void)snprintf(c->msg, sizeof(c->msg), "cluster \"%s\" has no pool \"%s\"; its pools: %s",
                   c->name, c->q->pool, pools);
}

/* Position (d, t, s) of the model's shard k in the resolved spec (the model follows its order). */
static void shard_position(struct scale *c)
{
    size_t k = 0, d, t, s;
    const json_t *db, *tg, *sh;
    json_array_foreach (json_object_get(json_object_get(c->before.resolved, "spec"), "databases"),
                        d, db)
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg)
            json_array_foreach (json_object_get(tg, "shards"), s, sh)
                if (k++ == c->shard) {
                    c->d = d;
                    c->t = t;
                    c->s = s;
                }
}

/* Find the shard holding the pool, its size and cells; check the request's cell. MGO_OK, or
 * MGO_EINVAL with c->msg naming what exists. */
static int32_t locate_pool(struct scale *c)
{
    const struct model_group *g = NULL;
    for (size_t k = 0; k < c->before.nshards && !g; k++) {
        g = first_group(&c->before.shards[k], c->q->pool);
        c->shard = k;
    }
    if (!g) {
        no_such_pool(c);
        return MGO_EINVAL;
    }
    const struct model_shard *s = &c->before.shards[c->shard];
    char cells[600] = "";
    int cell_found = 0;
    size_t ncells = 0;
    c->cells = json_array();
    if (!c->cells)
        return MGO_ENOMEM;
    for (size_t i = 0; i < s->ngroups; i++) {
        if (strcmp(s->groups[i].pool, c->q->pool) != 0)
            continue;
        ncells++;
        list_add(cells, sizeof(cells), s->groups[i].cell);
        cell_found |= c->q->cell && strcmp(c->q->cell, s->groups[i].cell) == 0;
        if (json_array_append_new(c->cells, json_string(s->groups[i].cell)))
            return MGO_ENOMEM;
    }
    c->from = g->replicas;
    shard_position(c);
    if (c->q->cell && !cell_found) {
        (void)snprintf(c->msg, sizeof(c->msg), "pool \"%s\" has no cell \"%s\"; its cells: %s",
                       c->q->pool, c->q->cell, cells);
        return MGO_EINVAL;
    }
    if (c->q->cell && ncells > 1) {
        (void)snprintf(c->msg, sizeof(c->msg),
                       "pool \"%s\" has the cells %s: replicasPerCell sizes every cell of a pool "
                       "alike, so one cell alone cannot be resized; leave \"cell\" out",
                       c->q->pool, cells);
        return MGO_EINVAL;
    }
    return MGO_OK;
}

/* ---- writing the size ----------------------------------------------------------------------- */

/* obj[key], replaced by a new object when it is not one. NULL: out of memory. */
static json_t *child_object(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_object(v))
        return v;
    return json_object_set_new(obj, key, json_object()) ? NULL : json_object_get(obj, key);
}

/* Entry i of the list obj[key]. When the list is missing or empty, resolve.c gives the cluster
 * one entry by default; it is written out here as the resolved cluster names it (its "name" and
 * "default"), so that the change has a place to go and resolves to the same tree. NULL when the
 * entry cannot be had (out of memory, or the lists disagree: a bug). */
static json_t *entry_of(json_t *obj, const char *key, size_t i, const json_t *resolved)
{
    json_t *list = json_object_get(obj, key);
    if (json_is_array(list) && json_array_size(list) > 0)
        return json_array_get(list, i);
    if (i != 0)
        return NULL;
    json_t *entry = json_object();
    const json_t *name = json_object_get(resolved, "name");
    const json_t *dflt = json_object_get(resolved, "default");
    if (!entry || !json_is_string(name) ||
        json_object_set_new(entry, "name", json_string(json_string_value(name))) ||
        (json_is_boolean(dflt) &&
         json_object_set_new(entry, "default", json_boolean(json_is_true(dflt))))) {
        json_decref(entry);
        return NULL;
    }
    if (json_object_set_new(obj, key, json_pack("[o]", entry)))
        return NULL;
    return json_array_get(json_object_get(obj, key), 0);
}

/* The pool's entry in the changed object: in the shard's inline spec when it has one, else in
 * its overrides (a template is never edited). Sets c->path. */
static int32_t pool_entry(struct scale *c)
{
    const json_t *rspec = json_object_get(c->before.resolved, "spec");
    const json_t *rdb = json_array_get(json_object_get(rspec, "databases"), c->d);
    const json_t *rtg = json_array_get(json_object_get(rdb, "tablegroups"), c->t);
    const json_t *rsh = json_array_get(json_object_get(rtg, "shards"), c->s);
    json_t *spec = child_object(c->changed, "spec");
    json_t *db = spec ? entry_of(spec, "databases", c->d, rdb) : NULL;
    json_t *tg = db ? entry_of(db, "tablegroups", c->t, rtg) : NULL;
    json_t *sh = tg ? entry_of(tg, "shards", c->s, rsh) : NULL;
    if (!sh)
        return core_allocation_failed() ? MGO_ENOMEM : MGO_EINTERNAL;
    const char *layer = json_is_object(json_object_get(sh, "spec")) ? "spec" : "overrides";
    json_t *pools = child_object(child_object(sh, layer), "pools");
    c->pool_entry = pools ? child_object(pools, c->q->pool) : NULL;
    if (!c->pool_entry)
        return MGO_ENOMEM;
    int w = snprintf(c->path, sizeof(c->path),
                     "spec.databases[%zu].tablegroups[%zu].shards[%zu].%s.pools[%s]."
                     "replicasPerCell",
                     c->d, c->t, c->s, layer, c->q->pool);
    return w > 0 && (size_t)w < sizeof(c->path) ? MGO_OK : MGO_EINTERNAL;
}

/* ---- validating the changed cluster --------------------------------------------------------- */

/* The request's documents with the cluster replaced by c->changed, validated and resolved like
 * the request itself (the same "previous"), and the model of the changed cluster. MGO_OK (the
 * changed cluster is valid), MGO_EINVAL (c->report says why) or a fatal status. */
static int32_t evaluate_changed(struct scale *c)
{
    struct request changed = *c->r;
    char msg[256] = "";
    model_free(&c->after);
    json_decref(c->report);
    json_decref(c->clusters);
    c->report = c->clusters = NULL;
    changed.docs = json_copy(c->r->docs);
    if (!changed.docs || json_array_set(changed.docs, c->document, c->changed)) {
        json_decref(changed.docs);
        return MGO_ENOMEM;
    }
    int32_t rc = api_evaluate(c->p, &changed, &c->report, &c->clusters);
    json_decref(changed.docs);
    if (rc != MGO_OK)
        return rc;
    const json_t *chosen = api_pick_cluster(c->clusters, c->report, c->name, msg, sizeof(msg));
    if (!chosen)
        return msg[0] ? MGO_EINTERNAL : MGO_EINVAL; /* it was there a moment ago */
    int m = model_build(json_object_get(chosen, "resolved"), &c->after);
    return m == 0 ? MGO_OK : m == -ENOMEM ? MGO_ENOMEM : MGO_EINTERNAL;
}

/* Does the changed cluster resolve to the same pools and cells, with only this pool's size
 * moved to `to`? */
static int only_size_moved(const struct scale *c)
{
    const struct model_shard *a = &c->before.shards[c->shard];
    const struct model_shard *b =
        c->after.nshards == c->before.nshards ? &c->after.shards[c->shard] : NULL;
    if (!b || a->ngroups != b->ngroups || strcmp(a->database, b->database) != 0 ||
        strcmp(a->tablegroup, b->tablegroup) != 0 || strcmp(a->shard, b->shard) != 0)
        return 0;
    for (size_t i = 0; i < a->ngroups; i++) {
        const struct model_group *x = &a->groups[i], *y = &b->groups[i];
        int resized = strcmp(x->pool, c->q->pool) == 0;
        if (strcmp(x->pool, y->pool) != 0 || strcmp(x->cell, y->cell) != 0 ||
            x->when_scaled_delete != y->when_scaled_delete ||
            y->replicas != (resized ? (int)c->q->replicas : x->replicas))
            return 0;
    }
    return 1;
}

/* Write the size, validate, and make sure nothing but the size moved. A pool that only exists
 * by default (a shard with no pool gets "default", in multiorch's cells) becomes a written pool
 * here; should its cells then resolve otherwise, they are written too. */
static int32_t write_size(struct scale *c)
{
    int32_t rc = pool_entry(c);
    if (rc != MGO_OK)
        return rc;
    if (json_object_set_new(c->pool_entry, "replicasPerCell", json_integer(c->q->replicas)))
        return MGO_ENOMEM;
    rc = evaluate_changed(c);
    if (rc == MGO_OK && !only_size_moved(c)) {
        if (json_object_set(c->pool_entry, "cells", c->cells))
            return MGO_ENOMEM;
        rc = evaluate_changed(c);
        if (rc == MGO_OK && !only_size_moved(c)) {
            core_log(MGO_LOG_ERROR, "scale: the changed cluster resolves to other pools or cells");
            return MGO_EINTERNAL;
        }
    }
    return rc;
}

/* ---- the plan ------------------------------------------------------------------------------- */

struct members {
    struct plan_inst *v;
    size_t n;
    char (*names)[INSTANCE_NAME_MAX];
};

/* An observed instance named `name`, of either instance kind, as reconcile looks it up. */
static const json_t *observed_instance(const json_t *map, const char *name, char *key, size_t size)
{
    const json_t *o = json_object_get(map, plan_kind_key(RENDER_KIND_POD, name, key, size));
    return o ? o : json_object_get(map, plan_kind_key(RENDER_KIND_INSTANCE, name, key, size));
}

/*
 * The instances of the changed shard as the pass will see them: every one the new spec wants
 * (`want` marks them), then every other that exists. With observed (`map`, this cluster's
 * objects), what exists is what was observed; without, the pool's current size (`assumed`:
 * ready, role unknown).
 */
static int collect(const struct scale *c, const json_t *map, const json_t *want,
                   const json_t *assumed, struct members *out)
{
    const struct model_shard *s = &c->after.shards[c->shard];
    size_t cap = 1 + json_object_size(map);
    for (size_t i = 0; i < s->ngroups; i++)
        cap += (size_t)(s->groups[i].replicas > c->from ? s->groups[i].replicas : c->from);
    out->v = core_calloc(cap, sizeof(*out->v));
    out->names = core_calloc(cap, sizeof(*out->names));
    json_t *matched = json_object();
    if (!out->v || !out->names || !matched) {
        json_decref(matched);
        return -ENOMEM;
    }
    char key[600];
    for (size_t i = 0; i < s->ngroups; i++) {
        const struct model_group *g = &s->groups[i];
        int exists = strcmp(g->pool, c->q->pool) == 0 ? c->from : g->replicas;
        int upto = map || g->replicas > exists ? g->replicas : exists;
        for (int k = 0; k < upto; k++) {
            struct plan_inst *x = &out->v[out->n];
            model_instance_name(g, k, out->names[out->n], sizeof(out->names[out->n]));
            x->name = out->names[out->n++];
            x->g = g;
            x->index = k;
            x->desired = k < g->replicas ? want : NULL;
            const json_t *obs = map ? observed_instance(map, x->name, key, sizeof(key)) : NULL;
            if (obs && json_object_set_new(matched, key, json_true())) {
                json_decref(matched);
                return -ENOMEM;
            }
            if (obs || (!map && k < exists))
                plan_inst_observe(x, obs ? obs : assumed);
        }
    }
    const char *k;
    const json_t *o;
    json_object_foreach ((json_t *)map, k, o) {
        const json_t *labels = json_object_get(o, "labels");
        if (!plan_is_instance_kind(plan_str(o, "kind")) || !plan_in_shard(s, labels) ||
            json_object_get(matched, k))
            continue;
        struct plan_inst *x = &out->v[out->n++];
        x->name = plan_str(o, "name");
        x->g = plan_shard_group(s, labels);
        x->index = x->g ? model_instance_index(x->g->pod_base, x->name) : -1;
        plan_inst_observe(x, o);
    }
    json_decref(matched);
    plan_place_cells(&c->after, out->v, out->n);
    qsort(out->v, out->n, sizeof(*out->v), plan_inst_cmp);
    return 0;
}

/* Drain order: a drain already under way finishes first (the pass starts none meanwhile); then
 * the pass's victim rule. */
static int drains_before(const struct plan_inst *x, const struct plan_inst *y)
{
    if ((x->drain != NULL) != (y->drain != NULL))
        return x->drain != NULL;
    return plan_better_victim(x, y);
}

static json_t *json_index(long index)
{
    return index >= 0 ? json_integer(index) : json_null();
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static int add_create(json_t *list, const struct plan_inst *x)
{
    return json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "name", x->name, "cell",
                                                 x->g->cell, "index", (json_int_t)x->index));
}

static int add_drain(json_t *list, const struct plan_inst *x)
{
    const char *volume = x->g && x->g->when_scaled_delete ? "Delete" : "Retain";
    return json_array_append_new(
        list,
        json_pack("{s:s, s:o, s:o, s:o, s:b, s:o, s:s}", "name", x->name, "pool",
                  json_str_or_null(x->g ? x->g->pool : NULL), "cell",
                  json_str_or_null(x->g ? x->g->cell : NULL), "index", json_index(x->index),
                  "ready", x->ready, "role",
                  json_str_or_null(x->obs ? plan_str(x->obs, "role") : NULL), "volume", volume));
}

static int add_waiting(json_t *list, const struct plan_inst *x)
{
    char reason[96];
    if (x->deleting)
        (void)snprintf(reason, sizeof(reason), "being deleted");
    else if (x->drain)
        (void)snprintf(reason, sizeof(reason), "drain under way (%.60s)", x->drain);
    else if (!x->obs)
        (void)snprintf(reason, sizeof(reason), "does not exist yet");
    else
        (void)snprintf(reason, sizeof(reason), "not ready");
    core_utf8_sanitize(reason);
    return json_array_append_new(list, json_pack("{s:s, s:o, s:o, s:o, s:s}", "name", x->name,
                                                 "pool", json_str_or_null(x->g ? x->g->pool : NULL),
                                                 "cell", json_str_or_null(x->g ? x->g->cell : NULL),
                                                 "index", json_index(x->index), "reason", reason));
}

/* What the gate waits for before `victim` may be drained: every instance that stays and is not
 * ready (the pass's gate, applied to each in turn), and every other drain or deletion. */
static int add_waiting_for(json_t *list, const struct members *m, const struct plan_inst *victim)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct plan_inst *x = &m->v[i];
        int gate = plan_first_unready_other(x, 1, victim) != NULL;
        if (x != victim && (gate || x->drain || x->deleting) && add_waiting(list, x))
            return -1;
    }
    return 0;
}

/* create, drain and waiting_for, added to result. */
static int plan_lists(const struct scale *c, const struct members *m, json_t *result)
{
    json_t *create = json_array(), *drain = json_array(), *waiting = json_array();
    const struct plan_inst **left = core_calloc(m->n + 1, sizeof(*left));
    int rc = !create || !drain || !waiting || !left;
    size_t nleft = 0;
    for (size_t i = 0; !rc && i < m->n; i++) {
        const struct plan_inst *x = &m->v[i];
        if (x->desired && !x->obs && strcmp(x->g->pool, c->q->pool) == 0 && x->index >= c->from)
            rc = add_create(create, x);
        else if (!x->desired && !x->deleting)
            left[nleft++] = x;
    }
    const struct plan_inst *first = NULL;
    while (!rc && nleft > 0) {
        size_t best = 0;
        for (size_t i = 1; i < nleft; i++)
            if (drains_before(left[i], left[best]))
                best = i;
        first = first ? first : left[best];
        rc = add_drain(drain, left[best]);
        left[best] = left[--nleft];
    }
    if (!rc && first && !first->drain)
        rc = add_waiting_for(waiting, m, first);
    core_free(left);
    rc = rc || json_object_set(result, "create", create) ||
         json_object_set(result, "drain", drain) || json_object_set(result, "waiting_for", waiting);
    json_decref(create);
    json_decref(drain);
    json_decref(waiting);
    return rc ? -ENOMEM : 0;
}

/* Collect the changed shard's instances and plan over them. */
static int32_t plan(const struct scale *c, json_t *result)
{
    struct members m = {0};
    struct plan seen = {0}; /* the observed objects of this cluster, by "Kind/name" */
    json_t *want = json_object(), *assumed = json_pack("{s:b}", "ready", 1);
    json_t *none = json_array();
    struct reconcile_input in = {.m = &c->after, .desired = none, .observed = c->q->observed};
    int rc = !want || !assumed || !none;
    if (!rc && c->q->observed)
        rc = plan_init(&seen, &in);
    if (!rc)
        rc = collect(c, c->q->observed ? seen.observed : NULL, want, assumed, &m);
    if (!rc)
        rc = plan_lists(c, &m, result);
    plan_fini(&seen);
    core_free(m.v);
    core_free(m.names);
    json_decref(want);
    json_decref(assumed);
    json_decref(none);
    return rc ? MGO_ENOMEM : MGO_OK;
}

/* ---- the hook ------------------------------------------------------------------------------- */

/* "<path>: <reason>" of the first error of the cluster's entry in a report, or "". */
static void first_error(const json_t *report, const char *name, char *out, size_t size)
{
    size_t i;
    const json_t *o;
    out[0] = '\0';
    json_array_foreach (json_object_get(report, "objects"), i, o) {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *n = json_string_value(json_object_get(o, "name"));
        const json_t *e = json_array_get(json_object_get(o, "errors"), 0);
        if (e && kind && strcmp(kind, "MultigresCluster") == 0 &&
            (!name || (n && strcmp(n, name) == 0))) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *reason = json_string_value(json_object_get(e, "reason"));
            (void)snprintf(out, size, ": %s: %s", path ? path : "", reason ? reason : "");
            return;
        }
    }
}

/* The cluster as given is invalid: its report and an error saying so. */
static int32_t invalid_before(json_t *report, const char *name, char **ret_result, size_t *ret_len)
{
    char first[600], msg[800];
    first_error(report, name, first, sizeof(first));
    (void)snprintf(msg, sizeof(msg), "cluster%s%s%s is invalid as given%s", name ? " \"" : "",
                   name ? name : "", name ? "\"" : "", first);
    core_utf8_sanitize(msg);
    core_result_set_error(report, MGO_EINVAL, msg);
    return api_finish(report, MGO_EINVAL, ret_result, ret_len);
}

/* The fields every result names (a new object, or NULL when out of memory). */
static json_t *result_head(const struct scale *c)
{
    return json_pack("{s:s, s:s, s:O, s:i, s:I, s:s}", "cluster", c->name, "pool", c->q->pool,
                     "cells", c->cells, "from", c->from, "to", (json_int_t)c->q->replicas, "path",
                     c->path);
}

/* The changed cluster is invalid: where the size would go, and the report saying why. */
static int32_t invalid_after(struct scale *c, char **ret_result, size_t *ret_len)
{
    char first[600], msg[1000];
    json_t *result = result_head(c);
    if (!result || json_object_set(result, "objects", json_object_get(c->report, "objects"))) {
        json_decref(result);
        return MGO_ENOMEM;
    }
    first_error(c->report, c->name, first, sizeof(first));
    (void)snprintf(msg, sizeof(msg),
                   "cluster \"%s\" with replicasPerCell %" JSON_INTEGER_FORMAT
                   " for pool \"%s\" is invalid%s",
                   c->name, c->q->replicas, c->q->pool, first);
    core_utf8_sanitize(msg);
    core_result_set_error(result, MGO_EINVAL, msg);
    return api_finish(result, MGO_EINVAL, ret_result, ret_len);
}

/* The size stays: the object as given, and no step. The path is where the size would go,
 * found on a scratch copy (finding it may write out the shard's defaulted entries). */
static int32_t unchanged(struct scale *c, const json_t *report, json_t **ret)
{
    int32_t rc = pool_entry(c);
    c->pool_entry = NULL;
    json_decref(c->changed);
    c->changed = json_deep_copy(json_array_get(c->r->docs, c->document));
    if (rc != MGO_OK)
        return rc;
    json_t *result = c->changed ? result_head(c) : NULL;
    if (!result || json_object_set(result, "spec", c->changed) ||
        json_object_set_new(result, "create", json_array()) ||
        json_object_set_new(result, "drain", json_array()) ||
        json_object_set_new(result, "waiting_for", json_array()) ||
        json_object_set(result, "objects", json_object_get(report, "objects"))) {
        json_decref(result);
        return MGO_ENOMEM;
    }
    *ret = result;
    return MGO_OK;
}

/* The size changes: the changed object, validated, and the plan (MGO_EINVAL: the changed
 * cluster is invalid, c->report says why). */
static int32_t changed(struct scale *c, json_t **ret)
{
    int32_t rc = write_size(c);
    if (rc != MGO_OK)
        return rc;
    json_t *result = result_head(c);
    if (!result || json_object_set(result, "spec", c->changed) ||
        json_object_set(result, "objects", json_object_get(c->report, "objects")))
        rc = MGO_ENOMEM;
    if (rc == MGO_OK)
        rc = plan(c, result);
    if (rc != MGO_OK) {
        json_decref(result);
        return rc;
    }
    *ret = result;
    return MGO_OK;
}

/* Plan for the valid cluster `chosen` (before the change); report is its validation. */
static int32_t scale_cluster(struct scale *c, const json_t *chosen, const json_t *report,
                             char **ret_result, size_t *ret_len)
{
    json_t *result = NULL;
    c->name = json_string_value(json_object_get(chosen, "name"));
    c->document = (size_t)json_integer_value(json_object_get(chosen, "document"));
    int m = model_build(json_object_get(chosen, "resolved"), &c->before);
    if (m)
        return m == -ENOMEM ? MGO_ENOMEM : MGO_EINTERNAL;
    int32_t rc = locate_pool(c);
    if (rc == MGO_EINVAL) {
        core_utf8_sanitize(c->msg);
        return api_fail(rc, c->msg, ret_result, ret_len);
    }
    if (rc != MGO_OK)
        return rc;
    c->changed = json_deep_copy(json_array_get(c->r->docs, c->document));
    if (!c->changed)
        return MGO_ENOMEM;
    rc = c->q->replicas == c->from ? unchanged(c, report, &result) : changed(c, &result);
    if (rc == MGO_EINVAL)
        return invalid_after(c, ret_result, ret_len);
    if (rc != MGO_OK)
        return rc;
    core_log(MGO_LOG_DEBUG,
             "scale: cluster %s pool %s from %d to %" JSON_INTEGER_FORMAT
             ": %zu to create, %zu to drain",
             c->name, c->q->pool, c->from, c->q->replicas,
             json_array_size(json_object_get(result, "create")),
             json_array_size(json_object_get(result, "drain")));
    return api_finish(result, MGO_OK, ret_result, ret_len);
}

int32_t api_scale(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                  size_t *ret_len)
{
    struct request r;
    struct scale_request q;
    struct scale c = {.p = p, .r = &r, .q = &q};
    char msg[512] = "";
    json_t *report = NULL, *clusters = NULL;
    int32_t rc = api_request_parse(request, len, &r, msg, sizeof(msg));
    if (rc == MGO_OK)
        rc = read_request(r.root, &q, msg, sizeof(msg));
    if (rc == MGO_EINVAL) {
        api_request_fini(&r);
        return api_fail(rc, msg, ret_result, ret_len);
    }
    if (rc == MGO_OK)
        rc = api_evaluate(p, &r, &report, &clusters);
    if (rc == MGO_OK) {
        const json_t *chosen = api_pick_cluster(clusters, report, q.cluster, msg, sizeof(msg));
        if (chosen)
            rc = scale_cluster(&c, chosen, report, ret_result, ret_len);
        else if (msg[0])
            rc = api_fail(MGO_EINVAL, msg, ret_result, ret_len);
        else {
            rc = invalid_before(report, q.cluster, ret_result, ret_len);
            report = NULL; /* consumed */
        }
    }
    model_free(&c.before);
    model_free(&c.after);
    json_decref(c.cells);
    json_decref(c.changed);
    json_decref(c.report);
    json_decref(c.clusters);
    json_decref(report);
    json_decref(clusters);
    api_request_fini(&r);
    return rc;
}
