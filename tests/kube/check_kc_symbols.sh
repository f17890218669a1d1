#!/usr/bin/env bash
# check_kc_symbols.sh ARCHIVE: fail when the kc client library (libmgo_kube_client.a) calls a C
# function that is not safe with threads (one static buffer for every caller: strerror, strtok,
# localtime, ...) or that shared/conventions/c-style.md bans (strcpy, sprintf, atoi, ...). The
# library's threads rule (kc.h): clients share nothing, and the configuration, status, path and
# backoff functions may run on any thread. Reads the archive's undefined symbols with nm.
set -euo pipefail

archive=${1:?usage: check_kc_symbols.sh ARCHIVE}
[ -r "$archive" ] || {
    echo "FAIL: cannot read $archive" >&2
    exit 1
}

banned=(
    # thread-unsafe: a static buffer or static state shared by every caller
    strerror strtok localtime gmtime ctime asctime rand srand random strsignal readdir
    getpwnam getpwuid getgrnam getgrgid getlogin ttyname tmpnam tempnam mktemp ptsname
    gethostbyname gethostbyaddr inet_ntoa ecvt fcvt setlocale
    # a library must not change the process's environment under other threads
    setenv putenv unsetenv clearenv
    # banned by the style rules
    strcpy strcat sprintf vsprintf gets atoi atol
)

undefined=$(nm -u --format=posix "$archive" | awk 'NF >= 2 { print $1 }' | sort -u)
found=0
for s in "${banned[@]}"; do
    if grep -qx -- "$s" <<<"$undefined"; then
        users=$(nm -A -u --format=posix "$archive" | awk -v s="$s" '$2 == s { print $1 }' |
            sed 's/:$//' | tr '\n' ' ')
        echo "FAIL: $s is called by $users" >&2
        found=1
    fi
done
[ $found -eq 0 ] || exit 1
echo "ok: none of ${#banned[@]} banned or thread-unsafe functions is called ($(wc -l <<<"$undefined") undefined symbols checked)"
