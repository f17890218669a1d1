/* The simulated host (see sim.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DRAIN "drain.multigres.com/state"

static int64_t sim_now(void *user)
{
    return ((struct sim *)user)->clock_ms;
}

void sim_init(struct sim *s, const char *target)
{
    memset(s, 0, sizeof(*s));
    s->target = target;
    s->objects = json_array();
    s->clock_ms = 1767225600000; /* 2026-01-01T00:00:00Z */
    mgo_host h = {.struct_size = sizeof(h), .abi_version = MGO_ABI_VERSION};
    h.user = s;
    h.now_ms = sim_now;
    if (mgo_open(&h, &s->p) != MGO_OK)
        s->p = NULL;
}

void sim_fini(struct sim *s)
{
    mgo_close(s->p);
    json_decref(s->objects);
    json_decref(s->status);
    json_decref(s->desired);
    json_decref(s->previous);
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int is_instance(const json_t *o)
{
    const char *k = str(o, "kind");
    return k && (strcmp(k, "Pod") == 0 || strcmp(k, "Instance") == 0);
}

static json_t *find(const struct sim *s, const char *kind, const char *name, size_t *at)
{
    size_t i;
    json_t *o;
    json_array_foreach (s->objects, i, o)
        if (strcmp(str(o, "kind"), kind) == 0 && strcmp(str(o, "name"), name) == 0) {
            if (at)
                *at = i;
            return o;
        }
    return NULL;
}

__attribute__((format(printf, 2, 3))) static void violate(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    if (s->violation[0])
        return;
    va_start(ap, fmt);
    (void)vsnprintf(s->violation, sizeof(s->violation), fmt, ap);
    va_end(ap);
}

void sim_reset_counts(struct sim *s)
{
    s->drains_requested = s->instances_created = s->reloads = 0;
}

/* A host records the ports its processes got (docs/abi.md, "ports"). */
static void record_ports(json_t *o, const json_t *obj)
{
    const json_t *spec = json_object_get(obj, "spec");
    const char *kind = str(obj, "kind");
    if (strcmp(kind, "Instance") == 0 && json_is_integer(json_object_get(spec, "port")))
        json_object_set_new(o, "ports", json_pack("{s:O}", "port", json_object_get(spec, "port")));
    else if (strcmp(kind, "Etcd") == 0)
        json_object_set_new(o, "ports",
                            json_pack("{s:O, s:O}", "clientPort",
                                      json_object_get(spec, "clientPort"), "peerPort",
                                      json_object_get(spec, "peerPort")));
}

static void bump(struct sim *s, json_t *o)
{
    char rv[32];
    (void)snprintf(rv, sizeof(rv), "%ld", ++s->next_uid);
    json_object_set_new(o, "resourceVersion", json_string(rv));
}

/* A write names the resourceVersion it saw: a stale one is refused, as an API server does. */
static int stale(struct sim *s, const json_t *a, const json_t *o)
{
    const char *rv = str(a, "resourceVersion");
    if (rv && strcmp(rv, str(o, "resourceVersion")) != 0) {
        violate(s, "a write to %s named a stale resourceVersion", str(o, "name"));
        return 1;
    }
    return 0;
}

static int same_shard(const json_t *a, const json_t *b)
{
    static const char *const keys[] = {"multigres.com/database", "multigres.com/tablegroup",
                                       "multigres.com/shard"};
    const json_t *la = json_object_get(a, "labels"), *lb = json_object_get(b, "labels");
    for (size_t i = 0; i < 3; i++)
        if (!str(la, keys[i]) || !str(lb, keys[i]) || strcmp(str(la, keys[i]), str(lb, keys[i])))
            return 0;
    return 1;
}

static int shard_has_primary(const struct sim *s, const json_t *like)
{
    size_t i;
    json_t *o;
    json_array_foreach (s->objects, i, o)
        if (is_instance(o) && same_shard(o, like) && str(o, "role") &&
            strcmp(str(o, "role"), "primary") == 0)
            return 1;
    return 0;
}

static void do_apply(struct sim *s, const json_t *obj, const char *reason)
{
    const json_t *meta = json_object_get(obj, "metadata");
    const char *kind = str(obj, "kind"), *name = str(meta, "name");
    json_t *o = find(s, kind, name, NULL);
    const char *hash = "multigres.com/spec-hash";
    /* An instance changes in place only by a reload, which never changes its spec. */
    if (o && is_instance(o) &&
        (strcmp(reason, "reload") != 0 ||
         strcmp(str(json_object_get(o, "annotations"), hash),
                str(json_object_get(meta, "annotations"), hash)) != 0))
        violate(s, "instance %s/%s updated in place", kind, name);
    if (!o) {
        char uid[32];
        (void)snprintf(uid, sizeof(uid), "uid-%ld", ++s->next_uid);
        /* A new instance starts unready and is ready from the next pass on (it has to start
         * and catch up); other objects are ready at once. */
        o = json_pack("{s:s, s:s, s:s, s:s, s:{}, s:b}", "kind", kind, "name", name, "uid", uid,
                      "resourceVersion", "1", "annotations", "ready",
                      !(strcmp(kind, "Pod") == 0 || strcmp(kind, "Instance") == 0));
        json_array_append_new(s->objects, o);
        json_object_set(o, "labels", json_object_get(meta, "labels"));
        if (is_instance(o)) {
            json_object_set_new(o, "role",
                                json_string(shard_has_primary(s, o) ? "standby" : "primary"));
            s->instances_created++;
        }
    } else if (strcmp(reason, "reload") == 0) {
        s->reloads++;
    }
    bump(s, o);
    record_ports(o, obj);
    json_object_set(o, "labels", json_object_get(meta, "labels"));
    json_object_update(json_object_get(o, "annotations"), json_object_get(meta, "annotations"));
}

static void do_delete(struct sim *s, const json_t *a)
{
    size_t at;
    json_t *o = find(s, str(a, "kind"), str(a, "name"), &at);
    if (!o)
        return; /* already gone: a host ignores NotFound */
    if (str(a, "uid") && strcmp(str(a, "uid"), str(o, "uid")) != 0)
        return; /* precondition failed */
    if (stale(s, a, o))
        return;
    const char *state = str(json_object_get(o, "annotations"), DRAIN);
    if (is_instance(o) && strcmp(str(a, "reason"), "cluster-deleted") != 0 &&
        (!state || strcmp(state, "ready-for-deletion") != 0))
        violate(s, "instance %s deleted without a finished drain (%s)", str(o, "name"),
                state ? state : "no drain");
    json_array_remove(s->objects, at);
}

static void do_annotate(struct sim *s, const json_t *a)
{
    json_t *o = find(s, str(a, "kind"), str(a, "name"), NULL);
    const char *k;
    json_t *v;
    if (!o || stale(s, a, o))
        return;
    bump(s, o);
    json_object_foreach (json_object_get(a, "annotations"), k, v) {
        if (strcmp(k, DRAIN) == 0 && json_is_string(v) &&
            strcmp(json_string_value(v), "requested") == 0)
            s->drains_requested++;
        if (json_is_null(v))
            json_object_del(json_object_get(o, "annotations"), k);
        else
            json_object_set(json_object_get(o, "annotations"), k, v);
    }
}

/* The drain hook's stand-in: one step per pass; a primary first hands its role over. */
static void advance_drains(struct sim *s)
{
    size_t i, j;
    json_t *o, *q;
    json_array_foreach (s->objects, i, o) {
        json_t *ann = json_object_get(o, "annotations");
        const char *state = str(ann, DRAIN);
        if (!is_instance(o) || !state || strcmp(state, "ready-for-deletion") == 0)
            continue;
        bump(s, o); /* the drain hook writes the annotation too */
        if (strcmp(state, "requested") == 0) {
            json_object_set_new(ann, DRAIN, json_string("draining"));
            continue;
        }
        if (strcmp(str(o, "role"), "primary") == 0) {
            json_t *to = NULL;
            int alone = 1;
            json_array_foreach (s->objects, j, q) {
                alone &= q == o || !is_instance(q) || !same_shard(q, o);
                if (!to && q != o && is_instance(q) && same_shard(q, o) &&
                    json_is_true(json_object_get(q, "ready")) &&
                    !str(json_object_get(q, "annotations"), DRAIN))
                    to = q;
            }
            /* Never release a primary that has not handed over; the sole instance of a shard
             * is replaced in place on its volume instead (downtime, no lost write). */
            if (!to && !alone)
                continue;
            if (to) {
                json_object_set_new(to, "role", json_string("primary"));
                json_object_set_new(o, "role", json_string("standby"));
            }
        }
        json_object_set_new(ann, DRAIN, json_string("ready-for-deletion"));
    }
}

/* Instances created before this pass are up now; those created in it start next time. */
static void start_instances(struct sim *s, const json_t *actions)
{
    size_t i, j;
    json_t *o;
    const json_t *a;
    json_array_foreach (s->objects, i, o) {
        int just_created = 0;
        json_array_foreach ((json_t *)actions, j, a)
            just_created |=
                strcmp(str(a, "type"), "apply") == 0 && strcmp(str(a, "reason"), "create") == 0 &&
                strcmp(str(json_object_get(json_object_get(a, "object"), "metadata"), "name"),
                       str(o, "name")) == 0;
        if (is_instance(o) && !just_created && !json_is_true(json_object_get(o, "ready"))) {
            json_object_set_new(o, "ready", json_true());
            bump(s, o);
        }
    }
}

static void check_one_drain_per_shard(struct sim *s)
{
    size_t i, j;
    json_t *a, *b;
    json_array_foreach (s->objects, i, a)
        json_array_foreach (s->objects, j, b)
            if (i < j && is_instance(a) && is_instance(b) && same_shard(a, b) &&
                str(json_object_get(a, "annotations"), DRAIN) &&
                str(json_object_get(b, "annotations"), DRAIN))
                violate(s, "two drains at once in a shard: %s and %s", str(a, "name"),
                        str(b, "name"));
}

static void execute(struct sim *s, const json_t *actions)
{
    size_t i;
    const json_t *a;
    s->writes = s->deletes = s->events = 0;
    json_array_foreach (actions, i, a) {
        const char *type = str(a, "type");
        if (strcmp(type, "event") == 0) {
            s->events++;
            continue;
        }
        s->writes++;
        if (strcmp(type, "apply") == 0) {
            do_apply(s, json_object_get(a, "object"), str(a, "reason"));
        } else if (strcmp(type, "delete") == 0) {
            s->deletes++;
            do_delete(s, a);
        } else if (strcmp(type, "annotate") == 0) {
            do_annotate(s, a);
        } else if (strcmp(type, "status") == 0) {
            json_decref(s->status);
            s->status = json_deep_copy(json_object_get(a, "status"));
        } else {
            violate(s, "unknown action %s", type);
        }
    }
}

int32_t sim_pass(struct sim *s, const json_t *objects, json_t **ret_result)
{
    json_t *req = json_pack("{s:O, s:s, s:{s:O}, s:{s:b}, s:b}", "objects", objects, "target",
                            s->target, "observed", "objects", s->objects, "topology", "register", 0,
                            "include_desired", 1);
    if (s->status)
        json_object_set(json_object_get(req, "observed"), "status", s->status);
    if (s->previous)
        json_object_set(req, "previous", s->previous);
    char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
    size_t len = 0;
    json_decref(req);
    int32_t rc = mgo_reconcile(s->p, text, strlen(text), &out, &len);
    free(text);
    json_t *result = out ? json_loadb(out, len, 0, NULL) : NULL;
    mgo_free(out);
    if (result && getenv("SIM_DEBUG")) { /* every pass's actions, for a failing sequence */
        char *d = json_dumps(json_object_get(result, "actions"), JSON_COMPACT);
        fprintf(stderr, "pass: %.2000s\n", d ? d : "?");
        free(d);
    }
    if (result)
        execute(s, json_object_get(result, "actions"));
    if (result && json_is_array(json_object_get(result, "desired"))) {
        json_decref(s->desired);
        s->desired = json_incref(json_object_get(result, "desired"));
    }
    advance_drains(s);
    check_one_drain_per_shard(s);
    start_instances(s, result ? json_object_get(result, "actions") : NULL);
    s->clock_ms += 2000;
    if (ret_result)
        *ret_result = result;
    else
        json_decref(result);
    return rc;
}

static int drains_open(const struct sim *s)
{
    size_t i;
    json_t *o;
    json_array_foreach (s->objects, i, o)
        if (str(json_object_get(o, "annotations"), DRAIN))
            return 1;
    return 0;
}

int sim_converge(struct sim *s, const json_t *objects, int bound)
{
    for (int n = 1; n <= bound; n++) {
        int32_t rc = sim_pass(s, objects, NULL);
        if (rc != MGO_OK || s->violation[0])
            return -1;
        if (s->writes == 0 && !drains_open(s))
            return n;
    }
    return -1;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void sim_instances(const struct sim *s, char *out, size_t size)
{
    const char *names[512];
    size_t n = 0, i, used = 0;
    json_t *o;
    json_array_foreach (s->objects, i, o)
        if (is_instance(o) && n < 512)
            names[n++] = str(o, "name");
    qsort(names, n, sizeof(*names), cmp);
    out[0] = '\0';
    for (i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? " " : "", names[i]);
}

const char *sim_leftover(const struct sim *s, int volumes_may_stay)
{
    size_t i, j;
    json_t *o, *d;
    json_array_foreach (s->objects, i, o) {
        int wanted = 0;
        json_array_foreach (s->desired, j, d)
            wanted |= strcmp(str(d, "kind"), str(o, "kind")) == 0 &&
                      strcmp(str(json_object_get(d, "metadata"), "name"), str(o, "name")) == 0;
        const char *kind = str(o, "kind");
        int volume = strcmp(kind, "PersistentVolumeClaim") == 0 || strcmp(kind, "Volume") == 0;
        if (!wanted && !(volume && volumes_may_stay))
            return str(o, "name");
    }
    return NULL;
}
