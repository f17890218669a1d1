/*
 * The pool instances of each shard: create every missing one at once; remove an instance only
 * after its drain reached ready-for-deletion; start at most one drain per shard at a time, for a
 * scale-down (behind a health gate) or for one rolling step (standbys first in index order, the
 * primary last). The drain itself is mgo_drain's business; here it is requested, cancelled
 * when it became pointless, and finished.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "render/render.h"
#include "reconcile/reconcile.h"

/* Rolling order: cell by cell in the order of spec.cells, then the index as a number. */
int plan_inst_cmp(const void *a, const void *b)
{
    const struct plan_inst *x = a, *y = b;
    if (x->cell_pos != y->cell_pos)
        return x->cell_pos < y->cell_pos ? -1 : 1;
    if (x->index != y->index)
        return x->index < y->index ? -1 : 1;
    int pools = strcmp(x->g ? x->g->pool : "", y->g ? y->g->pool : "");
    return pools ? pools : strcmp(x->name, y->name);
}

static int is_primary(const json_t *obs)
{
    const char *role = plan_str(obs, "role");
    return role && strcasecmp(role, "primary") == 0;
}

void plan_inst_observe(struct plan_inst *x, const json_t *obs)
{
    x->obs = obs;
    x->drain = plan_annotation(obs, RECONCILE_DRAIN_STATE);
    x->ready = json_is_true(json_object_get(obs, "ready"));
    x->primary = is_primary(obs);
    x->deleting = json_is_true(json_object_get(obs, "deleting"));
    x->current = x->desired && plan_hash(obs) && plan_hash(x->desired) &&
                 strcmp(plan_hash(obs), plan_hash(x->desired)) == 0;
}

const struct model_group *plan_shard_group(const struct model_shard *s, const json_t *labels)
{
    const char *pool = plan_str(labels, "multigres.com/pool");
    const char *cell = plan_str(labels, "multigres.com/cell");
    for (size_t i = 0; pool && cell && i < s->ngroups; i++)
        if (strcmp(s->groups[i].pool, pool) == 0 && strcmp(s->groups[i].cell, cell) == 0)
            return &s->groups[i];
    return NULL;
}

const struct model_group *plan_group_of(const struct model *m, const json_t *labels)
{
    for (size_t i = 0; i < m->nshards; i++)
        if (plan_in_shard(&m->shards[i], labels))
            return plan_shard_group(&m->shards[i], labels);
    return NULL;
}

int plan_in_shard(const struct model_shard *s, const json_t *labels)
{
    const char *db = plan_str(labels, "multigres.com/database");
    const char *tg = plan_str(labels, "multigres.com/tablegroup");
    const char *sh = plan_str(labels, "multigres.com/shard");
    return db && tg && sh && strcmp(db, s->database) == 0 && strcmp(tg, s->tablegroup) == 0 &&
           strcmp(sh, s->shard) == 0;
}

/* The observed instance `name` under `kind`, or under either instance kind when kind is NULL. */
static const json_t *observed_instance(const json_t *observed, const char *kind, const char *name)
{
    char key[600];
    if (kind)
        return json_object_get(observed, plan_kind_key(kind, name, key, sizeof(key)));
    const json_t *o =
        json_object_get(observed, plan_kind_key(RENDER_KIND_POD, name, key, sizeof(key)));
    return o ? o
             : json_object_get(observed,
                               plan_kind_key(RENDER_KIND_INSTANCE, name, key, sizeof(key)));
}

static void place_cells(const struct model *m, struct plan_inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        v[i].cell_pos = m->ncells;
        for (size_t c = 0; v[i].g && c < m->ncells; c++)
            if (strcmp(m->cells[c].name, v[i].g->cell) == 0)
                v[i].cell_pos = c;
    }
}

