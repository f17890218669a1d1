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

/* Whether a value counts as set, as the reference's Go code decides it: nil pointers, empty
 * strings and empty lists are "not set" (`if x != ""`, `if len(x) > 0`). */
static int is_set(const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return 1;
}

static int is_nonempty(const json_t *v)
{
    return is_set(v) && !(json_is_object(v) && json_object_size(v) == 0);
}

/* A resources block replaces the base only when it sets requests, limits or claims
 * (the reference's isResourcesZero: all three empty). */
static int resources_set(const json_t *r)
{
    return json_is_object(r) &&
           (is_nonempty(json_object_get(r, "requests")) ||
            is_nonempty(json_object_get(r, "limits")) || is_nonempty(json_object_get(r, "claims")));
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
    json_t *used; /* [{"kind", "name"}] */
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

/* Set obj[key] = value (stolen), replacing what is there. */
static void replace_value(struct ctx *c, json_t *obj, const char *key, json_t *value)
{
    if (!obj) {
        json_decref(value);
        return;
    }
    if (!value || json_object_set_new(obj, key, value))
        c->oom = 1;
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
 * The template spec for one component, by the chain: the component's explicit reference, else
 * spec.templateDefaults.<kind>, else the namespace's template named "default". Only the implicit
 * fallback may be missing: an explicit reference to a missing template (whatever its name,
 * "default" included) is an error at explicit_path, as the reference webhook rules it; missing
 * templateDefaults entries are reported once by check_template_defaults(). Returns the
 * template's spec (borrowed) or NULL for none.
 */
static const json_t *pick_template(struct ctx *c, enum tkind k, const char *explicit_name,
                                   const char *explicit_path)
{
    const char *name = explicit_name;
    int is_explicit = name && *name;

    if (!is_explicit) {
        const json_t *td = json_object_get(c->spec_in, "templateDefaults");
        name = json_string_value(json_object_get(td, tkind_defaults_key[k]));
    }
    if (!name || !*name)
        name = "default";
    const json_t *t = json_object_get(templates_of(c, k), name);
    if (!t) {
        if (is_explicit)
            spec_error(c->errs, explicit_path, "referenced %s '%s' not found in namespace '%s'",
                       tkind_name[k], name, c->ns);
        return NULL;
    }
    note_used(c, k, name);
    const json_t *spec = json_object_get(t, "spec");
    return json_is_object(spec) ? spec : NULL;
}

/* Every non-empty spec.templateDefaults entry must name an existing template, used or not. */
static void check_template_defaults(struct ctx *c)
{
    const json_t *td = json_object_get(c->spec_in, "templateDefaults");
    char path[64];
    for (int k = T_CORE; k <= T_SHARD; k++) {
        const char *name = json_string_value(json_object_get(td, tkind_defaults_key[k]));
        if (!name || !*name || json_object_get(templates_of(c, (enum tkind)k), name))
            continue;
        (void)snprintf(path, sizeof(path), "spec.templateDefaults.%s", tkind_defaults_key[k]);
        spec_error(c->errs, path, "referenced %s '%s' not found in namespace '%s'", tkind_name[k],
                   name, c->ns);
    }
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

/* The reference's default etcd image (api/v1alpha1/image_defaults.go). */
#define DEFAULT_ETCD_IMAGE "gcr.io/etcd-development/etcd:v3.6.7"

/* defaultEtcdSpec / defaultExternalTopoSpec, with the root path for this server. */
static void topo_server_defaults(struct ctx *c, json_t *server, const char *root)
{
    json_t *etcd = json_object_get(server, "etcd");
    json_t *ext = json_object_get(server, "external");
    if (json_is_object(etcd)) {
        set_default(c, etcd, "image", json_string(DEFAULT_ETCD_IMAGE));
        set_default(c, child_object(c, etcd, "storage"), "size", json_string("1Gi"));
        set_default(c, etcd, "replicas", json_integer(3));
        set_default(c, etcd, "rootPath", json_string(root));
        if (!resources_set(json_object_get(etcd, "resources")))
            replace_value(c, etcd, "resources", resources_block("100m", "256Mi", "512Mi"));
    }
    if (json_is_object(ext)) {
        set_default(c, ext, "implementation", json_string("etcd"));
        set_default(c, ext, "rootPath", json_string(root));
    }
}

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
    if (!is_set(json_object_get(out, "external")))
        (void)child_object(c, out, "etcd"); /* managed etcd unless external */
    topo_server_defaults(c, out, "/multigres/global");
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
    json_t *local = s ? json_object_get(s, "localTopoServer") : NULL;
    if (json_is_object(local)) {
        char root[96];
        (void)snprintf(root, sizeof(root), "/multigres/%s",
                       json_string_value(json_object_get(cell, "name")));
        topo_server_defaults(c, local, root);
    }
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

/* Copy the set fields `names` of `from` over `to` (strings and lists only when non-empty). */
static void copy_set_fields(struct ctx *c, json_t *to, const json_t *from, const char *const *names)
{
    for (const char *const *n = names; *n; n++) {
        const json_t *v = json_object_get(from, *n);
        if (is_set(v))
            replace_value(c, to, *n, json_deep_copy(v));
    }
}

/*
 * The reference's MergeBackupConfig(child, parent): a child of another type replaces the parent
 * wholesale; otherwise the child's non-empty fields of the merged type's sub-block win (the other
 * type's sub-block is dropped), useEnvCredentials always comes from a child's S3 block, and TLS
 * and encryption replace. Returns a new object (or NULL when both are absent).
 */
static json_t *backup_merge(struct ctx *c, const json_t *parent, const json_t *child)
{
    static const char *const fs_fields[] = {"path", NULL};
    static const char *const storage_fields[] = {"size", "class", "accessModes", NULL};
    static const char *const s3_fields[] = {
        "bucket", "region", "endpoint", "keyPrefix", "credentialsSecret", "serviceAccountName",
        NULL};
    if (!json_is_object(child))
        return json_is_object(parent) ? copy_or_empty(c, parent) : NULL;
    if (!json_is_object(parent))
        return copy_or_empty(c, child);
    const char *pt = json_string_value(json_object_get(parent, "type"));
    const char *ct = json_string_value(json_object_get(child, "type"));
    if (ct && *ct && (!pt || strcmp(pt, ct) != 0))
        return copy_or_empty(c, child);

    json_t *m = copy_or_empty(c, parent);
    if (!m)
        return NULL;
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type && strcmp(type, "filesystem") == 0) {
        json_t *fs = child_object(c, m, "filesystem");
        const json_t *cfs = json_object_get(child, "filesystem");
        if (fs && json_is_object(cfs)) {
            copy_set_fields(c, fs, cfs, fs_fields);
            copy_set_fields(c, child_object(c, fs, "storage"), json_object_get(cfs, "storage"),
                            storage_fields);
        }
        json_object_del(m, "s3");
    } else if (type && strcmp(type, "s3") == 0) {
        json_t *s3 = child_object(c, m, "s3");
        const json_t *cs3 = json_object_get(child, "s3");
        if (s3 && json_is_object(cs3)) {
            copy_set_fields(c, s3, cs3, s3_fields);
            const json_t *env = json_object_get(cs3, "useEnvCredentials");
            replace_value(c, s3, "useEnvCredentials",
                          json_boolean(json_is_true(env))); /* always the child's */
        }
        json_object_del(m, "filesystem");
    }
    static const char *const whole[] = {"pgbackrestTLS", "encryption", NULL};
    for (const char *const *w = whole; *w; w++) {
        const json_t *v = json_object_get(child, *w);
        if (is_set(v))
            replace_value(c, m, *w, json_deep_copy(v));
    }
    return m;
}

/* defaultBackupConfig: filesystem unless said otherwise, at /backups with 10Gi. */
static void backup_defaults(struct ctx *c, json_t *backup)
{
    if (!json_is_object(backup))
        return;
    set_default(c, backup, "type", json_string("filesystem"));
    if (strcmp(json_string_value(json_object_get(backup, "type")), "filesystem") != 0)
        return;
    json_t *fs = child_object(c, backup, "filesystem");
    set_default(c, fs, "path", json_string("/backups"));
    set_default(c, fs ? child_object(c, fs, "storage") : NULL, "size", json_string("10Gi"));
}

/* The effective backup of a level: its own merged over its parent's, then defaulted. */
static json_t *backup_effective(struct ctx *c, const json_t *parent, const json_t *child)
{
    json_t *b = backup_merge(c, parent, child);
    if (!b)
        b = json_pack("{s:s}", "type", "filesystem");
    backup_defaults(c, b);
    if (!b)
        c->oom = 1;
    return b;
}

static int string_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The cluster's cell names, sorted (the reference sorts materialised cell lists). */
static json_t *sorted_cells(struct ctx *c, const json_t *cluster_cells)
{
    size_t n = json_array_size(cluster_cells);
    const char **names = core_calloc(n ? n : 1, sizeof(*names));
    json_t *out = json_array();
    if (!names || !out) {
        core_free(names);
        json_decref(out);
        c->oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = json_string_value(json_array_get(cluster_cells, i));
    qsort(names, n, sizeof(*names), string_cmp);
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(out, json_string(names[i])))
            c->oom = 1;
    core_free(names);
    return out;
}

static void resolve_pool(struct ctx *c, json_t *pool, const json_t *all_cells_sorted,
                         const json_t *shard_pvc)
{
    set_default(c, pool, "type", json_string("readWrite"));
    if (!is_set(json_object_get(pool, "cells")))
        replace_value(c, pool, "cells", json_deep_copy(all_cells_sorted));
    /* A single-cell pool gets two replicas, so that AT_LEAST_2 has two poolers. */
    size_t ncells = json_array_size(json_object_get(pool, "cells"));
    set_default(c, pool, "replicasPerCell", json_integer(ncells == 1 ? 2 : 1));
    set_default(c, child_object(c, pool, "storage"), "size", json_string("1Gi"));
    json_t *pg = child_object(c, pool, "postgres");
    if (pg && !resources_set(json_object_get(pg, "resources")))
        replace_value(c, pg, "resources", resources_block("100m", "256Mi", "512Mi"));
    json_t *mp = child_object(c, pool, "multipooler");
    if (mp && !resources_set(json_object_get(mp, "resources")))
        replace_value(c, mp, "resources", resources_block("100m", "128Mi", "256Mi"));
    replace_value(c, pool, "pvcDeletionPolicy",
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
    json_t *all_cells = sorted_cells(c, cluster_cells);
    /* multiorch runs in every cell unless told otherwise; the implicit pool follows it. */
    json_t *orch = child_object(c, s, "multiorch");
    stateless_defaults(c, orch, 1, "50m", "64Mi", "128Mi");
    if (orch && !is_set(json_object_get(orch, "cells")) && json_array_size(all_cells) > 0)
        replace_value(c, orch, "cells", json_deep_copy(all_cells));
    json_t *pools = child_object(c, s, "pools");
    if (pools && json_object_size(pools) == 0) {
        json_t *implicit = json_pack("{s:s}", "type", "readWrite");
        const json_t *cells = json_object_get(orch, "cells");
        if (implicit && is_set(cells))
            replace_value(c, implicit, "cells", json_deep_copy(cells));
        replace_value(c, pools, "default", implicit);
    }
    json_object_foreach (pools, k, v)
        if (json_is_object(v))
            resolve_pool(c, v, all_cells, shard_pvc);
    json_decref(all_cells);
    replace_value(c, s, "pvcDeletionPolicy", shard_pvc);

    json_t *backup = backup_effective(c, tg_backup, json_object_get(shard, "backup"));
    json_object_del(shard, "shardTemplate");
    json_object_del(shard, "overrides");
    replace_value(c, shard, "spec", s);
    replace_value(c, shard, "backup", backup);
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
        replace_value(c, db, "backup",
                      backup_effective(c, cluster_backup, json_object_get(db, "backup")));
        const json_t *db_backup = json_object_get(db, "backup"); /* owned by db */
        json_t *tgs = ensure_list(c, db, "tablegroups",
                                  json_pack("{s:s, s:b}", "name", "default", "default", 1));
        json_array_foreach (tgs, t, tg) {
            if (!json_is_object(tg))
                continue;
            replace_value(c, tg, "pvcDeletionPolicy",
                          pvc_effective(c, cluster_pvc, json_object_get(tg, "pvcDeletionPolicy")));
            replace_value(c, tg, "backup",
                          backup_effective(c, db_backup, json_object_get(tg, "backup")));
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
        check_template_defaults(&c);
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
