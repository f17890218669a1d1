/* PostgreSQL connections with deadlines (see pg.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "pg/pg.h"
#include "pg/pq_api.h"

/* A promote's server-side wait is cut to this many seconds (a day). */
#define PG_MAX_WAIT_SECONDS 86400
/* Hosts longer than this are not numeric addresses. */
#define PG_MAX_HOST 256

struct pg_conn {
    const struct pq_api *pq;
    struct pq_api_conn *conn; /* NULL once closed by a timeout or a broken connection */
    int backend_pid;
    char *conninfo; /* a copy, for the cancel connection; wiped when freed */
    size_t conninfo_len;
    char target[128];     /* "host:port", for messages */
    char closed_why[192]; /* why conn is NULL */
    char sqlstate[6];     /* of the last statement's first server error, "" when none */
};

/* Called with each result of a query that succeeded; returns 0 or a negative errno. */
typedef int (*result_fn)(struct pg_conn *c, const struct pq_api_result *res, size_t index,
                         void *arg, char *err, size_t err_size);

/* ---- time, messages ------------------------------------------------------------------------ */

int64_t pg_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whitespace runs (libpq's messages span lines) become one space; no trailing space. */
static void flatten(char *s)
{
    size_t o = 0;
    int space = 0;

    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t' || s[i] == ' ') {
            space = o > 0;
            continue;
        }
        if (space)
            s[o++] = ' ';
        space = 0;
        s[o++] = s[i];
    }
    s[o] = '\0';
}

static void set_err(char *err, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (!err || size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, size, fmt, ap);
    va_end(ap);
    flatten(err);
    core_utf8_sanitize(err);
}

