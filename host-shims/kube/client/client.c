/* The client: one reused libcurl handle, authentication, one request at a time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "kc_internal.h"

#ifndef KC_VERSION
#define KC_VERSION "0"
#endif

#define MAX_BODY_BYTES     ((size_t)256 << 20) /* one answer (a page of a list) */
#define MAX_TOKEN_BYTES    ((size_t)1 << 20)
#define CONNECT_TIMEOUT_MS 10000

int kc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

void kc_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int dup_bytes(const unsigned char *p, size_t n, unsigned char **ret)
{
    *ret = NULL;
    if (!p)
        return 0;
    *ret = malloc(n + 1);
    if (!*ret)
        return -ENOMEM;
    memcpy(*ret, p, n);
    (*ret)[n] = '\0';
    return 0;
}

static int copy_config(const struct kc_config *in, struct kc_config *out)
{
    struct kc_config c = {
        .ca_len = in->ca_len,
        .client_cert_len = in->client_cert_len,
        .client_key_len = in->client_key_len,
        .insecure_skip_tls_verify = in->insecure_skip_tls_verify,
        .disable_compression = in->disable_compression,
    };

    if (!(c.server = kc_strdup(in->server)) ||
        (in->namespace && !(c.namespace = strdup(in->namespace))) ||
        (in->context && !(c.context = strdup(in->context))) ||
        (in->token && !(c.token = strdup(in->token))) ||
        (in->token_file && !(c.token_file = strdup(in->token_file))) ||
        (in->proxy_url && !(c.proxy_url = strdup(in->proxy_url))) ||
        dup_bytes(in->ca, in->ca_len, &c.ca) < 0 ||
        dup_bytes(in->client_cert, in->client_cert_len, &c.client_cert) < 0 ||
        dup_bytes(in->client_key, in->client_key_len, &c.client_key) < 0) {
        kc_config_fini(&c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

int kc_client_new(const struct kc_config *cfg, const char *user_agent, struct kc_client **ret)
{
    struct kc_client *c;
    struct kc_buf ua = {0};
    int rc;

    if (!cfg || !ret || !cfg->server ||
        (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0) ||
        !cfg->client_cert != !cfg->client_key)
        return -EINVAL;
    /* both go into headers: CR or LF would inject headers of their own */
    if ((user_agent && !kc_header_value_ok(user_agent)) ||
        (cfg->token && !kc_header_value_ok(cfg->token)))
        return -EINVAL;
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    rc = copy_config(cfg, &c->cfg);
    if (rc < 0)
        goto fail;
    rc = -ENOMEM;
    if (kc_buf_append_str(&ua, user_agent ? user_agent : "mgo-kube/" KC_VERSION) < 0 ||
        !(c->user_agent = kc_buf_steal(&ua)))
        goto fail;
    if (c->cfg.token && !(c->token = strdup(c->cfg.token)))
        goto fail;
    if (!(c->curl = curl_easy_init()))
        goto fail;
    c->ca = (struct curl_blob){c->cfg.ca, c->cfg.ca_len, CURL_BLOB_NOCOPY};
    c->cert = (struct curl_blob){c->cfg.client_cert, c->cfg.client_cert_len, CURL_BLOB_NOCOPY};
    c->key = (struct curl_blob){c->cfg.client_key, c->cfg.client_key_len, CURL_BLOB_NOCOPY};
    c->timeout_ms = KC_DEFAULT_TIMEOUT_MS;
    c->rng = kc_random_u64() | 1;
    *ret = c;
    return 0;
fail:
    kc_buf_fini(&ua);
    kc_client_free(c);
    return rc;
}

void kc_client_free(struct kc_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    kc_config_fini(&c->cfg);
    kc_status_fini(&c->status);
    free(c->user_agent);
    free(c->token);
    free(c);
}

void kc_client_set_timeout(struct kc_client *c, int64_t ms)
{
    if (c && ms > 0)
        c->timeout_ms = ms;
}

void kc_client_set_cancel(struct kc_client *c, const atomic_int *cancel)
{
    if (c)
        c->cancel = cancel;
}

const char *kc_last_error(const struct kc_client *c)
{
    return c ? c->error : "no client";
}

const struct kc_status *kc_last_status(const struct kc_client *c)
{
    return &c->status;
}

enum kc_reason kc_last_reason(const struct kc_client *c)
{
    return c->status.reason;
}

void kc_client_stats(const struct kc_client *c, struct kc_stats *out)
{
    *out = c->stats;
}

uint64_t kc_client_random(struct kc_client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1DULL;
}

/* ---- calls and failures ---------------------------------------------------------------------- */

int kc_call_begin(struct kc_client *c)
{
    if (c->busy)
        return -EBUSY;
    c->busy = true;
    c->error[0] = '\0';
    kc_status_fini(&c->status);
    return 0;
}

void kc_call_end(struct kc_client *c)
{
    c->busy = false;
}

int kc_fail(struct kc_client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    if (n < 0)
        c->error[0] = '\0';
    else if ((size_t)n >= sizeof(c->error))
        memcpy(c->error + sizeof(c->error) - 4, "...", 4);
    return rc;
}

int kc_fail_status(struct kc_client *c, const char *method, const char *path, struct kc_status *st)
{
    kc_status_fini(&c->status);
    c->status = *st;
    memset(st, 0, sizeof(*st));
    return kc_fail(c, -EREMOTEIO, "%s %.300s: %d %s: %.500s", method, path, c->status.code,
                   c->status.reason_text[0] ? c->status.reason_text
                                            : kc_reason_name(c->status.reason),
                   c->status.message);
}

int kc_fail_answer(struct kc_client *c, const struct kc_http *req, const struct kc_answer *a)
{
    struct kc_status st;
    int rc = kc_status_decode((int)a->code, req->method, a->body.data, a->body.len,
                              a->retry_after[0] ? a->retry_after : NULL, &st);

    if (rc < 0)
        return kc_fail(c, rc, "%s %.300s: %ld: out of memory decoding the answer", req->method,
                       req->path, a->code);
    return kc_fail_status(c, req->method, req->path, &st);
}

int kc_parse_body(struct kc_client *c, const struct kc_http *req, const struct kc_answer *a,
                  json_t **ret)
{
    json_error_t jerr;
    json_t *v = NULL;
    int rc;

    if (!ret)
        return 0;
    if (a->body.len == 0) {
        *ret = NULL;
        return 0;
    }
    rc = kc_json_parse(a->body.data, a->body.len, &v, &jerr);
    if (rc == -ENOMEM)
        return kc_fail(c, rc, "%s %.300s: %ld: out of memory parsing the answer", req->method,
                       req->path, a->code);
    if (rc < 0)
        return kc_fail(c, rc, "%s %.300s: %ld: the answer is not JSON: %s", req->method, req->path,
                       a->code, jerr.text);
    *ret = v;
    return 0;
}

int kc_dump(const json_t *v, char **ret, size_t *ret_len)
{
    /* into our own buffer: json_dumps's string comes from jansson's allocator, which a host may
     * have replaced (json_set_alloc_funcs), so free() would not be the way to release it */
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT), again;
    char *text;

    if (n == 0 || !(text = malloc(n + 1)))
        return -ENOMEM;
    again = json_dumpb(v, text, n, JSON_COMPACT);
    if (again != n) {
        free(text);
        return -ENOMEM;
    }
    text[n] = '\0';
    *ret = text;
    *ret_len = n;
    return 0;
}

void kc_answer_fini(struct kc_answer *a)
{
    kc_buf_fini(&a->body);
    memset(a, 0, sizeof(*a));
}

/* ---- the token ------------------------------------------------------------------------------- */

/* Re-read the token file when it changed since the last read (or always when `force`). A file
 * that cannot be read keeps the previous token when there is one (the kubelet replaces it by
 * swapping a symlink, so a read can fall between two steps). */
static int token_refresh(struct kc_client *c, bool force)
{
    struct stat st;
    unsigned char *data;
    size_t len;
    char *token, msg[128];
    int rc;

    if (!c->cfg.token_file)
        return 0;
    if (stat(c->cfg.token_file, &st) < 0) {
        rc = -errno;
        goto unreadable;
    }
    if (!force && c->token_stat_valid && st.st_dev == c->token_dev && st.st_ino == c->token_ino &&
        st.st_size == c->token_size && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
        return 0;
    rc = kc_read_file(c->cfg.token_file, MAX_TOKEN_BYTES, &data, &len);
    if (rc == -ENOMEM)
        return kc_fail(c, rc, "reading token file %s: out of memory", c->cfg.token_file);
    if (rc < 0)
        goto unreadable;
    rc = kc_token_from_bytes(data, len, &token);
    free(data);
    if (rc == -ENOMEM)
        return kc_fail(c, rc, "reading token file %s: out of memory", c->cfg.token_file);
    if (rc < 0)
        goto unreadable;
    free(c->token);
    c->token = token;
    c->stats.token_reads++;
    c->token_stat_valid = true;
    c->token_dev = st.st_dev;
    c->token_ino = st.st_ino;
    c->token_size = st.st_size;
    c->token_mtime = st.st_mtim;
    return 0;
unreadable:
    c->token_stat_valid = false; /* try again next time */
    if (c->token)
        return 0;
    return kc_fail(c, -EAGAIN, "token file %s: %s", c->cfg.token_file,
                   rc == -EINVAL ? "empty or holds control characters"
                                 : kc_strerror(-rc, msg, sizeof(msg)));
}

/* ---- one transfer
 * -------------------------------------------------------------------------------- */

struct transfer {
    struct kc_client *c;
    const struct kc_http *req;
    struct kc_answer *a;
    bool gzip;
    bool overflow;
    bool nomem;
};

/* "Name: value" when the header line is that header (case-insensitive): the value, trimmed. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t size)
{
    size_t n = strlen(name), end;

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    line += n + 1;
    len -= n + 1;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    end = len;
    while (end && (line[end - 1] == '\r' || line[end - 1] == '\n' || line[end - 1] == ' '))
        end--;
    if (end >= size)
        end = size - 1;
    memcpy(out, line, end);
    out[end] = '\0';
    return true;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *user)
{
    struct transfer *t = user;
    size_t len = size * nitems;
    char value[64];

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new answer (after a 100 Continue): forget the previous one's headers */
        t->a->retry_after[0] = '\0';
        t->gzip = false;
    } else if (header_value(line, len, "Retry-After", value, sizeof(value))) {
        memcpy(t->a->retry_after, value, sizeof(t->a->retry_after) - 1);
        t->a->retry_after[sizeof(t->a->retry_after) - 1] = '\0';
    } else if (header_value(line, len, "Content-Encoding", value, sizeof(value))) {
        t->gzip = strstr(value, "gzip") != NULL;
    }
    return len;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct transfer *t = user;
    size_t len = size * nmemb; /* libcurl guarantees size 1 */

    if (t->req->stream) {
        long code = 0;
        (void)curl_easy_getinfo(t->c->curl, CURLINFO_RESPONSE_CODE, &code); /* headers are in */
        if (code == 200) {
            if (!t->req->stream(t->req->stream_ctx, ptr, len)) {
                t->a->aborted = true;
                return 0; /* ends the transfer */
            }
            return len;
        }
    }
    if (len > MAX_BODY_BYTES - t->a->body.len) {
        t->overflow = true;
        return 0;
    }
    if (kc_buf_append(&t->a->body, ptr, len) < 0) {
        t->nomem = true;
        return 0;
    }
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct transfer *t = user;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (t->req->cancel && atomic_load(t->req->cancel)) {
        t->a->aborted = t->a->cancelled = true;
        return 1; /* aborts the transfer */
    }
    return 0;
}

static int setopt_rc(CURLcode code)
{
    if (code == CURLE_OK)
        return 0;
    return code == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* The request's headers (NULL on ENOMEM). Their values were checked (kc_header_value_ok). */
static struct curl_slist *headers_for(const struct kc_client *c, const struct kc_http *req)
{
    struct curl_slist *h = NULL, *n;
    struct kc_buf b = {0};

    if (!(n = curl_slist_append(h, "Accept: application/json")))
        goto fail;
    h = n;
    /* no "Expect: 100-continue" round trip before large bodies */
    if (!(n = curl_slist_append(h, "Expect:")))
        goto fail;
    h = n;
    if (req->body) {
        if (kc_buf_append_str(&b, "Content-Type: ") < 0 ||
            kc_buf_append_str(&b, req->content_type ? req->content_type : "application/json") < 0 ||
            !(n = curl_slist_append(h, b.data)))
            goto fail;
        h = n;
        kc_buf_fini(&b);
    }
    if (c->token) {
        if (kc_buf_append_str(&b, "Authorization: Bearer ") < 0 ||
            kc_buf_append_str(&b, c->token) < 0 || !(n = curl_slist_append(h, b.data)))
            goto fail;
        h = n;
        /* the header held a secret: wipe the copy */
        memset(b.data, 0, b.len);
        kc_buf_fini(&b);
    }
    return h;
fail:
    if (b.data)
        memset(b.data, 0, b.len);
    kc_buf_fini(&b);
    curl_slist_free_all(h);
    return NULL;
}

/* What a libcurl failure means to the caller. */
static int curl_rc(CURLcode code)
{
    switch (code) {
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return -EINVAL;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_BAD_CONTENT_ENCODING:
        return -EPROTO;
    default:
        return -EAGAIN; /* refused, unresolvable, reset, timed out: try again later */
    }
}

static int set_options(struct kc_client *c, const struct kc_http *req, struct transfer *t,
                       const char *url, struct curl_slist *headers)
{
    CURL *h = c->curl;
    int64_t timeout = req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms;
    int64_t connect = timeout < CONNECT_TIMEOUT_MS ? timeout : CONNECT_TIMEOUT_MS;
    int rc;

    if ((rc = setopt_rc(curl_easy_setopt(h, CURLOPT_URL, url))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_WRITEDATA, t))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header))) < 0 ||
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_HEADERDATA, t))) < 0)
        return rc;
    /* "" asks for every encoding libcurl can decode (gzip among them) and decodes it */
    if (!c->cfg.disable_compression &&
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""))) < 0)
        return rc;
    if (req->cancel &&
        ((rc = setopt_rc(curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress))) < 0 ||
         (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_XFERINFODATA, t))) < 0 ||
         (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L))) < 0))
        return rc;
    if (strcmp(req->method, "GET") == 0) {
        rc = setopt_rc(curl_easy_setopt(h, CURLOPT_HTTPGET, 1L));
    } else {
        rc = setopt_rc(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method));
        if (rc == 0 && req->body)
            rc = setopt_rc(
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len));
        if (rc == 0 && req->body)
            rc = setopt_rc(curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body));
    }
    if (rc < 0)
        return rc;
    if (c->cfg.ca) {
        /* only the configured CA: not the system bundle as well */
        if ((rc = setopt_rc(curl_easy_setopt(h, CURLOPT_CAINFO, (char *)NULL))) < 0 ||
            (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_CAPATH, (char *)NULL))) < 0 ||
            (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &c->ca))) < 0)
            return rc;
    }
    if (c->cfg.client_cert) {
        if ((rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &c->cert))) < 0 ||
            (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM"))) < 0 ||
            (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &c->key))) < 0 ||
            (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM"))) < 0)
            return rc;
    }
    if (c->cfg.insecure_skip_tls_verify &&
        ((rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L))) < 0 ||
         (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L))) < 0))
        return rc;
    if (c->cfg.proxy_url &&
        (rc = setopt_rc(curl_easy_setopt(h, CURLOPT_PROXY, c->cfg.proxy_url))) < 0)
        return rc;
    return 0;
}

