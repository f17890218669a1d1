/*
 * Convergence of mgo_reconcile against a simulated host (sim.c): from nothing, every reference
 * sample reaches a pass with no write within a small number of passes, for both render targets;
 * then random edits (scale up and down, a new cell, a restart-class setting) converge again
 * without breaking a lifecycle rule; an invalid edit changes nothing. Expected instance counts
 * are computed here from the manifests (replicasPerCell x cells per pool), not by mgo.
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
#include "spec/load.h"
#include "sim.h"

#define FRESH_BOUND 6   /* passes from nothing: create, then confirm */
#define EDIT_BOUND  400 /* a rolling update takes a few passes per instance */

struct sample {
    const char *name;
    const char *files[5];
};

/* Valid clusters among the samples, with the templates they name. overrides.yaml and
 * external-etcd.yaml get the zoneId the reference CRD requires (see tests/spec). */
static const struct sample samples[] = {
    {"minimal", {"minimal.yaml"}},
    {"no-templates", {"no-templates.yaml"}},
    {"topology", {"topology.yaml"}},
    {"e2e-base", {"e2e-fixtures__base.yaml"}},
    {"e2e-log-levels", {"e2e-fixtures__log-levels.yaml"}},
    {"templated",
     {"templated-cluster.yaml", "templates__core.yaml", "templates__cell.yaml",
      "templates__shard.yaml"}},
    {"default-templates",
     {"minimal.yaml", "default-templates__core.yaml", "default-templates__cell.yaml",
      "default-templates__shard.yaml"}},
    {"overrides",
     {"overrides.yaml", "templates__core.yaml", "templates__cell.yaml", "templates__shard.yaml"}},
    {"external-etcd", {"external-etcd.yaml"}},
};

static json_t *load_file(const char *name)
{
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/compat/upstream-samples/%s", getenv("MGO_SHARED_DIR"),
                   name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    json_t *docs = NULL;
    struct spec_load_error err;
    assert_int_equal(spec_load(buf, n, &docs, &err), 0);
    free(buf);
    return docs;
}

/* Cells without zoneId or region get one (the reference CRD requires it). */
static void fix_zones(json_t *doc)
{
    size_t i;
    json_t *cell;
    json_array_foreach (json_object_get(json_object_get(doc, "spec"), "cells"), i, cell)
        if (!json_object_get(cell, "zoneId") && !json_object_get(cell, "region"))
            json_object_set_new(cell, "zoneId", json_string("use1-az1"));
}

static json_t *load_sample(const struct sample *s)
{
    json_t *all = json_array(), *docs;
    for (const char *const *f = s->files; *f; f++) {
        docs = load_file(*f);
        size_t i;
        json_t *d;
        json_array_foreach (docs, i, d) {
            const char *kind = json_string_value(json_object_get(d, "kind"));
            if (kind && strcmp(kind, "MultigresCluster") == 0)
                fix_zones(d);
            const char *api = json_string_value(json_object_get(d, "apiVersion"));
            if (api && strncmp(api, "multigres.com/", 14) == 0)
                json_array_append(all, d);
        }
        json_decref(docs);
    }
    return all;
}

/* The resolved cluster of a first pass: every field inline, so edits are plain JSON edits. */
static json_t *resolved_of(struct sim *s, const json_t *objects)
{
    json_t *result = NULL;
    assert_int_equal(sim_pass(s, objects, &result), MGO_OK);
    json_t *r = json_deep_copy(json_object_get(result, "resolved"));
    json_decref(result);
    assert_non_null(r);
    return r;
}

static json_t *shard_spec(json_t *cluster)
{
    json_t *db = json_array_get(json_object_get(json_object_get(cluster, "spec"), "databases"), 0);
    json_t *tg = json_array_get(json_object_get(db, "tablegroups"), 0);
    return json_object_get(json_array_get(json_object_get(tg, "shards"), 0), "spec");
}

/* Sum over pools of replicasPerCell x the pool's cells, read from the resolved manifest. */
static size_t expected_instances(json_t *cluster)
{
    size_t total = 0;
    const char *k;
    json_t *pool;
    json_object_foreach (json_object_get(shard_spec(cluster), "pools"), k, pool)
        total += (size_t)json_integer_value(json_object_get(pool, "replicasPerCell")) *
                 json_array_size(json_object_get(pool, "cells"));
    return total;
}

