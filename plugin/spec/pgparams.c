/*
 * PostgreSQL 17 configuration parameters (names, value types, contexts, enum values) and the
 * reference operator's admission check of spec postgresConfig entries.
 *
 * The catalogue holds every parameter defined in PostgreSQL 17's guc_tables.c (REL_17), the set
 * the reference operator (multigres/multigres-operator, pkg/postgresconfig) accepts, including
 * hidden ones (is_superuser, role, seed, session_authorization, default_with_oids,
 * ssl_renegotiation_limit) and ones compiled only into debug builds (debug_deadlocks, trace_locks,
 * trace_lock_oidmin, trace_lock_table, trace_lwlocks, trace_userlocks, trace_syncscan, wal_debug,
 * log_btree_build_stats). Enum values are those pg_settings.enumvals lists (hidden aliases such
 * as "true" for synchronous_commit are left out). Parameters PostgreSQL 16 and 17 removed
 * (lc_collate, lc_ctype, force_parallel_mode, promote_trigger_file, vacuum_defer_cleanup_age,
 * old_snapshot_threshold, db_user_namespace, trace_recovery_messages) are absent, as they are from
 * the reference catalogue. One deliberate difference from the reference: its generated catalogue
 * misses the three mixed-case parameters DateStyle, IntervalStyle and TimeZone (so it rejects them
 * as unknown); they are PostgreSQL 17 parameters and are listed here.
 *
 * Names are stored lower-case (pg_settings spells three of them DateStyle, IntervalStyle and
 * TimeZone) and sorted by byte value, so that pg_param_lookup() can binary-search them with an
 * ASCII case-insensitive comparison, the way PostgreSQL compares parameter names.
 */
#include "pgparams.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Allowed values of the enum parameters, as pg_settings.enumvals. */
static const char *const ev_archive_mode[] = {"always", "on", "off", NULL};
static const char *const ev_backslash_quote[] = {"safe_encoding", "on", "off", NULL};
static const char *const ev_bytea_output[] = {"escape", "hex", NULL};
static const char *const ev_client_min_messages[] = {
    "debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error", NULL};
static const char *const ev_compute_query_id[] = {"auto", "regress", "on", "off", NULL};
static const char *const ev_constraint_exclusion[] = {"partition", "on", "off", NULL};
static const char *const ev_debug_logical_replication_streaming[] = {"buffered", "immediate", NULL};
static const char *const ev_debug_parallel_query[] = {"off", "on", "regress", NULL};
static const char *const ev_default_toast_compression[] = {"pglz", "lz4", NULL};
static const char *const ev_default_transaction_isolation[] = {
    "serializable", "repeatable read", "read committed", "read uncommitted", NULL};
static const char *const ev_dynamic_shared_memory_type[] = {"posix", "sysv", "mmap", NULL};
static const char *const ev_huge_pages[] = {"off", "on", "try", NULL};
static const char *const ev_huge_pages_status[] = {"off", "on", "unknown", NULL};
static const char *const ev_icu_validation_level[] = {"disabled", "debug5", "debug4", "debug3",
                                                      "debug2",   "debug1", "log",    "notice",
                                                      "warning",  "error",  NULL};
static const char *const ev_intervalstyle[] = {"postgres", "postgres_verbose", "sql_standard",
                                               "iso_8601", NULL};
static const char *const ev_log_error_verbosity[] = {"terse", "default", "verbose", NULL};
static const char *const ev_log_min_error_statement[] = {
    "debug5",  "debug4", "debug3", "debug2", "debug1", "info", "notice",
    "warning", "error",  "log",    "fatal",  "panic",  NULL};
static const char *const ev_log_min_messages[] = {"debug5", "debug4", "debug3",  "debug2", "debug1",
                                                  "info",   "notice", "warning", "error",  "log",
                                                  "fatal",  "panic",  NULL};
static const char *const ev_log_statement[] = {"none", "ddl", "mod", "all", NULL};
static const char *const ev_password_encryption[] = {"md5", "scram-sha-256", NULL};
static const char *const ev_plan_cache_mode[] = {"auto", "force_generic_plan", "force_custom_plan",
                                                 NULL};
static const char *const ev_recovery_init_sync_method[] = {"fsync", "syncfs", NULL};
static const char *const ev_recovery_prefetch[] = {"off", "on", "try", NULL};
static const char *const ev_recovery_target_action[] = {"pause", "promote", "shutdown", NULL};
static const char *const ev_session_replication_role[] = {"origin", "replica", "local", NULL};
static const char *const ev_shared_memory_type[] = {"sysv", "mmap", NULL};
static const char *const ev_ssl_max_protocol_version[] = {"",        "TLSv1",   "TLSv1.1",
                                                          "TLSv1.2", "TLSv1.3", NULL};
static const char *const ev_ssl_min_protocol_version[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3",
                                                          NULL};
static const char *const ev_stats_fetch_consistency[] = {"none", "cache", "snapshot", NULL};
static const char *const ev_synchronous_commit[] = {"local", "remote_write", "remote_apply",
                                                    "on",    "off",          NULL};
