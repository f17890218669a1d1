/* etcd v3 client over the JSON gateway (see etcd.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/core.h"
#include "topo/curl_api.h"
#include "topo/etcd.h"

/* A unary answer or one watch message larger than this is refused (-EPROTO). */
#define ETCD_MAX_RESPONSE ((size_t)64 << 20)
/* An error body of a watch (HTTP status other than 200) is kept up to this size. */
#define ETCD_MAX_ERROR_BODY ((size_t)64 << 10)
/* Every endpoint but the last gets at least this long to connect (or the time left). */
#define ETCD_MIN_CONNECT_MS 200
/* Timeouts are cut to this (about 24 days), which keeps deadlines and libcurl's longs sane. */
#define ETCD_MAX_TIMEOUT_MS INT64_C(2147483647)
/* Keys are shown in messages up to this many characters (escaped), then "...". */
#define ETCD_SHOWN_KEY 200
/* CURLOPT_CAINFO_BLOB appeared in libcurl 7.77.0 (the certificate and key blobs in 7.71.0). */
#define ETCD_CURL_BLOBS_VERSION 0x074d00

struct etcd_client {
    const struct curl_api *curl;
    CURL *easy; /* the unary calls' handle: its connection cache gives keep-alive */
    struct curl_slist *headers;
    char **endpoints; /* without trailing '/' */
    size_t n_endpoints;
    size_t last_good;
    struct curl_blob ca, cert, key; /* copies of the PEM text; data NULL when absent */
    char curl_error[CURL_ERROR_SIZE];
    char error[1024];
};

/* One unary call: what it is (for messages) and how it may be retried. */
struct call {
    const char *path;                  /* "/v3/kv/range" */
    char subject[ETCD_SHOWN_KEY + 64]; /* "get /a/b", for messages */
    int64_t timeout_ms;
    int idempotent;   /* may be sent to another endpoint after it may have reached etcd */
    int not_found_ok; /* etcd's NotFound (HTTP 404, code 5) returns -ENOENT, not -EPROTO */
};

struct buffer {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
    int overflow;
};

/* ---- time, messages ------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int64_t timeout_ms)
{
    return now_ms() + (timeout_ms < ETCD_MAX_TIMEOUT_MS ? timeout_ms : ETCD_MAX_TIMEOUT_MS);
}

/* Write `len` bytes of `key` into out as text: printable ASCII as is, backslash and other
 * bytes as \\ and \xNN, cut with "..." when it does not fit. */
static void printable(const char *key, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)key[i];
        char esc[4];
        size_t n;
        if (b == '\\') {
            esc[0] = '\\';
            esc[1] = '\\';
            n = 2;
        } else if (b >= 0x20 && b < 0x7f) {
            esc[0] = (char)b;
            n = 1;
        } else {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[b >> 4];
            esc[3] = hex[b & 15];
            n = 4;
        }
        if (o + n + 4 > size) { /* room for "..." and the NUL */
            if (o + 4 <= size) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, esc, n);
        o += n;
    }
    out[o] = '\0';
}

static void call_init(struct call *call, const char *path, const char *op, const char *key,
                      size_t key_len, int64_t timeout_ms)
{
    char shown[ETCD_SHOWN_KEY + 4];

    memset(call, 0, sizeof(*call));
    call->path = path;
    call->timeout_ms = timeout_ms;
    printable(key, key_len, shown, sizeof(shown));
    (void)snprintf(call->subject, sizeof(call->subject), "%s %s", op, shown); /* fits */
}

static void call_init_lease(struct call *call, const char *path, const char *op, int64_t id,
                            int64_t timeout_ms)
{
    memset(call, 0, sizeof(*call));
    call->path = path;
    call->timeout_ms = timeout_ms;
    (void)snprintf(call->subject, sizeof(call->subject), "%s %" PRId64, op, id);
}

/* Append "etcd ENDPOINT: SUBJECT: reason" to the client's message ("; " between several). */
static void add_error(struct etcd_client *c, const char *endpoint, const char *subject,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct etcd_client *c, const char *endpoint, const char *subject,
                      const char *fmt, ...)
{
    char reason[512];
    size_t used = strlen(c->error);
    size_t room = sizeof(c->error) - used;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (n < 0)
        memcpy(reason, "(unprintable)", sizeof("(unprintable)"));
    n = snprintf(c->error + used, room, "%setcd %.200s: %s: %s", used ? "; " : "", endpoint,
                 subject, reason);
    if (n >= 0 && (size_t)n >= room)
        memcpy(c->error + sizeof(c->error) - 4, "...", 4);
    /* the endpoint is the caller's text and may be cut inside a character */
    core_utf8_sanitize(c->error);
}

