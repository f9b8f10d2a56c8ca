"""The reactor interface: what a child, its streams and its channel need from
the loop that delivers their events (docs/architecture.md, "The loop").

Two reactors implement it: :class:`childproc._runtime.private.PrivateLoop` (a
thread's own loop, on the poller :mod:`childproc._runtime.poller` chose for
this platform) and :class:`childproc._runtime.aio.AsyncioReactor` (a running
asyncio loop).  ``asyncio_loop`` says which: None for the private loop, the
asyncio loop otherwise, so code above never probes a reactor's type.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Sized
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["Reactor", "TimerHandle"]


class TimerHandle:
    """A scheduled call; ``cancel()`` stops it if it has not run yet."""

    __slots__ = ("when", "callback", "args", "cancelled", "_inner")

    def __init__(self, when: float, callback: Callback, args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._inner: Any = None  # asyncio's own handle, when there is one

    def cancel(self) -> None:
        self.cancelled = True
        if self._inner is not None:
            self._inner.cancel()


class Reactor:
    """What childproc needs from a loop.  Two implementations below."""

    #: The asyncio loop that delivers this reactor's events, or None for a
    #: thread's private loop.  The one way code above tells the two apart.
    asyncio_loop: asyncio.AbstractEventLoop | None = None

    thread_id: int | None  # None: retired in a forked copy (see forksafe)
    # Counts the loop's turns (one per wait for events), so that a caller can
    # tell "earlier in this turn" from "in an earlier turn"; None where the
    # loop does not say (asyncio).
    tick: int | None = None
    # The fds the last wait for events found hung up (every writer gone),
    # with the mask it reported for each; None where the loop does not say
    # (asyncio).  A reader whose read came back short on one reads on to its
    # EOF at once, as libuv does on POLLHUP (where the loop does not say, it
    # tries one more read); one hung up and not readable is at its EOF where
    # the poller promises it (poller.HUP_WITHOUT_READ_IS_EOF).
    hangups: dict[int, int] | None = None

    def add_reader(self, fd: int, callback: Callback) -> None:
        raise NotImplementedError

    def remove_reader(self, fd: int) -> None:
        raise NotImplementedError

    def add_reader_oneshot(self, fd: int, callback: Callback) -> None:
        """``add_reader`` for an fd that turns readable once and stays so (a
        pidfd); once its reader has run, :meth:`drop_fired` may forget it
        more cheaply than ``remove_reader`` (epoll: see ``FdTable``)."""
        self.add_reader(fd, callback)

    def drop_fired(self, fd: int) -> None:
        """Stop watching an fd of :meth:`add_reader_oneshot` whose reader ran."""
        self.remove_reader(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        raise NotImplementedError

    def remove_writer(self, fd: int) -> None:
        raise NotImplementedError

    def set_direct_read(self, fd: int, read: Callback | None) -> None:
        """``read(True)`` reads ``fd`` (a reader added here), sleeping until
        bytes come, and delivers what came: a loop whose thread waits for
        nothing but ``fd`` may call it instead of waiting for readiness and
        then calling the reader (one system call instead of two).  A loop
        that cannot tell (asyncio) ignores it.  None: no longer."""

    def call_soon(self, callback: Callback, *args: Any) -> None:
        raise NotImplementedError

    def next_tick(self, callback: Callback, *args: Any) -> None:
        """Node's ``process.nextTick``: run ``callback`` as soon as the
        callback running now returns, ahead of everything already queued
        (an fd that turned ready in the same turn, a call_soon)."""
        raise NotImplementedError

    def call_closing(self, callback: Callback, *args: Any) -> None:
        """Run ``callback`` for a handle closed now: in libuv's close phase,
        after the other callbacks of this turn, the last closed first (how
        Node orders two streams' ``'close'`` events); ``call_soon`` where
        the loop has no such phase (asyncio)."""
        self.call_soon(callback, *args)

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        raise NotImplementedError

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        raise NotImplementedError

    def nothing_queued(self) -> bool:
        """True when no callback waits to run: then running one now, from
        the callback that is running, keeps the order call_soon would give
        (and saves a round through the queue).  False when unknown."""
        return False

    def run_queues(self) -> tuple[Sized, Sized, Sized] | None:
        """The loop's queues of callbacks waiting to run, to tell at a glance
        that none waits (what :meth:`nothing_queued` says, without a call on
        a hot path); None where the loop does not show them (asyncio)."""
        return None

    def expect_wakeup(self) -> None:
        """Another thread will call :meth:`call_soon_threadsafe` later (an exit
        waiter without a pollable fd), so blocking with nothing else to wait
        for is not hopeless.  Only a loop that blocks needs to know."""

    def wakeup_arrived(self) -> None:
        """The wake-up promised by :meth:`expect_wakeup` came."""

    def expect_soon(self, peer: int | None = None) -> None:
        """An event is likely within microseconds (the reply to what was
        just sent by a process ``peer``): a loop that would sleep may poll
        briefly first.  Only the private loop does (asyncio's is not ours)."""

    def adopt_exit_watch(self, watch: Any) -> None:
        """A child of this thread is being watched: should the thread end
        before the child, the loop hands the watch to the reaper thread
        (only a private loop can be left behind that way)."""

    def drop_exit_watch(self, watch: Any) -> None:
        """The child of :meth:`adopt_exit_watch` has been reaped."""

    def ref(self) -> None:
        """A handle that keeps the loop (and, for the main thread, the
        interpreter at exit) alive has started."""

    def unref(self) -> None:
        """Such a handle has ended or was unref()'d."""

    # -- Windows (IOCP) only: POSIX code calls os.write/os.close itself ------

    def write(self, fd: int, data: Any) -> int:
        """Write to one of our pipe ends through the loop: Windows starts an
        overlapped write and reports the bytes taken (BlockingIOError while
        one is in flight).  See :mod:`childproc._runtime.iocp`."""
        import os

        return os.write(fd, data)

    def close_fd(self, fd: int) -> None:
        """Close a pipe end written through :meth:`write` (Windows: once the
        write in flight has completed)."""
        import os

        os.close(fd)

    def watch_handle(self, handle: int, callback: Callback) -> int:
        """Windows: call ``callback`` once the process ``handle`` is
        signalled; the key returned goes to :meth:`unwatch_handle`."""
        raise NotImplementedError

    def unwatch_handle(self, key: int) -> None:
        raise NotImplementedError

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run callbacks until ``done()`` is true; False on timeout."""
        raise NotImplementedError

    def idle_caller(self) -> bool:
        """True when called from the owning thread while its loop is not
        running (a private loop outside ``run_until``): nothing reads this
        reactor's fds until the thread next blocks on childproc, so a call
        that must hear from a peer now has to read for itself.  An asyncio
        loop runs whenever its thread awaits: False."""
        return False
