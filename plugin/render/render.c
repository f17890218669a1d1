/* Shared pieces of the render targets (see render.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "render/kube.h"
#include "render/render.h"

static int set_str(json_t *o, const char *key, const char *value)
{
    return value ? json_object_set_new(o, key, json_string(value)) : 0;
}

static json_t *labels_common(const struct model *m, const char *component, const char *database,
                             const char *tablegroup, const char *shard, const char *pool,
                             const char *cell, int selector)
{
    const struct model_cell *c = cell && !selector ? model_cell(m, cell) : NULL;
    /* In a fixed order, so that printed objects read the same on every build. */
    const char *const pairs[][2] = {
        {"app.kubernetes.io/name", selector ? NULL : "multigres"},
        {"app.kubernetes.io/instance", m->cluster},
        {"app.kubernetes.io/component", component},
        {"app.kubernetes.io/part-of", selector ? NULL : "multigres"},
        {"app.kubernetes.io/managed-by", selector ? NULL : RENDER_MANAGED_BY},
        {"multigres.com/cluster", m->cluster},
        {"multigres.com/database", database},
        {"multigres.com/tablegroup", tablegroup},
        {"multigres.com/shard", shard},
        {"multigres.com/pool", pool},
        {"multigres.com/cell", cell},
        {"multigres.com/zone-id", c ? c->zone_id : NULL},
        {"multigres.com/region", c ? c->region : NULL},
    };
    json_t *l = json_object();
    for (size_t i = 0; l && i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (set_str(l, pairs[i][0], pairs[i][1])) {
            json_decref(l);
            l = NULL;
        }
    return l;
}

json_t *render_labels(const struct model *m, const char *component, const char *database,
                      const char *tablegroup, const char *shard, const char *pool, const char *cell)
{
    return labels_common(m, component, database, tablegroup, shard, pool, cell, 0);
}

json_t *render_selector(const struct model *m, const char *component, const char *database,
                        const char *tablegroup, const char *shard, const char *pool,
                        const char *cell)
{
    return labels_common(m, component, database, tablegroup, shard, pool, cell, 1);
}

json_t *render_object(const struct model *m, const char *api_version, const char *kind,
                      const char *name, json_t *labels, int owned)
{
    if (!labels)
        return NULL;
    json_t *meta = json_pack("{s:s, s:s, s:o, s:{}}", "name", name, "namespace", m->ns, "labels",
                             labels, "annotations");
    if (!meta)
        return NULL;
    if (owned) {
        json_t *ref = json_pack("{s:s, s:s, s:s, s:b, s:b}", "apiVersion", "multigres.com/v1alpha1",
                                "kind", "MultigresCluster", "name", m->cluster, "controller", 1,
                                "blockOwnerDeletion", 1);
        if (ref && m->uid && json_object_set_new(ref, "uid", json_string(m->uid))) {
            json_decref(ref);
            ref = NULL;
        }
        /* json_pack's "o" takes the reference even when it fails */
        if (!ref || json_object_set_new(meta, "ownerReferences", json_pack("[o]", ref))) {
            json_decref(meta);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:o}", "apiVersion", api_version, "kind", kind, "metadata", meta);
}

int render_hash(const json_t *value, char out[9])
{
    uint32_t h = 2166136261u;
    char *text = value ? json_dumps(value, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (value && !text)
        return -ENOMEM;
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    core_free(text);
    (void)snprintf(out, 9, "%08x", (unsigned)h);
    return 0;
}

int render_stamp(json_t *object, int pod_like)
{
    json_t *annotations = json_object_get(json_object_get(object, "metadata"), "annotations");
    char hash[9];
    if (!json_is_object(annotations))
        return -ENOMEM;
    if (!pod_like)
        (void)json_object_del(annotations, RENDER_SPEC_HASH); /* absent or not: both fine */
    if (render_hash(pod_like ? json_object_get(object, "spec") : object, hash))
        return -ENOMEM;
    return json_object_set_new(annotations, RENDER_SPEC_HASH, json_string(hash)) ? -ENOMEM : 0;
}

int render_stamp_value(json_t *object, const json_t *value)
{
    json_t *annotations = json_object_get(json_object_get(object, "metadata"), "annotations");
    char hash[9];
    if (!json_is_object(annotations) || render_hash(value, hash))
        return -ENOMEM;
    return json_object_set_new(annotations, RENDER_SPEC_HASH, json_string(hash)) ? -ENOMEM : 0;
}

json_t *render_copy_or_empty(const json_t *v)
{
    return v ? json_deep_copy(v) : json_object();
}

int render_kubernetes(const struct render_ctx *c, json_t *out)
{
    int rc = kube_render_cluster(c, out);
    for (size_t i = 0; !rc && i < c->m->nshards; i++)
        rc = kube_render_shard(c, &c->m->shards[i], out);
    return rc;
}
