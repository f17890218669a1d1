/*
 * The drain hook, postgres driver: one safe step of the drain of one instance per call
 * (docs/abi.md "mgo_drain"; rules in docs/spec/lifecycle.md "Drain of a standby"). Every state
 * is persisted (by the host, through the returned annotate action) before the work it
 * announces, and every step is idempotent, so a host that dies at any point resumes by calling
 * again with the annotations it has. This release drains standbys; a primary's drain (planned
 * switchover) answers MGO_EUNSUPPORTED.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "drain/select.h"
#include "pg/pg.h"
#include "reconcile/reconcile.h"
#include "api.h"

#define DRAIN_DEFAULT_DEADLINE_MS 10000
#define DRAIN_MAX_NODES           32

struct shard_probe {
    size_t n;
    const char *other_draining; /* another node's drain under way, or NULL */
    size_t victim, primary;
    struct drain_node nodes[DRAIN_MAX_NODES];
    struct pg_node_status status[DRAIN_MAX_NODES];
    const char *conninfo[DRAIN_MAX_NODES];
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *step_result(const char *state, const char *next, const char *why)
{
    json_t *r = json_pack("{s:s, s:[]}", "state", state, "actions");
    if (r && next) {
        json_t *a = json_pack("{s:s, s:{s:s}}", "type", "annotate", "annotations",
                              RECONCILE_DRAIN_STATE, next);
        if (!a || json_array_append_new(json_object_get(r, "actions"), a) ||
            json_object_set_new(r, "state", json_string(next))) {
            json_decref(r);
            return NULL;
        }
    }
    if (r && why && json_object_set_new(r, "message", json_string(why))) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* The request's nodes, checked: [{"name", "cell", "index", "conninfo", "ready", "drain"}]. A
 * node whose own drain is past the synchronous set (acknowledged, ready-for-deletion) is gone
 * as far as this drain is concerned: it neither counts toward the policy nor is named again; a
 * node still draining does not count toward the policy. */
static int32_t read_nodes(const json_t *req, struct shard_probe *s, char *msg, size_t size)
{
    const json_t *nodes = json_object_get(req, "nodes");
    const char *instance = str(req, "instance");
    size_t i;
    const json_t *e;
    memset(s, 0, sizeof(*s));
    s->victim = s->primary = SIZE_MAX;
    if (!instance || !json_is_array(nodes) || json_array_size(nodes) == 0 ||
        json_array_size(nodes) > DRAIN_MAX_NODES) {
        (void)snprintf(msg, size,
                       "request: \"instance\" (a string) and \"nodes\" (1..%d) are "
                       "required",
                       DRAIN_MAX_NODES);
        return MGO_EINVAL;
    }
    json_array_foreach (nodes, i, e) {
        if (!str(e, "name") || !str(e, "conninfo") ||
            (json_object_get(e, "cell") && !str(e, "cell")) ||
            (json_object_get(e, "index") && !json_is_integer(json_object_get(e, "index"))) ||
            (json_object_get(e, "ready") && !json_is_boolean(json_object_get(e, "ready"))) ||
            (json_object_get(e, "drain") && !str(e, "drain"))) {
            (void)snprintf(msg, size,
                           "request: nodes[%zu]: needs \"name\" and \"conninfo\" strings; "
                           "\"cell\" a string, \"index\" an integer, \"ready\" a boolean, "
                           "\"drain\" its drain state",
                           i);
            return MGO_EINVAL;
        }
        const char *drain = str(e, "drain");
        int mine = strcmp(str(e, "name"), instance) == 0;
        if (!mine && drain &&
            (strcmp(drain, "acknowledged") == 0 || strcmp(drain, "ready-for-deletion") == 0))
            continue;
        struct drain_node *d = &s->nodes[s->n];
        d->draining = !mine && drain && strcmp(drain, "requested") != 0;
        /* Two drains at once (a host that did not wait): the one whose name sorts first goes
         * on, the other waits until it has left, so that neither undoes the other. */
        if (d->draining && strcmp(str(e, "name"), instance) < 0)
            s->other_draining = str(e, "name");
        d->name = str(e, "name");
        d->cell = str(e, "cell");
        d->index = (long)json_integer_value(json_object_get(e, "index"));
        d->ready = !json_is_false(json_object_get(e, "ready"));
        s->conninfo[s->n] = str(e, "conninfo");
        if (strcmp(d->name, instance) == 0)
            s->victim = s->n;
        s->n++;
    }
    if (s->victim == SIZE_MAX) {
        (void)snprintf(msg, size, "request: instance \"%.200s\" is not among the nodes", instance);
        return MGO_EINVAL;
    }
    return MGO_OK;
}

/* Probe every node; the primary is the one not in recovery, streaming standbys are those the
 * primary's pg_stat_replication lists as streaming. A node that does not answer is not ready.
 * MGO_EAGAIN when there is not exactly one primary. */
static int32_t probe_shard(struct shard_probe *s, int64_t deadline, char *msg, size_t size)
{
    char err[512];
    size_t primaries = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct pg_conn *c = NULL;
        int rc = pg_connect(s->conninfo[i], deadline, &c, err, sizeof(err));
        if (rc == -ELIBACC) {
            (void)snprintf(msg, size, "postgres driver: %s", err);
            return MGO_EUNSUPPORTED;
        }
        if (rc == 0)
            rc = pg_node_probe(c, deadline, &s->status[i], err, sizeof(err));
        pg_close(c);
        if (rc != 0) {
            s->nodes[i].ready = 0;
            core_log(MGO_LOG_INFO, "drain: %s did not answer: %s", s->nodes[i].name, err);
            continue;
        }
        if (!s->status[i].in_recovery) {
            s->primary = i;
            primaries++;
        }
    }
    if (primaries != 1) {
        (void)snprintf(msg, size, "drain: the shard has %zu answering primaries; waiting for one",
                       primaries);
        return MGO_EAGAIN;
    }
    const struct pg_node_status *p = &s->status[s->primary];
    s->nodes[s->primary].primary = 1;
    for (size_t r = 0; r < p->nreplicas; r++)
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(p->replicas[r].name, s->nodes[i].name) == 0 &&
                strcmp(p->replicas[r].state, "streaming") == 0) {
                s->nodes[i].streaming = 1;
                s->nodes[i].received_lsn = s->status[i].received_lsn;
                s->nodes[i].replayed_lsn = s->status[i].replayed_lsn;
            }
    s->nodes[s->victim].draining = 1;
    return MGO_OK;
}

