#!/usr/bin/env python3
"""The optional host allocator (mgo_host.alloc/realloc/free) implemented in Python through ctypes.

A counting allocator on top of libc's malloc/realloc/free is passed to mgo_open through the
example's Mgo class. After validating, freeing every result with mgo_free and closing the handle,
the calls must be nonzero and balanced: every block the library took from the allocator was given
back, and the library handed back only pointers that came from it. A result freed after its
handle was closed must still go to the host's free.

Then every allocation of an open + validate (and of a reconcile pass and of scale plans) is
failed in turn (see fault_sweep). Library issues
found that way (leaks, a status other than MGO_ENOMEM) are printed as notes; `--strict` turns them
into failures. Needs MGO_LIBRARY, MGO_SHARED_DIR and MGO_SOURCE_DIR (ctest sets them).

    usage: test_python_allocator.py [--strict]
"""

import ctypes
import json
import re
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MGO_SOURCE_DIR"], "examples", "hosts", "python"))
import mgo_host  # noqa: E402

LIBC = ctypes.CDLL(None)
LIBC.malloc.argtypes = [ctypes.c_size_t]
LIBC.malloc.restype = ctypes.c_void_p
LIBC.realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
LIBC.realloc.restype = ctypes.c_void_p
LIBC.free.argtypes = [ctypes.c_void_p]
LIBC.free.restype = None

VALID = os.path.join(os.environ["MGO_SHARED_DIR"], "compat", "upstream-samples", "minimal.yaml")
INVALID = os.path.join(os.environ["MGO_SOURCE_DIR"], "tests", "hosts", "invalid.yaml")

failures = []


def check(condition, what):
    print(("ok - " if condition else "FAIL: ") + what)
    if not condition:
        failures.append(what)


class CountingAllocator:
    """libc's allocator, counting calls and tracking live blocks. Exceptions raised inside a
    ctypes callback are swallowed, so misuse is recorded in `problems` instead."""

    def __init__(self):
        self.calls = {"alloc": 0, "realloc": 0, "free": 0}
        self.live = set()
        self.problems = []
        self.fail = False  # when set, alloc and realloc report out of memory

    def alloc(self, size):
        self.calls["alloc"] += 1
        if size == 0:
            self.problems.append("alloc(user, 0) was called")
        ptr = None if self.fail else LIBC.malloc(size)
        if ptr:
            self.live.add(ptr)
        return ptr

    def realloc(self, ptr, size):
        self.calls["realloc"] += 1
        if ptr and ptr not in self.live:
            self.problems.append(f"realloc of a foreign pointer {ptr:#x}")
            return None
        if self.fail:
            return None
        new = LIBC.realloc(ptr, size)
        if new:
            self.live.discard(ptr)
            self.live.add(new)
        return new

    def free(self, ptr):
        if not ptr:
            return
        self.calls["free"] += 1
        if ptr not in self.live:
            self.problems.append(f"free of a foreign pointer {ptr:#x}")
            return
        self.live.remove(ptr)
        LIBC.free(ptr)


class FailNth(CountingAllocator):
    """Fails the n-th allocation request (alloc or realloc) only."""

    def __init__(self, n):
        super().__init__()
        self.n = n
        self.requests = 0

    def alloc(self, size):
        self.requests += 1
        self.fail = self.requests == self.n
        return super().alloc(size)

    def realloc(self, ptr, size):
        self.requests += 1
        self.fail = self.requests == self.n
        return super().realloc(ptr, size)


def validate_call(mgo, text):
    return mgo.validate(text)


def reconcile_call(mgo, text):
    """One reconcile pass (process target, no topology registration, nothing observed) through
    the raw hook; timestamps (which follow the clock) are blanked for comparison."""
    request = json.dumps({"manifests": text, "target": "process", "include_desired": True,
                          "topology": {"register": False}}).encode()
    out, out_len = ctypes.c_void_p(), ctypes.c_size_t()
    status = mgo.lib.mgo_reconcile(mgo._plugin, request, len(request), ctypes.byref(out),
                                   ctypes.byref(out_len))
    if not out:
        raise mgo_host.MgoError("mgo_reconcile returned no document", status)
    try:
        text = ctypes.string_at(out, out_len.value).decode()
    finally:
        mgo.lib.mgo_free(out)
    return status, json.loads(re.sub(r'"20[0-9][0-9]-[0-9-]+T[0-9:.]+Z"', '"T"', text))


