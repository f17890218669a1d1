/* Multigres topology records in etcd: codecs, desired records, registration and poolers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clustermetadata.pb-c.h"
#include "core/core.h"
#include "spec/names.h"
#include "topo/pbjson.h"
#include "topo/topo.h"

/* Lost compare-and-swap races tolerated per record before giving up with -EBUSY. */
#define CAS_RETRIES 8

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;
    if (!err || !size)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, size, fmt, ap);
    va_end(ap);
    core_utf8_sanitize(err);
}

/* ---- deadlines ------------------------------------------------------------------------------ */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Longer than any sensible call; keeps the arithmetic far from overflow. */
#define MAX_TIMEOUT_MS (24LL * 3600 * 1000)

int64_t topo_deadline_after(int64_t timeout_ms)
{
    if (timeout_ms > MAX_TIMEOUT_MS)
        timeout_ms = MAX_TIMEOUT_MS;
    return monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 0);
}

int64_t topo_remaining_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - monotonic_ms();
    return left > 0 ? left : 0;
}

/* The time left for the next etcd call, or -EAGAIN (with a message) when the deadline passed:
 * running out of time is a retry-class failure, never invalid input. */
static int64_t budget(int64_t deadline, const char *what, char *err, size_t err_size)
{
    int64_t left = topo_remaining_ms(deadline);
    if (left <= 0) {
        set_err(err, err_size, "deadline passed before %s", what);
        return -EAGAIN;
    }
    return left;
}

/* ---- kinds ---------------------------------------------------------------------------------- */

static const struct {
    const char *leaf;
    const ProtobufCMessageDescriptor *desc;
} kinds[] = {
    [TOPO_CELL] = {"Cell", &clustermetadata__cell__descriptor},
    [TOPO_DATABASE] = {"Database", &clustermetadata__database__descriptor},
    [TOPO_POOLER] = {"Pooler", &clustermetadata__multipooler__descriptor},
    [TOPO_GATEWAY] = {"Gateway", &clustermetadata__multigateway__descriptor},
    [TOPO_ORCH] = {"Orch", &clustermetadata__multiorch__descriptor},
    [TOPO_CLAIM] = {"ShardInitClaim", &clustermetadata__shard_init_claim__descriptor},
};

int topo_decode(enum topo_kind kind, const void *data, size_t len, json_t **ret)
{
    return pbjson_decode(kinds[kind].desc, data, len, ret);
}

int topo_encode(enum topo_kind kind, const json_t *record, uint8_t **ret, size_t *ret_len,
                char *err, size_t err_size)
{
    return pbjson_encode(kinds[kind].desc, record, NULL, 0, ret, ret_len, err, err_size);
}

int topo_kind_of_key(const char *key)
{
    const char *leaf = strrchr(key, '/');
    leaf = leaf ? leaf + 1 : key;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (strcmp(leaf, kinds[k].leaf) == 0)
            return (int)k;
    return -1;
}

/* Append `part` to `buf` (length *len) as path.Join does: empty and "." segments vanish, ".."
 * removes the previous segment, slashes are single. 0 or -EINVAL when it does not fit. */
static int join_clean(char *buf, size_t size, size_t *len, const char *part)
{
    while (*part) {
        const char *slash = strchr(part, '/');
        size_t n = slash ? (size_t)(slash - part) : strlen(part);
        if (n == 2 && part[0] == '.' && part[1] == '.') {
            size_t k = *len;
            while (k > 0 && buf[k - 1] != '/')
                k--;
            *len = k > 0 ? k - 1 : 0;
        } else if (n > 0 && !(n == 1 && part[0] == '.')) {
            int lead = *len > 0 || buf[0] == '/';
            if (*len + (size_t)lead + n + 1 > size)
                return -EINVAL;
            if (lead)
                buf[(*len)++] = '/';
            memcpy(buf + *len, part, n);
            *len += n;
        }
        part += n + (slash ? 1 : 0);
    }
    buf[*len] = '\0';
    return 0;
}

/*
 * path.Join(root, a, b, c) (NULL parts end the list), Multigres' key rule: a root "/x//y/" and a
 * relative one work as Go's path package treats them. trailing_slash adds one "/" at the end
 * (the form of a prefix for listing a directory).
 */
