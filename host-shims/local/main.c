/* mgo: the command-line host of libmgo. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loader.h"
#include "manifest_files.h"
#include "render_cmd.h"
#include "topo_cmd.h"
#include "up_cmd.h"

static const char usage_main[] =
    "usage: mgo <command> [options]\n"
    "\n"
    "Commands:\n"
    "  validate FILE...   check MultigresCluster manifests and templates\n"
    "  resolve FILE...    print a cluster with templates and defaults applied\n"
    "  render FILE...     print the objects a fresh reconcile would create\n"
    "  topo register|dump|poolers  a cluster's records in its topology service (etcd)\n"
    "  version            print the library and ABI versions\n"
    "\n"
    "Running a cluster on this machine (docs/local.md):\n"
    "  up FILE...         start the cluster of the files; return once it is healthy\n"
    "  apply FILE...      bring a running cluster to an edited spec (rolling updates, sizes)\n"
    "  status [CLUSTER]   its instances: cell, pool, role, state, replication lag, port\n"
    "  scale CLUSTER POOL N   resize a pool (instances are drained before removal)\n"
    "  drain INSTANCE     drain an instance (a primary hands over first); it returns as a standby\n"
    "  observe [CLUSTER]  check the cluster's invariants, with evidence\n"
    "  logs INSTANCE      the tail of an instance's (or etcd's) log\n"
    "  down [--purge] [CLUSTER]  stop the cluster (--purge: and delete its data)\n"
    "\n"
    "Run 'mgo <command> --help' for a command's options.\n"
    "Exit codes: 0 success, 1 invalid manifest, 2 usage or input error, 3 library error,\n"
    "4 a service (etcd, PostgreSQL) unavailable or not converged in time: rerun to resume,\n"
    "5 no such cluster or instance, 6 (observe) invariant violations.\n"
    "The library is loaded from $MGO_LIBRARY, else libmgo.so.1 beside this program or installed.\n";

static const char usage_validate[] =
    "usage: mgo validate [--json] [--templates DIR]... [--namespace NS] [--previous FILE] FILE...\n"
    "\n"
    "Checks every MultigresCluster, CoreTemplate, CellTemplate and ShardTemplate in the files\n"
    "(YAML streams or JSON; '-' reads standard input) the way the reference operator's API\n"
    "server and admission webhook do. Documents of other API groups (Secrets, ...) are skipped.\n"
    "\n"
    "  --json            print the result document instead of one line per error\n"
    "  --templates DIR   also read the *.yaml, *.yml and *.json files of DIR (templates there\n"
    "                    are visible to the clusters; one named 'default' is the namespace\n"
    "                    default of its kind)\n"
    "  --namespace NS    namespace of objects that name none (default: default)\n"
    "  --previous FILE   the cluster's current version: also apply the update-only rules\n"
    "                    (append-only cells and pools, storage may not shrink, ...)\n"
    "\n"
    "Output: one line per error, 'FILE: field.path: reason'; warnings go to standard error.\n"
    "Exit codes: 0 all valid, 1 invalid, 2 usage or input error, 3 library error.\n";

static const char usage_resolve[] =
    "usage: mgo resolve [--templates DIR]... [--namespace NS] [--cluster NAME] FILE...\n"
    "\n"
    "Prints the fully resolved MultigresCluster as JSON (valid YAML too): every component\n"
    "written out inline, templates applied through the override chain, defaults filled in.\n"
    "\n"
    "  --templates DIR   also read the manifests of DIR (see 'mgo validate --help')\n"
    "  --namespace NS    namespace of objects that name none (default: default)\n"
    "  --cluster NAME    which cluster, when the files hold more than one\n"
    "\n"
    "Exit codes: 0 printed, 1 invalid manifest (errors as for validate), 2 usage or input\n"
    "error, 3 library error.\n";

struct options {
    int json;
    const char *ns;
    const char *previous;
    const char *cluster;
    json_t *manifests; /* [{"source", "text"}] */
};

