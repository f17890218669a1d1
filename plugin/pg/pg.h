/*
 * PostgreSQL connections with deadlines (module prefix pg_): what the `postgres` data-plane
 * driver asks a node (is it the primary, its LSNs, its standbys) and the few commands it sends
 * (CHECKPOINT, pg_reload_conf(), ALTER SYSTEM, pg_promote()). libpq is loaded at run time
 * (pq_api.h); nothing here is exported.
 *
 * Deadlines. Every call takes an absolute deadline in milliseconds of CLOCK_MONOTONIC
 * (pg_now_ms()) and does not block past it: connections are made with PQconnectStartParams +
 * PQconnectPoll + poll(), queries with PQsendQuery + poll() + PQconsumeInput. A deadline that
 * has already passed gives -ETIMEDOUT at once (it is never invalid input).
 *
 * When a query is still running as its deadline nears, it is cancelled and the connection is
 * closed: the last min(PG_CANCEL_RESERVE_MS, a quarter of the time the call was given) before
 * the deadline are kept for the cancel. libpq 15's PQcancel() waits for the server to close
 * its socket with a blocking recv() and no timeout (it never returns against a stopped
 * server), so the cancel is `SELECT pg_cancel_backend(<pid>)` over a second connection made
 * with the same conninfo, within the same deadline. A cancel is what ends a commit waiting for
 * a synchronous standby: closing the connection or statement_timeout does not.
 *
 * Return codes (negative errno values); every failure writes a one-line message to `err`
 * (lowercase, naming the node as host:port and what was being done; never a password):
 *   -ETIMEDOUT     the deadline passed (connecting, or the query: cancelled and closed;
 *                  pg_promote() also when the server's own wait ran out, connection open).
 *                  Retry-class: a caller reporting it maps it to MGO_EAGAIN.
 *   -ECONNREFUSED  the connection could not be made: refused, unreachable, authentication
 *                  failed, the server is starting up or shutting down, too many clients...
 *   -EIO           the connection broke during a call (it is closed).
 *   -EREMOTEIO     the server answered the statement with an error (the message carries the
 *                  SQLSTATE); the connection stays usable.
 *   -EPROTO        the answer had an unexpected shape or an unparsable value.
 *   -ENOTCONN      the connection was closed by an earlier timeout or failure: pg_close() it
 *                  and connect again.
 *   -EINVAL        bad arguments, or a conninfo that libpq rejects or that names a host by
 *                  name (see pg_connect).
 *   -E2BIG         pg_node_probe(): more standbys than struct pg_node_status holds.
 *   -EALREADY      pg_promote(): the node was not in recovery.
 *   -ENOMEM        out of memory.
 *   -ELIBACC       libpq.so.5 cannot be loaded: the driver is unsupported on this machine
 *                  (MGO_EUNSUPPORTED).
 *
 * libpq never writes to stderr: server notices and warnings (and libpq's own) go to
 * core_log(), WARNING and above at MGO_LOG_WARN, the rest at MGO_LOG_DEBUG.
 *
 * A connection is used by one thread at a time; different connections are independent.
 */
#ifndef MGO_PG_PG_H
#define MGO_PG_PG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Time kept before a query's deadline to cancel it (at most a quarter of the call's time). */
#define PG_CANCEL_RESERVE_MS 250

/* Enough for any LSN as text, "FFFFFFFF/FFFFFFFF" and the NUL. */
#define PG_LSN_TEXT_SIZE 18

/* A connection to one PostgreSQL server (opaque). libpq's PGconn is also `struct pg_conn` in
 * <libpq-fe.h>: in a file that includes both headers the compiler cannot tell them apart. The
 * library never includes <libpq-fe.h>. */
struct pg_conn;

struct pg_replica {
    char name[64];       /* application_name */
    char state[16];      /* startup, catchup, streaming, backup, stopping */
    char sync_state[16]; /* async, potential, sync, quorum */
    uint64_t sent_lsn, write_lsn, flush_lsn, replay_lsn; /* 0 when NULL */
};

#define PG_MAX_REPLICAS 32

/* The longest synchronous_standby_names mgo reads or writes, NUL included. */
#define PG_SYNC_NAMES_SIZE 1024

struct pg_node_status {
    int in_recovery;                     /* 1 standby, 0 primary */
    uint64_t current_lsn;                /* primary: pg_current_wal_lsn(); standby: 0 */
    uint64_t received_lsn, replayed_lsn; /* standby: pg_last_wal_receive_lsn() and
                                          * pg_last_wal_replay_lsn() (0 when NULL); primary: 0 */
    /*
     * Primary: the timeline of pg_walfile_name(pg_current_wal_lsn()), the one WAL is written
     * on now (pg_control_checkpoint() lags after a promote until the next checkpoint, P3).
     * Standby: received_tli of pg_stat_wal_receiver while a WAL receiver runs and has
     * received WAL, else pg_control_checkpoint().timeline_id (that of its last restartpoint).
     */
    int timeline;
    int checkpoint_timeline; /* pg_control_checkpoint().timeline_id: that of the last checkpoint
                              * (restartpoint on a standby); below `timeline` on a primary
                              * promoted since its last checkpoint (P3) */
    char sync_standby_names[PG_SYNC_NAMES_SIZE]; /* current_setting(...) */
    /* standby: "sender_host:sender_port" of pg_stat_wal_receiver ("[host]:port" for IPv6),
     * "" without a WAL receiver (and on a primary) */
    char upstream[256];
    char wal_receiver_status[32]; /* pg_stat_wal_receiver.status, "" without a receiver */
    /* pg_stat_replication, ordered by application_name: a primary's standbys (a standby's
     * cascading standbys) */
    size_t nreplicas;
    struct pg_replica replicas[PG_MAX_REPLICAS];
};

