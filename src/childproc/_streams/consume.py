"""The Python additions to a child's output stream: ``for chunk in
stream``, ``async for``, ``stream.lines()`` and ``stream.read()``.

They are Node's ``'readable'``-style consumer (its async iterator): while
one is in progress the stream stays in paused mode and backpressure still
applies; an ``'error'`` is raised from the loop or the ``await`` rather
than emitted as an unhandled event.  In plain code they drive the thread's
private loop; on an asyncio loop they await it.

:class:`Consuming` is that layer of :class:`childproc.Readable`; it works on
the state declared in :mod:`.state`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from .._errors import premature_close
from .._runtime.loop import running_asyncio_loop
from .decode import Chunk
from .lines import LineIterator
from .state import ReadableState

__all__ = ["Consuming"]

class Consuming(ReadableState):
    """The iteration half of Readable (see the module's docstring)."""

    def _take(self) -> Chunk | None:
        """One buffered chunk for an iterator (Node's ``read()``), or None."""
        if not self._buffer:
            return None
        chunk = self._buffer.popleft()
        self._length -= len(chunk)
        self._after_consume()
        return chunk

    def _wake(self) -> None:
        if not self._waiters:
            return  # the usual case: nobody iterates
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _consumer_error(self, err: BaseException) -> None:
        pass  # kept in self._errored by destroy(); the iterator raises it

    def _begin_consume(self) -> None:
        self._consumers += 1
        if self._consumers == 1:
            self.on("error", self._consumer_error)
        # Node's async iterator listens to 'readable', which turns flowing off.
        self._flowing = False

    def _end_consume(self) -> None:
        self._consumers -= 1
        if self._consumers == 0:
            self.off("error", self._consumer_error)
            if self._drain_cap is not None:
                self._start_reading()  # left early after the exit: drain on, to EOF

    def _poll(self) -> tuple[int, Chunk | None]:
        """(0, chunk) | (1, None) end reached | (2, None) failed | (3, None) wait."""
        chunk = self._take()
        if chunk is not None:
            return 0, chunk
        if self._errored is not None:
            return 2, None
        if self._end_emitted or (self._eof and not self._destroyed):
            return 1, None
        if self._destroyed:
            return 2, None
        self._start_reading()  # an explicitly paused stream reads for its iterator
        return 3, None

    def _failure(self) -> BaseException:
        return self._errored if self._errored is not None else premature_close()

    def __iter__(self) -> Iterator[Chunk]:
        """``for chunk in stream``: chunks until EOF, driving this thread's loop.

        The stream is in paused mode meanwhile (backpressure still applies).
        Leaving the loop early leaves the stream paused and usable (Node's
        async iterator would destroy it).  An ``'error'`` is raised here
        rather than as an unhandled event.
        """
        self._begin_consume()
        reactor = self._reactor
        try:
            while True:
                state, chunk = self._poll()
                if state == 0:
                    yield chunk  # type: ignore[misc]
                elif state == 3:
                    reactor.run_until(lambda: bool(self._buffer) or self._eof or self._destroyed)
                else:
                    # Let 'end'/'error' and 'close' fire before returning.
                    reactor.run_until(lambda: self._closed)
                    if state == 2:
                        raise self._failure()
                    return
        finally:
            self._end_consume()

    def __aiter__(self) -> AsyncIterator[Chunk]:
        """``async for chunk in stream`` on the asyncio loop the stream belongs to."""
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Chunk]:
        loop = self._asyncio_loop()
        self._begin_consume()
        try:
            while True:
                state, chunk = self._poll()
                if state == 0:
                    yield chunk  # type: ignore[misc]
                    continue
                if state != 3 and self._closed:
                    if state == 2:
                        raise self._failure()
                    return
                fut = loop.create_future()
                self._waiters.append(fut)
                await fut
        finally:
            self._end_consume()

    def _asyncio_loop(self) -> Any:
        running_asyncio_loop("a stream")  # under trio: say that async support is asyncio's
        loop = self._reactor.asyncio_loop
        if loop is None:
            raise RuntimeError(
                "this stream belongs to a thread's private childproc loop (it was created "
                "outside asyncio): iterate it with 'for', not 'async for'"
            )
        return loop

    def lines(self, max_line: int = 1 << 20) -> LineIterator:
        """Lines with their ``\\n`` (the last may lack it), for ``for`` and ``async for``.

        ``bytes`` lines, or ``str`` once an encoding is set.  A line longer than
        ``max_line`` bytes/characters (not counting its ``\\n``) raises
        :class:`LineTooLongError`: never a silent cut, never a hidden limit.
        """
        return LineIterator(self, max_line)

    def read(self) -> Chunk:
        """Everything up to EOF, as ``bytes`` (or ``str`` with an encoding),
        driving this thread's loop: ``data = child.stdout.read()``.

        On an asyncio loop use ``data = await child.stdout.aread()``.  (There
        ``read()`` still returns an awaitable, with a ``DeprecationWarning``,
        for code written before ``aread()`` existed; type checkers see only
        the plain form.)
        """
        if self._reactor.asyncio_loop is not None:
            warnings.warn("on an asyncio loop, use 'await stream.aread()' instead of "
                          "'await stream.read()'", DeprecationWarning, stacklevel=2)
            return cast(Chunk, self.aread())
        return self._join(list(self))

    async def aread(self) -> Chunk:
        """``await stream.aread()``: everything up to EOF, on the asyncio
        loop the stream belongs to (the async form of :meth:`read`)."""
        return self._join([chunk async for chunk in self])

    def _join(self, chunks: list[Chunk]) -> Chunk:
        if len(chunks) == 1:
            return chunks[0]
        if self._decoder is not None:
            return "".join(chunks)  # type: ignore[arg-type]
        return b"".join(chunks)  # type: ignore[arg-type]
