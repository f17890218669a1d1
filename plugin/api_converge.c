/*
 * The converge hook, postgres driver (docs/abi.md "mgo_converge"): one shard's live replication
 * settings brought to what the spec wants, in place. Reload-class settings on every instance
 * (ALTER SYSTEM, reload, confirmed in pg_settings), the primary's synchronous_standby_names (a
 * standby joins once PostgreSQL reports it streaming), and the instances' pooler records. Each
 * part writes only what differs, so a converged shard causes no write; each is idempotent, so
 * a host that dies during a call simply calls again.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "drain/select.h"
#include "pg/pg.h"
#include "spec/pgparams.h"
#include "topo/etcd.h"
#include "topo/topo.h"
#include "api.h"

#define CONVERGE_DEFAULT_DEADLINE_MS 10000
#define CONVERGE_MAX_NODES           32
#define CONVERGE_MAX_SETTINGS        256
#define CONVERGE_MAX_VALUE           1024
#define MAX_ELEMENTS                 64

/* Replication settings mgo keeps in postgresql.auto.conf itself: never reset, never taken as
 * reload-class settings of the spec. */
static const char *const managed_settings[] = {"primary_conninfo", "synchronous_standby_names",
                                               "primary_slot_name", "recovery_target_timeline",
                                               NULL};

/* Recovery settings a host may write with a standby's setup: never reset (they are set when the
 * spec has them). */
static const char *const host_settings[] = {"restore_command", "archive_cleanup_command",
                                            "recovery_end_command", "recovery_min_apply_delay",
                                            NULL};

struct cnode {
    const char *name, *cell, *conninfo, *drain;
    long index;
    int running, answered;
    char error[256]; /* why it did not answer */
    struct pg_node_status st;
};

