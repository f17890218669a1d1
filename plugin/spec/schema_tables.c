/*
 * The structural schemas of the four user-facing kinds of multigres.com/v1alpha1
 * (MultigresCluster, CoreTemplate, CellTemplate, ShardTemplate), as tables for the walker in
 * spec/schema.h.
 *
 * The tables mirror the openAPIV3Schema of the reference CRDs (multigres.com_multigresclusters,
 * _coretemplates, _celltemplates and _shardtemplates.yaml) field for field: JSON types, required
 * fields, string/list/map limits, integer ranges, enumerations, patterns, list-map keys, set
 * lists, structural defaults and every x-kubernetes-validations rule. Structurally identical
 * subtrees (the Kubernetes Affinity, Toleration and ResourceRequirements types, the backup,
 * storage, pool and etcd blocks, ...) are defined once and shared. Descriptions are left out.
 *
 * Notes on the translation:
 *  - Patterns are the CRD's RE2 text; every pattern used here means the same as a POSIX extended
 *    regular expression (no \d, \w, lazy quantifiers or groups with flags occur). One
 *    difference remains: RE2's `.` does not match a newline, POSIX's does.
 *  - `format: int32/int64` carries no limit in a CRD (the API server does not range-check
 *    integers of custom resources by format) and is not represented.
 *  - `allOf` of enumerations (the pool `type`) is represented by the intersection of the lists.
 *  - `x-kubernetes-map-type` and `x-kubernetes-list-type: atomic` only affect server-side apply
 *    merging and are not represented.
 *  - The CRDs leave metadata open (`type: object`); the API server validates it as ObjectMeta,
 *    so metadata is described here with the ObjectMeta fields.
 */
#include "spec/schema.h"

#include <jansson.h>
#include <string.h>

/* Limit helpers: every node sets all four limits (SCHEMA_NO_LIMIT where unused). */
#define NL SCHEMA_NO_LIMIT
/* A string length range in characters. */
#define LENGTH(lo, hi) .min_length = (lo), .max_length = (hi), .min_items = NL, .max_items = NL
/* A list length range in items, or a map size range in properties. */
#define COUNT(lo, hi) .min_length = NL, .max_length = NL, .min_items = (lo), .max_items = (hi)

/* ---------------------------------------------------------------------------------------------
 * Helpers for the rule predicates.
 *
 * CEL semantics kept here: has(self.x) is true when the key is present with a non-null value;
 * size() of a string counts Unicode code points; `==` on objects is deep equality. A value of the
 * wrong JSON type makes a rule not applicable (the walker reports the type error itself). A
 * missing field the rule reads without has() makes the CEL evaluation fail; the predicate then
 * reports the rule as violated, except for fields the schema marks required (the walker reports
 * "Required value" there, and the API server skips CEL rules while such an error exists).
 * --------------------------------------------------------------------------------------------- */

/* has(obj.name): present and not JSON null. */
static int has_field(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);

    return v != NULL && !json_is_null(v);
}

/* The field's value when has() holds, else NULL. */
static const json_t *field_value(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);

    return v != NULL && !json_is_null(v) ? v : NULL;
}

/* Number of Unicode code points in a UTF-8 byte string (CEL size() of a string). */
static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* size() of a JSON string in code points. */
static size_t string_size(const json_t *str)
{
    return utf8_count(json_string_value(str), json_string_length(str));
}

/* size() of an object key in code points. */
static size_t key_size(const char *key)
{
    return utf8_count(key, strlen(key));
}

/*
 * jansson's iteration functions take a non-const object although iterating does not modify it;
 * the predicates only read through the pointer this returns.
 */
static json_t *iterable(const json_t *obj)
{
    return (json_t *)obj;
}

/* has(obj.name) && size(obj.name) > 0, for a string field (a non-string counts as absent). */
static int nonempty_string_field(const json_t *obj, const char *name)
{
    const json_t *v = field_value(obj, name);

    return v != NULL && json_is_string(v) && string_size(v) > 0;
}

/* The field is present and the JSON boolean true. */
static int true_field(const json_t *obj, const char *name)
{
    return json_is_true(field_value(obj, name));
}

/* ---------------------------------------------------------------------------------------------
 * Rule predicates (one per distinct CEL expression of the reference CRDs).
 * --------------------------------------------------------------------------------------------- */

/* self.metadata.name.size() <= 25 (root of MultigresCluster) */
static int rule_cluster_name_size(const json_t *self, const json_t *old_self)
{
    const json_t *metadata = json_object_get(self, "metadata");
    const json_t *name;

    (void)old_self;
    if (!json_is_object(metadata))
        return 1;
    name = json_object_get(metadata, "name");
    /* The API server always has a name here (generateName is resolved before validation). */
    if (!json_is_string(name))
        return 1;
    return string_size(name) <= 25;
}

/* self.type != '<type>' || has(self.<type>) (BackupConfig; `type` is required) */
static int backup_block_present(const json_t *self, const char *type)
{
    const json_t *t;

    if (!json_is_object(self))
        return 1;
    t = field_value(self, "type");
    if (!json_is_string(t))
        return 1;
    return strcmp(json_string_value(t), type) != 0 || has_field(self, type);
}

/* self.type != 's3' || has(self.s3) */
static int rule_backup_s3_block(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return backup_block_present(self, "s3");
}

/* self.type != 'filesystem' || has(self.filesystem) */
static int rule_backup_filesystem_block(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return backup_block_present(self, "filesystem");
}

/*
 * has(self.encryption) == has(oldSelf.encryption) &&
 *     (!has(self.encryption) || self.encryption == oldSelf.encryption)        (transition)
 */
static int rule_backup_encryption_immutable(const json_t *self, const json_t *old_self)
{
    const json_t *now, *before;

    if (!json_is_object(self) || !json_is_object(old_self))
        return 1;
    now = field_value(self, "encryption");
    before = field_value(old_self, "encryption");
    if ((now != NULL) != (before != NULL))
        return 0;
    return now == NULL || json_equal(now, before);
}

/*
 * !(has(self.serviceAccountName) && size(self.serviceAccountName) > 0 &&
 *   has(self.credentialsSecret) && size(self.credentialsSecret) > 0)
 */
static int rule_s3_sa_and_secret(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_object(self))
        return 1;
    return !(nonempty_string_field(self, "serviceAccountName") &&
             nonempty_string_field(self, "credentialsSecret"));
}

/*
 * !(has(self.serviceAccountName) && size(self.serviceAccountName) > 0 &&
 *   has(self.useEnvCredentials) && self.useEnvCredentials)
 */
static int rule_s3_sa_and_env(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_object(self))
        return 1;
    return !(nonempty_string_field(self, "serviceAccountName") &&
             true_field(self, "useEnvCredentials"));
}

/* Whether some object of `list` has a `name` equal to `name`. */
static int list_has_name(const json_t *list, const json_t *name)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *n = json_object_get(json_array_get(list, i), "name");

        if (n != NULL && json_equal(n, name))
            return 1;
    }
    return 0;
}

/* oldSelf.all(c, c.name in self.map(x, x.name))                                  (transition) */
static int rule_cells_append_only(const json_t *self, const json_t *old_self)
{
    if (!json_is_array(self) || !json_is_array(old_self))
        return 1;
    for (size_t i = 0; i < json_array_size(old_self); i++) {
        const json_t *name = json_object_get(json_array_get(old_self, i), "name");

        if (name != NULL && !list_has_name(self, name))
            return 0;
    }
    return 1;
}

/* !(has(self.a) && has(self.b)) */
static int not_both(const json_t *self, const char *a, const char *b)
{
    if (!json_is_object(self))
        return 1;
    return !(has_field(self, a) && has_field(self, b));
}

/* has(self.a) || has(self.b) */
static int either(const json_t *self, const char *a, const char *b)
{
    if (!json_is_object(self))
        return 1;
    return has_field(self, a) || has_field(self, b);
}

/* !(has(self.spec) && has(self.cellTemplate)) */
static int rule_not_spec_and_cell_template(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "spec", "cellTemplate");
}

/* !(has(self.spec) && has(self.overrides)) */
static int rule_not_spec_and_overrides(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "spec", "overrides");
}

/* !(has(self.zoneId) && has(self.region)) */
static int rule_not_zone_and_region(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "zoneId", "region");
}

