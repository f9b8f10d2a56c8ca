"""The IPC channel between a parent and a forked child, on Node's wire.

One ``AF_UNIX`` ``SOCK_STREAM`` socket (a socketpair end; ``SCM_RIGHTS``
needs a socket), framed as Node frames it (docs/architecture.md, "The channel"):

* ``'json'`` -- one ``JSON.stringify`` text plus ``'\\n'`` per message,
  UTF-8.  A Node parent and a Python child (or the reverse) talk without
  knowing about each other.  Python values map as ``json`` maps them; NaN and
  infinities become ``null`` and ``bytes`` become Node's Buffer JSON
  (``{"type": "Buffer", "data": [...]}``) as ``JSON.stringify`` does.
* ``'pickle'`` -- Python to Python: a u32 big-endian length and a pickle,
  the framing of Node's ``'advanced'`` mode.  Any picklable object travels.
  The peer is trusted: it is our own child or parent.

What ``setupChannel`` does in Node is done here: ``send()`` returns False
once 128 KiB wait in the write queue (backpressure); messages are never
reordered; objects whose ``cmd`` starts with ``NODE_`` are internal and go
to ``'internalMessage'``; user messages are delivered one per tick and are
queued until a ``'message'`` listener exists; a socket passed with
``send(msg, sock)`` travels with ``SCM_RIGHTS`` under Node's ``NODE_HANDLE``
envelope and later sends wait for the peer's ``NODE_HANDLE_ACK``;
``disconnect()`` closes the channel and both sides get ``'disconnect'``.

Where we differ on purpose: bytes that do not parse are an ``'error'``
(an ``IPCError``, code ``ERR_IPC_BAD_MESSAGE``) on the owner -- or a
warning when nobody listens for errors -- and the messages after them still
arrive (Node throws out of its read callback and loses the rest of the read).
Writes still queued when ``disconnect()`` is called are flushed first.
A handle sent from a thread whose loop is not running is settled inside
``send()`` (sent, ACKed, the channel's copy closed), so that thread can
block on the socket's peer at once.  A received message over
``max_message_size`` is an ``'error'`` too, and fds sent without a
``NODE_HANDLE`` message are closed on arrival (Node has neither bound).
"""

from __future__ import annotations

import _socket  # the C socket type: the socket module costs a forked child ~4 ms of start-up
import errno as _errno
import struct
import sys
import warnings

try:  # the C partial, without functools' import cost (collections): a forked child starts faster
    from _functools import partial
except ImportError:  # pragma: no cover - other Pythons
    from functools import partial

try:
    from _collections import deque
except ImportError:  # pragma: no cover
    from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; forked children start faster without
    from collections.abc import Callable
    from typing import Any

from .._runtime.emitter import EventEmitter
from .._errors import ArgTypeError, IPCError, IPCWarning, spawn_error
from .._runtime.forksafe import replace_with_null, track
from .._runtime.reactor import Reactor
from .handles import Handles, handle_type, invalid_message, take_fd
from .jsonfast import stringify
from .receive import DONTWAIT, Receiving, _is_internal
from . import wire as _wire
from .wire import MAX_MESSAGE_SIZE, Framer, encode_json, encode_pickle

__all__ = ["Channel", "IPC", "IPCWarning"]

_SEND_HWM = 128 * 1024  # Node: channel.writeQueueSize < 65536 * 2
_RECV_SIZE = 256 * 1024
_INT = struct.Struct("i")
_U32_PACK = struct.Struct(">I").pack  # pickle framing (see wire.encode_pickle)
_SOL_SOCKET, _SCM_RIGHTS = _socket.SOL_SOCKET, getattr(_socket, "SCM_RIGHTS", 1)
_COALESCE_MAX = 256 * 1024  # queued plain messages joined into one buffer up to this size


class Channel(EventEmitter):
    """Node's ``child.channel`` / ``process.channel``: ``ref()``,
    ``unref()`` and ``fd``.  ``ref()``/``unref()`` pin whether the channel
    keeps its loop alive (the child side otherwise follows its listeners)."""

    def __init__(self, ipc: IPC) -> None:
        super().__init__()
        self._ipc = ipc

    @property
    def fd(self) -> int:
        return self._ipc.fd

    def ref(self) -> None:
        self._ipc.pin_ref(True)

    def unref(self) -> None:
        self._ipc.pin_ref(False)


