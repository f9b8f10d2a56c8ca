"""The reactor on a running asyncio loop (uvloop works too): childproc's
events are delivered on the loop the creating code runs on
(docs/architecture.md, "The loop")."""

from __future__ import annotations

import _thread
from collections import deque
from errno import EBADF as _EBADF

from .reactor import Reactor, TimerHandle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["AsyncioReactor"]


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
        self._adding: dict[tuple[int, int], Callback] = {}  # (fd, 0 read / 1 write) -> callback

    def _run(self, callback: Callback, args: tuple[Any, ...]) -> None:
        callback(*args)
        if self._ticks:
            self._run_ticks()

    def _run_ticks(self) -> None:
        # Also called on its own (next_tick schedules it), for ticks queued
        # outside our callbacks (user code in a coroutine) or left behind by
        # a callback that raised.
        ticks = self._ticks
        while ticks:
            callback, args = ticks.popleft()
            callback(*args)

    # New fds go to asyncio in one callback of the next turn, in the order
    # added, as the private loop gives them to epoll at its next wait (see
    # PrivateLoop._update): fds that are all ready by then come back in
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
        self.asyncio_loop.call_soon(self._run, callback, args)

    def next_tick(self, callback: Callback, *args: Any) -> None:
        if not self._ticks:
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
