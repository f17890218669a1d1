/* One reconcile pass: plain objects, the deletion path, and the driver (see reconcile.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "render/render.h"
#include "spec/quantity.h"
#include "reconcile/reconcile.h"

const char *plan_kind_key(const char *kind, const char *name, char *buf, size_t size)
{
    (void)snprintf(buf, size, "%s/%s", kind ? kind : "", name ? name : "");
    return buf;
}

const char *plan_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Observed entries carry "annotations" at the top; rendered objects under metadata. */
const char *plan_annotation(const json_t *o, const char *key)
{
    const json_t *a = json_object_get(o, "annotations");
    if (!a)
        a = json_object_get(json_object_get(o, "metadata"), "annotations");
    return json_string_value(json_object_get(a, key));
}

const char *plan_hash(const json_t *o)
{
    return plan_annotation(o, RENDER_SPEC_HASH);
}

int plan_is_instance_kind(const char *kind)
{
    return kind && (strcmp(kind, RENDER_KIND_POD) == 0 || strcmp(kind, RENDER_KIND_INSTANCE) == 0);
}

int plan_is_volume_kind(const char *kind)
{
    return kind && (strcmp(kind, RENDER_KIND_PVC) == 0 || strcmp(kind, RENDER_KIND_VOLUME) == 0);
}

void plan_rfc3339(int64_t ms, char *out, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        (void)snprintf(out, size, "1970-01-01T00:00:00Z");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t plan_parse_rfc3339(const char *text)
{
    int y, mo, d, h, mi, sec, used = 0;
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; text && i < sizeof(shape) - 1; i++)
        if (shape[i] == 'd' ? !(text[i] >= '0' && text[i] <= '9') : text[i] != shape[i])
            return -1;
    if (!text ||
        sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || used != 19)
        return -1;
    const char *rest = text + used;
    if (*rest == '.') {
        if (!(rest[1] >= '0' && rest[1] <= '9'))
            return -1;
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    }
    if (strcmp(rest, "Z") != 0)
        return -1;
    return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000;
}

static void append(struct plan *p, json_t *action, int write)
{
    if (!action || json_array_append_new(p->actions, action))
        p->oom = 1;
    else if (write)
        p->writes++;
}

void plan_apply(struct plan *p, const json_t *object, const char *reason)
{
    append(p, json_pack("{s:s, s:s, s:O}", "type", "apply", "reason", reason, "object", object), 1);
}

/* A delete names the observed object's uid and resourceVersion (when the host gave them) as
 * preconditions, so that a replaced object of the same name is never deleted by mistake. */
void plan_delete(struct plan *p, const json_t *observed, const char *reason)
{
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "delete", "reason", reason, "kind",
                          plan_str(observed, "kind"), "name", plan_str(observed, "name"),
                          "namespace", p->in->m->ns);
    const char *uid = plan_str(observed, "uid"), *rv = plan_str(observed, "resourceVersion");
    if (a && ((uid && json_object_set_new(a, "uid", json_string(uid))) ||
              (rv && json_object_set_new(a, "resourceVersion", json_string(rv))))) {
        json_decref(a);
        a = NULL;
    }
    append(p, a, 1);
}

static json_t *value_or_null(const char *v)
{
    return v ? json_string(v) : json_null();
}

void plan_annotate(struct plan *p, const json_t *observed, const char *key1, const char *value1,
                   const char *key2, const char *value2)
{
    json_t *ann = json_object();
    if (ann && (json_object_set_new(ann, key1, value_or_null(value1)) ||
                (key2 && json_object_set_new(ann, key2, value_or_null(value2))))) {
        json_decref(ann);
        ann = NULL;
    }
    json_t *a = ann ? json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", "annotate", "kind",
                                plan_str(observed, "kind"), "name", plan_str(observed, "name"),
                                "namespace", p->in->m->ns, "annotations", ann)
                    : NULL;
    const char *rv = plan_str(observed, "resourceVersion");
    if (a && rv && json_object_set_new(a, "resourceVersion", json_string(rv))) {
        json_decref(a);
        a = NULL;
    }
    append(p, a, 1);
}

void plan_event(struct plan *p, const char *type, const char *reason, const char *kind,
                const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    core_utf8_sanitize(msg);
    append(p,
           json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "type", "event", "eventType", type,
                     "reason", reason, "message", msg, "regarding", "kind",
                     kind ? kind : "MultigresCluster", "name", name ? name : p->in->m->cluster,
                     "namespace", p->in->m->ns),
           0);
}

