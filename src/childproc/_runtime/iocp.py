"""Windows: the private loop on an I/O completion port (docs/architecture.md,
"The loop" and "Windows").

Windows pipes have no readiness to poll, only completions.  The streams
above are written for readiness (a callback when an fd can be read or
written, then a read or write that does not block), so this module gives
them readiness the way libuv gives it to Windows pipes:

* **reading**: a zero-byte overlapped ``ReadFile`` on the pipe completes when
  data arrives (or the writer goes away); that completion is "readable", and
  :func:`read` then asks ``PeekNamedPipe`` how much is there and reads no more,
  so it never blocks (nothing there is ``BlockingIOError``, a broken pipe is
  EOF);
* **writing**: :meth:`IocpLoop.write` starts one overlapped ``WriteFile`` per
  fd and reports the bytes as taken; while it is in flight the fd is not
  writable (``BlockingIOError``), and its completion is "writable".  A pipe
  end closed with a write in flight is closed once that write completes, so
  no byte is lost;
* **exits**: ``RegisterWaitWithQueue`` on the process handle posts a
  completion when the child ends: no thread per child and no
  ``WaitForMultipleObjects`` 64-handle cap;
* **wake-ups** from other threads: ``PostQueuedCompletionStatus``.

:class:`IocpLoop` is :class:`PrivateLoop` with :class:`IocpPoller` in place of
epoll: the ordering rules (registration order, next_tick, the close phase,
timers) are the same code.  Exit waits and the wake-up sit in the loop's fd
table under negative pseudo-fds, so the loop dispatches them like fds.
"""

from __future__ import annotations

import sys

# Windows only; also tells type checkers on other platforms to skip the rest.
assert sys.platform == "win32"

import itertools
import math
import os

import _overlapped
import _winapi
import msvcrt

from .poller import HUP, READ, WRITE
from .private import PrivateLoop

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["IocpLoop", "IocpPoller", "read"]

_INFINITE = 0xFFFFFFFF
_ERROR_BROKEN_PIPE = 109
_ERROR_NO_DATA = 232
_ERROR_PIPE_NOT_CONNECTED = 233
_ERROR_OPERATION_ABORTED = 995
_ERROR_NETNAME_DELETED = 64
_EOF_ERRORS = frozenset({_ERROR_BROKEN_PIPE, _ERROR_PIPE_NOT_CONNECTED, _ERROR_NO_DATA, _ERROR_NETNAME_DELETED})
_WAKE_KEY = 1  # completion key of a posted wake-up; I/O packets carry 0


def read(fd: int, size: int) -> bytes:
    """``os.read`` that never blocks on one of our overlapped pipe ends:
    ``BlockingIOError`` when nothing is there, ``b""`` once the writer is
    gone and everything was read (``cp_read_append`` does the same in C)."""
    handle = msvcrt.get_osfhandle(fd)
    try:
        avail = _winapi.PeekNamedPipe(handle, 0)[0]
    except OSError as exc:
        if getattr(exc, "winerror", None) in _EOF_ERRORS:
            return b""
        raise
    if not avail:
        raise BlockingIOError
    return os.read(fd, min(size, avail))


