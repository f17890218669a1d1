#!/usr/bin/env python3
"""mgo-kube's pgBackRest certificates (docs/abi.md "certificates", docs/kube.md) against a real
kube-apiserver and etcd.

Expected values are hand-written from the facts (operator-api.md 2.1: Secrets
<shard>-pgbackrest-ca and <shard>-pgbackrest-tls, CN "pgbackrest", server and client auth; 3.2:
the pods mount ca.crt of the first, tls.crt/tls.key of the second) and docs/abi.md (keys, DNS
names, 3650/365 days, renewal 30 days before the end, when to write). The certificates are
judged by the `openssl` command and by a real mutual TLS handshake (Python's ssl module), never
by mgo-kube's code; the certificates the test plants are issued by `openssl`. Steps:
  1. the upstream sample minimal.yaml: both Secrets appear, owned by the cluster and labelled as
     mgo's, with exactly the keys above, each written once and before any pod; the pods'
     projected volume names them; openssl verifies the chain for both purposes and shows the
     subject, DNS names, key usages, CA flag, key pair and validity; a client and a server both
     using the certificate complete mutual TLS; a Normal CertificateIssued Event;
  2. steady state: no write to Secrets while passes run;
  then, the cluster marked ready and idle (no pass runs unless something changes), so that
  each reaction below comes from the Secret watch or from mgo-kube's own renewal schedule:
  3. the TLS Secret deleted: written again (new uid), from the same CA, once;
  4. a certificate that falls due 25 s from now (its end 30 days and 25 s away): replaced by the
     schedule, not before it falls due;
  5. a certificate 10 days from its end, one from a foreign CA, one with a key that is not its
     own, one without the name "localhost": each replaced at once by one write, same CA;
  6. a CA 20 days from its end, and an unreadable CA key: a new CA and certificate each time;
  7. mgo's label removed from the CA Secret: put back, data untouched; the cluster deleted and
     created again while its Secrets remain (no garbage collector here): adopted, CA kept;
  8. in another namespace, a Secret of the certificate's name that is the user's: never
     written, a Warning CertError names it, the rest of the cluster is created;
  9. in a namespace whose quota refuses the Secrets: a Warning CertError with the API server's
     answer, and the cluster's pods and status all the same.

Usage: test_kube_certs.py MGO_KUBE MGO_CLI; the server from kube_harness.sh's exports, sources
from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import base64
import calendar
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgokube  # noqa: E402
from deploy_kube import Api, Failed, run  # noqa: E402
from mgokube import Controller  # noqa: E402

NS = "default"
CLUSTER = "minimal"
SELECTOR = f"multigres.com/cluster={CLUSTER}"
MC_PATH = f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters/{CLUSTER}"
# Join(Default, minimal, postgres, default, 0-inf) (operator-api.md 2.2; the same literal as
# test_kube_controller.py's SHARD_PREFIX, checked there against the naming rule)
SHARD = "minimal-postgres-default-0-inf-1e3c045c"
CA_SECRET, TLS_SECRET = f"{SHARD}-pgbackrest-ca", f"{SHARD}-pgbackrest-tls"
SECRETS = f"/api/v1/namespaces/{NS}/secrets"
DNS = ["pgbackrest", "localhost", f"pgbackrest.{NS}.svc", f"pgbackrest.{NS}.svc.cluster.local"]
LABELS = {"app.kubernetes.io/managed-by": "mgo", "multigres.com/cluster": CLUSTER,
          "app.kubernetes.io/component": "pgbackrest-tls", "app.kubernetes.io/part-of": "multigres",
          "multigres.com/database": "postgres", "multigres.com/tablegroup": "default",
          "multigres.com/shard": "0-inf"}
DAY = 86400

api = None
ctrl = None
work = None
owner_ref = None


# ---- reading the server -------------------------------------------------------------------

def secret(name, ns=NS):
    r = api.call("GET", f"/api/v1/namespaces/{ns}/secrets/{name}")
    if r.code == 404:
        return None
    if r.code != 200:
        raise Failed(f"GET Secret {name}: HTTP {r.code}: {r.short()}")
    return r.obj


def data(obj, key):
    return base64.b64decode(obj["data"][key]).decode()


def passes():
    return ctrl.metrics().value("mgo_kube_reconcile_total")


def wait_passes(n, what):
    """Until mgo-kube has run N more passes (explicit wait, no fixed sleep)."""
    p0 = passes()
    api.wait(f"{n} passes {what}", lambda: passes() >= p0 + n, 60)


def exactly_writes(t, mark, want, what):
    """mgo-kube's Secret writes since MARK become WANT, and stay so for 3 s: the window in which
    the pass that its own write's watch event queues would write again if it were going to (a
    window for an absence; everything else here waits on conditions)."""
    api.wait(f"{what}: the writes {want} in the audit log",
             lambda: sorted(secret_writes(mark)) == sorted(want) or None, 15)
    time.sleep(3)
    got = secret_writes(mark)
    t.require(sorted(got) == sorted(want), f"{what}: Secret writes {got}, not {want}")


def secret_writes(mark):
    """mgo-kube's writes to Secrets since MARK: [(verb, name)]."""
    return [(e.get("verb"), (e.get("objectRef") or {}).get("name"))
            for e in mgokube.audit_writes(mark)
            if (e.get("objectRef") or {}).get("resource") == "secrets"]