static size_t count_instances(const struct sim *s)
{
    char names[65536];
    sim_instances(s, names, sizeof(names));
    size_t n = names[0] ? 1 : 0;
    for (const char *c = names; *c; c++)
        n += *c == ' ';
    return n;
}

static void assert_quiet_pass(struct sim *s, const json_t *objects, const char *what)
{
    json_t *result = NULL;
    assert_int_equal(sim_pass(s, objects, &result), MGO_OK);
    if (s->writes || s->events)
        fail_msg("%s: a converged cluster still produced %zu write(s), %zu event(s): %s", what,
                 s->writes, s->events,
                 json_dumps(json_object_get(result, "actions"), JSON_COMPACT));
    const char *phase =
        json_string_value(json_object_get(json_object_get(result, "status"), "phase"));
    if (!phase || strcmp(phase, "Healthy") != 0)
        fail_msg("%s: converged but phase %s", what, phase ? phase : "(none)");
    json_decref(result);
}

static void test_fresh(void **state)
{
    (void)state;
    static const char *const targets[] = {"kubernetes", "process"};
    for (size_t t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
            struct sim s;
            sim_init(&s, targets[t]);
            assert_non_null(s.p);
            json_t *objects = load_sample(&samples[i]);
            int passes = sim_converge(&s, objects, FRESH_BOUND);
            if (passes < 0)
                fail_msg("%s/%s: no convergence within %d passes: %s", samples[i].name, targets[t],
                         FRESH_BOUND, s.violation);
            json_t *resolved = resolved_of(&s, objects);
            assert_int_equal(count_instances(&s), expected_instances(resolved));
            assert_quiet_pass(&s, objects, samples[i].name);
            print_message("%-18s %-10s converged in %d pass(es), %zu instances, %zu objects\n",
                          samples[i].name, targets[t], passes, count_instances(&s),
                          json_array_size(s.objects));
            json_decref(resolved);
            json_decref(objects);
            sim_fini(&s);
        }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned next_random(unsigned below)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % below);
}

/* Does any pool keep its volumes on scale-down (pvcDeletionPolicy.whenScaled: Retain)? */
static int scaled_volumes_retained(json_t *cluster)
{
    const char *k;
    json_t *pool;
    json_object_foreach (json_object_get(shard_spec(cluster), "pools"), k, pool) {
        const char *policy = json_string_value(
            json_object_get(json_object_get(pool, "pvcDeletionPolicy"), "whenScaled"));
        if (policy && strcmp(policy, "Retain") == 0)
            return 1;
    }
    return 0;
}

/* What an edit must cause, written from the lifecycle rules (docs/spec/lifecycle.md), not
 * from the code: drains requested, instances created, in-place reloads. */
struct expect {
    size_t drains, created, reloads;
};

static json_t *nth_pool(json_t *cluster, size_t n, const char **ret_name)
{
    const char *k;
    json_t *pool;
    size_t i = 0;
    json_object_foreach (json_object_get(shard_spec(cluster), "pools"), k, pool)
        if (i++ == n) {
            *ret_name = k;
            return pool;
        }
    return NULL;
}

/* Scale one pool to a different size: a scale-up creates (new - old) x cells instances and
 * drains none; a scale-down drains (old - new) x cells and creates none. */
static void edit_scale(json_t *cluster, char *what, size_t size, struct expect *e)
{
    const char *name = "";
    json_t *pools = json_object_get(shard_spec(cluster), "pools");
    json_t *pool = nth_pool(cluster, next_random((unsigned)json_object_size(pools)), &name);
    size_t cells = json_array_size(json_object_get(pool, "cells"));
    int old = (int)json_integer_value(json_object_get(pool, "replicasPerCell"));
    int want = 1 + (int)next_random(4);
    if (want >= old)
        want++; /* never the same size */
    json_object_set_new(pool, "replicasPerCell", json_integer(want));
    e->drains = want < old ? (size_t)(old - want) * cells : 0;
    e->created = want > old ? (size_t)(want - old) * cells : 0;
    (void)snprintf(what, size, "pool %s: %d -> %d per cell", name, old, want);
}

