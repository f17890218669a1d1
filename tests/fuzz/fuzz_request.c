/*
 * libFuzzer target: arbitrary bytes as the request document of mgo_validate and mgo_reconcile,
 * the library's outermost entry points. Every call must return a known status and, whenever a
 * result is produced, a NUL-terminated JSON text of the reported length.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgo/mgo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No name resolves: a request that asks for topology registration fails fast instead of
 * waiting on the network. */
static int32_t no_resolve(void *user, const char *address, size_t address_len, int64_t timeout_ms,
                          char *buf, size_t size, size_t *ret_len)
{
    (void)user;
    (void)address;
    (void)address_len;
    (void)timeout_ms;
    (void)buf;
    (void)size;
    (void)ret_len;
    return MGO_ENOTFOUND;
}

static void check(int32_t rc, const char *out, size_t len)
{
    if (rc > 0 || rc < MGO_EINTERNAL)
        abort();
    if (out && (strlen(out) != len || (out[0] != '{')))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mgo_plugin *plugin;
    char *out = NULL;
    size_t len = 0;

    mgo_host host = {.struct_size = sizeof(host), .abi_version = MGO_ABI_VERSION};
    host.resolve = no_resolve;
    if (!plugin && mgo_open(&host, &plugin) != MGO_OK)
        return 0;
    int32_t rc = mgo_validate(plugin, (const char *)data, size, &out, &len);
    check(rc, out, len);
    mgo_free(out);
    rc = mgo_reconcile(plugin, (const char *)data, size, &out, &len);
    check(rc, out, len);
    mgo_free(out);
    return 0;
}
