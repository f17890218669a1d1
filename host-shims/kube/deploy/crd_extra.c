/*
 * What the generated CRDs need beyond the library's schema tables (see crd_gen.h):
 *
 *  - the CEL expression of every cross-field rule: the tables hold each rule as a C predicate
 *    and its message; the API server needs CEL. gen_crds fails when a rule of the tables has no
 *    expression here, or an expression here matches no rule, or the oldSelf use disagrees with
 *    the rule's transition flag. Each expression accepts exactly what the predicate accepts
 *    (the predicates' comments in schema_tables.c give the reference's rule);
 *  - MultigresCluster.status, which the tables leave unchecked;
 *  - constraints of mgo's admission that a schema can carry (crdgen_additions);
 *  - the server-side apply map type of the Kubernetes struct types that are atomic;
 *  - names, short names, printer columns and subresources of each kind.
 */
#include <string.h>

#include "crd_gen.h"

/* clang-format off */
const struct crdgen_cel crdgen_cel_rules[] = {
    {"MultigresCluster name must be at most 25 characters",
     "self.metadata.name.size() <= 25"},
    {"s3 config is required when type is 's3'",
     "self.type != 's3' || has(self.s3)"},
    {"filesystem config is required when type is 'filesystem'",
     "self.type != 'filesystem' || has(self.filesystem)"},
    {"encryption is immutable and cannot be added, removed, or changed after creation",
     "has(oldSelf.encryption) ? (has(self.encryption) && self.encryption == oldSelf.encryption)"
     " : !has(self.encryption)"},
    {"serviceAccountName and credentialsSecret are mutually exclusive",
     "!has(self.serviceAccountName) || self.serviceAccountName == '' ||"
     " !has(self.credentialsSecret) || self.credentialsSecret == ''"},
    {"serviceAccountName and useEnvCredentials are mutually exclusive \xe2\x80\x94 "
     "IRSA credentials are handled automatically",
     "!has(self.serviceAccountName) || self.serviceAccountName == '' ||"
     " !has(self.useEnvCredentials) || !self.useEnvCredentials"},
    {"Cells cannot be removed or renamed (Append-Only)",
     "oldSelf.all(old, self.exists(cell, cell.name == old.name))"},
    {"cannot specify both 'spec' and 'cellTemplate'",
     "!has(self.spec) || !has(self.cellTemplate)"},
    {"cannot specify both 'spec' and 'overrides'",
     "!has(self.spec) || !has(self.overrides)"},
    {"cannot specify both 'zoneId' and 'region'",
     "!has(self.zoneId) || !has(self.region)"},
    {"at least one of 'zoneId' or 'region' must be specified",
     "has(self.zoneId) || has(self.region)"},
    {"annotation keys must be <64 chars and values <256 chars",
     "self.all(key, size(key) < 64 && size(self[key]) < 256)"},
    {"label keys and values must be <64 chars",
     "self.all(key, size(key) < 64 && size(self[key]) < 64)"},
    {"must specify either 'etcd' or 'external'",
     "has(self.etcd) || has(self.external)"},
    {"only one of 'etcd' or 'external' can be set",
     "!has(self.etcd) || !has(self.external)"},
    {"etcd replicas must be an odd number (1, 3, 5); even numbers provide no additional fault "
     "tolerance over the next lower odd number",
     "self % 2 == 1"},
    {"endpoints must be valid URLs",
     "self.all(url, url.startsWith('http://') || url.startsWith('https://'))"},
    /* A database without `default` fails the rule (the predicate's reading); the reference's
     * expression reads db.default unguarded, so its API server answers with a CEL evaluation
     * error ("no such key") there instead of this message. Both reject. */
    {"in v1alpha1, only the single system database named 'postgres' (marked default: true) is "
     "supported",
     "self.all(db, db.name == 'postgres' && has(db.default) && db.default)"},
    {"every database must have exactly one tablegroup marked as default",
     "self.exists_one(tg, has(tg.default) && tg.default)"},
    {"the default tablegroup must be named 'default'",
     "!has(self.default) || !self.default || self.name == 'default'"},
    {"cannot specify both 'spec' and 'shardTemplate'",
     "!has(self.spec) || !has(self.shardTemplate)"},
    {"shardName must be strictly equal to '0-inf' in this version",
     "self == '0-inf'"},
    {"pool names must be <= 25 chars",
     "self.all(pool, size(pool) <= 25)"},
    {"pool names must be < 63 chars",
     "self.all(pool, size(pool) < 63)"},
    {"Pools cannot be removed or renamed in this version (Append-Only)",
     "oldSelf.all(pool, pool in self)"},
    {"Cells cannot be removed from a pool (Append-Only)",
     "oldSelf.all(cell, cell in self)"},
    {"annotations must not use multigres.com/ prefix (reserved for operator)",
     "!has(self.annotations) || self.annotations.all(key, !key.startsWith('multigres.com/'))"},
    {"must specify exactly one of 'etcd', 'external', or 'templateRef'",
     "(has(self.etcd) ? 1 : 0) + (has(self.external) ? 1 : 0) + (has(self.templateRef) ? 1 : 0)"
     " == 1"},
    {"must specify either 'spec' or 'templateRef'",
     "has(self.spec) || has(self.templateRef)"},
    {"cannot specify both 'spec' and 'templateRef'",
     "!has(self.spec) || !has(self.templateRef)"},
    {"must specify 'etcd' configuration",
     "has(self.etcd)"},
    {NULL, NULL},
};