struct converge {
    const mgo_plugin *p;
    size_t n, primary;
    struct cnode *nodes;
    enum drain_policy policy;
    const json_t *settings, *topology;
    json_t *want; /* the settings: normalised name -> value */
    int64_t deadline;
    json_t *changes, *waiting;
    char sync_names[PG_SYNC_NAMES_SIZE];
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int is_managed(const char *name)
{
    for (size_t i = 0; managed_settings[i]; i++)
        if (strcasecmp(managed_settings[i], name) == 0)
            return 1;
    return 0;
}

/* Past the synchronous set: its drain has left replication behind. */
static int is_gone(const struct cnode *x)
{
    return x->drain &&
           (strcmp(x->drain, "acknowledged") == 0 || strcmp(x->drain, "ready-for-deletion") == 0);
}

static int is_draining(const struct cnode *x)
{
    return x->drain && strcmp(x->drain, "draining") == 0;
}

static int add_entry(json_t *list, json_t *entry)
{
    return !entry || json_array_append_new(list, entry) ? -ENOMEM : 0;
}

static int wait_for(struct converge *c, const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int wait_for(struct converge *c, const char *instance, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    core_utf8_sanitize(why); /* cut mid-character, or bytes from the server */
    return add_entry(c->waiting, json_pack("{s:s, s:s}", "instance", instance, "reason", why));
}

/* ---- the request --------------------------------------------------------------------------- */

/* Parameters whose value is a list (GUC_LIST_QUOTE in PostgreSQL): ALTER SYSTEM takes each
 * element as its own literal, and writes them quoted where needed. PostgreSQL reads the first
 * two as identifiers (SplitIdentifierString: a bare element lower-cased), the others as paths
 * (SplitDirectoriesString: kept as written, spaces inside allowed). */
static const char *const list_settings[] = {"search_path", "temp_tablespaces",
                                            "session_preload_libraries", "local_preload_libraries",
                                            NULL};

/* 0: not a list; 1: a list of identifiers; 2: a list of paths. */
static int list_kind(const char *name)
{
    for (size_t i = 0; list_settings[i]; i++)
        if (strcmp(list_settings[i], name) == 0)
            return i < 2 ? 1 : 2;
    return 0;
}

/* Parameters PostgreSQL refuses in a configuration file (GUC_DISALLOW_IN_FILE). */
static const char *const not_in_file[] = {"role",
                                          "session_authorization",
                                          "transaction_isolation",
                                          "transaction_read_only",
                                          "transaction_deferrable",
                                          "seed",
                                          NULL};

/* Split a list value the way PostgreSQL reads it for its kind: elements separated by commas,
 * each double-quoted ("" for a quote) or bare, spaces around them ignored; a bare identifier is
 * lower-cased and ends at a space, a bare path keeps its case and inner spaces. The elements go
 * to `out` (an array); "" and a single empty element are both the empty list. 0, -EINVAL
 * (malformed), -ENOMEM. */
static int split_list(const char *v, int kind, json_t *out)
{
    char buf[CONVERGE_MAX_VALUE + 1];
    const char *p = v + strspn(v, " \t\n\r");
    if (!*p || strcmp(p, "\"\"") == 0)
        return 0;
    for (;;) {
        size_t n = 0;
        if (*p == '"') {
            for (p++;; p++) {
                if (!*p)
                    return -EINVAL;
                if (*p == '"' && p[1] != '"')
                    break;
                if (*p == '"')
                    p++;
                if (n + 1 >= sizeof(buf))
                    return -EINVAL;
                buf[n++] = *p;
            }
            p++;
        } else {
            while (*p && *p != ',' && (kind == 2 || !strchr(" \t\n\r", *p)) &&
                   n + 1 < sizeof(buf)) {
                buf[n++] = (char)(kind == 1 && *p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                p++;
            }
            while (n > 0 && strchr(" \t\n\r", buf[n - 1]))
                n--;
            if (n == 0)
                return -EINVAL;
        }
        buf[n] = '\0';
        if (json_array_size(out) >= MAX_ELEMENTS)
            return -EINVAL;
        if (json_array_append_new(out, json_string(buf)))
            return core_allocation_failed() ? -ENOMEM : -EINVAL;
        p += strspn(p, " \t\n\r");
        if (!*p)
            return 0;
        if (*p != ',')
            return -EINVAL;
        p++;
        p += strspn(p, " \t\n\r");
    }
}

/* Do two values of `name` mean the same (a list compared element by element)? */
static int same_value(const char *name, const char *a, const char *b)
{
    int kind = list_kind(name);
    if (!kind)
        return strcmp(a, b) == 0;
    json_t *x = json_array(), *y = json_array();
    int same =
        x && y && split_list(a, kind, x) == 0 && split_list(b, kind, y) == 0 && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static int is_one_of(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return 1;
    return 0;
}

static int list_is_valid(const char *v, int kind)
{
    json_t *x = json_array();
    int ok = x && split_list(v, kind, x) == 0;
    json_decref(x);
    return ok;
}

/* The request's settings, checked, into c->want: names trimmed and lower-cased as validation
 * reads postgresConfig, each a known reload-class parameter mgo does not manage itself, each value
 * one that validation accepts. */
static int32_t read_settings(struct converge *c, const json_t *settings, char *msg, size_t size)
{
    const char *key;
    const json_t *v;
    c->want = json_object();
    if (!c->want)
        return MGO_ENOMEM;
    if (!settings)
        return MGO_OK;
    if (!json_is_object(settings) || json_object_size(settings) > CONVERGE_MAX_SETTINGS) {
        (void)snprintf(msg, size, "request: \"settings\" must be an object of at most %d strings",
                       CONVERGE_MAX_SETTINGS);
        return MGO_EINVAL;
    }
    json_object_foreach ((json_t *)settings, key, v) {
        char name[64], reason[256];
        if (pg_param_canonical_name(key, name, sizeof(name))) {
            (void)snprintf(msg, size, "request: settings.%.80s: not a parameter name", key);
            return MGO_EINVAL;
        }
        const struct pg_param *prm = pg_param_lookup(name);
        const char *why = NULL;
        if (!json_is_string(v) || strlen(json_string_value(v)) > CONVERGE_MAX_VALUE)
            why = "must be a string of at most 1024 bytes";
        else if (pg_param_check(name, json_string_value(v), reason, sizeof(reason)))
            why = reason;
        else if (strchr(name, '.'))
            why = "an extension parameter is restart-class: it changes through a rolling update";
        else if (!prm || prm->context == PG_CONTEXT_INTERNAL)
            why = "not a parameter that can be set";
        else if (prm->context == PG_CONTEXT_POSTMASTER)
            why = "restart-class (postmaster context): it changes through a rolling update";
        else if (is_managed(name))
            why = "managed by mgo itself";
        else if (is_one_of(not_in_file, name))
            why = "PostgreSQL does not take it in a configuration file";
        else if (list_kind(name) && !list_is_valid(json_string_value(v), list_kind(name)))
            why = "not a list PostgreSQL can read (names separated by commas, \"quoted\" "
                  "where needed)";
        else if (json_object_get(c->want, name))
            why = "given twice (names compare without regard to case and surrounding spaces)";
        if (why) {
            (void)snprintf(msg, size, "request: settings.%.80s: %s", key, why);
            return MGO_EINVAL;
        }
        if (json_object_set(c->want, name, (json_t *)v))
            return MGO_ENOMEM;
    }
    return MGO_OK;
}

static int32_t read_topology(const json_t *t, const struct converge *c, char *msg, size_t size)
{
    if (!t || json_is_null(t))
        return MGO_OK;
    const json_t *cells = json_object_get(t, "cells");
    if (!json_is_object(t) || !str(t, "database") || !str(t, "tablegroup") || !str(t, "shard") ||
        !json_is_object(cells)) {
        (void)snprintf(msg, size,
                       "request: \"topology\" needs \"database\", \"tablegroup\", \"shard\" "
                       "(strings) and \"cells\" ({cell: {\"endpoints\": [..], \"root\"}})");
        return MGO_EINVAL;
    }
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)cells, key, v) {
        size_t k;
        const json_t *ep;
        int strings = 1;
        json_array_foreach (json_object_get(v, "endpoints"), k, ep)
            strings &= json_is_string(ep);
        if (!api_valid_node_name(key) || !strings ||
            !json_is_array(json_object_get(v, "endpoints")) ||
            json_array_size(json_object_get(v, "endpoints")) == 0 || !str(v, "root") ||
            str(v, "root")[0] != '/' || strlen(str(v, "root")) > 512) {
            (void)snprintf(msg, size,
                           "request: topology.cells.%.80s: a cell name of 1 to 63 printable "
                           "ASCII characters, with \"endpoints\" (a non-empty array) and "
                           "\"root\" (a path of at most 512 bytes)",
                           key);
            return MGO_EINVAL;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct cnode *x = &c->nodes[i];
        char host[256], pkey[1024], err[300] = "";
        long port;
        if (!x->cell || !json_object_get(cells, x->cell)) {
            (void)snprintf(msg, size,
                           "request: nodes[%zu]: with \"topology\", every node needs a \"cell\" "
                           "that topology.cells names",
                           i);
            return MGO_EINVAL;
        }
        /* everything a pooler record needs is checked before anything is written */
        int rc = pg_conninfo_address(x->conninfo, host, sizeof(host), &port, err, sizeof(err));
        if (rc == -ENOMEM)
            return MGO_ENOMEM;
        if (rc == -ELIBACC) {
            (void)snprintf(msg, size, "postgres driver: libpq.so.5 cannot be loaded");
            return MGO_EUNSUPPORTED;
        }
        if (rc == 0 && topo_pooler_key(str(json_object_get(cells, x->cell), "root"), x->cell,
                                       x->name, pkey, sizeof(pkey)))
            (void)snprintf(err, sizeof(err), "the cell and name make no valid pooler key");
        if (err[0]) {
            (void)snprintf(msg, size, "request: nodes[%zu]: for its pooler record: %s", i, err);
            return MGO_EINVAL;
        }
    }
    return MGO_OK;
}

static int32_t read_request(const json_t *req, struct converge *c, char *msg, size_t size)
{
    const json_t *nodes = json_object_get(req, "nodes");
    size_t i;
    const json_t *e;
    if (!json_is_object(req) || !json_is_array(nodes) || json_array_size(nodes) == 0 ||
        json_array_size(nodes) > CONVERGE_MAX_NODES) {
        (void)snprintf(msg, size, "request: \"nodes\" (1..%d) is required", CONVERGE_MAX_NODES);
        return MGO_EINVAL;
    }
    const char *policy = api_opt(req, "durability") ? str(req, "durability") : "AT_LEAST_2";
    if (drain_policy_parse(policy, &c->policy) != 0) {
        (void)snprintf(msg, size, "request: \"durability\": AT_LEAST_2 or MULTI_CELL_AT_LEAST_2");
        return MGO_EINVAL;
    }
    c->nodes = core_calloc(json_array_size(nodes), sizeof(*c->nodes));
    if (!c->nodes)
        return MGO_ENOMEM;
    json_array_foreach (nodes, i, e) {
        struct cnode *x = &c->nodes[i];
        if (!api_valid_node_name(str(e, "name")) || !str(e, "conninfo") ||
            strlen(str(e, "conninfo")) > 1024 || (api_opt(e, "cell") && !str(e, "cell")) ||
            (api_opt(e, "index") && !json_is_integer(api_opt(e, "index"))) ||
            (api_opt(e, "running") && !json_is_boolean(api_opt(e, "running"))) ||
            (api_opt(e, "drain") &&
             (!str(e, "drain") || !api_known_drain_state(str(e, "drain"))))) {
            (void)snprintf(msg, size,
                           "request: nodes[%zu]: needs \"name\" (1 to 63 printable ASCII "
                           "characters, no space) and \"conninfo\" (at most 1024 bytes); "
                           "\"cell\" a string, \"index\" an integer, \"running\" a boolean, "
                           "\"drain\" a drain state",
                           i);
            return MGO_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(c->nodes[j].name, str(e, "name")) == 0) {
                (void)snprintf(msg, size,
                               "request: nodes[%zu]: the name \"%s\" appears twice; node names "
                               "must be unique (PostgreSQL compares them without regard to case)",
                               i, str(e, "name"));
                return MGO_EINVAL;
            }
        x->name = str(e, "name");
        x->cell = str(e, "cell");
        x->conninfo = str(e, "conninfo");
        x->drain = api_opt(e, "drain") ? str(e, "drain") : NULL;
        x->index = (long)json_integer_value(json_object_get(e, "index"));
        x->running = !json_is_false(json_object_get(e, "running"));
        if (c->policy == DRAIN_MULTI_CELL_AT_LEAST_2 && !x->cell) {
            (void)snprintf(msg, size, "request: nodes[%zu]: MULTI_CELL_AT_LEAST_2 needs \"cell\"",
                           i);
            return MGO_EINVAL;
        }
        c->n++;
    }
    c->settings = api_opt(req, "settings");
    int32_t rc = read_settings(c, c->settings, msg, size);
    if (rc == MGO_OK)
        rc = read_topology(api_opt(req, "topology"), c, msg, size);
    c->topology = api_opt(req, "topology");
    return rc;
}

/* ---- probing ------------------------------------------------------------------------------- */

/* Probe node i within a share of the time left. 0 (answered or not), -ELIBACC, -ENOMEM. */
static int probe_one(struct converge *c, size_t i)
{
    struct cnode *x = &c->nodes[i];
    struct pg_conn *conn = NULL;
    x->answered = 0;
    if (!x->running)
        return 0;
    int64_t now = pg_now_ms(), share = (c->deadline - now) / (int64_t)(c->n + 1);
    int64_t until = now + (share > 300 ? share : 300);
    if (until > c->deadline)
        until = c->deadline;
    int rc = pg_connect(x->conninfo, until, &conn, x->error, sizeof(x->error));
    if (rc == 0)
        rc = pg_node_probe(conn, until, &x->st, x->error, sizeof(x->error));
    pg_close(conn);
    if (rc == -ELIBACC || rc == -ENOMEM)
        return rc;
    x->answered = rc == 0;
    return 0;
}

static int32_t probe_failed(int rc, char *msg, size_t size)
{
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    (void)snprintf(msg, size, "postgres driver: libpq.so.5 cannot be loaded");
    return MGO_EUNSUPPORTED;
}

/* ---- reload-class settings ----------------------------------------------------------------- */

#define AUTO_CONF  "current_setting('data_directory') || '/postgresql.auto.conf'"
#define MARKER     "mgo.settings_hash"
#define MARKER_SQL "SELECT current_setting('" MARKER "', true)"

/* The marker of a set of settings: FNV-1a 64 over the sorted "name=value" lines, in hex. The
 * node has loaded exactly these settings once current_setting(MARKER) reads it. */
static void settings_marker(const json_t *want, char *out, size_t size)
{
    const char **names = core_calloc(json_object_size(want) + 1, sizeof(*names));
    uint64_t h = 14695981039346656037ULL;
    size_t n = 0;
    const char *key;
    const json_t *v;
    json_object_foreach ((json_t *)want, key, v)
        if (names)
            names[n++] = key;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j - 1];
            names[j - 1] = names[j];
            names[j] = t;
        }
    for (size_t i = 0; i < n; i++) {
        const char *parts[] = {names[i], "=", json_string_value(json_object_get(want, names[i])),
                               "\n"};
        for (size_t k = 0; k < 4; k++)
            for (const unsigned char *ch = (const unsigned char *)parts[k]; *ch; ch++) {
                h ^= *ch;
                h *= 1099511628211ULL;
            }
    }
    core_free(names);
    (void)snprintf(out, size, "%016llx", (unsigned long long)h);
}

/* The entries of the node's postgresql.auto.conf as PostgreSQL reads the file now: {name: value},
 * the last one of a name winning. */
static int auto_conf_entries(struct pg_conn *conn, int64_t deadline, json_t **ret, char *err,
                             size_t err_size)
{
    json_t *rows = NULL, *out = json_object();
    int rc = out ? pg_query(conn,
                            "SELECT lower(name), setting FROM pg_file_settings"
                            " WHERE sourcefile = " AUTO_CONF " ORDER BY seqno",
                            deadline, 1000, &rows, err, err_size)
                 : -ENOMEM;
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row) {
        const char *name = json_string_value(json_array_get(row, 0));
        json_t *value = json_array_get(row, 1);
        if (name && json_object_set(out, name, json_is_string(value) ? value : json_null()))
            rc = -ENOMEM;
    }
    json_decref(rows);
    if (rc) {
        json_decref(out);
        return rc;
    }
    *ret = out;
    return 0;
}

