"""``AbortController`` and ``AbortSignal``: the web API Node's ``signal``
option takes, in Python.

``controller = cp.AbortController()`` hands out ``controller.signal``; pass it
as ``signal=`` to ``spawn``/``exec``/``exec_file``/``fork`` and call
``controller.abort(reason)`` to kill the child with its ``kill_signal``.  The
child then emits ``'error'`` with an ``AbortError`` whose ``cause`` is the
reason (only if the kill reached a live child, as in Node).

Listeners run synchronously inside ``abort()``, on the calling thread, like
the DOM's.  A child registers its listener on the thread that owns it, so
aborting from that thread is the ordinary case; aborting from another thread
is safe too, because the child's listener only schedules work on its own
loop (``call_soon_threadsafe``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._errors import AbortError

__all__ = ["AbortController", "AbortSignal"]

Listener = Callable[..., Any]


class AbortSignal:
    """The read side: ``aborted``, ``reason``, and ``'abort'`` listeners."""

    __slots__ = ("_aborted", "_reason", "_listeners", "_lock", "onabort", "__weakref__")

    def __init__(self) -> None:
        self._aborted = False
        self._reason: Any = None
        self._listeners: list[tuple[Listener, bool]] = []
        self._lock = threading.Lock()
        self.onabort: Listener | None = None

    @property
    def aborted(self) -> bool:
        return self._aborted

    @property
    def reason(self) -> Any:
        return self._reason

    def throw_if_aborted(self) -> None:
        if self._aborted:
            reason = self._reason
            raise reason if isinstance(reason, BaseException) else AbortError(cause=reason)

    def add_event_listener(self, event: str, listener: Listener, *, once: bool = False) -> None:
        """Add an ``'abort'`` listener (other event names are accepted and
        never fire, as with the DOM).  Adding the same function twice is a
        no-op, as with the DOM's ``addEventListener``."""
        if event != "abort":
            return
        with self._lock:
            if any(fn is listener for fn, _ in self._listeners):
                return
            self._listeners.append((listener, once))

    def remove_event_listener(self, event: str, listener: Listener) -> None:
        if event != "abort":
            return
        with self._lock:
            self._listeners = [(fn, once) for fn, once in self._listeners if fn is not listener]

    def __repr__(self) -> str:
        if not self._aborted:
            return f"<AbortSignal not aborted, {len(self._listeners)} listener(s)>"
        return f"<AbortSignal aborted, reason={self._reason!r}>"

    # Node-style spellings, for ported code.
    addEventListener = add_event_listener  # noqa: N815
    removeEventListener = remove_event_listener  # noqa: N815

    def _abort(self, reason: Any) -> None:
        with self._lock:
            if self._aborted:
                return
            self._aborted = True
            self._reason = reason
            listeners = self._listeners
            self._listeners = [(fn, once) for fn, once in listeners if not once]
        if self.onabort is not None:
            self.onabort(self)
        for fn, _ in listeners:
            fn(self)

    @staticmethod
    def abort(reason: Any = None) -> AbortSignal:
        """An already-aborted signal (Node's ``AbortSignal.abort()``)."""
        signal = AbortSignal()
        signal._abort(_default_reason() if reason is None else reason)
        return signal

    @staticmethod
    def timeout(seconds: float) -> AbortSignal:
        """A signal that aborts after ``seconds`` with a ``TimeoutError``
        (Node's ``AbortSignal.timeout(ms)``, in seconds like every Python
        API).  The timer is a daemon thread, so it never keeps a process
        alive."""
        signal = AbortSignal()
        timer = threading.Timer(
            seconds, signal._abort, (TimeoutError("The operation was aborted due to timeout"),)
        )
        timer.daemon = True
        timer.start()
        return signal


class AbortController:
    """The write side: ``abort(reason=None)`` aborts ``signal`` once."""

    __slots__ = ("signal",)

    def __init__(self) -> None:
        self.signal = AbortSignal()

    def abort(self, reason: Any = None) -> None:
        self.signal._abort(_default_reason() if reason is None else reason)

    def __repr__(self) -> str:
        return f"<AbortController signal={self.signal!r}>"


def _default_reason() -> AbortError:
    # Node's default reason: a DOMException named AbortError whose message
    # is 'This operation was aborted' (the error a child emits then says
    # 'The operation was aborted' and carries this as its cause).
    return AbortError("This operation was aborted")
