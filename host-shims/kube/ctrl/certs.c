/*
 * Certificates with libcrypto (certs.h). The CA is "<organization> CA", CA:TRUE, key usages
 * keyCertSign, cRLSign and digitalSignature; the certificate carries the spec's subject, DNS
 * names and extended key usages, CA:FALSE, digitalSignature (keyEncipherment has no meaning for
 * an EC key, RFC 5480 section 3). Serial numbers are 127 random bits. Every function leaves the
 * thread's OpenSSL error queue empty (the worker's TLS calls share it).
 */
#include "certs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
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

/* An encrypted key is unreadable: without this, OpenSSL would prompt on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static EVP_PKEY *read_key(const char *pem)
{
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;

    BIO_free(b);
    return k;
}

/* An ASN.1 time in Unix seconds, or `fallback` when it cannot be read. */
static int64_t unix_time(const ASN1_TIME *t, int64_t fallback)
{
    struct tm tm;

    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return fallback;
    return (int64_t)timegm(&tm);
}

/* notAfter, or 0 (long past) when it cannot be read. */
static int64_t not_after(const X509 *x)
{
    return unix_time(X509_get0_notAfter(x), 0);
}

/* The certificate's validity has begun by `now` (an unreadable notBefore has not). */
static bool started(const X509 *x, int64_t now)
{
    return unix_time(X509_get0_notBefore(x), INT64_MAX) <= now;
}

/* basicConstraints says CA:TRUE (X509_check_ca also takes a v1 self-signed certificate). */
static bool is_ca(X509 *x)
{
    return (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
}

/* The string `v` (may be NULL) holds exactly `want`, byte for byte (length included). */
static bool asn1_is(const ASN1_STRING *v, const char *want)
{
    return v && (size_t)ASN1_STRING_length(v) == strlen(want) &&
           memcmp(ASN1_STRING_get0_data(v), want, strlen(want)) == 0;
}

/* The subject has exactly one entry of `nid`, equal to `want`. */
static bool subject_is(X509 *x, int nid, const char *want)
{
    const X509_NAME *n = X509_get_subject_name(x);
    int at = X509_NAME_get_index_by_NID(n, nid, -1);

    return at >= 0 && X509_NAME_get_index_by_NID(n, nid, at) < 0 &&
           asn1_is(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, at)), want);
}

static bool has_dns_name(const GENERAL_NAMES *names, const char *want)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS && asn1_is(g->d.dNSName, want))
            return true;
    }
    return false;
}

/* The subject alternative names are the spec's DNS names, each once, and nothing else (the
 * spec's names are distinct: the library lists each once). */
static bool dns_names_are(X509 *x, const struct certs_spec *spec)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool ok = names && (size_t)sk_GENERAL_NAME_num(names) == spec->ndns;

    for (size_t j = 0; ok && j < spec->ndns; j++)
        ok = has_dns_name(names, spec->dns[j]);
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
    else if (!started(x, now))
        *why = "the certificate is not valid yet";
    else if (end - (int64_t)spec->renew_days * DAY <= now)
        *why = "the certificate is due for renewal";
    else if (!subject_is(x, NID_commonName, spec->common_name) ||
             !subject_is(x, NID_organizationName, spec->organization) || !dns_names_are(x, spec) ||
             !usages_are(x, spec) || is_ca(x))
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
    else if (!is_ca(ca))
        *why = "the CA certificate is not a CA";
    else if (X509_check_private_key(ca, ca_key) != 1)
        *why = "the CA's key does not match it";
    else if (!started(ca, now))
        *why = "the CA is not valid yet";
    else if (!X509_get0_subject_key_id(ca) || !EVP_PKEY_is_a(ca_key, "EC"))
        *why = "the CA cannot sign what mgo issues (no subject key identifier, or not an EC key)";
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
    ERR_clear_error();
    return v;
}

/* ---- issuing -------------------------------------------------------------------------------- */

