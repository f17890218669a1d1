#!/usr/bin/env python3
"""mgo-kube's pgBackRest certificates (docs/abi.md "certificates", docs/kube.md) against a real
kube-apiserver and etcd.

Expected values are hand-written from the facts (operator-api.md 2.1: Secrets
<shard>-pgbackrest-ca and <shard>-pgbackrest-tls, CN "pgbackrest", server and client auth; 3.2:
the pods mount ca.crt of the first, tls.crt/tls.key of the second) and docs/abi.md (keys, DNS
names, 3650/365 days, renewal 30 days before the end). The certificates are judged by the
`openssl` command and by a real mutual TLS handshake (Python's ssl module), never by mgo-kube's
code. Steps:
  1. the upstream sample minimal.yaml: both Secrets appear, owned by the cluster and labelled as
     mgo's, with exactly the keys above; the pods' projected volume names them; openssl verifies
     the chain for both purposes and shows the subject, DNS names, key usages, CA flag, key pair
     and validity; a client and a server both using the certificate complete mutual TLS;
  2. steady state: no write to Secrets by mgo-kube for 15 s;
  3. the TLS Secret deleted: written again (new uid), from the same CA;
  4. a certificate 10 days from its end (issued by openssl from the Secret's own CA): replaced;
  5. a certificate from a foreign CA: replaced;
  6. an unreadable CA key: a new CA and a new certificate from it;
  each time the chain is verified again and nothing else is written;
  7. mgo's label removed from the CA Secret: put back, data untouched;
  8. in another namespace, a Secret of the certificate's name that is the user's: never
     written, a Warning CertError names it, the rest of the cluster is created.

Usage: test_kube_certs.py MGO_KUBE MGO_CLI; the server from kube_harness.sh's exports, sources
from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import base64
import json
import os
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
work = None


def secret(name):
    r = api.call("GET", f"{SECRETS}/{name}")
    if r.code == 404:
        return None
    if r.code != 200:
        raise Failed(f"GET Secret {name}: HTTP {r.code}: {r.short()}")
    return r.obj


def data(obj, key):
    return base64.b64decode(obj["data"][key]).decode()


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


def openssl(*args, stdin=None):
    p = subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0:
        raise Failed(f"openssl {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def end_of(path):
    """notAfter of the certificate at PATH, in Unix seconds (openssl's reading)."""
    text = openssl("x509", "-noout", "-enddate", "-in", path).strip()
    return time.mktime(time.strptime(text.split("=", 1)[1].replace(" GMT", ""),
                                     "%b %d %H:%M:%S %Y")) - time.timezone


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
    t.require("TLS Web Server Authentication, TLS Web Client Authentication" in text,
              f"extended key usages: {text}")
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


def secret_writes(mark):
    return [mgokube.describe_audit(e) for e in mgokube.audit_writes(mark)
            if (e.get("objectRef") or {}).get("resource") == "secrets"]


def replace_tls(crt_pem, key_pem):
    obj = secret(TLS_SECRET)
    obj["data"] = {"tls.crt": base64.b64encode(crt_pem.encode()).decode(),
                   "tls.key": base64.b64encode(key_pem.encode()).decode()}
    r = api.call("PUT", f"{SECRETS}/{TLS_SECRET}", obj)
    if r.code != 200:
        raise Failed(f"PUT Secret {TLS_SECRET}: HTTP {r.code}: {r.short()}")
    return r.obj["metadata"]["resourceVersion"]


def issue_with_openssl(ca_crt, ca_key, days, tag):
    """A certificate like mgo's (CN, DNS names, both usages) issued by openssl, DAYS long."""
    key = os.path.join(work, f"{tag}.key")
    csr = os.path.join(work, f"{tag}.csr")
    crt = os.path.join(work, f"{tag}.crt")
    ext = os.path.join(work, f"{tag}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + d for d in DNS) +
                "\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/O=Multigres/CN=pgbackrest", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-days", str(days), "-extfile", ext, "-out", crt)
    with open(crt) as f1, open(key) as f2:
        return f1.read(), f2.read()


owner_ref = None


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

    def warned():
        items = api.call("GET", f"/apis/events.k8s.io/v1/namespaces/{other}/events").obj["items"]
        return [e for e in items if e.get("reason") == "CertError" and e.get("type") == "Warning"
                and TLS_SECRET in e.get("note", "") and "not this cluster's" in e.get("note", "")]
    api.wait("a Warning CertError naming the user's Secret", warned, 30)
    api.wait("the cluster's pods, created all the same", lambda: api.call(
        "GET", f"/api/v1/namespaces/{other}/pods",
        query={"labelSelector": f"multigres.com/cluster={CLUSTER}"}).obj["items"] or None, 30)
    time.sleep(3)
    r = api.call("GET", f"{path}/{TLS_SECRET}")
    t.require(r.code == 200 and r.obj["metadata"]["resourceVersion"] == rv and
              r.obj["data"] == mine["data"] and not r.obj["metadata"].get("ownerReferences"),
              f"the user's Secret was changed: {r.obj.get('metadata')}")
    w = [mgokube.describe_audit(e) for e in mgokube.audit_writes(mark)
         if (e.get("objectRef") or {}).get("name") == TLS_SECRET]
    t.require(not w, f"mgo-kube wrote the user's Secret: {w}")
    t.ok(f"a Secret {TLS_SECRET} of the user's in namespace {other}: never written (audit log), "
         f"a Warning CertError names it, the cluster's pods are created all the same")


def main(t):
    global api, work, owner_ref
    mgo_kube, cli = sys.argv[1], sys.argv[2]
    src, shared = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    work = tempfile.mkdtemp(prefix="mgo-kube-certs-")
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
        r = api.create(docs[1], f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters",
                       yaml=True)
        t.require(r.code == 201, f"create the cluster: HTTP {r.code}: {r.short()}")
        uid = r.obj["metadata"]["uid"]
        owner_ref = {"apiVersion": "multigres.com/v1alpha1", "kind": "MultigresCluster",
                     "name": CLUSTER, "uid": uid, "controller": True, "blockOwnerDeletion": True}

        # 1. issued, mounted, verified
        ca, tls = wait_pair("both certificate Secrets", lambda a, b: True)
        check_pair(t, ca, tls, "first")
        t.ok(f"Secrets {CA_SECRET} and {TLS_SECRET}: Opaque, keys ca.crt/ca.key and "
             f"tls.crt/tls.key, owned by the cluster, labelled as mgo's; openssl verifies the "
             f"chain for sslserver and sslclient; CN=pgbackrest, O=Multigres, DNS {DNS}, "
             f"serverAuth+clientAuth, CA:FALSE; the CA is CA:TRUE with keyCertSign; both keys "
             f"match; 365 and 3650 days; mutual TLS with it succeeds")
        pods = api.wait("the pool pods", lambda: [
            p for p in api.call("GET", f"/api/v1/namespaces/{NS}/pods",
                                query={"labelSelector": f"multigres.com/cluster={CLUSTER}"})
            .obj["items"] if "multigres.com/pool" in p["metadata"].get("labels", {})] or None, 30)
        for pod in pods:
            vols = {v["name"]: v for v in pod["spec"]["volumes"]}
            srcs = vols["pgbackrest-certs"]["projected"]["sources"]
            names = [(s["secret"]["name"], [i["key"] for i in s["secret"]["items"]]) for s in srcs]
            t.require(names == [(CA_SECRET, ["ca.crt"]), (TLS_SECRET, ["tls.crt", "tls.key"])],
                      f"pod {pod['metadata']['name']} mounts {names}")
        t.ok(f"the {len(pods)} pool pods mount ca.crt of {CA_SECRET} and tls.crt/tls.key of "
             f"{TLS_SECRET} (operator-api.md 3.2)")

        # 2. steady state
        time.sleep(3)
        mark = mgokube.audit_mark()
        time.sleep(15)
        w = secret_writes(mark)
        t.require(not w, f"mgo-kube wrote Secrets in steady state: {w}")
        ca2, tls2 = secret(CA_SECRET), secret(TLS_SECRET)
        t.require(ca2["metadata"]["resourceVersion"] == ca["metadata"]["resourceVersion"] and
                  tls2["metadata"]["resourceVersion"] == tls["metadata"]["resourceVersion"],
                  "a certificate Secret changed in steady state")
        t.ok("steady state: no write to Secrets by mgo-kube in 15 s (audit log), both unchanged")

        # 3. deleted -> written again, same CA
        mark = mgokube.audit_mark()
        r = api.call("DELETE", f"{SECRETS}/{TLS_SECRET}")
        t.require(r.code == 200, f"delete {TLS_SECRET}: HTTP {r.code}")
        old_uid = tls["metadata"]["uid"]
        ca3, tls3 = wait_pair("the TLS Secret written again",
                              lambda a, b: b["metadata"]["uid"] != old_uid)
        t.require(ca3["metadata"]["resourceVersion"] == ca["metadata"]["resourceVersion"],
                  "the CA changed when only the TLS Secret was deleted")
        check_pair(t, ca3, tls3, "recreated")
        time.sleep(2)
        w = secret_writes(mark)
        t.require(len(w) == 1 and TLS_SECRET in w[0], f"writes to Secrets: {w}")
        t.ok(f"{TLS_SECRET} deleted: written again (new uid), one write, from the same CA")

        # 4. near its end -> replaced
        p = write_files(ca3, tls3, "ca3")
        crt, key = issue_with_openssl(p["ca.crt"], p["ca.key"], 10, "short")
        mark = mgokube.audit_mark()
        rv = replace_tls(crt, key)
        ca4, tls4 = wait_pair("the short certificate replaced", lambda a, b: b["metadata"][
            "resourceVersion"] != rv and data(b, "tls.crt") != crt)
        check_pair(t, ca4, tls4, "renewed")
        t.require(data(ca4, "ca.crt") == data(ca3, "ca.crt"), "the CA changed on a renewal")
        time.sleep(2)
        w = secret_writes(mark)
        t.require(len(w) == 1 and TLS_SECRET in w[0], f"writes to Secrets: {w}")
        t.ok("a certificate 10 days from its end (issued by openssl from the Secret's CA): "
             "replaced by a 365-day one from the same CA, one write")

        # 5. foreign CA -> replaced
        fca_key, fca_crt = os.path.join(work, "fca.key"), os.path.join(work, "fca.crt")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", fca_key)
        openssl("req", "-x509", "-new", "-key", fca_key, "-subj", "/CN=foreign", "-days", "3650",
                "-out", fca_crt)
        crt, key = issue_with_openssl(fca_crt, fca_key, 365, "foreign")
        rv = replace_tls(crt, key)
        ca5, tls5 = wait_pair("the foreign certificate replaced", lambda a, b: b["metadata"][
            "resourceVersion"] != rv and data(b, "tls.crt") != crt)
        check_pair(t, ca5, tls5, "refused-foreign")
        t.ok("a certificate from a foreign CA: replaced by one from the Secret's CA")

        # 6. unreadable CA key -> new CA and certificate
        obj = secret(CA_SECRET)
        obj["data"]["ca.key"] = base64.b64encode(b"not a key").decode()
        r = api.call("PUT", f"{SECRETS}/{CA_SECRET}", obj)
        t.require(r.code == 200, f"PUT {CA_SECRET}: HTTP {r.code}: {r.short()}")
        old_ca = data(ca5, "ca.crt")
        ca6, tls6 = wait_pair("a new CA and certificate", lambda a, b: data(a, "ca.crt") != old_ca
                              and data(a, "ca.key") != "not a key"
                              and data(b, "tls.crt") != data(tls5, "tls.crt"))
        check_pair(t, ca6, tls6, "new-ca")
        t.ok("an unreadable CA key: a new CA and a new certificate from it, verified again")

        # 7. a label removed: put back, data untouched
        before = secret(CA_SECRET)
        r = api.call("PATCH", f"{SECRETS}/{CA_SECRET}",
                     {"metadata": {"labels": {"app.kubernetes.io/managed-by": None}}},
                     "application/merge-patch+json")
        t.require(r.code == 200, f"PATCH {CA_SECRET}: HTTP {r.code}: {r.short()}")
        after = api.wait("mgo's label back on the CA Secret", lambda: (
            lambda o: o if (o["metadata"].get("labels") or {}).get(
                "app.kubernetes.io/managed-by") == "mgo" else None)(secret(CA_SECRET)), 30)
        t.require(after["data"] == before["data"], "the CA's data changed when its label was "
                  "put back")
        check_pair(t, after, secret(TLS_SECRET), "relabelled")
        t.ok("mgo's label removed from the CA Secret: put back, its data unchanged")

        events = api.call("GET", f"/apis/events.k8s.io/v1/namespaces/{NS}/events").obj["items"]
        issued = [e for e in events if e.get("reason") == "CertificateIssued"
                  and e["regarding"].get("name") == CLUSTER]
        # five issues; the last has the first one's text, and a repeat within 5 minutes is not
        # sent again (docs/kube.md)
        t.require(len(issued) == 4, f"{len(issued)} CertificateIssued Events, not 4")
        t.ok(f"{len(issued)} Normal CertificateIssued Events on the cluster")
        step_foreign(t, docs)
    except Exception:  # noqa: BLE001 (any failure: show mgo-kube's log, then re-raise)
        mgokube.print_logs()
        raise
    finally:
        mgokube.stop_all()


if __name__ == "__main__":
    sys.exit(run(main))