/* ---------------------------------------------------------------------------------------------
 * Additions
 * --------------------------------------------------------------------------------------------- */

/* The durability policies multiorch knows; admission.c refuses any other name with the message
 * this enumeration makes the API server give. The reference CRD takes any string here and
 * fails later, when the topology records are written. */
static const char *const durability_policies[] = {"AT_LEAST_2", "MULTI_CELL_AT_LEAST_2", NULL};

const struct crdgen_addition crdgen_additions[] = {
    {"MultigresCluster.spec.durabilityPolicy", durability_policies},
    {"MultigresCluster.spec.databases[].durabilityPolicy", durability_policies},
    {NULL, NULL},
};

/* ---------------------------------------------------------------------------------------------
 * MultigresCluster.status
 * --------------------------------------------------------------------------------------------- */

#define NL SCHEMA_NO_LIMIT
#define LENGTH(lo, hi) .min_length = (lo), .max_length = (hi), .min_items = NL, .max_items = NL
#define COUNT(lo, hi) .min_length = NL, .max_length = NL, .min_items = (lo), .max_items = (hi)

static const struct schema_node st_string = {.kind = SK_STRING, SCHEMA_LIMITS_NONE};
static const struct schema_node st_boolean = {.kind = SK_BOOLEAN, SCHEMA_LIMITS_NONE};
static const struct schema_node st_integer = {.kind = SK_INTEGER, SCHEMA_LIMITS_NONE};
static const struct schema_node st_count = {
    .kind = SK_INTEGER, SCHEMA_LIMITS_NONE, .has_minimum = 1, .minimum = 0,
};
static const struct schema_node st_time = {.kind = SK_STRING, SCHEMA_LIMITS_NONE};
/* A string mgo writes as null when it has no value (nullable: see crdgen_status_nullable). */
static const struct schema_node st_optional_string = {.kind = SK_STRING, SCHEMA_LIMITS_NONE};
static const struct schema_node st_image = {.kind = SK_STRING, LENGTH(1, 512)};
static const struct schema_node st_template_name = {.kind = SK_STRING, LENGTH(1, 63)};

