/*
 * Support for the statically linked private dependencies.
 *
 * Debian's libjansson.a is compiled as position-independent *executable* code, so its one
 * reference to libc's `stdin` (in json_loadf's "-" path) is a PC-relative relocation that a
 * shared object cannot resolve against libc. The library never reads standard input through
 * jansson; the link maps that reference to this hidden stand-in instead (CMakeLists.txt,
 * --defsym), which is NULL so that any accidental use fails inside jansson's argument checks.
 */
#include <stdio.h>

#include "core/core.h"

__attribute__((visibility("hidden"))) FILE *mgo_static_stdin_standin;
