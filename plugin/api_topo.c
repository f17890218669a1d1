/* The topology hook: registration, pruning, poolers and dumps in a cluster's etcd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "spec/spec.h"
#include "topo/topo.h"

/* How long topology operations may take when the request names no deadline (the reference's
 * topology operation timeout). */
#define DEFAULT_DEADLINE_MS 20000

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Endpoints as etcd URLs: resolved through the host, "http://" added when there is no scheme. */
static int endpoints_from(const mgo_plugin *p, const json_t *addresses, int64_t deadline,
                          json_t **ret, char *msg, size_t msg_size)
{
    json_t *out = json_array();
    size_t i;
    json_t *a;
    if (!out)
        return MGO_ENOMEM;
    json_array_foreach (addresses, i, a) {
        char *resolved = NULL;
        if (!json_is_string(a))
            continue;
        int32_t rc =
            core_host_resolve(p, json_string_value(a), topo_remaining_ms(deadline), &resolved);
        if (rc != MGO_OK) {
            (void)snprintf(msg, msg_size, "topology: cannot resolve %s: %s", json_string_value(a),
                           mgo_strerror(rc));
            json_decref(out);
            return rc == MGO_ENOTFOUND ? MGO_EINVAL : rc;
        }
        int has_scheme =
            strncmp(resolved, "http://", 7) == 0 || strncmp(resolved, "https://", 8) == 0;
        char url[1024];
        int n = snprintf(url, sizeof(url), "%s%s", has_scheme ? "" : "http://", resolved);
        core_free(resolved);
        if (n < 0 || (size_t)n >= sizeof(url)) {
            (void)snprintf(msg, msg_size, "topology: the address of %s is too long",
                           json_string_value(a));
            json_decref(out);
            return MGO_EINVAL;
        }
        if (json_array_append_new(out, json_string(url))) {
            json_decref(out);
            return MGO_ENOMEM;
        }
    }
    if (json_array_size(out) == 0) {
        (void)snprintf(msg, msg_size, "topology: no etcd endpoint");
        json_decref(out);
        return MGO_EINVAL;
    }
    *ret = out;
    return MGO_OK;
}

/* TLS material of an external topology from its secrets (ca.crt; tls.crt and tls.key). */
struct tls_material {
    struct etcd_tls tls;
    char *ca, *cert, *key;
    size_t ca_len, cert_len, key_len;
};

static void tls_fini(struct tls_material *t)
{
    core_secret_free(t->ca, t->ca_len);
    core_secret_free(t->cert, t->cert_len);
    core_secret_free(t->key, t->key_len);
}

static int32_t tls_from(const mgo_plugin *p, const json_t *external, const char *ns,
                        int64_t deadline, struct tls_material *t, char *msg, size_t msg_size)
{
    const char *ca = str(external, "caSecret");
    const char *client = str(external, "clientCertSecret");
    int32_t rc = MGO_OK;
    memset(t, 0, sizeof(*t));
    if (ca && *ca)
        rc = core_host_secret(p, ns, ca, "ca.crt", topo_remaining_ms(deadline), &t->ca, &t->ca_len);
    if (rc == MGO_OK && client && *client) {
        rc = core_host_secret(p, ns, client, "tls.crt", topo_remaining_ms(deadline), &t->cert,
                              &t->cert_len);
        if (rc == MGO_OK)
            rc = core_host_secret(p, ns, client, "tls.key", topo_remaining_ms(deadline), &t->key,
                                  &t->key_len);
    }
    if (rc != MGO_OK) {
        (void)snprintf(msg, msg_size, "topology: cannot read the TLS secrets (%s, %s): %s",
                       ca ? ca : "-", client ? client : "-", mgo_strerror(rc));
        tls_fini(t);
        return rc == MGO_ENOTFOUND ? MGO_EINVAL : rc;
    }
    t->tls = (struct etcd_tls){t->ca, t->ca_len, t->cert, t->cert_len, t->key, t->key_len};
    return MGO_OK;
}

