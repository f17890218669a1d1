/*
 * Isolation test (ctest abi_isolation): a host that exports its own functions under the names of
 * libmgo's private dependencies (jansson, libyaml) must not capture the library's calls.
 *
 * The executable is linked with --export-dynamic, so every decoy below sits in the global
 * symbol scope, where an exported or undefined json_* / yaml_* reference of the library would
 * bind to it. The test dlopens $MGO_LIBRARY with RTLD_NOW | RTLD_LOCAL (no RTLD_DEEPBIND, which
 * would hide the problem), validates a valid and an invalid manifest and reconciles the valid
 * one. A decoy that is called prints which one and ends the process with status 3.
 *
 * Environment: MGO_LIBRARY (the library), MGO_SHARED_DIR (compat/upstream-samples/minimal.yaml).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mgo/mgo.h>

#define DECOY_EXIT 3

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

/* ---- decoys ---------------------------------------------------------------------------------- */

static void decoy_called(const char *name)
{
    fprintf(stderr,
            "isolation: decoy %s was called: the library resolved a private dependency against "
            "the host's symbol\n",
            name);
    fflush(stdout);
    fflush(stderr);
    _exit(DECOY_EXIT);
}

/* The decoys take no parameters; the library's arguments are ignored (they are never used). */
#define DECOY(name)                                                                                \
    void *name(void);                                                                              \
    void *name(void)                                                                               \
    {                                                                                              \
        decoy_called(#name);                                                                       \
        return NULL;                                                                               \
    }

DECOY(json_object)
DECOY(json_array)
DECOY(json_string)
DECOY(json_stringn)
DECOY(json_integer)
DECOY(json_real)
DECOY(json_true)
DECOY(json_false)
DECOY(json_null)
DECOY(json_loads)
DECOY(json_loadb)
DECOY(json_dumps)
DECOY(json_dumpb)
DECOY(json_pack)
DECOY(json_delete)
DECOY(json_equal)
DECOY(json_deep_copy)
DECOY(json_object_get)
DECOY(json_object_set_new)
DECOY(json_object_set_new_nocheck)
DECOY(json_object_del)
DECOY(json_object_size)
DECOY(json_object_iter)
DECOY(json_object_iter_next)
DECOY(json_object_iter_key)
DECOY(json_object_iter_value)
DECOY(json_array_get)
DECOY(json_array_size)
DECOY(json_array_append_new)
DECOY(json_array_extend)
DECOY(json_string_value)
DECOY(json_string_length)
DECOY(json_integer_value)
DECOY(json_real_value)
DECOY(json_number_value)
DECOY(json_set_alloc_funcs)
DECOY(yaml_parser_initialize)
DECOY(yaml_parser_set_input_string)
DECOY(yaml_parser_parse)
DECOY(yaml_parser_delete)
DECOY(yaml_event_delete)

/* Names that must be visible in the host's global scope for the test to mean anything. */
static const char *const decoy_probe[] = {"json_object",
                                          "json_loads",
                                          "json_loadb",
                                          "json_dumps",
                                          "json_object_set_new_nocheck",
                                          "json_delete",
                                          "yaml_parser_initialize",
                                          "yaml_parser_parse"};

/* ---- helpers ------------------------------------------------------------------------------- */

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *nbuf = realloc(buf, cap + 65536);
            if (!nbuf) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nbuf;
            cap += 65536;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    *ret_len = len;
    return buf;
}

/* Append `s` (len bytes) to out as the body of a JSON string; out must hold 6 * len + 1 bytes. */
static size_t json_escape(const char *s, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
        case '\\':
            out[o++] = '\\';
            out[o++] = (char)c;
            break;
        case '\n':
            out[o++] = '\\';
            out[o++] = 'n';
            break;
        case '\r':
            out[o++] = '\\';
            out[o++] = 'r';
            break;
        case '\t':
            out[o++] = '\\';
            out[o++] = 't';
            break;
        default:
            if (c < 0x20) {
                memcpy(out + o, "\\u00", 4);
                out[o + 4] = hex[c >> 4];
                out[o + 5] = hex[c & 15];
                o += 6;
            } else {
                out[o++] = (char)c; /* UTF-8 bytes pass through */
            }
        }
    }
    out[o] = '\0';
    return o;
}

/* {"manifests": "<yaml>"} */
static char *manifest_request(const char *yaml, size_t len, size_t *ret_len)
{
    static const char head[] = "{\"manifests\": \"", tail[] = "\"}";
    char *req = malloc(sizeof(head) + 6 * len + sizeof(tail));
    size_t n;

    if (!req)
        return NULL;
    memcpy(req, head, sizeof(head) - 1);
    n = sizeof(head) - 1;
    n += json_escape(yaml, len, req + n);
    memcpy(req + n, tail, sizeof(tail));
    *ret_len = n + sizeof(tail) - 1;
    return req;
}

/* A copy of `yaml` with "region: us-central1" added under the first zoneId line. */
static char *add_region(const char *yaml, size_t *ret_len)
{
    const char *zone = strstr(yaml, "zoneId:");
    const char *line, *eol;
    static const char region[] = "region: us-central1\n";
    size_t indent, len = strlen(yaml);
    char *out;

    if (!zone)
        return NULL;
    for (line = zone; line > yaml && line[-1] != '\n'; line--)
        ;
    indent = (size_t)(zone - line);
    eol = strchr(zone, '\n');
    if (!eol)
        return NULL;
    eol++;
    out = malloc(len + indent + sizeof(region));
    if (!out)
        return NULL;
    size_t head = (size_t)(eol - yaml);
    memcpy(out, yaml, head);
    memset(out + head, ' ', indent);
    memcpy(out + head + indent, region, sizeof(region) - 1);
    memcpy(out + head + indent + sizeof(region) - 1, eol, len - head + 1);
    *ret_len = len + indent + sizeof(region) - 1;
    return out;
}