/* A new cell, added to the first pool (and the orchestrator's cells): replicasPerCell new
 * instances, nothing drained. */
static void edit_add_cell(json_t *cluster, int serial, char *what, size_t size, struct expect *e)
{
    json_t *cells = json_object_get(json_object_get(cluster, "spec"), "cells");
    char name[32];
    (void)snprintf(name, sizeof(name), "extra-%d", serial);
    json_t *cell = json_deep_copy(json_array_get(cells, 0));
    json_object_set_new(cell, "name", json_string(name));
    json_array_append_new(cells, cell);
    const char *pool_name = "";
    json_t *pool = nth_pool(cluster, 0, &pool_name);
    json_array_append_new(json_object_get(pool, "cells"), json_string(name));
    json_t *orch = json_object_get(json_object_get(shard_spec(cluster), "multiorch"), "cells");
    if (json_is_array(orch))
        json_array_append_new(orch, json_string(name));
    e->created = (size_t)json_integer_value(json_object_get(pool, "replicasPerCell"));
    (void)snprintf(what, size, "add cell %s to pool %s", name, pool_name);
}

/* A restart-class setting changes: every instance is replaced exactly once. */
static void edit_restart_setting(json_t *cluster, size_t instances, char *what, size_t size,
                                 struct expect *e)
{
    /* sizes no baseline configuration computes, so that the effective value changes */
    static const char *const values[] = {"161MB", "223MB", "287MB"};
    json_t *shard = shard_spec(cluster);
    if (!json_object_get(shard, "postgresConfig"))
        json_object_set_new(shard, "postgresConfig", json_object());
    json_t *config = json_object_get(shard, "postgresConfig");
    const char *now = json_string_value(json_object_get(config, "shared_buffers"));
    const char *v = values[next_random(3)];
    for (size_t i = 0; now && strcmp(now, v) == 0; i++)
        v = values[i % 3];
    json_object_set_new(config, "shared_buffers", json_string(v));
    e->drains = e->created = instances;
    (void)snprintf(what, size, "shared_buffers=%s", v);
}

/* A reload-class setting changes: nothing restarts; on the process target every instance gets
 * an in-place reload (on Kubernetes the configuration map changes and the data plane reloads). */
static void edit_reload_setting(json_t *cluster, size_t instances, int process, char *what,
                                size_t size, struct expect *e)
{
    static const char *const values[] = {"4MB", "8MB", "16MB"};
    json_t *shard = shard_spec(cluster);
    if (!json_object_get(shard, "postgresConfig"))
        json_object_set_new(shard, "postgresConfig", json_object());
    json_t *config = json_object_get(shard, "postgresConfig");
    const char *now = json_string_value(json_object_get(config, "work_mem"));
    const char *v = values[next_random(3)];
    for (size_t i = 0; now && strcmp(now, v) == 0; i++)
        v = values[i % 3];
    json_object_set_new(config, "work_mem", json_string(v));
    e->reloads = process ? instances : 0;
    (void)snprintf(what, size, "work_mem=%s", v);
}

