/* The override chain: templates, overrides, inline specs, then the built-in defaults. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "spec/resolve.h"

/* ---- merging ------------------------------------------------------------------------------ */

/* Fields whose value replaces the base wholesale instead of merging per key. */
static const char *const replaced_wholesale[] = {
    "affinity",        "placement", "multigatewayPlacement", "multiadminPlacement",
    "localTopoServer", NULL,
};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static int is_set(const json_t *v)
{
    return v && !json_is_null(v);
}

/* A resources block replaces the base only when it sets requests, limits or claims. */
static int resources_set(const json_t *r)
{
    return json_is_object(r) &&
           (is_set(json_object_get(r, "requests")) || is_set(json_object_get(r, "limits")) ||
            is_set(json_object_get(r, "claims")));
}

int resolve_merge(json_t *dst, const json_t *src)
{
    const char *key;
    json_t *sv;

    if (!json_is_object(dst) || !json_is_object(src))
        return 0;
    json_object_foreach ((json_t *)src, key, sv) {
        json_t *dv = json_object_get(dst, key);
        if (!is_set(sv))
            continue;
        if (strcmp(key, "resources") == 0 && !resources_set(sv))
            continue;
        if (json_is_object(sv) && json_is_object(dv) && strcmp(key, "resources") != 0 &&
            !in_list(key, replaced_wholesale)) {
            if (resolve_merge(dv, sv))
                return -ENOMEM;
            continue;
        }
        if (json_object_set_new(dst, key, json_deep_copy(sv)))
            return -ENOMEM;
    }
    return 0;
}

/* ---- small JSON helpers ------------------------------------------------------------------- */

struct ctx {
    const struct resolve_templates *templates;
    const char *ns;
    const json_t *spec_in; /* the cluster's spec as written */
    struct spec_errors *errs;
    json_t *used;             /* [{"kind", "name"}] */
    int defaults_reported[3]; /* one error per missing templateDefaults entry */
    int oom;
};

/* Get child `key` of `obj` as an object, creating an empty one when absent or null. */
static json_t *child_object(struct ctx *c, json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_object(v))
        return v;
    v = json_object();
    if (!v || json_object_set_new(obj, key, v)) {
        c->oom = 1;
        return NULL;
    }
    return v;
}

/* Set obj[key] = value (stolen) when obj has no non-null value there. */
static void set_default(struct ctx *c, json_t *obj, const char *key, json_t *value)
{
    if (!obj) {
        json_decref(value);
        return;
    }
    if (is_set(json_object_get(obj, key))) {
        json_decref(value);
        return;
    }
    if (!value || json_object_set_new(obj, key, value))
        c->oom = 1;
}

static json_t *resources_block(const char *cpu_req, const char *mem_req, const char *mem_lim)
{
    return json_pack("{s:{s:s, s:s}, s:{s:s}}", "requests", "cpu", cpu_req, "memory", mem_req,
                     "limits", "memory", mem_lim);
}

/* Defaults of a StatelessSpec-shaped component: replicas and the resources block. */
static void stateless_defaults(struct ctx *c, json_t *s, json_int_t replicas, const char *cpu_req,
                               const char *mem_req, const char *mem_lim)
{
    if (!s)
        return;
    set_default(c, s, "replicas", json_integer(replicas));
    if (!resources_set(json_object_get(s, "resources"))) {
        json_t *r = resources_block(cpu_req, mem_req, mem_lim);
        if (!r || json_object_set_new(s, "resources", r))
            c->oom = 1;
    }
}

static json_t *copy_or_empty(struct ctx *c, const json_t *v)
{
    json_t *r = json_is_object(v) ? json_deep_copy(v) : json_object();
    if (!r)
        c->oom = 1;
    return r;
}

static void merge(struct ctx *c, json_t *dst, const json_t *src)
{
    if (dst && resolve_merge(dst, src))
        c->oom = 1;
}

/* ---- templates ---------------------------------------------------------------------------- */

enum tkind { T_CORE, T_CELL, T_SHARD };
static const char *const tkind_name[] = {"CoreTemplate", "CellTemplate", "ShardTemplate"};
static const char *const tkind_defaults_key[] = {"coreTemplate", "cellTemplate", "shardTemplate"};

static json_t *templates_of(const struct ctx *c, enum tkind k)
{
    return k == T_CORE   ? c->templates->core
           : k == T_CELL ? c->templates->cell
                         : c->templates->shard;
}

