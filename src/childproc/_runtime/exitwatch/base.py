"""What every exit watcher shares: reaping our own pid, closing, handing an
orphaned child to the reaper, and letting go in a forked copy.

A watcher turns "the child exited" into a callback on the reactor's thread;
each platform mechanism (:mod:`.pidfd`, :mod:`.kqueue`, :mod:`.thread`) only
says how it learns of the exit.  Never a SIGCHLD handler and never
``waitpid(-1)``: both would take children from other libraries (asyncio's
watchers, subprocess).  The child is reaped with ``waitpid(pid, WNOHANG)``
once the watcher fires, so its pid stays reserved (a zombie) until then and a
signal sent before that can never reach a stranger.

A watcher may also *hold* the exited child: ``hold()`` (asked when the exit
is seen) returning True means the status is read with ``WNOWAIT`` and the
child stays a zombie until :meth:`ExitWatch.release`.  The lifecycle policy
(``_runtime/lifecycle.py``) does that while it may still signal the child's
process group, whose id is the leader's pid: a pid that names an unreaped
process cannot be handed out again, so the group id stays ours.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..forksafe import replace_with_null, track
from ..reactor import Reactor
from .reaper import orphan_reaper, peek, reap

__all__ = ["ExitWatch", "OnExit"]

OnExit = Callable[[int], None]  # receives the raw wait status
Hold = Callable[[], bool]


class ExitWatch:
    """Calls ``on_exit(wait_status)`` on the reactor's thread once ``pid``
    has exited and been reaped.  ``close()`` stops watching (the child is
    then left for whoever reaps it)."""

    __slots__ = ("_reactor", "_pid", "_on_exit", "_fd", "_done", "_held", "_fired", "hold", "__weakref__")

    def __init__(self, reactor: Reactor, pid: int, on_exit: OnExit) -> None:
        self._reactor = reactor
        self._pid = pid
        self._on_exit = on_exit
        self._fd = -1  # the pollable fd the mechanism watches, if it has one
        self._done = False
        self._held = False  # exited, status delivered, kept a zombie (see the module doc)
        self._fired = False  # the fd's report of the exit was served (see _release_fd)
        self.hold: Hold | None = None
        track(self)
        reactor.adopt_exit_watch(self)

    @property
    def pidfd(self) -> int:
        """The child's pidfd, or -1 where there is none."""
        return -1

    @property
    def reaped(self) -> bool:
        """True once the pid means nothing any more (reaped, or let go)."""
        return self._done

    def _ready(self) -> None:
        if self._done or self._held:
            return
        if self.hold is not None and self.hold():
            status = peek(self._pid)
            if status is not None:
                self._held = True
                self._stop_polling()
                self._on_exit(status)
                return
        status = reap(self._pid)
        if status is None:
            self._poll_again()  # spurious readiness; the watcher fires again
            return
        self._fired = True
        self.close()
        self._on_exit(status)

    def wait_now(self) -> None:
        """Block the owning thread until the child has exited, then reap it
        and deliver the exit at once, without the loop.  For ``with`` inside
        a coroutine: the asyncio loop cannot run while the block is left,
        and the child must not outlive it.  ``waitid(WNOWAIT)`` leaves the
        reaping to :meth:`_ready`, as every watcher does."""
        waitid = getattr(os, "waitid", None)  # macOS has it from Python 3.13 on
        # Held (the policy keeps an exited group leader unreaped): the exit
        # has been delivered, which is all the block waits for.
        while not (self._done or self._held):
            if waitid is None:
                try:
                    _, status = os.waitpid(self._pid, 0)  # reaps: what _ready would do
                except ChildProcessError:
                    status = 0  # reaped elsewhere: no status to be had (as reap())
                self.close()
                self._on_exit(status)
                return
            try:
                waitid(os.P_PID, self._pid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                return  # reaped by someone else: nothing left to wait for
            self._ready()
    def _poll_again(self) -> None:
        """After a report that was not the exit: a mechanism whose fd reports
        only once is armed again (level-triggered ones report again anyway)."""

    def release(self) -> None:
        """Reap a held child (see the module doc); nothing otherwise."""
        if self._held and not self._done:
            reap(self._pid)
            self.close()

    def _stop_polling(self) -> None:
        """A held child stays unreaped: stop polling its (readable) fd but
        keep it, and stay adopted, so a thread that ends hands it over."""
        if self._fd >= 0:
            self._reactor.remove_reader(self._fd)

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see forksafe): the child is not the copy's to reap.
        self._done = True
        replace_with_null(self._fd, null_fd)

    def _release_fd(self) -> None:
        """Stop polling the mechanism's fd and close it."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            if self._fired:  # its one report was served (Reactor.add_reader_oneshot)
                self._reactor.drop_fired(fd)
            else:
                self._reactor.remove_reader(fd)
            os.close(fd)

    def _fd_for_reaper(self) -> int:
        """Give up the mechanism's fd: a pidfd the reaper thread can poll
        (ownership passes to it), or -1 once any other fd is closed."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        return -1

    def hand_to_reaper(self) -> None:
        """The owning thread has ended: let the reaper thread wait for the
        child, so it does not stay a zombie.  The child's events are not
        delivered any more (their loop is gone)."""
        if self._done:
            return
        self._done = True
        orphan_reaper().adopt(self._pid, self._fd_for_reaper())

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        self._reactor.drop_exit_watch(self)
        if self._held:
            # Not polled any more: close without asking the reactor.
            fd = self._fd_for_reaper()
            if fd >= 0:
                os.close(fd)
            return
        self._release_fd()