static void log_to_stderr(void *user, int32_t level, const char *msg, size_t len)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)user;
    fprintf(stderr, "mgo: %s: %.*s\n", level >= 0 && level <= 3 ? names[level] : "info", (int)len,
            msg);
}

static int parse_options(int argc, char **argv, const char *usage, int allow_previous,
                         int allow_cluster, struct options *o)
{
    char err[512];
    int files = 0;

    memset(o, 0, sizeof(*o));
    o->manifests = json_array();
    if (!o->manifests)
        return MGO_EXIT_LIBRARY;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(MGO_EXIT_OK);
        } else if (strcmp(a, "--json") == 0 && !allow_cluster) {
            o->json = 1;
        } else if (strcmp(a, "--templates") == 0 && val) {
            if (manifest_add_dir(o->manifests, val, err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                return MGO_EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--namespace") == 0 && val) {
            o->ns = val;
            i++;
        } else if (strcmp(a, "--previous") == 0 && val && allow_previous) {
            o->previous = val;
            i++;
        } else if (strcmp(a, "--cluster") == 0 && val && allow_cluster) {
            o->cluster = val;
            i++;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "mgo: unknown or incomplete option '%s'\n\n%s", a, usage);
            return MGO_EXIT_USAGE;
        } else {
            if (manifest_add_file(o->manifests, a, err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                return MGO_EXIT_USAGE;
            }
            files++;
        }
    }
    if (files == 0) {
        fprintf(stderr, "mgo: no FILE given\n\n%s", usage);
        return MGO_EXIT_USAGE;
    }
    return MGO_EXIT_OK;
}

/* Build the request document for validate/resolve. */
static char *build_request(const struct options *o, int *exit_code)
{
    json_t *req = json_pack("{s:O}", "manifests", o->manifests);
    char err[512];

    *exit_code = MGO_EXIT_LIBRARY;
    if (!req)
        return NULL;
    if (o->ns && json_object_set_new(req, "namespace", json_string(o->ns)))
        goto fail;
    if (o->cluster && json_object_set_new(req, "cluster", json_string(o->cluster)))
        goto fail;
    if (o->previous) {
        json_t *prev = json_array();
        if (!prev || manifest_add_file(prev, o->previous, err, sizeof(err))) {
            fprintf(stderr, "mgo: %s\n", prev ? err : "out of memory");
            json_decref(prev);
            *exit_code = MGO_EXIT_USAGE;
            goto fail;
        }
        int failed =
            json_object_set(req, "previous", json_object_get(json_array_get(prev, 0), "text"));
        json_decref(prev);
        if (failed) {
            fprintf(stderr, "mgo: out of memory\n");
            goto fail;
        }
    }
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
fail:
    json_decref(req);
    return NULL;
}

