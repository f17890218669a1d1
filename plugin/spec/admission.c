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

static int is_set_string(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) > 0;
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

/* Go's time.Duration.String() for a duration in seconds ("1m30s", "500ms", "0s"), as the
 * reference's messages print durations. */
static void go_duration(double seconds, char *buf, size_t size)
{
    long long ns = (long long)(seconds * 1e9 + (seconds < 0 ? -0.5 : 0.5));
    const char *sign = ns < 0 ? "-" : "";
    unsigned long long u = (unsigned long long)(ns < 0 ? -ns : ns);
    if (u == 0) {
        (void)snprintf(buf, size, "0s");
    } else if (u < 1000ULL) {
        (void)snprintf(buf, size, "%s%lluns", sign, u);
    } else if (u < 1000000ULL || u < 1000000000ULL) {
        unsigned long long unit = u < 1000000ULL ? 1000ULL : 1000000ULL;
        char frac[24];
        int n = snprintf(frac, sizeof(frac), "%0*llu", u < 1000000ULL ? 3 : 6, u % unit);
        while (n > 0 && frac[n - 1] == '0')
            frac[--n] = '\0';
        (void)snprintf(buf, size, "%s%llu%s%s%s", sign, u / unit, n ? "." : "", frac,
                       u < 1000000ULL ? "\xC2\xB5s" : "ms");
    } else {
        unsigned long long h = u / 3600000000000ULL, rem = u % 3600000000000ULL;
        unsigned long long m = rem / 60000000000ULL;
        rem %= 60000000000ULL;
        char frac[24];
        int n = snprintf(frac, sizeof(frac), "%09llu", rem % 1000000000ULL);
        while (n > 0 && frac[n - 1] == '0')
            frac[--n] = '\0';
        char secs[48];
        (void)snprintf(secs, sizeof(secs), "%llu%s%ss", rem / 1000000000ULL, n ? "." : "", frac);
        if (h)
            (void)snprintf(buf, size, "%s%lluh%llum%s", sign, h, m, secs);
        else if (m)
            (void)snprintf(buf, size, "%s%llum%s", sign, m, secs);
        else
            (void)snprintf(buf, size, "%s%s", sign, secs);
    }
}

/* The path of buffer field `field` where the user wrote it among `at` (buffer paths), else
 * `fallback`. */
static void buffer_field_path(const struct checker *c, const char *const *at, const char *field,
                              const char *fallback, char *out, size_t size)
{
    (void)snprintf(out, size, "%s", fallback);
    for (const char *const *a = at; a && *a; a++)
        if (json_object_get(written_at(c->written, *a), field)) {
            (void)snprintf(out, size, "%s.%s", *a, field);
            return;
        }
}

/*
 * The reference's validateGatewayBuffer: nothing when buffering is disabled; a positive window
 * and maxFailoverDuration; a non-negative minTimeBetweenFailovers; window <= maxFailoverDuration
 * with the gateway binary's defaults (10s, 20s) for unset fields. `resolved` is 0 for a single
 * layer (a CellTemplate), where the ordering is checked only when both fields are set. The
 * first failure is reported, as the reference does.
 */
