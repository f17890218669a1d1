// Package main is a minimal mgo host in Go: it loads libmgo.so.1 at run time with dlopen (cgo,
// no link-time dependency on the library), validates one manifest file and prints each error as
// "FILE: path: reason".
//
// Go cannot call C function pointers, so the preamble below holds small C shims that call
// through the pointers bound with dlsym. This file defines C functions, so it has no //export
// directives; the Go callbacks the shims call are exported from callbacks.go.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mgo/mgo.h>

// Exported from Go (callbacks.go). `user` is a runtime/cgo.Handle.
extern void goMgoLog(uintptr_t user, int32_t level, char *msg, size_t len);
extern int64_t goMgoNowMs(uintptr_t user);

typedef struct mgo_api {
	void *dl;
	uint32_t (*abi_version)(void);
	const char *(*strerror)(int32_t code);
	void (*free)(void *ptr);
	int32_t (*open)(const mgo_host *host, mgo_plugin **ret_plugin);
	void (*close)(mgo_plugin *plugin);
	int32_t (*validate)(mgo_plugin *plugin, const char *request, size_t request_len,
	                    char **ret_result, size_t *ret_result_len);
} mgo_api;

static void mgo_log_trampoline(void *user, int32_t level, const char *msg, size_t len)
{
	goMgoLog((uintptr_t)user, level, (char *)msg, len);
}

static int64_t mgo_now_ms_trampoline(void *user)
{
	return goMgoNowMs((uintptr_t)user);
}

static int mgo_api_bind(mgo_api *api, const char *name, void *fn, size_t fn_size, char *err,
                        size_t err_size)
{
	void *sym = dlsym(api->dl, name);
	if (!sym) {
		snprintf(err, err_size, "missing symbol %s", name);
		return -1;
	}
	memcpy(fn, &sym, fn_size); // POSIX: a dlsym result converts to a function pointer
	return 0;
}

#define MGO_API_BIND(api, field, name, err, err_size) \
	mgo_api_bind(api, name, &(api)->field, sizeof((api)->field), err, err_size)

// dlopen the library and check its ABI version before binding anything else.
static int mgo_api_load(mgo_api *api, const char *path, char *err, size_t err_size)
{
	memset(api, 0, sizeof(*api));
	api->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!api->dl) {
		snprintf(err, err_size, "%s", dlerror());
		return -1;
	}
	if (MGO_API_BIND(api, abi_version, "mgo_abi_version", err, err_size))
		goto fail;
	if (api->abi_version() != MGO_ABI_VERSION) {
		snprintf(err, err_size, "ABI version %u, this host needs %d",
		         (unsigned)api->abi_version(), MGO_ABI_VERSION);
		goto fail;
	}
	if (MGO_API_BIND(api, strerror, "mgo_strerror", err, err_size) ||
	    MGO_API_BIND(api, free, "mgo_free", err, err_size) ||
	    MGO_API_BIND(api, open, "mgo_open", err, err_size) ||
	    MGO_API_BIND(api, close, "mgo_close", err, err_size) ||
	    MGO_API_BIND(api, validate, "mgo_validate", err, err_size))
		goto fail;
	return 0;
fail:
	dlclose(api->dl);
	api->dl = NULL;
	return -1;
}

static void mgo_api_unload(mgo_api *api)
{
	if (api->dl)
		dlclose(api->dl);
	api->dl = NULL;
}

static const char *mgo_api_strerror(mgo_api *api, int32_t code)
{
	return api->strerror(code);
}

static void mgo_api_free(mgo_api *api, char *ptr)
{
	api->free(ptr);
}

// The host table lives on the C stack: mgo_open copies it.
static int32_t mgo_api_open(mgo_api *api, uintptr_t user, int32_t log_level, mgo_plugin **ret)
{
	mgo_host host;
	memset(&host, 0, sizeof(host));
	host.struct_size = sizeof(host);
	host.abi_version = MGO_ABI_VERSION;
	host.user = (void *)user;
	host.log = mgo_log_trampoline;
	host.now_ms = mgo_now_ms_trampoline;
	host.log_level = log_level;
	return api->open(&host, ret);
}

static void mgo_api_close(mgo_api *api, mgo_plugin *plugin)
{
	api->close(plugin);
}

static int32_t mgo_api_validate(mgo_api *api, mgo_plugin *plugin, const char *request,
                                size_t request_len, char **ret_result, size_t *ret_result_len)
{
	return api->validate(plugin, request, request_len, ret_result, ret_result_len);
}
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Status codes and log levels of include/mgo/mgo.h.
const (
	StatusOK      = 0
	StatusInvalid = -1
	StatusNoMem   = -4

	LogError = 0
	LogWarn  = 1
	LogInfo  = 2
	LogDebug = 3
)

// Options configure Open. Zero values take the defaults.
type Options struct {
	Library  string                      // path of libmgo; default $MGO_LIBRARY, then "libmgo.so.1"
	LogLevel int                         // most detailed LogX level passed to Log (default LogError)
	Log      func(level int, msg string) // default: print to stderr
	Now      func() time.Time            // default: time.Now
}

