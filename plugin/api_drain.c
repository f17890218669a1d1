/*
 * The drain hook, postgres driver: one safe step of the drain of one instance per call
 * (docs/abi.md "mgo_drain"; rules in docs/spec/lifecycle.md "Drain of a standby"). Every state
 * is persisted (by the host, through the returned annotate action) before the work it
 * announces, and every step is idempotent, so a host that dies at any point resumes by calling
 * again with the annotations it has. A primary hands over first (planned switchover,
 * lifecycle.md "Drain of the primary"); its sub-steps are persisted in a second annotation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core.h"
#include "drain/select.h"
#include "pg/pg.h"
#include "reconcile/reconcile.h"
#include "api.h"

#define DRAIN_DEFAULT_DEADLINE_MS 10000
#define DRAIN_MAX_NODES           32
#define DRAIN_SWITCHOVER          "drain.multigres.com/switchover"
#define SW_FENCED                 "fenced:"
#define SW_PROMOTING              "promoting:"

struct shard_probe {
    size_t n;
    const char *other_draining; /* another node's drain under way, or NULL */
    size_t victim, primary;     /* primary: SIZE_MAX unless exactly one node answers as one */
    size_t primaries;           /* nodes that answered and are not in recovery */
    struct drain_node nodes[DRAIN_MAX_NODES];
    struct pg_node_status status[DRAIN_MAX_NODES];
    const char *conninfo[DRAIN_MAX_NODES];
    int64_t deadline;                /* of the call */
    int answered[DRAIN_MAX_NODES];   /* probed this call */
    int host_ready[DRAIN_MAX_NODES]; /* the host's readiness; ready = host_ready && answered */
    int running[DRAIN_MAX_NODES];    /* the host says its process runs (default: yes) */
    /* a stopped node, from the host's pg_controldata: "Database cluster state" and "Latest
     * checkpoint location" (0 when not reported) */
    const char *control_state[DRAIN_MAX_NODES];
    uint64_t checkpoint_lsn[DRAIN_MAX_NODES];
};

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000L * 1000L};
    (void)nanosleep(&ts, NULL); /* a shorter pause (a signal) only makes a poll come sooner */
}

