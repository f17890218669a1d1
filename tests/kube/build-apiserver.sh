#!/usr/bin/env bash
# Build the kube-apiserver of tests/kube/apiserver (the k8s.io/kubernetes version pinned in its
# go.mod) once, cache it, and print the binary's path:
#
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mgo/kube-apiserver/<version>/kube-apiserver
#
# A cached binary is reused while go.mod, go.sum, main.go and the build settings are unchanged
# (their digest is kept beside it in inputs.sha256). Go's module and build caches live under the
# same cache root, in the folders tests/crosscheck uses: GOMODCACHE=.../mgo/gomod,
# GOCACHE=.../mgo/go-build.
#
# The build is gentle with a busy 2-core machine where timing-sensitive tests run beside it:
# nice -n 19, one package at a time (go build -p 1) and GOMAXPROCS=1. MGO_KUBE_BUILD_JOBS=N raises
# both. A cold build needs the Go module downloads (Go's default GOPROXY) and a Go toolchain at
# least as new as go.mod's go line (go on PATH, else /usr/local/go/bin/go); without either it
# fails with a message saying so. Output of the go command goes to stderr; stdout is the path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mod=$here/apiserver
jobs=${MGO_KUBE_BUILD_JOBS:-1}

die() {
    echo "build-apiserver: $*" >&2
    exit 1
}

cache_base=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
[ -n "$cache_base" ] || die "no cache folder: set XDG_CACHE_HOME or HOME"
root=$cache_base/mgo

version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ && $3 != "=>" { print $2; exit }' \
    "$mod/go.mod")
[ -n "$version" ] || die "no k8s.io/kubernetes version in $mod/go.mod"
minor=${version#v1.}
minor=${minor%%.*}
need_go=$(awk '$1 == "go" { print $2; exit }' "$mod/go.mod")

go=$(command -v go || true)
[ -n "$go" ] || go=/usr/local/go/bin/go
[ -x "$go" ] || die "no Go toolchain (go on PATH or /usr/local/go/bin/go); kube-apiserver $version needs go >= $need_go"
have_go=$(GOTOOLCHAIN=local "$go" env GOVERSION) || die "$go does not run"
have_go=${have_go#go}
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -n1)" != "$need_go" ]; then
    die "$go is go$have_go; kube-apiserver $version needs go >= $need_go (install a newer Go at /usr/local/go)"
fi

# Reproducible: no VCS stamping, no paths of this machine, a fixed build date; the version the
# server reports (GET /version) is the pinned one.
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
flags=(-trimpath -buildvcs=false -ldflags "$ldflags")

dir=$root/kube-apiserver/$version
bin=$dir/kube-apiserver
mkdir -p "$dir" || die "cannot make $dir"
digest=$({
    cat "$mod/go.mod" "$mod/go.sum" "$mod/main.go"
    echo "go$have_go CGO_ENABLED=0 ${flags[*]}"
} | sha256sum | cut -d' ' -f1)

fresh() { [ -x "$bin" ] && [ "$(cat "$dir/inputs.sha256" 2>/dev/null)" = "$digest" ]; }

if ! fresh; then
    # One build at a time per version (scripts/test and a developer's ctest may overlap).
    exec 9>"$dir/.lock"
    flock 9
    if ! fresh; then
        echo "build-apiserver: building kube-apiserver $version with go$have_go into $dir" \
            "(cold: several minutes to download modules and compile)" >&2
        start=$(date +%s)
        rm -f "$bin" "$dir/inputs.sha256"
        tmp=$dir/.kube-apiserver.$$
        rc=0
        (
            cd "$mod"
            export GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOWORK=off CGO_ENABLED=0
            export GOMAXPROCS=$jobs GOMODCACHE=$root/gomod GOCACHE=$root/go-build
            # not under the ASan runtime ctest may preload for other tests
            nice -n 19 env -u LD_PRELOAD "$go" build -p "$jobs" "${flags[@]}" -o "$tmp" .
        ) >&2 || rc=$?
        if [ "$rc" -ne 0 ]; then
            rm -f "$tmp"
            die "go build of kube-apiserver $version failed (exit $rc): a cold build needs the" \
                "Go module downloads; see the go command's output above"
        fi
        "$tmp" --version >/dev/null || { rm -f "$tmp"; die "the built kube-apiserver does not run"; }
        mv -f "$tmp" "$bin"
        echo "$digest" >"$dir/inputs.sha256"
        echo "build-apiserver: built in $(($(date +%s) - start)) s" >&2
    fi
    exec 9>&-
fi
echo "$bin"
