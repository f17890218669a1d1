/*
 * A minimal mgo host in C.
 *
 * It loads libmgo.so.1 at run time with dlopen (the program does not link against the library),
 * checks the ABI version, opens a handle with a host callback table, validates one manifest file
 * and prints each error as "FILE: path: reason".
 *
 *     usage: host FILE [LIBRARY]
 *
 * LIBRARY defaults to $MGO_LIBRARY, then to "libmgo.so.1" (found through the dynamic loader's
 * search path). MGO_LOG_LEVEL=debug|info|warn|error sets how much the library logs (default warn).
 * Exit status: 0 valid, 1 invalid, 2 usage, file, load or library error.
 *
 * The result document is read with a small JSON reader below, so the example needs nothing but
 * libc and libdl. A real host would use its JSON library of choice.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mgo/mgo.h>

enum { EXIT_VALID = 0, EXIT_INVALID = 1, EXIT_ERROR = 2 };

/* ---- the library, bound with dlsym ----------------------------------------------------------- */

struct mgo_api {
    void *dl;
    uint32_t (*abi_version)(void);
    const char *(*strerror)(int32_t code);
    void (*free)(void *ptr);
    int32_t (*open)(const mgo_host *host, mgo_plugin **ret_plugin);
    void (*close)(mgo_plugin *plugin);
    int32_t (*validate)(mgo_plugin *plugin, const char *request, size_t request_len,
                        char **ret_result, size_t *ret_result_len);
};

/* dlsym returns an object pointer; POSIX guarantees that it converts to a function pointer. The
 * memcpy avoids the ISO C warning about that conversion. */
static int bind_symbol(void *dl, const char *name, void *fn, size_t fn_size)
{
    void *sym = dlsym(dl, name);
    if (!sym) {
        fprintf(stderr, "host: missing symbol %s\n", name);
        return -1;
    }
    memcpy(fn, &sym, fn_size);
    return 0;
}

#define BIND(api, field, name) bind_symbol((api)->dl, name, &(api)->field, sizeof((api)->field))

static int load_library(struct mgo_api *api, const char *path)
{
    memset(api, 0, sizeof(*api));
    api->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!api->dl) {
        fprintf(stderr, "host: cannot load %s: %s\n", path, dlerror());
        return -1;
    }
    /* mgo_abi_version is checked before anything else is called. */
    if (BIND(api, abi_version, "mgo_abi_version"))
        goto fail;
    if (api->abi_version() != MGO_ABI_VERSION) {
        fprintf(stderr, "host: %s has ABI version %u, this host needs %d\n", path,
                (unsigned)api->abi_version(), MGO_ABI_VERSION);
        goto fail;
    }
    if (BIND(api, strerror, "mgo_strerror") || BIND(api, free, "mgo_free") ||
        BIND(api, open, "mgo_open") || BIND(api, close, "mgo_close") ||
        BIND(api, validate, "mgo_validate"))
        goto fail;
    return 0;
fail:
    dlclose(api->dl);
    api->dl = NULL;
    return -1;
}

/* ---- host callbacks ------------------------------------------------------------------------- */

struct host_ctx {
    const char *name; /* prefix of log lines */
};

static void host_log(void *user, int32_t level, const char *msg, size_t len)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const struct host_ctx *ctx = user;
    const char *name = level >= MGO_LOG_ERROR && level <= MGO_LOG_DEBUG ? names[level] : "info";

    fprintf(stderr, "%s: %s: ", ctx->name, name);
    fwrite(msg, 1, len, stderr);
    fputc('\n', stderr);
}

