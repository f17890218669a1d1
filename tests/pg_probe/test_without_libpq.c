/*
 * plugin/pg without a loadable libpq.so.5 (ctest pg_probe_without_libpq runs this with
 * LD_LIBRARY_PATH at a directory whose libpq.so.5 is an empty file): pg_connect answers
 * -ELIBACC, the "unsupported" class, and says why. A binary of its own: pg_probe links libpq
 * through the test harness and would not start there.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pg/pg.h"
#include "pg/pq_api.h"

static void test_without_libpq(void **state)
{
    struct pg_conn *c = NULL;
    char err[600] = "";
    (void)state;

    assert_int_equal(
        pg_connect("host=127.0.0.1 port=5432", pg_now_ms() + 5000, &c, err, sizeof(err)), -ELIBACC);
    assert_null(c);
    if (!strstr(err, "cannot load libpq.so.5: dlopen: ") ||
        !strstr(pq_api_error(), "cannot load libpq.so.5"))
        fail_msg("unexpected message: %s", err);
    /* the same answer again, without another attempt */
    assert_int_equal(
        pg_connect("host=127.0.0.1 port=5432", pg_now_ms() + 5000, &c, err, sizeof(err)), -ELIBACC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_without_libpq)};
    return cmocka_run_group_tests_name("pg without libpq", tests, NULL, NULL);
}
