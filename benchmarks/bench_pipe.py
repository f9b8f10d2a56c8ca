"""pytest-benchmark: readable.pipe() between fds, and the stdio hand-over.

    pytest benchmarks/bench_pipe.py                       # timed, one table
    pytest benchmarks/bench_pipe.py --benchmark-disable   # each body once (CI)

compare's pipe_fd workload at 8 MiB: the ops of pyops.py (into
/dev/null, into `cat`'s stdin, `cat` handed the pipe itself), plus the same
paths into a file and into `wc -c`, so that every byte is counted at the
other end.  No test asserts a time.
"""

from __future__ import annotations

import pytest

import pyops
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

SIZE = 8 << 20
HEAD = ["head", "-c", str(SIZE), "/dev/zero"]
GROUP = "fd -> fd pipe() of head -c 8 MiB /dev/zero"


def _wc_count(child) -> list:
    out: list[bytes] = []
    child.stdout.on("data", out.append)
    return out


@pytest.mark.benchmark(group=GROUP)
def test_pipe_to_devnull(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_pipe_devnull, [str(SIZE), *HEAD])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_pipe_to_cat(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_pipe_child, [str(SIZE), *HEAD])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_handover_to_cat(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_handover, [str(SIZE), *HEAD])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=GROUP)
def test_pipe_to_file(benchmark, tmp_path):
    cp = need_childproc()
    path = tmp_path / "out"

    def pipe_to_file():
        child = cp.spawn(HEAD[0], HEAD[1:])
        with open(path, "wb") as dest:
            child.stdout.pipe(dest)
            assert child.wait() == 0
        return path.stat().st_size

    assert benchmark(pipe_to_file) == SIZE


@pytest.mark.benchmark(group=GROUP)
def test_pipe_to_wc(benchmark):
    cp = need_childproc()

    def pipe_to_wc():
        a = cp.spawn(HEAD[0], HEAD[1:])
        b = cp.spawn("wc", ["-c"], stdio=["pipe", "pipe", "inherit"])
        out = _wc_count(b)
        a.stdout.pipe(b.stdin)
        assert a.wait() == 0 and b.wait() == 0
        return int(b"".join(out))

    assert benchmark(pipe_to_wc) == SIZE


@pytest.mark.benchmark(group=GROUP)
def test_handover_to_wc(benchmark):
    cp = need_childproc()

    def handover_to_wc():
        a = cp.spawn(HEAD[0], HEAD[1:])
        b = cp.spawn("wc", ["-c"], stdio=[a.stdout, "pipe", "inherit"])
        out = _wc_count(b)
        assert a.wait() == 0 and b.wait() == 0
        return int(b"".join(out))

    assert benchmark(handover_to_wc) == SIZE
