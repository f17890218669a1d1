/*
 * The kc client against a real kube-apiserver and etcd (started by test_kc_apiserver.sh with
 * tests/kube/kube_harness.sh, watch cache off for podtemplates so that their watches reach etcd).
 * Each step asserts what the real server answers and reads its state back; expected values are
 * literals from shared/facts/kubernetes-controller.md, what earlier answers of the server said
 * (resourceVersions returned by writes), the harness's own files (token, CA, audit log) and
 * openssl's client certificate made by the wrapper. Prints "ok N - ..." per step; the first
 * failure prints why and exits 1 (the wrapper then brings the servers down).
 *
 * Environment (from kube_harness.sh and the wrapper): KUBECONFIG KUBE_SERVER KUBE_TOKEN
 * KUBE_ETCD KUBE_CA KUBE_AUDIT_LOG, KC_WORK (a scratch directory holding client.crt, client.key,
 * ca.crt), KC_CLIENT_CERT_B64 KC_CLIENT_KEY_B64 KC_CA_B64 (coreutils base64 of those files).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kc.h"

#ifndef MGO_VERSION
#error "MGO_VERSION must be defined (the project's version)"
#endif

#define NS "kc-test"

static const struct kc_resource NAMESPACES = {"", "v1", "namespaces", false};
static const struct kc_resource CONFIGMAPS = {"", "v1", "configmaps", true};
static const struct kc_resource PODTEMPLATES = {"", "v1", "podtemplates", true};
static const struct kc_resource CRDS = {"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                        false};
static const struct kc_resource WIDGETS = {"test.mgo.dev", "v1", "widgets", true};
static const struct kc_resource REVIEWS = {"authentication.k8s.io", "v1", "selfsubjectreviews",
                                           false};

static int checks;
static struct timespec t_start;

/* ---- helpers ------------------------------------------------------------------------------------
 */

__attribute__((noreturn, format(printf, 3, 4))) static void fail_at(const char *file, int line,
                                                                    const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
#define FAIL(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL(__VA_ARGS__);                                                                     \
    } while (0)
/* a call that must succeed */
#define OK(c, call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            FAIL("%s: %d: %s", #call, rc_, kc_last_error(c));                                      \
    } while (0)
/* a call that must fail with this Status */
#define REFUSED(c, call, want_reason, want_code)                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != -EREMOTEIO || kc_last_reason(c) != (want_reason) ||                             \
            kc_last_status(c)->code != (want_code))                                                \
            FAIL("%s: %d, reason %s, code %d (%s); expected %s %d", #call, rc_,                    \
                 kc_reason_name(kc_last_reason(c)), kc_last_status(c)->code, kc_last_error(c),     \
                 kc_reason_name(want_reason), want_code);                                          \
    } while (0)

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* only between polls of the real state, each loop with its own deadline */
static void pause_ms(long ms)
{
    struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (nanosleep(&t, &t) < 0 && errno == EINTR)
        ;
}

__attribute__((format(printf, 1, 2))) static void ok(const char *fmt, ...)
{
    va_list ap;

    printf("ok %d - ", ++checks);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" [%.1f s]\n", seconds_since(&t_start));
    fflush(stdout);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    CHECK(v && v[0], "environment variable %s is not set", name);
    return v;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);

    CHECK(v, "bad JSON literal: %s: %s", jerr.text, text);
    return v;
}

/* obj at a dotted path ("metadata.resourceVersion"), or NULL */
static json_t *at(json_t *obj, const char *path)
{
    char key[128];

    while (obj && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        CHECK(n < sizeof(key), "path too long");
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

static const char *str_at(json_t *obj, const char *path)
{
    json_t *v = at(obj, path);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* copy a string field into a buffer; failing when absent */
static void copy_at(json_t *obj, const char *path, char *out, size_t size)
{
    const char *v = str_at(obj, path);

    CHECK(v, "no %s in %s", path, obj ? json_dumps(obj, JSON_COMPACT) : "(null)");
    CHECK(strlen(v) < size, "%s too long", path);
    memcpy(out, v, strlen(v) + 1);
}

static struct kc_client *client_for(const struct kc_config *cfg, const char *user_agent)
{
    struct kc_client *c;

    CHECK(kc_client_new(cfg, user_agent, &c) == 0, "kc_client_new");
    return c;
}

static void read_whole_file(const char *path, char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    CHECK(f, "open %s: %s", path, strerror(errno));
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            CHECK(buf, "out of memory");
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0, "write %s: %s", path, strerror(errno));
}

/* A ConfigMap object literal. */
static json_t *configmap(const char *name, const char *key, const char *value, const char *parity)
{
    json_t *o =
        json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                  "metadata", "name", name, "labels", "parity", parity, "data", key, value);

    CHECK(o, "json_pack");
    return o;
}

/* merge-patch data.k of a ConfigMap; the new resourceVersion into rv */
static void patch_configmap(struct kc_client *c, const char *name, const char *value, char *rv,
                            size_t size)
{
    json_t *patch = json_pack("{s:{s:s}}", "data", "k", value), *out = NULL;

    OK(c, kc_patch(c, &CONFIGMAPS, NS, name, NULL, KC_PATCH_MERGE, patch, 0, &out));
    if (rv)
        copy_at(out, "metadata.resourceVersion", rv, size);
    json_decref(patch);
    json_decref(out);
}

/* ---- watch recording
 * ------------------------------------------------------------------------------ */

struct event {
    enum kc_event_type type;
    char name[64];
    char rv[32];
};

struct recorder {
    struct event ev[64];
    int n;                  /* all events, bookmarks included */
    int stop_after;         /* stop after this many non-bookmark events; 0: never */
    int changes;            /* non-bookmark events */
    struct kc_client *same; /* when set: try a call on the watching client once */
    int same_rc;
    sem_t *seen; /* when set: posted for every event */
    /* when set: after probe_after changes, a ConfigMap is created in namespace "default" (a
     * change this watch of NS does not see, which a bookmark then carries) */
    struct kc_client *probe;
    int probe_after;
    char probe_rv[32];
};

static int record(void *ctx, enum kc_event_type type, json_t *obj)
{
    struct recorder *r = ctx;
    const char *name = str_at(obj, "metadata.name"), *rv = str_at(obj, "metadata.resourceVersion");
    json_t *out = NULL;

    CHECK(r->n < 64, "too many events");
    r->ev[r->n].type = type;
    (void)snprintf(r->ev[r->n].name, sizeof(r->ev[r->n].name), "%s", name ? name : "");
    (void)snprintf(r->ev[r->n].rv, sizeof(r->ev[r->n].rv), "%s", rv ? rv : "");
    r->n++;
    if (r->same) {
        r->same_rc = kc_get(r->same, &NAMESPACES, NULL, NS, 0, &out);
        json_decref(out);
        r->same = NULL;
    }
    if (r->seen)
        sem_post(r->seen);
    if (r->probe && type != KC_EVENT_BOOKMARK && r->changes + 1 == r->probe_after) {
        json_t *cm = configmap("bookmark-probe", "k", "v", "odd");
        OK(r->probe, kc_create(r->probe, &CONFIGMAPS, "default", cm, 0, &out));
        copy_at(out, "metadata.resourceVersion", r->probe_rv, sizeof(r->probe_rv));
        json_decref(out);
        json_decref(cm);
        out = NULL;
    }
    if (type != KC_EVENT_BOOKMARK && ++r->changes == r->stop_after)
        return KC_WATCH_STOP;
    return KC_WATCH_CONTINUE;
}

static const char *type_name(enum kc_event_type t)
{
    switch (t) {
    case KC_EVENT_ADDED:
        return "ADDED";
    case KC_EVENT_MODIFIED:
        return "MODIFIED";
    case KC_EVENT_DELETED:
        return "DELETED";
    case KC_EVENT_BOOKMARK:
        return "BOOKMARK";
    }
    return "?";
}

/* The non-bookmark events as "TYPE name rv;..." (rv left out when rvs is false). */
static void changes_text(const struct recorder *r, bool rvs, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; i < r->n; i++) {
        if (r->ev[i].type == KC_EVENT_BOOKMARK)
            continue;
        used += (size_t)snprintf(out + used, size - used, "%s %s%s%s;", type_name(r->ev[i].type),
                                 r->ev[i].name, rvs ? " " : "", rvs ? r->ev[i].rv : "");
        CHECK(used < size, "event text too long");
    }
}