def issued_events(ns=NS, reason="CertificateIssued", kind="Normal"):
    items = api.call("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events").obj["items"]
    return [e for e in items if e.get("reason") == reason and e.get("type") == kind
            and (e.get("regarding") or {}).get("name") == CLUSTER]


def event_names(ns=NS):
    items = api.call("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events").obj["items"]
    return {e["metadata"]["name"] for e in items}


def wait_event(t, *words, ns=NS, reason="CertificateIssued", kind="Normal", before=()):
    """A KIND Event REASON on the cluster, not among BEFORE (names), whose note holds every one
    of WORDS. (Each issue's note names the time it is renewed from, so no two are alike and none
    is held back as a repeat.)"""
    try:
        return api.wait(f"a new {kind} {reason} Event with {words}", lambda: [
            e for e in issued_events(ns, reason, kind) if e["metadata"]["name"] not in before
            and all(w in e.get("note", "") for w in words)] or None, 30)
    except Failed:
        notes = [(e.get("type"), e.get("reason"), e.get("note"))
                 for e in issued_events(ns, reason, kind)]
        raise Failed(f"no new {kind} {reason} Event with {words}; those there: {notes}")


# ---- openssl ------------------------------------------------------------------------------

def openssl(*args):
    p = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise Failed(f"openssl {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def write_files(ca, tls, tag):
    """The PEM of both Secrets into WORK/TAG-*; their paths."""
    paths = {}
    for obj, keys in ((ca, ("ca.crt", "ca.key")), (tls, ("tls.crt", "tls.key"))):
        for k in keys:
            p = os.path.join(work, f"{tag}-{k}")
            with open(p, "w") as f:
                f.write(data(obj, k))
            paths[k] = p
    return paths


def end_of(path):
    """notAfter of the certificate at PATH, in Unix seconds (openssl's reading)."""
    text = openssl("x509", "-noout", "-enddate", "-in", path).strip()
    return calendar.timegm(time.strptime(text.split("=", 1)[1].replace(" GMT", ""),
                                         "%b %d %H:%M:%S %Y"))


def asn1_time(unix):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(unix))


def new_key(tag):
    key = os.path.join(work, f"{tag}.key")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    return key


def issue(ca_crt, ca_key, tag, not_after, dns=DNS, usages="serverAuth,clientAuth"):
    """A certificate like mgo's (O, CN, DNS names, usages) issued by `openssl ca` from the CA,
    valid from an hour ago until NOT_AFTER (Unix seconds): (crt PEM, key PEM)."""
    d = os.path.join(work, tag)
    os.makedirs(d)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    cfg = os.path.join(d, "ca.cnf")
    with open(cfg, "w") as f:
        f.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\n"
                f"serial = {d}/serial\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                f"copy_extensions = none\n[p]\norganizationName = optional\n"
                f"commonName = supplied\n[ext]\nbasicConstraints = CA:FALSE\n"
                f"keyUsage = critical,digitalSignature\n"
                f"subjectAltName = {','.join('DNS:' + n for n in dns)}\n"
                f"extendedKeyUsage = {usages}\n")
    key = new_key(f"{tag}/leaf")
    csr = os.path.join(d, "leaf.csr")
    crt = os.path.join(d, "leaf.crt")
    openssl("req", "-new", "-key", key, "-subj", "/O=Multigres/CN=pgbackrest", "-out", csr)
    openssl("ca", "-batch", "-config", cfg, "-extensions", "ext", "-cert", ca_crt, "-keyfile",
            ca_key, "-in", csr, "-out", crt, "-notext", "-preserveDN", "-startdate",
            asn1_time(time.time() - 3600), "-enddate", asn1_time(not_after))
    with open(crt) as f1, open(key) as f2:
        return f1.read(), f2.read()


