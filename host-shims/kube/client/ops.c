/* Reads and writes of single objects: get, create, replace, status, patch, apply, delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

/* metadata.<key> of obj when it is a non-empty string, else NULL. */
static const char *meta_string(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(json_object_get(obj, "metadata"), key);

    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* The namespace of an object call: the caller's, else the object's own (namespaced kinds). */
static const char *object_ns(const struct kc_resource *r, const char *ns, const json_t *obj)
{
    if (ns || !r->namespaced)
        return ns;
    return meta_string(obj, "namespace");
}

/* Build the path, or fail the call with a message naming what was wrong. */
static int path_for(struct kc_client *c, const char *what, const struct kc_resource *r,
                    const char *ns, const char *name, const char *sub, char **ret)
{
    int rc = kc_path(r, ns, name, sub, ret);

    if (rc == -EINVAL)
        return kc_fail(c, rc,
                       "%s %.100s %.253s: bad resource, namespace or name (a namespaced kind "
                       "needs a namespace, a cluster-scoped one none; names may not be empty, "
                       "\".\", \"..\" or hold '/' or '%%')",
                       what, r && r->plural ? r->plural : "(no resource)", name ? name : "");
    if (rc < 0)
        return kc_fail(c, rc, "%s: out of memory", what);
    return 0;
}

/* Send a request whose body is `body` serialised (NULL: none). */
static int send_json(struct kc_client *c, const char *method, const char *path,
                     const char *content_type, const json_t *body, int64_t timeout_ms, json_t **ret)
{
    struct kc_http req = {
        .method = method, .path = path, .content_type = content_type, .timeout_ms = timeout_ms};
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (timeout_ms < 0)
        return kc_fail(c, -EINVAL, "%s %.300s: negative timeout", method, path);
    if (body && kc_dump(body, &text, &len) < 0)
        return kc_fail(c, -ENOMEM, "%s %.300s: out of memory", method, path);
    req.body = text;
    req.body_len = len;
    rc = kc_do(c, &req, ret);
    free(text);
    return rc;
}

int kc_get(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
           int64_t timeout_ms, json_t **ret)
{
    char *path = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!name)
        rc = kc_fail(c, -EINVAL, "get: no name");
    if (rc == 0 && (rc = path_for(c, "get", r, ns, name, NULL, &path)) == 0)
        rc = send_json(c, "GET", path, NULL, NULL, timeout_ms, ret);
    free(path);
    kc_call_end(c);
    return rc;
}

int kc_create(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
              int64_t timeout_ms, json_t **ret)
{
    char *path = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!json_is_object(obj))
        rc = kc_fail(c, -EINVAL, "create: the object is not a JSON object");
    else if (r && r->namespaced && !object_ns(r, ns, obj))
        /* without one the path would be the all-namespaces collection, which takes no POST */
        rc = kc_fail(c, -EINVAL,
                     "create %.100s %.253s: the kind is namespaced: give a namespace (the "
                     "argument or metadata.namespace)",
                     r->plural ? r->plural : "(no resource)",
                     meta_string(obj, "name") ? meta_string(obj, "name") : "");
    if (rc == 0 && (rc = path_for(c, "create", r, object_ns(r, ns, obj), NULL, NULL, &path)) == 0)
        rc = send_json(c, "POST", path, NULL, obj, timeout_ms, ret);
    free(path);
    kc_call_end(c);
    return rc;
}

/* PUT obj to itself or to its subresource; require_rv: metadata.resourceVersion must be set. */
static int put_object(struct kc_client *c, const char *what, const struct kc_resource *r,
                      const char *ns, const json_t *obj, const char *sub, bool require_rv,
                      int64_t timeout_ms, json_t **ret)
{
    const char *name = json_is_object(obj) ? meta_string(obj, "name") : NULL;
    char *path = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!name)
        rc = kc_fail(c, -EINVAL, "%s: the object has no metadata.name", what);
    else if (require_rv && !meta_string(obj, "resourceVersion"))
        rc = kc_fail(c, -EINVAL, "%s %.253s: the object has no metadata.resourceVersion", what,
                     name);
    if (rc == 0 && (rc = path_for(c, what, r, object_ns(r, ns, obj), name, sub, &path)) == 0)
        rc = send_json(c, "PUT", path, NULL, obj, timeout_ms, ret);
    free(path);
    kc_call_end(c);
    return rc;
}

int kc_replace(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
               int64_t timeout_ms, json_t **ret)
{
    return put_object(c, "replace", r, ns, obj, NULL, false, timeout_ms, ret);
}

int kc_update_status(struct kc_client *c, const struct kc_resource *r, const char *ns,
                     const json_t *obj, int64_t timeout_ms, json_t **ret)
{
    return put_object(c, "update status", r, ns, obj, "status", true, timeout_ms, ret);
}

static const char *patch_content_type(enum kc_patch_type type)
{
    switch (type) {
    case KC_PATCH_MERGE:
        return "application/merge-patch+json";
    case KC_PATCH_JSON:
        return "application/json-patch+json";
    case KC_PATCH_STRATEGIC:
        return "application/strategic-merge-patch+json";
    case KC_PATCH_APPLY:
        return "application/apply-patch+yaml";
    }
    return NULL;
}

