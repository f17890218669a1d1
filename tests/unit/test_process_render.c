/*
 * Unit tests for plugin/render/process.c: the objects a local process host runs.
 *
 * The cluster is a hand-written resolved MultigresCluster. Expected names are computed here from
 * the reference naming rules (operator-api.md section 2.2: parts joined with '-', then '-' and
 * FNV-1a 32 over the original parts, each followed by a NUL byte) with an independent FNV-1a;
 * the test names need no character replacement and no truncation. Expected hashes are FNV-1a 32
 * over the canonical JSON (sorted keys, compact) of hand-built expected values, as render.h
 * states. Nothing expected is computed by the code under test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"
#include "render/model.h"
#include "render/render.h"

/* ---- the cluster -------------------------------------------------------------------------- */

/* Pools in the document are "main" then "analytics": the model orders them by name, so the first
 * group, and the bootstrap primary, is analytics in zone-b. zone-b has a managed local etcd. */
static const char *const CLUSTER =
    "{\"apiVersion\": \"multigres.com/v1alpha1\", \"kind\": \"MultigresCluster\","
    " \"metadata\": {\"name\": \"dev\", \"namespace\": \"db\"},"
    " \"spec\": {"
    "  \"postgresSuperuser\": \"postgres\","
    "  \"postgresPasswordSecretRef\": {\"name\": \"dev-postgres\", \"key\": \"password\"},"
    "  \"durabilityPolicy\": \"AT_LEAST_2\","
    "  \"globalTopoServer\": {\"etcd\": {\"replicas\": 3, \"rootPath\": \"/multigres/global\","
    "                                    \"storage\": {\"size\": \"1Gi\"}}},"
    "  \"cells\": ["
    "   {\"name\": \"zone-a\", \"zoneId\": \"use1-az1\", \"spec\": {\"multigateway\": {}}},"
    "   {\"name\": \"zone-b\", \"region\": \"us-east-1\", \"spec\": {\"multigateway\": {},"
    "     \"localTopoServer\": {\"etcd\": {\"replicas\": 3, \"rootPath\": \"/multigres/zone-b\"}}}}"
    "  ],"
    "  \"databases\": [{\"name\": \"postgres\", \"default\": true,"
    "   \"durabilityPolicy\": \"MULTI_CELL_AT_LEAST_2\","
    "   \"tablegroups\": [{\"name\": \"default\", \"default\": true,"
    "    \"shards\": [{\"name\": \"0-inf\", \"spec\": {"
    "     \"initdbArgs\": \"--data-checksums\","
    "     \"postgresConfig\": {\"shared_buffers\": \"256MB\", \"work_mem\": \"16MB\","
    "       \"max_wal_senders\": \"30\", \"auto_explain.log_min_duration\": \"250ms\","
    "       \"hot_standby\": \"off\"},"
    "     \"multiorch\": {\"cells\": [\"zone-a\"]},"
    "     \"pools\": {"
    "      \"main\": {\"type\": \"readWrite\", \"cells\": [\"zone-a\", \"zone-b\"],"
    "        \"replicasPerCell\": 2, \"storage\": {\"size\": \"5Gi\"},"
    "        \"pvcDeletionPolicy\": {\"whenDeleted\": \"Retain\", \"whenScaled\": \"Retain\"}},"
    "      \"analytics\": {\"type\": \"readWrite\", \"cells\": [\"zone-b\"],"
    "        \"replicasPerCell\": 1, \"storage\": {\"size\": \"2Gi\"},"
    "        \"pvcDeletionPolicy\": {\"whenDeleted\": \"Delete\", \"whenScaled\": \"Delete\"}}"
    "     }}}]}]}]}}";

#define NOBJECTS 12 /* 2 Etcd + 5 instances x (Instance + Volume) */

static json_t *load_cluster(void)
{
    json_error_t err;
    json_t *c = json_loads(CLUSTER, 0, &err);
    if (!c)
        print_error("cluster JSON: %s at %d:%d\n", err.text, err.line, err.column);
    assert_non_null(c);
    return c;
}

static json_t *shard_spec(json_t *cluster)
{
    json_t *db = json_array_get(json_object_get(json_object_get(cluster, "spec"), "databases"), 0);
    json_t *tg = json_array_get(json_object_get(db, "tablegroups"), 0);
    return json_object_get(json_array_get(json_object_get(tg, "shards"), 0), "spec");
}

