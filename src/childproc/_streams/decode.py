"""Chunks: the bytes/str a stream carries, Node's incremental decoders, and the
conversions between a chunk and the bytes an fd takes."""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

__all__ = ["Chunk", "Decoder", "byte_length", "encode_chunk", "make_decoder", "to_bytes"]

Chunk = bytes | str
Decoder = Callable[[bytes, bool], str]  # (data, final) -> text


def make_decoder(encoding: str) -> Decoder:
    """An incremental decoder with Node's ``StringDecoder`` results.

    Multi-byte characters split across reads are held back until complete;
    invalid UTF-8 becomes U+FFFD per maximal invalid subsequence (what Python's
    incremental decoder with ``'replace'`` does, and what Node does).
    """
    if encoding == "hex":

        def decode_hex(data: bytes, final: bool = False) -> str:
            return data.hex()

        return decode_hex
    if encoding in ("base64", "base64url"):
        import base64

        encode = base64.b64encode if encoding == "base64" else base64.urlsafe_b64encode
        strip = encoding == "base64url"  # Node's base64url has no padding
        held = b""

        def decode_b64(data: bytes, final: bool = False) -> str:
            nonlocal held
            data = held + data
            cut = len(data) if final else len(data) - len(data) % 3  # whole 3-byte groups only
            held = data[cut:]
            text = encode(data[:cut]).decode("ascii")
            return text.rstrip("=") if strip else text

        return decode_b64
    if encoding in ("latin-1", "ascii"):
        # Node's ascii drops the top bit; latin-1 maps bytes to U+0000-U+00FF.
        mask = bytes(range(128)) * 2 if encoding == "ascii" else None

        def decode_8bit(data: bytes, final: bool = False) -> str:
            return (data.translate(mask) if mask else data).decode("latin-1")

        return decode_8bit
    errors = "surrogatepass" if encoding == "utf-16-le" else "replace"
    incremental = codecs.getincrementaldecoder(encoding)(errors)

    def decode(data: bytes, final: bool = False) -> str:
        try:
            return incremental.decode(data, final)
        except UnicodeDecodeError:  # a dangling odd byte of UTF-16: Node drops it
            incremental.reset()
            return ""

    return decode


def byte_length(text: str, encoding: str | None) -> int:
    """Node's ``Buffer.byteLength(text, encoding)`` for text a stream decoded
    to ``encoding``: what exec's ``max_buffer`` counts.  Python's own codecs
    (no Node name) count as UTF-8, Node's default."""
    if encoding in ("latin-1", "ascii"):
        return _utf16_units(text)
    if encoding == "hex":
        return _utf16_units(text) >> 1
    if encoding in ("base64", "base64url"):
        n = _utf16_units(text)
        if n and text[-1] == "=":  # Node drops at most two '=' of padding
            n -= 2 if n > 1 and text[-2] == "=" else 1
        return (n * 3) >> 2
    if encoding == "utf-16-le":
        return 2 * _utf16_units(text)
    # UTF-8: ASCII text is one byte a character, and a str knows whether it
    # is ASCII without looking; else encoded (a lone surrogate as 3, as Node).
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _utf16_units(text: str) -> int:
    # Node's string length: code points, plus one for each beyond the BMP.
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) >> 1


def encode_chunk(chunk: Chunk) -> bytes | memoryview:
    """A chunk as bytes for an fd (a decoded one goes back as UTF-8, as Node writes strings)."""
    return to_bytes(chunk)


def _chunk_type_error(data: Any) -> TypeError:
    from .._messages import invalid_arg_type  # lazily: the message module is large and rarely needed

    return invalid_arg_type("chunk", ["string", "Buffer", "Uint8Array"], data)


def to_bytes(data: Any) -> bytes | memoryview:
    """``str`` as UTF-8 (lone surrogates as U+FFFD, like Node), bytes as they
    are, any other buffer as a byte view (not copied)."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError:
            return data.encode("utf-8", "replace")
    try:
        view = memoryview(data)
    except TypeError:
        raise _chunk_type_error(data) from None
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")