static int join_key_parts(char *buf, size_t size, const char *root, const char *a, const char *b,
                          const char *c, int trailing_slash)
{
    size_t len = 0;
    if (size < 2)
        return -EINVAL;
    buf[0] = root[0] == '/' ? '/' : '\0';
    len = 0;
    buf[1] = '\0';
    const char *parts[] = {root, a, b, c};
    for (size_t i = 0; i < 4 && parts[i]; i++)
        if (join_clean(buf, size, &len, parts[i]))
            return -EINVAL;
    if (len == 0 && buf[0] == '/')
        len = 1; /* the root itself */
    buf[len] = '\0';
    if (trailing_slash && (len == 0 || buf[len - 1] != '/')) {
        if (len + 2 > size)
            return -EINVAL;
        buf[len++] = '/';
        buf[len] = '\0';
    }
    return 0;
}

static int join_key(char *buf, size_t size, const char *root, const char *a, const char *b,
                    const char *c)
{
    return join_key_parts(buf, size, root, a, b, c, 0);
}

/* "<root>/<a>/" for listing what is under a directory. */
static int join_dir(char *buf, size_t size, const char *root, const char *a)
{
    return join_key_parts(buf, size, root, a, NULL, NULL, 1);
}

/* ---- desired global records ----------------------------------------------------------------- */

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The global topology: a managed etcd's service, or the first external endpoint. */
static json_t *global_topo(const json_t *spec, const char *cluster, const char *ns)
{
    const json_t *topo = json_object_get(spec, "globalTopoServer");
    const json_t *ext = json_object_get(topo, "external");
    char addr[512];
    if (json_is_object(ext)) {
        const char *first = json_string_value(json_array_get(json_object_get(ext, "endpoints"), 0));
        return json_pack("{s:[s], s:s}", "addresses", first ? first : "", "root",
                         str(ext, "rootPath") ? str(ext, "rootPath") : "/multigres/global");
    }
    (void)snprintf(addr, sizeof(addr), "%s-global-topo.%s.svc:2379", cluster, ns);
    const json_t *etcd = json_object_get(topo, "etcd");
    return json_pack("{s:[s], s:s}", "addresses", addr, "root",
                     str(etcd, "rootPath") ? str(etcd, "rootPath") : "/multigres/global");
}

static json_t *desired_cell(const json_t *cell, const json_t *global, const char *cluster,
                            const char *ns)
{
    const char *name = str(cell, "name");
    const json_t *local = json_object_get(json_object_get(cell, "spec"), "localTopoServer");
    const json_t *ext = json_object_get(local, "external");
    const json_t *etcd = json_object_get(local, "etcd");
    if (json_is_object(ext))
        return json_pack("{s:s, s:O, s:s}", "name", name, "server_addresses",
                         json_object_get(ext, "endpoints"), "root", str(ext, "rootPath"));
    if (json_is_object(etcd)) {
        /* Cell CR name = Join(Default, cluster, cell); the topo = Join(StatefulSet, CR, "topo"). */
        char cell_cr[300], topo_name[300], addr[400];
        const char *cr_parts[] = {cluster, name};
        names_join(NAMES_DEFAULT, cr_parts, 2, cell_cr, sizeof(cell_cr));
        const char *topo_parts[] = {cell_cr, "topo"};
        names_join(NAMES_STATEFULSET, topo_parts, 2, topo_name, sizeof(topo_name));
        (void)snprintf(addr, sizeof(addr), "%s.%s.svc:2379", topo_name, ns);
        return json_pack("{s:s, s:[s], s:s}", "name", name, "server_addresses", addr, "root",
                         str(etcd, "rootPath"));
    }
    return json_pack("{s:s, s:O, s:O}", "name", name, "server_addresses",
                     json_object_get(global, "addresses"), "root", json_object_get(global, "root"));
}

static json_t *backup_location(const json_t *backup)
{
    const char *type = str(backup, "type");
    json_t *loc;
    if (type && strcmp(type, "s3") == 0) {
        const json_t *s3 = json_object_get(backup, "s3");
        json_t *s = json_object();
        static const char *const fields[][2] = {{"bucket", "bucket"},
                                                {"region", "region"},
                                                {"endpoint", "endpoint"},
                                                {"keyPrefix", "key_prefix"}};
        for (size_t i = 0; s && i < sizeof(fields) / sizeof(fields[0]); i++)
            if (str(s3, fields[i][0]) && *str(s3, fields[i][0]))
                json_object_set_new(s, fields[i][1], json_string(str(s3, fields[i][0])));
        if (s && json_is_true(json_object_get(s3, "useEnvCredentials")))
            json_object_set_new(s, "use_env_credentials", json_true());
        loc = s ? json_pack("{s:o}", "s3", s) : NULL;
    } else {
        const char *path = str(json_object_get(backup, "filesystem"), "path");
        loc = json_pack("{s:{s:s}}", "filesystem", "path", path ? path : "/backups");
    }
    if (loc && json_is_object(json_object_get(backup, "encryption")) &&
        str(json_object_get(backup, "encryption"), "secretName"))
        json_object_set_new(loc, "require_initial_repo_encryption", json_true());
    return loc;
}

