/*
 * mgo-kube: the Kubernetes controller for MultigresCluster (docs/kube.md). Flags follow
 * controller-runtime's names, so the Deployment in host-shims/kube/deploy reads like any
 * operator's.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../local/loader.h"
#include "ctrl.h"
#include "httpd.h"
#include "kc.h"
#include "klog.h"
#include "kmetrics.h"
#include "leader.h"

#ifndef MGO_VERSION
#define MGO_VERSION "0.0.0"
#endif

#define MAX_RESOLVE 64

struct app {
    struct ctrl *ctrl;
    struct kmetrics *metrics;
    atomic_int leading;
    atomic_int lost;   /* leadership lost: exit 1 */
    atomic_int failed; /* the workers could not start: exit 1 (the Lease is released) */
    bool leader_elect;
};

static const char usage[] =
    "usage: mgo-kube [options]\n"
    "\n"
    "Watches MultigresCluster resources (and CoreTemplate, CellTemplate, ShardTemplate), calls\n"
    "libmgo's reconcile for each, and applies what it returns: server-side apply with field\n"
    "manager 'mgo', the status subresource, Events. See docs/kube.md.\n"
    "\n"
    "  --kubeconfig PATH                 else $KUBECONFIG, in-cluster, ~/.kube/config\n"
    "  --context NAME                    the kubeconfig context (default: current-context)\n"
    "  --namespace NS                    watch only NS (default: every namespace)\n"
    "  --workers N                       clusters reconciled at once (default 4)\n"
    "  --leader-elect                    run only while holding the Lease (for replicas > 1)\n"
    "  --leader-election-id NAME         the Lease's name (default mgo-kube-leader)\n"
    "  --leader-election-namespace NS    the Lease's namespace (default: the configuration's)\n"
    "  --health-probe-bind-address ADDR  /healthz and /readyz (default :8081; 0: off)\n"
    "  --metrics-bind-address ADDR       /metrics (default :8080; 0: off)\n"
    "  --resolve FROM=TO                 reach address FROM at TO (FROM may start with '*'\n"
    "                                    to match a suffix); for running outside the cluster\n"
    "  --no-topology                     do not register Cell and Database records\n"
    "  --topology-deadline-ms N          per pass (default 5000)\n"
    "  --identity NAME                   this replica's name (default HOSTNAME_random)\n"
    "  --log-level LEVEL                 error, warn, info (default), debug\n"
    "  --version                         print the version and exit\n"
    "\n"
    "Exit codes: 0 stopped by SIGTERM or SIGINT; 1 leadership lost or a fatal error;\n"
    "2 usage.\n";

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The probe and metrics endpoints. */
static int serve(void *ctx, const char *path, int is_head, struct httpd_response *r)
{
    struct app *a = ctx;

    (void)is_head;
    if (strcmp(path, "/healthz") == 0) {
        r->status = 200;
        r->body = strdup("ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        bool ready = a->ctrl && ctrl_synced(a->ctrl);
        r->status = ready ? 200 : 503;
        r->body = strdup(ready ? "ok\n" : "informers not synced\n");
    } else if (strcmp(path, "/metrics") == 0) {
        size_t len;
        if (a->ctrl)
            ctrl_sample_metrics(a->ctrl);
        kmetrics_leader(a->metrics, atomic_load(&a->leading));
        if (kmetrics_render(a->metrics, &r->body, &len) != 0) {
            r->status = 500;
            r->body = strdup("out of memory\n");
        } else {
            r->status = 200;
            r->content_type = "text/plain; version=0.0.4; charset=utf-8";
        }
    } else {
        r->status = 404;
        r->body = strdup("not found\n");
    }
    if (!r->body)
        return -ENOMEM;
    r->body_len = strlen(r->body);
    return 0;
}

static void on_started(void *ctx)
{
    struct app *a = ctx;

    atomic_store(&a->leading, 1);
    klog(KLOG_INFO, "leading: starting workers");
    if (ctrl_start_workers(a->ctrl) != 0) {
        klog(KLOG_ERROR, "workers could not start");
        atomic_store(&a->failed, 1); /* exit 1, but release the Lease: it is still ours */
        (void)kill(getpid(), SIGTERM);
    }
}

static void on_stopped(void *ctx)
{
    struct app *a = ctx;

    if (!atomic_load(&a->leading))
        return;
    atomic_store(&a->leading, 0);
    atomic_store(&a->lost, 1);
    /* another replica may lead within the lease's remaining seconds: stop writing now, not
     * after main has woken up and stopped the probe servers */
    ctrl_cancel(a->ctrl);
    klog(KLOG_ERROR, "leader election lost: exiting");
    (void)kill(getpid(), SIGTERM); /* wakes main's sigwait */
}

static void leader_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    klog_kv(level <= 0   ? KLOG_ERROR
            : level == 1 ? KLOG_WARN
            : level == 2 ? KLOG_INFO
                         : KLOG_DEBUG,
            "source", "leader-election", NULL, NULL, "%s", msg);
}

