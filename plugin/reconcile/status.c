/* The status a pass publishes, and the pass for an invalid spec (see reconcile.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "reconcile/reconcile.h"

/* A condition in the Kubernetes shape; lastTransitionTime stays the observed one while the
 * condition's status does not change. */
static int add_condition(json_t *conds, const json_t *observed_status, const char *type, int status,
                         const char *reason, const char *message, int64_t now_ms,
                         int64_t generation)
{
    char at[40];
    const char *value = status ? "True" : "False";
    size_t i;
    const json_t *old;
    plan_rfc3339(now_ms, at, sizeof(at));
    json_array_foreach (json_object_get(observed_status, "conditions"), i, old)
        if (json_is_string(json_object_get(old, "type")) &&
            strcmp(plan_str(old, "type"), type) == 0 && plan_str(old, "status") &&
            strcmp(plan_str(old, "status"), value) == 0 &&
            plan_parse_rfc3339(plan_str(old, "lastTransitionTime")) >= 0)
            (void)snprintf(at, sizeof(at), "%s", plan_str(old, "lastTransitionTime"));
    json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type, "status", value, "reason",
                          reason, "message", message, "lastTransitionTime", at);
    if (c && generation >= 0 &&
        json_object_set_new(c, "observedGeneration", json_integer(generation))) {
        json_decref(c);
        c = NULL;
    }
    return !c || json_array_append_new(conds, c) ? -ENOMEM : 0;
}

static void join_names(const json_t *names, char *out, size_t size)
{
    size_t i, used = 0;
    const json_t *n;
    out[0] = '\0';
    json_array_foreach (names, i, n) {
        int w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", json_string_value(n));
        if (w < 0 || (size_t)w >= size - used)
            break;
        used += (size_t)w;
    }
    core_utf8_sanitize(out); /* names are the host's text, cut to fit */
}

static const char *phase_of(const struct plan *p, const json_t *observed_status)
{
    const char *old = plan_str(observed_status, "phase");
    if (p->failed)
        return "Degraded";
    if (!p->in->deleting && !p->busy && !p->blocked && !p->drifted &&
        p->instances_ready == p->instances_total &&
        (!p->in->topology || json_is_true(json_object_get(p->in->topology, "registered"))))
        return "Healthy";
    if (p->instances_ready == 0 && (!old || strcmp(old, "Initializing") == 0))
        return "Initializing";
    return "Progressing";
}

static int add_conditions(struct plan *p, json_t *conds, const json_t *old, int64_t gen)
{
    char msg[1024], names[900];
    int64_t now = p->in->now_ms;
    int rc;
    join_names(p->unavailable, names, sizeof(names));
    if (json_array_size(p->unavailable))
        (void)snprintf(msg, sizeof(msg), "no ready primary in shard %s", names);
    else
        (void)snprintf(msg, sizeof(msg), "%zu/%zu instances ready", p->instances_ready,
                       p->instances_total);
    rc = add_condition(conds, old, "Available", json_array_size(p->unavailable) == 0,
                       json_array_size(p->unavailable) ? "ShardUnavailable" : "ShardsAvailable",
                       msg, now, gen);
    int moving = p->busy || p->blocked || p->drifted || p->instances_ready < p->instances_total;
    rc |= add_condition(conds, old, "Progressing", moving,
                        p->overdue   ? "DrainOverdue"
                        : p->blocked ? "Blocked"
                        : moving     ? "Reconciling"
                                     : "Converged",
                        p->overdue   ? "a drain is past its deadline and keeps retrying"
                        : p->blocked ? "a step waits for the rest of its shard to be ready"
                        : moving     ? "objects are being created, updated, drained or started"
                                     : "every object matches the spec",
                        now, gen);
    join_names(p->failures, names, sizeof(names));
    (void)snprintf(msg, sizeof(msg), "failed: %s", names);
    rc |= add_condition(conds, old, "Degraded", p->failed > 0,
                        p->failed ? "ComponentFailed" : "AsExpected",
                        p->failed ? msg : "no component reported failed", now, gen);
    (void)snprintf(msg, sizeof(msg), "%d of %zu instances to update", p->drifted,
                   p->instances_total);
    rc |= add_condition(conds, old, "RollingUpdate", p->drifted > 0,
                        p->drifted ? "PodsDrifted" : "PodsUpToDate",
                        p->drifted ? msg : "every instance runs the current spec", now, gen);
    const json_t *t = p->in->topology;
    if (t)
        rc |= add_condition(conds, old, "TopologyRegistered",
                            json_is_true(json_object_get(t, "registered")),
                            plan_str(t, "reason") ? plan_str(t, "reason") : "Registered",
                            plan_str(t, "message") ? plan_str(t, "message") : "", now, gen);
    if (p->in->deleting)
        rc |= add_condition(conds, old, "ReadyForDeletion", !p->busy,
                            p->busy ? "CleanupInProgress" : "CleanupComplete",
                            p->busy ? "objects are being deleted"
                                    : "every object is gone except retained volumes",
                            now, gen);
    return rc ? -ENOMEM : 0;
}

