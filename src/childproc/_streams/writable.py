"""The write side of a child's pipes (``child.stdin``), and the errors streams raise.

A :class:`Writable` owns one non-blocking pipe fd.  ``write()`` tries the
kernel at once when nothing is queued -- a child that keeps up never costs a
queue entry or a loop round -- and queues only what the pipe did not take,
waiting for writability through the reactor.  Node's contract is kept:
``write()`` returns False once the queue holds ``high_water_mark`` bytes (a
chunk that alone reaches the mark counts, as in Node, even when the kernel
took all of it), ``'drain'`` follows when the queue empties, callbacks run on
a later tick with ``None`` or the error, ``end()`` flushes, closes the fd and
emits ``'finish'`` then ``'close'``.

Errors follow Node's split between what is an ``'error'`` *event* and what
only reaches a callback (measured against node v20's ``child.stdin``):

* write after ``end()``: ``ERR_STREAM_WRITE_AFTER_END`` to the callback *and*
  as ``'error'``, then ``'close'`` (the stream is destroyed);
* write after ``destroy()``: ``ERR_STREAM_DESTROYED`` to the callback only;
* the child closed its stdin: ``'error'`` with an ``OSError`` whose ``code``
  is ``'EPIPE'``, ``syscall`` ``'write'`` and message ``write EPIPE``; every
  pending callback gets it too; then ``'close'``.

The stream error classes and the system-error factory are in
:mod:`childproc._errors`, with every other exception.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import already_finished, stream_destroyed, system_error, write_after_end
from .base import FdStream
from .decode import to_bytes

if TYPE_CHECKING:
    from .._runtime.reactor import Reactor

__all__ = ["Writable"]

WriteCallback = Callable[[BaseException | None], Any]

# How many queued chunks one writev() may carry (POSIX guarantees 16; Linux 1024).
_WIN = sys.platform == "win32"
_IOV_MAX = min(os.sysconf("SC_IOV_MAX"), 1024) if hasattr(os, "sysconf") else 16


class Writable(FdStream):
    """A child's stdin (or any pipe fd the parent writes to), with Node's stream contract.

    ``fd`` must be non-blocking; the stream owns it and closes it at
    ``end()``/``destroy()``.  Events: ``'drain'``, ``'finish'``, ``'close'``,
    ``'error'``, ``'pipe'(src)``, ``'unpipe'(src)``.  The stream keeps the
    loop alive (a reactor ref) only while it has bytes waiting for the pipe,
    as a libuv handle with a pending write does; ``unref()`` opts out.
    """

    # Immutable starting values are class attributes (see FdStream).
    _length = 0
    _need_drain = False
    _ending = False  # end() was called
    _finished = False
    _finish_scheduled = False
    _errored: BaseException | None = None
    _waiting = False  # registered for writability
    _held = False  # a C pump writes to our fd: keep off it
    _pump_owner: Any = None  # the Readable whose pump writes here

    def __init__(self, fd: int, reactor: Reactor, *, high_water_mark: int = 64 * 1024) -> None:
        FdStream.__init__(self, fd, reactor, high_water_mark)  # not super(): one per spawn
        # [view, callback] pairs; the head's view shrinks as it is written.
        self._queue: deque[list[Any]] = deque()
        self._end_callbacks: list[WriteCallback] = []
        self._flush_waiters: list[Callable[[], Any]] = []
        self._parked: deque[list[Any]] = deque()  # writes made while a pump is attached

    # -- properties (Node's names in snake_case) ----------------------------

    @property
    def writable(self) -> bool:
        """True until ``end()`` is called or the stream is destroyed."""
        return not (self._ending or self._destroyed)

    @property
    def writable_length(self) -> int:
        """Bytes queued and not yet taken by the kernel."""
        return self._length

    @property
    def writable_high_water_mark(self) -> int:
        return self._hwm

    @property
    def writable_need_drain(self) -> bool:
        return self._need_drain

    @property
    def writable_ended(self) -> bool:
        """``end()`` has been called."""
        return self._ending

    @property
    def writable_finished(self) -> bool:
        """Everything was flushed after ``end()`` (``'finish'`` is due or done)."""
        return self._finished

    def __repr__(self) -> str:
        if self._destroyed or self._closed:
            state = "closed" if self._closed else "destroyed"
        elif self._finished:
            state = "finished"
        elif self._ending:
            state = "ending"
        else:
            state = "open"
        return f"<Writable fd={self._fd} {state}, {self._length} queued>"

    # -- keep-alive: only while bytes wait for the pipe, as libuv ------------

    def _wants_ref(self) -> bool:
        return self._waiting and not self._closed

    # -- writing -------------------------------------------------------------

    def write(self, data: Any, callback: WriteCallback | None = None) -> bool:
        """Write ``data`` (bytes-like, or str as UTF-8); False once ``high_water_mark`` is queued.

        ``callback(None)`` runs on a later tick once this chunk is in the pipe,
        ``callback(err)`` if it never gets there.  After False, wait for
        ``'drain'`` before writing more, or memory grows without bound.
        """
        if callback is not None and not callable(callback):
            from .._messages import invalid_arg_type

            raise invalid_arg_type("cb", "function", callback)
        view = to_bytes(data)  # type errors are thrown, as Node does
        if self._ending:
            err: BaseException = write_after_end()
            if callback is not None:
                self._reactor.call_soon(callback, err)
            self.destroy(err)
            return False
        if self._destroyed:
            if callback is not None:
                self._reactor.call_soon(callback, stream_destroyed("write"))
            return False
        if self._lent and not self._borrowers:  # lent to a spawn that failed: ours again
            self._reclaim()
        size = len(view)
        # Node computes the answer before trying the write: a chunk that
        # alone reaches the mark says "wait for drain" even if the kernel
        # takes it whole.
        ok = self._length + size < self._hwm
        if not ok:
            self._need_drain = True
        written = 0
        if self._pump_owner is not None:
            # A C pump owns the fd's output now: this goes out after it.
            self._parked.append([memoryview(view if type(view) is bytes else bytes(view)), callback])
            self._length += size
            return ok
        if not self._queue and not self._held and not self._borrowers:
            try:
                if _WIN:
                    written = self._reactor.write(self._fd, view) if size else 0
                else:
                    written = os.write(self._fd, view) if size else 0
            except BlockingIOError:
                pass
            except OSError as exc:
                # EPIPE: the child closed its stdin.  One error object for the
                # callback and the 'error' event, as in Node.
                err = system_error(exc.errno or _errno.EIO, "write")
                if callback is not None:
                    self._reactor.call_soon(callback, err)
                self.destroy(err)
                return False
            if written == size:
                if callback is not None:
                    self._reactor.call_soon(callback, None)
                if self._need_drain:
                    self._reactor.call_soon(self._maybe_drain)
                return ok
            size -= written
        if type(view) is bytes:
            view = memoryview(view)[written:]  # slicing a view never copies
        else:
            # The caller may reuse its buffer once write() returns: keep a copy.
            view = memoryview(bytes(view[written:]))
        self._queue.append([view, callback])
        self._length += size
        self._watch()
        return ok

    def _watch(self) -> None:
        if not self._waiting and not self._held and not self._borrowers and self._fd >= 0:
            self._waiting = True
            self._reactor.add_writer(self._fd, self._on_writable)
            self._update_ref()

    def _unwatch(self) -> None:
        if self._waiting:
            self._waiting = False
            if self._fd >= 0:
                self._reactor.remove_writer(self._fd)
            self._update_ref()

    def _on_writable(self) -> None:
        """The pipe has room: write as much of the queue as it takes."""
        queue = self._queue
        reactor = self._reactor
        while queue:
            try:
                if _WIN:
                    # One overlapped write in flight per pipe: all of the queue.
                    data = queue[0][0] if len(queue) == 1 else b"".join(entry[0] for entry in queue)
                    written = self._reactor.write(self._fd, data)
                elif len(queue) == 1:
                    written = os.write(self._fd, queue[0][0])
                else:
                    # Several small chunks: one writev instead of a syscall each.
                    written = os.writev(self._fd, [entry[0] for entry in queue if entry[0]][:_IOV_MAX])
            except BlockingIOError:
                return
            except OSError as exc:
                self.destroy(system_error(exc.errno or _errno.EIO, "write"))
                return
            self._length -= written
            while queue and written >= len(queue[0][0]):
                view, callback = queue.popleft()
                written -= len(view)
                if callback is not None:
                    reactor.call_soon(callback, None)
            if written:
                queue[0][0] = queue[0][0][written:]
                return  # a short write: the pipe is full again
        self._unwatch()
        if self._need_drain:
            reactor.call_soon(self._maybe_drain)
        if self._flush_waiters:
            waiters, self._flush_waiters = self._flush_waiters, []
            for waiter in waiters:
                waiter()
        self._maybe_finish()

    def _maybe_drain(self) -> None:
        if self._need_drain and not self._queue and not self._destroyed:
            self._need_drain = False
            self.emit("drain")

    # -- ending --------------------------------------------------------------

    def end(self, data: Any = None, callback: WriteCallback | None = None) -> Writable:
        """Write ``data`` if given, then flush, close the fd, emit ``'finish'`` and ``'close'``.

        ``callback(None)`` runs just before the ``'finish'`` listeners; if the
        stream is destroyed first it gets the error instead (or
        ``ERR_STREAM_DESTROYED``).  After ``'finish'`` it gets
        ``ERR_STREAM_ALREADY_FINISHED``.
        """
        err: BaseException | None = None
        if data is not None:
            # As write() would, but the error goes to this callback.
            if self._ending:
                err = write_after_end()
                self.destroy(err)
            elif self._destroyed:
                err = stream_destroyed("write")
            else:
                self.write(data)
        if err is None:
            if not self._ending and not self._destroyed:
                self._ending = True
                if callback is not None:
                    self._end_callbacks.append(callback)
                self._maybe_finish()
                return self
            if self._finished:
                err = already_finished("end")
            elif self._destroyed:
                # (Node never calls back here when destroyed without an
                # error; a callback that never runs helps nobody.)
                err = self._errored or stream_destroyed("end")
        if callback is not None:
            if err is not None:
                self._reactor.call_soon(callback, err)
            else:
                self._end_callbacks.append(callback)  # ending: runs at 'finish'
        return self

    def _maybe_finish(self) -> None:
        if (
            self._ending
            and not self._queue
            and self._pump_owner is None
            and not self._finish_scheduled
            and not self._finished
            and not self._destroyed
        ):
            # A later tick, as in Node: a write() right after end() still
            # finds the stream unfinished (and fails as write-after-end).
            self._finish_scheduled = True
            self._reactor.call_soon(self._finish)

    def _finish(self) -> None:
        self._finish_scheduled = False
        if self._destroyed or self._finished:
            return
        self._finished = True
        self._close_fd()  # the child sees EOF before anyone hears 'finish'
        callbacks, self._end_callbacks = self._end_callbacks, []
        try:
            for callback in callbacks:
                callback(None)
            self.emit("finish")
        finally:
            self._destroyed = True  # Node's autoDestroy
            self._reactor.call_soon(self._emit_error_close, None)

    def _close_fd(self) -> None:
        if self._waiting:
            self._unwatch()
        if self._fd >= 0 and self._pump_owner is None:
            fd, self._fd = self._fd, -1
            if _WIN:
                self._reactor.close_fd(fd)  # after the write in flight, if any
            else:
                os.close(fd)

    def destroy(self, err: BaseException | None = None) -> Writable:
        """Close now: queued bytes are dropped, their callbacks get ``err`` (or
        ``ERR_STREAM_DESTROYED``); then ``'error'`` (if ``err``) and ``'close'``."""
        if self._destroyed:
            return self
        self._destroyed = True
        if err is not None:
            self._errored = err
        if self._pump_owner is not None:
            self._pump_owner._cancel_pump()  # the fd is closed once the pump lets go
        self._close_fd()
        self._reactor.call_soon(self._destroy_tick, err)
        return self

    def _destroy_tick(self, err: BaseException | None) -> None:
        if not (self._queue or self._parked or self._end_callbacks):
            # The usual case (a child's stdin nobody wrote to): no callback
            # to fail, only the close to schedule.
            self._reactor.call_soon(self._emit_error_close, err)
            return
        queue, self._queue = self._queue, deque()
        queue.extend(self._parked)
        self._parked.clear()
        self._length = 0
        try:
            for _view, callback in queue:
                if callback is not None:
                    callback(err or stream_destroyed("write"))
            callbacks, self._end_callbacks = self._end_callbacks, []
            for callback in callbacks:
                callback(err or stream_destroyed("end"))
        finally:
            # 'error' and 'close' one tick later, as Node's (whose handle
            # closes asynchronously): a write() callback issued right after
            # destroy() still runs before 'close'.
            self._reactor.call_soon(self._emit_error_close, err)

    def _emit_error_close(self, err: BaseException | None) -> None:
        self._closed = True
        if self._holding_ref:  # _update_ref(): a closed stream wants none
            self._holding_ref = False
            self._reactor.unref()
        if err is None:
            self.emit("close")
            return
        try:
            self.emit("error", err)
        finally:
            self.emit("close")

    # -- the C pump and stdio hand-over ---------------------------------------

    def _when_flushed(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once the queue is empty (now if it already is)."""
        if not self._queue:
            callback()
        else:
            self._flush_waiters.append(callback)

    def _lend_started(self) -> None:
        # Writes wait in the queue while a borrower runs: the fd is blocking
        # for its sake, and a write here must never block the loop.
        self._unwatch()

    def _on_returned(self) -> None:
        if self._queue:
            self._watch()

    def _attach_pump(self, owner: Any) -> None:
        """``owner.pipe(self)`` chose the C pump: later writes wait for it to
        finish (what is queued now still goes first), and ``destroy()``
        cancels it."""
        self._pump_owner = owner

    def _hold(self) -> None:
        """The pump's thread writes to our fd from now on: stay off it."""
        self._held = True
        self._unwatch()

    def _detach_pump(self) -> None:
        """The pump is done: flush what was written meanwhile, close if asked to."""
        self._pump_owner = None
        self._held = False
        self._queue.extend(self._parked)
        self._parked.clear()
        if self._destroyed:
            self._close_fd()
        elif self._queue:
            self._watch()
        else:
            self._maybe_finish()
