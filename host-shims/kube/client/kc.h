/*
 * kc: a thin Kubernetes API client on libcurl and jansson, for mgo-kube. Module prefix kc_.
 *
 * No generated types: objects are jansson values (json_t), as the API server sends them.
 * Protocol facts this follows: shared/facts/kubernetes-controller.md (§1 HTTP protocol, §1.9
 * in-cluster configuration, §1.10 kubeconfig, §5 failure modes).
 *
 * Threads. A client (struct kc_client) holds one libcurl easy handle, reused for every request
 * so that the TCP/TLS connection is kept alive between requests; it is used by one thread at a
 * time, and a watch occupies it until the watch returns (use another client for writes while
 * watching). Clients share nothing: two clients in one process do not interfere. libcurl needs
 * its global initialisation (kc_global_init) once before any thread is started; a
 * single-threaded program may skip it (curl_easy_init does it then). The configuration, status,
 * path and backoff functions use no global state and may run on any thread.
 *
 * Return values. Functions returning int answer 0 on success, or a negative errno-style code:
 *   -EINVAL     bad arguments (the message says which)
 *   -ENOMEM     an allocation failed
 *   -EAGAIN     the server could not be reached, the connection broke, or the time given ran out
 *               (retry-class: nothing says the request was not applied)
 *   -EPROTO     TLS setup or verification failed, or the server's answer was unreadable
 *   -EREMOTEIO  the server answered with a failure: kc_last_status() has the decoded Status
 *               (reason, code, message, causes, retry-after)
 *   -EBUSY      the client is already in a call (a watch callback used its own client)
 * Outputs (ret_ parameters) are written only on success. After any call on a client,
 * kc_last_error() describes the failure in one line ("" after a success), naming the method
 * and path, e.g. "PUT /apis/test.mgo.dev/v1/namespaces/ns/widgets/w1/status: 409 Conflict:
 * Operation cannot be fulfilled on widgets.test.mgo.dev \"w1\": the object has been modified".
 *
 * Ownership. json_t values returned through ret_ parameters are new references owned by the
 * caller (json_decref). Strings and buffers in structures filled by kc_ functions are owned by
 * the structure and released by its _fini function; _fini functions accept a zeroed or
 * already-finished structure. Inputs are borrowed for the duration of the call.
 */
#ifndef MGO_KUBE_KC_H
#define MGO_KUBE_KC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The field manager of server-side apply when the caller names none. */
#define KC_FIELD_MANAGER "mgo"
/* The default directory of in-cluster credentials (token, ca.crt, namespace). */
#define KC_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* Page size of kc_list when the caller gives none (client-go's pager uses the same). */
#define KC_DEFAULT_PAGE_SIZE 500
/* Timeout of a request when neither the call nor the client sets one. */
#define KC_DEFAULT_TIMEOUT_MS 30000

/* ---- configuration --------------------------------------------------------------------------- */

/*
 * Where and how to reach an API server. Every pointer is owned by the structure (kc_config_fini)
 * and may be NULL when not set. Files named by a kubeconfig (certificate-authority,
 * client-certificate, client-key) are read when the configuration is loaded, so the structure
 * holds PEM bytes; only the token file is kept as a path, because tokens rotate.
 */
struct kc_config {
    char *server;      /* "https://host:port" (or http://), without a trailing '/'; never NULL */
    char *namespace;   /* the context's namespace, or the pod's; "default" when none is set */
    char *context;     /* the kubeconfig context used; NULL for in-cluster */
    char *token;       /* a static bearer token */
    char *token_file;  /* a bearer token file, re-read whenever it changes; wins over token */
    unsigned char *ca; /* PEM of the CAs to trust (only these); NULL: the system's bundle */
    size_t ca_len;
    unsigned char *client_cert; /* PEM client certificate; set together with client_key */
    size_t client_cert_len;
    unsigned char *client_key;
    size_t client_key_len;
    char *proxy_url; /* the cluster's proxy-url; NULL: libcurl's proxy environment variables */
    bool insecure_skip_tls_verify;
    bool disable_compression; /* do not ask for gzip */
};