def new_ca(tag, days):
    """A self-signed EC CA (CA:TRUE, keyCertSign, a subject key identifier) by `openssl req`."""
    key = new_key(tag)
    crt = os.path.join(work, f"{tag}.crt")
    openssl("req", "-x509", "-new", "-key", key, "-subj", f"/O=Multigres/CN={tag}", "-days",
            str(days), "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign", "-out", crt)
    return crt, key


def handshake(paths):
    """Mutual TLS between a server and a client that both present tls.crt (server and client
    auth), each requiring the other's certificate from ca.crt; the client checks the name
    "pgbackrest". Returns the server's view of the client's subject."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(paths["tls.crt"], paths["tls.key"])
    srv.load_verify_locations(paths["ca.crt"])
    srv.verify_mode = ssl.CERT_REQUIRED
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_cert_chain(paths["tls.crt"], paths["tls.key"])
    cli.load_verify_locations(paths["ca.crt"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(10)
    seen, errors = {}, []

    def serve():
        try:
            conn, _ = lsock.accept()
            with srv.wrap_socket(conn, server_side=True) as s:
                seen["peer"] = s.getpeercert()
                s.sendall(b"ok")
        except (OSError, ssl.SSLError) as e:
            errors.append(e)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        with socket.create_connection(lsock.getsockname(), timeout=10) as raw:
            with cli.wrap_socket(raw, server_hostname="pgbackrest") as s:
                got = s.recv(2)
    except (OSError, ssl.SSLError) as e:
        raise Failed(f"mutual TLS with the issued certificate failed (client): {e}")
    finally:
        th.join(10)
        lsock.close()
    if errors or got != b"ok":
        raise Failed(f"mutual TLS with the issued certificate failed (server): {errors}")
    return dict(x[0] for x in seen["peer"]["subject"])


def check_pair(t, ca, tls, tag):
    """Everything the facts and docs/abi.md say of the two Secrets, judged by openssl."""
    for obj, keys in ((ca, {"ca.crt", "ca.key"}), (tls, {"tls.crt", "tls.key"})):
        m = obj["metadata"]
        t.require(obj.get("type") == "Opaque", f"{m['name']}: type {obj.get('type')}")
        t.require(set(obj.get("data") or {}) == keys,
                  f"{m['name']}: keys {sorted(obj.get('data') or {})}, not {sorted(keys)}")
        labels = m.get("labels") or {}
        t.require(all(labels.get(k) == v for k, v in LABELS.items()),
                  f"{m['name']}: labels {labels} lack {LABELS}")
        t.require(m.get("ownerReferences") == [owner_ref], f"{m['name']}: ownerReferences "
                  f"{m.get('ownerReferences')} != {[owner_ref]}")
    p = write_files(ca, tls, tag)
    for purpose in ("sslserver", "sslclient"):
        out = openssl("verify", "-purpose", purpose, "-CAfile", p["ca.crt"], p["tls.crt"])
        t.require(out.strip().endswith(": OK"), f"openssl verify -purpose {purpose}: {out}")
    text = openssl("x509", "-noout", "-subject", "-ext",
                   "subjectAltName,extendedKeyUsage,basicConstraints", "-nameopt", "sep_multiline",
                   "-in", p["tls.crt"])
    t.require("CN=pgbackrest" in text and "O=Multigres" in text, f"subject: {text}")
    sans = sorted(s.strip()[4:] for s in text.split("Subject Alternative Name:")[1]
                  .split("\n")[1].split(","))
    t.require(sans == sorted(DNS), f"DNS names {sans}, not {sorted(DNS)}")
    eku = text.split("Extended Key Usage:")[1].split("\n")[1]
    usages = sorted(u.strip() for u in eku.split(","))
    t.require(usages == ["TLS Web Client Authentication", "TLS Web Server Authentication"],
              f"extended key usages {usages}")
    t.require("CA:FALSE" in text, f"the certificate is not marked CA:FALSE: {text}")
    ca_text = openssl("x509", "-noout", "-ext", "basicConstraints,keyUsage", "-in", p["ca.crt"])
    t.require("CA:TRUE" in ca_text and "Certificate Sign" in ca_text, f"CA: {ca_text}")
    for crt, key in (("tls.crt", "tls.key"), ("ca.crt", "ca.key")):
        a = openssl("x509", "-noout", "-pubkey", "-in", p[crt])
        b = openssl("pkey", "-pubout", "-in", p[key])
        t.require(a == b, f"{key} is not the key of {crt}")
    now = time.time()
    for f, days in (("tls.crt", 365), ("ca.crt", 3650)):
        left = (end_of(p[f]) - now) / DAY
        t.require(days - 1 < left <= days, f"{f} ends in {left:.2f} days, not {days}")
    peer = handshake(p)
    t.require(peer.get("commonName") == "pgbackrest", f"the server saw the client as {peer}")
    return p


def wait_pair(what, pred, timeout=30):
    """Both Secrets, once PRED(ca, tls) holds."""
    def probe():
        ca, tls = secret(CA_SECRET), secret(TLS_SECRET)
        return (ca, tls) if ca and tls and pred(ca, tls) else None
    return api.wait(what, probe, timeout)


def replace_data(name, values):
    """PUT the Secret NAME with data VALUES (text); its new resourceVersion."""
    obj = secret(name)
    obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    r = api.call("PUT", f"{SECRETS}/{name}", obj)
    if r.code != 200:
        raise Failed(f"PUT Secret {name}: HTTP {r.code}: {r.short()}")
    return r.obj["metadata"]["resourceVersion"]


# ---- steps --------------------------------------------------------------------------------

def step_issued(t, mark):
    ca, tls = wait_pair("both certificate Secrets", lambda a, b: True)
    check_pair(t, ca, tls, "first")
    wait_event(t, TLS_SECRET, f" and CA {CA_SECRET}", "missing or unreadable")
    exactly_writes(t, mark, [("patch", CA_SECRET), ("patch", TLS_SECRET)],
                   "since the cluster was created (each once, by apply)")
    evs = mgokube.audit_writes(mark)
    order = [((e.get("objectRef") or {}).get("resource"), e.get("verb")) for e in evs]
    pods = [i for i, o in enumerate(order) if o[0] == "pods"]  # applies: verb patch
    t.require(pods, f"no pod written: {order}")
    t.require(all(i < pods[0] for i, o in enumerate(order) if o[0] == "secrets"),
              f"a Secret was written after the first pod: {order}")
    t.ok(f"Secrets {CA_SECRET} and {TLS_SECRET}: Opaque, keys ca.crt/ca.key and "
         f"tls.crt/tls.key, owned by the cluster, labelled as mgo's, each written once (apply) "
         f"and before the first pod; openssl verifies the chain for sslserver and sslclient; "
         f"CN=pgbackrest, O=Multigres, DNS {DNS}, serverAuth+clientAuth, CA:FALSE; the CA is "
         f"CA:TRUE with keyCertSign; both keys match; 365 and 3650 days; mutual TLS with it "
         f"succeeds; a Normal CertificateIssued Event names both")
    pods = api.wait("the pool pods", lambda: [
        p for p in api.call("GET", f"/api/v1/namespaces/{NS}/pods",
                            query={"labelSelector": SELECTOR}).obj["items"]
        if "multigres.com/pool" in p["metadata"].get("labels", {})] or None, 30)
    for pod in pods:
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        srcs = vols["pgbackrest-certs"]["projected"]["sources"]
        names = [(s["secret"]["name"], [i["key"] for i in s["secret"]["items"]]) for s in srcs]
        t.require(names == [(CA_SECRET, ["ca.crt"]), (TLS_SECRET, ["tls.crt", "tls.key"])],
                  f"pod {pod['metadata']['name']} mounts {names}")
    t.ok(f"the {len(pods)} pool pods mount ca.crt of {CA_SECRET} and tls.crt/tls.key of "
         f"{TLS_SECRET} (operator-api.md 3.2)")
    return ca, tls


def step_steady(t, ca, tls):
    mark = mgokube.audit_mark()
    wait_passes(4, "in steady state (the cluster is not ready: the library asks for passes)")
    w = secret_writes(mark)
    t.require(not w, f"mgo-kube wrote Secrets in steady state: {w}")
    ca2, tls2 = secret(CA_SECRET), secret(TLS_SECRET)
    t.require(ca2["metadata"]["resourceVersion"] == ca["metadata"]["resourceVersion"] and
              tls2["metadata"]["resourceVersion"] == tls["metadata"]["resourceVersion"],
              "a certificate Secret changed in steady state")
    t.ok("steady state: 4 passes, no write to Secrets (audit log), both unchanged")


def step_idle(t):
    """Mark the cluster ready; wait for Healthy and for passes to stop."""
    def healthy():
        mgokube.mark_all_ready(api, NS, SELECTOR)
        r = api.call("GET", MC_PATH)
        return ((r.obj or {}).get("status") or {}).get("phase") == "Healthy"
    api.wait("phase Healthy", healthy, 60)

    def quiet():
        p0 = passes()
        time.sleep(6)
        return passes() == p0
    api.wait("no pass for 6 s", quiet, 60)
    t.ok("the cluster Healthy and idle: no pass for 6 s (what follows is the Secret watch and "
         "mgo-kube's own renewal schedule, not polling)")


def step_deleted(t, ca):
    mark = mgokube.audit_mark()
    before = event_names()
    old = secret(TLS_SECRET)
    r = api.call("DELETE", f"{SECRETS}/{TLS_SECRET}")
    t.require(r.code == 200, f"delete {TLS_SECRET}: HTTP {r.code}")
    ca3, tls3 = wait_pair("the TLS Secret written again (within 10 s, the cluster idle)",
                          lambda a, b: b["metadata"]["uid"] != old["metadata"]["uid"], 10)
    t.require(ca3["metadata"]["resourceVersion"] == ca["metadata"]["resourceVersion"],
              "the CA changed when only the TLS Secret was deleted")
    check_pair(t, ca3, tls3, "recreated")
    wait_event(t, TLS_SECRET, "the certificate or its key is missing", before=before)
    exactly_writes(t, mark, [("patch", TLS_SECRET)], "the TLS Secret deleted")
    t.ok(f"{TLS_SECRET} deleted on an idle cluster: written again (new uid) within 10 s, one "
         f"write, from the same CA")
    return ca3, tls3


def step_scheduled(t, ca, tls):
    """A certificate that falls due in 25 s: replaced by mgo-kube's schedule."""
    p = write_files(ca, tls, "sched")
    due = time.time() + 25
    crt, key = issue(p["ca.crt"], p["ca.key"], "sched", due + 30 * DAY)
    before = event_names()
    rv = replace_data(TLS_SECRET, {"tls.crt": crt, "tls.key": key})
    t0 = time.time()
    ca2, tls2 = wait_pair("the certificate replaced when it falls due", lambda a, b: b[
        "metadata"]["resourceVersion"] != rv and data(b, "tls.crt") != crt, 90)
    at = time.time()
    t.require(at >= due - 1, f"replaced {due - at:.1f} s before it fell due")
    t.require(data(ca2, "ca.crt") == data(ca, "ca.crt"), "the CA changed on a renewal")
    check_pair(t, ca2, tls2, "scheduled")
    wait_event(t, TLS_SECRET, "due for renewal", before=before)
    t.ok(f"a certificate 30 days and 25 s from its end (openssl ca), planted on the idle "
         f"cluster: kept until it fell due, replaced {at - t0:.1f} s after it was planted "
         f"({at - due:+.1f} s from its due time) by a 365-day one from the same CA")
    return ca2, tls2


