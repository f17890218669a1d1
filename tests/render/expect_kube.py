#!/usr/bin/env python3
"""The Kubernetes objects a fresh reconcile of one MultigresCluster creates, computed from the
resolved cluster (`mgo resolve FILE...`, already accepted) with this file's own implementation of
the reference operator's naming scheme. Standard library only.

Everything here is written from the reference operator (multigres/multigres-operator at commit
39a7efcd, the facts in ../shared/facts/operator-api.md sections 1.2-1.8, 2 and 3, and its Go
source), never from mgo's renderer or its output. Where a rule comes from a source file, the
comment names it (paths are relative to the reference repository).

mgo flattens the reference's tree of child CRs (Cell, TableGroup, Shard, TopoServer): every object
below is owned directly by the MultigresCluster, except PVCs, whose owner reference follows the
effective pvcDeletionPolicy.whenDeleted (pool_pvc.go: BuildPoolDataPVC / BuildSharedBackupPVC,
shard_controller.go: ShouldDeletePVCOnShardRemoval / ShouldDeleteShardLevelPVCOnRemoval).

Usage:
  expect_kube.py --self-check                 check the naming scheme against reference vectors
  expect_kube.py RESOLVED.json                print the expectation for a resolved cluster
  expect_kube.py --mgo MGO FILE...            run `MGO resolve FILE...` first, then the same
"""

import json
import subprocess
import sys

# ---- naming: pkg/util/name/name.go ---------------------------------------------------------------

HASH_LENGTH = 8
TRUNCATION_MARK = "---"


def _lower_alnum(ch):
    return "a" <= ch <= "z" or "0" <= ch <= "9"


def _lower_letter(ch):
    return "a" <= ch <= "z"


# (MaxLength, ValidFirstChar), name.go: DefaultConstraints, ServiceConstraints,
# StatefulSetConstraints, PodConstraints.
DEFAULT = (253, _lower_alnum)
SERVICE = (63, _lower_letter)
STATEFULSET = (52, _lower_letter)
POD = (60, _lower_letter)


