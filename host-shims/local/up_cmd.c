/* The local-cluster commands: up, apply, status, scale, drain, observe, logs, down
 * (docs/local.md). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "cli.h"
#include "lhost.h"
#include "manifest_files.h"
#include "up_cmd.h"
#include "ydocs.h"

#define COMMON_HELP                                                                                \
    "  --state-dir DIR   where clusters live (default: $MGO_STATE_DIR, else /var/lib/mgo as\n"     \
    "                    root, else $XDG_STATE_HOME/mgo or ~/.local/state/mgo)\n"                  \
    "Exit codes: 0 done, 1 invalid manifest (nothing changed), 2 usage or input error,\n"          \
    "3 library error, 4 a server failed or the cluster did not converge in time (rerun the\n"      \
    "command: it resumes), 5 no such cluster or instance, 6 (observe) violations found.\n"

static const char usage_up[] =
    "usage: mgo up [--state-dir DIR] [--templates DIR]... [--namespace NS] [--cluster NAME]\n"
    "              [--timeout SEC] [--port-base N] FILE...\n"
    "\n"
    "Runs the MultigresCluster of the files on this machine: validates it (nothing starts when\n"
    "it is invalid), starts its managed etcd, registers its topology, creates every PostgreSQL\n"
    "instance (initdb for each shard's first, base backups for its standbys), names the\n"
    "synchronous standbys, applies the settings, and returns once the cluster is healthy and\n"
    "the observer finds no violation; then prints its status. A cluster that already runs is\n"
    "brought to the files' spec, as 'mgo apply' does. The superuser's password comes from the\n"
    "Secret the cluster references, when the files hold it; otherwise one is generated into\n"
    "the cluster's directory.\n"
    "\n"
    "  --templates DIR   also read the templates of DIR\n"
    "  --namespace NS    namespace of objects that name none (default: default)\n"
    "  --cluster NAME    which cluster, when the files hold several\n"
    "  --timeout SEC     stop waiting after SEC seconds (default 300; checked between steps,\n"
    "                    and a step, a base backup say, can take longer); rerun to resume\n"
    "  --port-base N     first port to hand out (default: from 15432 up, the first 100 free\n"
    "                    ports no other cluster uses); recorded ports never move\n" COMMON_HELP;

static const char usage_apply[] =
    "usage: mgo apply [--state-dir DIR] [--templates DIR]... [--namespace NS] [--cluster NAME]\n"
    "                 [--timeout SEC] FILE...\n"
    "\n"
    "Brings a running cluster to the spec of the files: new instances, scale-downs through\n"
    "drains, rolling updates of restart-class settings (standbys first, the primary last after\n"
    "a switchover), reload-class settings in place. The update-only rules are checked against\n"
    "the spec the cluster last converged to. Killed at any point, rerun it: it resumes.\n"
    "\n" COMMON_HELP;

static const char usage_status[] = "usage: mgo status [--state-dir DIR] [--json] [CLUSTER]\n"
                                   "\n"
                                   "Each instance's cell, pool, shard, role, state, replication "
                                   "lag and port, and the\n"
                                   "cluster's phase. CLUSTER may be left out when the state "
                                   "directory holds one.\n"
                                   "  --json   the same as a JSON document\n"
                                   "\n" COMMON_HELP;

static const char usage_scale[] =
    "usage: mgo scale [--state-dir DIR] [--cell C] [--database D] [--tablegroup T] [--shard S]\n"
    "                 [--timeout SEC] CLUSTER POOL N\n"
    "\n"
    "Sets the pool's replicasPerCell to N: prints the plan (instances created, instances drained\n"
    "in order), records the new size in the cluster's spec and converges as 'mgo apply' does.\n"
    "--database, --tablegroup and --shard choose the shard when the pool name is in several;\n"
    "--cell names the pool's cell (a pool of several cells is sized in all of them alike).\n"
    "\n" COMMON_HELP;

static const char usage_drain[] =
    "usage: mgo drain [--state-dir DIR] [--cluster C] [--timeout SEC] INSTANCE\n"
    "\n"
    "Drains the instance (a primary hands over to its most advanced synchronous standby first)\n"
    "and lets the cluster converge: the instance is then started again on its volume, as a\n"
    "standby. No acknowledged write is lost. Killed at any point, rerun it: it resumes.\n"
    "\n" COMMON_HELP;

static const char usage_observe[] =
    "usage: mgo observe [--state-dir DIR] [--json] [CLUSTER]\n"
    "\n"
    "Checks the running cluster against its invariants and prints each violation with its\n"
    "evidence: one primary per shard; every synchronous standby named is connected and\n"
    "streaming; the durability policy can be met; no drain past its deadline; every recorded\n"
    "process runs and answers, and no unrecorded one runs from the cluster's directory; the\n"
    "topology's pooler records match the running instances. Also prints each standby's lag.\n"
    "\n" COMMON_HELP;

static const char usage_logs[] =
    "usage: mgo logs [--state-dir DIR] [--cluster C] [-n LINES] INSTANCE|ETCD\n"
    "\n"
    "Prints the last LINES (default 50) lines of the process's log.\n"
    "\n" COMMON_HELP;

static const char usage_down[] =
    "usage: mgo down [--state-dir DIR] [--purge] [CLUSTER]\n"
    "\n"
    "Stops every process the cluster's state records, and only those: PostgreSQL instances\n"
    "(fast shutdown), then etcd. The data stays, and 'mgo up' starts it again. --purge also\n"
    "deletes the cluster's directory: every database, the topology and the logs.\n"
    "\n" COMMON_HELP;

struct opts {
    const char *state_dir, *ns, *cluster, *cell, *database, *tablegroup, *shard;
    int json, purge, timeout, port_base, lines;
    json_t *manifests;
    const char *pos[4];
    int npos;
};

static int parse(int argc, char **argv, const char *usage, int files, struct opts *o)
{
    char err[600];
    memset(o, 0, sizeof(*o));
    o->timeout = 300;
    o->lines = 50;
    o->manifests = json_array();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(MGO_EXIT_OK);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
            used = 0;
        } else if (strcmp(a, "--purge") == 0) {
            o->purge = 1;
            used = 0;
        } else if (!v && a[0] == '-' && a[1]) {
            fprintf(stderr, "mgo: option %s needs a value\n\n%s", a, usage);
            return MGO_EXIT_USAGE;
        } else if (strcmp(a, "--state-dir") == 0) {
            o->state_dir = v;
        } else if (strcmp(a, "--namespace") == 0) {
            o->ns = v;
        } else if (strcmp(a, "--cluster") == 0) {
            o->cluster = v;
        } else if (strcmp(a, "--cell") == 0) {
            o->cell = v;
        } else if (strcmp(a, "--database") == 0) {
            o->database = v;
        } else if (strcmp(a, "--tablegroup") == 0) {
            o->tablegroup = v;
        } else if (strcmp(a, "--shard") == 0) {
            o->shard = v;
        } else if (strcmp(a, "--timeout") == 0 || strcmp(a, "--port-base") == 0 ||
                   strcmp(a, "-n") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 65000) {
                fprintf(stderr, "mgo: %s %s: not a number from 1 to 65000\n", a, v);
                return MGO_EXIT_USAGE;
            }
            if (strcmp(a, "-n") == 0)
                o->lines = (int)n;
            else if (strcmp(a, "--timeout") == 0)
                o->timeout = (int)n;
            else
                o->port_base = (int)n;
        } else if (strcmp(a, "--templates") == 0 && files) {
            if (manifest_add_dir(o->manifests, v, err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                return MGO_EXIT_USAGE;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mgo: unknown option '%s'\n\n%s", a, usage);
            return MGO_EXIT_USAGE;
        } else if (files) {
            if (manifest_add_file(o->manifests, a, err, sizeof(err))) {
                fprintf(stderr, "mgo: %s\n", err);
                return MGO_EXIT_USAGE;
            }
            o->npos++;
            used = 0;
        } else {
            if (o->npos == 4) {
                fprintf(stderr, "mgo: too many arguments\n\n%s", usage);
                return MGO_EXIT_USAGE;
            }
            o->pos[o->npos++] = a;
            used = 0;
        }
        i += used;
    }
    return MGO_EXIT_OK;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *or_dash(const char *s)
{
    return s ? s : "-";
}

/* The cluster named (or the only one) under the state directory. */
static int pick_cluster(const char *root, const char *given, char *out, size_t size)
{
    if (given) {
        (void)snprintf(out, size, "%s", given);
        return MGO_EXIT_OK;
    }
    char **names = lhost_clusters(root);
    int n = 0;
    while (names && names[n])
        n++;
    if (n == 1)
        (void)snprintf(out, size, "%s", names[0]);
    else if (n == 0)
        fprintf(stderr, "mgo: no cluster in %s: run 'mgo up FILE' first, or pass --state-dir\n",
                root);
    else {
        fprintf(stderr, "mgo: %s holds several clusters; name one:", root);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " %s", names[i]);
        fputc('\n', stderr);
    }
    free(names);
    return n == 1 ? MGO_EXIT_OK : n == 0 ? MGO_EXIT_NOTFOUND : MGO_EXIT_USAGE;
}

