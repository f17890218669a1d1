/*
 * The reference operator's sample manifests (../shared/compat/upstream-samples) through
 * mgo_validate and mgo_reconcile. Expected values are the reference facts
 * (../shared/facts/operator-api.md sections 1.5-1.7) and the sample files themselves, written
 * here as literals.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgo/mgo.h"
#include "expect.h"

static char *read_sample(const char *name)
{
    const char *shared = getenv("MGO_SHARED_DIR");
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/compat/upstream-samples/%s", shared ? shared : "", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        n = 0;
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Call a hook on the named sample files (NULL-terminated); the text of the first file may be
 * edited by `patch` (a find/replace pair) before it is sent. */
static int32_t call(int reconcile, const char *const *files, const char *find, const char *repl,
                    json_t **ret_result)
{
    json_t *manifests = json_array();
    for (const char *const *f = files; *f; f++) {
        char *text = read_sample(*f);
        assert_non_null(text);
        if (f == files && find) {
            char *at = strstr(text, find);
            assert_non_null(at);
            size_t n = strlen(text) + strlen(repl) + 1;
            char *patched = malloc(n);
            (void)snprintf(patched, n, "%.*s%s%s", (int)(at - text), text, repl, at + strlen(find));
            free(text);
            text = patched;
        }
        json_array_append_new(manifests, json_pack("{s:s, s:s}", "source", *f, "text", text));
        free(text);
    }
    json_t *req = json_pack("{s:o}", "manifests", manifests);
    char *req_text = json_dumps(req, JSON_COMPACT);
    mgo_plugin *p = NULL;
    assert_int_equal(mgo_open(NULL, &p), MGO_OK);
    char *out = NULL;
    size_t out_len = 0;
    int32_t rc =
        (reconcile ? mgo_reconcile : mgo_validate)(p, req_text, strlen(req_text), &out, &out_len);
    *ret_result = json_loadb(out, out_len, 0, NULL);
    assert_non_null(*ret_result);
    if (rc != MGO_OK) {
        char *dump = json_dumps(*ret_result, JSON_INDENT(2));
        print_message("result (rc %d):\n%s\n", rc, dump);
        free(dump);
    }
    mgo_free(out);
    mgo_close(p);
    free(req_text);
    json_decref(req);
    return rc;
}

/* Every error of a result as "path: reason". */
static json_t *errors_of(const json_t *result)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *o, *e;
    json_array_foreach (json_object_get(result, "objects"), i, o)
        json_array_foreach (json_object_get(o, "errors"), j, e) {
            char line[1024];
            (void)snprintf(line, sizeof(line), "%s: %s",
                           json_string_value(json_object_get(e, "path")),
                           json_string_value(json_object_get(e, "reason")));
            json_array_append_new(out, json_string(line));
        }
    return out;
}

static void expect_errors(const json_t *result, const char *const *want)
{
    json_t *got = errors_of(result);
    size_t n = 0;
    for (const char *const *w = want; *w; w++, n++) {
        int found = 0;
        size_t i;
        json_t *g;
        json_array_foreach (got, i, g)
            found |= strcmp(json_string_value(g), *w) == 0;
        if (!found)
            print_error("missing error: %s\n", *w);
        assert_true(found);
    }
    assert_int_equal(json_array_size(got), n);
    json_decref(got);
}

/* ---- every sample, with the files it is deployed with --------------------------------- */

