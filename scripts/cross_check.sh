#!/usr/bin/env bash
# Cross-compile check of the C core for macOS, from Linux: the POSIX C files
# and the cffi-generated module compiled and linked for x86_64 macOS 10.15
# and arm64 macOS 11.0 with zig's clang (PyPI's `ziglang`, which carries
# macOS's libc headers and libSystem stubs).  Every warning is an error:
# the ones that matter most are "only available on macOS N or newer" (such
# a call fails to load on an older macOS), and the deployment targets here
# are the ones .github/workflows/wheels.yml builds with.  It then checks
# that each module is a Mach-O bundle for its CPU and minimum OS, and that
# nothing but Python's own symbols is left for the interpreter to supply.
# What it cannot tell: whether the code runs on macOS (the wheels workflow's
# macOS jobs run the suite there).
#
#   bash scripts/cross_check.sh        # last line: "N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=.venv-cross
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "ziglang>=0.13" "cffi>=1.17"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

# The module's C source, exactly as a wheel build generates it.
"$venv/bin/python" - "$build/_core.c" <<'PY'
import runpy, sys
builder = runpy.run_path("csrc/build_cffi.py")["ffibuilder"]
builder.emit_c_code(sys.argv[1])
PY
pyinc=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')

zigcc() { "$venv/bin/python" -m ziglang cc "$@"; }
cflags=(-O2 -Wall -Wextra -Wno-unused-parameter -Werror
        -Werror=unguarded-availability -Werror=unguarded-availability-new
        -DPy_LIMITED_API=0x030A0000 -Icsrc -I"$pyinc")
passed=0 failed=0
# CP_MACOS_TARGETS overrides the list (x86_64-macos.10.9 shows a failure).
for target in ${CP_MACOS_TARGETS:-x86_64-macos.10.15 aarch64-macos.11.0}; do
    out="$build/$target"
    mkdir -p "$out"
    ok=1
    for src in csrc/spawn_posix.c csrc/pipe_posix.c csrc/run_sync.c; do
        zigcc -target "$target" "${cflags[@]}" -c "$src" -o "$out/$(basename "$src" .c).o" || ok=0
    done
    # cffi's generated code is not ours to make warning-free; it is built
    # as setuptools builds it, with warnings shown.
    zigcc -target "$target" -O2 -DPy_LIMITED_API=0x030A0000 -Icsrc -I"$pyinc" \
        -c "$build/_core.c" -o "$out/_core.o" || ok=0
    if [ $ok = 1 ]; then
        # As setuptools links an extension on macOS: a bundle whose Python
        # symbols are bound when the interpreter loads it.
        zigcc -target "$target" -shared -Wl,-undefined,dynamic_lookup \
            -o "$out/_core.abi3.so" "$out"/*.o || ok=0
        # Linked again with undefined symbols refused: the linker names each
        # one, and every one must be Python's.
        zigcc -target "$target" -shared -o "$out/strict.so" "$out"/*.o 2>"$out/undefined.txt" || true
        "$venv/bin/python" - "$target" "$out/_core.abi3.so" "$out/undefined.txt" <<'PY' || ok=0
import re, struct, sys
target, path, undefined = sys.argv[1:]
data = open(path, "rb").read()
magic, cputype, _, filetype, ncmds = struct.unpack_from("<IiiII", data)
want_cpu = {"x86_64": 0x01000007, "aarch64": 0x0100000C}[target.split("-")[0]]
assert magic == 0xFEEDFACF, f"not a 64-bit Mach-O: {magic:#x}"
assert cputype == want_cpu, f"CPU type {cputype:#x}"
assert filetype in (6, 8), f"file type {filetype}"  # MH_DYLIB or MH_BUNDLE
minos = None
off = 32
for _ in range(ncmds):
    cmd, size = struct.unpack_from("<II", data, off)
    if cmd == 0x32:  # LC_BUILD_VERSION: platform, minos (xxxx.yy.zz)
        v = struct.unpack_from("<I", data, off + 12)[0]
        minos = f"{v >> 16}.{(v >> 8) & 0xFF}"
    elif cmd == 0x24:  # LC_VERSION_MIN_MACOSX
        v = struct.unpack_from("<I", data, off + 8)[0]
        minos = f"{v >> 16}.{(v >> 8) & 0xFF}"
    off += size
assert minos == target.split(".", 1)[1], f"minimum macOS {minos}"
names = set(re.findall(r"undefined symbol: (\S+)", open(undefined).read()))
foreign = sorted(n for n in names if not re.match(r"_+Py", n))
assert names, "the strict link reported no undefined symbol: the check saw nothing"
assert not foreign, f"undefined symbols that are not Python's: {foreign}"
print(f"{target}: Mach-O {'bundle' if filetype == 8 else 'dylib'}, minimum macOS {minos}, "
      f"{len(names)} undefined symbols, all Python's")
PY
    fi
    if [ $ok = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $target" >&2; fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