static void check_buffer(const struct checker *c, const json_t *buffer, const char *subject,
                         const char *const *at, const char *fallback, int resolved)
{
    double window = 10, max_failover = 20, min_between = 0;
    const char *w = str(buffer, "window");
    const char *m = str(buffer, "maxFailoverDuration");
    const char *b = str(buffer, "minTimeBetweenFailovers");
    char path[512], t1[96], t2[96];

    if (!json_is_object(buffer) || json_is_false(json_object_get(buffer, "enabled")))
        return;
    if ((w && admission_parse_duration(w, &window)) ||
        (m && admission_parse_duration(m, &max_failover)) ||
        (b && admission_parse_duration(b, &min_between)))
        return; /* the schema's pattern reports malformed durations */
    if (w && window <= 0) {
        go_duration(window, t1, sizeof(t1));
        buffer_field_path(c, at, "window", fallback, path, sizeof(path));
        spec_error(c->errs, path, "%s: multigateway buffer window (%s) must be a positive duration",
                   subject, t1);
        return;
    }
    if (m && max_failover <= 0) {
        go_duration(max_failover, t1, sizeof(t1));
        buffer_field_path(c, at, "maxFailoverDuration", fallback, path, sizeof(path));
        spec_error(c->errs, path,
                   "%s: multigateway buffer maxFailoverDuration (%s) must be a positive duration",
                   subject, t1);
        return;
    }
    if (b && min_between < 0) {
        go_duration(min_between, t1, sizeof(t1));
        buffer_field_path(c, at, "minTimeBetweenFailovers", fallback, path, sizeof(path));
        spec_error(c->errs, path,
                   "%s: multigateway buffer minTimeBetweenFailovers (%s) must not be negative",
                   subject, t1);
        return;
    }
    if ((!resolved && (!w || !m)) || window <= max_failover)
        return;
    go_duration(window, t1, sizeof(t1));
    go_duration(max_failover, t2, sizeof(t2));
    buffer_field_path(c, at, "window", fallback, path, sizeof(path));
    if (resolved && (!w || !m))
        spec_error(c->errs, path,
                   "%s: multigateway buffer window (%s) must be <= maxFailoverDuration (%s); unset "
                   "fields use the multigateway defaults (window 10s, maxFailoverDuration 20s)",
                   subject, t1, t2);
    else
        spec_error(c->errs, path,
                   "%s: multigateway buffer window (%s) must be <= maxFailoverDuration (%s)",
                   subject, t1, t2);
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

/* The reference's ValidatePoolName: map keys are not schema-validated. */
static void check_pool_names(const json_t *pools, const char *path, const struct checker *c)
{
    const char *key;
    json_t *v;
    char p[512];

    json_object_foreach ((json_t *)pools, key, v) {
        (void)snprintf(p, sizeof(p), "%s.pools[%s]", path, key);
        size_t n = strlen(key);
        if (n == 0 || n > 25)
            spec_error(c->errs, p, "pool name '%s' must be between 1 and 25 characters", key);
        else if (!is_dns_label(key))
            spec_error(c->errs, p,
                       "pool name '%s' is invalid: must consist of lowercase alphanumeric "
                       "characters or '-', and must start and end with an alphanumeric character",
                       key);
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

/* Where a shard writes pool `pool` field `rest` itself (inline spec, then overrides), else
 * the shard's path. */
static void shard_written_path(const struct checker *c, const char *shard_path, const char *rest,
                               char *out, size_t size)
{
    static const char *const layers[] = {"spec", "overrides", NULL};
    (void)snprintf(out, size, "%s", shard_path);
    for (const char *const *l = layers; *l; l++) {
        char candidate[600];
        (void)snprintf(candidate, sizeof(candidate), "%s.%s.%s", shard_path, *l, rest);
        if (written_at(c->written, candidate)) {
            (void)snprintf(out, size, "%s", candidate);
            return;
        }
    }
}

static void check_pool_resources(const struct checker *c, const json_t *pool, const char *pool_name,
                                 const char *shard_name, const char *shard_path)
{
    static const char *const containers[] = {"postgres", "multipooler", NULL};
    for (const char *const *ct = containers; *ct; ct++) {
        char comp[160], wa[600], wb[600];
        (void)snprintf(comp, sizeof(comp), "shard '%s' pool '%s' %s", shard_name, pool_name, *ct);
        (void)snprintf(wa, sizeof(wa), "%s.spec.pools[%s].%s.resources", shard_path, pool_name,
                       *ct);
        (void)snprintf(wb, sizeof(wb), "%s.overrides.pools[%s].%s.resources", shard_path, pool_name,
                       *ct);
        const char *const at[] = {wa, wb, NULL};
        check_resources(c, json_object_get(json_object_get(pool, *ct), "resources"), comp,
                        shard_path, at);
    }
}

/* The reference's validatePoolRuntimeIdentity: both containers use PGDATA. */
static void check_run_as_user(const struct checker *c, const json_t *pool, const char *pool_name,
                              const char *shard_name, const char *shard_path)
{
    const json_t *pg = json_object_get(json_object_get(pool, "postgres"), "runAsUser");
    const json_t *mp = json_object_get(json_object_get(pool, "multipooler"), "runAsUser");
    char rest[300], path[600];
    if (!json_is_integer(mp))
        return;
    (void)snprintf(rest, sizeof(rest), "pools[%s].multipooler.runAsUser", pool_name);
    shard_written_path(c, shard_path, rest, path, sizeof(path));
    if (!json_is_integer(pg))
        spec_error(c->errs, path,
                   "shard '%s' pool '%s': multipooler runAsUser %" JSON_INTEGER_FORMAT
                   " requires matching postgres runAsUser because both access PGDATA",
                   shard_name, pool_name, json_integer_value(mp));
    else if (json_integer_value(pg) != json_integer_value(mp))
        spec_error(c->errs, path,
                   "shard '%s' pool '%s': postgres runAsUser %" JSON_INTEGER_FORMAT
                   " and multipooler runAsUser %" JSON_INTEGER_FORMAT
                   " must match because both access PGDATA",
                   shard_name, pool_name, json_integer_value(pg), json_integer_value(mp));
}

/* Cells of the shard's multiorch and pools: every one a cell of the cluster, none empty. */
static void check_shard_cells(const struct checker *c, const json_t *s, const json_t *cells,
                              const char *shard_name, const char *shard_path)
{
    size_t i;
    json_t *cell;
    const char *k;
    json_t *pool;
    char rest[300], path[600];

    json_object_foreach (json_object_get(s, "pools"), k, pool)
        if (json_array_size(json_object_get(pool, "cells")) == 0)
            spec_error(c->errs, shard_path, "pool '%s' in shard '%s' matches NO cells", k,
                       shard_name);
    json_array_foreach (json_object_get(json_object_get(s, "multiorch"), "cells"), i, cell) {
        if (!json_is_string(cell) || cell_exists(cells, json_string_value(cell)))
            continue;
        (void)snprintf(rest, sizeof(rest), "multiorch.cells[%zu]", i);
        shard_written_path(c, shard_path, rest, path, sizeof(path));
        spec_error(c->errs, path, "shard '%s' is assigned to non-existent cell '%s'", shard_name,
                   json_string_value(cell));
    }
    json_object_foreach (json_object_get(s, "pools"), k, pool)
        json_array_foreach (json_object_get(pool, "cells"), i, cell) {
            if (!json_is_string(cell) || cell_exists(cells, json_string_value(cell)))
                continue;
            (void)snprintf(rest, sizeof(rest), "pools[%s].cells[%zu]", k, i);
            shard_written_path(c, shard_path, rest, path, sizeof(path));
            spec_error(c->errs, path,
                       "pool '%s' in shard '%s' is assigned to non-existent cell '%s'", k,
                       shard_name, json_string_value(cell));
        }
}

/* The reference's durability warnings, per pool. */
static void check_durability(const struct checker *c, const char *policy, const char *path,
                             const json_t *s, const char *shard_name)
{
    const char *k;
    json_t *pool;
    json_object_foreach (json_object_get(s, "pools"), k, pool) {
        json_int_t replicas = json_integer_value(json_object_get(pool, "replicasPerCell"));
        json_int_t ncells = (json_int_t)json_array_size(json_object_get(pool, "cells"));
        if (replicas < 0 || replicas > 1000 || ncells > 1000)
            continue; /* out of the schema's range: reported elsewhere */
        if (strcmp(policy, "MULTI_CELL_AT_LEAST_2") == 0) {
            if (ncells < 2)
                spec_warning(c->errs, path,
                             "pool '%s' in shard '%s' spans %" JSON_INTEGER_FORMAT
                             " cell(s); durability policy \"%s\" requires at least 2 distinct "
                             "cells.",
                             k, shard_name, ncells, policy);
        } else if (replicas * ncells < 2) {
            spec_warning(c->errs, path,
                         "pool '%s' in shard '%s' has replicasPerCell=%" JSON_INTEGER_FORMAT
                         " across %" JSON_INTEGER_FORMAT " cell(s) (%" JSON_INTEGER_FORMAT
                         " total); durability policy \"%s\" requires at least 2 total poolers.",
                         k, shard_name, replicas, ncells, replicas * ncells, policy);
        }
    }
}

static int known_policy(const char *policy)
{
    return strcmp(policy, "AT_LEAST_2") == 0 || strcmp(policy, "MULTI_CELL_AT_LEAST_2") == 0;
}

static void check_shard(const json_t *shard_in, const json_t *shard, const json_t *cells,
                        const char *path, const struct checker *c)
{
    const json_t *s = json_object_get(shard, "spec");
    const char *name = str(shard, "name") ? str(shard, "name") : "";
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

    check_shard_cells(c, s, cells, name, path);
    char orch_comp[160], orch_spec[400], orch_over[400];
    (void)snprintf(orch_comp, sizeof(orch_comp), "shard '%s' multiorch", name);
    (void)snprintf(orch_spec, sizeof(orch_spec), "%s.spec.multiorch.resources", path);
    (void)snprintf(orch_over, sizeof(orch_over), "%s.overrides.multiorch.resources", path);
    const char *const orch_at[] = {orch_spec, orch_over, NULL};
    check_resources(c, json_object_get(json_object_get(s, "multiorch"), "resources"), orch_comp,
                    path, orch_at);
    json_object_foreach (json_object_get(s, "pools"), k, pool) {
        check_run_as_user(c, pool, k, name, path);
        check_pool_resources(c, pool, k, name, path);
    }
}

/* Whether a shard draws on a ShardTemplate: by its own reference, the cluster's
 * templateDefaults, or the namespace default (a "ShardTemplate" entry in `used`). */
static int shard_template_involved(const json_t *cluster, const json_t *shard, const json_t *used)
{
    const json_t *td = json_object_get(json_object_get(cluster, "spec"), "templateDefaults");
    size_t i;
    json_t *u;
    if (is_set_string(json_object_get(shard, "shardTemplate")) ||
        is_set_string(json_object_get(td, "shardTemplate")))
        return 1;
    json_array_foreach ((json_t *)used, i, u)
        if (str(u, "kind") && strcmp(str(u, "kind"), "ShardTemplate") == 0)
            return 1;
    return 0;
}

/*
 * The pool sizes a version of the cluster holds as stored, as the reference webhook reads them
 * (collectPoolStorageSizes): the pools the shard writes itself (inline spec, else overrides);
 * and when no template is involved, the defaulting webhook has written the resolved pools out,
 * so those. Returns an object "db/tg/shard/pool" -> {"size", "path"} (path: where the size is
 * written in this version, or the shard's path).
 */
static json_t *stored_sizes(const json_t *cluster, const json_t *resolved, const json_t *used)
{
    json_t *out = json_object();
    const json_t *rspec = json_object_get(resolved, "spec");
    size_t d, t, s;
    json_t *db, *tg, *shard;
    json_array_foreach (json_object_get(json_object_get(cluster, "spec"), "databases"), d, db)
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg)
            json_array_foreach (json_object_get(tg, "shards"), s, shard) {
                const char *where = "spec";
                const json_t *pools = json_object_get(json_object_get(shard, "spec"), "pools");
                if (!json_is_object(json_object_get(shard, "spec"))) {
                    where = "overrides";
                    pools = json_object_get(json_object_get(shard, "overrides"), "pools");
                }
                const json_t *rshard = json_array_get(
                    json_object_get(
                        json_array_get(
                            json_object_get(json_array_get(json_object_get(rspec, "databases"), d),
                                            "tablegroups"),
                            t),
                        "shards"),
                    s);
                int materialised = resolved && !shard_template_involved(cluster, shard, used);
                const json_t *all = materialised
                                        ? json_object_get(json_object_get(rshard, "spec"), "pools")
                                        : pools;
                const char *k;
                json_t *pool;
                json_object_foreach ((json_t *)all, k, pool) {
                    const json_t *size = json_object_get(json_object_get(pool, "storage"), "size");
                    char key[400], path[512];
                    if (!size)
                        continue;
                    (void)snprintf(key, sizeof(key), "%s/%s/%s/%s", str(db, "name"),
                                   str(tg, "name"), str(shard, "name"), k);
                    if (json_object_get(json_object_get(json_object_get(pools, k), "storage"),
                                        "size"))
                        (void)snprintf(path, sizeof(path),
                                       "spec.databases[%zu].tablegroups[%zu].shards[%zu].%s.pools[%"
                                       "s].storage.size",
                                       d, t, s, where, k);
                    else
                        (void)snprintf(path, sizeof(path),
                                       "spec.databases[%zu].tablegroups[%zu].shards[%zu]", d, t, s);
                    if (out)
                        json_object_set_new(out, key,
                                            json_pack("{s:O, s:s}", "size", size, "path", path));
                }
            }
    return out;
}

/* Update-only: a pool's storage.size may not shrink (compared as the reference stores them). */
static void check_storage_shrink(const struct admission_input *in, const struct checker *c)
{
    json_t *now = stored_sizes(in->cluster, in->resolved, in->used);
    json_t *was = stored_sizes(in->previous, in->previous_resolved, in->previous_used);
    const char *key;
    json_t *n;
    if (!now || !was)
        c->errs->oom = 1;
    json_object_foreach (now, key, n) {
        const json_t *o = json_object_get(was, key);
        const json_t *nv = json_object_get(n, "size"), *ov = json_object_get(o, "size");
        long double nq, oq;
        if (!ov || quantity_parse(nv, &nq) || quantity_parse(ov, &oq) ||
            quantity_compare(nq, oq) >= 0)
            continue;
        char nt[64], ot[64];
        quantity_text(nv, nt, sizeof(nt));
        quantity_text(ov, ot, sizeof(ot));
        spec_error(c->errs, str(n, "path"),
                   "storage.size cannot be decreased (%s: %s → %s); PVC shrink is not supported "
                   "by Kubernetes",
                   key, ot, nt);
    }
    json_decref(now);
    json_decref(was);
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
        const char *policy = str(db, "durabilityPolicy");
        char db_path[64];
        (void)snprintf(db_path, sizeof(db_path), "spec.databases[%zu]", d);
        if (policy && !known_policy(policy)) {
            /* mgo refuses at admission what the topology registration would refuse later. */
            (void)snprintf(path, sizeof(path), "%s.durabilityPolicy", db_path);
            spec_error(c->errs,
                       is_set_string(json_object_get(db_in, "durabilityPolicy"))
                           ? path
                           : "spec.durabilityPolicy",
                       "Unsupported value: \"%s\": supported values: \"AT_LEAST_2\", "
                       "\"MULTI_CELL_AT_LEAST_2\"",
                       policy);
            policy = NULL;
        }
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg) {
            const json_t *tg_in = json_array_get(json_object_get(db_in, "tablegroups"), t);
            json_array_foreach (json_object_get(tg, "shards"), s, shard) {
                const json_t *shard_in = json_array_get(json_object_get(tg_in, "shards"), s);
                (void)snprintf(path, sizeof(path),
                               "spec.databases[%zu].tablegroups[%zu].shards[%zu]", d, t, s);
                check_shard(shard_in, shard, cells, path, c);
                if (policy)
                    check_durability(c, policy, db_path, json_object_get(shard, "spec"),
                                     str(shard, "name") ? str(shard, "name") : "");
            }
        }
    }
}

