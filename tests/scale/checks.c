/* cmocka checks of the scale tests; see checks.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../topology/topo_wire.h"
#include "checks.h"

#define POOLERS_PREFIX "/multigres/global/poolers/"

void check_instance_names(struct scenario *s)
{
    char stem[64] = "";
    for (int i = 0; i < s->host.ninst; i++) {
        const struct phost_object *o = &s->host.inst[i];
        const json_t *index = json_object_get(json_object_get(o->object, "spec"), "index");
        char suffix[24];
        assert_true(json_is_integer(index));
        (void)snprintf(suffix, sizeof(suffix), "-%lld", (long long)json_integer_value(index));
        size_t len = strlen(o->name), slen = strlen(suffix);
        if (len <= slen || strcmp(o->name + len - slen, suffix) != 0)
            fail_msg("instance %s of index %s does not end with %s", o->name, suffix + 1, suffix);
        if (!stem[0])
            (void)snprintf(stem, sizeof(stem), "%.*s", (int)(len - slen), o->name);
        else if (strlen(stem) != len - slen || strncmp(stem, o->name, len - slen) != 0)
            fail_msg("instance %s does not share the stem %s of the others", o->name, stem);
    }
}

void check_converge(struct scenario *s, int timeout_ms, const char *what)
{
    int64_t t0 = scenario_now_ms();
    int steps = s->host.steps, watched = s->watched_steps;
    int rc = phost_converge(&s->host, timeout_ms);
    print_message("%s: %s after %lld ms (%d steps, %d observed; so far %d transient, %d "
                  "injected faults seen, %d writer checks, %d acknowledged-drain checks, %d "
                  "checks after deletes)\n",
                  what, rc == 0 ? "converged" : "FAILED", (long long)(scenario_now_ms() - t0),
                  s->host.steps - steps, s->watched_steps - watched, s->transients, s->faults,
                  s->writer_checks, s->ack_checks, s->delete_checks);
    if (rc != 0)
        print_error("%s: %s (observer: %s)\n", what, s->host.error, s->violation);
    assert_int_equal(rc, 0);
    assert_string_equal(s->violation, "");
    assert_int_equal(s->watched_steps - watched, s->host.steps - steps);
    check_instance_names(s);
}

void check_step(struct scenario *s, const char *what)
{
    int watched = s->watched_steps;
    int rc = phost_step(&s->host, NULL);
    if (rc != 0)
        print_error("%s: step %d: %s (observer: %s)\n", what, s->host.steps, s->host.error,
                    s->violation);
    assert_int_equal(rc, 0);
    assert_string_equal(s->violation, "");
    assert_int_equal(s->watched_steps, watched + 1);
}

void check_writes(struct scenario *s, const char *when)
{
    char report[1024];
    int rc = scenario_check_writes(s, report, sizeof(report));
    print_message("%s: %s\n", when, report);
    assert_int_equal(rc, 0);
}

void check_no_failed_commits(struct scenario *s, const struct writer_stats *before,
                             const char *when)
{
    struct writer_stats now;
    writer_get_stats(s->writer, &now);
    print_message("%s: %zu commits acknowledged, %zu failed, %zu timed out meanwhile\n", when,
                  now.acked - before->acked, now.failed - before->failed,
                  now.timed_out - before->timed_out);
    if (now.failed != before->failed)
        print_error("%s: last failure: %s\n", when, now.last_error);
    assert_true(now.acked > before->acked);
    assert_int_equal(now.failed, before->failed);
    assert_int_equal(now.timed_out, before->timed_out);
}

const char *check_name_at(struct scenario *s, int index)
{
    struct phost_object *o = phost_instance_at(&s->host, index);
    char suffix[24];
    assert_non_null(o);
    (void)snprintf(suffix, sizeof(suffix), "-%d", index);
    assert_true(strlen(o->name) > strlen(suffix));
    assert_string_equal(o->name + strlen(o->name) - strlen(suffix), suffix);
    return o->name;
}

void check_sync_set(struct scenario *s, const int *indexes, int n)
{
    char want[1024] = "ANY 1 (", out[1100];
    size_t used;
    for (int i = 0; i < n; i++) {
        used = strlen(want);
        (void)snprintf(want + used, sizeof(want) - used, "%s\"%s\"", i ? ", " : "",
                       check_name_at(s, indexes[i]));
    }
    used = strlen(want);
    (void)snprintf(want + used, sizeof(want) - used, ")");
    assert_true(phost_probe_primary(&s->host) >= 0);
    assert_int_equal(pg_sql(&s->host.shard, s->host.primary, "SHOW synchronous_standby_names", 5000,
                            out, sizeof(out)),
                     0);
    assert_string_equal(out, want);
}

void check_streaming(struct scenario *s, int standbys)
{
    char expect[16];
    (void)snprintf(expect, sizeof(expect), "%d", standbys);
    assert_true(phost_probe_primary(&s->host) >= 0);
    assert_int_equal(pg_sql_wait(&s->host.shard, s->host.primary,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 expect, 10000),
                     0);
}

/* ---- the pooler records, read from etcd ------------------------------------------------- */

