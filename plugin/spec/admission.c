/* Admission rules of the reference webhook, on the cluster as written and as resolved. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/admission.h"
#include "spec/pgparams.h"
#include "spec/quantity.h"

/* ---- durations ---------------------------------------------------------------------------- */

int admission_parse_duration(const char *s, double *ret)
{
    static const struct {
        const char *unit;
        double seconds;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xC2\xB5s", 1e-6}, {"\xCE\xBCs", 1e-6},
                 {"ms", 1e-3}, {"s", 1.0},   {"m", 60.0},         {"h", 3600.0}};
    double total = 0;
    const char *p = s;

    if (!*p)
        return -EINVAL;
    while (*p) {
        char *end = NULL;
        if (!(*p >= '0' && *p <= '9'))
            return -EINVAL;
        double v = strtod(p, &end);
        if (end == p)
            return -EINVAL;
        p = end;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > best_len) {
                best = i;
                best_len = n;
            }
        }
        if (!best_len)
            return -EINVAL;
        total += v * units[best].seconds;
        p += best_len;
    }
    *ret = total;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static int is_dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
        if (!ok || ((i == 0 || i == n - 1) && ch == '-'))
            return 0;
    }
    return 1;
}

static void quantity_text(const json_t *v, char *buf, size_t size)
{
    if (json_is_string(v))
        (void)snprintf(buf, size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        (void)snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        (void)snprintf(buf, size, "%g", json_number_value(v));
}

/* Follow a path such as "spec.cells[0].spec" or "x.pools[main]" ([digits] index a list,
 * [text] keys a map) inside the object as the user wrote it. NULL when absent. */
static const json_t *written_at(const json_t *root, const char *path)
{
    char buf[512];
    const json_t *v = root;
    (void)snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf; v && *p;) {
        if (*p == '.') {
            p++;
        } else if (*p == '[') {
            char *end = strchr(p, ']');
            if (!end)
                return NULL;
            *end = '\0';
            v = json_is_array(v) ? json_array_get(v, strtoul(p + 1, NULL, 10))
                                 : json_object_get(v, p + 1);
            p = end + 1;
        } else {
            size_t n = strcspn(p, ".[");
            char save = p[n];
            p[n] = '\0';
            v = json_object_get(v, p);
            p[n] = save;
            p += n;
        }
    }
    return v;
}

/* Where the checks report: the errors, and the cluster as written (to point at the field the
 * user wrote rather than at a resolved value). */
struct checker {
    struct spec_errors *errs;
    const json_t *written;
};

/*
 * A resource limit below its request is rejected for every component. The error points at the
 * limit where the user wrote it (the first of the NULL-terminated `written` candidate paths of
 * the resources block that sets that limit), else at `fallback` (the value came from a template
 * or a default).
 */
static void check_resources(const struct checker *c, const json_t *resources, const char *component,
                            const char *fallback, const char *const *written)
{
    const json_t *req = json_object_get(resources, "requests");
    const json_t *lim = json_object_get(resources, "limits");
    const char *name;
    json_t *lv;

    json_object_foreach ((json_t *)lim, name, lv) {
        const json_t *rv = json_object_get(req, name);
        long double l, r;
        char lt[64], rt[64], path[512];
        if (!rv || quantity_parse(lv, &l) || quantity_parse(rv, &r) || quantity_compare(l, r) >= 0)
            continue;
        quantity_text(lv, lt, sizeof(lt));
        quantity_text(rv, rt, sizeof(rt));
        (void)snprintf(path, sizeof(path), "%s", fallback);
        for (const char *const *w = written; w && *w; w++) {
            const json_t *block = written_at(c->written, *w);
            if (json_object_get(json_object_get(block, "limits"), name)) {
                (void)snprintf(path, sizeof(path), "%s.limits[%s]", *w, name);
                break;
            }
        }
        spec_error(c->errs, path, "%s: resource %s limit (%s) must be >= request (%s)", component,
                   name, lt, rt);
    }
}

/* Gateway buffer timings, with the gateway binary's defaults for unset fields. */
static void check_buffer(const json_t *buffer, const char *path, const struct checker *c)
{
    double window = 10, max_failover = 20, min_between = 60;
    const char *w = str(buffer, "window");
    const char *m = str(buffer, "maxFailoverDuration");
    const char *b = str(buffer, "minTimeBetweenFailovers");

    if (!json_is_object(buffer))
        return;
    if ((w && admission_parse_duration(w, &window)) ||
        (m && admission_parse_duration(m, &max_failover)) ||
        (b && admission_parse_duration(b, &min_between)))
        return; /* the schema pattern reports malformed durations */
    if (window <= 0)
        spec_error(c->errs, path, "multigateway buffer: window must be positive");
    if (max_failover <= 0)
        spec_error(c->errs, path, "multigateway buffer: maxFailoverDuration must be positive");
    if (min_between < 0)
        spec_error(c->errs, path,
                   "multigateway buffer: minTimeBetweenFailovers must not be negative");
    if (window > max_failover)
        spec_error(c->errs, path,
                   "multigateway buffer: window (%s) must not exceed maxFailoverDuration (%s)",
                   w ? w : "10s", m ? m : "20s");
}

