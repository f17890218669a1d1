"""Support for the acceptance test of mgo-kube against a real kube-apiserver (standard library
only): the CRDs, mgo-kube processes (started, probed, always stopped), its metrics, readiness of
pods and workloads written the way a kubelet and the controller-manager would, the audit log's
writes by user agent, the harness's apiserver restarts and etcd compaction, and the render
oracle (`mgo render`, mgo's CLI: the objects a fresh reconcile creates, computed without
mgo-kube's code path).
"""

import atexit
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from deploy_kube import Failed

GROUP = "multigres.com"
VERSION = "v1alpha1"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_PLURALS = ("multigresclusters", "coretemplates", "celltemplates", "shardtemplates")
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kube_harness.sh")
USER_AGENT_PREFIX = "mgo-kube/"

_running = []  # every Controller started and not yet stopped


def install_crds(api, src):
    for plural in CRD_PLURALS:
        with open(f"{src}/host-shims/kube/deploy/crds/{plural}.yaml") as f:
            text = f.read()
        name = f"{plural}.{GROUP}"
        r = api.apply(text, f"{CRD_PATH}/{name}")
        if r.code not in (200, 201):
            raise Failed(f"apply CRD {name}: HTTP {r.code}: {r.short()}")

    def established(name):
        r = api.call("GET", f"{CRD_PATH}/{name}")
        conds = {c["type"]: c["status"]
                 for c in ((r.obj or {}).get("status") or {}).get("conditions") or []}
        return conds.get("Established") == "True"

    for plural in CRD_PLURALS:
        api.wait(f"CRD {plural} Established", lambda: established(f"{plural}.{GROUP}"))
        path = f"/apis/{GROUP}/{VERSION}/{plural}"
        api.wait(f"{path} served", lambda: api.call("GET", path).code == 200)


# ---- mgo-kube processes -------------------------------------------------------------------

class Controller:
    """One mgo-kube process with its own stderr log; ports parsed from its log."""

    def __init__(self, binary, name, args=(), env=None):
        self.name = name
        # inside the harness's directory, which `down` removes
        self.dir = tempfile.mkdtemp(prefix=f"ctrl-{name}.", dir=os.environ["KUBE_HARNESS_DIR"])
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.log = open(self.log_path, "wb")
        cmd = [binary, "--kubeconfig", os.environ["KUBECONFIG"],
               "--health-probe-bind-address", "127.0.0.1:0",
               "--metrics-bind-address", "127.0.0.1:0", "--log-level", "debug", *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env or os.environ.copy())
        self.pid = self.proc.pid
        _running.append(self)
        self.probe_port = self.metrics_port = None
        end = time.monotonic() + 30
        while self.probe_port is None or self.metrics_port is None:
            text = self.text()
            m = re.search(r"probes on port (\d+)", text)
            self.probe_port = int(m.group(1)) if m else None
            m = re.search(r"metrics on port (\d+)", text)
            self.metrics_port = int(m.group(1)) if m else None
            if self.proc.poll() is not None:
                raise Failed(f"mgo-kube {name} exited ({self.proc.returncode}) during start:\n"
                             + self.tail())
            if time.monotonic() > end:
                raise Failed(f"mgo-kube {name}: no ports in its log after 30 s:\n" + self.tail())
            time.sleep(0.05)

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=40):
        return "\n".join(self.text().splitlines()[-n:])

    def get(self, port, path, timeout=5):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return None, ""

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while self.get(self.probe_port, "/readyz")[0] != 200:
            if self.proc.poll() is not None:
                raise Failed(f"mgo-kube {self.name} exited ({self.proc.returncode}):\n"
                             + self.tail())
            if time.monotonic() > end:
                raise Failed(f"mgo-kube {self.name}: /readyz not 200 after {deadline_s} s")
            time.sleep(0.1)

    def alive(self):
        return self.proc.poll() is None

    def metrics(self):
        code, body = self.get(self.metrics_port, "/metrics")
        if code != 200:
            raise Failed(f"mgo-kube {self.name}: /metrics answered {code}")
        return parse_metrics(body)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the process and wait; KILL on timeout. Its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig != signal.SIGKILL:
                self.proc.send_signal(signal.SIGCONT)  # in case the test froze it
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                if self in _running:
                    _running.remove(self)
                self.log.close()
                raise Failed(f"mgo-kube {self.name} still running {timeout} s after {sig!r}:\n"
                             + self.tail())
        if self in _running:
            _running.remove(self)
        self.log.close()
        return self.proc.returncode


