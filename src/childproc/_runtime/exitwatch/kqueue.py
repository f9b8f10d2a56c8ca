"""macOS and the BSDs: a kqueue holding one ``EVFILT_PROC``/``NOTE_EXIT``
event for the pid; the kqueue's own fd is pollable."""

from __future__ import annotations

import select

from ..reactor import Reactor
from .base import ExitWatch, OnExit

__all__ = ["KqueueWatch"]


class KqueueWatch(ExitWatch):
    __slots__ = ("_kq",)

    def __init__(self, reactor: Reactor, pid: int, pidfd: int, on_exit: OnExit) -> None:
        super().__init__(reactor, pid, on_exit)
        kq = select.kqueue()  # type: ignore[attr-defined,unused-ignore]
        event = select.kevent(  # type: ignore[attr-defined,unused-ignore]
            pid,
            filter=select.KQ_FILTER_PROC,  # type: ignore[attr-defined,unused-ignore]
            flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,  # type: ignore[attr-defined,unused-ignore]
            fflags=select.KQ_NOTE_EXIT,  # type: ignore[attr-defined,unused-ignore]
        )
        try:
            kq.control([event], 0, 0)
        except ProcessLookupError:
            # Already gone (and so a zombie): reap on the next turn, after
            # 'spawn' (queued before this watch was made).
            kq.close()
            self._kq = None
            reactor.call_soon(self._ready)
            return
        self._kq = kq
        self._fd = kq.fileno()
        reactor.add_reader(self._fd, self._ready)

    def _release_fd(self) -> None:
        if self._fd >= 0:
            self._reactor.remove_reader(self._fd)
        self._fd_for_reaper()

    def _fd_for_reaper(self) -> int:
        self._fd = -1
        if self._kq is not None:
            self._kq.close()  # the kqueue owns its fd; the reaper waits in waitpid
            self._kq = None
        return -1
