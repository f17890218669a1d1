#!/usr/bin/env python3
"""The generated CRDs (host-shims/kube/deploy/crds) against the reference operator's CRDs
(../shared/compat/upstream-crds), node by node, without a server: names, short names, scope,
subresources, printer columns, and in the OpenAPI schema every property, type, required list,
length/item/property limit, range, enumeration (in order: the API server lists it in its
messages), pattern, default, int-or-string, list type and keys, map type, nullability and the
set of CEL rule messages (with their transition flag) at every node.

What is compared loosely, by category (counted in the output):
  - descriptions (not generated);
  - `format` on integers (int32/int64: the API server does not range-check a custom resource's
    integers by format); string formats are compared;
  - `x-kubernetes-list-type: atomic` equals no list type (the default for custom resources);
  - an `allOf` of enumerations equals one enumeration of their intersection;
  - CEL rule text: mgo writes its own expressions; what they accept is compared on a real API
    server by test_deploy_apiserver.py.
Expected differences (EXPECTED below) must each be found, so the list cannot go stale.

Usage: test_deploy_crd_schema.py HELPER (kube_deploy_helper); MGO_SOURCE_DIR and
MGO_SHARED_DIR from the environment. Exit 0 when the only differences are the expected ones.
"""

import json
import os
import subprocess
import sys

KINDS = ["multigresclusters", "coretemplates", "celltemplates", "shardtemplates"]

# (kind, path, what): each must occur, and nothing else may.
EXPECTED = {
    # The name limit is reported at metadata.name, as `mgo validate` reports it (errors.md); a
    # fieldPath there needs the name declared under metadata.
    ("multigresclusters", "", "x-kubernetes-validations fieldPath .metadata.name"),
    ("multigresclusters", ".metadata", "extra properties ['name']"),
    # mgo's admission refuses other durability policies (admission.c); the reference CRD takes
    # any string and fails later, at topology registration.
    ("multigresclusters", ".spec.durabilityPolicy",
     'enum: ["AT_LEAST_2", "MULTI_CELL_AT_LEAST_2"] != null'),
    ("multigresclusters", ".spec.databases[].durabilityPolicy",
     'enum: ["AT_LEAST_2", "MULTI_CELL_AT_LEAST_2"] != null'),
    # mgo's own status fields (docs/abi.md, mgo_reconcile "status").
    ("multigresclusters", ".status",
     "extra properties ['instanceStatus', 'instances', 'pools', 'readyInstances']"),
}

LOOSE = {"description": 0, "integer format": 0, "atomic list-type": 0, "allOf enum": 0,
         "CEL rule": 0}


def load(helper, path):
    out = subprocess.run([helper, "yaml2json", path], check=True, capture_output=True, text=True)
    docs = json.loads(out.stdout)
    if len(docs) != 1:
        sys.exit(f"FAIL: {path}: {len(docs)} documents, expected one CRD")
    return docs[0]


def normalise(node):
    """A copy of a schema node with the loose categories folded away (counted in LOOSE)."""
    node = dict(node)
    if "description" in node:
        LOOSE["description"] += 1
        del node["description"]
    if node.get("type") == "integer" and "format" in node:
        LOOSE["integer format"] += 1
        del node["format"]
    if node.get("x-kubernetes-list-type") == "atomic":
        LOOSE["atomic list-type"] += 1
        del node["x-kubernetes-list-type"]
    if "allOf" in node and all(set(p) <= {"enum"} for p in node["allOf"]):
        LOOSE["allOf enum"] += 1
        values = None
        for part in node.pop("allOf"):
            values = part["enum"] if values is None else [v for v in values if v in part["enum"]]
        if "enum" in node:
            values = [v for v in node["enum"] if v in values]
        node["enum"] = values
    return node


def rules(node):
    """CEL rules as {message: (transition, fieldPath)}."""
    out = {}
    for r in node.get("x-kubernetes-validations", []):
        LOOSE["CEL rule"] += 1
        out[r["message"]] = ("oldSelf" in r["rule"], r.get("fieldPath"))
    return out


