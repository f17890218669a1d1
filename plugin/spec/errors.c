/* Field paths and the error/warning lists of one validation. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "spec/errors.h"

static void path_append(struct spec_path *p, const char *s, size_t n)
{
    size_t room = sizeof(p->buf) - 1 - p->len;
    if (n > room) {
        /* Keep the path printable; mark where it was cut. */
        n = room >= 3 ? room - 3 : 0;
        memcpy(p->buf + p->len, s, n);
        p->len += n;
        memcpy(p->buf + p->len, "...", sizeof(p->buf) - 1 - p->len < 3 ? 0 : 3);
        p->len = p->len + 3 <= sizeof(p->buf) - 1 ? p->len + 3 : p->len;
        p->buf[p->len] = '\0';
        return;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

void spec_path_init(struct spec_path *p, const char *root)
{
    p->len = 0;
    p->buf[0] = '\0';
    if (root)
        path_append(p, root, strlen(root));
}

size_t spec_path_push_field(struct spec_path *p, const char *name)
{
    size_t old = p->len;
    if (p->len > 0)
        path_append(p, ".", 1);
    path_append(p, name, strlen(name));
    return old;
}

size_t spec_path_push_index(struct spec_path *p, size_t index)
{
    char tmp[32];
    size_t old = p->len;
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    if (n > 0)
        path_append(p, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    return old;
}

size_t spec_path_push_key(struct spec_path *p, const char *key)
{
    size_t old = p->len;
    path_append(p, "[", 1);
    path_append(p, key, strlen(key));
    path_append(p, "]", 1);
    return old;
}

void spec_path_pop(struct spec_path *p, size_t len)
{
    if (len <= p->len) {
        p->len = len;
        p->buf[len] = '\0';
    }
}

int spec_errors_init(struct spec_errors *e)
{
    e->errors = json_array();
    e->warnings = json_array();
    e->oom = 0;
    if (!e->errors || !e->warnings) {
        spec_errors_fini(e);
        return -ENOMEM;
    }
    return 0;
}

void spec_errors_fini(struct spec_errors *e)
{
    json_decref(e->errors);
    json_decref(e->warnings);
    e->errors = NULL;
    e->warnings = NULL;
}

size_t spec_errors_count(const struct spec_errors *e)
{
    return json_array_size(e->errors);
}

static json_t *string_or_empty(char *s)
{
    core_utf8_sanitize(s);
    json_t *j = json_string(s);
    return j ? j : json_string("");
}

static void record(struct spec_errors *e, json_t *list, const char *path, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));

static void record(struct spec_errors *e, json_t *list, const char *path, const char *fmt,
                   va_list ap)
{
    char reason[1024];
    int n = vsnprintf(reason, sizeof(reason), fmt, ap);
    if (n < 0) {
        e->oom = 1;
        return;
    }
    if ((size_t)n >= sizeof(reason))
        memcpy(reason + sizeof(reason) - 4, "...", 4);
    char path_copy[sizeof(((struct spec_path *)0)->buf)];
    (void)snprintf(path_copy, sizeof(path_copy), "%s", path ? path : "");
    json_t *item = json_pack("{s:o, s:o}", "path", string_or_empty(path_copy), "reason",
                             string_or_empty(reason));
    if (!item || json_array_append_new(list, item))
        e->oom = 1;
}

void spec_error(struct spec_errors *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(e, e->errors, path, fmt, ap);
    va_end(ap);
}

void spec_warning(struct spec_errors *e, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(e, e->warnings, path, fmt, ap);
    va_end(ap);
}
