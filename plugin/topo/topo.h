/*
 * The Multigres topology in etcd: record codecs, key layout, and the operations reconcile and
 * drain use. Module prefix topo_.
 *
 * Key layout (Multigres go/common/topoclient): global <G>/cells/<cell>/Cell and
 * <G>/databases/<db>/Database; per cell, under the Cell record's root <C>:
 * <C>/poolers/multipooler-<cell>-<name>/Pooler, <C>/gateways/multigateway-<cell>-<name>/Gateway,
 * <C>/orchs/multiorch-<cell>-<name>/Orch. Values are binary protobuf (plugin/topo/proto/).
 *
 * Errors: 0; -EAGAIN when etcd is unreachable or the deadline passed (the message names the
 * endpoint); -EPROTO when a stored value does not decode (the message names the key) or etcd
 * refused a request; -EBUSY when a compare-and-swap kept losing races; -EINVAL; -ENOMEM. The
 * message goes to `err` (capacity err_size) when given.
 */
#ifndef MGO_TOPO_TOPO_H
#define MGO_TOPO_TOPO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "topo/etcd.h"

/* ---- records <-> JSON -------------------------------------------------------------------- */

/*
 * The JSON form of the records uses Multigres' field names (snake_case, as in the .proto) and
 * enum value names as strings, e.g.
 *   Cell     {"name", "server_addresses": [..], "root"}
 *   Database {"name", "backup_location": {"filesystem": {"path"}} | {"s3": {...}},
 *             "require_initial_repo_encryption", "authoritative_generation"},
 *             "cells": [..], "bootstrap_durability_policy": {"policy_name", "policy_version",
 *             "quorum_type": "QUORUM_TYPE_AT_LEAST_N", "required_count", "description"}}
 *   Multipooler {"id": {"component": "MULTIPOOLER", "cell", "name"}, "shard_key": {"database",
 *             "table_group", "shard"}, "type", "serving_status", "hostname", "port_map": {..},
 *             "pooler_dir", "pg_data_dir", "lifecycle_status": {"status", "reason",
 *             "updated": {"seconds", "nanos"}}, "routing_state": {"role", "rule":
 *             {"coordinator_term", "leader_subterm"}}}
 * Zero values are omitted, as protobuf's JSON mapping does; int64 values are JSON integers.
 */
enum topo_kind { TOPO_CELL, TOPO_DATABASE, TOPO_POOLER, TOPO_GATEWAY, TOPO_ORCH, TOPO_CLAIM };

/* Decode a stored value of `kind` into its JSON form (new reference). -EPROTO when the bytes
 * are not a valid record. */
int topo_decode(enum topo_kind kind, const void *data, size_t len, json_t **ret);

/* Encode a JSON record of `kind` (fields as above; unknown fields are an error) into a new
 * buffer (core_free). -EINVAL with a message naming the field when the JSON does not fit. */
int topo_encode(enum topo_kind kind, const json_t *record, uint8_t **ret, size_t *ret_len,
                char *err, size_t err_size);

/* The kind of record a key holds, from its last path component (Cell, Database, Pooler,
 * Gateway, Orch, ShardInitClaim); -1 for none. */
int topo_kind_of_key(const char *key);

/* ---- the desired global records of a cluster ------------------------------------------------ */

/*
 * The Cell and Database records a resolved cluster needs (resolve_cluster output), as the
 * reference operator writes them:
 *   Cell: a cell with an external local topology -> its endpoints and root; with a managed
 *   local etcd -> "<local topo service>.<ns>.svc:2379" and its root; otherwise the global
 *   topology's address and root.
 *   Database: every database with cells = all cluster cells, the backup location of its
 *   effective backup (filesystem path or S3), require_initial_repo_encryption when an
 *   encryption secret is set, and the bootstrap durability policy (policy_name, quorum type
 *   AT_LEAST_N or MULTI_CELL_AT_LEAST_N, required_count 2).
 * *ret_cells and *ret_databases receive objects name -> JSON record. *ret_global receives
 * {"addresses": [..], "root": ".."} for the global topology. -EINVAL for an unsupported
 * durability policy (message set).
 */
int topo_desired(const json_t *resolved, const char *ns, json_t **ret_cells, json_t **ret_databases,
                 json_t **ret_global, char *err, size_t err_size);