def step_replaced(t, ca, tls, what, crt, key, because):
    """TLS data (CRT, KEY) that must be replaced at once, from the same CA, by one write."""
    mark = mgokube.audit_mark()
    before = event_names()
    rv = replace_data(TLS_SECRET, {"tls.crt": crt, "tls.key": key})
    ca2, tls2 = wait_pair(f"{what}: replaced", lambda a, b: b["metadata"][
        "resourceVersion"] != rv and data(b, "tls.crt") != crt, 15)
    check_pair(t, ca2, tls2, what.replace(" ", "-"))
    t.require(data(ca2, "ca.crt") == data(ca, "ca.crt"), f"{what}: the CA changed")
    wait_event(t, TLS_SECRET, because, before=before)
    # the test's own PUT is by another user agent: only mgo-kube's writes are counted
    exactly_writes(t, mark, [("patch", TLS_SECRET)], what)
    t.ok(f"{what}: replaced by one write from the same CA (Event: {because!r})")
    return ca2, tls2


def step_new_ca(t, what, ca_values, tls_values, because):
    """CA data that must bring a new CA and a new certificate from it."""
    old_ca = secret(CA_SECRET)
    before = event_names()
    if tls_values:
        replace_data(TLS_SECRET, tls_values)
    replace_data(CA_SECRET, ca_values)
    planted = ca_values.get("ca.crt")
    ca2, tls2 = wait_pair(f"{what}: a new CA and certificate", lambda a, b: data(a, "ca.crt") not in (
        planted, data(old_ca, "ca.crt")) and data(a, "ca.key") != ca_values.get("ca.key"), 15)
    ca2, tls2 = wait_pair(f"{what}: the certificate from the new CA", lambda a, b: openssl(
        "verify", "-CAfile", write_files(a, b, "probe")["ca.crt"],
        os.path.join(work, "probe-tls.crt")).strip().endswith(": OK"), 15)
    check_pair(t, ca2, tls2, what.replace(" ", "-"))
    wait_event(t, TLS_SECRET, f" and CA {CA_SECRET}", because, before=before)
    t.ok(f"{what}: a new CA and a new certificate from it, verified again")
    return ca2, tls2