/* ---- base64 (standard alphabet, padded, strict) --------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Encode into a new NUL-terminated string (core_free); NULL when out of memory. */
static char *base64_encode(const void *data, size_t len, size_t *ret_len)
{
    const unsigned char *in = data;
    size_t out_len, o = 0;
    char *out;

    if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
        return NULL;
    out_len = (len + 2) / 3 * 4;
    out = core_malloc(out_len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;
        if (left > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (left > 2)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    *ret_len = out_len;
    return out;
}

/*
 * Decode padded standard base64 into a new buffer with a NUL after the data (core_free).
 * Rejects (-EPROTO) a length that is not a multiple of 4, characters outside the alphabet,
 * padding anywhere but at the end, and nonzero bits in the padding. -ENOMEM.
 */
static int base64_decode(const char *text, size_t len, unsigned char **ret, size_t *ret_len)
{
    size_t pad = 0, out_len, o = 0;
    unsigned char *out;

    if (len % 4 != 0)
        return -EPROTO;
    if (len > 0 && text[len - 1] == '=')
        pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
    out_len = len / 4 * 3 - pad;
    out = core_malloc(out_len + 1);
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int v[4];
        for (size_t k = 0; k < 4; k++) {
            if (last && k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value((unsigned char)text[i + k]);
            if (v[k] < 0)
                goto invalid;
        }
        uint32_t bits =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(bits >> 16);
        if (last && pad == 2) {
            if (bits & 0xffff)
                goto invalid;
            break;
        }
        out[o++] = (unsigned char)(bits >> 8);
        if (last && pad == 1) {
            if (bits & 0xff)
                goto invalid;
            break;
        }
        out[o++] = (unsigned char)bits;
    }
    out[o] = '\0';
    *ret = out;
    *ret_len = out_len;
    return 0;
invalid:
    core_free(out);
    return -EPROTO;
}

/* ---- JSON helpers -------------------------------------------------------------------------- */

/* obj[name] = value, taking value (even NULL, or on failure: jansson frees it). */
static int set_new(json_t *obj, const char *name, json_t *value)
{
    if (!value)
        return -ENOMEM;
    return json_object_set_new(obj, name, value) == 0 ? 0 : -ENOMEM;
}

static int set_bytes(json_t *obj, const char *name, const void *data, size_t len)
{
    size_t text_len;
    char *text = base64_encode(data, len, &text_len);
    if (!text)
        return -ENOMEM;
    int rc = set_new(obj, name, json_stringn(text, text_len));
    core_free(text);
    return rc;
}

/* int64 as a decimal string, as etcd itself writes them. */
static int set_int64(json_t *obj, const char *name, int64_t v)
{
    char text[24];
    (void)snprintf(text, sizeof(text), "%" PRId64, v); /* 20 characters at most */
    return set_new(obj, name, json_string(text));
}

/* An int64 field: a JSON string of decimal digits or a JSON integer; absent means 0. */
static int get_int64(const json_t *obj, const char *name, int64_t *ret)
{
    const json_t *v = json_object_get(obj, name);

    if (!v) {
        *ret = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        *ret = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -EPROTO;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 20 || strlen(s) != len)
        return -EPROTO;
    if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
        return -EPROTO;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno != 0 || end != s + len)
        return -EPROTO;
    *ret = (int64_t)n;
    return 0;
}

/* A boolean field; absent means false. */
static int get_bool(const json_t *obj, const char *name, int *ret)
{
    const json_t *v = json_object_get(obj, name);
    if (!v) {
        *ret = 0;
        return 0;
    }
    if (!json_is_boolean(v))
        return -EPROTO;
    *ret = json_is_true(v);
    return 0;
}

/* A bytes field (base64); absent means empty. *ret is always allocated and NUL-terminated. */
static int get_bytes(const json_t *obj, const char *name, unsigned char **ret, size_t *ret_len)
{
    const json_t *v = json_object_get(obj, name);
    if (!v)
        return base64_decode("", 0, ret, ret_len);
    if (!json_is_string(v))
        return -EPROTO;
    return base64_decode(json_string_value(v), json_string_length(v), ret, ret_len);
}

/* An optional object member: NULL when absent, -EPROTO when present but not an object. */
static int get_object(const json_t *obj, const char *name, const json_t **ret)
{
    const json_t *v = json_object_get(obj, name);
    if (v && !json_is_object(v))
        return -EPROTO;
    *ret = v;
    return 0;
}

static int get_array(const json_t *obj, const char *name, const json_t **ret)
{
    const json_t *v = json_object_get(obj, name);
    if (v && !json_is_array(v))
        return -EPROTO;
    *ret = v;
    return 0;
}

/* header.revision of a response object (0 when absent). */
static int get_header_revision(const json_t *obj, int64_t *ret)
{
    const json_t *header;
    int rc = get_object(obj, "header", &header);
    if (rc < 0)
        return rc;
    if (!header) {
        *ret = 0;
        return 0;
    }
    return get_int64(header, "revision", ret);
}

/* ---- key-values ------------------------------------------------------------------------- */

void etcd_kv_fini(struct etcd_kv *kv)
{
    if (!kv)
        return;
    core_free(kv->key);
    core_free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_fini(struct etcd_kvs *kvs)
{
    if (!kvs)
        return;
    for (size_t i = 0; i < kvs->n; i++)
        etcd_kv_fini(&kvs->items[i]);
    core_free(kvs->items);
    memset(kvs, 0, sizeof(*kvs));
}

static int parse_kv(const json_t *j, struct etcd_kv *ret)
{
    struct etcd_kv kv;
    unsigned char *key = NULL;
    int rc;

    memset(&kv, 0, sizeof(kv));
    if (!json_is_object(j))
        return -EPROTO;
    if ((rc = get_int64(j, "create_revision", &kv.create_revision)) < 0 ||
        (rc = get_int64(j, "mod_revision", &kv.mod_revision)) < 0 ||
        (rc = get_int64(j, "version", &kv.version)) < 0 ||
        (rc = get_int64(j, "lease", &kv.lease)) < 0)
        return rc;
    rc = get_bytes(j, "key", &key, &kv.key_len);
    if (rc < 0)
        return rc;
    kv.key = (char *)key;
    rc = get_bytes(j, "value", &kv.value, &kv.value_len);
    if (rc < 0) {
        etcd_kv_fini(&kv);
        return rc;
    }
    *ret = kv;
    return 0;
}

/* Make room for `more` key-values after the kvs->n there are. */
static int reserve_kvs(struct etcd_kvs *kvs, size_t more)
{
    if (more > SIZE_MAX / sizeof(struct etcd_kv) - kvs->n)
        return -ENOMEM;
    struct etcd_kv *items = core_realloc(kvs->items, (kvs->n + more) * sizeof(*items));
    if (!items)
        return -ENOMEM;
    kvs->items = items;
    return 0;
}

/* Append the key-values of a JSON array (NULL: none) to kvs. */
static int append_kvs(struct etcd_kvs *kvs, const json_t *array)
{
    size_t count = array ? json_array_size(array) : 0;
    int rc;

    if (count == 0)
        return 0;
    if ((rc = reserve_kvs(kvs, count)) < 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        rc = parse_kv(json_array_get(array, i), &kvs->items[kvs->n]);
        if (rc < 0)
            return rc;
        kvs->n++;
    }
    return 0;
}

/* {"header":{"revision"},"kvs":[...]} (a range response, also inside a txn) into kvs. */
static int parse_range(const json_t *obj, struct etcd_kvs *ret)
{
    struct etcd_kvs kvs = {0};
    const json_t *array;
    int rc;

    if (!json_is_object(obj))
        return -EPROTO;
    if ((rc = get_header_revision(obj, &kvs.revision)) < 0 ||
        (rc = get_array(obj, "kvs", &array)) < 0 || (rc = append_kvs(&kvs, array)) < 0) {
        etcd_kvs_fini(&kvs);
        return rc;
    }
    *ret = kvs;
    return 0;
}

/* Parse a whole body as one JSON object. The JSON library can lose input when an allocation
 * fails while it reads, so any failed allocation makes the result -ENOMEM. */
static int load_object(const char *body, size_t len, json_t **ret)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);

    if (core_allocation_failed()) {
        json_decref(doc);
        return -ENOMEM;
    }
    if (!doc)
        return -EPROTO;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return -EPROTO;
    }
    *ret = doc;
    return 0;
}

/* The kvs of a range answer, of the response_range items of a txn answer and of the events
 * of a watch answer, appended to kvs in that order. */
static int append_nested_kvs(struct etcd_kvs *kvs, const json_t *obj)
{
    const json_t *array, *responses, *events, *item, *inner;
    size_t i;
    int rc;

    if ((rc = get_array(obj, "kvs", &array)) < 0 || (rc = append_kvs(kvs, array)) < 0 ||
        (rc = get_array(obj, "responses", &responses)) < 0 ||
        (rc = get_array(obj, "events", &events)) < 0)
        return rc;
    json_array_foreach (responses, i, item) {
        if (!json_is_object(item))
            return -EPROTO;
        if ((rc = get_object(item, "response_range", &inner)) < 0)
            return rc;
        if (inner &&
            ((rc = get_array(inner, "kvs", &array)) < 0 || (rc = append_kvs(kvs, array)) < 0))
            return rc;
    }
    json_array_foreach (events, i, item) {
        if (!json_is_object(item))
            return -EPROTO;
        if ((rc = get_object(item, "kv", &inner)) < 0)
            return rc;
        if (!inner)
            return -EPROTO;
        if ((rc = reserve_kvs(kvs, 1)) < 0 || (rc = parse_kv(inner, &kvs->items[kvs->n])) < 0)
            return rc;
        kvs->n++;
    }
    return 0;
}