static const char *const ev_syslog_facility[] = {"local0", "local1", "local2", "local3", "local4",
                                                 "local5", "local6", "local7", NULL};
static const char *const ev_track_functions[] = {"none", "pl", "all", NULL};
static const char *const ev_transaction_isolation[] = {"serializable", "repeatable read",
                                                       "read committed", "read uncommitted", NULL};
static const char *const ev_wal_compression[] = {"pglz", "lz4", "zstd", "on", "off", NULL};
static const char *const ev_wal_level[] = {"minimal", "replica", "logical", NULL};
static const char *const ev_wal_sync_method[] = {"fsync", "fdatasync", "open_sync", "open_datasync",
                                                 NULL};
static const char *const ev_xmlbinary[] = {"base64", "hex", NULL};
static const char *const ev_xmloption[] = {"content", "document", NULL};

static const struct pg_param params[] = {
    {"allow_alter_system", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"allow_in_place_tablespaces", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"allow_system_table_mods", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"application_name", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"archive_cleanup_command", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"archive_command", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"archive_library", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"archive_mode", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER, ev_archive_mode},
    {"archive_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"array_nulls", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"authentication_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_analyze_scale_factor", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_analyze_threshold", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_freeze_max_age", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"autovacuum_max_workers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"autovacuum_multixact_freeze_max_age", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"autovacuum_naptime", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_cost_delay", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_cost_limit", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_insert_scale_factor", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_insert_threshold", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_scale_factor", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_vacuum_threshold", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"autovacuum_work_mem", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"backend_flush_after", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"backslash_quote", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_backslash_quote},
    {"backtrace_functions", PG_PARAM_STRING, PG_CONTEXT_SUPERUSER, NULL},
    {"bgwriter_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"bgwriter_flush_after", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"bgwriter_lru_maxpages", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"bgwriter_lru_multiplier", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"block_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"bonjour", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"bonjour_name", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"bytea_output", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_bytea_output},
    {"check_function_bodies", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"checkpoint_completion_target", PG_PARAM_REAL, PG_CONTEXT_SIGHUP, NULL},
    {"checkpoint_flush_after", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"checkpoint_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"checkpoint_warning", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"client_connection_check_interval", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"client_encoding", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"client_min_messages", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_client_min_messages},
    {"cluster_name", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"commit_delay", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"commit_siblings", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"commit_timestamp_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"compute_query_id", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_compute_query_id},
    {"config_file", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"constraint_exclusion", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_constraint_exclusion},
    {"cpu_index_tuple_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"cpu_operator_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"cpu_tuple_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"createrole_self_grant", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"cursor_tuple_fraction", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"data_checksums", PG_PARAM_BOOL, PG_CONTEXT_INTERNAL, NULL},
    {"data_directory", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"data_directory_mode", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"data_sync_retry", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"datestyle", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"deadlock_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"debug_assertions", PG_PARAM_BOOL, PG_CONTEXT_INTERNAL, NULL},
    {"debug_deadlocks", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"debug_discard_caches", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"debug_io_direct", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"debug_logical_replication_streaming", PG_PARAM_ENUM, PG_CONTEXT_USER,
     ev_debug_logical_replication_streaming},
    {"debug_parallel_query", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_debug_parallel_query},
    {"debug_pretty_print", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"debug_print_parse", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"debug_print_plan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"debug_print_rewritten", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"default_statistics_target", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"default_table_access_method", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"default_tablespace", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"default_text_search_config", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"default_toast_compression", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_default_toast_compression},
    {"default_transaction_deferrable", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"default_transaction_isolation", PG_PARAM_ENUM, PG_CONTEXT_USER,
     ev_default_transaction_isolation},
    {"default_transaction_read_only", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"default_with_oids", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"dynamic_library_path", PG_PARAM_STRING, PG_CONTEXT_SUPERUSER, NULL},
    {"dynamic_shared_memory_type", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER,
     ev_dynamic_shared_memory_type},
    {"effective_cache_size", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"effective_io_concurrency", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"enable_async_append", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_bitmapscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_gathermerge", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_group_by_reordering", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_hashagg", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_hashjoin", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_incremental_sort", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_indexonlyscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_indexscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_material", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_memoize", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_mergejoin", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_nestloop", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_parallel_append", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_parallel_hash", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_partition_pruning", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_partitionwise_aggregate", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_partitionwise_join", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_presorted_aggregate", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_seqscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_sort", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"enable_tidscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"escape_string_warning", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"event_source", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"event_triggers", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"exit_on_error", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"external_pid_file", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"extra_float_digits", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"from_collapse_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"fsync", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"full_page_writes", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"geqo", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"geqo_effort", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"geqo_generations", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"geqo_pool_size", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"geqo_seed", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"geqo_selection_bias", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"geqo_threshold", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"gin_fuzzy_search_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"gin_pending_list_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"gss_accept_delegation", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"hash_mem_multiplier", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"hba_file", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"hot_standby", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"hot_standby_feedback", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"huge_page_size", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"huge_pages", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER, ev_huge_pages},
    {"huge_pages_status", PG_PARAM_ENUM, PG_CONTEXT_INTERNAL, ev_huge_pages_status},
    {"icu_validation_level", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_icu_validation_level},
    {"ident_file", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"idle_in_transaction_session_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"idle_session_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"ignore_checksum_failure", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"ignore_invalid_pages", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"ignore_system_indexes", PG_PARAM_BOOL, PG_CONTEXT_BACKEND, NULL},
    {"in_hot_standby", PG_PARAM_BOOL, PG_CONTEXT_INTERNAL, NULL},
    {"integer_datetimes", PG_PARAM_BOOL, PG_CONTEXT_INTERNAL, NULL},
    {"intervalstyle", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_intervalstyle},
    {"io_combine_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"is_superuser", PG_PARAM_BOOL, PG_CONTEXT_INTERNAL, NULL},
    {"jit", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"jit_above_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"jit_debugging_support", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND, NULL},
    {"jit_dump_bitcode", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"jit_expressions", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"jit_inline_above_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"jit_optimize_above_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"jit_profiling_support", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND, NULL},
    {"jit_provider", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"jit_tuple_deforming", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"join_collapse_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"krb_caseins_users", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"krb_server_keyfile", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"lc_messages", PG_PARAM_STRING, PG_CONTEXT_SUPERUSER, NULL},
    {"lc_monetary", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"lc_numeric", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"lc_time", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"listen_addresses", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"lo_compat_privileges", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"local_preload_libraries", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"lock_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"log_autovacuum_min_duration", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"log_btree_build_stats", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_checkpoints", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"log_connections", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND, NULL},
    {"log_destination", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"log_directory", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"log_disconnections", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND, NULL},
    {"log_duration", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_error_verbosity", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_log_error_verbosity},
    {"log_executor_stats", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_file_mode", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"log_filename", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"log_hostname", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"log_line_prefix", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"log_lock_waits", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_min_duration_sample", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"log_min_duration_statement", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"log_min_error_statement", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_log_min_error_statement},
    {"log_min_messages", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_log_min_messages},
    {"log_parameter_max_length", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"log_parameter_max_length_on_error", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"log_parser_stats", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_planner_stats", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_recovery_conflict_waits", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"log_replication_commands", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_rotation_age", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"log_rotation_size", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"log_startup_progress_interval", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"log_statement", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_log_statement},
    {"log_statement_sample_rate", PG_PARAM_REAL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_statement_stats", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_temp_files", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"log_timezone", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"log_transaction_sample_rate", PG_PARAM_REAL, PG_CONTEXT_SUPERUSER, NULL},
    {"log_truncate_on_rotation", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"logging_collector", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"logical_decoding_work_mem", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"maintenance_io_concurrency", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"maintenance_work_mem", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"max_connections", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_files_per_process", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_function_args", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"max_identifier_length", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"max_index_keys", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"max_locks_per_transaction", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_logical_replication_workers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_notify_queue_pages", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_parallel_apply_workers_per_subscription", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_parallel_maintenance_workers", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"max_parallel_workers", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"max_parallel_workers_per_gather", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"max_pred_locks_per_page", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_pred_locks_per_relation", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_pred_locks_per_transaction", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_prepared_transactions", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_replication_slots", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_slot_wal_keep_size", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_stack_depth", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"max_standby_archive_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_standby_streaming_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_sync_workers_per_subscription", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_wal_senders", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"max_wal_size", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"max_worker_processes", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"min_dynamic_shared_memory", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"min_parallel_index_scan_size", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"min_parallel_table_scan_size", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"min_wal_size", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"multixact_member_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"multixact_offset_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"notify_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"parallel_leader_participation", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"parallel_setup_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"parallel_tuple_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"password_encryption", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_password_encryption},
    {"plan_cache_mode", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_plan_cache_mode},
    {"port", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"post_auth_delay", PG_PARAM_INTEGER, PG_CONTEXT_BACKEND, NULL},
    {"pre_auth_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"primary_conninfo", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"primary_slot_name", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"quote_all_identifiers", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"random_page_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"recovery_end_command", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"recovery_init_sync_method", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_recovery_init_sync_method},
    {"recovery_min_apply_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"recovery_prefetch", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_recovery_prefetch},
    {"recovery_target", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_action", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER, ev_recovery_target_action},
    {"recovery_target_inclusive", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_lsn", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_name", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_time", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_timeline", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recovery_target_xid", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"recursive_worktable_factor", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"remove_temp_files_after_crash", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"reserved_connections", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"restart_after_crash", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"restore_command", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"restrict_nonsystem_relation_kind", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"role", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"row_security", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"scram_iterations", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"search_path", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"seed", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"segment_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"send_abort_for_crash", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"send_abort_for_kill", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"seq_page_cost", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"serializable_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"server_encoding", PG_PARAM_STRING, PG_CONTEXT_INTERNAL, NULL},
    {"server_version", PG_PARAM_STRING, PG_CONTEXT_INTERNAL, NULL},
    {"server_version_num", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"session_authorization", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"session_preload_libraries", PG_PARAM_STRING, PG_CONTEXT_SUPERUSER, NULL},
    {"session_replication_role", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_session_replication_role},
    {"shared_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"shared_memory_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"shared_memory_size_in_huge_pages", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"shared_memory_type", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER, ev_shared_memory_type},
    {"shared_preload_libraries", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"ssl", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_ca_file", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_cert_file", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_ciphers", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_crl_dir", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_crl_file", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_dh_params_file", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_ecdh_curve", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_key_file", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_library", PG_PARAM_STRING, PG_CONTEXT_INTERNAL, NULL},
    {"ssl_max_protocol_version", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_ssl_max_protocol_version},
    {"ssl_min_protocol_version", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_ssl_min_protocol_version},
    {"ssl_passphrase_command", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_passphrase_command_supports_reload", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_prefer_server_ciphers", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"ssl_renegotiation_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"standard_conforming_strings", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"statement_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"stats_fetch_consistency", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_stats_fetch_consistency},
    {"subtransaction_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"summarize_wal", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"superuser_reserved_connections", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"sync_replication_slots", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"synchronize_seqscans", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"synchronized_standby_slots", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"synchronous_commit", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_synchronous_commit},
    {"synchronous_standby_names", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"syslog_facility", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_syslog_facility},
    {"syslog_ident", PG_PARAM_STRING, PG_CONTEXT_SIGHUP, NULL},
    {"syslog_sequence_numbers", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"syslog_split_messages", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"tcp_keepalives_count", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"tcp_keepalives_idle", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"tcp_keepalives_interval", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"tcp_user_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"temp_buffers", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"temp_file_limit", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"temp_tablespaces", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"timezone", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"timezone_abbreviations", PG_PARAM_STRING, PG_CONTEXT_USER, NULL},
    {"trace_connection_negotiation", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"trace_lock_oidmin", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"trace_lock_table", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER, NULL},
    {"trace_locks", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"trace_lwlocks", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"trace_notify", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"trace_sort", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"trace_syncscan", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"trace_userlocks", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"track_activities", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"track_activity_query_size", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"track_commit_timestamp", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"track_counts", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"track_functions", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_track_functions},
    {"track_io_timing", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"track_wal_io_timing", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"transaction_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"transaction_deferrable", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"transaction_isolation", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_transaction_isolation},
    {"transaction_read_only", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"transaction_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"transform_null_equals", PG_PARAM_BOOL, PG_CONTEXT_USER, NULL},
    {"unix_socket_directories", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"unix_socket_group", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER, NULL},
    {"unix_socket_permissions", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"update_process_title", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"vacuum_buffer_usage_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_cost_delay", PG_PARAM_REAL, PG_CONTEXT_USER, NULL},
    {"vacuum_cost_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_cost_page_dirty", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_cost_page_hit", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_cost_page_miss", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_failsafe_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_freeze_min_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_freeze_table_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_multixact_failsafe_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_multixact_freeze_min_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"vacuum_multixact_freeze_table_age", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"wal_block_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"wal_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"wal_compression", PG_PARAM_ENUM, PG_CONTEXT_SUPERUSER, ev_wal_compression},
    {"wal_consistency_checking", PG_PARAM_STRING, PG_CONTEXT_SUPERUSER, NULL},
    {"wal_debug", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"wal_decode_buffer_size", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER, NULL},
    {"wal_init_zero", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"wal_keep_size", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_level", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER, ev_wal_level},
    {"wal_log_hints", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER, NULL},
    {"wal_receiver_create_temp_slot", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP, NULL},
    {"wal_receiver_status_interval", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_receiver_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_recycle", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
    {"wal_retrieve_retry_interval", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_segment_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL, NULL},
    {"wal_sender_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"wal_skip_threshold", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"wal_summary_keep_time", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_sync_method", PG_PARAM_ENUM, PG_CONTEXT_SIGHUP, ev_wal_sync_method},
    {"wal_writer_delay", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"wal_writer_flush_after", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP, NULL},
    {"work_mem", PG_PARAM_INTEGER, PG_CONTEXT_USER, NULL},
    {"xmlbinary", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_xmlbinary},
    {"xmloption", PG_PARAM_ENUM, PG_CONTEXT_USER, ev_xmloption},
    {"zero_damaged_pages", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER, NULL},
};

#define PARAM_COUNT (sizeof(params) / sizeof(params[0]))

/* Longest name in the table is 43 bytes; anything that does not fit here cannot match. */
#define NAME_BUF_SIZE 128

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex_letter(int c)
{
    c = ascii_lower(c);
    return c >= 'a' && c <= 'f';
}

static bool is_ascii_letter(int c)
{
    c = ascii_lower(c);
    return c >= 'a' && c <= 'z';
}

/* Compares a name (any case) with a lower-case table name, ASCII case-insensitively. */
static int name_cmp(const char *key, const char *entry)
{
    const unsigned char *a = (const unsigned char *)key;
    const unsigned char *b = (const unsigned char *)entry;

    for (;;) {
        int ca = ascii_lower(*a);
        int cb = *b;

        if (ca != cb || ca == '\0')
            return ca - cb;
        a++;
        b++;
    }
}

const struct pg_param *pg_param_lookup(const char *name)
{
    size_t lo = 0;
    size_t hi = PARAM_COUNT;

    if (name == NULL)
        return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = name_cmp(name, params[mid].name);

        if (cmp == 0)
            return &params[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/*
 * The reference check is written in Go: it trims names and values with strings.TrimSpace
 * (Unicode white space), lower-cases names with strings.ToLower, quotes names and values in its
 * messages with %q (strconv.Quote) and parses reals with strconv.ParseFloat. The helpers below
 * reproduce those behaviours on UTF-8 byte strings.
 */

/* A byte range of a string. */
struct span {
    const unsigned char *p;
    size_t n;
};

/* Go's unicode.IsSpace outside ASCII: U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F and U+3000. Returns the UTF-8 length of such a rune starting at p, else 0. */
static size_t unicode_space_len(const unsigned char *p, size_t n)
{
    if (n >= 2 && p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
        return 2;
    if (n < 3)
        return 0;
    if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x80 &&
        ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
        return 3;
    if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
        return 3;
    return 0;
}

static bool is_ascii_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* strings.TrimSpace */
static struct span trim_space(struct span s)
{
    for (;;) {
        size_t k;

        if (s.n > 0 && is_ascii_space(s.p[0])) {
            s.p++;
            s.n--;
        } else if ((k = unicode_space_len(s.p, s.n)) > 0) {
            s.p += k;
            s.n -= k;
        } else {
            break;
        }
    }
    for (;;) {
        if (s.n > 0 && is_ascii_space(s.p[s.n - 1]))
            s.n--;
        else if (s.n >= 2 && unicode_space_len(s.p + s.n - 2, 2) == 2)
            s.n -= 2;
        else if (s.n >= 3 && unicode_space_len(s.p + s.n - 3, 3) == 3)
            s.n -= 3;
        else
            break;
    }
    return s;
}

static struct span span_of(const char *s)
{
    struct span r = {(const unsigned char *)s, strlen(s)};

    return r;
}

/*
 * strings.ToLower, as far as it can produce a table name: ASCII letters fold, and so do the two
 * non-ASCII runes whose lower case is ASCII (U+0130 to 'i', KELVIN SIGN U+212A to 'k'). Other
 * bytes are copied; they never match a table name. Returns false when out is too small.
 */
static bool lower_name(struct span s, char *out, size_t cap)
{
    size_t o = 0;
    size_t i = 0;

    while (i < s.n) {
        unsigned char c = s.p[i];

        if (o + 1 >= cap)
            return false;
        if (c == 0xc4 && i + 1 < s.n && s.p[i + 1] == 0xb0) {
            out[o++] = 'i';
            i += 2;
        } else if (c == 0xe2 && i + 2 < s.n && s.p[i + 1] == 0x84 && s.p[i + 2] == 0xaa) {
            out[o++] = 'k';
            i += 3;
        } else {
            out[o++] = (char)ascii_lower(c);
            i++;
        }
    }
    out[o] = '\0';
    return true;
}

static bool span_ieq(struct span s, const char *word)
{
    size_t n = strlen(word);
    size_t i;

    if (s.n != n)
        return false;
    for (i = 0; i < n; i++) {
        if (ascii_lower(s.p[i]) != (unsigned char)word[i])
            return false;
    }
    return true;
}

/* The reference accepts exactly these bool spellings, in any case (no unique prefixes). */
static bool is_bool_value(struct span v)
{
    static const char *const words[] = {"on", "off", "true", "false", "yes", "no", "1", "0"};
    size_t i;

    v = trim_space(v);
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (span_ieq(v, words[i]))
            return true;
    }
    return false;
}

/*
 * The reference integer rule: an optional sign, at least one decimal digit, then optional white
 * space and a run of ASCII letters taken as a unit (any letters: the unit is not checked against
 * the parameter). Hexadecimal, octal, fractions and exponents are rejected.
 */
static bool is_integer_value(struct span v)
{
    size_t i = 0;
    size_t digits = 0;
    struct span unit;

    v = trim_space(v);
    if (i < v.n && (v.p[i] == '+' || v.p[i] == '-'))
        i++;
    while (i < v.n && is_digit(v.p[i])) {
        i++;
        digits++;
    }
    if (digits == 0)
        return false;
    unit.p = v.p + i;
    unit.n = v.n - i;
    unit = trim_space(unit);
    for (i = 0; i < unit.n; i++) {
        if (!is_ascii_letter(unit.p[i]))
            return false;
    }
    return true;
}

/* strconv.ParseFloat's special values: [+-]inf, [+-]infinity, nan (any case; no sign on nan). */
static bool is_float_special(struct span s)
{
    bool has_sign = false;

    if (s.n > 0 && (s.p[0] == '+' || s.p[0] == '-')) {
        has_sign = true;
        s.p++;
        s.n--;
    }
    if (span_ieq(s, "inf") || span_ieq(s, "infinity"))
        return true;
    return !has_sign && span_ieq(s, "nan");
}

/* Go's rule for digit-separating underscores in a number literal s[0..n). */
static bool underscores_ok(const unsigned char *s, size_t n)
{
    char saw = '^'; /* '^' start, '0' digit or base prefix, '_' underscore, '!' other */
    bool hex = false;
    size_t i = 0;

    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    if (n >= 2 && s[0] == '0' &&
        (ascii_lower(s[1]) == 'b' || ascii_lower(s[1]) == 'o' || ascii_lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = ascii_lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if (is_digit(s[i]) || (hex && is_hex_letter(s[i]))) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* A syntactically valid finite float literal, as strconv.ParseFloat reads it. */
struct float_lit {
    bool hex;
    size_t mant_begin; /* the mantissa: digits, '.' and '_' */
    size_t mant_end;
    long long nd;  /* significant digits (leading zeros excluded) */
    long long dp;  /* position of the point, in digits, relative to the first significant one */
    long long exp; /* exponent (decimal e, or binary p for hex), capped as Go caps it */
};

static bool parse_float_lit(struct span s, struct float_lit *f)
{
    size_t i = 0;
    bool underscores = false;
    bool sawdot = false;
    bool sawdigits = false;
    long long nd = 0;
    long long dp = 0;

    if (s.n == 0)
        return false;
    if (s.p[0] == '+' || s.p[0] == '-')
        i++;
    f->hex = false;
    if (i + 2 < s.n && s.p[i] == '0' && ascii_lower(s.p[i + 1]) == 'x') {
        f->hex = true;
        i += 2;
    }
    f->mant_begin = i;
    for (; i < s.n; i++) {
        unsigned char c = s.p[i];

        if (c == '_') {
            underscores = true;
        } else if (c == '.') {
            if (sawdot)
                break;
            sawdot = true;
            dp = nd;
        } else if (is_digit(c) || (f->hex && is_hex_letter(c))) {
            sawdigits = true;
            if (c == '0' && nd == 0)
                dp--; /* leading zero */
            else
                nd++;
        } else {
            break;
        }
    }
    f->mant_end = i;
    if (!sawdigits)
        return false;
    if (!sawdot)
        dp = nd;
    f->exp = 0;
    if (i < s.n && ascii_lower(s.p[i]) == (f->hex ? 'p' : 'e')) {
        long long e = 0;
        int esign = 1;

        i++;
        if (i >= s.n)
            return false;
        if (s.p[i] == '+') {
            i++;
        } else if (s.p[i] == '-') {
            esign = -1;
            i++;
        }
        if (i >= s.n || !is_digit(s.p[i]))
            return false;
        for (; i < s.n && (is_digit(s.p[i]) || s.p[i] == '_'); i++) {
            if (s.p[i] == '_')
                underscores = true;
            else if (e < 10000)
                e = e * 10 + (s.p[i] - '0');
        }
        f->exp = e * esign;
    } else if (f->hex) {
        return false; /* a hex mantissa needs a p exponent */
    }
    if (underscores && !underscores_ok(s.p, i))
        return false;
    if (i != s.n)
        return false;
    f->nd = nd;
    f->dp = dp;
    return true;
}

/* DBL_MAX + half an ulp = 2^1024 - 2^970: a value at or above it rounds to infinity. */
static const char overflow_digits[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179775"
    "8720709633028641669288791094655554785194040263065748867150582068190890200070838367627385484581"
    "7711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699"
    "508093042880177904174497792";
#define OVERFLOW_DECIMAL_EXP 309 /* overflow_digits is 0.1797...e309 */

static int hex_value(int c)
{
    return is_digit(c) ? c - '0' : ascii_lower(c) - 'a' + 10;
}

/* Whether a float literal's exact value rounds to +-infinity (ParseFloat's range error). */
static bool float_lit_overflows(struct span s, const struct float_lit *f)
{
    const size_t ndigits = sizeof(overflow_digits) - 1;
    size_t i = f->mant_begin;
    size_t k = 0;

    if (f->nd == 0)
        return false; /* zero */
    /* Skip to the first significant digit. */
    while (s.p[i] == '_' || s.p[i] == '.' || s.p[i] == '0')
        i++;
    if (f->hex) {
        /* value = 1.bbb... * 2^b with b = 4 * dp + (bit length of first digit) - 5 + exp; it
         * overflows when b > 1023, or b == 1023 and the 53 bits after the leading one are ones. */
        int first = hex_value(s.p[i]);
        int len = 4;
        long long b;
        int ones = 0;
        int bit;

        while (!(first & (1 << (len - 1))))
            len--;
        b = 4 * f->dp + len - 5 + f->exp;
        if (b != 1023)
            return b > 1023;
        for (bit = len - 2; bit >= 0; bit--) {
            if (!(first & (1 << bit)))
                return false;
            if (++ones == 53)
                return true;
        }
        for (i++; i < f->mant_end; i++) {
            int d;

            if (s.p[i] == '_' || s.p[i] == '.')
                continue;
            d = hex_value(s.p[i]);
            for (bit = 3; bit >= 0; bit--) {
                if (!(d & (1 << bit)))
                    return false;
                if (++ones == 53)
                    return true;
            }
        }
        return false;
    }
    /* value = 0.ddd... * 10^(dp + exp); compare the digits with overflow_digits. */
    if (f->dp + f->exp != OVERFLOW_DECIMAL_EXP)
        return f->dp + f->exp > OVERFLOW_DECIMAL_EXP;
    for (; i < f->mant_end; i++) {
        unsigned char want;

        if (s.p[i] == '_' || s.p[i] == '.')
            continue;
        want = k < ndigits ? (unsigned char)overflow_digits[k] : '0';
        if (s.p[i] != want)
            return s.p[i] > want;
        k++;
    }
    /* A prefix of the threshold (which ends in a non-zero digit) is below it. */
    return k >= ndigits;
}

/* strconv.ParseFloat(v, 64) succeeds: a Go float literal (decimal or hex, with underscores),
 * inf/infinity/nan, not overflowing (underflow to zero is not an error). */
static bool is_real_value(struct span v)
{
    struct float_lit f;

    v = trim_space(v);
    if (is_float_special(v))
        return true;
    if (!parse_float_lit(v, &f))
        return false;
    return !float_lit_overflows(v, &f);
}

/* Only bool, integer and real values are checked; enum and string values are left to PostgreSQL,
 * as the reference does. */
static bool value_matches_type(enum pg_param_type type, const char *value)
{
    switch (type) {
    case PG_PARAM_BOOL:
        return is_bool_value(span_of(value));
    case PG_PARAM_INTEGER:
        return is_integer_value(span_of(value));
    case PG_PARAM_REAL:
        return is_real_value(span_of(value));
    case PG_PARAM_STRING:
    case PG_PARAM_ENUM:
        break;
    }
    return true;
}

static const char *type_name(enum pg_param_type type)
{
    switch (type) {
    case PG_PARAM_BOOL:
        return "bool";
    case PG_PARAM_INTEGER:
        return "integer";
    case PG_PARAM_REAL:
        return "real";
    case PG_PARAM_STRING:
        return "string";
    case PG_PARAM_ENUM:
        return "enum";
    }
    return "unknown";
}

/* Parameters the operator owns, with the reason given in the rejection. */
struct managed_param {
    const char *name;
    const char *reason;
};

static const struct managed_param managed_params[] = {
    {"data_directory", "pinned by the operator on the pgctld command line"},
    {"hba_file", "pinned by the operator on the pgctld command line"},
    {"ident_file", "pinned by the operator on the pgctld command line"},
    {"listen_addresses", "pinned by the operator on the pgctld command line"},
    {"port", "pinned by the operator on the pgctld command line"},
    {"unix_socket_directories", "pinned by the operator on the pgctld command line"},
    {"wal_level", "managed by the operator; multigres requires wal_level=logical"},
};

static const char *managed_reason(const char *lower)
{
    size_t i;

    for (i = 0; i < sizeof(managed_params) / sizeof(managed_params[0]); i++) {
        if (strcmp(lower, managed_params[i].name) == 0)
            return managed_params[i].reason;
    }
    return NULL;
}

/*
 * The reason buffer. Text goes in whole units (an ASCII byte, an escape, a UTF-8 character); the
 * first unit that does not fit ends the text, so truncation never splits a character.
 */
struct reason_buf {
    char *buf;
    size_t cap;
    size_t len;
    bool full;
};

static void rb_init(struct reason_buf *rb, char *buf, size_t cap)
{
    rb->buf = buf;
    rb->cap = buf != NULL ? cap : 0;
    rb->len = 0;
    rb->full = rb->cap == 0;
    if (rb->cap > 0)
        rb->buf[0] = '\0';
}

static void rb_unit(struct reason_buf *rb, const char *s, size_t n)
{
    if (rb->full)
        return;
    if (n > rb->cap - 1 - rb->len) {
        rb->full = true;
        return;
    }
    memcpy(rb->buf + rb->len, s, n);
    rb->len += n;
    rb->buf[rb->len] = '\0';
}

static void rb_text(struct reason_buf *rb, const char *s)
{
    for (; *s != '\0'; s++)
        rb_unit(rb, s, 1);
}

/* Go's escapes for bytes and runes: \xhh, \uhhhh, \Uhhhhhhhh (lower-case hex). */
enum escape_kind {
    ESCAPE_BYTE,
    ESCAPE_RUNE16,
    ESCAPE_RUNE32,
};

static void rb_escape(struct reason_buf *rb, enum escape_kind kind, unsigned long v)
{
    char tmp[16];
    int n;

    switch (kind) {
    case ESCAPE_BYTE:
        n = snprintf(tmp, sizeof(tmp), "\\x%02lx", v);
        break;
    case ESCAPE_RUNE16:
        n = snprintf(tmp, sizeof(tmp), "\\u%04lx", v);
        break;
    default:
        n = snprintf(tmp, sizeof(tmp), "\\U%08lx", v);
        break;
    }
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        rb->full = true;
        return;
    }
    rb_unit(rb, tmp, (size_t)n);
}

/* Decodes one UTF-8 character as Go does (no overlongs, surrogates or values past U+10FFFF).
 * Returns its length, or 0 when the bytes at p do not start a valid character. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    size_t len;
    size_t i;
    uint32_t v;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0fu;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07u;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 1; i < len; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    *cp = v;
    return len;
}

/*
 * Non-ASCII characters Go's strconv.IsPrint rejects: C1 controls, spaces other than U+0020,
 * line and paragraph separators, format characters, private use and noncharacters. (Go also
 * escapes unassigned code points; those are not listed here and are copied as they are.)
 */
static bool is_printable(uint32_t cp)
{
    static const uint32_t ranges[][2] = {
        {0x0080, 0x00a0},    {0x00ad, 0x00ad},   {0x0600, 0x0605},   {0x061c, 0x061c},
        {0x06dd, 0x06dd},    {0x070f, 0x070f},   {0x0890, 0x0891},   {0x08e2, 0x08e2},
        {0x1680, 0x1680},    {0x180e, 0x180e},   {0x2000, 0x200f},   {0x2028, 0x202f},
        {0x205f, 0x206f},    {0x3000, 0x3000},   {0xe000, 0xf8ff},   {0xfdd0, 0xfdef},
        {0xfeff, 0xfeff},    {0xfff0, 0xfffb},   {0x110bd, 0x110bd}, {0x110cd, 0x110cd},
        {0x13430, 0x1343f},  {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0000, 0xe007f},
        {0xf0000, 0x10ffff},
    };
    size_t i;

    if ((cp & 0xfffeu) == 0xfffeu)
        return false;
    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (cp >= ranges[i][0] && cp <= ranges[i][1])
            return false;
    }
    return true;
}

/* Appends s in double quotes, escaped as Go's %q (strconv.Quote) does. */
static void rb_quoted(struct reason_buf *rb, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    size_t i = 0;

    rb_unit(rb, "\"", 1);
    while (i < n) {
        unsigned char c = s[i];
        uint32_t cp;
        size_t len;

        if (c < 0x80) {
            static const char simple[] = "\a\b\f\n\r\t\v";
            static const char letters[] = "abfnrtv";
            const char *e = c != '\0' ? strchr(simple, c) : NULL;
            char esc[2] = {'\\', (char)c};

            if (c == '"' || c == '\\')
                rb_unit(rb, esc, 2);
            else if (c >= 0x20 && c < 0x7f)
                rb_unit(rb, (const char *)s + i, 1);
            else if (e != NULL) {
                esc[1] = letters[e - simple];
                rb_unit(rb, esc, 2);
            } else {
                rb_escape(rb, ESCAPE_BYTE, c);
            }
            i++;
            continue;
        }
        len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            rb_escape(rb, ESCAPE_BYTE, c);
            i++;
        } else {
            if (is_printable(cp))
                rb_unit(rb, (const char *)s + i, len);
            else
                rb_escape(rb, cp < 0x10000 ? ESCAPE_RUNE16 : ESCAPE_RUNE32, cp);
            i += len;
        }
    }
    rb_unit(rb, "\"", 1);
}

static int guc_name_syntax(const char *name)
{
    if (!((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') || *name == '_'))
        return 0;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.'))
            return 0;
    return 1;
}

int pg_param_check(const char *name, const char *value, char *reason, size_t reason_size)
{
    struct reason_buf rb;
    char lower[NAME_BUF_SIZE];
    const struct pg_param *param = NULL;

    rb_init(&rb, reason, reason_size);
    if (name == NULL)
        name = "";
    if (value == NULL)
        value = "";

    /* Extension parameters ("cron.database_name") are placeholders PostgreSQL accepts without
     * the extension loaded: neither name nor value can be checked. */
    if (strchr(name, '.') != NULL) {
        /* ...but the name itself must be one PostgreSQL's configuration syntax reads back as
         * one name: anything else would change the meaning of the rendered configuration. */
        if (guc_name_syntax(name))
            return 0;
        rb_text(&rb, "invalid parameter name ");
        rb_quoted(&rb, name);
        rb_text(&rb, ": must start with a letter or '_' and hold only letters, digits, '_' "
                     "and '.'");
        return -1;
    }

    if (lower_name(trim_space(span_of(name)), lower, sizeof(lower))) {
        const char *why = managed_reason(lower);

        if (why != NULL) {
            rb_text(&rb, "parameter ");
            rb_quoted(&rb, name);
            rb_text(&rb, " is managed by the operator and cannot be set: ");
            rb_text(&rb, why);
            return -1;
        }
        param = pg_param_lookup(lower);
    }
    if (param == NULL) {
        rb_text(&rb, "unknown parameter ");
        rb_quoted(&rb, name);
        return -1;
    }
    if (!value_matches_type(param->type, value)) {
        rb_text(&rb, "parameter ");
        rb_quoted(&rb, name);
        rb_text(&rb, " expects a ");
        rb_text(&rb, type_name(param->type));
        rb_text(&rb, " value, got ");
        rb_quoted(&rb, value);
        return -1;
    }
    return 0;
}

int pg_param_canonical_name(const char *name, char *out, size_t out_size)
{
    return name && lower_name(trim_space(span_of(name)), out, out_size) && out[0] ? 0 : -1;
}