static void note_used(struct ctx *c, enum tkind k, const char *name)
{
    size_t i;
    json_t *u;
    json_array_foreach (c->used, i, u)
        if (strcmp(json_string_value(json_object_get(u, "kind")), tkind_name[k]) == 0 &&
            strcmp(json_string_value(json_object_get(u, "name")), name) == 0)
            return;
    json_t *entry = json_pack("{s:s, s:s}", "kind", tkind_name[k], "name", name);
    if (!entry || json_array_append_new(c->used, entry))
        c->oom = 1;
}

/*
 * The template spec for one component, by the chain: the component's explicit reference
 * (explicit_name, reported at explicit_path), else spec.templateDefaults.<kind>, else the
 * namespace's template named "default". "" and "default" are implicit fallbacks that may be
 * missing. Returns the template's spec (borrowed) or NULL for none.
 */
static const json_t *pick_template(struct ctx *c, enum tkind k, const char *explicit_name,
                                   const char *explicit_path)
{
    const char *name = explicit_name;
    const char *path = explicit_path;
    int from_defaults = 0;
    char defaults_path[64];

    if (!name || !*name) {
        const json_t *td = json_object_get(c->spec_in, "templateDefaults");
        name = json_string_value(json_object_get(td, tkind_defaults_key[k]));
        (void)snprintf(defaults_path, sizeof(defaults_path), "spec.templateDefaults.%s",
                       tkind_defaults_key[k]);
        path = defaults_path;
        from_defaults = 1;
    }
    if (!name || !*name)
        name = "default";
    const json_t *t = json_object_get(templates_of(c, k), name);
    if (!t) {
        if (strcmp(name, "default") != 0 && !(from_defaults && c->defaults_reported[k])) {
            spec_error(c->errs, path, "referenced %s '%s' not found in namespace '%s'",
                       tkind_name[k], name, c->ns);
            if (from_defaults)
                c->defaults_reported[k] = 1;
        }
        return NULL;
    }
    note_used(c, k, name);
    const json_t *spec = json_object_get(t, "spec");
    return json_is_object(spec) ? spec : NULL;
}

/* ---- cluster-wide statics ----------------------------------------------------------------- */

static json_t *default_backup(void)
{
    return json_pack("{s:s, s:{s:s, s:{s:s}}}", "type", "filesystem", "filesystem", "path",
                     "/backups", "storage", "size", "10Gi");
}

static void cluster_statics(struct ctx *c, json_t *spec)
{
    static const char *const components[] = {"pgctld",     "multipooler",  "multiorch",
                                             "multiadmin", "multigateway", NULL};
    json_t *images = child_object(c, spec, "images");
    set_default(c, images, "imagePullPolicy", json_string("IfNotPresent"));
    json_t *levels = child_object(c, spec, "logLevels");
    for (const char *const *p = components; *p; p++)
        set_default(c, levels, *p, json_string("info"));
    json_t *pruning = child_object(c, spec, "topologyPruning");
    set_default(c, pruning, "enabled", json_true());
    set_default(c, spec, "durabilityPolicy", json_string("AT_LEAST_2"));
    if (!is_set(json_object_get(spec, "pvcDeletionPolicy")))
        set_default(c, spec, "pvcDeletionPolicy",
                    json_pack("{s:s, s:s}", "whenDeleted", "Delete", "whenScaled", "Delete"));
    json_t *pvc = child_object(c, spec, "pvcDeletionPolicy");
    /* Field-level defaults of a partially written policy, as the schema gives them. */
    set_default(c, pvc, "whenDeleted", json_string("Retain"));
    set_default(c, pvc, "whenScaled", json_string("Delete"));
    set_default(c, spec, "postgresSuperuser", json_string("postgres"));
    set_default(c, spec, "backup", default_backup());
}

/* ---- core components ---------------------------------------------------------------------- */

static void resolve_global_topo(struct ctx *c, json_t *spec)
{
    const json_t *in = json_object_get(c->spec_in, "globalTopoServer");
    const char *ref = json_string_value(json_object_get(in, "templateRef"));
    const json_t *core = pick_template(c, T_CORE, ref, "spec.globalTopoServer.templateRef");
    json_t *out = copy_or_empty(c, json_object_get(core, "globalTopoServer"));
    if (!out)
        return;
    if (is_set(json_object_get(in, "external"))) {
        /* An external topology replaces a managed etcd wholesale. */
        json_object_del(out, "etcd");
        json_object_del(out, "placement");
    }
    merge(c, out, in);
    json_object_del(out, "templateRef");
    if (is_set(json_object_get(out, "external"))) {
        json_t *ext = child_object(c, out, "external");
        set_default(c, ext, "implementation", json_string("etcd"));
        set_default(c, ext, "rootPath", json_string("/multigres/global"));
    } else {
        json_t *etcd = child_object(c, out, "etcd");
        set_default(c, etcd, "replicas", json_integer(3));
        json_t *storage = child_object(c, etcd, "storage");
        set_default(c, storage, "size", json_string("1Gi"));
        if (etcd && !resources_set(json_object_get(etcd, "resources")))
            set_default(c, etcd, "resources", resources_block("100m", "256Mi", "512Mi"));
        set_default(c, etcd, "rootPath", json_string("/multigres/global"));
    }
    if (json_object_set_new(spec, "globalTopoServer", out))
        c->oom = 1;
}