static void test_every_sample_validates(void **state)
{
    (void)state;
    static const char *const alone[] = {
        "minimal.yaml",
        "no-templates.yaml",
        "topology.yaml",
        "e2e-fixtures__base.yaml",
        "e2e-fixtures__log-levels.yaml",
        "postgres-password-secret.yaml",
        "templates__core.yaml",
        "templates__cell.yaml",
        "templates__shard.yaml",
        "default-templates__core.yaml",
        "default-templates__cell.yaml",
        "default-templates__shard.yaml",
        "e2e-fixtures__templates__core.yaml",
        "e2e-fixtures__templates__cell.yaml",
        "e2e-fixtures__templates__shard.yaml",
        NULL,
    };
    for (const char *const *s = alone; *s; s++) {
        const char *files[] = {*s, NULL};
        json_t *r = NULL;
        print_message("validate %s\n", *s);
        assert_int_equal(call(0, files, NULL, NULL, &r), MGO_OK);
        assert_true(json_is_true(json_object_get(r, "valid")));
        json_decref(r);
    }
    const char *templated[] = {"templated-cluster.yaml", "templates__core.yaml",
                               "templates__cell.yaml", "templates__shard.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(0, templated, NULL, NULL, &r), MGO_OK);
    json_decref(r);
}

/* The secret document in the samples is skipped, not rejected. */
static void test_foreign_kinds_are_skipped(void **state)
{
    (void)state;
    const char *files[] = {"postgres-password-secret.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(0, files, NULL, NULL, &r), MGO_OK);
    expect_str(r, "objects[0].kind", "Secret");
    assert_true(json_is_true(at(r, "objects[0].skipped")));
    json_decref(r);
}

/* compat/README.md: this fixture uses fields the reference CRD does not define. */
static void test_stale_templated_fixture_is_rejected(void **state)
{
    (void)state;
    const char *files[] = {"e2e-fixtures__templated.yaml", "e2e-fixtures__templates__core.yaml",
                           "e2e-fixtures__templates__cell.yaml",
                           "e2e-fixtures__templates__shard.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(0, files, NULL, NULL, &r), MGO_EINVAL);
    static const char *const want[] = {
        "spec.coreTemplateRef: unknown field",
        "spec.cells[0].cellTemplateRef: unknown field",
        "spec.databases[0].tablegroups[0].shards[0].shardTemplateRef: unknown field",
        NULL,
    };
    expect_errors(r, want);
    json_decref(r);
}

/*
 * Two samples omit a cell's zoneId/region, which the reference CRD's rule on
 * spec.cells[] ("has(self.zoneId) || has(self.region)") rejects: the API server refuses them,
 * and so does mgo, at the same path with the same message.
 */
static void test_samples_without_zone_are_rejected_like_the_reference(void **state)
{
    (void)state;
    const char *ext[] = {"external-etcd.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(0, ext, NULL, NULL, &r), MGO_EINVAL);
    static const char *const want_ext[] = {
        "spec.cells[1]: at least one of 'zoneId' or 'region' must be specified", NULL};
    expect_errors(r, want_ext);
    json_decref(r);

    const char *over[] = {"overrides.yaml", "templates__core.yaml", "templates__cell.yaml",
                          "templates__shard.yaml", NULL};
    assert_int_equal(call(0, over, NULL, NULL, &r), MGO_EINVAL);
    static const char *const want_over[] = {
        "spec.cells[0]: at least one of 'zoneId' or 'region' must be specified", NULL};
    expect_errors(r, want_over);
    json_decref(r);
}

/* ---- resolved meaning ------------------------------------------------------------------- */

/* facts 1.7: what a minimal single-cell cluster means once defaulted. */
static void test_minimal_defaults(void **state)
{
    (void)state;
    const char *files[] = {"minimal.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, NULL, NULL, &r), MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "metadata.name", "minimal");
    expect_str(c, "spec.images.imagePullPolicy", "IfNotPresent");
    expect_str(c, "spec.logLevels.pgctld", "info");
    expect_str(c, "spec.logLevels.multigateway", "info");
    expect_json(c, "spec.topologyPruning.enabled", "true");
    expect_str(c, "spec.durabilityPolicy", "AT_LEAST_2");
    expect_str(c, "spec.pvcDeletionPolicy.whenDeleted", "Delete");
    expect_str(c, "spec.pvcDeletionPolicy.whenScaled", "Delete");
    expect_str(c, "spec.postgresSuperuser", "postgres");
    expect_str(c, "spec.backup.type", "filesystem");
    expect_str(c, "spec.backup.filesystem.path", "/backups");
    expect_str(c, "spec.backup.filesystem.storage.size", "10Gi");
    /* managed etcd: 3 replicas, 1Gi, /multigres/global, 100m/256Mi requests, 512Mi limit */
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 3);
    expect_str(c, "spec.globalTopoServer.etcd.storage.size", "1Gi");
    expect_str(c, "spec.globalTopoServer.etcd.rootPath", "/multigres/global");
    expect_json(c, "spec.globalTopoServer.etcd.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"256Mi\"},"
                " \"limits\": {\"memory\": \"512Mi\"}}");
    expect_int(c, "spec.multiadmin.spec.replicas", 1);
    expect_json(c, "spec.multiadmin.spec.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"memory\": \"256Mi\"}}");
    expect_int(c, "spec.multiadminWeb.spec.replicas", 1);
    expect_json(c, "spec.multiadminWeb.spec.resources",
                "{\"requests\": {\"cpu\": \"50m\", \"memory\": \"64Mi\"},"
                " \"limits\": {\"memory\": \"128Mi\"}}");
    expect_int(c, "spec.cells[0].spec.multigateway.replicas", 1);
    expect_json(c, "spec.cells[0].spec.multigateway.buffer.enabled", "true");
    expect_json(c, "spec.cells[0].spec.multigateway.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"memory\": \"256Mi\"}}");
    /* database postgres -> tablegroup default -> shard 0-inf -> pool default */
    expect_str(c, "spec.databases[0].name", "postgres");
    expect_json(c, "spec.databases[0].default", "true");
    expect_str(c, "spec.databases[0].tablegroups[0].name", "default");
    expect_json(c, "spec.databases[0].tablegroups[0].default", "true");
    const char *shard = "spec.databases[0].tablegroups[0].shards[0]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.name", shard);
    expect_str(c, p, "0-inf");
    (void)snprintf(p, sizeof(p), "%s.spec.multiorch.replicas", shard);
    expect_int(c, p, 1);
    (void)snprintf(p, sizeof(p), "%s.spec.multiorch.resources", shard);
    expect_json(c, p,
                "{\"requests\": {\"cpu\": \"50m\", \"memory\": \"64Mi\"},"
                " \"limits\": {\"memory\": \"128Mi\"}}");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].type", shard);
    expect_str(c, p, "readWrite");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].replicasPerCell", shard);
    expect_int(c, p, 2); /* exactly one cell: two replicas */
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].cells", shard);
    expect_json(c, p, "[\"zone-a\"]");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].storage.size", shard);
    expect_str(c, p, "1Gi");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].postgres.resources", shard);
    expect_json(c, p,
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"256Mi\"},"
                " \"limits\": {\"memory\": \"512Mi\"}}");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].multipooler.resources", shard);
    expect_json(c, p,
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"memory\": \"256Mi\"}}");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[default].pvcDeletionPolicy", shard);
    expect_json(c, p, "{\"whenDeleted\": \"Delete\", \"whenScaled\": \"Delete\"}");
    json_decref(r);
}