/* Validate (with `previous` when given): MGO_EXIT_OK, or MGO_EXIT_INVALID after printing the
 * findings. */
static int validate(struct lhost *h, const json_t *manifests, const char *ns,
                    const json_t *previous, const char *cluster)
{
    json_t *req = json_pack("{s:O}", "manifests", manifests);
    if (ns)
        json_object_set_new(req, "namespace", json_string(ns));
    if (previous && !json_is_null(previous))
        json_object_set(req, "previous", (json_t *)previous);
    int32_t rc;
    json_t *r = loader_call_json(h->lib, h->plugin, h->lib->validate, req, &rc);
    if (!r) {
        fprintf(stderr, "mgo: mgo_validate: %s\n", h->lib->strerror(rc));
        return MGO_EXIT_LIBRARY;
    }
    int code = MGO_EXIT_OK;
    if (rc != MGO_OK) {
        cli_print_findings(r, 0);
        const char *m = jstr(json_object_get(r, "error"), "message");
        if (m && !json_array_size(json_object_get(r, "objects")))
            fprintf(stderr, "mgo: %s\n", m);
        if (cluster)
            fprintf(stderr, "mgo: cluster %s: the manifest is invalid; nothing was changed\n",
                    cluster);
        else
            fprintf(stderr, "mgo: the manifests are invalid; nothing was started or changed\n");
        code = MGO_EXIT_INVALID;
    }
    json_decref(r);
    return code;
}