int etcd_parse_range_response(const char *body, size_t len, struct etcd_kvs *out)
{
    struct etcd_kvs kvs = {0};
    const json_t *obj, *result;
    json_t *doc;
    int rc;

    if (!body || !out)
        return -EINVAL;
    rc = load_object(body, len, &doc);
    if (rc < 0)
        return rc;
    obj = doc;
    if ((rc = get_object(doc, "result", &result)) < 0)
        goto out;
    if (result)
        obj = result;
    if ((rc = get_header_revision(obj, &kvs.revision)) < 0 ||
        (rc = append_nested_kvs(&kvs, obj)) < 0)
        goto out;
    *out = kvs;
    memset(&kvs, 0, sizeof(kvs));
out:
    etcd_kvs_fini(&kvs);
    json_decref(doc);
    return rc;
}

/* ---- transport ---------------------------------------------------------------------------- */

static size_t buffer_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct buffer *b = user;
    size_t n = size * nmemb; /* libcurl guarantees size 1 */

    if (n > b->limit - b->len) {
        b->overflow = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = core_realloc(b->data, cap);
        if (!data)
            return 0;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int setopt_rc(CURLcode code)
{
    if (code == CURLE_OK)
        return 0;
    return code == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* The options every handle of the client carries: headers, no signals, no proxy, TLS. */
static int handle_setup(const struct etcd_client *c, CURL *easy, char *error_buffer)
{
    const struct curl_api *api = c->curl;
    int rc = 0;

    if ((rc = setopt_rc(api->easy_setopt(easy, CURLOPT_NOSIGNAL, 1L))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_HTTPHEADER, c->headers))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer))) < 0 ||
        /* etcd is reached directly: an http_proxy in the environment must not divert it */
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_PROXY, ""))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_POST, 1L))) < 0)
        return rc;
    if (c->ca.data) {
        /* only the given CA: drop the system bundle libcurl was built to trust */
        if ((rc = setopt_rc(api->easy_setopt(easy, CURLOPT_CAINFO, (char *)NULL))) < 0 ||
            (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_CAPATH, (char *)NULL))) < 0 ||
            (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_CAINFO_BLOB, &c->ca))) < 0)
            return rc;
    }
    if (c->cert.data) {
        if ((rc = setopt_rc(api->easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &c->cert))) < 0 ||
            (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM"))) < 0)
            return rc;
    }
    if (c->key.data) {
        if ((rc = setopt_rc(api->easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &c->key))) < 0 ||
            (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM"))) < 0)
            return rc;
    }
    return 0;
}

/* Point `easy` at endpoint+path with this body and these limits for one attempt. */
static int handle_aim(const struct etcd_client *c, CURL *easy, const char *endpoint,
                      const char *path, const char *body, size_t body_len, int64_t remaining_ms,
                      size_t endpoints_left)
{
    const struct curl_api *api = c->curl;
    size_t url_len = strlen(endpoint) + strlen(path) + 1;
    char *url = core_malloc(url_len);
    int64_t connect_ms = remaining_ms;
    int rc;

    if (!url)
        return -ENOMEM;
    (void)snprintf(url, url_len, "%s%s", endpoint, path); /* sized above */
    /* a black-holed endpoint must leave time for the others */
    if (endpoints_left > 1) {
        connect_ms = remaining_ms / (int64_t)endpoints_left;
        if (connect_ms < ETCD_MIN_CONNECT_MS)
            connect_ms = remaining_ms < ETCD_MIN_CONNECT_MS ? remaining_ms : ETCD_MIN_CONNECT_MS;
    }
    if ((rc = setopt_rc(api->easy_setopt(easy, CURLOPT_URL, url))) < 0 ||
        (rc = setopt_rc(
             api->easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_POSTFIELDS, body))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)remaining_ms))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms))) < 0)
        goto out;
out:
    core_free(url); /* libcurl copied it */
    return rc;
}

/* Serialise a request into a new buffer (core_free). */
static int dump_request(const json_t *request, char **ret, size_t *ret_len)
{
    size_t need = json_dumpb(request, NULL, 0, JSON_COMPACT);
    char *text;

    if (need == 0)
        return -ENOMEM;
    text = core_malloc(need);
    if (!text)
        return -ENOMEM;
    if (json_dumpb(request, text, need, JSON_COMPACT) != need || core_allocation_failed()) {
        core_free(text);
        return -ENOMEM;
    }
    *ret = text;
    *ret_len = need;
    return 0;
}

/* etcd's explanation in an error body: "message", else "error" (a string, or an object with
 * a "message"), else the start of the body. */
static void error_text(const char *body, size_t len, char *out, size_t size, int64_t *ret_code)
{
    json_error_t jerr;
    json_t *doc = body ? json_loadb(body, len, JSON_DISABLE_EOF_CHECK, &jerr) : NULL;
    const json_t *msg = NULL, *err;

    *ret_code = -1;
    if (json_is_object(doc)) {
        msg = json_object_get(doc, "message");
        err = json_object_get(doc, "error");
        if (!json_is_string(msg) && json_is_string(err))
            msg = err;
        else if (!json_is_string(msg) && json_is_object(err))
            msg = json_object_get(err, "message");
        if (json_is_integer(json_object_get(doc, "code")))
            *ret_code = json_integer_value(json_object_get(doc, "code"));
        else if (json_is_object(err) && json_is_integer(json_object_get(err, "grpc_code")))
            *ret_code = json_integer_value(json_object_get(err, "grpc_code"));
    }
    if (json_is_string(msg))
        printable(json_string_value(msg), json_string_length(msg), out, size);
    else if (body && len > 0)
        printable(body, len, out, size);
    else
        (void)snprintf(out, size, "no explanation");
    json_decref(doc);
}

/* etcd's answer is final, but "no leader", "leader changed", "request timed out" (gRPC
 * Unavailable, HTTP 503) and DeadlineExceeded (HTTP 504) pass: -EAGAIN; other errors -EPROTO. */
static int answer_error(long status, int64_t code)
{
    if (code == 14 || code == 4 || status == 503 || status == 504)
        return -EAGAIN;
    return -EPROTO;
}

