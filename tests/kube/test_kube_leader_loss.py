#!/usr/bin/env python3
"""mgo-kube that loses its leader Lease writes nothing more: not even a write it had already sent.

Why: with --leader-elect, the leader must renew its Lease within the renew deadline (10 s after
its last successful renewal) or give up leadership, while another replica may take the Lease
once it has expired, 15 s (the lease duration) after that renewal at the earliest. The 5 s
between the two exist so that the old leader has stopped writing before a new one starts. A
write already sent when leadership is lost used to run to its end: its timeout is 10 s, so it
could be carried out by the API server up to ~10 s after the loss, i.e. past the earliest
takeover, overlapping the new leader's writes (and the process waited for it before exiting).
The fix cancels the requests in flight when leadership is lost (ctrl_cancel,
kc_client_set_cancel) and sends nothing after it.

How: mgo-kube (--leader-elect, one worker) talks to the API server through kproxy.py, a
TLS-terminating proxy in this process. Once it leads and the sample cluster (minimal.yaml) is
converged to the render oracle's objects and quiet, the proxy answers every Lease request 503
right after a successful renewal (LAST_OK) and holds every non-Lease write 9.5 s (less than
the 10 s write timeout: a write nobody cancels is forwarded before its client gives up). At
LAST_OK + 7 s the test deletes one of the cluster's ConfigMaps, so mgo-kube sends a write to
recreate it, which the proxy holds: that write is in flight when leadership is lost at
LAST_OK + 10 s (checked: it arrived at the proxy before the "leader election lost" line, and
less than 9 s before it, so it was still held then; otherwise the attempt proves nothing and is
retried with a new Lease, up to 3 times). Once that line is logged, Lease requests are forwarded
again, so a release of the Lease would reach the API server. Then:
  (a) no non-Lease write by mgo-kube is forwarded by the proxy, or received by the API server
      (its audit log, user agent mgo-kube/), after the loss;
  (b) no non-Lease write is sent to the proxy after the loss;
  (c) the process exits with status 1 at most 5 s after the "leader election lost" line (the
      fix takes ~1 s; the bound is for a loaded 2-core machine and sanitizer builds);
  (d) the Lease is not released by the losing process: no Lease write reaches the proxy or
      the audit log after the loss, and the Lease still names the loser with the renewTime of
      its last renewal (once lost, the Lease may be another replica's).
The loss moment is the "leader election lost" log line's timestamp (the cancel happens just
before it is logged).

Usage: test_kube_leader_loss.py MGO_KUBE MGO_CLI; the server from kube_harness.sh's exports
(run_with_apiserver.sh), sources from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import datetime
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgokube  # noqa: E402
from deploy_kube import Api, Failed, collection_path, object_path, run  # noqa: E402
from kproxy import Proxy  # noqa: E402
from mgokube import Controller  # noqa: E402

NS = "default"
CLUSTER = "minimal"
SELECTOR = f"multigres.com/cluster={CLUSTER}"
RENEW_S, LEASE_S, RETRY_S = 10.0, 15.0, 2.2  # mgo-kube's leader election (client-go's values)
HOLD_S = 9.5      # non-Lease writes held by the proxy (< the 10 s write timeout)
TRIGGER_S = 7.0   # the change that makes mgo-kube write, after the last good renewal
EXIT_BOUND_S = 5.0
ATTEMPTS = 3

MGO_KUBE = CLI = None
api = proxy = None
figures = {}


def epoch(ts):
    """Seconds since the epoch of an RFC 3339 UTC time with microseconds (klog, audit)."""
    ts = ts.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in ts else "%Y-%m-%dT%H:%M:%S"
    return datetime.datetime.strptime(ts, fmt).replace(tzinfo=datetime.timezone.utc).timestamp()


def log_time(c, msg):
    """The timestamp of C's first log line whose msg contains MSG, or None."""
    for line in c.text().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if msg in str(ev.get("msg", "")):
            return epoch(ev["ts"])
    return None


def lease(name):
    r = api.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{name}")
    return r.obj if r.code == 200 else None


