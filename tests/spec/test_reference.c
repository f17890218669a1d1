/*
 * The reference operator's resolution, behaviour by behaviour.
 *
 * Every expected value below is what the reference operator (multigres/multigres-operator at
 * 39a7efcd) computes for the same input, read from its source and written here as a literal:
 *   pkg/resolver/shard.go        ResolveShard, mergeShardConfig, mergeMultiorchSpec,
 *                                mergePoolSpec, defaultPoolSpec, defaultBackupConfig
 *   pkg/resolver/cell.go         ResolveCell, mergeCellConfig
 *   pkg/resolver/cluster.go      PopulateClusterDefaults, ResolveGlobalTopo, ResolveMultiadmin
 *   pkg/resolver/resolver.go     defaultEtcdSpec, defaultExternalTopoSpec, defaultStatelessSpec
 *   pkg/resolver/defaults.go     the level-4 constants and resource defaults
 *   pkg/resolver/validation.go   ValidateClusterLogic (warnings)
 *   api/v1alpha1/common_types.go MergeBackupConfig, MergePVCDeletionPolicy, MergeDurabilityPolicy
 *   api/v1alpha1/image_defaults.go DefaultEtcdImage
 *   pkg/cluster-handler/controller/multigrescluster/reconcile_databases.go,
 *   .../multigrescluster/builders_tablegroup.go, .../tablegroup/builders.go and
 *   pkg/resource-handler/controller/shard/: how the per-level values are chained (backup, PVC
 *   deletion policy, durability policy)
 *   config/crd/bases/multigres.com_multigresclusters.yaml: the field defaults the API server
 *   applies (a written pvcDeletionPolicy block: whenDeleted Retain, whenScaled Delete)
 *
 * Line numbers (Lnn) are those of the files at that commit.
 *
 * The model under test is the "resolved" cluster of mgo_reconcile (docs/abi.md): every component
 * written inline with its effective values. Nothing here is computed by mgo's own helpers.
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

/* ---- helpers (copied from test_samples.c, fed with inline YAML) --------------------------- */

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

/* Send `manifests` (a string or an array of {source, text}; stolen) to a hook. */
static int32_t call_manifests(int reconcile, json_t *manifests, json_t **ret_result)
{
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

/* mgo_reconcile on one YAML stream; the whole result in *ret. Requires MGO_OK and a model. */
static void resolve_yaml(const char *yaml, json_t **ret)
{
    int32_t rc = call_manifests(1, json_string(yaml), ret);
    assert_int_equal(rc, MGO_OK);
    assert_non_null(json_object_get(*ret, "resolved"));
}

/* mgo_reconcile on sample files (NULL-terminated list). */
static void resolve_samples(const char *const *files, json_t **ret)
{
    json_t *manifests = json_array();
    for (const char *const *f = files; *f; f++) {
        char *text = read_sample(*f);
        assert_non_null(text);
        json_array_append_new(manifests, json_pack("{s:s, s:s}", "source", *f, "text", text));
        free(text);
    }
    int32_t rc = call_manifests(1, manifests, ret);
    assert_int_equal(rc, MGO_OK);
    assert_non_null(json_object_get(*ret, "resolved"));
}

/* A Go bool with omitempty: false is written as nothing; both mean false. */
static void expect_false_or_absent(const json_t *doc, const char *path)
{
    const json_t *v = at(doc, path);
    if (v && !json_is_false(v)) {
        char *got = json_dumps(v, JSON_ENCODE_ANY);
        print_error("%s: want false or absent, got %s\n", path, got ? got : "?");
        free(got);
        fail();
    }
}

/* A warning in some objects[].warnings whose path starts with one of `prefixes` (NULL-terminated)
 * and whose reason is exactly `reason`. The reference's admission warnings are plain strings
 * without a path, so only the reason is the reference's; the path is mgo's (errors.md: where the
 * user looks for it), accepted anywhere under the listed prefixes. */
static void expect_warning_at(const json_t *result, const char *const *prefixes, const char *reason)
{
    size_t i, j;
    json_t *o, *w;
    json_array_foreach (json_object_get(result, "objects"), i, o)
        json_array_foreach (json_object_get(o, "warnings"), j, w) {
            const char *p = json_string_value(json_object_get(w, "path"));
            const char *r = json_string_value(json_object_get(w, "reason"));
            for (const char *const *x = prefixes; p && *x; x++)
                if (strncmp(p, *x, strlen(*x)) == 0 && r && strcmp(r, reason) == 0)
                    return;
        }
    print_error("no warning under %s... with reason: %s\nwarnings given:\n", prefixes[0], reason);
    json_array_foreach (json_object_get(result, "objects"), i, o)
        json_array_foreach (json_object_get(o, "warnings"), j, w) {
            print_error("  %s: %s\n", json_string_value(json_object_get(w, "path")),
                        json_string_value(json_object_get(w, "reason")));
        }
    fail();
}

/* ---- inline manifests ---------------------------------------------------------------------- */

#define CLUSTER_HEAD                                                                               \
    "apiVersion: multigres.com/v1alpha1\n"                                                         \
    "kind: MultigresCluster\n"                                                                     \
    "metadata:\n"                                                                                  \
    "  name: ref\n"                                                                                \
    "  namespace: default\n"                                                                       \
    "spec:\n"                                                                                      \
    "  postgresPasswordSecretRef:\n"                                                               \
    "    name: multigres-admin-password\n"                                                         \
    "    key: password\n"

/* Two cells declared in non-sorted order. */
#define CELLS_ZB_ZA                                                                                \
    "  cells:\n"                                                                                   \
    "    - name: zb\n"                                                                             \
    "      zoneId: use1-az2\n"                                                                     \
    "    - name: za\n"                                                                             \
    "      zoneId: use1-az1\n"

#define CELL_ZA                                                                                    \
    "  cells:\n"                                                                                   \
    "    - name: za\n"                                                                             \
    "      zoneId: use1-az1\n"

#define SHARD0 "spec.databases[0].tablegroups[0].shards[0]"
#define TG0    "spec.databases[0].tablegroups[0]"

#define ETCD_IMAGE "gcr.io/etcd-development/etcd:v3.6.7"
#define ETCD_RESOURCES                                                                             \
    "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"256Mi\"}, \"limits\": {\"memory\": "         \
    "\"512Mi\"}}"

/* A ShardTemplate whose lists and scalars the tests below try to blank out. */
#define STD_SHARD_TEMPLATE                                                                         \
    "apiVersion: multigres.com/v1alpha1\n"                                                         \
    "kind: ShardTemplate\n"                                                                        \
    "metadata:\n"                                                                                  \
    "  name: std-shard\n"                                                                          \
    "  namespace: default\n"                                                                       \
    "spec:\n"                                                                                      \
    "  multiorch:\n"                                                                               \
    "    cells: [zb]\n"                                                                            \
    "  initdbArgs: \"--data-checksums\"\n"                                                         \
    "  pools:\n"                                                                                   \
    "    main:\n"                                                                                  \
    "      type: readWrite\n"                                                                      \
    "      cells: [zb]\n"                                                                          \
    "      replicasPerCell: 3\n"                                                                   \
    "      storage:\n"                                                                             \
    "        size: 20Gi\n"                                                                         \
    "        class: fast\n"                                                                        \
    "        accessModes: [ReadWriteOnce]\n"                                                       \
    "      tolerations:\n"                                                                         \
    "        - key: dedicated\n"                                                                   \
    "          operator: Equal\n"                                                                  \
    "          value: db\n"                                                                        \
    "          effect: NoSchedule\n"                                                               \
    "---\n"

static void expect_std_shard_template_values(const json_t *c)
{
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"zb\"]");
    expect_str(c, SHARD0 ".spec.initdbArgs", "--data-checksums");
    expect_json(c, SHARD0 ".spec.pools[main].tolerations",
                "[{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"db\","
                " \"effect\": \"NoSchedule\"}]");
    expect_json(c, SHARD0 ".spec.pools[main].storage.accessModes", "[\"ReadWriteOnce\"]");
    expect_str(c, SHARD0 ".spec.pools[main].storage.class", "fast");
    expect_str(c, SHARD0 ".spec.pools[main].storage.size", "20Gi");
    expect_json(c, SHARD0 ".spec.pools[main].cells", "[\"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[main].replicasPerCell", 3);
}

