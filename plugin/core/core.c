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

static int32_t host_copy(const mgo_host *host, mgo_host *out)
{
    memset(out, 0, sizeof(*out));
    if (!host)
        return MGO_OK;
    if (host->struct_size < HOST_MIN_SIZE)
        return MGO_EARG;
    if (host->abi_version != MGO_ABI_VERSION)
        return MGO_EABI;
    memcpy(out, host, host->struct_size < sizeof(*out) ? host->struct_size : sizeof(*out));
    out->struct_size = sizeof(*out);
    int allocators = !!out->alloc + !!out->realloc + !!out->free;
    if (allocators != 0 && allocators != 3)
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

    const mgo_plugin *saved = core_enter(p);
    p->regex_cache = schema_regex_cache_new();
    core_leave(saved);
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
    const mgo_plugin *saved = core_enter(plugin);
    schema_regex_cache_free(plugin->regex_cache);
    core_leave(saved);
    if (plugin->host.free)
        plugin->host.free(plugin->host.user, plugin);
    else
        free(plugin);
}
