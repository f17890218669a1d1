/*
 * gen_crds: writes the CustomResourceDefinitions of mgo's user-facing kinds
 * (host-shims/kube/deploy/crds/, one YAML file per kind) from the library's schema tables.
 *
 *   mgo-gen-crds OUTDIR
 *
 * One file per kind. The output is committed; the test kube_deploy_crds_current regenerates it
 * and fails on any difference, so the CRDs cannot drift from what `mgo validate` checks.
 *
 * Mapping of a table node to OpenAPI v3 (structural schema):
 *   SK_OBJECT  type object, properties, required; a struct type Kubernetes declares atomic
 *              gets x-kubernetes-map-type atomic
 *   SK_MAP     type object, additionalProperties, min/maxProperties
 *   SK_ARRAY   type array, items, min/maxItems; a list-map key gives x-kubernetes-list-type map
 *              and its keys, a set list x-kubernetes-list-type set (other lists are atomic,
 *              the API server's default for custom resources)
 *   SK_STRING  type string, min/maxLength, enum, pattern
 *   SK_INTEGER, SK_NUMBER, SK_BOOLEAN  their type, minimum, maximum
 *   SK_INT_OR_STRING  x-kubernetes-int-or-string with anyOf integer/string, pattern
 *   rules      x-kubernetes-validations, CEL text from crd_extra.c
 *   defaults   default
 * The root's metadata becomes `type: object` (a CRD may only restrict ObjectMeta's name; it
 * declares the name when a root rule reports at metadata.name) and its status the kind's status
 * schema (crd_extra.c). Descriptions are not generated.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crd_gen.h"

#define API_GROUP   "multigres.com"
#define API_VERSION "v1alpha1"

/* Conversion state: which CEL entries were used, and the first error. */
struct gen {
    int cel_used[64];
    int additions_used[16];
    char err[512];
};