static void resolve_admin(struct ctx *c, json_t *spec, const char *field, const char *tmpl_field,
                          const char *cpu, const char *mem, const char *lim)
{
    const json_t *in = json_object_get(c->spec_in, field);
    const char *ref = json_string_value(json_object_get(in, "templateRef"));
    char path[64];
    (void)snprintf(path, sizeof(path), "spec.%s.templateRef", field);
    const json_t *core = pick_template(c, T_CORE, ref, path);
    json_t *s = copy_or_empty(c, json_object_get(core, tmpl_field));
    merge(c, s, json_object_get(in, "spec"));
    stateless_defaults(c, s, 1, cpu, mem, lim);
    json_t *out = s ? json_pack("{s:o}", "spec", s) : NULL; /* steals s, also on failure */
    if (!out) {
        c->oom = 1;
        return;
    }
    if (strcmp(field, "multiadmin") == 0) {
        const json_t *placement = json_object_get(in, "placement");
        if (!is_set(placement))
            placement = json_object_get(core, "multiadminPlacement");
        if (is_set(placement) && json_object_set_new(out, "placement", json_deep_copy(placement)))
            c->oom = 1;
    }
    if (json_object_set_new(spec, field, out))
        c->oom = 1;
}

/* ---- cells -------------------------------------------------------------------------------- */

static void resolve_cell(struct ctx *c, json_t *cell, size_t index)
{
    char path[64];
    const char *ref = json_string_value(json_object_get(cell, "cellTemplate"));
    (void)snprintf(path, sizeof(path), "spec.cells[%zu].cellTemplate", index);
    const json_t *t = pick_template(c, T_CELL, ref, path);
    json_t *s = copy_or_empty(c, t);
    merge(c, s, json_object_get(cell, "overrides"));
    merge(c, s, json_object_get(cell, "spec"));
    json_t *gw = s ? child_object(c, s, "multigateway") : NULL;
    stateless_defaults(c, gw, 1, "100m", "128Mi", "256Mi");
    json_t *buffer = gw ? child_object(c, gw, "buffer") : NULL;
    set_default(c, buffer, "enabled", json_true());
    json_object_del(cell, "cellTemplate");
    json_object_del(cell, "overrides");
    if (!s || json_object_set_new(cell, "spec", s))
        c->oom = 1;
}

/* ---- databases, tablegroups, shards ------------------------------------------------------- */

/* Per-field, child wins: the effective PVC deletion policy of `child` under `parent`. */
static json_t *pvc_effective(struct ctx *c, const json_t *parent, const json_t *child)
{
    json_t *eff = copy_or_empty(c, parent);
    if (eff && json_is_object(child)) {
        const char *k;
        json_t *v;
        json_object_foreach ((json_t *)child, k, v)
            if (is_set(v) && json_object_set(eff, k, v))
                c->oom = 1;
    }
    return eff;
}

/* The reference's backup merge: a child of another type replaces the parent wholesale;
 * otherwise non-empty fields merge; useEnvCredentials comes from a child's S3 block. */
static json_t *backup_effective(struct ctx *c, const json_t *parent, const json_t *child)
{
    if (!json_is_object(child))
        return copy_or_empty(c, parent);
    const char *pt = json_string_value(json_object_get(parent, "type"));
    const char *ct = json_string_value(json_object_get(child, "type"));
    if (!json_is_object(parent) || (ct && (!pt || strcmp(pt, ct) != 0)))
        return copy_or_empty(c, child);
    json_t *eff = copy_or_empty(c, parent);
    merge(c, eff, child);
    const json_t *cs3 = json_object_get(child, "s3");
    json_t *es3 = json_object_get(eff, "s3");
    if (json_is_object(cs3) && json_is_object(es3) &&
        !is_set(json_object_get(cs3, "useEnvCredentials")))
        json_object_del(es3, "useEnvCredentials");
    return eff;
}