static void check_core(const json_t *resolved, const struct checker *c)
{
    const json_t *spec = json_object_get(resolved, "spec");
    const json_t *spec_in = json_object_get(c->written, "spec");

    /* Top-level components are checked as written (the reference checks the inline specs). */
    static const char *const etcd_at[] = {"spec.globalTopoServer.etcd.resources", NULL};
    static const char *const admin_at[] = {"spec.multiadmin.spec.resources", NULL};
    static const char *const web_at[] = {"spec.multiadminWeb.spec.resources", NULL};
    check_resources(c, written_at(c->written, etcd_at[0]), "etcd", "spec.globalTopoServer",
                    etcd_at);
    check_resources(c, written_at(c->written, admin_at[0]), "multiadmin", "spec.multiadmin",
                    admin_at);
    check_resources(c, written_at(c->written, web_at[0]), "multiadmin-web", "spec.multiadminWeb",
                    web_at);
    if (written_etcd_replicas(c->written) == 1)
        spec_warning(c->errs, "spec.globalTopoServer",
                     "etcd has 1 replica \xE2\x80\x94 no fault tolerance. 3 replicas is "
                     "recommended for production (tolerates 1 failure). Note: topology server "
                     "replicas cannot be changed after cluster creation");

    size_t i;
    json_t *cell;
    json_array_foreach (json_object_get(spec, "cells"), i, cell) {
        const json_t *gw = json_object_get(json_object_get(cell, "spec"), "multigateway");
        const char *name = str(cell, "name") ? str(cell, "name") : "";
        char path[64], subject[96], comp[128], bs[128], bo[128], rs[128], ro[128];
        (void)snprintf(path, sizeof(path), "spec.cells[%zu]", i);
        (void)snprintf(subject, sizeof(subject), "cell '%s'", name);
        (void)snprintf(bs, sizeof(bs), "%s.spec.multigateway.buffer", path);
        (void)snprintf(bo, sizeof(bo), "%s.overrides.multigateway.buffer", path);
        const char *const buffer_at[] = {bs, bo, NULL};
        check_buffer(c, json_object_get(gw, "buffer"), subject, buffer_at, path, 1);
        (void)snprintf(comp, sizeof(comp), "cell '%s' multigateway (resolved)", name);
        (void)snprintf(rs, sizeof(rs), "%s.spec.multigateway.resources", path);
        (void)snprintf(ro, sizeof(ro), "%s.overrides.multigateway.resources", path);
        const char *const res_at[] = {rs, ro, NULL};
        check_resources(c, json_object_get(gw, "resources"), comp, path, res_at);
    }
    (void)spec_in;
    static const char *const exposures[] = {"externalGateway", "externalAdminWeb", NULL};
    for (const char *const *e = exposures; *e; e++) {
        const json_t *x = json_object_get(spec, *e);
        char path[64];
        if (json_is_true(json_object_get(x, "enabled")) &&
            json_array_size(json_object_get(x, "externalIPs")) == 0) {
            (void)snprintf(path, sizeof(path), "spec.%s", *e);
            spec_warning(c->errs, path, "external exposure is enabled without externalIPs");
        }
    }
}

