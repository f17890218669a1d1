"""Shared pieces of the deploy manifests' tests against a real kube-apiserver (standard library
only): an HTTP client for the harness's server, YAML documents split the way kubectl splits them,
YAML to JSON through kube_deploy_helper, object paths, and a check counter that fails loudly.

The server comes from the environment kube_harness.sh exports (KUBE_SERVER, KUBE_TOKEN, KUBE_CA).
"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

FIELD_MANAGER = "mgo-deploy-test"

# Resource (plural) and scope of every kind the tests send.
RESOURCES = {
    "Namespace": ("namespaces", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
    "ConfigMap": ("configmaps", True),
    "Service": ("services", True),
    "Pod": ("pods", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "Certificate": ("certificates", True),
    "Lease": ("leases", True),
    "Event": ("events", True),
    "MultigresCluster": ("multigresclusters", True),
    "CoreTemplate": ("coretemplates", True),
    "CellTemplate": ("celltemplates", True),
    "ShardTemplate": ("shardtemplates", True),
}


class Failed(Exception):
    pass


class Checks:
    """Counts passed checks; the first failed one ends the test with its message."""

    def __init__(self):
        self.passed = 0

    def ok(self, what):
        self.passed += 1
        print(f"ok {self.passed} - {what}", flush=True)

    def require(self, cond, what):
        if not cond:
            raise Failed(what)


class Response:
    def __init__(self, code, body, headers):
        self.code = code
        self.raw = body
        self.headers = headers
        try:
            self.obj = json.loads(body) if body else None
        except ValueError:
            self.obj = None

    def causes(self):
        """[(field, message)] of a failure Status, in the server's order."""
        details = (self.obj or {}).get("details") or {}
        return [(c.get("field", ""), c.get("message", "")) for c in details.get("causes") or []]

    def message(self):
        return (self.obj or {}).get("message", "")

    def warnings(self):
        return [v for k, v in self.headers if k.lower() == "warning"]

    def short(self):
        return self.raw[:1500].decode("utf-8", "replace")


class Api:
    def __init__(self, user_agent):
        self.server = os.environ["KUBE_SERVER"]
        self.token = os.environ["KUBE_TOKEN"]
        self.ctx = ssl.create_default_context(cafile=os.environ["KUBE_CA"])
        self.user_agent = user_agent

    def call(self, method, path, body=None, content_type="application/json", query=None,
             headers=None, accept="application/json"):
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(self.server + path, data=body, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        req.add_header("Accept", accept)
        req.add_header("User-Agent", self.user_agent)
        if body is not None:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=60) as r:
                return Response(r.status, r.read(), list(r.headers.items()))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), list(e.headers.items()))

    def apply(self, obj_or_text, path, dry_run=False, headers=None, manager=FIELD_MANAGER):
        """Server-side apply (force) of a JSON object or YAML text to PATH."""
        q = {"fieldManager": manager, "force": "true", "fieldValidation": "Strict"}
        if dry_run:
            q["dryRun"] = "All"
        return self.call("PATCH", path, obj_or_text, "application/apply-patch+yaml", q, headers)

    def create(self, obj_or_text, collection, yaml=False, dry_run=False, headers=None):
        q = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
        if dry_run:
            q["dryRun"] = "All"
        ctype = "application/yaml" if yaml else "application/json"
        return self.call("POST", collection, obj_or_text, ctype, q, headers)

    def wait(self, what, predicate, deadline_s=60):
        """Poll predicate() until it returns a true value; that value, or Failed."""
        end = time.monotonic() + deadline_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > end:
                raise Failed(f"{what}: not reached after {deadline_s} s")
            time.sleep(0.2)


def api_prefix(api_version):
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def collection_path(api_version, kind, namespace=None):
    resource, namespaced = RESOURCES[kind]
    prefix = api_prefix(api_version)
    if namespaced:
        return f"{prefix}/namespaces/{namespace}/{resource}"
    return f"{prefix}/{resource}"


def object_path(obj, subresource=None):
    meta = obj["metadata"]
    path = collection_path(obj["apiVersion"], obj["kind"], meta.get("namespace")) + "/" + meta["name"]
    return path + "/" + subresource if subresource else path


def split_documents(text):
    """The documents of a YAML stream, split as kubectl splits them: at lines that start with
    '---' followed by nothing but blanks or a comment. Documents of only blanks and comments
    are dropped."""
    docs, cur = [], []
    for line in text.splitlines(keepends=True):
        rest = line[3:].strip() if line.startswith("---") else None
        if rest is not None and (rest == "" or rest.startswith("#")):
            docs.append("".join(cur))
            cur = []
        else:
            cur.append(line)
    docs.append("".join(cur))
    out = []
    for d in docs:
        content = [ln for ln in d.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        if content:
            out.append(d)
    return out


def yaml_to_json(helper, texts):
    """JSON of each YAML text (one document each), through the library's reader."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, t in enumerate(texts):
            p = os.path.join(tmp, f"{i}.yaml")
            with open(p, "w") as f:
                f.write(t)
            paths.append(p)
        out = subprocess.run([helper, "yaml2json", *paths], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    result = []
    for line, text in zip(out, texts):
        docs = json.loads(line)
        if len(docs) != 1:
            raise Failed(f"expected one document, got {len(docs)}: {text[:200]}")
        result.append(docs[0])
    return result


def run(main):
    """Run a test's main(checks); print the outcome; exit status."""
    checks = Checks()
    start = time.monotonic()
    try:
        main(checks)
    except Failed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    print(f"{checks.passed} passed, 0 failed ({time.monotonic() - start:.1f} s)")
    return 0