/* The first value of a one-row query ("" for NULL). 0, or pg_query()'s error. */
static int query_value(struct pg_conn *conn, const char *sql, int64_t deadline, char *out,
                       size_t size, char *err, size_t err_size)
{
    json_t *rows = NULL;
    int rc = pg_query(conn, sql, deadline, 1, &rows, err, err_size);
    if (rc == 0) {
        const char *v = json_string_value(json_array_get(json_array_get(rows, 0), 0));
        (void)snprintf(out, size, "%s", v ? v : "");
    }
    json_decref(rows);
    return rc;
}

/* Poll fresh connections until the node has loaded `marker` and pg_settings shows every name of
 * `set` coming from postgresql.auto.conf and no name of `reset` from it, with no restart
 * pending. 0, -ETIMEDOUT (err says what is not visible), or a connection error. */
static int confirm_settings(const struct cnode *x, const char *marker, const json_t *set,
                            const json_t *reset, int64_t until, char *err, size_t err_size)
{
    for (;;) {
        struct pg_conn *conn = NULL;
        json_t *rows = NULL;
        char live[64] = "";
        int rc = pg_connect(x->conninfo, until, &conn, err, err_size);
        if (rc == 0)
            rc = query_value(conn, MARKER_SQL, until, live, sizeof(live), err, err_size);
        if (rc == 0)
            rc = pg_query(conn,
                          "SELECT lower(name), coalesce(sourcefile = " AUTO_CONF ", false)::text,"
                          " pending_restart::text, source IN ('database', 'user',"
                          " 'database user')::text FROM pg_settings",
                          until, 2000, &rows, err, err_size);
        pg_close(conn);
        if (rc)
            return rc;
        const char *bad = strcmp(live, marker) ? MARKER : NULL;
        size_t i, k;
        json_t *row, *v;
        json_array_foreach (rows, i, row) {
            const char *name = json_string_value(json_array_get(row, 0));
            int from_auto = strcmp(json_string_value(json_array_get(row, 1)), "true") == 0;
            int pending = strcmp(json_string_value(json_array_get(row, 2)), "true") == 0;
            /* a role or database setting outranks the file for the sessions it covers only */
            int hidden = strcmp(json_string_value(json_array_get(row, 3)), "true") == 0;
            json_array_foreach (set, k, v)
                if (name && strcmp(json_string_value(v), name) == 0 &&
                    ((!from_auto && !hidden) || pending))
                    bad = json_string_value(v);
            json_array_foreach (reset, k, v)
                if (name && strcmp(json_string_value(v), name) == 0 && from_auto)
                    bad = json_string_value(v);
        }
        json_decref(rows);
        if (!bad)
            return 0;
        if (pg_now_ms() + 100 >= until) {
            (void)snprintf(err, err_size,
                           "%s: %s: the reloaded setting is not visible in "
                           "pg_settings yet",
                           x->name, bad);
            return -ETIMEDOUT;
        }
        sleep_ms(50);
    }
}

