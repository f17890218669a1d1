/*
 * The scale plan (docs/abi.md "mgo_scale"; lifecycle.md "Planning a change of size"): the
 * cluster object with a pool's new replicasPerCell written where it belongs, validated, and what
 * the reconcile pass will do once it is in the spec: the instances it creates, the ones it
 * drains in turn (the pass's own victim rule, applied again and again) and what it waits for
 * now. The shard's instances are collected, and what keeps the pass from a drain is decided, by
 * the pass's own functions (reconcile.h, plan_collect and plan_blockers). Pure: no I/O, and
 * nothing is registered anywhere.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "reconcile/reconcile.h"
#include "render/model.h"
#include "render/render.h"
#include "api.h"

struct scale_request {
    const char *cluster; /* NULL: the request's only cluster */
    const char *pool;
    const char *cell;       /* NULL: not given */
    const char *database;   /* NULL: not given; with tablegroup and shard, picks among the */
    const char *tablegroup; /* shards that hold a pool of that name */
    const char *shard;
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

/* An optional string field: 0 (*ret set, NULL when absent), or -1 with msg. */
static int opt_string(const json_t *root, const char *key, const char **ret, char *msg, size_t size)
{
    const json_t *v = api_opt(root, key);
    char what[64];
    if (v && !json_is_string(v)) {
        (void)snprintf(what, sizeof(what), "\"%s\" must be a string", key);
        (void)bad_request(msg, size, what);
        return -1;
    }
    *ret = json_string_value(v);
    return 0;
}

