/* The host's resolve and secret callbacks, with their buffer protocol (include/mgo/mgo.h). */
#include <errno.h>
#include <string.h>

#include "core/core.h"

typedef int32_t (*fetch_fn)(const mgo_host *h, const void *args, int64_t timeout_ms, char *buf,
                            size_t size, size_t *ret_len);

/* Call `fetch` with a first buffer of `first` bytes, then once more with exactly the size it
 * asked for. Returns the host's code; on MGO_OK *ret (core_malloc, NUL-terminated) and
 * *ret_len. `wipe` clears buffers before they are released (secrets). */
static int32_t fetch_with_retry(const mgo_host *h, fetch_fn fetch, const void *args,
                                int64_t timeout_ms, size_t first, int wipe, char **ret,
                                size_t *ret_len)
{
    size_t size = first;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *buf = core_malloc(size + 1);
        size_t need = 0;
        if (!buf)
            return MGO_ENOMEM;
        int32_t rc = fetch(h, args, timeout_ms, buf, size, &need);
        if (rc == MGO_OK && need <= size) {
            buf[need] = '\0';
            *ret = buf;
            *ret_len = need;
            return MGO_OK;
        }
        if (wipe)
            memset(buf, 0, size);
        core_free(buf);
        if (rc != MGO_ERANGE && rc != MGO_OK)
            return rc;
        if (need <= size || need > (size_t)64 << 20)
            return MGO_EAGAIN; /* a protocol violation or an absurd size */
        size = need;
    }
    return MGO_EAGAIN; /* the value changed between the two calls */
}

struct resolve_args {
    const char *address;
};

static int32_t do_resolve(const mgo_host *h, const void *args, int64_t timeout_ms, char *buf,
                          size_t size, size_t *ret_len)
{
    const struct resolve_args *a = args;
    return h->resolve(h->user, a->address, strlen(a->address), timeout_ms, buf, size, ret_len);
}

int32_t core_host_resolve(const mgo_plugin *p, const char *address, int64_t timeout_ms, char **ret)
{
    size_t len;
    if (!p->host.resolve) {
        *ret = core_strdup(address);
        return *ret ? MGO_OK : MGO_ENOMEM;
    }
    struct resolve_args a = {address};
    return fetch_with_retry(&p->host, do_resolve, &a, timeout_ms, 4096, 0, ret, &len);
}

struct secret_args {
    const char *ns, *name, *key;
};

static int32_t do_secret(const mgo_host *h, const void *args, int64_t timeout_ms, char *buf,
                         size_t size, size_t *ret_len)
{
    const struct secret_args *a = args;
    return h->secret(h->user, a->ns, a->name, a->key, timeout_ms, buf, size, ret_len);
}

int32_t core_host_secret(const mgo_plugin *p, const char *ns, const char *name, const char *key,
                         int64_t timeout_ms, char **ret, size_t *ret_len)
{
    if (!p->host.secret)
        return MGO_ENOTFOUND;
    struct secret_args a = {ns, name, key};
    return fetch_with_retry(&p->host, do_secret, &a, timeout_ms, 65536, 1, ret, ret_len);
}

void core_secret_free(char *secret, size_t len)
{
    if (!secret)
        return;
    memset(secret, 0, len);
    core_free(secret);
}
