/*
 * ABI smoke test (ctest abi_smoke): the contract of include/mgo/mgo.h at the boundary, as a host
 * linked against libmgo.so.1 sees it. Argument checks of mgo_open, the host allocator, mgo_free,
 * status codes and classes, the unimplemented hooks, log filtering and NULL output pointers.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mgo/mgo.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            printf("ok:   ");                                                                      \
        } else {                                                                                   \
            printf("FAIL: ");                                                                      \
            failures++;                                                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

static const char valid_request[] = "{\"manifests\": \""
                                    "apiVersion: multigres.com/v1alpha1\\n"
                                    "kind: MultigresCluster\\n"
                                    "metadata:\\n"
                                    "  name: smoke\\n"
                                    "spec:\\n"
                                    "  postgresPasswordSecretRef:\\n"
                                    "    name: pw\\n"
                                    "    key: password\\n"
                                    "  cells:\\n"
                                    "    - name: zone-a\\n"
                                    "      zoneId: us-central1-a\\n"
                                    "\"}";

/* ---- a counting allocator that tags its blocks ---------------------------------------------- */

#define BLOCK_MAGIC 0x6d676f21u /* "mgo!" */

struct counter {
    long allocs;   /* alloc calls plus realloc(NULL, n) */
    long reallocs; /* realloc of a live block */
    long frees;
    long live;
    long foreign; /* free/realloc of a pointer this allocator did not hand out */
};

union block {
    struct {
        unsigned magic;
        size_t size;
    } h;
    max_align_t align;
};

static void *count_alloc(void *user, size_t size)
{
    struct counter *c = user;
    union block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->h.magic = BLOCK_MAGIC;
    b->h.size = size;
    c->allocs++;
    c->live++;
    return b + 1;
}

static void count_free(void *user, void *ptr)
{
    struct counter *c = user;
    if (!ptr)
        return;
    union block *b = (union block *)ptr - 1;
    if (b->h.magic != BLOCK_MAGIC) {
        c->foreign++;
        return;
    }
    b->h.magic = 0;
    c->frees++;
    c->live--;
    free(b);
}

static void *count_realloc(void *user, void *ptr, size_t size)
{
    struct counter *c = user;
    if (!ptr)
        return count_alloc(user, size);
    union block *b = (union block *)ptr - 1;
    if (b->h.magic != BLOCK_MAGIC) {
        c->foreign++;
        return NULL;
    }
    union block *nb = realloc(b, sizeof(*nb) + size);
    if (!nb)
        return NULL;
    nb->h.size = size;
    c->reallocs++;
    return nb + 1;
}

/* ---- a log sink ----------------------------------------------------------------------------- */

struct log_record {
    int count[4];
    int above_level; /* messages more detailed than the configured level */
    int bad_len;     /* len != strlen(msg) */
    int32_t level;
};

static void log_sink(void *user, int32_t level, const char *msg, size_t len)
{
    struct log_record *r = user;
    if (level > r->level)
        r->above_level++;
    if (level >= 0 && level <= MGO_LOG_DEBUG)
        r->count[level]++;
    if (strlen(msg) != len)
        r->bad_len++;
}

/* ---- checks ---------------------------------------------------------------------------------- */

static mgo_host host_init(void)
{
    mgo_host h;
    memset(&h, 0, sizeof(h));
    h.struct_size = sizeof(h);
    h.abi_version = MGO_ABI_VERSION;
    return h;
}

