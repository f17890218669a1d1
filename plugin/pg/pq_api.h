/*
 * libpq, loaded at run time (module prefix pq_api_).
 *
 * libmgo must not have a link-time dependency on libpq (a host could interpose on its symbols,
 * or load another copy), so libpq.so.5 is opened with dlopen(RTLD_LOCAL, and RTLD_DEEPBIND
 * outside sanitizer builds) on first use and its functions are called through the table below,
 * exactly like libcurl (topo/curl_api.h).
 *
 * <libpq-fe.h> is not included: building libmgo needs no libpq headers. The few types are
 * opaque here, and the constants below are the values of libpq-fe.h's enums, which are part of
 * libpq.so.5's ABI (tests/pg_probe/libpq_constants.c checks them against the installed header).
 *
 * The table is filled once per process (pthread_once) and read-only afterwards. The library is
 * never unloaded.
 */
#ifndef MGO_PG_PQ_API_H
#define MGO_PG_PQ_API_H

/* libpq's PGconn and PGresult, opaque. */
struct pq_api_conn;
struct pq_api_result;

/* ConnStatusType */
#define PQ_API_CONNECTION_OK  0
#define PQ_API_CONNECTION_BAD 1

/* PostgresPollingStatusType */
#define PQ_API_POLLING_FAILED  0
#define PQ_API_POLLING_READING 1
#define PQ_API_POLLING_WRITING 2
#define PQ_API_POLLING_OK      3

/* ExecStatusType */
#define PQ_API_EMPTY_QUERY    0
#define PQ_API_COMMAND_OK     1
#define PQ_API_TUPLES_OK      2
#define PQ_API_COPY_OUT       3
#define PQ_API_COPY_IN        4
#define PQ_API_BAD_RESPONSE   5
#define PQ_API_NONFATAL_ERROR 6
#define PQ_API_FATAL_ERROR    7
#define PQ_API_COPY_BOTH      8
#define PQ_API_SINGLE_TUPLE   9

/* PQresultErrorField codes (PG_DIAG_*) */
#define PQ_API_DIAG_SEVERITY_NONLOCALIZED 'V'
#define PQ_API_DIAG_SQLSTATE              'C'
#define PQ_API_DIAG_MESSAGE_PRIMARY       'M'

/* PQconninfoOption, as PQconninfoParse returns an array of them (keyword NULL ends it). */
struct pq_api_conninfo_option {
    char *keyword;
    char *envvar;
    char *compiled;
    char *val; /* NULL when the string did not set it */
    char *label;
    char *dispchar;
    int dispsize;
};

typedef void (*pq_api_notice_receiver)(void *arg, const struct pq_api_result *res);

struct pq_api {
    struct pq_api_conn *(*connect_start_params)(const char *const *keywords,
                                                const char *const *values, int expand_dbname);
    int (*connect_poll)(struct pq_api_conn *conn); /* PQ_API_POLLING_* */
    int (*status)(const struct pq_api_conn *conn); /* PQ_API_CONNECTION_* */
    int (*socket)(const struct pq_api_conn *conn);
    char *(*error_message)(const struct pq_api_conn *conn);
    int (*backend_pid)(const struct pq_api_conn *conn);
    int (*set_nonblocking)(struct pq_api_conn *conn, int arg);
    pq_api_notice_receiver (*set_notice_receiver)(struct pq_api_conn *conn,
                                                  pq_api_notice_receiver proc, void *arg);
    void (*finish)(struct pq_api_conn *conn);

    int (*send_query)(struct pq_api_conn *conn, const char *query);
    int (*flush)(struct pq_api_conn *conn);
    int (*consume_input)(struct pq_api_conn *conn);
    int (*is_busy)(struct pq_api_conn *conn);
    struct pq_api_result *(*get_result)(struct pq_api_conn *conn);

    int (*result_status)(const struct pq_api_result *res); /* PQ_API_* ExecStatusType */
    char *(*result_error_message)(const struct pq_api_result *res);
    char *(*result_error_field)(const struct pq_api_result *res, int fieldcode);
    int (*ntuples)(const struct pq_api_result *res);
    int (*nfields)(const struct pq_api_result *res);
    char *(*getvalue)(const struct pq_api_result *res, int row, int column);
    int (*getisnull)(const struct pq_api_result *res, int row, int column);
    void (*clear)(struct pq_api_result *res);

    struct pq_api_conninfo_option *(*conninfo_parse)(const char *conninfo, char **errmsg);
    void (*conninfo_free)(struct pq_api_conninfo_option *options);
    void (*freemem)(void *ptr);

    /* PQlibVersion() of the loaded library, e.g. 150020 for 15.20. */
    int version;
};

/*
 * The function table of libpq, loading it on the first call. Returns 0 and *ret (valid for the
 * life of the process), or -ELIBACC when libpq.so.5 cannot be loaded or lacks a function;
 * pq_api_error() then says why. Thread-safe.
 */
int pq_api_get(const struct pq_api **ret);

/* Why pq_api_get() failed ("" when it has not failed). A static string, valid forever. */
const char *pq_api_error(void);

#endif