def scale_call(fields):
    """A call of mgo_scale through the raw hook, its request the manifest text with `fields`
    (pool, replicas, observed) added; the plan holds no timestamp."""
    def call(mgo, text):
        request = json.dumps(dict(fields, manifests=text)).encode()
        out, out_len = ctypes.c_void_p(), ctypes.c_size_t()
        status = mgo.lib.mgo_scale(mgo._plugin, request, len(request), ctypes.byref(out),
                                   ctypes.byref(out_len))
        if not out:
            raise mgo_host.MgoError("mgo_scale returned no document", status)
        try:
            result = ctypes.string_at(out, out_len.value).decode()
        finally:
            mgo.lib.mgo_free(out)
        return status, json.loads(result)
    return call


def observed_of(lib, text):
    """What a host observes once everything a reconcile pass renders for `text` exists: every
    object ready, the first instance the primary but not ready, the others standbys."""
    with mgo_host.Mgo(lib) as mgo:
        _, result = reconcile_call(mgo, text)
    observed, primary = [], True
    for o in result["desired"]:
        meta = o["metadata"]
        entry = {"kind": o["kind"], "name": meta["name"], "labels": meta.get("labels", {}),
                 "annotations": meta.get("annotations", {}), "ready": True}
        if o["kind"] == "Instance":
            entry.update(role="primary" if primary else "standby", ready=not primary,
                         ports={"port": o["spec"]["port"]})
            primary = False
        observed.append(entry)
    return {"objects": observed}