def step_relabel(t):
    before = secret(CA_SECRET)
    r = api.call("PATCH", f"{SECRETS}/{CA_SECRET}",
                 {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}},
                 "application/merge-patch+json")
    t.require(r.code == 200, f"PATCH {CA_SECRET}: HTTP {r.code}: {r.short()}")
    after = api.wait("mgo's label back on the CA Secret", lambda: (
        lambda o: o if (o["metadata"].get("labels") or {}).get(
            "app.kubernetes.io/managed-by") == "mgo" else None)(secret(CA_SECRET)), 15)
    t.require(after["data"] == before["data"], "the CA's data changed when its label was put back")
    check_pair(t, after, secret(TLS_SECRET), "relabelled")
    t.ok("mgo's label removed from the CA Secret: put back, its data unchanged")


def step_namesake(t, docs):
    """The cluster deleted and created again, its Secrets still there (no garbage collector runs
    here; on a real cluster it may not have come yet): adopted, the CA kept."""
    global owner_ref
    ca, tls = secret(CA_SECRET), secret(TLS_SECRET)
    r = api.call("DELETE", MC_PATH)
    t.require(r.code == 200, f"delete the cluster: HTTP {r.code}: {r.short()}")
    api.wait("the cluster gone", lambda: api.call("GET", MC_PATH).code == 404, 30)
    before = event_names()
    r = api.create(docs[1], f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters",
                   yaml=True)
    t.require(r.code == 201, f"create the cluster again: HTTP {r.code}: {r.short()}")
    uid = r.obj["metadata"]["uid"]
    t.require(uid != owner_ref["uid"], "the new cluster has the old uid")
    owner_ref = dict(owner_ref, uid=uid)
    ca2, tls2 = wait_pair("both Secrets owned by the new cluster", lambda a, b: all(
        o["metadata"].get("ownerReferences") == [owner_ref] for o in (a, b)), 30)
    t.require(ca2["data"] == ca["data"] and tls2["data"] == tls["data"],
              "the adopted Secrets' data changed")
    check_pair(t, ca2, tls2, "adopted")
    warned = [e for e in issued_events(NS, "CertError", "Warning")
              if e["metadata"]["name"] not in before]
    t.require(not warned, f"adoption reported as an error: {[e.get('note') for e in warned]}")
    t.ok("the cluster deleted and created again, its Secrets not yet collected: adopted (owner "
         "reference to the new uid), CA and certificate kept, no CertError")


