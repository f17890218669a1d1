/*
 * The public mgo_topology hook against a real etcd 3.4 (tests/topo/etcd_harness.c starts one for
 * the group on free loopback ports; every test starts from an empty keyspace).
 *
 * Independence: stored values are read straight from etcd's JSON gateway with libcurl and
 * decoded by the wire walker in topo_wire.h; every expected field number, wire type and value is
 * a literal from Multigres' record tables (shared/facts/multigres-core.md 2.3-2.6) and the
 * reference operator's registration rules (shared/facts/operator-api.md 5, naming 2.2), never
 * taken from mgo's code or its .proto. Records of "other writers" are built by the encoder in
 * topo_wire.h from the same tables.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../topo/etcd_harness.h"
#include "mgo/mgo.h"
#include "topo_wire.h"

#define G             "/multigres/global"
#define DB_KEY        G "/databases/postgres/Database"
#define FIXED_NOW_MS  1767225600250LL /* 2026-01-01T00:00:00.250Z */
#define CALL_DEADLINE 10000           /* deadline_ms of calls that should succeed */
#define MARGIN_MS     5000            /* how late past its deadline a failing call may return */
#define MAX_KVS       64

static struct etcd_harness harness;
static mgo_plugin *plugin;

/* ---- small helpers ------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t fixed_now(void *user)
{
    (void)user;
    return FIXED_NOW_MS;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[8192];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!text)
        text = calloc(1, 1);
    text[len] = '\0';
    return text;
}

static void sample_path(const char *name, char *buf, size_t size)
{
    const char *dir = getenv("MGO_SHARED_DIR");
    if (!dir || !*dir)
        fail_msg("MGO_SHARED_DIR is not set");
    (void)snprintf(buf, size, "%s/compat/upstream-samples/%s", dir, name);
}

static const char *host_port(const char *endpoint)
{
    const char *p = strstr(endpoint, "://");
    return p ? p + 3 : endpoint;
}

/* Call mgo_topology with a request document; the parsed result (never NULL) in *ret. */
static int32_t call(const json_t *req, json_t **ret)
{
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t out_len = 0;
    assert_non_null(text);
    int32_t rc = mgo_topology(plugin, text, strlen(text), &out, &out_len);
    if (getenv("TOPOLOGY_DEBUG")) /* every request and result on stderr */
        fprintf(stderr, "request %s\n-> %d %s\n", text, rc, out ? out : "(null)");
    free(text);
    if (!out)
        fail_msg("mgo_topology returned %d without a result document", rc);
    assert_int_equal(strlen(out), out_len);
    json_error_t jerr;
    *ret = json_loadb(out, out_len, 0, &jerr);
    mgo_free(out);
    if (!*ret)
        fail_msg("result is not JSON: %s", jerr.text);
    return rc;
}

static const char *error_message(const json_t *res)
{
    const char *m = json_string_value(json_object_get(json_object_get(res, "error"), "message"));
    return m ? m : "";
}

/* The result is read through resp after rc is computed (rc is usually the call itself). */
static void expect_status(int32_t rc, int32_t want, json_t *const *resp, const char *what)
{
    const json_t *res = *resp;
    if (rc != want) {
        char *dump = json_dumps(res, JSON_COMPACT);
        fprintf(stderr, "%s: result %s\n", what, dump ? dump : "?");
        fail_msg("%s: status %d (%s), want %d: %s", what, rc, mgo_strerror(rc), want,
                 error_message(res));
    }
}

static json_t *etcd_override(const char *endpoint, const char *root)
{
    json_t *e = json_pack("{s:[s]}", "endpoints", endpoint);
    if (root)
        json_object_set_new(e, "root", json_string(root));
    return e;
}

/* op register with one manifest text (source named), through `endpoint`. */
static int32_t register_text_at(const char *endpoint, const char *source, const char *text,
                                int64_t deadline_ms, json_t **ret)
{
    json_t *req = json_pack("{s:s, s:[{s:s, s:s}], s:o, s:I}", "op", "register", "manifests",
                            "source", source, "text", text, "etcd", etcd_override(endpoint, NULL),
                            "deadline_ms", (json_int_t)deadline_ms);
    assert_non_null(req);
    int32_t rc = call(req, ret);
    json_decref(req);
    return rc;
}

static int32_t register_text(const char *source, const char *text, json_t **ret)
{
    return register_text_at(harness.endpoint, source, text, CALL_DEADLINE, ret);
}

static int32_t register_sample_at(const char *endpoint, const char *name, int64_t deadline_ms,
                                  json_t **ret)
{
    char path[1024];
    sample_path(name, path, sizeof(path));
    char *text = read_text(path);
    int32_t rc = register_text_at(endpoint, path, text, deadline_ms, ret);
    free(text);
    return rc;
}

static int32_t register_sample(const char *name, json_t **ret)
{
    return register_sample_at(harness.endpoint, name, CALL_DEADLINE, ret);
}

/* An op other than register against the group's etcd, root G. */
static int32_t call_op(const char *op, json_t *fields, int64_t deadline_ms, json_t **ret)
{
    json_t *req = fields ? fields : json_object();
    json_object_set_new(req, "op", json_string(op));
    json_object_set_new(req, "etcd", etcd_override(harness.endpoint, G));
    json_object_set_new(req, "deadline_ms", json_integer(deadline_ms));
    int32_t rc = call(req, ret);
    json_decref(req);
    return rc;
}

/* The outcome the register report gives for `key` in list `section`, or NULL. */
static const char *outcome(const json_t *res, const char *section, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(res, section), i, e)
        if (json_is_string(json_object_get(e, "key")) &&
            strcmp(json_string_value(json_object_get(e, "key")), key) == 0)
            return json_string_value(json_object_get(e, "outcome"));
    return NULL;
}

static void expect_outcome(const json_t *res, const char *section, const char *key,
                           const char *want)
{
    const char *got = outcome(res, section, key);
    if (!got || strcmp(got, want) != 0) {
        char *dump = json_dumps(res, JSON_COMPACT);
        fail_msg("%s %s: outcome %s, want %s; result %s", section, key, got ? got : "(none)", want,
                 dump ? dump : "?");
    }
}

static void expect_report_size(const json_t *res, const char *section, size_t n)
{
    if (json_array_size(json_object_get(res, section)) != n) {
        char *dump = json_dumps(res, JSON_COMPACT);
        fail_msg("%s: %zu entries, want %zu; result %s", section,
                 json_array_size(json_object_get(res, section)), n, dump ? dump : "?");
    }
}

static void cell_key(const char *cell, char *buf, size_t size)
{
    (void)snprintf(buf, size, G "/cells/%s/Cell", cell);
}

static void pooler_key(const char *root, const char *cell, const char *name, char *buf, size_t size)
{
    (void)snprintf(buf, size, "%s/poolers/multipooler-%s-%s/Pooler", root, cell, name);
}

static struct kv *kvs_alloc(void)
{
    struct kv *k = calloc(MAX_KVS, sizeof(*k));
    assert_non_null(k);
    return k;
}

static void get_kv(const char *key, struct kv *out)
{
    int found = etcd_get(harness.endpoint, key, out);
    if (found != 1)
        fail_msg("%s: %s", key, found < 0 ? "etcd read failed" : "no such key");
}

static int key_exists(const char *key)
{
    struct kv *k = kvs_alloc();
    int found = etcd_get(harness.endpoint, key, k);
    free(k);
    assert_true(found >= 0);
    return found;
}

static int64_t mod_revision_of(const char *key)
{
    struct kv *k = kvs_alloc();
    get_kv(key, k);
    int64_t r = k->mod_revision;
    free(k);
    return r;
}

static void put_or_fail(const char *key, const void *value, size_t len)
{
    if (etcd_put(harness.endpoint, key, value, len) <= 0)
        fail_msg("etcd put %s failed", key);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The whole keyspace holds exactly `keys`. */
static void expect_keys(const char *const *keys, size_t n)
{
    struct kv *kvs = kvs_alloc();
    long count = etcd_range(harness.endpoint, "", kvs, MAX_KVS, NULL);
    assert_true(count >= 0 && count <= MAX_KVS);
    const char *want[MAX_KVS], *got[MAX_KVS];
    for (size_t i = 0; i < n; i++)
        want[i] = keys[i];
    for (long i = 0; i < count; i++)
        got[i] = kvs[i].key;
    qsort(want, n, sizeof(*want), cmp_str);
    qsort(got, (size_t)count, sizeof(*got), cmp_str);
    int same = (size_t)count == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(want[i], got[i]) == 0;
    if (!same) {
        fprintf(stderr, "keys in etcd:\n");
        for (long i = 0; i < count; i++)
            fprintf(stderr, "  %s\n", got[i]);
        fprintf(stderr, "expected:\n");
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  %s\n", want[i]);
        free(kvs);
        fail_msg("the keys in etcd differ from the expected set");
    }
    free(kvs);
}

/* ---- record checks (field tables of multigres-core.md 2.4) --------------------------------- */

static void hexdump(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 32 ? " " : "\n  ", p[i]);
    fprintf(stderr, "\n");
}

