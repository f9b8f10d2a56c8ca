"""Windows: the child's process handle, waited on by the reactor
(``RegisterWaitWithQueue`` posting to its completion port, see
:mod:`childproc._runtime.iocp`).  Windows has no zombies to reap: the exit
code is read with ``GetExitCodeProcess`` and the handle closed, after which
the pid means nothing to us (kill goes through the handle, never the pid)."""

from __future__ import annotations

import sys

# Windows only; also tells type checkers on other platforms to skip the rest.
assert sys.platform == "win32"

import _winapi

from ..reactor import Reactor
from .base import ExitWatch, OnExit

__all__ = ["HandleWatch"]


class HandleWatch(ExitWatch):
    """``on_exit`` receives the raw 32-bit exit code (unsigned)."""

    __slots__ = ("_handle", "_key")

    def __init__(self, reactor: Reactor, pid: int, handle: int, on_exit: OnExit) -> None:
        super().__init__(reactor, pid, on_exit)
        self._handle = handle
        self._key = reactor.watch_handle(handle, self._ready)

    @property
    def pidfd(self) -> int:
        """The process handle while the child is ours, else -1."""
        return self._handle

    def _ready(self) -> None:
        if self._done:
            return
        code = _winapi.GetExitCodeProcess(self._handle)
        self.close()
        self._on_exit(code & 0xFFFFFFFF)

    def _release_fd(self) -> None:
        handle, self._handle = self._handle, -1
        if handle >= 0:
            self._reactor.unwatch_handle(self._key)
            _winapi.CloseHandle(handle)

    def hand_to_reaper(self) -> None:
        # Nothing to reap on Windows: let the handle go.
        if not self._done:
            self._done = True
            self._release_fd()
