/*
 * Test-side tools for the topology tests and the benchmark, independent of mgo's code: a
 * protobuf wire-format walker and writer (field number -> values, written from the field
 * tables of Multigres' clustermetadata, never from mgo's .proto), base64, and a small client
 * for etcd's JSON gateway (/v3/kv/...) built on libcurl directly.
 *
 * Header-only (static functions) so the test and the benchmark each compile their own copy.
 */
#ifndef MGO_TESTS_TOPO_WIRE_H
#define MGO_TESTS_TOPO_WIRE_H

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf wire walker -------------------------------------------------------------- */

#define PB_WT_VARINT 0
#define PB_WT_I64    1
#define PB_WT_LEN    2
#define PB_WT_I32    5

#define PB_MAX_FIELDS 256

struct pb_field {
    uint32_t num;
    uint32_t wt;
    uint64_t v;         /* varint value (wire type 0) */
    const uint8_t *p;   /* payload (wire types 1, 2, 5) */
    size_t len;         /* payload length */
    const uint8_t *raw; /* the whole field: tag, length and payload */
    size_t raw_len;
};

struct pb_msg {
    struct pb_field f[PB_MAX_FIELDS];
    size_t n;
};

static inline int pb_read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1)
            return -1; /* more than 64 bits */
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Split a message into its fields (in wire order). -1 when the bytes are not valid protobuf
 * wire format (bad tag, field number 0, truncated value, groups or wire types 6/7). */
static inline int pb_parse(const uint8_t *data, size_t len, struct pb_msg *m)
{
    const uint8_t *p = data, *end = data + len;
    m->n = 0;
    while (p < end) {
        const uint8_t *start = p;
        uint64_t key, n;
        if (pb_read_varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > 536870911u ||
            m->n == PB_MAX_FIELDS)
            return -1;
        struct pb_field *f = &m->f[m->n++];
        f->num = (uint32_t)(key >> 3);
        f->wt = (uint32_t)(key & 7);
        f->v = 0;
        f->p = NULL;
        f->len = 0;
        switch (f->wt) {
        case PB_WT_VARINT:
            if (pb_read_varint(&p, end, &f->v))
                return -1;
            break;
        case PB_WT_I64:
        case PB_WT_I32:
            n = f->wt == PB_WT_I64 ? 8 : 4;
            if ((uint64_t)(end - p) < n)
                return -1;
            f->p = p;
            f->len = (size_t)n;
            p += n;
            break;
        case PB_WT_LEN:
            if (pb_read_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return -1;
            f->p = p;
            f->len = (size_t)n;
            p += n;
            break;
        default:
            return -1;
        }
        f->raw = start;
        f->raw_len = (size_t)(p - start);
    }
    return 0;
}

/* The idx-th occurrence of field `num`, or NULL. */
static inline const struct pb_field *pb_get(const struct pb_msg *m, uint32_t num, size_t idx)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->f[i].num == num && idx-- == 0)
            return &m->f[i];
    return NULL;
}

static inline size_t pb_count(const struct pb_msg *m, uint32_t num)
{
    size_t c = 0;
    for (size_t i = 0; i < m->n; i++)
        c += m->f[i].num == num;
    return c;
}

/* ---- protobuf wire writer ---------------------------------------------------------------- */

struct pbw {
    uint8_t b[8192];
    size_t len;
};

static inline void pbw_varint(struct pbw *w, uint64_t v)
{
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        w->b[w->len++] = (uint8_t)(byte | (v ? 0x80 : 0));
    } while (v);
}

static inline void pbw_tag(struct pbw *w, uint32_t num, uint32_t wt)
{
    pbw_varint(w, ((uint64_t)num << 3) | wt);
}

static inline void pbw_uint(struct pbw *w, uint32_t num, uint64_t v)
{
    pbw_tag(w, num, PB_WT_VARINT);
    pbw_varint(w, v);
}

static inline void pbw_bytes(struct pbw *w, uint32_t num, const void *p, size_t n)
{
    pbw_tag(w, num, PB_WT_LEN);
    pbw_varint(w, n);
    memcpy(w->b + w->len, p, n);
    w->len += n;
}

static inline void pbw_str(struct pbw *w, uint32_t num, const char *s)
{
    pbw_bytes(w, num, s, strlen(s));
}

static inline void pbw_msg(struct pbw *w, uint32_t num, const struct pbw *sub)
{
    pbw_bytes(w, num, sub->b, sub->len);
}

/* ---- Multigres records, from the field tables (multigres-core.md 2.4) ----------------------- */

/* Cell{1 name, 2 server_addresses (repeated), 3 root} */
static inline void enc_cell(struct pbw *w, const char *name, const char *const *addresses, size_t n,
                            const char *root)
{
    w->len = 0;
    pbw_str(w, 1, name);
    for (size_t i = 0; i < n; i++)
        pbw_str(w, 2, addresses[i]);
    pbw_str(w, 3, root);
}

/* Database{1 name, 2 backup_location{1 filesystem{1 path}}, 3 cells (repeated),
 * 4 bootstrap_durability_policy{1 policy_name, 3 quorum_type, 4 required_count}} */
