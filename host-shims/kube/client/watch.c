/* WATCH: newline-delimited events streamed to a callback, with a resume point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kc_internal.h"

#define MAX_LINE_BYTES ((size_t)64 << 20)
#define WATCH_GRACE_S  30 /* the client's own deadline beyond the server's timeoutSeconds */

void kc_watch_init(struct kc_watch *w)
{
    if (!w)
        return;
    memset(w, 0, sizeof(*w));
    w->must_relist = true;
}

void kc_watch_fini(struct kc_watch *w)
{
    if (!w)
        return;
    free(w->resource_version);
    w->resource_version = NULL;
}

static enum kc_event_type event_type(const char *t)
{
    if (strcmp(t, "ADDED") == 0)
        return KC_EVENT_ADDED;
    if (strcmp(t, "MODIFIED") == 0)
        return KC_EVENT_MODIFIED;
    if (strcmp(t, "DELETED") == 0)
        return KC_EVENT_DELETED;
    if (strcmp(t, "BOOKMARK") == 0)
        return KC_EVENT_BOOKMARK;
    return 0;
}

/* One event line; false ends the stream. */
static bool handle_line(struct kc_watch_stream *s, const char *p, size_t n)
{
    struct kc_watch *w = s->w;
    json_error_t jerr;
    json_t *ev = NULL, *obj;
    const json_t *type, *rv;
    enum kc_event_type t;
    bool go_on = true;
    char *copy;
    int rc;

    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return true;
    rc = kc_json_parse(p, n, &ev, &jerr);
    if (rc == -ENOMEM) {
        s->error = -ENOMEM; /* not a bad line: the event is lost, so the stream cannot go on */
        return false;
    }
    type = json_object_get(ev, "type");
    obj = json_object_get(ev, "object");
    if (!json_is_string(type) || !json_is_object(obj)) {
        w->skipped++; /* not an event: client-go logs and skips these too */
        goto out;
    }
    if (strcmp(json_string_value(type), "ERROR") == 0) {
        if (kc_status_from_json(200, "GET", obj, NULL, &s->event_status) < 0)
            s->error = -ENOMEM;
        else if (kc_status_is_expired(&s->event_status))
            s->expired = true;
        else
            s->error = -EREMOTEIO;
        go_on = false;
        goto out;
    }
    t = event_type(json_string_value(type));
    rv = json_object_get(json_object_get(obj, "metadata"), "resourceVersion");
    if (!t || !json_is_string(rv) || json_string_length(rv) == 0) {
        w->skipped++;
        goto out;
    }
    /* the resume point moves before the callback sees the event: it has been delivered */
    if (!(copy = strdup(json_string_value(rv)))) {
        s->error = -ENOMEM;
        go_on = false;
        goto out;
    }
    free(w->resource_version);
    w->resource_version = copy;
    if (t == KC_EVENT_BOOKMARK)
        w->bookmarks++;
    else
        w->events++;
    if (w->fn(w->ctx, t, obj) != KC_WATCH_CONTINUE) {
        s->stopped = true;
        go_on = false;
    }
out:
    json_decref(ev);
    return go_on;
}

bool kc_watch_stream_feed(void *ctx, const char *data, size_t len)
{
    struct kc_watch_stream *s = ctx;

    while (len) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;

        if (take > MAX_LINE_BYTES - s->line.len) {
            s->error = -EPROTO;
            return false;
        }
        if (nl && s->line.len == 0) {
            if (!handle_line(s, data, take)) /* the whole line is here: no copy */
                return false;
        } else {
            if (kc_buf_append(&s->line, data, take) < 0) {
                s->error = -ENOMEM;
                return false;
            }
            if (nl) {
                bool go_on = handle_line(s, s->line.data, s->line.len);
                s->line.len = 0;
                if (!go_on)
                    return false;
            }
        }
        if (!nl)
            break;
        data = nl + 1;
        len -= take + 1;
    }
    return true;
}

bool kc_watch_stream_end(struct kc_watch_stream *s)
{
    bool go_on = true;

    if (s->line.len > 0)
        go_on = handle_line(s, s->line.data, s->line.len); /* a last event without its newline */
    s->line.len = 0;
    return go_on;
}

void kc_watch_stream_fini(struct kc_watch_stream *s)
{
    kc_status_fini(&s->event_status);
    kc_buf_fini(&s->line);
}

