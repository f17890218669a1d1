/* `mgo render`: print the objects a fresh reconcile would create (YAML stream or a JSON List). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "manifest_files.h"
#include "cli.h"
#include "render_cmd.h"

static const char usage[] =
    "usage: mgo render [--target kubernetes|process] [--json] [--templates DIR]...\n"
    "                  [--namespace NS] [--cluster NAME] [--owner-uid UID] FILE...\n"
    "\n"
    "Prints every object a fresh reconcile of the cluster would create, so that it can be\n"
    "reviewed before it is applied (as 'kustomize build' is used). Nothing is contacted: the\n"
    "topology service is not registered and no state is read.\n"
    "\n"
    "  --target T        kubernetes (default): Pods, PVCs, Services, Deployments, StatefulSets,\n"
    "                    ConfigMaps, PodDisruptionBudgets (not the pgBackRest certificate\n"
    "                    Secrets <shard>-pgbackrest-ca/-tls the pods mount: their keys are\n"
    "                    random; mgo-kube issues them, or set backup.pgbackrestTLS.secretName);\n"
    "                    process: the Etcd, Instance and\n"
    "                    Volume objects a local process host runs (docs/spec/render-process.md)\n"
    "  --json            print one JSON List object instead of a YAML stream\n"
    "  --templates DIR   also read the manifests of DIR (see 'mgo validate --help')\n"
    "  --namespace NS    namespace of objects that name none (default: default)\n"
    "  --cluster NAME    which cluster, when the files hold more than one\n"
    "  --owner-uid UID   the uid of the MultigresCluster object in the API server: objects name\n"
    "                    their owner with it (the API server refuses an ownerReference without\n"
    "                    one; without this option, or metadata.uid in FILE, it is left out)\n"
    "\n"
    "Exit codes: 0 printed, 1 invalid manifest (errors as for validate), 2 usage or input\n"
    "error, 3 library error.\n";

struct render_options {
    const char *target;
    const char *ns;
    const char *cluster;
    const char *owner_uid;
    int json;
    json_t *manifests;
};

/* A mapping key or string that YAML (1.1 or 1.2) reads back as the same string without
 * quotes: letters, digits and "-_./", starting with a letter, and no word YAML 1.1 reads as a
 * boolean or null in any letter case. Everything else is written as a JSON (double-quoted)
 * string. */
static int plain_safe(const char *s)
{
    static const char *const words[] = {"true", "false", "null", "yes", "no",
                                        "on",   "off",   "y",    "n"};
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("-_./", *c)))
            return 0;
    return 1;
}

static void put_string(FILE *f, const char *s)
{
    if (plain_safe(s)) {
        fputs(s, f);
        return;
    }
    json_t *j = json_string(s);
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL; /* a JSON string is a YAML scalar */
    fputs(q ? q : "\"\"", f);
    free(q);
    json_decref(j);
}

static void put_scalar(FILE *f, const json_t *v)
{
    if (json_is_string(v)) {
        put_string(f, json_string_value(v));
    } else {
        char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fputs(t ? t : "null", f);
        free(t);
    }
}

