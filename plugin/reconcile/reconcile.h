/*
 * One level-triggered reconcile pass as pure data: desired objects (from a render target) and
 * the host's observed objects in, actions and status out. No I/O. Rules in docs/spec/lifecycle.md
 * and docs/abi.md ("mgo_reconcile"). Module prefix reconcile_.
 */
#ifndef MGO_RECONCILE_RECONCILE_H
#define MGO_RECONCILE_RECONCILE_H

#include <jansson.h>
#include <stdint.h>

#include "render/model.h"

#define RECONCILE_DRAIN_STATE        "drain.multigres.com/state"
#define RECONCILE_DRAIN_REQUESTED_AT "drain.multigres.com/requested-at"
/* A drain not finished this long after requested-at is reported (never forced). */
#define RECONCILE_DRAIN_DEADLINE_MS (5 * 60 * 1000)

struct reconcile_input {
    const struct model *m;
    const json_t *desired;  /* array of rendered objects (render.h) */
    const json_t *observed; /* {"objects": [...], "status": {...}}; NULL = nothing exists */
    int64_t now_ms;
    int64_t generation; /* metadata.generation of the cluster; < 0 when unknown */
    int deleting;       /* the cluster resource is being deleted */
    /* Topology registration's outcome, decided by the caller: NULL (not attempted), or
     * {"registered": bool, "reason": "...", "message": "...", "changed": bool}. */
    const json_t *topology;
};

struct reconcile_result {
    json_t *actions;          /* new array */
    json_t *status;           /* new object: the status to publish */
    int64_t requeue_after_ms; /* 0: no requeue needed */
};

/* Plan one pass. 0 or -ENOMEM (then nothing is returned). */
int reconcile_plan(const struct reconcile_input *in, struct reconcile_result *ret);

/*
 * The pass for a cluster whose spec is invalid: no object action at all; the status keeps the
 * observed one's phase and carries a Degraded condition (reason InvalidSpec) listing the
 * "path: reason" errors of `report_objects` (the validate report's "objects"). 0 or -ENOMEM.
 */
int reconcile_invalid(const char *cluster, const char *ns, const json_t *observed,
                      const json_t *report_objects, int64_t now_ms, int64_t generation,
                      struct reconcile_result *ret);

void reconcile_result_fini(struct reconcile_result *r);

/* ---- shared between reconcile.c, instances.c and status.c ---- */

struct plan {
    const struct reconcile_input *in;
    json_t *observed; /* "Kind/name" -> observed entry of this cluster's objects */
    json_t *desired;  /* "Kind/name" -> desired object */
    json_t *handled;  /* "Kind/name" -> true: observed objects a pass already decided about */
    json_t *actions;
    json_t *instances; /* status: one entry per instance */
    json_t *pools;     /* status: one entry per pool x cell */
    int writes;        /* apply, delete and annotate actions */
    int busy;          /* a drain, a deletion or a creation is under way */
    int drifted;       /* instances whose spec hash differs */
    int blocked;       /* a step waits for health */
    int failed;        /* observed objects reported failed */
    int overdue;       /* drains past their deadline */
    json_t *failures;  /* their names */
    size_t instances_total, instances_ready, instances_current;
    json_t *unavailable; /* shards without a ready primary */
    int oom;
};

const char *plan_kind_key(const char *kind, const char *name, char *buf, size_t size);
const char *plan_str(const json_t *o, const char *key);
const char *plan_annotation(const json_t *o, const char *key);
const char *plan_hash(const json_t *o);
int plan_is_instance_kind(const char *kind);
int plan_is_volume_kind(const char *kind);
void plan_rfc3339(int64_t ms, char *out, size_t size);
/* "YYYY-MM-DDTHH:MM:SSZ" (optionally with fractional seconds) to milliseconds; -1 when the text
 * is not of that form. */
int64_t plan_parse_rfc3339(const char *text);

void plan_apply(struct plan *p, const json_t *object, const char *reason);
void plan_delete(struct plan *p, const json_t *observed, const char *reason);
void plan_annotate(struct plan *p, const json_t *observed, const char *key1, const char *value1,
                   const char *key2, const char *value2);
