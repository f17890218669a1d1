#!/usr/bin/env bash
# Install mgo into a temporary prefix, then build and run a consumer through find_package(mgo)
# and through pkg-config; check the SONAME symlinks and the installed header.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$MGO_BINARY_DIR" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name libmgo.so.1 | head -n1)")
echo "installed into $prefix (libdir $libdir)"
test -L "$libdir/libmgo.so" && test "$(readlink "$libdir/libmgo.so")" = libmgo.so.1
test -f "$prefix/include/mgo/mgo.h"
test -x "$prefix/bin/mgo"

mkdir "$tmp/cm"
cp "$(dirname "$0")/consumer.c" "$tmp/cm/"
cp "$(dirname "$0")/CMakeLists.txt.in" "$tmp/cm/CMakeLists.txt"
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cm/build/consumer" >/dev/null
echo "ok find_package(mgo)"

PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
cc $(pkg-config --cflags mgo) "$(dirname "$0")/consumer.c" -o "$tmp/pc-consumer" $(pkg-config --libs mgo)
LD_LIBRARY_PATH=$libdir "$tmp/pc-consumer" >/dev/null
echo "ok pkg-config mgo"

# The installed mgo command finds the installed library by itself (../lib beside bin/).
env -u MGO_LIBRARY "$prefix/bin/mgo" version | grep -q "$prefix"
echo "ok installed mgo finds its library"