static void parse_or_fail(const uint8_t *p, size_t n, struct pb_msg *m, const char *what)
{
    if (pb_parse(p, n, m) != 0) {
        hexdump(what, p, n);
        fail_msg("%s: not valid protobuf wire format", what);
    }
}

/* Every field of m has one of the numbers in `allowed` (terminated by 0). */
static void expect_only(const struct pb_msg *m, const uint32_t *allowed, const char *what)
{
    for (size_t i = 0; i < m->n; i++) {
        int ok = 0;
        for (const uint32_t *a = allowed; *a; a++)
            ok |= m->f[i].num == *a;
        if (!ok)
            fail_msg("%s: unexpected field %u (wire type %u)", what, m->f[i].num, m->f[i].wt);
    }
}

static const struct pb_field *field_or_fail(const struct pb_msg *m, uint32_t num, size_t idx,
                                            uint32_t wt, const char *what)
{
    const struct pb_field *f = pb_get(m, num, idx);
    if (!f)
        fail_msg("%s: field %u[%zu] missing", what, num, idx);
    if (f->wt != wt)
        fail_msg("%s: field %u has wire type %u, want %u", what, num, f->wt, wt);
    return f;
}

static void expect_str(const struct pb_msg *m, uint32_t num, size_t idx, const char *want,
                       const char *what)
{
    const struct pb_field *f = field_or_fail(m, num, idx, PB_WT_LEN, what);
    if (f->len != strlen(want) || memcmp(f->p, want, f->len) != 0)
        fail_msg("%s: field %u[%zu] is \"%.*s\", want \"%s\"", what, num, idx, (int)f->len,
                 (const char *)f->p, want);
}

static void expect_varint(const struct pb_msg *m, uint32_t num, uint64_t want, const char *what)
{
    const struct pb_field *f = field_or_fail(m, num, 0, PB_WT_VARINT, what);
    if (pb_count(m, num) != 1)
        fail_msg("%s: field %u occurs %zu times", what, num, pb_count(m, num));
    if (f->v != want)
        fail_msg("%s: field %u is %" PRIu64 ", want %" PRIu64, what, num, f->v, want);
}

static void expect_once(const struct pb_msg *m, uint32_t num, const char *what)
{
    if (pb_count(m, num) != 1)
        fail_msg("%s: field %u occurs %zu times, want once", what, num, pb_count(m, num));
}

static void sub_or_fail(const struct pb_msg *m, uint32_t num, struct pb_msg *sub, const char *what)
{
    const struct pb_field *f = field_or_fail(m, num, 0, PB_WT_LEN, what);
    expect_once(m, num, what);
    parse_or_fail(f->p, f->len, sub, what);
}

/* The stored bytes equal what Go's proto.Marshal writes for the same record (fields in
 * field-number order): the exact bytes built by the test's encoder. */
static void expect_bytes(const struct kv *kv, const struct pbw *want)
{
    if (kv->len != want->len || memcmp(kv->value, want->b, want->len) != 0) {
        hexdump("stored", kv->value, kv->len);
        hexdump("expected", want->b, want->len);
        fail_msg("%s: stored bytes differ from the reference encoding", kv->key);
    }
}

/* Cell{1 name, 2 server_addresses, 3 root}, one address. */
static void expect_cell(const struct kv *kv, const char *name, const char *address,
                        const char *root)
{
    static const uint32_t cell_fields[] = {1, 2, 3, 0};
    struct pb_msg m;
    parse_or_fail(kv->value, kv->len, &m, kv->key);
    expect_only(&m, cell_fields, kv->key);
    expect_once(&m, 1, kv->key);
    expect_str(&m, 1, 0, name, kv->key);
    if (pb_count(&m, 2) != 1)
        fail_msg("%s: %zu server_addresses, want 1", kv->key, pb_count(&m, 2));
    expect_str(&m, 2, 0, address, kv->key);
    expect_once(&m, 3, kv->key);
    expect_str(&m, 3, 0, root, kv->key);
    struct pbw w;
    enc_cell(&w, name, &address, 1, root);
    expect_bytes(kv, &w);
}

/* Database{1 name "postgres", 2 backup_location{1 filesystem{1 path "/backups"}},
 * 3 cells..., 4 bootstrap_durability_policy{1 policy_name, 3 quorum_type, 4 required_count 2}} */
static void expect_database(const struct kv *kv, const char *const *cells, size_t ncells,
                            const char *policy, uint64_t quorum_type)
{
    static const uint32_t db_fields[] = {1, 2, 3, 4, 0};
    static const uint32_t location_fields[] = {1, 0}; /* filesystem; no encryption */
    static const uint32_t fs_fields[] = {1, 0};
    static const uint32_t policy_fields[] = {1, 3, 4, 0};
    struct pb_msg m, loc, fs, pol;
    char what[600];
    parse_or_fail(kv->value, kv->len, &m, kv->key);
    expect_only(&m, db_fields, kv->key);
    expect_once(&m, 1, kv->key);
    expect_str(&m, 1, 0, "postgres", kv->key);

    (void)snprintf(what, sizeof(what), "%s backup_location", kv->key);
    sub_or_fail(&m, 2, &loc, what);
    expect_only(&loc, location_fields, what);
    (void)snprintf(what, sizeof(what), "%s backup_location.filesystem", kv->key);
    sub_or_fail(&loc, 1, &fs, what);
    expect_only(&fs, fs_fields, what);
    expect_once(&fs, 1, what);
    expect_str(&fs, 1, 0, "/backups", what);

    (void)snprintf(what, sizeof(what), "%s cells", kv->key);
    if (pb_count(&m, 3) != ncells)
        fail_msg("%s: %zu cells, want %zu", what, pb_count(&m, 3), ncells);
    for (size_t i = 0; i < ncells; i++)
        expect_str(&m, 3, i, cells[i], what);

    (void)snprintf(what, sizeof(what), "%s bootstrap_durability_policy", kv->key);
    sub_or_fail(&m, 4, &pol, what);
    expect_only(&pol, policy_fields, what);
    expect_once(&pol, 1, what);
    expect_str(&pol, 1, 0, policy, what);
    expect_varint(&pol, 3, quorum_type, what);
    expect_varint(&pol, 4, 2, what);

    struct pbw w;
    enc_database(&w, "postgres", "/backups", cells, ncells, policy, quorum_type, 2);
    expect_bytes(kv, &w);
}

static void expect_stored_cell(const char *cell, const char *address, const char *root)
{
    char key[256];
    struct kv *kv = kvs_alloc();
    cell_key(cell, key, sizeof(key));
    get_kv(key, kv);
    expect_cell(kv, cell, address, root);
    free(kv);
}

static void expect_stored_database(const char *const *cells, size_t n, const char *policy,
                                   uint64_t quorum_type)
{
    struct kv *kv = kvs_alloc();
    get_kv(DB_KEY, kv);
    expect_database(kv, cells, n, policy, quorum_type);
    free(kv);
}

/* ---- manifests written by the tests -------------------------------------------------------- */

/* A cluster with `cells` (zoneId each), an optional spec.durabilityPolicy, and
 * topologyPruning: -1 not given, 0 {enabled: false}, 1 {enabled: true}. */
static char *cluster_yaml(const char *name, const char *const *cells, size_t n, const char *policy,
                          int pruning)
{
    size_t size = 4096 + n * 64;
    char *y = malloc(size);
    assert_non_null(y);
    int len = snprintf(y, size,
                       "apiVersion: multigres.com/v1alpha1\n"
                       "kind: MultigresCluster\n"
                       "metadata:\n  name: %s\n  namespace: default\n"
                       "spec:\n"
                       "  postgresPasswordSecretRef: {name: pw, key: password}\n",
                       name);
    if (policy)
        len += snprintf(y + len, size - (size_t)len, "  durabilityPolicy: %s\n", policy);
    if (pruning >= 0)
        len += snprintf(y + len, size - (size_t)len, "  topologyPruning: {enabled: %s}\n",
                        pruning ? "true" : "false");
    len += snprintf(y + len, size - (size_t)len, "  cells:\n");
    for (size_t i = 0; i < n; i++)
        len += snprintf(y + len, size - (size_t)len, "    - name: %s\n      zoneId: z%zu\n",
                        cells[i], i);
    return y;
}

/* FNV-1a 32 over the parts, each followed by a NUL (operator-api.md 2.2). */
static uint32_t name_hash(const char *const *parts, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0) * 16777619u;
    }
    return h;
}

/* Join(parts...) for short, already valid lower-case parts (no truncation needed). */
static void name_join(const char *const *parts, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s-", parts[i]);
    (void)snprintf(buf + len, size - len, "%08x", name_hash(parts, n));
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_ALL);
    if (etcd_harness_start(&harness) != 0)
        return -1;
    mgo_host host = {
        .struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION, .now_ms = fixed_now};
    return mgo_open(&host, &plugin) == MGO_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    mgo_close(plugin);
    etcd_harness_stop(&harness);
    curl_global_cleanup();
    return 0;
}

static int wipe(void **state)
{
    (void)state;
    if (harness.paused)
        etcd_harness_resume(&harness);
    return etcd_delete_prefix(harness.endpoint, "") < 0 ? -1 : 0;
}