/* ---- Kubernetes syntax of what ends up in object metadata (mgo additions: the API server
 * would refuse the rendered objects, so the manifest is refused here, with the field) ---- */

static int label_name_part(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && !((i > 0 && i < n - 1) && (ch == '-' || ch == '_' || ch == '.')))
            return 0;
    }
    return 1;
}

/* A label value: empty, or a name part. */
static int label_value(const char *s)
{
    return !*s || label_name_part(s, strlen(s));
}

/* A label or annotation key: [DNS-subdomain prefix "/"] name part. */
static int qualified_name(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return label_name_part(s, strlen(s));
    size_t plen = (size_t)(slash - s);
    if (plen == 0 || plen > 253)
        return 0;
    for (size_t i = 0; i < plen; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ((ch == '-' || ch == '.') && i > 0 && i < plen - 1);
        if (!ok)
            return 0;
    }
    return label_name_part(slash + 1, strlen(slash + 1));
}

static const char key_rule[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (with an optional DNS subdomain prefix and '/')";
static const char value_rule[] =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (at most 63)";

static void check_map_syntax(const json_t *map, const char *path, int values_are_labels,
                             const struct checker *c)
{
    const char *k;
    const json_t *v;
    char p[1024];
    json_object_foreach ((json_t *)map, k, v) {
        (void)snprintf(p, sizeof(p), "%s[%s]", path, k);
        if (!qualified_name(k))
            spec_error(c->errs, p, "Invalid value: \"%s\": %s", k, key_rule);
        else if (values_are_labels && json_is_string(v) && !label_value(json_string_value(v)))
            spec_error(c->errs, p, "Invalid value: \"%s\": %s", json_string_value(v), value_rule);
    }
}

/* Every podLabels, podAnnotations and external*.annotations map under `v`. */
static void check_metadata_maps(const json_t *v, const char *path, const struct checker *c)
{
    char p[1024];
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach ((json_t *)v, i, e) {
            (void)snprintf(p, sizeof(p), "%s[%zu]", path, i);
            check_metadata_maps(e, p, c);
        }
        return;
    }
    const char *k;
    const json_t *e;
    json_object_foreach ((json_t *)v, k, e) {
        (void)snprintf(p, sizeof(p), "%s.%s", path, k);
        if (json_is_object(e) && strcmp(k, "podLabels") == 0)
            check_map_syntax(e, p, 1, c);
        else if (json_is_object(e) && strcmp(k, "podAnnotations") == 0)
            check_map_syntax(e, p, 0, c);
        else if (json_is_object(e) && strcmp(k, "annotations") == 0 &&
                 (strstr(path, "externalGateway") || strstr(path, "externalAdminWeb")))
            check_map_syntax(e, p, 0, c);
        else if (json_is_object(e) || json_is_array(e))
            check_metadata_maps(e, p, c);
    }
}