class IocpPoller:
    """``select.epoll``'s interface (register/modify/unregister/poll) over
    an I/O completion port, for fds that are our overlapped pipe ends; plus
    overlapped writes, handle waits and wake-ups for :class:`IocpLoop`."""

    def __init__(self) -> None:
        self._port = _overlapped.CreateIoCompletionPort(_overlapped.INVALID_HANDLE_VALUE, 0, 0, 0)
        self._masks: dict[int, int] = {}  # fd -> READ | WRITE wanted
        self._handles: dict[int, int] = {}  # fd -> its HANDLE, associated with the port
        self._reads: dict[int, Any] = {}  # fd -> the zero-byte read in flight
        self._writes: dict[int, Any] = {}  # fd -> the write in flight
        self._write_errors: dict[int, OSError] = {}  # a write's failure, for the next write
        self._close_after_write: set[int] = set()
        self._waits: dict[int, tuple[Any, int]] = {}  # pseudo-fd -> (Overlapped, wait handle)
        # Every overlapped operation in flight, by its OVERLAPPED address:
        # the object must live until its completion is dequeued.
        self._ops: dict[int, tuple[int, int, Any]] = {}  # address -> (kind, fd, Overlapped)
        self._soon: dict[int, int] = {}  # readiness known without waiting
        self._wake_ov = _overlapped.Overlapped(0)  # a real address to post with
        self._wake_fd: int | None = None
        self.write_done: Callable[[], object] | None = None  # told when a write completes

    # -- epoll's interface -------------------------------------------------

    def fileno(self) -> int:
        return -1

    def register(self, fd: int, mask: int) -> None:
        self._associate(fd)
        self._masks[fd] = mask

    def modify(self, fd: int, mask: int) -> None:
        if fd not in self._masks:
            raise KeyError(fd)
        self._masks[fd] = mask
        if not mask & READ:
            self._cancel_read(fd)

    def unregister(self, fd: int) -> None:
        if self._masks.pop(fd, None) is None:
            raise KeyError(fd)
        self._cancel_read(fd)
        if fd not in self._writes:
            self._handles.pop(fd, None)

    def poll(self, timeout: float = -1) -> list[tuple[int, int]]:
        soon = self._soon
        for fd, mask in self._masks.items():
            if mask & READ and fd not in self._reads:
                self._start_read(fd)
            if mask & WRITE and fd not in self._writes:
                soon[fd] = soon.get(fd, 0) | WRITE
        if soon:
            wait_ms = 0
        elif timeout is None or timeout < 0:
            wait_ms = _INFINITE
        else:
            wait_ms = min(math.ceil(timeout * 1000), _INFINITE - 1)
        while True:
            got = _overlapped.GetQueuedCompletionStatus(self._port, wait_ms)
            if got is None:
                break
            self._completed(*got)
            wait_ms = 0
        self._soon = {}
        # The loop looks each fd up in its own table and drops what it no
        # longer watches.
        return list(soon.items())

    def close(self) -> None:
        for address, (kind, fd, ov) in list(self._ops.items()):
            if kind != 2:
                try:
                    ov.cancel()
                except OSError:
                    pass
        for _, wait in self._waits.values():
            try:
                _overlapped.UnregisterWait(wait)
            except OSError:
                pass
        _winapi.CloseHandle(self._port)

    # -- the operations ------------------------------------------------------

    def _associate(self, fd: int) -> int:
        handle = msvcrt.get_osfhandle(fd)
        if self._handles.get(fd) != handle:
            try:
                _overlapped.CreateIoCompletionPort(handle, self._port, 0, 0)
            except OSError:
                pass  # already ours (a stream that paused and resumed)
            self._handles[fd] = handle
        return handle

    def _start_read(self, fd: int) -> None:
        try:
            handle = self._associate(fd)
        except OSError:
            self._masks.pop(fd, None)  # closed behind our back: nothing to watch
            return
        ov = _overlapped.Overlapped(0)
        try:
            ov.ReadFile(handle, 0)
        except OSError as exc:
            # Failed at once (no completion comes): the read reports it.
            self._soon[fd] = self._soon.get(fd, 0) | READ | (HUP if exc.winerror in _EOF_ERRORS else 0)
            return
        self._reads[fd] = ov
        self._ops[ov.address] = (0, fd, ov)

    def _cancel_read(self, fd: int) -> None:
        ov = self._reads.pop(fd, None)
        if ov is not None:
            try:
                ov.cancel()
            except OSError:
                pass  # completed meanwhile: its packet is still ours to dequeue

    def write(self, fd: int, data: Any) -> int:
        """Start writing all of ``data``; see the module doc."""
        err = self._write_errors.pop(fd, None)
        if err is not None:
            raise err
        if fd in self._writes:
            raise BlockingIOError
        if not len(data):
            return 0
        handle = self._associate(fd)
        ov = _overlapped.Overlapped(0)
        ov.WriteFile(handle, data)  # BrokenPipeError at once when the reader is gone
        self._writes[fd] = ov
        self._ops[ov.address] = (1, fd, ov)
        return len(data)

    def close_fd(self, fd: int) -> None:
        """Close ``fd`` now, or once its write in flight has completed."""
        self._masks.pop(fd, None)
        self._cancel_read(fd)
        if fd in self._writes:
            self._close_after_write.add(fd)
            return
        self._handles.pop(fd, None)
        self._write_errors.pop(fd, None)
        os.close(fd)

    def add_wait(self, pseudo_fd: int, handle: int) -> None:
        ov = _overlapped.Overlapped(0)
        wait = _overlapped.RegisterWaitWithQueue(handle, self._port, ov.address, _INFINITE)
        self._waits[pseudo_fd] = (ov, wait)
        self._ops[ov.address] = (2, pseudo_fd, ov)

    def remove_wait(self, pseudo_fd: int) -> None:
        entry = self._waits.pop(pseudo_fd, None)
        if entry is not None:
            ov, wait = entry
            try:
                _overlapped.UnregisterWait(wait)
            except OSError:
                pass
            # Unregistered: no completion will come for it any more, except
            # one already queued, which finds no op and is dropped.
            self._ops.pop(ov.address, None)

    def set_wake_fd(self, pseudo_fd: int) -> None:
        self._wake_fd = pseudo_fd

    def wake(self) -> None:
        _overlapped.PostQueuedCompletionStatus(self._port, 0, _WAKE_KEY, self._wake_ov.address)

    def _completed(self, err: int, transferred: int, key: int, address: int) -> None:
        soon = self._soon
        if key == _WAKE_KEY:
            if self._wake_fd is not None:
                soon[self._wake_fd] = READ
            return
        op = self._ops.pop(address, None)
        if op is None:
            return
        kind, fd, ov = op
        if kind == 0:
            if self._reads.get(fd) is ov:
                del self._reads[fd]
            if err == _ERROR_OPERATION_ABORTED:
                return
            soon[fd] = soon.get(fd, 0) | READ | (HUP if err in _EOF_ERRORS else 0)
        elif kind == 1:
            del self._writes[fd]
            if self.write_done is not None:
                self.write_done()
            if err and err != _ERROR_OPERATION_ABORTED:
                # With a winerror, OSError picks the errno and subclass
                # itself (ERROR_NO_DATA: BrokenPipeError, EPIPE).
                self._write_errors[fd] = OSError(0, "WriteFile failed", None, err)
            if fd in self._close_after_write:
                self._close_after_write.discard(fd)
                self.close_fd(fd)
                return
            soon[fd] = soon.get(fd, 0) | WRITE
        else:
            entry = self._waits.pop(fd, None)
            if entry is not None:
                try:
                    _overlapped.UnregisterWait(entry[1])
                except OSError:
                    pass
                soon[fd] = READ