/* ---- registration of the samples ---------------------------------------------------------- */

static void test_register_minimal(void **state)
{
    (void)state;
    json_t *res = NULL;
    char cell[256];
    cell_key("zone-a", cell, sizeof(cell));
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register minimal");
    assert_string_equal(json_string_value(json_object_get(res, "root")), G);
    expect_outcome(res, "databases", DB_KEY, "created");
    expect_outcome(res, "cells", cell, "created");
    expect_report_size(res, "databases", 1);
    expect_report_size(res, "cells", 1);
    expect_report_size(res, "pruned", 0);
    json_decref(res);

    const char *keys[] = {cell, DB_KEY};
    expect_keys(keys, 2);
    expect_stored_cell("zone-a", "minimal-global-topo.default.svc:2379", G);
    const char *cells[] = {"zone-a"};
    expect_stored_database(cells, 1, "AT_LEAST_2", 3);
}

static void test_register_topology(void **state)
{
    (void)state;
    json_t *res = NULL;
    char k1[256], k2[256], k3[256];
    cell_key("z1", k1, sizeof(k1));
    cell_key("z2", k2, sizeof(k2));
    cell_key("z3", k3, sizeof(k3));
    expect_status(register_sample("topology.yaml", &res), MGO_OK, &res, "register topology");
    expect_outcome(res, "databases", DB_KEY, "created");
    expect_outcome(res, "cells", k1, "created");
    expect_outcome(res, "cells", k2, "created");
    expect_outcome(res, "cells", k3, "created");
    expect_report_size(res, "cells", 3);
    expect_report_size(res, "pruned", 0);
    json_decref(res);

    const char *keys[] = {k1, k2, k3, DB_KEY};
    expect_keys(keys, 4);
    expect_stored_cell("z1", "topology-global-topo.default.svc:2379", G);
    expect_stored_cell("z2", "topology-global-topo.default.svc:2379", G);
    expect_stored_cell("z3", "topology-global-topo.default.svc:2379", G);
    const char *cells[] = {"z1", "z2", "z3"};
    expect_stored_database(cells, 3, "AT_LEAST_2", 3);
}

static void test_register_no_templates(void **state)
{
    (void)state;
    json_t *res = NULL;
    char k1[256];
    cell_key("z1", k1, sizeof(k1));
    expect_status(register_sample("no-templates.yaml", &res), MGO_OK, &res,
                  "register no-templates");
    expect_outcome(res, "databases", DB_KEY, "created");
    expect_outcome(res, "cells", k1, "created");
    json_decref(res);

    const char *keys[] = {k1, DB_KEY};
    expect_keys(keys, 2);
    expect_stored_cell("z1", "inline-global-topo.default.svc:2379", G);
    const char *cells[] = {"z1"};
    expect_stored_database(cells, 1, "AT_LEAST_2", 3);
}

/* A cell with a managed local topology: its own service address and root /multigres/<cell>. */
static void test_register_local_topo(void **state)
{
    (void)state;
    static const char yaml[] = "apiVersion: multigres.com/v1alpha1\n"
                               "kind: MultigresCluster\n"
                               "metadata: {name: dmp, namespace: default}\n"
                               "spec:\n"
                               "  postgresPasswordSecretRef: {name: pw, key: password}\n"
                               "  cells:\n"
                               "    - {name: zone-a, zoneId: za}\n"
                               "    - name: zone-b\n"
                               "      zoneId: zb\n"
                               "      spec: {localTopoServer: {etcd: {}}}\n";
    json_t *res = NULL;
    char ka[256], kb[256], cell_cr[128], local[160], address[256];
    cell_key("zone-a", ka, sizeof(ka));
    cell_key("zone-b", kb, sizeof(kb));
    const char *cr_parts[] = {"dmp", "zone-b"};
    name_join(cr_parts, 2, cell_cr, sizeof(cell_cr));
    const char *local_parts[] = {cell_cr, "topo"};
    name_join(local_parts, 2, local, sizeof(local));
    (void)snprintf(address, sizeof(address), "%s.default.svc:2379", local);

    expect_status(register_text("local-topo.yaml", yaml, &res), MGO_OK, &res, "register");
    json_decref(res);
    const char *keys[] = {ka, kb, DB_KEY};
    expect_keys(keys, 3);
    expect_stored_cell("zone-a", "dmp-global-topo.default.svc:2379", G);
    expect_stored_cell("zone-b", address, "/multigres/zone-b");
    const char *cells[] = {"zone-a", "zone-b"};
    expect_stored_database(cells, 2, "AT_LEAST_2", 3);
}

/* ---- registration inside a reconcile pass ---------------------------------------------------- */

/* A reconcile pass of minimal.yaml (process target) with the managed etcd observed `ready`. */
static int32_t reconcile_minimal(int etcd_ready, const char *endpoint, int64_t deadline_ms,
                                 json_t **ret)
{
    char path[1024];
    sample_path("minimal.yaml", path, sizeof(path));
    char *text = read_text(path);
    json_t *req =
        json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:{s:s, s:s}, s:b}]}, s:{s:o, s:I}}", "manifests",
                  text, "target", "process", "observed", "objects", "kind", "Etcd", "name",
                  "minimal-global-topo", "labels", "multigres.com/cluster", "minimal",
                  "app.kubernetes.io/managed-by", "mgo", "ready", etcd_ready, "topology", "etcd",
                  etcd_override(endpoint, NULL), "deadline_ms", (json_int_t)deadline_ms);
    free(text);
    char *body = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_reconcile(plugin, body, strlen(body), &out, &len);
    free(body);
    if (!out)
        fail_msg("mgo_reconcile returned %d without a result", rc);
    *ret = json_loadb(out, len, 0, NULL);
    mgo_free(out);
    assert_non_null(*ret);
    return rc;
}

static int has_event(const json_t *res, const char *reason)
{
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(res, "actions"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "type")), "event") == 0 &&
            strcmp(json_string_value(json_object_get(a, "reason")), reason) == 0)
            return 1;
    return 0;
}

static const char *topology_field(const json_t *res, const char *key)
{
    return json_string_value(json_object_get(json_object_get(res, "topology"), key));
}

static void test_reconcile_registers(void **state)
{
    (void)state;
    json_t *res = NULL;
    struct kv *kvs = kvs_alloc();
    int64_t rev1 = 0, rev2 = 0;

    /* The managed etcd is not ready yet: nothing is attempted, the pass still creates. */
    assert_int_equal(reconcile_minimal(0, harness.endpoint, CALL_DEADLINE, &res), MGO_OK);
    assert_string_equal(topology_field(res, "reason"), "WaitingForTopology");
    assert_true(json_array_size(json_object_get(res, "actions")) > 0);
    assert_int_equal(etcd_range(harness.endpoint, "", kvs, MAX_KVS, &rev1), 0);
    json_decref(res);

    assert_int_equal(reconcile_minimal(1, harness.endpoint, CALL_DEADLINE, &res), MGO_OK);
    assert_true(json_is_true(json_object_get(json_object_get(res, "topology"), "registered")));
    assert_true(has_event(res, "TopoRegistered"));
    json_decref(res);
    assert_int_equal(etcd_range(harness.endpoint, "", kvs, MAX_KVS, &rev1), 2);

    /* The next pass registers again and writes nothing: no event, the revision stays. */
    assert_int_equal(reconcile_minimal(1, harness.endpoint, CALL_DEADLINE, &res), MGO_OK);
    assert_false(has_event(res, "TopoRegistered"));
    assert_false(json_is_true(json_object_get(json_object_get(res, "topology"), "changed")));
    json_decref(res);
    assert_int_equal(etcd_range(harness.endpoint, "", kvs, MAX_KVS, &rev2), 2);
    assert_int_equal(rev2, rev1);
    free(kvs);
}

static void test_reconcile_topology_unavailable(void **state)
{
    (void)state;
    json_t *res = NULL;
    assert_int_equal(etcd_harness_pause(&harness), 0);
    int64_t t0 = mono_ms();
    int32_t rc = reconcile_minimal(1, harness.endpoint, 1000, &res);
    int64_t took = mono_ms() - t0;
    assert_int_equal(etcd_harness_resume(&harness), 0);
    /* The pass does not fail: it says why and asks to be called again soon. */
    assert_int_equal(rc, MGO_OK);
    assert_string_equal(topology_field(res, "reason"), "TopologyUnavailable");
    assert_true(has_event(res, "TopologyWaiting"));
    int64_t requeue = json_integer_value(json_object_get(res, "requeue_after_ms"));
    assert_true(requeue > 0 && requeue <= 5000);
    assert_true(json_array_size(json_object_get(res, "actions")) > 1);
    json_decref(res);
    if (took > 1000 + MARGIN_MS)
        fail_msg("reconcile took %" PRId64 " ms with topology.deadline_ms 1000", took);
}

/* ---- idempotence, updates, pruning ----------------------------------------------------------- */