/* metav1.Condition */
static const char *const st_condition_status_values[] = {"True", "False", "Unknown", NULL};
static const struct schema_node st_condition_status = {
    .kind = SK_STRING, SCHEMA_LIMITS_NONE, .enum_values = st_condition_status_values,
};
static const struct schema_node st_condition_message = {.kind = SK_STRING, LENGTH(NL, 32768)};
static const struct schema_node st_condition_reason = {
    .kind = SK_STRING, LENGTH(1, 1024),
    .pattern = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
};
static const struct schema_node st_condition_type = {
    .kind = SK_STRING, LENGTH(NL, 316),
    .pattern = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
               "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
};
static const struct schema_field st_condition_fields[] = {
    {.name = "lastTransitionTime", .node = &st_time, .required = 1},
    {.name = "message", .node = &st_condition_message, .required = 1},
    {.name = "observedGeneration", .node = &st_count},
    {.name = "reason", .node = &st_condition_reason, .required = 1},
    {.name = "status", .node = &st_condition_status, .required = 1},
    {.name = "type", .node = &st_condition_type, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_condition = {
    .kind = SK_OBJECT, .fields = st_condition_fields, SCHEMA_LIMITS_NONE,
};
static const struct schema_node st_conditions = {
    .kind = SK_ARRAY, .items = &st_condition, SCHEMA_LIMITS_NONE, .list_map_key = "type",
};

/* {externalEndpoint} of gateway and adminWeb */
static const struct schema_field st_endpoint_fields[] = {
    {.name = "externalEndpoint", .node = &st_string, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_endpoint = {
    .kind = SK_OBJECT, .fields = st_endpoint_fields, SCHEMA_LIMITS_NONE,
};

static const struct schema_field st_cell_fields[] = {
    {.name = "gatewayReplicas", .node = &st_integer, .required = 1},
    {.name = "ready", .node = &st_boolean, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_cell = {
    .kind = SK_OBJECT, .fields = st_cell_fields, SCHEMA_LIMITS_NONE,
};
static const struct schema_node st_cells = {.kind = SK_MAP, .items = &st_cell, COUNT(NL, 50)};

static const struct schema_field st_database_fields[] = {
    {.name = "readyShards", .node = &st_integer, .required = 1},
    {.name = "totalShards", .node = &st_integer, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_database = {
    .kind = SK_OBJECT, .fields = st_database_fields, SCHEMA_LIMITS_NONE,
};
static const struct schema_node st_databases = {
    .kind = SK_MAP, .items = &st_database, COUNT(NL, 50),
};

/* An image set: one reference per component. */
static const struct schema_field st_image_set_fields[] = {
    {.name = "multiadmin", .node = &st_image},
    {.name = "multiadminWeb", .node = &st_image},
    {.name = "multigateway", .node = &st_image},
    {.name = "multiorch", .node = &st_image},
    {.name = "multipooler", .node = &st_image},
    {.name = "postgres", .node = &st_image},
    {.name = NULL},
};
static const struct schema_node st_image_set = {
    .kind = SK_OBJECT, .fields = st_image_set_fields, SCHEMA_LIMITS_NONE,
};
static const char *const st_image_source_values[] = {"explicit", "defaults", "mixed", NULL};
static const struct schema_node st_image_source = {
    .kind = SK_STRING, SCHEMA_LIMITS_NONE, .enum_values = st_image_source_values,
};
static const struct schema_field st_images_fields[] = {
    {.name = "applied", .node = &st_image_set},
    {.name = "appliedRevision", .node = &st_string},
    {.name = "available", .node = &st_image_set},
    {.name = "availableRevision", .node = &st_string},
    {.name = "effective", .node = &st_image_set, .required = 1},
    {.name = "source", .node = &st_image_source, .required = 1},
    {.name = "updateStrategy", .node = &st_string},
    {.name = NULL},
};
static const struct schema_node st_images = {
    .kind = SK_OBJECT, .fields = st_images_fields, SCHEMA_LIMITS_NONE,
};

static const char *const st_phase_values[] = {"Initializing", "Progressing", "Healthy",
                                              "Degraded", "Unknown", NULL};
static const struct schema_node st_phase = {
    .kind = SK_STRING, SCHEMA_LIMITS_NONE, .enum_values = st_phase_values,
};

static const struct schema_node st_template_names = {
    .kind = SK_ARRAY, .items = &st_template_name, SCHEMA_LIMITS_NONE,
};
static const struct schema_field st_resolved_templates_fields[] = {
    {.name = "cellTemplates", .node = &st_template_names},
    {.name = "coreTemplates", .node = &st_template_names},
    {.name = "shardTemplates", .node = &st_template_names},
    {.name = NULL},
};
static const struct schema_node st_resolved_templates = {
    .kind = SK_OBJECT, .fields = st_resolved_templates_fields, SCHEMA_LIMITS_NONE,
};

/* mgo's per pool x cell counts (docs/abi.md: status.pools). */
static const struct schema_field st_pool_fields[] = {
    {.name = "cell", .node = &st_string, .required = 1},
    {.name = "database", .node = &st_string, .required = 1},
    {.name = "desired", .node = &st_count, .required = 1},
    {.name = "existing", .node = &st_count, .required = 1},
    {.name = "pool", .node = &st_string, .required = 1},
    {.name = "ready", .node = &st_count, .required = 1},
    {.name = "shard", .node = &st_string, .required = 1},
    {.name = "tablegroup", .node = &st_string, .required = 1},
    {.name = "updated", .node = &st_count, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_pool = {
    .kind = SK_OBJECT, .fields = st_pool_fields, SCHEMA_LIMITS_NONE,
};
static const struct schema_node st_pools = {.kind = SK_ARRAY, .items = &st_pool, SCHEMA_LIMITS_NONE};

/* mgo's per instance state (docs/abi.md: status.instanceStatus). role and drain stay open
 * strings: a newer library may report values this CRD does not know yet. mgo writes null for
 * an unknown cell, pool, role or drain; nullable keeps that null when the status is PUT (a merge
 * patch or an apply drops it: there null means "remove"). */
static const struct schema_field st_instance_fields[] = {
    {.name = "cell", .node = &st_optional_string},
    {.name = "database", .node = &st_string, .required = 1},
    {.name = "drain", .node = &st_optional_string},
    {.name = "exists", .node = &st_boolean, .required = 1},
    {.name = "index", .node = &st_count, .required = 1},
    {.name = "name", .node = &st_string, .required = 1},
    {.name = "pool", .node = &st_optional_string},
    {.name = "ready", .node = &st_boolean, .required = 1},
    {.name = "role", .node = &st_optional_string},
    {.name = "shard", .node = &st_string, .required = 1},
    {.name = "tablegroup", .node = &st_string, .required = 1},
    {.name = "updated", .node = &st_boolean, .required = 1},
    {.name = NULL},
};
static const struct schema_node st_instance = {
    .kind = SK_OBJECT, .fields = st_instance_fields, SCHEMA_LIMITS_NONE,
};
static const struct schema_node st_instances = {
    .kind = SK_ARRAY, .items = &st_instance, SCHEMA_LIMITS_NONE,
};

static const struct schema_field st_cluster_status_fields[] = {
    /* The reference operator's fields. */
    {.name = "adminWeb", .node = &st_endpoint},
    {.name = "cells", .node = &st_cells},
    {.name = "conditions", .node = &st_conditions},
    {.name = "databases", .node = &st_databases},
    {.name = "gateway", .node = &st_endpoint},
    {.name = "images", .node = &st_images},
    {.name = "message", .node = &st_string},
    {.name = "observedGeneration", .node = &st_integer},
    {.name = "phase", .node = &st_phase},
    {.name = "resolvedTemplates", .node = &st_resolved_templates},
    /* mgo's additions. */
    {.name = "instanceStatus", .node = &st_instances},
    {.name = "instances", .node = &st_count},
    {.name = "pools", .node = &st_pools},
    {.name = "readyInstances", .node = &st_count},
    {.name = NULL},
};

const struct schema_node crdgen_cluster_status = {
    .kind = SK_OBJECT, .fields = st_cluster_status_fields, SCHEMA_LIMITS_NONE,
};

const char *crdgen_status_format(const struct schema_node *n)
{
    return n == &st_time ? "date-time" : NULL;
}

int crdgen_status_nullable(const struct schema_node *n)
{
    return n == &st_optional_string;
}

/* ---------------------------------------------------------------------------------------------
 * Atomic struct types
 * --------------------------------------------------------------------------------------------- */

/* Field names of each atomic type, sorted, NULL-terminated. */
static const char *const atomic_label_selector[] = {"matchExpressions", "matchLabels", NULL};
static const char *const atomic_node_selector_term[] = {"matchExpressions", "matchFields", NULL};
static const char *const atomic_node_selector[] = {"nodeSelectorTerms", NULL};
static const char *const atomic_local_object_reference[] = {"name", NULL};
static const char *const *const atomic_structs[] = {
    atomic_label_selector, atomic_node_selector_term, atomic_node_selector,
    atomic_local_object_reference, NULL,
};

/* clang-format on */

static int has_field_names(const struct schema_node *n, const char *const *names)
{
    size_t count = 0, want = 0;

    for (; names[want]; want++) {
        int found = 0;
        for (const struct schema_field *f = n->fields; f->name && !found; f++)
            found = strcmp(f->name, names[want]) == 0;
        if (!found)
            return 0;
    }
    for (const struct schema_field *f = n->fields; f->name; f++)
        count++;
    return count == want;
}

int crdgen_is_atomic_struct(const struct schema_node *n)
{
    if (n->kind != SK_OBJECT || !n->fields)
        return 0;
    for (const char *const *const *t = atomic_structs; *t; t++)
        if (has_field_names(n, *t))
            return 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The kinds
 * --------------------------------------------------------------------------------------------- */

static const struct crdgen_column cluster_columns[] = {
    {"Available", "string", ".status.conditions[?(@.type=='Available')].status", 0},
    {"Age", "date", ".metadata.creationTimestamp", 0},
    {"Phase", "string", ".status.phase", 0},
    {"Images", "string", ".status.images.appliedRevision", 1},
};

const struct crdgen_kind crdgen_kinds[] = {
    {"MultigresCluster", "multigresclusters", "multigrescluster", "mgc", "multigresclusters.yaml",
     &schema_multigrescluster, &crdgen_cluster_status, cluster_columns,
     sizeof(cluster_columns) / sizeof(cluster_columns[0])},
    {"CoreTemplate", "coretemplates", "coretemplate", "cot", "coretemplates.yaml",
     &schema_coretemplate, NULL, NULL, 0},
    {"CellTemplate", "celltemplates", "celltemplate", "cet", "celltemplates.yaml",
     &schema_celltemplate, NULL, NULL, 0},
    {"ShardTemplate", "shardtemplates", "shardtemplate", "sht", "shardtemplates.yaml",
     &schema_shardtemplate, NULL, NULL, 0},
};

const size_t crdgen_nkinds = sizeof(crdgen_kinds) / sizeof(crdgen_kinds[0]);