class IocpLoop(PrivateLoop):
    """The private loop on Windows: :class:`PrivateLoop`'s scheduling over
    :class:`IocpPoller`."""

    _poller: IocpPoller  # type: ignore[assignment,unused-ignore]

    def _make_poller(self) -> IocpPoller:
        return IocpPoller()

    def _make_wakeup(self) -> None:
        # A posted completion instead of a pipe; -1 stands for it in the
        # fd table, exit waits take -2, -3, ...
        self._pseudo = itertools.count(-2, -1)
        self._wake_r = self._wake_w = -1
        self._wake_posted = False
        self._poller.set_wake_fd(-1)
        self._poller.write_done = self._write_done
        self._callbacks[-1] = [self._drain_wakeups, None]

    def _forget_after_fork(self, null_fd: int) -> None:  # pragma: no cover - no fork on Windows
        self.thread_id = None

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        with self._lock:
            self._threadsafe.append((callback, args))
            if self._wake_posted or self.closed:
                return
            self._wake_posted = True
            self._poller.wake()  # under the lock: close() may end the port meanwhile

    def _drain_wakeups(self) -> None:
        with self._lock:
            self._wake_posted = False
            self._ready.extend(self._threadsafe)
            self._threadsafe.clear()

    # -- what Windows adds to the reactor interface ---------------------------

    def watch_handle(self, handle: int, callback: Callback) -> int:
        """Call ``callback`` once ``handle`` (a process) is signalled; returns
        a key for :meth:`unwatch_handle`."""
        key = next(self._pseudo)
        self._callbacks[key] = [callback, None]
        self._poller.add_wait(key, handle)
        return key

    def unwatch_handle(self, key: int) -> None:
        self._poller.remove_wait(key)
        self._callbacks.pop(key, None)

    def write(self, fd: int, data: Any) -> int:
        n = self._poller.write(fd, data)
        if n:
            # Until the bytes are in the pipe, as a Node write request keeps
            # the loop alive: a process that ends with a write in flight
            # would lose it (closing the handle cancels the write).
            # Its completion is an event still to come, too.
            self._refs += 1
            self._awaited_wakeups += 1
        return n

    def _write_done(self) -> None:
        self._refs -= 1
        self._awaited_wakeups -= 1

    def close_fd(self, fd: int) -> None:
        self._callbacks.pop(fd, None)
        self._unregistered.pop(fd, None)
        self._poller.close_fd(fd)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.thread_id = None
        self._poller.close()