static void test_register_twice_unchanged(void **state)
{
    (void)state;
    json_t *res = NULL;
    char cell[256];
    cell_key("zone-a", cell, sizeof(cell));
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "first register");
    json_decref(res);

    struct kv *before = kvs_alloc(), *after = kvs_alloc();
    int64_t rev_before = 0, rev_after = 0;
    long n_before = etcd_range(harness.endpoint, "", before, MAX_KVS, &rev_before);
    assert_int_equal(n_before, 2);

    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "second register");
    expect_outcome(res, "databases", DB_KEY, "unchanged");
    expect_outcome(res, "cells", cell, "unchanged");
    expect_report_size(res, "databases", 1);
    expect_report_size(res, "cells", 1);
    expect_report_size(res, "pruned", 0);
    json_decref(res);

    long n_after = etcd_range(harness.endpoint, "", after, MAX_KVS, &rev_after);
    assert_int_equal(n_after, n_before);
    for (long i = 0; i < n_before; i++) {
        assert_string_equal(after[i].key, before[i].key);
        if (after[i].mod_revision != before[i].mod_revision)
            fail_msg("%s: mod revision %" PRId64 " -> %" PRId64, after[i].key,
                     before[i].mod_revision, after[i].mod_revision);
        assert_memory_equal(after[i].value, before[i].value, before[i].len);
    }
    /* Nothing at all was written: the store revision did not move. */
    assert_int_equal(rev_after, rev_before);
    free(before);
    free(after);
}

static void test_register_spec_change(void **state)
{
    (void)state;
    json_t *res = NULL;
    char ka[256], kb[256], kc[256];
    cell_key("zone-a", ka, sizeof(ka));
    cell_key("zone-b", kb, sizeof(kb));
    cell_key("zone-c", kc, sizeof(kc));
    const char *two[] = {"zone-a", "zone-b"}, *three[] = {"zone-a", "zone-b", "zone-c"};

    char *y = cluster_yaml("chg", two, 2, NULL, -1);
    expect_status(register_text("chg.yaml", y, &res), MGO_OK, &res, "register 2 cells");
    free(y);
    json_decref(res);
    expect_stored_database(two, 2, "AT_LEAST_2", 3);
    int64_t ra = mod_revision_of(ka), rb = mod_revision_of(kb), rdb = mod_revision_of(DB_KEY);

    /* The durability policy changes: only the Database is rewritten. */
    y = cluster_yaml("chg", two, 2, "MULTI_CELL_AT_LEAST_2", -1);
    expect_status(register_text("chg.yaml", y, &res), MGO_OK, &res, "register MULTI_CELL");
    free(y);
    expect_outcome(res, "databases", DB_KEY, "updated");
    expect_outcome(res, "cells", ka, "unchanged");
    expect_outcome(res, "cells", kb, "unchanged");
    expect_report_size(res, "pruned", 0);
    json_decref(res);
    expect_stored_database(two, 2, "MULTI_CELL_AT_LEAST_2", 4);
    assert_int_equal(mod_revision_of(ka), ra);
    assert_int_equal(mod_revision_of(kb), rb);
    int64_t rdb2 = mod_revision_of(DB_KEY);
    assert_true(rdb2 > rdb);

    /* A cell is added: its Cell is created, the Database's cells updated, the others kept. */
    y = cluster_yaml("chg", three, 3, "MULTI_CELL_AT_LEAST_2", -1);
    expect_status(register_text("chg.yaml", y, &res), MGO_OK, &res, "register 3 cells");
    free(y);
    expect_outcome(res, "databases", DB_KEY, "updated");
    expect_outcome(res, "cells", ka, "unchanged");
    expect_outcome(res, "cells", kb, "unchanged");
    expect_outcome(res, "cells", kc, "created");
    json_decref(res);
    const char *keys[] = {ka, kb, kc, DB_KEY};
    expect_keys(keys, 4);
    expect_stored_database(three, 3, "MULTI_CELL_AT_LEAST_2", 4);
    expect_stored_cell("zone-c", "chg-global-topo.default.svc:2379", G);
    assert_int_equal(mod_revision_of(ka), ra);
    assert_int_equal(mod_revision_of(kb), rb);
    assert_true(mod_revision_of(DB_KEY) > rdb2);
}

static void test_register_prune(void **state)
{
    (void)state;
    json_t *res = NULL;
    char ka[256], kb[256], kc[256];
    cell_key("zone-a", ka, sizeof(ka));
    cell_key("zone-b", kb, sizeof(kb));
    cell_key("zone-c", kc, sizeof(kc));
    const char *one[] = {"zone-a"}, *two[] = {"zone-a", "zone-b"},
               *three[] = {"zone-a", "zone-b", "zone-c"};

    char *y = cluster_yaml("prn", three, 3, NULL, -1);
    expect_status(register_text("prn.yaml", y, &res), MGO_OK, &res, "register 3 cells");
    free(y);
    json_decref(res);
    int64_t ra = mod_revision_of(ka), rb = mod_revision_of(kb);

    /* zone-c leaves the spec; pruning is on by default: exactly its Cell goes. */
    y = cluster_yaml("prn", two, 2, NULL, -1);
    expect_status(register_text("prn.yaml", y, &res), MGO_OK, &res, "register without zone-c");
    free(y);
    expect_outcome(res, "pruned", kc, "deleted");
    expect_report_size(res, "pruned", 1);
    expect_outcome(res, "databases", DB_KEY, "updated");
    expect_outcome(res, "cells", ka, "unchanged");
    expect_outcome(res, "cells", kb, "unchanged");
    json_decref(res);
    const char *keys2[] = {ka, kb, DB_KEY};
    expect_keys(keys2, 3);
    expect_stored_database(two, 2, "AT_LEAST_2", 3);
    assert_int_equal(mod_revision_of(ka), ra);
    assert_int_equal(mod_revision_of(kb), rb);

    /* zone-b leaves too, with pruning disabled: nothing is deleted. */
    y = cluster_yaml("prn", one, 1, NULL, 0);
    expect_status(register_text("prn.yaml", y, &res), MGO_OK, &res, "register, pruning off");
    free(y);
    expect_report_size(res, "pruned", 0);
    expect_outcome(res, "cells", ka, "unchanged");
    json_decref(res);
    expect_keys(keys2, 3);
    assert_int_equal(mod_revision_of(kb), rb);
    assert_int_equal(mod_revision_of(ka), ra);
    expect_stored_cell("zone-b", "prn-global-topo.default.svc:2379", G);
    expect_stored_database(one, 1, "AT_LEAST_2", 3);

    /* Explicitly enabled: zone-b goes now. */
    y = cluster_yaml("prn", one, 1, NULL, 1);
    expect_status(register_text("prn.yaml", y, &res), MGO_OK, &res, "register, pruning on");
    free(y);
    expect_outcome(res, "pruned", kb, "deleted");
    expect_report_size(res, "pruned", 1);
    json_decref(res);
    const char *keys1[] = {ka, DB_KEY};
    expect_keys(keys1, 2);
}

/* ---- unknown fields ------------------------------------------------------------------------ */

static void test_unknown_fields_kept(void **state)
{
    (void)state;
    char key[256];
    cell_key("zone-a", key, sizeof(key));
    const char *address = "minimal-global-topo.default.svc:2379";
    struct pbw w;
    enc_cell(&w, "zone-a", &address, 1, "/elsewhere");
    size_t extra_at = w.len;
    pbw_str(&w, 15, "written by a newer Multigres");
    size_t extra_len = w.len - extra_at;
    uint8_t extra[128];
    memcpy(extra, w.b + extra_at, extra_len);
    put_or_fail(key, w.b, w.len);

    json_t *res = NULL;
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register");
    expect_outcome(res, "cells", key, "updated");
    json_decref(res);

    struct kv *kv = kvs_alloc();
    struct pb_msg m;
    get_kv(key, kv);
    parse_or_fail(kv->value, kv->len, &m, key);
    expect_str(&m, 1, 0, "zone-a", key);
    expect_str(&m, 2, 0, address, key);
    expect_once(&m, 3, key);
    expect_str(&m, 3, 0, G, key);
    if (pb_count(&m, 15) != 1)
        fail_msg("%s: unknown field 15 occurs %zu times after the update, want once", key,
                 pb_count(&m, 15));
    const struct pb_field *f = pb_get(&m, 15, 0);
    if (f->raw_len != extra_len || memcmp(f->raw, extra, extra_len) != 0) {
        hexdump("stored", kv->value, kv->len);
        fail_msg("%s: the bytes of field 15 changed", key);
    }
    int64_t rev = kv->mod_revision;

    /* Equal in every known field: left alone, unknown field included. */
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register again");
    expect_outcome(res, "cells", key, "unchanged");
    json_decref(res);
    get_kv(key, kv);
    assert_int_equal(kv->mod_revision, rev);
    free(kv);
}

/* ---- poolers ------------------------------------------------------------------------------- */

static void put_pooler(const char *root, const struct pooler_spec *s, int64_t *ret_rev)
{
    char key[512];
    struct pbw w;
    pooler_key(root, s->cell, s->name, key, sizeof(key));
    enc_pooler(&w, s);
    int64_t rev = etcd_put(harness.endpoint, key, w.b, w.len);
    if (rev <= 0)
        fail_msg("etcd put %s failed", key);
    if (ret_rev)
        *ret_rev = rev;
}

