#!/usr/bin/env bash
# Regenerate the abidiff baseline abi/libmgo.so.1.abi from a built library.
#
#   abi/update-baseline.sh LIBRARY [INCLUDE_DIR]
#
# LIBRARY must be a libmgo.so.1 built with debug info (-g -Og) from this tree's headers, e.g.
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS='-g -Og' && \
#   cmake --build build --target mgo && abi/update-baseline.sh build/lib/libmgo.so.1
# This script builds nothing. INCLUDE_DIR defaults to include/ beside this script.
#
# The baseline records the exported interface only (--exported-interfaces-only): the types
# reachable from the mgo_* functions, not the library's internal types, so that internal changes
# do not churn the file. --headers-dir names include/mgo; abidw only uses it with
# --drop-private-types (the output is byte-identical without it), abidiff uses the same directory
# (--headers-dir2) to filter out changes to types not defined in a public header, matching the
# recorded declaration files by base name. The intentional-change procedure is in abi/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/.." && pwd)
lib=${1:-}
incdir=$(cd "${2:-$src/include}" && pwd)
hdrdir=$incdir/mgo
out=$here/libmgo.so.1.abi

if [[ -z $lib || ! -f $lib ]]; then
    echo "usage: $0 LIBRARY [INCLUDE_DIR]   (LIBRARY: a libmgo.so.1 built with -g -Og)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "-- $lib must carry DWARF debug info"
readelf -S --wide "$lib" >"$tmp/sections"
if ! grep -q '\.debug_info' "$tmp/sections"; then
    echo "update-baseline: $lib has no .debug_info; build it with -g -Og" >&2
    exit 1
fi
echo "-- its DWARF must name the header directory $hdrdir"
readelf --debug-dump=line "$lib" >"$tmp/lines" 2>/dev/null || true
if ! grep -qF "$hdrdir" "$tmp/lines"; then
    echo "update-baseline: $lib was not compiled against $hdrdir; abidiff's --headers-dir" \
        "filtering would not match its types" >&2
    exit 1
fi

echo "-- abidw --no-corpus-path --exported-interfaces-only --headers-dir $hdrdir $lib"
abidw --no-corpus-path --exported-interfaces-only --headers-dir "$hdrdir" "$lib" >"$tmp/new.abi"

echo "-- the new baseline must describe struct mgo_host and every exported function"
grep -q "class-decl name='mgo_host'" "$tmp/new.abi" || {
    echo "update-baseline: struct mgo_host missing from the abidw output" >&2
    exit 1
}
while read -r sym; do
    grep -q "elf-symbol name='$sym'" "$tmp/new.abi" || {
        echo "update-baseline: $sym missing from the abidw output" >&2
        exit 1
    }
done < <(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }')

echo "-- the new baseline must compare equal to the library it came from"
abidiff --no-added-syms --headers-dir2 "$hdrdir" "$tmp/new.abi" "$lib"

if [[ -f $out ]] && cmp -s "$tmp/new.abi" "$out"; then
    echo "update-baseline: $out is unchanged"
else
    mv "$tmp/new.abi" "$out"
    echo "update-baseline: wrote $out ($(grep -c '<elf-symbol ' "$out") symbols); commit it" \
        "together with the change and its note in docs/abi.md"
fi
