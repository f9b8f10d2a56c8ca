"""The fd table both epoll reactors keep: which callback reads or writes each
fd, and the rules for handing fds to the poller (docs/architecture.md, "The
loop").

:class:`childproc._runtime.private.PrivateLoop` and
:class:`childproc._runtime.aio.EpollAsyncioReactor` mix it in; each keeps its
own way of serving what the poller reports.  A mix-in rather than an object
the reactor holds: ``add_reader``/``remove_reader`` run for every pipe of
every spawn, and an attribute of the reactor itself is one lookup fewer.
"""

from __future__ import annotations

from errno import EBADF as _EBADF

from .poller import ONESHOT, READ, WRITE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["FdTable"]


class FdTable:
    """fd -> [reader, writer] callbacks, and the fds not yet given to the poller.

    New fds are given to the poller in one go (:meth:`_register_added`, at the
    next wait), in the order added -- libuv's watcher queue: fds that are all
    ready by then (a child that wrote, exited and closed its pipes while this
    thread was busy) are reported in that order, stdout, stderr, then the
    exit, as Node's are.  Removals are immediate, before the owner closes the
    fd: a registration outlives the close while another process holds the same
    file (a pipe handed to a child) and would go on reporting it.
    """

    # fd -> [reader, writer, ONESHOT or 0]; entries the reactor makes for
    # itself (its wake-up pipe) have the first two only and never come here.
    _callbacks: dict[int, list[Any]]
    _unregistered: dict[int, None]  # fds in _callbacks not yet given to the poller, in order
    _poller: Any  # None until _start_poller made it (the asyncio reactor makes it at the first fd)
    #: True once the reactor let its poller go: only the tables change then.
    closed: bool = False
    # The fd whose reader the private loop may call to sleep in its read
    # (PrivateLoop.set_direct_read), forgotten with that reader.
    _direct_fd: int = -1
    _direct_read: Callback | None = None

    def _init_fds(self, poller: Any) -> None:
        self._callbacks = {}
        self._unregistered = {}
        self._poller = poller

    def _first_added(self) -> None:
        """Called when an fd is queued and none was: a reactor whose waits
        are not its own (asyncio) schedules :meth:`_register_added` here."""

    def _start_poller(self) -> Any:
        """Make the poller, when ``_poller`` is None at the first registration."""
        raise RuntimeError("no poller")

    def _update(self, fd: int, slot: int, callback: Callback | None) -> None:
        if fd == self._direct_fd and slot == 0 and callback is None:
            self._direct_read = None
        callbacks = self._callbacks
        entry = callbacks.get(fd)
        if entry is None:
            if callback is None:
                return
            entry = callbacks[fd] = [None, None, 0]
            entry[slot] = callback
            if not self._unregistered:
                self._first_added()
            self._unregistered[fd] = None
            return
        entry[slot] = callback
        mask = (READ if entry[0] else 0) | (WRITE if entry[1] else 0)
        if fd in self._unregistered:
            if not mask:
                del callbacks[fd]
                del self._unregistered[fd]
            return
        if self.closed:
            if not mask:
                del callbacks[fd]
            return
        if mask:
            self._poller.modify(fd, mask)
            return
        del callbacks[fd]
        try:
            self._poller.unregister(fd)
        except (OSError, ValueError, KeyError):
            pass  # closed already: the kernel dropped it from epoll

    def _register_added(self) -> None:
        callbacks = self._callbacks
        added, self._unregistered = self._unregistered, {}
        if not added:
            return
        poller = self._poller if self._poller is not None else self._start_poller()
        failed: OSError | None = None
        for fd in added:
            entry = callbacks[fd]
            try:
                poller.register(fd, (READ if entry[0] else 0) | (WRITE if entry[1] else 0) | entry[2])
            except OSError as exc:
                del callbacks[fd]
                if exc.errno != _EBADF:  # EBADF: closed before the wait, nothing to watch
                    failed = failed or exc  # not pollable: its owner hears of it here
        if failed is not None:
            raise failed

    def add_reader(self, fd: int, callback: Callback) -> None:
        callbacks = self._callbacks
        if fd not in callbacks:  # the usual case, _update's first branch inlined
            callbacks[fd] = [callback, None, 0]
            if not self._unregistered:
                self._first_added()
            self._unregistered[fd] = None
            return
        self._update(fd, 0, callback)

    def add_reader_oneshot(self, fd: int, callback: Callback) -> None:
        """Watch a new ``fd`` that turns readable once and stays so (a
        pidfd): epoll reports it once, then holds it disabled, so once that
        report was served the owner closes it after :meth:`drop_fired`,
        without the ``epoll_ctl`` a removal costs -- on the path from the
        child's exit to ``'close'``.  A disabled registration that outlives
        the close (a forked copy still holding the file) never reports."""
        if ONESHOT and fd not in self._callbacks:
            self._callbacks[fd] = [callback, None, ONESHOT]
            if not self._unregistered:
                self._first_added()
            self._unregistered[fd] = None
            return
        self.add_reader(fd, callback)

    def drop_fired(self, fd: int) -> None:
        """Forget ``fd``, whose reader was just called for its one report
        (see :meth:`add_reader_oneshot`); any other fd is removed as
        :meth:`remove_reader` does."""
        entry = self._callbacks.get(fd)
        if entry is not None and len(entry) > 2 and entry[2] and fd not in self._unregistered:
            del self._callbacks[fd]
            return
        self.remove_reader(fd)

    def remove_reader(self, fd: int) -> None:
        entry = self._callbacks.get(fd)
        if entry is not None and entry[1] is None and not self.closed and fd not in self._unregistered:
            # The usual case (a registered fd with only a reader), inlined
            # from _update: unregistered at once, before its owner closes it.
            del self._callbacks[fd]
            if fd == self._direct_fd:
                self._direct_read = None
            try:
                self._poller.unregister(fd)
            except (OSError, ValueError, KeyError):
                pass  # closed already: the kernel dropped it from epoll
            return
        self._update(fd, 0, None)

    def _rearm_unserved(self, events: list[tuple[int, int]]) -> None:
        """Events a wait returned that were not served (a callback before
        them raised): a level-triggered fd is reported again anyway, a
        one-shot one only once armed again."""
        for fd, _mask in events:
            entry = self._callbacks.get(fd)
            if entry is not None and len(entry) > 2 and entry[2] and fd not in self._unregistered:
                try:
                    self._poller.modify(fd, READ | entry[2])
                except (OSError, ValueError):
                    pass  # closed meanwhile: nothing to report

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._update(fd, 1, callback)

    def remove_writer(self, fd: int) -> None:
        self._update(fd, 1, None)