static int bookmarks(const struct recorder *r, char *last_rv, size_t size)
{
    int n = 0;

    for (int i = 0; i < r->n; i++)
        if (r->ev[i].type == KC_EVENT_BOOKMARK) {
            n++;
            (void)snprintf(last_rv, size, "%s", r->ev[i].rv);
        }
    return n;
}

/* ---- etcd (the harness's, through its JSON gateway)
 * ----------------------------------------------- */

static int64_t etcd_revision(struct kc_client *e)
{
    static const char body[] = "{\"key\":\"AA==\",\"count_only\":true}";
    json_t *out = NULL;
    const char *rev;
    int64_t v;

    OK(e, kc_request(e, "POST", "/v3/kv/range", NULL, body, strlen(body), 0, &out));
    rev = str_at(out, "header.revision");
    CHECK(rev && sscanf(rev, "%" SCNd64, &v) == 1, "etcd range: no header.revision");
    json_decref(out);
    return v;
}

static void etcd_compact(struct kc_client *e, int64_t revision)
{
    char body[128];
    json_t *out = NULL;

    (void)snprintf(body, sizeof(body), "{\"revision\":\"%" PRId64 "\",\"physical\":true}",
                   revision);
    OK(e, kc_request(e, "POST", "/v3/kv/compaction", NULL, body, strlen(body), 0, &out));
    json_decref(out);
}

/* ---- steps
 * ---------------------------------------------------------------------------------------- */

static void step_config(struct kc_config *cfg)
{
    char err[512], *ca;
    size_t ca_len;

    if (kc_config_load(NULL, NULL, cfg, err, sizeof(err)) != 0)
        FAIL("kc_config_load: %s", err);
    CHECK(strcmp(cfg->server, env("KUBE_SERVER")) == 0, "server %s", cfg->server);
    CHECK(strcmp(cfg->namespace, "default") == 0, "namespace %s", cfg->namespace);
    CHECK(cfg->token && strcmp(cfg->token, env("KUBE_TOKEN")) == 0, "token differs");
    read_whole_file(env("KUBE_CA"), &ca, &ca_len);
    CHECK(cfg->ca_len == ca_len && memcmp(cfg->ca, ca, ca_len) == 0,
          "the kubeconfig's CA data is not the harness's ca.crt");
    free(ca);
    ok("kubeconfig from $KUBECONFIG: server, namespace default, token, CA data = ca.crt");
}

static void step_version_and_namespace(struct kc_client *c)
{
    json_t *v = NULL, *ns;
    const char *git;

    OK(c, kc_request(c, "GET", "/version", NULL, NULL, 0, 0, &v));
    git = str_at(v, "gitVersion");
    CHECK(git && strncmp(git, "v1.", 3) == 0, "gitVersion %s", git ? git : "(none)");
    ok("GET /version: %s", git);
    json_decref(v);

    ns = parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" NS "\"}}");
    v = NULL;
    OK(c, kc_create(c, &NAMESPACES, NULL, ns, 0, &v));
    CHECK(kc_last_status(c)->http_code == 201, "create namespace: HTTP %d",
          kc_last_status(c)->http_code);
    CHECK(strcmp(str_at(v, "status.phase"), "Active") == 0, "namespace phase");
    json_decref(v);
    REFUSED(c, kc_create(c, &NAMESPACES, NULL, ns, 0, NULL), KC_REASON_ALREADY_EXISTS, 409);
    CHECK(kc_last_status(c)->http_code == 409 &&
              strcmp(kc_last_status(c)->reason_text, "AlreadyExists") == 0 &&
              strcmp(kc_last_status(c)->details_name, NS) == 0,
          "AlreadyExists details: %s", kc_last_error(c));
    json_decref(ns);
    v = NULL;
    REFUSED(c, kc_get(c, &CONFIGMAPS, NS, "nothing-here", 0, &v), KC_REASON_NOT_FOUND, 404);
    CHECK(v == NULL, "an output was written on failure");
    ok("namespace " NS " created (201), again: AlreadyExists 409; a missing object: NotFound 404");
}

static void step_connection_reuse(const struct kc_config *cfg)
{
    struct kc_client *c = client_for(cfg, NULL);
    struct kc_stats st;

    for (int i = 0; i < 20; i++) {
        json_t *out = NULL;
        OK(c, kc_get(c, &NAMESPACES, NULL, NS, 0, &out));
        json_decref(out);
    }
    kc_client_stats(c, &st);
    CHECK(st.requests == 20 && st.connections == 1, "20 requests opened %" PRIu64 " connections",
          st.connections);
    kc_client_free(c);
    ok("one connection for 20 requests of one client");
}

struct pages {
    int sizes[8];
    int n;
};

static int count_page(void *ctx, unsigned page, const json_t *obj)
{
    struct pages *p = ctx;

    CHECK(page == (unsigned)p->n + 1 && p->n < 8, "page %u out of order", page);
    p->sizes[p->n++] = (int)json_array_size(json_object_get(obj, "items"));
    return 0;
}

static void names_of(json_t *items, char *out, size_t size)
{
    size_t i, used = 0;
    json_t *it;

    out[0] = '\0';
    json_array_foreach (items, i, it) {
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "," : "",
                                 str_at(it, "metadata.name"));
        CHECK(used < size, "names too long");
    }
}

static void step_list(struct kc_client *c, char *list_rv, size_t size)
{
    struct pages pages = {0};
    struct kc_list_options o = {.limit = 2, .page_fn = count_page, .page_ctx = &pages};
    struct kc_list l;
    char names[512], name[16];

    for (int i = 0; i < 5; i++) {
        json_t *cm;
        (void)snprintf(name, sizeof(name), "cm-%d", i);
        cm = configmap(name, "k", "v0", i % 2 ? "odd" : "even");
        OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, NULL));
        CHECK(kc_last_status(c)->http_code == 201, "create %s", name);
        json_decref(cm);
    }
    OK(c, kc_list(c, &CONFIGMAPS, NS, &o, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "cm-0,cm-1,cm-2,cm-3,cm-4") == 0, "listed %s", names);
    CHECK(l.pages == 3 && l.restarts == 0 && pages.n == 3 && pages.sizes[0] == 2 &&
              pages.sizes[1] == 2 && pages.sizes[2] == 1,
          "pages %u (%d: %d %d %d)", l.pages, pages.n, pages.sizes[0], pages.sizes[1],
          pages.sizes[2]);
    CHECK(l.resource_version && l.resource_version[0], "no list resourceVersion");
    (void)snprintf(list_rv, size, "%s", l.resource_version);
    kc_list_fini(&l);
    ok("5 ConfigMaps listed with limit=2 in 3 pages (2, 2, 1), resourceVersion %s", list_rv);

    o = (struct kc_list_options){.label_selector = "parity in (even),parity!=odd"};
    OK(c, kc_list(c, &CONFIGMAPS, NS, &o, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "cm-0,cm-2,cm-4") == 0 && l.pages == 1, "selected %s", names);
    kc_list_fini(&l);
    o = (struct kc_list_options){.field_selector = "metadata.name=cm-3"};
    OK(c, kc_list(c, &CONFIGMAPS, NULL, &o, &l)); /* all namespaces */
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "cm-3") == 0, "field-selected %s", names);
    kc_list_fini(&l);
    ok("label selector 'parity in (even),parity!=odd' and field selector across namespaces");
}