static void replace(struct ctx *c, json_t *obj, const char *key, json_t *value)
{
    if (!value || json_object_set_new(obj, key, value))
        c->oom = 1;
}

static int string_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* multiorch runs where the shard's pools run: the sorted union of their cells. */
static json_t *pool_cells_union(struct ctx *c, const json_t *pools)
{
    const char *names[512];
    size_t n = 0;
    const char *k;
    json_t *pool;
    json_object_foreach ((json_t *)pools, k, pool) {
        size_t i;
        json_t *cell;
        json_array_foreach (json_object_get(pool, "cells"), i, cell) {
            const char *s = json_string_value(cell);
            size_t j;
            for (j = 0; s && j < n; j++)
                if (strcmp(names[j], s) == 0)
                    break;
            if (s && j == n && n < sizeof(names) / sizeof(names[0]))
                names[n++] = s;
        }
    }
    qsort(names, n, sizeof(names[0]), string_cmp);
    json_t *out = json_array();
    for (size_t i = 0; out && i < n; i++)
        if (json_array_append_new(out, json_string(names[i])))
            c->oom = 1;
    if (!out)
        c->oom = 1;
    return out;
}

static void resolve_pool(struct ctx *c, json_t *pool, const json_t *cluster_cells,
                         const json_t *shard_pvc)
{
    set_default(c, pool, "type", json_string("readWrite"));
    const json_t *cells = json_object_get(pool, "cells");
    if (!json_is_array(cells) || json_array_size(cells) == 0)
        replace(c, pool, "cells", json_deep_copy(cluster_cells));
    /* A single-cell pool gets two replicas, so that AT_LEAST_2 has two poolers. */
    size_t ncells = json_array_size(json_object_get(pool, "cells"));
    set_default(c, pool, "replicasPerCell", json_integer(ncells == 1 ? 2 : 1));
    set_default(c, child_object(c, pool, "storage"), "size", json_string("1Gi"));
    json_t *pg = child_object(c, pool, "postgres");
    if (pg && !resources_set(json_object_get(pg, "resources")))
        replace(c, pg, "resources", resources_block("100m", "256Mi", "512Mi"));
    json_t *mp = child_object(c, pool, "multipooler");
    if (mp && !resources_set(json_object_get(mp, "resources")))
        replace(c, mp, "resources", resources_block("100m", "128Mi", "256Mi"));
    replace(c, pool, "pvcDeletionPolicy",
            pvc_effective(c, shard_pvc, json_object_get(pool, "pvcDeletionPolicy")));
}

static void resolve_shard(struct ctx *c, json_t *shard, const char *path,
                          const json_t *cluster_cells, const json_t *tg_pvc,
                          const json_t *tg_backup)
{
    char ref_path[320];
    const char *ref = json_string_value(json_object_get(shard, "shardTemplate"));
    (void)snprintf(ref_path, sizeof(ref_path), "%s.shardTemplate", path);
    const json_t *t = pick_template(c, T_SHARD, ref, ref_path);
    json_t *s = copy_or_empty(c, t);
    if (!s)
        return;

    const json_t *over_pools = json_object_get(json_object_get(shard, "overrides"), "pools");
    const json_t *tmpl_pools = json_object_get(t, "pools");
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)over_pools, k, v)
        if (t && !json_object_get(tmpl_pools, k)) {
            char p[320];
            (void)snprintf(p, sizeof(p), "%s.overrides.pools[%s]", path, k);
            spec_warning(c->errs, p,
                         "pool '%s' is not in the shard template: a new pool will be created", k);
        }
    merge(c, s, json_object_get(shard, "overrides"));
    merge(c, s, json_object_get(shard, "spec"));

    json_t *shard_pvc = pvc_effective(c, tg_pvc, json_object_get(s, "pvcDeletionPolicy"));
    json_t *pools = child_object(c, s, "pools");
    if (pools && json_object_size(pools) == 0)
        replace(c, pools, "default", json_object());
    json_object_foreach (pools, k, v)
        if (json_is_object(v))
            resolve_pool(c, v, cluster_cells, shard_pvc);
    json_t *orch = child_object(c, s, "multiorch");
    stateless_defaults(c, orch, 1, "50m", "64Mi", "128Mi");
    const json_t *orch_cells = json_object_get(orch, "cells");
    if (orch && (!json_is_array(orch_cells) || json_array_size(orch_cells) == 0))
        replace(c, orch, "cells", pool_cells_union(c, pools));
    replace(c, s, "pvcDeletionPolicy", shard_pvc);

    json_t *backup = backup_effective(c, tg_backup, json_object_get(shard, "backup"));
    json_object_del(shard, "shardTemplate");
    json_object_del(shard, "overrides");
    replace(c, shard, "spec", s);
    replace(c, shard, "backup", backup);
}

