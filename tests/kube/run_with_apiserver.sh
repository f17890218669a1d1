#!/usr/bin/env bash
# Runs a test program against a real kube-apiserver and etcd:
#   run_with_apiserver.sh PROGRAM [ARG...]
# Brings the servers up with kube_harness.sh (KUBE_APISERVER_EXTRA_ARGS passes through), runs
# PROGRAM with the harness's exports (KUBE_SERVER, KUBE_TOKEN, KUBE_CA, ...), and brings the
# servers down whatever happened, checking that no process and no folder is left. Needs the
# kube-apiserver binary like test_apiserver.sh (the ctest fixture kube_apiserver_build): a
# missing binary fails the test, it never skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
harness=$here/kube_harness.sh
[ $# -ge 1 ] || {
    echo "usage: run_with_apiserver.sh PROGRAM [ARG...]" >&2
    exit 2
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

dir=
cleanup() {
    local rc=$?
    if [ -n "$dir" ]; then
        if [ $rc -ne 0 ]; then
            for f in apiserver.log etcd.log; do
                [ -s "$dir/$f" ] && { echo "--- $dir/$f (tail)"; tail -n 30 "$dir/$f"; } >&2
            done
        fi
        "$harness" down "$dir" || rc=1
    fi
    exit $rc
}
trap cleanup EXIT

start=${EPOCHREALTIME/./}
exports=$("$harness" up --owner $$) || fail "kube_harness.sh up failed"
eval "$exports"
dir=$KUBE_HARNESS_DIR
echo "kube-apiserver at $KUBE_SERVER after $(((${EPOCHREALTIME/./} - start) / 1000)) ms (dir $dir)"

"$@" || fail "$1 failed"

pids=$(cat "$dir"/*.pid)
"$harness" down "$dir" || fail "kube_harness.sh down failed"
gone=$dir
dir=
[ ! -e "$gone" ] || fail "down left $gone"
for p in $pids; do
    if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$gone"; then
        fail "process $p still runs after down"
    fi
done
echo "down: nothing left"
