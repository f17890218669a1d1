/*
 * A shard run from mgo's process render, drained through mgo_drain: the test is the host. It
 * starts a real etcd, asks mgo_reconcile for the process target with that etcd recorded as the
 * cluster's managed topology server (its ports recorded, ready: the pass registers the
 * topology), and runs the shard's three Instances as the render says: names, data directories,
 * ports and the whole PostgreSQL command line from `spec.postgres.commandLine`, the bootstrap
 * primary initdb'ed and the others base backups of it, `reload.settings` and the synchronous
 * set (ANY 1 over the standbys) written with ALTER SYSTEM on the primary. Then, under a writer
 * committing through the current primary: the drain of the primary (planned switchover), its
 * rejoin as a standby, and the drain of a standby; zero acknowledged commits lost.
 * Expected values come from docs/spec/render-process.md and docs/abi.md.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../topo/etcd_harness.h"
#include "dhost.h"
#include "mgo/mgo.h"
#include "pg_harness.h"
#include "writer.h"

static struct etcd_harness etcd;
static struct pg_shard shard;
static mgo_plugin *plugin;
static struct writer *writer;
static int primary;
static struct dhost_follow follow = {.primary = &primary};
static json_t *instances; /* the rendered Instance objects, bootstrap primary first */

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A base with 8 free ports above it. */
static int port_base(void)
{
    srand((unsigned)getpid() ^ (unsigned)time(NULL));
    for (int tries = 0; tries < 200; tries++) {
        int base = 20000 + rand() % 10000, ok = 1;
        for (int p = base; p < base + 8 && ok; p++)
            ok = port_free(p);
        if (ok)
            return base;
    }
    return -1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = f ? calloc(1, 65536) : NULL;
    if (buf && fread(buf, 1, 65535, f) == 0) {
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

/* One reconcile pass for the process target with the etcd recorded; the result. */
static json_t *render(const char *text, int base)
{
    json_t *etcd_obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:b, s:{s:i, s:i}}", "kind", "Etcd",
                                 "name", "t-global-topo", "labels", "multigres.com/cluster", "t",
                                 "app.kubernetes.io/managed-by", "mgo", "ready", 1, "ports",
                                 "clientPort", etcd.client_port, "peerPort", etcd.peer_port);
    json_t *req =
        json_pack("{s:[{s:s, s:s}], s:s, s:{s:i}, s:{s:[o]}, s:{s:{s:[s]}}}", "manifests", "source",
                  "shard3.yaml", "text", text, "target", "process", "process", "port_base", base,
                  "observed", "objects", etcd_obj, "topology", "etcd", "endpoints", etcd.endpoint);
    char *body = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_reconcile(plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    if (rc != MGO_OK) {
        char *dump = json_dumps(r, JSON_INDENT(1));
        fprintf(stderr, "mgo_reconcile: %d %s\n", rc, dump ? dump : "");
        free(dump);
        json_decref(r);
        return NULL;
    }
    return r;
}

static const char *instance_name(int i)
{
    return json_string_value(
        json_object_get(json_object_get(json_array_get(instances, (size_t)i), "metadata"), "name"));
}

static int setup(void **st)
{
    (void)st;
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    char *text = read_file(DRAIN_MANIFEST);
    int base = port_base();
    if (!text || base < 0 || etcd_harness_start(&etcd) != 0 || mgo_open(&host, &plugin) != MGO_OK)
        return -1;
    json_t *r = render(text, base);
    free(text);
    if (!r)
        return -1;
    /* the topology was registered in the pass, with the recorded etcd ready */
    size_t k;
    json_t *a, *c;
    int registered = 0;
    json_array_foreach (json_object_get(r, "actions"), k, a) {
        if (strcmp(json_string_value(json_object_get(a, "type")), "status") == 0) {
            size_t j;
            json_array_foreach (json_object_get(json_object_get(a, "status"), "conditions"), j, c)
                if (strcmp(json_string_value(json_object_get(c, "type")), "TopologyRegistered") ==
                        0 &&
                    strcmp(json_string_value(json_object_get(c, "status")), "True") == 0)
                    registered = 1;
        }
    }
    if (!registered) {
        fprintf(stderr, "the pass did not register the topology\n");
        json_decref(r);
        return -1;
    }
    instances = json_array();
    json_array_foreach (json_object_get(r, "actions"), k, a) {
        json_t *o = json_object_get(a, "object");
        if (strcmp(json_string_value(json_object_get(a, "type")), "apply") != 0 ||
            strcmp(json_string_value(json_object_get(o, "kind")), "Instance") != 0)
            continue;
        const char *role =
            json_string_value(json_object_get(json_object_get(o, "bootstrap"), "role"));
        if (role && strcmp(role, "primary") == 0)
            json_array_insert(instances, 0, o);
        else
            json_array_append(instances, o);
    }
    json_decref(r);
    if (json_array_size(instances) != 3)
        return -1;

    /* the shard as the render says */
    struct pg_node_spec specs[3];
    const char *settings[3][64];
    char values[3][64][300];
    json_t *o;
    json_array_foreach (instances, k, o) {
        json_t *spec = json_object_get(o, "spec");
        const char *key;
        json_t *v;
        int s = 0;
        json_object_foreach (json_object_get(json_object_get(spec, "postgres"), "commandLine"), key,
                             v) {
            (void)snprintf(values[k][s], sizeof(values[k][s]), "%s=%s", key, json_string_value(v));
            settings[k][s] = values[k][s];
            s++;
        }
        settings[k][s] = NULL;
        specs[k] =
            (struct pg_node_spec){.name = instance_name((int)k),
                                  .datadir = json_string_value(json_object_get(spec, "dataDir")),
                                  .port = (int)json_integer_value(json_object_get(spec, "port")),
                                  .settings = settings[k]};
    }
    /* reload-class settings and the synchronous set, on the primary before the base backups */
    char sql[3][512];
    const char *primary_sql[5];
    int q = 0;
    const char *key;
    json_t *v;
    json_object_foreach (
        json_object_get(json_object_get(json_array_get(instances, 0), "reload"), "settings"), key,
        v) {
        if (q < 2) {
            (void)snprintf(sql[q], sizeof(sql[q]), "ALTER SYSTEM SET %s = '%s'", key,
                           json_string_value(v));
            primary_sql[q] = sql[q];
            q++;
        }
    }
    (void)snprintf(sql[2], sizeof(sql[2]),
                   "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (\"%s\", \"%s\")'",
                   instance_name(1), instance_name(2));
    primary_sql[q++] = sql[2];
    primary_sql[q++] = "SELECT pg_reload_conf()";
    primary_sql[q] = NULL;
    if (pg_shard_start_spec(&shard, 3, specs, primary_sql) != 0)
        return -1;
    char ci[256];
    pg_node_conninfo(&shard, 0, ci, sizeof(ci));
    writer = writer_start(ci, 2000);
    follow.writer = writer;
    return writer ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    writer_free(writer);
    pg_shard_stop(&shard);
    mgo_close(plugin);
    etcd_harness_stop(&etcd);
    json_decref(instances);
    return 0;
}

static void drain(const char *name)
{
    struct dhost h;
    dhost_init(&h, plugin, &shard, name, &follow);
    assert_int_equal(dhost_run(&h, "ready-for-deletion", 40, 100), 0);
}

static void check_writes(const char *when)
{
    char ci[256], report[1024];
    size_t missing = 0;
    pg_node_conninfo(&shard, primary, ci, sizeof(ci));
    assert_int_equal(writer_check(ci, writer, &missing, report, sizeof(report)), 0);
    print_message("%s: %s\n", when, report);
    assert_int_equal(missing, 0);
}

static void test_rendered_shard(void **st)
{
    (void)st;
    char out[256];
    /* the render's settings are live: command line and reload class */
    assert_int_equal(pg_sql(&shard, 1, "SHOW cluster_name", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, instance_name(1));
    assert_int_equal(pg_sql(&shard, 2, "SHOW shared_buffers", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, "32MB");
    assert_int_equal(pg_sql(&shard, 2, "SHOW work_mem", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, "8MB");
    assert_int_equal(pg_sql(&shard, 0, "SHOW wal_level", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, "logical");
    assert_int_equal((int)json_integer_value(json_object_get(
                         json_object_get(json_array_get(instances, 2), "spec"), "port")),
                     shard.nodes[2].port);
}

static void test_drains(void **st)
{
    (void)st;
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    int old = primary;
    drain(shard.nodes[old].name);
    assert_int_not_equal(primary, old);
    nanosleep(&ts, NULL);
    check_writes("after the primary's drain");
    assert_int_equal(dhost_rejoin(&shard, old, primary), 0);
    assert_int_equal(dhost_restore_sync_set(&shard, primary), 0);
    int victim = primary == 2 ? 1 : 2;
    drain(shard.nodes[victim].name);
    char out[256], want[128];
    int other = 3 - primary - victim;
    (void)snprintf(want, sizeof(want), "ANY 1 (\"%s\")", shard.nodes[other].name);
    assert_int_equal(
        pg_sql(&shard, primary, "SHOW synchronous_standby_names", 5000, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    nanosleep(&ts, NULL);
    check_writes("after a standby's drain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rendered_shard),
        cmocka_unit_test(test_drains),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
