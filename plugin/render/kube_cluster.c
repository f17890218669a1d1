/*
 * The cluster-wide and per-cell kubernetes objects (see kube.h): what the reference operator's
 * MultigresCluster, TopoServer and Cell controllers create, flattened. mgo renders no Cell or
 * TopoServer child resources; their StatefulSets, Services and Deployments are owned by the
 * MultigresCluster directly.
 *
 * Order: the global topology (StatefulSet, client Service, headless Service), multiadmin
 * (Deployment, Service), multiadmin-web (Deployment, Service), the cluster-wide gateway Services
 * (primary, replica), the cert-manager Certificates, then per cell in spec order its local
 * topology and its multigateway (Deployment, Service).
 *
 * Where mgo departs from the reference (each on purpose):
 * - topology servers carry the reference's component "toposerver" plus the label
 *   multigres.com/topo-scope ("global" or "local") in their labels and selectors: with the
 *   reference's selector alone (component, instance, cluster) the global etcd's Services also
 *   select every local etcd pod of the cluster;
 * - multiadmin is pointed at the real global topology (external endpoint, configured root)
 *   instead of the reference's fixed "<cluster>-global-topo.<ns>.svc:2379" and
 *   "/multigres/global";
 * - spec.images.imagePullPolicy is applied to the Multigres containers, and multigateway gets
 *   spec.images.imagePullSecrets (the reference copies both into the Cell and never uses them);
 * - OTEL variables come from spec.observability only (a library has no operator environment to
 *   fall back to).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "render/kube.h"
#include "spec/names.h"

#define ETCD_DEFAULT_IMAGE "gcr.io/etcd-development/etcd:v3.6.7"
#define ETCD_CLIENT_PORT   2379
#define ETCD_PEER_PORT     2380
#define ETCD_METRICS_PORT  2381

#define ADMIN_HTTP_PORT 18000
#define ADMIN_GRPC_PORT 18070
#define WEB_HTTP_PORT   18100

#define GATEWAY_HTTP_PORT    15100
#define GATEWAY_GRPC_PORT    15170
#define GATEWAY_PG_PORT      5432
#define GATEWAY_REPLICA_PORT 5433

/* The secret mode of TLS volumes (0444). */
#define TLS_SECRET_MODE 0444

/* ---- JSON helpers ------------------------------------------------------------------------- */

static const json_t *get(const json_t *o, const char *key)
{
    return json_object_get(o, key);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* Whether a value counts as set, as the reference's omitempty fields decide it. */
static int is_set(const json_t *v)
{
    if (json_is_object(v))
        return json_object_size(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return v && !json_is_null(v);
}

/* o[key] = v, stolen; -ENOMEM when v is NULL (a failed allocation) or the insertion fails. */
static int put(json_t *o, const char *key, json_t *v)
{
    if (!v)
        return -ENOMEM;
    return json_object_set_new(o, key, v) ? -ENOMEM : 0;
}

/* o[key] = a copy of v when v is set. */
static int put_copy(json_t *o, const char *key, const json_t *v)
{
    return is_set(v) ? put(o, key, json_deep_copy(v)) : 0;
}

/* Append v (stolen) to the array a; -ENOMEM when v is NULL or the append fails. */
static int push(json_t *a, json_t *v)
{
    if (!v)
        return -ENOMEM;
    return json_array_append_new(a, v) ? -ENOMEM : 0;
}

/* Append v (stolen) to the array o[key], creating it. */
static int push_to(json_t *o, const char *key, json_t *v)
{
    json_t *a = json_object_get(o, key);
    if (!a && put(o, key, a = json_array())) {
        json_decref(v);
        return -ENOMEM;
    }
    return push(a, v);
}

/* Append the strings to the array a, stopping at NULL. */
static int push_strings(json_t *a, const char *const *strings)
{
    for (; *strings; strings++)
        if (push(a, json_string(*strings)))
            return -ENOMEM;
    return 0;
}

static json_t *stringf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *stringf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = n >= 0 ? core_malloc((size_t)n + 1) : NULL;
    if (!buf)
        return NULL;
    va_start(ap, fmt);
    (void)vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_t *s = json_string(buf);
    core_free(buf);
    return s;
}

/* A json integer field, or `fallback` when absent or not an integer. */
static json_int_t integer_or(const json_t *o, const char *key, json_int_t fallback)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : fallback;
}