static int64_t host_now_ms(void *user)
{
    struct timespec ts;

    (void)user;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int32_t log_level_from_env(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    const char *env = getenv("MGO_LOG_LEVEL");

    for (int32_t i = 0; env && i <= MGO_LOG_DEBUG; i++)
        if (strcmp(env, names[i]) == 0)
            return i;
    return MGO_LOG_WARN;
}

/* ---- growable byte buffer ------------------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf_putc(struct buf *b, char c)
{
    return buf_put(b, &c, 1);
}

/* Make b the empty string (allocated, so that b->p can be printed). */
static int buf_clear(struct buf *b)
{
    if (buf_put(b, "", 0))
        return -1;
    b->len = 0;
    b->p[0] = '\0';
    return 0;
}

static int read_file(const char *path, struct buf *out)
{
    char chunk[65536];
    size_t n;
    FILE *f = fopen(path, "rb");

    if (!f)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_put(out, chunk, n))
            break;
    int failed = ferror(f) || !feof(f);
    fclose(f);
    return failed || buf_put(out, "", 0) ? -1 : 0;
}

/* Append s as a JSON string literal. Bytes >= 0x80 pass through: the library expects UTF-8. */
static int json_quote(struct buf *b, const char *s, size_t n)
{
    int rc = buf_putc(b, '"');
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            rc = buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            rc = buf_put(b, esc, 6);
        } else {
            rc = buf_putc(b, (char)c);
        }
    }
    return rc ? rc : buf_putc(b, '"');
}

/* {"manifests": [{"source": FILE, "text": TEXT}]} */
static int build_request(struct buf *req, const char *file, const struct buf *text)
{
    const char *head = "{\"manifests\":[{\"source\":";
    if (buf_put(req, head, strlen(head)) || json_quote(req, file, strlen(file)) ||
        buf_put(req, ",\"text\":", 8) || json_quote(req, text->p, text->len) ||
        buf_put(req, "}]}", 3))
        return -1;
    return 0;
}

/* ---- a small JSON reader for the result document -------------------------------------------- */

struct json {
    const char *p, *end;
};

static int js_peek(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

static int js_eat(struct json *j, char c)
{
    if (js_peek(j) != (unsigned char)c)
        return 0;
    j->p++;
    return 1;
}

static int js_hex4(struct json *j, unsigned *out)
{
    *out = 0;
    if (j->end - j->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return -1;
        *out = *out << 4 | d;
    }
    return 0;
}

static int put_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return buf_put(b, u, n);
}

