/* The structural-schema walker: types, unknown fields, limits, formats and cross-field rules. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "spec/schema.h"

/* ---- compiled patterns, cached per handle ------------------------------------------------ */

struct regex_entry {
    const char *pattern; /* identity: the static string in the schema tables */
    regex_t re;
    int ok;
};

struct schema_regex_cache {
    struct regex_entry *entries;
    size_t n, cap;
};

struct schema_regex_cache *schema_regex_cache_new(void)
{
    return core_calloc(1, sizeof(struct schema_regex_cache));
}

void schema_regex_cache_free(struct schema_regex_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->n; i++)
        if (cache->entries[i].ok)
            regfree(&cache->entries[i].re);
    core_free(cache->entries);
    core_free(cache);
}

/* 1: matches; 0: does not; -ENOMEM; -EINVAL when the pattern itself does not compile. */
static int pattern_matches(struct schema_regex_cache *cache, const char *pattern, const char *s)
{
    regex_t local;
    regex_t *re = NULL;

    if (cache) {
        for (size_t i = 0; i < cache->n; i++)
            if (cache->entries[i].pattern == pattern)
                re = cache->entries[i].ok ? &cache->entries[i].re : NULL;
        if (!re) {
            if (cache->n == cache->cap) {
                size_t cap = cache->cap ? cache->cap * 2 : 16;
                struct regex_entry *e = core_realloc(cache->entries, cap * sizeof(*e));
                if (!e)
                    return -ENOMEM;
                cache->entries = e;
                cache->cap = cap;
            }
            struct regex_entry *e = &cache->entries[cache->n];
            e->pattern = pattern;
            int rc = regcomp(&e->re, pattern, REG_EXTENDED | REG_NOSUB);
            e->ok = rc == 0;
            if (!e->ok)
                return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
            cache->n++;
            re = &e->re;
        }
    } else {
        int rc = regcomp(&local, pattern, REG_EXTENDED | REG_NOSUB);
        if (rc != 0)
            return rc == REG_ESPACE ? -ENOMEM : -EINVAL;
        re = &local;
    }
    int m = regexec(re, s, 0, NULL, 0) == 0;
    if (re == &local)
        regfree(&local);
    return m;
}

/* ---- helpers ------------------------------------------------------------------------------ */

struct walk {
    struct schema_regex_cache *cache;
    struct spec_errors *errs;
    struct spec_path path;
};

static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Write `s` double-quoted into buf, escaping quotes and backslashes, cut (at a character
 * boundary, marked "...") when it does not fit. */
static const char *quote(char *buf, size_t size, const char *s)
{
    size_t o = 0;
    buf[o++] = '"';
    for (const char *p = s; *p;) {
        unsigned char c = (unsigned char)*p;
        size_t clen = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        int esc = *p == '"' || *p == '\\';
        if (o + clen + esc + 5 >= size) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (esc)
            buf[o++] = '\\';
        for (size_t k = 0; k < clen && *p; k++)
            buf[o++] = *p++;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

static const char *kind_type_name(enum schema_kind k)
{
    switch (k) {
    case SK_OBJECT:
    case SK_MAP:
        return "object";
    case SK_ARRAY:
        return "array";
    case SK_STRING:
        return "string";
    case SK_INTEGER:
        return "integer";
    case SK_NUMBER:
        return "number";
    case SK_BOOLEAN:
        return "boolean";
    case SK_INT_OR_STRING:
        return "integer or string";
    case SK_ANY:
    default:
        return "any";
    }
}

static int is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return d == floor(d) && fabs(d) < 9.2e18;
    }
    return 0;
}

static int type_ok(enum schema_kind k, const json_t *v)
{
    switch (k) {
    case SK_OBJECT:
    case SK_MAP:
        return json_is_object(v);
    case SK_ARRAY:
        return json_is_array(v);
    case SK_STRING:
        return json_is_string(v);
    case SK_INTEGER:
        return is_integral(v);
    case SK_NUMBER:
        return json_is_number(v);
    case SK_BOOLEAN:
        return json_is_boolean(v);
    case SK_INT_OR_STRING:
        return json_is_string(v) || is_integral(v);
    case SK_ANY:
    default:
        return 1;
    }
}

