#!/usr/bin/env bash
# Runs one example host through the cases every host must pass. The arguments are the host's
# command line without the manifest file, e.g. `check_host.sh python3 mgo_host.py`; the file
# (and, in one case, the library path) is appended. ctest sets MGO_LIBRARY, MGO_SHARED_DIR and
# MGO_SOURCE_DIR.
set -euo pipefail

: "${MGO_LIBRARY:?set MGO_LIBRARY to the built libmgo.so.1}"
: "${MGO_SHARED_DIR:?set MGO_SHARED_DIR to the shared/ folder}"
: "${MGO_SOURCE_DIR:?set MGO_SOURCE_DIR to the source tree}"
[ $# -gt 0 ] || { echo "usage: check_host.sh HOST-COMMAND..." >&2; exit 2; }

host=("$@")
valid=$MGO_SHARED_DIR/compat/upstream-samples/minimal.yaml
invalid=$MGO_SOURCE_DIR/tests/hosts/invalid.yaml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- stdout" >&2
    cat "$tmp/out" >&2
    echo "--- stderr" >&2
    cat "$tmp/err" >&2
    exit 1
}

# expect STATUS NAME COMMAND...: run COMMAND (stdout in $tmp/out, stderr in $tmp/err) and check
# its exit status.
expect() {
    local want=$1 name=$2 got=0
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" = "$want" ] || fail "$name: exit status $got, want $want"
    echo "ok - $name"
}

expect 0 "valid upstream sample" "${host[@]}" "$valid"
grep -qFx "$valid: valid" "$tmp/out" || fail "valid upstream sample: no '$valid: valid' line"

expect 1 "invalid manifest" "${host[@]}" "$invalid"
grep -qF "spec.cells[0]: cannot specify both 'zoneId' and 'region'" "$tmp/out" ||
    fail "invalid manifest: the zoneId/region error is missing"
grep -qFx "$invalid: spec.cells[0]: cannot specify both 'zoneId' and 'region'" "$tmp/out" ||
    fail "invalid manifest: the error line is not 'FILE: path: reason'"
grep -qFx "$invalid: 1 error" "$tmp/out" || fail "invalid manifest: no '$invalid: 1 error' line"

expect 2 "missing file" "${host[@]}" "$tmp/missing.yaml"
[ -s "$tmp/err" ] || fail "missing file: nothing on stderr"

expect 2 "no arguments" "${host[@]}"

expect 0 "library path as argument" env -u MGO_LIBRARY "${host[@]}" "$valid" "$MGO_LIBRARY"

expect 2 "library that cannot be loaded" "${host[@]}" "$valid" "$tmp/libmissing.so.1"

# The library logs at debug level during validation: this goes through the log callback.
expect 0 "log callback" env MGO_LOG_LEVEL=debug "${host[@]}" "$valid"
grep -q "^mgo: debug: " "$tmp/err" || fail "log callback: no 'mgo: debug: ' line on stderr"