static void check_postgres_config(const json_t *config, const char *path, const struct checker *c)
{
    const char *key;
    json_t *v;
    char p[512], reason[512];

    json_object_foreach ((json_t *)config, key, v) {
        if (!json_is_string(v))
            continue; /* the schema reports the type */
        if (pg_param_check(key, json_string_value(v), reason, sizeof(reason)) == 0)
            continue;
        (void)snprintf(p, sizeof(p), "%s.postgresConfig[%s]", path, key);
        spec_error(c->errs, p, "%s", reason);
    }
}

static void check_pool_names(const json_t *pools, const char *path, const struct checker *c)
{
    const char *key;
    json_t *v;
    char p[512];

    json_object_foreach ((json_t *)pools, key, v) {
        if (is_dns_label(key) && strlen(key) <= 25)
            continue;
        (void)snprintf(p, sizeof(p), "%s.pools[%s]", path, key);
        spec_error(c->errs, p,
                   "pool name must be a lowercase DNS label of at most 25 characters "
                   "([a-z0-9] and '-', starting and ending alphanumeric)");
    }
}

/* ---- the cluster -------------------------------------------------------------------------- */

static int cell_exists(const json_t *cells, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach ((json_t *)cells, i, c)
        if (json_is_string(json_object_get(c, "name")) && strcmp(str(c, "name"), name) == 0)
            return 1;
    return 0;
}

static void check_cells_known(const json_t *list, const json_t *cells, const char *what,
                              const char *path, const struct checker *c)
{
    size_t i;
    json_t *cell;
    json_array_foreach ((json_t *)list, i, cell)
        if (json_is_string(cell) && !cell_exists(cells, json_string_value(cell)))
            spec_error(c->errs, path,
                       "%s is assigned to cell '%s', which is not a cell of the cluster", what,
                       json_string_value(cell));
}

/*
 * The container resources of one resolved pool. `written_a`/`written_b` are the paths of the
 * specs where the user may have written the pool (".pools[name]" is appended); NULL to skip.
 */
static void check_pool_resources(const struct checker *c, const json_t *pool, const char *pool_name,
                                 const char *fallback, const char *written_a, const char *written_b)
{
    static const char *const containers[] = {"postgres", "multipooler", NULL};
    for (const char *const *ct = containers; *ct; ct++) {
        char comp[96], wa[400], wb[400];
        const char *at[3] = {NULL, NULL, NULL};
        size_t n = 0;
        (void)snprintf(comp, sizeof(comp), "%s (pool %s)", *ct, pool_name);
        if (written_a) {
            (void)snprintf(wa, sizeof(wa), "%s.pools[%s].%s.resources", written_a, pool_name, *ct);
            at[n++] = wa;
        }
        if (written_b) {
            (void)snprintf(wb, sizeof(wb), "%s.pools[%s].%s.resources", written_b, pool_name, *ct);
            at[n++] = wb;
        }
        check_resources(c, json_object_get(json_object_get(pool, *ct), "resources"), comp, fallback,
                        at);
    }
}

static void check_pool(const json_t *pool, const char *pool_name, const json_t *cells,
                       const char *shard_path, const struct checker *c)
{
    char what[96];
    const json_t *pcells = json_object_get(pool, "cells");

    (void)snprintf(what, sizeof(what), "pool '%s'", pool_name);
    if (json_array_size(pcells) == 0)
        spec_error(c->errs, shard_path, "pool '%s' resolves to no cells", pool_name);
    check_cells_known(pcells, cells, what, shard_path, c);
    char spec_at[320], over_at[320];
    (void)snprintf(spec_at, sizeof(spec_at), "%s.spec", shard_path);
    (void)snprintf(over_at, sizeof(over_at), "%s.overrides", shard_path);
    check_pool_resources(c, pool, pool_name, shard_path, spec_at, over_at);

    const json_t *pg_uid = json_object_get(json_object_get(pool, "postgres"), "runAsUser");
    const json_t *mp_uid = json_object_get(json_object_get(pool, "multipooler"), "runAsUser");
    if ((pg_uid || mp_uid) && !json_equal((json_t *)pg_uid, (json_t *)mp_uid))
        spec_error(c->errs, shard_path,
                   "pool '%s': multipooler runAsUser must equal postgres runAsUser", pool_name);

    long double size;
    const json_t *sz = json_object_get(json_object_get(pool, "storage"), "size");
    if (sz && quantity_parse(sz, &size))
        spec_error(c->errs, shard_path, "pool '%s': storage.size %s is not a valid quantity",
                   pool_name, json_string_value(sz) ? json_string_value(sz) : "");
}

