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

/* Replication settings mgo keeps in postgresql.auto.conf itself: never reset, never taken as
 * reload-class settings of the spec. */
static const char *const managed_settings[] = {"primary_conninfo", "synchronous_standby_names",
                                               "primary_slot_name", "recovery_target_timeline",
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

static int known_drain_state(const char *d)
{
    return strcmp(d, "requested") == 0 || strcmp(d, "draining") == 0 ||
           strcmp(d, "acknowledged") == 0 || strcmp(d, "ready-for-deletion") == 0;
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
    return add_entry(c->waiting, json_pack("{s:s, s:s}", "instance", instance, "reason", why));
}

/* ---- the request --------------------------------------------------------------------------- */

static int32_t read_settings(const json_t *settings, char *msg, size_t size)
{
    const char *key;
    const json_t *v;
    if (!settings || json_is_null(settings))
        return MGO_OK;
    if (!json_is_object(settings) || json_object_size(settings) > CONVERGE_MAX_SETTINGS) {
        (void)snprintf(msg, size, "request: \"settings\" must be an object of at most %d strings",
                       CONVERGE_MAX_SETTINGS);
        return MGO_EINVAL;
    }
    json_object_foreach ((json_t *)settings, key, v) {
        const struct pg_param *prm = pg_param_lookup(key);
        if (!json_is_string(v) || strlen(json_string_value(v)) > CONVERGE_MAX_VALUE) {
            (void)snprintf(msg, size, "request: settings.%.80s: a string of at most %d bytes", key,
                           CONVERGE_MAX_VALUE);
            return MGO_EINVAL;
        }
        if (!prm || strcmp(prm->name, key) != 0 || prm->context == PG_CONTEXT_INTERNAL ||
            prm->context == PG_CONTEXT_POSTMASTER || is_managed(key)) {
            (void)snprintf(
                msg, size, "request: settings.%.80s: %s", key,
                !prm ? "not a parameter PostgreSQL lists (restart-class: a rolling update)"
                : strcmp(prm->name, key) != 0 ? "write the name in lower case"
                : is_managed(key)             ? "managed by mgo itself"
                                              : "restart-class (postmaster context): it changes "
                                                "through a rolling update, not a reload");
            return MGO_EINVAL;
        }
        char reason[256];
        if (pg_param_check(key, json_string_value(v), reason, sizeof(reason))) {
            (void)snprintf(msg, size, "request: settings.%.80s: %s", key, reason);
            return MGO_EINVAL;
        }
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
        if (!json_is_array(json_object_get(v, "endpoints")) ||
            json_array_size(json_object_get(v, "endpoints")) == 0 || !str(v, "root")) {
            (void)snprintf(msg, size,
                           "request: topology.cells.%.80s: needs \"endpoints\" (a non-empty "
                           "array) and \"root\"",
                           key);
            return MGO_EINVAL;
        }
    }
    for (size_t i = 0; i < c->n; i++)
        if (!c->nodes[i].cell || !json_object_get(cells, c->nodes[i].cell)) {
            (void)snprintf(msg, size,
                           "request: nodes[%zu]: with \"topology\", every node needs a \"cell\" "
                           "that topology.cells names",
                           i);
            return MGO_EINVAL;
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
            (api_opt(e, "drain") && (!str(e, "drain") || !known_drain_state(str(e, "drain"))))) {
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
    int32_t rc = read_settings(c->settings, msg, size);
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

#define AUTO_CONF "current_setting('data_directory') || '/postgresql.auto.conf'"

/* The entries of the node's postgresql.auto.conf as PostgreSQL reads them: {name: value}, the
 * last one of a name winning. */
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

/* A SQL array literal of names from the settings table and the auto.conf (checked to be plain
 * names before they get here): '{"a","b"}'. */
static int names_literal(const json_t *names, char *buf, size_t size)
{
    size_t o = 0, i;
    const json_t *v;
    o += (size_t)snprintf(buf, size, "'{");
    json_array_foreach (names, i, v) {
        int w = snprintf(buf + o, size - o, "%s\"%s\"", i ? "," : "", json_string_value(v));
        if (w < 0 || (size_t)w >= size - o)
            return -E2BIG;
        o += (size_t)w;
    }
    int w = snprintf(buf + o, size - o, "}'");
    return w < 0 || (size_t)w >= size - o ? -E2BIG : 0;
}

/* Poll fresh connections until the node has reloaded after `since` (server time) and
 * pg_settings shows every name of `set` coming from postgresql.auto.conf and no name of `reset`
 * from it, with no restart pending. 0, -ETIMEDOUT, or a connection error. */
static int confirm_settings(const struct cnode *x, const char *since, const json_t *set,
                            const json_t *reset, int64_t deadline, char *err, size_t err_size)
{
    json_t *all = json_array();
    char *sql = core_malloc(40000), *names = core_malloc(32000);
    int rc = all && sql && names ? 0 : -ENOMEM;
    if (rc == 0 &&
        (json_array_extend(all, (json_t *)set) || json_array_extend(all, (json_t *)reset)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = names_literal(all, names, 32000);
    if (rc == 0)
        (void)snprintf(sql, 40000,
                       "SELECT lower(name), coalesce(sourcefile = " AUTO_CONF ", false),"
                       " pending_restart, pg_conf_load_time() > '%s'::timestamptz"
                       " FROM pg_settings WHERE lower(name) = ANY (%s::text[])",
                       since, names);
    while (rc == 0) {
        struct pg_conn *conn = NULL;
        json_t *rows = NULL;
        int ok = 1;
        rc = pg_connect(x->conninfo, deadline, &conn, err, err_size);
        if (rc == 0)
            rc = pg_query(conn, sql, deadline, 1000, &rows, err, err_size);
        pg_close(conn);
        if (rc)
            break;
        size_t i, k;
        json_t *row, *v;
        ok = json_array_size(rows) == json_array_size(all);
        json_array_foreach (rows, i, row) {
            const char *name = json_string_value(json_array_get(row, 0));
            int from_auto = strcmp(json_string_value(json_array_get(row, 1)), "t") == 0;
            int in_set = 0;
            json_array_foreach (set, k, v)
                in_set |= name && strcmp(json_string_value(v), name) == 0;
            if (from_auto != in_set || strcmp(json_string_value(json_array_get(row, 2)), "f") ||
                strcmp(json_string_value(json_array_get(row, 3)), "t"))
                ok = 0;
        }
        json_decref(rows);
        if (ok)
            break;
        if (pg_now_ms() + 100 >= deadline) {
            (void)snprintf(err, err_size,
                           "%s: the reloaded settings are not visible in pg_settings yet", x->name);
            rc = -ETIMEDOUT;
            break;
        }
        sleep_ms(50);
    }
    json_decref(all);
    core_free(sql);
    core_free(names);
    return rc;
}

/* The status for a failed write of a setting: PostgreSQL refused the value (SQLSTATE class 22:
 * data exception; 42: a name or syntax it does not accept) or the node is not reachable. */
static int32_t setting_failed(struct pg_conn *conn, int rc)
{
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    const char *state = pg_sqlstate(conn);
    if (rc == -EREMOTEIO && (strncmp(state, "22", 2) == 0 || strncmp(state, "42", 2) == 0))
        return MGO_EINVAL;
    return MGO_EAGAIN;
}

static int32_t converge_settings(struct converge *c, size_t i, char *msg, size_t size)
{
    struct cnode *x = &c->nodes[i];
    struct pg_conn *conn = NULL;
    json_t *have = NULL, *set = json_array(), *reset = json_array(), *rows = NULL;
    char err[512] = "";
    int32_t status = MGO_OK;
    int rc = set && reset ? pg_connect(x->conninfo, c->deadline, &conn, err, sizeof(err)) : -ENOMEM;
    if (rc == 0)
        rc = auto_conf_entries(conn, c->deadline, &have, err, sizeof(err));
    if (rc) {
        status = rc == -ENOMEM ? MGO_ENOMEM : MGO_OK;
        if (rc != -ENOMEM && wait_for(c, x->name, "settings not read: %s", err))
            status = MGO_ENOMEM;
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)c->settings, key, v) {
        const json_t *cur = json_object_get(have, key);
        if ((!json_is_string(cur) || strcmp(json_string_value(cur), json_string_value(v)) != 0) &&
            json_array_append_new(set, json_string(key)))
            status = MGO_ENOMEM;
    }
    json_object_foreach (have, key, v) {
        if (!is_managed(key) && !json_object_get(c->settings, key) &&
            json_array_append_new(reset, json_string(key)))
            status = MGO_ENOMEM;
    }
    if (status != MGO_OK || (json_array_size(set) == 0 && json_array_size(reset) == 0))
        goto done;
    /* an entry that is not a plain name (written by hand) cannot be reset by name: report it */
    size_t k;
    json_array_foreach (reset, k, v) {
        const char *n = json_string_value(v);
        if (strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(n) || strlen(n) > 63) {
            (void)snprintf(msg, size,
                           "%s: postgresql.auto.conf holds \"%.80s\", which is not a parameter "
                           "name mgo can reset",
                           x->name, n);
            status = MGO_EINVAL;
            goto done;
        }
    }
    rc = pg_query(conn, "SELECT clock_timestamp()::text", c->deadline, 1, &rows, err, sizeof(err));
    const char *since = json_string_value(json_array_get(json_array_get(rows, 0), 0));
    if (rc == 0 && !since)
        rc = -EPROTO;
    json_array_foreach (set, k, v) {
        if (rc == 0)
            rc = pg_alter_system(
                conn, json_string_value(v),
                json_string_value(json_object_get(c->settings, json_string_value(v))), c->deadline,
                err, sizeof(err));
    }
    json_array_foreach (reset, k, v) {
        if (rc == 0)
            rc = pg_alter_system(conn, json_string_value(v), NULL, c->deadline, err, sizeof(err));
    }
    if (rc == 0)
        rc = pg_exec(conn, "SELECT pg_reload_conf()", c->deadline, err, sizeof(err));
    if (rc) {
        status = setting_failed(conn, rc);
        (void)snprintf(msg, size, "%s: settings: %s", x->name, err);
        goto done;
    }
    if (add_entry(c->changes, json_pack("{s:s, s:s, s:O, s:O}", "instance", x->name, "change",
                                        "settings", "set", set, "reset", reset))) {
        status = MGO_ENOMEM;
        goto done;
    }
    core_log(MGO_LOG_INFO, "converge: %s: settings written (%zu set, %zu reset), reloading",
             x->name, json_array_size(set), json_array_size(reset));
    rc = confirm_settings(x, since, set, reset, c->deadline, err, sizeof(err));
    if (rc) {
        status = rc == -ENOMEM ? MGO_ENOMEM : MGO_EAGAIN;
        (void)snprintf(msg, size, "%s", err);
    }
done:
    json_decref(rows);
    json_decref(have);
    json_decref(set);
    json_decref(reset);
    pg_close(conn);
    return status;
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
    if (strcmp(names, current) == 0)
        goto done;
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
        rc = pg_alter_system(conn, "synchronous_standby_names", names, c->deadline, err,
                             sizeof(err));
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

/* The host and port of a conninfo ("host=127.0.0.1 port=15433 ..."): the first value of each,
 * as written. 0, or -EINVAL when either is missing. */
static int host_port(const char *conninfo, char *host, size_t host_size, long *port)
{
    const char *h = strstr(conninfo, "host="), *p = strstr(conninfo, "port=");
    while (h && h != conninfo && h[-1] != ' ')
        h = strstr(h + 1, "host=");
    while (p && p != conninfo && p[-1] != ' ')
        p = strstr(p + 1, "port=");
    if (!h || !p)
        return -EINVAL;
    size_t len = strcspn(h + 5, " ,");
    if (len == 0 || len >= host_size)
        return -EINVAL;
    memcpy(host, h + 5, len);
    host[len] = '\0';
    char *end;
    *port = strtol(p + 5, &end, 10);
    return *port > 0 && *port < 65536 && (*end == '\0' || *end == ' ' || *end == ',') ? 0 : -EINVAL;
}

/* The record multipooler would publish for node x, in the canonical form a decode gives (zero
 * values left out), so that it compares with what etcd holds. */
static int desired_record(const struct converge *c, const struct cnode *x, json_t **ret)
{
    char host[256];
    long port;
    if (host_port(x->conninfo, host, sizeof(host), &port))
        return -EINVAL;
    const json_t *t = c->topology;
    int primary = !x->st.in_recovery;
    int draining = x->drain && strcmp(x->drain, "requested") != 0;
    json_t *rec = json_pack(
        "{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:{s:I}}", "id", "component",
        "MULTIPOOLER", "cell", x->cell, "name", x->name, "shard_key", "database",
        str(t, "database"), "table_group", str(t, "tablegroup"), "shard", str(t, "shard"), "type",
        primary ? "PRIMARY" : "REPLICA", "serving_status", draining ? "DRAINING" : "SERVING",
        "hostname", host, "port_map", "postgres", (json_int_t)port);
    if (!rec)
        return -ENOMEM;
    uint8_t *bytes = NULL;
    size_t len = 0;
    char err[256];
    int rc = topo_encode(TOPO_POOLER, rec, &bytes, &len, err, sizeof(err));
    json_t *canon = NULL;
    if (rc == 0)
        rc = topo_decode(TOPO_POOLER, bytes, len, &canon);
    core_free(bytes);
    json_decref(rec);
    if (rc == 0)
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

/* One cell: publish each answering node's record that differs, delete the records of nodes
 * gone (past the synchronous set, or not in the request). */
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
    int rc = topo_list_poolers(etcd, root, cell, str(t, "database"), str(t, "tablegroup"),
                               str(t, "shard"), tdeadline, &have, err, sizeof(err));
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        struct cnode *x = &c->nodes[i];
        if (strcmp(x->cell, cell) != 0 || is_gone(x) || !x->answered)
            continue;
        json_t *want = NULL, *cur = NULL, *e;
        size_t k;
        rc = desired_record(c, x, &want);
        if (rc == -EINVAL) {
            (void)snprintf(err, sizeof(err),
                           "nodes: %s: its conninfo needs host= and port= for its pooler record",
                           x->name);
            break;
        }
        json_array_foreach (have, k, e) {
            const char *n = json_string_value(json_object_get(json_object_get(e, "id"), "name"));
            if (n && strcmp(n, x->name) == 0)
                cur = json_deep_copy(e);
        }
        if (cur) {
            json_object_del(cur, "key");
            json_object_del(cur, "mod_revision");
            json_object_del(cur, "role");
        }
        if (rc == 0 && !json_equal(cur, want)) {
            rc = topo_publish_pooler(etcd, root, want, tdeadline, err, sizeof(err));
            if (rc == 0 && record_change(c, cell, x->name, cur ? "updated" : "created"))
                rc = -ENOMEM;
        }
        json_decref(want);
        json_decref(cur);
    }
    size_t k;
    json_t *e;
    json_array_foreach (have, k, e) {
        const char *n = json_string_value(json_object_get(json_object_get(e, "id"), "name"));
        int keep = 0;
        for (size_t i = 0; n && i < c->n; i++)
            keep |= strcmp(c->nodes[i].name, n) == 0 && !is_gone(&c->nodes[i]);
        if (rc || !n || keep)
            continue;
        int deleted = 0;
        rc = topo_delete_pooler(etcd, root, cell, n, tdeadline, &deleted, err, sizeof(err));
        if (rc == 0 && deleted && record_change(c, cell, n, "deleted"))
            rc = -ENOMEM;
    }
    /* also the records of gone nodes that topo_list_poolers leaves out (shut down ones) */
    for (size_t i = 0; rc == 0 && i < c->n; i++) {
        int deleted = 0;
        if (strcmp(c->nodes[i].cell, cell) != 0 || !is_gone(&c->nodes[i]))
            continue;
        rc = topo_delete_pooler(etcd, root, cell, c->nodes[i].name, tdeadline, &deleted, err,
                                sizeof(err));
        if (rc == 0 && deleted && record_change(c, cell, c->nodes[i].name, "deleted"))
            rc = -ENOMEM;
    }
    json_decref(have);
    etcd_client_free(etcd);
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    if (rc) {
        (void)snprintf(msg, size, "topology: cell %s: %s", cell, err);
        return rc == -EINVAL && strncmp(err, "nodes:", 6) == 0 ? MGO_EINVAL : MGO_EAGAIN;
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
    for (size_t i = 0; status == MGO_OK && i < c.n; i++)
        if (c.nodes[i].answered && c.settings)
            status = converge_settings(&c, i, msg, sizeof(msg));
    if (status == MGO_OK)
        status = converge_sync_set(&c, msg, sizeof(msg));
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