static int is_collection(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

static void put_value(FILE *f, const json_t *v, int indent);

/* `first_inline`: the first line is already indented (after "- "). */
static void put_object(FILE *f, const json_t *o, int indent, int first_inline)
{
    const char *k;
    const json_t *v;
    int first = 1;
    json_object_foreach ((json_t *)o, k, v) {
        if (!(first && first_inline))
            fprintf(f, "%*s", indent, "");
        first = 0;
        put_string(f, k);
        fputc(':', f);
        if (is_collection(v)) {
            fputc('\n', f);
            put_value(f, v, indent + 2);
        } else {
            fputc(' ', f);
            if (json_is_object(v))
                fputs("{}", f);
            else if (json_is_array(v))
                fputs("[]", f);
            else
                put_scalar(f, v);
            fputc('\n', f);
        }
    }
}

static void put_value(FILE *f, const json_t *v, int indent)
{
    if (json_is_object(v)) {
        put_object(f, v, indent, 0);
        return;
    }
    size_t i;
    const json_t *e;
    json_array_foreach ((json_t *)v, i, e) {
        fprintf(f, "%*s- ", indent, "");
        if (json_is_object(e) && json_object_size(e) > 0) {
            put_object(f, e, indent + 2, 1);
        } else if (is_collection(e)) {
            fputc('\n', f);
            put_value(f, e, indent + 2);
        } else {
            if (json_is_object(e))
                fputs("{}", f);
            else if (json_is_array(e))
                fputs("[]", f);
            else
                put_scalar(f, e);
            fputc('\n', f);
        }
    }
}

static int parse(int argc, char **argv, struct render_options *o)
{
    char err[512];
    int files = 0;
    memset(o, 0, sizeof(*o));
    o->target = "kubernetes";
    o->manifests = json_array();
    if (!o->manifests)
        return MGO_EXIT_LIBRARY;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(MGO_EXIT_OK);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--target") == 0 && val) {
            if (strcmp(val, "kubernetes") != 0 && strcmp(val, "process") != 0) {
                fprintf(stderr, "mgo: --target must be kubernetes or process, not '%s'\n", val);
                return MGO_EXIT_USAGE;
            }
            o->target = argv[++i];
        } else if (strcmp(a, "--namespace") == 0 && val) {
            o->ns = argv[++i];
        } else if (strcmp(a, "--cluster") == 0 && val) {
            o->cluster = argv[++i];
        } else if (strcmp(a, "--owner-uid") == 0 && val) {
            o->owner_uid = argv[++i];
        } else if (strcmp(a, "--templates") == 0 && val) {
            if (manifest_add_dir(o->manifests, argv[++i], err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                return MGO_EXIT_USAGE;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "mgo: unknown or incomplete option '%s'\n\n%s", a, usage);
            return MGO_EXIT_USAGE;
        } else if (manifest_add_file(o->manifests, a, err, sizeof(err))) {
            fprintf(stderr, "mgo: %s\n", err);
            return MGO_EXIT_USAGE;
        } else {
            files++;
        }
    }
    if (!files) {
        fprintf(stderr, "mgo: no FILE given\n\n%s", usage);
        return MGO_EXIT_USAGE;
    }
    return MGO_EXIT_OK;
}

static int print_desired(const json_t *desired, int as_json)
{
    if (as_json) {
        json_t *list =
            json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List", "items", desired);
        int rc = !list || json_dumpf(list, stdout, JSON_INDENT(2)) != 0;
        json_decref(list);
        fputc('\n', stdout);
        return rc ? MGO_EXIT_LIBRARY : MGO_EXIT_OK;
    }
    size_t i;
    const json_t *obj;
    json_array_foreach ((json_t *)desired, i, obj) {
        fputs("---\n", stdout);
        put_value(stdout, obj, 0);
    }
    return MGO_EXIT_OK;
}

static int run(struct loader_lib *lib, const struct render_options *o)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    mgo_plugin *p = NULL;
    char *out = NULL;
    size_t out_len = 0;
    json_t *req = json_pack("{s:O, s:s, s:b, s:{s:b}}", "manifests", o->manifests, "target",
                            o->target, "include_desired", 1, "topology", "register", 0);
    if (!req || (o->ns && json_object_set_new(req, "namespace", json_string(o->ns))) ||
        (o->cluster && json_object_set_new(req, "cluster", json_string(o->cluster))) ||
        (o->owner_uid && json_object_set_new(req, "uid", json_string(o->owner_uid)))) {
        json_decref(req);
        return MGO_EXIT_LIBRARY;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int32_t rc = text ? lib->open(&host, &p) : MGO_ENOMEM;
    if (rc == MGO_OK)
        rc = lib->reconcile(p, text, strlen(text), &out, &out_len);
    free(text);
    json_t *result = out ? json_loadb(out, out_len, 0, NULL) : NULL;
    int code;
    const char *msg =
        json_string_value(json_object_get(json_object_get(result, "error"), "message"));
    if (rc == MGO_OK && json_is_array(json_object_get(result, "desired"))) {
        code = print_desired(json_object_get(result, "desired"), o->json);
    } else if (rc == MGO_EINVAL && msg && strncmp(msg, "request:", 8) == 0) {
        fprintf(stderr, "mgo: %s%s\n", msg + 9,
                strstr(msg, "name one with") ? " (use --cluster NAME)" : "");
        code = MGO_EXIT_USAGE;
    } else if (rc == MGO_EINVAL) {
        cli_print_findings(result, 0);
        code = MGO_EXIT_INVALID;
    } else {
        fprintf(stderr, "mgo: render: %s\n", msg ? msg : lib->strerror(rc));
        code = MGO_EXIT_LIBRARY;
    }
    json_decref(result);
    lib->free(out);
    if (p)
        lib->close(p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mgo: cannot write the output\n");
        return MGO_EXIT_USAGE;
    }
    return code;
}

int render_command(struct loader_lib *lib, int argc, char **argv)
{
    struct render_options o;
    int code = parse(argc, argv, &o);
    if (code == MGO_EXIT_OK)
        code = run(lib, &o);
    json_decref(o.manifests);
    return code;
}
