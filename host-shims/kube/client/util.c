/* Small helpers of the kc client: buffers, messages, escaping, base64, files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kc_internal.h"

/* ---- buffer ---------------------------------------------------------------------------------- */

int kc_buf_append(struct kc_buf *b, const void *p, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data)
            return -ENOMEM;
        b->data = data;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kc_buf_append_str(struct kc_buf *b, const char *s)
{
    return kc_buf_append(b, s, strlen(s));
}

static bool is_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int kc_buf_append_escaped(struct kc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if (is_unreserved(*p)) {
            rc = kc_buf_append(b, p, 1);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = kc_buf_append(b, esc, 3);
        }
    }
    if (rc == 0 && !b->data)
        rc = kc_buf_append(b, "", 0); /* "" escapes to "", still a string */
    return rc;
}

char *kc_buf_steal(struct kc_buf *b)
{
    char *data;

    if (!b->data && kc_buf_append(b, "", 0) < 0)
        return NULL;
    data = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return data;
}

void kc_buf_fini(struct kc_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int kc_escape(const char *s, char **ret)
{
    struct kc_buf b = {0};
    int rc;

    if (!s || !ret)
        return -EINVAL;
    rc = kc_buf_append_escaped(&b, s);
    if (rc < 0) {
        kc_buf_fini(&b);
        return rc;
    }
    *ret = kc_buf_steal(&b);
    return 0;
}

/* ---- messages and strings -------------------------------------------------------------------- */

void kc_errf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!err || err_len == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
    else if ((size_t)n >= err_len && err_len > 4)
        memcpy(err + err_len - 4, "...", 4);
}

char *kc_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

bool kc_header_value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

/* strerror_r comes in two kinds: XSI returns an int and fills buf, GNU returns the message
 * (buf or a static string). The kind this libc gave us is picked by the return type. */
__attribute__((unused)) static const char *xsi_message(int rc, char *buf, size_t len, int errnum)
{
    if (rc != 0 || !buf[0])
        (void)snprintf(buf, len, "error %d", errnum);
    return buf;
}

__attribute__((unused)) static const char *gnu_message(const char *msg, char *buf, size_t len,
                                                       int errnum)
{
    if (!msg || !msg[0]) {
        (void)snprintf(buf, len, "error %d", errnum);
        return buf;
    }
    return msg;
}

const char *kc_strerror(int errnum, char *buf, size_t len)
{
    if (!buf || len == 0)
        return "";
    buf[0] = '\0';
    return _Generic(strerror_r(errnum, buf, len), int
                    : xsi_message, default
                    : gnu_message)(strerror_r(errnum, buf, len), buf, len, errnum);
}

/* ---- base64
 * -------------------------------------------------------------------------------------- */

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

int kc_base64_decode(const char *in, size_t len, unsigned char **ret, size_t *ret_len)
{
    unsigned char *out = malloc(len / 4 * 3 + 4);
    unsigned char quad[4];
    size_t n = 0, q = 0, pad = 0;

    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        int v;

        if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t')
            continue;
        if (ch == '=') {
            /* padding: only in the last two places of the last quad */
            if (q < 2)
                goto bad;
            pad++;
            quad[q++] = 0;
        } else {
            if (pad > 0 || (v = b64_value(ch)) < 0)
                goto bad;
            quad[q++] = (unsigned char)v;
        }
        if (q == 4) {
            out[n++] = (unsigned char)(quad[0] << 2 | quad[1] >> 4);
            out[n++] = (unsigned char)(quad[1] << 4 | quad[2] >> 2);
            out[n++] = (unsigned char)(quad[2] << 6 | quad[3]);
            q = 0;
            if (pad > 0) {
                n -= pad;
                /* nothing but whitespace may follow the padded quad */
                for (i++; i < len; i++)
                    if (in[i] != '\r' && in[i] != '\n' && in[i] != ' ' && in[i] != '\t')
                        goto bad;
                break;
            }
        }
    }
    if (q != 0)
        goto bad;
    out[n] = '\0';
    *ret = out;
    *ret_len = n;
    return 0;
bad:
    for (volatile unsigned char *w = out; n > 0; n--) /* may be part of a key: a wipe the */
        *w++ = 0;                                     /* compiler cannot drop */
    free(out);
    return -EINVAL;
}

/* ---- files
 * ---------------------------------------------------------------------------------------- */

int kc_read_file(const char *path, size_t max, unsigned char **ret, size_t *ret_len)
{
    struct kc_buf b = {0};
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (got == 0)
            break;
        if ((size_t)got > max - b.len) {
            rc = -EFBIG;
            goto out;
        }
        if ((rc = kc_buf_append(&b, chunk, (size_t)got)) < 0)
            goto out;
    }
    if (!b.data && (rc = kc_buf_append(&b, "", 0)) < 0)
        goto out;
    *ret_len = b.len;
    *ret = (unsigned char *)kc_buf_steal(&b);
out:
    (void)close(fd); /* read-only: nothing to lose */
    kc_buf_fini(&b);
    return rc;
}

int kc_token_from_bytes(const unsigned char *data, size_t len, char **ret)
{
    size_t start = 0, end = len;
    char *token;

    while (start < end && (data[start] == ' ' || data[start] == '\t' || data[start] == '\r' ||
                           data[start] == '\n'))
        start++;
    while (end > start && (data[end - 1] == ' ' || data[end - 1] == '\t' || data[end - 1] == '\r' ||
                           data[end - 1] == '\n'))
        end--;
    if (start == end)
        return -EINVAL;
    for (size_t i = start; i < end; i++)
        if (data[i] < 0x20 || data[i] > 0x7e)
            return -EINVAL;
    token = malloc(end - start + 1);
    if (!token)
        return -ENOMEM;
    memcpy(token, data + start, end - start);
    token[end - start] = '\0';
    *ret = token;
    return 0;
}
