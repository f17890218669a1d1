/* dlopen-based loading of libmgo.so.1. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"

#ifndef MGO_DEFAULT_LIBDIR
#define MGO_DEFAULT_LIBDIR "/usr/local/lib"
#endif

static int try_open(struct loader_lib *lib, const char *path)
{
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle)
        return -1;
    (void)snprintf(lib->path, sizeof(lib->path), "%.4095s", path);
    return 0;
}

static int exe_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1) /* error, or possibly cut short */
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    return 0;
}

static int find_and_open(struct loader_lib *lib, char *err, size_t err_size)
{
    const char *env = getenv("MGO_LIBRARY");
    char dir[PATH_MAX], path[PATH_MAX + 64];

    if (env && *env) {
        if (try_open(lib, env) == 0)
            return 0;
        (void)snprintf(err, err_size, "cannot load MGO_LIBRARY=%s: %s", env, dlerror());
        return -1;
    }
    if (exe_dir(dir, sizeof(dir)) == 0) {
        static const char *const rel[] = {"", "/../lib", "/../lib/x86_64-linux-gnu", NULL};
        for (const char *const *r = rel; *r; r++) {
            (void)snprintf(path, sizeof(path), "%s%s/libmgo.so.1", dir, *r);
            if (access(path, R_OK) == 0 && try_open(lib, path) == 0)
                return 0;
        }
    }
    (void)snprintf(path, sizeof(path), "%s/libmgo.so.1", MGO_DEFAULT_LIBDIR);
    if (access(path, R_OK) == 0 && try_open(lib, path) == 0)
        return 0;
    if (try_open(lib, "libmgo.so.1") == 0)
        return 0;
    (void)snprintf(err, err_size,
                   "cannot find libmgo.so.1 (%s); install it or set MGO_LIBRARY to its path",
                   dlerror());
    return -1;
}

/* dlsym returns an object pointer; POSIX guarantees it converts to a function pointer. */
#define BIND(field, name)                                                                          \
    do {                                                                                           \
        void *sym_ = dlsym(lib->handle, name);                                                     \
        if (!sym_) {                                                                               \
            (void)snprintf(err, err_size, "%s: missing symbol %s", lib->path, name);               \
            goto fail;                                                                             \
        }                                                                                          \
        memcpy(&lib->field, &sym_, sizeof(sym_));                                                  \
    } while (0)

int loader_load(struct loader_lib *lib, char *err, size_t err_size)
{
    memset(lib, 0, sizeof(*lib));
    if (find_and_open(lib, err, err_size))
        return -1;
    BIND(abi_version, "mgo_abi_version");
    BIND(strerror, "mgo_strerror");
    BIND(error_class, "mgo_error_class");
    BIND(free, "mgo_free");
    BIND(open, "mgo_open");
    BIND(close, "mgo_close");
    BIND(validate, "mgo_validate");
    BIND(reconcile, "mgo_reconcile");
    BIND(drain, "mgo_drain");
    BIND(scale, "mgo_scale");
    BIND(observe, "mgo_observe");
    BIND(converge, "mgo_converge");
    BIND(topology, "mgo_topology");
    if (lib->abi_version() != MGO_ABI_VERSION) {
        (void)snprintf(err, err_size, "%s: ABI version %u, this program needs %d", lib->path,
                       lib->abi_version(), MGO_ABI_VERSION);
        goto fail;
    }
    return 0;
fail:
    dlclose(lib->handle);
    lib->handle = NULL;
    return -1;
}

void loader_unload(struct loader_lib *lib)
{
    if (lib->handle)
        dlclose(lib->handle);
    lib->handle = NULL;
}

json_t *loader_call_json(const struct loader_lib *lib, mgo_plugin *p, loader_hook_fn hook,
                         json_t *req, int32_t *rc)
{
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, *res = NULL;
    size_t len = 0;
    json_decref(req);
    if (!body) {
        *rc = MGO_ENOMEM;
        return NULL;
    }
    *rc = hook(p, body, strlen(body), &res, &len);
    free(body);
    json_t *r = res ? json_loadb(res, len, 0, NULL) : NULL;
    lib->free(res);
    return r;
}
