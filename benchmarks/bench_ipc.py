"""pytest-benchmark: IPC (issue 5): round trips, one-way messages, fork to
the first message; childproc's channel against multiprocessing.

    pytest benchmarks/bench_ipc.py                       # timed, one table per group
    pytest benchmarks/bench_ipc.py --benchmark-disable   # each body once (CI)

The ops are compare's (pyops.py), at small sizes: a burst of 20 ping-pongs
of a small dict (every echo must equal what was sent), 500 messages to a
counting child (its count must match), and a forked child's first message.
The children are benchmarks/ipc_pong.py, ipc_sink.py and ipc_first.py.  No
test asserts a time.
"""

from __future__ import annotations

import os

import pytest

import pyops
from pyops import MSG, _reactor_run_until
from _benchutil import make_op, need_childproc, status  # noqa: F401 (make_op is a fixture)

ROUND = "IPC: 20 round trips of a small dict"
ONEWAY = "IPC: 500 messages one way, then the count back"
FIRST = "fork() to the first message"


@pytest.mark.benchmark(group=ROUND)
@pytest.mark.parametrize("serialization", ["json", "pickle"])
def test_childproc_roundtrip(benchmark, make_op, serialization):
    need_childproc()
    op = make_op(pyops.childproc_roundtrip, ["20"], serialization=serialization)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ROUND)
def test_childproc_roundtrip_asyncio(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_roundtrip_await, ["20"], serialization="json")
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ROUND)
def test_multiprocessing_pipe_roundtrip(benchmark, make_op):
    op = make_op(pyops.mp_roundtrip, ["20"])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ONEWAY)
@pytest.mark.parametrize("serialization", ["json", "pickle"])
def test_childproc_oneway(benchmark, make_op, serialization):
    need_childproc()
    op = make_op(pyops.childproc_oneway, ["500"], serialization=serialization)
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=ONEWAY)
def test_multiprocessing_pipe_oneway(benchmark, make_op):
    op = make_op(pyops.mp_oneway, ["500"])
    assert status(benchmark(op)) == 0


@pytest.mark.benchmark(group=FIRST)
def test_childproc_fork_first(benchmark, make_op):
    need_childproc()
    op = make_op(pyops.childproc_fork_first, [])
    result = benchmark(op)
    assert status(result) == 0
    assert result[1] > 0


@pytest.mark.benchmark(group=FIRST)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_first(benchmark, make_op, method):
    op = make_op(pyops.mp_fork_first, [], method=method)
    assert status(benchmark(op)) == 0


def test_childproc_echo_content():
    # Each serialization carries its own types through a round trip.
    cp = need_childproc()
    script = os.path.join(os.path.dirname(os.path.abspath(pyops.__file__)), "ipc_pong.py")
    for serialization, message in [("json", MSG), ("pickle", {**MSG, "tuple": (1, 2), "bytes": b"\0\1"})]:
        child = cp.fork(script, serialization=serialization)
        got: list = []
        child.on("message", lambda m, _h=None: got.append(m))
        child.send(message)
        _reactor_run_until()(lambda: bool(got))
        child.disconnect()
        assert child.wait() == 0
        assert got == [message]
