"""Timeouts at the edges: values of centuries, infinity and NaN.

Node's spawnSync takes any finite non-negative integer of milliseconds and a
huge one never fires (1e10 and 1e300 ms: the child runs to its end).  Ours are
seconds; the C core saturates its deadline (now + timeout no longer wraps
into the past from about 9.3e9 s), Python no longer overflows converting
1e300, and the private loop caps each wait at a day (epoll's limit is
INT_MAX ms).  ``wait(inf)`` waits without bound; ``wait(nan)`` is a
``ValueError`` (as ``time.sleep(nan)``) instead of a busy loop.
"""

from __future__ import annotations

import math
import sys

import pytest

import childproc as cp
from nodecmp import node_json

pytestmark = pytest.mark.usefixtures("watchdog")

SHORT = ["-c", "sleep 0.1; echo ok"]
HUGE = [sys.maxsize, 1e10, 9.3e9, 1e300, float(2**63)]


def shape(r) -> list:
    return [r.status, r.signal, r.error.code if r.error else None]


def test_node_lets_a_huge_spawn_sync_timeout_run_the_child_to_its_end():
    expected = node_json(
        "out([1e10, 1e300, Number.MAX_SAFE_INTEGER].map((t) => {"
        " const r = cp.spawnSync('sh', ['-c', 'sleep 0.1; echo ok'], {timeout: t});"
        " return [r.status, r.signal, r.error ? r.error.code : null]; }))"
    )
    assert expected == [[0, None, None]] * 3
    for t in HUGE:
        assert shape(cp.spawn_sync("sh", SHORT, timeout=t)) == expected[0], t


@pytest.mark.parametrize("t", HUGE)
def test_huge_timeouts_in_exec_sync_and_exec_file_sync(t):
    assert cp.exec_sync("sleep 0.1; echo ok", timeout=t) == b"ok\n"
    assert cp.exec_file_sync("sh", SHORT, timeout=t) == b"ok\n"


def test_a_huge_force_kill_after_still_lets_the_timeout_fire():
    r = cp.spawn_sync("sleep", ["5"], timeout=0.2, force_kill_after=1e300)
    assert shape(r) == [None, "SIGTERM", "ETIMEDOUT"]


@pytest.mark.parametrize("t", HUGE)
def test_huge_timeouts_in_the_async_forms(t):
    assert cp.spawn("sh", SHORT, timeout=t).wait() == 0
    out = []
    cp.exec("sleep 0.1; echo ok", timeout=t, callback=lambda err, so, se: out.append((err, so)))
    cp.run()
    assert out == [(None, "ok\n")]


def test_wait_with_infinity_waits_without_bound():
    assert cp.spawn("sh", SHORT).wait(math.inf) == 0
    assert cp.spawn("sh", SHORT).wait(1e300) == 0


def test_wait_with_nan_is_a_value_error_not_a_busy_loop():
    child = cp.spawn("sh", SHORT)
    with pytest.raises(ValueError, match="NaN"):
        child.wait(math.nan)
    assert child.wait() == 0
