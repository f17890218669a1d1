/*
 * The probe/metrics HTTP server (httpd.h): one thread, poll() over the listening socket, a wake
 * pipe and every connection, all non-blocking. A connection reads its head, gets its whole
 * response built at once, writes it, then half-closes and drains what the client still sends (so
 * that closing with unread bytes does not reset the connection before the client has read the
 * answer, as after a 431).
 */
#include "httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long a connection may take to read the rest of the client's bytes after the answer. */
#define DRAIN_MS 1000

/* Connections the kernel completes while HTTPD_MAX_CONNS are being served wait here. */
#define LISTEN_BACKLOG 64

/*
 * How long to leave the listening socket alone after accept ran out of descriptors or memory:
 * the connection stays queued and the socket readable, so polling it at once would spin.
 */
#define ACCEPT_PAUSE_MS 100

enum conn_state { CONN_READ, CONN_WRITE, CONN_DRAIN };

struct conn {
    int fd; /* -1: closed, to be compacted away */
    enum conn_state state;
    int64_t deadline;
    char *in; /* HTTPD_MAX_HEAD bytes + NUL */
    size_t in_len;
    char *out;
    size_t out_len, out_off;
};

struct httpd {
    int listen_fd;
    int wake[2]; /* httpd_stop writes to wake[1] */
    int port;
    pthread_t thread;
    httpd_handler_fn handler;
    void *ctx;
    struct conn conns[HTTPD_MAX_CONNS];
    size_t n_conns;
    int64_t accept_paused_until; /* monotonic ms; accept only from then on */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fd_set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

/* ---- responses ----------------------------------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return ""; /* an empty reason phrase is valid HTTP/1.1 */
    }
}

/* Build the whole answer into c->out; body is borrowed. */
static int conn_respond(struct conn *c, int status, const char *content_type, const char *body,
                        size_t body_len, bool send_body)
{
    char head[512];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                 "Connection: close\r\n\r\n",
                 status, reason_phrase(status), content_type, body_len,
                 status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    if (!send_body)
        body_len = 0;
    c->out = malloc((size_t)n + body_len);
    if (!c->out)
        return -ENOMEM;
    memcpy(c->out, head, (size_t)n);
    if (body_len > 0)
        memcpy(c->out + n, body, body_len);
    c->out_len = (size_t)n + body_len;
    c->out_off = 0;
    c->state = CONN_WRITE;
    c->deadline = monotonic_ms() + HTTPD_TIMEOUT_MS;
    return 0;
}

static int respond_text(struct conn *c, int status, const char *text)
{
    return conn_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), true);
}

static bool is_token_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Ask the handler about path and build its answer. */
static int call_handler(struct httpd *h, struct conn *c, const char *path, bool is_head)
{
    struct httpd_response resp = {.status = 200, .content_type = "text/plain; charset=utf-8"};
    int r;

    r = h->handler(h->ctx, path, is_head, &resp);
    if (r < 0 || resp.status < 100 || resp.status > 599 || !resp.content_type ||
        (resp.body_len > 0 && !resp.body) || strpbrk(resp.content_type, "\r\n")) {
        free(resp.body);
        return respond_text(c, 500, "internal server error\n");
    }
    r = conn_respond(c, resp.status, resp.content_type, resp.body, resp.body_len, !is_head);
    free(resp.body);
    return r;
}

/* The head is complete in c->in (NUL-terminated): parse the request line and answer. */
static int serve_request(struct httpd *h, struct conn *c)
{
    char *line = c->in, *sp1, *sp2, *end, *path;
    size_t mlen;

    end = strchr(line, '\n');
    if (end > line && end[-1] == '\r')
        end--;
    *end = '\0';
    sp1 = strchr(line, ' ');
    if (!sp1)
        return respond_text(c, 400, "bad request\n");
    mlen = (size_t)(sp1 - line);
    for (size_t i = 0; i < mlen; i++)
        if (!is_token_char(line[i]))
            return respond_text(c, 400, "bad request\n");
    path = sp1 + 1;
    sp2 = strchr(path, ' ');
    if (mlen == 0 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || path[0] != '/')
        return respond_text(c, 400, "bad request\n");
    *sp2 = '\0';
    path[strcspn(path, "?#")] = '\0';
    if (mlen == 3 && memcmp(line, "GET", 3) == 0)
        return call_handler(h, c, path, false);
    if (mlen == 4 && memcmp(line, "HEAD", 4) == 0)
        return call_handler(h, c, path, true);
    return respond_text(c, 405, "method not allowed\n");
}

