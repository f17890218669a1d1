#!/usr/bin/env python3
"""mgo-kube, the controller, against a real kube-apiserver and etcd (no kubelet, no
controller-manager: the test writes pod and workload readiness as they would, and removes the
pvc-protection finalizer as its controller would once the pod is gone).

Expected values come first from hand-written literals (the sample's inventory, names, owner,
labels and shape, from docs/spec and the facts), then from the render oracle (`mgo render --json
--owner-uid UID`, mgo's CLI: libmgo's renderer, the same code as mgo-kube's actions, so only an
extra layer), from the API server, from the audit log and from the rules of docs/spec
(lifecycle.md, errors.md), never from mgo-kube's own output. Steps:
  1. the upstream sample minimal.yaml: the hand-written inventory with its hand-written labels
     (standard, component, hierarchy); exactly the oracle's objects (kind/name by the label
     multigres.com/cluster), each with the oracle's labels, annotations, ownerReferences and
     every field of its spec/data; phase Initializing (no instance ready), Progressing (one
     ready), Healthy (all ready), observedGeneration, Available and TopologyRegistered True;
  2. steady state: no write by a "mgo-kube/" user agent in the audit log for 60 s;
  3. spec edits: scale a pool up (only the objects the oracle says are new or changed move),
     down (the victim drains requested -> draining -> acknowledged -> ready-for-deletion, is
     deleted, its PVC deleted per whenScaled: Delete), a component's resources;
  4. owned objects deleted by hand are recreated (new uid), nothing else moves;
  5. a spec the CRD accepts and `mgo validate` refuses, carrying edits that would act were it
     valid (multiorch resources, a scale down): Degraded/InvalidSpec naming the field, nothing
     changed (the multiorch Deployment and the PDB keep their version); reverted: healed;
  6. faults: apiserver restart with a change pending; watches resumed from a compacted etcd
     revision (relist: mgo-kube then writes only the missing object and the status); status
     409s under a writer bumping the cluster's resourceVersion;
  7. two replicas with leader election: one leader, only it writes; kill -9 -> takeover within
     the lease time (by the Lease's timestamps), the new leader applies two spec edits, the
     killed one writes nothing; SIGTERM -> Lease released.

Usage: test_kube_controller.py MGO_KUBE MGO_CLI; the server from kube_harness.sh's exports,
sources from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import calendar
import copy
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mgokube  # noqa: E402
from deploy_kube import Api, Failed, collection_path, object_path, run  # noqa: E402
from mgokube import Controller  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "render"))
from expect_kube import DEFAULT, POD, SERVICE, join  # noqa: E402  (the facts' naming rule)

NS = "default"
CLUSTER = "minimal"
SELECTOR = f"multigres.com/cluster={CLUSTER}"
MC_PATH = f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters/{CLUSTER}"
OWNED_KINDS = [("v1", "Pod"), ("v1", "PersistentVolumeClaim"), ("v1", "Service"),
               ("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"),
               ("policy/v1", "PodDisruptionBudget")]
POOL_POD = "minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b"
PVC_PREFIX = "data-" + POOL_POD
SHARD_PREFIX = "minimal-postgres-default-0-inf-1e3c045c"
MULTIORCH = "minimal-postgres-default-0-inf-multiorch-zone-a-bbe2a333"
PDB = "minimal-postgres-default-0-inf-pool-default-zone-a-pdb-6a4f8455"
HEADLESS = "minimal-postgres-default-0-inf-pool-default-zone-a-h---22cdf02c"
BACKUP_PVC = "backup-data-minimal-postgres-default-0-inf-811a09a5"
LEASE_S, RETRY_S = 15, 2.2
# the longest wait of client-go's acquire loop: retryPeriod 2 s, jitter factor 1.2
# (kubernetes-controller.md 1.7, "waits of 2-4.4 s"); mgo-kube uses these values (docs/kube.md)
RETRY_MAX_WAIT_S = 4.4

# The upstream sample minimal.yaml, written out by hand from the facts and the spec (not from
# `mgo render`). The sample has one cell (zone-a), no templates, pvcDeletionPolicy Delete/Delete;
# after defaulting (operator-api.md 1.7): etcd global topo 3 replicas, multiadmin and
# multiadmin-web 1 replica each, database postgres -> tablegroup default -> shard 0-inf with one
# multiorch and pool default (replicasPerCell 2: a single cell). The tree is operator-api.md 2.1,
# the names 2.2 (checked below against tests/render/expect_kube.py's implementation of its
# naming rule, itself checked against the reference's Go vectors).
EXPECTED_MIN = {
    # global topo (2.1 "TopoServer <c>-global-topo -> StatefulSet, Service, Service -headless"):
    # 1 StatefulSet, 2 Services
    ("StatefulSet", "minimal-global-topo"),
    ("Service", "minimal-global-topo"),
    ("Service", "minimal-global-topo-headless"),
    # multiadmin and multiadmin-web (2.1): a Deployment and a Service each -> 2 + 2
    ("Deployment", "minimal-multiadmin"), ("Service", "minimal-multiadmin"),
    ("Deployment", "minimal-multiadmin-web"), ("Service", "minimal-multiadmin-web"),
    # the cluster-wide gateway Services (2.1): 2 Services
    ("Service", "minimal-multigateway"), ("Service", "minimal-multigateway-replica"),
    # per cell (1 cell): a multigateway Deployment + Service
    ("Deployment", "minimal-zone-a-multigateway-0ccc2e8b"),
    ("Service", "minimal-zone-a-multigateway-0ccc2e8b"),
    # per shard (1 shard): per multiorch cell (1) a Deployment + Service; the pg-hba and
    # postgres-config ConfigMaps; the shared filesystem backup PVC (backup defaults to
    # filesystem, operator-api.md 1.7)
    ("Deployment", MULTIORCH), ("Service", MULTIORCH),
    ("ConfigMap", f"{SHARD_PREFIX}-pg-hba"), ("ConfigMap", f"{SHARD_PREFIX}-postgres-config"),
    ("PersistentVolumeClaim", BACKUP_PVC),
    # per pool x cell (1 x 1): Pods 0..replicasPerCell-1 = 2, their 2 data PVCs, the headless
    # Service, the PodDisruptionBudget
    ("Pod", f"{POOL_POD}-0"), ("Pod", f"{POOL_POD}-1"),
    ("PersistentVolumeClaim", f"{PVC_PREFIX}-0"), ("PersistentVolumeClaim", f"{PVC_PREFIX}-1"),
    ("Service", HEADLESS),
    ("PodDisruptionBudget", PDB),
}
# the per-kind counts the comments above add up to: 22 objects
EXPECTED_COUNTS = {"StatefulSet": 1, "Deployment": 4, "Service": 9, "ConfigMap": 2,
                   "PersistentVolumeClaim": 3, "Pod": 2, "PodDisruptionBudget": 1}
# lifecycle.md ("Deletion and volumes"): a filesystem backup volume is kept when the cluster is
# deleted, so it has no owner; the data volumes' whenDeleted is Delete, so they are owned
UNOWNED = {("PersistentVolumeClaim", BACKUP_PVC)}
# Labels, by hand (operator-api.md 2.3; docs/spec/render-process.md, "Common shape"). The
# standard labels on every object; managed-by is mgo's own value, not the reference's
# multigres-operator (docs/kube.md, docs/abi.md).
LABELS_ALL = {"app.kubernetes.io/name": "multigres", "app.kubernetes.io/instance": CLUSTER,
              "app.kubernetes.io/part-of": "multigres", "app.kubernetes.io/managed-by": "mgo",
              "multigres.com/cluster": CLUSTER}
# the hierarchy labels (2.3), none of which a cluster-level object carries
HIERARCHY = ("multigres.com/database", "multigres.com/tablegroup", "multigres.com/shard",
             "multigres.com/pool", "multigres.com/cell", "multigres.com/zone-id",
             "multigres.com/region")
# shard-level objects: database postgres -> tablegroup default -> shard 0-inf (1.7)
SHARD_LABELS = {"multigres.com/database": "postgres", "multigres.com/tablegroup": "default",
                "multigres.com/shard": "0-inf"}
# pool x cell objects: pool default, cell zone-a with the sample's zoneId us-central1-a
POOL_CELL_LABELS = {**SHARD_LABELS, "multigres.com/pool": "default",
                    "multigres.com/cell": "zone-a", "multigres.com/zone-id": "us-central1-a"}


def _component(c):
    return {"app.kubernetes.io/component": c}


# {(kind, name): labels it must carry with these values}. app.kubernetes.io/component only
# where 2.3's "Component values" (with 2.1's tree) pin it: multiadmin, multiadmin-web,
# multigateway (the cell's Deployment and Service), shard-pool, pg-hba-config. Left unchecked,
# as the facts give no value for them: the two cluster-wide gateway Services (2.1 says only
# that they select all gateways: that is their selector's component, not their own label),
# multiorch (no "multiorch" among the values), the postgres-config ConfigMap (only
# pg-hba-config is listed) and the shard's backup PVC. Hierarchy labels of the cell's gateway
# and of the multiorch (shard x cell) beyond the shard's are not pinned by the facts either.
EXPECTED_LABELS = {
    ("StatefulSet", "minimal-global-topo"): dict(LABELS_ALL),
    ("Service", "minimal-global-topo"): dict(LABELS_ALL),
    ("Service", "minimal-global-topo-headless"): dict(LABELS_ALL),
    ("Deployment", "minimal-multiadmin"): {**LABELS_ALL, **_component("multiadmin")},
    ("Service", "minimal-multiadmin"): {**LABELS_ALL, **_component("multiadmin")},
    ("Deployment", "minimal-multiadmin-web"): {**LABELS_ALL, **_component("multiadmin-web")},
    ("Service", "minimal-multiadmin-web"): {**LABELS_ALL, **_component("multiadmin-web")},
    ("Service", "minimal-multigateway"): dict(LABELS_ALL),
    ("Service", "minimal-multigateway-replica"): dict(LABELS_ALL),
    ("Deployment", "minimal-zone-a-multigateway-0ccc2e8b"):
        {**LABELS_ALL, **_component("multigateway")},
    ("Service", "minimal-zone-a-multigateway-0ccc2e8b"):
        {**LABELS_ALL, **_component("multigateway")},
    ("Deployment", MULTIORCH): {**LABELS_ALL, **SHARD_LABELS},
    ("Service", MULTIORCH): {**LABELS_ALL, **SHARD_LABELS},
    ("ConfigMap", f"{SHARD_PREFIX}-pg-hba"):
        {**LABELS_ALL, **SHARD_LABELS, **_component("pg-hba-config")},
    ("ConfigMap", f"{SHARD_PREFIX}-postgres-config"): {**LABELS_ALL, **SHARD_LABELS},
    ("PersistentVolumeClaim", BACKUP_PVC): {**LABELS_ALL, **SHARD_LABELS},
    **{k: {**LABELS_ALL, **POOL_CELL_LABELS, **_component("shard-pool")}
       for k in [("Pod", f"{POOL_POD}-0"), ("Pod", f"{POOL_POD}-1"), ("Pod", f"{POOL_POD}-2"),
                 ("PersistentVolumeClaim", f"{PVC_PREFIX}-0"),
                 ("PersistentVolumeClaim", f"{PVC_PREFIX}-1"),
                 ("PersistentVolumeClaim", f"{PVC_PREFIX}-2"),
                 ("Service", HEADLESS), ("PodDisruptionBudget", PDB)]},
}
# The global topo server's StatefulSet and Services (2.1: TopoServer <c>-global-topo -> ...):
# 2.3 lists both "global-topo" and "toposerver" among the component values; 3.5 ("Cluster
# deleted": "delete all topo PVCs (label component toposerver)") says the topo server's
# objects carry "toposerver" (its PVCs come from the StatefulSet's template), and the
# reference's toposerver builders use metadata.ComponentTopoServer.
TOPO_OBJECTS = {("StatefulSet", "minimal-global-topo"), ("Service", "minimal-global-topo"),
                ("Service", "minimal-global-topo-headless")}
TOPO_COMPONENTS = ("toposerver",)
# cluster-level objects (2.1: the cluster's own children, no database, tablegroup or cell)
CLUSTER_LEVEL = {("StatefulSet", "minimal-global-topo"), ("Service", "minimal-global-topo"),
                 ("Service", "minimal-global-topo-headless"),
                 ("Deployment", "minimal-multiadmin"), ("Service", "minimal-multiadmin"),
                 ("Deployment", "minimal-multiadmin-web"), ("Service", "minimal-multiadmin-web"),
                 ("Service", "minimal-multigateway"), ("Service", "minimal-multigateway-replica")}


def check_mounts(t):
    """Every Secret, ConfigMap and claim that a pod of the cluster mounts (volumes, projected
    sources; optional ones aside) exists on the server, waited for a while: whatever a pod
    mounts must have a producer, the user's Secret of the sample or mgo. {(kind, name)}."""
    paths = {"Secret": "secrets", "ConfigMap": "configmaps",
             "PersistentVolumeClaim": "persistentvolumeclaims"}
    need = set()
    pods = api.call("GET", f"/api/v1/namespaces/{NS}/pods",
                    query={"labelSelector": SELECTOR}).obj["items"]
    t.require(pods, "no pod of the cluster to look at")
    for pod in pods:
        for v in pod["spec"].get("volumes") or []:
            refs = [("Secret", v.get("secret"), "secretName"),
                    ("ConfigMap", v.get("configMap"), "name"),
                    ("PersistentVolumeClaim", v.get("persistentVolumeClaim"), "claimName")]
            for src in ((v.get("projected") or {}).get("sources") or []):
                refs += [("Secret", src.get("secret"), "name"),
                         ("ConfigMap", src.get("configMap"), "name")]
            for kind, ref, field in refs:
                if ref and not ref.get("optional") and ref.get(field):
                    need.add((kind, ref[field]))
    for kind, name in sorted(need):
        path = f"/api/v1/namespaces/{NS}/{paths[kind]}/{name}"
        api.wait(f"{kind} {name}, which a pod mounts", lambda: api.call("GET", path).code == 200,
                 30)
    return need


