#!/usr/bin/env python3
"""mgo's generated CRDs (host-shims/kube/deploy/crds) on a real kube-apiserver, with the
reference operator's CRDs installed beside them as the oracle (../shared/compat/upstream-crds,
served under the group reference.multigres.com so that both coexist; a group changes nothing in
validation).

Checked, each against literal expectations and against the oracle's answer to the same request:
  1. the four CRDs install by server-side apply and become Established; discovery shows the
     kinds, short names (mgc, cot, cet, sht), a status subresource for MultigresCluster only
     and no scale subresource;
  2. every MultigresCluster, CoreTemplate, CellTemplate and ShardTemplate of the reference's
     samples and of docs/spec/multigrescluster.yaml, sent as written (raw YAML, strict field
     validation): accepted, except the three samples the reference rejects too
     (e2e-fixtures__templated, external-etcd, overrides), refused at the same fields;
  3. a table of invalid objects: refused with the expected field and message, the same causes
     as the oracle's (or a listed, explained difference), and at the same field paths as
     `mgo validate` reports;
  4. update-only rules (append-only cells and pools, immutable backup encryption) on updates;
  5. the status subresource: the status mgo_reconcile publishes is stored exactly as sent (PUT,
     strict), status and spec are written only through their own endpoints, generation moves
     with spec only; templates have no status; no kind has a scale subresource;
  6. printer columns (the Table view) equal the oracle's and show the status.

Usage: test_deploy_crds.py HELPER MGO_CLI; the server from kube_harness.sh's exports, sources
from MGO_SOURCE_DIR and MGO_SHARED_DIR.
"""

import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deploy_kube import (Api, Failed, collection_path, object_path, run,  # noqa: E402
                         split_documents, yaml_to_json)

GROUP = "multigres.com"
REF_GROUP = "reference.multigres.com"
VERSION = "v1alpha1"
KINDS = {"MultigresCluster": "multigresclusters", "CoreTemplate": "coretemplates",
         "CellTemplate": "celltemplates", "ShardTemplate": "shardtemplates"}
SHORT_NAMES = {"multigresclusters": ["mgc"], "coretemplates": ["cot"],
               "celltemplates": ["cet"], "shardtemplates": ["sht"]}
NS = "mgo-deploy-test"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SKIPPED_NOTE = "some validation rules were not checked because the object was invalid"

HELPER = CLI = SRC = SHARED = None
api = None


# ---- installing ---------------------------------------------------------------------------

def reference_crds():
    """The reference CRDs, moved to REF_GROUP."""
    out = []
    for plural in KINDS.values():
        path = f"{SHARED}/compat/upstream-crds/multigres.com_{plural}.yaml"
        with open(path) as f:
            crd = yaml_to_json(HELPER, [f.read()])[0]
        crd["spec"]["group"] = REF_GROUP
        crd["metadata"] = {"name": f"{plural}.{REF_GROUP}"}
        out.append(crd)
    return out


def install(t):
    names = []
    for plural in KINDS.values():
        with open(f"{SRC}/host-shims/kube/deploy/crds/{plural}.yaml") as f:
            text = f.read()
        name = f"{plural}.{GROUP}"
        r = api.apply(text, f"{CRD_PATH}/{name}")
        t.require(r.code == 201, f"apply CRD {name}: HTTP {r.code}: {r.short()}")
        t.require(not r.warnings(), f"apply CRD {name}: warnings {r.warnings()}")
        names.append(name)
    t.ok("mgo's four CRDs created by server-side apply (strict, no warnings)")
    for crd in reference_crds():
        name = crd["metadata"]["name"]
        r = api.apply(crd, f"{CRD_PATH}/{name}")
        t.require(r.code == 201, f"apply oracle CRD {name}: HTTP {r.code}: {r.short()}")
        names.append(name)
    t.ok("the reference CRDs created under group " + REF_GROUP)

    def established(name):
        r = api.call("GET", f"{CRD_PATH}/{name}")
        conds = {c["type"]: c["status"] for c in (r.obj or {}).get("status", {}).get("conditions", [])}
        return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"

    for name in names:
        api.wait(f"CRD {name} Established", lambda: established(name))
    for group in (GROUP, REF_GROUP):
        for plural in KINDS.values():
            path = f"/apis/{group}/{VERSION}/{plural}"
            api.wait(f"{path} served", lambda: api.call("GET", path).code == 200)
    t.ok("all eight CRDs Established and NamesAccepted, every resource served")

    r = api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
                   "/api/v1/namespaces")
    t.require(r.code == 201, f"create namespace {NS}: HTTP {r.code}")
    r = api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "databases"}},
                   "/api/v1/namespaces")
    t.require(r.code == 201, f"create namespace databases: HTTP {r.code}")


