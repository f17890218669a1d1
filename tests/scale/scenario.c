/* The frame of the scale and rolling-update tests; see scenario.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "scenario.h"

#define SWITCHOVER_KEY "drain.multigres.com/switchover"
#define STATE_KEY      "drain.multigres.com/state"
#define BRING_UP_MS    120000
#define SQL_TIMEOUT_MS 5000
#define COMMIT_TIMEOUT 2000

int64_t scenario_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int op_matches(const json_t *e, const char *op, const char *name)
{
    const char *o = json_string_value(json_object_get(e, "op"));
    const char *i = json_string_value(json_object_get(e, "instance"));
    return o && strcmp(o, op) == 0 && (!name || (i && strcmp(i, name) == 0));
}

int scenario_count_ops(const struct scenario *s, size_t mark, const char *op, const char *name)
{
    int n = 0;
    for (size_t k = mark; k < json_array_size(s->host.log); k++)
        n += op_matches(json_array_get(s->host.log, k), op, name);
    return n;
}

int scenario_first_op(const struct scenario *s, size_t mark, const char *op, const char *name)
{
    for (size_t k = mark; k < json_array_size(s->host.log); k++)
        if (op_matches(json_array_get(s->host.log, k), op, name))
            return (int)k;
    return -1;
}

int scenario_sql(struct scenario *s, int index, const char *sql, char *out, size_t size)
{
    struct phost_object *o = phost_instance_at(&s->host, index);
    if (!o)
        return -1;
    return pg_sql(&s->host.shard, o->node, sql, SQL_TIMEOUT_MS, out, size) == 0 ? 0 : -1;
}

int scenario_fault(struct scenario *s, const char *name, int on)
{
    int free_slot = -1;
    for (int i = 0; i < 4; i++) {
        if (s->faulted[i][0] && strcmp(s->faulted[i], name) == 0) {
            if (!on)
                s->faulted[i][0] = '\0';
            return 0;
        }
        if (!s->faulted[i][0] && free_slot < 0)
            free_slot = i;
    }
    if (!on)
        return 0;
    if (free_slot < 0 || strlen(name) >= sizeof(s->faulted[0]))
        return -1;
    (void)snprintf(s->faulted[free_slot], sizeof(s->faulted[0]), "%s", name);
    return 0;
}

static int faulted(const struct scenario *s, const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (s->faulted[i][0] && strcasecmp(s->faulted[i], name) == 0)
            return 1;
    return 0;
}

int scenario_start(struct scenario *s, const char *manifest_path)
{
    return scenario_start_at(s, manifest_path, 3);
}

int scenario_start_at(struct scenario *s, const char *manifest_path, int replicas)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    char ci[256];
    memset(s, 0, sizeof(*s));
    s->manifest = phost_read_file(manifest_path);
    if (!s->manifest) {
        fprintf(stderr, "scenario: cannot read %s\n", manifest_path);
        return -1;
    }
    if (replicas != 3) {
        char to[64];
        (void)snprintf(to, sizeof(to), "replicasPerCell: %d", replicas);
        char *at = strstr(s->manifest, "replicasPerCell: 3");
        if (!at || strlen(to) != strlen("replicasPerCell: 3")) {
            fprintf(stderr, "scenario: cannot size %s to %d\n", manifest_path, replicas);
            return -1;
        }
        memcpy(at, to, strlen(to));
    }
    int base = phost_free_port_base(16);
    if (base < 0 || etcd_harness_start(&s->etcd) != 0 || mgo_open(&host, &s->plugin) != MGO_OK ||
        phost_init(&s->host, s->plugin, &s->etcd, "t", base) != 0 ||
        phost_set_spec_text(&s->host, s->manifest) != 0)
        return -1;
    int64_t t0 = scenario_now_ms();
    if (phost_converge(&s->host, BRING_UP_MS) != 0)
        return -1;
    s->bring_up_ms = scenario_now_ms() - t0;
    if (phost_probe_primary(&s->host) < 0) {
        fprintf(stderr, "scenario: no primary after the bring-up\n");
        return -1;
    }
    pg_node_conninfo(&s->host.shard, s->host.primary, ci, sizeof(ci));
    s->writer = writer_start(ci, COMMIT_TIMEOUT);
    if (!s->writer)
        return -1;
    phost_follow(&s->host, s->writer);
    s->host.after_step = scenario_watch;
    s->host.after_actions = scenario_after_actions;
    s->host.after_persist = scenario_after_persist;
    s->host.after_ctx = s;
    s->watching = 1;
    return 0;
}

void scenario_stop(struct scenario *s)
{
    writer_free(s->writer);
    s->writer = NULL;
    phost_fini(&s->host);
    if (s->plugin)
        mgo_close(s->plugin);
    s->plugin = NULL;
    etcd_harness_stop(&s->etcd);
    free(s->manifest);
    s->manifest = NULL;
}

int scenario_edit(struct scenario *s, const char *from, const char *to)
{
    char *at = strstr(s->manifest, from);
    if (!at)
        return -1;
    size_t head = (size_t)(at - s->manifest), from_len = strlen(from), to_len = strlen(to);
    size_t total = strlen(s->manifest) - from_len + to_len;
    char *text = malloc(total + 1);
    if (!text)
        return -1;
    memcpy(text, s->manifest, head);
    memcpy(text + head, to, to_len);
    memcpy(text + head + to_len, at + from_len, strlen(at + from_len) + 1);
    free(s->manifest);
    s->manifest = text;
    return phost_set_spec_text(&s->host, text);
}

int scenario_check_writes(struct scenario *s, char *report, size_t size)
{
    if (phost_probe_primary(&s->host) < 0) {
        (void)snprintf(report, size, "no primary answers");
        return -1;
    }
    return dhost_check_writes(s->writer, &s->host.shard, s->host.primary, report, size);
}

/* ---- the observer ----------------------------------------------------------------------- */