static json_int_t shard_poolers(const json_t *shard_spec)
{
    json_int_t total = 0;
    const char *k;
    json_t *pool;
    /* The schema bounds replicasPerCell (1..32) and cells (10 per pool), but stay safe anyway. */
    json_object_foreach (json_object_get(shard_spec, "pools"), k, pool) {
        json_int_t r = json_integer_value(json_object_get(pool, "replicasPerCell"));
        json_int_t n = (json_int_t)json_array_size(json_object_get(pool, "cells"));
        if (r < 0 || r > 1000000 || n > 1000000)
            return 1000000;
        total += r * n;
        if (total > 1000000)
            return total;
    }
    return total;
}

static void check_durability(const char *policy, const char *path, const json_t *shard_spec,
                             size_t ncells, const struct checker *c)
{
    if (!policy)
        return;
    if (strcmp(policy, "AT_LEAST_2") != 0 && strcmp(policy, "MULTI_CELL_AT_LEAST_2") != 0) {
        spec_error(c->errs, path,
                   "Unsupported value: \"%s\": supported values: \"AT_LEAST_2\", "
                   "\"MULTI_CELL_AT_LEAST_2\"",
                   policy);
        return;
    }
    if (shard_spec && shard_poolers(shard_spec) < 2)
        spec_warning(c->errs, path, "durability policy %s needs at least 2 poolers per shard",
                     policy);
    if (strcmp(policy, "MULTI_CELL_AT_LEAST_2") == 0 && ncells < 2)
        spec_warning(c->errs, path, "durability policy %s needs at least 2 cells", policy);
}

static void check_shard(const json_t *shard_in, const json_t *shard, const json_t *cells,
                        const char *path, const struct checker *c)
{
    const json_t *s = json_object_get(shard, "spec");
    const char *k;
    json_t *pool;
    char p[320];

    /* User-written maps, at the paths where the user wrote them. */
    (void)snprintf(p, sizeof(p), "%s.overrides", path);
    check_postgres_config(json_object_get(json_object_get(shard_in, "overrides"), "postgresConfig"),
                          p, c);
    check_pool_names(json_object_get(json_object_get(shard_in, "overrides"), "pools"), p, c);
    (void)snprintf(p, sizeof(p), "%s.spec", path);
    check_postgres_config(json_object_get(json_object_get(shard_in, "spec"), "postgresConfig"), p,
                          c);
    check_pool_names(json_object_get(json_object_get(shard_in, "spec"), "pools"), p, c);

    const json_t *orch = json_object_get(s, "multiorch");
    check_cells_known(json_object_get(orch, "cells"), cells, "multiorch", path, c);
    char orch_spec[320], orch_over[320];
    (void)snprintf(orch_spec, sizeof(orch_spec), "%s.spec.multiorch.resources", path);
    (void)snprintf(orch_over, sizeof(orch_over), "%s.overrides.multiorch.resources", path);
    const char *const orch_at[] = {orch_spec, orch_over, NULL};
    check_resources(c, json_object_get(orch, "resources"), "multiorch", path, orch_at);
    json_object_foreach (json_object_get(s, "pools"), k, pool)
        check_pool(pool, k, cells, path, c);
}

static const json_t *find_named(const json_t *list, const char *name)
{
    size_t i;
    json_t *item;
    json_array_foreach ((json_t *)list, i, item)
        if (name && str(item, "name") && strcmp(str(item, "name"), name) == 0)
            return item;
    return NULL;
}

/* The pools a shard writes itself, as the reference's collectPoolStorageSizes reads them: the
 * inline spec's, else the overrides'; with the matching path prefix. */
static const json_t *written_pools(const json_t *shard, const char **ret_where)
{
    const json_t *spec = json_object_get(shard, "spec");
    if (json_is_object(spec)) {
        *ret_where = "spec";
        return json_object_get(spec, "pools");
    }
    *ret_where = "overrides";
    return json_object_get(json_object_get(shard, "overrides"), "pools");
}