/*
 * shard.go mergeShardConfig (overrides branch, L193-212) with mergeMultiorchSpec (L268-277:
 * `if len(override.Cells) > 0`, L274) and mergePoolSpec (L279-334: `len(override.Tolerations) > 0`
 * L324, `len(override.Storage.AccessModes) > 0` L299), and `if overrides.InitdbArgs != ""` (L204):
 * an empty list or an empty string in `overrides` leaves the template's value in place.
 * (storage.class: "" cannot be tested here: the CRD gives class minLength 1, so the API server
 * rejects it; see tests/spec/invalid/119-storage-class-empty.yaml.)
 */
static void test_override_empty_values_keep_template(void **state)
{
    (void)state;
    const char *yaml =
        STD_SHARD_TEMPLATE CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                    "    - name: postgres\n"
                                                    "      default: true\n"
                                                    "      tablegroups:\n"
                                                    "        - name: default\n"
                                                    "          default: true\n"
                                                    "          shards:\n"
                                                    "            - name: \"0-inf\"\n"
                                                    "              shardTemplate: std-shard\n"
                                                    "              overrides:\n"
                                                    "                initdbArgs: \"\"\n"
                                                    "                multiorch:\n"
                                                    "                  cells: []\n"
                                                    "                pools:\n"
                                                    "                  main:\n"
                                                    "                    tolerations: []\n"
                                                    "                    storage:\n"
                                                    "                      accessModes: []\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    expect_std_shard_template_values(json_object_get(r, "resolved"));
    json_decref(r);
}

/*
 * The same through an inline `spec` laid over the level-2 template (templateDefaults):
 * reconcile_databases.go L60-63 applies templateDefaults.shardTemplate to the shard, then
 * mergeShardConfig's inline branch (shard.go L215-239: mergeMultiorchSpec, mergePoolSpec,
 * `if inline.InitdbArgs != ""`) keeps the template's list and scalar values.
 */
static void test_inline_empty_values_keep_template(void **state)
{
    (void)state;
    const char *yaml =
        STD_SHARD_TEMPLATE CLUSTER_HEAD CELLS_ZB_ZA "  templateDefaults:\n"
                                                    "    shardTemplate: std-shard\n"
                                                    "  databases:\n"
                                                    "    - name: postgres\n"
                                                    "      default: true\n"
                                                    "      tablegroups:\n"
                                                    "        - name: default\n"
                                                    "          default: true\n"
                                                    "          shards:\n"
                                                    "            - name: \"0-inf\"\n"
                                                    "              spec:\n"
                                                    "                initdbArgs: \"\"\n"
                                                    "                multiorch:\n"
                                                    "                  cells: []\n"
                                                    "                pools:\n"
                                                    "                  main:\n"
                                                    "                    tolerations: []\n"
                                                    "                    storage:\n"
                                                    "                      accessModes: []\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    expect_std_shard_template_values(json_object_get(r, "resolved"));
    json_decref(r);
}

/* common_types.go MergeDurabilityPolicy (L498-503: `if child != ""`), applied in
 * builders_tablegroup.go L75-78: a database durabilityPolicy "" inherits the cluster's. */
static void test_database_empty_durability_inherits_cluster(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  durabilityPolicy: MULTI_CELL_AT_LEAST_2\n"
                                                "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      durabilityPolicy: \"\"\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.durabilityPolicy", "MULTI_CELL_AT_LEAST_2");
    expect_str(c, "spec.databases[0].durabilityPolicy", "MULTI_CELL_AT_LEAST_2");
    json_decref(r);
}

/* MergeDurabilityPolicy: a set database value beats the cluster's; the cluster's own unset
 * value is defaulted to AT_LEAST_2 (cluster.go PopulateClusterDefaults L34-36). */
