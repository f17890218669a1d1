/* Helpers shared by the kubernetes render files (see kube.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "render/kube.h"

/* The reference operator's compiled-in images (api/v1alpha1/image_defaults.go). */
static const struct {
    const char *field;
    const char *image;
} images[] = {
    [KUBE_IMAGE_POSTGRES] = {"postgres", "ghcr.io/multigres/pgctld:sha-66d2310"},
    [KUBE_IMAGE_MULTIPOOLER] = {"multipooler", "ghcr.io/multigres/multigres:sha-66d2310"},
    [KUBE_IMAGE_MULTIORCH] = {"multiorch", "ghcr.io/multigres/multigres:sha-66d2310"},
    [KUBE_IMAGE_MULTIGATEWAY] = {"multigateway", "ghcr.io/multigres/multigres:sha-66d2310"},
    [KUBE_IMAGE_MULTIADMIN] = {"multiadmin", "ghcr.io/multigres/multigres:sha-66d2310"},
    [KUBE_IMAGE_MULTIADMIN_WEB] = {"multiadminWeb", "ghcr.io/multigres/multiadmin-web:sha-64da1ab"},
};

static const json_t *spec_images(const struct model *m)
{
    return json_object_get(json_object_get(m->resolved, "spec"), "images");
}

const char *kube_image(const struct model *m, enum kube_image which)
{
    const char *set = json_string_value(json_object_get(spec_images(m), images[which].field));
    return set && set[0] ? set : images[which].image;
}

const char *kube_pull_policy(const struct model *m)
{
    const char *p = json_string_value(json_object_get(spec_images(m), "imagePullPolicy"));
    return p ? p : "IfNotPresent";
}

json_t *kube_pull_secrets(const struct model *m)
{
    const json_t *s = json_object_get(spec_images(m), "imagePullSecrets");
    return json_is_array(s) ? json_deep_copy(s) : json_array();
}

const char *kube_log_level(const struct model *m, const char *component)
{
    const char *l = json_string_value(json_object_get(
        json_object_get(json_object_get(m->resolved, "spec"), "logLevels"), component));
    return l ? l : "info";
}

void kube_global_topo(const struct model *m, char *address, size_t size, const char **root)
{
    const json_t *g = json_object_get(json_object_get(m->resolved, "spec"), "globalTopoServer");
    const json_t *ext = json_object_get(g, "external");
    const json_t *etcd = json_object_get(g, "etcd");
    if (json_is_object(ext)) {
        /* The reference passes endpoints[0] through unchanged (globalTopoRef); the etcd client
         * accepts it with or without a scheme, and topology registration stores the same. */
        const char *ep = json_string_value(json_array_get(json_object_get(ext, "endpoints"), 0));
        (void)snprintf(address, size, "%s", ep ? ep : "");
        *root = json_string_value(json_object_get(ext, "rootPath"));
    } else {
        (void)snprintf(address, size, "%s-global-topo.%s.svc:2379", m->cluster, m->ns);
        *root = json_string_value(json_object_get(etcd, "rootPath"));
    }
    if (!*root || !**root)
        *root = "/multigres/global";
}

const char *kube_project_ref(const struct model *m)
{
    const json_t *annotations =
        json_object_get(json_object_get(m->resolved, "metadata"), "annotations");
    const char *ref = json_string_value(json_object_get(annotations, "multigres.com/project-ref"));
    return ref && ref[0] ? ref : m->cluster;
}

/* ---- observability ------------------------------------------------------------------------ */

static const json_t *observability(const struct model *m)
{
    return json_object_get(json_object_get(m->resolved, "spec"), "observability");
}

static int append_env(json_t *env, const char *name, const char *value)
{
    if (!value || !value[0])
        return 0;
    return json_array_append_new(env, json_pack("{s:s, s:s}", "name", name, "value", value))
               ? -ENOMEM
               : 0;
}

/* OTEL_RESOURCE_ATTRIBUTES in the reference's fixed key order. */
static int append_resource_attributes(const struct model *m, json_t *env, const char *component)
{
    const char *project = kube_project_ref(m);
    size_t size = strlen(project) + strlen(m->cluster) + strlen(component) + 64;
    char *value = core_malloc(size);
    if (!value)
        return -ENOMEM;
    (void)snprintf(value, size, "multigres.project=%s,multigres.cluster=%s,multigres.component=%s",
                   project, m->cluster, component);
    int rc = append_env(env, "OTEL_RESOURCE_ATTRIBUTES", value);
    core_free(value);
    return rc;
}

