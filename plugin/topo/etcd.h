/*
 * A small etcd v3 client over the JSON gateway (POST /v3/...), built on libcurl and jansson.
 * Module prefix etcd_.
 *
 * One client holds one reusable connection (a libcurl easy handle with keep-alive) and an
 * ordered list of endpoints ("http://host:port" or "https://host:port"): a call goes to the
 * endpoint that answered last, and on a transport failure (refused, unresolvable, timed out,
 * connection lost) tries the others in order; an HTTP error answer from etcd is final. A write
 * (put, put_if, delete_if, lease grant) that was already sent is not sent to another endpoint,
 * since it may have been applied: it fails with -EAGAIN and the outcome is unknown to the caller,
 * who reads the key again. Every call takes a timeout in milliseconds (> 0, else -EINVAL) for
 * the whole call (all endpoints together) and never blocks longer; when several endpoints are
 * left, connecting to one may use only its share of the time left (at least 200 ms). Proxy
 * settings of the environment are ignored. Keys and values are binary (base64 on the wire);
 * int64 fields that etcd sends as JSON strings, and fields it omits when zero/false/empty, are
 * handled.
 *
 * libcurl is loaded at run time (dlopen of libcurl.so.4 with its own symbol scope), so that
 * libmgo has no link-time dependency a host could interpose on. A client is used by one thread
 * at a time. Memory the client allocates comes from the core allocator (core_malloc/core_free);
 * libcurl's own buffers come from the C library.
 *
 * Return values: 0 on success; -EAGAIN when no endpoint could be reached or the timeout passed,
 * or etcd answered that it cannot serve now (no leader, leader changed, request timed out: gRPC
 * Unavailable or DeadlineExceeded) (a retry-class failure); -EPROTO when etcd answered with
 * another error or an unreadable body;
 * -EINVAL for bad arguments; -ENOMEM. After a failure etcd_last_error() describes it, naming
 * the endpoint and the operation, e.g. "etcd http://127.0.0.1:2379: put
 * /multigres/global/cells/a/Cell: connection refused" (one such part per endpoint tried, joined by
 * "; "; bytes of the key that are not printable ASCII appear as \xNN). Outputs are written only on
 * success unless a function says otherwise.
 */
#ifndef MGO_TOPO_ETCD_H
#define MGO_TOPO_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct etcd_client;

/* TLS material, PEM text (not file names); any may be NULL/0. The client copies it. With a CA,
 * only that CA is trusted (not the system bundle). Needs libcurl 7.77.0 or later. */
struct etcd_tls {
    const char *ca_pem;
    size_t ca_len;
    const char *cert_pem;
    size_t cert_len;
    const char *key_pem;
    size_t key_len;
};

/* One key-value as etcd reports it. key/value are allocated and NUL-terminated (the NUL is not
 * counted in the lengths) so text keys can be used as C strings. */