/*
 * Update-only: a pool's storage.size may not shrink. Like the reference webhook, this compares
 * the sizes the two versions write themselves (db/tg/shard/pool by name); sizes that come from
 * a template are not compared, and unparseable sizes are skipped.
 */
static void check_storage_shrink(const json_t *previous, const struct checker *c)
{
    size_t d, t, s;
    json_t *db, *tg, *shard;
    json_array_foreach (json_object_get(json_object_get(c->written, "spec"), "databases"), d, db)
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg)
            json_array_foreach (json_object_get(tg, "shards"), s, shard) {
                const json_t *old_db =
                    find_named(json_object_get(json_object_get(previous, "spec"), "databases"),
                               str(db, "name"));
                const json_t *old_tg =
                    find_named(json_object_get(old_db, "tablegroups"), str(tg, "name"));
                const json_t *old_shard =
                    find_named(json_object_get(old_tg, "shards"), str(shard, "name"));
                const char *where, *old_where;
                const json_t *pools = written_pools(shard, &where);
                const json_t *old_pools = old_shard ? written_pools(old_shard, &old_where) : NULL;
                const char *k;
                json_t *pool;
                json_object_foreach ((json_t *)pools, k, pool) {
                    const json_t *nv = json_object_get(json_object_get(pool, "storage"), "size");
                    const json_t *ov = json_object_get(
                        json_object_get(json_object_get(old_pools, k), "storage"), "size");
                    long double n, o;
                    if (!ov || quantity_parse(nv, &n) || quantity_parse(ov, &o) ||
                        quantity_compare(n, o) >= 0)
                        continue;
                    char nt[64], ot[64], at[512];
                    quantity_text(nv, nt, sizeof(nt));
                    quantity_text(ov, ot, sizeof(ot));
                    (void)snprintf(at, sizeof(at),
                                   "spec.databases[%zu].tablegroups[%zu].shards[%zu].%s.pools[%s]."
                                   "storage.size",
                                   d, t, s, where, k);
                    spec_error(c->errs, at,
                               "storage.size cannot be decreased (%s/%s/%s/%s: %s → %s); PVC "
                               "shrink is not supported by Kubernetes",
                               str(db, "name"), str(tg, "name"), str(shard, "name"), k, ot, nt);
                }
            }
}

/* The reference's effectiveEtcdReplicas: 0 for an external topology, the written replica
 * count, else the default 3 (templates are not consulted). */
static json_int_t written_etcd_replicas(const json_t *cluster)
{
    const json_t *topo = json_object_get(json_object_get(cluster, "spec"), "globalTopoServer");
    if (json_object_get(topo, "external"))
        return 0;
    const json_t *r = json_object_get(json_object_get(topo, "etcd"), "replicas");
    return json_is_integer(r) ? json_integer_value(r) : 3;
}

/* Update-only: a managed etcd's replica count is immutable (static bootstrap). */
static void check_etcd_replicas(const json_t *previous, const struct checker *c)
{
    json_int_t was = written_etcd_replicas(previous);
    json_int_t now = written_etcd_replicas(c->written);
    if (was == 0 || now == 0 || was == now)
        return;
    spec_error(c->errs, "spec.globalTopoServer.etcd.replicas",
               "topology server (etcd) replicas cannot be changed after cluster creation "
               "(%" JSON_INTEGER_FORMAT " → %" JSON_INTEGER_FORMAT "); etcd uses static bootstrap "
               "which does not support dynamic member addition",
               was, now);
}

static void check_databases(const json_t *cluster, const json_t *resolved, const struct checker *c)
{
    const json_t *spec = json_object_get(resolved, "spec");
    const json_t *spec_in = json_object_get(cluster, "spec");
    const json_t *cells = json_object_get(spec, "cells");
    size_t d, t, s;
    json_t *db, *tg, *shard;
    char path[256];

    json_array_foreach (json_object_get(spec, "databases"), d, db) {
        const json_t *db_in = json_array_get(json_object_get(spec_in, "databases"), d);
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg) {
            const json_t *tg_in = json_array_get(json_object_get(db_in, "tablegroups"), t);
            json_array_foreach (json_object_get(tg, "shards"), s, shard) {
                const json_t *shard_in = json_array_get(json_object_get(tg_in, "shards"), s);
                (void)snprintf(path, sizeof(path),
                               "spec.databases[%zu].tablegroups[%zu].shards[%zu]", d, t, s);
                check_shard(shard_in, shard, cells, path, c);
                /* Durability is judged per shard, where the poolers are. */
                (void)snprintf(path, sizeof(path), "spec.databases[%zu].durabilityPolicy", d);
                if (json_object_get(db_in, "durabilityPolicy"))
                    check_durability(str(db, "durabilityPolicy"), path,
                                     json_object_get(shard, "spec"), json_array_size(cells), c);
                else
                    check_durability(str(db, "durabilityPolicy"), "spec.durabilityPolicy",
                                     json_object_get(shard, "spec"), json_array_size(cells), c);
            }
        }
    }
}

