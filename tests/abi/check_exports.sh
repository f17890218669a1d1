#!/usr/bin/env bash
# Export check for libmgo.so.1 (ctest abi_exports).
#
#   check_exports.sh [LIBRARY [INCLUDE_DIR]]
#
# LIBRARY defaults to $MGO_LIBRARY, INCLUDE_DIR to $MGO_SOURCE_DIR/include. Checks that
#   - the dynamic symbol table defines only mgo_* symbols, each versioned @@MGO_1, plus the
#     version-node symbol MGO_1 itself (type A);
#   - the exported functions are exactly the functions declared MGO_API in <mgo/mgo.h>, and every
#     mgo_* function the header declares carries MGO_API;
#   - SONAME is libmgo.so.1 and no NEEDED entry names a private dependency (jansson, yaml, curl,
#     pq, protobuf), and no undefined dynamic symbol would bind to one of them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${MGO_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
lib=${1:-${MGO_LIBRARY:-}}
incdir=${2:-$src/include}
header=$incdir/mgo/mgo.h
version_node=MGO_1
soname=libmgo.so.1
private_deps='jansson|yaml|curl|pq|protobuf'

if [[ -z $lib || ! -f $lib ]]; then
    echo "check_exports: no library (argument or MGO_LIBRARY): '${lib}'" >&2
    exit 2
fi
if [[ ! -f $header ]]; then
    echo "check_exports: no header $header" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "  FAIL: $*"
    failures=$((failures + 1))
}

echo "== library: $lib"
echo "== header:  $header"

# ---- 1. every defined dynamic symbol is mgo_*@@MGO_1 (or the version node itself) ----------
echo "-- defined dynamic symbols must be mgo_*@@$version_node (or $version_node, type A)"
nm -D --defined-only "$lib" >"$tmp/nm.txt"
: >"$tmp/exported"
while read -r addr type name rest; do
    if [[ -z ${name:-} ]]; then # nm prints no address for some absolute symbols
        name=$type
        type=$addr
    fi
    if [[ -n ${rest:-} ]]; then
        fail "unexpected nm line: $addr $type $name $rest"
        continue
    fi
    if [[ $name == "$version_node" && $type == A ]]; then
        continue
    fi
    if [[ ! $name =~ ^(mgo_[a-z0-9_]+)(@.*)?$ ]]; then
        fail "symbol '$name' (type $type) is not mgo_*@@$version_node"
        continue
    fi
    echo "${BASH_REMATCH[1]}" >>"$tmp/exported"
    if [[ ${BASH_REMATCH[2]} != "@@$version_node" ]]; then
        fail "symbol '$name' is not versioned @@$version_node"
    fi
    if [[ $type != T ]]; then
        fail "symbol '$name' is exported as type $type, not as a function (T)"
    fi
done <"$tmp/nm.txt"
sort -o "$tmp/exported" "$tmp/exported"
echo "   exported: $(tr '\n' ' ' <"$tmp/exported")"

# ---- 2. exported set == functions declared MGO_API in the header ----------------------------
echo "-- exported functions must equal the MGO_API declarations of mgo/mgo.h"
# Strip comments (keeping directives), drop directive lines, then split into declarations.
gcc -w -x c -fpreprocessed -dD -E -P "$header" | grep -v '^[[:space:]]*#' | tr '\n' ' ' |
    tr ';' '\n' >"$tmp/decls"
: >"$tmp/declared"
while IFS= read -r decl; do
    fn=$(grep -oE '\bmgo_[a-z0-9_]+[[:space:]]*\(' <<<"$decl" | head -n1 | tr -d ' (') || true
    [[ -z $fn ]] && continue
    if [[ $decl =~ (^|[^A-Za-z0-9_])MGO_API[^A-Za-z0-9_] ]]; then
        echo "$fn" >>"$tmp/declared"
    else
        fail "$fn is declared in the header without MGO_API"
    fi
done <"$tmp/decls"
sort -o "$tmp/declared" "$tmp/declared"
echo "   declared: $(tr '\n' ' ' <"$tmp/declared")"
if [[ ! -s $tmp/declared ]]; then
    fail "no MGO_API function declarations found in $header (parser broken?)"
fi
while read -r fn; do
    fail "$fn is exported but not declared MGO_API in the header"
done < <(comm -13 "$tmp/declared" "$tmp/exported")
while read -r fn; do
    fail "$fn is declared MGO_API in the header but not exported"
done < <(comm -23 "$tmp/declared" "$tmp/exported")

# ---- 3. SONAME and NEEDED --------------------------------------------------------------------
echo "-- SONAME must be $soname; NEEDED must not name $private_deps"
readelf -d "$lib" >"$tmp/dynamic"
got_soname=$(sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p' "$tmp/dynamic")
if [[ $got_soname != "$soname" ]]; then
    fail "SONAME is '$got_soname', expected '$soname'"
fi
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' "$tmp/dynamic" | tr '\n' ' ')
echo "   SONAME: $got_soname; NEEDED: $needed"
for n in $needed; do
    if [[ $n =~ $private_deps ]]; then
        fail "NEEDED names a private dependency: $n"
    fi
done

# ---- 4. no undefined dynamic symbol that a private dependency would provide -------------------
echo "-- undefined dynamic symbols must not be json_*/yaml_*/curl_*/PQ*/protobuf_c_*"
nm -D --undefined-only "$lib" | awk '{print $NF}' >"$tmp/undef"
while read -r sym; do
    fail "undefined symbol $sym would be resolved outside the library"
done < <(grep -E '^(json_|jsonp_|yaml_|curl_|Curl_|PQ|pq|lo_|protobuf_c_)' "$tmp/undef" || true)

if ((failures > 0)); then
    echo "check_exports: $failures failure(s)"
    exit 1
fi
echo "check_exports: OK ($(wc -l <"$tmp/exported") functions, all @@$version_node)"