static void check_open_arguments(void)
{
    mgo_plugin *sentinel = (mgo_plugin *)&failures; /* any non-NULL address */
    mgo_plugin *p = sentinel;
    mgo_host h = host_init();
    int32_t rc;

    CHECK(mgo_abi_version() == MGO_ABI_VERSION, "mgo_abi_version() == MGO_ABI_VERSION");

    h.struct_size = 0;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "struct_size 0 -> %d (MGO_EARG), handle untouched", rc);
    h.struct_size = (uint32_t)offsetof(mgo_host, abi_version);
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "struct_size %u -> %d (MGO_EARG)", h.struct_size, rc);
    h.struct_size = (uint32_t)offsetof(mgo_host, log); /* covers struct_size, abi_version, user */
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_OK && p != sentinel, "struct_size %u (an old host) -> %d (MGO_OK)",
          h.struct_size, rc);
    if (rc == MGO_OK)
        mgo_close(p);

    /* The table ends with an explicit field: no tail padding, so the next appended field starts
     * at today's sizeof on every platform. */
    CHECK(sizeof(mgo_host) == offsetof(mgo_host, reserved0) + sizeof(uint32_t),
          "mgo_host has no tail padding (sizeof %zu)", sizeof(mgo_host));

    p = sentinel;
    h = host_init();
    h.reserved0 = 1;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "reserved0 != 0 -> %d (MGO_EARG)", rc);

    /* A struct_size that covers only half of the log pointer: the pointer is not used. */
    struct log_record half = {{0}, 0, 0, MGO_LOG_DEBUG};
    h = host_init();
    h.user = &half;
    h.log = log_sink;
    h.log_level = MGO_LOG_DEBUG;
    h.struct_size = (uint32_t)(offsetof(mgo_host, log) + sizeof(void *) / 2);
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_OK, "struct_size inside a field -> %d (MGO_OK)", rc);
    if (rc == MGO_OK) {
        char *out = NULL;
        size_t out_len = 0;
        const char *req = "{\"objects\": []}";
        (void)mgo_validate(p, req, strlen(req), &out, &out_len);
        mgo_free(out);
        mgo_close(p);
    }
    int half_calls = half.count[0] + half.count[1] + half.count[2] + half.count[3];
    CHECK(half_calls == 0, "a partly covered callback is never called (%d calls)", half_calls);

    p = sentinel;
    h = host_init();
    h.abi_version = MGO_ABI_VERSION + 1;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EABI && p == sentinel, "abi_version %u -> %d (MGO_EABI)", h.abi_version, rc);
    h.abi_version = 0;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EABI && p == sentinel, "abi_version 0 -> %d (MGO_EABI)", rc);

    struct counter c = {0};
    h = host_init();
    h.user = &c;
    h.alloc = count_alloc;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "alloc without realloc/free -> %d (MGO_EARG)", rc);
    h.free = count_free;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "alloc + free without realloc -> %d (MGO_EARG)", rc);
    h.alloc = NULL;
    h.realloc = count_realloc;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_EARG && p == sentinel, "realloc + free without alloc -> %d (MGO_EARG)", rc);
    CHECK(c.allocs == 0, "the rejected allocators were never called");

    rc = mgo_open(NULL, NULL);
    CHECK(rc == MGO_EARG, "mgo_open(NULL, NULL) -> %d (MGO_EARG)", rc);
    h = host_init();
    rc = mgo_open(&h, NULL);
    CHECK(rc == MGO_EARG, "mgo_open(host, NULL) -> %d (MGO_EARG)", rc);
    rc = mgo_open(NULL, &p);
    CHECK(rc == MGO_OK && p != sentinel && p != NULL, "mgo_open(NULL host) -> %d (MGO_OK)", rc);
    if (rc == MGO_OK)
        mgo_close(p);
    mgo_close(NULL);
    CHECK(1, "mgo_close(NULL) returns");
}

static void check_allocator(void)
{
    struct counter c = {0};
    mgo_host h = host_init();
    mgo_plugin *p = NULL;
    char *res = NULL;
    size_t len = 0;
    int32_t rc;

    h.user = &c;
    h.alloc = count_alloc;
    h.realloc = count_realloc;
    h.free = count_free;
    rc = mgo_open(&h, &p);
    CHECK(rc == MGO_OK, "mgo_open with a counting allocator -> %d", rc);
    if (rc != MGO_OK)
        return;
    rc = mgo_validate(p, valid_request, strlen(valid_request), &res, &len);
    CHECK(rc == MGO_OK && res && strstr(res, "\"valid\":true"), "validate -> %d: %s", rc,
          res ? res : "(null)");
    CHECK(c.allocs > 0, "the host allocator was used (%ld allocations, %ld reallocations)",
          c.allocs, c.reallocs);
    mgo_close(p);
    CHECK(c.live == 1, "after mgo_close only the result is live (%ld live)", c.live);
    mgo_free(res); /* after the handle is closed: allowed */
    CHECK(c.live == 0, "after mgo_free + mgo_close nothing is live (%ld allocs, %ld frees)",
          c.allocs, c.frees);
    CHECK(c.foreign == 0, "the library never passed foreign memory to the host allocator (%ld)",
          c.foreign);
    mgo_free(NULL);
    CHECK(1, "mgo_free(NULL) returns");
}