int topo_desired(const json_t *resolved, const char *ns, json_t **ret_cells, json_t **ret_databases,
                 json_t **ret_global, char *err, size_t err_size)
{
    const json_t *spec = json_object_get(resolved, "spec");
    const char *cluster = str(json_object_get(resolved, "metadata"), "name");
    json_t *cells = json_object(), *dbs = json_object();
    json_t *global = global_topo(spec, cluster ? cluster : "", ns);
    json_t *names = json_array();
    size_t i;
    json_t *cell, *db;
    int rc = 0;

    if (!cells || !dbs || !global || !names) {
        rc = -ENOMEM;
        goto out;
    }
    json_array_foreach (json_object_get(spec, "cells"), i, cell) {
        json_t *rec = desired_cell(cell, global, cluster ? cluster : "", ns);
        if (!rec || json_object_set_new(cells, str(cell, "name"), rec) ||
            json_array_append_new(names, json_string(str(cell, "name")))) {
            rc = -ENOMEM;
            goto out;
        }
    }
    json_array_foreach (json_object_get(spec, "databases"), i, db) {
        const char *policy = str(db, "durabilityPolicy");
        const char *quorum = NULL;
        if (policy && strcmp(policy, "AT_LEAST_2") == 0)
            quorum = "QUORUM_TYPE_AT_LEAST_N";
        else if (policy && strcmp(policy, "MULTI_CELL_AT_LEAST_2") == 0)
            quorum = "QUORUM_TYPE_MULTI_CELL_AT_LEAST_N";
        if (!quorum) {
            set_err(err, err_size, "database %s: unsupported durability policy \"%s\"",
                    str(db, "name"), policy ? policy : "");
            rc = -EINVAL;
            goto out;
        }
        json_t *rec = json_pack("{s:s, s:o, s:O, s:{s:s, s:s, s:i}}", "name", str(db, "name"),
                                "backup_location", backup_location(json_object_get(db, "backup")),
                                "cells", names, "bootstrap_durability_policy", "policy_name",
                                policy, "quorum_type", quorum, "required_count", 2);
        if (!rec || json_object_set_new(dbs, str(db, "name"), rec)) {
            rc = -ENOMEM;
            goto out;
        }
    }
    *ret_cells = cells;
    *ret_databases = dbs;
    *ret_global = global;
    cells = dbs = global = NULL;
out:
    json_decref(cells);
    json_decref(dbs);
    json_decref(global);
    json_decref(names);
    return rc;
}

/* ---- etcd errors ---------------------------------------------------------------------------- */

static int etcd_failed(struct etcd_client *etcd, int rc, char *err, size_t err_size)
{
    set_err(err, err_size, "%s", etcd_last_error(etcd));
    return rc;
}

/* ---- registration --------------------------------------------------------------------------- */

/* Put `bytes` (consumed) at `key` if its mod revision is still `mod` (0: absent), within the
 * deadline. 0 with *ret_swapped 1 when it was written, 0 when another writer got there first. */
static int cas_put(struct etcd_client *etcd, const char *key, uint8_t *bytes, size_t len,
                   int64_t mod, int64_t deadline, int *ret_swapped, char *err, size_t err_size)
{
    int64_t left = budget(deadline, key, err, err_size);
    int rc = (int)left;
    if (left >= 0)
        rc = etcd_put_if(etcd, key, strlen(key), bytes, len, mod, 0, left, ret_swapped, NULL, NULL);
    core_free(bytes);
    if (left < 0)
        return (int)left;
    return rc ? etcd_failed(etcd, rc, err, err_size) : 0;
}

/* The error of a compare-and-swap loop that kept losing. */
static int cas_lost(const char *key, char *err, size_t err_size)
{
    set_err(err, err_size, "%s: lost %d compare-and-swap races in a row; try again", key,
            CAS_RETRIES + 1);
    return -EBUSY;
}

/* The canonical JSON of a record: encoded and decoded again, so zero values and spellings
 * compare as stored. */
static int canonical(enum topo_kind kind, const json_t *record, json_t **ret, char *err,
                     size_t err_size)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = pbjson_encode(kinds[kind].desc, record, NULL, 0, &bytes, &len, err, err_size);
    if (rc)
        return rc;
    rc = pbjson_decode(kinds[kind].desc, bytes, len, ret);
    core_free(bytes);
    return rc;
}

