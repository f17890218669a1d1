#!/usr/bin/env bash
# A real kube-apiserver for tests, on loopback, in a temporary directory.
#
#   kube_harness.sh up [--owner PID]   start etcd and kube-apiserver; print export lines:
#                                      eval "$(tests/kube/kube_harness.sh up --owner $$)"
#   kube_harness.sh down DIR           stop both (TERM, wait, KILL if needed) and remove DIR
#   kube_harness.sh stop-apiserver DIR   stop the apiserver only (TERM, wait), keeping its
#                                        command line in DIR/apiserver.cmdline
#   kube_harness.sh start-apiserver DIR  start it again with the same arguments (same port)
#                                        and wait until /readyz answers 200
#   kube_harness.sh restart-apiserver DIR  both of the above
#   kube_harness.sh compact DIR        compact etcd at its current revision (physical), through
#                                      etcd's v3 HTTP gateway; prints the revision
#
# `up` makes a temporary directory (under TMPDIR) holding: a CA and a serving certificate for
# 127.0.0.1/localhost (openssl), a service-account signing key, a static token file with one
# admin token (user mgo-admin in group system:masters), an audit policy logging every write verb
# (create, update, patch, delete, deletecollection) and the cluster-wide lists and watches of
# the kinds mgo-kube caches at Metadata level to audit.log, the etcd
# data, the servers' logs (etcd.log, apiserver.log) and a kubeconfig (server, CA data, token).
# It starts Debian's etcd (ETCD, default /usr/bin/etcd) and kube-apiserver (KUBE_APISERVER,
# default: the cached build of tests/kube/build-apiserver.sh, built first when missing) on
# ports the kernel hands out, starting over on new ports when one was taken meanwhile, and
# waits until /readyz answers 200. It prints:
#   export KUBE_HARNESS_DIR=...  KUBECONFIG=...  KUBE_SERVER=https://127.0.0.1:PORT
#   export KUBE_TOKEN=...        KUBE_ETCD=http://127.0.0.1:PORT  KUBE_CA=.../ca.crt
#   export KUBE_AUDIT_LOG=.../audit.log
# On failure it prints the logs' tails, stops what it started and exits non-zero.
#
# --owner PID: a watchdog stops the servers (and removes the directory) once PID is gone, so a
# test that dies without running `down` leaves nothing behind.
#
# KUBE_APISERVER_EXTRA_ARGS (whitespace-separated) is appended to kube-apiserver's command line,
# e.g. --watch-cache-sizes=podtemplates#0 to serve one resource's watches from etcd itself.
#
# The server has no controller-manager, scheduler or kubelet: no garbage collection, no namespace
# finalization, no service-account tokens. The ServiceAccount admission plugin, which would
# refuse pods in namespaces whose "default" ServiceAccount the missing controller never made,
# is disabled; the other default admission plugins are on.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
marker=.mgo-kube-harness

log() { echo "kube_harness: $*" >&2; }
die() {
    log "$*"
    exit 1
}

