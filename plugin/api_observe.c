/*
 * The observer (docs/abi.md "mgo_observe"): the live state of each shard checked against the
 * invariants of docs/spec/lifecycle.md, each violation with its evidence. Read-only: it probes
 * PostgreSQL (plugin/pg) and changes nothing.
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
#include "reconcile/reconcile.h"
#include "api.h"

#define OBSERVE_DEFAULT_DEADLINE_MS 10000
#define OBSERVE_MAX_NODES           32
#define OBSERVE_MAX_SHARDS          256

struct obs_node {
    const char *name, *cell, *conninfo, *drain, *requested_at;
    long index;
    int running; /* -1: the host did not say; 0, 1: what it says */
    int answered;
    char why[160]; /* why it did not answer */
    struct pg_node_status st;
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The shard's nodes, checked. MGO_OK, or MGO_EINVAL with msg. */
static int32_t read_shard(const json_t *sh, size_t k, struct obs_node *v, size_t *ret_n,
                          enum drain_policy *policy, char *msg, size_t size)
{
    const json_t *nodes = json_object_get(sh, "nodes"), *e;
    size_t i;
    const char *d = str(sh, "durability");
    if (!str(sh, "name") || strlen(str(sh, "name")) > 253 || !json_is_array(nodes) ||
        json_array_size(nodes) == 0 || json_array_size(nodes) > OBSERVE_MAX_NODES ||
        (api_opt(sh, "durability") && drain_policy_parse(d, policy) != 0)) {
        (void)snprintf(msg, size,
                       "request: shards[%zu]: needs \"name\" (a string of at most 253 bytes), "
                       "\"nodes\" (1..%d) and \"durability\" AT_LEAST_2 (default) or "
                       "MULTI_CELL_AT_LEAST_2",
                       k, OBSERVE_MAX_NODES);
        return MGO_EINVAL;
    }
    if (!api_opt(sh, "durability"))
        *policy = DRAIN_AT_LEAST_2;
    json_array_foreach (nodes, i, e) {
        if (!api_valid_node_name(str(e, "name")) || !str(e, "conninfo") ||
            strlen(str(e, "conninfo")) > 1024 || (api_opt(e, "cell") && !str(e, "cell")) ||
            (api_opt(e, "index") && !json_is_integer(api_opt(e, "index"))) ||
            (api_opt(e, "running") && !json_is_boolean(api_opt(e, "running"))) ||
            (api_opt(e, "drain") && (!str(e, "drain") || !api_known_drain_state(str(e, "drain")) ||
                                     plan_parse_rfc3339(str(e, "requested_at")) < 0)) ||
            (api_opt(e, "requested_at") && !str(e, "requested_at"))) {
            (void)snprintf(msg, size,
                           "request: shards[%zu].nodes[%zu]: needs \"name\" (1 to 63 printable "
                           "ASCII characters, no space) and \"conninfo\" (at most 1024 bytes); "
                           "\"cell\" a string, \"drain\" a drain state with its "
                           "\"requested_at\" (RFC 3339), \"index\" an integer, \"running\" "
                           "a boolean",
                           k, i);
            return MGO_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(v[j].name, str(e, "name")) == 0) {
                (void)snprintf(msg, size,
                               "request: shards[%zu].nodes[%zu]: the name \"%s\" appears twice", k,
                               i, str(e, "name"));
                return MGO_EINVAL;
            }
        if (*policy == DRAIN_MULTI_CELL_AT_LEAST_2 && !str(e, "cell")) {
            (void)snprintf(msg, size,
                           "request: shards[%zu].nodes[%zu]: MULTI_CELL_AT_LEAST_2 needs "
                           "\"cell\"",
                           k, i);
            return MGO_EINVAL;
        }
        v[i] = (struct obs_node){
            .name = str(e, "name"),
            .cell = str(e, "cell"),
            .conninfo = str(e, "conninfo"),
            .drain = str(e, "drain"),
            .requested_at = str(e, "requested_at"),
            .index = (long)json_integer_value(api_opt(e, "index")),
            .running = api_opt(e, "running") ? json_is_true(api_opt(e, "running")) : -1};
    }
    *ret_n = json_array_size(nodes);
    return MGO_OK;
}

