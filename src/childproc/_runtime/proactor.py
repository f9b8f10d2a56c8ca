"""Windows: the reactor on asyncio's ProactorEventLoop (the Windows default),
which has no ``add_reader``/``add_writer`` (docs/architecture.md, "Windows").

The same readiness over completions as the private loop
(:mod:`childproc._runtime.iocp`), on the proactor's own completion port:
a zero-byte ``ReadFile`` through ``proactor.recv(conn, 0)`` says "readable",
one ``proactor.send`` in flight per pipe end says "not writable" until it
completes, and ``proactor.wait_for_handle`` watches a child's exit.  Every
callback runs through :meth:`AsyncioReactor._run`, so ``next_tick`` and the
close phase keep their order.
"""

from __future__ import annotations

import sys

# Windows only; also tells type checkers on other platforms to skip the rest.
assert sys.platform == "win32"

import itertools
import os

import msvcrt

from .aio import AsyncioReactor

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["ProactorReactor"]


class _Pipe:
    """What the proactor takes as a connection: something with ``fileno()``
    (the HANDLE).  One per open fd, so the handle is associated with the
    port once."""

    __slots__ = ("handle", "__weakref__")

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def fileno(self) -> int:
        return self.handle


class ProactorReactor(AsyncioReactor):
    """:class:`AsyncioReactor` for a loop with a proactor instead of a selector."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._proactor: Any = loop._proactor  # type: ignore[attr-defined]
        self._pipes: dict[int, _Pipe] = {}
        self._readers: dict[int, Callback] = {}
        self._writers: dict[int, Callback] = {}
        self._reads: dict[int, Any] = {}  # fd -> zero-byte read in flight (a future)
        self._writes: dict[int, Any] = {}  # fd -> write in flight
        self._write_errors: dict[int, BaseException] = {}
        self._close_after_write: set[int] = set()
        self._waits: dict[int, Any] = {}
        self._keys = itertools.count(1)

    def _pipe(self, fd: int) -> _Pipe:
        handle = msvcrt.get_osfhandle(fd)
        pipe = self._pipes.get(fd)
        if pipe is None or pipe.handle != handle:
            pipe = self._pipes[fd] = _Pipe(handle)
        return pipe

    # -- readiness -------------------------------------------------------------

    def _register_added(self) -> None:
        adding, self._adding = self._adding, {}
        for (fd, slot), callback in adding.items():
            if slot:
                self._writers[fd] = callback
                if fd not in self._writes:
                    self.asyncio_loop.call_soon(self._writable, fd)
            else:
                self._readers[fd] = callback
                self._arm_read(fd)

    def _arm_read(self, fd: int) -> None:
        if fd in self._reads or fd not in self._readers:
            return
        future = self._proactor.recv(self._pipe(fd), 0)
        self._reads[fd] = future
        future.add_done_callback(lambda f, fd=fd: self._read_done(fd, f))

    def _read_done(self, fd: int, future: Any) -> None:
        if self._reads.get(fd) is future:
            del self._reads[fd]
        if future.cancelled():
            return
        callback = self._readers.get(fd)
        if callback is None:
            return
        # An error (the writer gone) is readable too: the read reports it.
        future.exception()  # retrieved, so asyncio does not log it
        self._run(callback, ())
        self._arm_read(fd)  # level-triggered, as epoll is

    def remove_reader(self, fd: int) -> None:
        self._adding.pop((fd, 0), None)
        self._readers.pop(fd, None)
        future = self._reads.pop(fd, None)
        if future is not None:
            future.cancel()

    def remove_writer(self, fd: int) -> None:
        self._adding.pop((fd, 1), None)
        self._writers.pop(fd, None)

    def _writable(self, fd: int) -> None:
        callback = self._writers.get(fd)
        if callback is not None and fd not in self._writes:
            self._run(callback, ())

    # -- what Windows adds to the reactor interface ---------------------------------

    def write(self, fd: int, data: Any) -> int:
        err = self._write_errors.pop(fd, None)
        if err is not None:
            raise err
        if fd in self._writes:
            raise BlockingIOError
        if not len(data):
            return 0
        future = self._proactor.send(self._pipe(fd), data)
        self._writes[fd] = future
        future.add_done_callback(lambda f, fd=fd: self._write_done(fd, f))
        return len(data)

    def _write_done(self, fd: int, future: Any) -> None:
        del self._writes[fd]
        if not future.cancelled() and future.exception() is not None:
            self._write_errors[fd] = future.exception()
        if fd in self._close_after_write:
            self._close_after_write.discard(fd)
            self.close_fd(fd)
            return
        self._writable(fd)

    def close_fd(self, fd: int) -> None:
        if fd in self._writes:
            self._close_after_write.add(fd)
            return
        self._pipes.pop(fd, None)
        self._write_errors.pop(fd, None)
        os.close(fd)

    def watch_handle(self, handle: int, callback: Callback) -> int:
        key = next(self._keys)
        future = self._proactor.wait_for_handle(handle)
        self._waits[key] = future

        def done(f: Any) -> None:
            if self._waits.pop(key, None) is not None and not f.cancelled():
                self._run(callback, ())

        future.add_done_callback(done)
        return key

    def unwatch_handle(self, key: int) -> None:
        future = self._waits.pop(key, None)
        if future is not None:
            future.cancel()
