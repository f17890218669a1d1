/* mgo topo register | dump: the topology service as Multigres sees it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "manifest_files.h"
#include "cli.h"
#include "topo_cmd.h"

static const char usage_topo[] =
    "usage: mgo topo register [--etcd URL]... [--root ROOT] [--cluster NAME] [--namespace NS]\n"
    "                         [--json] [--deadline-ms N] FILE...\n"
    "       mgo topo dump --etcd URL... [--root ROOT] [--deadline-ms N]\n"
    "       mgo topo poolers --etcd URL... --cell C [--cell-root ROOT] [--database D]\n"
    "                        [--table-group T] [--shard S]\n"
    "\n"
    "register  writes the Cell and Database records of a cluster into its global topology, as a\n"
    "          provisioner does before starting Multigres components: created when missing,\n"
    "          updated when changed, left alone when equal; records of cells and databases no\n"
    "          longer in the spec are deleted when spec.topologyPruning is enabled (the default).\n"
    "          Give --etcd: this command cannot reach the in-cluster service address of a\n"
    "          managed etcd, nor read TLS secrets; without --etcd it uses the spec's external\n"
    "          endpoints (plain http) as written.\n"
    "dump      prints every record under the global root and under each cell's root, decoded,\n"
    "          as JSON: what Multigres components see.\n"
    "poolers   lists the poolers of one shard in one cell with the role mgo reads from them\n"
    "          (PRIMARY, REPLICA or QUARANTINED; shut-down poolers are left out), as JSON.\n"
    "          The shard defaults to postgres/default/0-inf, the cell root to the global root.\n"
    "\n"
    "  --etcd URL        an etcd endpoint (http://host:port); repeat for several\n"
    "  --root ROOT       the global root (register: default the spec's rootPath; dump: default\n"
    "                    /multigres/global)\n"
    "  --cluster NAME    which cluster, when the files hold more than one\n"
    "  --namespace NS    namespace of objects that name none (default: default)\n"
    "  --json            print the result document\n"
    "  --deadline-ms N   how long the command may take (default 20000)\n"
    "\n"
    "Exit codes: 0 done, 1 invalid manifest, 2 usage or input error, 3 library error,\n"
    "4 the topology service is unavailable or too slow (retry later).\n";

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "mgo topo: %s%s%s\n\n%s", what, arg ? " " : "", arg ? arg : "", usage_topo);
    return MGO_EXIT_USAGE;
}

static void print_report(const json_t *list)
{
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        const char *outcome = json_string_value(json_object_get(e, "outcome"));
        const char *key = json_string_value(json_object_get(e, "key"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        printf("%-9s %s%s%s%s\n", outcome ? outcome : "?", key ? key : "?", reason ? " (" : "",
               reason ? reason : "", reason ? ")" : "");
    }
}

int topo_command(struct loader_lib *lib, int argc, char **argv)
{
    json_t *req = json_object(), *endpoints = json_array(), *manifests = json_array();
    const char *sub = argc > 0 ? argv[0] : "";
    int as_json = 0, files = 0, code = MGO_EXIT_OK;
    char err[4200];

    if (!req || !endpoints || !manifests)
        return MGO_EXIT_LIBRARY;
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage_topo, stdout);
        code = MGO_EXIT_OK;
        goto out;
    }
    int poolers = strcmp(sub, "poolers") == 0;
    if (strcmp(sub, "register") != 0 && strcmp(sub, "dump") != 0 && !poolers) {
        code = usage_error("unknown or missing subcommand", sub);
        goto out;
    }
    json_object_set_new(req, "op", json_string(poolers ? "list_poolers" : sub));
    if (poolers) {
        json_object_set_new(req, "database", json_string("postgres"));
        json_object_set_new(req, "table_group", json_string("default"));
        json_object_set_new(req, "shard", json_string("0-inf"));
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_topo, stdout);
            goto out;
        } else if (strcmp(a, "--json") == 0) {
            as_json = 1;
        } else if (strcmp(a, "--etcd") == 0 && v) {
            json_array_append_new(endpoints, json_string(v));
            i++;
        } else if (strcmp(a, "--root") == 0 && v) {
            json_object_set_new(req, "root", json_string(v));
            i++;
        } else if ((strcmp(a, "--cluster") == 0 || strcmp(a, "--namespace") == 0) && v) {
            json_object_set_new(req, a + 2, json_string(v));
            i++;
        } else if (poolers &&
                   (strcmp(a, "--cell") == 0 || strcmp(a, "--database") == 0 ||
                    strcmp(a, "--shard") == 0) &&
                   v) {
            json_object_set_new(req, a + 2, json_string(v));
            i++;
        } else if (poolers && strcmp(a, "--table-group") == 0 && v) {
            json_object_set_new(req, "table_group", json_string(v));
            i++;
        } else if (poolers && strcmp(a, "--cell-root") == 0 && v) {
            json_object_set_new(req, "cell_root", json_string(v));
            i++;
        } else if (strcmp(a, "--deadline-ms") == 0 && v) {
            char *end = NULL;
            long long ms = strtoll(v, &end, 10);
            if (!end || *end || ms <= 0) {
                code = usage_error("--deadline-ms needs a positive number, not", v);
                goto out;
            }
            json_object_set_new(req, "deadline_ms", json_integer(ms));
            i++;
        } else if (a[0] == '-' && a[1]) {
            code = usage_error("unknown or incomplete option", a);
            goto out;
        } else if (strcmp(sub, "register") == 0) {
            if (manifest_add_file(manifests, a, err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                code = MGO_EXIT_USAGE;
                goto out;
            }
            files++;
        } else {
            code = usage_error("this subcommand takes no files:", a);
            goto out;
        }
    }
    if (strcmp(sub, "register") == 0 && files == 0) {
        code = usage_error("register needs a FILE", NULL);
        goto out;
    }
    if ((strcmp(sub, "dump") == 0 || poolers) && json_array_size(endpoints) == 0) {
        code = usage_error("this subcommand needs --etcd URL", NULL);
        goto out;
    }
    if (poolers && !json_object_get(req, "cell")) {
        code = usage_error("poolers needs --cell", NULL);
        goto out;
    }
    if (json_array_size(endpoints) > 0) {
        json_t *etcd = json_pack("{s:O}", "endpoints", endpoints);
        if (json_object_get(req, "root"))
            json_object_set(etcd, "root", json_object_get(req, "root"));
        json_object_set_new(req, "etcd", etcd);
    }
    if (files)
        json_object_set(req, "manifests", manifests);

    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    mgo_plugin *p = NULL;
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t out_len = 0;
    int32_t rc = text ? lib->open(&host, &p) : MGO_ENOMEM;
    if (rc == MGO_OK)
        rc = lib->topology(p, text, strlen(text), &out, &out_len);
    free(text);
    json_t *result = out ? json_loadb(out, out_len, JSON_ALLOW_NUL, NULL) : NULL;
    const char *msg =
        json_string_value(json_object_get(json_object_get(result, "error"), "message"));
    if (!result) {
        fprintf(stderr, "mgo topo: %s\n", lib->strerror(rc));
        code = rc == MGO_EAGAIN ? MGO_EXIT_RETRY : MGO_EXIT_LIBRARY;
    } else if (as_json || (rc == MGO_OK && (strcmp(sub, "dump") == 0 || poolers))) {
        char *pretty = json_dumps(result, JSON_INDENT(2));
        printf("%s\n", pretty ? pretty : "{}");
        free(pretty);
    } else if (rc == MGO_OK) {
        print_report(json_object_get(result, "databases"));
        print_report(json_object_get(result, "cells"));
        print_report(json_object_get(result, "pruned"));
    }
    if (result && rc != MGO_OK && !as_json) {
        /* Manifest errors as validate prints them, then what went wrong. */
        cli_print_findings(result, 0);
        fprintf(stderr, "mgo topo: %s\n", msg ? msg : lib->strerror(rc));
    }
    if (result)
        code = rc == MGO_OK       ? MGO_EXIT_OK
               : rc == MGO_EINVAL ? MGO_EXIT_INVALID
               : rc == MGO_EAGAIN ? MGO_EXIT_RETRY
                                  : MGO_EXIT_LIBRARY;
    json_decref(result);
    lib->free(out);
    lib->close(p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mgo topo: cannot write the output\n");
        code = MGO_EXIT_USAGE;
    }
out:
    json_decref(req);
    json_decref(endpoints);
    json_decref(manifests);
    return code;
}