static void test_random_edits(void **state)
{
    (void)state;
    static const char *const targets[] = {"process", "kubernetes"};
    const size_t nsamples = sizeof(samples) / sizeof(samples[0]);
    for (int seq = 0; seq < 24; seq++) {
        const struct sample *base = &samples[(size_t)seq % nsamples];
        struct sim s;
        sim_init(&s, targets[(seq / (int)nsamples + seq) % 2]);
        json_t *objects = load_sample(base);
        json_t *cluster = resolved_of(&s, objects);
        assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
        /* the sample's templates stay beside the edited cluster (it still names them) */
        json_t *templates = json_array();
        size_t t;
        json_t *d;
        json_array_foreach (objects, t, d)
            if (strcmp(json_string_value(json_object_get(d, "kind")), "MultigresCluster") != 0)
                json_array_append(templates, d);
        json_decref(objects);
        for (int step = 0; step < 4; step++) {
            char what[128];
            struct expect e = {0};
            size_t before = expected_instances(cluster);
            unsigned kind = next_random(4);
            if (kind == 0)
                edit_scale(cluster, what, sizeof(what), &e);
            else if (kind == 1 && json_array_size(json_object_get(json_object_get(cluster, "spec"),
                                                                  "cells")) < 4)
                edit_add_cell(cluster, seq * 10 + step, what, sizeof(what), &e);
            else if (kind == 2)
                edit_restart_setting(cluster, before, what, sizeof(what), &e);
            else
                edit_reload_setting(cluster, before, strcmp(s.target, "process") == 0, what,
                                    sizeof(what), &e);
            objects = json_deep_copy(templates);
            json_array_append(objects, cluster);
            sim_reset_counts(&s);
            int bound = 6 * (int)(e.drains + 1) + 6;
            int passes = sim_converge(&s, objects, bound);
            if (passes < 0)
                fail_msg("sequence %d (%s, %s) step %d (%s): no convergence within %d passes: %s",
                         seq, base->name, s.target, step, what, bound, s.violation);
            if (count_instances(&s) != expected_instances(cluster))
                fail_msg("sequence %d step %d (%s): %zu instances, want %zu", seq, step, what,
                         count_instances(&s), expected_instances(cluster));
            if (s.drains_requested != e.drains || s.instances_created != e.created ||
                s.reloads != e.reloads)
                fail_msg("sequence %d (%s, %s) step %d (%s): %zu drains, %zu created, %zu "
                         "reloads; want %zu, %zu, %zu",
                         seq, base->name, s.target, step, what, s.drains_requested,
                         s.instances_created, s.reloads, e.drains, e.created, e.reloads);
            print_message("%-18s %-10s %-34s %3d passes, %2zu drains\n", base->name, s.target, what,
                          passes, s.drains_requested);
            assert_quiet_pass(&s, objects, what);
            assert_quiet_pass(&s, objects, what);
            /* nothing left behind: removed instances, their volumes (whenScaled Delete, the
             * samples' policy unless a pool says Retain) and workloads are gone */
            const char *left = sim_leftover(&s, scaled_volumes_retained(cluster));
            if (left)
                fail_msg("sequence %d (%s, %s) step %d (%s): %s left behind", seq, base->name,
                         s.target, step, what, left);
            json_decref(objects);
        }
        json_decref(cluster);
        json_decref(templates);
        sim_fini(&s);
    }
}

/* Deleting a cluster on each target: everything goes but the volumes its policy keeps (data
 * volumes under whenDeleted: Retain; the backup volume always), instances before volumes. */
static void deletion_case(const char *target, const char *when_deleted)
{
    struct sim s;
    sim_init(&s, target);
    json_t *objects = load_sample(&samples[1]); /* no-templates: one pool, five instances */
    json_t *cluster = resolved_of(&s, objects);
    json_decref(objects);
    const char *k;
    json_t *pool;
    json_object_foreach (json_object_get(shard_spec(cluster), "pools"), k, pool)
        json_object_set_new(json_object_get(pool, "pvcDeletionPolicy"), "whenDeleted",
                            json_string(when_deleted));
    objects = json_pack("[O]", cluster);
    assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
    size_t instances = count_instances(&s);
    json_object_set_new(json_object_get(cluster, "metadata"), "deletionTimestamp",
                        json_string("2026-01-01T00:10:00Z"));
    assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
    size_t i, data = 0, backup = 0;
    json_t *o;
    json_array_foreach (s.objects, i, o) {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *name = json_string_value(json_object_get(o, "name"));
        if (strcmp(kind, "PersistentVolumeClaim") != 0 && strcmp(kind, "Volume") != 0)
            fail_msg("%s, whenDeleted %s: %s %s survived the deletion", target, when_deleted, kind,
                     name);
        if (strncmp(name, "backup-data-", 12) == 0)
            backup++;
        else
            data++;
    }
    assert_int_equal(data, strcmp(when_deleted, "Retain") == 0 ? instances : 0);
    assert_int_equal(backup, strcmp(target, "kubernetes") == 0 ? 1 : 0);
    print_message("deletion, %s, whenDeleted %s: %zu data and %zu backup volume(s) kept\n", target,
                  when_deleted, data, backup);
    json_decref(objects);
    json_decref(cluster);
    sim_fini(&s);
}

static void test_deletion(void **state)
{
    (void)state;
    deletion_case("kubernetes", "Retain");
    deletion_case("kubernetes", "Delete");
    deletion_case("process", "Retain");
    deletion_case("process", "Delete");
}