static void step_watch_events(struct kc_client *c, struct kc_client *wc)
{
    struct recorder r = {.same = wc, .probe = c, .probe_after = 3};
    struct kc_list_options paged = {.limit = 2};
    struct kc_watch w;
    struct kc_list l;
    char rv_add[32], rv_mod[32], rv_mod2[32], text[1024], want[1024], bm_rv[32], names[256];
    json_t *cm = configmap("cm-5", "k", "v0", "odd"), *out = NULL;
    int rc;

    /* the watch's own list: the same objects as step_list's, and where the watch starts */
    kc_watch_init(&w);
    w.resource = &CONFIGMAPS;
    w.namespace = NS;
    w.fn = record;
    w.ctx = &r;
    w.timeout_seconds = 5;
    OK(wc, kc_watch_list(wc, &w, &paged, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "cm-0,cm-1,cm-2,cm-3,cm-4") == 0 && l.pages == 3 &&
              strcmp(w.resource_version, l.resource_version) == 0 && !w.must_relist &&
              w.relists == 1,
          "watch list: %s in %u pages at %s, resume point %s", names, l.pages, l.resource_version,
          w.resource_version);
    kc_list_fini(&l);

    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, &out));
    copy_at(out, "metadata.resourceVersion", rv_add, sizeof(rv_add));
    json_decref(out);
    json_decref(cm);
    patch_configmap(c, "cm-0", "v1", rv_mod, sizeof(rv_mod));
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "cm-1", NULL, 0, NULL));

    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_ENDED, "watch: %d: %s", rc, kc_last_error(wc));
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "ADDED cm-5 %s;MODIFIED cm-0 %s;", rv_add, rv_mod);
    CHECK(strncmp(text, want, strlen(want)) == 0 &&
              strncmp(text + strlen(want), "DELETED cm-1 ", 13) == 0 &&
              strchr(text + strlen(want), ';') == text + strlen(text) - 1,
          "events %s, expected %sDELETED cm-1 <rv>;", text, want);
    CHECK(r.same_rc == -EBUSY, "a call on the watching client from its callback: %d", r.same_rc);
    CHECK(bookmarks(&r, bm_rv, sizeof(bm_rv)) >= 1,
          "no BOOKMARK before the watch's deadline (timeoutSeconds=5)");
    CHECK(strcmp(bm_rv, r.probe_rv) == 0,
          "the bookmark carries %s, not the resourceVersion %s of the change in \"default\"", bm_rv,
          r.probe_rv);
    CHECK(strcmp(w.resource_version, r.ev[r.n - 1].rv) == 0 &&
              r.ev[r.n - 1].type == KC_EVENT_BOOKMARK,
          "resume point %s, last event %s %s", w.resource_version, type_name(r.ev[r.n - 1].type),
          r.ev[r.n - 1].rv);
    CHECK(w.events == 3 && w.bookmarks >= 1 && w.skipped == 0, "counts %" PRIu64 "/%" PRIu64,
          w.events, w.bookmarks);
    ok("watch from its own list's resourceVersion: %s then BOOKMARK %s (the resourceVersion of a "
       "change in another namespace), ended at timeoutSeconds; the callback's call on its own "
       "client: -EBUSY",
       text, bm_rv);

    /* the server closed it; a new watch resumes from the bookmark: only what came after */
    patch_configmap(c, "cm-3", "v1", rv_mod2, sizeof(rv_mod2));
    memset(&r, 0, sizeof(r));
    w.timeout_seconds = 3;
    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_ENDED, "second watch: %d: %s", rc, kc_last_error(wc));
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "MODIFIED cm-3 %s;", rv_mod2);
    CHECK(strcmp(text, want) == 0, "after resuming: %s, expected %s", text, want);
    kc_watch_fini(&w);
    ok("resumed after the server closed the watch: only %s", text);
}

static void step_watch_resume(struct kc_client *c, struct kc_client *wc)
{
    struct recorder r = {.stop_after = 3};
    struct kc_watch w;
    struct kc_list l;
    char rvs[6][32], text[1024], want[1024];
    int rc;

    kc_watch_init(&w);
    w.resource = &CONFIGMAPS;
    w.namespace = NS;
    OK(wc, kc_watch_list(wc, &w, NULL, &l));
    kc_list_fini(&l);
    for (int i = 0; i < 6; i++) {
        char value[16];
        (void)snprintf(value, sizeof(value), "w%d", i);
        patch_configmap(c, "cm-2", value, rvs[i], sizeof(rvs[i]));
    }
    w.fn = record;
    w.ctx = &r;
    w.timeout_seconds = 30;
    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_STOPPED, "watch: %d: %s", rc, kc_last_error(wc));
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "MODIFIED cm-2 %s;MODIFIED cm-2 %s;MODIFIED cm-2 %s;",
                   rvs[0], rvs[1], rvs[2]);
    CHECK(strcmp(text, want) == 0, "first watch: %s, expected %s", text, want);
    CHECK(strcmp(w.resource_version, rvs[2]) == 0, "resume point %s, expected %s",
          w.resource_version, rvs[2]);

    memset(&r, 0, sizeof(r));
    w.timeout_seconds = 3;
    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_ENDED, "second watch: %d: %s", rc, kc_last_error(wc));
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "MODIFIED cm-2 %s;MODIFIED cm-2 %s;MODIFIED cm-2 %s;",
                   rvs[3], rvs[4], rvs[5]);
    CHECK(strcmp(text, want) == 0, "second watch: %s, expected %s", text, want);
    kc_watch_fini(&w);
    ok("6 changes: a watch stopped by its callback after 3, resumed: the other 3, none twice");
}

/* A ConfigMap labelled gap=yes. */
static json_t *gap_configmap(const char *name)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind", "ConfigMap",
                          "metadata", "name", name, "labels", "gap", "yes");

    CHECK(o, "json_pack");
    return o;
}

/* No watch without a list's resourceVersion; a gap in watching loses nothing as long as the
 * watch resumes from its resume point: the DELETE made during the gap arrives. */
static void step_watch_gap(struct kc_client *c, struct kc_client *wc)
{
    struct recorder r = {0};
    struct kc_watch w;
    struct kc_list l;
    struct kc_stats before, after;
    char names[256], text[512], want[512], rv_del[32], rv_add[32];
    json_t *cm, *out = NULL;
    int rc;

    kc_watch_init(&w);
    w.resource = &CONFIGMAPS;
    w.namespace = NS;
    w.label_selector = "gap=yes";
    w.fn = record;
    w.ctx = &r;
    w.timeout_seconds = 2;
    kc_client_stats(wc, &before);
    rc = kc_watch(wc, &w);
    kc_client_stats(wc, &after);
    CHECK(rc == -EINVAL && after.requests == before.requests &&
              strstr(kc_last_error(wc), "kc_watch_list"),
          "a watch without a list: %d, %" PRIu64 " requests: %s", rc,
          after.requests - before.requests, kc_last_error(wc));

    for (int i = 1; i <= 2; i++) {
        char name[8];
        (void)snprintf(name, sizeof(name), "g%d", i);
        cm = gap_configmap(name);
        OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, NULL));
        json_decref(cm);
    }
    OK(wc, kc_watch_list(wc, &w, NULL, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "g1,g2") == 0, "listed %s", names);
    kc_list_fini(&l);

    /* the gap: nobody watches while g1 goes and g3 comes */
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "g1", NULL, 0, NULL)); /* its rv: in the event */
    cm = gap_configmap("g3");
    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, &out));
    copy_at(out, "metadata.resourceVersion", rv_add, sizeof(rv_add));
    json_decref(out);
    json_decref(cm);

    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_ENDED, "watch after the gap: %d: %s", rc, kc_last_error(wc));
    CHECK(r.n >= 2 && r.ev[0].type == KC_EVENT_DELETED, "after the gap: %d events", r.n);
    (void)snprintf(rv_del, sizeof(rv_del), "%s", r.ev[0].rv);
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "DELETED g1 %s;ADDED g3 %s;", rv_del, rv_add);
    CHECK(strcmp(text, want) == 0 && strcmp(rv_del, rv_add) != 0, "after the gap: %s", text);
    kc_watch_fini(&w);
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "g2", NULL, 0, NULL));
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "g3", NULL, 0, NULL));
    ok("a watch without a list: -EINVAL, nothing sent; g1 deleted and g3 created while nobody "
       "watched: resuming from the list's resourceVersion delivers %s",
       text);
}

/* Requests the client must refuse before sending: the table, the exact message, and proof that
 * the server saw nothing (request counter) and nothing changed (read back). */
