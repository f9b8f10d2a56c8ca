"""exec()'s capture of a whole output stream, read straight into C.

``exec()`` keeps every byte a stream gives it.  Through ``'data'`` that is a
``bytes`` per read, a copy into the collection and a copy out of it; a
100 MiB capture pays for each in page faults.  While exec's own listener is
the stream's only consumer, the stream instead reads into one C buffer
(:class:`childproc._spawn.native.OutputBuffer`): one copy from the kernel, no
Python object per chunk, and at the end the pages are moved into the result
``bytes`` (or decoded in place).  The moment anything else wants the chunks
-- a user ``'data'`` listener, ``pause()``, ``pipe()``, iteration, a
``set_encoding`` after some output -- what C holds goes to exec's listener
as one chunk and the stream carries on with ordinary chunks: nothing lost,
nothing reordered, and a late listener sees only later chunks, as in Node.

:class:`ExecCollecting` is that layer of :class:`childproc.Readable`,
kept apart because it is a concern of its own; it works on the state
declared in :mod:`.state`.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import system_error
from .._spawn.native import OutputBuffer
from .base import MAX_READS_PER_WAKE
from .decode import Chunk
from .state import ReadableState

__all__ = ["ExecCollecting"]

#: The encodings in which ASCII bytes are the same characters (and which
#: hold nothing back between chunks), so an all-ASCII capture needs no decode.
_ASCII_SUPERSETS = ("utf-8", "latin-1", "ascii")

class ExecCollecting(ReadableState):
    """The collector half of Readable (see the module's docstring)."""

    def _attach_collector(self, listener: Callable[[Chunk], Any], limit: float = float("inf")) -> None:
        """Let ``listener`` (exec's own ``'data'`` listener, already added) get
        this stream's output in one piece instead of a call per chunk.

        While the stream flows with ``listener`` as its only ``'data'``
        listener and nothing else consumes it (see :meth:`_can_collect`),
        reads go into a C buffer (:class:`OutputBuffer`) and no ``'data'``
        event is emitted: a 100 MiB capture is then one copy from the kernel
        (and its pages are moved, not copied, into the result), instead of
        a ``bytes`` per read, a copy into the collection and a copy out of
        it.  The owner takes the result with :meth:`_take_collected`.  The moment the conditions stop holding (a
        user ``'data'`` listener, ``pause()``, ``pipe()``, iteration, a
        ``set_encoding`` after some output), what C holds goes to
        ``listener`` as one chunk (decoded by the stream's decoder, whose
        state then continues) and the stream carries on with ordinary
        chunks: nothing lost, nothing reordered, and a late listener sees
        only later chunks, as in Node.  Going over ``limit`` (bytes; only
        without a decoder) hands over too, so ``listener`` applies its own
        max_buffer rule to the total.
        """
        if self._destroyed or self._eof or self._buffer or self._pump is not None:
            return  # some output went another way already: keep to the chunks
        # Lay the buffer out for a str where it will most likely become one.
        self._collector = OutputBuffer(text=self._encoding in _ASCII_SUPERSETS)
        self._collect_fn = listener
        self._collect_limit = limit

    def _can_collect(self) -> bool:
        """Whether the next reads may go to the C collector (no 'data' events)."""
        listeners = self._events.get("data")
        return (
            self._flowing is True
            and listeners is not None
            and len(listeners) == 1
            and listeners[0] is self._collect_fn
            and not self._buffer
            and self._drain_cap is None
            and not self._pipes
            and self._pump is None
            and not self._consumers
            and not self._destroyed
            # A finite limit counts the byte length of decoded chunks, which
            # the raw byte count cannot stand in for: chunks then.
            and (self._decoder is None or self._collect_limit == float("inf"))
        )

    def _collect_ready(self) -> None:
        """``_on_readable``'s loop, reading into the C collector instead of ``bytes``."""
        buffer = self._collector
        assert buffer is not None
        fd = self._fd
        size = self._read_size
        fill = buffer.fill
        limit = self._collect_limit
        for _ in range(MAX_READS_PER_WAKE):
            n = fill(fd, size)
            if n <= 0:
                if n == 0:
                    self._on_eof()
                elif n != -_errno.EAGAIN:
                    self.destroy(system_error(-n, "read"))
                return
            if len(buffer) > limit:
                # Over max_buffer: exec's listener gets the total as one
                # chunk and applies its rule (cut, MaxBufferError, kill).
                # One byte over is as good as all of it for that rule, and
                # copies less.
                buffer.truncate(int(limit) + 1)
                self._release_collector()
                return
            size = self._next_read_size(n, size)
            if not size:
                return

    def _release_collector(self) -> None:
        """Leave the collector for good: what it holds goes to its listener
        as one chunk, through the decoder as a chunk read now would."""
        buffer, fn = self._collector, self._collect_fn
        self._collector = self._collect_fn = None
        if buffer is None or fn is None:
            return
        if not len(buffer):
            buffer.close()
            return
        data = buffer.take_bytes()
        chunk: Chunk = data if self._decoder is None else self._decoder(data, False)
        data = b""
        if chunk:
            fn(chunk)

    def _take_collected(self) -> Chunk | None:
        """What the collector holds, as the one chunk its listener would have
        got (bytes, or text from the stream's decoder), and detach it.

        None when no collector is attached (any more) or it holds nothing.
        At EOF the decoder is final (an incomplete character becomes
        U+FFFD, as the chunks would have had it); on a stream destroyed
        before EOF it is not (the incomplete character is dropped, as it
        stays in the decoder of a chunked stream).
        """
        buffer = self._collector
        self._collector = self._collect_fn = None
        if buffer is None:
            return None
        if not len(buffer):
            buffer.close()
            return None
        if self._decoder is None:
            return buffer.take_bytes()
        if self._encoding == "utf-8":
            # The decoder has seen no byte of what C holds nor of anything
            # before it (the collector hands over for good before any chunk
            # is decoded), so a fresh UTF-8 decode of the buffer is exactly
            # its output -- without copying 100 MiB into bytes first.
            return buffer.decode_utf8(self._eof)
        if self._encoding in _ASCII_SUPERSETS:
            text = buffer.take_ascii()  # all ASCII: these decoders would change nothing
            if text is not None:
                return text
        # The calls the chunks would have made: data, then the final flush
        # at EOF apart (a decoder may drop only the tail there: UTF-16's
        # dangling odd byte).
        text = self._decoder(buffer.take_bytes(), False)
        if self._eof:
            text += self._decoder(b"", True)
        return text