static int run(struct loader_lib *lib, loader_hook_fn hook, const struct options *o, int resolve)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    mgo_plugin *p = NULL;
    char *out = NULL;
    size_t out_len = 0;
    int code;
    const char *lvl = getenv("MGO_LOG_LEVEL");

    host.log = log_to_stderr;
    host.log_level = lvl && strcmp(lvl, "debug") == 0 ? MGO_LOG_DEBUG : MGO_LOG_WARN;
    char *req = build_request(o, &code);
    if (!req)
        return code;
    int32_t rc = lib->open(&host, &p);
    if (rc != MGO_OK) {
        fprintf(stderr, "mgo: mgo_open: %s\n", lib->strerror(rc));
        free(req);
        return MGO_EXIT_LIBRARY;
    }
    rc = hook(p, req, strlen(req), &out, &out_len);
    free(req);
    json_t *result = out ? json_loadb(out, out_len, JSON_ALLOW_NUL, NULL) : NULL;
    if (!result) {
        fprintf(stderr, "mgo: %s\n", lib->strerror(rc));
        code = MGO_EXIT_LIBRARY;
    } else if (o->json) {
        fwrite(out, 1, out_len, stdout);
        fputc('\n', stdout);
        code = rc == MGO_OK ? MGO_EXIT_OK : rc == MGO_EINVAL ? MGO_EXIT_INVALID : MGO_EXIT_LIBRARY;
    } else if (rc == MGO_OK && resolve) {
        cli_print_findings(result, 1); /* warnings only */
        char *pretty = json_dumps(json_object_get(result, "resolved"), JSON_INDENT(2));
        if (pretty)
            printf("%s\n", pretty);
        free(pretty);
        code = pretty ? MGO_EXIT_OK : MGO_EXIT_LIBRARY;
    } else {
        cli_print_findings(result, 1);
        const char *msg =
            json_string_value(json_object_get(json_object_get(result, "error"), "message"));
        int request_error = rc == MGO_EINVAL && msg && strncmp(msg, "request:", 8) == 0;
        if (request_error && strstr(msg, "name one with"))
            fprintf(stderr,
                    "mgo: the files hold several clusters; choose one with --cluster NAME\n");
        else if (request_error)
            fprintf(stderr, "mgo: %s\n", msg + 9);
        code = rc == MGO_OK ? MGO_EXIT_OK : rc == MGO_EINVAL ? MGO_EXIT_INVALID : MGO_EXIT_LIBRARY;
        if (request_error)
            code = MGO_EXIT_USAGE; /* a problem with how mgo was asked, not with a manifest */
        if (code == MGO_EXIT_LIBRARY)
            fprintf(stderr, "mgo: %s\n", msg ? msg : lib->strerror(rc));
    }
    json_decref(result);
    lib->free(out);
    lib->close(p);
    /* Output that did not reach its destination is a failure, not a success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mgo: cannot write the output\n");
        return MGO_EXIT_USAGE;
    }
    return code;
}

int main(int argc, char **argv)
{
    struct loader_lib lib;
    struct options o;
    char err[4200];
    int code;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? MGO_EXIT_USAGE : MGO_EXIT_OK;
    }
    const char *cmd = argv[1];
    static const char *const local_cmds[] = {"up",    "apply", "status", "observe",
                                             "scale", "drain", "logs",   "down"};
    int local = 0;
    for (size_t i = 0; i < sizeof(local_cmds) / sizeof(local_cmds[0]); i++)
        local |= strcmp(cmd, local_cmds[i]) == 0;
    if (!local && strcmp(cmd, "validate") != 0 && strcmp(cmd, "resolve") != 0 &&
        strcmp(cmd, "topo") != 0 && strcmp(cmd, "render") != 0 && strcmp(cmd, "version") != 0 &&
        strcmp(cmd, "--version") != 0) {
        fprintf(stderr, "mgo: unknown command '%s'\n\n%s", cmd, usage_main);
        return MGO_EXIT_USAGE;
    }
    if (loader_load(&lib, err, sizeof(err))) {
        fprintf(stderr, "mgo: %s\n", err);
        return MGO_EXIT_LIBRARY;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mgo: libmgo ABI %u (%s)\n", lib.abi_version(), lib.path);
        loader_unload(&lib);
        return MGO_EXIT_OK;
    }
    if (local) {
        code = up_command(&lib, cmd, argc - 2, argv + 2);
        loader_unload(&lib);
        return code;
    }
    if (strcmp(cmd, "topo") == 0 || strcmp(cmd, "render") == 0) {
        code = strcmp(cmd, "topo") == 0 ? topo_command(&lib, argc - 2, argv + 2)
                                        : render_command(&lib, argc - 2, argv + 2);
        loader_unload(&lib);
        return code;
    }
    int resolve = strcmp(cmd, "resolve") == 0;
    code = parse_options(argc - 2, argv + 2, resolve ? usage_resolve : usage_validate, !resolve,
                         resolve, &o);
    if (code == MGO_EXIT_OK)
        code = run(&lib, resolve ? lib.reconcile : lib.validate, &o, resolve);
    json_decref(o.manifests);
    loader_unload(&lib);
    return code;
}