/* Is `name` still one the primary waits on: named in its synchronous_standby_names (parsed as
 * PostgreSQL reads it), or reported sync/quorum/potential in pg_stat_replication? */
static int primary_waits_on(const struct pg_node_status *p, const char *name)
{
    if (drain_names_mention(p->sync_standby_names, name))
        return 1;
    for (size_t r = 0; r < p->nreplicas; r++)
        if (strcmp(p->replicas[r].name, name) == 0 &&
            strcmp(p->replicas[r].sync_state, "async") != 0)
            return 1;
    return 0;
}

/* Take the victim out of the primary's synchronous set: ALTER SYSTEM and reload, only while the
 * rest still satisfies the policy. */
static int32_t leave_sync_set(struct shard_probe *s, enum drain_policy policy, int64_t deadline,
                              char *msg, size_t size)
{
    char why[256], names[1024], sql[2200], err[512];
    int may = drain_standby_may_leave(s->nodes, s->n, policy, s->victim, why, sizeof(why));
    if (may <= 0) {
        (void)snprintf(msg, size, "drain of %s blocked: %s", s->nodes[s->victim].name, why);
        return may < 0 ? MGO_EINVAL : MGO_EAGAIN;
    }
    if (drain_sync_names(s->nodes, s->n, policy, s->primary, s->victim, names, sizeof(names)))
        return MGO_EINTERNAL;
    size_t o = (size_t)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = '");
    for (const char *ch = names; *ch && o + 3 < sizeof(sql); ch++) {
        if (*ch == '\'')
            sql[o++] = '\'';
        sql[o++] = *ch;
    }
    (void)snprintf(sql + o, sizeof(sql) - o, "'");
    struct pg_conn *c = NULL;
    int rc = pg_connect(s->conninfo[s->primary], deadline, &c, err, sizeof(err));
    if (rc == 0)
        rc = pg_exec(c, sql, deadline, err, sizeof(err));
    if (rc == 0)
        rc = pg_exec(c, "SELECT pg_reload_conf()", deadline, err, sizeof(err));
    pg_close(c);
    if (rc != 0) {
        (void)snprintf(msg, size, "drain of %s: primary %s: %s", s->nodes[s->victim].name,
                       s->nodes[s->primary].name, err);
        return MGO_EAGAIN;
    }
    core_log(MGO_LOG_INFO, "drain: %s left the synchronous set: %s", s->nodes[s->victim].name,
             names);
    return MGO_OK;
}

