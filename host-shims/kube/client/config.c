/* Configuration: kubeconfig files (client-go's format and merge rule) and in-cluster. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

#define MAX_FILE_BYTES  (4u << 20) /* kubeconfig, CA, certificate, key */
#define MAX_TOKEN_BYTES (1u << 20)

/* One parsed kubeconfig file and the directory its relative names are relative to. */
struct doc {
    json_t *root;
    char *dir;        /* NULL: the current directory */
    const char *name; /* for messages */
};

struct docs {
    struct doc *v;
    size_t n;
};

static void docs_fini(struct docs *d)
{
    for (size_t i = 0; i < d->n; i++) {
        json_decref(d->v[i].root);
        free(d->v[i].dir);
    }
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

void kc_config_fini(struct kc_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->server);
    free(cfg->namespace);
    free(cfg->context);
    free(cfg->token);
    free(cfg->token_file);
    free(cfg->ca);
    free(cfg->client_cert);
    free(cfg->client_key);
    free(cfg->proxy_url);
    memset(cfg, 0, sizeof(*cfg));
}

/* ---- typed fields ---------------------------------------------------------------------------- */

/* A string field: absent or null leaves *ret NULL; another type is an error. */
static int field_string(const json_t *obj, const char *key, const char **ret, const char *where,
                        char *err, size_t err_len)
{
    const json_t *v = json_object_get(obj, key);

    *ret = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        kc_errf(err, err_len, "%s: %s must be a string", where, key);
        return -EINVAL;
    }
    *ret = json_string_value(v);
    return 0;
}

static int field_bool(const json_t *obj, const char *key, bool *ret, const char *where, char *err,
                      size_t err_len)
{
    const json_t *v = json_object_get(obj, key);

    *ret = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        kc_errf(err, err_len, "%s: %s must be true or false", where, key);
        return -EINVAL;
    }
    *ret = json_is_true(v);
    return 0;
}

/* A field counts as set when it holds something: not null, not "", not {} or []. */
static bool field_set(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return false;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_object(v))
        return json_object_size(v) > 0;
    if (json_is_array(v))
        return json_array_size(v) > 0;
    return true;
}

/* ---- lookups across files -------------------------------------------------------------------- */

/*
 * The entry named `name` in list `list` (clusters, users, contexts) of the first file that has
 * one: its inner object (`inner`: cluster, user, context) in *ret and the file in *ret_doc.
 * -ENOENT when none has it; -EINVAL when the entry is malformed.
 */
static int find_named(const struct docs *d, const char *list, const char *inner, const char *name,
                      const json_t **ret, const struct doc **ret_doc, char *err, size_t err_len)
{
    for (size_t i = 0; i < d->n; i++) {
        const json_t *arr = json_object_get(d->v[i].root, list);
        const json_t *entry;
        size_t j;

        if (!arr || json_is_null(arr))
            continue;
        if (!json_is_array(arr)) {
            kc_errf(err, err_len, "kubeconfig %s: %s must be a list", d->v[i].name, list);
            return -EINVAL;
        }
        json_array_foreach (arr, j, entry) {
            const json_t *n = json_object_get(entry, "name");
            const json_t *body;

            if (!json_is_string(n) || strcmp(json_string_value(n), name) != 0)
                continue;
            body = json_object_get(entry, inner);
            if (!json_is_object(body)) {
                kc_errf(err, err_len, "kubeconfig %s: %s[%zu] (\"%s\"): %s must be a mapping",
                        d->v[i].name, list, j, name, inner);
                return -EINVAL;
            }
            *ret = body;
            *ret_doc = &d->v[i];
            return 0;
        }
    }
    return -ENOENT;
}

static char *resolve_path(const struct doc *doc, const char *path)
{
    size_t n;
    char *out;

    if (path[0] == '/' || !doc->dir)
        return strdup(path);
    n = strlen(doc->dir) + 1 + strlen(path) + 1;
    out = malloc(n);
    if (out)
        (void)snprintf(out, n, "%s/%s", doc->dir, path); /* sized above */
    return out;
}

