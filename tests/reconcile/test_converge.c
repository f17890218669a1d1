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

static void edit_scale(json_t *cluster, char *what, size_t size)
{
    json_t *pools = json_object_get(shard_spec(cluster), "pools");
    const char *k;
    json_t *pool, *pick = NULL;
    size_t n = next_random((unsigned)json_object_size(pools)), i = 0;
    json_object_foreach (pools, k, pool)
        if (i++ == n)
            pick = pool;
    int replicas = 1 + (int)next_random(5);
    json_object_set_new(pick, "replicasPerCell", json_integer(replicas));
    (void)snprintf(what, size, "scale to %d", replicas);
}

static void edit_add_cell(json_t *cluster, int serial, char *what, size_t size)
{
    json_t *cells = json_object_get(json_object_get(cluster, "spec"), "cells");
    if (json_array_size(cells) >= 4) {
        (void)snprintf(what, size, "no new cell (4 already)");
        return;
    }
    char name[32];
    (void)snprintf(name, sizeof(name), "extra-%d", serial);
    json_t *cell = json_deep_copy(json_array_get(cells, 0));
    json_object_set_new(cell, "name", json_string(name));
    json_array_append_new(cells, cell);
    json_t *shard = shard_spec(cluster);
    const char *k;
    json_t *pool;
    json_object_foreach (json_object_get(shard, "pools"), k, pool) {
        json_array_append_new(json_object_get(pool, "cells"), json_string(name));
        break; /* the first pool grows into the new cell */
    }
    json_t *orch = json_object_get(json_object_get(shard, "multiorch"), "cells");
    if (json_is_array(orch))
        json_array_append_new(orch, json_string(name));
    (void)snprintf(what, size, "add cell %s", name);
}

static void edit_restart_setting(json_t *cluster, char *what, size_t size)
{
    static const char *const values[] = {"128MB", "192MB", "256MB"};
    json_t *shard = shard_spec(cluster);
    if (!json_object_get(shard, "postgresConfig"))
        json_object_set_new(shard, "postgresConfig", json_object());
    const char *v = values[next_random(3)];
    json_object_set_new(json_object_get(shard, "postgresConfig"), "shared_buffers", json_string(v));
    (void)snprintf(what, size, "shared_buffers=%s", v);
}

static void edit_reload_setting(json_t *cluster, char *what, size_t size)
{
    static const char *const values[] = {"4MB", "8MB", "16MB"};
    json_t *shard = shard_spec(cluster);
    if (!json_object_get(shard, "postgresConfig"))
        json_object_set_new(shard, "postgresConfig", json_object());
    const char *v = values[next_random(3)];
    json_object_set_new(json_object_get(shard, "postgresConfig"), "work_mem", json_string(v));
    (void)snprintf(what, size, "work_mem=%s", v);
}

static void test_random_edits(void **state)
{
    (void)state;
    static const char *const targets[] = {"process", "kubernetes"};
    for (int seq = 0; seq < 24; seq++) {
        const struct sample *base = &samples[seq % 5];
        struct sim s;
        sim_init(&s, targets[seq % 2]);
        json_t *objects = load_sample(base);
        assert_true(sim_converge(&s, objects, FRESH_BOUND) > 0);
        json_t *cluster = resolved_of(&s, objects);
        json_decref(objects);
        for (int step = 0; step < 4; step++) {
            char what[96];
            unsigned kind = next_random(4);
            if (kind == 0)
                edit_scale(cluster, what, sizeof(what));
            else if (kind == 1)
                edit_add_cell(cluster, seq * 10 + step, what, sizeof(what));
            else if (kind == 2)
                edit_restart_setting(cluster, what, sizeof(what));
            else
                edit_reload_setting(cluster, what, sizeof(what));
            objects = json_pack("[O]", cluster);
            int passes = sim_converge(&s, objects, EDIT_BOUND);
            if (passes < 0)
                fail_msg("sequence %d (%s, %s) step %d (%s): no convergence: %s", seq, base->name,
                         s.target, step, what, s.violation);
            if (count_instances(&s) != expected_instances(cluster))
                fail_msg("sequence %d step %d (%s): %zu instances, want %zu", seq, step, what,
                         count_instances(&s), expected_instances(cluster));
            assert_quiet_pass(&s, objects, what);
            json_decref(objects);
        }
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