/* has(self.zoneId) || has(self.region) */
static int rule_zone_or_region(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return either(self, "zoneId", "region");
}

/* self.all(k, size(k) < key_limit && size(self[k]) < value_limit) on a map of strings */
static int map_sizes_below(const json_t *self, size_t key_limit, size_t value_limit)
{
    json_t *obj = iterable(self);

    if (!json_is_object(self))
        return 1;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const json_t *value = json_object_iter_value(it);

        if (key_size(json_object_iter_key(it)) >= key_limit)
            return 0;
        if (json_is_string(value) && string_size(value) >= value_limit)
            return 0;
    }
    return 1;
}

/* self.all(k, size(k) < 64 && size(self[k]) < 256) */
static int rule_annotation_sizes(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return map_sizes_below(self, 64, 256);
}

/* self.all(k, size(k) < 64 && size(self[k]) < 64) */
static int rule_label_sizes(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return map_sizes_below(self, 64, 64);
}

/* has(self.etcd) || has(self.external) */
static int rule_etcd_or_external(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return either(self, "etcd", "external");
}

/* !(has(self.etcd) && has(self.external)) */
static int rule_not_etcd_and_external(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "etcd", "external");
}

/* self % 2 == 1 (CEL % truncates toward zero, as C does) */
static int rule_odd_replicas(const json_t *self, const json_t *old_self)
{
    json_int_t v;

    (void)old_self;
    if (json_is_integer(self)) {
        v = json_integer_value(self);
    } else if (json_is_real(self)) {
        double d = json_real_value(self);

        /* A whole-valued number is an integer to the walker; anything else is its type error. */
        if (d != d || d < -9.2e18 || d > 9.2e18 || d != (double)(json_int_t)d)
            return 1;
        v = (json_int_t)d;
    } else {
        return 1;
    }
    return v % 2 == 1;
}

/* self.all(x, x.matches('^https?://')) */
static int rule_endpoint_urls(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_array(self))
        return 1;
    for (size_t i = 0; i < json_array_size(self); i++) {
        const json_t *x = json_array_get(self, i);
        const char *s;

        if (!json_is_string(x))
            continue;
        s = json_string_value(x);
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
            return 0;
    }
    return 1;
}

/*
 * self.all(db, db.name == 'postgres' && db.default == true)
 * `name` is the required list-map key; `default` is optional, and reading it when absent fails
 * the CEL evaluation, which rejects the object.
 */
static int rule_single_postgres_database(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_array(self))
        return 1;
    for (size_t i = 0; i < json_array_size(self); i++) {
        const json_t *db = json_array_get(self, i);
        const json_t *name, *def;

        if (!json_is_object(db))
            continue;
        name = field_value(db, "name");
        if (name == NULL)
            continue;
        if (json_is_string(name) && strcmp(json_string_value(name), "postgres") != 0)
            return 0;
        def = field_value(db, "default");
        if (def == NULL || json_is_false(def))
            return 0;
    }
    return 1;
}

/* self.filter(x, has(x.default) && x.default).size() == 1 */
static int rule_one_default_tablegroup(const json_t *self, const json_t *old_self)
{
    size_t count = 0;

    (void)old_self;
    if (!json_is_array(self))
        return 1;
    for (size_t i = 0; i < json_array_size(self); i++) {
        const json_t *tg = json_array_get(self, i);

        if (json_is_object(tg) && true_field(tg, "default"))
            count++;
    }
    return count == 1;
}

/* !has(self.default) || !self.default || self.name == 'default' (`name` is required) */
static int rule_default_tablegroup_name(const json_t *self, const json_t *old_self)
{
    const json_t *name;

    (void)old_self;
    if (!json_is_object(self) || !true_field(self, "default"))
        return 1;
    name = field_value(self, "name");
    if (!json_is_string(name))
        return 1;
    return strcmp(json_string_value(name), "default") == 0;
}

/* !(has(self.spec) && has(self.shardTemplate)) */
static int rule_not_spec_and_shard_template(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "spec", "shardTemplate");
}

/* self == '0-inf' */
static int rule_shard_name_0_inf(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_string(self))
        return 1;
    return json_string_length(self) == 5 && memcmp(json_string_value(self), "0-inf", 5) == 0;
}

/* self.all(key, size(key) <= limit) on a map */
static int map_keys_at_most(const json_t *self, size_t limit)
{
    json_t *obj = iterable(self);

    if (!json_is_object(self))
        return 1;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        if (key_size(json_object_iter_key(it)) > limit)
            return 0;
    }
    return 1;
}

/* self.all(key, size(key) <= 25) */
static int rule_pool_names_le_25(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return map_keys_at_most(self, 25);
}

/* self.all(key, size(key) < 63) */
static int rule_pool_names_lt_63(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return map_keys_at_most(self, 62);
}

/* oldSelf.all(k, k in self) on a map                                              (transition) */
static int rule_pools_append_only(const json_t *self, const json_t *old_self)
{
    json_t *old_obj = iterable(old_self);

    if (!json_is_object(self) || !json_is_object(old_self))
        return 1;
    for (void *it = json_object_iter(old_obj); it != NULL;
         it = json_object_iter_next(old_obj, it)) {
        if (json_is_null(json_object_iter_value(it)))
            continue;
        if (!has_field(self, json_object_iter_key(it)))
            return 0;
    }
    return 1;
}

/* oldSelf.all(c, c in self) on a list                                             (transition) */
static int rule_pool_cells_append_only(const json_t *self, const json_t *old_self)
{
    if (!json_is_array(self) || !json_is_array(old_self))
        return 1;
    for (size_t i = 0; i < json_array_size(old_self); i++) {
        const json_t *c = json_array_get(old_self, i);
        int found = 0;

        for (size_t j = 0; j < json_array_size(self) && !found; j++)
            found = json_equal(json_array_get(self, j), c);
        if (!found)
            return 0;
    }
    return 1;
}

/* !has(self.annotations) || self.annotations.all(k, !k.startsWith('multigres.com/')) */
static int rule_no_reserved_annotations(const json_t *self, const json_t *old_self)
{
    static const char prefix[] = "multigres.com/";
    const json_t *annotations;
    json_t *obj;

    (void)old_self;
    if (!json_is_object(self))
        return 1;
    annotations = field_value(self, "annotations");
    if (!json_is_object(annotations))
        return 1;
    obj = iterable(annotations);
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        if (strncmp(json_object_iter_key(it), prefix, sizeof(prefix) - 1) == 0)
            return 0;
    }
    return 1;
}

/* [has(self.etcd), has(self.external), has(self.templateRef)].filter(x, x).size() == 1 */
static int rule_one_topo_source(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_object(self))
        return 1;
    return has_field(self, "etcd") + has_field(self, "external") + has_field(self, "templateRef") ==
           1;
}

/* has(self.spec) || has(self.templateRef) */
static int rule_spec_or_template_ref(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return either(self, "spec", "templateRef");
}

/* !(has(self.spec) && has(self.templateRef)) */
static int rule_not_spec_and_template_ref(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    return not_both(self, "spec", "templateRef");
}

/* has(self.etcd) */
static int rule_has_etcd(const json_t *self, const json_t *old_self)
{
    (void)old_self;
    if (!json_is_object(self))
        return 1;
    return has_field(self, "etcd");
}

/* clang-format off */

/* ---------------------------------------------------------------------------------------------
 * Generic scalars, lists and maps.
 * --------------------------------------------------------------------------------------------- */

static const struct schema_node s_string = {.kind = SK_STRING, SCHEMA_LIMITS_NONE};

static const struct schema_node s_integer = {.kind = SK_INTEGER, SCHEMA_LIMITS_NONE};

static const struct schema_node s_boolean = {.kind = SK_BOOLEAN, SCHEMA_LIMITS_NONE};