/* Standard base64 (a Secret's data): whitespace skipped, padding only at the end and
 * complete. 0, or -1 when it is not base64 or does not fit. */
static int base64_decode(const char *in, char *out, size_t size)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned v = 0;
    int bits = 0, chars = 0, pad = 0;
    size_t n = 0;
    for (; *in; in++) {
        if (strchr(" \t\r\n", *in))
            continue;
        chars++;
        if (*in == '=') {
            pad++;
            continue;
        }
        const char *p = strchr(tbl, *in);
        if (!p || pad)
            return -1;
        v = (v << 6) | (unsigned)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= size)
                return -1;
            out[n++] = (char)((v >> bits) & 0xff);
        }
    }
    if (chars % 4 != 0 || pad > 2)
        return -1;
    out[n] = '\0';
    return 0;
}

/* Per-document manifests of the files; the cluster's document text, name, namespace, its
 * superuser and its password from the referenced Secret (when a file holds it). */
struct split {
    json_t *manifests;    /* [{"source", "text"}], one per document */
    json_t *cluster_text; /* the cluster's document */
    char cluster[64], ns[64], superuser[64], password[512], secret[300];
    int have_password, bad_secret;
};

static void find_password(struct split *s, const json_t *secrets, const json_t *spec)
{
    const json_t *ref = json_object_get(spec, "postgresPasswordSecretRef");
    const char *sname = jstr(ref, "name"), *key = jstr(ref, "key") ? jstr(ref, "key") : "password";
    size_t i;
    json_t *d;
    if (!sname)
        return;
    (void)snprintf(s->secret, sizeof(s->secret), "Secret %s (key %s)", sname, key);
    json_array_foreach (secrets, i, d) {
        const json_t *m = json_object_get(d, "metadata");
        if (!jstr(m, "name") || strcmp(jstr(m, "name"), sname) != 0 ||
            (jstr(m, "namespace") && strcmp(jstr(m, "namespace"), s->ns) != 0))
            continue;
        const char *plain = jstr(json_object_get(d, "stringData"), key);
        const char *b64 = jstr(json_object_get(d, "data"), key);
        if (plain && strlen(plain) < sizeof(s->password)) {
            (void)snprintf(s->password, sizeof(s->password), "%s", plain);
            s->have_password = 1;
        } else if (b64 && base64_decode(b64, s->password, sizeof(s->password)) == 0) {
            s->have_password = 1;
        } else if (b64 || plain) {
            s->bad_secret = 1;
        }
    }
}

static int split_manifests(const json_t *files, const char *want, const char *ns, struct split *s)
{
    size_t i, j;
    json_t *f, *d;
    json_t *secrets = json_array(), *cluster_doc = NULL;
    int clusters = 0;
    memset(s, 0, sizeof(*s));
    s->manifests = json_array();
    json_array_foreach (files, i, f) {
        json_t *docs = ydocs_split(jstr(f, "text"), json_string_length(json_object_get(f, "text")));
        if (!docs) { /* unreadable: validation has said so already */
            json_array_append(s->manifests, f);
            continue;
        }
        json_array_foreach (docs, j, d) {
            json_t *doc = json_object_get(d, "doc");
            const char *kind = jstr(doc, "kind");
            const char *name = jstr(json_object_get(doc, "metadata"), "name");
            json_array_append_new(s->manifests,
                                  json_pack("{s:O, s:O}", "source", json_object_get(f, "source"),
                                            "text", json_object_get(d, "text")));
            if (kind && strcmp(kind, "Secret") == 0)
                json_array_append(secrets, doc);
            if (kind && strcmp(kind, "MultigresCluster") == 0 &&
                (!want || (name && strcmp(name, want) == 0))) {
                clusters++;
                json_decref(cluster_doc);
                json_decref(s->cluster_text);
                cluster_doc = json_incref(doc);
                s->cluster_text = json_incref(json_object_get(d, "text"));
            }
        }
        json_decref(docs);
    }
    if (clusters != 1) {
        if (clusters)
            fprintf(stderr,
                    "mgo: the files hold several clusters; choose one with --cluster NAME\n");
        else
            fprintf(stderr, "mgo: the files hold no MultigresCluster%s%s\n", want ? " named " : "",
                    want ? want : "");
        json_decref(secrets);
        json_decref(cluster_doc);
        json_decref(s->manifests);
        json_decref(s->cluster_text);
        s->manifests = s->cluster_text = NULL;
        return MGO_EXIT_USAGE;
    }
    const json_t *meta = json_object_get(cluster_doc, "metadata");
    const json_t *spec = json_object_get(cluster_doc, "spec");
    (void)snprintf(s->cluster, sizeof(s->cluster), "%s",
                   jstr(meta, "name") ? jstr(meta, "name") : "");
    (void)snprintf(s->ns, sizeof(s->ns), "%s",
                   jstr(meta, "namespace") ? jstr(meta, "namespace")
                   : ns                    ? ns
                                           : "default");
    (void)snprintf(s->superuser, sizeof(s->superuser), "%s",
                   jstr(spec, "postgresSuperuser") ? jstr(spec, "postgresSuperuser") : "postgres");
    find_password(s, secrets, spec);
    json_decref(secrets);
    json_decref(cluster_doc);
    if (s->bad_secret && !s->have_password) {
        fprintf(stderr,
                "mgo: %s: the value is not base64 (data) or is too long (stringData, at most "
                "%zu bytes)\n",
                s->secret, sizeof(s->password) - 1);
        json_decref(s->manifests);
        json_decref(s->cluster_text);
        s->manifests = s->cluster_text = NULL;
        return MGO_EXIT_USAGE;
    }
    return MGO_EXIT_OK;
}

