#!/usr/bin/env bash
# A portable-POSIX run: a SIMULATION of macOS's code paths on Linux, not
# macOS.  Both halves of what is Linux-only are taken away:
#  - the C core is built with CHILDPROC_PORTABLE_POSIX=1 (csrc/cp_internal.h):
#    no pidfds, no clone child, no clone3/close_range/pidfd_spawn, no splice
#    or mremap; posix_spawn, vfork with an error pipe, pipe()+FD_CLOEXEC and
#    a read/write pump instead, as on macOS;
#  - scripts/portable_posix/sitecustomize.py hides the Python names macOS's
#    CPython lacks (os.pipe2, os.waitid, select.epoll, ...) in this process
#    and in every Python child, and stands in for select.kqueue's exit watch.
# sys.platform, the kernel and libc stay Linux's, so this catches Python and
# C paths, not macOS itself; the macOS jobs of .github/workflows are the
# final word.
#
#   bash scripts/portable_posix.sh              # the subset below
#   bash scripts/portable_posix.sh tests        # the whole suite
#
# Builds into .venv-portable from a copy of the tree (setuptools would reuse
# an in-tree build of the normal core).  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=.venv-portable
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
git ls-files -z -co --exclude-standard -- csrc src setup.py pyproject.toml README.md MANIFEST.in LICENSE \
    | xargs -0 cp --parents -t "$copy"
CHILDPROC_PORTABLE_POSIX=1 "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    --force-reinstall --no-deps "$copy"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$copy[test]"

export CHILDPROC_PORTABLE_POSIX_SIMULATION=1
export PYTHONPATH="$PWD/scripts/portable_posix${PYTHONPATH:+:$PYTHONPATH}"
# macOS's default soft fd limit is 256; the vfork child closes every fd up
# to the limit, as the core does there.
ulimit -Sn 1024

# Refuse to report a pass for a run that is not the simulation.
"$venv/bin/python" - <<'PY'
import os, select
import childproc as cp
from childproc._spawn import native as _native, options as _options
assert not hasattr(os, "pipe2") and not hasattr(select, "epoll") and hasattr(select, "kqueue"), "names not hidden"
raw = _native.spawn(_options.normalize_spawn("spawn", "true", None, None, {"stdio": "ignore"}, sync=False), {})
assert raw.pidfd == -1, "the C core made a pidfd: not the portable build"
os.waitpid(raw.pid, 0)
print("portable-POSIX simulation: Linux-only Python names hidden, C core without Linux extras")
PY

if [ $# -eq 0 ]; then
    # The suites whose code paths differ between Linux and macOS, about 90 s:
    # process creation on both POSIX paths, failed spawns, exec errors and cwd (spawn, spawn_failure,
    # spawn_paths, reliability); the poll(2) loop and the kqueue exit watch
    # (spawn, exec, spawn_python with asyncio); pipes from os.pipe(), the
    # read/write pump and exec's collector without mremap (streams,
    # streams_drain, spawn_streams, exec_collect); the IPC channel, fork()
    # handling and orphan reaping (ipc, fork_copy, orphans).  Left out: the
    # validation, emitter, encoding and sync-option suites (the same Python
    # on every POSIX system), ipc_cross (Node peers over the same channel
    # code), and test_no_pidfd (it needs the pidfds this build has not).
    set -- tests/test_spawn.py tests/test_spawn_paths.py tests/test_spawn_failure.py tests/test_reliability.py \
        tests/test_exec.py tests/test_spawn_python.py tests/test_streams.py tests/test_streams_drain.py \
        tests/test_spawn_streams.py tests/test_exec_collect.py tests/test_ipc.py tests/test_fork_copy.py \
        tests/test_orphans.py
fi
# Two cases are about Linux's own paths, not portable ones: the clone
# path's kept stacks, and the signal state Node's child shows, which glibc's
# posix_spawn (this build's default path on Linux) does not give (its two
# internal signals stay ignored; macOS has none such).
exec "$venv/bin/python" -m pytest -p no:cacheprovider -q \
    --deselect tests/test_spawn_paths.py::test_concurrent_spawns_get_their_own_stacks_and_keep_only_a_few \
    --deselect tests/test_spawn_paths.py::test_the_child_starts_with_default_dispositions_and_an_empty_mask \
    "$@"