/* This cluster's objects among the observed: labelled with the cluster and managed by mgo. */
static int index_observed(struct plan *p)
{
    size_t i;
    const json_t *o;
    char key[600];
    json_array_foreach (json_object_get(p->in->observed, "objects"), i, o) {
        const json_t *labels = json_object_get(o, "labels");
        const char *cluster = plan_str(labels, "multigres.com/cluster");
        const char *by = plan_str(labels, "app.kubernetes.io/managed-by");
        if (!json_is_object(o) || !plan_str(o, "kind") || !plan_str(o, "name") || !cluster ||
            strcmp(cluster, p->in->m->cluster) != 0 || !by || strcmp(by, RENDER_MANAGED_BY) != 0)
            continue;
        /* Secrets are the host's (the result's "certificates": their keys are random, so no
         * target renders them) and never acted on here, whoever reports them. */
        if (strcmp(plan_str(o, "kind"), "Secret") == 0)
            continue;
        /* Pods of Deployments and StatefulSets carry the workload's labels: only pool pods are
         * instances; the others belong to their workload and are never acted on one by one. */
        const char *component = plan_str(labels, "app.kubernetes.io/component");
        if (plan_is_instance_kind(plan_str(o, "kind")) &&
            (!component || strcmp(component, "shard-pool") != 0))
            continue;
        /* Kubernetes' own limits: longer identities are no object mgo made, and would not fit
         * the keys below */
        if (strlen(plan_str(o, "kind")) > 63 || strlen(plan_str(o, "name")) > 253) {
            core_log(MGO_LOG_WARN, "reconcile: ignoring an observed object with an over-long "
                                   "kind or name");
            continue;
        }
        if (json_object_set(
                p->observed,
                plan_kind_key(plan_str(o, "kind"), plan_str(o, "name"), key, sizeof(key)),
                (json_t *)o))
            return -ENOMEM;
        if (json_is_true(json_object_get(o, "failed")) &&
            (p->failed++, json_array_append_new(p->failures, json_string(plan_str(o, "name")))))
            return -ENOMEM;
    }
    return 0;
}

static int index_desired(struct plan *p)
{
    size_t i;
    const json_t *d;
    char key[600];
    json_array_foreach (p->in->desired, i, d) {
        const json_t *meta = json_object_get(d, "metadata");
        if (json_object_set(
                p->desired,
                plan_kind_key(plan_str(d, "kind"), plan_str(meta, "name"), key, sizeof(key)),
                (json_t *)d))
            return -ENOMEM;
    }
    return 0;
}

/* A PVC can only grow once it exists (the API server refuses every other change to its spec,
 * and shrinking is refused by the update rules): apply a drifted claim only when the size it
 * asks for grows. Every other kind may change. */
static int claim_may_change(const json_t *observed, const json_t *desired)
{
    if (strcmp(plan_str(desired, "kind"), RENDER_KIND_PVC) != 0)
        return 1;
    json_t *want = json_string(plan_annotation(desired, RENDER_STORAGE_REQUEST));
    json_t *have = json_string(plan_annotation(observed, RENDER_STORAGE_REQUEST));
    long double w, h;
    int grows = want && have && quantity_parse(want, &w) == 0 && quantity_parse(have, &h) == 0 &&
                quantity_compare(w, h) > 0;
    int unknown = want && !have; /* made before sizes were recorded: apply once */
    json_decref(want);
    json_decref(have);
    return grows || unknown;
}

/* Everything that is not an instance: create what is missing, update what drifted. Volumes are
 * created with their instance's group and updated (grown) in place; never deleted here. */
static void plan_plain(struct plan *p)
{
    size_t i;
    const json_t *d;
    char key[600];
    json_array_foreach (p->in->desired, i, d) {
        const char *kind = plan_str(d, "kind");
        const char *name = plan_str(json_object_get(d, "metadata"), "name");
        if (plan_is_instance_kind(kind))
            continue;
        const json_t *o = json_object_get(p->observed, plan_kind_key(kind, name, key, sizeof(key)));
        if (!o) {
            plan_apply(p, d, "create");
            p->busy = 1;
        } else if (!plan_hash(o) || strcmp(plan_hash(o), plan_hash(d)) != 0) {
            if (claim_may_change(o, d)) {
                plan_apply(p, d, "update");
                p->busy = 1;
            }
        } else if (json_is_false(json_object_get(o, "ready"))) {
            p->busy = 1; /* a workload still rolling out or starting */
        }
        if (o && json_object_set_new(p->handled, key, json_true()))
            p->oom = 1;
    }
}

/* Observed objects that belong to nothing in the spec, other than instances (drained first by
 * plan_instances) and volumes (which follow their policy there): delete them. */