def check_discovery(t):
    def resources(group):
        r = api.call("GET", f"/apis/{group}/{VERSION}")
        t.require(r.code == 200, f"discovery of {group}: HTTP {r.code}")
        return {x["name"]: x for x in r.obj["resources"]}

    mine, ref = resources(GROUP), resources(REF_GROUP)
    want = {"multigresclusters", "multigresclusters/status", "coretemplates", "celltemplates",
            "shardtemplates"}
    t.require(set(mine) == want, f"discovery lists {sorted(mine)}, expected {sorted(want)}")
    for plural, short in SHORT_NAMES.items():
        t.require(mine[plural].get("shortNames") == short,
                  f"{plural} short names {mine[plural].get('shortNames')}, expected {short}")
        t.require(mine[plural]["namespaced"], f"{plural} is not namespaced")
    keys = ("name", "singularName", "namespaced", "kind", "verbs", "shortNames", "categories")
    for name in want:
        a = {k: mine[name].get(k) for k in keys}
        b = {k: ref[name].get(k) for k in keys}
        t.require(a == b, f"discovery of {name} differs from the reference: {a} != {b}")
    t.ok("discovery: kinds, short names mgc/cot/cet/sht, status only for MultigresCluster, "
         "no scale; identical to the reference")


# ---- samples ------------------------------------------------------------------------------

# Samples the reference API refuses (shared/compat/README.md, docs/spec/README.md), with the
# fields it names: unknown fields (strict decoding) or causes.
INVALID_SAMPLES = {
    "e2e-fixtures__templated.yaml": ("unknown", [
        "spec.cells[0].cellTemplateRef", "spec.coreTemplateRef",
        "spec.databases[0].tablegroups[0].shards[0].shardTemplateRef"]),
    "external-etcd.yaml": ("causes", [
        ("spec.cells[1]", "at least one of 'zoneId' or 'region' must be specified")]),
    "overrides.yaml": ("causes", [
        ("spec.cells[0]", "at least one of 'zoneId' or 'region' must be specified")]),
}


def unknown_fields(r):
    m = re.search(r"strict decoding error: (.*)$", r.message())
    return sorted(re.findall(r'unknown field "([^"]+)"', m.group(1))) if m else None


def to_reference(text):
    """The same document for the oracle: its apiVersion line moved to REF_GROUP."""
    out, n = re.subn(r"(?m)^apiVersion:\s*multigres\.com/v1alpha1\s*$",
                     f"apiVersion: {REF_GROUP}/{VERSION}", text)
    if n != 1:
        raise Failed(f"no single top-level apiVersion line in: {text[:200]}")
    return out


def outcome(r):
    """What a refusal says, comparable between mgo's CRD and the oracle."""
    if r.code in (200, 201):
        return ("accepted",)
    return (r.code, unknown_fields(r), sorted(r.causes()))


def check_samples(t):
    files = sorted(glob.glob(f"{SHARED}/compat/upstream-samples/*.yaml"))
    files.append(f"{SRC}/docs/spec/multigrescluster.yaml")
    accepted, refused = 0, set()
    for path in files:
        base = os.path.basename(path)
        with open(path) as f:
            texts = split_documents(f.read())
        objs = yaml_to_json(HELPER, texts)
        sent = 0
        for text, obj in zip(texts, objs):
            if obj.get("kind") not in KINDS or not str(obj.get("apiVersion", "")).startswith(GROUP):
                continue
            sent += 1
            ns = obj["metadata"].get("namespace", "default")
            r = api.create(text, collection_path(f"{GROUP}/{VERSION}", obj["kind"], ns), yaml=True)
            rr = api.create(to_reference(text),
                            collection_path(f"{REF_GROUP}/{VERSION}", obj["kind"], ns), yaml=True)
            what = f"{base}: {obj['kind']} {obj['metadata'].get('name')}"
            t.require(outcome(r) == outcome(rr),
                      f"{what}: mgo's CRD answered {outcome(r)}, the reference {outcome(rr)}")
            if base in INVALID_SAMPLES:
                form, want = INVALID_SAMPLES[base]
                if form == "unknown":
                    t.require(r.code == 400 and unknown_fields(r) == sorted(want),
                              f"{what}: expected unknown fields {want}: HTTP {r.code} {r.short()}")
                else:
                    got = [(f, m) for f, m in r.causes() if SKIPPED_NOTE not in m]
                    t.require(r.code == 422 and len(got) == len(want) and all(
                        f == wf and wm in m for (f, m), (wf, wm) in zip(got, want)),
                        f"{what}: expected {want}: HTTP {r.code} {r.causes()}")
                refused.add(base)
                continue
            t.require(r.code == 201, f"{what}: HTTP {r.code}: {r.short()}")
            t.require(not r.warnings(), f"{what}: warnings {r.warnings()}")
            # The same document applied server-side (as `kubectl apply --server-side`) over the
            # created object leaves spec as it is, and a second apply is a no-op.
            ra = api.apply(text, object_path(r.obj))
            t.require(ra.code == 200 and ra.obj.get("spec") == r.obj.get("spec"),
                      f"{what}: apply over the created object: HTTP {ra.code}: {ra.short()}")
            rb = api.apply(text, object_path(r.obj))
            t.require(rb.code == 200 and rb.obj["metadata"]["resourceVersion"] ==
                      ra.obj["metadata"]["resourceVersion"],
                      f"{what}: a repeated apply changed the object: {rb.short()}")
            accepted += 1
        t.require(sent > 0 or base in ("postgres-password-secret.yaml",),
                  f"{base}: no document of the four kinds")
    t.require(refused == set(INVALID_SAMPLES), f"refused samples {sorted(refused)}")
    t.require(accepted >= 15, f"only {accepted} sample objects accepted")
    t.ok(f"{accepted} sample objects accepted as written (raw YAML, strict), the same as the "
         f"reference; the 3 invalid samples refused at the same fields by both")


