/* Failure answers: the Status body, its reason, code, causes and retry-after. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kc_internal.h"

static const struct {
    enum kc_reason reason;
    const char *name;
} reasons[] = {
    {KC_REASON_UNAUTHORIZED, "Unauthorized"},
    {KC_REASON_FORBIDDEN, "Forbidden"},
    {KC_REASON_NOT_FOUND, "NotFound"},
    {KC_REASON_ALREADY_EXISTS, "AlreadyExists"},
    {KC_REASON_CONFLICT, "Conflict"},
    {KC_REASON_GONE, "Gone"},
    {KC_REASON_EXPIRED, "Expired"},
    {KC_REASON_INVALID, "Invalid"},
    {KC_REASON_TOO_MANY_REQUESTS, "TooManyRequests"},
    {KC_REASON_TIMEOUT, "Timeout"},
    {KC_REASON_SERVER_TIMEOUT, "ServerTimeout"},
    {KC_REASON_INTERNAL_ERROR, "InternalError"},
    {KC_REASON_SERVICE_UNAVAILABLE, "ServiceUnavailable"},
    {KC_REASON_BAD_REQUEST, "BadRequest"},
    {KC_REASON_METHOD_NOT_ALLOWED, "MethodNotAllowed"},
    {KC_REASON_NOT_ACCEPTABLE, "NotAcceptable"},
    {KC_REASON_REQUEST_ENTITY_TOO_LARGE, "RequestEntityTooLarge"},
    {KC_REASON_UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"},
};

const char *kc_reason_name(enum kc_reason reason)
{
    if (reason == KC_REASON_NONE)
        return "";
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].reason == reason)
            return reasons[i].name;
    return "Unknown";
}

enum kc_reason kc_reason_parse(const char *text)
{
    if (!text)
        return KC_REASON_UNKNOWN;
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (strcmp(reasons[i].name, text) == 0)
            return reasons[i].reason;
    return KC_REASON_UNKNOWN;
}

/* The reason a bare code implies (apimachinery's NewGenericServerResponse, plus 406, 410, 413,
 * 415 and 503, whose reasons map to those codes one to one). */
static enum kc_reason reason_of_code(int code, const char *method)
{
    switch (code) {
    case 400:
        return KC_REASON_BAD_REQUEST;
    case 401:
        return KC_REASON_UNAUTHORIZED;
    case 403:
        return KC_REASON_FORBIDDEN;
    case 404:
        return KC_REASON_NOT_FOUND;
    case 405:
        return KC_REASON_METHOD_NOT_ALLOWED;
    case 406:
        return KC_REASON_NOT_ACCEPTABLE;
    case 409:
        return method && strcmp(method, "POST") == 0 ? KC_REASON_ALREADY_EXISTS
                                                     : KC_REASON_CONFLICT;
    case 410:
        return KC_REASON_GONE;
    case 413:
        return KC_REASON_REQUEST_ENTITY_TOO_LARGE;
    case 415:
        return KC_REASON_UNSUPPORTED_MEDIA_TYPE;
    case 422:
        return KC_REASON_INVALID;
    case 429:
        return KC_REASON_TOO_MANY_REQUESTS;
    case 503:
        return KC_REASON_SERVICE_UNAVAILABLE;
    case 504:
        return KC_REASON_TIMEOUT;
    default:
        return code >= 500 ? KC_REASON_INTERNAL_ERROR : KC_REASON_UNKNOWN;
    }
}

void kc_status_fini(struct kc_status *st)
{
    if (!st)
        return;
    free(st->reason_text);
    free(st->message);
    free(st->details_name);
    free(st->details_kind);
    for (size_t i = 0; i < st->n_causes; i++) {
        free(st->causes[i].type);
        free(st->causes[i].message);
        free(st->causes[i].field);
    }
    free(st->causes);
    memset(st, 0, sizeof(*st));
}

/* A string member, "" when absent or not a string; NULL only on ENOMEM. */
static char *member(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    return strdup(json_is_string(v) ? json_string_value(v) : "");
}

/* Delay-seconds of a Retry-After header; 0 when absent or not a plain non-negative integer. */
static int64_t parse_retry_after(const char *h)
{
    int64_t v = 0;

    if (!h)
        return 0;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h < '0' || *h > '9')
        return 0;
    for (; *h >= '0' && *h <= '9'; h++) {
        if (v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*h - '0');
    }
    while (*h == ' ' || *h == '\t' || *h == '\r' || *h == '\n')
        h++;
    return *h ? 0 : v;
}

