/*
 * Unit tests for plugin/spec/pgparams.c: the PostgreSQL 17 parameter catalogue and the
 * postgresConfig admission check of the reference operator (multigres/multigres-operator,
 * pkg/postgresconfig/validate.go).
 *
 * Expected values are literals taken from PostgreSQL 17 (pg_settings, guc_tables.c, release
 * notes) and from the reference operator's messages and rules; none is computed by the code
 * under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pgparams.h"

#define REASON_SIZE 512

/* The check accepts name=value and clears the reason. */
#define ACCEPT(name, value)                                                                        \
    do {                                                                                           \
        char reason_[REASON_SIZE] = "untouched";                                                   \
        assert_int_equal(pg_param_check((name), (value), reason_, sizeof(reason_)), 0);            \
        assert_string_equal(reason_, "");                                                          \
    } while (0)

/* The check rejects name=value with exactly this reason. */
#define REJECT(name, value, want)                                                                  \
    do {                                                                                           \
        char reason_[REASON_SIZE] = "";                                                            \
        assert_int_equal(pg_param_check((name), (value), reason_, sizeof(reason_)), -1);           \
        assert_string_equal(reason_, (want));                                                      \
    } while (0)

/* The parameter exists with this type and context. */
#define HAS_PARAM(name, want_type, want_context)                                                   \
    do {                                                                                           \
        const struct pg_param *p_ = pg_param_lookup(name);                                         \
        assert_non_null(p_);                                                                       \
        assert_int_equal(p_->type, (want_type));                                                   \
        assert_int_equal(p_->context, (want_context));                                             \
    } while (0)