# ---- invalid objects ----------------------------------------------------------------------

POOL = "spec.databases[0].tablegroups[0].shards[0].spec.pools.main"
SHARD = "spec.databases[0].tablegroups[0].shards[0]"


def cluster(name="inv"):
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "MultigresCluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "postgresPasswordSecretRef": {"name": "pg-admin", "key": "password"},
            "cells": [{"name": "a", "zoneId": "use1-az1"}, {"name": "b", "zoneId": "use1-az2"}],
            "databases": [{"name": "postgres", "default": True, "tablegroups": [{
                "name": "default", "default": True, "shards": [{
                    "name": "0-inf", "spec": {"pools": {"main": {
                        "type": "readWrite", "cells": ["a", "b"], "replicasPerCell": 2,
                        "storage": {"size": "1Gi"}}}}}]}]}],
        },
    }


def template(kind, spec, name="inv"):
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


def at(obj, path):
    """The container at a dotted path with [i] indexes (created as objects when missing)."""
    cur = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            cur = cur[int(part[1:-1])]
        else:
            cur = cur.setdefault(part, {})
    return cur


def with_(path, key, value, base=None):
    obj = copy.deepcopy(base or cluster())
    at(obj, path)[key] = value
    return obj


def without(path, key, base=None):
    obj = copy.deepcopy(base or cluster())
    del at(obj, path)[key]
    return obj


LONG = "x" * 70

