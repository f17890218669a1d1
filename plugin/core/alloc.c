/* Allocation through the host's allocator for the duration of a call (see core.h). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static _Thread_local const mgo_plugin *current_plugin;
/* Set when an allocation failed during the current call. Some failures cannot be reported by
 * the code that met them (the JSON library's lexer drops input it cannot buffer), so a hook's
 * outcome is only trusted when nothing failed. */
static _Thread_local int allocation_failed;

void core_enter(const mgo_plugin *plugin, struct core_scope *saved)
{
    saved->plugin = current_plugin;
    saved->allocation_failed = allocation_failed;
    current_plugin = plugin;
    allocation_failed = 0;
}

int core_allocation_failed(void)
{
    return allocation_failed;
}

void core_leave(const struct core_scope *saved)
{
    current_plugin = saved->plugin;
    allocation_failed = saved->allocation_failed;
}

static const mgo_host *current_allocator(void)
{
    if (current_plugin && current_plugin->host.alloc)
        return &current_plugin->host;
    return NULL;
}

void *core_malloc(size_t size)
{
    const mgo_host *h = current_allocator();
    if (size == 0)
        size = 1;
    void *p = h ? h->alloc(h->user, size) : malloc(size);
    if (!p)
        allocation_failed = 1;
    return p;
}

void *core_calloc(size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size) {
        allocation_failed = 1;
        return NULL;
    }
    void *p = core_malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *core_realloc(void *ptr, size_t size)
{
    const mgo_host *h = current_allocator();
    if (size == 0)
        size = 1;
    void *p = h ? h->realloc(h->user, ptr, size) : realloc(ptr, size);
    if (!p)
        allocation_failed = 1;
    return p;
}

void core_free(void *ptr)
{
    const mgo_host *h = current_allocator();
    if (!ptr)
        return;
    if (h)
        h->free(h->user, ptr);
    else
        free(ptr);
}

char *core_strndup(const char *s, size_t len)
{
    char *d = core_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *core_strdup(const char *s)
{
    return core_strndup(s, strlen(s));
}

static void install_json_allocator(void)
{
    json_set_alloc_funcs(core_malloc, core_free);
}

void core_alloc_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    (void)pthread_once(&once, install_json_allocator); /* cannot fail with a valid once object */
}

void core_utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t need = *p < 0x80                 ? 0
                      : *p >= 0xF0 && *p < 0xF8 ? 3
                      : *p >= 0xE0              ? 2
                      : *p >= 0xC2              ? 1
                                                : (size_t)-1;
        size_t k = 0;
        if (need != (size_t)-1)
            while (k < need && (p[k + 1] & 0xC0) == 0x80)
                k++;
        if (need == (size_t)-1 || k < need) {
            *p++ = '?'; /* a stray or cut byte: the rest is examined afresh */
            continue;
        }
        p += need + 1;
    }
}

void core_log(int32_t level, const char *fmt, ...)
{
    const mgo_plugin *p = current_plugin;
    char msg[2048];
    va_list ap;
    int n;

    if (!p || !p->host.log || level > p->host.log_level)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    core_utf8_sanitize(msg);
    p->host.log(p->host.user, level, msg, strlen(msg));
}

/* Buffers handed to the host start with this header, so mgo_free() needs no handle. */
union result_header {
    struct {
        void (*free)(void *user, void *ptr);
        void *user;
    } owner;
    max_align_t align;
};

int core_result_dump(const json_t *doc, char **ret_buf, size_t *ret_len)
{
    const mgo_host *h = current_allocator();
    size_t need = json_dumpb(doc, NULL, 0, JSON_COMPACT);
    union result_header *hdr;
    char *body;

    if (need == 0 || need > SIZE_MAX - sizeof(*hdr) - 1)
        return -ENOMEM;
    hdr = core_malloc(sizeof(*hdr) + need + 1);
    if (!hdr)
        return -ENOMEM;
    hdr->owner.free = h ? h->free : NULL;
    hdr->owner.user = h ? h->user : NULL;
    body = (char *)(hdr + 1);
    if (json_dumpb(doc, body, need, JSON_COMPACT) != need) {
        core_free(hdr);
        return -ENOMEM;
    }
    body[need] = '\0';
    *ret_buf = body;
    *ret_len = need;
    return 0;
}

MGO_API void mgo_free(void *ptr)
{
    union result_header *hdr;

    if (!ptr)
        return;
    hdr = (union result_header *)ptr - 1;
    if (hdr->owner.free)
        hdr->owner.free(hdr->owner.user, hdr);
    else
        free(hdr);
}

void core_result_set_error(json_t *doc, int32_t code, const char *message)
{
    json_t *err = json_pack("{s:I, s:I, s:s}", "code", (json_int_t)code, "class",
                            (json_int_t)mgo_error_class(code), "message",
                            message ? message : mgo_strerror(code));
    if (err)
        (void)json_object_set_new(doc, "error", err); /* on failure the document lacks detail */
}
