"""pytest-benchmark: exec capture (issue 4), childproc against the stdlib.

    pytest benchmarks/bench_exec.py                       # timed, one table per group
    pytest benchmarks/bench_exec.py --benchmark-disable   # each body once (CI)

compare captures 100 MiB and 1 KiB; here 4 MiB (bytes from /dev/zero,
text from `yes`) and 1 KiB.  Each op checks the captured length and type
(the pyops ops raise otherwise); a few tests also check the content.  No
test asserts a time.
"""

from __future__ import annotations

import pytest

import pyops
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

SIZE = 4 << 20
BYTES = [str(SIZE), f"head -c {SIZE} /dev/zero"]  # EXPECTED COMMAND
TEXT = [str(SIZE), f"yes | head -c {SIZE}"]
SMALL = ["1024", "head -c 1024 /dev/zero"]
BIG = "exec capture of 4 MiB"
ONE_K = "exec capture of 1 KiB"


@pytest.mark.benchmark(group=BIG)
@pytest.mark.parametrize("mode, args", [("bytes", BYTES), ("text", TEXT)])
def test_childproc_exec(benchmark, make_op, mode, args):
    need_childproc()
    op = make_op(pyops.childproc_exec, args, mode=mode)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=BIG)
@pytest.mark.parametrize("mode, args", [("bytes", BYTES), ("text", TEXT)])
def test_subprocess_run(benchmark, make_op, mode, args):
    op = make_op(pyops.subprocess_run_capture, args, mode=mode)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=BIG)
@pytest.mark.parametrize("mode, args", [("bytes", BYTES), ("text", TEXT)])
def test_subprocess_check_output(benchmark, make_op, mode, args):
    op = make_op(pyops.subprocess_check_output, args, mode=mode)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=BIG)
@pytest.mark.parametrize("mode, args", [("bytes", BYTES), ("text", TEXT)])
def test_asyncio_communicate(benchmark, make_op, mode, args):
    op = make_op(pyops.asyncio_communicate, args, mode=mode)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=BIG)
def test_childproc_exec_text_content(benchmark):
    cp = need_childproc()
    result = benchmark(lambda: cp.exec(TEXT[1], max_buffer=float("inf")).result())
    assert isinstance(result.stdout, str)
    assert result.stdout == "y\n" * (SIZE // 2)
    assert result.stderr == ""


@pytest.mark.benchmark(group=ONE_K)
def test_childproc_exec_1k(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_exec, SMALL, mode="default")
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ONE_K)
def test_childproc_exec_1k_content(benchmark):
    cp = need_childproc()
    result = benchmark(lambda: cp.exec(SMALL[1]).result())
    assert result.stdout == "\0" * 1024  # utf-8 text by default


@pytest.mark.benchmark(group=ONE_K)
def test_subprocess_run_1k(benchmark, make_op):
    op = make_op(pyops.subprocess_run_capture, SMALL, mode="bytes")
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ONE_K)
def test_asyncio_communicate_1k(benchmark, make_op):
    op = make_op(pyops.asyncio_communicate, SMALL, mode="bytes")
    assert status(benchmark(op)) == 0