static const json_t *find_pooler(const json_t *list, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        const char *n = json_string_value(json_object_get(json_object_get(e, "id"), "name"));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return NULL;
}

static void test_list_poolers(void **state)
{
    (void)state;
    /* LIFECYCLE_ACTIVE 2, SHUTDOWN 4, QUARANTINED 5; ROUTING_ROLE_PRIMARY 1, REPLICA 2 */
    const struct pooler_spec specs[] = {
        {"zone-a", "p-primary", "postgres", "default", "0-inf", "h-primary", 15270, 5432, 2, 1, 0,
         NULL, 0},
        {"zone-a", "p-replica", "postgres", "default", "0-inf", "h-replica", 15271, 5432, 2, 2, 0,
         NULL, 0},
        {"zone-a", "p-quarantined", "postgres", "default", "0-inf", "h-quarantined", 15272, 5432, 5,
         2, 0, NULL, 0},
        {"zone-a", "p-starting", "postgres", "default", "0-inf", "h-starting", 15273, 5432, 0, 0, 0,
         NULL, 0},
        {"zone-a", "p-shutdown", "postgres", "default", "0-inf", "h-shutdown", 15274, 5432, 4, 1, 0,
         NULL, 0},
        {"zone-a", "p-other-shard", "postgres", "default", "0-80", "h-other", 15275, 5432, 2, 1, 0,
         NULL, 0},
        {"zone-a", "p-other-tg", "postgres", "orders", "0-inf", "h-other-tg", 15276, 5432, 2, 1, 0,
         NULL, 0},
        {"zone-b", "p-other-cell", "postgres", "default", "0-inf", "h-other-cell", 15277, 5432, 2,
         1, 0, NULL, 0},
    };
    const struct {
        const char *name, *role;
    } want[] = {{"p-primary", "PRIMARY"},
                {"p-replica", "REPLICA"},
                {"p-quarantined", "QUARANTINED"},
                {"p-starting", "REPLICA"}};
    int64_t revs[8];
    for (size_t i = 0; i < 8; i++)
        put_pooler(G, &specs[i], &revs[i]);

    json_t *res = NULL;
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s}", "cell", "zone-a", "database", "postgres",
                               "table_group", "default", "shard", "0-inf");
    expect_status(call_op("list_poolers", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "list_poolers");
    const json_t *list = json_object_get(res, "poolers");
    if (json_array_size(list) != 4) {
        char *dump = json_dumps(res, JSON_COMPACT);
        fail_msg("list_poolers: %zu poolers, want 4: %s", json_array_size(list), dump);
    }
    for (size_t i = 0; i < 4; i++) {
        const json_t *p = find_pooler(list, want[i].name);
        if (!p)
            fail_msg("list_poolers: %s is missing", want[i].name);
        assert_string_equal(json_string_value(json_object_get(p, "role")), want[i].role);
        char key[512];
        pooler_key(G, "zone-a", want[i].name, key, sizeof(key));
        assert_string_equal(json_string_value(json_object_get(p, "key")), key);
        assert_int_equal(json_integer_value(json_object_get(p, "mod_revision")), revs[i]);
        assert_string_equal(json_string_value(json_object_get(json_object_get(p, "id"), "cell")),
                            "zone-a");
        assert_string_equal(json_string_value(json_object_get(p, "hostname")), specs[i].hostname);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(p, "port_map"), "grpc")),
            specs[i].grpc_port);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(p, "shard_key"), "shard")), "0-inf");
    }
    json_decref(res);
}

static json_t *pooler_json(const char *name)
{
    return json_pack("{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:{s:i, s:i}, s:s, s:s,"
                     " s:{s:s}, s:{s:s}}",
                     "id", "component", "MULTIPOOLER", "cell", "zone-a", "name", name, "shard_key",
                     "database", "postgres", "table_group", "default", "shard", "0-inf", "hostname",
                     "p1.pool.default.svc", "port_map", "grpc", 15270, "postgres", 5432,
                     "pooler_dir", "/var/lib/pooler", "pg_data_dir", "/var/lib/pooler/pg_data",
                     "lifecycle_status", "status", "LIFECYCLE_ACTIVE", "routing_state", "role",
                     "ROUTING_ROLE_PRIMARY");
}

/* A port_map entry {1 key, 2 value} with this key and value exists. */
static void expect_port(const struct pb_msg *m, const char *name, uint64_t port, const char *key)
{
    for (size_t i = 0; i < pb_count(m, 9); i++) {
        const struct pb_field *f = field_or_fail(m, 9, i, PB_WT_LEN, key);
        struct pb_msg e;
        parse_or_fail(f->p, f->len, &e, key);
        const struct pb_field *k = pb_get(&e, 1, 0), *v = pb_get(&e, 2, 0);
        if (k && k->wt == PB_WT_LEN && k->len == strlen(name) && !memcmp(k->p, name, k->len)) {
            if (!v || v->wt != PB_WT_VARINT || v->v != port)
                fail_msg("%s: port_map[%s] is not %" PRIu64, key, name, port);
            return;
        }
    }
    fail_msg("%s: port_map has no entry %s", key, name);
}

/* lifecycle_status{1 LIFECYCLE_SHUTDOWN 4, 2 reason, 3 updated{1 seconds, 2 nanos}} */
static void expect_shutdown(const struct pb_msg *m, const char *reason, const char *key)
{
    static const uint32_t life_fields[] = {1, 2, 3, 0};
    static const uint32_t ts_fields[] = {1, 2, 0};
    struct pb_msg life, ts;
    sub_or_fail(m, 12, &life, key);
    expect_only(&life, life_fields, key);
    expect_varint(&life, 1, 4, key);
    expect_once(&life, 2, key);
    expect_str(&life, 2, 0, reason, key);
    sub_or_fail(&life, 3, &ts, key);
    expect_only(&ts, ts_fields, key);
    expect_varint(&ts, 1, (uint64_t)(FIXED_NOW_MS / 1000), key);
    /* A Timestamp of the injected clock: nanos 250000000 (or left out, 0, if mgo keeps whole
     * seconds only). */
    if (pb_count(&ts, 2))
        expect_varint(&ts, 2, (uint64_t)(FIXED_NOW_MS % 1000) * 1000000u, key);
}

/* Every field of `after` but 12 is byte-for-byte the one of `before`, in the same order. */
static void expect_same_but_lifecycle(const struct pb_msg *before, const struct pb_msg *after,
                                      const char *key)
{
    size_t j = 0;
    for (size_t i = 0; i < before->n; i++) {
        if (before->f[i].num == 12)
            continue;
        while (j < after->n && after->f[j].num == 12)
            j++;
        if (j >= after->n)
            fail_msg("%s: field %u is gone after the shutdown mark", key, before->f[i].num);
        if (after->f[j].raw_len != before->f[i].raw_len ||
            memcmp(after->f[j].raw, before->f[i].raw, before->f[i].raw_len) != 0)
            fail_msg("%s: field %u changed by the shutdown mark (now field %u)", key,
                     before->f[i].num, after->f[j].num);
        j++;
    }
    while (j < after->n && after->f[j].num == 12)
        j++;
    if (j != after->n)
        fail_msg("%s: the shutdown mark added field %u", key, after->f[j].num);
}