static int pb_str_is(const struct pb_msg *m, uint32_t num, const char *want)
{
    const struct pb_field *f = pb_get(m, num, 0);
    return f && f->wt == PB_WT_LEN && f->len == strlen(want) && memcmp(f->p, want, f->len) == 0;
}

static uint64_t pb_varint_of(const struct pb_msg *m, uint32_t num, uint64_t absent)
{
    const struct pb_field *f = pb_get(m, num, 0);
    return f && f->wt == PB_WT_VARINT ? f->v : absent;
}

/* port_map (field 9, map entries {1 key, 2 value}) value of `key`, or -1. */
static long pb_port(const struct pb_msg *m, const char *key)
{
    for (size_t i = 0; i < pb_count(m, 9); i++) {
        const struct pb_field *f = pb_get(m, 9, i);
        struct pb_msg *e = malloc(sizeof(*e));
        long port = -1;
        if (e && f->wt == PB_WT_LEN && pb_parse(f->p, f->len, e) == 0 && pb_str_is(e, 1, key))
            port = (long)pb_varint_of(e, 2, 0);
        free(e);
        if (port >= 0)
            return port;
    }
    return -1;
}

static void check_pooler(const struct kv *kv, const char *name, int port, int primary)
{
    struct pb_msg *m = malloc(sizeof(*m)), *id = malloc(sizeof(*id)), *key = malloc(sizeof(*key)),
                  *route = malloc(sizeof(*route));
    assert_true(m && id && key && route);
    assert_int_equal(pb_parse(kv->value, kv->len, m), 0);
    const struct pb_field *f = pb_get(m, 1, 0);
    assert_true(f && f->wt == PB_WT_LEN && pb_parse(f->p, f->len, id) == 0);
    assert_int_equal(pb_varint_of(id, 1, 0), 1); /* MULTIPOOLER */
    assert_true(pb_str_is(id, 2, "z1"));
    if (!pb_str_is(id, 3, name))
        fail_msg("%s: its record's id names another instance", kv->key);
    f = pb_get(m, 2, 0);
    assert_true(f && f->wt == PB_WT_LEN && pb_parse(f->p, f->len, key) == 0);
    assert_true(pb_str_is(key, 1, "postgres") && pb_str_is(key, 2, "default") &&
                pb_str_is(key, 3, "0-inf"));
    assert_int_equal(pb_port(m, "postgres"), port);
    assert_true(pb_str_is(m, 8, "127.0.0.1"));
    assert_int_equal(pb_varint_of(m, 7, 0), 0); /* SERVING */
    f = pb_get(m, 13, 0);
    assert_true(f && f->wt == PB_WT_LEN && pb_parse(f->p, f->len, route) == 0);
    if (pb_varint_of(route, 1, 0) != (primary ? 1u : 2u))
        fail_msg("%s: routing_state.role %llu, the instance is a %s", kv->key,
                 (unsigned long long)pb_varint_of(route, 1, 0), primary ? "primary" : "standby");
    free(m);
    free(id);
    free(key);
    free(route);
}

