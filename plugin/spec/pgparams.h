/* PostgreSQL parameters: names, value types and contexts, for validating spec postgresConfig. */
#ifndef MGO_SPEC_PGPARAMS_H
#define MGO_SPEC_PGPARAMS_H

#include <stddef.h>

/* Value types, as PostgreSQL's pg_settings.vartype. */
enum pg_param_type {
    PG_PARAM_BOOL,
    PG_PARAM_INTEGER,
    PG_PARAM_REAL,
    PG_PARAM_STRING,
    PG_PARAM_ENUM,
};

/* When a change takes effect, as PostgreSQL's pg_settings.context. */
enum pg_param_context {
    PG_CONTEXT_INTERNAL,          /* fixed at build/initdb: cannot be set */
    PG_CONTEXT_POSTMASTER,        /* restart-class */
    PG_CONTEXT_SIGHUP,            /* reload-class */
    PG_CONTEXT_SUPERUSER_BACKEND, /* new sessions (reload suffices for new connections) */
    PG_CONTEXT_BACKEND,
    PG_CONTEXT_SUPERUSER, /* reload-class */
    PG_CONTEXT_USER,      /* reload-class */
};

struct pg_param {
    const char *name; /* lower-case, as in pg_settings.name */
    enum pg_param_type type;
    enum pg_param_context context;
    const char *const *enum_values; /* PG_PARAM_ENUM: NULL-terminated list; else NULL */
};

/* Look up a parameter by name (case-insensitive, as PostgreSQL does). NULL when unknown. */
const struct pg_param *pg_param_lookup(const char *name);

/*
 * Check one postgresConfig entry the way the reference operator's admission webhook does:
 * unknown names, operator-managed names, and values that do not parse as the parameter's type.
 * Dotted names (extension parameters such as "auto_explain.log_min_duration") are accepted with
 * any value. Returns 0 when acceptable; otherwise -1 with a NUL-terminated reason written to
 * `reason` (capacity reason_size, truncated if needed), for example
 * `unknown parameter "foo"`.
 */
int pg_param_check(const char *name, const char *value, char *reason, size_t reason_size);

/* A postgresConfig key as validation reads it: surrounding white space (Unicode too) trimmed,
 * lower-cased the way pg_param_check() does. 0 with out filled, or -1 when nothing is left or
 * out (out_size bytes) is too small. */
int pg_param_canonical_name(const char *name, char *out, size_t out_size);

#endif