/* Records the first error's text; returns rc. */
__attribute__((format(printf, 3, 4))) static int fail(struct gen *g, int rc, const char *fmt, ...)
{
    va_list ap;

    if (!g->err[0]) {
        va_start(ap, fmt);
        (void)vsnprintf(g->err, sizeof(g->err), fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Sets key to a new reference; 0, or -ENOMEM (the value is released either way). */
static int put(json_t *obj, const char *key, json_t *value)
{
    return value && json_object_set_new(obj, key, value) == 0 ? 0 : -ENOMEM;
}

static const struct crdgen_cel *find_cel(struct gen *g, const char *message)
{
    for (size_t i = 0; crdgen_cel_rules[i].message; i++)
        if (strcmp(crdgen_cel_rules[i].message, message) == 0) {
            g->cel_used[i] = 1;
            return &crdgen_cel_rules[i];
        }
    return NULL;
}

/* x-kubernetes-validations of a node's rules. */
static int put_rules(struct gen *g, json_t *out, const struct schema_rule *rules, const char *path)
{
    json_t *list = json_array();
    int rc = list ? 0 : -ENOMEM;

    for (const struct schema_rule *r = rules; !rc && r->holds; r++) {
        const struct crdgen_cel *cel = find_cel(g, r->message);
        if (!cel) {
            rc = fail(g, -EINVAL, "%s: no CEL expression for the rule \"%s\" (crd_extra.c)", path,
                      r->message);
            break;
        }
        if ((strstr(cel->rule, "oldSelf") != NULL) != (r->transition != 0)) {
            rc = fail(g, -EINVAL, "%s: the CEL expression of \"%s\" %s oldSelf", path, r->message,
                      r->transition ? "is a transition rule but does not read"
                                    : "is not a transition rule but reads");
            break;
        }
        json_t *v = json_pack("{s:s, s:s}", "rule", cel->rule, "message", r->message);
        /* The tables report a root rule at a field; the CRD says the same with fieldPath. */
        if (v && r->field) {
            char field_path[128];
            (void)snprintf(field_path, sizeof(field_path), ".%s", r->field);
            rc = put(v, "fieldPath", json_string(field_path));
        }
        if (!rc)
            rc = v && json_array_append_new(list, v) == 0 ? 0 : -ENOMEM;
        else
            json_decref(v);
    }
    if (rc) {
        json_decref(list);
        return rc;
    }
    return put(out, "x-kubernetes-validations", list);
}

static int convert(struct gen *g, const struct schema_node *n, const char *path, json_t **ret);

/* Sets "enum" to the NULL-terminated values; 0 or -ENOMEM. */
static int put_enum(json_t *out, const char *const *values)
{
    json_t *list = json_array();
    int rc = list ? 0 : -ENOMEM;

    for (; !rc && *values; values++)
        rc = json_array_append_new(list, json_string(*values)) ? -ENOMEM : 0;
    if (rc) {
        json_decref(list);
        return rc;
    }
    return put(out, "enum", list);
}

/* Limits and the enumeration of a string node. */
static int put_string_limits(json_t *out, const struct schema_node *n)
{
    int rc = n->enum_values ? put_enum(out, n->enum_values) : 0;

    if (!rc && n->pattern)
        rc = put(out, "pattern", json_string(n->pattern));
    if (!rc && n->min_length != SCHEMA_NO_LIMIT)
        rc = put(out, "minLength", json_integer(n->min_length));
    if (!rc && n->max_length != SCHEMA_NO_LIMIT)
        rc = put(out, "maxLength", json_integer(n->max_length));
    return rc;
}

static int put_range(json_t *out, const struct schema_node *n)
{
    int rc = 0;

    if (n->has_minimum)
        rc = put(out, "minimum", json_integer(n->minimum));
    if (!rc && n->has_maximum)
        rc = put(out, "maximum", json_integer(n->maximum));
    return rc;
}

static int put_counts(json_t *out, const struct schema_node *n, const char *min, const char *max)
{
    int rc = 0;

    if (n->min_items != SCHEMA_NO_LIMIT)
        rc = put(out, min, json_integer(n->min_items));
    if (!rc && n->max_items != SCHEMA_NO_LIMIT)
        rc = put(out, max, json_integer(n->max_items));
    return rc;
}

/* The schema of a root field: metadata is left to the API server (a CRD may only restrict its
 * name), status is the kind's own. */
static int convert_root_field(struct gen *g, const struct crdgen_kind *k,
                              const struct schema_field *f, const char *path, json_t **ret)
{
    if (strcmp(f->name, "metadata") == 0) {
        /* A root rule reported at metadata.name (fieldPath) needs the name in the schema. */
        int name_path = 0;
        for (const struct schema_rule *r = k->root->rules; r && r->holds; r++)
            name_path |= r->field && strcmp(r->field, "metadata.name") == 0;
        *ret = name_path ? json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "name",
                                     "type", "string")
                         : json_pack("{s:s}", "type", "object");
        return *ret ? 0 : -ENOMEM;
    }
    if (strcmp(f->name, "status") == 0) {
        if (!k->status)
            return fail(g, -EINVAL, "%s: the schema has a status but the kind names none", path);
        return convert(g, k->status, path, ret);
    }
    return convert(g, f->node, path, ret);
}

/* properties and required of an object node; a field's default goes on its property. `root`:
 * the kind when n is its root, else NULL. */
static int put_fields(struct gen *g, json_t *out, const struct schema_node *n, const char *path,
                      const struct crdgen_kind *root)
{
    json_t *props = json_object(), *required = json_array();
    int rc = props && required ? 0 : -ENOMEM;

    for (const struct schema_field *f = n->fields; !rc && f->name; f++) {
        char child_path[512];
        json_t *child = NULL;
        (void)snprintf(child_path, sizeof(child_path), "%s.%s", path, f->name);
        rc = root ? convert_root_field(g, root, f, child_path, &child)
                  : convert(g, f->node, child_path, &child);
        if (!rc && f->default_json) {
            json_error_t jerr;
            json_t *def = json_loads(f->default_json, JSON_DECODE_ANY, &jerr);
            rc = def ? put(child, "default", def)
                     : fail(g, -EINVAL, "%s: default %s is not JSON", child_path, f->default_json);
        }
        if (!rc)
            rc = put(props, f->name, child);
        else
            json_decref(child);
        if (!rc && f->required)
            rc = json_array_append_new(required, json_string(f->name)) ? -ENOMEM : 0;
    }
    if (!rc && json_array_size(required) > 0) {
        rc = put(out, "required", required);
        required = NULL;
    }
    if (!rc) {
        rc = put(out, "properties", props);
        props = NULL;
    }
    json_decref(required);
    json_decref(props);
    return rc;
}

static int convert_by_kind(struct gen *g, json_t *out, const struct schema_node *n,
                           const char *path)
{
    char item_path[512];
    json_t *items = NULL;
    int rc;

    switch (n->kind) {
    case SK_OBJECT:
        rc = put(out, "type", json_string("object"));
        if (!rc)
            rc = put_fields(g, out, n, path, NULL);
        if (!rc && crdgen_is_atomic_struct(n))
            rc = put(out, "x-kubernetes-map-type", json_string("atomic"));
        return rc;
    case SK_MAP:
    case SK_ARRAY:
        (void)snprintf(item_path, sizeof(item_path), "%s%s", path,
                       n->kind == SK_MAP ? "[*]" : "[]");
        rc = put(out, "type", json_string(n->kind == SK_MAP ? "object" : "array"));
        if (!rc)
            rc = n->kind == SK_MAP ? put_counts(out, n, "minProperties", "maxProperties")
                                   : put_counts(out, n, "minItems", "maxItems");
        if (!rc)
            rc = convert(g, n->items, item_path, &items);
        if (!rc)
            rc = put(out, n->kind == SK_MAP ? "additionalProperties" : "items", items);
        if (!rc && n->list_map_key) {
            rc = put(out, "x-kubernetes-list-type", json_string("map"));
            if (!rc)
                rc = put(out, "x-kubernetes-list-map-keys", json_pack("[s]", n->list_map_key));
        }
        if (!rc && n->list_set)
            rc = put(out, "x-kubernetes-list-type", json_string("set"));
        return rc;
    case SK_STRING:
        rc = put(out, "type", json_string("string"));
        if (!rc && crdgen_status_format(n))
            rc = put(out, "format", json_string(crdgen_status_format(n)));
        if (!rc && crdgen_status_nullable(n))
            rc = put(out, "nullable", json_true());
        return rc ? rc : put_string_limits(out, n);
    case SK_INTEGER:
    case SK_NUMBER:
        rc = put(out, "type", json_string(n->kind == SK_INTEGER ? "integer" : "number"));
        return rc ? rc : put_range(out, n);
    case SK_BOOLEAN:
        return put(out, "type", json_string("boolean"));
    case SK_INT_OR_STRING:
        rc = put(out, "anyOf", json_pack("[{s:s}, {s:s}]", "type", "integer", "type", "string"));
        if (!rc && n->pattern)
            rc = put(out, "pattern", json_string(n->pattern));
        return rc ? rc : put(out, "x-kubernetes-int-or-string", json_true());
    case SK_ANY:
        break;
    }
    return fail(g, -EINVAL, "%s: no structural schema for this node", path);
}

/* The additions of crd_extra.c at this path. */
static int put_additions(struct gen *g, json_t *out, const struct schema_node *n, const char *path)
{
    int rc = 0;

    for (size_t i = 0; !rc && crdgen_additions[i].path; i++) {
        const struct crdgen_addition *a = &crdgen_additions[i];
        if (strcmp(a->path, path) != 0)
            continue;
        g->additions_used[i] = 1;
        if (n->kind != SK_STRING || n->enum_values)
            return fail(g, -EINVAL, "%s: an enumeration is added only to a plain string", path);
        rc = put_enum(out, a->enum_values);
    }
    return rc;
}

/* The OpenAPI schema of one node, as a new object in *ret. */
static int convert(struct gen *g, const struct schema_node *n, const char *path, json_t **ret)
{
    json_t *out = json_object();
    int rc = out ? convert_by_kind(g, out, n, path) : -ENOMEM;

    if (!rc)
        rc = put_additions(g, out, n, path);
    if (!rc && n->rules)
        rc = put_rules(g, out, n->rules, path);
    if (rc) {
        json_decref(out);
        return rc;
    }
    *ret = out;
    return 0;
}

/* The openAPIV3Schema of a kind: the root's fields (put_fields replaces metadata and status). */
static int convert_root(struct gen *g, const struct crdgen_kind *k, json_t **ret)
{
    json_t *out = json_pack("{s:s}", "type", "object");
    int rc = out ? put_fields(g, out, k->root, k->kind, k) : -ENOMEM;

    if (!rc && k->root->rules)
        rc = put_rules(g, out, k->root->rules, k->kind);
    if (!rc && !json_object_get(json_object_get(out, "properties"), "metadata"))
        rc = fail(g, -EINVAL, "%s: the schema has no metadata", k->kind);
    if (!rc && k->status && !json_object_get(json_object_get(out, "properties"), "status"))
        rc = fail(g, -EINVAL, "%s: the kind has a status but its schema has no field for it",
                  k->kind);
    if (rc) {
        json_decref(out);
        return rc;
    }
    *ret = out;
    return 0;
}

static json_t *printer_columns(const struct crdgen_kind *k)
{
    json_t *cols = json_array();

    for (size_t i = 0; cols && i < k->ncolumns; i++) {
        const struct crdgen_column *c = &k->columns[i];
        json_t *col = json_pack("{s:s, s:s, s:s}", "name", c->name, "type", c->type, "jsonPath",
                                c->json_path);
        if (col && c->priority)
            if (json_object_set_new(col, "priority", json_integer(c->priority))) {
                json_decref(col);
                col = NULL;
            }
        if (!col || json_array_append_new(cols, col)) {
            json_decref(cols);
            return NULL;
        }
    }
    return cols;
}

static int build_crd(struct gen *g, const struct crdgen_kind *k, json_t **ret)
{
    char name[128], list_kind[128];
    json_t *schema = NULL, *version = NULL, *crd = NULL;
    int rc = convert_root(g, k, &schema);

    if (rc)
        return rc;
    (void)snprintf(name, sizeof(name), "%s.%s", k->plural, API_GROUP);
    (void)snprintf(list_kind, sizeof(list_kind), "%sList", k->kind);
    version = json_pack("{s:s, s:b, s:b}", "name", API_VERSION, "served", 1, "storage", 1);
    if (version && k->status)
        rc = put(version, "subresources", json_pack("{s:{}}", "status"));
    if (version && !rc && k->ncolumns)
        rc = put(version, "additionalPrinterColumns", printer_columns(k));
    if (version && !rc) {
        rc = put(version, "schema", json_pack("{s:O}", "openAPIV3Schema", schema));
        if (!rc)
            crd = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s}}, s:{s:s, s:{s:s, s:s, s:s, s:s, "
                            "s:[s]}, s:s, s:[O]}}",
                            "apiVersion", "apiextensions.k8s.io/v1", "kind",
                            "CustomResourceDefinition", "metadata", "name", name, "labels",
                            "app.kubernetes.io/name", "mgo-kube", "app.kubernetes.io/part-of",
                            "mgo", "spec", "group", API_GROUP, "names", "kind", k->kind, "listKind",
                            list_kind, "plural", k->plural, "singular", k->singular, "shortNames",
                            k->short_name, "scope", "Namespaced", "versions", version);
    }
    json_decref(schema);
    json_decref(version);
    if (rc || !crd) {
        json_decref(crd);
        return rc ? rc : -ENOMEM;
    }
    *ret = crd;
    return 0;
}

/* Write one CRD to DIR/FILE through a temporary file, renamed into place when complete. */
static int write_crd(const char *dir, const struct crdgen_kind *k, const json_t *crd)
{
    char path[4096], tmp[4200];
    FILE *f;
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, k->file) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    rc = fprintf(f,
                 "# The %s CustomResourceDefinition (%s/%s) of mgo.\n"
                 "# Generated by host-shims/kube/deploy/gen_crds.c from the library's schema\n"
                 "# tables (plugin/spec/schema_tables.c); do not edit. Regenerate with\n"
                 "#   cmake --build BUILD --target deploy-crds\n"
                 "# (docs/development/kube-deploy.md).\n",
                 k->kind, API_GROUP, API_VERSION) < 0
             ? -EIO
             : crdgen_yaml_write(f, crd);
    if (fclose(f) != 0 && !rc)
        rc = -EIO;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        (void)remove(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    static struct gen g;
    int rc = 0;

    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: mgo-gen-crds OUTDIR\n"
                        "Writes the CRDs of MultigresCluster, CoreTemplate, CellTemplate and\n"
                        "ShardTemplate, generated from mgo's schema tables, into OUTDIR.\n");
        return 2;
    }
    size_t ncel = 0;
    while (crdgen_cel_rules[ncel].message)
        ncel++;
    size_t nadd = 0;
    while (crdgen_additions[nadd].path)
        nadd++;
    if (ncel > sizeof(g.cel_used) / sizeof(g.cel_used[0]) ||
        nadd > sizeof(g.additions_used) / sizeof(g.additions_used[0])) {
        fprintf(stderr, "mgo-gen-crds: more entries in crd_extra.c than struct gen can count\n");
        return 1;
    }
    for (size_t i = 0; !rc && i < crdgen_nkinds; i++) {
        json_t *crd = NULL;
        rc = build_crd(&g, &crdgen_kinds[i], &crd);
        if (!rc) {
            rc = write_crd(argv[1], &crdgen_kinds[i], crd);
            if (rc)
                fprintf(stderr, "mgo-gen-crds: %s/%s: %s\n", argv[1], crdgen_kinds[i].file,
                        strerror(-rc));
        }
        json_decref(crd);
    }
    for (size_t i = 0; !rc && crdgen_additions[i].path; i++)
        if (!g.additions_used[i])
            rc = fail(&g, -EINVAL, "crd_extra.c: the addition at %s matches no node",
                      crdgen_additions[i].path);
    for (size_t i = 0; !rc && crdgen_cel_rules[i].message; i++)
        if (!g.cel_used[i])
            rc = fail(&g, -EINVAL,
                      "crd_extra.c: the CEL entry \"%s\" matches no rule of the schema tables",
                      crdgen_cel_rules[i].message);
    if (rc) {
        if (g.err[0])
            fprintf(stderr, "mgo-gen-crds: %s\n", g.err);
        else if (rc == -ENOMEM)
            fprintf(stderr, "mgo-gen-crds: out of memory\n");
        return 1;
    }
    return 0;
}