/* Turn a complete HTTP answer into the response object, or -EPROTO/-ENOENT with a message. */
static int take_answer(struct etcd_client *c, const char *endpoint, const struct call *call,
                       long status, const struct buffer *body, json_t **ret_doc)
{
    char text[300];
    int64_t code;
    json_t *doc;
    int rc;

    if (status < 200 || status > 299) {
        error_text(body->data, body->len, text, sizeof(text), &code);
        if (call->not_found_ok && (status == 404 || code == 5))
            return -ENOENT;
        add_error(c, endpoint, call->subject, "HTTP %ld: %s (code %" PRId64 ")", status, text,
                  code);
        return answer_error(status, code);
    }
    rc = load_object(body->data ? body->data : "", body->len, &doc);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        printable(body->data ? body->data : "", body->len > 80 ? 80 : body->len, text,
                  sizeof(text));
        add_error(c, endpoint, call->subject, "unreadable answer: %s", text);
        return rc;
    }
    /* a gateway stream reports a late failure as {"error":{...}} with status 200 */
    if (json_object_get(doc, "error") && !json_is_null(json_object_get(doc, "error"))) {
        error_text(body->data, body->len, text, sizeof(text), &code);
        if (call->not_found_ok && code == 5) {
            json_decref(doc);
            return -ENOENT;
        }
        add_error(c, endpoint, call->subject, "%s (code %" PRId64 ")", text, code);
        json_decref(doc);
        return answer_error(status, code);
    }
    *ret_doc = doc;
    return 0;
}

/*
 * POST `request` to call->path: the last endpoint that answered first, then the others in
 * order, on transport failures only and within call->timeout_ms in total. A call that is not
 * idempotent goes to another endpoint only when nothing of it was sent. Returns 0 and the
 * answer object (json_decref), -ENOENT (call->not_found_ok), -EPROTO, -EAGAIN, -ENOMEM, with
 * the client's message set on failure.
 */
static int client_post(struct etcd_client *c, const struct call *call, const json_t *request,
                       json_t **ret_doc)
{
    const struct curl_api *api = c->curl;
    int64_t deadline = deadline_after(call->timeout_ms);
    struct buffer body = {.limit = ETCD_MAX_RESPONSE};
    json_t *doc = NULL;
    size_t tried = 0;
    char *text = NULL;
    size_t text_len;
    int rc;

    c->error[0] = '\0';
    if ((rc = dump_request(request, &text, &text_len)) < 0)
        return rc;
    rc = -EAGAIN;
    for (; tried < c->n_endpoints; tried++) {
        size_t idx = (c->last_good + tried) % c->n_endpoints;
        const char *endpoint = c->endpoints[idx];
        int64_t remaining = deadline - now_ms();
        long status = 0, sent = 0;

        if (remaining <= 0) {
            add_error(c, endpoint, call->subject, "not tried: timed out after %" PRId64 " ms",
                      call->timeout_ms);
            break;
        }
        body.len = 0;
        body.overflow = 0;
        c->curl_error[0] = '\0';
        rc = handle_aim(c, c->easy, endpoint, call->path, text, text_len, remaining,
                        c->n_endpoints - tried);
        if (rc < 0)
            break;
        if ((rc = setopt_rc(api->easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, buffer_write))) < 0 ||
            (rc = setopt_rc(api->easy_setopt(c->easy, CURLOPT_WRITEDATA, &body))) < 0)
            break;
        CURLcode code = api->easy_perform(c->easy);
        if (code == CURLE_OK) {
            (void)api->easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
            rc = take_answer(c, endpoint, call, status, &body, &doc);
            c->last_good = idx;
            break;
        }
        if (body.overflow) {
            add_error(c, endpoint, call->subject, "response too large (over %zu bytes)",
                      body.limit);
            rc = -EPROTO;
            break;
        }
        if (code == CURLE_WRITE_ERROR || code == CURLE_OUT_OF_MEMORY) {
            rc = -ENOMEM;
            break;
        }
        rc = -EAGAIN;
        (void)api->easy_getinfo(c->easy, CURLINFO_REQUEST_SIZE, &sent);
        /* a write that reached etcd may have been applied: sending it again could apply it
         * twice (or make a compare-and-swap report the first attempt's change as a conflict) */
        int final = !call->idempotent && sent > 0;
        const char *note = "";
        if (final)
            note = tried + 1 < c->n_endpoints ? " (the request may have been applied: not sent "
                                                "to another endpoint)"
                                              : " (the request may have been applied)";
        add_error(c, endpoint, call->subject, "%s%s",
                  c->curl_error[0] ? c->curl_error : api->easy_strerror(code), note);
        if (final)
            break;
    }
    core_free(body.data);
    core_free(text);
    /* an allocation that failed on the way may have cost an error's explanation, or (inside
     * the JSON library) part of the answer: nothing of this call is trusted */
    if (rc != -ENOMEM && core_allocation_failed()) {
        json_decref(doc);
        return -ENOMEM;
    }
    if (rc == 0) {
        *ret_doc = doc;
        if (c->error[0])
            core_log(MGO_LOG_DEBUG, "%s (then answered by %s)", c->error,
                     c->endpoints[c->last_good]);
        c->error[0] = '\0';
    }
    return rc;
}

/* ---- the client ----------------------------------------------------------------------------- */

static int valid_endpoint(const char *e)
{
    size_t scheme;

    if (strncmp(e, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(e, "https://", 8) == 0)
        scheme = 8;
    else
        return 0;
    if (e[scheme] == '\0' || e[scheme] == '/')
        return 0;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return 0;
    return 1;
}

static int copy_blob(struct curl_blob *blob, const char *pem, size_t len)
{
    if (!pem || len == 0)
        return 0;
    blob->data = core_strndup(pem, len);
    if (!blob->data)
        return -ENOMEM;
    blob->len = len;
    blob->flags = CURL_BLOB_COPY;
    return 0;
}

int etcd_client_new(const char *const *endpoints, size_t n, const struct etcd_tls *tls,
                    struct etcd_client **ret)
{
    const struct curl_api *api;
    struct etcd_client *c;
    int rc;

    if (!endpoints || n == 0 || !ret)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!endpoints[i] || !valid_endpoint(endpoints[i])) {
            core_log(MGO_LOG_ERROR, "etcd: endpoint %zu is not an http:// or https:// URL", i);
            return -EINVAL;
        }
    }
    rc = curl_api_get(&api);
    if (rc < 0) {
        core_log(MGO_LOG_ERROR, "etcd: %s", curl_api_error());
        return rc;
    }
    if (tls && (tls->ca_pem || tls->cert_pem || tls->key_pem) &&
        api->version_num < ETCD_CURL_BLOBS_VERSION) {
        core_log(MGO_LOG_ERROR, "etcd: TLS needs libcurl 7.77.0 or later (loaded %x)",
                 api->version_num);
        return -EAGAIN;
    }
    core_alloc_init();
    c = core_calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->curl = api;
    c->endpoints = core_calloc(n, sizeof(*c->endpoints));
    if (!c->endpoints)
        goto nomem;
    c->n_endpoints = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(endpoints[i]);
        while (len > 0 && endpoints[i][len - 1] == '/')
            len--;
        c->endpoints[i] = core_strndup(endpoints[i], len);
        if (!c->endpoints[i])
            goto nomem;
    }
    if (tls && ((rc = copy_blob(&c->ca, tls->ca_pem, tls->ca_len)) < 0 ||
                (rc = copy_blob(&c->cert, tls->cert_pem, tls->cert_len)) < 0 ||
                (rc = copy_blob(&c->key, tls->key_pem, tls->key_len)) < 0))
        goto fail;
    struct curl_slist *h = api->slist_append(NULL, "Content-Type: application/json");
    if (!h)
        goto nomem;
    c->headers = h;
    /* no "Expect: 100-continue" round trip before larger bodies */
    h = api->slist_append(c->headers, "Expect:");
    if (!h)
        goto nomem;
    c->easy = api->easy_init();
    if (!c->easy)
        goto nomem;
    if ((rc = handle_setup(c, c->easy, c->curl_error)) < 0)
        goto fail;
    *ret = c;
    return 0;
