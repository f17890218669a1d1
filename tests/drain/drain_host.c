/*
 * A drain host as its own process, for the crash-resume test (test_drain_crash.c): it keeps
 * the drain's annotations in a state file (written to a temporary file, synced, renamed, like a
 * host persisting to its store), drives mgo_drain to ready-for-deletion, and stops a primary
 * itself (SIGINT to the postmaster of postmaster.pid, then SIGQUIT). It does not own the
 * postmasters (the test does), so a start action ends it with exit status 4 after the
 * annotations are persisted: the test starts the node and runs the host again.
 *
 *   drain_host STATE_FILE KILL_AT [KILL_ON]
 *
 * KILL_AT > 0: the host sends itself SIGKILL at the KILL_AT-th point, a point being just
 * before and just after each action. KILL_ON: it sends itself SIGKILL as soon as the library
 * logs a message containing KILL_ON (inside an mgo_drain call: after a promotion, say).
 * Exit 0 at ready-for-deletion, 1 on failure, 4 as above.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dhost.h"

static const char *state_path, *kill_on;
static int kill_at, points;
static struct pg_shard shard;

static int save(struct dhost *h)
{
    json_t *nodes = json_array(), *drains = json_array();
    for (int i = 0; i < shard.n; i++) {
        json_array_append_new(nodes,
                              json_pack("{s:i, s:s, s:s}", "port", shard.nodes[i].port, "name",
                                        shard.nodes[i].name, "datadir", shard.nodes[i].datadir));
        json_array_append_new(drains, json_string(h->node_drain[i]));
    }
    json_t *doc = json_pack("{s:{s:s, s:s, s:o}, s:s, s:s, s:s, s:o}", "shard", "dir", shard.dir,
                            "sockdir", shard.sockdir, "nodes", nodes, "instance", h->instance,
                            "state", h->state, "switchover", h->switchover, "node_drain", drains);
    char tmp[600];
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = fd < 0 || json_dumpfd(doc, fd, JSON_INDENT(1)) != 0 || fsync(fd) != 0 ? -1 : 0;
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    json_decref(doc);
    if (rc == 0 && rename(tmp, state_path) != 0)
        rc = -1;
    return rc;
}

static int load(struct dhost *h)
{
    json_error_t e;
    json_t *doc = json_load_file(state_path, 0, &e), *sh = json_object_get(doc, "shard");
    const json_t *n;
    size_t i;
    if (!doc) {
        fprintf(stderr, "drain_host: %s: %s\n", state_path, e.text);
        return -1;
    }
    memset(&shard, 0, sizeof(shard));
    (void)snprintf(shard.dir, sizeof(shard.dir), "%s",
                   json_string_value(json_object_get(sh, "dir")));
    (void)snprintf(shard.sockdir, sizeof(shard.sockdir), "%s",
                   json_string_value(json_object_get(sh, "sockdir")));
    if (json_array_size(json_object_get(sh, "nodes")) > PG_SHARD_MAX_NODES ||
        !json_string_value(json_object_get(doc, "instance")) ||
        !json_string_value(json_object_get(doc, "state")) ||
        !json_string_value(json_object_get(doc, "switchover"))) {
        fprintf(stderr, "drain_host: %s: malformed state\n", state_path);
        json_decref(doc);
        return -1;
    }
    json_array_foreach (json_object_get(sh, "nodes"), i, n) {
        struct pg_node *p = &shard.nodes[shard.n++];
        p->port = (int)json_integer_value(json_object_get(n, "port"));
        (void)snprintf(p->name, sizeof(p->name), "%s",
                       json_string_value(json_object_get(n, "name")));
        (void)snprintf(p->datadir, sizeof(p->datadir), "%s",
                       json_string_value(json_object_get(n, "datadir")));
        (void)snprintf(h->node_drain[i], sizeof(h->node_drain[i]), "%s",
                       json_string_value(json_array_get(json_object_get(doc, "node_drain"), i)));
    }
    (void)snprintf(h->instance, sizeof(h->instance), "%s",
                   json_string_value(json_object_get(doc, "instance")));
    (void)snprintf(h->state, sizeof(h->state), "%s",
                   json_string_value(json_object_get(doc, "state")));
    (void)snprintf(h->switchover, sizeof(h->switchover), "%s",
                   json_string_value(json_object_get(doc, "switchover")));
    json_decref(doc);
    return 0;
}

static int pidfile_gone(const char *datadir, long ms)
{
    char path[600];
    (void)snprintf(path, sizeof(path), "%s/postmaster.pid", datadir);
    for (long t = 0; t < ms; t += 20) {
        if (access(path, F_OK) != 0)
            return 1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int stop(struct dhost *h, int i)
{
    char path[600];
    long pid = 0;
    (void)h;
    (void)snprintf(path, sizeof(path), "%s/postmaster.pid", shard.nodes[i].datadir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* not running */
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 0) {
        fclose(f);
        return -1;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGINT) != 0 && errno != ESRCH)
        return -1;
    if (pidfile_gone(shard.nodes[i].datadir, 30000))
        return 0;
    (void)kill((pid_t)pid, SIGQUIT);
    return pidfile_gone(shard.nodes[i].datadir, 30000) ? 0 : -1;
}

static int start(struct dhost *h, int i)
{
    (void)h;
    fprintf(stderr, "drain_host: start %s: the test starts it\n", shard.nodes[i].name);
    exit(4);
}

static void point(struct dhost *h, const char *what)
{
    (void)h;
    if (++points == kill_at) {
        fprintf(stderr, "drain_host: SIGKILL at point %d (%s)\n", points, what);
        raise(SIGKILL);
    }
}

static void on_log(void *user, int32_t level, const char *msg, size_t len)
{
    (void)user;
    (void)level;
    fprintf(stderr, "drain_host: mgo: %.*s\n", (int)len, msg);
    if (kill_on && strstr(msg, kill_on)) {
        fprintf(stderr, "drain_host: SIGKILL on \"%s\"\n", kill_on);
        raise(SIGKILL);
    }
}

int main(int argc, char **argv)
{
    struct dhost h;
    mgo_host host = {.struct_size = sizeof(host),
                     .abi_version = MGO_ABI_VERSION,
                     .log = on_log,
                     .log_level = MGO_LOG_INFO};
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: drain_host STATE_FILE KILL_AT [KILL_ON]\n");
        return 2;
    }
    state_path = argv[1];
    kill_at = (int)strtol(argv[2], NULL, 10);
    kill_on = argc == 4 ? argv[3] : NULL;
    memset(&h, 0, sizeof(h));
    if (load(&h) != 0 || mgo_open(&host, &h.plugin) != MGO_OK)
        return 1;
    h.shard = &shard;
    h.deadline_ms = 5000;
    h.stop = stop;
    h.start = start;
    h.persist = save;
    h.point = point;
    int32_t rc = dhost_run(&h, "ready-for-deletion", 200, 100);
    mgo_close(h.plugin);
    return rc == 0 ? 0 : 1;
}