/* libpq's notices and warnings (and the server's) go to the host's log, never to stderr. */
static void on_notice(void *arg, const struct pq_api_result *res)
{
    const struct pq_api *pq;
    const char *target = arg, *severity, *text;
    char msg[1024];
    int32_t level = MGO_LOG_DEBUG;

    if (pq_api_get(&pq) < 0) /* cannot happen: libpq called us */
        return;
    severity = pq->result_error_field(res, PQ_API_DIAG_SEVERITY_NONLOCALIZED);
    text = pq->result_error_field(res, PQ_API_DIAG_MESSAGE_PRIMARY);
    if (!text)
        text = pq->result_error_message(res);
    if (severity && (strcmp(severity, "WARNING") == 0 || strcmp(severity, "ERROR") == 0 ||
                     strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
        level = MGO_LOG_WARN;
    (void)snprintf(msg, sizeof(msg), "%.900s", text ? text : "");
    flatten(msg);
    core_log(level, "postgres %s: %s: %s", target ? target : "?", severity ? severity : "NOTICE",
             msg);
}

/* ---- waiting ------------------------------------------------------------------------------- */

/* Wait until `fd` is ready for `events` or `until` passes: 0, -ETIMEDOUT, or -EIO. */
static int wait_socket(int fd, short events, int64_t until)
{
    struct pollfd p = {.fd = fd, .events = events};

    if (fd < 0)
        return -EIO;
    for (;;) {
        int64_t left = until - pg_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0; /* POLLERR and POLLHUP too: libpq reads the error */
        if (n < 0 && errno != EINTR)
            return -EIO;
    }
}

/* The part of the time left that a query keeps for its cancel. */
static int64_t cancel_reserve(int64_t left)
{
    return left / 4 < PG_CANCEL_RESERVE_MS ? left / 4 : PG_CANCEL_RESERVE_MS;
}

/* ---- connecting ---------------------------------------------------------------------------- */

/* The n-th entry (from 0) of a comma-separated list into buf; "" past its end or when it does
 * not fit (then *ret_cut). */
static void list_entry(const char *list, size_t n, char *buf, size_t size, int *ret_cut)
{
    const char *p = list ? list : "";
    size_t len;

    buf[0] = '\0';
    *ret_cut = 0;
    for (size_t i = 0; i < n; i++) {
        p = strchr(p, ',');
        if (!p)
            return;
        p++;
    }
    len = strcspn(p, ",");
    if (len >= size) {
        *ret_cut = 1;
        return;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
}

static size_t list_length(const char *list)
{
    size_t n = 1;
    if (!list || !list[0])
        return 0;
    for (const char *p = list; (p = strchr(p, ',')) != NULL; p++)
        n++;
    return n;
}

static int is_numeric_address(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

/* Every host entry needs no name lookup: a hostaddr, a socket directory, or a numeric host. */
static int check_hosts(const char *host, const char *hostaddr, char *err, size_t err_size)
{
    size_t n_host = list_length(host), n_addr = list_length(hostaddr);
    size_t n = n_host > n_addr ? n_host : n_addr;
    if (n > 1) {
        /* a query past its deadline is cancelled over a second connection, which must reach
         * the same server: one host only */
        set_err(err, err_size, "conninfo: one host only (a list of %zu was given)", n);
        return -EINVAL;
    }
    char h[PG_MAX_HOST], a[PG_MAX_HOST];
    int cut_h, cut_a;

    for (size_t i = 0; i < n; i++) {
        list_entry(hostaddr, i, a, sizeof(a), &cut_a);
        list_entry(host, i, h, sizeof(h), &cut_h);
        if (a[0] || cut_a)
            continue; /* libpq connects to hostaddr; host only names it */
        if (!cut_h && (h[0] == '\0' || h[0] == '/' || h[0] == '@' || is_numeric_address(h)))
            continue;
        set_err(err, err_size,
                "conninfo: host \"%.64s%s\" is a name, which libpq would resolve with a blocking "
                "DNS lookup that no deadline bounds: resolve it first and pass the address "
                "(host or hostaddr)",
                h, cut_h ? "..." : "");
        return -EINVAL;
    }
    return 0;
}

/* Check conninfo and describe its server as "host:port" for messages. */
static int inspect_conninfo(const struct pq_api *pq, const char *conninfo, char *target,
                            size_t target_size, char *err, size_t err_size)
{
    struct pq_api_conninfo_option *opts;
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    char *why = NULL;
    int rc;

    opts = pq->conninfo_parse(conninfo, &why);
    if (!opts) {
        if (!why)
            return -ENOMEM;
        set_err(err, err_size, "conninfo: %s", why);
        pq->freemem(why);
        return -EINVAL;
    }
    for (const struct pq_api_conninfo_option *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    rc = check_hosts(host, hostaddr, err, err_size);
    if (rc == 0) {
        const char *shown = hostaddr && hostaddr[0] ? hostaddr : host && host[0] ? host : "local";
        if (port && port[0])
            (void)snprintf(target, target_size, "%.80s:%.32s", shown, port);
        else
            (void)snprintf(target, target_size, "%.80s", shown);
    }
    pq->conninfo_free(opts);
    return rc;
}

int pg_conninfo_address(const char *conninfo, char *host, size_t host_size, long *port, char *err,
                        size_t err_size)
{
    const struct pq_api *pq;
    char *why = NULL;
    int rc = pq_api_get(&pq);
    if (rc < 0) {
        set_err(err, err_size, "%s", pq_api_error());
        return rc;
    }
    struct pq_api_conninfo_option *opts = pq->conninfo_parse(conninfo, &why);
    if (!opts) {
        if (!why)
            return -ENOMEM;
        set_err(err, err_size, "conninfo: %s", why);
        pq->freemem(why);
        return -EINVAL;
    }
    const char *h = NULL, *a = NULL, *pt = NULL;
    for (const struct pq_api_conninfo_option *o = opts; o->keyword; o++) {
        if (!o->val || !o->val[0])
            continue;
        if (strcmp(o->keyword, "host") == 0)
            h = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            a = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            pt = o->val;
    }
    const char *shown = a ? a : h;
    char *end = NULL;
    long num = pt ? strtol(pt, &end, 10) : 0;
    rc = 0;
    if (!shown || strchr(shown, ',') || shown[0] == '/' || shown[0] == '@' ||
        strlen(shown) >= host_size) {
        set_err(err, err_size, "conninfo: needs one network host (host= or hostaddr=)");
        rc = -EINVAL;
    } else if (!pt || *end != '\0' || end == pt || num < 1 || num > 65535) {
        set_err(err, err_size, "conninfo: needs port= with one port number (not \"%.20s\")",
                pt ? pt : "");
        rc = -EINVAL;
    } else {
        memcpy(host, shown, strlen(shown) + 1);
        *port = num;
    }
    pq->conninfo_free(opts);
    return rc;
}

/* The connection dance of libpq's asynchronous API, within the deadline. */
static int open_conn(const struct pq_api *pq, const char *conninfo, const char *app, char *target,
                     int64_t deadline, struct pq_api_conn **ret, char *err, size_t err_size)
{
    /* Later entries override earlier ones: conninfo (expanded from dbname) may override. */
    const char *const keywords[] = {"fallback_application_name", "gssencmode", "dbname", NULL};
    const char *const values[] = {app, "disable", conninfo, NULL};
    struct pq_api_conn *conn;
    int state = PQ_API_POLLING_WRITING, rc;

    if (pg_now_ms() >= deadline) {
        set_err(err, err_size, "connecting to %s: the deadline has passed", target);
        return -ETIMEDOUT;
    }
    conn = pq->connect_start_params(keywords, values, 1);
    if (!conn)
        return -ENOMEM;
    (void)pq->set_notice_receiver(conn, on_notice, target); /* returns the previous one */
    if (pq->status(conn) == PQ_API_CONNECTION_BAD) {
        set_err(err, err_size, "connecting to %s: %s", target, pq->error_message(conn));
        rc = -ECONNREFUSED;
        goto fail;
    }
    while (state != PQ_API_POLLING_OK) {
        if (state == PQ_API_POLLING_FAILED) {
            set_err(err, err_size, "connecting to %s: %s", target, pq->error_message(conn));
            rc = -ECONNREFUSED;
            goto fail;
        }
        /* the socket changes when libpq moves on to another address or drops TLS */
        rc = wait_socket(pq->socket(conn), state == PQ_API_POLLING_READING ? POLLIN : POLLOUT,
                         deadline);
        if (rc == -ETIMEDOUT) {
            set_err(err, err_size, "connecting to %s: no answer before the deadline", target);
            goto fail;
        }
        if (rc < 0) {
            set_err(err, err_size, "connecting to %s: waiting on the socket failed", target);
            goto fail;
        }
        state = pq->connect_poll(conn);
    }
    if (pq->set_nonblocking(conn, 1) != 0) {
        set_err(err, err_size, "connecting to %s: %s", target, pq->error_message(conn));
        rc = -EIO;
        goto fail;
    }
    *ret = conn;
    return 0;
fail:
    pq->finish(conn);
    return rc;
}

int pg_connect(const char *conninfo, int64_t deadline_ms, struct pg_conn **ret, char *err,
               size_t err_size)
{
    const struct pq_api *pq;
    struct pg_conn *c;
    int rc;

    if (!conninfo || !ret) {
        set_err(err, err_size, "pg_connect: conninfo and ret are required");
        return -EINVAL;
    }
    rc = pq_api_get(&pq);
    if (rc < 0) {
        set_err(err, err_size, "%s", pq_api_error());
        return rc;
    }
    c = core_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->pq = pq;
    c->conninfo_len = strlen(conninfo);
    c->conninfo = core_strndup(conninfo, c->conninfo_len);
    if (!c->conninfo) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = inspect_conninfo(pq, conninfo, c->target, sizeof(c->target), err, err_size);
    if (rc < 0)
        goto fail;
    rc = open_conn(pq, conninfo, "mgo", c->target, deadline_ms, &c->conn, err, err_size);
    if (rc < 0)
        goto fail;
    c->backend_pid = pq->backend_pid(c->conn);
    *ret = c;
    return 0;
fail:
    pg_close(c);
    return rc;
}

/* Close the libpq connection of c (not c itself), remembering why. */
static void drop_conn(struct pg_conn *c, const char *why)
{
    if (c->conn) {
        c->pq->finish(c->conn);
        c->conn = NULL;
    }
    (void)snprintf(c->closed_why, sizeof(c->closed_why), "%.180s", why);
}

void pg_close(struct pg_conn *c)
{
    if (!c)
        return;
    if (c->conn)
        c->pq->finish(c->conn);
    if (c->conninfo) {
        memset(c->conninfo, 0, c->conninfo_len); /* it may hold a password */
        core_free(c->conninfo);
    }
    core_free(c);
}

/* ---- queries ------------------------------------------------------------------------------- */

static int run(struct pg_conn *c, const char *what, const char *sql, int64_t deadline,
               int cancel_on_timeout, result_fn fn, void *arg, char *err, size_t err_size);

/* pg_cancel_backend's answer: 't'. */
static int cancel_answer(struct pg_conn *c, const struct pq_api_result *res, size_t index,
                         void *arg, char *err, size_t err_size)
{
    const char *v;
    (void)arg;

    if (index != 0 || c->pq->ntuples(res) != 1 || c->pq->nfields(res) != 1) {
        set_err(err, err_size, "pg_cancel_backend(%d): expected one value", c->backend_pid);
        return -EPROTO;
    }
    v = c->pq->getvalue(res, 0, 0);
    if (strcmp(v, "t") != 0) {
        set_err(err, err_size, "pg_cancel_backend(%d) answered %.8s", c->backend_pid, v);
        return -ESRCH;
    }
    return 0;
}

/* Cancel c's query from a second connection, within the deadline; why says how it went. */
static void cancel_query(struct pg_conn *c, int64_t deadline, char *why, size_t why_size)
{
    struct pg_conn k = {.pq = c->pq, .backend_pid = c->backend_pid};
    char sql[64], msg[256] = "";
    int rc;

    (void)snprintf(k.target, sizeof(k.target), "%s", c->target);
    rc = open_conn(c->pq, c->conninfo, "mgo-cancel", k.target, deadline, &k.conn, msg, sizeof(msg));
    if (rc == 0) {
        (void)snprintf(sql, sizeof(sql), "SELECT pg_cancel_backend(%d)", c->backend_pid);
        rc = run(&k, "cancel", sql, deadline, 0, cancel_answer, NULL, msg, sizeof(msg));
        if (k.conn)
            c->pq->finish(k.conn);
    }
    if (rc == 0)
        (void)snprintf(why, why_size, "cancelled (pg_cancel_backend(%d))", c->backend_pid);
    else
        (void)snprintf(why, why_size, "cancel failed (%.200s)", msg[0] ? msg : "out of memory");
}

/* The server's error for a statement: "ERROR 42601: syntax error at ...". */
static int server_error(struct pg_conn *c, const struct pq_api_result *res, const char *what,
                        char *err, size_t err_size)
{
    const struct pq_api *pq = c->pq;
    const char *severity = pq->result_error_field(res, PQ_API_DIAG_SEVERITY_NONLOCALIZED);
    const char *state = pq->result_error_field(res, PQ_API_DIAG_SQLSTATE);
    const char *text = pq->result_error_field(res, PQ_API_DIAG_MESSAGE_PRIMARY);

    (void)snprintf(c->sqlstate, sizeof(c->sqlstate), "%.5s", state ? state : "");
    if (state && text)
        set_err(err, err_size, "%s: %.80s: %s %s: %s", c->target, what,
                severity ? severity : "ERROR", state, text);
    else
        set_err(err, err_size, "%s: %.80s: %s", c->target, what, pq->result_error_message(res));
    return -EREMOTEIO;
}

/* The connection broke: close it, say so. */
static int broken(struct pg_conn *c, const char *what, char *err, size_t err_size)
{
    char detail[256], why[272];

    (void)snprintf(detail, sizeof(detail), "%.250s", c->pq->error_message(c->conn));
    flatten(detail);
    set_err(err, err_size, "%s: %.80s: connection lost: %s", c->target, what, detail);
    (void)snprintf(why, sizeof(why), "lost (%s)", detail);
    drop_conn(c, why);
    return -EIO;
}

/* The deadline is near: cancel (unless this is the cancel), close. */
static int timed_out(struct pg_conn *c, const char *what, int64_t given, int64_t deadline,
                     int cancel, char *err, size_t err_size)
{
    char why[256] = "not cancelled";

    if (cancel)
        cancel_query(c, deadline, why, sizeof(why));
    set_err(err, err_size, "%s: %.80s: no answer within %" PRId64 " ms: %s; connection closed",
            c->target, what, given, why);
    drop_conn(c, "closed after a timeout");
    return -ETIMEDOUT;
}

/* Send sql; 0 once libpq's buffer is flushed, or an error (the connection closed). */
static int send_all(struct pg_conn *c, const char *sql, int64_t until)
{
    const struct pq_api *pq = c->pq;
    int r;

    if (!pq->send_query(c->conn, sql))
        return -EIO;
    while ((r = pq->flush(c->conn)) == 1) {
        int rc = wait_socket(pq->socket(c->conn), POLLIN | POLLOUT, until);
        if (rc < 0)
            return rc;
        /* the server may talk while we write (notices); reading makes room */
        if (!pq->consume_input(c->conn))
            return -EIO;
    }
    return r == 0 ? 0 : -EIO;
}

/*
 * Run sql within the deadline, handing each successful result to fn (may be NULL). Returns
 * the first failure: fn's, the server's (-EREMOTEIO), or the connection's; every result is
 * read, so the connection stays usable after a server error.
 */
static int run(struct pg_conn *c, const char *what, const char *sql, int64_t deadline,
               int cancel_on_timeout, result_fn fn, void *arg, char *err, size_t err_size)
{
    const struct pq_api *pq = c->pq;
    struct pq_api_result *res;
    int64_t now = pg_now_ms(), until;
    size_t index = 0;
    int rc, first = 0;

    c->sqlstate[0] = '\0';
    if (!c->conn) {
        set_err(err, err_size, "%s: %.80s: the connection was %s", c->target, what, c->closed_why);
        return -ENOTCONN;
    }
    if (now >= deadline) {
        set_err(err, err_size, "%s: %.80s: the deadline has passed", c->target, what);
        return -ETIMEDOUT;
    }
    until = cancel_on_timeout ? deadline - cancel_reserve(deadline - now) : deadline;
    rc = send_all(c, sql, until);
    if (rc == -ETIMEDOUT)
        return timed_out(c, what, deadline - now, deadline, cancel_on_timeout, err, err_size);
    if (rc < 0)
        return broken(c, what, err, err_size);
    for (;;) {
        if (pq->is_busy(c->conn)) {
            rc = wait_socket(pq->socket(c->conn), POLLIN, until);
            if (rc == -ETIMEDOUT)
                return timed_out(c, what, deadline - now, deadline, cancel_on_timeout, err,
                                 err_size);
            if (rc < 0 || !pq->consume_input(c->conn))
                return broken(c, what, err, err_size);
            continue;
        }
        res = pq->get_result(c->conn);
        if (!res)
            break;
        switch (pq->result_status(res)) {
        case PQ_API_COMMAND_OK:
        case PQ_API_TUPLES_OK:
        case PQ_API_EMPTY_QUERY:
            if (!first && fn)
                first = fn(c, res, index, arg, err, err_size);
            break;
        case PQ_API_COPY_IN:
        case PQ_API_COPY_OUT:
        case PQ_API_COPY_BOTH:
            pq->clear(res);
            set_err(err, err_size, "%s: %.80s: COPY is not supported here", c->target, what);
            drop_conn(c, "closed after a COPY");
            return -EPROTO;
        default:
            if (!first)
                first = server_error(c, res, what, err, err_size);
            break;
        }
        pq->clear(res);
        index++;
    }
    if (pq->status(c->conn) == PQ_API_CONNECTION_BAD)
        return broken(c, what, err, err_size);
    return first;
}

/* What a message may say about a command: its leading words up to the first value (a
 * statement such as ALTER SYSTEM SET primary_conninfo = '... password=...' carries secrets). */
static void command_words(const char *sql, char *out, size_t size)
{
    size_t n = 0;
    for (const char *s = sql; *s && n + 1 < size && n < 48; s++) {
        if (*s == '=' || *s == '\'' || *s == '(' || *s == ';' || *s == '"')
            break;
        out[n++] = *s;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

int pg_exec(struct pg_conn *c, const char *sql, int64_t deadline_ms, char *err, size_t err_size)
{
    if (!c || !sql) {
        set_err(err, err_size, "pg_exec: a connection and sql are required");
        return -EINVAL;
    }
    char what[64];
    command_words(sql, what, sizeof(what));
    return run(c, what, sql, deadline_ms, 1, NULL, NULL, err, err_size);
}

int pg_alter_system(struct pg_conn *c, const char *setting, const char *const *values,
                    int64_t deadline_ms, char *err, size_t err_size)
{
    char sql[2400];
    size_t len = setting ? strlen(setting) : 0, o;
    if (len == 0 || len > 63 || strspn(setting, "abcdefghijklmnopqrstuvwxyz0123456789_.") != len ||
        setting[0] == '.' || setting[len - 1] == '.' || strstr(setting, "..")) {
        set_err(err, err_size, "pg_alter_system: \"%.80s\" is not a parameter name",
                setting ? setting : "");
        return -EINVAL;
    }
    /* the name as quoted identifiers ("all" is then a parameter name, not RESET ALL) */
    o = (size_t)snprintf(sql, sizeof(sql), "ALTER SYSTEM %s \"", values ? "SET" : "RESET");
    for (const char *ch = setting; *ch; ch++) {
        if (*ch == '.') {
            memcpy(sql + o, "\".\"", 3);
            o += 3;
        } else {
            sql[o++] = *ch;
        }
    }
    o += (size_t)snprintf(sql + o, sizeof(sql) - o, "\"%s", values ? " = " : "");
    /* each value an escape string literal: right whatever standard_conforming_strings says */
    for (size_t k = 0; values && values[k]; k++) {
        /* room for the separator, E', the longest escaped character and the closing quote */
        if (o + 8 >= sizeof(sql))
            goto too_long;
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, "%sE'", k ? ", " : "");
        for (const char *ch = values[k]; *ch; ch++) {
            if (o + 4 >= sizeof(sql))
                goto too_long;
            if (*ch == '\'' || *ch == '\\')
                sql[o++] = *ch;
            sql[o++] = *ch;
        }
        sql[o++] = '\'';
        sql[o] = '\0';
    }
    return pg_exec(c, sql, deadline_ms, err, err_size);
too_long:
    set_err(err, err_size, "%s: value too long", setting);
    return -E2BIG;
}

/* ---- rows as text -------------------------------------------------------------------------- */

struct rows {
    json_t *rows;
    size_t max;
};

static int rows_result(struct pg_conn *c, const struct pq_api_result *res, size_t index, void *arg,
                       char *err, size_t err_size)
{
    (void)index;
    struct rows *r = arg;
    const struct pq_api *pq = c->pq;
    int nrows = pq->ntuples(res), ncols = pq->nfields(res);
    if (json_array_size(r->rows) > 0)
        return 0; /* keep the first result that has rows */
    if (nrows > 0 && (size_t)nrows > r->max) {
        set_err(err, err_size, "%s: query: %d rows, more than %zu", c->target, nrows, r->max);
        return -E2BIG;
    }
    json_array_clear(r->rows);
    for (int i = 0; i < nrows; i++) {
        json_t *row = json_array();
        if (!row || json_array_append_new(r->rows, row))
            return -ENOMEM;
        for (int k = 0; k < ncols; k++) {
            json_t *v =
                pq->getisnull(res, i, k) ? json_null() : json_string(pq->getvalue(res, i, k));
            if (!v && core_allocation_failed())
                return -ENOMEM;
            if (!v) {
                /* not UTF-8: report it rather than drop the value */
                set_err(err, err_size, "%s: query: row %d column %d is not UTF-8", c->target, i, k);
                return -EPROTO;
            }
            if (json_array_append_new(row, v))
                return -ENOMEM;
        }
    }
    return 0;
}

int pg_query(struct pg_conn *c, const char *sql, int64_t deadline_ms, size_t max_rows,
             json_t **ret_rows, char *err, size_t err_size)
{
    if (!c || !sql || !ret_rows) {
        set_err(err, err_size, "pg_query: a connection, sql and ret_rows are required");
        return -EINVAL;
    }
    struct rows r = {json_array(), max_rows};
    if (!r.rows)
        return -ENOMEM;
    char what[64];
    command_words(sql, what, sizeof(what));
    int rc = run(c, what, sql, deadline_ms, 1, rows_result, &r, err, err_size);
    if (rc) {
        json_decref(r.rows);
        return rc;
    }
    *ret_rows = r.rows;
    return 0;
}

const char *pg_sqlstate(const struct pg_conn *c)
{
    return c ? c->sqlstate : "";
}

/* ---- probing ------------------------------------------------------------------------------- */

/*
 * One row of facts. pg_is_in_recovery() is evaluated once (a volatile function keeps the
 * subquery from being flattened), so a promotion during the query cannot mix the answers;
 * functions that fail during recovery run only on a primary.
 */
static const char probe_sql[] =
    "SELECT s.rec,"
    " CASE WHEN NOT s.rec THEN pg_current_wal_lsn() END,"
    " CASE WHEN s.rec THEN pg_last_wal_receive_lsn() END,"
    " CASE WHEN s.rec THEN pg_last_wal_replay_lsn() END,"
    " CASE WHEN NOT s.rec THEN pg_walfile_name(pg_current_wal_lsn()) END,"
    " (SELECT timeline_id FROM pg_control_checkpoint()),"
    " current_setting('synchronous_standby_names'),"
    " r.status, r.sender_host, r.sender_port, r.received_tli,"
    " pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
    " FROM (SELECT pg_is_in_recovery() AS rec) AS s"
    " LEFT JOIN pg_stat_wal_receiver AS r ON true;"
    "SELECT application_name, state, sync_state, sent_lsn, write_lsn, flush_lsn, replay_lsn"
    " FROM pg_stat_replication ORDER BY application_name, pid LIMIT 33";

enum {
    F_REC,
    F_CURRENT_LSN,
    F_RECEIVE_LSN,
    F_REPLAY_LSN,
    F_WALFILE,
    F_CHECKPOINT_TLI,
    F_SYNC_NAMES,
    F_WR_STATUS,
    F_SENDER_HOST,
    F_SENDER_PORT,
    F_RECEIVED_TLI,
    F_STATS_ROLE,
    F_COUNT
};

enum { R_NAME, R_STATE, R_SYNC_STATE, R_SENT, R_WRITE, R_FLUSH, R_REPLAY, R_COUNT };

static const char *const fact_names[F_COUNT] = {
    "pg_is_in_recovery()",
    "pg_current_wal_lsn()",
    "pg_last_wal_receive_lsn()",
    "pg_last_wal_replay_lsn()",
    "pg_walfile_name()",
    "pg_control_checkpoint().timeline_id",
    "synchronous_standby_names",
    "pg_stat_wal_receiver.status",
    "pg_stat_wal_receiver.sender_host",
    "pg_stat_wal_receiver.sender_port",
    "pg_stat_wal_receiver.received_tli",
    "pg_has_role(pg_read_all_stats)",
};

static const char *const replica_names[R_COUNT] = {
    "pg_stat_replication.application_name", "pg_stat_replication.state",
    "pg_stat_replication.sync_state",       "pg_stat_replication.sent_lsn",
    "pg_stat_replication.write_lsn",        "pg_stat_replication.flush_lsn",
    "pg_stat_replication.replay_lsn",
};

/* One value of a result, checked; each takes a NULL as 0 or "" unless said otherwise. */
struct cell {
    struct pg_conn *c;
    const struct pq_api_result *res;
    int row;
    char *err;
    size_t err_size;
};

static const char *cell_value(const struct cell *x, int col)
{
    return x->c->pq->getisnull(x->res, x->row, col) ? NULL
                                                    : x->c->pq->getvalue(x->res, x->row, col);
}

static int cell_text(const struct cell *x, int col, const char *name, char *buf, size_t size)
{
    const char *v = cell_value(x, col);
    size_t len = v ? strlen(v) : 0;

    if (len >= size) {
        set_err(x->err, x->err_size, "%s: probe: %s: %zu bytes, longer than %zu", x->c->target,
                name, len, size - 1);
        return -EPROTO;
    }
    memcpy(buf, v ? v : "", len + 1);
    return 0;
}

static int cell_lsn(const struct cell *x, int col, const char *name, uint64_t *ret)
{
    const char *v = cell_value(x, col);

    *ret = 0;
    if (v && pg_lsn_parse(v, ret) < 0) {
        set_err(x->err, x->err_size, "%s: probe: %s: \"%.40s\" is not an LSN", x->c->target, name,
                v);
        return -EPROTO;
    }
    return 0;
}

/* A decimal integer in [min, max]. */
static int cell_int(const struct cell *x, int col, const char *name, long min, long max, int *ret)
{
    const char *v = cell_value(x, col);
    char *end;
    long n;

    *ret = 0;
    if (!v)
        return 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) ||
        n < min || n > max) {
        set_err(x->err, x->err_size, "%s: probe: %s: \"%.40s\" is not an integer in [%ld, %ld]",
                x->c->target, name, v, min, max);
        return -EPROTO;
    }
    *ret = (int)n;
    return 0;
}

/* A boolean, never NULL. */
static int cell_bool(const struct cell *x, int col, const char *name, int *ret)
{
    const char *v = cell_value(x, col);

    if (v && (strcmp(v, "t") == 0 || strcmp(v, "f") == 0)) {
        *ret = v[0] == 't';
        return 0;
    }
    set_err(x->err, x->err_size, "%s: probe: %s: \"%.40s\" is not a boolean", x->c->target, name,
            v ? v : "NULL");
    return -EPROTO;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The timeline of a WAL file name: 24 hex digits, the first 8 of them. */
static int cell_walfile_timeline(const struct cell *x, int col, const char *name, int *ret)
{
    const char *v = cell_value(x, col);
    uint64_t tli = 0;
    size_t i;

    for (i = 0; v && v[i] && i < 24 && hex_digit(v[i]) >= 0; i++)
        if (i < 8)
            tli = tli * 16 + (uint64_t)hex_digit(v[i]);
    if (!v || i != 24 || v[i] != '\0' || tli == 0 || tli > INT_MAX) {
        set_err(x->err, x->err_size, "%s: probe: %s: \"%.40s\" is not a WAL file name",
                x->c->target, name, v ? v : "NULL");
        return -EPROTO;
    }
    *ret = (int)tli;
    return 0;
}

static int read_facts(struct pg_conn *c, const struct pq_api_result *res, struct pg_node_status *s,
                      char *err, size_t err_size)
{
    struct cell x = {c, res, 0, err, err_size};
    char host[200];
    int port = 0, received_tli = 0, checkpoint_tli = 0, stats = 0, rc, n;

    if (c->pq->ntuples(res) != 1 || c->pq->nfields(res) != F_COUNT) {
        set_err(err, err_size, "%s: probe: expected 1 row of %d columns, got %d of %d", c->target,
                F_COUNT, c->pq->ntuples(res), c->pq->nfields(res));
        return -EPROTO;
    }
    if ((rc = cell_bool(&x, F_REC, fact_names[F_REC], &s->in_recovery)) < 0 ||
        (rc = cell_lsn(&x, F_CURRENT_LSN, fact_names[F_CURRENT_LSN], &s->current_lsn)) < 0 ||
        (rc = cell_lsn(&x, F_RECEIVE_LSN, fact_names[F_RECEIVE_LSN], &s->received_lsn)) < 0 ||
        (rc = cell_lsn(&x, F_REPLAY_LSN, fact_names[F_REPLAY_LSN], &s->replayed_lsn)) < 0 ||
        (rc = cell_int(&x, F_CHECKPOINT_TLI, fact_names[F_CHECKPOINT_TLI], 0, INT_MAX,
                       &checkpoint_tli)) < 0 ||
        (rc = cell_text(&x, F_SYNC_NAMES, fact_names[F_SYNC_NAMES], s->sync_standby_names,
                        sizeof(s->sync_standby_names))) < 0 ||
        (rc = cell_text(&x, F_WR_STATUS, fact_names[F_WR_STATUS], s->wal_receiver_status,
                        sizeof(s->wal_receiver_status))) < 0 ||
        (rc = cell_text(&x, F_SENDER_HOST, fact_names[F_SENDER_HOST], host, sizeof(host))) < 0 ||
        (rc = cell_int(&x, F_SENDER_PORT, fact_names[F_SENDER_PORT], 0, 65535, &port)) < 0 ||
        (rc = cell_int(&x, F_RECEIVED_TLI, fact_names[F_RECEIVED_TLI], 0, INT_MAX, &received_tli)) <
            0 ||
        (rc = cell_bool(&x, F_STATS_ROLE, fact_names[F_STATS_ROLE], &stats)) < 0)
        return rc;
    /* Without it, pg_stat_replication and pg_stat_wal_receiver hide their details behind NULLs,
     * which would read as "not streaming" and LSN 0: facts that are not facts. */
    if (!stats) {
        set_err(err, err_size,
                "%s: probe: the role needs pg_read_all_stats (or pg_monitor) to see replication "
                "state",
                c->target);
        return -EACCES;
    }
    if (!s->in_recovery) {
        s->checkpoint_timeline = checkpoint_tli;
        return cell_walfile_timeline(&x, F_WALFILE, fact_names[F_WALFILE], &s->timeline);
    }
    s->checkpoint_timeline = checkpoint_tli;
    s->timeline = received_tli ? received_tli : checkpoint_tli;
    if (!host[0])
        return 0;
    if (port == 0)
        n = snprintf(s->upstream, sizeof(s->upstream), "%s", host);
    else
        n = snprintf(s->upstream, sizeof(s->upstream), strchr(host, ':') ? "[%s]:%d" : "%s:%d",
                     host, port);
    if (n < 0 || (size_t)n >= sizeof(s->upstream)) {
        set_err(err, err_size, "%s: probe: %s: too long for upstream", c->target,
                fact_names[F_SENDER_HOST]);
        return -EPROTO;
    }
    return 0;
}

static int read_replicas(struct pg_conn *c, const struct pq_api_result *res,
                         struct pg_node_status *s, char *err, size_t err_size)
{
    int rows = c->pq->ntuples(res), rc;

    if (c->pq->nfields(res) != R_COUNT || rows < 0) {
        set_err(err, err_size, "%s: probe: pg_stat_replication: expected %d columns, got %d",
                c->target, R_COUNT, c->pq->nfields(res));
        return -EPROTO;
    }
    if (rows > PG_MAX_REPLICAS) {
        set_err(err, err_size, "%s: probe: pg_stat_replication has more than %d rows", c->target,
                PG_MAX_REPLICAS);
        return -E2BIG;
    }
    for (int i = 0; i < rows; i++) {
        struct cell x = {c, res, i, err, err_size};
        struct pg_replica *r = &s->replicas[i];
        if ((rc = cell_text(&x, R_NAME, replica_names[R_NAME], r->name, sizeof(r->name))) < 0 ||
            (rc = cell_text(&x, R_STATE, replica_names[R_STATE], r->state, sizeof(r->state))) < 0 ||
            (rc = cell_text(&x, R_SYNC_STATE, replica_names[R_SYNC_STATE], r->sync_state,
                            sizeof(r->sync_state))) < 0 ||
            (rc = cell_lsn(&x, R_SENT, replica_names[R_SENT], &r->sent_lsn)) < 0 ||
            (rc = cell_lsn(&x, R_WRITE, replica_names[R_WRITE], &r->write_lsn)) < 0 ||
            (rc = cell_lsn(&x, R_FLUSH, replica_names[R_FLUSH], &r->flush_lsn)) < 0 ||
            (rc = cell_lsn(&x, R_REPLAY, replica_names[R_REPLAY], &r->replay_lsn)) < 0)
            return rc;
    }
    s->nreplicas = (size_t)rows;
    return 0;
}

struct probe {
    struct pg_node_status *status;
    size_t results;
};

static int probe_result(struct pg_conn *c, const struct pq_api_result *res, size_t index, void *arg,
                        char *err, size_t err_size)
{
    struct probe *p = arg;

    p->results = index + 1;
    if (index == 0)
        return read_facts(c, res, p->status, err, err_size);
    if (index == 1)
        return read_replicas(c, res, p->status, err, err_size);
    set_err(err, err_size, "%s: probe: more than 2 results", c->target);
    return -EPROTO;
}

int pg_node_probe(struct pg_conn *c, int64_t deadline_ms, struct pg_node_status *out, char *err,
                  size_t err_size)
{
    struct pg_node_status *s;
    struct probe p = {0};
    int rc;

    if (!c || !out) {
        set_err(err, err_size, "pg_node_probe: a connection and out are required");
        return -EINVAL;
    }
    /* about 6 KiB: on the heap, so that out is written only on success */
    s = core_calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    p.status = s;
    rc = run(c, "probe", probe_sql, deadline_ms, 1, probe_result, &p, err, err_size);
    if (rc == 0 && p.results != 2) {
        set_err(err, err_size, "%s: probe: expected 2 results, got %zu", c->target, p.results);
        rc = -EPROTO;
    }
    if (rc == 0)
        *out = *s;
    core_free(s);
    return rc;
}

/* ---- promoting ----------------------------------------------------------------------------- */

static int promote_answer(struct pg_conn *c, const struct pq_api_result *res, size_t index,
                          void *arg, char *err, size_t err_size)
{
    struct cell x = {c, res, 0, err, err_size};

    if (index != 0 || c->pq->ntuples(res) != 1 || c->pq->nfields(res) != 1) {
        set_err(err, err_size, "%s: pg_promote(): expected one value", c->target);
        return -EPROTO;
    }
    return cell_bool(&x, 0, "pg_promote()", arg);
}

int pg_promote(struct pg_conn *c, int64_t deadline_ms, char *err, size_t err_size)
{
    char sql[96];
    int64_t now = pg_now_ms(), seconds;
    int promoted = 0, already = 0, rc;

    if (!c) {
        set_err(err, err_size, "pg_promote: a connection is required");
        return -EINVAL;
    }
    if (now >= deadline_ms) {
        set_err(err, err_size, "pg_promote: the deadline has passed");
        return -ETIMEDOUT;
    }
    seconds = (deadline_ms - now - cancel_reserve(deadline_ms - now)) / 1000;
    seconds = seconds < 1 ? 1 : seconds > PG_MAX_WAIT_SECONDS ? PG_MAX_WAIT_SECONDS : seconds;
    (void)snprintf(sql, sizeof(sql), "SELECT pg_promote(wait => true, wait_seconds => %d)",
                   (int)seconds);
    rc = run(c, "pg_promote()", sql, deadline_ms, 1, promote_answer, &promoted, err, err_size);
    if (rc == -EREMOTEIO && strcmp(c->sqlstate, "55000") == 0)
        already = 1; /* "recovery is not in progress" */
    else if (rc < 0)
        return rc;
    else if (!promoted) {
        set_err(err, err_size,
                "%s: pg_promote(): not promoted within %d s (it was requested and may still "
                "complete)",
                c->target, (int)seconds);
        return -ETIMEDOUT;
    }
    rc =
        run(c, "CHECKPOINT after promote", "CHECKPOINT", deadline_ms, 1, NULL, NULL, err, err_size);
    if (rc < 0)
        return rc;
    if (already) {
        set_err(err, err_size,
                "%s: pg_promote(): not in recovery (already a primary); "
                "CHECKPOINT done",
                c->target);
        return -EALREADY;
    }
    return 0;
}

/* ---- LSNs ---------------------------------------------------------------------------------- */

/* 1 to 8 hex digits from *p up to `stop`; advances *p. */
static int lsn_half(const char **p, char stop, uint32_t *ret)
{
    uint32_t v = 0;
    int n = 0, d;

    while ((d = hex_digit(**p)) >= 0) {
        if (++n > 8)
            return -EINVAL;
        v = v << 4 | (uint32_t)d;
        (*p)++;
    }
    if (n == 0 || **p != stop)
        return -EINVAL;
    *ret = v;
    return 0;
}

int pg_lsn_parse(const char *text, uint64_t *ret)
{
    const char *p = text;
    uint32_t hi, lo;

    if (!text || !ret || lsn_half(&p, '/', &hi) < 0)
        return -EINVAL;
    p++;
    if (lsn_half(&p, '\0', &lo) < 0)
        return -EINVAL;
    *ret = (uint64_t)hi << 32 | lo;
    return 0;
}

void pg_lsn_format(uint64_t lsn, char *buf, size_t size)
{
    char text[PG_LSN_TEXT_SIZE];
    int n;

    if (!buf || size == 0)
        return;
    n = snprintf(text, sizeof(text), "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return;
    }
    memcpy(buf, text, (size_t)n + 1);
}