static void step_refused_locally(struct kc_client *c)
{
    json_t *bare = configmap("no-namespace", "k", "v", "odd"), *out = NULL;
    struct kc_delete_options bad_uid = {.uid = "\xff\xfe-not-utf8"};
    struct kc_list_options everywhere = {.field_selector = "metadata.name=no-namespace"};
    struct kc_stats before, after;
    struct kc_list l;
    int rc;

    kc_client_stats(c, &before);
    rc = kc_create(c, &CONFIGMAPS, NULL, bare, 0, NULL);
    CHECK(rc == -EINVAL && strcmp(kc_last_error(c),
                                  "create configmaps no-namespace: the kind is namespaced: give "
                                  "a namespace (the argument or metadata.namespace)") == 0,
          "create without a namespace: %d: %s", rc, kc_last_error(c));
    rc = kc_delete(c, &CONFIGMAPS, NS, "cm-3", &bad_uid, 0, NULL);
    CHECK(rc == -EINVAL &&
              strcmp(kc_last_error(c), "delete cm-3: preconditions.uid is not valid UTF-8") == 0,
          "delete with a uid that is not UTF-8: %d: %s", rc, kc_last_error(c));
    rc = kc_request(c, "POST", "/api/v1/namespaces/" NS "/configmaps",
                    "application/json\r\nX-Injected: 1", "{}", 2, 0, NULL);
    CHECK(rc == -EINVAL && strstr(kc_last_error(c), "content type"),
          "a content type with CR LF: %d: %s", rc, kc_last_error(c));
    kc_client_stats(c, &after);
    CHECK(after.requests == before.requests, "%" PRIu64 " requests were sent",
          after.requests - before.requests);

    OK(c, kc_list(c, &CONFIGMAPS, NULL, &everywhere, &l));
    CHECK(json_array_size(l.items) == 0, "a ConfigMap no-namespace exists somewhere");
    kc_list_fini(&l);
    OK(c, kc_get(c, &CONFIGMAPS, NS, "cm-3", 0, &out));
    CHECK(!at(out, "metadata.deletionTimestamp"), "cm-3 is being deleted");
    json_decref(out);
    json_decref(bare);
    ok("refused before sending: create of a namespaced kind without a namespace, delete with a "
       "non-UTF-8 uid, a content type with CR LF; nothing was created or deleted");
}

struct canceller {
    const struct kc_config *cfg;
    const char *probe; /* the ConfigMap it creates, which the watch should deliver */
    sem_t seen;        /* posted by the watch's callback per event, and by the main thread
                        * once kc_watch returned */
    atomic_int cancel;
    struct timespec cancelled_at;
    bool timed_out; /* nothing was posted within CANCEL_WAIT_MS */
};

#define CANCEL_WAIT_MS 30000

/* sem_wait with a deadline, so that a watch that never delivers fails the test, not hangs it;
 * 0, or -1 with errno ETIMEDOUT */
static int sem_wait_ms(sem_t *s, long ms)
{
    struct timespec t;
    int rc;

    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    while ((rc = sem_timedwait(s, &t)) < 0 && errno == EINTR)
        ;
    return rc;
}

static void *cancel_thread(void *arg)
{
    struct canceller *k = arg;
    struct kc_client *c = client_for(k->cfg, NULL);
    json_t *cm = configmap(k->probe, "k", "v", "odd");

    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, NULL));
    json_decref(cm);
    kc_client_free(c);
    /* the watch delivered the probe, so it is running (or it returned): cancel it from here */
    if (sem_wait_ms(&k->seen, CANCEL_WAIT_MS) < 0)
        k->timed_out = true;
    clock_gettime(CLOCK_MONOTONIC, &k->cancelled_at);
    atomic_store(&k->cancel, 1);
    return NULL;
}

/* Run a watch (of configmaps in NS, resume point from a list by lc) on `wc` while another thread
 * creates k->probe and then sets the cancel flag. The thread never outlives the watch by more
 * than its bounded wait: the main thread wakes it once kc_watch returned. */
static int watch_with_canceller(struct canceller *k, struct kc_client *lc, struct kc_client *wc,
                                struct recorder *r, double *join_s)
{
    struct kc_watch w;
    struct kc_list l;
    struct timespec t0;
    pthread_t t;
    int rc;

    CHECK(sem_init(&k->seen, 0, 0) == 0, "sem_init");
    r->seen = &k->seen;
    kc_watch_init(&w);
    w.resource = &CONFIGMAPS;
    w.namespace = NS;
    w.fn = record;
    w.ctx = r;
    w.timeout_seconds = 120;
    w.cancel = &k->cancel;
    OK(lc, kc_watch_list(lc, &w, NULL, &l));
    kc_list_fini(&l);
    CHECK(pthread_create(&t, NULL, cancel_thread, k) == 0, "pthread_create");
    rc = kc_watch(wc, &w);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sem_post(&k->seen); /* wakes the thread if the watch ended before delivering anything */
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    *join_s = seconds_since(&t0);
    kc_watch_fini(&w);
    sem_destroy(&k->seen);
    return rc;
}

static void step_watch_cancel(const struct kc_config *cfg, struct kc_client *c,
                              struct kc_client *wc)
{
    struct canceller k = {.cfg = cfg, .probe = "cancel-probe"};
    struct kc_config bad = *cfg;
    struct kc_client *b;
    struct recorder r = {0};
    double join_s;
    int rc;

    rc = watch_with_canceller(&k, c, wc, &r, &join_s);
    CHECK(rc == KC_WATCH_STOPPED, "cancelled watch: %d: %s", rc, kc_last_error(wc));
    CHECK(!k.timed_out, "the watch delivered nothing within %d s", CANCEL_WAIT_MS / 1000);
    CHECK(r.changes == 1 && strcmp(r.ev[0].name, "cancel-probe") == 0, "events before cancel");
    ok("a watch (timeoutSeconds=120) cancelled from another thread returned %.2f s after the flag",
       seconds_since(&k.cancelled_at));

    /* a watch that fails before delivering anything (the server refuses its token): the
     * canceller, waiting for an event that never comes, is woken and joined at once */
    bad.token = (char *)"not-a-valid-token";
    b = client_for(&bad, NULL);
    k = (struct canceller){.cfg = cfg, .probe = "cancel-probe-2"};
    memset(&r, 0, sizeof(r));
    rc = watch_with_canceller(&k, c, b, &r, &join_s);
    CHECK(rc == -EREMOTEIO && kc_last_reason(b) == KC_REASON_UNAUTHORIZED && r.n == 0,
          "a watch with a bad token: %d: %s", rc, kc_last_error(b));
    CHECK(join_s < 20, "the canceller was joined %.1f s after the watch failed", join_s);
    kc_client_free(b);
    ok("a watch refused at once (401) does not leave the test waiting: the canceller thread was "
       "joined %.2f s later",
       join_s);
}

struct compact_once {
    struct kc_client *writer, *etcd;
    bool done;
    int64_t revision;
};

static int compact_after_page_1(void *ctx, unsigned page, const json_t *obj)
{
    struct compact_once *k = ctx;
    json_t *patch, *out = NULL;

    (void)obj;
    if (page != 1 || k->done)
        return 0;
    k->done = true;
    /* a write after the page's snapshot, then etcd compacted up to now */
    patch = parse("{\"template\":{\"metadata\":{\"labels\":{\"step\":\"during-list\"}}}}");
    OK(k->writer,
       kc_patch(k->writer, &PODTEMPLATES, NS, "pt-1", NULL, KC_PATCH_MERGE, patch, 0, &out));
    json_decref(patch);
    json_decref(out);
    k->revision = etcd_revision(k->etcd);
    etcd_compact(k->etcd, k->revision);
    return 0;
}

static json_t *podtemplate(const char *name)
{
    json_t *o =
        json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:{s:s}}, s:{s:[{s:s, s:s}]}}}", "apiVersion", "v1",
                  "kind", "PodTemplate", "metadata", "name", name, "template", "metadata", "labels",
                  "step", "created", "spec", "containers", "name", "c", "image", "postgres:17");

    CHECK(o, "json_pack");
    return o;
}

