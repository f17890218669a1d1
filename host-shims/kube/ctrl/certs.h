/*
 * The certificates of mgo_reconcile's "certificates" (docs/abi.md): a self-signed CA and a
 * certificate it signs, judged and issued with OpenSSL's libcrypto. Keys are ECDSA P-256,
 * signatures SHA-256. Nothing here talks to the API server: the controller reads and writes the
 * Secrets (controller.c). Module prefix certs_.
 */
#ifndef MGO_KUBE_CERTS_H
#define MGO_KUBE_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CERTS_MAX_DNS 16

/* What to issue; the strings are borrowed. */
struct certs_spec {
    const char *common_name;
    const char *organization;
    const char *dns[CERTS_MAX_DNS];
    size_t ndns;
    bool server_auth;
    bool client_auth;
    int ca_days;    /* CA validity */
    int days;       /* certificate validity */
    int renew_days; /* renewed this long before expiry */
};

/* PEM text, NUL-terminated; each NULL when absent. Owned (malloc'ed) when returned by
 * certs_issue; certs_judge only reads them. */
struct certs_pem {
    char *ca_crt;
    char *ca_key;
    char *crt;
    char *key;
};

enum certs_verdict {
    CERTS_VALID,   /* nothing to do before *renew_at */
    CERTS_REISSUE, /* the certificate must be issued again by the CA as it is */
    CERTS_NEW_CA,  /* a new CA, and a certificate from it */
};

/*
 * Judge the material `have` at `now` (Unix seconds) against `spec`. A new CA when the CA is
 * missing, unreadable, not CA:TRUE, not matching its key, not valid yet, within renew_days of
 * its end, or cannot sign what certs_issue makes (no subject key identifier, not an EC key); a
 * reissue when the certificate is missing, unreadable, not matching its key, not
 * signed by the CA, not valid yet, within renew_days of its end, marked CA:TRUE, or its subject
 * (CN, O), DNS names (exactly the spec's) or extended key usages (server and client auth as
 * the spec asks) differ. *why (static text) says which; *renew_at is when a valid pair falls
 * due.
 */
enum certs_verdict certs_judge(const struct certs_spec *spec, const struct certs_pem *have,
                               int64_t now, int64_t *renew_at, const char **why);

/*
 * Issue into `pem`: with new_ca, a new CA first (replacing ca_crt and ca_key); then a
 * certificate from pem's CA (replacing crt and key). Valid from an hour before `now`. 0;
 * -EINVAL when the spec cannot be issued (an empty or over-long name: CN 64, O 61, DNS 253
 * bytes, all DNS names together about 2000; a blank, comma, colon or control character in a
 * DNS name; no DNS name; no usage) or the CA in `pem` cannot be used (not
 * readable, no subject key identifier, not an EC key); or -ENOMEM. `pem` is unchanged on
 * failure.
 */
int certs_issue(const struct certs_spec *spec, struct certs_pem *pem, bool new_ca, int64_t now);

/* A DNS name certs_issue can write so that it reads back unchanged: 1 to 253 bytes, no blank,
 * comma, colon or control character (NULL: false). */
bool certs_dns_name_ok(const char *name);

/* Standard base64 of the NUL-terminated `text` (a Secret's data value), malloc'ed; NULL when
 * memory ran out. */
char *certs_base64(const char *text);

/* Free the strings of `pem` (private keys are wiped first). */
void certs_pem_fini(struct certs_pem *pem);

#endif