static void test_database_durability_beats_cluster(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      durabilityPolicy: MULTI_CELL_AT_LEAST_2\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.durabilityPolicy", "AT_LEAST_2");
    expect_str(c, "spec.databases[0].durabilityPolicy", "MULTI_CELL_AT_LEAST_2");
    json_decref(r);
}

/*
 * shard.go ResolveShard L68-77: with no multiorch cells at any layer, multiorch runs in ALL
 * cluster cells (opts.AllCellNames), sorted -- not the union of the pool cells, even when the
 * only pool uses fewer cells. The pool keeps its own single cell and, having exactly one,
 * gets replicasPerCell 2 (L102-113).
 */
static void test_multiorch_cells_default_to_all_cells_sorted(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n"
                                                "          shards:\n"
                                                "            - name: \"0-inf\"\n"
                                                "              spec:\n"
                                                "                pools:\n"
                                                "                  main:\n"
                                                "                    type: readWrite\n"
                                                "                    cells: [zb]\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"za\", \"zb\"]");
    expect_json(c, SHARD0 ".spec.pools[main].cells", "[\"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[main].replicasPerCell", 2);
    expect_absent(c, SHARD0 ".spec.pools[default]");
    json_decref(r);
}

/*
 * shard.go ResolveShard L79-84: when no layer defines a pool, the implicit pool `default` takes
 * the multiorch cells (here the inline multiorch.cells [zb], one of two cluster cells), and with
 * exactly one cell replicasPerCell 2 (L102-113).
 */
static void test_default_pool_takes_inline_multiorch_cells(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n"
                                                "          shards:\n"
                                                "            - name: \"0-inf\"\n"
                                                "              spec:\n"
                                                "                multiorch:\n"
                                                "                  cells: [zb]\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"zb\"]");
    expect_str(c, SHARD0 ".spec.pools[default].type", "readWrite");
    expect_json(c, SHARD0 ".spec.pools[default].cells", "[\"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[default].replicasPerCell", 2);
    expect_str(c, SHARD0 ".spec.pools[default].storage.size", "1Gi");
    json_decref(r);
}

/*
 * The same when the multiorch cells come from a ShardTemplate named by templateDefaults: no pool
 * is injected by PopulateClusterDefaults (cluster.go L94-99: an explicit template means no
 * defaults), the template has no pools, so ResolveShard L79-84 creates `default` with the
 * template's multiorch cells [zb] and replicasPerCell 2.
 */
static void test_default_pool_takes_template_multiorch_cells(void **state)
{
    (void)state;
    const char *yaml = "apiVersion: multigres.com/v1alpha1\n"
                       "kind: ShardTemplate\n"
                       "metadata:\n"
                       "  name: orch-zb\n"
                       "  namespace: default\n"
                       "spec:\n"
                       "  multiorch:\n"
                       "    cells: [zb]\n"
                       "---\n" CLUSTER_HEAD CELLS_ZB_ZA "  templateDefaults:\n"
                       "    shardTemplate: orch-zb\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"zb\"]");
    expect_json(c, SHARD0 ".spec.pools[default].cells", "[\"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[default].replicasPerCell", 2);
    json_decref(r);
}

/*
 * shard.go ResolveShard L89-97: a declared pool without cells gets every cluster cell, sorted
 * ([za, zb] although spec.cells lists zb first); a written replicasPerCell is kept, an unset
 * one on a two-cell pool becomes 1 (defaultPoolSpec, L336-339; DefaultPoolReplicasPerCell).
 */
static void test_declared_pool_without_cells_gets_all_cells_sorted(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n"
                                                "          shards:\n"
                                                "            - name: \"0-inf\"\n"
                                                "              spec:\n"
                                                "                pools:\n"
                                                "                  main:\n"
                                                "                    replicasPerCell: 3\n"
                                                "                  side:\n"
                                                "                    type: readWrite\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.pools[main].cells", "[\"za\", \"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[main].replicasPerCell", 3);
    expect_json(c, SHARD0 ".spec.pools[side].cells", "[\"za\", \"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[side].replicasPerCell", 1);
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"za\", \"zb\"]");
    expect_absent(c, SHARD0 ".spec.pools[default]");
    json_decref(r);
}

/* shard.go L102-113: a declared pool without cells in a one-cell cluster gets 2 replicas. */
static void test_declared_pool_in_one_cell_cluster_gets_two_replicas(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  databases:\n"
                                            "    - name: postgres\n"
                                            "      default: true\n"
                                            "      tablegroups:\n"
                                            "        - name: default\n"
                                            "          default: true\n"
                                            "          shards:\n"
                                            "            - name: \"0-inf\"\n"
                                            "              spec:\n"
                                            "                pools:\n"
                                            "                  main:\n"
                                            "                    type: readWrite\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.pools[main].cells", "[\"za\"]");
    expect_int(c, SHARD0 ".spec.pools[main].replicasPerCell", 2);
    json_decref(r);
}

/* cluster.go PopulateClusterDefaults L127-158 injects pool `default` (no cells) when no
 * ShardTemplate is involved; ResolveShard gives it and multiorch all cells sorted, 1 each. */
static void test_injected_default_pool_on_unsorted_cells(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA;
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"za\", \"zb\"]");
    expect_json(c, SHARD0 ".spec.pools[default].cells", "[\"za\", \"zb\"]");
    expect_int(c, SHARD0 ".spec.pools[default].replicasPerCell", 1);
    expect_str(c, SHARD0 ".spec.pools[default].type", "readWrite");
    json_decref(r);
}

/* ---- backup ------------------------------------------------------------------------------ */

#define ONE_SHARD_TG_HEAD                                                                          \
    "  databases:\n"                                                                               \
    "    - name: postgres\n"                                                                       \
    "      default: true\n"

/*
 * shard.go ResolveShard L61-66 + defaultBackupConfig (L351-368): a level that sets
 * `type: filesystem` without path or size gets /backups and 10Gi at the shard; fields it did
 * set (class, accessModes) stay.
 */
