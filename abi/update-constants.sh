#!/usr/bin/env bash
# Write abi/constants.txt: every MGO_* constant of include/mgo/mgo.h with its value. Run it when
# a constant is added (never to paper over a changed value: tests/abi/check_constants.sh exists
# to catch that).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc -dM -E -I"$here/../include" "$here/../include/mgo/mgo.h" |
    awk '$1 == "#define" && $2 ~ /^MGO_/ && $2 != "MGO_MGO_H" && $2 != "MGO_API" {print $2, $3}' |
    sort >"$here/constants.txt"
echo "wrote $here/constants.txt ($(wc -l <"$here/constants.txt") constants)"
