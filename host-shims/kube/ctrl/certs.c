/*
 * Certificates with libcrypto (certs.h). The CA is "<organization> CA", CA:TRUE, key usages
 * keyCertSign, cRLSign and digitalSignature; the certificate carries the spec's subject, DNS
 * names and extended key usages, CA:FALSE, digitalSignature and keyEncipherment. Serial numbers
 * are 127 random bits.
 */
#include "certs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DAY        86400
#define BACKDATE_S 3600 /* clocks of the nodes may lag the controller's */

/* ---- reading -------------------------------------------------------------------------------- */

static X509 *read_cert(const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return x;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    return k;
}

/* notAfter in Unix seconds, or 0 when it cannot be read. */
static int64_t not_after(const X509 *x)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static bool subject_is(X509 *x, int nid, const char *want)
{
    char got[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), nid, got, sizeof(got));

    return n >= 0 && strcmp(got, want) == 0;
}

/* The DNS names of the certificate are exactly the spec's (in any order, no others). */
static bool dns_names_are(X509 *x, const struct certs_spec *spec)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = names ? sk_GENERAL_NAME_num(names) : 0;
    bool ok = (size_t)n == spec->ndns;

    for (int i = 0; ok && i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        const unsigned char *d = g->type == GEN_DNS ? ASN1_STRING_get0_data(g->d.dNSName) : NULL;
        int len = d ? ASN1_STRING_length(g->d.dNSName) : 0;
        ok = false;
        for (size_t j = 0; d && j < spec->ndns; j++)
            if (strlen(spec->dns[j]) == (size_t)len && memcmp(spec->dns[j], d, (size_t)len) == 0)
                ok = true;
    }
    GENERAL_NAMES_free(names);
    return ok;
}

static bool usages_are(X509 *x, const struct certs_spec *spec)
{
    uint32_t want =
        (spec->server_auth ? XKU_SSL_SERVER : 0) | (spec->client_auth ? XKU_SSL_CLIENT : 0);
    uint32_t got = X509_get_extended_key_usage(x);

    /* UINT32_MAX: no extension at all, which allows every usage: not what was issued */
    return got != UINT32_MAX && (got & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) == want;
}

