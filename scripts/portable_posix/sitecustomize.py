"""A simulation of macOS's Python on Linux, for scripts/portable_posix.sh.

Loaded by every Python process that has this folder on PYTHONPATH (the
test run, and the Python children it starts) when
CHILDPROC_PORTABLE_POSIX_SIMULATION=1.  It is not macOS: the kernel, libc
and ``sys.platform`` stay Linux's.  What it does:

* Removes the Linux-only names macOS's CPython does not have (os.pipe2,
  os.pidfd_open, os.waitid, os.splice, os.eventfd, select.epoll,
  signal.pidfd_send_signal, F_SETPIPE_SZ, SOCK_CLOEXEC, MSG_CMSG_CLOEXEC,
  ...), so childproc takes the paths it takes there: a poll(2) loop, pipes
  from os.pipe(), no pipe resizing.
* Stands in for ``select.kqueue``, which macOS's exit watch uses, with just
  the part childproc needs: one EVFILT_PROC/NOTE_EXIT event per queue.  The
  queue's fd is an epoll instance holding a pidfd (both taken before they
  are hidden), so it turns readable when the process exits, as a kqueue's
  fd does; adding a process that has exited already (a zombie) fails with
  ESRCH, as it does on macOS, where zombies are not found by pid.

The C core's half of the simulation is a build without Linux's extras
(CHILDPROC_PORTABLE_POSIX=1, see csrc/cp_internal.h).
"""

from __future__ import annotations

import errno as _errno
import os as _os

if _os.environ.get("CHILDPROC_PORTABLE_POSIX_SIMULATION") == "1":
    import fcntl as _fcntl
    import select as _select
    import signal as _signal
    import socket as _socket

    _epoll = _select.epoll
    _EPOLLIN = _select.EPOLLIN
    _pidfd_open = _os.pidfd_open
    _waitid = _os.waitid
    _P_PID, _WEXITED, _WNOHANG, _WNOWAIT = _os.P_PID, _os.WEXITED, _os.WNOHANG, _os.WNOWAIT

    _HIDDEN = {
        _os: [
            "pipe2", "pidfd_open", "waitid", "waitid_result", "P_PIDFD", "splice",
            "SPLICE_F_MOVE", "SPLICE_F_NONBLOCK", "SPLICE_F_MORE", "eventfd",
            "eventfd_read", "eventfd_write", "EFD_CLOEXEC", "EFD_NONBLOCK", "EFD_SEMAPHORE",
            "copy_file_range", "memfd_create", "posix_fallocate", "posix_fadvise",
            "sched_setaffinity", "sched_getaffinity",
        ],
        _select: [name for name in dir(_select) if name.startswith("EPOLL")] + ["epoll"],
        _signal: ["pidfd_send_signal", "sigtimedwait", "sigwaitinfo"],
        _fcntl: ["F_SETPIPE_SZ", "F_GETPIPE_SZ", "F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW"],
        _socket: ["SOCK_CLOEXEC", "SOCK_NONBLOCK", "MSG_CMSG_CLOEXEC", "SO_PEERCRED"],
    }
    for _module, _names in _HIDDEN.items():
        _all = getattr(_module, "__all__", None)
        for _name in _names:
            if hasattr(_module, _name):
                delattr(_module, _name)
            if isinstance(_all, list) and _name in _all:
                _all.remove(_name)  # as macOS's lists them: absent (trio reads socket.__all__)
    # socket imported selectors above, which picked epoll as its default
    # already: poll(2) instead (macOS's default, a kqueue selector, needs
    # more of kqueue than the stand-in below has).
    import selectors as _selectors

    del _selectors.EpollSelector
    _selectors.DefaultSelector = _selectors.PollSelector  # type: ignore[misc]

    KQ_FILTER_PROC = -5
    KQ_EV_ADD, KQ_EV_DELETE, KQ_EV_ONESHOT = 0x0001, 0x0002, 0x0010
    KQ_NOTE_EXIT = 0x80000000

    class kevent:  # noqa: N801 - select's own spelling
        def __init__(self, ident: int, filter: int = 0, flags: int = 0, fflags: int = 0,
                     data: int = 0, udata: int = 0) -> None:
            self.ident, self.filter, self.flags = ident, filter, flags
            self.fflags, self.data, self.udata = fflags, data, udata

    class kqueue:  # noqa: N801
        """One EVFILT_PROC/NOTE_EXIT watch; see the module doc."""

        def __init__(self) -> None:
            self._queue = _epoll()
            self._pidfd = -1
            self.closed = False

        def fileno(self) -> int:
            return self._queue.fileno()

        def control(self, changelist: list[kevent] | None, max_events: int,
                    timeout: float | None = None) -> list[kevent]:
            for event in changelist or ():
                if not (event.filter == KQ_FILTER_PROC and event.flags & KQ_EV_ADD
                        and event.fflags & KQ_NOTE_EXIT and self._pidfd < 0):
                    raise OSError(_errno.EINVAL, "the simulated kqueue serves one NOTE_EXIT watch")
                if _waitid(_P_PID, event.ident, _WEXITED | _WNOHANG | _WNOWAIT) is not None:
                    raise ProcessLookupError(_errno.ESRCH, "No such process")
                self._pidfd = _pidfd_open(event.ident)
                self._queue.register(self._pidfd, _EPOLLIN)
            if max_events:
                raise OSError(_errno.EINVAL, "the simulated kqueue is only polled through its fd")
            return []

        def close(self) -> None:
            if not self.closed:
                self.closed = True
                self._queue.close()
                if self._pidfd >= 0:
                    _os.close(self._pidfd)

    for _name, _value in list(globals().items()):
        if _name.startswith("KQ_") or _name in ("kqueue", "kevent"):
            setattr(_select, _name, _value)
