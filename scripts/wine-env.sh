# Shared by scripts/windows-stage.sh and csrc/tests/run_win32_tests.sh:
# finding (or installing) wine64 and mingw-w64, and running wine quietly.
# Source it; it defines functions and sets nothing else.

# The wine64 loader: Debian 12 keeps it out of PATH.
cp_find_wine() {
    if command -v wine64 >/dev/null 2>&1; then
        command -v wine64
    elif [ -x /usr/lib/wine/wine64 ]; then
        echo /usr/lib/wine/wine64
    elif command -v wine >/dev/null 2>&1; then
        command -v wine
    fi
}

cp_find_wineserver() {
    if [ -x /usr/lib/wine/wineserver ]; then
        echo /usr/lib/wine/wineserver
    elif command -v wineserver >/dev/null 2>&1; then
        command -v wineserver
    fi
}

# Install gcc-mingw-w64-x86-64 and wine64 from Debian when either is
# missing and we are root; returns non-zero when they are still missing.
cp_ensure_wine_tools() {
    if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || [ -z "$(cp_find_wine)" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing gcc-mingw-w64-x86-64 and wine64 ..." >&2
            DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                gcc-mingw-w64-x86-64 wine64 >/dev/null
        fi
    fi
    if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
        echo "error: x86_64-w64-mingw32-gcc not found (Debian: apt-get install gcc-mingw-w64-x86-64)" >&2
        return 1
    fi
    if [ -z "$(cp_find_wine)" ]; then
        echo "error: wine64 not found (Debian: apt-get install wine64)" >&2
        return 1
    fi
}

# Quiet wine: no debug channels, no Mono/Gecko install prompts, no crash
# debugger window waiting for a click that never comes.
cp_wine_quiet() {
    export WINEDEBUG="${WINEDEBUG:--all}"
    export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=;winedbg.exe=d}"
}

# The mingw flags that link against the UCRT (CPython's C runtime) instead
# of msvcrt.dll: with msvcrt the core would have an fd table of its own, so
# a CRT fd from CPython would be EBADF in the core and back.  Writes the
# specs file to $1 once.
cp_ucrt_specs() {
    if [ ! -s "$1" ]; then
        x86_64-w64-mingw32-gcc -dumpspecs | sed 's/-lmsvcrt/-lucrt/g' >"$1.tmp"
        mv "$1.tmp" "$1"
    fi
}