/* An owned object of the cluster with its spec (both stolen); NULL on allocation failure. */
static json_t *object(const struct model *m, const char *api, const char *kind, const char *name,
                      json_t *labels, json_t *spec)
{
    json_t *o = render_object(m, api, kind, name, labels, 1);
    if (!o) {
        json_decref(spec);
        return NULL;
    }
    if (put(o, "spec", spec)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Stamp the finished object and append it to out; a NULL object is an allocation failure. */
static int emit(json_t *out, json_t *obj)
{
    if (!obj)
        return -ENOMEM;
    int rc = render_stamp(obj, 0);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    return json_array_append_new(out, obj) ? -ENOMEM : 0;
}

/* A StatefulSet's volumeClaimTemplates cannot change once it exists: they stay out of its
 * hash, so that a new etcd storage size (which takes effect for new members only, by hand)
 * does not make the object unappliable forever. */
static int emit_statefulset(json_t *out, json_t *sts)
{
    if (!sts)
        return -ENOMEM;
    json_t *hashed = json_deep_copy(sts);
    int rc = hashed ? 0 : -ENOMEM;
    if (!rc) {
        (void)json_object_del(json_object_get(hashed, "spec"), "volumeClaimTemplates");
        (void)json_object_del((json_t *)get(get(hashed, "metadata"), "annotations"),
                              RENDER_SPEC_HASH);
        rc = render_stamp_value(sts, hashed);
    }
    json_decref(hashed);
    if (rc || json_array_append_new(out, sts)) {
        if (rc)
            json_decref(sts);
        return -ENOMEM;
    }
    return 0;
}

/* ---- container pieces --------------------------------------------------------------------- */

static json_t *container_port(const char *name, int port)
{
    return json_pack("{s:s, s:i, s:s}", "name", name, "containerPort", port, "protocol", "TCP");
}

/* A Service port whose target is the named container port, or the same number (target NULL). */
static json_t *service_port(const char *name, int port, const char *target)
{
    if (target)
        return json_pack("{s:s, s:i, s:s, s:s}", "name", name, "port", port, "targetPort", target,
                         "protocol", "TCP");
    return json_pack("{s:s, s:i, s:i, s:s}", "name", name, "port", port, "targetPort", port,
                     "protocol", "TCP");
}

static json_t *http_probe(const char *path, int port, int period, int failures)
{
    json_t *p = json_pack("{s:{s:s, s:i}, s:i}", "httpGet", "path", path, "port", port,
                          "periodSeconds", period);
    if (p && failures && put(p, "failureThreshold", json_integer(failures))) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* The probe set every reference component uses: startup (5 s, 30 failures), liveness (10 s)
 * and readiness (5 s). */
static int put_probes(json_t *container, const char *ready, const char *live, int port)
{
    if (put(container, "startupProbe", http_probe(ready, port, 5, 30)) ||
        put(container, "livenessProbe", http_probe(live, port, 10, 0)) ||
        put(container, "readinessProbe", http_probe(ready, port, 5, 0)))
        return -ENOMEM;
    return 0;
}

static json_t *env_value(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *env_field(const char *name, const char *path)
{
    return json_pack("{s:s, s:{s:{s:s}}}", "name", name, "valueFrom", "fieldRef", "fieldPath",
                     path);
}

/* The OTEL environment (when any) and the sampling-config volume (when configured). */
static int put_observability(const struct model *m, json_t *pod, json_t *container,
                             const char *component)
{
    json_t *env = kube_otel_env(m, component), *volume, *mount;
    if (!env)
        return -ENOMEM;
    if (json_array_size(env) == 0)
        json_decref(env);
    else if (put(container, "env", env))
        return -ENOMEM;
    if (kube_otel_sampling(m, &volume, &mount))
        return -ENOMEM;
    if (!volume)
        return 0;
    if (push_to(pod, "volumes", volume)) {
        json_decref(mount);
        return -ENOMEM;
    }
    return push_to(container, "volumeMounts", mount);
}

/* A read-only Secret volume (mode 0444) and its mount. */
static int put_secret_volume(json_t *pod, json_t *container, const char *volume, const char *secret,
                             const char *path)
{
    if (push_to(pod, "volumes",
                json_pack("{s:s, s:{s:s, s:i}}", "name", volume, "secret", "secretName", secret,
                          "defaultMode", TLS_SECRET_MODE)) ||
        push_to(container, "volumeMounts",
                json_pack("{s:s, s:s, s:b}", "name", volume, "mountPath", path, "readOnly", 1)))
        return -ENOMEM;
    return 0;
}

/* Internal mTLS (spec.internalTLS) of multiadmin and multigateway: the component's
 * certificate mounted at `dir` and the gRPC server and multipooler client flags. */
static int put_internal_tls(const struct model *m, json_t *pod, json_t *container,
                            const char *component, const char *volume, const char *dir)
{
    char secret[512], pooler[512], cert[128], key[128], ca[128];
    kube_component_cert_name(m, component, secret, sizeof(secret));
    kube_component_cert_name(m, "multipooler", pooler, sizeof(pooler));
    (void)snprintf(cert, sizeof(cert), "%s/tls.crt", dir);
    (void)snprintf(key, sizeof(key), "%s/tls.key", dir);
    (void)snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    /* clang-format off */
    const char *const args[] = {
        "--grpc-cert", cert, "--grpc-key", key, "--grpc-ca", ca, "--grpc-server-ca", ca,
        "--multipooler-grpc-cert", cert, "--multipooler-grpc-key", key,
        "--multipooler-grpc-ca", ca, "--multipooler-grpc-server-name", pooler,
        "--multipooler-grpc-require-tls", NULL};
    /* clang-format on */
    if (put_secret_volume(pod, container, volume, secret, dir))
        return -ENOMEM;
    return push_strings(json_object_get(container, "args"), args);
}

/* ---- workloads ---------------------------------------------------------------------------- */

/* The pod spec of a Multigres component: image pull secrets (when any), the container
 * (stolen), affinity and tolerations when set. */
static json_t *pod_spec(const struct model *m, json_t *container, const json_t *affinity,
                        const json_t *tolerations)
{
    json_t *pod = json_pack("{s:[o]}", "containers", container);
    json_t *secrets = pod ? kube_pull_secrets(m) : NULL;
    if (!secrets)
        goto fail;
    if (json_array_size(secrets) == 0)
        json_decref(secrets);
    else if (put(pod, "imagePullSecrets", secrets))
        goto fail;
    if (put_copy(pod, "affinity", affinity) || put_copy(pod, "tolerations", tolerations))
        goto fail;
    return pod;
fail:
    json_decref(pod);
    return NULL;
}

/* The pod template's labels: the user's podLabels under the standard ones (standard wins). */
static json_t *pod_labels(json_t *standard, const json_t *user)
{
    json_t *l = json_is_object(user) ? json_deep_copy(user) : json_object();
    if (!standard || !l || json_object_update(l, standard)) {
        json_decref(l);
        l = NULL;
    }
    json_decref(standard);
    return l;
}

struct workload {
    const char *name;
    const char *component;
    const char *cell;          /* NULL for cluster-wide components */
    const json_t *stateless;   /* replicas, podLabels */
    const json_t *annotations; /* pod annotations (copied when set) */
};

/* A Deployment of the workload around its pod spec (stolen). */
static json_t *deployment(const struct model *m, const struct workload *w, json_t *pod)
{
    json_t *tmpl =
        json_pack("{s:{s:o}, s:o}", "metadata", "labels",
                  pod_labels(render_labels(m, w->component, NULL, NULL, NULL, NULL, w->cell),
                             get(w->stateless, "podLabels")),
                  "spec", pod);
    if (tmpl && put_copy(json_object_get(tmpl, "metadata"), "annotations", w->annotations)) {
        json_decref(tmpl);
        tmpl = NULL;
    }
    json_t *spec = json_pack("{s:I, s:{s:o}, s:o}", "replicas",
                             integer_or(w->stateless, "replicas", 1), "selector", "matchLabels",
                             render_selector(m, w->component, NULL, NULL, NULL, NULL, w->cell),
                             "template", tmpl);
    return object(m, "apps/v1", "Deployment", w->name,
                  render_labels(m, w->component, NULL, NULL, NULL, NULL, w->cell), spec);
}

/* A ClusterIP Service (spec stolen; "type" added) labelled for the component. */
static json_t *service(const struct model *m, const char *name, const char *component,
                       const char *cell, json_t *spec)
{
    if (spec && put(spec, "type", json_string("ClusterIP"))) {
        json_decref(spec);
        spec = NULL;
    }
    return object(m, "v1", "Service", name,
                  render_labels(m, component, NULL, NULL, NULL, NULL, cell), spec);
}

/* externalGateway / externalAdminWeb when enabled: its annotations on the Service and its
 * externalIPs in the spec (the Service stays ClusterIP, as in the reference). */
static json_t *expose(json_t *svc, const json_t *exposure)
{
    if (!svc || !json_is_true(get(exposure, "enabled")))
        return svc;
    json_t *annotations = json_object_get(json_object_get(svc, "metadata"), "annotations");
    const json_t *extra = get(exposure, "annotations");
    if ((json_is_object(extra) && json_object_update(annotations, (json_t *)extra)) ||
        put_copy(json_object_get(svc, "spec"), "externalIPs", get(exposure, "externalIPs"))) {
        json_decref(svc);
        return NULL;
    }
    return svc;
}

/* ---- topology servers (etcd) -------------------------------------------------------------- */

#define TOPO_COMPONENT "toposerver"
#define TOPO_SCOPE     "multigres.com/topo-scope"

struct topo {
    char name[254];          /* StatefulSet and client Service; "-headless" for the peers */
    const char *scope;       /* "global" or "local" */
    const char *cell;        /* NULL for the global topology */
    const json_t *etcd;      /* resolved EtcdSpec */
    const char *when_scaled; /* effective pvcDeletionPolicy.whenScaled, or NULL */
    const json_t *tolerations;
};

/* The standard labels (selector: 1, the selector subset) of a topology server's objects, with
 * its scope. */
static json_t *topo_labels(const struct model *m, const struct topo *t, int selector)
{
    json_t *l = selector ? render_selector(m, TOPO_COMPONENT, NULL, NULL, NULL, NULL, t->cell)
                         : render_labels(m, TOPO_COMPONENT, NULL, NULL, NULL, NULL, t->cell);
    if (l && put(l, TOPO_SCOPE, json_string(t->scope))) {
        json_decref(l);
        return NULL;
    }
    return l;
}

/* Labels of the etcd claims: only ones that never change (the template is immutable), plus
 * managed-by so that a host observes the claims as this cluster's topology volumes. */
static json_t *claim_labels(const struct model *m, const struct topo *t)
{
    json_t *l = topo_labels(m, t, 1);
    if (l && put(l, "app.kubernetes.io/managed-by", json_string(RENDER_MANAGED_BY))) {
        json_decref(l);
        return NULL;
    }
    return l;
}

/* ETCD_INITIAL_CLUSTER: "<name>-<i>=http://<name>-<i>.<peers>.<ns>.svc.cluster.local:2380,...". */
static json_t *etcd_peer_list(const char *name, const char *peers, const char *ns,
                              json_int_t replicas)
{
    size_t each = 2 * strlen(name) + strlen(peers) + strlen(ns) + 96;
    if (replicas < 0)
        replicas = 0;
    if ((uint64_t)replicas > (SIZE_MAX - 1) / each)
        return NULL;
    size_t size = (size_t)replicas * each + 1, used = 0;
    char *buf = core_malloc(size);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    for (json_int_t i = 0; i < replicas; i++)
        used += (size_t)snprintf(buf + used, size - used,
                                 "%s%s-%" JSON_INTEGER_FORMAT "=http://%s-%" JSON_INTEGER_FORMAT
                                 ".%s.%s.svc.cluster.local:%d",
                                 i ? "," : "", name, i, name, i, peers, ns, ETCD_PEER_PORT);
    json_t *s = json_string(buf);
    core_free(buf);
    return s;
}

static json_t *etcd_env(const struct topo *t, const char *peers, const char *ns,
                        json_int_t replicas)
{
    json_t *list = etcd_peer_list(t->name, peers, ns, replicas);
    return json_pack(
        "[o, o, o, o, o, o, o, o, o, o, o, {s:s, s:o}]", env_field("POD_NAME", "metadata.name"),
        env_field("POD_NAMESPACE", "metadata.namespace"), env_value("ETCD_NAME", "$(POD_NAME)"),
        env_value("ETCD_DATA_DIR", "/var/lib/etcd"),
        env_value("ETCD_LISTEN_CLIENT_URLS", "http://[::]:2379"),
        env_value("ETCD_LISTEN_PEER_URLS", "http://[::]:2380"),
        env_value("ETCD_LISTEN_METRICS_URLS", "http://[::]:2381"),
        json_pack("{s:s, s:o}", "name", "ETCD_ADVERTISE_CLIENT_URLS", "value",
                  stringf("http://$(POD_NAME).%s.$(POD_NAMESPACE).svc.cluster.local:2379", peers)),
        json_pack("{s:s, s:o}", "name", "ETCD_INITIAL_ADVERTISE_PEER_URLS", "value",
                  stringf("http://$(POD_NAME).%s.$(POD_NAMESPACE).svc.cluster.local:2380", peers)),
        env_value("ETCD_INITIAL_CLUSTER_STATE", "new"),
        env_value("ETCD_INITIAL_CLUSTER_TOKEN", t->name), "name", "ETCD_INITIAL_CLUSTER", "value",
        list);
}

static json_t *etcd_container(const struct topo *t, const char *peers, const char *ns,
                              json_int_t replicas)
{
    const char *image = str(t->etcd, "image");
    json_t *c = json_pack(
        "{s:s, s:s, s:o, s:o, s:[o, o, o], s:[{s:s, s:s}]}", "name", "etcd", "image",
        image && image[0] ? image : ETCD_DEFAULT_IMAGE, "resources",
        render_copy_or_empty(get(t->etcd, "resources")), "env", etcd_env(t, peers, ns, replicas),
        "ports", container_port("client", ETCD_CLIENT_PORT), container_port("peer", ETCD_PEER_PORT),
        container_port("metrics", ETCD_METRICS_PORT), "volumeMounts", "name", "data", "mountPath",
        "/var/lib/etcd");
    if (c && put_probes(c, "/readyz", "/livez", ETCD_METRICS_PORT)) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* The "data" claim template from etcd.storage (10Gi and ReadWriteOnce when unset), labelled
 * like the members (labels: stolen) so that a host observes the claims as this cluster's
 * topology volumes, which go with the cluster (docs/spec/lifecycle.md). */
static json_t *etcd_claim(const json_t *storage, json_t *labels)
{
    const char *size = str(storage, "size"), *class = str(storage, "class");
    const json_t *modes = get(storage, "accessModes");
    json_t *spec =
        json_pack("{s:o, s:{s:{s:s}}}", "accessModes",
                  is_set(modes) ? json_deep_copy(modes) : json_pack("[s]", "ReadWriteOnce"),
                  "resources", "requests", "storage", size && size[0] ? size : "10Gi");
    if (spec && class && class[0] && put(spec, "storageClassName", json_string(class))) {
        json_decref(spec);
        spec = NULL;
    }
    return json_pack("{s:{s:s, s:o}, s:o}", "metadata", "name", "data", "labels", labels, "spec",
                     spec);
}

static json_t *etcd_statefulset(const struct model *m, const struct topo *t, const char *peers)
{
    json_int_t replicas = integer_or(t->etcd, "replicas", 3);
    json_t *pod = json_pack("{s:[o]}", "containers", etcd_container(t, peers, m->ns, replicas));
    if (pod && put_copy(pod, "tolerations", t->tolerations)) {
        json_decref(pod);
        pod = NULL;
    }
    const char *scaled =
        t->when_scaled && strcmp(t->when_scaled, "Delete") == 0 ? "Delete" : "Retain";
    json_t *spec = json_pack(
        "{s:s, s:I, s:{s:o}, s:s, s:{s:s}, s:{s:{s:o}, s:o}, s:[o], s:{s:s, s:s}}", "serviceName",
        peers, "replicas", replicas, "selector", "matchLabels", topo_labels(m, t, 1),
        "podManagementPolicy", "Parallel", "updateStrategy", "type", "RollingUpdate", "template",
        "metadata", "labels", topo_labels(m, t, 0), "spec", pod, "volumeClaimTemplates",
        etcd_claim(get(t->etcd, "storage"), claim_labels(m, t)),
        "persistentVolumeClaimRetentionPolicy", "whenDeleted", "Retain", "whenScaled", scaled);
    return object(m, "apps/v1", "StatefulSet", t->name, topo_labels(m, t, 0), spec);
}

/* The client Service (2379) or the headless peer Service (2379, 2380; not-ready addresses
 * published so that members find each other while they bootstrap). */
static json_t *etcd_service(const struct model *m, const struct topo *t, const char *peers,
                            int headless)
{
    json_t *ports = headless
                        ? json_pack("[o, o]", service_port("client", ETCD_CLIENT_PORT, "client"),
                                    service_port("peer", ETCD_PEER_PORT, "peer"))
                        : json_pack("[o]", service_port("client", ETCD_CLIENT_PORT, "client"));
    json_t *spec = json_pack("{s:s, s:o, s:o}", "ipFamilyPolicy", "PreferDualStack", "selector",
                             topo_labels(m, t, 1), "ports", ports);
    if (spec && (headless ? put(spec, "clusterIP", json_string("None")) ||
                                put(spec, "publishNotReadyAddresses", json_true())
                          : put(spec, "type", json_string("ClusterIP")))) {
        json_decref(spec);
        spec = NULL;
    }
    return object(m, "v1", "Service", headless ? peers : t->name, topo_labels(m, t, 0), spec);
}

static int render_topo(const struct model *m, const struct topo *t, json_t *out)
{
    char peers[300];
    (void)snprintf(peers, sizeof(peers), "%s-headless", t->name);
    int rc = emit_statefulset(out, etcd_statefulset(m, t, peers));
    if (!rc)
        rc = emit(out, etcd_service(m, t, peers, 0));
    if (!rc)
        rc = emit(out, etcd_service(m, t, peers, 1));
    return rc;
}

/* The first set whenScaled of etcd, globalTopoServer and the cluster (MergePVCDeletionPolicy). */
static const char *global_when_scaled(const json_t *spec, const json_t *global)
{
    const json_t *chain[] = {get(get(global, "etcd"), "pvcDeletionPolicy"),
                             get(global, "pvcDeletionPolicy"), get(spec, "pvcDeletionPolicy")};
    for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
        const char *v = str(chain[i], "whenScaled");
        if (v && v[0])
            return v;
    }
    return NULL;
}

static int render_global_topo(const struct model *m, json_t *out)
{
    const json_t *spec = get(m->resolved, "spec");
    const json_t *global = get(spec, "globalTopoServer");
    struct topo t = {
        .scope = "global",
        .etcd = get(global, "etcd"),
        .when_scaled = global_when_scaled(spec, global),
        .tolerations = get(get(global, "placement"), "tolerations"),
    };
    if (!json_is_object(t.etcd) || json_is_object(get(global, "external")))
        return 0; /* an external topology is managed elsewhere */
    (void)snprintf(t.name, sizeof(t.name), "%s-global-topo", m->cluster);
    return render_topo(m, &t, out);
}

/* A cell's managed local etcd: Join(StatefulSet, cell CR name, "topo"); its deletion policy is
 * the etcd block's own (the reference does not inherit the cluster's here). */
static int render_local_topo(const struct model *m, const struct model_cell *cell, json_t *out)
{
    struct topo t = {
        .scope = "local",
        .cell = cell->name,
        .etcd = get(get(cell->spec, "localTopoServer"), "etcd"),
    };
    if (!json_is_object(t.etcd))
        return 0;
    t.when_scaled = str(get(t.etcd, "pvcDeletionPolicy"), "whenScaled");
    const char *parts[] = {cell->cr_name, "topo"};
    names_join(NAMES_STATEFULSET, parts, 2, t.name, sizeof(t.name));
    return render_topo(m, &t, out);
}

/* ---- multiadmin and multiadmin-web -------------------------------------------------------- */

static json_t *multiadmin_args(const struct model *m)
{
    char address[2100];
    const char *root;
    kube_global_topo(m, address, sizeof(address), &root);
    return json_pack("[s, s, o, o, s, s, o]", "--http-port=18000", "--grpc-port=18070",
                     stringf("--topo-global-server-addresses=%s", address),
                     stringf("--topo-global-root=%s", root), "--service-map=grpc-multiadmin",
                     "--pprof-http=true",
                     stringf("--log-level=%s", kube_log_level(m, "multiadmin")));
}

static json_t *multiadmin_pod(const struct model *m, const json_t *admin)
{
    const json_t *stateless = get(admin, "spec");
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:[s], s:o, s:[o, o], s:o}", "name", "multiadmin", "image",
                  kube_image(m, KUBE_IMAGE_MULTIADMIN), "imagePullPolicy", kube_pull_policy(m),
                  "command", "/multigres/bin/multiadmin", "args", multiadmin_args(m), "ports",
                  container_port("http", ADMIN_HTTP_PORT), container_port("grpc", ADMIN_GRPC_PORT),
                  "resources", render_copy_or_empty(get(stateless, "resources")));
    if (c && put_probes(c, "/ready", "/live", ADMIN_HTTP_PORT)) {
        json_decref(c);
        c = NULL;
    }
    json_t *pod =
        pod_spec(m, c, get(stateless, "affinity"), get(get(admin, "placement"), "tolerations"));
    if (pod && (put_observability(m, pod, c, NULL) ||
                (kube_internal_tls(m) &&
                 put_internal_tls(m, pod, c, "multiadmin", "tls-certs", "/etc/multiadmin/tls")))) {
        json_decref(pod);
        return NULL;
    }
    return pod;
}

static int render_multiadmin(const struct model *m, json_t *out)
{
    const json_t *admin = get(get(m->resolved, "spec"), "multiadmin");
    char name[300];
    (void)snprintf(name, sizeof(name), "%s-multiadmin", m->cluster);
    struct workload w = {
        .name = name,
        .component = "multiadmin",
        .stateless = get(admin, "spec"),
        .annotations = get(get(admin, "spec"), "podAnnotations"),
    };
    int rc = emit(out, deployment(m, &w, multiadmin_pod(m, admin)));
    if (rc)
        return rc;
    json_t *spec = json_pack("{s:o, s:[o, o]}", "selector",
                             render_selector(m, "multiadmin", NULL, NULL, NULL, NULL, NULL),
                             "ports", service_port("http", ADMIN_HTTP_PORT, NULL),
                             service_port("grpc", ADMIN_GRPC_PORT, NULL));
    return emit(out, service(m, name, "multiadmin", NULL, spec));
}

static json_t *multiadmin_web_env(const struct model *m)
{
    const char *user = str(get(m->resolved, "spec"), "postgresSuperuser");
    return json_pack("[o, o, o, o, o, o]", env_value("HOSTNAME", "::"),
                     json_pack("{s:s, s:o}", "name", "MULTIADMIN_API_URL", "value",
                               stringf("http://%s-multiadmin:%d", m->cluster, ADMIN_HTTP_PORT)),
                     json_pack("{s:s, s:o}", "name", "POSTGRES_HOST", "value",
                               stringf("%s-multigateway", m->cluster)),
                     env_value("POSTGRES_PORT", "5432"), env_value("POSTGRES_DATABASE", "postgres"),
                     env_value("POSTGRES_USER", user && user[0] ? user : "postgres"));
}

static json_t *multiadmin_web_pod(const struct model *m, const json_t *stateless)
{
    json_t *c =
        json_pack("{s:s, s:s, s:s, s:o, s:[o], s:o}", "name", "multiadmin-web", "image",
                  kube_image(m, KUBE_IMAGE_MULTIADMIN_WEB), "imagePullPolicy", kube_pull_policy(m),
                  "env", multiadmin_web_env(m), "ports", container_port("http", WEB_HTTP_PORT),
                  "resources", render_copy_or_empty(get(stateless, "resources")));
    if (c && put_probes(c, "/", "/", WEB_HTTP_PORT)) {
        json_decref(c);
        c = NULL;
    }
    return pod_spec(m, c, get(stateless, "affinity"), NULL);
}

static int render_multiadmin_web(const struct model *m, json_t *out)
{
    const json_t *spec = get(m->resolved, "spec");
    const json_t *stateless = get(get(spec, "multiadminWeb"), "spec");
    char name[300];
    (void)snprintf(name, sizeof(name), "%s-multiadmin-web", m->cluster);
    struct workload w = {
        .name = name,
        .component = "multiadmin-web",
        .stateless = stateless,
        .annotations = get(stateless, "podAnnotations"),
    };
    int rc = emit(out, deployment(m, &w, multiadmin_web_pod(m, stateless)));
    if (rc)
        return rc;
    json_t *svc = json_pack("{s:o, s:[o]}", "selector",
                            render_selector(m, "multiadmin-web", NULL, NULL, NULL, NULL, NULL),
                            "ports", service_port("http", WEB_HTTP_PORT, NULL));
    return emit(
        out, expose(service(m, name, "multiadmin-web", NULL, svc), get(spec, "externalAdminWeb")));
}

/* ---- cluster-wide gateway Services -------------------------------------------------------- */

/* `<cluster>-multigateway` (5432, with externalGateway) and `<cluster>-multigateway-replica`
 * (5433): both select every gateway of the cluster, whatever its cell. */
static int render_gateway_services(const struct model *m, json_t *out)
{
    static const struct {
        const char *suffix, *port_name;
        int port, exposed;
    } svcs[] = {{"multigateway", "postgres", GATEWAY_PG_PORT, 1},
                {"multigateway-replica", "pg-replica", GATEWAY_REPLICA_PORT, 0}};
    const json_t *exposure = get(get(m->resolved, "spec"), "externalGateway");
    for (size_t i = 0; i < sizeof(svcs) / sizeof(svcs[0]); i++) {
        char name[300];
        (void)snprintf(name, sizeof(name), "%s-%s", m->cluster, svcs[i].suffix);
        json_t *spec =
            json_pack("{s:o, s:[o]}", "selector",
                      render_selector(m, "multigateway", NULL, NULL, NULL, NULL, NULL), "ports",
                      service_port(svcs[i].port_name, svcs[i].port, svcs[i].port_name));
        json_t *svc = service(m, name, "multigateway", NULL, spec);
        int rc = emit(out, svcs[i].exposed ? expose(svc, exposure) : svc);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- cert-manager Certificates ------------------------------------------------------------ */

/* The reference's truncateCommonName: a CN over 64 bytes keeps its first 55 and gets "-" and
 * the first 4 bytes of its SHA-256 in hex. */
static void common_name(const char *cn, char *out, size_t size)
{
    size_t n = strlen(cn);
    unsigned char d[32];
    if (n <= 64) {
        (void)snprintf(out, size, "%s", cn);
        return;
    }
    kube_sha256(cn, n, d);
    (void)snprintf(out, size, "%.55s-%02x%02x%02x%02x", cn, d[0], d[1], d[2], d[3]);
    core_utf8_sanitize(out);
}

/* A Certificate from the reference's fixed template (issuer "supabase-issuer", 5 years, RSA
 * 2048); dns_names and usages are stolen. */
static json_t *certificate(const struct model *m, const char *name, const char *secret,
                           json_t *dns_names, json_t *usages)
{
    size_t size = strlen(name) + 80;
    char *subject = core_malloc(size), cn[80];
    if (subject) {
        common_name(name, cn, sizeof(cn));
        (void)snprintf(subject, size, "C=US, ST=Delware, L=New Castle,O=Supabase Inc, CN=%s", cn);
    }
    json_t *spec = json_pack("{s:s, s:o, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:s, s:i}, s:o}",
                             "secretName", secret, "dnsNames", dns_names, "duration", "44640h0m0s",
                             "literalSubject", subject, "issuerRef", "name", "supabase-issuer",
                             "kind", "ClusterIssuer", "group", "cert-manager.io", "privateKey",
                             "algorithm", "RSA", "size", 2048, "usages", usages);
    core_free(subject);
    return object(m, "cert-manager.io/v1", "Certificate", name,
                  render_labels(m, "certificate", NULL, NULL, NULL, NULL, NULL), spec);
}

/* With spec.internalTLS: one certificate per component (server and client auth); the
 * gateway's also names the pooler identity (it forwards cancels to other gateways with the
 * pooler client flags). */
static int render_internal_certificates(const struct model *m, json_t *out)
{
    static const char *const components[] = {"multiadmin", "multigateway", "multiorch",
                                             "multipooler"};
    char pooler[512];
    kube_component_cert_name(m, "multipooler", pooler, sizeof(pooler));
    for (size_t i = 0; i < sizeof(components) / sizeof(components[0]); i++) {
        char cn[512];
        kube_component_cert_name(m, components[i], cn, sizeof(cn));
        json_t *dns = json_pack("[s]", cn);
        if (dns && strcmp(components[i], "multigateway") == 0 && push(dns, json_string(pooler))) {
            json_decref(dns);
            dns = NULL;
        }
        int rc =
            emit(out, certificate(m, cn, cn, dns,
                                  json_pack("[s, s, s, s]", "digital signature", "key encipherment",
                                            "server auth", "client auth")));
        if (rc)
            return rc;
    }
    return 0;
}

/* With spec.certCommonName: the gateway's PostgreSQL TLS certificate, Secret "generated-certs";
 * "db.<x>" also covers "<x>". */
static int render_public_certificate(const struct model *m, json_t *out)
{
    const char *cn = str(get(m->resolved, "spec"), "certCommonName");
    if (!cn || !cn[0])
        return 0;
    json_t *dns = json_pack("[s]", cn);
    if (dns && strncmp(cn, "db.", 3) == 0 && push(dns, json_string(cn + 3))) {
        json_decref(dns);
        dns = NULL;
    }
    return emit(out, certificate(m, cn, "generated-certs", dns,
                                 json_pack("[s, s, s]", "digital signature", "key encipherment",
                                           "server auth")));
}

/* ---- per-cell multigateway ---------------------------------------------------------------- */

/* Go's time.ParseDuration for the schema's unsigned grammar, in nanoseconds. */
static int parse_go_duration(const char *s, uint64_t *ret)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},         {"\xC2\xB5s", 1000},   {"\xCE\xBCs", 1000},
        {"ms", 1000000}, {"s", 1000000000ULL}, {"m", 60000000000ULL}, {"h", 3600000000000ULL}};
    uint64_t total = 0;
    if (!*s)
        return -EINVAL;
    while (*s) {
        uint64_t whole = 0, frac = 0, unit = 0;
        double scale = 1;
        int digits = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            if (whole > (UINT64_MAX - 9) / 10)
                return -ERANGE;
            whole = whole * 10 + (uint64_t)(*s - '0');
        }
        if (*s == '.')
            for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                if (frac <= (UINT64_MAX - 9) / 10) { /* Go drops digits past overflow too */
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                }
        size_t len = strcspn(s, "0123456789.");
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (strlen(units[i].unit) == len && strncmp(s, units[i].unit, len) == 0)
                unit = units[i].ns;
        if (!digits || !unit || whole > (uint64_t)INT64_MAX / unit)
            return -EINVAL;
        uint64_t add = whole * unit + (uint64_t)((double)frac * ((double)unit / scale));
        if (add > (uint64_t)INT64_MAX - total)
            return -ERANGE;
        total += add;
        s += len;
    }
    *ret = total;
    return 0;
}