static void check_codes(void)
{
    static const struct {
        int32_t code;
        int32_t class;
        const char *name;
    } documented[] = {
        {MGO_OK, MGO_CLASS_NONE, "MGO_OK"},
        {MGO_EINVAL, MGO_CLASS_INVALID_INPUT, "MGO_EINVAL"},
        {MGO_EUNSUPPORTED, MGO_CLASS_UNSUPPORTED, "MGO_EUNSUPPORTED"},
        {MGO_EAGAIN, MGO_CLASS_RETRY, "MGO_EAGAIN"},
        {MGO_ENOMEM, MGO_CLASS_FATAL, "MGO_ENOMEM"},
        {MGO_EARG, MGO_CLASS_INVALID_INPUT, "MGO_EARG"},
        {MGO_EABI, MGO_CLASS_FATAL, "MGO_EABI"},
        {MGO_ENOTFOUND, MGO_CLASS_INVALID_INPUT, "MGO_ENOTFOUND"},
        {MGO_EINTERNAL, MGO_CLASS_FATAL, "MGO_EINTERNAL"},
    };
    static const int32_t unknown[] = {1, 42, -10, -1000, INT32_MIN, INT32_MAX};

    for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
        int32_t cls = mgo_error_class(documented[i].code);
        const char *msg = mgo_strerror(documented[i].code);
        CHECK(cls == documented[i].class, "mgo_error_class(%s) == %d (got %d)", documented[i].name,
              documented[i].class, cls);
        CHECK(msg && *msg && strcmp(msg, "unknown error") != 0, "mgo_strerror(%s) = \"%s\"",
              documented[i].name, msg ? msg : "(null)");
    }
    /* MGO_ERANGE's class is not stated in the header; it must be a real class, not NONE. */
    int32_t range_class = mgo_error_class(MGO_ERANGE);
    CHECK(range_class > MGO_CLASS_NONE && range_class <= MGO_CLASS_FATAL,
          "mgo_error_class(MGO_ERANGE) is a failure class (%d)", range_class);
    CHECK(strcmp(mgo_strerror(MGO_ERANGE), "unknown error") != 0, "mgo_strerror(MGO_ERANGE) known");
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        CHECK(strcmp(mgo_strerror(unknown[i]), "unknown error") == 0,
              "mgo_strerror(%d) == \"unknown error\"", unknown[i]);
        CHECK(mgo_error_class(unknown[i]) == MGO_CLASS_FATAL,
              "mgo_error_class(%d) == MGO_CLASS_FATAL", unknown[i]);
    }
}

static void check_empty_requests(void)
{
    static const char req[] = "{}";
    mgo_plugin *p = NULL;
    char *res = NULL;
    size_t len = 0;
    int32_t rc = mgo_open(NULL, &p);

    if (rc != MGO_OK) {
        CHECK(0, "mgo_open -> %d", rc);
        return;
    }
    rc = mgo_drain(p, req, sizeof(req) - 1, &res, &len);
    CHECK(rc == MGO_EINVAL, "mgo_drain of nothing requested -> %d (MGO_EINVAL)", rc);
    CHECK(res && strstr(res, "no drain was requested"), "its result says why: %s",
          res ? res : "(null)");
    CHECK(res && len == strlen(res), "ret_result_len matches");
    mgo_free(res);
    res = NULL;
    rc = mgo_observe(p, req, sizeof(req) - 1, &res, &len);
    CHECK(rc == MGO_EINVAL, "mgo_observe of no shards -> %d (MGO_EINVAL)", rc);
    CHECK(res && strstr(res, "must be an array"), "its result says why: %s", res ? res : "(null)");
    mgo_free(res);
    res = NULL;
    rc = mgo_converge(p, req, sizeof(req) - 1, &res, &len);
    CHECK(rc == MGO_EINVAL, "mgo_converge of no nodes -> %d (MGO_EINVAL)", rc);
    CHECK(res && strstr(res, "(1..32) is required"), "its result says why: %s",
          res ? res : "(null)");
    mgo_free(res);
    res = NULL;
    rc = mgo_scale(p, req, sizeof(req) - 1, &res, &len);
    CHECK(rc == MGO_EINVAL, "mgo_scale of no manifests -> %d (MGO_EINVAL)", rc);
    CHECK(res && strstr(res, "request: ") && strstr(res, "\"class\":2"),
          "its result says why, class 2: %s", res ? res : "(null)");
    mgo_free(res);
    mgo_close(p);
}