static void set_config(json_t *cluster, const char *name, const char *value)
{
    json_t *config = json_object_get(shard_spec(cluster), "postgresConfig");
    assert_int_equal(json_object_set_new(config, name, json_string(value)), 0);
}

/* Render the cluster; the output array is the caller's. */
static json_t *render(const json_t *cluster, const json_t *ports, int64_t base)
{
    struct model m;
    assert_int_equal(model_build(cluster, &m), 0);
    struct render_ctx c = {.m = &m, .ports = ports, .port_base = base};
    json_t *out = json_array();
    assert_non_null(out);
    assert_int_equal(render_process(&c, out), 0);
    model_free(&m);
    return out;
}

/* ---- expected names, from the rules ------------------------------------------------------- */

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* parts joined with '-', then "-<FNV-1a 32 over each part and a NUL>"; no replacement or
 * truncation is needed for the names of this test, which the length check confirms. */
static void join(char *out, size_t size, size_t limit, const char *const *parts, size_t n)
{
    uint32_t h = 2166136261u;
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        h = fnv1a(h, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
        len += (size_t)snprintf(out + len, size - len, "%s-", parts[i]);
    }
    len += (size_t)snprintf(out + len, size - len, "%08x", (unsigned)h);
    assert_true(len <= limit);
}

struct names {
    char global_topo[64];
    char cell_b[254];
    char local_topo[64];
    char analytics_b[1][96];
    char main_a[2][96];
    char main_b[2][96];
};

static void pod_name(char *out, const char *pool, const char *cell, int index)
{
    const char *parts[] = {"dev", "postgres", "default", "0-inf", "pool", pool, cell};
    char base[80];
    join(base, sizeof(base), 60, parts, 7);
    (void)snprintf(out, 96, "%s-%d", base, index);
}

static void expected_names(struct names *n)
{
    (void)snprintf(n->global_topo, sizeof(n->global_topo), "dev-global-topo");
    const char *cell[] = {"dev", "zone-b"};
    join(n->cell_b, sizeof(n->cell_b), 253, cell, 2);
    const char *topo[] = {n->cell_b, "topo"};
    join(n->local_topo, sizeof(n->local_topo), 52, topo, 2);
    pod_name(n->analytics_b[0], "analytics", "zone-b", 0);
    for (int i = 0; i < 2; i++) {
        pod_name(n->main_a[i], "main", "zone-a", i);
        pod_name(n->main_b[i], "main", "zone-b", i);
    }
}

/* ---- accessors ---------------------------------------------------------------------------- */

static const char *obj_name(const json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
}

static const char *obj_kind(const json_t *o)
{
    return json_string_value(json_object_get(o, "kind"));
}

static const char *annotation(const json_t *o, const char *key)
{
    const json_t *a = json_object_get(json_object_get(o, "metadata"), "annotations");
    return json_string_value(json_object_get(a, key));
}

static const char *label(const json_t *o, const char *key)
{
    const json_t *l = json_object_get(json_object_get(o, "metadata"), "labels");
    return json_string_value(json_object_get(l, key));
}

static json_t *find(const json_t *out, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach (out, i, o)
        if (strcmp(obj_kind(o), kind) == 0 && strcmp(obj_name(o), name) == 0)
            return o;
    print_error("no %s %s\n", kind, name);
    fail();
    return NULL;
}

static json_int_t spec_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(json_object_get(o, "spec"), key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static const char *bootstrap_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(json_object_get(o, "bootstrap"), key));
}

/* FNV-1a 32 over the canonical JSON, as 8 hex digits. */
static void canonical_hash(const json_t *v, char out[9])
{
    char *text = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(text);
    (void)snprintf(out, 9, "%08x",
                   (unsigned)fnv1a(2166136261u, (const unsigned char *)text, strlen(text)));
    free(text);
}