static int perform_once(struct kc_client *c, const struct kc_http *given, struct kc_answer *a)
{
    struct kc_http own = *given;
    const struct kc_http *req = &own;
    struct transfer t = {.c = c, .req = req, .a = a};
    struct curl_slist *headers = NULL;
    struct kc_buf url = {0};
    CURLcode code;
    long num = 0;
    int rc;

    kc_answer_fini(a);
    if (!own.cancel)
        own.cancel = c->cancel;
    if (!own.stream && own.cancel && atomic_load(own.cancel))
        return kc_fail(c, -ECANCELED, "%s %.300s: cancelled, not sent", req->method, req->path);
    /* a value with CR or LF would end its header and start one of the caller's choosing */
    if ((req->content_type && !kc_header_value_ok(req->content_type)) ||
        (c->token && !kc_header_value_ok(c->token)))
        return kc_fail(c, -EINVAL,
                       "%s %.300s: a header value holds a control character or a "
                       "byte outside printable ASCII (CR/LF would inject headers)",
                       req->method, req->path);
    /* a reset keeps the handle's live connections, TLS sessions and DNS cache */
    curl_easy_reset(c->curl);
    c->curl_error[0] = '\0';
    if (kc_buf_append_str(&url, c->cfg.server) < 0 || kc_buf_append_str(&url, req->path) < 0 ||
        !(headers = headers_for(c, req))) {
        rc = kc_fail(c, -ENOMEM, "%s %.300s: out of memory", req->method, req->path);
        goto out;
    }
    if ((rc = set_options(c, req, &t, url.data, headers)) < 0) {
        rc = kc_fail(c, rc, "%s %.300s: libcurl refused an option (too old a libcurl?)",
                     req->method, req->path);
        goto out;
    }
    c->stats.requests++;
    code = curl_easy_perform(c->curl);
    (void)curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &a->code);
    if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &num) == CURLE_OK && num > 0)
        c->stats.connections += (uint64_t)num;
    if (t.gzip)
        c->stats.gzip_answers++;
    if (t.nomem) {
        rc = kc_fail(c, -ENOMEM, "%s %.300s: out of memory reading the answer", req->method,
                     req->path);
    } else if (t.overflow) {
        rc = kc_fail(c, -EPROTO, "%s %.300s: the answer is over %zu bytes", req->method, req->path,
                     MAX_BODY_BYTES);
    } else if (a->cancelled && !req->stream) {
        rc = kc_fail(c, -ECANCELED, "%s %.300s: cancelled before the answer came", req->method,
                     req->path);
    } else if (code == CURLE_OK || a->aborted) {
        rc = 0; /* an answer (any code), or a stream its reader or *cancel ended */
    } else {
        rc = kc_fail(c, curl_rc(code), "%s %.200s%.300s: %s", req->method, c->cfg.server, req->path,
                     c->curl_error[0] ? c->curl_error : curl_easy_strerror(code));
    }
