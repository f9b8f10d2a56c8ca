"""Learning that a child exited, one small module per platform mechanism,
chosen once here (docs/architecture.md, "Exits"):

* :mod:`.pidfd` -- Linux: the child's pidfd, polled by the reactor;
* :mod:`.kqueue` -- macOS and the BSDs: ``EVFILT_PROC``/``NOTE_EXIT``;
* :mod:`.thread` -- elsewhere: a thread in ``waitid`` for that pid alone;
* :mod:`.handle` -- Windows: the process handle, waited on by the reactor.

A child that came with a pidfd is always watched through it; the fallback
serves children without one (an old kernel, another platform).
"""

from __future__ import annotations

import os
import select
import sys

from collections.abc import Callable

from ..reactor import Reactor
from .base import ExitWatch, OnExit
from .pidfd import PidfdWatch

__all__ = ["ExitWatch", "watch_exit"]

_Fallback: Callable[[Reactor, int, int, OnExit], ExitWatch] | None
if hasattr(select, "kqueue"):
    from .kqueue import KqueueWatch as _Fallback
elif hasattr(os, "waitid"):
    from .thread import ThreadWatch as _Fallback
else:  # pragma: no cover - Windows: process handles, waited on by its own loop
    _Fallback = None


def watch_exit(reactor: Reactor, pid: int, pidfd: int, on_exit: OnExit) -> ExitWatch:
    """Call ``on_exit(wait_status)`` on ``reactor``'s thread once ``pid`` (our
    own child) has exited and been reaped.  On Windows ``pidfd`` is the
    process handle and the status is the 32-bit exit code."""
    if sys.platform == "win32":
        from .handle import HandleWatch

        return HandleWatch(reactor, pid, pidfd, on_exit)
    if pidfd >= 0:
        return PidfdWatch(reactor, pid, pidfd, on_exit)
    if _Fallback is None:
        raise NotImplementedError("no way to watch a child's exit on this platform")
    return _Fallback(reactor, pid, pidfd, on_exit)
