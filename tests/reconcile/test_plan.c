/*
 * The plan of one mgo_reconcile pass, pinned case by case against the contract: docs/abi.md
 * ("mgo_reconcile request and result") and docs/spec/lifecycle.md ("Scale down", "Draining an
 * instance", "Rolling update", "How a reconcile pass decides"). Every expectation here comes from
 * those documents, not from the implementation.
 *
 * Method: a small process-target cluster written here as JSON; a first pass with nothing observed
 * gives the desired objects; they are recorded as a host would record them (kind, name, uid,
 * resourceVersion, labels, annotations, ready, role, ports); the test then alters that record
 * (roles, readiness, drain annotations, spec hashes, extra or missing instances) and checks the
 * actions of the next pass. Every pass also goes through check_pass(), which holds the rules that
 * apply to all passes (an instance is deleted only in ready-for-deletion, an invalid cluster gets
 * only status and event actions, preconditions are the observed uid/resourceVersion, ...).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mgo/mgo.h"

#define DRAIN_STATE "drain.multigres.com/state"
#define DRAIN_AT    "drain.multigres.com/requested-at"
#define SPEC_HASH   "multigres.com/spec-hash"
#define NOW_MS      1795680000000LL /* 2026-11-26T08:00:00Z */
#define EARLIER     "2026-11-26T07:59:00Z"
#define POOL_PATH   "spec.databases[0].tablegroups[0].shards[0].spec.pools[main].replicasPerCell"

static mgo_plugin *plugin;
static int64_t clock_ms = NOW_MS;
static long next_rv = 100;
static long next_port = 17000;

static int64_t fixed_now(void *user)
{
    (void)user;
    return clock_ms;
}

static int group_setup(void **state)
{
    (void)state;
    mgo_host h = {.struct_size = sizeof(h), .abi_version = MGO_ABI_VERSION};
    h.now_ms = fixed_now;
    return mgo_open(&h, &plugin) == MGO_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mgo_close(plugin);
    return 0;
}

static int reset_clock(void **state)
{
    (void)state;
    clock_ms = NOW_MS;
    return 0;
}

/* ---- small JSON helpers --------------------------------------------------------------------- */

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int str_is(const json_t *o, const char *k, const char *want)
{
    const char *v = str(o, k);
    return v && want && strcmp(v, want) == 0;
}

static const char *dump(const json_t *j)
{
    /* Only called on the way to a failure: the string is not freed. */
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    return s ? s : "(null)";
}

static int ends_with_index(const char *name, int index)
{
    char suffix[16];
    (void)snprintf(suffix, sizeof(suffix), "-%d", index);
    size_t n = strlen(name), m = strlen(suffix);
    return n > m && strcmp(name + n - m, suffix) == 0;
}

/* ---- the cluster ---------------------------------------------------------------------------- */

/* One database/tablegroup/shard with one pool "main". two_cells: spec.cells is [z1, z2] and the
 * pool lists them in the other order, [z2, z1], so that "the order of spec.cells" and the pool's
 * order can be told apart. */
static json_t *make_cluster(int replicas, int two_cells, const char *when_scaled,
                            const char *when_deleted)
{
    char policy[160] = "";
    if (when_scaled || when_deleted)
        (void)snprintf(policy, sizeof(policy), "\"pvcDeletionPolicy\": {%s%s%s%s%s%s%s},",
                       when_scaled ? "\"whenScaled\": \"" : "", when_scaled ? when_scaled : "",
                       when_scaled ? "\"" : "", when_scaled && when_deleted ? ", " : "",
                       when_deleted ? "\"whenDeleted\": \"" : "", when_deleted ? when_deleted : "",
                       when_deleted ? "\"" : "");
    char text[2048];
    (void)snprintf(
        text, sizeof(text),
        "{\"apiVersion\": \"multigres.com/v1alpha1\", \"kind\": \"MultigresCluster\","
        " \"metadata\": {\"name\": \"tp\", \"namespace\": \"default\", \"generation\": 4},"
        " \"spec\": {\"postgresPasswordSecretRef\": {\"name\": \"pw\", \"key\": \"password\"},"
        " %s"
        " \"cells\": [{\"name\": \"z1\", \"zoneId\": \"use1-az1\"}%s],"
        " \"databases\": [{\"name\": \"postgres\", \"default\": true, \"tablegroups\": [{"
        "  \"name\": \"default\", \"default\": true, \"shards\": [{\"name\": \"0-inf\","
        "  \"spec\": {\"pools\": {\"main\": {\"type\": \"readWrite\", \"cells\": %s,"
        "  \"replicasPerCell\": %d, \"storage\": {\"size\": \"1Gi\"}}}}}]}]}]}}",
        policy, two_cells ? ", {\"name\": \"z2\", \"zoneId\": \"use1-az2\"}" : "",
        two_cells ? "[\"z2\", \"z1\"]" : "[\"z1\"]", replicas);
    json_error_t err;
    json_t *c = json_loads(text, 0, &err);
    if (!c)
        fail_msg("cluster JSON: %s: %s", err.text, text);
    return c;
}

static json_t *cluster(int replicas)
{
    return make_cluster(replicas, 0, NULL, NULL);
}

static json_t *pools_of(json_t *cl)
{
    json_t *db = json_array_get(json_object_get(json_object_get(cl, "spec"), "databases"), 0);
    json_t *tg = json_array_get(json_object_get(db, "tablegroups"), 0);
    json_t *sh = json_array_get(json_object_get(tg, "shards"), 0);
    return json_object_get(json_object_get(sh, "spec"), "pools");
}

/* A second pool like "main", in the same cells, with its own replicasPerCell. */
static void add_pool(json_t *cl, const char *name, int replicas)
{
    json_t *pool = json_deep_copy(json_object_get(pools_of(cl), "main"));
    json_object_set_new(pool, "replicasPerCell", json_integer(replicas));
    json_object_set_new(pools_of(cl), name, pool);
}

/* A cluster whose pools are exactly {a: ra, b: rb} (one cell). */
static json_t *two_pool_cluster(int ra, int rb)
{
    json_t *cl = cluster(ra);
    add_pool(cl, "a", ra);
    add_pool(cl, "b", rb);
    json_object_del(pools_of(cl), "main");
    return cl;
}

/* ---- one pass ------------------------------------------------------------------------------- */

static const char *const event_reasons[] = {"Created",          "Deleted",
                                            "DrainStarted",     "DrainCancelled",
                                            "PodUpdated",       "RollingUpdateStarted",
                                            "ScaleDownBlocked", "RollingUpdateBlocked",
                                            "PhaseChange",      "TopoRegistered",
                                            "TopologyWaiting",  "InvalidSpec",
                                            "DrainOverdue",     "ReloadRequested"};

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

static json_t *obs_find(const json_t *observed, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach (observed, i, o)
        if (str_is(o, "kind", kind) && str_is(o, "name", name))
            return o;
    return NULL;
}

/* Rules that hold for every pass (docs/abi.md and lifecycle.md), checked on every result. */
static void check_pass(const json_t *observed, const json_t *given_status, const json_t *result,
                       int32_t rc, int deleting)
{
    const json_t *actions = json_object_get(result, "actions");
    if (!json_is_array(actions))
        fail_msg("no actions array in the result: %s", dump(result));
    size_t i;
    const json_t *a;
    int object_actions = 0;
    json_array_foreach (actions, i, a) {
        const char *type = str(a, "type");
        if (!type)
            fail_msg("action %zu without a type: %s", i, dump(a));
        if (rc == MGO_EINVAL && strcmp(type, "status") != 0 && strcmp(type, "event") != 0 &&
            !(deleting && strcmp(type, "delete") == 0 && str_is(a, "reason", "cluster-deleted")))
            fail_msg("an invalid cluster got an object action (abi.md: \"only a status action "
                     "... and a warning event, never an object action\" unless it is being "
                     "deleted): %s",
                     dump(a));
        if (strcmp(type, "apply") == 0) {
            const json_t *obj = json_object_get(a, "object");
            const char *kind = str(obj, "kind");
            const char *name = str(json_object_get(obj, "metadata"), "name");
            object_actions = 1;
            /* a ConfigMap of the kubernetes target carries data; everything else a spec */
            if (!kind || !name ||
                !json_object_get(obj, strcmp(kind, "ConfigMap") == 0 ? "data" : "spec"))
                fail_msg("apply without a complete object: %s", dump(a));
            if (!str_is(a, "reason", "create") && !str_is(a, "reason", "update") &&
                !(str_is(a, "reason", "reload") && strcmp(kind, "Instance") == 0))
                fail_msg("apply reason is neither create nor update (nor reload of an Instance): "
                         "%s",
                         dump(a));
            if (deleting)
                fail_msg("apply while the cluster is being deleted: %s", dump(a));
            const json_t *o = obs_find(observed, kind, name);
            if (str_is(a, "reason", "create") && o)
                fail_msg("apply 'create' of an object that exists: %s", dump(a));
            /* Instances are replaced through a drain, never applied in place, except a reload
             * that leaves their spec (and its hash) as it is. */
            if (o && strcmp(kind, "Instance") == 0 &&
                !(str_is(a, "reason", "reload") &&
                  str_is(json_object_get(json_object_get(obj, "metadata"), "annotations"),
                         SPEC_HASH, str(json_object_get(o, "annotations"), SPEC_HASH))))
                fail_msg("existing instance applied in place (lifecycle.md: a changed instance "
                         "is drained and replaced): %s",
                         dump(a));
        } else if (strcmp(type, "delete") == 0) {
            object_actions = 1;
            const json_t *o = obs_find(observed, str(a, "kind"), str(a, "name"));
            if (!o)
                fail_msg("delete of an object that was not observed: %s", dump(a));
            if (!str_is(a, "uid", str(o, "uid")))
                fail_msg("delete without the observed uid as precondition: %s (observed %s)",
                         dump(a), dump(o));
            if (json_object_get(a, "resourceVersion") &&
                !str_is(a, "resourceVersion", str(o, "resourceVersion")))
                fail_msg("delete with a resourceVersion other than the observed one: %s", dump(a));
            static const char *const reasons[] = {"drained", "scaled-down", "not-in-spec",
                                                  "cluster-deleted"};
            if (!in_list(str(a, "reason"), reasons, 4))
                fail_msg("delete with an unknown reason: %s", dump(a));
            if (!deleting && str_is(a, "kind", "Instance") &&
                !str_is(json_object_get(o, "annotations"), DRAIN_STATE, "ready-for-deletion"))
                fail_msg("instance deleted without being in ready-for-deletion (lifecycle.md: "
                         "\"An instance is deleted only in ready-for-deletion\"): %s",
                         dump(a));
            if (deleting && !str_is(a, "reason", "cluster-deleted"))
                fail_msg("delete during cluster deletion with reason other than "
                         "cluster-deleted: %s",
                         dump(a));
        } else if (strcmp(type, "annotate") == 0) {
            object_actions = 1;
            const json_t *o = obs_find(observed, str(a, "kind"), str(a, "name"));
            if (!o)
                fail_msg("annotate of an object that was not observed: %s", dump(a));
            if (!json_is_object(json_object_get(a, "annotations")))
                fail_msg("annotate without annotations: %s", dump(a));
            if (!str_is(a, "resourceVersion", str(o, "resourceVersion")))
                fail_msg("annotate without the observed resourceVersion as precondition "
                         "(abi.md: \"uid and resourceVersion, when given, become the "
                         "preconditions of deletes and annotation writes\"): %s",
                         dump(a));
            if (deleting)
                fail_msg("annotate (a drain) while the cluster is deleted (lifecycle.md: "
                         "\"without drains\"): %s",
                         dump(a));
        } else if (strcmp(type, "event") == 0) {
            if (!str_is(a, "eventType", "Normal") && !str_is(a, "eventType", "Warning"))
                fail_msg("event with eventType neither Normal nor Warning: %s", dump(a));
            if (!in_list(str(a, "reason"), event_reasons,
                         sizeof(event_reasons) / sizeof(event_reasons[0])))
                fail_msg("event with a reason abi.md does not list: %s", dump(a));
        } else if (strcmp(type, "status") == 0) {
            const json_t *s = json_object_get(a, "status");
            if (!json_is_object(s))
                fail_msg("status action without a status: %s", dump(a));
            if (given_status && json_equal(s, given_status))
                fail_msg("status action although the status did not change (abi.md: "
                         "\"status appears only when the status differs from "
                         "observed.status\"): %s",
                         dump(a));
            if (!json_equal(s, json_object_get(result, "status")))
                fail_msg("status action %s differs from the result's status %s", dump(s),
                         dump(json_object_get(result, "status")));
        } else {
            fail_msg("unknown action type: %s", dump(a));
        }
    }
    const json_t *status = json_object_get(result, "status");
    if (!json_is_object(status))
        fail_msg("no status in the result: %s", dump(result));
    if (rc == MGO_OK && !deleting && str_is(status, "phase", "Healthy")) {
        if (object_actions)
            fail_msg("phase Healthy although the pass has work to do (lifecycle.md: \"Healthy "
                     "only when nothing is left to do\"): %s",
                     dump(actions));
        json_array_foreach (observed, i, a)
            if (str_is(a, "kind", "Instance") && !json_is_true(json_object_get(a, "ready")))
                fail_msg("phase Healthy although instance %s is not ready", str(a, "name"));
    }
}

