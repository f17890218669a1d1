/* libcurl loaded at run time (see curl_api.h). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/dl.h"
#include "topo/curl_api.h"

#define CURL_SONAME "libcurl.so.4"

/*
 * Sanitizer runtimes abort on dlopen(RTLD_DEEPBIND) (their interceptors must see every call),
 * so those builds open libcurl without it; nothing else changes.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CURL_API_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define CURL_API_SANITIZED 1
#endif
#endif

#ifdef CURL_API_SANITIZED
#define CURL_API_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL)
#else
#define CURL_API_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
#endif

/* Written once by load_curl() under pthread_once, read-only afterwards. */
static struct {
    struct curl_api api;
    int rc;
    char error[512];
} loaded;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static const struct core_dl_symbol curl_symbols[] = {
    {"curl_easy_init", offsetof(struct curl_api, easy_init)},
    {"curl_easy_cleanup", offsetof(struct curl_api, easy_cleanup)},
    {"curl_easy_setopt", offsetof(struct curl_api, easy_setopt)},
    {"curl_easy_perform", offsetof(struct curl_api, easy_perform)},
    {"curl_easy_getinfo", offsetof(struct curl_api, easy_getinfo)},
    {"curl_easy_strerror", offsetof(struct curl_api, easy_strerror)},
    {"curl_easy_reset", offsetof(struct curl_api, easy_reset)},
    {"curl_slist_append", offsetof(struct curl_api, slist_append)},
    {"curl_slist_free_all", offsetof(struct curl_api, slist_free_all)},
};

static void load_failed(const char *what, const char *detail)
{
    (void)snprintf(loaded.error, sizeof(loaded.error), "cannot load %s: %s: %.300s", CURL_SONAME,
                   what, detail ? detail : "unknown error");
    loaded.rc = -EAGAIN;
}

static void load_curl(void)
{
    void *handle = dlopen(CURL_SONAME, CURL_API_DLOPEN_FLAGS);
    CURLcode (*global_init)(long flags);
    curl_version_info_data *(*version_info)(CURLversion age);
    const char *missing = NULL;

    if (!handle) {
        load_failed("dlopen", dlerror());
        return;
    }
    /* left loaded on failure, like on success: libcurl is never unloaded */
    if (core_dl_fill(handle, curl_symbols, sizeof(curl_symbols) / sizeof(curl_symbols[0]),
                     &loaded.api, &missing)) {
        load_failed(missing, dlerror());
        return;
    }
    if (core_dl_one(handle, "curl_version_info", &version_info)) {
        load_failed("curl_version_info", dlerror());
        return;
    }
    if (core_dl_one(handle, "curl_global_init", &global_init)) {
        load_failed("curl_global_init", dlerror());
        return;
    }

    CURLcode rc = global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        load_failed("curl_global_init", loaded.api.easy_strerror(rc));
        return;
    }
    const curl_version_info_data *info = version_info(CURLVERSION_NOW);
    loaded.api.version_num = info ? info->version_num : 0;
    loaded.rc = 0;
}

int curl_api_get(const struct curl_api **ret)
{
    (void)pthread_once(&load_once, load_curl); /* cannot fail with a valid once object */
    if (loaded.rc < 0)
        return loaded.rc;
    *ret = &loaded.api;
    return 0;
}

const char *curl_api_error(void)
{
    (void)pthread_once(&load_once, load_curl);
    return loaded.error;
}
