#!/usr/bin/env bash
# The committed CRDs are what the generator writes from the current schema tables:
#   check_deploy_crds.sh PATH-OF-mgo-gen-crds CRD-DIR
# Regenerates into a temporary folder and compares it with CRD-DIR (every file, no extra and no
# missing one). On a difference, regenerate with `cmake --build BUILD --target deploy-crds` and
# commit the result (docs/development/kube-deploy.md).
set -euo pipefail

gen=${1:?usage: check_deploy_crds.sh PATH-OF-mgo-gen-crds CRD-DIR}
dir=${2:?usage: check_deploy_crds.sh PATH-OF-mgo-gen-crds CRD-DIR}
work=$(mktemp -d "${TMPDIR:-/tmp}/mgo-crds.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$gen" "$work" || {
    echo "FAIL: mgo-gen-crds failed" >&2
    exit 1
}
n=$(find "$work" -type f | wc -l)
[ "$n" -eq 4 ] || {
    echo "FAIL: mgo-gen-crds wrote $n files, expected 4" >&2
    exit 1
}
if ! diff -ru "$dir" "$work" >"$work.diff" 2>&1; then
    head -n 80 "$work.diff" >&2
    echo "FAIL: $dir is not what mgo-gen-crds writes now (diff above, committed first);" \
        "regenerate with: cmake --build BUILD --target deploy-crds" >&2
    rm -f "$work.diff"
    exit 1
fi
rm -f "$work.diff"
echo "ok: the $n CRDs in $dir are up to date"
