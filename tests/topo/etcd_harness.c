/* A real etcd for tests (see etcd_harness.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "etcd_harness.h"
#include "topo/curl_api.h"

#define HARNESS_MAX       8
#define HEALTH_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS   5000
#define START_ATTEMPTS    5

/* The running harnesses, for the exit and signal handlers (test code: global state is fine). */
static struct etcd_harness *volatile running[HARNESS_MAX];
static int handlers_installed;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* rm -rf dir, with async-signal-safe calls only (used from the signal handler). */
static void remove_dir(const char *dir)
{
    pid_t pid;
    int status;

    if (!dir[0])
        return;
    pid = fork();
    if (pid == 0) {
        char *const argv[] = {"rm", "-rf", (char *)dir, NULL};
        execv("/bin/rm", argv);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
}

/* Kill and reap at once (signal and exit paths). */
static void kill_now(struct etcd_harness *h)
{
    int status;

    if (h->pid > 0) {
        kill(h->pid, SIGKILL);
        while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
            ;
        h->pid = 0;
    }
    remove_dir(h->dir);
    h->dir[0] = '\0';
}

static void on_exit_stop_all(void)
{
    for (int i = 0; i < HARNESS_MAX; i++) {
        struct etcd_harness *h = running[i];
        if (h) {
            running[i] = NULL;
            kill_now(h);
        }
    }
}

static void on_signal(int sig)
{
    on_exit_stop_all();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void)
{
    /* cmocka catches SIGSEGV and the like only while a test runs, and restores these after */
    static const int sigs[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                               SIGSEGV, SIGBUS,  SIGFPE, SIGILL};
    struct sigaction sa;

    if (handlers_installed)
        return;
    handlers_installed = 1;
    atexit(on_exit_stop_all);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
}

static void track(struct etcd_harness *h, int on)
{
    for (int i = 0; i < HARNESS_MAX; i++) {
        if (on && !running[i]) {
            running[i] = h;
            return;
        }
        if (!on && running[i] == h)
            running[i] = NULL;
    }
}

int etcd_harness_closed_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* ---- HTTP through the library's libcurl table ------------------------------------------- */

struct body {
    char text[4096];
    size_t len;
};

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct body *b = user;
    size_t n = size * nmemb;
    size_t room = sizeof(b->text) - 1 - b->len;
    memcpy(b->text + b->len, ptr, n < room ? n : room);
    b->len += n < room ? n : room;
    b->text[b->len] = '\0';
    return n;
}

/* GET (post NULL) or POST to the harness; 0 with the HTTP status and the body, or -1. */
static int http(const struct etcd_harness *h, const char *path, const char *post, long *status,
                struct body *b)
{
    const struct curl_api *api;
    char url[128];
    CURL *easy;
    CURLcode rc;

    if (curl_api_get(&api) < 0) {
        fprintf(stderr, "etcd_harness: %s\n", curl_api_error());
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s", h->endpoint, path);
    easy = api->easy_init();
    if (!easy)
        return -1;
    b->len = 0;
    b->text[0] = '\0';
    api->easy_setopt(easy, CURLOPT_URL, url);
    api->easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    api->easy_setopt(easy, CURLOPT_PROXY, "");
    api->easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
    api->easy_setopt(easy, CURLOPT_WRITEFUNCTION, body_write);
    api->easy_setopt(easy, CURLOPT_WRITEDATA, b);
    if (h->tls) {
        api->easy_setopt(easy, CURLOPT_CAINFO, h->ca_file);
        api->easy_setopt(easy, CURLOPT_SSLCERT, h->cert_file);
        api->easy_setopt(easy, CURLOPT_SSLKEY, h->key_file);
    }
    if (post)
        api->easy_setopt(easy, CURLOPT_POSTFIELDS, post);
    rc = api->easy_perform(easy);
    if (rc == CURLE_OK)
        api->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
    api->easy_cleanup(easy);
    return rc == CURLE_OK ? 0 : -1;
}

static int healthy(const struct etcd_harness *h)
{
    struct body b;
    long status = 0;
    return http(h, "/health", NULL, &status, &b) == 0 && status == 200 &&
           strstr(b.text, "\"health\":\"true\"") != NULL;
}

/* ---- start and stop --------------------------------------------------------------------- */

static void print_log_tail(const struct etcd_harness *h)
{
    static const char *const names[] = {"etcd.log", "etcd.out"};
    char path[300], buf[2048];

    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", h->dir, names[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
            rewind(f);
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        fprintf(stderr, "--- %s (tail)\n%s\n", path, buf);
    }
}