/* The writes a node needs: `set` (names of c->want whose entry differs, the marker last) and
 * `reset` (entries that are neither wanted nor mgo's own). An entry this PostgreSQL does not know
 * cannot be reset by name: it is reported as waited for instead. */
static int plan_settings(struct converge *c, const struct cnode *x, const json_t *have,
                         const char *marker, json_t *set, json_t *reset)
{
    const char *key;
    json_t *v;
    json_object_foreach (c->want, key, v) {
        const json_t *cur = json_object_get(have, key);
        if ((!json_is_string(cur) ||
             !same_value(key, json_string_value(cur), json_string_value(v))) &&
            json_array_append_new(set, json_string(key)))
            return -ENOMEM;
    }
    const json_t *cur = json_object_get(have, MARKER);
    if ((!json_is_string(cur) || strcmp(json_string_value(cur), marker) != 0) &&
        json_array_append_new(set, json_string(MARKER)))
        return -ENOMEM;
    json_object_foreach ((json_t *)have, key, v) {
        int host = 0;
        for (size_t k = 0; host_settings[k]; k++)
            host |= strcmp(host_settings[k], key) == 0;
        /* mgo's own, the host's, and extension placeholders (a name with a dot) stay */
        if (is_managed(key) || host || strchr(key, '.') || json_object_get(c->want, key))
            continue;
        const struct pg_param *prm = pg_param_lookup(key);
        if (!prm || prm->context == PG_CONTEXT_POSTMASTER || prm->context == PG_CONTEXT_INTERNAL) {
            /* a reset could not be confirmed without a restart (or at all): say so instead */
            if (wait_for(c, x->name,
                         "postgresql.auto.conf holds \"%.80s\", which %s: remove that line by "
                         "hand",
                         key,
                         prm ? "takes effect only at a restart, outside a rolling update"
                             : "this PostgreSQL does not know"))
                return -ENOMEM;
            continue;
        }
        if (json_array_append_new(reset, json_string(key)))
            return -ENOMEM;
    }
    return 0;
}

/* ALTER SYSTEM SET name = value (a list parameter element by element), or RESET when value is
 * NULL. The marker is a custom name: ALTER SYSTEM knows it only once the session has it as a
 * placeholder. */
static int write_value(struct pg_conn *conn, const char *name, const char *value, int64_t until,
                       char *err, size_t size)
{
    if (!value)
        return pg_alter_system(conn, name, NULL, until, err, size);
    if (strcmp(name, MARKER) == 0) {
        int rc = pg_exec(conn, "SET " MARKER " = ''", until, err, size);
        return rc ? rc
                  : pg_alter_system(conn, name, (const char *const[]){value, NULL}, until, err,
                                    size);
    }
    if (!list_kind(name))
        return pg_alter_system(conn, name, (const char *const[]){value, NULL}, until, err, size);
    json_t *elements = json_array();
    const char *values[MAX_ELEMENTS + 1] = {0};
    int rc = elements ? split_list(value, list_kind(name), elements) : -ENOMEM;
    if (rc == -EINVAL)
        (void)snprintf(err, size, "%s: \"%.80s\" is not a list of names", name, value);
    for (size_t k = 0; rc == 0 && k < json_array_size(elements); k++)
        values[k] = json_string_value(json_array_get(elements, k));
    if (rc == 0 && json_array_size(elements) == 0)
        values[0] = "";
    if (rc == 0)
        rc = pg_alter_system(conn, name, values, until, err, size);
    json_decref(elements);
    return rc;
}

/* Put back the file entries of `set` before position `upto` as they were (`have`), after
 * PostgreSQL refused the value at `upto`: bad input changes nothing. */
static int undo_writes(struct pg_conn *conn, const json_t *set, size_t upto, const json_t *have,
                       int64_t until, char *err, size_t size)
{
    int failed = 0;
    for (size_t k = 0; k < upto; k++) {
        const char *name = json_string_value(json_array_get(set, k));
        const json_t *old = json_object_get(have, name);
        if (write_value(conn, name, json_is_string(old) ? json_string_value(old) : NULL, until, err,
                        size))
            failed = 1;
    }
    return failed ? -1 : 0;
}

/* A node's settings brought in place, within `until`. A failure that retrying may cure (the
 * node does not answer, the reload is not visible yet) is listed in `waiting`; MGO_EINVAL when
 * PostgreSQL refuses a wanted value. */