/* One mgo_reconcile pass. observed may be NULL (nothing exists), status NULL (none published),
 * extra a JSON object text with more request fields, or NULL. */
static json_t *run_pass(const json_t *cl, const json_t *observed, const json_t *status,
                        const char *extra, int32_t want_rc)
{
    json_t *req = json_pack("{s:[O], s:s, s:{s:b}, s:b}", "objects", cl, "target", "process",
                            "topology", "register", 0, "include_desired", 1);
    assert_non_null(req);
    if (observed || status) {
        json_t *obs = json_object();
        if (observed)
            json_object_set(obs, "objects", (json_t *)observed);
        if (status)
            json_object_set(obs, "status", (json_t *)status);
        json_object_set_new(req, "observed", obs);
    }
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        assert_non_null(x);
        json_object_update(req, x);
        json_decref(x);
    }
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    int32_t rc = mgo_reconcile(plugin, text, strlen(text), &out, &len);
    free(text);
    json_t *x = json_object_get(req, "deleting");
    const json_t *meta = json_object_get(cl, "metadata");
    int deleting = json_is_true(x) || json_object_get(meta, "deletionTimestamp") != NULL;
    json_decref(req);
    assert_non_null(out);
    json_error_t err;
    json_t *result = json_loadb(out, len, 0, &err);
    mgo_free(out);
    if (!result)
        fail_msg("result is not JSON: %s", err.text);
    if (rc != want_rc)
        fail_msg("mgo_reconcile returned %d, expected %d: %s", rc, want_rc, dump(result));
    json_t *none = json_array();
    check_pass(observed ? observed : none, status, result, rc, deleting);
    json_decref(none);
    return result;
}

static json_t *actions_of(const json_t *result)
{
    return json_object_get(result, "actions");
}

/* The desired objects of a fresh pass (include_desired). */
static json_t *desired_of(const json_t *cl)
{
    json_t *r = run_pass(cl, NULL, NULL, NULL, MGO_OK);
    json_t *d = json_object_get(r, "desired");
    if (json_is_object(d))
        d = json_object_get(d, "items");
    if (!json_is_array(d) || json_array_size(d) == 0)
        fail_msg("no desired objects with include_desired: %s", dump(r));
    d = json_deep_copy(d);
    json_decref(r);
    return d;
}

/* ---- the host's record ---------------------------------------------------------------------- */

static json_t *record(const json_t *obj)
{
    const json_t *meta = json_object_get(obj, "metadata"), *spec = json_object_get(obj, "spec");
    const char *kind = str(obj, "kind"), *name = str(meta, "name");
    char uid[300], rv[32];
    (void)snprintf(uid, sizeof(uid), "uid-%s-%s", kind, name);
    (void)snprintf(rv, sizeof(rv), "%ld", next_rv++);
    json_t *labels = json_object_get(meta, "labels"), *ann = json_object_get(meta, "annotations");
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:b}", "kind", kind, "name", name, "uid", uid,
                  "resourceVersion", rv, "labels", labels ? json_deep_copy(labels) : json_object(),
                  "annotations", ann ? json_deep_copy(ann) : json_object(), "ready", 1);
    assert_non_null(e);
    if (strcmp(kind, "Instance") == 0) {
        /* render-process.md: bootstrap.role (older renders: spec.bootstrapRole); the role a
         * freshly bootstrapped shard has. observe() fills it in when the render has neither. */
        const char *role = str(json_object_get(obj, "bootstrap"), "role");
        if (!role)
            role = str(spec, "bootstrapRole");
        if (role)
            json_object_set_new(e, "role", json_string(role));
        json_object_set_new(e, "ports", json_pack("{s:O}", "port", json_object_get(spec, "port")));
    } else if (strcmp(kind, "Etcd") == 0) {
        json_object_set_new(e, "ports",
                            json_pack("{s:O, s:O}", "clientPort",
                                      json_object_get(spec, "clientPort"), "peerPort",
                                      json_object_get(spec, "peerPort")));
    }
    return e;
}

/* Everything desired, recorded as existing, ready, with the hashes it was rendered with. */
static json_t *observe(const json_t *desired)
{
    json_t *out = json_array();
    size_t i;
    const json_t *o;
    int primary = 0;
    json_array_foreach (desired, i, o)
        json_array_append_new(out, record(o));
    json_array_foreach (out, i, o)
        primary |= str_is(o, "role", "primary");
    /* Without a bootstrap role in the render: the shard's first instance in render order (the
     * first pool by name, its first cell, index 0) is the primary (render-process.md). */
    json_array_foreach (out, i, o)
        if (str_is(o, "kind", "Instance") && !json_object_get(o, "role")) {
            json_object_set_new((json_t *)o, "role", json_string(primary ? "standby" : "primary"));
            primary = 1;
        }
    return out;
}

static json_t *observed_cluster(const json_t *cl)
{
    json_t *d = desired_of(cl), *o = observe(d);
    json_decref(d);
    return o;
}

/* The observed object of kind ("Instance" or "Volume") in pool (NULL: any) and cell at index;
 * NULL if absent. */
static json_t *at_in(const json_t *observed, const char *kind, const char *pool, const char *cell,
                     int index)
{
    size_t i;
    json_t *o;
    json_array_foreach (observed, i, o) {
        const json_t *labels = json_object_get(o, "labels");
        if (str_is(o, "kind", kind) && str_is(labels, "multigres.com/cell", cell) &&
            (!pool || str_is(labels, "multigres.com/pool", pool)) &&
            ends_with_index(str(o, "name"), index))
            return o;
    }
    return NULL;
}

static json_t *at(const json_t *observed, const char *kind, const char *cell, int index)
{
    return at_in(observed, kind, NULL, cell, index);
}

static json_t *pinst(const json_t *observed, const char *pool, int index)
{
    json_t *o = at_in(observed, "Instance", pool, "z1", index);
    if (!o)
        fail_msg("no observed instance %d in pool %s", index, pool);
    return o;
}

static json_t *inst(const json_t *observed, int index)
{
    json_t *o = at(observed, "Instance", "z1", index);
    if (!o)
        fail_msg("no observed instance with index %d", index);
    return o;
}

static const char *inst_name(const json_t *observed, int index)
{
    return str(inst(observed, index), "name");
}

/* An extra instance and its volume at `index` in `cell`: copies of index 0's record with the
 * same labels and base name, a standby. */
static void add_extra_in(json_t *observed, const char *pool, const char *cell, int index)
{
    static const char *const kinds[] = {"Instance", "Volume"};
    for (size_t k = 0; k < 2; k++) {
        const json_t *zero = at_in(observed, kinds[k], pool, cell, 0);
        assert_non_null(zero);
        json_t *e = json_deep_copy(zero);
        const char *n0 = str(zero, "name");
        char name[300], uid[340], rv[32];
        (void)snprintf(name, sizeof(name), "%.*s%d", (int)(strlen(n0) - 1), n0, index);
        (void)snprintf(uid, sizeof(uid), "uid-%s-%s", kinds[k], name);
        (void)snprintf(rv, sizeof(rv), "%ld", next_rv++);
        json_object_set_new(e, "name", json_string(name));
        json_object_set_new(e, "uid", json_string(uid));
        json_object_set_new(e, "resourceVersion", json_string(rv));
        if (k == 0) {
            json_object_set_new(e, "role", json_string("standby"));
            json_object_set_new(e, "ports", json_pack("{s:I}", "port", (json_int_t)next_port++));
        }
        json_array_append_new(observed, e);
    }
}

static void add_extra(json_t *observed, const char *cell, int index)
{
    add_extra_in(observed, NULL, cell, index);
}

static void add_extras(json_t *observed, const char *cell, int from, int to)
{
    for (int i = from; i < to; i++)
        add_extra(observed, cell, i);
}

static void remove_obj(json_t *observed, const json_t *o)
{
    size_t i;
    json_t *x;
    json_array_foreach (observed, i, x)
        if (x == o) {
            json_array_remove(observed, i);
            return;
        }
    fail_msg("remove_obj: not observed");
}

static void set_ready(json_t *o, int ready)
{
    json_object_set_new(o, "ready", json_boolean(ready));
}

static void set_role(json_t *o, const char *role)
{
    json_object_set_new(o, "role", json_string(role));
}

static void set_drain(json_t *o, const char *state)
{
    json_t *ann = json_object_get(o, "annotations");
    json_object_set_new(ann, DRAIN_STATE, json_string(state));
    json_object_set_new(ann, DRAIN_AT, json_string(EARLIER));
}

static void set_drift(json_t *o)
{
    json_object_set_new(json_object_get(o, "annotations"), SPEC_HASH, json_string("deadbeef"));
}

/* ---- reading actions ------------------------------------------------------------------------ */

static size_t count_type(const json_t *actions, const char *type)
{
    size_t i, n = 0;
    const json_t *a;
    json_array_foreach (actions, i, a)
        n += str_is(a, "type", type);
    return n;
}

static const json_t *find_action(const json_t *actions, const char *type, const char *kind,
                                 const char *name, size_t *pos)
{
    size_t i;
    const json_t *a;
    json_array_foreach (actions, i, a) {
        const json_t *obj = json_object_get(a, "object");
        const char *k = obj ? str(obj, "kind") : str(a, "kind");
        const char *n = obj ? str(json_object_get(obj, "metadata"), "name") : str(a, "name");
        if (str_is(a, "type", type) && k && n && strcmp(k, kind) == 0 && strcmp(n, name) == 0) {
            if (pos)
                *pos = i;
            return a;
        }
    }
    return NULL;
}

