#!/usr/bin/env python3
"""Acceptance test: `mgo render --target kubernetes --json` on every valid upstream sample renders
exactly the objects the reference operator would create (kinds, names, counts, owner references,
labels and key fields), as computed by expect_kube.py from the resolved cluster and the
reference's naming scheme. Standard library only.

Environment (tests/CMakeLists.txt MGO_TEST_ENV): MGO_CLI (the mgo program), MGO_SHARED_DIR (the
shared folder with compat/upstream-samples). Exit 0 when every sample matches, 1 with a precise
diff otherwise.
"""

import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expect_kube  # noqa: E402

TEMPLATES = ["templates__core.yaml", "templates__cell.yaml", "templates__shard.yaml"]
DEFAULT_TEMPLATES = ["default-templates__core.yaml", "default-templates__cell.yaml",
                     "default-templates__shard.yaml"]

# Every sample holding a MultigresCluster, with the files it is deployed with (as in
# tests/spec/test_samples.c). A new MultigresCluster sample upstream fails the test until it is
# listed here or in INVALID.
CASES = [
    ("minimal.yaml", []),
    ("no-templates.yaml", []),
    ("topology.yaml", []),
    ("e2e-fixtures__base.yaml", []),
    ("e2e-fixtures__log-levels.yaml", []),
    ("templated-cluster.yaml", TEMPLATES),
    # Level 3 of the override chain: templates named "default" apply implicitly (facts 1.6).
    ("minimal.yaml", DEFAULT_TEMPLATES),
]
# ../shared/compat/README.md and tests/spec/test_samples.c: rejected like the reference does.
INVALID = {
    "overrides.yaml": (TEMPLATES, "cell zone-a has neither zoneId nor region"),
    "external-etcd.yaml": ([], "cell zone-b-isolated has neither zoneId nor region"),
    "e2e-fixtures__templated.yaml": (
        ["e2e-fixtures__templates__core.yaml", "e2e-fixtures__templates__cell.yaml",
         "e2e-fixtures__templates__shard.yaml"],
        "stale upstream: coreTemplateRef/cellTemplateRef/shardTemplateRef are unknown fields"),
}

# Written by hand from the sample files and the facts (1.5 defaults, 2.1 object tree), not by
# expect_kube.py: per kind, how many objects each case must have. expect_kube.py must agree
# before mgo is compared with it.
HAND_COUNTS = {
    # 1 cell, pool default (replicasPerCell 2: one cell), multiorch in zone-a, filesystem backup.
    ("minimal.yaml", ()): {"StatefulSet": 1, "Deployment": 4, "Service": 9, "ConfigMap": 2,
                           "PersistentVolumeClaim": 3, "Pod": 2, "PodDisruptionBudget": 1},
    # 1 cell z1, pool main 5 per cell.
    ("no-templates.yaml", ()): {"StatefulSet": 1, "Deployment": 4, "Service": 9, "ConfigMap": 2,
                                "PersistentVolumeClaim": 6, "Pod": 5, "PodDisruptionBudget": 1},
    # 3 cells, multiorch in z1..z3, pool main 3 per cell in z1..z3.
    ("topology.yaml", ()): {"StatefulSet": 1, "Deployment": 8, "Service": 15, "ConfigMap": 2,
                            "PersistentVolumeClaim": 10, "Pod": 9, "PodDisruptionBudget": 3},
    # 1 cell, pool default 1 per cell.
    ("e2e-fixtures__base.yaml", ()): {"StatefulSet": 1, "Deployment": 4, "Service": 9,
                                      "ConfigMap": 2, "PersistentVolumeClaim": 2, "Pod": 1,
                                      "PodDisruptionBudget": 1},
    ("e2e-fixtures__log-levels.yaml", ()): {"StatefulSet": 1, "Deployment": 4, "Service": 9,
                                            "ConfigMap": 2, "PersistentVolumeClaim": 2, "Pod": 1,
                                            "PodDisruptionBudget": 1},
    # 2 cells, multiorch in both (all cells), pool main-app (template: 4 per cell) in az1, az2.
    ("templated-cluster.yaml", tuple(TEMPLATES)): {
        "StatefulSet": 1, "Deployment": 6, "Service": 12, "ConfigMap": 2,
        "PersistentVolumeClaim": 9, "Pod": 8, "PodDisruptionBudget": 2},
    # default ShardTemplate: pool default 4 per cell.
    ("minimal.yaml", tuple(DEFAULT_TEMPLATES)): {
        "StatefulSet": 1, "Deployment": 4, "Service": 9, "ConfigMap": 2,
        "PersistentVolumeClaim": 5, "Pod": 4, "PodDisruptionBudget": 1},
}

