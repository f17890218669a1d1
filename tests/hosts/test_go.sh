#!/usr/bin/env bash
# Builds the Go example host (examples/hosts/go) into OUT-DIR and runs it through check_host.sh.
#   usage: test_go.sh GO MODULE-DIR OUT-DIR
# The module has no dependencies, so the build needs no network: GOPROXY=off and
# GOTOOLCHAIN=local make sure nothing is downloaded. Go's build cache stays where `go env`
# puts it, unless that is not writable (no HOME, read-only HOME): then it goes under OUT-DIR.
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: test_go.sh GO MODULE-DIR OUT-DIR" >&2; exit 2; }
go=$1 module=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)

export GOPROXY=off GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=1
cache=$("$go" env GOCACHE 2>/dev/null || true) # "off" when there is no HOME to put it in
if [ -z "$cache" ] || [ "$cache" = off ] || ! mkdir -p "$cache" 2>/dev/null ||
    [ ! -w "$cache" ]; then
    export GOCACHE=$out/gocache
    echo "note: using GOCACHE=$GOCACHE"
fi

mkdir -p "$out"
# Under MGO_SANITIZE ctest preloads the ASan runtime for the host; the compiler does not need it.
(cd "$module" && env -u LD_PRELOAD "$go" build -o "$out/go-host" .)
echo "ok - go build ($("$go" version))"

exec "$here/check_host.sh" "$out/go-host"