static void print_table(const json_t *status)
{
    size_t i;
    json_t *x;
    printf("cluster %s: %s\n", or_dash(jstr(status, "cluster")), or_dash(jstr(status, "phase")));
    printf("%-58s %-8s %-8s %-22s %-8s %-9s %-10s %s\n", "INSTANCE", "CELL", "POOL", "SHARD",
           "ROLE", "STATE", "LAG", "PORT");
    json_array_foreach (json_object_get(status, "instances"), i, x) {
        char shard[200], lag[32];
        (void)snprintf(shard, sizeof(shard), "%s/%s/%s", or_dash(jstr(x, "database")),
                       or_dash(jstr(x, "tablegroup")), or_dash(jstr(x, "shard")));
        json_t *l = json_object_get(x, "lag_bytes");
        if (json_is_integer(l))
            (void)snprintf(lag, sizeof(lag), "%lldB", (long long)json_integer_value(l));
        else
            (void)snprintf(lag, sizeof(lag), "-");
        char rolebuf[32];
        (void)snprintf(rolebuf, sizeof(rolebuf), "%s%s", or_dash(jstr(x, "role")),
                       json_is_true(json_object_get(x, "synchronous")) ? "*" : "");
        char state[64];
        (void)snprintf(state, sizeof(state), "%s",
                       jstr(x, "drain") ? jstr(x, "drain") : or_dash(jstr(x, "state")));
        printf("%-58s %-8s %-8s %-22s %-8s %-9s %-10s %lld\n", or_dash(jstr(x, "name")),
               or_dash(jstr(x, "cell")), or_dash(jstr(x, "pool")), shard, rolebuf, state, lag,
               (long long)json_integer_value(json_object_get(x, "port")));
    }
    json_array_foreach (json_object_get(status, "etcd"), i, x)
        printf("etcd %s: %s, 127.0.0.1:%lld\n", or_dash(jstr(x, "name")),
               json_is_true(json_object_get(x, "running")) ? "running" : "stopped",
               (long long)json_integer_value(json_object_get(x, "client_port")));
    printf("(* a synchronous standby; LAG: bytes of WAL not yet replayed)\n");
    if (jstr(status, "observe_error"))
        printf("roles and lag unknown: %s\n", jstr(status, "observe_error"));
    size_t nv = json_array_size(json_object_get(status, "violations"));
    if (nv)
        printf("%zu invariant violation(s): run 'mgo observe'\n", nv);
}

static int converge_and_report(struct lhost *h, int timeout)
{
    int rc = lhost_converge(h, timeout * 1000);
    if (rc != 0 && h->exit_hint) {
        fprintf(stderr, "mgo: %s\n", h->error);
        return h->exit_hint;
    }
    if (rc != 0) {
        fprintf(stderr, "mgo: %s\n", h->error);
        fprintf(stderr,
                "mgo: cluster %s is not converged; the state is kept: rerun the command to "
                "resume, 'mgo status' and 'mgo logs INSTANCE' show more\n",
                h->cluster);
        return MGO_EXIT_RETRY;
    }
    lhost_say(h, "cluster %s is healthy", h->cluster);
    json_t *s = lhost_status(h);
    if (s)
        print_table(s);
    json_decref(s);
    return MGO_EXIT_OK;
}

/* A port nothing listens on and nothing holds bound (an instance's port stays its own). */
static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok, one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* as PostgreSQL and etcd bind: a port left in TIME_WAIT by a cluster just stopped is free */
    ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
         bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* The port base of a new cluster: from 15432 up in steps of PORT_SPAN, the first whose
 * PORT_SPAN ports are all free now and that no other cluster of the state directory uses
 * (ports are handed out upward from the base; the span leaves room to scale). */
#define PORT_SPAN 100
static int choose_port_base(const char *root)
{
    char **names = lhost_clusters(root);
    for (int base = 15432; base + PORT_SPAN < 60000; base += PORT_SPAN) {
        int ok = 1;
        for (int i = 0; ok && names && names[i]; i++) {
            char path[1200];
            (void)snprintf(path, sizeof(path), "%s/%s/state.json", root, names[i]);
            json_t *st = json_load_file(path, 0, NULL);
            json_int_t other = json_integer_value(json_object_get(st, "port_base"));
            ok = other == 0 || other + PORT_SPAN <= base || base + PORT_SPAN <= other;
            json_decref(st);
        }
        for (int p = base; ok && p < base + PORT_SPAN; p++)
            ok = port_free(p);
        if (ok) {
            free(names);
            return base;
        }
    }
    free(names);
    return 15432;
}

