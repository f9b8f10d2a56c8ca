"""Handles on the channel: what Node's channel says about what is sent (the
handle class of a socket, ``NODE_HANDLE``'s ``type``; the error for a message
Node would refuse) and its handle-passing protocol (:class:`Handles`:
``NODE_HANDLE`` / ``NODE_HANDLE_ACK`` / ``NODE_HANDLE_NACK``, the fds in
flight both ways, a Node server's socket-list requests)."""

from __future__ import annotations

import os

try:
    from _collections import deque
except ImportError:  # pragma: no cover - other Pythons
    from collections import deque

from .._errors import ArgTypeError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a forked child milliseconds at start-up
    from typing import Any

__all__ = ["Handles", "close_fd", "handle_type", "invalid_message", "take_fd"]

_HANDLE_RETRIES = 3  # Node resends a NACKed handle up to three times


def handle_type(handle: Any) -> tuple[str, dict[str, Any]]:
    """Node's handle classes for a Python socket."""
    import socket  # whoever sends a handle has it loaded already

    if not isinstance(handle, socket.socket):
        raise ArgTypeError("This handle type cannot be sent", code="ERR_INVALID_HANDLE_TYPE")
    if handle.type == socket.SOCK_DGRAM:
        extra = {"dgramType": "udp6" if handle.family == socket.AF_INET6 else "udp4"}
        return "dgram.Socket", extra
    try:
        listening = handle.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError:
        listening = 0
    return ("net.Server" if listening else "net.Socket"), {}


def invalid_message(message: Any) -> TypeError:
    from .._messages import invalid_arg_type

    return invalid_arg_type("message", ["string", "object", "number", "boolean"], message)


def take_fd(handle: Any, detach: bool) -> int:
    """The fd the channel sends for ``handle``, its own from now on, so
    nothing the user does to the socket afterwards (close it, and the
    number reused by another open) changes what travels.  A sent net.Socket
    is taken from its socket object, as Node takes the handle from a sent
    socket (``socket._handle = null``) and closes it once the peer has it; a
    server, a UDP socket or ``keep_open`` stays the user's, and the channel
    sends a duplicate of it."""
    if detach:
        return int(handle.detach())
    return os.dup(handle.fileno())  # non-inheritable (PEP 446)