/* Publish `status` only when it differs from the observed one; a new phase is an event. */
static void publish(struct plan *p, json_t *status, const json_t *old)
{
    if (old && json_equal(status, (json_t *)old))
        return;
    const char *was = plan_str(old, "phase"), *now = plan_str(status, "phase");
    if (!was || strcmp(was, now) != 0)
        plan_event(p, "Normal", "PhaseChange", NULL, NULL, "phase %s -> %s", was ? was : "(none)",
                   now);
    json_t *a = json_pack("{s:s, s:O}", "type", "status", "status", status);
    if (!a || json_array_append_new(p->actions, a))
        p->oom = 1;
}

int plan_status(struct plan *p, json_t **ret_status)
{
    const json_t *old = json_object_get(p->in->observed, "status");
    int64_t gen = p->in->generation;
    json_t *conds = json_array();
    json_t *s =
        conds ? json_pack("{s:s, s:o, s:I, s:I, s:O, s:O}", "phase", phase_of(p, old), "conditions",
                          conds, "readyInstances", (json_int_t)p->instances_ready, "instances",
                          (json_int_t)p->instances_total, "pools", p->pools, "instanceStatus",
                          p->instances)
              : NULL;
    if (!s || (gen >= 0 && json_object_set_new(s, "observedGeneration", json_integer(gen))) ||
        add_conditions(p, conds, old, gen)) {
        json_decref(s);
        return -ENOMEM;
    }
    publish(p, s, old);
    *ret_status = s;
    return p->oom ? -ENOMEM : 0;
}

/* "path: reason; path: reason" of every error in the validate report. */
static void errors_text(const json_t *objects, char *out, size_t size)
{
    size_t i, j, used = 0;
    const json_t *o, *e;
    out[0] = '\0';
    json_array_foreach (objects, i, o)
        json_array_foreach (json_object_get(o, "errors"), j, e) {
            const char *path = plan_str(e, "path"), *reason = plan_str(e, "reason");
            int w = snprintf(out + used, size - used, "%s%s%s%s", used ? "; " : "",
                             path && *path ? path : "", path && *path ? ": " : "",
                             reason ? reason : "");
            if (w < 0 || (size_t)w >= size - used) {
                core_utf8_sanitize(out);
                return;
            }
            used += (size_t)w;
        }
}

int reconcile_invalid(const char *cluster, const char *ns, const json_t *observed,
                      const json_t *report_objects, int64_t now_ms, int64_t generation,
                      struct reconcile_result *ret)
{
    const json_t *old = json_object_get(observed, "status");
    char msg[2048];
    errors_text(report_objects, msg, sizeof(msg));
    json_t *status = json_is_object(old) ? json_deep_copy(old) : json_object();
    json_t *conds = json_array();
    json_t *actions = json_array();
    size_t i;
    const json_t *c;
    int rc = !status || !conds || !actions;
    json_array_foreach (json_object_get(old, "conditions"), i, c)
        if (!rc && strcmp(plan_str(c, "type") ? plan_str(c, "type") : "", "Degraded") != 0)
            rc = json_array_append(conds, (json_t *)c);
    if (!rc)
        rc = add_condition(conds, old, "Degraded", 1, "InvalidSpec", msg, now_ms, generation);
    if (!rc && !plan_str(status, "phase"))
        rc = json_object_set_new(status, "phase", json_string("Degraded"));
    if (!rc)
        rc = json_object_set(status, "conditions", conds);
    if (!rc && (!old || !json_equal(status, (json_t *)old)))
        rc = json_array_append_new(actions,
                                   json_pack("{s:s, s:O}", "type", "status", "status", status)) ||
             json_array_append_new(actions,
                                   json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "type",
                                             "event", "eventType", "Warning", "reason",
                                             "InvalidSpec", "message", msg, "regarding", "kind",
                                             "MultigresCluster", "name", cluster, "namespace", ns));
    json_decref(conds);
    if (rc) {
        json_decref(status);
        json_decref(actions);
        return -ENOMEM;
    }
    ret->actions = actions;
    ret->status = status;
    ret->requeue_after_ms = 0;
    return 0;
}
