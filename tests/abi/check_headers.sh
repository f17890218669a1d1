#!/usr/bin/env bash
# Public header checks (ctest abi_headers).
#
#   check_headers.sh [INCLUDE_DIR]
#
# INCLUDE_DIR defaults to $MGO_SOURCE_DIR/include. For every header under INCLUDE_DIR/mgo/:
#   1. a one-line translation unit that includes only that header compiles as C11 and as C++11
#      with -Wall -Wextra -Werror -pedantic, with gcc/g++ and (when installed) clang/clang++,
#      both as a host sees it and as the library sees it (MGO_BUILDING_LIBRARY);
#   2. an FFI grep on the comment-free text: no variadics, va_list, bool, long, time_t, off_t,
#      bitfields, unions or inline functions; #include only <stdint.h>, <stddef.h> or <mgo/...>.
# The FFI grep first proves on a generated bad header that each rule fires.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${MGO_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
incdir=${1:-$src/include}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

mapfile -t headers < <(cd "$incdir" && find mgo -name '*.h' | sort)
if ((${#headers[@]} == 0)); then
    echo "check_headers: no headers under $incdir/mgo" >&2
    exit 2
fi
echo "== headers: ${headers[*]} (under $incdir)"

# ---- 1. each header compiles alone ---------------------------------------------------------------
compilers=("gcc -x c -std=c11" "g++ -x c++ -std=c++11")
command -v clang >/dev/null && compilers+=("clang -x c -std=c11")
command -v clang++ >/dev/null && compilers+=("clang++ -x c++ -std=c++11")
flags=(-Wall -Wextra -Werror -pedantic -fsyntax-only)

for h in "${headers[@]}"; do
    tu=$tmp/tu_$(echo "$h" | tr '/.' '__').c
    printf '#include <%s>\n' "$h" >"$tu"
    for c in "${compilers[@]}"; do
        for def in "" "-DMGO_BUILDING_LIBRARY"; do
            # shellcheck disable=SC2086 # $c and $def are word lists on purpose
            if $c "${flags[@]}" $def -I "$incdir" "$tu" >"$tmp/cc.out" 2>&1; then
                echo "-- ok:   $h alone with $c ${flags[*]} $def"
            else
                echo "-- FAIL: $h alone with $c ${flags[*]} $def"
                cat "$tmp/cc.out"
                failures=$((failures + 1))
            fi
        done
    done
done

# ---- 2. FFI grep ---------------------------------------------------------------------------------
# Prints one line per violation in header $1 (shown as $2); returns the number found.
ffi_violations() {
    local file=$1 shown=$2 text=$tmp/ffi.txt n=0 line
    # Comments go, directives stay (-fpreprocessed -dD); nothing is expanded or included.
    gcc -w -x c -fpreprocessed -dD -E -P "$file" >"$text"
    local -a rules=(
        'variadic function|\.\.\.[[:space:]]*\)'
        'va_list|\bva_list\b'
        'bool|\b(_Bool|bool)\b'
        'long|\blong\b'
        'time_t|\btime_t\b'
        'off_t|\boff_t\b'
        'bitfield|:[[:space:]]*[0-9A-Za-z_]+[[:space:]]*;'
        'union|\bunion\b'
        'inline function|\b(inline|__inline__|__inline)\b'
    )
    local r name re
    local allowed='^[[:space:]]*#[[:space:]]*include[[:space:]]*'
    allowed+='(<(stdint|stddef)\.h>|[<"]mgo/[A-Za-z0-9_]+\.h[>"])[[:space:]]*$'
    for r in "${rules[@]}"; do
        name=${r%%|*}
        re=${r#*|}
        while IFS= read -r line; do
            echo "   $shown: $name: $line"
            n=$((n + 1))
        done < <(grep -v '^[[:space:]]*#[[:space:]]*include' "$text" | grep -E -- "$re" || true)
    done
    while IFS= read -r line; do
        echo "   $shown: include other than <stdint.h>/<stddef.h>/<mgo/...>: $line"
        n=$((n + 1))
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$text" | grep -vE "$allowed" || true)
    return "$n"
}

echo "-- FFI grep self-test on a generated bad header"
cat >"$tmp/bad.h" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdarg.h>
/* comments may say long, bool, union, va_list and ...) freely */
typedef struct bad {
    uint32_t struct_size;
    unsigned flag : 1;
    long count;
    _Bool ok;
    time_t when;
    off_t where;
    union { int32_t a; float b; } u;
} bad;
void bad_log(const char *fmt, ...);
void bad_vlog(const char *fmt, va_list ap);
static inline int32_t bad_inline(void) { return 0; }
EOF
expected=11 # bitfield, long, bool, time_t, off_t, union, variadic, va_list, inline, 2 includes
set +e
ffi_violations "$tmp/bad.h" bad.h >"$tmp/selftest.out"
found=$?
set -e
cat "$tmp/selftest.out"
if ((found != expected)); then
    echo "-- FAIL: the FFI grep found $found violations in the bad header, expected $expected"
    failures=$((failures + 1))
else
    echo "   the FFI grep flags all $expected planted violations"
fi

for h in "${headers[@]}"; do
    set +e
    ffi_violations "$incdir/$h" "$h"
    found=$?
    set -e
    if ((found == 0)); then
        echo "-- ok:   $h passes the FFI grep"
    else
        echo "-- FAIL: $h: $found FFI violation(s)"
        failures=$((failures + 1))
    fi
done

if ((failures > 0)); then
    echo "check_headers: $failures failure(s)"
    exit 1
fi
echo "check_headers: OK"
