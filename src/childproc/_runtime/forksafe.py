"""A forked copy of this process lets go of childproc's fds.

``os.fork()`` -- called directly, or by multiprocessing's ``'fork'`` start
method (the default on Linux before Python 3.14) -- copies every fd without
an exec, so close-on-exec does not help.  Three traps follow, and each one
is a hang in the *parent*, not the copy:

* The copy holds the parent's pipe and channel ends open.  A child never
  sees EOF on its stdin after ``stdin.end()``, a forked child never sees
  ``'disconnect'``, a grandchild's ``'close'`` waits for the copy to exit.
* The copy shares the parent's epoll instance (an epoll fd copied by fork
  is the same kernel object).  A stream the copy closes takes the parent's
  fd out of it, and the parent then waits for events that never come.
* The copy's interpreter exit runs the keep-alive loop, so it waits for the
  parent's children.

So, right after a fork, in the copy only: every fd that a tracked owner
(a stream, a channel, an exit watch, a private loop) holds is replaced by
``/dev/null`` with ``dup2``.  The number stays taken, so the owner's later
``close()`` closes only that copy and never an fd the copy opened since;
reads see EOF; the epoll copy is no longer an epoll fd, so nothing done in
the copy reaches the parent's.  The loops are retired (driving one raises
``RuntimeError``) and forgotten, so childproc used in the copy starts
afresh, with its own loop and children.  The parent is not touched.

(The fds of a *_sync run, or of a spawn in progress, live in C: the C core
holds them and closes them in the copy itself, csrc/pipe_posix.c.)
"""

from __future__ import annotations

import os
from _weakref import ref

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class Owner(Protocol):
        def _forget_after_fork(self, null_fd: int) -> None: ...


__all__ = ["track", "on_fork_in_child", "replace_with_null"]

# id -> weak reference; dead entries are pruned as the table grows.
_owners: dict[int, Any] = {}
_prune_at = 256
_resets: list[Callable[[], None]] = []


def track(owner: Owner) -> None:
    """Let go of ``owner``'s fds in a forked copy (see the module doc):
    ``owner._forget_after_fork(null_fd)`` is called there."""
    global _prune_at
    _owners[id(owner)] = ref(owner)
    if len(_owners) > _prune_at:
        for key in [k for k, r in _owners.items() if r() is None]:
            del _owners[key]
        _prune_at = 2 * len(_owners) + 256


def on_fork_in_child(reset: Callable[[], None]) -> None:
    """Run ``reset`` in a forked copy after the owners let go (module state)."""
    _resets.append(reset)


def replace_with_null(fd: int, null_fd: int) -> None:
    """Point ``fd`` at what ``null_fd`` is, close-on-exec; -1 is skipped."""
    if fd >= 0 and fd != null_fd:
        try:
            os.dup2(null_fd, fd, inheritable=False)
        except OSError:
            pass  # not open any more: nothing of the parent's to drop


def _open_null() -> int:
    try:
        return os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        # No /dev/null (a bare chroot): the read end of a closed pipe gives
        # EOF just the same, and writes fail instead of vanishing.
        r, w = os.pipe()
        os.close(w)
        return r


def _after_fork_in_child() -> None:
    owners = [r() for r in _owners.values()]
    _owners.clear()
    if owners:
        null_fd = _open_null()
        try:
            for owner in owners:
                if owner is not None:
                    owner._forget_after_fork(null_fd)
        finally:
            os.close(null_fd)
    for reset in _resets:
        reset()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
