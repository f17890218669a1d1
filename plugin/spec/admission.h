/*
 * Admission rules beyond the structural schema: the reference operator's validating webhook
 * (postgresConfig, resource limits, gateway buffers, pool names and cells, update-only rules)
 * and its warnings. Module prefix admission_.
 */
#ifndef MGO_SPEC_ADMISSION_H
#define MGO_SPEC_ADMISSION_H

#include <jansson.h>

#include "spec/errors.h"

/* One cluster under admission: as written (structurally defaulted, for paths and user-written
 * maps), as resolved, and the templates resolution used ([{"kind", "name"}]); on update the
 * same three for the previous version (resolved/used may be NULL when it does not resolve). */
struct admission_input {
    const json_t *cluster, *resolved, *used;
    const json_t *previous, *previous_resolved, *previous_used;
};

/* Check a MultigresCluster; errors and warnings are appended to `errs`. */
void admission_check_cluster(const struct admission_input *in, struct spec_errors *errs);

/* Check a ShardTemplate's pool names and postgresConfig (its other rules are structural). */
void admission_check_shard_template(const json_t *tmpl, struct spec_errors *errs);

/* Check a CellTemplate's gateway buffer and resources. */
void admission_check_cell_template(const json_t *tmpl, struct spec_errors *errs);

/* Parse a Go duration ("1m30s", "250ms"); 0 and seconds in *ret, or -EINVAL. */
int admission_parse_duration(const char *s, double *ret);

#endif
