"""A TLS-terminating HTTP/1.1 proxy in front of the harness's kube-apiserver, for fault tests of
mgo-kube (standard library only; runs in the test's process, one thread per connection).

Its certificate is made with `openssl` at run time in a temporary directory; kubeconfig() writes
a kubeconfig that trusts it and points at the proxy, with the harness's token. Every request is
forwarded on a fresh connection to the apiserver (responses, watches included, are streamed
back chunked), except what the faults set with set_faults():
  fail_lease  every request on a Lease is answered 503 here, never forwarded;
  hold_s      every non-Lease write (POST, PUT, PATCH, DELETE) is held HOLD_S seconds from its
              arrival before it is forwarded; if the client closes the connection meanwhile it
              is dropped, never forwarded.
One record per request (watches included) in records(): method, path, lease, write, t_in
(arrival), outcome (forwarded, lease503, dropped: the client went away while it was held),
t_fwd (sent to the apiserver), code, t_end. Times are time.time().
"""

import http.client
import http.server
import os
import select
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

WRITES = ("POST", "PUT", "PATCH", "DELETE")
_RDHUP = getattr(select, "POLLRDHUP", 0x2000)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1 / localhost: (cert path, key path)."""
    crt, key = os.path.join(directory, "proxy.crt"), os.path.join(directory, "proxy.key")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=mgo-test-kproxy", "-keyout", key, "-out", crt,
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-addext", "basicConstraints=critical,CA:TRUE"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl req: exit {p.returncode}: {p.stderr}")
    return crt, key


def _client_gone(sock):
    """True when the peer closed or reset the connection (poll, nothing read)."""
    try:
        po = select.poll()
        po.register(sock.fileno(), select.POLLIN | _RDHUP)
        for _, ev in po.poll(0):
            if ev & (_RDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
        return False
    except (OSError, ValueError):
        return True


class Proxy:
    def __init__(self, upstream, ca_file, token):
        u = urllib.parse.urlsplit(upstream)
        self.up_host, self.up_port = u.hostname, u.port
        self.up_ctx = ssl.create_default_context(cafile=ca_file)
        self.token = token
        self.lock = threading.Lock()
        self.faults = {"fail_lease": False, "hold_s": 0.0}
        self._records = []
        self.dir = tempfile.mkdtemp(prefix="kproxy.")
        self.cert, key = make_cert(self.dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        ctx.set_alpn_protocols(["http/1.1"])
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_any(self):
                proxy._handle(self)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_any

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request, client_address):
                # the TLS handshake in the connection's thread, not in the accept loop
                try:
                    tls = ctx.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                try:
                    super().finish_request(tls, client_address)
                finally:
                    try:
                        tls.close()
                    except OSError:
                        pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # ---- control and records --------------------------------------------------------------

    def set_faults(self, **kw):
        with self.lock:
            self.faults.update(kw)

    def records(self):
        with self.lock:
            return [dict(r) for r in self._records]

    def kubeconfig(self, path):
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
  - name: kproxy
    cluster:
      server: https://127.0.0.1:{self.port}
      certificate-authority: {self.cert}
users:
  - name: mgo-admin
    user:
      token: {self.token}
contexts:
  - name: kproxy
    context:
      cluster: kproxy
      user: mgo-admin
      namespace: default
current-context: kproxy
""")
        os.chmod(path, 0o600)
        return path

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- one request ----------------------------------------------------------------------

    def _handle(self, h):
        rec = {"t_in": time.time(), "method": h.command, "path": h.path,
               "lease": "/leases" in h.path.split("?")[0], "outcome": None}
        rec["write"] = h.command in WRITES
        with self.lock:
            self._records.append(rec)
            faults = dict(self.faults)
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else None
        if rec["lease"] and faults["fail_lease"]:
            msg = (b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                   b'"message":"kproxy: lease requests fail","code":503}')
            h.send_response(503)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(msg)))
            h.end_headers()
            h.wfile.write(msg)
            self._done(rec, outcome="lease503", code=503)
            return
        if rec["write"] and not rec["lease"] and faults["hold_s"] > 0:
            end = rec["t_in"] + faults["hold_s"]
            while time.time() < end:
                if _client_gone(h.connection):
                    self._done(rec, outcome="dropped")
                    h.close_connection = True
                    return
                time.sleep(0.02)
        hdrs = {k: v for k, v in h.headers.items()
                if k.lower() not in ("host", "connection", "content-length", "transfer-encoding")}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        conn = http.client.HTTPSConnection(self.up_host, self.up_port, context=self.up_ctx,
                                           timeout=3600)
        try:
            self._done(rec, t_fwd=time.time())
            conn.request(h.command, h.path, body=body, headers=hdrs)
            resp = conn.getresponse()
            self._done(rec, outcome="forwarded", code=resp.status)
            h.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    h.send_header(k, v)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                h.wfile.flush()
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (OSError, http.client.HTTPException) as e:
            if rec["outcome"] is None:
                self._done(rec, outcome=f"error: {e}")
            h.close_connection = True
        finally:
            conn.close()
            self._done(rec, t_end=time.time())

    def _done(self, rec, **kw):
        with self.lock:
            rec.update(kw)
            if "outcome" in kw and "t_end" not in rec:
                rec["t_end"] = time.time()