/* "<whole>[.<fraction without trailing zeros>]" of v / 10^prec. */
static void format_fraction(uint64_t v, int prec, uint64_t unit, char *out, size_t size)
{
    char frac[24] = "";
    if (v % unit) {
        int n = snprintf(frac, sizeof(frac), ".%0*llu", prec, (unsigned long long)(v % unit));
        while (n > 1 && frac[n - 1] == '0')
            frac[--n] = '\0';
    }
    (void)snprintf(out, size, "%llu%s", (unsigned long long)(v / unit), frac);
}

/* Go's time.Duration.String(): "0s", "750ms", "1.5s", "1m30s", "2h0m0s". */
static void format_go_duration(uint64_t ns, char *out, size_t size)
{
    char num[48];
    if (ns == 0) {
        (void)snprintf(out, size, "0s");
    } else if (ns < 1000) {
        (void)snprintf(out, size, "%lluns", (unsigned long long)ns);
    } else if (ns < 1000000000ULL) {
        int micro = ns < 1000000;
        format_fraction(ns, micro ? 3 : 6, micro ? 1000 : 1000000, num, sizeof(num));
        (void)snprintf(out, size, "%s%s", num, micro ? "\xC2\xB5s" : "ms");
    } else {
        unsigned long long secs = ns / 1000000000ULL;
        format_fraction(ns % 60000000000ULL, 9, 1000000000ULL, num, sizeof(num));
        if (secs >= 3600)
            (void)snprintf(out, size, "%lluh%llum%ss", secs / 3600, secs / 60 % 60, num);
        else if (secs >= 60)
            (void)snprintf(out, size, "%llum%ss", secs / 60, num);
        else
            (void)snprintf(out, size, "%ss", num);
    }
}

