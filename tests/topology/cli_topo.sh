#!/usr/bin/env bash
# `mgo topo register|dump` end to end against a real etcd that this script starts (the `etcd`
# binary, free loopback ports, a temporary directory) and stops on exit. Needs MGO_CLI,
# MGO_LIBRARY, MGO_SHARED_DIR (ctest passes MGO_TEST_ENV). Expected keys and values are literals
# from the reference operator's registration rules.
set -euo pipefail

samples="$MGO_SHARED_DIR/compat/upstream-samples"
mgo=$MGO_CLI
tmp=$(mktemp -d)
etcd_pid=
cleanup() {
    if [ -n "$etcd_pid" ]; then
        kill -CONT "$etcd_pid" 2>/dev/null || true
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
passed=0

check() { # check ok|fail NAME
    if [ "$1" = ok ]; then passed=$((passed + 1)); echo "ok   $2"; else
        failures=$((failures + 1)); echo "FAIL $2"; fi
}

run() { # run EXPECTED_EXIT NAME -- command...; stdout in $tmp/out, stderr in $tmp/err
    local want=$1 name=$2
    shift 3
    set +e
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    set -e
    if [ "$got" -eq "$want" ]; then check ok "$name (exit $got)"; else
        check fail "$name: exit $got, want $want"; sed 's/^/    | /' "$tmp/out" "$tmp/err"; fi
}

expect_line() { # expect_line FILE LINE: LINE is one whole line of FILE
    if grep -qxF -- "$2" "$1"; then check ok "prints: $2"; else
        check fail "missing line: $2"; sed 's/^/    | /' "$1"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# http URL [JSON-BODY]: GET or POST, the body on stdout; fails on errors (no proxy).
http() {
    python3 - "$@" <<'PY'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
data = sys.argv[2].encode() if len(sys.argv) > 2 else None
with opener.open(urllib.request.Request(sys.argv[1], data=data), timeout=5) as r:
    sys.stdout.write(r.read().decode())
PY
}

# ---- a real etcd ------------------------------------------------------------------------------
start_etcd() {
    local attempt
    for attempt in 1 2 3 4 5; do
        client_port=$(free_port)
        peer_port=$(free_port)
        [ "$client_port" != "$peer_port" ] || continue
        rm -rf "$tmp/etcd"
        mkdir -p "$tmp/etcd"
        etcd --name cli-topo --data-dir "$tmp/etcd/data" \
            --listen-client-urls "http://127.0.0.1:$client_port" \
            --advertise-client-urls "http://127.0.0.1:$client_port" \
            --listen-peer-urls "http://127.0.0.1:$peer_port" \
            --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
            --initial-cluster "cli-topo=http://127.0.0.1:$peer_port" \
            >"$tmp/etcd/log" 2>&1 &
        etcd_pid=$!
        local i
        for i in $(seq 1 100); do
            if ! kill -0 "$etcd_pid" 2>/dev/null; then break; fi
            if http "http://127.0.0.1:$client_port/health" 2>/dev/null | grep -q '"health":"true"'; then
                return 0
            fi
            sleep 0.1
        done
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
        etcd_pid=
    done
    echo "cannot start etcd:"
    tail -n 30 "$tmp/etcd/log"
    exit 1
}

start_etcd
url="http://127.0.0.1:$client_port"
echo "etcd at $url"

# Keys under the whole keyspace, one a line, sorted (through etcd's JSON gateway).
etcd_keys() {
    http "$url/v3/kv/range" '{"key":"AA==","range_end":"AA==","keys_only":true}' |
        python3 -c 'import base64,json,sys; d=json.load(sys.stdin); print("\n".join(sorted(base64.b64decode(k["key"]).decode() for k in d.get("kvs",[]))))'
}

cell=/multigres/global/cells/zone-a/Cell
db=/multigres/global/databases/postgres/Database

# ---- register ----------------------------------------------------------------------------------
run 0 "register minimal" -- "$mgo" topo register --etcd "$url" "$samples/minimal.yaml"
expect_line "$tmp/out" "created   $db"
expect_line "$tmp/out" "created   $cell"
[ "$(wc -l <"$tmp/out")" -eq 2 ] && check ok "two records reported" || { check fail "report lines"; cat "$tmp/out"; }
if [ "$(etcd_keys)" = "$(printf '%s\n%s' "$cell" "$db")" ]; then check ok "etcd holds exactly the Cell and the Database"; else
    check fail "keys in etcd"; etcd_keys | sed 's/^/    | /'; fi

run 0 "register again" -- "$mgo" topo register --etcd "$url" "$samples/minimal.yaml"
expect_line "$tmp/out" "unchanged $db"
expect_line "$tmp/out" "unchanged $cell"
if [ "$(grep -cv '^unchanged ' "$tmp/out")" -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 2 ]; then
    check ok "only unchanged lines"; else check fail "second run printed more"; cat "$tmp/out"; fi

# ---- dump -------------------------------------------------------------------------------------
run 0 "dump" -- "$mgo" topo dump --etcd "$url"
if python3 - "$tmp/out" "$cell" "$db" <<'PY'; then check ok "dump has the Cell and the Database, decoded"; else check fail "dump content"; cat "$tmp/out"; fi
import json, sys
d = json.load(open(sys.argv[1]))
recs = {r["key"]: r for r in d["global"]["records"]}
assert d["global"]["root"] == "/multigres/global", d["global"]["root"]
c = recs[sys.argv[2]]
assert c["kind"] == "Cell", c
assert c["value"] == {"name": "zone-a", "server_addresses": ["minimal-global-topo.default.svc:2379"],
                      "root": "/multigres/global"}, c["value"]
b = recs[sys.argv[3]]
assert b["kind"] == "Database", b
v = b["value"]
assert v["name"] == "postgres" and v["cells"] == ["zone-a"], v
assert v["backup_location"] == {"filesystem": {"path": "/backups"}}, v
p = v["bootstrap_durability_policy"]
assert p["policy_name"] == "AT_LEAST_2" and p["required_count"] == 2, p
assert p["quorum_type"] in ("QUORUM_TYPE_AT_LEAST_N", 3), p
assert [c["cell"] for c in d["cells"]] == ["zone-a"], d["cells"]
PY

# ---- failures ---------------------------------------------------------------------------------
closed=$(free_port)
start=$(date +%s%N)
run 4 "unreachable etcd" -- "$mgo" topo register --etcd "http://127.0.0.1:$closed" --deadline-ms 2000 "$samples/minimal.yaml"
took=$((($(date +%s%N) - start) / 1000000))
grep -q "127.0.0.1:$closed" "$tmp/err" && check ok "names the endpoint" ||
    { check fail "message does not name 127.0.0.1:$closed"; sed 's/^/    | /' "$tmp/err"; }
[ "$took" -lt 7000 ] && check ok "gave up in $took ms" || check fail "took $took ms with --deadline-ms 2000"

run 4 "dump, unreachable etcd" -- "$mgo" topo dump --etcd "http://127.0.0.1:$closed" --deadline-ms 2000
grep -q "127.0.0.1:$closed" "$tmp/err" && check ok "dump names the endpoint" ||
    { check fail "dump message"; sed 's/^/    | /' "$tmp/err"; }

cat >"$tmp/bad.yaml" <<'YAML'
apiVersion: multigres.com/v1alpha1
kind: MultigresCluster
metadata:
  name: bad
spec:
  postgresPasswordSecretRef: {name: pw, key: password}
  cells:
    - name: a
      zoneId: z1
      region: r1
YAML
run 1 "invalid manifest" -- "$mgo" topo register --etcd "$url" "$tmp/bad.yaml"
expect_line "$tmp/out" "$tmp/bad.yaml: spec.cells[0]: cannot specify both 'zoneId' and 'region'"
if [ "$(etcd_keys)" = "$(printf '%s\n%s' "$cell" "$db")" ]; then check ok "nothing written for an invalid manifest"; else
    check fail "keys after an invalid manifest"; etcd_keys | sed 's/^/    | /'; fi

run 2 "no subcommand" -- "$mgo" topo
run 2 "unknown subcommand" -- "$mgo" topo frobnicate
run 2 "register without a file" -- "$mgo" topo register --etcd "$url"
run 2 "dump without --etcd" -- "$mgo" topo dump

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