static int32_t client_for(const json_t *endpoints, const struct etcd_tls *tls,
                          struct etcd_client **ret, char *msg, size_t msg_size)
{
    size_t n = json_array_size(endpoints);
    const char **list = core_calloc(n ? n : 1, sizeof(*list));
    if (!list)
        return MGO_ENOMEM;
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(endpoints, i));
    int rc = etcd_client_new(list, n, tls, ret);
    core_free(list);
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    if (rc) {
        /* Without libcurl this library cannot reach etcd at all: not a transient condition. */
        (void)snprintf(msg, msg_size, "topology: %s",
                       rc == -EAGAIN ? "libcurl.so.4 could not be loaded (install libcurl4)"
                                     : "bad etcd endpoint");
        return rc == -EAGAIN ? MGO_EUNSUPPORTED : MGO_EINVAL;
    }
    return MGO_OK;
}

/* An errno-style topo result as a status code. */
static int32_t status_of(int rc)
{
    switch (rc) {
    case 0:
        return MGO_OK;
    case -ENOMEM:
        return MGO_ENOMEM;
    case -EAGAIN:
    case -EBUSY:
        return MGO_EAGAIN;
    case -ENOENT:
        return MGO_ENOTFOUND;
    case -EINVAL:
        return MGO_EINVAL;
    case -EPROTO:
    default:
        return MGO_EAGAIN; /* etcd refused or returned garbage: not the caller's input */
    }
}

int32_t api_topo_client(const mgo_plugin *p, const json_t *endpoints, int64_t deadline,
                        struct etcd_client **ret, char *msg, size_t msg_size)
{
    json_t *urls = NULL;
    int32_t rc = endpoints_from(p, endpoints, deadline, &urls, msg, msg_size);
    if (rc == MGO_OK)
        rc = client_for(urls, NULL, ret, msg, msg_size);
    json_decref(urls);
    return rc;
}

/* The "etcd" override of a request: {"endpoints": [..], "root": ".."}. */
static int32_t override_client(const mgo_plugin *p, const json_t *req, int64_t deadline,
                               const char *default_root, struct etcd_client **ret,
                               const char **ret_root, char *msg, size_t msg_size)
{
    const json_t *etcd = json_object_get(req, "etcd");
    json_t *endpoints = NULL;
    if (!json_is_object(etcd) || !json_is_array(json_object_get(etcd, "endpoints"))) {
        (void)snprintf(msg, msg_size, "request: \"etcd\": {\"endpoints\": [..]} is required");
        return MGO_EINVAL;
    }
    int32_t rc =
        endpoints_from(p, json_object_get(etcd, "endpoints"), deadline, &endpoints, msg, msg_size);
    if (rc == MGO_OK)
        rc = client_for(endpoints, NULL, ret, msg, msg_size);
    json_decref(endpoints);
    *ret_root = str(etcd, "root") ? str(etcd, "root") : default_root;
    return rc;
}

