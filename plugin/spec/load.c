/* YAML (libyaml events) and JSON (jansson) manifests to JSON documents. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/core.h"
#include "spec/load.h"

/* A bound anchor, as looked up: its value and expanded size (for the alias budget). */
struct anchor {
    json_t *value; /* borrowed from the anchor table */
    size_t nodes;
};

/* One open collection while a document is being built. */
struct frame {
    json_t *container; /* object or array */
    char *pending_key; /* object: the key whose value is awaited, or NULL */
    char *anchor;      /* anchor to bind when the collection closes, or NULL */
    size_t nodes_at_start;
};

struct builder {
    struct frame stack[SPEC_LOAD_MAX_DEPTH];
    size_t depth;
    json_t *anchors; /* name -> [value, expanded nodes]; a hash, so lookups stay O(1) */
    size_t nodes;    /* expanded nodes in this stream so far */
    json_t *docs;
    json_t *root; /* the finished root of the current document */
    struct spec_load_error *err;
    size_t document;
};

static int fail(struct builder *b, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct builder *b, const yaml_mark_t *mark, const char *fmt, ...)
{
    va_list ap;
    b->err->document = b->document;
    b->err->line = mark ? mark->line + 1 : 0;
    b->err->column = mark ? mark->column + 1 : 0;
    va_start(ap, fmt);
    (void)vsnprintf(b->err->message, sizeof(b->err->message), fmt, ap); /* truncation is fine */
    va_end(ap);
    core_utf8_sanitize(b->err->message); /* "%.64s" of a key may cut a character */
    return -EINVAL;
}

static void anchors_clear(struct builder *b)
{
    json_object_clear(b->anchors);
}

/* Bind (or rebind: a later anchor of the same name shadows the earlier one, YAML 1.2 3.2.2.2). */
static int anchor_bind(struct builder *b, const char *name, json_t *value, size_t nodes)
{
    json_t *entry = json_pack("[O, I]", value, (json_int_t)nodes);
    if (!entry || json_object_set_new(b->anchors, name, entry))
        return -ENOMEM;
    return 0;
}

static int anchor_find(const struct builder *b, const char *name, struct anchor *ret)
{
    const json_t *entry = json_object_get(b->anchors, name);
    if (!entry)
        return 0;
    ret->value = json_array_get(entry, 0);
    ret->nodes = (size_t)json_integer_value(json_array_get(entry, 1));
    return 1;
}

static int count_nodes(struct builder *b, size_t n, const yaml_mark_t *mark)
{
    if (n > SPEC_LOAD_MAX_NODES - b->nodes)
        return fail(b, mark, "document too large: more than %d nodes after expanding aliases",
                    SPEC_LOAD_MAX_NODES);
    b->nodes += n;
    return 0;
}

/* Attach a finished value to the innermost open collection, or make it the document root. */
static int attach(struct builder *b, json_t *value, const yaml_mark_t *mark)
{
    if (b->depth == 0) {
        b->root = value;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (json_is_array(f->container)) {
        if (json_array_append_new(f->container, value))
            return -ENOMEM;
        return 0;
    }
    if (!f->pending_key) {
        /* A value in key position: only scalars may be keys. */
        json_decref(value);
        return fail(b, mark, "mapping keys must be scalars");
    }
    if (json_object_get(f->container, f->pending_key)) {
        int rc = fail(b, mark, "duplicate key \"%.64s\"", f->pending_key);
        json_decref(value);
        return rc;
    }
    int rc = json_object_set_new(f->container, f->pending_key, value) ? -ENOMEM : 0;
    core_free(f->pending_key);
    f->pending_key = NULL;
    return rc;
}

static int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

static int all_digits(const char *s, const char *digits)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!strchr(digits, *s))
            return 0;
    return 1;
}

static int looks_like_float(const char *s)
{
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    const char *p = s;
    int mant = 0;
    if (*p == '-' || *p == '+')
        p++;
    while (*p >= '0' && *p <= '9') {
        p++;
        mant = 1;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            mant = 1;
        }
    }
    if (!mant)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* The YAML 1.2 core schema for a plain scalar. Returns a new value or NULL on ENOMEM. */
static json_t *plain_scalar(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};

    if (strlen(s) != len) /* an embedded NUL: keep the text as it is */
        return json_stringn(s, len);
    if (is_one_of(s, nulls))
        return json_null();
    if (is_one_of(s, trues))
        return json_true();
    if (is_one_of(s, falses))
        return json_false();

    const char *digits = s + (*s == '-' || *s == '+');
    int base = 0;
    const char *body = NULL;
    if (all_digits(digits, "0123456789")) {
        base = 10;
        body = s;
    } else if (strncmp(s, "0o", 2) == 0 && all_digits(s + 2, "01234567")) {
        base = 8;
        body = s + 2;
    } else if (strncmp(s, "0x", 2) == 0 && all_digits(s + 2, "0123456789abcdefABCDEF")) {
        base = 16;
        body = s + 2;
    }
    if (base) {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(body, &end, base);
        if (errno == 0 && end && *end == '\0')
            return json_integer((json_int_t)v);
        /* Out of int64 range: fall through to a float, as other YAML readers do. */
    }
    if (looks_like_float(s)) {
        errno = 0;
        char *end = NULL;
        double d = strtod(s, &end);
        if (end && *end == '\0' && errno == 0)
            return json_real(d);
    }
    return json_stringn(s, len);
}