free_port() { # a port the kernel hands out on 127.0.0.1 (free now; may be taken before use)
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { # alive PID DIR: PID runs and is one of ours (its command line names DIR)
    [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null |
        grep -qF -- "$2"
}

gone() { # gone PID: the process no longer runs (or is a zombie). Not `alive`: between the
    # fork and the exec of a server just started, its command line is still the shell's
    [ -z "$1" ] && return 0
    kill -0 "$1" 2>/dev/null || return 0
    grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

stop_pid() { # stop_pid NAME PID DIR: TERM, wait up to 20 s for the exit, then KILL and wait
    local name=$1 pid=$2 dir=$3 i
    alive "$pid" "$dir" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do
        alive "$pid" "$dir" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) still running 20 s after TERM: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" "$dir" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) did not exit after KILL"
    return 1
}

stop_all() { # stop_all DIR: every server of DIR, the apiserver first; non-zero if one is left
    local dir=$1 rc=0 name pid
    for name in watchdog apiserver etcd; do
        pid=$(cat "$dir/$name.pid" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        [ "$name" = watchdog ] && [ "$pid" = "${BASHPID:-$$}" ] && continue # the watchdog itself
        stop_pid "$name" "$pid" "$dir" || rc=1
    done
    return $rc
}

tail_logs() {
    local f
    for f in "$1"/etcd.log "$1"/apiserver.log; do
        [ -s "$f" ] && { echo "--- $f (tail)"; tail -n 40 "$f"; } >&2
    done
    return 0
}

cmd_down() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: kube_harness.sh down DIR"
    [ -d "$dir" ] || die "down: no directory $dir"
    [ -e "$dir/$marker" ] || die "down: $dir is not a kube_harness directory"
    local rc=0
    stop_all "$dir" || rc=1
    if [ $rc -eq 0 ]; then
        rm -rf "$dir"
    else
        log "down: a server of $dir is still running; the directory is kept"
    fi
    return $rc
}

make_certs() { # make_certs DIR
    local d=$1
    (
        cd "$d" && umask 077 &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mgo-test-ca" \
                -keyout ca.key -out ca.crt &&
            openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
                -keyout apiserver.key -out apiserver.csr &&
            printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" \
                "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1" \
                >apiserver.ext &&
            openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile apiserver.ext -out apiserver.crt &&
            openssl genrsa -out sa.key 2048 &&
            openssl rsa -in sa.key -pubout -out sa.pub
    ) >"$d/openssl.log" 2>&1 || {
        cat "$d/openssl.log" >&2
        return 1
    }
}

start_etcd() { # start_etcd DIR: on fresh ports; sets etcd_url; 1 when a port was taken
    local d=$1 cport pport
    cport=$(free_port) || die "no free port"
    pport=$(free_port) || die "no free port"
    [ "$cport" != "$pport" ] || return 1
    rm -rf "$d/etcd-data"
    etcd_url=http://127.0.0.1:$cport
    setsid "$etcd" --name mgo-test --data-dir "$d/etcd-data" \
        --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
        --listen-peer-urls "http://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "mgo-test=http://127.0.0.1:$pport" --initial-cluster-state new \
        --logger zap --log-outputs stderr </dev/null >"$d/etcd.log" 2>&1 &
    echo $! >"$d/etcd.pid"
    local i
    for ((i = 0; i < 300; i++)); do # 30 s
        if gone "$(cat "$d/etcd.pid")"; then
            grep -q "address already in use" "$d/etcd.log" && return 1
            tail_logs "$d"
            die "etcd exited during start"
        fi
        if curl -fsS -m 2 "$etcd_url/health" 2>/dev/null | grep -q '"health":"true"'; then
            return 0
        fi
        sleep 0.1
    done
    tail_logs "$d"
    die "etcd not healthy at $etcd_url after 30 s"
}

start_apiserver() { # start_apiserver DIR: on a fresh port; sets server; 1 when it was taken
    local d=$1 port extra=()
    read -ra extra <<<"${KUBE_APISERVER_EXTRA_ARGS:-}"
    port=$(free_port) || die "no free port"
    server=https://127.0.0.1:$port
    setsid "$apiserver" \
        --bind-address=127.0.0.1 --secure-port="$port" --advertise-address=127.0.0.1 \
        --endpoint-reconciler-type=none \
        --etcd-servers="$etcd_url" --etcd-prefix=/registry \
        --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
        --client-ca-file="$d/ca.crt" \
        --token-auth-file="$d/tokens.csv" \
        --authorization-mode=RBAC \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$d/sa.pub" --service-account-signing-key-file="$d/sa.key" \
        --service-cluster-ip-range=10.0.0.0/24 \
        --disable-admission-plugins=ServiceAccount \
        --allow-privileged=true \
        --audit-policy-file="$d/audit-policy.yaml" --audit-log-path="$d/audit.log" \
        --audit-log-format=json --audit-log-mode=blocking \
        --cert-dir="$d/cert-dir" \
        "${extra[@]}" \
        </dev/null >"$d/apiserver.log" 2>&1 &
    echo $! >"$d/apiserver.pid"
    local i code
    for ((i = 0; i < 1200; i++)); do # 120 s
        if gone "$(cat "$d/apiserver.pid")"; then
            grep -q "address already in use" "$d/apiserver.log" && return 1
            tail_logs "$d"
            die "kube-apiserver exited during start"
        fi
        code=$(curl -sS -o /dev/null -w '%{http_code}' -m 2 --cacert "$d/ca.crt" \
            -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null || true)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    tail_logs "$d"
    die "kube-apiserver not ready at $server after 120 s"
}

cmd_up() {
    local owner=
    while [ $# -gt 0 ]; do
        case $1 in
        --owner)
            owner=${2:?--owner needs a PID}
            shift 2
            ;;
        *) die "up: unknown argument $1" ;;
        esac
    done
    etcd=${ETCD:-/usr/bin/etcd}
    [ -x "$etcd" ] || die "no etcd at $etcd (Debian package etcd-server)"
    apiserver=${KUBE_APISERVER:-}
    if [ -z "$apiserver" ]; then
        apiserver=$("$here/build-apiserver.sh") || die "no kube-apiserver: build-apiserver.sh failed"
    fi
    [ -x "$apiserver" ] || die "kube-apiserver $apiserver is not executable"

    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/mgo-kube.XXXXXX")
    touch "$d/$marker"
    # From here on, a failure stops whatever was started and removes the directory.
    trap 'rc=$?; if [ $rc -ne 0 ]; then stop_all "'"$d"'" || true; rm -rf "'"$d"'"; fi' EXIT

    make_certs "$d" || die "openssl failed"
    token=$(openssl rand -hex 32)
    (
        umask 077
        printf '%s,mgo-admin,mgo-admin,"system:masters"\n' "$token" >"$d/tokens.csv"
    )
    cat >"$d/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  # Lists and watches across all namespaces (namespace "") of the kinds mgo-kube caches, so a
  # test can see mgo-kube relist; the tests' own reads are namespaced and stay out of the log
  - level: Metadata
    verbs: ["list", "watch"]
    namespaces: [""]
    resources:
      - group: ""
        resources: ["pods", "persistentvolumeclaims", "services", "configmaps"]
      - group: "apps"
        resources: ["deployments", "statefulsets"]
      - group: "policy"
        resources: ["poddisruptionbudgets"]
      - group: "multigres.com"
  - level: None
EOF

    local attempt t0=${EPOCHREALTIME/./} t1
    for attempt in 1 2 3 4 5; do
        start_etcd "$d" && break
        log "an etcd port was taken meanwhile (attempt $attempt): new ports"
        stop_pid etcd "$(cat "$d/etcd.pid")" "$d" || true
        [ "$attempt" -lt 5 ] || die "etcd: no free ports after 5 attempts"
    done
    t1=${EPOCHREALTIME/./}
    for attempt in 1 2 3 4 5; do
        start_apiserver "$d" && break
        log "the apiserver port was taken meanwhile (attempt $attempt): a new port"
        stop_pid apiserver "$(cat "$d/apiserver.pid")" "$d" || true
        [ "$attempt" -lt 5 ] || die "kube-apiserver: no free port after 5 attempts"
    done

    log "etcd ready in $(((t1 - t0) / 1000)) ms, then kube-apiserver ready in" \
        "$(((${EPOCHREALTIME/./} - t1) / 1000)) ms ($server, $d)"

    cat >"$d/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: mgo-test
    cluster:
      server: $server
      certificate-authority-data: $(base64 -w0 <"$d/ca.crt")
users:
  - name: mgo-admin
    user:
      token: $token
contexts:
  - name: mgo-test
    context:
      cluster: mgo-test
      user: mgo-admin
      namespace: default
current-context: mgo-test
EOF
    chmod 600 "$d/kubeconfig"

    if [ -n "$owner" ]; then
        # The watchdog names the directory on its command line, so stop_all recognises it.
        # shellcheck disable=SC2016 # expanded by the watchdog's bash
        setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
            [ -d "$2" ] && exec "$3" down "$2"' kube-harness-watchdog "$owner" "$d" "$here/kube_harness.sh" \
            </dev/null >>"$d/watchdog.log" 2>&1 &
        echo $! >"$d/watchdog.pid"
    fi
    trap - EXIT

    printf 'export KUBE_HARNESS_DIR=%q\n' "$d"
    printf 'export KUBECONFIG=%q\n' "$d/kubeconfig"
    printf 'export KUBE_SERVER=%q\n' "$server"
    printf 'export KUBE_TOKEN=%q\n' "$token"
    printf 'export KUBE_ETCD=%q\n' "$etcd_url"
    printf 'export KUBE_CA=%q\n' "$d/ca.crt"
    printf 'export KUBE_AUDIT_LOG=%q\n' "$d/audit.log"
}

dir_arg() { # dir_arg CMD DIR: DIR is a kube_harness directory
    [ -n "${2:-}" ] || die "usage: kube_harness.sh $1 DIR"
    if [ ! -d "$2" ] || [ ! -e "$2/$marker" ]; then
        die "$1: $2 is not a kube_harness directory"
    fi
}

cmd_stop_apiserver() {
    local d=$1 pid
    dir_arg stop-apiserver "$d"
    pid=$(cat "$d/apiserver.pid" 2>/dev/null || true)
    alive "$pid" "$d" || die "stop-apiserver: the apiserver of $d is not running"
    tr '\0' '\n' <"/proc/$pid/cmdline" >"$d/apiserver.cmdline"
    local t0=${EPOCHREALTIME/./}
    stop_pid apiserver "$pid" "$d" || return 1
    log "stop-apiserver: stopped in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
}

cmd_start_apiserver() {
    local d=$1 args=() server token attempt i code pid t0=${EPOCHREALTIME/./}
    dir_arg start-apiserver "$d"
    [ -s "$d/apiserver.cmdline" ] || die "start-apiserver: no $d/apiserver.cmdline (stop-apiserver first)"
    pid=$(cat "$d/apiserver.pid" 2>/dev/null || true)
    alive "$pid" "$d" && die "start-apiserver: the apiserver of $d is running (pid $pid)"
    mapfile -t args <"$d/apiserver.cmdline"
    server=$(sed -n 's/^ *server: //p' "$d/kubeconfig")
    token=$(cut -d, -f1 "$d/tokens.csv")
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        setsid "${args[@]}" </dev/null >>"$d/apiserver.log" 2>&1 &
        echo $! >"$d/apiserver.pid"
        for ((i = 0; i < 1200; i++)); do # 120 s
            if gone "$(cat "$d/apiserver.pid")"; then
                break
            fi
            code=$(curl -sS -o /dev/null -w '%{http_code}' -m 2 --cacert "$d/ca.crt" \
                -H "Authorization: Bearer $token" "$server/readyz" 2>/dev/null || true)
            if [ "$code" = 200 ]; then
                log "start-apiserver: ready in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
                return 0
            fi
            sleep 0.1
        done
        gone "$(cat "$d/apiserver.pid")" || {
            tail_logs "$d"
            die "start-apiserver: not ready at $server after 120 s"
        }
        tail -n 5 "$d/apiserver.log" | grep -q "address already in use" ||
            { tail_logs "$d"; die "start-apiserver: kube-apiserver exited during start"; }
        log "start-apiserver: port still in use (attempt $attempt); again in 1 s"
        sleep 1
    done
    die "start-apiserver: the port of $server stayed in use"
}

cmd_compact() {
    local d=$1 etcd_url out rev
    dir_arg compact "$d"
    etcd_url=$(tr '\0' '\n' <"/proc/$(cat "$d/etcd.pid")/cmdline" | sed -n 's/^--advertise-client-urls=//p;/^--advertise-client-urls$/{n;p}')
    [ -n "$etcd_url" ] || die "compact: etcd's client URL not found"
    # an empty range still carries the store's header (base64 of "/" as the key)
    out=$(curl -fsS -m 10 -X POST "$etcd_url/v3/kv/range" -d '{"key": "Lw=="}') ||
        die "compact: range failed"
    rev=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["header"]["revision"])') ||
        die "compact: no revision in $out"
    curl -fsS -m 30 -X POST "$etcd_url/v3/kv/compaction" \
        -d "{\"revision\": \"$rev\", \"physical\": true}" >/dev/null ||
        die "compact: compaction at revision $rev failed"
    echo "$rev"
}

case ${1:-} in
stop-apiserver)
    cmd_stop_apiserver "${2:-}"
    ;;
start-apiserver)
    cmd_start_apiserver "${2:-}"
    ;;
restart-apiserver)
    cmd_stop_apiserver "${2:-}"
    cmd_start_apiserver "${2:-}"
    ;;
compact)
    cmd_compact "${2:-}"
    ;;
up)
    shift
    cmd_up "$@"
    ;;
down)
    shift
    cmd_down "$@"
    ;;
*)
    echo "usage: kube_harness.sh up [--owner PID] | down DIR | stop-apiserver DIR |" \
        "start-apiserver DIR | restart-apiserver DIR | compact DIR" >&2
    exit 2
    ;;
esac