out:
    /* the handle keeps pointers to these until the next reset: clear them now */
    (void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(headers);
    kc_buf_fini(&url);
    return rc;
}

int kc_perform(struct kc_client *c, const struct kc_http *req, struct kc_answer *a)
{
    char *before = NULL;
    int rc;

    if ((rc = token_refresh(c, false)) < 0)
        return rc;
    rc = perform_once(c, req, a);
    if (rc < 0 || a->code != 401 || !c->cfg.token_file || a->aborted)
        return rc;
    /* the token may have rotated since it was read: read it now, and try once more if so */
    if (c->token && !(before = strdup(c->token)))
        return kc_fail(c, -ENOMEM, "%s %.300s: out of memory", req->method, req->path);
    rc = token_refresh(c, true);
    if (rc == 0 && c->token && (!before || strcmp(before, c->token) != 0))
        rc = perform_once(c, req, a);
    free(before);
    return rc;
}

/* ---- requests
 * ------------------------------------------------------------------------------------ */

int kc_do(struct kc_client *c, const struct kc_http *req, json_t **ret)
{
    struct kc_answer a = {0};
    int rc = kc_perform(c, req, &a);

    if (rc == 0 && a.code >= 200 && a.code < 300) {
        /* a success after a failure in the same call (a list starting over) clears it */
        kc_status_fini(&c->status);
        c->error[0] = '\0';
        c->status.http_code = c->status.code = (int)a.code;
        rc = kc_parse_body(c, req, &a, ret);
    } else if (rc == 0) {
        rc = kc_fail_answer(c, req, &a);
    }
    kc_answer_fini(&a);
    return rc;
}

