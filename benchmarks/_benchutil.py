"""Helpers shared by the pytest-benchmark suites (benchmarks/bench_*.py).

The suites time the Python peers of compare with the same op factories
(pyops.py), at small sizes, and check what each op produced: bytes counted,
messages echoed, exit status 0.  No test asserts a time.
"""

from __future__ import annotations

import pytest


def need_childproc():
    """childproc, or a skip when it is not installed at all.

    Any other import failure (the package is there but its C core does not
    load) is an error, not a skip: that is a broken build.
    """
    try:
        import childproc
    except ModuleNotFoundError as e:
        if e.name == "childproc":
            pytest.skip("childproc is not installed in this interpreter (pip install .)")
        raise
    return childproc


def status(result) -> int:
    """An op's exit status: ops that time themselves return (status, ns)."""
    return result[0] if isinstance(result, tuple) else result


@pytest.fixture
def make_op():
    """make_op(factory, args, **kw) -> op; every op made is closed after the test
    (a forked child disconnected and waited for, an event loop closed)."""
    ops = []

    def make(factory, *args, **kw):
        op = factory(*args, **kw)
        ops.append(op)
        return op

    yield make
    for op in reversed(ops):
        close = getattr(op, "close", None)
        if close is not None:
            close()