static pid_t spawn(const struct etcd_harness *h)
{
    char data[300], log[300], out[300], peer[64], cluster[80];
    char server_cert[300], server_key[300];
    char *argv[40];
    int n = 0;
    pid_t parent = getpid();
    pid_t pid;

    snprintf(data, sizeof(data), "%s/data", h->dir);
    snprintf(log, sizeof(log), "%s/etcd.log", h->dir);
    snprintf(out, sizeof(out), "%s/etcd.out", h->dir);
    snprintf(server_cert, sizeof(server_cert), "%s/server.pem", h->dir);
    snprintf(server_key, sizeof(server_key), "%s/server-key.pem", h->dir);
    snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", h->peer_port);
    snprintf(cluster, sizeof(cluster), "e0=%s", peer);
#define ARG(a) (argv[n++] = (char *)(a))
    ARG("etcd");
    ARG("--name");
    ARG("e0");
    ARG("--data-dir");
    ARG(data);
    ARG("--listen-client-urls");
    ARG(h->endpoint);
    ARG("--advertise-client-urls");
    ARG(h->endpoint);
    ARG("--listen-peer-urls");
    ARG(peer);
    ARG("--initial-advertise-peer-urls");
    ARG(peer);
    ARG("--initial-cluster");
    ARG(cluster);
    ARG("--initial-cluster-state");
    ARG("new");
    ARG("--logger");
    ARG("zap");
    ARG("--log-outputs");
    ARG(log);
    ARG("--log-level");
    ARG("warn");
    if (h->tls) {
        ARG("--cert-file");
        ARG(server_cert);
        ARG("--key-file");
        ARG(server_key);
        ARG("--trusted-ca-file");
        ARG(h->ca_file);
        ARG("--client-cert-auth");
    }
    ARG(NULL);
#undef ARG
    pid = fork();
    if (pid != 0)
        return pid;
    /* the child: dies with the test process, whatever kills it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null_fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || null_fd < 0)
        _exit(126);
    dup2(null_fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execvp("etcd", argv);
    fprintf(stderr, "exec etcd: %s\n", strerror(errno));
    _exit(127);
}

/* Wait for health; 0, or -1 when etcd exited (*ret_exited) or the time ran out. */
static int wait_healthy(struct etcd_harness *h, int *ret_exited)
{
    int64_t deadline = now_ms() + HEALTH_TIMEOUT_MS;
    int status;

    *ret_exited = 0;
    while (now_ms() < deadline) {
        if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
            h->pid = 0;
            *ret_exited = 1;
            return -1;
        }
        if (healthy(h))
            return 0;
        sleep_ms(50);
    }
    return -1;
}

/* Remove the directories of earlier test processes that died by SIGKILL (their etcd died with
 * them): mgo-etcd-<pid>-* whose process no longer exists. */
static void remove_stale_dirs(const char *tmp)
{
    DIR *d = opendir(tmp);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long pid;
        if (strncmp(e->d_name, "mgo-etcd-", 9) != 0)
            continue;
        errno = 0;
        pid = strtol(e->d_name + 9, &end, 10);
        if (errno != 0 || end == e->d_name + 9 || *end != '-' || pid <= 0 ||
            pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmp, e->d_name);
        remove_dir(path);
    }
    closedir(d);
}

/* A CA, a server certificate for 127.0.0.1 (also good as a client: etcd's gateway dials etcd
 * with it) and a client certificate, made by the openssl command in h->dir. */
static int make_certificates(struct etcd_harness *h)
{
    static const char script[] =
        "set -e; cd \"$1\"\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; }\n"
        "key ca-key.pem; key server-key.pem; key client-key.pem\n"
        "openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj /CN=mgo-test-ca\n"
        "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' "
        ">server.ext\n"
        "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n"
        "for who in server client; do\n"
        "  openssl req -new -key $who-key.pem -out $who.csr -subj /CN=mgo-test-$who\n"
        "  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
        "-days 2 -extfile $who.ext -out $who.pem\n"
        "done\n";
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        if (null_fd >= 0) {
            dup2(null_fd, 1);
            dup2(null_fd, 2);
        }
        execl("/bin/sh", "sh", "-c", script, "sh", h->dir, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "etcd_harness: making certificates with openssl failed (status %d)\n",
                status);
        return -1;
    }
    snprintf(h->ca_file, sizeof(h->ca_file), "%s/ca.pem", h->dir);
    snprintf(h->cert_file, sizeof(h->cert_file), "%s/client.pem", h->dir);
    snprintf(h->key_file, sizeof(h->key_file), "%s/client-key.pem", h->dir);
    return 0;
}

