#!/usr/bin/env python3
"""mgo-kube's deploy set (host-shims/kube/deploy/kustomization.yaml) on a real kube-apiserver
started with the OwnerReferencesPermissionEnforcement admission plugin (run_with_apiserver.sh,
KUBE_APISERVER_EXTRA_ARGS):

  1. the kustomization renders (resources only; anything else in it fails the test, since this
     renderer would not honour it) to the expected objects;
  2. a server-side apply dry run of the whole set is accepted without warnings and creates
     nothing; the real apply creates it;
  3. the Deployment: 2 replicas, leader election flags, probes on /healthz and /readyz, a metrics
     port, non-root, read-only root file system, resource requests; a Pod made from its template
     is admitted in mgo-system, which enforces the "restricted" Pod Security Standard (and a
     pod without the security settings is refused there);
  4. RBAC, acting as the ServiceAccount (impersonation): everything a pass of mgo-kube does on a
     real cluster object succeeds: read the cluster, templates and the password Secret; list and
     watch Secrets and apply a certificate Secret (docs/abi.md "certificates"); apply
     every object `mgo render` gives for it (with owner references blocking deletion, which the
     admission plugin allows only with update on multigresclusters/finalizers); annotate and
     delete a pod with preconditions; PUT status; record an Event; hold the leader Lease. And a table of requests it must not be allowed (secrets
     updated or deleted, cluster specs or templates changed, pods exec'd, RBAC or CRDs written,
     other Leases, core/v1 events, ...), asked through SubjectAccessReview. The ClusterRole has
     no wildcard.

Usage: test_deploy_manifests.py HELPER MGO_CLI; server from kube_harness.sh's exports, sources
from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import copy
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_kube import (Api, Failed, collection_path, object_path, run,  # noqa: E402
                         split_documents, yaml_to_json)

SA_NS, SA = "mgo-system", "mgo-kube"
SA_USER = f"system:serviceaccount:{SA_NS}:{SA}"
AS_SA = {"Impersonate-User": SA_USER}
LEASE = "mgo-kube-leader"
NS = "shop"
MANAGER = "mgo"  # the field manager of mgo's applies (docs/abi.md)

# What the kustomization must produce: (kind, namespace, name).
EXPECTED = {
    ("Namespace", None, "mgo-system"),
    ("CustomResourceDefinition", None, "multigresclusters.multigres.com"),
    ("CustomResourceDefinition", None, "coretemplates.multigres.com"),
    ("CustomResourceDefinition", None, "celltemplates.multigres.com"),
    ("CustomResourceDefinition", None, "shardtemplates.multigres.com"),
    ("ServiceAccount", SA_NS, SA),
    ("ClusterRole", None, "mgo-kube"),
    ("ClusterRoleBinding", None, "mgo-kube"),
    ("Role", SA_NS, "mgo-kube-leader-election"),
    ("RoleBinding", SA_NS, "mgo-kube-leader-election"),
    ("Deployment", SA_NS, "mgo-kube"),
    ("Service", SA_NS, "mgo-kube-metrics"),
    ("PodDisruptionBudget", SA_NS, "mgo-kube"),
}

HELPER = CLI = SRC = SHARED = None
api = None


def render_kustomization(t):
    """(text, object) of every document of the kustomization, in order."""
    base = f"{SRC}/host-shims/kube/deploy"
    with open(f"{base}/kustomization.yaml") as f:
        k = yaml_to_json(HELPER, [f.read()])[0]
    extra = set(k) - {"apiVersion", "kind", "resources"}
    t.require(not extra, f"kustomization.yaml uses {sorted(extra)}, which this test's renderer "
              "does not implement: extend render_kustomization() first")
    t.require(k.get("kind") == "Kustomization", "kustomization.yaml is no Kustomization")
    texts = []
    for res in k["resources"]:
        path = os.path.join(base, res)
        t.require(os.path.isfile(path), f"resource {res} is not a file")
        with open(path) as f:
            texts.extend(split_documents(f.read()))
    objs = yaml_to_json(HELPER, texts)
    got = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs}
    t.require(got == EXPECTED and len(objs) == len(EXPECTED),
              f"the kustomization renders {sorted(got, key=str)}, expected "
              f"{sorted(EXPECTED, key=str)}")
    t.ok(f"kustomization.yaml renders the {len(objs)} expected objects")
    return list(zip(texts, objs))


def check_apply(t, docs):
    ns = [d for d in docs if d[1]["kind"] == "Namespace"][0]
    r = api.apply(ns[0], object_path(ns[1]))
    t.require(r.code == 201, f"apply the Namespace: HTTP {r.code} {r.short()}")
    for text, obj in docs:
        r = api.apply(text, object_path(obj), dry_run=True)
        t.require(r.code in (200, 201), f"dry run {obj['kind']} {obj['metadata']['name']}: "
                  f"HTTP {r.code} {r.short()}")
        t.require(not r.warnings(), f"dry run {obj['kind']} {obj['metadata']['name']}: "
                  f"warnings {r.warnings()}")
    for text, obj in docs:
        if obj["kind"] != "Namespace":
            code = api.call("GET", object_path(obj)).code
            t.require(code == 404, f"the dry run left {obj['kind']} {obj['metadata']['name']}")
    t.ok("server-side apply dry run of the whole set: accepted, no warnings, nothing created")

    for text, obj in docs:
        r = api.apply(text, object_path(obj))
        t.require(r.code in (200, 201), f"apply {obj['kind']} {obj['metadata']['name']}: "
                  f"HTTP {r.code} {r.short()}")
        t.require(not r.warnings(), f"apply {obj['kind']}: warnings {r.warnings()}")
    for plural in ("multigresclusters", "coretemplates", "celltemplates", "shardtemplates"):
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.multigres.com"

        def established():
            r = api.call("GET", path)
            return any(c["type"] == "Established" and c["status"] == "True"
                       for c in (r.obj or {}).get("status", {}).get("conditions", []))

        api.wait(f"{plural} Established", established)
        api.wait(f"{plural} served",
                 lambda: api.call("GET", f"/apis/multigres.com/v1alpha1/{plural}").code == 200)
    t.ok("the set applied for real; the CRDs are Established and served")


def check_deployment(t, docs):
    dep = [o for _, o in docs if o["kind"] == "Deployment"][0]
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    t.require(spec["replicas"] == 2, f"replicas {spec['replicas']}")
    t.require(len(pod["containers"]) == 1, "more than one container")
    c = pod["containers"][0]
    args = c.get("args", [])
    t.require("--leader-elect" in args, f"no --leader-elect in {args}")
    t.require(f"--leader-election-id={LEASE}" in args, f"no --leader-election-id={LEASE}")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    t.require("metrics" in ports and "health" in ports, f"ports {ports}")
    t.require(f"--metrics-bind-address=:{ports['metrics']}" in args, "metrics flag and port differ")
    t.require(f"--health-probe-bind-address=:{ports['health']}" in args, "health flag and port differ")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        t.require(get["path"] == path and get["port"] in ("health", ports["health"]),
                  f"{probe}: {get}")
    t.require(pod["serviceAccountName"] == SA, "serviceAccountName")
    t.require(pod["securityContext"].get("runAsNonRoot") is True, "pod runAsNonRoot")
    sc = c["securityContext"]
    t.require(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    t.require(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation")
    t.require(sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities not dropped")
    req = c["resources"]["requests"]
    t.require("cpu" in req and "memory" in req, f"requests {req}")
    t.require("memory" in c["resources"].get("limits", {}), "no memory limit")

    r = api.call("GET", object_path(dep))
    t.require(r.code == 200 and r.obj["spec"]["template"]["spec"]["containers"][0]["args"] == args,
              "the stored Deployment differs from the manifest")
    t.ok("Deployment: 2 replicas, leader election, /healthz and /readyz probes, metrics port, "
         "non-root, read-only root fs, drop ALL, requests and a memory limit")

    ns = api.call("GET", f"/api/v1/namespaces/{SA_NS}").obj
    t.require(ns["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted",
              "mgo-system does not enforce the restricted standard")
    pod_obj = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "mgo-kube-template", "namespace": SA_NS,
                            "labels": spec["template"]["metadata"]["labels"]},
               "spec": copy.deepcopy(pod)}
    r = api.create(pod_obj, collection_path("v1", "Pod", SA_NS), dry_run=True)
    t.require(r.code == 201, f"a pod of the Deployment's template: HTTP {r.code} {r.short()}")
    t.require(not r.warnings(), f"a pod of the template: warnings {r.warnings()}")
    bare = copy.deepcopy(pod_obj)
    del bare["spec"]["securityContext"]
    del bare["spec"]["containers"][0]["securityContext"]
    r = api.create(bare, collection_path("v1", "Pod", SA_NS), dry_run=True)
    t.require(r.code == 403 and "restricted" in r.message(),
              f"a pod without security settings was not refused: HTTP {r.code} {r.short()}")
    t.ok("a pod of the Deployment's template is admitted under enforce=restricted; one "
         "without its security settings is refused (the check is live)")


def check_rbac_static(t, docs):
    role = [o for _, o in docs if o["kind"] == "ClusterRole"][0]
    for rule in role["rules"]:
        for key in ("apiGroups", "resources", "verbs"):
            t.require("*" not in rule.get(key, []), f"ClusterRole rule with a wildcard: {rule}")
        t.require("nonResourceURLs" not in rule, f"ClusterRole rule on URLs: {rule}")
    t.ok("the ClusterRole has no wildcard and no non-resource rule")


def sar(verb, resource, group="", namespace=None, name=None, subresource=None):
    attrs = {"verb": verb, "resource": resource, "group": group}
    for k, v in (("namespace", namespace), ("name", name), ("subresource", subresource)):
        if v:
            attrs[k] = v
    r = api.create({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                    "spec": {"user": SA_USER,
                             "groups": ["system:serviceaccounts",
                                        f"system:serviceaccounts:{SA_NS}", "system:authenticated"],
                             "resourceAttributes": attrs}},
                   "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    if r.code != 201:
        raise Failed(f"SubjectAccessReview {attrs}: HTTP {r.code} {r.short()}")
    return r.obj["status"].get("allowed", False)


# Requests mgo-kube must not be allowed: (verb, resource, group, namespace, name, subresource).
DENIED = [
    ("update", "secrets", "", NS, "pg-admin", None),
    ("delete", "secrets", "", NS, "pg-admin", None),
    ("deletecollection", "secrets", "", NS, None, None),
    ("create", "multigresclusters", "multigres.com", NS, None, None),
    ("update", "multigresclusters", "multigres.com", NS, "shop", None),
    ("delete", "multigresclusters", "multigres.com", NS, "shop", None),
    ("patch", "multigresclusters", "multigres.com", NS, "shop", None),
    ("patch", "multigresclusters", "multigres.com", NS, "shop", "status"),
    ("create", "coretemplates", "multigres.com", NS, None, None),
    ("patch", "celltemplates", "multigres.com", NS, "default", None),
    ("delete", "shardtemplates", "multigres.com", NS, "default", None),
    ("create", "cells", "multigres.com", NS, None, None),
    ("create", "pods", "", NS, "p", "exec"),
    ("create", "pods", "", NS, "p", "eviction"),
    ("update", "pods", "", NS, "p", None),
    ("update", "deployments", "apps", NS, "d", None),
    ("patch", "deployments", "apps", NS, "d", "scale"),
    ("deletecollection", "pods", "", NS, None, None),
    ("list", "nodes", "", None, None, None),
    ("create", "persistentvolumes", "", None, None, None),
    ("delete", "namespaces", "", None, NS, None),
    ("create", "serviceaccounts", "", NS, "sa", "token"),
    ("create", "customresourcedefinitions", "apiextensions.k8s.io", None, None, None),
    ("update", "customresourcedefinitions", "apiextensions.k8s.io", None,
     "multigresclusters.multigres.com", None),
    ("create", "clusterrolebindings", "rbac.authorization.k8s.io", None, None, None),
    ("create", "rolebindings", "rbac.authorization.k8s.io", NS, None, None),
    ("escalate", "clusterroles", "rbac.authorization.k8s.io", None, "mgo-kube", None),
    ("bind", "clusterroles", "rbac.authorization.k8s.io", None, "cluster-admin", None),
    ("impersonate", "users", "", None, "admin", None),
    ("get", "leases", "coordination.k8s.io", SA_NS, "other", None),
    ("update", "leases", "coordination.k8s.io", SA_NS, "other", None),
    ("create", "leases", "coordination.k8s.io", NS, None, None),
    ("delete", "leases", "coordination.k8s.io", SA_NS, LEASE, None),
    ("create", "events", "", NS, None, None),
    ("update", "configmaps", "", NS, "c", None),
    ("create", "mutatingwebhookconfigurations", "admissionregistration.k8s.io", None, None, None),
]

# Requests the role grants that this test cannot exercise for real (no cert-manager CRDs).
ALLOWED = [
    ("create", "certificates", "cert-manager.io", NS, None, None),
    ("patch", "certificates", "cert-manager.io", NS, "c", None),
    ("delete", "certificates", "cert-manager.io", NS, "c", None),
    ("watch", "certificates", "cert-manager.io", None, None, None),
    # mgo-kube's Secret cache (the certificates' Secrets, asked for by label): without watch it
    # never fills and /readyz stays 503
    ("watch", "secrets", "", None, None, None),
]


def check_rbac(t):
    for obj in ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin", "namespace": NS},
                 "stringData": {"password": "x"}}):
        r = api.create(obj, collection_path("v1", obj["kind"], obj["metadata"].get("namespace")))
        t.require(r.code == 201, f"create {obj['kind']}: HTTP {r.code} {r.short()}")
    with open(f"{SHARED}/compat/upstream-samples/minimal.yaml") as f:
        docs = yaml_to_json(HELPER, split_documents(f.read()))
    cluster = [d for d in docs if d["kind"] == "MultigresCluster"][0]
    cluster["metadata"] = {"name": "shop", "namespace": NS}
    cluster["spec"]["postgresPasswordSecretRef"] = {"name": "pg-admin", "key": "password"}
    r = api.create(cluster, collection_path("multigres.com/v1alpha1", "MultigresCluster", NS))
    t.require(r.code == 201, f"create the cluster: HTTP {r.code} {r.short()}")
    cluster = r.obj
    cpath = object_path(cluster)
    tpl = {"apiVersion": "multigres.com/v1alpha1", "kind": "CellTemplate",
           "metadata": {"name": "default", "namespace": NS}, "spec": {}}
    r = api.create(tpl, collection_path(tpl["apiVersion"], "CellTemplate", NS))
    t.require(r.code == 201, f"create a CellTemplate: HTTP {r.code}")

    # Reading.
    for path in ("/apis/multigres.com/v1alpha1/multigresclusters",
                 "/apis/multigres.com/v1alpha1/coretemplates",
                 "/apis/multigres.com/v1alpha1/celltemplates",
                 "/apis/multigres.com/v1alpha1/shardtemplates",
                 "/api/v1/pods", "/api/v1/persistentvolumeclaims", "/api/v1/services",
                 "/api/v1/configmaps", "/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets",
                 "/apis/policy/v1/poddisruptionbudgets",
                 f"/api/v1/namespaces/{NS}/secrets/pg-admin", cpath):
        r = api.call("GET", path, headers=AS_SA)
        t.require(r.code == 200, f"as {SA}: GET {path}: HTTP {r.code} {r.short()}")
    r = api.call("GET", "/api/v1/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmgo",
                 headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: list mgo's Secrets: HTTP {r.code} {r.short()}")
    t.ok("as the ServiceAccount: lists every watched kind cluster-wide (Secrets by mgo's label), "
         "reads the cluster and the named Secret")

    # Applying what mgo renders for the cluster, owned by it.
    src = json.dumps(cluster)
    p = subprocess.run([CLI, "render", "--target", "kubernetes", "--json", "--owner-uid",
                        cluster["metadata"]["uid"], "/dev/stdin"], input=src,
                       capture_output=True, text=True)
    t.require(p.returncode == 0, f"mgo render: exit {p.returncode}: {p.stderr}")
    rendered = json.loads(p.stdout)["items"]
    kinds = sorted({o["kind"] for o in rendered})
    t.require({"Pod", "PersistentVolumeClaim", "Service", "ConfigMap", "Deployment",
               "StatefulSet", "PodDisruptionBudget"} <= set(kinds), f"rendered kinds {kinds}")
    owned = 0
    for obj in rendered:
        refs = obj["metadata"].get("ownerReferences", [])
        owned += any(ref.get("blockOwnerDeletion") and ref["uid"] == cluster["metadata"]["uid"]
                     for ref in refs)
        r = api.apply(obj, object_path(obj), headers=AS_SA, manager=MANAGER)
        t.require(r.code == 201, f"as {SA}: apply {obj['kind']} {obj['metadata']['name']}: "
                  f"HTTP {r.code} {r.short()}")
    t.require(owned >= len(rendered) - 2, f"only {owned} of {len(rendered)} objects own-referenced")
    # A certificate Secret, as mgo-kube writes it: server-side apply, owned by the cluster.
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "shop-pgbackrest-tls", "namespace": NS,
                           "labels": {"app.kubernetes.io/managed-by": "mgo"},
                           "ownerReferences": [{"apiVersion": "multigres.com/v1alpha1",
                                                "kind": "MultigresCluster", "name": "shop",
                                                "uid": cluster["metadata"]["uid"],
                                                "controller": True, "blockOwnerDeletion": True}]},
              "data": {"tls.crt": "eA==", "tls.key": "eA=="}}
    for want in (201, 200):  # created, then replaced
        r = api.apply(secret, object_path(secret), headers=AS_SA, manager=MANAGER)
        t.require(r.code == want, f"as {SA}: apply a certificate Secret: HTTP {r.code} {r.short()}")
    t.ok(f"as the ServiceAccount: applied all {len(rendered)} rendered objects ({', '.join(kinds)}),"
         f" {owned} with blockOwnerDeletion on the cluster")

    # The admission plugin is live: a user who may create ConfigMaps but not update the
    # cluster's finalizers cannot set blockOwnerDeletion on it.
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "no-finalizers", "namespace": NS},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "patch"]},
                      {"apiGroups": ["multigres.com"], "resources": ["multigresclusters"],
                       "verbs": ["get"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "no-finalizers", "namespace": NS},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "no-finalizers"},
               "subjects": [{"kind": "User", "name": "no-finalizers",
                             "apiGroup": "rbac.authorization.k8s.io"}]}
    for o, plural in ((role, "roles"), (binding, "rolebindings")):
        r = api.create(o, f"{rbac}/namespaces/{NS}/{plural}")
        t.require(r.code == 201, f"create {plural}: HTTP {r.code} {r.short()}")
    cm = [o for o in rendered if o["kind"] == "ConfigMap"][0]
    cm = copy.deepcopy(cm)
    cm["metadata"]["name"] = "control"
    r = api.create(cm, collection_path("v1", "ConfigMap", NS),
                   headers={"Impersonate-User": "no-finalizers"})
    t.require(r.code == 403 and "blockOwnerDeletion" in r.message(),
              f"the control user set blockOwnerDeletion: HTTP {r.code} {r.short()}")
    t.ok("control: without update on multigresclusters/finalizers, blockOwnerDeletion is refused")

    # Annotating, deleting with preconditions.
    pod = [o for o in rendered if o["kind"] == "Pod"][0]
    ppath = object_path(pod)
    live = api.call("GET", ppath).obj
    r = api.call("PATCH", ppath, {"metadata": {
        "resourceVersion": live["metadata"]["resourceVersion"],
        "annotations": {"drain.multigres.com/state": "requested"}}},
        "application/merge-patch+json", headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: annotate a pod: HTTP {r.code} {r.short()}")
    r = api.call("DELETE", ppath, {"apiVersion": "v1", "kind": "DeleteOptions",
                                   "gracePeriodSeconds": 0, "preconditions": {
                                       "uid": live["metadata"]["uid"],
                                       "resourceVersion": r.obj["metadata"]["resourceVersion"]}},
                 headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: delete a pod with preconditions: HTTP {r.code} {r.short()}")
    pvc = [o for o in rendered if o["kind"] == "PersistentVolumeClaim"][0]
    r = api.call("DELETE", object_path(pvc), headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: delete a PVC: HTTP {r.code} {r.short()}")
    t.ok("as the ServiceAccount: annotated a pod (merge patch), deleted it with uid and "
         "resourceVersion preconditions, deleted a PVC")

    # Status and finalizer.
    live = api.call("GET", cpath).obj
    live["status"] = {"phase": "Progressing", "observedGeneration": 1}
    r = api.call("PUT", cpath + "/status", live, headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: PUT status: HTTP {r.code} {r.short()}")
    r = api.call("PATCH", cpath, {"metadata": {"finalizers": ["multigres.com/mgo-cleanup"]}},
                 "application/merge-patch+json", headers=AS_SA)
    t.require(r.code == 403, f"as {SA}: adding a finalizer (mgo-kube adds none) must be "
              f"forbidden: HTTP {r.code} {r.short()}")
    t.ok("as the ServiceAccount: PUT status; a finalizer cannot be added (mgo-kube needs none)")

    # An event, the Lease.
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
          "metadata": {"name": "shop.drain-started", "namespace": NS},
          "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "mgo.dev/mgo-kube",
          "reportingInstance": "mgo-kube-0", "action": "Drain", "reason": "DrainStarted",
          "type": "Normal", "note": "test",
          "regarding": {"apiVersion": "multigres.com/v1alpha1", "kind": "MultigresCluster",
                        "name": "shop", "namespace": NS, "uid": cluster["metadata"]["uid"]}}
    r = api.create(ev, f"/apis/events.k8s.io/v1/namespaces/{NS}/events", headers=AS_SA)
    t.require(r.code == 201, f"as {SA}: create an Event: HTTP {r.code} {r.short()}")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": LEASE, "namespace": SA_NS},
             "spec": {"holderIdentity": "mgo-kube-0", "leaseDurationSeconds": 15}}
    lpath = f"/apis/coordination.k8s.io/v1/namespaces/{SA_NS}/leases"
    r = api.create(lease, lpath, headers=AS_SA)
    t.require(r.code == 201, f"as {SA}: create the Lease: HTTP {r.code} {r.short()}")
    r = api.call("GET", f"{lpath}/{LEASE}", headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: get the Lease: HTTP {r.code}")
    r.obj["spec"]["holderIdentity"] = "mgo-kube-1"
    r = api.call("PUT", f"{lpath}/{LEASE}", r.obj, headers=AS_SA)
    t.require(r.code == 200, f"as {SA}: renew the Lease: HTTP {r.code} {r.short()}")
    t.ok("as the ServiceAccount: recorded an events.k8s.io Event, created, read and updated "
         f"Lease {LEASE}")

    denied = [d for d in DENIED if sar(*d)]
    t.require(not denied, f"the ServiceAccount is allowed: {denied}")
    missing = [a for a in ALLOWED if not sar(*a)]
    t.require(not missing, f"the ServiceAccount is not allowed: {missing}")
    t.ok(f"SubjectAccessReview: {len(DENIED)} requests outside its job denied; cert-manager "
         "Certificates allowed")


def main(t):
    global HELPER, CLI, SRC, SHARED, api
    HELPER, CLI = sys.argv[1], sys.argv[2]
    SRC, SHARED = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    api = Api(f"mgo-test-deploy-manifests/1 ({os.getpid()})")
    docs = render_kustomization(t)
    check_rbac_static(t, docs)
    check_apply(t, docs)
    check_deployment(t, docs)
    check_rbac(t)


if __name__ == "__main__":
    sys.exit(run(main))