/* 24 characters from the kernel's random source. 0, or -1 when it fails. */
static int generate_password(char *out, size_t size)
{
    static const char al[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char rnd[24];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -1;
    size_t n = 0;
    for (; n < sizeof(rnd) && n + 1 < size; n++)
        out[n] = al[rnd[n] % (sizeof(al) - 1)];
    out[n] = '\0';
    return 0;
}

static int cmd_up(struct loader_lib *lib, int argc, char **argv, int is_apply)
{
    struct opts o;
    struct lhost h;
    struct split sp;
    char root[512];
    int code = parse(argc, argv, is_apply ? usage_apply : usage_up, 1, &o);
    if (code)
        goto out_opts;
    if (o.npos == 0) {
        fprintf(stderr, "mgo: no FILE given\n\n%s", is_apply ? usage_apply : usage_up);
        code = MGO_EXIT_USAGE;
        goto out_opts;
    }
    if (lhost_default_root(o.state_dir, root, sizeof(root)) != 0) {
        fprintf(stderr, "mgo: the state directory's path is too long\n");
        code = MGO_EXIT_USAGE;
        goto out_opts;
    }
    /* validate before anything is created */
    {
        struct lhost v;
        memset(&v, 0, sizeof(v));
        v.lib = lib;
        mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
        if (lib->open(&host, &v.plugin) != MGO_OK) {
            code = MGO_EXIT_LIBRARY;
            goto out_opts;
        }
        code = validate(&v, o.manifests, o.ns, NULL, o.cluster);
        lib->close(v.plugin);
        if (code)
            goto out_opts;
    }
    code = split_manifests(o.manifests, o.cluster, o.ns, &sp);
    if (code)
        goto out_opts;
    /* initdb refuses these in the superuser's name; refused here, before anything starts */
    if (strpbrk(sp.superuser, "\"$'\\") || !sp.superuser[0]) {
        fprintf(stderr,
                "mgo: spec.postgresSuperuser '%s': initdb refuses a name with \", $, ' or \\; "
                "choose another\n",
                sp.superuser);
        json_decref(sp.manifests);
        json_decref(sp.cluster_text);
        code = MGO_EXIT_USAGE;
        goto out_opts;
    }
    json_t *cluster_text = sp.cluster_text;
    int rc = lhost_open(&h, lib, root, sp.cluster, !is_apply, 1);
    if (rc != 0) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = rc == 5 ? MGO_EXIT_NOTFOUND : h.exit_hint ? h.exit_hint : MGO_EXIT_RETRY;
        goto out_h;
    }
    int fresh = !json_object_get(h.st, "manifests");
    if (!fresh && jstr(h.st, "namespace") && strcmp(jstr(h.st, "namespace"), sp.ns) != 0) {
        fprintf(stderr,
                "mgo: cluster %s runs in namespace %s, the files put it in %s: a cluster's "
                "namespace does not change (pass --namespace %s, or name another cluster)\n",
                sp.cluster, jstr(h.st, "namespace"), sp.ns, jstr(h.st, "namespace"));
        code = MGO_EXIT_USAGE;
        goto out_h;
    }
    const json_t *previous = json_object_get(h.st, "previous");
    if (!fresh && previous && !json_is_null(previous)) {
        code = validate(&h, sp.manifests, o.ns, previous, sp.cluster);
        if (code)
            goto out_h;
    }
    if (fresh) {
        char gone[700], ignored[200];
        (void)snprintf(gone, sizeof(gone), "%s/.purge.%s", root, sp.cluster);
        (void)proc_remove_purged(gone, ignored, sizeof(ignored)); /* an earlier killed purge */
        lhost_say(&h, "cluster %s: state in %s", sp.cluster, h.env.dir);
        int base = o.port_base ? o.port_base : choose_port_base(root);
        json_object_set_new(h.st, "port_base", json_integer(base));
        lhost_say(&h, "cluster %s: ports from %d (127.0.0.1)", sp.cluster, base);
        json_object_set_new(h.st, "superuser", json_string(sp.superuser));
        (void)snprintf(h.env.superuser, sizeof(h.env.superuser), "%s", sp.superuser);
        char pw[512];
        int generated = !sp.have_password;
        if (generated && generate_password(pw, sizeof(pw)) != 0) {
            fprintf(stderr,
                    "mgo: no random bytes for a password (getrandom: %s); put a Secret "
                    "document with the password in the files\n",
                    strerror(errno));
            code = MGO_EXIT_RETRY;
            goto out_h;
        } else if (!generated)
            (void)snprintf(pw, sizeof(pw), "%s", sp.password);
        if (proc_write_password(&h.env, pw, generated, h.error, sizeof(h.error)) != 0) {
            fprintf(stderr, "mgo: %s\n", h.error);
            code = MGO_EXIT_RETRY;
            goto out_h;
        }
        json_object_set_new(h.st, "password", json_string(pw));
        json_object_set_new(h.st, "password_source",
                            json_string(generated ? "generated" : "secret"));
        if (generated)
            lhost_say(&h,
                      "the files hold no %s: generated the superuser's password into "
                      "%s/password",
                      sp.secret[0] ? sp.secret : "password Secret", h.env.dir);
    } else if (sp.have_password && jstr(h.st, "password") &&
               strcmp(jstr(h.st, "password"), sp.password) != 0) {
        lhost_say(&h,
                  "warning: %s differs from the password cluster %s was created with; "
                  "mgo does not change a running cluster's password (ALTER ROLE does, and "
                  "then update %s/pgpass)",
                  sp.secret, sp.cluster, h.env.dir);
    }
    if (!fresh && o.port_base) {
        lhost_say(&h, "--port-base is ignored: cluster %s has its ports already", sp.cluster);
    }
    json_object_set_new(h.st, "namespace", json_string(sp.ns));
    json_object_set(h.st, "manifests", sp.manifests);
    json_object_set(h.st, "cluster_text", cluster_text);
    if (lhost_save(&h) != 0) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = MGO_EXIT_RETRY;
        goto out_h;
    }
    code = converge_and_report(&h, o.timeout);