static const struct schema_node s_string_list = {
    .kind = SK_ARRAY,
    .items = &s_string,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_string_map = {
    .kind = SK_MAP,
    .items = &s_string,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_string_min1 = {.kind = SK_STRING, LENGTH(1, NL)};

static const struct schema_node s_string_1_63 = {.kind = SK_STRING, LENGTH(1, 63)};

static const struct schema_node s_integer_min1 = {
    .kind = SK_INTEGER,
    SCHEMA_LIMITS_NONE,
    .has_minimum = 1,
    .minimum = 1,
};

static const struct schema_node s_integer_0_128 = {
    .kind = SK_INTEGER,
    SCHEMA_LIMITS_NONE,
    .has_minimum = 1,
    .minimum = 0,
    .has_maximum = 1,
    .maximum = 128,
};

static const struct schema_node s_string_1_512 = {.kind = SK_STRING, LENGTH(1, 512)};

static const struct schema_node s_string_max253 = {.kind = SK_STRING, LENGTH(NL, 253)};

static const struct schema_node s_string_1_2048 = {.kind = SK_STRING, LENGTH(1, 2048)};

static const struct schema_node s_string_max512 = {.kind = SK_STRING, LENGTH(NL, 512)};

static const struct schema_node s_integer_min0 = {
    .kind = SK_INTEGER,
    SCHEMA_LIMITS_NONE,
    .has_minimum = 1,
    .minimum = 0,
};

static const struct schema_node s_integer_1_32 = {
    .kind = SK_INTEGER,
    SCHEMA_LIMITS_NONE,
    .has_minimum = 1,
    .minimum = 1,
    .has_maximum = 1,
    .maximum = 32,
};

static const struct schema_node s_string_map_max200 = {
    .kind = SK_MAP,
    .items = &s_string,
    COUNT(NL, 200),
};

static const struct schema_node s_string_1_253 = {.kind = SK_STRING, LENGTH(1, 253)};

static const struct schema_node s_string_map_max20 = {
    .kind = SK_MAP,
    .items = &s_string,
    COUNT(NL, 20),
};

static const struct schema_node s_string_max63 = {.kind = SK_STRING, LENGTH(NL, 63)};

/* ---------------------------------------------------------------------------------------------
 * Kubernetes core types embedded in the CRDs (core/v1 Affinity, Toleration,
 * ResourceRequirements, LocalObjectReference), each defined once.
 * --------------------------------------------------------------------------------------------- */

/* NodeSelectorRequirement and LabelSelectorRequirement (same shape). */
static const struct schema_field s_selector_requirement_fields[] = {
    {.name = "key", .node = &s_string, .required = 1},
    {.name = "operator", .node = &s_string, .required = 1},
    {.name = "values", .node = &s_string_list},
    {.name = NULL},
};

static const struct schema_node s_selector_requirement = {
    .kind = SK_OBJECT,
    .fields = s_selector_requirement_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_selector_requirements = {
    .kind = SK_ARRAY,
    .items = &s_selector_requirement,
    SCHEMA_LIMITS_NONE,
};

/* NodeSelectorTerm (also the `preference` of a PreferredSchedulingTerm). */
static const struct schema_field s_node_selector_term_fields[] = {
    {.name = "matchExpressions", .node = &s_selector_requirements},
    {.name = "matchFields", .node = &s_selector_requirements},
    {.name = NULL},
};

static const struct schema_node s_node_selector_term = {
    .kind = SK_OBJECT,
    .fields = s_node_selector_term_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_preferred_scheduling_term_fields[] = {
    {.name = "preference", .node = &s_node_selector_term, .required = 1},
    {.name = "weight", .node = &s_integer, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_preferred_scheduling_term = {
    .kind = SK_OBJECT,
    .fields = s_preferred_scheduling_term_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_preferred_scheduling_terms = {
    .kind = SK_ARRAY,
    .items = &s_preferred_scheduling_term,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_node_selector_terms = {
    .kind = SK_ARRAY,
    .items = &s_node_selector_term,
    SCHEMA_LIMITS_NONE,
};

/* NodeSelector */
static const struct schema_field s_node_selector_fields[] = {
    {.name = "nodeSelectorTerms", .node = &s_node_selector_terms, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_node_selector = {
    .kind = SK_OBJECT,
    .fields = s_node_selector_fields,
    SCHEMA_LIMITS_NONE,
};

/* NodeAffinity */
static const struct schema_field s_node_affinity_fields[] = {
    {.name = "preferredDuringSchedulingIgnoredDuringExecution",
     .node = &s_preferred_scheduling_terms},
    {.name = "requiredDuringSchedulingIgnoredDuringExecution", .node = &s_node_selector},
    {.name = NULL},
};

static const struct schema_node s_node_affinity = {
    .kind = SK_OBJECT,
    .fields = s_node_affinity_fields,
    SCHEMA_LIMITS_NONE,
};

/* metav1.LabelSelector */
static const struct schema_field s_label_selector_fields[] = {
    {.name = "matchExpressions", .node = &s_selector_requirements},
    {.name = "matchLabels", .node = &s_string_map},
    {.name = NULL},
};

static const struct schema_node s_label_selector = {
    .kind = SK_OBJECT,
    .fields = s_label_selector_fields,
    SCHEMA_LIMITS_NONE,
};

/* PodAffinityTerm */
static const struct schema_field s_pod_affinity_term_fields[] = {
    {.name = "labelSelector", .node = &s_label_selector},
    {.name = "matchLabelKeys", .node = &s_string_list},
    {.name = "mismatchLabelKeys", .node = &s_string_list},
    {.name = "namespaceSelector", .node = &s_label_selector},
    {.name = "namespaces", .node = &s_string_list},
    {.name = "topologyKey", .node = &s_string, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_pod_affinity_term = {
    .kind = SK_OBJECT,
    .fields = s_pod_affinity_term_fields,
    SCHEMA_LIMITS_NONE,
};

/* WeightedPodAffinityTerm */
static const struct schema_field s_weighted_pod_affinity_term_fields[] = {
    {.name = "podAffinityTerm", .node = &s_pod_affinity_term, .required = 1},
    {.name = "weight", .node = &s_integer, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_weighted_pod_affinity_term = {
    .kind = SK_OBJECT,
    .fields = s_weighted_pod_affinity_term_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_weighted_pod_affinity_terms = {
    .kind = SK_ARRAY,
    .items = &s_weighted_pod_affinity_term,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_pod_affinity_terms = {
    .kind = SK_ARRAY,
    .items = &s_pod_affinity_term,
    SCHEMA_LIMITS_NONE,
};

/* PodAffinity and PodAntiAffinity (same shape). */
static const struct schema_field s_pod_affinity_fields[] = {
    {.name = "preferredDuringSchedulingIgnoredDuringExecution",
     .node = &s_weighted_pod_affinity_terms},
    {.name = "requiredDuringSchedulingIgnoredDuringExecution", .node = &s_pod_affinity_terms},
    {.name = NULL},
};

static const struct schema_node s_pod_affinity = {
    .kind = SK_OBJECT,
    .fields = s_pod_affinity_fields,
    SCHEMA_LIMITS_NONE,
};

/* core/v1 Affinity */
static const struct schema_field s_affinity_fields[] = {
    {.name = "nodeAffinity", .node = &s_node_affinity},
    {.name = "podAffinity", .node = &s_pod_affinity},
    {.name = "podAntiAffinity", .node = &s_pod_affinity},
    {.name = NULL},
};

static const struct schema_node s_affinity = {
    .kind = SK_OBJECT,
    .fields = s_affinity_fields,
    SCHEMA_LIMITS_NONE,
};

/* ResourceClaim; `claims` is a list-map keyed by name. */
static const struct schema_field s_resource_claim_fields[] = {
    {.name = "name", .node = &s_string, .required = 1},
    {.name = "request", .node = &s_string},
    {.name = NULL},
};

static const struct schema_node s_resource_claim = {
    .kind = SK_OBJECT,
    .fields = s_resource_claim_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_resource_claims = {
    .kind = SK_ARRAY,
    .items = &s_resource_claim,
    SCHEMA_LIMITS_NONE,
    .list_map_key = "name",
};

/* resource.Quantity (x-kubernetes-int-or-string): the pattern applies to string values. */
static const struct schema_node s_quantity = {
    .kind = SK_INT_OR_STRING,
    SCHEMA_LIMITS_NONE,
    .pattern = "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?("
               "([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
};

/* ResourceList (requests, limits) */
static const struct schema_node s_resource_list = {
    .kind = SK_MAP,
    .items = &s_quantity,
    SCHEMA_LIMITS_NONE,
};

/* core/v1 ResourceRequirements */
static const struct schema_field s_resource_requirements_fields[] = {
    {.name = "claims", .node = &s_resource_claims},
    {.name = "limits", .node = &s_resource_list},
    {.name = "requests", .node = &s_resource_list},
    {.name = NULL},
};

static const struct schema_node s_resource_requirements = {
    .kind = SK_OBJECT,
    .fields = s_resource_requirements_fields,
    SCHEMA_LIMITS_NONE,
};

/* core/v1 Toleration */
static const struct schema_field s_toleration_fields[] = {
    {.name = "effect", .node = &s_string},
    {.name = "key", .node = &s_string},
    {.name = "operator", .node = &s_string},
    {.name = "tolerationSeconds", .node = &s_integer},
    {.name = "value", .node = &s_string},
    {.name = NULL},
};

static const struct schema_node s_toleration = {
    .kind = SK_OBJECT,
    .fields = s_toleration_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_tolerations = {
    .kind = SK_ARRAY,
    .items = &s_toleration,
    SCHEMA_LIMITS_NONE,
};

/* core/v1 LocalObjectReference (imagePullSecrets) */
static const struct schema_field s_local_object_reference_fields[] = {
    {.name = "name", .node = &s_string, .default_json = "\"\""},
    {.name = NULL},
};

static const struct schema_node s_local_object_reference = {
    .kind = SK_OBJECT,
    .fields = s_local_object_reference_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_image_pull_secrets = {
    .kind = SK_ARRAY,
    .items = &s_local_object_reference,
    SCHEMA_LIMITS_NONE,
};

/* ---------------------------------------------------------------------------------------------
 * multigres.com/v1alpha1 types.
 * --------------------------------------------------------------------------------------------- */

static const struct schema_field s_backup_encryption_fields[] = {
    {.name = "secretName", .node = &s_string_min1, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_backup_encryption = {
    .kind = SK_OBJECT,
    .fields = s_backup_encryption_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_storage_size = {
    .kind = SK_STRING,
    LENGTH(NL, 63),
    .pattern = "^([0-9]+)(.+)$",
};

/* StorageSpec (backup filesystem, etcd and pool storage). */
static const struct schema_field s_storage_spec_fields[] = {
    {.name = "accessModes", .node = &s_string_list},
    {.name = "class", .node = &s_string_1_63},
    {.name = "size", .node = &s_storage_size},
    {.name = NULL},
};

static const struct schema_node s_storage_spec = {
    .kind = SK_OBJECT,
    .fields = s_storage_spec_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_backup_filesystem_fields[] = {
    {.name = "path", .node = &s_string},
    {.name = "storage", .node = &s_storage_spec},
    {.name = NULL},
};

static const struct schema_node s_backup_filesystem = {
    .kind = SK_OBJECT,
    .fields = s_backup_filesystem_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_backup_pgbackrest_tls_fields[] = {
    {.name = "secretName", .node = &s_string},
    {.name = NULL},
};

static const struct schema_node s_backup_pgbackrest_tls = {
    .kind = SK_OBJECT,
    .fields = s_backup_pgbackrest_tls_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_backup_s3_fields[] = {
    {.name = "bucket", .node = &s_string_min1, .required = 1},
    {.name = "credentialsSecret", .node = &s_string},
    {.name = "endpoint", .node = &s_string},
    {.name = "keyPrefix", .node = &s_string},
    {.name = "region", .node = &s_string_min1, .required = 1},
    {.name = "serviceAccountName", .node = &s_string},
    {.name = "useEnvCredentials", .node = &s_boolean},
    {.name = NULL},
};

static const struct schema_rule s_backup_s3_rules[] = {
    {.holds = rule_s3_sa_and_secret,
     .message = "serviceAccountName and credentialsSecret are mutually exclusive"},
    {.holds = rule_s3_sa_and_env,
     .message = "serviceAccountName and useEnvCredentials are mutually exclusive \xe2\x80\x94 "
                "IRSA credentials are handled automatically"},
    {.holds = NULL},
};

static const struct schema_node s_backup_s3 = {
    .kind = SK_OBJECT,
    .fields = s_backup_s3_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_backup_s3_rules,
};

static const char *const s_backup_type_values[] = {"filesystem", "s3", NULL};

static const struct schema_node s_backup_type = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_backup_type_values,
};

/* BackupConfig (cluster, database, tablegroup and shard level). */
static const struct schema_field s_backup_config_fields[] = {
    {.name = "encryption", .node = &s_backup_encryption},
    {.name = "filesystem", .node = &s_backup_filesystem},
    {.name = "pgbackrestTLS", .node = &s_backup_pgbackrest_tls},
    {.name = "s3", .node = &s_backup_s3},
    {.name = "type", .node = &s_backup_type, .required = 1},
    {.name = NULL},
};

static const struct schema_rule s_backup_config_rules[] = {
    {.holds = rule_backup_s3_block, .message = "s3 config is required when type is 's3'"},
    {.holds = rule_backup_filesystem_block,
     .message = "filesystem config is required when type is 'filesystem'"},
    {.holds = rule_backup_encryption_immutable,
     .transition = 1,
     .message = "encryption is immutable and cannot be added, removed, or changed after creation"},
    {.holds = NULL},
};

static const struct schema_node s_backup_config = {
    .kind = SK_OBJECT,
    .fields = s_backup_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_backup_config_rules,
};

static const struct schema_node s_dns_label_max30 = {
    .kind = SK_STRING,
    LENGTH(1, 30),
    .pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
};

/* A Go duration (the gateway buffer durations). */
static const struct schema_node s_duration = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .pattern = "^([0-9]+(\\.[0-9]+)?(ns|us|\xc2\xb5s|\xce\xbcs|ms|s|m|h))+$",
};

static const struct schema_field s_gateway_buffer_fields[] = {
    {.name = "drainConcurrency", .node = &s_integer_min1},
    {.name = "enabled", .node = &s_boolean},
    {.name = "maxFailoverDuration", .node = &s_duration},
    {.name = "minTimeBetweenFailovers", .node = &s_duration},
    {.name = "size", .node = &s_integer_min1},
    {.name = "window", .node = &s_duration},
    {.name = NULL},
};

static const struct schema_node s_gateway_buffer = {
    .kind = SK_OBJECT,
    .fields = s_gateway_buffer_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_rule s_pod_annotations_rules[] = {
    {.holds = rule_annotation_sizes,
     .message = "annotation keys must be <64 chars and values <256 chars"},
    {.holds = NULL},
};

static const struct schema_node s_pod_annotations = {
    .kind = SK_MAP,
    .items = &s_string,
    COUNT(NL, 20),
    .rules = s_pod_annotations_rules,
};

static const struct schema_rule s_pod_labels_rules[] = {
    {.holds = rule_label_sizes, .message = "label keys and values must be <64 chars"},
    {.holds = NULL},
};

static const struct schema_node s_pod_labels = {
    .kind = SK_MAP,
    .items = &s_string,
    COUNT(NL, 20),
    .rules = s_pod_labels_rules,
};

/* MultigatewaySpec (cell overrides, inline cell spec, CellTemplate) */
static const struct schema_field s_multigateway_spec_fields[] = {
    {.name = "affinity", .node = &s_affinity},
    {.name = "buffer", .node = &s_gateway_buffer},
    {.name = "podAnnotations", .node = &s_pod_annotations},
    {.name = "podLabels", .node = &s_pod_labels},
    {.name = "replicas", .node = &s_integer_0_128},
    {.name = "resources", .node = &s_resource_requirements},
    {.name = NULL},
};

static const struct schema_node s_multigateway_spec = {
    .kind = SK_OBJECT,
    .fields = s_multigateway_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* Placement blocks: {tolerations}. */
static const struct schema_field s_placement_fields[] = {
    {.name = "tolerations", .node = &s_tolerations},
    {.name = NULL},
};

static const struct schema_node s_placement = {
    .kind = SK_OBJECT,
    .fields = s_placement_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_cell_overrides_fields[] = {
    {.name = "multigateway", .node = &s_multigateway_spec},
    {.name = "multigatewayPlacement", .node = &s_placement},
    {.name = NULL},
};

static const struct schema_node s_cell_overrides = {
    .kind = SK_OBJECT,
    .fields = s_cell_overrides_fields,
    SCHEMA_LIMITS_NONE,
};

static const char *const s_pvc_policy_action_values[] = {"Retain", "Delete", NULL};

static const struct schema_node s_pvc_policy_action = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_pvc_policy_action_values,
};

/* PVCDeletionPolicy; each field has its own default. */
static const struct schema_field s_pvc_deletion_policy_fields[] = {
    {.name = "whenDeleted", .node = &s_pvc_policy_action, .default_json = "\"Retain\""},
    {.name = "whenScaled", .node = &s_pvc_policy_action, .default_json = "\"Delete\""},
    {.name = NULL},
};

static const struct schema_node s_pvc_deletion_policy = {
    .kind = SK_OBJECT,
    .fields = s_pvc_deletion_policy_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_rule s_etcd_replicas_rules[] = {
    {.holds = rule_odd_replicas,
     .message = "etcd replicas must be an odd number (1, 3, 5); even numbers provide no "
                "additional fault tolerance over the next lower odd number"},
    {.holds = NULL},
};

static const struct schema_node s_etcd_replicas = {
    .kind = SK_INTEGER,
    SCHEMA_LIMITS_NONE,
    .has_minimum = 1,
    .minimum = 1,
    .rules = s_etcd_replicas_rules,
};

/* EtcdSpec (global and local topology servers, CoreTemplate) */
static const struct schema_field s_etcd_spec_fields[] = {
    {.name = "image", .node = &s_string_1_512},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = "replicas", .node = &s_etcd_replicas},
    {.name = "resources", .node = &s_resource_requirements},
    {.name = "rootPath", .node = &s_string_1_512},
    {.name = "storage", .node = &s_storage_spec},
    {.name = NULL},
};

static const struct schema_node s_etcd_spec = {
    .kind = SK_OBJECT,
    .fields = s_etcd_spec_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_rule s_external_endpoints_rules[] = {
    {.holds = rule_endpoint_urls, .message = "endpoints must be valid URLs"},
    {.holds = NULL},
};

static const struct schema_node s_external_endpoints = {
    .kind = SK_ARRAY,
    .items = &s_string_1_2048,
    COUNT(1, 20),
    .list_set = 1,
    .rules = s_external_endpoints_rules,
};

/* ExternalTopoServerSpec */
static const struct schema_field s_external_topo_server_fields[] = {
    {.name = "caSecret", .node = &s_string_max253},
    {.name = "clientCertSecret", .node = &s_string_max253},
    {.name = "endpoints", .node = &s_external_endpoints, .required = 1},
    {.name = "implementation", .node = &s_string},
    {.name = "rootPath", .node = &s_string_1_512},
    {.name = NULL},
};

static const struct schema_node s_external_topo_server = {
    .kind = SK_OBJECT,
    .fields = s_external_topo_server_fields,
    SCHEMA_LIMITS_NONE,
};

/* LocalTopoServerSpec */
static const struct schema_field s_local_topo_server_fields[] = {
    {.name = "etcd", .node = &s_etcd_spec},
    {.name = "external", .node = &s_external_topo_server},
    {.name = NULL},
};

static const struct schema_rule s_local_topo_server_rules[] = {
    {.holds = rule_etcd_or_external, .message = "must specify either 'etcd' or 'external'"},
    {.holds = rule_not_etcd_and_external, .message = "only one of 'etcd' or 'external' can be set"},
    {.holds = NULL},
};

static const struct schema_node s_local_topo_server = {
    .kind = SK_OBJECT,
    .fields = s_local_topo_server_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_local_topo_server_rules,
};

/* CellInlineSpec; also CellTemplate.spec. */
static const struct schema_field s_cell_inline_spec_fields[] = {
    {.name = "localTopoServer", .node = &s_local_topo_server},
    {.name = "multigateway", .node = &s_multigateway_spec},
    {.name = "multigatewayPlacement", .node = &s_placement},
    {.name = NULL},
};

static const struct schema_node s_cell_inline_spec = {
    .kind = SK_OBJECT,
    .fields = s_cell_inline_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* CellConfig (spec.cells[]) */
static const struct schema_field s_cell_config_fields[] = {
    {.name = "cellTemplate", .node = &s_string_1_63},
    {.name = "name", .node = &s_dns_label_max30, .required = 1},
    {.name = "overrides", .node = &s_cell_overrides},
    {.name = "region", .node = &s_string_1_63},
    {.name = "spec", .node = &s_cell_inline_spec},
    {.name = "zoneId", .node = &s_string_1_63},
    {.name = NULL},
};

static const struct schema_rule s_cell_config_rules[] = {
    {.holds = rule_not_spec_and_cell_template,
     .message = "cannot specify both 'spec' and 'cellTemplate'"},
    {.holds = rule_not_spec_and_overrides, .message = "cannot specify both 'spec' and 'overrides'"},
    {.holds = rule_not_zone_and_region, .message = "cannot specify both 'zoneId' and 'region'"},
    {.holds = rule_zone_or_region,
     .message = "at least one of 'zoneId' or 'region' must be specified"},
    {.holds = NULL},
};

static const struct schema_node s_cell_config = {
    .kind = SK_OBJECT,
    .fields = s_cell_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_cell_config_rules,
};

static const struct schema_rule s_cells_rules[] = {
    {.holds = rule_cells_append_only,
     .transition = 1,
     .message = "Cells cannot be removed or renamed (Append-Only)"},
    {.holds = NULL},
};

static const struct schema_node s_cells = {
    .kind = SK_ARRAY,
    .items = &s_cell_config,
    COUNT(NL, 50),
    .list_map_key = "name",
    .rules = s_cells_rules,
};

static const struct schema_node s_dns_label_max25 = {
    .kind = SK_STRING,
    LENGTH(1, 25),
    .pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
};

static const struct schema_rule s_shard_name_rules[] = {
    {.holds = rule_shard_name_0_inf,
     .message = "shardName must be strictly equal to '0-inf' in this version"},
    {.holds = NULL},
};

static const struct schema_node s_shard_name = {
    .kind = SK_STRING,
    LENGTH(1, 25),
    .pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    .rules = s_shard_name_rules,
};

static const struct schema_node s_multiorch_cells = {
    .kind = SK_ARRAY,
    .items = &s_dns_label_max30,
    COUNT(NL, 50),
    .list_set = 1,
};

/* MultiorchSpec (shard overrides, inline shard spec, ShardTemplate) */
static const struct schema_field s_multiorch_spec_fields[] = {
    {.name = "affinity", .node = &s_affinity},
    {.name = "cells", .node = &s_multiorch_cells},
    {.name = "placement", .node = &s_placement},
    {.name = "podAnnotations", .node = &s_pod_annotations},
    {.name = "podLabels", .node = &s_pod_labels},
    {.name = "replicas", .node = &s_integer_0_128},
    {.name = "resources", .node = &s_resource_requirements},
    {.name = NULL},
};

static const struct schema_node s_multiorch_spec = {
    .kind = SK_OBJECT,
    .fields = s_multiorch_spec_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_rule s_pool_cells_rules[] = {
    {.holds = rule_pool_cells_append_only,
     .transition = 1,
     .message = "Cells cannot be removed from a pool (Append-Only)"},
    {.holds = NULL},
};

static const struct schema_node s_pool_cells = {
    .kind = SK_ARRAY,
    .items = &s_dns_label_max30,
    COUNT(1, 10),
    .list_set = 1,
    .rules = s_pool_cells_rules,
};

/* ContainerConfig (pool postgres, multipooler) */
static const struct schema_field s_container_config_fields[] = {
    {.name = "resources", .node = &s_resource_requirements},
    {.name = "runAsGroup", .node = &s_integer_min0},
    {.name = "runAsUser", .node = &s_integer_min1},
    {.name = NULL},
};

static const struct schema_node s_container_config = {
    .kind = SK_OBJECT,
    .fields = s_container_config_fields,
    SCHEMA_LIMITS_NONE,
};

static const char *const s_pool_type_values[] = {"readWrite", NULL};

static const struct schema_node s_pool_type = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_pool_type_values,
};

/* PoolSpec (shard overrides, inline shard spec, ShardTemplate) */
static const struct schema_field s_pool_spec_fields[] = {
    {.name = "affinity", .node = &s_affinity},
    {.name = "cells", .node = &s_pool_cells},
    {.name = "fsGroup", .node = &s_integer_min1},
    {.name = "multipooler", .node = &s_container_config},
    {.name = "postgres", .node = &s_container_config},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = "replicasPerCell", .node = &s_integer_1_32},
    {.name = "storage", .node = &s_storage_spec},
    {.name = "tolerations", .node = &s_tolerations},
    {.name = "type", .node = &s_pool_type},
    {.name = NULL},
};

static const struct schema_node s_pool_spec = {
    .kind = SK_OBJECT,
    .fields = s_pool_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* Pools of a cluster shard (overrides and inline spec); ShardTemplate has its own. */
static const struct schema_rule s_pools_rules[] = {
    {.holds = rule_pool_names_le_25, .message = "pool names must be <= 25 chars"},
    {.holds = rule_pools_append_only,
     .transition = 1,
     .message = "Pools cannot be removed or renamed in this version (Append-Only)"},
    {.holds = NULL},
};

static const struct schema_node s_pools = {
    .kind = SK_MAP,
    .items = &s_pool_spec,
    COUNT(NL, 8),
    .rules = s_pools_rules,
};

static const struct schema_field s_postgres_config_ref_fields[] = {
    {.name = "key", .node = &s_string_1_253, .required = 1},
    {.name = "name", .node = &s_string_1_253, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_postgres_config_ref = {
    .kind = SK_OBJECT,
    .fields = s_postgres_config_ref_fields,
    SCHEMA_LIMITS_NONE,
};

/* ShardOverrides */
static const struct schema_field s_shard_overrides_fields[] = {
    {.name = "initdbArgs", .node = &s_string_max512},
    {.name = "multiorch", .node = &s_multiorch_spec},
    {.name = "pools", .node = &s_pools},
    {.name = "postgresConfig", .node = &s_string_map_max200},
    {.name = "postgresConfigRef", .node = &s_postgres_config_ref},
    {.name = NULL},
};

static const struct schema_node s_shard_overrides = {
    .kind = SK_OBJECT,
    .fields = s_shard_overrides_fields,
    SCHEMA_LIMITS_NONE,
};

/* ShardInlineSpec */
static const struct schema_field s_shard_inline_spec_fields[] = {
    {.name = "initdbArgs", .node = &s_string_max512},
    {.name = "multiorch", .node = &s_multiorch_spec},
    {.name = "pools", .node = &s_pools},
    {.name = "postgresConfig", .node = &s_string_map_max200},
    {.name = "postgresConfigRef", .node = &s_postgres_config_ref},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = NULL},
};

static const struct schema_node s_shard_inline_spec = {
    .kind = SK_OBJECT,
    .fields = s_shard_inline_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* ShardConfig (spec.databases[].tablegroups[].shards[]) */
static const struct schema_field s_shard_config_fields[] = {
    {.name = "backup", .node = &s_backup_config},
    {.name = "name", .node = &s_shard_name, .required = 1},
    {.name = "overrides", .node = &s_shard_overrides},
    {.name = "shardTemplate", .node = &s_string_1_63},
    {.name = "spec", .node = &s_shard_inline_spec},
    {.name = NULL},
};

static const struct schema_rule s_shard_config_rules[] = {
    {.holds = rule_not_spec_and_shard_template,
     .message = "cannot specify both 'spec' and 'shardTemplate'"},
    {.holds = rule_not_spec_and_overrides, .message = "cannot specify both 'spec' and 'overrides'"},
    {.holds = NULL},
};

static const struct schema_node s_shard_config = {
    .kind = SK_OBJECT,
    .fields = s_shard_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_shard_config_rules,
};

static const struct schema_node s_shards = {
    .kind = SK_ARRAY,
    .items = &s_shard_config,
    COUNT(NL, 32),
    .list_map_key = "name",
};

/* TableGroupConfig */
static const struct schema_field s_tablegroup_config_fields[] = {
    {.name = "backup", .node = &s_backup_config},
    {.name = "default", .node = &s_boolean},
    {.name = "name", .node = &s_dns_label_max25, .required = 1},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = "shards", .node = &s_shards},
    {.name = NULL},
};

static const struct schema_rule s_tablegroup_config_rules[] = {
    {.holds = rule_default_tablegroup_name,
     .message = "the default tablegroup must be named 'default'"},
    {.holds = NULL},
};

static const struct schema_node s_tablegroup_config = {
    .kind = SK_OBJECT,
    .fields = s_tablegroup_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_tablegroup_config_rules,
};

static const struct schema_rule s_tablegroups_rules[] = {
    {.holds = rule_one_default_tablegroup,
     .message = "every database must have exactly one tablegroup marked as default"},
    {.holds = NULL},
};

static const struct schema_node s_tablegroups = {
    .kind = SK_ARRAY,
    .items = &s_tablegroup_config,
    COUNT(NL, 20),
    .list_map_key = "name",
    .rules = s_tablegroups_rules,
};

/* DatabaseConfig */
static const struct schema_field s_database_config_fields[] = {
    {.name = "backup", .node = &s_backup_config},
    {.name = "default", .node = &s_boolean},
    {.name = "durabilityPolicy", .node = &s_string},
    {.name = "name", .node = &s_dns_label_max30, .required = 1},
    {.name = "tablegroups", .node = &s_tablegroups},
    {.name = NULL},
};

static const struct schema_node s_database_config = {
    .kind = SK_OBJECT,
    .fields = s_database_config_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_rule s_databases_rules[] = {
    {.holds = rule_single_postgres_database,
     .message = "in v1alpha1, only the single system database named 'postgres' (marked default: "
                "true) is supported"},
    {.holds = NULL},
};

static const struct schema_node s_databases = {
    .kind = SK_ARRAY,
    .items = &s_database_config,
    COUNT(NL, 1),
    .list_map_key = "name",
    .rules = s_databases_rules,
};

static const struct schema_node s_external_ip = {
    .kind = SK_STRING,
    LENGTH(3, 45),
    .pattern = "^(([0-9]{1,3}\\.){3}[0-9]{1,3})$|^(([0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4})$",
};

static const struct schema_node s_external_ips = {
    .kind = SK_ARRAY,
    .items = &s_external_ip,
    COUNT(NL, 10),
};

/* ExternalExposure (externalGateway, externalAdminWeb) */
static const struct schema_field s_external_exposure_fields[] = {
    {.name = "annotations", .node = &s_string_map_max20},
    {.name = "enabled", .node = &s_boolean, .required = 1},
    {.name = "externalIPs", .node = &s_external_ips},
    {.name = NULL},
};

static const struct schema_rule s_external_exposure_rules[] = {
    {.holds = rule_no_reserved_annotations,
     .message = "annotations must not use multigres.com/ prefix (reserved for operator)"},
    {.holds = NULL},
};

static const struct schema_node s_external_exposure = {
    .kind = SK_OBJECT,
    .fields = s_external_exposure_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_external_exposure_rules,
};

/* GlobalTopoServerSpec of a MultigresCluster */
static const struct schema_field s_cluster_global_topo_server_fields[] = {
    {.name = "etcd", .node = &s_etcd_spec},
    {.name = "external", .node = &s_external_topo_server},
    {.name = "placement", .node = &s_placement},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = "templateRef", .node = &s_string_1_63},
    {.name = NULL},
};

static const struct schema_rule s_cluster_global_topo_server_rules[] = {
    {.holds = rule_one_topo_source,
     .message = "must specify exactly one of 'etcd', 'external', or 'templateRef'"},
    {.holds = NULL},
};

static const struct schema_node s_cluster_global_topo_server = {
    .kind = SK_OBJECT,
    .fields = s_cluster_global_topo_server_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_cluster_global_topo_server_rules,
};

static const struct schema_node s_acknowledged_revision = {
    .kind = SK_STRING,
    LENGTH(NL, 64),
    .pattern = "^[0-9a-f]*$",
};

static const char *const s_image_update_strategy_values[] = {"immediate", "lazy", NULL};

static const struct schema_node s_image_update_strategy = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_image_update_strategy_values,
};

static const struct schema_field s_image_update_policy_fields[] = {
    {.name = "acknowledgedRevision", .node = &s_acknowledged_revision},
    {.name = "strategy", .node = &s_image_update_strategy},
    {.name = NULL},
};

static const struct schema_node s_image_update_policy = {
    .kind = SK_OBJECT,
    .fields = s_image_update_policy_fields,
    SCHEMA_LIMITS_NONE,
};

static const char *const s_image_pull_policy_values[] = {"Always", "Never", "IfNotPresent", NULL};

static const struct schema_node s_image_pull_policy = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_image_pull_policy_values,
};

static const struct schema_field s_cluster_images_fields[] = {
    {.name = "imagePullPolicy", .node = &s_image_pull_policy},
    {.name = "imagePullSecrets", .node = &s_image_pull_secrets},
    {.name = "multiadmin", .node = &s_string_1_512},
    {.name = "multiadminWeb", .node = &s_string_1_512},
    {.name = "multigateway", .node = &s_string_1_512},
    {.name = "multiorch", .node = &s_string_1_512},
    {.name = "multipooler", .node = &s_string_1_512},
    {.name = "postgres", .node = &s_string_1_512},
    {.name = NULL},
};

static const struct schema_node s_cluster_images = {
    .kind = SK_OBJECT,
    .fields = s_cluster_images_fields,
    SCHEMA_LIMITS_NONE,
};

/* {enabled} blocks (internalTLS, topologyPruning). */
static const struct schema_field s_enabled_toggle_fields[] = {
    {.name = "enabled", .node = &s_boolean},
    {.name = NULL},
};

static const struct schema_node s_enabled_toggle = {
    .kind = SK_OBJECT,
    .fields = s_enabled_toggle_fields,
    SCHEMA_LIMITS_NONE,
};

static const char *const s_log_level_values[] = {"debug", "info", "warn", "error", NULL};

static const struct schema_node s_log_level = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_log_level_values,
};

static const struct schema_field s_log_levels_fields[] = {
    {.name = "multiadmin", .node = &s_log_level},
    {.name = "multigateway", .node = &s_log_level},
    {.name = "multiorch", .node = &s_log_level},
    {.name = "multipooler", .node = &s_log_level},
    {.name = "pgctld", .node = &s_log_level},
    {.name = NULL},
};

static const struct schema_node s_log_levels = {
    .kind = SK_OBJECT,
    .fields = s_log_levels_fields,
    SCHEMA_LIMITS_NONE,
};

/* StatelessSpec (multiadmin, multiadminWeb; CoreTemplate multiadmin, multiadminWeb) */
static const struct schema_field s_stateless_spec_fields[] = {
    {.name = "affinity", .node = &s_affinity},
    {.name = "podAnnotations", .node = &s_pod_annotations},
    {.name = "podLabels", .node = &s_pod_labels},
    {.name = "replicas", .node = &s_integer_0_128},
    {.name = "resources", .node = &s_resource_requirements},
    {.name = NULL},
};

static const struct schema_node s_stateless_spec = {
    .kind = SK_OBJECT,
    .fields = s_stateless_spec_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_multiadmin_config_fields[] = {
    {.name = "placement", .node = &s_placement},
    {.name = "spec", .node = &s_stateless_spec},
    {.name = "templateRef", .node = &s_string_1_63},
    {.name = NULL},
};

static const struct schema_rule s_multiadmin_config_rules[] = {
    {.holds = rule_spec_or_template_ref, .message = "must specify either 'spec' or 'templateRef'"},
    {.holds = rule_not_spec_and_template_ref,
     .message = "cannot specify both 'spec' and 'templateRef'"},
    {.holds = NULL},
};

static const struct schema_node s_multiadmin_config = {
    .kind = SK_OBJECT,
    .fields = s_multiadmin_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_multiadmin_config_rules,
};

static const struct schema_field s_multiadmin_web_config_fields[] = {
    {.name = "spec", .node = &s_stateless_spec},
    {.name = "templateRef", .node = &s_string_1_63},
    {.name = NULL},
};

static const struct schema_node s_multiadmin_web_config = {
    .kind = SK_OBJECT,
    .fields = s_multiadmin_web_config_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_multiadmin_config_rules,
};

static const char *const s_histogram_aggregation_values[] = {
    "base2_exponential_bucket_histogram",
    "explicit_bucket_histogram",
    NULL,
};

static const struct schema_node s_histogram_aggregation = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_histogram_aggregation_values,
};

static const char *const s_otel_exporter_values[] = {"otlp", "none", "console", NULL};

static const struct schema_node s_otel_exporter = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_otel_exporter_values,
};

static const char *const s_metrics_temporality_values[] = {"cumulative", "delta", NULL};

static const struct schema_node s_metrics_temporality = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_metrics_temporality_values,
};

static const char *const s_otlp_protocol_values[] = {"http/protobuf", "grpc", NULL};

static const struct schema_node s_otlp_protocol = {
    .kind = SK_STRING,
    SCHEMA_LIMITS_NONE,
    .enum_values = s_otlp_protocol_values,
};

static const struct schema_field s_sampling_config_ref_fields[] = {
    {.name = "key", .node = &s_string, .default_json = "\"sampling-config.yaml\""},
    {.name = "name", .node = &s_string, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_sampling_config_ref = {
    .kind = SK_OBJECT,
    .fields = s_sampling_config_ref_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_observability_config_fields[] = {
    {.name = "histogramAggregation", .node = &s_histogram_aggregation},
    {.name = "logsExporter", .node = &s_otel_exporter},
    {.name = "metricExportInterval", .node = &s_string},
    {.name = "metricsExporter", .node = &s_otel_exporter},
    {.name = "metricsTemporality", .node = &s_metrics_temporality},
    {.name = "otlpEndpoint", .node = &s_string},
    {.name = "otlpMetricsEndpoint", .node = &s_string},
    {.name = "otlpProtocol", .node = &s_otlp_protocol},
    {.name = "samplingConfigRef", .node = &s_sampling_config_ref},
    {.name = "tracesExporter", .node = &s_otel_exporter},
    {.name = "tracesSampler", .node = &s_string},
    {.name = NULL},
};

static const struct schema_node s_observability_config = {
    .kind = SK_OBJECT,
    .fields = s_observability_config_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_secret_key = {
    .kind = SK_STRING,
    LENGTH(1, 253),
    .pattern = "^[-._a-zA-Z0-9]+$",
};

static const struct schema_node s_dns_subdomain = {
    .kind = SK_STRING,
    LENGTH(1, 253),
    .pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
};

static const struct schema_field s_secret_key_ref_fields[] = {
    {.name = "key", .node = &s_secret_key, .required = 1},
    {.name = "name", .node = &s_dns_subdomain, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_secret_key_ref = {
    .kind = SK_OBJECT,
    .fields = s_secret_key_ref_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_field s_template_defaults_fields[] = {
    {.name = "cellTemplate", .node = &s_string_1_63},
    {.name = "coreTemplate", .node = &s_string_1_63},
    {.name = "shardTemplate", .node = &s_string_1_63},
    {.name = NULL},
};

static const struct schema_node s_template_defaults = {
    .kind = SK_OBJECT,
    .fields = s_template_defaults_fields,
    SCHEMA_LIMITS_NONE,
};

/* MultigresCluster.spec */
static const struct schema_field s_cluster_spec_fields[] = {
    {.name = "backup", .node = &s_backup_config},
    {.name = "cells", .node = &s_cells},
    {.name = "certCommonName", .node = &s_string},
    {.name = "databases", .node = &s_databases},
    {.name = "durabilityPolicy", .node = &s_string},
    {.name = "externalAdminWeb", .node = &s_external_exposure},
    {.name = "externalGateway", .node = &s_external_exposure},
    {.name = "globalTopoServer", .node = &s_cluster_global_topo_server},
    {.name = "imageUpdatePolicy", .node = &s_image_update_policy},
    {.name = "images", .node = &s_cluster_images},
    {.name = "internalTLS", .node = &s_enabled_toggle},
    {.name = "logLevels", .node = &s_log_levels},
    {.name = "multiadmin", .node = &s_multiadmin_config},
    {.name = "multiadminWeb", .node = &s_multiadmin_web_config},
    {.name = "observability", .node = &s_observability_config},
    {.name = "postgresPasswordSecretRef", .node = &s_secret_key_ref, .required = 1},
    {.name = "postgresSuperuser", .node = &s_string_max63, .default_json = "\"postgres\""},
    {.name = "pvcDeletionPolicy",
     .node = &s_pvc_deletion_policy,
     .default_json = "{\"whenDeleted\":\"Delete\",\"whenScaled\":\"Delete\"}"},
    {.name = "templateDefaults", .node = &s_template_defaults},
    {.name = "topologyPruning", .node = &s_enabled_toggle},
    {.name = NULL},
};

static const struct schema_node s_cluster_spec = {
    .kind = SK_OBJECT,
    .fields = s_cluster_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* CoreTemplate globalTopoServer: managed etcd only. */
static const struct schema_field s_coretemplate_global_topo_server_fields[] = {
    {.name = "etcd", .node = &s_etcd_spec},
    {.name = "placement", .node = &s_placement},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = NULL},
};

static const struct schema_rule s_coretemplate_global_topo_server_rules[] = {
    {.holds = rule_has_etcd, .message = "must specify 'etcd' configuration"},
    {.holds = NULL},
};

static const struct schema_node s_coretemplate_global_topo_server = {
    .kind = SK_OBJECT,
    .fields = s_coretemplate_global_topo_server_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_coretemplate_global_topo_server_rules,
};

/* CoreTemplate.spec */
static const struct schema_field s_coretemplate_spec_fields[] = {
    {.name = "globalTopoServer", .node = &s_coretemplate_global_topo_server},
    {.name = "multiadmin", .node = &s_stateless_spec},
    {.name = "multiadminPlacement", .node = &s_placement},
    {.name = "multiadminWeb", .node = &s_stateless_spec},
    {.name = NULL},
};

static const struct schema_node s_coretemplate_spec = {
    .kind = SK_OBJECT,
    .fields = s_coretemplate_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* ShardTemplate pools: a different key limit than the cluster's pools. */
static const struct schema_rule s_shardtemplate_pools_rules[] = {
    {.holds = rule_pool_names_lt_63, .message = "pool names must be < 63 chars"},
    {.holds = rule_pools_append_only,
     .transition = 1,
     .message = "Pools cannot be removed or renamed in this version (Append-Only)"},
    {.holds = NULL},
};

static const struct schema_node s_shardtemplate_pools = {
    .kind = SK_MAP,
    .items = &s_pool_spec,
    COUNT(NL, 8),
    .rules = s_shardtemplate_pools_rules,
};

/* ShardTemplate.spec */
static const struct schema_field s_shardtemplate_spec_fields[] = {
    {.name = "initdbArgs", .node = &s_string_max512},
    {.name = "multiorch", .node = &s_multiorch_spec},
    {.name = "pools", .node = &s_shardtemplate_pools},
    {.name = "postgresConfig", .node = &s_string_map_max200},
    {.name = "postgresConfigRef", .node = &s_postgres_config_ref},
    {.name = "pvcDeletionPolicy", .node = &s_pvc_deletion_policy},
    {.name = NULL},
};

static const struct schema_node s_shardtemplate_spec = {
    .kind = SK_OBJECT,
    .fields = s_shardtemplate_spec_fields,
    SCHEMA_LIMITS_NONE,
};

/* ---------------------------------------------------------------------------------------------
 * Object metadata (the ObjectMeta fields the API server accepts) and the four roots.
 * --------------------------------------------------------------------------------------------- */

static const struct schema_node s_any = {.kind = SK_ANY, SCHEMA_LIMITS_NONE};

/* managedFields entries are written by the API server; they are not descended into. */
static const struct schema_node s_any_list = {
    .kind = SK_ARRAY,
    .items = &s_any,
    SCHEMA_LIMITS_NONE,
};

/* metav1.OwnerReference */
static const struct schema_field s_owner_reference_fields[] = {
    {.name = "apiVersion", .node = &s_string, .required = 1},
    {.name = "blockOwnerDeletion", .node = &s_boolean},
    {.name = "controller", .node = &s_boolean},
    {.name = "kind", .node = &s_string, .required = 1},
    {.name = "name", .node = &s_string, .required = 1},
    {.name = "uid", .node = &s_string, .required = 1},
    {.name = NULL},
};

static const struct schema_node s_owner_reference = {
    .kind = SK_OBJECT,
    .fields = s_owner_reference_fields,
    SCHEMA_LIMITS_NONE,
};

static const struct schema_node s_owner_references = {
    .kind = SK_ARRAY,
    .items = &s_owner_reference,
    SCHEMA_LIMITS_NONE,
};

/* metav1.ObjectMeta, as a client may send it. */
static const struct schema_field s_object_meta_fields[] = {
    {.name = "annotations", .node = &s_string_map},
    {.name = "creationTimestamp", .node = &s_string},
    {.name = "deletionGracePeriodSeconds", .node = &s_integer},
    {.name = "deletionTimestamp", .node = &s_string},
    {.name = "finalizers", .node = &s_string_list},
    {.name = "generateName", .node = &s_string},
    {.name = "generation", .node = &s_integer},
    {.name = "labels", .node = &s_string_map},
    {.name = "managedFields", .node = &s_any_list},
    {.name = "name", .node = &s_string},
    {.name = "namespace", .node = &s_string},
    {.name = "ownerReferences", .node = &s_owner_references},
    {.name = "resourceVersion", .node = &s_string},
    {.name = "selfLink", .node = &s_string},
    {.name = "uid", .node = &s_string},
    {.name = NULL},
};

static const struct schema_node s_object_meta = {
    .kind = SK_OBJECT,
    .fields = s_object_meta_fields,
    SCHEMA_LIMITS_NONE,
};

/* MultigresCluster (multigres.com_multigresclusters.yaml) */
static const struct schema_field s_multigrescluster_fields[] = {
    {.name = "apiVersion", .node = &s_string},
    {.name = "kind", .node = &s_string},
    {.name = "metadata", .node = &s_object_meta},
    {.name = "spec", .node = &s_cluster_spec},
    /* Written by the operator through the status subresource; not validated. */
    {.name = "status", .node = &s_any},
    {.name = NULL},
};

/* The CRD attaches this rule to the object root; it is reported at metadata.name. */
static const struct schema_rule s_multigrescluster_rules[] = {
    {.holds = rule_cluster_name_size,
     .message = "MultigresCluster name must be at most 25 characters",
     .field = "metadata.name"},
    {.holds = NULL},
};

const struct schema_node schema_multigrescluster = {
    .kind = SK_OBJECT,
    .fields = s_multigrescluster_fields,
    SCHEMA_LIMITS_NONE,
    .rules = s_multigrescluster_rules,
};

/* CoreTemplate (multigres.com_coretemplates.yaml) */
static const struct schema_field s_coretemplate_fields[] = {
    {.name = "apiVersion", .node = &s_string},
    {.name = "kind", .node = &s_string},
    {.name = "metadata", .node = &s_object_meta},
    {.name = "spec", .node = &s_coretemplate_spec},
    {.name = NULL},
};

const struct schema_node schema_coretemplate = {
    .kind = SK_OBJECT,
    .fields = s_coretemplate_fields,
    SCHEMA_LIMITS_NONE,
};

/* CellTemplate (multigres.com_celltemplates.yaml) */
static const struct schema_field s_celltemplate_fields[] = {
    {.name = "apiVersion", .node = &s_string},
    {.name = "kind", .node = &s_string},
    {.name = "metadata", .node = &s_object_meta},
    {.name = "spec", .node = &s_cell_inline_spec},
    {.name = NULL},
};

const struct schema_node schema_celltemplate = {
    .kind = SK_OBJECT,
    .fields = s_celltemplate_fields,
    SCHEMA_LIMITS_NONE,
};

/* ShardTemplate (multigres.com_shardtemplates.yaml) */
static const struct schema_field s_shardtemplate_fields[] = {
    {.name = "apiVersion", .node = &s_string},
    {.name = "kind", .node = &s_string},
    {.name = "metadata", .node = &s_object_meta},
    {.name = "spec", .node = &s_shardtemplate_spec},
    {.name = NULL},
};

const struct schema_node schema_shardtemplate = {
    .kind = SK_OBJECT,
    .fields = s_shardtemplate_fields,
    SCHEMA_LIMITS_NONE,
};

/* clang-format on */