def holder(name):
    return (((lease(name) or {}).get("spec")) or {}).get("holderIdentity") or ""


def existing(oracle):
    """The oracle's (kind, name) keys that exist (not being deleted)."""
    have = set()
    for av, kind in {(o["apiVersion"], k[0]) for k, o in oracle.items()}:
        r = api.call("GET", collection_path(av, kind, NS), query={"labelSelector": SELECTOR})
        if r.code != 200:
            raise Failed(f"list {kind}: HTTP {r.code}: {r.short()}")
        have |= {(kind, o["metadata"]["name"]) for o in r.obj["items"]
                 if not o["metadata"].get("deletionTimestamp")}
    return have & set(oracle)


def quiet(c, quiet_s=2.5, deadline_s=90):
    """Wait until mgo-kube wrote nothing but Lease renewals for QUIET_S."""
    end = time.monotonic() + deadline_s
    while True:
        mark = mgokube.audit_mark()
        time.sleep(quiet_s)
        if not c.alive():
            raise Failed(f"mgo-kube {c.name} exited ({c.proc.returncode}):\n{c.tail()}")
        if not mgokube.audit_writes(mark, exclude=("leases",)):
            return
        if time.monotonic() > end:
            raise Failed(f"mgo-kube still writing after {deadline_s} s")


def audit_after(since_mark, t, leases):
    """mgo-kube's audited writes received at or after T: on Leases or on everything else."""
    out = []
    for ev in mgokube.audit_writes(since_mark):
        is_lease = (ev.get("objectRef") or {}).get("resource") == "leases"
        if is_lease == leases and epoch(ev["requestReceivedTimestamp"]) >= t:
            out.append(ev)
    return out


