#!/usr/bin/env bash
# The README's main cluster, examples/clusters/demo.yaml, through `mgo up` as scripts/demo runs
# it, but in a temporary state directory: it becomes healthy with one primary and two
# synchronous standbys, the observer finds nothing, the password mgo generated (the example
# has no Secret) is in STATE/demo/password, mode 0600, and logs in over TCP while a wrong one
# does not; then down --purge leaves no process and no directory. Needs MGO_CLI, MGO_LIBRARY.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
mgo=$MGO_CLI
state=$(mktemp -d /tmp/mgo-demo.XXXXXX)
chmod 755 "$state" # PostgreSQL's user enters it when the test runs as root
cleanup() {
    "$mgo" down --purge --state-dir "$state" >/dev/null 2>&1 || true
    rm -rf "$state"
}
trap cleanup EXIT
fail() {
    echo "FAIL $*"
    exit 1
}

"$mgo" up --state-dir "$state" "$src/examples/clusters/demo.yaml" >"$state.out" 2>"$state.err" ||
    { cat "$state.err"; fail "mgo up of the example"; }
rm -f "$state.out" "$state.err"
"$mgo" status --json --state-dir "$state" demo >"$state.json"
# expected from the example: pool main, replicasPerCell 3, one cell
python3 - "$state.json" <<'PY' || fail "status: not one primary and two synchronous standbys"
import json, sys
d = json.load(open(sys.argv[1]))
inst = d["instances"]
roles = sorted(i["role"] for i in inst)
assert d["phase"] == "Healthy", d["phase"]
assert len(inst) == 3, len(inst)
assert roles == ["primary", "standby", "standby"], roles
assert all(i["synchronous"] for i in inst if i["role"] == "standby"), inst
assert all(i["state"] == "running" and i["pid"] for i in inst), inst
assert all(i["pool"] == "main" and i["cell"] == "local" for i in inst), inst
PY
echo "ok   status: one primary, two synchronous standbys"
"$mgo" observe --state-dir "$state" demo >/dev/null || fail "observe found a violation"
echo "ok   observe: no violation"

pw=$state/demo/password
[ "$(stat -c %a "$pw")" = 600 ] || fail "the generated password file is not mode 0600"
port=$(python3 -c 'import json,sys; print([i["port"] for i in json.load(open(sys.argv[1]))["instances"] if i["role"] == "primary"][0])' "$state.json")
rm -f "$state.json"
PGPASSWORD=$(head -1 "$pw") psql -w "host=127.0.0.1 port=$port user=postgres dbname=postgres connect_timeout=5" \
    -Atc 'select 1' >/dev/null || fail "the generated password does not log in"
if PGPASSWORD=wrong-password psql -w "host=127.0.0.1 port=$port user=postgres dbname=postgres connect_timeout=5" \
    -Atc 'select 1' >/dev/null 2>&1; then fail "a wrong password logs in"; fi
echo "ok   the generated password logs in, a wrong one does not"

"$mgo" down --purge --state-dir "$state" demo >/dev/null 2>&1 || fail "down --purge"
[ ! -e "$state/demo" ] || fail "down --purge left $state/demo"
if pgrep -f -- "$state/" >/dev/null; then fail "a process of the state directory still runs"; fi
echo "ok   down --purge: no process, no directory"
