"""Windows: the channel's transport, a duplex named pipe carrying libuv's
IPC frames (docs/architecture.md, "Windows").

libuv on Windows puts a 16-byte header before every write on an IPC pipe:
``u32 flags`` (1: it carries data; 2 and 4: a socket is being passed),
``u32 reserved``, ``u32 data_length``, ``u32 reserved`` (zero), all
little-endian, then the data.  The data of all frames together is the same
stream of JSON lines (or advanced frames) as on a Unix socket, so the
channel's parser is unchanged: :class:`PipeChannel` gives it the socket
calls it uses (``send``, ``recvmsg_into``, ``fileno``, ``close``) over the
pipe's fd, framing on the way out and unframing on the way in.  Reads and
writes go through the reactor's overlapped I/O (:mod:`childproc._runtime.iocp`).

Handle passing is POSIX-only: a frame that carries a socket is a protocol
error here, which closes the channel, and sending one is refused.
"""

from __future__ import annotations

import errno
import struct
import sys

assert sys.platform == "win32"

from .._runtime.iocp import read as _read

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .._runtime.reactor import Reactor

__all__ = ["PipeChannel"]

_HEADER = struct.Struct("<IIII")
_HAS_DATA = 0x01
_XFER_FLAGS = 0x06
_MAX_FRAME = 0x7FFFFFFF


class PipeChannel:
    """The subset of a non-blocking socket the channel uses, over the fd of
    a channel pipe end."""

    def __init__(self, fd: int, reactor: Reactor) -> None:
        self._fd = fd
        self._reactor = reactor
        self._raw = bytearray()  # read, not yet unframed
        self._payload = bytearray()  # unframed, not yet handed out
        self._left = 0  # data bytes of the current frame still to come

    def setblocking(self, flag: bool) -> None:
        """Always non-blocking: the loop's overlapped I/O."""

    def fileno(self) -> int:
        return self._fd

    def send(self, data: Any, flags: int = 0) -> int:
        size = len(data)
        self._reactor.write(self._fd, _HEADER.pack(_HAS_DATA, 0, size, 0) + bytes(data))
        return size

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0) -> int:
        raise OSError(errno.ENOTSUP, "passing handles over the channel is not supported on Windows")

    def recvmsg_into(self, buffers: list[memoryview], ancbufsize: int = 0,
                     flags: int = 0) -> tuple[int, list[Any], int, None]:
        view = buffers[0]
        while not self._payload:
            data = _read(self._fd, max(len(view), 65536))  # BlockingIOError: nothing there
            if not data:
                return 0, [], 0, None  # EOF
            self._unframe(data)
        n = min(len(view), len(self._payload))
        view[:n] = self._payload[:n]
        del self._payload[:n]
        return n, [], 0, None

    def _unframe(self, data: bytes) -> None:
        raw = self._raw
        raw += data
        pos = 0
        while pos < len(raw):
            if self._left:
                take = min(self._left, len(raw) - pos)
                self._payload += raw[pos:pos + take]
                self._left -= take
                pos += take
                continue
            if len(raw) - pos < _HEADER.size:
                break
            frame_flags, _, length, reserved = _HEADER.unpack_from(raw, pos)
            if frame_flags & _XFER_FLAGS or frame_flags & ~(_HAS_DATA | _XFER_FLAGS) or reserved:
                # A socket being passed (POSIX-only here) or not a frame at all.
                raise OSError(errno.EPROTO, "unsupported IPC frame on the channel pipe")
            pos += _HEADER.size
            self._left = length if frame_flags & _HAS_DATA else 0
        del raw[:pos]

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            self._reactor.close_fd(fd)
