"""Reaping: ``waitpid`` for one pid of our own, and the reaper thread that
takes the children of threads that ended before them."""

from __future__ import annotations

import os
import select
import threading

from ..forksafe import on_fork_in_child
from ..poller import pipe_cloexec

__all__ = ["orphan_reaper", "peek", "reap"]


def reap(pid: int) -> int | None:
    """waitpid(pid, WNOHANG) for our own pid; None while it still runs."""
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except InterruptedError:
            continue
        except ChildProcessError:
            # Reaped elsewhere (SIGCHLD set to SIG_IGN, a stray waitpid(-1)):
            # no status can be had.  CPython's subprocess reports 0 too.
            return 0
        return status if got == pid else None


def peek(pid: int) -> int | None:
    """The wait status of our exited child ``pid`` without reaping it
    (``waitid`` with ``WNOWAIT``); None while it runs or if it cannot be
    had (then the caller reaps as usual).  Without ``os.waitid`` (macOS
    before Python 3.13) it cannot be had: the leader is reaped at once and the
    policy then never signals its group by number (docs/architecture.md,
    "Lifecycle")."""
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return None
    while True:
        try:
            info = waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except InterruptedError:
            continue
        except (ChildProcessError, OSError):
            return None
        break
    if info is None or info.si_pid != pid:
        return None
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    # Killed (or dumped): the raw status is the signal number, 0x80 for a core.
    return info.si_status | (0x80 if info.si_code == os.CLD_DUMPED else 0)


_P_PIDFD: int | None = getattr(os, "P_PIDFD", None)


def _reap_pidfd(pid: int, pidfd: int) -> None:
    """Reap the exited child of ``pidfd``: through the pidfd where the
    system can, so that a child someone else reaped first (the warm start's
    zygote is also reaped by its owner) never makes this reap another child
    that was given the same pid since; by pid otherwise."""
    if _P_PIDFD is None:
        reap(pid)
        return
    while True:
        try:
            os.waitid(_P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except InterruptedError:
            continue
        except ChildProcessError:
            pass  # reaped already
        except OSError:  # EINVAL: a kernel before 5.4
            reap(pid)
        return


def _reap_blocking(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


class _OrphanReaper:
    """One daemon thread that reaps children whose owning thread ended
    (see ``loop._ThreadExit``): it polls their pidfds, or, without a
    pidfd, blocks in ``waitpid`` for that pid alone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int]] = []
        self._wake_r, self._wake_w = pipe_cloexec()
        self._thread: threading.Thread | None = None

    def adopt(self, pid: int, pidfd: int) -> None:
        if pidfd < 0:
            threading.Thread(target=_reap_blocking, args=(pid,), name=f"childproc-reap-{pid}", daemon=True).start()
            return
        with self._lock:
            self._pending.append((pid, pidfd))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="childproc-orphan-reaper", daemon=True)
                self._thread.start()
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        children: dict[int, int] = {}  # pidfd -> pid
        while True:
            with self._lock:
                for pid, pidfd in self._pending:
                    children[pidfd] = pid
                    poller.register(pidfd, select.POLLIN)
                self._pending.clear()
            for fd, _mask in poller.poll():
                if fd == self._wake_r:
                    try:
                        while os.read(self._wake_r, 64):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                adopted = children.get(fd)
                if adopted is not None:
                    del children[fd]
                    poller.unregister(fd)
                    _reap_pidfd(adopted, fd)
                    os.close(fd)


_reaper: _OrphanReaper | None = None


def orphan_reaper() -> _OrphanReaper:
    global _reaper
    if _reaper is None:
        _reaper = _OrphanReaper()
    return _reaper


def _forget_reaper() -> None:
    # A forked copy has no reaper thread (nor, perhaps, a usable lock).
    global _reaper
    _reaper = None


on_fork_in_child(_forget_reaper)