static void test_backup_filesystem_defaults_filled_at_shard(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  backup:\n"
                                            "    type: filesystem\n"
                                            "    filesystem:\n"
                                            "      storage:\n"
                                            "        class: nfs-rwx\n"
                                            "        accessModes: [ReadWriteMany]\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, SHARD0 ".backup.type", "filesystem");
    expect_str(c, SHARD0 ".backup.filesystem.path", "/backups");
    expect_str(c, SHARD0 ".backup.filesystem.storage.size", "10Gi");
    expect_str(c, SHARD0 ".backup.filesystem.storage.class", "nfs-rwx");
    expect_json(c, SHARD0 ".backup.filesystem.storage.accessModes", "[\"ReadWriteMany\"]");
    expect_absent(c, SHARD0 ".backup.s3");
    json_decref(r);
}

/*
 * common_types.go MergeBackupConfig L521-524: a child whose type differs from the parent's
 * replaces it wholesale. Cluster s3, tablegroup filesystem with only a path: the shard has no s3
 * block, the tablegroup's path, and the shard-level default size 10Gi (defaultBackupConfig).
 */
static void test_backup_child_of_other_type_replaces_wholesale(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  backup:\n"
                                            "    type: s3\n"
                                            "    s3:\n"
                                            "      bucket: cluster-bucket\n"
                                            "      region: us-east-1\n"
                                            "      keyPrefix: prod\n"
                                            "      credentialsSecret: s3-creds\n" ONE_SHARD_TG_HEAD
                                            "      tablegroups:\n"
                                            "        - name: default\n"
                                            "          default: true\n"
                                            "          backup:\n"
                                            "            type: filesystem\n"
                                            "            filesystem:\n"
                                            "              path: /tg-backups\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, SHARD0 ".backup.type", "filesystem");
    expect_str(c, SHARD0 ".backup.filesystem.path", "/tg-backups");
    expect_str(c, SHARD0 ".backup.filesystem.storage.size", "10Gi");
    expect_absent(c, SHARD0 ".backup.s3");
    expect_str(c, "spec.databases[0].backup.type", "s3");
    expect_str(c, "spec.databases[0].backup.s3.bucket", "cluster-bucket");
    expect_str(c, TG0 ".backup.type", "filesystem");
    expect_absent(c, TG0 ".backup.s3");
    json_decref(r);
}

/*
 * The other direction: the cluster's default filesystem backup (cluster.go L64-75) and a
 * database s3 block: the database's block replaces it wholesale, so the shard has no filesystem
 * block at all (defaultBackupConfig only touches type filesystem).
 */
static void test_backup_s3_child_replaces_default_filesystem(void **state)
{
    (void)state;
    const char *yaml =
        CLUSTER_HEAD CELL_ZA ONE_SHARD_TG_HEAD "      backup:\n"
                                               "        type: s3\n"
                                               "        s3:\n"
                                               "          bucket: db-bucket\n"
                                               "          region: eu-west-1\n"
                                               "          serviceAccountName: backup-sa\n"
                                               "      tablegroups:\n"
                                               "        - name: default\n"
                                               "          default: true\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.backup.type", "filesystem");
    expect_str(c, SHARD0 ".backup.type", "s3");
    expect_str(c, SHARD0 ".backup.s3.bucket", "db-bucket");
    expect_str(c, SHARD0 ".backup.s3.region", "eu-west-1");
    expect_str(c, SHARD0 ".backup.s3.serviceAccountName", "backup-sa");
    expect_absent(c, SHARD0 ".backup.filesystem");
    json_decref(r);
}

/*
 * MergeBackupConfig L551-577 (type s3, same type): each non-empty child field replaces the
 * parent's; an empty string (endpoint: "", keyPrefix: "") keeps the parent's; useEnvCredentials
 * is always taken from a child that has an s3 block (L570: here the child leaves it unset, so
 * false, although the cluster says true).
 */
static void test_backup_s3_merge_skips_empty_strings(void **state)
{
    (void)state;
    const char *yaml =
        CLUSTER_HEAD CELL_ZA "  backup:\n"
                             "    type: s3\n"
                             "    s3:\n"
                             "      bucket: cluster-bucket\n"
                             "      region: us-east-1\n"
                             "      endpoint: https://s3.example.com\n"
                             "      keyPrefix: prod\n"
                             "      credentialsSecret: s3-creds\n"
                             "      useEnvCredentials: true\n" ONE_SHARD_TG_HEAD "      backup:\n"
                             "        type: s3\n"
                             "        s3:\n"
                             "          bucket: db-bucket\n"
                             "          region: eu-west-1\n"
                             "          endpoint: \"\"\n"
                             "          keyPrefix: \"\"\n"
                             "      tablegroups:\n"
                             "        - name: default\n"
                             "          default: true\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, SHARD0 ".backup.type", "s3");
    expect_str(c, SHARD0 ".backup.s3.bucket", "db-bucket");
    expect_str(c, SHARD0 ".backup.s3.region", "eu-west-1");
    expect_str(c, SHARD0 ".backup.s3.endpoint", "https://s3.example.com");
    expect_str(c, SHARD0 ".backup.s3.keyPrefix", "prod");
    expect_str(c, SHARD0 ".backup.s3.credentialsSecret", "s3-creds");
    expect_false_or_absent(c, SHARD0 ".backup.s3.useEnvCredentials");
    expect_absent(c, SHARD0 ".backup.filesystem");
    expect_str(c, "spec.databases[0].backup.s3.endpoint", "https://s3.example.com");
    json_decref(r);
}

/*
 * MergeBackupConfig L526-578: with the same type, only that type's sub-block of the child is
 * merged (the switch on merged.Type, L531); a filesystem block written next to `type: s3` on the
 * shard is dropped. The shard's useEnvCredentials: true wins (L570), the parent's keyPrefix stays.
 * Shard-level backup: shard.go mergeShardConfig L241-245.
 */