/* The gateway's --buffer-* flags for the fields the cell sets, durations printed as Go does. */
static int push_buffer_args(json_t *args, const json_t *buffer)
{
    static const char *const durations[][2] = {
        {"window", "--buffer-window"},
        {"maxFailoverDuration", "--buffer-max-failover-duration"},
        {"minTimeBetweenFailovers", "--buffer-min-time-between-failovers"}};
    static const char *const counts[][2] = {{"size", "--buffer-size"},
                                            {"drainConcurrency", "--buffer-drain-concurrency"}};
    const json_t *enabled = get(buffer, "enabled");
    if (json_is_boolean(enabled) &&
        push(args, json_string(json_is_true(enabled) ? "--buffer-enabled=true"
                                                     : "--buffer-enabled=false")))
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        const char *v = str(buffer, durations[i][0]);
        char canonical[64];
        uint64_t ns;
        if (!v)
            continue;
        if (parse_go_duration(v, &ns) == 0) {
            format_go_duration(ns, canonical, sizeof(canonical));
            v = canonical;
        }
        if (push(args, json_string(durations[i][1])) || push(args, json_string(v)))
            return -ENOMEM;
    }
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        const json_t *v = get(buffer, counts[i][0]);
        if (json_is_integer(v) &&
            (push(args, json_string(counts[i][1])) ||
             push(args, stringf("%" JSON_INTEGER_FORMAT, json_integer_value(v)))))
            return -ENOMEM;
    }
    return 0;
}

