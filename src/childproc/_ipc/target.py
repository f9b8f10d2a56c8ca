"""What owns a channel -- a ChildProcess (parent side) and ``process`` (child
side) -- offers: ``connected``, ``channel``, ``send()``, ``disconnect()``."""

from __future__ import annotations

from .._errors import IPCError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a forked child milliseconds at start-up
    from collections.abc import Callable
    from typing import Any

    from .channel import IPC, Channel

__all__ = ["IPCTarget"]


class IPCTarget:
    """``connected``, ``channel``, ``send()`` and ``disconnect()`` for what
    owns a channel: a ChildProcess (parent side) and ``process`` (child
    side).  ``_ipc_for_call`` says where the channel is (None: there is
    none) and ``_no_channel`` how to say so."""

    _no_channel = "there is no IPC channel"
    _ipc: IPC | None = None  # the channel once it exists (send's shortcut)

    def _ipc_for_call(self) -> IPC | None:
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """True while the IPC channel is open (False without one)."""
        ipc = self._ipc_for_call()
        return ipc is not None and ipc.connected

    @property
    def channel(self) -> Channel | None:
        """The IPC channel (``ref()``, ``unref()``, ``fd``); None without
        one or once disconnected."""
        ipc = self._ipc_for_call()
        return ipc.channel if ipc is not None else None

    def send(
        self,
        message: Any,
        send_handle: Any = None,
        *,
        keep_open: bool = False,
        callback: Callable[[BaseException | None], Any] | None = None,
    ) -> bool:
        """Send ``message`` to the other side (Node's ``send``).  Returns
        False once 128 KiB wait to be written (backpressure), or when the
        channel is closed -- then the ``ERR_IPC_CHANNEL_CLOSED`` error goes
        to ``callback`` or, without one, to an ``'error'`` event.
        ``send_handle`` may be a ``socket.socket`` (stream, listening or
        UDP): it travels with ``SCM_RIGHTS``; a connected stream socket is
        closed here once the peer has it, unless ``keep_open``."""
        ipc = self._ipc or self._ipc_for_call()
        if ipc is None:
            raise IPCError(self._no_channel, code="ERR_IPC_CHANNEL_CLOSED")
        return ipc.send(message, send_handle, keep_open, callback)

    def disconnect(self) -> None:
        """Close the channel; both sides get ``'disconnect'``."""
        ipc = self._ipc_for_call()
        if ipc is None:
            raise IPCError(self._no_channel, code="ERR_IPC_DISCONNECTED")
        ipc.disconnect()