out_h:
    json_decref(cluster_text);
    json_decref(sp.manifests);
    lhost_close(&h);
out_opts:
    json_decref(o.manifests);
    return code;
}

/* Open the cluster of a command without files. */
static int open_named(struct loader_lib *lib, struct opts *o, const char *given, int lock,
                      struct lhost *h)
{
    char root[512], name[64];
    if (lhost_default_root(o->state_dir, root, sizeof(root)) != 0) {
        fprintf(stderr, "mgo: the state directory's path is too long\n");
        return MGO_EXIT_USAGE;
    }
    int code = pick_cluster(root, given, name, sizeof(name));
    if (code)
        return code;
    int rc = lhost_open(h, lib, root, name, 0, lock);
    if (rc != 0) {
        fprintf(stderr, "mgo: %s\n", h->error);
        lhost_close(h);
        return rc == 5 ? MGO_EXIT_NOTFOUND : h->exit_hint ? h->exit_hint : MGO_EXIT_RETRY;
    }
    return MGO_EXIT_OK;
}

static int cmd_status(struct loader_lib *lib, int argc, char **argv, int observe)
{
    struct opts o;
    struct lhost h;
    int code = parse(argc, argv, observe ? usage_observe : usage_status, 0, &o);
    if (code || (code = open_named(lib, &o, o.npos ? o.pos[0] : NULL, 0, &h)) != 0) {
        json_decref(o.manifests);
        return code;
    }
    h.quiet = 1;
    json_t *r = observe ? lhost_observe(&h) : lhost_status(&h);
    if (!r) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = MGO_EXIT_RETRY;
    } else if (o.json) {
        char *t = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", t ? t : "{}");
        free(t);
    } else if (!observe) {
        print_table(r);
    } else {
        size_t i, j;
        json_t *v, *sh, *n;
        json_array_foreach (json_object_get(r, "shards"), i, sh) {
            printf("shard %s: primary %s, synchronous_standby_names '%s'\n",
                   or_dash(jstr(sh, "name")),
                   jstr(sh, "primary") ? or_dash(jstr(sh, "primary")) : "(none)",
                   jstr(sh, "synchronous_standby_names")
                       ? or_dash(jstr(sh, "synchronous_standby_names"))
                       : "");
            json_array_foreach (json_object_get(sh, "nodes"), j, n) {
                json_t *lag = json_object_get(n, "lag_bytes");
                char lagtext[48] = "unknown";
                if (json_is_integer(lag))
                    (void)snprintf(lagtext, sizeof(lagtext), "%lld bytes",
                                   (long long)json_integer_value(lag));
                if (strcmp(or_dash(jstr(n, "role")), "standby") == 0)
                    printf("  %s: standby, %s%s, lag %s\n", or_dash(jstr(n, "name")),
                           jstr(n, "state") ? jstr(n, "state") : "not connected",
                           json_is_true(json_object_get(n, "synchronous")) ? ", synchronous" : "",
                           lagtext);
            }
        }
        json_array_foreach (json_object_get(r, "violations"), i, v)
            printf("VIOLATION %s%s%s: %s\n", or_dash(jstr(v, "invariant")),
                   jstr(v, "instance") ? " " : "",
                   jstr(v, "instance") ? or_dash(jstr(v, "instance")) : "",
                   or_dash(jstr(v, "evidence")));
        if (json_is_true(json_object_get(r, "ok")))
            printf("no violation\n");
    }
    if (r && observe && !json_is_true(json_object_get(r, "ok")))
        code = MGO_EXIT_VIOLATIONS;
    json_decref(r);
    lhost_close(&h);
    json_decref(o.manifests);
    return code;
}

