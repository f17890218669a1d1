/* WATCH: newline-delimited events streamed to a callback, with a resume point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

#define MAX_LINE_BYTES ((size_t)64 << 20)
#define WATCH_GRACE_S  30 /* the client's own deadline beyond the server's timeoutSeconds */

int kc_watch_init(struct kc_watch *w, const char *resource_version)
{
    if (!w)
        return -EINVAL;
    memset(w, 0, sizeof(*w));
    return kc_watch_set_resource_version(w, resource_version);
}

void kc_watch_fini(struct kc_watch *w)
{
    if (!w)
        return;
    free(w->resource_version);
    w->resource_version = NULL;
}

int kc_watch_set_resource_version(struct kc_watch *w, const char *resource_version)
{
    char *rv = strdup(resource_version ? resource_version : "");

    if (!rv)
        return -ENOMEM;
    free(w->resource_version);
    w->resource_version = rv;
    /* "" and "0" start with synthetic ADDED events for the current state, in no RV order */
    w->from_start = rv[0] == '\0' || strcmp(rv, "0") == 0;
    return 0;
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
    json_t *ev, *obj;
    const json_t *type, *rv;
    enum kc_event_type t;
    bool go_on = true;
    char *copy;

    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return true;
    ev = json_loadb(p, n, 0, &jerr);
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
    if (!(w->from_start && t == KC_EVENT_ADDED)) {
        if (!(copy = strdup(json_string_value(rv)))) {
            s->error = -ENOMEM;
            go_on = false;
            goto out;
        }
        free(w->resource_version);
        w->resource_version = copy;
        w->from_start = false;
    }
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

static int watch_path(struct kc_client *c, const struct kc_resource *r, const char *ns,
                      const struct kc_watch *w, int timeout_s, char **ret)
{
    char *path = NULL, num[16];
    int rc;

    if ((rc = kc_path(r, ns, NULL, NULL, &path)) < 0)
        return kc_fail(c, rc, "watch %.100s: bad resource or namespace",
                       r && r->plural ? r->plural : "(no resource)");
    (void)snprintf(num, sizeof(num), "%d", timeout_s);
    if ((rc = kc_query_add(&path, "watch", "true")) < 0 ||
        (rc = kc_query_add(&path, "allowWatchBookmarks", "true")) < 0 ||
        (w->resource_version[0] &&
         (rc = kc_query_add(&path, "resourceVersion", w->resource_version)) < 0) ||
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
        return kc_fail(c, s->error, "watch %.300s: out of memory", req->path);
    if (a->code != 200) {
        int rc = kc_fail_answer(c, req, a);
        return rc == -EREMOTEIO && kc_status_is_expired(&c->status) ? KC_WATCH_EXPIRED : rc;
    }
    if (!kc_watch_stream_end(s))
        return watch_outcome(c, s, req, a);
    return KC_WATCH_ENDED;
}

int kc_watch(struct kc_client *c, const struct kc_resource *r, const char *ns, struct kc_watch *w)
{
    struct kc_watch_stream s = {.c = c, .w = w};
    struct kc_answer a = {0};
    struct kc_http req = {.method = "GET", .stream = kc_watch_stream_feed, .stream_ctx = &s};
    char *path = NULL;
    int timeout_s, rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!w || !w->fn || !w->resource_version || w->timeout_seconds < 0) {
        rc = kc_fail(c, -EINVAL,
                     "watch: needs an initialised struct kc_watch with a callback "
                     "and a timeout that is not negative");
        goto out;
    }
    timeout_s =
        w->timeout_seconds > 0 ? w->timeout_seconds : 300 + (int)(kc_client_random(c) % 300);
    if ((rc = watch_path(c, r, ns, w, timeout_s, &path)) < 0)
        goto out;
    req.path = path;
    req.timeout_ms = ((int64_t)timeout_s + WATCH_GRACE_S) * 1000;
    req.cancel = w->cancel;
    rc = kc_perform(c, &req, &a);
    if (rc == 0) {
        c->status.http_code = c->status.code = (int)a.code;
        rc = watch_outcome(c, &s, &req, &a);
    } else if (s.stopped || s.expired || s.error) {
        rc = watch_outcome(c, &s, &req, &a); /* the stream's end was ours, not the network's */
    }
out:
    kc_watch_stream_fini(&s);
    kc_answer_fini(&a);
    free(path);
    kc_call_end(c);
    return rc;
}
