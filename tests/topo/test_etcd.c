/*
 * Tests of plugin/topo/etcd.c against a real etcd 3.4 (tests/topo/etcd_harness.c starts one
 * for the whole group on free loopback ports), plus the response parser on literal bodies.
 *
 * Expected keys and values are literals; revisions are compared with the revisions etcd
 * reported for the writes the test made, never recomputed by the code under test.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/core.h"
#include "etcd_harness.h"
#include "topo/curl_api.h"
#include "topo/etcd.h"

#define T_MS 5000 /* timeout of calls that should succeed */

static struct etcd_harness harness;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static struct etcd_client *client_for(const char *const *endpoints, size_t n)
{
    struct etcd_client *c = NULL;
    assert_int_equal(etcd_client_new(endpoints, n, NULL, &c), 0);
    assert_non_null(c);
    return c;
}

static struct etcd_client *client(void)
{
    const char *endpoints[] = {harness.endpoint};
    return client_for(endpoints, 1);
}

static void put_text(struct etcd_client *c, const char *key, const char *value,
                     int64_t *ret_revision)
{
    int rc = etcd_put(c, key, strlen(key), value, strlen(value), 0, T_MS, ret_revision);
    if (rc != 0)
        fail_msg("put %s: %d %s", key, rc, etcd_last_error(c));
}

/* The key-value at index i is key=value (text). */
static void assert_kv(const struct etcd_kvs *kvs, size_t i, const char *key, const char *value)
{
    assert_true(i < kvs->n);
    assert_int_equal(kvs->items[i].key_len, strlen(key));
    assert_memory_equal(kvs->items[i].key, key, strlen(key));
    assert_int_equal(kvs->items[i].key[kvs->items[i].key_len], '\0');
    assert_int_equal(kvs->items[i].value_len, strlen(value));
    assert_memory_equal(kvs->items[i].value, value, strlen(value));
}

static int group_setup(void **state)
{
    (void)state;
    return etcd_harness_start(&harness);
}

static int group_teardown(void **state)
{
    (void)state;
    etcd_harness_stop(&harness);
    return 0;
}

/* ---- arguments -------------------------------------------------------------------------- */

static void test_client_new_rejects_bad_endpoints(void **state)
{
    const char *ftp[] = {"ftp://127.0.0.1:2379"};
    const char *bare[] = {"127.0.0.1:2379"};
    const char *empty_host[] = {"http://"};
    const char *space[] = {"http://127.0.0.1:2379 x"};
    const char *ok[] = {"http://127.0.0.1:2379/"};
    struct etcd_client *c = NULL;
    (void)state;

    assert_int_equal(etcd_client_new(ok, 0, NULL, &c), -EINVAL);
    assert_int_equal(etcd_client_new(ftp, 1, NULL, &c), -EINVAL);
    assert_int_equal(etcd_client_new(bare, 1, NULL, &c), -EINVAL);
    assert_int_equal(etcd_client_new(empty_host, 1, NULL, &c), -EINVAL);
    assert_int_equal(etcd_client_new(space, 1, NULL, &c), -EINVAL);
    assert_null(c);
    assert_int_equal(etcd_client_new(ok, 1, NULL, &c), 0);
    assert_string_equal(etcd_last_error(c), "");
    etcd_client_free(c);
    etcd_client_free(NULL);
}

/* ---- the parser on literal bodies -------------------------------------------------------- */

static void test_parse_range_response(void **state)
{
    static const char body[] =
        "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"7\"},\"kvs\":["
        "{\"key\":\"L2E=\",\"create_revision\":\"2\",\"mod_revision\":\"5\",\"version\":\"3\","
        "\"value\":\"AAEC//4K\",\"lease\":\"9172884757016696857\"},"
        "{\"key\":\"L2I=\",\"create_revision\":6,\"mod_revision\":6}],\"count\":\"2\"}";
    struct etcd_kvs kvs = {0};
    (void)state;

    assert_int_equal(etcd_parse_range_response(body, strlen(body), &kvs), 0);
    assert_int_equal(kvs.revision, 7);
    assert_int_equal(kvs.n, 2);
    assert_int_equal(kvs.items[0].key_len, 2);
    assert_string_equal(kvs.items[0].key, "/a");
    assert_int_equal(kvs.items[0].value_len, 6);
    assert_memory_equal(kvs.items[0].value, "\x00\x01\x02\xff\xfe\x0a", 6);
    assert_int_equal(kvs.items[0].create_revision, 2);
    assert_int_equal(kvs.items[0].mod_revision, 5);
    assert_int_equal(kvs.items[0].version, 3);
    assert_int_equal(kvs.items[0].lease, INT64_C(9172884757016696857));
    /* numbers accepted as well as strings; absent value and version are empty and 0 */
    assert_kv(&kvs, 1, "/b", "");
    assert_non_null(kvs.items[1].value);
    assert_int_equal(kvs.items[1].create_revision, 6);
    assert_int_equal(kvs.items[1].version, 0);
    assert_int_equal(kvs.items[1].lease, 0);
    etcd_kvs_fini(&kvs);
    assert_null(kvs.items);
    assert_int_equal(kvs.n, 0);
}

static void test_parse_missing_key_and_wrappers(void **state)
{
    /* a missing key: no kvs, no count */
    static const char missing[] = "{\"header\":{\"revision\":\"3\"}}";
    /* a failed txn's response_range, and a watch answer */
    static const char txn[] =
        "{\"header\":{\"revision\":\"4\"},\"responses\":[{\"response_range\":{\"header\":"
        "{\"revision\":\"4\"},\"kvs\":[{\"key\":\"dy9p\",\"mod_revision\":\"3\","
        "\"value\":\"djE=\"}],\"count\":\"1\"}}]}";
    static const char watch[] =
        "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"type\":\"DELETE\","
        "\"kv\":{\"key\":\"dy9h\",\"mod_revision\":\"4\"}}]}}";
    struct etcd_kvs kvs = {0};
    (void)state;

    assert_int_equal(etcd_parse_range_response(missing, strlen(missing), &kvs), 0);
    assert_int_equal(kvs.revision, 3);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_fini(&kvs);
    assert_int_equal(etcd_parse_range_response(txn, strlen(txn), &kvs), 0);
    assert_int_equal(kvs.revision, 4);
    assert_int_equal(kvs.n, 1);
    assert_kv(&kvs, 0, "w/i", "v1");
    assert_int_equal(kvs.items[0].mod_revision, 3);
    etcd_kvs_fini(&kvs);
    assert_int_equal(etcd_parse_range_response(watch, strlen(watch), &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_kv(&kvs, 0, "w/a", "");
    assert_int_equal(kvs.items[0].mod_revision, 4);
    etcd_kvs_fini(&kvs);
}

static void test_parse_rejects_garbage(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[]",
        "\"str\"",
        "{\"kvs\":\"x\"}",
        "{\"kvs\":[1]}",
        "{\"kvs\":[{\"key\":\"!!!!\"}]}",       /* not base64 */
        "{\"kvs\":[{\"key\":\"YQ=\"}]}",        /* length not a multiple of 4 */
        "{\"kvs\":[{\"key\":\"YR==\"}]}",       /* nonzero bits in the padding */
        "{\"kvs\":[{\"key\":\"Y===\"}]}",       /* three padding characters */
        "{\"kvs\":[{\"key\":\"YQ==YQ==\"}]}",   /* padding in the middle */
        "{\"kvs\":[{\"key\":\"YQ\\u0000=\"}]}", /* NUL inside */
        "{\"kvs\":[{\"key\":\"YWJj\\n\"}]}",    /* whitespace */
        "{\"kvs\":[{\"key\":5}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"x\"}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"9223372036854775808\"}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"\"}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\" 1\"}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":1.5}]}",
        "{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":null}]}",
        "{\"header\":{\"revision\":\"x\"}}",
        "{\"header\":[]}",
        "{\"result\":5}",
        "{\"responses\":[{\"response_range\":[]}]}",
        "{\"events\":[{\"type\":\"DELETE\"}]}",
        "{\"kvs\":[{\"key\":\"YQ==\"}]} trailing",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct etcd_kvs kvs = {.n = 77};
        int rc = etcd_parse_range_response(bad[i], strlen(bad[i]), &kvs);
        if (rc != -EPROTO)
            fail_msg("case %zu (%s): %d, expected -EPROTO", i, bad[i], rc);
        assert_int_equal(kvs.n, 77); /* untouched on failure */
    }
    /* bytes that are not even text */
    static const char binary[] = {'{', '"', 'k', (char)0xff, '"', ':', 0, '}'};
    struct etcd_kvs kvs = {0};
    assert_int_equal(etcd_parse_range_response(binary, sizeof(binary), &kvs), -EPROTO);
}