def check_literal_names(t):
    """The hand-written names follow the naming rule of the facts (Pod 60, Service 63)."""
    shard = ("minimal", "postgres", "default", "0-inf")
    pool = shard + ("pool", "default", "zone-a")
    want = {POOL_POD: join(POD, *pool), PDB: join(SERVICE, *pool, "pdb"),
            "minimal-postgres-default-0-inf-pool-default-zone-a-h---22cdf02c":
                join(SERVICE, *pool, "headless"),
            BACKUP_PVC: join(SERVICE, "backup-data", *shard),
            MULTIORCH: join(DEFAULT, *shard, "multiorch", "zone-a"),
            "minimal-zone-a-multigateway-0ccc2e8b": join(DEFAULT, "minimal", "zone-a",
                                                         "multigateway"),
            SHARD_PREFIX: join(DEFAULT, *shard)}
    bad = {k: v for k, v in want.items() if k != v}
    t.require(not bad, f"literal names do not follow operator-api.md 2.2: {bad}")
    t.require(EXPECTED_MIN <= set(EXPECTED_LABELS) and CLUSTER_LEVEL <= EXPECTED_MIN,
              f"no hand-written labels for {sorted(EXPECTED_MIN - set(EXPECTED_LABELS))}")
    counts = {}
    for kind, _ in EXPECTED_MIN:
        counts[kind] = counts.get(kind, 0) + 1
    t.require(counts == EXPECTED_COUNTS, f"literal inventory counts {counts}")


def expected_owner(uid):
    return [{"apiVersion": "multigres.com/v1alpha1", "kind": "MultigresCluster",
             "name": CLUSTER, "uid": uid, "controller": True, "blockOwnerDeletion": True}]


def check_literals(t, objs, uid, expected=EXPECTED_MIN, what="create"):
    """OBJS (live, by label) against the hand-written inventory, owner, labels and shape."""
    have = set(objs)
    t.require(have == expected, f"{what}: objects {sorted(have - expected)} not expected, "
              f"{sorted(expected - have)} missing (hand-written inventory)")
    for k, o in objs.items():
        m = o["metadata"]
        refs = m.get("ownerReferences") or []
        want = [] if k in UNOWNED else expected_owner(uid)
        t.require(refs == want, f"{what}: {k[0]}/{k[1]} ownerReferences {refs} != {want}")
        labels = m.get("labels") or {}
        want_labels = EXPECTED_LABELS[k]
        wrong = {a: labels.get(a) for a, b in want_labels.items() if labels.get(a) != b}
        t.require(not wrong, f"{what}: {k[0]}/{k[1]} labels {wrong} are not the hand-written "
                  f"{ {a: want_labels[a] for a in wrong} } (all labels: {labels})")
        if k in TOPO_OBJECTS:
            comp = labels.get("app.kubernetes.io/component")
            t.require(comp in TOPO_COMPONENTS, f"{what}: {k[0]}/{k[1]} component {comp!r}, "
                      f"not one of {TOPO_COMPONENTS}")
        if k in CLUSTER_LEVEL:
            extra = sorted(a for a in HIERARCHY if a in labels)
            t.require(not extra, f"{what}: cluster-level {k[0]}/{k[1]} has hierarchy labels "
                      f"{extra}")
    pods = sorted(n for kind, n in objs if kind == "Pod")
    npods = len(pods)
    # replicasPerCell 2 (operator-api.md 1.7: one cell); pool defaults 1Gi (defaults table);
    # etcd 3 replicas, multiadmin/-web, multigateway, multiorch 1 replica each (defaults);
    # PDB minAvailable one below the pool's size (lifecycle.md, "Deletion and volumes")
    for i in range(npods):
        pvc = objs[("PersistentVolumeClaim", f"{PVC_PREFIX}-{i}")]
        size = pvc["spec"]["resources"]["requests"]["storage"]
        t.require(size == "1Gi", f"{what}: data PVC {i} asks for {size}, not 1Gi")
    reps = objs[("StatefulSet", "minimal-global-topo")]["spec"].get("replicas")
    t.require(reps == 3, f"{what}: global topo StatefulSet replicas {reps}, not 3")
    for kind, name in objs:
        if kind == "Deployment":
            r = objs[(kind, name)]["spec"].get("replicas", 1)
            t.require(r == 1, f"{what}: Deployment {name} replicas {r}, not 1")
    pdb = objs[("PodDisruptionBudget", PDB)]["spec"]
    t.require(pdb.get("minAvailable") == npods - 1 and "maxUnavailable" not in pdb,
              f"{what}: PDB {pdb}, not minAvailable {npods - 1}")
    return npods

