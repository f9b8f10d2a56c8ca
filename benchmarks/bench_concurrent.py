"""pytest-benchmark: many children at once (the concurrent_* workloads).

    pytest benchmarks/bench_concurrent.py                       # timed, one table
    pytest benchmarks/bench_concurrent.py --benchmark-disable   # each body once (CI)

compare runs 200 and 1000 `sleep 0.2`; here 50 `sleep 0.05`.  The tests
check that every child exited 0 and -- the concurrent bar, "no thread per child"
-- that childproc's parent did not grow a thread per child while they ran.
No test asserts a time.
"""

from __future__ import annotations

import asyncio

import pytest

import pyops
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

COUNT = 50
ARGS = [str(COUNT), "sleep", "0.05"]
GROUP = "50 concurrent sleep 0.05"


def _threads() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


@pytest.mark.benchmark(group=GROUP)
def test_childproc_private_loop(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_concurrent, ARGS)
    assert status(benchmark(op)) == 0  # the number of children that did not exit 0


@pytest.mark.benchmark(group=GROUP)
def test_childproc_asyncio(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_concurrent_await, ARGS)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_asyncio_create_subprocess_exec(benchmark, make_op):
    op = make_op(pyops.asyncio_concurrent, ARGS)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_uvloop_create_subprocess_exec(benchmark, make_op):
    pytest.importorskip("uvloop")
    op = make_op(pyops.asyncio_concurrent, ARGS, loop_kind="uvloop")
    assert status(benchmark(op)) == 0


def test_no_thread_per_child_private_loop():
    cp = need_childproc()
    before = _threads()
    children = [cp.spawn("sleep", ["0.2"], stdio="ignore") for _ in range(COUNT)]
    during = _threads()  # all children are still sleeping
    assert all(child.wait() == 0 for child in children)
    assert during - before < COUNT // 2, f"{during - before} more threads for {COUNT} children"


def test_no_thread_per_child_asyncio():
    cp = need_childproc()

    async def main():
        before = _threads()
        children = [cp.spawn("sleep", ["0.2"], stdio="ignore") for _ in range(COUNT)]
        await asyncio.sleep(0.05)
        during = _threads()
        codes = await asyncio.gather(*children)
        return before, during, codes

    before, during, codes = asyncio.run(main())
    assert codes == [0] * COUNT
    assert during - before < COUNT // 2, f"{during - before} more threads for {COUNT} children"