# Hand-written spot values, also from the sample files / reference tests: (kind, name, field,
# value). The minimal pod name is literal in the reference's containers_test.go
# TestBuildPoolServiceID; the e2e-log-levels one (a truncated Pod name) was produced by the
# reference's own pkg/util/name/name.go (see expect_kube.py REFERENCE_GO_VECTORS).
HAND_SPOTS = {
    ("minimal.yaml", ()): [
        ("Pod", "minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b-1", None, None),
        ("StatefulSet", "minimal-global-topo", "replicas", 3),
        ("Deployment", "minimal-multiadmin", "replicas", 1),
    ],
    ("no-templates.yaml", ()): [("Deployment", "inline-multiadmin", "replicas", 2)],
    ("e2e-fixtures__log-levels.yaml", ()): [
        ("Pod", "e2e-log-levels-postgres-default-0-inf-pool-defaul---7ef0a649-0",
         "multipoolerArg", "--log-level=warn"),
        ("Pod", "e2e-log-levels-postgres-default-0-inf-pool-defaul---7ef0a649-0",
         "pgctldArg", "--log-level=debug"),
    ],
    ("templated-cluster.yaml", tuple(TEMPLATES)): [
        ("StatefulSet", "standard-ha-cluster-global-topo", "replicas", 3),
        ("Deployment", "standard-ha-cluster-multiadmin", "replicas", 2),
    ],
    ("minimal.yaml", tuple(DEFAULT_TEMPLATES)): [
        ("StatefulSet", "minimal-global-topo", "replicas", 1),
        ("Deployment", "minimal-multiadmin", "replicas", 2),
    ],
}

OWNER_FIELDS = {"apiVersion": expect_kube.GROUP_VERSION, "kind": "MultigresCluster",
                "controller": True, "blockOwnerDeletion": True}


def case_label(sample, extra):
    return sample + (" + " + ", ".join(extra) if extra else "")


def check_expectation_by_hand(key, exp):
    """expect_kube.py against the hand-written counts and spots."""
    errs = []
    counts = {}
    for o in exp["objects"]:
        counts[o["kind"]] = counts.get(o["kind"], 0) + 1
    want = HAND_COUNTS.get(key)
    if want is None:
        errs.append("no hand-written counts for this case")
    elif counts != want:
        errs.append("expect_kube.py counts %s differ from the hand-written %s" % (counts, want))
    by_key = {(o["kind"], o["name"]): o for o in exp["objects"]}
    for kind, name, field, value in HAND_SPOTS.get(key, []):
        o = by_key.get((kind, name))
        if o is None:
            errs.append("expect_kube.py lacks %s/%s" % (kind, name))
        elif field == "replicas" and o.get("replicas") != value:
            errs.append("expect_kube.py %s/%s replicas %r, want %r"
                        % (kind, name, o.get("replicas"), value))
        elif field == "multipoolerArg" and value not in o["pod"]["multipoolerArgs"]:
            errs.append("expect_kube.py %s/%s lacks multipooler %s" % (kind, name, value))
        elif field == "pgctldArg" and value not in o["pod"]["pgctldArgs"]:
            errs.append("expect_kube.py %s/%s lacks pgctld %s" % (kind, name, value))
    return errs


# ---- comparing one rendered object ---------------------------------------------------------------

def pod_labels_of(obj):
    """The labels of the pods a workload runs (Pods: their own)."""
    if obj.get("kind") == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    return ((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {})
            .get("labels") or {})


def selector_of(obj):
    spec = obj.get("spec") or {}
    if obj["kind"] == "Service":
        return spec.get("selector"), None
    sel = spec.get("selector") or {}
    return sel.get("matchLabels"), sel.get("matchExpressions")


def args_of(container):
    return list(container.get("command") or []) + list(container.get("args") or [])