/* The annotate actions that request a drain. */
static size_t drain_requests(const json_t *actions, const json_t **first)
{
    size_t i, n = 0;
    const json_t *a;
    if (first)
        *first = NULL;
    json_array_foreach (actions, i, a)
        if (str_is(a, "type", "annotate") &&
            str_is(json_object_get(a, "annotations"), DRAIN_STATE, "requested")) {
            if (first && !*first)
                *first = a;
            n++;
        }
    return n;
}

static const json_t *find_event(const json_t *actions, const char *reason, const char *type)
{
    size_t i;
    const json_t *a;
    json_array_foreach (actions, i, a)
        if (str_is(a, "type", "event") && str_is(a, "reason", reason) &&
            (!type || str_is(a, "eventType", type)))
            return a;
    return NULL;
}

static size_t count_deletes(const json_t *actions, const char *kind)
{
    size_t i, n = 0;
    const json_t *a;
    json_array_foreach (actions, i, a)
        n += str_is(a, "type", "delete") && str_is(a, "kind", kind);
    return n;
}

static const json_t *condition(const json_t *result, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach (json_object_get(json_object_get(result, "status"), "conditions"), i, c)
        if (str_is(c, "type", type))
            return c;
    return NULL;
}

static void expect_condition(const json_t *result, const char *type, const char *status)
{
    const json_t *c = condition(result, type);
    if (!c)
        fail_msg("no %s condition: %s", type, dump(json_object_get(result, "status")));
    if (!str_is(c, "status", status))
        fail_msg("condition %s is %s, expected %s: %s", type, str(c, "status"), status, dump(c));
}

static const char *phase(const json_t *result)
{
    const char *p = str(json_object_get(result, "status"), "phase");
    return p ? p : "(none)";
}

/* ---- time ----------------------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* s is an RFC 3339 UTC time equal to the host clock (to the millisecond if it has a fraction,
 * to the second otherwise). */
static void expect_now_rfc3339(const char *s)
{
    int y, mo, d, h, mi, se, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 ||
        n != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T')
        fail_msg("requested-at '%s' is not RFC 3339", s ? s : "(null)");
    const char *p = s + 19;
    int64_t ms = 0, scale = 100;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            fail_msg("requested-at '%s': empty fraction", s);
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += scale > 0 ? (*p - '0') * scale : 0;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        fail_msg("requested-at '%s' is not in UTC", s);
    int64_t t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + se;
    if (t * 1000 + ms != clock_ms - (s[19] == '.' ? 0 : clock_ms % 1000))
        fail_msg("requested-at '%s' is not the host clock (%lld ms)", s, (long long)clock_ms);
}

/* ---- shared expectations -------------------------------------------------------------------- */

/* Exactly one annotate, a drain request on `victim`, and no delete. */
static void expect_victim(const json_t *result, const json_t *observed, const char *victim)
{
    const json_t *actions = actions_of(result), *a = NULL;
    size_t n = drain_requests(actions, &a);
    if (n != 1 || count_type(actions, "annotate") != 1)
        fail_msg("expected exactly one annotate (a drain request on %s), got: %s", victim,
                 dump(actions));
    if (!str_is(a, "kind", "Instance") || !str_is(a, "name", victim))
        fail_msg("drain requested on %s, expected %s: %s", str(a, "name"), victim, dump(actions));
    expect_now_rfc3339(str(json_object_get(a, "annotations"), DRAIN_AT));
    if (count_type(actions, "delete") != 0)
        fail_msg("a delete in a pass that only requests a drain: %s", dump(actions));
    (void)observed;
}

static void expect_no_drain(const json_t *result, const char *why)
{
    const json_t *actions = actions_of(result);
    if (drain_requests(actions, NULL) != 0)
        fail_msg("%s: a drain was requested: %s", why, dump(actions));
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* The projected Secret sources of the pgBackRest certificate volume of a desired Pod. */
static const json_t *pgbackrest_sources(const json_t *desired)
{
    size_t i, j;
    const json_t *o, *v;
    json_array_foreach (desired, i, o) {
        if (!str_is(o, "kind", "Pod"))
            continue;
        json_array_foreach (json_object_get(json_object_get(o, "spec"), "volumes"), j, v) {
            if (str_is(v, "name", "pgbackrest-certs"))
                return json_object_get(json_object_get(v, "projected"), "sources");
        }
    }
    return NULL;
}

/* The kubernetes target's "certificates" (docs/abi.md): one pgBackRest certificate per shard
 * without backup.pgbackrestTLS, naming the two Secrets the pods mount, CN "pgbackrest", server
 * and client auth, owned by the cluster and labelled as mgo's; none with the user's own Secret,
 * none for a cluster being deleted, none for the process target. */
static void test_certificates(void **state)
{
    (void)state;
    static const char *const kube = "{\"target\": \"kubernetes\"}";
    json_t *cl = cluster(2);
    json_object_set_new(json_object_get(cl, "metadata"), "uid", json_string("uid-tp"));
    json_object_set_new(json_object_get(cl, "metadata"), "namespace", json_string("ns1"));
    json_t *r = run_pass(cl, NULL, NULL, kube, MGO_OK);
    const json_t *certs = json_object_get(r, "certificates");
    if (json_array_size(certs) != 1)
        fail_msg("expected one certificate: %s", dump(certs));
    const json_t *c = json_array_get(certs, 0);
    const json_t *sources = pgbackrest_sources(json_object_get(r, "desired"));
    const char *ca_name = str(json_object_get(json_object_get(c, "caSecret"), "metadata"), "name");
    const char *tls_name = str(json_object_get(json_object_get(c, "secret"), "metadata"), "name");
    const char *mounted_ca = str(json_object_get(json_array_get(sources, 0), "secret"), "name");
    const char *mounted_tls = str(json_object_get(json_array_get(sources, 1), "secret"), "name");
    if (!ca_name || !tls_name || !mounted_ca || !mounted_tls || strcmp(ca_name, mounted_ca) ||
        strcmp(tls_name, mounted_tls))
        fail_msg("certificate Secrets %s, %s are not the ones the pods mount: %s", ca_name,
                 tls_name, dump(sources));
    size_t n = strlen(ca_name), nt = strlen(tls_name);
    assert_true(n > 14 && strcmp(ca_name + n - 14, "-pgbackrest-ca") == 0);
    assert_true(nt > 15 && strcmp(tls_name + nt - 15, "-pgbackrest-tls") == 0);
    assert_true(n - 14 == nt - 15 && strncmp(ca_name, tls_name, n - 14) == 0); /* one shard's */
    assert_true(str_is(c, "purpose", "pgbackrest"));
    assert_true(str_is(c, "commonName", "pgbackrest"));
    assert_true(str_is(c, "organization", "Multigres"));
    json_t *usages = json_loads("[\"serverAuth\", \"clientAuth\"]", 0, NULL);
    assert_true(json_equal(json_object_get(c, "usages"), usages));
    json_decref(usages);
    json_t *dns = json_loads("[\"pgbackrest\", \"localhost\", \"pgbackrest.ns1.svc\","
                             " \"pgbackrest.ns1.svc.cluster.local\"]",
                             0, NULL);
    assert_true(json_equal(json_object_get(c, "dnsNames"), dns));
    json_decref(dns);
    assert_int_equal(json_integer_value(json_object_get(c, "validityDays")), 365);
    assert_int_equal(json_integer_value(json_object_get(c, "caValidityDays")), 3650);
    assert_int_equal(json_integer_value(json_object_get(c, "renewBeforeDays")), 30);
    static const char *const which[] = {"caSecret", "secret"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *sec = json_object_get(c, which[i]), *meta = json_object_get(sec, "metadata");
        const json_t *labels = json_object_get(meta, "labels");
        const json_t *ref = json_array_get(json_object_get(meta, "ownerReferences"), 0);
        assert_true(str_is(sec, "apiVersion", "v1") && str_is(sec, "kind", "Secret"));
        assert_true(str_is(sec, "type", "Opaque"));
        assert_null(json_object_get(sec, "data"));
        assert_true(str_is(meta, "namespace", "ns1"));
        assert_true(str_is(labels, "app.kubernetes.io/managed-by", "mgo"));
        assert_true(str_is(labels, "multigres.com/cluster", "tp"));
        assert_true(str_is(labels, "app.kubernetes.io/component", "pgbackrest-tls"));
        assert_true(str_is(labels, "multigres.com/shard", "0-inf"));
        assert_true(str_is(ref, "kind", "MultigresCluster") && str_is(ref, "name", "tp") &&
                    str_is(ref, "uid", "uid-tp") &&
                    json_is_true(json_object_get(ref, "controller")));
    }

    /* a host that reports the two Secrets among the existing objects (they carry the cluster's
     * and mgo's labels): no action on them (abi.md: Secrets are never acted on), on a pass that
     * would delete any other object not in the spec */
    json_t *obs = json_array();
    for (size_t i = 0; i < 2; i++) {
        const json_t *meta = json_object_get(json_object_get(c, which[i]), "metadata");
        json_array_append_new(obs, json_pack("{s:s, s:O, s:s, s:s, s:O}", "kind", "Secret", "name",
                                             json_object_get(meta, "name"), "uid", "u",
                                             "resourceVersion", "1", "labels",
                                             json_object_get(meta, "labels")));
    }
    json_t *r2 = run_pass(cl, obs, NULL, kube, MGO_OK);
    size_t k;
    const json_t *a;
    json_array_foreach (actions_of(r2), k, a) {
        const char *kind =
            str(a, "kind") ? str(a, "kind") : str(json_object_get(a, "object"), "kind");
        if (kind && strcmp(kind, "Secret") == 0)
            fail_msg("an action on a reported certificate Secret: %s", dump(a));
    }
    json_decref(r2);
    json_decref(obs);
    json_decref(r);

    /* the user's own Secret: nothing to generate */
    json_object_set_new(json_object_get(cl, "spec"), "backup",
                        json_pack("{s:s, s:{s:s}, s:{s:s}}", "type", "filesystem", "filesystem",
                                  "path", "/backups", "pgbackrestTLS", "secretName", "mine"));
    r = run_pass(cl, NULL, NULL, kube, MGO_OK);
    if (!json_is_array(json_object_get(r, "certificates")) ||
        json_array_size(json_object_get(r, "certificates")) != 0)
        fail_msg("pgbackrestTLS.secretName set: expected certificates [] (present, empty): %s",
                 dump(r));
    json_decref(r);
    json_object_del(json_object_get(cl, "spec"), "backup");

    /* two shards (two tablegroups): one certificate each, under different names */
    json_t *db = json_array_get(json_object_get(json_object_get(cl, "spec"), "databases"), 0);
    json_t *tgs = json_object_get(db, "tablegroups");
    json_t *second = json_deep_copy(json_array_get(tgs, 0));
    json_object_set_new(second, "name", json_string("orders"));
    json_object_set_new(second, "default", json_false());
    json_array_append_new(tgs, second);
    r = run_pass(cl, NULL, NULL, kube, MGO_OK);
    certs = json_object_get(r, "certificates");
    if (json_array_size(certs) != 2)
        fail_msg("two shards: expected two certificates: %s", dump(certs));
    const char *s0 = str(
                   json_object_get(json_object_get(json_array_get(certs, 0), "secret"), "metadata"),
                   "name"),
               *s1 = str(
                   json_object_get(json_object_get(json_array_get(certs, 1), "secret"), "metadata"),
                   "name");
    assert_true(s0 && s1 && strcmp(s0, s1) != 0);
    json_decref(r);
    json_array_remove(tgs, 1);

    /* an invalid cluster: none (only a status action and an event) */
    json_object_set_new(json_object_get(pools_of(cl), "main"), "replicasPerCell", json_integer(0));
    r = run_pass(cl, NULL, NULL, kube, MGO_EINVAL);
    assert_null(json_object_get(r, "certificates"));
    json_decref(r);
    json_object_set_new(json_object_get(pools_of(cl), "main"), "replicasPerCell", json_integer(2));

    r = run_pass(cl, NULL, NULL, "{\"target\": \"kubernetes\", \"deleting\": true}", MGO_OK);
    assert_null(json_object_get(r, "certificates"));
    json_decref(r);
    r = run_pass(cl, NULL, NULL, NULL, MGO_OK);
    assert_null(json_object_get(r, "certificates"));
    json_decref(r);
    json_decref(cl);
}

/* Fresh cluster: every desired object gets an apply (create), in one pass; nothing else. */
static void test_fresh(void **state)
{
    (void)state;
    json_t *cl = cluster(3);
    json_t *r = run_pass(cl, NULL, NULL, NULL, MGO_OK);
    json_t *actions = actions_of(r), *desired = json_object_get(r, "desired");
    size_t i;
    json_t *o;
    assert_true(json_array_size(desired) == 7); /* etcd + 3 x (instance, volume) */
    json_array_foreach (desired, i, o) {
        const char *kind = str(o, "kind"), *name = str(json_object_get(o, "metadata"), "name");
        const json_t *a = find_action(actions, "apply", kind, name, NULL);
        if (!a || !str_is(a, "reason", "create"))
            fail_msg("%s %s: no apply with reason create: %s", kind, name, dump(actions));
        if (!json_equal(json_object_get(a, "object"), o))
            fail_msg("apply of %s %s does not carry the desired object", kind, name);
    }
    assert_int_equal(count_type(actions, "apply"), json_array_size(desired));
    assert_int_equal(count_type(actions, "delete"), 0);
    assert_int_equal(count_type(actions, "annotate"), 0);
    assert_string_equal(phase(r), "Initializing");
    json_decref(r);
    json_decref(cl);
}

/* Converged: everything observed as rendered, ready, with a primary, and the status of the
 * previous pass given back: no action at all, phase Healthy; also once the clock has moved. */
static void test_converged(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *r1 = run_pass(cl, obs, NULL, NULL, MGO_OK);
    json_t *status = json_deep_copy(json_object_get(r1, "status"));
    assert_int_equal(count_type(actions_of(r1), "status"), 1);
    assert_int_equal(count_type(actions_of(r1), "apply") + count_type(actions_of(r1), "delete") +
                         count_type(actions_of(r1), "annotate"),
                     0);
    json_t *r2 = run_pass(cl, obs, status, NULL, MGO_OK);
    /* converged: nothing to come back for (abi.md: 0 = only on a change) */
    assert_int_equal(json_integer_value(json_object_get(r2, "requeue_after_ms")), 0);
    if (json_array_size(actions_of(r2)) != 0)
        fail_msg("converged cluster got actions (abi.md: \"a converged cluster gets no action "
                 "at all\"): %s",
                 dump(actions_of(r2)));
    assert_string_equal(phase(r2), "Healthy");
    clock_ms += 3600 * 1000;
    json_t *r3 = run_pass(cl, obs, status, NULL, MGO_OK);
    if (json_array_size(actions_of(r3)) != 0)
        fail_msg("converged cluster got actions an hour later: %s", dump(actions_of(r3)));
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    json_decref(status);
    json_decref(obs);
    json_decref(cl);
}

/* Scale-down 3 -> 2: the instance at index 2 gets the drain request, with the clock's time. */
static void test_scale_down_3_to_2(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *c2 = cluster(2);
    /* (a) the record of a 3-instance render */
    json_t *obs = observed_cluster(c3);
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    if (find_action(actions_of(r), "apply", "Instance", inst_name(obs, 2), NULL))
        fail_msg("the victim was applied");
    if (strcmp(phase(r), "Healthy") == 0)
        fail_msg("phase Healthy during a scale-down");
    expect_condition(r, "Progressing", "True");
    json_decref(r);
    json_decref(obs);
    /* (b) a 2-instance record with an extra instance at index 2, and a clock with milliseconds */
    clock_ms = NOW_MS + 1234;
    obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);
    json_decref(c3);
    json_decref(c2);
}

