/* The reconcile hook: validate, resolve, model, register the topology, render, diff (schemas
 * in docs/abi.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "reconcile/reconcile.h"
#include "render/kube.h"
#include "render/render.h"
#include "topo/topo.h"
#include "api.h"

#define REGISTER_DEADLINE_MS 20000

struct options {
    const char *target; /* NULL: resolve only (the first release's answer) */
    const json_t *observed;
    const json_t *topology;
    int64_t generation;
    int deleting;
    int include_desired;
    int64_t port_base;
};

static int is_bool_or_absent(const json_t *v)
{
    return !v || json_is_boolean(v);
}

/* One observed entry has the documented shape (docs/abi.md): an answer for the first one that
 * does not, so that a host's bug is not mistaken for state. */
static int observed_entry_valid(const json_t *e)
{
    static const char *const strings[] = {"kind", "name", "uid", "resourceVersion", "role"};
    static const char *const bools[] = {"ready", "failed", "deleting"};
    static const char *const maps[] = {"labels", "annotations"};
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "kind")) ||
        !json_is_string(json_object_get(e, "name")))
        return 0;
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (json_object_get(e, strings[i]) && !json_is_string(json_object_get(e, strings[i])))
            return 0;
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
        if (json_object_get(e, bools[i]) && !json_is_boolean(json_object_get(e, bools[i])))
            return 0;
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        const json_t *m = json_object_get(e, maps[i]);
        const char *k;
        const json_t *v;
        if (m && !json_is_object(m))
            return 0;
        json_object_foreach ((json_t *)m, k, v)
            if (!json_is_string(v))
                return 0;
    }
    return !json_object_get(e, "ports") || json_is_object(json_object_get(e, "ports"));
}

int32_t api_check_observed(const json_t *observed, char *msg, size_t size)
{
    size_t i;
    const json_t *e;
    json_array_foreach (json_object_get(observed, "objects"), i, e)
        if (!observed_entry_valid(e)) {
            (void)snprintf(msg, size,
                           "request: observed.objects[%zu]: needs \"kind\" and \"name\" strings; "
                           "\"uid\", \"resourceVersion\" and \"role\" strings, \"ready\", "
                           "\"failed\" and \"deleting\" booleans, \"labels\" and "
                           "\"annotations\" objects of strings and \"ports\" an object when given",
                           i);
            return MGO_EINVAL;
        }
    return MGO_OK;
}

static int32_t read_options(const json_t *root, struct options *o, char *msg, size_t size)
{
    const json_t *target = json_object_get(root, "target");
    const json_t *cluster = json_object_get(root, "cluster");
    const json_t *gen = json_object_get(root, "generation");
    const json_t *process = json_object_get(root, "process");
    const json_t *base = json_object_get(process, "port_base");
    memset(o, 0, sizeof(*o));
    o->observed = json_object_get(root, "observed");
    o->topology = json_object_get(root, "topology");
    if ((target &&
         (!json_is_string(target) || (strcmp(json_string_value(target), "kubernetes") != 0 &&
                                      strcmp(json_string_value(target), "process") != 0))) ||
        (cluster && !json_is_string(cluster))) {
        (void)snprintf(msg, size,
                       "request: \"target\" must be \"kubernetes\" or \"process\" and "
                       "\"cluster\" a string");
        return MGO_EINVAL;
    }
    if ((o->observed && (!json_is_object(o->observed) ||
                         (json_object_get(o->observed, "objects") &&
                          !json_is_array(json_object_get(o->observed, "objects"))) ||
                         (json_object_get(o->observed, "status") &&
                          !json_is_object(json_object_get(o->observed, "status"))))) ||
        (o->topology && !json_is_object(o->topology)) || (gen && !json_is_integer(gen)) ||
        (json_object_get(root, "uid") && !json_is_string(json_object_get(root, "uid"))) ||
        (process && !json_is_object(process)) ||
        (base && (!json_is_integer(base) || json_integer_value(base) < 1 ||
                  json_integer_value(base) > 65000)) ||
        !is_bool_or_absent(json_object_get(root, "deleting")) ||
        !is_bool_or_absent(json_object_get(root, "include_desired")) ||
        !is_bool_or_absent(json_object_get(o->topology, "register")) ||
        (json_object_get(o->topology, "deadline_ms") &&
         (!json_is_integer(json_object_get(o->topology, "deadline_ms")) ||
          json_integer_value(json_object_get(o->topology, "deadline_ms")) < 1 ||
          json_integer_value(json_object_get(o->topology, "deadline_ms")) > API_MAX_DEADLINE_MS)) ||
        (json_object_get(o->topology, "keep_cells") &&
         !json_is_array(json_object_get(o->topology, "keep_cells")))) {
        (void)snprintf(msg, size,
                       "request: \"observed\" must be {\"objects\": [..], \"status\": {..}}, "
                       "\"topology\" an object, \"generation\" an integer, \"process\" "
                       "{\"port_base\": 1..65000}, \"deleting\", \"include_desired\" and "
                       "\"topology.register\" booleans, \"topology.deadline_ms\" an integer "
                       "1..600000 and \"topology.keep_cells\" an array");
        return MGO_EINVAL;
    }
    if (api_check_observed(o->observed, msg, size) != MGO_OK)
        return MGO_EINVAL;
    o->target = json_string_value(target);
    o->generation = gen ? json_integer_value(gen) : -1;
    o->deleting = json_is_true(json_object_get(root, "deleting"));
    o->include_desired = json_is_true(json_object_get(root, "include_desired"));
    o->port_base = base ? json_integer_value(base) : 0;
    return MGO_OK;
}

