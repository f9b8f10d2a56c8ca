"""The bytes of an IPC message: Node's two framings and their codecs.

* ``'json'``: ``JSON.stringify(message) + '\\n'`` as UTF-8, byte for byte
  (:func:`encode_json`), and ``JSON.parse`` of each line
  (:func:`parse_json_lines`).  Dicts with ``str`` keys, lists, strings,
  numbers, booleans and None are written by :mod:`.jsonfast` (f-strings
  compiled per key set); anything else by json's C encoder, or, when it
  holds floats (which JavaScript writes differently from Python), json's
  Python encoder with JavaScript's number format.  json's C scanner parses.
* ``'pickle'``: a u32 big-endian length and a pickle, Node's ``'advanced'``
  framing (:func:`encode_pickle`, :func:`parse_pickle_frames`).

A parser takes the complete messages out of the channel's read buffer and
leaves a partial one for the next read; bytes that do not parse become a
:class:`BadMessage` in their place, so the messages after them still arrive.
A :class:`Framer` is one channel's read side: it looks for a line's end only
in the bytes each read adds (linear in the input however long a line runs),
and a message over ``max_message_size`` bytes becomes a :class:`BadMessage`
as soon as it is known to be too big: its bytes are dropped as they arrive,
never held, and the messages after it still count.

Every forked child imports this module, so it imports json's C halves
rather than ``json``, and ``pickle`` only when a pickle channel first needs
it: each import a child makes delays its first message.
"""

from __future__ import annotations

import math
import struct

from .jsonfast import js_number as _js_number
from .jsonfast import stringify as _stringify

try:  # the C pieces behind json, without json's import cost (re, enum)
    from _json import encode_basestring as _c_encode_str
    from _json import make_encoder as _c_make_encoder
    from _json import make_scanner as _c_make_scanner
except ImportError:  # pragma: no cover - other Pythons
    _c_make_encoder = _c_make_scanner = None  # type: ignore[assignment, misc]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_MESSAGE_SIZE",
    "BadMessage",
    "Framer",
    "encode_json",
    "encode_pickle",
    "parse_json_lines",
    "parse_pickle_frames",
]

_U32 = struct.Struct(">I")

MAX_MESSAGE_SIZE = 64 * 1024 * 1024
"""The default bound on one received message (its JSON line or pickle frame
payload, in bytes).  Node has none; without one a peer that never ends a line
makes the receiver buffer without limit."""


def _json_default(value: Any) -> Any:
    # JSON.stringify's view of what Python has and JSON lacks.
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": "Buffer", "data": list(bytes(value))}
    import datetime  # only when a message holds one

    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, (set, frozenset)):
        return {}  # JSON.stringify(new Set([1])) === '{}'
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if _c_make_encoder is not None:
    # One C encoder for every message (json.dumps builds a new one per call).
    # Floats never reach it (see encode_json), so allow_nan does not matter.
    _markers: dict[int, Any] = {}
    _c_encoder = _c_make_encoder(_markers, _json_default, _c_encode_str, None, ":", ",", False, False, True)

    def _dumps(message: Any) -> str:
        try:
            return "".join(_c_encoder(message, 0))
        except BaseException:
            _markers.clear()  # a failed call can leave entries behind
            raise

else:  # pragma: no cover

    def _dumps(message: Any) -> str:
        import json

        return json.dumps(message, separators=(",", ":"), ensure_ascii=False, default=_json_default)