void kc_config_fini(struct kc_config *cfg);

/*
 * Parse one kubeconfig document (YAML or JSON) and select a context: `context` when not NULL,
 * else the document's current-context. Relative file names in it are taken relative to `dir`
 * (NULL: the current directory). Recognised (client-go's field names): clusters[].cluster
 * {server, certificate-authority-data, certificate-authority, insecure-skip-tls-verify,
 * proxy-url, disable-compression}, users[].user {token, tokenFile, client-certificate-data,
 * client-certificate, client-key-data, client-key}, contexts[].context {cluster, user,
 * namespace}, current-context. A *-data field wins over the file of the same item (as in
 * client-go). A user with exec, auth-provider, username/password or impersonation, and a
 * cluster with tls-server-name, are refused (-EINVAL, "not supported"): silently ignoring them
 * would talk to the server as someone else. A token file is read once here (it must exist and
 * not be empty) and again by the client whenever it changes. On failure returns -EINVAL (a
 * malformed document, a missing or inconsistent entry, an unreadable file: -EINVAL too, with
 * the file named) or -ENOMEM and writes a one-line message into err (err_len bytes, may be
 * 0). *out is written only on success.
 */
int kc_config_from_kubeconfig(const char *text, size_t len, const char *dir, const char *context,
                              struct kc_config *out, char *err, size_t err_len);

/*
 * The same from files: `paths` is one file name or a ':'-separated list, as in $KUBECONFIG.
 * With several files, names are looked up file by file and the first file that defines a
 * cluster, user or context of that name wins, as does the first current-context (client-go's
 * merge rule); files that do not exist are skipped, but at least one must exist. Relative
 * names inside a file are relative to that file's directory.
 */
int kc_config_load_kubeconfig(const char *paths, const char *context, struct kc_config *out,
                              char *err, size_t err_len);

/*
 * In-cluster configuration: server https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
 * (an IPv6 address in brackets), CA `dir`/ca.crt, token file `dir`/token (must exist, not
 * empty; re-read by the client when it changes), namespace $POD_NAMESPACE, else `dir`/namespace,
 * else "default". `dir` NULL means KC_SERVICE_ACCOUNT_DIR (tests pass their own). -EINVAL when
 * the variables are unset or a file is unreadable.
 */
int kc_config_in_cluster(const char *dir, struct kc_config *out, char *err, size_t err_len);

/*
 * controller-runtime's order: `kubeconfig` when not NULL, else $KUBECONFIG when set and not
 * empty, else in-cluster when $KUBERNETES_SERVICE_HOST is set, else $HOME/.kube/config.
 * `context` applies to the kubeconfig cases.
 */
int kc_config_load(const char *kubeconfig, const char *context, struct kc_config *out, char *err,
                   size_t err_len);

/* ---- failures: the Status body --------------------------------------------------------------- */

/* StatusReason values (apimachinery pkg/apis/meta/v1/types.go) and their usual HTTP codes. */
enum kc_reason {
    KC_REASON_NONE = 0,                 /* no failure */
    KC_REASON_UNKNOWN,                  /* none given and none implied by the code */
    KC_REASON_UNAUTHORIZED,             /* 401 */
    KC_REASON_FORBIDDEN,                /* 403 */
    KC_REASON_NOT_FOUND,                /* 404 */
    KC_REASON_ALREADY_EXISTS,           /* 409 */
    KC_REASON_CONFLICT,                 /* 409 */
    KC_REASON_GONE,                     /* 410 */
    KC_REASON_EXPIRED,                  /* 410 */
    KC_REASON_INVALID,                  /* 422 */
    KC_REASON_TOO_MANY_REQUESTS,        /* 429 */
    KC_REASON_TIMEOUT,                  /* 504 */
    KC_REASON_SERVER_TIMEOUT,           /* 500 */
    KC_REASON_INTERNAL_ERROR,           /* 500 */
    KC_REASON_SERVICE_UNAVAILABLE,      /* 503 */
    KC_REASON_BAD_REQUEST,              /* 400 */
    KC_REASON_METHOD_NOT_ALLOWED,       /* 405 */
    KC_REASON_NOT_ACCEPTABLE,           /* 406 */
    KC_REASON_REQUEST_ENTITY_TOO_LARGE, /* 413 */
    KC_REASON_UNSUPPORTED_MEDIA_TYPE    /* 415 */
};