/* ---- key-values ------------------------------------------------------------------------- */

static void test_binary_round_trip(void **state)
{
    static const char key[] = "/t/bin/\x00\xff"; /* a key with a 0x00 and a 0xff byte */
    static const unsigned char value[] = {0x00, 0x01, 0x02, 0xff, 0xfe, 0x0a, 0x00};
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    int64_t revision = 0;
    (void)state;

    assert_int_equal(etcd_put(c, key, sizeof(key) - 1, value, sizeof(value), 0, T_MS, &revision),
                     0);
    assert_true(revision > 0);
    assert_int_equal(etcd_get(c, key, sizeof(key) - 1, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_int_equal(kvs.items[0].key_len, 9);
    assert_memory_equal(kvs.items[0].key, "/t/bin/\x00\xff", 9);
    assert_int_equal(kvs.items[0].value_len, 7);
    assert_memory_equal(kvs.items[0].value, "\x00\x01\x02\xff\xfe\x0a\x00", 7);
    assert_int_equal(kvs.items[0].mod_revision, revision);
    assert_int_equal(kvs.items[0].create_revision, revision);
    assert_int_equal(kvs.items[0].version, 1);
    assert_int_equal(kvs.items[0].lease, 0);
    assert_true(kvs.revision >= revision);
    etcd_kvs_fini(&kvs);

    /* the empty value: etcd omits it, the client gives an empty, NUL-terminated buffer */
    assert_int_equal(etcd_put(c, "/t/empty", 8, "", 0, 0, T_MS, NULL), 0);
    assert_int_equal(etcd_get(c, "/t/empty", 8, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_kv(&kvs, 0, "/t/empty", "");
    assert_int_equal(kvs.items[0].value[0], '\0');
    etcd_kvs_fini(&kvs);

    /* a second put bumps version and mod_revision but not create_revision */
    int64_t second = 0;
    assert_int_equal(etcd_put(c, key, sizeof(key) - 1, "x", 1, 0, T_MS, &second), 0);
    assert_true(second > revision);
    assert_int_equal(etcd_get(c, key, sizeof(key) - 1, T_MS, &kvs), 0);
    assert_int_equal(kvs.items[0].version, 2);
    assert_int_equal(kvs.items[0].create_revision, revision);
    assert_int_equal(kvs.items[0].mod_revision, second);
    etcd_kvs_fini(&kvs);
    etcd_client_free(c);
}

static void test_get_missing_key(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {.n = 5};
    (void)state;

    assert_int_equal(etcd_get(c, "/t/missing", 10, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 0);
    assert_null(kvs.items);
    assert_true(kvs.revision > 0);
    etcd_kvs_fini(&kvs);
    etcd_client_free(c);
}

static void test_prefix_listing(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    (void)state;

    put_text(c, "/p/b", "2", NULL);
    put_text(c, "/p/a", "1", NULL);
    put_text(c, "/p/c/d", "3", NULL);
    put_text(c, "/p", "outside", NULL);
    put_text(c, "/p0", "outside", NULL);
    put_text(c, "/q", "outside", NULL);
    assert_int_equal(etcd_get_prefix(c, "/p/", 3, 0, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 3);
    assert_kv(&kvs, 0, "/p/a", "1");
    assert_kv(&kvs, 1, "/p/b", "2");
    assert_kv(&kvs, 2, "/p/c/d", "3");
    etcd_kvs_fini(&kvs);

    /* keys only: same keys, no values */
    assert_int_equal(etcd_get_prefix(c, "/p/", 3, 1, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 3);
    assert_kv(&kvs, 0, "/p/a", "");
    assert_kv(&kvs, 2, "/p/c/d", "");
    etcd_kvs_fini(&kvs);

    /* a prefix ending in 0xff: the range end is "\x01\x02" + 1 = "\x01\x03" */
    static const char *const edge[] = {"\x01\x02\xff",     "\x01\x02\xff\x00", "\x01\x02\xff\xff",
                                       "\x01\x02\xfe\xff", "\x01\x03",         "\x01\x02"};
    static const size_t edge_len[] = {3, 4, 4, 4, 2, 2};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(etcd_put(c, edge[i], edge_len[i], "v", 1, 0, T_MS, NULL), 0);
    assert_int_equal(etcd_get_prefix(c, "\x01\x02\xff", 3, 1, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 3);
    assert_int_equal(kvs.items[0].key_len, 3);
    assert_memory_equal(kvs.items[0].key, "\x01\x02\xff", 3);
    assert_int_equal(kvs.items[1].key_len, 4);
    assert_memory_equal(kvs.items[1].key, "\x01\x02\xff\x00", 4);
    assert_int_equal(kvs.items[2].key_len, 4);
    assert_memory_equal(kvs.items[2].key, "\x01\x02\xff\xff", 4);
    etcd_kvs_fini(&kvs);

    /* a prefix of 0xff bytes only has no upper bound: every key from it on */
    assert_int_equal(etcd_put(c, "\xff\xff", 2, "a", 1, 0, T_MS, NULL), 0);
    assert_int_equal(etcd_put(c, "\xff\xff\x01", 3, "b", 1, 0, T_MS, NULL), 0);
    assert_int_equal(etcd_put(c, "\xff\xfe", 2, "c", 1, 0, T_MS, NULL), 0);
    assert_int_equal(etcd_get_prefix(c, "\xff\xff", 2, 0, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 2);
    assert_kv(&kvs, 0, "\xff\xff", "a");
    assert_kv(&kvs, 1, "\xff\xff\x01", "b");
    etcd_kvs_fini(&kvs);

    /* nothing under the prefix */
    assert_int_equal(etcd_get_prefix(c, "/nothing/", 9, 0, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_fini(&kvs);
    etcd_client_free(c);
}

static void test_delete_counts(void **state)
{
    struct etcd_client *c = client();
    int64_t deleted = -1;
    struct etcd_kvs kvs = {0};
    (void)state;

    put_text(c, "/d/a", "1", NULL);
    put_text(c, "/d/ab", "2", NULL);
    assert_int_equal(etcd_delete(c, "/d/a", 4, T_MS, &deleted), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(etcd_delete(c, "/d/a", 4, T_MS, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(etcd_delete(c, "/d/never", 8, T_MS, NULL), 0);
    /* only that key: its neighbour with the same start is still there */
    assert_int_equal(etcd_get_prefix(c, "/d/", 3, 0, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_kv(&kvs, 0, "/d/ab", "2");
    etcd_kvs_fini(&kvs);
    etcd_client_free(c);
}

static void test_put_if_create_if_absent(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs current = {0};
    int swapped = -1;
    int64_t revision = 0;
    (void)state;

    assert_int_equal(
        etcd_put_if(c, "/cas/new", 8, "first", 5, 0, 0, T_MS, &swapped, &current, &revision), 0);
    assert_int_equal(swapped, 1);
    assert_true(revision > 0);
    assert_int_equal(current.n, 0);
    etcd_kvs_fini(&current);

    int64_t untouched = -7;
    assert_int_equal(
        etcd_put_if(c, "/cas/new", 8, "second", 6, 0, 0, T_MS, &swapped, &current, &untouched), 0);
    assert_int_equal(swapped, 0);
    assert_int_equal(untouched, -7);
    assert_int_equal(current.n, 1);
    assert_kv(&current, 0, "/cas/new", "first");
    assert_int_equal(current.items[0].mod_revision, revision);
    assert_int_equal(current.items[0].create_revision, revision);
    assert_true(current.revision >= revision);
    etcd_kvs_fini(&current);

    /* current may be NULL */
    assert_int_equal(etcd_put_if(c, "/cas/new", 8, "third", 5, 0, 0, T_MS, &swapped, NULL, NULL),
                     0);
    assert_int_equal(swapped, 0);
    etcd_client_free(c);
}

struct racer {
    const char *value;
    int64_t expected;
    pthread_barrier_t *barrier;
    int rc;
    int swapped;
    struct etcd_kvs current;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    const char *endpoints[] = {harness.endpoint};
    struct etcd_client *c = NULL;

    r->rc = etcd_client_new(endpoints, 1, NULL, &c);
    pthread_barrier_wait(r->barrier);
    if (r->rc == 0)
        r->rc = etcd_put_if(c, "/cas/race", 9, r->value, strlen(r->value), r->expected, 0, T_MS,
                            &r->swapped, &r->current, NULL);
    etcd_client_free(c);
    return NULL;
}

static void test_compare_and_swap(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs current = {0};
    int64_t first = 0, second = 0;
    int swapped = -1;
    (void)state;

    put_text(c, "/cas/k", "v1", &first);
    /* the right mod_revision wins */
    assert_int_equal(
        etcd_put_if(c, "/cas/k", 6, "v2", 2, first, 0, T_MS, &swapped, &current, &second), 0);
    assert_int_equal(swapped, 1);
    assert_true(second > first);
    etcd_kvs_fini(&current);
    /* the stale one loses and sees the winner */
    assert_int_equal(etcd_put_if(c, "/cas/k", 6, "v3", 2, first, 0, T_MS, &swapped, &current, NULL),
                     0);
    assert_int_equal(swapped, 0);
    assert_int_equal(current.n, 1);
    assert_kv(&current, 0, "/cas/k", "v2");
    assert_int_equal(current.items[0].mod_revision, second);
    etcd_kvs_fini(&current);
    /* a revision on an absent key fails and reports it absent */
    assert_int_equal(
        etcd_put_if(c, "/cas/absent", 11, "x", 1, first, 0, T_MS, &swapped, &current, NULL), 0);
    assert_int_equal(swapped, 0);
    assert_int_equal(current.n, 0);
    etcd_kvs_fini(&current);

    /* two clients race from the same revision: exactly one wins */
    int64_t base = 0;
    put_text(c, "/cas/race", "base", &base);
    pthread_barrier_t barrier;
    pthread_t threads[2];
    struct racer racers[2] = {{.value = "left", .expected = base, .barrier = &barrier},
                              {.value = "right", .expected = base, .barrier = &barrier}};
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(racers[0].rc, 0);
    assert_int_equal(racers[1].rc, 0);
    assert_int_equal(racers[0].swapped + racers[1].swapped, 1);
    struct racer *loser = racers[0].swapped ? &racers[1] : &racers[0];
    const char *winner = racers[0].swapped ? "left" : "right";
    assert_int_equal(loser->current.n, 1);
    assert_kv(&loser->current, 0, "/cas/race", winner);
    etcd_kvs_fini(&racers[0].current);
    etcd_kvs_fini(&racers[1].current);
    assert_int_equal(etcd_get(c, "/cas/race", 9, T_MS, &current), 0);
    assert_kv(&current, 0, "/cas/race", winner);
    etcd_kvs_fini(&current);
    etcd_client_free(c);
}

static void test_delete_if(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    int64_t first = 0, second = 0;
    int deleted = -1;
    (void)state;

    put_text(c, "/di/k", "v1", &first);
    put_text(c, "/di/k", "v2", &second);
    assert_int_equal(etcd_delete_if(c, "/di/k", 5, first, T_MS, &deleted), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(etcd_get(c, "/di/k", 5, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    etcd_kvs_fini(&kvs);
    assert_int_equal(etcd_delete_if(c, "/di/k", 5, second, T_MS, &deleted), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(etcd_get(c, "/di/k", 5, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_fini(&kvs);
    assert_int_equal(etcd_delete_if(c, "/di/k", 5, second, T_MS, &deleted), 0);
    assert_int_equal(deleted, 0);
    etcd_client_free(c);
}

/* ---- leases ------------------------------------------------------------------------------ */

static void test_lease_lifecycle(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    int64_t id = 0, ttl = -1;
    (void)state;

    assert_int_equal(etcd_lease_grant(c, 30, T_MS, &id), 0);
    assert_true(id != 0);
    assert_int_equal(etcd_put(c, "/l/k", 4, "v", 1, id, T_MS, NULL), 0);
    assert_int_equal(etcd_get(c, "/l/k", 4, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_int_equal(kvs.items[0].lease, id);
    etcd_kvs_fini(&kvs);
    assert_int_equal(etcd_lease_keepalive(c, id, T_MS, &ttl), 0);
    assert_true(ttl > 0 && ttl <= 30);

    assert_int_equal(etcd_lease_revoke(c, id, T_MS), 0);
    assert_int_equal(etcd_get(c, "/l/k", 4, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 0);
    etcd_kvs_fini(&kvs);
    /* a revoked (as an expired) lease: keepalive reports ttl 0; revoking again is no error */
    ttl = -1;
    assert_int_equal(etcd_lease_keepalive(c, id, T_MS, &ttl), 0);
    assert_int_equal(ttl, 0);
    assert_int_equal(etcd_lease_revoke(c, id, T_MS), 0);
    assert_int_equal(etcd_lease_revoke(c, 4242, T_MS), 0);
    etcd_client_free(c);
}

static void test_error_answer_is_final(void **state)
{
    struct etcd_client *c = client();
    (void)state;

    /* etcd refuses a put with an unknown lease: HTTP error, -EPROTO with etcd's own words */
    assert_int_equal(etcd_put(c, "/e/k", 4, "v", 1, 4243, T_MS, NULL), -EPROTO);
    const char *msg = etcd_last_error(c);
    if (!strstr(msg, "requested lease not found") || !strstr(msg, harness.endpoint) ||
        !strstr(msg, "put /e/k"))
        fail_msg("unexpected message: %s", msg);
    /* the next call succeeds and clears it */
    put_text(c, "/e/k", "v", NULL);
    assert_string_equal(etcd_last_error(c), "");
    etcd_client_free(c);
}

/* ---- watch -------------------------------------------------------------------------------- */

struct seen {
    int stop_after;
    int n;
    struct {
        enum etcd_event_type type;
        char key[32];
        char value[32];
        char prev_value[32];
        int has_prev;
        int64_t mod_revision;
    } ev[16];
};

static int collect(void *user, const struct etcd_event *ev)
{
    struct seen *s = user;
    if (s->n < 16) {
        s->ev[s->n].type = ev->type;
        snprintf(s->ev[s->n].key, sizeof(s->ev[0].key), "%.*s", (int)ev->kv->key_len, ev->kv->key);
        snprintf(s->ev[s->n].value, sizeof(s->ev[0].value), "%.*s", (int)ev->kv->value_len,
                 (const char *)ev->kv->value);
        s->ev[s->n].has_prev = ev->prev_kv != NULL;
        if (ev->prev_kv)
            snprintf(s->ev[s->n].prev_value, sizeof(s->ev[0].prev_value), "%.*s",
                     (int)ev->prev_kv->value_len, (const char *)ev->prev_kv->value);
        s->ev[s->n].mod_revision = ev->kv->mod_revision;
    }
    s->n++;
    return s->n >= s->stop_after;
}

struct writer {
    int64_t put_revision;
    int64_t delete_revision;
    int rc;
};

static void *write_later(void *arg)
{
    struct writer *w = arg;
    const char *endpoints[] = {harness.endpoint};
    struct etcd_client *c = NULL;

    sleep_ms(300);
    w->rc = etcd_client_new(endpoints, 1, NULL, &c);
    if (w->rc == 0)
        w->rc = etcd_put(c, "/w/a", 4, "v1", 2, 0, T_MS, &w->put_revision);
    if (w->rc == 0) {
        w->rc = etcd_delete(c, "/w/a", 4, T_MS, NULL);
        /* the store revision right after the delete is the delete's revision */
        struct etcd_kvs kvs = {0};
        if (w->rc == 0)
            w->rc = etcd_get(c, "/w/a", 4, T_MS, &kvs);
        w->delete_revision = kvs.revision;
        etcd_kvs_fini(&kvs);
    }
    etcd_client_free(c);
    return NULL;
}

static void test_watch_delivers_in_order_and_resumes(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    struct seen seen = {.stop_after = 2};
    struct writer writer = {0};
    pthread_t thread;
    int64_t next = -1;
    (void)state;

    assert_int_equal(etcd_get(c, "/w/", 3, T_MS, &kvs), 0);
    int64_t start = kvs.revision + 1;
    etcd_kvs_fini(&kvs);
    assert_int_equal(pthread_create(&thread, NULL, write_later, &writer), 0);
    int64_t t0 = now_ms();
    int rc = etcd_watch_prefix(c, "/w/", 3, start, 10000, collect, &seen, &next);
    int64_t elapsed = now_ms() - t0;
    pthread_join(thread, NULL);
    if (rc != 0)
        fail_msg("watch: %d %s", rc, etcd_last_error(c));
    assert_int_equal(writer.rc, 0);
    assert_true(elapsed < 9000); /* stopped by the callback, not by the timeout */
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ev[0].type, ETCD_EVENT_PUT);
    assert_string_equal(seen.ev[0].key, "/w/a");
    assert_string_equal(seen.ev[0].value, "v1");
    assert_int_equal(seen.ev[0].mod_revision, writer.put_revision);
    assert_int_equal(seen.ev[0].has_prev, 0);
    assert_int_equal(seen.ev[1].type, ETCD_EVENT_DELETE);
    assert_string_equal(seen.ev[1].key, "/w/a");
    assert_string_equal(seen.ev[1].value, "");
    assert_int_equal(seen.ev[1].has_prev, 1);
    assert_string_equal(seen.ev[1].prev_value, "v1");
    assert_int_equal(seen.ev[1].mod_revision, writer.delete_revision);
    assert_int_equal(next, writer.delete_revision + 1);

    /* changes made while nobody watched come first when resuming from `next` */
    int64_t b_rev = 0, c_rev = 0, d_rev = 0;
    put_text(c, "/w/b", "vb", &b_rev);
    put_text(c, "/w/c", "vc", &c_rev);
    put_text(c, "/w/d", "vd", &d_rev);
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 1; /* stop in the middle of etcd's batch of three */
    assert_int_equal(etcd_watch_prefix(c, "/w/", 3, next, T_MS, collect, &seen, &next), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ev[0].key, "/w/b");
    assert_int_equal(seen.ev[0].mod_revision, b_rev);
    assert_int_equal(next, b_rev + 1);
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    assert_int_equal(etcd_watch_prefix(c, "/w/", 3, next, T_MS, collect, &seen, &next), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ev[0].key, "/w/c");
    assert_string_equal(seen.ev[0].value, "vc");
    assert_string_equal(seen.ev[1].key, "/w/d");
    assert_int_equal(next, d_rev + 1);

    /* nothing more: -EAGAIN at the timeout, with the same resume point */
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 1;
    int64_t resume = -1;
    t0 = now_ms();
    assert_int_equal(etcd_watch_prefix(c, "/w/", 3, next, 400, collect, &seen, &resume), -EAGAIN);
    elapsed = now_ms() - t0;
    assert_int_equal(seen.n, 0);
    assert_int_equal(resume, d_rev + 1);
    assert_true(elapsed >= 350);
    /* Bounded, not timed: only a hang (far past the timeout) fails; load must not. */
    assert_true(elapsed < 400 + 10000);
    assert_non_null(strstr(etcd_last_error(c), "watch /w/"));
    etcd_client_free(c);
}

static void test_watch_from_now_times_out_with_next_revision(void **state)
{
    struct etcd_client *c = client();
    struct seen seen = {.stop_after = 1};
    int64_t next = -1, revision = 0;
    (void)state;

    put_text(c, "/wn/other", "x", &revision); /* outside the watched prefix */
    assert_int_equal(etcd_watch_prefix(c, "/wn/a/", 6, 0, 300, collect, &seen, &next), -EAGAIN);
    assert_int_equal(seen.n, 0);
    /* from now: the first revision that could carry an event */
    assert_int_equal(next, revision + 1);
    etcd_client_free(c);
}

static void test_watch_compacted_revision(void **state)
{
    struct etcd_client *c = client();
    struct seen seen = {.stop_after = 10};
    int64_t first = 0, last = 0, next = -1;
    (void)state;

    put_text(c, "/wc/k", "1", &first);
    put_text(c, "/wc/k", "2", NULL);
    put_text(c, "/wc/k", "3", &last);
    assert_int_equal(etcd_harness_compact(&harness, last), 0);
    assert_int_equal(etcd_watch_prefix(c, "/wc/", 4, first, T_MS, collect, &seen, &next), -EPROTO);
    assert_int_equal(seen.n, 0);
    assert_int_equal(next, -1);
    if (!strstr(etcd_last_error(c), "compact"))
        fail_msg("unexpected message: %s", etcd_last_error(c));
    etcd_client_free(c);
}

/* ---- failures of the transport ------------------------------------------------------------ */

static void test_unreachable_endpoint(void **state)
{
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", etcd_harness_closed_port());
    const char *endpoints[] = {dead};
    struct etcd_client *c = client_for(endpoints, 1);
    struct etcd_kvs kvs = {0};
    struct seen seen = {.stop_after = 1};
    (void)state;

    int64_t t0 = now_ms();
    assert_int_equal(etcd_get(c, "/u/k\xff", 5, T_MS, &kvs), -EAGAIN);
    assert_true(now_ms() - t0 < 2000);
    const char *msg = etcd_last_error(c);
    if (!strstr(msg, dead) || !strstr(msg, "get /u/k\\xff"))
        fail_msg("unexpected message: %s", msg);
    assert_int_equal(etcd_put(c, "/u/k", 4, "v", 1, 0, T_MS, NULL), -EAGAIN);
    assert_non_null(strstr(etcd_last_error(c), "put /u/k"));
    assert_int_equal(etcd_watch_prefix(c, "/u/", 3, 0, T_MS, collect, &seen, NULL), -EAGAIN);
    assert_non_null(strstr(etcd_last_error(c), dead));
    etcd_client_free(c);
}

static void test_paused_etcd_times_out(void **state)
{
    struct etcd_client *c = client();
    struct etcd_kvs kvs = {0};
    struct seen seen = {.stop_after = 1};
    int64_t next = -1;
    (void)state;

    put_text(c, "/h/k", "v", NULL); /* a kept-alive connection exists */
    assert_int_equal(etcd_harness_pause(&harness), 0);
    int64_t t0 = now_ms();
    int rc = etcd_get(c, "/h/k", 4, 500, &kvs);
    int64_t elapsed = now_ms() - t0;
    int64_t t1 = now_ms();
    int watch_rc = etcd_watch_prefix(c, "/h/", 3, 5, 500, collect, &seen, &next);
    int64_t watch_elapsed = now_ms() - t1;
    /* a fresh client has to connect first */
    struct etcd_client *fresh = client();
    int64_t t2 = now_ms();
    int fresh_rc = etcd_put(fresh, "/h/k2", 5, "v", 1, 0, 500, NULL);
    int64_t fresh_elapsed = now_ms() - t2;
    assert_int_equal(etcd_harness_resume(&harness), 0);

    assert_int_equal(rc, -EAGAIN);
    assert_true(elapsed >= 450 && elapsed < 500 + 10000); /* returned, not hung */
    assert_non_null(strstr(etcd_last_error(c), "watch /h/"));
    assert_int_equal(watch_rc, -EAGAIN);
    assert_true(watch_elapsed >= 450 && watch_elapsed < 500 + 10000);
    assert_int_equal(next, 5);
    assert_int_equal(fresh_rc, -EAGAIN);
    assert_true(fresh_elapsed >= 450 && fresh_elapsed < 500 + 10000);
    if (!strstr(etcd_last_error(fresh), "may have been applied"))
        fail_msg("unexpected message: %s", etcd_last_error(fresh));

    /* etcd is back: the same clients work again */
    assert_int_equal(etcd_get(c, "/h/k", 4, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    etcd_kvs_fini(&kvs);
    etcd_client_free(fresh);
    etcd_client_free(c);
}

static void test_failover_to_live_endpoint(void **state)
{
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", etcd_harness_closed_port());
    const char *endpoints[] = {dead, harness.endpoint};
    struct etcd_client *c = client_for(endpoints, 2);
    struct etcd_kvs kvs = {0};
    struct seen seen = {.stop_after = 1};
    int64_t revision = 0, next = 0;
    (void)state;

    put_text(c, "/f/k", "v", &revision);
    assert_string_equal(etcd_last_error(c), "");
    assert_int_equal(etcd_get(c, "/f/k", 4, T_MS, &kvs), 0);
    assert_kv(&kvs, 0, "/f/k", "v");
    etcd_kvs_fini(&kvs);
    /* a fresh client whose first call is a watch fails over too */
    etcd_client_free(c);
    c = client_for(endpoints, 2);
    assert_int_equal(etcd_watch_prefix(c, "/f/", 3, revision, T_MS, collect, &seen, &next), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ev[0].key, "/f/k");
    etcd_client_free(c);
}

/* ---- every allocation may fail ----------------------------------------------------------------
 */

/* A host allocator that fails its fail_at-th call and counts the blocks it handed out. */
struct failing {
    long calls;
    long fail_at;
    long live;
    int failed;
};

static void *failing_alloc(void *user, size_t size)
{
    struct failing *f = user;
    if (++f->calls == f->fail_at) {
        f->failed = 1;
        return NULL;
    }
    void *p = malloc(size);
    f->live += p != NULL;
    return p;
}

static void *failing_realloc(void *user, void *ptr, size_t size)
{
    struct failing *f = user;
    if (++f->calls == f->fail_at) {
        f->failed = 1;
        return NULL;
    }
    void *p = realloc(ptr, size);
    f->live += p != NULL && ptr == NULL;
    return p;
}

static void failing_free(void *user, void *ptr)
{
    struct failing *f = user;
    if (ptr) {
        f->live--;
        free(ptr);
    }
}

struct sweep_ctx {
    struct etcd_client *c;    /* made outside the allocator scope */
    struct etcd_client *dead; /* an unreachable endpoint */
    int64_t from;             /* the first revision of /am/ */
    int64_t lease;            /* a revoked lease */
};

/* Each operation checks its result when it returns 0 and releases it inside the scope. */
static int op_client_new(struct sweep_ctx *x)
{
    const char *endpoints[] = {harness.endpoint, "http://127.0.0.1:1/"};
    struct etcd_client *c = NULL;
    int rc = etcd_client_new(endpoints, 2, NULL, &c);
    etcd_client_free(c);
    (void)x;
    return rc;
}

static int op_parse(struct sweep_ctx *x)
{
    static const char body[] = "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E=\","
                               "\"value\":\"AAEC//4K\"},{\"key\":\"L2I=\"}]}";
    struct etcd_kvs kvs = {0};
    int rc = etcd_parse_range_response(body, strlen(body), &kvs);
    (void)x;
    if (rc == 0) {
        assert_int_equal(kvs.n, 2);
        assert_int_equal(kvs.revision, 9);
    }
    etcd_kvs_fini(&kvs);
    return rc;
}

static int op_get(struct sweep_ctx *x)
{
    struct etcd_kvs kvs = {0};
    int rc = etcd_get(x->c, "/am/a", 5, T_MS, &kvs);
    if (rc == 0)
        assert_kv(&kvs, 0, "/am/a", "one");
    etcd_kvs_fini(&kvs);
    return rc;
}

static int op_get_prefix(struct sweep_ctx *x)
{
    struct etcd_kvs kvs = {0};
    int rc = etcd_get_prefix(x->c, "/am/", 4, 0, T_MS, &kvs);
    if (rc == 0) {
        assert_int_equal(kvs.n, 2);
        assert_kv(&kvs, 1, "/am/b", "two");
    }
    etcd_kvs_fini(&kvs);
    return rc;
}

static int op_put(struct sweep_ctx *x)
{
    return etcd_put(x->c, "/am-put/k", 9, "v", 1, 0, T_MS, NULL);
}

static int op_put_if_conflict(struct sweep_ctx *x)
{
    struct etcd_kvs current = {0};
    int swapped = -1;
    int rc = etcd_put_if(x->c, "/am/a", 5, "x", 1, 1, 0, T_MS, &swapped, &current, NULL);
    if (rc == 0) {
        assert_int_equal(swapped, 0);
        assert_kv(&current, 0, "/am/a", "one");
    }
    etcd_kvs_fini(&current);
    return rc;
}

static int op_delete_if_conflict(struct sweep_ctx *x)
{
    int deleted = -1;
    int rc = etcd_delete_if(x->c, "/am/a", 5, 1, T_MS, &deleted);
    if (rc == 0)
        assert_int_equal(deleted, 0);
    return rc;
}

static int op_lease(struct sweep_ctx *x)
{
    int64_t ttl = -1;
    int rc = etcd_lease_keepalive(x->c, x->lease, T_MS, &ttl);
    if (rc == 0)
        assert_int_equal(ttl, 0);
    if (rc == 0)
        rc = etcd_lease_revoke(x->c, x->lease, T_MS);
    return rc;
}

static int op_watch(struct sweep_ctx *x)
{
    struct seen seen = {.stop_after = 2};
    int64_t next = 0;
    int rc = etcd_watch_prefix(x->c, "/am/", 4, x->from, T_MS, collect, &seen, &next);
    if (rc == 0) {
        assert_int_equal(seen.n, 2);
        assert_string_equal(seen.ev[1].key, "/am/b");
    }
    return rc;
}

static int op_unreachable(struct sweep_ctx *x)
{
    struct etcd_kvs kvs = {0};
    int rc = etcd_get(x->dead, "/am/a", 5, T_MS, &kvs);
    return rc == -EAGAIN ? 0 : rc;
}

/* Fail each allocation of `op` in turn: the result is -ENOMEM and nothing leaks; with no
 * failure, op succeeds. */
static void sweep(const char *name, int (*op)(struct sweep_ctx *), struct sweep_ctx *x)
{
    for (long n = 1;; n++) {
        struct failing f = {.fail_at = n};
        struct mgo_plugin plugin;
        memset(&plugin, 0, sizeof(plugin));
        plugin.host.user = &f;
        plugin.host.alloc = failing_alloc;
        plugin.host.realloc = failing_realloc;
        plugin.host.free = failing_free;
        struct core_scope saved;
        core_enter(&plugin, &saved);
        int rc = op(x);
        core_leave(&saved);
        if (f.live != 0)
            fail_msg("%s: allocation %ld failed: %ld blocks leaked", name, n, f.live);
        if (!f.failed) {
            if (rc != 0)
                fail_msg("%s: %d without a failed allocation (%ld made)", name, rc, f.calls);
            return;
        }
        if (rc != -ENOMEM)
            fail_msg("%s: allocation %ld failed but the call returned %d", name, n, rc);
    }
}

static void test_allocation_failures(void **state)
{
    char dead[64];
    struct sweep_ctx x = {0};
    const char *dead_endpoints[] = {dead};
    (void)state;

    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", etcd_harness_closed_port());
    x.c = client();
    x.dead = client_for(dead_endpoints, 1);
    put_text(x.c, "/am/a", "one", &x.from);
    put_text(x.c, "/am/b", "two", NULL);
    assert_int_equal(etcd_lease_grant(x.c, 30, T_MS, &x.lease), 0);
    assert_int_equal(etcd_lease_revoke(x.c, x.lease, T_MS), 0);

    sweep("client_new", op_client_new, &x);
    sweep("parse", op_parse, &x);
    sweep("get", op_get, &x);
    sweep("get_prefix", op_get_prefix, &x);
    sweep("put", op_put, &x);
    sweep("put_if", op_put_if_conflict, &x);
    sweep("delete_if", op_delete_if_conflict, &x);
    sweep("lease", op_lease, &x);
    sweep("watch", op_watch, &x);
    sweep("unreachable", op_unreachable, &x);
    etcd_client_free(x.dead);
    etcd_client_free(x.c);
}

/* ---- a fake etcd: canned answers, sent in pieces ------------------------------------------------
 */

/* Serves one connection: reads one request, writes `pieces` with a pause between them (so they
 * arrive as separate reads), then closes. */
struct fake {
    int listen_fd;
    char endpoint[64];
    const char *const *pieces;
    size_t n_pieces;
    pthread_t thread;
    char request[16384]; /* the request as received: line, headers, body */
    size_t request_len;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    int fd = accept(f->listen_fd, NULL, NULL);
    size_t body_at = 0, content_length = 0;

    if (fd < 0)
        return NULL;
    while (f->request_len < sizeof(f->request) - 1) {
        ssize_t n = read(fd, f->request + f->request_len, sizeof(f->request) - 1 - f->request_len);
        if (n <= 0)
            break;
        f->request_len += (size_t)n;
        f->request[f->request_len] = '\0';
        if (!body_at) {
            char *end = strstr(f->request, "\r\n\r\n");
            char *cl = strstr(f->request, "Content-Length: ");
            if (end && cl) {
                body_at = (size_t)(end + 4 - f->request);
                content_length = strtoul(cl + 16, NULL, 10);
            }
        }
        if (body_at && f->request_len >= body_at + content_length)
            break;
    }
    for (size_t i = 0; i < f->n_pieces; i++) {
        if (i > 0)
            sleep_ms(60);
        if (write(fd, f->pieces[i], strlen(f->pieces[i])) < 0)
            break;
    }
    sleep_ms(60);
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, const char *const *pieces, size_t n)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);

    memset(f, 0, sizeof(*f));
    f->pieces = pieces;
    f->n_pieces = n;
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->listen_fd >= 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(f->listen_fd, 4), 0);
    assert_int_equal(getsockname(f->listen_fd, (struct sockaddr *)&addr, &len), 0);
    snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%d", ntohs(addr.sin_port));
    assert_int_equal(pthread_create(&f->thread, NULL, fake_serve, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

/* The request body the fake received. */
static const char *fake_body(const struct fake *f)
{
    const char *end = strstr(f->request, "\r\n\r\n");
    return end ? end + 4 : "";
}

static struct etcd_client *fake_client(const struct fake *f)
{
    const char *endpoints[] = {f->endpoint};
    return client_for(endpoints, 1);
}

#define HTTP_200_CLOSE                                                                             \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"

static void test_fake_wire_format_of_put_if(void **state)
{
    static const char *const answer[] = {
        HTTP_200_CLOSE "{\"header\":{\"revision\":\"6\"},\"succeeded\":true,\"responses\":"
                       "[{\"response_put\":{\"header\":{\"revision\":\"6\"}}}]}\n"};
    struct fake f;
    int swapped = -1;
    int64_t revision = 0;
    (void)state;

    fake_start(&f, answer, 1);
    struct etcd_client *c = fake_client(&f);
    assert_int_equal(etcd_put_if(c, "/a", 2, "v", 1, 0, 0, T_MS, &swapped, NULL, &revision), 0);
    fake_stop(&f);
    assert_int_equal(swapped, 1);
    assert_int_equal(revision, 6);
    assert_non_null(strstr(f.request, "POST /v3/kv/txn HTTP/1.1\r\n"));
    assert_non_null(strstr(f.request, "\r\nContent-Type: application/json\r\n"));
    assert_null(strstr(f.request, "Expect:"));
    assert_string_equal(
        fake_body(&f), "{\"compare\":[{\"key\":\"L2E=\",\"result\":\"EQUAL\",\"target\":\"CREATE\","
                       "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":{\"key\":"
                       "\"L2E=\",\"value\":\"dg==\"}}],\"failure\":[{\"request_range\":{\"key\":"
                       "\"L2E=\"}}]}");
    etcd_client_free(c);
}

static void test_fake_wire_format_of_cas_and_lease(void **state)
{
    static const char *const answer[] = {
        HTTP_200_CLOSE "{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":{"
                       "\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E=\",\"mod_revision\""
                       ":\"8\",\"value\":\"dzI=\"}],\"count\":\"1\"}}]}"};
    struct etcd_kvs current = {0};
    struct fake f;
    int swapped = -1;
    (void)state;

    fake_start(&f, answer, 1);
    struct etcd_client *c = fake_client(&f);
    assert_int_equal(etcd_put_if(c, "/a", 2, "", 0, 7, 4242, T_MS, &swapped, &current, NULL), 0);
    fake_stop(&f);
    assert_string_equal(fake_body(&f),
                        "{\"compare\":[{\"key\":\"L2E=\",\"result\":\"EQUAL\",\"target\":\"MOD\","
                        "\"mod_revision\":\"7\"}],\"success\":[{\"request_put\":{\"key\":\"L2E=\","
                        "\"value\":\"\",\"lease\":\"4242\"}}],\"failure\":[{\"request_range\":{"
                        "\"key\":\"L2E=\"}}]}");
    assert_int_equal(swapped, 0);
    assert_int_equal(current.revision, 9);
    assert_kv(&current, 0, "/a", "w2");
    assert_int_equal(current.items[0].mod_revision, 8);
    etcd_kvs_fini(&current);
    etcd_client_free(c);
}

static void test_fake_unavailable_is_retry_class(void **state)
{
    static const char *const answer[] = {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Connection: close\r\n\r\n"
        "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no leader\",\"code\":14}"};
    struct etcd_kvs kvs = {0};
    struct fake f;
    (void)state;

    fake_start(&f, answer, 1);
    struct etcd_client *c = fake_client(&f);
    assert_int_equal(etcd_get(c, "/a", 2, T_MS, &kvs), -EAGAIN);
    fake_stop(&f);
    if (!strstr(etcd_last_error(c), "get /a: HTTP 503: etcdserver: no leader (code 14)"))
        fail_msg("unexpected message: %s", etcd_last_error(c));
    etcd_client_free(c);
}

static void test_fake_unreadable_answer(void **state)
{
    static const char *const answer[] = {HTTP_200_CLOSE "<html>not etcd</html>"};
    struct etcd_kvs kvs = {0};
    struct fake f;
    (void)state;

    fake_start(&f, answer, 1);
    struct etcd_client *c = fake_client(&f);
    assert_int_equal(etcd_get(c, "/a", 2, T_MS, &kvs), -EPROTO);
    fake_stop(&f);
    if (!strstr(etcd_last_error(c), "get /a: unreadable answer: <html>not etcd</html>"))
        fail_msg("unexpected message: %s", etcd_last_error(c));
    etcd_client_free(c);
}

#define EV_PUT(key, rev)                                                                           \
    "{\"result\":{\"header\":{\"revision\":\"" rev "\"},\"events\":[{\"kv\":{\"key\":\"" key       \
    "\",\"mod_revision\":\"" rev "\",\"value\":\"dg==\"}}]}}"

static void test_fake_watch_stream_split_anywhere(void **state)
{
    /* three events: the first split across reads, two lines in one read, the last split
     * again, with a \r\n line end on the way */
    static const char *const pieces[] = {
        HTTP_200_CLOSE "{\"result\":{\"header\":{\"revision\":\"10\"},\"created\":true}}\n"
                       "{\"result\":{\"header\":{\"revi",
        "sion\":\"11\"},\"events\":[{\"kv\":{\"key\":\"L2E=\",\"mod_revision\":\"11\"}}]}}"
        "\r\n" EV_PUT(
            "L2I=",
            "12") "\n{\"result\":{\"header\":{\"revision\":\"13\"},\"events\":[{\"type\":\"DEL",
        "ETE\",\"kv\":{\"key\":\"L2M=\",\"mod_revision\":\"13\"}}]}}\n",
    };
    struct seen seen = {.stop_after = 3};
    struct fake f;
    int64_t next = 0;
    (void)state;

    fake_start(&f, pieces, 3);
    struct etcd_client *c = fake_client(&f);
    int rc = etcd_watch_prefix(c, "/", 1, 11, T_MS, collect, &seen, &next);
    fake_stop(&f);
    if (rc != 0)
        fail_msg("watch: %d %s", rc, etcd_last_error(c));
    assert_non_null(strstr(f.request, "POST /v3/watch HTTP/1.1\r\n"));
    assert_string_equal(fake_body(&f),
                        "{\"create_request\":{\"key\":\"Lw==\",\"range_end\":\"MA==\","
                        "\"prev_kv\":true,\"start_revision\":\"11\"}}");
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.ev[0].key, "/a");
    assert_int_equal(seen.ev[0].type, ETCD_EVENT_PUT);
    assert_string_equal(seen.ev[1].key, "/b");
    assert_string_equal(seen.ev[1].value, "v");
    assert_string_equal(seen.ev[2].key, "/c");
    assert_int_equal(seen.ev[2].type, ETCD_EVENT_DELETE);
    assert_int_equal(next, 14);
    etcd_client_free(c);
}

static void test_fake_watch_stream_failures(void **state)
{
    static const char *const in_band_error[] = {
        HTTP_200_CLOSE EV_PUT("L2E=", "5") "\n{\"error\":{\"grpc_code\":14,\"http_code\":503,"
                                           "\"message\":\"etcdserver: no leader\"}}\n"};
    static const char *const canceled[] = {
        HTTP_200_CLOSE "{\"result\":{\"header\":{},\"canceled\":true,"
                       "\"cancel_reason\":\"etcdserver: mvcc: required revision is a future "
                       "revision\"}}\n"};
    static const char *const garbage[] = {HTTP_200_CLOSE "{\"result\":{\"events\":[{\"kv\":"
                                                         "{\"key\":\"!!\"}}]}}\n"};
    static const char *const ended[] = {HTTP_200_CLOSE EV_PUT("L2E=", "5") "\n"};
    struct seen seen = {.stop_after = 10};
    struct fake f;
    int64_t next = 0;
    (void)state;

    fake_start(&f, in_band_error, 1);
    struct etcd_client *c = fake_client(&f);
    assert_int_equal(etcd_watch_prefix(c, "/", 1, 5, T_MS, collect, &seen, &next), -EAGAIN);
    fake_stop(&f);
    assert_int_equal(seen.n, 1);
    assert_int_equal(next, 6);
    assert_non_null(strstr(etcd_last_error(c), "watch failed: etcdserver: no leader (code 14)"));
    etcd_client_free(c);

    fake_start(&f, canceled, 1);
    c = fake_client(&f);
    assert_int_equal(etcd_watch_prefix(c, "/", 1, 99, T_MS, collect, &seen, &next), -EPROTO);
    fake_stop(&f);
    assert_non_null(strstr(etcd_last_error(c), "required revision is a future revision"));
    etcd_client_free(c);

    fake_start(&f, garbage, 1);
    c = fake_client(&f);
    assert_int_equal(etcd_watch_prefix(c, "/", 1, 1, T_MS, collect, &seen, &next), -EPROTO);
    fake_stop(&f);
    assert_non_null(strstr(etcd_last_error(c), "unreadable watch event 0: kv"));
    etcd_client_free(c);

    /* the server closes the stream: -EAGAIN with where to resume */
    seen.n = 0;
    fake_start(&f, ended, 1);
    c = fake_client(&f);
    assert_int_equal(etcd_watch_prefix(c, "/", 1, 5, T_MS, collect, &seen, &next), -EAGAIN);
    fake_stop(&f);
    assert_int_equal(seen.n, 1);
    assert_int_equal(next, 6);
    assert_non_null(strstr(etcd_last_error(c), "the watch stream ended"));
    etcd_client_free(c);
}

/* ---- TLS --------------------------------------------------------------------------------------
 */

static struct etcd_harness tls_harness;

static int tls_setup(void **state)
{
    (void)state;
    return etcd_harness_start_tls(&tls_harness);
}

static int tls_teardown(void **state)
{
    (void)state;
    etcd_harness_stop(&tls_harness);
    return 0;
}

/* The whole file in a malloc'd buffer. */
static char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *ret_len = (size_t)len;
    return buf;
}

struct pems {
    char *ca, *cert, *key;
    struct etcd_tls tls;
};

static void pems_load(struct pems *p)
{
    p->ca = slurp(tls_harness.ca_file, &p->tls.ca_len);
    p->cert = slurp(tls_harness.cert_file, &p->tls.cert_len);
    p->key = slurp(tls_harness.key_file, &p->tls.key_len);
    p->tls.ca_pem = p->ca;
    p->tls.cert_pem = p->cert;
    p->tls.key_pem = p->key;
}

static void pems_free(struct pems *p)
{
    free(p->ca);
    free(p->cert);
    free(p->key);
}

static void test_tls_round_trip_and_watch(void **state)
{
    const char *endpoints[] = {tls_harness.endpoint};
    struct etcd_client *c = NULL;
    struct etcd_kvs kvs = {0};
    struct seen seen = {.stop_after = 1};
    struct pems p;
    int64_t revision = 0, next = 0;
    (void)state;

    pems_load(&p);
    assert_int_equal(etcd_client_new(endpoints, 1, &p.tls, &c), 0);
    pems_free(&p); /* the client keeps its own copy */
    if (etcd_put(c, "/tls/k", 6, "\x00secret", 7, 0, T_MS, &revision) != 0)
        fail_msg("put over TLS: %s", etcd_last_error(c));
    assert_int_equal(etcd_get(c, "/tls/k", 6, T_MS, &kvs), 0);
    assert_int_equal(kvs.n, 1);
    assert_int_equal(kvs.items[0].value_len, 7);
    assert_memory_equal(kvs.items[0].value, "\x00secret", 7);
    etcd_kvs_fini(&kvs);
    /* the watch makes its own connection with the same material */
    assert_int_equal(etcd_watch_prefix(c, "/tls/", 5, revision, T_MS, collect, &seen, &next), 0);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ev[0].key, "/tls/k");
    assert_int_equal(next, revision + 1);
    etcd_client_free(c);
}

static void test_tls_rejections(void **state)
{
    const char *endpoints[] = {tls_harness.endpoint};
    struct etcd_client *c = NULL;
    struct etcd_kvs kvs = {0};
    struct pems p;
    (void)state;

    pems_load(&p);
    /* no client certificate: etcd refuses the connection */
    struct etcd_tls ca_only = {.ca_pem = p.ca, .ca_len = p.tls.ca_len};
    assert_int_equal(etcd_client_new(endpoints, 1, &ca_only, &c), 0);
    assert_int_equal(etcd_get(c, "/tls/k", 6, T_MS, &kvs), -EAGAIN);
    assert_non_null(strstr(etcd_last_error(c), tls_harness.endpoint));
    etcd_client_free(c);
    /* a CA that did not sign etcd's certificate (the client certificate itself): refused, and
     * the system's CAs are not consulted instead */
    struct etcd_tls wrong_ca = p.tls;
    wrong_ca.ca_pem = p.cert;
    wrong_ca.ca_len = p.tls.cert_len;
    assert_int_equal(etcd_client_new(endpoints, 1, &wrong_ca, &c), 0);
    assert_int_equal(etcd_get(c, "/tls/k", 6, T_MS, &kvs), -EAGAIN);
    if (!strstr(etcd_last_error(c), "certificate"))
        fail_msg("unexpected message: %s", etcd_last_error(c));
    etcd_client_free(c);
    /* no TLS material at all: the system CAs do not know the test CA */
    assert_int_equal(etcd_client_new(endpoints, 1, NULL, &c), 0);
    assert_int_equal(etcd_get(c, "/tls/k", 6, T_MS, &kvs), -EAGAIN);
    etcd_client_free(c);
    pems_free(&p);
}

/* Run with LD_LIBRARY_PATH at a directory whose libcurl.so.4 is not a library (ctest
 * topo_etcd_no_curl): the client cannot be made, and the reason names libcurl.so.4. */
static void test_without_libcurl(void **state)
{
    const char *endpoints[] = {"http://127.0.0.1:2379"};
    struct etcd_client *c = NULL;
    (void)state;

    assert_int_equal(etcd_client_new(endpoints, 1, NULL, &c), -EAGAIN);
    assert_null(c);
    if (!strstr(curl_api_error(), "cannot load libcurl.so.4: dlopen: "))
        fail_msg("unexpected message: %s", curl_api_error());
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--without-libcurl") == 0) {
        const struct CMUnitTest without[] = {cmocka_unit_test(test_without_libcurl)};
        return cmocka_run_group_tests_name("etcd without libcurl", without, NULL, NULL);
    }

    const struct CMUnitTest offline[] = {
        cmocka_unit_test(test_client_new_rejects_bad_endpoints),
        cmocka_unit_test(test_parse_range_response),
        cmocka_unit_test(test_parse_missing_key_and_wrappers),
        cmocka_unit_test(test_parse_rejects_garbage),
        cmocka_unit_test(test_fake_wire_format_of_put_if),
        cmocka_unit_test(test_fake_wire_format_of_cas_and_lease),
        cmocka_unit_test(test_fake_unavailable_is_retry_class),
        cmocka_unit_test(test_fake_unreadable_answer),
        cmocka_unit_test(test_fake_watch_stream_split_anywhere),
        cmocka_unit_test(test_fake_watch_stream_failures),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_binary_round_trip),
        cmocka_unit_test(test_get_missing_key),
        cmocka_unit_test(test_prefix_listing),
        cmocka_unit_test(test_delete_counts),
        cmocka_unit_test(test_put_if_create_if_absent),
        cmocka_unit_test(test_compare_and_swap),
        cmocka_unit_test(test_delete_if),
        cmocka_unit_test(test_lease_lifecycle),
        cmocka_unit_test(test_error_answer_is_final),
        cmocka_unit_test(test_watch_delivers_in_order_and_resumes),
        cmocka_unit_test(test_watch_from_now_times_out_with_next_revision),
        cmocka_unit_test(test_watch_compacted_revision),
        cmocka_unit_test(test_unreachable_endpoint),
        cmocka_unit_test(test_paused_etcd_times_out),
        cmocka_unit_test(test_failover_to_live_endpoint),
        cmocka_unit_test(test_allocation_failures),
    };
    int failed = cmocka_run_group_tests_name("etcd offline", offline, NULL, NULL);
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls_round_trip_and_watch),
        cmocka_unit_test(test_tls_rejections),
    };
    failed += cmocka_run_group_tests_name("etcd live", live, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("etcd tls", tls, tls_setup, tls_teardown);
    return failed;
}