/* The cluster's name starts Service names (<name>-multigateway, ...): a DNS-1035 label. Cell
 * zones and regions become label values and node selectors. */
static void check_kubernetes_syntax(const json_t *cluster, const struct checker *c)
{
    const char *name = str(json_object_get(cluster, "metadata"), "name");
    int ok = name && name[0] >= 'a' && name[0] <= 'z';
    for (const char *ch = name; ok && *ch; ch++)
        ok = (*ch >= 'a' && *ch <= 'z') || (*ch >= '0' && *ch <= '9') ||
             (*ch == '-' && ch[1] != '\0');
    if (name && !ok)
        spec_error(c->errs, "metadata.name",
                   "Invalid value: \"%s\": a MultigresCluster name must be a DNS-1035 label "
                   "(lower-case letters, digits and '-', starting with a letter and ending with a "
                   "letter or digit): it starts the names of the cluster's Services",
                   name);
    size_t i;
    const json_t *cell;
    char p[128];
    json_array_foreach (json_object_get(json_object_get(cluster, "spec"), "cells"), i, cell) {
        static const char *const fields[] = {"zoneId", "region"};
        for (size_t f = 0; f < 2; f++) {
            const char *v = str(cell, fields[f]);
            (void)snprintf(p, sizeof(p), "spec.cells[%zu].%s", i, fields[f]);
            if (v && !label_value(v))
                spec_error(c->errs, p, "Invalid value: \"%s\": %s", v, value_rule);
        }
    }
    check_metadata_maps(json_object_get(cluster, "spec"), "spec", c);
}

