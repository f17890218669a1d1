/*
 * Render targets: the desired objects of one cluster, for a Kubernetes host ("kubernetes") or a
 * local process host ("process"). Every object is a JSON object of the Kubernetes shape
 * ({apiVersion, kind, metadata: {name, namespace, labels, annotations, ownerReferences}, ...})
 * and carries the annotation RENDER_SPEC_HASH. The reconcile diff (plugin/reconcile) sees only
 * these documents: identity by kind and name, membership by the hierarchy labels, drift by the
 * hash. Module prefix render_.
 */
#ifndef MGO_RENDER_RENDER_H
#define MGO_RENDER_RENDER_H

#include <jansson.h>
#include <stdint.h>

#include "render/model.h"

#define RENDER_SPEC_HASH   "multigres.com/spec-hash"
#define RENDER_RELOAD_HASH "multigres.com/postgres-reload-hash"
#define RENDER_MANAGED_BY  "mgo"

/* Kinds whose objects are database instances (removed only through a drain). */
#define RENDER_KIND_POD      "Pod"
#define RENDER_KIND_INSTANCE "Instance"
/* Kinds of the instances' data volumes. */
#define RENDER_KIND_PVC    "PersistentVolumeClaim"
#define RENDER_KIND_VOLUME "Volume"
/* The process target's API version. */
#define RENDER_PROCESS_API "process.mgo/v1alpha1"

struct render_ctx {
    const struct model *m;
    /* process target: ports already in use, {"<object name>": {"<port name>": n}}, taken from
     * the observed objects so that a port never moves; may be NULL. */
    const json_t *ports;
    int64_t port_base; /* process target: first port to hand out (default 15432) */
};

/* Append the objects of the target to `out`. 0, -ENOMEM, or (process) -ERANGE when no free
 * port is left below 65536. */
int render_kubernetes(const struct render_ctx *c, json_t *out);
int render_process(const struct render_ctx *c, json_t *out);

/* ---- shared by the targets (render.c) ---- */

/* The standard and hierarchy labels: app.kubernetes.io/{name=multigres, instance=<cluster>,
 * component, part-of=multigres, managed-by=mgo}, multigres.com/cluster, and each of database,
 * tablegroup, shard, pool, cell that is not NULL; plus multigres.com/zone-id or
 * multigres.com/region when `cell` names a cell with one. NULL on allocation failure. */
json_t *render_labels(const struct model *m, const char *component, const char *database,
                      const char *tablegroup, const char *shard, const char *pool,
                      const char *cell);

/* The selector subset of render_labels (component, instance, cluster and the hierarchy). */
json_t *render_selector(const struct model *m, const char *component, const char *database,
                        const char *tablegroup, const char *shard, const char *pool,
                        const char *cell);

/* {"apiVersion", "kind", "metadata": {name, namespace, labels (stolen), annotations {},
 * ownerReferences: [the cluster, controller]}}; owned == 0 leaves ownerReferences out. */
json_t *render_object(const struct model *m, const char *api_version, const char *kind,
                      const char *name, json_t *labels, int owned);

/* FNV-1a 32 over the canonical JSON (sorted keys, compact) of `value`, as 8 hex digits.
 * 0, or -ENOMEM (out untouched). */
int render_hash(const json_t *value, char out[9]);

/* Set metadata.annotations[RENDER_SPEC_HASH] = hash of the object. pod_like: hash only the
 * object's "spec" (labels and annotations do not roll instances); otherwise hash everything
 * but the hash annotation itself. 0 or -ENOMEM. */
int render_stamp(json_t *object, int pod_like);

/* Set the hash annotation to the hash of `value` alone: for objects of which only part may
 * change after creation (a PVC's requested size). 0 or -ENOMEM. */
int render_stamp_value(json_t *object, const json_t *value);

/* Annotation on a PVC: the storage it requests, for the diff to tell growth from other
 * changes (only growth can be applied to an existing claim). */
#define RENDER_STORAGE_REQUEST "multigres.com/storage-request"

/* Kubernetes quantity-free helpers for container resources: a deep copy of `resources` or an
 * empty object. */
json_t *render_copy_or_empty(const json_t *v);

#endif