static void check_core(const json_t *resolved, const struct checker *c)
{
    const json_t *spec = json_object_get(resolved, "spec");
    const json_t *topo = json_object_get(spec, "globalTopoServer");
    const json_t *etcd = json_object_get(topo, "etcd");

    if (etcd) {
        static const char *const etcd_at[] = {"spec.globalTopoServer.etcd.resources", NULL};
        check_resources(c, json_object_get(etcd, "resources"), "etcd", "spec.globalTopoServer",
                        etcd_at);
        if (json_integer_value(json_object_get(etcd, "replicas")) == 1)
            spec_warning(c->errs, "spec.globalTopoServer",
                         "etcd with 1 replica has no fault tolerance");
    }
    static const char *const admin_at[] = {"spec.multiadmin.spec.resources", NULL};
    static const char *const web_at[] = {"spec.multiadminWeb.spec.resources", NULL};
    check_resources(
        c,
        json_object_get(json_object_get(json_object_get(spec, "multiadmin"), "spec"), "resources"),
        "multiadmin", "spec.multiadmin", admin_at);
    check_resources(c,
                    json_object_get(json_object_get(json_object_get(spec, "multiadminWeb"), "spec"),
                                    "resources"),
                    "multiadmin-web", "spec.multiadminWeb", web_at);

    size_t i;
    json_t *cell;
    char path[64];
    json_array_foreach (json_object_get(spec, "cells"), i, cell) {
        const json_t *gw = json_object_get(json_object_get(cell, "spec"), "multigateway");
        (void)snprintf(path, sizeof(path), "spec.cells[%zu]", i);
        char gw_spec[128], gw_over[128];
        (void)snprintf(gw_spec, sizeof(gw_spec), "%s.spec.multigateway.resources", path);
        (void)snprintf(gw_over, sizeof(gw_over), "%s.overrides.multigateway.resources", path);
        const char *const gw_at[] = {gw_spec, gw_over, NULL};
        check_resources(c, json_object_get(gw, "resources"), "multigateway", path, gw_at);
        check_buffer(json_object_get(gw, "buffer"), path, c);
    }
    static const char *const exposures[] = {"externalGateway", "externalAdminWeb", NULL};
    for (const char *const *e = exposures; *e; e++) {
        const json_t *x = json_object_get(spec, *e);
        if (json_is_true(json_object_get(x, "enabled")) &&
            json_array_size(json_object_get(x, "externalIPs")) == 0) {
            (void)snprintf(path, sizeof(path), "spec.%s", *e);
            spec_warning(c->errs, path, "external exposure is enabled without externalIPs");
        }
    }
}

void admission_check_cluster(const json_t *cluster, const json_t *resolved, const json_t *previous,
                             struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = cluster};
    check_core(resolved, &ck);
    check_databases(cluster, resolved, &ck);
    if (previous) {
        check_storage_shrink(previous, &ck);
        check_etcd_replicas(previous, &ck);
    }
}

void admission_check_shard_template(const json_t *tmpl, struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = tmpl};
    const struct checker *c = &ck;
    const json_t *spec = json_object_get(tmpl, "spec");
    const char *k;
    json_t *pool;

    check_postgres_config(json_object_get(spec, "postgresConfig"), "spec", c);
    check_pool_names(json_object_get(spec, "pools"), "spec", c);
    static const char *const orch_at[] = {"spec.multiorch.resources", NULL};
    check_resources(c, json_object_get(json_object_get(spec, "multiorch"), "resources"),
                    "multiorch", "spec.multiorch", orch_at);
    json_object_foreach (json_object_get(spec, "pools"), k, pool)
        check_pool_resources(c, pool, k, "spec", "spec", NULL);
}

void admission_check_cell_template(const json_t *tmpl, struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = tmpl};
    const json_t *gw = json_object_get(json_object_get(tmpl, "spec"), "multigateway");
    static const char *const gw_at[] = {"spec.multigateway.resources", NULL};
    check_resources(&ck, json_object_get(gw, "resources"), "multigateway", "spec.multigateway",
                    gw_at);
    check_buffer(json_object_get(gw, "buffer"), "spec.multigateway", &ck);
}
