"""Linux: the child's pidfd (from ``CLONE_PIDFD``, ``pidfd_spawn`` or
``pidfd_open``) turns readable when the child exits; the reactor polls it
like any fd."""

from __future__ import annotations

from ..reactor import Reactor
from .base import ExitWatch, OnExit

__all__ = ["PidfdWatch"]


class PidfdWatch(ExitWatch):
    __slots__ = ()

    def __init__(self, reactor: Reactor, pid: int, pidfd: int, on_exit: OnExit) -> None:
        ExitWatch.__init__(self, reactor, pid, on_exit)  # not super(): one per spawn
        self._fd = pidfd
        reactor.add_reader_oneshot(pidfd, self._ready)

    @property
    def pidfd(self) -> int:
        return self._fd

    def _poll_again(self) -> None:
        # Reported once (add_reader_oneshot): watched anew for the next report.
        self._reactor.remove_reader(self._fd)
        self._reactor.add_reader_oneshot(self._fd, self._ready)

    def _fd_for_reaper(self) -> int:
        fd, self._fd = self._fd, -1
        return fd