def check_object(exp, got, want, workloads):
    """Differences between one rendered object and its expectation, as strings."""
    errs = []
    meta = got.get("metadata") or {}
    spec = got.get("spec") or {}

    def err(msg, *a):
        errs.append(msg % a)

    if got.get("apiVersion") != want["apiVersion"]:
        err("apiVersion %r, want %r", got.get("apiVersion"), want["apiVersion"])
    if "namespace" in meta and meta["namespace"] != exp["namespace"]:
        err("metadata.namespace %r, want %r", meta["namespace"], exp["namespace"])

    labels = meta.get("labels") or {}
    for k, v in sorted(want["labels"].items()):
        if labels.get(k) != v:
            err("label %s = %r, want %r", k, labels.get(k), v)
    ann = meta.get("annotations") or {}
    if not isinstance(ann.get("multigres.com/spec-hash"), str) or not ann["multigres.com/spec-hash"]:
        err("annotation multigres.com/spec-hash missing or empty")

    refs = meta.get("ownerReferences") or []
    if want["owned"]:
        wref = dict(OWNER_FIELDS, name=exp["cluster"])
        if len(refs) != 1 or any(refs[0].get(k) != v for k, v in wref.items()):
            err("ownerReferences %s, want [%s]", json.dumps(refs), json.dumps(wref))
    elif refs:
        err("ownerReferences %s, want none (pvcDeletionPolicy.whenDeleted is Retain)",
            json.dumps(refs))

    if "replicas" in want and spec.get("replicas") != want["replicas"]:
        err("spec.replicas %r, want %r", spec.get("replicas"), want["replicas"])
    if "serviceName" in want and spec.get("serviceName") != want["serviceName"]:
        err("spec.serviceName %r, want %r", spec.get("serviceName"), want["serviceName"])
    if "nodeSelector" in want:
        ns = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or None
        if ns != want["nodeSelector"]:
            err("spec.template.spec.nodeSelector %r, want %r", ns, want["nodeSelector"])
    if "ports" in want:
        ports = sorted(p.get("port") for p in spec.get("ports") or [])
        req, opt = want["ports"]["required"], want["ports"].get("optional", [])
        missing = sorted(set(req) - set(ports))
        extra = sorted(set(ports) - set(req) - set(opt))
        if missing or extra or len(ports) != len(set(ports)):
            err("spec.ports %r, want %r (optional %r)", ports, sorted(req), opt)
    if want.get("headless") and spec.get("clusterIP") != "None":
        err("spec.clusterIP %r, want 'None' (headless)", spec.get("clusterIP"))
    if "storage" in want:
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if size != want["storage"]["size"]:
            err("spec.resources.requests.storage %r, want %r", size, want["storage"]["size"])
        if spec.get("storageClassName") != want["storage"]["class"]:
            err("spec.storageClassName %r, want %r", spec.get("storageClassName"),
                want["storage"]["class"])
    if "minAvailable" in want and (spec.get("minAvailable") != want["minAvailable"]
                                   or "maxUnavailable" in spec):
        err("spec.minAvailable %r (maxUnavailable %r), want minAvailable %r",
            spec.get("minAvailable"), spec.get("maxUnavailable"), want["minAvailable"])

    if "selects" in want:
        sel, expr = selector_of(got)
        if expr:
            err("selector uses matchExpressions %s; only matchLabels are expected", json.dumps(expr))
        if not sel:
            err("no selector")
        else:
            matched = {k for k, w in workloads.items()
                       if all(pod_labels_of(w).get(lk) == lv for lk, lv in sel.items())}
            want_set = set(want["selects"])
            extra = matched - want_set - set(want.get("mayAlsoSelect", []))
            missing = want_set - matched
            if missing or extra:
                err("selector %s selects %d of the expected %d%s%s", json.dumps(sel, sort_keys=True),
                    len(want_set - missing), len(want_set),
                    "; does not select %s" % sorted(missing) if missing else "",
                    "; also selects %s" % sorted(extra) if extra else "")

    if "pod" in want:
        p = want["pod"]
        if spec.get("hostname") != p["hostname"]:
            err("spec.hostname %r, want %r", spec.get("hostname"), p["hostname"])
        if spec.get("subdomain") != p["subdomain"]:
            err("spec.subdomain %r, want %r (the headless Service)", spec.get("subdomain"),
                p["subdomain"])
        if (spec.get("nodeSelector") or None) != p["nodeSelector"]:
            err("spec.nodeSelector %r, want %r", spec.get("nodeSelector"), p["nodeSelector"])
        claims = {(v.get("persistentVolumeClaim") or {}).get("claimName")
                  for v in spec.get("volumes") or []}
        for claim in p["claims"]:
            if claim not in claims:
                err("no volume mounts PVC %r (claims: %s)", claim, sorted(c for c in claims if c))
        inits = {c.get("name"): c for c in spec.get("initContainers") or []}
        conts = {c.get("name"): c for c in spec.get("containers") or []}
        # The pgctld sidecar is the init container the reference names "postgres".
        sidecar = p["pgctldContainer"]
        pgctld = inits.get(sidecar)
        if pgctld is None:
            err("initContainers lack %r (the pgctld native sidecar)%s; init containers: %s",
                sidecar, " (it is a regular container)" if sidecar in conts else "",
                sorted(inits))
        else:
            if pgctld.get("restartPolicy") != "Always":
                err("initContainers[%s].restartPolicy %r, want 'Always'", sidecar,
                    pgctld.get("restartPolicy"))
            if p["pgctldCommand"] not in (pgctld.get("command") or []):
                err("initContainers[%s].command %r, want [%r]", sidecar, pgctld.get("command"),
                    p["pgctldCommand"])
            for a in p["pgctldArgs"]:
                if a not in args_of(pgctld):
                    err("initContainers[%s] args lack %r: %s", sidecar, a, args_of(pgctld))
        mp = conts.get("multipooler")
        if mp is None:
            err("containers lack multipooler%s",
                " (it is an init container)" if "multipooler" in inits else "")
        else:
            got_args = args_of(mp)
            for a in p["multipoolerArgs"]:
                if a not in got_args:
                    flag = a.split("=", 1)[0]
                    seen = [g for g in got_args if g.split("=", 1)[0] == flag]
                    err("multipooler args lack %r (has %s)", a, seen or "no " + flag)
    return errs


