/* spec_load: YAML 1.2 core-schema scalars, streams, aliases, limits and errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec/load.h"

static json_t *load_ok(const char *text)
{
    json_t *docs = NULL;
    struct spec_load_error err;
    int rc = spec_load(text, strlen(text), &docs, &err);
    if (rc != 0)
        print_error("unexpected error: line %zu col %zu: %s\n", err.line, err.column, err.message);
    assert_int_equal(rc, 0);
    assert_non_null(docs);
    return docs;
}

static void assert_json(const json_t *v, const char *want)
{
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    assert_non_null(w);
    if (!json_equal((json_t *)v, w)) {
        char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        print_error("want %s\ngot  %s\n", want, got ? got : "(null)");
        free(got);
        fail();
    }
    json_decref(w);
}

static void test_core_schema_scalars(void **state)
{
    (void)state;
    json_t *d = load_ok("a: 1\nb: -2\nc: 0x1F\nd: 0o17\ne: 1.5\nf: 1e3\ng: true\nh: False\n"
                        "i: null\nj: ~\nk:\nl: yes\nm: \"1\"\nn: '2'\no: 1.2.3\np: 08\n"
                        "q: +3\nr: .5\n");
    assert_json(json_array_get(d, 0),
                "{\"a\": 1, \"b\": -2, \"c\": 31, \"d\": 15, \"e\": 1.5, \"f\": 1000.0,"
                " \"g\": true, \"h\": false, \"i\": null, \"j\": null, \"k\": null, \"l\": \"yes\","
                " \"m\": \"1\", \"n\": \"2\", \"o\": \"1.2.3\", \"p\": 8, \"q\": 3, \"r\": 0.5}");
    json_decref(d);
}

static void test_explicit_tags(void **state)
{
    (void)state;
    json_t *d = load_ok("a: !!str 12\nb: !!int \"7\"\nc: !!bool true\n");
    assert_json(json_array_get(d, 0), "{\"a\": \"12\", \"b\": 7, \"c\": true}");
    json_decref(d);
}

static void test_stream_lists_and_empty_documents(void **state)
{
    (void)state;
    json_t *d =
        load_ok("---\na: 1\n---\n---\nkind: List\nitems:\n- x: 1\n- x: 2\n...\n---\nb: 2\n");
    assert_json(d, "[{\"a\": 1}, {\"x\": 1}, {\"x\": 2}, {\"b\": 2}]");
    json_decref(d);
}

static void test_json_input(void **state)
{
    (void)state;
    json_t *d = load_ok("  {\"a\": [1, 2], \"b\": {\"c\": null}}");
    assert_json(d, "[{\"a\": [1, 2], \"b\": {\"c\": null}}]");
    json_decref(d);
    d = load_ok("[{\"a\": 1}, {\"b\": 2}]");
    assert_json(d, "[{\"a\": 1}, {\"b\": 2}]");
    json_decref(d);
    /* Flow-style YAML that is not JSON still loads. */
    d = load_ok("{a: 1, b: [x, y]}");
    assert_json(d, "[{\"a\": 1, \"b\": [\"x\", \"y\"]}]");
    json_decref(d);
}

static void test_aliases_are_copies(void **state)
{
    (void)state;
    json_t *d = load_ok("base: &b {x: 1}\nuse1: *b\nuse2: *b\n");
    json_t *doc = json_array_get(d, 0);
    assert_json(doc, "{\"base\": {\"x\": 1}, \"use1\": {\"x\": 1}, \"use2\": {\"x\": 1}}");
    assert_ptr_not_equal(json_object_get(doc, "use1"), json_object_get(doc, "use2"));
    json_decref(d);
}

static void expect_error(const char *text, size_t line, const char *contains)
{
    json_t *docs = NULL;
    struct spec_load_error err;
    int rc = spec_load(text, strlen(text), &docs, &err);
    assert_int_equal(rc, -EINVAL);
    if (line)
        assert_int_equal(err.line, line);
    if (!strstr(err.message, contains)) {
        print_error("message \"%s\" lacks \"%s\"\n", err.message, contains);
        fail();
    }
    json_decref(docs);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("a: 1\na: 2\n", 2, "duplicate key \"a\"");
    expect_error("a: 1\n b: 2\n", 2, "mapping values are not allowed");
    expect_error("a: *nope\n", 1, "unknown alias \"nope\"");
    expect_error("a: !custom x\n", 1, "unsupported tag");
    expect_error("? [a, b]\n: 1\n", 1, "mapping keys must be scalars");
    expect_error("{\"a\": 1, \"a\": 2}", 1, "duplicate");
}

static void test_documents_before_an_error_are_kept(void **state)
{
    (void)state;
    const char *text = "a: 1\n---\nb: [\n";
    json_t *docs = NULL;
    struct spec_load_error err;
    assert_int_equal(spec_load(text, strlen(text), &docs, &err), -EINVAL);
    assert_json(docs, "[{\"a\": 1}]");
    assert_int_equal(err.document, 1);
    json_decref(docs);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char text[512];
    size_t o = 0;
    for (int i = 0; i < SPEC_LOAD_MAX_DEPTH + 1; i++)
        text[o++] = '[';
    for (int i = 0; i < SPEC_LOAD_MAX_DEPTH + 1; i++)
        text[o++] = ']';
    text[o] = '\0';
    /* Starts with '[': JSON first (jansson accepts the depth), so check the YAML path too. */
    char yaml[600];
    (void)snprintf(yaml, sizeof(yaml), "a: %s\n", text);
    expect_error(yaml, 1, "nesting deeper than 64 levels");
}

static void test_alias_bomb_is_refused(void **state)
{
    (void)state;
    /* Each level doubles: 2^25 nodes expanded, far above the 10^6 budget. */
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof(text), "a0: &a0 [x, x]\n");
    for (int i = 1; i <= 25; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "a%d: &a%d [*a%d, *a%d]\n", i, i, i - 1,
                              i - 1);
    expect_error(text, 0, "document too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_schema_scalars),
        cmocka_unit_test(test_explicit_tags),
        cmocka_unit_test(test_stream_lists_and_empty_documents),
        cmocka_unit_test(test_json_input),
        cmocka_unit_test(test_aliases_are_copies),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_documents_before_an_error_are_kept),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_alias_bomb_is_refused),
    };
    return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