static void step_expired(const struct kc_config *cfg, struct kc_client *c, struct kc_client *wc)
{
    struct kc_config ecfg = {.server = (char *)env("KUBE_ETCD")};
    struct kc_client *etcd = client_for(&ecfg, NULL);
    struct kc_client *writer = client_for(cfg, NULL); /* the list's page_fn may not use c */
    struct compact_once k = {.writer = writer, .etcd = etcd};
    struct kc_list_options o = {.limit = 1, .page_fn = compact_after_page_1, .page_ctx = &k};
    struct recorder r = {0};
    struct kc_watch w;
    struct kc_list l;
    char old_rv[32], names[256], text[512], want[512], rv_after[32];
    const char *probe = "{\"key\":\"AA==\",\"revision\":\"2\"}";
    json_t *out = NULL, *patch;
    int rc;

    for (int i = 0; i < 4; i++) {
        char name[16];
        json_t *pt;
        (void)snprintf(name, sizeof(name), i < 3 ? "pt-%d" : "pt-gone", i);
        pt = podtemplate(name);
        OK(c, kc_create(c, &PODTEMPLATES, NS, pt, 0, NULL));
        json_decref(pt);
    }
    /* the watch's list: where it starts, and what an informer's cache would hold */
    kc_watch_init(&w);
    w.resource = &PODTEMPLATES;
    w.namespace = NS;
    w.fn = record;
    w.ctx = &r;
    w.timeout_seconds = 10;
    OK(wc, kc_watch_list(wc, &w, NULL, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "pt-0,pt-1,pt-2,pt-gone") == 0, "listed %s", names);
    (void)snprintf(old_rv, sizeof(old_rv), "%s", l.resource_version);
    kc_list_fini(&l);
    /* while nobody watches: a deletion, and history after old_rv that the compaction removes */
    OK(c, kc_delete(c, &PODTEMPLATES, NS, "pt-gone", NULL, 0, NULL));
    for (int i = 0; i < 5; i++) {
        char p[128];
        (void)snprintf(p, sizeof(p), "{\"template\":{\"metadata\":{\"labels\":{\"n\":\"%d\"}}}}",
                       i);
        patch = parse(p);
        OK(c, kc_patch(c, &PODTEMPLATES, NS, "pt-0", NULL, KC_PATCH_MERGE, patch, 0, NULL));
        json_decref(patch);
    }

    /* a list whose continue token is compacted away between page 1 and page 2 */
    OK(c, kc_list(c, &PODTEMPLATES, NS, &o, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(k.done && l.restarts == 1 && l.pages == 4 && strcmp(names, "pt-0,pt-1,pt-2") == 0,
          "list across a compaction: restarts %u pages %u items %s", l.restarts, l.pages, names);
    CHECK(strcmp(str_at(json_array_get(l.items, 1), "template.metadata.labels.step"),
                 "during-list") == 0,
          "the restarted list does not show the write made during it");
    kc_list_fini(&l);
    /* the compaction is real: etcd refuses a read at an old revision */
    rc = kc_request(etcd, "POST", "/v3/kv/range", NULL, probe, strlen(probe), 0, &out);
    CHECK(rc == -EREMOTEIO && strstr(kc_last_error(etcd), "compacted"),
          "a read of revision 2 after compacting to %" PRId64 ": %d: %s", k.revision, rc,
          kc_last_error(etcd));
    ok("etcd compacted to revision %" PRId64 " between pages: the continue token expired (410), "
       "the list started over once (4 pages), with the write made meanwhile",
       k.revision);

    /* a watch from before the compaction: an ERROR event 410 Expired in a 200 stream */
    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_EXPIRED && r.n == 0, "watch from %s: %d (%d events): %s", old_rv, rc, r.n,
          kc_last_error(wc));
    CHECK(kc_last_reason(wc) == KC_REASON_EXPIRED && kc_last_status(wc)->code == 410 &&
              kc_last_status(wc)->http_code == 200,
          "expired watch status: %s (HTTP %d)", kc_last_error(wc), kc_last_status(wc)->http_code);
    CHECK(strcmp(w.resource_version, old_rv) == 0 && w.must_relist && w.failures == 1,
          "after the 410: resume point %s, must_relist %d, failures %u", w.resource_version,
          w.must_relist, w.failures);
    ok("watch from resourceVersion %s after the compaction: KC_WATCH_EXPIRED (ERROR event, "
       "reason Expired, code 410, in an HTTP 200 stream), must_relist set",
       old_rv);

    /* the events since old_rv, pt-gone's DELETED among them, are gone: a watch is refused until
     * the caller has relisted (nothing is sent) */
    {
        struct kc_stats before, after;
        kc_client_stats(wc, &before);
        rc = kc_watch(wc, &w);
        kc_client_stats(wc, &after);
        CHECK(rc == -EINVAL && after.requests == before.requests &&
                  strstr(kc_last_error(wc), "kc_watch_list"),
              "a watch before the relist: %d, %" PRIu64 " requests: %s", rc,
              after.requests - before.requests, kc_last_error(wc));
    }

    /* a list at that exact resourceVersion: HTTP 410 on page 1, returned as it is */
    o = (struct kc_list_options){.limit = 2, .resource_version = old_rv};
    REFUSED(c, kc_list(c, &PODTEMPLATES, NS, &o, &l), KC_REASON_EXPIRED, 410);
    CHECK(kc_last_status(c)->http_code == 410, "HTTP %d", kc_last_status(c)->http_code);

    /* the relist: pt-gone is missing from it, which is how an informer learns of the deletion
     * it never saw an event for; it came after the restart delay */
    OK(wc, kc_watch_list(wc, &w, NULL, &l));
    names_of(l.items, names, sizeof(names));
    CHECK(strcmp(names, "pt-0,pt-1,pt-2") == 0 && !w.must_relist && w.relists == 2 &&
              strcmp(w.resource_version, l.resource_version) == 0,
          "relist: %s, must_relist %d, relists %" PRIu64, names, w.must_relist, w.relists);
    CHECK(w.last_delay_ms >= KC_WATCH_BACKOFF_BASE_MS / 2 &&
              w.last_delay_ms <= KC_WATCH_BACKOFF_BASE_MS,
          "the relist waited %" PRId64 " ms", w.last_delay_ms);
    kc_list_fini(&l);
    patch = parse("{\"template\":{\"metadata\":{\"labels\":{\"step\":\"after-relist\"}}}}");
    OK(c, kc_patch(c, &PODTEMPLATES, NS, "pt-2", NULL, KC_PATCH_MERGE, patch, 0, &out));
    copy_at(out, "metadata.resourceVersion", rv_after, sizeof(rv_after));
    json_decref(out);
    json_decref(patch);
    memset(&r, 0, sizeof(r));
    w.timeout_seconds = 2;
    rc = kc_watch(wc, &w);
    CHECK(rc == KC_WATCH_ENDED && w.last_delay_ms == 0 && w.failures == 0,
          "watch after relist: %d (waited %" PRId64 " ms, failures %u): %s", rc, w.last_delay_ms,
          w.failures, kc_last_error(wc));
    changes_text(&r, true, text, sizeof(text));
    (void)snprintf(want, sizeof(want), "MODIFIED pt-2 %s;", rv_after);
    CHECK(strcmp(text, want) == 0, "after relist: %s, expected %s", text, want);
    kc_watch_fini(&w);
    kc_client_free(writer);
    kc_client_free(etcd);
    ok("a watch before relisting: -EINVAL, nothing sent; a list at the compacted resourceVersion: "
       "HTTP 410 Expired; the relist lacks pt-gone (deleted during the gap); watch: %s",
       text);
}

static void step_apply(struct kc_client *c)
{
    json_t *obj = parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                        "\"applied\",\"namespace\":\"" NS "\"},\"data\":{\"a\":\"1\"}}");
    struct kc_apply_options force = {.force = true}, other = {.field_manager = "other"};
    char rv1[32], rv2[32], rv3[32];
    json_t *out = NULL, *mf;
    size_t i;
    bool mgo_apply = false;

    OK(c, kc_apply(c, &CONFIGMAPS, NULL, obj, &force, 0, &out));
    CHECK(kc_last_status(c)->http_code == 201, "first apply: HTTP %d",
          kc_last_status(c)->http_code);
    copy_at(out, "metadata.resourceVersion", rv1, sizeof(rv1));
    json_array_foreach (at(out, "metadata.managedFields"), i, mf)
        mgo_apply |= strcmp(str_at(mf, "manager"), "mgo") == 0 &&
                     strcmp(str_at(mf, "operation"), "Apply") == 0;
    CHECK(mgo_apply, "no Apply entry of manager mgo");
    json_decref(out);
    out = NULL;
    OK(c, kc_apply(c, &CONFIGMAPS, NULL, obj, &force, 0, &out));
    CHECK(kc_last_status(c)->http_code == 200, "second apply: HTTP %d",
          kc_last_status(c)->http_code);
    copy_at(out, "metadata.resourceVersion", rv2, sizeof(rv2));
    CHECK(strcmp(rv1, rv2) == 0, "an identical apply changed resourceVersion %s -> %s", rv1, rv2);
    json_decref(out);
    ok("server-side apply (fieldManager mgo, force): created (201), again: no-op, "
       "resourceVersion %s kept",
       rv1);

    json_object_set_new(json_object_get(obj, "data"), "a", json_string("2"));
    out = NULL;
    OK(c, kc_apply(c, &CONFIGMAPS, NS, obj, &force, 0, &out));
    copy_at(out, "metadata.resourceVersion", rv3, sizeof(rv3));
    CHECK(strcmp(rv3, rv1) != 0 && strcmp(str_at(out, "data.a"), "2") == 0, "changing apply");
    json_decref(out);
    json_object_set_new(json_object_get(obj, "data"), "a", json_string("3"));
    REFUSED(c, kc_apply(c, &CONFIGMAPS, NS, obj, &other, 0, NULL), KC_REASON_CONFLICT, 409);
    CHECK(kc_last_status(c)->n_causes >= 1 &&
              strcmp(kc_last_status(c)->causes[0].type, "FieldManagerConflict") == 0 &&
              strcmp(kc_last_status(c)->causes[0].field, ".data.a") == 0,
          "conflict causes: %s", kc_last_error(c));
    out = NULL;
    OK(c, kc_get(c, &CONFIGMAPS, NS, "applied", 0, &out));
    CHECK(strcmp(str_at(out, "data.a"), "2") == 0, "a refused apply changed the object");
    json_decref(out);
    other.force = true;
    out = NULL;
    OK(c, kc_apply(c, &CONFIGMAPS, NS, obj, &other, 0, &out));
    CHECK(strcmp(str_at(out, "data.a"), "3") == 0, "forced apply");
    json_decref(out);
    json_decref(obj);
    ok("apply changing a field: new resourceVersion; another manager without force: Conflict 409 "
       "(FieldManagerConflict .data.a), with force: taken over");
}