static json_t *gateway_args(const struct model *m, const struct model_cell *cell,
                            const json_t *gateway)
{
    char address[2100];
    const char *root;
    kube_global_topo(m, address, sizeof(address), &root);
    /* clang-format off */
    const char *const base[] = {
        "multigateway", "--http-port", "15100", "--grpc-port", "15170", "--pg-port", "5432",
        "--pg-replica-port", "5433", "--topo-global-server-addresses", address,
        "--topo-global-root", root, "--cell", cell->name,
        "--log-level", kube_log_level(m, "multigateway"), NULL};
    /* clang-format on */
    json_t *args = json_array();
    if (!args || push_strings(args, base) || push_buffer_args(args, get(gateway, "buffer"))) {
        json_decref(args);
        return NULL;
    }
    return args;
}

static json_t *gateway_container(const struct model *m, const struct model_cell *cell,
                                 const json_t *gateway)
{
    json_t *c = json_pack("{s:s, s:s, s:s, s:o, s:o, s:[o, o, o, o]}", "name", "multigateway",
                          "image", kube_image(m, KUBE_IMAGE_MULTIGATEWAY), "imagePullPolicy",
                          kube_pull_policy(m), "args", gateway_args(m, cell, gateway), "resources",
                          render_copy_or_empty(get(gateway, "resources")), "ports",
                          container_port("http", GATEWAY_HTTP_PORT),
                          container_port("grpc", GATEWAY_GRPC_PORT),
                          container_port("postgres", GATEWAY_PG_PORT),
                          container_port("pg-replica", GATEWAY_REPLICA_PORT));
    if (c && put_probes(c, "/ready", "/live", GATEWAY_HTTP_PORT)) {
        json_decref(c);
        return NULL;
    }
    return c;
}

