/*
 * mgo_scale, pinned case by case against its contract: docs/abi.md ("mgo_scale", "Common request
 * fields"), docs/spec/lifecycle.md ("Scale up", "Scale down", "Planning a change of size", "How a
 * reconcile pass decides"), docs/spec/templates.md and docs/spec/errors.md. Every expectation
 * comes from those documents, never from the plan's own output.
 *
 * Instance names are not computed here: they are taken from what the render targets produce for
 * the cluster as given (a mgo_reconcile pass with include_desired), as "<name of index 0 without
 * its -0>-<index>" (lifecycle.md: "The index ends the instance's name"). The order of drains is
 * then checked twice: against the rules written out by hand, and against the reconcile pass
 * itself, carried out step by step over the changed spec.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgo/mgo.h"

#define DRAIN_STATE "drain.multigres.com/state"
#define DRAIN_AT    "drain.multigres.com/requested-at"
#define SHARD0      "spec.databases[0].tablegroups[0].shards[0]"

typedef int32_t (*hook_fn)(mgo_plugin *, const char *, size_t, char **, size_t *);

static mgo_plugin *plugin;
static int resolve_calls;
static long next_rv = 100;

static int32_t counting_resolve(void *user, const char *address, size_t address_len,
                                int64_t timeout_ms, char *buf, size_t buf_size, size_t *ret_len)
{
    (void)user;
    (void)address;
    (void)address_len;
    (void)timeout_ms;
    (void)buf;
    (void)buf_size;
    (void)ret_len;
    resolve_calls++;
    return MGO_ENOTFOUND;
}

static int64_t fixed_now(void *user)
{
    (void)user;
    return 1795680000000LL; /* 2026-11-26T08:00:00Z */
}

static int group_setup(void **state)
{
    (void)state;
    mgo_host h = {.struct_size = sizeof(h), .abi_version = MGO_ABI_VERSION};
    h.now_ms = fixed_now;
    h.resolve = counting_resolve;
    return mgo_open(&h, &plugin) == MGO_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mgo_close(plugin);
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

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fail_msg("test JSON: %s: %s", err.text, text);
    return j;
}

/* ---- clusters ------------------------------------------------------------------------------- */

/* One database, tablegroup and shard (the v1alpha1 shape) whose inline spec has pool "main" of
 * `replicas` per cell in cell z1. */
static json_t *cluster(int replicas)
{
    char text[2048];
    (void)snprintf(
        text, sizeof(text),
        "{\"apiVersion\": \"multigres.com/v1alpha1\", \"kind\": \"MultigresCluster\","
        " \"metadata\": {\"name\": \"sc\", \"namespace\": \"default\"},"
        " \"spec\": {\"postgresPasswordSecretRef\": {\"name\": \"pw\", \"key\": \"password\"},"
        " \"cells\": [{\"name\": \"z1\", \"zoneId\": \"use1-az1\"}],"
        " \"databases\": [{\"name\": \"postgres\", \"default\": true, \"tablegroups\": [{"
        "  \"name\": \"default\", \"default\": true, \"shards\": [{\"name\": \"0-inf\","
        "  \"spec\": {\"pools\": {\"main\": {\"type\": \"readWrite\", \"cells\": [\"z1\"],"
        "  \"replicasPerCell\": %d, \"storage\": {\"size\": \"1Gi\"}}}}}]}]}]}}",
        replicas);
    return parse(text);
}

static json_t *shard0(json_t *cl)
{
    json_t *db = json_array_get(json_object_get(json_object_get(cl, "spec"), "databases"), 0);
    json_t *tg = json_array_get(json_object_get(db, "tablegroups"), 0);
    return json_array_get(json_object_get(tg, "shards"), 0);
}

static json_t *pool_of(json_t *cl, const char *pool)
{
    return json_object_get(json_object_get(json_object_get(shard0(cl), "spec"), "pools"), pool);
}

/* spec.cells becomes [z1, z2] and the pool lists them in the other order, [z2, z1], so that
 * "the cell listed last in spec.cells" and the pool's own order can be told apart. */
static json_t *two_cells(json_t *cl)
{
    json_array_append_new(json_object_get(json_object_get(cl, "spec"), "cells"),
                          json_pack("{s:s, s:s}", "name", "z2", "zoneId", "use1-az2"));
    json_object_set_new(pool_of(cl, "main"), "cells", json_pack("[s, s]", "z2", "z1"));
    return cl;
}

/* A second pool like "main", named `name`, with its own size. */
static void add_pool(json_t *cl, const char *name, int replicas)
{
    json_t *pool = json_deep_copy(pool_of(cl, "main"));
    json_object_set_new(pool, "replicasPerCell", json_integer(replicas));
    json_object_set_new(json_object_get(json_object_get(shard0(cl), "spec"), "pools"), name, pool);
}

/* A second tablegroup `name` (validation allows up to 20, each with its one shard 0-inf and its
 * own pools) whose shard has a pool "main" of `replicas` per cell in z1, like the first's. */
static json_t *add_tablegroup(json_t *cl, const char *name, int replicas)
{
    json_t *db = json_array_get(json_object_get(json_object_get(cl, "spec"), "databases"), 0);
    json_t *tg = json_pack("{s:s, s:[{s:s, s:{s:{s:{s:s, s:[s], s:i, s:{s:s}}}}}]}", "name", name,
                           "shards", "name", "0-inf", "spec", "pools", "main", "type", "readWrite",
                           "cells", "z1", "replicasPerCell", replicas, "storage", "size", "1Gi");
    assert_non_null(tg);
    json_array_append_new(json_object_get(db, "tablegroups"), tg);
    return json_object_get(
        json_object_get(json_array_get(json_object_get(tg, "shards"), 0), "spec"), "pools");
}

static void set_when_scaled(json_t *target, const char *when_scaled)
{
    json_object_set_new(
        target, "pvcDeletionPolicy",
        json_pack("{s:s, s:s}", "whenScaled", when_scaled, "whenDeleted", "Delete"));
}

/* ShardTemplate "std" holding pool "main" (replicasPerCell `replicas`, cell z1); the cluster's
 * shard names it and has no inline spec. */
static json_t *shard_template(int replicas)
{
    char text[1024];
    (void)snprintf(text, sizeof(text),
                   "{\"apiVersion\": \"multigres.com/v1alpha1\", \"kind\": \"ShardTemplate\","
                   " \"metadata\": {\"name\": \"std\", \"namespace\": \"default\"},"
                   " \"spec\": {\"pools\": {\"main\": {\"type\": \"readWrite\", \"cells\": "
                   "[\"z1\"], \"replicasPerCell\": %d, \"storage\": {\"size\": \"1Gi\"}}}}}",
                   replicas);
    return parse(text);
}

static json_t *templated_cluster(void)
{
    json_t *cl = cluster(1);
    json_t *sh = shard0(cl);
    json_object_del(sh, "spec");
    json_object_set_new(sh, "shardTemplate", json_string("std"));
    return cl;
}

/* ---- calling the hooks ---------------------------------------------------------------------- */

static json_t *call(hook_fn fn, const char *what, const json_t *req, int32_t want_rc)
{
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    assert_non_null(text);
    int32_t rc = fn(plugin, text, strlen(text), &out, &len);
    free(text);
    if (!out)
        fail_msg("%s returned %d and no result", what, rc);
    json_error_t err;
    json_t *result = json_loadb(out, len, 0, &err);
    mgo_free(out);
    if (!result)
        fail_msg("%s: result is not JSON: %s", what, err.text);
    if (rc != want_rc)
        fail_msg("%s returned %d, expected %d: %s", what, rc, want_rc, dump(result));
    return result;
}

/* A scale request for pool "main" over `objects` (a JSON array, borrowed). */
static json_t *scale_request(const json_t *objects, int replicas)
{
    json_t *req =
        json_pack("{s:O, s:s, s:i}", "objects", objects, "pool", "main", "replicas", replicas);
    assert_non_null(req);
    return req;
}

static json_t *scale(const json_t *req, int32_t want_rc)
{
    return call(mgo_scale, "mgo_scale", req, want_rc);
}

/* mgo_scale of pool main in a request holding only `cl`, with `observed` objects or NULL. */
static json_t *scale_one(const json_t *cl, int replicas, const json_t *observed, int32_t want_rc)
{
    json_t *objects = json_pack("[O]", cl);
    json_t *req = scale_request(objects, replicas);
    if (observed)
        json_object_set_new(req, "observed", json_pack("{s:O}", "objects", observed));
    json_t *r = scale(req, want_rc);
    json_decref(req);
    json_decref(objects);
    return r;
}