static void test_publish_and_shutdown(void **state)
{
    (void)state;
    static const uint32_t pooler_fields[] = {1, 2, 8, 9, 10, 11, 12, 13, 0};
    char key[512];
    json_t *res = NULL;
    pooler_key(G, "zone-a", "p1", key, sizeof(key));

    json_t *fields = json_pack("{s:o}", "pooler", pooler_json("p1"));
    expect_status(call_op("publish_pooler", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "publish_pooler");
    json_decref(res);

    struct kv *before = kvs_alloc(), *after = kvs_alloc();
    struct pb_msg m, sub, m2;
    get_kv(key, before);
    parse_or_fail(before->value, before->len, &m, key);
    expect_only(&m, pooler_fields, key);
    sub_or_fail(&m, 1, &sub, key); /* id */
    expect_varint(&sub, 1, 1, key);
    expect_str(&sub, 2, 0, "zone-a", key);
    expect_str(&sub, 3, 0, "p1", key);
    sub_or_fail(&m, 2, &sub, key); /* shard_key */
    expect_str(&sub, 1, 0, "postgres", key);
    expect_str(&sub, 2, 0, "default", key);
    expect_str(&sub, 3, 0, "0-inf", key);
    expect_str(&m, 8, 0, "p1.pool.default.svc", key);
    assert_int_equal(pb_count(&m, 9), 2);
    expect_port(&m, "grpc", 15270, key);
    expect_port(&m, "postgres", 5432, key);
    expect_str(&m, 10, 0, "/var/lib/pooler", key);
    expect_str(&m, 11, 0, "/var/lib/pooler/pg_data", key);
    sub_or_fail(&m, 12, &sub, key); /* lifecycle_status: ACTIVE */
    expect_varint(&sub, 1, 2, key);
    sub_or_fail(&m, 13, &sub, key); /* routing_state: PRIMARY */
    expect_varint(&sub, 1, 1, key);

    /* Mark it shut down: lifecycle replaced, everything else kept. */
    fields = json_pack("{s:s, s:s, s:s}", "cell", "zone-a", "name", "p1", "reason",
                       "test: instance drained");
    expect_status(call_op("mark_pooler_shutdown", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "mark_pooler_shutdown");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    get_kv(key, after);
    assert_true(after->mod_revision > before->mod_revision);
    parse_or_fail(after->value, after->len, &m2, key);
    expect_shutdown(&m2, "test: instance drained", key);
    expect_same_but_lifecycle(&m, &m2, key);

    /* Again: nothing to do, nothing written. */
    fields = json_pack("{s:s, s:s, s:s}", "cell", "zone-a", "name", "p1", "reason",
                       "test: instance drained");
    expect_status(call_op("mark_pooler_shutdown", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "mark_pooler_shutdown again");
    assert_true(json_is_false(json_object_get(res, "changed")));
    json_decref(res);
    int64_t rev = after->mod_revision;
    get_kv(key, after);
    assert_int_equal(after->mod_revision, rev);

    /* Delete, then delete again. */
    fields = json_pack("{s:s, s:s}", "cell", "zone-a", "name", "p1");
    expect_status(call_op("delete_pooler", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "delete_pooler");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    assert_int_equal(key_exists(key), 0);
    fields = json_pack("{s:s, s:s}", "cell", "zone-a", "name", "p1");
    expect_status(call_op("delete_pooler", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "delete_pooler again");
    assert_true(json_is_false(json_object_get(res, "changed")));
    json_decref(res);

    /* Marking a record that does not exist. */
    fields = json_pack("{s:s, s:s, s:s}", "cell", "zone-a", "name", "p1", "reason", "x");
    expect_status(call_op("mark_pooler_shutdown", fields, CALL_DEADLINE, &res), MGO_ENOTFOUND, &res,
                  "mark_pooler_shutdown of a missing pooler");
    json_decref(res);
    free(before);
    free(after);
}

/* A record another writer (a newer pooler) wrote, with a field mgo does not know: marking it
 * keeps every byte but the lifecycle. */
static void test_shutdown_keeps_foreign_fields(void **state)
{
    (void)state;
    const struct pooler_spec s = {"zone-a", "p2", "postgres", "default",
                                  "0-inf",  "h2", 15270,      5432,
                                  2,        1,    20,         "field of a newer pooler",
                                  0};
    char key[512];
    int64_t rev;
    json_t *res = NULL;
    struct kv *kv = kvs_alloc();
    struct pb_msg before, after;
    struct pbw w;
    pooler_key(G, "zone-a", "p2", key, sizeof(key));
    put_pooler(G, &s, &rev);
    enc_pooler(&w, &s);
    parse_or_fail(w.b, w.len, &before, key);

    json_t *fields = json_pack("{s:s, s:s, s:s}", "cell", "zone-a", "name", "p2", "reason",
                               "operator: no backing pod for pooler");
    expect_status(call_op("mark_pooler_shutdown", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "mark_pooler_shutdown");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    get_kv(key, kv);
    assert_true(kv->mod_revision > rev);
    parse_or_fail(kv->value, kv->len, &after, key);
    expect_shutdown(&after, "operator: no backing pod for pooler", key);
    expect_same_but_lifecycle(&before, &after, key);
    free(kv);
}

/* A record from a pooler whose serving_status is a value this Multigres version does not
 * define (2, BACKUP at v0.1.0; HEAD has SERVING 0, DISABLED 1, DRAINING 4): protobuf keeps
 * unknown enum values, and so must a read-modify-write that only changes the lifecycle. */
static void test_shutdown_keeps_unknown_enum_value(void **state)
{
    (void)state;
    const struct pooler_spec s = {"zone-a", "p3", "postgres", "default", "0-inf", "h3", 15270,
                                  5432,     2,    2,          0,         NULL,    2};
    char key[512];
    int64_t rev;
    json_t *res = NULL;
    struct kv *kv = kvs_alloc();
    struct pb_msg before, after;
    struct pbw w;
    pooler_key(G, "zone-a", "p3", key, sizeof(key));
    put_pooler(G, &s, &rev);
    enc_pooler(&w, &s);
    parse_or_fail(w.b, w.len, &before, key);

    /* Read-only paths see it. */
    json_t *fields = json_pack("{s:s, s:s, s:s, s:s}", "cell", "zone-a", "database", "postgres",
                               "table_group", "default", "shard", "0-inf");
    expect_status(call_op("list_poolers", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "list_poolers");
    assert_int_equal(json_array_size(json_object_get(res, "poolers")), 1);
    json_decref(res);

    fields = json_pack("{s:s, s:s, s:s}", "cell", "zone-a", "name", "p3", "reason",
                       "operator: no backing pod for pooler");
    expect_status(call_op("mark_pooler_shutdown", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "mark_pooler_shutdown of a record with an unknown serving_status");
    assert_true(json_is_true(json_object_get(res, "changed")));
    json_decref(res);
    get_kv(key, kv);
    assert_true(kv->mod_revision > rev);
    parse_or_fail(kv->value, kv->len, &after, key);
    expect_shutdown(&after, "operator: no backing pod for pooler", key);
    expect_same_but_lifecycle(&before, &after, key);
    free(kv);
}

/* What list_poolers returns is a record in the JSON form publish_pooler takes (docs/abi.md):
 * a host may publish it back, also when it carries an enum value this version does not define
 * (serving_status 2). The stored record then has the same fields. */
static void test_publish_listed_record(void **state)
{
    (void)state;
    const struct pooler_spec s = {"zone-a", "p4", "postgres", "default", "0-inf", "h4", 15270,
                                  5432,     2,    2,          0,         NULL,    2};
    char key[512];
    json_t *res = NULL;
    struct kv *kv = kvs_alloc();
    struct pb_msg before, after;
    struct pbw w;
    pooler_key(G, "zone-a", "p4", key, sizeof(key));
    put_pooler(G, &s, NULL);
    enc_pooler(&w, &s);
    parse_or_fail(w.b, w.len, &before, key);

    json_t *fields = json_pack("{s:s, s:s, s:s, s:s}", "cell", "zone-a", "database", "postgres",
                               "table_group", "default", "shard", "0-inf");
    expect_status(call_op("list_poolers", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "list_poolers");
    json_t *record = json_deep_copy(json_array_get(json_object_get(res, "poolers"), 0));
    json_decref(res);
    assert_non_null(record);
    json_object_del(record, "key");
    json_object_del(record, "mod_revision");
    json_object_del(record, "role");

    fields = json_pack("{s:o}", "pooler", record);
    expect_status(call_op("publish_pooler", fields, CALL_DEADLINE, &res), MGO_OK, &res,
                  "publish_pooler of the record list_poolers returned");
    json_decref(res);
    get_kv(key, kv);
    parse_or_fail(kv->value, kv->len, &after, key);
    expect_varint(&after, 7, 2, key);
    assert_int_equal(after.n, before.n);
    free(kv);
}

/* A stored Database whose quorum_type is a value this version does not define (5): replaced by
 * the spec's policy like any other difference. */
static void test_register_over_unknown_enum_value(void **state)
{
    (void)state;
    struct pbw w;
    const char *cells[] = {"zone-a"};
    enc_database(&w, "postgres", "/backups", cells, 1, "AT_LEAST_2", 5, 2);
    put_or_fail(DB_KEY, w.b, w.len);
    json_t *res = NULL;
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res,
                  "register over a Database with quorum_type 5");
    expect_outcome(res, "databases", DB_KEY, "updated");
    json_decref(res);
    expect_stored_database(cells, 1, "AT_LEAST_2", 3);
}

/* ---- dump ---------------------------------------------------------------------------------- */

static const json_t *find_record(const json_t *records, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach (records, i, e)
        if (json_is_string(json_object_get(e, "key")) &&
            strcmp(json_string_value(json_object_get(e, "key")), key) == 0)
            return e;
    return NULL;
}

static const json_t *record_or_fail(const json_t *records, const char *key, const json_t *res)
{
    const json_t *r = find_record(records, key);
    if (!r) {
        char *dump = json_dumps(res, JSON_INDENT(1));
        fprintf(stderr, "dump result: %s\n", dump ? dump : "?");
        fail_msg("dump has no record %s", key);
    }
    return r;
}

static const char *jstr(const json_t *o, const char *path)
{
    char part[128];
    const json_t *v = o;
    while (*path) {
        size_t n = strcspn(path, ".");
        (void)snprintf(part, sizeof(part), "%.*s", (int)n, path);
        v = json_object_get(v, part);
        path += n + (path[n] == '.');
    }
    return json_string_value(v);
}

static void test_dump(void **state)
{
    (void)state;
    static const char yaml[] = "apiVersion: multigres.com/v1alpha1\n"
                               "kind: MultigresCluster\n"
                               "metadata: {name: dmp, namespace: default}\n"
                               "spec:\n"
                               "  postgresPasswordSecretRef: {name: pw, key: password}\n"
                               "  cells:\n"
                               "    - {name: zone-a, zoneId: za}\n"
                               "    - name: zone-b\n"
                               "      zoneId: zb\n"
                               "      spec: {localTopoServer: {etcd: {}}}\n";
    json_t *res = NULL;
    char ka[256], kb[256], pa[512], pb[512];
    cell_key("zone-a", ka, sizeof(ka));
    cell_key("zone-b", kb, sizeof(kb));
    expect_status(register_text("dump.yaml", yaml, &res), MGO_OK, &res, "register");
    json_decref(res);
    const struct pooler_spec sa = {"zone-a", "pa", "postgres", "default", "0-inf", "ha", 15270,
                                   5432,     2,    1,          0,         NULL,    0};
    const struct pooler_spec sb = {"zone-b", "pb", "postgres", "default", "0-inf", "hb", 15271,
                                   5432,     2,    2,          0,         NULL,    0};
    put_pooler(G, &sa, NULL);
    put_pooler("/multigres/zone-b", &sb, NULL);
    pooler_key(G, "zone-a", "pa", pa, sizeof(pa));
    pooler_key("/multigres/zone-b", "zone-b", "pb", pb, sizeof(pb));

    expect_status(call_op("dump", NULL, CALL_DEADLINE, &res), MGO_OK, &res, "dump");
    const json_t *global = json_object_get(res, "global");
    assert_string_equal(json_string_value(json_object_get(global, "root")), G);
    const json_t *grecs = json_object_get(global, "records");

    const json_t *r = record_or_fail(grecs, ka, res);
    assert_string_equal(jstr(r, "kind"), "Cell");
    assert_int_equal(json_integer_value(json_object_get(r, "mod_revision")), mod_revision_of(ka));
    assert_string_equal(jstr(r, "value.name"), "zone-a");
    assert_string_equal(jstr(r, "value.root"), G);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(r, "value"), "server_addresses"), 0)),
                        "dmp-global-topo.default.svc:2379");
    r = record_or_fail(grecs, kb, res);
    assert_string_equal(jstr(r, "value.root"), "/multigres/zone-b");

    r = record_or_fail(grecs, DB_KEY, res);
    assert_string_equal(jstr(r, "kind"), "Database");
    assert_int_equal(json_integer_value(json_object_get(r, "mod_revision")),
                     mod_revision_of(DB_KEY));
    assert_string_equal(jstr(r, "value.name"), "postgres");
    assert_string_equal(jstr(r, "value.backup_location.filesystem.path"), "/backups");
    const json_t *cells = json_object_get(json_object_get(r, "value"), "cells");
    assert_int_equal(json_array_size(cells), 2);
    assert_string_equal(json_string_value(json_array_get(cells, 0)), "zone-a");
    assert_string_equal(json_string_value(json_array_get(cells, 1)), "zone-b");
    assert_string_equal(jstr(r, "value.bootstrap_durability_policy.policy_name"), "AT_LEAST_2");
    assert_string_equal(jstr(r, "value.bootstrap_durability_policy.quorum_type"),
                        "QUORUM_TYPE_AT_LEAST_N");
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(r, "value"), "bootstrap_durability_policy"),
            "required_count")),
        2);

    /* The cells, each with its root and the records under it. */
    const json_t *dcells = json_object_get(res, "cells");
    assert_int_equal(json_array_size(dcells), 2);
    size_t i;
    json_t *c;
    int seen_a = 0, seen_b = 0;
    json_array_foreach (dcells, i, c) {
        const char *name = jstr(c, "cell");
        assert_non_null(name);
        const json_t *recs = json_object_get(c, "records");
        if (strcmp(name, "zone-a") == 0) {
            seen_a = 1;
            assert_string_equal(jstr(c, "root"), G);
            /* zone-a's root is the global root: mgo lists its records once, in the cell's
             * listing or in the global one (plugin/topo/topo.c chooses the global one). */
            const json_t *in_cell = find_record(recs, pa), *in_global = find_record(grecs, pa);
            if (!in_cell == !in_global)
                fail_msg("dump lists %s %s", pa, in_cell ? "twice" : "nowhere");
            r = in_cell ? in_cell : in_global;
            assert_string_equal(jstr(r, "kind"), "Pooler");
            assert_string_equal(jstr(r, "value.id.cell"), "zone-a");
            assert_string_equal(jstr(r, "value.id.name"), "pa");
            assert_string_equal(jstr(r, "value.hostname"), "ha");
            assert_string_equal(jstr(r, "value.shard_key.database"), "postgres");
            assert_string_equal(jstr(r, "value.routing_state.role"), "ROUTING_ROLE_PRIMARY");
            assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(json_object_get(r, "value"), "port_map"), "grpc")),
                             15270);
        } else if (strcmp(name, "zone-b") == 0) {
            seen_b = 1;
            assert_string_equal(jstr(c, "root"), "/multigres/zone-b");
            r = record_or_fail(recs, pb, res);
            assert_string_equal(jstr(r, "kind"), "Pooler");
            assert_string_equal(jstr(r, "value.id.name"), "pb");
            assert_string_equal(jstr(r, "value.routing_state.role"), "ROUTING_ROLE_REPLICA");
            assert_null(find_record(recs, pa)); /* another root */
        }
    }
    assert_true(seen_a && seen_b);
    json_decref(res);
}