static char *pem_of(int (*encode)(BIO *, const void *), const void *obj)
{
    BIO *b = BIO_new(BIO_s_secmem()); /* cleared when freed: it holds private keys */
    char *data = NULL, *out = NULL;
    long n;

    if (b && encode(b, obj) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
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
 * issuer is NULL), valid `days` from an hour before `now`; extensions nids[i] with values[i],
 * up to nid 0. */
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

/* 1 to max bytes; certificates carry their names as UTF-8 strings of bounded length. */
static bool name_ok(const char *s, size_t max)
{
    return s && s[0] && strlen(s) <= max;
}

/* A DNS name as the extension's text reads it back unchanged: no blank (trimmed), comma (the
 * next name) or colon (a type prefix), nothing below 0x21. */
bool certs_dns_name_ok(const char *s)
{
    if (!name_ok(s, 253))
        return false;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == ',' || *c == ':' || *c == 0x7f)
            return false;
    return true;
}

/* A new P-256 key and a certificate for it (make_cert: self-signed when issuer is NULL), both
 * also as PEM. false when anything failed (what was made is still returned, to be freed). */
static bool new_pair(const char *org, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int days,
                     int64_t now, const int *nids, const char *const *values, EVP_PKEY **key,
                     X509 **x, char **crt_pem, char **key_pem)
{
    *key = EVP_EC_gen("P-256");
    *x = *key
             ? make_cert(*key, org, cn, issuer, issuer ? issuer_key : *key, days, now, nids, values)
             : NULL;
    *crt_pem = *x ? pem_of(write_cert, *x) : NULL;
    *key_pem = *x ? pem_of(write_key, *key) : NULL;
    return *crt_pem && *key_pem;
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
    const char *leaf_values[] = {"critical,CA:FALSE", "critical,digitalSignature", eku, san, "hash",
                                 "keyid:always"};
    struct certs_pem out = {0};
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *x = NULL;
    int rc = -ENOMEM;

    /* the CA's common name is "<organization> CA" */
    if (!name_ok(spec->common_name, ub_common_name) ||
        !name_ok(spec->organization, ub_organization_name - 3) || spec->ndns == 0 ||
        (!spec->server_auth && !spec->client_auth))
        return -EINVAL;
    for (size_t i = 0; i < spec->ndns; i++) {
        size_t used = strlen(san);
        int n = snprintf(san + used, sizeof(san) - used, "%sDNS:%s", i ? "," : "", spec->dns[i]);
        if (n < 0 || (size_t)n >= sizeof(san) - used || !certs_dns_name_ok(spec->dns[i]))
            return -EINVAL;
    }
    (void)snprintf(eku, sizeof(eku), "%s%s%s", spec->server_auth ? "serverAuth" : "",
                   spec->server_auth && spec->client_auth ? "," : "",
                   spec->client_auth ? "clientAuth" : "");
    (void)snprintf(ca_cn, sizeof(ca_cn), "%s CA", spec->organization);
    if (new_ca && !new_pair(spec->organization, ca_cn, NULL, NULL, spec->ca_days, now, ca_nids,
                            ca_values, &ca_key, &ca, &out.ca_crt, &out.ca_key))
        goto out;
    if (!new_ca) {
        ca = read_cert(pem->ca_crt);
        ca_key = read_key(pem->ca_key);
        if (!ca || !ca_key || !X509_get0_subject_key_id(ca) || !EVP_PKEY_is_a(ca_key, "EC")) {
            rc = -EINVAL;
            goto out;
        }
    }
    if (!new_pair(spec->organization, spec->common_name, ca, ca_key, spec->days, now, leaf_nids,
                  leaf_values, &key, &x, &out.crt, &out.key))
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
    certs_pem_fini(&out);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    ERR_clear_error();
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

void certs_pem_fini(struct certs_pem *pem)
{
    wipe_free(pem->ca_crt);
    wipe_free(pem->ca_key);
    wipe_free(pem->crt);
    wipe_free(pem->key);
    memset(pem, 0, sizeof(*pem));
}