def step_foreign(t, docs):
    """A Secret of the certificate's name that the cluster does not control (the user's): never
    written, reported with a Warning CertError; the rest of the cluster is still created."""
    other = "other"
    r = api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}},
                   "/api/v1/namespaces")
    t.require(r.code == 201, f"create namespace {other}: HTTP {r.code}: {r.short()}")
    path = f"/api/v1/namespaces/{other}/secrets"
    r = api.create(docs[0].replace(f"namespace: {NS}", f"namespace: {other}"), path, yaml=True)
    t.require(r.code == 201, f"create the password Secret: HTTP {r.code}: {r.short()}")
    mine = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": TLS_SECRET, "namespace": other},
            "data": {"tls.crt": base64.b64encode(b"the user's").decode()}}
    r = api.create(mine, path)
    t.require(r.code == 201, f"create the user's Secret: HTTP {r.code}: {r.short()}")
    rv = r.obj["metadata"]["resourceVersion"]
    mark = mgokube.audit_mark()
    text = docs[1].replace(f"namespace: {NS}", f"namespace: {other}")
    t.require(f"namespace: {other}" in text, "the sample names no namespace to replace")
    r = api.create(text, f"/apis/multigres.com/v1alpha1/namespaces/{other}/multigresclusters",
                   yaml=True)
    t.require(r.code == 201, f"create the cluster in {other}: HTTP {r.code}: {r.short()}")
    wait_event(t, TLS_SECRET, "not this cluster's", ns=other, reason="CertError", kind="Warning")
    api.wait("the cluster's pods, created all the same", lambda: api.call(
        "GET", f"/api/v1/namespaces/{other}/pods",
        query={"labelSelector": SELECTOR}).obj["items"] or None, 30)
    wait_passes(2, "after the pods")
    r = api.call("GET", f"{path}/{TLS_SECRET}")
    t.require(r.code == 200 and r.obj["metadata"]["resourceVersion"] == rv and
              r.obj["data"] == mine["data"] and not r.obj["metadata"].get("ownerReferences"),
              f"the user's Secret was changed: {r.obj.get('metadata')}")
    w = [x for x in secret_writes(mark) if x[1] == TLS_SECRET]
    t.require(not w, f"mgo-kube wrote the user's Secret: {w}")
    t.ok(f"a Secret {TLS_SECRET} of the user's in namespace {other}: never written (audit log), "
         f"a Warning CertError names it, the cluster's pods are created all the same")