static void assert_json_equal(const json_t *got, const json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_INDENT(1));
        char *w = json_dumps(want, JSON_SORT_KEYS | JSON_INDENT(1));
        print_error("got  %s\nwant %s\n", g ? g : "?", w ? w : "?");
        free(g);
        free(w);
        fail();
    }
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_objects_names_and_order(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    const char *want[NOBJECTS][2] = {
        {"Etcd", n.global_topo},      {"Etcd", n.local_topo},    {"Instance", n.analytics_b[0]},
        {"Volume", n.analytics_b[0]}, {"Instance", n.main_a[0]}, {"Volume", n.main_a[0]},
        {"Instance", n.main_a[1]},    {"Volume", n.main_a[1]},   {"Instance", n.main_b[0]},
        {"Volume", n.main_b[0]},      {"Instance", n.main_b[1]}, {"Volume", n.main_b[1]},
    };
    assert_int_equal(json_array_size(out), NOBJECTS);
    for (size_t i = 0; i < NOBJECTS; i++) {
        const json_t *o = json_array_get(out, i);
        assert_string_equal(obj_kind(o), want[i][0]);
        assert_string_equal(obj_name(o), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(o, "apiVersion")),
                            "process.mgo/v1alpha1");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(o, "metadata"), "namespace")), "db");
        assert_non_null(annotation(o, "multigres.com/spec-hash"));
        assert_int_equal(strlen(annotation(o, "multigres.com/spec-hash")), 8);
    }
    json_decref(out);
    json_decref(cluster);
}

static void test_labels(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    const json_t *g = find(out, "Etcd", n.global_topo);
    assert_string_equal(label(g, "app.kubernetes.io/component"), "global-topo");
    assert_null(label(g, "multigres.com/cell"));
    const json_t *l = find(out, "Etcd", n.local_topo);
    assert_string_equal(label(l, "app.kubernetes.io/component"), "local-topo");
    assert_string_equal(label(l, "multigres.com/cell"), "zone-b");
    assert_string_equal(label(l, "multigres.com/region"), "us-east-1");
    const char *kinds[] = {"Instance", "Volume"};
    for (int k = 0; k < 2; k++) {
        const json_t *o = find(out, kinds[k], n.main_a[1]);
        assert_string_equal(label(o, "app.kubernetes.io/component"), "shard-pool");
        assert_string_equal(label(o, "app.kubernetes.io/instance"), "dev");
        assert_string_equal(label(o, "multigres.com/cluster"), "dev");
        assert_string_equal(label(o, "multigres.com/database"), "postgres");
        assert_string_equal(label(o, "multigres.com/tablegroup"), "default");
        assert_string_equal(label(o, "multigres.com/shard"), "0-inf");
        assert_string_equal(label(o, "multigres.com/pool"), "main");
        assert_string_equal(label(o, "multigres.com/cell"), "zone-a");
        assert_string_equal(label(o, "multigres.com/zone-id"), "use1-az1");
    }
    json_decref(out);
    json_decref(cluster);
}

static void test_bootstrap_primary(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    const json_t *primary = find(out, "Instance", n.analytics_b[0]);
    assert_string_equal(bootstrap_str(primary, "role"), "primary");
    assert_true(json_is_null(json_object_get(json_object_get(primary, "bootstrap"), "upstream")));
    const char *standbys[] = {n.main_a[0], n.main_a[1], n.main_b[0], n.main_b[1]};
    for (int i = 0; i < 4; i++) {
        const json_t *s = find(out, "Instance", standbys[i]);
        assert_string_equal(bootstrap_str(s, "role"), "standby");
        assert_string_equal(bootstrap_str(s, "upstream"), n.analytics_b[0]);
    }
    json_decref(out);
    json_decref(cluster);
}

/* A first group with no instances: the first instance that exists bootstraps the shard. */
static void test_bootstrap_primary_skips_empty_group(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *analytics = json_object_get(json_object_get(shard_spec(cluster), "pools"), "analytics");
    assert_int_equal(json_object_set_new(analytics, "replicasPerCell", json_integer(0)), 0);
    json_t *out = render(cluster, NULL, 0);
    assert_int_equal(json_array_size(out), NOBJECTS - 2);
    assert_string_equal(bootstrap_str(find(out, "Instance", n.main_a[0]), "role"), "primary");
    assert_string_equal(bootstrap_str(find(out, "Instance", n.main_b[1]), "upstream"), n.main_a[0]);
    json_decref(out);
    json_decref(cluster);
}

/* Every field of a standby's spec, its reload settings and both hashes. Ports from the default
 * base 15432 in render order: global etcd 15432/15433, local etcd 15434/15435, then analytics-0
 * 15436, main zone-a 0 15437, main zone-a 1 15438. */
