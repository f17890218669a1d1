/*
 * mgo-kube's controller (ctrl.h): what it watches, how a key is reconciled, and how the actions
 * mgo_reconcile returns reach the API server.
 */
#include "ctrl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../../local/loader.h"
#include "certs.h"
#include "informer.h"
#include "klog.h"
#include "kmetrics.h"
#include "workqueue.h"

#define LABEL_MANAGED      "app.kubernetes.io/managed-by=mgo"
#define LABEL_CLUSTER      "multigres.com/cluster"
#define DRAIN_STATE        "drain.multigres.com/state"
#define GROUP              "multigres.com"
#define API_VERSION        "multigres.com/v1alpha1"
#define WRITE_TIMEOUT      10000
#define DRAIN_REQUEUE      1000
#define CONFLICT_REQUEUE   1000
#define CERT_RECHECK_MS    (24 * 3600 * 1000LL) /* a valid certificate is looked at again daily */
#define RECONCILE_CONFLICT 1                    /* reconcile(): a write refused with 409 */
#define FIELD_MANAGER      "mgo"
#define REPORTING_NAME     "multigres.com/mgo-kube"

static const struct kc_resource CLUSTERS = {GROUP, "v1alpha1", "multigresclusters", true};
static const struct kc_resource EVENTS = {"events.k8s.io", "v1", "events", true};
static const struct kc_resource SECRETS = {"", "v1", "secrets", true};

/* The kinds mgo reads: templates (whole objects) and what the kubernetes target renders
 * (projected). */
struct kind {
    const char *api_version;
    const char *kind;
    struct kc_resource res;
    /* its CRD may not be installed: its cache is not waited for (ctrl_synced) */
    bool optional;
};
static const struct kind CLUSTER_KIND = {
    API_VERSION, "MultigresCluster", {GROUP, "v1alpha1", "multigresclusters", true}, false};
static const struct kind TEMPLATES[] = {
    {API_VERSION, "CoreTemplate", {GROUP, "v1alpha1", "coretemplates", true}, false},
    {API_VERSION, "CellTemplate", {GROUP, "v1alpha1", "celltemplates", true}, false},
    {API_VERSION, "ShardTemplate", {GROUP, "v1alpha1", "shardtemplates", true}, false},
};
#define N_TEMPLATES (sizeof(TEMPLATES) / sizeof(TEMPLATES[0]))
static const struct kind OWNED[] = {
    {"v1", "Pod", {"", "v1", "pods", true}, false},
    {"v1", "PersistentVolumeClaim", {"", "v1", "persistentvolumeclaims", true}, false},
    {"v1", "Service", {"", "v1", "services", true}, false},
    {"v1", "ConfigMap", {"", "v1", "configmaps", true}, false},
    {"apps/v1", "Deployment", {"apps", "v1", "deployments", true}, false},
    {"apps/v1", "StatefulSet", {"apps", "v1", "statefulsets", true}, false},
    {"policy/v1", "PodDisruptionBudget", {"policy", "v1", "poddisruptionbudgets", true}, false},
    /* only with spec.certCommonName or spec.internalTLS, and cert-manager may not be installed */
    {"cert-manager.io/v1", "Certificate", {"cert-manager.io", "v1", "certificates", true}, true},
};
#define N_OWNED (sizeof(OWNED) / sizeof(OWNED[0]))
/* The certificates' Secrets: watched (a deleted one is written again), never passed to the
 * library, which does not render them (docs/abi.md, "certificates"). */
static const struct kind SECRET_KIND = {"v1", "Secret", {"", "v1", "secrets", true}, false};

struct worker {
    struct ctrl *c;
    pthread_t thread;
    struct kc_client *client;
    mgo_plugin *plugin;
};

struct ctrl {
    struct ctrl_options o;
    const struct loader_lib *lib;
    struct kmetrics *reg;
    struct kc_config cfg;
    struct informer *clusters;
    struct informer *templates[N_TEMPLATES];
    struct informer *owned[N_OWNED];
    struct informer *secrets; /* the certificates' Secrets, with their data */
    struct wq *q;
    struct worker *workers;
    int n_started;
    atomic_int stop;
    pthread_mutex_t mu; /* workers' start */
    pthread_mutex_t ev_mu;
    json_t *events_sent; /* "ns/kind/name/reason/note" -> when (ms, monotonic) */
    /* certificates judged valid: "ns/caSecret" -> {entry, ca_rv, tls_rv, due}, so that a pass
     * over unchanged Secrets parses no key (ensure_certificate) */
    pthread_mutex_t cert_mu;
    json_t *certs_valid;
};

/* An Event already sent within this long is not sent again (a drain overdue, a topology that
 * cannot be reached, and a pass retried after a conflict report the same thing again). */
#define EVENT_REPEAT_MS (300 * 1000)
#define EVENT_MEMORY    4096

/* ---- small helpers ------------------------------------------------------------------------- */

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const json_t *path2(const json_t *o, const char *a, const char *b)
{
    return json_object_get(json_object_get(o, a), b);
}

