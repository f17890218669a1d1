#!/usr/bin/env python3
"""The optional host allocator (mgo_host.alloc/realloc/free) implemented in Python through ctypes.

A counting allocator on top of libc's malloc/realloc/free is passed to mgo_open through the
example's Mgo class. After validating, freeing every result with mgo_free and closing the handle,
every block the library took from the allocator must have been given back, and the library must
only have handed back pointers that came from it. Needs MGO_LIBRARY and MGO_SOURCE_DIR (ctest
sets them).
"""

import ctypes
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


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    lib = mgo_host.load_library()
    check(ctypes.sizeof(mgo_host.MgoHostTable) ==
          mgo_host.MgoHostTable.log_level.offset + 4 + 4,  # int32 + tail padding to 8
          "the host table has the C layout (log_level last, padded to pointer alignment)")

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

        # An allocator that fails: the call reports MGO_ENOMEM, the handle stays usable.
        allocator.fail = True
        try:
            mgo.validate(read(VALID))
            code = mgo_host.MGO_OK
        except mgo_host.MgoError as e:
            code = e.code
        allocator.fail = False
        check(code == -4, f"failing allocator gives MGO_ENOMEM (got {code})")
        status, _ = mgo.validate(read(VALID))
        check(status == mgo_host.MGO_OK, "the handle works again after MGO_ENOMEM")
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
    check(out.value in allocator.live, "the result buffer came from the host allocator")
    mgo.close()
    check(allocator.live == {out.value}, "after mgo_close only the result is still allocated")
    frees = allocator.calls["free"]
    lib.mgo_free(out)
    check(allocator.calls["free"] == frees + 1, "mgo_free after mgo_close used the host's free")
    print("calls:", allocator.calls)
    check(allocator.calls["alloc"] > 0 and allocator.calls["free"] > 0, "calls were counted")
    check(not allocator.live, f"every block was freed ({len(allocator.live)} left)")
    check(not allocator.problems, f"no misuse: {allocator.problems}")

    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