/* Text of a scalar for "Duplicate value" and similar messages. */
static const char *scalar_text(char *buf, size_t size, const json_t *v)
{
    if (json_is_string(v))
        return quote(buf, size, json_string_value(v));
    if (json_is_integer(v)) {
        (void)snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    (void)snprintf(buf, size, "%s", json_type_name(v));
    return buf;
}

static void walk_node(struct walk *w, const struct schema_node *n, const json_t *v,
                      const json_t *old);

/* ---- per-kind checks ---------------------------------------------------------------------- */

static void check_string(struct walk *w, const struct schema_node *n, const json_t *v)
{
    const char *s = json_string_value(v);
    char q[160];
    size_t len = utf8_length(s);

    /* Every check below reads a C string: one that hides text behind a NUL is refused whole.
     * (An object's name and namespace are the API server's to judge: spec.c words those.) */
    if (strlen(s) != json_string_length(v) && strcmp(w->path.buf, "metadata.name") != 0 &&
        strcmp(w->path.buf, "metadata.namespace") != 0) {
        spec_error(w->errs, w->path.buf, "Invalid value: %s: must not contain NUL characters",
                   quote(q, sizeof(q), s));
        return;
    }

    if (n->max_length != SCHEMA_NO_LIMIT && (int64_t)len > n->max_length)
        spec_error(w->errs, w->path.buf, "Too long: may not be more than %" PRId64 " characters",
                   n->max_length);
    if (n->min_length != SCHEMA_NO_LIMIT && (int64_t)len < n->min_length)
        spec_error(w->errs, w->path.buf, "Too short: must be at least %" PRId64 " characters long",
                   n->min_length);
    if (n->enum_values) {
        const char *const *e;
        for (e = n->enum_values; *e; e++)
            if (strcmp(*e, s) == 0)
                break;
        if (!*e) {
            char list[512];
            size_t o = 0;
            list[0] = '\0';
            for (e = n->enum_values; *e && o + 8 < sizeof(list); e++) {
                int k = snprintf(list + o, sizeof(list) - o, "%s\"%s\"", o ? ", " : "", *e);
                if (k < 0 || (size_t)k >= sizeof(list) - o)
                    break;
                o += (size_t)k;
            }
            spec_error(w->errs, w->path.buf, "Unsupported value: %s: supported values: %s",
                       quote(q, sizeof(q), s), list);
        }
    }
    if (n->pattern) {
        int m = pattern_matches(w->cache, n->pattern, s);
        if (m == -ENOMEM)
            w->errs->oom = 1;
        else if (m == 0 || m == -EINVAL)
            spec_error(w->errs, w->path.buf, "Invalid value: %s: should match '%s'",
                       quote(q, sizeof(q), s), n->pattern);
    }
}

static void check_number(struct walk *w, const struct schema_node *n, const json_t *v)
{
    char num[64];
    if (json_is_integer(v))
        (void)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        (void)snprintf(num, sizeof(num), "%g", json_real_value(v));
    double d = json_number_value(v);
    if (n->has_minimum && d < (double)n->minimum)
        spec_error(w->errs, w->path.buf,
                   "Invalid value: %s: must be greater than or equal to %" PRId64, num, n->minimum);
    if (n->has_maximum && d > (double)n->maximum)
        spec_error(w->errs, w->path.buf,
                   "Invalid value: %s: must be less than or equal to %" PRId64, num, n->maximum);
}

static void check_object(struct walk *w, const struct schema_node *n, const json_t *v,
                         const json_t *old)
{
    const char *key;
    json_t *child;

    /* Unknown fields first, in document order. */
    json_object_foreach ((json_t *)v, key, child) {
        const struct schema_field *f = n->fields;
        while (f && f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f || !f->name) {
            size_t mark = spec_path_push_field(&w->path, key);
            spec_error(w->errs, w->path.buf, "unknown field");
            spec_path_pop(&w->path, mark);
        }
    }
    for (const struct schema_field *f = n->fields; f && f->name; f++) {
        const json_t *c = json_object_get(v, f->name);
        size_t mark = spec_path_push_field(&w->path, f->name);
        if (!c || json_is_null(c)) {
            if (f->required)
                spec_error(w->errs, w->path.buf, "Required value");
        } else {
            const json_t *oc = old && json_is_object(old) ? json_object_get(old, f->name) : NULL;
            walk_node(w, f->node, c, oc);
        }
        spec_path_pop(&w->path, mark);
    }
}

static const json_t *list_map_find(const json_t *list, const char *key_field, const json_t *key)
{
    size_t i;
    json_t *item;
    if (!list || !json_is_array(list) || !key)
        return NULL;
    json_array_foreach ((json_t *)list, i, item)
        if (json_equal(json_object_get(item, key_field), (json_t *)key))
            return item;
    return NULL;
}

static void check_array(struct walk *w, const struct schema_node *n, const json_t *v,
                        const json_t *old)
{
    size_t size = json_array_size(v);
    size_t i;
    json_t *item;
    char buf[160];

    if (n->max_items != SCHEMA_NO_LIMIT && (int64_t)size > n->max_items)
        spec_error(w->errs, w->path.buf, "Too many: %zu: must have at most %" PRId64 " items", size,
                   n->max_items);
    if (n->min_items != SCHEMA_NO_LIMIT && (int64_t)size < n->min_items)
        spec_error(w->errs, w->path.buf, "Too few: must have at least %" PRId64 " items",
                   n->min_items);
    /* Duplicates are found through a hash of the keys' JSON text, and not looked for at all in
     * a list already over its limit: untrusted input must not buy quadratic work. */
    json_t *seen = (n->list_map_key || n->list_set) &&
                           (n->max_items == SCHEMA_NO_LIMIT || (int64_t)size <= n->max_items)
                       ? json_object()
                       : NULL;
    json_array_foreach ((json_t *)v, i, item) {
        size_t mark = spec_path_push_index(&w->path, i);
        const json_t *old_item = NULL;
        const json_t *key = NULL;
        if (n->list_map_key && json_is_object(item)) {
            key = json_object_get(item, n->list_map_key);
            if (seen) /* correlate only lists within their limit (the search is linear) */
                old_item = list_map_find(old, n->list_map_key, key);
        } else if (n->list_set) {
            key = item;
        }
        if (seen && key) {
            char *text = json_dumps(key, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
            if (!text) {
                w->errs->oom = 1;
            } else if (json_object_get(seen, text)) {
                spec_error(w->errs, w->path.buf, "Duplicate value: %s",
                           scalar_text(buf, sizeof(buf), key));
            } else if (json_object_set_new(seen, text, json_true())) {
                w->errs->oom = 1;
            }
            core_free(text);
        }
        walk_node(w, n->items, item, old_item);
        spec_path_pop(&w->path, mark);
    }
    json_decref(seen);
}

static void check_map(struct walk *w, const struct schema_node *n, const json_t *v,
                      const json_t *old)
{
    size_t size = json_object_size(v);
    const char *key;
    json_t *child;

    if (n->max_items != SCHEMA_NO_LIMIT && (int64_t)size > n->max_items)
        spec_error(w->errs, w->path.buf, "Too many: %zu: must have at most %" PRId64 " properties",
                   size, n->max_items);
    if (n->min_items != SCHEMA_NO_LIMIT && (int64_t)size < n->min_items)
        spec_error(w->errs, w->path.buf, "Too few: must have at least %" PRId64 " properties",
                   n->min_items);
    if (!n->items)
        return;
    json_object_foreach ((json_t *)v, key, child) {
        size_t mark = spec_path_push_key(&w->path, key);
        const json_t *oc = old && json_is_object(old) ? json_object_get(old, key) : NULL;
        walk_node(w, n->items, child, oc);
        spec_path_pop(&w->path, mark);
    }
}

static void check_rules(struct walk *w, const struct schema_node *n, const json_t *v,
                        const json_t *old)
{
    for (const struct schema_rule *r = n->rules; r && r->holds; r++) {
        if (r->transition && !old)
            continue;
        if (r->holds(v, r->transition ? old : NULL))
            continue;
        if (r->field) {
            size_t mark = w->path.len;
            if (w->path.len == 0)
                spec_path_init(&w->path, r->field);
            else
                (void)spec_path_push_field(&w->path, r->field);
            spec_error(w->errs, w->path.buf, "%s", r->message);
            spec_path_pop(&w->path, mark);
        } else {
            spec_error(w->errs, w->path.buf, "%s", r->message);
        }
    }
}

static void walk_node(struct walk *w, const struct schema_node *n, const json_t *v,
                      const json_t *old)
{
    if (!n || n->kind == SK_ANY)
        return;
    if (!type_ok(n->kind, v)) {
        spec_error(w->errs, w->path.buf, "must be of type %s, got %s", kind_type_name(n->kind),
                   json_type_name(v));
        return;
    }
    if (old && !type_ok(n->kind, old))
        old = NULL; /* nothing to correlate with */
    switch (n->kind) {
    case SK_OBJECT:
        check_object(w, n, v, old);
        break;
    case SK_ARRAY:
        check_array(w, n, v, old);
        break;
    case SK_MAP:
        check_map(w, n, v, old);
        break;
    case SK_STRING:
        check_string(w, n, v);
        break;
    case SK_INTEGER:
    case SK_NUMBER:
        check_number(w, n, v);
        break;
    case SK_INT_OR_STRING:
        if (json_is_string(v))
            check_string(w, n, v);
        else
            check_number(w, n, v);
        break;
    default:
        break;
    }
    check_rules(w, n, v, old);
}

int schema_validate(const struct schema_node *root, const json_t *doc, const json_t *old,
                    struct schema_regex_cache *cache, struct spec_errors *errs)
{
    struct walk w = {.cache = cache, .errs = errs};
    spec_path_init(&w.path, NULL);
    walk_node(&w, root, doc, old);
    return errs->oom ? -ENOMEM : 0;
}

/* ---- structural defaults ------------------------------------------------------------------ */

/* An integer-typed value written as a whole-number real ("5.0") becomes an integer, so that no
 * later rule sees two spellings of one number. Returns the value to keep (new or the same). */
static json_t *normalise_integer(const struct schema_node *n, json_t *v)
{
    if (!n || (n->kind != SK_INTEGER && n->kind != SK_INT_OR_STRING) || !json_is_real(v) ||
        !is_integral(v))
        return NULL;
    return json_integer((json_int_t)json_real_value(v));
}

static int defaults_node(const struct schema_node *n, json_t *v)
{
    if (!n || !v)
        return 0;
    if (n->kind == SK_OBJECT && json_is_object(v)) {
        for (const struct schema_field *f = n->fields; f && f->name; f++) {
            json_t *c = json_object_get(v, f->name);
            if ((!c || json_is_null(c)) && f->default_json) {
                c = json_loads(f->default_json, JSON_DECODE_ANY, NULL);
                if (!c || json_object_set_new(v, f->name, c))
                    return -ENOMEM;
            }
            json_t *i = normalise_integer(f->node, c);
            if (i && json_object_set_new(v, f->name, i))
                return -ENOMEM;
            c = i ? i : c;
            if (c && defaults_node(f->node, c))
                return -ENOMEM;
        }
    } else if (n->kind == SK_ARRAY && json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach (v, i, item) {
            json_t *norm = normalise_integer(n->items, item);
            if (norm && json_array_set_new(v, i, norm))
                return -ENOMEM;
            if (defaults_node(n->items, norm ? norm : item))
                return -ENOMEM;
        }
    } else if (n->kind == SK_MAP && json_is_object(v)) {
        const char *k;
        json_t *item;
        json_object_foreach (v, k, item) {
            json_t *norm = normalise_integer(n->items, item);
            if (norm && json_object_set_new(v, k, norm))
                return -ENOMEM;
            if (defaults_node(n->items, norm ? norm : item))
                return -ENOMEM;
        }
    }
    return 0;
}

int schema_apply_defaults(const struct schema_node *root, json_t *doc)
{
    return defaults_node(root, doc);
}