static void test_instance_spec(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    const json_t *o = find(out, "Instance", n.main_a[1]);
    char data_dir[128], run_dir[128], hash[9];
    (void)snprintf(data_dir, sizeof(data_dir), "instances/%s/data", n.main_a[1]);
    (void)snprintf(run_dir, sizeof(run_dir), "instances/%s/run", n.main_a[1]);
    /* hot_standby "off" from postgresConfig is ignored (mgo pins it); max_wal_senders is the
     * user's; shared_buffers and the extension parameter are restart-class; work_mem reloads. */
    json_t *want = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:{s:s, s:s},"
        " s:{s:s, s:i}, s:{s:s}, s:{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}}",
        "database", "postgres", "tablegroup", "default", "shard", "0-inf", "pool", "main", "cell",
        "zone-a", "index", 1, "dataDir", data_dir, "port", 15438, "initdbArgs", "--data-checksums",
        "superuser", "postgres", "passwordSecretRef", "name", "dev-postgres", "key", "password",
        "durability", "policy", "MULTI_CELL_AT_LEAST_2", "requiredCount", 2, "topology", "cell",
        "zone-a", "postgres", "commandLine", "port", "15438", "listen_addresses", "127.0.0.1",
        "unix_socket_directories", run_dir, "hot_standby", "on", "wal_level", "logical",
        "wal_log_hints", "on", "cluster_name", n.main_a[1], "max_wal_senders", "30",
        "max_replication_slots", "20", "shared_buffers", "256MB", "auto_explain.log_min_duration",
        "250ms");
    json_t *want_reload = json_pack("{s:{s:s}}", "settings", "work_mem", "16MB");
    assert_non_null(want);
    assert_non_null(want_reload);
    assert_json_equal(json_object_get(o, "spec"), want);
    assert_json_equal(json_object_get(o, "reload"), want_reload);
    canonical_hash(want, hash);
    assert_string_equal(annotation(o, "multigres.com/spec-hash"), hash);
    canonical_hash(want_reload, hash);
    assert_string_equal(annotation(o, "multigres.com/postgres-reload-hash"), hash);
    json_decref(want);
    json_decref(want_reload);
    json_decref(out);
    json_decref(cluster);
}

static void test_volumes(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    char path[128];
    (void)snprintf(path, sizeof(path), "instances/%s", n.main_b[1]);
    json_t *want = json_pack("{s:s, s:s, s:s, s:s}", "path", path, "size", "5Gi", "whenScaled",
                             "Retain", "whenDeleted", "Retain");
    assert_json_equal(json_object_get(find(out, "Volume", n.main_b[1]), "spec"), want);
    json_decref(want);
    (void)snprintf(path, sizeof(path), "instances/%s", n.analytics_b[0]);
    want = json_pack("{s:s, s:s, s:s, s:s}", "path", path, "size", "2Gi", "whenScaled", "Delete",
                     "whenDeleted", "Delete");
    assert_json_equal(json_object_get(find(out, "Volume", n.analytics_b[0]), "spec"), want);
    json_decref(want);
    json_decref(out);
    json_decref(cluster);
}

/* One member whatever `replicas` (3 here) says. */
static void test_etcd_spec(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 0);
    char dir[128];
    (void)snprintf(dir, sizeof(dir), "etcd/%s", n.local_topo);
    json_t *want =
        json_pack("{s:s, s:s, s:i, s:i, s:i}", "dataDir", dir, "rootPath", "/multigres/zone-b",
                  "clientPort", 15434, "peerPort", 15435, "members", 1);
    assert_json_equal(json_object_get(find(out, "Etcd", n.local_topo), "spec"), want);
    json_decref(want);
    want = json_pack("{s:s, s:s, s:i, s:i, s:i}", "dataDir", "etcd/dev-global-topo", "rootPath",
                     "/multigres/global", "clientPort", 15432, "peerPort", 15433, "members", 1);
    assert_json_equal(json_object_get(find(out, "Etcd", n.global_topo), "spec"), want);
    json_decref(want);
    json_decref(out);
    json_decref(cluster);
}

