/* Quantities, Go durations and the reference merge rules, with hand-computed expectations. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "spec/admission.h"
#include "spec/quantity.h"
#include "spec/resolve.h"

static long double q(const char *text)
{
    json_t *s = json_string(text);
    long double v = -1;
    int rc = quantity_parse(s, &v);
    json_decref(s);
    if (rc != 0) {
        print_error("\"%s\" did not parse\n", text);
        fail();
    }
    return v;
}

static void test_quantities(void **state)
{
    (void)state;
    assert_true(fabsl(q("1Gi") - 1073741824.0L) < 1e-6L);
    assert_true(fabsl(q("1024Mi") - 1073741824.0L) < 1e-6L);
    assert_true(fabsl(q("500m") - 0.5L) < 1e-12L);
    assert_true(fabsl(q("2") - 2.0L) < 1e-12L);
    assert_true(fabsl(q("1.5G") - 1.5e9L) < 1e-3L);
    assert_true(fabsl(q("2e3") - 2000.0L) < 1e-9L);
    assert_true(fabsl(q("100k") - 100000.0L) < 1e-9L);
    assert_true(fabsl(q(".5Ki") - 512.0L) < 1e-9L);
    assert_int_equal(quantity_compare(q("1Gi"), q("1024Mi")), 0);
    assert_int_equal(quantity_compare(q("0.1"), q("100m")), 0);
    assert_true(quantity_compare(q("256Mi"), q("512Mi")) < 0);
    assert_true(quantity_compare(q("1G"), q("1Gi")) < 0);
    assert_true(quantity_compare(q("2"), q("1500m")) > 0);

    static const char *const bad[] = {"",   "Gi",  "1.2.3Gi", "10Gx", "1 Gi",
                                      "1e", "--1", "1ki",     NULL};
    for (const char *const *b = bad; *b; b++) {
        json_t *s = json_string(*b);
        long double v;
        if (quantity_parse(s, &v) != -EINVAL) {
            print_error("\"%s\" should not parse\n", *b);
            fail();
        }
        json_decref(s);
    }
    json_t *i = json_integer(3);
    long double v;
    assert_int_equal(quantity_parse(i, &v), 0);
    assert_true(fabsl(v - 3.0L) < 1e-12L);
    json_decref(i);
}

static void test_durations(void **state)
{
    (void)state;
    double d;
    assert_int_equal(admission_parse_duration("10s", &d), 0);
    assert_true(fabs(d - 10.0) < 1e-9);
    assert_int_equal(admission_parse_duration("1m30s", &d), 0);
    assert_true(fabs(d - 90.0) < 1e-9);
    assert_int_equal(admission_parse_duration("250ms", &d), 0);
    assert_true(fabs(d - 0.25) < 1e-9);
    assert_int_equal(admission_parse_duration("1h", &d), 0);
    assert_true(fabs(d - 3600.0) < 1e-9);
    assert_int_equal(admission_parse_duration("1.5m", &d), 0);
    assert_true(fabs(d - 90.0) < 1e-9);
    assert_int_equal(admission_parse_duration("\xC2\xB5s", &d), -EINVAL);
    assert_int_equal(admission_parse_duration("5\xC2\xB5s", &d), 0);
    assert_true(fabs(d - 5e-6) < 1e-12);
    assert_int_equal(admission_parse_duration("10", &d), -EINVAL);
    assert_int_equal(admission_parse_duration("10x", &d), -EINVAL);
    assert_int_equal(admission_parse_duration("", &d), -EINVAL);
}

static void merge_case(const char *base, const char *over, const char *want)
{
    json_t *b = json_loads(base, 0, NULL);
    json_t *o = json_loads(over, 0, NULL);
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(b);
    assert_non_null(o);
    assert_non_null(w);
    assert_int_equal(resolve_merge(b, o), 0);
    if (!json_equal(b, w)) {
        char *got = json_dumps(b, JSON_COMPACT);
        print_error("merge %s over %s\nwant %s\ngot  %s\n", over, base, want, got);
        free(got);
        fail();
    }
    json_decref(b);
    json_decref(o);
    json_decref(w);
}

/* facts 1.6: the reference merge rules, one at a time. */
static void test_merge_rules(void **state)
{
    (void)state;
    /* scalars replace when set */
    merge_case("{\"replicas\": 2, \"x\": 1}", "{\"replicas\": 3}", "{\"replicas\": 3, \"x\": 1}");
    /* nulls are "not set" */
    merge_case("{\"replicas\": 2}", "{\"replicas\": null}", "{\"replicas\": 2}");
    /* resources replace as one block when requests/limits/claims is set */
    merge_case(
        "{\"resources\": {\"requests\": {\"cpu\": \"1\"}, \"limits\": {\"memory\": \"1Gi\"}}}",
        "{\"resources\": {\"requests\": {\"memory\": \"2Gi\"}}}",
        "{\"resources\": {\"requests\": {\"memory\": \"2Gi\"}}}");
    /* ... and an empty resources block changes nothing */
    merge_case("{\"resources\": {\"requests\": {\"cpu\": \"1\"}}}", "{\"resources\": {}}",
               "{\"resources\": {\"requests\": {\"cpu\": \"1\"}}}");
    /* affinity and placement replace wholesale */
    merge_case("{\"affinity\": {\"nodeAffinity\": {\"a\": 1}}}",
               "{\"affinity\": {\"podAntiAffinity\": {\"b\": 2}}}",
               "{\"affinity\": {\"podAntiAffinity\": {\"b\": 2}}}");
    merge_case("{\"placement\": {\"tolerations\": [{\"key\": \"a\"}]}, \"y\": 1}",
               "{\"placement\": {}}", "{\"placement\": {}, \"y\": 1}");
    /* podAnnotations, podLabels and postgresConfig merge per key */
    merge_case("{\"podLabels\": {\"a\": \"1\", \"b\": \"2\"}}", "{\"podLabels\": {\"b\": \"3\"}}",
               "{\"podLabels\": {\"a\": \"1\", \"b\": \"3\"}}");
    merge_case("{\"postgresConfig\": {\"work_mem\": \"4MB\"}}",
               "{\"postgresConfig\": {\"max_connections\": \"200\"}}",
               "{\"postgresConfig\": {\"work_mem\": \"4MB\", \"max_connections\": \"200\"}}");
    /* pools merge per pool name, then per field; storage per field */
    merge_case("{\"pools\": {\"main\": {\"replicasPerCell\": 4, \"storage\": {\"size\": \"100Gi\","
               " \"class\": \"standard\"}}}}",
               "{\"pools\": {\"main\": {\"storage\": {\"size\": \"200Gi\"}}, \"extra\": {\"type\":"
               " \"readWrite\"}}}",
               "{\"pools\": {\"main\": {\"replicasPerCell\": 4, \"storage\": {\"size\": \"200Gi\","
               " \"class\": \"standard\"}}, \"extra\": {\"type\": \"readWrite\"}}}");
    /* lists replace */
    merge_case("{\"cells\": [\"a\", \"b\"]}", "{\"cells\": [\"c\"]}", "{\"cells\": [\"c\"]}");
    /* an inline localTopoServer replaces the template's wholesale */
    merge_case("{\"localTopoServer\": {\"etcd\": {\"replicas\": 3, \"rootPath\": \"/x\"}}}",
               "{\"localTopoServer\": {\"etcd\": {\"replicas\": 1}}}",
               "{\"localTopoServer\": {\"etcd\": {\"replicas\": 1}}}");
    /* the base is not touched by a merge of nothing */
    merge_case("{\"a\": {\"b\": 1}}", "{}", "{\"a\": {\"b\": 1}}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_merge_rules),
    };
    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
