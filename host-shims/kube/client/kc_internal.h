/*
 * Internals shared by the files of the kc client (not for its users): a growable buffer, base64,
 * file reading, YAML to JSON, and the client structure with its request function.
 */
#ifndef MGO_KUBE_KC_INTERNAL_H
#define MGO_KUBE_KC_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kc.h"

/* ---- buffer ---------------------------------------------------------------------------------- */

/* A growable byte buffer, always NUL-terminated once anything was appended. */
struct kc_buf {
    char *data;
    size_t len;
    size_t cap;
};

int kc_buf_append(struct kc_buf *b, const void *p, size_t n);
int kc_buf_append_str(struct kc_buf *b, const char *s);
/* Append percent-escaped (see kc_escape). */
int kc_buf_append_escaped(struct kc_buf *b, const char *s);
/* Hand the data over (malloc'ed, "" when empty) and empty the buffer; NULL on ENOMEM. */
char *kc_buf_steal(struct kc_buf *b);
void kc_buf_fini(struct kc_buf *b);

/* snprintf into err (when err_len > 0), never failing; a message cut short ends in "...". */
void kc_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* strdup that accepts NULL (returns NULL, not an error: check the input). */
char *kc_strdup(const char *s);

/* Whether v may go into an HTTP header: printable ASCII only (no CR or LF that would end the
 * header and start another, no other control characters, no bytes above 0x7e). */
bool kc_header_value_ok(const char *v);

/* The message of an errno value, thread-safe (strerror_r, either kind): buf (len bytes) or a
 * static string; "error N" for a number the C library does not know. */
const char *kc_strerror(int errnum, char *buf, size_t len);

/* Whether s (len bytes) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or values above
 * U+10FFFF), as jansson requires of every string. */
bool kc_utf8_valid(const char *s, size_t len);

/* ---- JSON ------------------------------------------------------------------------------------ */

/*
 * Whether json_loadb(text, len, 0, ...) accepts the text given enough memory: an object or array
 * at the top, nothing but whitespace after it, valid UTF-8, no \u0000, paired surrogates,
 * integers within long long, reals below the overflow of double, at most JSON_PARSER_MAX_DEPTH
 * levels. Allocates nothing.
 */
bool kc_json_valid(const char *text, size_t len);

/*
 * Parse an answer (an object or array) into *ret (a new reference). -EPROTO when the text is not
 * JSON (jerr->text says why); -ENOMEM when memory ran out, told apart from a malformed text
 * with kc_json_valid because jansson 2.14 reports most allocation failures as syntax errors or
 * not at all.
 */
int kc_json_parse(const char *text, size_t len, json_t **ret, json_error_t *jerr);

/* ---- base64 and files ------------------------------------------------------------------------ */

/* kc_base64_decode is in kc.h (mgo-kube decodes Secrets with it). */

/* Read a whole file of at most `max` bytes. *ret malloc'ed and NUL-terminated. -errno of the
 * failing call (-ENOENT, -EACCES, ...), -EFBIG when larger than max, -ENOMEM. */
int kc_read_file(const char *path, size_t max, unsigned char **ret, size_t *ret_len);

/* A token from file bytes: surrounding whitespace trimmed; -EINVAL when empty or when it
 * holds a control character or a non-ASCII byte (it goes into an HTTP header). */
int kc_token_from_bytes(const unsigned char *data, size_t len, char **ret);

/* ---- YAML
 * ----------------------------------------------------------------------------------------- */

/*
 * The first document of a YAML (or JSON) text as a JSON value: mappings become objects (keys must
 * be scalars), sequences arrays, plain scalars true/false (YAML 1.1 and 1.2 spellings) become
 * booleans and null/~/empty become null; every other scalar is a string. -EINVAL with a message
 * for a syntax error, a non-scalar key, or more than 10000 nodes visited or 64 levels (alias
 * bombs); -ENOMEM.
 */
int kc_yaml_to_json(const char *text, size_t len, json_t **ret, char *err, size_t err_len);

/* ---- the client
 * ----------------------------------------------------------------------------------- */

struct kc_client {
    CURL *curl;
    struct kc_config cfg;
    char *user_agent;
    struct curl_blob ca, cert, key; /* pointing into cfg */
    int64_t timeout_ms;
    const atomic_int *cancel; /* kc_client_set_cancel; may be NULL */
    bool busy;                /* inside a call (a callback must not re-enter) */

    /* the token: cfg.token, or the contents of cfg.token_file as last read */
    char *token;
    bool token_stat_valid;
    dev_t token_dev;
    ino_t token_ino;
    off_t token_size;
    struct timespec token_mtime;

