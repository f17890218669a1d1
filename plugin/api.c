/* The hooks: request documents in, result documents out (schemas in docs/abi.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "spec/load.h"
#include "spec/spec.h"
#include "api.h"

void api_request_fini(struct request *r)
{
    json_decref(r->root);
    json_decref(r->docs);
    json_decref(r->sources);
    json_decref(r->load_errors);
    json_decref(r->previous);
}

/* Write a result document with an error and return `code`. `message` may be cut user text. */
int32_t api_fail(int32_t code, char *message, char **ret_result, size_t *ret_len)
{
    if (message)
        core_utf8_sanitize(message);
    json_t *doc = json_object();
    if (doc) {
        core_result_set_error(doc, code, message);
        if (core_result_dump(doc, ret_result, ret_len) != 0) {
            *ret_result = NULL;
            *ret_len = 0;
        }
        json_decref(doc);
    }
    return code;
}

int32_t api_finish(json_t *doc, int32_t code, char **ret_result, size_t *ret_len)
{
    if (!doc)
        return MGO_ENOMEM;
    if (code != MGO_OK && !json_object_get(doc, "error"))
        core_result_set_error(doc, code, NULL);
    int rc = core_result_dump(doc, ret_result, ret_len);
    json_decref(doc);
    return rc ? MGO_ENOMEM : code;
}

static json_t *load_error_report(const struct spec_load_error *e, const json_t *source,
                                 size_t document)
{
    char reason[320];
    (void)snprintf(reason, sizeof(reason), "line %zu, column %zu: %s", e->line, e->column,
                   e->message);
    return json_pack("{s:I, s:O?, s:n, s:n, s:n, s:n, s:b, s:b, s:[{s:s, s:s, s:I, s:I}], s:[]}",
                     "document", (json_int_t)document, "source", source, "kind", "apiVersion",
                     "name", "namespace", "valid", 0, "skipped", 0, "errors", "path", "", "reason",
                     reason, "line", (json_int_t)e->line, "column", (json_int_t)e->column,
                     "warnings");
}

/* Load one manifest text into documents appended to r->docs, each tagged with `source`. */
static int load_text(const json_t *text, const json_t *source, struct request *r)
{
    struct spec_load_error err;
    json_t *loaded = NULL;
    size_t first = json_array_size(r->docs);
    int rc = spec_load(json_string_value(text), json_string_length(text), &loaded, &err);
    size_t i;
    json_t *d;

    if (rc == -ENOMEM)
        return rc;
    json_array_foreach (loaded, i, d)
        if (json_array_append(r->docs, d) ||
            json_array_append_new(r->sources, source ? json_incref((json_t *)source) : json_null()))
            goto oom;
    if (rc == -EINVAL) {
        json_t *rep = load_error_report(&err, source, first + json_array_size(loaded));
        if (!rep || json_array_append_new(r->load_errors, rep))
            goto oom;
    }
    json_decref(loaded);
    return 0;
oom:
    json_decref(loaded);
    return -ENOMEM;
}

/* "manifests" is a text, or an array of {"source": name, "text": text}. */
static int manifests_valid(const json_t *m)
{
    size_t i;
    json_t *e;
    if (json_is_string(m))
        return 1;
    if (!json_is_array(m))
        return 0;
    json_array_foreach ((json_t *)m, i, e)
        if (!json_is_object(e) || !json_is_string(json_object_get(e, "text")) ||
            (json_object_get(e, "source") && !json_is_string(json_object_get(e, "source"))))
            return 0;
    return 1;
}

