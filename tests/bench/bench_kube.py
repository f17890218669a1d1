#!/usr/bin/env python3
"""mgo-kube against a real kube-apiserver: time to converge, memory and CPU (figures only).

  KUBE_APISERVER_EXTRA_ARGS=--service-cluster-ip-range=10.0.0.0/16 \\
      tests/kube/run_with_apiserver.sh python3 tests/bench/bench_kube.py MGO_KUBE N1 [N2 ...]
  e.g. ... build/gcc-release/bin/mgo-kube 1 10 100

The harness's default Service range (10.0.0.0/24) holds ClusterIPs for ~36 copies of the sample
(7 per cluster); the benchmark checks this first and says so.

Needs the harness's environment (KUBE_SERVER, KUBE_TOKEN, KUBE_CA, KUBE_ETCD, KUBECONFIG). The
mgo command line is taken from beside MGO_KUBE (bin/mgo). The cluster is the upstream sample
$MGO_SHARED_DIR/compat/upstream-samples/minimal.yaml (MGO_SHARED_DIR defaults to ../shared beside
the repository): each copy is a MultigresCluster named mNNN, with its own copy of the Secret, in
its own namespace bench-NNN.

One mgo-kube runs for the whole benchmark (--workers 4, topology etcd resolved to the harness's
etcd). Clusters are added incrementally: for N1, N2, ... (increasing) the step adds N(i)-N(i-1)
clusters. Per step it prints:
  - per added cluster, the time from its create request's response (the cluster exists) to the
    last of its rendered objects (`mgo render`) existing on the server (seen through watches):
    median and max; and the total from the step's first create request to its last cluster done;
  - once the work queue is empty: mgo-kube's VmRSS, VmHWM and CPU time (utime+stime);
  - the CPU time, reconciles and API writes during a 20 s idle period afterwards.
No figure is asserted; the exit status is non-zero only when the benchmark cannot run (mgo-kube
exits, a cluster does not converge within the deadline, the server refuses a request).
mgo-kube is stopped (TERM, then KILL) whatever happens.
"""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "kube"))
import deploy_kube  # noqa: E402 - the harness's HTTP client
MANAGER = "bench"
IDLE_S = 20.0
CONVERGE_DEADLINE_S = 240.0   # per step, from its first create
QUEUE_DEADLINE_S = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Kinds `mgo render --target kubernetes` produces: kind -> API collection (all namespaces).
WATCHED = {
    "Pod": "/api/v1/pods",
    "PersistentVolumeClaim": "/api/v1/persistentvolumeclaims",
    "Service": "/api/v1/services",
    "ConfigMap": "/api/v1/configmaps",
    "Deployment": "/apis/apps/v1/deployments",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    "PodDisruptionBudget": "/apis/policy/v1/poddisruptionbudgets",
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


class Api(deploy_kube.Api):
    """deploy_kube's client, plus what the benchmark needs: a streaming request for watches and
    a call that raises on an unexpected status."""

    def __init__(self):
        super().__init__("mgo-bench-kube")

    def stream(self, path, timeout):
        req = urllib.request.Request(self.server + path, method="GET")
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", self.user_agent)
        return urllib.request.urlopen(req, context=self.ctx, timeout=timeout)

    def must(self, method, path, body=None, ctype="application/json", ok=(200, 201)):
        r = self.call(method, path, body, ctype)
        if r.code not in ok:
            raise BenchError(f"{method} {path}: HTTP {r.code} {r.message()}")
        return r.obj


# ---- watching the rendered kinds: first time each object is seen ----

class Seen:
    """(kind, namespace, name) -> monotonic time first seen, fed by one watch per kind."""

    def __init__(self, api):
        self.api = api
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.first = {}
        self.stop = False
        self.errors = []
        self.threads = []

    def _note(self, kind, obj, t):
        meta = obj.get("metadata", {})
        key = (kind, meta.get("namespace"), meta.get("name"))
        with self.cond:
            if key not in self.first:
                self.first[key] = t
                self.cond.notify_all()

    def _list(self, kind, path):
        obj = self.api.must("GET", path)
        t = time.monotonic()
        for item in obj.get("items") or []:
            self._note(kind, item, t)
        return obj["metadata"]["resourceVersion"]

    def _run(self, kind, path):
        try:
            rv = self._list(kind, path)
            while not self.stop:
                q = f"?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}"
                try:
                    with self.api.stream(path + q, timeout=30) as r:
                        while not self.stop:
                            line = r.readline()
                            if not line:
                                break
                            t = time.monotonic()
                            ev = json.loads(line)
                            o = ev.get("object") or {}
                            if ev.get("type") == "ERROR":
                                rv = self._list(kind, path)  # expired: relist
                                break
                            new_rv = o.get("metadata", {}).get("resourceVersion")
                            if new_rv:
                                rv = new_rv
                            if ev.get("type") in ("ADDED", "MODIFIED"):
                                self._note(kind, o, t)
                except (OSError, ValueError):  # socket timeout when idle, closed stream
                    if self.stop:
                        break
                    time.sleep(0.1)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.errors.append(f"watch {kind}: {e}")
            with self.cond:
                self.cond.notify_all()

    def start(self):
        for kind, path in WATCHED.items():
            th = threading.Thread(target=self._run, args=(kind, path), daemon=True)
            th.start()
            self.threads.append(th)

    def done_time(self, keys):
        """Time the last of KEYS was first seen, or None when one is still missing."""
        with self.lock:
            ts = [self.first.get(k) for k in keys]
        return None if any(t is None for t in ts) else max(ts)


# ---- mgo-kube ----

class Controller:
    def __init__(self, binary, logpath):
        self.binary = binary
        self.logpath = logpath
        self.proc = None
        self.metrics_port = None
        self.probe_port = None

    def start(self):
        etcd = os.environ["KUBE_ETCD"]
        hostport = re.sub(r"^[a-z]+://", "", etcd).rstrip("/")
        args = [self.binary, "--kubeconfig", os.environ["KUBECONFIG"], "--workers", "4",
                "--health-probe-bind-address", "127.0.0.1:0",
                "--metrics-bind-address", "127.0.0.1:0",
                "--resolve", f"*.svc:2379={hostport}"]
        self.args = args
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            self.check_alive()
            with open(self.logpath, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = re.search(r"probes on port (\d+)", text)
            n = re.search(r"metrics on port (\d+)", text)
            if m and n:
                self.probe_port, self.metrics_port = int(m.group(1)), int(n.group(1))
                break
            time.sleep(0.05)
        else:
            raise BenchError("mgo-kube did not log its probe and metrics ports within 30 s")
        end = time.monotonic() + 60
        while time.monotonic() < end:
            self.check_alive()
            if self.http(self.probe_port, "/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise BenchError("mgo-kube's /readyz not 200 within 60 s")

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise BenchError(f"mgo-kube exited with status {rc}")

    @staticmethod
    def http(port, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def metrics(self):
        """{name: {labels: value}}."""
        code, text = self.http(self.metrics_port, "/metrics")
        if code != 200:
            self.check_alive()
            raise BenchError(f"/metrics: HTTP {code}")
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
        return out

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)

    def mem_kib(self):
        got = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    got[k] = int(v.split()[0])
        return got

    def stop(self):
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                log("mgo-kube still running 20 s after TERM: KILL")
                self.proc.kill()
                self.proc.wait()
        self.logf.close()

    def log_tail(self, n=30):
        try:
            with open(self.logpath, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""


def total(metrics, name):
    return sum(metrics.get(name, {}).values())


def by_label(metrics, name, label):
    out = {}
    for labels, v in metrics.get(name, {}).items():
        m = re.search(label + r'="([^"]*)"', labels)
        out[m.group(1) if m else labels] = v
    return out


# ---- the sample and its copies ----

def split_docs(text):
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        if re.match(r"^---\s*(#.*)?$", line):
            docs.append("".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("".join(cur))
    return [d for d in docs if any(ln.strip() and not ln.lstrip().startswith("#")
                                   for ln in d.splitlines())]


def sub_one(pattern, repl, text, what):
    new, n = re.subn(pattern, repl, text, flags=re.M)
    if n != 1:
        raise BenchError(f"sample: expected one '{what}' line, found {n}")
    return new


class Sample:
    def __init__(self, path):
        with open(path) as f:
            docs = split_docs(f.read())
        self.secret = self.cluster = None
        for d in docs:
            kind = re.search(r"^kind:\s*(\S+)", d, re.M).group(1)
            if kind == "Secret":
                self.secret = d
            elif kind == "MultigresCluster":
                self.cluster = d
        if not self.secret or not self.cluster:
            raise BenchError(f"{path}: want a Secret and a MultigresCluster")
        self.cluster_name = re.search(r"^  name:\s*(\S+)", self.cluster, re.M).group(1)

    def copy(self, ns, name):
        secret = sub_one(r"^  namespace: default$", f"  namespace: {ns}", self.secret, "namespace")
        cluster = sub_one(r"^  namespace: default$", f"  namespace: {ns}", self.cluster,
                          "namespace")
        cluster = sub_one(rf"^  name: {re.escape(self.cluster_name)}$", f"  name: {name}",
                          cluster, "name")
        return secret, cluster


def render_keys(mgo, cluster_yaml, tmp):
    path = os.path.join(tmp, "cluster.yaml")
    with open(path, "w") as f:
        f.write(cluster_yaml)
    p = subprocess.run([mgo, "render", "--target", "kubernetes", "--json", "--owner-uid",
                        "00000000-0000-0000-0000-000000000000", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"mgo render: exit {p.returncode}: {p.stderr.strip()}")
    keys = []
    items = json.loads(p.stdout)["items"]
    render_keys.cluster_ips = sum(1 for o in items if o["kind"] == "Service" and
                                  (o.get("spec") or {}).get("clusterIP") != "None")
    for o in items:
        if o["kind"] not in WATCHED:
            raise BenchError(f"mgo render gives a {o['kind']}, which the benchmark does not watch")
        keys.append((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]))
    return keys


def service_ip_capacity():
    """ClusterIPs the harness's kube-apiserver can hand out (its last --service-cluster-ip-range),
    or None when unknown."""
    try:
        with open(os.path.join(os.environ["KUBE_HARNESS_DIR"], "apiserver.pid")) as f:
            pid = f.read().strip()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode().split("\0")
    except (KeyError, OSError):
        return None
    ranges = [a.split("=", 1)[1] for a in args if a.startswith("--service-cluster-ip-range=")]
    if not ranges or "/" not in ranges[-1] or ":" in ranges[-1]:
        return None
    return 2 ** (32 - int(ranges[-1].split("/")[1])) - 3  # network, broadcast, the kubernetes one


def install_crds(api, shared_crds):
    names = []
    for f in sorted(os.listdir(shared_crds)):
        if not f.endswith(".yaml"):
            continue
        with open(os.path.join(shared_crds, f)) as fh:
            text = fh.read()
        name = re.search(r"^  name:\s*(\S+)", text, re.M).group(1)
        api.must("PATCH", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
                 f"?fieldManager={MANAGER}&force=true", text, "application/apply-patch+yaml")
        names.append(name)
    end = time.monotonic() + 60
    for name in names:
        while True:
            obj = api.must("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > end:
                raise BenchError(f"CRD {name} not Established within 60 s")
            time.sleep(0.1)
    # the group's discovery can lag behind Established: wait until the collection lists
    while api.call("GET", "/apis/multigres.com/v1alpha1/multigresclusters").code != 200:
        if time.monotonic() > end:
            raise BenchError("multigresclusters not served within 60 s")
        time.sleep(0.1)
    return names


def wait_queue_empty(ctl, deadline_s):
    """Until mgo_kube_workqueue_depth is 0 on 3 polls in a row, 0.5 s apart; the seconds taken."""
    t0 = time.monotonic()
    zeros = 0
    while zeros < 3:
        ctl.check_alive()
        m = ctl.metrics()
        zeros = zeros + 1 if total(m, "mgo_kube_workqueue_depth") == 0 else 0
        if time.monotonic() - t0 > deadline_s:
            raise BenchError(f"work queue not empty after {deadline_s:.0f} s "
                             f"(depth {total(m, 'mgo_kube_workqueue_depth'):.0f})")
        if zeros < 3:
            time.sleep(0.5)
    return time.monotonic() - t0


def main(argv):
    if len(argv) < 3:
        print("usage: bench_kube.py MGO_KUBE N [N...]  (under tests/kube/run_with_apiserver.sh)",
              file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[1])
    steps = [int(a) for a in argv[2:]]
    if any(b <= a for a, b in zip(steps, steps[1:])) or steps[0] < 1:
        print("bench_kube.py: the counts must be increasing and positive", file=sys.stderr)
        return 2
    mgo = os.path.join(os.path.dirname(binary), "mgo")
    shared = os.environ.get("MGO_SHARED_DIR") or os.path.join(os.path.dirname(REPO), "shared")
    sample_path = os.path.join(shared, "compat", "upstream-samples", "minimal.yaml")
    crds = os.path.join(REPO, "host-shims", "kube", "deploy", "crds")
    for p in (binary, mgo, sample_path):
        if not os.path.exists(p):
            print(f"bench_kube.py: missing {p}", file=sys.stderr)
            return 1

    # SIGTERM/SIGINT end the run through the finally below (mgo-kube stopped)
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)

    api = Api()
    sample = Sample(sample_path)
    tmp = tempfile.mkdtemp(prefix="mgo-bench-kube.")
    ctl = Controller(binary, os.path.join(tmp, "mgo-kube.log"))
    rows = []
    t_start = time.monotonic()
    try:
        install_crds(api, crds)
        total_n = steps[-1]
        copies = []
        for i in range(1, total_n + 1):
            ns, name = f"bench-{i:03d}", f"m{i:03d}"
            secret, cluster = sample.copy(ns, name)
            copies.append((ns, name, secret, cluster, render_keys(mgo, cluster, tmp)))
        nobj = len(copies[0][4])
        need, cap = render_keys.cluster_ips * total_n, service_ip_capacity()
        if cap is not None and need > cap:
            raise BenchError(f"{total_n} clusters need {need} Service ClusterIPs; the "
                             f"kube-apiserver's --service-cluster-ip-range holds {cap}: run with "
                             "KUBE_APISERVER_EXTRA_ARGS=--service-cluster-ip-range=10.0.0.0/16")
        log(f"sample {sample_path}: {nobj} rendered objects per cluster "
            f"({', '.join(sorted({k[0] for k in copies[0][4]}))})")

        seen = Seen(api)
        seen.start()
        ctl.start()
        log(f"mgo-kube pid {ctl.proc.pid}: {' '.join(ctl.args)}")
        log("mode: ONE mgo-kube for the whole run, clusters added incrementally; one namespace "
            "per cluster (bench-NNN, each with its own Secret)")
        m = ctl.metrics()
        base = {"cpu": ctl.cpu_s(), "writes": total(m, "mgo_kube_api_writes_total"),
                "rec": total(m, "mgo_kube_reconcile_total")}
        mem = ctl.mem_kib()
        log(f"synced, empty: VmRSS {mem['VmRSS'] / 1024:.1f} MiB, VmHWM {mem['VmHWM'] / 1024:.1f} "
            f"MiB, threads {mem['Threads']}, CPU {base['cpu']:.2f} s")

        have = 0
        for n in steps:
            batch = copies[have:n]
            for ns, _name, secret, _cluster, _keys in batch:
                api.must("POST", "/api/v1/namespaces",
                         {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                api.must("POST", f"/api/v1/namespaces/{ns}/secrets?fieldManager={MANAGER}",
                         secret, "application/yaml")
            created = []
            t_first = time.monotonic()
            for ns, name, _secret, cluster, keys in batch:
                api.must("POST", f"/apis/multigres.com/v1alpha1/namespaces/{ns}/multigresclusters"
                         f"?fieldManager={MANAGER}", cluster, "application/yaml")
                created.append((name, time.monotonic(), keys))  # it exists from here on
            t_created = time.monotonic() - t_first
            pending = {name: (t0, keys) for name, t0, keys in created}
            lat = {}
            while pending:
                for name, (t0, keys) in list(pending.items()):
                    done = seen.done_time(keys)
                    if done is not None:
                        lat[name] = done - t0
                        del pending[name]
                if not pending:
                    break
                if seen.errors:
                    raise BenchError("; ".join(seen.errors))
                ctl.check_alive()
                if time.monotonic() - t_first > CONVERGE_DEADLINE_S:
                    name, (t0, keys) = next(iter(pending.items()))
                    with seen.lock:
                        missing = [k for k in keys if k not in seen.first]
                    raise BenchError(f"{len(pending)} of {len(batch)} clusters not converged "
                                     f"{CONVERGE_DEADLINE_S:.0f} s after the step's first create;"
                                     f" {name} misses {len(missing)} of {len(keys)}, e.g. "
                                     f"{missing[:3]}")
                with seen.cond:
                    seen.cond.wait(0.2)
            t_all = max(t0 + lat[name] for name, t0, _k in created) - t_first
            q_s = wait_queue_empty(ctl, QUEUE_DEADLINE_S)
            m = ctl.metrics()
            cpu = ctl.cpu_s()
            mem = ctl.mem_kib()
            writes = total(m, "mgo_kube_api_writes_total")
            rec = total(m, "mgo_kube_reconcile_total")
            verbs = by_label(m, "mgo_kube_api_writes_total", "verb")
            werr = total(m, "mgo_kube_api_write_errors_total")
            cached = total(m, "mgo_kube_cached_objects")
            # idle
            time.sleep(IDLE_S)
            ctl.check_alive()
            m2 = ctl.metrics()
            idle_cpu = ctl.cpu_s() - cpu
            idle_writes = total(m2, "mgo_kube_api_writes_total") - writes
            idle_rec = total(m2, "mgo_kube_reconcile_total") - rec
            vals = sorted(lat.values())
            row = {
                "n": n, "added": len(batch), "median": statistics.median(vals), "max": vals[-1],
                "all": t_all, "create_s": t_created, "queue_s": q_s,
                "rss": mem["VmRSS"] / 1024, "hwm": mem["VmHWM"] / 1024, "threads": mem["Threads"],
                "cpu": cpu, "step_cpu": cpu - base["cpu"],
                "writes": writes, "step_writes": writes - base["writes"],
                "step_rec": rec - base["rec"], "werr": werr, "cached": cached,
                "idle_cpu": idle_cpu, "idle_writes": idle_writes, "idle_rec": idle_rec,
                "verbs": verbs,
            }
            rows.append(row)
            base = {"cpu": cpu + idle_cpu, "writes": writes + idle_writes, "rec": rec + idle_rec}
            log(f"N={n}: +{len(batch)} clusters ({len(batch) * nobj} objects): median "
                f"{row['median']:.2f} s, max {row['max']:.2f} s, all {t_all:.2f} s (creates took "
                f"{t_created:.2f} s); queue empty {q_s:.1f} s later; RSS {row['rss']:.1f} MiB, "
                f"HWM {row['hwm']:.1f} MiB, CPU {cpu:.2f} s; idle {IDLE_S:.0f} s: CPU "
                f"{idle_cpu:.2f} s, {idle_rec:.0f} reconciles, {idle_writes:.0f} writes; writes "
                f"by verb {json.dumps(verbs, sort_keys=True)}")
            have = n
        seen.stop = True
    except BenchError as e:
        print(f"bench_kube: FAILED: {e}", file=sys.stderr)
        tail = ctl.log_tail()
        if tail:
            print(f"--- mgo-kube log (tail)\n{tail}", file=sys.stderr)
        return 1
    finally:
        ctl.stop()
        if ctl.proc is not None:
            log(f"mgo-kube stopped (exit status {ctl.proc.returncode})")
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"mgo-kube on a real kube-apiserver: {nobj} rendered objects per cluster; one mgo-kube "
          "(--workers 4), clusters added incrementally, one namespace per cluster")
    hdr = (f"{'N':>5} {'added':>5} {'median s':>8} {'max s':>7} {'all s':>7} {'RSS MiB':>8} "
           f"{'HWM MiB':>8} {'CPU s':>7} {'step CPU':>8} {'writes':>7} {'reconc':>7} "
           f"{'idle CPU s':>10} {'idle rec':>8} {'idle wr':>7}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['n']:>5} {r['added']:>5} {r['median']:>8.2f} {r['max']:>7.2f} {r['all']:>7.2f} "
              f"{r['rss']:>8.1f} {r['hwm']:>8.1f} {r['cpu']:>7.2f} {r['step_cpu']:>8.2f} "
              f"{r['step_writes']:>7.0f} {r['step_rec']:>7.0f} {r['idle_cpu']:>10.2f} "
              f"{r['idle_rec']:>8.0f} {r['idle_writes']:>7.0f}")
    print("N: clusters in total; added: created in this step; median/max: per added cluster, "
          "create response to its last rendered object on the server (watched); all: the step's "
          "first create request to its last cluster done; RSS/HWM/CPU s: mgo-kube after the step, "
          "work queue empty (CPU = utime+stime since start); step CPU, writes "
          "(mgo_kube_api_writes_total), reconc "
          f"(mgo_kube_reconcile_total): during the step; idle: during {IDLE_S:.0f} s afterwards.")
    print(f"total benchmark time {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