int plan_collect(const struct model *m, const struct model_shard *s, const json_t *observed,
                 const struct plan_wanted *w, struct plan_shard_instances *ret)
{
    size_t cap = 1 + json_object_size(observed), n = 0;
    for (size_t i = 0; i < s->ngroups; i++)
        cap += (size_t)s->groups[i].replicas;
    struct plan_inst *v = core_calloc(cap, sizeof(*v));
    char(*names)[PLAN_INSTANCE_NAME_MAX] = core_calloc(cap, sizeof(*names));
    if (!v || !names)
        goto fail;
    for (size_t i = 0; i < s->ngroups; i++)
        for (int k = 0; k < s->groups[i].replicas; k++) {
            model_instance_name(&s->groups[i], k, names[n], sizeof(names[n]));
            const json_t *d = w->instance(w->ctx, &s->groups[i], k, names[n]);
            if (!d)
                continue;
            struct plan_inst *x = &v[n];
            x->name = names[n++];
            x->desired = d;
            x->g = &s->groups[i];
            x->index = k;
            const json_t *obs = observed_instance(observed, plan_str(d, "kind"), x->name);
            if (obs)
                plan_inst_observe(x, obs);
        }
    const char *key;
    const json_t *o;
    json_object_foreach ((json_t *)observed, key, o) {
        const json_t *labels = json_object_get(o, "labels");
        if (!plan_is_instance_kind(plan_str(o, "kind")) || !plan_in_shard(s, labels) ||
            w->wants(w->ctx, key, o))
            continue;
        struct plan_inst *x = &v[n++];
        x->name = plan_str(o, "name");
        x->g = plan_shard_group(s, labels);
        x->index = x->g ? model_instance_index(x->g->pod_base, x->name) : -1;
        plan_inst_observe(x, o);
    }
    place_cells(m, v, n);
    qsort(v, n, sizeof(*v), plan_inst_cmp);
    ret->v = v;
    ret->n = n;
    ret->names = names;
    return 0;
fail:
    core_free(v);
    core_free(names);
    return -ENOMEM;
}

void plan_shard_instances_fini(struct plan_shard_instances *si)
{
    core_free(si->v);
    core_free(si->names);
    memset(si, 0, sizeof(*si));
}

/* Is x a better scale-down victim than y? Never the primary while another candidate exists;
 * a not-ready one first; then the highest index (an instance with no index first); then the
 * cell listed last in spec.cells; then the pool whose name sorts last. */
int plan_better_victim(const struct plan_inst *x, const struct plan_inst *y)
{
    if (x->primary != y->primary)
        return !x->primary;
    if (x->ready != y->ready)
        return !x->ready;
    long xi = x->index < 0 ? 1L << 30 : x->index, yi = y->index < 0 ? 1L << 30 : y->index;
    if (xi != yi)
        return xi > yi;
    if (x->cell_pos != y->cell_pos)
        return x->cell_pos > y->cell_pos;
    int pools = strcmp(x->g ? x->g->pool : "", y->g ? y->g->pool : "");
    return pools ? pools > 0 : strcmp(x->name, y->name) > 0;
}

static void request_drain(struct plan *p, const struct plan_inst *x, const char *reason,
                          const char *why)
{
    char at[40];
    plan_rfc3339(p->in->now_ms, at, sizeof(at));
    plan_annotate(p, x->obs, RECONCILE_DRAIN_STATE, "requested", RECONCILE_DRAIN_REQUESTED_AT, at);
    plan_event(p, "Normal", reason, plan_str(x->obs, "kind"), x->name, "drain requested: %s", why);
    p->busy = 1;
}

/* The volume of an instance deleted after its drain: kept for a rolling update (the index
 * stays in the spec), otherwise it follows the pool's whenScaled policy. */
static void finish_volume(struct plan *p, const struct plan_inst *x)
{
    if (!x->g || (x->index >= 0 && x->index < x->g->replicas) || !x->g->when_scaled_delete)
        return;
    const char *kind = strcmp(plan_str(x->obs, "kind"), RENDER_KIND_POD) == 0 ? RENDER_KIND_PVC
                                                                              : RENDER_KIND_VOLUME;
    char name[300], key[600];
    int w = snprintf(name, sizeof(name), "%s%s", strcmp(kind, RENDER_KIND_PVC) == 0 ? "data-" : "",
                     x->name);
    if (w < 0 || (size_t)w >= sizeof(name))
        return; /* no volume of ours has such a name */
    const json_t *vol = json_object_get(p->observed, plan_kind_key(kind, name, key, sizeof(key)));
    if (vol && !json_is_true(json_object_get(vol, "deleting")))
        plan_delete(p, vol, "scaled-down");
    if (vol && json_object_set_new(p->handled, key, json_true()))
        p->oom = 1;
}