static inline void enc_database(struct pbw *w, const char *name, const char *path,
                                const char *const *cells, size_t n, const char *policy,
                                uint64_t quorum_type, uint64_t required)
{
    struct pbw fs = {.len = 0}, loc = {.len = 0}, pol = {.len = 0};
    pbw_str(&fs, 1, path);
    pbw_msg(&loc, 1, &fs);
    pbw_str(&pol, 1, policy);
    pbw_uint(&pol, 3, quorum_type);
    pbw_uint(&pol, 4, required);
    w->len = 0;
    pbw_str(w, 1, name);
    pbw_msg(w, 2, &loc);
    for (size_t i = 0; i < n; i++)
        pbw_str(w, 3, cells[i]);
    pbw_msg(w, 4, &pol);
}

/* Multipooler{1 id{1 component, 2 cell, 3 name}, 2 shard_key{1 database, 2 table_group,
 * 3 shard}, 7 serving_status, 8 hostname, 9 port_map (entries {1 key, 2 value}), 10 pooler_dir, 11
 * pg_data_dir, 12 lifecycle_status{1 status}, 13 routing_state{1 role}} plus optional unknown
 * fields. */
struct pooler_spec {
    const char *cell, *name, *database, *table_group, *shard, *hostname;
    int grpc_port, pg_port;
    uint64_t lifecycle;   /* 0: field 12 left out */
    uint64_t role;        /* 0: field 13 left out */
    uint32_t unknown_num; /* 0: none; else a string field with this number */
    const char *unknown_value;
    uint64_t serving_status; /* field 7; 0 (SERVING) left out */
};

static inline void enc_pooler(struct pbw *w, const struct pooler_spec *s)
{
    struct pbw id = {.len = 0}, key = {.len = 0}, e1 = {.len = 0}, e2 = {.len = 0};
    struct pbw life = {.len = 0}, route = {.len = 0};
    pbw_uint(&id, 1, 1); /* MULTIPOOLER */
    pbw_str(&id, 2, s->cell);
    pbw_str(&id, 3, s->name);
    pbw_str(&key, 1, s->database);
    pbw_str(&key, 2, s->table_group);
    pbw_str(&key, 3, s->shard);
    pbw_str(&e1, 1, "grpc");
    pbw_uint(&e1, 2, (uint64_t)s->grpc_port);
    pbw_str(&e2, 1, "postgres");
    pbw_uint(&e2, 2, (uint64_t)s->pg_port);
    w->len = 0;
    pbw_msg(w, 1, &id);
    pbw_msg(w, 2, &key);
    if (s->serving_status)
        pbw_uint(w, 7, s->serving_status);
    pbw_str(w, 8, s->hostname);
    pbw_msg(w, 9, &e1);
    pbw_msg(w, 9, &e2);
    pbw_str(w, 10, "/var/lib/pooler");
    pbw_str(w, 11, "/var/lib/pooler/pg_data");
    if (s->lifecycle) {
        pbw_uint(&life, 1, s->lifecycle);
        pbw_msg(w, 12, &life);
    }
    if (s->role) {
        pbw_uint(&route, 1, s->role);
        pbw_msg(w, 13, &route);
    }
    if (s->unknown_num)
        pbw_str(w, s->unknown_num, s->unknown_value);
}

/* ---- base64 -------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* out needs 4 * ((n + 2) / 3) + 1 bytes. */
static inline void b64_encode(const void *data, size_t n, char *out)
{
    const uint8_t *in = data;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
}

static inline int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

/* Decode into out (capacity cap); -1 on bad input or overflow. */
static inline int b64_decode(const char *in, uint8_t *out, size_t cap, size_t *ret_len)
{
    size_t n = strlen(in), o = 0;
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++)
            v[k] = in[i + k] == '=' ? 0 : b64_value(in[i + k]);
        if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
            return -1;
        uint32_t x =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        int bytes = in[i + 2] == '=' ? 1 : in[i + 3] == '=' ? 2 : 3;
        if (o + (size_t)bytes > cap)
            return -1;
        out[o++] = (uint8_t)(x >> 16);
        if (bytes > 1)
            out[o++] = (uint8_t)(x >> 8);
        if (bytes > 2)
            out[o++] = (uint8_t)x;
    }
    *ret_len = o;
    return 0;
}

/* ---- etcd JSON gateway over libcurl ------------------------------------------------------ */

struct http_buf {
    char *text;
    size_t len;
};

static inline size_t http_buf_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct http_buf *b = user;
    size_t n = size * nmemb;
    char *t = realloc(b->text, b->len + n + 1);
    if (!t)
        return 0;
    memcpy(t + b->len, ptr, n);
    b->len += n;
    t[b->len] = '\0';
    b->text = t;
    return n;
}