int32_t api_topo_register(const mgo_plugin *p, const json_t *req, const json_t *chosen,
                          int64_t deadline, json_t **ret, char *msg, size_t msg_size)
{
    json_t *cells = NULL, *dbs = NULL, *global = NULL, *endpoints = NULL, *out = NULL;
    struct etcd_client *etcd = NULL;
    struct tls_material tls = {0};
    char err[512] = "";
    int32_t rc;
    const json_t *resolved = json_object_get(chosen, "resolved");
    int trc =
        topo_desired(resolved, str(chosen, "namespace"), &cells, &dbs, &global, err, sizeof(err));
    if (trc) {
        (void)snprintf(msg, msg_size, "topology: %s", err);
        rc = status_of(trc);
        goto done;
    }
    const char *root = str(global, "root");
    if (json_object_get(req, "etcd")) {
        /* Other endpoints for the same topology: the spec's root stays unless "root" is given. */
        rc = override_client(p, req, deadline, root, &etcd, &root, msg, msg_size);
    } else {
        const json_t *ext = json_object_get(
            json_object_get(json_object_get(resolved, "spec"), "globalTopoServer"), "external");
        const json_t *addrs = json_is_object(ext) ? json_object_get(ext, "endpoints")
                                                  : json_object_get(global, "addresses");
        rc = endpoints_from(p, addrs, deadline, &endpoints, msg, msg_size);
        if (rc == MGO_OK && json_is_object(ext))
            rc = tls_from(p, ext, str(chosen, "namespace"), deadline, &tls, msg, msg_size);
        if (rc == MGO_OK)
            rc = client_for(endpoints, json_is_object(ext) ? &tls.tls : NULL, &etcd, msg, msg_size);
    }
    if (rc != MGO_OK)
        goto done;
    json_t *cell_report = NULL, *db_report = NULL, *pruned = json_array();
    /* Databases first: a cell is pruned only after no database lists it any more. */
    trc = topo_register(etcd, root, TOPO_DATABASE, dbs, deadline, &db_report, err, sizeof(err));
    if (!trc)
        trc = topo_register(etcd, root, TOPO_CELL, cells, deadline, &cell_report, err, sizeof(err));
    const json_t *pruning = json_object_get(
        json_object_get(json_object_get(resolved, "spec"), "topologyPruning"), "enabled");
    if (!trc && !json_is_false(pruning) && pruned) {
        json_t *part = NULL;
        trc = topo_prune(etcd, root, TOPO_DATABASE, dbs, deadline, &part, err, sizeof(err));
        if (!trc && json_array_extend(pruned, part))
            trc = -ENOMEM;
        json_decref(part);
        part = NULL;
        /* Cells the host still drains (pending deletion) keep their record meanwhile. */
        json_t *keep = json_deep_copy(cells);
        size_t k;
        json_t *name;
        json_array_foreach (json_object_get(req, "keep_cells"), k, name)
            if (keep && json_is_string(name))
                /* a failure is an allocation failure: the hook then answers MGO_ENOMEM */
                (void)json_object_set_new(keep, json_string_value(name), json_true());
        if (!trc && !keep)
            trc = -ENOMEM;
        if (!trc)
            trc = topo_prune(etcd, root, TOPO_CELL, keep, deadline, &part, err, sizeof(err));
        json_decref(keep);
        if (!trc && json_array_extend(pruned, part))
            trc = -ENOMEM;
        json_decref(part);
    }
    if (trc) {
        (void)snprintf(msg, msg_size, "topology: %s", err[0] ? err : "operation failed");
        rc = status_of(trc);
        json_decref(cell_report);
        json_decref(db_report);
        json_decref(pruned);
        goto done;
    }
    out = json_pack("{s:s, s:o, s:o, s:o}", "root", root, "cells", cell_report, "databases",
                    db_report, "pruned", pruned ? pruned : json_array());
    rc = out ? MGO_OK : MGO_ENOMEM;
    *ret = out;
done:
    etcd_client_free(etcd);
    tls_fini(&tls);
    json_decref(cells);
    json_decref(dbs);
    json_decref(global);
    json_decref(endpoints);
    return rc;
}

static int32_t op_register(const mgo_plugin *p, const char *request, size_t len, const json_t *req,
                           int64_t deadline, json_t **ret, char *msg, size_t msg_size)
{
    struct request r;
    json_t *report = NULL, *clusters = NULL;
    int32_t rc = api_request_parse(request, len, &r, msg, msg_size);
    if (rc == MGO_OK)
        rc = api_evaluate(p, &r, &report, &clusters);
    if (rc == MGO_OK) {
        const json_t *chosen =
            api_pick_cluster(clusters, report, str(req, "cluster"), msg, msg_size);
        if (chosen) {
            rc = api_topo_register(p, req, chosen, deadline, ret, msg, msg_size);
        } else {
            /* Invalid input: the validation report says why. */
            *ret = report;
            report = NULL;
            if (!msg[0])
                (void)snprintf(msg, msg_size, "invalid cluster");
            rc = MGO_EINVAL;
        }
    }
    api_request_fini(&r);
    json_decref(report);
    json_decref(clusters);
    return rc;
}