/* Victim rules: never the primary while another candidate exists; the primary when it is the
 * only candidate. */
static void test_scale_down_primary(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_role(inst(obs, 0), "standby");
    set_role(inst(obs, 3), "primary");
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* 12 -> 2 with the primary at 11: 10 (numeric), not 11 and not 9 */
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 12);
    set_role(inst(obs, 0), "standby");
    set_role(inst(obs, 11), "primary");
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 10));
    json_decref(r);
    json_decref(obs);

    /* the only candidate is the primary: it is the victim */
    obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    set_role(inst(obs, 0), "standby");
    set_role(inst(obs, 2), "primary");
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* Victim rules: a candidate that is not ready before one that is. */
static void test_scale_down_not_ready(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_ready(inst(obs, 2), 0);
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* 12 -> 2, not ready at 5 and 10: 10 (highest among the not-ready ones, numerically) */
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 12);
    set_ready(inst(obs, 5), 0);
    set_ready(inst(obs, 10), 0);
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 10));
    json_decref(r);
    json_decref(obs);

    /* a not-ready primary is still not chosen while another candidate exists */
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_role(inst(obs, 0), "standby");
    set_role(inst(obs, 2), "primary");
    set_ready(inst(obs, 2), 0);
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 3));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* Victim rules: the highest index in numeric order (-10 before -9). */
static void test_scale_down_numeric(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 12);
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 11));
    json_decref(r);
    json_decref(obs);

    json_t *c9 = cluster(9);
    obs = observed_cluster(c9);
    add_extras(obs, "z1", 9, 11);
    r = run_pass(c9, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 10));
    json_decref(r);
    json_decref(obs);
    json_decref(c9);
    json_decref(c2);
}

/* Victim rules: the same index in two cells: the cell listed last in spec.cells (z2), although
 * the pool lists z1 last. */
static void test_scale_down_cell_tie(void **state)
{
    (void)state;
    json_t *c1 = make_cluster(1, 1, NULL, NULL), *obs = observed_cluster(c1);
    add_extra(obs, "z1", 1);
    add_extra(obs, "z2", 1);
    json_t *r = run_pass(c1, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, str(at(obs, "Instance", "z2", 1), "name"));
    json_decref(r);
    json_decref(obs);
    json_decref(c1);
}

/* Health gate: a kept instance that is not ready blocks the drain; ScaleDownBlocked warning. */
static void test_scale_down_health_gate(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    set_ready(inst(obs, 1), 0);
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "a kept instance is not ready");
    if (!find_event(actions_of(r), "ScaleDownBlocked", "Warning"))
        fail_msg("no ScaleDownBlocked warning event: %s", dump(actions_of(r)));
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    json_decref(r);

    /* the primary (kept) is not ready: blocked too */
    set_ready(inst(obs, 1), 1);
    set_ready(inst(obs, 0), 0);
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "the kept primary is not ready");
    if (!find_event(actions_of(r), "ScaleDownBlocked", "Warning"))
        fail_msg("no ScaleDownBlocked warning event: %s", dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* One drain at a time per shard. */
static void test_one_drain_per_shard(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    /* (a) 4 -> 2 with index 3 already draining: no new request, no delete */
    add_extras(obs, "z1", 2, 4);
    set_drain(inst(obs, 3), "draining");
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "another instance is draining");
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    assert_int_equal(count_type(actions_of(r), "annotate"), 0);
    json_decref(r);
    json_decref(obs);

    /* (b) 5 -> 2, index 4 ready-for-deletion, index 3 draining: only index 4 is deleted */
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 5);
    set_drain(inst(obs, 4), "ready-for-deletion");
    set_drain(inst(obs, 3), "draining");
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "a drain is running and a deletion is due");
    assert_int_equal(count_deletes(actions_of(r), "Instance"), 1);
    assert_non_null(find_action(actions_of(r), "delete", "Instance", inst_name(obs, 4), NULL));
    json_decref(r);
    json_decref(obs);

    /* (c) 4 -> 2, index 3 ready-for-deletion: deleted; no new drain for index 2 in that pass */
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_drain(inst(obs, 3), "ready-for-deletion");
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "an instance is being deleted");
    assert_non_null(find_action(actions_of(r), "delete", "Instance", inst_name(obs, 3), NULL));
    json_decref(r);
    json_decref(obs);

    /* (d) 4 -> 3 with index 1 missing: it is created, and no drain starts in that pass */
    json_t *c3 = cluster(3);
    obs = observed_cluster(c3);
    add_extra(obs, "z1", 3);
    char name1[300];
    (void)snprintf(name1, sizeof(name1), "%s", inst_name(obs, 1));
    remove_obj(obs, inst(obs, 1));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    const json_t *a = find_action(actions_of(r), "apply", "Instance", name1, NULL);
    if (!a || !str_is(a, "reason", "create"))
        fail_msg("the missing instance %s was not created: %s", name1, dump(actions_of(r)));
    expect_no_drain(r, "an instance is being created");
    json_decref(r);
    json_decref(obs);
    json_decref(c3);
    json_decref(c2);
}

/* The delete of a drained instance and what happens to its volume afterwards. Returns through
 * *vol_deleted whether the volume was deleted in this pass or the next (with the instance gone). */
static void drained_then_gone(const json_t *cl, json_t *obs, int index, int *vol_deleted,
                              json_t **second)
{
    json_t *i = inst(obs, index), *v = at(obs, "Volume", "z1", index);
    char iname[300], vname[300];
    (void)snprintf(iname, sizeof(iname), "%s", str(i, "name"));
    (void)snprintf(vname, sizeof(vname), "%s", str(v, "name"));
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    size_t ipos = 0, vpos = 0;
    const json_t *d = find_action(actions_of(r), "delete", "Instance", iname, &ipos);
    if (!d)
        fail_msg("instance %s in ready-for-deletion was not deleted: %s", iname,
                 dump(actions_of(r)));
    if (!str_is(d, "uid", str(i, "uid")) || !str_is(d, "reason", "drained"))
        fail_msg("delete of a drained instance: want uid %s, reason drained: %s", str(i, "uid"),
                 dump(d));
    expect_no_drain(r, "an instance is being deleted");
    const json_t *vd = find_action(actions_of(r), "delete", "Volume", vname, &vpos);
    *vol_deleted = 0;
    if (vd) {
        *vol_deleted = 1;
        if (vpos < ipos)
            fail_msg("volume deleted before its instance: %s", dump(actions_of(r)));
        if (!str_is(vd, "reason", "scaled-down"))
            fail_msg("volume delete reason is not scaled-down: %s", dump(vd));
    }
    json_decref(r);
    /* the host has deleted the instance; the volume is still there unless deleted above */
    remove_obj(obs, inst(obs, index));
    if (vd)
        remove_obj(obs, at(obs, "Volume", "z1", index));
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    vd = find_action(actions_of(r), "delete", "Volume", vname, NULL);
    if (vd) {
        *vol_deleted = 1;
        if (!str_is(vd, "reason", "scaled-down"))
            fail_msg("volume delete reason is not scaled-down: %s", dump(vd));
    }
    *second = r;
}