struct kc_cause {
    char *type; /* the cause's "reason" member on the wire (Go's StatusCause.Type), e.g.
                 * "FieldValueInvalid", "ResourceVersionTooLarge"; "" when absent */
    char *message;
    char *field;
};

/* A decoded failure. Strings are never NULL once decoded ("" when absent). */
struct kc_status {
    int http_code; /* of the HTTP answer (200 for an ERROR event inside a watch); 0: none */
    int code;      /* Status.code when it is a positive integer, else http_code */
    enum kc_reason reason;
    char *reason_text; /* Status.reason exactly as sent */
    char *message;
    char *details_name; /* details.name */
    char *details_kind; /* details.kind */
    struct kc_cause *causes;
    size_t n_causes;
    /* details.retryAfterSeconds, else the Retry-After header; 0: none */
    int64_t retry_after_seconds;
};

void kc_status_fini(struct kc_status *st);

/*
 * Decode a failure answer. `body` (may be NULL/0) is the answer's body; when it is a Status
 * object its fields are used, otherwise only http_code, and the message says the body was not a
 * Status. The reason is the Status's reason when it is one of enum kc_reason; otherwise (absent,
 * empty or unknown) it follows from the code, as client-go's NewGenericServerResponse does: 409
 * is AlreadyExists for a POST (`method`, may be NULL) and Conflict otherwise, 410 Gone, other 5xx
 * InternalError, unlisted codes Unknown. `retry_after` is the Retry-After header's value (may be
 * NULL; only delay-seconds are understood, not HTTP dates). -ENOMEM only, memory running out
 * while the body is parsed included (never reported as a body that is not a Status).
 */
int kc_status_decode(int http_code, const char *method, const char *body, size_t len,
                     const char *retry_after, struct kc_status *out);
/* The same from a parsed object (an ERROR event's object). */
int kc_status_from_json(int http_code, const char *method, const json_t *obj,
                        const char *retry_after, struct kc_status *out);

/* "Conflict", "AlreadyExists", ... ("" for NONE, "Unknown" for UNKNOWN). */
const char *kc_reason_name(enum kc_reason reason);
/* The reason of a StatusReason string; KC_REASON_UNKNOWN for NULL, "" and unknown strings. */
enum kc_reason kc_reason_parse(const char *text);
/* True for a 410: reason Expired or Gone, or code 410. The caller relists. */
bool kc_status_is_expired(const struct kc_status *st);

/* ---- paths ----------------------------------------------------------------------------------- */

/* A resource type. group "" or NULL is the core group (/api/v1); others are under /apis. */
struct kc_resource {
    const char *group;
    const char *version;
    const char *plural;
    bool namespaced;
};

/*
 * The path of a collection or an object: /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUBRESOURCE]] or
 * /apis/GROUP/VERSION/.... `ns` NULL on a namespaced resource means all namespaces (a
 * collection only: a name then is -EINVAL); a namespace on a cluster-scoped resource is -EINVAL.
 * Namespace, name and subresource are percent-escaped; a name (or namespace) that is empty,
 * "." or "..", or contains '/' or '%', is -EINVAL (the server would route it elsewhere, as
 * client-go's IsValidPathSegmentName says). *ret: a new string (free()).
 */
int kc_path(const struct kc_resource *r, const char *ns, const char *name, const char *subresource,
            char **ret);

/*
 * Append "?key=value" (or "&key=value" when *path has a query already) to the string *path
 * (allocated with malloc; replaced by a new one on success, left alone on failure), both
 * percent-escaped. A NULL value appends nothing and succeeds.
 */
