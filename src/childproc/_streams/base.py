"""What ``Readable`` and ``Writable`` share: an owned, non-blocking pipe fd.

Both streams own one fd on a reactor, report ``destroyed``/``closed``, hold
a keep-alive ref on the loop while they need one (each decides when, in
``_wants_ref``), and can lend their fd to another child's stdio -- the
zero-copy hand-over of ``stdio=[a.stdout, ...]``.  That part lives here once.
"""

from __future__ import annotations

import os

from .._runtime.emitter import EventEmitter
from .._runtime.forksafe import replace_with_null, track

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from .._runtime.reactor import Reactor

    _S = TypeVar("_S", bound="FdStream")

__all__ = ["FdStream", "MAX_READS_PER_WAKE"]

# Reads per wake-up of a readable pipe, at most: one busy pipe cannot starve
# the other callbacks (libuv: 32).
MAX_READS_PER_WAKE = 32


class FdStream(EventEmitter):
    """Base of the stream classes; not used on its own."""

    # Fields whose starting value is immutable are class attributes: a
    # stream is made per pipe of every spawn, and each attribute set in
    # __init__ costs that spawn (an instance attribute shadows its default
    # at the first assignment).
    _destroyed = False
    _closed = False
    _ref_wanted = True  # what ref()/unref() asked for
    _holding_ref = False  # whether we hold one on the reactor now
    used_as_stdio = False  # Node's kIsUsedAsStdio: handed to a child once
    _lent = False  # the fd went blocking for a spawn (see _childproc_fd)
    _borrowers = 0  # children running with this fd in their stdio
    # What the owner asked for while the fd was lent: run when the last
    # borrower has exited (the owner's flush after its own exit).
    _after_lend: Callable[[], Any] | None = None
    # Set by the owning ChildProcess: whether its process has ended (even
    # if the exit has not been delivered yet).
    _owner_ended: Callable[[], bool] | None = None

    def __init__(self, fd: int, reactor: Reactor, high_water_mark: int) -> None:
        self._events = {}  # EventEmitter.__init__, inlined (see above)
        self._fd = fd
        self._reactor = reactor
        self._hwm = high_water_mark
        track(self)

    @property
    def destroyed(self) -> bool:
        return self._destroyed

    @property
    def closed(self) -> bool:
        """``'close'`` has been emitted."""
        return self._closed

    def fileno(self) -> int:
        """The pipe fd (-1 once closed)."""
        return self._fd

    # -- keep-alive ----------------------------------------------------------

    def ref(self: _S) -> _S:
        """Let this stream keep the loop (and the interpreter at exit) alive
        while it needs to (the default)."""
        self._ref_wanted = True
        self._update_ref()
        return self

    def unref(self: _S) -> _S:
        """Let the loop finish even though this stream is still open."""
        self._ref_wanted = False
        self._update_ref()
        return self

    def _wants_ref(self) -> bool:
        """Whether the stream, as it stands, keeps the loop alive."""
        raise NotImplementedError

    def _update_ref(self) -> None:
        want = self._ref_wanted and self._wants_ref()
        if want != self._holding_ref:
            self._holding_ref = want
            self._reactor.ref() if want else self._reactor.unref()

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see forksafe): the parent's pipe end is let go.
        replace_with_null(self._fd, null_fd)

    # -- handing the fd to another child ---------------------------------------

    def _lendable(self) -> bool:
        return True

    def _childproc_fd(self) -> int:
        """The fd to place in another child's stdio (``stdio=[child_a.stdout, ...]``).

        The pipe is switched to blocking mode first: O_NONBLOCK belongs to the
        open file description, which the new child shares, and most programs
        fail on EAGAIN from their stdio (libuv clears it for the same reason).
        Should the spawn fail, the next read or write here (``_reclaim``)
        restores non-blocking mode.
        """
        if self._fd < 0 or self._destroyed or not self._lendable():
            from .._errors import stream_destroyed

            raise stream_destroyed("spawn")
        os.set_blocking(self._fd, True)
        self._lent = True
        return self._fd

    def _reclaim(self) -> None:
        self._lent = False
        if self._fd >= 0:
            os.set_blocking(self._fd, False)

    def _handed_over(self) -> None:
        """That spawn succeeded: another child runs with this fd now.

        The stream stays the parent's, as in Node (a ``p3.stdin`` given to two
        children and then written and ended by the parent; a ``p1.stdout``
        read by the parent once ``head`` is done with it), but the parent
        keeps off the fd while a borrower runs: it is in blocking mode for
        the borrower's sake, and reads would steal the borrower's input.
        The owning ChildProcess calls :meth:`_lend_ended` when the borrower
        has exited.
        """
        self.used_as_stdio = True
        self._borrowers += 1
        self._lend_started()

    def _lend_started(self) -> None:
        """Keep off the fd while borrowers run (each stream knows how)."""

    def _lend_ended(self) -> None:
        """A borrower exited (its 'exit' listeners have run): when it was the
        last, the fd is ours again on the next tick."""
        self._borrowers -= 1
        if not self._borrowers:
            self._reactor.call_soon(self._returned)

    def _returned(self) -> None:
        if self._borrowers or self._destroyed:
            return
        if self._lent:
            self._reclaim()
        self._on_returned()

    def _on_returned(self) -> None:
        """The stream's own decision once no child borrows the fd any more."""

    def destroy(self, err: BaseException | None = None) -> FdStream:
        raise NotImplementedError
