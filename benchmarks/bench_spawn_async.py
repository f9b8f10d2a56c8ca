"""pytest-benchmark: spawn + exit of /bin/true, asynchronously (issue 3).

    pytest benchmarks/bench_spawn_async.py                       # timed, one table
    pytest benchmarks/bench_spawn_async.py --benchmark-disable   # each body once (CI)

The same ops as compare's spawn_async workload (pyops.py): childproc's
spawn() + wait() on the thread's private loop and ``await child`` on asyncio,
asyncio's create_subprocess_exec, and uvloop's when it is installed.  Each
test asserts the exit status, never a time.
"""

from __future__ import annotations

import shutil

import pytest

import pyops
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

TRUE = shutil.which("true", path="/bin:/usr/bin") or "/bin/true"
GROUP = "async spawn + exit of /bin/true"


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_wait(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_spawn_wait, [TRUE])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_wait_inherit(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_spawn_wait, [TRUE], stdio="inherit")
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_await(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_spawn_await, [TRUE])
    result = benchmark(op)
    assert status(result) == 0
    assert result[1] > 0  # the coroutine timed itself


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_events(benchmark):
    cp = need_childproc()

    def spawn_wait():
        seen = []
        child = cp.spawn(TRUE)
        child.on("exit", lambda code, signal: seen.append(("exit", code, signal)))
        child.on("close", lambda code, signal: seen.append(("close", code, signal)))
        child.wait()
        return seen

    assert benchmark(spawn_wait) == [("exit", 0, None), ("close", 0, None)]


@pytest.mark.benchmark(group=GROUP)
def test_asyncio_create_subprocess_exec(benchmark, make_op):
    op = make_op(pyops.asyncio_spawn, [TRUE])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_asyncio_create_subprocess_exec_pipes(benchmark, make_op):
    op = make_op(pyops.asyncio_spawn, [TRUE], pipes=True)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_uvloop_create_subprocess_exec(benchmark, make_op):
    pytest.importorskip("uvloop")
    op = make_op(pyops.asyncio_spawn, [TRUE], loop_kind="uvloop")
    assert status(benchmark(op)) == 0
