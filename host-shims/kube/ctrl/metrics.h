/*
 * metrics: a small Prometheus registry for mgo-kube's /metrics. Module prefix metrics_.
 *
 * A registry holds families (name, help, type, up to METRICS_MAX_LABELS label names, and for a
 * histogram its bucket upper bounds); a family holds one series per tuple of label values,
 * created on first use. metrics_render writes the text exposition format 0.0.4.
 *
 * Label values are passed as an array of exactly as many strings as the family has label names
 * (NULL when it has none), e.g. metrics_counter_inc(f, (const char *[]){"ns", "c1"}); they are
 * copied. A family without labels has its one series from the start (rendered as 0).
 *
 * Threads. Every function may be called from any thread: one mutex per registry guards its
 * families and series. Families are freed only with the registry.
 *
 * Complexity. Series of a family are kept sorted by label values (binary search: O(log n) to
 * find, O(n) to insert); rendering is O(total series).
 *
 * Return values: 0 or a negative errno-style code: -EINVAL bad arguments (wrong type for the
 * operation, invalid name, NULL where a value is needed, a negative counter increment, NaN for
 * a counter), -EEXIST a family of that name exists, -ENOENT no such series, -ENOMEM.
 */
#ifndef MGO_KUBE_METRICS_H
#define MGO_KUBE_METRICS_H

#include <stddef.h>

#define METRICS_MAX_LABELS  3
#define METRICS_MAX_BUCKETS 64

enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
};

struct metrics;        /* a registry */
struct metrics_family; /* one metric name, owned by its registry */

/* Create an empty registry; on success *ret owns it (metrics_free). -EINVAL, -ENOMEM. */
int metrics_new(struct metrics **ret);

/* Free the registry with all its families and series. Accepts NULL. No other thread may use it. */
void metrics_free(struct metrics *reg);

/*
 * Create a family in reg. name matches [a-zA-Z_:][a-zA-Z0-9_:]*; label names match
 * [a-zA-Z_][a-zA-Z0-9_]*, do not start with "__", are distinct, and are not "le" in a histogram;
 * n_labels <= METRICS_MAX_LABELS. help is any text (escaped when rendered). buckets: a
 * histogram's upper bounds, finite and strictly increasing, 1..METRICS_MAX_BUCKETS of them
 * (the +Inf bucket is implicit); NULL and 0 for the other types. Every string and the buckets
 * are copied. On success *ret points to the family, owned by the registry (valid until
 * metrics_free). -EINVAL, -EEXIST (name taken), -ENOMEM.
 */
int metrics_family_new(struct metrics *reg, struct metrics_family **ret, enum metrics_type type,
                       const char *name, const char *help, const char *const *label_names,
                       size_t n_labels, const double *buckets, size_t n_buckets);

/* Counter: add delta (>= 0) to the series of values. */
int metrics_counter_add(struct metrics_family *f, const char *const *values, double delta);

/* Counter: add 1. */
int metrics_counter_inc(struct metrics_family *f, const char *const *values);

/* Gauge: set the series of values to v. */
int metrics_gauge_set(struct metrics_family *f, const char *const *values, double v);

/* Gauge: add delta (may be negative). */
int metrics_gauge_add(struct metrics_family *f, const char *const *values, double delta);

/* Gauge: add 1. */
int metrics_gauge_inc(struct metrics_family *f, const char *const *values);

/* Gauge: subtract 1. */
int metrics_gauge_dec(struct metrics_family *f, const char *const *values);

/*
 * Histogram: count v in every bucket whose upper bound is >= v (and +Inf), add it to the sum,
 * count one more observation. NaN is rejected (-EINVAL).
 */
int metrics_histogram_observe(struct metrics_family *f, const char *const *values, double v);

/*
 * Remove the series of values from a family with labels (e.g. the phase gauge of a deleted
 * cluster); it is no longer rendered. -ENOENT if there is none; -EINVAL for a family without
 * labels.
 */
int metrics_remove(struct metrics_family *f, const char *const *values);

/*
 * Render every family that has at least one series, in the text exposition format 0.0.4:
 * families sorted by name (bytewise), each with "# HELP" and "# TYPE", series sorted by their
 * label values (bytewise, first label first); histograms as cumulative name_bucket{...,le="..."}
 * lines ending with le="+Inf", then name_sum and name_count. Numbers in the shortest form that
 * reads back exactly ("0.25", "3", "1e+21"), "+Inf", "-Inf", "NaN". On success *text is a
 * malloc'd NUL-terminated string owned by the caller (free) and *len its length (len may be
 * NULL). -EINVAL, -ENOMEM.
 */
int metrics_render(struct metrics *reg, char **text, size_t *len);

#endif