void admission_check_cluster(const struct admission_input *in, struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = in->cluster};
    check_kubernetes_syntax(in->cluster, &ck);
    check_core(in->resolved, &ck);
    check_databases(in->cluster, in->resolved, &ck);
    if (in->previous) {
        check_storage_shrink(in, &ck);
        check_etcd_replicas(in->previous, &ck);
    }
}

void admission_check_shard_template(const json_t *tmpl, struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = tmpl};
    const json_t *spec = json_object_get(tmpl, "spec");
    check_metadata_maps(spec, "spec", &ck);
    check_pool_names(json_object_get(spec, "pools"), "spec", &ck);
    check_postgres_config(json_object_get(spec, "postgresConfig"), "spec", &ck);
}

void admission_check_cell_template(const json_t *tmpl, struct spec_errors *errs)
{
    const struct checker ck = {.errs = errs, .written = tmpl};
    const json_t *gw = json_object_get(json_object_get(tmpl, "spec"), "multigateway");
    check_metadata_maps(json_object_get(tmpl, "spec"), "spec", &ck);
    const char *name = str(json_object_get(tmpl, "metadata"), "name");
    char subject[128], comp[160];
    (void)snprintf(subject, sizeof(subject), "CellTemplate '%s'", name ? name : "");
    (void)snprintf(comp, sizeof(comp), "%s multigateway", subject);
    static const char *const buffer_at[] = {"spec.multigateway.buffer", NULL};
    static const char *const res_at[] = {"spec.multigateway.resources", NULL};
    check_buffer(&ck, json_object_get(gw, "buffer"), subject, buffer_at, "spec.multigateway", 0);
    check_resources(&ck, json_object_get(gw, "resources"), comp, "spec.multigateway", res_at);
}
