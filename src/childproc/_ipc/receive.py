"""The read side of an IPC channel (:class:`Receiving`, a base of
:class:`childproc._ipc.channel.IPC`): from the socket to the ``'message'``
listeners (docs/architecture.md, "The channel").

Two paths.  The general one (:meth:`Receiving.after_read`) feeds each read
to the channel's :class:`~childproc._ipc.wire.Framer` and delivers what it
completes, in order: user messages one per tick, internal ``NODE_*`` ones to
their handlers, fds to the handle table, bad bytes to ``'error'``.  The
common read -- one whole message, no fd, nothing held from an earlier read,
nothing queued on the loop, a plain ``'message'`` listener -- takes the lean
one (:meth:`Receiving.make_reader`): parsed in place and handed to the
listener in one step.  A request/reply exchange (a worker answering its
parent) is nothing but such reads, and every Python step on its way counts
twice per round trip.  Whatever the lean path is not sure of goes to the
general one before anything is delivered, so both give the same events.
"""

from __future__ import annotations

import _socket
import struct
import warnings

from .._errors import IPCError, IPCWarning
from .._runtime.emitter import EventEmitter
from . import wire as _wire
from .wire import BadMessage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .._runtime.reactor import Reactor
    from .handles import Handles
    from .wire import Framer

__all__ = ["RECV_FLAGS", "DONTWAIT", "Receiving"]

_INT = struct.Struct("i")
# Windows' socket module has no ancillary data (no fd passing): the names
# exist only where SCM_RIGHTS does.
_FD_SPACE = _socket.CMSG_SPACE(_INT.size * 4) if hasattr(_socket, "CMSG_SPACE") else 0
_CLOEXEC_FLAG = getattr(_socket, "MSG_CMSG_CLOEXEC", 0)  # fds close-on-exec from birth
_SOL_SOCKET, _SCM_RIGHTS = _socket.SOL_SOCKET, getattr(_socket, "SCM_RIGHTS", 1)
# The channel's socket is left in blocking mode where the OS has a per-call
# MSG_DONTWAIT (see IPC.__init__): every read and write passes it, but the
# one the loop makes when the channel is all it waits for (BLOCKING_READ).
DONTWAIT: int = getattr(_socket, "MSG_DONTWAIT", 0)
RECV_FLAGS = _CLOEXEC_FLAG | DONTWAIT
BLOCKING_READ = _CLOEXEC_FLAG


