"""The parent's side of the warm start: ``fork(..., warm_start=True)``.

:func:`spawn` serves a fork plan from the zygote (:mod:`.server`) when a
warm interpreter can be what a cold ``python script args`` would be, and
returns None otherwise, so the caller takes the ordinary (cold) path:

* Linux only; the plan runs this interpreter (``exec_path`` is
  ``sys.executable``) with the default ``exec_argv`` (or the default one
  and ``-c code``, as the worker pool starts its workers), and no ``uid``,
  ``gid`` or ``argv0`` (die_with_parent's warden for a group joins the
  child's group after the spawn, whichever path made it);
* the child's environment has the same start-up variables as the zygote's
  (``PYTHON*``, the locale's, ``HOME``, ``TZ``): those are read when an
  interpreter starts, which the zygote did already;
* the zygote is up and answering.  The first warm fork starts it and goes
  cold itself, and so does every fork until the zygote says it is ready; a
  zygote that died, closed its socket or failed a clone is dropped, and
  the next warm fork starts another.

One zygote per process, made through childproc's own spawn path (its
socket non-inheritable, die_with_parent, nothing that keeps the parent
alive).  A forked copy of this process (``os.fork()``) never uses it: the
zygote's clones become children of the zygote's parent, which is not the
copy.  Requests from several threads take turns (a lock).
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._runtime.forksafe import on_fork_in_child
from .._spawn.native import RawChild, spawn as _native_spawn
from .._spawn.options import normalize_spawn
from . import DIE_WITH_PARENT, SETPGROUP, SETSID, SOCKET_FD

if TYPE_CHECKING:
    from .._spawn.options import SpawnPlan

__all__ = ["spawn", "stop"]

_LINUX = sys.platform.startswith("linux")
# What an interpreter reads from its environment as it starts (or as the
# zygote's imports run): a child whose values differ goes cold.
_START_VARS = (b"PYTHON", b"LC_", b"LANG=", b"LANGUAGE=", b"HOME=", b"TZ=")
_CODE = "import childproc; from childproc._warm.server import main; main()"
_MAX_REQUEST = 1 << 16  # the zygote's receive buffer (server._MAX_REQUEST): beyond, go cold
_MAX_FDS = 64  # and the fds it takes with one request (server._MAX_FDS)
_STAGE_NONE = 0
_CHANNEL_VARS = (b"NODE_CHANNEL_FD", b"NODE_CHANNEL_SERIALIZATION_MODE")


def _start_env(entries: list[bytes]) -> tuple[bytes, ...]:
    return tuple(sorted(e for e in entries if e.startswith(_START_VARS)))


class _Zygote:
    """A running (or starting) zygote: our child, with its socket."""

    def __init__(self) -> None:
        self.ready = False
        self.dead = False
        self.environ = b""  # the zygote's, as it said when ready
        self.owner = os.getpid()
        self.exec_argv = _default_exec_argv()
        # Never a channel of ours: a parent that was itself forked and has
        # not claimed its channel still holds NODE_CHANNEL_FD, which the
        # zygote's import of childproc's process would take for its own.
        env = {k: v for k, v in os.environb.items() if k not in _CHANNEL_VARS}
        self.env = _start_env([k + b"=" + v for k, v in env.items()])
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # close-on-exec
        try:
            plan = normalize_spawn(
                "spawn", sys.executable, [*self.exec_argv, "-c", _CODE], None,
                {"stdio": ["ignore"] * SOCKET_FD + [theirs.fileno()], "die_with_parent": True, "env": env},
                sync=False)
            raw = _native_spawn(plan, {})
        finally:
            theirs.close()
        if raw.error:
            ours.close()
            raise OSError(raw.error, os.strerror(raw.error))
        self.pid, self.pidfd, self.sock = raw.pid, raw.pidfd, ours
        if raw.pidfd >= 0:
            # Reaped when it dies, also of a cause of its own (killed from
            # outside) while no warm fork comes to notice: never a zombie.
            # Through a pidfd of its own, so that close() reaping it first
            # never makes the reaper reap a later child with the same pid.
            from .._runtime.exitwatch.reaper import orphan_reaper

            orphan_reaper().adopt(raw.pid, os.dup(raw.pidfd))

    def poll_ready(self) -> bool:
        """Whether the zygote said it is ready; never blocks."""
        try:
            msg = self.sock.recv(_MAX_REQUEST, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            msg = b""
        if msg[:1] != b"R":
            self.close()
            return False
        self.environ = msg[1:]
        self.ready = True
        return True

    def close(self) -> None:
        """Let the zygote go (it exits at EOF) and reap it."""
        if self.dead:
            return
        self.dead = True
        self.sock.close()
        if self.owner == os.getpid():
            try:
                if self.pidfd >= 0:
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)  # unreaped: the pid is still its
            except OSError:
                pass
            try:
                if self.pidfd >= 0:  # (the reaper may have been first; see __init__)
                    os.waitid(os.P_PIDFD, self.pidfd, os.WEXITED)
                else:
                    os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def forget(self) -> None:
        """In a forked copy: the zygote is the original's; drop our copies."""
        self.dead = True
        self.sock.close()
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def request(self, plan: SpawnPlan, lent: Mapping[int, int]) -> RawChild | None:
        """One child from the zygote, or None when the zygote cannot serve
        (the caller then spawns cold).  Called with the lock held."""
        send: list[int] = []  # fds for the child, closed here after the request
        ours: list[int] = []  # the parent's ends, handed over on success
        try:
            send.append(os.open(".", os.O_PATH | os.O_CLOEXEC))
            slots, parent_fds = _slots(plan, lent, send, ours)
            argv = plan.argv_blob.split(b"\0")[len(plan.exec_argv or ()) + 1:-1]
            extra = (plan.exec_argv or [])[len(self.exec_argv):]  # [] or ['-c', code]
            code = os.fsencode(extra[1]) if extra else None
            flags = (SETSID if plan.detached else SETPGROUP if plan.kill_tree else 0) | (
                DIE_WITH_PARENT if plan.die_with_parent else 0)
            msg = marshal.dumps((argv, plan.argv_blob.split(b"\0")[:-1], self._env(plan), plan.cwd,
                                 slots, flags, code))
            if len(msg) > _MAX_REQUEST or len(send) > _MAX_FDS:
                raise _GoCold
            try:
                socket.send_fds(self.sock, [msg], send)
                raw = self._reply(plan)
            except OSError:
                self.close()  # EPIPE, ECONNRESET: the zygote is gone
                raise
        except (_GoCold, OSError):
            raw = None  # e.g. EMFILE making a pipe: the cold path reports it
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in send:
                os.close(fd)
        if raw is None or raw.error:
            for fd in ours:
                os.close(fd)
            return raw
        raw.fds = parent_fds
        return raw

    def _env(self, plan: SpawnPlan) -> bytes | list[bytes]:
        """The child's environment for the request: when it is the zygote's
        own plus the two channel variables (``env_block`` puts them last),
        only those two, which spares the clone rebuilding its environ (a
        hundred page copies); else the whole block."""
        blob = plan.env_blob or b""
        if plan.ipc_fd >= 0 and blob.endswith(b"\0"):
            i = blob.rfind(b"\0", 0, len(blob) - 1)  # before the last entry (the mode)
            if i >= 0:
                j = blob.rfind(b"\0", 0, i)  # before the one ahead of it (the fd); -1: it is first
                fd_entry, mode_entry = blob[j + 1:i], blob[i + 1:-1]
                if (blob[:j + 1] == self.environ and fd_entry.startswith(b"NODE_CHANNEL_FD=")
                        and mode_entry.startswith(b"NODE_CHANNEL_SERIALIZATION_MODE=")):
                    return [fd_entry, mode_entry]
        return blob

    def _reply(self, plan: SpawnPlan) -> RawChild | None:
        """Read the zygote's and the clone's replies (module doc of .server)."""
        pid = pidfd = -1
        zygote_said = clone_said = False
        err = stage = 0
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        try:
            while not (zygote_said and clone_said):
                ready = dict(poller.poll())
                if self.sock.fileno() not in ready:
                    if pidfd in ready:
                        clone_said = True  # died before its setup said so: its exit tells
                    elif self.pidfd in ready:
                        # The zygote died with no word: a clone it made (if
                        # any) is ours and its exit will tell.
                        poller.unregister(self.pidfd)
                        self.close()
                        if pid < 0:
                            return None
                        break
                    continue
                data = self.sock.recv(64)
                if not data:
                    self.close()
                    if pid < 0:
                        return None
                    break
                who, got_pid, got_err, got_stage = marshal.loads(data)
                if who == 0:
                    zygote_said = True
                    if got_err:
                        self.close()  # a clone failed (EAGAIN, ENOMEM): start afresh next time
                        return None
                else:
                    clone_said = True
                    err, stage = got_err, got_stage
                if pid < 0:
                    pid = got_pid
                    pidfd = os.pidfd_open(pid)
                    poller.register(pidfd, select.POLLIN)
        except BaseException:
            # Interrupted (KeyboardInterrupt in the poll) or a broken reply:
            # a clone nobody will own is ended and reaped, and the zygote,
            # whose replies are now out of step, is let go.
            if pidfd >= 0:
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except OSError:
                    pass
                os.close(pidfd)
            self.close()
            raise
        if err:
            os.close(pidfd)
            os.waitpid(pid, 0)  # it _exit()s right after saying why
            return RawChild(0, -1, [-1] * len(plan.stdio), err, stage)
        return RawChild(pid, pidfd, [], 0, _STAGE_NONE)