/* Every parameter of PostgreSQL 17 (pg_settings.name, lower-cased), sorted. */
/* clang-format off */
static const char *const pg17_names[] = {
    "allow_alter_system", "allow_in_place_tablespaces", "allow_system_table_mods",
    "application_name", "archive_cleanup_command", "archive_command", "archive_library",
    "archive_mode", "archive_timeout", "array_nulls", "authentication_timeout", "autovacuum",
    "autovacuum_analyze_scale_factor", "autovacuum_analyze_threshold", "autovacuum_freeze_max_age",
    "autovacuum_max_workers", "autovacuum_multixact_freeze_max_age", "autovacuum_naptime",
    "autovacuum_vacuum_cost_delay", "autovacuum_vacuum_cost_limit",
    "autovacuum_vacuum_insert_scale_factor", "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_scale_factor", "autovacuum_vacuum_threshold", "autovacuum_work_mem",
    "backend_flush_after", "backslash_quote", "backtrace_functions", "bgwriter_delay",
    "bgwriter_flush_after", "bgwriter_lru_maxpages", "bgwriter_lru_multiplier", "block_size",
    "bonjour", "bonjour_name", "bytea_output", "check_function_bodies",
    "checkpoint_completion_target", "checkpoint_flush_after", "checkpoint_timeout",
    "checkpoint_warning", "client_connection_check_interval", "client_encoding",
    "client_min_messages", "cluster_name", "commit_delay", "commit_siblings",
    "commit_timestamp_buffers", "compute_query_id", "config_file", "constraint_exclusion",
    "cpu_index_tuple_cost", "cpu_operator_cost", "cpu_tuple_cost", "createrole_self_grant",
    "cursor_tuple_fraction", "data_checksums", "data_directory", "data_directory_mode",
    "data_sync_retry", "datestyle", "deadlock_timeout", "debug_assertions", "debug_deadlocks",
    "debug_discard_caches", "debug_io_direct", "debug_logical_replication_streaming",
    "debug_parallel_query", "debug_pretty_print", "debug_print_parse", "debug_print_plan",
    "debug_print_rewritten", "default_statistics_target", "default_table_access_method",
    "default_tablespace", "default_text_search_config", "default_toast_compression",
    "default_transaction_deferrable", "default_transaction_isolation",
    "default_transaction_read_only", "default_with_oids", "dynamic_library_path",
    "dynamic_shared_memory_type", "effective_cache_size", "effective_io_concurrency",
    "enable_async_append", "enable_bitmapscan", "enable_gathermerge", "enable_group_by_reordering",
    "enable_hashagg", "enable_hashjoin", "enable_incremental_sort", "enable_indexonlyscan",
    "enable_indexscan", "enable_material", "enable_memoize", "enable_mergejoin", "enable_nestloop",
    "enable_parallel_append", "enable_parallel_hash", "enable_partition_pruning",
    "enable_partitionwise_aggregate", "enable_partitionwise_join", "enable_presorted_aggregate",
    "enable_seqscan", "enable_sort", "enable_tidscan", "escape_string_warning", "event_source",
    "event_triggers", "exit_on_error", "external_pid_file", "extra_float_digits",
    "from_collapse_limit", "fsync", "full_page_writes", "geqo", "geqo_effort", "geqo_generations",
    "geqo_pool_size", "geqo_seed", "geqo_selection_bias", "geqo_threshold",
    "gin_fuzzy_search_limit", "gin_pending_list_limit", "gss_accept_delegation",
    "hash_mem_multiplier", "hba_file", "hot_standby", "hot_standby_feedback", "huge_page_size",
    "huge_pages", "huge_pages_status", "icu_validation_level", "ident_file",
    "idle_in_transaction_session_timeout", "idle_session_timeout", "ignore_checksum_failure",
    "ignore_invalid_pages", "ignore_system_indexes", "in_hot_standby", "integer_datetimes",
    "intervalstyle", "io_combine_limit", "is_superuser", "jit", "jit_above_cost",
    "jit_debugging_support", "jit_dump_bitcode", "jit_expressions", "jit_inline_above_cost",
    "jit_optimize_above_cost", "jit_profiling_support", "jit_provider", "jit_tuple_deforming",
    "join_collapse_limit", "krb_caseins_users", "krb_server_keyfile", "lc_messages", "lc_monetary",
    "lc_numeric", "lc_time", "listen_addresses", "lo_compat_privileges", "local_preload_libraries",
    "lock_timeout", "log_autovacuum_min_duration", "log_btree_build_stats", "log_checkpoints",
    "log_connections", "log_destination", "log_directory", "log_disconnections", "log_duration",
    "log_error_verbosity", "log_executor_stats", "log_file_mode", "log_filename", "log_hostname",
    "log_line_prefix", "log_lock_waits", "log_min_duration_sample", "log_min_duration_statement",
    "log_min_error_statement", "log_min_messages", "log_parameter_max_length",
    "log_parameter_max_length_on_error", "log_parser_stats", "log_planner_stats",
    "log_recovery_conflict_waits", "log_replication_commands", "log_rotation_age",
    "log_rotation_size", "log_startup_progress_interval", "log_statement",
    "log_statement_sample_rate", "log_statement_stats", "log_temp_files", "log_timezone",
    "log_transaction_sample_rate", "log_truncate_on_rotation", "logging_collector",
    "logical_decoding_work_mem", "maintenance_io_concurrency", "maintenance_work_mem",
    "max_connections", "max_files_per_process", "max_function_args", "max_identifier_length",
    "max_index_keys", "max_locks_per_transaction", "max_logical_replication_workers",
    "max_notify_queue_pages", "max_parallel_apply_workers_per_subscription",
    "max_parallel_maintenance_workers", "max_parallel_workers", "max_parallel_workers_per_gather",
    "max_pred_locks_per_page", "max_pred_locks_per_relation", "max_pred_locks_per_transaction",
    "max_prepared_transactions", "max_replication_slots", "max_slot_wal_keep_size",
    "max_stack_depth", "max_standby_archive_delay", "max_standby_streaming_delay",
    "max_sync_workers_per_subscription", "max_wal_senders", "max_wal_size", "max_worker_processes",
    "min_dynamic_shared_memory", "min_parallel_index_scan_size", "min_parallel_table_scan_size",
    "min_wal_size", "multixact_member_buffers", "multixact_offset_buffers", "notify_buffers",
    "parallel_leader_participation", "parallel_setup_cost", "parallel_tuple_cost",
    "password_encryption", "plan_cache_mode", "port", "post_auth_delay", "pre_auth_delay",
    "primary_conninfo", "primary_slot_name", "quote_all_identifiers", "random_page_cost",
    "recovery_end_command", "recovery_init_sync_method", "recovery_min_apply_delay",
    "recovery_prefetch", "recovery_target", "recovery_target_action", "recovery_target_inclusive",
    "recovery_target_lsn", "recovery_target_name", "recovery_target_time",
    "recovery_target_timeline", "recovery_target_xid", "recursive_worktable_factor",
    "remove_temp_files_after_crash", "reserved_connections", "restart_after_crash",
    "restore_command", "restrict_nonsystem_relation_kind", "role", "row_security",
    "scram_iterations", "search_path", "seed", "segment_size", "send_abort_for_crash",
    "send_abort_for_kill", "seq_page_cost", "serializable_buffers", "server_encoding",
    "server_version", "server_version_num", "session_authorization", "session_preload_libraries",
    "session_replication_role", "shared_buffers", "shared_memory_size",
    "shared_memory_size_in_huge_pages", "shared_memory_type", "shared_preload_libraries", "ssl",
    "ssl_ca_file", "ssl_cert_file", "ssl_ciphers", "ssl_crl_dir", "ssl_crl_file",
    "ssl_dh_params_file", "ssl_ecdh_curve", "ssl_key_file", "ssl_library",
    "ssl_max_protocol_version", "ssl_min_protocol_version", "ssl_passphrase_command",
    "ssl_passphrase_command_supports_reload", "ssl_prefer_server_ciphers",
    "ssl_renegotiation_limit", "standard_conforming_strings", "statement_timeout",
    "stats_fetch_consistency", "subtransaction_buffers", "summarize_wal",
    "superuser_reserved_connections", "sync_replication_slots", "synchronize_seqscans",
    "synchronized_standby_slots", "synchronous_commit", "synchronous_standby_names",
    "syslog_facility", "syslog_ident", "syslog_sequence_numbers", "syslog_split_messages",
    "tcp_keepalives_count", "tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_user_timeout",
    "temp_buffers", "temp_file_limit", "temp_tablespaces", "timezone", "timezone_abbreviations",
    "trace_connection_negotiation", "trace_lock_oidmin", "trace_lock_table", "trace_locks",
    "trace_lwlocks", "trace_notify", "trace_sort", "trace_syncscan", "trace_userlocks",
    "track_activities", "track_activity_query_size", "track_commit_timestamp", "track_counts",
    "track_functions", "track_io_timing", "track_wal_io_timing", "transaction_buffers",
    "transaction_deferrable", "transaction_isolation", "transaction_read_only",
    "transaction_timeout", "transform_null_equals", "unix_socket_directories", "unix_socket_group",
    "unix_socket_permissions", "update_process_title", "vacuum_buffer_usage_limit",
    "vacuum_cost_delay", "vacuum_cost_limit", "vacuum_cost_page_dirty", "vacuum_cost_page_hit",
    "vacuum_cost_page_miss", "vacuum_failsafe_age", "vacuum_freeze_min_age",
    "vacuum_freeze_table_age", "vacuum_multixact_failsafe_age", "vacuum_multixact_freeze_min_age",
    "vacuum_multixact_freeze_table_age", "wal_block_size", "wal_buffers", "wal_compression",
    "wal_consistency_checking", "wal_debug", "wal_decode_buffer_size", "wal_init_zero",
    "wal_keep_size", "wal_level", "wal_log_hints", "wal_receiver_create_temp_slot",
    "wal_receiver_status_interval", "wal_receiver_timeout", "wal_recycle",
    "wal_retrieve_retry_interval", "wal_segment_size", "wal_sender_timeout", "wal_skip_threshold",
    "wal_summary_keep_time", "wal_sync_method", "wal_writer_delay", "wal_writer_flush_after",
    "work_mem", "xmlbinary", "xmloption", "zero_damaged_pages"
};
/* clang-format on */

