/*
 * mgo: the Multigres operator as an embeddable library (ABI v1).
 *
 * This header is the whole C ABI of libmgo.so.1. docs/abi.md states the versioning policy, the
 * ownership table and the threading rules; this file states the contract of every function.
 *
 * Shape of the interface:
 *   - a host fills an mgo_host callback table and opens a handle with mgo_open();
 *   - it calls hooks (mgo_validate, mgo_reconcile, mgo_topology, mgo_drain, mgo_observe,
 *     mgo_scale) with a JSON (UTF-8) request and its length; each hook returns an int32_t status
 *     and a library-owned UTF-8 JSON result that the host releases with mgo_free();
 *   - it closes the handle with mgo_close().
 *
 * Conventions that hold for every function below:
 *   - Status codes are int32_t: MGO_OK (0) or a negative MGO_E* code. mgo_error_class() maps a
 *     code to its recovery class; mgo_strerror() gives a static message. Unknown codes (from a
 *     newer library) must be treated as MGO_CLASS_FATAL.
 *   - Strings are UTF-8. Input documents are passed with an explicit length and need not be
 *     NUL-terminated. Output documents are NUL-terminated and their length (without the NUL) is
 *     also returned.
 *   - Ownership: the library never frees host memory; the host frees library buffers only with
 *     mgo_free().
 *   - Threading: a handle is used by one thread at a time (calls on one handle must be
 *     serialised by the host); different handles are independent and may be used concurrently
 *     from different threads. Host callbacks are invoked on the calling thread during a call on
 *     the handle, with one exception: mgo_free() calls the allocator's free, from whatever thread
 *     calls it. A callback must not call back into the same handle (no re-entry); calling another
 *     handle from a callback is allowed.
 *   - Blocking: mgo_validate, mgo_abi_version, mgo_strerror, mgo_error_class and mgo_free never
 *     block. Hooks that talk to external services (topology, PostgreSQL) may block up to the
 *     request's "deadline_ms" (milliseconds from the start of the call, measured on a monotonic
 *     clock; default 20000) plus the time host callbacks take; none blocks without bound.
 */
#ifndef MGO_MGO_H
#define MGO_MGO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MGO_BUILDING_LIBRARY) && defined(__GNUC__)
#define MGO_API __attribute__((visibility("default")))
#else
#define MGO_API
#endif

/* The ABI version this header describes. It equals the SONAME major (libmgo.so.1). */
#define MGO_ABI_VERSION 1

/* ---- status codes -------------------------------------------------------------------------- */

/* Success. */
#define MGO_OK 0
/* Invalid input: a manifest or request failed validation. Class MGO_CLASS_INVALID_INPUT. The
 * result document lists every error with its field path and reason; fix the input. */
#define MGO_EINVAL -1
/* The operation is not supported by this library version (for example a hook that a later
 * release implements, or a request option value this version does not know). Class
 * MGO_CLASS_UNSUPPORTED. Do not retry with the same library. */
#define MGO_EUNSUPPORTED -2
/* A dependency is temporarily unavailable or a deadline passed (topology, PostgreSQL). Class
 * MGO_CLASS_RETRY: call again later; the result document names what was unavailable. */
#define MGO_EAGAIN -3
/* Memory could not be allocated. Class MGO_CLASS_FATAL for this call; the handle stays usable. */
#define MGO_ENOMEM -4
/* A bad argument: a NULL pointer where one is required, or a host table that is too small.
 * Class MGO_CLASS_INVALID_INPUT (a programming error in the host). */
#define MGO_EARG -5
/* The host asked for an ABI version this library does not provide. Class MGO_CLASS_FATAL. */
#define MGO_EABI -6
/* A requested object (for example a secret) does not exist. Class MGO_CLASS_INVALID_INPUT.
 * Host callbacks return it too. */
#define MGO_ENOTFOUND -7
/* A host-supplied buffer was too small; the required size was reported. Used between the
 * library and host callbacks (see mgo_host.resolve and mgo_host.secret). Class
 * MGO_CLASS_INVALID_INPUT if it ever reaches a host. */
#define MGO_ERANGE -8
/* An internal error: a bug in the library. Class MGO_CLASS_FATAL. */
#define MGO_EINTERNAL -9

/* ---- recovery classes (values of mgo_error_class) ------------------------------------------ */