static const struct kind *kind_of(const char *kind)
{
    for (size_t i = 0; kind && i < N_OWNED; i++)
        if (strcmp(OWNED[i].kind, kind) == 0)
            return &OWNED[i];
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Split "ns/name" into its parts (into buf). */
static int split_key(const char *key, char *buf, size_t size, const char **ns, const char **name)
{
    int n = snprintf(buf, size, "%s", key);
    char *slash;

    if (n < 0 || (size_t)n >= size || !(slash = strchr(buf, '/')))
        return -EINVAL;
    *slash = '\0';
    *ns = buf;
    *name = slash + 1;
    return 0;
}

/* ---- what the informers keep ---------------------------------------------------------------- */

/* The whole object but metadata.managedFields, which mgo never reads and which is often the
 * larger part. */
static json_t *project_whole(const json_t *obj)
{
    json_t *v = json_deep_copy(obj);

    if (v)
        (void)json_object_del(json_object_get(v, "metadata"), "managedFields");
    return v;
}

static bool condition_true(const json_t *conditions, const char *type)
{
    size_t i;
    json_t *c;

    json_array_foreach (conditions, i, c)
        if (str_at(c, "type") && strcmp(str_at(c, "type"), type) == 0)
            return str_at(c, "status") && strcmp(str_at(c, "status"), "True") == 0;
    return false;
}

/* A workload (Deployment, StatefulSet) is ready when the controller observed its current spec
 * and as many replicas are ready as it asks for. */
static bool workload_ready(const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec"), *st = json_object_get(obj, "status");
    const json_t *r = json_object_get(spec, "replicas");
    json_int_t want = json_is_integer(r) ? json_integer_value(r) : 1;
    json_int_t gen = json_integer_value(path2(obj, "metadata", "generation"));
    json_int_t seen = json_integer_value(json_object_get(st, "observedGeneration"));

    /* readyReplicas alone counts the old revision's pods during a rollout */
    return seen >= gen && json_integer_value(json_object_get(st, "readyReplicas")) >= want &&
           json_integer_value(json_object_get(st, "updatedReplicas")) >= want;
}

static bool pod_failed(const json_t *obj)
{
    const json_t *st = json_object_get(obj, "status");
    const char *phase = str_at(st, "phase");
    const char *lists[] = {"containerStatuses", "initContainerStatuses"};
    size_t i;
    json_t *c;

    if (phase && strcmp(phase, "Failed") == 0)
        return true;
    for (size_t l = 0; l < 2; l++)
        json_array_foreach (json_object_get(st, lists[l]), i, c) {
            const char *why = str_at(path2(c, "state", "waiting"), "reason");
            if (why && strcmp(why, "CrashLoopBackOff") == 0)
                return true;
        }
    return false;
}

/* An owned object as mgo_reconcile's "observed" wants it (docs/abi.md), plus its namespace. */
static json_t *project_owned(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");
    const char *kind = str_at(obj, "kind");
    bool ready = true, failed = false;

    if (kind && strcmp(kind, "Pod") == 0) {
        ready = condition_true(path2(obj, "status", "conditions"), "Ready");
        failed = pod_failed(obj);
    } else if (kind && (strcmp(kind, "Deployment") == 0 || strcmp(kind, "StatefulSet") == 0)) {
        ready = workload_ready(obj);
    } else if (kind && strcmp(kind, "Certificate") == 0) {
        ready = condition_true(path2(obj, "status", "conditions"), "Ready");
    }
    return json_pack("{s:s?,s:s?,s:s?,s:s?,s:s?,s:O?,s:O?,s:b,s:b,s:b}", "kind", kind, "name",
                     str_at(md, "name"), "namespace", str_at(md, "namespace"), "uid",
                     str_at(md, "uid"), "resourceVersion", str_at(md, "resourceVersion"), "labels",
                     json_object_get(md, "labels"), "annotations",
                     json_object_get(md, "annotations"), "ready", ready, "failed", failed,
                     "deleting", json_object_get(md, "deletionTimestamp") != NULL);
}

/* A Secret of mgo's certificates: what judging it needs (data, labels, owner references), and
 * the cluster label to enqueue by. */
static json_t *project_secret(const json_t *obj)
{
    const json_t *md = json_object_get(obj, "metadata");

    return json_pack("{s:s?,s:s?,s:s?,s:s?,s:O?,s:O?,s:O?}", "name", str_at(md, "name"),
                     "namespace", str_at(md, "namespace"), "uid", str_at(md, "uid"),
                     "resourceVersion", str_at(md, "resourceVersion"), "labels",
                     json_object_get(md, "labels"), "ownerReferences",
                     json_object_get(md, "ownerReferences"), "data", json_object_get(obj, "data"));
}

/* ---- enqueueing ------------------------------------------------------------------------------ */

static void on_cluster(void *ctx, enum inf_change change, const char *key, const json_t *old,
                       const json_t *cur)
{
    struct ctrl *c = ctx;

    (void)change;
    (void)old;
    (void)cur;
    (void)wq_add(c->q, key);
}

static void enqueue_key(void *ctx, const char *key, const json_t *v)
{
    (void)v;
    (void)wq_add(((struct ctrl *)ctx)->q, key);
}

/* A template changed: every cluster of its namespace may use it. */
static void on_template(void *ctx, enum inf_change change, const char *key, const json_t *old,
                        const json_t *cur)
{
    struct ctrl *c = ctx;
    char prefix[600];
    const char *slash = strchr(key, '/');
    int n;

    (void)change;
    (void)old;
    (void)cur;
    if (!slash)
        return;
    n = snprintf(prefix, sizeof(prefix), "%.*s/", (int)(slash - key), key);
    if (n > 0 && (size_t)n < sizeof(prefix))
        inf_each(c->clusters, prefix, enqueue_key, c);
}

/* The cluster of an owned object: its multigres.com/cluster label (every object mgo renders
 * carries it; a Retain volume has no owner reference to follow). */
static void enqueue_owner(struct ctrl *c, const json_t *v)
{
    const char *ns = str_at(v, "namespace"), *name = NULL;
    char key[512];
    int n;

    name = json_string_value(path2(v, "labels", LABEL_CLUSTER));
    if (!ns || !name)
        return;
    n = snprintf(key, sizeof(key), "%s/%s", ns, name);
    if (n > 0 && (size_t)n < sizeof(key))
        (void)wq_add(c->q, key);
}

static void on_owned(void *ctx, enum inf_change change, const char *key, const json_t *old,
                     const json_t *cur)
{
    struct ctrl *c = ctx;

    (void)change;
    (void)key;
    if (old)
        enqueue_owner(c, old);
    if (cur && cur != old)
        enqueue_owner(c, cur);
}

static void inf_log(void *ctx, const char *resource, const char *msg)
{
    (void)ctx;
    klog_kv(KLOG_WARN, "resource", resource, NULL, NULL, "%s", msg);
}

/* ---- the request ----------------------------------------------------------------------------- */

struct gather {
    json_t *into;
    const char *cluster;
};

static void add_template(void *ctx, const char *key, const json_t *v)
{
    (void)key;
    (void)json_array_append(((struct gather *)ctx)->into, (json_t *)v);
}

static void add_owned(void *ctx, const char *key, const json_t *v)
{
    struct gather *g = ctx;
    const char *owner = json_string_value(path2(v, "labels", LABEL_CLUSTER));

    (void)key;
    if (owner && strcmp(owner, g->cluster) == 0)
        (void)json_array_append(g->into, (json_t *)v);
}

/* The request of one pass over `cluster` (the cached object). NULL when memory ran out. */
static json_t *build_request(struct ctrl *c, const json_t *cluster, const char *ns,
                             const char *name)
{
    char prefix[600];
    json_t *objects = json_array(), *observed = json_array(), *req = NULL, *status;
    struct gather g = {objects, name};

    (void)snprintf(prefix, sizeof(prefix), "%s/", ns); /* ns is a key part: short */
    if (!objects || !observed || json_array_append(objects, (json_t *)cluster) != 0)
        goto out;
    for (size_t i = 0; i < N_TEMPLATES; i++)
        inf_each(c->templates[i], prefix, add_template, &g);
    g.into = observed;
    for (size_t i = 0; i < N_OWNED; i++)
        inf_each(c->owned[i], prefix, add_owned, &g);
    status = json_object_get(cluster, "status");
    req =
        json_pack("{s:s,s:s,s:s,s:O,s:{s:O,s:O*},s:{s:b,s:I}}", "target", "kubernetes", "namespace",
                  ns, "cluster", name, "objects", objects, "observed", "objects", observed,
                  "status", json_is_object(status) ? status : NULL, "topology", "register",
                  c->o.topology, "deadline_ms", (json_int_t)c->o.topology_deadline_ms);
out:
    json_decref(objects);
    json_decref(observed);
    return req;
}

/* ---- executing actions ----------------------------------------------------------------------- */

struct pass {
    struct worker *w;
    const char *ns;
    const char *name;
    const char *key; /* ns/name, for logs */
    const json_t *cluster;
    json_t *touched; /* names of objects annotated or deleted in this pass */
    int writes;
};

/* Remember that this pass wrote to an object (its drain is not stepped in the same pass). */
static void touch(struct pass *p, const char *kind, const char *name)
{
    char key[400];

    (void)snprintf(key, sizeof(key), "%s/%s", kind, name);
    (void)json_object_set_new(p->touched, key, json_true()); /* lost on ENOMEM: a wasted 409 */
}

static bool touched(const struct pass *p, const char *kind, const char *name)
{
    char key[400];

    (void)snprintf(key, sizeof(key), "%s/%s", kind, name);
    return json_object_get(p->touched, key) != NULL;
}

static void count_write(struct pass *p, const char *verb, int rc)
{
    p->writes++;
    kmetrics_api_write(p->w->c->reg, verb, rc);
}

static int act_apply(struct pass *p, const json_t *a)
{
    const json_t *obj = json_object_get(a, "object");
    const struct kind *k = kind_of(str_at(obj, "kind"));
    struct kc_apply_options ao = {.field_manager = FIELD_MANAGER, .force = true};
    const char *name = str_at(json_object_get(obj, "metadata"), "name");
    int rc;

    if (!k || strcmp(k->api_version, str_at(obj, "apiVersion") ? str_at(obj, "apiVersion") : "")) {
        klog_kv(KLOG_ERROR, "cluster", p->key, "kind", str_at(obj, "kind"),
                "apply: mgo-kube does not manage this kind (%s)", str_at(obj, "apiVersion"));
        return -ENOTSUP;
    }
    rc = kc_apply(p->w->client, &k->res, p->ns, obj, &ao, WRITE_TIMEOUT, NULL);
    count_write(p, "apply", rc);
    if (rc != 0)
        klog_kv(KLOG_WARN, "cluster", p->key, "object", name, "apply %s: %s", k->kind,
                kc_last_error(p->w->client));
    else
        klog_kv(KLOG_DEBUG, "cluster", p->key, "object", name, "applied %s (%s)", k->kind,
                str_at(a, "reason"));
    return rc;
}

static int act_annotate(struct pass *p, const json_t *a)
{
    const struct kind *k = kind_of(str_at(a, "kind"));
    const char *name = str_at(a, "name"), *rv = str_at(a, "resourceVersion");
    json_t *patch;
    int rc;

    if (!k || !name)
        return -EINVAL;
    /* the resourceVersion makes the patch conditional: an annotation decided on a stale view
     * of the object is refused (409) and decided again */
    patch = json_pack("{s:{s:O,s:s?}}", "metadata", "annotations",
                      json_object_get(a, "annotations"), "resourceVersion", rv);
    if (!patch)
        return -ENOMEM;
    rc = kc_patch(p->w->client, &k->res, p->ns, name, NULL, KC_PATCH_MERGE, patch, WRITE_TIMEOUT,
                  NULL);
    json_decref(patch);
    count_write(p, "patch", rc);
    touch(p, k->kind, name);
    if (rc == -EREMOTEIO && kc_last_reason(p->w->client) == KC_REASON_NOT_FOUND)
        return 0; /* gone meanwhile: the next pass sees it so */
    if (rc != 0)
        klog_kv(KLOG_WARN, "cluster", p->key, "object", name, "annotate %s: %s", k->kind,
                kc_last_error(p->w->client));
    return rc;
}

static int act_delete(struct pass *p, const json_t *a)
{
    const struct kind *k = kind_of(str_at(a, "kind"));
    const char *name = str_at(a, "name");
    struct kc_delete_options d = {.uid = str_at(a, "uid"),
                                  .resource_version = str_at(a, "resourceVersion")};
    int rc;

    if (!k || !name)
        return -EINVAL;
    rc = kc_delete(p->w->client, &k->res, p->ns, name, &d, WRITE_TIMEOUT, NULL);
    count_write(p, "delete", rc);
    touch(p, k->kind, name);
    if (rc == -EREMOTEIO && kc_last_reason(p->w->client) == KC_REASON_NOT_FOUND)
        return 0; /* already gone */
    if (rc != 0)
        klog_kv(KLOG_WARN, "cluster", p->key, "object", name, "delete %s: %s", k->kind,
                kc_last_error(p->w->client));
    else
        klog_kv(KLOG_INFO, "cluster", p->key, "object", name, "deleted %s (%s)", k->kind,
                str_at(a, "reason"));
    return rc;
}

/* Whether the same Event went out less than EVENT_REPEAT_MS ago; if not, it is recorded as sent
 * now. The memory is bounded: it is forgotten whole when full. */
static bool event_is_repeat(struct ctrl *c, const char *ns, const char *kind, const char *name,
                            const char *reason, const char *note)
{
    char key[1600];
    int64_t now = mono_ms();
    json_t *when;
    bool repeat;

    (void)snprintf(key, sizeof(key), "%s/%s/%s/%s/%.1024s", ns, kind, name, reason, note);
    pthread_mutex_lock(&c->ev_mu);
    when = json_object_get(c->events_sent, key);
    repeat = when && now - json_integer_value(when) < EVENT_REPEAT_MS;
    if (!repeat) {
        if (json_object_size(c->events_sent) >= EVENT_MEMORY)
            json_object_clear(c->events_sent);
        (void)json_object_set_new(c->events_sent, key, json_integer(now)); /* ENOMEM: resent */
    }
    pthread_mutex_unlock(&c->ev_mu);
    return repeat;
}

/* The longest prefix of s of at most max bytes that does not cut a UTF-8 character. */
static size_t utf8_prefix(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

/* An events.k8s.io/v1 Event of action `a`. Best effort: a failure is logged, never fails the
 * pass. Unless `repeats`, not when the same one went out within EVENT_REPEAT_MS. */
static void send_event(struct pass *p, const json_t *a, bool repeats)
{
    const json_t *reg = json_object_get(a, "regarding");
    const char *rkind = str_at(reg, "kind"), *rname = str_at(reg, "name");
    const struct kind *k = kind_of(rkind);
    const char *rapi = rkind && strcmp(rkind, "MultigresCluster") == 0 ? API_VERSION
                       : k                                             ? k->api_version
                                                                       : NULL;
    const char *uid = NULL;
    char t[40], name[320], instance[200];
    struct timespec now;
    json_t *ev;
    int rc;

    const char *note = str_at(a, "message") ? str_at(a, "message") : "";
    const char *reason = str_at(a, "reason") ? str_at(a, "reason") : "Reconcile";

    if (!rname || !rapi ||
        (!repeats && event_is_repeat(p->w->c, p->ns, rkind, rname, reason, note)))
        return;
    if (strcmp(rkind, "MultigresCluster") == 0)
        uid = str_at(json_object_get(p->cluster, "metadata"), "uid");
    clock_gettime(CLOCK_REALTIME, &now);
    klog_microtime(t, sizeof(t));
    (void)snprintf(name, sizeof(name), "%.230s.%" PRIx64, rname,
                   (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
    (void)snprintf(instance, sizeof(instance), "mgo-kube-%.100s", p->w->c->o.identity);
    ev = json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:s,s:s,s:s%,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s?}}",
                   "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name", name,
                   "namespace", p->ns, "eventTime", t, "type",
                   str_at(a, "eventType") ? str_at(a, "eventType") : "Normal", "reason", reason,
                   "note", note, utf8_prefix(note, 1024), "action", "Reconcile",
                   "reportingController", REPORTING_NAME, "regarding", "apiVersion", rapi, "kind",
                   rkind, "name", rname, "namespace", p->ns, "uid", uid);
    if (!ev) {
        klog_kv(KLOG_WARN, "cluster", p->key, NULL, NULL, "event %s: could not be built", reason);
        return;
    }
    (void)json_object_set_new(ev, "reportingInstance", json_string(instance));
    rc = kc_create(p->w->client, &EVENTS, p->ns, ev, WRITE_TIMEOUT, NULL);
    count_write(p, "event", rc);
    if (rc != 0)
        klog_kv(KLOG_WARN, "cluster", p->key, NULL, NULL, "event %s: %s", str_at(a, "reason"),
                kc_last_error(p->w->client));
    json_decref(ev);
}

static void act_event(struct pass *p, const json_t *a)
{
    send_event(p, a, false);
}

/* The status subresource, conditional on the resourceVersion the pass read: a conflict means
 * the pass worked from a stale cluster, and it is done again. */
static int act_status(struct pass *p, const json_t *a)
{
    json_t *obj = json_deep_copy(p->cluster);
    int rc;

    if (!obj || json_object_set(obj, "status", json_object_get(a, "status")) != 0) {
        json_decref(obj);
        return -ENOMEM;
    }
    rc = kc_update_status(p->w->client, &CLUSTERS, p->ns, obj, WRITE_TIMEOUT, NULL);
    json_decref(obj);
    count_write(p, "status", rc);
    if (rc == -EREMOTEIO && kc_last_reason(p->w->client) == KC_REASON_CONFLICT) {
        kmetrics_conflict(p->w->c->reg);
        klog_kv(KLOG_INFO, "cluster", p->key, NULL, NULL,
                "status: conflict (the cluster changed meanwhile): reconciling again");
    } else if (rc != 0) {
        klog_kv(KLOG_WARN, "cluster", p->key, NULL, NULL, "status: %s",
                kc_last_error(p->w->client));
    }
    return rc;
}

/* Execute the actions in order; the first write that fails ends the pass (the rest was decided
 * on the assumption that it succeeded). */
static int execute(struct pass *p, const json_t *actions)
{
    size_t i;
    json_t *a;

    json_array_foreach (actions, i, a) {
        const char *type = str_at(a, "type");
        int rc = 0;
        if (atomic_load(&p->w->c->stop))
            return -ECANCELED; /* shutting down, or no longer leading: no more writes */
        if (!type)
            continue;
        if (strcmp(type, "apply") == 0)
            rc = act_apply(p, a);
        else if (strcmp(type, "annotate") == 0)
            rc = act_annotate(p, a);
        else if (strcmp(type, "delete") == 0)
            rc = act_delete(p, a);
        else if (strcmp(type, "event") == 0)
            act_event(p, a);
        else if (strcmp(type, "status") == 0)
            rc = act_status(p, a);
        else
            klog_kv(KLOG_WARN, "cluster", p->key, NULL, NULL, "unknown action type %s", type);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * The drain of a pod, the reference operator's way for the Multigres data plane (docs/spec
 * lifecycle.md, "Drain on Kubernetes"): the states only move forward, one step per pass,
 * requested -> draining -> acknowledged -> ready-for-deletion, each a conditional merge patch;
 * cohort membership is multiorch's, which reacts once the pod is gone. Returns how many drains
 * are under way (the caller comes back soon), or a negative error.
 */
static int step_drains(struct pass *p, const json_t *observed)
{
    static const char *const next[][2] = {{"requested", "draining"},
                                          {"draining", "acknowledged"},
                                          {"acknowledged", "ready-for-deletion"}};
    size_t i;
    json_t *o;
    int busy = 0;

    json_array_foreach (observed, i, o) {
        const char *kind = str_at(o, "kind"), *name = str_at(o, "name");
        const char *state = json_string_value(path2(o, "annotations", DRAIN_STATE));
        if (!kind || strcmp(kind, "Pod") != 0 || !state || !name || touched(p, kind, name))
            continue;
        for (size_t s = 0; s < 3; s++) {
            if (strcmp(state, next[s][0]) != 0)
                continue;
            if (atomic_load(&p->w->c->stop))
                return -ECANCELED;
            json_t *patch = json_pack("{s:{s:{s:s},s:s?}}", "metadata", "annotations", DRAIN_STATE,
                                      next[s][1], "resourceVersion", str_at(o, "resourceVersion"));
            int rc = patch ? kc_patch(p->w->client, &OWNED[0].res, p->ns, name, NULL,
                                      KC_PATCH_MERGE, patch, WRITE_TIMEOUT, NULL)
                           : -ENOMEM;
            json_decref(patch);
            count_write(p, "patch", rc);
            if (rc != 0) {
                klog_kv(KLOG_WARN, "cluster", p->key, "object", name, "drain %s -> %s: %s",
                        next[s][0], next[s][1], kc_last_error(p->w->client));
                return rc;
            }
            klog_kv(KLOG_INFO, "cluster", p->key, "object", name, "drain %s -> %s", next[s][0],
                    next[s][1]);
            busy++;
        }
        if (strcmp(state, "ready-for-deletion") == 0)
            busy++;
    }
    return busy;
}

/* ---- certificates (docs/abi.md, "certificates") ---------------------------------------------- */

/* The data key `key` of a Secret (as the API server sends it, or projected), decoded: 0 with
 * *ret (malloc'ed, NUL-terminated beyond *n), or -ENOENT (absent), -EINVAL (not base64),
 * -ENOMEM. The caller wipes and frees *ret. */
static int secret_bytes(const json_t *secret, const char *key, unsigned char **ret, size_t *n)
{
    const char *v = json_string_value(path2(secret, "data", key));

    *ret = NULL;
    return v ? kc_base64_decode(v, strlen(v), ret, n) : -ENOENT;
}

/* A data key of a Secret (cached or read), decoded and NUL-terminated; NULL when absent, not
 * base64, or holding a NUL (no PEM does). */
static char *secret_text(const json_t *secret, const char *key)
{
    unsigned char *plain;
    size_t n = 0;

    if (secret_bytes(secret, key, &plain, &n) != 0)
        return NULL;
    if (memchr(plain, 0, n)) {
        explicit_bzero(plain, n);
        free(plain);
        return NULL;
    }
    return (char *)plain;
}

static void read_pem(const json_t *ca, const json_t *tls, struct certs_pem *pem)
{
    certs_pem_fini(pem);
    pem->ca_crt = secret_text(ca, "ca.crt");
    pem->ca_key = secret_text(ca, "ca.key");
    pem->crt = secret_text(tls, "tls.crt");
    pem->key = secret_text(tls, "tls.key");
}

static int positive_int(const json_t *c, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(c, key));
    return v > 0 && v <= 36500 ? (int)v : 0;
}

/* The certificate entry as certs_spec (borrowing its strings): NULL, or the field at fault (an
 * entry mgo-kube cannot honour: docs/abi.md says to skip and report it). */
static const char *cert_spec(const json_t *c, struct certs_spec *s)
{
    const json_t *v;
    size_t i;

    memset(s, 0, sizeof(*s));
    s->common_name = str_at(c, "commonName");
    s->organization = str_at(c, "organization");
    s->ca_days = positive_int(c, "caValidityDays");
    s->days = positive_int(c, "validityDays");
    s->renew_days = positive_int(c, "renewBeforeDays");
    json_array_foreach (json_object_get(c, "dnsNames"), i, v) {
        if (s->ndns == CERTS_MAX_DNS || !certs_dns_name_ok(json_string_value(v)))
            return "dnsNames";
        s->dns[s->ndns++] = json_string_value(v);
    }
    json_array_foreach (json_object_get(c, "usages"), i, v) {
        const char *u = json_string_value(v) ? json_string_value(v) : "";
        if (strcmp(u, "serverAuth") == 0)
            s->server_auth = true;
        else if (strcmp(u, "clientAuth") == 0)
            s->client_auth = true;
        else
            return "usages"; /* unknown: what it asks for cannot be issued */
    }
    if (!s->common_name || !s->organization)
        return !s->common_name ? "commonName" : "organization";
    if (s->ndns == 0)
        return "dnsNames";
    if (!s->server_auth && !s->client_auth)
        return "usages";
    if (s->renew_days < 1 || s->days <= s->renew_days || s->ca_days <= s->renew_days)
        return "caValidityDays, validityDays or renewBeforeDays";
    return NULL;
}

/* Server-side apply of the Secret `shell` (the library's object without data) with two keys. */
static int write_secret(struct pass *p, const json_t *shell, const char *k1, const char *v1,
                        const char *k2, const char *v2)
{
    struct kc_apply_options ao = {.field_manager = FIELD_MANAGER, .force = true};
    char *b1 = certs_base64(v1), *b2 = certs_base64(v2);
    json_t *obj = json_deep_copy(shell);
    int rc = -ENOMEM;

    if (atomic_load(&p->w->c->stop))
        rc = -ECANCELED;
    else if (b1 && b2 && obj &&
             json_object_set_new(obj, "data", json_pack("{s:s,s:s}", k1, b1, k2, b2)) == 0) {
        rc = kc_apply(p->w->client, &SECRETS, p->ns, obj, &ao, WRITE_TIMEOUT, NULL);
        count_write(p, "apply", rc);
        if (rc != 0)
            klog_kv(KLOG_WARN, "cluster", p->key, "object",
                    str_at(json_object_get(shell, "metadata"), "name"), "apply Secret: %s",
                    kc_last_error(p->w->client));
    }
    if (b1)
        explicit_bzero(b1, strlen(b1));
    if (b2)
        explicit_bzero(b2, strlen(b2));
    free(b1);
    free(b2);
    json_decref(obj); /* best effort: jansson, libcurl and the cache keep copies unwiped */
    return rc;
}

/* The Secret `name` as the API server holds it now, projected (project_secret): 0 with *ret
 * (NULL when not found). */
static int fresh_secret(struct pass *p, const char *name, json_t **ret)
{
    json_t *obj = NULL;
    int rc = kc_get(p->w->client, &SECRETS, p->ns, name, WRITE_TIMEOUT, &obj);

    *ret = NULL;
    if (rc == -EREMOTEIO && kc_last_reason(p->w->client) == KC_REASON_NOT_FOUND)
        return 0;
    if (rc == 0 && !(*ret = project_secret(obj)))
        rc = -ENOMEM;
    json_decref(obj);
    return rc;
}

/* The controlling owner reference of a projected Secret, or NULL (there is at most one). */
static const json_t *controller_of(const json_t *secret)
{
    const json_t *ref;
    size_t i;

    json_array_foreach (json_object_get(secret, "ownerReferences"), i, ref) {
        if (json_is_true(json_object_get(ref, "controller")))
            return ref;
    }
    return NULL;
}

/* A projected Secret's controlling owner is the cluster `uid`. */
static bool controlled_by(const json_t *secret, const char *uid)
{
    const char *u = str_at(controller_of(secret), "uid");

    return u && uid && strcmp(u, uid) == 0;
}

/* A Secret mgo made for an earlier cluster of this name, which garbage collection has not
 * removed yet (the cluster was deleted and created again): mgo's labels for `cluster`, and a
 * MultigresCluster of that name as controlling owner. Adopted: its next write names the new
 * cluster, so the collector keeps it and the pods keep the CA they started with. */
static bool left_by_namesake(const json_t *secret, const char *cluster)
{
    const json_t *labels = json_object_get(secret, "labels"), *ref = controller_of(secret);
    const char *by = json_string_value(json_object_get(labels, "app.kubernetes.io/managed-by"));
    const char *of = json_string_value(json_object_get(labels, LABEL_CLUSTER));
    const char *kind = str_at(ref, "kind"), *name = str_at(ref, "name");

    return by && strcmp(by, "mgo") == 0 && of && strcmp(of, cluster) == 0 && kind &&
           strcmp(kind, "MultigresCluster") == 0 && name && strcmp(name, cluster) == 0;
}

/* A projected Secret carries the labels of the library's `shell` and its owner reference
 * (others may be there too: a backup tool's, say). */
static bool metadata_current(const json_t *secret, const json_t *shell)
{
    const json_t *md = json_object_get(shell, "metadata"), *v, *ref;
    const json_t *labels = json_object_get(secret, "labels");
    const char *k;
    size_t i, found = 0;

    json_object_foreach ((json_t *)json_object_get(md, "labels"), k, v) {
        if (!json_equal(json_object_get(labels, k), v))
            return false;
    }
    json_array_foreach (json_object_get(md, "ownerReferences"), i, ref) {
        const json_t *have;
        size_t j;
        json_array_foreach (json_object_get(secret, "ownerReferences"), j, have) {
            if (json_equal(have, ref)) {
                found++;
                break;
            }
        }
    }
    return found == json_array_size(json_object_get(md, "ownerReferences"));
}

/* A certificate's Event on the cluster. A Warning is held back when it went out within
 * EVENT_REPEAT_MS; each issue is an event of its own, sent every time. */
static void cert_event(struct pass *p, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cert_event(struct pass *p, const char *type, const char *reason, const char *fmt, ...)
{
    char full[2048], msg[600];
    va_list ap;
    json_t *a;
    size_t n;

    va_start(ap, fmt);
    (void)vsnprintf(full, sizeof(full), fmt, ap);
    va_end(ap);
    n = utf8_prefix(full, sizeof(msg) - 1); /* never a character cut in two */
    memcpy(msg, full, n);
    msg[n] = '\0';
    a = json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "eventType", type, "reason", reason, "message", msg,
                  "regarding", "kind", "MultigresCluster", "name", p->name);
    if (a)
        send_event(p, a, strcmp(type, "Normal") == 0);
    else
        klog_kv(KLOG_WARN, "cluster", p->key, NULL, NULL, "event %s: could not be built", reason);
    json_decref(a);
}

#define CERT_MEMORY 4096 /* certificates remembered as valid (forgotten whole when full) */

/* The cached pair was judged valid with this entry and these resourceVersions, and is not due
 * yet: true with *due_s. A Secret's resourceVersion changes with any write to it. */
static bool known_valid(struct ctrl *c, const char *key, const json_t *cert, const json_t *ca,
                        const json_t *tls, int64_t now, int64_t *due_s)
{
    bool hit;

    pthread_mutex_lock(&c->cert_mu);
    const json_t *m = json_object_get(c->certs_valid, key);
    json_int_t due = json_integer_value(json_object_get(m, "due"));
    hit = m && due > now && json_equal(json_object_get(m, "entry"), cert) &&
          json_equal(json_object_get(m, "ca_rv"), json_object_get(ca, "resourceVersion")) &&
          json_equal(json_object_get(m, "tls_rv"), json_object_get(tls, "resourceVersion"));
    pthread_mutex_unlock(&c->cert_mu);
    if (hit)
        *due_s = due;
    return hit;
}

static void remember_valid(struct ctrl *c, const char *key, const json_t *cert, const json_t *ca,
                           const json_t *tls, int64_t due_s)
{
    json_t *m = json_pack("{s:O,s:O?,s:O?,s:I}", "entry", cert, "ca_rv",
                          json_object_get(ca, "resourceVersion"), "tls_rv",
                          json_object_get(tls, "resourceVersion"), "due", (json_int_t)due_s);

    if (!m)
        return; /* judged again next time */
    pthread_mutex_lock(&c->cert_mu);
    if (json_object_size(c->certs_valid) >= CERT_MEMORY)
        json_object_clear(c->certs_valid);
    (void)json_object_set_new(c->certs_valid, key, m);
    pthread_mutex_unlock(&c->cert_mu);
}

/* One certificate entry of a pass. */
struct cert_job {
    const json_t *entry, *ca_shell, *shell;
    const char *ca_name, *name;
    struct certs_spec spec;
    int64_t now;
};

/* The steady state, from the cache alone: both Secrets valid and labelled. true with *due_s. */
static bool cached_valid(struct pass *p, const struct cert_job *j, int64_t *due_s)
{
    char ca_key[600], key[600];
    struct certs_pem pem = {0};
    const char *why;
    json_t *ca, *tls;
    bool ok;

    (void)snprintf(ca_key, sizeof(ca_key), "%s/%s", p->ns, j->ca_name);
    (void)snprintf(key, sizeof(key), "%s/%s", p->ns, j->name);
    ca = inf_get(p->w->c->secrets, ca_key);
    tls = inf_get(p->w->c->secrets, key);
    ok = known_valid(p->w->c, ca_key, j->entry, ca, tls, j->now, due_s); /* no parsing */
    if (!ok) {
        read_pem(ca, tls, &pem);
        ok = certs_judge(&j->spec, &pem, j->now, due_s, &why) == CERTS_VALID &&
             metadata_current(ca, j->ca_shell) && metadata_current(tls, j->shell);
        if (ok)
            remember_valid(p->w->c, ca_key, j->entry, ca, tls, *due_s);
        certs_pem_fini(&pem);
    }
    json_decref(ca);
    json_decref(tls);
    return ok;
}

/* Issue what verdict `v` asks for into `pem`, check it as any pair is checked, write it (the CA
 * first), and report. *due_s: when the new pair falls due. */
static int issue_and_write(struct pass *p, const struct cert_job *j, enum certs_verdict v,
                           const char *why, struct certs_pem *pem, int64_t *due_s)
{
    const char *check = NULL, *failed = j->name;
    char due[32] = "?";
    struct tm tm;
    time_t t;
    int rc = certs_issue(&j->spec, pem, v == CERTS_NEW_CA, j->now);

    if (rc != 0) {
        cert_event(p, "Warning", "CertError", "Secret %s: %s; issuing failed (%s)", j->name, why,
                   rc == -EINVAL ? "the library's entry or the CA cannot be issued from"
                                 : "out of memory");
        return rc;
    }
    /* what was issued must pass the check every later pass makes, or each pass would issue
     * again (a name OpenSSL reads otherwise than it was written, say) */
    if (certs_judge(&j->spec, pem, j->now, due_s, &check) != CERTS_VALID) {
        cert_event(p, "Warning", "CertError",
                   "Secret %s: %s; what was issued does not pass the check (%s): not written",
                   j->name, why, check);
        return -EINVAL;
    }
    if (v == CERTS_NEW_CA) {
        failed = j->ca_name;
        rc = write_secret(p, j->ca_shell, "ca.crt", pem->ca_crt, "ca.key", pem->ca_key);
    }
    if (rc == 0) {
        failed = j->name;
        rc = write_secret(p, j->shell, "tls.crt", pem->crt, "tls.key", pem->key);
    }
    if (rc != 0) {
        if (rc != -ECANCELED)
            cert_event(p, "Warning", "CertError", "Secret %s: %s; writing it failed: %s", failed,
                       why, kc_last_error(p->w->client));
        return rc;
    }
    t = (time_t)*due_s;
    if (gmtime_r(&t, &tm))
        (void)strftime(due, sizeof(due), "%Y-%m-%dT%H:%M:%SZ", &tm);
    klog_kv(KLOG_INFO, "cluster", p->key, "object", j->name,
            "certificate issued%s: %s; renewed from %s", v == CERTS_NEW_CA ? " with a new CA" : "",
            why, due);
    cert_event(p, "Normal", "CertificateIssued", "Secret %s%s%s: %s; renewed from %s", j->name,
               v == CERTS_NEW_CA ? " and CA " : "", v == CERTS_NEW_CA ? j->ca_name : "", why, due);
    return 0;
}

/* A Secret of that name that is not this cluster's is left alone: looked at again this soon. */
#define CERT_FOREIGN_RECHECK_S 300

/* Before adopting a namesake's Secrets: the cluster as the API server holds it now is the one
 * this pass works for (a cache that still shows the deleted cluster would hand them back to
 * it). 0, RECONCILE_CONFLICT (decided on a stale cluster: done again), or an error. */
static int cluster_current(struct pass *p, const char *uid)
{
    json_t *live = NULL;
    int rc = kc_get(p->w->client, &CLUSTERS, p->ns, p->name, WRITE_TIMEOUT, &live);
    const char *u = str_at(json_object_get(live, "metadata"), "uid");

    if (rc == -EREMOTEIO && kc_last_reason(p->w->client) == KC_REASON_NOT_FOUND)
        rc = RECONCILE_CONFLICT;
    else if (rc == 0 && (!u || !uid || strcmp(u, uid) != 0))
        rc = RECONCILE_CONFLICT;
    json_decref(live);
    return rc;
}

/* Decide on the Secrets as the API server holds them now, and write what is needed. */
static int decide_fresh(struct pass *p, const struct cert_job *j, int64_t *due_s)
{
    const char *uid = str_at(json_object_get(p->cluster, "metadata"), "uid");
    const char *why = "", *foreign = NULL, *failed = j->ca_name;
    struct certs_pem pem = {0};
    json_t *ca = NULL, *tls = NULL;
    enum certs_verdict v;
    int rc = fresh_secret(p, j->ca_name, &ca);

    if (rc == 0) {
        failed = j->name;
        rc = fresh_secret(p, j->name, &tls);
    }
    if (rc != 0) {
        if (rc != -ECANCELED)
            cert_event(p, "Warning", "CertError", "Secret %s: reading it failed: %s", failed,
                       kc_last_error(p->w->client));
        goto out;
    }
    if (ca && !controlled_by(ca, uid) && !left_by_namesake(ca, p->name))
        foreign = j->ca_name;
    else if (tls && !controlled_by(tls, uid) && !left_by_namesake(tls, p->name))
        foreign = j->name;
    if (foreign) {
        /* someone else's Secret (the user's, another operator's): never overwritten */
        cert_event(p, "Warning", "CertError",
                   "Secret %s exists and is not this cluster's (no controlling owner reference "
                   "to it); mgo leaves it alone: delete it, or name your own certificate in "
                   "backup.pgbackrestTLS.secretName",
                   foreign);
        *due_s = j->now + CERT_FOREIGN_RECHECK_S;
        goto out;
    }
    if (((ca && !controlled_by(ca, uid)) || (tls && !controlled_by(tls, uid))) &&
        (rc = cluster_current(p, uid)) != 0)
        goto out; /* a namesake's to adopt, but this pass may work from a stale cluster */
    read_pem(ca, tls, &pem);
    v = certs_judge(&j->spec, &pem, j->now, due_s, &why);
    if (v != CERTS_VALID) {
        rc = issue_and_write(p, j, v, why, &pem, due_s);
        /* a reissue keeps the CA: its labels or owner (a namesake's) are put right too */
        if (rc == 0 && v == CERTS_REISSUE && !metadata_current(ca, j->ca_shell) &&
            (rc = write_secret(p, j->ca_shell, "ca.crt", pem.ca_crt, "ca.key", pem.ca_key)) != 0 &&
            rc != -ECANCELED)
            cert_event(p, "Warning", "CertError", "Secret %s: restoring its labels failed: %s",
                       j->ca_name, kc_last_error(p->w->client));
        goto out;
    }
    /* valid, but labels or owner reference changed (or a namesake's to adopt): written
     * again with the data as it is */
    failed = j->ca_name;
    if (!metadata_current(ca, j->ca_shell))
        rc = write_secret(p, j->ca_shell, "ca.crt", pem.ca_crt, "ca.key", pem.ca_key);
    if (rc == 0 && !metadata_current(tls, j->shell)) {
        failed = j->name;
        rc = write_secret(p, j->shell, "tls.crt", pem.crt, "tls.key", pem.key);
    }
    if (rc != 0 && rc != -ECANCELED)
        cert_event(p, "Warning", "CertError", "Secret %s: restoring its labels failed: %s", failed,
                   kc_last_error(p->w->client));
out:
    certs_pem_fini(&pem);
    json_decref(ca);
    json_decref(tls);
    return rc;
}

/* Keep one certificate's two Secrets valid, labelled and owned; *due_s: when to look again
 * (Unix seconds). Failures are reported here (log, CertError Event). */
static int ensure_certificate(struct pass *p, const json_t *entry, size_t index, int64_t now,
                              int64_t *due_s)
{
    struct cert_job j = {.entry = entry,
                         .ca_shell = json_object_get(entry, "caSecret"),
                         .shell = json_object_get(entry, "secret"),
                         .now = now};
    const char *bad;

    j.ca_name = str_at(json_object_get(j.ca_shell, "metadata"), "name");
    j.name = str_at(json_object_get(j.shell, "metadata"), "name");
    bad = !j.ca_name ? "caSecret" : !j.name ? "secret" : cert_spec(entry, &j.spec);
    if (bad) {
        klog_kv(KLOG_ERROR, "cluster", p->key, NULL, NULL,
                "certificates[%zu]: %s cannot be honoured; skipped", index, bad);
        cert_event(p, "Warning", "CertError",
                   "certificate %zu of the library's result: %s cannot be honoured; skipped", index,
                   bad);
        return 0; /* reported; no retry mends it (a new spec or library brings a new pass) */
    }
    if (cached_valid(p, &j, due_s))
        return 0; /* the steady state: no request */
    /* the cache may not show this controller's own last write yet, nor a Secret without mgo's
     * label: decide again on what the API server holds, so that a pass soon after the write
     * does not issue twice */
    return decide_fresh(p, &j, due_s);
}

/* Every certificate of the pass; *requeue_ms: until the first one falls due (at most a day). */
static int ensure_certificates(struct pass *p, const json_t *certs, int64_t *requeue_ms)
{
    int64_t now = (int64_t)time(NULL), first = INT64_MAX;
    const json_t *cert;
    size_t i;
    int rc = 0;

    json_array_foreach (certs, i, cert) {
        int64_t due = INT64_MAX;
        int r = ensure_certificate(p, cert, i, now, &due);
        if (r != 0 && rc == 0)
            rc = r;
        if (r == 0 && due < first)
            first = due;
    }
    *requeue_ms = 0;
    if (json_array_size(certs) > 0) {
        int64_t ms = first == INT64_MAX ? CERT_RECHECK_MS : (first - now) * 1000;
        *requeue_ms = ms < 1000 ? 1000 : ms > CERT_RECHECK_MS ? CERT_RECHECK_MS : ms;
    }
    return rc;
}

/* ---- one reconcile --------------------------------------------------------------------------- */

/* Reconcile one key. 0 with *requeue_ms (0: only on a change); RECONCILE_CONFLICT when a write
 * was refused with 409; -ECANCELED when stopped; or another negative error (the key is retried
 * with backoff). */
static int reconcile(struct worker *w, const char *key, int64_t *requeue_ms)
{
    struct ctrl *c = w->c;
    char buf[512];
    const char *ns, *name;
    json_t *cluster = NULL, *req = NULL, *res = NULL;
    struct pass p = {.w = w};
    int32_t st = 0;
    int64_t cert_ms = 0;
    int rc, cert_rc;

    const char *phase;

    *requeue_ms = 0;
    if (atomic_load(&c->stop))
        return -ECANCELED; /* stopped meanwhile: not even the topology registration */
    if (split_key(key, buf, sizeof(buf), &ns, &name) != 0)
        return 0; /* not a key of ours: dropped */
    cluster = inf_get(c->clusters, key);
    if (!cluster) {
        kmetrics_cluster_gone(c->reg, ns, name);
        return 0; /* deleted: its objects go with it (owner references) */
    }
    p.ns = ns;
    p.name = name;
    p.key = key;
    p.cluster = cluster;
    p.touched = json_object();
    req = build_request(c, cluster, ns, name);
    if (!req || !p.touched) {
        rc = -ENOMEM;
        goto out;
    }
    res = loader_call_json(c->lib, w->plugin, c->lib->reconcile, json_incref(req), &st);
    if (!res || (st != MGO_OK && st != MGO_EINVAL)) {
        const char *why = str_at(json_object_get(res, "error"), "message");
        klog_kv(KLOG_ERROR, "cluster", key, NULL, NULL, "mgo_reconcile: %s: %s",
                res ? c->lib->strerror(st) : "the result is not JSON", why ? why : "");
        rc = -EAGAIN;
        goto out;
    }
    if (st == MGO_EINVAL && klog_get_level() >= KLOG_DEBUG) {
        char *text = json_dumps(res, JSON_COMPACT);
        klog_kv(KLOG_DEBUG, "cluster", key, NULL, NULL, "invalid: %.1500s", text ? text : "");
        free(text);
    }
    /* the Secrets before the actions: the pods that mount them are among the applies. A
     * certificate that fails is retried with the pass, but stops nothing else (a pod waits for
     * a missing Secret, and the status still tells the rest) */
    cert_rc =
        st == MGO_OK ? ensure_certificates(&p, json_object_get(res, "certificates"), &cert_ms) : 0;
    rc = execute(&p, json_object_get(res, "actions"));
    if (rc == 0 && st == MGO_OK) {
        int busy = step_drains(&p, path2(req, "observed", "objects"));
        if (busy < 0)
            rc = busy;
        else if (busy > 0)
            *requeue_ms = DRAIN_REQUEUE;
    }
    if (rc == -EREMOTEIO && kc_last_reason(w->client) == KC_REASON_CONFLICT)
        rc = RECONCILE_CONFLICT;
    /* the pass's own times count only when its actions went through: a failed write is retried
     * with backoff alone (work()) */
    if (rc == 0) {
        json_int_t after = json_integer_value(json_object_get(res, "requeue_after_ms"));
        if (after > 0 && (*requeue_ms == 0 || after < *requeue_ms))
            *requeue_ms = after;
        if (cert_ms > 0 && (*requeue_ms == 0 || cert_ms < *requeue_ms))
            *requeue_ms = cert_ms;
        rc = cert_rc;
    } else {
        *requeue_ms = 0;
    }
    phase = str_at(json_object_get(res, "status"), "phase");
    if (phase)
        kmetrics_cluster_phase(c->reg, ns, name, phase);
    klog_kv(KLOG_DEBUG, "cluster", key, NULL, NULL,
            "pass: status %d, %zu action(s), requeue %" PRId64, (int)st,
            json_array_size(json_object_get(res, "actions")), *requeue_ms);
    if (p.writes > 0)
        klog_kv(KLOG_INFO, "cluster", key, NULL, NULL, "%d write(s), %zu action(s), phase %s%s",
                p.writes, json_array_size(json_object_get(res, "actions")), phase ? phase : "?",
                st == MGO_EINVAL ? " (invalid spec)" : "");
out:
    json_decref(p.touched);
    json_decref(res);
    json_decref(req);
    json_decref(cluster);
    return rc;
}

/* ---- host callbacks of the library ----------------------------------------------------------- */

static void lib_log(void *user, int32_t level, const char *msg, size_t len)
{
    (void)user;
    /* unknown levels are INFO (mgo.h) */
    klog_kv(level <= MGO_LOG_ERROR   ? KLOG_ERROR
            : level == MGO_LOG_WARN  ? KLOG_WARN
            : level == MGO_LOG_DEBUG ? KLOG_DEBUG
                                     : KLOG_INFO,
            "source", "libmgo", NULL, NULL, "%.*s", (int)len, msg);
}

static int32_t answer(const char *v, size_t n, char *buf, size_t size, size_t *ret_len)
{
    *ret_len = n;
    if (n > size)
        return MGO_ERANGE;
    memcpy(buf, v, n);
    return MGO_OK;
}

/* --resolve rules; an address no rule names is used as written. */
static int32_t lib_resolve(void *user, const char *addr, size_t len, int64_t timeout_ms, char *buf,
                           size_t size, size_t *ret_len)
{
    const struct worker *w = user;

    (void)timeout_ms;
    for (size_t i = 0; i < w->c->o.n_resolve; i++) {
        const struct ctrl_resolve *r = &w->c->o.resolve[i];
        size_t fl = strlen(r->from);
        bool hit = r->from[0] == '*'
                       ? len >= fl - 1 && memcmp(addr + len - (fl - 1), r->from + 1, fl - 1) == 0
                       : len == fl && memcmp(addr, r->from, fl) == 0;
        if (hit)
            return answer(r->to, strlen(r->to), buf, size, ret_len);
    }
    return answer(addr, len, buf, size, ret_len);
}

static int32_t lib_secret(void *user, const char *ns, const char *name, const char *key,
                          int64_t timeout_ms, char *buf, size_t size, size_t *ret_len)
{
    struct worker *w = user;
    json_t *s = NULL;
    int32_t out = MGO_ENOTFOUND;
    int rc = kc_get(w->client, &SECRETS, ns, name, timeout_ms > 0 ? timeout_ms : WRITE_TIMEOUT, &s);
    unsigned char *plain;
    size_t n = 0;

    if (rc != 0)
        return rc == -EREMOTEIO && kc_last_reason(w->client) == KC_REASON_NOT_FOUND ? MGO_ENOTFOUND
                                                                                    : MGO_EAGAIN;
    if (secret_bytes(s, key, &plain, &n) == 0) {
        out = answer((const char *)plain, n, buf, size, ret_len);
        explicit_bzero(plain, n);
    }
    free(plain);
    json_decref(s);
    return out;
}

/* ---- workers --------------------------------------------------------------------------------- */

static void *work(void *arg)
{
    struct worker *w = arg;
    struct ctrl *c = w->c;

    /* a pass on half-filled caches would miss templates and owned objects: wait for the first
     * list of every kind (controller-runtime waits the same way) */
    for (int i = 0; !ctrl_synced(c) && !atomic_load(&c->stop); i++) {
        struct timespec t = {0, 100 * 1000 * 1000};
        if (i % 100 == 99)
            klog(KLOG_WARN, "worker: the caches are not filled yet (see the list failures)");
        nanosleep(&t, NULL);
    }
    while (!atomic_load(&c->stop)) {
        char *key = NULL;
        int64_t requeue = 0, t0;
        int rc = wq_get(c->q, &key, 1000);
        if (rc == -ESHUTDOWN)
            break;
        if (rc != 0)
            continue;
        t0 = mono_ms();
        rc = reconcile(w, key, &requeue);
        /* stopped: nothing to count, whatever the pass made of its cancelled requests (a
         * Secret read by the library ends as MGO_EAGAIN, for one) */
        if (rc != 0 && atomic_load(&c->stop)) {
            wq_done(c->q, key);
            free(key);
            break;
        }
        kmetrics_reconcile(c->reg,
                           rc == 0                    ? "success"
                           : rc == RECONCILE_CONFLICT ? "conflict"
                                                      : "error",
                           (double)(mono_ms() - t0) / 1e3);
        if (rc == RECONCILE_CONFLICT) {
            /* decided on a stale cache (a write conditional on a resourceVersion or uid was
             * refused): the informer brings the newer object and queues the cluster at once;
             * this retry is the fallback, and an earlier one would only be refused again. The
             * count goes on growing, so a conflict that persists backs off like any failure. */
            (void)wq_add_backoff(c->q, key, CONFLICT_REQUEUE);
        } else if (rc != 0) {
            (void)wq_add_rate_limited(c->q, key);
            /* only a failing certificate leaves a requeue (the actions went through and asked
             * to come back): the earlier of the two times wins */
            if (requeue > 0)
                (void)wq_add_after(c->q, key, requeue);
        } else {
            wq_forget(c->q, key);
            if (requeue > 0)
                (void)wq_add_after(c->q, key, requeue);
        }
        wq_done(c->q, key);
        free(key);
    }
    return NULL;
}

static int worker_open(struct worker *w)
{
    mgo_host h = {.struct_size = sizeof(mgo_host),
                  .abi_version = MGO_ABI_VERSION,
                  .user = w,
                  .log = lib_log,
                  .resolve = lib_resolve,
                  .secret = lib_secret,
                  .log_level = klog_get_level() >= KLOG_DEBUG ? MGO_LOG_DEBUG : MGO_LOG_INFO};
    int32_t st;
    int rc = kc_client_new(&w->c->cfg, w->c->o.user_agent, &w->client);

    if (rc != 0)
        return rc;
    kc_client_set_cancel(w->client, &w->c->stop); /* no write once stopped (ctrl_cancel) */
    st = w->c->lib->open(&h, &w->plugin);
    return st == MGO_OK ? 0 : -ENOMEM;
}

int ctrl_start_workers(struct ctrl *c)
{
    int rc = 0;

    pthread_mutex_lock(&c->mu);
    while (!atomic_load(&c->stop) && c->n_started < c->o.workers) {
        struct worker *w = &c->workers[c->n_started];
        w->c = c;
        rc = worker_open(w);
        if (rc == 0)
            rc = -pthread_create(&w->thread, NULL, work, w);
        if (rc != 0) {
            if (w->plugin)
                c->lib->close(w->plugin);
            kc_client_free(w->client);
            w->plugin = NULL;
            w->client = NULL;
            break;
        }
        c->n_started++;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc == 0)
        klog(KLOG_INFO, "%d worker(s) started", c->n_started);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int start_informer(struct ctrl *c, const struct kind *k, const char *selector,
                          inf_project_fn project, inf_handler_fn handler, struct informer **ret)
{
    struct inf_options io = {.resource = &k->res,
                             .api_version = k->api_version,
                             .kind = k->kind,
                             .namespace = c->o.namespace,
                             .label_selector = selector,
                             .project = project,
                             .handler = handler,
                             .handler_ctx = c,
                             .log = inf_log};
    return inf_start(&c->cfg, &io, ret);
}

int ctrl_new(const struct kc_config *cfg, const struct ctrl_options *opts,
             const struct loader_lib *lib, struct kmetrics *reg, struct ctrl **ret)
{
    struct ctrl *c;
    int rc;

    if (!cfg || !opts || !lib || !ret || opts->workers < 1)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->o = *opts;
    c->lib = lib;
    c->reg = reg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->ev_mu, NULL);
    pthread_mutex_init(&c->cert_mu, NULL);
    c->events_sent = json_object();
    c->certs_valid = json_object();
    c->cfg = *cfg; /* shallow: the caller keeps its configuration until ctrl_free */
    c->workers = calloc((size_t)opts->workers, sizeof(*c->workers));
    rc = c->workers && c->events_sent && c->certs_valid ? wq_new(&c->q, NULL) : -ENOMEM;
    if (rc == 0)
        rc = start_informer(c, &CLUSTER_KIND, NULL, project_whole, on_cluster, &c->clusters);
    for (size_t i = 0; rc == 0 && i < N_TEMPLATES; i++)
        rc = start_informer(c, &TEMPLATES[i], NULL, project_whole, on_template, &c->templates[i]);
    for (size_t i = 0; rc == 0 && i < N_OWNED; i++)
        rc = start_informer(c, &OWNED[i], LABEL_MANAGED, project_owned, on_owned, &c->owned[i]);
    if (rc == 0)
        rc = start_informer(c, &SECRET_KIND, LABEL_MANAGED, project_secret, on_owned, &c->secrets);
    if (rc != 0) {
        ctrl_free(c);
        return rc;
    }
    *ret = c;
    return 0;
}

bool ctrl_synced(struct ctrl *c)
{
    bool ok = inf_synced(c->clusters);

    for (size_t i = 0; ok && i < N_TEMPLATES; i++)
        ok = inf_synced(c->templates[i]);
    for (size_t i = 0; ok && i < N_OWNED; i++)
        ok = OWNED[i].optional || inf_synced(c->owned[i]);
    return ok && inf_synced(c->secrets);
}

static void add_stats(struct informer *inf, struct inf_stats *sum)
{
    struct inf_stats s;

    inf_stats(inf, &s);
    sum->objects += s.objects;
    sum->relists += s.relists;
    sum->failures += s.failures;
}

void ctrl_sample_metrics(struct ctrl *c)
{
    struct inf_stats sum = {0};

    add_stats(c->clusters, &sum);
    for (size_t i = 0; i < N_TEMPLATES; i++)
        add_stats(c->templates[i], &sum);
    for (size_t i = 0; i < N_OWNED; i++)
        add_stats(c->owned[i], &sum);
    add_stats(c->secrets, &sum);
    kmetrics_sample(c->reg, wq_len(c->q), sum.objects, sum.relists, sum.failures);
}

void ctrl_cancel(struct ctrl *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    if (c->q)
        wq_shutdown(c->q);
}

void ctrl_stop_workers(struct ctrl *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    ctrl_cancel(c);
    for (int i = 0; i < c->n_started; i++) {
        pthread_join(c->workers[i].thread, NULL);
        c->lib->close(c->workers[i].plugin);
        kc_client_free(c->workers[i].client);
    }
    c->n_started = 0;
    pthread_mutex_unlock(&c->mu);
}

void ctrl_free(struct ctrl *c)
{
    if (!c)
        return;
    ctrl_stop_workers(c);
    inf_stop(c->clusters);
    for (size_t i = 0; i < N_TEMPLATES; i++)
        inf_stop(c->templates[i]);
    for (size_t i = 0; i < N_OWNED; i++)
        inf_stop(c->owned[i]);
    inf_stop(c->secrets);
    inf_free(c->clusters);
    for (size_t i = 0; i < N_TEMPLATES; i++)
        inf_free(c->templates[i]);
    for (size_t i = 0; i < N_OWNED; i++)
        inf_free(c->owned[i]);
    inf_free(c->secrets);
    wq_free(c->q);
    free(c->workers);
    json_decref(c->events_sent);
    json_decref(c->certs_valid);
    pthread_mutex_destroy(&c->ev_mu);
    pthread_mutex_destroy(&c->cert_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