def step_refused(t, docs):
    """The Secrets refused by the API server (a ResourceQuota of one Secret, which the password
    fills): a Warning CertError carries the server's answer, and the rest of the pass goes on
    (the cluster's pods and its status)."""
    ns = "quota"
    r = api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                   "/api/v1/namespaces")
    t.require(r.code == 201, f"create namespace {ns}: HTTP {r.code}: {r.short()}")
    q = {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": "secrets", "namespace": ns},
         "spec": {"hard": {"count/secrets": "1"}}}
    r = api.create(q, f"/api/v1/namespaces/{ns}/resourcequotas")
    t.require(r.code == 201, f"create the quota: HTTP {r.code}: {r.short()}")
    # no controller-manager here: the quota's status is written as its controller would
    obj = r.obj
    obj["status"] = {"hard": {"count/secrets": "1"}, "used": {"count/secrets": "0"}}
    r = api.call("PUT", f"/api/v1/namespaces/{ns}/resourcequotas/secrets/status", obj)
    t.require(r.code == 200, f"the quota's status: HTTP {r.code}: {r.short()}")
    r = api.create(docs[0].replace(f"namespace: {NS}", f"namespace: {ns}"),
                   f"/api/v1/namespaces/{ns}/secrets", yaml=True)
    t.require(r.code == 201, f"create the password Secret: HTTP {r.code}: {r.short()}")
    probe = api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe"}},
                       f"/api/v1/namespaces/{ns}/secrets", dry_run=True)
    t.require(probe.code == 403, f"the quota does not refuse a second Secret: {probe.code}")
    r = api.create(docs[1].replace(f"namespace: {NS}", f"namespace: {ns}"),
                   f"/apis/multigres.com/v1alpha1/namespaces/{ns}/multigresclusters", yaml=True)
    t.require(r.code == 201, f"create the cluster in {ns}: HTTP {r.code}: {r.short()}")
    ev = wait_event(t, "writing it failed", "exceeded quota", ns=ns, reason="CertError",
                    kind="Warning")
    api.wait("the cluster's pods", lambda: api.call(
        "GET", f"/api/v1/namespaces/{ns}/pods",
        query={"labelSelector": SELECTOR}).obj["items"] or None, 30)
    api.wait("the cluster's status", lambda: (api.call(
        "GET", f"/apis/multigres.com/v1alpha1/namespaces/{ns}/multigresclusters/{CLUSTER}")
        .obj.get("status") or {}).get("phase"), 30)
    t.ok(f"the certificate Secrets refused by a quota: a Warning CertError with the API "
         f"server's answer ({ev[0]['note'][:80]}...), and the cluster's pods and status all the "
         f"same")


