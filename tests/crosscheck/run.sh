#!/usr/bin/env bash
# Independent cross-check of the topology records mgo writes into etcd (ctest crosscheck_topology),
# and proof that the check can fail (crosscheck_detects_mismatch, with --expect-mismatch).
#
#   usage: run.sh [--expect-mismatch] GO SOURCE-DIR OUT-DIR
#
# 1. builds the Go program `crosscheck` (SOURCE-DIR, this folder) into OUT-DIR with
#    GOFLAGS=-mod=readonly, modules cached under ${XDG_CACHE_HOME:-$HOME/.cache}/mgo/gomod and the
#    build cache under .../mgo/go-build (an empty cache is filled from the Go module proxy and
#    checked against go.sum);
# 2. starts a real etcd on free loopback ports in a temporary folder (always stopped on exit);
# 3. registers upstream-samples/minimal.yaml, then (on a wiped etcd) topology.yaml, with
#    `$MGO_CLI topo register`, and verifies every record against expect/*.json: decoded by Google's
#    Go protobuf runtime with descriptors written from the facts, no unknown fields, every field
#    equal;
# 4. writes a PRIMARY and a REPLICA pooler with `crosscheck put-pooler` under the cells' root and
#    checks that `$MGO_CLI topo dump` reports them with their routing roles; registers
#    topology.yaml again and checks that nothing changed (poolers included);
# 5. prints "crosscheck: N records verified"; any mismatch exits non-zero.
# With --expect-mismatch it registers topology.yaml and runs verify against deliberately wrong
# expectations and planted bad records; each must make verify exit 1 with the expected report.
#
# Environment (ctest's MGO_TEST_ENV): MGO_CLI, MGO_SHARED_DIR; ETCD may name the etcd binary.
set -euo pipefail

mode=check
if [ "${1:-}" = --expect-mismatch ]; then
    mode=mismatch
    shift
fi
[ $# -eq 3 ] || {
    echo "usage: run.sh [--expect-mismatch] GO SOURCE-DIR OUT-DIR" >&2
    exit 2
}
go=$1 src=$(cd "$2" && pwd) out=$3
: "${MGO_CLI:?MGO_CLI must name the mgo command}" "${MGO_SHARED_DIR:?MGO_SHARED_DIR must be set}"
samples=$MGO_SHARED_DIR/compat/upstream-samples
expect=$src/expect
for f in "$samples/topology.yaml" "$samples/minimal.yaml"; do
    [ -f "$f" ] || {
        echo "FAIL: no sample $f" >&2
        exit 1
    }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- 1. build -------------------------------------------------------------------------------
cache_base=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
if [ -z "$cache_base" ] || ! mkdir -p "$cache_base/mgo" 2>/dev/null || [ ! -w "$cache_base/mgo" ]; then
    cache_base=$out/cache # no usable HOME: keep the caches in the build tree
fi
export GOMODCACHE=$cache_base/mgo/gomod GOCACHE=$cache_base/mgo/go-build
export GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off
bin=$out/crosscheck
start=$(date +%s%N)
# The program must not run under the ASan runtime ctest may preload for other hosts.
(cd "$src" && env -u LD_PRELOAD "$go" build -o "$bin.tmp.$$" . && mv -f "$bin.tmp.$$" "$bin") ||
    fail "building crosscheck (GOMODCACHE=$GOMODCACHE)"
echo "ok - built crosscheck in $((($(date +%s%N) - start) / 1000000)) ms ($("$go" version))"
if [ "$mode" = check ]; then
    gofmt=$(dirname "$(command -v "$go")")/gofmt
    if [ -x "$gofmt" ]; then
        unformatted=$("$gofmt" -l "$src")
        [ -z "$unformatted" ] || fail "not gofmt'ed: $unformatted"
        echo "ok - gofmt"
    else
        echo "note: no gofmt beside $go, format not checked"
    fi
    (cd "$src" && env -u LD_PRELOAD "$go" vet .) || fail "go vet"
    echo "ok - go vet"
fi

# ---- 2. etcd --------------------------------------------------------------------------------
etcd_bin=${ETCD:-$(command -v etcd || true)}
[ -n "$etcd_bin" ] || fail "no etcd binary (Debian package etcd-server)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mgo-crosscheck.XXXXXX")
etcd_pid=
cleanup() {
    if [ -n "$etcd_pid" ]; then
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r client_port peer_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
url=http://127.0.0.1:$client_port
peer=http://127.0.0.1:$peer_port
"$etcd_bin" --name crosscheck --data-dir "$tmp/etcd" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "crosscheck=$peer" >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!

# etcd_call PATH JSON: POST to the JSON gateway, print the answer.
etcd_call() {
    python3 - "$url$1" "$2" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(),
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=5).read().decode())
PY
}
ready=
for _ in $(seq 100); do
    kill -0 "$etcd_pid" 2>/dev/null || break
    if etcd_call /v3/kv/range '{"key":"AA=="}' >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.2
