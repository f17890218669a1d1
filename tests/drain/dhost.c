/* The drain host of the tests; see dhost.h. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dhost.h"

#define STATE_KEY      "drain.multigres.com/state"
#define SWITCHOVER_KEY "drain.multigres.com/switchover"

int dhost_node(const struct dhost *h, const char *name)
{
    for (int i = 0; i < h->shard->n; i++)
        if (strcmp(h->shard->nodes[i].name, name) == 0)
            return i;
    return -1;
}

int dhost_node_running(const struct dhost *h, int i)
{
    char path[600];
    (void)snprintf(path, sizeof(path), "%s/postmaster.pid", h->shard->nodes[i].datadir);
    return access(path, F_OK) == 0;
}

static json_t *request(struct dhost *h)
{
    json_t *nodes = json_array();
    for (int i = 0; i < h->shard->n; i++) {
        char ci[256];
        const char *cell = "z1";
        int index = i, ready = 1;
        if (!h->shard->nodes[i].name[0])
            continue;
        if (h->describe)
            h->describe(h, i, &cell, &index, &ready);
        pg_node_conninfo(h->shard, i, ci, sizeof(ci));
        json_t *n = json_pack("{s:s, s:s, s:i, s:b, s:s}", "name", h->shard->nodes[i].name, "cell",
                              cell, "index", index, "ready", ready, "conninfo", ci);
        if (h->node_drain[i][0] && strcmp(h->shard->nodes[i].name, h->instance) != 0)
            json_object_set_new(n, "drain", json_string(h->node_drain[i]));
        if (!dhost_node_running(h, i)) {
            char state[64], lsn[64];
            json_object_set_new(n, "running", json_false());
            if (pg_node_controldata(h->shard, i, "Database cluster state", state, sizeof(state)) ==
                0)
                json_object_set_new(n, "control_state", json_string(state));
            if (pg_node_controldata(h->shard, i, "Latest checkpoint location", lsn, sizeof(lsn)) ==
                0)
                json_object_set_new(n, "checkpoint_lsn", json_string(lsn));
        }
        json_array_append_new(nodes, n);
    }
    json_t *ann = json_pack("{s:s}", STATE_KEY, h->state);
    if (h->switchover[0])
        json_object_set_new(ann, SWITCHOVER_KEY, json_string(h->switchover));
    return json_pack("{s:s, s:o, s:s, s:o, s:i}", "instance", h->instance, "annotations", ann,
                     "durability", h->durability[0] ? h->durability : "AT_LEAST_2", "nodes", nodes,
                     "deadline_ms", h->deadline_ms > 0 ? h->deadline_ms : 10000);
}

static int apply(struct dhost *h, const json_t *a)
{
    const char *type = json_string_value(json_object_get(a, "type"));
    const char *inst = json_string_value(json_object_get(a, "instance"));
    if (type && strcmp(type, "annotate") == 0) {
        const char *key;
        json_t *v;
        json_object_foreach (json_object_get(a, "annotations"), key, v) {
            if (strcmp(key, STATE_KEY) == 0 && json_is_string(v))
                (void)snprintf(h->state, sizeof(h->state), "%s", json_string_value(v));
            else if (strcmp(key, SWITCHOVER_KEY) == 0)
                (void)snprintf(h->switchover, sizeof(h->switchover), "%s",
                               json_is_string(v) ? json_string_value(v) : "");
        }
        return h->persist ? h->persist(h) : 0;
    }
    int i = inst ? dhost_node(h, inst) : -1;
    if (i < 0)
        return -1;
    if (type && strcmp(type, "stop") == 0) {
        h->stops++;
        return h->stop(h, i);
    }
    if (type && strcmp(type, "start") == 0) {
        h->starts++;
        return h->start(h, i);
    }
    return -1;
}

int32_t dhost_call(struct dhost *h)
{
    json_t *req = request(h);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!text) {
        (void)snprintf(h->message, sizeof(h->message), "dhost: out of memory");
        return h->last_rc = MGO_ENOMEM;
    }
    h->calls++;
    int32_t rc = mgo_drain(h->plugin, text, strlen(text), &res, &len);
    free(text);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    const char *m = json_string_value(json_object_get(r, "message"));
    if (!m)
        m = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    (void)snprintf(h->message, sizeof(h->message), "%s", m ? m : "");
    h->last_rc = rc;
    if (rc == MGO_OK) {
        size_t k;
        json_t *a;
        json_array_foreach (json_object_get(r, "actions"), k, a) {
            const char *type = json_string_value(json_object_get(a, "type"));
            if (h->point)
                h->point(h, type ? type : "?");
            if (apply(h, a) != 0) {
                (void)snprintf(h->message, sizeof(h->message), "action %zu (%s) failed", k,
                               type ? type : "?");
                rc = -1000;
                break;
            }
            if (h->point)
                h->point(h, "after");
        }
    }
    json_decref(r);
    return rc;
}

int32_t dhost_run(struct dhost *h, const char *until, int max_calls, int pause_ms)
{
    int32_t rc = MGO_EAGAIN;
    for (int i = 0; i < max_calls && strcmp(h->state, until) != 0; i++) {
        char before[160];
        int acts = h->stops + h->starts;
        (void)snprintf(before, sizeof(before), "%s|%s", h->state, h->switchover);
        rc = dhost_call(h);
        fprintf(stderr, "dhost %s: [%s] -> %s %s (%d) %s\n", h->instance, before, h->state,
                h->switchover, rc, h->message);
        if (rc != MGO_OK && rc != MGO_EAGAIN)
            return rc;
        char after[160];
        (void)snprintf(after, sizeof(after), "%s|%s", h->state, h->switchover);
        if (strcmp(before, after) == 0 && acts == h->stops + h->starts && pause_ms > 0) {
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return strcmp(h->state, until) == 0 ? 0 : rc;
}

int dhost_rejoin(struct pg_shard *s, int old, int primary)
{
    char sql[200];
    (void)pg_node_stop(s, old, "fast"); /* reaps a postmaster another process stopped */
    if (pg_node_follow(s, old, primary) != 0 || pg_node_start(s, old) != 0)
        return -1;
    (void)snprintf(sql, sizeof(sql),
                   "SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' "
                   "AND state = 'streaming'",
                   s->nodes[old].name);
    return pg_sql_wait(s, primary, sql, "1", 30000) == 0 ? 0 : -1;
}