/* ---- the library, through dlopen ------------------------------------------------------------ */

struct api {
    uint32_t (*abi_version)(void);
    int32_t (*open)(const mgo_host *, mgo_plugin **);
    void (*close)(mgo_plugin *);
    void (*free)(void *);
    int32_t (*validate)(mgo_plugin *, const char *, size_t, char **, size_t *);
    int32_t (*reconcile)(mgo_plugin *, const char *, size_t, char **, size_t *);
};

static int load_api(void *lib, struct api *api)
{
    /* POSIX allows converting dlsym's result to a function pointer; do it through memcpy to
     * stay within ISO C. */
#define SYM(field, name)                                                                           \
    do {                                                                                           \
        void *sym = dlsym(lib, name);                                                              \
        if (!sym) {                                                                                \
            fprintf(stderr, "isolation: %s: %s\n", name, dlerror());                               \
            return -1;                                                                             \
        }                                                                                          \
        memcpy(&api->field, &sym, sizeof(sym));                                                    \
    } while (0)
    SYM(abi_version, "mgo_abi_version");
    SYM(open, "mgo_open");
    SYM(close, "mgo_close");
    SYM(free, "mgo_free");
    SYM(validate, "mgo_validate");
    SYM(reconcile, "mgo_reconcile");
#undef SYM
    return 0;
}

static void run(const struct api *api, const char *yaml, size_t yaml_len)
{
    mgo_plugin *p = NULL;
    char *res = NULL, *req, *bad_yaml, *bad_req;
    size_t res_len = 0, req_len = 0, bad_len = 0, bad_req_len = 0;
    int32_t rc;

    CHECK(api->abi_version() == MGO_ABI_VERSION, "mgo_abi_version() == %d", MGO_ABI_VERSION);
    rc = api->open(NULL, &p);
    CHECK(rc == MGO_OK && p, "mgo_open(NULL host) -> %d", rc);
    if (rc != MGO_OK)
        return;

    req = manifest_request(yaml, yaml_len, &req_len);
    rc = api->validate(p, req, req_len, &res, &res_len);
    CHECK(rc == MGO_OK, "mgo_validate(minimal.yaml) -> %d (want MGO_OK)", rc);
    CHECK(res && strstr(res, "\"valid\":true"), "the result says \"valid\":true: %s",
          res ? res : "(null)");
    CHECK(res && strlen(res) == res_len, "ret_result_len is the document's length");
    api->free(res);

    res = NULL;
    rc = api->reconcile(p, req, req_len, &res, &res_len);
    CHECK(rc == MGO_OK, "mgo_reconcile(minimal.yaml) -> %d (want MGO_OK)", rc);
    CHECK(res && strstr(res, "\"resolved\""), "the reconcile result has \"resolved\"");
    api->free(res);
    free(req);

    bad_yaml = add_region(yaml, &bad_len);
    CHECK(bad_yaml != NULL, "built an invalid manifest (cell with zoneId and region)");
    if (bad_yaml) {
        bad_req = manifest_request(bad_yaml, bad_len, &bad_req_len);
        res = NULL;
        rc = api->validate(p, bad_req, bad_req_len, &res, &res_len);
        CHECK(rc == MGO_EINVAL, "mgo_validate(zoneId + region) -> %d (want MGO_EINVAL)", rc);
        CHECK(res && strstr(res, "cannot specify both 'zoneId' and 'region'"),
              "the result names the error: %s", res ? res : "(null)");
        CHECK(res && strstr(res, "\"valid\":false"), "the result says \"valid\":false");
        api->free(res);
        free(bad_req);
        free(bad_yaml);
    }
    api->close(p);
}

int main(void)
{
    const char *libpath = getenv("MGO_LIBRARY");
    const char *shared = getenv("MGO_SHARED_DIR");
    char path[4096];
    size_t yaml_len = 0;
    char *yaml;
    struct api api;

    if (!libpath || !shared) {
        fprintf(stderr, "isolation: set MGO_LIBRARY and MGO_SHARED_DIR\n");
        return 2;
    }
    (void)snprintf(path, sizeof(path), "%s/compat/upstream-samples/minimal.yaml", shared);
    yaml = read_file(path, &yaml_len);
    if (!yaml) {
        fprintf(stderr, "isolation: cannot read %s\n", path);
        return 2;
    }

    /* The decoys must be where a leaking library would find them: the global scope. */
    void *self = dlopen(NULL, RTLD_NOW);
    for (size_t i = 0; i < sizeof(decoy_probe) / sizeof(decoy_probe[0]); i++)
        CHECK(self && dlsym(self, decoy_probe[i]), "decoy %s is exported by the host",
              decoy_probe[i]);

    void *lib = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "isolation: dlopen %s: %s\n", libpath, dlerror());
        return 2;
    }
    printf("loaded %s with RTLD_NOW | RTLD_LOCAL\n", libpath);
    for (size_t i = 0; i < sizeof(decoy_probe) / sizeof(decoy_probe[0]); i++) {
        void *own = dlsym(lib, decoy_probe[i]);
        CHECK(own == NULL, "the library does not export %s", decoy_probe[i]);
    }
    if (load_api(lib, &api) != 0)
        return 2;

    run(&api, yaml, yaml_len);
    free(yaml);
    dlclose(lib);
    if (self)
        dlclose(self);

    /* Reaching this line means no decoy ran (a decoy ends the process). */
    CHECK(1, "no decoy was called");
    if (failures) {
        printf("isolation: %d failure(s)\n", failures);
        return 1;
    }
    printf("isolation: OK\n");
    return 0;
}
