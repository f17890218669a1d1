/*
 * The kc client (host-shims/kube/client) against faults a real kube-apiserver cannot be made to
 * produce on demand, served by a FAULT INJECTOR: a loopback HTTP/1.1 server in this process that
 * answers each request with the next canned answer and records what it received (request line,
 * headers, body, arrival time). Everything the real server can do is tested against the real
 * server (test_kc_apiserver.c); what is here:
 *   - a watch the server closes at once, again and again (restarts must back off with jitter);
 *   - an HTTP 410 answer to the watch request itself (kube-apiserver v1.37.2 sends its 410s as
 *     ERROR events inside an HTTP 200 stream: pkg/storage/cacher/cacher.go, "other errors must
 *     fail with a watch event of type ERROR"; older servers and proxies answer 410 directly);
 *   - memory running out while an answer is parsed (jansson's allocator made to fail);
 *   - requests that must never be sent (header injection, create without a namespace, a
 *     non-UTF-8 uid, a watch without a list): the injector proves nothing arrived.
 * Expected values are literals: the canned answers, the paths of shared/facts/
 * kubernetes-controller.md §1.1-1.3, and hand-computed backoff floors.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kc.h"

static const struct kc_resource CONFIGMAPS = {"", "v1", "configmaps", true};
static const struct kc_resource NAMESPACES = {"", "v1", "namespaces", false};

/* ---- the fault injector ---------------------------------------------------------------------- */

#define MAX_KEPT  16  /* requests whose text is kept */
#define MAX_TIMES 256 /* requests whose arrival time is kept */

struct canned {
    int code;
    const char *reason;
    const char *body;
};

struct injector {
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    const struct canned *answers; /* answers[i] for request i; the last one repeats */
    size_t n_answers;
    int requests;
    char text[MAX_KEPT][8192]; /* head and body of the first requests */
    struct timespec at[MAX_TIMES];
};

static struct injector inj;
/* How long the injector waits before it answers (ms), for requests a client gives up on. */
static atomic_int inj_hold_ms;

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

/* Read one request (head, then Content-Length bytes of body) into buf; its length, or -1. */
static ssize_t read_request(int fd, char *buf, size_t size)
{
    size_t len = 0, want = 0;
    char *head_end = NULL;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 5000) != 1)
            return -1;
        n = read(fd, buf + len, size - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (!head_end && (head_end = strstr(buf, "\r\n\r\n"))) {
            /* libcurl spells it so */
            const char *cl = strstr(buf, "\r\nContent-Length:");
            want = (size_t)(head_end + 4 - buf);
            if (cl && cl < head_end)
                want += strtoul(cl + 17, NULL, 10);
        }
        if (head_end && len >= want)
            return (ssize_t)len;
        if (len == size - 1)
            return (ssize_t)len; /* kept what fits */
    }
}

