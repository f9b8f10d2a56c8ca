"""The child side of an IPC channel: ``from childproc import process``.

A child started by ``cp.fork()`` -- or by Node's own ``child_process.fork()``
with ``execPath: 'python3'`` -- finds its channel the way a Node child does:
``NODE_CHANNEL_FD`` names the fd and ``NODE_CHANNEL_SERIALIZATION_MODE`` the
framing.  When childproc is imported both variables are removed from
``os.environ`` (so grandchildren do not inherit them) and the fd is made
close-on-exec (so no grandchild holds the channel open).

``process`` then behaves like Node's: ``process.send(msg)``,
``process.on('message', fn)``, ``process.connected``,
``process.disconnect()``, ``process.channel.ref()/unref()``, ``'disconnect'``
when the parent goes away.  The channel keeps the child alive only while it
has ``'message'`` or ``'disconnect'`` listeners (Node's rule), so a script
that registers a handler and ends its main code keeps serving messages --
the main thread's loop runs at interpreter exit -- until the parent
disconnects.  Without a channel, ``process.connected`` is False,
``process.channel`` None, and ``send`` raises ``IPCError``.

The channel is attached to a loop on first use (a listener, a send), so a
child that first touches ``process`` inside ``asyncio.run`` gets its events
on that asyncio loop.
"""

from __future__ import annotations

import os

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at import; forked children start faster without
    from typing import Any

from .._runtime.emitter import EventEmitter
from .._runtime.forksafe import track
from .channel import IPC
from .target import IPCTarget
from .._runtime.loop import current_reactor

__all__ = ["Process", "process"]


def _take_channel() -> tuple[int, str]:
    """Claim the channel Node's convention hands us, once, at import."""
    raw = os.environ.pop("NODE_CHANNEL_FD", None)
    mode = os.environ.pop("NODE_CHANNEL_SERIALIZATION_MODE", None) or "json"
    if raw is None:
        return -1, mode
    try:
        fd = int(raw)
        if fcntl is not None:
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
        else:
            # Windows: the pipe handle arrived inheritable (that is how it
            # got here); our own children must not get it.
            os.set_inheritable(fd, False)
    except (ValueError, OSError):
        return -1, mode
    return fd, mode


class Process(IPCTarget, EventEmitter):
    """This process's end of the channel to its parent (Node's
    ``process.send`` & co.)."""

    def __init__(self) -> None:
        super().__init__()
        self._fd, self._mode = _take_channel()
        self._ipc: IPC | None = None
        if self._fd >= 0:
            track(self)

    def _forget_after_fork(self, null_fd: int) -> None:
        # A forked copy of a forked child does not share its channel (see
        # childproc._runtime.forksafe); once attached, the IPC lets go of it itself.
        if self._ipc is None and self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)  # nothing else knows this number
            except OSError:
                pass

    _no_channel = "this process has no IPC channel (it was not forked)"

    def _ipc_for_call(self) -> IPC | None:
        return self._channel_ipc()

    def _channel_ipc(self) -> IPC | None:
        if self._ipc is None and self._fd >= 0:
            fd, self._fd = self._fd, -1
            # Unref'd until a 'message'/'disconnect' listener exists.
            self._ipc = IPC(self, fd, current_reactor(), self._mode, refed=False, follow_listeners=True,
                            peer=os.getppid() if hasattr(os, "getppid") else None)
        return self._ipc

    def __repr__(self) -> str:
        if self._ipc is None and self._fd < 0:
            state = "no channel (not forked)"
        else:
            state = "connected" if self.connected else "disconnected"
        return f"<childproc.process pid={os.getpid()} {state}>"

    # Registering a listener attaches the channel first, so the listener
    # hooks that ref it see the new listener.
    def on(self, event: Any, fn: Any = None) -> Any:
        self._channel_ipc()
        return super().on(event, fn)

    def prepend_listener(self, event: Any, fn: Any) -> Any:
        self._channel_ipc()
        return super().prepend_listener(event, fn)


process = Process()


def _defer_channel() -> None:
    """A warm child (childproc._warm): the zygote imported this module before
    the child had a channel.  The child looks ``process`` up afresh
    (:func:`__getattr__`), so the channel is claimed at the first lookup --
    ``from childproc import process`` -- which is when a cold child's import
    of this module claims it.  Until then ``NODE_CHANNEL_FD`` stays in the
    environment for a script that reads it itself, as in a cold child."""
    globals().pop("process", None)


def __getattr__(name: str) -> Process:
    if name != "process":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fresh = globals()["process"] = Process()
    return fresh