int kc_query_add(char **path, const char *key, const char *value);

/* Percent-escape every byte but the unreserved characters A-Z a-z 0-9 - . _ ~ (RFC 3986).
 * *ret: a new string (free()). */
int kc_escape(const char *s, char **ret);

/* ---- backoff --------------------------------------------------------------------------------- */

/*
 * Exponential backoff with full jitter, capped: for attempt n (0 for the first retry) the
 * ceiling is min(cap_ms, base_ms * 2^n) and the delay is floor(u * (ceiling + 1)) where u =
 * (random >> 11) / 2^53 is in [0, 1): uniform over 0..ceiling. When the failure asked for a delay
 * (retry_after_s > 0 and code 429 or >= 500) the delay is at least retry_after_s * 1000, even
 * above cap_ms (the server's word wins). base_ms <= 0 gives 0; cap_ms < base_ms is taken as
 * base_ms. Pure: `random` is the caller's (kc_random_u64(), or a fixed value in tests).
 */
struct kc_backoff {
    int64_t base_ms;
    int64_t cap_ms;
};

int64_t kc_backoff_delay_ms(const struct kc_backoff *b, unsigned attempt, int code,
                            int64_t retry_after_s, uint64_t random);
/*
 * The delay before restarting a watch or list after `attempt` + 1 failures in a row: with the
 * same ceiling, uniform over ceiling/2 .. ceiling ("equal jitter": restarts are spread, yet never
 * back to back). Pure, like kc_backoff_delay_ms.
 */
int64_t kc_backoff_restart_delay_ms(const struct kc_backoff *b, unsigned attempt, uint64_t random);
/*
 * Decode standard base64 (RFC 4648 §4, with '=' padding), as a Secret's data or a kubeconfig's
 * *-data field holds it; CR, LF, space and tab are skipped (Go's decoder skips CR and LF).
 * -EINVAL for any other byte outside the alphabet, bad padding or a length that is not a
 * multiple of 4; -ENOMEM. *ret (malloc'ed, NUL-terminated beyond *ret_len). Pure.
 */
int kc_base64_decode(const char *in, size_t len, unsigned char **ret, size_t *ret_len);

/* 64 random bits from the operating system (getrandom); falls back to the clock if it fails. */
uint64_t kc_random_u64(void);

/* ---- the client ------------------------------------------------------------------------------ */

struct kc_client;

/* curl_global_init(CURL_GLOBAL_DEFAULT) / curl_global_cleanup(), for hosts that start threads
 * (call before the first thread, and after the last client is freed). -ENOMEM on failure. */
int kc_global_init(void);
void kc_global_cleanup(void);

/*
 * A client for `cfg` (copied; the caller keeps its own). user_agent NULL means
 * "mgo-kube/<version>". Connects lazily. -EINVAL when the server is not http(s)://, the
 * client certificate and key are not both set, or the user agent or cfg->token holds anything
 * but printable ASCII (CR or LF would inject headers); -ENOMEM. Free with kc_client_free (NULL
 * is accepted).
 */
int kc_client_new(const struct kc_config *cfg, const char *user_agent, struct kc_client **ret);
void kc_client_free(struct kc_client *c);

/* The timeout of calls that pass timeout_ms 0 (initially KC_DEFAULT_TIMEOUT_MS); ms > 0. */
void kc_client_set_timeout(struct kc_client *c, int64_t ms);

/*
 * Requests of this client are abandoned once *cancel (may be NULL: none) is non-zero: no
 * request but a watch is begun after that, and one in flight is dropped within about a second;
 * either fails with -ECANCELED. A write dropped in flight may still have been carried out by the
 * server. A watch uses w->cancel when set, this one otherwise (also for its restart delay);
 * either ends it, within about a second even if it was begun after, with KC_WATCH_STOPPED. Set it
 * before the client is used; *cancel may change from any thread.
 */
void kc_client_set_cancel(struct kc_client *c, const atomic_int *cancel);