def close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class Handles:
    """Node's handle passing on one channel (the ``IPC`` that owns it is
    ``ipc``): the fds received and not yet claimed by a ``NODE_HANDLE``,
    the handle sent and not yet ACKed, the sends queued behind it, and the
    sockets a Node server sent (for its count/close requests)."""

    __slots__ = ("ipc", "received", "pending", "queue", "socket_lists")

    def __init__(self, ipc: Any) -> None:
        self.ipc = ipc
        self.received: deque[int] = deque()
        self.pending: tuple[bytes, int, int] | None = None  # data, fd, tries
        # Sends waiting for the pending handle's ACK: (data, fd or -1, callback).
        self.queue: list[tuple[bytes, int, Any]] | None = None
        self.socket_lists: dict[Any, list[Any]] = {}

    # -- sending -----------------------------------------------------------

    def start(self, data: bytes, fd: int) -> None:
        """A handle goes out: later sends wait for its ACK (Node's handle queue)."""
        self.queue = []
        self.pending = (data, fd, 0)

    def settle(self) -> None:
        """Send the handles now and wait for the peer's ACKs, from a thread
        whose loop is not running (``send(msg, sock); sock.close()``, then a
        blocking read on the socket's peer).  Node closes its copy of a sent
        socket when the ACK arrives and relies on its loop always running to
        read it; here nothing would read it before this thread next blocks on
        childproc, and the copy would keep the socket open meanwhile.  What
        else arrives is queued for the loop, in order; a NACK resends."""
        import select  # only for a handle sent from outside the loop

        ipc = self.ipc
        poller = select.poll()
        while (self.pending is not None or self.queue) and not ipc.eof:
            if ipc.sock.fileno() < 0:
                return
            if ipc.out:
                ipc.flush()
            poller.register(ipc.fd, select.POLLIN | (select.POLLOUT if ipc.out else 0))
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            if any(mask & ~select.POLLOUT for _fd, mask in ready):
                while ipc.read_once() and self.pending is not None:
                    pass

    def acked(self) -> None:
        """The peer has the pending handle: close the channel's copy, send
        what waited."""
        pending, self.pending = self.pending, None
        if pending is not None:
            close_fd(pending[1])
        queue, self.queue = self.queue or [], None
        for i, (data, fd, callback) in enumerate(queue):
            if self.queue is not None:
                # A queued handle went out: the rest lines up behind its
                # ACK, so order is kept.
                self.queue.extend(queue[i:])
                break
            self.ipc.send_now(data, fd, callback)

    def nacked(self) -> bool:
        """The peer got the message without the fd: send it again, up to
        Node's three times; False once it gives up (as if ACKed)."""
        if self.pending is None:
            return True
        data, fd, tries = self.pending
        if tries >= _HANDLE_RETRIES:
            self.acked()
            return False
        self.pending = (data, fd, tries + 1)
        self.ipc.write(data, fd, None)
        return True

    # -- receiving ---------------------------------------------------------

    def receive(self, envelope: dict[str, Any]) -> None:
        ipc = self.ipc
        if not self.received:
            ipc.send({"cmd": "NODE_HANDLE_NACK"})
            return
        fd = self.received.popleft()
        # Node ACKs before its 'message' handler runs.
        ipc.send({"cmd": "NODE_HANDLE_ACK"})
        import socket  # only when a handle arrives

        try:
            handle: Any = socket.socket(fileno=fd)
        except OSError:
            handle = fd
        key = envelope.get("key")
        if key is not None and envelope.get("type") == "net.Socket":
            # A connection a Node server accepted: the sender may later ask
            # how many are still open, or wait for all to close.
            self.socket_lists.setdefault(key, []).append(handle)
        ipc.reactor.call_soon(ipc.target.emit, "internalMessage", envelope, handle)
        ipc.reactor.call_soon(ipc.deliver, envelope.get("msg"), handle)

    def close_strays(self, size: int, arrived: int, partial: int) -> None:
        """Close the fds no message can claim any more, as they arrive: a
        peer that sends fds without ``NODE_HANDLE`` messages must not fill
        this process's fd table.  The kernel hands an fd over with the first
        byte of the message it was sent with, and a read stops after it, so
        the fd of a ``NODE_HANDLE`` still incomplete (``partial`` bytes of
        it held) came with the read its first bytes came in (``size`` bytes,
        ``arrived`` fds); every other fd is a stray."""
        fds = self.received
        keep: int | None = None
        if partial and partial <= size:
            # The incomplete message began in this read: its fd, if any, is
            # the newest of this read.
            keep = fds.pop() if arrived else None
        elif partial and len(fds) > arrived:
            keep = fds.popleft()  # it began earlier: the fd kept since then
        while fds:
            close_fd(fds.popleft())
        if keep is not None:
            fds.append(keep)

    def open_sockets(self, key: Any) -> int:
        live = [s for s in self.socket_lists.get(key, ()) if getattr(s, "fileno", lambda: -1)() >= 0]
        self.socket_lists[key] = live
        return len(live)

    def socket_list_request(self, message: dict[str, Any]) -> None:
        """Node's SocketListReceive: answer a server in the parent that
        counts, or closes, the connections it sent us."""
        ipc = self.ipc
        key = message.get("key")
        if message["cmd"] == "NODE_SOCKET_GET_COUNT":
            if ipc.connected:
                ipc.send({"cmd": "NODE_SOCKET_COUNT", "key": key, "count": self.open_sockets(key)})
            return

        def when_empty() -> None:
            if not ipc.connected:
                return
            if self.open_sockets(key):
                # Python sockets have no 'close' event: look again shortly.
                ipc.reactor.call_later(0.05, when_empty)
            else:
                ipc.send({"cmd": "NODE_SOCKET_ALL_CLOSED", "key": key})

        when_empty()

    # -- letting go --------------------------------------------------------

    def owned_fds(self) -> list[int]:
        """fds received and not claimed, and fds to send not yet ACKed."""
        fds = list(self.received)
        if self.pending is not None:
            fds.append(self.pending[1])
        fds += [fd for _data, fd, _cb in self.queue or () if fd >= 0]
        return fds

    def release_unsent(self) -> None:
        """No ACK can come any more (the peer is gone): let go of the
        handles waiting for one."""
        if self.pending is not None:
            close_fd(self.pending[1])
            self.pending = None
        for _data, fd, _cb in self.queue or ():
            if fd >= 0:
                close_fd(fd)
        if self.queue:
            self.queue = []

    def release_all(self) -> None:
        self.release_unsent()
        while self.received:
            close_fd(self.received.popleft())