/* ---- faults -------------------------------------------------------------------------------- */

static void expect_names_endpoint(const json_t *res, const char *endpoint, const char *what)
{
    const char *msg = error_message(res);
    if (!strstr(msg, host_port(endpoint)))
        fail_msg("%s: the message does not name %s: \"%s\"", what, host_port(endpoint), msg);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "error"), "class")),
                     MGO_CLASS_RETRY);
}

static void test_fault_paused(void **state)
{
    (void)state;
    json_t *res = NULL;
    /* Registered once while etcd works, so a hang is the only obstacle. */
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register");
    json_decref(res);

    assert_int_equal(etcd_harness_pause(&harness), 0);
    int64_t t0 = mono_ms();
    int32_t rc = register_sample_at(harness.endpoint, "minimal.yaml", 2000, &res);
    int64_t took = mono_ms() - t0;
    fprintf(stderr, "register against a paused etcd: %d after %" PRId64 " ms\n", rc, took);
    expect_status(rc, MGO_EAGAIN, &res, "register, etcd paused");
    expect_names_endpoint(res, harness.endpoint, "register, etcd paused");
    json_decref(res);
    if (took > 2000 + MARGIN_MS)
        fail_msg("register took %" PRId64 " ms with deadline_ms 2000", took);

    json_t *fields = json_pack("{s:s, s:s, s:s, s:s}", "cell", "zone-a", "database", "postgres",
                               "table_group", "default", "shard", "0-inf");
    t0 = mono_ms();
    rc = call_op("list_poolers", fields, 1000, &res);
    took = mono_ms() - t0;
    expect_status(rc, MGO_EAGAIN, &res, "list_poolers, etcd paused");
    expect_names_endpoint(res, harness.endpoint, "list_poolers, etcd paused");
    json_decref(res);
    if (took > 1000 + MARGIN_MS)
        fail_msg("list_poolers took %" PRId64 " ms with deadline_ms 1000", took);

    assert_int_equal(etcd_harness_resume(&harness), 0);
    /* Usable again afterwards. */
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register after resume");
    json_decref(res);
}

static void test_fault_stopped(void **state)
{
    (void)state;
    struct etcd_harness other;
    json_t *res = NULL;
    memset(&other, 0, sizeof(other));
    assert_int_equal(etcd_harness_start(&other), 0);
    char endpoint[64];
    (void)snprintf(endpoint, sizeof(endpoint), "%s", other.endpoint);
    expect_status(register_sample_at(endpoint, "minimal.yaml", CALL_DEADLINE, &res), MGO_OK, &res,
                  "register on the second etcd");
    json_decref(res);
    etcd_harness_stop(&other);

    int64_t t0 = mono_ms();
    int32_t rc = register_sample_at(endpoint, "minimal.yaml", 3000, &res);
    int64_t took = mono_ms() - t0;
    expect_status(rc, MGO_EAGAIN, &res, "register, etcd stopped");
    expect_names_endpoint(res, endpoint, "register, etcd stopped");
    json_decref(res);
    if (took > 3000 + MARGIN_MS)
        fail_msg("register took %" PRId64 " ms with deadline_ms 3000", took);

    json_t *req = json_pack("{s:s, s:o, s:i}", "op", "dump", "etcd", etcd_override(endpoint, G),
                            "deadline_ms", 3000);
    rc = call(req, &res);
    json_decref(req);
    expect_status(rc, MGO_EAGAIN, &res, "dump, etcd stopped");
    expect_names_endpoint(res, endpoint, "dump, etcd stopped");
    json_decref(res);
}

