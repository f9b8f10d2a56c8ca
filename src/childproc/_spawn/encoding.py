"""Text and bytes: Node's encoding names, the ``input`` option, OS strings.

Node names an encoding with one of a fixed set of words (``'utf8'``,
``'latin1'``/``'binary'``, ``'ascii'``, ``'ucs2'``/``'utf16le'``, ``'hex'``,
``'base64'``, ``'base64url'``, and ``'buffer'`` for "no decoding"), in any
case.  Python's codec names overlap only in part and mean something else in
places, so each Node name is mapped to what Node does with it, not to the
codec of the same name:

* ``'ascii'`` decodes by dropping the top bit of each byte (Node), not by
  failing on bytes >= 0x80 (Python's codec); encoding keeps the low byte of
  each character, as ``'latin1'`` does.
* ``'hex'``, ``'base64'`` and ``'base64url'`` turn bytes into those texts and
  back; they are not Python text codecs at all.  ``'base64url'`` output is
  unpadded, and decoding is lenient as in Node (hex stops at the first bad
  pair, base64 skips foreign characters and a dangling last character).
* ``'ucs2'`` is UTF-16-LE; a trailing odd byte is ignored on decode.

Any other name that Python knows as a *text* codec (``'cp1252'``,
``'shift_jis'``, ...) is accepted too and resolved to its canonical name;
bytes-to-bytes codecs (``zlib``, ``rot13``) and unknown names raise Node's
``ERR_UNKNOWN_ENCODING`` before anything is spawned -- a deliberate
difference: Node does not check the name up front.

The U+FFFD rule: decoding never raises.  Invalid UTF-8 becomes U+FFFD per
maximal invalid subsequence, which is what both Python's ``'replace'``
handler and Node's ``buf.toString()`` do, so the texts match; undecodable
bytes in any other Python codec become U+FFFD too, and ``'ucs2'`` keeps
lone surrogates as a JavaScript string would.  The other way, encoding a
``str`` ``input`` as UTF-8 maps surrogate-escaped characters back to their
original bytes (text read from the OS round-trips) and turns any other lone
surrogate into U+FFFD, as Node does.  ``'buffer'`` as the encoding of a
``str`` ``input`` means UTF-8 (a deliberate difference from Node).

OS strings -- file names, argv entries, env keys and values, cwd -- are
``str`` or ``bytes``; a ``str`` is encoded with the filesystem encoding and
its error handler (``surrogateescape`` on POSIX), exactly as
:func:`os.fsencode` does, and must not contain NUL (:data:`NUL_MESSAGE`).
A lone surrogate that handler cannot map back to a byte (``'\\ud800'``)
becomes U+FFFD, as Node's UTF-8 conversion of a JavaScript string does,
where :func:`os.fsencode` would raise ``UnicodeEncodeError``.

An encoding the output is decoded with must decode any bytes (with
U+FFFD for what it cannot): ``'idna'``, ``'undefined'`` and the like fail
on arbitrary output, so they are refused up front, as Node refuses them.
"""

from __future__ import annotations

import base64
import codecs
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from .._messages import invalid_arg_type, unknown_encoding

__all__ = ["normalize_encoding", "decode_output", "encode_input", "input_bytes", "fs_bytes", "fs_text",
           "FS_ENCODING", "FS_ERRORS", "NUL_MESSAGE"]

FS_ENCODING = sys.getfilesystemencoding()
FS_ERRORS = sys.getfilesystemencodeerrors()
NUL_MESSAGE = "must be a string without null bytes"
_INPUT_TYPES = ("Buffer", "TypedArray", "DataView", "string")

_NODE_ENCODINGS = {"utf8": "utf-8", "utf-8": "utf-8", "latin1": "latin-1", "binary": "latin-1",
                   "ascii": "ascii", "ucs2": "utf-16-le", "ucs-2": "utf-16-le", "utf16le": "utf-16-le",
                   "utf-16le": "utf-16-le", "hex": "hex", "base64": "base64", "base64url": "base64url"}
# Names already resolved, exactly as given: Node's names plus our canonical
# ones; normalize_encoding adds every other name it resolves.
_ENCODINGS: dict[str, str] = {**_NODE_ENCODINGS, "latin-1": "latin-1", "utf-16-le": "utf-16-le"}
_ASCII_MASK = bytes(range(128)) * 2
_DECODERS: dict[str, Callable[[bytes], str]] = {
    "utf-8": lambda d: d.decode("utf-8", "replace"),
    "latin-1": lambda d: d.decode("latin-1"),
    "hex": bytes.hex,
    "base64": lambda d: base64.b64encode(d).decode("ascii"),
    "base64url": lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode("ascii"),
    "ascii": lambda d: d.translate(_ASCII_MASK).decode("ascii"),
    "utf-16-le": lambda d: d[: len(d) & ~1].decode("utf-16-le", "surrogatepass"),
}
_HEX_PAIRS = re.compile(r"(?:[0-9a-fA-F]{2})*")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def fs_text(value: str | bytes) -> str:
    """An OS string as ``str`` (bytes decoded as :func:`os.fsdecode` does)."""
    return value if isinstance(value, str) else os.fsdecode(value)


