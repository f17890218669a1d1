/*
 * Test helper: a real etcd (the `etcd` binary on PATH, 3.4) on free loopback ports, in a fresh
 * temporary directory, for tests of the etcd client.
 *
 * A started etcd is stopped and its directory removed by etcd_harness_stop(), and also when
 * the test process exits (atexit) or is killed by SIGINT, SIGTERM, SIGHUP, SIGQUIT or SIGABRT;
 * if the process dies by SIGKILL, etcd gets SIGKILL too (PR_SET_PDEATHSIG) and only the
 * temporary directory ($TMPDIR/mgo-etcd-<pid>-XXXXXX) stays behind, until the next start
 * removes the directories of processes that no longer exist.
 */
#ifndef MGO_TESTS_ETCD_HARNESS_H
#define MGO_TESTS_ETCD_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

struct etcd_harness {
    pid_t pid; /* 0 when not running */
    int paused;
    int tls; /* set by etcd_harness_start_tls */
    int client_port;
    int peer_port;
    char dir[256];     /* the temporary directory: data/, etcd.log, etcd.out, *.pem */
    char endpoint[64]; /* "http://127.0.0.1:<client_port>" (https:// with TLS) */
    /* with TLS: the CA that signed etcd's certificate, and a client certificate and key it
     * accepts (etcd runs with --client-cert-auth) */
    char ca_file[300];
    char cert_file[300];
    char key_file[300];
};

/*
 * Start etcd and wait (up to 20 s) until GET /health reports true. Retries with other ports
 * when etcd exits early (a port taken between the probe and etcd's bind). Returns 0, or -1
 * after printing why to stderr (and the tail of etcd's log).
 */
int etcd_harness_start(struct etcd_harness *h);

/* The same with TLS on the client URL: a fresh CA, a server certificate for IP 127.0.0.1 and
 * a client certificate made with the openssl command, and client certificates required. */
int etcd_harness_start_tls(struct etcd_harness *h);

/* SIGTERM, wait up to 5 s, then SIGKILL; remove the directory. Accepts a stopped harness. */
void etcd_harness_stop(struct etcd_harness *h);

/* SIGSTOP / SIGCONT: a hung etcd that still accepts connections (the kernel does). */
int etcd_harness_pause(struct etcd_harness *h);
int etcd_harness_resume(struct etcd_harness *h);

/* Compact etcd's history up to `revision` (POST /v3/kv/compaction, physical). 0 or -1. */
int etcd_harness_compact(struct etcd_harness *h, int64_t revision);

/* A loopback TCP port with nothing listening on it (bound to port 0, read, closed). */
int etcd_harness_closed_port(void);

#endif