/* Parse the request; on invalid input writes the message into msg and returns MGO_EINVAL. */
int32_t api_request_parse(const char *request, size_t len, struct request *r, char *msg,
                          size_t msg_size)
{
    json_error_t jerr;

    memset(r, 0, sizeof(*r));
    r->root = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r->root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return MGO_ENOMEM;
        (void)snprintf(msg, msg_size, "request: invalid JSON at line %d, column %d: %s", jerr.line,
                       jerr.column, jerr.text);
        return MGO_EINVAL;
    }
    if (!json_is_object(r->root)) {
        (void)snprintf(msg, msg_size, "request: must be a JSON object");
        return MGO_EINVAL;
    }
    const json_t *manifests = json_object_get(r->root, "manifests");
    const json_t *objects = json_object_get(r->root, "objects");
    const json_t *previous = json_object_get(r->root, "previous");
    const json_t *ns = json_object_get(r->root, "namespace");
    if ((manifests && !manifests_valid(manifests)) || (objects && !json_is_array(objects)) ||
        (ns && !json_is_string(ns)) ||
        (previous && !json_is_object(previous) && !json_is_string(previous))) {
        (void)snprintf(msg, msg_size,
                       "request: \"manifests\" must be a string or an array of {\"source\", "
                       "\"text\"}, \"objects\" an array, "
                       "\"namespace\" a string and \"previous\" an object or a string");
        return MGO_EINVAL;
    }
    if (!manifests && !objects) {
        (void)snprintf(msg, msg_size, "request: give \"manifests\" (text) or \"objects\"");
        return MGO_EINVAL;
    }
    r->ns = ns && json_string_length(ns) > 0 ? json_string_value(ns) : "default";
    r->docs = json_array();
    r->sources = json_array();
    r->load_errors = json_array();
    if (!r->docs || !r->sources || !r->load_errors)
        return MGO_ENOMEM;
    if (json_is_string(manifests) && load_text(manifests, NULL, r))
        return MGO_ENOMEM;
    size_t i;
    json_t *e;
    json_array_foreach ((json_t *)manifests, i, e)
        if (load_text(json_object_get(e, "text"), json_object_get(e, "source"), r))
            return MGO_ENOMEM;
    json_array_foreach ((json_t *)objects, i, e)
        if (json_array_append(r->docs, e) || json_array_append_new(r->sources, json_null()))
            return MGO_ENOMEM;
    if (json_is_string(previous)) {
        struct spec_load_error perr;
        json_t *pdocs = NULL;
        int rc =
            spec_load(json_string_value(previous), json_string_length(previous), &pdocs, &perr);
        if (rc == -ENOMEM)
            return MGO_ENOMEM;
        if (rc == -EINVAL || json_array_size(pdocs) != 1) {
            (void)snprintf(msg, msg_size, "request: \"previous\" must hold exactly one object (%s)",
                           rc ? perr.message : "document count");
            json_decref(pdocs);
            return MGO_EINVAL;
        }
        r->previous = json_incref(json_array_get(pdocs, 0));
        json_decref(pdocs);
    } else if (previous) {
        r->previous = json_incref((json_t *)previous);
    }
    return MGO_OK;
}

int32_t api_evaluate(const mgo_plugin *p, struct request *r, json_t **ret_report,
                     json_t **ret_clusters)
{
    struct spec_input in = {
        .docs = r->docs,
        .default_ns = r->ns,
        .previous = r->previous,
        .sources = r->sources,
        .load_errors = r->load_errors,
    };
    return spec_evaluate(&in, p->regex_cache, ret_report, ret_clusters) ? MGO_ENOMEM : MGO_OK;
}

static int32_t do_validate(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                           size_t *ret_len)
{
    struct request r;
    char msg[512] = "";
    json_t *report = NULL;
    int32_t rc = api_request_parse(request, len, &r, msg, sizeof(msg));

    if (rc == MGO_EINVAL) {
        api_request_fini(&r);
        return api_fail(rc, msg, ret_result, ret_len);
    }
    if (rc == MGO_OK)
        rc = api_evaluate(p, &r, &report, NULL);
    api_request_fini(&r);
    if (rc != MGO_OK)
        return rc;
    int valid = json_is_true(json_object_get(report, "valid"));
    core_log(MGO_LOG_DEBUG, "validate: %zu object(s), %s",
             json_array_size(json_object_get(report, "objects")), valid ? "valid" : "invalid");
    return api_finish(report, valid ? MGO_OK : MGO_EINVAL, ret_result, ret_len);
}