static void test_ready_for_deletion(void **state)
{
    (void)state;
    static const char *const policies[] = {NULL, "Delete", "Retain"};
    for (size_t p = 0; p < 3; p++) {
        /* 3 -> 2: index 2 ready-for-deletion */
        json_t *cl = make_cluster(2, 0, policies[p], NULL), *obs = observed_cluster(cl), *r2;
        add_extra(obs, "z1", 2);
        set_drain(inst(obs, 2), "ready-for-deletion");
        set_role(inst(obs, 2), "standby");
        int vol_deleted;
        char iname[300];
        (void)snprintf(iname, sizeof(iname), "%s", inst_name(obs, 2));
        drained_then_gone(cl, obs, 2, &vol_deleted, &r2);
        int want = !policies[p] || strcmp(policies[p], "Delete") == 0;
        if (vol_deleted != want)
            fail_msg("whenScaled %s: volume of index 2 %s (lifecycle.md: \"Delete removes it, "
                     "Retain keeps it\")",
                     policies[p] ? policies[p] : "(default Delete)",
                     vol_deleted ? "deleted" : "kept");
        if (find_action(actions_of(r2), "apply", "Instance", iname, NULL))
            fail_msg("the scaled-down instance was created again: %s", dump(actions_of(r2)));
        json_decref(r2);
        json_decref(obs);
        json_decref(cl);

        /* index still wanted: a drifted instance (rolling update) and an undrifted one */
        for (int drift = 0; drift < 2; drift++) {
            cl = make_cluster(3, 0, policies[p], NULL);
            obs = observed_cluster(cl);
            if (drift)
                set_drift(inst(obs, 1));
            set_drain(inst(obs, 1), "ready-for-deletion");
            (void)snprintf(iname, sizeof(iname), "%s", inst_name(obs, 1));
            drained_then_gone(cl, obs, 1, &vol_deleted, &r2);
            if (vol_deleted)
                fail_msg("whenScaled %s, drift %d: the volume of a still-wanted index was "
                         "deleted (lifecycle.md: \"kept when the index is still wanted\")",
                         policies[p] ? policies[p] : "(default)", drift);
            const json_t *a = find_action(actions_of(r2), "apply", "Instance", iname, NULL);
            if (!a || !str_is(a, "reason", "create"))
                fail_msg("the replacement of %s was not created once it was gone: %s", iname,
                         dump(actions_of(r2)));
            json_decref(r2);
            json_decref(obs);
            json_decref(cl);
        }
    }
}

/* A drain still `requested` on an instance the spec wants as it is is cancelled; `draining` is
 * never cancelled; a request whose reason remains stays. */
static void test_stale_drain(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *obs = observed_cluster(c3);
    set_drain(inst(obs, 1), "requested");
    json_t *r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    const json_t *a = find_action(actions_of(r), "annotate", "Instance", inst_name(obs, 1), NULL);
    const json_t *ann = json_object_get(a, "annotations");
    if (!a || !json_is_null(json_object_get(ann, DRAIN_STATE)) ||
        !json_is_null(json_object_get(ann, DRAIN_AT)))
        fail_msg("the stale request on %s was not cancelled (both annotations null): %s",
                 inst_name(obs, 1), dump(actions_of(r)));
    const json_t *e = find_event(actions_of(r), "DrainCancelled", NULL);
    if (!e || !str_is(json_object_get(e, "regarding"), "name", inst_name(obs, 1)))
        fail_msg("no DrainCancelled event regarding %s: %s", inst_name(obs, 1),
                 dump(actions_of(r)));
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    json_decref(r);

    /* draining on the same, wanted instance: never cancelled */
    set_drain(inst(obs, 1), "draining");
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") != 0 ||
        find_event(actions_of(r), "DrainCancelled", NULL))
        fail_msg("a drain in `draining` was touched (lifecycle.md: \"From draining on, a drain "
                 "always completes\"): %s",
                 dump(actions_of(r)));
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    json_decref(r);

    /* acknowledged: not cancelled either */
    set_drain(inst(obs, 1), "acknowledged");
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") != 0)
        fail_msg("a drain in `acknowledged` was touched: %s", dump(actions_of(r)));
    json_decref(r);

    /* requested on a drifted instance: its reason remains, not cancelled */
    set_drain(inst(obs, 1), "requested");
    set_drift(inst(obs, 1));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") != 0 ||
        find_event(actions_of(r), "DrainCancelled", NULL))
        fail_msg("the request on a drifted instance was cancelled or another drain requested: "
                 "%s",
                 dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);

    /* requested on an index beyond replicasPerCell: still wanted away, not cancelled */
    json_t *c2 = cluster(2);
    obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_drain(inst(obs, 3), "requested");
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") != 0 ||
        find_event(actions_of(r), "DrainCancelled", NULL))
        fail_msg("a scale-down request was cancelled or a second drain requested: %s",
                 dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
    json_decref(c3);
}

/* Rolling update: one drain, standbys in numeric index order, the primary last. */
static void test_rolling_update(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *c12 = cluster(12), *obs;
    json_t *r;

    /* standbys 1 and 2 drifted: 1 */
    obs = observed_cluster(c3);
    set_drift(inst(obs, 1));
    set_drift(inst(obs, 2));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 1));
    expect_condition(r, "RollingUpdate", "True");
    if (strcmp(phase(r), "Healthy") == 0)
        fail_msg("phase Healthy during a rolling update");
    json_decref(r);
    json_decref(obs);

    /* 12 instances, 2 and 10 drifted: 2 (numeric, not lexical) */
    obs = observed_cluster(c12);
    set_drift(inst(obs, 10));
    set_drift(inst(obs, 2));
    r = run_pass(c12, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* primary 0, 9 and 10 drifted: 9, never the primary while a drifted standby remains */
    obs = observed_cluster(c12);
    set_drift(inst(obs, 0));
    set_drift(inst(obs, 10));
    set_drift(inst(obs, 9));
    r = run_pass(c12, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 9));
    json_decref(r);
    json_decref(obs);

    /* the primary at index 1 (after a switchover), 1 and 2 drifted: 2 */
    obs = observed_cluster(c3);
    set_role(inst(obs, 0), "standby");
    set_role(inst(obs, 1), "primary");
    set_drift(inst(obs, 1));
    set_drift(inst(obs, 2));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* only the primary drifted: it gets the drain */
    obs = observed_cluster(c3);
    set_drift(inst(obs, 0));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 0));
    json_decref(r);
    json_decref(obs);

    /* a drifted standby that is not ready goes before the ready ones */
    obs = observed_cluster(c3);
    set_drift(inst(obs, 1));
    set_drift(inst(obs, 2));
    set_ready(inst(obs, 2), 0);
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* no spec-hash at all counts as drifted */
    obs = observed_cluster(c3);
    json_object_del(json_object_get(inst(obs, 2), "annotations"), SPEC_HASH);
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);

    /* health gate: another instance not ready pauses the update */
    obs = observed_cluster(c3);
    set_drift(inst(obs, 1));
    set_ready(inst(obs, 2), 0);
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "rolling update with another instance not ready");
    json_decref(r);
    json_decref(obs);

    /* one drain at a time: 1 is draining, 2 drifted too: nothing new */
    obs = observed_cluster(c3);
    set_drift(inst(obs, 1));
    set_drift(inst(obs, 2));
    set_drain(inst(obs, 1), "draining");
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "rolling update with a drain running");
    assert_int_equal(count_type(actions_of(r), "annotate"), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(c3);
    json_decref(c12);

    /* two cells: the cell first in spec.cells (z1) first, although the pool lists z2 first */
    json_t *c2 = make_cluster(2, 1, NULL, NULL);
    obs = observed_cluster(c2);
    set_drift(at(obs, "Instance", "z2", 1));
    set_drift(at(obs, "Instance", "z1", 1));
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, str(at(obs, "Instance", "z1", 1), "name"));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* An invalid cluster: MGO_EINVAL, only status and event actions, Degraded/InvalidSpec with the
 * field path, a warning event. */
static void test_invalid(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *obs = observed_cluster(c3), *c0 = cluster(0);
    set_drain(inst(obs, 2), "ready-for-deletion"); /* would be deleted if the spec were valid */
    json_t *r = run_pass(c0, obs, NULL, NULL, MGO_EINVAL);
    if (count_type(actions_of(r), "status") != 1)
        fail_msg("invalid cluster: expected one status action: %s", dump(actions_of(r)));
    const json_t *c = condition(r, "Degraded");
    if (!c || !str_is(c, "status", "True") || !str_is(c, "reason", "InvalidSpec") ||
        !str(c, "message") || !strstr(str(c, "message"), POOL_PATH))
        fail_msg("invalid cluster: no Degraded condition (True, InvalidSpec, naming %s): %s",
                 POOL_PATH, dump(json_object_get(r, "status")));
    if (!find_event(actions_of(r), "InvalidSpec", "Warning"))
        fail_msg("invalid cluster: no InvalidSpec warning event: %s", dump(actions_of(r)));
    if (!json_is_array(json_object_get(r, "objects")))
        fail_msg("invalid cluster: no validate entries under objects: %s", dump(r));
    /* the same again with that status given back: still nothing but status/event, and no status
     * write of an unchanged status (checked in check_pass) */
    json_t *st = json_deep_copy(json_object_get(r, "status"));
    json_decref(r);
    r = run_pass(c0, obs, st, NULL, MGO_EINVAL);
    json_decref(st);
    json_decref(r);
    json_decref(c0);
    json_decref(obs);
    json_decref(c3);
}

/* Deleting the cluster: every object at once except the volumes, which go by whenDeleted once
 * no instance is left (lifecycle.md: "Once no instance runs any more, volumes follow
 * whenDeleted"); ReadyForDeletion. */
static void test_deletion(void **state)
{
    (void)state;
    static const char *const extras[] = {"{\"deleting\": true}", NULL};
    for (size_t x = 0; x < 2; x++) {
        json_t *cl = make_cluster(3, 0, NULL, NULL);
        json_t *obs = observed_cluster(cl);
        if (!extras[x])
            json_object_set_new(json_object_get(cl, "metadata"), "deletionTimestamp",
                                json_string("2026-11-26T07:00:00Z"));
        set_drain(inst(obs, 1), "requested"); /* no drain finishes first */
        json_t *foreign = json_deep_copy(inst(obs, 2));
        json_object_set_new(foreign, "name", json_string("someone-elses"));
        json_object_del(json_object_get(foreign, "labels"), "app.kubernetes.io/managed-by");
        json_array_append_new(obs, foreign);
        json_t *r = run_pass(cl, obs, NULL, extras[x], MGO_OK);
        size_t i;
        const json_t *o;
        json_array_foreach (obs, i, o) {
            size_t opos = 0;
            const json_t *d =
                find_action(actions_of(r), "delete", str(o, "kind"), str(o, "name"), &opos);
            if (o == foreign) {
                if (d)
                    fail_msg("an object not managed by mgo was deleted: %s", dump(d));
                continue;
            }
            if (str_is(o, "kind", "Volume")) {
                if (d)
                    fail_msg("deleting: volume %s deleted while instances remain: %s",
                             str(o, "name"), dump(actions_of(r)));
                continue;
            }
            if (!d)
                fail_msg("deleting: %s %s not deleted in the pass (lifecycle.md: \"Every object "
                         "is deleted at once\"): %s",
                         str(o, "kind"), str(o, "name"), dump(actions_of(r)));
            (void)opos;
        }
        assert_int_equal(count_type(actions_of(r), "annotate"), 0);
        expect_condition(r, "ReadyForDeletion", "False");
        json_decref(r);
        /* the instances gone, the volumes (whenDeleted Delete, the default) go */
        json_t *vols = json_array();
        json_array_foreach (obs, i, o)
            if (str_is(o, "kind", "Volume"))
                json_array_append(vols, (json_t *)o);
        r = run_pass(cl, vols, NULL, extras[x], MGO_OK);
        assert_int_equal(count_deletes(actions_of(r), "Volume"), json_array_size(vols));
        expect_condition(r, "ReadyForDeletion", "False");
        json_decref(r);
        json_decref(vols);
        /* everything gone: ready for deletion */
        json_t *none = json_array();
        r = run_pass(cl, none, NULL, extras[x], MGO_OK);
        assert_int_equal(count_type(actions_of(r), "delete"), 0);
        expect_condition(r, "ReadyForDeletion", "True");
        json_decref(r);
        json_decref(none);
        json_decref(obs);
        json_decref(cl);
    }
}