nomem:
    rc = -ENOMEM;
fail:
    etcd_client_free(c);
    return rc;
}

void etcd_client_free(struct etcd_client *c)
{
    if (!c)
        return;
    if (c->easy)
        c->curl->easy_cleanup(c->easy);
    if (c->headers)
        c->curl->slist_free_all(c->headers);
    for (size_t i = 0; c->endpoints && i < c->n_endpoints; i++)
        core_free(c->endpoints[i]);
    core_free(c->endpoints);
    core_free(c->ca.data);
    core_free(c->cert.data);
    core_free(c->key.data);
    core_free(c);
}

const char *etcd_last_error(const struct etcd_client *c)
{
    return c ? c->error : "";
}

/* ---- key-value calls ------------------------------------------------------------------------ */

/* Arguments every key call needs (a key may be empty only when `may_be_empty`); a message on
 * the client when it exists. */
static int check_key_call(struct etcd_client *c, const char *op, const char *key, size_t key_len,
                          int may_be_empty, int64_t timeout_ms)
{
    if (!c)
        return -EINVAL;
    c->error[0] = '\0';
    if ((!key && key_len > 0) || (key_len == 0 && !may_be_empty) || timeout_ms <= 0) {
        (void)snprintf(c->error, sizeof(c->error), "etcd: %s: %s", op,
                       timeout_ms <= 0 ? "timeout must be positive" : "no key");
        return -EINVAL;
    }
    return 0;
}

/* An answer etcd sent with success status but that does not have the expected shape. */
static int bad_answer(struct etcd_client *c, const struct call *call, int rc, const char *what)
{
    if (rc == -EPROTO)
        add_error(c, c->endpoints[c->last_good], call->subject, "unreadable answer: %s", what);
    return rc;
}

/* etcd's "prefix end": the prefix with its last byte below 0xff incremented and what follows
 * dropped; "\0" (no upper bound) when every byte is 0xff or the prefix is empty. */
static int prefix_end(const char *prefix, size_t len, char **ret, size_t *ret_len)
{
    size_t i = len;
    char *end;

    while (i > 0 && (unsigned char)prefix[i - 1] == 0xff)
        i--;
    if (i == 0) {
        end = core_strndup("", 0);
        if (!end)
            return -ENOMEM;
        *ret = end;
        *ret_len = 1; /* the single byte 0x00 */
        return 0;
    }
    end = core_strndup(prefix, i);
    if (!end)
        return -ENOMEM;
    end[i - 1] = (char)((unsigned char)end[i - 1] + 1);
    *ret = end;
    *ret_len = i;
    return 0;
}

/* Run a range call and parse its answer into *out. Takes `request`. */
static int range_call(struct etcd_client *c, struct call *call, json_t *request,
                      struct etcd_kvs *out)
{
    json_t *doc = NULL;
    int rc;

    call->idempotent = 1;
    rc = client_post(c, call, request, &doc);
    json_decref(request);
    if (rc < 0)
        return rc;
    rc = bad_answer(c, call, parse_range(doc, out), "range result");
    json_decref(doc);
    return rc;
}

int etcd_get(struct etcd_client *c, const char *key, size_t key_len, int64_t timeout_ms,
             struct etcd_kvs *out)
{
    struct call call;
    json_t *req;
    int rc;

    if ((rc = check_key_call(c, "get", key, key_len, 0, timeout_ms)) < 0)
        return rc;
    if (!out)
        return -EINVAL;
    call_init(&call, "/v3/kv/range", "get", key, key_len, timeout_ms);
    req = json_object();
    if (!req || (rc = set_bytes(req, "key", key, key_len)) < 0) {
        json_decref(req);
        return -ENOMEM;
    }
    return range_call(c, &call, req, out);
}

int etcd_get_prefix(struct etcd_client *c, const char *prefix, size_t prefix_len, int keys_only,
                    int64_t timeout_ms, struct etcd_kvs *out)
{
    struct call call;
    char *end = NULL;
    size_t end_len;
    json_t *req;
    int rc;

    if ((rc = check_key_call(c, "get prefix", prefix, prefix_len, 1, timeout_ms)) < 0)
        return rc;
    if (!out)
        return -EINVAL;
    if (!prefix)
        prefix = "";
    call_init(&call, "/v3/kv/range", "get prefix", prefix, prefix_len, timeout_ms);
    if ((rc = prefix_end(prefix, prefix_len, &end, &end_len)) < 0)
        return rc;
    req = json_object();
    /* the empty prefix means every key: key "\0" and range_end "\0", as etcd's clients do */
    if (!req || set_bytes(req, "key", prefix_len ? prefix : "", prefix_len ? prefix_len : 1) < 0 ||
        set_bytes(req, "range_end", end, end_len) < 0 ||
        (keys_only && set_new(req, "keys_only", json_true()) < 0)) {
        json_decref(req);
        core_free(end);
        return -ENOMEM;
    }
    core_free(end);
    return range_call(c, &call, req, out);
}

int etcd_put(struct etcd_client *c, const char *key, size_t key_len, const void *value,
             size_t value_len, int64_t lease, int64_t timeout_ms, int64_t *ret_revision)
{
    struct call call;
    json_t *req, *doc = NULL;
    int64_t revision;
    int rc;

    if ((rc = check_key_call(c, "put", key, key_len, 0, timeout_ms)) < 0)
        return rc;
    if ((!value && value_len > 0) || lease < 0)
        return -EINVAL;
    call_init(&call, "/v3/kv/put", "put", key, key_len, timeout_ms);
    req = json_object();
    if (!req || set_bytes(req, "key", key, key_len) < 0 ||
        set_bytes(req, "value", value ? value : "", value_len) < 0 ||
        (lease && set_int64(req, "lease", lease) < 0)) {
        json_decref(req);
        return -ENOMEM;
    }
    rc = client_post(c, &call, req, &doc);
    json_decref(req);
    if (rc < 0)
        return rc;
    rc = bad_answer(c, &call, get_header_revision(doc, &revision), "header.revision");
    json_decref(doc);
    if (rc == 0 && ret_revision)
        *ret_revision = revision;
    return rc;
}