/* Two cells and no pool: the default pool spans both with one replica each. */
static void test_default_pool_on_two_cells(void **state)
{
    (void)state;
    const char *files[] = {"minimal.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, "      zoneId: us-central1-a",
                          "      zoneId: us-central1-a\n    - name: zone-b\n"
                          "      zoneId: us-central1-b",
                          &r),
                     MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    const char *pool = "spec.databases[0].tablegroups[0].shards[0].spec.pools[default]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.replicasPerCell", pool);
    expect_int(c, p, 1);
    (void)snprintf(p, sizeof(p), "%s.cells", pool);
    expect_json(c, p, "[\"zone-a\", \"zone-b\"]");
    expect_json(c, "spec.databases[0].tablegroups[0].shards[0].spec.multiorch.cells",
                "[\"zone-a\", \"zone-b\"]");
    json_decref(r);
}

/* Level 3 of the chain: templates named "default" in the namespace apply implicitly. */
static void test_namespace_default_templates(void **state)
{
    (void)state;
    const char *files[] = {"minimal.yaml", "default-templates__core.yaml",
                           "default-templates__cell.yaml", "default-templates__shard.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, NULL, NULL, &r), MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 1);
    expect_str(c, "spec.globalTopoServer.etcd.storage.size", "500Mi");
    expect_str(c, "spec.globalTopoServer.etcd.rootPath", "/multigres/global");
    expect_int(c, "spec.multiadmin.spec.replicas", 2);
    expect_str(c, "spec.multiadmin.spec.resources.requests.cpu", "150m");
    expect_int(c, "spec.cells[0].spec.multigateway.replicas", 2);
    expect_str(c, "spec.cells[0].spec.multigateway.resources.requests.cpu", "200m");
    const char *pool = "spec.databases[0].tablegroups[0].shards[0].spec.pools[default]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.replicasPerCell", pool);
    expect_int(c, p, 4);
    (void)snprintf(p, sizeof(p), "%s.storage", pool);
    expect_json(c, p, "{\"size\": \"2Gi\", \"class\": \"standard\"}");
    (void)snprintf(p, sizeof(p), "%s.cells", pool);
    expect_json(c, p, "[\"zone-a\"]");
    expect_str(c,
               "spec.databases[0].tablegroups[0].shards[0].spec.multiorch.resources.requests.cpu",
               "20m");
    expect_json(r, "templates",
                "[{\"kind\": \"CoreTemplate\", \"name\": \"default\"},"
                " {\"kind\": \"CellTemplate\", \"name\": \"default\"},"
                " {\"kind\": \"ShardTemplate\", \"name\": \"default\"}]");
    json_decref(r);
}

