/*
 * Template resolution and defaults: the reference operator's 4-level override chain
 * (docs/spec/templates.md). Module prefix resolve_.
 */
#ifndef MGO_SPEC_RESOLVE_H
#define MGO_SPEC_RESOLVE_H

#include <jansson.h>

#include "spec/errors.h"

/* Templates visible to one cluster: the CoreTemplate, CellTemplate and ShardTemplate objects of
 * its namespace, by name. Borrowed references. */
struct resolve_templates {
    json_t *core; /* object: name -> template object */
    json_t *cell;
    json_t *shard;
};

/*
 * Resolve `cluster` (a MultigresCluster object that passed schema validation) into a new object
 * of the same kind in which every component is written out inline: templates applied through the
 * override chain, defaults filled in, pool and multiorch cells assigned, and the effective PVC
 * deletion policy, backup and durability policy written on every shard and database. Template
 * references that name a missing template (other than the implicit "default") are errors at the
 * path of the reference. `ret_used` receives an array of {"kind", "name"} for every template
 * used. Returns 0 with *ret_resolved and *ret_used set (both owned by the caller), or -EINVAL
 * when errors were recorded, or -ENOMEM.
 */
int resolve_cluster(const json_t *cluster, const struct resolve_templates *templates,
                    const char *namespace_name, struct spec_errors *errs, json_t **ret_resolved,
                    json_t **ret_used);

/* Deep-merge `src` into `dst` with the reference merge rules (scalars and lists replace; maps
 * merge per key; `resources` replaces as one block when it sets requests, limits or claims;
 * affinity, placement and localTopoServer replace wholesale; nulls in src are ignored). */
int resolve_merge(json_t *dst, const json_t *src);

#endif