static void plan_orphans(struct plan *p)
{
    const char *key;
    const json_t *o;
    json_object_foreach (p->observed, key, o) {
        const char *kind = plan_str(o, "kind");
        if (json_object_get(p->handled, key) || json_object_get(p->desired, key) ||
            plan_is_instance_kind(kind) || plan_is_volume_kind(kind))
            continue;
        if (json_is_true(json_object_get(o, "deleting"))) {
            p->busy = 1;
            continue;
        }
        plan_delete(p, o, "not-in-spec");
        plan_event(p, "Normal", "Deleted", kind, plan_str(o, "name"),
                   "%s %s belongs to nothing in the spec", kind, plan_str(o, "name"));
        p->busy = 1;
    }
}

/* Does a volume go when the cluster is deleted? The topology server's always (metadata that
 * is registered again); a data volume when its whenDeleted policy says Delete: the process
 * target says so in the Volume's spec, the Kubernetes target by owning the PVC; a volume the
 * spec no longer renders (kept by whenScaled: Retain) by its pool's policy. The backup volume
 * never. */
static int volume_goes_with_cluster(const struct plan *p, const char *key, const json_t *o)
{
    const json_t *labels = json_object_get(o, "labels");
    const char *component = plan_str(labels, "app.kubernetes.io/component");
    if (component && strcmp(component, "toposerver") == 0)
        return 1;
    const json_t *d = json_object_get(p->desired, key);
    if (d) {
        const char *policy = plan_str(json_object_get(d, "spec"), "whenDeleted");
        if (strcmp(plan_str(d, "kind"), RENDER_KIND_VOLUME) == 0)
            return policy && strcmp(policy, "Delete") == 0;
        return json_array_size(json_object_get(json_object_get(d, "metadata"), "ownerReferences")) >
               0;
    }
    const struct model_group *g = plan_group_of(p->in->m, labels);
    return g && g->when_deleted_delete;
}

/* The cluster resource is being deleted: remove every object at once (no drain: nothing would
 * take over); volumes only once no instance is left, and only those whose policy lets them go. */
static void plan_deletion(struct plan *p)
{
    const char *key;
    const json_t *o;
    int instances_left = 0;
    json_object_foreach (p->observed, key, o)
        instances_left |= plan_is_instance_kind(plan_str(o, "kind"));
    json_object_foreach (p->observed, key, o) {
        if (plan_is_volume_kind(plan_str(o, "kind"))) {
            if (!volume_goes_with_cluster(p, key, o))
                continue;
            if (instances_left) {
                p->busy = 1; /* after the instances that use them */
                continue;
            }
        }
        p->busy = 1;
        if (!json_is_true(json_object_get(o, "deleting")))
            plan_delete(p, o, "cluster-deleted");
    }
}

int plan_init(struct plan *p, const struct reconcile_input *in)
{
    memset(p, 0, sizeof(*p));
    p->in = in;
    p->observed = json_object();
    p->desired = json_object();
    p->handled = json_object();
    p->actions = json_array();
    p->instances = json_array();
    p->pools = json_array();
    p->failures = json_array();
    p->unavailable = json_array();
    if (!p->observed || !p->desired || !p->handled || !p->actions || !p->instances || !p->pools ||
        !p->failures || !p->unavailable)
        return -ENOMEM;
    if (index_observed(p) || index_desired(p))
        return -ENOMEM;
    return 0;
}

void plan_fini(struct plan *p)
{
    json_decref(p->observed);
    json_decref(p->desired);
    json_decref(p->handled);
    json_decref(p->actions);
    json_decref(p->instances);
    json_decref(p->pools);
    json_decref(p->failures);
    json_decref(p->unavailable);
}

int reconcile_plan(const struct reconcile_input *in, struct reconcile_result *ret)
{
    struct plan p;
    json_t *status = NULL;
    int rc = plan_init(&p, in);
    if (!rc) {
        if (in->deleting) {
            plan_deletion(&p);
        } else {
            plan_plain(&p);
            plan_instances(&p);
            plan_orphans(&p);
        }
        rc = p.oom ? -ENOMEM : plan_status(&p, &status);
    }
    if (rc || p.oom) {
        json_decref(status);
        plan_fini(&p);
        return -ENOMEM;
    }
    ret->actions = json_incref(p.actions);
    ret->status = status;
    /* Something moved or waits: look again soon; a drain advances every couple of seconds. */
    ret->requeue_after_ms = p.writes || p.busy ? 2000 : p.blocked ? 5000 : 0;
    if (!ret->requeue_after_ms && p.instances_ready < p.instances_total)
        ret->requeue_after_ms = 10000;
    if (in->topology && !json_is_true(json_object_get(in->topology, "registered")) &&
        (!ret->requeue_after_ms || ret->requeue_after_ms > 5000))
        ret->requeue_after_ms = 5000;
    plan_fini(&p);
    return 0;
}

void reconcile_result_fini(struct reconcile_result *r)
{
    json_decref(r->actions);
    json_decref(r->status);
    memset(r, 0, sizeof(*r));
}