/* Level 2: spec.templateDefaults names the templates; overrides refine them per pool. */
static void test_templated_cluster(void **state)
{
    (void)state;
    const char *files[] = {"templated-cluster.yaml", "templates__core.yaml", "templates__cell.yaml",
                           "templates__shard.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, NULL, NULL, &r), MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    char *core = read_sample("templates__core.yaml");
    char *shard = read_sample("templates__shard.yaml");
    /* Literal values from the template samples. */
    assert_non_null(strstr(core, "replicas: 3"));
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 3);
    expect_int(c, "spec.cells[1].spec.multigateway.replicas", 2);
    const char *pool = "spec.databases[0].tablegroups[0].shards[0].spec.pools[main-app]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.cells", pool);
    expect_json(c, p, "[\"az1\", \"az2\"]");
    (void)snprintf(p, sizeof(p), "%s.type", pool);
    expect_str(c, p, "readWrite");
    expect_json(r, "templates",
                "[{\"kind\": \"CoreTemplate\", \"name\": \"standard-core\"},"
                " {\"kind\": \"CellTemplate\", \"name\": \"standard-cell\"},"
                " {\"kind\": \"ShardTemplate\", \"name\": \"standard-shard\"}]");
    free(core);
    free(shard);
    json_decref(r);
}

/* overrides.yaml (with the zone its cell lacks): each override beats its template field by
 * field; resources replace as a block; a new pool is created from the overrides alone. */