/* A drain past its deadline is reported on every pass until it finishes; nothing is forced. */
static void report_overdue(struct plan *p, const struct plan_inst *x)
{
    int64_t at = plan_parse_rfc3339(plan_annotation(x->obs, RECONCILE_DRAIN_REQUESTED_AT));
    if (at < 0 || p->in->now_ms - at <= RECONCILE_DRAIN_DEADLINE_MS)
        return;
    p->overdue++;
    plan_event(p, "Warning", "DrainOverdue", plan_str(x->obs, "kind"), x->name,
               "drain in state %s since %s, past its %d-minute deadline; it keeps retrying",
               x->drain, plan_annotation(x->obs, RECONCILE_DRAIN_REQUESTED_AT),
               RECONCILE_DRAIN_DEADLINE_MS / 60000);
}

/* The data volume of instance `name` when observed: a PVC for a Pod, a Volume for an Instance,
 * either when the instance's kind is not known (NULL). */
static const json_t *volume_of(const json_t *observed, const char *instance_kind, const char *name)
{
    char vol[300], key[600];
    const json_t *found = NULL;
    if (!instance_kind || strcmp(instance_kind, RENDER_KIND_POD) == 0) {
        int w = snprintf(vol, sizeof(vol), "data-%s", name);
        if (w > 0 && (size_t)w < sizeof(vol))
            found =
                json_object_get(observed, plan_kind_key(RENDER_KIND_PVC, vol, key, sizeof(key)));
    }
    if (!found && (!instance_kind || strcmp(instance_kind, RENDER_KIND_INSTANCE) == 0))
        found =
            json_object_get(observed, plan_kind_key(RENDER_KIND_VOLUME, name, key, sizeof(key)));
    return found;
}

/* Process target: the reload-class settings changed and the spec did not: the host rewrites
 * them and reloads, in place (docs/spec/render-process.md). */
static int needs_reload(const struct plan_inst *x)
{
    const char *want = plan_annotation(x->desired, RENDER_RELOAD_HASH);
    const char *have = plan_annotation(x->obs, RENDER_RELOAD_HASH);
    return x->current && !x->drain && strcmp(plan_str(x->obs, "kind"), RENDER_KIND_INSTANCE) == 0 &&
           want && (!have || strcmp(want, have) != 0);
}

enum plan_step plan_inst_step(const json_t *observed, const struct plan_inst *x)
{
    if (!x->obs) {
        const json_t *vol = volume_of(observed, plan_str(x->desired, "kind"), x->name);
        /* its old volume is still going: it is created on a fresh one after */
        return vol && json_is_true(json_object_get(vol, "deleting")) ? PLAN_STEP_OLD_VOLUME
                                                                     : PLAN_STEP_CREATE;
    }
    if (x->deleting)
        return PLAN_STEP_DELETING;
    if (x->drain && strcmp(x->drain, "ready-for-deletion") == 0)
        return PLAN_STEP_DELETE;
    /* A reverted scale-down or an already-current instance: nothing left to drain for. */
    if (x->drain && strcmp(x->drain, "requested") == 0 && x->desired && x->current)
        return PLAN_STEP_CANCEL;
    if (x->drain)
        return PLAN_STEP_DRAINING;
    return needs_reload(x) ? PLAN_STEP_RELOAD : PLAN_STEP_NONE;
}

/* Finish drains, cancel pointless ones, create what is missing, reload in place: the actions of
 * each instance's step (plan_inst_step). */