/* The last call's failure in one line, "" after a success. Valid until the next call. */
const char *kc_last_error(const struct kc_client *c);
/* The last call's HTTP answer: after -EREMOTEIO the decoded Status; after a success only
 * http_code and code are set, to the success code (201 created, 200 otherwise), with reason NONE
 * and NULL strings; after a transport failure everything is zero. Valid until the next call. */
const struct kc_status *kc_last_status(const struct kc_client *c);
/* Shorthand for kc_last_status(c)->reason. */
enum kc_reason kc_last_reason(const struct kc_client *c);

/* Counters of a client since it was made, for tests and metrics. */
struct kc_stats {
    uint64_t requests;     /* HTTP requests sent (a retry after a token change counts twice) */
    uint64_t connections;  /* new connections opened (libcurl's CURLINFO_NUM_CONNECTS) */
    uint64_t gzip_answers; /* answers that came with Content-Encoding: gzip */
    uint64_t token_reads;  /* times the token file was read */
};
void kc_client_stats(const struct kc_client *c, struct kc_stats *out);

/*
 * One request. `path` starts with '/' and includes the query (build it with kc_path and
 * kc_query_add). `body` (may be NULL) is sent with `content_type` (NULL: application/json;
 * otherwise not empty and printable ASCII only, else -EINVAL before anything is sent: a CR or
 * LF would end the header and inject others).
 * Sends Accept: application/json, the User-Agent, Accept-Encoding: gzip (unless the
 * configuration disables it), the bearer token or the client certificate. When the token comes
 * from a file, the file is checked before each request and re-read when it changed; a 401 makes
 * it re-read at once, and the request is sent once more if the token changed. Blocks up to
 * timeout_ms (0: the client's timeout). A 2xx answer's body, when not empty, is parsed into
 * *ret (may be NULL to discard it; -EPROTO when it is not JSON, -ENOMEM when memory ran out
 * while parsing it); any other answer is -EREMOTEIO. No retries: use
 * kc_backoff_delay_ms with kc_last_status()->retry_after_seconds.
 */
int kc_request(struct kc_client *c, const char *method, const char *path, const char *content_type,
               const char *body, size_t body_len, int64_t timeout_ms, json_t **ret);

/* ---- reads and writes ------------------------------------------------------------------------ */

/* GET one object. A missing object is -EREMOTEIO with reason NOT_FOUND. */
int kc_get(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
           int64_t timeout_ms, json_t **ret);

/* POST `obj` to the collection (metadata.name or generateName in obj). For a namespaced kind
 * the namespace is `ns`, else obj's metadata.namespace; with neither, -EINVAL before anything is
 * sent (the all-namespaces collection takes no POST). An existing object is -EREMOTEIO with
 * reason ALREADY_EXISTS. */
int kc_create(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
              int64_t timeout_ms, json_t **ret);

/* PUT `obj` (metadata.name required; its metadata.resourceVersion, when set, must still be
 * current, else -EREMOTEIO with reason CONFLICT). */
int kc_replace(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
               int64_t timeout_ms, json_t **ret);

/*
 * PUT `obj` to its /status subresource. obj needs metadata.name and a non-empty
 * metadata.resourceVersion (-EINVAL otherwise): a stale one is -EREMOTEIO with reason CONFLICT.
 * Only .status changes (the server ignores the rest).
 */
int kc_update_status(struct kc_client *c, const struct kc_resource *r, const char *ns,
                     const json_t *obj, int64_t timeout_ms, json_t **ret);

enum kc_patch_type {
    KC_PATCH_MERGE,     /* application/merge-patch+json */
    KC_PATCH_JSON,      /* application/json-patch+json */
    KC_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in kinds only) */
    KC_PATCH_APPLY      /* application/apply-patch+yaml: prefer kc_apply */
};

/* PATCH an object (or its subresource, NULL for none) with `patch`. */
int kc_patch(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
             const char *subresource, enum kc_patch_type type, const json_t *patch,
             int64_t timeout_ms, json_t **ret);