done
if [ -z "$ready" ]; then
    cat "$tmp/etcd.log" >&2
    fail "etcd did not start at $url"
fi
echo "ok - etcd $("$etcd_bin" --version | head -1 | awk '{print $3}') at $url"

wipe() { etcd_call /v3/kv/deleterange '{"key":"AA==","range_end":"AA=="}' >/dev/null; }
register() {
    "$MGO_CLI" topo register --etcd "$url" "$1" || fail "mgo topo register $1 exited $?"
}
dump() { "$MGO_CLI" topo dump --etcd "$url"; }

# ---- deliberately wrong expectations --------------------------------------------------------
if [ "$mode" = mismatch ]; then
    register "$samples/topology.yaml" >/dev/null
    detected=0 cases=0
    # expect_fail NAME GREP-PATTERN... -- VERIFY-ARGS...: verify must exit 1 (a mismatch, not an
    # error) and report each pattern.
    expect_fail() {
        local name=$1 patterns=() rc=0
        shift
        while [ "$1" != -- ]; do
            patterns+=("$1")
            shift
        done
        shift
        cases=$((cases + 1))
        "$bin" verify --etcd "$url" "$@" >"$tmp/out" 2>&1 || rc=$?
        if [ $rc -ne 1 ]; then
            cat "$tmp/out"
            echo "not ok - $name: verify exited $rc, not 1"
            return
        fi
        local p
        for p in "${patterns[@]}"; do
            if ! grep -qF -- "$p" "$tmp/out"; then
                cat "$tmp/out"
                echo "not ok - $name: no line with: $p"
                return
            fi
        done
        detected=$((detected + 1))
        echo "ok - $name: verify exited 1"
    }
    expect_fail "wrong values" \
        "- bootstrap_durability_policy.required_count: 3" \
        "+ bootstrap_durability_policy.required_count: 2" \
        '- cells[1]: "z3"' '+ cells[1]: "z2"' \
        '- root: "/multigres/z3"' '+ root: "/multigres/global"' \
        -- --expect "$expect/wrong-topology.json"
    expect_fail "another cluster's records" \
        "/multigres/global/cells/zone-a/Cell: expected, but no such key in etcd" \
        "/multigres/global/cells/z1/Cell: in etcd but not expected" \
        -- --expect "$expect/minimal.json"
    expect_fail "a pooler expected but missing" \
        "multipooler-z1-pool-0/Pooler: expected, but no such key in etcd" \
        -- --expect "$expect/topology.json" --expect "$expect/topology-poolers.json"

    # Planted values: an undeclared field, a declared field with the wrong wire type, a string
    # that is not UTF-8, a truncated value.
    "$bin" put-raw --etcd "$url" --key /multigres/global/cells/zx/Cell --hex 0a027a78220178
    "$bin" put-raw --etcd "$url" --key /multigres/global/cells/zy/Cell --hex 0a027a791801
    "$bin" put-raw --etcd "$url" --key /multigres/global/cells/zz/Cell --hex 0a02ff7a
    "$bin" put-raw --etcd "$url" --key /multigres/global/cells/zw/Cell --hex 0a057a77
    cat >"$tmp/planted.json" <<'EOF'
{"records": {
  "/multigres/global/cells/zx/Cell": {"name": "zx"},
  "/multigres/global/cells/zy/Cell": {"name": "zy"},
  "/multigres/global/cells/zz/Cell": {},
  "/multigres/global/cells/zw/Cell": {}
}}
EOF
    expect_fail "records that do not decode cleanly" \
        "cells/zx/Cell: Cell with fields the schema does not have (or of the wrong wire type): Cell: field 4 (wire type 2)" \
        "cells/zy/Cell: Cell with fields the schema does not have (or of the wrong wire type): Cell: field 3 (wire type 0), declared as string root: wrong wire type" \
        "cells/zz/Cell: does not decode as Cell" \
        "cells/zw/Cell: does not decode as Cell" \
        -- --expect "$expect/topology.json" --expect "$tmp/planted.json"
    echo "crosscheck_detects_mismatch: $detected of $cases wrong cases detected"
    [ "$detected" -eq "$cases" ] || exit 1
    exit 0
fi

# ---- 3. registered records against the facts ------------------------------------------------
total=0
verify() {
    "$bin" verify --etcd "$url" "$@" | tee "$tmp/verify.out" || fail "crosscheck verify $*"
    local n
    n=$(sed -n 's/^verify: \([0-9]*\) records verified$/\1/p' "$tmp/verify.out")
    [ -n "$n" ] || fail "verify printed no count"
    total=$((total + n))
}

echo "# minimal.yaml"
register "$samples/minimal.yaml"
verify --expect "$expect/minimal.json"

