/* protobuf-c messages <-> JSON, driven by the message descriptors. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/pbjson.h"

static void *pb_alloc(void *data, size_t size)
{
    (void)data;
    return core_malloc(size);
}

static void pb_free(void *data, void *ptr)
{
    (void)data;
    core_free(ptr);
}

ProtobufCAllocator pbjson_allocator = {pb_alloc, pb_free, NULL};

/* ---- base64 (bytes fields) ---------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_string(const uint8_t *d, size_t n)
{
    size_t out_len = (n + 2) / 3 * 4;
    char *out = core_malloc(out_len + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    json_t *s = json_stringn(out, o);
    core_free(out);
    return s;
}

static int base64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Strict standard base64 with padding. */
static int base64_decode(const char *s, size_t n, uint8_t **ret, size_t *ret_len)
{
    if (n % 4)
        return -EINVAL;
    uint8_t *out = core_malloc(n / 4 * 3 + 1);
    size_t o = 0;
    if (!out)
        return -ENOMEM;
    for (size_t i = 0; i < n; i += 4) {
        int a = base64_value(s[i]), b = base64_value(s[i + 1]);
        int pad2 = s[i + 2] == '=' && i + 4 == n, pad3 = s[i + 3] == '=' && i + 4 == n;
        int c = pad2 ? 0 : base64_value(s[i + 2]), d = pad3 ? 0 : base64_value(s[i + 3]);
        if (a < 0 || b < 0 || c < 0 || d < 0 || (pad2 && !pad3)) {
            core_free(out);
            return -EINVAL;
        }
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        /* Strict: the bits a padded group does not use must be zero. */
        if ((pad2 && (v & 0xFFFF)) || (pad3 && (v & 0xFF))) {
            core_free(out);
            return -EINVAL;
        }
        out[o++] = (uint8_t)(v >> 16);
        if (!pad2)
            out[o++] = (uint8_t)(v >> 8);
        if (!pad3)
            out[o++] = (uint8_t)v;
    }
    *ret = out;
    *ret_len = o;
    return 0;
}

/* ---- message -> JSON ----------------------------------------------------------------------- */

static int is_map_entry(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n = d ? strlen(d->name) : 0;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label == PROTOBUF_C_LABEL_REPEATED && d &&
           n > 5 && strcmp(d->name + n - 5, "Entry") == 0 && d->n_fields == 2 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
    default:
        return sizeof(ProtobufCMessage *);
    }
}

/* One value of field `f` stored at `p`; *ret_zero tells whether it is the type's zero value. */
static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p, int *ret_zero)
{
    int64_t i = 0;
    uint64_t u = 0;
    *ret_zero = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        i = *(const int32_t *)p;
        *ret_zero = i == 0;
        return json_integer((json_int_t)i);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        i = *(const int64_t *)p;
        *ret_zero = i == 0;
        return json_integer((json_int_t)i);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        u = *(const uint32_t *)p;
        *ret_zero = u == 0;
        return json_integer((json_int_t)u);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        u = *(const uint64_t *)p;
        *ret_zero = u == 0;
        if (u <= INT64_MAX)
            return json_integer((json_int_t)u);
        char text[24];
        (void)snprintf(text, sizeof(text), "%" PRIu64, u);
        return json_string(text);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        *ret_zero = *(const float *)p == 0;
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        *ret_zero = *(const double *)p == 0;
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        *ret_zero = !*(const protobuf_c_boolean *)p;
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        *ret_zero = v == 0;
        return ev ? json_string(ev->name) : json_integer(v); /* a value newer than mgo */
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        *ret_zero = !s || !*s;
        /* Stored strings are UTF-8 by protobuf's rules; a record that breaks them is corrupt. */
        return json_string(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        *ret_zero = b->len == 0;
        return base64_string(b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        *ret_zero = m == NULL;
        return m ? pbjson_from_message(m) : json_object();
    }
    default:
        return NULL;
    }
}

static int set_field(json_t *obj, const ProtobufCFieldDescriptor *f, json_t *v)
{
    return !v || json_object_set_new(obj, f->name, v) ? -1 : 0;
}