int dhost_restore_sync_set(struct pg_shard *s, int primary)
{
    char names[400] = "", sql[512], count[16];
    size_t o = 0;
    for (int i = 0, k = 0; i < s->n; i++)
        if (i != primary)
            o += (size_t)snprintf(names + o, o < sizeof(names) ? sizeof(names) - o : 0, "%s\"%s\"",
                                  k++ ? ", " : "", s->nodes[i].name);
    (void)snprintf(sql, sizeof(sql), "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (%s)'",
                   names);
    (void)snprintf(count, sizeof(count), "%d", s->n - 1);
    if (pg_sql(s, primary, sql, 5000, NULL, 0) != 0 ||
        pg_sql(s, primary, "SELECT pg_reload_conf()", 5000, NULL, 0) != 0)
        return -1;
    return pg_sql_wait(s, primary,
                       "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum' "
                       "AND state = 'streaming'",
                       count, 30000) == 0
               ? 0
               : -1;
}

int dhost_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int dhost_observe(mgo_plugin *plugin, const struct pg_shard *s, char *report, size_t size)
{
    struct dhost h = {.shard = (struct pg_shard *)s};
    json_t *nodes = json_array();
    for (int i = 0; i < s->n; i++) {
        char ci[256];
        if (!s->nodes[i].name[0])
            continue;
        pg_node_conninfo(s, i, ci, sizeof(ci));
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:b}", "name", s->nodes[i].name, "conninfo", ci,
                                        "running", dhost_node_running(&h, i)));
    }
    json_t *req = json_pack("{s:i, s:[{s:s, s:o}]}", "deadline_ms", 10000, "shards", "name",
                            "shard", "nodes", nodes);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!text)
        return -1;
    int32_t rc = mgo_observe(plugin, text, strlen(text), &res, &len);
    free(text);
    (void)snprintf(report, size, "%.*s", (int)len, res ? res : "");
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    mgo_free(res);
    int ok = rc != MGO_OK ? -1 : json_is_true(json_object_get(r, "ok")) ? 1 : 0;
    json_decref(r);
    return ok;
}

int dhost_stop_harness(struct dhost *h, int node)
{
    return pg_node_stop(h->shard, node, "fast") == 0 ? 0
                                                     : pg_node_stop(h->shard, node, "immediate");
}

int dhost_start_harness(struct dhost *h, int node)
{
    return pg_node_start(h->shard, node);
}

int dhost_follow_switchover(struct dhost *h)
{
    struct dhost_follow *f = h->ctx;
    if (!f || strncmp(h->switchover, "promoting:", 10) != 0)
        return 0;
    int i = dhost_node(h, h->switchover + 10);
    if (i < 0)
        return -1;
    char ci[256];
    pg_node_conninfo(h->shard, i, ci, sizeof(ci));
    if (f->writer)
        writer_switch(f->writer, ci);
    if (f->primary)
        *f->primary = i;
    return 0;
}

void dhost_init(struct dhost *h, mgo_plugin *plugin, struct pg_shard *s, const char *instance,
                struct dhost_follow *f)
{
    memset(h, 0, sizeof(*h));
    h->plugin = plugin;
    h->shard = s;
    (void)snprintf(h->instance, sizeof(h->instance), "%s", instance);
    (void)snprintf(h->state, sizeof(h->state), "requested");
    h->deadline_ms = 5000;
    h->stop = dhost_stop_harness;
    h->start = dhost_start_harness;
    h->persist = dhost_follow_switchover;
    h->ctx = f;
}

int dhost_check_writes(struct writer *w, const struct pg_shard *s, int primary, char *report,
                       size_t size)
{
    char ci[256], found[768];
    size_t missing = 0;
    struct writer_stats st, before;
    writer_get_stats(w, &before);
    for (int i = 0; i < 200; i++) {
        writer_get_stats(w, &st);
        if (st.acked > before.acked + 10)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int resumed = st.acked > before.acked + 10;
    pg_node_conninfo(s, primary, ci, sizeof(ci));
    int rc = writer_check(ci, w, &missing, found, sizeof(found));
    writer_get_stats(w, &st);
    (void)snprintf(report, size,
                   "%s%zu acknowledged, %zu failed, %zu timed out, longest stall %lld ms; %s",
                   resumed ? "" : "writes did not resume; ", st.acked, st.failed, st.timed_out,
                   (long long)st.longest_stall_ms, found);
    return resumed && rc == 0 && missing == 0 ? 0 : -1;
}