def print_logs(lines=60):
    """The tail of every running mgo-kube's log, on stderr (after a failure)."""
    for c in list(_running):
        print(f"--- mgo-kube {c.name} log (tail)\n{c.tail(lines)}", file=sys.stderr)


def stop_all():
    for c in list(_running):
        try:
            c.stop(timeout=15)
        except Failed:
            pass


atexit.register(stop_all)


# ---- metrics ------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Metrics:
    def __init__(self, samples):
        self.samples = samples  # [(name, {labels}, value)]

    def get(self, name, **labels):
        """Sum of the samples of NAME whose labels include LABELS; None when there is none."""
        vals = [v for n, lab, v in self.samples
                if n == name and all(lab.get(k) == w for k, w in labels.items())]
        return sum(vals) if vals else None

    def value(self, name, **labels):
        return self.get(name, **labels) or 0.0

    def series(self, name):
        return [(lab, v) for n, lab, v in self.samples if n == name]


def parse_metrics(text):
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise Failed(f"unparsable metrics line: {line!r}")
        labels = dict(_LABEL.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return Metrics(out)


# ---- readiness, as the kubelet and the controller-manager would write it --------------------

def set_pod_ready(api, ns, name, ready=True):
    status = "True" if ready else "False"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    body = {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": status, "lastTransitionTime": now},
        {"type": "ContainersReady", "status": status, "lastTransitionTime": now}]}}
    r = api.call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", body,
                 "application/strategic-merge-patch+json")
    if r.code != 200:
        raise Failed(f"mark pod {name} ready={ready}: HTTP {r.code}: {r.short()}")


def set_workload_ready(api, obj):
    kind = obj["kind"]
    res = "deployments" if kind == "Deployment" else "statefulsets"
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    n = (obj.get("spec") or {}).get("replicas", 1)
    st = {"observedGeneration": obj["metadata"]["generation"], "replicas": n,
          "readyReplicas": n, "updatedReplicas": n, "availableReplicas": n}
    if kind == "StatefulSet":
        st["currentReplicas"] = n
    r = api.call("PATCH", f"/apis/apps/v1/namespaces/{ns}/{res}/{name}/status", {"status": st},
                 "application/merge-patch+json")
    if r.code != 200:
        raise Failed(f"mark {kind} {name} ready: HTTP {r.code}: {r.short()}")


def pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def workload_ready(obj):
    st = obj.get("status") or {}
    return (st.get("observedGeneration", 0) >= obj["metadata"]["generation"]
            and st.get("readyReplicas", 0) >= (obj.get("spec") or {}).get("replicas", 1))


