"""The read side of a child's pipes (``child.stdout``, ``child.stderr``): Node's Readable.

The stream owns one non-blocking pipe fd and follows Node's core rules:

* **Paused until consumed.**  It reads ahead at once, but only until
  ``high_water_mark`` bytes are buffered; then it stops reading, the pipe
  fills and the child blocks in ``write()`` -- backpressure, never unbounded
  memory.  A ``'data'`` listener (unless ``pause()`` was called explicitly),
  ``pipe()`` or ``resume()`` switches it to flowing mode.
* **Events** ``'data'``, ``'end'`` (only once every buffered byte was
  consumed), ``'close'`` (after the fd is closed), ``'error'``, ``'pause'``,
  ``'resume'``; ``'end'`` comes even in paused mode when EOF arrives with
  nothing buffered, as in Node.

The Python additions -- ``for``/``async for`` over the stream, ``lines()``
and ``read()`` -- are its ``consume.Consuming`` layer.

Reading is the hot path (benchmarks/README.md: ``'data'`` callbacks at 0.9x a shell
pipe).  Each read asks for the pipe's whole capacity so one ``read(2)``
empties it, and the bytes object ``os.read`` returns is the chunk itself: one
copy, kernel to ``bytes``, no intermediate buffer (a preallocated buffer plus
``bytes(view[:n])`` measured slower: a second copy).  Each wake-up keeps
reading (up to 32 reads) while reads are full or at least a page: a bulk
writer has then written more in the meantime, and a direct read costs a
fraction of a round through the loop.  A trickle goes back to the loop at
once, without an EAGAIN read.  When reads keep coming back full the
producer is faster than the pipe lets it be, and the pipe is grown once to
1 MiB (``F_SETPIPE_SZ``): fewer wake-ups on both sides.  Only then, because
the per-user pipe quota (``pipe-user-pages-soft``) is shared by every
process of the user; EPERM/EBUSY simply leave the pipe as it is.

``pipe(dest)`` between two fds does not go through Python at all: a C thread
moves the bytes with ``splice(2)`` (:func:`cp_pump_start`) and wakes the loop
when it is done.  See :meth:`Readable.pipe`.

``exec()`` capturing a whole output does not go through ``'data'`` either,
as long as nobody but exec listens: its streams read into a C buffer
(``collect.ExecCollecting``), with no Python object per chunk, and
fall back to ordinary chunks, losing and reordering nothing, the moment
anybody else wants them.

**After the child's exit** (:meth:`Readable._drain_after_exit`, called by the
ChildProcess where Node's ``flushStdio`` calls ``resume()``), a stream that
somebody consumes -- a ``'data'`` listener, ``pipe()``, an iterator in
progress, flowing mode -- is resumed exactly as in Node.  A stream nobody
consumes is *not* switched to flowing mode, where its data would go to no
listener and be lost (the ``out = stdout.read(); err = stderr.read()``
trap): it reads to EOF ignoring ``high_water_mark`` and keeps what it reads,
up to :data:`DRAIN_AFTER_EXIT_CAP` bytes buffered; beyond the cap the rest
is discarded up to EOF, as Node discards all of it, and counted in
``discarded_after_exit`` (what is kept is always a clean prefix).  An
iterator that starts consuming it meanwhile paces it with the mark again,
so a slow reader loses nothing.  At EOF
the fd is closed and the ChildProcess counts it for its ``'close'`` at once
(Node's timing), so ``'close'``/``wait()`` never depend on anybody reading.
The stream itself keeps Node's own order, ``'data'* 'end' 'close'``, with
``'close'`` last: while kept data is buffered it stays ``readable``, holds
no loop reference, and emits ``'end'`` then ``'close'`` only once a later
``read()``, iteration, ``lines()``, ``'data'`` listener, ``resume()`` or
``pipe()`` has consumed the kept data.  A stream nobody ever consumes thus
never emits its own ``'end'``/``'close'`` (in Node: ``'end'``, ``'close'``
after its data went to nobody), while the ChildProcess's events are Node's.
"""

