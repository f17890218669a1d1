/*
 * The table of invalid manifests (tests/spec/invalid/): each case file states, in header
 * comments, the exact errors the reference rules give for it. This runner feeds every case to
 * mgo_validate and requires exactly that set of errors, then checks that mgo_reconcile refuses
 * the same input and produces no resolved model (an invalid cluster changes nothing).
 *
 * Header lines of a case file:
 *   # expect: PATH: REASON        one expected error (the set must match exactly); in a case with
 *                                 several objects, errors of a template are written
 *                                 "# expect: Kind/name: PATH: REASON"
 *   # expect-line: N              the only error: a syntax error, no path, at line N ...
 *   # expect-contains: TEXT       ... whose reason contains TEXT
 * A sibling NAME.previous.yaml holds the previous version for the update-only rules.
 *
 * A second group runs the table of VALID updates (tests/spec/valid-updates/): each NAME.yaml with
 * its NAME.previous.yaml is a change the reference accepts (append a cell or a pool, grow a
 * volume, ...); mgo_validate must return MGO_OK with no error on any document.
 */
#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mgo/mgo.h"

struct case_file {
    char path[8192];
    char name[256];
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    rewind(f);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Collect the "# key: value" header values for `key`, in order, into a JSON array. */
static json_t *header_values(const char *text, const char *key)
{
    json_t *out = json_array();
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > klen + 2 && strncmp(line, "# ", 2) == 0 && strncmp(line + 2, key, klen) == 0 &&
            line[2 + klen] == ':') {
            const char *v = line + 2 + klen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = len - (size_t)(v - line);
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\r'))
                vlen--;
            json_array_append_new(out, json_stringn(v, vlen));
        }
        line = end ? end + 1 : NULL;
    }
    return out;
}

static json_t *build_request(const struct case_file *c, const char *text)
{
    json_t *req = json_pack("{s:[{s:s, s:s}]}", "manifests", "source", c->name, "text", text);
    char prev_path[8300];
    size_t n = strlen(c->path);
    (void)snprintf(prev_path, sizeof(prev_path), "%.*s.previous.yaml", (int)(n - 5), c->path);
    char *prev = read_file(prev_path);
    if (prev) {
        json_object_set_new(req, "previous", json_string(prev));
        free(prev);
    }
    return req;
}

/*
 * Every error of the result as "path: reason" (or the reason alone for an empty path). When the
 * case holds more than one object, errors of objects other than a MultigresCluster are written
 * "Kind/name: path: reason", so an expectation also says which object the error belongs to.
 */
static json_t *actual_errors(const json_t *result)
{
    json_t *out = json_array();
    size_t i, j;
    json_t *o, *e;
    const json_t *objects = json_object_get(result, "objects");
    json_array_foreach (objects, i, o)
        json_array_foreach (json_object_get(o, "errors"), j, e) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *reason = json_string_value(json_object_get(e, "reason"));
            const char *kind = json_string_value(json_object_get(o, "kind"));
            const char *name = json_string_value(json_object_get(o, "name"));
            char owner[300] = "", line[2048];
            if (json_array_size(objects) > 1 && !(kind && strcmp(kind, "MultigresCluster") == 0))
                (void)snprintf(owner, sizeof(owner), "%s/%s: ", kind ? kind : "?",
                               name ? name : "?");
            if (path && *path)
                (void)snprintf(line, sizeof(line), "%s%s: %s", owner, path, reason);
            else
                (void)snprintf(line, sizeof(line), "%s%s", owner, reason);
            json_array_append_new(out, json_string(line));
        }
    return out;
}

/* Remove one occurrence of `s` from `list`; 1 if found. */
static int take(json_t *list, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach (list, i, v)
        if (strcmp(json_string_value(v), s) == 0) {
            json_array_remove(list, i);
            return 1;
        }
    return 0;
}

static void check_syntax_case(const json_t *result, const json_t *lines, const json_t *contains)
{
    json_int_t want_line = strtoll(json_string_value(json_array_get(lines, 0)), NULL, 10);
    const char *want_text = json_string_value(json_array_get(contains, 0));
    size_t i, j, total = 0;
    json_t *o, *e;
    int found = 0;
    /* A syntax error stops the reading: it must be the one and only error, with no path. */
    json_array_foreach (json_object_get(result, "objects"), i, o)
        json_array_foreach (json_object_get(o, "errors"), j, e) {
            const char *reason = json_string_value(json_object_get(e, "reason"));
            const char *path = json_string_value(json_object_get(e, "path"));
            total++;
            if (json_integer_value(json_object_get(e, "line")) == want_line && path && !*path &&
                (!want_text || strstr(reason, want_text)))
                found = 1;
        }
    if (!found || total != 1) {
        char *dump = json_dumps(result, JSON_INDENT(2));
        print_error("no syntax error at line %lld containing \"%s\" in:\n%s\n",
                    (long long)want_line, want_text ? want_text : "", dump);
        free(dump);
        fail();
    }
}

