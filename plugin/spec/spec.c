/* Document classification, per-object validation and cluster resolution. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "spec/admission.h"
#include "spec/errors.h"
#include "spec/resolve.h"
#include "spec/schema.h"
#include "spec/spec.h"

#define GROUP   "multigres.com"
#define VERSION "v1alpha1"

enum kind { K_CLUSTER, K_CORE, K_CELL, K_SHARD, K_NONE };

static const char *const kind_names[] = {"MultigresCluster", "CoreTemplate", "CellTemplate",
                                         "ShardTemplate"};
static const char *const managed_kinds[] = {"Cell", "TableGroup", "Shard", "TopoServer", NULL};

static const struct schema_node *kind_schema(enum kind k)
{
    switch (k) {
    case K_CLUSTER:
        return &schema_multigrescluster;
    case K_CORE:
        return &schema_coretemplate;
    case K_CELL:
        return &schema_celltemplate;
    case K_SHARD:
        return &schema_shardtemplate;
    default:
        return NULL;
    }
}

/* One document under evaluation. */
struct object {
    size_t document;
    enum kind kind;
    json_t *obj; /* a defaulted copy, or NULL */
    const char *name;
    const char *ns;
    struct spec_errors errs;
    int skipped;
    int schema_ok;
};

/* RFC 1123: lower-case alphanumerics and '-', starting and ending alphanumeric; with dots
 * between such labels for a subdomain. `s` has `n` bytes (it may hold a NUL: then it fails). */
static int is_rfc1123(const char *s, size_t n, size_t max, int dots)
{
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        int edge = i == 0 || i == n - 1 || (dots && (s[i - 1] == '.' || s[i + 1] == '.'));
        if (!alnum && !(c == '-' && !edge) && !(dots && c == '.' && !edge))
            return 0;
    }
    return 1;
}