static void test_backup_only_merged_type_block_is_kept(void **state)
{
    (void)state;
    const char *yaml =
        CLUSTER_HEAD CELL_ZA "  backup:\n"
                             "    type: s3\n"
                             "    s3:\n"
                             "      bucket: cluster-bucket\n"
                             "      region: us-east-1\n"
                             "      keyPrefix: prod\n" ONE_SHARD_TG_HEAD "      tablegroups:\n"
                             "        - name: default\n"
                             "          default: true\n"
                             "          shards:\n"
                             "            - name: \"0-inf\"\n"
                             "              backup:\n"
                             "                type: s3\n"
                             "                s3:\n"
                             "                  bucket: shard-bucket\n"
                             "                  region: us-east-1\n"
                             "                  useEnvCredentials: true\n"
                             "                filesystem:\n"
                             "                  path: /ignored\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, SHARD0 ".backup.type", "s3");
    expect_str(c, SHARD0 ".backup.s3.bucket", "shard-bucket");
    expect_str(c, SHARD0 ".backup.s3.keyPrefix", "prod");
    expect_json(c, SHARD0 ".backup.s3.useEnvCredentials", "true");
    expect_absent(c, SHARD0 ".backup.filesystem");
    json_decref(r);
}

/* ---- topology servers ----------------------------------------------------------------------- */

/*
 * cell.go ResolveCell L33-39 with resolver.go defaultEtcdSpec: a cell-local etcd gets
 * rootPath /multigres/<cell>, 1Gi, the etcd default resources and DefaultEtcdImage
 * (image_defaults.go); a written replica count stays, an unset one is 3.
 */
static void test_local_topo_etcd_defaults(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD "  cells:\n"
                                    "    - name: zb\n"
                                    "      zoneId: use1-az2\n"
                                    "      spec:\n"
                                    "        localTopoServer:\n"
                                    "          etcd:\n"
                                    "            replicas: 1\n"
                                    "    - name: za\n"
                                    "      zoneId: use1-az1\n"
                                    "      spec:\n"
                                    "        localTopoServer:\n"
                                    "          etcd: {}\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    const char *e = "spec.cells[0].spec.localTopoServer.etcd";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.replicas", e);
    expect_int(c, p, 1);
    (void)snprintf(p, sizeof(p), "%s.rootPath", e);
    expect_str(c, p, "/multigres/zb");
    (void)snprintf(p, sizeof(p), "%s.storage.size", e);
    expect_str(c, p, "1Gi");
    (void)snprintf(p, sizeof(p), "%s.resources", e);
    expect_json(c, p, ETCD_RESOURCES);
    (void)snprintf(p, sizeof(p), "%s.image", e);
    expect_str(c, p, ETCD_IMAGE);
    expect_int(c, "spec.cells[1].spec.localTopoServer.etcd.replicas", 3);
    expect_str(c, "spec.cells[1].spec.localTopoServer.etcd.rootPath", "/multigres/za");
    expect_str(c, "spec.cells[1].spec.localTopoServer.etcd.image", ETCD_IMAGE);
    expect_absent(c, "spec.cells[0].spec.localTopoServer.external");
    json_decref(r);
}

/* cell.go L40-42 with resolver.go defaultExternalTopoSpec: an external local topo gets
 * implementation "etcd" (DefaultTopoImplementation) and rootPath /multigres/<cell>. */
static void test_local_topo_external_defaults(void **state)
{
    (void)state;
    const char *yaml =
        CLUSTER_HEAD "  cells:\n"
                     "    - name: za\n"
                     "      zoneId: use1-az1\n"
                     "      spec:\n"
                     "        localTopoServer:\n"
                     "          external:\n"
                     "            endpoints: [\"http://etcd-za.example.com:2379\"]\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.cells[0].spec.localTopoServer.external.implementation", "etcd");
    expect_str(c, "spec.cells[0].spec.localTopoServer.external.rootPath", "/multigres/za");
    expect_json(c, "spec.cells[0].spec.localTopoServer.external.endpoints",
                "[\"http://etcd-za.example.com:2379\"]");
    expect_absent(c, "spec.cells[0].spec.localTopoServer.etcd");
    json_decref(r);
}

/* cluster.go ResolveGlobalTopo L214-216 -> defaultEtcdSpec: the global managed etcd gets the
 * default image too, also when the user wrote other etcd fields. */
static void test_global_etcd_default_image(void **state)
{
    (void)state;
    json_t *r = NULL;
    resolve_yaml(CLUSTER_HEAD CELL_ZA, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.globalTopoServer.etcd.image", ETCD_IMAGE);
    json_decref(r);

    resolve_yaml(CLUSTER_HEAD CELL_ZA "  globalTopoServer:\n"
                                      "    etcd:\n"
                                      "      replicas: 5\n"
                                      "      storage:\n"
                                      "        size: 4Gi\n",
                 &r);
    c = json_object_get(r, "resolved");
    expect_str(c, "spec.globalTopoServer.etcd.image", ETCD_IMAGE);
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 5);
    expect_str(c, "spec.globalTopoServer.etcd.storage.size", "4Gi");
    expect_str(c, "spec.globalTopoServer.etcd.rootPath", "/multigres/global");
    expect_json(c, "spec.globalTopoServer.etcd.resources", ETCD_RESOURCES);
    json_decref(r);
}

/* cluster.go ResolveGlobalTopo L203-205, L217-219: an external global topology replaces the etcd
 * and gets implementation "etcd" and rootPath /multigres/global. */