static int cmd_scale(struct loader_lib *lib, int argc, char **argv)
{
    struct opts o;
    struct lhost h;
    int code = parse(argc, argv, usage_scale, 0, &o);
    if (code)
        goto out;
    if (o.npos != 3) {
        fprintf(stderr, "mgo: scale needs CLUSTER POOL N\n\n%s", usage_scale);
        code = MGO_EXIT_USAGE;
        goto out;
    }
    char *end;
    long n = strtol(o.pos[2], &end, 10);
    if (*end || n < 1 || n > 32) {
        fprintf(stderr, "mgo: %s: the size must be a number from 1 to 32\n", o.pos[2]);
        code = MGO_EXIT_USAGE;
        goto out;
    }
    if ((code = open_named(lib, &o, o.pos[0], 1, &h)) != 0)
        goto out;
    json_t *req = json_pack("{s:O, s:s, s:s, s:i}", "manifests", json_object_get(h.st, "manifests"),
                            "cluster", h.cluster, "pool", o.pos[1], "replicas", (int)n);
    if (jstr(h.st, "namespace"))
        json_object_set(req, "namespace", json_object_get(h.st, "namespace"));
    json_object_set_new(req, "observed", lhost_observed(&h)); /* roles and readiness */
    if (o.cell)
        json_object_set_new(req, "cell", json_string(o.cell));
    if (o.database)
        json_object_set_new(req, "database", json_string(o.database));
    if (o.tablegroup)
        json_object_set_new(req, "tablegroup", json_string(o.tablegroup));
    if (o.shard)
        json_object_set_new(req, "shard", json_string(o.shard));
    int32_t rc;
    json_t *r = loader_call_json(lib, h.plugin, lib->scale, req, &rc);
    if (rc != MGO_OK) {
        const char *m = jstr(json_object_get(r, "error"), "message");
        cli_print_findings(r, 0);
        fprintf(stderr, "mgo: scale: %s\n", m ? m : lib->strerror(rc));
        /* validation findings: the changed spec is invalid (1); otherwise the request named
         * what the cluster does not have (2) */
        code = rc != MGO_EINVAL                                 ? MGO_EXIT_LIBRARY
               : json_array_size(json_object_get(r, "objects")) ? MGO_EXIT_INVALID
                                                                : MGO_EXIT_USAGE;
        json_decref(r);
        lhost_close(&h);
        goto out;
    }
    printf("scale %s pool %s (%s/%s/%s)%s%s: %lld -> %lld per cell\n", h.cluster, o.pos[1],
           or_dash(jstr(r, "database")), or_dash(jstr(r, "tablegroup")), or_dash(jstr(r, "shard")),
           o.cell ? " in cell " : "", o.cell ? o.cell : "",
           (long long)json_integer_value(json_object_get(r, "from")),
           (long long)json_integer_value(json_object_get(r, "to")));
    printf("  writes %s\n", or_dash(jstr(r, "path")));
    size_t i;
    json_t *x;
    json_array_foreach (json_object_get(r, "create"), i, x)
        printf("  create %s\n",
               json_is_string(x) ? json_string_value(x) : or_dash(jstr(x, "name")));
    json_array_foreach (json_object_get(r, "drain"), i, x)
        printf("  drain  %s (%s, then its volume: %s)\n", or_dash(jstr(x, "name")),
               or_dash(jstr(x, "role")), or_dash(jstr(x, "volume")));
    fflush(stdout);
    /* the cluster document becomes the changed spec (JSON); templates and Secrets stay */
    char *spec = json_dumps(json_object_get(r, "spec"), JSON_COMPACT);
    json_t *ms = json_object_get(h.st, "manifests");
    const char *ct = jstr(h.st, "cluster_text");
    int replaced = 0;
    json_array_foreach (ms, i, x)
        if (ct && !replaced && jstr(x, "text") && strcmp(jstr(x, "text"), ct) == 0) {
            json_object_set_new(x, "text", json_string(spec));
            replaced = 1;
        }
    json_decref(r);
    if (!replaced || !spec) {
        fprintf(stderr, "mgo: the cluster's document is not among its recorded manifests\n");
        free(spec);
        lhost_close(&h);
        code = MGO_EXIT_LIBRARY;
        goto out;
    }
    json_object_set_new(h.st, "cluster_text", json_string(spec));
    free(spec);
    code = validate(&h, ms, jstr(h.st, "namespace"), json_object_get(h.st, "previous"), h.cluster);
    if (code == MGO_EXIT_OK && lhost_save(&h) != 0) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = MGO_EXIT_RETRY;
    }
    if (code == MGO_EXIT_OK)
        code = converge_and_report(&h, o.timeout);
    lhost_close(&h);
out:
    json_decref(o.manifests);
    return code;
}

static int cmd_drain(struct loader_lib *lib, int argc, char **argv)
{
    struct opts o;
    struct lhost h;
    int code = parse(argc, argv, usage_drain, 0, &o);
    if (code)
        goto out;
    if (o.npos != 1) {
        fprintf(stderr, "mgo: drain needs INSTANCE\n\n%s", usage_drain);
        code = MGO_EXIT_USAGE;
        goto out;
    }
    if ((code = open_named(lib, &o, o.cluster, 1, &h)) != 0)
        goto out;
    /* a drain this command requested earlier and did not finish (it was killed) resumes as
     * any pass does; a new one starts here */
    int rc = lhost_request_drain(&h, o.pos[0], o.timeout * 1000);
    if (rc != 0) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = rc == 5 ? MGO_EXIT_NOTFOUND : rc == 2 ? MGO_EXIT_USAGE : MGO_EXIT_RETRY;
    } else {
        code = converge_and_report(&h, o.timeout);
    }
    lhost_close(&h);
out:
    json_decref(o.manifests);
    return code;
}

