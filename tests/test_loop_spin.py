"""The private loop's spin before a wait (docs/architecture.md, "Spinning
before a wait"): what it sees, how its budget adapts, where it never runs.

No timing is asserted: the tests look at what the spin returns and at its
budget, never at how fast anything was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from childproc._runtime import private
from childproc._runtime.private import PrivateLoop


@pytest.fixture
def loop():
    lp = PrivateLoop()
    yield lp
    lp.close()


@pytest.fixture
def watched_pipe(loop):
    """A pipe whose read end ``loop`` watches (already given to epoll): (r, w)."""
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    loop._register_added()
    yield r, w
    loop.remove_reader(r)
    os.close(r)
    os.close(w)


needs_spin = pytest.mark.skipif(private._SPIN_MAX == 0, reason="spinning is off here (CHILDPROC_SPIN_US=0 or Windows)")


@needs_spin
def test_an_event_during_the_spin_is_returned(loop, watched_pipe, monkeypatch):
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    r, w = watched_pipe
    loop.expect_soon()
    os.write(w, b"x")  # already there when the spin polls
    events = loop._spin(None)
    assert events and events[0][0] == r
    assert loop._spin_budget == private._SPIN_MAX  # a hit keeps the budget
    assert not loop._spin_wanted  # one spin per expect_soon


@needs_spin
def test_misses_in_a_row_rest_the_spin_then_it_comes_back(loop, monkeypatch):
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    monkeypatch.setattr(private, "_SPIN_MAX", 1e-4)  # short misses
    loop._spin_budget = 1e-4
    for _ in range(private._SPIN_MISSES):
        assert loop._spin_budget == 1e-4
        loop.expect_soon()
        assert loop._spin(None) is None  # nothing comes
    assert loop._spin_budget == 0 and loop._spin_rest == private._SPIN_REST
    # Resting: no spin at all, whatever is expected.
    loop.expect_soon()
    assert loop._spin(None) is None and loop._spin_budget == 0
    # After the rest (that many sleeping waits) the whole budget again; the
    # next rest, if the spins go on missing, is twice as long.
    for _ in range(private._SPIN_REST):
        loop.run_until(lambda: False, 0)
    assert loop._spin_budget == 1e-4
    for _ in range(private._SPIN_MISSES):
        loop.expect_soon()
        loop._spin(None)
    assert loop._spin_rest == 2 * private._SPIN_REST


@needs_spin
def test_a_hit_starts_the_count_over(loop, watched_pipe, monkeypatch):
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    r, w = watched_pipe
    for _ in range(private._SPIN_MISSES - 1):
        loop.expect_soon()
        loop._spin(1e-5)
    os.write(w, b"x")
    loop.expect_soon()
    assert loop._spin(None)
    assert loop._spin_misses == 0 and loop._spin_budget == private._SPIN_MAX


def test_the_spin_never_outlasts_a_timer(loop, monkeypatch):
    monkeypatch.setattr(private, "_SPIN_MAX", 10.0)
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    loop._spin_budget = 10.0
    fired = []
    loop.call_later(0.01, fired.append, 1)
    loop.expect_soon()
    t0 = time.monotonic()
    loop.run_until(lambda: bool(fired), 30)
    assert fired and time.monotonic() - t0 < 5  # the 10 s spin gave way to the timer


def test_a_spinning_wait_still_sees_other_threads(loop, monkeypatch):
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    loop.expect_wakeup()
    got = []
    threading.Timer(0.01, loop.call_soon_threadsafe, (got.append, "woken")).start()
    loop.expect_soon()
    loop.run_until(lambda: bool(got), 30)
    assert got == ["woken"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity API")
def test_no_spin_where_the_peer_shares_our_only_cpu():
    cpus = sorted(os.sched_getaffinity(0))
    code = (
        "import os, sys\n"
        "from childproc._runtime.private import _spin_allowed\n"
        "cpus = sorted(os.sched_getaffinity(0))\n"
        "print(_spin_allowed(None) == (len(cpus) > 1))\n"
        "os.sched_setaffinity(0, {cpus[0]})\n"
        "print(_spin_allowed(None) is False)\n"
        "print(_spin_allowed(os.getppid()) == (len(cpus) > 1))\n"  # the parent may run elsewhere
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"], (cpus, out.stdout)


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("50", 50e-6), ("", 100e-6), ("junk", 100e-6), ("1e9", 0.01)])
def test_the_setting(value, expected):
    code = "from childproc._runtime.private import _SPIN_MAX; print(repr(_SPIN_MAX))"
    env = dict(os.environ, CHILDPROC_SPIN_US=value)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    want = 0.0 if os.name == "nt" else expected
    assert float(out.stdout) == pytest.approx(want)