static json_t *ensure_list(struct ctx *c, json_t *obj, const char *key, json_t *fallback)
{
    json_t *list = json_object_get(obj, key);
    if (json_is_array(list) && json_array_size(list) > 0) {
        json_decref(fallback);
        return list;
    }
    /* json_pack steals fallback even when it fails; set_new steals the list likewise. */
    list = fallback ? json_pack("[o]", fallback) : NULL;
    if (!list || json_object_set_new(obj, key, list)) {
        c->oom = 1;
        return NULL;
    }
    return list;
}

static void resolve_databases(struct ctx *c, json_t *spec, const json_t *cluster_cells)
{
    json_t *dbs = ensure_list(c, spec, "databases",
                              json_pack("{s:s, s:b}", "name", "postgres", "default", 1));
    const json_t *cluster_pvc = json_object_get(spec, "pvcDeletionPolicy");
    const json_t *cluster_backup = json_object_get(spec, "backup");
    size_t d, t, s;
    json_t *db, *tg, *shard;
    char path[256];

    json_array_foreach (dbs, d, db) {
        if (!json_is_object(db))
            continue;
        set_default(c, db, "durabilityPolicy",
                    json_deep_copy(json_object_get(spec, "durabilityPolicy")));
        replace(c, db, "backup",
                backup_effective(c, cluster_backup, json_object_get(db, "backup")));
        const json_t *db_backup = json_object_get(db, "backup"); /* owned by db */
        json_t *tgs = ensure_list(c, db, "tablegroups",
                                  json_pack("{s:s, s:b}", "name", "default", "default", 1));
        json_array_foreach (tgs, t, tg) {
            if (!json_is_object(tg))
                continue;
            replace(c, tg, "pvcDeletionPolicy",
                    pvc_effective(c, cluster_pvc, json_object_get(tg, "pvcDeletionPolicy")));
            replace(c, tg, "backup", backup_effective(c, db_backup, json_object_get(tg, "backup")));
            json_t *shards = ensure_list(c, tg, "shards", json_pack("{s:s}", "name", "0-inf"));
            json_array_foreach (shards, s, shard) {
                if (!json_is_object(shard))
                    continue;
                (void)snprintf(path, sizeof(path),
                               "spec.databases[%zu].tablegroups[%zu].shards[%zu]", d, t, s);
                resolve_shard(c, shard, path, cluster_cells,
                              json_object_get(tg, "pvcDeletionPolicy"),
                              json_object_get(tg, "backup"));
            }
        }
    }
}

int resolve_cluster(const json_t *cluster, const struct resolve_templates *templates,
                    const char *namespace_name, struct spec_errors *errs, json_t **ret_resolved,
                    json_t **ret_used)
{
    struct ctx c = {.templates = templates, .ns = namespace_name, .errs = errs};
    size_t before = spec_errors_count(errs);
    json_t *out = json_deep_copy(cluster);
    c.used = json_array();
    if (!out || !c.used) {
        json_decref(out);
        json_decref(c.used);
        return -ENOMEM;
    }
    c.spec_in = json_object_get(cluster, "spec");
    json_t *spec = child_object(&c, out, "spec");
    if (spec) {
        cluster_statics(&c, spec);
        resolve_global_topo(&c, spec);
        resolve_admin(&c, spec, "multiadmin", "multiadmin", "100m", "128Mi", "256Mi");
        resolve_admin(&c, spec, "multiadminWeb", "multiadminWeb", "50m", "64Mi", "128Mi");
        json_t *cells = json_object_get(spec, "cells");
        json_t *names = json_array();
        size_t i;
        json_t *cell;
        if (!names)
            c.oom = 1;
        json_array_foreach (cells, i, cell) {
            if (!json_is_object(cell))
                continue;
            resolve_cell(&c, cell, i);
            json_t *name = json_object_get(cell, "name");
            if (names && json_is_string(name) && json_array_append(names, name))
                c.oom = 1;
        }
        if (names)
            resolve_databases(&c, spec, names);
        json_decref(names);
    }
    if (c.oom || errs->oom) {
        json_decref(out);
        json_decref(c.used);
        return -ENOMEM;
    }
    if (spec_errors_count(errs) > before) {
        json_decref(out);
        json_decref(c.used);
        return -EINVAL;
    }
    *ret_resolved = out;
    *ret_used = c.used;
    return 0;
}
