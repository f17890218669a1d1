#!/usr/bin/env bash
# The kube-apiserver test harness against itself, with curl only: brings a real kube-apiserver
# and etcd up (kube_harness.sh), checks the API behaviour mgo's controller will rely on, brings
# them down and checks that no process is left. Expected values are the pinned version in
# apiserver/go.mod, literals written here, and what the real server answers to earlier requests.
#
# Needs the kube-apiserver binary: KUBE_APISERVER, or the cached build of build-apiserver.sh
# (which builds it when missing; ctest runs that first as the fixture kube_apiserver_build). A
# missing binary or a failed build fails this test: it never skips.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
harness=$here/kube_harness.sh
ua="mgo-test-apiserver/1 ($$)" # the user agent whose writes the audit log must show
ns=mgo-kube-test
crd_group=test.mgo.dev
widgets=/apis/$crd_group/v1/namespaces/$ns/widgets

checks=0
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() {
    checks=$((checks + 1))
    echo "ok $checks - $*"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/mgo-kube-test.XXXXXX")
dir=
watch_pid=
cleanup() {
    local rc=$?
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
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

# ---- up ----------------------------------------------------------------------------------------
start=${EPOCHREALTIME/./}
exports=$("$harness" up --owner $$) || fail "kube_harness.sh up failed"
eval "$exports"
dir=$KUBE_HARNESS_DIR
ms=$(((${EPOCHREALTIME/./} - start) / 1000))
echo "kube-apiserver ready at $KUBE_SERVER $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s after up (dir $dir)"
for v in KUBECONFIG KUBE_SERVER KUBE_TOKEN KUBE_ETCD KUBE_CA KUBE_AUDIT_LOG; do
    [ -n "${!v:-}" ] || fail "up did not export $v"
done
[ -f "$KUBECONFIG" ] || fail "no kubeconfig at $KUBECONFIG"
grep -q "server: $KUBE_SERVER\$" "$KUBECONFIG" || fail "kubeconfig does not name $KUBE_SERVER"
grep -q "token: $KUBE_TOKEN\$" "$KUBECONFIG" || fail "kubeconfig does not hold the token"
ca_data=$(sed -n 's/^ *certificate-authority-data: //p' "$KUBECONFIG")
[ "$(echo "$ca_data" | base64 -d)" = "$(cat "$KUBE_CA")" ] || fail "kubeconfig CA data is not ca.crt"
ok "up: exports and kubeconfig (server, CA data, token)"

# api METHOD PATH [CONTENT-TYPE BODY]: the answer's body in $work/body, its HTTP code in $code
api() {
    local method=$1 path=$2 args=()
    [ $# -ge 4 ] && args=(-H "Content-Type: $3" --data-binary "$4")
    code=$(curl -sS -m 30 --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_TOKEN" \
        -H "Accept: application/json" -A "$ua" -X "$method" "${args[@]}" \
        -o "$work/body" -w '%{http_code}' "$KUBE_SERVER$path") || fail "curl $method $path failed"
}
expect() { # expect CODE WHAT: the last answer had HTTP code CODE
    [ "$code" = "$1" ] || fail "$2: HTTP $code, expected $1: $(head -c 600 "$work/body")"
}
field() { jq -r "$1" "$work/body"; } # field JQ-EXPR: from the last answer's body

writes=() # "verb resource[/subresource] name code" of every write sent, for the audit check

# ---- version -----------------------------------------------------------------------------------
pinned=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ && $3 != "=>" { print $2; exit }' \
    "$here/apiserver/go.mod")
api GET /version
expect 200 "GET /version"
[ "$(field .gitVersion)" = "$pinned" ] || fail "/version gitVersion $(field .gitVersion), expected $pinned"
[ "$(field .major)" = 1 ] || fail "/version major $(field .major)"
ok "GET /version: $pinned"

# ---- authentication and authorization are real -------------------------------------------------
c=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$KUBE_CA" -H "Authorization: Bearer wrong" \
    "$KUBE_SERVER/api/v1/namespaces")
[ "$c" = 401 ] || fail "a wrong token got HTTP $c, expected 401"
c=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$KUBE_CA" "$KUBE_SERVER/api/v1/namespaces")
[ "$c" = 403 ] || fail "an anonymous list of namespaces got HTTP $c, expected 403 (RBAC)"
api GET /apis/authentication.k8s.io/v1
expect 200 "discovery"
ok "wrong token 401, anonymous 403, the admin token is accepted"

# ---- namespace ---------------------------------------------------------------------------------
api POST /api/v1/namespaces application/json "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
expect 201 "create namespace"
writes+=("create namespaces $ns 201")
api GET "/api/v1/namespaces/$ns"
expect 200 "get namespace"
[ "$(field .status.phase)" = Active ] || fail "namespace phase $(field .status.phase)"
ok "namespace $ns created, Active"

# ---- a test-only CRD with a status subresource -------------------------------------------------
crd=$(
    cat <<EOF
{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
 "metadata": {"name": "widgets.$crd_group"},
 "spec": {"group": "$crd_group", "scope": "Namespaced",
  "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
  "versions": [{"name": "v1", "served": true, "storage": true,
   "subresources": {"status": {}},
   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]}}
EOF
)
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions application/json "$crd"
expect 201 "create CRD"
writes+=("create customresourcedefinitions widgets.$crd_group 201")
deadline=$((SECONDS + 60))
while :; do
    api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.$crd_group"
    expect 200 "get CRD"
    [ "$(field '.status.conditions[]? | select(.type == "Established") | .status')" = True ] && break
    [ $SECONDS -lt $deadline ] || fail "CRD not Established after 60 s: $(field .status)"
    sleep 0.2
done
while :; do # Established; the resource is served once its handler is installed
    api GET "$widgets"
    [ "$code" = 200 ] && break
    [ $SECONDS -lt $deadline ] || fail "widgets not served 60 s after the CRD was created: HTTP $code"
    sleep 0.2
done
[ "$(field .kind)" = WidgetList ] || fail "list kind $(field .kind)"
[ "$(field '.items | length')" = 0 ] || fail "a new kind already has objects"
ok "CRD widgets.$crd_group Established and served"

# ---- a custom object; status only through /status ----------------------------------------------
api POST "$widgets" application/json \
    '{"apiVersion":"test.mgo.dev/v1","kind":"Widget","metadata":{"name":"w1"},"spec":{"size":3},"status":{"ready":true}}'
expect 201 "create widget w1"
writes+=("create widgets w1 201")
[ "$(field .spec.size)" = 3 ] || fail "w1 spec.size $(field .spec.size)"
[ "$(field .status)" = null ] || fail "create kept .status despite the status subresource: $(field .status)"
[ "$(field .metadata.generation)" = 1 ] || fail "w1 generation $(field .metadata.generation)"
uid=$(field .metadata.uid)
ok "widget w1 created (status dropped on create, generation 1)"

api PATCH "$widgets/w1/status" application/merge-patch+json '{"status":{"ready":true}}'
expect 200 "patch w1/status"
writes+=("patch widgets/status w1 200")
[ "$(field .status.ready)" = true ] || fail "status.ready after the /status patch: $(field .status.ready)"
[ "$(field .metadata.generation)" = 1 ] || fail "a status change bumped generation to $(field .metadata.generation)"
api PATCH "$widgets/w1" application/merge-patch+json '{"spec":{"size":4},"status":{"ready":false}}'
expect 200 "patch w1"
writes+=("patch widgets w1 200")
[ "$(field .spec.size)" = 4 ] || fail "spec.size after the patch: $(field .spec.size)"
[ "$(field .status.ready)" = true ] || fail "a patch of the main resource changed status"
[ "$(field .metadata.generation)" = 2 ] || fail "a spec change left generation at $(field .metadata.generation)"
api GET "$widgets/w1"
expect 200 "get w1"
[ "$(field .status.ready)/$(field .spec.size)/$(field .metadata.uid)" = "true/4/$uid" ] ||
    fail "w1 read back: $(field '{spec, status, uid: .metadata.uid}')"
ok "status written through /status only; generation moves with spec only"

# The object is where the apiserver says it keeps it: the etcd it was given (etcd v3 JSON
# gateway, key /registry/<group>/<resource>/<namespace>/<name>).
key=$(printf '/registry/%s/widgets/%s/w1' "$crd_group" "$ns" | base64 -w0)
n=$(curl -sS -m 10 -X POST -d "{\"key\":\"$key\",\"count_only\":true}" "$KUBE_ETCD/v3/kv/range" |
    jq -r '.count // "0"')
[ "$n" = 1 ] || fail "etcd at $KUBE_ETCD has $n keys for w1, expected 1"
ok "w1 stored in the harness's etcd"

# ---- server-side apply -------------------------------------------------------------------------
apply() { # apply NAME SIZE
    api PATCH "$widgets/$1?fieldManager=mgo&force=true" application/apply-patch+yaml \
        "apiVersion: test.mgo.dev/v1
kind: Widget
metadata:
  name: $1
  namespace: $ns
spec:
  size: $2
"
}
apply w2 5
expect 201 "first apply of w2 (creates it)"
writes+=("patch widgets w2 201")
rv1=$(field .metadata.resourceVersion)
[ "$(field '[.metadata.managedFields[] | select(.manager == "mgo" and .operation == "Apply")] | length')" = 1 ] ||
    fail "w2 has no Apply entry of manager mgo: $(field .metadata.managedFields)"
apply w2 5
expect 200 "second apply of w2"
writes+=("patch widgets w2 200")
rv2=$(field .metadata.resourceVersion)
[ "$rv2" = "$rv1" ] || fail "an identical apply changed resourceVersion $rv1 -> $rv2"
apply w2 6
expect 200 "third apply of w2 (size 6)"
writes+=("patch widgets w2 200")
rv3=$(field .metadata.resourceVersion)
[ "$rv3" != "$rv1" ] || fail "a changing apply kept resourceVersion $rv1"
[ "$(field .spec.size)/$(field .metadata.generation)" = 6/2 ] ||
    fail "after the changing apply: size $(field .spec.size), generation $(field .metadata.generation)"
ok "server-side apply: creates (201), repeats as a no-op (resourceVersion $rv1 kept), changes"

# ---- watch with bookmarks ----------------------------------------------------------------------
api GET "$widgets"
expect 200 "list widgets"
list_rv=$(field .metadata.resourceVersion)
[ "$(field '[.items[].metadata.name] | sort | join(",")')" = w1,w2 ] || fail "list: $(field '[.items[].metadata.name]')"
curl -sS -N -m 30 --cacert "$KUBE_CA" -H "Authorization: Bearer $KUBE_TOKEN" -A "$ua" \
    "$KUBE_SERVER$widgets?watch=true&allowWatchBookmarks=true&resourceVersion=$list_rv&timeoutSeconds=6" \
    >"$work/watch" 2>"$work/watch.err" &
watch_pid=$!
sleep 0.5 # not synchronisation: the event below is seen from list_rv whenever the watch starts
api PATCH "$widgets/w1" application/merge-patch+json '{"spec":{"size":7}}'
expect 200 "patch w1 during the watch"
writes+=("patch widgets w1 200")
w1_rv=$(field .metadata.resourceVersion)
deadline=$((SECONDS + 20))
until jq -e --arg rv "$w1_rv" 'select(.type == "MODIFIED" and .object.metadata.name == "w1"
        and .object.metadata.resourceVersion == $rv and .object.spec.size == 7)' \
    "$work/watch" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "no MODIFIED event for w1 (rv $w1_rv) in 20 s: $(cat "$work/watch" "$work/watch.err")"
    sleep 0.1
done
ok "watch from the list's resourceVersion sees w1 MODIFIED at $w1_rv"
# The watch cache sends a bookmark shortly before the watch's deadline (timeoutSeconds=6).
wait "$watch_pid" || fail "the watch did not end cleanly at its timeout: $(cat "$work/watch.err")"
watch_pid=
[ "$(jq -s '[.[] | select(.type == "ADDED")] | length' "$work/watch")" = 0 ] ||
    fail "a watch from resourceVersion $list_rv replayed ADDED events"
bm=$(jq -r 'select(.type == "BOOKMARK") | .object.metadata.resourceVersion' "$work/watch" | tail -n1)
[ -n "$bm" ] || fail "no BOOKMARK before the watch's deadline: $(cat "$work/watch")"
[ "$(jq -r 'select(.type == "BOOKMARK") | .object.kind' "$work/watch" | tail -n1)" = Widget ] ||
    fail "the bookmark's object is not a Widget"
ok "watch ends at timeoutSeconds with a BOOKMARK (resourceVersion $bm)"

# ---- a Pod with no ServiceAccount (admission: ServiceAccount is off) ---------------------------
api POST "/api/v1/namespaces/$ns/pods" application/json \
    '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1"},"spec":{"containers":[{"name":"c","image":"postgres:17"}]}}'
expect 201 "create pod p1"
writes+=("create pods p1 201")
ok "a pod is admitted without a ServiceAccount object"

api DELETE "$widgets/w2"
expect 200 "delete w2"
writes+=("delete widgets w2 200")
api GET "$widgets/w2"
expect 404 "get w2 after delete"
[ "$(field .reason)" = NotFound ] || fail "404 without reason NotFound: $(field .)"
ok "delete w2; a read answers 404 NotFound"

# ---- the audit log: every write, with this user agent, at Metadata level ------------------------
# The log backend writes an event when its request completes: wait until the count is reached.
audit_writes() {
    jq -c --arg ua "$ua" 'select(.userAgent == $ua) | {verb, user: .user.username, level,
        stage, res: (.objectRef.resource + (if .objectRef.subresource then "/" + .objectRef.subresource else "" end)),
        name: .objectRef.name, code: .responseStatus.code, body: (has("requestObject") or has("responseObject"))}' \
        "$KUBE_AUDIT_LOG"
}
deadline=$((SECONDS + 20))
until [ "$(audit_writes | wc -l)" -ge "${#writes[@]}" ]; do
    [ $SECONDS -lt $deadline ] || break
    sleep 0.2
done
audit_writes >"$work/audit"
[ "$(wc -l <"$work/audit")" = "${#writes[@]}" ] ||
    fail "audit log has $(wc -l <"$work/audit") events of $ua, expected ${#writes[@]} writes: $(cat "$work/audit")"
i=0
while read -r line; do
    read -r verb res name c <<<"${writes[$i]}"
    want=$(jq -nc --arg verb "$verb" --arg res "$res" --arg name "$name" --argjson code "$c" \
        '{verb: $verb, user: "mgo-admin", level: "Metadata", stage: "ResponseComplete",
          res: $res, name: $name, code: $code, body: false}')
    [ "$(jq -cS . <<<"$line")" = "$(jq -cS . <<<"$want")" ] ||
        fail "audit event $((i + 1)): $line, expected $want"
    i=$((i + 1))
done <"$work/audit"
# Reads: the policy logs only lists and watches across all namespaces (the API server's own
# informers make some); never a get, a namespaced read, or any read of this test's.
n=$(jq -c --arg ua "$ua" 'select((.verb == "get" or .verb == "list" or .verb == "watch")
        and (.verb == "get" or .userAgent == $ua or (.objectRef.namespace // "") != ""))' \
    "$KUBE_AUDIT_LOG" | wc -l)
[ "$n" = 0 ] || fail "the audit log records $n reads the policy does not name (gets, namespaced reads, or this test's)"
ok "audit log: ${#writes[@]} writes of user agent '$ua', in order, Metadata level; no get, no namespaced read"

# ---- down: nothing left ------------------------------------------------------------------------
pids=$(cat "$dir"/*.pid)
"$harness" down "$dir" || fail "kube_harness.sh down failed"
gone=$dir
dir=
[ ! -e "$gone" ] || fail "down left $gone"
for p in $pids; do
    if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF -- "$gone"; then
        fail "process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) still runs after down"
    fi
done
left=$(pgrep -af -- "$gone" || true)
[ -z "$left" ] || fail "processes naming $gone still run: $left"
ok "down: etcd, kube-apiserver and the watchdog stopped, $gone removed"

echo "$checks passed, 0 failed"