class IPC(Receiving):
    """The channel machinery behind a target (a ChildProcess, or the child
    side's ``process``): the target gets ``send``, ``disconnect``,
    ``connected`` and ``channel`` through it and emits its events."""

    def __init__(
        self,
        target: EventEmitter,
        fd: int,
        reactor: Reactor,
        serialization: str = "json",
        *,
        on_closed: Callable[[], None] | None = None,
        refed: bool = True,
        follow_listeners: bool = False,
        max_message_size: float | None = None,
        peer: int | None = None,
    ) -> None:
        self.target = target
        self.fd = fd
        self.reactor = reactor
        self.pickle = serialization in ("pickle", "advanced")
        self.encode = encode_pickle if self.pickle else encode_json
        self._dumps: Any = _wire._pickle_lib.dumps if self.pickle else None  # (a json channel never imports pickle)
        self._framer = Framer(self.pickle, MAX_MESSAGE_SIZE if max_message_size is None else max_message_size)
        self.sock: Any
        if sys.platform == "win32":
            from .winpipe import PipeChannel  # a named pipe with libuv's frames

            self.sock = PipeChannel(fd, reactor)
        else:
            self.sock = _socket.socket(fileno=fd)
        # Blocking, with MSG_DONTWAIT on every call but the loop's read when
        # the channel is all its thread waits for (a worker between two
        # requests): that read then sleeps in recvmsg itself, one system
        # call instead of epoll_wait and recvmsg (see Reactor.set_direct_read).
        self.sock.setblocking(not not DONTWAIT)
        self._rbuf = bytearray(_RECV_SIZE)  # recvmsg_into: no 256 KiB allocation per read
        self._rview = memoryview(self._rbuf)
        self.connected = True
        self.peer = peer  # the pid at the other end, if known (for the loop's spin)
        self.channel: Channel | None = Channel(self)
        self._on_closed = on_closed
        self.handles = Handles(self)
        self.out: deque[list[Any]] = deque()  # [data, fd or -1, callback]; data is bytes, or a
        # bytearray of plain messages joined while queued (see _write)
        self._out_size = 0
        self._sent_tick = -1  # the loop turn of the last send that skipped the queue
        self._writing = False
        self._batching = False  # a flush is queued for the end of this tick
        self._write_ref = False  # pending writes keep the loop alive
        self._pending_messages: list[tuple[Any, Any]] = []
        self.eof = False
        self._disconnect_deferred = False
        self._closing = False
        self._refed = False
        self._pinned = False
        self._follow = follow_listeners
        track(self)
        self._reader = self.make_reader()
        reactor.add_reader(fd, self._reader)
        if DONTWAIT:
            reactor.set_direct_read(fd, self._reader)
        if refed:
            self._set_ref(True)
        target.on("newListener", self._on_new_listener)
        if follow_listeners:
            target.on("removeListener", self._on_listeners_changed)

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see forksafe): the channel is the parent's; the
        # copy lets go of its end, and of fds received but not yet claimed.
        self.connected = False
        self.channel = None
        replace_with_null(self.sock.fileno(), null_fd)
        for fd in self.handles.owned_fds():
            replace_with_null(fd, null_fd)

    # -- keep-alive -------------------------------------------------------

    def _set_ref(self, on: bool) -> None:
        if on and not self._refed:
            self._refed = True
            self.reactor.ref()
        elif not on and self._refed:
            self._refed = False
            self.reactor.unref()

    def pin_ref(self, on: bool) -> None:
        self._pinned = True
        if self.connected:
            self._set_ref(on)

    def _on_listeners_changed(self, *_: Any) -> None:
        # Node's child side: the channel is ref'd while 'message' or
        # 'disconnect' listeners exist, unless ref()/unref() pinned it.
        if self._follow and not self._pinned and self.connected:
            t = self.target
            self._set_ref(t.listener_count("message") + t.listener_count("disconnect") > 0)

    def _on_new_listener(self, event: Any, _fn: Any) -> None:
        if self._follow and event in ("message", "disconnect"):
            # newListener fires before the listener is added.
            self.reactor.call_soon(self._on_listeners_changed)
        self.reactor.call_soon(self._replay_pending)

    # -- sending ----------------------------------------------------------

    def send(
        self,
        message: Any,
        handle: Any = None,
        keep_open: bool = False,
        callback: Callable[[BaseException | None], Any] | None = None,
    ) -> bool:
        if handle is None and callback is None and self.connected and self.handles.queue is None:
            # The common send, a message alone on an open channel, in few
            # steps: within a burst it joins the buffer of queued messages
            # here (see write), not after two more calls.
            if callable(message):
                raise invalid_message(message)
            if self.pickle:
                payload = self._dumps(message, -1)  # encode_pickle, inline
                data = _U32_PACK(len(payload)) + payload
            else:
                try:  # encode_json's common case, a call less
                    data = (stringify(message) + "\n").encode("utf-8")
                except (KeyError, RecursionError, UnicodeEncodeError):
                    data = encode_json(message)
            out = self.out
            if not (out or self._writing or self._batching):
                # write()'s first case inline (a reply, a lone request):
                # straight to the socket when nothing was sent yet this turn.
                reactor = self.reactor
                tick = reactor.tick
                if tick is not None and tick != self._sent_tick:
                    self._sent_tick = tick
                    try:
                        sent = self.sock.send(data, DONTWAIT)
                    except OSError:
                        sent = 0  # full, or failing: the queue retries and reports
                    if sent == len(data):
                        reactor.expect_soon(self.peer)
                        return True  # nothing is queued
                    data = data[sent:]
            elif out and (self._batching or self._writing):
                last = out[-1][0]
                if type(last) is bytearray and len(last) < _COALESCE_MAX:
                    last += data
                    self._out_size += len(data)  # (a queue that is not empty holds the write ref)
                    return self._out_size < _SEND_HWM
            self.write(data, -1, None)
            return self._out_size < _SEND_HWM
        if not self.connected:
            # Node reports this on the next tick: before anything else that
            # waits, such as an exit seen in the same turn.
            err = IPCError("Channel closed", code="ERR_IPC_CHANNEL_CLOSED")
            if callback is not None:
                self.reactor.next_tick(callback, err)
            else:
                self.reactor.next_tick(self.target.emit, "error", err)
            return False
        if callable(message):
            raise invalid_message(message)
        if handle is not None and sys.platform == "win32":
            # Node's Windows protocol duplicates sockets with
            # WSADuplicateSocket inside libuv's frames; not done here.
            raise NotImplementedError("passing handles over the channel is supported on POSIX only")
        fd = -1
        if handle is not None:
            htype, extra = handle_type(handle)
            message = {"cmd": "NODE_HANDLE", "type": htype, "msg": message, **extra}
        data = self.encode(message)  # raises for what cannot be sent, before anything is queued
        if handle is not None:
            # The channel owns every fd it is to send (see take_fd).
            fd = take_fd(handle, htype == "net.Socket" and not keep_open)
        queue = self.handles.queue
        if queue is not None and not (_is_internal(message) and message["cmd"] in _ACKS):
            # An un-ACKed handle is out: everything after it waits.
            queue.append((data, fd, callback))
            ok = len(queue) == 1
        else:
            ok = self.send_now(data, fd, callback)
        if fd >= 0 and self.reactor.idle_caller():
            self.handles.settle()
        return ok

    def send_now(self, data: bytes, fd: int, callback: Any) -> bool:
        if fd >= 0:
            self.handles.start(data, fd)
        self.write(data, fd, callback)
        return self._out_size < _SEND_HWM

    def write(self, data: bytes, fd: int, callback: Any) -> None:
        out = self.out
        if not (self._writing or self._batching or out) and fd < 0 and callback is None:
            tick = self.reactor.tick
            if tick is not None and tick != self._sent_tick:
                # Nothing queued and nothing sent yet in this turn of the
                # loop (a reply, a lone notification): straight to the
                # socket, without a queue entry, its keep-alive ref and the
                # end-of-turn flush arranged below for a burst.
                self._sent_tick = tick
                try:
                    sent = self.sock.send(data, DONTWAIT)
                except OSError:
                    sent = 0  # full, or failing: the queue retries and reports
                if sent == len(data):
                    # A lone message is often a request or a reply: the
                    # answer may come within microseconds.
                    self.reactor.expect_soon(self.peer)
                    return
                data = data[sent:]
        self._out_size += len(data)
        if not self._write_ref:
            # Like a Node channel with a write in flight: what was sent is
            # delivered even if the process is about to end.
            self._write_ref = True
            self.reactor.ref()
        if self._writing or self._batching:
            # Queued behind a write in progress or for the end of the tick.
            # Plain messages (no fd, no callback) join one buffer as they
            # come: one send for the lot, and no per-message entry to pop.
            # (A bytearray entry is always such a buffer: encode() gives bytes.)
            if fd < 0 and callback is None:
                if out:
                    last = out[-1][0]
                    if type(last) is bytearray and len(last) < _COALESCE_MAX:
                        last += data
                        return
                out.append([bytearray(data), -1, None])
            else:
                out.append([data, fd, callback])
            return
        out.append([data, fd, callback])
        # The first message of a tick goes out now (latency); the ones sent
        # after it in the same tick are joined into one write at its end.
        self.flush()
        if self.out or not self._writing:
            self._batching = True
            self.reactor.call_soon(self._end_batch)

    def _end_batch(self) -> None:
        self._batching = False
        if self.out and not self._writing:
            self.flush()

    def flush(self) -> None:
        sock, out = self.sock, self.out
        while out:
            entry = out[0]
            data, fd = entry[0], entry[1]
            try:
                if fd >= 0:
                    sent = sock.sendmsg([data], [(_SOL_SOCKET, _SCM_RIGHTS, _INT.pack(fd))], DONTWAIT)
                    entry[1] = -1  # the fd went with the first byte
                elif len(out) > 1 and len(data) < 65536:
                    # Coalesce small messages into one syscall.
                    sent = self._send_batch()
                    continue
                else:
                    sent = sock.send(data, DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._write_failed(exc)
                return
            self._out_size -= sent
            if sent < len(data):
                entry[0] = data[sent:]
                break
            out.popleft()
            if entry[2] is not None:
                self.reactor.call_soon(entry[2], None)
        if out and not self._writing:
            self._writing = True
            self.reactor.add_writer(self.fd, self.flush)
        elif not out:
            if self._writing:
                self._writing = False
                self.reactor.remove_writer(self.fd)
            self._release_write_ref()
            if self._closing:
                self._finish_close()

    def _release_write_ref(self) -> None:
        if self._write_ref:
            self._write_ref = False
            self.reactor.unref()

    def _send_batch(self) -> int:
        """Send the leading run of plain messages with one send: joined
        into one buffer (sendmsg's iovec count is capped by IOV_MAX)."""
        out = self.out
        parts: list[bytes] = []
        size = 0
        for entry in out:
            if entry[1] >= 0 or size > 262144:
                break
            parts.append(entry[0])
            size += len(entry[0])
        sent = self.sock.send(b"".join(parts), DONTWAIT)
        self._out_size -= sent
        left = sent
        while left:
            entry = out[0]
            n = len(entry[0])
            if left >= n:
                left -= n
                out.popleft()
                if entry[2] is not None:
                    self.reactor.call_soon(entry[2], None)
            else:
                entry[0] = entry[0][left:]
                left = 0
        return sent

    def _write_failed(self, exc: OSError) -> None:
        err = spawn_error(exc.errno or _errno.EPIPE, "write")
        callbacks = [entry[2] for entry in self.out if entry[2] is not None]
        self.out.clear()
        self._out_size = 0
        self._release_write_ref()
        if self._writing:
            self._writing = False
            self.reactor.remove_writer(self.fd)
        if callbacks:
            for cb in callbacks:
                self.reactor.call_soon(cb, err)
        elif exc.errno not in (_errno.EPIPE, _errno.ECONNRESET):
            # A peer that went away is reported by 'disconnect', not here.
            self.reactor.call_soon(self.target.emit, "error", err)
        if self._closing:
            self._finish_close()

    # -- handle ACKs -------------------------------------------------------

    def _handle_acked(self) -> None:
        self.handles.acked()
        if self._disconnect_deferred and self.handles.queue is None:
            self._disconnect_deferred = False
            self._disconnect()

    def _handle_nacked(self) -> None:
        if not self.handles.nacked():
            warnings.warn("Handle did not reach the receiving process correctly", IPCWarning, stacklevel=2)
            if self._disconnect_deferred and self.handles.queue is None:
                self._disconnect_deferred = False
                self._disconnect()

    # -- closing ----------------------------------------------------------

    def disconnect(self) -> None:
        if not self.connected:
            self.target.emit(
                "error", IPCError("IPC channel is already disconnected", code="ERR_IPC_DISCONNECTED")
            )
            return
        self.connected = False
        if self.handles.queue is not None:
            self._disconnect_deferred = True
            return
        self._disconnect()

    def _disconnect(self) -> None:
        self.channel = None
        self._closing = True
        self.reactor.call_soon(self._close_after_tick)

    def _close_after_tick(self) -> None:
        if not self.out:
            self._finish_close()
        elif not self._writing:
            self.flush()

    def _on_eof(self) -> None:
        self.eof = True
        self.reactor.remove_reader(self.fd)
        if self.connected:
            self.connected = False
            self.channel = None
            self._closing = True
            self.out.clear()
            self._out_size = 0
            self._release_write_ref()
            # After the messages of the last read, which wait on the queue.
            self.reactor.call_soon(self._finish_close)
        elif self._closing and not self.out:
            # Queued like the close above: messages already read go first.
            self.reactor.call_soon(self._finish_close)
        if not self.out:
            # No ACK can come any more: the handles waiting for one are let
            # go now, not when the loop next runs.
            self.handles.release_unsent()

    @property
    def settling(self) -> bool:
        """The channel still has events to give: it is connected, or it
        has closed and its 'disconnect' is queued."""
        return self.connected or self._closing

    def _finish_close(self) -> None:
        if self.sock.fileno() < 0:
            return
        self._closing = False
        try:
            self.reactor.remove_reader(self.fd)
        except (KeyError, ValueError):
            pass
        if self._writing:
            self._writing = False
            self.reactor.remove_writer(self.fd)
        self.handles.release_all()
        self.sock.close()
        self._set_ref(False)
        self.target.emit("disconnect")
        if self._on_closed is not None:
            self._on_closed()



_ACKS = ("NODE_HANDLE_ACK", "NODE_HANDLE_NACK")