from __future__ import annotations

import errno as _errno
import os
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import system_error
from .._runtime.poller import HUP_WITHOUT_READ_IS_EOF as _HUP_IS_EOF
from .._runtime.poller import READ as _READ
from .._spawn.options import normalize_encoding
from .base import MAX_READS_PER_WAKE
from .collect import ExecCollecting
from .consume import Consuming
from .decode import Chunk, make_decoder, to_bytes
from .pump import PipeState, Pump, dest_fd, pump_available
from .state import F_SETPIPE_SZ, ReadableState, fcntl

if TYPE_CHECKING:
    from .._runtime.reactor import Reactor

__all__ = ["Readable"]

_WIN = sys.platform == "win32"
if sys.platform == "win32":
    from .._runtime.iocp import read as _read  # our pipe ends are overlapped: no O_NONBLOCK
else:
    _read = os.read

_BIG_PIPE = 1 << 20  # /proc/sys/fs/pipe-max-size's default, allowed to anyone
_FULL_READS_BEFORE_GROW = 4  # consecutive full reads that prove a fast producer
_RETRY_MIN = 4096  # a short read this big suggests a bulk writer: read again at once

#: What a stream nobody consumes keeps after the child's exit, at most (bytes
#: buffered; characters once an encoding is set).  Read when the drain
#: starts, so it can be changed (or monkeypatched) at any time before.
DRAIN_AFTER_EXIT_CAP = 64 << 20