/* A report into buf, truncated when it does not fit (reports only). */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

int scenario_standby_names(const char *value, char names[][64], int max)
{
    const char *c = strchr(value, '(') ? strchr(value, '(') + 1 : value;
    int n = 0;
    while (*c && *c != ')' && n < max) {
        c += strspn(c, " ,");
        if (!*c || *c == ')')
            break;
        size_t len;
        if (*c == '"') {
            len = strcspn(c + 1, "\"");
            (void)snprintf(names[n++], 64, "%.*s", (int)len, c + 1);
            c += len + (c[1 + len] ? 2 : 1);
        } else {
            len = strcspn(c, " ,)");
            (void)snprintf(names[n++], 64, "%.*s", (int)len, c);
            c += len;
        }
    }
    return n;
}

enum verdict { V_FAIL, V_TRANSIENT, V_FAULT };

/* One finding: a tolerated one is counted and 0 returned; any other is kept and -1 returned. */
static int judge(struct scenario *s, enum verdict v, const char *what)
{
    if (v == V_TRANSIENT) {
        size_t used = strlen(s->transient_log);
        s->transients++;
        fprintf(stderr, "scenario: transient (switchover under way) at step %d: %s\n",
                s->host.steps, what);
        say(s->transient_log + used, sizeof(s->transient_log) - used, "step %d: %s\n",
            s->host.steps, what);
        json_array_append_new(s->host.log,
                              json_pack("{s:s, s:s, s:i, s:s}", "op", "transient", "instance", "",
                                        "step", s->host.steps, "what", what));
        return 0;
    }
    if (v == V_FAULT) {
        s->faults++;
        fprintf(stderr, "scenario: injected fault seen at step %d: %s\n", s->host.steps, what);
        return 0;
    }
    if (!s->violation[0])
        say(s->violation, sizeof(s->violation), "step %d: %s", s->host.steps, what);
    fprintf(stderr, "scenario: VIOLATION at step %d: %s\n", s->host.steps, what);
    return -1;
}

