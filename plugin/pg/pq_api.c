/* libpq loaded at run time (see pq_api.h). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/dl.h"
#include "pg/pq_api.h"

#define PQ_SONAME "libpq.so.5"

/* Sanitizer runtimes abort on dlopen(RTLD_DEEPBIND), as in topo/curl_api.c. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PQ_API_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define PQ_API_SANITIZED 1
#endif
#endif

#ifdef PQ_API_SANITIZED
#define PQ_API_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL)
#else
#define PQ_API_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
#endif

/* Written once by load_pq() under pthread_once, read-only afterwards. */
static struct {
    struct pq_api api;
    int rc;
    char error[512];
} loaded;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static const struct core_dl_symbol pq_symbols[] = {
    {"PQconnectStartParams", offsetof(struct pq_api, connect_start_params)},
    {"PQconnectPoll", offsetof(struct pq_api, connect_poll)},
    {"PQstatus", offsetof(struct pq_api, status)},
    {"PQsocket", offsetof(struct pq_api, socket)},
    {"PQerrorMessage", offsetof(struct pq_api, error_message)},
    {"PQbackendPID", offsetof(struct pq_api, backend_pid)},
    {"PQsetnonblocking", offsetof(struct pq_api, set_nonblocking)},
    {"PQsetNoticeReceiver", offsetof(struct pq_api, set_notice_receiver)},
    {"PQfinish", offsetof(struct pq_api, finish)},
    {"PQsendQuery", offsetof(struct pq_api, send_query)},
    {"PQflush", offsetof(struct pq_api, flush)},
    {"PQconsumeInput", offsetof(struct pq_api, consume_input)},
    {"PQisBusy", offsetof(struct pq_api, is_busy)},
    {"PQgetResult", offsetof(struct pq_api, get_result)},
    {"PQresultStatus", offsetof(struct pq_api, result_status)},
    {"PQresultErrorMessage", offsetof(struct pq_api, result_error_message)},
    {"PQresultErrorField", offsetof(struct pq_api, result_error_field)},
    {"PQntuples", offsetof(struct pq_api, ntuples)},
    {"PQnfields", offsetof(struct pq_api, nfields)},
    {"PQgetvalue", offsetof(struct pq_api, getvalue)},
    {"PQgetisnull", offsetof(struct pq_api, getisnull)},
    {"PQclear", offsetof(struct pq_api, clear)},
    {"PQconninfoParse", offsetof(struct pq_api, conninfo_parse)},
    {"PQconninfoFree", offsetof(struct pq_api, conninfo_free)},
    {"PQfreemem", offsetof(struct pq_api, freemem)},
};

static void load_failed(const char *what, const char *detail)
{
    (void)snprintf(loaded.error, sizeof(loaded.error), "cannot load %s: %s: %.300s", PQ_SONAME,
                   what, detail ? detail : "unknown error");
    loaded.rc = -ELIBACC;
}

static void load_pq(void)
{
    void *handle = dlopen(PQ_SONAME, PQ_API_DLOPEN_FLAGS);
    int (*lib_version)(void);
    const char *missing = NULL;

    if (!handle) {
        load_failed("dlopen", dlerror());
        return;
    }
    /* left loaded on failure, like on success: libpq is never unloaded */
    if (core_dl_fill(handle, pq_symbols, sizeof(pq_symbols) / sizeof(pq_symbols[0]), &loaded.api,
                     &missing)) {
        load_failed(missing, dlerror());
        return;
    }
    if (core_dl_one(handle, "PQlibVersion", &lib_version)) {
        load_failed("PQlibVersion", dlerror());
        return;
    }
    loaded.api.version = lib_version();
    loaded.rc = 0;
}

int pq_api_get(const struct pq_api **ret)
{
    (void)pthread_once(&load_once, load_pq); /* cannot fail with a valid once object */
    if (loaded.rc < 0)
        return loaded.rc;
    *ret = &loaded.api;
    return 0;
}

const char *pq_api_error(void)
{
    (void)pthread_once(&load_once, load_pq);
    return loaded.error;
}