static int32_t converge_settings(struct converge *c, size_t i, const char *marker, int64_t until,
                                 char *msg, size_t size)
{
    struct cnode *x = &c->nodes[i];
    struct pg_conn *conn = NULL;
    json_t *have = NULL, *set = json_array(), *reset = json_array();
    char err[512] = "", live[64] = "";
    int32_t status = MGO_OK;
    int rc = set && reset ? pg_connect(x->conninfo, until, &conn, err, sizeof(err)) : -ENOMEM;
    if (rc == 0)
        rc = auto_conf_entries(conn, until, &have, err, sizeof(err));
    if (rc == 0)
        rc = query_value(conn, MARKER_SQL, until, live, sizeof(live), err, sizeof(err));
    if (rc == 0)
        rc = plan_settings(c, x, have, marker, set, reset);
    if (rc == 0 && json_array_size(set) == 0 && json_array_size(reset) == 0 &&
        strcmp(live, marker) == 0)
        goto done; /* in place, in the file and live */
    size_t k;
    json_t *v;
    json_array_foreach (set, k, v) {
        const char *name = json_string_value(v);
        if (rc == 0)
            rc = write_value(conn, name,
                             strcmp(name, MARKER) == 0
                                 ? marker
                                 : json_string_value(json_object_get(c->want, name)),
                             until, err, sizeof(err));
        if (rc == -EREMOTEIO && strcmp(name, MARKER) != 0 &&
            strcmp(pg_sqlstate(conn), "42501") != 0) {
            /* the server refuses the setting (its value, or a name it does not take) */
            char undo[256] = "";
            int undone = undo_writes(conn, set, k, have, until, undo, sizeof(undo));
            (void)snprintf(msg, size, "settings.%s: PostgreSQL refuses it: %s%s%.200s", name, err,
                           undone ? "; putting back the entries written before it failed: " : "",
                           undone ? undo : "");
            status = MGO_EINVAL;
            goto done;
        }
        if (rc)
            break;
    }
    json_array_foreach (reset, k, v) {
        if (rc == 0)
            rc = write_value(conn, json_string_value(v), NULL, until, err, sizeof(err));
    }
    if (rc == 0) {
        core_log(MGO_LOG_INFO, "converge: %s: settings written (%zu set, %zu reset), reloading",
                 x->name, json_array_size(set), json_array_size(reset));
        rc = pg_exec(conn, "SELECT pg_reload_conf()", until, err, sizeof(err));
    }
    json_array_foreach (set, k, v) /* the marker is mgo's, not a change the caller asked for */
        if (strcmp(json_string_value(v), MARKER) == 0 && json_array_remove(set, k) == 0)
            break;
    if (rc == 0 &&
        add_entry(c->changes, json_pack("{s:s, s:s, s:O, s:O}", "instance", x->name, "change",
                                        "settings", "set", set, "reset", reset)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = confirm_settings(x, marker, set, reset, until, err, sizeof(err));
done:
    if (rc == -ENOMEM)
        status = MGO_ENOMEM;
    else if (rc && status == MGO_OK && wait_for(c, x->name, "settings: %s", err))
        status = MGO_ENOMEM;
    json_decref(have);
    json_decref(set);
    json_decref(reset);
    pg_close(conn);
    return status;
}

/* Every answering node's settings, each within a share of the time left. */
static int32_t converge_all_settings(struct converge *c, char *msg, size_t size)
{
    char marker[32];
    size_t left = 0;
    settings_marker(c->want, marker, sizeof(marker));
    for (size_t i = 0; i < c->n; i++)
        left += c->nodes[i].answered;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->nodes[i].answered)
            continue;
        int64_t now = pg_now_ms(), share = (c->deadline - now) / (int64_t)(left + 1);
        int64_t until = now + (share > 500 ? share : 500);
        int32_t status =
            converge_settings(c, i, marker, until < c->deadline ? until : c->deadline, msg, size);
        if (status != MGO_OK)
            return status;
        left--;
    }
    return MGO_OK;
}

/* ---- the synchronous set ------------------------------------------------------------------- */

static const struct pg_replica *replica_of(const struct pg_node_status *p, const char *name)
{
    for (size_t r = 0; r < p->nreplicas; r++)
        if (strcasecmp(p->replicas[r].name, name) == 0)
            return &p->replicas[r];
    return NULL;
}

static int streams(const struct converge *c, const struct cnode *x)
{
    const struct pg_replica *r = replica_of(&c->nodes[c->primary].st, x->name);
    return x->answered && r && strcmp(r->state, "streaming") == 0;
}

/* The set as it should be: the named standbys that still belong, plus every streaming one.
 * 1 when it should be written (names filled), 0 when it stays, <0 on error (msg). */