class _GoCold(Exception):
    pass


def _slots(plan: SpawnPlan, lent: Mapping[int, int], send: list[int],
           ours: list[int]) -> tuple[list[int], list[int]]:
    """For each stdio slot, the index in ``send`` of the fd the child gets
    there (-1: closed), made as the C core makes them (csrc/spawn_posix.c,
    ``stdio_plan_init``); and the parent's end of each pipe/ipc slot."""
    slots: list[int] = []
    parent_fds: list[int] = []
    devnull = -1
    for i, slot in enumerate(plan.stdio):
        kind = slot.kind
        parent_end = -1
        if kind == "pipe":
            r, w = os.pipe2(os.O_CLOEXEC)
            mine, theirs = (w, r) if i == 0 else (r, w)
            ours.append(mine)
            os.set_blocking(mine, False)
            send.append(theirs)
            parent_end = mine
            slots.append(len(send) - 1)
        elif kind == "ipc":
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            mine = a.detach()
            ours.append(mine)
            os.set_blocking(mine, False)
            send.append(b.detach())
            parent_end = mine
            slots.append(len(send) - 1)
        elif kind in ("fd", "stream"):
            fd = lent[i] if kind == "stream" else slot.fd
            send.append(os.dup(fd))  # EBADF here is the cold path's to report
            slots.append(len(send) - 1)
        elif kind == "dup":
            slots.append(slots[slot.fd])
        elif kind == "ignore" and i <= 2:
            if devnull < 0:
                devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                send.append(devnull)
            slots.append(send.index(devnull))
        else:
            slots.append(-1)
        parent_fds.append(parent_end)
    return slots, parent_fds