def attempt(t, n, oracle, cm_key):
    """One run of the scenario. Raises Failed on a violation; returns False when the write was
    not in flight at the loss (the run proved nothing), True when it proved the property."""
    lease_name, ident = f"mgo-kube-leader-loss-{n}", f"loser-{n}"
    etcd_hostport = os.environ["KUBE_ETCD"].split("://", 1)[1]
    proxy.set_faults(fail_lease=False, hold_s=0.0)
    kubeconfig = proxy.kubeconfig(os.path.join(os.environ["KUBE_HARNESS_DIR"],
                                               f"kproxy-{n}.kubeconfig"))
    # the last --kubeconfig wins: the proxy's, not the harness's one Controller passes first
    c = Controller(MGO_KUBE, ident, [
        "--resolve", f"*.svc:2379={etcd_hostport}", "--leader-elect", "--workers", "1",
        "--leader-election-id", lease_name, "--leader-election-namespace", NS,
        "--identity", ident, "--kubeconfig", kubeconfig])
    try:
        api.wait(f"{ident} holds the Lease", lambda: holder(lease_name) == ident, 40)
        api.wait("the render oracle's objects exist",
                 lambda: existing(oracle) == set(oracle), 120)
        quiet(c)
        # Through the proxy? (else the faults below would not touch it)
        recs = proxy.records()
        if not any(r["lease"] and r["outcome"] == "forwarded" for r in recs):
            raise Failed("mgo-kube sent no Lease request through the proxy")

        def good_renewals():
            return [r for r in proxy.records() if r["lease"] and r["method"] == "PUT"
                    and r.get("outcome") == "forwarded" and r.get("code") == 200]

        # arm the faults right after a successful renewal (the next is RETRY_S later)
        n0 = len(good_renewals())
        api.wait("a Lease renewal", lambda: len(good_renewals()) > n0 and c.alive(), 20)
        mark = mgokube.audit_mark()
        proxy.set_faults(fail_lease=True, hold_s=HOLD_S)
        t_arm = time.time()
        last_ok = max(r["t_in"] for r in good_renewals())
        spec_at_arm = (lease(lease_name) or {}).get("spec") or {}
        print(f"  attempt {n}: Lease requests fail from {t_arm - last_ok:.2f} s after the last "
              f"good renewal; Lease {json.dumps(spec_at_arm)}")

        # the change, early enough that mgo-kube's write reaches the proxy before the loss
        time.sleep(max(0.0, last_ok + TRIGGER_S - time.time()))
        if not c.alive():
            raise Failed(f"mgo-kube exited ({c.proc.returncode}) before the change:\n{c.tail()}")
        t_change = time.time()
        r = api.call("DELETE", object_path(oracle[cm_key]))
        t.require(r.code == 200, f"delete {cm_key}: HTTP {r.code}: {r.short()}")

        # the loss, then the exit (polled; the bound is checked afterwards)
        end = last_ok + RENEW_S + 20
        t_lost = None
        while t_lost is None and time.time() < end:
            t_lost = log_time(c, "leader election lost")
            if t_lost is None:
                time.sleep(0.02)
        if t_lost is None:
            raise Failed(f"no 'leader election lost' line {end - last_ok:.0f} s after the last "
                         f"good renewal (Lease requests answered 503):\n{c.tail()}")
        proxy.set_faults(fail_lease=False)  # a release would now reach the API server
        t_seen = time.time()
        t_exit = None
        while time.time() < t_lost + 40:
            if c.proc.poll() is not None:
                t_exit = time.time()
                break
            time.sleep(0.02)
        rc = c.stop(timeout=15)  # a no-op when it exited; else TERM, then KILL
        # everything the proxy took is settled (the process is gone: held writes dropped)
        api.wait("the proxy's requests settled",
                 lambda: all(r.get("t_end") for r in proxy.records()), 20)
        recs = [r for r in proxy.records() if r["t_in"] >= t_arm - 1]
    except Exception:  # noqa: BLE001 (any failure: show mgo-kube's log, then re-raise)
        print(f"--- mgo-kube {c.name} log (tail)\n{c.tail(60)}", file=sys.stderr)
        raise
    finally:
        if c.alive():
            c.stop(timeout=15)

    rel = lambda x: f"+{x - last_ok:.2f} s" if x else "never"  # noqa: E731
    print(f"  change at {rel(t_change)}; 'leader election lost' at {rel(t_lost)} (seen "
          f"{rel(t_seen)}); exit {rc} at {rel(t_exit)} (times after the last good renewal)")
    writes = [r for r in recs if r["write"] and not r["lease"]]
    for r in writes:
        print(f"    {r['method']} {r['path'][:100]}: in {rel(r['t_in'])}, {r['outcome']} "
              f"{'at ' + rel(r.get('t_fwd') or r.get('t_end'))} code {r.get('code')}")

    problems = []

    def check(cond, what):
        if not cond:
            problems.append(what)

    # (a) nothing carried out after the loss
    fwd_after = [r for r in writes if r.get("t_fwd") and r["t_fwd"] >= t_lost]
    aud_after = audit_after(mark, t_lost, leases=False)
    check(not fwd_after and not aud_after,
          f"(a) writes after leadership was lost: forwarded by the proxy "
          f"{[(r['method'], r['path'], rel(r['t_fwd'])) for r in fwd_after]}; received by "
          f"the API server {[mgokube.describe_audit(e) for e in aud_after]}")
    # (b) nothing new sent after the loss
    sent_after = [r for r in writes if r["t_in"] >= t_lost]
    check(not sent_after, f"(b) writes sent after leadership was lost: "
          f"{[(r['method'], r['path'], rel(r['t_in'])) for r in sent_after]}")
    # (c) exit 1, promptly
    check(t_exit is not None and t_exit - t_lost <= EXIT_BOUND_S,
          f"(c) mgo-kube still running {(t_exit or time.time()) - t_lost:.1f} s after "
          f"'leader election lost' (bound {EXIT_BOUND_S} s)")
    check(rc == 1, f"(c) mgo-kube exited {rc} after losing leadership, not 1")
    # (d) the Lease not released
    lease_writes = [r for r in recs if r["lease"] and r["write"] and r["t_in"] >= t_lost]
    aud_lease = audit_after(mark, t_lost, leases=True)
    spec = (lease(lease_name) or {}).get("spec") or {}
    check(not lease_writes and not aud_lease,
          f"(d) Lease writes after the loss: proxy "
          f"{[(r['method'], r['outcome']) for r in lease_writes]}, audit "
          f"{[mgokube.describe_audit(e) for e in aud_lease]}")
    check(spec.get("holderIdentity") == ident
          and spec.get("renewTime") == spec_at_arm.get("renewTime"),
          f"(d) Lease after the loss {json.dumps(spec)}, at the fault {json.dumps(spec_at_arm)}")
    if problems:
        raise Failed("\n  ".join(problems))

    # the run proves something only if a write was in flight when leadership was lost
    inflight = [r for r in writes if t_lost - (HOLD_S - 0.5) < r["t_in"] < t_lost]
    if not inflight:
        print(f"  attempt {n}: no write was in flight at the loss (the change at "
              f"{rel(t_change)}): nothing proved, again")
        return False
    w = inflight[0]
    figures["write in flight at the loss (s)"] = round(t_lost - w["t_in"], 2)
    figures["exit after the loss (s)"] = round(t_exit - t_lost, 2)
    figures["write dropped after the loss (s)"] = round(w["t_end"] - t_lost, 2)
    t.ok(f"leadership lost at {rel(t_lost)} after the last good renewal with {w['method']} "
         f"{w['path'][:80]} in flight (sent {t_lost - w['t_in']:.2f} s before): it was "
         f"{w['outcome']} {w['t_end'] - t_lost:+.2f} s from the loss, never forwarded; no "
         f"write forwarded, audited or sent after the loss")
    t.ok(f"exit 1 {t_exit - t_lost:.2f} s after 'leader election lost' (bound "
         f"{EXIT_BOUND_S} s; the earliest takeover is {LEASE_S - RENEW_S:.0f} s after it)")
    t.ok(f"the Lease not released: no Lease write after the loss, still held by {ident} "
         f"with renewTime {spec.get('renewTime')}")
    return True


