/*
 * mgo-kube's certificate judge and issuer (host-shims/kube/ctrl/certs.c) at chosen times. The
 * expected verdicts are docs/abi.md's rules ("certificates": when to write) and the validity
 * figures of the entry; the base64 vectors are RFC 4648's. The certificates' contents are
 * checked by openssl and a TLS handshake in test_kube_certs.py; here, when each is judged due.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "certs.h"

#define DAY 86400
#define T0  1800000000 /* 2027-01-15T08:00:00Z */

static struct certs_spec spec(void)
{
    struct certs_spec s = {.common_name = "pgbackrest",
                           .organization = "Multigres",
                           .dns = {"pgbackrest", "localhost", "pgbackrest.ns.svc"},
                           .ndns = 3,
                           .server_auth = true,
                           .client_auth = true,
                           .ca_days = 3650,
                           .days = 365,
                           .renew_days = 30};
    return s;
}

static char *dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static struct certs_pem copy(const struct certs_pem *p)
{
    struct certs_pem c = {dup(p->ca_crt), dup(p->ca_key), dup(p->crt), dup(p->key)};
    return c;
}

static char **field(struct certs_pem *p, const char *name)
{
    return strcmp(name, "ca_crt") == 0   ? &p->ca_crt
           : strcmp(name, "ca_key") == 0 ? &p->ca_key
           : strcmp(name, "crt") == 0    ? &p->crt
                                         : &p->key;
}

/* A copy of `a` with up to two fields taken from `b`: "f" takes b's f, "f=g" takes b's g. */
static struct certs_pem mixed(const struct certs_pem *a, const struct certs_pem *b, const char *one,
                              const char *two)
{
    struct certs_pem m = copy(a), from = *b;
    const char *which[2] = {one, two};
    for (size_t i = 0; i < 2 && which[i]; i++) {
        char to[16], src[16];
        const char *eq = strchr(which[i], '=');
        (void)snprintf(to, sizeof(to), "%.*s", eq ? (int)(eq - which[i]) : 15, which[i]);
        (void)snprintf(src, sizeof(src), "%s", eq ? eq + 1 : which[i]);
        free(*field(&m, to));
        *field(&m, to) = dup(*field(&from, src));
    }
    return m;
}

static struct certs_pem issued(int64_t at)
{
    struct certs_spec s = spec();
    struct certs_pem p = {0};
    assert_int_equal(certs_issue(&s, &p, true, at), 0);
    assert_non_null(p.ca_crt);
    assert_non_null(p.ca_key);
    assert_non_null(p.crt);
    assert_non_null(p.key);
    return p;
}

static enum certs_verdict judge_at(const struct certs_spec *s, const struct certs_pem *p,
                                   int64_t now, int64_t *renew_at)
{
    const char *why = NULL;
    int64_t r = -1;
    enum certs_verdict v = certs_judge(s, p, now, &r, &why);
    assert_non_null(why);
    if (renew_at)
        *renew_at = r;
    return v;
}

/* A fresh pair is valid from an hour before its issue; it falls due 30 days before the
 * certificate's 365 days end (the CA's 3650 come later); then it is reissued; the CA, 30 days
 * before its own end, is renewed. */
static void test_validity_window(void **state)
{
    (void)state;
    struct certs_spec s = spec();
    struct certs_pem p = issued(T0);
    int64_t due = 0;

    assert_int_equal(judge_at(&s, &p, T0, &due), CERTS_VALID);
    assert_int_equal(due, T0 + (365 - 30) * (int64_t)DAY);
    assert_int_equal(judge_at(&s, &p, T0 - 3600, NULL), CERTS_VALID);
    assert_int_equal(judge_at(&s, &p, T0 + (365 - 30) * (int64_t)DAY - 1, NULL), CERTS_VALID);
    assert_int_equal(judge_at(&s, &p, T0 + (365 - 30) * (int64_t)DAY, NULL), CERTS_REISSUE);
    assert_int_equal(judge_at(&s, &p, T0 + (3650 - 30) * (int64_t)DAY - 1, NULL), CERTS_REISSUE);
    assert_int_equal(judge_at(&s, &p, T0 + (3650 - 30) * (int64_t)DAY, NULL), CERTS_NEW_CA);
    certs_pem_fini(&p);
}

/* Not valid yet (a clock that ran ahead when they were issued): the CA is checked first. */
static void test_not_valid_yet(void **state)
{
    (void)state;
    struct certs_spec s = spec();
    struct certs_pem p = issued(T0), q;

    assert_int_equal(judge_at(&s, &p, T0 - 3600 - 1, NULL), CERTS_NEW_CA);
    /* a certificate issued later than its CA, judged between the two */
    q = copy(&p);
    assert_int_equal(certs_issue(&s, &q, false, T0 + 10 * DAY), 0);
    assert_int_equal(judge_at(&s, &q, T0 + 10 * DAY - 3600, NULL), CERTS_VALID);
    assert_int_equal(judge_at(&s, &q, T0 + 10 * DAY - 3600 - 1, NULL), CERTS_REISSUE);
    certs_pem_fini(&p);
    certs_pem_fini(&q);
}