def fault_sweep(lib, name, text, strict, call=validate_call):
    """Open a handle and validate text while failing the n-th allocation, for n = 1, 2, ...
    until the calls complete without reaching n.

    Always checked: the library never hands back a pointer it did not get, mgo_open fails only
    with MGO_ENOMEM, an invalid manifest is never reported valid, and the handle works normally
    afterwards. Checked only with --strict (reported otherwise, as these are library issues
    outside the hosts): nothing leaks, and the failing call gives what mgo.h documents, i.e.
    MGO_ENOMEM without a document, or the normal result when the library could do without the
    memory."""
    with mgo_host.Mgo(lib) as mgo:
        reference = call(mgo, text)
    n, problems, leaks, deviations = 0, [], [], []
    while True:
        n += 1
        allocator = FailNth(n)
        try:
            mgo = mgo_host.Mgo(lib, allocator=allocator)
        except mgo_host.MgoError as e:
            if e.code != -4:
                problems.append(f"n={n}: mgo_open returned {e.code}, not MGO_ENOMEM")
            reached = True
        else:
            try:
                outcome = call(mgo, text)
            except mgo_host.MgoError as e:
                outcome = (e.code, None)
            reached = allocator.requests >= n
            allocator.n = 0  # no more failures
            if outcome[0] == mgo_host.MGO_OK and reference[0] != mgo_host.MGO_OK:
                problems.append(f"n={n}: an invalid manifest was reported valid")
            if call(mgo, text) != reference:
                problems.append(f"n={n}: the handle gave a different result afterwards")
            if outcome[0] != -4 and outcome != reference:
                error = (outcome[1] or {}).get("error") or {}
                deviations.append(f"n={n}: status {outcome[0]}, {error.get('message')!r}")
            mgo.close()
        if allocator.problems:
            problems.append(f"n={n}: {allocator.problems}")
        if allocator.live:
            leaks.append(f"n={n}: {len(allocator.live)} block(s) never freed")
        if not reached:
            break

    def listing(items):
        return "".join(f"\n    {item}" for item in items[:10]) + (
            f"\n    ... {len(items) - 10} more" if len(items) > 10 else "")

    print(f"{name}: failed each of {n - 1} allocations in turn")
    check(not problems, f"{name}: no misuse or lasting damage after a failed allocation"
          + listing(problems))
    for items, what, rule in (
            (leaks, "leaked memory", "no failed allocation leaks memory"),
            (deviations, "gave neither MGO_ENOMEM nor the normal result",
             "every failed allocation gives MGO_ENOMEM or the normal result")):
        if strict:
            check(not items, f"{name}: {rule}{listing(items)}")
        elif items:
            print(f"note - {name}: {len(items)} failed allocation(s) {what} (a library "
                  f"issue; --strict fails on it){listing(items)}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    lib = mgo_host.load_library()
    check(ctypes.sizeof(mgo_host.MgoHostTable) ==
          mgo_host.MgoHostTable.reserved0.offset + 4,  # no tail padding
          "the host table has the C layout (reserved0 last, no padding)")

    # 1. validate through Mgo (each result is freed with mgo_free inside validate), then close.
    allocator = CountingAllocator()
    with mgo_host.Mgo(lib, allocator=allocator) as mgo:
        status, result = mgo.validate([{"source": "minimal.yaml", "text": read(VALID)}])
        check(status == mgo_host.MGO_OK and result["valid"], "valid sample through the allocator")
        status, result = mgo.validate([{"source": "invalid.yaml", "text": read(INVALID)}])
        reasons = [e["reason"] for o in result["objects"] for e in o["errors"]]
        check(status == mgo_host.MGO_EINVAL and
              "cannot specify both 'zoneId' and 'region'" in reasons,
              "invalid manifest through the allocator")

    print("calls:", allocator.calls)
    check(allocator.calls["alloc"] > 0, "alloc was called")
    check(allocator.calls["free"] > 0, "free was called")
    check(not allocator.live, f"every block was freed ({len(allocator.live)} left)")
    check(not allocator.problems, f"no misuse: {allocator.problems}")

    # 2. a result outlives its handle: mgo_free after mgo_close still goes to the allocator.
    allocator = CountingAllocator()
    mgo = mgo_host.Mgo(lib, allocator=allocator)
    request = b'{"manifests": "kind: Secret\\napiVersion: v1\\nmetadata: {name: s}\\n"}'
    out, out_len = ctypes.c_void_p(), ctypes.c_size_t()
    status = lib.mgo_validate(mgo._plugin, request, len(request), ctypes.byref(out),
                              ctypes.byref(out_len))
    check(status == mgo_host.MGO_OK and bool(out), "raw mgo_validate")
    mgo.close()
    check(len(allocator.live) == 1, "after mgo_close only the result is still allocated")
    frees = allocator.calls["free"]
    lib.mgo_free(out)
    check(allocator.calls["free"] == frees + 1, "mgo_free after mgo_close used the host's free")
    print("calls:", allocator.calls)
    check(allocator.calls["alloc"] > 0 and allocator.calls["free"] > 0, "calls were counted")
    check(not allocator.live, f"every block was freed ({len(allocator.live)} left)")
    check(not allocator.problems, f"no misuse: {allocator.problems}")

    # 3. allocation failures, one at a time.
    for name, path in (("valid sample", VALID), ("invalid manifest", INVALID)):
        fault_sweep(lib, name, read(path), strict="--strict" in sys.argv[1:])
    # the same through a reconcile pass: model, render, plan and status
    fault_sweep(lib, "reconcile of the valid sample", read(VALID),
                strict="--strict" in sys.argv[1:], call=reconcile_call)
    # and through mgo_scale: the size written (the sample's pool exists only by default), the
    # shard collected and planned; then over observed objects, where the health gate waits
    fault_sweep(lib, "scale of the valid sample", read(VALID), strict="--strict" in sys.argv[1:],
                call=scale_call({"pool": "default", "replicas": 4}))
    observed_scale = scale_call({"pool": "default", "replicas": 1,
                                 "observed": observed_of(lib, read(VALID))})
    with mgo_host.Mgo(lib) as mgo:
        status, plan = observed_scale(mgo, read(VALID))
    check(status == mgo_host.MGO_OK and len(plan["drain"]) == 1 and
          [w["reason"] for w in plan["waiting_for"]] == ["not ready"],
          "the observed scale plan drains one instance behind the health gate")
    fault_sweep(lib, "scale of the valid sample, observed", read(VALID),
                strict="--strict" in sys.argv[1:], call=observed_scale)

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