struct kc_apply_options {
    const char *field_manager; /* NULL: KC_FIELD_MANAGER; at most 128 printable characters */
    bool force;                /* take over fields other managers own (controllers should) */
    const char *subresource;   /* NULL, or "status" (which never creates the object) */
};

/*
 * Server-side apply: PATCH application/apply-patch+yaml with obj as JSON (JSON is YAML),
 * ?fieldManager=...&force=true|. obj needs apiVersion, kind and metadata.name (-EINVAL
 * otherwise). Creates a missing object (kc_last_status()->http_code 201). opts may be NULL. An
 * apply that changes nothing leaves resourceVersion as it was. Without force, fields owned by
 * another manager with other values give -EREMOTEIO with reason CONFLICT.
 */
int kc_apply(struct kc_client *c, const struct kc_resource *r, const char *ns, const json_t *obj,
             const struct kc_apply_options *opts, int64_t timeout_ms, json_t **ret);

struct kc_delete_options {
    const char *uid;                /* precondition: delete only this object, or NULL */
    const char *resource_version;   /* precondition, or NULL */
    const char *propagation_policy; /* "Foreground", "Background", "Orphan", or NULL */
    bool set_grace_period;
    int64_t grace_period_seconds; /* used when set_grace_period */
};

/*
 * DELETE with a DeleteOptions body. Its strings (uid, resource_version, propagation_policy) must
 * be UTF-8: -EINVAL naming the field otherwise, before anything is sent. A failed precondition
 * is -EREMOTEIO with reason CONFLICT; a missing object NOT_FOUND (callers usually treat it as
 * done). *ret (may be NULL): the answer,
 * a Status of success or the object itself when finalizers keep it for now. opts may be NULL.
 */
int kc_delete(struct kc_client *c, const struct kc_resource *r, const char *ns, const char *name,
              const struct kc_delete_options *opts, int64_t timeout_ms, json_t **ret);

/* ---- list ------------------------------------------------------------------------------------ */

struct kc_list_options {
    const char *label_selector; /* NULL: none */
    const char *field_selector;
    const char *resource_version; /* NULL or "": the most recent (a consistent read); "0": any */
    int64_t limit;                /* page size; 0: KC_DEFAULT_PAGE_SIZE */
    int64_t timeout_ms;           /* per page; 0: the client's */
    /* Called after each page arrives (page 1, 2, ...), for progress or tests; non-zero stops
     * the list with -ECANCELED. May be NULL. Must not use the same client. */
    int (*page_fn)(void *ctx, unsigned page, const json_t *page_obj);
    void *page_ctx;
};

struct kc_list {
    json_t *items;          /* array of every page's items, in order */
    char *resource_version; /* the list's metadata.resourceVersion: where a watch starts */
    unsigned pages;         /* pages received, those of abandoned passes included */
    unsigned restarts;      /* times an expired continue token made the list start over */
};

void kc_list_fini(struct kc_list *l);

/*
 * A paginated LIST: limit + continue until the server sends no continue token. A page may hold
 * fewer items than the limit, or none. When a continue request answers 410 (the token expired,
 * e.g. after a compaction) the list starts over from page 1 with the caller's options, up to 3
 * times, then gives up with that -EREMOTEIO. A 410 on page 1 is returned as it is (the caller's
 * resource_version is too old: list again with none). Continue requests carry no
 * resourceVersion (the token holds it). opts may be NULL.
 */
int kc_list(struct kc_client *c, const struct kc_resource *r, const char *ns,
            const struct kc_list_options *opts, struct kc_list *out);

/* ---- watch ----------------------------------------------------------------------------------- */