def _is_internal(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    cmd = message.get("cmd")
    return isinstance(cmd, str) and len(cmd) > 5 and cmd.startswith("NODE_")


class Receiving:
    """The reading half of :class:`~childproc._ipc.channel.IPC`."""

    # Set by IPC.__init__.
    target: EventEmitter
    reactor: Reactor
    sock: Any
    pickle: bool
    connected: bool
    handles: Handles
    _framer: Framer
    _rbuf: bytearray
    _rview: memoryview
    _pending_messages: list[tuple[Any, Any]]

    def _on_eof(self) -> None:
        raise NotImplementedError

    def _handle_acked(self) -> None:
        raise NotImplementedError

    def _handle_nacked(self) -> None:
        raise NotImplementedError

    # -- the general path -------------------------------------------------

    def read_once(self, from_loop: bool = False, flags: int = RECV_FLAGS) -> bool:
        """One recvmsg; False when nothing was there.  ``from_loop``: called
        by the loop for a readable socket, so when nothing else is queued
        the messages may be delivered at once rather than through the queue."""
        try:
            size, anc, _flags, _addr = self.sock.recvmsg_into([self._rview], _FD_SPACE, flags)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            size, anc = 0, []
        return self.after_read(size, anc, from_loop)

    def after_read(self, size: int, anc: list[Any], from_loop: bool) -> bool:
        """What a read of ``size`` bytes (in ``_rbuf``) with ancillary data
        ``anc`` brought: fds, messages, or the end."""
        arrived = 0
        for level, ctype, payload in anc:
            if level == _SOL_SOCKET and ctype == _SCM_RIGHTS:
                count = len(payload) // _INT.size
                self.handles.received.extend(struct.unpack_from(f"{count}i", payload))
                arrived += count
        if not size:
            self._on_eof()
            return False
        framer = self._framer
        messages = framer.feed(self._rview[:size])
        self.deliver_read(messages, framer.plain, from_loop)
        if self.handles.received:
            self.handles.close_strays(size, arrived, framer.pending)
        return True

    def deliver_read(self, messages: list[Any], plain: bool, from_loop: bool) -> None:
        """Hand on the messages of one read, in order (``plain``: user
        messages only, see Framer.plain)."""
        if plain:
            if messages:
                if from_loop and self.reactor.nothing_queued():
                    self._deliver_batch(messages, 0)
                else:
                    self.reactor.call_soon(self._deliver_batch, messages, 0)
            return
        batch: list[Any] = []
        for message in messages:
            kind = type(message)
            if kind is dict:
                cmd = message.get("cmd")  # _is_internal, inline: this runs per message
                special = isinstance(cmd, str) and len(cmd) > 5 and cmd.startswith("NODE_")
            else:
                special = kind is BadMessage
            if special:
                # Keep the order: user messages read before this one first.
                if batch:
                    self.reactor.call_soon(self._deliver_batch, batch, 0)
                    batch = []
                self._dispatch(message)
            else:
                batch.append(message)
        if batch:
            if from_loop and self.reactor.nothing_queued():
                self._deliver_batch(batch, 0)
            else:
                self.reactor.call_soon(self._deliver_batch, batch, 0)

    def drain(self) -> None:
        """Read everything the socket holds now (used when the peer exited)."""
        while self.connected and self.read_once():
            pass

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, BadMessage):
            self.reactor.call_soon(self._bad_message, message)
            return
        if _is_internal(message):
            cmd = message["cmd"]
            if cmd == "NODE_HANDLE":
                self.handles.receive(message)
                return
            if cmd == "NODE_HANDLE_ACK":
                self._handle_acked()
            elif cmd == "NODE_HANDLE_NACK":
                self._handle_nacked()
            elif cmd in ("NODE_SOCKET_GET_COUNT", "NODE_SOCKET_NOTIFY_CLOSE"):
                self.handles.socket_list_request(message)
            self.reactor.call_soon(self.target.emit, "internalMessage", message, None)
            return
        self.reactor.call_soon(self.deliver, message, None)

    def _deliver_batch(self, batch: list[Any], start: int) -> None:
        """The user messages of one read (no handles), in order, from one
        queued call.  Node gives each its own tick so that one throwing
        handler loses no other message; so does this: the rest is queued
        again first."""
        target, pending = self.target, self._pending_messages
        if type(target).emit is EventEmitter.emit:
            # EventEmitter.emit's work for 'message', inline (a call less per
            # message): the listeners as registered when each message goes.
            events = target._events
            for i in range(start, len(batch)):
                message = batch[i]
                try:
                    listeners = None if pending else events.get("message")
                    if listeners is None:
                        pending.append((message, None))
                    elif len(listeners) == 1:
                        listeners[0](message, None)
                    else:
                        for fn in listeners:
                            fn(message, None)
                except BaseException:
                    if i + 1 < len(batch):
                        self.reactor.call_soon(self._deliver_batch, batch, i + 1)
                    raise
            return
        emit = target.emit
        for i in range(start, len(batch)):
            message = batch[i]
            try:
                # emit() is False when nobody listens: then, as while older
                # messages still wait for their replay, the message waits.
                if pending or not emit("message", message, None):
                    pending.append((message, None))
            except BaseException:
                if i + 1 < len(batch):
                    self.reactor.call_soon(self._deliver_batch, batch, i + 1)
                raise

    def deliver(self, message: Any, handle: Any) -> None:
        if self._pending_messages or not self.target.emit("message", message, handle):
            self._pending_messages.append((message, handle))

    def _replay_pending(self) -> None:
        if not self._pending_messages or not self.target.listener_count("message"):
            return
        pending, self._pending_messages = self._pending_messages, []
        for message, handle in pending:
            self.reactor.call_soon(self.target.emit, "message", message, handle)

    def _bad_message(self, bad: BadMessage) -> None:
        if bad.too_large:
            text = f"Dropped a {bad.error} on the IPC channel"
        else:
            text = f"Unparsable message on the IPC channel: {bad.error}"
        err = IPCError(text, code="ERR_IPC_BAD_MESSAGE")
        err.data = bad.data  # type: ignore[attr-defined]
        if self.target.listener_count("error"):
            self.target.emit("error", err)
        else:
            warnings.warn(str(err), IPCWarning, stacklevel=2)

    # -- the lean path ----------------------------------------------------

    def make_reader(self) -> Callable[..., bool]:
        """The loop's callback for the readable socket: ``read(block)``
        reads once (``block``: sleeping until bytes come) and delivers what
        came; False when nothing was there (see Reactor.set_direct_read).

        Everything it needs is bound here once (a closure's cells are read
        faster than attributes); what can change -- the framer's held bytes,
        the pending messages, the loop's queues -- is read each time."""
        recvmsg_into, views, rbuf, rview = self.sock.recvmsg_into, [self._rview], self._rbuf, self._rview
        framer, limit, after_read = self._framer, self._framer.limit, self.after_read
        received = self.handles.received
        events, plain_emit = self.target._events, type(self.target).emit is EventEmitter.emit
        queues = self.reactor.run_queues()
        if queues is None:  # a loop that does not show its queues: the general delivery
            plain_emit, queues = False, ((), (), ())
        q1, q2, q3 = queues
        scan, u32 = _wire._scan, _wire._U32.unpack_from
        pickle = self.pickle
        loads: Any = _wire._pickle_lib.loads if pickle else None  # (imports pickle: a pickle channel's)

        def read(block: bool = False) -> bool:
            try:
                size, anc, _flags, _addr = recvmsg_into(views, _FD_SPACE, BLOCKING_READ if block else RECV_FLAGS)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                size, anc = 0, []
            if anc or size < 2 or framer.buf or framer._skip or received or size > limit:
                return after_read(size, anc, True)
            if pickle:
                # One whole frame: its length says so.
                if u32(rbuf)[0] != size - 4:
                    return after_read(size, anc, True)
                try:
                    message = loads(rview[4:size])
                except Exception:  # noqa: BLE001 - the general path says what is wrong
                    return after_read(size, anc, True)
                if type(message) is dict:
                    cmd = message.get("cmd")
                    if isinstance(cmd, str) and len(cmd) > 5 and cmd.startswith("NODE_"):
                        self.deliver_read([message], False, True)  # internal: to its handler
                        return True
            else:
                # One whole line: it ends the read and no newline comes before.
                if rbuf[size - 1] != 10 or rbuf.find(b"\n", 0, size - 1) >= 0:
                    return after_read(size, anc, True)
                text = str(rview[:size], "utf-8", "replace")
                # Framer.plain's test: no internal command could be spelled in it.
                if "NODE_" in text or "\\u" in text or scan is None:
                    return after_read(size, anc, True)
                try:
                    message, end = scan(text, 0)
                except Exception:  # noqa: BLE001 - the general path says what is wrong
                    return after_read(size, anc, True)
                if end != len(text) - 1:
                    return after_read(size, anc, True)
            # _deliver_batch's work for one message, when nothing waits
            # before it: nothing queued on the loop, no message held back.
            listeners = events.get("message")
            if listeners is None or not plain_emit or self._pending_messages or q1 or q2 or q3:
                self.deliver_read([message], False, True)
            elif len(listeners) == 1:
                listeners[0](message, None)
            else:
                for fn in listeners:
                    fn(message, None)
            return True

        return read
