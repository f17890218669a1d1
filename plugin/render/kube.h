/*
 * The kubernetes render target, split by scope: cluster-wide objects (kube_cluster.c: topology
 * servers, multiadmin, multiadmin-web, gateways) and per-shard objects (kube_shard.c: multiorch,
 * config maps, backup volume, and per pool x cell the pods, data PVCs, headless Service and
 * PodDisruptionBudget). Shared helpers in kube_common.c. Module prefix kube_.
 */
#ifndef MGO_RENDER_KUBE_H
#define MGO_RENDER_KUBE_H

#include <jansson.h>

#include "render/render.h"

enum kube_image {
    KUBE_IMAGE_POSTGRES, /* pgctld + postgres */
    KUBE_IMAGE_MULTIPOOLER,
    KUBE_IMAGE_MULTIORCH,
    KUBE_IMAGE_MULTIGATEWAY,
    KUBE_IMAGE_MULTIADMIN,
    KUBE_IMAGE_MULTIADMIN_WEB,
};

/* spec.images.<component> when set, else the reference's compiled-in default. */
const char *kube_image(const struct model *m, enum kube_image which);

/* spec.images.imagePullPolicy (resolved: always set). */
const char *kube_pull_policy(const struct model *m);

/* spec.images.imagePullSecrets as a new array ([] when none); NULL on allocation failure. */
json_t *kube_pull_secrets(const struct model *m);

/* spec.logLevels.<component> ("info" when unset). */
const char *kube_log_level(const struct model *m, const char *component);

/* The global topology as the reference hands it to multigateway (Cell.spec.globalTopoServer):
 * client address ("<cluster>-global-topo.<ns>.svc:2379", or the first external endpoint as
 * written, scheme included) and root path (etcd or external rootPath, "/multigres/global" when
 * unset). */
void kube_global_topo(const struct model *m, char *address, size_t size, const char **root);

/* metadata.annotations["multigres.com/project-ref"] when set and not empty, else the cluster
 * name (the reference's ResolveProjectRef). Borrowed from the resolved document. */
const char *kube_project_ref(const struct model *m);

/* The OTEL_* environment of a Multigres container from spec.observability: the reference's
 * BuildOTELEnvVarsWithResourceAttributes without its fallback to the operator's own process
 * environment (a library has none to inherit). A new array, [] when no OTLP endpoint is set or
 * it is "disabled"; a non-NULL `component` adds OTEL_RESOURCE_ATTRIBUTES (project, cluster,
 * component). NULL on allocation failure. */
json_t *kube_otel_env(const struct model *m, const char *component);

/* spec.observability.samplingConfigRef as the pod volume "otel-sampling-config" and its
 * read-only container mount at /etc/otel (the reference's BuildOTELSamplingVolume). 0 with both
 * set to NULL when not configured, 0 with two new objects, or -ENOMEM (nothing returned). */
int kube_otel_sampling(const struct model *m, json_t **ret_volume, json_t **ret_mount);

/* spec.internalTLS.enabled is true. */
int kube_internal_tls(const struct model *m);

/* The internal TLS identity of `component` ("multiadmin", "multigateway", "multiorch",
 * "multipooler"): "<component>.<cluster>.<namespace>.multigres.internal", which is also the name
 * of the Secret cert-manager writes its certificate to (ComponentCertCommonName). */
void kube_component_cert_name(const struct model *m, const char *component, char *out, size_t size);

/* SHA-256 of `len` bytes. */
void kube_sha256(const void *data, size_t len, unsigned char out[32]);

int kube_render_cluster(const struct render_ctx *c, json_t *out);
int kube_render_shard(const struct render_ctx *c, const struct model_shard *s, json_t *out);

/* Append to `out` the certificates the host must keep in Secrets (docs/abi.md, "certificates"):
 * one per shard whose pgBackRest TLS is not the user's own Secret. 0 or -ENOMEM. */
int kube_certificates(const struct model *m, json_t *out);

#endif
