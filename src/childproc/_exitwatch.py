"""Learning that a child exited, without stealing anybody else's children.

One watcher per child, each an fd the child's loop can poll, so exits are
ordinary fd readiness and no process-wide state is touched:

* Linux: the child's **pidfd** (from ``pidfd_spawn``, ``CLONE_PIDFD`` or
  ``pidfd_open``) turns readable when the child exits.
* macOS and the BSDs: a **kqueue** holding one ``EVFILT_PROC``/``NOTE_EXIT``
  event for the pid; the kqueue's own fd is pollable.
* Anywhere else (Linux before 5.3): a **thread** blocked in
  ``waitpid(pid)`` for this pid only, which wakes the loop when done.  It is
  the only case with a thread per child.

Never a SIGCHLD handler and never ``waitpid(-1)``: both would take children
from other libraries (asyncio's watchers, subprocess).  The child is reaped
with ``waitpid(pid, WNOHANG)`` once the watcher fires, so its pid stays
reserved (a zombie) until then and ``kill()`` can never hit a stranger.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

from ._forksafe import on_fork_in_child, replace_with_null, track
from ._loop import PrivateLoop, Reactor

__all__ = ["ExitWatch"]

OnExit = Callable[[int], None]  # receives the raw wait status


def _reap(pid: int) -> int | None:
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


class ExitWatch:
    """Calls ``on_exit(wait_status)`` on the reactor's thread once ``pid``
    has exited and been reaped.  ``close()`` stops watching (the child is
    then left for whoever reaps it)."""

    __slots__ = ("_reactor", "_pid", "_on_exit", "_fd", "_kq", "_thread", "_done", "__weakref__")

    def __init__(self, reactor: Reactor, pid: int, pidfd: int, on_exit: OnExit) -> None:
        self._reactor = reactor
        self._pid = pid
        self._on_exit = on_exit
        self._fd = -1
        self._kq: select.kqueue | None = None  # type: ignore[name-defined]
        self._thread: threading.Thread | None = None
        self._done = False
        track(self)
        if isinstance(reactor, PrivateLoop):
            reactor.exit_watches.add(self)
        if pidfd >= 0:
            self._fd = pidfd
            reactor.add_reader(pidfd, self._ready)
        elif hasattr(select, "kqueue"):
            self._watch_kqueue()
        else:
            self._watch_thread()

    @property
    def pidfd(self) -> int:
        """The child's pidfd, or -1 where there is none."""
        return self._fd if self._kq is None else -1

    def _watch_kqueue(self) -> None:
        kq = select.kqueue()  # type: ignore[attr-defined]
        event = select.kevent(  # type: ignore[attr-defined]
            self._pid,
            filter=select.KQ_FILTER_PROC,  # type: ignore[attr-defined]
            flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,  # type: ignore[attr-defined]
            fflags=select.KQ_NOTE_EXIT,  # type: ignore[attr-defined]
        )
        try:
            kq.control([event], 0, 0)
        except ProcessLookupError:
            # Already gone (and so a zombie): reap on the next tick.
            kq.close()
            self._reactor.call_soon(self._ready)
            return
        self._kq = kq
        self._fd = kq.fileno()
        self._reactor.add_reader(self._fd, self._ready)

    def _watch_thread(self) -> None:
        reactor = self._reactor
        if isinstance(reactor, PrivateLoop):
            reactor.expect_wakeup()

        def wait() -> None:
            # Blocking waitid without reaping, so _ready's waitpid reaps on
            # the loop's thread like the other watchers.
            while True:
                try:
                    os.waitid(os.P_PID, self._pid, os.WEXITED | os.WNOWAIT)
                    break
                except InterruptedError:
                    continue
                except ChildProcessError:
                    break
            reactor.call_soon_threadsafe(self._thread_done)

        self._thread = threading.Thread(target=wait, name=f"childproc-wait-{self._pid}", daemon=True)
        self._thread.start()

    def _thread_done(self) -> None:
        if isinstance(self._reactor, PrivateLoop):
            self._reactor.wakeup_arrived()
        self._ready()

    def _ready(self) -> None:
        if self._done:
            return
        status = _reap(self._pid)
        if status is None:
            return  # spurious readiness; the watcher fires again
        self.close()
        self._on_exit(status)

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see _forksafe): the child is not the copy's to reap.
        self._done = True
        replace_with_null(self._fd, null_fd)

    def hand_to_reaper(self) -> None:
        """The owning thread has ended: let the reaper thread wait for the
        child, so it does not stay a zombie.  The child's events are not
        delivered any more (their loop is gone)."""
        if self._done:
            return
        self._done = True
        pid, fd, kq = self._pid, self._fd, self._kq
        self._fd = -1
        if kq is not None:
            kq.close()
            fd = -1
        _orphan_reaper().adopt(pid, fd)

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        if isinstance(self._reactor, PrivateLoop):
            self._reactor.exit_watches.discard(self)
        if self._fd >= 0:
            self._reactor.remove_reader(self._fd)
            if self._kq is not None:
                self._kq.close()
            else:
                os.close(self._fd)
            self._fd = -1


class _OrphanReaper:
    """One daemon thread that reaps children whose owning thread ended
    (see ``_loop._ThreadExit``): it polls their pidfds, or, without a
    pidfd, blocks in ``waitpid`` for that pid alone."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._pending: list[tuple[int, int]] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread: threading.Thread | None = None

    def adopt(self, pid: int, pidfd: int) -> None:
        import threading

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
                    _reap(adopted)
                    os.close(fd)


def _reap_blocking(pid: int) -> None:
    while True:
        try:
            os.waitpid(pid, 0)
            return
        except InterruptedError:
            continue
        except ChildProcessError:
            return


_reaper: _OrphanReaper | None = None


def _orphan_reaper() -> _OrphanReaper:
    global _reaper
    if _reaper is None:
        _reaper = _OrphanReaper()
    return _reaper


def _forget_reaper() -> None:
    # A forked copy has no reaper thread (nor, perhaps, a usable lock).
    global _reaper
    _reaper = None


on_fork_in_child(_forget_reaper)