/*
 * Create or update one record. mgo owns the top-level fields it writes; the stored record's
 * other fields (known or not to mgo's schema) are kept, as the reference's Update*Fields do. A
 * record whose stored content already equals that is not written.
 */
static int register_one(struct etcd_client *etcd, const char *key, enum topo_kind kind,
                        const json_t *want, int64_t deadline, const char **ret_outcome, char *err,
                        size_t err_size)
{
    for (int attempt = 0; attempt <= CAS_RETRIES; attempt++) {
        struct etcd_kvs cur = {0};
        json_t *have = NULL, *next = NULL, *want_canon = NULL;
        uint8_t *bytes = NULL;
        size_t len = 0;
        int64_t mod = 0, left = budget(deadline, key, err, err_size);
        if (left < 0)
            return (int)left;
        int rc = etcd_get(etcd, key, strlen(key), left, &cur);
        if (rc)
            return etcd_failed(etcd, rc, err, err_size);
        if (cur.n > 0) {
            mod = cur.items[0].mod_revision;
            rc = topo_decode(kind, cur.items[0].value, cur.items[0].value_len, &have);
            if (rc == -EPROTO)
                set_err(err, err_size, "%s: the stored value is not a valid %s record", key,
                        kinds[kind].leaf);
        }
        if (!rc) {
            next = have ? json_deep_copy(have) : json_object();
            if (!next || json_object_update(next, (json_t *)want))
                rc = -ENOMEM;
        }
        if (!rc)
            rc = canonical(kind, next, &want_canon, err, err_size);
        if (!rc && have && json_equal(have, want_canon)) {
            *ret_outcome = "unchanged";
        } else if (!rc) {
            rc = pbjson_encode(kinds[kind].desc, next, cur.n ? cur.items[0].value : NULL,
                               cur.n ? cur.items[0].value_len : 0, &bytes, &len, err, err_size);
        }
        json_decref(have);
        json_decref(next);
        json_decref(want_canon);
        etcd_kvs_fini(&cur);
        if (rc || !bytes)
            return rc;
        int swapped = 0;
        rc = cas_put(etcd, key, bytes, len, mod, deadline, &swapped, err, err_size);
        if (rc)
            return rc;
        if (swapped) {
            *ret_outcome = mod ? "updated" : "created";
            return 0;
        }
        /* Another writer won the race: read again and reconsider. */
    }
    return cas_lost(key, err, err_size);
}

static const char *kind_dir(enum topo_kind kind)
{
    return kind == TOPO_CELL ? "cells" : "databases";
}

int topo_register(struct etcd_client *etcd, const char *root, enum topo_kind kind,
                  const json_t *records, int64_t deadline_ms, json_t **ret_report, char *err,
                  size_t err_size)
{
    json_t *report = json_array();
    const char *name;
    json_t *rec;
    if (!report)
        return -ENOMEM;
    json_object_foreach ((json_t *)records, name, rec) {
        char key[1024];
        const char *outcome = NULL;
        if (join_key(key, sizeof(key), root, kind_dir(kind), name, kinds[kind].leaf)) {
            json_decref(report);
            set_err(err, err_size, "%s: key too long", name);
            return -EINVAL;
        }
        int rc = register_one(etcd, key, kind, rec, deadline_ms, &outcome, err, err_size);
        if (rc == 0 &&
            json_array_append_new(report, json_pack("{s:s, s:s}", "key", key, "outcome", outcome)))
            rc = -ENOMEM;
        if (rc) {
            json_decref(report);
            return rc;
        }
    }
    *ret_report = report;
    return 0;
}

/* The first path component after `prefix` of each key (etcd ListDir). */
static int list_dir(struct etcd_client *etcd, const char *prefix, int64_t deadline,
                    json_t **ret_names, char *err, size_t err_size)
{
    struct etcd_kvs kvs = {0};
    int64_t left = budget(deadline, prefix, err, err_size);
    if (left < 0)
        return (int)left;
    int rc = etcd_get_prefix(etcd, prefix, strlen(prefix), 1, left, &kvs);
    if (rc)
        return etcd_failed(etcd, rc, err, err_size);
    json_t *names = json_object();
    size_t plen = strlen(prefix);
    for (size_t i = 0; names && i < kvs.n; i++) {
        /* etcd answers what was asked; a key outside the prefix is skipped, not trusted. */
        if (kvs.items[i].key_len < plen || memcmp(kvs.items[i].key, prefix, plen) != 0)
            continue;
        const char *rest = kvs.items[i].key + plen;
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        char name[512];
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, rest, n);
        name[n] = '\0';
        if (json_object_set_new(names, name, json_true())) {
            json_decref(names);
            names = NULL;
        }
    }
    etcd_kvs_fini(&kvs);
    if (!names)
        return -ENOMEM;
    *ret_names = names;
    return 0;
}