/*
 * The contract (the informer's side of it is the caller's):
 *
 * 1. A watch starts only from a resourceVersion that a list returned: kc_watch_list lists the
 *    watch's collection with the watch's selectors and makes the list's resourceVersion the
 *    resume point; the caller replaces its cache with the list's items. kc_watch refuses to run
 *    before that (-EINVAL, nothing sent). A watch from "" or "0" is not offered: the server would
 *    send the objects that exist now as ADDED events, and an object deleted while nobody watched
 *    would never be reported (no DELETED event for it), so a cache fed that way keeps it forever.
 *    (kube-apiserver 1.34+ also turns such a watch, with bookmarks, into a streaming list, which
 *    fails on etcd older than 3.4.31: apimachinery internalversion SetListOptionsDefaults.)
 * 2. Every delivered event or bookmark moves the resume point. After the server ends a watch
 *    (KC_WATCH_ENDED) or a connection fails (-EAGAIN and the like), calling kc_watch again carries
 *    on from there: the server either replays every event since it, DELETED ones included, or
 *    answers 410. However long the gap, nothing is missed as long as the resume point is used.
 * 3. A 410 (an ERROR event with code 410 / reason Expired or Gone in an HTTP 200 stream, or an
 *    HTTP 410 answer to the watch request itself) returns KC_WATCH_EXPIRED and sets must_relist:
 *    the events since the resume point are gone, so the caller relists with kc_watch_list and
 *    diffs its cache against the items (an object missing from the list was deleted meanwhile).
 *    kc_watch refuses to run until that relist succeeded. The same holds after a restart of the
 *    process: a new struct kc_watch starts with must_relist set.
 * 4. Restarts never spin: a connection that failed, or that the server closed within a second
 *    without any event (client-go's "very short watch"), a 410 and a failed list count in
 *    `failures` and set `backing_off`; the next kc_watch or kc_watch_list first waits a jittered
 *    delay growing with `failures` (kc_backoff_restart_delay_ms with `backoff`, attempt
 *    failures - 1), once: after a 410 the relist waits, the watch that follows it does not. A
 *    connection that delivers an event, or that lasts a second or more and ends cleanly, resets
 *    both.
 *
 * So the whole loop of an informer is:
 *
 *     kc_watch_init(&w); w.resource = ...; w.fn = ...; w.cancel = &stop;
 *     while (!atomic_load(&stop)) {
 *         if (w.must_relist) {
 *             rc = kc_watch_list(c, &w, NULL, &list);
 *             if (rc == -EINVAL) break;     (a bug of the caller: retrying cannot help)
 *             if (rc < 0) continue;         (logged; the next try waits)
 *             replace the cache by list.items, reporting vanished objects as deleted
 *             kc_list_fini(&list);
 *         }
 *         rc = kc_watch(c, &w);             (events go to w.fn)
 *         if (rc == KC_WATCH_STOPPED || rc == -EINVAL) break;
 *         if (rc < 0) log kc_last_error(c); (the next kc_watch waits)
 *     }
 */

enum kc_event_type { KC_EVENT_ADDED = 1, KC_EVENT_MODIFIED, KC_EVENT_DELETED, KC_EVENT_BOOKMARK };

/* Return values of kc_watch_fn. */
#define KC_WATCH_CONTINUE 0
#define KC_WATCH_STOP     1

/*
 * Called for each event, on the thread of kc_watch, while the connection is open. `object` is
 * borrowed for the call (json_incref to keep it): the object's state after the event; for a
 * DELETED its last state; for a BOOKMARK an object of the watched kind whose only meaningful field
 * is metadata.resourceVersion (not a change). Return KC_WATCH_STOP to end the watch. It must not
 * use the watching client (another client is fine).
 */
typedef int (*kc_watch_fn)(void *ctx, enum kc_event_type type, json_t *object);

/* The backoff between restarts when struct kc_watch's is zero (client-go's reflector: 0.8 s
 * growing to 30 s). */
#define KC_WATCH_BACKOFF_BASE_MS 800
#define KC_WATCH_BACKOFF_CAP_MS  30000
/* A watch the server closes sooner than this without any event is a failure. */
#define KC_WATCH_SHORT_MS 1000

/*
 * A watch's state across connections and relists. The caller sets the fields marked "in" after
 * kc_watch_init (they are borrowed and must stay valid while the structure is used); the other
 * fields belong to kc_watch and kc_watch_list (read them, do not write them).
 */