/* Deleting the cluster with whenDeleted Retain: volumes stay; only they left ->
 * ReadyForDeletion True. */
static void test_deletion_retain(void **state)
{
    (void)state;
    json_t *cl = make_cluster(3, 0, NULL, "Retain"), *obs = observed_cluster(cl);
    json_t *r = run_pass(cl, obs, NULL, "{\"deleting\": true}", MGO_OK);
    size_t i;
    const json_t *o;
    json_array_foreach (obs, i, o) {
        const json_t *d =
            find_action(actions_of(r), "delete", str(o, "kind"), str(o, "name"), NULL);
        if (str_is(o, "kind", "Volume") && d)
            fail_msg("whenDeleted Retain: volume deleted: %s", dump(d));
        if (!str_is(o, "kind", "Volume") && !d)
            fail_msg("deleting: %s %s not deleted: %s", str(o, "kind"), str(o, "name"),
                     dump(actions_of(r)));
    }
    expect_condition(r, "ReadyForDeletion", "False");
    json_decref(r);
    json_t *vols = json_array();
    json_array_foreach (obs, i, o)
        if (str_is(o, "kind", "Volume"))
            json_array_append(vols, (json_t *)o);
    r = run_pass(cl, vols, NULL, "{\"deleting\": true}", MGO_OK);
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    expect_condition(r, "ReadyForDeletion", "True");
    json_decref(r);
    json_decref(vols);
    json_decref(obs);
    json_decref(cl);
}

/* Objects other than instances: created when missing, applied again on a different hash,
 * deleted when nothing renders them any more; objects not managed by mgo are ignored. */
static void test_other_objects(void **state)
{
    (void)state;
    json_t *cl = cluster(2), *d = desired_of(cl), *obs = observe(d);
    json_t *etcd = obs_find(obs, "Etcd", "tp-global-topo");
    assert_non_null(etcd);
    set_drift(etcd);
    json_t *old = json_deep_copy(etcd);
    json_object_set_new(old, "name", json_string("tp-old-topo"));
    json_object_set_new(old, "uid", json_string("uid-old"));
    json_object_del(old, "ports");
    json_array_append_new(obs, old);
    json_t *foreign = json_deep_copy(etcd);
    json_object_set_new(foreign, "name", json_string("tp-foreign"));
    json_object_del(json_object_get(foreign, "labels"), "app.kubernetes.io/managed-by");
    json_object_del(foreign, "ports");
    json_array_append_new(obs, foreign);
    json_t *other = json_deep_copy(etcd);
    json_object_set_new(other, "name", json_string("other-global-topo"));
    json_object_set_new(json_object_get(other, "labels"), "multigres.com/cluster",
                        json_string("other"));
    json_object_del(other, "ports");
    json_array_append_new(obs, other);
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    const json_t *a = find_action(actions_of(r), "apply", "Etcd", "tp-global-topo", NULL);
    if (!a || !str_is(a, "reason", "update") ||
        !json_equal(json_object_get(a, "object"), json_array_get(d, 0)))
        fail_msg("the drifted Etcd was not applied again (update, desired object): %s",
                 dump(actions_of(r)));
    a = find_action(actions_of(r), "delete", "Etcd", "tp-old-topo", NULL);
    if (!a || !str_is(a, "reason", "not-in-spec"))
        fail_msg("an object nothing renders was not deleted (not-in-spec): %s",
                 dump(actions_of(r)));
    if (find_action(actions_of(r), "delete", "Etcd", "tp-foreign", NULL) ||
        find_action(actions_of(r), "delete", "Etcd", "other-global-topo", NULL))
        fail_msg("an object of another owner was deleted: %s", dump(actions_of(r)));
    assert_int_equal(count_type(actions_of(r), "delete"), 1);
    json_decref(r);

    /* a drifted Volume is applied again; a missing Volume of an existing instance is created */
    json_t *v0 = at(obs, "Volume", "z1", 0), *v1 = at(obs, "Volume", "z1", 1);
    char v1name[300];
    (void)snprintf(v1name, sizeof(v1name), "%s", str(v1, "name"));
    set_drift(v0);
    remove_obj(obs, v1);
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    a = find_action(actions_of(r), "apply", "Volume", str(v0, "name"), NULL);
    if (!a || !str_is(a, "reason", "update"))
        fail_msg("the drifted Volume was not applied again: %s", dump(actions_of(r)));
    a = find_action(actions_of(r), "apply", "Volume", v1name, NULL);
    if (!a || !str_is(a, "reason", "create"))
        fail_msg("the missing Volume was not created: %s", dump(actions_of(r)));
    json_decref(r);

    /* the Etcd missing: created */
    remove_obj(obs, etcd);
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    a = find_action(actions_of(r), "apply", "Etcd", "tp-global-topo", NULL);
    if (!a || !str_is(a, "reason", "create"))
        fail_msg("the missing Etcd was not created: %s", dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);
    json_decref(d);
    json_decref(cl);
}

/* Status: the conditions, observedGeneration, the phase, and when a status action appears. */
static void test_status(void **state)
{
    (void)state;
    static const char *const types[] = {"Available", "Progressing", "Degraded", "RollingUpdate"};
    json_t *cl = cluster(3), *obs = observed_cluster(cl);

    /* generation from the request */
    json_t *r = run_pass(cl, obs, NULL, "{\"generation\": 7}", MGO_OK);
    const json_t *st = json_object_get(r, "status");
    if (json_integer_value(json_object_get(st, "observedGeneration")) != 7)
        fail_msg("status.observedGeneration is not the request's generation 7: %s", dump(st));
    for (size_t i = 0; i < 4; i++) {
        const json_t *c = condition(r, types[i]);
        if (!c)
            fail_msg("no %s condition: %s", types[i], dump(st));
        if (json_integer_value(json_object_get(c, "observedGeneration")) != 7)
            fail_msg("condition %s without observedGeneration 7: %s", types[i], dump(c));
        if (!str(c, "reason") || !str(c, "lastTransitionTime") ||
            (!str_is(c, "status", "True") && !str_is(c, "status", "False")))
            fail_msg("condition %s is not a Kubernetes condition: %s", types[i], dump(c));
    }
    if (condition(r, "TopologyRegistered"))
        fail_msg("TopologyRegistered without a registration attempt: %s", dump(st));
    if (condition(r, "ReadyForDeletion"))
        fail_msg("ReadyForDeletion while not deleting: %s", dump(st));
    assert_string_equal(phase(r), "Healthy");
    expect_condition(r, "Available", "True");
    expect_condition(r, "Progressing", "False");
    expect_condition(r, "Degraded", "False");
    expect_condition(r, "RollingUpdate", "False");
    json_decref(r);

    /* generation from metadata.generation */
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    json_t *healthy = json_deep_copy(json_object_get(r, "status"));
    if (json_integer_value(json_object_get(healthy, "observedGeneration")) != 4)
        fail_msg("status.observedGeneration is not metadata.generation 4: %s", dump(healthy));
    json_decref(r);

    /* a standby not ready: Progressing, still Available (the primary is ready) */
    set_ready(inst(obs, 2), 0);
    r = run_pass(cl, obs, healthy, NULL, MGO_OK);
    assert_string_equal(phase(r), "Progressing");
    expect_condition(r, "Progressing", "True");
    expect_condition(r, "Available", "True");
    if (count_type(actions_of(r), "status") != 1)
        fail_msg("the status changed but no status action: %s", dump(actions_of(r)));
    json_t *progressing = json_deep_copy(json_object_get(r, "status"));
    json_decref(r);
    /* the same again with that status given back: no status action */
    r = run_pass(cl, obs, progressing, NULL, MGO_OK);
    assert_int_equal(count_type(actions_of(r), "status"), 0);
    json_decref(r);
    /* ready again, the old Progressing status observed: a status action, back to Healthy */
    set_ready(inst(obs, 2), 1);
    r = run_pass(cl, obs, progressing, NULL, MGO_OK);
    assert_string_equal(phase(r), "Healthy");
    assert_int_equal(count_type(actions_of(r), "status"), 1);
    json_decref(r);

    /* an hour later one condition changes: the unchanged ones keep their lastTransitionTime */
    clock_ms += 3600 * 1000;
    set_ready(inst(obs, 2), 0);
    r = run_pass(cl, obs, healthy, NULL, MGO_OK);
    for (size_t i = 0; i < 4; i++) {
        const json_t *before = NULL, *c = condition(r, types[i]);
        size_t j;
        const json_t *x;
        json_array_foreach (json_object_get(healthy, "conditions"), j, x)
            if (str_is(x, "type", types[i]))
                before = x;
        assert_non_null(before);
        assert_non_null(c);
        int same = str_is(c, "status", str(before, "status"));
        int kept = str_is(c, "lastTransitionTime", str(before, "lastTransitionTime"));
        if (same != kept)
            fail_msg("condition %s: status %s -> %s but lastTransitionTime %s -> %s", types[i],
                     str(before, "status"), str(c, "status"), str(before, "lastTransitionTime"),
                     str(c, "lastTransitionTime"));
    }
    json_decref(r);
    set_ready(inst(obs, 2), 1);
    clock_ms = NOW_MS;

    /* the primary not ready (roles known): not Available */
    set_ready(inst(obs, 0), 0);
    r = run_pass(cl, obs, healthy, NULL, MGO_OK);
    expect_condition(r, "Available", "False");
    if (strcmp(phase(r), "Healthy") == 0)
        fail_msg("Healthy with the primary not ready");
    json_decref(r);
    set_ready(inst(obs, 0), 1);

    /* no roles reported, every instance ready: Available */
    {
        json_t *noroles = json_deep_copy(obs);
        size_t i;
        json_t *o;
        json_array_foreach (noroles, i, o)
            json_object_del(o, "role");
        r = run_pass(cl, noroles, NULL, NULL, MGO_OK);
        expect_condition(r, "Available", "True");
        json_decref(r);
        json_decref(noroles);
    }

    /* a failed instance: Degraded */
    json_object_set_new(inst(obs, 1), "failed", json_true());
    set_ready(inst(obs, 1), 0);
    r = run_pass(cl, obs, healthy, NULL, MGO_OK);
    expect_condition(r, "Degraded", "True");
    assert_string_equal(phase(r), "Degraded");
    json_decref(r);
    json_object_del(inst(obs, 1), "failed");
    set_ready(inst(obs, 1), 1);

    /* nothing ready yet: Initializing */
    {
        json_t *none_ready = json_deep_copy(obs);
        size_t i;
        json_t *o;
        json_array_foreach (none_ready, i, o)
            if (str_is(o, "kind", "Instance"))
                set_ready(o, 0);
        r = run_pass(cl, none_ready, NULL, NULL, MGO_OK);
        assert_string_equal(phase(r), "Initializing");
        expect_condition(r, "Available", "False");
        json_decref(r);
        json_decref(none_ready);
    }

    /* a drifted instance: RollingUpdate True, not Healthy */
    set_drift(inst(obs, 2));
    r = run_pass(cl, obs, healthy, NULL, MGO_OK);
    expect_condition(r, "RollingUpdate", "True");
    if (strcmp(phase(r), "Healthy") == 0)
        fail_msg("Healthy with a drifted instance");
    json_decref(r);

    json_decref(progressing);
    json_decref(healthy);
    json_decref(obs);
    json_decref(cl);
}