static int32_t converge_sync_set(struct converge *c, char *msg, size_t size)
{
    struct cnode *p = &c->nodes[c->primary];
    const char *current = p->st.sync_standby_names;
    struct drain_node *member = core_calloc(c->n, sizeof(*member));
    struct drain_node *now = core_calloc(c->n + PG_MAX_REPLICAS, sizeof(*now));
    size_t nm = 0, nn = 0, pm = 0, pn = 0;
    int32_t status = MGO_OK;
    if (!member || !now) {
        status = MGO_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < c->n; i++) {
        struct cnode *x = &c->nodes[i];
        int named = i != c->primary && *current && drain_names_mention(current, x->name);
        int streaming = i != c->primary && streams(c, x);
        struct drain_node d = {.name = x->name,
                               .cell = x->cell,
                               .index = x->index,
                               .ready = 1,
                               .primary = i == c->primary,
                               .streaming = streaming};
        if (i == c->primary) {
            pm = nm;
            pn = nn;
            member[nm++] = d;
            now[nn++] = d;
            continue;
        }
        if (named)
            now[nn++] = d;
        int in = is_draining(x) ? named : !is_gone(x) && (named || streaming);
        if (in)
            member[nm++] = d;
        if (i != c->primary && !is_gone(x) && !is_draining(x) && !streaming &&
            wait_for(c, x->name, "not streaming from the primary yet%s",
                     !x->running   ? " (its process is not running)"
                     : x->answered ? ""
                                   : " (it does not answer)"))
            status = MGO_ENOMEM;
    }
    /* a named standby that no node of the request stands for but that still streams counts
     * toward what the set can do now (its cell unknown), so that dropping it never weakens */
    for (size_t r = 0; r < p->st.nreplicas; r++) {
        const struct pg_replica *rep = &p->st.replicas[r];
        int known = 0;
        for (size_t i = 0; i < c->n; i++)
            known |= strcasecmp(c->nodes[i].name, rep->name) == 0;
        if (!known && *current && drain_names_mention(current, rep->name) &&
            strcmp(rep->state, "streaming") == 0)
            now[nn++] = (struct drain_node){.name = rep->name, .ready = 1, .streaming = 1};
    }
    char names[PG_SYNC_NAMES_SIZE];
    if (drain_sync_names(member, nm, c->policy, pm, SIZE_MAX, names, sizeof(names))) {
        (void)snprintf(msg, size,
                       "request: nodes: the standby names do not fit in "
                       "synchronous_standby_names (%zu bytes at most)",
                       sizeof(names) - 1);
        status = MGO_EINVAL;
        goto done;
    }
    (void)snprintf(c->sync_names, sizeof(c->sync_names), "%s", current);
    long cur_num = 0;
    size_t cur_names = 0, same = 0;
    int cur_star = 0;
    if (drain_names_shape(current, &cur_num, &cur_names, &cur_star) != 0 || cur_num > 1) {
        /* not a value mgo wrote: a stronger one (ANY 2, FIRST 3) or one it cannot read */
        if (wait_for(c, p->name,
                     "synchronous_standby_names \"%.300s\" is not one mgo writes (ANY 1 over "
                     "named standbys): left as it is",
                     current))
            status = MGO_ENOMEM;
        goto done;
    }
    size_t listed = 0;
    for (size_t i = 0; i < nm; i++) {
        /* the standbys drain_sync_names lists: under MULTI_CELL_AT_LEAST_2, other cells only */
        if (i == pm || (c->policy == DRAIN_MULTI_CELL_AT_LEAST_2 &&
                        strcmp(member[i].cell ? member[i].cell : "",
                               member[pm].cell ? member[pm].cell : "") == 0))
            continue;
        listed++;
        same += (size_t)drain_names_mention(current, member[i].name);
    }
    if (!cur_star && cur_names == listed && same == listed)
        goto done; /* the same standbys, whatever their order */
    /* never weaken: a set that can acknowledge commits now is not replaced by one that cannot;
     * an empty set (synchronous replication off) is never written */
    int can_now = drain_policy_satisfied(now, nn, c->policy, pn, SIZE_MAX, NULL, 0) == 1;
    int can_then = drain_policy_satisfied(member, nm, c->policy, pm, SIZE_MAX, NULL, 0) == 1;
    if (!*names || (can_now && !can_then)) {
        if (wait_for(c, p->name,
                     "synchronous_standby_names stays \"%s\": no standby to name "
                     "that could acknowledge commits in its place",
                     current))
            status = MGO_ENOMEM;
        goto done;
    }
    char err[512];
    struct pg_conn *conn = NULL;
    int rc = pg_connect(p->conninfo, c->deadline, &conn, err, sizeof(err));
    if (rc == 0)
        rc = pg_alter_system(conn, "synchronous_standby_names", (const char *const[]){names, NULL},
                             c->deadline, err, sizeof(err));
    if (rc == 0)
        rc = pg_exec(conn, "SELECT pg_reload_conf()", c->deadline, err, sizeof(err));
    pg_close(conn);
    if (rc) {
        (void)snprintf(msg, size, "primary %s: synchronous_standby_names: %s", p->name, err);
        status = rc == -ENOMEM ? MGO_ENOMEM : MGO_EAGAIN;
        goto done;
    }
    core_log(MGO_LOG_INFO, "converge: %s has synchronous_standby_names %s (was \"%s\")", p->name,
             names, current);
    if (add_entry(c->changes,
                  json_pack("{s:s, s:s, s:s, s:s}", "instance", p->name, "change",
                            "synchronous_standby_names", "from", current, "to", names))) {
        status = MGO_ENOMEM;
        goto done;
    }
    (void)snprintf(c->sync_names, sizeof(c->sync_names), "%s", names);
    /* confirmed once the primary shows it */
    for (;;) {
        rc = probe_one(c, c->primary);
        if (rc) {
            status = probe_failed(rc, msg, size);
            break;
        }
        if (p->answered && strcmp(p->st.sync_standby_names, names) == 0)
            break;
        if (pg_now_ms() + 100 >= c->deadline) {
            (void)snprintf(msg, size,
                           "primary %s: synchronous_standby_names written but not visible yet",
                           p->name);
            status = MGO_EAGAIN;
            break;
        }
        sleep_ms(20);
    }
done:
    core_free(member);
    core_free(now);
    return status;
}

/* ---- pooler records ------------------------------------------------------------------------ */

/* The node's record: the stored one (`cur`, may be NULL) with the fields mgo owns set as the node
 * answers now, in the canonical form a decode gives (zero values left out), so that it compares
 * with what etcd holds. A node that is stopped or does not answer keeps its record, marked
 * DISABLED; it gets none when it has none. *ret NULL: nothing to publish. */
/* routing_state.role of a record, its rule kept. 0 or -ENOMEM. */
static int set_routing_role(json_t *rec, const char *role)
{
    json_t *rs = json_object_get(rec, "routing_state");
    if (!json_is_object(rs) && json_object_set_new(rec, "routing_state", rs = json_object()))
        return -ENOMEM;
    return json_object_set_new(rs, "role", json_string(role)) ? -ENOMEM : 0;
}