/* The cells that some stored Database record lists (Multigres' DeleteCell without force
 * refuses to delete those). */
static int cells_listed_by_databases(struct etcd_client *etcd, const char *root, int64_t deadline,
                                     json_t **ret, char *err, size_t err_size)
{
    char prefix[1024];
    struct etcd_kvs kvs = {0};
    if (join_dir(prefix, sizeof(prefix), root, "databases"))
        return -EINVAL;
    int64_t left = budget(deadline, prefix, err, err_size);
    if (left < 0)
        return (int)left;
    int rc = etcd_get_prefix(etcd, prefix, strlen(prefix), 0, left, &kvs);
    if (rc)
        return etcd_failed(etcd, rc, err, err_size);
    json_t *cells = json_object();
    for (size_t i = 0; cells && rc == 0 && i < kvs.n; i++) {
        json_t *db = NULL;
        size_t k;
        json_t *c;
        if (topo_kind_of_key(kvs.items[i].key) != TOPO_DATABASE)
            continue;
        if (topo_decode(TOPO_DATABASE, kvs.items[i].value, kvs.items[i].value_len, &db))
            continue; /* an unreadable record protects nothing; dump shows it */
        json_array_foreach (json_object_get(db, "cells"), k, c)
            if (json_is_string(c) &&
                json_object_set_new(cells, json_string_value(c),
                                    json_string(str(db, "name") ? str(db, "name") : "")))
                rc = -ENOMEM;
        json_decref(db);
    }
    etcd_kvs_fini(&kvs);
    if (!cells || rc) {
        json_decref(cells);
        return rc ? rc : -ENOMEM;
    }
    *ret = cells;
    return 0;
}

int topo_prune(struct etcd_client *etcd, const char *root, enum topo_kind kind, const json_t *keep,
               int64_t deadline_ms, json_t **ret_report, char *err, size_t err_size)
{
    char prefix[1024];
    json_t *names = NULL, *listed = NULL, *report = json_array();
    int rc = report ? 0 : -ENOMEM;
    if (!rc && join_dir(prefix, sizeof(prefix), root, kind_dir(kind)))
        rc = -EINVAL;
    if (!rc)
        rc = list_dir(etcd, prefix, deadline_ms, &names, err, err_size);
    if (!rc && kind == TOPO_CELL)
        rc = cells_listed_by_databases(etcd, root, deadline_ms, &listed, err, err_size);
    const char *name;
    json_t *v;
    json_object_foreach (names, name, v) {
        char key[1024];
        int64_t deleted = 0;
        if (rc || json_object_get(keep, name))
            continue;
        if (join_key(key, sizeof(key), root, kind_dir(kind), name, kinds[kind].leaf))
            continue;
        if (json_object_get(listed, name)) {
            /* Like Multigres' DeleteCell(force=false): a cell a database lists stays. */
            char why[300];
            (void)snprintf(why, sizeof(why), "listed by database '%s'", str(listed, name));
            if (json_array_append_new(report, json_pack("{s:s, s:s, s:s}", "key", key, "outcome",
                                                        "kept", "reason", why)))
                rc = -ENOMEM;
            continue;
        }
        int64_t left = budget(deadline_ms, key, err, err_size);
        if (left < 0) {
            rc = (int)left;
            break;
        }
        rc = etcd_delete(etcd, key, strlen(key), left, &deleted);
        if (rc) {
            rc = etcd_failed(etcd, rc, err, err_size);
            break;
        }
        if (deleted && json_array_append_new(
                           report, json_pack("{s:s, s:s}", "key", key, "outcome", "deleted")))
            rc = -ENOMEM;
    }
    json_decref(names);
    json_decref(listed);
    if (rc) {
        json_decref(report);
        return rc;
    }
    *ret_report = report;
    return 0;
}

/* ---- poolers -------------------------------------------------------------------------------- */

int topo_pooler_key(const char *cell_root, const char *cell, const char *name, char *buf,
                    size_t size)
{
    char dir[512];
    if (!*cell || !*name || strchr(cell, '/') || strchr(name, '/'))
        return -EINVAL; /* a name must stay one path segment */
    int n = snprintf(dir, sizeof(dir), "multipooler-%s-%s", cell, name);
    if (n < 0 || (size_t)n >= sizeof(dir))
        return -EINVAL;
    return join_key(buf, size, cell_root, "poolers", dir, "Pooler");
}