/* Instance `name` is being drained (`draining`) and, since it was created, mgo_drain abandoned
 * a switchover of it (a drain step from `draining fenced:...` back to `draining`): the old
 * primary was started again and its standbys reconnect to it at their next retry. */
static int abandoned_switchover(const struct phost *h, const struct phost_object *o)
{
    const char *state = json_string_value(json_object_get(o->annotations, STATE_KEY));
    if (!state || strcmp(state, "draining") != 0)
        return 0;
    for (size_t k = json_array_size(h->log); k-- > 0;) {
        const json_t *e = json_array_get(h->log, k);
        const char *op = json_string_value(json_object_get(e, "op"));
        const char *inst = json_string_value(json_object_get(e, "instance"));
        if (!op || !inst || strcmp(inst, o->name) != 0)
            continue;
        if (strcmp(op, "create") == 0)
            return 0;
        const char *from = json_string_value(json_object_get(e, "from"));
        const char *to = json_string_value(json_object_get(e, "to"));
        if (strcmp(op, "drain") == 0 && from && to && strncmp(from, "draining fenced:", 16) == 0 &&
            strcmp(to, "draining") == 0)
            return 1;
    }
    return 0;
}

/* A planned switchover is under way: an instance carries the switchover annotation, or one
 * that carried it was deleted in this step (phost logs its deletion with it), or its drain
 * abandoned one and goes on (lifecycle.md "Drain of the primary": the old primary is started
 * again and the drain retries). */
static int switchover_window(const struct scenario *s)
{
    const struct phost *h = &s->host;
    if (!s->allow_switchover)
        return 0;
    for (int i = 0; i < h->ninst; i++)
        if (json_object_get(h->inst[i].annotations, SWITCHOVER_KEY) ||
            abandoned_switchover(h, &h->inst[i]))
            return 1;
    for (size_t k = json_array_size(h->log); k-- > 0;) {
        const json_t *e = json_array_get(h->log, k);
        if (json_integer_value(json_object_get(e, "step")) != h->steps)
            break;
        const char *op = json_string_value(json_object_get(e, "op"));
        if (op && strcmp(op, "delete") == 0 && json_is_string(json_object_get(e, "switchover")))
            return 1;
    }
    return 0;
}

/* The first column of the first row of `sql` on node `node` over a fresh connection: 0, or -1
 * with err. */