static int desired_record(const struct converge *c, const struct cnode *x, const json_t *cur,
                          json_t **ret, char *err, size_t err_size)
{
    const json_t *t = c->topology;
    json_t *rec = cur ? json_deep_copy(cur) : json_object();
    int rc = rec ? 0 : -ENOMEM;
    *ret = NULL;
    if (rc == 0 && !x->answered) {
        if (!cur) {
            json_decref(rec);
            return 0;
        }
        rc = json_object_set_new(rec, "serving_status", json_string("DISABLED")) ? -ENOMEM : 0;
    } else if (rc == 0) {
        char host[256];
        long port = 0;
        rc = pg_conninfo_address(x->conninfo, host, sizeof(host), &port, err, err_size);
        json_t *ports = json_object_get(rec, "port_map");
        if (rc == 0 && !json_is_object(ports) &&
            json_object_set_new(rec, "port_map", ports = json_object()))
            rc = -ENOMEM;
        int draining = x->drain && strcmp(x->drain, "requested") != 0;
        /* a node that answers is not shut down, whoever marked its record so */
        const char *life = str(json_object_get(rec, "lifecycle_status"), "status");
        if (rc == 0 && life && strcmp(life, "LIFECYCLE_SHUTDOWN") == 0 &&
            json_object_set_new(rec, "lifecycle_status",
                                json_pack("{s:s}", "status", "LIFECYCLE_ACTIVE")))
            rc = -ENOMEM;
        if (rc == 0 &&
            (json_object_set_new(rec, "id",
                                 json_pack("{s:s, s:s, s:s}", "component", "MULTIPOOLER", "cell",
                                           x->cell, "name", x->name)) ||
             json_object_set_new(rec, "shard_key",
                                 json_pack("{s:s, s:s, s:s}", "database", str(t, "database"),
                                           "table_group", str(t, "tablegroup"), "shard",
                                           str(t, "shard"))) ||
             json_object_set_new(rec, "type",
                                 json_string(x->st.in_recovery ? "REPLICA" : "PRIMARY")) ||
             set_routing_role(rec, x->st.in_recovery ? "ROUTING_ROLE_REPLICA"
                                                     : "ROUTING_ROLE_PRIMARY") ||
             json_object_set_new(rec, "serving_status",
                                 json_string(draining ? "DRAINING" : "SERVING")) ||
             json_object_set_new(rec, "hostname", json_string(host)) ||
             json_object_set_new(ports, "postgres", json_integer(port))))
            rc = -ENOMEM;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    json_t *canon = NULL;
    if (rc == 0)
        rc = topo_encode(TOPO_POOLER, rec, &bytes, &len, err, err_size);
    if (rc == 0)
        rc = topo_decode(TOPO_POOLER, bytes, len, &canon);
    core_free(bytes);
    json_decref(rec);
    *ret = canon;
    return rc;
}

static int record_change(struct converge *c, const char *cell, const char *name,
                         const char *outcome)
{
    core_log(MGO_LOG_INFO, "converge: pooler record of %s in cell %s %s", name, cell, outcome);
    return add_entry(c->changes, json_pack("{s:s, s:s, s:s, s:s}", "instance", name, "change",
                                           "pooler", "cell", cell, "outcome", outcome));
}

/* The listed record of `name` (NULL when none), without the fields the listing adds. */
static json_t *stored_record(const json_t *have, const char *name, const char *key,
                             int64_t *mod_revision)
{
    size_t k;
    const json_t *e;
    *mod_revision = 0;
    json_array_foreach (have, k, e) {
        const char *n = json_string_value(json_object_get(json_object_get(e, "id"), "name"));
        if (n && strcmp(n, name) == 0 && strcmp(str(e, "key") ? str(e, "key") : "", key) == 0) {
            json_t *cur = json_deep_copy(e);
            *mod_revision = json_integer_value(json_object_get(e, "mod_revision"));
            if (cur) {
                (void)json_object_del(cur, "key");
                (void)json_object_del(cur, "mod_revision");
                (void)json_object_del(cur, "role");
            }
            return cur;
        }
    }
    return NULL;
}

/* Publish a record over the stored one only if that has not changed meanwhile. 0 (also when it
 * had: *ret_swapped 0), or an errno-style failure. */
static int publish_if(struct etcd_client *etcd, const char *root, const json_t *rec,
                      int64_t mod_revision, int64_t tdeadline, int *ret_swapped, char *err,
                      size_t err_size)
{
    const json_t *id = json_object_get(rec, "id");
    char key[1024];
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = topo_pooler_key(root, str(id, "cell"), str(id, "name"), key, sizeof(key));
    if (rc)
        (void)snprintf(err, err_size, "not a valid pooler key under %.200s", root);
    if (rc == 0)
        rc = topo_encode(TOPO_POOLER, rec, &bytes, &len, err, err_size);
    if (rc == 0)
        rc = etcd_put_if(etcd, key, strlen(key), bytes, len, mod_revision, 0,
                         topo_remaining_ms(tdeadline), ret_swapped, NULL, NULL);
    if (rc && rc != -EINVAL && rc != -ENOMEM)
        (void)snprintf(err, err_size, "%s: etcd did not take the write", key);
    core_free(bytes);
    return rc;
}

/* One node's record published when it differs from the stored one. */
/* The record stored at `key` whatever the listing filtered out (another shard key, a damaged
 * one): *ret NULL and *rev 0 when there is none; a value that does not decode is replaced. */
static int read_record(struct etcd_client *etcd, const char *key, int64_t tdeadline, json_t **ret,
                       int64_t *rev)
{
    struct etcd_kvs kvs = {0};
    *ret = NULL;
    *rev = 0;
    int rc = etcd_get(etcd, key, strlen(key), topo_remaining_ms(tdeadline), &kvs);
    if (rc == 0 && kvs.n == 1) {
        *rev = kvs.items[0].mod_revision;
        if (topo_decode(TOPO_POOLER, kvs.items[0].value, kvs.items[0].value_len, ret) == -ENOMEM)
            rc = -ENOMEM;
    }
    etcd_kvs_fini(&kvs);
    return rc;
}

static int converge_record(struct converge *c, struct etcd_client *etcd, const char *cell,
                           const char *root, const json_t *have, const struct cnode *x,
                           int64_t tdeadline, char *err, size_t err_size)
{
    int64_t rev = 0;
    char key[1024];
    if (topo_pooler_key(root, cell, x->name, key, sizeof(key))) {
        (void)snprintf(err, err_size, "%s: not a valid pooler key under %.200s", x->name, root);
        return -EINVAL;
    }
    json_t *cur = stored_record(have, x->name, key, &rev), *want = NULL;
    int swapped = 1, rc = 0;
    /* twice at most: a record the listing did not show (another shard key) is read by its key */
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        json_decref(want);
        want = NULL;
        rc = desired_record(c, x, cur, &want, err, err_size);
        if (rc || !want || json_equal(cur, want))
            break;
        rc = publish_if(etcd, root, want, rev, tdeadline, &swapped, err, err_size);
        if (rc || swapped)
            break;
        json_decref(cur);
        rc = read_record(etcd, key, tdeadline, &cur, &rev);
        if (rc)
            (void)snprintf(err, err_size, "%s: etcd did not answer the read", key);
    }
    if (rc == 0 && want && !json_equal(cur, want))
        rc = swapped ? record_change(c, cell, x->name, cur ? "updated" : "created")
                     : wait_for(c, x->name, "its pooler record changed meanwhile; next call");
    json_decref(cur);
    json_decref(want);
    return rc;
}