/* Pick the cluster the reconcile request is about. */
const json_t *api_pick_cluster(const json_t *clusters, const json_t *report, const char *name,
                               char *msg, size_t msg_size)
{
    size_t i, total = 0;
    json_t *o;

    json_array_foreach (json_object_get(report, "objects"), i, o)
        if (json_is_string(json_object_get(o, "kind")) &&
            strcmp(json_string_value(json_object_get(o, "kind")), "MultigresCluster") == 0 &&
            (!name || (json_is_string(json_object_get(o, "name")) &&
                       strcmp(json_string_value(json_object_get(o, "name")), name) == 0)))
            total++;
    if (total == 0) {
        (void)snprintf(msg, msg_size,
                       name ? "request: no MultigresCluster named \"%s\""
                            : "request: no MultigresCluster in the request%s",
                       name ? name : "");
        return NULL;
    }
    if (!name && total > 1) {
        (void)snprintf(msg, msg_size,
                       "request: %zu MultigresClusters given; name one with \"cluster\"", total);
        return NULL;
    }
    json_array_foreach ((json_t *)clusters, i, o)
        if (!name || strcmp(json_string_value(json_object_get(o, "name")), name) == 0)
            return o;
    return NULL; /* present but invalid: the report says why */
}

int32_t api_run_hook(hook_fn fn, mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len)
{
    char *out = NULL;
    size_t out_len = 0;

    if (ret_result)
        *ret_result = NULL;
    if (ret_len)
        *ret_len = 0;
    if (!p || !ret_result || !ret_len || (!request && len > 0))
        return MGO_EARG;
    struct core_scope scope;
    core_enter(p, &scope);
    int32_t rc = fn(p, request ? request : "", len, &out, &out_len);
    if (core_allocation_failed()) {
        /* Whatever was concluded may rest on input the JSON library silently dropped. */
        mgo_free(out);
        out = NULL;
        out_len = 0;
        rc = MGO_ENOMEM;
    }
    core_leave(&scope);
    *ret_result = out;
    *ret_len = out_len;
    return rc;
}

MGO_API int32_t mgo_validate(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(do_validate, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_reconcile(mgo_plugin *plugin, const char *request, size_t request_len,
                              char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_reconcile, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_topology(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_topology, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_drain(mgo_plugin *plugin, const char *request, size_t request_len,
                          char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_drain, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_observe(mgo_plugin *plugin, const char *request, size_t request_len,
                            char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_observe, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_scale(mgo_plugin *plugin, const char *request, size_t request_len,
                          char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_scale, plugin, request, request_len, ret_result, ret_result_len);
}

MGO_API int32_t mgo_converge(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len)
{
    return api_run_hook(api_converge, plugin, request, request_len, ret_result, ret_result_len);
}

int api_deadline_ms(const json_t *req, const char *key, int64_t dflt, int64_t *ret, char *msg,
                    size_t msg_size)
{
    const json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v)) {
        *ret = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > API_MAX_DEADLINE_MS) {
        (void)snprintf(msg, msg_size, "request: \"%s\" must be an integer from 1 to %d", key,
                       API_MAX_DEADLINE_MS);
        return -EINVAL;
    }
    *ret = json_integer_value(v);
    return 0;
}

const json_t *api_opt(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

int api_known_drain_state(const char *d)
{
    return strcmp(d, "requested") == 0 || strcmp(d, "draining") == 0 ||
           strcmp(d, "acknowledged") == 0 || strcmp(d, "ready-for-deletion") == 0;
}

int api_valid_node_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    /* "*" would be read as a wildcard in synchronous_standby_names, quoted or not */
    if (len == 0 || len > 63 || strcmp(name, "*") == 0)
        return 0;
    for (; *name; name++)
        if (*name <= ' ' || *name > '~')
            return 0;
    return 1;
}

int64_t api_now_ms(const mgo_plugin *p)
{
    struct timespec ts;
    if (p->host.now_ms)
        return p->host.now_ms(p->host.user);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