static void test_global_external_topo_defaults(void **state)
{
    (void)state;
    json_t *r = NULL;
    resolve_yaml(CLUSTER_HEAD CELL_ZA "  globalTopoServer:\n"
                                      "    external:\n"
                                      "      endpoints: [\"https://etcd.example.com:2379\"]\n",
                 &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.globalTopoServer.external.implementation", "etcd");
    expect_str(c, "spec.globalTopoServer.external.rootPath", "/multigres/global");
    expect_absent(c, "spec.globalTopoServer.etcd");
    json_decref(r);
}

/* validation.go validateGatewayBuffer L844-847: "The binary skips buffer validation entirely when
 * buffering is disabled": window 30s > maxFailoverDuration 20s is accepted with enabled: false,
 * and the written values resolve as written (cell.go mergeMultigatewaySpec). */
static void test_buffer_rules_skipped_when_disabled(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD "  cells:\n"
                                    "    - name: za\n"
                                    "      zoneId: use1-az1\n"
                                    "      spec:\n"
                                    "        multigateway:\n"
                                    "          buffer:\n"
                                    "            enabled: false\n"
                                    "            window: 30s\n"
                                    "            maxFailoverDuration: 20s\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, "spec.cells[0].spec.multigateway.buffer.enabled", "false");
    expect_str(c, "spec.cells[0].spec.multigateway.buffer.window", "30s");
    expect_str(c, "spec.cells[0].spec.multigateway.buffer.maxFailoverDuration", "20s");
    json_decref(r);
}

/* ---- PVC deletion policy ------------------------------------------------------------------ */

static void expect_policy(const json_t *c, const char *path, const char *deleted,
                          const char *scaled)
{
    char p[320];
    (void)snprintf(p, sizeof(p), "%s.whenDeleted", path);
    expect_str(c, p, deleted);
    (void)snprintf(p, sizeof(p), "%s.whenScaled", path);
    expect_str(c, p, scaled);
}

/*
 * cluster.go PopulateClusterDefaults L57-62 (and the CRD default on spec.pvcDeletionPolicy):
 * a cluster without the block is Delete/Delete; the chain tablegroup -> cluster
 * (builders_tablegroup.go L61-64), shard -> tablegroup (tablegroup/builders.go L63-66), pool ->
 * shard (shard/shard_controller.go L501-504, reconcile_pool_pods.go L748-751) carries it to every
 * level.
 */
static void test_pvc_policy_default_on_every_level(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n"
                                                "          shards:\n"
                                                "            - name: \"0-inf\"\n"
                                                "              spec:\n"
                                                "                pools:\n"
                                                "                  main:\n"
                                                "                    type: readWrite\n"
                                                "                  side:\n"
                                                "                    type: readWrite\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_policy(c, "spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, TG0 ".pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pools[main].pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pools[side].pvcDeletionPolicy", "Delete", "Delete");
    json_decref(r);

    /* The implicit default pool of a cluster that names nothing. */
    resolve_yaml(CLUSTER_HEAD CELL_ZA, &r);
    c = json_object_get(r, "resolved");
    expect_policy(c, "spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, TG0 ".pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pools[default].pvcDeletionPolicy", "Delete", "Delete");
    json_decref(r);
}

/*
 * MergePVCDeletionPolicy (common_types.go L467-495), pool over shard: a pool's whenScaled Retain
 * wins for that pool only. A pool block that writes only whenScaled also gets whenDeleted from
 * the CRD field default (`default: Retain` on whenDeleted), which then counts as set and beats
 * the cluster's Delete (docs/spec/templates.md "Careful"). Other pools and the levels above keep
 * Delete/Delete.
 */
static void test_pvc_policy_pool_level_wins_only_for_that_pool(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELLS_ZB_ZA "  databases:\n"
                                                "    - name: postgres\n"
                                                "      default: true\n"
                                                "      tablegroups:\n"
                                                "        - name: default\n"
                                                "          default: true\n"
                                                "          shards:\n"
                                                "            - name: \"0-inf\"\n"
                                                "              spec:\n"
                                                "                pools:\n"
                                                "                  main:\n"
                                                "                    pvcDeletionPolicy:\n"
                                                "                      whenDeleted: Delete\n"
                                                "                      whenScaled: Retain\n"
                                                "                  keep:\n"
                                                "                    pvcDeletionPolicy:\n"
                                                "                      whenScaled: Retain\n"
                                                "                  other:\n"
                                                "                    type: readWrite\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_policy(c, SHARD0 ".spec.pools[main].pvcDeletionPolicy", "Delete", "Retain");
    expect_policy(c, SHARD0 ".spec.pools[keep].pvcDeletionPolicy", "Retain", "Retain");
    expect_policy(c, SHARD0 ".spec.pools[other].pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, SHARD0 ".spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, TG0 ".pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, "spec.pvcDeletionPolicy", "Delete", "Delete");
    json_decref(r);
}

/* A tablegroup block {whenScaled: Retain}: the CRD fills whenDeleted: Retain; the tablegroup,
 * its shard and its pool all resolve Retain/Retain, the cluster stays Delete/Delete. */
static void test_pvc_policy_tablegroup_block_gets_field_defaults(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  databases:\n"
                                            "    - name: postgres\n"
                                            "      default: true\n"
                                            "      tablegroups:\n"
                                            "        - name: default\n"
                                            "          default: true\n"
                                            "          pvcDeletionPolicy:\n"
                                            "            whenScaled: Retain\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_policy(c, "spec.pvcDeletionPolicy", "Delete", "Delete");
    expect_policy(c, TG0 ".pvcDeletionPolicy", "Retain", "Retain");
    expect_policy(c, SHARD0 ".spec.pvcDeletionPolicy", "Retain", "Retain");
    expect_policy(c, SHARD0 ".spec.pools[default].pvcDeletionPolicy", "Retain", "Retain");
    json_decref(r);
}

/* ---- the samples, with the values their authors wrote ------------------------------------ */

/* e2e-fixtures__log-levels.yaml: logLevels are kept as written (PopulateClusterDefaults only
 * fills empty ones, cluster.go L40-55); the pool's written replicasPerCell 1 is not raised to 2
 * (shard.go L102: only when nil). */
static void test_sample_log_levels_kept(void **state)
{
    (void)state;
    const char *files[] = {"e2e-fixtures__log-levels.yaml", NULL};
    json_t *r = NULL;
    resolve_samples(files, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "metadata.name", "e2e-log-levels");
    expect_str(c, "spec.logLevels.pgctld", "debug");
    expect_str(c, "spec.logLevels.multipooler", "warn");
    expect_str(c, "spec.logLevels.multiorch", "debug");
    expect_str(c, "spec.logLevels.multiadmin", "warn");
    expect_str(c, "spec.logLevels.multigateway", "debug");
    expect_int(c, SHARD0 ".spec.pools[default].replicasPerCell", 1);
    expect_json(c, SHARD0 ".spec.pools[default].cells", "[\"zone-a\"]");
    expect_str(c, SHARD0 ".spec.pools[default].storage.size", "1Gi");
    expect_int(c, SHARD0 ".spec.multiorch.replicas", 1);
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"zone-a\"]");
    json_decref(r);
}

/* topology.yaml: everything inline; every written value survives resolution. */
static void test_sample_topology_kept(void **state)
{
    (void)state;
    const char *files[] = {"topology.yaml", NULL};
    json_t *r = NULL;
    resolve_samples(files, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "spec.globalTopoServer.etcd.image", ETCD_IMAGE);
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 3);
    expect_str(c, "spec.globalTopoServer.etcd.storage.size", "10Gi");
    expect_json(c, "spec.globalTopoServer.etcd.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"256Mi\"},"
                " \"limits\": {\"cpu\": \"200m\", \"memory\": \"512Mi\"}}");
    expect_int(c, "spec.multiadmin.spec.replicas", 2);
    expect_json(c, "spec.multiadmin.spec.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"cpu\": \"200m\", \"memory\": \"256Mi\"}}");
    static const char *const cells[] = {"z1", "z2", "z3"};
    for (int i = 0; i < 3; i++) {
        char p[128];
        (void)snprintf(p, sizeof(p), "spec.cells[%d].name", i);
        expect_str(c, p, cells[i]);
        (void)snprintf(p, sizeof(p), "spec.cells[%d].spec.multigateway.replicas", i);
        expect_int(c, p, 2);
        (void)snprintf(p, sizeof(p), "spec.cells[%d].spec.multigateway.resources", i);
        expect_json(c, p,
                    "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                    " \"limits\": {\"cpu\": \"200m\", \"memory\": \"256Mi\"}}");
    }
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"z1\", \"z2\", \"z3\"]");
    expect_json(c, SHARD0 ".spec.multiorch.resources",
                "{\"requests\": {\"cpu\": \"50m\", \"memory\": \"64Mi\"},"
                " \"limits\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"}}");
    const char *pool = SHARD0 ".spec.pools[main]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.type", pool);
    expect_str(c, p, "readWrite");
    (void)snprintf(p, sizeof(p), "%s.cells", pool);
    expect_json(c, p, "[\"z1\", \"z2\", \"z3\"]");
    (void)snprintf(p, sizeof(p), "%s.replicasPerCell", pool);
    expect_int(c, p, 3);
    (void)snprintf(p, sizeof(p), "%s.storage.size", pool);
    expect_str(c, p, "100Gi");
    (void)snprintf(p, sizeof(p), "%s.postgres.resources", pool);
    expect_json(c, p,
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"256Mi\"},"
                " \"limits\": {\"cpu\": \"500m\", \"memory\": \"512Mi\"}}");
    (void)snprintf(p, sizeof(p), "%s.multipooler.resources", pool);
    expect_json(c, p,
                "{\"requests\": {\"cpu\": \"50m\", \"memory\": \"64Mi\"},"
                " \"limits\": {\"cpu\": \"200m\", \"memory\": \"128Mi\"}}");
    expect_absent(c, SHARD0 ".spec.pools[default]");
    json_decref(r);
}

