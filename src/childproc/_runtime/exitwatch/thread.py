"""Anywhere else (Linux before 5.3, no kqueue): a thread blocked in
``waitid(pid)`` for this pid only, which wakes the loop when done.  The only
mechanism with a thread per child."""

from __future__ import annotations

import os
import threading

from ..reactor import Reactor
from .base import ExitWatch, OnExit

__all__ = ["ThreadWatch"]


class ThreadWatch(ExitWatch):
    __slots__ = ("_thread",)

    def __init__(self, reactor: Reactor, pid: int, pidfd: int, on_exit: OnExit) -> None:
        super().__init__(reactor, pid, on_exit)
        reactor.expect_wakeup()

        def wait() -> None:
            # Blocking waitid without reaping, so _ready's waitpid reaps on
            # the loop's thread like the other watchers.
            while True:
                try:
                    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:
                    break
            reactor.call_soon_threadsafe(self._thread_done)

        self._thread = threading.Thread(target=wait, name=f"childproc-wait-{pid}", daemon=True)
        self._thread.start()

    def _thread_done(self) -> None:
        self._reactor.wakeup_arrived()
        self._ready()
