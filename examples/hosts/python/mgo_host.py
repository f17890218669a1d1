#!/usr/bin/env python3
"""A minimal mgo host in Python, using only the standard library (ctypes).

    usage: python3 mgo_host.py FILE [LIBRARY]

Loads libmgo.so.1 (LIBRARY, else $MGO_LIBRARY, else "libmgo.so.1" through the dynamic loader's
search path), checks its ABI version, validates the manifests in FILE and prints each error as
"FILE: path: reason". MGO_LOG_LEVEL=debug|info|warn|error sets how much the library logs (default
warn). Exit status: 0 valid, 1 invalid, 2 usage, file, load or library error.

As a module it offers the Mgo class:

    with Mgo() as mgo:
        status, result = mgo.validate(open("cluster.yaml").read())
"""

import ctypes
import json
import os
import sys
import time

MGO_ABI_VERSION = 1

MGO_OK = 0
MGO_EINVAL = -1

MGO_LOG_ERROR = 0
MGO_LOG_WARN = 1
MGO_LOG_INFO = 2
MGO_LOG_DEBUG = 3
LOG_LEVEL_NAMES = ("error", "warn", "info", "debug")

# Callback types of struct mgo_host (include/mgo/mgo.h), in the header's order.
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t)
NOW_MS_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p)
RESOLVE_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.c_int64, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.POINTER(ctypes.c_size_t))
SECRET_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                             ctypes.c_char_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_size_t,
                             ctypes.POINTER(ctypes.c_size_t))
ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
REALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class MgoHostTable(ctypes.Structure):
    """struct mgo_host, field for field. Unset callbacks stay NULL (the library's default)."""

    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("abi_version", ctypes.c_uint32),
        ("user", ctypes.c_void_p),
        ("log", LOG_FN),
        ("now_ms", NOW_MS_FN),
        ("resolve", RESOLVE_FN),
        ("secret", SECRET_FN),
        ("alloc", ALLOC_FN),
        ("realloc", REALLOC_FN),
        ("free", FREE_FN),
        ("log_level", ctypes.c_int32),
        ("reserved0", ctypes.c_uint32),
    ]


