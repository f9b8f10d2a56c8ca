"""pytest-benchmark: a child's stdout read by the parent (stdout throughput).

    pytest benchmarks/bench_stdout.py                       # timed, one table
    pytest benchmarks/bench_stdout.py --benchmark-disable   # each body once (CI)

compare's stdout_data workload at 8 MiB instead of 1 GiB: childproc's
``'data'`` listener, subprocess's read(1 MiB) loop, asyncio's (and uvloop's)
StreamReader.read.  Every op checks that exactly the bytes `head` wrote
arrived; no test asserts a time.
"""

from __future__ import annotations

import pytest

import pyops
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

SIZE = 8 << 20
ARGS = [str(SIZE), "head", "-c", str(SIZE), "/dev/zero"]  # EXPECTED PROGRAM ARGS
GROUP = "stdout of head -c 8 MiB /dev/zero into Python"


@pytest.mark.benchmark(group=GROUP)
def test_childproc_data(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_data, ARGS)  # raises unless 'data' delivered SIZE bytes
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_childproc_data_content(benchmark):
    cp = need_childproc()

    def collect():
        chunks = []
        child = cp.spawn("head", ["-c", str(SIZE), "/dev/zero"])
        child.stdout.on("data", chunks.append)
        assert child.wait() == 0
        return b"".join(chunks)

    data = benchmark(collect)
    assert len(data) == SIZE
    assert data.count(0) == SIZE


@pytest.mark.benchmark(group=GROUP)
def test_subprocess_read(benchmark, make_op):
    op = make_op(pyops.subprocess_read, ARGS)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_asyncio_read(benchmark, make_op):
    op = make_op(pyops.asyncio_read, ARGS)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_uvloop_read(benchmark, make_op):
    pytest.importorskip("uvloop")
    op = make_op(pyops.asyncio_read, ARGS, loop_kind="uvloop")
    assert status(benchmark(op)) == 0


def test_counting_op_notices_missing_bytes(make_op):
    # The op must fail when fewer bytes arrive than expected, or the
    # throughput figures could hide a short read.
    need_childproc()
    op = make_op(pyops.childproc_data, [str(SIZE + 1), "head", "-c", str(SIZE), "/dev/zero"])
    with pytest.raises(AssertionError, match="expected"):
        op()