static const char *pooler_role(const json_t *p)
{
    const char *life = str(json_object_get(p, "lifecycle_status"), "status");
    const char *role = str(json_object_get(p, "routing_state"), "role");
    if (life && strcmp(life, "LIFECYCLE_QUARANTINED") == 0)
        return "QUARANTINED";
    if (role && strcmp(role, "ROUTING_ROLE_PRIMARY") == 0)
        return "PRIMARY";
    return "REPLICA";
}

static int list_poolers(struct etcd_client *etcd, const char *cell_root, const char *cell,
                        const char *database, const char *table_group, const char *shard,
                        int with_shutdown, int64_t deadline_ms, json_t **ret_poolers, char *err,
                        size_t err_size)
{
    char prefix[1024];
    struct etcd_kvs kvs = {0};
    if (join_dir(prefix, sizeof(prefix), cell_root, "poolers"))
        return -EINVAL;
    int64_t left = budget(deadline_ms, prefix, err, err_size);
    if (left < 0)
        return (int)left;
    int rc = etcd_get_prefix(etcd, prefix, strlen(prefix), 0, left, &kvs);
    if (rc)
        return etcd_failed(etcd, rc, err, err_size);
    json_t *out = json_array();
    for (size_t i = 0; out && i < kvs.n && rc == 0; i++) {
        json_t *p = NULL;
        if (topo_kind_of_key(kvs.items[i].key) != TOPO_POOLER)
            continue;
        rc = topo_decode(TOPO_POOLER, kvs.items[i].value, kvs.items[i].value_len, &p);
        if (rc == -EPROTO) {
            set_err(err, err_size, "%s: the stored value is not a valid Pooler record",
                    kvs.items[i].key);
            break;
        }
        if (rc)
            break;
        const json_t *id = json_object_get(p, "id");
        const json_t *sk = json_object_get(p, "shard_key");
        const char *life = str(json_object_get(p, "lifecycle_status"), "status");
        int match = str(id, "cell") && strcmp(str(id, "cell"), cell) == 0 && str(sk, "database") &&
                    strcmp(str(sk, "database"), database) == 0 && str(sk, "table_group") &&
                    strcmp(str(sk, "table_group"), table_group) == 0 && str(sk, "shard") &&
                    strcmp(str(sk, "shard"), shard) == 0 &&
                    (with_shutdown || !(life && strcmp(life, "LIFECYCLE_SHUTDOWN") == 0));
        if (match &&
            (json_object_set_new(p, "key", json_string(kvs.items[i].key)) ||
             json_object_set_new(p, "mod_revision", json_integer(kvs.items[i].mod_revision)) ||
             json_object_set_new(p, "role", json_string(pooler_role(p))) ||
             json_array_append(out, p)))
            rc = -ENOMEM;
        json_decref(p);
    }
    etcd_kvs_fini(&kvs);
    if (!out || rc) {
        json_decref(out);
        return rc ? rc : -ENOMEM;
    }
    *ret_poolers = out;
    return 0;
}

int topo_list_poolers(struct etcd_client *etcd, const char *cell_root, const char *cell,
                      const char *database, const char *table_group, const char *shard,
                      int64_t deadline_ms, json_t **ret_poolers, char *err, size_t err_size)
{
    return list_poolers(etcd, cell_root, cell, database, table_group, shard, 0, deadline_ms,
                        ret_poolers, err, err_size);
}

int topo_list_poolers_all(struct etcd_client *etcd, const char *cell_root, const char *cell,
                          const char *database, const char *table_group, const char *shard,
                          int64_t deadline_ms, json_t **ret_poolers, char *err, size_t err_size)
{
    return list_poolers(etcd, cell_root, cell, database, table_group, shard, 1, deadline_ms,
                        ret_poolers, err, err_size);
}

int topo_publish_pooler(struct etcd_client *etcd, const char *cell_root, const json_t *record,
                        int64_t deadline_ms, char *err, size_t err_size)
{
    const json_t *id = json_object_get(record, "id");
    char key[1024];
    if (!str(id, "cell") || !str(id, "name") ||
        topo_pooler_key(cell_root, str(id, "cell"), str(id, "name"), key, sizeof(key))) {
        set_err(err, err_size, "pooler record: id.cell and id.name are required");
        return -EINVAL;
    }
    const char *outcome;
    return register_one(etcd, key, TOPO_POOLER, record, deadline_ms, &outcome, err, err_size);
}