class MgoError(Exception):
    """A failed library call; code is the MGO_E* status (None when the library did not load)."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def load_library(path=None):
    """dlopen libmgo, check its ABI version and declare the prototypes this module uses."""
    path = path or os.environ.get("MGO_LIBRARY") or "libmgo.so.1"
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise MgoError(f"cannot load {path}: {e}") from None
    lib.mgo_abi_version.argtypes = []
    lib.mgo_abi_version.restype = ctypes.c_uint32
    abi = lib.mgo_abi_version()
    if abi != MGO_ABI_VERSION:
        raise MgoError(f"{path} has ABI version {abi}, this host needs {MGO_ABI_VERSION}")
    lib.mgo_strerror.argtypes = [ctypes.c_int32]
    lib.mgo_strerror.restype = ctypes.c_char_p
    lib.mgo_free.argtypes = [ctypes.c_void_p]
    lib.mgo_free.restype = None
    lib.mgo_open.argtypes = [ctypes.POINTER(MgoHostTable), ctypes.POINTER(ctypes.c_void_p)]
    lib.mgo_open.restype = ctypes.c_int32
    lib.mgo_close.argtypes = [ctypes.c_void_p]
    lib.mgo_close.restype = None
    # The result is declared as void * (not char *) so that the pointer can be given to mgo_free.
    lib.mgo_validate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                 ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t)]
    lib.mgo_validate.restype = ctypes.c_int32
    return lib


def _print_log(level, message):
    name = LOG_LEVEL_NAMES[level] if 0 <= level < len(LOG_LEVEL_NAMES) else "info"
    print(f"mgo: {name}: {message}", file=sys.stderr)


class Mgo:
    """One library handle. Not thread-safe: use it from one thread at a time.

    library is a path (default $MGO_LIBRARY, then "libmgo.so.1") or a CDLL from load_library();
    log_level is the most detailed MGO_LOG_* level the library passes to the log callback;
    log(level, message) receives the library's log lines (default: print to stderr);
    allocator, if given, is an object with alloc(size), realloc(ptr, size) and free(ptr) that the
    library uses for its own memory (pointers are ints, NULL is None or 0).
    """

    def __init__(self, library=None, log_level=MGO_LOG_WARN, log=None, allocator=None):
        self.lib = library if isinstance(library, ctypes.CDLL) else load_library(library)
        self._log = log or _print_log
        self._plugin = None
        # C keeps pointers to these callbacks until mgo_close() (mgo_free() may also use the
        # allocator later): they live on the instance so that they are not garbage-collected.
        self._callbacks = [LOG_FN(self._on_log), NOW_MS_FN(self._on_now_ms)]
        host = MgoHostTable(struct_size=ctypes.sizeof(MgoHostTable),
                            abi_version=MGO_ABI_VERSION, user=None,
                            log=self._callbacks[0], now_ms=self._callbacks[1],
                            log_level=log_level)
        if allocator is not None:
            self._callbacks += [ALLOC_FN(lambda user, size: allocator.alloc(size)),
                                REALLOC_FN(lambda user, ptr, size: allocator.realloc(ptr, size)),
                                FREE_FN(lambda user, ptr: allocator.free(ptr))]
            host.alloc, host.realloc, host.free = self._callbacks[2:]
        plugin = ctypes.c_void_p()
        status = self.lib.mgo_open(ctypes.byref(host), ctypes.byref(plugin))
        if status != MGO_OK:
            raise MgoError(f"mgo_open: {self.strerror(status)}", status)
        self._plugin = plugin

    def _on_log(self, user, level, msg, length):
        self._log(level, ctypes.string_at(msg, length).decode("utf-8", "replace"))

    def _on_now_ms(self, user):
        return time.time_ns() // 1_000_000

    def strerror(self, status):
        return self.lib.mgo_strerror(status).decode()

    def validate(self, manifests, namespace=None):
        """Validate YAML/JSON text, or a list of {"source", "text"} dicts.

        Returns (status, result): MGO_OK or MGO_EINVAL and the parsed result document. Raises
        MgoError when the library returned no document.
        """
        if self._plugin is None:
            raise MgoError("the handle is closed")
        request = {"manifests": manifests}
        if namespace is not None:
            request["namespace"] = namespace
        data = json.dumps(request).encode()
        result, result_len = ctypes.c_void_p(), ctypes.c_size_t()
        status = self.lib.mgo_validate(self._plugin, data, len(data), ctypes.byref(result),
                                       ctypes.byref(result_len))
        if not result:
            raise MgoError(f"mgo_validate: {self.strerror(status)}", status)
        try:
            text = ctypes.string_at(result, result_len.value)
        finally:
            self.lib.mgo_free(result)
        return status, json.loads(text)

    def close(self):
        if self._plugin is not None:
            self.lib.mgo_close(self._plugin)
            self._plugin = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def print_findings(result, file):
    """Print errors as "SOURCE: path: reason" (stdout) and warnings to stderr; count the errors."""
    errors = 0
    for obj in result.get("objects", []):
        source = obj.get("source") or file
        for kind, out in (("errors", sys.stdout), ("warnings", sys.stderr)):
            for finding in obj.get(kind, []):
                path = f"{finding['path']}: " if finding.get("path") else ""
                warning = "warning: " if kind == "warnings" else ""
                print(f"{source}: {path}{warning}{finding.get('reason', '')}", file=out)
                errors += kind == "errors"
    return errors


def main(argv):
    usage = ("usage: mgo_host.py FILE [LIBRARY]\n"
             "Validate the manifests in FILE with libmgo (LIBRARY, else $MGO_LIBRARY, else\n"
             "libmgo.so.1). Exit status: 0 valid, 1 invalid, 2 usage, file or library error.")
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(usage)
        return 0
    if not 2 <= len(argv) <= 3 or not argv[1]:
        print(usage, file=sys.stderr)
        return 2
    file, library = argv[1], (argv[2] if len(argv) == 3 else None)
    level = os.environ.get("MGO_LOG_LEVEL", "warn")
    log_level = LOG_LEVEL_NAMES.index(level) if level in LOG_LEVEL_NAMES else MGO_LOG_WARN
    try:
        with Mgo(library, log_level=log_level) as mgo:
            try:
                with open(file, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                print(f"host: cannot read {file}: {getattr(e, 'strerror', None) or e}",
                      file=sys.stderr)
                return 2
            status, result = mgo.validate([{"source": file, "text": text}])
    except MgoError as e:
        print(f"host: {e}", file=sys.stderr)
        return 2

    errors = print_findings(result, file)
    message = (result.get("error") or {}).get("message") or mgo.strerror(status)
    if status == MGO_OK:
        print(f"{file}: valid")
        return 0
    if status == MGO_EINVAL:
        if errors == 0:  # the request itself was rejected
            print(f"host: {message}", file=sys.stderr)
        print(f"{file}: {errors} error{'' if errors == 1 else 's'}")
        return 1
    print(f"host: mgo_validate: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
