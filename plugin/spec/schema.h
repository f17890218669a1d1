/*
 * Structural schemas of the user-facing kinds (MultigresCluster, CoreTemplate, CellTemplate,
 * ShardTemplate), written for mgo from the reference API's field names, types and limits, and the
 * validator that walks a JSON document against them.
 *
 * A schema is a tree of static, read-only `struct schema_node`s. The walker checks JSON types,
 * unknown fields, required fields, string/list/map limits, integer ranges, enumerations, patterns,
 * list-map key uniqueness, and each node's cross-field rules (the reference schema's CEL rules,
 * written here as C predicates). Transition rules (those that read the previous object) run only
 * when the previous object is supplied; the walker correlates old and new values the way the API
 * server does: object fields by name, map entries by key, list-map entries by their key.
 */
#ifndef MGO_SPEC_SCHEMA_H
#define MGO_SPEC_SCHEMA_H

#include <jansson.h>
#include <stdint.h>

#include "spec/errors.h"

enum schema_kind {
    SK_OBJECT, /* fields listed; anything else is an unknown field */
    SK_ARRAY,  /* items */
    SK_MAP,    /* object with arbitrary keys; values are items */
    SK_STRING,
    SK_INTEGER, /* JSON integer (a float with a fraction is rejected) */
    SK_NUMBER,  /* JSON integer or real */
    SK_BOOLEAN,
    SK_INT_OR_STRING, /* x-kubernetes-int-or-string (quantities, ports) */
    SK_ANY,           /* any JSON value, not descended into */
};

struct schema_node;

/*
 * A cross-field rule on an object, map or list (the reference schema's x-kubernetes-validations).
 * `holds` returns nonzero when the rule is satisfied. For a transition rule (`transition` set)
 * it is called only on update, with old_self the correlated previous value (never NULL then);
 * otherwise old_self is NULL. On failure the walker reports `message` at the node's path, or at
 * the node's path plus ".<field>" when `field` is set.
 */
struct schema_rule {
    int (*holds)(const json_t *self, const json_t *old_self);
    int transition;
    const char *message;
    const char *field;
};

struct schema_field {
    const char *name;
    const struct schema_node *node;
    int required;
    /* A structural default applied when the field is absent and its parent object is present
     * (the CRD's `default:`), as JSON text; NULL for none. */
    const char *default_json;
};

#define SCHEMA_NO_LIMIT (-1)

struct schema_node {
    enum schema_kind kind;
    const struct schema_field *fields; /* SK_OBJECT: array ended by an entry with name NULL */
    const struct schema_node *items;   /* SK_ARRAY, SK_MAP: the element schema */
    /* Limits; a limit of 0 is meaningful, so "no limit" is spelled SCHEMA_NO_LIMIT. Every node
     * must set all four it does not use to SCHEMA_NO_LIMIT (use the SCHEMA_* macros below). */
    int64_t min_length, max_length; /* SK_STRING: characters (UTF-8 code points) */
    int64_t min_items, max_items;   /* SK_ARRAY: items; SK_MAP: properties */
    int has_minimum, has_maximum;
    int64_t minimum, maximum;        /* SK_INTEGER, SK_NUMBER */
    const char *const *enum_values;  /* SK_STRING: NULL-terminated list of allowed values */
    const char *pattern;             /* SK_STRING: POSIX extended regular expression */
    const char *list_map_key;        /* SK_ARRAY of objects: x-kubernetes-list-map-keys */
    int list_set;                    /* SK_ARRAY of scalars: x-kubernetes-list-type set */
    const struct schema_rule *rules; /* ended by an entry with holds NULL; may be NULL */
};

/* Initialiser helpers that leave every limit unset. */
#define SCHEMA_LIMITS_NONE                                                                         \
    .min_length = SCHEMA_NO_LIMIT, .max_length = SCHEMA_NO_LIMIT, .min_items = SCHEMA_NO_LIMIT,    \
    .max_items = SCHEMA_NO_LIMIT

/* The root schemas of the four kinds (the whole object: apiVersion, kind, metadata, spec). */
extern const struct schema_node schema_multigrescluster;
extern const struct schema_node schema_coretemplate;
extern const struct schema_node schema_celltemplate;
extern const struct schema_node schema_shardtemplate;

struct schema_regex_cache;

/*
 * Validate `doc` against `root`, appending every violation to `errs` (paths start at the object
 * root, e.g. "spec.cells[0].name"). `old` is the previous version of the object for transition
 * rules, or NULL on create. `cache` holds compiled patterns between calls (may be NULL: patterns
 * are then compiled per use). Returns 0 when validation ran (errors may have been added), or
 * -ENOMEM.
 */
int schema_validate(const struct schema_node *root, const json_t *doc, const json_t *old,
                    struct schema_regex_cache *cache, struct spec_errors *errs);

/*
 * Fill structural defaults (schema_field.default_json) into `doc` in place, top-down, the way the
 * API server defaults a custom resource before validation. Values of the wrong type are left
 * alone (validation reports them). Returns 0 or -ENOMEM.
 */
int schema_apply_defaults(const struct schema_node *root, json_t *doc);

struct schema_regex_cache *schema_regex_cache_new(void);
void schema_regex_cache_free(struct schema_regex_cache *cache);

#endif