/* Set lifecycle_status = {LIFECYCLE_SHUTDOWN, reason, updated} on an unpacked record, in place:
 * every other field, nested unknown fields and enum values mgo does not know included, stays as
 * stored (the reference's MarkDeadPoolers changes only this field). */
static int set_shutdown(Clustermetadata__Multipooler *p, const char *reason, int64_t now_ms)
{
    Clustermetadata__PoolerLifecycle *lc = core_malloc(sizeof(*lc));
    Google__Protobuf__Timestamp *ts = core_malloc(sizeof(*ts));
    char *why = core_strdup(reason);
    if (!lc || !ts || !why) {
        core_free(lc);
        core_free(ts);
        core_free(why);
        return -ENOMEM;
    }
    clustermetadata__pooler_lifecycle__init(lc);
    google__protobuf__timestamp__init(ts);
    ts->seconds = now_ms / 1000;
    ts->nanos = (int32_t)((now_ms % 1000) * 1000000);
    lc->status = CLUSTERMETADATA__POOLER_LIFECYCLE_STATUS__LIFECYCLE_SHUTDOWN;
    lc->reason = why;
    lc->updated = ts;
    if (p->lifecycle_status)
        protobuf_c_message_free_unpacked(&p->lifecycle_status->base, &pbjson_allocator);
    p->lifecycle_status = lc;
    return 0;
}

int topo_mark_pooler_shutdown(struct etcd_client *etcd, const char *cell_root, const char *cell,
                              const char *name, const char *reason, int64_t now_ms,
                              int64_t deadline_ms, int *ret_changed, char *err, size_t err_size)
{
    char key[1024];
    if (topo_pooler_key(cell_root, cell, name, key, sizeof(key))) {
        set_err(err, err_size, "pooler %s/%s: not a valid pooler key", cell, name);
        return -EINVAL;
    }
    for (int attempt = 0; attempt <= CAS_RETRIES; attempt++) {
        struct etcd_kvs cur = {0};
        int64_t left = budget(deadline_ms, key, err, err_size);
        if (left < 0)
            return (int)left;
        int rc = etcd_get(etcd, key, strlen(key), left, &cur);
        if (rc)
            return etcd_failed(etcd, rc, err, err_size);
        if (cur.n == 0) {
            set_err(err, err_size, "%s: no such pooler record", key);
            return -ENOENT;
        }
        int64_t mod = cur.items[0].mod_revision;
        Clustermetadata__Multipooler *p = clustermetadata__multipooler__unpack(
            &pbjson_allocator, cur.items[0].value_len, cur.items[0].value);
        etcd_kvs_fini(&cur);
        if (!p) {
            if (core_allocation_failed())
                return -ENOMEM;
            set_err(err, err_size, "%s: the stored value is not a valid Pooler record", key);
            return -EPROTO;
        }
        if (p->lifecycle_status &&
            p->lifecycle_status->status ==
                CLUSTERMETADATA__POOLER_LIFECYCLE_STATUS__LIFECYCLE_SHUTDOWN) {
            clustermetadata__multipooler__free_unpacked(p, &pbjson_allocator);
            *ret_changed = 0;
            return 0;
        }
        uint8_t *bytes = NULL;
        size_t len = 0;
        rc = set_shutdown(p, reason, now_ms);
        if (!rc) {
            len = clustermetadata__multipooler__get_packed_size(p);
            bytes = core_malloc(len ? len : 1);
            if (bytes)
                (void)clustermetadata__multipooler__pack(p, bytes); /* exactly len bytes */
            else
                rc = -ENOMEM;
        }
        clustermetadata__multipooler__free_unpacked(p, &pbjson_allocator);
        if (rc)
            return rc;
        int swapped = 0;
        rc = cas_put(etcd, key, bytes, len, mod, deadline_ms, &swapped, err, err_size);
        if (rc)
            return rc;
        if (swapped) {
            *ret_changed = 1;
            return 0;
        }
    }
    return cas_lost(key, err, err_size);
}

int topo_delete_pooler(struct etcd_client *etcd, const char *cell_root, const char *cell,
                       const char *name, int64_t deadline_ms, int *ret_deleted, char *err,
                       size_t err_size)
{
    char key[1024];
    int64_t deleted = 0;
    if (topo_pooler_key(cell_root, cell, name, key, sizeof(key))) {
        set_err(err, err_size, "pooler %s/%s: not a valid pooler key", cell, name);
        return -EINVAL;
    }
    int64_t left = budget(deadline_ms, key, err, err_size);
    if (left < 0)
        return (int)left;
    int rc = etcd_delete(etcd, key, strlen(key), left, &deleted);
    if (rc)
        return etcd_failed(etcd, rc, err, err_size);
    *ret_deleted = deleted > 0;
    return 0;
}