MGO_KUBE = CLI = SRC = SHARED = None
api = None
ctrl = None
figures = {}


# ---- manifests ----------------------------------------------------------------------------

def sample_text():
    with open(f"{SHARED}/compat/upstream-samples/minimal.yaml") as f:
        return f.read()


def cluster_spec(replicas=None, multiorch_resources=None, postgres_config=None):
    """minimal.yaml's spec, with an explicit database when a shard override is asked for
    (replicasPerCell 2 renders exactly what minimal.yaml renders: checked in step 3)."""
    spec = {"postgresPasswordSecretRef": {"name": "multigres-admin-password", "key": "password"},
            "pvcDeletionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "cells": [{"name": "zone-a", "zoneId": "us-central1-a"}]}
    if replicas is None and multiorch_resources is None and postgres_config is None:
        return spec
    ov = {}
    if postgres_config:
        ov["postgresConfig"] = postgres_config
    if multiorch_resources:
        ov["multiorch"] = {"resources": multiorch_resources}
    ov["pools"] = {"default": {"replicasPerCell": replicas or 2}}
    spec["databases"] = [{"name": "postgres", "default": True, "tablegroups": [
        {"name": "default", "default": True, "shards": [{"name": "0-inf", "overrides": ov}]}]}]
    return spec


def with_multiorch(spec, cpu, memory, limit):
    """A copy of SPEC (one with the explicit shard of cluster_spec's overrides) whose multiorch
    asks for CPU and MEMORY, limited to LIMIT memory."""
    out = copy.deepcopy(spec)
    out["databases"][0]["tablegroups"][0]["shards"][0]["overrides"]["multiorch"] = {
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}}}
    return out


def manifest(spec):
    """The cluster as a manifest for the oracle (JSON is YAML)."""
    return json.dumps({"apiVersion": "multigres.com/v1alpha1", "kind": "MultigresCluster",
                       "metadata": {"name": CLUSTER, "namespace": NS}, "spec": spec})


# ---- reading the server -------------------------------------------------------------------

def get_cluster():
    r = api.call("GET", MC_PATH)
    if r.code != 200:
        raise Failed(f"GET cluster: HTTP {r.code}: {r.short()}")
    return r.obj


def phase():
    return (get_cluster().get("status") or {}).get("phase")


def put_spec(spec):
    """Replace the cluster's spec (PUT with the current resourceVersion, again on 409)."""
    for _ in range(50):
        mc = get_cluster()
        mc["spec"] = spec
        r = api.call("PUT", MC_PATH, mc)
        if r.code == 200:
            return r.obj
        if r.code != 409:
            raise Failed(f"PUT cluster spec: HTTP {r.code}: {r.short()}")
    raise Failed("PUT cluster spec: 50 conflicts")


def owned():
    """{(kind, name): object} of every object labelled with the cluster, of the owned kinds."""
    out = {}
    for av, kind in OWNED_KINDS:
        r = api.call("GET", collection_path(av, kind, NS), query={"labelSelector": SELECTOR})
        if r.code != 200:
            raise Failed(f"list {kind}: HTTP {r.code}: {r.short()}")
        for o in r.obj["items"]:
            o["kind"], o["apiVersion"] = kind, av
            out[(kind, o["metadata"]["name"])] = o
    return out


def live(objs):
    return {k: o for k, o in objs.items() if not o["metadata"].get("deletionTimestamp")}


def versions(objs):
    return {k: (o["metadata"]["uid"], o["metadata"]["resourceVersion"]) for k, o in objs.items()}


def mismatch(want, got):
    """Why GOT does not have WANT's labels, annotations, ownerReferences and shape; None if
    it does."""
    wm, gm = want["metadata"], got["metadata"]
    if (wm.get("labels") or {}) != (gm.get("labels") or {}):
        return f"labels {gm.get('labels')} != oracle {wm.get('labels')}"
    if not mgokube.contains(wm.get("annotations") or {}, gm.get("annotations") or {}):
        return f"annotations {gm.get('annotations')} lack the oracle's {wm.get('annotations')}"
    if wm.get("ownerReferences") != gm.get("ownerReferences"):
        return f"ownerReferences {gm.get('ownerReferences')} != oracle {wm.get('ownerReferences')}"
    for key, value in want.items():
        if key in ("apiVersion", "kind", "metadata", "status"):
            continue
        d = mgokube.first_difference(value, got.get(key), key)
        if d:
            return d
    return None


def matches_oracle(oracle):
    """The owned objects when they are exactly the oracle's, each with its shape; else None."""
    objs = live(owned())
    if set(objs) != set(oracle):
        return None
    for k, want in oracle.items():
        if mismatch(want, objs[k]):
            return None
    return objs


def explain(oracle):
    objs = live(owned())
    extra = sorted(set(objs) - set(oracle))
    missing = sorted(set(oracle) - set(objs))
    bad = {f"{k[0]}/{k[1]}": mismatch(w, objs[k]) for k, w in oracle.items() if k in objs}
    return (f"missing {missing}, extra {extra}, different "
            f"{ {k: v for k, v in bad.items() if v} }")