/* One mgo_reconcile pass over `objects` (process target unless `target`), no registration. */
static json_t *reconcile(const json_t *objects, const json_t *observed, const char *target)
{
    json_t *req =
        json_pack("{s:O, s:s, s:{s:b}, s:b}", "objects", objects, "target",
                  target ? target : "process", "topology", "register", 0, "include_desired", 1);
    if (observed)
        json_object_set_new(req, "observed", json_pack("{s:O}", "objects", observed));
    json_t *r = call(mgo_reconcile, "mgo_reconcile", req, MGO_OK);
    json_decref(req);
    return r;
}

/* Every object the target renders for `objects` (what exists once a host created it all). */
static json_t *desired(const json_t *objects, const char *target)
{
    json_t *r = reconcile(objects, NULL, target);
    json_t *d = json_object_get(r, "desired");
    if (json_is_object(d))
        d = json_object_get(d, "items");
    if (!json_is_array(d) || json_array_size(d) == 0)
        fail_msg("no desired objects: %s", dump(r));
    d = json_deep_copy(d);
    json_decref(r);
    return d;
}

static json_t *desired_of(const json_t *cl, const char *target)
{
    json_t *objects = json_pack("[O]", cl);
    json_t *d = desired(objects, target);
    json_decref(objects);
    return d;
}

/* mgo_validate over `objects`: its result. */
static json_t *validate(const json_t *objects, int32_t want_rc)
{
    json_t *req = json_pack("{s:O}", "objects", objects);
    json_t *r = call(mgo_validate, "mgo_validate", req, want_rc);
    json_decref(req);
    return r;
}

/* The resolved cluster of `objects` (mgo_reconcile without a target). */
static json_t *resolve(const json_t *objects)
{
    json_t *req = json_pack("{s:O}", "objects", objects);
    json_t *r = call(mgo_reconcile, "mgo_reconcile", req, MGO_OK);
    json_t *resolved = json_incref(json_object_get(r, "resolved"));
    json_decref(r);
    json_decref(req);
    return resolved;
}

static void expect_cells(const json_t *result, const char *cells_json)
{
    json_t *want = parse(cells_json);
    if (!json_equal(json_object_get(result, "cells"), want))
        fail_msg("cells are %s, expected %s (the pool's, in its order)",
                 dump(json_object_get(result, "cells")), cells_json);
    json_decref(want);
}

/* ---- instance names, as the render targets give them ---------------------------------------- */

static int is_instance_kind(const char *kind)
{
    return kind && (strcmp(kind, "Instance") == 0 || strcmp(kind, "Pod") == 0);
}

/* The name of instance `index` of pool x cell in tablegroup `tablegroup` (NULL: any): the
 * rendered index-0 instance's name with its "-0" replaced by "-<index>". */
static const char *name_in(const json_t *rendered, const char *tablegroup, const char *pool,
                           const char *cell, int index)
{
    size_t i;
    const json_t *o;
    json_array_foreach (rendered, i, o) {
        const json_t *meta = json_object_get(o, "metadata");
        const json_t *labels = json_object_get(meta, "labels");
        const char *name = str(meta, "name");
        size_t n = name ? strlen(name) : 0;
        if (is_instance_kind(str(o, "kind")) && str_is(labels, "multigres.com/pool", pool) &&
            str_is(labels, "multigres.com/cell", cell) &&
            (!tablegroup || str_is(labels, "multigres.com/tablegroup", tablegroup)) && n > 2 &&
            strcmp(name + n - 2, "-0") == 0) {
            static char out[32][128];
            static int next;
            char *buf = out[next++ % 32];
            (void)snprintf(buf, sizeof(out[0]), "%.*s-%d", (int)(n - 2), name, index);
            return buf;
        }
    }
    fail_msg("no rendered instance 0 of pool %s in cell %s", pool, cell);
    return NULL;
}

static const char *name_of(const json_t *rendered, const char *pool, const char *cell, int index)
{
    return name_in(rendered, NULL, pool, cell, index);
}

/* ---- the host's record ---------------------------------------------------------------------- */

/* Everything rendered, recorded as existing and ready; every instance a standby. */
static json_t *observe(const json_t *rendered)
{
    json_t *out = json_array();
    size_t i;
    const json_t *o;
    json_array_foreach (rendered, i, o) {
        const json_t *meta = json_object_get(o, "metadata");
        const char *kind = str(o, "kind"), *name = str(meta, "name");
        char uid[300], rv[32];
        (void)snprintf(uid, sizeof(uid), "uid-%s-%s", kind, name);
        (void)snprintf(rv, sizeof(rv), "%ld", next_rv++);
        const json_t *labels = json_object_get(meta, "labels");
        const json_t *ann = json_object_get(meta, "annotations");
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:b}", "kind", kind, "name", name,
                              "uid", uid, "resourceVersion", rv, "labels",
                              labels ? json_deep_copy(labels) : json_object(), "annotations",
                              ann ? json_deep_copy(ann) : json_object(), "ready", 1);
        assert_non_null(e);
        if (is_instance_kind(kind))
            json_object_set_new(e, "role", json_string("standby"));
        if (strcmp(kind, "Instance") == 0)
            json_object_set_new(
                e, "ports",
                json_pack("{s:O}", "port", json_object_get(json_object_get(o, "spec"), "port")));
        json_array_append_new(out, e);
    }
    return out;
}

static json_t *obs_named(const json_t *observed, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach (observed, i, o)
        if (is_instance_kind(str(o, "kind")) && str_is(o, "name", name))
            return o;
    fail_msg("no observed instance %s", name);
    return NULL;
}

static void remove_named(json_t *observed, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach (observed, i, o)
        if (str_is(o, "kind", kind) && str_is(o, "name", name)) {
            json_array_remove(observed, i);
            return;
        }
    fail_msg("remove: no observed %s %s", kind, name);
}

static void set_drain(json_t *o, const char *state)
{
    json_t *ann = json_object_get(o, "annotations");
    json_object_set_new(ann, DRAIN_STATE, json_string(state));
    json_object_set_new(ann, DRAIN_AT, json_string("2026-11-26T07:59:00Z"));
}

/* ---- expectations --------------------------------------------------------------------------- */

/* `list` (create, drain or waiting_for) names exactly `names`, in that order. */
static void expect_names(const json_t *result, const char *list, const char *const *names, size_t n)
{
    const json_t *l = json_object_get(result, list);
    if (!json_is_array(l))
        fail_msg("no %s list in the result: %s", list, dump(result));
    int same = json_array_size(l) == n;
    for (size_t i = 0; same && i < n; i++)
        same = str_is(json_array_get(l, i), "name", names[i]);
    if (!same) {
        char want[4096] = "";
        for (size_t i = 0; i < n; i++)
            (void)snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? ", " : "",
                           names[i]);
        fail_msg("%s is %s; expected, in this order: [%s]", list, dump(l), want);
    }
}

static void expect_empty(const json_t *result, const char *list)
{
    expect_names(result, list, NULL, 0);
}

static const json_t *entry(const json_t *result, const char *list, size_t i)
{
    const json_t *e = json_array_get(json_object_get(result, list), i);
    if (!e)
        fail_msg("%s has no entry %zu: %s", list, i, dump(result));
    return e;
}

static void expect_int(const json_t *o, const char *key, json_int_t want)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) != want)
        fail_msg("\"%s\" is %s, expected %lld: %s", key, dump(v), (long long)want, dump(o));
}

static void expect_str(const json_t *o, const char *key, const char *want)
{
    if (!str_is(o, key, want))
        fail_msg("\"%s\" is %s, expected \"%s\": %s", key, dump(json_object_get(o, key)), want,
                 dump(o));
}

static void expect_error(const json_t *result, const char *const *parts, size_t n)
{
    const json_t *e = json_object_get(result, "error");
    const char *msg = str(e, "message");
    if (!msg)
        fail_msg("no error message: %s", dump(result));
    expect_int(e, "code", MGO_EINVAL);
    for (size_t i = 0; i < n; i++)
        if (!strstr(msg, parts[i]))
            fail_msg("error message \"%s\" does not contain \"%s\"", msg, parts[i]);
    /* An error plans nothing. */
    if (json_object_get(result, "spec") || json_object_get(result, "drain") ||
        json_object_get(result, "create"))
        fail_msg("an error with a plan: %s", dump(result));
}

/* The error's message is exactly `want`, and nothing is planned. */
static void expect_message(const json_t *result, const char *want)
{
    const char *parts[] = {want};
    expect_error(result, parts, 1);
    if (!str_is(json_object_get(result, "error"), "message", want))
        fail_msg("error message \"%s\", expected exactly \"%s\"",
                 str(json_object_get(result, "error"), "message"), want);
}