/* The ports the host recorded for its processes: {"<name>": {"port": n, ...}}. */
static json_t *recorded_ports(const json_t *observed)
{
    json_t *ports = json_object();
    size_t i;
    const json_t *o;
    json_array_foreach (json_object_get(observed, "objects"), i, o) {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        /* an Instance and its Volume share a name: only the process kinds own ports */
        if (!kind || (strcmp(kind, RENDER_KIND_INSTANCE) != 0 && strcmp(kind, "Etcd") != 0))
            continue;
        if (ports && json_is_object(json_object_get(o, "ports")) &&
            json_is_string(json_object_get(o, "name")) &&
            json_object_set(ports, json_string_value(json_object_get(o, "name")),
                            json_object_get(o, "ports"))) {
            json_decref(ports);
            return NULL;
        }
    }
    return ports;
}

/* Is the managed global topology server up (as the host observes it)? External: assumed. */
static int topology_reachable(const struct model *m, const json_t *observed)
{
    const json_t *g = json_object_get(json_object_get(m->resolved, "spec"), "globalTopoServer");
    if (json_is_object(json_object_get(g, "external")))
        return 1;
    char name[300];
    (void)snprintf(name, sizeof(name), "%s-global-topo", m->cluster);
    size_t i;
    const json_t *o;
    json_array_foreach (json_object_get(observed, "objects"), i, o) {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *n = json_string_value(json_object_get(o, "name"));
        const json_t *labels = json_object_get(o, "labels");
        const char *owner = json_string_value(json_object_get(labels, "multigres.com/cluster"));
        const char *by = json_string_value(json_object_get(labels, "app.kubernetes.io/managed-by"));
        /* only this cluster's own objects count (docs/abi.md) */
        if (!owner || strcmp(owner, m->cluster) != 0 || !by || strcmp(by, RENDER_MANAGED_BY) != 0)
            continue;
        if (kind && n && strcmp(n, name) == 0 &&
            (strcmp(kind, "StatefulSet") == 0 || strcmp(kind, "Etcd") == 0))
            return json_is_true(json_object_get(o, "ready"));
    }
    return 0;
}

static int changed_in(const json_t *report, const char *field)
{
    size_t i;
    const json_t *e;
    json_array_foreach (json_object_get(report, field), i, e) {
        const char *outcome = json_string_value(json_object_get(e, "outcome"));
        if (outcome && strcmp(outcome, "unchanged") != 0 && strcmp(outcome, "kept") != 0)
            return 1;
    }
    return json_array_size(json_object_get(report, "pruned")) > 0 && strcmp(field, "pruned") == 0;
}

/* Register Cell and Database records when the topology server is up: {"registered", "reason",
 * "message", "changed"}; NULL when not attempted (asked not to, or the cluster is going). */
static json_t *register_topology(const mgo_plugin *p, const struct options *o, const json_t *chosen,
                                 const struct model *m)
{
    if (json_is_false(json_object_get(o->topology, "register")))
        return NULL;
    if (!topology_reachable(m, o->observed))
        return json_pack("{s:b, s:s, s:s, s:b}", "registered", 0, "reason", "WaitingForTopology",
                         "message", "the managed topology server is not ready yet", "changed", 0);
    const json_t *dl = json_object_get(o->topology, "deadline_ms");
    int64_t timeout = json_is_integer(dl) && json_integer_value(dl) > 0 ? json_integer_value(dl)
                                                                        : REGISTER_DEADLINE_MS;
    char msg[512] = "";
    json_t *out = NULL;
    int32_t rc = api_topo_register(p, o->topology, chosen, topo_deadline_after(timeout), &out, msg,
                                   sizeof(msg));
    json_t *t;
    if (rc == MGO_OK) {
        int changed =
            changed_in(out, "cells") || changed_in(out, "databases") || changed_in(out, "pruned");
        char text[600];
        (void)snprintf(text, sizeof(text), "cells and databases registered under %s",
                       json_string_value(json_object_get(out, "root")));
        t = json_pack("{s:b, s:s, s:s, s:b}", "registered", 1, "reason", "Registered", "message",
                      text, "changed", changed);
    } else {
        core_utf8_sanitize(msg);
        t = json_pack("{s:b, s:s, s:s, s:b}", "registered", 0, "reason",
                      rc == MGO_EAGAIN ? "TopologyUnavailable" : "TopologyError", "message", msg,
                      "changed", 0);
    }
    json_decref(out);
    return t;
}

