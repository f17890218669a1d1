/* Collected validation errors and warnings, each a field path and a reason (docs/spec/errors.md).
 */
#ifndef MGO_SPEC_ERRORS_H
#define MGO_SPEC_ERRORS_H

#include <jansson.h>
#include <stddef.h>

/* A field path under construction ("spec.cells[0].name"); fixed capacity, truncated with "..."
 * when a pathological key would overflow it. */
struct spec_path {
    char buf[512];
    size_t len;
};

void spec_path_init(struct spec_path *p, const char *root);
/* Each push returns the previous length, to be given back to spec_path_pop(). */
size_t spec_path_push_field(struct spec_path *p, const char *name);
size_t spec_path_push_index(struct spec_path *p, size_t index);
size_t spec_path_push_key(struct spec_path *p, const char *key);
void spec_path_pop(struct spec_path *p, size_t len);

/* The errors and warnings found in one document. Both arrays hold objects
 * {"path": string, "reason": string}. */
struct spec_errors {
    json_t *errors;
    json_t *warnings;
    int oom; /* set when an allocation failed while recording */
};

int spec_errors_init(struct spec_errors *e);
void spec_errors_fini(struct spec_errors *e);
size_t spec_errors_count(const struct spec_errors *e);

/* Record an error/warning; the reason is formatted printf-style. Never fails visibly: an
 * allocation failure sets e->oom, which the caller turns into MGO_ENOMEM. */
void spec_error(struct spec_errors *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void spec_warning(struct spec_errors *e, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