static void wait_crd_served(struct kc_client *c)
{
    struct timespec t0;
    json_t *out = NULL, *cond;
    size_t i;
    bool established = false;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!established) {
        CHECK(seconds_since(&t0) < 60, "CRD not Established after 60 s");
        OK(c, kc_get(c, &CRDS, NULL, "widgets.test.mgo.dev", 0, &out));
        json_array_foreach (at(out, "status.conditions"), i, cond)
            established |= strcmp(str_at(cond, "type"), "Established") == 0 &&
                           strcmp(str_at(cond, "status"), "True") == 0;
        json_decref(out);
        out = NULL;
        if (!established)
            pause_ms(100); /* polling the real state, with the deadline above */
    }
    for (;;) { /* Established; served once its handler is installed */
        struct kc_list l;
        if (kc_list(c, &WIDGETS, NS, NULL, &l) == 0) {
            kc_list_fini(&l);
            return;
        }
        CHECK(seconds_since(&t0) < 60, "widgets not served: %s", kc_last_error(c));
        pause_ms(100);
    }
}

static void step_status(struct kc_client *c)
{
    json_t *crd = parse(
        "{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\","
        "\"metadata\":{\"name\":\"widgets.test.mgo.dev\"},\"spec\":{\"group\":\"test.mgo.dev\","
        "\"scope\":\"Namespaced\",\"names\":{\"plural\":\"widgets\",\"singular\":\"widget\","
        "\"kind\":\"Widget\",\"listKind\":\"WidgetList\"},\"versions\":[{\"name\":\"v1\","
        "\"served\":true,\"storage\":true,\"subresources\":{\"status\":{}},\"schema\":{"
        "\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{\"spec\":{\"type\":\"object\","
        "\"properties\":{\"size\":{\"type\":\"integer\"}}},\"status\":{\"type\":\"object\","
        "\"properties\":{\"ready\":{\"type\":\"boolean\"}}}}}}}]}}");
    json_t *w1 = parse("{\"apiVersion\":\"test.mgo.dev/v1\",\"kind\":\"Widget\",\"metadata\":{"
                       "\"name\":\"w1\"},\"spec\":{\"size\":3}}");
    json_t *out = NULL, *stale;
    struct kc_stats before, after;
    struct kc_apply_options status_apply = {.force = true, .subresource = "status"};
    char rv1[32], rv2[32];

    OK(c, kc_create(c, &CRDS, NULL, crd, 0, NULL));
    wait_crd_served(c);
    OK(c, kc_create(c, &WIDGETS, NS, w1, 0, &out));
    copy_at(out, "metadata.resourceVersion", rv1, sizeof(rv1));

    /* a copy holding the first resourceVersion, for the stale write below */
    stale = json_deep_copy(out);
    json_object_set_new(out, "status", json_pack("{s:b}", "ready", 1));
    json_object_del(json_object_get(stale, "metadata"), "resourceVersion");
    kc_client_stats(c, &before);
    CHECK(kc_update_status(c, &WIDGETS, NS, stale, 0, NULL) == -EINVAL,
          "a status update without resourceVersion was not refused");
    kc_client_stats(c, &after);
    CHECK(after.requests == before.requests, "it was sent anyway");
    json_object_set_new(json_object_get(stale, "metadata"), "resourceVersion", json_string(rv1));
    json_object_set_new(stale, "status", json_pack("{s:b}", "ready", 0));

    json_t *updated = NULL;
    OK(c, kc_update_status(c, &WIDGETS, NS, out, 0, &updated));
    copy_at(updated, "metadata.resourceVersion", rv2, sizeof(rv2));
    CHECK(json_is_true(at(updated, "status.ready")) && strcmp(rv1, rv2) != 0 &&
              json_integer_value(at(updated, "metadata.generation")) == 1,
          "status update result");
    json_decref(updated);
    json_decref(out);
    REFUSED(c, kc_update_status(c, &WIDGETS, NS, stale, 0, NULL), KC_REASON_CONFLICT, 409);
    out = NULL;
    OK(c, kc_get(c, &WIDGETS, NS, "w1", 0, &out));
    CHECK(json_is_true(at(out, "status.ready")) &&
              strcmp(str_at(out, "metadata.resourceVersion"), rv2) == 0,
          "the stale status write changed the object");
    json_decref(out);
    ok("status subresource: PUT /status with resourceVersion %s -> %s; with the stale one: "
       "Conflict 409, object unchanged; none: -EINVAL without a request",
       rv1, rv2);

    json_decref(stale);
    stale = parse("{\"apiVersion\":\"test.mgo.dev/v1\",\"kind\":\"Widget\",\"metadata\":{"
                  "\"name\":\"w1\",\"namespace\":\"" NS "\"},\"status\":{\"ready\":false},"
                  "\"spec\":{\"size\":99}}");
    out = NULL;
    OK(c, kc_apply(c, &WIDGETS, NULL, stale, &status_apply, 0, &out));
    CHECK(json_is_false(at(out, "status.ready")) && json_integer_value(at(out, "spec.size")) == 3,
          "apply to /status: ready %s, size %" JSON_INTEGER_FORMAT,
          json_is_false(at(out, "status.ready")) ? "false" : "not false",
          json_integer_value(at(out, "spec.size")));
    json_decref(out);
    json_decref(stale);
    json_decref(w1);
    json_decref(crd);
    ok("apply to the status subresource changes status only (spec.size stays 3)");
}