static int add_topology_event(json_t *actions, const json_t *t, const struct model *m)
{
    int ok = json_is_true(json_object_get(t, "registered"));
    const char *reason = json_string_value(json_object_get(t, "reason"));
    if (!t || (ok && !json_is_true(json_object_get(t, "changed"))) ||
        (reason && strcmp(reason, "WaitingForTopology") == 0))
        return 0;
    return json_array_append_new(
        actions,
        json_pack("{s:s, s:s, s:s, s:O, s:{s:s, s:s, s:s}}", "type", "event", "eventType",
                  ok ? "Normal" : "Warning", "reason", ok ? "TopoRegistered" : "TopologyWaiting",
                  "message", json_object_get(t, "message"), "regarding", "kind", "MultigresCluster",
                  "name", m->cluster, "namespace", m->ns));
}

static json_t *original_of(const struct request *r, const json_t *chosen)
{
    return json_array_get(r->docs, (size_t)json_integer_value(json_object_get(chosen, "document")));
}

/* The kubernetes target's "certificates": Secrets only the host can fill (random keys). */
static int set_certificates(const struct model *m, json_t *result)
{
    json_t *certs = json_array();
    int rc = certs ? kube_certificates(m, certs) : -ENOMEM;
    if (!rc && json_object_set(result, "certificates", certs))
        rc = -ENOMEM;
    json_decref(certs);
    return rc;
}

/* Model, topology, render, plan: the result fields of a valid cluster. */
static int32_t pass(const mgo_plugin *p, const struct request *r, const struct options *o,
                    const json_t *chosen, json_t *result)
{
    const json_t *meta = json_object_get(original_of(r, chosen), "metadata");
    struct model m = {0};
    struct reconcile_result out = {0};
    json_t *desired = json_array(), *ports = recorded_ports(o->observed), *topology = NULL;
    int rc = !desired || !ports ? -ENOMEM : model_build(json_object_get(chosen, "resolved"), &m);
    if (!rc) {
        m.uid = json_string_value(json_object_get(meta, "uid"));
        if (!m.uid) /* the host may know it apart from the document (mgo render --owner-uid) */
            m.uid = json_string_value(json_object_get(r->root, "uid"));
        struct render_ctx c = {.m = &m, .ports = ports, .port_base = o->port_base};
        rc = strcmp(o->target, "process") == 0 ? render_process(&c, desired)
                                               : render_kubernetes(&c, desired);
    }
    int deleting = o->deleting || json_is_string(json_object_get(meta, "deletionTimestamp"));
    if (!rc) {
        topology = deleting ? NULL : register_topology(p, o, chosen, &m);
        const json_t *gen = json_object_get(meta, "generation");
        struct reconcile_input in = {
            .m = &m,
            .desired = desired,
            .observed = o->observed,
            .now_ms = api_now_ms(p),
            .generation = o->generation >= 0     ? o->generation
                          : json_is_integer(gen) ? json_integer_value(gen)
                                                 : -1,
            .deleting = deleting,
            .topology = topology,
        };
        rc = reconcile_plan(&in, &out);
    }
    if (!rc)
        rc = add_topology_event(out.actions, topology, &m) ||
             json_object_set(result, "actions", out.actions) ||
             json_object_set(result, "status", out.status) ||
             json_object_set_new(result, "requeue_after_ms", json_integer(out.requeue_after_ms)) ||
             (topology && json_object_set(result, "topology", topology)) ||
             (o->include_desired && json_object_set(result, "desired", desired));
    if (!rc && !deleting && strcmp(o->target, "kubernetes") == 0)
        rc = set_certificates(&m, result);
    if (rc == -EINVAL)
        core_log(MGO_LOG_ERROR, "reconcile: the resolved cluster has an unexpected shape");
    if (rc == -ERANGE) /* the process target ran out of ports above port_base */
        core_result_set_error(result, MGO_EINVAL,
                              "request: process.port_base leaves too few free ports");
    reconcile_result_fini(&out);
    model_free(&m);
    json_decref(desired);
    json_decref(ports);
    json_decref(topology);
    return rc == 0         ? MGO_OK
           : rc == -EINVAL ? MGO_EINTERNAL
           : rc == -ERANGE ? MGO_EINVAL
                           : MGO_ENOMEM;
}

