/* Assertions on resolved documents, shared by the spec tests. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "expect.h"

/* Follow a dotted path with [i] indexes and [key] map keys, e.g. "spec.cells[0].name". */
const json_t *at(const json_t *v, const char *path)
{
    char buf[512];
    (void)snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf; v && *p;) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end = strchr(p, ']');
            *end = '\0';
            if (json_is_array(v))
                v = json_array_get(v, strtoul(p + 1, NULL, 10));
            else
                v = json_object_get(v, p + 1);
            p = end + 1;
            continue;
        }
        size_t n = strcspn(p, ".[");
        char save = p[n];
        p[n] = '\0';
        v = json_object_get(v, p);
        p[n] = save;
        p += n;
    }
    return v;
}

void expect_str(const json_t *doc, const char *path, const char *want)
{
    const json_t *v = at(doc, path);
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
        char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        print_error("%s: want \"%s\", got %s\n", path, want, got ? got : "(absent)");
        free(got);
        fail();
    }
}

void expect_int(const json_t *doc, const char *path, json_int_t want)
{
    const json_t *v = at(doc, path);
    if (!json_is_integer(v) || json_integer_value(v) != want) {
        char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        print_error("%s: want %lld, got %s\n", path, (long long)want, got ? got : "(absent)");
        free(got);
        fail();
    }
}

void expect_json(const json_t *doc, const char *path, const char *want_json)
{
    const json_t *v = at(doc, path);
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
    assert_non_null(want);
    if (!v || !json_equal((json_t *)v, want)) {
        char *got = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        print_error("%s: want %s, got %s\n", path, want_json, got ? got : "(absent)");
        free(got);
        fail();
    }
    json_decref(want);
}

void expect_absent(const json_t *doc, const char *path)
{
    const json_t *v = at(doc, path);
    if (v) {
        char *got = json_dumps(v, JSON_ENCODE_ANY);
        print_error("%s: want absent, got %s\n", path, got ? got : "?");
        free(got);
        fail();
    }
}