int etcd_delete(struct etcd_client *c, const char *key, size_t key_len, int64_t timeout_ms,
                int64_t *ret_deleted)
{
    struct call call;
    json_t *req, *doc = NULL;
    int64_t deleted;
    int rc;

    if ((rc = check_key_call(c, "delete", key, key_len, 0, timeout_ms)) < 0)
        return rc;
    call_init(&call, "/v3/kv/deleterange", "delete", key, key_len, timeout_ms);
    call.idempotent = 1; /* deleting again changes nothing; the count may then read 0 */
    req = json_object();
    if (!req || set_bytes(req, "key", key, key_len) < 0) {
        json_decref(req);
        return -ENOMEM;
    }
    rc = client_post(c, &call, req, &doc);
    json_decref(req);
    if (rc < 0)
        return rc;
    rc = bad_answer(c, &call, get_int64(doc, "deleted", &deleted), "deleted");
    json_decref(doc);
    if (rc == 0 && ret_deleted)
        *ret_deleted = deleted;
    return rc;
}

/* {"compare":[mod_revision (or create_revision 0) EQUAL], "success":[op], "failure":[...]} */
static json_t *txn_request(const char *key, size_t key_len, int64_t expected_mod_revision,
                           const char *success_name, json_t *success_op, json_t *failure_op)
{
    json_t *req = json_object(), *cmp = json_object(), *list;
    int rc = 0;

    if (!req || !cmp || set_bytes(cmp, "key", key, key_len) < 0 ||
        set_new(cmp, "result", json_string("EQUAL")) < 0)
        goto nomem;
    if (expected_mod_revision == 0)
        rc = set_new(cmp, "target", json_string("CREATE")) < 0 ||
             set_int64(cmp, "create_revision", 0) < 0;
    else
        rc = set_new(cmp, "target", json_string("MOD")) < 0 ||
             set_int64(cmp, "mod_revision", expected_mod_revision) < 0;
    if (rc)
        goto nomem;
    if (set_new(req, "compare", json_array()) < 0)
        goto nomem;
    rc = json_array_append_new(json_object_get(req, "compare"), cmp);
    cmp = NULL; /* taken by json_array_append_new, also when it fails */
    if (rc < 0)
        goto nomem;
    list = json_pack("[{s:o}]", success_name, success_op);
    success_op = NULL; /* taken by json_pack, also when it fails */
    if (set_new(req, "success", list) < 0)
        goto nomem;
    if (failure_op) {
        list = json_pack("[{s:o}]", "request_range", failure_op);
        failure_op = NULL;
        if (set_new(req, "failure", list) < 0)
            goto nomem;
    }
    return req;
nomem:
    json_decref(req);
    json_decref(cmp);
    json_decref(success_op);
    json_decref(failure_op);
    return NULL;
}

/* Run a txn (takes `req`); *ret_succeeded and the first response's `name` object. */
static int txn_call(struct etcd_client *c, const struct call *call, json_t *req, int *ret_succeeded,
                    json_t **ret_doc)
{
    json_t *doc = NULL;
    int rc;

    if (!req)
        return -ENOMEM;
    rc = client_post(c, call, req, &doc);
    json_decref(req);
    if (rc < 0)
        return rc;
    rc = bad_answer(c, call, get_bool(doc, "succeeded", ret_succeeded), "succeeded");
    if (rc < 0) {
        json_decref(doc);
        return rc;
    }
    *ret_doc = doc;
    return 0;
}

/* responses[0][name] of a txn answer, which must be there. */
static int txn_first_response(const json_t *doc, const char *name, const json_t **ret)
{
    const json_t *responses, *first;
    int rc = get_array(doc, "responses", &responses);

    if (rc < 0)
        return rc;
    first = json_array_get(responses, 0);
    if (!json_is_object(first))
        return -EPROTO;
    if ((rc = get_object(first, name, ret)) < 0)
        return rc;
    return *ret ? 0 : -EPROTO;
}

int etcd_put_if(struct etcd_client *c, const char *key, size_t key_len, const void *value,
                size_t value_len, int64_t expected_mod_revision, int64_t lease, int64_t timeout_ms,
                int *ret_swapped, struct etcd_kvs *current, int64_t *ret_revision)
{
    struct etcd_kvs state = {0};
    const json_t *range;
    struct call call;
    json_t *put, *get, *doc = NULL;
    int swapped = 0, rc;
    int64_t revision = 0;

    if ((rc = check_key_call(c, "put_if", key, key_len, 0, timeout_ms)) < 0)
        return rc;
    if ((!value && value_len > 0) || lease < 0 || expected_mod_revision < 0 || !ret_swapped)
        return -EINVAL;
    call_init(&call, "/v3/kv/txn", "put_if", key, key_len, timeout_ms);
    put = json_object();
    get = json_object();
    if (!put || !get || set_bytes(put, "key", key, key_len) < 0 ||
        set_bytes(put, "value", value ? value : "", value_len) < 0 ||
        (lease && set_int64(put, "lease", lease) < 0) || set_bytes(get, "key", key, key_len) < 0) {
        json_decref(put);
        json_decref(get);
        return -ENOMEM;
    }
    rc = txn_call(c, &call,
                  txn_request(key, key_len, expected_mod_revision, "request_put", put, get),
                  &swapped, &doc);
    if (rc < 0)
        return rc;
    rc = bad_answer(c, &call, get_header_revision(doc, &revision), "header.revision");
    if (rc == 0 && !swapped) {
        rc = txn_first_response(doc, "response_range", &range);
        if (rc == 0)
            rc = parse_range(range, &state);
        rc = bad_answer(c, &call, rc, "response_range");
    }
    json_decref(doc);
    if (rc < 0)
        return rc;
    *ret_swapped = swapped;
    if (ret_revision && swapped)
        *ret_revision = revision;
    if (current) {
        state.revision = revision;
        *current = state;
    } else {
        etcd_kvs_fini(&state);
    }
    return 0;
}

int etcd_delete_if(struct etcd_client *c, const char *key, size_t key_len,
                   int64_t expected_mod_revision, int64_t timeout_ms, int *ret_deleted)
{
    const json_t *response;
    struct call call;
    json_t *del, *doc = NULL;
    int64_t deleted = 0;
    int succeeded = 0, rc;

    if ((rc = check_key_call(c, "delete_if", key, key_len, 0, timeout_ms)) < 0)
        return rc;
    if (expected_mod_revision < 0 || !ret_deleted)
        return -EINVAL;
    call_init(&call, "/v3/kv/txn", "delete_if", key, key_len, timeout_ms);
    del = json_object();
    if (!del || set_bytes(del, "key", key, key_len) < 0) {
        json_decref(del);
        return -ENOMEM;
    }
    rc = txn_call(
        c, &call,
        txn_request(key, key_len, expected_mod_revision, "request_delete_range", del, NULL),
        &succeeded, &doc);
    if (rc < 0)
        return rc;
    if (succeeded) {
        rc = txn_first_response(doc, "response_delete_range", &response);
        if (rc == 0)
            rc = get_int64(response, "deleted", &deleted);
        rc = bad_answer(c, &call, rc, "response_delete_range");
    }
    json_decref(doc);
    if (rc < 0)
        return rc;
    *ret_deleted = deleted > 0;
    return 0;
}

/* ---- leases --------------------------------------------------------------------------------- */

