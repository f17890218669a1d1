/*
 * kube_deploy_helper: what the deploy manifests' tests (test_deploy_*.py) need from C.
 *
 *   kube_deploy_helper yaml2json FILE...
 *       One line per FILE: a JSON array of its documents, read with the library's manifest
 *       reader (spec_load: YAML 1.2 core schema, a `List` contributes its items). Exit 1 on a
 *       file that cannot be read or parsed.
 *   kube_deploy_helper status FILE...
 *       The status mgo_reconcile publishes for the (single) MultigresCluster of FILE..., on the
 *       kubernetes target without topology registration, as one JSON line each for:
 *       "initial"  nothing exists yet;
 *       "running"  every desired object exists and is ready, instance 0 of each pool x cell
 *                  the primary, the others standbys, one standby with a drain requested.
 *       Printed as {"initial": STATUS, "running": STATUS}. Exit 1 when a pass fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <mgo/mgo.h>

#include "spec/load.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, used = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (used == cap) {
            cap = cap ? cap * 2 : 65536;
            char *b = realloc(buf, cap + 1);
            if (!b)
                break;
            buf = b;
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[used] = '\0';
    *len = used;
    return buf;
}

static int cmd_yaml2json(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        size_t len = 0;
        char *text = read_file(argv[i], &len);
        json_t *docs = NULL;
        struct spec_load_error err = {0};
        if (!text) {
            fprintf(stderr, "kube_deploy_helper: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int rc = spec_load(text, len, &docs, &err);
        free(text);
        if (rc) {
            fprintf(stderr, "kube_deploy_helper: %s: document %zu, line %zu, column %zu: %s\n",
                    argv[i], err.document, err.line, err.column,
                    rc == -ENOMEM ? "out of memory" : err.message);
            json_decref(docs);
            return 1;
        }
        rc = json_dumpf(docs, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(docs);
        if (rc || putchar('\n') == EOF)
            return 1;
    }
    return 0;
}

/* One mgo_reconcile pass; the parsed result, or NULL (reported). */
static json_t *reconcile(mgo_plugin *plugin, const json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    json_t *result = NULL;

    if (!text)
        return NULL;
    int32_t rc = mgo_reconcile(plugin, text, strlen(text), &out, &len);
    free(text);
    if (out)
        result = json_loadb(out, len, 0, NULL);
    if (rc != MGO_OK || !json_is_object(json_object_get(result, "status"))) {
        fprintf(stderr, "kube_deploy_helper: mgo_reconcile: %s: %s\n", mgo_strerror(rc),
                out ? out : "(no result)");
        json_decref(result);
        result = NULL;
    }
    mgo_free(out);
    return result;
}

/* The observed set of the "running" pass: every desired object, ready; pods get the primary
 * role at index 0 and standby elsewhere; the first standby seen has a drain requested. */
static json_t *observe_all(const json_t *desired)
{
    json_t *observed = json_array();
    size_t i, pods = 0;
    const json_t *o;

    json_array_foreach (desired, i, o) {
        const json_t *meta = json_object_get(o, "metadata");
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *name = json_string_value(json_object_get(meta, "name"));
        json_t *labels = json_object_get(meta, "labels");
        json_t *ann, *e;

        if (!kind || !name)
            continue;
        ann = json_object_get(meta, "annotations")
                  ? json_deep_copy(json_object_get(meta, "annotations"))
                  : json_object();
        e = json_pack("{s:s, s:s, s:O?, s:o, s:b}", "kind", kind, "name", name, "labels", labels,
                      "annotations", ann, "ready", 1);
        int bad = e == NULL;
        if (e && strcmp(kind, "Pod") == 0) {
            size_t n = strlen(name);
            int primary = n >= 2 && strcmp(name + n - 2, "-0") == 0;
            bad = json_object_set_new(e, "role", json_string(primary ? "primary" : "standby"));
            if (!bad && !primary && pods++ == 0)
                bad = json_object_set_new(json_object_get(e, "annotations"),
                                          "drain.multigres.com/state", json_string("requested"));
        }
        if (bad) {
            json_decref(e);
            json_decref(observed);
            return NULL;
        }
        if (json_array_append_new(observed, e)) {
            json_decref(observed);
            return NULL;
        }
    }
    return observed;
}

static int cmd_status(int argc, char **argv)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    mgo_plugin *plugin = NULL;
    json_t *manifests = json_array(), *req = NULL, *first = NULL, *second = NULL, *observed;
    int rc = 1;

    for (int i = 0; manifests && i < argc; i++) {
        size_t len = 0;
        char *text = read_file(argv[i], &len);
        if (!text) {
            fprintf(stderr, "kube_deploy_helper: %s: %s\n", argv[i], strerror(errno));
            goto out;
        }
        int bad = json_array_append_new(manifests,
                                        json_pack("{s:s, s:s}", "source", argv[i], "text", text));
        free(text);
        if (bad)
            goto out;
    }
    if (mgo_open(&host, &plugin) != MGO_OK)
        goto out;
    req = json_pack("{s:O, s:s, s:{s:b}, s:b, s:I, s:s}", "manifests", manifests, "target",
                    "kubernetes", "topology", "register", 0, "include_desired", 1, "generation",
                    (json_int_t)1, "uid", "00000000-0000-4000-8000-000000000001");
    first = req ? reconcile(plugin, req) : NULL;
    if (!first)
        goto out;
    observed = observe_all(json_object_get(first, "desired"));
    if (!observed)
        goto out;
    if (json_object_set_new(req, "observed",
                            json_pack("{s:o, s:O}", "objects", observed, "status",
                                      json_object_get(first, "status"))))
        goto out;
    second = reconcile(plugin, req);
    if (!second)
        goto out;
    json_t *both = json_pack("{s:O, s:O}", "initial", json_object_get(first, "status"), "running",
                             json_object_get(second, "status"));
    rc = both && json_dumpf(both, stdout, JSON_COMPACT) == 0 && putchar('\n') != EOF ? 0 : 1;
    json_decref(both);
out:
    json_decref(second);
    json_decref(first);
    json_decref(req);
    json_decref(manifests);
    mgo_close(plugin);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "yaml2json") == 0)
        return cmd_yaml2json(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "status") == 0)
        return cmd_status(argc - 2, argv + 2);
    fprintf(stderr, "usage: kube_deploy_helper yaml2json FILE... | status FILE...\n");
    return 2;
}