class Readable(Consuming, ExecCollecting):
    """A child's stdout, stderr or extra output pipe, with Node's stream contract.

    ``fd`` must be non-blocking; the stream owns it and closes it at the end
    or at ``destroy()``; while another child runs with it (``stdio=[...]``)
    the stream keeps off it (see ``FdStream._handed_over``).  A live stream
    keeps the loop alive (one reactor ref) until ``'close'``; ``unref()``
    opts out.
    """

    def __init__(self, fd: int, reactor: Reactor, *, high_water_mark: int = 64 * 1024) -> None:
        # The base's __init__ by name, not super(): one stream per output
        # pipe of every spawn, and a super object each time shows.
        ReadableState.__init__(self, fd, reactor, high_water_mark)
        reactor.ref()
        # _start_reading() on a new stream, whose checks all pass:
        self._reading = True
        reactor.add_reader(fd, self._on_readable)

    # -- properties (Node's names in snake_case) ----------------------------

    @property
    def readable(self) -> bool:
        """True while ``'end'`` has not come and the stream is not destroyed."""
        return not (self._destroyed or self._end_emitted)

    @property
    def readable_ended(self) -> bool:
        """``'end'`` has been emitted."""
        return self._end_emitted

    @property
    def readable_length(self) -> int:
        """Bytes (characters, once an encoding is set) buffered and not yet consumed."""
        return self._length

    @property
    def readable_flowing(self) -> bool | None:
        """None until a consumer decided, then True (flowing) or False (paused)."""
        return self._flowing

    @property
    def readable_high_water_mark(self) -> int:
        return self._hwm

    @property
    def readable_encoding(self) -> str | None:
        return self._encoding

    @property
    def errored(self) -> BaseException | None:
        return self._errored

    def __repr__(self) -> str:
        if self._destroyed or self._closed:
            state = "closed" if self._closed else "destroyed"
        elif self._end_emitted:
            state = "ended"
        else:
            state = {None: "not flowing yet", True: "flowing", False: "paused"}[self._flowing]
        text = f", encoding={self._encoding!r}" if self._encoding else ""
        return f"<Readable fd={self._fd} {state}, {self._length} buffered{text}>"

    # -- keep-alive: a live stream holds one ref until 'close' -----------------

    def _wants_ref(self) -> bool:
        return not self._closed and not self._detached

    def __del__(self) -> None:
        # A paused stream nobody holds any more is not referenced by the
        # reactor either: give back its fd and its keep-alive ref.
        try:
            if self._pump is None and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._holding_ref:
                self._holding_ref = False
                self._reactor.unref()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing to report to
            pass

    # -- reading -------------------------------------------------------------

    def _start_reading(self) -> None:
        if (not self._reading and self._fd >= 0 and not self._eof and self._pump is None and not self._destroyed
                and not self._borrowers):
            self._reading = True
            self._reactor.add_reader(self._fd, self._on_readable)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._fd)

    def _on_readable(self) -> None:
        """The pipe has data: read it in pipe-sized chunks while they come back full."""
        if self._lent:  # lent to a spawn that failed: ours again
            self._reclaim()
        if self._collector is not None:
            if self._can_collect():
                self._collect_ready()
                return
            # Somebody else wants the chunks now: back to the normal path,
            # after handing over what C holds (it comes first).
            self._release_collector()
            if not self._reading:  # exec's listener went over max_buffer and killed
                return
        fd = self._fd
        if _HUP_IS_EOF:
            hangups = self._reactor.hangups
            if hangups and not hangups.get(fd, _READ) & _READ:
                # Hung up with nothing in the pipe: its EOF, without the
                # read that would return it (every spawn's stdout and
                # stderr end so).
                self._on_eof()
                return
        size = self._read_size
        read = _read
        for _ in range(MAX_READS_PER_WAKE):
            try:
                data = read(fd, size)
            except BlockingIOError:
                return
            except OSError as exc:
                self.destroy(system_error(exc.errno or _errno.EIO, "read"))
                return
            n = len(data)
            if not n:
                self._on_eof()
                return
            if self._drain_cap is not None:
                data = self._keep(data)  # after exit, nobody consuming: up to the cap
            if not data:
                pass
            elif self._decoder is None:
                self._push(data)
            else:
                text = self._decoder(data, False)
                if text:  # else only part of a character so far
                    self._push(text)
                text = ""
            # Drop our reference before the next read: with two big chunks
            # alive at once, malloc hands the next read fresh pages (one
            # page fault per 4 KiB, a third of the cost at 1 MiB chunks).
            data = b""
            size = self._next_read_size(n, size)
            if not size:  # a trickle: the pipe is empty now
                hangups = self._reactor.hangups
                if hangups is not None and fd not in hangups:
                    return
                # ... and its writers are gone (or the loop does not say,
                # under asyncio: one more read finds out): the EOF now, in
                # this turn, before an exit seen in the same wait (Node's).
                size = self._read_size
            if not self._reading:  # paused at the mark, destroyed or piped
                return

    def _next_read_size(self, n: int, size: int) -> int:
        """After a read of ``n`` bytes out of ``size`` asked: how much the next
        read of this wake-up asks for, or 0 to go back to the loop."""
        if n < size:
            self._full_reads = 0
            if n < _RETRY_MIN:
                # A trickle (an interactive child): the pipe is empty now,
                # so back to the loop without paying for an EAGAIN read.
                return 0
            # A bulk writer caught up with: it has most likely written
            # more while this chunk was handled, and reading again now
            # is much cheaper than a round through the loop (measured:
            # a 2 GiB stream goes from 160k loop wake-ups to 15k).
            return size
        # A full pipe: the child waits for us.  Grow it once.
        self._full_reads += 1
        if self._full_reads >= _FULL_READS_BEFORE_GROW and not self._grow_tried:
            return self._grow_pipe()
        return size

    def _grow_pipe(self) -> int:
        """Raise the pipe's capacity to 1 MiB, once; keep it if the quota says no."""
        self._grow_tried = True
        try:
            size = fcntl.fcntl(self._fd, F_SETPIPE_SZ, _BIG_PIPE)  # type: ignore[arg-type]
        except OSError:  # EPERM: over the per-user quota; EBUSY; not a pipe
            return self._read_size
        self._read_size = max(size, self._read_size)
        return self._read_size

    def _push(self, data: Chunk) -> None:
        if self._flowing and not self._buffer:
            self.emit("data", data)
            return
        self._buffer.append(data)
        self._length += len(data)
        if self._waiters:
            self._wake()
        if self._flowing:
            self._flow()
        elif self._length >= self._hwm and (self._drain_cap is None or self._consumers):
            # Backpressure: the child blocks once the pipe is full.  (Draining
            # after exit ignores the mark, unless an iterator consumes.)
            self._stop_reading()

    def _flow(self) -> None:
        """Emit buffered chunks while flowing (Node's ``flow()``)."""
        buffer = self._buffer
        while self._flowing and buffer:
            chunk = buffer.popleft()
            self._length -= len(chunk)
            self.emit("data", chunk)
        self._after_consume()

    def _after_consume(self) -> None:
        if self._eof:
            self._maybe_end()
        elif self._flowing or self._length < self._hwm or self._drain_cap is not None:
            self._start_reading()

    def _on_eof(self) -> None:
        self._eof = True
        if self._reading:
            self._stop_reading()
        if self._decoder is not None:
            tail = self._decoder(b"", True)  # an incomplete character: U+FFFD
            if tail:
                self._push(tail)
        self._maybe_end()
        if self._drain_cap is not None:
            self._detach()
        if self._waiters:
            self._wake()

    def _maybe_end(self) -> None:
        if self._eof and not self._buffer and not self._end_scheduled and not self._end_emitted and not self._destroyed:
            self._end_scheduled = True
            # Node's endReadableNT is a nextTick: 'end' comes before other
            # callbacks of this turn (another stream's data, the exit).
            self._reactor.next_tick(self._emit_end)

    def _emit_end(self) -> None:
        self._end_scheduled = False
        if self._end_emitted or self._destroyed or self._buffer:
            return
        self._end_emitted = True
        if self._waiters:
            self._wake()
        try:
            self.emit("end")
        finally:
            self.destroy()  # Node's autoDestroy: close the fd, then 'close'

    # -- flow control (Node's API) ---------------------------------------------

    def on(self, event: Any, fn: Any = None) -> Any:
        """As :meth:`EventEmitter.on`; a ``'data'`` listener starts flowing mode
        unless ``pause()`` was called explicitly (Node's rule)."""
        result = super().on(event, fn)
        if event == "data" and fn is not None and self._flowing is not False:
            self.resume()
        return result

    def pause(self) -> Readable:
        """Stop emitting ``'data'``; reading continues only up to ``high_water_mark``."""
        if self._flowing is not False:
            self._flowing = False
            self.emit("pause")
        self._paused_flag = True
        if self._length >= self._hwm and (self._drain_cap is None or self._consumers):
            self._stop_reading()
        return self

    def resume(self) -> Readable:
        """Switch to flowing mode: buffered data, then new data, goes to ``'data'``
        (and is lost if nobody listens -- Node's rule).  On a stream that kept
        its data after the child's exit this delivers the kept data, then
        ``'end'`` and ``'close'``."""
        if not self._flowing:
            # An iterator in progress is Node's 'readable' listener: it keeps
            # the stream in paused mode.
            self._flowing = self._consumers == 0
            if not self._resume_scheduled:
                self._resume_scheduled = True
                self._reactor.call_soon(self._resume_tick)
        self._paused_flag = False
        return self

    def _resume_tick(self) -> None:
        self._resume_scheduled = False
        if self._destroyed:
            return
        self.emit("resume")
        self._flow()

    # -- after the child's exit (Node's flushStdio, keeping the data) -------------

    def _drain_after_exit(self, on_fd_closed: Callable[..., Any] | None = None) -> None:
        """Read to EOF so the fd closes, without losing what nobody consumed.

        The ChildProcess calls this on the tick after ``'exit'``, where Node's
        ``flushStdio`` calls ``resume()``.  A stream being consumed (flowing,
        a ``'data'`` listener, ``pipe()``, an iterator in progress) is resumed
        exactly as Node does.  Otherwise the stream stays in paused mode,
        reads to EOF regardless of ``high_water_mark`` and buffers what it
        reads up to :data:`DRAIN_AFTER_EXIT_CAP` (see the module docstring).
        While an iterator (``read()``, ``lines()``, ``for``) started later
        consumes it, the mark applies again (the iterator reads to EOF; no
        need to buffer ahead of it, nor to drop anything); if it stops
        early, the drain goes on.

        ``on_fd_closed`` is the owner's listener on this stream's ``'close'``
        that counts it for the child's ``'close'``.  If EOF leaves kept data
        buffered, the fd is closed at once, that listener is taken off
        ``'close'`` and called on the next tick instead (the stream's own
        ``'end'``/``'close'`` wait for the data to be consumed).
        """
        if self._destroyed or self._end_emitted or self._drain_cap is not None:
            return
        if self._flowing or self._consumers or self._pump is not None or self.listener_count("data"):
            self.resume()  # somebody gets the data: Node's resume(), exactly
            return
        self._drain_cap = DRAIN_AFTER_EXIT_CAP
        self._on_fd_closed = on_fd_closed
        if self._eof:
            self._detach()  # EOF came before the exit: only the fd to close
        else:
            self._start_reading()

    def _keep(self, data: bytes) -> bytes:
        """What of ``data`` (just read while draining after exit) fits under the cap.

        Once something was discarded everything after it is too, so what
        is kept is a prefix of the output, never one with a hole in it.
        """
        if self.discarded_after_exit:
            self.discarded_after_exit += len(data)
            return b""
        if self._consumers:
            return data  # an iterator paces the stream: the buffer stays near the mark
        room = self._drain_cap - self._length  # type: ignore[operator]
        if len(data) <= room:
            return data
        room = max(room, 0)
        self.discarded_after_exit += len(data) - room
        return data[:room]

    def _detach(self) -> None:
        """At EOF after exit: close the fd now, keep the buffered data, stop holding the loop."""
        if not self._buffer or self._fd < 0 or self._destroyed or self._pump is not None:
            return  # nothing kept: 'end' and 'close' come as usual
        self._close_fd()
        self._detached = True
        self._update_ref()
        fn, self._on_fd_closed = self._on_fd_closed, None
        if fn is not None:
            self.off("close", fn)
            self._reactor.call_soon(fn)

    def is_paused(self) -> bool:
        """True after an explicit ``pause()`` (a fresh stream is not "paused")."""
        return self._paused_flag is True or self._flowing is False

    def set_encoding(self, encoding: str | None) -> Readable:
        """Emit ``str`` decoded incrementally (a character split across reads is
        held back).  Node's names (``'utf8'``, ``'latin1'``, ``'hex'``,
        ``'base64'`` ...) and Python codec names; None or ``'buffer'`` for bytes."""
        resolved = normalize_encoding(encoding, "encoding")
        if self._collector is not None and len(self._collector):
            # The collected bytes came under the old encoding: hand them
            # over decoded with it, as their chunks would have been.
            self._release_collector()
        if resolved is None:
            self._decoder = None
            self._encoding = None
            return self
        decoder = make_decoder(resolved)
        # What is already buffered is decoded now, as Node does.
        raw = b"".join(c if isinstance(c, bytes) else c.encode("utf-8") for c in self._buffer)
        text = decoder(raw, False) if raw else ""
        self._buffer.clear()
        if text:
            self._buffer.append(text)
        self._length = len(text)
        self._decoder = decoder
        self._encoding = resolved
        return self

    # -- ending ----------------------------------------------------------------

    def destroy(self, err: BaseException | None = None) -> Readable:
        """Close the fd now, drop buffered data; ``'error'`` (if ``err``) then ``'close'``."""
        if self._destroyed:
            return self
        self._destroyed = True
        if err is not None:
            self._errored = err
        if self._reading:
            self._stop_reading()
        if self._buffer:
            self._buffer.clear()
        self._length = 0
        if self._pump is not None:
            self._pump.cancel()  # the fd is closed and 'close' emitted when it stops
        else:
            self._close_fd()
            self._reactor.call_closing(self._emit_close, err)
        if self._waiters:
            self._wake()
        return self

    def _close_fd(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            if _WIN:
                self._reactor.close_fd(fd)  # the loop lets go of the handle first
            else:
                os.close(fd)

    def _emit_close(self, err: BaseException | None) -> None:
        self._closed = True
        if self._holding_ref:  # _update_ref(): a closed stream wants none
            self._holding_ref = False
            self._reactor.unref()
        if self._waiters:
            self._wake()
        if err is None:
            self.emit("close")
            return
        try:
            self.emit("error", err)
        finally:
            self.emit("close")

    # -- pipe ------------------------------------------------------------------

    def pipe(self, dest: Any, end: bool = True) -> Any:
        """Send everything this stream produces to ``dest``; return ``dest``.

        When both ends are fds -- ``dest`` a childproc :class:`Writable` or
        any object with a working ``fileno()`` (an open file, a socket,
        ``sys.stdout``) -- and this stream has no ``'data'`` listener, the
        bytes move in C (``splice(2)``), never through Python objects; see
        :mod:`childproc._streams.pump` for the exact rules.  Otherwise it is
        Node's pipe: ``dest.write()`` per chunk, pausing while ``dest.write``
        returns False until ``dest`` emits ``'drain'``.  With ``end`` (the
        default) ``dest.end()`` is called at the end.  A raw file object is
        flushed once before the pump starts and is never closed: it is yours.
        """
        fd = dest_fd(dest)
        if (
            fd is not None
            and pump_available()
            and self._fd >= 0
            and not self._eof
            and not self._destroyed
            and self._pump is None
            and not self._pipes
            and not self._borrowers
            and self._consumers == 0
            and self.listener_count("data") == 0
        ):
            Pump(self, dest, fd, end).start()
            return dest
        PipeState(self, dest, end).attach()
        return dest

    def unpipe(self, dest: Any = None) -> Readable:
        """Stop piping to ``dest`` (or to every destination); the stream pauses.

        A C pump is asked to stop and does so within a moment; bytes already
        moved stay moved, and the stream then reads ahead in paused mode as usual.
        """
        if self._pump is not None and (dest is None or dest is self._pump.dest):
            self._pump.cancel()
            return self
        states = [s for s in self._pipes if dest is None or s.dest is dest]
        if not states:
            return self
        for state in states:
            self._pipes.remove(state)
        if not self._pipes:
            self.pause()
        for state in states:
            state.detach()
        return self

    def _cancel_pump(self) -> None:
        if self._pump is not None:
            self._pump.cancel()

    # -- handing the fd to another child ---------------------------------------

    def _lendable(self) -> bool:
        return self._pump is None  # a pump is moving this fd's bytes already

    def _lend_started(self) -> None:
        self._stop_reading()  # what the borrower reads is its own

    def _on_returned(self) -> None:
        """No child reads this pipe any more (the last borrower's ``'exit'``
        listeners have run).  If its owner has exited meanwhile, the owner's
        drain after exit runs now (or, when that exit is not delivered yet,
        when it is).  Otherwise a stream the parent consumes
        (a ``'data'`` listener, flowing, ``pipe()``, an iterator) reads on, as
        in Node; one nobody consumes is closed, so that the owner, still
        writing, gets EPIPE instead of blocking on a pipe nobody reads (the
        ``yes | head`` case) -- and its ``'close'`` is counted."""
        after, self._after_lend = self._after_lend, None
        if after is not None:
            after()
            if not self._destroyed:
                self._after_consume()  # resume() does not restart a flowing stream's reads
        elif self._flowing or self._consumers or self._pipes or self.listener_count("data"):
            self._after_consume()
        elif self._owner_ended is not None and self._owner_ended():
            pass  # its exit is on the way: the owner's drain after exit keeps what is left
        else:
            self.destroy()