static int watch_path(struct kc_client *c, const struct kc_watch *w, int timeout_s, char **ret)
{
    char *path = NULL, num[16];
    int rc;

    if ((rc = kc_path(w->resource, w->namespace, NULL, NULL, &path)) < 0)
        return kc_fail(c, rc, "watch %.100s: bad resource or namespace",
                       w->resource->plural ? w->resource->plural : "(no resource)");
    (void)snprintf(num, sizeof(num), "%d", timeout_s);
    if ((rc = kc_query_add(&path, "watch", "true")) < 0 ||
        (rc = kc_query_add(&path, "allowWatchBookmarks", "true")) < 0 ||
        (rc = kc_query_add(&path, "resourceVersion", w->resource_version)) < 0 ||
        (rc = kc_query_add(&path, "labelSelector", w->label_selector)) < 0 ||
        (rc = kc_query_add(&path, "fieldSelector", w->field_selector)) < 0 ||
        (rc = kc_query_add(&path, "timeoutSeconds", num)) < 0) {
        free(path);
        return kc_fail(c, rc, "watch: out of memory");
    }
    *ret = path;
    return 0;
}

/* What the transfer's end means, once the answer is in. */
static int watch_outcome(struct kc_client *c, struct kc_watch_stream *s, const struct kc_http *req,
                         struct kc_answer *a)
{
    if (a->cancelled || s->stopped)
        return KC_WATCH_STOPPED;
    if (s->expired) {
        (void)kc_fail_status(c, req->method, req->path, &s->event_status);
        return KC_WATCH_EXPIRED;
    }
    if (s->error == -EREMOTEIO)
        return kc_fail_status(c, req->method, req->path, &s->event_status);
    if (s->error == -EPROTO)
        return kc_fail(c, -EPROTO, "watch %.300s: an event over %zu bytes", req->path,
                       MAX_LINE_BYTES);
    if (s->error)
        return kc_fail(c, s->error, "watch %.300s: out of memory reading an event", req->path);
    if (a->code != 200) {
        int rc = kc_fail_answer(c, req, a);
        return rc == -EREMOTEIO && kc_status_is_expired(&c->status) ? KC_WATCH_EXPIRED : rc;
    }
    if (!kc_watch_stream_end(s))
        return watch_outcome(c, s, req, a);
    return KC_WATCH_ENDED;
}

