#!/usr/bin/env bash
# The public constants (MGO_* macros: status codes, classes, log levels, the ABI version) are
# part of the ABI, but DWARF does not record them, so abidiff cannot see a renumbering. Every
# line of abi/constants.txt (name and value as released) must still hold; new constants may be
# added (then run abi/update-constants.sh). A self-test proves a renumbering is caught.
set -euo pipefail
src=${MGO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

constants_of() { # constants_of INCLUDE_DIR
    cc -dM -E -I"$1" "$1/mgo/mgo.h" |
        awk '$1 == "#define" && $2 ~ /^MGO_/ && $2 != "MGO_MGO_H" && $2 != "MGO_API" {print $2, $3}' |
        sort
}

compare() { # compare INCLUDE_DIR: 0 when every released constant holds
    local current status=0
    current=$(constants_of "$1")
    while read -r name value; do
        [ -z "$name" ] && continue
        now=$(awk -v n="$name" '$1 == n {print $2}' <<<"$current")
        if [ "$now" != "$value" ]; then
            echo "  $name was $value in the released ABI, now '${now:-(removed)}'"
            status=1
        fi
    done <"$src/abi/constants.txt"
    return $status
}

if compare "$src/include"; then
    echo "ok   every released constant keeps its value ($(wc -l <"$src/abi/constants.txt") checked)"
else
    echo "FAIL released constants changed"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/mgo"
sed 's/^#define MGO_EINVAL -1$/#define MGO_EINVAL -42/' "$src/include/mgo/mgo.h" >"$tmp/mgo/mgo.h"
grep -q 'MGO_EINVAL -42' "$tmp/mgo/mgo.h"
if compare "$tmp" >/dev/null; then
    echo "FAIL self-test: a renumbered MGO_EINVAL was not caught"
    exit 1
fi
echo "ok   self-test: a renumbered MGO_EINVAL is caught"