static int lease_call(struct etcd_client *c, struct call *call, int64_t id, int64_t ttl,
                      json_t **ret_doc)
{
    json_t *req = json_object();
    int rc;

    if (!req || (id && set_int64(req, "ID", id) < 0) || (ttl && set_int64(req, "TTL", ttl) < 0)) {
        json_decref(req);
        return -ENOMEM;
    }
    rc = client_post(c, call, req, ret_doc);
    json_decref(req);
    return rc;
}

int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t timeout_ms, int64_t *ret_id)
{
    struct call call;
    json_t *doc = NULL;
    int64_t id;
    int rc;

    if (!c || ttl_s <= 0 || timeout_ms <= 0 || !ret_id)
        return -EINVAL;
    call_init_lease(&call, "/v3/lease/grant", "lease grant ttl", ttl_s, timeout_ms);
    rc = lease_call(c, &call, 0, ttl_s, &doc);
    if (rc < 0)
        return rc;
    rc = get_int64(doc, "ID", &id);
    if (rc == 0 && id == 0)
        rc = -EPROTO;
    rc = bad_answer(c, &call, rc, "ID");
    json_decref(doc);
    if (rc == 0)
        *ret_id = id;
    return rc;
}

int etcd_lease_keepalive(struct etcd_client *c, int64_t id, int64_t timeout_ms, int64_t *ret_ttl)
{
    const json_t *result;
    struct call call;
    json_t *doc = NULL;
    int64_t ttl = 0;
    int rc;

    if (!c || id == 0 || timeout_ms <= 0 || !ret_ttl)
        return -EINVAL;
    call_init_lease(&call, "/v3/lease/keepalive", "lease keepalive", id, timeout_ms);
    call.idempotent = 1;
    rc = lease_call(c, &call, id, 0, &doc);
    if (rc < 0)
        return rc;
    /* a stream answer: {"result":{...,"TTL"}}; an expired or unknown lease has no TTL */
    rc = get_object(doc, "result", &result);
    if (rc == 0 && !result)
        rc = -EPROTO;
    if (rc == 0)
        rc = get_int64(result, "TTL", &ttl);
    rc = bad_answer(c, &call, rc, "result.TTL");
    json_decref(doc);
    if (rc == 0)
        *ret_ttl = ttl > 0 ? ttl : 0;
    return rc;
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, int64_t timeout_ms)
{
    struct call call;
    json_t *doc = NULL;
    int rc;

    if (!c || id == 0 || timeout_ms <= 0)
        return -EINVAL;
    call_init_lease(&call, "/v3/lease/revoke", "lease revoke", id, timeout_ms);
    call.idempotent = 1;
    call.not_found_ok = 1;
    rc = lease_call(c, &call, id, 0, &doc);
    json_decref(doc);
    return rc == -ENOENT ? 0 : rc;
}

/* ---- watch ---------------------------------------------------------------------------------- */

struct watch {
    struct etcd_client *c;
    const struct call *call;
    const char *endpoint;
    CURL *easy;
    int (*on_event)(void *user, const struct etcd_event *ev);
    void *user;
    struct buffer pending; /* bytes after the last newline seen */
    size_t scanned;        /* pending[0..scanned) holds no newline */
    long status;           /* HTTP status, 0 until the first body bytes */
    int received;          /* some body bytes came */
    int stopped;           /* on_event asked to stop */
    int rc;                /* a failure found while reading the stream */
    int64_t next_revision;
};

static int watch_fail(struct watch *w, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int watch_fail(struct watch *w, int rc, const char *fmt, ...)
{
    char reason[400];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(reason, sizeof(reason), fmt, ap) < 0)
        memcpy(reason, "(unprintable)", sizeof("(unprintable)"));
    va_end(ap);
    add_error(w->c, w->endpoint, w->call->subject, "%s", reason);
    w->rc = rc;
    return rc;
}

/* Deliver the events of one watch answer in order; stop when on_event says so. */
static int watch_deliver(struct watch *w, const json_t *result, const json_t *events)
{
    const json_t *item, *type, *kv, *prev;
    int64_t revision;
    size_t i;
    int rc;

    if ((rc = get_header_revision(result, &revision)) < 0)
        return watch_fail(w, rc, "unreadable watch answer: header.revision");
    json_array_foreach (events, i, item) {
        struct etcd_kv now_kv, prev_kv;
        struct etcd_event ev = {.type = ETCD_EVENT_PUT, .revision = revision};

        if (!json_is_object(item) || get_object(item, "kv", &kv) < 0 || !kv ||
            get_object(item, "prev_kv", &prev) < 0)
            return watch_fail(w, -EPROTO, "unreadable watch event %zu", i);
        type = json_object_get(item, "type"); /* absent: PUT (0) */
        if ((json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) ||
            (json_is_integer(type) && json_integer_value(type) == 1))
            ev.type = ETCD_EVENT_DELETE;
        else if (type && !(json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0) &&
                 !(json_is_integer(type) && json_integer_value(type) == 0))
            return watch_fail(w, -EPROTO, "watch event %zu: unknown type", i);
        if ((rc = parse_kv(kv, &now_kv)) < 0)
            return rc == -EPROTO ? watch_fail(w, rc, "unreadable watch event %zu: kv", i)
                                 : (w->rc = rc);
        if (prev && (rc = parse_kv(prev, &prev_kv)) < 0) {
            etcd_kv_fini(&now_kv);
            return rc == -EPROTO ? watch_fail(w, rc, "unreadable watch event %zu: prev_kv", i)
                                 : (w->rc = rc);
        }
        ev.kv = &now_kv;
        ev.prev_kv = prev ? &prev_kv : NULL;
        int stop = w->on_event(w->user, &ev);
        w->next_revision = now_kv.mod_revision + 1;
        etcd_kv_fini(&now_kv);
        if (prev)
            etcd_kv_fini(&prev_kv);
        if (stop) {
            w->stopped = 1;
            return 0;
        }
    }
    return 0;
}