static int cmd_logs(struct loader_lib *lib, int argc, char **argv)
{
    struct opts o;
    struct lhost h;
    int code = parse(argc, argv, usage_logs, 0, &o);
    if (code)
        goto out;
    if (o.npos != 1) {
        fprintf(stderr, "mgo: logs needs INSTANCE or ETCD\n\n%s", usage_logs);
        code = MGO_EXIT_USAGE;
        goto out;
    }
    if ((code = open_named(lib, &o, o.cluster, 0, &h)) != 0)
        goto out;
    const char *name = o.pos[0];
    if (!json_object_get(json_object_get(h.st, "instances"), name) &&
        !json_object_get(json_object_get(h.st, "etcd"), name)) {
        fprintf(stderr, "mgo: cluster %s has no instance or etcd %s ('mgo status' lists them)\n",
                h.cluster, name);
        code = MGO_EXIT_NOTFOUND;
        lhost_close(&h);
        goto out;
    }
    char path[800];
    (void)snprintf(path, sizeof(path), "%s/logs/%s.log", h.env.dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "mgo: %s: %s\n", path, strerror(errno));
        code = MGO_EXIT_NOTFOUND;
    } else {
        /* the last N lines: keep offsets of line starts in a ring */
        long *ring = calloc((size_t)o.lines, sizeof(long));
        long pos = 0;
        int c, prev = '\n';
        size_t count = 0;
        while (ring && (c = fgetc(f)) != EOF) {
            if (prev == '\n')
                ring[count++ % (size_t)o.lines] = pos;
            prev = c;
            pos++;
        }
        if (ring && count) {
            long start = ring[count > (size_t)o.lines ? count % (size_t)o.lines : 0];
            char buf[4096];
            size_t n;
            if (fseek(f, start, SEEK_SET) == 0)
                while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                    fwrite(buf, 1, n, stdout);
        }
        free(ring);
        fclose(f);
        fprintf(stderr, "mgo: (%s)\n", path);
    }
    lhost_close(&h);
out:
    json_decref(o.manifests);
    return code;
}

static int cmd_down(struct loader_lib *lib, int argc, char **argv)
{
    struct opts o;
    struct lhost h;
    int code = parse(argc, argv, usage_down, 0, &o);
    const char *named = o.npos ? o.pos[0] : o.cluster;
    if (code == 0 && o.purge && named && !strchr(named, '/')) {
        /* what a purge killed half-way left aside goes now, whether or not the cluster is
         * back */
        char root[512], gone[700], ignored[200];
        if (lhost_default_root(o.state_dir, root, sizeof(root)) == 0) {
            (void)snprintf(gone, sizeof(gone), "%s/.purge.%s", root, named);
            if (access(gone, F_OK) == 0 && proc_remove_purged(gone, ignored, sizeof(ignored)) == 0)
                fprintf(stderr, "mgo: removed %s, left by an interrupted purge\n", gone);
        }
    }
    if (code || (code = open_named(lib, &o, named, 1, &h)) != 0)
        goto out;
    if (lhost_stop_all(&h) != 0) {
        fprintf(stderr, "mgo: %s\n", h.error);
        code = MGO_EXIT_RETRY;
    } else if (o.purge) {
        /* out of sight first (a purge killed half-way leaves no cluster half there), then
         * removed; a leftover of an earlier killed purge goes too */
        char gone[700];
        (void)snprintf(gone, sizeof(gone), "%s/.purge.%s", h.root, h.cluster);
        h.error[0] = '\0';
        lhost_say(&h, "removing %s", h.env.dir);
        if ((proc_remove_purged(gone, h.error, sizeof(h.error)) != 0 ||
             rename(h.env.dir, gone) != 0 ||
             proc_remove_purged(gone, h.error, sizeof(h.error)) != 0)) {
            if (!h.error[0])
                (void)snprintf(h.error, sizeof(h.error), "rename %s: %s", h.env.dir,
                               strerror(errno));
            fprintf(stderr, "mgo: %s\n", h.error);
            code = MGO_EXIT_RETRY;
        }
    } else {
        lhost_say(&h,
                  "cluster %s stopped; its data stays in %s ('mgo up' starts it again, "
                  "'mgo down --purge' deletes it)",
                  h.cluster, h.env.dir);
    }
    lhost_close(&h);
out:
    json_decref(o.manifests);
    return code;
}

static int dispatch(struct loader_lib *lib, const char *cmd, int argc, char **argv);

int up_command(struct loader_lib *lib, const char *cmd, int argc, char **argv)
{
    /* mgo's own connections say everything they need (host, port, user, password file):
     * PGSSLMODE, PGSERVICE, PGOPTIONS and the like of the caller's environment would change
     * them, and PostgreSQL's programs mgo runs */
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "PG", 2) == 0 && strchr(*e, '=')) {
                char name[128];
                size_t n = (size_t)(strchr(*e, '=') - *e);
                (void)snprintf(name, sizeof(name), "%.*s", (int)(n < 127 ? n : 127), *e);
                (void)unsetenv(name);
                again = 1;
                break;
            }
    }
    int code = dispatch(lib, cmd, argc, argv);
    /* output that did not reach its destination is a failure */
    if (code >= 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "mgo: cannot write the output\n");
        return MGO_EXIT_USAGE;
    }
    return code;
}

static int dispatch(struct loader_lib *lib, const char *cmd, int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cmd, "up") == 0)
        return cmd_up(lib, argc, argv, 0);
    if (strcmp(cmd, "apply") == 0)
        return cmd_up(lib, argc, argv, 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(lib, argc, argv, 0);
    if (strcmp(cmd, "observe") == 0)
        return cmd_status(lib, argc, argv, 1);
    if (strcmp(cmd, "scale") == 0)
        return cmd_scale(lib, argc, argv);
    if (strcmp(cmd, "drain") == 0)
        return cmd_drain(lib, argc, argv);
    if (strcmp(cmd, "logs") == 0)
        return cmd_logs(lib, argc, argv);
    if (strcmp(cmd, "down") == 0)
        return cmd_down(lib, argc, argv);
    return -1;
}