/* The cell's placement: topology.k8s.aws/zone-id for a zone, the region label otherwise. */
static int put_node_selector(json_t *pod, const struct model_cell *cell)
{
    if (cell->zone_id && cell->zone_id[0])
        return put(pod, "nodeSelector",
                   json_pack("{s:s}", "topology.k8s.aws/zone-id", cell->zone_id));
    if (cell->region && cell->region[0])
        return put(pod, "nodeSelector",
                   json_pack("{s:s}", "topology.kubernetes.io/region", cell->region));
    return 0;
}

/* Volumes and flags in the reference's order: OTEL sampling, internal TLS, public TLS. */
static int put_gateway_extras(const struct model *m, json_t *pod, json_t *c)
{
    const char *cn = str(get(m->resolved, "spec"), "certCommonName");
    if (put_observability(m, pod, c, "multigateway") ||
        (kube_internal_tls(m) && put_internal_tls(m, pod, c, "multigateway", "tls-certs-internal",
                                                  "/etc/multigateway/tls-internal")))
        return -ENOMEM;
    if (!cn || !cn[0])
        return 0;
    static const char *const args[] = {"--pg-tls-cert-file", "/etc/multigateway/tls/tls.crt",
                                       "--pg-tls-key-file", "/etc/multigateway/tls/tls.key", NULL};
    if (put_secret_volume(pod, c, "tls-certs", "generated-certs", "/etc/multigateway/tls"))
        return -ENOMEM;
    return push_strings(json_object_get(c, "args"), args);
}