static void run_case(void **state)
{
    const struct case_file *c = *state;
    char *text = read_file(c->path);
    assert_non_null(text);
    json_t *expected = header_values(text, "expect");
    json_t *lines = header_values(text, "expect-line");
    json_t *contains = header_values(text, "expect-contains");
    assert_true(json_array_size(expected) > 0 || json_array_size(lines) > 0);

    mgo_plugin *p = NULL;
    assert_int_equal(mgo_open(NULL, &p), MGO_OK);
    json_t *req = build_request(c, text);
    char *req_text = json_dumps(req, JSON_COMPACT);
    char *out = NULL;
    size_t out_len = 0;
    int32_t rc = mgo_validate(p, req_text, strlen(req_text), &out, &out_len);
    /* JSON_ALLOW_NUL: a result may echo input that holds U+0000 (case 117). */
    json_t *result = json_loadb(out, out_len, JSON_ALLOW_NUL, NULL);
    assert_non_null(result);
    if (rc != MGO_EINVAL)
        print_error("%s: mgo_validate returned %d, expected MGO_EINVAL\n", c->name, rc);
    assert_int_equal(rc, MGO_EINVAL);

    if (json_array_size(lines) > 0) {
        check_syntax_case(result, lines, contains);
    } else {
        json_t *actual = actual_errors(result);
        json_t *missing = json_array();
        size_t i;
        json_t *v;
        json_array_foreach (expected, i, v)
            if (!take(actual, json_string_value(v)))
                json_array_append(missing, v);
        int ok = json_array_size(missing) == 0 && json_array_size(actual) == 0;
        if (!ok) {
            print_error("%s:\n", c->name);
            json_array_foreach (missing, i, v)
                print_error("  missing:    %s\n", json_string_value(v));
            json_array_foreach (actual, i, v)
                print_error("  unexpected: %s\n", json_string_value(v));
        }
        json_decref(actual);
        json_decref(missing);
        assert_true(ok);
    }

    /* The same input through reconcile: refused, and no model to act on. */
    char *out2 = NULL;
    size_t out2_len = 0;
    rc = mgo_reconcile(p, req_text, strlen(req_text), &out2, &out2_len);
    json_t *r2 = json_loadb(out2, out2_len, JSON_ALLOW_NUL, NULL);
    assert_non_null(r2);
    assert_int_equal(rc, MGO_EINVAL);
    assert_null(json_object_get(r2, "resolved"));
    json_decref(r2);
    mgo_free(out2);

    json_decref(result);
    mgo_free(out);
    free(req_text);
    json_decref(req);
    mgo_close(p);
    json_decref(expected);
    json_decref(lines);
    json_decref(contains);
    free(text);
}

/* A valid update: mgo_validate accepts it with no error at all (warnings are allowed). */
static void run_valid_case(void **state)
{
    const struct case_file *c = *state;
    char *text = read_file(c->path);
    assert_non_null(text);

    mgo_plugin *p = NULL;
    assert_int_equal(mgo_open(NULL, &p), MGO_OK);
    json_t *req = build_request(c, text);
    assert_non_null(json_object_get(req, "previous"));
    char *req_text = json_dumps(req, JSON_COMPACT);
    char *out = NULL;
    size_t out_len = 0;
    int32_t rc = mgo_validate(p, req_text, strlen(req_text), &out, &out_len);
    json_t *result = json_loadb(out, out_len, JSON_ALLOW_NUL, NULL);
    assert_non_null(result);
    json_t *errors = actual_errors(result);
    if (rc != MGO_OK || json_array_size(errors) > 0) {
        size_t i;
        json_t *v;
        print_error("%s: mgo_validate returned %d, expected MGO_OK with no errors\n", c->name, rc);
        json_array_foreach (errors, i, v)
            print_error("  unexpected: %s\n", json_string_value(v));
    }
    assert_int_equal(rc, MGO_OK);
    assert_int_equal(json_array_size(errors), 0);
    json_decref(errors);

    json_decref(result);
    mgo_free(out);
    free(req_text);
    json_decref(req);
    mgo_close(p);
    free(text);
}

static int is_case(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".yaml") == 0 && !strstr(name, ".previous.yaml");
}

static int case_cmp(const void *a, const void *b)
{
    return strcmp(((const struct case_file *)a)->name, ((const struct case_file *)b)->name);
}

/* The case files (NAME.yaml, not NAME.previous.yaml) of `dir`, sorted by name. */
static struct case_file *load_cases(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return NULL;
    }
    struct case_file *cases = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_case(e->d_name))
            continue;
        cases = realloc(cases, (n + 1) * sizeof(*cases));
        (void)snprintf(cases[n].path, sizeof(cases[n].path), "%.4096s/%.255s", dir, e->d_name);
        (void)snprintf(cases[n].name, sizeof(cases[n].name), "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(cases, n, sizeof(*cases), case_cmp);
    *count = n;
    return cases;
}

static int run_table(const char *group, struct case_file *cases, size_t n, CMUnitTestFunction func)
{
    struct CMUnitTest *tests = calloc(n, sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = func;
        tests[i].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
    free(tests);
    return failed;
}

int main(void)
{
    const char *src = getenv("MGO_SOURCE_DIR");
    char dir[4096];
    (void)snprintf(dir, sizeof(dir), "%s/tests/spec/invalid", src ? src : ".");
    size_t n = 0;
    struct case_file *cases = load_cases(dir, &n);
    if (!cases)
        return 1;
    if (n < 40) {
        fprintf(stderr, "only %zu cases in %s; the table needs at least 40\n", n, dir);
        free(cases);
        return 1;
    }

    char vdir[4096];
    (void)snprintf(vdir, sizeof(vdir), "%s/tests/spec/valid-updates", src ? src : ".");
    size_t vn = 0;
    struct case_file *valid = load_cases(vdir, &vn);
    if (!valid || vn < 6) {
        fprintf(stderr, "only %zu cases in %s; the table needs at least 6\n", vn, vdir);
        free(cases);
        free(valid);
        return 1;
    }

    int failed = run_table("invalid_manifests", cases, n, run_case);
    failed += run_table("valid_updates", valid, vn, run_valid_case);
    free(cases);
    free(valid);
    return failed;
}
