"""The fd table both epoll reactors share (``_runtime/fdtable.py``): the
one-shot registration a child's pidfd gets, through the private loop.

A pidfd reports once (the exit) and stays readable; its registration is
one-shot so that, once that report was served, it is closed without the
``epoll_ctl`` a removal costs.  These tests use a pipe kept readable, which
behaves as a pidfd does for epoll.
"""

from __future__ import annotations

import os
import select

import pytest

import childproc as cp
from childproc._runtime import private
from childproc._runtime.private import PrivateLoop

pytestmark = [
    pytest.mark.skipif(not hasattr(select, "epoll"), reason="one-shot registrations are epoll's"),
    pytest.mark.usefixtures("watchdog"),
]


@pytest.fixture
def loop():
    lp = PrivateLoop()
    yield lp
    lp.close()


def test_a_oneshot_fd_is_reported_once_and_dropped_without_a_removal(loop):
    r, w = os.pipe()
    os.write(w, b"x")  # readable from now on, as an exited child's pidfd
    calls: list[int] = []
    loop.add_reader_oneshot(r, lambda: calls.append(r))
    loop.run_until(lambda: bool(calls))
    # Readable still, but not reported again: the registration is disabled.
    # (A plain reader would be called at every turn.)
    loop.call_later(0.05, lambda: calls.append(-1))
    loop.run_until(lambda: calls[-1] == -1)
    assert calls == [r, -1]
    loop.drop_fired(r)
    assert r not in loop._callbacks
    os.close(r)
    # The same number, a new pipe: watched as any other fd.
    r2, w2 = os.pipe()
    try:
        assert r2 == r
        seen: list[int] = []
        loop.add_reader(r2, lambda: (seen.append(r2), loop.remove_reader(r2)))
        os.write(w2, b"y")
        loop.run_until(lambda: bool(seen))
        assert seen == [r2]
    finally:
        os.close(r2)
        os.close(w2)
        os.close(w)


def test_drop_fired_of_a_plain_reader_removes_it(loop):
    r, w = os.pipe()
    try:
        loop.add_reader(r, lambda: None)
        loop._register_added()
        loop.drop_fired(r)  # not one-shot: removed from epoll as remove_reader does
        assert r not in loop._callbacks
        with pytest.raises(FileNotFoundError):
            loop._poller.unregister(r)
    finally:
        os.close(r)
        os.close(w)


def test_a_report_that_finds_no_exit_arms_the_pidfd_again(monkeypatch):
    # The pidfd's one report came, but waitpid found nothing to reap (the
    # first time, here): the pidfd must be watched again, or the exit,
    # and 'close', never come.
    from childproc._runtime.exitwatch import base

    real_reap = base.reap
    misses: list[int] = []

    def reap_misses_once(pid: int) -> int | None:
        if not misses:
            misses.append(pid)
            return None
        return real_reap(pid)

    monkeypatch.setattr(base, "reap", reap_misses_once)
    child = cp.spawn("true")
    assert child._watch is not None and child._watch.pidfd >= 0
    assert child.wait() == 0
    assert misses == [child.pid]


@pytest.mark.skipif(private._SPIN_MAX == 0, reason="spinning is off here (CHILDPROC_SPIN_US=0)")
def test_the_spin_before_a_wait_leaves_a_oneshot_report_to_the_wait(loop, monkeypatch):
    # The spin only asks whether something is ready; taking the event (as an
    # epoll_wait would) lost a one-shot fd's only report: a pidfd's exit.
    monkeypatch.setattr(private, "_spin_allowed", lambda peer: True)
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        calls: list[int] = []
        loop.add_reader_oneshot(r, lambda: calls.append(r))
        loop._register_added()
        loop.expect_soon()
        loop.run_until(lambda: bool(calls), timeout=30)
        assert calls == [r]
        loop.drop_fired(r)
    finally:
        os.close(r)
        os.close(w)
