/* Paginated LIST (limit + continue), starting over when a continue token expires. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

#define MAX_RESTARTS 3

void kc_list_fini(struct kc_list *l)
{
    if (!l)
        return;
    json_decref(l->items);
    free(l->resource_version);
    memset(l, 0, sizeof(*l));
}

/* The path of one page: the caller's selectors and limit; resourceVersion on page 1 only (the
 * continue token holds it, and the server refuses both together). */
static int page_path(const char *base, const struct kc_list_options *o, int64_t limit,
                     const char *cont, char **ret)
{
    char *path = strdup(base), num[32];
    int rc;

    if (!path)
        return -ENOMEM;
    (void)snprintf(num, sizeof(num), "%" PRId64, limit);
    if ((rc = kc_query_add(&path, "limit", num)) < 0 ||
        (rc = kc_query_add(&path, "labelSelector", o->label_selector)) < 0 ||
        (rc = kc_query_add(&path, "fieldSelector", o->field_selector)) < 0)
        goto fail;
    if (cont)
        rc = kc_query_add(&path, "continue", cont);
    else if (o->resource_version && o->resource_version[0])
        rc = kc_query_add(&path, "resourceVersion", o->resource_version);
    if (rc < 0)
        goto fail;
    *ret = path;
    return 0;
fail:
    free(path);
    return rc;
}

/* Fetch every page once. -ESTALE: a continue request answered 410 (c->status has it). */
static int list_pass(struct kc_client *c, const char *base, const struct kc_list_options *o,
                     int64_t limit, struct kc_list *acc)
{
    char *cont = NULL, *path = NULL;
    json_t *page = NULL;
    unsigned n = 0;
    int rc = 0;

    json_array_clear(acc->items);
    for (;;) {
        struct kc_http req = {.method = "GET", .timeout_ms = o->timeout_ms};
        const json_t *meta, *items, *rv, *next;

        if ((rc = page_path(base, o, limit, cont, &path)) < 0) {
            rc = kc_fail(c, rc, "list %.300s: out of memory", base);
            break;
        }
        req.path = path;
        rc = kc_do(c, &req, &page);
        if (rc == -EREMOTEIO && cont && kc_status_is_expired(&c->status)) {
            rc = -ESTALE;
            break;
        }
        if (rc < 0)
            break;
        acc->pages++;
        n++;
        meta = json_object_get(page, "metadata");
        items = json_object_get(page, "items");
        rv = json_object_get(meta, "resourceVersion");
        next = json_object_get(meta, "continue");
        if (!json_is_object(page) || (items && !json_is_array(items) && !json_is_null(items)) ||
            !json_is_string(rv)) {
            rc = kc_fail(c, -EPROTO,
                         "list %.300s: page %u is not a list (no items array or "
                         "metadata.resourceVersion)",
                         base, n);
            break;
        }
        if (json_is_array(items) && json_array_extend(acc->items, (json_t *)items) < 0) {
            rc = kc_fail(c, -ENOMEM, "list %.300s: out of memory", base);
            break;
        }
        free(acc->resource_version);
        if (!(acc->resource_version = strdup(json_string_value(rv)))) {
            rc = kc_fail(c, -ENOMEM, "list %.300s: out of memory", base);
            break;
        }
        if (o->page_fn && o->page_fn(o->page_ctx, n, page) != 0) {
            rc = kc_fail(c, -ECANCELED, "list %.300s: stopped after page %u", base, n);
            break;
        }
        free(cont);
        cont = NULL;
        if (!json_is_string(next) || json_string_length(next) == 0)
            break; /* the last page */
        if (!(cont = strdup(json_string_value(next)))) {
            rc = kc_fail(c, -ENOMEM, "list %.300s: out of memory", base);
            break;
        }
        json_decref(page);
        page = NULL;
        free(path);
        path = NULL;
    }
    json_decref(page);
    free(path);
    free(cont);
    return rc;
}

int kc_list(struct kc_client *c, const struct kc_resource *r, const char *ns,
            const struct kc_list_options *opts, struct kc_list *out)
{
    static const struct kc_list_options none = {0};
    const struct kc_list_options *o = opts ? opts : &none;
    struct kc_list acc = {0};
    int64_t limit = o->limit > 0 ? o->limit : KC_DEFAULT_PAGE_SIZE;
    char *base = NULL;
    int rc;

    if (!c || !out)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (o->limit < 0 || o->timeout_ms < 0) {
        rc = kc_fail(c, -EINVAL, "list: negative limit or timeout");
        goto out;
    }
    if ((rc = kc_path(r, ns, NULL, NULL, &base)) < 0) {
        rc = kc_fail(c, rc, "list %.100s: bad resource or namespace",
                     r && r->plural ? r->plural : "(no resource)");
        goto out;
    }
    if (!(acc.items = json_array())) {
        rc = kc_fail(c, -ENOMEM, "list %.300s: out of memory", base);
        goto out;
    }
    for (;;) {
        rc = list_pass(c, base, o, limit, &acc);
        if (rc != -ESTALE)
            break;
        if (acc.restarts == MAX_RESTARTS) {
            rc = -EREMOTEIO; /* c->status and c->error describe the last 410 */
            break;
        }
        acc.restarts++;
    }
    if (rc == 0) {
        *out = acc;
        memset(&acc, 0, sizeof(acc));
        kc_status_fini(&c->status);
        c->status.http_code = c->status.code = 200;
        c->error[0] = '\0';
    }
out:
    kc_list_fini(&acc);
    free(base);
    kc_call_end(c);
    return rc;
}