// Mgo is one library handle. Use it from one goroutine at a time.
type Mgo struct {
	api    *C.mgo_api // C memory
	plugin *C.mgo_plugin
	handle cgo.Handle // passed as `user`: C must not keep Go pointers
	opts   Options
}

// Error is a failed library call.
type Error struct {
	Code    int32
	Message string
}

func (e *Error) Error() string { return e.Message }

// Finding is one error or warning of a result document.
type Finding struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Object is the verdict on one manifest document.
type Object struct {
	Document  int       `json:"document"`
	Source    string    `json:"source"` // "" when null
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Namespace string    `json:"namespace"`
	Valid     bool      `json:"valid"`
	Skipped   bool      `json:"skipped"`
	Errors    []Finding `json:"errors"`
	Warnings  []Finding `json:"warnings"`
}

// Result is the document returned by mgo_validate.
type Result struct {
	Valid   bool     `json:"valid"`
	Objects []Object `json:"objects"`
	Error   *struct {
		Code    int32  `json:"code"`
		Class   int32  `json:"class"`
		Message string `json:"message"`
	} `json:"error"`
}

// Manifest is one named manifest text of a validate request.
type Manifest struct {
	Source string `json:"source"`
	Text   string `json:"text"`
}

// Open loads the library, checks its ABI version and opens a handle.
func Open(opts Options) (*Mgo, error) {
	if opts.Library == "" {
		opts.Library = os.Getenv("MGO_LIBRARY")
	}
	if opts.Library == "" {
		opts.Library = "libmgo.so.1"
	}
	if opts.Log == nil {
		opts.Log = func(level int, msg string) {
			names := []string{"error", "warn", "info", "debug"}
			name := "info"
			if level >= 0 && level < len(names) {
				name = names[level]
			}
			fmt.Fprintf(os.Stderr, "mgo: %s: %s\n", name, msg)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}

	m := &Mgo{api: (*C.mgo_api)(C.calloc(1, C.sizeof_mgo_api)), opts: opts}
	if m.api == nil {
		return nil, errors.New("out of memory")
	}
	path := C.CString(opts.Library)
	defer C.free(unsafe.Pointer(path))
	var errbuf [512]C.char
	if C.mgo_api_load(m.api, path, &errbuf[0], C.size_t(len(errbuf))) != 0 {
		C.free(unsafe.Pointer(m.api))
		return nil, fmt.Errorf("cannot load %s: %s", opts.Library, C.GoString(&errbuf[0]))
	}
	m.handle = cgo.NewHandle(m)
	var plugin *C.mgo_plugin
	rc := C.mgo_api_open(m.api, C.uintptr_t(m.handle), C.int32_t(opts.LogLevel), &plugin)
	if rc != StatusOK {
		err := &Error{int32(rc), "mgo_open: " + m.Strerror(int32(rc))}
		m.handle.Delete()
		C.mgo_api_unload(m.api)
		C.free(unsafe.Pointer(m.api))
		return nil, err
	}
	m.plugin = plugin
	return m, nil
}

// Strerror is mgo_strerror.
func (m *Mgo) Strerror(code int32) string {
	return C.GoString(C.mgo_api_strerror(m.api, C.int32_t(code)))
}

// Validate runs mgo_validate on the given manifests and returns the status (StatusOK or
// StatusInvalid) with the parsed result. It fails with *Error when no document came back.
func (m *Mgo) Validate(manifests []Manifest) (int32, *Result, error) {
	if m.plugin == nil {
		return 0, nil, errors.New("the handle is closed")
	}
	request, err := json.Marshal(map[string]any{"manifests": manifests})
	if err != nil {
		return 0, nil, err
	}
	var out *C.char
	var outLen C.size_t
	// The request bytes hold no Go pointers, so C may read them during the call.
	rc := int32(C.mgo_api_validate(m.api, m.plugin, (*C.char)(unsafe.Pointer(&request[0])),
		C.size_t(len(request)), &out, &outLen))
	if out == nil {
		return rc, nil, &Error{rc, "mgo_validate: " + m.Strerror(rc)}
	}
	doc := C.GoBytes(unsafe.Pointer(out), C.int(outLen))
	C.mgo_api_free(m.api, out)
	var result Result
	if err := json.Unmarshal(doc, &result); err != nil {
		return rc, nil, fmt.Errorf("mgo_validate: unreadable result: %w", err)
	}
	return rc, &result, nil
}

// Close closes the handle and unloads the library. It is safe to call twice.
func (m *Mgo) Close() {
	if m.api == nil {
		return
	}
	C.mgo_api_close(m.api, m.plugin) // NULL is accepted
	m.plugin = nil
	m.handle.Delete()
	C.mgo_api_unload(m.api)
	C.free(unsafe.Pointer(m.api))
	m.api = nil
}