    struct kc_status status; /* the last call's answer */
    char error[1024];        /* the last call's failure, "" when none */
    char curl_error[CURL_ERROR_SIZE];
    struct kc_stats stats;
    uint64_t rng; /* xorshift state, for watch timeouts */
};

/* How one request sends and receives. */
struct kc_http {
    const char *method;
    const char *path;         /* with the query */
    const char *content_type; /* NULL: application/json when there is a body */
    const char *body;
    size_t body_len;
    int64_t timeout_ms; /* the whole transfer; 0: the client's */
    /* streaming (watch): called with the answer's bytes as they come when the HTTP code is
     * 200; returns false to abort the transfer (then *aborted is set). NULL: buffer the body. */
    bool (*stream)(void *ctx, const char *data, size_t len);
    void *stream_ctx;
    const atomic_int *cancel; /* may be NULL: checked about once a second */
};

/* What came back. body holds the whole body when not streamed, or a failure's body. */
struct kc_answer {
    long code;
    struct kc_buf body;
    char retry_after[32];
    bool aborted;   /* stream returned false, or cancel was set */
    bool cancelled; /* cancel was set */
};

void kc_answer_fini(struct kc_answer *a);

/*
 * Send one request with the client's configuration (token refreshed from its file first; on a
 * 401 with a token file the file is re-read and the request sent once more if the token
 * changed). Returns 0 when an HTTP answer came back (any code: look at a->code), -EAGAIN on a
 * transport failure or timeout, -EPROTO on a TLS failure or a body over the limit, -ENOMEM;
 * c->error is set on failure. Counts c->stats. The caller has set c->busy.
 */
int kc_perform(struct kc_client *c, const struct kc_http *req, struct kc_answer *a);

/* kc_perform, then: a 2xx answer's body parsed into *ret (may be NULL), any other answer
 * recorded with kc_fail_answer (-EREMOTEIO). Sets c->status.http_code. */
int kc_do(struct kc_client *c, const struct kc_http *req, json_t **ret);

/* Start a call: -EBUSY when the client is in one; clears the last error and status. */
int kc_call_begin(struct kc_client *c);
void kc_call_end(struct kc_client *c);

/* Record a failure answer (a->code not 2xx) in c->status and c->error; returns -EREMOTEIO, or
 * -ENOMEM. */
int kc_fail_answer(struct kc_client *c, const struct kc_http *req, const struct kc_answer *a);
/* Record a decoded Status (an ERROR event) as the last failure; returns -EREMOTEIO or
 * -ENOMEM. Takes st over (it is zeroed). */
int kc_fail_status(struct kc_client *c, const char *method, const char *path, struct kc_status *st);
/* Set c->error (printf-style) and return rc. */
int kc_fail(struct kc_client *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parse a 2xx body into *ret (may be NULL: discarded); an empty body gives NULL. -EPROTO when
 * it is not JSON. */
int kc_parse_body(struct kc_client *c, const struct kc_http *req, const struct kc_answer *a,
                  json_t **ret);

/* Serialise compactly into a new string (free()); -ENOMEM. */
int kc_dump(const json_t *v, char **ret, size_t *ret_len);

/* ---- the watch stream
 * ------------------------------------------------------------------------------ */

/* The reader of a watch's 200 answer. Zero it, set w (and c, unused by the reader). */
struct kc_watch_stream {
    struct kc_client *c;
    struct kc_watch *w;
    struct kc_buf line; /* the part of an event line received so far */
    bool stopped;       /* the callback said stop */
    bool expired;       /* an ERROR event with 410 (event_status) */
    int error;          /* another ERROR event (-EREMOTEIO, event_status), an event over
                         * 64 MiB (-EPROTO), -ENOMEM */
    struct kc_status event_status;
};

/* Bytes of the answer as they come (a kc_http stream function; ctx is the kc_watch_stream),
 * cut into lines at '\n' whatever the chunk boundaries: an event may span chunks and a chunk may
 * hold several. Each line is one event handed to w->fn (see kc_watch); false once the stream
 * must end (stopped, expired or error set). */
bool kc_watch_stream_feed(void *ctx, const char *data, size_t len);
/* The answer ended: a last line without its newline is an event too. false as above. */
bool kc_watch_stream_end(struct kc_watch_stream *s);
void kc_watch_stream_fini(struct kc_watch_stream *s);

/* The next pseudo-random number of the client (xorshift64*). */
uint64_t kc_client_random(struct kc_client *c);

#endif