#define MGO_CLASS_NONE          0 /* MGO_OK: nothing to recover from */
#define MGO_CLASS_RETRY         1 /* transient: retry the same call later */
#define MGO_CLASS_INVALID_INPUT 2 /* the input is wrong: fix it; retrying unchanged fails again */
#define MGO_CLASS_UNSUPPORTED   3 /* this library cannot do it: upgrade or do without */
#define MGO_CLASS_FATAL         4 /* give up this call; report it */

/* ---- log levels ---------------------------------------------------------------------------- */

#define MGO_LOG_ERROR 0
#define MGO_LOG_WARN  1
#define MGO_LOG_INFO  2
#define MGO_LOG_DEBUG 3

/* ---- host interface ------------------------------------------------------------------------ */

/*
 * The callback table a host passes to mgo_open(). Fields are appended in later ABI minor
 * revisions and never reordered; the library reads a field only when struct_size covers it, so a
 * host built against an older header keeps working. Every callback may be NULL (the default is
 * stated beside it) and takes `user` as its first argument. The library copies the table in
 * mgo_open(); the host may free or reuse its copy afterwards, but `user` must stay valid until
 * mgo_close().
 */
typedef struct mgo_host {
    /* sizeof(mgo_host) as the host was compiled; must cover at least struct_size, abi_version
     * and user (offsetof(mgo_host, user) + sizeof(void *)), else mgo_open fails with MGO_EARG. */
    uint32_t struct_size;
    /* MGO_ABI_VERSION as the host was compiled; mgo_open() fails with MGO_EABI on a mismatch. */
    uint32_t abi_version;
    /* Passed unchanged as the first argument of every callback. */
    void *user;

    /* Log sink. `msg` is a finished UTF-8 line of `len` bytes (also NUL-terminated), valid only
     * during the call. `level` is an MGO_LOG_* value; unknown values are to be treated as INFO.
     * NULL: messages are discarded. */
    void (*log)(void *user, int32_t level, const char *msg, size_t len);

    /* Wall-clock time in milliseconds since the Unix epoch. Tests inject a fixed clock here.
     * NULL: the system clock. */
    int64_t (*now_ms)(void *user);

    /* Map a logical address (for example "c-global-topo.ns.svc:2379" or an http(s) URL) to one
     * reachable from the host, answering within timeout_ms if it can.
     * Buffer protocol (also for secret): the library passes a buffer `buf` of buf_size bytes
     * (4 KiB for resolve, 64 KiB for secret). On success write the answer there (not
     * NUL-terminated), store its length in *ret_len and return MGO_OK. If it does not fit, write
     * nothing to buf, store the needed length in *ret_len and return MGO_ERANGE; the library then
     * calls once more with a buffer of exactly that size, and gives up with MGO_EAGAIN if that
     * call answers MGO_ERANGE again (the value changed in between). The library wipes secret
     * buffers after use.
     * Return MGO_ENOTFOUND when the address cannot be mapped, MGO_EAGAIN when the answer is
     * temporarily unknown. NULL: addresses are used as written. */
    int32_t (*resolve)(void *user, const char *address, size_t address_len, int64_t timeout_ms,
                       char *buf, size_t buf_size, size_t *ret_len);

    /* Fetch the bytes of key `key` of secret `name` in namespace `ns` (each NUL-terminated
     * UTF-8), answering within timeout_ms if it can. Buffer protocol as for resolve. Return
     * MGO_ENOTFOUND when the secret or the key does not exist. NULL: every lookup answers
     * MGO_ENOTFOUND. */
    int32_t (*secret)(void *user, const char *ns, const char *name, const char *key,
                      int64_t timeout_ms, char *buf, size_t buf_size, size_t *ret_len);

    /* Optional allocator, used for every allocation the library makes itself (results included)
     * during calls on this handle. Either all three are set or none (MGO_EARG otherwise).
     * alloc(user, 0) is never called. NULL: the C library's allocator. libyaml's parser buffers
     * and compiled regular expressions always come from the C library (docs/abi.md). `free`
     * and `user` must stay valid until the last result buffer is released with mgo_free(),
     * which may happen after mgo_close() and on any thread. */
    void *(*alloc)(void *user, size_t size);
    void *(*realloc)(void *user, void *ptr, size_t size);
    void (*free)(void *user, void *ptr);

    /* Most detailed MGO_LOG_* level passed to log; messages above it are not formatted at all.
     * 0 (the zero value) means MGO_LOG_ERROR. */
    int32_t log_level;

    /* Must be 0. Makes the end of the structure explicit (no tail padding), so that the next
     * appended field starts at the old sizeof(mgo_host) on every platform. */
    uint32_t reserved0;

    /* Fields appended in later ABI 1 revisions go here, each starting at or after the previous
     * sizeof(mgo_host). */
} mgo_host;