/* waiting_for names exactly `names`, in that order, each with its reason. */
static void expect_waiting(const json_t *result, const char *const *names,
                           const char *const *reasons, size_t n)
{
    expect_names(result, "waiting_for", names, n);
    for (size_t i = 0; i < n; i++)
        if (!str_is(entry(result, "waiting_for", i), "reason", reasons[i]))
            fail_msg("waiting_for[%zu] should have the reason \"%s\": %s", i, reasons[i],
                     dump(json_object_get(result, "waiting_for")));
}

/* The result's spec is `cl` with replicasPerCell `to` written at `path` (as a JSON pointer
 * into the object, "/"-separated) and nothing else changed. */
static void expect_spec(const json_t *result, const json_t *cl, const char *const *pointer,
                        size_t depth, int to)
{
    json_t *want = json_deep_copy(cl), *at = want;
    for (size_t i = 0; i < depth; i++) {
        json_t *next = json_is_array(at) ? json_array_get(at, (size_t)atoi(pointer[i]))
                                         : json_object_get(at, pointer[i]);
        if (!next) {
            json_object_set_new(at, pointer[i], json_object());
            next = json_object_get(at, pointer[i]);
        }
        at = next;
    }
    json_object_set_new(at, "replicasPerCell", json_integer(to));
    if (!json_equal(json_object_get(result, "spec"), want))
        fail_msg("spec is\n%s\nexpected\n%s", dump(json_object_get(result, "spec")), dump(want));
    json_decref(want);
}

static const char *const inline_main[] = {"spec",   "databases", "0",    "tablegroups", "0",
                                          "shards", "0",         "spec", "pools",       "main"};
static const char *const overrides_main[] = {
    "spec", "databases", "0", "tablegroups", "0", "shards", "0", "overrides", "pools", "main"};

/* The drain entry fields of lifecycle.md "Scale down" / abi.md "drain". */
static void expect_drain_entry(const json_t *result, size_t i, const char *cell, int index,
                               int ready, const char *role, const char *volume)
{
    const json_t *e = entry(result, "drain", i);
    expect_str(e, "cell", cell);
    expect_int(e, "index", index);
    if (json_is_true(json_object_get(e, "ready")) != ready ||
        !json_is_boolean(json_object_get(e, "ready")))
        fail_msg("drain[%zu].ready is not %d: %s", i, ready, dump(e));
    if (role ? !str_is(e, "role", role) : !json_is_null(json_object_get(e, "role")))
        fail_msg("drain[%zu].role is not %s: %s", i, role ? role : "null", dump(e));
    expect_str(e, "volume", volume);
}

/* The annotate actions of a pass that request a drain: exactly one, on `name`. */
static void expect_drain_requested(const json_t *pass, const char *name)
{
    size_t i, n = 0;
    const json_t *a, *req = NULL;
    json_array_foreach (json_object_get(pass, "actions"), i, a)
        if (str_is(a, "type", "annotate") &&
            str_is(json_object_get(a, "annotations"), DRAIN_STATE, "requested")) {
            req = a;
            n++;
        }
    if (n != 1 || !str_is(req, "name", name))
        fail_msg("the reconcile pass over the changed spec should request one drain, of %s: %s",
                 name, dump(json_object_get(pass, "actions")));
}

/* The instances a pass creates, in the order of its actions. */
static void expect_created(const json_t *pass, const char *const *names, size_t n)
{
    size_t i, k = 0;
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a) {
        const json_t *obj = json_object_get(a, "object");
        if (!str_is(a, "type", "apply") || !str_is(a, "reason", "create") ||
            !is_instance_kind(str(obj, "kind")))
            continue;
        const char *name = str(json_object_get(obj, "metadata"), "name");
        if (k >= n || strcmp(name, names[k]) != 0)
            fail_msg("the pass creates %s as instance %zu; the plan said %s: %s", name, k,
                     k < n ? names[k] : "nothing more", dump(json_object_get(pass, "actions")));
        k++;
    }
    if (k != n)
        fail_msg("the pass creates %zu instances; the plan said %zu", k, n);
}

/* ---- scale up ------------------------------------------------------------------------------- */

/* lifecycle.md "Scale up": every missing instance in one pass; abi.md: create lists the new
 * indexes in index order, drain nothing. The size goes in the shard's inline spec. */
static void test_scale_up(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *rendered = desired_of(cl, "process");
    json_t *r = scale_one(cl, 5, NULL, MGO_OK);
    const char *create[] = {name_of(rendered, "main", "z1", 3), name_of(rendered, "main", "z1", 4)};
    expect_str(r, "cluster", "sc");
    expect_str(r, "pool", "main");
    expect_int(r, "from", 3);
    expect_int(r, "to", 5);
    expect_cells(r, "[\"z1\"]");
    expect_str(r, "path", SHARD0 ".spec.pools[main].replicasPerCell");
    expect_names(r, "create", create, 2);
    expect_str(entry(r, "create", 0), "cell", "z1");
    expect_int(entry(r, "create", 0), "index", 3);
    expect_int(entry(r, "create", 1), "index", 4);
    expect_empty(r, "drain");
    expect_empty(r, "waiting_for");
    expect_spec(r, cl, inline_main, 10, 5);

    /* The pass over the new spec, with the three instances there, creates exactly those. */
    json_t *observed = observe(rendered);
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    expect_created(pass, create, 2);
    json_decref(pass);
    json_decref(objects);
    json_decref(observed);
    json_decref(r);
    json_decref(rendered);
    json_decref(cl);
}

/* create lists the instances of the new indexes that do not exist yet (abi.md): one of them
 * that exists already is not created again, and an instance missing below the old size is not
 * part of the change. */
static void test_create_only_missing_new(void **state)
{
    (void)state;
    json_t *big = cluster(4), *cl = cluster(3), *rendered = desired_of(big, "process");
    json_t *observed = observe(rendered); /* 0..3 exist although the spec says 3 */
    remove_named(observed, "Instance", name_of(rendered, "main", "z1", 0));
    json_t *r = scale_one(cl, 5, observed, MGO_OK);
    const char *create[] = {name_of(rendered, "main", "z1", 4)};
    expect_names(r, "create", create, 1);
    expect_empty(r, "drain");
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(big);
    json_decref(cl);
}

/* ---- scale down ----------------------------------------------------------------------------- */

/* Without observed: the current size exists, ready, no primary known (abi.md); the highest
 * index goes first (lifecycle.md "Scale down" 3); whenScaled unset is Delete (templates.md:
 * "The cluster default is Delete for both"). */
static void test_scale_down_unobserved(void **state)
{
    (void)state;
    json_t *cl = cluster(5), *rendered = desired_of(cl, "process");
    json_t *r = scale_one(cl, 2, NULL, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z1", 4), name_of(rendered, "main", "z1", 3),
                           name_of(rendered, "main", "z1", 2)};
    expect_int(r, "from", 5);
    expect_int(r, "to", 2);
    expect_empty(r, "create");
    expect_names(r, "drain", drain, 3);
    for (size_t i = 0; i < 3; i++)
        expect_drain_entry(r, i, "z1", 4 - (int)i, 1, NULL, "Delete");
    expect_str(entry(r, "drain", 0), "pool", "main");
    expect_empty(r, "waiting_for");
    expect_spec(r, cl, inline_main, 10, 2);
    json_decref(r);
    json_decref(rendered);
    json_decref(cl);
}

/* Numeric order: -10 is a higher index than -9 (lifecycle.md "Terms"). */
static void test_scale_down_numeric(void **state)
{
    (void)state;
    json_t *cl = cluster(11), *rendered = desired_of(cl, "process");
    json_t *r = scale_one(cl, 8, NULL, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z1", 10), name_of(rendered, "main", "z1", 9),
                           name_of(rendered, "main", "z1", 8)};
    expect_names(r, "drain", drain, 3);
    json_decref(r);
    json_decref(rendered);
    json_decref(cl);
}

/*
 * With observed: never the primary while another candidate remains; a not-ready candidate
 * before ready ones; then the highest index. 5 -> 2 where 4 is the primary and 2 is not ready:
 * 2 (not ready), 3, 4 (the primary, last). Then the reconcile pass over the changed spec,
 * carried out drain by drain, takes them in exactly that order.
 */