# (name, object, expected [(field, message part)] or ("unknown", [fields]), oracle note)
# The oracle note, when set, explains why the reference answers differently; its answer must
# then still be a refusal unless the note starts with "accepts".
CASES = [
    ("replicasPerCell 40", with_(POOL, "replicasPerCell", 40),
     [(POOL + ".replicasPerCell", "less than or equal to 32")], None),
    ("replicasPerCell 40 in overrides",
     with_(SHARD, "overrides", {"pools": {"main": {"replicasPerCell": 40}}},
           without(SHARD, "spec")),
     [(SHARD + ".overrides.pools.main.replicasPerCell", "less than or equal to 32")], None),
    ("replicasPerCell 0", with_(POOL, "replicasPerCell", 0),
     [(POOL + ".replicasPerCell", "greater than or equal to 1")], None),
    ("unknown cluster durabilityPolicy", with_("spec", "durabilityPolicy", "ALL"),
     [("spec.durabilityPolicy",
       'Unsupported value: "ALL": supported values: "AT_LEAST_2", "MULTI_CELL_AT_LEAST_2"')],
     "accepts: the reference schema takes any string; its topology registration fails later"),
    ("unknown database durabilityPolicy",
     with_("spec.databases[0]", "durabilityPolicy", "ANY_2"),
     [("spec.databases[0].durabilityPolicy", 'Unsupported value: "ANY_2"')],
     "accepts: the reference schema takes any string"),
    ("cluster name of 26 characters", cluster("a" * 26),
     [("metadata.name", "MultigresCluster name must be at most 25 characters")],
     "reports the rule at the object root (<nil>), mgo at metadata.name as `mgo validate` does"),
    ("cell name of 31 characters", with_("spec.cells[0]", "name", "c" * 31),
     [("spec.cells[0].name", "Too long: may not be more than 30")], None),
    ("cell name not a DNS label", with_("spec.cells[0]", "name", "Zone_A"),
     [("spec.cells[0].name", "should match")], None),
    ("cell with zoneId and region", with_("spec.cells[0]", "region", "us-east-1"),
     [("spec.cells[0]", "cannot specify both 'zoneId' and 'region'")], None),
    ("cell without zoneId or region", without("spec.cells[0]", "zoneId"),
     [("spec.cells[0]", "at least one of 'zoneId' or 'region' must be specified")], None),
    ("cell with spec and cellTemplate",
     with_("spec.cells[0]", "spec", {"multigateway": {"replicas": 1}},
           with_("spec.cells[0]", "cellTemplate", "edge")),
     [("spec.cells[0]", "cannot specify both 'spec' and 'cellTemplate'")], None),
    ("cell with spec and overrides",
     with_("spec.cells[0]", "spec", {"multigateway": {"replicas": 1}},
           with_("spec.cells[0]", "overrides", {"multigateway": {"replicas": 2}})),
     [("spec.cells[0]", "cannot specify both 'spec' and 'overrides'")], None),
    ("two cells named a", with_("spec.cells[1]", "name", "a"),
     [("spec.cells[1]", "Duplicate value")], None),
    ("51 cells", with_("spec", "cells", [{"name": f"c{i}", "zoneId": "z"} for i in range(51)]),
     [("spec.cells", "must have at most 50 items")], None),
    ("pool type readOnly", with_(POOL, "type", "readOnly"),
     [(POOL + ".type", 'Unsupported value: "readOnly": supported values: "readWrite"')],
     "adds a cause at <nil> from its allOf of two enumerations"),
    ("storage size not a quantity", with_(POOL + ".storage", "size", "big"),
     [(POOL + ".storage.size", "should match")], None),
    ("pool name of 26 characters",
     with_(SHARD + ".spec", "pools", {"p" * 26: {"type": "readWrite"}}),
     [(SHARD + ".spec.pools", "pool names must be <= 25 chars")], None),
    ("9 pools", with_(SHARD + ".spec", "pools", {f"p{i}": {} for i in range(9)}),
     [(SHARD + ".spec.pools", "must have at most 8 items")], None),
    ("pool in 11 cells", with_(POOL, "cells", [f"c{i}" for i in range(11)]),
     [(POOL + ".cells", "must have at most 10 items")], None),
    ("201 postgresConfig parameters",
     with_(SHARD + ".spec", "postgresConfig", {f"p{i}": "1" for i in range(201)}),
     [(SHARD + ".spec.postgresConfig", "must have at most 200 items")], None),
    ("initdbArgs of 513 characters", with_(SHARD + ".spec", "initdbArgs", "x" * 513),
     [(SHARD + ".spec.initdbArgs", "Too long: may not be more than 512")], None),
    ("shard 1-inf", with_(SHARD, "name", "1-inf"),
     [(SHARD + ".name", "shardName must be strictly equal to '0-inf' in this version")], None),
    ("shard with spec and shardTemplate", with_(SHARD, "shardTemplate", "std"),
     [(SHARD, "cannot specify both 'spec' and 'shardTemplate'")], None),
    ("two default tablegroups",
     with_("spec.databases[0]", "tablegroups",
           [{"name": "default", "default": True}, {"name": "other", "default": True}]),
     [("spec.databases[0].tablegroups", "exactly one tablegroup marked as default"),
      ("spec.databases[0].tablegroups[1]", "the default tablegroup must be named 'default'")],
     None),
    ("database named app", with_("spec.databases[0]", "name", "app"),
     [("spec.databases", "only the single system database named 'postgres'")], None),
    ("database without default", without("spec.databases[0]", "default"),
     [("spec.databases", "only the single system database named 'postgres'")],
     "reads db.default unguarded: a CEL evaluation error (no such key) with the same message"),
    ("two databases",
     with_("spec", "databases", [{"name": "postgres", "default": True},
                                 {"name": "other", "default": True}]),
     [("spec.databases", "must have at most 1 item")], None),
    ("etcd replicas 2", with_("spec.globalTopoServer", "etcd", {"replicas": 2}),
     [("spec.globalTopoServer.etcd.replicas", "etcd replicas must be an odd number")], None),
    ("global topo etcd and external",
     with_("spec", "globalTopoServer", {"etcd": {}, "external": {"endpoints": ["http://e:2379"]}}),
     [("spec.globalTopoServer",
       "must specify exactly one of 'etcd', 'external', or 'templateRef'")], None),
    ("external endpoint ftp://",
     with_("spec", "globalTopoServer", {"external": {"endpoints": ["ftp://e:2379"]}}),
     [("spec.globalTopoServer.external.endpoints", "endpoints must be valid URLs")], None),
    ("backup s3 without s3", with_("spec", "backup", {"type": "s3"}),
     [("spec.backup", "s3 config is required when type is 's3'")], None),
    ("backup filesystem without filesystem", with_("spec", "backup", {"type": "filesystem"}),
     [("spec.backup", "filesystem config is required when type is 'filesystem'")], None),
    ("backup type gcs", with_("spec", "backup", {"type": "gcs"}),
     [("spec.backup.type", 'Unsupported value: "gcs"')], None),
    ("s3 serviceAccountName and credentialsSecret",
     with_("spec", "backup", {"type": "s3", "s3": {"bucket": "b", "region": "r",
                                                  "serviceAccountName": "sa",
                                                  "credentialsSecret": "c"}}),
     [("spec.backup.s3", "serviceAccountName and credentialsSecret are mutually exclusive")],
     None),
    ("s3 serviceAccountName and useEnvCredentials",
     with_("spec", "backup", {"type": "s3", "s3": {"bucket": "b", "region": "r",
                                                  "serviceAccountName": "sa",
                                                  "useEnvCredentials": True}}),
     [("spec.backup.s3", "IRSA credentials are handled automatically")], None),
    ("gateway annotation multigres.com/",
     with_("spec", "externalGateway", {"enabled": True, "annotations": {"multigres.com/x": "1"}}),
     [("spec.externalGateway", "must not use multigres.com/ prefix")], None),
    ("external IP not an address",
     with_("spec", "externalGateway", {"enabled": True, "externalIPs": ["not-an-ip"]}),
     [("spec.externalGateway.externalIPs[0]", "should match")], None),
    ("externalGateway without enabled", with_("spec", "externalGateway", {}),
     [("spec.externalGateway.enabled", "Required value")], None),
    ("multiadmin with spec and templateRef",
     with_("spec", "multiadmin", {"spec": {"replicas": 1}, "templateRef": "core"}),
     [("spec.multiadmin", "cannot specify both 'spec' and 'templateRef'")], None),
    ("multiadmin empty", with_("spec", "multiadmin", {}),
     [("spec.multiadmin", "must specify either 'spec' or 'templateRef'")], None),
    ("multiadmin 129 replicas", with_("spec", "multiadmin", {"spec": {"replicas": 129}}),
     [("spec.multiadmin.spec.replicas", "less than or equal to 128")], None),
    ("multiadmin replicas a string", with_("spec", "multiadmin", {"spec": {"replicas": "two"}}),
     [("spec.multiadmin.spec.replicas", "must be of type integer")], None),
    ("pod annotation key of 70 characters",
     with_("spec", "multiadmin", {"spec": {"podAnnotations": {LONG: "v"}}}),
     [("spec.multiadmin.spec.podAnnotations",
       "annotation keys must be <64 chars and values <256 chars")], None),
    ("pod label key of 70 characters",
     with_("spec.cells[0]", "overrides", {"multigateway": {"podLabels": {LONG: "v"}}}),
     [("spec.cells[0].overrides.multigateway.podLabels",
       "label keys and values must be <64 chars")], None),
    ("21 pod labels",
     with_("spec", "multiadmin", {"spec": {"podLabels": {f"l{i}": "v" for i in range(21)}}}),
     [("spec.multiadmin.spec.podLabels", "must have at most 20 items")], None),
    ("cpu request not a quantity",
     with_("spec", "multiadmin", {"spec": {"resources": {"requests": {"cpu": "lots"}}}}),
     [("spec.multiadmin.spec.resources.requests.cpu", "should match")], None),
    ("log level verbose", with_("spec", "logLevels", {"multiorch": "verbose"}),
     [("spec.logLevels.multiorch", 'Unsupported value: "verbose"')], None),
    ("imagePullPolicy Sometimes", with_("spec", "images", {"imagePullPolicy": "Sometimes"}),
     [("spec.images.imagePullPolicy", 'Unsupported value: "Sometimes"')], None),
    ("acknowledgedRevision not hex",
     with_("spec", "imageUpdatePolicy", {"acknowledgedRevision": "XYZ"}),
     [("spec.imageUpdatePolicy.acknowledgedRevision", "should match")], None),
    ("no postgresPasswordSecretRef", without("spec", "postgresPasswordSecretRef"),
     [("spec.postgresPasswordSecretRef", "Required value")], None),
    ("password Secret name not DNS",
     with_("spec.postgresPasswordSecretRef", "name", "Bad_Name"),
     [("spec.postgresPasswordSecretRef.name", "should match")], None),
    ("empty templateDefaults.cellTemplate", with_("spec", "templateDefaults", {"cellTemplate": ""}),
     [("spec.templateDefaults.cellTemplate", "at least 1")], None),
    ("pvcDeletionPolicy Keep", with_("spec", "pvcDeletionPolicy", {"whenDeleted": "Keep"}),
     [("spec.pvcDeletionPolicy.whenDeleted", 'Unsupported value: "Keep"')], None),
    ("otlpProtocol udp", with_("spec", "observability", {"otlpProtocol": "udp"}),
     [("spec.observability.otlpProtocol", 'Unsupported value: "udp"')], None),
    ("local topo with neither etcd nor external",
     with_("spec.cells[0]", "spec", {"localTopoServer": {}}),
     [("spec.cells[0].spec.localTopoServer", "must specify either 'etcd' or 'external'")], None),
    ("local topo with etcd and external",
     with_("spec.cells[0]", "spec", {"localTopoServer": {
         "etcd": {}, "external": {"endpoints": ["http://e:2379"]}}}),
     [("spec.cells[0].spec.localTopoServer", "only one of 'etcd' or 'external' can be set")],
     None),
    ("unknown field zone", with_("spec.cells[0]", "zone", "x"),
     ("unknown", ["spec.cells[0].zone"]), None),
    ("CoreTemplate topo without etcd", template("CoreTemplate", {"globalTopoServer": {}}),
     [("spec.globalTopoServer", "must specify 'etcd' configuration")], None),
    ("CoreTemplate with an external topo",
     template("CoreTemplate", {"globalTopoServer": {
         "etcd": {}, "external": {"endpoints": ["http://e"]}}}),
     ("unknown", ["spec.globalTopoServer.external"]), None),
    ("CoreTemplate etcd replicas 4",
     template("CoreTemplate", {"globalTopoServer": {"etcd": {"replicas": 4}}}),
     [("spec.globalTopoServer.etcd.replicas", "etcd replicas must be an odd number")], None),
    ("CellTemplate buffer window 10 seconds",
     template("CellTemplate", {"multigateway": {"buffer": {"window": "10 seconds"}}}),
     [("spec.multigateway.buffer.window", "should match")], None),
    ("CellTemplate buffer size 0",
     template("CellTemplate", {"multigateway": {"buffer": {"size": 0}}}),
     [("spec.multigateway.buffer.size", "greater than or equal to 1")], None),
    ("CellTemplate endpoint without scheme",
     template("CellTemplate", {"localTopoServer": {"external": {"endpoints": ["etcd:2379"]}}}),
     [("spec.localTopoServer.external.endpoints", "endpoints must be valid URLs")], None),
    ("ShardTemplate pool name of 63 characters",
     template("ShardTemplate", {"pools": {"p" * 63: {}}}),
     [("spec.pools", "pool names must be < 63 chars")], None),
    ("ShardTemplate postgres runAsUser 0",
     template("ShardTemplate", {"pools": {"main": {"postgres": {"runAsUser": 0}}}}),
     [("spec.pools.main.postgres.runAsUser", "greater than or equal to 1")], None),
    ("ShardTemplate multiorch cells twice a",
     template("ShardTemplate", {"multiorch": {"cells": ["a", "a"]}}),
     [("spec.multiorch.cells[1]", "Duplicate value")], None),
    ("ShardTemplate with a status",
     dict(template("ShardTemplate", {}), status={"phase": "Healthy"}),
     ("unknown", ["status"]), None),
]


