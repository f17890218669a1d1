package main

// The host callbacks, exported to C. A file with //export directives may only declare C
// things in its preamble; the trampolines that call these functions are defined in mgo.go.

// #include <stddef.h>
// #include <stdint.h>
import "C"

import "runtime/cgo"

//export goMgoLog
func goMgoLog(user C.uintptr_t, level C.int32_t, msg *C.char, n C.size_t) {
	m, ok := cgo.Handle(user).Value().(*Mgo)
	if !ok {
		return
	}
	m.opts.Log(int(level), C.GoStringN(msg, C.int(n)))
}

//export goMgoNowMs
func goMgoNowMs(user C.uintptr_t) C.int64_t {
	m, ok := cgo.Handle(user).Value().(*Mgo)
	if !ok {
		return 0
	}
	return C.int64_t(m.opts.Now().UnixMilli())
}