/* PEM from a *-data field (base64) or else a file field: data wins, as in client-go. */
static int read_pem(const struct doc *doc, const json_t *obj, const char *data_key,
                    const char *file_key, const char *where, unsigned char **ret, size_t *ret_len,
                    char *err, size_t err_len)
{
    const char *data, *file;
    char *path, msg[128];
    int rc;

    if ((rc = field_string(obj, data_key, &data, where, err, err_len)) < 0 ||
        (rc = field_string(obj, file_key, &file, where, err, err_len)) < 0)
        return rc;
    if (data && data[0]) {
        rc = kc_base64_decode(data, strlen(data), ret, ret_len);
        if (rc == -EINVAL)
            kc_errf(err, err_len, "%s: %s is not valid base64", where, data_key);
        else if (rc == 0 && *ret_len == 0) {
            free(*ret);
            *ret = NULL;
            kc_errf(err, err_len, "%s: %s is empty", where, data_key);
            rc = -EINVAL;
        }
        return rc;
    }
    if (!file || !file[0])
        return 0;
    if (!(path = resolve_path(doc, file)))
        return -ENOMEM;
    rc = kc_read_file(path, MAX_FILE_BYTES, ret, ret_len);
    if (rc < 0 && rc != -ENOMEM) {
        kc_errf(err, err_len, "%s: %s %s: %s", where, file_key, path,
                kc_strerror(-rc, msg, sizeof(msg)));
        rc = -EINVAL;
    } else if (rc == 0 && *ret_len == 0) {
        free(*ret);
        *ret = NULL;
        kc_errf(err, err_len, "%s: %s %s is empty", where, file_key, path);
        rc = -EINVAL;
    }
    free(path);
    return rc;
}

/* Read a token file now, to refuse a missing or empty one at load time. */
static int check_token_file(const char *path, char **ret_token, const char *where, char *err,
                            size_t err_len)
{
    unsigned char *data;
    size_t len;
    char msg[128];
    int rc = kc_read_file(path, MAX_TOKEN_BYTES, &data, &len);

    if (rc < 0) {
        if (rc != -ENOMEM) {
            kc_errf(err, err_len, "%s: token file %s: %s", where, path,
                    kc_strerror(-rc, msg, sizeof(msg)));
            rc = -EINVAL;
        }
        return rc;
    }
    rc = kc_token_from_bytes(data, len, ret_token);
    free(data);
    if (rc == -EINVAL)
        kc_errf(err, err_len, "%s: token file %s is empty or holds control characters", where,
                path);
    return rc;
}

