#!/usr/bin/env bash
# The mgo command line: exit codes, the "FILE: path: reason" format, --json, --templates,
# --previous, resolve, and a missing library. Needs MGO_CLI, MGO_LIBRARY, MGO_SHARED_DIR.
set -euo pipefail

samples="$MGO_SHARED_DIR/compat/upstream-samples"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
passed=0

check() { # check NAME: the last command's outcome against expectations, counted
    if [ "$1" = ok ]; then passed=$((passed + 1)); echo "ok   $2"; else
        failures=$((failures + 1)); echo "FAIL $2"; fi
}

run() { # run EXPECTED_EXIT NAME -- command...; stdout in $tmp/out, stderr in $tmp/err
    local want=$1 name=$2
    shift 3
    set +e
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    set -e
    if [ "$got" -eq "$want" ]; then check ok "$name (exit $got)"; else
        check fail "$name: exit $got, want $want"; sed 's/^/    | /' "$tmp/out" "$tmp/err"; fi
}

expect_line() { # expect_line FILE LINE: LINE is one whole line of FILE
    if grep -qxF -- "$2" "$1"; then check ok "prints: $2"; else
        check fail "missing line: $2"; sed 's/^/    | /' "$1"; fi
}

json_get() { # json_get FILE PYTHON-EXPR (the document is d)
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

mgo=$MGO_CLI

run 0 "help" -- "$mgo" --help
run 2 "no command" -- "$mgo"
run 2 "unknown command" -- "$mgo" frobnicate
run 0 "validate --help" -- "$mgo" validate --help
run 2 "validate without FILE" -- "$mgo" validate
run 2 "unknown option" -- "$mgo" validate --bogus "$samples/minimal.yaml"
run 0 "version" -- "$mgo" version
grep -q "ABI 1" "$tmp/out" && check ok "version names ABI 1" || check fail "version output"

run 0 "the annotated manifest of docs/spec is valid" -- "$mgo" validate "$MGO_SOURCE_DIR/docs/spec/multigrescluster.yaml"
run 0 "the example clusters are valid" -- "$mgo" validate --templates "$MGO_SOURCE_DIR/examples/clusters/templates" "$MGO_SOURCE_DIR"/examples/clusters/*.yaml
run 0 "valid sample" -- "$mgo" validate "$samples/minimal.yaml"
[ ! -s "$tmp/out" ] && check ok "valid sample prints nothing" || check fail "valid sample printed"

cat >"$tmp/bad.yaml" <<'YAML'
apiVersion: multigres.com/v1alpha1
kind: MultigresCluster
metadata:
  name: bad
spec:
  postgresPasswordSecretRef: {name: pw, key: password}
  cells:
    - name: a
      zoneId: z1
      region: r1
    - name: b
      zoneId: z2
      spec:
        multigateway:
          replicas: "two"
YAML
run 1 "invalid manifest" -- "$mgo" validate "$tmp/bad.yaml"
expect_line "$tmp/out" "$tmp/bad.yaml: spec.cells[0]: cannot specify both 'zoneId' and 'region'"
expect_line "$tmp/out" "$tmp/bad.yaml: spec.cells[1].spec.multigateway.replicas: must be of type integer, got string"
[ "$(wc -l <"$tmp/out")" -eq 2 ] && check ok "exactly two errors" || check fail "error count"

run 1 "invalid manifest, --json" -- "$mgo" validate --json "$tmp/bad.yaml"
[ "$(json_get "$tmp/out" 'd["valid"]')" = False ] && check ok "--json valid=false" || check fail "--json valid"
[ "$(json_get "$tmp/out" 'len(d["objects"][0]["errors"])')" = 2 ] && check ok "--json two errors" || check fail "--json errors"

run 0 "several files, one valid set" -- "$mgo" validate "$samples/minimal.yaml" "$samples/topology.yaml"
run 1 "several files, one invalid" -- "$mgo" validate "$samples/minimal.yaml" "$tmp/bad.yaml"

printf 'apiVersion: multigres.com/v1alpha1\nkind: MultigresCluster\nmetadata:\n  name: x\n spec: {}\n' >"$tmp/syntax.yaml"
run 1 "syntax error" -- "$mgo" validate "$tmp/syntax.yaml"
grep -qE "^$tmp/syntax.yaml: line 5, column [0-9]+: " "$tmp/out" && check ok "syntax error has its line" || { check fail "syntax error line"; cat "$tmp/out"; }

run 2 "missing file" -- "$mgo" validate "$tmp/nope.yaml"
grep -q "nope.yaml" "$tmp/err" && check ok "missing file named" || check fail "missing file message"

# Templates from a directory; one named "default" plays the namespace default.
mkdir "$tmp/tmpl" "$tmp/defaults"
cp "$samples/templates__core.yaml" "$samples/templates__cell.yaml" "$samples/templates__shard.yaml" "$tmp/tmpl/"
run 1 "templated cluster without its templates" -- "$mgo" validate "$samples/templated-cluster.yaml"
expect_line "$tmp/out" "$samples/templated-cluster.yaml: spec.templateDefaults.coreTemplate: referenced CoreTemplate 'standard-core' not found in namespace 'default'"
run 0 "templated cluster with --templates" -- "$mgo" validate --templates "$tmp/tmpl" "$samples/templated-cluster.yaml"

cp "$samples/default-templates__core.yaml" "$tmp/defaults/"
run 0 "resolve with a default CoreTemplate" -- "$mgo" resolve --templates "$tmp/defaults" "$samples/minimal.yaml"
[ "$(json_get "$tmp/out" 'd["spec"]["globalTopoServer"]["etcd"]["replicas"]')" = 1 ] && check ok "default template applied" || check fail "default template"

run 0 "resolve" -- "$mgo" resolve "$samples/minimal.yaml"
[ "$(json_get "$tmp/out" 'd["spec"]["databases"][0]["tablegroups"][0]["shards"][0]["spec"]["pools"]["default"]["replicasPerCell"]')" = 2 ] && check ok "resolve: replicasPerCell 2" || check fail "resolve output"
run 1 "resolve invalid" -- "$mgo" resolve "$tmp/bad.yaml"
expect_line "$tmp/out" "$tmp/bad.yaml: spec.cells[0]: cannot specify both 'zoneId' and 'region'"
run 2 "resolve: two clusters, none named" -- "$mgo" resolve "$samples/minimal.yaml" "$samples/topology.yaml"
grep -q -- '--cluster NAME' "$tmp/err" && check ok "asks to name a cluster" || check fail "two clusters message"
run 0 "resolve --cluster" -- "$mgo" resolve --cluster topology "$samples/minimal.yaml" "$samples/topology.yaml"

# render: the objects of a fresh reconcile, as a YAML stream or a JSON List.
run 0 "render --help" -- "$mgo" render --help
run 2 "render: unknown target" -- "$mgo" render --target nomad "$samples/minimal.yaml"
run 1 "render invalid" -- "$mgo" render "$tmp/bad.yaml"
expect_line "$tmp/out" "$tmp/bad.yaml: spec.cells[0]: cannot specify both 'zoneId' and 'region'"
run 0 "render --json" -- "$mgo" render --json "$samples/minimal.yaml"
cp "$tmp/out" "$tmp/render.json"
[ "$(json_get "$tmp/render.json" 'd["kind"]')" = List ] && check ok "render --json is a List" || check fail "render --json kind"
items=$(json_get "$tmp/render.json" 'len(d["items"])')
run 0 "render (YAML)" -- "$mgo" render "$samples/minimal.yaml"
cp "$tmp/out" "$tmp/render.yaml"
# The YAML stream reads back (through mgo's own YAML reader) as the same number of documents.
run 0 "rendered YAML reads back" -- "$mgo" validate --json "$tmp/render.yaml"
[ "$(json_get "$tmp/out" 'len(d["objects"])')" = "$items" ] && check ok "YAML and JSON agree on $items objects" || check fail "YAML document count"
[ "$(json_get "$tmp/out" 'all(o["skipped"] for o in d["objects"])')" = True ] && check ok "rendered objects are not multigres kinds" || check fail "skipped flags"
# An invalid cluster beside a cluster without a name: an answer, not a crash (review finding).
printf 'apiVersion: multigres.com/v1alpha1\nkind: MultigresCluster\nmetadata:\n  name: x\nspec:\n  cells: 5\n---\napiVersion: multigres.com/v1alpha1\nkind: MultigresCluster\nmetadata:\n  namespace: default\nspec: {}\n' >"$tmp/nameless.yaml"
run 1 "render: invalid cluster beside a nameless one" -- "$mgo" render --cluster x "$tmp/nameless.yaml"
# Strings YAML 1.1 reads as booleans stay strings in the YAML output (review finding).
sed 's/^  postgresPasswordSecretRef:/  postgresSuperuser: "Y"\n  postgresPasswordSecretRef:/' "$samples/minimal.yaml" >"$tmp/superuser-y.yaml"
run 0 "render --target process, superuser Y" -- "$mgo" render --target process "$tmp/superuser-y.yaml"
expect_line "$tmp/out" '  superuser: "Y"'
run 0 "render --owner-uid" -- "$mgo" render --json --owner-uid 1b4e28ba-2fa1-11d2-883f-0016d3cca427 "$samples/minimal.yaml"
[ "$(json_get "$tmp/out" 'sorted(set(r.get("uid") for o in d["items"] for r in o["metadata"].get("ownerReferences", [])))')" = "['1b4e28ba-2fa1-11d2-883f-0016d3cca427']" ] && check ok "owner references carry the uid" || check fail "owner uid"
run 0 "render --target process" -- "$mgo" render --json --target process "$samples/minimal.yaml"
[ "$(json_get "$tmp/out" 'sorted(set(o["kind"] for o in d["items"]))')" = "['Etcd', 'Instance', 'Volume']" ] && check ok "process kinds" || check fail "process kinds"
[ "$(json_get "$tmp/out" 'sum(1 for o in d["items"] if o["kind"] == "Instance")')" = 2 ] && check ok "minimal: two instances" || check fail "process instance count"

# Update-only rules with --previous.
sed 's/^    - name: "z3"/    - name: "z3-renamed"/' "$samples/topology.yaml" >"$tmp/topology-renamed.yaml"
run 1 "removing a cell on update" -- "$mgo" validate --previous "$samples/topology.yaml" "$tmp/topology-renamed.yaml"
expect_line "$tmp/out" "$tmp/topology-renamed.yaml: spec.cells: Cells cannot be removed or renamed (Append-Only)"
run 0 "unchanged update" -- "$mgo" validate --previous "$samples/topology.yaml" "$samples/topology.yaml"

# Standard input.
run 0 "stdin" -- bash -c "\"$mgo\" validate - < \"$samples/minimal.yaml\""

# No library: exit 3 and a message saying what to do.
run 3 "library missing" -- env MGO_LIBRARY="$tmp/none/libmgo.so.1" "$mgo" validate "$samples/minimal.yaml"
grep -q "MGO_LIBRARY" "$tmp/err" && check ok "missing library message" || check fail "missing library message"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