/* Now, in milliseconds of CLOCK_MONOTONIC: the clock of every deadline below. */
int64_t pg_now_ms(void);

/*
 * Connect to the server `conninfo` names (a libpq connection string or URI; defaults:
 * fallback_application_name=mgo, gssencmode=disable, which conninfo may override). On success
 * *ret is a new connection, released with pg_close().
 *
 * Every host in conninfo must be a numeric address or a socket directory, or come with a
 * hostaddr: libpq resolves names with a blocking getaddrinfo() no deadline bounds, so names
 * are rejected with -EINVAL (resolve them first). Hosts that the environment (PGHOST) or a
 * service file provide are not checked.
 */
int pg_connect(const char *conninfo, int64_t deadline_ms, struct pg_conn **ret, char *err,
               size_t err_size);

/* Close and free (NULL is accepted). Does not block: libpq's socket is non-blocking. */
void pg_close(struct pg_conn *c);

/*
 * Run `sql` (one or more statements, simple query protocol): 0 when every statement succeeded,
 * results discarded. For commands: CHECKPOINT, SELECT pg_reload_conf(), ALTER SYSTEM ...
 * Several statements in one string run in one implicit transaction and stop at the first
 * error; ALTER SYSTEM (like anything that cannot run in a transaction block) must be sent
 * alone (-EREMOTEIO, SQLSTATE 25001, otherwise). COPY is refused (-EPROTO, and the connection
 * is closed).
 */
int pg_exec(struct pg_conn *c, const char *sql, int64_t deadline_ms, char *err, size_t err_size);

/*
 * ALTER SYSTEM SET "<setting>" = E'<v1>'[, E'<v2>' ...] (each value an escape-string literal, so
 * right whatever standard_conforming_strings says; several values for a list parameter such as
 * search_path), or ALTER SYSTEM RESET "<setting>" when values is NULL. `setting` is quoted as
 * identifiers (dot-separated parts), so "all" is a name, never RESET ALL; it must be 1..63
 * lower-case letters, digits, '_' and '.' (-EINVAL otherwise). The caller reloads
 * (pg_reload_conf()) and confirms. -E2BIG when the statement would pass about 2400 bytes;
 * pg_exec()'s errors otherwise.
 */
int pg_alter_system(struct pg_conn *c, const char *setting, const char *const *values,
                    int64_t deadline_ms, char *err, size_t err_size);

/*
 * The network address a conninfo names, parsed as libpq parses it: host (hostaddr when given)
 * and port, both written in it (an environment default such as PGPORT is not what a record
 * should publish). 0; -EINVAL (err says why) for a conninfo libpq refuses, several hosts, a
 * socket directory or abstract socket, no port= or one that is not one number 1..65535;
 * -ENOMEM; -ELIBACC when libpq is missing.
 */
int pg_conninfo_address(const char *conninfo, char *host, size_t host_size, long *port, char *err,
                        size_t err_size);

/*
 * Run one query and return its rows as text: *ret_rows is a new array (one array per row, each
 * value a string or null), from the first result that has rows (the last one otherwise). For
 * small catalog reads (pg_settings, pg_file_settings): more than max_rows rows is -E2BIG.
 * -ENOMEM, and pg_exec()'s errors otherwise.
 */
int pg_query(struct pg_conn *c, const char *sql, int64_t deadline_ms, size_t max_rows,
             json_t **ret_rows, char *err, size_t err_size);

/* The SQLSTATE of the last statement's first server error on c ("" when none). */
const char *pg_sqlstate(const struct pg_conn *c);

/*
 * What the node is and knows, in one round trip (two statements in one query: the node's
 * facts, then pg_stat_replication). *out is written only on success. SQL results are checked:
 * a NULL is 0 or "", an unparsable value or a text longer than its field is -EPROTO, more
 * than PG_MAX_REPLICAS rows of pg_stat_replication is -E2BIG.
 */
int pg_node_probe(struct pg_conn *c, int64_t deadline_ms, struct pg_node_status *out, char *err,
                  size_t err_size);

/*
 * Promote a standby: SELECT pg_promote(wait => true, wait_seconds => N), N the whole seconds
 * left before the cancel reserve (at least 1), then CHECKPOINT so that pg_control carries the
 * new timeline at once (P3). 0 when promoted and checkpointed. -ETIMEDOUT when the promotion
 * did not finish in time (it was requested and may still complete). -EALREADY when the node
 * was not in recovery: the CHECKPOINT is still run (a promote whose CHECKPOINT was cut short
 * completes on a retry), and its failure is returned instead.
 */
int pg_promote(struct pg_conn *c, int64_t deadline_ms, char *err, size_t err_size);

/*
 * Parse an LSN as PostgreSQL writes it: two groups of 1 to 8 hex digits around '/'
 * ("16/B374D848"), nothing else (no spaces, signs or 0x). 0 and *ret, or -EINVAL.
 */
int pg_lsn_parse(const char *text, uint64_t *ret);

/* Format an LSN like PostgreSQL ("16/B374D848"). A buffer shorter than PG_LSN_TEXT_SIZE that
 * cannot hold the text gets "" (never a cut LSN). */
void pg_lsn_format(uint64_t lsn, char *buf, size_t size);

#endif