/* Scale-down and rolling update across two pools of one shard: one drain per shard, the health
 * gate spans pools, rolling order is numeric index first, then pool name. */
static void test_two_pools(void **state)
{
    (void)state;
    /* both pools 3 -> 2: exactly one drain request in the shard */
    json_t *cl = two_pool_cluster(2, 2), *obs = observed_cluster(cl);
    add_extra_in(obs, "a", "z1", 2);
    add_extra_in(obs, "b", "z1", 2);
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    const json_t *a = NULL;
    if (drain_requests(actions_of(r), &a) != 1)
        fail_msg("two pools scaling down: expected one drain request in the shard: %s",
                 dump(actions_of(r)));
    /* lifecycle.md: on a tie, "then the pool whose name sorts last" */
    if (!str_is(a, "name", str(pinst(obs, "b", 2), "name")))
        fail_msg("drain requested on %s, not pool b's instance 2", str(a, "name"));
    json_decref(r);
    json_decref(obs);
    json_decref(cl);

    /* pool a 3 -> 2; pool b (kept, 2) has an instance not ready: blocked */
    cl = two_pool_cluster(2, 2);
    obs = observed_cluster(cl);
    add_extra_in(obs, "a", "z1", 2);
    set_ready(pinst(obs, "b", 1), 0);
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "an instance of another pool of the shard is not ready");
    if (!find_event(actions_of(r), "ScaleDownBlocked", "Warning"))
        fail_msg("no ScaleDownBlocked warning event: %s", dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);
    json_decref(cl);

    /* rolling update: b-1 and a-2 drifted -> b-1 (index first); b-1 and a-1 -> a-1 (pool name) */
    cl = two_pool_cluster(3, 3);
    obs = observed_cluster(cl);
    if (!str_is(pinst(obs, "a", 0), "role", "primary"))
        fail_msg("the bootstrap primary is not a-0: %s", dump(obs));
    set_drift(pinst(obs, "b", 1));
    set_drift(pinst(obs, "a", 2));
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, str(pinst(obs, "b", 1), "name"));
    json_decref(r);
    set_drift(pinst(obs, "a", 1));
    r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, str(pinst(obs, "a", 1), "name"));
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* A pending scale-down goes before a rolling update. */
static void test_scale_down_before_update(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *obs = observed_cluster(c3);
    add_extra(obs, "z1", 3);
    set_drift(inst(obs, 1));
    json_t *r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 3));
    json_decref(r);
    json_decref(obs);
    json_decref(c3);
}

/* An instance whose deletion has begun (observed `deleting`) counts as "being deleted": no new
 * drain starts in the shard. */
