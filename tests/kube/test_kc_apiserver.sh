#!/usr/bin/env bash
# The kc client (host-shims/kube/client) against a real kube-apiserver and etcd:
#   test_kc_apiserver.sh PATH-OF-kube_client_apiserver
# Brings the servers up with kube_harness.sh (the watch cache off for podtemplates, so that their
# watches are served by etcd and an etcd compaction expires them), makes a client certificate for
# user mgo-cert-user in group system:masters signed by the harness's CA (the apiserver's
# --client-ca-file), runs the C test (test_kc_apiserver.c), and brings the servers down whatever
# happened, checking that nothing is left. Needs the kube-apiserver binary like test_apiserver.sh
# (the ctest fixture kube_apiserver_build): a missing binary fails the test, it never skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
harness=$here/kube_harness.sh
bin=${1:?usage: test_kc_apiserver.sh PATH-OF-kube_client_apiserver}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mgo-kc-test.XXXXXX")
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
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

exports=$(KUBE_APISERVER_EXTRA_ARGS="--watch-cache-sizes=podtemplates#0" "$harness" up --owner $$) ||
    fail "kube_harness.sh up failed"
eval "$exports"
dir=$KUBE_HARNESS_DIR
echo "kube-apiserver at $KUBE_SERVER (dir $dir)"

(
    cd "$work" && umask 077 &&
        openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=mgo-cert-user" \
            -keyout client.key -out client.csr &&
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
            "extendedKeyUsage=clientAuth" >client.ext &&
        openssl x509 -req -in client.csr -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
            -CAserial client.srl -CAcreateserial -days 1 -extfile client.ext -out client.crt
) >"$work/openssl.log" 2>&1 || {
    cat "$work/openssl.log" >&2
    fail "openssl could not make the client certificate"
}
cp "$KUBE_CA" "$work/ca.crt"
KC_WORK=$work
KC_CLIENT_CERT_B64=$(base64 -w0 <"$work/client.crt")
KC_CLIENT_KEY_B64=$(base64 -w0 <"$work/client.key")
KC_CA_B64=$(base64 -w0 <"$work/ca.crt")
export KC_WORK KC_CLIENT_CERT_B64 KC_CLIENT_KEY_B64 KC_CA_B64

"$bin" || fail "the kc client test failed"

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