static void test_scale_down_observed_order(void **state)
{
    (void)state;
    json_t *cl = cluster(5), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    const char *n[5];
    for (int i = 0; i < 5; i++)
        n[i] = name_of(rendered, "main", "z1", i);
    json_object_set_new(obs_named(observed, n[4]), "role", json_string("primary"));
    json_object_set_new(obs_named(observed, n[2]), "ready", json_false());

    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    const char *drain[] = {n[2], n[3], n[4]};
    expect_names(r, "drain", drain, 3);
    expect_drain_entry(r, 0, "z1", 2, 0, "standby", "Delete");
    expect_drain_entry(r, 1, "z1", 3, 1, "standby", "Delete");
    expect_drain_entry(r, 2, "z1", 4, 1, "primary", "Delete");
    expect_empty(r, "waiting_for"); /* 0 and 1 stay, and both are ready */
    expect_empty(r, "create");

    /* The spec validates, and the pass drains in the plan's order, one at a time. */
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_decref(validate(objects, MGO_OK));
    for (size_t k = 0; k < 3; k++) {
        json_t *pass = reconcile(objects, observed, NULL);
        expect_drain_requested(pass, drain[k]);
        json_decref(pass);
        /* The drain runs its course; the pass deletes the instance and the host removes it. */
        set_drain(obs_named(observed, drain[k]), "ready-for-deletion");
        pass = reconcile(objects, observed, NULL);
        json_decref(pass);
        remove_named(observed, "Instance", drain[k]);
        remove_named(observed, "Volume", drain[k]);
    }
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* The same index in two cells: the cell listed last in spec.cells goes first (lifecycle.md
 * "Scale down" 3), not the pool's own last cell. */
static void test_scale_down_cell_tie(void **state)
{
    (void)state;
    json_t *cl = two_cells(cluster(4)), *rendered = desired_of(cl, "process");
    json_t *r = scale_one(cl, 2, NULL, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z2", 3), name_of(rendered, "main", "z1", 3),
                           name_of(rendered, "main", "z2", 2), name_of(rendered, "main", "z1", 2)};
    expect_names(r, "drain", drain, 4);
    expect_drain_entry(r, 0, "z2", 3, 1, NULL, "Delete");
    expect_drain_entry(r, 1, "z1", 3, 1, NULL, "Delete");
    expect_cells(r, "[\"z2\", \"z1\"]");

    /* The pass over the changed spec starts with the same one. */
    json_t *observed = observe(rendered);
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    expect_drain_requested(pass, drain[0]);
    json_decref(pass);
    json_decref(objects);
    json_decref(observed);
    json_decref(r);
    json_decref(rendered);
    json_decref(cl);
}

/* Scale up in two cells: every cell of the pool (abi.md "create"), cell by cell in the order of
 * spec.cells, each in index order; the pass creates them in that order. */
static void test_scale_up_two_cells(void **state)
{
    (void)state;
    json_t *cl = two_cells(cluster(2)), *rendered = desired_of(cl, "process");
    json_t *r = scale_one(cl, 4, NULL, MGO_OK);
    const char *create[] = {name_of(rendered, "main", "z1", 2), name_of(rendered, "main", "z1", 3),
                            name_of(rendered, "main", "z2", 2), name_of(rendered, "main", "z2", 3)};
    expect_names(r, "create", create, 4);
    expect_str(entry(r, "create", 2), "cell", "z2");
    expect_int(entry(r, "create", 2), "index", 2);
    json_t *observed = observe(rendered);
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    expect_created(pass, create, 4);
    json_decref(pass);
    json_decref(objects);
    json_decref(observed);
    json_decref(r);
    json_decref(rendered);
    json_decref(cl);
}

/* volume is the pool's effective whenScaled: the nearest level wins (templates.md "Rules along
 * the tree"); unset is Delete. */
static void test_volume_policy(void **state)
{
    (void)state;
    static const struct {
        const char *cluster, *pool, *want;
    } cases[] = {
        {NULL, NULL, "Delete"},         {"Retain", NULL, "Retain"},     {NULL, "Retain", "Retain"},
        {"Retain", "Delete", "Delete"}, {"Delete", "Retain", "Retain"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *cl = cluster(3);
        if (cases[i].cluster)
            set_when_scaled(json_object_get(cl, "spec"), cases[i].cluster);
        if (cases[i].pool)
            set_when_scaled(pool_of(cl, "main"), cases[i].pool);
        json_t *r = scale_one(cl, 2, NULL, MGO_OK);
        if (!str_is(entry(r, "drain", 0), "volume", cases[i].want))
            fail_msg("case %zu (cluster %s, pool %s): volume %s, expected %s", i,
                     cases[i].cluster ? cases[i].cluster : "-", cases[i].pool ? cases[i].pool : "-",
                     dump(json_object_get(entry(r, "drain", 0), "volume")), cases[i].want);
        json_decref(r);
        json_decref(cl);
    }
}

/* The health gate (lifecycle.md "Scale down" 2): an instance that stays and is not ready, one
 * that does not exist, another drain under way; the pass over the changed spec waits too. */
static void test_waiting_for(void **state)
{
    (void)state;
    json_t *cl = cluster(5), *rendered = desired_of(cl, "process");
    const char *n[5];
    for (int i = 0; i < 5; i++)
        n[i] = name_of(rendered, "main", "z1", i);

    /* 1 stays and is not ready. */
    json_t *observed = observe(rendered);
    json_object_set_new(obs_named(observed, n[1]), "ready", json_false());
    json_t *r = scale_one(cl, 3, observed, MGO_OK);
    const char *drain[] = {n[4], n[3]};
    const char *waiting[] = {n[1]};
    expect_names(r, "drain", drain, 2);
    expect_names(r, "waiting_for", waiting, 1);
    expect_int(entry(r, "waiting_for", 0), "index", 1);
    expect_str(entry(r, "waiting_for", 0), "cell", "z1");
    expect_str(entry(r, "waiting_for", 0), "reason", "not ready");
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    size_t i, requests = 0, blocked = 0;
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a) {
        requests += str_is(a, "type", "annotate");
        blocked += str_is(a, "type", "event") && str_is(a, "reason", "ScaleDownBlocked");
    }
    if (requests != 0 || blocked != 1)
        fail_msg("the pass should wait (ScaleDownBlocked, no drain): %s",
                 dump(json_object_get(pass, "actions")));
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);

    /* 0 is gone (deleted by hand) and 2 is being drained for another reason (a rolling step). */
    observed = observe(rendered);
    remove_named(observed, "Instance", n[0]);
    set_drain(obs_named(observed, n[2]), "draining");
    r = scale_one(cl, 3, observed, MGO_OK);
    const char *waiting2[] = {n[0], n[2]};
    expect_names(r, "drain", drain, 2);
    expect_names(r, "waiting_for", waiting2, 2);
    expect_str(entry(r, "waiting_for", 0), "reason", "does not exist yet");
    if (!strstr(str(entry(r, "waiting_for", 1), "reason"), "draining"))
        fail_msg("reason of a drain under way: %s", dump(entry(r, "waiting_for", 1)));
    json_decref(r);
    json_decref(observed);

    /* Scaling up waits for nothing: nothing is drained. */
    observed = observe(rendered);
    json_object_set_new(obs_named(observed, n[1]), "ready", json_false());
    r = scale_one(cl, 6, observed, MGO_OK);
    expect_empty(r, "waiting_for");
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* Instances at indexes beyond the current size (a scale-down not finished) are drained too, and
 * first: the highest index. */
static void test_leftovers(void **state)
{
    (void)state;
    json_t *big = cluster(6), *cl = cluster(4), *rendered = desired_of(big, "process");
    json_t *observed = observe(rendered); /* 0..5 exist; the spec says 4 */
    json_t *r = scale_one(cl, 3, observed, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z1", 5), name_of(rendered, "main", "z1", 4),
                           name_of(rendered, "main", "z1", 3)};
    expect_int(r, "from", 4);
    expect_names(r, "drain", drain, 3);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(big);
    json_decref(cl);
}

/* Candidates of another pool of the shard (a leftover of an earlier scale-down) take their turn
 * too: the same index in the same cell goes by the pool whose name sorts last (lifecycle.md
 * "Scale down" 3), each with its own pool's volume policy. */
static void test_two_pools(void **state)
{
    (void)state;
    json_t *before = cluster(3), *cl = cluster(3);
    add_pool(before, "a", 3);
    add_pool(cl, "a", 2); /* a's instance 2 is still there */
    set_when_scaled(pool_of(cl, "a"), "Retain");
    json_t *rendered = desired_of(before, "process");
    json_t *observed = observe(rendered);
    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z1", 2), name_of(rendered, "a", "z1", 2)};
    expect_names(r, "drain", drain, 2);
    expect_str(entry(r, "drain", 0), "pool", "main");
    expect_str(entry(r, "drain", 0), "volume", "Delete");
    expect_str(entry(r, "drain", 1), "pool", "a");
    expect_str(entry(r, "drain", 1), "volume", "Retain");
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    expect_drain_requested(pass, drain[0]);
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(before);
    json_decref(cl);
}

/* A drain already under way on an instance the new size removes finishes first: the pass
 * starts no other meanwhile (lifecycle.md "How a reconcile pass decides": "while anything in the
 * shard is being drained ... no new drain starts"). Nothing is waited for: it has begun. */
static void test_drain_under_way(void **state)
{
    (void)state;
    json_t *cl = cluster(5), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    const char *n[5];
    for (int i = 0; i < 5; i++)
        n[i] = name_of(rendered, "main", "z1", i);
    set_drain(obs_named(observed, n[3]), "draining"); /* say, a rolling step */
    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    const char *drain[] = {n[3], n[4], n[2]};
    expect_names(r, "drain", drain, 3);
    expect_empty(r, "waiting_for");

    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    size_t i, requests = 0;
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a)
        requests += str_is(a, "type", "annotate");
    if (requests)
        fail_msg("a drain was requested while one is under way: %s",
                 dump(json_object_get(pass, "actions")));
    json_decref(pass);
    set_drain(obs_named(observed, n[3]), "ready-for-deletion");
    json_decref(reconcile(objects, observed, NULL));
    remove_named(observed, "Instance", n[3]);
    remove_named(observed, "Volume", n[3]);
    pass = reconcile(objects, observed, NULL);
    expect_drain_requested(pass, n[4]);
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* The Kubernetes target's instances are Pods with the same names (abi.md: Instance or Pod). */
static void test_observed_pods(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *rendered = desired_of(cl, "kubernetes");
    json_t *observed = observe(rendered);
    const char *n2 = name_of(rendered, "main", "z1", 2), *n1 = name_of(rendered, "main", "z1", 1);
    json_object_set_new(obs_named(observed, n2), "role", json_string("primary"));
    json_t *r = scale_one(cl, 1, observed, MGO_OK);
    const char *drain[] = {n1, n2};
    expect_names(r, "drain", drain, 2);
    expect_drain_entry(r, 1, "z1", 2, 1, "primary", "Delete");
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, "kubernetes");
    expect_drain_requested(pass, n1);
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* ---- where the size goes -------------------------------------------------------------------- */

/* A shard without inline spec: the size goes in its overrides, created; the template is never
 * edited (abi.md "path"), and the unchanged template with the new spec resolves to the size. */
static void test_template_overrides(void **state)
{
    (void)state;
    json_t *tpl = shard_template(3), *cl = templated_cluster();
    json_t *objects = json_pack("[O, O]", tpl, cl);
    json_t *req = scale_request(objects, 5);
    json_t *r = scale(req, MGO_OK);
    expect_int(r, "from", 3);
    expect_str(r, "path", SHARD0 ".overrides.pools[main].replicasPerCell");
    expect_spec(r, cl, overrides_main, 10, 5);
    if (json_object_get(shard0(json_object_get(r, "spec")), "spec"))
        fail_msg("an inline spec was added to a templated shard: %s", dump(r));

    /* The template as it was, with the new spec: main resolves to 5. */
    json_t *both = json_pack("[O, O]", tpl, json_object_get(r, "spec"));
    json_t *resolved = resolve(both);
    json_t *pools = json_object_get(json_object_get(shard0(resolved), "spec"), "pools");
    expect_int(json_object_get(pools, "main"), "replicasPerCell", 5);
    json_decref(resolved);
    json_decref(both);
    json_decref(r);
    json_decref(req);

    /* Overrides that exist keep everything they hold. */
    json_object_set_new(shard0(cl), "overrides",
                        parse("{\"pools\": {\"main\": {\"storage\": {\"size\": \"2Gi\"}}}}"));
    json_array_set(objects, 1, cl);
    req = scale_request(objects, 2);
    r = scale(req, MGO_OK);
    expect_spec(r, cl, overrides_main, 10, 2);
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(tpl);
    json_decref(cl);
}

/* A cluster that writes no database at all (upstream minimal.yaml: "Default Database
 * ("postgres") with Default TableGroup ("default")") and takes its pool from the default
 * ShardTemplate: the size needs the shard's entry, which is written out as the defaults name
 * it; the pass over it wants what it wanted before, plus the new instance. */
static void test_defaulted_shard(void **state)
{
    (void)state;
    json_t *tpl = shard_template(2), *cl = templated_cluster();
    json_object_set_new(json_object_get(tpl, "metadata"), "name", json_string("default"));
    json_object_del(json_object_get(cl, "spec"), "databases");
    json_t *objects = json_pack("[O, O]", tpl, cl);
    json_t *req = scale_request(objects, 3);
    json_t *r = scale(req, MGO_OK);
    expect_str(r, "path", SHARD0 ".overrides.pools[main].replicasPerCell");
    json_t *want = json_deep_copy(cl);
    json_object_set_new(
        json_object_get(want, "spec"), "databases",
        parse("[{\"name\": \"postgres\", \"default\": true, \"tablegroups\": [{\"name\": "
              "\"default\", \"default\": true, \"shards\": [{\"name\": \"0-inf\", \"overrides\": "
              "{\"pools\": {\"main\": {\"replicasPerCell\": 3}}}}]}]}]"));
    if (!json_equal(json_object_get(r, "spec"), want))
        fail_msg("spec %s, expected %s", dump(json_object_get(r, "spec")), dump(want));
    json_t *rendered = desired(objects, "process");
    const char *create[] = {name_of(rendered, "main", "z1", 2)};
    expect_names(r, "create", create, 1);
    json_t *observed = observe(rendered);
    json_t *after = json_pack("[O, O]", tpl, json_object_get(r, "spec"));
    json_t *pass = reconcile(after, observed, NULL);
    expect_created(pass, create, 1);
    size_t i, other = 0;
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a)
        other += (str_is(a, "type", "apply") &&
                  !is_instance_kind(str(json_object_get(a, "object"), "kind")) &&
                  !str_is(json_object_get(a, "object"), "kind", "Volume")) ||
                 str_is(a, "type", "delete");
    if (other)
        fail_msg("the written-out shard changed other objects: %s",
                 dump(json_object_get(pass, "actions")));
    json_decref(pass);
    json_decref(after);
    json_decref(observed);
    json_decref(rendered);
    json_decref(want);
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(tpl);
    json_decref(cl);
}