echo "# topology.yaml (on a wiped etcd)"
wipe
register "$samples/topology.yaml"
verify --expect "$expect/topology.json"

# ---- 4. poolers written by Go's protobuf runtime, read back through mgo ----------------------
dump >"$tmp/dump0.json" || fail "mgo topo dump exited $?"
cell_root=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
roots = {c["cell"]: c["root"] for c in d["cells"]}
print(roots["z1"] if roots["z1"] == roots["z2"] else sys.exit("z1 and z2 have different roots"))' \
    "$tmp/dump0.json") || fail "no common root for cells z1 and z2 in mgo topo dump"
[ "$cell_root" = /multigres/global ] || fail "cell root $cell_root, expected /multigres/global"
put_pooler() { # CELL NAME ROLE
    "$bin" put-pooler --etcd "$url" --key "$cell_root/poolers/multipooler-$1-$2/Pooler" \
        --cell "$1" --name "$2" --role "$3" --lifecycle ACTIVE --database postgres \
        --table-group default --shard 0-inf \
        --hostname "topology-postgres-default-0-inf-main-$1-0.default.svc" \
        --updated 2026-08-21T12:00:00Z || fail "put-pooler $*"
}
put_pooler z1 pool-0 PRIMARY
put_pooler z2 pool-1 REPLICA
verify --expect "$expect/topology.json" --expect "$expect/topology-poolers.json"

dump >"$tmp/dump1.json" || fail "mgo topo dump exited $?"
python3 - "$tmp/dump1.json" "$cell_root" <<'PY' || fail "mgo topo dump does not report the poolers as written"
import json, sys
dump, root = json.load(open(sys.argv[1])), sys.argv[2]
records = {}
for r in dump["global"]["records"] + [r for c in dump["cells"] for r in c["records"]]:
    records[r["key"]] = r
want = {
    "z1": ("pool-0", "ROUTING_ROLE_PRIMARY", "PRIMARY"),
    "z2": ("pool-1", "ROUTING_ROLE_REPLICA", "REPLICA"),
}
bad = 0
for cell, (name, role, ptype) in want.items():
    key = "%s/poolers/multipooler-%s-%s/Pooler" % (root, cell, name)
    r = records.get(key)
    if r is None:
        print("not in mgo topo dump: " + key)
        bad += 1
        continue
    v = r["value"]
    got = (r.get("kind"), v["id"]["component"], v["id"]["cell"], v["id"]["name"],
           v["routing_state"]["role"], v["type"], v["lifecycle_status"]["status"],
           v["shard_key"]["database"], v["port_map"]["postgres"])
    exp = ("Pooler", "MULTIPOOLER", cell, name, role, ptype, "LIFECYCLE_ACTIVE", "postgres", 5432)
    if got != exp:
        print("%s: mgo topo dump reports %s, expected %s" % (key, got, exp))
        bad += 1
    else:
        print("ok - mgo topo dump: %s routing_state.role %s" % (key, role))
sys.exit(1 if bad else 0)
PY

# mgo's own pooler listing (what reconcile and drain use) reads the Go-written records' roles.
for spec in "z1 pool-0 PRIMARY" "z2 pool-1 REPLICA"; do
    set -- $spec
    "$MGO_CLI" topo poolers --etcd "$url" --cell "$1" --cell-root "$cell_root" >"$tmp/poolers-$1.json" ||
        fail "mgo topo poolers --cell $1 exited $?"
    python3 - "$tmp/poolers-$1.json" "$2" "$3" <<'PY' || fail "mgo topo poolers does not read $2 as $3"
import json, sys
d, name, role = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
got = [(p["id"]["name"], p["role"]) for p in d["poolers"]]
if got != [(name, role)]:
    sys.exit("mgo topo poolers: %s, expected %s" % (got, [(name, role)]))
print("ok - mgo topo poolers reads %s as %s" % (name, role))
PY
done

# Registering the same cluster again changes nothing: not the records, not their revisions, and
# not the poolers it does not own.
register "$samples/topology.yaml"
verify --expect "$expect/topology.json" --expect "$expect/topology-poolers.json"
dump >"$tmp/dump2.json" || fail "mgo topo dump exited $?"
python3 - "$tmp/dump1.json" "$tmp/dump2.json" <<'PY' || fail "registering an unchanged cluster rewrote records"
import json, sys
def revs(name):
    d = json.load(open(name))
    return {r["key"]: r["mod_revision"] for r in d["global"]["records"] + [r for c in d["cells"] for r in c["records"]]}
a, b = revs(sys.argv[1]), revs(sys.argv[2])
changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
for k in changed:
    print("%s: mod_revision %s -> %s" % (k, a.get(k), b.get(k)))
if changed:
    sys.exit(1)
print("ok - registering again left all %d records untouched" % len(a))
PY

echo "crosscheck: $total records verified"