/* An external global topology is not run by the host. */
static void test_external_global_topology(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *spec = json_object_get(cluster, "spec");
    json_t *ext = json_pack("{s:{s:[s], s:s}}", "external", "endpoints", "http://10.0.0.1:2379",
                            "rootPath", "/multigres/global");
    assert_int_equal(json_object_set_new(spec, "globalTopoServer", ext), 0);
    json_t *out = render(cluster, NULL, 0);
    assert_int_equal(json_array_size(out), NOBJECTS - 1);
    assert_string_equal(obj_name(json_array_get(out, 0)), n.local_topo);
    json_decref(out);
    json_decref(cluster);
}

/* Recorded ports stay; new ones come from the base upward, skipping every recorded port, also
 * those of objects no longer rendered. Base 15432:
 *   global etcd   recorded 15433/15434
 *   local etcd    client: 15432, 15433, 15434 recorded -> 15435; peer: 15436 recorded -> 15437
 *   analytics-0   15438
 *   main-a-0      15439
 *   main-a-1      recorded 15432
 *   main-b-0      15440, main-b-1 15441 */
static void test_ports_reused_and_skipped(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *ports = json_pack("{s:{s:i, s:i}, s:{s:i}, s:{s:i}}", n.global_topo, "clientPort",
                              15433, "peerPort", 15434, n.main_a[1], "port", 15432,
                              "dev-removed-instance", "port", 15436);
    assert_non_null(ports);
    json_t *out = render(cluster, ports, 0);
    assert_int_equal(spec_int(find(out, "Etcd", n.global_topo), "clientPort"), 15433);
    assert_int_equal(spec_int(find(out, "Etcd", n.global_topo), "peerPort"), 15434);
    assert_int_equal(spec_int(find(out, "Etcd", n.local_topo), "clientPort"), 15435);
    assert_int_equal(spec_int(find(out, "Etcd", n.local_topo), "peerPort"), 15437);
    assert_int_equal(spec_int(find(out, "Instance", n.analytics_b[0]), "port"), 15438);
    assert_int_equal(spec_int(find(out, "Instance", n.main_a[0]), "port"), 15439);
    assert_int_equal(spec_int(find(out, "Instance", n.main_a[1]), "port"), 15432);
    assert_int_equal(spec_int(find(out, "Instance", n.main_b[0]), "port"), 15440);
    assert_int_equal(spec_int(find(out, "Instance", n.main_b[1]), "port"), 15441);
    const json_t *cl = json_object_get(
        json_object_get(json_object_get(find(out, "Instance", n.main_a[1]), "spec"), "postgres"),
        "commandLine");
    assert_string_equal(json_string_value(json_object_get(cl, "port")), "15432");
    json_decref(out);
    json_decref(ports);
    json_decref(cluster);
}

static void test_port_base(void **state)
{
    (void)state;
    struct names n;
    expected_names(&n);
    json_t *cluster = load_cluster();
    json_t *out = render(cluster, NULL, 20000);
    assert_int_equal(spec_int(find(out, "Etcd", n.global_topo), "clientPort"), 20000);
    assert_int_equal(spec_int(find(out, "Etcd", n.global_topo), "peerPort"), 20001);
    assert_int_equal(spec_int(find(out, "Etcd", n.local_topo), "clientPort"), 20002);
    assert_int_equal(spec_int(find(out, "Etcd", n.local_topo), "peerPort"), 20003);
    assert_int_equal(spec_int(find(out, "Instance", n.analytics_b[0]), "port"), 20004);
    assert_int_equal(spec_int(find(out, "Instance", n.main_b[1]), "port"), 20008);
    json_decref(out);
    json_decref(cluster);
}

static void test_deterministic(void **state)
{
    (void)state;
    json_t *cluster = load_cluster();
    json_t *a = render(cluster, NULL, 0);
    json_t *b = render(cluster, NULL, 0);
    char *ta = json_dumps(a, 0), *tb = json_dumps(b, 0); /* document order, too */
    assert_non_null(ta);
    assert_non_null(tb);
    assert_string_equal(ta, tb);
    free(ta);
    free(tb);
    json_decref(a);
    json_decref(b);
    json_decref(cluster);
}

