"""``ChildProcess``: a running child, its events and its stdio streams.

The event rules are Node's (docs/architecture.md, "Events"):

* ``'spawn'`` comes on the next tick after a successful spawn, before any
  other event of the child and before any stdio data.
* Runtime spawn failures (ENOENT, EACCES, EAGAIN, EMFILE, ENFILE) are not
  raised: on the next tick ``exit_code`` becomes ``-errno`` and ``'error'``
  is emitted instead of ``'exit'``; then ``'close'(-errno, None)``.  After
  EMFILE/ENFILE there are no stdio streams at all.  Every other failure
  (EPERM from uid/gid, E2BIG, ...) raises from ``spawn()``.
* ``'exit'(code, signal)`` when the process ends; stdin is destroyed then,
  and on the next tick every readable stdio stream nobody is consuming is
  drained to EOF (Node's ``flushStdio``), its fd closed so ``'close'`` can
  come -- but, unlike Node, what nobody read is kept (up to a cap) for a
  later ``read()``, iteration or listener instead of being thrown away.
* ``'close'(code, signal)`` once the exit and every piped output stream
  (index >= 1; stdin does not count) have closed: Node's ``maybeClose``
  counting.  Our listener on each stream is attached before the user can
  attach theirs, so ``'close'`` comes inside the last stream's ``'close'``.

Everything is delivered on the loop of the thread that spawned the child
(``_loop``); ``wait()``, ``await child`` and ``with`` are the Python ways to
block on it.
"""

from __future__ import annotations

import errno as _errno
import os
import signal as _signal
import socket
import sys
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, cast

from ._spawn import native as _native
from ._spawn.failure import RUNTIME_SPAWN_ERRORS, display, spawn_failure
from ._runtime.emitter import EventEmitter
from ._errnos import node_errno
from ._errors import AbortError, SpawnError, spawn_error
from ._runtime.exitwatch import ExitWatch
from ._runtime.lifecycle import Lifecycle
from ._ipc.channel import IPC
from ._ipc.target import IPCTarget
from ._runtime.loop import current_reactor, running_asyncio_loop
from ._runtime.poller import pipe_cloexec
from ._runtime.reactor import Reactor
from ._spawn.signals import signal_name, signal_number
from ._streams.base import FdStream
from ._streams.readable import Readable
from ._streams.writable import Writable

if TYPE_CHECKING:
    from ._spawn.options import SpawnPlan

__all__ = ["ChildProcess"]

Stream = Readable | Writable

_WIN = sys.platform == "win32"
_SIGKILL = 9  # Python's signal module has no SIGKILL on Windows; Node's number

# Failures Node emits as 'error' events; everything else is thrown.
_NO_STDIO_ERRORS = frozenset({_errno.EMFILE, _errno.ENFILE})
_NO_LENT: dict[int, int] = {}  # read only: no stream of another child in this stdio
# kill_tree: how long stdio may stay open after the group was killed and the
# child exited (a descendant that ignored the signal still holds a pipe).
_TREE_DRAIN_GRACE = 0.25


_warm_spawn_fn: Callable[[SpawnPlan, dict[int, int]], _native.RawChild | None] | None = None


def _warm_spawn() -> Callable[[SpawnPlan, dict[int, int]], _native.RawChild | None]:
    """The warm start's spawn, imported by the first ``warm_start`` fork and
    kept: a process that never asks for one does not pay for its module
    (nor an import statement per spawn for those that do)."""
    global _warm_spawn_fn
    if _warm_spawn_fn is None:
        from ._warm.client import spawn

        _warm_spawn_fn = spawn
    return _warm_spawn_fn


