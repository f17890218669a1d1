/*
 * The Prometheus registry (metrics.h): families sorted by name, series sorted by label values,
 * all under the registry's mutex; rendering into a growing buffer.
 */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
    char *values[METRICS_MAX_LABELS];
    double value;     /* counter, gauge */
    uint64_t *counts; /* histogram: observations per bucket (not cumulative), +Inf last */
    double sum;
    uint64_t count;
};

struct metrics_family {
    struct metrics *reg;
    enum metrics_type type;
    char *name;
    char *help;
    char *label_names[METRICS_MAX_LABELS];
    size_t n_labels;
    double *buckets;
    size_t n_buckets;
    struct series *series; /* sorted by values */
    size_t n_series, cap_series;
};

struct metrics {
    pthread_mutex_t lock;
    struct metrics_family **families; /* sorted by name */
    size_t n_families, cap_families;
};

struct buf {
    char *p;
    size_t len, cap;
    bool failed;
};

/* ---- names and series ---------------------------------------------------------------------- */

static bool name_valid(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool labels_valid(enum metrics_type type, const char *const *names, size_t n)
{
    if (n > METRICS_MAX_LABELS || (n > 0 && !names))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_valid(names[i], false) || strncmp(names[i], "__", 2) == 0)
            return false;
        if (type == METRICS_HISTOGRAM && strcmp(names[i], "le") == 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return false;
    }
    return true;
}