def fnv1a32(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def name_hash(parts):
    """name.Hash: FNV-1a 32 over every original part followed by a NUL byte, 8 hex digits."""
    data = b"".join(p.encode("utf-8") + b"\0" for p in parts)
    return "%08x" % fnv1a32(data)


def join(cons, *parts):
    """name.JoinWithConstraints."""
    max_length, valid_first = cons
    if max_length < 1 + len(TRUNCATION_MARK) + HASH_LENGTH:
        raise ValueError("MaxLength %d is invalid" % max_length)
    if not parts:
        return ""
    h = name_hash(parts)

    def transform(ch):  # per rune, like strings.Map
        if _lower_alnum(ch) or ch == "-":
            return ch
        if "A" <= ch <= "Z":
            return ch.lower()
        return "-"

    new_parts = ["".join(transform(c) for c in p) for p in parts]
    if not new_parts[0] or not valid_first(new_parts[0][0]):
        new_parts[0] = "x" + new_parts[0]
    partial = "-".join(new_parts)
    predicted = len(partial) + 1 + len(h)
    if predicted <= max_length:
        return partial + "-" + h
    cut = predicted - max_length + 2
    return partial[: len(partial) - cut] + TRUNCATION_MARK + h


# ---- self-check against the reference's own vectors -----------------------------------------------

# Exact outputs. The first two are literal in the reference's tests:
#   pkg/util/name/name_test.go TestJoinHash                 -> hello-world-344ce285
#   pkg/resource-handler/controller/shard/containers_test.go TestBuildPoolServiceID uses the pod
#   name "minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b-1" (PodConstraints).
# The rest were produced by compiling the reference's pkg/util/name/name.go unchanged (Go 1.26,
# `git show HEAD:pkg/util/name/name.go` into a scratch module, calling JoinWithConstraints/Hash);
# they pin the truncation, prefixing and transformation paths on names the samples need.
EXACT_VECTORS = [
    (DEFAULT, ["hello", "world"], "hello-world-344ce285"),
    (POD, ["minimal", "postgres", "default", "0-inf", "pool", "default", "zone-a"],
     "minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b"),
    (DEFAULT, ["minimal-cluster", "postgres", "default"],
     "minimal-cluster-postgres-default-cced1745"),
]
# name_test.go TestJoinWithConstraints: MaxLength 50, first char a lowercase letter; prefixes.
_CONS50 = (50, _lower_letter)
PREFIX_VECTORS = [
    (["UpperCase-Letters", "Are-Lowercased"], "uppercase-letters-are-lowercased-"),
    (["allowed-symbols", "dont---change"], "allowed-symbols-dont---change-"),
    (["disallowed_symbols", "are.replaced"], "disallowed-symbols-are-replaced-"),
    (["really-really-ridiculously-long-inputs-are-truncated"],
     "really-really-ridiculously-long-inputs----"),
    (["-disallowed first chars", "-are prefixed"], "x-disallowed-first-chars--are-prefixed-"),
    (["Transformed first char", "is ok"], "transformed-first-char-is-ok-"),
]

# Produced by the reference's name.go (see above): (constraints name, parts, output).
REFERENCE_GO_VECTORS = [
    ("service", ["standard-ha-cluster", "postgres", "default", "0-inf", "multiorch", "az1"],
     "standard-ha-cluster-postgres-default-0-inf-multiorch---bf51a75c"),
    ("service", ["standard-ha-cluster", "postgres", "default", "0-inf", "pool", "main-app", "az1",
                 "headless"],
     "standard-ha-cluster-postgres-default-0-inf-pool-main---47b488fb"),
    ("pod", ["standard-ha-cluster", "postgres", "default", "0-inf", "pool", "main-app", "az2"],
     "standard-ha-cluster-postgres-default-0-inf-pool-m---4395d9dd"),
    ("service", ["backup-data", "standard-ha-cluster", "postgres", "default", "0-inf"],
     "backup-data-standard-ha-cluster-postgres-default-0-inf-03e37f16"),
    ("service", ["e2e-log-levels", "postgres", "default", "0-inf", "pool", "default", "zone-a",
                 "pdb"],
     "e2e-log-levels-postgres-default-0-inf-pool-default-z---6e132387"),
    ("service", ["a-very-long-cluster-name-x", "postgres", "default", "0-inf", "multiorch",
                 "zone-a"],
     "a-very-long-cluster-name-x-postgres-default-0-inf-mu---e26026c3"),
    ("pod", ["e2e-log-levels", "postgres", "default", "0-inf", "pool", "default", "zone-a"],
     "e2e-log-levels-postgres-default-0-inf-pool-defaul---7ef0a649"),
    ("service", ["topology", "z1", "multigateway"], "topology-z1-multigateway-66ac3666"),
    ("default", ["ext-etcd", "zone-b-isolated"], "ext-etcd-zone-b-isolated-30635d5a"),
    ("statefulset", ["ext-etcd-zone-b-isolated-30635d5a", "topo"],
     "ext-etcd-zone-b-isolated-30635d5a-topo-2af76d55"),
    ("statefulset", ["0abc", "\u00dcber_Name"], "x0abc--ber-name-22a32737"),
    ("default", ["0abc", "\u00dcber_Name"], "0abc--ber-name-22a32737"),
    ("hash", ["minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b-1"], "6bfa8f13"),
]

_CONS_BY_NAME = {"default": DEFAULT, "service": SERVICE, "statefulset": STATEFULSET, "pod": POD}


def self_check():
    """Return a list of failures (empty when the naming scheme matches the reference)."""
    failures = []
    for cons, parts, want in EXACT_VECTORS:
        got = join(cons, *parts)
        if got != want:
            failures.append("join%r = %r, want %r" % (parts, got, want))
    for parts, prefix in PREFIX_VECTORS:
        got = join(_CONS50, *parts)
        if not got.startswith(prefix) or len(got) > 50:
            failures.append("join50%r = %r, want prefix %r" % (parts, got, prefix))
    for cname, parts, want in REFERENCE_GO_VECTORS:
        got = name_hash(parts) if cname == "hash" else join(_CONS_BY_NAME[cname], *parts)
        if got != want:
            failures.append("%s%r = %r, want %r" % (cname, parts, got, want))
    # name_test.go TestJoin: determinism and uniqueness.
    same = [
        (["one", "two", "three"], ["one", "two", "three"], True),
        (["one", "two", "three"], ["one", "three", "two"], False),
        (["one", "two", "three"], ["one", "two", "four"], False),
        (["one-two", "three-four"], ["one", "two-three-four"], False),
        (["one-two", "three-four"], ["one-two", "three", "four"], False),
    ]
    for a, b, eq in same:
        if (join(DEFAULT, *a) == join(DEFAULT, *b)) != eq:
            failures.append("join%r == join%r should be %s" % (a, b, eq))
    if not join(DEFAULT, "one", "two", "three").startswith("one-two-three-"):
        failures.append("join(one,two,three) lacks its prefix")
    # TestJoinWithConstraintsMaxLength: truncated output is exactly MaxLength, still unique.
    c25 = (25, _lower_alnum)
    out = join(c25, "a" * 20, "b" * 20)
    if len(out) != 25:
        failures.append("len(%r) = %d, want 25" % (out, len(out)))
    if join(c25, "a" * 20, "b" * 100 + "1") == join(c25, "a" * 20, "b" * 100 + "2"):
        failures.append("truncated names collide")
    # TestJoinWithConstraintsTransform.
    if join((50, _lower_alnum), "disallowed_symbol") == join((50, _lower_alnum), "disallowed/symbol"):
        failures.append("transformed names collide")
    # TestServiceConstraints / TestEmptyParts / TestInvalidConstraintsPanic.
    svc = join(SERVICE, "production", "gateway")
    if len(svc) > 63 or not _lower_letter(svc[0]):
        failures.append("service name %r" % svc)
    if join(DEFAULT) != "":
        failures.append("join() of no parts is not empty")
    try:
        join((5, _lower_letter), "test")
        failures.append("MaxLength 5 did not fail")
    except ValueError:
        pass
    # containers.go BuildPoolServiceID: "p-" + Hash([podName]), 10 characters.
    sid = "p-" + name_hash(["minimal-postgres-default-0-inf-pool-default-zone-a-a3a0d77b-1"])
    if len(sid) != 10:
        failures.append("service id %r is not 10 characters" % sid)
    return failures


# ---- the expected objects -------------------------------------------------------------------------

GROUP_VERSION = "multigres.com/v1alpha1"
API_VERSION = {
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1",
    "Pod": "v1",
    "PodDisruptionBudget": "policy/v1",
}
EXPECTED_KINDS = sorted(API_VERSION)


def _get(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d or d[p] is None:
            return default
        d = d[p]
    return d


def _when_deleted(*policies):
    """MergePVCDeletionPolicy down a chain (child first): the first set whenDeleted wins; the
    cluster-level default is Delete (facts 1.2, pkg/resolver/cluster.go:57)."""
    for p in policies:
        v = _get(p or {}, "whenDeleted")
        if v:
            return v
    return "Delete"


def _node_selector(cell):
    """builders_tablegroup.go buildCellTopologyLabels / cell/multigateway.go buildCellNodeSelector."""
    if cell.get("zoneId"):
        return {"topology.k8s.aws/zone-id": cell["zoneId"]}
    if cell.get("region"):
        return {"topology.kubernetes.io/region": cell["region"]}
    return None


def expect(resolved):
    """The expectation for one resolved MultigresCluster (a dict)."""
    meta = resolved.get("metadata", {})
    spec = resolved.get("spec", {})
    c = meta["name"]
    ns = meta.get("namespace") or "default"
    objects = []
    optional = []  # (kind, name) the reference also creates but mgo need not (out of scope)

    def labels(component, **extra):
        # pkg/util/metadata/labels.go BuildStandardLabels; mgo writes managed-by=mgo.
        out = {
            "app.kubernetes.io/name": "multigres",
            "app.kubernetes.io/instance": c,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "multigres",
            "app.kubernetes.io/managed-by": "mgo",
            "multigres.com/cluster": c,
        }
        for k, v in extra.items():
            out["multigres.com/" + k] = v
        return out

    def add(kind, name, lab, owned=True, **checks):
        obj = {"kind": kind, "apiVersion": API_VERSION[kind], "name": name, "owned": owned,
               "labels": lab}
        obj.update(checks)
        objects.append(obj)
        return obj

    def key(kind, name):
        return "%s/%s" % (kind, name)

    cells = spec.get("cells") or []
    all_cell_names = sorted(cell["name"] for cell in cells)
    cell_by_name = {cell["name"]: cell for cell in cells}
    log_levels = spec.get("logLevels") or {}

    # -- topology servers (toposerver/statefulset.go, service.go, ports.go) --
    gts = spec.get("globalTopoServer") or {}
    local_topo_sts = []

    def topo_server(sts_name, etcd, extra_labels):
        lab = labels("toposerver", **extra_labels)  # ComponentName = ComponentTopoServer
        add("StatefulSet", sts_name, lab, replicas=_get(etcd, "replicas", default=3),
            serviceName=sts_name + "-headless", selects=[key("StatefulSet", sts_name)])
        return lab

    if _get(gts, "external") is not None:
        # An external global topology replaces etcd: no topo objects
        # (reconcile_global.go reconcileGlobalTopoServer deletes the managed one).
        topo_address = (_get(gts, "external", "endpoints", default=[""]) or [""])[0]
        topo_root = _get(gts, "external", "rootPath", default="")
        global_sts = None
    else:
        etcd = _get(gts, "etcd", default={})
        global_sts = c + "-global-topo"  # builders_global.go BuildGlobalTopoServer
        topo_server(global_sts, etcd, {})
        topo_address = "%s-global-topo.%s.svc:2379" % (c, ns)  # reconcile_global.go globalTopoRef
        topo_root = _get(etcd, "rootPath", default="/multigres/global")

    for cell in cells:
        local = _get(cell, "spec", "localTopoServer", "etcd")
        if local is None:
            continue
        # cell/local_toposerver.go BuildLocalTopoServerName -> topo.ManagedLocalTopoServerName:
        # Join(StatefulSet, <Cell CR name>, "topo"); Cell CR = Join(Default, cluster, cell)
        # (builders_cell.go).
        sts = join(STATEFULSET, join(DEFAULT, c, cell["name"]), "topo")
        lab = topo_server(sts, local, {"cell": cell["name"]})
        local_topo_sts.append(key("StatefulSet", sts))
        add("Service", sts, lab, ports={"required": [2379]}, selects=[key("StatefulSet", sts)])
        add("Service", sts + "-headless", lab, ports={"required": [2379, 2380]}, headless=True,
            selects=[key("StatefulSet", sts)])

    if global_sts:
        lab = labels("toposerver")
        # The global selector (component, instance, cluster) has no cell key, so in the
        # reference it also matches a local topo's pods (toposerver/service.go
        # GetSelectorLabels over the same standard labels); tolerate that, do not require it.
        add("Service", global_sts, lab, ports={"required": [2379]},
            selects=[key("StatefulSet", global_sts)], mayAlsoSelect=local_topo_sts)
        add("Service", global_sts + "-headless", lab, ports={"required": [2379, 2380]},
            headless=True, selects=[key("StatefulSet", global_sts)], mayAlsoSelect=local_topo_sts)

    # -- cluster-wide stateless components (builders_global.go) --
    ma = c + "-multiadmin"
    add("Deployment", ma, labels("multiadmin"),
        replicas=_get(spec, "multiadmin", "spec", "replicas", default=1),
        selects=[key("Deployment", ma)])
    add("Service", ma, labels("multiadmin"), ports={"required": [18000, 18070]},
        selects=[key("Deployment", ma)])
    web = c + "-multiadmin-web"
    add("Deployment", web, labels("multiadmin-web"),
        replicas=_get(spec, "multiadminWeb", "spec", "replicas", default=1),
        selects=[key("Deployment", web)])
    add("Service", web, labels("multiadmin-web"), ports={"required": [18100]},
        selects=[key("Deployment", web)])

    # -- per cell: multigateway (cell/multigateway.go) --
    gateway_deployments = []
    for cell in cells:
        cn = cell["name"]
        dep = join(DEFAULT, c, cn, "multigateway")
        svc = join(SERVICE, c, cn, "multigateway")
        lab = labels("multigateway", cell=cn)
        add("Deployment", dep, lab, replicas=_get(cell, "spec", "multigateway", "replicas",
                                                  default=1),
            nodeSelector=_node_selector(cell), selects=[key("Deployment", dep)])
        # BuildMultigatewayService: http 15100, grpc 15170, postgres 5432. The facts (2.1) also
        # list 5433 for the gateway, which is a container port at HEAD: tolerated, not required.
        add("Service", svc, lab, ports={"required": [15100, 15170, 5432], "optional": [5433]},
            selects=[key("Deployment", dep)])
        gateway_deployments.append(key("Deployment", dep))

    # builders_global.go BuildMultigatewayGlobalService / ...GlobalReplicaService: select every
    # gateway of the cluster.
    add("Service", c + "-multigateway", labels("multigateway"), ports={"required": [5432]},
        selects=gateway_deployments)
    add("Service", c + "-multigateway-replica", labels("multigateway"),
        ports={"required": [5433]}, selects=gateway_deployments)

    # -- per shard (resource-handler/controller/shard) --
    cluster_policy = spec.get("pvcDeletionPolicy")
    for db in spec.get("databases") or []:
        dbn = db["name"]
        for tg in db.get("tablegroups") or []:
            tgn = tg["name"]
            for shard in tg.get("shards") or []:
                sn = shard["name"]
                sspec = shard.get("spec") or {}
                hier = {"database": dbn, "tablegroup": tgn, "shard": sn}
                # tablegroup/builders.go: the Shard CR name from the logical names.
                shard_cr = join(DEFAULT, c, dbn, tgn, sn)
                pools = sspec.get("pools") or {}

                # multiorch.go / shard_controller.go getMultiorchCells.
                orch_cells = _get(sspec, "multiorch", "cells") or sorted(
                    {pc for p in pools.values() for pc in (p.get("cells") or all_cell_names)})
                for cn in orch_cells:
                    dep = join(DEFAULT, c, dbn, tgn, sn, "multiorch", cn)
                    svc = join(SERVICE, c, dbn, tgn, sn, "multiorch", cn)
                    lab = labels("multiorch", cell=cn, **hier)
                    add("Deployment", dep, lab,
                        replicas=_get(sspec, "multiorch", "replicas", default=1),
                        nodeSelector=_node_selector(cell_by_name.get(cn, {})),
                        selects=[key("Deployment", dep)])
                    add("Service", svc, lab, ports={"required": [15300, 15370]},
                        selects=[key("Deployment", dep)])

                # configmap.go / containers.go PgHbaConfigMapName, PostgresConfigMapName.
                add("ConfigMap", shard_cr + "-pg-hba", labels("pg-hba-config", **hier))
                add("ConfigMap", shard_cr + "-postgres-config",
                    labels("postgres-config", **hier))
                # PostgresExporterQueriesConfigMapName: exporter material is out of scope.
                optional.append(("ConfigMap", shard_cr + "-exporter-queries"))

                # Backup (facts 1.5: filesystem, /backups, 10Gi by default); the shared PVC
                # exists only for filesystem (shard_controller reconcileSharedBackupPVC).
                backup = (shard.get("backup") or tg.get("backup") or db.get("backup")
                          or spec.get("backup") or {"type": "filesystem"})
                backup_pvc = None
                if backup.get("type", "filesystem") != "s3":
                    backup_pvc = join(SERVICE, "backup-data", c, dbn, tgn, sn)
                    # The reference's BuildSharedBackupPVC owns it when the shard-level policy
                    # is Delete, but its shard deletion always orphans it (facts 3.5: "the
                    # non-indexed backup PVC is always orphaned"); mgo renders it unowned, so
                    # backups outlive the cluster (docs/spec/lifecycle.md, deletion).
                    owned = False
                    add("PersistentVolumeClaim", backup_pvc, labels("shard-pool", **hier),
                        owned=owned,
                        storage={"size": _get(backup, "filesystem", "storage", "size",
                                              default="10Gi"),
                                 "class": _get(backup, "filesystem", "storage", "class")})

                for pn in sorted(pools):
                    pool = pools[pn]
                    pcells = pool.get("cells") or all_cell_names
                    replicas = pool.get("replicasPerCell")
                    if replicas is None:  # pkg/resolver/shard.go: 2 for a one-cell pool
                        replicas = 2 if len(pcells) == 1 else 1
                    owned = _when_deleted(pool.get("pvcDeletionPolicy"),
                                          sspec.get("pvcDeletionPolicy"),
                                          tg.get("pvcDeletionPolicy"), cluster_policy) == "Delete"
                    for cn in pcells:
                        parts = (c, dbn, tgn, sn, "pool", pn, cn)
                        base = join(POD, *parts)  # pool_pod.go BuildPoolPodName
                        headless = join(SERVICE, *parts, "headless")  # pool_service.go
                        pdb = join(SERVICE, *parts, "pdb")  # pool_pdb.go
                        lab = labels("shard-pool", pool=pn, cell=cn, **hier)
                        pods = []
                        for i in range(replicas):
                            pod = "%s-%d" % (base, i)
                            pvc = "data-" + pod  # pool_pvc.go BuildPoolDataPVCName
                            claims = [pvc] + ([backup_pvc] if backup_pvc else [])
                            add("Pod", pod, lab, pod={
                                "hostname": pod,
                                "subdomain": headless,
                                "nodeSelector": _node_selector(cell_by_name.get(cn, {})),
                                "claims": claims,
                                # containers.go buildPgctldSidecar: a native sidecar (init
                                # container, sidecarRestartPolicy = Always) NAMED "postgres"
                                # (containers.go:361) running /usr/local/bin/pgctld.
                                "pgctldContainer": "postgres",
                                "pgctldCommand": "/usr/local/bin/pgctld",
                                "pgctldArgs": ["server",
                                               "--log-level=" + log_levels.get("pgctld", "info")],
                                # containers.go buildMultipoolerContainer: --flag=value tokens.
                                "multipoolerArgs": [
                                    "--http-port=15200",
                                    "--grpc-port=15270",
                                    "--service-map=grpc-pooler",
                                    "--topo-global-server-addresses=" + topo_address,
                                    "--topo-global-root=" + topo_root,
                                    "--cell=" + cn,
                                    "--database=" + dbn,
                                    "--table-group=" + tgn,
                                    "--shard=" + sn,
                                    "--service-id=p-" + name_hash([pod]),
                                    "--pgctld-addr=localhost:15470",
                                    "--pg-port=5432",
                                    "--connpool-global-capacity=40",
                                    "--connpool-admin-capacity=5",
                                    "--log-level=" + log_levels.get("multipooler", "info"),
                                ],
                            })
                            add("PersistentVolumeClaim", pvc, lab, owned=owned,
                                storage={"size": _get(pool, "storage", "size", default="1Gi"),
                                         "class": _get(pool, "storage", "class")})
                            pods.append(key("Pod", pod))
                        # pool_service.go: headless, ports http/grpc/postgres (+ exporter 9187,
                        # out of scope: tolerated).
                        add("Service", headless, lab,
                            ports={"required": [15200, 15270, 5432], "optional": [9187]},
                            headless=True, selects=pods)
                        add("PodDisruptionBudget", pdb, lab,
                            # mgo: minAvailable replicas-1, not the reference's maxUnavailable
                            # 1 (its pods' owner, the cluster, has no scale subresource, so
                            # maxUnavailable would allow no eviction; docs/spec/lifecycle.md)
                            minAvailable=max(int(pool.get("replicasPerCell", 1)) - 1, 0),
                            selects=pods)

    return {
        "cluster": c,
        "namespace": ns,
        "kinds": EXPECTED_KINDS,
        "objects": objects,
        "optional": [{"kind": k, "name": n} for k, n in optional],
    }


def resolve_with(mgo, files):
    out = subprocess.run([mgo, "resolve", *files], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=False)
    if out.returncode != 0:
        raise RuntimeError("mgo resolve %s: exit %d\n%s" % (" ".join(files), out.returncode,
                                                           out.stderr.decode(errors="replace")))
    return json.loads(out.stdout)


def main(argv):
    failures = self_check()
    if failures:
        print("naming self-check FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    if argv[1:2] == ["--self-check"]:
        print("naming self-check: %d exact, %d prefix, %d reference vectors OK"
              % (len(EXACT_VECTORS), len(PREFIX_VECTORS), len(REFERENCE_GO_VECTORS)))
        return 0
    if argv[1:2] == ["--mgo"] and len(argv) > 3:
        resolved = resolve_with(argv[2], argv[3:])
    elif len(argv) == 2:
        with (sys.stdin if argv[1] == "-" else open(argv[1], encoding="utf-8")) as f:
            resolved = json.load(f)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(expect(resolved), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