def compare(exp, rendered):
    """(errors, per-kind rendered counts) for one case."""
    errors = []
    kinds = set(exp["kinds"])
    want = {(o["kind"], o["name"]): o for o in exp["objects"]}
    optional = {(o["kind"], o["name"]) for o in exp["optional"]}
    got = {}
    for i, item in enumerate(rendered):
        kind = item.get("kind")
        if kind not in kinds:
            continue
        name = (item.get("metadata") or {}).get("name")
        if (kind, name) in got:
            errors.append("duplicate object %s/%s (items[%d])" % (kind, name, i))
        got[(kind, name)] = item

    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want) - optional)
    for k, n in missing:
        errors.append("missing %s/%s" % (k, n))
    for k, n in unexpected:
        errors.append("unexpected %s/%s" % (k, n))

    want_counts, got_counts = {}, {}
    for k, _ in want:
        want_counts[k] = want_counts.get(k, 0) + 1
    for k, n in got:
        if (k, n) not in optional:
            got_counts[k] = got_counts.get(k, 0) + 1
    for k in sorted(kinds):
        if want_counts.get(k, 0) != got_counts.get(k, 0):
            errors.append("count of %s: rendered %d, want %d"
                          % (k, got_counts.get(k, 0), want_counts.get(k, 0)))

    workloads = {"%s/%s" % kn: o for kn, o in got.items()
                 if kn[0] in ("Deployment", "StatefulSet", "Pod")}
    for kn in sorted(set(want) & set(got)):
        for e in check_object(exp, got[kn], want[kn], workloads):
            errors.append("%s/%s: %s" % (kn[0], kn[1], e))
    return errors, got_counts


# ---- driver --------------------------------------------------------------------------------------