static void check_log_level(int32_t level, int want_debug)
{
    struct log_record r = {.level = level};
    mgo_host h = host_init();
    mgo_plugin *p = NULL;
    char *res = NULL;
    size_t len = 0;
    int32_t rc;

    h.user = &r;
    h.log = log_sink;
    h.log_level = level;
    rc = mgo_open(&h, &p);
    if (rc != MGO_OK) {
        CHECK(0, "mgo_open -> %d", rc);
        return;
    }
    rc = mgo_validate(p, valid_request, strlen(valid_request), &res, &len);
    CHECK(rc == MGO_OK, "log_level %d: validate -> %d", level, rc);
    mgo_free(res);
    mgo_close(p);
    if (want_debug)
        CHECK(r.count[MGO_LOG_DEBUG] > 0, "log_level %d: at least one debug line (%d)", level,
              r.count[MGO_LOG_DEBUG]);
    CHECK(r.above_level == 0, "log_level %d: no message above the level (%d)", level,
          r.above_level);
    CHECK(r.bad_len == 0, "log_level %d: every len equals strlen(msg)", level);
}

static void check_null_outputs(void)
{
    mgo_plugin *p = NULL;
    char *res = (char *)valid_request; /* must be overwritten */
    size_t len = 7;
    int32_t rc = mgo_open(NULL, &p);

    if (rc != MGO_OK) {
        CHECK(0, "mgo_open -> %d", rc);
        return;
    }
    rc = mgo_validate(p, valid_request, strlen(valid_request), NULL, &len);
    CHECK(rc == MGO_EARG && len == 0, "validate with ret_result NULL -> %d (MGO_EARG), len 0", rc);
    rc = mgo_validate(p, valid_request, strlen(valid_request), &res, NULL);
    CHECK(rc == MGO_EARG && res == NULL, "validate with ret_result_len NULL -> %d, result NULL",
          rc);
    res = (char *)valid_request;
    len = 7;
    rc = mgo_validate(NULL, valid_request, strlen(valid_request), &res, &len);
    CHECK(rc == MGO_EARG && res == NULL && len == 0, "validate with plugin NULL -> %d", rc);
    rc = mgo_reconcile(p, NULL, 5, &res, &len);
    CHECK(rc == MGO_EARG && res == NULL, "reconcile with request NULL, length 5 -> %d", rc);
    rc = mgo_drain(p, "{}", 2, NULL, NULL);
    CHECK(rc == MGO_EARG, "drain with both outputs NULL -> %d", rc);
    rc = mgo_observe(p, "{}", 2, NULL, &len);
    CHECK(rc == MGO_EARG, "observe with ret_result NULL -> %d", rc);
    rc = mgo_scale(NULL, "{}", 2, &res, &len);
    CHECK(rc == MGO_EARG, "scale with plugin NULL -> %d", rc);
    rc = mgo_converge(p, "{}", 2, &res, NULL);
    CHECK(rc == MGO_EARG, "converge with ret_result_len NULL -> %d", rc);
    mgo_close(p);
}

int main(void)
{
    check_open_arguments();
    check_allocator();
    check_codes();
    check_empty_requests();
    check_log_level(MGO_LOG_DEBUG, 1);
    check_log_level(MGO_LOG_ERROR, 0);
    check_log_level(MGO_LOG_INFO, 0);
    check_null_outputs();
    if (failures) {
        printf("abi_smoke: %d failure(s)\n", failures);
        return 1;
    }
    printf("abi_smoke: OK\n");
    return 0;
}