static json_t *step_result(const char *state, const char *next, const char *why_in)
{
    char why[1024];
    if (why_in) { /* PostgreSQL's messages may carry bytes that are not UTF-8 */
        (void)snprintf(why, sizeof(why), "%s", why_in);
        core_utf8_sanitize(why);
    }
    json_t *r = json_pack("{s:s, s:[]}", "state", state, "actions");
    if (r && next) {
        json_t *a = json_pack("{s:s, s:{s:s}}", "type", "annotate", "annotations",
                              RECONCILE_DRAIN_STATE, next);
        if (!a || json_array_append_new(json_object_get(r, "actions"), a) ||
            json_object_set_new(r, "state", json_string(next))) {
            json_decref(r);
            return NULL;
        }
    }
    if (r && why_in && json_object_set_new(r, "message", json_string(why))) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* A result that stays in `draining` and asks the host for one action: set (value) or remove
 * (NULL) the switchover annotation, or run a process action on an instance. */
static json_t *switchover_result(const char *value, int remove, const char *process_action,
                                 const char *instance, const char *why)
{
    json_t *r = step_result("draining", NULL, why), *a = NULL;
    if (!r)
        return NULL;
    if (value || remove)
        a = json_pack("{s:s, s:{s:o}}", "type", "annotate", "annotations", DRAIN_SWITCHOVER,
                      value ? json_string(value) : json_null());
    if (r && (value || remove) && (!a || json_array_append_new(json_object_get(r, "actions"), a))) {
        json_decref(r);
        return NULL;
    }
    if (process_action) {
        a = strcmp(process_action, "stop") == 0
                ? json_pack("{s:s, s:s, s:s}", "type", "stop", "instance", instance, "mode", "fast")
                : json_pack("{s:s, s:s}", "type", process_action, "instance", instance);
        if (!a || json_array_append_new(json_object_get(r, "actions"), a)) {
            json_decref(r);
            return NULL;
        }
    }
    return r;
}

/* The request's nodes, checked: [{"name", "cell", "index", "conninfo", "ready", "drain",
 * "running", "control_state", "checkpoint_lsn"}]. A node whose own drain is past the
 * synchronous set (acknowledged, ready-for-deletion) is gone as far as this drain is
 * concerned: it neither counts toward the policy nor is named again; a node still draining
 * does not count toward the policy. */
static int32_t read_nodes(const json_t *req, struct shard_probe *s, char *msg, size_t size)
{
    const json_t *nodes = json_object_get(req, "nodes");
    const char *instance = str(req, "instance");
    size_t i;
    const json_t *e;
    memset(s, 0, sizeof(*s));
    s->victim = s->primary = SIZE_MAX;
    if (!instance || !json_is_array(nodes) || json_array_size(nodes) == 0 ||
        json_array_size(nodes) > DRAIN_MAX_NODES) {
        (void)snprintf(msg, size,
                       "request: \"instance\" (a string) and \"nodes\" (1..%d) are "
                       "required",
                       DRAIN_MAX_NODES);
        return MGO_EINVAL;
    }
    json_array_foreach (nodes, i, e) {
        uint64_t lsn = 0;
        const json_t *ck = api_opt(e, "checkpoint_lsn");
        if (!api_valid_node_name(str(e, "name")) || !str(e, "conninfo") ||
            strlen(str(e, "conninfo")) > 1024 || (api_opt(e, "cell") && !str(e, "cell")) ||
            (api_opt(e, "index") && !json_is_integer(api_opt(e, "index"))) ||
            (api_opt(e, "ready") && !json_is_boolean(api_opt(e, "ready"))) ||
            (api_opt(e, "running") && !json_is_boolean(api_opt(e, "running"))) ||
            (api_opt(e, "control_state") && !str(e, "control_state")) ||
            (ck && (!json_is_string(ck) || pg_lsn_parse(json_string_value(ck), &lsn) != 0)) ||
            (api_opt(e, "drain") && !str(e, "drain"))) {
            (void)snprintf(msg, size,
                           "request: nodes[%zu]: needs \"name\" (1 to 63 printable ASCII "
                           "characters, no space) and \"conninfo\" (at most 1024 bytes); "
                           "\"cell\" a string, \"index\" an integer, \"ready\" and "
                           "\"running\" booleans, \"drain\" its drain state, "
                           "\"control_state\" a string, \"checkpoint_lsn\" an LSN "
                           "(\"16/B374D848\")",
                           i);
            return MGO_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(str(json_array_get(nodes, j), "name"), str(e, "name")) == 0) {
                (void)snprintf(msg, size,
                               "request: nodes[%zu]: the name \"%s\" appears twice; node names "
                               "must be unique (PostgreSQL compares them without regard to case)",
                               i, str(e, "name"));
                return MGO_EINVAL;
            }
        const char *drain = str(e, "drain");
        int mine = strcmp(str(e, "name"), instance) == 0;
        if (!mine && drain &&
            (strcmp(drain, "acknowledged") == 0 || strcmp(drain, "ready-for-deletion") == 0))
            continue;
        struct drain_node *d = &s->nodes[s->n];
        d->draining = !mine && drain && strcmp(drain, "requested") != 0;
        /* Two drains at once (a host that did not wait): the one whose name sorts first goes
         * on, the other waits until it has left, so that neither undoes the other. */
        if (d->draining && strcmp(str(e, "name"), instance) < 0)
            s->other_draining = str(e, "name");
        d->name = str(e, "name");
        d->cell = str(e, "cell");
        d->index = (long)json_integer_value(json_object_get(e, "index"));
        d->ready = s->host_ready[s->n] = !json_is_false(json_object_get(e, "ready"));
        s->running[s->n] = !json_is_false(json_object_get(e, "running"));
        s->control_state[s->n] = str(e, "control_state");
        s->checkpoint_lsn[s->n] = lsn;
        s->conninfo[s->n] = str(e, "conninfo");
        if (strcmp(d->name, instance) == 0)
            s->victim = s->n;
        s->n++;
    }
    if (s->victim == SIZE_MAX) {
        (void)snprintf(msg, size, "request: instance \"%.200s\" is not among the nodes", instance);
        return MGO_EINVAL;
    }
    return MGO_OK;
}

/* Probe one node: it answered (ready again if the host says so) or not (not ready). 0, or
 * -ELIBACC when libpq is missing, -ENOMEM. */
static int probe_one(struct shard_probe *s, size_t i, int64_t deadline)
{
    char err[512];
    struct pg_conn *c = NULL;
    s->answered[i] = 0;
    s->nodes[i].ready = 0;
    if (!s->running[i])
        return 0;
    /* a share of the time left, so that one node that hangs (a frozen host, packets dropped)
     * cannot take the whole call from the others */
    int64_t now = pg_now_ms(), share = (deadline - now) / (int64_t)(s->n + 1);
    int64_t until = now + (share > 300 ? share : 300);
    if (until > deadline)
        until = deadline;
    int rc = pg_connect(s->conninfo[i], until, &c, err, sizeof(err));
    if (rc == 0)
        rc = pg_node_probe(c, until, &s->status[i], err, sizeof(err));
    pg_close(c);
    if (rc == -ELIBACC || rc == -ENOMEM)
        return rc;
    if (rc != 0) {
        core_log(MGO_LOG_INFO, "drain: %s did not answer: %s", s->nodes[i].name, err);
        return 0;
    }
    s->answered[i] = 1;
    s->nodes[i].ready = s->host_ready[i];
    return 0;
}

/* The status for a probe_one() failure. */
static int32_t probe_failed(int rc, char *msg, size_t size)
{
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    (void)snprintf(msg, size, "postgres driver: libpq.so.5 cannot be loaded");
    return MGO_EUNSUPPORTED;
}

/* Probe every node the host says runs. The primary is the one node that answers and is not in
 * recovery (s->primary stays SIZE_MAX unless there is exactly one); the standbys the primary's
 * pg_stat_replication lists as streaming are marked streaming with their LSNs. */
static int32_t probe_shard(struct shard_probe *s, int64_t deadline, char *msg, size_t size)
{
    s->primaries = 0;
    s->primary = SIZE_MAX;
    for (size_t i = 0; i < s->n; i++) {
        s->nodes[i].primary = s->nodes[i].streaming = 0;
        int rc = probe_one(s, i, deadline);
        if (rc != 0)
            return probe_failed(rc, msg, size);
        if (s->answered[i] && !s->status[i].in_recovery) {
            s->primary = i;
            s->primaries++;
        }
    }
    if (s->primaries != 1) {
        s->primary = SIZE_MAX;
        return MGO_OK;
    }
    const struct pg_node_status *p = &s->status[s->primary];
    s->nodes[s->primary].primary = 1;
    for (size_t r = 0; r < p->nreplicas; r++)
        for (size_t i = 0; i < s->n; i++)
            if (strcmp(p->replicas[r].name, s->nodes[i].name) == 0 &&
                strcmp(p->replicas[r].state, "streaming") == 0 && s->answered[i]) {
                s->nodes[i].streaming = 1;
                s->nodes[i].received_lsn = s->status[i].received_lsn;
                s->nodes[i].replayed_lsn = s->status[i].replayed_lsn;
            }
    return MGO_OK;
}

/* Is `name` still one the primary waits on: named in its synchronous_standby_names (parsed as
 * PostgreSQL reads it), or reported sync/quorum/potential in pg_stat_replication? */
static int primary_waits_on(const struct pg_node_status *p, const char *name)
{
    if (drain_names_mention(p->sync_standby_names, name))
        return 1;
    for (size_t r = 0; r < p->nreplicas; r++)
        if (strcmp(p->replicas[r].name, name) == 0 &&
            strcmp(p->replicas[r].sync_state, "async") != 0)
            return 1;
    return 0;
}

/* ALTER SYSTEM SET <setting> = '<value>' on the node at conninfo, then pg_reload_conf(). The
 * reload takes effect asynchronously: the caller confirms. */
static int alter_system(const char *conninfo, const char *setting, const char *value,
                        int64_t deadline, char *err, size_t err_size)
{
    struct pg_conn *c = NULL;
    const char *const values[] = {value, NULL};
    int rc = pg_connect(conninfo, deadline, &c, err, err_size);
    if (rc == 0)
        rc = pg_alter_system(c, setting, values, deadline, err, err_size);
    if (rc == 0)
        rc = pg_exec(c, "SELECT pg_reload_conf()", deadline, err, err_size);
    pg_close(c);
    return rc;
}

/* Take the victim out of the primary's synchronous set: ALTER SYSTEM and reload, only while the
 * rest still satisfies the policy. */
static int32_t leave_sync_set(struct shard_probe *s, enum drain_policy policy, int64_t deadline,
                              char *msg, size_t size)
{
    char why[256], names[PG_SYNC_NAMES_SIZE], err[512];
    int may = drain_standby_may_leave(s->nodes, s->n, policy, s->victim, why, sizeof(why));
    if (may <= 0) {
        (void)snprintf(msg, size, "drain of %s blocked: %s", s->nodes[s->victim].name, why);
        return may < 0 ? MGO_EINVAL : MGO_EAGAIN;
    }
    if (drain_sync_names(s->nodes, s->n, policy, s->primary, s->victim, names, sizeof(names))) {
        (void)snprintf(msg, size,
                       "request: nodes: the standby names do not fit in "
                       "synchronous_standby_names (%zu bytes at most)",
                       sizeof(names) - 1);
        return MGO_EINVAL;
    }
    int rc = alter_system(s->conninfo[s->primary], "synchronous_standby_names", names, deadline,
                          err, sizeof(err));
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    if (rc != 0) {
        (void)snprintf(msg, size, "drain of %s: primary %s: %s", s->nodes[s->victim].name,
                       s->nodes[s->primary].name, err);
        return MGO_EAGAIN;
    }
    core_log(MGO_LOG_INFO, "drain: %s left the synchronous set: %s", s->nodes[s->victim].name,
             names);
    return MGO_OK;
}

/* No commit still waits on the victim (lifecycle.md, "Drain of a standby", step 3). A commit
 * that waited on it is released by the next reply of a standby in the new set: write a WAL
 * record at L and wait until a synchronous standby other than the victim has flushed past L,
 * so that its reply has released every commit up to L. */
static int32_t waiters_released(struct shard_probe *s, int64_t deadline, char *msg, size_t size)
{
    char err[512];
    struct pg_conn *c = NULL;
    struct pg_node_status st;
    int rc = pg_connect(s->conninfo[s->primary], deadline, &c, err, sizeof(err));
    uint64_t before = 0, mark = 0;
    if (rc == 0 && (rc = pg_node_probe(c, deadline, &st, err, sizeof(err))) == 0)
        before = st.current_lsn;
    if (rc == 0)
        rc = pg_exec(c, "SELECT pg_logical_emit_message(false, 'mgo-drain', '')", deadline, err,
                     sizeof(err));
    /* the mark is a position written after the message: a standby past it has received WAL
     * written after the new setting took effect, and its reply released the waiters */
    while (rc == 0 && (rc = pg_node_probe(c, deadline, &st, err, sizeof(err))) == 0 &&
           st.current_lsn <= before) {
        if (pg_now_ms() + 20 >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rc == 0)
        mark = st.current_lsn;
    while (rc == 0) {
        for (size_t r = 0; r < st.nreplicas; r++)
            if (strcmp(st.replicas[r].name, s->nodes[s->victim].name) != 0 &&
                strcmp(st.replicas[r].sync_state, "async") != 0 &&
                strcmp(st.replicas[r].state, "streaming") == 0 &&
                st.replicas[r].flush_lsn >= mark) {
                pg_close(c);
                return MGO_OK;
            }
        if (pg_now_ms() + 50 >= deadline) {
            (void)snprintf(err, sizeof(err), "no synchronous standby has confirmed the mark yet");
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = pg_node_probe(c, deadline, &st, err, sizeof(err));
    }
    pg_close(c);
    (void)snprintf(msg, size, "drain of %s: waiting for commits it held to be released: %s",
                   s->nodes[s->victim].name, err);
    return rc == -ENOMEM ? MGO_ENOMEM : MGO_EAGAIN;
}

/* The node named `name`, or SIZE_MAX. */
static size_t node_index(const struct shard_probe *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->nodes[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* For a shard whose primary `old` is stopped or being replaced: every other node that answers
 * in recovery counts as a standby that will stream from the new primary, ranked by its own LSNs. */
static void mark_standbys(struct shard_probe *s, size_t old)
{
    for (size_t i = 0; i < s->n; i++) {
        struct drain_node *d = &s->nodes[i];
        d->primary = i == old;
        d->streaming = i != old && s->answered[i] && s->status[i].in_recovery;
        /* what it holds: a standby restarted while the primary is down reports as received
         * the start of its last segment (or nothing) until it streams again, while its replay
         * position still covers the WAL it has (replay runs through pg_wal first) */
        uint64_t got = s->status[i].received_lsn > s->status[i].replayed_lsn
                           ? s->status[i].received_lsn
                           : s->status[i].replayed_lsn;
        d->received_lsn = d->streaming ? got : 0;
        d->replayed_lsn = d->streaming ? s->status[i].replayed_lsn : 0;
        d->unfit = 0;
    }
}

/* Switchover, step 2 (lifecycle.md, "Drain of the primary"): choose the candidate among the
 * streaming standbys and persist it with the fence, before the primary is touched. */
static int32_t begin_switchover(struct shard_probe *s, enum drain_policy policy, json_t **ret,
                                char *msg, size_t size)
{
    char why[256], value[128];
    size_t cand;
    int rc = drain_pick_candidate(s->nodes, s->n, policy, s->victim, &cand, why, sizeof(why));
    if (rc != 0) {
        (void)snprintf(msg, size, "switchover of primary %s blocked: %s", s->nodes[s->victim].name,
                       why);
        return rc == -ENOENT ? MGO_EAGAIN : MGO_EINVAL;
    }
    /* the synchronous set the candidate will need must fit, before anything is fenced */
    char names[PG_SYNC_NAMES_SIZE];
    s->nodes[s->victim].primary = 0;
    s->nodes[cand].primary = 1;
    rc = drain_sync_names(s->nodes, s->n, policy, cand, s->victim, names, sizeof(names));
    s->nodes[cand].primary = 0;
    s->nodes[s->victim].primary = 1;
    if (rc != 0) {
        (void)snprintf(msg, size,
                       "request: nodes: the standby names do not fit in "
                       "synchronous_standby_names (%d bytes at most)",
                       PG_SYNC_NAMES_SIZE - 1);
        return MGO_EINVAL;
    }
    (void)snprintf(value, sizeof(value), "%s%s", SW_FENCED, s->nodes[cand].name);
    (void)snprintf(msg, size, "switchover from %s to %s: fencing %s", s->nodes[s->victim].name,
                   s->nodes[cand].name, s->nodes[s->victim].name);
    *ret = switchover_result(value, 0, NULL, NULL, msg);
    return *ret ? MGO_OK : MGO_ENOMEM;
}

/* Which standbys hold every write the stopped primary acknowledged? After a clean shutdown, the
 * ones that replayed past its shutdown checkpoint (a clean stop sends every record to the
 * connected standbys first). After a crash or an immediate stop: every synchronous commit was
 * flushed by some standby, and each standby's WAL is a prefix of the primary's, so the ones
 * that received the most hold them all; decidable only when every standby answers. Marks the
 * others unfit; 1 when some standby qualifies, 0 when none does yet. */
static int mark_complete(struct shard_probe *s, size_t v, int clean, uint64_t final_lsn)
{
    uint64_t most = 0;
    int all = 1;
    mark_standbys(s, v);
    for (size_t i = 0; i < s->n; i++) {
        if (i == v)
            continue;
        /* A standby that reports nothing received was restarted and is still replaying its
         * own WAL: what it holds is not known until it asks to stream (then it reports the
         * start of the segment it asks for, and its replay position is the end of its WAL). */
        if (!s->nodes[i].streaming || (!clean && s->status[i].received_lsn == 0))
            all = 0;
        else if (s->nodes[i].received_lsn > most)
            most = s->nodes[i].received_lsn;
    }
    int any = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct drain_node *d = &s->nodes[i];
        if (i == v || !d->streaming)
            continue;
        d->unfit = clean ? d->replayed_lsn <= final_lsn : !all || d->received_lsn < most;
        any |= !d->unfit && d->ready && !d->draining;
    }
    return any;
}

/* Switchover, steps 3 and 4, with the fence persisted: stop the primary cleanly (the host does),
 * then choose the standby that holds all of its WAL and persist it before any promotion. When
 * none does in time, the switchover is abandoned: nothing was promoted, so the primary is
 * started again and takes writes. */
static int32_t step_fenced(struct shard_probe *s, enum drain_policy policy, const char *cand_name,
                           int64_t deadline, json_t **ret, char *msg, size_t size)
{
    size_t v = s->victim, cand = node_index(s, cand_name), chosen = SIZE_MAX;
    const char *vn = s->nodes[v].name, *cs = s->control_state[v];
    char why[256] = "", value[128], lsn[PG_LSN_TEXT_SIZE];
    if (s->answered[v] && !s->status[v].in_recovery) {
        (void)snprintf(msg, size, "switchover from %s: stopping %s (fast shutdown)", vn, vn);
        *ret = switchover_result(NULL, 0, "stop", vn, msg);
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    if (s->answered[v] || s->running[v]) {
        (void)snprintf(msg, size, "switchover from %s: waiting for %s to stop", vn, vn);
        return MGO_EAGAIN;
    }
    if (s->primaries > 0) {
        (void)snprintf(msg, size,
                       "switchover from %s: another instance answers as a primary; nothing is "
                       "promoted while it does",
                       vn);
        return MGO_EAGAIN;
    }
    if (!cs || (strcmp(cs, "shut down") == 0 && s->checkpoint_lsn[v] == 0)) {
        (void)snprintf(msg, size,
                       "request: nodes: the stopped instance %s needs \"control_state\" and "
                       "\"checkpoint_lsn\" (pg_controldata)",
                       vn);
        return MGO_EINVAL;
    }
    int clean = strcmp(cs, "shut down") == 0;
    for (;;) {
        if (mark_complete(s, v, clean, s->checkpoint_lsn[v])) {
            if (cand != SIZE_MAX && s->nodes[cand].streaming && s->nodes[cand].ready &&
                !s->nodes[cand].unfit && !s->nodes[cand].draining &&
                drain_policy_satisfied(s->nodes, s->n, policy, cand, v, NULL, 0) == 1)
                chosen = cand;
            else if (drain_pick_candidate(s->nodes, s->n, policy, v, &chosen, why, sizeof(why)))
                chosen = SIZE_MAX;
        }
        if (chosen != SIZE_MAX || pg_now_ms() + 150 >= deadline)
            break;
        sleep_ms(50);
        for (size_t i = 0; i < s->n; i++) {
            int rc = i != v ? probe_one(s, i, deadline) : 0;
            if (rc != 0)
                return probe_failed(rc, msg, size);
        }
    }
    pg_lsn_format(s->checkpoint_lsn[v], lsn, sizeof(lsn));
    if (chosen == SIZE_MAX) {
        (void)snprintf(msg, size,
                       "switchover from %s abandoned: no standby holds all of its WAL (%s%s%s%s); "
                       "%s is started again as the primary",
                       vn,
                       clean ? "replayed past its shutdown checkpoint " : "every standby answering",
                       clean ? lsn : "", why[0] ? "; " : "", why, vn);
        *ret = switchover_result(NULL, 1, "start", vn, msg);
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    (void)snprintf(value, sizeof(value), "%s%s", SW_PROMOTING, s->nodes[chosen].name);
    (void)snprintf(msg, size, "switchover from %s: %s holds all of its WAL (%s); promoting it", vn,
                   s->nodes[chosen].name, clean ? lsn : "crashed primary");
    *ret = switchover_result(value, 0, NULL, NULL, msg);
    return *ret ? MGO_OK : MGO_ENOMEM;
}

/* Poll the node at i (a fresh probe each time) until its synchronous_standby_names reads
 * `names`. 0, -ETIMEDOUT, or probe_one()'s failure. */
static int wait_setting(struct shard_probe *s, size_t i, const char *names, int64_t deadline)
{
    for (;;) {
        int rc = probe_one(s, i, deadline);
        if (rc != 0)
            return rc;
        if (s->answered[i] && strcmp(s->status[i].sync_standby_names, names) == 0)
            return 0;
        if (pg_now_ms() + 100 >= deadline)
            return -ETIMEDOUT;
        sleep_ms(20);
    }
}

/* Is standby `name` streaming from the node whose status is `p`? */
static int streams_from(const struct pg_node_status *p, const char *name)
{
    for (size_t r = 0; r < p->nreplicas; r++)
        if (strcmp(p->replicas[r].name, name) == 0 &&
            strcmp(p->replicas[r].state, "streaming") == 0)
            return 1;
    return 0;
}

/* Switchover, step 5: C gets the synchronous set `names` (live before it takes writes), then is
 * promoted. pg_promote() is called also when C is already the primary: it then only runs the
 * CHECKPOINT a promotion needs (P3), which a host that died right after the promotion skipped. */
static int32_t promote(struct shard_probe *s, size_t c, const char *names, int64_t deadline,
                       char *msg, size_t size)
{
    char err[512] = "";
    int rc = 0;
    if (strcmp(s->status[c].sync_standby_names, names) != 0) {
        rc = alter_system(s->conninfo[c], "synchronous_standby_names", names, deadline, err,
                          sizeof(err));
        if (rc == 0)
            rc = wait_setting(s, c, names, deadline);
        if (rc == 0)
            core_log(MGO_LOG_INFO, "drain: %s has synchronous_standby_names %s", s->nodes[c].name,
                     names);
        if (rc == -ETIMEDOUT)
            (void)snprintf(err, sizeof(err), "the new synchronous_standby_names is not live yet");
        else if (rc == -ELIBACC)
            return probe_failed(rc, msg, size);
    }
    /* promoted and checkpointed already (a resumed call): nothing to do (P3) */
    int done =
        !s->status[c].in_recovery && s->status[c].checkpoint_timeline == s->status[c].timeline;
    if (rc == 0 && !done) {
        struct pg_conn *conn = NULL;
        int was_standby = s->status[c].in_recovery;
        rc = pg_connect(s->conninfo[c], deadline, &conn, err, sizeof(err));
        if (rc == 0)
            rc = pg_promote(conn, deadline, err, sizeof(err));
        pg_close(conn);
        if (rc == -EALREADY)
            rc = 0;
        if (rc == 0 && was_standby)
            core_log(MGO_LOG_INFO, "drain: %s promoted", s->nodes[c].name);
    }
    if (rc == -ENOMEM)
        return MGO_ENOMEM;
    if (rc != 0) {
        (void)snprintf(msg, size, "switchover from %s to %s: %s", s->nodes[s->victim].name,
                       s->nodes[c].name, err);
        return MGO_EAGAIN;
    }
    return MGO_OK;
}

/* Switchover, step 6: every other standby that answers gets C's conninfo as primary_conninfo
 * (again every half second while it does not stream from C); done when the durability policy
 * holds on C, every repoint succeeded, and every answering standby streams from C or half of the
 * call's time went by (a standby whose replay is paused follows once it resumes: its repoint
 * is durable). `waiting` gets the names that do not stream yet. */
static int32_t repoint(struct shard_probe *s, enum drain_policy policy, size_t c, int64_t deadline,
                       char *waiting, size_t wsize, char *msg, size_t size)
{
    size_t v = s->victim;
    int64_t started = pg_now_ms(), half = started + (deadline - started) / 2, last = 0;
    char err[512], failed[256];
    int repointed[DRAIN_MAX_NODES] = {0}; /* the last ALTER SYSTEM on it succeeded */
    for (;;) {
        int rc = probe_one(s, c, deadline);
        if (rc != 0)
            return probe_failed(rc, msg, size);
        if (!s->answered[c] || s->status[c].in_recovery) {
            (void)snprintf(msg, size, "switchover from %s: %s does not answer as the primary yet",
                           s->nodes[v].name, s->nodes[c].name);
            return MGO_EAGAIN;
        }
        int again = pg_now_ms() - last >= 500;
        size_t o = 0, f = 0;
        waiting[0] = failed[0] = 0;
        if (again)
            last = pg_now_ms();
        for (size_t i = 0; i < s->n; i++) {
            s->nodes[i].streaming =
                i != c && i != v && streams_from(&s->status[c], s->nodes[i].name);
            if (i == c || i == v || !s->answered[i] || s->nodes[i].streaming)
                continue;
            if (again) {
                rc = alter_system(s->conninfo[i], "primary_conninfo", s->conninfo[c], deadline, err,
                                  sizeof(err));
                if (rc == -ENOMEM)
                    return MGO_ENOMEM;
                repointed[i] = rc == 0;
                if (rc == 0)
                    core_log(MGO_LOG_INFO, "drain: %s repointed at %s", s->nodes[i].name,
                             s->nodes[c].name);
                else
                    core_log(MGO_LOG_INFO, "drain: repointing %s: %s", s->nodes[i].name, err);
            }
            if (!repointed[i]) {
                f += (size_t)snprintf(failed + f, f < sizeof(failed) ? sizeof(failed) - f : 0,
                                      "%s%s", f ? ", " : "", s->nodes[i].name);
                f = f < sizeof(failed) ? f : sizeof(failed) - 1;
            }
            o += (size_t)snprintf(waiting + o, o < wsize ? wsize - o : 0, "%s%s", o ? ", " : "",
                                  s->nodes[i].name);
            o = o < wsize ? o : wsize - 1;
        }
        if (!failed[0] && drain_policy_satisfied(s->nodes, s->n, policy, c, v, NULL, 0) == 1 &&
            (!waiting[0] || pg_now_ms() >= half))
            return MGO_OK;
        if (pg_now_ms() + 150 >= deadline) {
            (void)snprintf(msg, size, "switchover from %s to %s: %s%s", s->nodes[v].name,
                           s->nodes[c].name,
                           failed[0] ? "could not repoint "
                                     : "waiting for a synchronous standby "
                                       "to stream from it",
                           failed);
            return MGO_EAGAIN;
        }
        sleep_ms(20);
        for (size_t i = 0; i < s->n; i++) {
            rc = i != c && i != v ? probe_one(s, i, deadline) : 0;
            if (rc != 0)
                return probe_failed(rc, msg, size);
        }
    }
}

/* Switchover, steps 5 to 7, with the chosen standby persisted: give it the synchronous set it
 * will need, promote it (and checkpoint), repoint every other standby at it, and wait until they
 * stream from it. Each part is skipped when already done, so a resumed call finishes the job. */
static int32_t step_promoting(struct shard_probe *s, enum drain_policy policy,
                              const char *cand_name, int64_t deadline, json_t **ret, char *msg,
                              size_t size)
{
    size_t v = s->victim, c = node_index(s, cand_name);
    const char *vn = s->nodes[v].name;
    char names[PG_SYNC_NAMES_SIZE], waiting[256] = "";
    if (c == SIZE_MAX || c == v) {
        (void)snprintf(msg, size,
                       "request: the switchover's new primary \"%.64s\" is not "
                       "among the nodes",
                       cand_name);
        return MGO_EINVAL;
    }
    if (s->answered[v] && !s->status[v].in_recovery) {
        /* a promotion may have begun: the old primary must not take writes */
        (void)snprintf(msg, size, "switchover from %s: %s answers as a primary again; stopping it",
                       vn, vn);
        *ret = switchover_result(NULL, 0, "stop", vn, msg);
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    for (size_t i = 0; i < s->n; i++)
        if (i != c && i != v && s->answered[i] && !s->status[i].in_recovery) {
            (void)snprintf(msg, size, "switchover from %s to %s: %s answers as a primary too", vn,
                           cand_name, s->nodes[i].name);
            return MGO_EAGAIN;
        }
    if (!s->answered[c]) {
        (void)snprintf(msg, size, "switchover from %s: waiting for %s to answer", vn, cand_name);
        return MGO_EAGAIN;
    }
    mark_standbys(s, v);
    s->nodes[v].primary = 0;
    s->nodes[v].draining = 1;
    s->nodes[c].primary = 1;
    int named = drain_sync_names(s->nodes, s->n, policy, c, v, names, sizeof(names));
    if (named == -ERANGE) {
        /* instances added since the switchover began: name the ones that answer as standbys
         * (ANY 1 over a subset stays safe), never leaving the promotion stuck */
        struct drain_node sub[DRAIN_MAX_NODES];
        size_t k = 0, sc = 0;
        for (size_t i = 0; i < s->n; i++)
            if (i == c || (i != v && s->nodes[i].streaming && s->nodes[i].ready)) {
                if (i == c)
                    sc = k;
                sub[k++] = s->nodes[i];
            }
        named = drain_sync_names(sub, k, policy, sc, SIZE_MAX, names, sizeof(names));
    }
    if (named != 0 || !names[0]) {
        (void)snprintf(msg, size, "switchover from %s to %s: %s", vn, cand_name,
                       named == -ERANGE ? "the standby names do not fit in "
                                          "synchronous_standby_names"
                                        : "no standby is left to name");
        return MGO_EAGAIN;
    }
    int32_t rc = promote(s, c, names, deadline, msg, size);
    if (rc == MGO_OK)
        rc = repoint(s, policy, c, deadline, waiting, sizeof(waiting), msg, size);
    if (rc != MGO_OK)
        return rc;
    (void)snprintf(msg, size,
                   "switchover done: %s is the primary (synchronous standbys %.300s); %s is "
                   "fenced and nothing replicates from it%s%.200s",
                   cand_name, names, vn, waiting[0] ? "; repointed, not streaming yet: " : "",
                   waiting);
    *ret = step_result("draining", "acknowledged", msg);
    return *ret ? MGO_OK : MGO_ENOMEM;
}

/* The draining step. A standby: out of the synchronous set, verified on the primary, then
 * acknowledged. The primary: a planned switchover first, one persisted sub-step per call
 * (annotation drain.multigres.com/switchover: fenced:<candidate>, then promoting:<new primary>). */
static int32_t step_draining_on(struct shard_probe *sp, const json_t *req, json_t **ret, char *msg,
                                size_t size)
{
    enum drain_policy policy;
    int64_t deadline;
    if (api_deadline_ms(req, "deadline_ms", DRAIN_DEFAULT_DEADLINE_MS, &deadline, msg, size))
        return MGO_EINVAL;
    deadline += pg_now_ms();
    const json_t *swj = json_object_get(json_object_get(req, "annotations"), DRAIN_SWITCHOVER);
    const char *sw = json_string_value(swj);
    int32_t rc = read_nodes(req, sp, msg, size);
    if (rc == MGO_OK && swj && !json_is_null(swj) &&
        (!sw || (strncmp(sw, SW_FENCED, strlen(SW_FENCED)) != 0 &&
                 strncmp(sw, SW_PROMOTING, strlen(SW_PROMOTING)) != 0))) {
        (void)snprintf(msg, size,
                       "request: annotation %s must be \"fenced:<instance>\" or "
                       "\"promoting:<instance>\"",
                       DRAIN_SWITCHOVER);
        rc = MGO_EINVAL;
    }
    if (rc == MGO_OK &&
        drain_policy_parse(str(req, "durability") ? str(req, "durability") : "AT_LEAST_2",
                           &policy)) {
        (void)snprintf(msg, size,
                       "request: \"durability\" must be AT_LEAST_2 or "
                       "MULTI_CELL_AT_LEAST_2");
        rc = MGO_EINVAL;
    }
    for (size_t i = 0; rc == MGO_OK && policy == DRAIN_MULTI_CELL_AT_LEAST_2 && i < sp->n; i++)
        if (!sp->nodes[i].cell || !sp->nodes[i].cell[0]) {
            (void)snprintf(msg, size,
                           "request: nodes: MULTI_CELL_AT_LEAST_2 needs every node's "
                           "\"cell\" (%s has none)",
                           sp->nodes[i].name);
            rc = MGO_EINVAL;
        }
    if (rc == MGO_OK)
        rc = probe_shard(sp, deadline, msg, size);
    if (rc != MGO_OK)
        return rc;
    if (sw && strncmp(sw, SW_FENCED, strlen(SW_FENCED)) == 0)
        return step_fenced(sp, policy, sw + strlen(SW_FENCED), deadline, ret, msg, size);
    if (sw)
        return step_promoting(sp, policy, sw + strlen(SW_PROMOTING), deadline, ret, msg, size);
    if (sp->primaries == 0 && !sp->running[sp->victim] && sp->control_state[sp->victim] &&
        (strcmp(sp->control_state[sp->victim], "shut down") == 0 ||
         strcmp(sp->control_state[sp->victim], "in production") == 0)) {
        /* a switchover abandoned before the host restarted the primary (see step_fenced) */
        (void)snprintf(msg, size,
                       "%s, the primary, is stopped and no switchover holds it: "
                       "starting it",
                       sp->nodes[sp->victim].name);
        *ret = switchover_result(NULL, 0, "start", sp->nodes[sp->victim].name, msg);
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    if (sp->other_draining) {
        /* one drain per shard: never two standbys leaving the synchronous set at once. (A
         * primary whose switchover began, or that waits to be started again, goes on above:
         * the other drain waits for a primary.) */
        (void)snprintf(msg, size, "drain of %s waits: another drain is under way (%s)",
                       sp->nodes[sp->victim].name, sp->other_draining);
        return MGO_EAGAIN;
    }
    if (sp->primaries != 1) {
        (void)snprintf(msg, size, "drain: the shard has %zu answering primaries; waiting for one",
                       sp->primaries);
        return MGO_EAGAIN;
    }
    if (sp->victim == sp->primary)
        return begin_switchover(sp, policy, ret, msg, size);
    sp->nodes[sp->victim].draining = 1;
    if (primary_waits_on(&sp->status[sp->primary], sp->nodes[sp->victim].name)) {
        rc = leave_sync_set(sp, policy, deadline, msg, size);
        if (rc != MGO_OK)
            return rc;
        /* the reload takes effect asynchronously: confirm on the next call */
        *ret = step_result("draining", NULL, "left the synchronous set; confirming");
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    rc = waiters_released(sp, deadline, msg, size);
    if (rc != MGO_OK)
        return rc;
    *ret = step_result("draining", "acknowledged", "the primary no longer waits on it");
    return *ret ? MGO_OK : MGO_ENOMEM;
}

/* The shard's facts are large (every node's status): on the heap, not a host thread's stack. */
static int32_t step_draining(const json_t *req, json_t **ret, char *msg, size_t size)
{
    struct shard_probe *sp = malloc(sizeof(*sp));
    if (!sp)
        return MGO_ENOMEM;
    int32_t rc = step_draining_on(sp, req, ret, msg, size);
    free(sp);
    return rc;
}

int32_t api_drain(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                  size_t *ret_len)
{
    char msg[768] = "";
    json_error_t jerr;
    json_t *out = NULL;
    int32_t rc;
    (void)p;
    json_t *req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req || !json_is_object(req)) {
        json_decref(req);
        if (!req && json_error_code(&jerr) == json_error_out_of_memory)
            return MGO_ENOMEM;
        (void)snprintf(msg, sizeof(msg), "request: a JSON object is required");
        return api_fail(MGO_EINVAL, msg, ret_result, ret_len);
    }
    const json_t *ann = json_object_get(req, "annotations");
    const char *state = str(ann, RECONCILE_DRAIN_STATE);
    if (ann && !json_is_object(ann)) {
        (void)snprintf(msg, sizeof(msg), "request: \"annotations\" must be an object");
        rc = MGO_EINVAL;
    } else if (!state) {
        (void)snprintf(msg, sizeof(msg), "request: no drain was requested (annotation %s)",
                       RECONCILE_DRAIN_STATE);
        rc = MGO_EINVAL;
    } else if (strcmp(state, "requested") == 0) {
        /* persisted before any work: a resumed drain knows work may have begun. One drain per
         * shard: it begins only while no other node is draining (a primary mid-switchover
         * must not wait on a standby drain that waits for a primary). */
        struct shard_probe *s = api_opt(req, "nodes") ? calloc(1, sizeof(*s)) : NULL;
        const char *busy = NULL, *me = str(req, "instance");
        rc = MGO_OK;
        if (api_opt(req, "nodes") && !s)
            rc = MGO_ENOMEM;
        else if (s && (rc = read_nodes(req, s, msg, sizeof(msg))) == MGO_OK) {
            size_t i;
            const json_t *e;
            for (i = 0; i < s->n; i++)
                if (i != s->victim && s->nodes[i].draining)
                    busy = s->nodes[i].name;
            /* two drains requested at once: the one whose name sorts first begins */
            json_array_foreach (json_object_get(req, "nodes"), i, e)
                if (!busy && str(e, "drain") && strcmp(str(e, "drain"), "requested") == 0 &&
                    strcmp(str(e, "name"), me) < 0)
                    busy = str(e, "name");
        }
        if (rc == MGO_OK && busy) {
            (void)snprintf(msg, sizeof(msg), "drain of %s waits: another drain is under way (%s)",
                           str(req, "instance"), busy);
            rc = MGO_EAGAIN;
        } else if (rc == MGO_OK) {
            out = step_result(state, "draining", NULL);
            rc = out ? MGO_OK : MGO_ENOMEM;
        }
        free(s);
    } else if (strcmp(state, "draining") == 0) {
        rc = step_draining(req, &out, msg, sizeof(msg));
    } else if (strcmp(state, "acknowledged") == 0) {
        /* The postgres driver has no pooler records: nothing to unregister. */
        out = step_result(state, "ready-for-deletion", NULL);
        rc = out ? MGO_OK : MGO_ENOMEM;
    } else if (strcmp(state, "ready-for-deletion") == 0) {
        out = step_result(state, NULL, "drained: the host may delete the instance");
        rc = out ? MGO_OK : MGO_ENOMEM;
    } else {
        (void)snprintf(msg, sizeof(msg), "request: unknown drain state \"%.64s\"", state);
        rc = MGO_EINVAL;
    }
    json_decref(req);
    if (rc != MGO_OK) {
        json_decref(out);
        if (rc == MGO_ENOMEM)
            return rc;
        return api_fail(rc, msg, ret_result, ret_len);
    }
    return api_finish(out, MGO_OK, ret_result, ret_len);
}