static void test_overrides_sample_with_zone(void **state)
{
    (void)state;
    const char *files[] = {"overrides.yaml", "templates__core.yaml", "templates__cell.yaml",
                           "templates__shard.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, "    - name: \"zone-a\"\n",
                          "    - name: \"zone-a\"\n      zoneId: use1-az1\n", &r),
                     MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 5);          /* override */
    expect_str(c, "spec.globalTopoServer.etcd.storage.size", "10Gi"); /* template */
    expect_str(c, "spec.globalTopoServer.etcd.storage.class", "standard");
    expect_str(c, "spec.globalTopoServer.etcd.resources.limits.cpu", "200m");
    expect_int(c, "spec.multiadmin.spec.replicas", 3);
    expect_str(c, "spec.multiadmin.spec.resources.limits.cpu", "200m");
    expect_int(c, "spec.cells[0].spec.multigateway.replicas", 3);
    expect_str(c, "spec.cells[0].spec.multigateway.resources.requests.memory", "128Mi");
    expect_str(c,
               "spec.cells[0].spec.multigateway.affinity.podAntiAffinity."
               "preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey",
               "kubernetes.io/hostname");
    expect_absent(c, "spec.cells[0].overrides");
    const char *shard = "spec.databases[0].tablegroups[0].shards[0]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.spec.pools[main-app].storage", shard);
    expect_json(c, p, "{\"class\": \"standard\", \"size\": \"200Gi\"}");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[main-app].replicasPerCell", shard);
    expect_int(c, p, 4);
    (void)snprintf(p, sizeof(p), "%s.spec.pools[main-app].postgres.resources.limits.cpu", shard);
    expect_str(c, p, "500m");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[analytics].replicasPerCell", shard);
    expect_int(c, p, 4);
    (void)snprintf(p, sizeof(p), "%s.spec.pools[analytics].storage", shard);
    expect_json(c, p, "{\"size\": \"50Gi\"}");
    (void)snprintf(p, sizeof(p), "%s.spec.pools[analytics].cells", shard);
    expect_json(c, p, "[\"zone-a\"]");
    (void)snprintf(p, sizeof(p), "%s.spec.multiorch.resources.limits.cpu", shard);
    expect_str(c, p, "200m");
    expect_absent(c, "spec.databases[0].tablegroups[0].shards[0].overrides");
    json_decref(r);
}

/* external-etcd.yaml (with the zone its second cell lacks): an external topology replaces the
 * managed etcd; a cell's inline localTopoServer is kept. */
static void test_external_etcd_sample_with_zone(void **state)
{
    (void)state;
    const char *files[] = {"external-etcd.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, "    - name: \"zone-b-isolated\"\n",
                          "    - name: \"zone-b-isolated\"\n      zoneId: us-central1-b\n", &r),
                     MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, "spec.globalTopoServer.external.endpoints",
                "[\"http://external-etcd-service.default.svc:2379\"]");
    expect_str(c, "spec.globalTopoServer.external.rootPath", "/multigres/global");
    expect_absent(c, "spec.globalTopoServer.etcd");
    expect_int(c, "spec.cells[1].spec.localTopoServer.etcd.replicas", 3);
    expect_int(c, "spec.cells[1].spec.multigateway.replicas", 2);
    expect_int(c, "spec.cells[0].spec.multigateway.replicas", 1);
    json_decref(r);
}

/* Inline specs win, and the pool's replica count is kept as written. */
static void test_no_templates_sample(void **state)
{
    (void)state;
    const char *files[] = {"no-templates.yaml", NULL};
    json_t *r = NULL;
    assert_int_equal(call(1, files, NULL, NULL, &r), MGO_OK);
    const json_t *c = json_object_get(r, "resolved");
    expect_int(c, "spec.multiadmin.spec.replicas", 2);
    expect_str(c, "spec.cells[0].spec.multigateway.buffer.window", "20s");
    const char *pool = "spec.databases[0].tablegroups[0].shards[0].spec.pools[main]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.replicasPerCell", pool);
    expect_int(c, p, 5);
    (void)snprintf(p, sizeof(p), "%s.storage.size", pool);
    expect_str(c, p, "100Gi");
    expect_json(c, "spec.databases[0].tablegroups[0].shards[0].spec.multiorch.cells", "[\"z1\"]");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sample_validates),
        cmocka_unit_test(test_foreign_kinds_are_skipped),
        cmocka_unit_test(test_stale_templated_fixture_is_rejected),
        cmocka_unit_test(test_samples_without_zone_are_rejected_like_the_reference),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_default_pool_on_two_cells),
        cmocka_unit_test(test_namespace_default_templates),
        cmocka_unit_test(test_templated_cluster),
        cmocka_unit_test(test_overrides_sample_with_zone),
        cmocka_unit_test(test_external_etcd_sample_with_zone),
        cmocka_unit_test(test_no_templates_sample),
    };
    return cmocka_run_group_tests_name("upstream_samples", tests, NULL, NULL);
}