def fs_bytes(value: str | bytes) -> bytes:
    """An OS string as ``bytes`` (str encoded as :func:`os.fsencode` does,
    a lone surrogate it cannot encode as U+FFFD: see the module doc)."""
    if not isinstance(value, str):
        return value
    try:
        return value.encode(FS_ENCODING, FS_ERRORS)
    except UnicodeEncodeError:
        return value.encode(FS_ENCODING, _FS_NODE_ERRORS)


def _node_surrogates(exc: UnicodeError) -> tuple[bytes, int]:
    # The filesystem handler's own mapping where it has one (surrogateescape:
    # U+DC80..U+DCFF are the bytes 0x80..0xFF), U+FFFD for other surrogates;
    # a character that is no surrogate stays an error.
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = bytearray()
    for ch in exc.object[exc.start : exc.end]:
        code = ord(ch)
        if FS_ERRORS == "surrogateescape" and 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        elif 0xD800 <= code <= 0xDFFF:
            out += "\ufffd".encode(exc.encoding, "replace")
        else:
            raise exc
    return bytes(out), exc.end


_FS_NODE_ERRORS = "childproc.fs"
codecs.register_error(_FS_NODE_ERRORS, _node_surrogates)
# Bytes no decoder of the output may fail on (every byte value, invalid
# UTF-8, a NUL), to tell text codecs that decode anything from those that
# only decode some texts.
_PROBE = bytes(range(256)) + b"\xff\xfe\x00\xed\xa0\x80"


def normalize_encoding(encoding: Any, name: str = "options.encoding") -> str | None:
    """Resolve an ``encoding`` option: None/``'buffer'`` -> None (bytes),
    Node's names (any case) -> their meaning, any Python *text* codec ->
    its canonical name.  Unknown names raise ``ERR_UNKNOWN_ENCODING``."""
    if encoding is None:
        return None
    resolved = _ENCODINGS.get(encoding) if type(encoding) is str else None
    if resolved is not None:
        return resolved
    if not isinstance(encoding, str):
        raise invalid_arg_type(name, "string", encoding)
    lowered = encoding.lower()
    if lowered == "buffer":
        return None
    resolved = _NODE_ENCODINGS.get(lowered)
    if resolved is None:
        try:
            info = codecs.lookup(encoding)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            raise unknown_encoding(encoding) from None
        if not getattr(info, "_is_text_encoding", True):  # zlib, rot13, ... are not text codecs
            raise unknown_encoding(encoding)
        try:
            # Decoding output never raises (the U+FFFD rule): a codec that
            # cannot decode any bytes so would lose the child's result later.
            codecs.decode(_PROBE, info.name, "replace")
            info.incrementaldecoder("replace").decode(_PROBE, True)
        except Exception:  # noqa: BLE001 - idna, undefined, punycode: UnicodeError, TypeError...
            raise unknown_encoding(encoding) from None
        resolved = info.name
    _ENCODINGS[encoding] = resolved
    return resolved


def decode_output(data: bytes, encoding: str | None) -> str | bytes:
    """Decode captured output as Node's ``buf.toString(encoding)`` does:
    invalid UTF-8 becomes U+FFFD, ``'hex'``/``'base64'``/``'base64url'``
    give those texts (base64url unpadded), ``'ascii'`` drops the top bit,
    ``'ucs2'`` ignores a trailing odd byte.  None gives the bytes back."""
    if encoding == "utf-8":
        return data.decode("utf-8", "replace")
    if encoding is None or (encoding := normalize_encoding(encoding)) is None:
        return data
    special = _DECODERS.get(encoding)
    return special(data) if special is not None else data.decode(encoding, "replace")


def encode_input(text: str, encoding: str | None) -> bytes:
    """Encode a str ``input`` as Node's ``Buffer.from(text, encoding)``.

    UTF-8 (the default, also for ``'buffer'``) maps surrogate-escaped
    characters back to their original bytes, as :func:`os.fsencode` does,
    so text read from the OS round-trips; other lone surrogates become
    U+FFFD as in Node.  ``latin1``/``ascii`` keep the low byte of each
    character, ``hex`` and ``base64`` decode leniently (Node stops at the
    first bad hex pair and skips foreign base64 characters)."""
    if encoding is None or encoding == "utf-8":
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
    if encoding in ("latin-1", "ascii"):
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            return bytes(ord(c) & 0xFF for c in text)
    if encoding == "utf-16-le":
        return text.encode("utf-16-le", "surrogatepass")
    if encoding == "hex":
        return bytes.fromhex(_HEX_PAIRS.match(text).group())  # type: ignore[union-attr]
    if encoding in ("base64", "base64url"):
        cleaned = _NOT_BASE64.sub("", text.split("=")[0].replace("-", "+").replace("_", "/"))
        cleaned = cleaned[: len(cleaned) - (len(cleaned) % 4 == 1)]  # a dangling char: Node drops it
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    return text.encode(encoding)


def input_bytes(value: Any, encoding: str | None) -> bytes | None:
    """The ``input`` option as the bytes the child reads (None when empty):
    a str through :func:`encode_input`, anything with the buffer protocol
    copied (C reads it without the GIL)."""
    if isinstance(value, str):
        return encode_input(value, encoding) if value else None
    if isinstance(value, bytes):
        return bytes(value) if value else None
    try:
        view = memoryview(value)
    except TypeError:
        raise invalid_arg_type("options.stdio[0]", _INPUT_TYPES, value) from None
    return view.tobytes() if view.nbytes else None