/* One newline-delimited message of the stream. */
static int watch_message(struct watch *w, const char *text, size_t len)
{
    const json_t *result, *events;
    int64_t compact_revision = 0;
    int canceled, created, rc;
    json_t *doc;

    rc = load_object(text, len, &doc);
    if (rc == -ENOMEM)
        return w->rc = rc;
    if (rc < 0)
        return watch_fail(w, rc, "unreadable watch answer");
    if (json_object_get(doc, "error")) {
        char reason[300];
        int64_t code;
        error_text(text, len, reason, sizeof(reason), &code);
        rc = watch_fail(w, answer_error(0, code), "watch failed: %s (code %" PRId64 ")", reason,
                        code);
        goto out;
    }
    if (get_object(doc, "result", &result) < 0 || !result ||
        get_bool(result, "canceled", &canceled) < 0 || get_bool(result, "created", &created) < 0 ||
        get_int64(result, "compact_revision", &compact_revision) < 0 ||
        get_array(result, "events", &events) < 0) {
        rc = watch_fail(w, -EPROTO, "unreadable watch answer");
        goto out;
    }
    if (canceled) {
        const json_t *reason = json_object_get(result, "cancel_reason");
        if (compact_revision > 0)
            rc = watch_fail(w, -EPROTO,
                            "watch canceled by etcd: revision %" PRId64
                            " is compacted (compact_revision %" PRId64 ")",
                            w->next_revision, compact_revision);
        else
            rc = watch_fail(w, -EPROTO, "watch canceled by etcd: %.200s",
                            json_is_string(reason) ? json_string_value(reason) : "no reason");
        goto out;
    }
    if (created && w->next_revision == 0) {
        /* watching "from now": the events to come are after the revision etcd reports */
        int64_t revision;
        if ((rc = get_header_revision(result, &revision)) < 0) {
            rc = watch_fail(w, rc, "unreadable watch answer: header.revision");
            goto out;
        }
        w->next_revision = revision + 1;
    }
    rc = watch_deliver(w, result, events);
out:
    json_decref(doc);
    return rc;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct watch *w = user;
    size_t n = size * nmemb;
    struct buffer *b = &w->pending;
    size_t start = 0;

    if (!w->received) {
        w->received = 1;
        (void)w->c->curl->easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &w->status);
        if (w->status != 200)
            b->limit = ETCD_MAX_ERROR_BODY; /* kept whole for the message */
    }
    if (buffer_write(ptr, 1, n, b) != n) {
        if (w->status != 200 && b->overflow)
            return n; /* the start of an error body is enough */
        if (b->overflow)
            (void)watch_fail(w, -EPROTO, "watch answer too large (over %zu bytes)", b->limit);
        else
            w->rc = -ENOMEM;
        return 0;
    }
    if (w->status != 200)
        return n;
    for (size_t i = w->scanned; i < b->len; i++) {
        if (b->data[i] != '\n')
            continue;
        size_t line = i - start;
        while (line > 0 && (b->data[start + line - 1] == '\r' || b->data[start + line - 1] == ' '))
            line--;
        if (line > 0 && watch_message(w, b->data + start, line) < 0)
            return 0;
        start = i + 1;
        if (w->stopped)
            return 0; /* aborts the transfer: success, see etcd_watch_prefix */
    }
    memmove(b->data, b->data + start, b->len - start);
    b->len -= start;
    w->scanned = b->len;
    return n;
}

/* One attempt at one endpoint. 0 (stopped), or a failure; *ret_retry when another endpoint
 * may be tried (nothing came from this one). */
static int watch_attempt(struct watch *w, const char *body, size_t body_len, int64_t remaining,
                         size_t endpoints_left, int *ret_retry)
{
    const struct curl_api *api = w->c->curl;
    char curl_error[CURL_ERROR_SIZE] = "";
    CURLcode code;
    int rc;

    *ret_retry = 0;
    w->rc = 0;
    w->pending.len = 0;
    w->pending.limit = ETCD_MAX_RESPONSE;
    w->pending.overflow = 0;
    w->scanned = 0;
    w->status = 0;
    w->received = 0;
    w->easy = api->easy_init();
    if (!w->easy)
        return -ENOMEM;
    if ((rc = handle_setup(w->c, w->easy, curl_error)) < 0 ||
        (rc = handle_aim(w->c, w->easy, w->endpoint, "/v3/watch", body, body_len, remaining,
                         endpoints_left)) < 0 ||
        (rc = setopt_rc(api->easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_write))) < 0 ||
        (rc = setopt_rc(api->easy_setopt(w->easy, CURLOPT_WRITEDATA, w))) < 0)
        goto out;
    code = api->easy_perform(w->easy);
    if (w->stopped) {
        rc = 0;
    } else if (w->rc < 0) {
        rc = w->rc;
    } else if (w->received && w->status != 200) {
        char text[300];
        int64_t grpc_code;
        error_text(w->pending.data, w->pending.len, text, sizeof(text), &grpc_code);
        rc = watch_fail(w, answer_error(w->status, grpc_code), "HTTP %ld: %s (code %" PRId64 ")",
                        w->status, text, grpc_code);
    } else if (code == CURLE_OK) {
        rc = watch_fail(w, -EAGAIN, "the watch stream ended");
    } else if (code == CURLE_OPERATION_TIMEDOUT && w->received) {
        rc = watch_fail(w, -EAGAIN, "timed out after %" PRId64 " ms (next revision %" PRId64 ")",
                        w->call->timeout_ms, w->next_revision);
    } else {
        rc = watch_fail(w, -EAGAIN, "%s", curl_error[0] ? curl_error : api->easy_strerror(code));
        *ret_retry = !w->received;
    }
out:
    api->easy_cleanup(w->easy);
    w->easy = NULL;
    return rc;
}

int etcd_watch_prefix(struct etcd_client *c, const char *prefix, size_t prefix_len,
                      int64_t start_revision, int64_t timeout_ms,
                      int (*on_event)(void *user, const struct etcd_event *ev), void *user,
                      int64_t *ret_next_revision)
{
    struct watch w = {.c = c, .on_event = on_event, .user = user};
    int64_t deadline = deadline_after(timeout_ms);
    struct call call;
    char *end = NULL, *body = NULL;
    size_t end_len, body_len;
    json_t *req = NULL, *create;
    int rc, retry = 1;

    if ((rc = check_key_call(c, "watch", prefix, prefix_len, 0, timeout_ms)) < 0)
        return rc;
    if (!on_event || start_revision < 0)
        return -EINVAL;
    call_init(&call, "/v3/watch", "watch", prefix, prefix_len, timeout_ms);
    w.call = &call;
    w.next_revision = start_revision;
    if ((rc = prefix_end(prefix, prefix_len, &end, &end_len)) < 0)
        return rc;
    create = json_object();
    if (!create || set_bytes(create, "key", prefix, prefix_len) < 0 ||
        set_bytes(create, "range_end", end, end_len) < 0 ||
        set_new(create, "prev_kv", json_true()) < 0 ||
        (start_revision && set_int64(create, "start_revision", start_revision) < 0)) {
        json_decref(create);
        rc = -ENOMEM;
        goto out;
    }
    req = json_pack("{s:o}", "create_request", create); /* takes create, also on failure */
    if (!req) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = dump_request(req, &body, &body_len)) < 0)
        goto out;
    rc = -EAGAIN;
    for (size_t tried = 0; retry && tried < c->n_endpoints; tried++) {
        size_t idx = (c->last_good + tried) % c->n_endpoints;
        int64_t remaining = deadline - now_ms();
        w.endpoint = c->endpoints[idx];
        if (remaining <= 0) {
            add_error(c, w.endpoint, call.subject, "not tried: timed out after %" PRId64 " ms",
                      timeout_ms);
            break;
        }
        rc = watch_attempt(&w, body, body_len, remaining, c->n_endpoints - tried, &retry);
        if (w.received)
            c->last_good = idx;
    }
    if (rc != -ENOMEM && core_allocation_failed())
        rc = -ENOMEM; /* see client_post */
    if (rc == 0)
        c->error[0] = '\0';
    if ((rc == 0 || rc == -EAGAIN) && ret_next_revision)
        *ret_next_revision = w.next_revision;
out:
    core_free(w.pending.data);
    core_free(body);
    core_free(end);
    json_decref(req);
    return rc;
}
