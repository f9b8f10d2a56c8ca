"""``die_with_parent`` for a whole process group: the warden
(docs/architecture.md, "Lifecycle").

The kernel's ``PR_SET_PDEATHSIG`` reaches only the child it was set in, and a
shell forks what it runs, so for a shell command (and with ``kill_tree``) the
child leads its own process group and a warden joins that group:
``sh -c 'read x <&3 || kill -KILL 0'``, its fd 3 the read end of a pipe whose
write end only this process holds (close-on-exec).  When this process dies,
however it dies, the kernel closes that end; ``read`` sees EOF and the warden
kills its own group -- ``kill(0)``: no number that could have been recycled.
When the child is done, :meth:`Warden.release` writes a line, the warden's
``read`` succeeds and it exits quietly; its owner reaps it.  A descendant that
leaves the group (``setsid``) escapes it.

A forked copy of this process must not hold the write end (the warden would
wait for the copy's death too): right after ``os.fork()`` the copy points it
at ``/dev/null`` and forgets the warden, which is not its child.
"""

from __future__ import annotations

import os
from _weakrefset import WeakSet

__all__ = ["Warden", "can_guard"]

_SCRIPT = "read x <&3 || kill -KILL 0"
_live: WeakSet[Warden] = WeakSet()


def can_guard() -> bool:
    """Whether this platform can run a warden (Linux: posix_spawn, pidfds)."""
    return hasattr(os, "posix_spawn") and hasattr(os, "pidfd_open") and os.path.exists("/bin/sh")


class Warden:
    """Kills process group ``pgid`` when this process dies (see the module doc)."""

    __slots__ = ("pid", "_fd", "_forgotten", "__weakref__")

    def __init__(self, pgid: int) -> None:
        self.pid = 0
        self._fd = -1
        self._forgotten = False
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = os.posix_spawn(
                "/bin/sh", ["sh", "-c", _SCRIPT], os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                              (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2),
                              (os.POSIX_SPAWN_DUP2, r, 3)],
                setpgroup=pgid,
            )
        except OSError:
            os.close(w)  # the group is gone already (or no sh): nothing to guard
            return
        finally:
            os.close(r)
        self._fd = w
        _live.add(self)

    def release(self) -> int:
        """The group needs no guard any more: the warden exits quietly.
        Returns its pid, for the owner to reap (0: nothing to reap)."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return 0
        _live.discard(self)
        if not self._forgotten:
            try:
                os.write(fd, b"\n")
            except OSError:
                pass  # the warden is gone already (its group was killed)
        os.close(fd)
        return 0 if self._forgotten else self.pid

    def reap(self) -> None:
        """Release, then wait for the warden: it ends as soon as it reads the
        line, so this blocks for about a process exit (the sync forms)."""
        pid = self.release()
        while pid:
            try:
                os.waitpid(pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                pass
            return


def _forget_in_forked_copy() -> None:
    wardens = list(_live)
    _live.clear()
    if not wardens:
        return
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for warden in wardens:
            if warden._fd >= 0:
                os.dup2(null, warden._fd, inheritable=False)
            warden._forgotten = True
    finally:
        os.close(null)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_forked_copy)