void check_topology(struct scenario *s, const char *const *gone, int n_gone)
{
    struct kv *kvs = calloc(16, sizeof(*kvs));
    assert_non_null(kvs);
    long n = etcd_range(s->etcd.endpoint, POOLERS_PREFIX, kvs, 16, NULL);
    int primary = phost_probe_primary(&s->host);
    assert_true(primary >= 0);
    print_message("etcd: %ld records under %s for %d instances\n", n, POOLERS_PREFIX,
                  s->host.ninst);
    for (long i = 0; i < n && i < 16; i++)
        print_message("  %s (%zu bytes, mod revision %lld)\n", kvs[i].key, kvs[i].len,
                      (long long)kvs[i].mod_revision);
    assert_int_equal(n, s->host.ninst);
    for (int i = 0; i < s->host.ninst; i++) {
        const struct phost_object *o = &s->host.inst[i];
        char want[300];
        long k = 0;
        (void)snprintf(want, sizeof(want), POOLERS_PREFIX "multipooler-z1-%s/Pooler", o->name);
        while (k < n && strcmp(kvs[k].key, want) != 0)
            k++;
        if (k == n)
            fail_msg("no record %s in etcd", want);
        check_pooler(&kvs[k], o->name, s->host.shard.nodes[o->node].port, o->node == primary);
    }
    for (int g = 0; g < n_gone; g++) {
        char key[300];
        (void)snprintf(key, sizeof(key), POOLERS_PREFIX "multipooler-z1-%s/Pooler", gone[g]);
        for (long k = 0; k < n; k++)
            if (strcmp(kvs[k].key, key) == 0)
                fail_msg("%s is gone and still has its record %s", gone[g], key);
    }
    free(kvs);
}

/* ---- plans and the host's log ----------------------------------------------------------- */

void check_name_for_index(struct scenario *s, int of, int index, char *out, size_t size)
{
    const char *known = check_name_at(s, of);
    char suffix[24];
    (void)snprintf(suffix, sizeof(suffix), "-%d", of);
    size_t stem = strlen(known) - strlen(suffix);
    (void)snprintf(out, size, "%.*s-%d", (int)stem, known, index);
}

static json_t *scale_plan(struct scenario *s, int replicas)
{
    json_t *req = json_pack("{s:s, s:i, s:o}", "pool", "main", "replicas", replicas, "observed",
                            phost_observed(&s->host));
    if (s->host.spec_object)
        json_object_set_new(req, "objects", json_pack("[O]", s->host.spec_object));
    else
        json_object_set_new(
            req, "manifests",
            json_pack("[{s:s, s:s}]", "source", "cluster.yaml", "text", s->host.spec_text));
    char *body = json_dumps(req, JSON_COMPACT), *res = NULL;
    size_t len = 0;
    json_decref(req);
    assert_non_null(body);
    int32_t rc = mgo_scale(s->plugin, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    char *dump = json_dumps(r, JSON_COMPACT);
    print_message("mgo_scale to %d: %d %s\n", replicas, rc, dump ? dump : "");
    free(dump);
    assert_int_equal(rc, MGO_OK);
    assert_non_null(r);
    return r;
}

json_t *check_resize(struct scenario *s, int from, int to, int waiting)
{
    json_t *plan = scale_plan(s, to);
    assert_string_equal(json_string_value(json_object_get(plan, "cluster")), "t");
    assert_string_equal(json_string_value(json_object_get(plan, "pool")), "main");
    assert_int_equal(json_integer_value(json_object_get(plan, "from")), from);
    assert_int_equal(json_integer_value(json_object_get(plan, "to")), to);
    assert_string_equal(json_string_value(json_object_get(plan, "path")),
                        "spec.databases[0].tablegroups[0].shards[0].spec.pools[main]."
                        "replicasPerCell");
    assert_int_equal(json_array_size(json_object_get(plan, "cells")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(plan, "cells"), 0)), "z1");
    const json_t *spec = json_object_get(plan, "spec");
    const json_t *shard = json_array_get(
        json_object_get(
            json_array_get(
                json_object_get(
                    json_array_get(json_object_get(json_object_get(spec, "spec"), "databases"), 0),
                    "tablegroups"),
                0),
            "shards"),
        0);
    const json_t *pool =
        json_object_get(json_object_get(json_object_get(shard, "spec"), "pools"), "main");
    assert_int_equal(json_integer_value(json_object_get(pool, "replicasPerCell")), to);
    if (waiting >= 0)
        assert_int_equal(json_array_size(json_object_get(plan, "waiting_for")), waiting);
    assert_int_equal(phost_set_spec_object(&s->host, spec), 0);
    return plan;
}

