#!/usr/bin/env bash
# The ABI gate (ctest abi_gate): the library built from a source tree must match the committed
# abidiff baseline.
#
#   check_abi.sh [--source DIR] [--build DIR] [--baseline FILE] [--lib FILE]
#
#   --source    the tree to build (default $MGO_SOURCE_DIR, else the checkout holding this script)
#   --build     where to build it (default $MGO_BINARY_DIR/abi-gate, kept between runs so that
#               rebuilds are incremental; a temporary directory when MGO_BINARY_DIR is unset)
#   --baseline  the baseline (default SOURCE/abi/libmgo.so.1.abi)
#   --lib       diff this library instead of building one (it must have debug info and have been
#               compiled against SOURCE/include)
#
# The build under test may have been made without -g, so by default this script configures its
# own tree (Debug, -g -Og, tests off) and builds only the `mgo` target. It then runs
#   abidiff --no-added-syms --headers-dir2 SOURCE/include/mgo BASELINE LIB
# and fails on ANY non-zero exit status: 4 (ABI change, e.g. a struct layout change), 12
# (incompatible change, e.g. a removed function) or 1/2 (abidiff error). The last line printed
# is "abi_gate: abidiff exit status N".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${MGO_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
build=
baseline=
lib=

while (($# > 0)); do
    case $1 in
    --source) src=$2 ;;
    --build) build=$2 ;;
    --baseline) baseline=$2 ;;
    --lib) lib=$2 ;;
    *)
        echo "usage: $0 [--source DIR] [--build DIR] [--baseline FILE] [--lib FILE]" >&2
        exit 2
        ;;
    esac
    shift 2
done

src=$(cd "$src" && pwd)
baseline=${baseline:-$src/abi/libmgo.so.1.abi}
hdrdir=$src/include/mgo

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f $baseline ]]; then
    echo "abi_gate: no baseline $baseline (generate it with abi/update-baseline.sh)" >&2
    exit 2
fi

if [[ -z $lib ]]; then
    if [[ -z $build ]]; then
        if [[ -n ${MGO_BINARY_DIR:-} ]]; then
            build=$MGO_BINARY_DIR/abi-gate
        else
            build=$tmp/build
        fi
    fi
    cc=${MGO_ABI_CC:-$(command -v gcc || echo cc)}
    echo "-- building libmgo from $src with -g -Og (compiler $cc) in $build"
    if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS='-g -Og' \
        -DCMAKE_C_COMPILER="$cc" -DMGO_TESTS=OFF -DMGO_SANITIZE=OFF -DMGO_FUZZ=OFF \
        >"$tmp/configure.log" 2>&1; then
        cat "$tmp/configure.log"
        echo "abi_gate: configuring $src failed"
        exit 1
    fi
    if ! cmake --build "$build" --target mgo --parallel "$(nproc 2>/dev/null || echo 2)" \
        >"$tmp/build.log" 2>&1; then
        cat "$tmp/build.log"
        echo "abi_gate: building $src failed"
        exit 1
    fi
    lib=$build/lib/libmgo.so.1
fi

echo "-- $lib must carry DWARF debug info compiled against $hdrdir"
readelf -S --wide "$lib" >"$tmp/sections"
if ! grep -q '\.debug_info' "$tmp/sections"; then
    echo "abi_gate: $lib has no .debug_info (build it with -g -Og, or omit --lib)"
    exit 1
fi
readelf --debug-dump=line "$lib" >"$tmp/lines" 2>/dev/null || true
if ! grep -qF "$hdrdir" "$tmp/lines"; then
    echo "abi_gate: $lib was not compiled against $hdrdir: --headers-dir2 could filter real changes"
    exit 1
fi

# The suppressions allow exactly what ABI 1 allows (fields appended to mgo_host); the baseline
# is the released ABI and is not regenerated for compatible changes.
cmd=(abidiff --no-added-syms --suppressions "$src/abi/libmgo.suppr" --headers-dir2 "$hdrdir"
    "$baseline" "$lib")
echo "-- ${cmd[*]}"
set +e
"${cmd[@]}" >"$tmp/report" 2>&1
status=$?
set -e
cat "$tmp/report"
if ((status == 0)); then
    echo "abi_gate: OK, no ABI change against $(basename "$baseline")"
else
    echo "abi_gate: FAIL: the ABI differs from the baseline (bit 4: change, bit 8: incompatible," \
        "1/2: error). If the change is intentional, regenerate the baseline with" \
        "abi/update-baseline.sh and explain it in docs/abi.md."
fi
echo "abi_gate: abidiff exit status $status"
((status == 0))