static int64_t now_ms(void)
{
    struct timespec t;

    (void)clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail with a valid clock */
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Sleep ms, in slices so that *cancel (may be NULL) is seen within 100 ms; true when it was. */
static bool sleep_unless_cancelled(int64_t ms, const atomic_int *cancel)
{
    int64_t deadline = now_ms() + ms, left;

    while ((left = deadline - now_ms()) > 0) {
        struct timespec t;

        if (cancel && atomic_load(cancel))
            return true;
        if (left > 100)
            left = 100;
        t.tv_sec = 0;
        t.tv_nsec = (long)left * 1000000L;
        (void)nanosleep(&t, NULL); /* EINTR: the loop sleeps the rest */
    }
    return cancel && atomic_load(cancel);
}

/* Before a connection or list that follows failures: wait the restart delay; true when *cancel
 * was set meanwhile. */
static bool wait_before_restart(struct kc_client *c, struct kc_watch *w)
{
    struct kc_backoff b = w->backoff;

    w->last_delay_ms = 0;
    if (!w->backing_off || w->failures == 0)
        return false;
    if (b.base_ms <= 0 && b.cap_ms <= 0)
        b = (struct kc_backoff){KC_WATCH_BACKOFF_BASE_MS, KC_WATCH_BACKOFF_CAP_MS};
    w->last_delay_ms = kc_backoff_restart_delay_ms(&b, w->failures - 1, kc_client_random(c));
    /* the watch's own cancel, else the client's (kc_client_set_cancel) */
    if (sleep_unless_cancelled(w->last_delay_ms, w->cancel ? w->cancel : c->cancel))
        return true;        /* still owed */
    w->backing_off = false; /* once per restart: a relist waits, the watch after it does not */
    return false;
}

static void count_failure(struct kc_watch *w)
{
    if (w->failures < 64) /* the delay stopped growing long before */
        w->failures++;
    w->backing_off = true;
}

static void count_success(struct kc_watch *w)
{
    w->failures = 0;
    w->backing_off = false;
}

/* What a connection's outcome means for the next restart (the contract in kc.h, point 4). */
static int account(struct kc_client *c, struct kc_watch *w, const char *path, int rc,
                   bool delivered, int64_t elapsed_ms)
{
    if (delivered)
        count_success(w);
    switch (rc) {
    case KC_WATCH_STOPPED:
        return rc;
    case KC_WATCH_ENDED:
        if (delivered || elapsed_ms >= KC_WATCH_SHORT_MS) {
            count_success(w);
            return rc;
        }
        count_failure(w);
        return kc_fail(c, -EAGAIN,
                       "watch %.300s: the server closed it after %lld ms without any event "
                       "(the next watch waits)",
                       path, (long long)elapsed_ms);
    case KC_WATCH_EXPIRED:
        w->must_relist = true;
        count_failure(w);
        return rc;
    default:
        count_failure(w);
        return rc;
    }
}

/* A watch without a resume point from a list must not run (the contract in kc.h, point 1). */
static bool has_resume_point(const struct kc_watch *w)
{
    return !w->must_relist && w->resource_version && w->resource_version[0] &&
           strcmp(w->resource_version, "0") != 0;
}

int kc_watch_list(struct kc_client *c, struct kc_watch *w, const struct kc_list_options *opts,
                  struct kc_list *out)
{
    struct kc_list_options o = opts ? *opts : (struct kc_list_options){0};
    struct kc_list l;
    char *rv;
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    kc_call_end(c); /* kc_list below is the call; this cleared the last error */
    if (!w || !w->resource || !out)
        return kc_fail(c, -EINVAL, "watch list: needs a struct kc_watch with a resource, and out");
    if (o.label_selector || o.field_selector)
        return kc_fail(c, -EINVAL,
                       "watch list %.100s: the selectors are the watch's own (struct kc_watch); "
                       "leave those of the list options NULL",
                       w->resource->plural ? w->resource->plural : "(no resource)");
    o.label_selector = w->label_selector;
    o.field_selector = w->field_selector;
    if (wait_before_restart(c, w))
        return kc_fail(c, -ECANCELED, "watch list %.100s: cancelled while waiting to restart",
                       w->resource->plural ? w->resource->plural : "(no resource)");
    rc = kc_list(c, w->resource, w->namespace, &o, &l);
    if (rc < 0) {
        if (rc != -EINVAL && rc != -ECANCELED)
            count_failure(w);
        return rc;
    }
    if (!l.resource_version[0] || strcmp(l.resource_version, "0") == 0) {
        count_failure(w);
        kc_list_fini(&l);
        return kc_fail(c, -EPROTO,
                       "watch list %.100s: the list has no resourceVersion to watch from",
                       w->resource->plural ? w->resource->plural : "(no resource)");
    }
    if (!(rv = strdup(l.resource_version))) {
        kc_list_fini(&l);
        return kc_fail(c, -ENOMEM, "watch list: out of memory");
    }
    free(w->resource_version);
    w->resource_version = rv;
    w->must_relist = false;
    w->relists++;
    *out = l;
    return 0;
}

int kc_watch(struct kc_client *c, struct kc_watch *w)
{
    struct kc_watch_stream s = {.c = c, .w = w};
    struct kc_answer a = {0};
    struct kc_http req = {.method = "GET", .stream = kc_watch_stream_feed, .stream_ctx = &s};
    char *path = NULL;
    uint64_t delivered_before;
    int64_t started;
    int timeout_s, rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!w || !w->fn || !w->resource || w->timeout_seconds < 0) {
        rc = kc_fail(c, -EINVAL,
                     "watch: needs an initialised struct kc_watch with a resource, a callback "
                     "and a timeout that is not negative");
        goto out;
    }
    if (!has_resume_point(w)) {
        rc = kc_fail(c, -EINVAL,
                     "watch %.100s: no resourceVersion from a list to start from: call "
                     "kc_watch_list first (at the start and after KC_WATCH_EXPIRED); a watch "
                     "from \"\" or \"0\" would miss deletions",
                     w->resource->plural ? w->resource->plural : "(no resource)");
        goto out;
    }
    timeout_s =
        w->timeout_seconds > 0 ? w->timeout_seconds : 300 + (int)(kc_client_random(c) % 300);
    if ((rc = watch_path(c, w, timeout_s, &path)) < 0)
        goto out;
    if (wait_before_restart(c, w)) {
        rc = KC_WATCH_STOPPED;
        goto out;
    }
    req.path = path;
    req.timeout_ms = ((int64_t)timeout_s + WATCH_GRACE_S) * 1000;
    req.cancel = w->cancel;
    delivered_before = w->events + w->bookmarks;
    started = now_ms();
    rc = kc_perform(c, &req, &a);
    if (rc == 0) {
        c->status.http_code = c->status.code = (int)a.code;
        rc = watch_outcome(c, &s, &req, &a);
    } else if (s.stopped || s.expired || s.error) {
        rc = watch_outcome(c, &s, &req, &a); /* the stream's end was ours, not the network's */
    }
    rc = account(c, w, path, rc, w->events + w->bookmarks != delivered_before, now_ms() - started);
out:
    kc_watch_stream_fini(&s);
    kc_answer_fini(&a);
    free(path);
    kc_call_end(c);
    return rc;
}