void check_plan_drains(const json_t *plan, const char *const *names, const char *const *roles,
                       const int *ready, int n)
{
    const json_t *drain = json_object_get(plan, "drain");
    assert_int_equal(json_array_size(drain), n);
    for (int k = 0; k < n; k++) {
        const json_t *d = json_array_get(drain, (size_t)k);
        const char *dash = strrchr(names[k], '-');
        assert_string_equal(json_string_value(json_object_get(d, "name")), names[k]);
        assert_int_equal(json_integer_value(json_object_get(d, "index")), atoi(dash + 1));
        assert_string_equal(json_string_value(json_object_get(d, "pool")), "main");
        assert_string_equal(json_string_value(json_object_get(d, "cell")), "z1");
        assert_int_equal(json_is_true(json_object_get(d, "ready")), ready[k]);
        assert_string_equal(json_string_value(json_object_get(d, "role")), roles[k]);
        assert_string_equal(json_string_value(json_object_get(d, "volume")), "Delete");
    }
}

static const char *log_str(const json_t *e, const char *key)
{
    const char *v = json_string_value(json_object_get(e, key));
    return v ? v : "";
}

int check_drains_requested(struct scenario *s, size_t mark, char names[][64], int max)
{
    int n = 0;
    for (size_t k = mark; k < json_array_size(s->host.log) && n < max; k++) {
        const json_t *e = json_array_get(s->host.log, k);
        const char *state = json_string_value(
            json_object_get(json_object_get(e, "annotations"), "drain.multigres.com/state"));
        if (strcmp(log_str(e, "op"), "annotate") == 0 && state && strcmp(state, "requested") == 0)
            (void)snprintf(names[n++], 64, "%s", log_str(e, "instance"));
    }
    return n;
}

int check_requested_at(struct scenario *s, size_t mark, const char *name)
{
    for (size_t k = mark; k < json_array_size(s->host.log); k++) {
        const json_t *e = json_array_get(s->host.log, k);
        const char *state = json_string_value(
            json_object_get(json_object_get(e, "annotations"), "drain.multigres.com/state"));
        if (strcmp(log_str(e, "op"), "annotate") == 0 &&
            strcmp(log_str(e, "instance"), name) == 0 && state && strcmp(state, "requested") == 0)
            return (int)k;
    }
    return -1;
}

void check_one_at_a_time(struct scenario *s, size_t mark, const char *const *names, int n)
{
    char order[16][64];
    int got = check_drains_requested(s, mark, order, 16);
    for (int i = 0; i < got; i++)
        print_message("  drain %d requested: %s\n", i + 1, order[i]);
    assert_int_equal(got, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(order[i], names[i]);
        assert_int_equal(scenario_count_ops(s, mark, "delete", names[i]), 1);
        int requested = check_requested_at(s, mark, names[i]);
        int deleted = scenario_first_op(s, mark, "delete", names[i]);
        assert_true(requested >= 0 && requested < deleted);
        if (i > 0) {
            /* no new drain in a pass that deletes (lifecycle.md "How a reconcile pass
             * decides" 3): a later step */
            int before = scenario_first_op(s, mark, "delete", names[i - 1]);
            assert_true(before >= 0);
            long at = (long)json_integer_value(
                     json_object_get(json_array_get(s->host.log, (size_t)requested), "step")),
                 gone = (long)json_integer_value(
                     json_object_get(json_array_get(s->host.log, (size_t)before), "step"));
            print_message("  %s requested at step %ld, after %s was deleted at step %ld\n",
                          names[i], at, names[i - 1], gone);
            assert_true(before < requested);
            assert_true(gone < at);
        }
    }
}

int check_drain_went_through(struct scenario *s, size_t mark, const char *name, const char *what)
{
    for (size_t k = mark; k < json_array_size(s->host.log); k++) {
        const json_t *e = json_array_get(s->host.log, k);
        if (strcmp(log_str(e, "op"), "drain") == 0 && strcmp(log_str(e, "instance"), name) == 0 &&
            strstr(log_str(e, "to"), what))
            return 1;
    }
    return 0;
}