static enum certs_verdict judge_leaf(const struct certs_spec *spec, const struct certs_pem *have,
                                     X509 *ca, int64_t now, int64_t *leaf_due, const char **why)
{
    X509 *x = read_cert(have->crt);
    EVP_PKEY *k = read_key(have->key), *ca_pub = X509_get0_pubkey(ca);
    enum certs_verdict v = CERTS_REISSUE;
    int64_t end = x ? not_after(x) : 0;

    if (!x || !k)
        *why = "the certificate or its key is missing or unreadable";
    else if (X509_check_private_key(x, k) != 1)
        *why = "the certificate's key does not match it";
    else if (!ca_pub || X509_verify(x, ca_pub) != 1)
        *why = "the certificate is not signed by the CA";
    else if (end - (int64_t)spec->renew_days * DAY <= now)
        *why = "the certificate is due for renewal";
    else if (!subject_is(x, NID_commonName, spec->common_name) || !dns_names_are(x, spec) ||
             !usages_are(x, spec))
        *why = "the certificate's names or usages differ from what mgo issues";
    else {
        v = CERTS_VALID;
        *leaf_due = end - (int64_t)spec->renew_days * DAY;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return v;
}

enum certs_verdict certs_judge(const struct certs_spec *spec, const struct certs_pem *have,
                               int64_t now, int64_t *renew_at, const char **why)
{
    X509 *ca = read_cert(have->ca_crt);
    EVP_PKEY *ca_key = read_key(have->ca_key);
    enum certs_verdict v = CERTS_NEW_CA;
    int64_t ca_due = ca ? not_after(ca) - (int64_t)spec->renew_days * DAY : 0, leaf_due = 0;

    *renew_at = 0;
    if (!ca || !ca_key)
        *why = "the CA or its key is missing or unreadable";
    else if (X509_check_ca(ca) == 0)
        *why = "the CA certificate is not a CA";
    else if (X509_check_private_key(ca, ca_key) != 1)
        *why = "the CA's key does not match it";
    else if (ca_due <= now)
        *why = "the CA is due for renewal";
    else {
        v = judge_leaf(spec, have, ca, now, &leaf_due, why);
        if (v == CERTS_VALID) {
            *why = "valid";
            *renew_at = leaf_due < ca_due ? leaf_due : ca_due;
        }
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return v;
}

/* ---- issuing -------------------------------------------------------------------------------- */

static char *pem_of(int (*write)(BIO *, const void *), const void *obj)
{
    BIO *b = BIO_new(BIO_s_secmem()); /* cleared when freed: it holds private keys */
    char *data = NULL, *out = NULL;
    long n;

    if (b && write(b, obj) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
        (out = malloc((size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free_all(b);
    return out;
}

static int write_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1) == 1;

    X509_EXTENSION_free(e);
    return ok ? 0 : -ENOMEM;
}

static int set_name(X509_NAME *n, const char *org, const char *cn)
{
    return X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                      (const unsigned char *)org, -1, -1, 0) == 1 &&
                   X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                              (const unsigned char *)cn, -1, -1, 0) == 1
               ? 0
               : -ENOMEM;
}

/* A certificate for `key` with subject (org, cn), signed by issuer/issuer_key (itself when
 * issuer is NULL), valid `days` from an hour before `now`; extensions in ext[] (nid, value),
 * ended by nid 0. */
static X509 *make_cert(EVP_PKEY *key, const char *org, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, int days, int64_t now, const int *nids,
                       const char *const *values)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    X509V3_CTX ctx;
    int rc = x && serial && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
                     BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) &&
                     X509_set_version(x, 2) == 1 &&
                     ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - BACKDATE_S)) &&
                     ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + (int64_t)days * DAY)) &&
                     X509_set_pubkey(x, key) == 1
                 ? set_name(X509_get_subject_name(x), org, cn)
                 : -ENOMEM;

    if (rc == 0 && X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x)) != 1)
        rc = -ENOMEM;
    if (rc == 0) {
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        for (size_t i = 0; rc == 0 && nids[i]; i++)
            rc = add_ext(x, &ctx, nids[i], values[i]);
    }
    if (rc == 0 && X509_sign(x, issuer_key, EVP_sha256()) <= 0)
        rc = -ENOMEM;
    BN_free(serial);
    if (rc != 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static void wipe_free(char *s)
{
    if (s)
        OPENSSL_cleanse(s, strlen(s));
    free(s);
}

int certs_issue(const struct certs_spec *spec, struct certs_pem *pem, bool new_ca, int64_t now)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier,
                                  0};
    static const char *const ca_values[] = {
        "critical,CA:TRUE", "critical,keyCertSign,cRLSign,digitalSignature", "hash"};
    static const int leaf_nids[] = {NID_basic_constraints,
                                    NID_key_usage,
                                    NID_ext_key_usage,
                                    NID_subject_alt_name,
                                    NID_subject_key_identifier,
                                    NID_authority_key_identifier,
                                    0};
    char ca_cn[300], san[2048] = "", eku[64] = "";
    const char *leaf_values[] = {
        "critical,CA:FALSE", "critical,digitalSignature,keyEncipherment", eku, san, "hash",
        "keyid:always"};
    struct certs_pem out = {0};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *x = NULL;
    int rc = -ENOMEM;

    if (spec->ndns == 0 || (!spec->server_auth && !spec->client_auth))
        return -EINVAL;
    for (size_t i = 0; i < spec->ndns; i++) {
        size_t used = strlen(san);
        int n = snprintf(san + used, sizeof(san) - used, "%sDNS:%s", i ? "," : "", spec->dns[i]);
        if (n < 0 || (size_t)n >= sizeof(san) - used || strchr(spec->dns[i], ','))
            return -EINVAL;
    }
    (void)snprintf(eku, sizeof(eku), "%s%s%s", spec->server_auth ? "serverAuth" : "",
                   spec->server_auth && spec->client_auth ? "," : "",
                   spec->client_auth ? "clientAuth" : "");
    (void)snprintf(ca_cn, sizeof(ca_cn), "%s CA", spec->organization);
    if (new_ca) {
        ca_key = EVP_EC_gen("P-256");
        ca = ca_key ? make_cert(ca_key, spec->organization, ca_cn, NULL, ca_key, spec->ca_days, now,
                                ca_nids, ca_values)
                    : NULL;
        out.ca_crt = ca ? pem_of(write_cert, ca) : NULL;
        out.ca_key = ca ? pem_of(write_key, ca_key) : NULL;
        if (!out.ca_crt || !out.ca_key)
            goto out;
    } else {
        ca = read_cert(pem->ca_crt);
        ca_key = read_key(pem->ca_key);
        if (!ca || !ca_key) {
            rc = -EINVAL;
            goto out;
        }
    }
    key = EVP_EC_gen("P-256");
    x = key ? make_cert(key, spec->organization, spec->common_name, ca, ca_key, spec->days, now,
                        leaf_nids, leaf_values)
            : NULL;
    out.crt = x ? pem_of(write_cert, x) : NULL;
    out.key = x ? pem_of(write_key, key) : NULL;
    if (!out.crt || !out.key)
        goto out;
    if (new_ca) {
        wipe_free(pem->ca_crt);
        wipe_free(pem->ca_key);
        pem->ca_crt = out.ca_crt;
        pem->ca_key = out.ca_key;
        out.ca_crt = out.ca_key = NULL;
    }
    wipe_free(pem->crt);
    wipe_free(pem->key);
    pem->crt = out.crt;
    pem->key = out.key;
    out.crt = out.key = NULL;
    rc = 0;
out:
    certs_pem_free(&out);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return rc;
}

char *certs_base64(const char *text)
{
    size_t n = strlen(text);
    char *out = n <= (size_t)INT32_MAX / 2 ? malloc(4 * ((n + 2) / 3) + 1) : NULL;

    if (out)
        (void)EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)text, (int)n);
    return out;
}

void certs_pem_free(struct certs_pem *pem)
{
    wipe_free(pem->ca_crt);
    wipe_free(pem->ca_key);
    wipe_free(pem->crt);
    wipe_free(pem->key);
    memset(pem, 0, sizeof(*pem));
}
