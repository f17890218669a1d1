/*
 * plugin/pg/pq_api.h declares libpq's constants and PQconninfoOption itself (building libmgo
 * needs no libpq headers); this file, built only when <libpq-fe.h> is installed, checks them
 * against the real header at compile time.
 */
#include <stddef.h>

#include <libpq-fe.h>

#include "pg/pq_api.h"

_Static_assert(PQ_API_CONNECTION_OK == CONNECTION_OK, "CONNECTION_OK");
_Static_assert(PQ_API_CONNECTION_BAD == CONNECTION_BAD, "CONNECTION_BAD");
_Static_assert(PQ_API_POLLING_FAILED == PGRES_POLLING_FAILED, "PGRES_POLLING_FAILED");
_Static_assert(PQ_API_POLLING_READING == PGRES_POLLING_READING, "PGRES_POLLING_READING");
_Static_assert(PQ_API_POLLING_WRITING == PGRES_POLLING_WRITING, "PGRES_POLLING_WRITING");
_Static_assert(PQ_API_POLLING_OK == PGRES_POLLING_OK, "PGRES_POLLING_OK");
_Static_assert(PQ_API_EMPTY_QUERY == PGRES_EMPTY_QUERY, "PGRES_EMPTY_QUERY");
_Static_assert(PQ_API_COMMAND_OK == PGRES_COMMAND_OK, "PGRES_COMMAND_OK");
_Static_assert(PQ_API_TUPLES_OK == PGRES_TUPLES_OK, "PGRES_TUPLES_OK");
_Static_assert(PQ_API_COPY_OUT == PGRES_COPY_OUT, "PGRES_COPY_OUT");
_Static_assert(PQ_API_COPY_IN == PGRES_COPY_IN, "PGRES_COPY_IN");
_Static_assert(PQ_API_BAD_RESPONSE == PGRES_BAD_RESPONSE, "PGRES_BAD_RESPONSE");
_Static_assert(PQ_API_NONFATAL_ERROR == PGRES_NONFATAL_ERROR, "PGRES_NONFATAL_ERROR");
_Static_assert(PQ_API_FATAL_ERROR == PGRES_FATAL_ERROR, "PGRES_FATAL_ERROR");
_Static_assert(PQ_API_COPY_BOTH == PGRES_COPY_BOTH, "PGRES_COPY_BOTH");
_Static_assert(PQ_API_SINGLE_TUPLE == PGRES_SINGLE_TUPLE, "PGRES_SINGLE_TUPLE");
_Static_assert(sizeof(ConnStatusType) == sizeof(int), "enums are passed as int");
_Static_assert(sizeof(ExecStatusType) == sizeof(int), "enums are passed as int");
_Static_assert(sizeof(PostgresPollingStatusType) == sizeof(int), "enums are passed as int");
_Static_assert(PQ_API_DIAG_SEVERITY_NONLOCALIZED == PG_DIAG_SEVERITY_NONLOCALIZED, "severity");
_Static_assert(PQ_API_DIAG_SQLSTATE == PG_DIAG_SQLSTATE, "PG_DIAG_SQLSTATE");
_Static_assert(PQ_API_DIAG_MESSAGE_PRIMARY == PG_DIAG_MESSAGE_PRIMARY, "PG_DIAG_MESSAGE_PRIMARY");

#define SAME_MEMBER(m)                                                                             \
    _Static_assert(offsetof(struct pq_api_conninfo_option, m) == offsetof(PQconninfoOption, m),    \
                   "PQconninfoOption." #m)
SAME_MEMBER(keyword);
SAME_MEMBER(envvar);
SAME_MEMBER(compiled);
SAME_MEMBER(val);
SAME_MEMBER(label);
SAME_MEMBER(dispchar);
SAME_MEMBER(dispsize);
_Static_assert(sizeof(struct pq_api_conninfo_option) == sizeof(PQconninfoOption),
               "sizeof PQconninfoOption");

/* Something to link, so that the translation unit is not empty. */
int pg_probe_libpq_constants_checked(void);
int pg_probe_libpq_constants_checked(void)
{
    return 1;
}
