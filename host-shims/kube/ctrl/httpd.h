/*
 * httpd: the minimal HTTP/1.1 server of mgo-kube's probes and metrics (/healthz, /readyz,
 * /metrics). Module prefix httpd_.
 *
 * One background thread serves every connection with poll() over non-blocking sockets, so a
 * slow or silent client does not hold up the others. Each connection carries one request and is
 * closed after the response (Connection: close). Only GET and HEAD are served (405 with
 * "Allow: GET, HEAD" otherwise); the request head (request line and headers) is limited to
 * HTTPD_MAX_HEAD bytes (431 beyond); a malformed request line gets 400; a connection that has
 * not delivered its head within HTTPD_TIMEOUT_MS of its accept (however it dribbles bytes) is
 * closed without an answer. At most HTTPD_MAX_CONNS connections are served at once; further ones
 * wait in the listen backlog, as do connections that arrive while the process is out of
 * descriptors (accept is then retried every 100 ms rather than in a busy loop). Request bodies
 * are not read.
 *
 * Threads. The handler runs on the server's thread, one request at a time: it must not block
 * for long and must not call httpd_stop. httpd_start and httpd_stop are called by the owner's
 * thread; httpd_port from any thread.
 */
#ifndef MGO_KUBE_HTTPD_H
#define MGO_KUBE_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_HEAD   8192
#define HTTPD_TIMEOUT_MS 5000
#define HTTPD_MAX_CONNS  64

struct httpd;

/*
 * What the handler answers. httpd passes it zeroed except status = 200 and content_type =
 * "text/plain; charset=utf-8". content_type must outlive the server (a string literal); body is
 * malloc'd by the handler (or NULL for an empty body) and freed by httpd, also when the handler
 * fails. For HEAD requests the body is not sent, but Content-Length says its length.
 */
struct httpd_response {
    int status; /* 100..599 */
    const char *content_type;
    char *body;
    size_t body_len;
};

/*
 * Answer a request for path (the request target without its query or fragment, e.g.
 * "/healthz"; borrowed for the call). is_head is nonzero for HEAD. Return 0 with resp filled, or a
 * negative code: httpd then answers 500 and frees resp->body.
 */
typedef int (*httpd_handler_fn)(void *ctx, const char *path, int is_head,
                                struct httpd_response *resp);

/*
 * Listen on bind_addr and start the server thread. bind_addr: ":PORT" or "PORT" (every IPv4
 * address), "HOST:PORT" with an IPv4 address or a host name (its first IPv4 address that can be
 * bound), "[IPV6]:PORT" (an IPv6 address or name); PORT is decimal, 0 lets the kernel choose
 * (httpd_port tells which). SO_REUSEADDR is set. handler and ctx are used on the
 * server thread until httpd_stop returns. On success *ret owns the server (httpd_stop).
 * -EINVAL: bad arguments or an unparsable address; -ENOMEM; the negative errno of socket, bind,
 * listen or pthread_create (e.g. -EADDRINUSE); -ENOENT if the host name does not resolve.
 */
int httpd_start(struct httpd **ret, const char *bind_addr, httpd_handler_fn handler, void *ctx);

/* The port the server listens on (host byte order); 0 for NULL. */
int httpd_port(const struct httpd *h);

/*
 * Stop the server: wake and join its thread, close the listening socket and every open
 * connection (unanswered requests are dropped), free everything. Accepts NULL. Blocks until the
 * thread has finished the handler call it may be in.
 */
void httpd_stop(struct httpd *h);

#endif