static int query(struct phost *h, int node, const char *sql, char *out, size_t size, char *err,
                 size_t err_size)
{
    char ci[256];
    PGconn *c = NULL;
    PGresult *r = NULL;
    pg_node_conninfo(&h->shard, node, ci, sizeof(ci));
    int rc = pg_harness_connect(ci, SQL_TIMEOUT_MS, &c, err, err_size) == 0 &&
                     pg_harness_query(c, sql, SQL_TIMEOUT_MS, &r, err, err_size) == 0
                 ? 0
                 : -1;
    if (rc == 0)
        say(out, size, "%s", r && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    if (c)
        PQfinish(c);
    return rc;
}

/* The nodes answering as a primary (pg_is_in_recovery() false), into list; their number. */
static int sql_primaries(struct phost *h, int *first, char *list, size_t size)
{
    int n = 0;
    list[0] = '\0';
    *first = -1;
    for (int i = 0; i < h->ninst; i++) {
        char out[16] = "", err[256];
        int node = h->inst[i].node;
        if (query(h, node, "SELECT pg_is_in_recovery()", out, sizeof(out), err, sizeof(err)) != 0 ||
            strcmp(out, "f") != 0)
            continue;
        size_t used = strlen(list);
        say(list + used, size - used, "%s%s", n ? ", " : "", h->inst[i].name);
        if (n++ == 0)
            *first = node;
    }
    return n;
}

/* The SQL half of the observer (scenario.h). 0, or -1 when something was not tolerated. */
static int sql_watch(struct scenario *s, int window)
{
    struct phost *h = &s->host;
    char ssn[1100] = "", streaming[2048] = "", names[32][64], list[1024], err[256], why[1400];
    int primary = -1, rc = 0;
    int primaries = sql_primaries(h, &primary, list, sizeof(list));
    if (primaries > 1) {
        say(why, sizeof(why), "sql: %d instances answer as a primary: %s", primaries, list);
        return judge(s, V_FAIL, why); /* never tolerated */
    }
    if (primaries == 0)
        return judge(s, window ? V_TRANSIENT : V_FAIL, "sql: no instance answers as a primary");
    const char *pname = h->shard.nodes[primary].name;
    if (query(h, primary, "SHOW synchronous_standby_names", ssn, sizeof(ssn), err, sizeof(err)) !=
            0 ||
        query(h, primary,
              "SELECT ',' || coalesce(string_agg(application_name, ','), '') || ',' FROM "
              "pg_stat_replication WHERE state = 'streaming'",
              streaming, sizeof(streaming), err, sizeof(err)) != 0) {
        say(why, sizeof(why), "sql: the primary %s did not answer: %s", pname, err);
        return judge(s, window ? V_TRANSIENT : V_FAIL, why);
    }
    json_array_append_new(h->log, json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "op", "watch",
                                            "instance", "", "step", h->steps, "primary", pname,
                                            "ssn", ssn, "streaming", streaming));
    /* every acknowledged commit is on the primary */
    if (s->writer) {
        char ci[256], report[768];
        size_t missing = 0;
        pg_node_conninfo(&h->shard, primary, ci, sizeof(ci));
        if (writer_check(ci, s->writer, &missing, report, sizeof(report)) != 0) {
            say(why, sizeof(why), "sql: acknowledged commits on %s: %s", pname, report);
            rc |= judge(s, V_FAIL, why);
        } else {
            s->writer_checks++;
        }
    }
    int n = scenario_standby_names(ssn, names, 32), usable = 0;
    if (n == 0) {
        say(why, sizeof(why), "sql: synchronous_standby_names of %s is empty", pname);
        return judge(s, V_FAIL, why) | rc;
    }
    for (int k = 0; k < n; k++) {
        char needle[70];
        struct phost_object *o = phost_instance(h, names[k]);
        const char *state =
            o ? json_string_value(json_object_get(o->annotations, STATE_KEY)) : NULL;
        if (state &&
            (strcmp(state, "acknowledged") == 0 || strcmp(state, "ready-for-deletion") == 0)) {
            say(why, sizeof(why), "sql: %s is named in %s (%s) though its drain is %s", names[k],
                pname, ssn, state);
            rc |= judge(s, V_FAIL, why);
        }
        if (snprintf(needle, sizeof(needle), ",%s,", names[k]) >= (int)sizeof(needle) ||
            !strstr(streaming, needle)) {
            say(why, sizeof(why), "sql: %s is named in %s (%s) but does not stream from it",
                names[k], pname, ssn);
            rc |= judge(s, faulted(s, names[k]) ? V_FAULT : window ? V_TRANSIENT : V_FAIL, why);
            continue;
        }
        if (o && (!state || strcmp(state, "requested") == 0))
            usable++;
    }
    if (usable == 0) {
        say(why, sizeof(why), "sql: no named streaming standby of %s is out of a drain (%s)", pname,
            ssn);
        rc |= judge(s, window ? V_TRANSIENT : V_FAIL, why);
    }
    return rc;
}