static void step_delete(struct kc_client *c)
{
    json_t *cm = configmap("doomed", "k", "v", "odd"), *out = NULL, *fin;
    struct kc_delete_options wrong_uid = {.uid = "00000000-0000-0000-0000-000000000000"};
    struct kc_delete_options stale_rv = {.resource_version = "1"};
    struct kc_delete_options right = {.propagation_policy = "Foreground"};
    struct kc_delete_options now = {
        .propagation_policy = "Background", .set_grace_period = true, .grace_period_seconds = 0};
    char uid[64], rv[32];

    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, &out));
    copy_at(out, "metadata.uid", uid, sizeof(uid));
    copy_at(out, "metadata.resourceVersion", rv, sizeof(rv));
    json_decref(out);
    REFUSED(c, kc_delete(c, &CONFIGMAPS, NS, "doomed", &wrong_uid, 0, NULL), KC_REASON_CONFLICT,
            409);
    REFUSED(c, kc_delete(c, &CONFIGMAPS, NS, "doomed", &stale_rv, 0, NULL), KC_REASON_CONFLICT,
            409);
    out = NULL;
    OK(c, kc_get(c, &CONFIGMAPS, NS, "doomed", 0, &out));
    CHECK(strcmp(str_at(out, "metadata.uid"), uid) == 0 && !at(out, "metadata.deletionTimestamp"),
          "a refused delete touched the object");
    json_decref(out);
    ok("delete with a wrong uid precondition: Conflict 409; with a stale resourceVersion: 409; "
       "object untouched");

    /* right preconditions, Foreground: no garbage collector here, so the object stays with
     * deletionTimestamp and the foregroundDeletion finalizer (the policy reached the server) */
    right.uid = uid;
    right.resource_version = rv;
    out = NULL;
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "doomed", &right, 0, &out));
    printf("# foreground delete answered HTTP %d\n", kc_last_status(c)->http_code);
    fin = at(out, "metadata.finalizers");
    CHECK(str_at(out, "metadata.deletionTimestamp") && json_array_size(fin) == 1 &&
              strcmp(json_string_value(json_array_get(fin, 0)), "foregroundDeletion") == 0,
          "foreground delete answer: %s", json_dumps(out, JSON_COMPACT));
    json_decref(out);
    fin = parse("{\"metadata\":{\"finalizers\":null}}");
    OK(c, kc_patch(c, &CONFIGMAPS, NS, "doomed", NULL, KC_PATCH_MERGE, fin, 0, NULL));
    json_decref(fin);
    REFUSED(c, kc_get(c, &CONFIGMAPS, NS, "doomed", 0, NULL), KC_REASON_NOT_FOUND, 404);

    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, NULL));
    OK(c, kc_delete(c, &CONFIGMAPS, NS, "doomed", &now, 0, NULL));
    REFUSED(c, kc_get(c, &CONFIGMAPS, NS, "doomed", 0, NULL), KC_REASON_NOT_FOUND, 404);
    REFUSED(c, kc_delete(c, &CONFIGMAPS, NS, "doomed", NULL, 0, NULL), KC_REASON_NOT_FOUND, 404);
    json_decref(cm);
    ok("delete with uid+resourceVersion, Foreground: kept with finalizer foregroundDeletion until "
       "it is removed; Background with grace 0: gone; deleting again: NotFound 404");
}

/* The user the server sees (a SelfSubjectReview). */
static void whoami(struct kc_client *c, char *user, size_t size, bool *masters)
{
    json_t *review = parse("{\"apiVersion\":\"authentication.k8s.io/v1\","
                           "\"kind\":\"SelfSubjectReview\"}"),
           *out = NULL, *g;
    size_t i;

    OK(c, kc_create(c, &REVIEWS, NULL, review, 0, &out));
    copy_at(out, "status.userInfo.username", user, size);
    *masters = false;
    json_array_foreach (at(out, "status.userInfo.groups"), i, g)
        *masters |= strcmp(json_string_value(g), "system:masters") == 0;
    json_decref(out);
    json_decref(review);
}

static void step_auth(const struct kc_config *cfg, struct kc_client *c)
{
    struct kc_config bad = *cfg, anon = *cfg, cert_cfg;
    struct kc_client *b, *a, *cc;
    char user[128], err[512], yaml[16384], path[600];
    bool masters;

    whoami(c, user, sizeof(user), &masters);
    CHECK(strcmp(user, "mgo-admin") == 0 && masters, "token user %s", user);

    bad.token = (char *)"not-a-valid-token";
    b = client_for(&bad, NULL);
    REFUSED(b, kc_get(b, &NAMESPACES, NULL, NS, 0, NULL), KC_REASON_UNAUTHORIZED, 401);
    kc_client_free(b);
    anon.token = NULL;
    a = client_for(&anon, NULL);
    REFUSED(a, kc_get(a, &NAMESPACES, NULL, NS, 0, NULL), KC_REASON_FORBIDDEN, 403);
    kc_client_free(a);
    ok("token user mgo-admin (system:masters); a bad token: Unauthorized 401; none: Forbidden 403");

    /* client certificate from *-data (base64 by coreutils) */
    (void)snprintf(
        yaml, sizeof(yaml),
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: '%s', certificate-authority-data: %s}}]\n"
        "users: [{name: u, user: {client-certificate-data: %s, client-key-data: %s}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: " NS "}}]\n"
        "current-context: x\n",
        env("KUBE_SERVER"), env("KC_CA_B64"), env("KC_CLIENT_CERT_B64"), env("KC_CLIENT_KEY_B64"));
    CHECK(kc_config_from_kubeconfig(yaml, strlen(yaml), NULL, NULL, &cert_cfg, err, sizeof(err)) ==
              0,
          "%s", err);
    CHECK(!cert_cfg.token && !cert_cfg.token_file && strcmp(cert_cfg.namespace, NS) == 0,
          "certificate kubeconfig");
    cc = client_for(&cert_cfg, NULL);
    whoami(cc, user, sizeof(user), &masters);
    CHECK(strcmp(user, "mgo-cert-user") == 0 && masters, "certificate user %s", user);
    kc_client_free(cc);
    kc_config_fini(&cert_cfg);

    /* the same from files named relative to the kubeconfig's directory */
    (void)snprintf(yaml, sizeof(yaml),
                   "clusters: [{name: c, cluster: {server: '%s', certificate-authority: ca.crt}}]\n"
                   "users: [{name: u, user: {client-certificate: client.crt, client-key: "
                   "client.key}}]\n"
                   "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
                   env("KUBE_SERVER"));
    (void)snprintf(path, sizeof(path), "%s/kubeconfig-cert", env("KC_WORK"));
    write_text(path, yaml);
    CHECK(kc_config_load_kubeconfig(path, NULL, &cert_cfg, err, sizeof(err)) == 0, "%s", err);
    cc = client_for(&cert_cfg, NULL);
    whoami(cc, user, sizeof(user), &masters);
    CHECK(strcmp(user, "mgo-cert-user") == 0 && masters, "certificate user (files) %s", user);
    kc_client_free(cc);
    kc_config_fini(&cert_cfg);
    ok("client certificate (CN mgo-cert-user, O system:masters, signed by the harness CA) from "
       "*-data and from relative files: the server sees mgo-cert-user");
}

/* write `token` into `path` through a new file renamed over it (as the kubelet swaps it) */
static void rotate_token(const char *dir, const char *token)
{
    char tmp[600], path[600];

    (void)snprintf(tmp, sizeof(tmp), "%s/.token.new", dir);
    (void)snprintf(path, sizeof(path), "%s/token", dir);
    write_text(tmp, token);
    CHECK(rename(tmp, path) == 0, "rename: %s", strerror(errno));
}

static void step_in_cluster(void)
{
    const char *server = env("KUBE_SERVER"), *port = strrchr(server, ':') + 1;
    char dir[600], path[700], err[512], wrong[128], *ca;
    size_t ca_len;
    struct kc_config cfg;
    struct kc_client *c;
    struct kc_stats st;
    struct stat sb;
    struct timespec times[2];
    const char *good = env("KUBE_TOKEN");
    int fd;

    (void)snprintf(dir, sizeof(dir), "%s/serviceaccount", env("KC_WORK"));
    CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
    read_whole_file(env("KUBE_CA"), &ca, &ca_len);
    (void)snprintf(path, sizeof(path), "%s/ca.crt", dir);
    write_text(path, ca);
    free(ca);
    (void)snprintf(path, sizeof(path), "%s/namespace", dir);
    write_text(path, NS "\n");
    rotate_token(dir, good);
    CHECK(setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1) == 0 &&
              setenv("KUBERNETES_SERVICE_PORT", port, 1) == 0,
          "setenv");
    CHECK(kc_config_in_cluster(dir, &cfg, err, sizeof(err)) == 0, "%s", err);
    CHECK(strcmp(cfg.server, server) == 0 && strcmp(cfg.namespace, NS) == 0, "in-cluster config");
    c = client_for(&cfg, NULL);
    OK(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL));

    /* a wrong token of the same length, then the right one: each read when the file changes */
    CHECK(strlen(good) < sizeof(wrong), "token too long");
    memset(wrong, 'x', strlen(good));
    wrong[strlen(good)] = '\0';
    rotate_token(dir, wrong);
    REFUSED(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL), KC_REASON_UNAUTHORIZED, 401);
    rotate_token(dir, good);
    OK(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL));
    kc_client_stats(c, &st);
    /* reads: the first request, the wrong token, once more after its 401, the good token */
    CHECK(st.token_reads == 4 && st.requests == 3, "token reads %" PRIu64 ", requests %" PRIu64,
          st.token_reads, st.requests);
    ok("in-cluster configuration: rotated token file re-read on change (good, wrong: 401, good)");

    /* the file changes without its size, inode or mtime changing: the cached token is stale; a
     * 401 makes the client read the file again and retry once */
    rotate_token(dir, wrong);
    REFUSED(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL), KC_REASON_UNAUTHORIZED, 401);
    (void)snprintf(path, sizeof(path), "%s/token", dir);
    CHECK(stat(path, &sb) == 0, "stat");
    fd = open(path, O_WRONLY);
    CHECK(fd >= 0 && write(fd, good, strlen(good)) == (ssize_t)strlen(good) && close(fd) == 0,
          "rewrite in place");
    times[0] = sb.st_atim;
    times[1] = sb.st_mtim;
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat");
    kc_client_stats(c, &st);
    OK(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL));
    {
        struct kc_stats st2;
        kc_client_stats(c, &st2);
        CHECK(st2.requests == st.requests + 2 && st2.token_reads == st.token_reads + 1,
              "401 retry: requests +%" PRIu64 ", token reads +%" PRIu64, st2.requests - st.requests,
              st2.token_reads - st.token_reads);
    }
    kc_client_free(c);
    kc_config_fini(&cfg);
    CHECK(unsetenv("KUBERNETES_SERVICE_HOST") == 0 && unsetenv("KUBERNETES_SERVICE_PORT") == 0,
          "unsetenv");
    ok("a token changed behind an unchanged stat: 401, re-read, sent again once: 200");
}