/* An open library instance. Opaque; create with mgo_open(), destroy with mgo_close(). */
typedef struct mgo_plugin mgo_plugin;

/* ---- library-level functions --------------------------------------------------------------- */

/* The ABI major version this library implements (MGO_ABI_VERSION it was built with). Hosts that
 * dlopen the library check it before calling anything else. Never blocks; thread-safe. */
MGO_API uint32_t mgo_abi_version(void);

/* A static, NUL-terminated English message for a status code; "unknown error" for codes this
 * library does not know. The string is owned by the library and valid for the process lifetime.
 * Never blocks; thread-safe. */
MGO_API const char *mgo_strerror(int32_t code);

/* The recovery class (MGO_CLASS_*) of a status code; MGO_CLASS_FATAL for unknown codes.
 * Never blocks; thread-safe. */
MGO_API int32_t mgo_error_class(int32_t code);

/* Release a buffer returned by the library (any ret_result of a hook). NULL is accepted and does
 * nothing. Works after the handle that produced the buffer was closed, provided that the host's
 * allocator (if it supplied one) still works. Never blocks; thread-safe for distinct buffers. */
MGO_API void mgo_free(void *ptr);

/* ---- handle lifecycle ---------------------------------------------------------------------- */

/*
 * Open a library instance. `host` may be NULL (every callback takes its default); otherwise its
 * struct_size and abi_version are checked (MGO_EARG when struct_size is too small or only some
 * allocator functions are set, MGO_EABI when abi_version differs). On success *ret_plugin
 * receives a new handle owned by the caller (release with mgo_close()); on failure it is not
 * written. Never blocks; may be called from any thread.
 */
MGO_API int32_t mgo_open(const mgo_host *host, mgo_plugin **ret_plugin);

/* Close a handle and release everything it owns. NULL is accepted. Buffers already returned to
 * the host stay valid until mgo_free(). No call on the handle may be in progress, and it must
 * not be called from one of the handle's own callbacks. Never blocks. */
MGO_API void mgo_close(mgo_plugin *plugin);

/* ---- hooks ----------------------------------------------------------------------------------- */

/*
 * Every hook has the same shape:
 *   plugin       an open handle;
 *   request      UTF-8 JSON of request_len bytes, owned by the caller, read only during the call;
 *   ret_result   receives a NUL-terminated UTF-8 JSON document owned by the caller, released
 *                with mgo_free(); ret_result_len receives its length without the NUL.
 * Both outputs are always written when they are non-NULL: with a document for MGO_OK, MGO_EINVAL,
 * MGO_EAGAIN and MGO_EUNSUPPORTED (each carries {"error": {"code", "class", "message"}} where
 * the call failed), and with NULL / 0 when not even that could be produced (MGO_ENOMEM, MGO_EARG).
 * The request and result schemas are in docs/abi.md; readers ignore fields they do not know.
 */

/*
 * Admission-style validation. The request carries manifests (YAML or JSON text, many documents)
 * and/or parsed objects, an optional "previous" cluster for update-only rules, and an optional
 * "namespace". Every MultigresCluster is resolved against the templates given with it and
 * checked against the schema limits, the cross-field rules and the admission rules; the result
 * lists each error with its document, kind, name, field path and reason. Returns MGO_OK when
 * every object is valid and MGO_EINVAL otherwise. Pure: no I/O, no callbacks but log and the
 * allocator; never blocks.
 */
MGO_API int32_t mgo_validate(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len);

/*
 * One level-triggered reconcile pass over one cluster. It validates the cluster exactly as
 * mgo_validate does and returns the fully resolved cluster model under "resolved". With a
 * "target" ("kubernetes" or "process") and the host's "observed" objects it also returns the
 * "actions" that move the world toward the spec (apply, delete with preconditions, annotate,
 * event, status), the "status" to publish, "requeue_after_ms" and, for the kubernetes target,
 * the "certificates" the host keeps in Secrets (docs/abi.md). A converged
 * cluster gets no action. Returns MGO_EINVAL for an invalid cluster, with the errors, a status
 * action and a warning event, and no object action. The only I/O is the topology registration the
 * request asks for (default on with a target), bounded by "topology.deadline_ms" (default 20000):
 * hosts should not call it on a thread that must never block.
 */
MGO_API int32_t mgo_reconcile(mgo_plugin *plugin, const char *request, size_t request_len,
                              char **ret_result, size_t *ret_result_len);

