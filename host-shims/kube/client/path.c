/* Paths of collections and objects, and query strings. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

/* A namespace or name that routes where it says: client-go's IsValidPathSegmentName. */
static bool valid_segment(const char *s)
{
    return s && s[0] && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/') &&
           !strchr(s, '%');
}

/* group, version and plural come from the program, not from the server: letters, digits, '.',
 * '-' only, so they need no escaping */
static bool valid_token(const char *s)
{
    if (!s || !s[0])
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '-'))
            return false;
    return true;
}

int kc_path(const struct kc_resource *r, const char *ns, const char *name, const char *subresource,
            char **ret)
{
    struct kc_buf b = {0};
    int rc;

    if (!r || !ret || !valid_token(r->version) || !valid_token(r->plural) ||
        (r->group && r->group[0] && !valid_token(r->group)))
        return -EINVAL;
    if (ns && (!r->namespaced || !valid_segment(ns)))
        return -EINVAL;
    if (r->namespaced && !ns && name) /* an object of a namespaced kind needs its namespace */
        return -EINVAL;
    if (name && !valid_segment(name))
        return -EINVAL;
    if (subresource && (!name || !valid_token(subresource)))
        return -EINVAL;

    if (r->group && r->group[0])
        rc = kc_buf_append_str(&b, "/apis/");
    else
        rc = kc_buf_append_str(&b, "/api");
    if (rc == 0 && r->group && r->group[0])
        rc = kc_buf_append_str(&b, r->group);
    if (rc == 0)
        rc = kc_buf_append_str(&b, "/");
    if (rc == 0)
        rc = kc_buf_append_str(&b, r->version);
    if (rc == 0 && ns) {
        rc = kc_buf_append_str(&b, "/namespaces/");
        if (rc == 0)
            rc = kc_buf_append_escaped(&b, ns);
    }
    if (rc == 0)
        rc = kc_buf_append_str(&b, "/");
    if (rc == 0)
        rc = kc_buf_append_str(&b, r->plural);
    if (rc == 0 && name) {
        rc = kc_buf_append_str(&b, "/");
        if (rc == 0)
            rc = kc_buf_append_escaped(&b, name);
    }
    if (rc == 0 && subresource) {
        rc = kc_buf_append_str(&b, "/");
        if (rc == 0)
            rc = kc_buf_append_str(&b, subresource);
    }
    if (rc < 0) {
        kc_buf_fini(&b);
        return rc;
    }
    *ret = kc_buf_steal(&b);
    return 0;
}

int kc_query_add(char **path, const char *key, const char *value)
{
    struct kc_buf b = {0};
    int rc;

    if (!path || !*path || !key || !key[0])
        return -EINVAL;
    if (!value)
        return 0;
    if ((rc = kc_buf_append_str(&b, *path)) < 0 ||
        (rc = kc_buf_append_str(&b, strchr(*path, '?') ? "&" : "?")) < 0 ||
        (rc = kc_buf_append_escaped(&b, key)) < 0 || (rc = kc_buf_append_str(&b, "=")) < 0 ||
        (rc = kc_buf_append_escaped(&b, value)) < 0) {
        kc_buf_fini(&b);
        return rc;
    }
    free(*path);
    *path = kc_buf_steal(&b);
    return 0;
}