static void step_gzip(const struct kc_config *cfg, struct kc_client *c)
{
    struct kc_config plain = *cfg;
    struct kc_client *p;
    struct kc_stats before, after;
    static char big[300001];
    json_t *cm, *out = NULL;

    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + i % 26);
    cm = configmap("big", "k", big, "even");
    OK(c, kc_create(c, &CONFIGMAPS, NS, cm, 0, NULL));
    json_decref(cm);
    kc_client_stats(c, &before);
    OK(c, kc_get(c, &CONFIGMAPS, NS, "big", 0, &out));
    kc_client_stats(c, &after);
    CHECK(after.gzip_answers == before.gzip_answers + 1, "the 300 kB answer was not gzipped");
    CHECK(strcmp(str_at(out, "data.k"), big) == 0, "the gzipped answer decoded differently");
    json_decref(out);

    plain.disable_compression = true;
    p = client_for(&plain, NULL);
    out = NULL;
    OK(p, kc_get(p, &CONFIGMAPS, NS, "big", 0, &out));
    kc_client_stats(p, &after);
    CHECK(after.gzip_answers == 0 && strcmp(str_at(out, "data.k"), big) == 0,
          "disable-compression still got gzip");
    json_decref(out);
    kc_client_free(p);
    ok("a 300 kB ConfigMap comes back gzipped and decoded; with disable-compression not gzipped");
}

static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0), port;

    CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
              getsockname(s, (struct sockaddr *)&a, &len) == 0,
          "socket");
    port = ntohs(a.sin_port);
    close(s); /* nothing listens there now */
    return port;
}

static void step_failures(const struct kc_config *cfg, struct kc_client *c)
{
    struct kc_config refused = *cfg, untrusted = *cfg, insecure = *cfg;
    struct kc_client *x;
    struct timespec t0;
    char server[64];
    double took;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = kc_request(c, "GET", "/api/v1/namespaces/" NS "/configmaps?watch=true&timeoutSeconds=60",
                    NULL, NULL, 0, 700, NULL);
    took = seconds_since(&t0);
    CHECK(rc == -EAGAIN && strstr(kc_last_error(c), "timed out") && took < 10,
          "a 700 ms request on a 60 s watch: %d after %.1f s: %s", rc, took, kc_last_error(c));
    OK(c, kc_get(c, &NAMESPACES, NULL, NS, 0, NULL)); /* the client still works */
    ok("a per-request timeout of 700 ms ends a request the server holds: -EAGAIN after %.2f s",
       took);

    (void)snprintf(server, sizeof(server), "https://127.0.0.1:%d", closed_port());
    refused.server = server;
    x = client_for(&refused, NULL);
    rc = kc_get(x, &NAMESPACES, NULL, NS, 0, NULL);
    CHECK(rc == -EAGAIN && kc_last_status(x)->http_code == 0, "refused: %d: %s", rc,
          kc_last_error(x));
    kc_client_free(x);

    untrusted.ca = NULL; /* the system's bundle: does not know the harness CA */
    untrusted.ca_len = 0;
    x = client_for(&untrusted, NULL);
    rc = kc_get(x, &NAMESPACES, NULL, NS, 0, NULL);
    CHECK(rc == -EPROTO, "untrusted server: %d: %s", rc, kc_last_error(x));
    kc_client_free(x);

    insecure.ca = NULL;
    insecure.ca_len = 0;
    insecure.insecure_skip_tls_verify = true;
    x = client_for(&insecure, NULL);
    OK(x, kc_get(x, &NAMESPACES, NULL, NS, 0, NULL));
    kc_client_free(x);
    ok("connection refused: -EAGAIN; a server the CA bundle does not know: -EPROTO; "
       "insecure-skip-tls-verify: accepted");
}

/* The audit log (writes only, with their user agents): the namespace create by the default
 * client and a ConfigMap create by a client with its own user agent. */
static void step_user_agent(const struct kc_config *cfg)
{
    struct kc_client *u = client_for(cfg, "kc-test-agent/1.0");
    json_t *cm = configmap("ua-probe", "k", "v", "odd");
    struct timespec t0;
    bool saw_default = false, saw_custom = false;

    OK(u, kc_create(u, &CONFIGMAPS, NS, cm, 0, NULL));
    json_decref(cm);
    kc_client_free(u);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!(saw_default && saw_custom)) {
        char *log, *line, *next;
        size_t len;

        CHECK(seconds_since(&t0) < 20, "audit log: default user agent %d, custom %d", saw_default,
              saw_custom);
        read_whole_file(env("KUBE_AUDIT_LOG"), &log, &len);
        for (line = log; line && *line; line = next) {
            json_t *ev;
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            ev = json_loads(line, 0, NULL);
            if (ev && strcmp(str_at(ev, "verb") ? str_at(ev, "verb") : "", "create") == 0) {
                const char *ua = str_at(ev, "userAgent"), *name = str_at(ev, "objectRef.name");
                if (ua && name && strcmp(name, NS) == 0)
                    saw_default |= strcmp(ua, "mgo-kube/" MGO_VERSION) == 0;
                if (ua && name && strcmp(name, "ua-probe") == 0)
                    saw_custom |= strcmp(ua, "kc-test-agent/1.0") == 0;
            }
            json_decref(ev);
        }
        free(log);
        if (!(saw_default && saw_custom))
            pause_ms(200); /* the audit backend writes when a request completes */
    }
    ok("the audit log shows User-Agent mgo-kube/" MGO_VERSION " and a caller's own user agent");
}

int main(void)
{
    struct kc_config cfg;
    struct kc_client *c, *wc;
    struct kc_stats st;
    char list_rv[32];

    clock_gettime(CLOCK_MONOTONIC, &t_start);
    CHECK(kc_global_init() == 0, "kc_global_init"); /* threads follow */
    step_config(&cfg);
    c = client_for(&cfg, NULL);
    wc = client_for(&cfg, NULL);

    step_version_and_namespace(c);
    step_connection_reuse(&cfg);
    step_list(c, list_rv, sizeof(list_rv));
    step_watch_events(c, wc);
    step_watch_resume(c, wc);
    step_watch_gap(c, wc);
    step_refused_locally(c);
    step_watch_cancel(&cfg, c, wc);
    step_expired(&cfg, c, wc);
    step_apply(c);
    step_status(c);
    step_delete(c);
    step_auth(&cfg, c);
    step_in_cluster();
    step_gzip(&cfg, c);
    step_failures(&cfg, c);
    step_user_agent(&cfg);

    kc_client_stats(c, &st);
    printf("# main client: %" PRIu64 " requests over %" PRIu64 " connections, %" PRIu64
           " gzipped answers\n",
           st.requests, st.connections, st.gzip_answers);
    kc_client_free(wc);
    kc_client_free(c);
    kc_config_fini(&cfg);
    kc_global_cleanup();
    printf("%d passed, 0 failed\n", checks);
    return 0;
}
