/* Shared pieces of the hooks (module prefix api_). */
#ifndef MGO_API_H
#define MGO_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* The parts of a request shared by the hooks that take manifests. */
struct request {
    json_t *root;
    json_t *docs;        /* manifests' documents followed by objects */
    json_t *sources;     /* parallel to docs: the source each came from (or null) */
    json_t *load_errors; /* report entries for manifests that could not be read */
    json_t *previous;    /* an object, or NULL */
    const char *ns;
};

typedef int32_t (*hook_fn)(mgo_plugin *, const char *, size_t, char **, size_t *);

/* Argument checks, the allocator scope, outputs always written; then fn. */
int32_t api_run_hook(hook_fn fn, mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len);

/* Parse the request's common fields; MGO_EINVAL with msg for bad input. allow_empty: a request
 * without manifests or objects is accepted. */
int32_t api_request_parse(const char *request, size_t len, struct request *r, char *msg,
                          size_t msg_size);
void api_request_fini(struct request *r);

/* Validate and resolve the request's documents (spec_evaluate). */
int32_t api_evaluate(const mgo_plugin *p, struct request *r, json_t **ret_report,
                     json_t **ret_clusters);

/* The resolved entry of the cluster a request is about (NULL: msg says why, or the cluster is
 * invalid and the report says why). */
const json_t *api_pick_cluster(const json_t *clusters, const json_t *report, const char *name,
                               char *msg, size_t msg_size);

/* An optional request field: NULL when absent or null (review-notes rule 7). */
const json_t *api_opt(const json_t *o, const char *key);

/* A PostgreSQL instance name as mgo_drain and mgo_observe take it (cluster_name): 1..63 bytes of
 * printable ASCII, no space, not "*" (a wildcard in synchronous_standby_names). 1 when valid. */
int api_valid_node_name(const char *name);

/* One of the four drain states (drain.multigres.com/state). 1 when it is. */
int api_known_drain_state(const char *d);

/* The host's wall clock (mgo_host.now_ms), else the system's, in milliseconds since the epoch. */
int64_t api_now_ms(const mgo_plugin *p);

/* The longest "deadline_ms" a request may give: ten minutes. */
#define API_MAX_DEADLINE_MS 600000

/* The request's `key` (a deadline in milliseconds): absent or null gives dflt; otherwise an
 * integer 1..API_MAX_DEADLINE_MS. 0 and *ret; -EINVAL (msg: "request: ...") for anything else. */
int api_deadline_ms(const json_t *req, const char *key, int64_t dflt, int64_t *ret, char *msg,
                    size_t msg_size);

/* A result document holding only {"error"}; returns code. message may be cut user text. */
int32_t api_fail(int32_t code, char *message, char **ret_result, size_t *ret_len);

/* Serialise doc (consumed), adding {"error"} when code is not MGO_OK; returns code or
 * MGO_ENOMEM. */
int32_t api_finish(json_t *doc, int32_t code, char **ret_result, size_t *ret_len);

/* The topology hook's body (plugin/api_topo.c). */
int32_t api_topology(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len);

/* Register the Cell and Database records of `chosen` (an entry of api_evaluate's clusters) in
 * its topology; req may hold "etcd" (override endpoints) and "keep_cells". Blocks until
 * `deadline` (topo_deadline_after). *ret: {"root", "cells", "databases", "pruned"}. */
int32_t api_topo_register(const mgo_plugin *p, const json_t *req, const json_t *chosen,
                          int64_t deadline, json_t **ret, char *msg, size_t msg_size);

struct etcd_client;

/* A client of the etcd at `endpoints` (an array of addresses, each resolved through the host,
 * "http://" added when there is no scheme; no TLS). MGO_OK and *ret (etcd_client_free), else a
 * status with msg. */
int32_t api_topo_client(const mgo_plugin *p, const json_t *endpoints, int64_t deadline,
                        struct etcd_client **ret, char *msg, size_t msg_size);

/* The converge hook's body (plugin/api_converge.c). */
int32_t api_converge(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                     size_t *ret_len);

/* The drain hook's body (plugin/api_drain.c). */
int32_t api_drain(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                  size_t *ret_len);

/* The observer's body (plugin/api_observe.c). */
int32_t api_observe(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                    size_t *ret_len);

/* The reconcile hook's body (plugin/api_reconcile.c). */
int32_t api_reconcile(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                      size_t *ret_len);

/* Type-check every entry of observed's "objects" (docs/abi.md, "observed object"): MGO_OK, or
 * MGO_EINVAL with msg "request: observed.objects[i]: ..." for the first that is malformed. */
int32_t api_check_observed(const json_t *observed, char *msg, size_t size);

/* The scale plan's body (plugin/api_scale.c). */
int32_t api_scale(mgo_plugin *p, const char *request, size_t len, char **ret_result,
                  size_t *ret_len);

#endif