/* No commit still waits on the victim (lifecycle.md, "Drain of a standby", step 3). A commit
 * that waited on it is released by the next reply of a standby in the new set: write a WAL
 * record at L and wait until a synchronous standby other than the victim has flushed past L,
 * so that its reply has released every commit up to L. */
static int32_t waiters_released(struct shard_probe *s, int64_t deadline, char *msg, size_t size)
{
    char err[512];
    struct pg_conn *c = NULL;
    struct pg_node_status st;
    int rc = pg_connect(s->conninfo[s->primary], deadline, &c, err, sizeof(err));
    uint64_t before = 0, mark = 0;
    if (rc == 0 && (rc = pg_node_probe(c, deadline, &st, err, sizeof(err))) == 0)
        before = st.current_lsn;
    if (rc == 0)
        rc = pg_exec(c, "SELECT pg_logical_emit_message(false, 'mgo-drain', '')", deadline, err,
                     sizeof(err));
    /* the mark is a position written after the message: a standby past it has received WAL
     * written after the new setting took effect, and its reply released the waiters */
    while (rc == 0 && (rc = pg_node_probe(c, deadline, &st, err, sizeof(err))) == 0 &&
           st.current_lsn <= before) {
        if (pg_now_ms() + 20 >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc == 0)
        mark = st.current_lsn;
    while (rc == 0) {
        for (size_t r = 0; r < st.nreplicas; r++)
            if (strcmp(st.replicas[r].name, s->nodes[s->victim].name) != 0 &&
                strcmp(st.replicas[r].sync_state, "async") != 0 &&
                strcmp(st.replicas[r].state, "streaming") == 0 &&
                st.replicas[r].flush_lsn >= mark) {
                pg_close(c);
                return MGO_OK;
            }
        if (pg_now_ms() + 50 >= deadline) {
            (void)snprintf(err, sizeof(err), "no synchronous standby has confirmed the mark yet");
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = pg_node_probe(c, deadline, &st, err, sizeof(err));
    }
    pg_close(c);
    (void)snprintf(msg, size, "drain of %s: waiting for commits it held to be released: %s",
                   s->nodes[s->victim].name, err);
    return MGO_EAGAIN;
}

/* The draining step: out of the synchronous set, verified on the primary, then acknowledged. */
static int32_t step_draining(const json_t *req, json_t **ret, char *msg, size_t size)
{
    struct shard_probe s;
    enum drain_policy policy;
    const json_t *dl = json_object_get(req, "deadline_ms");
    int64_t deadline = pg_now_ms() + (json_is_integer(dl) && json_integer_value(dl) > 0
                                          ? json_integer_value(dl)
                                          : DRAIN_DEFAULT_DEADLINE_MS);
    int32_t rc = read_nodes(req, &s, msg, size);
    if (rc == MGO_OK &&
        drain_policy_parse(str(req, "durability") ? str(req, "durability") : "AT_LEAST_2",
                           &policy)) {
        (void)snprintf(msg, size,
                       "request: \"durability\" must be AT_LEAST_2 or "
                       "MULTI_CELL_AT_LEAST_2");
        rc = MGO_EINVAL;
    }
    for (size_t i = 0; rc == MGO_OK && policy == DRAIN_MULTI_CELL_AT_LEAST_2 && i < s.n; i++)
        if (!s.nodes[i].cell || !s.nodes[i].cell[0]) {
            (void)snprintf(msg, size,
                           "request: nodes: MULTI_CELL_AT_LEAST_2 needs every node's "
                           "\"cell\" (%s has none)",
                           s.nodes[i].name);
            rc = MGO_EINVAL;
        }
    if (rc == MGO_OK && s.other_draining) {
        /* one drain per shard: never two standbys leaving the synchronous set at once */
        (void)snprintf(msg, size, "drain of %s waits: another drain is under way (%s)",
                       s.nodes[s.victim].name, s.other_draining);
        rc = MGO_EAGAIN;
    }
    if (rc == MGO_OK)
        rc = probe_shard(&s, deadline, msg, size);
    if (rc != MGO_OK)
        return rc;
    if (s.victim == s.primary) {
        (void)snprintf(msg, size,
                       "drain of primary %s: the planned switchover is not "
                       "implemented in this release",
                       s.nodes[s.victim].name);
        return MGO_EUNSUPPORTED;
    }
    if (primary_waits_on(&s.status[s.primary], s.nodes[s.victim].name)) {
        rc = leave_sync_set(&s, policy, deadline, msg, size);
        if (rc != MGO_OK)
            return rc;
        /* the reload takes effect asynchronously: confirm on the next call */
        *ret = step_result("draining", NULL, "left the synchronous set; confirming");
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    rc = waiters_released(&s, deadline, msg, size);
    if (rc != MGO_OK)
        return rc;
    *ret = step_result("draining", "acknowledged", "the primary no longer waits on it");
    return *ret ? MGO_OK : MGO_ENOMEM;
}

int32_t api_drain(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                  size_t *ret_len)
{
    char msg[768] = "";
    json_error_t jerr;
    json_t *out = NULL;
    int32_t rc;
    (void)p;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        if (!req && json_error_code(&jerr) == json_error_out_of_memory)
            return MGO_ENOMEM;
        (void)snprintf(msg, sizeof(msg), "request: a JSON object is required");
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    const json_t *ann = json_object_get(req, "annotations");
    const char *state = str(ann, RECONCILE_DRAIN_STATE);
    if (ann && !json_is_object(ann)) {
        (void)snprintf(msg, sizeof(msg), "request: \"annotations\" must be an object");
        rc = MGO_EINVAL;
    } else if (!state) {
        (void)snprintf(msg, sizeof(msg), "request: no drain was requested (annotation %s)",
                       RECONCILE_DRAIN_STATE);
        rc = MGO_EINVAL;
    } else if (strcmp(state, "requested") == 0) {
        /* persisted before any work: a resumed drain knows work may have begun */
        out = step_result(state, "draining", NULL);
        rc = out ? MGO_OK : MGO_ENOMEM;
    } else if (strcmp(state, "draining") == 0) {
        rc = step_draining(req, &out, msg, sizeof(msg));
    } else if (strcmp(state, "acknowledged") == 0) {
        /* The postgres driver has no pooler records: nothing to unregister. */
        out = step_result(state, "ready-for-deletion", NULL);
        rc = out ? MGO_OK : MGO_ENOMEM;
    } else if (strcmp(state, "ready-for-deletion") == 0) {
        out = step_result(state, NULL, "drained: the host may delete the instance");
        rc = out ? MGO_OK : MGO_ENOMEM;
    } else {
        (void)snprintf(msg, sizeof(msg), "request: unknown drain state \"%.64s\"", state);
        rc = MGO_EINVAL;
    }
    json_decref(req);
    if (rc != MGO_OK) {
        json_decref(out);
        if (rc == MGO_ENOMEM)
            return rc;
        return api_fail(rc, msg, ret_result, ret_len);
    }
    return api_finish(out, MGO_OK, ret_result, ret_len);
}