static int32_t op_on_etcd(const mgo_plugin *p, const char *op, const json_t *req, int64_t deadline,
                          json_t **ret, char *msg, size_t msg_size)
{
    struct etcd_client *etcd = NULL;
    const char *root = NULL;
    char err[512] = "";
    int trc = 0;
    int32_t rc =
        override_client(p, req, deadline, "/multigres/global", &etcd, &root, msg, msg_size);
    if (rc != MGO_OK)
        return rc;
    const char *cell_root = str(req, "cell_root") ? str(req, "cell_root") : root;
    if (strcmp(op, "dump") == 0) {
        trc = topo_dump(etcd, root, deadline, ret, err, sizeof(err));
    } else if (strcmp(op, "list_poolers") == 0) {
        json_t *list = NULL;
        if (!str(req, "cell") || !str(req, "database") || !str(req, "table_group") ||
            !str(req, "shard")) {
            (void)snprintf(msg, msg_size,
                           "request: list_poolers needs \"cell\", \"database\", "
                           "\"table_group\" and \"shard\"");
            rc = MGO_EINVAL;
        } else {
            trc = topo_list_poolers(etcd, cell_root, str(req, "cell"), str(req, "database"),
                                    str(req, "table_group"), str(req, "shard"), deadline, &list,
                                    err, sizeof(err));
            if (!trc && !(*ret = json_pack("{s:o}", "poolers", list)))
                trc = -ENOMEM;
        }
    } else if (strcmp(op, "publish_pooler") == 0) {
        trc = topo_publish_pooler(etcd, cell_root, json_object_get(req, "pooler"), deadline, err,
                                  sizeof(err));
        if (!trc && !(*ret = json_object()))
            trc = -ENOMEM;
    } else if (strcmp(op, "mark_pooler_shutdown") == 0 || strcmp(op, "delete_pooler") == 0) {
        int changed = 0;
        if (!str(req, "cell") || !str(req, "name")) {
            (void)snprintf(msg, msg_size, "request: %s needs \"cell\" and \"name\"", op);
            rc = MGO_EINVAL;
        } else if (op[0] == 'm') {
            const char *reason = str(req, "reason") ? str(req, "reason") : "mgo: drained";
            trc = topo_mark_pooler_shutdown(
                etcd, cell_root, str(req, "cell"), str(req, "name"), reason,
                p->host.now_ms ? p->host.now_ms(p->host.user) : (int64_t)time(NULL) * 1000,
                deadline, &changed, err, sizeof(err));
        } else {
            trc = topo_delete_pooler(etcd, cell_root, str(req, "cell"), str(req, "name"), deadline,
                                     &changed, err, sizeof(err));
        }
        if (rc == MGO_OK && !trc && !(*ret = json_pack("{s:b}", "changed", changed)))
            trc = -ENOMEM;
    } else {
        (void)snprintf(msg, msg_size,
                       "request: op \"%.64s\" is not supported by this library (known: register, "
                       "dump, list_poolers, publish_pooler, mark_pooler_shutdown, delete_pooler)",
                       op);
        rc = MGO_EUNSUPPORTED;
    }
    if (trc) {
        (void)snprintf(msg, msg_size, "topology: %s", err[0] ? err : "operation failed");
        rc = status_of(trc);
    }
    etcd_client_free(etcd);
    return rc;
}

int32_t api_topology(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len)
{
    char msg[1024] = "";
    json_error_t jerr;
    json_t *out = NULL;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    int32_t rc;

    if (!req || !json_is_object(req) || !json_is_string(json_object_get(req, "op"))) {
        json_decref(req);
        if (!req && json_error_code(&jerr) == json_error_out_of_memory)
            return MGO_ENOMEM;
        (void)snprintf(msg, sizeof(msg), "request: a JSON object with an \"op\" is required");
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    int64_t timeout;
    if (api_deadline_ms(req, "deadline_ms", DEFAULT_DEADLINE_MS, &timeout, msg, sizeof(msg))) {
        json_decref(req);
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    int64_t deadline = topo_deadline_after(timeout);
    const char *op = str(req, "op");
    if (strcmp(op, "register") == 0)
        rc = op_register(p, request, len, req, deadline, &out, msg, sizeof(msg));
    else
        rc = op_on_etcd(p, op, req, deadline, &out, msg, sizeof(msg));
    json_decref(req);
    if (rc == MGO_ENOMEM) {
        json_decref(out);
        return rc;
    }
    if (!out)
        return api_fail(rc, msg, ret_result, ret_len);
    if (rc != MGO_OK) {
        core_utf8_sanitize(msg);
        core_result_set_error(out, rc, msg[0] ? msg : NULL);
    }
    return api_finish(out, rc, ret_result, ret_len);
}
