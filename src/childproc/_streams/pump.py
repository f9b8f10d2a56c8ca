"""childproc's streams: Node's Readable/Writable on pipe fds, plus Python iteration.

:class:`Readable` (``child.stdout``, ``child.stderr``, extra output pipes,
in :mod:`.readable`) and :class:`Writable` (``child.stdin``, in
:mod:`.writable`) carry Node's core contract -- paused mode until
consumed, ``'data'``/``'end'``/``'close'``/``'error'``, ``pause()``/``resume()``,
``set_encoding()``, ``pipe()``/``unpipe()``, ``write()`` returning False at the
high-water mark, ``'drain'``, ``end()``/``'finish'``, EPIPE as ``'error'`` --
and the Python additions ``for chunk in stream``, ``async for``, ``lines()``
and ``read()``.  This module holds the machinery behind ``pipe()``
(``lines()`` is in :mod:`.lines`).

``readable.pipe(dest)`` takes one of two roads:

* **The C pump** when ``dest`` is fd-backed (a childproc ``Writable``, or any
  object with a working ``fileno()``: an open file, a socket, ``sys.stdout``)
  and the source has no ``'data'`` listener, no other pipe and no iterator.
  The source stops reading; bytes it had already read ahead are written to
  ``dest`` first; then a C thread moves the rest with ``splice(2)`` (a
  read/write loop where splice cannot serve) and wakes the loop through a
  close-on-exec, non-blocking wake pipe when it is done.  Then, as Node:
  ``'end'`` and ``'close'`` on the source and, with ``end=True``, ``end()`` on a
  ``Writable`` destination.  Raw file objects are flushed once *before* the
  pump starts (so what you wrote through them comes first) and never
  flushed, ended or closed afterwards: the fd is written directly, the object
  stays yours.  A write failure (EPIPE ...) destroys a ``Writable``
  destination with that error, or, for a raw destination, the source.
  Writes to a ``Writable`` destination made after ``pipe()`` are queued and
  go out after the pump (what it had queued before goes first).  ``unpipe()``/``destroy()`` cancel it within a moment.
* **Node's pipe** otherwise: ``dest.write(chunk)`` per ``'data'``; when it
  returns False the source pauses until ``dest`` emits ``'drain'``; ``dest``
  gets ``'pipe'``/``'unpipe'``; an ``'error'``, ``'close'`` or ``'finish'`` of
  ``dest`` unpipes.  Destinations without events (``io.BytesIO``) are written
  to synchronously and never ended (they have no ``end()``).

A running pump grows both pipes to 1 MiB if, a few dozen milliseconds in,
bytes are piling up in one of them (a bulk transfer waiting on pipe size);
a quiet stream keeps its small pipes.

Deliberate differences from Node
--------------------------------

* ``'close'`` is emitted without arguments (``net.Socket`` passes
  ``hadError``, which a Python listener would have to accept); an error is
  always announced by ``'error'`` just before it.
* A child's stdout is a Readable, not a Duplex ``net.Socket``: it has no
  ``write()`` and emits no ``'finish'``.  No ``'readable'`` event and no
  ``read(size)``: ``read()`` returns everything up to EOF (Python addition).
* A stream placed in another child's ``stdio`` is closed in the parent and
  emits ``'close'`` (Node keeps the parent's copy open and never emits it,
  so a writer never sees EPIPE when the new reader dies).  The fd is put in
  blocking mode for the new child first (libuv does the same in the child).
* After the child's exit, an output stream that nobody consumes (no
  ``'data'`` listener, no ``pipe()``, no iterator, not flowing) is not
  resumed into a void, as Node's ``flushStdio`` does: it reads to EOF and
  *keeps* the data (up to ``readable.DRAIN_AFTER_EXIT_CAP``, 64 MiB
  buffered; the rest is dropped and counted in ``discarded_after_exit``),
  so ``out = child.stdout.read(); err = child.stderr.read()`` or reading
  after ``child.wait()`` loses nothing.  Its fd closes at EOF and the
  ChildProcess's ``'exit'``/``'close'`` come exactly when they come in
  Node; the stream's own ``'end'`` then ``'close'`` come once the kept data
  has been consumed (by ``read()``, iteration, ``lines()``, a ``'data'``
  listener, ``resume()`` or ``pipe()``), never if it never is.  It emits
  no ``'resume'`` and ``readable_flowing`` is not set to True by the drain.
* Leaving a ``for``/``async for`` early keeps the stream, paused and usable
  (Node's async iterator destroys it), like a file.
* ``end(callback)`` on a stream destroyed without an error calls back with
  ``ERR_STREAM_DESTROYED`` (Node never calls that callback).
* A failing ``write()`` fails at once (the kernel answers synchronously):
  when the child had already closed its stdin, the first write gets EPIPE
  and later writes get ``ERR_STREAM_DESTROYED``, where Node, whose write
  completes asynchronously, gives them EPIPE as well.
* With the C pump, ``pause()`` does not stop the bytes (``unpipe()`` does,
  within a moment), ``'data'`` listeners added afterwards see nothing, and a
  write error towards a raw file object destroys the source (there is
  nobody else to tell).
* Chunks can be up to 1 MiB (the grown pipe's size), not 64 KiB.
* ``errno`` is positive on errors, Python's convention (Node: negative).
* A Writable keeps the loop alive only while it has bytes waiting for the
  pipe (what a libuv handle with a pending write does), a Readable until
  its ``'close'``.
"""

