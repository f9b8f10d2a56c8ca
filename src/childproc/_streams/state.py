"""The state a Readable's layers share.

A child's output stream is one object, :class:`childproc._streams.readable.Readable`,
built in layers so that each module stays one concern: this state, exec's capture
into C (:mod:`.collect`), the Python iteration (:mod:`.consume`), and on top the
flow of Node's Readable with ``pipe()`` (:mod:`.readable`).  The fields are
declared and set here once; the methods the lower layers call on the top one are
declared here too, so every layer is typed without importing the one above it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import FdStream
from .decode import Chunk, Decoder

if TYPE_CHECKING:
    from .._runtime.reactor import Reactor
    from .._spawn.native import OutputBuffer

__all__ = ["F_SETPIPE_SZ", "ReadableState", "fcntl"]

try:
    import fcntl

    F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    F_SETPIPE_SZ = None

_DEFAULT_READ = 64 * 1024  # Linux's default pipe capacity: one read empties it


class ReadableState(FdStream):
    """The fields of a Readable (see the module docstring)."""

    # Immutable starting values are class attributes, as in FdStream: only
    # the mutable containers are made per stream.
    _holding_ref = True  # Readable.__init__ takes the loop ref at once
    _length = 0
    _flowing: bool | None = None  # Node's tri-state: None = never decided
    _paused_flag: bool | None = None  # Node's kPaused: pause() was called
    _reading = False
    _eof = False
    _end_scheduled = False
    _end_emitted = False
    _resume_scheduled = False
    _errored: BaseException | None = None
    _decoder: Decoder | None = None
    _encoding: str | None = None
    _read_size = _DEFAULT_READ
    _full_reads = 0
    _grow_tried = F_SETPIPE_SZ is None
    _pump: Any = None  # the Pump while bytes move in C
    _consumers = 0  # iterators and read() calls in progress
    _drain_cap: int | None = None  # set by _drain_after_exit: read to EOF, keep this much
    _on_fd_closed: Callable[..., Any] | None = None  # the owner's counting 'close' listener
    _detached = False  # EOF after exit with data kept: the fd is closed, no loop ref
    # exec()'s collector (see _attach_collector): while it is attached
    # the bytes read so far are in C, not yet given to _collect_fn.
    _collector: OutputBuffer | None = None
    _collect_fn: Callable[[Chunk], Any] | None = None
    _collect_limit = float("inf")
    #: Bytes read after the child's exit and dropped because nobody consumed
    #: them and ``DRAIN_AFTER_EXIT_CAP`` was reached (0 when nothing was lost).
    discarded_after_exit = 0

    def __init__(self, fd: int, reactor: Reactor, high_water_mark: int) -> None:
        FdStream.__init__(self, fd, reactor, high_water_mark)  # not super(): see Readable.__init__
        self._buffer: deque[Chunk] = deque()
        self._pipes: list[Any] = []  # a PipeState per Node-style pipe()
        self._waiters: list[Any] = []  # asyncio futures of iterators waiting for a change

    if TYPE_CHECKING:  # the top layer's methods that the lower layers call

        def _after_consume(self) -> None: ...

        def _start_reading(self) -> None: ...

        def _stop_reading(self) -> None: ...

        def _on_eof(self) -> None: ...

        def _maybe_end(self) -> None: ...

        def _next_read_size(self, n: int, size: int) -> int: ...

        def _grow_pipe(self) -> int: ...

        def _close_fd(self) -> None: ...

        def _emit_close(self, err: BaseException | None) -> None: ...

        def _wake(self) -> None: ...

        def pause(self) -> Any: ...

        def resume(self) -> Any: ...

        def unpipe(self, dest: Any = None) -> Any: ...

        def destroy(self, err: BaseException | None = None) -> Any: ...
