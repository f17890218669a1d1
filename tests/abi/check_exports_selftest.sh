#!/usr/bin/env bash
# Proof that check_exports.sh can fail (ctest abi_exports_detects_leak).
#
# Builds two stand-in libraries from a generated source: one that exports exactly the header's
# MGO_API functions at MGO_1 (must pass), and one with every kind of defect the check looks for
# (must fail, naming each defect).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${MGO_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
check=$here/check_exports.sh
cc=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fns=$(grep -oE 'MGO_API[^(]*\bmgo_[a-z0-9_]+\(' "$src/include/mgo/mgo.h" |
    grep -oE 'mgo_[a-z0-9_]+' | sort -u)
echo "== header functions: $(echo $fns)"

good_map=$tmp/good.map
printf 'MGO_1 {\n    global:\n        mgo_*;\n    local:\n        *;\n};\n' >"$good_map"

# -- a faithful stand-in: must pass --------------------------------------------------------------
: >"$tmp/good.c"
for fn in $fns; do
    printf 'void %s(void);\nvoid %s(void) {}\n' "$fn" "$fn" >>"$tmp/good.c"
done
"$cc" -shared -fPIC -o "$tmp/good.so" "$tmp/good.c" -Wl,-soname,libmgo.so.1 \
    -Wl,--version-script="$good_map"
echo "-- a stand-in exporting exactly the header's functions must pass"
if ! "$check" "$tmp/good.so" "$src/include" >"$tmp/good.out" 2>&1; then
    cat "$tmp/good.out"
    echo "selftest: FAIL: the faithful stand-in was rejected"
    exit 1
fi
echo "   passed"

# -- a defective stand-in: must fail, naming every defect -----------------------------------------
mkdir -p "$tmp/include/mgo"
# Declare one more function without MGO_API, before the closing extern "C" guard (the last
# "#ifdef __cplusplus" of the header).
tac "$src/include/mgo/mgo.h" |
    awk '!done && /^#ifdef __cplusplus$/ { print; print "int32_t mgo_declared_without_api(void);";
                                             done = 1; next } { print }' |
    tac >"$tmp/include/mgo/mgo.h"
: >"$tmp/bad.c"
for fn in $fns; do
    [[ $fn == mgo_scale ]] && continue # declared but not exported
    printf 'void %s(void);\nvoid %s(void) {}\n' "$fn" "$fn" >>"$tmp/bad.c"
done
cat >>"$tmp/bad.c" <<'EOF'
void mgo_declared_without_api(void);
void mgo_declared_without_api(void) {}
void mgo_not_in_header(void);
void yaml_parser_parse(void);
void mgo_not_in_header(void) { yaml_parser_parse(); }
void json_loads(void);
void json_loads(void) {}
EOF
# json_loads leaks at MGO_1; mgo_not_in_header sits in a second version node.
printf 'MGO_1 {\n    global:\n        mgo_*;\n        json_loads;\n    local:\n        *;\n};\n' \
    >"$tmp/bad.map"
printf 'MGO_2 {\n    global:\n        mgo_not_in_header;\n} MGO_1;\n' >>"$tmp/bad.map"
"$cc" -shared -fPIC -o "$tmp/bad.so" "$tmp/bad.c" -Wl,-soname,libmgo.so.2 \
    -Wl,--version-script="$tmp/bad.map" -Wl,--no-as-needed -ljansson
echo "-- a defective stand-in must fail"
if "$check" "$tmp/bad.so" "$tmp/include" >"$tmp/bad.out" 2>&1; then
    cat "$tmp/bad.out"
    echo "selftest: FAIL: the defective stand-in passed"
    exit 1
fi
failed=0
for want in "mgo_scale is declared MGO_API in the header but not exported" \
    "mgo_not_in_header is exported but not declared MGO_API" \
    "mgo_declared_without_api is declared in the header without MGO_API" \
    "symbol 'json_loads@@MGO_1' (type T) is not mgo_*@@MGO_1" \
    "symbol 'mgo_not_in_header@@MGO_2' is not versioned @@MGO_1" \
    "SONAME is 'libmgo.so.2'" \
    "NEEDED names a private dependency: libjansson" \
    "undefined symbol yaml_parser_parse would be resolved outside the library"; do
    if grep -qF -- "$want" "$tmp/bad.out"; then
        echo "   detected: $want"
    else
        echo "   NOT detected: $want"
        failed=1
    fi
done
if ((failed)); then
    cat "$tmp/bad.out"
    echo "selftest: FAIL"
    exit 1
fi
echo "selftest: OK"