static bool buckets_valid(enum metrics_type type, const double *b, size_t n)
{
    if (type != METRICS_HISTOGRAM)
        return n == 0;
    if (!b || n == 0 || n > METRICS_MAX_BUCKETS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return false;
    return true;
}

static int values_cmp(const struct metrics_family *f, const char *const *a, const char *const *b)
{
    for (size_t i = 0; i < f->n_labels; i++) {
        int c = strcmp(a[i], b[i]);
        if (c != 0)
            return c;
    }
    return 0;
}

/* Index of the series of values, or where it would be inserted (*found false). */
static size_t series_search(const struct metrics_family *f, const char *const *values, bool *found)
{
    size_t lo = 0, hi = f->n_series;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = values_cmp(f, (const char *const *)f->series[mid].values, values);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void series_fini(struct metrics_family *f, struct series *s)
{
    for (size_t i = 0; i < f->n_labels; i++)
        free(s->values[i]);
    free(s->counts);
}

static int series_insert(struct metrics_family *f, size_t at, const char *const *values)
{
    struct series s = {0};

    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? f->cap_series * 2 : 8;
        struct series *p = realloc(f->series, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        f->series = p;
        f->cap_series = cap;
    }
    for (size_t i = 0; i < f->n_labels; i++) {
        s.values[i] = strdup(values[i]);
        if (!s.values[i])
            goto fail;
    }
    if (f->type == METRICS_HISTOGRAM) {
        s.counts = calloc(f->n_buckets + 1, sizeof(*s.counts));
        if (!s.counts)
            goto fail;
    }
    memmove(f->series + at + 1, f->series + at, (f->n_series - at) * sizeof(*f->series));
    f->series[at] = s;
    f->n_series++;
    return 0;
fail:
    series_fini(f, &s);
    return -ENOMEM;
}

static bool values_valid(const struct metrics_family *f, const char *const *values)
{
    if (f->n_labels > 0 && !values)
        return false;
    for (size_t i = 0; i < f->n_labels; i++)
        if (!values[i])
            return false;
    return true;
}

/* Find or create the series of values; called with the registry locked. */
static int series_get(struct metrics_family *f, const char *const *values, struct series **ret)
{
    bool found;
    size_t at = series_search(f, values, &found);
    int r;

    if (!found && (r = series_insert(f, at, values)) < 0)
        return r;
    *ret = &f->series[at];
    return 0;
}

/* ---- operations ---------------------------------------------------------------------------- */

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static int update(struct metrics_family *f, enum metrics_type type, const char *const *values,
                  enum op op, double v)
{
    struct series *s;
    int r;

    if (!f || f->type != type || !values_valid(f, values))
        return -EINVAL;
    if ((type == METRICS_COUNTER && !(v >= 0)) || (type == METRICS_HISTOGRAM && isnan(v)))
        return -EINVAL;
    (void)pthread_mutex_lock(&f->reg->lock);
    r = series_get(f, values, &s);
    if (r < 0)
        goto out;
    if (op == OP_ADD) {
        s->value += v;
    } else if (op == OP_SET) {
        s->value = v;
    } else {
        size_t i = 0;
        while (i < f->n_buckets && v > f->buckets[i])
            i++;
        s->counts[i]++;
        s->sum += v;
        s->count++;
    }
out:
    (void)pthread_mutex_unlock(&f->reg->lock);
    return r;
}

int metrics_counter_add(struct metrics_family *f, const char *const *values, double delta)
{
    return update(f, METRICS_COUNTER, values, OP_ADD, delta);
}

int metrics_counter_inc(struct metrics_family *f, const char *const *values)
{
    return update(f, METRICS_COUNTER, values, OP_ADD, 1);
}

int metrics_gauge_set(struct metrics_family *f, const char *const *values, double v)
{
    return update(f, METRICS_GAUGE, values, OP_SET, v);
}

int metrics_gauge_add(struct metrics_family *f, const char *const *values, double delta)
{
    return update(f, METRICS_GAUGE, values, OP_ADD, delta);
}

int metrics_gauge_inc(struct metrics_family *f, const char *const *values)
{
    return update(f, METRICS_GAUGE, values, OP_ADD, 1);
}

int metrics_gauge_dec(struct metrics_family *f, const char *const *values)
{
    return update(f, METRICS_GAUGE, values, OP_ADD, -1);
}

int metrics_histogram_observe(struct metrics_family *f, const char *const *values, double v)
{
    return update(f, METRICS_HISTOGRAM, values, OP_OBSERVE, v);
}

int metrics_remove(struct metrics_family *f, const char *const *values)
{
    bool found;
    size_t at;

    if (!f || f->n_labels == 0 || !values_valid(f, values))
        return -EINVAL;
    (void)pthread_mutex_lock(&f->reg->lock);
    at = series_search(f, values, &found);
    if (found) {
        series_fini(f, &f->series[at]);
        memmove(f->series + at, f->series + at + 1, (f->n_series - at - 1) * sizeof(*f->series));
        f->n_series--;
    }
    (void)pthread_mutex_unlock(&f->reg->lock);
    return found ? 0 : -ENOENT;
}

/* ---- registry ------------------------------------------------------------------------------ */

int metrics_new(struct metrics **ret)
{
    struct metrics *reg;
    int r;

    if (!ret)
        return -EINVAL;
    reg = calloc(1, sizeof(*reg));
    if (!reg)
        return -ENOMEM;
    r = pthread_mutex_init(&reg->lock, NULL);
    if (r != 0) {
        free(reg);
        return -r;
    }
    *ret = reg;
    return 0;
}

static void family_free(struct metrics_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_series; i++)
        series_fini(f, &f->series[i]);
    free(f->series);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->label_names[i]);
    free(f->buckets);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_free(struct metrics *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_families; i++)
        family_free(reg->families[i]);
    free(reg->families);
    (void)pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static int family_alloc(struct metrics_family **ret, enum metrics_type type, const char *name,
                        const char *help, const char *const *label_names, size_t n_labels,
                        const double *buckets, size_t n_buckets)
{
    struct metrics_family *f = calloc(1, sizeof(*f));

    if (!f)
        return -ENOMEM;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    if (!f->name || !f->help)
        goto fail;
    for (; f->n_labels < n_labels; f->n_labels++) {
        f->label_names[f->n_labels] = strdup(label_names[f->n_labels]);
        if (!f->label_names[f->n_labels])
            goto fail;
    }
    if (n_buckets > 0) {
        f->buckets = malloc(n_buckets * sizeof(*f->buckets));
        if (!f->buckets)
            goto fail;
        memcpy(f->buckets, buckets, n_buckets * sizeof(*f->buckets));
        f->n_buckets = n_buckets;
    }
    /* a family without labels has its one series from the start */
    if (n_labels == 0 && series_insert(f, 0, NULL) < 0)
        goto fail;
    *ret = f;
    return 0;
fail:
    family_free(f);
    return -ENOMEM;
}

int metrics_family_new(struct metrics *reg, struct metrics_family **ret, enum metrics_type type,
                       const char *name, const char *help, const char *const *label_names,
                       size_t n_labels, const double *buckets, size_t n_buckets)
{
    struct metrics_family *f;
    size_t at = 0;
    int r;

    if (!reg || !ret || !help || !name_valid(name, true) ||
        (type != METRICS_COUNTER && type != METRICS_GAUGE && type != METRICS_HISTOGRAM) ||
        !labels_valid(type, label_names, n_labels) || !buckets_valid(type, buckets, n_buckets))
        return -EINVAL;
    r = family_alloc(&f, type, name, help, label_names, n_labels, buckets, n_buckets);
    if (r < 0)
        return r;
    f->reg = reg;
    (void)pthread_mutex_lock(&reg->lock);
    while (at < reg->n_families && strcmp(reg->families[at]->name, name) < 0)
        at++;
    if (at < reg->n_families && strcmp(reg->families[at]->name, name) == 0) {
        r = -EEXIST;
        goto out;
    }
    if (reg->n_families == reg->cap_families) {
        size_t cap = reg->cap_families ? reg->cap_families * 2 : 16;
        struct metrics_family **p = realloc(reg->families, cap * sizeof(*p));
        if (!p) {
            r = -ENOMEM;
            goto out;
        }
        reg->families = p;
        reg->cap_families = cap;
    }
    memmove(reg->families + at + 1, reg->families + at,
            (reg->n_families - at) * sizeof(*reg->families));
    reg->families[at] = f;
    reg->n_families++;
    *ret = f;
    f = NULL;
out:
    (void)pthread_mutex_unlock(&reg->lock);
    family_free(f);
    return r;
}

/* ---- rendering ----------------------------------------------------------------------------- */

static void buf_reserve(struct buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->failed || b->len + more + 1 <= b->cap)
        return;
    cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_putn(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_putn(b, s, strlen(s));
}

/* Escaped text: label values escape '"' too, HELP text only '\\' and newline. */
static void buf_escaped(struct buf *b, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (quote && *s == '"')
            buf_puts(b, "\\\"");
        else
            buf_putn(b, s, 1);
    }
}