/* POST a JSON body to endpoint + path; the parsed answer (NULL on any failure, printed). */
static inline json_t *etcd_post(const char *endpoint, const char *path, const char *body)
{
    char url[256];
    struct http_buf b = {NULL, 0};
    long status = 0;
    json_t *out = NULL;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    (void)snprintf(url, sizeof(url), "%s%s", endpoint, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_buf_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || status != 200) {
        fprintf(stderr, "etcd %s%s: %s, HTTP %ld: %s\n", endpoint, path, curl_easy_strerror(rc),
                status, b.text ? b.text : "");
    } else {
        out = json_loads(b.text ? b.text : "", 0, NULL);
    }
    free(b.text);
    return out;
}

static inline int64_t etcd_int(const json_t *v)
{
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : 0;
}

struct kv {
    char key[512];
    uint8_t value[8192];
    size_t len;
    int64_t mod_revision;
};

/* The first byte string after every key with prefix `prefix` (etcd's range_end). */
static inline size_t prefix_end(const char *prefix, char *out)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    out[n - 1]++;
    return n;
}

/*
 * Range over keys with `prefix` ("" = the whole keyspace), at most max into out (may be NULL
 * when max is 0). Returns the number of keys (count), or -1; *ret_revision gets the store
 * revision. With max 0 only the count is asked for.
 */
static inline long etcd_range(const char *ep, const char *prefix, struct kv *out, size_t max,
                              int64_t *ret_revision)
{
    char kb[800], eb[800], end[512], body[2000];
    if (*prefix) {
        b64_encode(prefix, strlen(prefix), kb);
        size_t n = prefix_end(prefix, end);
        b64_encode(end, n, eb);
    } else {
        strcpy(kb, "AA=="); /* "\0" .. "\0": everything */
        strcpy(eb, "AA==");
    }
    (void)snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"%s}", kb, eb,
                   max ? "" : ",\"count_only\":true");
    json_t *r = etcd_post(ep, "/v3/kv/range", body);
    if (!r)
        return -1;
    if (ret_revision)
        *ret_revision = etcd_int(json_object_get(json_object_get(r, "header"), "revision"));
    long count = (long)etcd_int(json_object_get(r, "count"));
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(r, "kvs"), i, e) {
        if (i >= max)
            break;
        size_t klen = 0;
        const char *k = json_string_value(json_object_get(e, "key"));
        const char *v = json_string_value(json_object_get(e, "value"));
        if (!k || b64_decode(k, (uint8_t *)out[i].key, sizeof(out[i].key) - 1, &klen)) {
            json_decref(r);
            return -1;
        }
        out[i].key[klen] = '\0';
        out[i].len = 0;
        if (v && b64_decode(v, out[i].value, sizeof(out[i].value), &out[i].len)) {
            json_decref(r);
            return -1;
        }
        out[i].mod_revision = etcd_int(json_object_get(e, "mod_revision"));
    }
    json_decref(r);
    return count;
}

/* One key: 1 found, 0 missing, -1 error. */
static inline int etcd_get(const char *ep, const char *key, struct kv *out)
{
    char kb[800], body[900];
    b64_encode(key, strlen(key), kb);
    (void)snprintf(body, sizeof(body), "{\"key\":\"%s\"}", kb);
    json_t *r = etcd_post(ep, "/v3/kv/range", body);
    if (!r)
        return -1;
    json_t *e = json_array_get(json_object_get(r, "kvs"), 0);
    int found = e != NULL;
    if (e) {
        const char *v = json_string_value(json_object_get(e, "value"));
        (void)snprintf(out->key, sizeof(out->key), "%s", key);
        out->len = 0;
        if (v && b64_decode(v, out->value, sizeof(out->value), &out->len))
            found = -1;
        out->mod_revision = etcd_int(json_object_get(e, "mod_revision"));
    }
    json_decref(r);
    return found;
}

/* Put; the revision of the write, or -1. */
static inline int64_t etcd_put(const char *ep, const char *key, const void *value, size_t len)
{
    char kb[800], *vb = malloc(4 * ((len + 2) / 3) + 1), *body = malloc(4 * len + 1000);
    int64_t rev = -1;
    if (vb && body) {
        b64_encode(key, strlen(key), kb);
        b64_encode(value, len, vb);
        (void)sprintf(body, "{\"key\":\"%s\",\"value\":\"%s\"}", kb, vb);
        json_t *r = etcd_post(ep, "/v3/kv/put", body);
        if (r)
            rev = etcd_int(json_object_get(json_object_get(r, "header"), "revision"));
        json_decref(r);
    }
    free(vb);
    free(body);
    return rev;
}

/* Delete every key with `prefix` ("" = everything); the number deleted or -1. */
static inline long etcd_delete_prefix(const char *ep, const char *prefix)
{
    char kb[800], eb[800], end[512], body[2000];
    if (*prefix) {
        b64_encode(prefix, strlen(prefix), kb);
        size_t n = prefix_end(prefix, end);
        b64_encode(end, n, eb);
    } else {
        strcpy(kb, "AA==");
        strcpy(eb, "AA==");
    }
    (void)snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", kb, eb);
    json_t *r = etcd_post(ep, "/v3/kv/deleterange", body);
    if (!r)
        return -1;
    long n = (long)etcd_int(json_object_get(r, "deleted"));
    json_decref(r);
    return n;
}

#endif