static int scalar_event(struct builder *b, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    int rc;

    rc = count_nodes(b, 1, &ev->start_mark);
    if (rc)
        return rc;

    /* In key position a scalar is always the key's text. */
    if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].container) &&
        !b->stack[b->depth - 1].pending_key) {
        if (strlen(text) != len)
            return fail(b, &ev->start_mark, "mapping keys may not contain NUL characters");
        char *key = core_strndup(text, len);
        if (!key)
            return -ENOMEM;
        b->stack[b->depth - 1].pending_key = key;
        if (ev->data.scalar.anchor) {
            json_t *v = json_stringn(text, len);
            rc = v ? anchor_bind(b, (const char *)ev->data.scalar.anchor, v, 1) : -ENOMEM;
            json_decref(v);
        }
        return rc;
    }

    json_t *value;
    if (tag && strcmp(tag, "!") != 0) {
        if (strcmp(tag, YAML_STR_TAG) == 0) {
            value = json_stringn(text, len);
        } else if (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0 ||
                   strcmp(tag, YAML_BOOL_TAG) == 0 || strcmp(tag, YAML_NULL_TAG) == 0) {
            value = plain_scalar(text, len);
        } else {
            return fail(b, &ev->start_mark, "unsupported tag \"%.64s\"", tag);
        }
    } else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) {
        value = plain_scalar(text, len);
    } else {
        value = json_stringn(text, len);
    }
    if (!value) {
        /* json_stringn rejects invalid UTF-8; libyaml validates its input, so this is memory. */
        return -ENOMEM;
    }
    if (ev->data.scalar.anchor) {
        rc = anchor_bind(b, (const char *)ev->data.scalar.anchor, value, 1);
        if (rc) {
            json_decref(value);
            return rc;
        }
    }
    return attach(b, value, &ev->start_mark);
}

static int open_collection(struct builder *b, const yaml_event_t *ev, int is_mapping)
{
    const yaml_char_t *anchor =
        is_mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    const yaml_char_t *tag = is_mapping ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
    const char *want = is_mapping ? YAML_MAP_TAG : YAML_SEQ_TAG;

    if (tag && strcmp((const char *)tag, want) != 0 && strcmp((const char *)tag, "!") != 0)
        return fail(b, &ev->start_mark, "unsupported tag \"%.64s\"", (const char *)tag);
    if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].container) &&
        !b->stack[b->depth - 1].pending_key)
        return fail(b, &ev->start_mark, "mapping keys must be scalars");
    if (b->depth == SPEC_LOAD_MAX_DEPTH)
        return fail(b, &ev->start_mark, "nesting deeper than %d levels", SPEC_LOAD_MAX_DEPTH);
    int rc = count_nodes(b, 1, &ev->start_mark);
    if (rc)
        return rc;
    struct frame *f = &b->stack[b->depth];
    memset(f, 0, sizeof(*f));
    f->container = is_mapping ? json_object() : json_array();
    if (!f->container)
        return -ENOMEM;
    if (anchor) {
        f->anchor = core_strdup((const char *)anchor);
        if (!f->anchor) {
            json_decref(f->container);
            return -ENOMEM;
        }
    }
    f->nodes_at_start = b->nodes;
    b->depth++;
    return 0;
}

static int close_collection(struct builder *b, const yaml_event_t *ev)
{
    struct frame f = b->stack[--b->depth];
    int rc = 0;

    core_free(f.pending_key); /* cannot be set: the parser pairs keys with values */
    if (f.anchor) {
        rc = anchor_bind(b, f.anchor, f.container, b->nodes - f.nodes_at_start + 1);
        core_free(f.anchor);
        if (rc) {
            json_decref(f.container);
            return rc;
        }
    }
    return attach(b, f.container, &ev->start_mark);
}

static int alias_event(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct anchor found;
    const struct anchor *a = anchor_find(b, name, &found) ? &found : NULL;
    if (!a)
        return fail(b, &ev->start_mark, "unknown alias \"%.64s\"", name);
    if (b->depth > 0 && json_is_object(b->stack[b->depth - 1].container) &&
        !b->stack[b->depth - 1].pending_key) {
        if (!json_is_string(a->value))
            return fail(b, &ev->start_mark, "mapping keys must be scalars");
        char *key = core_strdup(json_string_value(a->value));
        if (!key)
            return -ENOMEM;
        b->stack[b->depth - 1].pending_key = key;
        return count_nodes(b, 1, &ev->start_mark);
    }
    int rc = count_nodes(b, a->nodes, &ev->start_mark);
    if (rc)
        return rc;
    /* A private copy per use: later stages may change one place without touching the other. */
    json_t *copy = json_deep_copy(a->value);
    if (!copy)
        return -ENOMEM;
    return attach(b, copy, &ev->start_mark);
}