/* ---- operations --------------------------------------------------------------------------- */

/*
 * Create or update every record of `records` (name -> JSON) under <root>/<dir>/<name>/<leaf>
 * (dir "cells", leaf "Cell"; or "databases", "Database"). A record whose stored value decodes
 * to the same JSON is left alone (no write, same mod revision); a changed one is updated under
 * compare-and-swap on its mod revision, keeping fields mgo does not manage, with up to 8
 * retries when another writer wins. *ret_report receives [{"key", "outcome":
 * "created"|"updated"|"unchanged"}].
 */
int topo_register(struct etcd_client *etcd, const char *root, enum topo_kind kind,
                  const json_t *records, int64_t deadline_ms, json_t **ret_report, char *err,
                  size_t err_size);

/* Delete the records of `kind` under <root> whose names are not in `keep` (an object whose
 * keys are the names to keep). *ret_report receives [{"key", "outcome": "deleted"}]. */
int topo_prune(struct etcd_client *etcd, const char *root, enum topo_kind kind, const json_t *keep,
               int64_t deadline_ms, json_t **ret_report, char *err, size_t err_size);

/*
 * The poolers of one shard in one cell: every Pooler record under <cell_root>/poolers/ whose
 * id.cell is `cell` and whose shard key matches, decoded, each with "key", "mod_revision" and
 * "role": QUARANTINED when its lifecycle is LIFECYCLE_QUARANTINED, PRIMARY when its routing
 * role is ROUTING_ROLE_PRIMARY, else REPLICA; records with lifecycle LIFECYCLE_SHUTDOWN are
 * left out. *ret_poolers receives the array.
 */
int topo_list_poolers(struct etcd_client *etcd, const char *cell_root, const char *cell,
                      const char *database, const char *table_group, const char *shard,
                      int64_t deadline_ms, json_t **ret_poolers, char *err, size_t err_size);

/* topo_list_poolers() with the LIFECYCLE_SHUTDOWN records too (each with its "key"). */
int topo_list_poolers_all(struct etcd_client *etcd, const char *cell_root, const char *cell,
                          const char *database, const char *table_group, const char *shard,
                          int64_t deadline_ms, json_t **ret_poolers, char *err, size_t err_size);

/* The key of a pooler record: <cell_root>/poolers/multipooler-<cell>-<name>/Pooler. */
int topo_pooler_key(const char *cell_root, const char *cell, const char *name, char *buf,
                    size_t size);

/* Publish (create or replace) a pooler record on an instance's behalf: `record` is its JSON
 * form; id.cell and id.name give the key. */
int topo_publish_pooler(struct etcd_client *etcd, const char *cell_root, const json_t *record,
                        int64_t deadline_ms, char *err, size_t err_size);

/* Mark a pooler LIFECYCLE_SHUTDOWN with `reason` and the time `now_ms` (read-modify-write
 * under compare-and-swap, keeping every other field). *ret_changed is 0 when it already was.
 * -ENOENT when there is no such record. */
int topo_mark_pooler_shutdown(struct etcd_client *etcd, const char *cell_root, const char *cell,
                              const char *name, const char *reason, int64_t now_ms,
                              int64_t deadline_ms, int *ret_changed, char *err, size_t err_size);

/* Delete a pooler record; a missing one is not an error (*ret_deleted 0). */
int topo_delete_pooler(struct etcd_client *etcd, const char *cell_root, const char *cell,
                       const char *name, int64_t deadline_ms, int *ret_deleted, char *err,
                       size_t err_size);

/*
 * Every record under the global root and, for each Cell record, under its cell root (read
 * through `etcd`: mgo dumps one etcd), decoded:
 *   {"global": {"root", "records": [{"key", "kind", "mod_revision", "value"}]},
 *    "cells": [{"cell", "root", "server_addresses", "records": [...]}]}
 * A value that does not decode is listed with "error" instead of "value".
 */
int topo_dump(struct etcd_client *etcd, const char *root, int64_t deadline_ms, json_t **ret,
              char *err, size_t err_size);

/* Milliseconds left until the monotonic deadline (at least 1 while time remains, 0 after). */
int64_t topo_remaining_ms(int64_t deadline_ms);
/* A monotonic deadline `timeout_ms` from now. */
int64_t topo_deadline_after(int64_t timeout_ms);

#endif
