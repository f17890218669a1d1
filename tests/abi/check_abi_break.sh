#!/usr/bin/env bash
# Proof that the ABI gate can fail (ctest abi_gate_detects_break).
#
# Copies the library's sources to a temporary tree and runs check_abi.sh on it against the
# committed baseline, three times:
#   1. unmodified                                      -> the gate must pass (status 0);
#   2. `uint32_t inserted_field;` after `void *user;`  -> the gate must fail (abidiff status with
#      in struct mgo_host                                 bit 4), naming mgo_host and the field;
#   3. mgo_scale hidden by the version script          -> the gate must fail (bit 8 set, status
#                                                         12), naming mgo_scale as removed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${MGO_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
baseline=$src/abi/libmgo.so.1.abi
gate=$here/check_abi.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/src
failures=0

echo "== copying the library sources of $src to $copy"
mkdir -p "$copy"
for p in CMakeLists.txt include plugin abi cmake host-shims; do
    cp -R "$src/$p" "$copy/"
done
cp "$copy/include/mgo/mgo.h" "$tmp/mgo.h.orig"
cp "$copy/abi/libmgo.map" "$tmp/libmgo.map.orig"

# run_gate NAME: runs the gate on the copy; sets $status to abidiff's exit status (or -1 when the
# gate failed before abidiff ran) and leaves the output in $tmp/NAME.out.
run_gate() { # sets status (abidiff's, from the report) and gate_exit (the gate script's own)
    local out=$tmp/$1.out
    gate_exit=0
    "$gate" --source "$copy" --build "$tmp/build" --baseline "$baseline" >"$out" 2>&1 ||
        gate_exit=$?
    status=$(sed -n 's/^abi_gate: abidiff exit status \([0-9]*\)$/\1/p' "$out")
    status=${status:--1}
}
gate_passed() { ((gate_exit == 0)); }
gate_failed() { ((gate_exit != 0)); }

expect() { # expect DESCRIPTION COMMAND...: the command must succeed
    local what=$1
    shift
    if "$@"; then
        echo "   ok: $what"
    else
        echo "   FAIL: $what"
        failures=$((failures + 1))
    fi
}

status_is() { ((status == $1)); }
status_has_bit() { ((status > 0 && (status & $1) != 0)); }
mentions() { grep -qF -- "$2" "$tmp/$1.out"; }

# ---- 1. unmodified copy ----------------------------------------------------------------------
echo "-- 1. unmodified copy: the gate must pass"
run_gate unmodified
cat "$tmp/unmodified.out"
expect "gate passes on the unmodified copy (abidiff status $status)" status_is 0
expect "the gate script exits 0" gate_passed

# ---- 2. a field inserted in the middle of struct mgo_host -------------------------------------
echo "-- 2. 'uint32_t inserted_field;' inserted after 'void *user;' in struct mgo_host"
awk '{ print } /^    void \*user;$/ { print "    uint32_t inserted_field;"; n++ }
     END { if (n != 1) exit 1 }' "$tmp/mgo.h.orig" >"$copy/include/mgo/mgo.h"
grep -n -B1 -A1 'inserted_field' "$copy/include/mgo/mgo.h"
run_gate field
cat "$tmp/field.out"
expect "gate fails with the ABI-change bit 4 set (abidiff status $status)" status_has_bit 4
expect "the gate script exits non-zero" gate_failed
expect "report names struct mgo_host" mentions field "struct mgo_host"
expect "report names the inserted field" mentions field "uint32_t inserted_field"
expect "report gives the size change" mentions field "type size changed from"
cp "$tmp/mgo.h.orig" "$copy/include/mgo/mgo.h"

# ---- 3. an exported function removed ----------------------------------------------------------
echo "-- 3. mgo_scale hidden by the copy's version script"
awk '{ print } /^[[:space:]]*local:/ { print "        mgo_scale;"; n++ }
     END { if (n != 1) exit 1 }' "$tmp/libmgo.map.orig" >"$copy/abi/libmgo.map"
cat "$copy/abi/libmgo.map"
run_gate removed
cat "$tmp/removed.out"
expect "gate fails with the incompatible-change bit 8 set (abidiff status $status)" \
    status_has_bit 8
expect "the gate script exits non-zero" gate_failed
expect "report counts one removed function" mentions removed "1 Removed function"
expect "report names mgo_scale" mentions removed "mgo_scale"

cp "$tmp/libmgo.map.orig" "$copy/abi/libmgo.map"

# ---- 4. a field appended at the end of struct mgo_host (compatible) -------------------------
echo "-- 4. 'int64_t appended_field;' appended after 'uint32_t reserved0;' (compatible in ABI 1)"
awk '{ print } /^    uint32_t reserved0;$/ { print "    int64_t appended_field;"; n++ }
     END { if (n != 1) exit 1 }' "$tmp/mgo.h.orig" >"$copy/include/mgo/mgo.h"
run_gate appended
cat "$tmp/appended.out"
expect "gate passes an appended field (abidiff status $status)" status_is 0
expect "the gate script exits 0" gate_passed
cp "$tmp/mgo.h.orig" "$copy/include/mgo/mgo.h"

if ((failures > 0)); then
    echo "abi_gate_detects_break: $failures failure(s)"
    exit 1
fi
echo "abi_gate_detects_break: OK (unmodified and appended pass; inserted field and removed function fail)"