/* ---- dump ----------------------------------------------------------------------------------- */

/* Every record under `prefix`, decoded, into an array. */
static int dump_prefix(struct etcd_client *etcd, const char *prefix, int64_t deadline, json_t **ret,
                       char *err, size_t err_size)
{
    struct etcd_kvs kvs = {0};
    int64_t left = budget(deadline, prefix, err, err_size);
    if (left < 0)
        return (int)left;
    int rc = etcd_get_prefix(etcd, prefix, strlen(prefix), 0, left, &kvs);
    if (rc)
        return etcd_failed(etcd, rc, err, err_size);
    json_t *out = json_array();
    for (size_t i = 0; out && i < kvs.n && rc == 0; i++) {
        int kind = topo_kind_of_key(kvs.items[i].key);
        json_t *rec = json_pack("{s:s, s:s, s:I}", "key", kvs.items[i].key, "kind",
                                kind >= 0 ? kinds[kind].leaf : "unknown", "mod_revision",
                                (json_int_t)kvs.items[i].mod_revision);
        json_t *value = NULL;
        int drc = kind >= 0 ? topo_decode((enum topo_kind)kind, kvs.items[i].value,
                                          kvs.items[i].value_len, &value)
                            : -EPROTO;
        if (drc == -ENOMEM)
            rc = -ENOMEM;
        else if (drc == 0 && !rec)
            json_decref(value);
        else if (rec && drc == 0)
            rc = json_object_set_new(rec, "value", value) ? -ENOMEM : 0;
        else if (rec)
            rc = json_object_set_new(
                     rec, "error",
                     json_string(kind >= 0 ? "the value does not decode" : "not a topology record"))
                     ? -ENOMEM
                     : 0;
        if (!rec || rc || json_array_append_new(out, rec))
            rc = -ENOMEM;
    }
    etcd_kvs_fini(&kvs);
    if (!out || rc) {
        json_decref(out);
        return rc ? rc : -ENOMEM;
    }
    *ret = out;
    return 0;
}

int topo_dump(struct etcd_client *etcd, const char *root, int64_t deadline_ms, json_t **ret,
              char *err, size_t err_size)
{
    char prefix[1024];
    json_t *global = NULL, *cells = json_array();
    if (!cells || join_dir(prefix, sizeof(prefix), root, NULL)) {
        json_decref(cells);
        return cells ? -EINVAL : -ENOMEM;
    }
    int rc = dump_prefix(etcd, prefix, deadline_ms, &global, err, err_size);
    size_t i;
    json_t *rec;
    json_t *seen_roots = json_object();
    if (!seen_roots && !rc)
        rc = -ENOMEM;
    json_array_foreach (global, i, rec) {
        const json_t *v = json_object_get(rec, "value");
        if (rc || strcmp(str(rec, "kind"), "Cell") != 0 || !str(v, "root"))
            continue;
        const char *croot = str(v, "root");
        char cprefix[1024];
        json_t *records = NULL;
        /* Cells that share the global root (or another cell's) list the same keys: once. */
        if (join_dir(cprefix, sizeof(cprefix), croot, NULL))
            continue;
        if (strncmp(cprefix, prefix, strlen(prefix)) == 0 && strlen(cprefix) == strlen(prefix)) {
            records = json_array(); /* its records are in the global listing already */
        } else if (json_object_get(seen_roots, cprefix)) {
            records = json_array();
        } else {
            rc = dump_prefix(etcd, cprefix, deadline_ms, &records, err, err_size);
            if (!rc && json_object_set_new(seen_roots, cprefix, json_true()))
                rc = -ENOMEM;
        }
        if (rc || !records ||
            json_array_append_new(cells, json_pack("{s:s, s:s, s:O?, s:o}", "cell",
                                                   str(v, "name") ? str(v, "name") : "", "root",
                                                   croot, "server_addresses",
                                                   json_object_get(v, "server_addresses"),
                                                   "records", records)))
            rc = rc ? rc : -ENOMEM;
    }
    json_decref(seen_roots);
    if (rc) {
        json_decref(global);
        json_decref(cells);
        return rc;
    }
    *ret =
        json_pack("{s:{s:s, s:o}, s:o}", "global", "root", root, "records", global, "cells", cells);
    return *ret ? 0 : -ENOMEM;
}