/* A shard that names no pool gets one, "default", in multiorch's cells. Written as a pool of
 * its own, it would be placed in every cell: the plan writes its cells too, so that only the
 * size moves. (The fallback branch of the plan: forced here, and its effect checked.) */
static void test_implicit_pool(void **state)
{
    (void)state;
    json_t *cl = two_cells(cluster(1));
    json_object_del(shard0(cl), "spec");
    json_object_set_new(shard0(cl), "overrides", parse("{\"multiorch\": {\"cells\": [\"z2\"]}}"));
    json_t *objects = json_pack("[O]", cl);
    json_t *rendered = desired(objects, "process");
    json_t *req =
        json_pack("{s:O, s:s, s:i}", "objects", objects, "pool", "default", "replicas", 3);
    json_t *r = scale(req, MGO_OK);
    expect_int(r, "from", 2); /* a pool in one cell defaults to two */
    const json_t *pool = json_object_get(
        json_object_get(json_object_get(shard0(json_object_get(r, "spec")), "overrides"), "pools"),
        "default");
    json_t *want = parse("{\"replicasPerCell\": 3, \"cells\": [\"z2\"]}");
    if (!json_equal(pool, want))
        fail_msg("the implicit pool is written as %s, expected %s", dump(pool), dump(want));
    const char *create[] = {name_of(rendered, "default", "z2", 2)};
    expect_names(r, "create", create, 1);
    json_decref(want);
    json_decref(r);
    json_decref(req);
    json_decref(rendered);
    json_decref(objects);
    json_decref(cl);
}

/* ---- pools of the same name in several shards ----------------------------------------------- */

static const char *const orders_main[] = {"spec",   "databases", "0",    "tablegroups", "1",
                                          "shards", "0",         "spec", "pools",       "main"};

/* Validation allows several tablegroups, each with its own shard and pools: pool "main" of the
 * default tablegroup and pool "main" of tablegroup "orders" are two pools. A request that does
 * not say which is refused, naming the shards as database/tablegroup/shard; "database",
 * "tablegroup" and "shard" pick one; the plan and the pass over its spec concern that one. */