struct etcd_kv {
    char *key;
    size_t key_len;
    unsigned char *value;
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

/* A range result: the key-values in key order and the store revision of the answer. */
struct etcd_kvs {
    struct etcd_kv *items;
    size_t n;
    int64_t revision;
};

void etcd_kvs_fini(struct etcd_kvs *kvs);
void etcd_kv_fini(struct etcd_kv *kv);

/*
 * Create a client for `n` endpoints (copied; a trailing '/' is dropped). tls may be NULL.
 * Connects lazily. Returns 0 and *ret, -EINVAL (no endpoint, or one not starting with http://
 * or https://, or with a space or control character), -EAGAIN when libcurl cannot be loaded or
 * is too old for TLS (the message, logged through core_log at ERROR, says so), or -ENOMEM.
 * Free with etcd_client_free() (NULL is accepted).
 */
int etcd_client_new(const char *const *endpoints, size_t n, const struct etcd_tls *tls,
                    struct etcd_client **ret);
void etcd_client_free(struct etcd_client *c);

/* The description of the last call's failure on this client ("" when it succeeded, or before
 * any call). Valid until the next call on the client. */
const char *etcd_last_error(const struct etcd_client *c);

/* Get one key: out->n is 0 when it does not exist. The key must not be empty. *out is owned
 * by the caller (etcd_kvs_fini). */
int etcd_get(struct etcd_client *c, const char *key, size_t key_len, int64_t timeout_ms,
             struct etcd_kvs *out);

/* All keys that start with `prefix` (etcd range with range_end = the prefix with its last byte
 * below 0xff incremented and the rest dropped; no upper bound when all bytes are 0xff), in key
 * order. The empty prefix lists every key. keys_only leaves values empty. */
int etcd_get_prefix(struct etcd_client *c, const char *prefix, size_t prefix_len, int keys_only,
                    int64_t timeout_ms, struct etcd_kvs *out);

/* Put unconditionally; lease 0 for none. *ret_revision (may be NULL) gets the new revision. */
int etcd_put(struct etcd_client *c, const char *key, size_t key_len, const void *value,
             size_t value_len, int64_t lease, int64_t timeout_ms, int64_t *ret_revision);

/* Delete one key; *ret_deleted (may be NULL) gets how many keys were deleted (0 or 1). */
int etcd_delete(struct etcd_client *c, const char *key, size_t key_len, int64_t timeout_ms,
                int64_t *ret_deleted);

/*
 * Compare-and-swap in one transaction: put `value` at `key` only if the key's mod_revision is
 * `expected_mod_revision` (0 means: only if the key does not exist, i.e. create-if-absent).
 * *ret_swapped is 1 when the put happened, 0 when the comparison failed; on 0, `current` (may
 * be NULL) receives the key's current state (n = 0 if it does not exist) from the same
 * transaction; on 1 it is set empty (n = 0). Either way it is the caller's (etcd_kvs_fini).
 * *ret_revision (may be NULL) gets the revision after a successful put and is left alone on 0.
 */
int etcd_put_if(struct etcd_client *c, const char *key, size_t key_len, const void *value,
                size_t value_len, int64_t expected_mod_revision, int64_t lease, int64_t timeout_ms,
                int *ret_swapped, struct etcd_kvs *current, int64_t *ret_revision);

/* Delete `key` only if its mod_revision is expected_mod_revision; *ret_deleted 1 or 0 (0 also
 * for expected 0, which matches only an absent key). */
int etcd_delete_if(struct etcd_client *c, const char *key, size_t key_len,
                   int64_t expected_mod_revision, int64_t timeout_ms, int *ret_deleted);

/* Leases: grant with a TTL in seconds (*ret_id, never 0; etcd may raise a very short TTL to its
 * minimum); keep alive once (*ret_ttl: remaining seconds, 0 when the lease has expired or was
 * revoked); revoke (a missing lease is not an error). */
int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t timeout_ms, int64_t *ret_id);
int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t timeout_ms, int64_t *ret_ttl);
int etcd_lease_revoke(struct etcd_client *c, int64_t id, int64_t timeout_ms);

/* A watch event: PUT or DELETE of one key, with the key-value after (DELETE: key and
 * mod_revision only) and, when available, before. */
enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };
struct etcd_event {
    enum etcd_event_type type;
    const struct etcd_kv *kv;
    const struct etcd_kv *prev_kv; /* NULL when etcd sent none */
    int64_t revision;              /* header revision of the response that carried it */
};

/*
 * Watch keys with `prefix` (prefix_len 0 is not allowed) from `start_revision` (0: from now),
 * calling on_event for each event in order until on_event returns nonzero (stop, success), or
 * the timeout passes (returns -EAGAIN with *ret_next_revision set so the caller can resume),
 * or the watch is cancelled by etcd (for example a compacted start revision: -EPROTO, message
 * names compact_revision). The stream uses its own connection (a new one per call), made to
 * the endpoints in the usual order until one answers. Events carry prev_kv when etcd has it.
 * *ret_next_revision (may be NULL) receives, on 0 and on -EAGAIN, the revision to resume from:
 * one past the last event delivered; with no event delivered, start_revision, or for
 * start_revision 0 one past the revision etcd reported when the watch was created (0 if it
 * never was). A revision can hold several events (one transaction): stopping in the middle of
 * them and resuming skips the rest, so stop only at the last event of a revision if it matters.
 * The callback runs on the calling thread and must not call this client.
 */
int etcd_watch_prefix(struct etcd_client *c, const char *prefix, size_t prefix_len,
                      int64_t start_revision, int64_t timeout_ms,
                      int (*on_event)(void *user, const struct etcd_event *ev), void *user,
                      int64_t *ret_next_revision);

/* Parse one JSON response body of the range/txn/watch kinds into key-values (exposed for the
 * fuzzer and unit tests): the "kvs" of a range answer, the kvs of each "response_range" of a
 * txn answer, and the "kv" of each event of a watch answer (inside "result"), in that order,
 * with header.revision. Any value of the wrong type, invalid base64 or an int64 that is not
 * one gives -EPROTO; *out is written only on 0 (the caller's, etcd_kvs_fini). Returns 0,
 * -EINVAL (NULL arguments), -EPROTO or -ENOMEM. */
int etcd_parse_range_response(const char *body, size_t len, struct etcd_kvs *out);

#endif