def main(t):
    global api, ctrl, work, owner_ref
    mgo_kube = sys.argv[1]
    src, shared = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    # under the harness's directory, which `kube_harness.sh down` removes even on failure: it
    # holds private keys
    work = tempfile.mkdtemp(prefix="certs.", dir=os.environ.get("KUBE_HARNESS_DIR"))
    api = Api(f"mgo-test-kube-certs/1 ({os.getpid()})")
    mgokube.install_crds(api, src)
    etcd_hostport = os.environ["KUBE_ETCD"].split("://", 1)[1]
    ctrl = Controller(mgo_kube, "certs", ["--resolve", f"*.svc:2379={etcd_hostport}"])
    try:
        ctrl.wait_ready()
        with open(f"{shared}/compat/upstream-samples/minimal.yaml") as f:
            docs = f.read().split("\n---\n")
        t.require(len(docs) == 2 and "kind: Secret" in docs[0], "minimal.yaml changed shape")
        r = api.create(docs[0], SECRETS, yaml=True)
        t.require(r.code == 201, f"create the password Secret: HTTP {r.code}: {r.short()}")
        mark = mgokube.audit_mark()
        r = api.create(docs[1], f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters",
                       yaml=True)
        t.require(r.code == 201, f"create the cluster: HTTP {r.code}: {r.short()}")
        owner_ref = {"apiVersion": "multigres.com/v1alpha1", "kind": "MultigresCluster",
                     "name": CLUSTER, "uid": r.obj["metadata"]["uid"], "controller": True,
                     "blockOwnerDeletion": True}

        ca, tls = step_issued(t, mark)
        step_steady(t, ca, tls)
        step_idle(t)
        ca, tls = step_deleted(t, ca)
        ca, tls = step_scheduled(t, ca, tls)

        p = write_files(ca, tls, "cur")
        crt, key = issue(p["ca.crt"], p["ca.key"], "short", time.time() + 10 * DAY)
        ca, tls = step_replaced(t, ca, tls, "a certificate 10 days from its end", crt, key,
                                "due for renewal")
        fca_crt, fca_key = new_ca("foreign-ca", 3650)
        crt, key = issue(fca_crt, fca_key, "foreign", time.time() + 365 * DAY)
        ca, tls = step_replaced(t, ca, tls, "a certificate from a foreign CA", crt, key,
                                "not signed by the CA")
        p = write_files(ca, tls, "cur2")
        crt, _ = issue(p["ca.crt"], p["ca.key"], "good", time.time() + 365 * DAY)
        other_key = open(new_key("other")).read()
        ca, tls = step_replaced(t, ca, tls, "a certificate with a key not its own", crt,
                                other_key, "does not match")
        p = write_files(ca, tls, "cur3")
        crt, key = issue(p["ca.crt"], p["ca.key"], "nolocal", time.time() + 365 * DAY,
                         dns=[n for n in DNS if n != "localhost"])
        ca, tls = step_replaced(t, ca, tls, "a certificate without the name localhost", crt,
                                key, "names or usages differ")

        sca_crt, sca_key = new_ca("short-ca", 20)
        crt, key = issue(sca_crt, sca_key, "from-short-ca", time.time() + 365 * DAY)
        ca, tls = step_new_ca(t, "a CA 20 days from its end", {
            "ca.crt": open(sca_crt).read(), "ca.key": open(sca_key).read()},
            {"tls.crt": crt, "tls.key": key}, "the CA is due for renewal")
        ca, tls = step_new_ca(t, "an unreadable CA key", {
            "ca.crt": data(ca, "ca.crt"), "ca.key": "not a key"}, None, "missing or unreadable")
        step_relabel(t)
        step_namesake(t, docs)
        step_foreign(t, docs)
        step_refused(t, docs)
    except Exception:  # noqa: BLE001 (any failure: show mgo-kube's log, then re-raise)
        mgokube.print_logs()
        raise
    finally:
        mgokube.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run(main))