void plan_event(struct plan *p, const char *type, const char *reason, const char *kind,
                const char *name, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Build a plan over in->observed (this cluster's objects only: labelled with it, managed by
 * mgo, instances only with component shard-pool) and in->desired: 0 or -ENOMEM. plan_fini
 * releases it either way. */
int plan_init(struct plan *p, const struct reconcile_input *in);
void plan_fini(struct plan *p);

/* instances.c: the pool instances of every shard (create, drain, delete, roll). */
const struct model_group *plan_group_of(const struct model *m, const json_t *labels);
void plan_instances(struct plan *p);

/* One pool instance of a shard, as the instance rules see it. The pointers are borrowed. */
struct plan_inst {
    const char *name;
    const json_t *obs;     /* NULL: desired but missing */
    const json_t *desired; /* NULL: extra (the spec no longer wants it) */
    const struct model_group *g;
    long index;        /* -1: unparseable, or in no group of the spec */
    size_t cell_pos;   /* position of its cell in spec.cells (after them all when unknown) */
    const char *drain; /* drain state annotation, or NULL */
    int ready, primary, deleting, current;
};

/* ---- the instance rules the pass shares with mgo_scale's plan (plugin/api_scale.c) ---- */

/* "<pod_base>-<index>" fits: pod_base is at most 60 characters, an index at most 10 digits. */
#define PLAN_INSTANCE_NAME_MAX 80

/*
 * What the spec wants of a shard's instances, as plan_collect asks it. `instance` gives the
 * desired object of instance `index` of group g (named `name`), or NULL when there is nothing
 * to plan it with; its "kind" is the kind the instance is looked up under among the observed
 * (an object without "kind" matches an observed Pod or Instance). `wants` says whether the
 * spec wants the observed object under `key` ("Kind/name") in any shard: such an object is
 * never taken for a leftover of the shard its labels name (its name says where it belongs).
 */
struct plan_wanted {
    const json_t *(*instance)(void *ctx, const struct model_group *g, int index, const char *name);
    int (*wants)(void *ctx, const char *key, const json_t *obs);
    void *ctx;
};

/* A shard's instances in rolling order (plan_inst_cmp). v[i].name may point into names. */
struct plan_shard_instances {
    struct plan_inst *v;
    size_t n;
    char (*names)[PLAN_INSTANCE_NAME_MAX];
};

/*
 * Collect shard s of model m as a pass sees it: every instance the spec wants (w->instance, for
 * each group's indexes below its replicasPerCell), observed or missing; then every observed
 * instance labelled into the shard that the spec does not want (w->wants), a leftover. observed
 * maps "Kind/name" to observed entries (struct plan's observed). 0, or -ENOMEM (nothing to
 * release); on success plan_shard_instances_fini releases *ret.
 */
int plan_collect(const struct model *m, const struct model_shard *s, const json_t *observed,
                 const struct plan_wanted *w, struct plan_shard_instances *ret);
void plan_shard_instances_fini(struct plan_shard_instances *si);

/* Set x's observed state from obs (an observed entry): drain state, ready, role, deleting and,
 * when x->desired is set, whether its spec hash is current. */
void plan_inst_observe(struct plan_inst *x, const json_t *obs);
/* Do hierarchy labels place an object in shard s? Its pool x cell group there, or NULL. */
int plan_in_shard(const struct model_shard *s, const json_t *labels);
const struct model_group *plan_shard_group(const struct model_shard *s, const json_t *labels);
/* qsort order of a shard's instances: cell by cell in spec.cells order, then numeric index. */
int plan_inst_cmp(const void *a, const void *b);
/* The scale-down victim rule (lifecycle.md "Scale down"): is x to go before y? */
int plan_better_victim(const struct plan_inst *x, const struct plan_inst *y);

/* What a pass does with one instance before it considers a new drain (lifecycle.md "How a
 * reconcile pass decides"); anything but PLAN_STEP_NONE keeps the shard from a new drain. */
enum plan_step {
    PLAN_STEP_NONE,
    PLAN_STEP_CREATE,     /* missing: created in this pass */
    PLAN_STEP_OLD_VOLUME, /* missing, its old volume still being deleted: created after it */
    PLAN_STEP_DELETING,   /* being deleted */
    PLAN_STEP_DELETE,     /* drained (ready-for-deletion): deleted in this pass */
    PLAN_STEP_CANCEL,     /* drain requested on an instance the spec wants as it is: cancelled */
    PLAN_STEP_DRAINING,   /* a drain under way */
    PLAN_STEP_RELOAD,     /* reload-class settings changed: applied in place (process target) */
};

/* The step of x; observed as in plan_collect (for the volume of a missing instance). Pure. */
enum plan_step plan_inst_step(const json_t *observed, const struct plan_inst *x);

/* Why an instance keeps the shard from a new drain, in the order the pass checks them. */
enum plan_wait {
    PLAN_WAIT_STEP,      /* a step under way (plan_inst_step) */
    PLAN_WAIT_PRIMARIES, /* it reports primary, and so does another: never a planned step */
    PLAN_WAIT_GATE,      /* the health gate: the spec wants it and it is not ready */
};

struct plan_blocker {
    const struct plan_inst *x;
    enum plan_wait why;
    enum plan_step step; /* for PLAN_WAIT_STEP */
};

/*
 * Why the pass starts no new drain in shard v[0..n): every instance with a step under way,
 * every instance reporting primary when more than one does, and, when gate_for is not NULL, the
 * health gate before draining gate_for: every other instance the spec wants that is not ready
 * (missing counts as not ready). Each instance once, with the first of these reasons that
 * applies, in v's order, into out (room for n). Returns how many; 0: a drain of gate_for may
 * start now. observed as in plan_collect. Pure: the pass and mgo_scale's plan both decide by it.
 */
size_t plan_blockers(const json_t *observed, const struct plan_inst *v, size_t n,
                     const struct plan_inst *gate_for, struct plan_blocker *out);
/* A blocker's reason in words (docs/abi.md "mgo_scale", waiting_for), into buf. */
const char *plan_blocker_reason(const struct plan_blocker *b, char *buf, size_t size);

/* status.c */
int plan_status(struct plan *p, json_t **ret_status);

#endif
