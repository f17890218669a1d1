/* Loading libmgo.so.1 at run time, as every host does. */
#ifndef MGO_LOCAL_LOADER_H
#define MGO_LOCAL_LOADER_H

#include "mgo/mgo.h"

typedef int32_t (*loader_hook_fn)(mgo_plugin *, const char *, size_t, char **, size_t *);

struct loader_lib {
    void *handle;
    uint32_t (*abi_version)(void);
    const char *(*strerror)(int32_t);
    int32_t (*error_class)(int32_t);
    void (*free)(void *);
    int32_t (*open)(const mgo_host *, mgo_plugin **);
    void (*close)(mgo_plugin *);
    loader_hook_fn validate;
    loader_hook_fn reconcile;
    loader_hook_fn drain;
    loader_hook_fn scale;
    loader_hook_fn observe;
    loader_hook_fn converge;
    loader_hook_fn topology;
    char path[4096]; /* where it was found */
};

/*
 * Find and load the library: $MGO_LIBRARY when set, else libmgo.so.1 next to the executable,
 * in ../lib and ../lib/<multiarch> beside it, in the configured install directory, and finally
 * through the dynamic loader's own search. Checks that every symbol exists and that the ABI
 * version is MGO_ABI_VERSION. Returns 0, or -1 with a message in err.
 */
int loader_load(struct loader_lib *lib, char *err, size_t err_size);
void loader_unload(struct loader_lib *lib);

/* Call `hook` with the request (its reference is taken) and parse the result: the result
 * (json_decref), or NULL when there is none; *rc gets the status. */
#include <jansson.h>
json_t *loader_call_json(const struct loader_lib *lib, mgo_plugin *p, loader_hook_fn hook,
                         json_t *req, int32_t *rc);

#endif
