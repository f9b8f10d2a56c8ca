"""The cffi builder: reads csrc/childproc.h for the cdef and compiles csrc/*.c.

It lives beside the C sources, outside the package, so the wheel carries
runtime files only; setup.py names it in ``cffi_modules``.

cffi's cdef parser does not run the C preprocessor, so the header keeps every
declaration plain and the builder drops the preprocessor lines before handing
it over.  The same header is #included by the C sources, so what Python sees
and what C implements cannot drift apart.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

from cffi import FFI

_CSRC = pathlib.Path(__file__).resolve().parent

if sys.platform == "win32":
    _SOURCES = ["spawn_win32.c", "pipe_win32.c", "run_sync_win32.c"]
    _LIBS: list[str] = []
else:
    _SOURCES = ["spawn_posix.c", "pipe_posix.c", "run_sync.c"]
    # dlsym lives in libdl before glibc 2.34 (manylinux wheels build there).
    _LIBS = ["dl", "pthread"] if sys.platform.startswith("linux") else []


_MACROS: list[tuple[str, str | None]] = [("_GNU_SOURCE", "1")] if sys.platform.startswith("linux") else []
if os.environ.get("CHILDPROC_PORTABLE_POSIX") == "1":
    # A test build: the C core without Linux's extras (see cp_internal.h),
    # for scripts/portable_posix.sh.  Never what a wheel is built with.
    _MACROS.append(("CP_PORTABLE_POSIX", "1"))


def _cdef_text() -> str:
    header = (_CSRC / "childproc.h").read_text()
    return re.sub(r"^\s*#.*$", "", header, flags=re.MULTILINE)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
# The sync loop's way back into Python when a signal interrupts a wait
# (cp_sync_opts.interrupted): cffi's callback takes the GIL, so the
# interpreter runs its pending signal handlers there.
ffibuilder.cdef('extern "Python" int cp_py_sync_interrupted(void);')
# ... and when the child runs, for die_with_parent's warden (cp_sync_opts.spawned).
ffibuilder.cdef('extern "Python" void cp_py_sync_spawned(int);')
ffibuilder.set_source(
    "childproc._core",
    '#include "childproc.h"\n',
    # setuptools insists on paths relative to setup.py's folder, which is the
    # working directory when pip builds; running this file directly works too.
    sources=[os.path.relpath(_CSRC / name) for name in _SOURCES],
    include_dirs=[os.path.relpath(_CSRC)],
    libraries=_LIBS,
    define_macros=_MACROS,
    extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    py_limited_api=True,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