def condition(mc, ctype):
    for c in (mc.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


def converge(t, oracle, what, deadline_s=90, mark=True):
    """Mark pods and workloads ready (as the kubelet and controller-manager would) until the
    objects are exactly the oracle's and the cluster is Healthy for its current generation."""
    end = time.monotonic() + deadline_s
    while True:
        if mark:
            mgokube.mark_all_ready(api, NS, SELECTOR)
        objs = matches_oracle(oracle)
        mc = get_cluster()
        st = mc.get("status") or {}
        if (objs and st.get("phase") == "Healthy"
                and st.get("observedGeneration") == mc["metadata"]["generation"]):
            return objs, mc
        check_controller_alive()
        if time.monotonic() > end:
            raise Failed(f"{what}: not converged after {deadline_s} s: status "
                         f"{json.dumps(st)[:1500]}; objects: {explain(oracle)}")
        time.sleep(0.3)


def check_controller_alive(c=None):
    c = c or ctrl
    if c and not c.alive():
        raise Failed(f"mgo-kube {c.name} exited ({c.proc.returncode}):\n{c.tail()}")


def settle(c=None, quiet_s=2.0, deadline_s=60):
    """Wait until the controller's work queue is empty and it wrote nothing for QUIET_S."""
    c = c or ctrl
    end = time.monotonic() + deadline_s
    while True:
        mark = mgokube.audit_mark()
        time.sleep(quiet_s)
        depth = c.metrics().value("mgo_kube_workqueue_depth")
        # Lease renewals (leader election) are not the controller's work
        if depth == 0 and not mgokube.audit_writes(mark, exclude=("leases",)):
            return
        if time.monotonic() > end:
            raise Failed(f"mgo-kube still busy after {deadline_s} s (queue depth {depth})")


def audit_poll(read, ok, tries=10, pause_s=0.3):
    """READ() (audit events) again, a few times with a short pause, until OK(events): the
    API server may still be writing the lines of a request that just completed. The last
    events read, whether OK or not (the caller asserts)."""
    for i in range(tries):
        evs = read()
        if ok(evs) or i == tries - 1:
            return evs
        time.sleep(pause_s)


def audit_final(read, pause_s=1.0):
    """READ() after a short pause, for a check that something is absent: lines of requests
    completed just before still reach the log."""
    time.sleep(pause_s)
    return read()


def unchanged(t, before, after, allowed, what):
    """Every object of BEFORE not in ALLOWED has the same uid and resourceVersion in AFTER."""
    moved = [f"{k[0]}/{k[1]}" for k, v in before.items()
             if k not in allowed and k in after and after[k] != v]
    gone = [f"{k[0]}/{k[1]}" for k in before if k not in allowed and k not in after]
    t.require(not moved and not gone, f"{what}: objects the oracle did not change moved "
              f"{moved} or went {gone}")


def oracle_diff(a, b):
    """(new, changed, removed) keys between two renders."""
    new = {k for k in b if k not in a}
    removed = {k for k in a if k not in b}
    changed = {k for k in a if k in b and a[k] != b[k]}
    return new, changed, removed


class Watch(threading.Thread):
    """Records every version of one object (annotations, deletion) through a real watch."""

    def __init__(self, path, name, rv, timeout_s=300):
        super().__init__(daemon=True)
        q = urllib.parse.urlencode({"watch": "1", "fieldSelector": f"metadata.name={name}",
                                    "resourceVersion": rv, "timeoutSeconds": str(timeout_s)})
        self.req = urllib.request.Request(f"{api.server}{path}?{q}")
        self.req.add_header("Authorization", "Bearer " + api.token)
        self.events = []
        self.start()

    def run(self):
        try:
            with urllib.request.urlopen(self.req, context=api.ctx, timeout=300) as r:
                for line in r:
                    ev = json.loads(line)
                    self.events.append(ev)
                    if ev["type"] == "DELETED":
                        return
        except Exception as e:  # noqa: BLE001 (reported through the events)
            self.events.append({"type": "ERROR", "object": str(e)})


# ---- steps --------------------------------------------------------------------------------

def step_create(t):
    global ctrl
    etcd_hostport = os.environ["KUBE_ETCD"].split("://", 1)[1]
    ctrl = Controller(MGO_KUBE, "single", ["--resolve", f"*.svc:2379={etcd_hostport}"])
    ctrl.wait_ready()
    t.ok(f"mgo-kube started (pid {ctrl.pid}); /readyz 200 once its informers synced")

    text = sample_text()
    docs = text.split("\n---\n")
    t.require(len(docs) == 2 and "kind: Secret" in docs[0] and "kind: MultigresCluster" in docs[1],
              "minimal.yaml is no longer a Secret and a cluster")
    r = api.create(docs[0], f"/api/v1/namespaces/{NS}/secrets", yaml=True)
    t.require(r.code == 201, f"create the Secret: HTTP {r.code}: {r.short()}")
    t0 = time.monotonic()
    r = api.create(docs[1], f"/apis/multigres.com/v1alpha1/namespaces/{NS}/multigresclusters",
                   yaml=True)
    t.require(r.code == 201, f"create the cluster: HTTP {r.code}: {r.short()}")
    uid = r.obj["metadata"]["uid"]
    check_literal_names(t)
    api.wait("the hand-written inventory's objects",
             lambda: set(live(owned())) == EXPECTED_MIN or None, 60)
    npods = check_literals(t, live(owned()), uid)
    t.ok(f"the hand-written inventory, exactly: {EXPECTED_COUNTS} (operator-api.md 1.7, 2.1, "
         f"names per 2.2); every ownerReference == MultigresCluster/{CLUSTER} uid {uid} "
         f"controller, blockOwnerDeletion (none on the backup PVC); labels {LABELS_ALL} on all, "
         f"the hand-written component (multiadmin, multiadmin-web, multigateway, shard-pool, "
         f"pg-hba-config; toposerver on the topo server's) and hierarchy "
         f"labels (database/tablegroup/shard on the "
         f"shard's, pool/cell/zone-id on the pool's, none on the cluster's {len(CLUSTER_LEVEL)}); "
         f"{npods} pool pods (replicasPerCell 2), data PVCs 1Gi, etcd 3 replicas, Deployments 1, "
         f"PDB minAvailable {npods - 1}")
    mounted = check_mounts(t)
    t.ok(f"every Secret, ConfigMap and claim a pod of the cluster mounts exists on the server "
         f"({len(mounted)}: {', '.join(sorted(k + '/' + n for k, n in mounted))}): nothing "
         f"would wait in ContainerCreating (review note 28)")

    # a second layer: the render oracle (libmgo's renderer, the same code as mgo-kube's
    # actions) for every field of spec/data
    oracle = mgokube.render(CLI, docs[1], uid)
    t.require(set(oracle) == EXPECTED_MIN, f"the oracle renders {sorted(set(oracle))}, not the "
              f"hand-written inventory")
    api.wait("the oracle's objects, exactly, with their shape", lambda: matches_oracle(oracle), 60)
    figures["objects created (s)"] = round(time.monotonic() - t0, 2)
    t.ok(f"all {len(oracle)} objects of the render oracle exist, exactly those (by kind/name, "
         f"label {SELECTOR}), each with the oracle's labels, annotations, ownerReferences "
         f"(uid {uid}) and spec/data ({figures['objects created (s)']} s)")

    api.wait("phase Initializing while no instance is ready",
             lambda: phase() == "Initializing", 30)
    t.ok("phase Initializing while no instance is ready (lifecycle.md, Status)")

    pods = sorted(k[1] for k in oracle if k[0] == "Pod")
    mgokube.set_pod_ready(api, NS, pods[0])
    api.wait("phase Progressing once one instance is ready",
             lambda: phase() == "Progressing", 30)
    t.ok("phase Progressing once the first instance is ready and the rest are not")

    objs, mc = converge(t, oracle, "step 1")
    figures["convergence to Healthy (s)"] = round(time.monotonic() - t0, 2)
    st = mc["status"]
    t.require(st["observedGeneration"] == mc["metadata"]["generation"],
              f"observedGeneration {st['observedGeneration']} != generation")
    t.require(condition(mc, "Available").get("status") == "True",
              f"Available is {condition(mc, 'Available')}")
    t.require(condition(mc, "TopologyRegistered").get("status") == "True",
              f"TopologyRegistered is {condition(mc, 'TopologyRegistered')}")
    t.ok(f"phase Healthy after pods and workloads were marked ready; observedGeneration == "
         f"generation {st['observedGeneration']}, Available True, TopologyRegistered True "
         f"({figures['convergence to Healthy (s)']} s from create)")
    return uid, oracle


def step_steady(t):
    settle()
    mark = mgokube.audit_mark()
    before = versions(owned())
    t0 = time.monotonic()
    passes0 = ctrl.metrics().value("mgo_kube_reconcile_total")
    bumped = False
    while time.monotonic() - t0 < 60:
        check_controller_alive()
        if not bumped and time.monotonic() - t0 >= 20:
            # mid-window: a change to the cluster that asks for nothing (an annotation of the
            # test's) makes mgo-kube run a pass, which must write nothing
            passes1 = trigger_pass(t, "steady")
            bumped = True
        time.sleep(1)
    writes = audit_final(lambda: mgokube.audit_writes(mark))
    figures["writes in 60 s of steady state"] = len(writes)
    print(f"  steady state: {len(writes)} writes by mgo-kube/ in 60 s")
    t.require(not writes, "steady state: mgo-kube wrote: "
              + "; ".join(mgokube.describe_audit(e) for e in writes[:20]))
    unchanged(t, before, versions(owned()), set(), "steady state")
    reconciles = ctrl.metrics().value("mgo_kube_reconcile_total")
    t.require(reconciles > passes0, "steady state: no pass ran in the window")
    t.ok(f"steady state: 0 writes by a mgo-kube/ user agent in the audit log for 60 s, no object "
         f"moved, while {reconciles - passes0:.0f} passes ran in the window ({passes1 - passes0:.0f} "
         f"by the time an annotation bump at 20 s was acted on)")


def trigger_pass(t, why, c=None):
    """Bump a test annotation on the cluster (no spec change) and wait until mgo-kube counts
    one more pass than before the bump; the count after it."""
    c = c or ctrl
    n0 = c.metrics().value("mgo_kube_reconcile_total")
    r = api.call("PATCH", MC_PATH, {"metadata": {"annotations": {
        "test.mgo/trigger": f"{why}-{time.monotonic()}"}}}, "application/merge-patch+json")
    t.require(r.code == 200, f"annotate the cluster: HTTP {r.code}: {r.short()}")
    return api.wait(f"a pass after the annotation ({why})",
                    lambda: (c.metrics().value("mgo_kube_reconcile_total") > n0
                             and c.metrics().value("mgo_kube_workqueue_depth") == 0
                             and c.metrics().value("mgo_kube_reconcile_total")), 30)


def step_edit(t, uid, oracle_min):
    # replicasPerCell 2 written explicitly renders exactly the sample (the oracle says so).
    o2 = mgokube.render(CLI, manifest(cluster_spec(replicas=2)), uid)
    t.require(o2 == oracle_min, "replicasPerCell 2 does not render what minimal.yaml renders: "
              + str(oracle_diff(oracle_min, o2)))

    # (a) scale up
    before = versions(owned())
    o3 = mgokube.render(CLI, manifest(cluster_spec(replicas=3)), uid)
    new, changed, removed = oracle_diff(o2, o3)
    # by hand: a third instance is pod -2 and its data PVC; the PDB's minAvailable follows the
    # pool's size (lifecycle.md, "Deletion and volumes"); nothing else depends on the count
    new_want = {("Pod", f"{POOL_POD}-2"), ("PersistentVolumeClaim", f"{PVC_PREFIX}-2")}
    changed_want = {("PodDisruptionBudget", PDB)}
    t.require(new == new_want and changed == changed_want and not removed,
              f"scale-up oracle: new {new}, changed {changed}, removed {removed}; by hand "
              f"new {new_want}, changed {changed_want}")
    t0 = time.monotonic()
    put_spec(cluster_spec(replicas=3))
    objs, mc = converge(t, o3, "scale up")
    figures["scale up 2 -> 3 (s)"] = round(time.monotonic() - t0, 2)
    settle()
    after = versions(owned())
    unchanged(t, before, after, new | changed, "scale up")
    moved = [k for k in changed if after[k] == before[k]]
    t.require(not moved, f"scale up: objects the oracle changed kept their version: {moved}")
    t.require(set(after) - set(before) == new_want,
              f"scale up: new objects {set(after) - set(before)}, not {new_want}")
    pdb = objs[("PodDisruptionBudget", PDB)]["spec"]
    t.require(pdb.get("minAvailable") == 2, f"scale up: PDB {pdb}, not minAvailable 2")
    t.require(len([k for k in objs if k[0] == "Pod"]) == 3, "scale up: not 3 pool pods")
    t.ok(f"scale up 2 -> 3: new {sorted(k[1] for k in new)} created, changed "
         f"{sorted(k[1] for k in changed)} updated, the other {len(before) - len(changed)} "
         f"objects kept uid and resourceVersion; Healthy ({figures['scale up 2 -> 3 (s)']} s)")

    # (b) scale down: the victim is index 2 (the only candidate, lifecycle.md Scale down)
    victim = f"{POOL_POD}-2"
    pvc = f"{PVC_PREFIX}-2"
    pod = objs[("Pod", victim)]
    watch = Watch(f"/api/v1/namespaces/{NS}/pods", victim, pod["metadata"]["resourceVersion"])
    before = versions(owned())
    mark = mgokube.audit_mark()
    t0 = time.monotonic()
    put_spec(cluster_spec(replicas=2))
    new, changed, removed = oracle_diff(o3, o2)
    t.require(removed == {("Pod", victim), ("PersistentVolumeClaim", pvc)},
              f"scale-down oracle removes {removed}")

    def pvc_released():
        # the pvc-protection controller's part: drop the finalizer once the pod is gone
        if api.call("GET", f"/api/v1/namespaces/{NS}/pods/{victim}").code != 404:
            return False
        r = api.call("GET", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{pvc}")
        if r.code == 404:
            return True
        if r.obj["metadata"].get("deletionTimestamp") and r.obj["metadata"].get("finalizers"):
            api.call("PATCH", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/{pvc}",
                     {"metadata": {"finalizers": None}}, "application/merge-patch+json")
        return False

    api.wait("victim pod deleted and its PVC deleted", pvc_released, 90)
    objs, mc = converge(t, o2, "scale down")
    figures["scale down 3 -> 2 (s)"] = round(time.monotonic() - t0, 2)
    watch.join(10)
    states = []
    for ev in watch.events:
        if ev["type"] == "MODIFIED":
            s = ((ev["object"]["metadata"].get("annotations") or {})
                 .get("drain.multigres.com/state"))
            if s and (not states or states[-1] != s):
                states.append(s)
    t.require(states == ["requested", "draining", "acknowledged", "ready-for-deletion"],
              f"drain states seen on {victim}: {states} (events "
              f"{[e['type'] for e in watch.events]})")
    t.require(watch.events and watch.events[-1]["type"] == "DELETED",
              f"{victim}: no DELETED event: {[e['type'] for e in watch.events][-5:]}")

    def deleted_now():
        deletes = [e for e in mgokube.audit_writes(mark) if e.get("verb") == "delete"]
        return sorted(((e.get("objectRef") or {}).get("resource"),
                       (e.get("objectRef") or {}).get("name"))
                      for e in deletes if (e.get("responseStatus") or {}).get("code", 0) < 300)

    deleted = audit_poll(deleted_now, lambda d: ("persistentvolumeclaims", pvc) in d
                         and ("pods", victim) in d)
    t.require(("persistentvolumeclaims", pvc) in deleted and ("pods", victim) in deleted,
              f"mgo-kube's deletes: {deleted}")
    settle()
    after = versions(owned())
    unchanged(t, before, after, new | changed | removed, "scale down")
    t.ok(f"scale down 3 -> 2: {victim} went requested -> draining -> acknowledged -> "
         f"ready-for-deletion, was deleted by mgo-kube, then its PVC (whenScaled: Delete); "
         f"changed {sorted(k[1] for k in changed)}; nothing else moved "
         f"({figures['scale down 3 -> 2 (s)']} s)")

    # (c) a component's resources
    res = {"requests": {"cpu": "60m", "memory": "70Mi"}, "limits": {"memory": "140Mi"}}
    spec_c = cluster_spec(replicas=2, multiorch_resources=res)
    oc = mgokube.render(CLI, manifest(spec_c), uid)
    new, changed, removed = oracle_diff(o2, oc)
    t.require(changed == {("Deployment", MULTIORCH)} and not new and not removed,
              f"resources oracle: new {new} changed {changed} removed {removed}; by hand only "
              f"the multiorch Deployment")
    before = versions(owned())
    put_spec(spec_c)
    objs, mc = converge(t, oc, "multiorch resources")
    settle()
    after = versions(owned())
    unchanged(t, before, after, changed, "multiorch resources")
    t.require(all(after[k] != before[k] for k in changed), "a changed object kept its version")
    got = objs[("Deployment", MULTIORCH)]["spec"]["template"]["spec"]["containers"]
    t.require(any(mgokube.contains(res, c.get("resources") or {}) for c in got),
              f"multiorch resources: no container has {res}: "
              f"{[c.get('resources') for c in got]}")
    t.ok(f"multiorch resources changed: only {sorted(k[1] for k in changed)} updated "
         f"(to the oracle's shape), every other object kept uid and resourceVersion")
    return spec_c, oc


def step_recreate(t, oracle):
    before = versions(owned())
    victims = [("Service", "minimal-multiadmin"),
               ("ConfigMap", "minimal-postgres-default-0-inf-1e3c045c-pg-hba")]
    for k in victims:
        t.require(k in oracle, f"{k} is not in the oracle")
        r = api.call("DELETE", object_path(oracle[k]))
        t.require(r.code == 200, f"delete {k}: HTTP {r.code}: {r.short()}")
    objs, mc = converge(t, oracle, "recreate", 60)
    settle()
    after = versions(owned())
    for k in victims:
        t.require(after[k][0] != before[k][0], f"{k} has its old uid")
    unchanged(t, before, after, set(victims), "recreate")
    t.ok(f"deleted {[k[0] + '/' + k[1] for k in victims]}: recreated with new uids and the "
         f"oracle's shape; nothing else moved")


def step_invalid(t, spec_ok, oracle, uid):
    # Together with the invalid name, edits that would certainly be acted on were the spec
    # valid: new multiorch resources (its Deployment applied again: step 3 (c) saw mgo-kube do
    # exactly that), and replicasPerCell 2 -> 1 (the PDB's minAvailable follows the pool's
    # size, lifecycle.md; pod -1 would get a drain request, and its PVC go with it).
    valid = with_multiorch(spec_ok, "90m", "90Mi", "180Mi")
    shard = valid["databases"][0]["tablegroups"][0]["shards"][0]
    shard["overrides"]["pools"]["default"]["replicasPerCell"] = 1
    ov = mgokube.render(CLI, manifest(valid), uid)
    new, changed, removed = oracle_diff(oracle, ov)
    t.require({("Deployment", MULTIORCH), ("PodDisruptionBudget", PDB)} <= changed,
              f"the edits without the invalid name would not change the multiorch Deployment "
              f"and the PDB: changed {changed}, new {new}, removed {removed}")
    bad = copy.deepcopy(valid)
    shard = bad["databases"][0]["tablegroups"][0]["shards"][0]
    shard["overrides"]["postgresConfig"] = {"x.y = 1": "on"}
    field = "spec.databases[0].tablegroups[0].shards[0].overrides.postgresConfig[x.y = 1]"
    # docs/spec/errors.md, the rule on postgresConfig extension (dotted) names, as
    # `field.path: reason`
    error = (field + ': invalid parameter name "x.y = 1": must start with a letter or \'_\' '
             "and hold only letters, digits, '_' and '.'")
    rc, out = mgokube.validate(CLI, manifest(bad))
    t.require(rc == 1 and error in out, f"mgo validate: exit {rc}: {out}")
    keep = {("Pod", f"{POOL_POD}-1"), ("PersistentVolumeClaim", f"{PVC_PREFIX}-1"),
            ("Deployment", MULTIORCH), ("PodDisruptionBudget", PDB)}
    before = versions(owned())
    shape0 = {k: json.dumps(o.get("spec"), sort_keys=True) for k, o in owned().items()
              if k in (("Deployment", MULTIORCH), ("PodDisruptionBudget", PDB))}
    mark = mgokube.audit_mark()
    mc = put_spec(bad)
    gen = mc["metadata"]["generation"]
    t.ok(f"the API server accepts a postgresConfig name `mgo validate` refuses at {field} "
         f"(with new multiorch resources and replicasPerCell 1, which without it would change "
         f"{sorted(k[1] for k in changed)})")

    def degraded():
        m = get_cluster()
        c = condition(m, "Degraded")
        return (c.get("status") == "True" and c.get("reason") == "InvalidSpec"
                and error in c.get("message", "") and m)

    mc = api.wait("Degraded/InvalidSpec", degraded, 30)
    # lifecycle.md, "How a reconcile pass decides": the phase and observedGeneration describe
    # the cluster still running; the condition names the refused generation
    ph = mc["status"].get("phase")
    t.require(ph == "Healthy", f"invalid spec: phase {ph}, not the running cluster's Healthy")
    t.require(mc["status"].get("observedGeneration") == gen - 1,
              f"invalid spec: observedGeneration {mc['status'].get('observedGeneration')}, "
              f"not {gen - 1} (the last generation acted on)")
    t.require(condition(mc, "Degraded").get("observedGeneration") == gen,
              f"invalid spec: the condition's observedGeneration "
              f"{condition(mc, 'Degraded').get('observedGeneration')}, not {gen}")

    def warning_event():
        r = api.call("GET", f"/apis/events.k8s.io/v1/namespaces/{NS}/events")
        return [e for e in r.obj["items"] if e.get("reason") == "InvalidSpec"
                and e.get("type") == "Warning"
                and (e.get("regarding") or {}).get("kind") == "MultigresCluster"
                and (e.get("regarding") or {}).get("name") == CLUSTER]

    api.wait("a Warning Event InvalidSpec about the cluster", warning_event, 30)
    settle()
    trigger_pass(t, "invalid")  # one more pass over the invalid spec, then quiet again
    settle()
    now = versions(owned())
    for k in sorted(keep):
        t.require(now.get(k) == before[k], f"invalid spec: {k[0]}/{k[1]} moved or went: "
                  f"{before[k]} -> {now.get(k)}")
    shape1 = {k: json.dumps(o.get("spec"), sort_keys=True) for k, o in owned().items()
              if k in shape0}
    t.require(shape1 == shape0, "invalid spec: the multiorch Deployment's or the PDB's spec "
              f"changed: {shape0} -> {shape1}")
    pod1 = api.call("GET", f"/api/v1/namespaces/{NS}/pods/{POOL_POD}-1").obj
    t.require(not (pod1["metadata"].get("annotations") or {}).get("drain.multigres.com/state"),
              f"invalid spec: pod -1 has a drain state {pod1['metadata'].get('annotations')}")
    unchanged(t, before, now, set(), "invalid spec")
    wrote = [mgokube.describe_audit(e)
             for e in audit_final(lambda: mgokube.audit_writes(mark))]
    t.require(all("/status" in w or " events/" in w for w in wrote),
              f"invalid spec: writes other than status and events: {wrote}")
    t.ok(f"invalid postgresConfig name together with new multiorch resources and "
         f"replicasPerCell 2 -> 1: condition Degraded True, reason InvalidSpec, message holding "
         f"`{error}` (errors.md); a Warning Event InvalidSpec; phase Healthy and "
         f"observedGeneration {gen - 1} kept; after one more triggered pass the multiorch "
         f"Deployment and the PDB kept their resourceVersion and spec, pod -1 and its PVC "
         f"untouched (no drain state, same uid and resourceVersion), no object deleted or "
         f"changed; mgo-kube wrote only {wrote}")

    put_spec(spec_ok)
    objs, mc = converge(t, oracle, "revert")
    t.require(condition(mc, "Degraded").get("status") in (None, "False"),
              f"still Degraded: {condition(mc, 'Degraded')}")
    t.require(mc["status"]["observedGeneration"] > gen, "observedGeneration did not move")
    settle()
    unchanged(t, before, versions(owned()), set(), "revert")
    t.ok("reverted: Healthy again, Degraded False, observedGeneration current, objects as before")


def no_duplicates(t, oracle, what, uid):
    objs = live(owned())
    for _, kind in OWNED_KINDS:
        have = sorted(k[1] for k in objs if k[0] == kind)
        want = sorted(k[1] for k in oracle if k[0] == kind)
        t.require(have == want, f"{what}: {kind} by label: {have}, oracle {want}")
    # by owner, whatever the labels: every object of the owned kinds in the namespace whose
    # controlling ownerReference is the cluster's uid, counted
    by_owner = []
    for av, kind in OWNED_KINDS:
        r = api.call("GET", collection_path(av, kind, NS))
        t.require(r.code == 200, f"list {kind}: HTTP {r.code}: {r.short()}")
        for o in r.obj["items"]:
            if o["metadata"].get("deletionTimestamp"):
                continue
            if any(ref.get("controller") and ref.get("uid") == uid
                   for ref in o["metadata"].get("ownerReferences") or []):
                by_owner.append((kind, o["metadata"]["name"]))
    # A duplicate can only come under another name: a name is unique per kind in a namespace
    # (a second create of it is refused with 409 AlreadyExists), so counting (kind, name)
    # could never find one twice. Another name shows up as an extra object, here against the
    # hand-written inventory, and by label above against the oracle.
    want = EXPECTED_MIN - UNOWNED
    t.require(set(by_owner) == want,
              f"{what}: owned by uid {uid}: extra {sorted(set(by_owner) - want)}, missing "
              f"{sorted(want - set(by_owner))}")


def step_faults(t, uid, spec, oracle):
    pid = ctrl.pid
    # (a) apiserver restart with a change pending
    spec_a = with_multiorch(spec, "70m", "80Mi", "160Mi")
    oa = mgokube.render(CLI, manifest(spec_a), uid)
    _, changed, _ = oracle_diff(oracle, oa)
    multiorch = ("Deployment", "minimal-postgres-default-0-inf-multiorch-zone-a-bbe2a333")
    t.require(changed == {multiorch}, f"multiorch resources oracle: {changed}")
    # The change is made pending for sure: mgo-kube is frozen (SIGSTOP) before the edit and
    # thawed while the apiserver is down. It may still read the edit from its watch stream's
    # buffer when thawed, but it cannot act on it before the restart: the apply is checked in
    # the audit log after the restart.
    os.kill(pid, signal.SIGSTOP)
    try:
        put_spec(spec_a)
        t0 = time.monotonic()
        mgokube.harness("stop-apiserver")
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(1)  # mgo-kube meets the server away
    mark = mgokube.audit_mark()
    mgokube.harness("start-apiserver")
    figures["apiserver restart (s)"] = round(time.monotonic() - t0, 2)
    objs, mc = converge(t, oa, "after the apiserver restart", 120)
    figures["converged after apiserver restart (s)"] = round(time.monotonic() - t0, 2)
    t.require(ctrl.alive() and ctrl.pid == pid, "mgo-kube's process changed")
    no_duplicates(t, oa, "apiserver restart", uid)
    (_, dep), = changed
    wrote = audit_poll(lambda: [mgokube.describe_audit(e) for e in mgokube.audit_writes(mark)],
                       lambda w: any(x.startswith(f"patch deployments/{dep} -> 200") for x in w))
    t.require(any(w.startswith(f"patch deployments/{dep} -> 200") for w in wrote),
              f"no apply of {dep} by mgo-kube after the restart: {wrote}")
    t.ok(f"apiserver restarted ({figures['apiserver restart (s)']} s; TERM, KILL after 20 s) "
         f"with a spec edit pending: mgo-kube (same pid {pid}) applied it after the restart "
         f"(audit: {wrote}), Healthy {figures['converged after apiserver restart (s)']} s "
         f"after the edit; no duplicates")
    settle()

    # (b) watches resumed from a compacted revision
    m0 = ctrl.metrics()
    relists0 = m0.value("mgo_kube_informer_relists")
    failures0 = m0.value("mgo_kube_informer_failures")
    before = versions(owned())
    gone = ("Service", "minimal-multigateway")
    mgokube.harness("stop-apiserver")
    rev0 = mgokube.etcd_revision()
    # The Service is deleted in etcd itself while the apiserver is away: no watch event can
    # ever tell of it once the revision of the deletion is compacted, only a fresh list can
    key = f"/registry/services/specs/{NS}/{gone[1]}"
    t.require(mgokube.etcd_delete(key) == 1, f"etcd: {key} not deleted")
    for i in range(20):  # the revision moves on while the apiserver is away
        mgokube.etcd_post("/v3/kv/put", {"key": "bWdvLXRlc3QvYnVtcA==",  # mgo-test/bump
                                         "value": "MQ=="})
    compacted = int(mgokube.harness("compact"))
    t.require(compacted >= rev0 + 21, f"compacted at {compacted}, revision was {rev0}")
    mark = mgokube.audit_mark()
    mgokube.harness("start-apiserver")
    t0 = time.monotonic()
    api.wait("mgo-kube relisted", lambda: ctrl.metrics().value("mgo_kube_informer_relists")
             > relists0, 90)
    objs, mc = converge(t, oa, "after compaction", 120)
    figures["recovery after compaction (s)"] = round(time.monotonic() - t0, 2)
    m1 = ctrl.metrics()
    after = versions(owned())
    t.require(after[gone][0] != before[gone][0], f"{gone} not recreated")
    t.require(ctrl.alive() and ctrl.pid == pid, "mgo-kube's process changed")
    no_duplicates(t, oa, "compaction", uid)
    settle()  # whatever the relist made mgo-kube do is done (and audited) by now
    lists = audit_poll(
        lambda: [e for e in mgokube.audit_events(mark, verbs=("list",))
                 if (e.get("objectRef") or {}).get("resource") == "services"],
        lambda evs: any((e.get("responseStatus") or {}).get("code") == 200 for e in evs))
    t.require(any((e.get("responseStatus") or {}).get("code") == 200 for e in lists),
              f"no list of services by mgo-kube after the restart: "
              f"{[mgokube.describe_audit(e) for e in lists]}")

    def recreates_gone(e):
        ref = e.get("objectRef") or {}
        return (e.get("verb") in ("create", "patch") and ref.get("resource") == "services"
                and ref.get("name") == gone[1] and not ref.get("subresource"))

    def status_write(e):
        ref = e.get("objectRef") or {}
        return (ref.get("resource") == "multigresclusters" and ref.get("name") == CLUSTER
                and ref.get("subresource") == "status")

    writes = audit_poll(
        lambda: mgokube.audit_writes(mark, exclude=("leases", "events")),
        lambda evs: any(recreates_gone(e) and (e.get("responseStatus") or {}).get("code")
                        in (200, 201) for e in evs))
    t.require(any(recreates_gone(e) and (e.get("responseStatus") or {}).get("code") in (200, 201)
                  for e in writes), f"no write of {gone[1]} by mgo-kube after the restart: "
              f"{[mgokube.describe_audit(e) for e in writes]}")
    # A relist that only tells what changed: from the restart until mgo-kube is quiet again
    # its writes (Events aside; no Lease without leader election) are the recreated Service
    # and the cluster's status, which may go Progressing while the Service is created and
    # back to Healthy (lifecycle.md, "How a reconcile pass decides", 4: Progressing while
    # anything is created; the status is written when it changed). Were every object applied
    # again after the relist, the other objects' applies would show here (an apply that
    # changes nothing is still audited as a patch).
    others = [mgokube.describe_audit(e) for e in writes
              if not recreates_gone(e) and not status_write(e)]
    t.require(not others, f"after the relist mgo-kube wrote more than {gone[1]} and the "
              f"status: {others}")
    t.ok(f"etcd compacted at revision {compacted} while the apiserver was down: mgo-kube "
         f"relisted (relists {relists0:.0f} -> {m1.value('mgo_kube_informer_relists'):.0f}, "
         f"failures {failures0:.0f} -> {m1.value('mgo_kube_informer_failures'):.0f}), recreated "
         f"{gone[1]} deleted in etcd before the compaction (only a list could see it; "
         f"{len(lists)} service lists by mgo-kube audited after the restart), Healthy "
         f"({figures['recovery after compaction (s)']} s); same pid; no duplicates; its only "
         f"writes from the restart until quiet: "
         f"{[mgokube.describe_audit(e) for e in writes]} (Events aside)")

    # (c) 409 on status
    conflicts0 = ctrl.metrics().value("mgo_kube_status_conflicts_total")
    stop = threading.Event()
    bumps = [0]
    bump_errors = []

    def bumper():
        try:
            while not stop.is_set():
                bumps[0] += 1
                r = api.call("PATCH", MC_PATH, {"metadata": {"annotations": {
                    "test.mgo/bump": str(bumps[0])}}}, "application/merge-patch+json")
                if r.code != 200:
                    bump_errors.append(f"bump {bumps[0]}: HTTP {r.code}: {r.short()}")
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            bump_errors.append(f"bump {bumps[0]}: {e!r}")

    mark = mgokube.audit_mark()
    th = threading.Thread(target=bumper, daemon=True)
    th.start()
    pod1 = f"{POOL_POD}-1"
    try:
        ready = True
        end = time.monotonic() + 90
        while ctrl.metrics().value("mgo_kube_status_conflicts_total") < conflicts0 + 1:
            ready = not ready  # each flip is a status change to write
            mgokube.set_pod_ready(api, NS, pod1, ready)
            t.require(time.monotonic() < end, "no status conflict counted in 90 s of bumps")
            check_controller_alive()
            time.sleep(0.5)
    finally:
        stop.set()
        th.join(30)
    t.require(not th.is_alive(), "the bumper thread did not stop")
    t.require(not bump_errors, f"the bumper failed: {bump_errors[:5]}")
    conflicts = ctrl.metrics().value("mgo_kube_status_conflicts_total")
    mgokube.set_pod_ready(api, NS, pod1, False)

    def progressing():
        m = get_cluster()
        st = m.get("status") or {}
        return (st.get("phase") == "Progressing" and st.get("readyInstances") == 1
                and st.get("instances") == 2 and m)

    api.wait("phase Progressing with one instance unready", progressing, 30)
    objs, mc = converge(t, oa, "after the status conflicts", 60)
    t.require(mc["status"].get("readyInstances") == 2, f"status {mc['status']}")
    want409 = f"update multigresclusters/{CLUSTER}/status -> 409"
    want200 = f"update multigresclusters/{CLUSTER}/status -> 200"
    status_puts = audit_poll(
        lambda: [mgokube.describe_audit(e) for e in mgokube.audit_writes(mark)
                 if (e.get("objectRef") or {}).get("resource") == "multigresclusters"
                 and (e.get("objectRef") or {}).get("subresource") == "status"],
        lambda p: want409 in p and want200 in p[p.index(want409):])
    t.require(want409 in status_puts and want200 in status_puts[status_puts.index(want409):],
              f"audit: no `{want409}` by mgo-kube followed by a `{want200}`: {status_puts}")
    t.ok(f"status PUTs met 409s ({conflicts - conflicts0:.0f} counted, "
         f"{status_puts.count(want409)} audited as `{want409}`, then `{want200}`; {bumps[0]} "
         f"annotation bumps, none failed): with pod -1 unready the status converged to Progressing (readyInstances "
         f"1 of 2), then Healthy once ready again")
    return spec_a, oa


def lease():
    r = api.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/mgo-kube-test")
    return r.obj if r.code == 200 else None


def holder():
    le = lease()
    return ((le or {}).get("spec") or {}).get("holderIdentity") or ""


def micro_time(text):
    """Seconds since the epoch of a Kubernetes MicroTime (RFC 3339, optional fraction)."""
    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


def agent_writes(since, ident, until=None):
    """Non-Lease writes since SINCE (up to UNTIL) by the workers of mgo-kube replica IDENT, told
    by their user agent `mgo-kube/<version> (<identity>)` (host-shims/kube/ctrl/main.c)."""
    evs = mgokube.audit_writes(since, exclude=("leases",))
    if until is not None:
        # events at or after UNTIL (a size of the log) are left out by their position
        with open(os.environ["KUBE_AUDIT_LOG"], "rb") as f:
            f.seek(since)
            head = f.read(until - since).decode("utf-8", "replace")
        keep = set()
        for line in head.splitlines():
            try:
                keep.add(json.loads(line).get("auditID"))
            except ValueError:
                pass
        evs = [e for e in evs if e.get("auditID") in keep]
    return [e for e in evs if mgokube.user_agent_of(e).endswith(f" ({ident})")]


def step_leader(t, uid, spec, oracle):
    global ctrl
    rc = ctrl.stop()
    t.require(rc == 0, f"mgo-kube exited {rc} on SIGTERM")
    etcd_hostport = os.environ["KUBE_ETCD"].split("://", 1)[1]

    def replica(ident):
        return Controller(MGO_KUBE, ident, [
            "--resolve", f"*.svc:2379={etcd_hostport}", "--leader-elect",
            "--leader-election-id", "mgo-kube-test", "--leader-election-namespace", NS,
            "--identity", ident])

    a = replica("replica-a")
    api.wait("replica-a holds the Lease", lambda: holder() == "replica-a", 30)
    mark_b = mgokube.audit_mark()  # replica-b's writes are counted from its start
    b = replica("replica-b")
    a.wait_ready()
    b.wait_ready()
    ctrl = a
    # a change for the leader to act on, while both run
    cm = ("ConfigMap", "minimal-postgres-default-0-inf-1e3c045c-postgres-config")
    before = versions(owned())
    r = api.call("DELETE", object_path(oracle[cm]))
    t.require(r.code == 200, f"delete {cm}: HTTP {r.code}")
    converge(t, oracle, "change under leader election", 60)
    settle(a)
    t.require(versions(owned())[cm][0] != before[cm][0], f"{cm} not recreated")
    time.sleep(RETRY_S * 2)  # the follower had its chances to try the Lease
    ma, mb = a.metrics(), b.metrics()
    t.require(holder() == "replica-a", f"Lease holder {holder()!r}")
    t.require(ma.value("mgo_kube_leader") == 1 and mb.get("mgo_kube_leader") == 0,
              f"mgo_kube_leader a={ma.get('mgo_kube_leader')} b={mb.get('mgo_kube_leader')}")
    t.require(ma.value("mgo_kube_api_writes_total") > 0, "the leader counts no writes")
    t.require(mb.value("mgo_kube_api_writes_total") == 0
              and mb.value("mgo_kube_reconcile_total") == 0,
              f"the follower wrote {mb.get('mgo_kube_api_writes_total')} / reconciled "
              f"{mb.get('mgo_kube_reconcile_total')}")
    t.ok("two replicas: the Lease held by replica-a, mgo_kube_leader 1 on it and 0 on "
         "replica-b; a deleted ConfigMap recreated by the leader; the follower counts no write "
         "and no reconcile")

    bpid = b.pid
    # every version of the Lease from here on: the leader's last renewal, the new acquisition
    le0 = lease()
    lw = Watch(f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", "mgo-kube-test",
               le0["metadata"]["resourceVersion"], timeout_s=120)
    os.kill(a.pid, signal.SIGSTOP)  # frozen: it renews no more
    renew_get = micro_time(lease()["spec"]["renewTime"])
    t0 = time.monotonic()
    a.stop(signal.SIGKILL)
    mark_kill = mgokube.audit_mark()
    gone = ("Service", "minimal-multigateway-replica")
    r = api.call("DELETE", object_path(oracle[gone]))
    t.require(r.code == 200, f"delete {gone}: HTTP {r.code}")
    api.wait("replica-b takes the Lease", lambda: holder() == "replica-b", 60)
    handover = time.monotonic() - t0
    figures["leader handover after kill -9 (s)"] = round(handover, 2)
    print(f"  handover after kill -9: {handover:.2f} s")

    def versions_of_lease():
        specs = [ev["object"]["spec"] for ev in lw.events if ev["type"] in ("ADDED", "MODIFIED")]
        if any(sp.get("holderIdentity") == "replica-b" for sp in specs):
            return specs
        return None

    specs = api.wait("the watch saw replica-b's Lease", versions_of_lease, 10)
    last_a = [sp for sp in specs if sp.get("holderIdentity") == "replica-a"]
    renew_a = max([renew_get] + [micro_time(sp["renewTime"]) for sp in last_a])
    first_b = next(sp for sp in specs if sp.get("holderIdentity") == "replica-b")
    acquire_b = micro_time(first_b["acquireTime"])
    dur = first_b.get("leaseDurationSeconds") or le0["spec"].get("leaseDurationSeconds")
    t.require(dur == LEASE_S, f"leaseDurationSeconds {dur}, not {LEASE_S}")
    # Not taking over a live lease: replica-b may acquire only once a whole lease duration has
    # passed since replica-a's last renewal (both clocks are this machine's; 0.5 s for the
    # rounding of the two MicroTimes and the follower's observation)
    gap = acquire_b - renew_a
    figures["acquireTime - last renewTime (s)"] = round(gap, 2)
    t.require(gap >= dur - 0.5, f"replica-b acquired {gap:.2f} s after replica-a's last "
              f"renewal, within the {dur} s lease: it took over a live lease")
    # Upper bound, from the Lease's own timestamps (both stamped by mgo-kube replicas on this
    # machine's clock): the follower first saw replica-a's last renewal at most one wait of
    # its acquire loop after it was written, judges the lease expired one lease duration
    # after that sighting, and tries again at most one wait later (kubernetes-controller.md
    # 1.7: the loop waits 2 to 4.4 s, retryPeriod 2 s with jitter factor 1.2): lease + 2 x
    # 4.4 s; plus 2 s for the requests themselves on a loaded (ASan, 2-core) machine.
    gap_limit = LEASE_S + 2 * RETRY_MAX_WAIT_S + 2
    t.require(gap <= gap_limit, f"replica-b acquired {gap:.2f} s after replica-a's last "
              f"renewal, above {gap_limit:.1f} s (lease {dur} s + two acquire waits)")
    # and by the test's clock, only as a loose sanity check (it also holds the test's own
    # polling and the freeze): the same bound plus 15 s
    limit = LEASE_S + 2 * RETRY_MAX_WAIT_S + 15
    t.require(handover <= limit, f"handover took {handover:.1f} s by the test's clock, above "
              f"{limit:.1f} s")
    ctrl = b
    api.wait("replica-b reports leading", lambda: b.metrics().value("mgo_kube_leader") == 1, 10)
    converge(t, oracle, "after the takeover", 60)
    t.require(versions(owned())[gone][0] != before[gone][0], f"{gone} not recreated")
    t.require(b.alive() and b.pid == bpid, "replica-b's process changed")
    t.require(b.metrics().value("mgo_kube_api_writes_total") > 0, "replica-b counts no write")
    no_duplicates(t, oracle, "takeover", uid)
    settle(b)
    # Two spec edits while replica-b leads (the multiorch resources changed, then back), each
    # applied to the multiorch Deployment: work a replica-a still alive would also do.
    spec_b = with_multiorch(spec, "80m", "85Mi", "170Mi")
    ob = mgokube.render(CLI, manifest(spec_b), uid)
    new, changed, removed = oracle_diff(oracle, ob)
    t.require(changed == {("Deployment", MULTIORCH)} and not new and not removed,
              f"multiorch resources oracle: new {new} changed {changed} removed {removed}")
    for n, (sp, orc) in enumerate(((spec_b, ob), (spec, oracle)), 1):
        rv0 = versions(owned())[("Deployment", MULTIORCH)]
        put_spec(sp)
        converge(t, orc, f"spec edit {n} under replica-b", 60)
        settle(b)
        rv1 = versions(owned())[("Deployment", MULTIORCH)]
        t.require(rv1 != rv0, f"spec edit {n} under replica-b: the multiorch Deployment kept "
                  f"its version {rv0}")
    # the audit log, by the workers' user agents: while replica-a led (from replica-b's start
    # to the kill) replica-b wrote nothing but its Lease; replica-a wrote (the ConfigMap), and
    # nothing after its kill; replica-b wrote after the takeover (the Service, then the
    # multiorch Deployment for each edit)
    a_led = agent_writes(mark_b, "replica-a", until=mark_kill)
    b_while_a = agent_writes(mark_b, "replica-b", until=mark_kill)

    def dep_applies(evs):
        return [e for e in evs if e.get("verb") == "patch"
                and (e.get("objectRef") or {}).get("resource") == "deployments"
                and (e.get("objectRef") or {}).get("name") == MULTIORCH
                and (e.get("responseStatus") or {}).get("code") == 200]

    b_after = audit_poll(
        lambda: agent_writes(mark_kill, "replica-b"),
        lambda evs: (len(dep_applies(evs)) >= 2
                     and any((e.get("objectRef") or {}).get("name") == gone[1] for e in evs)))
    a_after = audit_final(lambda: agent_writes(mark_kill, "replica-a"))
    t.require(a_led, "audit: no write by replica-a's user agent while it led")
    t.require(not b_while_a, "audit: replica-b wrote while replica-a led: "
              + "; ".join(mgokube.describe_audit(e) for e in b_while_a[:10]))
    t.require(not a_after, "audit: replica-a wrote after its kill: "
              + "; ".join(mgokube.describe_audit(e) for e in a_after[:10]))
    t.require(any((e.get("objectRef") or {}).get("name") == gone[1] for e in b_after),
              f"audit: replica-b did not write {gone[1]}: "
              f"{[mgokube.describe_audit(e) for e in b_after]}")
    t.require(len(dep_applies(b_after)) >= 2, f"audit: replica-b did not apply "
              f"{MULTIORCH} for each of the two edits: "
              f"{[mgokube.describe_audit(e) for e in b_after]}")
    t.ok(f"kill -9 of the frozen leader: replica-b acquired the Lease {gap:.2f} s after "
         f"replica-a's last renewal (Lease timestamps; lease {dur} s: no live lease taken; at "
         f"most {gap_limit:.1f} s), held it after {handover:.2f} s by the test's clock (sanity "
         f"bound {limit:.1f} s), recreated {gone[1]}, deleted after the kill, and applied two "
         f"spec edits; audit: replica-a {len(a_led)} writes while leading and 0 after its kill, "
         f"replica-b 0 non-Lease writes while replica-a led, {len(b_after)} after "
         f"({len(dep_applies(b_after))} applies of the multiorch Deployment)")

    rc = b.stop()
    ctrl = None
    t.require(rc == 0, f"replica-b exited {rc} on SIGTERM")
    le = lease()
    t.require(le is not None and not (le["spec"].get("holderIdentity") or ""),
              f"Lease after SIGTERM: {json.dumps((le or {}).get('spec'))}")
    t.ok("SIGTERM to the leader: exit 0, Lease released (holderIdentity empty)")


def main(t):
    global MGO_KUBE, CLI, SRC, SHARED, api
    MGO_KUBE, CLI = sys.argv[1], sys.argv[2]
    SRC, SHARED = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    api = Api(f"mgo-test-kube-controller/1 ({os.getpid()})")
    mgokube.install_crds(api, SRC)
    t.ok("CRDs installed and Established")
    try:
        uid, oracle = step_create(t)
        step_steady(t)
        spec, oracle = step_edit(t, uid, oracle)
        step_recreate(t, oracle)
        step_invalid(t, spec, oracle, uid)
        spec, oracle = step_faults(t, uid, spec, oracle)
        step_leader(t, uid, spec, oracle)
    except Exception:  # noqa: BLE001 (any failure: show mgo-kube's log, then re-raise)
        mgokube.print_logs()
        raise
    finally:
        mgokube.stop_all()
        print("figures: " + json.dumps(figures))


if __name__ == "__main__":
    sys.exit(run(main))
