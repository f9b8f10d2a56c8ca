#!/usr/bin/env bash
# Cross-compile the Windows core (csrc/*_win32.c) and its C tests with
# mingw-w64, then run them under wine64.
#
#   bash csrc/tests/run_win32_tests.sh            # every test
#   bash csrc/tests/run_win32_tests.sh quoting    # tests whose name has it
#
# Installs gcc-mingw-w64-x86-64 and wine64 (Debian packages) when they are
# missing and we are root (scripts/wine-env.sh, shared with the Windows
# Python stage, scripts/windows-stage.sh).  The last line is "N passed, N failed"; the exit
# status is non-zero when a test failed or nothing could run.
# Environment: CP_WIN32_BUILD (build dir), WINEPREFIX (default: a private
# one under /tmp; the first boot of a fresh prefix takes a while).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
csrc="$(dirname "$here")"
build="${CP_WIN32_BUILD:-${TMPDIR:-/tmp}/childproc-win32-build}"
cc=x86_64-w64-mingw32-gcc

# shellcheck source=../../scripts/wine-env.sh
. "$csrc/../scripts/wine-env.sh"
if ! cp_ensure_wine_tools; then
    echo "0 passed, 1 failed"
    exit 1
fi
wine="$(cp_find_wine)"

mkdir -p "$build"
cflags=(-O2 -g -Wall -Wextra -Wno-unused-parameter -I"$csrc" -static)
core=("$csrc/spawn_win32.c" "$csrc/pipe_win32.c" "$csrc/run_sync_win32.c")

# Every function childproc.h declares must exist in the Windows sources, or
# the cffi module will not link on Windows: link a program that takes the
# address of each (names read from the header, comments stripped).
python3 - "$csrc/childproc.h" >"$build/linkcheck.c" <<'PY'
import re, sys
text = re.sub(r"/\*.*?\*/", "", open(sys.argv[1]).read(), flags=re.S)
names = sorted(set(re.findall(r"\b(cp_\w+)\s*\(", text)))
print('#include "childproc.h"\n#include <stdio.h>\nint main(void) {')
for n in names:
    print('    printf("%%p\\n", (void *)%s);' % n)
print("    return 0;\n}")
PY
if ! "$cc" "${cflags[@]}" -o "$build/linkcheck.exe" "$build/linkcheck.c" "${core[@]}"; then
    echo "error: a function declared in childproc.h is missing from the Windows sources" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

"$cc" "${cflags[@]}" -municode -o "$build/cp_testchild.exe" \
    "$here/cp_testchild.c" "${core[@]}"
"$cc" "${cflags[@]}" -o "$build/test_win32.exe" \
    "$here/test_win32.c" "${core[@]}"

export WINEPREFIX="${WINEPREFIX:-${TMPDIR:-/tmp}/childproc-wineprefix-$(id -u)}"
cp_wine_quiet
if [ ! -d "$WINEPREFIX" ]; then
    echo "creating wine prefix $WINEPREFIX (first boot takes a while) ..." >&2
    "$wine" wineboot --init >/dev/null 2>&1 || true
fi

# Output goes through tr: the CRT writes \r\n, and the summary line must be
# exactly "N passed, N failed".
set +e
(cd "$build" && "$wine" ./test_win32.exe "$@" </dev/null) 2>&1 | tr -d '\r'
status=${PIPESTATUS[0]}
set -e
# No `wineserver -k` here: it would also end a concurrent run in the same
# prefix.  The tests reap what they start; the one grandchild left sleeping
# (timeout_grandchild) ends by itself within seconds, and then the server.
exit "$status"