/* Go's %q of a string, as the API server quotes values: control bytes as \xNN or \n etc. */
static void go_quote(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\t' ? "\\t"
                          : c == '\r' ? "\\r"
                                      : NULL;
        if (esc) {
            o += (size_t)snprintf(out + o, size - o, "%s", esc);
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* The API server's own checks of an object's name and namespace (outside the schema), with its
 * words. */
static void check_metadata(struct object *o)
{
    const json_t *meta = json_object_get(o->obj, "metadata");
    const json_t *name = json_object_get(meta, "name");
    const json_t *ns = json_object_get(meta, "namespace");
    char q[600];

    if (json_is_string(name) &&
        !is_rfc1123(json_string_value(name), json_string_length(name), 253, 1)) {
        go_quote(json_string_value(name), json_string_length(name), q, sizeof(q));
        spec_error(&o->errs, "metadata.name",
                   "Invalid value: %s: a lowercase RFC 1123 subdomain must consist of lower case "
                   "alphanumeric characters, '-' or '.', and must start and end with an "
                   "alphanumeric character (e.g. 'example.com', regex used for validation is "
                   "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                   q);
    }
    if (json_is_string(ns) && json_string_length(ns) > 0 &&
        !is_rfc1123(json_string_value(ns), json_string_length(ns), 63, 0)) {
        go_quote(json_string_value(ns), json_string_length(ns), q, sizeof(q));
        spec_error(&o->errs, "metadata.namespace",
                   "Invalid value: %s: a lowercase RFC 1123 label must consist of lower case "
                   "alphanumeric characters or '-', and must start and end with an alphanumeric "
                   "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
                   "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                   q);
    }
}

/* Sort a document into a kind, or record why it cannot be placed. */
static enum kind classify(const json_t *doc, struct object *o)
{
    const char *api = json_string_value(json_object_get(doc, "apiVersion"));
    const char *kind = json_string_value(json_object_get(doc, "kind"));

    if (!json_is_object(doc)) {
        spec_error(&o->errs, "", "must be of type object, got %s",
                   json_is_array(doc) ? "array" : "scalar");
        return K_NONE;
    }
    if (!api)
        spec_error(&o->errs, "apiVersion",
                   json_object_get(doc, "apiVersion") ? "must be of type string"
                                                      : "Required value");
    if (!kind)
        spec_error(&o->errs, "kind",
                   json_object_get(doc, "kind") ? "must be of type string" : "Required value");
    if (!api || !kind)
        return K_NONE;
    size_t glen = strlen(GROUP);
    if (strncmp(api, GROUP, glen) != 0 || (api[glen] != '/' && api[glen] != '\0')) {
        o->skipped = 1; /* another API group: not ours to judge */
        return K_NONE;
    }
    if (strcmp(api, GROUP "/" VERSION) != 0) {
        spec_error(&o->errs, "apiVersion",
                   "Unsupported value: \"%s\": supported values: \"" GROUP "/" VERSION "\"", api);
        return K_NONE;
    }
    for (int k = 0; k < K_NONE; k++)
        if (strcmp(kind, kind_names[k]) == 0)
            return (enum kind)k;
    for (const char *const *m = managed_kinds; *m; m++)
        if (strcmp(kind, *m) == 0) {
            spec_error(&o->errs, "kind",
                       "direct modification of %s is prohibited; this resource is managed by the "
                       "MultigresCluster parent object",
                       kind);
            return K_NONE;
        }
    spec_error(&o->errs, "kind",
               "Unsupported value: \"%s\": supported values: \"MultigresCluster\", "
               "\"CoreTemplate\", \"CellTemplate\", \"ShardTemplate\"",
               kind);
    return K_NONE;
}

static int prepare_object(struct object *o, const json_t *doc, const char *default_ns,
                          struct schema_regex_cache *cache)
{
    o->kind = classify(doc, o);
    if (o->kind == K_NONE)
        return o->errs.oom ? -ENOMEM : 0;
    o->obj = json_deep_copy(doc);
    if (!o->obj || schema_apply_defaults(kind_schema(o->kind), o->obj))
        return -ENOMEM;
    if (schema_validate(kind_schema(o->kind), o->obj, NULL, cache, &o->errs))
        return -ENOMEM;
    const json_t *meta = json_object_get(o->obj, "metadata");
    o->name = json_string_value(json_object_get(meta, "name"));
    o->ns = json_string_value(json_object_get(meta, "namespace"));
    if (!o->ns || !*o->ns)
        o->ns = default_ns;
    if (!o->name && !json_object_get(meta, "name"))
        spec_error(&o->errs, "metadata.name", "Required value");
    check_metadata(o);
    o->schema_ok = spec_errors_count(&o->errs) == 0;
    return o->errs.oom ? -ENOMEM : 0;
}

/* The templates of one namespace, by kind and name (only objects that have a name). */
static int collect_templates(struct object *objs, size_t n, const char *ns,
                             struct resolve_templates *t)
{
    t->core = json_object();
    t->cell = json_object();
    t->shard = json_object();
    if (!t->core || !t->cell || !t->shard)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct object *o = &objs[i];
        json_t *by_name = o->kind == K_CORE    ? t->core
                          : o->kind == K_CELL  ? t->cell
                          : o->kind == K_SHARD ? t->shard
                                               : NULL;
        /* An invalid template would never have been stored: it does not exist for clusters. */
        if (!by_name || !o->name || strcmp(o->ns, ns) != 0 || json_object_get(by_name, o->name) ||
            spec_errors_count(&o->errs) > 0)
            continue;
        if (json_object_set(by_name, o->name, o->obj))
            return -ENOMEM;
    }
    return 0;
}

static void templates_fini(struct resolve_templates *t)
{
    json_decref(t->core);
    json_decref(t->cell);
    json_decref(t->shard);
}

/* The same kind, namespace and name twice in one input is an error on the later one. */
static int check_duplicates(struct object *objs, size_t n)
{
    json_t *seen = json_object();
    if (!seen)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char key[600];
        if (objs[i].kind == K_NONE || !objs[i].name)
            continue;
        /* A NUL byte cannot occur in names (they are checked C strings), so it separates. */
        int len = snprintf(key, sizeof(key), "%d/%.250s/%.300s", (int)objs[i].kind, objs[i].ns,
                           objs[i].name);
        if (len < 0 || (size_t)len >= sizeof(key))
            continue; /* over-long names fail validation anyway */
        if (json_object_get(seen, key)) {
            spec_error(&objs[i].errs, "metadata.name", "Duplicate value: \"%s\"", objs[i].name);
            objs[i].schema_ok = 0;
        } else if (json_object_set_new(seen, key, json_true())) {
            json_decref(seen);
            return -ENOMEM;
        }
    }
    json_decref(seen);
    return 0;
}

/* The previous version, structurally defaulted like the new one (NULL when unusable). */
static json_t *previous_defaulted(const json_t *previous)
{
    json_t *old = json_is_object(previous) ? json_deep_copy(previous) : NULL;
    if (old && schema_apply_defaults(&schema_multigrescluster, old)) {
        json_decref(old);
        return NULL;
    }
    return old;
}

static int evaluate_cluster(struct object *o, struct object *objs, size_t n, const json_t *previous,
                            struct schema_regex_cache *cache, json_t *clusters)
{
    struct resolve_templates t = {0};
    json_t *resolved = NULL, *used = NULL, *old = NULL, *old_resolved = NULL, *old_used = NULL;
    int rc = collect_templates(objs, n, o->ns, &t);

    if (rc)
        goto out;
    if (json_is_object(previous)) {
        const char *pname =
            json_string_value(json_object_get(json_object_get(previous, "metadata"), "name"));
        if (!pname || !o->name || strcmp(pname, o->name) == 0) {
            old = previous_defaulted(previous);
            if (!old) {
                rc = -ENOMEM;
                goto out;
            }
        } else {
            spec_warning(&o->errs, "metadata.name",
                         "the previous version given is of cluster '%s': update-only rules were "
                         "not applied",
                         pname);
        }
    }
    if (old && schema_validate(&schema_multigrescluster, o->obj, old, cache, &o->errs)) {
        rc = -ENOMEM;
        goto out;
    }
    if (spec_errors_count(&o->errs) > 0)
        goto out; /* a transition rule failed */
    rc = resolve_cluster(o->obj, &t, o->ns, &o->errs, &resolved, &used);
    if (rc == -EINVAL) {
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (old) {
        /* The previous version as the reference would have stored it: resolved when it can be
         * (a failure only means the update rules see what it wrote). */
        struct spec_errors scratch;
        if (spec_errors_init(&scratch) == 0) {
            if (resolve_cluster(old, &t, o->ns, &scratch, &old_resolved, &old_used) != 0) {
                old_resolved = NULL;
                old_used = NULL;
            }
            spec_errors_fini(&scratch);
        }
    }
    struct admission_input ain = {o->obj, resolved, used, old, old_resolved, old_used};
    admission_check_cluster(&ain, &o->errs);
    if (o->errs.oom) {
        rc = -ENOMEM;
        goto out;
    }
    if (clusters && spec_errors_count(&o->errs) == 0) {
        json_t *entry =
            json_pack("{s:I, s:s?, s:s, s:O, s:O}", "document", (json_int_t)o->document, "name",
                      o->name, "namespace", o->ns, "resolved", resolved, "templates", used);
        if (!entry || json_array_append_new(clusters, entry))
            rc = -ENOMEM;
    }
out:
    templates_fini(&t);
    json_decref(resolved);
    json_decref(used);
    json_decref(old);
    json_decref(old_resolved);
    json_decref(old_used);
    return rc;
}

static json_t *object_report(const struct object *o, const json_t *doc, const json_t *source)
{
    const json_t *meta = json_object_get(doc, "metadata");
    json_t *r = json_pack(
        "{s:I, s:O?, s:O?, s:O?, s:O?, s:s?, s:b, s:b, s:O, s:O}", "document",
        (json_int_t)o->document, "source", source, "kind", json_object_get(doc, "kind"),
        "apiVersion", json_object_get(doc, "apiVersion"), "name",
        json_is_string(json_object_get(meta, "name")) ? json_object_get(meta, "name") : NULL,
        "namespace", o->kind == K_NONE ? NULL : o->ns, "valid", spec_errors_count(&o->errs) == 0,
        "skipped", o->skipped, "errors", o->errs.errors, "warnings", o->errs.warnings);
    return r;
}

int spec_evaluate(const struct spec_input *in, struct schema_regex_cache *cache,
                  json_t **ret_report, json_t **ret_clusters)
{
    size_t n = json_array_size(in->docs);
    struct object *objs = core_calloc(n ? n : 1, sizeof(*objs));
    json_t *objects = json_array();
    json_t *clusters = ret_clusters ? json_array() : NULL;
    int rc = 0, all_valid = 1;

    if (!objs || !objects || (ret_clusters && !clusters)) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        objs[i].document = i;
        if (spec_errors_init(&objs[i].errs)) {
            rc = -ENOMEM;
            goto out;
        }
        rc = prepare_object(&objs[i], json_array_get(in->docs, i), in->default_ns, cache);
        if (rc)
            goto out;
    }
    rc = check_duplicates(objs, n);
    if (rc)
        goto out;
    /* Templates first: an invalid one must be invisible to every cluster, wherever it stands. */
    for (size_t i = 0; i < n; i++) {
        struct object *o = &objs[i];
        if (o->kind == K_SHARD && o->schema_ok)
            admission_check_shard_template(o->obj, &o->errs);
        else if (o->kind == K_CELL && o->schema_ok)
            admission_check_cell_template(o->obj, &o->errs);
        if (o->errs.oom) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct object *o = &objs[i];
        if (o->kind == K_CLUSTER && o->schema_ok)
            rc = evaluate_cluster(o, objs, n, in->previous, cache, clusters);
        if (rc || o->errs.oom) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r =
            object_report(&objs[i], json_array_get(in->docs, i), json_array_get(in->sources, i));
        if (!r || json_array_append_new(objects, r)) {
            rc = -ENOMEM;
            goto out;
        }
        all_valid &= spec_errors_count(&objs[i].errs) == 0;
    }
    if (json_array_size(in->load_errors) > 0) {
        if (json_array_extend(objects, (json_t *)in->load_errors)) {
            rc = -ENOMEM;
            goto out;
        }
        all_valid = 0;
    }
    *ret_report = json_pack("{s:b, s:O}", "valid", all_valid, "objects", objects);
    if (!*ret_report) {
        rc = -ENOMEM;
        goto out;
    }
    if (ret_clusters) {
        *ret_clusters = clusters;
        clusters = NULL;
    }
out:
    for (size_t i = 0; objs && i < n; i++) {
        json_decref(objs[i].obj);
        spec_errors_fini(&objs[i].errs);
    }
    core_free(objs);
    json_decref(objects);
    json_decref(clusters);
    return rc;
}