static void *injector_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&inj.stop)) {
        struct pollfd p = {.fd = inj.listen_fd, .events = POLLIN};
        char buf[sizeof(inj.text[0])], *answer;
        const struct canned *c;
        struct timespec now;
        size_t size;
        ssize_t n;
        int fd, i, len;

        if (poll(&p, 1, 5) != 1)
            continue;
        fd = accept(inj.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        n = read_request(fd, buf, sizeof(buf));
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (n < 0) {
            close(fd);
            continue;
        }
        pthread_mutex_lock(&inj.lock);
        i = inj.requests++;
        if (i < MAX_KEPT)
            memcpy(inj.text[i], buf, (size_t)n + 1);
        if (i < MAX_TIMES)
            inj.at[i] = now;
        c = &inj.answers[(size_t)i < inj.n_answers ? (size_t)i : inj.n_answers - 1];
        pthread_mutex_unlock(&inj.lock);
        for (int held = 0; held < atomic_load(&inj_hold_ms) && !atomic_load(&inj.stop); held += 10)
            (void)poll(NULL, 0, 10);
        size = strlen(c->body) + 256;
        answer = malloc(size);
        len = answer ? snprintf(answer, size,
                                "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                c->code, c->reason, strlen(c->body), c->body)
                     : -1;
        if (len > 0 && (size_t)len < size) {
            /* a short write only makes the client see a broken answer; the test then fails */
            ssize_t w = write(fd, answer, (size_t)len);
            (void)w;
        }
        free(answer);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

static void injector_start(const struct canned *answers, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(&inj, 0, sizeof(inj));
    atomic_store(&inj_hold_ms, 0);
    inj.answers = answers;
    inj.n_answers = n;
    pthread_mutex_init(&inj.lock, NULL);
    inj.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(inj.listen_fd >= 0);
    assert_int_equal(bind(inj.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(inj.listen_fd, 16), 0);
    assert_int_equal(getsockname(inj.listen_fd, (struct sockaddr *)&a, &alen), 0);
    inj.port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&inj.thread, NULL, injector_main, NULL), 0);
}

static void injector_stop(void)
{
    atomic_store(&inj.stop, 1);
    pthread_join(inj.thread, NULL);
    close(inj.listen_fd);
    pthread_mutex_destroy(&inj.lock);
}

static int injector_requests(void)
{
    int n;

    pthread_mutex_lock(&inj.lock);
    n = inj.requests;
    pthread_mutex_unlock(&inj.lock);
    return n;
}

/* The request line of request i ("GET /path HTTP/1.1"). */
static void request_line(int i, char *out, size_t size)
{
    const char *end;

    assert_true(i < injector_requests() && i < MAX_KEPT);
    end = strstr(inj.text[i], "\r\n");
    assert_non_null(end);
    (void)snprintf(out, size, "%.*s", (int)(end - inj.text[i]), inj.text[i]);
}

static struct kc_client *client_for_injector(void)
{
    char server[64];
    struct kc_config cfg = {.server = server};
    struct kc_client *c = NULL;

    (void)snprintf(server, sizeof(server), "http://127.0.0.1:%d", inj.port);
    assert_int_equal(kc_client_new(&cfg, NULL, &c), 0);
    return c;
}

/* ---- watch recording ------------------------------------------------------------------------- */

struct seen {
    char log[1024];
};

static int record(void *ctx, enum kc_event_type type, json_t *obj)
{
    static const char *const names[] = {"?", "ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    struct seen *s = ctx;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    size_t used = strlen(s->log);

    (void)snprintf(s->log + used, sizeof(s->log) - used, "%s %s;", names[type], name ? name : "-");
    return KC_WATCH_CONTINUE;
}

static void watch_setup(struct kc_watch *w, struct seen *seen)
{
    kc_watch_init(w);
    w->resource = &CONFIGMAPS;
    w->namespace = "ns";
    w->timeout_seconds = 5;
    w->fn = record;
    w->ctx = seen;
}

static const struct canned LIST_42 = {
    200, "OK",
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"42\"},"
    "\"items\":[{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"40\"}}]}"};
static const struct canned LIST_60 = {
    200, "OK",
    "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"60\"},"
    "\"items\":[]}"};
static const struct canned CLOSED_AT_ONCE = {200, "OK", ""};
static const struct canned DELETED_A = {
    200, "OK",
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"43\"}}}\n"};

/* ---- 1. a watch starts only from a list's resourceVersion ------------------------------------ */

static void test_watch_needs_list(void **state)
{
    const struct canned answers[] = {LIST_42, DELETED_A};
    struct kc_list_options with_selector = {.label_selector = "app=y"};
    struct kc_watch w;
    struct seen seen = {0};
    struct kc_list l;
    struct kc_client *c;
    char line[512];

    (void)state;
    injector_start(answers, 2);
    c = client_for_injector();
    watch_setup(&w, &seen);
    w.label_selector = "app=x";

    /* no list yet: refused, nothing sent (a watch from "" would miss deletions) */
    assert_int_equal(kc_watch(c, &w), -EINVAL);
    assert_non_null(strstr(kc_last_error(c), "kc_watch_list"));
    assert_int_equal(injector_requests(), 0);
    assert_int_equal(kc_watch_list(c, &w, &with_selector, &l), -EINVAL); /* the watch's own */
    assert_int_equal(injector_requests(), 0);

    assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
    request_line(0, line, sizeof(line));
    assert_string_equal(line,
                        "GET /api/v1/namespaces/ns/configmaps?limit=500&labelSelector=app%3Dx "
                        "HTTP/1.1");
    assert_int_equal(json_array_size(l.items), 1);
    assert_string_equal(w.resource_version, "42");
    assert_false(w.must_relist);
    assert_int_equal(w.relists, 1);
    kc_list_fini(&l);

    assert_int_equal(kc_watch(c, &w), KC_WATCH_ENDED);
    request_line(1, line, sizeof(line));
    assert_string_equal(line, "GET /api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks="
                              "true&resourceVersion=42&labelSelector=app%3Dx&timeoutSeconds=5 "
                              "HTTP/1.1");
    assert_string_equal(seen.log, "DELETED a;");
    assert_string_equal(w.resource_version, "43");
    assert_int_equal(w.failures, 0);
    kc_watch_fini(&w);
    kc_client_free(c);
    injector_stop();
}

/* ---- 9. HTTP 410 on the watch request itself --------------------------------------------------
 */

static void test_watch_http_410(void **state)
{
    static const struct {
        struct canned answer;
        const char *message;
        enum kc_reason reason;
    } rows[] = {
        {{410, "Gone",
          "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
          "\"message\":\"too old resource version: 42 (57)\",\"reason\":\"Expired\",\"code\":410}"},
         "too old resource version: 42 (57)",
         KC_REASON_EXPIRED},
        {{410, "Gone",
          "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
          "\"message\":\"gone\",\"reason\":\"Gone\",\"code\":410}"},
         "gone",
         KC_REASON_GONE},
        /* not a Status at all (a proxy's page): the code decides */
        {{410, "Gone", "<html>gone</html>"},
         "the answer is not a Status: <html>gone</html>",
         KC_REASON_GONE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct canned answers[] = {LIST_42, rows[i].answer, LIST_60, DELETED_A};
        struct kc_watch w;
        struct seen seen = {0};
        struct kc_list l;
        struct kc_client *c;

        injector_start(answers, 4);
        c = client_for_injector();
        watch_setup(&w, &seen);
        w.backoff = (struct kc_backoff){.base_ms = 20, .cap_ms = 100};
        assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
        kc_list_fini(&l);

        assert_int_equal(kc_watch(c, &w), KC_WATCH_EXPIRED);
        assert_int_equal(kc_last_status(c)->http_code, 410);
        assert_int_equal(kc_last_status(c)->code, 410);
        assert_int_equal(kc_last_reason(c), rows[i].reason);
        assert_string_equal(kc_last_status(c)->message, rows[i].message);
        assert_true(w.must_relist);
        assert_string_equal(w.resource_version, "42"); /* kept, but no longer usable */
        assert_string_equal(seen.log, "");

        /* the caller must relist: a watch now is refused without a request */
        assert_int_equal(kc_watch(c, &w), -EINVAL);
        assert_int_equal(injector_requests(), 2);
        assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
        assert_true(w.last_delay_ms >= 10 && w.last_delay_ms <= 20); /* after 1 failure */
        assert_string_equal(w.resource_version, "60");
        assert_false(w.must_relist);
        assert_int_equal(w.relists, 2);
        kc_list_fini(&l);
        /* the relist took the wait; the watch after it starts at once, from the new list */
        assert_int_equal(kc_watch(c, &w), KC_WATCH_ENDED);
        assert_int_equal(w.last_delay_ms, 0);
        assert_string_equal(seen.log, "DELETED a;");
        assert_int_equal(w.failures, 0);
        kc_watch_fini(&w);
        kc_client_free(c);
        injector_stop();
    }
}

/* ---- the informer loop of kc.h, as written there --------------------------------------------- */

struct cache {
    char names[8][16];
    int n;
    char log[512];
};

static void cache_log(struct cache *k, const char *what)
{
    size_t used = strlen(k->log);

    (void)snprintf(k->log + used, sizeof(k->log) - used, "%s;", what);
}

static int cache_event(void *ctx, enum kc_event_type type, json_t *obj)
{
    static const char *const names[] = {"?", "ADDED", "MODIFIED", "DELETED", "BOOKMARK"};
    struct cache *k = ctx;
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    char line[64];

    (void)snprintf(line, sizeof(line), "%s %s", names[type], name ? name : "-");
    cache_log(k, line);
    return KC_WATCH_CONTINUE;
}

/* The cache becomes the list's items; names that vanished are reported deleted. */
static void cache_replace(struct cache *k, json_t *items)
{
    char line[128] = "list", now[8][16];
    size_t i, used = 4;
    json_t *it;
    int n = 0;

    json_array_foreach (items, i, it) {
        const char *name =
            json_string_value(json_object_get(json_object_get(it, "metadata"), "name"));
        assert_true(name && n < 8);
        (void)snprintf(now[n++], sizeof(now[0]), "%s", name);
        used += (size_t)snprintf(line + used, sizeof(line) - used, " %s", name);
        assert_true(used < sizeof(line));
    }
    for (int a = 0; a < k->n; a++) {
        bool kept = false;
        for (int b = 0; b < n; b++)
            kept |= strcmp(k->names[a], now[b]) == 0;
        if (!kept) {
            used += (size_t)snprintf(line + used, sizeof(line) - used, ", deleted %s", k->names[a]);
            assert_true(used < sizeof(line));
        }
    }
    memcpy(k->names, now, sizeof(now));
    k->n = n;
    cache_log(k, line);
}

static void test_informer_loop(void **state)
{
    const struct canned answers[] = {
        {200, "OK",
         "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"42\"},\"items\":["
         "{\"metadata\":{\"name\":\"a\"}},{\"metadata\":{\"name\":\"b\"}}]}"},
        {200, "OK",
         "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\","
         "\"resourceVersion\":\"43\"}}}\n"},
        {410, "Gone",
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
         "\"message\":\"too old resource version: 43 (50)\",\"reason\":\"Expired\",\"code\":410}"},
        {200, "OK",
         "{\"kind\":\"ConfigMapList\",\"metadata\":{\"resourceVersion\":\"60\"},\"items\":["
         "{\"metadata\":{\"name\":\"b\"}}]}"},
    };
    static const char *const lines[] = {
        "GET /api/v1/namespaces/ns/configmaps?limit=500 HTTP/1.1",
        "GET /api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion="
        "42&timeoutSeconds=5 HTTP/1.1",
        "GET /api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion="
        "43&timeoutSeconds=5 HTTP/1.1",
        "GET /api/v1/namespaces/ns/configmaps?limit=500 HTTP/1.1",
    };
    struct cache cache = {0};
    struct kc_watch w;
    struct kc_list list;
    struct kc_client *c;
    atomic_int stop = 0;
    char line[512];
    int rc, loops = 0;

    (void)state;
    injector_start(answers, 4);
    c = client_for_injector();
    kc_watch_init(&w);
    w.resource = &CONFIGMAPS;
    w.namespace = "ns";
    w.timeout_seconds = 5;
    w.fn = cache_event;
    w.ctx = &cache;
    w.cancel = &stop;
    w.backoff = (struct kc_backoff){.base_ms = 10, .cap_ms = 40};
    while (!atomic_load(&stop)) {
        assert_true(++loops < 10);
        if (w.must_relist) {
            rc = kc_watch_list(c, &w, NULL, &list);
            if (rc == -EINVAL)
                break;
            if (rc < 0)
                continue;
            cache_replace(&cache, list.items);
            kc_list_fini(&list);
            if (w.relists == 2)
                atomic_store(&stop, 1); /* seen what this test is about */
        }
        rc = kc_watch(c, &w);
        if (rc == KC_WATCH_STOPPED || rc == -EINVAL)
            break;
        if (rc == KC_WATCH_EXPIRED)
            cache_log(&cache, "410");
    }
    assert_string_equal(cache.log, "list a b;MODIFIED b;410;list b, deleted a;");
    assert_int_equal(injector_requests(), 4); /* the watch after the stop was never sent */
    for (int i = 0; i < 4; i++) {
        request_line(i, line, sizeof(line));
        assert_string_equal(line, lines[i]);
    }
    kc_watch_fini(&w);
    kc_client_free(c);
    injector_stop();
}

/* ---- 4. a server that closes every watch at once: restarts back off ------------------------ */

static void test_short_watch_backoff(void **state)
{
    const struct canned answers[] = {LIST_42, CLOSED_AT_ONCE};
    /* ceilings 200, 400, 800, 800, 800: each delay at least half of its ceiling */
    static const int64_t floor_ms[] = {0, 100, 200, 400, 400, 400};
    const int watches = (int)(sizeof(floor_ms) / sizeof(floor_ms[0]));
    struct kc_watch w;
    struct seen seen = {0};
    struct kc_list l;
    struct kc_client *c;
    atomic_int cancel = 0;
    struct timespec t0, t1;

    (void)state;
    injector_start(answers, 2);
    c = client_for_injector();
    watch_setup(&w, &seen);
    w.backoff = (struct kc_backoff){.base_ms = 200, .cap_ms = 800};
    w.cancel = &cancel;
    assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
    kc_list_fini(&l);
    for (int i = 0; i < watches; i++) {
        int rc = kc_watch(c, &w);

        assert_int_equal(rc, -EAGAIN);
        assert_non_null(strstr(kc_last_error(c), "without any event"));
        assert_int_equal(w.failures, i + 1);
        if (w.last_delay_ms < floor_ms[i] || w.last_delay_ms > 2 * floor_ms[i])
            fail_msg("watch %d waited %" PRId64 " ms, expected %" PRId64 "..%" PRId64, i,
                     w.last_delay_ms, floor_ms[i], 2 * floor_ms[i]);
    }
    /* what the server saw: request 0 the list, then one watch after the other, spaced */
    assert_int_equal(injector_requests(), 1 + watches);
    for (int i = 1; i < watches; i++) {
        double gap = ms_between(&inj.at[i], &inj.at[i + 1]);
        if (gap < (double)floor_ms[i])
            fail_msg("watches %d and %d arrived %.1f ms apart, less than %" PRId64 " ms", i - 1, i,
                     gap, floor_ms[i]);
    }

    /* cancelled while waiting: no request, and not the whole wait it drew */
    atomic_store(&cancel, 1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kc_watch(c, &w), KC_WATCH_STOPPED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(w.last_delay_ms >= 400);
    if (ms_between(&t0, &t1) >= (double)w.last_delay_ms)
        fail_msg("the cancelled wait took %.0f ms, all of its %" PRId64 " ms", ms_between(&t0, &t1),
                 w.last_delay_ms);
    assert_int_equal(injector_requests(), 1 + watches);
    kc_watch_fini(&w);
    kc_client_free(c);
    injector_stop();

    /* a connection that delivers an event resets the count: the next one does not wait */
    const struct canned healthy[] = {LIST_42, CLOSED_AT_ONCE, DELETED_A, CLOSED_AT_ONCE};
    injector_start(healthy, 4);
    c = client_for_injector();
    watch_setup(&w, &seen);
    w.backoff = (struct kc_backoff){.base_ms = 50, .cap_ms = 50};
    assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
    kc_list_fini(&l);
    assert_int_equal(kc_watch(c, &w), -EAGAIN);
    assert_int_equal(w.failures, 1);
    assert_int_equal(kc_watch(c, &w), KC_WATCH_ENDED); /* waited, then DELETED a */
    assert_true(w.last_delay_ms >= 25);
    assert_int_equal(w.failures, 0);
    assert_int_equal(kc_watch(c, &w), -EAGAIN);
    assert_int_equal(w.last_delay_ms, 0);
    kc_watch_fini(&w);
    kc_client_free(c);
    injector_stop();
}

/* ---- 5. header injection --------------------------------------------------------------------- */

static void test_header_injection(void **state)
{
    static const char *const bad[] = {
        "application/json\r\nX-Injected: 1",
        "application/json\nX-Injected: 1",
        "application/json\rX-Injected: 1",
        "application/json\t; x",
        "application/\x7fjson",
        "application/caf\xc3\xa9",
        "",
    };
    const struct canned answers[] = {{200, "OK", "{}"}};
    static const char body[] = "{}";
    struct kc_client *c;
    struct kc_config cfg = {0};
    char server[64];

    (void)state;
    injector_start(answers, 1);
    c = client_for_injector();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = kc_request(c, "POST", "/api/v1/namespaces", bad[i], body, strlen(body), 0, NULL);
        if (rc != -EINVAL || !strstr(kc_last_error(c), "content type"))
            fail_msg("content type %zu: %d: %s", i, rc, kc_last_error(c));
        if (injector_requests() != 0)
            fail_msg("content type %zu reached the server:\n%s", i, inj.text[0]);
    }
    /* a proper one goes through, as sent */
    assert_int_equal(kc_request(c, "POST", "/api/v1/namespaces", "application/merge-patch+json",
                                body, strlen(body), 0, NULL),
                     0);
    assert_int_equal(injector_requests(), 1);
    assert_non_null(strstr(inj.text[0], "\r\nContent-Type: application/merge-patch+json\r\n"));
    kc_client_free(c);

    /* the other values that go into headers: a token and a user agent */
    (void)snprintf(server, sizeof(server), "http://127.0.0.1:%d", inj.port);
    cfg.server = server;
    cfg.token = (char *)"abc\r\nX-Injected: 1";
    assert_int_equal(kc_client_new(&cfg, NULL, &c), -EINVAL);
    cfg.token = NULL;
    assert_int_equal(kc_client_new(&cfg, "agent\r\nX-Injected: 1", &c), -EINVAL);
    assert_int_equal(injector_requests(), 1);
    injector_stop();
}

/* ---- 3. create of a namespaced kind without a namespace -------------------------------------- */

static void test_create_needs_namespace(void **state)
{
    const struct canned answers[] = {{201, "Created", "{\"kind\":\"ConfigMap\"}"}};
    json_t *bare = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                             "metadata", "name", "x");
    json_t *placed = json_pack("{s:s, s:s, s:{s:s, s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                               "metadata", "name", "x", "namespace", "ns");
    json_t *ns = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                           "metadata", "name", "ns");
    struct kc_client *c;
    char line[256];

    (void)state;
    injector_start(answers, 1);
    c = client_for_injector();
    assert_int_equal(kc_create(c, &CONFIGMAPS, NULL, bare, 0, NULL), -EINVAL);
    assert_string_equal(kc_last_error(c), "create configmaps x: the kind is namespaced: give a "
                                          "namespace (the argument or metadata.namespace)");
    assert_int_equal(injector_requests(), 0);

    /* the object's own namespace, the argument, and a cluster-scoped kind: sent */
    assert_int_equal(kc_create(c, &CONFIGMAPS, NULL, placed, 0, NULL), 0);
    assert_int_equal(kc_create(c, &CONFIGMAPS, "ns", bare, 0, NULL), 0);
    assert_int_equal(kc_create(c, &NAMESPACES, NULL, ns, 0, NULL), 0);
    assert_int_equal(injector_requests(), 3);
    request_line(0, line, sizeof(line));
    assert_string_equal(line, "POST /api/v1/namespaces/ns/configmaps HTTP/1.1");
    request_line(1, line, sizeof(line));
    assert_string_equal(line, "POST /api/v1/namespaces/ns/configmaps HTTP/1.1");
    request_line(2, line, sizeof(line));
    assert_string_equal(line, "POST /api/v1/namespaces HTTP/1.1");
    json_decref(bare);
    json_decref(placed);
    json_decref(ns);
    kc_client_free(c);
    injector_stop();
}

/* ---- out of memory while parsing (jansson's allocator made to fail) -------------------------- */

static long alloc_budget = -1; /* allocations that may still succeed; < 0: no limit */
static long alloc_live;        /* blocks allocated and not yet freed through these functions */

static void *failing_malloc(size_t n)
{
    void *p;

    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    p = malloc(n);
    if (p)
        alloc_live++;
    return p;
}

static void counting_free(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

static void jansson_budget(long budget)
{
    alloc_budget = budget;
    alloc_live = 0;
    json_set_alloc_funcs(failing_malloc, counting_free);
}

/* Back to plain malloc; whether the budget ran out. */
static bool jansson_unlimited(void)
{
    bool exhausted = alloc_budget == 0;

    alloc_budget = -1;
    json_set_alloc_funcs(malloc, free);
    return exhausted;
}

/* 2. A 2xx body, a failure's Status and a watch event, each under every budget: the full result
 * or -ENOMEM, never "not JSON", "not a Status" or a skipped event. */
static void test_oom_answers(void **state)
{
    const struct canned answers[] = {
        {200, "OK",
         "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ns\",\"labels\":{\"a\":\"b\"}}}"},
        {404, "Not Found",
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
         "\"message\":\"namespaces \\\"nothing\\\" not found\",\"reason\":\"NotFound\","
         "\"details\":{\"name\":\"nothing\",\"kind\":\"namespaces\"},\"code\":404}"},
        LIST_42,
        {200, "OK",
         "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"50\","
         "\"labels\":{\"k\":\"v\"}}}}\n"
         "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"51\""
         "}}}\n"},
    };
    int nomem[3] = {0};
    struct kc_client *c;

    (void)state;
    for (int kind = 0; kind < 3; kind++) {
        for (long budget = 0;; budget++) {
            const struct canned one[] = {answers[kind == 2 ? 2 : kind], answers[3]};
            json_t *out = NULL;
            bool exhausted;
            int rc;

            injector_start(one, 2);
            c = client_for_injector();
            if (kind == 0) {
                jansson_budget(budget);
                rc = kc_get(c, &NAMESPACES, NULL, "ns", 0, &out);
                exhausted = jansson_unlimited();
                if (rc == 0)
                    assert_string_equal(
                        json_string_value(json_object_get(
                            json_object_get(json_object_get(out, "metadata"), "labels"), "a")),
                        "b");
                else if (rc != -ENOMEM)
                    fail_msg("a 200 body with budget %ld: %d: %s", budget, rc, kc_last_error(c));
            } else if (kind == 1) {
                jansson_budget(budget);
                rc = kc_get(c, &NAMESPACES, NULL, "nothing", 0, NULL);
                exhausted = jansson_unlimited();
                if (rc == -EREMOTEIO) {
                    if (kc_last_reason(c) != KC_REASON_NOT_FOUND ||
                        strcmp(kc_last_status(c)->message, "namespaces \"nothing\" not found") != 0)
                        fail_msg("a Status with budget %ld: %s", budget, kc_last_error(c));
                    rc = 0;
                } else if (rc != -ENOMEM) {
                    fail_msg("a Status with budget %ld: %d: %s", budget, rc, kc_last_error(c));
                }
            } else {
                struct kc_watch w;
                struct seen seen = {0};
                struct kc_list l;

                watch_setup(&w, &seen);
                assert_int_equal(kc_watch_list(c, &w, NULL, &l), 0);
                kc_list_fini(&l);
                jansson_budget(budget);
                rc = kc_watch(c, &w);
                exhausted = jansson_unlimited();
                if (rc == KC_WATCH_ENDED) {
                    if (strcmp(seen.log, "ADDED b;DELETED a;") != 0 || w.skipped != 0)
                        fail_msg("events with budget %ld: \"%s\", %" PRIu64 " skipped", budget,
                                 seen.log, w.skipped);
                } else if (rc != -ENOMEM) {
                    fail_msg("a watch with budget %ld: %d (events \"%s\", %" PRIu64 " skipped): %s",
                             budget, rc, seen.log, w.skipped, kc_last_error(c));
                }
                kc_watch_fini(&w);
            }
            if (rc == -ENOMEM) {
                nomem[kind]++;
                assert_non_null(strstr(kc_last_error(c), "out of memory"));
            }
            json_decref(out);
            kc_client_free(c);
            injector_stop();
            if (rc != -ENOMEM && !exhausted)
                break; /* it had all the memory it wanted */
        }
        assert_true(nomem[kind] > 0);
    }
}

/* ---- 6. delete: a uid that is not UTF-8, and the body's ownership -----------------------------
 */

static void test_delete_options(void **state)
{
    static const struct {
        struct kc_delete_options o;
        const char *error;
    } rows[] = {
        {{.uid = "\xff\xfe"}, "delete x: preconditions.uid is not valid UTF-8"},
        {{.uid = "u1", .resource_version = "\xc3"},
         "delete x: preconditions.resourceVersion is not valid UTF-8"},
        {{.propagation_policy = "Fore\x80ground"},
         "delete x: propagationPolicy is not valid UTF-8"},
    };
    const struct canned answers[] = {
        {200, "OK", "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}"}};
    const struct kc_delete_options full = {.uid = "u1",
                                           .resource_version = "5",
                                           .propagation_policy = "Foreground",
                                           .set_grace_period = true,
                                           .grace_period_seconds = 0};
    struct kc_client *c;
    int nomem = 0;

    (void)state;
    injector_start(answers, 1);
    c = client_for_injector();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(kc_delete(c, &CONFIGMAPS, "ns", "x", &rows[i].o, 0, NULL), -EINVAL);
        assert_string_equal(kc_last_error(c), rows[i].error);
    }
    assert_int_equal(injector_requests(), 0);

    /* every budget: the body sent whole, or -ENOMEM, and no jansson block left behind */
    for (long budget = 0;; budget++) {
        bool exhausted;
        int rc, before = injector_requests();

        jansson_budget(budget);
        rc = kc_delete(c, &CONFIGMAPS, "ns", "x", &full, 0, NULL);
        if (alloc_live != 0)
            fail_msg("budget %ld: %ld jansson blocks leaked", budget, alloc_live);
        exhausted = jansson_unlimited();
        if (rc == -ENOMEM) {
            nomem++;
            assert_int_equal(injector_requests(), before);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(injector_requests(), before + 1);
        if (!exhausted)
            break;
    }
    assert_true(nomem >= 5);
    assert_non_null(
        strstr(inj.text[0], "\"preconditions\":{\"uid\":\"u1\",\"resourceVersion\":\"5\"}"));
    assert_non_null(strstr(inj.text[0], "\"propagationPolicy\":\"Foreground\""));
    assert_non_null(strstr(inj.text[0], "\"gracePeriodSeconds\":0"));
    kc_client_free(c);
    injector_stop();
}

/* ---- a client's cancel: nothing sent once set, a request in flight dropped ------------------ */

static atomic_int cancel_flag;

/* Set the cancel once the injector has received the second request (it is holding it), within
 * 10 s. */
static void *cancel_when_held(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000 && injector_requests() < 2; i++)
        (void)poll(NULL, 0, 10);
    atomic_store(&cancel_flag, 1);
    return NULL;
}

static void test_client_cancel(void **state)
{
    const struct canned answers[] = {{201, "Created", "{\"kind\":\"ConfigMap\"}"}};
    json_t *cm = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                           "metadata", "name", "x");
    struct kc_client *c;
    struct timespec t0, t1;
    pthread_t th;

    (void)state;
    injector_start(answers, 1);
    c = client_for_injector();
    atomic_store(&cancel_flag, 0);
    kc_client_set_cancel(c, &cancel_flag);

    /* not cancelled: sent and answered */
    assert_int_equal(kc_create(c, &CONFIGMAPS, "ns", cm, 0, NULL), 0);
    assert_int_equal(injector_requests(), 1);

    /* the server holds its answer for 20 s; the cancel comes once it holds the request: the
     * call fails with -ECANCELED long before the answer (libcurl's progress callback runs at
     * least once a second; 10 s leaves room for a loaded machine and still tells "dropped"
     * from "waited for the answer") */
    atomic_store(&inj_hold_ms, 20000);
    assert_int_equal(pthread_create(&th, NULL, cancel_when_held, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kc_create(c, &CONFIGMAPS, "ns", cm, 30000, NULL), -ECANCELED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(th, NULL);
    if (ms_between(&t0, &t1) >= 10000)
        fail_msg("the cancelled request took %.0f ms", ms_between(&t0, &t1));
    assert_non_null(strstr(kc_last_error(c), "cancelled"));

    /* cancelled already: nothing is sent. Then, not cancelled, one more request: the injector
     * answers one at a time in order, so it has counted exactly 3 when that one is answered,
     * 4 if the cancelled call had sent anything. */
    atomic_store(&inj_hold_ms, 0);
    assert_int_equal(kc_create(c, &CONFIGMAPS, "ns", cm, 0, NULL), -ECANCELED);
    assert_non_null(strstr(kc_last_error(c), "cancelled, not sent"));
    atomic_store(&cancel_flag, 0);
    assert_int_equal(kc_create(c, &CONFIGMAPS, "ns", cm, 0, NULL), 0);
    assert_int_equal(injector_requests(), 3);
    kc_client_free(c);
    injector_stop();
    json_decref(cm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_needs_list), cmocka_unit_test(test_watch_http_410),
        cmocka_unit_test(test_informer_loop),    cmocka_unit_test(test_short_watch_backoff),
        cmocka_unit_test(test_header_injection), cmocka_unit_test(test_create_needs_namespace),
        cmocka_unit_test(test_oom_answers),      cmocka_unit_test(test_delete_options),
        cmocka_unit_test(test_client_cancel),
    };

    if (kc_global_init() != 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kc_global_cleanup();
    return rc;
}