static int32_t read_request(const json_t *root, struct scale_request *q, char *msg, size_t size)
{
    const json_t *pool = api_opt(root, "pool"), *replicas = api_opt(root, "replicas");
    const json_t *observed = api_opt(root, "observed");
    memset(q, 0, sizeof(*q));
    if (opt_string(root, "cluster", &q->cluster, msg, size))
        return MGO_EINVAL;
    if (!json_is_string(pool) || json_string_length(pool) == 0)
        return bad_request(msg, size, "\"pool\" (a string: the pool to resize) is required");
    if (opt_string(root, "cell", &q->cell, msg, size) ||
        opt_string(root, "database", &q->database, msg, size) ||
        opt_string(root, "tablegroup", &q->tablegroup, msg, size) ||
        opt_string(root, "shard", &q->shard, msg, size))
        return MGO_EINVAL;
    if (!json_is_integer(replicas))
        return bad_request(msg, size,
                           "\"replicas\" (an integer: the new replicasPerCell) is required");
    if (observed && (!json_is_object(observed) || (api_opt(observed, "objects") &&
                                                   !json_is_array(api_opt(observed, "objects")))))
        return bad_request(msg, size, "\"observed\" must be {\"objects\": [..]}");
    if (observed && api_check_observed(observed, msg, size) != MGO_OK)
        return MGO_EINVAL;
    q->pool = json_string_value(pool);
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

/* Append `text` (quoted when `quote`) to a message list ("a", "b") in out, cut safely when it is
 * full. */
static void list_add(char *out, size_t size, const char *text, int quote)
{
    size_t used = strlen(out);
    if (used < size)
        (void)snprintf(out + used, size - used, "%s%s%s%s", used ? ", " : "", quote ? "\"" : "",
                       text, quote ? "\"" : "");
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "cluster "x" has no pool "y"; its pools: "a", "b"" (pool names of every shard, sorted, once
 * each). MGO_EINVAL, or MGO_ENOMEM. */
static int32_t no_such_pool(struct scale *c)
{
    size_t n = 0;
    for (size_t k = 0; k < c->before.nshards; k++)
        n += c->before.shards[k].ngroups;
    const char **names = core_calloc(n + 1, sizeof(*names));
    if (!names)
        return MGO_ENOMEM;
    n = 0;
    for (size_t k = 0; k < c->before.nshards; k++)
        for (size_t i = 0; i < c->before.shards[k].ngroups; i++)
            names[n++] = c->before.shards[k].groups[i].pool;
    qsort(names, n, sizeof(*names), name_cmp);
    char pools[600] = "";
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(names[i - 1], names[i]) != 0)
            list_add(pools, sizeof(pools), names[i], 1);
    core_free(names);
    (void)snprintf(c->msg, sizeof(c->msg), "cluster \"%s\" has no pool \"%s\"; its pools: %s",
                   c->name, c->q->pool, pools);
    return MGO_EINVAL;
}

/* Does shard s hold the pool? With `filtered`, also: does it have the request's database,
 * tablegroup and shard (those given)? */
static int shard_holds(const struct scale_request *q, const struct model_shard *s, int filtered)
{
    return first_group(s, q->pool) &&
           (!filtered || ((!q->database || strcmp(q->database, s->database) == 0) &&
                          (!q->tablegroup || strcmp(q->tablegroup, s->tablegroup) == 0) &&
                          (!q->shard || strcmp(q->shard, s->shard) == 0)));
}

/* "db/tg/shard, ..." of the shards that hold the pool (filtered: as the request says). */
static void shards_holding(const struct scale *c, int filtered, char *out, size_t size)
{
    char one[200];
    out[0] = '\0';
    for (size_t k = 0; k < c->before.nshards; k++) {
        const struct model_shard *s = &c->before.shards[k];
        if (!shard_holds(c->q, s, filtered))
            continue;
        (void)snprintf(one, sizeof(one), "%.63s/%.63s/%.63s", s->database, s->tablegroup, s->shard);
        list_add(out, size, one, 0);
    }
}

/* The shard to resize: the one holding the pool that the request's database, tablegroup and
 * shard pick out. MGO_OK (c->shard set), MGO_EINVAL (c->msg: none, or several, and which
 * there are) or MGO_ENOMEM. */
static int32_t pick_shard(struct scale *c)
{
    size_t holding = 0, matching = 0;
    for (size_t k = 0; k < c->before.nshards; k++) {
        holding += shard_holds(c->q, &c->before.shards[k], 0);
        if (shard_holds(c->q, &c->before.shards[k], 1) && matching++ == 0)
            c->shard = k;
    }
    if (holding == 0)
        return no_such_pool(c);
    char shards[600], filter[300] = "", one[100];
    if (matching == 1)
        return MGO_OK;
    if (matching > 1) {
        shards_holding(c, 1, shards, sizeof(shards));
        (void)snprintf(c->msg, sizeof(c->msg),
                       "pool \"%s\" is in several shards of cluster \"%s\": %s; name one with "
                       "\"database\", \"tablegroup\" and \"shard\"",
                       c->q->pool, c->name, shards);
        return MGO_EINVAL;
    }
    const char *keys[] = {"database", "tablegroup", "shard"};
    const char *values[] = {c->q->database, c->q->tablegroup, c->q->shard};
    for (size_t i = 0; i < 3; i++)
        if (values[i]) {
            (void)snprintf(one, sizeof(one), "%s \"%.60s\"", keys[i], values[i]);
            list_add(filter, sizeof(filter), one, 0);
        }
    shards_holding(c, 0, shards, sizeof(shards));
    (void)snprintf(c->msg, sizeof(c->msg),
                   "no shard of cluster \"%s\" with %s has pool \"%s\"; it is in %s", c->name,
                   filter, c->q->pool, shards);
    return MGO_EINVAL;
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
    int32_t rc = pick_shard(c);
    if (rc != MGO_OK)
        return rc;
    const struct model_group *g = first_group(&c->before.shards[c->shard], c->q->pool);
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
        list_add(cells, sizeof(cells), s->groups[i].cell, 1);
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

/* Do shards a and b resolve to the same pools and cells, with the same sizes except pool
 * `resized` (NULL: none), which has `to`? */
static int same_but_size(const struct model_shard *a, const struct model_shard *b,
                         const char *resized, int to)
{
    if (a->ngroups != b->ngroups || strcmp(a->database, b->database) != 0 ||
        strcmp(a->tablegroup, b->tablegroup) != 0 || strcmp(a->shard, b->shard) != 0)
        return 0;
    for (size_t i = 0; i < a->ngroups; i++) {
        const struct model_group *x = &a->groups[i], *y = &b->groups[i];
        int moved = resized && strcmp(x->pool, resized) == 0;
        if (strcmp(x->pool, y->pool) != 0 || strcmp(x->cell, y->cell) != 0 ||
            x->when_scaled_delete != y->when_scaled_delete ||
            y->replicas != (moved ? to : x->replicas))
            return 0;
    }
    return 1;
}

/* Does the changed cluster resolve to the same shards, pools and cells, with only this pool's
 * size (in its shard) moved to `to`? */
static int only_size_moved(const struct scale *c)
{
    if (c->after.nshards != c->before.nshards)
        return 0;
    for (size_t k = 0; k < c->before.nshards; k++)
        if (!same_but_size(&c->before.shards[k], &c->after.shards[k],
                           k == c->shard ? c->q->pool : NULL, (int)c->q->replicas))
            return 0;
    return 1;
}

/*
 * Write the size, validate, and make sure nothing but the size moved. A pool that only exists
 * by default (a shard with no pool gets "default", in multiorch's cells) becomes a written pool
 * here; should its cells then resolve otherwise, they are written too. After that, nothing else
 * can move: the entry is merged field by field over the template and overrides (resolve.c), its
 * cells and size are now written, and every other field of it defaults as before. The check
 * stays, so that a resolver change that breaks this is reported (MGO_EINTERNAL, docs/abi.md)
 * rather than a spec that changes more than the caller asked for.
 */
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

/* The size stays: the object as given. The path is where the size would go, found on a scratch
 * copy (finding it may write out the shard's defaulted entries). */
static int32_t keep_size(struct scale *c)
{
    int32_t rc = pool_entry(c);
    c->pool_entry = NULL;
    json_decref(c->changed);
    c->changed = json_deep_copy(json_array_get(c->r->docs, c->document));
    return rc != MGO_OK ? rc : c->changed ? MGO_OK : MGO_ENOMEM;
}

/* ---- the plan ------------------------------------------------------------------------------- */

/* What the planned spec wants, for plan_collect: the instances below each pool's size. */
struct wanted_by_size {
    const struct model *m;
    const json_t *marker; /* the desired "object" of every wanted instance: no kind, no hash */
};

static const json_t *wanted_instance(void *ctx, const struct model_group *g, int index,
                                     const char *name)
{
    const struct wanted_by_size *w = ctx;
    (void)name;
    return index < g->replicas ? w->marker : NULL;
}

/* Does the spec want the observed instance of that name, in any shard? By its name, as the
 * pass finds it among the rendered objects (of either kind: the plan knows no target). */
static int wanted_name(void *ctx, const char *key, const json_t *obs)
{
    const struct wanted_by_size *w = ctx;
    const char *name = plan_str(obs, "name");
    (void)key;
    for (size_t k = 0; name && k < w->m->nshards; k++)
        for (size_t i = 0; i < w->m->shards[k].ngroups; i++) {
            const struct model_group *g = &w->m->shards[k].groups[i];
            long index = model_instance_index(g->pod_base, name);
            if (index >= 0 && index < g->replicas)
                return 1;
        }
    return 0;
}

/* Without observed objects: the current size of every pool of the shard exists, ready, no
 * role known; a map "Instance/<name>" -> observed entry (labelled into the shard), or NULL. */
static json_t *assume_current_size(const struct scale *c)
{
    const struct model_shard *s = &c->before.shards[c->shard];
    json_t *map = json_object();
    char name[PLAN_INSTANCE_NAME_MAX], key[PLAN_INSTANCE_NAME_MAX + 16];
    for (size_t i = 0; map && i < s->ngroups; i++)
        for (int k = 0; map && k < s->groups[i].replicas; k++) {
            model_instance_name(&s->groups[i], k, name, sizeof(name));
            json_t *e = json_pack(
                "{s:s, s:s, s:b, s:{s:s, s:s, s:s, s:s, s:s}}", "kind", RENDER_KIND_INSTANCE,
                "name", name, "ready", 1, "labels", "multigres.com/database", s->database,
                "multigres.com/tablegroup", s->tablegroup, "multigres.com/shard", s->shard,
                "multigres.com/pool", s->groups[i].pool, "multigres.com/cell", s->groups[i].cell);
            if (json_object_set_new(
                    map, plan_kind_key(RENDER_KIND_INSTANCE, name, key, sizeof(key)), e)) {
                json_decref(map);
                map = NULL;
            }
        }
    return map;
}

/* Drain order: a drain already under way finishes first (the pass starts none meanwhile); then
 * the pass's victim rule. */
static int drains_before(const struct plan_inst *x, const struct plan_inst *y)
{
    if ((x->drain != NULL) != (y->drain != NULL))
        return x->drain != NULL;
    return plan_better_victim(x, y);
}

/* Is x one of the new indexes of the pool that the pass will create: missing, or (a leftover
 * the spec wants again) being deleted or drained past "requested", so deleted and then created
 * anew? A drain still "requested" is cancelled instead (plan_inst_step). */
static int created(const struct scale *c, const struct plan_inst *x)
{
    return x->desired && strcmp(x->g->pool, c->q->pool) == 0 && x->index >= c->from &&
           (!x->obs || x->deleting || (x->drain && strcmp(x->drain, "requested") != 0));
}

static json_t *json_index(long index)
{
    return index >= 0 ? json_integer(index) : json_null();
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The observed role as the pass reads it: "primary", "standby" or NULL. */
static const char *role_of(const struct plan_inst *x)
{
    const char *role = x->obs ? plan_str(x->obs, "role") : NULL;
    if (x->primary)
        return "primary";
    return role && strcasecmp(role, "standby") == 0 ? "standby" : NULL;
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
        list, json_pack("{s:s, s:o, s:o, s:o, s:b, s:o, s:s}", "name", x->name, "pool",
                        json_str_or_null(x->g ? x->g->pool : NULL), "cell",
                        json_str_or_null(x->g ? x->g->cell : NULL), "index", json_index(x->index),
                        "ready", x->ready, "role", json_str_or_null(role_of(x)), "volume", volume));
}

static int add_waiting(json_t *list, const struct plan_blocker *b)
{
    char reason[96];
    const struct plan_inst *x = b->x;
    return json_array_append_new(list, json_pack("{s:s, s:o, s:o, s:o, s:s}", "name", x->name,
                                                 "pool", json_str_or_null(x->g ? x->g->pool : NULL),
                                                 "cell", json_str_or_null(x->g ? x->g->cell : NULL),
                                                 "index", json_index(x->index), "reason",
                                                 plan_blocker_reason(b, reason, sizeof(reason))));
}

/* The lists of a plan over the shard's instances si (observed: what plan_collect saw). */
struct lists {
    json_t *create, *drain, *waiting;
    const struct plan_inst **left;  /* the instances to drain, not yet ordered */
    struct plan_blocker *why;       /* what waiting_for names: room for twice si->n */
    const struct plan_blocker **at; /* per instance of si: its first entry in why */
};

/*
 * create (the new indexes the pass creates, in its order), drain (the order the pass drains
 * in) and waiting_for: what keeps the first drain from starting now (plan_blockers, the pass's
 * own decision), and what each creation of a leftover waits for; each instance once, in rolling
 * order. 0 or -ENOMEM.
 */
static int fill_lists(const struct scale *c, const json_t *observed,
                      const struct plan_shard_instances *si, struct lists *l)
{
    size_t nleft = 0, nwhy = 0;
    for (size_t i = 0; i < si->n; i++) {
        const struct plan_inst *x = &si->v[i];
        enum plan_step step = plan_inst_step(observed, x);
        if (created(c, x)) {
            if (add_create(l->create, x))
                return -ENOMEM;
            if (step != PLAN_STEP_CREATE)
                l->why[nwhy++] = (struct plan_blocker){.x = x, .why = PLAN_WAIT_STEP, .step = step};
        } else if (!x->desired && !x->deleting) {
            l->left[nleft++] = x;
        }
    }
    const struct plan_inst *first = NULL;
    while (nleft > 0) {
        size_t best = 0;
        for (size_t i = 1; i < nleft; i++)
            if (drains_before(l->left[i], l->left[best]))
                best = i;
        first = first ? first : l->left[best];
        if (add_drain(l->drain, l->left[best]))
            return -ENOMEM;
        l->left[best] = l->left[--nleft];
    }
    if (first && !first->drain)
        nwhy += plan_blockers(observed, si->v, si->n, first, l->why + nwhy);
    for (size_t i = nwhy; i-- > 0;)
        l->at[l->why[i].x - si->v] = &l->why[i]; /* the first entry of each wins */
    for (size_t i = 0; i < si->n; i++)
        if (l->at[i] && add_waiting(l->waiting, l->at[i]))
            return -ENOMEM;
    return 0;
}

static int plan_lists(const struct scale *c, const json_t *observed,
                      const struct plan_shard_instances *si, json_t *result)
{
    struct lists l = {.create = json_array(), .drain = json_array(), .waiting = json_array()};
    l.left = core_calloc(si->n + 1, sizeof(*l.left));
    l.why = core_calloc(2 * si->n + 1, sizeof(*l.why));
    l.at = core_calloc(si->n + 1, sizeof(*l.at));
    int rc = !l.create || !l.drain || !l.waiting || !l.left || !l.why || !l.at ||
             fill_lists(c, observed, si, &l) || json_object_set(result, "create", l.create) ||
             json_object_set(result, "drain", l.drain) ||
             json_object_set(result, "waiting_for", l.waiting);
    core_free(l.left);
    core_free(l.why);
    core_free(l.at);
    json_decref(l.create);
    json_decref(l.drain);
    json_decref(l.waiting);
    return rc ? -ENOMEM : 0;
}

/*
 * Collect the shard's instances under the planned model m (the changed cluster, or the cluster
 * as given when the size stays) with the pass's own function, and plan over them. With
 * observed objects, what exists is what was observed; without, the current size is assumed.
 * Wanted instances that exist are taken as matching the spec: a change of size changes no
 * instance's definition.
 */
static int32_t plan(const struct scale *c, const struct model *m, json_t *result)
{
    struct plan seen = {0}; /* the observed objects of this cluster, by "Kind/name" */
    struct plan_shard_instances si = {0};
    json_t *marker = json_object(), *none = json_array(), *assumed = NULL;
    struct reconcile_input in = {.m = m, .desired = none, .observed = c->q->observed};
    struct wanted_by_size w = {.m = m, .marker = marker};
    struct plan_wanted wanted = {.instance = wanted_instance, .wants = wanted_name, .ctx = &w};
    const json_t *observed = NULL;
    int rc = -ENOMEM;
    if (!marker || !none)
        goto out;
    if (c->q->observed) {
        if (plan_init(&seen, &in))
            goto out;
        observed = seen.observed;
    } else if (!(observed = assumed = assume_current_size(c))) {
        goto out;
    }
    if (plan_collect(m, &m->shards[c->shard], observed, &wanted, &si))
        goto out;
    for (size_t i = 0; i < si.n; i++)
        si.v[i].current = si.v[i].desired && si.v[i].obs;
    rc = plan_lists(c, observed, &si, result);
out:
    plan_shard_instances_fini(&si);
    plan_fini(&seen);
    json_decref(assumed);
    json_decref(marker);
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
    const struct model_shard *s = &c->before.shards[c->shard];
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:i, s:I, s:s}", "cluster", c->name,
                     "database", s->database, "tablegroup", s->tablegroup, "shard", s->shard,
                     "pool", c->q->pool, "cells", c->cells, "from", c->from, "to",
                     (json_int_t)c->q->replicas, "path", c->path);
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

/* The planned cluster (the changed one, or the one as given when the size stays; report is its
 * validation) and the plan over model m. */
static int32_t planned(struct scale *c, const struct model *m, const json_t *report, json_t **ret)
{
    json_t *result = result_head(c);
    int32_t rc = !result || json_object_set(result, "spec", c->changed) ||
                         json_object_set(result, "objects", json_object_get(report, "objects"))
                     ? MGO_ENOMEM
                     : plan(c, m, result);
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
    int same = c->q->replicas == c->from;
    rc = same ? keep_size(c) : write_size(c);
    if (rc == MGO_EINVAL)
        return invalid_after(c, ret_result, ret_len);
    if (rc == MGO_OK)
        rc = same ? planned(c, &c->before, report, &result)
                  : planned(c, &c->after, c->report, &result);
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