static int repeated_to_json(json_t *obj, const ProtobufCMessage *m,
                            const ProtobufCFieldDescriptor *f)
{
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
    const char *arr = *(char *const *)((const char *)m + f->offset);
    int zero;
    if (n == 0)
        return 0;
    if (is_map_entry(f)) {
        json_t *map = json_object();
        for (size_t k = 0; map && k < n; k++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[k];
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            const char *key = *(char *const *)((const char *)e + ed->fields[0].offset);
            json_t *v =
                value_to_json(&ed->fields[1], (const char *)e + ed->fields[1].offset, &zero);
            if (!v || json_object_set_new(map, key ? key : "", v)) {
                json_decref(map);
                return -1;
            }
        }
        return set_field(obj, f, map);
    }
    json_t *list = json_array();
    size_t step = type_size(f->type);
    for (size_t k = 0; list && k < n; k++)
        if (json_array_append_new(list, value_to_json(f, arr + k * step, &zero))) {
            json_decref(list);
            return -1;
        }
    return set_field(obj, f, list);
}

json_t *pbjson_from_message(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *member = (const char *)m + f->offset;
        int zero, rc = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = repeated_to_json(obj, m, f);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
            if (which == f->id)
                rc = set_field(obj, f, value_to_json(f, member, &zero));
        } else {
            json_t *v = value_to_json(f, member, &zero);
            if (zero)
                json_decref(v);
            else
                rc = set_field(obj, f, v);
        }
        if (rc) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                  json_t **ret)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &pbjson_allocator, len, data);
    if (!m)
        return core_allocation_failed() ? -ENOMEM : -EPROTO;
    json_t *j = pbjson_from_message(m);
    protobuf_c_message_free_unpacked(m, &pbjson_allocator);
    if (!j) /* a string that is not UTF-8 (protobuf requires it) or memory */
        return core_allocation_failed() ? -ENOMEM : -EPROTO;
    *ret = j;
    return 0;
}

/* ---- JSON -> message ------------------------------------------------------------------------ */

struct build {
    char *err;
    size_t err_size;
    char path[256];
    int oom;
};

static int fail_at(struct build *b, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct build *b, const char *field, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (b->err)
        (void)snprintf(b->err, b->err_size, "%s%s%s: %s", b->path, *b->path ? "." : "", field, why);
    return -EINVAL;
}

static int json_to_int64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *t = json_string_value(v);
        char *end = NULL;
        if (!((*t >= '0' && *t <= '9') || (*t == '-' && t[1] >= '0' && t[1] <= '9')))
            return -1; /* digits only: no blanks or '+' */
        errno = 0;
        long long x = strtoll(t, &end, 10);
        if (errno || !end || *end)
            return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *d, const json_t *v,
                                           struct build *b);

/* Store one JSON value of field `f` at `p` (allocating through the pb allocator). */
static int value_from_json(const ProtobufCFieldDescriptor *f, const json_t *v, void *p,
                           struct build *b)
{
    int64_t i;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (json_to_int64(v, &i) || i < INT32_MIN || i > INT32_MAX)
            return fail_at(b, f->name, "must be a 32-bit integer");
        *(int32_t *)p = (int32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (json_to_int64(v, &i) || i < 0 || i > UINT32_MAX)
            return fail_at(b, f->name, "must be an unsigned 32-bit integer");
        *(uint32_t *)p = (uint32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (json_to_int64(v, &i))
            return fail_at(b, f->name, "must be an integer");
        *(int64_t *)p = i;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (json_to_int64(v, &i) || i < 0)
            return fail_at(b, f->name, "must be an unsigned integer");
        *(uint64_t *)p = (uint64_t)i;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return fail_at(b, f->name, "must be a number");
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)p = (float)json_number_value(v);
        else
            *(double *)p = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return fail_at(b, f->name, "must be a boolean");
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        /* proto3 enums are open: a number mgo does not know (written by a newer Multigres) is
         * kept as it is; a name must be known. */
        if (json_is_integer(v)) {
            if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
                return fail_at(b, f->name, "must be a 32-bit enum value");
            *(int *)p = (int)json_integer_value(v);
            return 0;
        }
        const ProtobufCEnumValue *ev = NULL;
        if (json_is_string(v))
            ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
        if (!ev)
            return fail_at(b, f->name, "unknown value of %s",
                           ((const ProtobufCEnumDescriptor *)f->descriptor)->name);
        *(int *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return fail_at(b, f->name, "must be a string");
        char *s = core_strndup(json_string_value(v), json_string_length(v));
        if (!s) {
            b->oom = 1;
            return -ENOMEM;
        }
        *(char **)p = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bin = p;
        int rc = json_is_string(v) ? base64_decode(json_string_value(v), json_string_length(v),
                                                   &bin->data, &bin->len)
                                   : -EINVAL;
        if (rc == -ENOMEM) {
            b->oom = 1;
            return rc;
        }
        return rc ? fail_at(b, f->name, "must be base64 text") : 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        size_t mark = strlen(b->path);
        (void)snprintf(b->path + mark, sizeof(b->path) - mark, "%s%s", mark ? "." : "", f->name);
        ProtobufCMessage *m = message_from_json(f->descriptor, v, b);
        b->path[mark] = '\0';
        if (!m)
            return -EINVAL;
        *(ProtobufCMessage **)p = m;
        return 0;
    }
    default:
        return fail_at(b, f->name, "unsupported field type");
    }
}