/* The pass for an invalid cluster: the report, plus a status saying why, and nothing else. */
static int32_t invalid_pass(const mgo_plugin *p, const struct request *r, const struct options *o,
                            const char *name, json_t *result)
{
    struct reconcile_result out = {0};
    const json_t *doc = NULL;
    size_t i;
    const json_t *obj;
    json_array_foreach (json_object_get(result, "objects"), i, obj)
        if (json_is_string(json_object_get(obj, "kind")) &&
            strcmp(json_string_value(json_object_get(obj, "kind")), "MultigresCluster") == 0 &&
            (!name || (json_is_string(json_object_get(obj, "name")) &&
                       strcmp(json_string_value(json_object_get(obj, "name")), name) == 0)))
            doc = obj;
    json_t *errors =
        doc ? json_pack("[O]", doc) : json_deep_copy(json_object_get(result, "objects"));
    const json_t *meta =
        doc ? json_object_get(json_array_get(r->docs, (size_t)json_integer_value(
                                                          json_object_get(doc, "document"))),
                              "metadata")
            : NULL;
    int64_t generation = o->generation >= 0 ? o->generation
                         : json_is_integer(json_object_get(meta, "generation"))
                             ? json_integer_value(json_object_get(meta, "generation"))
                             : -1;
    const char *cluster = doc ? json_string_value(json_object_get(doc, "name")) : name;
    const char *ns = doc ? json_string_value(json_object_get(doc, "namespace")) : r->ns;
    int deleting = o->deleting || json_is_string(json_object_get(meta, "deletionTimestamp"));
    int rc = !errors;
    if (!rc && deleting) {
        /* A cluster on its way out is removed even when its spec no longer validates (say its
         * template went first): every object but the volumes, whose policy is unknown now. */
        struct model m = {.cluster = cluster ? cluster : "", .ns = ns ? ns : r->ns};
        json_t *none = json_array();
        struct reconcile_input in = {.m = &m,
                                     .desired = none,
                                     .observed = o->observed,
                                     .now_ms = api_now_ms(p),
                                     .generation = generation,
                                     .deleting = 1};
        rc = !none || reconcile_plan(&in, &out);
        json_decref(none);
    } else if (!rc) {
        rc = reconcile_invalid(cluster ? cluster : "", ns ? ns : r->ns, o->observed, errors,
                               api_now_ms(p), generation, &out);
    }
    rc = rc || json_object_set(result, "actions", out.actions) ||
         json_object_set(result, "status", out.status) ||
         json_object_set_new(result, "requeue_after_ms", json_integer(out.requeue_after_ms));
    json_decref(errors);
    reconcile_result_fini(&out);
    return rc ? MGO_ENOMEM : MGO_EINVAL;
}

int32_t api_reconcile(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                      size_t *ret_len)
{
    struct request r;
    struct options o;
    char msg[512] = "";
    json_t *report = NULL, *clusters = NULL, *result = NULL;
    int32_t rc = api_request_parse(request, len, &r, msg, sizeof(msg));
    if (rc == MGO_OK)
        rc = read_options(r.root, &o, msg, sizeof(msg));
    if (rc == MGO_EINVAL) {
        api_request_fini(&r);
        return api_fail(rc, msg, ret_result, ret_len);
    }
    if (rc == MGO_OK)
        rc = api_evaluate(p, &r, &report, &clusters);
    if (rc != MGO_OK) {
        api_request_fini(&r);
        return rc;
    }
    const char *name = json_string_value(json_object_get(r.root, "cluster"));
    const json_t *chosen = api_pick_cluster(clusters, report, name, msg, sizeof(msg));
    if (!chosen) {
        /* Either no such cluster (msg set) or it is invalid (the report lists why). */
        int invalid_cluster = !msg[0];
        result = report;
        report = NULL;
        rc = MGO_EINVAL;
        if (invalid_cluster && o.target)
            rc = invalid_pass(p, &r, &o, name, result);
        core_utf8_sanitize(msg);
        if (rc == MGO_EINVAL)
            core_result_set_error(result, MGO_EINVAL, invalid_cluster ? "invalid cluster" : msg);
    } else {
        result = json_pack("{s:O, s:O, s:O}", "resolved", json_object_get(chosen, "resolved"),
                           "templates", json_object_get(chosen, "templates"), "objects",
                           json_object_get(report, "objects"));
        rc = !result ? MGO_ENOMEM : o.target ? pass(p, &r, &o, chosen, result) : MGO_OK;
    }
    json_decref(report);
    json_decref(clusters);
    api_request_fini(&r);
    if (rc == MGO_ENOMEM || rc == MGO_EINTERNAL) {
        json_decref(result);
        return rc;
    }
    return api_finish(result, rc, ret_result, ret_len);
}