static void test_tablegroups(void **state)
{
    (void)state;
    static const char ambiguous[] =
        "pool \"main\" is in several shards of cluster \"sc\": postgres/default/0-inf, "
        "postgres/orders/0-inf; name one with \"database\", \"tablegroup\" and \"shard\"";
    json_t *cl = cluster(3);
    add_tablegroup(cl, "orders", 5);
    json_t *objects = json_pack("[O]", cl);
    json_decref(validate(objects, MGO_OK)); /* the premise: such a cluster is valid */
    json_t *rendered = desired(objects, "process");
    json_t *observed = observe(rendered);

    json_t *req = scale_request(objects, 6);
    json_t *r = scale(req, MGO_EINVAL);
    expect_message(r, ambiguous);
    json_decref(r);
    json_object_set_new(req, "database", json_string("postgres"));
    json_object_set_new(req, "shard", json_string("0-inf"));
    r = scale(req, MGO_EINVAL); /* both shards are postgres/.../0-inf */
    expect_message(r, ambiguous);
    json_decref(r);

    /* tablegroup "orders": its main goes from 5 to 6, the other main is untouched. */
    json_object_set_new(req, "tablegroup", json_string("orders"));
    r = scale(req, MGO_OK);
    expect_int(r, "from", 5);
    expect_str(r, "database", "postgres");
    expect_str(r, "tablegroup", "orders");
    expect_str(r, "shard", "0-inf");
    expect_str(r, "path",
               "spec.databases[0].tablegroups[1].shards[0].spec.pools[main]."
               "replicasPerCell");
    expect_spec(r, cl, orders_main, 10, 6);
    const char *create[] = {name_in(rendered, "orders", "main", "z1", 5)};
    expect_names(r, "create", create, 1);
    expect_empty(r, "drain");
    json_t *after = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(after, observed, NULL);
    expect_created(pass, create, 1);
    json_decref(pass);
    json_decref(after);
    json_decref(r);
    json_decref(req);

    /* tablegroup "default", down to 2: only its instance 2 goes, orders' 2 stays. */
    req = scale_request(objects, 2);
    json_object_set_new(req, "tablegroup", json_string("default"));
    json_object_set_new(req, "observed", json_pack("{s:O}", "objects", observed));
    r = scale(req, MGO_OK);
    expect_int(r, "from", 3);
    expect_spec(r, cl, inline_main, 10, 2);
    const char *drain[] = {name_in(rendered, "default", "main", "z1", 2)};
    expect_names(r, "drain", drain, 1);
    after = json_pack("[O]", json_object_get(r, "spec"));
    pass = reconcile(after, observed, NULL);
    expect_drain_requested(pass, drain[0]);
    json_decref(pass);
    json_decref(after);
    json_decref(r);

    /* A tablegroup that has no such pool. */
    json_object_set_new(req, "tablegroup", json_string("nope"));
    r = scale(req, MGO_EINVAL);
    expect_message(r, "no shard of cluster \"sc\" with tablegroup \"nope\" has pool \"main\"; "
                      "it is in postgres/default/0-inf, postgres/orders/0-inf");
    json_decref(r);
    json_decref(req);
    json_decref(observed);
    json_decref(rendered);
    json_decref(objects);
    json_decref(cl);
}

/* A pool name that is nowhere: the cluster's pool names, sorted, each once across shards. */
static void test_unknown_pool_listing(void **state)
{
    (void)state;
    json_t *cl = cluster(3);
    add_pool(cl, "zeta", 2);
    json_t *pools = add_tablegroup(cl, "orders", 2);
    json_object_set_new(pools, "analytics", json_deep_copy(json_object_get(pools, "main")));
    json_t *objects = json_pack("[O]", cl);
    json_t *req = scale_request(objects, 4);
    json_object_set_new(req, "pool", json_string("nope"));
    json_t *r = scale(req, MGO_EINVAL);
    expect_message(r, "cluster \"sc\" has no pool \"nope\"; its pools: \"analytics\", \"main\", "
                      "\"zeta\"");
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(cl);
}

/* An instance of one shard that carries another shard's hierarchy labels (relabelled by hand)
 * is still the instance its name says: the pass, which finds wanted instances by name first,
 * never takes it for a leftover of the shard its labels name, and the plan, which collects the
 * shard's instances with the pass's own function, agrees. */
static void test_relabelled_instance(void **state)
{
    (void)state;
    json_t *cl = cluster(3);
    add_tablegroup(cl, "orders", 2);
    json_t *objects = json_pack("[O]", cl);
    json_t *rendered = desired(objects, "process");
    json_t *observed = observe(rendered);
    const char *stranger = name_in(rendered, "orders", "main", "z1", 0);
    json_object_set_new(json_object_get(obs_named(observed, stranger), "labels"),
                        "multigres.com/tablegroup", json_string("default"));
    json_t *req = scale_request(objects, 2);
    json_object_set_new(req, "tablegroup", json_string("default"));
    json_object_set_new(req, "observed", json_pack("{s:O}", "objects", observed));
    json_t *r = scale(req, MGO_OK);
    const char *drain[] = {name_in(rendered, "default", "main", "z1", 2)};
    expect_names(r, "drain", drain, 1);
    json_t *after = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(after, observed, NULL);
    expect_drain_requested(pass, drain[0]);
    json_decref(pass);
    json_decref(after);
    json_decref(r);
    json_decref(req);
    json_decref(observed);
    json_decref(rendered);
    json_decref(objects);
    json_decref(cl);
}

/* ---- what the pass waits for ---------------------------------------------------------------- */

/* Two instances report primary: the pass starts no drain (lifecycle.md "How a reconcile pass
 * decides"), and the plan says what it waits for: both of them. */
static void test_two_primaries(void **state)
{
    (void)state;
    json_t *cl = cluster(4), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    const char *n[4];
    for (int i = 0; i < 4; i++)
        n[i] = name_of(rendered, "main", "z1", i);
    json_object_set_new(obs_named(observed, n[0]), "role", json_string("primary"));
    json_object_set_new(obs_named(observed, n[1]), "role", json_string("primary"));
    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    const char *drain[] = {n[3], n[2]};
    expect_names(r, "drain", drain, 2);
    const char *waiting[] = {n[0], n[1]};
    const char *reasons[] = {"one of several primaries", "one of several primaries"};
    expect_waiting(r, waiting, reasons, 2);
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    size_t i, requests = 0;
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a)
        requests += str_is(a, "type", "annotate");
    if (requests)
        fail_msg("the pass requested a drain with two primaries: %s",
                 dump(json_object_get(pass, "actions")));
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* An instance that stays is missing while its old volume is still being deleted: the pass
 * creates it only once the volume is gone (a fresh one), and starts no drain meanwhile. */
