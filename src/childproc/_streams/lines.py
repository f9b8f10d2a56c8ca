"""``Readable.lines()``: chunks cut into lines, with a bound on a line's length."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Protocol

from .._errors import LineTooLongError
from .decode import Chunk

__all__ = ["LineIterator"]


class ChunkSource(Iterable[Chunk], AsyncIterable[Chunk], Protocol):
    """What lines are cut from: a stream iterable with ``for`` and ``async for``."""


class _LineSplitter:
    """Cuts chunks into lines, holding at most ``max_line`` of an unfinished one."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self.pending: list[Chunk] = []
        self.pending_len = 0

    def feed(self, chunk: Chunk) -> tuple[list[Chunk], LineTooLongError | None]:
        nl: Any = b"\n" if isinstance(chunk, bytes) else "\n"
        limit = self.max_line
        if nl not in chunk:
            self.pending.append(chunk)
            self.pending_len += len(chunk)
            if self.pending_len > limit:
                return [], LineTooLongError(limit, nl[:0].join(self.pending))
            return [], None
        parts = chunk.split(nl)
        last = parts.pop()
        if self.pending:
            self.pending.append(parts[0])
            parts[0] = nl[:0].join(self.pending)
        self.pending = []
        self.pending_len = 0
        if len(parts[0]) <= limit and len(chunk) <= limit:
            lines = [part + nl for part in parts]  # no line can be too long
        else:
            lines = []
            for part in parts:
                if len(part) > limit:
                    return lines, LineTooLongError(limit, part)
                lines.append(part + nl)
        if last:
            self.pending = [last]
            self.pending_len = len(last)
            if len(last) > limit:
                return lines, LineTooLongError(limit, last)
        return lines, None

    def tail(self) -> Chunk | None:
        if not self.pending:
            return None
        pending, self.pending = self.pending, []
        if isinstance(pending[0], bytes):
            return b"".join(pending)  # type: ignore[arg-type]
        return "".join(pending)  # type: ignore[arg-type]


class LineIterator:
    """What ``Readable.lines()`` returns: iterate it with ``for`` or ``async for``.

    Each line keeps its ``\\n``; the last one may lack it.  A line longer than
    ``max_line`` (bytes, or characters with an encoding; the ``\\n`` not
    counted) stops the iteration with :class:`LineTooLongError` after the
    complete lines before it were yielded.
    """

    def __init__(self, stream: ChunkSource, max_line: int = 1 << 20) -> None:
        if isinstance(max_line, bool) or not isinstance(max_line, int) or max_line < 1:
            raise ValueError(f"max_line must be a positive int, not {max_line!r}")
        self.stream = stream
        self.max_line = max_line

    def __iter__(self) -> Iterator[Chunk]:
        splitter = _LineSplitter(self.max_line)
        for chunk in self.stream:
            lines, err = splitter.feed(chunk)
            yield from lines
            if err is not None:
                raise err
        tail = splitter.tail()
        if tail:
            yield tail

    async def _aiter(self) -> AsyncIterator[Chunk]:
        splitter = _LineSplitter(self.max_line)
        async for chunk in self.stream:
            lines, err = splitter.feed(chunk)
            for line in lines:
                yield line
            if err is not None:
                raise err
        tail = splitter.tail()
        if tail:
            yield tail

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._aiter()
