/* Structured JSON logs on stderr (klog.h). */
#include "klog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

static atomic_int level_now = KLOG_INFO;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = {"error", "warn", "info", "debug"};

void klog_set_level(enum klog_level level)
{
    atomic_store(&level_now, (int)level);
}

enum klog_level klog_get_level(void)
{
    return (enum klog_level)atomic_load(&level_now);
}

int klog_parse_level(const char *text, enum klog_level *ret)
{
    for (int i = 0; i < 4; i++)
        if (text && strcmp(text, names[i]) == 0) {
            *ret = (enum klog_level)i;
            return 0;
        }
    return -1;
}

/* Replace every byte that does not start or continue valid UTF-8 by '?'. */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;

    while (*p) {
        int n = *p < 0x80             ? 1
                : (*p & 0xe0) == 0xc0 ? 2
                : (*p & 0xf0) == 0xe0 ? 3
                : (*p & 0xf8) == 0xf0 ? 4
                                      : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

void klog_microtime(char *buf, size_t size)
{
    struct timespec now;
    struct tm tm;
    char day[32];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        day[0] = '\0';
    (void)snprintf(buf, size, "%s.%06dZ", day, (int)(now.tv_nsec / 1000));
}

void klog_kv(enum klog_level level, const char *k1, const char *v1, const char *k2, const char *v2,
             const char *fmt, ...)
{
    char msg[2048], ts[40], vb[2][512];
    va_list ap;
    json_t *line;
    char *text;

    if ((int)level > atomic_load(&level_now))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* a long message is cut: still one line */
    va_end(ap);
    utf8_sanitize(msg);
    klog_microtime(ts, sizeof(ts));
    line = json_pack("{s:s,s:s,s:s}", "ts", ts, "level", names[level < 0 || level > 3 ? 2 : level],
                     "msg", msg);
    const char *keys[2] = {k1, k2}, *vals[2] = {v1, v2};
    for (int i = 0; line && i < 2; i++) {
        if (!keys[i] || !vals[i])
            continue;
        (void)snprintf(vb[i], sizeof(vb[i]), "%s", vals[i]);
        utf8_sanitize(vb[i]);
        (void)json_object_set_new(line, keys[i], json_string(vb[i]));
    }
    text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    pthread_mutex_lock(&out_mu);
    if (text)
        fprintf(stderr, "%s\n", text);
    else
        fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory formatting a log line\"}\n");
    fflush(stderr);
    pthread_mutex_unlock(&out_mu);
    free(text);
    json_decref(line);
}
