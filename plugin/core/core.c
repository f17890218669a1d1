/* Library-level entry points: version, status codes, handle lifecycle. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "spec/schema.h"

MGO_API uint32_t mgo_abi_version(void)
{
    return MGO_ABI_VERSION;
}

struct code_info {
    int32_t code;
    int32_t class;
    const char *message;
};

static const struct code_info codes[] = {
    {MGO_OK, MGO_CLASS_NONE, "success"},
    {MGO_EINVAL, MGO_CLASS_INVALID_INPUT, "invalid input"},
    {MGO_EUNSUPPORTED, MGO_CLASS_UNSUPPORTED, "operation not supported by this library version"},
    {MGO_EAGAIN, MGO_CLASS_RETRY, "temporarily unavailable; retry later"},
    {MGO_ENOMEM, MGO_CLASS_FATAL, "out of memory"},
    {MGO_EARG, MGO_CLASS_INVALID_INPUT, "invalid argument"},
    {MGO_EABI, MGO_CLASS_FATAL, "ABI version mismatch"},
    {MGO_ENOTFOUND, MGO_CLASS_INVALID_INPUT, "not found"},
    {MGO_ERANGE, MGO_CLASS_INVALID_INPUT, "buffer too small"},
    {MGO_EINTERNAL, MGO_CLASS_FATAL, "internal error"},
};

static const struct code_info *code_lookup(int32_t code)
{
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].code == code)
            return &codes[i];
    return NULL;
}

MGO_API const char *mgo_strerror(int32_t code)
{
    const struct code_info *c = code_lookup(code);
    return c ? c->message : "unknown error";
}

MGO_API int32_t mgo_error_class(int32_t code)
{
    const struct code_info *c = code_lookup(code);
    return c ? c->class : MGO_CLASS_FATAL;
}

/* The part of mgo_host every host must supply: struct_size, abi_version and user. */
#define HOST_MIN_SIZE (offsetof(mgo_host, user) + sizeof(void *))

/* The fields after the mandatory part, in order, for copying only whole fields. */
static const struct {
    size_t offset, size;
} host_fields[] = {
    {offsetof(mgo_host, log), sizeof(((mgo_host *)0)->log)},
    {offsetof(mgo_host, now_ms), sizeof(((mgo_host *)0)->now_ms)},
    {offsetof(mgo_host, resolve), sizeof(((mgo_host *)0)->resolve)},
    {offsetof(mgo_host, secret), sizeof(((mgo_host *)0)->secret)},
    {offsetof(mgo_host, alloc), sizeof(((mgo_host *)0)->alloc)},
    {offsetof(mgo_host, realloc), sizeof(((mgo_host *)0)->realloc)},
    {offsetof(mgo_host, free), sizeof(((mgo_host *)0)->free)},
    {offsetof(mgo_host, log_level), sizeof(((mgo_host *)0)->log_level)},
    {offsetof(mgo_host, reserved0), sizeof(((mgo_host *)0)->reserved0)},
};

/* Copy the fields the host's struct_size covers completely; the rest stay zero (defaults).
 * A host built against a newer header passes a larger struct_size: fields this library does not
 * know are not read. */
static int32_t host_copy(const mgo_host *host, mgo_host *out)
{
    memset(out, 0, sizeof(*out));
    if (!host)
        return MGO_OK;
    if (host->struct_size < HOST_MIN_SIZE)
        return MGO_EARG;
    if (host->abi_version != MGO_ABI_VERSION)
        return MGO_EABI;
    memcpy(out, host, HOST_MIN_SIZE);
    for (size_t i = 0; i < sizeof(host_fields) / sizeof(host_fields[0]); i++)
        if (host_fields[i].offset + host_fields[i].size <= host->struct_size)
            memcpy((char *)out + host_fields[i].offset, (const char *)host + host_fields[i].offset,
                   host_fields[i].size);
    out->struct_size = sizeof(*out);
    int allocators = !!out->alloc + !!out->realloc + !!out->free;
    if ((allocators != 0 && allocators != 3) || out->reserved0 != 0)
        return MGO_EARG;
    return MGO_OK;
}

MGO_API int32_t mgo_open(const mgo_host *host, mgo_plugin **ret_plugin)
{
    mgo_host copy;
    mgo_plugin *p;
    int32_t rc;

    if (!ret_plugin)
        return MGO_EARG;
    rc = host_copy(host, &copy);
    if (rc != MGO_OK)
        return rc;
    core_alloc_init();
    p = copy.alloc ? copy.alloc(copy.user, sizeof(*p)) : malloc(sizeof(*p));
    if (!p)
        return MGO_ENOMEM;
    memset(p, 0, sizeof(*p));
    p->host = copy;

    struct core_scope scope;
    core_enter(p, &scope);
    p->regex_cache = schema_regex_cache_new();
    core_leave(&scope);
    if (!p->regex_cache) {
        mgo_close(p);
        return MGO_ENOMEM;
    }
    *ret_plugin = p;
    return MGO_OK;
}

MGO_API void mgo_close(mgo_plugin *plugin)
{
    if (!plugin)
        return;
    struct core_scope scope;
    core_enter(plugin, &scope);
    schema_regex_cache_free(plugin->regex_cache);
    core_leave(&scope);
    if (plugin->host.free)
        plugin->host.free(plugin->host.user, plugin);
    else
        free(plugin);
}