def compare(kind, path, mine, ref, diffs):
    mine, ref = normalise(mine), normalise(ref)
    for key in sorted(set(mine) | set(ref)):
        a, b = mine.get(key), ref.get(key)
        if key == "properties":
            a, b = a or {}, b or {}
            extra = sorted(set(a) - set(b))
            missing = sorted(set(b) - set(a))
            if extra:
                diffs.append((kind, path, f"extra properties {extra}"))
            if missing:
                diffs.append((kind, path, f"missing properties {missing}"))
            for name in sorted(set(a) & set(b)):
                compare(kind, f"{path}.{name}", a[name], b[name], diffs)
        elif key in ("items", "additionalProperties") and isinstance(a, dict) and isinstance(b, dict):
            compare(kind, f"{path}[{'*' if key == 'additionalProperties' else ''}]", a, b, diffs)
        elif key == "anyOf" and a is not None and b is not None:
            if [normalise(x) for x in a] != [normalise(x) for x in b]:
                diffs.append((kind, path, f"anyOf {a} != {b}"))
        elif key == "required":
            if set(a or []) != set(b or []):
                diffs.append((kind, path, f"required {sorted(a or [])} != {sorted(b or [])}"))
        elif key == "x-kubernetes-validations":
            ra, rb = rules(mine), rules(ref)
            for msg in sorted(set(ra) | set(rb)):
                if msg not in ra:
                    diffs.append((kind, path, f"missing CEL rule {msg!r}"))
                elif msg not in rb:
                    diffs.append((kind, path, f"extra CEL rule {msg!r}"))
                else:
                    if ra[msg][0] != rb[msg][0]:
                        diffs.append((kind, path, f"CEL rule {msg!r}: transition {ra[msg][0]} != {rb[msg][0]}"))
                    if ra[msg][1] != rb[msg][1]:
                        diffs.append((kind, path, f"x-kubernetes-validations fieldPath {ra[msg][1]}"))
        elif a != b:
            diffs.append((kind, path, f"{key}: {json.dumps(a)} != {json.dumps(b)}"))


def version_of(crd):
    versions = crd["spec"]["versions"]
    if len(versions) != 1:
        sys.exit(f"FAIL: {crd['metadata']['name']}: {len(versions)} versions")
    return versions[0]


def main():
    helper = sys.argv[1]
    src = os.environ["MGO_SOURCE_DIR"]
    shared = os.environ["MGO_SHARED_DIR"]
    diffs = []
    for kind in KINDS:
        mine = load(helper, f"{src}/host-shims/kube/deploy/crds/{kind}.yaml")
        ref = load(helper, f"{shared}/compat/upstream-crds/multigres.com_{kind}.yaml")
        for field in ("group", "names", "scope"):
            if mine["spec"][field] != ref["spec"][field]:
                diffs.append((kind, f"spec.{field}", f"{mine['spec'][field]} != {ref['spec'][field]}"))
        if mine["metadata"]["name"] != ref["metadata"]["name"]:
            diffs.append((kind, "metadata.name", "differs"))
        vm, vr = version_of(mine), version_of(ref)
        for field in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
            if vm.get(field) != vr.get(field):
                diffs.append((kind, f"versions[0].{field}", f"{vm.get(field)} != {vr.get(field)}"))
        compare(kind, "", vm["schema"]["openAPIV3Schema"], vr["schema"]["openAPIV3Schema"], diffs)

    found = set(diffs)
    unexpected = [d for d in diffs if d not in EXPECTED]
    stale = sorted(EXPECTED - found)
    for d in sorted(found & EXPECTED):
        print(f"expected difference: {d[0]} {d[1] or '(root)'}: {d[2]}")
    print("compared loosely: " + ", ".join(f"{v} {k}" for k, v in LOOSE.items()))
    for d in unexpected:
        print(f"FAIL: {d[0]} {d[1] or '(root)'}: {d[2]}")
    for d in stale:
        print(f"FAIL: expected difference not found (update EXPECTED): {d}")
    if unexpected or stale:
        return 1
    print(f"ok: {len(KINDS)} CRDs match the reference schema apart from {len(found)} expected "
          "differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