/* ---- connections --------------------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        (void)close(c->fd); /* nothing to do about a failed close of a socket */
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = NULL;
    c->out = NULL;
}

static void conn_read(struct httpd *h, struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, HTTPD_MAX_HEAD - c->in_len, 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c); /* the client went away before its request was complete */
        return;
    }
    c->in_len += (size_t)n;
    c->in[c->in_len] = '\0';
    if (memchr(c->in, '\0', c->in_len)) {
        if (respond_text(c, 400, "bad request\n") < 0)
            conn_close(c);
        return;
    }
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
        if (serve_request(h, c) < 0)
            conn_close(c);
        return;
    }
    if (c->in_len >= HTTPD_MAX_HEAD && respond_text(c, 431, "request head too large\n") < 0)
        conn_close(c);
}

static void conn_write(struct conn *c)
{
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->out_off += (size_t)n;
    if (c->out_off < c->out_len)
        return;
    (void)shutdown(c->fd, SHUT_WR); /* on failure the drain below ends at EOF or deadline */
    c->state = CONN_DRAIN;
    c->deadline = monotonic_ms() + DRAIN_MS;
}

static void conn_drain(struct conn *c)
{
    char scratch[4096];
    ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0)
        conn_close(c);
}

static void accept_all(struct httpd *h)
{
    while (h->n_conns < HTTPD_MAX_CONNS) {
        struct conn *c;
        int fd = accept(h->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                h->accept_paused_until = monotonic_ms() + ACCEPT_PAUSE_MS;
            return; /* EAGAIN, or a connection that failed before accept: poll again */
        }
        c = &h->conns[h->n_conns];
        *c = (struct conn){.fd = fd, .state = CONN_READ};
        c->in = malloc(HTTPD_MAX_HEAD + 1);
        if (!c->in || fd_set_flags(fd) < 0) {
            conn_close(c);
            continue;
        }
        c->deadline = monotonic_ms() + HTTPD_TIMEOUT_MS;
        h->n_conns++;
    }
}

static void compact_conns(struct httpd *h)
{
    size_t j = 0;

    for (size_t i = 0; i < h->n_conns; i++)
        if (h->conns[i].fd >= 0)
            h->conns[j++] = h->conns[i];
    h->n_conns = j;
}

/* Poll timeout: until the nearest connection deadline or the end of an accept pause; -1 if
 * there is neither. */
static int poll_timeout(const struct httpd *h, int64_t now)
{
    int64_t t = h->accept_paused_until > now ? h->accept_paused_until - now : -1;

    for (size_t i = 0; i < h->n_conns; i++) {
        int64_t left = h->conns[i].deadline - now;
        if (left < 0)
            left = 0;
        if (t < 0 || left < t)
            t = left;
    }
    return (int)t;
}