from __future__ import annotations

import codecs
import errno as _errno
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from .._errors import system_error
from .._runtime.poller import pipe_cloexec
from .._spawn import native
from .decode import Chunk, encode_chunk
from .state import ReadableState
from .writable import Writable

if TYPE_CHECKING:
    from .._runtime.reactor import Reactor

__all__ = ["PipeState", "Pump", "dest_fd", "pump_available"]

def dest_fd(dest: Any) -> int | None:
    """The fd behind a ``pipe()`` destination, or None to pipe through Python."""
    if isinstance(dest, Writable):
        if not dest.writable or dest._pump_owner is not None or dest._fd < 0:
            return None
        return dest._fd
    if isinstance(dest, ReadableState) or not hasattr(dest, "fileno"):
        return None
    try:
        fd = dest.fileno()
    except (OSError, ValueError, AttributeError):  # io.BytesIO, a closed file ...
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def pump_available() -> bool:
    """Whether ``pipe()`` may use the C core's fd-to-fd pump: POSIX only.  The
    Windows core has one too, but its wake-up would be an anonymous pipe,
    which the completion-port loop cannot watch (it watches the overlapped
    pipes it made), so Windows takes Node's pipe through Python."""
    return native.HAS_PUMP and os.name != "nt"


# When a running pump looks at its pipes' backlog (seconds after the start).
_GROW_CHECKS = (0.02, 0.03, 0.05)


try:
    import fcntl as _fcntl
    import termios as _termios
except ImportError:  # Windows: no pipe sizes to look at
    _fcntl = _termios = None  # type: ignore[assignment]
_F_GETPIPE_SZ: int | None = getattr(_fcntl, "F_GETPIPE_SZ", None)
_F_SETPIPE_SZ: int | None = getattr(_fcntl, "F_SETPIPE_SZ", None)