static void settle(struct plan *p, const struct plan_inst *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct plan_inst *x = &v[i];
        switch (plan_inst_step(p->observed, x)) {
        case PLAN_STEP_NONE:
            continue;
        case PLAN_STEP_CREATE:
            plan_apply(p, x->desired, "create");
            plan_event(p, "Normal", "Created", plan_str(x->desired, "kind"), x->name,
                       "instance %ld of pool %s in cell %s", x->index, x->g->pool, x->g->cell);
            break;
        case PLAN_STEP_OLD_VOLUME:
        case PLAN_STEP_DELETING:
            break;
        case PLAN_STEP_DELETE:
            plan_delete(p, x->obs, "drained");
            plan_event(p, "Normal", "Deleted", plan_str(x->obs, "kind"), x->name,
                       "drain complete; instance removed");
            finish_volume(p, x);
            break;
        case PLAN_STEP_CANCEL:
            plan_annotate(p, x->obs, RECONCILE_DRAIN_STATE, NULL, RECONCILE_DRAIN_REQUESTED_AT,
                          NULL);
            plan_event(p, "Normal", "DrainCancelled", plan_str(x->obs, "kind"), x->name,
                       "the spec wants this instance as it is");
            break;
        case PLAN_STEP_DRAINING:
            report_overdue(p, x);
            break;
        case PLAN_STEP_RELOAD:
            plan_apply(p, x->desired, "reload");
            plan_event(p, "Normal", "ReloadRequested", plan_str(x->obs, "kind"), x->name,
                       "reload-class PostgreSQL settings changed: apply them in place");
            break;
        }
        p->busy = 1;
    }
}

size_t plan_blockers(const json_t *observed, const struct plan_inst *v, size_t n,
                     const struct plan_inst *gate_for, struct plan_blocker *out)
{
    size_t primaries = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        primaries += v[i].obs && v[i].primary;
    for (size_t i = 0; i < n; i++) {
        const struct plan_inst *x = &v[i];
        struct plan_blocker b = {.x = x, .step = plan_inst_step(observed, x)};
        if (b.step != PLAN_STEP_NONE)
            b.why = PLAN_WAIT_STEP;
        else if (primaries > 1 && x->obs && x->primary)
            b.why = PLAN_WAIT_PRIMARIES;
        else if (gate_for && x != gate_for && x->desired && !x->ready)
            b.why = PLAN_WAIT_GATE;
        else
            continue;
        out[k++] = b;
    }
    return k;
}

/* A step in words, or NULL for a drain under way (its state is named). */
static const char *step_in_words(enum plan_step step)
{
    switch (step) {
    case PLAN_STEP_CREATE:
        return "does not exist yet";
    case PLAN_STEP_OLD_VOLUME:
        return "its old volume is being deleted";
    case PLAN_STEP_DELETING:
        return "being deleted";
    case PLAN_STEP_CANCEL:
        return "drain being cancelled";
    case PLAN_STEP_RELOAD:
        return "settings being reloaded";
    case PLAN_STEP_DELETE:
    case PLAN_STEP_DRAINING:
    case PLAN_STEP_NONE:
        break;
    }
    return NULL;
}

const char *plan_blocker_reason(const struct plan_blocker *b, char *buf, size_t size)
{
    const char *what = b->why == PLAN_WAIT_PRIMARIES ? "one of several primaries"
                       : b->why == PLAN_WAIT_GATE    ? "not ready"
                                                     : step_in_words(b->step);
    if (what)
        (void)snprintf(buf, size, "%s", what);
    else
        (void)snprintf(buf, size, "drain under way (%.60s)", b->x->drain ? b->x->drain : "");
    core_utf8_sanitize(buf); /* the drain state is host text, cut anywhere */
    return buf;
}

/* The first blocker of kind `why`, or NULL. */
static const struct plan_blocker *first_blocker(const struct plan_blocker *b, size_t n,
                                                enum plan_wait why)
{
    for (size_t i = 0; i < n; i++)
        if (b[i].why == why)
            return &b[i];
    return NULL;
}

/* The scale-down victim: among the instances the spec no longer wants (lifecycle.md "Scale
 * down"), or NULL. */
static const struct plan_inst *scale_down_victim(const struct plan_inst *v, size_t n)
{
    const struct plan_inst *victim = NULL;
    for (size_t i = 0; i < n; i++)
        if (!v[i].desired && (!victim || plan_better_victim(&v[i], victim)))
            victim = &v[i];
    return victim;
}

/* The next rolling step: a drifted standby (a not-ready one first, as replacing it risks
 * nothing), in index order; the primary only when it is the last drifted instance. NULL: none. */
static const struct plan_inst *rolling_pick(const struct plan_inst *v, size_t n)
{
    const struct plan_inst *pick = NULL, *primary = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct plan_inst *x = &v[i];
        if (!x->desired || x->current)
            continue;
        if (x->primary) {
            primary = primary ? primary : x;
        } else if (!pick || (!x->ready && pick->ready)) {
            pick = x;
        }
    }
    return pick ? pick : primary;
}