/* Is there a node of this name in this cell that is not gone? */
static int keeps_record(const struct converge *c, const char *name, const char *cell)
{
    for (size_t i = 0; name && i < c->n; i++)
        if (strcmp(c->nodes[i].name, name) == 0 && strcmp(c->nodes[i].cell, cell) == 0 &&
            !is_gone(&c->nodes[i]))
            return 1;
    return 0;
}

/* One cell: each node's record in place; the records of the shard whose node is gone (past the
 * synchronous set, or not in the request) deleted, by the key they are stored under. */
static int32_t converge_cell(struct converge *c, const char *cell, const json_t *where, char *msg,
                             size_t size)
{
    const json_t *t = c->topology;
    const char *root = str(where, "root");
    struct etcd_client *etcd = NULL;
    json_t *have = NULL;
    char err[512] = "";
    int64_t tdeadline = topo_deadline_after(c->deadline - pg_now_ms());
    int32_t status =
        api_topo_client(c->p, json_object_get(where, "endpoints"), tdeadline, &etcd, msg, size);
    if (status != MGO_OK)
        return status;
    int rc = topo_list_poolers_all(etcd, root, cell, str(t, "database"), str(t, "tablegroup"),
                                   str(t, "shard"), tdeadline, &have, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        if (strcmp(c->nodes[i].cell, cell) == 0 && !is_gone(&c->nodes[i]))
            rc = converge_record(c, etcd, cell, root, have, &c->nodes[i], tdeadline, err,
                                 sizeof(err));
    size_t k;
    json_t *e;
    json_array_foreach (have, k, e) {
        const char *n = json_string_value(json_object_get(json_object_get(e, "id"), "name"));
        const char *key = str(e, "key");
        char own[1024];
        int deleted = 0;
        /* kept: the record of a node that stays, under the key its name gives (a copy of it
         * under another key is a stale duplicate) */
        if (rc || !key ||
            (keeps_record(c, n, cell) && topo_pooler_key(root, cell, n, own, sizeof(own)) == 0 &&
             strcmp(own, key) == 0))
            continue;
        rc = etcd_delete_if(etcd, key, strlen(key),
                            json_integer_value(json_object_get(e, "mod_revision")),
                            topo_remaining_ms(tdeadline), &deleted);
        if (rc)
            (void)snprintf(err, sizeof(err), "%s: etcd did not take the delete", key);
        if (rc == 0 && deleted && record_change(c, cell, n ? n : key, "deleted"))
            rc = -ENOMEM;
    }
    json_decref(have);
    etcd_client_free(etcd);
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    if (rc) {
        (void)snprintf(msg, size, "topology: cell %s: %s", cell, err);
        return rc == -EINVAL ? MGO_EINVAL : MGO_EAGAIN;
    }
    return MGO_OK;
}

/* ---- the hook ------------------------------------------------------------------------------ */

int32_t api_converge(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len)
{
    char msg[1024] = "";
    struct converge c = {.p = p, .primary = SIZE_MAX};
    json_error_t jerr;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr), *out = NULL;
    int64_t deadline_ms = 0;
    int32_t status;
    if (!req) {
        (void)snprintf(msg, sizeof(msg), "request: %s (line %d)", jerr.text, jerr.line);
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    status = read_request(req, &c, msg, sizeof(msg));
    if (status == MGO_OK && api_deadline_ms(req, "deadline_ms", CONVERGE_DEFAULT_DEADLINE_MS,
                                            &deadline_ms, msg, sizeof(msg)))
        status = MGO_EINVAL;
    c.changes = json_array();
    c.waiting = json_array();
    if (status == MGO_OK && (!c.changes || !c.waiting))
        status = MGO_ENOMEM;
    if (status != MGO_OK)
        goto done;
    c.deadline = pg_now_ms() + deadline_ms;

    size_t primaries = 0;
    for (size_t i = 0; i < c.n; i++) {
        int rc = probe_one(&c, i);
        if (rc) {
            status = probe_failed(rc, msg, sizeof(msg));
            goto done;
        }
        if (c.nodes[i].answered && !c.nodes[i].st.in_recovery) {
            c.primary = i;
            primaries++;
        }
        if (c.nodes[i].running && !c.nodes[i].answered &&
            wait_for(&c, c.nodes[i].name, "does not answer: %s", c.nodes[i].error)) {
            status = MGO_ENOMEM;
            goto done;
        }
    }
    if (primaries != 1) {
        (void)snprintf(msg, sizeof(msg),
                       "no single primary answers (%zu instances answer as a primary): nothing "
                       "was changed",
                       primaries);
        status = MGO_EAGAIN;
        goto done;
    }
    /* the synchronous set first: what durability rests on must not wait behind a slow node */
    status = converge_sync_set(&c, msg, sizeof(msg));
    if (status == MGO_OK && c.settings)
        status = converge_all_settings(&c, msg, sizeof(msg));
    if (status == MGO_OK && c.topology) {
        const char *cell;
        const json_t *where;
        json_object_foreach ((json_t *)json_object_get(c.topology, "cells"), cell, where) {
            status = converge_cell(&c, cell, where, msg, sizeof(msg));
            if (status != MGO_OK)
                break;
        }
    }
    if (status == MGO_OK) {
        int converged = json_array_size(c.changes) == 0 && json_array_size(c.waiting) == 0;
        out = json_pack("{s:b, s:s, s:s, s:O, s:O}", "converged", converged, "primary",
                        c.nodes[c.primary].name, "synchronous_standby_names", c.sync_names,
                        "changes", c.changes, "waiting", c.waiting);
        if (!out)
            status = MGO_ENOMEM;
    }
done:
    if (status != MGO_OK && status != MGO_ENOMEM && c.changes && c.waiting) {
        /* what was written before the failure is still reported */
        json_decref(out);
        out = json_pack("{s:O, s:O}", "changes", c.changes, "waiting", c.waiting);
    }
    json_decref(req);
    json_decref(c.changes);
    json_decref(c.waiting);
    json_decref(c.want);
    core_free(c.nodes);
    if (status == MGO_ENOMEM) {
        json_decref(out);
        return MGO_ENOMEM;
    }
    if (!out)
        return api_fail(status, msg, ret_result, ret_len);
    if (status != MGO_OK) {
        core_utf8_sanitize(msg);
        core_result_set_error(out, status, msg);
    }
    return api_finish(out, status, ret_result, ret_len);
}
