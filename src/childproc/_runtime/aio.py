"""The reactor on a running asyncio loop (uvloop works too): childproc's
events are delivered on the loop the creating code runs on
(docs/architecture.md, "The loop")."""

from __future__ import annotations

import _thread
import select
from collections import deque
from errno import EBADF as _EBADF

from .fdtable import FdTable
from .forksafe import replace_with_null, track
from .poller import HUP, READ, WRITE
from .reactor import Reactor, TimerHandle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["AsyncioReactor", "EpollAsyncioReactor", "asyncio_reactor"]


class AsyncioReactor(Reactor):
    """Delivers events on a running asyncio loop (uvloop works too).

    asyncio has no queue that runs between two callbacks, so next_tick's
    is ours: every callback childproc gives the loop goes through
    :meth:`_run`, which runs the ticks it queued before returning.
    """

    asyncio_loop: asyncio.AbstractEventLoop

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.asyncio_loop = loop
        self.thread_id = _thread.get_ident()
        self._ticks: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._closing: list[tuple[Callback, tuple[Any, ...]]] = []
        self._ready: deque[tuple[Callback, tuple[Any, ...]]] = deque()  # call_soon's, this turn's
        self._adding: dict[tuple[int, int], Callback] = {}  # (fd, 0 read / 1 write) -> callback

    # True while _run runs a callback: the ticks it queues run right after
    # it, so next_tick need not schedule anything of asyncio's for them.
    _in_callback = False

    def _run(self, callback: Callback, args: tuple[Any, ...]) -> None:
        if self._in_callback:  # nested (a callback that runs another): the outer one runs the ticks
            callback(*args)
            return
        self._in_callback = True
        try:
            callback(*args)
            if self._ticks:
                self._run_ticks()
        finally:
            self._in_callback = False
            if self._ticks:  # left behind by a callback that raised: not lost
                self.asyncio_loop.call_soon(self._run_ticks)

    def _run_ticks(self) -> None:
        # Also scheduled on its own, for ticks queued outside our callbacks
        # (user code in a coroutine) or left behind by a callback that raised.
        ticks = self._ticks
        while ticks:
            callback, args = ticks.popleft()
            callback(*args)

    # New fds go to asyncio in one callback of the next turn, in the order
    # added, as the private loop gives them to epoll at its next wait (see
    # FdTable in fdtable.py): fds that are all ready by then come back in
    # that order, as Node's do.
    def _add(self, fd: int, slot: int, callback: Callback) -> None:
        if not self._adding:
            self.asyncio_loop.call_soon(self._register_added)
        self._adding[(fd, slot)] = callback

    def _register_added(self) -> None:
        adding, self._adding = self._adding, {}
        failed: OSError | None = None
        for (fd, slot), callback in adding.items():
            try:
                (self.asyncio_loop.add_writer if slot else self.asyncio_loop.add_reader)(fd, self._run, callback, ())
            except OSError as exc:
                if exc.errno != _EBADF:  # EBADF: closed meanwhile, nothing to watch
                    failed = failed or exc
        if failed is not None:
            raise failed

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._add(fd, 0, callback)

    def remove_reader(self, fd: int) -> None:
        self._adding.pop((fd, 0), None)
        self.asyncio_loop.remove_reader(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._add(fd, 1, callback)

    def remove_writer(self, fd: int) -> None:
        self._adding.pop((fd, 1), None)
        self.asyncio_loop.remove_writer(fd)

    def call_soon(self, callback: Callback, *args: Any) -> None:
        # One asyncio Handle for the calls queued in one turn (a Handle
        # each cost more than most of the callbacks): they run on the next
        # turn, in order, each as its own Handle ran it (ticks after it).
        ready = self._ready
        if not ready:
            self.asyncio_loop.call_soon(self._run_ready)
        ready.append((callback, args))

    def _run_ready(self) -> None:
        batch, self._ready = self._ready, deque()  # what these queue is the next turn's
        while batch:
            callback, args = batch.popleft()
            try:
                self._run(callback, args)
            except BaseException:
                if batch:  # not lost: first in line on the next turn
                    if not self._ready:
                        self.asyncio_loop.call_soon(self._run_ready)
                    self._ready.extendleft(reversed(batch))
                raise

    def next_tick(self, callback: Callback, *args: Any) -> None:
        if not self._ticks and not self._in_callback:
            self.asyncio_loop.call_soon(self._run_ticks)
        self._ticks.append((callback, args))

    def call_closing(self, callback: Callback, *args: Any) -> None:
        # One asyncio callback for the handles closed in this turn: it runs
        # after the turn's other callbacks, and runs them the last first.
        if not self._closing:
            self.asyncio_loop.call_soon(self._run, self._run_closing, ())
        self._closing.append((callback, args))

    def _run_closing(self) -> None:
        batch = self._closing[::-1]
        self._closing = []
        for i, (callback, args) in enumerate(batch):
            try:
                callback(*args)
            except BaseException:
                for rest in reversed(batch[i + 1 :]):  # not lost: queued again
                    self.call_closing(rest[0], *rest[1])
                raise
            if self._ticks:
                self._run_ticks()

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        self.asyncio_loop.call_soon_threadsafe(self._run, callback, args)

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        handle = TimerHandle(self.asyncio_loop.time() + delay, callback, args)
        handle._inner = self.asyncio_loop.call_later(delay, self._run, callback, args)
        return handle

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        if done():
            return True
        raise RuntimeError(
            "this child belongs to a running asyncio loop: blocking would stop it from "
            "delivering events; use 'await child' (or await the stream) instead"
        )


class EpollAsyncioReactor(FdTable, AsyncioReactor):
    """:class:`AsyncioReactor` with childproc's fds in an epoll instance of
    its own, which asyncio watches as one fd (Linux: an epoll fd is itself
    pollable, by asyncio's selector as by uvloop).

    asyncio's ``add_reader``/``remove_reader`` go through the selectors
    layer (key objects, a Handle per fd, transport checks): for the three
    pipes and the pidfd of every spawn that was a third of the parent's
    cost of ``await cp.spawn(...)``.  Here an fd costs an ``epoll_ctl``.
    What asyncio sees is unchanged in kind: one callback per wake-up of
    the epoll fd, in which each ready fd's callback runs as it did in a
    Handle of its own, in the order epoll reports them, the ticks after
    each.  The epoll is level-triggered: an fd not served because a
    callback before it raised is reported again at the next wake-up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._init_fds(None)  # the epoll is made at the first fd
        self._poller_fd = -1
        self.hangups: dict[int, int] = {}  # the last dispatch's, as the private loop keeps them

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see forksafe): the epoll instance is the
        # parent's (fork copies the fd, not the instance).
        replace_with_null(self._poller_fd, null_fd)

    def _start_poller(self) -> select.epoll:
        poller = self._poller = select.epoll()  # close-on-exec
        self._poller_fd = poller.fileno()
        track(self)
        self.asyncio_loop.add_reader(self._poller_fd, self._dispatch)
        return poller

    def _first_added(self) -> None:
        # The new fds go to epoll in one callback of the next turn, as
        # AsyncioReactor gives them to asyncio.
        self.call_soon(self._register_added)

    # True while _dispatch serves the fds of one wake-up: what their
    # callbacks queue (call_soon, call_closing) runs at the end of it.
    _dispatching = False

    def call_soon(self, callback: Callback, *args: Any) -> None:
        ready = self._ready
        if not ready and not self._dispatching:
            self.asyncio_loop.call_soon(self._run_ready)
        ready.append((callback, args))

    def call_closing(self, callback: Callback, *args: Any) -> None:
        if not self._closing and not self._dispatching:
            self.asyncio_loop.call_soon(self._run, self._run_closing, ())
        self._closing.append((callback, args))

    def _dispatch(self) -> None:
        poller = self._poller
        if poller is None:
            return
        callbacks, hangups = self._callbacks, self.hangups
        if hangups:
            hangups.clear()
        self._dispatching = True
        events = poller.poll(0)
        served = 0
        try:
            for fd, mask in events:
                served += 1
                entry = callbacks.get(fd)
                if entry is None:
                    continue  # removed by a callback before it in this batch
                # A hang-up or error wakes both sides, as asyncio's selector does.
                if mask & (READ | HUP) and entry[0] is not None:
                    if mask & HUP:
                        hangups[fd] = mask
                    self._run(entry[0], ())
                if mask & (WRITE | HUP) and entry[1] is not None and callbacks.get(fd) is entry:
                    self._run(entry[1], ())
            # The rest of libuv's turn in this one callback, as the private
            # loop runs it after a wait: what the fds' callbacks queued, then
            # the close phase (the streams' 'close', then the child's).  Left
            # for asyncio's next turn, it cost every spawn a turn of its own
            # (a select and a Handle) before `await child` could resume.
            # What these queue goes to the next turn.
            if self._ready:
                self._run_ready()
            if self._closing:
                self._run(self._run_closing, ())
        except BaseException:
            # A callback raised: the fds after it are reported again at the
            # next wake-up, the one-shot ones (pidfds) once armed again.
            self._rearm_unserved(events[served:])
            raise
        finally:
            self._dispatching = False
            # Queued meanwhile, or left by a callback that raised: not lost.
            if self._ready:
                self.asyncio_loop.call_soon(self._run_ready)
            if self._closing:
                self.asyncio_loop.call_soon(self._run, self._run_closing, ())


def asyncio_reactor(loop: asyncio.AbstractEventLoop) -> AsyncioReactor:
    """The reactor for a running asyncio ``loop`` (not Windows: see loop.py)."""
    if hasattr(select, "epoll"):
        return EpollAsyncioReactor(loop)
    return AsyncioReactor(loop)