def _fill(fd: int) -> float:
    """How full the pipe behind ``fd`` is (0.0 when it is not a pipe)."""
    if _F_GETPIPE_SZ is None:
        return 0.0
    try:
        queued = int.from_bytes(_fcntl.ioctl(fd, _termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)
        return queued / _fcntl.fcntl(fd, _F_GETPIPE_SZ)
    except (OSError, ZeroDivisionError):  # not a pipe (a file, a socket)
        return 0.0


def _grow(fd: int) -> None:
    if _F_SETPIPE_SZ is not None:
        try:
            _fcntl.fcntl(fd, _F_SETPIPE_SZ, 1 << 20)
        except OSError:  # EPERM: the per-user quota; EBADF/EINVAL: not a pipe
            pass


def _is_emitter(obj: Any) -> bool:
    return all(callable(getattr(obj, name, None)) for name in ("on", "off", "emit", "listener_count"))


class Pump:
    """One ``pipe()`` served by the C pump (see the module docstring)."""

    def __init__(self, src: ReadableState, dest: Any, fd: int, end: bool) -> None:
        self.src = src
        self.dest = dest
        self.fd = fd
        self.end = end
        self.to_writable = isinstance(dest, Writable)
        self.emitter = _is_emitter(dest)
        self.reactor: Reactor = src._reactor
        self.handle: Any = None  # the C cp_pump*, while its thread runs
        self.wake_r = self.wake_w = -1
        self.cancelled = False
        self.finished = False
        self.moved = 0  # bytes the C thread moved (not counting the read-ahead)
        self.pending: memoryview | None = None  # read-ahead still to write to a raw fd
        self.check: Any = None  # the timer of _check_backlog
        self.feeding = False

    def start(self) -> None:
        src = self.src
        src._pump = self
        src._stop_reading()
        src._flowing = True  # the stream is being consumed (Node's pipe resumes it)
        src._paused_flag = False
        prefix = [encode_chunk(c) for c in src._buffer]
        src._buffer.clear()
        src._length = 0
        self.reactor.call_soon(self._emit_resume)
        if self.emitter:
            self.dest.emit("pipe", src)
        if self.to_writable:
            dest: Writable = self.dest
            for chunk in prefix:
                dest.write(chunk)
            dest._attach_pump(src)  # later writes wait; dest.destroy() cancels us
            dest._when_flushed(self._launch)
            return
        flush = getattr(self.dest, "flush", None)
        if callable(flush):
            try:
                flush()  # what was written through the file object goes first
            except (OSError, ValueError):
                pass
        if prefix:
            self.pending = memoryview(b"".join(prefix))
            self._feed()
        else:
            self._launch()

    def _emit_resume(self) -> None:
        if not self.src._destroyed:
            self.src.emit("resume")

    def _feed(self) -> None:
        """Write the read-ahead to a raw fd before the pump takes over."""
        while self.pending and not self.cancelled:
            try:
                n = os.write(self.fd, self.pending)
            except BlockingIOError:
                if not self.feeding:
                    self.feeding = True
                    self.reactor.add_writer(self.fd, self._feed)
                return
            except OSError as exc:
                self._stop_feeding()
                self._done(-(exc.errno or _errno.EIO))
                return
            self.pending = self.pending[n:]
        self._stop_feeding()
        if not self.cancelled:
            self._launch()

    def _stop_feeding(self) -> None:
        if self.feeding:
            self.feeding = False
            self.reactor.remove_writer(self.fd)

    def _launch(self) -> None:
        if self.cancelled or self.finished:
            return
        if self.to_writable:
            if self.dest._destroyed:  # it went away while its queue drained
                self._done(-_errno.ECANCELED)
                return
            self.dest._hold()
        self.wake_r, self.wake_w = pipe_cloexec()
        rc, handle = native.pump_start(self.src._fd, self.fd, self.wake_w)
        if rc < 0:
            self._close_wake()
            self._done(rc)
            return
        self.handle = handle
        self.reactor.add_reader(self.wake_r, self._on_wake)
        if not self.src._grow_tried:
            self.check = self.reactor.call_later(_GROW_CHECKS[0], self._check_backlog, 0)

    def _check_backlog(self, i: int) -> None:
        """Grow both pipes to 1 MiB if bytes are piling up in them.

        Still running after a few dozen milliseconds with a pipe at least half
        full means a bulk transfer that waits on the pipe size: bigger pipes
        mean fewer wake-ups for the C thread and both children.  A quiet
        stream (an interactive child) never shows a backlog and keeps its
        small pipes; the per-user quota is shared, so that matters.
        """
        self.check = None
        if self.finished or self.handle is None:
            return
        if any(_fill(fd) >= 0.5 for fd in (self.src._fd, self.fd)):
            self.src._grow_pipe()
            if self.to_writable:
                _grow(self.fd)
        elif i + 1 < len(_GROW_CHECKS):
            self.check = self.reactor.call_later(_GROW_CHECKS[i + 1], self._check_backlog, i + 1)

    def cancel(self) -> None:
        """Stop early (unpipe, destroy of either end); the rest happens in ``_done``."""
        if self.cancelled or self.finished:
            return
        self.cancelled = True
        if self.handle is not None:
            native.pump_cancel(self.handle)  # the thread wakes us as it stops
        else:
            self._stop_feeding()
            self.reactor.call_soon(self._done, -_errno.ECANCELED)

    def _on_wake(self) -> None:
        self.reactor.remove_reader(self.wake_r)
        rc, self.moved = native.pump_finish(self.handle)  # joins a thread that has already finished
        self.handle = None
        self._close_wake()
        self._done(rc)

    def _close_wake(self) -> None:
        for fd in (self.wake_r, self.wake_w):
            if fd >= 0:
                os.close(fd)
        self.wake_r = self.wake_w = -1

    def _done(self, rc: int) -> None:
        if self.finished:
            return
        self.finished = True
        if self.check is not None:
            self.check.cancel()
        src, dest = self.src, self.dest
        src._pump = None
        if self.to_writable:
            dest._detach_pump()
        if src._destroyed:
            # destroy() waited for the thread to let go of the fd.
            src._close_fd()
            self.reactor.call_closing(src._emit_close, src._errored)
        elif rc == 0:
            src._eof = True  # EOF: 'end' then 'close', as after the last 'data'
            src._maybe_end()
            if self.end and self.to_writable:
                dest.end()
        elif rc == -_errno.ECANCELED:
            src.pause()  # unpiped: back to paused mode, reading ahead again
            src._start_reading()
        else:
            err = system_error(-rc, "write")
            if self.to_writable:
                dest.destroy(err)
                src.pause()
                src._start_reading()
            else:
                src.destroy(err)  # nobody else could report it
        if self.emitter:
            dest.emit("unpipe", src)


class PipeState:
    """One Node-style ``pipe()``: the listeners on both ends and their removal."""

    def __init__(self, src: ReadableState, dest: Any, end: bool) -> None:
        self.src = src
        self.dest = dest
        self.end = end
        self.emitter = _is_emitter(dest)
        self.awaiting_drain = False
        self.drain_listening = False
        self.cleaned = False

    def attach(self) -> None:
        src, dest = self.src, self.dest
        src._pipes.append(self)
        src.on("data", self.ondata)
        end_fn = self.onend if self.end else self.unpipe
        if src._end_emitted:
            src._reactor.call_soon(end_fn)
        else:
            src.once("end", end_fn)
        if self.emitter:
            dest.on("unpipe", self.onunpipe)
            prepend = getattr(dest, "prepend_listener", None)
            (prepend if callable(prepend) else dest.on)("error", self.onerror)
            dest.once("close", self.onclose)
            dest.once("finish", self.onfinish)
            dest.emit("pipe", src)
        if getattr(dest, "writable_need_drain", False) is True:
            src.pause()
        elif not src._flowing:
            src.resume()

    def ondata(self, chunk: Chunk) -> None:
        if self.dest.write(chunk) is False:
            self.awaiting_drain = True
            if self.emitter and not self.drain_listening:
                self.drain_listening = True
                self.dest.on("drain", self.ondrain)
            self.src.pause()

    def ondrain(self) -> None:
        self.awaiting_drain = False
        src = self.src
        if not any(s.awaiting_drain for s in src._pipes) and src.listener_count("data"):
            src.resume()

    def onend(self) -> None:
        end = getattr(self.dest, "end", None)
        if callable(end):
            end()

    def unpipe(self, *_: Any) -> None:
        self.src.unpipe(self.dest)

    def onunpipe(self, readable: Any = None, *_: Any) -> None:
        if readable is self.src:
            self.cleanup()

    def onerror(self, err: BaseException) -> None:
        self.unpipe()
        self.dest.off("error", self.onerror)
        if self.dest.listener_count("error") == 0:
            raise err  # nobody else handles it: Node throws too

    def onclose(self) -> None:
        self.dest.off("finish", self.onfinish)
        self.unpipe()

    def onfinish(self) -> None:
        self.dest.off("close", self.onclose)
        self.unpipe()

    def detach(self) -> None:
        """``src.unpipe()`` removed us: tell ``dest``, drop every listener."""
        if self.emitter:
            self.dest.emit("unpipe", self.src)
        self.cleanup()

    def cleanup(self) -> None:
        if self.cleaned:
            return
        self.cleaned = True
        src, dest = self.src, self.dest
        src.off("data", self.ondata)
        src.off("end", self.onend)
        src.off("end", self.unpipe)
        if self.emitter:
            dest.off("unpipe", self.onunpipe)
            dest.off("error", self.onerror)
            dest.off("close", self.onclose)
            dest.off("finish", self.onfinish)
            if self.drain_listening:
                dest.off("drain", self.ondrain)