struct kc_watch {
    const struct kc_resource *resource; /* in, required */
    const char *namespace;      /* in: NULL for every namespace (or a cluster-scoped kind) */
    const char *label_selector; /* in, may be NULL */
    const char *field_selector; /* in, may be NULL */
    int timeout_seconds; /* in: the server ends the watch after this; 0: random in [300, 600) */
    struct kc_backoff backoff; /* in: between restarts (see above); zero: the defaults above */
    kc_watch_fn fn;            /* in, required */
    void *ctx;                 /* in */
    const atomic_int *cancel;  /* in, may be NULL: when it becomes non-zero (from any thread)
                                * the watch, or the wait before it, ends within about a second */

    char *resource_version; /* the resume point: the last list's resourceVersion, then that of
                             * the last delivered event or bookmark; NULL before the first list */
    bool must_relist;       /* set by kc_watch_init and by KC_WATCH_EXPIRED; cleared by a
                             * successful kc_watch_list */
    unsigned failures;      /* failed or very short connections, 410s and failed lists, in a
                             * row (until a healthy connection) */
    bool backing_off;       /* the next connection or list waits first */
    int64_t last_delay_ms;  /* the wait before the last connection or list (0: none) */
    uint64_t events;        /* ADDED, MODIFIED, DELETED delivered (all connections) */
    uint64_t bookmarks;     /* BOOKMARKs delivered */
    uint64_t skipped;       /* lines that were not a readable event, skipped */
    uint64_t relists;       /* successful kc_watch_list calls */
};

/* Zero w and set must_relist. */
void kc_watch_init(struct kc_watch *w);
void kc_watch_fini(struct kc_watch *w);

/*
 * List the watch's collection (w->resource, w->namespace, w->label_selector, w->field_selector)
 * with kc_list and make the list's resourceVersion the resume point: clears must_relist, counts
 * a relist. `opts` (may be NULL) gives the page size, timeout, page callback and
 * resource_version ("0" lets the first list come from the server's cache; NULL or "" is a
 * consistent read, the one to use after a 410); its selectors must be NULL (-EINVAL): the
 * watch's own are used, so that the list and the watch see the same objects. Waits first when
 * w->backing_off (see the contract; -ECANCELED when *w->cancel is set meanwhile). *out: the
 * list (kc_list_fini), written only on success. A failure counts in w->failures. A list without
 * a resourceVersion is -EPROTO.
 */
int kc_watch_list(struct kc_client *c, struct kc_watch *w, const struct kc_list_options *opts,
                  struct kc_list *out);

/* Outcomes of kc_watch besides the negative errors. */
#define KC_WATCH_ENDED   0 /* the server closed the watch (its timeout): watch again */
#define KC_WATCH_STOPPED 1 /* the callback returned KC_WATCH_STOP, or *cancel was set */
#define KC_WATCH_EXPIRED                                                                           \
    2 /* 410: the resume point is too old (an ERROR event with code 410 /                          \
       * reason Expired or Gone, or an HTTP 410): must_relist is set, relist with kc_watch_list;   \
       * kc_last_status() has the Status */

/*
 * GET ...?watch=true&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=T from the resume
 * point, and stream the newline-delimited events to w->fn until the server ends the watch, the
 * callback stops it, *cancel is set, or a failure. -EINVAL without sending anything when the
 * structure lacks a resource or callback, or has no resume point from a list (must_relist: call
 * kc_watch_list). When w->backing_off it first waits (see the contract); a cancel during the
 * wait returns KC_WATCH_STOPPED. Then blocks for up to timeout_seconds plus 30 s (a connection
 * that stays silent longer is -EAGAIN). A watch the server closes within KC_WATCH_SHORT_MS
 * without any event is -EAGAIN ("closed ... without any event"). ERROR events other than 410 are
 * -EREMOTEIO with the event's Status in kc_last_status(). Lines that are not an event are
 * counted in w->skipped and skipped; a single line over 64 MiB is -EPROTO; memory running out
 * while reading or parsing an event is -ENOMEM.
 */
int kc_watch(struct kc_client *c, struct kc_watch *w);

#endif