def mark_all_ready(api, ns, selector):
    """Every Pod of SELECTOR Ready (unless being deleted), every Deployment and StatefulSet
    with its current generation observed and all replicas ready. How many were written."""
    n = 0
    r = api.call("GET", f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": selector})
    for pod in r.obj["items"]:
        if not pod_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
            set_pod_ready(api, ns, pod["metadata"]["name"])
            n += 1
    for res, kind in (("deployments", "Deployment"), ("statefulsets", "StatefulSet")):
        r = api.call("GET", f"/apis/apps/v1/namespaces/{ns}/{res}",
                     query={"labelSelector": selector})
        for obj in r.obj["items"]:
            obj["kind"] = kind
            if not workload_ready(obj):
                set_workload_ready(api, obj)
                n += 1
    return n


# ---- the audit log ------------------------------------------------------------------------

def audit_mark():
    """A point in the audit log: its current size."""
    return os.path.getsize(os.environ["KUBE_AUDIT_LOG"])


WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def audit_events(since, prefix=USER_AGENT_PREFIX, verbs=WRITE_VERBS, exclude=(),
                 stages=(None, "ResponseComplete")):
    """The events of the verbs VERBS in the stages STAGES since SINCE whose userAgent starts
    with PREFIX, except those on the resources EXCLUDE (e.g. "leases")."""
    out = []
    with open(os.environ["KUBE_AUDIT_LOG"], "rb") as f:
        f.seek(since)
        for line in f.read().decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue  # a line being written
            if ev.get("stage") not in stages or ev.get("verb") not in verbs:
                continue
            if ((ev.get("objectRef") or {}).get("resource") not in exclude
                    and str(ev.get("userAgent", "")).startswith(prefix)):
                out.append(ev)
    return out


def audit_writes(since, prefix=USER_AGENT_PREFIX, exclude=()):
    """The write events (ResponseComplete) since SINCE whose userAgent starts with PREFIX,
    except those on the resources EXCLUDE (e.g. "leases"). The policy also logs some reads
    (kube_harness.sh): those are left out here."""
    return audit_events(since, prefix, WRITE_VERBS, exclude)


def user_agent_of(ev):
    return str(ev.get("userAgent", ""))


def describe_audit(ev):
    ref = ev.get("objectRef") or {}
    return (f"{ev.get('verb')} {ref.get('resource')}/{ref.get('name')}"
            f"{'/' + ref['subresource'] if ref.get('subresource') else ''}"
            f" -> {(ev.get('responseStatus') or {}).get('code')}")


# ---- the harness's servers ----------------------------------------------------------------

def harness(*args):
    p = subprocess.run([HARNESS, *args, os.environ["KUBE_HARNESS_DIR"]], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise Failed(f"kube_harness.sh {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    for line in p.stderr.splitlines():
        print(f"  {line}")
    return p.stdout.strip()


def etcd_post(path, body):
    req = urllib.request.Request(os.environ["KUBE_ETCD"] + path, data=json.dumps(body).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def etcd_delete(key):
    """Delete KEY in etcd itself (behind the apiserver's back); how many keys went."""
    r = etcd_post("/v3/kv/deleterange", {"key": base64.b64encode(key.encode()).decode()})
    return int(r.get("deleted", 0))


def etcd_get(key):
    r = etcd_post("/v3/kv/range", {"key": base64.b64encode(key.encode()).decode()})
    return r.get("kvs") or []


def etcd_revision():
    return int(etcd_post("/v3/kv/range", {"key": "Lw=="})["header"]["revision"])


# ---- the render oracle --------------------------------------------------------------------

def render(cli, manifest_text, owner_uid, namespace="default"):
    """{(kind, name): object} of `mgo render --json --owner-uid UID` on the manifest."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(manifest_text)
        path = f.name
    try:
        p = subprocess.run([cli, "render", "--json", "--owner-uid", owner_uid,
                            "--namespace", namespace, path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if p.returncode != 0:
        raise Failed(f"mgo render: exit {p.returncode}: {p.stderr}")
    return {(o["kind"], o["metadata"]["name"]): o for o in json.loads(p.stdout)["items"]}


def validate(cli, manifest_text):
    """(exit status, output) of `mgo validate` on the manifest."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(manifest_text)
        path = f.name
    try:
        p = subprocess.run([cli, "validate", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    return p.returncode, p.stdout + p.stderr


def contains(want, got):
    """True when every field of WANT is in GOT with an equal value (maps: recursively; lists:
    same length, element by element; scalars: equal). The server may add fields."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and contains(v, got[k])
                                             for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got)
                and all(contains(a, b) for a, b in zip(want, got)))
    return want == got


def first_difference(want, got, path=""):
    """The path of the first field of WANT missing or different in GOT (for messages)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return f"{path}: {got!r} is not a map"
        for k, v in want.items():
            if k not in got:
                return f"{path}.{k}: missing (want {json.dumps(v)[:200]})"
            d = first_difference(v, got[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return f"{path}: want {json.dumps(want)[:300]}, got {json.dumps(got)[:300]}"
        for i, (a, b) in enumerate(zip(want, got)):
            d = first_difference(a, b, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if want == got else f"{path}: want {want!r}, got {got!r}"
