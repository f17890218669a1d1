/*
 * The spec model: classify documents, validate each object (schema, cross-field rules,
 * admission rules), and resolve every valid MultigresCluster. Module prefix spec_.
 */
#ifndef MGO_SPEC_SPEC_H
#define MGO_SPEC_SPEC_H

#include <jansson.h>

#include "spec/load.h"

struct schema_regex_cache;

struct spec_input {
    const json_t *docs;     /* array of documents (objects), in input order */
    const char *default_ns; /* namespace of objects that name none */
    const json_t *previous; /* previous version of the cluster (update rules), or NULL */
    const json_t *sources;  /* array of strings parallel to docs (where each came from), or NULL */
    const json_t *load_errors; /* report entries for unreadable input, appended as given, or NULL */
};

/*
 * Evaluate every document. *ret_report receives
 *   {"valid": bool, "objects": [{"document", "source", "kind", "apiVersion", "name", "namespace",
 *     "valid", "skipped", "errors": [{"path", "reason"}], "warnings": [...]}]}
 * and *ret_clusters (when not NULL) an array of {"document", "name", "namespace", "resolved",
 * "templates"} for every MultigresCluster that is valid. Both are new references owned by the
 * caller. Returns 0 or -ENOMEM (nothing written).
 */
int spec_evaluate(const struct spec_input *in, struct schema_regex_cache *cache,
                  json_t **ret_report, json_t **ret_clusters);

#endif