static void test_every_pg17_parameter_is_known(void **state)
{
    size_t i;

    (void)state;
    assert_int_equal(sizeof(pg17_names) / sizeof(pg17_names[0]), 392);
    for (i = 0; i < sizeof(pg17_names) / sizeof(pg17_names[0]); i++) {
        const struct pg_param *p = pg_param_lookup(pg17_names[i]);

        if (p == NULL)
            fail_msg("pg_param_lookup(\"%s\") returned NULL", pg17_names[i]);
        assert_string_equal(p->name, pg17_names[i]);
        if (p->type == PG_PARAM_ENUM)
            assert_non_null(p->enum_values);
        else
            assert_null(p->enum_values);
    }
}

static void test_contexts_of_well_known_parameters(void **state)
{
    (void)state;
    HAS_PARAM("shared_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("work_mem", PG_PARAM_INTEGER, PG_CONTEXT_USER);
    HAS_PARAM("max_connections", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("log_min_duration_statement", PG_PARAM_INTEGER, PG_CONTEXT_SUPERUSER);
    HAS_PARAM("checkpoint_timeout", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP);
    HAS_PARAM("fsync", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("random_page_cost", PG_PARAM_REAL, PG_CONTEXT_USER);
    HAS_PARAM("log_line_prefix", PG_PARAM_STRING, PG_CONTEXT_SIGHUP);
    HAS_PARAM("wal_level", PG_PARAM_ENUM, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("block_size", PG_PARAM_INTEGER, PG_CONTEXT_INTERNAL);
    HAS_PARAM("server_version", PG_PARAM_STRING, PG_CONTEXT_INTERNAL);
    HAS_PARAM("log_connections", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND);
    HAS_PARAM("jit_debugging_support", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER_BACKEND);
    HAS_PARAM("ignore_system_indexes", PG_PARAM_BOOL, PG_CONTEXT_BACKEND);
    HAS_PARAM("post_auth_delay", PG_PARAM_INTEGER, PG_CONTEXT_BACKEND);
    HAS_PARAM("shared_preload_libraries", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("autovacuum_vacuum_scale_factor", PG_PARAM_REAL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("search_path", PG_PARAM_STRING, PG_CONTEXT_USER);
    HAS_PARAM("datestyle", PG_PARAM_STRING, PG_CONTEXT_USER);
    HAS_PARAM("timezone", PG_PARAM_STRING, PG_CONTEXT_USER);
    HAS_PARAM("intervalstyle", PG_PARAM_ENUM, PG_CONTEXT_USER);
}

/* Parameters PostgreSQL 16 and 17 introduced. */
static void test_parameters_added_in_16_and_17(void **state)
{
    (void)state;
    /* 17 */
    HAS_PARAM("summarize_wal", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("wal_summary_keep_time", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP);
    HAS_PARAM("allow_alter_system", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("transaction_timeout", PG_PARAM_INTEGER, PG_CONTEXT_USER);
    HAS_PARAM("sync_replication_slots", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("synchronized_standby_slots", PG_PARAM_STRING, PG_CONTEXT_SIGHUP);
    HAS_PARAM("io_combine_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER);
    HAS_PARAM("commit_timestamp_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("multixact_member_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("multixact_offset_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("notify_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("serializable_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("subtransaction_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("transaction_buffers", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("max_notify_queue_pages", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("event_triggers", PG_PARAM_BOOL, PG_CONTEXT_SUPERUSER);
    HAS_PARAM("huge_pages_status", PG_PARAM_ENUM, PG_CONTEXT_INTERNAL);
    HAS_PARAM("enable_group_by_reordering", PG_PARAM_BOOL, PG_CONTEXT_USER);
    HAS_PARAM("trace_connection_negotiation", PG_PARAM_BOOL, PG_CONTEXT_POSTMASTER);
    /* 16 */
    HAS_PARAM("debug_io_direct", PG_PARAM_STRING, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("scram_iterations", PG_PARAM_INTEGER, PG_CONTEXT_USER);
    HAS_PARAM("send_abort_for_crash", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("send_abort_for_kill", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("icu_validation_level", PG_PARAM_ENUM, PG_CONTEXT_USER);
    HAS_PARAM("createrole_self_grant", PG_PARAM_STRING, PG_CONTEXT_USER);
    HAS_PARAM("reserved_connections", PG_PARAM_INTEGER, PG_CONTEXT_POSTMASTER);
    HAS_PARAM("vacuum_buffer_usage_limit", PG_PARAM_INTEGER, PG_CONTEXT_USER);
    HAS_PARAM("debug_logical_replication_streaming", PG_PARAM_ENUM, PG_CONTEXT_USER);
    HAS_PARAM("debug_parallel_query", PG_PARAM_ENUM, PG_CONTEXT_USER);
    HAS_PARAM("enable_presorted_aggregate", PG_PARAM_BOOL, PG_CONTEXT_USER);
    HAS_PARAM("gss_accept_delegation", PG_PARAM_BOOL, PG_CONTEXT_SIGHUP);
    HAS_PARAM("max_parallel_apply_workers_per_subscription", PG_PARAM_INTEGER, PG_CONTEXT_SIGHUP);
}

/* Parameters PostgreSQL 16 and 17 removed or renamed are unknown. */
static void test_removed_parameters_are_unknown(void **state)
{
    (void)state;
    assert_null(pg_param_lookup("old_snapshot_threshold"));   /* removed in 17 */
    assert_null(pg_param_lookup("db_user_namespace"));        /* removed in 17 */
    assert_null(pg_param_lookup("trace_recovery_messages"));  /* removed in 17 */
    assert_null(pg_param_lookup("promote_trigger_file"));     /* removed in 16 */
    assert_null(pg_param_lookup("vacuum_defer_cleanup_age")); /* removed in 16 */
    assert_null(pg_param_lookup("force_parallel_mode"));      /* renamed in 16 */
    assert_null(pg_param_lookup("logical_replication_mode")); /* renamed in 16 */
    assert_null(pg_param_lookup("lc_collate"));               /* removed in 16 */
    assert_null(pg_param_lookup("lc_ctype"));                 /* removed in 16 */
    REJECT("old_snapshot_threshold", "-1", "unknown parameter \"old_snapshot_threshold\"");
    REJECT("force_parallel_mode", "on", "unknown parameter \"force_parallel_mode\"");
}

static void test_lookup_unknown_names(void **state)
{
    (void)state;
    assert_null(pg_param_lookup(NULL));
    assert_null(pg_param_lookup(""));
    assert_null(pg_param_lookup("foo"));
    assert_null(pg_param_lookup("shared_buffer"));
    assert_null(pg_param_lookup("shared_buffers_"));
    assert_null(pg_param_lookup(" work_mem")); /* lookup takes names as they are */
    assert_null(pg_param_lookup("work_mem "));
    assert_null(pg_param_lookup("auto_explain.log_min_duration"));
    assert_null(pg_param_lookup("a"));
    assert_null(pg_param_lookup("zzzz"));
}

/* PostgreSQL compares parameter names case-insensitively. */
static void test_lookup_is_case_insensitive(void **state)
{
    const struct pg_param *p;

    (void)state;
    p = pg_param_lookup("SHARED_BUFFERS");
    assert_non_null(p);
    assert_string_equal(p->name, "shared_buffers");
    p = pg_param_lookup("Work_Mem");
    assert_non_null(p);
    assert_string_equal(p->name, "work_mem");
    p = pg_param_lookup("DateStyle");
    assert_non_null(p);
    assert_string_equal(p->name, "datestyle");
    p = pg_param_lookup("TimeZone");
    assert_non_null(p);
    assert_string_equal(p->name, "timezone");
    p = pg_param_lookup("IntervalStyle");
    assert_non_null(p);
    assert_string_equal(p->name, "intervalstyle");
    p = pg_param_lookup("ALLOW_ALTER_SYSTEM");
    assert_non_null(p);
    assert_string_equal(p->name, "allow_alter_system");
    p = pg_param_lookup("ZERO_DAMAGED_PAGES");
    assert_non_null(p);
    assert_string_equal(p->name, "zero_damaged_pages");
}

static void assert_values(const char *name, const char *const *want, size_t count)
{
    const struct pg_param *p = pg_param_lookup(name);
    size_t i;

    assert_non_null(p);
    assert_int_equal(p->type, PG_PARAM_ENUM);
    assert_non_null(p->enum_values);
    for (i = 0; i < count; i++) {
        assert_non_null(p->enum_values[i]);
        assert_string_equal(p->enum_values[i], want[i]);
    }
    assert_null(p->enum_values[count]);
}

#define ASSERT_VALUES(name, ...)                                                                   \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        assert_values((name), want_, sizeof(want_) / sizeof(want_[0]));                            \
    } while (0)

/* Enum values as pg_settings.enumvals lists them. */
static void test_enum_values(void **state)
{
    (void)state;
    ASSERT_VALUES("wal_level", "minimal", "replica", "logical");
    ASSERT_VALUES("synchronous_commit", "local", "remote_write", "remote_apply", "on", "off");
    ASSERT_VALUES("log_statement", "none", "ddl", "mod", "all");
    ASSERT_VALUES("default_transaction_isolation", "serializable", "repeatable read",
                  "read committed", "read uncommitted");
    ASSERT_VALUES("ssl_max_protocol_version", "", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3");
    ASSERT_VALUES("ssl_min_protocol_version", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3");
    ASSERT_VALUES("huge_pages", "off", "on", "try");
    ASSERT_VALUES("archive_mode", "always", "on", "off");
    ASSERT_VALUES("password_encryption", "md5", "scram-sha-256");
    ASSERT_VALUES("intervalstyle", "postgres", "postgres_verbose", "sql_standard", "iso_8601");
    ASSERT_VALUES("log_min_messages", "debug5", "debug4", "debug3", "debug2", "debug1", "info",
                  "notice", "warning", "error", "log", "fatal", "panic");
    ASSERT_VALUES("client_min_messages", "debug5", "debug4", "debug3", "debug2", "debug1", "log",
                  "notice", "warning", "error");
    ASSERT_VALUES("debug_parallel_query", "off", "on", "regress");
    ASSERT_VALUES("debug_logical_replication_streaming", "buffered", "immediate");
    ASSERT_VALUES("huge_pages_status", "off", "on", "unknown");
    ASSERT_VALUES("icu_validation_level", "disabled", "debug5", "debug4", "debug3", "debug2",
                  "debug1", "log", "notice", "warning", "error");
    assert_null(pg_param_lookup("work_mem")->enum_values);
    assert_null(pg_param_lookup("log_line_prefix")->enum_values);
}

static void test_check_known_and_unknown_names(void **state)
{
    (void)state;
    ACCEPT("max_connections", "200");
    ACCEPT("log_line_prefix", "%m [%p] ");
    REJECT("maxx_connections", "200", "unknown parameter \"maxx_connections\"");
    REJECT("foo", "1", "unknown parameter \"foo\"");
    REJECT("Foo", "1", "unknown parameter \"Foo\""); /* the name as given */
    REJECT("", "1", "unknown parameter \"\"");
    REJECT(NULL, "1", "unknown parameter \"\"");
    REJECT("shared_buffers_", "128MB", "unknown parameter \"shared_buffers_\"");
}

/* Names are trimmed and lower-cased before the lookup (strings.TrimSpace, strings.ToLower). */
static void test_check_name_case_and_space(void **state)
{
    (void)state;
    ACCEPT("Max_Connections", "200");
    ACCEPT("SHARED_BUFFERS", "1GB");
    ACCEPT("DateStyle", "ISO, MDY");
    ACCEPT("TimeZone", "UTC");
    ACCEPT("IntervalStyle", "postgres");
    ACCEPT(" work_mem ", "4MB");
    ACCEPT("work_mem\t\n", "4MB");
    ACCEPT("\xc2\xa0work_mem\xe3\x80\x80", "4MB"); /* U+00A0 and U+3000 are white space */
    ACCEPT("wor\xe2\x84\xaa_mem", "4MB");          /* KELVIN SIGN lower-cases to 'k' */
    REJECT("work mem", "4MB", "unknown parameter \"work mem\"");
    REJECT("Work_Mem", "lots", "parameter \"Work_Mem\" expects a integer value, got \"lots\"");
}

/* Names and values are quoted as Go's %q does. */
static void test_check_quoting(void **state)
{
    (void)state;
    REJECT("a\"b", "1", "unknown parameter \"a\\\"b\"");
    REJECT("a\\b", "1", "unknown parameter \"a\\\\b\"");
    REJECT("tab\there", "1", "unknown parameter \"tab\\there\"");
    REJECT("nl\nx", "1", "unknown parameter \"nl\\nx\"");
    REJECT("\x01\x7f", "1", "unknown parameter \"\\x01\\x7f\"");
    REJECT("caf\xc3\xa9", "1", "unknown parameter \"caf\xc3\xa9\"");
    REJECT("x\xc2\xa0y", "1", "unknown parameter \"x\\u00a0y\"");
    REJECT("zw\xe2\x80\x8b", "1", "unknown parameter \"zw\\u200b\"");
    REJECT("emoji\xf0\x9f\x98\x80", "1", "unknown parameter \"emoji\xf0\x9f\x98\x80\"");
    REJECT("tag\xf3\xa0\x80\x81", "1", "unknown parameter \"tag\\U000e0001\"");
    REJECT("bad\xff", "1", "unknown parameter \"bad\\xff\"");
    REJECT("\xc0\x80", "1", "unknown parameter \"\\xc0\\x80\""); /* overlong: invalid UTF-8 */
    REJECT("fsync", "\"yes\"", "parameter \"fsync\" expects a bool value, got \"\\\"yes\\\"\"");
}

/* PostgreSQL's bool spellings; the reference accepts exactly these, in any case, and not the
 * unique prefixes ("t", "of") PostgreSQL itself also takes. */
static void test_check_bool(void **state)
{
    static const char *const good[] = {"on",  "off", "true",   "false", "yes",  "no",
                                       "1",   "0",   "ON",     "Off",   "TRUE", "False",
                                       "YES", "No",  " true ", "\ton\n"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ACCEPT("fsync", good[i]);
    REJECT("fsync", "maybe", "parameter \"fsync\" expects a bool value, got \"maybe\"");
    REJECT("fsync", "t", "parameter \"fsync\" expects a bool value, got \"t\"");
    REJECT("fsync", "of", "parameter \"fsync\" expects a bool value, got \"of\"");
    REJECT("fsync", "2", "parameter \"fsync\" expects a bool value, got \"2\"");
    REJECT("fsync", "", "parameter \"fsync\" expects a bool value, got \"\"");
    REJECT("fsync", NULL, "parameter \"fsync\" expects a bool value, got \"\"");
    REJECT("wal_log_hints", "enabled",
           "parameter \"wal_log_hints\" expects a bool value, got \"enabled\"");
}

/* Integers with optional memory and time units (kB, MB, GB, TB, B, us, ms, s, min, h, d). */
static void test_check_integer(void **state)
{
    static const char *const good[] = {
        "200", "0",    "-1", "+5", "8kB",   "16MB",   "1GB", "1TB",   "8192B",   "100ms",
        "5s",  "1min", "1h", "1d", "250us", " 64MB ", "1 h", "5 min", "\t64MB\n"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ACCEPT("shared_buffers", good[i]);
    ACCEPT("log_min_duration_statement", "-1");
    ACCEPT("checkpoint_timeout", "30s");
    ACCEPT("work_mem", "64MB");
    /* The reference does not check the unit against the parameter. */
    ACCEPT("max_connections", "5fortnights");
    REJECT("max_connections", "yes",
           "parameter \"max_connections\" expects a integer value, got \"yes\"");
    REJECT("max_connections", "1.5",
           "parameter \"max_connections\" expects a integer value, got \"1.5\"");
    REJECT("shared_buffers", "1.5GB",
           "parameter \"shared_buffers\" expects a integer value, got \"1.5GB\"");
    REJECT("shared_buffers", "MB",
           "parameter \"shared_buffers\" expects a integer value, got \"MB\"");
    REJECT("shared_buffers", "12MB!",
           "parameter \"shared_buffers\" expects a integer value, got \"12MB!\"");
    REJECT("work_mem", "", "parameter \"work_mem\" expects a integer value, got \"\"");
    REJECT("work_mem", "5 min 3",
           "parameter \"work_mem\" expects a integer value, got \"5 min 3\"");
    REJECT("work_mem", "5_000", "parameter \"work_mem\" expects a integer value, got \"5_000\"");
    REJECT("work_mem", "1e3", "parameter \"work_mem\" expects a integer value, got \"1e3\"");
    /* PostgreSQL reads 0x1F and 017 as hex and octal; the reference's digit-and-letters rule does
     * not: "0x1F" is a 0 followed by "x1F", which is not all letters. */
    REJECT("work_mem", "0x1F", "parameter \"work_mem\" expects a integer value, got \"0x1F\"");
    ACCEPT("work_mem", "017");
    ACCEPT("work_mem", "0xff"); /* "0" then the letters "xff" */
}

/* Reals as Go's strconv.ParseFloat reads them. */
static void test_check_real(void **state)
{
    static const char *const good[] = {"1.1",
                                       "4",
                                       "0",
                                       "-0.5",
                                       "+2",
                                       ".5",
                                       "5.",
                                       "1e-3",
                                       "1.5E+10",
                                       " 1.1 ",
                                       "1_000.5",
                                       "0x1p-2",
                                       "0X1.8P1",
                                       "inf",
                                       "-Inf",
                                       "+infinity",
                                       "NaN",
                                       "1e-400",
                                       "1.7976931348623157e308",
                                       "0x1.fffffffffffffp1023"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ACCEPT("random_page_cost", good[i]);
    ACCEPT("checkpoint_completion_target", "0.9");
    ACCEPT("autovacuum_vacuum_scale_factor", "0.2");
    REJECT("random_page_cost", "cheap",
           "parameter \"random_page_cost\" expects a real value, got \"cheap\"");
    REJECT("random_page_cost", "", "parameter \"random_page_cost\" expects a real value, got \"\"");
    REJECT("random_page_cost", "1,5",
           "parameter \"random_page_cost\" expects a real value, got \"1,5\"");
    REJECT("random_page_cost", "1.2.3",
           "parameter \"random_page_cost\" expects a real value, got \"1.2.3\"");
    REJECT("random_page_cost", "1e",
           "parameter \"random_page_cost\" expects a real value, got \"1e\"");
    REJECT("random_page_cost", ".",
           "parameter \"random_page_cost\" expects a real value, got \".\"");
    REJECT("random_page_cost", "+nan",
           "parameter \"random_page_cost\" expects a real value, got \"+nan\"");
    REJECT("random_page_cost", "infin",
           "parameter \"random_page_cost\" expects a real value, got \"infin\"");
    REJECT("random_page_cost", "_1",
           "parameter \"random_page_cost\" expects a real value, got \"_1\"");
    REJECT("random_page_cost", "0x1", /* a hex float needs a p exponent */
           "parameter \"random_page_cost\" expects a real value, got \"0x1\"");
    REJECT("random_page_cost", "4MB",
           "parameter \"random_page_cost\" expects a real value, got \"4MB\"");
    /* Out of range: beyond the largest double (an overflow is an error, an underflow is not). */
    REJECT("random_page_cost", "1e400",
           "parameter \"random_page_cost\" expects a real value, got \"1e400\"");
    REJECT("random_page_cost", "-1e400",
           "parameter \"random_page_cost\" expects a real value, got \"-1e400\"");
    REJECT("random_page_cost", "1.7976931348623159e308",
           "parameter \"random_page_cost\" expects a real value, got \"1.7976931348623159e308\"");
    REJECT("random_page_cost", "0x1p1024",
           "parameter \"random_page_cost\" expects a real value, got \"0x1p1024\"");
    REJECT("random_page_cost", "0x1.fffffffffffff8p1023",
           "parameter \"random_page_cost\" expects a real value, got \"0x1.fffffffffffff8p1023\"");
}

/* Enum and string values are not checked by the reference: PostgreSQL checks them at start. */
static void test_check_enum_and_string(void **state)
{
    (void)state;
    ACCEPT("log_statement", "ddl");
    ACCEPT("log_statement", "DDL");
    ACCEPT("log_statement", "bogus");
    ACCEPT("synchronous_commit", "remote_apply");
    ACCEPT("default_transaction_isolation", "read committed");
    ACCEPT("wal_sync_method", "");
    ACCEPT("log_line_prefix", "%m [%p] ");
    ACCEPT("search_path", "\"$user\", public");
    ACCEPT("shared_preload_libraries", "pg_stat_statements,auto_explain");
    ACCEPT("application_name", "");
}

static void test_check_managed_names(void **state)
{
    (void)state;
    REJECT("port", "5433",
           "parameter \"port\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("listen_addresses", "127.0.0.1",
           "parameter \"listen_addresses\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("unix_socket_directories", "/tmp",
           "parameter \"unix_socket_directories\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("data_directory", "/data",
           "parameter \"data_directory\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("hba_file", "/etc/pg_hba.conf",
           "parameter \"hba_file\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("ident_file", "/etc/pg_ident.conf",
           "parameter \"ident_file\" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    REJECT("wal_level", "replica",
           "parameter \"wal_level\" is managed by the operator and cannot be set: "
           "managed by the operator; multigres requires wal_level=logical");
    /* Even the value the operator itself uses is refused. */
    REJECT("wal_level", "logical",
           "parameter \"wal_level\" is managed by the operator and cannot be set: "
           "managed by the operator; multigres requires wal_level=logical");
    REJECT("WAL_LEVEL", "minimal",
           "parameter \"WAL_LEVEL\" is managed by the operator and cannot be set: "
           "managed by the operator; multigres requires wal_level=logical");
    /* Managed names win over value checks: "abc" is no integer but the name is reported. */
    REJECT(" Port ", "abc",
           "parameter \" Port \" is managed by the operator and cannot be set: "
           "pinned by the operator on the pgctld command line");
    /* Close relatives are ordinary parameters. */
    ACCEPT("unix_socket_permissions", "0777");
    ACCEPT("wal_log_hints", "on");
}

/* Names with a dot are extension parameters, accepted with any value. */
static void test_check_dotted_names(void **state)
{
    (void)state;
    ACCEPT("auto_explain.log_min_duration", "10s");
    ACCEPT("cron.database_name", "postgres");
    ACCEPT("pg_stat_statements.max", "not a number");
    ACCEPT("foo.bar", "");
    ACCEPT("foo.bar", NULL);
    ACCEPT("Custom.Thing", "anything");
    ACCEPT("shared_buffers.", "x");
    ACCEPT("port.x", "1"); /* the dot is checked before the managed names */
}

/* mgo's addition: a dotted name must still be one name in PostgreSQL's configuration syntax
 * (the reference accepts these, and renders a configuration PostgreSQL cannot read). */
static void test_check_dotted_name_syntax(void **state)
{
    (void)state;
    const char *why =
        ": must start with a letter or '_' and hold only letters, digits, '_' and '.'";
    char want[256];
    (void)snprintf(want, sizeof(want), "invalid parameter name \".\"%s", why);
    REJECT(".", "x", want);
    (void)snprintf(want, sizeof(want), "invalid parameter name \"x.y = 1\"%s", why);
    REJECT("x.y = 1", "2", want);
    (void)snprintf(want, sizeof(want), "invalid parameter name \"1x.y\"%s", why);
    REJECT("1x.y", "2", want);
    (void)snprintf(want, sizeof(want), "invalid parameter name \"a.b\\nhba_file\"%s", why);
    REJECT("a.b\nhba_file", "/tmp/x", want);
}

/* Internal (read-only) parameters pass the reference check: it only looks at names and types. */
static void test_check_internal_parameters(void **state)
{
    (void)state;
    ACCEPT("block_size", "8192");
    ACCEPT("server_version", "17.5");
    REJECT("data_checksums", "sometimes",
           "parameter \"data_checksums\" expects a bool value, got \"sometimes\"");
}

/* The reason is truncated to its buffer, NUL-terminated, never in the middle of a character. */
static void test_check_reason_truncation(void **state)
{
    char small[10];
    char exact[21];
    char one_more[22];
    char fits[23];
    char untouched[4] = "abc";

    (void)state;
    assert_int_equal(pg_param_check("foo", "1", small, sizeof(small)), -1);
    assert_string_equal(small, "unknown p");
    /* `unknown parameter "é"` is 22 bytes; é is two. */
    assert_int_equal(pg_param_check("\xc3\xa9", "1", exact, sizeof(exact)), -1);
    assert_string_equal(exact, "unknown parameter \"");
    assert_int_equal(pg_param_check("\xc3\xa9", "1", one_more, sizeof(one_more)), -1);
    assert_string_equal(one_more, "unknown parameter \"\xc3\xa9");
    assert_int_equal(pg_param_check("\xc3\xa9", "1", fits, sizeof(fits)), -1);
    assert_string_equal(fits, "unknown parameter \"\xc3\xa9\"");
    /* An escape is not split either. */
    assert_int_equal(pg_param_check("\x01", "1", exact, sizeof(exact)), -1);
    assert_string_equal(exact, "unknown parameter \"");
    /* No buffer, or an empty one: only the result. */
    assert_int_equal(pg_param_check("foo", "1", NULL, 0), -1);
    assert_int_equal(pg_param_check("foo", "1", untouched, 0), -1);
    assert_string_equal(untouched, "abc");
    assert_int_equal(pg_param_check("work_mem", "4MB", NULL, 0), 0);
    assert_int_equal(pg_param_check("foo", "1", small, 1), -1);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pg17_parameter_is_known),
        cmocka_unit_test(test_contexts_of_well_known_parameters),
        cmocka_unit_test(test_parameters_added_in_16_and_17),
        cmocka_unit_test(test_removed_parameters_are_unknown),
        cmocka_unit_test(test_lookup_unknown_names),
        cmocka_unit_test(test_lookup_is_case_insensitive),
        cmocka_unit_test(test_enum_values),
        cmocka_unit_test(test_check_known_and_unknown_names),
        cmocka_unit_test(test_check_name_case_and_space),
        cmocka_unit_test(test_check_quoting),
        cmocka_unit_test(test_check_bool),
        cmocka_unit_test(test_check_integer),
        cmocka_unit_test(test_check_real),
        cmocka_unit_test(test_check_enum_and_string),
        cmocka_unit_test(test_check_managed_names),
        cmocka_unit_test(test_check_dotted_names),
        cmocka_unit_test(test_check_dotted_name_syntax),
        cmocka_unit_test(test_check_internal_parameters),
        cmocka_unit_test(test_check_reason_truncation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
