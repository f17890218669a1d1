/*
 * Object names: expected values from the reference operator's own tests
 * (pkg/util/name/name_test.go at 39a7efcd) and from its rules as the facts state them
 * (operator-api.md section 2.2), written here as literals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "spec/names.h"

static void test_reference_vector(void **state)
{
    (void)state;
    const char *parts[] = {"hello", "world"};
    char out[300];
    names_join(NAMES_DEFAULT, parts, 2, out, sizeof(out));
    assert_string_equal(out, "hello-world-344ce285");
}

static void expect_prefix(const char *a, const char *b, const char *want)
{
    const char *parts[] = {a, b};
    char out[300];
    names_join_with(50, 1, parts, b ? 2 : 1, out, sizeof(out));
    if (strncmp(out, want, strlen(want)) != 0) {
        print_error("join(%s, %s) = %s, want prefix %s\n", a, b ? b : "-", out, want);
        fail();
    }
    assert_true(strlen(out) <= 50);
}

static void test_transform(void **state)
{
    (void)state;
    expect_prefix("UpperCase-Letters", "Are-Lowercased", "uppercase-letters-are-lowercased-");
    expect_prefix("allowed-symbols", "dont---change", "allowed-symbols-dont---change-");
    expect_prefix("disallowed_symbols", "are.replaced", "disallowed-symbols-are-replaced-");
    expect_prefix("really-really-ridiculously-long-inputs-are-truncated", NULL,
                  "really-really-ridiculously-long-inputs----");
    expect_prefix("-disallowed first chars", "-are prefixed",
                  "x-disallowed-first-chars--are-prefixed-");
    expect_prefix("Transformed first char", "is ok", "transformed-first-char-is-ok-");
}

static void test_truncation_is_exact_and_hashed(void **state)
{
    (void)state;
    char a[21], b1[102], b2[102], out1[300], out2[300];
    memset(a, 'a', 20);
    a[20] = '\0';
    memset(b1, 'b', 100);
    memcpy(b2, b1, 100);
    b1[100] = '1';
    b2[100] = '2';
    b1[101] = b2[101] = '\0';
    const char *p1[] = {a, b1}, *p2[] = {a, b2};
    names_join_with(25, 0, p1, 2, out1, sizeof(out1));
    names_join_with(25, 0, p2, 2, out2, sizeof(out2));
    assert_int_equal(strlen(out1), 25);
    assert_string_not_equal(out1, out2);
    /* "<prefix>---<8 hex>" */
    assert_memory_equal(out1 + 14, "---", 3);
}

static void test_distinct_inputs_distinct_names(void **state)
{
    (void)state;
    const char *a[] = {"production-db", "app", "sales"}, *b[] = {"production", "db-app", "sales"};
    const char *c[] = {"disallowed_symbol"}, *d[] = {"disallowed/symbol"};
    char x[300], y[300];
    names_join(NAMES_DEFAULT, a, 3, x, sizeof(x));
    names_join(NAMES_DEFAULT, b, 3, y, sizeof(y));
    assert_string_not_equal(x, y);
    names_join(NAMES_DEFAULT, c, 1, x, sizeof(x));
    names_join(NAMES_DEFAULT, d, 1, y, sizeof(y));
    assert_string_not_equal(x, y);
}

/* FNV-1a 32 of "hello\0world\0", computed by hand from the algorithm's definition. */
static void test_hash(void **state)
{
    (void)state;
    const char *parts[] = {"hello", "world"};
    assert_int_equal(names_hash(parts, 2), 0x344ce285u);
    const char *none[] = {""};
    /* one NUL byte: (2166136261 ^ 0) * 16777619 mod 2^32 = 0x050c5d1f */
    assert_int_equal(names_hash(none, 1), 0x050c5d1fu);
}

/* A multi-byte character is one character: it becomes a single '-'. */
static void test_multibyte_character(void **state)
{
    (void)state;
    const char *parts[] = {"caf\xC3\xA9"};
    char out[300];
    names_join(NAMES_DEFAULT, parts, 1, out, sizeof(out));
    assert_memory_equal(out, "caf--", 5); /* "caf" + "-" (é) + "-" before the hash */
    assert_int_equal(strlen(out), 4 + 1 + 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_transform),
        cmocka_unit_test(test_truncation_is_exact_and_hashed),
        cmocka_unit_test(test_distinct_inputs_distinct_names),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_multibyte_character),
    };
    return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