_lock = threading.Lock()
_zygote: _Zygote | None = None
# A zygote that cannot start (no ctypes, a broken install) is not started
# again and again: after this many, every warm fork of the process is cold.
_MAX_FAILED_STARTS = 3
_failed_starts = 0


def _serves(plan: SpawnPlan, zygote: _Zygote | None) -> bool:
    exec_path = plan.exec_path
    if isinstance(exec_path, bytes):
        exec_path = os.fsdecode(exec_path)
    if exec_path != sys.executable or plan.uid is not None or plan.gid is not None or plan.argv0 is not None:
        return False
    flags = zygote.exec_argv if zygote is not None else _default_exec_argv()
    exec_argv = plan.exec_argv or []
    extra = exec_argv[len(flags):]
    # The default flags, then nothing (a script) or `-c code` (the pool's worker).
    if exec_argv[:len(flags)] != flags or not (not extra or (len(extra) == 2 and extra[0] in ("-c", b"-c"))):
        return False
    return zygote is None or _start_env((plan.env_blob or b"").split(b"\0")) == zygote.env


def _default_exec_argv() -> list[str]:
    return subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]


def spawn(plan: SpawnPlan, lent: Mapping[int, int]) -> RawChild | None:
    """The child of ``plan`` from the zygote, or None: spawn it cold."""
    global _zygote
    if not _LINUX:
        return None
    global _failed_starts
    with _lock:
        zygote = _zygote
        if zygote is not None and (zygote.dead or zygote.owner != os.getpid()):
            if zygote.dead and not zygote.ready and zygote.owner == os.getpid():
                _failed_starts += 1  # it died before it could serve (no ctypes, say)
            zygote = _zygote = None
        if not _serves(plan, zygote):
            return None
        if zygote is None:
            if _failed_starts < _MAX_FAILED_STARTS:
                try:
                    _zygote = _Zygote()
                except OSError:
                    _failed_starts += 1
            return None  # this fork goes cold while the zygote starts
        if not zygote.ready and not zygote.poll_ready():
            return None
        return zygote.request(plan, lent)


def stop() -> None:
    """End this process's zygote, if any (tests; the next warm fork starts
    another)."""
    global _zygote
    with _lock:
        if _zygote is not None:
            _zygote.close()
            _zygote = None


def zygote_pid() -> int | None:
    """The running zygote's pid, for tests."""
    zygote = _zygote
    return None if zygote is None or zygote.dead else zygote.pid


def _forget_after_fork() -> None:
    global _zygote, _lock, _failed_starts
    _lock = threading.Lock()
    _failed_starts = 0
    if _zygote is not None:
        _zygote.forget()
        _zygote = None


on_fork_in_child(_forget_after_fork)