/* More than one instance reported primary: a failure to report, and no planned step. */
static void report_two_primaries(struct plan *p, const struct model_shard *s,
                                 const struct plan_blocker *b, size_t n)
{
    const struct plan_blocker *first = first_blocker(b, n, PLAN_WAIT_PRIMARIES);
    const struct plan_blocker *second =
        first ? first_blocker(first + 1, n - 1 - (size_t)(first - b), PLAN_WAIT_PRIMARIES) : NULL;
    if (!second)
        return;
    char what[700];
    (void)snprintf(what, sizeof(what), "shard %s/%s/%s has two primaries: %s and %s", s->database,
                   s->tablegroup, s->shard, first->x->name, second->x->name);
    core_utf8_sanitize(what);
    p->failed++;
    if (json_array_append_new(p->failures, json_string(what)))
        p->oom = 1;
}

/*
 * At most one new drain per shard: for a scale-down (the victim), else for the next rolling
 * step; none while plan_blockers names anything. Only a not-ready standby may be replaced
 * while others are not ready (it serves nothing): no health gate for it.
 */
static void start_drain(struct plan *p, const struct model_shard *s, const struct plan_inst *v,
                        size_t n, struct plan_blocker *why)
{
    const struct plan_inst *victim = scale_down_victim(v, n);
    const struct plan_inst *pick = victim ? victim : rolling_pick(v, n);
    const struct plan_inst *gate_for =
        victim || (pick && (pick->ready || pick->primary)) ? pick : NULL;
    size_t nwhy = plan_blockers(p->observed, v, n, gate_for, why);
    const struct plan_blocker *unready = first_blocker(why, nwhy, PLAN_WAIT_GATE);
    if (first_blocker(why, nwhy, PLAN_WAIT_STEP))
        return; /* a step under way (settle): it finishes first */
    if (first_blocker(why, nwhy, PLAN_WAIT_PRIMARIES)) {
        report_two_primaries(p, s, why, nwhy); /* never a step while two may take writes */
    } else if (unready && victim) {
        plan_event(p, "Warning", "ScaleDownBlocked", plan_str(pick->obs, "kind"), pick->name,
                   "shard %s/%s/%s: waiting for %s to be ready before removing an instance",
                   s->database, s->tablegroup, s->shard, unready->x->name);
        p->blocked = 1;
    } else if (unready) {
        plan_event(p, "Warning", "RollingUpdateBlocked", plan_str(pick->obs, "kind"), pick->name,
                   "shard %s/%s/%s: waiting for %s to be ready before the next rolling step",
                   s->database, s->tablegroup, s->shard, unready->x->name);
        p->blocked = 1;
    } else if (victim) {
        request_drain(p, victim, "DrainStarted", "scale-down: the spec no longer wants it");
    } else if (pick) {
        request_drain(p, pick, pick->primary ? "RollingUpdateStarted" : "PodUpdated",
                      pick->primary ? "rolling update: the primary is last, through a switchover"
                                    : "rolling update: the spec changed");
    }
}

static int add_status(struct plan *p, const struct model_shard *s, const struct plan_inst *v,
                      size_t n)
{
    int any_primary_ready = 0, any_ready = 0, roles_known = 0;
    for (size_t i = 0; i < n; i++) {
        const struct plan_inst *x = &v[i];
        roles_known |= x->obs && plan_str(x->obs, "role") != NULL;
        any_ready |= x->ready;
        any_primary_ready |= x->ready && x->primary;
        if (x->desired) {
            p->instances_total++;
            p->instances_ready += x->ready;
            p->instances_current += x->current;
            p->drifted += x->obs && !x->current;
        }
        json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:I, s:b, s:b, s:b, s:s?, s:s?}",
                              "name", x->name, "database", s->database, "tablegroup", s->tablegroup,
                              "shard", s->shard, "pool", x->g ? x->g->pool : NULL, "cell",
                              x->g ? x->g->cell : NULL, "index", (json_int_t)x->index, "exists",
                              x->obs != NULL, "ready", x->ready, "updated", x->current, "role",
                              x->obs ? plan_str(x->obs, "role") : NULL, "drain", x->drain);
        if (!e || json_array_append_new(p->instances, e))
            return -1;
    }
    if (!(roles_known ? any_primary_ready : any_ready)) {
        char shard[200];
        (void)snprintf(shard, sizeof(shard), "%s/%s/%s", s->database, s->tablegroup, s->shard);
        if (json_array_append_new(p->unavailable, json_string(shard)))
            return -1;
    }
    for (size_t g = 0; g < s->ngroups; g++) {
        int ready = 0, updated = 0, exist = 0;
        for (size_t i = 0; i < n; i++)
            if (v[i].g == &s->groups[g] && v[i].desired) {
                exist += v[i].obs != NULL;
                ready += v[i].ready;
                updated += v[i].current;
            }
        json_t *e =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i}", "database", s->database,
                      "tablegroup", s->tablegroup, "shard", s->shard, "pool", s->groups[g].pool,
                      "cell", s->groups[g].cell, "desired", s->groups[g].replicas, "existing",
                      exist, "ready", ready, "updated", updated);
        if (!e || json_array_append_new(p->pools, e))
            return -1;
    }
    return 0;
}