static bool valid_method(const char *m)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};

    for (const char *const *p = methods; m && *p; p++)
        if (strcmp(m, *p) == 0)
            return true;
    return false;
}

int kc_request(struct kc_client *c, const char *method, const char *path, const char *content_type,
               const char *body, size_t body_len, int64_t timeout_ms, json_t **ret)
{
    struct kc_http req = {.method = method,
                          .path = path,
                          .content_type = content_type,
                          .body = body,
                          .body_len = body_len,
                          .timeout_ms = timeout_ms};
    int rc;

    if (!c)
        return -EINVAL;
    if ((rc = kc_call_begin(c)) < 0)
        return rc;
    if (!valid_method(method) || !path || path[0] != '/' || timeout_ms < 0) {
        rc = kc_fail(c, -EINVAL,
                     "request: the method must be GET, POST, PUT, PATCH or DELETE, "
                     "the path must start with '/', the timeout must not be "
                     "negative");
    } else {
        rc = 0;
        for (const unsigned char *p = (const unsigned char *)path; *p && rc == 0; p++)
            if (*p <= ' ' || *p >= 0x7f)
                rc = kc_fail(c, -EINVAL, "request: the path holds a space or control character");
        if (rc == 0 && content_type && (!content_type[0] || !kc_header_value_ok(content_type)))
            rc = kc_fail(c, -EINVAL,
                         "request %.300s: the content type is empty or holds a control "
                         "character (CR/LF would inject headers) or a byte outside printable "
                         "ASCII",
                         path);
        if (rc == 0)
            rc = kc_do(c, &req, ret);
    }
    kc_call_end(c);
    return rc;
}
