"""macOS and the BSDs: a kqueue holding one ``EVFILT_PROC``/``NOTE_EXIT``
event for the pid; the kqueue's own fd is pollable."""

from __future__ import annotations

import os
import select

from ..poller import pipe_cloexec
from ..reactor import Reactor
from .base import ExitWatch, OnExit

__all__ = ["KqueueWatch"]


class _Exited:
    """What ``KqueueWatch._kq`` holds for a child that had exited before the
    watch began: the read end of a pipe at EOF, closed like a kqueue."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        os.close(self._fd)


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
            # Exited already (macOS does not find a zombie by pid).  An fd
            # readable from the start stands in for the kqueue, so the exit
            # is seen in the loop's registration order -- after output that
            # was ready before it, as with a pidfd -- not ahead of it (a
            # call_soon would deliver 'exit' before that output).
            kq.close()
            r, w = pipe_cloexec()
            os.close(w)
            kq = _Exited(r)
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