static json_t *gateway_pod(const struct model *m, const struct model_cell *cell)
{
    const json_t *gateway = get(cell->spec, "multigateway");
    json_t *c = gateway_container(m, cell, gateway);
    json_t *pod = pod_spec(m, c, get(gateway, "affinity"),
                           get(get(cell->spec, "multigatewayPlacement"), "tolerations"));
    if (pod && (put_node_selector(pod, cell) || put_gateway_extras(m, pod, c))) {
        json_decref(pod);
        return NULL;
    }
    return pod;
}

/* The gateway's pod annotations: the user's, without the prometheus.io keys, plus the project
 * reference. */
static json_t *gateway_annotations(const struct model *m, const json_t *gateway)
{
    const json_t *user = get(gateway, "podAnnotations");
    json_t *a = json_is_object(user) ? json_deep_copy(user) : json_object();
    if (!a)
        return NULL;
    (void)json_object_del(a, "prometheus.io/scrape"); /* absent keys are fine */
    (void)json_object_del(a, "prometheus.io/port");
    (void)json_object_del(a, "prometheus.io/path");
    if (put(a, "multigres.com/project-ref", json_string(kube_project_ref(m)))) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static json_t *gateway_service_spec(const struct model *m, const struct model_cell *cell)
{
    return json_pack("{s:o, s:[o, o, o]}", "selector",
                     render_selector(m, "multigateway", NULL, NULL, NULL, NULL, cell->name),
                     "ports", service_port("http", GATEWAY_HTTP_PORT, "http"),
                     service_port("grpc", GATEWAY_GRPC_PORT, "grpc"),
                     service_port("postgres", GATEWAY_PG_PORT, "postgres"));
}

static int render_gateway(const struct model *m, const struct model_cell *cell, json_t *out)
{
    const json_t *gateway = get(cell->spec, "multigateway");
    const char *parts[] = {m->cluster, cell->name, "multigateway"};
    char name[254], svc_name[254];
    names_join(NAMES_DEFAULT, parts, 3, name, sizeof(name));
    names_join(NAMES_SERVICE, parts, 3, svc_name, sizeof(svc_name));
    json_t *annotations = gateway_annotations(m, gateway);
    if (!annotations)
        return -ENOMEM;
    struct workload w = {
        .name = name,
        .component = "multigateway",
        .cell = cell->name,
        .stateless = gateway,
        .annotations = annotations,
    };
    int rc = emit(out, deployment(m, &w, gateway_pod(m, cell)));
    json_decref(annotations);
    if (rc)
        return rc;
    return emit(out,
                service(m, svc_name, "multigateway", cell->name, gateway_service_spec(m, cell)));
}

/* ---- entry point -------------------------------------------------------------------------- */

int kube_render_cluster(const struct render_ctx *c, json_t *out)
{
    const struct model *m = c->m;
    int rc = render_global_topo(m, out);
    if (!rc)
        rc = render_multiadmin(m, out);
    if (!rc)
        rc = render_multiadmin_web(m, out);
    if (!rc)
        rc = render_gateway_services(m, out);
    if (!rc && kube_internal_tls(m))
        rc = render_internal_certificates(m, out);
    if (!rc)
        rc = render_public_certificate(m, out);
    for (size_t i = 0; !rc && i < m->ncells; i++) {
        rc = render_local_topo(m, &m->cells[i], out);
        if (!rc)
            rc = render_gateway(m, &m->cells[i], out);
    }
    return rc;
}