def main(t):
    global MGO_KUBE, CLI, api, proxy
    MGO_KUBE, CLI = sys.argv[1], sys.argv[2]
    src, shared = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    api = Api(f"mgo-test-kube-leader-loss/1 ({os.getpid()})")
    mgokube.install_crds(api, src)
    with open(f"{shared}/compat/upstream-samples/minimal.yaml") as f:
        docs = f.read().split("\n---\n")
    t.require(len(docs) == 2 and "kind: Secret" in docs[0] and "kind: MultigresCluster" in docs[1],
              "minimal.yaml is no longer a Secret and a cluster")
    r = api.create(docs[0], f"/api/v1/namespaces/{NS}/secrets", yaml=True)
    t.require(r.code == 201, f"create the Secret: HTTP {r.code}: {r.short()}")
    r = api.create(docs[1], f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters",
                   yaml=True)
    t.require(r.code == 201, f"create the cluster: HTTP {r.code}: {r.short()}")
    oracle = mgokube.render(CLI, docs[1], r.obj["metadata"]["uid"])
    cms = sorted(k for k in oracle if k[0] == "ConfigMap")
    t.require(cms, "the oracle renders no ConfigMap")
    t.ok(f"CRDs, the sample cluster; the oracle renders {len(oracle)} objects")
    proxy = Proxy(os.environ["KUBE_SERVER"], os.environ["KUBE_CA"], os.environ["KUBE_TOKEN"])
    t0 = time.monotonic()
    try:
        for n in range(1, ATTEMPTS + 1):
            if attempt(t, n, oracle, cms[0]):
                break
        else:
            raise Failed(f"no write in flight at the loss in {ATTEMPTS} attempts")
    except Exception:  # noqa: BLE001 (any failure: show mgo-kube's log, then re-raise)
        mgokube.print_logs()
        raise
    finally:
        mgokube.stop_all()
        proxy.close()
        figures["scenario (s)"] = round(time.monotonic() - t0, 1)
        print("figures: " + json.dumps(figures))


if __name__ == "__main__":
    sys.exit(run(main))
