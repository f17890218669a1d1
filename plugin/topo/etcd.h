/*
 * A small etcd v3 client over the JSON gateway (POST /v3/...), built on libcurl and jansson.
 * Module prefix etcd_.
 *
 * One client holds one reusable connection (a libcurl easy handle with keep-alive) and an
 * ordered list of endpoints ("http://host:port" or "https://host:port"): a call goes to the
 * endpoint that answered last, and on a connection failure tries the others in order. Every
 * call takes a timeout in milliseconds for the whole call (all endpoints together) and never
 * blocks longer. Keys and values are binary (base64 on the wire); int64 fields that etcd sends
 * as JSON strings, and fields it omits when zero/false/empty, are handled.
 *
 * libcurl is loaded at run time (dlopen of libcurl.so.4 with its own symbol scope), so that
 * libmgo has no link-time dependency a host could interpose on. A client is used by one thread
 * at a time. All memory comes from the core allocator (core_malloc/core_free).
 *
 * Return values: 0 on success; -EAGAIN when no endpoint could be reached or the timeout passed
 * (a retry-class failure); -EPROTO when etcd answered with an error or an unreadable body;
 * -EINVAL for bad arguments; -ENOMEM. After a failure etcd_last_error() describes it, naming
 * the endpoint and the operation, e.g. "etcd http://127.0.0.1:2379: put /multigres/global/cells/a/Cell:
 * connection refused".
 */
#ifndef MGO_TOPO_ETCD_H
#define MGO_TOPO_ETCD_H

#include <stddef.h>
#include <stdint.h>

struct etcd_client;

/* TLS material, PEM text (not file names); any may be NULL/0. */
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
 * Create a client for `n` endpoints (copied). tls may be NULL. Connects lazily. Returns 0 and
 * *ret, -EINVAL (no endpoint, or one not starting with http:// or https://), -EAGAIN when
 * libcurl cannot be loaded (the message says so), or -ENOMEM.
 */
int etcd_client_new(const char *const *endpoints, size_t n, const struct etcd_tls *tls,
                    struct etcd_client **ret);
void etcd_client_free(struct etcd_client *c);

/* The description of the last failure on this client ("" when none). Valid until the next
 * call on the client. */
const char *etcd_last_error(const struct etcd_client *c);

/* Get one key: out->n is 0 when it does not exist. */
int etcd_get(struct etcd_client *c, const char *key, size_t key_len, int64_t timeout_ms,
             struct etcd_kvs *out);

/* All keys that start with `prefix` (etcd range with range_end = prefix + 1), in key order.
 * keys_only leaves values empty. */
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
 * transaction. *ret_revision (may be NULL) gets the revision after a successful put.
 */
int etcd_put_if(struct etcd_client *c, const char *key, size_t key_len, const void *value,
                size_t value_len, int64_t expected_mod_revision, int64_t lease,
                int64_t timeout_ms, int *ret_swapped, struct etcd_kvs *current,
                int64_t *ret_revision);

/* Delete `key` only if its mod_revision is expected_mod_revision; *ret_deleted 1 or 0. */
int etcd_delete_if(struct etcd_client *c, const char *key, size_t key_len,
                   int64_t expected_mod_revision, int64_t timeout_ms, int *ret_deleted);

/* Leases: grant with a TTL in seconds (*ret_id); keep alive once (*ret_ttl: remaining seconds,
 * 0 when the lease has expired); revoke (a missing lease is not an error). */
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
 * names compact_revision). The stream uses its own connection. *ret_next_revision (may be
 * NULL) receives the revision to resume from: one past the last event delivered.
 */
int etcd_watch_prefix(struct etcd_client *c, const char *prefix, size_t prefix_len,
                      int64_t start_revision, int64_t timeout_ms,
                      int (*on_event)(void *user, const struct etcd_event *ev), void *user,
                      int64_t *ret_next_revision);

/* Parse one JSON response body of the range/txn/watch kinds into key-values (exposed for the
 * fuzzer and unit tests). Returns 0, -EPROTO or -ENOMEM. */
int etcd_parse_range_response(const char *body, size_t len, struct etcd_kvs *out);

#endif