def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def main():
    mgo = os.environ.get("MGO_CLI")
    shared = os.environ.get("MGO_SHARED_DIR")
    if not mgo or not shared:
        print("MGO_CLI and MGO_SHARED_DIR must be set (tests/CMakeLists.txt MGO_TEST_ENV)")
        return 2
    samples_dir = os.path.join(shared, "compat", "upstream-samples")

    failures = expect_kube.self_check()
    if failures:
        print("FAIL naming self-check (expect_kube.py vs the reference's vectors):")
        for f in failures:
            print("  " + f)
        return 1
    print("naming self-check: OK (%d reference vectors)"
          % (len(expect_kube.EXACT_VECTORS) + len(expect_kube.PREFIX_VECTORS)
             + len(expect_kube.REFERENCE_GO_VECTORS)))

    failed = []
    # Every MultigresCluster sample is either a case or known invalid.
    listed = {s for s, _ in CASES} | set(INVALID)
    for f in sorted(os.listdir(samples_dir)):
        with open(os.path.join(samples_dir, f), encoding="utf-8") as fh:
            if re.search(r"^kind:\s*MultigresCluster\s*$", fh.read(), re.M) and f not in listed:
                print("FAIL %s holds a MultigresCluster this test does not know" % f)
                failed.append(f)

    def path(f):
        return os.path.join(samples_dir, f)

    for sample, extra in CASES:
        label = case_label(sample, extra)
        files = [path(sample)] + [path(t) for t in extra]
        key = (sample, tuple(extra))
        try:
            resolved = expect_kube.resolve_with(mgo, files)
        except RuntimeError as e:
            print("FAIL %s: %s" % (label, e))
            failed.append(label)
            continue
        exp = expect_kube.expect(resolved)
        errs = check_expectation_by_hand(key, exp)
        if errs:
            print("FAIL %s: the expectation itself is wrong:\n  %s" % (label, "\n  ".join(errs)))
            failed.append(label)
            continue

        cmd = [mgo, "render", "--target", "kubernetes", "--json"] + files
        rc, out, err = run(cmd)
        if rc != 0:
            print("FAIL %s: `%s` exited %d\n  %s" % (label, " ".join(cmd), rc,
                                                   "\n  ".join(err.strip().splitlines()[:3])))
            failed.append(label)
            continue
        try:
            doc = json.loads(out)
        except ValueError as e:
            print("FAIL %s: output is not JSON: %s" % (label, e))
            failed.append(label)
            continue
        if not (isinstance(doc, dict) and doc.get("apiVersion") == "v1"
                and doc.get("kind") == "List" and isinstance(doc.get("items"), list)):
            print("FAIL %s: output is not {apiVersion: v1, kind: List, items: [...]}" % label)
            failed.append(label)
            continue
        errs, counts = compare(exp, doc["items"])
        others = {}
        for item in doc["items"]:
            if item.get("kind") not in exp["kinds"]:
                others[item.get("kind")] = others.get(item.get("kind"), 0) + 1
        summary = ", ".join("%s %d" % (k, counts.get(k, 0)) for k in exp["kinds"])
        n_opt = len(doc["items"]) - sum(counts.values()) - sum(others.values())
        tail = ""
        if n_opt:
            tail += "; %d optional (exporter ConfigMap)" % n_opt
        if others:
            tail += "; not checked: %s" % ", ".join("%s %d" % kv for kv in sorted(others.items()))
        if errs:
            print("FAIL %s: %d differences (%s%s)" % (label, len(errs), summary, tail))
            for e in errs:
                print("  " + e)
            failed.append(label)
        else:
            print("ok   %s: %d objects checked (%s%s)"
                  % (label, len(exp["objects"]), summary, tail))

    # The invalid samples render nothing: exit 1, "invalid manifest" (mgo --help).
    for sample, (extra, why) in sorted(INVALID.items()):
        cmd = [mgo, "render", "--target", "kubernetes", "--json", path(sample)] + \
              [path(t) for t in extra]
        rc, out, err = run(cmd)
        if rc != 1:
            print("FAIL %s: exit %d, want 1 (invalid manifest) since %s\n  %s"
                  % (sample, rc, why, "\n  ".join(err.strip().splitlines()[:3])))
            failed.append(sample)
        else:
            print("ok   %s: rejected (exit %d): %s" % (sample, rc, why))

    if failed:
        print("\n%d case(s) failed: %s" % (len(failed), "; ".join(failed)))
        return 1
    print("\nall %d samples render as expected" % len(CASES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