/* The environment variables copied from the spec when set, in the reference's order. */
static const struct {
    const char *env;
    const char *field;
} otel_fields[] = {
    {"OTEL_EXPORTER_OTLP_PROTOCOL", "otlpProtocol"},
    {"OTEL_TRACES_EXPORTER", "tracesExporter"},
    {"OTEL_METRICS_EXPORTER", "metricsExporter"},
    {"OTEL_LOGS_EXPORTER", "logsExporter"},
    {"OTEL_METRIC_EXPORT_INTERVAL", "metricExportInterval"},
    {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "metricsTemporality"},
    {"OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION", "histogramAggregation"},
    {"OTEL_TRACES_SAMPLER", "tracesSampler"},
};

static int append_sampler_config(const json_t *obs, json_t *env)
{
    const json_t *ref = json_object_get(obs, "samplingConfigRef");
    if (!json_is_object(ref))
        return 0;
    const char *key = json_string_value(json_object_get(ref, "key"));
    char path[600];
    (void)snprintf(path, sizeof(path), "/etc/otel/%s",
                   key && key[0] ? key : "sampling-config.yaml");
    return append_env(env, "OTEL_TRACES_SAMPLER_CONFIG", path);
}

json_t *kube_otel_env(const struct model *m, const char *component)
{
    const json_t *obs = observability(m);
    const char *endpoint = json_string_value(json_object_get(obs, "otlpEndpoint"));
    const char *metrics = json_string_value(json_object_get(obs, "otlpMetricsEndpoint"));
    json_t *env = json_array();
    if (!env || (endpoint && strcmp(endpoint, "disabled") == 0) ||
        ((!endpoint || !endpoint[0]) && (!metrics || !metrics[0])))
        return env;
    int rc = append_env(env, "OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    if (!rc) /* in this order: the rendered env list is compared as written */
        rc = append_env(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics);
    for (size_t i = 0; !rc && i < sizeof(otel_fields) / sizeof(otel_fields[0]); i++)
        rc = append_env(env, otel_fields[i].env,
                        json_string_value(json_object_get(obs, otel_fields[i].field)));
    if (!rc && component)
        rc = append_resource_attributes(m, env, component);
    if (!rc)
        rc = append_sampler_config(obs, env);
    if (rc) {
        json_decref(env);
        return NULL;
    }
    return env;
}

int kube_otel_sampling(const struct model *m, json_t **ret_volume, json_t **ret_mount)
{
    const json_t *ref = json_object_get(observability(m), "samplingConfigRef");
    const char *name = json_string_value(json_object_get(ref, "name"));
    *ret_volume = NULL;
    *ret_mount = NULL;
    if (!json_is_object(ref))
        return 0;
    json_t *volume = json_pack("{s:s, s:{s:s}}", "name", "otel-sampling-config", "configMap",
                               "name", name ? name : "");
    json_t *mount = json_pack("{s:s, s:s, s:b}", "name", "otel-sampling-config", "mountPath",
                              "/etc/otel", "readOnly", 1);
    if (!volume || !mount) {
        json_decref(volume);
        json_decref(mount);
        return -ENOMEM;
    }
    *ret_volume = volume;
    *ret_mount = mount;
    return 0;
}

/* ---- internal TLS ------------------------------------------------------------------------- */

int kube_internal_tls(const struct model *m)
{
    const json_t *tls = json_object_get(json_object_get(m->resolved, "spec"), "internalTLS");
    return json_is_true(json_object_get(tls, "enabled"));
}

void kube_component_cert_name(const struct model *m, const char *component, char *out, size_t size)
{
    (void)snprintf(out, size, "%s.%s.%s.multigres.internal", component, m->cluster, m->ns);
}

/* ---- SHA-256 (FIPS 180-4) ----------------------------------------------------------------- */

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++)
        w[i] = w[i - 16] + (rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
               w[i - 7] + (rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10));
    memcpy(v, h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
        uint32_t t2 = (rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof(v[0]));
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += v[i];
}

void kube_sha256(const void *data, size_t len, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    unsigned char tail[128] = {0};
    size_t full = len / 64 * 64, rest = len - full;
    for (size_t i = 0; i < full; i += 64)
        sha256_block(h, p + i);
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(h, tail);
    if (tail_len == 128)
        sha256_block(h, tail + 64);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}