class ChildProcess(IPCTarget, EventEmitter):
    """A child process (Node's ``ChildProcess``); made by ``cp.spawn()``.

    Attributes: ``pid`` (None if the spawn failed), ``exit_code``,
    ``signal_code`` (a name such as ``'SIGTERM'``), ``killed``,
    ``spawnfile``, ``spawnargs``, ``stdin``/``stdout``/``stderr``, ``stdio``
    (None for slots that are not pipes), ``connected`` and ``channel``
    (False/None until a child has an IPC channel).
    """

    # Fields whose starting value is immutable are class attributes (an
    # instance attribute shadows one at its first assignment): a child is
    # made per spawn, and each attribute set here would cost every spawn.
    pid: int | None = None
    exit_code: int | None = None
    signal_code: str | None = None
    killed = False
    spawnfile: str | bytes | None = None
    stdin: Writable | None = None
    stdout: Readable | None = None
    stderr: Readable | None = None
    stdio: list[Stream | None] | None = None
    _ipc: IPC | None = None
    _watch: ExitWatch | None = None
    _closes_needed = 1
    _closes_got = 0
    _exited = False
    _closed = False
    _failure: SpawnError | None = None  # a runtime spawn failure, for await
    _refed = False
    _spawn_failure: SpawnError | None = None  # a runtime spawn failure, for repr()

    def __init__(self) -> None:
        self._events = {}  # EventEmitter.__init__, inlined (the one base with state)
        self.spawnargs: list[str | bytes] = []
        self._reactor: Reactor = current_reactor()
        self._awaiting: list[Any] = []  # futures of `await child`
        self._life = Lifecycle(self._reactor, kill_signal=_signal.SIGTERM, kill_group=False,
                               force_kill_after=None)
        self._borrowed: list[FdStream] = []  # other children's streams in our stdio

    # -- spawning ----------------------------------------------------------

    def _spawn(self, plan: SpawnPlan) -> None:
        self.spawnfile = plan.file
        self.spawnargs = plan.spawnargs
        life = self._life
        life.kill_group = bool(plan.kill_tree)
        life.kill_signal = plan.kill_signal
        life.force_kill_after = plan.force_kill_after
        life.on_error = self._emit_error
        life.on_signalled = self._on_signalled
        life.on_group_signalled = self._on_group_signalled
        # Streams of other children given as stdio lend their fds (see
        # FdStream._childproc_fd); the plan itself stays data.
        # (Only a stdio the user gave can hold one.)
        lent = {i: cast(FdStream, slot.source)._childproc_fd() for i, slot in enumerate(plan.stdio)
                if slot.kind == "stream"} if plan.stdio_given else _NO_LENT
        raw = _warm_spawn()(plan, lent) if plan.warm_start else None
        if raw is None:
            raw = _native.spawn(plan, lent)
        if raw.error:
            failure = spawn_failure(plan, raw.error, raw.stage, sync=False)
            if raw.error not in RUNTIME_SPAWN_ERRORS:
                raise failure  # Node throws these from spawn()
            self._spawn_failure = failure
            if raw.error not in _NO_STDIO_ERRORS:
                self._make_stdio(plan, _dead_pipe_ends(plan))
            self._reactor.call_soon(self._on_exit, failure)
        else:
            self.pid = raw.pid
            if lent:
                for i in lent:
                    borrowed = cast(FdStream, plan.stdio[i].source)
                    borrowed._handed_over()
                    self._borrowed.append(borrowed)
            self._make_stdio(plan, raw.fds)
            life.job = raw.job
            # 'spawn' is queued before the watch exists: a watch may queue
            # the exit at once, and 'spawn' must still come first.
            self._reactor.call_soon(self._emit_spawn)
            self._watch = life.watch(raw.pid, raw.pidfd, self._on_exit_status)
            if plan.group_guarded:
                life.guard_group()
            self.ref()
        life.arm_timeout(plan.timeout)
        life.arm_abort(plan.signal, self._on_abort)

    def _make_stdio(self, plan: SpawnPlan, fds: list[int]) -> None:
        stdio: list[Stream | None] = []
        reactor, slots, maybe_close = self._reactor, plan.stdio, self._maybe_close
        encoding = plan.encoding if plan.fn_name == "spawn" else None
        for i, fd in enumerate(fds):
            if fd < 0:
                stdio.append(None)
                continue
            if slots[i].kind == "ipc":
                # The channel counts for 'close' like an output stream; it
                # closes at the child's EOF or after either side's
                # disconnect() (Node forgets the latter: #19433).
                self._closes_needed += 1
                self._ipc = IPC(self, fd, reactor, plan.serialization, on_closed=maybe_close, peer=self.pid,
                                max_message_size=plan.max_message_size)
                stdio.append(None)
                continue
            if i == 0:
                stdin = Writable(fd, reactor)
                self.stdin = stdin
                stdio.append(stdin)
                continue
            stream = Readable(fd, reactor)
            stream._owner_ended = self._process_ended
            if encoding is not None:
                stream.set_encoding(encoding)  # spawn(encoding=...): a Python addition
            # Counted for 'close', and first in line among its listeners:
            # the stream is new, so its listener table is set directly
            # (what on('close', ...) would leave there, at a fraction of
            # the cost on every spawn).
            self._closes_needed += 1
            stream._events["close"] = (maybe_close,)
            stdio.append(stream)
            if i == 1:
                self.stdout = stream
            elif i == 2:
                self.stderr = stream
        self.stdio = stdio

    def _on_abort(self, signal: Any) -> None:
        try:
            if self.kill(self._life.kill_signal):
                self.emit("error", AbortError(cause=signal.reason))
        except Exception as err:  # noqa: BLE001 - Node emits what kill throws
            self.emit("error", err)

    def _cancel(self) -> None:
        """The task awaiting this child was cancelled (the lifecycle kills)."""
        self._life.cancel()

    def _on_signalled(self, _signum: int) -> None:
        self.killed = True

    def _on_group_signalled(self) -> None:
        # kill_tree, after the leader's exit: what still holds a pipe is a
        # descendant the signal may not end; the wait for it is bounded.
        self._reactor.call_later(_TREE_DRAIN_GRACE, self._close_stdio)

    def _emit_error(self, err: BaseException) -> None:
        self.emit("error", err)

    # -- events ------------------------------------------------------------

    def _emit_spawn(self) -> None:
        self.emit("spawn")

    def _on_exit_status(self, status: int) -> None:
        if _WIN:
            # The 32-bit exit code.  A child we ended with kill() reports the
            # signal sent, as libuv records it (process->exit_signal).
            if self._life.windows_signal:
                self.signal_code = signal_name(self._life.windows_signal)
            else:
                self.exit_code = status
        elif os.WIFSIGNALED(status):
            self.signal_code = signal_name(os.WTERMSIG(status)) or f"SIG{os.WTERMSIG(status)}"
        else:
            self.exit_code = os.waitstatus_to_exitcode(status)
        if self._ipc is not None and self._ipc.settling:
            # Messages the child sent before it exited come before 'exit',
            # and so does the channel's 'disconnect' (with what its
            # listeners start): read what the channel holds now (deliveries
            # are queued), and queue the exit behind them.
            self._ipc.drain()
            self._reactor.call_soon(self._on_exit, None)
            return
        self._on_exit(None)

    def _on_exit(self, failure: SpawnError | None) -> None:
        """Node's ``_handle.onexit``: for an exit, or for a runtime spawn
        ``failure``."""
        self._exited = True
        self._watch = None
        if self._refed:
            self.unref()
        self._life.exited()
        if self._life.kill_group and self.killed:
            # kill_tree: the whole group was signalled, so whatever still
            # holds a pipe is a descendant that survived it.  Waiting for
            # its EOF is bounded: the streams are closed after a short
            # grace period, and 'close' comes.
            self._reactor.call_later(_TREE_DRAIN_GRACE, self._close_stdio)
        if self.stdin is not None:
            self.stdin.destroy()
        try:
            if failure is not None:
                self._failure = failure
                self.exit_code = node_errno(failure.errno or _errno.EIO)
                # An awaiting coroutine gets the failure raised; then it is
                # handled, and 'error' goes only to listeners of its own.
                for future in self._awaiting:
                    if not future.done():
                        future.set_exception(failure)
                if not self._awaiting or self.listener_count("error"):
                    self.emit("error", failure)
            else:
                self.emit("exit", self.exit_code, self.signal_code)
        finally:
            # Even when an unheard 'error' propagates, the child's state
            # stays whole: its streams drain and 'close' still comes.
            self._reactor.call_soon(self._flush_stdio)
            # Streams of other children we ran with are theirs again, now
            # that our 'exit' listeners have run (Node's reuse-readable-stdio).
            if self._borrowed:
                borrowed, self._borrowed = self._borrowed, []
                for stream in borrowed:
                    stream._lend_ended()
            self._maybe_close()

    def _process_ended(self) -> bool:
        """Whether the child has ended, even if its exit is not delivered yet
        (a lent stdout is then drained, not closed).  The pid is still ours
        to ask about: only the exit watcher reaps it."""
        if self._exited or self._watch is None or self.pid is None:
            return True
        waitid = getattr(os, "waitid", None)
        if waitid is None:
            return False  # (macOS before 3.13) the exit will say so
        try:
            return waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _close_stdio(self) -> None:
        for stream in self.stdio or ():
            # A stream whose fd is closed already holds data kept for a
            # reader (the drain after exit): nothing holds a pipe there.
            if (
                isinstance(stream, Readable)
                and not stream.destroyed
                and not stream._borrowers
                and stream.fileno() >= 0
            ):
                stream.destroy()

    def _flush_stdio(self) -> None:
        """Node's ``flushStdio``, on the tick after ``'exit'``: every readable
        output stream drains to EOF so that ``'close'`` can come.

        Where Node calls ``resume()`` (data nobody listens to is lost) this
        calls ``Readable._drain_after_exit``: a stream being consumed is
        resumed as in Node, one nobody consumes keeps its data (up to a cap)
        for a later ``read()``/iteration/listener.  Such a stream closes its
        fd at EOF and is counted for our ``'close'`` then (its own
        ``'end'``/``'close'`` wait until the kept data is consumed), so
        ``'close'`` never waits for a reader.
        """
        for stream in self.stdio or ():
            if isinstance(stream, Readable) and stream.readable:
                if stream._borrowers:
                    # Another child still reads this pipe: drain once it is done.
                    stream._after_lend = _drain_later(stream, self._maybe_close)
                else:
                    stream._drain_after_exit(self._maybe_close)

    def _maybe_close(self, *_: Any) -> None:
        self._closes_got += 1
        if self._closes_got == self._closes_needed:
            self._closed = True
            if not self._awaiting:
                self.emit("close", self.exit_code, self.signal_code)
                return
            try:
                self.emit("close", self.exit_code, self.signal_code)
            finally:
                # `await child` returns the exit code (its coroutine resumes on
                # a later turn), also when a 'close' listener raised.
                for future in self._awaiting:
                    if not future.done():
                        future.set_result(self.exit_code)

    # -- the IPC channel (send, disconnect, connected, channel: IPCTarget) --

    _no_channel = "this child has no IPC channel: start it with fork() or an 'ipc' stdio slot"

    def _ipc_for_call(self) -> IPC | None:
        return self._ipc

    # -- control -----------------------------------------------------------

    def kill(self, sig: str | int | _signal.Signals = "SIGTERM") -> bool:
        """Send ``sig`` (a name, a number or a ``signal.Signals``; 0 tests).

        Node's rules: True when the signal was delivered (also to an exited
        but unreaped child), which sets ``killed``; False once the exit has
        been processed or the child is reaped (its pid means nothing then:
        see ``_runtime/lifecycle.py``); unknown signals raise ``ValueError``
        (ERR_UNKNOWN_SIGNAL) even then.  With ``kill_tree=True`` the whole
        process group is signalled.
        """
        signum = 0 if sig == 0 else signal_number(sig, "signal")
        try:
            return self._life.kill(signum)
        except OSError as exc:
            err = spawn_error(exc.errno or _errno.EPERM, "kill")
            if exc.errno in (_errno.EINVAL, _errno.ENOSYS):
                raise err from None
            self.emit("error", err)
            return False

    def ref(self) -> None:
        """Keep the owning loop (and the interpreter at exit) alive until
        the child exits; the default."""
        if not self._refed and self._watch is not None:
            self._refed = True
            self._reactor.ref()

    def unref(self) -> None:
        """Let the loop (and the interpreter) finish without waiting for
        this child; its stdio streams keep their own refs."""
        if self._refed:
            self._refed = False
            self._reactor.unref()

    # -- Python additions --------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """:mod:`subprocess`'s view of the outcome: the exit code, or minus the
        number of the signal that ended the child (``-9`` for SIGKILL); None
        while it runs.  A child whose spawn failed has Node's ``-errno``
        (``exit_code``), which is never 0 either."""
        if self.signal_code is not None:
            number = getattr(_signal, self.signal_code, None)
            return -number if isinstance(number, int) else self.exit_code
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until ``'close'`` (the exit, and every output stream
        drained); events run meanwhile, on this thread.

        Returns ``exit_code``, Node's field: the exit status, or **None
        when a signal ended the child** (``signal_code`` then names it), or
        ``-errno`` when the spawn failed.  Use ``returncode`` afterwards
        for :mod:`subprocess`'s convention (minus the signal number), e.g.
        ``sys.exit(child.returncode)``.  Raises the builtin ``TimeoutError``
        after ``timeout`` seconds, leaving the child running."""
        if not self._reactor.run_until(lambda: self._closed, timeout):
            raise TimeoutError(f"child {self.pid} {self._not_closed()} after {timeout} s")
        return self.exit_code

    def _not_closed(self) -> str:
        if not self._exited:
            return "still running"
        return "exited, but its output is still open (held by a process it started?)"

    def __await__(self) -> Generator[Any, None, int | None]:
        """``await child``: the exit code once ``'close'`` came.  A runtime
        spawn failure is raised here (and counts as handled).  Cancelling
        the awaiting task kills the child (``kill_signal``, then
        ``force_kill_after``; the group with ``kill_tree``); to wait without
        that, await ``asyncio.shield(child)``."""
        if self._failure is not None:
            raise self._failure
        if self._closed:
            return self.exit_code
        future = running_asyncio_loop("a child").create_future()
        if self._reactor.thread_id == threading.get_ident() and self._reactor.asyncio_loop is None:
            raise RuntimeError(
                "this child was spawned outside the running asyncio loop; spawn it inside a "
                "coroutine to await it, or call child.wait()"
            )
        # Resolved by _maybe_close once 'close' has been emitted (or by
        # _on_exit with a spawn failure): no listener, closure or import per await.
        self._awaiting.append(future)
        try:
            return (yield from future.__await__())
        except BaseException as exc:
            import asyncio  # loaded: a loop is running

            if isinstance(exc, asyncio.CancelledError):
                self._cancel()
            raise
        finally:
            self._awaiting.remove(future)

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        """Node's ``Symbol.dispose``: kill the child unless it was killed
        already; then wait for it, so leaving the block leaves no process
        behind.  On a thread without asyncio that is ``wait()`` (up to
        ``'close'``).  Inside a coroutine the running loop cannot turn while
        this blocks, so the child is reaped here and ``'exit'`` delivered at
        once; its streams close, and ``'close'`` comes, when the loop turns
        again (``async with`` waits for ``'close'`` too)."""
        if not self._exited and not self.killed:
            self.kill()
        if self._reactor.thread_id != threading.get_ident():
            return  # another thread's child: its loop delivers the exit
        if self._reactor.asyncio_loop is None:
            self.wait()
        elif self._watch is not None:
            self._watch.wait_now()

    async def __aenter__(self) -> ChildProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        """``async with cp.spawn(...)``: kill the child unless it was killed
        already (Node's ``Symbol.asyncDispose``), then wait for ``'close'``
        without blocking the running loop."""
        if not self._exited and not self.killed:
            self.kill()
        if self._closed or self._reactor.thread_id != threading.get_ident():
            return
        if self._reactor.asyncio_loop is None:
            self.wait()  # spawned outside the running loop: its own loop delivers it
            return
        future = running_asyncio_loop("a child").create_future()

        def closed(*_: Any) -> None:
            if not future.done():
                future.set_result(None)

        self.once("close", closed)
        await future

    def __repr__(self) -> str:
        if self._spawn_failure is not None:
            state = f"spawn failed: {self._spawn_failure}"
        elif self.pid is None:
            state = "not started"
        elif not self._exited:
            state = "running"
        elif self.signal_code is not None:
            state = f"signal={self.signal_code}"
        else:
            state = f"exit_code={self.exit_code}"
        return f"<{type(self).__name__} pid={self.pid} {display(self.spawnfile or '')!r} {state}>"


def _drain_later(stream: Readable, on_fd_closed: Callable[..., Any]) -> Callable[[], None]:
    def drain() -> None:
        stream._drain_after_exit(on_fd_closed)

    return drain


def _dead_pipe_ends(plan: SpawnPlan) -> list[int]:
    """Parent-side ends for a child that never started: Node still creates
    its stdio sockets (they end at once), so the same streams exist here."""
    fds: list[int] = []
    for i, slot in enumerate(plan.stdio):
        if slot.kind == "ipc":
            ours, theirs = socket.socketpair()  # close-on-exec (PEP 446)
            theirs.close()  # the channel sees EOF and closes
            fds.append(ours.detach())
            continue
        if slot.kind != "pipe":
            fds.append(-1)
            continue
        r, w = pipe_cloexec()
        if i == 0:
            os.close(r)  # nobody will ever read what is written
            fds.append(w)
        else:
            os.close(w)  # immediate EOF
            fds.append(r)
    return fds