/* The server URL: http(s)://, no whitespace or control characters, trailing '/' dropped. */
static int set_server(struct kc_config *cfg, const char *server, const char *where, char *err,
                      size_t err_len)
{
    size_t n;

    if (!server || (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)) {
        kc_errf(err, err_len, "%s: server \"%s\" must start with https:// or http://", where,
                server ? server : "");
        return -EINVAL;
    }
    for (const unsigned char *p = (const unsigned char *)server; *p; p++)
        if (*p <= ' ' || *p >= 0x7f) {
            kc_errf(err, err_len, "%s: server \"%s\" holds a space or control character", where,
                    server);
            return -EINVAL;
        }
    if (!(cfg->server = strdup(server)))
        return -ENOMEM;
    n = strlen(cfg->server);
    while (n > 8 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    return 0;
}

static int load_cluster(const struct doc *doc, const json_t *cl, const char *name,
                        struct kc_config *cfg, char *err, size_t err_len)
{
    char where[300];
    const char *server, *proxy;
    int rc;

    (void)snprintf(where, sizeof(where), "kubeconfig %s: cluster \"%.200s\"", doc->name, name);
    if (field_set(cl, "tls-server-name")) {
        kc_errf(err, err_len, "%s: tls-server-name is not supported", where);
        return -EINVAL;
    }
    if ((rc = field_string(cl, "server", &server, where, err, err_len)) < 0 ||
        (rc = set_server(cfg, server, where, err, err_len)) < 0 ||
        (rc = field_bool(cl, "insecure-skip-tls-verify", &cfg->insecure_skip_tls_verify, where, err,
                         err_len)) < 0 ||
        (rc = field_bool(cl, "disable-compression", &cfg->disable_compression, where, err,
                         err_len)) < 0 ||
        (rc = field_string(cl, "proxy-url", &proxy, where, err, err_len)) < 0 ||
        (rc = read_pem(doc, cl, "certificate-authority-data", "certificate-authority", where,
                       &cfg->ca, &cfg->ca_len, err, err_len)) < 0)
        return rc;
    if (cfg->insecure_skip_tls_verify && cfg->ca) {
        /* client-go refuses the combination too */
        kc_errf(err, err_len,
                "%s: a certificate authority together with "
                "insecure-skip-tls-verify is not allowed",
                where);
        return -EINVAL;
    }
    if (proxy && proxy[0] && !(cfg->proxy_url = strdup(proxy)))
        return -ENOMEM;
    return 0;
}

static int load_user(const struct doc *doc, const json_t *user, const char *name,
                     struct kc_config *cfg, char *err, size_t err_len)
{
    static const char *const unsupported[] = {"exec", "auth-provider", "username",  "password",
                                              "as",   "as-uid",        "as-groups", "as-user-extra",
                                              NULL};
    char where[300];
    const char *token, *token_file;
    char *path, *read_token = NULL;
    int rc;

    (void)snprintf(where, sizeof(where), "kubeconfig %s: user \"%.200s\"", doc->name, name);
    for (const char *const *k = unsupported; *k; k++)
        if (field_set(user, *k)) {
            kc_errf(err, err_len, "%s: %s is not supported", where, *k);
            return -EINVAL;
        }
    if ((rc = field_string(user, "token", &token, where, err, err_len)) < 0 ||
        (rc = field_string(user, "tokenFile", &token_file, where, err, err_len)) < 0)
        return rc;
    if (token && token[0]) {
        if ((rc = kc_token_from_bytes((const unsigned char *)token, strlen(token), &cfg->token)) <
            0) {
            if (rc == -EINVAL)
                kc_errf(err, err_len, "%s: token holds control characters", where);
            return rc;
        }
    }
    if (token_file && token_file[0]) {
        if (!(path = resolve_path(doc, token_file)))
            return -ENOMEM;
        rc = check_token_file(path, &read_token, where, err, err_len);
        free(read_token);
        if (rc < 0) {
            free(path);
            return rc;
        }
        cfg->token_file = path;
    }
    if ((rc = read_pem(doc, user, "client-certificate-data", "client-certificate", where,
                       &cfg->client_cert, &cfg->client_cert_len, err, err_len)) < 0 ||
        (rc = read_pem(doc, user, "client-key-data", "client-key", where, &cfg->client_key,
                       &cfg->client_key_len, err, err_len)) < 0)
        return rc;
    if (!cfg->client_cert != !cfg->client_key) {
        kc_errf(err, err_len,
                "%s: a client certificate needs a client key and the other way "
                "round",
                where);
        return -EINVAL;
    }
    return 0;
}

/* Pick the context and fill cfg from the files, in client-go's order of precedence. */
static int build(const struct docs *d, const char *context, struct kc_config *out, char *err,
                 size_t err_len)
{
    struct kc_config cfg = {0};
    const json_t *ctx, *cluster, *user = NULL;
    const struct doc *ctx_doc, *cluster_doc, *user_doc = NULL;
    const char *cluster_name, *user_name, *ns;
    char where[300];
    int rc;

    if (!context || !context[0]) {
        context = NULL;
        for (size_t i = 0; i < d->n && !context; i++) {
            const json_t *cc = json_object_get(d->v[i].root, "current-context");
            if (json_is_string(cc) && json_string_length(cc) > 0)
                context = json_string_value(cc);
        }
        if (!context) {
            kc_errf(err, err_len, "kubeconfig %s: no context given and no current-context",
                    d->v[0].name);
            return -EINVAL;
        }
    }
    rc = find_named(d, "contexts", "context", context, &ctx, &ctx_doc, err, err_len);
    if (rc == -ENOENT) {
        kc_errf(err, err_len, "kubeconfig %s: no context \"%s\"", d->v[0].name, context);
        return -EINVAL;
    }
    if (rc < 0)
        return rc;
    (void)snprintf(where, sizeof(where), "kubeconfig %s: context \"%.200s\"", ctx_doc->name,
                   context);
    if ((rc = field_string(ctx, "cluster", &cluster_name, where, err, err_len)) < 0 ||
        (rc = field_string(ctx, "user", &user_name, where, err, err_len)) < 0 ||
        (rc = field_string(ctx, "namespace", &ns, where, err, err_len)) < 0)
        return rc;
    if (!cluster_name || !cluster_name[0]) {
        kc_errf(err, err_len, "%s: names no cluster", where);
        return -EINVAL;
    }
    rc = find_named(d, "clusters", "cluster", cluster_name, &cluster, &cluster_doc, err, err_len);
    if (rc == -ENOENT) {
        kc_errf(err, err_len, "%s: no cluster \"%s\"", where, cluster_name);
        return -EINVAL;
    }
    if (rc < 0)
        return rc;
    if (user_name && user_name[0]) {
        rc = find_named(d, "users", "user", user_name, &user, &user_doc, err, err_len);
        if (rc == -ENOENT) {
            kc_errf(err, err_len, "%s: no user \"%s\"", where, user_name);
            return -EINVAL;
        }
        if (rc < 0)
            return rc;
    }
    if ((rc = load_cluster(cluster_doc, cluster, cluster_name, &cfg, err, err_len)) < 0 ||
        (user && (rc = load_user(user_doc, user, user_name, &cfg, err, err_len)) < 0))
        goto fail;
    rc = -ENOMEM;
    if (!(cfg.namespace = strdup(ns && ns[0] ? ns : "default")) || !(cfg.context = strdup(context)))
        goto fail;
    *out = cfg;
    return 0;
fail:
    kc_config_fini(&cfg);
    return rc;
}

/* ---- public ---------------------------------------------------------------------------------- */

static int parse_doc(const char *text, size_t len, const char *name, struct doc *out, char *err,
                     size_t err_len)
{
    char msg[400] = "";
    int rc = kc_yaml_to_json(text, len, &out->root, msg, sizeof(msg));

    if (rc == -EINVAL) {
        kc_errf(err, err_len, "kubeconfig %s: %s", name, msg);
        return rc;
    }
    if (rc < 0)
        return rc;
    if (!json_is_object(out->root)) {
        kc_errf(err, err_len, "kubeconfig %s: not a mapping", name);
        json_decref(out->root);
        out->root = NULL;
        return -EINVAL;
    }
    return 0;
}

int kc_config_from_kubeconfig(const char *text, size_t len, const char *dir, const char *context,
                              struct kc_config *out, char *err, size_t err_len)
{
    struct doc doc = {.name = "(text)"};
    struct docs d = {.v = &doc, .n = 1};
    int rc;

    if (!text || !out) {
        kc_errf(err, err_len, "kubeconfig: no text");
        return -EINVAL;
    }
    if ((rc = parse_doc(text, len, doc.name, &doc, err, err_len)) < 0)
        return rc;
    if (dir && !(doc.dir = strdup(dir))) {
        rc = -ENOMEM;
    } else {
        rc = build(&d, context, out, err, err_len);
    }
    json_decref(doc.root);
    free(doc.dir);
    return rc;
}

/* Append the file `path` to d when it exists. */
static int add_file(struct docs *d, const char *path, char *err, size_t err_len)
{
    unsigned char *text;
    size_t len;
    struct doc *v;
    char *slash, msg[128];
    int rc = kc_read_file(path, MAX_FILE_BYTES, &text, &len);

    if (rc == -ENOENT)
        return 0;
    if (rc < 0) {
        if (rc != -ENOMEM) {
            kc_errf(err, err_len, "kubeconfig %s: %s", path, kc_strerror(-rc, msg, sizeof(msg)));
            rc = -EINVAL;
        }
        return rc;
    }
    v = realloc(d->v, (d->n + 1) * sizeof(*v));
    if (!v) {
        free(text);
        return -ENOMEM;
    }
    d->v = v;
    memset(&v[d->n], 0, sizeof(v[d->n]));
    v[d->n].dir = strdup(path);
    if (!v[d->n].dir) {
        free(text);
        return -ENOMEM;
    }
    slash = strrchr(v[d->n].dir, '/');
    if (!slash) {
        free(v[d->n].dir);
        v[d->n].dir = NULL;
    } else if (slash == v[d->n].dir) {
        slash[1] = '\0'; /* "/config" is in "/" */
    } else {
        *slash = '\0';
    }
    v[d->n].name = path;
    rc = parse_doc((const char *)text, len, path, &v[d->n], err, err_len);
    free(text);
    if (rc < 0) {
        free(v[d->n].dir);
        return rc;
    }
    d->n++;
    return 0;
}

int kc_config_load_kubeconfig(const char *paths, const char *context, struct kc_config *out,
                              char *err, size_t err_len)
{
    struct docs d = {0};
    char *list, *p, *next;
    int rc = 0;

    if (!paths || !paths[0] || !out) {
        kc_errf(err, err_len, "kubeconfig: no file given");
        return -EINVAL;
    }
    if (!(list = strdup(paths)))
        return -ENOMEM;
    /* the names in d point into list, which lives until the end */
    for (p = list; p && rc == 0; p = next) {
        next = strchr(p, ':');
        if (next)
            *next++ = '\0';
        if (*p)
            rc = add_file(&d, p, err, err_len);
    }
    if (rc == 0 && d.n == 0) {
        kc_errf(err, err_len, "kubeconfig %s: no such file", paths);
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = build(&d, context, out, err, err_len);
    docs_fini(&d);
    free(list);
    return rc;
}

int kc_config_in_cluster(const char *dir, struct kc_config *out, char *err, size_t err_len)
{
    struct kc_config cfg = {0};
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *pod_ns = getenv("POD_NAMESPACE");
    char server[300], *path = NULL, *token = NULL, msg[128];
    unsigned char *ns_data = NULL;
    size_t n, ns_len;
    int rc;

    if (!dir)
        dir = KC_SERVICE_ACCOUNT_DIR;
    if (!host || !host[0] || !port || !port[0]) {
        kc_errf(err, err_len,
                "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                "must be set");
        return -EINVAL;
    }
    if (strlen(host) > 200 || strlen(port) > 10) {
        kc_errf(err, err_len, "in-cluster: KUBERNETES_SERVICE_HOST or _PORT is too long");
        return -EINVAL;
    }
    (void)snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
                   host, port); /* bounded above */
    if ((rc = set_server(&cfg, server, "in-cluster", err, err_len)) < 0)
        goto fail;

    n = strlen(dir) + sizeof("/namespace");
    rc = -ENOMEM;
    if (!(path = malloc(n)))
        goto fail;
    (void)snprintf(path, n, "%s/token", dir);
    if ((rc = check_token_file(path, &token, "in-cluster", err, err_len)) < 0)
        goto fail;
    free(token);
    cfg.token_file = path;
    path = NULL;

    rc = -ENOMEM;
    if (!(path = malloc(n)))
        goto fail;
    (void)snprintf(path, n, "%s/ca.crt", dir);
    rc = kc_read_file(path, MAX_FILE_BYTES, &cfg.ca, &cfg.ca_len);
    if (rc < 0 || cfg.ca_len == 0) {
        if (rc != -ENOMEM) {
            kc_errf(err, err_len, "in-cluster: %s: %s", path,
                    rc < 0 ? kc_strerror(-rc, msg, sizeof(msg)) : "empty file");
            rc = -EINVAL;
        }
        goto fail;
    }

    if (pod_ns && pod_ns[0]) {
        rc = (cfg.namespace = strdup(pod_ns)) ? 0 : -ENOMEM;
    } else {
        (void)snprintf(path, n, "%s/namespace", dir);
        rc = kc_read_file(path, MAX_TOKEN_BYTES, &ns_data, &ns_len);
        if (rc == 0)
            rc = kc_token_from_bytes(ns_data, ns_len, &cfg.namespace);
        if (rc < 0 && rc != -ENOMEM)
            rc = (cfg.namespace = strdup("default")) ? 0 : -ENOMEM; /* client-go's default */
    }
    if (rc < 0)
        goto fail;
    free(ns_data);
    free(path);
    *out = cfg;
    return 0;
fail:
    free(ns_data);
    free(path);
    kc_config_fini(&cfg);
    return rc;
}

int kc_config_load(const char *kubeconfig, const char *context, struct kc_config *out, char *err,
                   size_t err_len)
{
    const char *env = getenv("KUBECONFIG");
    const char *home = getenv("HOME");
    char *path;
    size_t n;
    int rc;

    if (kubeconfig && kubeconfig[0])
        return kc_config_load_kubeconfig(kubeconfig, context, out, err, err_len);
    if (env && env[0])
        return kc_config_load_kubeconfig(env, context, out, err, err_len);
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return kc_config_in_cluster(NULL, out, err, err_len);
    if (!home || !home[0]) {
        kc_errf(err, err_len,
                "no kubeconfig: none given, KUBECONFIG and HOME unset, not in a "
                "cluster");
        return -EINVAL;
    }
    n = strlen(home) + sizeof("/.kube/config");
    if (!(path = malloc(n)))
        return -ENOMEM;
    (void)snprintf(path, n, "%s/.kube/config", home);
    rc = kc_config_load_kubeconfig(path, context, out, err, err_len);
    free(path);
    return rc;
}