/* Add a finished document to the output: a List contributes its items. */
static int add_document(struct builder *b, json_t *doc)
{
    json_t *items = json_object_get(doc, "items");
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (kind && strcmp(kind, "List") == 0 && json_is_array(items)) {
        size_t i;
        json_t *item;
        json_array_foreach (items, i, item)
            if (json_array_append(b->docs, item))
                return -ENOMEM;
        return 0;
    }
    if (json_is_array(doc)) {
        size_t i;
        json_t *item;
        json_array_foreach (doc, i, item)
            if (json_array_append(b->docs, item))
                return -ENOMEM;
        return 0;
    }
    return json_array_append(b->docs, doc) ? -ENOMEM : 0;
}

static int handle_event(struct builder *b, const yaml_event_t *ev)
{
    int rc = 0;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        b->root = NULL;
        anchors_clear(b); /* anchors do not cross documents */
        break;
    case YAML_DOCUMENT_END_EVENT:
        if (b->root && !json_is_null(b->root))
            rc = add_document(b, b->root);
        json_decref(b->root);
        b->root = NULL;
        b->document++;
        break;
    case YAML_SCALAR_EVENT:
        rc = scalar_event(b, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        rc = open_collection(b, ev, 0);
        break;
    case YAML_MAPPING_START_EVENT:
        rc = open_collection(b, ev, 1);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        rc = close_collection(b, ev);
        break;
    case YAML_ALIAS_EVENT:
        rc = alias_event(b, ev);
        break;
    default:
        break;
    }
    return rc;
}

static void builder_fini(struct builder *b)
{
    while (b->depth > 0) {
        struct frame *f = &b->stack[--b->depth];
        json_decref(f->container);
        core_free(f->pending_key);
        core_free(f->anchor);
    }
    json_decref(b->anchors);
    json_decref(b->root);
    json_decref(b->docs);
}

static int load_yaml(const char *text, size_t len, json_t **ret_docs, struct spec_load_error *err)
{
    struct builder b;
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0, done = 0;

    memset(&b, 0, sizeof(b));
    b.err = err;
    b.docs = json_array();
    b.anchors = json_object();
    if (!b.docs || !b.anchors || !yaml_parser_initialize(&parser)) {
        json_decref(b.docs);
        json_decref(b.anchors);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.error == YAML_MEMORY_ERROR) {
                rc = -ENOMEM;
                break;
            }
            yaml_mark_t mark = parser.problem_mark;
            if (parser.context)
                rc = fail(&b, &mark, "%s %s", parser.problem ? parser.problem : "syntax error",
                          parser.context);
            else
                rc = fail(&b, &mark, "%s", parser.problem ? parser.problem : "syntax error");
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = handle_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc == 0 || rc == -EINVAL) { /* on a syntax error: the documents before it */
        *ret_docs = b.docs;
        b.docs = NULL;
    }
    builder_fini(&b);
    return rc;
}

static int load_json(const char *text, size_t len, json_t **ret_docs, struct spec_load_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    struct builder b;

    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return -ENOMEM;
        err->document = 0;
        err->line = jerr.line > 0 ? (size_t)jerr.line : 0;
        err->column = jerr.column > 0 ? (size_t)jerr.column : 0;
        (void)snprintf(err->message, sizeof(err->message), "%s", jerr.text);
        core_utf8_sanitize(err->message);
        return -EINVAL;
    }
    memset(&b, 0, sizeof(b));
    b.err = err;
    b.docs = json_array();
    int rc = b.docs ? add_document(&b, root) : -ENOMEM;
    json_decref(root);
    if (rc == 0) {
        *ret_docs = b.docs;
        b.docs = NULL;
    }
    json_decref(b.docs);
    return rc;
}

int spec_load(const char *text, size_t len, json_t **ret_docs, struct spec_load_error *err)
{
    size_t i = 0;

    memset(err, 0, sizeof(*err));
    /* A UTF-8 byte order mark is allowed before either form. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (i < len && (text[i] == '{' || text[i] == '[')) {
        int rc = load_json(text + i, len - i, ret_docs, err);
        if (rc != -EINVAL)
            return rc;
        /* Flow-style YAML also starts with a bracket: JSON's error stands only if YAML fails too.
         */
        struct spec_load_error json_err = *err;
        rc = load_yaml(text, len, ret_docs, err);
        if (rc == -EINVAL)
            *err = json_err;
        return rc;
    }
    return load_yaml(text, len, ret_docs, err);
}