static int repeated_from_json(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                              const json_t *v, struct build *b)
{
    size_t *count = (size_t *)((char *)m + f->quantifier_offset);
    void **arr = (void **)((char *)m + f->offset);
    if (is_map_entry(f)) {
        if (!json_is_object(v))
            return fail_at(b, f->name, "must be an object");
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        size_t n = json_object_size(v), k = 0;
        ProtobufCMessage **entries = core_calloc(n ? n : 1, sizeof(*entries));
        if (!entries)
            return -ENOMEM;
        *arr = entries;
        const char *key;
        json_t *val;
        json_object_foreach ((json_t *)v, key, val) {
            ProtobufCMessage *e = core_calloc(1, ed->sizeof_message);
            if (!e)
                return -ENOMEM;
            ed->message_init(e);
            entries[k++] = e;
            *count = k;
            char *ks = core_strdup(key);
            if (!ks)
                return -ENOMEM;
            *(char **)((char *)e + ed->fields[0].offset) = ks;
            int rc = value_from_json(&ed->fields[1], val, (char *)e + ed->fields[1].offset, b);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (!json_is_array(v))
        return fail_at(b, f->name, "must be a list");
    size_t n = json_array_size(v), step = type_size(f->type);
    char *items = core_calloc(n ? n : 1, step);
    if (!items)
        return -ENOMEM;
    *arr = items;
    for (size_t k = 0; k < n; k++) {
        int rc = value_from_json(f, json_array_get(v, k), items + k * step, b);
        if (rc)
            return rc;
        *count = k + 1;
    }
    return 0;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *d, const json_t *v,
                                           struct build *b)
{
    if (!json_is_object(v)) {
        (void)fail_at(b, "", "must be an object");
        return NULL;
    }
    ProtobufCMessage *m = core_calloc(1, d->sizeof_message);
    if (!m) {
        b->oom = 1;
        return NULL;
    }
    d->message_init(m);
    const char *key;
    json_t *val;
    json_object_foreach ((json_t *)v, key, val) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
        int rc;
        if (!f) {
            rc = fail_at(b, key, "unknown field of %s", d->name);
        } else if (json_is_null(val)) {
            continue;
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = repeated_from_json(m, f, val, b);
        } else if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                   *(uint32_t *)((char *)m + f->quantifier_offset) != 0) {
            rc = fail_at(b, key, "only one member of its oneof may be set");
        } else {
            rc = value_from_json(f, val, (char *)m + f->offset, b);
            if (rc == 0 && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
        }
        if (rc) {
            if (rc == -ENOMEM)
                b->oom = 1;
            protobuf_c_message_free_unpacked(m, &pbjson_allocator);
            return NULL;
        }
    }
    return m;
}

int pbjson_encode(const ProtobufCMessageDescriptor *desc, const json_t *value,
                  const void *keep_unknown, size_t keep_len, uint8_t **ret, size_t *ret_len,
                  char *err, size_t err_size)
{
    struct build b = {.err = err, .err_size = err_size};
    ProtobufCMessage *m = message_from_json(desc, value, &b);
    ProtobufCMessage *old = NULL;
    if (!m)
        return b.oom ? -ENOMEM : -EINVAL;
    if (keep_unknown) {
        /* Lend the previous version's unknown fields to the new message for packing. */
        old = protobuf_c_message_unpack(desc, &pbjson_allocator, keep_len, keep_unknown);
        if (old) {
            m->n_unknown_fields = old->n_unknown_fields;
            m->unknown_fields = old->unknown_fields;
        }
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = core_malloc(len ? len : 1);
    if (buf)
        (void)protobuf_c_message_pack(m, buf); /* fills exactly get_packed_size bytes */
    m->n_unknown_fields = 0;
    m->unknown_fields = NULL;
    protobuf_c_message_free_unpacked(m, &pbjson_allocator);
    if (old)
        protobuf_c_message_free_unpacked(old, &pbjson_allocator);
    if (!buf)
        return -ENOMEM;
    *ret = buf;
    *ret_len = len;
    return 0;
}