static int decode_causes(const json_t *causes, struct kc_status *st)
{
    const json_t *c;
    size_t i, n = 0;

    if (!json_is_array(causes) || json_array_size(causes) == 0)
        return 0;
    st->causes = calloc(json_array_size(causes), sizeof(*st->causes));
    if (!st->causes)
        return -ENOMEM;
    json_array_foreach (causes, i, c) {
        if (!json_is_object(c))
            continue;
        struct kc_cause *k = &st->causes[n++];
        st->n_causes = n;
        if (!(k->type = member(c, "reason")) || !(k->message = member(c, "message")) ||
            !(k->field = member(c, "field")))
            return -ENOMEM;
    }
    return 0;
}

int kc_status_from_json(int http_code, const char *method, const json_t *obj,
                        const char *retry_after, struct kc_status *out)
{
    struct kc_status st = {.http_code = http_code, .code = http_code};
    const json_t *details = NULL, *code, *ra;
    bool is_status = json_is_object(obj) && json_is_string(json_object_get(obj, "kind")) &&
                     strcmp(json_string_value(json_object_get(obj, "kind")), "Status") == 0;
    int rc = -ENOMEM;

    if (is_status) {
        code = json_object_get(obj, "code");
        if (json_is_integer(code) && json_integer_value(code) > 0 &&
            json_integer_value(code) < 1000)
            st.code = (int)json_integer_value(code);
        details = json_object_get(obj, "details");
        if (!json_is_object(details))
            details = NULL;
        if (!(st.reason_text = member(obj, "reason")) || !(st.message = member(obj, "message")))
            goto fail;
    } else {
        if (!(st.reason_text = strdup("")) ||
            !(st.message = strdup(obj ? "the answer is not a Status" : "no Status in the answer")))
            goto fail;
    }
    if (!(st.details_name = member(details, "name")) ||
        !(st.details_kind = member(details, "kind")))
        goto fail;
    if (details && decode_causes(json_object_get(details, "causes"), &st) < 0)
        goto fail;
    /* the reason as sent when it is one we know, else what the code implies */
    st.reason = kc_reason_parse(st.reason_text);
    if (st.reason == KC_REASON_UNKNOWN)
        st.reason = reason_of_code(st.code, method);
    ra = details ? json_object_get(details, "retryAfterSeconds") : NULL;
    if (json_is_integer(ra) && json_integer_value(ra) > 0)
        st.retry_after_seconds = json_integer_value(ra);
    else
        st.retry_after_seconds = parse_retry_after(retry_after);
    *out = st;
    return 0;
fail:
    kc_status_fini(&st);
    return rc;
}

/* "the answer is not a Status: " and the body's start, bytes outside printable ASCII as '?'. */
static char *not_a_status(const char *body, size_t len)
{
    static const char prefix[] = "the answer is not a Status: ";
    size_t n = len < 200 ? len : 200;
    char *m = malloc(sizeof(prefix) + n);

    if (!m)
        return NULL;
    memcpy(m, prefix, sizeof(prefix) - 1);
    for (size_t i = 0; i < n; i++)
        m[sizeof(prefix) - 1 + i] =
            (unsigned char)body[i] >= 0x20 && (unsigned char)body[i] < 0x7f ? body[i] : '?';
    m[sizeof(prefix) - 1 + n] = '\0';
    return m;
}

int kc_status_decode(int http_code, const char *method, const char *body, size_t len,
                     const char *retry_after, struct kc_status *out)
{
    json_error_t jerr;
    json_t *obj = NULL;
    const json_t *kind;
    bool is_status;
    struct kc_status st;
    char *message;
    int rc;

    /* a body that is not JSON is described below; memory running out is not that */
    if (body && len && kc_json_parse(body, len, &obj, &jerr) == -ENOMEM)
        return -ENOMEM;
    kind = json_object_get(obj, "kind");
    is_status = json_is_string(kind) && strcmp(json_string_value(kind), "Status") == 0;
    rc = kc_status_from_json(http_code, method, obj, retry_after, &st);
    json_decref(obj);
    if (rc < 0)
        return rc;
    if (body && len && !is_status) {
        if (!(message = not_a_status(body, len))) {
            kc_status_fini(&st);
            return -ENOMEM;
        }
        free(st.message);
        st.message = message;
    }
    *out = st;
    return 0;
}

bool kc_status_is_expired(const struct kc_status *st)
{
    return st->reason == KC_REASON_EXPIRED || st->reason == KC_REASON_GONE || st->code == 410;
}