static int add_violation(json_t *out, const char *invariant, const char *shard,
                         const char *instance, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add_violation(json_t *out, const char *invariant, const char *shard,
                         const char *instance, const char *fmt, ...)
{
    char text[768];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    core_utf8_sanitize(text);
    json_t *x =
        json_pack("{s:s, s:s, s:s}", "invariant", invariant, "shard", shard, "evidence", text);
    if (x && instance && json_object_set_new(x, "instance", json_string(instance))) {
        json_decref(x);
        return -1;
    }
    return x ? json_array_append_new(out, x) : -1;
}

/* Probe every node of a shard (also those the host says are stopped: a process it does not
 * know of is a violation too), each with a share of the time left over the `*left` nodes still
 * to probe in the call. MGO_OK; MGO_EAGAIN when the call's deadline passed (the observation is
 * incomplete, so nothing is concluded); MGO_EINVAL for a conninfo libpq rejects. */
static int32_t probe_nodes(const char *shard, struct obs_node *v, size_t n, size_t *left,
                           int64_t deadline, char *msg, size_t size)
{
    for (size_t i = 0; i < n; i++, (*left)--) {
        struct pg_conn *c = NULL;
        int64_t now = pg_now_ms(), share = (deadline - now) / (int64_t)(*left + 1);
        int64_t until = now + (share > 300 ? share : 300);
        if (until > deadline)
            until = deadline;
        v[i].answered = 0;
        int rc = pg_connect(v[i].conninfo, until, &c, v[i].why, sizeof(v[i].why));
        if (rc == 0)
            rc = pg_node_probe(c, until, &v[i].st, v[i].why, sizeof(v[i].why));
        pg_close(c);
        if (rc == 0) {
            v[i].answered = 1;
            continue;
        }
        if (rc == -ELIBACC) {
            (void)snprintf(msg, size, "postgres driver: libpq.so.5 cannot be loaded");
            return MGO_EUNSUPPORTED;
        }
        if (rc == -ENOMEM)
            return MGO_ENOMEM;
        if (rc == -EINVAL) {
            (void)snprintf(msg, size, "request: shard %s: node %s: %s", shard, v[i].name, v[i].why);
            return MGO_EINVAL;
        }
        if (pg_now_ms() >= deadline) {
            (void)snprintf(msg, size,
                           "observe: the deadline passed while probing %s of shard %s; nothing "
                           "is concluded (give more time)",
                           v[i].name, shard);
            return MGO_EAGAIN;
        }
        core_utf8_sanitize(v[i].why);
    }
    return MGO_OK;
}

static const struct pg_replica *replica_of(const struct pg_node_status *p, const char *name)
{
    for (size_t r = 0; r < p->nreplicas; r++)
        if (strcmp(p->replicas[r].name, name) == 0)
            return &p->replicas[r];
    return NULL;
}

/* One node's entry in the result and its checks against the primary at `pi` (SIZE_MAX: none).
 * Fills dn (the policy's view of it). 0, or -1 when out of memory. */
static int describe_node(const mgo_plugin *p, const char *shard, struct obs_node *v, size_t i,
                         size_t pi, struct drain_node *dn, json_t *list, json_t *violations)
{
    const struct pg_replica *r =
        pi != SIZE_MAX && i != pi ? replica_of(&v[pi].st, v[i].name) : NULL;
    int named =
        pi != SIZE_MAX && i != pi && drain_names_mention(v[pi].st.sync_standby_names, v[i].name);
    int streaming = v[i].answered && r && strcmp(r->state, "streaming") == 0;
    const char *role = !v[i].answered ? "down" : v[i].st.in_recovery ? "standby" : "primary";
    int bad = 0;
    json_t *e = json_pack("{s:s, s:s, s:b}", "name", v[i].name, "role", role, "synchronous", named);
    if (e && r) {
        /* no replay position yet (starting, catching up): the lag is unknown, not zero */
        json_t *lag = r->replay_lsn && v[pi].st.current_lsn >= r->replay_lsn
                          ? json_integer((json_int_t)(v[pi].st.current_lsn - r->replay_lsn))
                          : json_null();
        if (json_object_set_new(e, "state", json_string(r->state)) ||
            json_object_set_new(e, "sync_state", json_string(r->sync_state)) ||
            json_object_set_new(e, "lag_bytes", lag))
            bad = -1;
    }
    if (e && !v[i].answered && json_object_set_new(e, "error", json_string(v[i].why)))
        bad = -1;
    if (!e || json_array_append_new(list, e))
        return -1;
    if (named && !streaming)
        bad |= add_violation(violations, "sync-standby-streaming", shard, v[i].name,
                             "named in %s's synchronous_standby_names (%.300s) but %s%.160s",
                             v[pi].name, v[pi].st.sync_standby_names,
                             !v[i].answered ? "not answering: "
                             : r            ? "in state "
                                            : "not connected to it",
                             !v[i].answered ? v[i].why
                             : r            ? r->state
                                            : "");
    if (v[i].running == 1 && !v[i].answered)
        bad |= add_violation(violations, "process", shard, v[i].name,
                             "the host runs it, but it does not answer: %s", v[i].why);
    if (v[i].running == 0 && v[i].answered)
        bad |= add_violation(violations, "process", shard, v[i].name,
                             "the host says it is stopped, but it answers (a process the host "
                             "does not know of)");
    int64_t at = v[i].drain ? plan_parse_rfc3339(v[i].requested_at) : -1;
    if (at >= 0 && strcmp(v[i].drain, "ready-for-deletion") != 0 &&
        api_now_ms(p) - at > RECONCILE_DRAIN_DEADLINE_MS)
        bad |= add_violation(violations, "drain-deadline", shard, v[i].name,
                             "drain in state %s since %s, past its %d-minute deadline", v[i].drain,
                             v[i].requested_at, RECONCILE_DRAIN_DEADLINE_MS / 60000);
    *dn = (struct drain_node){.name = v[i].name,
                              .cell = v[i].cell,
                              .index = v[i].index,
                              .ready = v[i].answered,
                              .primary = i == pi,
                              .streaming = named && streaming,
                              .draining = v[i].drain && strcmp(v[i].drain, "requested") != 0};
    return bad ? -1 : 0;
}

/* Probe, check and describe one shard; violations appended to `violations`. */
static int32_t observe_shard(const mgo_plugin *p, const char *shard, struct obs_node *v, size_t n,
                             enum drain_policy policy, size_t *left, int64_t deadline,
                             json_t *violations, json_t **ret, char *msg, size_t size)
{
    char names[768] = "", ssn[PG_SYNC_NAMES_SIZE] = "";
    size_t pi = SIZE_MAX, primaries = 0, o = 0;
    int32_t rc = probe_nodes(shard, v, n, left, deadline, msg, size);
    if (rc != MGO_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (v[i].answered && !v[i].st.in_recovery) {
            pi = i;
            primaries++;
            o += (size_t)snprintf(names + o, o < sizeof(names) ? sizeof(names) - o : 0, "%s%s",
                                  o ? ", " : "", v[i].name);
            o = o < sizeof(names) ? o : sizeof(names) - 1;
        }
    int bad = 0;
    if (primaries == 0)
        bad |= add_violation(violations, "one-primary", shard, NULL,
                             "no instance answers as the primary");
    else if (primaries > 1)
        bad |= add_violation(violations, "one-primary", shard, NULL,
                             "%zu instances answer as primaries: %s", primaries, names);
    if (primaries != 1)
        pi = SIZE_MAX;
    struct drain_node dn[OBSERVE_MAX_NODES];
    json_t *list = json_array();
    for (size_t i = 0; i < n && list && !bad; i++)
        bad |= describe_node(p, shard, v, i, pi, &dn[i], list, violations);
    if (pi != SIZE_MAX && !bad) {
        char why[256] = "";
        (void)snprintf(ssn, sizeof(ssn), "%s", v[pi].st.sync_standby_names);
        core_utf8_sanitize(ssn);
        if (!ssn[0])
            bad |= add_violation(violations, "durability", shard, NULL,
                                 "synchronous replication is off: %s's "
                                 "synchronous_standby_names is empty",
                                 v[pi].name);
        else if (drain_policy_satisfied(dn, n, policy, pi, SIZE_MAX, why, sizeof(why)) != 1)
            bad |= add_violation(violations, "durability", shard, NULL,
                                 "the durability policy cannot be satisfied: %s", why);
    }
    *ret = list && !bad
               ? json_pack("{s:s, s:o, s:o}", "name", shard, "primary",
                           pi != SIZE_MAX ? json_string(v[pi].name) : json_null(), "nodes", list)
               : NULL;
    if (!*ret && list && bad)
        json_decref(list);
    if (*ret && pi != SIZE_MAX &&
        json_object_set_new(*ret, "synchronous_standby_names", json_string(ssn)))
        bad = 1;
    if (!*ret || bad) {
        json_decref(*ret);
        *ret = NULL;
        return MGO_ENOMEM;
    }
    return MGO_OK;
}

int32_t api_observe(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                    size_t *ret_len)
{
    char msg[768] = "";
    json_error_t jerr;
    int64_t deadline;
    int32_t rc = MGO_OK;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        if (!req && json_error_code(&jerr) == json_error_out_of_memory)
            return MGO_ENOMEM;
        (void)snprintf(msg, sizeof(msg), "request: a JSON object is required");
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    const json_t *shards = json_object_get(req, "shards");
    if (api_deadline_ms(req, "deadline_ms", OBSERVE_DEFAULT_DEADLINE_MS, &deadline, msg,
                        sizeof(msg)))
        rc = MGO_EINVAL;
    else if (!json_is_array(shards) || json_array_size(shards) > OBSERVE_MAX_SHARDS) {
        (void)snprintf(msg, sizeof(msg), "request: \"shards\" must be an array of at most %d",
                       OBSERVE_MAX_SHARDS);
        rc = MGO_EINVAL;
    }
    if (rc == MGO_OK)
        deadline += pg_now_ms();
    struct obs_node *v = calloc(OBSERVE_MAX_NODES, sizeof(*v));
    json_t *violations = json_array(), *out_shards = json_array();
    if (rc == MGO_OK && (!v || !violations || !out_shards))
        rc = MGO_ENOMEM;
    size_t k;
    const json_t *sh;
    /* every shard is checked before any is probed: bad input changes nothing and costs nothing */
    size_t left = 0; /* nodes still to probe in the call */
    json_array_foreach (shards, k, sh) {
        size_t n = 0;
        enum drain_policy policy;
        if (rc != MGO_OK)
            break;
        left += json_array_size(json_object_get(sh, "nodes"));
        if (!json_is_object(sh)) {
            (void)snprintf(msg, sizeof(msg), "request: shards[%zu] must be an object", k);
            rc = MGO_EINVAL;
        } else {
            rc = read_shard(sh, k, v, &n, &policy, msg, sizeof(msg));
        }
    }
    json_array_foreach (shards, k, sh) {
        size_t n = 0;
        enum drain_policy policy;
        json_t *one = NULL;
        if (rc != MGO_OK)
            break;
        rc = read_shard(sh, k, v, &n, &policy, msg, sizeof(msg));
        if (rc == MGO_OK)
            rc = observe_shard(p, str(sh, "name"), v, n, policy, &left, deadline, violations, &one,
                               msg, sizeof(msg));
        if (rc == MGO_OK && json_array_append_new(out_shards, one))
            rc = MGO_ENOMEM;
    }
    free(v);
    json_decref(req);
    if (rc != MGO_OK) {
        json_decref(violations);
        json_decref(out_shards);
        if (rc == MGO_ENOMEM)
            return rc;
        return api_fail(rc, msg, ret_result, ret_len);
    }
    json_t *out = json_pack("{s:b, s:o, s:o}", "ok", json_array_size(violations) == 0, "violations",
                            violations, "shards", out_shards);
    if (!out)
        return MGO_ENOMEM;
    return api_finish(out, MGO_OK, ret_result, ret_len);
}