/* The shortest of %.15g, %.16g, %.17g that reads back to the same double ("0.1", not
 * "0.10000000000000001"); Prometheus parses any of them. */
static void buf_number(struct buf *b, double v)
{
    char tmp[40];

    if (isnan(v)) {
        buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        (void)snprintf(tmp, sizeof(tmp), "%.*g", prec, v); /* always fits: at most 24 chars */
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(b, tmp);
}

static void buf_u64(struct buf *b, uint64_t v)
{
    char tmp[24];

    (void)snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    buf_puts(b, tmp);
}

/* "name{labels[,le=\"bound\"]} " before a value: le points to the bound, le_inf for +Inf. */
static void render_sample(struct buf *b, const struct metrics_family *f, const struct series *s,
                          const char *suffix, const double *le, bool le_inf)
{
    bool any = f->n_labels > 0 || le || le_inf;

    buf_puts(b, f->name);
    buf_puts(b, suffix);
    if (any)
        buf_puts(b, "{");
    for (size_t i = 0; i < f->n_labels; i++) {
        if (i > 0)
            buf_puts(b, ",");
        buf_puts(b, f->label_names[i]);
        buf_puts(b, "=\"");
        buf_escaped(b, s->values[i], true);
        buf_puts(b, "\"");
    }
    if (le || le_inf) {
        buf_puts(b, f->n_labels > 0 ? ",le=\"" : "le=\"");
        if (le)
            buf_number(b, *le);
        else
            buf_puts(b, "+Inf");
        buf_puts(b, "\"");
    }
    if (any)
        buf_puts(b, "}");
    buf_puts(b, " ");
}

static void render_histogram(struct buf *b, const struct metrics_family *f, const struct series *s)
{
    uint64_t cumulative = 0;

    for (size_t i = 0; i < f->n_buckets; i++) {
        cumulative += s->counts[i];
        render_sample(b, f, s, "_bucket", &f->buckets[i], false);
        buf_u64(b, cumulative);
        buf_puts(b, "\n");
    }
    render_sample(b, f, s, "_bucket", NULL, true);
    buf_u64(b, s->count);
    buf_puts(b, "\n");
    render_sample(b, f, s, "_sum", NULL, false);
    buf_number(b, s->sum);
    buf_puts(b, "\n");
    render_sample(b, f, s, "_count", NULL, false);
    buf_u64(b, s->count);
    buf_puts(b, "\n");
}

static void render_family(struct buf *b, const struct metrics_family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    if (f->n_series == 0)
        return;
    buf_puts(b, "# HELP ");
    buf_puts(b, f->name);
    buf_puts(b, " ");
    buf_escaped(b, f->help, false);
    buf_puts(b, "\n# TYPE ");
    buf_puts(b, f->name);
    buf_puts(b, " ");
    buf_puts(b, type_names[f->type]);
    buf_puts(b, "\n");
    for (size_t i = 0; i < f->n_series; i++) {
        const struct series *s = &f->series[i];
        if (f->type == METRICS_HISTOGRAM) {
            render_histogram(b, f, s);
            continue;
        }
        render_sample(b, f, s, "", NULL, false);
        buf_number(b, s->value);
        buf_puts(b, "\n");
    }
}

int metrics_render(struct metrics *reg, char **text, size_t *len)
{
    struct buf b = {0};

    if (!reg || !text)
        return -EINVAL;
    buf_reserve(&b, 0);
    if (!b.failed)
        b.p[0] = '\0';
    (void)pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; i < reg->n_families; i++)
        render_family(&b, reg->families[i]);
    (void)pthread_mutex_unlock(&reg->lock);
    if (b.failed) {
        free(b.p);
        return -ENOMEM;
    }
    *text = b.p;
    if (len)
        *len = b.len;
    return 0;
}