static void *serve(void *arg)
{
    struct httpd *h = arg;
    struct pollfd pfd[HTTPD_MAX_CONNS + 2];

    for (;;) {
        size_t n = h->n_conns;
        int64_t now = monotonic_ms();
        bool accepting = n < HTTPD_MAX_CONNS && now >= h->accept_paused_until;
        int r;

        pfd[0] = (struct pollfd){.fd = h->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = h->listen_fd, .events = accepting ? POLLIN : 0};
        for (size_t i = 0; i < n; i++)
            pfd[i + 2] = (struct pollfd){
                .fd = h->conns[i].fd, .events = h->conns[i].state == CONN_WRITE ? POLLOUT : POLLIN};
        r = poll(pfd, n + 2, poll_timeout(h, now));
        if (r < 0 && errno != EINTR)
            break; /* EFAULT/EINVAL/ENOMEM: nothing sensible left to do */
        if (r > 0 && pfd[0].revents)
            break;
        for (size_t i = 0; r > 0 && i < n; i++) {
            struct conn *c = &h->conns[i];
            if (!pfd[i + 2].revents)
                continue;
            if (c->state == CONN_READ)
                conn_read(h, c);
            else if (c->state == CONN_WRITE)
                conn_write(c);
            else
                conn_drain(c);
        }
        now = monotonic_ms();
        for (size_t i = 0; i < n; i++)
            if (h->conns[i].fd >= 0 && now >= h->conns[i].deadline)
                conn_close(&h->conns[i]); /* too slow: a silent client must not pin a slot */
        compact_conns(h);
        if (r > 0 && accepting && pfd[1].revents)
            accept_all(h);
    }
    for (size_t i = 0; i < h->n_conns; i++)
        conn_close(&h->conns[i]);
    h->n_conns = 0;
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------------ */

/* Split bind_addr into host (NULL: any IPv4 address) and port digits, in buf. */
static int parse_bind(const char *addr, char *buf, size_t size, const char **host,
                      const char **port)
{
    char *colon, *end;
    long p;

    if (strlen(addr) >= size)
        return -EINVAL;
    memcpy(buf, addr, strlen(addr) + 1);
    if (buf[0] == '[') {
        char *bracket = strchr(buf, ']');
        if (!bracket || bracket[1] != ':')
            return -EINVAL;
        *bracket = '\0';
        *host = buf + 1;
        *port = bracket + 2;
    } else {
        colon = strrchr(buf, ':');
        if (colon && strchr(buf, ':') != colon)
            return -EINVAL; /* a bare IPv6 address: brackets are required */
        *host = NULL;
        *port = buf;
        if (colon) {
            *colon = '\0';
            *host = buf[0] ? buf : NULL;
            *port = colon + 1;
        }
    }
    if (**port < '0' || **port > '9')
        return -EINVAL;
    errno = 0;
    p = strtol(*port, &end, 10);
    if (errno != 0 || *end != '\0' || p < 0 || p > 65535)
        return -EINVAL;
    return 0;
}

static int listen_on(const struct addrinfo *ai, int *ret)
{
    int one = 1, fd, r;

    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    if ((r = fd_set_flags(fd)) < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        r = -errno;
        goto fail;
    }
    *ret = fd;
    return 0;
fail:
    (void)close(fd);
    return r;
}

static int open_listener(struct httpd *h, const char *bind_addr)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL, *ai;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    const char *host, *port;
    char buf[300];
    int r;

    r = parse_bind(bind_addr, buf, sizeof(buf), &host, &port);
    if (r < 0)
        return r;
    hints.ai_family = bind_addr[0] == '[' ? AF_INET6 : AF_INET;
    r = getaddrinfo(host, port, &hints, &res);
    if (r != 0)
        return r == EAI_MEMORY ? -ENOMEM : r == EAI_NONAME ? -ENOENT : -EINVAL;
    r = -EINVAL;
    for (ai = res; ai; ai = ai->ai_next)
        if ((r = listen_on(ai, &h->listen_fd)) == 0)
            break;
    freeaddrinfo(res);
    if (r < 0)
        return r;
    if (getsockname(h->listen_fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
        h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int httpd_start(struct httpd **ret, const char *bind_addr, httpd_handler_fn handler, void *ctx)
{
    struct httpd *h;
    int r;

    if (!ret || !bind_addr || !handler)
        return -EINVAL;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->listen_fd = h->wake[0] = h->wake[1] = -1;
    h->handler = handler;
    h->ctx = ctx;
    r = open_listener(h, bind_addr);
    if (r < 0)
        goto fail;
    if (pipe(h->wake) < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = fd_set_flags(h->wake[0])) < 0 || (r = fd_set_flags(h->wake[1])) < 0)
        goto fail;
    r = -pthread_create(&h->thread, NULL, serve, h);
    if (r < 0)
        goto fail;
    *ret = h;
    return 0;
fail:
    if (h->listen_fd >= 0)
        (void)close(h->listen_fd);
    if (h->wake[0] >= 0)
        (void)close(h->wake[0]);
    if (h->wake[1] >= 0)
        (void)close(h->wake[1]);
    free(h);
    return r;
}

int httpd_port(const struct httpd *h)
{
    return h ? h->port : 0;
}

void httpd_stop(struct httpd *h)
{
    char one = 1;

    if (!h)
        return;
    /* the pipe is empty (nobody else writes), so this cannot block or fail short */
    while (write(h->wake[1], &one, 1) < 0 && errno == EINTR)
        ;
    (void)pthread_join(h->thread, NULL); /* fails only for a thread that is not ours */
    (void)close(h->listen_fd);
    (void)close(h->wake[0]);
    (void)close(h->wake[1]);
    free(h);
}