static void test_waiting_for_volume(void **state)
{
    (void)state;
    json_t *cl = cluster(4), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    const char *n1 = name_of(rendered, "main", "z1", 1), *n3 = name_of(rendered, "main", "z1", 3);
    remove_named(observed, "Instance", n1);
    size_t i;
    json_t *o;
    json_array_foreach (observed, i, o)
        if (str_is(o, "kind", "Volume") && str_is(o, "name", n1))
            json_object_set_new(o, "deleting", json_true());
    json_t *r = scale_one(cl, 3, observed, MGO_OK);
    const char *drain[] = {n3};
    expect_names(r, "drain", drain, 1);
    const char *waiting[] = {n1};
    const char *reasons[] = {"its old volume is being deleted"};
    expect_waiting(r, waiting, reasons, 1);
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    const json_t *a;
    json_array_foreach (json_object_get(pass, "actions"), i, a)
        if (str_is(a, "type", "annotate") || str_is(a, "reason", "create"))
            fail_msg("the pass should wait for the volume: %s",
                     dump(json_object_get(pass, "actions")));
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* The same size with leftovers of an unfinished scale-down: the pass drains them (the spec
 * does not want them), so the plan lists them; nothing is created and the spec is unchanged. */
static void test_same_size_leftovers(void **state)
{
    (void)state;
    json_t *big = cluster(6), *cl = cluster(4), *rendered = desired_of(big, "process");
    json_t *observed = observe(rendered);
    json_t *r = scale_one(cl, 4, observed, MGO_OK);
    const char *drain[] = {name_of(rendered, "main", "z1", 5), name_of(rendered, "main", "z1", 4)};
    expect_int(r, "from", 4);
    expect_int(r, "to", 4);
    expect_empty(r, "create");
    expect_names(r, "drain", drain, 2);
    expect_empty(r, "waiting_for");
    if (!json_equal(json_object_get(r, "spec"), cl))
        fail_msg("spec changed: %s", dump(json_object_get(r, "spec")));
    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *pass = reconcile(objects, observed, NULL);
    expect_drain_requested(pass, drain[0]);
    json_decref(pass);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(big);
    json_decref(cl);
}

/* Scaling up over leftovers the spec wants again: one being deleted and one whose drain is past
 * "requested" are finished by the pass and then created anew, so they are listed in create (and
 * what their creation waits for in waiting_for); one whose drain is only "requested" keeps
 * running (the pass cancels the drain) and is not. The pass, carried out, creates exactly the
 * plan's list. */
static void test_scale_up_over_leftovers(void **state)
{
    (void)state;
    json_t *big = cluster(6), *cl = cluster(3), *rendered = desired_of(big, "process");
    json_t *observed = observe(rendered);
    const char *n3 = name_of(rendered, "main", "z1", 3), *n4 = name_of(rendered, "main", "z1", 4);
    const char *n5 = name_of(rendered, "main", "z1", 5);
    json_object_set_new(obs_named(observed, n3), "deleting", json_true());
    set_drain(obs_named(observed, n4), "draining");
    set_drain(obs_named(observed, n5), "requested");
    json_t *r = scale_one(cl, 6, observed, MGO_OK);
    const char *create[] = {n3, n4};
    expect_names(r, "create", create, 2);
    expect_empty(r, "drain");
    const char *reasons[] = {"being deleted", "drain under way (draining)"};
    expect_waiting(r, create, reasons, 2);

    json_t *objects = json_pack("[O]", json_object_get(r, "spec"));
    json_t *created = json_array();
    for (int step = 0; step < 4; step++) {
        json_t *pass = reconcile(objects, observed, NULL);
        size_t i;
        const json_t *a;
        json_array_foreach (json_object_get(pass, "actions"), i, a) {
            const json_t *obj = json_object_get(a, "object");
            if (str_is(a, "reason", "create") && is_instance_kind(str(obj, "kind")))
                json_array_append_new(created,
                                      json_string(str(json_object_get(obj, "metadata"), "name")));
            if (str_is(a, "reason", "create") && is_instance_kind(str(obj, "kind"))) {
                json_t *one = json_pack("[O]", obj), *seen = observe(one);
                json_array_extend(observed, seen);
                json_decref(seen);
                json_decref(one);
            }
            if (str_is(a, "type", "delete") && str_is(a, "kind", "Instance"))
                remove_named(observed, "Instance", str(a, "name"));
        }
        json_decref(pass);
        /* the host: the deletion ends, the drain runs its course */
        if (step == 0) {
            remove_named(observed, "Instance", n3);
            set_drain(obs_named(observed, n4), "ready-for-deletion");
        }
    }
    if (json_array_size(created) != 2 ||
        !json_equal(json_array_get(created, 0), json_object_get(entry(r, "create", 0), "name")) ||
        !json_equal(json_array_get(created, 1), json_object_get(entry(r, "create", 1), "name")))
        fail_msg("the pass created %s; the plan said %s", dump(created),
                 dump(json_object_get(r, "create")));
    json_decref(created);
    json_decref(objects);
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(big);
    json_decref(cl);
}

/* ---- the fields of a drain entry ------------------------------------------------------------ */

/* role is "primary", "standby" or null (abi.md), whatever case or word the host used: the pass
 * reads "PRIMARY" as the primary, so the plan says "primary". */
static void test_role_normalised(void **state)
{
    (void)state;
    json_t *cl = cluster(5), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    const char *n[5];
    for (int i = 0; i < 5; i++)
        n[i] = name_of(rendered, "main", "z1", i);
    json_object_set_new(obs_named(observed, n[4]), "role", json_string("PRIMARY"));
    json_object_set_new(obs_named(observed, n[3]), "role", json_string("Standby"));
    json_object_set_new(obs_named(observed, n[2]), "role", json_string("replica"));
    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    const char *drain[] = {n[3], n[2], n[4]};
    expect_names(r, "drain", drain, 3);
    expect_drain_entry(r, 0, "z1", 3, 1, "standby", "Delete");
    expect_drain_entry(r, 1, "z1", 2, 1, NULL, "Delete");
    expect_drain_entry(r, 2, "z1", 4, 1, "primary", "Delete");
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* abi.md "drain": an instance whose labels place it in no pool x cell of the shard has pool,
 * cell and index null (and its volume is kept: the pass touches no volume of it); one whose
 * labels name a pool but whose name is not "<that pool's base>-<n>" has that pool and cell, a
 * null index, and the pool's volume policy. */
static void test_instance_in_no_pool(void **state)
{
    (void)state;
    json_t *cl = cluster(2), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    json_t *ghost = json_deep_copy(obs_named(observed, name_of(rendered, "main", "z1", 1)));
    json_t *odd = json_deep_copy(ghost);
    json_object_set_new(ghost, "name", json_string("sc-ghost-7"));
    json_object_set_new(json_object_get(ghost, "labels"), "multigres.com/pool",
                        json_string("ghost"));
    json_object_set_new(odd, "name", json_string("sc-odd"));
    json_array_append_new(observed, ghost);
    json_array_append_new(observed, odd);
    json_t *r = scale_one(cl, 1, observed, MGO_OK);
    const char *drain[] = {"sc-ghost-7", "sc-odd", name_of(rendered, "main", "z1", 1)};
    expect_names(r, "drain", drain, 3);
    const json_t *g = entry(r, "drain", 0), *o = entry(r, "drain", 1);
    if (!json_is_null(json_object_get(g, "pool")) || !json_is_null(json_object_get(g, "cell")) ||
        !json_is_null(json_object_get(g, "index")) || !str_is(g, "volume", "Retain"))
        fail_msg("an instance in no pool: pool, cell, index null, volume Retain: %s", dump(g));
    if (!str_is(o, "pool", "main") || !str_is(o, "cell", "z1") ||
        !json_is_null(json_object_get(o, "index")) || !str_is(o, "volume", "Delete"))
        fail_msg("an instance with an odd name: pool main, cell z1, index null: %s", dump(o));
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* ---- what is refused, and what changes nothing ---------------------------------------------- */

/* A cell may be named when it is the pool's only cell. */
static void test_cell_single(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *objects = json_pack("[O]", cl);
    json_t *req = scale_request(objects, 4);
    json_t *plain = scale(req, MGO_OK);
    json_object_set_new(req, "cell", json_string("z1"));
    json_t *with_cell = scale(req, MGO_OK);
    if (!json_equal(plain, with_cell))
        fail_msg("naming the only cell changed the plan: %s vs %s", dump(plain), dump(with_cell));
    json_decref(plain);
    json_decref(with_cell);
    json_decref(req);
    json_decref(objects);
    json_decref(cl);
}

static void test_cell_refused(void **state)
{
    (void)state;
    json_t *cl = two_cells(cluster(3)), *objects = json_pack("[O]", cl);
    json_t *req = scale_request(objects, 4);
    json_object_set_new(req, "cell", json_string("z1"));
    json_t *r = scale(req, MGO_EINVAL);
    const char *multi[] = {"\"z1\"", "\"z2\"", "main"};
    expect_error(r, multi, 3);
    json_decref(r);
    json_object_set_new(req, "cell", json_string("z9"));
    r = scale(req, MGO_EINVAL);
    const char *unknown[] = {"\"z9\"", "\"z1\"", "\"z2\""};
    expect_error(r, unknown, 3);
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(cl);
}

static void test_unknown_pool_and_cluster(void **state)
{
    (void)state;
    json_t *cl = cluster(3);
    add_pool(cl, "analytics", 2);
    json_t *objects = json_pack("[O]", cl);
    json_t *req = scale_request(objects, 4);
    json_object_set_new(req, "pool", json_string("nope"));
    json_t *r = scale(req, MGO_EINVAL);
    const char *pools[] = {"\"nope\"", "\"main\"", "\"analytics\""};
    expect_error(r, pools, 3);
    json_decref(r);
    json_object_set_new(req, "pool", json_string("main"));
    json_object_set_new(req, "cluster", json_string("other"));
    r = scale(req, MGO_EINVAL);
    const char *cluster_missing[] = {"other"};
    expect_error(r, cluster_missing, 1);
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(cl);
}

/* A size the schema refuses: the validation error at the field (errors.md: "Invalid value: 33:
 * must be less than or equal to 32"), in objects and in the message; nothing to apply. */
static void test_invalid_size(void **state)
{
    (void)state;
    static const struct {
        int replicas;
        const char *reason;
    } cases[] = {
        {40, "Invalid value: 40: must be less than or equal to 32"},
        {0, "Invalid value: 0: must be greater than or equal to 1"},
    };
    json_t *cl = cluster(3);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *r = scale_one(cl, cases[i].replicas, NULL, MGO_EINVAL);
        const char *parts[] = {SHARD0 ".spec.pools[main].replicasPerCell", cases[i].reason};
        expect_error(r, parts, 2);
        const json_t *o = json_array_get(json_object_get(r, "objects"), 0);
        const json_t *e = json_array_get(json_object_get(o, "errors"), 0);
        if (!str_is(e, "path", parts[0]) || !str_is(e, "reason", parts[1]) ||
            json_array_size(json_object_get(o, "errors")) != 1)
            fail_msg("objects should hold the one error %s: %s: %s", parts[0], parts[1], dump(r));
        json_decref(r);
    }
    json_decref(cl);
}

/* An invalid cluster as given: its errors, nothing planned. */
static void test_invalid_before(void **state)
{
    (void)state;
    json_t *cl = cluster(3);
    json_object_del(json_array_get(json_object_get(json_object_get(cl, "spec"), "cells"), 0),
                    "zoneId");
    json_t *r = scale_one(cl, 2, NULL, MGO_EINVAL);
    const char *parts[] = {"spec.cells[0]"};
    expect_error(r, parts, 1);
    const json_t *o = json_array_get(json_object_get(r, "objects"), 0);
    if (!str_is(json_array_get(json_object_get(o, "errors"), 0), "path", "spec.cells[0]"))
        fail_msg("objects should list the cluster's error: %s", dump(r));
    json_decref(r);
    json_decref(cl);
}

/* abi.md: a size equal to the current one writes nothing ("spec is the object as given") and
 * creates nothing; with nothing left over, nothing is drained or waited for either. */
static void test_same_size(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *rendered = desired_of(cl, "process");
    json_t *observed = observe(rendered);
    json_t *r = scale_one(cl, 3, observed, MGO_OK);
    expect_int(r, "from", 3);
    expect_int(r, "to", 3);
    expect_empty(r, "create");
    expect_empty(r, "drain");
    expect_empty(r, "waiting_for");
    if (!json_equal(json_object_get(r, "spec"), cl))
        fail_msg("spec changed: %s", dump(json_object_get(r, "spec")));
    expect_str(r, "path", SHARD0 ".spec.pools[main].replicasPerCell");
    json_decref(r);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

/* Malformed requests (abi.md: message "request: ..."), as a table: each case and its exact
 * message. */
static void test_malformed(void **state)
{
    (void)state;
    static const char observed_entry[] =
        "request: observed.objects[0]: needs \"kind\" and \"name\" strings; \"uid\", "
        "\"resourceVersion\" and \"role\" strings, \"ready\", \"failed\" and \"deleting\" "
        "booleans, \"labels\" and \"annotations\" objects of strings and \"ports\" an object "
        "when given";
    static const struct {
        const char *extra; /* merged over {"objects": [cluster], "pool": "main", "replicas": 2} */
        const char *drop;  /* a field removed */
        const char *message;
    } cases[] = {
        {NULL, "pool", "request: \"pool\" (a string: the pool to resize) is required"},
        {"{\"pool\": 3}", NULL, "request: \"pool\" (a string: the pool to resize) is required"},
        {"{\"pool\": \"\"}", NULL, "request: \"pool\" (a string: the pool to resize) is required"},
        {NULL, "replicas",
         "request: \"replicas\" (an integer: the new replicasPerCell) is required"},
        {"{\"replicas\": \"3\"}", NULL,
         "request: \"replicas\" (an integer: the new replicasPerCell) is required"},
        {"{\"replicas\": 2.5}", NULL,
         "request: \"replicas\" (an integer: the new replicasPerCell) is required"},
        {"{\"cell\": 1}", NULL, "request: \"cell\" must be a string"},
        {"{\"cluster\": 1}", NULL, "request: \"cluster\" must be a string"},
        {"{\"database\": 1}", NULL, "request: \"database\" must be a string"},
        {"{\"tablegroup\": []}", NULL, "request: \"tablegroup\" must be a string"},
        {"{\"shard\": true}", NULL, "request: \"shard\" must be a string"},
        {"{\"observed\": []}", NULL, "request: \"observed\" must be {\"objects\": [..]}"},
        {"{\"observed\": {\"objects\": {}}}", NULL,
         "request: \"observed\" must be {\"objects\": [..]}"},
        {"{\"observed\": {\"objects\": [{\"name\": \"x\"}]}}", NULL, observed_entry},
        {"{\"observed\": {\"objects\": [{\"kind\": \"Pod\", \"name\": \"x\", \"ready\": 1}]}}",
         NULL, observed_entry},
        {NULL, "objects", "request: give \"manifests\" (text) or \"objects\""},
    };
    json_t *cl = cluster(3);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *req = json_pack("{s:[O], s:s, s:i}", "objects", cl, "pool", "main", "replicas", 2);
        if (cases[i].extra) {
            json_t *x = parse(cases[i].extra);
            json_object_update(req, x);
            json_decref(x);
        }
        if (cases[i].drop)
            json_object_del(req, cases[i].drop);
        json_t *r = scale(req, MGO_EINVAL);
        expect_message(r, cases[i].message);
        json_decref(r);
        json_decref(req);
    }
    /* Not JSON at all. */
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mgo_scale(plugin, "{", 1, &out, &len), MGO_EINVAL);
    json_t *r = json_loadb(out, len, 0, NULL);
    mgo_free(out);
    expect_message(
        r, "request: invalid JSON at line 1, column 1: string or '}' expected near end of file");
    json_decref(r);
    json_decref(cl);
}

/* objects are the validate entries of the changed cluster: what mgo_validate says of the
 * returned spec with the request's other documents. */
static void test_objects_are_validation(void **state)
{
    (void)state;
    json_t *tpl = shard_template(3), *cl = templated_cluster();
    json_t *objects = json_pack("[O, O]", tpl, cl);
    json_t *req = scale_request(objects, 4);
    json_t *r = scale(req, MGO_OK);
    json_t *after = json_pack("[O, O]", tpl, json_object_get(r, "spec"));
    json_t *v = validate(after, MGO_OK);
    if (!json_equal(json_object_get(v, "objects"), json_object_get(r, "objects")))
        fail_msg("objects %s, mgo_validate says %s", dump(json_object_get(r, "objects")),
                 dump(json_object_get(v, "objects")));
    json_decref(v);
    json_decref(after);
    json_decref(r);
    json_decref(req);
    json_decref(objects);
    json_decref(tpl);
    json_decref(cl);
}

/* Pure (abi.md): the plan registers nothing and resolves no address, even when the observed
 * topology server is up; the same request to mgo_reconcile would (the control). */
static void test_no_io(void **state)
{
    (void)state;
    json_t *cl = cluster(3), *rendered = desired_of(cl, "kubernetes");
    json_t *observed = observe(rendered); /* the global topology StatefulSet is ready */
    resolve_calls = 0;
    json_t *r = scale_one(cl, 2, observed, MGO_OK);
    assert_int_equal(resolve_calls, 0);
    json_decref(r);
    json_t *req = json_pack("{s:[O], s:s, s:{s:O}, s:{s:i}}", "objects", cl, "target", "kubernetes",
                            "observed", "objects", observed, "topology", "deadline_ms", 200);
    r = call(mgo_reconcile, "mgo_reconcile", req, MGO_OK);
    if (resolve_calls == 0)
        fail_msg("control: mgo_reconcile resolved no address, so this test could not tell");
    json_decref(r);
    json_decref(req);
    json_decref(observed);
    json_decref(rendered);
    json_decref(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_up),
        cmocka_unit_test(test_create_only_missing_new),
        cmocka_unit_test(test_scale_down_unobserved),
        cmocka_unit_test(test_scale_down_numeric),
        cmocka_unit_test(test_scale_down_observed_order),
        cmocka_unit_test(test_scale_down_cell_tie),
        cmocka_unit_test(test_scale_up_two_cells),
        cmocka_unit_test(test_volume_policy),
        cmocka_unit_test(test_waiting_for),
        cmocka_unit_test(test_leftovers),
        cmocka_unit_test(test_two_pools),
        cmocka_unit_test(test_drain_under_way),
        cmocka_unit_test(test_observed_pods),
        cmocka_unit_test(test_template_overrides),
        cmocka_unit_test(test_defaulted_shard),
        cmocka_unit_test(test_implicit_pool),
        cmocka_unit_test(test_cell_single),
        cmocka_unit_test(test_cell_refused),
        cmocka_unit_test(test_unknown_pool_and_cluster),
        cmocka_unit_test(test_invalid_size),
        cmocka_unit_test(test_invalid_before),
        cmocka_unit_test(test_same_size),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_objects_are_validation),
        cmocka_unit_test(test_no_io),
        cmocka_unit_test(test_tablegroups),
        cmocka_unit_test(test_unknown_pool_listing),
        cmocka_unit_test(test_relabelled_instance),
        cmocka_unit_test(test_two_primaries),
        cmocka_unit_test(test_waiting_for_volume),
        cmocka_unit_test(test_same_size_leftovers),
        cmocka_unit_test(test_scale_up_over_leftovers),
        cmocka_unit_test(test_role_normalised),
        cmocka_unit_test(test_instance_in_no_pool),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