/* Render before and after one postgresConfig change; compare each object's hashes. */
static void compare_hashes(const char *name, const char *value, int spec_changes,
                           int reload_changes)
{
    json_t *cluster = load_cluster();
    json_t *before = render(cluster, NULL, 0);
    set_config(cluster, name, value);
    json_t *after = render(cluster, NULL, 0);
    assert_int_equal(json_array_size(after), NOBJECTS);
    for (size_t i = 0; i < NOBJECTS; i++) {
        const json_t *b = json_array_get(before, i), *a = json_array_get(after, i);
        int instance = strcmp(obj_kind(a), "Instance") == 0;
        int spec_differs = strcmp(annotation(a, "multigres.com/spec-hash"),
                                  annotation(b, "multigres.com/spec-hash")) != 0;
        assert_int_equal(spec_differs, instance && spec_changes);
        if (instance) {
            int reload_differs = strcmp(annotation(a, "multigres.com/postgres-reload-hash"),
                                        annotation(b, "multigres.com/postgres-reload-hash")) != 0;
            assert_int_equal(reload_differs, reload_changes);
        } else {
            assert_null(annotation(a, "multigres.com/postgres-reload-hash"));
        }
    }
    json_decref(before);
    json_decref(after);
    json_decref(cluster);
}

static void test_reload_class_change_keeps_spec_hash(void **state)
{
    (void)state;
    compare_hashes("work_mem", "64MB", 0, 1);                    /* user context */
    compare_hashes("auto_explain.log_min_duration", "1s", 1, 0); /* extension: restart-class */
    compare_hashes("synchronous_commit", "remote_apply", 0, 1);  /* user context, new entry */
}

static void test_restart_class_change_changes_spec_hash(void **state)
{
    (void)state;
    compare_hashes("shared_buffers", "512MB", 1, 0); /* postmaster context */
    compare_hashes("max_connections", "300", 1, 0);  /* postmaster context, new entry */
}

/* ---- allocation failures ------------------------------------------------------------------ */

/* Test-only allocator state: fail every allocation once `budget` reaches 0 (-1: never). */
static long budget = -1, live;
static int failed;

static void *counting_alloc(void *user, size_t size)
{
    (void)user;
    if (budget == 0) {
        failed = 1;
        return NULL;
    }
    if (budget > 0)
        budget--;
    void *p = malloc(size);
    if (p)
        live++;
    return p;
}

static void *counting_realloc(void *user, void *ptr, size_t size)
{
    if (!ptr)
        return counting_alloc(user, size);
    if (budget == 0) {
        failed = 1;
        return NULL;
    }
    return realloc(ptr, size);
}

static void counting_free(void *user, void *ptr)
{
    (void)user;
    if (ptr)
        live--;
    free(ptr);
}

/* Fail the 1st, 2nd, ... allocation of a render: every failure is -ENOMEM (or absorbed by a
 * hash, which the hook's scope reports), and nothing leaks. */
static void test_allocation_failures(void **state)
{
    (void)state;
    mgo_plugin plugin;
    memset(&plugin, 0, sizeof(plugin));
    plugin.host.alloc = counting_alloc;
    plugin.host.realloc = counting_realloc;
    plugin.host.free = counting_free;
    struct core_scope saved;
    core_alloc_init();
    core_enter(&plugin, &saved);
    int enomem = 0;
    for (long n = 0;; n++) {
        json_t *cluster = load_cluster();
        struct model m;
        assert_int_equal(model_build(cluster, &m), 0);
        struct render_ctx c = {.m = &m};
        long before = live;
        json_t *out = json_array();
        assert_non_null(out);
        failed = 0;
        budget = n;
        int rc = render_process(&c, out);
        budget = -1;
        json_decref(out);
        assert_int_equal(live, before);
        model_free(&m);
        json_decref(cluster);
        assert_true(rc == 0 || rc == -ENOMEM);
        if (!failed) {
            assert_int_equal(rc, 0);
            break;
        }
        enomem += rc == -ENOMEM;
    }
    core_leave(&saved);
    assert_int_equal(live, 0);
    assert_true(enomem > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects_names_and_order),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_bootstrap_primary),
        cmocka_unit_test(test_bootstrap_primary_skips_empty_group),
        cmocka_unit_test(test_instance_spec),
        cmocka_unit_test(test_volumes),
        cmocka_unit_test(test_etcd_spec),
        cmocka_unit_test(test_external_global_topology),
        cmocka_unit_test(test_ports_reused_and_skipped),
        cmocka_unit_test(test_port_base),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_reload_class_change_keeps_spec_hash),
        cmocka_unit_test(test_restart_class_change_changes_spec_hash),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests_name("process_render", tests, NULL, NULL);
}