/* An edit the update-only rules forbid (a cell dropped from a running cluster) is refused
 * when the host passes the running spec as "previous": an error condition, nothing deleted. */
static void test_update_only_edit_refused(void **state)
{
    (void)state;
    static const char *const targets[] = {"kubernetes", "process"};
    for (size_t t = 0; t < 2; t++) {
        struct sim s;
        sim_init(&s, targets[t]);
        json_t *objects = load_sample(&samples[2]); /* topology: three cells */
        json_t *cluster = resolved_of(&s, objects);
        json_decref(objects);
        objects = json_pack("[O]", cluster);
        assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
        size_t before = json_array_size(s.objects);
        s.previous = json_deep_copy(cluster);
        json_t *cells = json_object_get(json_object_get(cluster, "spec"), "cells");
        const char *gone = json_string_value(json_object_get(json_array_get(cells, 2), "name"));
        char name[64];
        (void)snprintf(name, sizeof(name), "%s", gone);
        json_array_remove(cells, 2);
        const char *k;
        json_t *pool;
        json_object_foreach (json_object_get(shard_spec(cluster), "pools"), k, pool) {
            json_t *pc = json_object_get(pool, "cells");
            for (size_t i = json_array_size(pc); i-- > 0;)
                if (strcmp(json_string_value(json_array_get(pc, i)), name) == 0)
                    json_array_remove(pc, i);
        }
        json_t *orch = json_object_get(json_object_get(shard_spec(cluster), "multiorch"), "cells");
        for (size_t i = json_array_size(orch); i-- > 0;)
            if (strcmp(json_string_value(json_array_get(orch, i)), name) == 0)
                json_array_remove(orch, i);
        json_t *edited = json_pack("[O]", cluster), *result = NULL;
        assert_int_equal(sim_pass(&s, edited, &result), MGO_EINVAL);
        assert_int_equal(s.deletes, 0);
        assert_int_equal(json_array_size(s.objects), before);
        char *status = json_dumps(json_object_get(result, "status"), 0);
        assert_non_null(strstr(status, "spec.cells"));
        free(status);
        json_decref(result);
        json_decref(edited);
        json_decref(objects);
        json_decref(cluster);
        sim_fini(&s);
    }
}

static void test_invalid_edit_changes_nothing(void **state)
{
    (void)state;
    struct sim s;
    sim_init(&s, "kubernetes");
    json_t *objects = load_sample(&samples[0]);
    assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
    json_t *cluster = resolved_of(&s, objects);
    size_t before = json_array_size(s.objects);
    json_t *pools = json_object_get(shard_spec(cluster), "pools");
    json_object_set_new(json_object_get(pools, "default"), "replicasPerCell", json_integer(0));
    json_t *bad = json_pack("[O]", cluster), *result = NULL;
    assert_int_equal(sim_pass(&s, bad, &result), MGO_EINVAL);
    assert_int_equal(s.deletes, 0);
    assert_int_equal(json_array_size(s.objects), before);
    size_t i;
    json_t *a, *c;
    int found = 0;
    json_array_foreach (json_object_get(result, "actions"), i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        assert_true(strcmp(type, "status") == 0 || strcmp(type, "event") == 0);
    }
    json_array_foreach (json_object_get(json_object_get(result, "status"), "conditions"), i, c)
        if (strcmp(json_string_value(json_object_get(c, "type")), "Degraded") == 0) {
            assert_string_equal(json_string_value(json_object_get(c, "reason")), "InvalidSpec");
            const char *msg = json_string_value(json_object_get(c, "message"));
            assert_non_null(strstr(msg, "replicasPerCell"));
            found = 1;
        }
    assert_true(found);
    json_decref(result);
    /* A second pass with the same invalid spec writes nothing more. */
    assert_int_equal(sim_pass(&s, bad, NULL), MGO_EINVAL);
    assert_int_equal(s.writes, 0);
    json_decref(bad);
    json_decref(cluster);
    json_decref(objects);
    sim_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh),
        cmocka_unit_test(test_random_edits),
        cmocka_unit_test(test_invalid_edit_changes_nothing),
        cmocka_unit_test(test_deletion),
        cmocka_unit_test(test_update_only_edit_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