int scenario_watch(struct phost *h, void *ctx)
{
    struct scenario *s = ctx;
    json_t *r = NULL, *v;
    size_t k;
    if (!s->watching)
        return 0;
    int rc = 0, window = switchover_window(s);
    s->watched_steps++;
    if (phost_observe(h, &r) < 0) {
        json_decref(r);
        return judge(s, V_FAIL, h->error);
    }
    json_array_foreach (json_object_get(r, "violations"), k, v) {
        const char *inv = json_string_value(json_object_get(v, "invariant"));
        const char *inst = json_string_value(json_object_get(v, "instance"));
        const char *evidence = json_string_value(json_object_get(v, "evidence"));
        char what[1200];
        (void)snprintf(what, sizeof(what), "mgo_observe %s %s: %s", inv ? inv : "?",
                       inst ? inst : "", evidence ? evidence : "");
        enum verdict verdict = V_FAIL;
        if (!inv)
            verdict = V_FAIL;
        else if (strcmp(inv, "one-primary") == 0) /* none, during the fence; never two */
            verdict = window && evidence && strncmp(evidence, "no instance", 11) == 0 ? V_TRANSIENT
                                                                                      : V_FAIL;
        else if (strcmp(inv, "sync-standby-streaming") == 0)
            verdict = faulted(s, inst) ? V_FAULT : window ? V_TRANSIENT : V_FAIL;
        else if (strcmp(inv, "durability") == 0)
            verdict = window ? V_TRANSIENT : V_FAIL;
        if (judge(s, verdict, what) != 0)
            rc = -1;
    }
    json_decref(r);
    if (sql_watch(s, window) != 0)
        rc = -1;
    return rc;
}

int scenario_after_actions(struct phost *h, int deleted, void *ctx)
{
    struct scenario *s = ctx;
    (void)h;
    if (!s->watching || deleted == 0)
        return 0;
    s->delete_checks++;
    return sql_watch(s, switchover_window(s));
}

int scenario_after_persist(struct phost *h, struct phost_object *o, void *ctx)
{
    struct scenario *s = ctx;
    const char *state = json_string_value(json_object_get(o->annotations, STATE_KEY));
    char ssn[1100] = "", sync[256] = "", names[32][64], sql[300], err[256], why[1500];
    if (!s->watching || !state || strcmp(state, "acknowledged") != 0)
        return 0;
    /* replication no longer depends on it (lifecycle.md "Draining an instance"): read the
     * primary, the new one after a switchover */
    int primary = phost_probe_primary(h);
    if (primary < 0)
        return judge(s, V_FAIL, "acknowledged persisted while no instance answers as a primary");
    (void)snprintf(sql, sizeof(sql),
                   "SELECT coalesce(string_agg(sync_state, ','), '') FROM pg_stat_replication "
                   "WHERE lower(application_name) = lower('%s')",
                   o->name);
    if (query(h, primary, "SHOW synchronous_standby_names", ssn, sizeof(ssn), err, sizeof(err)) !=
            0 ||
        query(h, primary, sql, sync, sizeof(sync), err, sizeof(err)) != 0) {
        say(why, sizeof(why), "%s acknowledged: the primary %s did not answer: %s", o->name,
            h->shard.nodes[primary].name, err);
        return judge(s, V_FAIL, why);
    }
    s->ack_checks++;
    json_array_append_new(h->log,
                          json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "op", "ack-check", "instance",
                                    o->name, "step", h->steps, "primary",
                                    h->shard.nodes[primary].name, "ssn", ssn, "sync_state", sync));
    int rc = 0, n = scenario_standby_names(ssn, names, 32);
    for (int k = 0; k < n; k++)
        if (strcasecmp(names[k], o->name) == 0 || strcmp(names[k], "*") == 0) {
            say(why, sizeof(why), "%s persisted acknowledged while %s names it (%s)", o->name,
                h->shard.nodes[primary].name, ssn);
            rc |= judge(s, V_FAIL, why);
        }
    char states[300];
    (void)snprintf(states, sizeof(states), ",%s,", sync);
    if (strstr(states, ",sync,") || strstr(states, ",quorum,") || strstr(states, ",potential,")) {
        say(why, sizeof(why), "%s persisted acknowledged while %s reports it %s", o->name,
            h->shard.nodes[primary].name, sync);
        rc |= judge(s, V_FAIL, why);
    }
    return rc;
}
