/* cmocka checks of the scale tests; see checks.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "checks.h"

void check_converge(struct scenario *s, int timeout_ms, const char *what)
{
    int64_t t0 = scenario_now_ms();
    int rc = phost_converge(&s->host, timeout_ms);
    print_message("%s: %s after %lld ms (%d steps so far, %d observed, %d transient)\n", what,
                  rc == 0 ? "converged" : "FAILED", (long long)(scenario_now_ms() - t0),
                  s->host.steps, s->watched_steps, s->transients);
    if (rc != 0)
        print_error("%s: %s (observer: %s)\n", what, s->host.error, s->violation);
    assert_int_equal(rc, 0);
    assert_string_equal(s->violation, "");
}

void check_writes(struct scenario *s, const char *when)
{
    char report[1024];
    int rc = scenario_check_writes(s, report, sizeof(report));
    print_message("%s: %s\n", when, report);
    assert_int_equal(rc, 0);
}

const char *check_name_at(struct scenario *s, int index)
{
    struct phost_object *o = phost_instance_at(&s->host, index);
    assert_non_null(o);
    return o->name;
}

void check_sync_set(struct scenario *s, const int *indexes, int n)
{
    char want[1024] = "ANY 1 (", out[1100];
    size_t used;
    for (int i = 0; i < n; i++) {
        used = strlen(want);
        (void)snprintf(want + used, sizeof(want) - used, "%s\"%s\"", i ? ", " : "",
                       check_name_at(s, indexes[i]));
    }
    used = strlen(want);
    (void)snprintf(want + used, sizeof(want) - used, ")");
    assert_true(phost_probe_primary(&s->host) >= 0);
    assert_int_equal(pg_sql(&s->host.shard, s->host.primary, "SHOW synchronous_standby_names", 5000,
                            out, sizeof(out)),
                     0);
    assert_string_equal(out, want);
}

void check_streaming(struct scenario *s, int standbys)
{
    char expect[16];
    (void)snprintf(expect, sizeof(expect), "%d", standbys);
    assert_true(phost_probe_primary(&s->host) >= 0);
    assert_int_equal(pg_sql_wait(&s->host.shard, s->host.primary,
                                 "SELECT count(*) FROM pg_stat_replication WHERE state = "
                                 "'streaming'",
                                 expect, 10000),
                     0);
}