static void default_identity(char *buf, size_t size)
{
    char host[256] = "mgo-kube";

    (void)gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    (void)snprintf(buf, size, "%s_%016" PRIx64, host, kc_random_u64());
}

int main(int argc, char **argv)
{
    enum {
        O_KUBECONFIG = 256,
        O_CONTEXT,
        O_NS,
        O_WORKERS,
        O_LE,
        O_LE_ID,
        O_LE_NS,
        O_HEALTH,
        O_METRICS,
        O_RESOLVE,
        O_NO_TOPO,
        O_TOPO_DL,
        O_IDENTITY,
        O_LOG,
        O_VERSION,
        O_HELP
    };
    static const struct option longs[] = {
        {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
        {"context", required_argument, NULL, O_CONTEXT},
        {"namespace", required_argument, NULL, O_NS},
        {"workers", required_argument, NULL, O_WORKERS},
        {"leader-elect", no_argument, NULL, O_LE},
        {"leader-election-id", required_argument, NULL, O_LE_ID},
        {"leader-election-namespace", required_argument, NULL, O_LE_NS},
        {"health-probe-bind-address", required_argument, NULL, O_HEALTH},
        {"metrics-bind-address", required_argument, NULL, O_METRICS},
        {"resolve", required_argument, NULL, O_RESOLVE},
        {"no-topology", no_argument, NULL, O_NO_TOPO},
        {"topology-deadline-ms", required_argument, NULL, O_TOPO_DL},
        {"identity", required_argument, NULL, O_IDENTITY},
        {"log-level", required_argument, NULL, O_LOG},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    const char *kubeconfig = NULL, *context = NULL, *le_id = "mgo-kube-leader", *le_ns = NULL;
    const char *health_addr = ":8081", *metrics_addr = ":8080";
    struct ctrl_resolve resolve[MAX_RESOLVE];
    char identity[320] = "", err[512], user_agent[400];
    struct ctrl_options co = {.workers = 4, .topology = true, .topology_deadline_ms = 5000};
    struct app a = {0};
    struct kc_config cfg = {0};
    struct loader_lib lib = {0};
    struct httpd *health = NULL, *metrics = NULL;
    struct leader *le = NULL;
    sigset_t sigs;
    int opt, rc = 1, sig = 0;
    long v;

    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case O_KUBECONFIG:
            kubeconfig = optarg;
            break;
        case O_CONTEXT:
            context = optarg;
            break;
        case O_NS:
            co.namespace = optarg;
            break;
        case O_WORKERS:
            if (parse_int(optarg, 1, 256, &v) != 0) {
                fprintf(stderr, "mgo-kube: --workers: want 1 to 256, got '%s'\n", optarg);
                return 2;
            }
            co.workers = (int)v;
            break;
        case O_LE:
            a.leader_elect = true;
            break;
        case O_LE_ID:
            le_id = optarg;
            break;
        case O_LE_NS:
            le_ns = optarg;
            break;
        case O_HEALTH:
            health_addr = optarg;
            break;
        case O_METRICS:
            metrics_addr = optarg;
            break;
        case O_RESOLVE: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || co.n_resolve >= MAX_RESOLVE) {
                fprintf(stderr, "mgo-kube: --resolve: want FROM=TO (at most %d), got '%s'\n",
                        MAX_RESOLVE, optarg);
                return 2;
            }
            *eq = '\0';
            resolve[co.n_resolve].from = optarg;
            resolve[co.n_resolve++].to = eq + 1;
            break;
        }
        case O_NO_TOPO:
            co.topology = false;
            break;
        case O_TOPO_DL:
            if (parse_int(optarg, 1, 600000, &v) != 0) {
                fprintf(stderr, "mgo-kube: --topology-deadline-ms: want 1 to 600000\n");
                return 2;
            }
            co.topology_deadline_ms = v;
            break;
        case O_IDENTITY:
            (void)snprintf(identity, sizeof(identity), "%s", optarg);
            break;
        case O_LOG: {
            enum klog_level l;
            if (klog_parse_level(optarg, &l) != 0) {
                fprintf(stderr, "mgo-kube: --log-level: want error, warn, info or debug\n");
                return 2;
            }
            klog_set_level(l);
            break;
        }
        case O_VERSION:
            printf("mgo-kube %s\n", MGO_VERSION);
            return 0;
        case O_HELP:
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mgo-kube: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    co.resolve = resolve;
    if (!identity[0])
        default_identity(identity, sizeof(identity));
    co.identity = identity;
    /* the workers' requests name the replica, so that an audit log tells replicas apart; a
     * name that is not printable ASCII would be refused in a header: then the default */
    (void)snprintf(user_agent, sizeof(user_agent), "mgo-kube/%s (%s)", MGO_VERSION, identity);
    co.user_agent = user_agent;
    for (const char *p = user_agent; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            co.user_agent = NULL;

    /* signals are taken by sigwait in this thread: block them before any thread starts */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (kc_global_init() != 0 || kmetrics_new(&a.metrics) != 0) {
        klog(KLOG_ERROR, "out of memory at start");
        return 1;
    }
    if (kc_config_load(kubeconfig, context, &cfg, err, sizeof(err)) != 0) {
        klog(KLOG_ERROR, "configuration: %s", err);
        goto out;
    }
    if (loader_load(&lib, err, sizeof(err)) != 0) {
        klog(KLOG_ERROR, "libmgo: %s", err);
        goto out;
    }
    klog_kv(KLOG_INFO, "identity", identity, "server", cfg.server,
            "mgo-kube %s starting (libmgo %s)", MGO_VERSION, lib.path);
    int crc = ctrl_new(&cfg, &co, &lib, a.metrics, &a.ctrl);
    if (crc != 0) {
        klog(KLOG_ERROR, "controller: cannot start (%d)", crc);
        goto out;
    }
    /* after ctrl_new: the handler reads a.ctrl */
    if (strcmp(health_addr, "0") != 0 && httpd_start(&health, health_addr, serve, &a) != 0) {
        klog(KLOG_ERROR, "--health-probe-bind-address %s: cannot listen", health_addr);
        goto out;
    }
    if (strcmp(metrics_addr, "0") != 0 && httpd_start(&metrics, metrics_addr, serve, &a) != 0) {
        klog(KLOG_ERROR, "--metrics-bind-address %s: cannot listen", metrics_addr);
        goto out;
    }
    if (health)
        klog(KLOG_INFO, "probes on port %d", httpd_port(health));
    if (metrics)
        klog(KLOG_INFO, "metrics on port %d", httpd_port(metrics));
    if (a.leader_elect) {
        struct leader_config lc = {.namespace = le_ns ? le_ns : cfg.namespace,
                                   .name = le_id,
                                   .identity = identity,
                                   .on_started_leading = on_started,
                                   .on_stopped_leading = on_stopped,
                                   .callback_ctx = &a,
                                   .log = leader_log};
        if (leader_config_check(&lc, err, sizeof(err)) != 0) {
            klog(KLOG_ERROR, "leader election: %s", err);
            goto out;
        }
        if (leader_start(&lc, &cfg, &le) != 0) {
            klog(KLOG_ERROR, "leader election: cannot start");
            goto out;
        }
    } else {
        on_started(&a);
    }
    (void)sigwait(&sigs, &sig);
    ctrl_cancel(a.ctrl); /* no write from here on */
    rc = atomic_load(&a.lost) || atomic_load(&a.failed) ? 1 : 0;
    klog(KLOG_INFO, "%s: shutting down",
         atomic_load(&a.lost)     ? "leadership lost"
         : atomic_load(&a.failed) ? "the workers could not start"
                                  : "signal");
out:
    /* The servers first (their handler reads the controller); then the workers, which write
     * nothing more; then the Lease is released for the next leader (not when it was lost: it
     * may be someone else's by now); then the caches. */
    httpd_stop(health);
    httpd_stop(metrics);
    ctrl_stop_workers(a.ctrl);
    if (le)
        leader_stop(le, !atomic_load(&a.lost));
    leader_free(le);
    ctrl_free(a.ctrl);
    loader_unload(&lib);
    kc_config_fini(&cfg);
    kmetrics_free(a.metrics);
    kc_global_cleanup();
    klog(KLOG_INFO, "stopped");
    return rc;
}