def send(obj, group, dry_run=True):
    o = copy.deepcopy(obj)
    o["apiVersion"] = f"{group}/{VERSION}"
    return api.create(o, collection_path(o["apiVersion"], o["kind"], NS), dry_run=dry_run)


def relevant(causes):
    return [(f, m) for f, m in causes if SKIPPED_NOTE not in m]


def mgo_validate(obj):
    """(path, reason) of `mgo validate --json` on the object, map keys written as the API
    server writes them (pools.main, not pools[main])."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(obj, f)
        f.flush()
        p = subprocess.run([CLI, "validate", "--json", f.name], capture_output=True, text=True)
    try:
        report = json.loads(p.stdout)
    except ValueError:
        raise Failed(f"mgo validate: no JSON report (exit {p.returncode}): {p.stderr}")
    out = []
    for o in report["objects"]:
        for e in o.get("errors", []):
            out.append((re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", e["path"]), e["reason"]))
    return out


def check_invalid(t):
    wording = []
    for name, obj, want, note in CASES:
        r = send(obj, GROUP)
        rr = send(obj, REF_GROUP)
        if isinstance(want, tuple):
            got = unknown_fields(r)
            t.require(r.code == 400 and got == sorted(want[1]),
                      f"{name}: expected unknown fields {want[1]}: HTTP {r.code} {r.short()}")
            fields = sorted(want[1])
        else:
            got = relevant(r.causes())
            ok = r.code == 422 and len(got) == len(want) and all(
                any(f == wf and wm in m for f, m in got) for wf, wm in want)
            t.require(ok, f"{name}: expected {want}: HTTP {r.code} {got or r.short()}")
            fields = sorted(f for f, _ in got)
        if note is None:
            t.require(outcome(r) == outcome(rr),
                      f"{name}: the reference answered {outcome(rr)}, mgo's CRD {outcome(r)}")
        elif note.startswith("accepts"):
            t.require(rr.code == 201, f"{name}: the reference was expected to accept: {rr.short()}")
        else:
            t.require(rr.code in (400, 422),
                      f"{name}: the reference was expected to refuse too: HTTP {rr.code}")
        # `mgo validate` (the same tables, C predicates instead of CEL) names the same fields.
        mine = mgo_validate(obj)
        t.require(sorted({p for p, _ in mine}) == sorted(set(fields)),
                  f"{name}: mgo validate reports {mine}, the API server {fields}")
        if not isinstance(want, tuple):
            for f, m in got:
                reasons = [reason for p, reason in mine if p == f]
                if not any(m.endswith(reason) for reason in reasons):
                    wording.append((name, m, reasons))
    explained = sum(1 for case in CASES if case[3])
    t.ok(f"{len(CASES)} invalid objects refused at the expected fields; same causes as the "
         f"reference except {explained} explained cases; `mgo validate` names the same fields "
         f"({len(wording)} differ in wording only)")
    for name, m, reason in wording:
        print(f"  (wording) {name}: API server {m!r}; mgo validate {reason!r}")


# ---- update-only rules --------------------------------------------------------------------

def put(obj, group):
    o = copy.deepcopy(obj)
    o["apiVersion"] = f"{group}/{VERSION}"
    return api.call("PUT", object_path(o), o, query={"fieldValidation": "Strict"})


# The transition rules check_transitions() expects (for check_rule_coverage).
TRANSITION_MESSAGES = [
    "Cells cannot be removed or renamed (Append-Only)",
    "Pools cannot be removed or renamed in this version",
    "Cells cannot be removed from a pool (Append-Only)",
    "encryption is immutable",
]


def check_transitions(t):
    two_pools = with_(SHARD + ".spec", "pools", {
        "main": {"type": "readWrite", "cells": ["a", "b"]}, "extra": {"cells": ["a"]}})
    encrypted = with_("spec", "backup", {"type": "filesystem", "filesystem": {"path": "/b"},
                                         "encryption": {"secretName": "keys"}}, two_pools)
    base_tpl = template("ShardTemplate",
                        {"pools": {"main": {"cells": ["a", "b"]}, "extra": {}}}, "tr")
    steps = [
        ("remove cell b", lambda o: o["spec"]["cells"].pop(),
         [("spec.cells", "Cells cannot be removed or renamed (Append-Only)")]),
        ("rename cell b", lambda o: o["spec"]["cells"][1].update(name="c"),
         [("spec.cells", "Cells cannot be removed or renamed (Append-Only)")]),
        ("remove pool extra", lambda o: at(o, SHARD + ".spec.pools").pop("extra"),
         [(SHARD + ".spec.pools", "Pools cannot be removed or renamed in this version")]),
        # CEL failures name a map value as pools[main]; schema failures as pools.main.
        ("remove cell b from pool main", lambda o: at(o, POOL)["cells"].pop(),
         [(SHARD + ".spec.pools[main].cells",
           "Cells cannot be removed from a pool (Append-Only)")]),
        ("change the encryption Secret", lambda o: o["spec"]["backup"]["encryption"].update(
            secretName="other"),
         [("spec.backup", "encryption is immutable")]),
        ("remove the encryption", lambda o: o["spec"]["backup"].pop("encryption"),
         [("spec.backup", "encryption is immutable")]),
        ("add cell c and grow the pool", lambda o: (
            o["spec"]["cells"].append({"name": "c", "region": "us-east-1"}),
            at(o, POOL)["cells"].append("c"), at(o, POOL).update(replicasPerCell=3)), None),
    ]
    n = 0
    for group in (GROUP, REF_GROUP):
        for i, (name, change, want) in enumerate(steps):
            obj = copy.deepcopy(encrypted)
            obj["metadata"]["name"] = f"tr{i}"
            r = send(obj, group, dry_run=False)
            t.require(r.code == 201, f"{group} {name}: create: HTTP {r.code} {r.short()}")
            obj = r.obj
            change(obj)
            r = put(obj, group)
            if want is None:
                t.require(r.code == 200, f"{group} {name}: HTTP {r.code} {r.short()}")
            else:
                got = relevant(r.causes())
                t.require(r.code == 422 and [f for f, _ in got] == [f for f, _ in want] and all(
                    wm in m for (_, m), (_, wm) in zip(got, want)),
                    f"{group} {name}: expected {want}: HTTP {r.code} {got or r.short()}")
            n += 1
        r = send(base_tpl, group, dry_run=False)
        t.require(r.code == 201, f"{group} ShardTemplate: HTTP {r.code} {r.short()}")
        tpl = r.obj
        del tpl["spec"]["pools"]["extra"]
        r = put(tpl, group)
        got = relevant(r.causes())
        t.require(r.code == 422 and got and got[0][0] == "spec.pools" and
                  "Pools cannot be removed" in got[0][1],
                  f"{group} ShardTemplate pool removal: HTTP {r.code} {got or r.short()}")
        tpl = api.call("GET", object_path(dict(tpl, apiVersion=f"{group}/{VERSION}"))).obj
        tpl["spec"]["pools"]["main"]["cells"] = ["a"]
        r = put(tpl, group)
        got = relevant(r.causes())
        t.require(r.code == 422 and got and got[0][0] == "spec.pools[main].cells" and
                  "Cells cannot be removed from a pool" in got[0][1],
                  f"{group} ShardTemplate pool cell removal: HTTP {r.code} {got or r.short()}")
        n += 2
    t.ok(f"{n} updates: append-only cells and pools and immutable encryption refused at the "
         f"field, growing accepted; the same on the reference")


# ---- status and scale ---------------------------------------------------------------------

def check_status(t):
    sample = f"{SHARED}/compat/upstream-samples/minimal.yaml"
    p = subprocess.run([HELPER, "status", sample], capture_output=True, text=True)
    t.require(p.returncode == 0, f"kube_deploy_helper status: {p.stderr}")
    statuses = json.loads(p.stdout)
    running = statuses["running"]
    t.require(running.get("instanceStatus") and any(v is None for i in running["instanceStatus"]
                                                    for v in i.values()),
              "the running status has no instance with a null field (nothing to check)")

    obj = copy.deepcopy(cluster("st"))
    obj["status"] = {"phase": "Healthy"}
    r = send(obj, GROUP, dry_run=False)
    t.require(r.code == 201, f"create st: HTTP {r.code} {r.short()}")
    t.require("status" not in r.obj, f"create kept a status: {r.obj.get('status')}")
    t.require(r.obj["metadata"]["generation"] == 1, "generation after create is not 1")
    path = object_path(r.obj)

    for label, status in (("initial", statuses["initial"]), ("running", running)):
        cur = api.call("GET", path).obj
        cur["status"] = status
        r = api.call("PUT", path + "/status", cur, query={"fieldValidation": "Strict"})
        t.require(r.code == 200, f"PUT {label} status: HTTP {r.code} {r.short()}")
        t.require(not r.warnings(), f"PUT {label} status: warnings {r.warnings()}")
        back = api.call("GET", path).obj
        t.require(back["status"] == status,
                  f"the {label} status read back differs:\n{json.dumps(back['status'])}\n"
                  f"sent:\n{json.dumps(status)}")
        t.require(back["metadata"]["generation"] == 1, f"a status write moved generation")
    t.ok("the statuses mgo_reconcile publishes (nothing yet / running with roles, a drain and "
         "nulls) are stored exactly as sent through PUT /status")

    r = api.call("PATCH", path + "/status", {"status": {"phase": "Degraded"}},
                 "application/merge-patch+json")
    t.require(r.code == 200 and r.obj["status"]["phase"] == "Degraded",
              f"merge patch of /status: HTTP {r.code} {r.short()}")
    r = api.call("PATCH", path + "/status", {"status": {"phase": "Broken"}},
                 "application/merge-patch+json")
    t.require(r.code == 422 and relevant(r.causes())[0][0] == "status.phase",
              f"phase Broken: HTTP {r.code} {r.causes()}")
    r = api.call("PATCH", path + "/status",
                 {"status": {"conditions": [{"type": "Available", "status": "Maybe"}]}},
                 "application/merge-patch+json")
    fields = sorted(f for f, _ in relevant(r.causes()))
    t.require(r.code == 422 and "status.conditions[0].status" in fields and
              "status.conditions[0].lastTransitionTime" in fields,
              f"a bad condition: HTTP {r.code} {r.causes()}")
    r = api.call("PATCH", path, {"spec": {"postgresSuperuser": "admin"},
                                 "status": {"phase": "Healthy"}}, "application/merge-patch+json")
    t.require(r.code == 200, f"patch of the main resource: HTTP {r.code} {r.short()}")
    t.require(r.obj["status"]["phase"] == "Degraded", "a write to the main resource changed status")
    t.require(r.obj["metadata"]["generation"] == 2, "a spec change did not move generation to 2")
    r = api.call("PATCH", path + "/status", {"spec": {"postgresSuperuser": "other"}},
                 "application/merge-patch+json")
    t.require(r.code == 200 and r.obj["spec"]["postgresSuperuser"] == "admin",
              f"a write to /status changed spec: {r.short()}")
    t.ok("status only through /status, spec only through the main resource; generation moves "
         "with spec; a bad phase or condition is refused at its field")

    for group in (GROUP, REF_GROUP):
        for kind, plural in KINDS.items():
            obj = cluster("sc") if kind == "MultigresCluster" else template(kind, {}, "sc")
            r = send(obj, group, dry_run=False)
            t.require(r.code == 201, f"{group} {kind} sc: HTTP {r.code} {r.short()}")
            base = object_path(r.obj)
            t.require(api.call("GET", base + "/scale").code == 404, f"{group} {kind} has /scale")
            code = api.call("GET", base + "/status").code
            want = 200 if kind == "MultigresCluster" else 404
            t.require(code == want, f"{group} {kind} /status: HTTP {code}, expected {want}")
    t.ok("no kind has a scale subresource; only MultigresCluster has /status (as the reference)")


def check_columns(t):
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for kind, plural in KINDS.items():
        defs = []
        for group in (GROUP, REF_GROUP):
            r = api.call("GET", f"/apis/{group}/{VERSION}/namespaces/{NS}/{plural}", accept=table)
            t.require(r.code == 200 and r.obj.get("kind") == "Table",
                      f"{group} {plural} as Table: HTTP {r.code} {r.short()}")
            defs.append([(c["name"], c["type"], c.get("priority", 0), c.get("format", ""))
                         for c in r.obj["columnDefinitions"]])
        t.require(defs[0] == defs[1], f"{plural} columns {defs[0]} != the reference's {defs[1]}")
        want = (["Name", "Available", "Age", "Phase", "Images"] if kind == "MultigresCluster"
                else ["Name", "Age"])
        t.require([d[0] for d in defs[0]] == want, f"{plural} columns {defs[0]}, expected {want}")
    r = api.call("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/multigresclusters/st",
                 accept=table)
    cols = [c["name"] for c in r.obj["columnDefinitions"]]
    row = dict(zip(cols, r.obj["rows"][0]["cells"]))
    t.require(row["Name"] == "st" and row["Phase"] == "Degraded" and row["Available"] == "True",
              f"the row of st: {row}")
    t.ok("printer columns as the reference's (Available, Age, Phase, Images wide; templates "
         "Name, Age); the row of a cluster shows its status")


def check_rule_coverage(t):
    """Every CEL rule of mgo's CRDs is the expected refusal of at least one case above."""
    rules = set()

    def walk(node):
        if isinstance(node, dict):
            rules.update(r["message"] for r in node.get("x-kubernetes-validations", []))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for plural in KINDS.values():
        with open(f"{SRC}/host-shims/kube/deploy/crds/{plural}.yaml") as f:
            walk(yaml_to_json(HELPER, [f.read()])[0])
    expected = [m for _, _, want, _ in CASES if not isinstance(want, tuple) for _, m in want]
    expected += TRANSITION_MESSAGES
    untested = sorted(r for r in rules if not any(m in r for m in expected))
    t.require(not untested, f"CEL rules no case refuses: {untested}")
    t.ok(f"each of the {len(rules)} CEL rules is the expected refusal of at least one case")


def main(t):
    global HELPER, CLI, SRC, SHARED, api
    HELPER, CLI = sys.argv[1], sys.argv[2]
    SRC, SHARED = os.environ["MGO_SOURCE_DIR"], os.environ["MGO_SHARED_DIR"]
    api = Api(f"mgo-test-deploy-crds/1 ({os.getpid()})")
    install(t)
    check_discovery(t)
    check_samples(t)
    check_invalid(t)
    check_transitions(t)
    check_status(t)
    check_columns(t)
    check_rule_coverage(t)


if __name__ == "__main__":
    sys.exit(run(main))
