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

int scenario_start(struct scenario *s, const char *manifest_path)
{
    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    char ci[256];
    memset(s, 0, sizeof(*s));
    s->manifest = phost_read_file(manifest_path);
    if (!s->manifest) {
        fprintf(stderr, "scenario: cannot read %s\n", manifest_path);
        return -1;
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

/* The standby names of a synchronous_standby_names value ("ANY 1 (\"a\", b)", "a, b", ...),
 * without quotes; the number found. */
static int standby_names(const char *value, char names[][64], int max)
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
            c += len + 2;
        } else {
            len = strcspn(c, " ,)");
            (void)snprintf(names[n++], 64, "%.*s", (int)len, c);
            c += len;
        }
    }
    return n;
}

/* With SQL only: one primary, synchronous replication on, every named standby streaming from
 * it, and at least one of them not being drained. 0, or 1 with why. */
static int sql_check(struct scenario *s, char *why, size_t size)
{
    struct phost *h = &s->host;
    char ssn[1100] = "", streaming[2048] = "", names[32][64];
    int primaries = 0, primary = -1;
    for (int i = 0; i < h->ninst; i++) {
        char out[16] = "";
        int node = h->inst[i].node;
        char ci[256], err[256];
        PGconn *c = NULL;
        PGresult *r = NULL;
        pg_node_conninfo(&h->shard, node, ci, sizeof(ci));
        if (pg_harness_connect(ci, SQL_TIMEOUT_MS, &c, err, sizeof(err)) != 0)
            continue;
        if (pg_harness_query(c, "SELECT pg_is_in_recovery()", SQL_TIMEOUT_MS, &r, err,
                             sizeof(err)) == 0 &&
            r && PQntuples(r) == 1)
            (void)snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        if (strcmp(out, "f") == 0) {
            primaries++;
            primary = node;
        }
    }
    if (primaries != 1) {
        say(why, size, "sql: %d instances answer as a primary", primaries);
        return 1;
    }
    if (pg_sql(&h->shard, primary, "SHOW synchronous_standby_names", SQL_TIMEOUT_MS, ssn,
               sizeof(ssn)) != 0 ||
        pg_sql(&h->shard, primary,
               "SELECT ',' || coalesce(string_agg(application_name, ','), '') || ',' FROM "
               "pg_stat_replication WHERE state = 'streaming'",
               SQL_TIMEOUT_MS, streaming, sizeof(streaming)) != 0) {
        say(why, size, "sql: the primary %s did not answer", h->shard.nodes[primary].name);
        return 1;
    }
    json_array_append_new(h->log,
                          json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "op", "watch", "instance", "",
                                    "step", h->steps, "primary", h->shard.nodes[primary].name,
                                    "ssn", ssn, "streaming", streaming));
    int n = standby_names(ssn, names, 32), usable = 0;
    if (n == 0) {
        say(why, size, "sql: synchronous_standby_names of %s is empty",
            h->shard.nodes[primary].name);
        return 1;
    }
    for (int k = 0; k < n; k++) {
        char needle[70];
        if (snprintf(needle, sizeof(needle), ",%s,", names[k]) >= (int)sizeof(needle) ||
            !strstr(streaming, needle)) {
            say(why, size, "sql: %s is named in %s (%s) but does not stream from it", names[k],
                h->shard.nodes[primary].name, ssn);
            return 1;
        }
        struct phost_object *o = phost_instance(h, names[k]);
        const char *state =
            o ? json_string_value(json_object_get(o->annotations, STATE_KEY)) : NULL;
        if (o && (!state || strcmp(state, "requested") == 0))
            usable++;
    }
    if (usable == 0) {
        say(why, size, "sql: no named streaming standby of %s is out of a drain (%s)",
            h->shard.nodes[primary].name, ssn);
        return 1;
    }
    return 0;
}

static int switchover_under_way(const struct phost *h)
{
    for (int i = 0; i < h->ninst; i++)
        if (json_object_get(h->inst[i].annotations, SWITCHOVER_KEY))
            return 1;
    return 0;
}

/* A violation: a transient one is logged and 0 returned; any other is kept and -1 returned. */
static int judge(struct scenario *s, int transient, const char *what)
{
    if (transient) {
        size_t used = strlen(s->transient_log);
        s->transients++;
        fprintf(stderr, "scenario: transient (switchover under way) at step %d: %s\n",
                s->host.steps, what);
        say(s->transient_log + used, sizeof(s->transient_log) - used, "step %d: %s\n",
            s->host.steps, what);
        return 0;
    }
    if (!s->violation[0])
        say(s->violation, sizeof(s->violation), "step %d: %s", s->host.steps, what);
    fprintf(stderr, "scenario: VIOLATION at step %d: %s\n", s->host.steps, what);
    return -1;
}

int scenario_watch(struct phost *h, void *ctx)
{
    struct scenario *s = ctx;
    json_t *r = NULL, *v;
    size_t k;
    char why[1024];
    int rc = 0, transient = s->allow_switchover && switchover_under_way(h);
    if (!s->watching)
        return 0;
    s->watched_steps++;
    if (phost_observe(h, &r) < 0) {
        json_decref(r);
        return judge(s, 0, h->error);
    }
    json_array_foreach (json_object_get(r, "violations"), k, v) {
        const char *inv = json_string_value(json_object_get(v, "invariant"));
        char what[1200];
        (void)snprintf(what, sizeof(what), "mgo_observe %s %s: %s", inv ? inv : "?",
                       json_string_value(json_object_get(v, "instance"))
                           ? json_string_value(json_object_get(v, "instance"))
                           : "",
                       json_string_value(json_object_get(v, "evidence")));
        int may_pass =
            inv && (strcmp(inv, "one-primary") == 0 || strcmp(inv, "sync-standby-streaming") == 0 ||
                    strcmp(inv, "durability") == 0);
        if (judge(s, transient && may_pass, what) != 0)
            rc = -1;
    }
    json_decref(r);
    if (sql_check(s, why, sizeof(why)) != 0 && judge(s, transient, why) != 0)
        rc = -1;
    return rc;
}
