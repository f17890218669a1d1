/* The library handle, its allocator scope, logging and result documents (module prefix core_). */
#ifndef MGO_CORE_CORE_H
#define MGO_CORE_CORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "mgo/mgo.h"

struct schema_regex_cache;

struct mgo_plugin {
    mgo_host host; /* the host's table, copied; fields it did not cover are zero */
    struct schema_regex_cache *regex_cache;
};

/*
 * Every exported entry point runs inside a scope: core_enter() makes `plugin` the allocator and
 * logger of the calling thread until core_leave(), and starts a fresh allocation-failure record.
 * The library (and its JSON library) allocate through the handle's host allocator while the
 * scope is active, and through the C library outside any scope. Scopes nest: a host callback
 * may call another handle, and core_leave() restores the outer scope's handle and failure
 * record from `saved`.
 */
struct core_scope {
    const mgo_plugin *plugin;
    int allocation_failed;
};
void core_enter(const mgo_plugin *plugin, struct core_scope *saved);
void core_leave(const struct core_scope *saved);

/* Nonzero when an allocation failed since the current scope was entered. */
int core_allocation_failed(void);

void *core_malloc(size_t size);
void *core_calloc(size_t count, size_t size);
void *core_realloc(void *ptr, size_t size);
void core_free(void *ptr);
char *core_strndup(const char *s, size_t len);
char *core_strdup(const char *s);

/* Replace every byte of an incomplete or malformed UTF-8 sequence in `s` with '?', in place.
 * Text cut to fit a buffer can end (or, around "%.Ns", break) in the middle of a character;
 * this keeps messages valid for JSON and for the log callback's UTF-8 promise. */
void core_utf8_sanitize(char *s);

/* The host's resolve callback (the address itself when the host has none): MGO_OK with a new
 * NUL-terminated string in *ret (core_free), or the host's error code. */
int32_t core_host_resolve(const mgo_plugin *p, const char *address, int64_t timeout_ms, char **ret);

/* The host's secret callback: MGO_OK with the bytes in *ret (NUL-terminated for convenience;
 * release with core_secret_free, which wipes them), MGO_ENOTFOUND, or the host's error. */
int32_t core_host_secret(const mgo_plugin *p, const char *ns, const char *name, const char *key,
                         int64_t timeout_ms, char **ret, size_t *ret_len);
void core_secret_free(char *secret, size_t len);

/* Install core_malloc/core_free as the JSON library's allocator (once per process). */
void core_alloc_init(void);

/* Log a printf-style message through the host callback of the current scope, if its level is
 * enabled. Messages longer than 2 KiB are truncated and end with "...". */
void core_log(int32_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Serialise `doc` into a buffer that mgo_free() releases (it remembers the allocator that made
 * it). On success *ret_buf and *ret_len receive it and 0 is returned; on failure -ENOMEM and
 * nothing is written. `doc` stays owned by the caller.
 */
int core_result_dump(const json_t *doc, char **ret_buf, size_t *ret_len);

/* Add {"error": {"code", "class", "message"}} to `doc` (message NULL: mgo_strerror(code)). */
void core_result_set_error(json_t *doc, int32_t code, const char *message);

#endif