static int start(struct etcd_harness *h, int tls)
{
    const char *tmp = getenv("TMPDIR");

    if (!tmp || !*tmp)
        tmp = "/tmp";
    memset(h, 0, sizeof(*h));
    h->tls = tls;
    install_handlers();
    remove_stale_dirs(tmp);
    snprintf(h->dir, sizeof(h->dir), "%s/mgo-etcd-%ld-XXXXXX", tmp, (long)getpid());
    if (!mkdtemp(h->dir)) {
        fprintf(stderr, "etcd_harness: mkdtemp %s: %s\n", h->dir, strerror(errno));
        h->dir[0] = '\0';
        return -1;
    }
    track(h, 1);
    if (tls && make_certificates(h) < 0) {
        etcd_harness_stop(h);
        return -1;
    }
    for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
        int exited;
        h->client_port = etcd_harness_closed_port();
        h->peer_port = etcd_harness_closed_port();
        if (h->client_port <= 0 || h->peer_port <= 0 || h->client_port == h->peer_port)
            continue;
        snprintf(h->endpoint, sizeof(h->endpoint), "%s://127.0.0.1:%d", h->tls ? "https" : "http",
                 h->client_port);
        h->pid = spawn(h);
        if (h->pid < 0) {
            fprintf(stderr, "etcd_harness: fork: %s\n", strerror(errno));
            h->pid = 0;
            break;
        }
        if (wait_healthy(h, &exited) == 0)
            return 0;
        if (!exited) {
            fprintf(stderr, "etcd_harness: etcd at %s not healthy after %d ms\n", h->endpoint,
                    HEALTH_TIMEOUT_MS);
            break;
        }
        /* most likely a port taken meanwhile: start over in a clean data directory */
        fprintf(stderr, "etcd_harness: etcd exited during start (attempt %d)\n", attempt + 1);
        print_log_tail(h);
        char data[300];
        snprintf(data, sizeof(data), "%s/data", h->dir);
        remove_dir(data);
    }
    print_log_tail(h);
    etcd_harness_stop(h);
    return -1;
}

int etcd_harness_start(struct etcd_harness *h)
{
    return start(h, 0);
}

int etcd_harness_start_tls(struct etcd_harness *h)
{
    return start(h, 1);
}

void etcd_harness_stop(struct etcd_harness *h)
{
    int status;

    if (h->pid > 0) {
        kill(h->pid, SIGCONT);
        kill(h->pid, SIGTERM);
        int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
        pid_t r;
        while ((r = waitpid(h->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
            sleep_ms(20);
        if (r == 0) {
            fprintf(stderr, "etcd_harness: etcd %d ignored SIGTERM for %d ms: SIGKILL\n",
                    (int)h->pid, STOP_TIMEOUT_MS);
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &status, 0);
        }
        h->pid = 0;
    }
    h->paused = 0;
    remove_dir(h->dir);
    h->dir[0] = '\0';
    track(h, 0);
}

/* Are all threads of `pid` stopped? A SIGSTOP reaches a multi-threaded process's threads
 * asynchronously: until they all show state T, a request can still be served. */
static int all_threads_stopped(pid_t pid)
{
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int stopped = 1;
    struct dirent *e;
    while (stopped && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char stat_path[sizeof(path) + 280], buf[512];
        (void)snprintf(stat_path, sizeof(stat_path), "%s/%s/stat", path, e->d_name);
        FILE *f = fopen(stat_path, "r");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
            fclose(f);
        buf[n] = '\0';
        const char *close_paren = strrchr(buf, ')');
        /* "pid (comm) S ...": the state follows the command name */
        if (close_paren && close_paren[1] == ' ' && close_paren[2] != 'T' && close_paren[2] != 't')
            stopped = 0;
    }
    closedir(d);
    return stopped;
}

int etcd_harness_pause(struct etcd_harness *h)
{
    if (h->pid <= 0 || kill(h->pid, SIGSTOP) != 0)
        return -1;
    h->paused = 1;
    for (int i = 0; i < 400 && !all_threads_stopped(h->pid); i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int etcd_harness_resume(struct etcd_harness *h)
{
    if (h->pid <= 0 || kill(h->pid, SIGCONT) != 0)
        return -1;
    h->paused = 0;
    return 0;
}

int etcd_harness_compact(struct etcd_harness *h, int64_t revision)
{
    char req[80];
    struct body b;
    long status = 0;

    snprintf(req, sizeof(req), "{\"revision\":\"%" PRId64 "\",\"physical\":true}", revision);
    if (http(h, "/v3/kv/compaction", req, &status, &b) < 0 || status != 200) {
        fprintf(stderr, "etcd_harness: compaction at %" PRId64 ": HTTP %ld %s\n", revision, status,
                b.text);
        return -1;
    }
    return 0;
}