/* A reissue keeps the CA and replaces the certificate and key; the result is valid and due 335
 * days after the reissue. */
static void test_reissue_keeps_ca(void **state)
{
    (void)state;
    struct certs_spec s = spec();
    struct certs_pem p = issued(T0), q = copy(&p);
    int64_t due = 0;

    assert_int_equal(certs_issue(&s, &q, false, T0 + 100 * DAY), 0);
    assert_string_equal(q.ca_crt, p.ca_crt);
    assert_string_equal(q.ca_key, p.ca_key);
    assert_string_not_equal(q.crt, p.crt);
    assert_string_not_equal(q.key, p.key);
    assert_int_equal(judge_at(&s, &q, T0 + 100 * DAY, &due), CERTS_VALID);
    assert_int_equal(due, T0 + (100 + 365 - 30) * (int64_t)DAY);
    certs_pem_fini(&p);
    certs_pem_fini(&q);
}

/* Material that does not belong together. */
static void test_mismatches(void **state)
{
    (void)state;
    struct certs_spec s = spec();
    struct certs_pem a = issued(T0), b = issued(T0), m;

    /* a certificate from another CA */
    m = mixed(&a, &b, "crt", "key");
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_REISSUE);
    certs_pem_fini(&m);
    /* a key that is not the certificate's */
    m = mixed(&a, &b, "key", NULL);
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_REISSUE);
    certs_pem_fini(&m);
    /* a CA key that is not the CA's */
    m = mixed(&a, &b, "ca_key", NULL);
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_NEW_CA);
    certs_pem_fini(&m);
    /* the CA itself as the certificate: signed by the CA, but CA:TRUE and other names */
    m = mixed(&a, &a, "crt=ca_crt", "key=ca_key");
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_REISSUE);
    certs_pem_fini(&m);
    /* missing or unreadable */
    m = copy(&a);
    free(m.crt);
    m.crt = NULL;
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_REISSUE);
    free(m.ca_crt);
    m.ca_crt = dup("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    assert_int_equal(judge_at(&s, &m, T0, NULL), CERTS_NEW_CA);
    certs_pem_fini(&m);
    certs_pem_fini(&a);
    certs_pem_fini(&b);
}

/* An entry that asks for other names or usages than the certificate has: reissued. */
static void test_spec_changes(void **state)
{
    (void)state;
    struct certs_pem p = issued(T0);
    struct certs_spec s;

    s = spec();
    s.dns[s.ndns++] = "pgbackrest.ns.svc.cluster.local";
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec();
    s.ndns = 2; /* one name fewer */
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec();
    s.dns[2] = "pgbackrest.other.svc"; /* as many names, one different */
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec();
    s.client_auth = false;
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec();
    s.common_name = "other";
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec();
    s.organization = "Other";
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_REISSUE);
    s = spec(); /* the same names in another order: still valid */
    s.dns[0] = "pgbackrest.ns.svc";
    s.dns[2] = "pgbackrest";
    assert_int_equal(judge_at(&s, &p, T0, NULL), CERTS_VALID);
    certs_pem_fini(&p);
}

/* Issuing from an unreadable CA fails and leaves the material as it was; an entry without a
 * name or usage is refused. */
static void test_issue_errors(void **state)
{
    (void)state;
    struct certs_spec s = spec();
    struct certs_pem p = {dup("garbage"), dup("garbage"), dup("old"), dup("old")};

    assert_int_equal(certs_issue(&s, &p, false, T0), -EINVAL);
    assert_string_equal(p.crt, "old");
    assert_string_equal(p.ca_crt, "garbage");
    s.ndns = 0;
    assert_int_equal(certs_issue(&s, &p, true, T0), -EINVAL);
    s = spec();
    s.server_auth = s.client_auth = false;
    assert_int_equal(certs_issue(&s, &p, true, T0), -EINVAL);
    static const char *const bad_dns[] = {
        "a,DNS:b",     /* would smuggle a second name into the extension */
        "pgbackrest ", /* the extension's text would read back trimmed */
        " pgbackrest", "IP:127.0.0.1", "a\tb", ""};
    for (size_t i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
        s = spec();
        s.dns[0] = bad_dns[i];
        assert_int_equal(certs_issue(&s, &p, true, T0), -EINVAL);
    }
    assert_string_equal(p.crt, "old");
    certs_pem_fini(&p);
}

/* RFC 4648 section 10 test vectors. */
static void test_base64(void **state)
{
    (void)state;
    static const char *const vec[][2] = {{"", ""},
                                         {"f", "Zg=="},
                                         {"fo", "Zm8="},
                                         {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="},
                                         {"fooba", "Zm9vYmE="},
                                         {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char *b = certs_base64(vec[i][0]);
        assert_non_null(b);
        assert_string_equal(b, vec[i][1]);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validity_window),  cmocka_unit_test(test_not_valid_yet),
        cmocka_unit_test(test_reissue_keeps_ca), cmocka_unit_test(test_mismatches),
        cmocka_unit_test(test_spec_changes),     cmocka_unit_test(test_issue_errors),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