/*
 * Operations on a cluster's topology service (etcd), as Multigres reads and writes it; needs
 * libcurl.so.4 at run time (MGO_EUNSUPPORTED without it). The request names an "op":
 *   "register"  the cluster's Cell and Database records, created or updated (idempotent; an
 *               unchanged record is not written), then, when spec.topologyPruning is enabled,
 *               records of cells and databases no longer in the spec deleted. Takes manifests
 *               like mgo_validate (and "cluster" when several); etcd endpoints come from the
 *               spec, each passed through mgo_host.resolve, unless "etcd" gives them.
 *   "dump"      every record under the global root and the cells' roots, decoded.
 *   "list_poolers", "publish_pooler", "mark_pooler_shutdown", "delete_pooler": pooler records.
 * "etcd": {"endpoints": [...], "root": "..."} names the etcd (for "register": other endpoints of
 * the same topology, whose root stays the spec's unless "root" is given); "deadline_ms" bounds the
 * call (default 20000). Document schemas: docs/abi.md. Blocks up to the deadline; returns
 * MGO_EAGAIN (naming the endpoint) when etcd is unreachable or slow, MGO_EINVAL for invalid input.
 */
MGO_API int32_t mgo_topology(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len);

/*
 * Advance the drain of one instance by one safe step (postgres driver; docs/abi.md "mgo_drain").
 * The request gives the instance, its current annotations, the shard's nodes and the durability
 * policy; the result the state reached and the actions the host performs in order: "annotate"
 * (persist annotations), and for a primary's drain (a planned switchover) "stop" and "start" of
 * an instance. MGO_EAGAIN when the step must wait (the durability policy would break, no single
 * primary answers, a reload not yet visible, no switchover candidate): call again later. Blocks
 * up to the request's "deadline_ms" (default 10000) while it talks to PostgreSQL.
 */
MGO_API int32_t mgo_drain(mgo_plugin *plugin, const char *request, size_t request_len,
                          char **ret_result, size_t *ret_result_len);

/*
 * Check the live state of shards against the lifecycle's invariants (postgres driver;
 * docs/abi.md "mgo_observe"): exactly one primary per shard, every standby named in the
 * primary's synchronous_standby_names connected and streaming, the durability policy
 * satisfiable, no drain past its deadline; with each standby's role, state and replication lag.
 * The request gives each shard's nodes (name, conninfo, drain state); the result lists the
 * violations with their evidence ("ok" when there is none). Read-only. Blocks up to the
 * request's "deadline_ms" (default 10000) while it talks to PostgreSQL.
 */
MGO_API int32_t mgo_observe(mgo_plugin *plugin, const char *request, size_t request_len,
                            char **ret_result, size_t *ret_result_len);

/*
 * Plan a pool's change of size (docs/abi.md "mgo_scale"). The request carries the manifests
 * like mgo_validate, the "pool" (and optionally its "cell"), the new "replicas" per cell and,
 * optionally, the host's "observed" objects as for mgo_reconcile. The result gives the cluster
 * object with the new size written where it belongs ("spec", the field's "path"), the instances
 * that will be created, and the ones that will be drained and deleted, in the order the
 * reconcile pass takes them. Validates the changed cluster: MGO_EINVAL with the errors when it
 * or the request is invalid. Pure: no I/O; never blocks. mgo_reconcile applies the same rules
 * whenever the size in the spec changes; this hook only says what they will do.
 */
MGO_API int32_t mgo_scale(mgo_plugin *plugin, const char *request, size_t request_len,
                          char **ret_result, size_t *ret_result_len);

/*
 * Bring one shard's live replication settings to what the spec wants (postgres driver;
 * docs/abi.md "mgo_converge"): the reload-class PostgreSQL settings on every instance
 * (ALTER SYSTEM, reload, then confirmed in pg_settings; never a restart), the primary's
 * synchronous_standby_names (a standby joins once it streams, caught up; one that no longer
 * exists leaves), and, when the request names the topology, each instance's pooler record with
 * its live role (records of instances that no longer exist are deleted). Writes nothing when
 * everything is in place. The result says what changed and whether the shard has converged.
 * MGO_EAGAIN when no single primary answers or a change is not yet visible. Blocks up to the
 * request's "deadline_ms" (default 10000) while it talks to PostgreSQL and etcd.
 */
MGO_API int32_t mgo_converge(mgo_plugin *plugin, const char *request, size_t request_len,
                             char **ret_result, size_t *ret_result_len);

#ifdef __cplusplus
}
#endif

#endif /* MGO_MGO_H */