static void test_fault_corrupt_value(void **state)
{
    (void)state;
    /* A length-delimited field 1 claiming 127 bytes with 4 left: no decoder accepts it. */
    static const uint8_t garbage[] = {0x0a, 0x7f, 'x', 'y', 'z', 0xff};
    char key[256];
    json_t *res = NULL;
    cell_key("zone-a", key, sizeof(key));
    put_or_fail(key, garbage, sizeof(garbage));
    int64_t rev = mod_revision_of(key);

    int32_t rc = register_sample("minimal.yaml", &res);
    /* docs/abi.md: MGO_EAGAIN when etcd "returned a value that does not decode ... (the
     * message names ... the key)". */
    expect_status(rc, MGO_EAGAIN, &res, "register over a corrupt Cell");
    if (!strstr(error_message(res), key))
        fail_msg("the message does not name %s: \"%s\"", key, error_message(res));
    json_decref(res);
    /* Not overwritten: mgo cannot know what it would lose. */
    struct kv *kv = kvs_alloc();
    get_kv(key, kv);
    assert_int_equal(kv->mod_revision, rev);
    assert_int_equal(kv->len, sizeof(garbage));
    assert_memory_equal(kv->value, garbage, sizeof(garbage));
    free(kv);

    expect_status(call_op("dump", NULL, CALL_DEADLINE, &res), MGO_OK, &res, "dump");
    const json_t *recs = json_object_get(json_object_get(res, "global"), "records");
    const json_t *r = record_or_fail(recs, key, res);
    assert_true(json_is_string(json_object_get(r, "error")));
    assert_true(strlen(json_string_value(json_object_get(r, "error"))) > 0);
    assert_null(json_object_get(r, "value"));
    /* The Database (registered before the cells) decodes. */
    r = record_or_fail(recs, DB_KEY, res);
    assert_null(json_object_get(r, "error"));
    assert_string_equal(jstr(r, "value.name"), "postgres");
    json_decref(res);
}

/* ---- a writer racing the compare-and-swap ------------------------------------------------- */

#define RACE_ROUNDS  20
#define RACE_WRITERS 3

struct racer {
    const char *endpoint;
    int id;
    atomic_int *stop;
    atomic_int writes;
    int failures;
};

/* Every racer's writes so far. */
static int racer_writes(struct racer *r)
{
    int n = 0;
    for (int i = 0; i < RACE_WRITERS; i++)
        n += atomic_load(&r[i].writes);
    return n;
}

/* The racers' values: Database records with cells ["racer-<n>"], never mgo's. */
static void racer_value(int n, struct pbw *w)
{
    char cell[32];
    (void)snprintf(cell, sizeof(cell), "racer-%d", n);
    const char *cells[] = {cell};
    enc_database(w, "postgres", "/backups", cells, 1, "AT_LEAST_2", 3, 2);
}

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct pbw w;
    for (int i = 0; !atomic_load(r->stop) && i < 100000; i++) {
        racer_value(r->id * 100000 + i, &w);
        if (etcd_put(r->endpoint, DB_KEY, w.b, w.len) > 0)
            atomic_fetch_add(&r->writes, 1);
        else
            r->failures++;
    }
    return NULL;
}

static void racers_stop(struct racer *r, pthread_t *t)
{
    atomic_store(r[0].stop, 1);
    for (int i = 0; i < RACE_WRITERS; i++)
        pthread_join(t[i], NULL);
}

static void test_concurrent_writer(void **state)
{
    (void)state;
    json_t *res = NULL;
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register");
    json_decref(res);

    atomic_int stop = 0;
    struct racer r[RACE_WRITERS];
    pthread_t t[RACE_WRITERS];
    for (int i = 0; i < RACE_WRITERS; i++) {
        r[i] = (struct racer){.endpoint = harness.endpoint, .id = i, .stop = &stop};
        atomic_init(&r[i].writes, 0);
        assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]), 0);
    }
    sleep_ms(50);
    int ok = 0, busy = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        /* a racer has overwritten mgo's value since the last round (on a loaded machine the
         * racers can be starved between two rounds; mgo would then rightly find its own value
         * and answer "unchanged") */
        int before = racer_writes(r);
        for (int64_t wait = mono_ms() + 10000; racer_writes(r) == before && mono_ms() < wait;)
            sleep_ms(5);
        if (racer_writes(r) == before) {
            racers_stop(r, t);
            fail_msg("the racers wrote nothing for 10 s");
        }
        int64_t t0 = mono_ms();
        int32_t rc = register_sample("minimal.yaml", &res);
        int64_t took = mono_ms() - t0;
        if (took > CALL_DEADLINE + MARGIN_MS) {
            racers_stop(r, t);
            fail_msg("register with racing writers took %" PRId64 " ms", took);
        }
        const char *o = outcome(res, "databases", DB_KEY);
        if (rc != MGO_OK)
            fprintf(stderr, "racing register %d: %d (%s) %s in %" PRId64 " ms\n", round, rc,
                    mgo_strerror(rc), error_message(res), took);
        if (rc == MGO_OK) {
            /* The racers never write mgo's value, so mgo must have written its own. */
            if (!o || (strcmp(o, "updated") != 0 && strcmp(o, "created") != 0)) {
                racers_stop(r, t);
                fail_msg("register with racing writers: outcome %s", o ? o : "(none)");
            }
            ok++;
        } else if (rc == MGO_EAGAIN) {
            /* A bounded retry error, naming the key it could not write. */
            if (!strstr(error_message(res), DB_KEY)) {
                racers_stop(r, t);
                fail_msg("the retry error does not name %s: \"%s\"", DB_KEY, error_message(res));
            }
            busy++;
        } else {
            racers_stop(r, t);
            expect_status(rc, MGO_OK, &res, "register with racing writers");
        }
        json_decref(res);
    }
    racers_stop(r, t);
    int writes = 0, failures = 0;
    for (int i = 0; i < RACE_WRITERS; i++) {
        writes += atomic_load(&r[i].writes);
        failures += r[i].failures;
    }
    fprintf(stderr, "racers: %d writes, %d failed; mgo: %d updated, %d gave up\n", writes, failures,
            ok, busy);
    assert_true(writes > 0);

    /* Never corrupt: the stored value is a whole Database, mgo's or the racer's. */
    struct kv *kv = kvs_alloc();
    struct pb_msg m;
    get_kv(DB_KEY, kv);
    parse_or_fail(kv->value, kv->len, &m, DB_KEY);
    assert_int_equal(pb_count(&m, 3), 1);
    const struct pb_field *c = pb_get(&m, 3, 0);
    int mine = c->len == 6 && memcmp(c->p, "zone-a", 6) == 0;
    int racer = c->len > 6 && memcmp(c->p, "racer-", 6) == 0;
    if (!mine && !racer)
        fail_msg("%s holds cells[0] \"%.*s\"", DB_KEY, (int)c->len, (const char *)c->p);
    if (mine) {
        const char *cells[] = {"zone-a"};
        expect_database(kv, cells, 1, "AT_LEAST_2", 3);
    } else {
        char name[32];
        struct pbw w;
        (void)snprintf(name, sizeof(name), "%.*s", (int)c->len, (const char *)c->p);
        racer_value(atoi(name + 6), &w);
        expect_bytes(kv, &w);
    }
    free(kv);

    /* Alone again: mgo puts its value back. */
    expect_status(register_sample("minimal.yaml", &res), MGO_OK, &res, "register after the race");
    json_decref(res);
    const char *cells[] = {"zone-a"};
    expect_stored_database(cells, 1, "AT_LEAST_2", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_register_minimal, wipe),
        cmocka_unit_test_setup(test_register_topology, wipe),
        cmocka_unit_test_setup(test_register_no_templates, wipe),
        cmocka_unit_test_setup(test_register_local_topo, wipe),
        cmocka_unit_test_setup(test_register_twice_unchanged, wipe),
        cmocka_unit_test_setup(test_register_spec_change, wipe),
        cmocka_unit_test_setup(test_register_prune, wipe),
        cmocka_unit_test_setup(test_unknown_fields_kept, wipe),
        cmocka_unit_test_setup(test_list_poolers, wipe),
        cmocka_unit_test_setup(test_publish_and_shutdown, wipe),
        cmocka_unit_test_setup(test_shutdown_keeps_foreign_fields, wipe),
        cmocka_unit_test_setup(test_shutdown_keeps_unknown_enum_value, wipe),
        cmocka_unit_test_setup(test_register_over_unknown_enum_value, wipe),
        cmocka_unit_test_setup(test_publish_listed_record, wipe),
        cmocka_unit_test_setup(test_dump, wipe),
        cmocka_unit_test_setup(test_fault_corrupt_value, wipe),
        cmocka_unit_test_setup(test_concurrent_writer, wipe),
        cmocka_unit_test_setup(test_reconcile_registers, wipe),
        cmocka_unit_test_setup_teardown(test_reconcile_topology_unavailable, wipe, wipe),
        cmocka_unit_test_setup_teardown(test_fault_paused, wipe, wipe),
        cmocka_unit_test_setup(test_fault_stopped, wipe),
    };
    /* TOPOLOGY_TESTS / TOPOLOGY_SKIP: cmocka name patterns (e.g. "test_fault_*"). */
    if (getenv("TOPOLOGY_TESTS"))
        cmocka_set_test_filter(getenv("TOPOLOGY_TESTS"));
    if (getenv("TOPOLOGY_SKIP"))
        cmocka_set_skip_filter(getenv("TOPOLOGY_SKIP"));
    return cmocka_run_group_tests_name("topology", tests, group_setup, group_teardown);
}