/* A data volume left behind by an instance deleted in an earlier pass (the host stopped between
 * the two deletions): it follows the same rule as when its instance went. */
static void sweep_volumes(struct plan *p, const struct model_shard *s)
{
    const char *key;
    const json_t *o;
    json_object_foreach (p->observed, key, o) {
        const char *kind = plan_str(o, "kind"), *name = plan_str(o, "name");
        const json_t *labels = json_object_get(o, "labels");
        const struct model_group *g = plan_shard_group(s, labels);
        if (!plan_is_volume_kind(kind) || !g || !plan_in_shard(s, labels) ||
            json_object_get(p->desired, key) || json_object_get(p->handled, key) ||
            json_is_true(json_object_get(o, "deleting")))
            continue;
        const char *inst =
            strncmp(name, "data-", 5) == 0 && strcmp(kind, RENDER_KIND_PVC) == 0 ? name + 5 : name;
        long index = model_instance_index(g->pod_base, inst);
        /* Its instance, by name, whatever its labels say (a relabelled instance still runs). */
        char k1[600], k2[600];
        int owner_alive =
            json_object_get(p->observed, plan_kind_key(RENDER_KIND_POD, inst, k1, sizeof(k1))) ||
            json_object_get(p->observed, plan_kind_key(RENDER_KIND_INSTANCE, inst, k2, sizeof(k2)));

        if (owner_alive || index < g->replicas || !g->when_scaled_delete)
            continue;
        plan_delete(p, o, "scaled-down");
        p->busy = 1;
    }
}

/* The pass's view of what the spec wants: the rendered objects. */
static const json_t *rendered_instance(void *ctx, const struct model_group *g, int index,
                                       const char *name)
{
    const struct plan *p = ctx;
    (void)g;
    (void)index;
    /* The target renders every instance (a Pod or an Instance); nothing to plan without it. */
    char key[600];
    const json_t *d =
        json_object_get(p->desired, plan_kind_key(RENDER_KIND_POD, name, key, sizeof(key)));
    return d ? d
             : json_object_get(p->desired,
                               plan_kind_key(RENDER_KIND_INSTANCE, name, key, sizeof(key)));
}

static int rendered_key(void *ctx, const char *key, const json_t *obs)
{
    const struct plan *p = ctx;
    (void)obs;
    return json_object_get(p->desired, key) != NULL;
}

static void plan_shard(struct plan *p, const struct model_shard *s)
{
    struct plan_wanted w = {.instance = rendered_instance, .wants = rendered_key, .ctx = p};
    struct plan_shard_instances si = {0};
    struct plan_blocker *why = NULL;
    if (plan_collect(p->in->m, s, p->observed, &w, &si) ||
        !(why = core_calloc(si.n + 1, sizeof(*why)))) {
        p->oom = 1;
        goto out;
    }
    settle(p, si.v, si.n);
    start_drain(p, s, si.v, si.n, why);
    sweep_volumes(p, s);
    if (add_status(p, s, si.v, si.n))
        p->oom = 1;
out:
    core_free(why);
    plan_shard_instances_fini(&si);
}

void plan_instances(struct plan *p)
{
    for (size_t i = 0; i < p->in->m->nshards; i++)
        plan_shard(p, &p->in->m->shards[i]);
}
