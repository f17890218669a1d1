/*
 * Admission rules beyond the structural schema: the reference operator's validating webhook
 * (postgresConfig, resource limits, gateway buffers, pool names and cells, update-only rules)
 * and its warnings. Module prefix admission_.
 */
#ifndef MGO_SPEC_ADMISSION_H
#define MGO_SPEC_ADMISSION_H

#include <jansson.h>

#include "spec/errors.h"

/*
 * Check a MultigresCluster. `cluster` is the object as written (for paths and user-written
 * maps), `resolved` its resolve_cluster() result, and `previous` the previous version as
 * written (structurally defaulted) on update, NULL on create. Errors and warnings are appended
 * to `errs`.
 */
void admission_check_cluster(const json_t *cluster, const json_t *resolved, const json_t *previous,
                             struct spec_errors *errs);

/* Check a ShardTemplate's pool names and postgresConfig (its other rules are structural). */
void admission_check_shard_template(const json_t *tmpl, struct spec_errors *errs);

/* Check a CellTemplate's gateway buffer and resources. */
void admission_check_cell_template(const json_t *tmpl, struct spec_errors *errs);

/* Parse a Go duration ("1m30s", "250ms"); 0 and seconds in *ret, or -EINVAL. */
int admission_parse_duration(const char *s, double *ret);

#endif