/* Decode the escape sequence after a backslash (j->p is past the backslash). */
static int js_escape(struct json *j, struct buf *out)
{
    static const char from[] = "bfnrt\"\\/", to[] = "\b\f\n\r\t\"\\/";
    unsigned cp, lo;

    if (j->p >= j->end)
        return -1;
    char c = *j->p++;
    if (c != 'u') {
        const char *e = c ? strchr(from, c) : NULL;
        if (!e)
            return -1;
        return out ? buf_putc(out, to[e - from]) : 0;
    }
    if (js_hex4(j, &cp))
        return -1;
    if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
        j->p += 2;
        if (js_hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return -1;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return out ? put_utf8(out, cp) : 0;
}

/* Read a string value; decode it into out (cleared first) unless out is NULL. */
static int js_string(struct json *j, struct buf *out)
{
    if (out && buf_clear(out))
        return -1;
    if (!js_eat(j, '"'))
        return -1;
    while (j->p < j->end && *j->p != '"') {
        const char *run = j->p;
        while (j->p < j->end && *j->p != '"' && *j->p != '\\')
            j->p++;
        if (out && buf_put(out, run, (size_t)(j->p - run)))
            return -1;
        if (j->p >= j->end || *j->p == '"')
            break;
        j->p++; /* the backslash */
        if (js_escape(j, out))
            return -1;
    }
    return js_eat(j, '"') ? 0 : -1;
}

/* Iterate: *first starts at 1. Returns 1 when another member/element follows (for objects its
 * key is in key and the ':' is consumed), 0 at the closing bracket, -1 on malformed input. */
static int js_next(struct json *j, char closer, int *first, struct buf *key)
{
    if (js_eat(j, closer))
        return 0;
    if (!*first && !js_eat(j, ','))
        return -1;
    *first = 0;
    if (closer == '}' && (js_string(j, key) || !js_eat(j, ':')))
        return -1;
    return 1;
}

static int js_skip(struct json *j, int depth)
{
    int c = js_peek(j), first = 1, more;

    if (depth > 64)
        return -1;
    if (c == '"')
        return js_string(j, NULL);
    if (c == '{' || c == '[') {
        char closer = c == '{' ? '}' : ']';
        struct buf key = {0};
        j->p++;
        while ((more = js_next(j, closer, &first, closer == '}' ? &key : NULL)) == 1)
            if (js_skip(j, depth + 1)) {
                more = -1;
                break;
            }
        free(key.p);
        return more;
    }
    /* number, true, false, null */
    const char *start = j->p;
    while (j->p < j->end && strchr(",}] \t\r\n", *j->p) == NULL)
        j->p++;
    return j->p > start ? 0 : -1;
}

/* A string, or NULL (out is then left empty). */
static int js_string_or_null(struct json *j, struct buf *out)
{
    if (js_peek(j) == '"')
        return js_string(j, out);
    return buf_clear(out) ? -1 : js_skip(j, 0);
}

/* ---- printing the result -------------------------------------------------------------------- */

/* Print each finding of the array at j as "SOURCE: path: reason" (stderr and ": warning" for
 * warnings). Returns how many were printed, or -1 on malformed input. */
static long print_findings(struct json *j, const char *source, int warnings)
{
    struct buf key = {0}, path = {0}, reason = {0};
    long count = 0;
    int first = 1, more;

    if (!js_eat(j, '['))
        return -1;
    while ((more = js_next(j, ']', &first, NULL)) == 1) {
        int ffirst = 1, fmore;
        if (buf_clear(&path) || buf_clear(&reason) || !js_eat(j, '{'))
            break;
        while ((fmore = js_next(j, '}', &ffirst, &key)) == 1) {
            int rc = strcmp(key.p, "path") == 0     ? js_string_or_null(j, &path)
                     : strcmp(key.p, "reason") == 0 ? js_string_or_null(j, &reason)
                                                    : js_skip(j, 0);
            if (rc)
                break;
        }
        if (fmore != 0)
            break;
        FILE *to = warnings ? stderr : stdout;
        fprintf(to, "%s: ", source);
        if (path.len)
            fprintf(to, "%s: ", path.p);
        fprintf(to, "%s%s\n", warnings ? "warning: " : "", reason.p);
        count++;
    }
    free(key.p);
    free(path.p);
    free(reason.p);
    return more == 0 ? count : -1;
}

/* Read {"error": {"message"}} into message. */
static int read_error(struct json *j, struct buf *key, struct buf *message)
{
    int first = 1, more;

    if (js_peek(j) != '{')
        return js_skip(j, 0);
    j->p++;
    while ((more = js_next(j, '}', &first, key)) == 1)
        if (strcmp(key->p, "message") == 0 ? js_string_or_null(j, message) : js_skip(j, 0))
            return -1;
    return more;
}

/* Read one element of "objects" and print its findings. Member order is not fixed, so the
 * positions of "errors" and "warnings" are noted and read once "source" is known. Returns the
 * number of errors, or -1 on malformed input. */
static long print_object(struct json *j, struct buf *key, struct buf *source, const char *file)
{
    const char *errors_at = NULL, *warnings_at = NULL;
    int first = 1, more;

    if (!js_eat(j, '{') || buf_clear(source))
        return -1;
    while ((more = js_next(j, '}', &first, key)) == 1) {
        js_peek(j); /* skip white space: j->p is now the value */
        if (strcmp(key->p, "errors") == 0)
            errors_at = j->p;
        else if (strcmp(key->p, "warnings") == 0)
            warnings_at = j->p;
        if (strcmp(key->p, "source") == 0 ? js_string_or_null(j, source) : js_skip(j, 0))
            return -1;
    }
    if (more != 0)
        return -1;

    const char *src = source->len ? source->p : file;
    struct json errors = {errors_at, j->end}, warnings = {warnings_at, j->end};
    long n = errors_at ? print_findings(&errors, src, 0) : 0;
    if (warnings_at && print_findings(&warnings, src, 1) < 0)
        return -1;
    return n;
}

/* Walk {"objects": [...], "error": {"message"}}, printing every finding. Returns the number of
 * errors, or -1 on malformed input. */
static long print_result(const char *doc, size_t len, const char *file, struct buf *message)
{
    struct json j = {doc, doc + len};
    struct buf key = {0}, source = {0};
    long errors = 0, n;
    int first = 1, more, ofirst, omore;

    if (!js_eat(&j, '{'))
        return -1;
    while ((more = js_next(&j, '}', &first, &key)) == 1) {
        if (strcmp(key.p, "error") == 0) {
            if (read_error(&j, &key, message))
                goto malformed;
        } else if (strcmp(key.p, "objects") != 0) {
            if (js_skip(&j, 0))
                goto malformed;
        } else {
            if (!js_eat(&j, '['))
                goto malformed;
            ofirst = 1;
            while ((omore = js_next(&j, ']', &ofirst, NULL)) == 1) {
                if ((n = print_object(&j, &key, &source, file)) < 0)
                    goto malformed;
                errors += n;
            }
            if (omore != 0)
                goto malformed;
        }
    }
    if (more != 0)
        goto malformed;
    free(key.p);
    free(source.p);
    return errors;
malformed:
    free(key.p);
    free(source.p);
    return -1;
}

/* ---- main ----------------------------------------------------------------------------------- */

static int usage(FILE *to, int code)
{
    fprintf(to, "usage: host FILE [LIBRARY]\n"
                "Validate the manifests in FILE with libmgo (LIBRARY, else $MGO_LIBRARY, else\n"
                "libmgo.so.1). Exit status: 0 valid, 1 invalid, 2 usage, file or library error.\n");
    return code;
}

static int validate_file(const struct mgo_api *api, const char *file)
{
    struct host_ctx ctx = {.name = "mgo"};
    mgo_host host = {
        .struct_size = sizeof(host),
        .abi_version = MGO_ABI_VERSION,
        .user = &ctx,
        .log = host_log,
        .now_ms = host_now_ms,
        .log_level = log_level_from_env(),
    };
    struct buf text = {0}, req = {0}, message = {0};
    mgo_plugin *plugin = NULL;
    char *result = NULL;
    size_t result_len = 0;
    int code = EXIT_ERROR;

    if (read_file(file, &text)) {
        fprintf(stderr, "host: cannot read %s: %s\n", file, strerror(errno));
        goto out;
    }
    if (build_request(&req, file, &text)) {
        fprintf(stderr, "host: out of memory\n");
        goto out;
    }
    int32_t rc = api->open(&host, &plugin);
    if (rc != MGO_OK) {
        fprintf(stderr, "host: mgo_open: %s\n", api->strerror(rc));
        goto out;
    }
    rc = api->validate(plugin, req.p, req.len, &result, &result_len);
    long errors = result ? print_result(result, result_len, file, &message) : -1;
    if (errors < 0) {
        fprintf(stderr, "host: mgo_validate: %s (no readable result)\n", api->strerror(rc));
    } else if (rc == MGO_OK) {
        printf("%s: valid\n", file);
        code = EXIT_VALID;
    } else if (rc == MGO_EINVAL) {
        if (errors == 0) /* the request itself was rejected */
            fprintf(stderr, "host: %s\n", message.len ? message.p : api->strerror(rc));
        printf("%s: %ld error%s\n", file, errors, errors == 1 ? "" : "s");
        code = EXIT_INVALID;
    } else {
        fprintf(stderr, "host: mgo_validate: %s\n", message.len ? message.p : api->strerror(rc));
    }
out:
    api->free(result);  /* NULL is accepted */
    api->close(plugin); /* NULL is accepted */
    free(text.p);
    free(req.p);
    free(message.p);
    return code;
}

int main(int argc, char **argv)
{
    struct mgo_api api;

    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return usage(stdout, EXIT_VALID);
    if (argc < 2 || argc > 3 || argv[1][0] == '\0')
        return usage(stderr, EXIT_ERROR);

    const char *library = argc == 3 ? argv[2] : getenv("MGO_LIBRARY");
    if (!library || !*library)
        library = "libmgo.so.1";
    if (load_library(&api, library))
        return EXIT_ERROR;
    int code = validate_file(&api, argv[1]);
    dlclose(api.dl);
    return code;
}