class _ScanContext:
    """What json's C scanner reads from its JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> Any:
        # JSON.parse refuses NaN and Infinity; so does the channel.
        raise ValueError(f"{name} is not valid JSON")


# (The scanner reads its settings as attributes of any object.)
_scan = _c_make_scanner(_ScanContext()) if _c_make_scanner is not None else None  # type: ignore[arg-type]
_WS = " \t\n\r"


def _loads(text: str) -> Any:
    """JSON.parse of one line."""
    if _scan is None:  # pragma: no cover
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WS)) if text[:1] in _WS else 0
    try:
        try:
            value, end = _scan(text, start)
        except SystemError:
            # Some malformed texts ('{x}') make the C scanner raise json's
            # JSONDecodeError, which it looks up in sys.modules without
            # importing it (CPython <= 3.11): in a process that never
            # imported json it fails with a SystemError instead.  Bad input
            # alone pays for the import; the scan then says what is wrong.
            import json.decoder  # noqa: F401

            value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"Unexpected token at position {stop.value}") from None
    if end != len(text) and text[end:].strip(_WS):
        raise ValueError(f"Unexpected non-whitespace character after JSON at position {end}")
    return value


def _has_float(value: Any) -> bool:
    # On every send: plain loops, scalars checked inline (no generators).
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        items: Any = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return False
    for item in items:
        t = type(item)
        if t is float or ((t is dict or t is list or t is tuple) and _has_float(item)):
            return True
    return False


def _dumps_js(message: Any) -> str:
    # The pure-Python encoder takes a float formatter; the C one does not.
    # Only messages that hold floats pay for it.
    from json.encoder import _make_iterencode, encode_basestring  # type: ignore[attr-defined]

    iterencode = _make_iterencode(
        {}, _json_default, encode_basestring, None, _js_number, ":", ",", False, False, True
    )
    return "".join(iterencode(message, 0))


def _escape_surrogates(text: str) -> str:
    # JSON.stringify escapes lone surrogates as \\udXXX and nothing else.
    return "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text)


def encode_json(message: Any) -> bytes:
    """``JSON.stringify(message) + '\\n'`` as UTF-8, byte for byte."""
    try:
        text = _stringify(message)  # the common shapes (see jsonfast)
    except (KeyError, RecursionError):
        text = _exact_json(message)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return _escape_surrogates(text).encode("utf-8") + b"\n"


def _exact_json(message: Any) -> str:
    """JSON.stringify's text of any message: json's encoders, with the
    rules for what JSON lacks (see _json_default) and circular structures."""
    try:
        try:
            floats = _has_float(message)
        except RecursionError:
            floats = False  # circular: the encoder below says so
        text = _dumps_js(message) if floats else _dumps(message)
    except ValueError as exc:
        if "ircular" in str(exc):
            raise TypeError("Converting circular structure to JSON") from None
        raise
    return text


def encode_pickle(message: Any) -> bytes:
    payload = _pickle_lib.dumps(message, -1)  # -1: the highest protocol (positional: a send's hot path)
    return _U32.pack(len(payload)) + payload


class _LazyPickle:
    """``pickle``, imported when a pickle channel first needs it (a json
    child never pays for the import) and then one attribute away."""

    def __getattr__(self, name: str) -> Any:
        import pickle

        global _pickle_lib
        _pickle_lib = pickle
        return getattr(pickle, name)


_pickle_lib: Any = _LazyPickle()


class BadMessage:
    """Bytes that did not parse: the error, and (the start of) the bytes;
    ``too_large`` for a message over ``max_message_size``, dropped unread."""

    __slots__ = ("error", "data", "too_large")

    def __init__(self, error: BaseException, data: bytes, too_large: bool = False) -> None:
        self.error = error
        self.data = data
        self.too_large = too_large


def _too_large(limit: float, data: bytes) -> BadMessage:
    return BadMessage(ValueError(f"message over max_message_size ({int(limit)} bytes)"), data, True)


def _decode(buf: bytearray, end: int) -> str:
    """``buf[:end + 1]`` as text: one UTF-8 decode for the whole read (a
    '\n' byte never sits inside a multi-byte sequence), from a view (no
    copy of the bytes); invalid bytes become U+FFFD as in Node's
    StringDecoder."""
    with memoryview(buf) as view, view[: end + 1] as head:
        return str(head, "utf-8", "replace")


def _json_lines(text: str) -> list[Any]:
    """Parse each line of ``text`` (which ends with a newline)."""
    messages: list[Any] = []
    start, scan = 0, _scan
    if scan is not None:
        # The common lines: one scanner call each on the text in place (no
        # slice per line), each value ending at a newline, the next line
        # starting after it.  A value that ran on over a newline (which the
        # scanner takes as whitespace) shows in one count at the end: each
        # line must have given one message.
        append, size = messages.append, len(text)
        try:
            while start < size:
                value, stop = scan(text, start)
                if text[stop] != "\n":
                    break
                append(value)
                start = stop + 1
        except (StopIteration, ValueError, RecursionError, SystemError, IndexError):
            pass  # the careful path below says why (see _loads)
        if text.count("\n", 0, start) != len(messages):
            messages.clear()
            start = 0
    return _lines_from(text, start, messages)


def _lines_from(text: str, pos: int, messages: list[Any]) -> list[Any]:
    """Parse the lines of ``text`` from ``pos`` on one by one into
    ``messages``; a line that does not parse becomes a BadMessage."""
    append, find, scan = messages.append, text.find, _scan
    size = len(text)
    while pos < size:
        eol = find("\n", pos)
        # A scanner call on the text in place that ends exactly at the
        # newline; anything else -- whitespace, a value running on past
        # the newline, garbage -- is parsed alone.
        if scan is not None:
            try:
                value, stop = scan(text, pos)
            except (StopIteration, ValueError, RecursionError, SystemError):
                stop = -1
            if stop == eol:
                append(value)
                pos = eol + 1
                continue
        line = text[pos:eol]
        try:
            append(_loads(line))
        except (ValueError, RecursionError) as exc:
            append(BadMessage(exc, line.encode("utf-8", "replace")))
        pos = eol + 1
    return messages


def _any_bad(messages: list[Any]) -> bool:
    # A BadMessage comes from the careful path of _json_lines: rare, and
    # found with one C-level pass over the types.
    return BadMessage in set(map(type, messages))


def parse_json_lines(buf: bytearray) -> list[Any]:
    """Take every complete line out of ``buf`` and parse each as
    ``JSON.parse`` would; a line that does not parse becomes a
    :class:`BadMessage` in its place (the lines after it still count)."""
    end = buf.rfind(b"\n")
    if end < 0:
        return []
    text = _decode(buf, end)
    del buf[: end + 1]
    return _json_lines(text)


def _pickle_frames(buf: Any, limit: float) -> tuple[list[Any], int, int]:
    """Parse every complete frame of ``buf`` (a bytearray, or a memoryview
    of one read); returns the messages, how many bytes of a frame over
    ``limit`` are still to come (to skip), and how many bytes of ``buf``
    were used."""
    messages: list[Any] = []
    pos, skip, n = 0, 0, len(buf)
    loads, unpack = _pickle_lib.loads, _U32.unpack_from
    with memoryview(buf) as view:
        while n - pos >= 4:
            (size,) = unpack(view, pos)
            left = n - pos - 4
            if size > limit:
                messages.append(_too_large(limit, bytes(view[pos : pos + 64])))
                if left < size:
                    skip, pos = size - left, n
                    break
                pos += 4 + size
                continue
            if left < size:
                break
            # Unpickled in place: no copy of the frame beside the buffer and the value.
            with view[pos + 4 : pos + 4 + size] as payload:
                try:
                    messages.append(loads(payload))
                except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input
                    messages.append(BadMessage(exc, bytes(payload[:64])))
            pos += 4 + size
    return messages, skip, pos


def parse_pickle_frames(buf: bytearray) -> list[Any]:
    """Take every complete frame (u32 big-endian length, then the pickle)
    out of ``buf`` and unpickle it; one that fails becomes a
    :class:`BadMessage`."""
    messages, _skip, used = _pickle_frames(buf, math.inf)
    del buf[:used]
    return messages


class Framer:
    """One channel's read side: ``feed()`` each read's bytes, get the
    messages they complete.  Work is linear in the bytes fed: only the new
    bytes are searched for a line's end, and a message over ``limit`` bytes
    is dropped as it arrives (one :class:`BadMessage` for it) instead of
    being held."""

    __slots__ = ("buf", "limit", "plain", "_pickle", "_skip")

    def __init__(self, pickle: bool, limit: float = MAX_MESSAGE_SIZE) -> None:
        self.buf = bytearray()
        self.limit = limit
        self._pickle = pickle
        self._skip = 0  # bytes of a dropped message still to come (json: 1 until its newline)
        # The last feed() gave user messages only: no BadMessage, and (json)
        # no string that could be an internal command ('NODE_...', which only
        # the text itself or a \\u escape can spell).  The channel then hands
        # the messages on without looking at each.
        self.plain = False

    @property
    def pending(self) -> int:
        """Bytes held of a message not complete yet (0 while dropping one)."""
        return len(self.buf)

    def feed(self, data: Any) -> list[Any]:
        self.plain = False
        return self._feed_pickle(data) if self._pickle else self._feed_json(data)

    def _too_large(self) -> BadMessage:
        buf = self.buf
        bad = _too_large(self.limit, bytes(buf[:64]))
        buf.clear()
        return bad

    def _feed_json(self, data: Any) -> list[Any]:
        buf = self.buf
        start = len(buf)  # the bytes held so far hold no newline
        buf += data
        if self._skip:
            nl = buf.find(b"\n")
            if nl < 0:
                buf.clear()
                return []
            self.buf = buf = buf[nl + 1 :]  # a copy of one read at most (see below)
            self._skip = start = 0
        end = buf.rfind(b"\n", start)
        if end < 0:
            messages = []
        elif end < self.limit:  # so is every line
            text = _decode(buf, end)
            # The rest (it came in this read) in a new buffer, and the old one
            # freed before parsing: a bytearray trimmed at the front copies
            # itself whole on each later growth.
            self.buf = buf = buf[end + 1 :]
            messages = _json_lines(text)
            self.plain = "NODE_" not in text and "\\u" not in text and not _any_bad(messages)
            del text
        else:
            messages = self._measured_lines(buf, end)
            self.buf = buf = buf[end + 1 :]
        if len(buf) > self.limit:  # what is left has no newline: too long already
            messages.append(self._too_large())
            self.plain = False  # a BadMessage now ends the list: the channel must look
            self._skip = 1
        return messages

    def _measured_lines(self, buf: bytearray, end: int) -> list[Any]:
        """The lines of ``buf[:end + 1]``, which may hold one over the limit:
        each measured in bytes, and decoded and parsed alone."""
        messages: list[Any] = []
        pos, limit = 0, self.limit
        with memoryview(buf) as view:
            while pos <= end:
                nl = buf.find(b"\n", pos, end + 1)
                if nl - pos > limit:
                    messages.append(_too_large(limit, bytes(view[pos : pos + 64])))
                else:
                    with view[pos : nl + 1] as line:
                        messages += _json_lines(str(line, "utf-8", "replace"))
                pos = nl + 1
        return messages

    def _feed_pickle(self, data: Any) -> list[Any]:
        if self._skip:
            n = len(data)
            if n <= self._skip:
                self._skip -= n
                return []
            data = data[self._skip :]
            self._skip = 0
        if not self.buf:
            # The common case, nothing held: the frames are parsed where
            # they were read, and only a partial last frame is kept.
            messages, self._skip, used = _pickle_frames(data, self.limit)
            if used < len(data):
                self.buf += data[used:]
            return messages
        self.buf += data
        messages, self._skip, used = _pickle_frames(self.buf, self.limit)
        if used:
            # A new buffer for the rest: one trimmed at the front copies
            # itself whole on each later growth (a frame arriving in pieces).
            self.buf = self.buf[used:]
        return messages