static void test_deleting_blocks_drain(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extras(obs, "z1", 2, 4);
    set_drain(inst(obs, 3), "ready-for-deletion");
    json_object_set_new(inst(obs, 3), "deleting", json_true());
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_no_drain(r, "an instance is being deleted");
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* The drain deadline never forces a state forward. */
static void test_drain_deadline(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    set_drain(inst(obs, 2), "draining");
    json_object_set_new(json_object_get(inst(obs, 2), "annotations"), DRAIN_AT,
                        json_string("2026-11-26T07:40:00Z")); /* 20 minutes ago */
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") != 0 || count_type(actions_of(r), "delete") != 0)
        fail_msg("an overdue drain was forced forward (lifecycle.md: \"The deadline never "
                 "forces a state forward\"): %s",
                 dump(actions_of(r)));
    /* reported: a warning event and the Progressing reason (abi.md) */
    if (!find_event(actions_of(r), "DrainOverdue", "Warning"))
        fail_msg("an overdue drain was not reported: %s", dump(actions_of(r)));
    assert_true(str_is(condition(r, "Progressing"), "reason", "DrainOverdue"));
    assert_int_equal(json_integer_value(json_object_get(r, "requeue_after_ms")), 2000);
    json_decref(r);
    /* four minutes old: not overdue yet */
    json_object_set_new(json_object_get(inst(obs, 2), "annotations"), DRAIN_AT,
                        json_string("2026-11-26T07:56:00Z"));
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    assert_null(find_event(actions_of(r), "DrainOverdue", NULL));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* A shard with a single instance: its update drains the primary (replaced in place). */
static void test_single_instance_update(void **state)
{
    (void)state;
    json_t *c1 = cluster(1), *obs = observed_cluster(c1);
    set_drift(inst(obs, 0));
    json_t *r = run_pass(c1, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 0));
    json_decref(r);
    json_decref(obs);
    json_decref(c1);
}

/* Status figures of a converged cluster: one pools entry per pool and cell, one instanceStatus
 * entry per instance. */
static void test_status_figures(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    const json_t *st = json_object_get(r, "status");
    if (json_integer_value(json_object_get(st, "instances")) != 3 ||
        json_integer_value(json_object_get(st, "readyInstances")) != 3)
        fail_msg("converged: instances/readyInstances are not 3/3: %s", dump(st));
    const json_t *pools = json_object_get(st, "pools");
    if (json_array_size(pools) != 1)
        fail_msg("one pool in one cell: pools has %zu entries: %s", json_array_size(pools),
                 dump(pools));
    static const char *const figures[] = {"desired", "existing", "ready", "updated"};
    for (size_t i = 0; i < 4; i++)
        if (json_integer_value(json_object_get(json_array_get(pools, 0), figures[i])) != 3)
            fail_msg("converged pool: %s is not 3: %s", figures[i], dump(pools));
    const json_t *is = json_object_get(st, "instanceStatus");
    if (json_array_size(is) != 3)
        fail_msg("instanceStatus has %zu entries, expected 3: %s", json_array_size(is), dump(is));
    size_t i;
    const json_t *e;
    json_array_foreach (is, i, e) {
        static const char *const fields[] = {"name", "index", "exists", "ready", "updated", "role"};
        for (size_t f = 0; f < 6; f++)
            if (!json_object_get(e, fields[f]))
                fail_msg("instanceStatus entry without %s: %s", fields[f], dump(e));
        if (!json_is_true(json_object_get(e, "exists")) ||
            !json_is_true(json_object_get(e, "ready")) ||
            !json_is_true(json_object_get(e, "updated")))
            fail_msg("converged instance not exists/ready/updated: %s", dump(e));
        const json_t *o = obs_find(obs, "Instance", str(e, "name"));
        if (!o || !str_is(e, "role", str(o, "role")) ||
            !ends_with_index(str(o, "name"), (int)json_integer_value(json_object_get(e, "index"))))
            fail_msg("instanceStatus entry does not match the observed instance: %s", dump(e));
    }
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* Scale-up: every missing instance (and volume) is created in one pass, also while a drain runs. */
static void test_scale_up(void **state)
{
    (void)state;
    json_t *c5 = cluster(5), *d5 = desired_of(c5), *c3 = cluster(3), *obs = observed_cluster(c3);
    json_t *r = run_pass(c5, obs, NULL, NULL, MGO_OK);
    size_t i;
    const json_t *o;
    json_array_foreach (d5, i, o) {
        const char *kind = str(o, "kind"), *name = str(json_object_get(o, "metadata"), "name");
        const json_t *a = find_action(actions_of(r), "apply", kind, name, NULL);
        int idx3 = ends_with_index(name, 3) || ends_with_index(name, 4);
        if (strcmp(kind, "Etcd") != 0 && idx3 && (!a || !str_is(a, "reason", "create")))
            fail_msg("scale-up 3 -> 5: %s %s not created in the pass: %s", kind, name,
                     dump(actions_of(r)));
    }
    expect_no_drain(r, "scale-up");
    json_decref(r);
    /* a drain running (index 1 drifted, draining) and index 2 missing: 2 is still created */
    json_decref(obs);
    obs = observed_cluster(c3);
    set_drift(inst(obs, 1));
    set_drain(inst(obs, 1), "draining");
    char name2[300];
    (void)snprintf(name2, sizeof(name2), "%s", inst_name(obs, 2));
    remove_obj(obs, inst(obs, 2));
    r = run_pass(c3, obs, NULL, NULL, MGO_OK);
    const json_t *a = find_action(actions_of(r), "apply", "Instance", name2, NULL);
    if (!a || !str_is(a, "reason", "create"))
        fail_msg("a missing instance was not created while a drain runs (lifecycle.md: \"every "
                 "missing instance is created, all in the same pass\"): %s",
                 dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);
    json_decref(c3);
    json_decref(d5);
    json_decref(c5);
}

/* Objects mgo does not manage are never touched, even where an instance would be a candidate;
 * a failed candidate is drained, not deleted. */
static void test_unmanaged_and_failed(void **state)
{
    (void)state;
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    json_object_del(json_object_get(inst(obs, 2), "labels"), "app.kubernetes.io/managed-by");
    json_object_del(json_object_get(at(obs, "Volume", "z1", 2), "labels"),
                    "app.kubernetes.io/managed-by");
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    if (count_type(actions_of(r), "annotate") || count_type(actions_of(r), "delete"))
        fail_msg("an object without managed-by=mgo was touched: %s", dump(actions_of(r)));
    json_decref(r);
    json_decref(obs);

    obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    json_object_set_new(inst(obs, 2), "failed", json_true());
    set_ready(inst(obs, 2), 0);
    r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    expect_victim(r, obs, inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A host without now_ms: the system clock (mgo.h: "NULL: the system clock"). */
static void test_system_clock(void **state)
{
    (void)state;
    mgo_plugin *own = NULL, *saved = plugin;
    mgo_host h = {.struct_size = sizeof(h), .abi_version = MGO_ABI_VERSION};
    assert_int_equal(mgo_open(&h, &own), MGO_OK);
    json_t *c2 = cluster(2), *obs = observed_cluster(c2);
    add_extra(obs, "z1", 2);
    plugin = own;
    int64_t before = wall_ms();
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    int64_t after = wall_ms();
    plugin = saved;
    mgo_close(own);
    const json_t *a = NULL;
    assert_int_equal(drain_requests(actions_of(r), &a), 1);
    const char *at_s = str(json_object_get(a, "annotations"), DRAIN_AT);
    clock_ms = before - before % 1000;
    int ok = 0;
    for (; clock_ms <= after + 1000 && !ok; clock_ms += 1000) {
        char want[32];
        time_t t = (time_t)(clock_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        (void)strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        ok = at_s && strncmp(at_s, want, 19) == 0;
    }
    if (!ok)
        fail_msg("host without now_ms: requested-at %s is not the system time (mgo.h: \"NULL: "
                 "the system clock\")",
                 at_s ? at_s : "(null)");
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
}

/* ---- review findings, each pinned -------------------------------------------------------- */

/* A cluster whose object carries a deletionTimestamp is being deleted: its pass must not try to
 * register topology (the registration default is on; no etcd answers here, so an attempt would
 * show up as a "topology" field). */
static void test_deleting_does_not_register(void **state)
{
    (void)state;
    json_t *cl = cluster(2), *obs = observed_cluster(cl);
    json_object_set_new(json_object_get(cl, "metadata"), "deletionTimestamp",
                        json_string("2026-11-26T07:00:00Z"));
    json_t *req = json_pack("{s:[O], s:s, s:{s:O}}", "objects", cl, "target", "process", "observed",
                            "objects", obs);
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    assert_int_equal(mgo_reconcile(plugin, text, strlen(text), &out, &len), MGO_OK);
    json_t *result = json_loadb(out, len, 0, NULL);
    assert_null(json_object_get(result, "topology"));
    assert_null(condition(result, "TopologyRegistered"));
    assert_true(count_deletes(actions_of(result), "Instance") > 0);
    mgo_free(out);
    free(text);
    json_decref(result);
    json_decref(req);
    json_decref(obs);
    json_decref(cl);
}

/* Observed text is untrusted: an over-long name, or a lastTransitionTime that is not a time,
 * must neither fail the pass nor be copied into the status. */
static void test_untrusted_observed_text(void **state)
{
    (void)state;
    json_t *cl = cluster(2), *obs = observed_cluster(cl);
    char long_name[700];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    json_t *odd = json_deep_copy(inst(obs, 0));
    json_object_set_new(odd, "name", json_string(long_name));
    json_array_append_new(obs, odd);
    json_t *r1 = run_pass(cl, obs, NULL, NULL, MGO_OK);
    json_t *status = json_deep_copy(json_object_get(r1, "status"));
    size_t i;
    json_t *c;
    json_array_foreach (json_object_get(status, "conditions"), i, c)
        json_object_set_new(c, "lastTransitionTime",
                            json_string("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"));
    json_t *r2 = run_pass(cl, obs, status, NULL, MGO_OK);
    json_array_foreach (json_object_get(json_object_get(r2, "status"), "conditions"), i, c)
        expect_now_rfc3339(str(c, "lastTransitionTime"));
    json_decref(r1);
    json_decref(r2);
    json_decref(status);
    json_decref(obs);
    json_decref(cl);
}

/* A requested-at that is not a time (negative fields) never makes a drain overdue. */
static void test_malformed_requested_at(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *x = inst(obs, 2);
    set_drain(x, "draining");
    json_object_set_new(json_object_get(x, "annotations"), "drain.multigres.com/requested-at",
                        json_string("2020-01-01T-1:-1:-1Z"));
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    assert_null(find_event(actions_of(r), "DrainOverdue", NULL));
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* ---- audit findings, each pinned ------------------------------------------------------------ */

/* "deletionTimestamp": null is no deletion (client libraries write unset fields as null). */
static void test_null_deletion_timestamp(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_object_set_new(json_object_get(cl, "metadata"), "deletionTimestamp", json_null());
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    assert_int_equal(count_type(actions_of(r), "delete"), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* A pod of a workload (multiorch) carries the shard's labels but is no instance: it is never
 * drained, and it does not block the shard's own steps. */
static void test_workload_pod_is_no_instance(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *pod = json_deep_copy(inst(obs, 0));
    json_object_set_new(pod, "kind", json_string("Pod"));
    json_object_set_new(pod, "name", json_string("tp-multiorch-z1-abc-xyz"));
    json_object_set_new(json_object_get(pod, "labels"), "app.kubernetes.io/component",
                        json_string("multiorch"));
    json_object_del(pod, "role");
    json_array_append_new(obs, pod);
    set_drift(inst(obs, 2));
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    const json_t *first = NULL;
    assert_int_equal(drain_requests(actions_of(r), &first), 1);
    assert_string_equal(str(first, "name"), inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* A reload-class change reaches each instance of the process target as an in-place apply. */
static void test_reload_class_change(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *pools = pools_of(cl);
    json_t *spec = json_object_get(
        json_array_get(
            json_object_get(
                json_array_get(
                    json_object_get(
                        json_array_get(json_object_get(json_object_get(cl, "spec"), "databases"),
                                       0),
                        "tablegroups"),
                    0),
                "shards"),
            0),
        "spec");
    (void)pools;
    json_object_set_new(spec, "postgresConfig", json_pack("{s:s}", "work_mem", "16MB"));
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    size_t i, reloads = 0;
    const json_t *a;
    json_array_foreach (actions_of(r), i, a)
        reloads += str_is(a, "type", "apply") && str_is(a, "reason", "reload");
    assert_int_equal(reloads, 3);
    assert_int_equal(drain_requests(actions_of(r), NULL), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* The volume of an instance that still runs is never deleted, whatever its labels lost. */
static void test_volume_of_running_instance_kept(void **state)
{
    (void)state;
    json_t *c3 = make_cluster(3, 0, "Delete", NULL), *obs = observed_cluster(c3);
    json_t *c2 = make_cluster(2, 0, "Delete", NULL);
    json_object_del(json_object_get(inst(obs, 2), "labels"), "multigres.com/shard");
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    assert_int_equal(count_deletes(actions_of(r), "Volume"), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
    json_decref(c3);
}

/* Deleting a cluster whose spec no longer validates still deletes it, keeping the volumes. */
static void test_delete_invalid_cluster(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *bad = cluster(0);
    json_t *r = run_pass(bad, obs, NULL, "{\"deleting\": true}", MGO_EINVAL);
    assert_int_equal(count_deletes(actions_of(r), "Instance"), 3);
    assert_int_equal(count_deletes(actions_of(r), "Volume"), 0);
    json_decref(r);
    json_decref(bad);
    json_decref(obs);
    json_decref(cl);
}

/* Observed entries of the wrong shape are a request error, not state. */
static void test_malformed_observed_entry(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_object_set_new(inst(obs, 1), "ready", json_string("true"));
    json_t *req = json_pack("{s:[O], s:s, s:{s:O}, s:{s:b}}", "objects", cl, "target", "process",
                            "observed", "objects", obs, "topology", "register", 0);
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    assert_int_equal(mgo_reconcile(plugin, text, strlen(text), &out, &len), MGO_EINVAL);
    assert_non_null(strstr(out, "request: observed.objects["));
    mgo_free(out);
    free(text);
    json_decref(req);
    json_decref(obs);
    json_decref(cl);
}

/* Ports belong to Instances: a Volume of the same name with other "ports" moves nothing. */
static void test_ports_only_from_instances(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    size_t i;
    json_t *o;
    json_array_foreach (obs, i, o)
        if (str_is(o, "kind", "Volume"))
            json_object_set_new(o, "ports", json_object());
    json_t *r = run_pass(cl, obs, NULL, "{\"process\": {\"port_base\": 40000}}", MGO_OK);
    assert_int_equal(count_type(actions_of(r), "apply"), 0);
    assert_int_equal(drain_requests(actions_of(r), NULL), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* The primary is never the victim while another candidate exists, even beside an instance
 * with no index. */
static void test_primary_never_before_other_candidates(void **state)
{
    (void)state;
    json_t *c3 = cluster(3), *obs = observed_cluster(c3), *c2 = cluster(2);
    json_t *odd = json_deep_copy(inst(obs, 0));
    json_object_set_new(odd, "name", json_string("tp-not-an-index"));
    json_object_set_new(odd, "uid", json_string("uid-odd"));
    set_role(inst(obs, 0), "standby");
    set_role(odd, "primary");
    json_array_append_new(obs, odd);
    json_t *r = run_pass(c2, obs, NULL, NULL, MGO_OK);
    const json_t *first = NULL;
    assert_int_equal(drain_requests(actions_of(r), &first), 1);
    assert_string_equal(str(first, "name"), inst_name(obs, 2));
    json_decref(r);
    json_decref(obs);
    json_decref(c2);
    json_decref(c3);
}

/* Two instances reported primary: Degraded, and no planned step. */
static void test_two_primaries(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    set_role(inst(obs, 1), "primary");
    set_drift(inst(obs, 2));
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    assert_int_equal(drain_requests(actions_of(r), NULL), 0);
    expect_condition(r, "Degraded", "True");
    assert_string_equal(phase(r), "Degraded");
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

/* A drifted primary that is not ready does not skip the health gate. */
static void test_unready_primary_keeps_gate(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *obs = observed_cluster(cl);
    json_t *primary = NULL;
    size_t i;
    json_t *o;
    json_array_foreach (obs, i, o)
        if (str_is(o, "role", "primary"))
            primary = o;
    assert_non_null(primary);
    set_drift(primary);
    set_ready(primary, 0);
    json_array_foreach (obs, i, o)
        if (str_is(o, "kind", "Instance") && o != primary) {
            set_ready(o, 0);
            break;
        }
    json_t *r = run_pass(cl, obs, NULL, NULL, MGO_OK);
    assert_int_equal(drain_requests(actions_of(r), NULL), 0);
    json_decref(r);
    json_decref(obs);
    json_decref(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_null_deletion_timestamp, reset_clock),
        cmocka_unit_test_setup(test_workload_pod_is_no_instance, reset_clock),
        cmocka_unit_test_setup(test_reload_class_change, reset_clock),
        cmocka_unit_test_setup(test_volume_of_running_instance_kept, reset_clock),
        cmocka_unit_test_setup(test_delete_invalid_cluster, reset_clock),
        cmocka_unit_test_setup(test_malformed_observed_entry, reset_clock),
        cmocka_unit_test_setup(test_ports_only_from_instances, reset_clock),
        cmocka_unit_test_setup(test_primary_never_before_other_candidates, reset_clock),
        cmocka_unit_test_setup(test_two_primaries, reset_clock),
        cmocka_unit_test_setup(test_unready_primary_keeps_gate, reset_clock),
        cmocka_unit_test_setup(test_deleting_does_not_register, reset_clock),
        cmocka_unit_test_setup(test_untrusted_observed_text, reset_clock),
        cmocka_unit_test_setup(test_malformed_requested_at, reset_clock),
        cmocka_unit_test_setup(test_fresh, reset_clock),
        cmocka_unit_test_setup(test_converged, reset_clock),
        cmocka_unit_test_setup(test_scale_down_3_to_2, reset_clock),
        cmocka_unit_test_setup(test_scale_down_primary, reset_clock),
        cmocka_unit_test_setup(test_scale_down_not_ready, reset_clock),
        cmocka_unit_test_setup(test_scale_down_numeric, reset_clock),
        cmocka_unit_test_setup(test_scale_down_cell_tie, reset_clock),
        cmocka_unit_test_setup(test_scale_down_health_gate, reset_clock),
        cmocka_unit_test_setup(test_one_drain_per_shard, reset_clock),
        cmocka_unit_test_setup(test_ready_for_deletion, reset_clock),
        cmocka_unit_test_setup(test_stale_drain, reset_clock),
        cmocka_unit_test_setup(test_rolling_update, reset_clock),
        cmocka_unit_test_setup(test_invalid, reset_clock),
        cmocka_unit_test_setup(test_deletion, reset_clock),
        cmocka_unit_test_setup(test_deletion_retain, reset_clock),
        cmocka_unit_test_setup(test_two_pools, reset_clock),
        cmocka_unit_test_setup(test_scale_down_before_update, reset_clock),
        cmocka_unit_test_setup(test_deleting_blocks_drain, reset_clock),
        cmocka_unit_test_setup(test_drain_deadline, reset_clock),
        cmocka_unit_test_setup(test_single_instance_update, reset_clock),
        cmocka_unit_test_setup(test_status_figures, reset_clock),
        cmocka_unit_test_setup(test_scale_up, reset_clock),
        cmocka_unit_test_setup(test_unmanaged_and_failed, reset_clock),
        cmocka_unit_test_setup(test_system_clock, reset_clock),
        cmocka_unit_test_setup(test_other_objects, reset_clock),
        cmocka_unit_test_setup(test_status, reset_clock),
        cmocka_unit_test_setup(test_certificates, reset_clock),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