int kc_patch(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
             const char *subresource, enum kc_patch_type type, const json_t *patch,
             int64_t timeout_ms, json_t **ret)
{
    const char *ct = patch_content_type(type);
    char *path = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!ct || !name || !patch)
        rc = kc_fail(c, -EINVAL, "patch: a name, a patch and a known patch type are needed");
    if (rc == 0 && (rc = path_for(c, "patch", r, ns, name, subresource, &path)) == 0)
        rc = send_json(c, "PATCH", path, ct, patch, timeout_ms, ret);
    free(path);
    kc_call_end(c);
    return rc;
}

static bool valid_field_manager(const char *m)
{
    size_t n = strlen(m);

    if (n == 0 || n > 128)
        return false;
    for (; *m; m++)
        if ((unsigned char)*m < 0x20 || (unsigned char)*m > 0x7e)
            return false;
    return true;
}

int kc_apply(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
             const struct kc_apply_options *opts, int64_t timeout_ms, json_t **ret)
{
    const char *manager = opts && opts->field_manager ? opts->field_manager : KC_FIELD_MANAGER;
    const char *name = json_is_object(obj) ? meta_string(obj, "name") : NULL;
    char *path = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!name || !json_is_string(json_object_get(obj, "apiVersion")) ||
        !json_is_string(json_object_get(obj, "kind")))
        rc = kc_fail(c, -EINVAL, "apply: the object needs apiVersion, kind and metadata.name");
    else if (!valid_field_manager(manager))
        rc = kc_fail(c, -EINVAL,
                     "apply %.253s: the field manager must be 1 to 128 printable "
                     "characters",
                     name);
    if (rc == 0)
        rc = path_for(c, "apply", r, object_ns(r, ns, obj), name, opts ? opts->subresource : NULL,
                      &path);
    if (rc == 0 && ((rc = kc_query_add(&path, "fieldManager", manager)) < 0 ||
                    (opts && opts->force && (rc = kc_query_add(&path, "force", "true")) < 0)))
        rc = kc_fail(c, rc, "apply %.253s: out of memory", name);
    if (rc == 0)
        rc = send_json(c, "PATCH", path, "application/apply-patch+yaml", obj, timeout_ms, ret);
    free(path);
    kc_call_end(c);
    return rc;
}

/* The DeleteOptions body into *ret. Its strings were checked to be UTF-8 (kc_delete), so
 * every failure here is -ENOMEM. */
static int delete_body(const struct kc_delete_options *o, json_t **ret)
{
    json_t *body = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
    json_t *pre = NULL;
    int rc;

    if (!body)
        goto nomem;
    if (o && (o->uid || o->resource_version)) {
        /* complete before it is handed over: the body owns it after that */
        if (!(pre = json_object()) ||
            (o->uid && json_object_set_new(pre, "uid", json_string(o->uid)) < 0) ||
            (o->resource_version &&
             json_object_set_new(pre, "resourceVersion", json_string(o->resource_version)) < 0))
            goto nomem;
        rc = json_object_set_new(body, "preconditions", pre);
        pre = NULL; /* the body's now, or already released by jansson on failure */
        if (rc < 0)
            goto nomem;
    }
    if (o && o->propagation_policy &&
        json_object_set_new(body, "propagationPolicy", json_string(o->propagation_policy)) < 0)
        goto nomem;
    if (o && o->set_grace_period &&
        json_object_set_new(body, "gracePeriodSeconds", json_integer(o->grace_period_seconds)) < 0)
        goto nomem;
    *ret = body;
    return 0;
nomem:
    json_decref(pre);
    json_decref(body);
    return -ENOMEM;
}

/* The options that become JSON strings must be UTF-8 (jansson refuses anything else): -EINVAL
 * naming the field, not an out-of-memory. */
static int check_delete_strings(struct kc_client *c, const char *name,
                                const struct kc_delete_options *o)
{
    const struct {
        const char *field, *value;
    } strings[] = {{"preconditions.uid", o->uid},
                   {"preconditions.resourceVersion", o->resource_version},
                   {"propagationPolicy", o->propagation_policy}};

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if (strings[i].value && !kc_utf8_valid(strings[i].value, strlen(strings[i].value)))
            return kc_fail(c, -EINVAL, "delete %.253s: %s is not valid UTF-8", name,
                           strings[i].field);
    return 0;
}

int kc_delete(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
              const struct kc_delete_options *opts, int64_t timeout_ms, json_t **ret)
{
    char *path = NULL;
    json_t *body = NULL;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!name)
        rc = kc_fail(c, -EINVAL, "delete: no name");
    else if (opts && opts->set_grace_period && opts->grace_period_seconds < 0)
        rc = kc_fail(c, -EINVAL, "delete %.253s: negative grace period", name);
    if (rc == 0 && opts)
        rc = check_delete_strings(c, name, opts);
    if (rc == 0)
        rc = path_for(c, "delete", r, ns, name, NULL, &path);
    if (rc == 0 && delete_body(opts, &body) < 0)
        rc = kc_fail(c, -ENOMEM, "delete %.253s: out of memory", name);
    if (rc == 0)
        rc = send_json(c, "DELETE", path, NULL, body, timeout_ms, ret);
    json_decref(body);
    free(path);
    kc_call_end(c);
    return rc;
}