/*
 * templated-cluster.yaml with templates__{core,cell,shard}.yaml: the templates are found through
 * templateDefaults (level 2). etcd from standard-core: 10Gi on class standard (ResolveGlobalTopo
 * L190-195), rootPath defaulted; multiadmin replicas 2 (ResolveMultiadmin); multiadmin-web has
 * no template part: 1 replica. Pool main-app from standard-shard: replicasPerCell 4, 100Gi class
 * standard, cells from the overrides; multiorch cells all cells sorted.
 */
static void test_sample_templated_cluster(void **state)
{
    (void)state;
    const char *files[] = {"templated-cluster.yaml", "templates__core.yaml", "templates__cell.yaml",
                           "templates__shard.yaml", NULL};
    json_t *r = NULL;
    resolve_samples(files, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_json(c, "spec.globalTopoServer.etcd.storage",
                "{\"size\": \"10Gi\", \"class\": \"standard\"}");
    expect_int(c, "spec.globalTopoServer.etcd.replicas", 3);
    expect_str(c, "spec.globalTopoServer.etcd.image", ETCD_IMAGE);
    expect_str(c, "spec.globalTopoServer.etcd.rootPath", "/multigres/global");
    expect_json(c, "spec.globalTopoServer.etcd.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"cpu\": \"200m\", \"memory\": \"256Mi\"}}");
    expect_int(c, "spec.multiadmin.spec.replicas", 2);
    expect_int(c, "spec.multiadminWeb.spec.replicas", 1);
    expect_int(c, "spec.cells[0].spec.multigateway.replicas", 2);
    expect_int(c, "spec.cells[1].spec.multigateway.replicas", 2);
    const char *pool = SHARD0 ".spec.pools[main-app]";
    char p[256];
    (void)snprintf(p, sizeof(p), "%s.replicasPerCell", pool);
    expect_int(c, p, 4);
    (void)snprintf(p, sizeof(p), "%s.storage.size", pool);
    expect_str(c, p, "100Gi");
    (void)snprintf(p, sizeof(p), "%s.storage.class", pool);
    expect_str(c, p, "standard");
    (void)snprintf(p, sizeof(p), "%s.cells", pool);
    expect_json(c, p, "[\"az1\", \"az2\"]");
    expect_json(c, SHARD0 ".spec.multiorch.cells", "[\"az1\", \"az2\"]");
    expect_json(c, SHARD0 ".spec.multiorch.resources",
                "{\"requests\": {\"cpu\": \"100m\", \"memory\": \"128Mi\"},"
                " \"limits\": {\"cpu\": \"200m\", \"memory\": \"256Mi\"}}");
    expect_absent(c, SHARD0 ".spec.pools[default]");
    expect_policy(c, "spec.pvcDeletionPolicy", "Delete", "Delete");
    (void)snprintf(p, sizeof(p), "%s.pvcDeletionPolicy", pool);
    expect_policy(c, p, "Delete", "Delete");
    json_decref(r);
}

/* e2e-fixtures__base.yaml resolves; its written single replica and pool cell are kept. */
static void test_sample_e2e_base_resolves(void **state)
{
    (void)state;
    const char *files[] = {"e2e-fixtures__base.yaml", NULL};
    json_t *r = NULL;
    resolve_samples(files, &r);
    const json_t *c = json_object_get(r, "resolved");
    expect_str(c, "metadata.name", "e2e-base");
    expect_int(c, SHARD0 ".spec.pools[default].replicasPerCell", 1);
    expect_json(c, SHARD0 ".spec.pools[default].cells", "[\"zone-a\"]");
    expect_str(c, SHARD0 ".spec.pools[default].storage.size", "1Gi");
    expect_int(c, SHARD0 ".spec.multiorch.replicas", 1);
    expect_str(c, "spec.logLevels.multiorch", "info");
    json_decref(r);
}

/* ---- warnings (facts 7 "Warnings"; validation.go ValidateClusterLogic) -------------------- */

/* validation.go L262-268 (getEffectiveEtcdReplicas == 1), exact reference wording. Path: the
 * global topology server (docs/abi.md's example) or a field below it. */
static void test_warning_single_replica_etcd(void **state)
{
    (void)state;
    json_t *r = NULL;
    resolve_yaml(CLUSTER_HEAD CELL_ZA "  globalTopoServer:\n"
                                      "    etcd:\n"
                                      "      replicas: 1\n",
                 &r);
    static const char *const where[] = {"spec.globalTopoServer", NULL};
    expect_warning_at(
        r, where,
        "etcd has 1 replica \xe2\x80\x94 no fault tolerance. 3 replicas is recommended "
        "for production (tolerates 1 failure). Note: topology server replicas cannot "
        "be changed after cluster creation");
    json_decref(r);
}

/* validation.go L465-511, the default branch: AT_LEAST_2 with 1 x 1 poolers. */
static void test_warning_durability_at_least_2(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  databases:\n"
                                            "    - name: postgres\n"
                                            "      default: true\n"
                                            "      tablegroups:\n"
                                            "        - name: default\n"
                                            "          default: true\n"
                                            "          shards:\n"
                                            "            - name: \"0-inf\"\n"
                                            "              spec:\n"
                                            "                pools:\n"
                                            "                  main:\n"
                                            "                    cells: [za]\n"
                                            "                    replicasPerCell: 1\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    /* the pool that is too small, or the (defaulted) cluster policy it cannot meet */
    static const char *const where[] = {"spec.databases[0]", "spec.durabilityPolicy", NULL};
    expect_warning_at(
        r, where,
        "pool 'main' in shard '0-inf' has replicasPerCell=1 across 1 cell(s) (1 total); "
        "durability policy \"AT_LEAST_2\" requires at least 2 total poolers.");
    json_decref(r);
}

/* validation.go L483-495: MULTI_CELL_AT_LEAST_2 (from the database) with a one-cell pool. */
static void test_warning_durability_multi_cell(void **state)
{
    (void)state;
    const char *yaml = CLUSTER_HEAD CELL_ZA "  databases:\n"
                                            "    - name: postgres\n"
                                            "      default: true\n"
                                            "      durabilityPolicy: MULTI_CELL_AT_LEAST_2\n"
                                            "      tablegroups:\n"
                                            "        - name: default\n"
                                            "          default: true\n"
                                            "          shards:\n"
                                            "            - name: \"0-inf\"\n"
                                            "              spec:\n"
                                            "                pools:\n"
                                            "                  main:\n"
                                            "                    cells: [za]\n"
                                            "                    replicasPerCell: 2\n";
    json_t *r = NULL;
    resolve_yaml(yaml, &r);
    static const char *const where[] = {"spec.databases[0]", NULL};
    expect_warning_at(r, where,
                      "pool 'main' in shard '0-inf' spans 1 cell(s); durability policy "
                      "\"MULTI_CELL_AT_LEAST_2\" requires at least 2 distinct cells.");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_override_empty_values_keep_template),
        cmocka_unit_test(test_inline_empty_values_keep_template),
        cmocka_unit_test(test_database_empty_durability_inherits_cluster),
        cmocka_unit_test(test_database_durability_beats_cluster),
        cmocka_unit_test(test_multiorch_cells_default_to_all_cells_sorted),
        cmocka_unit_test(test_default_pool_takes_inline_multiorch_cells),
        cmocka_unit_test(test_default_pool_takes_template_multiorch_cells),
        cmocka_unit_test(test_declared_pool_without_cells_gets_all_cells_sorted),
        cmocka_unit_test(test_declared_pool_in_one_cell_cluster_gets_two_replicas),
        cmocka_unit_test(test_injected_default_pool_on_unsorted_cells),
        cmocka_unit_test(test_backup_filesystem_defaults_filled_at_shard),
        cmocka_unit_test(test_backup_child_of_other_type_replaces_wholesale),
        cmocka_unit_test(test_backup_s3_child_replaces_default_filesystem),
        cmocka_unit_test(test_backup_s3_merge_skips_empty_strings),
        cmocka_unit_test(test_backup_only_merged_type_block_is_kept),
        cmocka_unit_test(test_local_topo_etcd_defaults),
        cmocka_unit_test(test_local_topo_external_defaults),
        cmocka_unit_test(test_global_etcd_default_image),
        cmocka_unit_test(test_global_external_topo_defaults),
        cmocka_unit_test(test_buffer_rules_skipped_when_disabled),
        cmocka_unit_test(test_pvc_policy_default_on_every_level),
        cmocka_unit_test(test_pvc_policy_pool_level_wins_only_for_that_pool),
        cmocka_unit_test(test_pvc_policy_tablegroup_block_gets_field_defaults),
        cmocka_unit_test(test_sample_log_levels_kept),
        cmocka_unit_test(test_sample_topology_kept),
        cmocka_unit_test(test_sample_templated_cluster),
        cmocka_unit_test(test_sample_e2e_base_resolves),
        cmocka_unit_test(test_warning_single_replica_etcd),
        cmocka_unit_test(test_warning_durability_at_least_2),
        cmocka_unit_test(test_warning_durability_multi_cell),
    };
    return cmocka_run_group_tests_name("reference_resolution", tests, NULL, NULL);
}
