/*
 * mgo-kube's structured logs: one JSON object per line on stderr, {"ts", "level", "msg"} and the
 * fields given (for example "cluster": "ns/name"). Module prefix klog_. Thread-safe: a line is
 * written whole.
 */
#ifndef MGO_KUBE_KLOG_H
#define MGO_KUBE_KLOG_H

#include <stdarg.h>
#include <stddef.h>

enum klog_level { KLOG_ERROR = 0, KLOG_WARN, KLOG_INFO, KLOG_DEBUG };

/* Lines above this level are not written (default KLOG_INFO). */
void klog_set_level(enum klog_level level);
enum klog_level klog_get_level(void);
/* "error", "warn", "info", "debug" -> 0; anything else -> -1. */
int klog_parse_level(const char *text, enum klog_level *ret);

/* The time now as a Kubernetes MicroTime, "2006-01-02T15:04:05.000000Z" (27 bytes and the NUL;
 * a smaller buffer gets it cut short). */
void klog_microtime(char *buf, size_t size);

/*
 * Write one line with up to two fields (k2 may be NULL; a NULL value leaves its key out). The
 * message is formatted from fmt; strings are escaped by jansson, and bytes that are not UTF-8
 * are replaced by '?', never dropped.
 */
void klog_kv(enum klog_level level, const char *k1, const char *v1, const char *k2, const char *v2,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define klog(level, ...) klog_kv(level, NULL, NULL, NULL, NULL, __VA_ARGS__)

#endif
