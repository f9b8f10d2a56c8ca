"""The lifecycle policy: how and when a child is signalled, and what the
interpreter does at exit (docs/architecture.md, "Lifecycle").

One :class:`Lifecycle` per child owns every reason to signal it -- ``kill()``,
``timeout``, an ``AbortSignal``, the cancellation of an asyncio task that
awaits it -- and what follows a signal: ``force_kill_after`` and, with
``kill_tree``, the process group.  The rules, in one place:

* A signal goes to a child only while it is unreaped: through its pidfd
  (``pidfd_send_signal``), or by pid where there is none (an unreaped pid
  cannot be reused).  Once reaped, a pid means nothing: sending returns
  False, whoever asks.
* ``kill_tree``: the child leads a process group whose id is its pid, and
  every signal goes to the group.  A group id is only safe while the leader
  is unreaped (a pid that names a zombie is never handed out again), so while
  the policy may still signal the group after the leader exited -- a pending
  ``timeout`` (the timeout belongs to the group) or ``force_kill_after`` --
  the leader is held as a zombie (``ExitWatch.hold``) and reaped when that is
  over.  ``'exit'`` is not delayed: its status is read without reaping.
* ``force_kill_after``: once ``kill_signal`` was sent, SIGKILL follows after
  that many seconds unless the child (with ``kill_tree``: the leader, then the
  group) is gone; the pending timer keeps the loop alive, as a ref'd timer in
  Node.

The signal primitive (:meth:`Lifecycle._deliver`) is the one place that knows
how a platform signals: a pidfd or an unreaped pid here; a process handle or
a job object is what a Windows policy puts there.

``die_with_parent`` for a shell command or with ``kill_tree`` (Linux): the
child leads its own process group and a warden (``_spawn/warden.py``) kills
that group when this process dies; the policy releases it with the child.

Interpreter exit (:func:`at_interpreter_exit`): a script that simply ends --
also through ``sys.exit()``, which is how ``sys.exit(main())`` ends a Python
program normally -- waits for its ref'd children, streams and channels, as
Node does.  An uncaught exception or a ``KeyboardInterrupt`` exits at once and
leaves the children running, as Node's uncaught throw does.  Ctrl-C during the
wait stops it and the process ends by SIGINT, never with status 0; a listener
that raises during the wait ends it as an uncaught exception would (status 1;
``sys.exit(n)``: n), after the at-exit handlers still to come.
"""

from __future__ import annotations

import _thread
import errno
import os
import sys

from .._spawn.warden import Warden, can_guard
from .reactor import Reactor, TimerHandle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
else:
    # The C module: signal.py imports enum and functools, which a forked
    # worker (every process with a loop imports this module) need not pay.
    import _signal
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .exitwatch import ExitWatch
    from .private import PrivateLoop

__all__ = ["Lifecycle", "at_interpreter_exit"]

_WINDOWS = sys.platform == "win32"
# Windows has no SIGKILL; its number (as libuv and Node use it) ends the child there too.
_SIGKILL: int = getattr(_signal, "SIGKILL", 9)


class Lifecycle:
    """One child's signalling and keep-alive policy (see the module doc).

    The owner (a ``ChildProcess``) gives the exit callback to
    :meth:`watch`, calls :meth:`exited` once it has processed the exit, and
    gets ``on_error(err)`` for a failure of a signal the policy sent on its
    own, ``on_group_signalled()`` when the group was signalled after the
    leader's exit (its descendants may hold pipes).
    """

    __slots__ = (
        "_reactor", "kill_signal", "kill_group", "force_kill_after", "_watch", "_pid",
        "_exited", "_force_timer", "_timeout_timer", "_abort_off", "on_error",
        "on_group_signalled", "on_signalled", "_timeout_outlives_exit", "_warden", "windows_signal",
        "job",
    )

    def __init__(self, reactor: Reactor, *, kill_signal: int, kill_group: bool,
                 force_kill_after: float | None) -> None:
        self._reactor = reactor
        self.kill_signal = kill_signal
        self.kill_group = kill_group
        self.force_kill_after = force_kill_after
        self._watch: ExitWatch | None = None  # set while the child is unreaped
        self._pid = 0
        self._exited = False  # the owner has processed the exit ('exit' or 'error')
        self._force_timer: TimerHandle | None = None
        self._timeout_timer: TimerHandle | None = None
        self._abort_off: Callable[[], None] | None = None
        self._timeout_outlives_exit = False
        self._warden: Warden | None = None
        #: Windows: the signal kill() ended the child with (libuv records it
        #: as the exit signal; the exit code is TerminateProcess's).
        self.windows_signal = 0
        #: Windows, kill_tree: the job object holding the child's tree (0:
        #: none).  Ours until released, so it can be signalled after the
        #: leader's exit without any pid involved.
        self.job = 0
        self.on_error: Callable[[BaseException], None] = _raise
        self.on_group_signalled: Callable[[], None] = _nothing
        self.on_signalled: Callable[[int], None] = _nothing_int

    # -- the child ---------------------------------------------------------

    def watch(self, pid: int, pidfd: int, on_status: Callable[[int], None]) -> ExitWatch:
        """Watch ``pid`` (just spawned); ``on_status(wait_status)`` on its exit."""
        self._pid = pid

        def status(wait_status: int) -> None:
            if self._watch is not None and self._watch.reaped:
                self._watch = None  # a pid means nothing from here on
            on_status(wait_status)

        watch = self._watch = _watch_exit()(self._reactor, pid, pidfd, status)
        if self.kill_group:  # (set before the watch; without it the leader is never held)
            watch.hold = self._hold_leader
        return watch

    def guard_group(self) -> None:
        """die_with_parent for a child that leads its group: a warden (see
        the module doc) kills the group if this process dies first."""
        if self._watch is not None and can_guard():
            self._warden = Warden(self._pid)

    def _hold_leader(self) -> bool:
        # Asked when the leader exits: keep it unreaped while the policy may
        # still signal its group.
        return self.kill_group and (self._timeout_timer is not None or self._force_timer is not None)

    def exited(self) -> None:
        """The owner processed the exit: user kill() is over (Node's rule);
        without a group to look after, so are the timers."""
        self._exited = True
        if self._abort_off is not None:
            self._abort_off()
            self._abort_off = None
        if not self._watch_held() and not (self.job and self._hold_leader()):
            if self._timeout_timer is not None or self._force_timer is not None:
                self._cancel_timers(keep_timeout=self._timeout_outlives_exit)
            self._release()

    def _watch_held(self) -> bool:
        return self._watch is not None and not self._watch.reaped

    # -- sending -----------------------------------------------------------

    def kill(self, signum: int) -> bool:
        """``kill()``: True when ``signum`` was delivered.  False once the
        exit was processed or the child is reaped; OSError for a refusal."""
        if self._exited:
            return False
        return self._send(signum)

    def _send(self, signum: int) -> bool:
        if not self._deliver(signum):
            return False
        self.on_signalled(signum)
        if (
            self.force_kill_after
            and signum == self.kill_signal
            and signum not in (0, _SIGKILL)
            and self._force_timer is None
        ):
            # The pending timer keeps the loop alive, as a ref'd timer in Node.
            self._reactor.ref()
            self._force_timer = self._reactor.call_later(self.force_kill_after, self._force_kill)
        return True

    def _deliver(self, signum: int) -> bool:
        """The signal primitive: True when sent; never to a reaped pid."""
        if self.job:
            return self._deliver_windows(self.job, signum, tree=True)
        watch = self._watch
        if watch is None or watch.reaped:
            self._watch = None
            return False
        try:
            if _WINDOWS:
                return self._deliver_windows(watch.pidfd, signum, tree=False)
            if self.kill_group:
                # The leader is unreaped (held if it exited), so its pid
                # still names our group and no other.
                os.killpg(self._pid, signum)
            elif watch.pidfd >= 0:
                _signal.pidfd_send_signal(watch.pidfd, signum)
            else:
                os.kill(self._pid, signum)  # unreaped: the pid is still ours
        except ProcessLookupError:
            return False
        return True

    def _deliver_windows(self, handle: int, signum: int, tree: bool) -> bool:
        """TerminateProcess through the process handle (libuv's rules: TERM,
        KILL, INT and QUIT end the child, 0 probes, others are ENOSYS), or
        TerminateJobObject on the child's job with ``tree``.  Both handles are
        ours until released, so neither can name another process."""
        # Imported here: this module is imported by every process with a
        # loop, a forked worker's channel too, which need not load the core.
        from .._spawn import native

        rc = native.kill_tree(handle, signum) if tree else native.kill_handle(handle, signum)
        if rc == -errno.ESRCH:
            return False
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc))
        if signum:
            self.windows_signal = signum
        return True

    def _policy_kill(self, signum: int) -> None:
        """A kill the policy decides (timeout, abort, cancellation, force):
        also after the leader's exit while it is held for its group."""
        if self._exited and not self._watch_held() and not self.job:
            return
        try:
            sent = self._send(signum)
        except OSError as err:
            self.on_error(err)
            return
        if sent and self._exited:
            self.on_group_signalled()

    def _force_kill(self) -> None:
        self._force_timer = None
        self._reactor.unref()
        self._policy_kill(_SIGKILL)
        self._maybe_release()

    # -- reasons to signal -------------------------------------------------

    def arm_timeout(self, seconds: float | None, on_expire: Callable[[], None] | None = None) -> None:
        """After ``seconds``, ``on_expire()`` (default: send ``kill_signal``).
        With ``kill_tree`` it outlives the leader: the group is killed.
        With an ``on_expire`` (exec's, which ends the output streams too)
        it outlives the exit anyway, until :meth:`cancel_timeout` (exec's
        'close'), as Node's execFile timer does."""
        if not seconds:
            return
        self._timeout_outlives_exit = on_expire is not None

        def expire() -> None:
            self._timeout_timer = None
            if on_expire is not None:
                on_expire()
            else:
                self._policy_kill(self.kill_signal)
            self._maybe_release()

        self._timeout_timer = self._reactor.call_later(seconds, expire)

    def cancel_timeout(self) -> None:
        """The timeout is no longer wanted (exec's outcome is settled)."""
        if self._timeout_timer is not None:
            self._timeout_timer.cancel()
            self._timeout_timer = None
            self._maybe_release()

    def expire_kill(self) -> None:
        """What an ``on_expire`` of :meth:`arm_timeout` calls to kill."""
        self._policy_kill(self.kill_signal)

    def arm_abort(self, signal: Any, on_abort: Callable[[Any], None]) -> None:
        """Node's ``signal`` option: ``on_abort(signal)`` on the owner's
        thread when it aborts before the exit (at once if it already has)."""
        if signal is None:
            return
        reactor, owner = self._reactor, self._reactor.thread_id

        def listener(*_: Any) -> None:
            if _thread.get_ident() == owner:
                on_abort(signal)
            else:
                reactor.call_soon_threadsafe(on_abort, signal)

        if signal.aborted:
            reactor.call_soon(on_abort, signal)
            return
        signal.add_event_listener("abort", listener, once=True)
        self._abort_off = lambda: signal.remove_event_listener("abort", listener)

    def cancel(self) -> None:
        """The task awaiting the child was cancelled: kill it (``kill_signal``,
        then ``force_kill_after``; the group with ``kill_tree``)."""
        if not self._exited:
            self._policy_kill(self.kill_signal)

    # -- letting go --------------------------------------------------------

    def _cancel_timers(self, keep_timeout: bool = False) -> None:
        if self._timeout_timer is not None and not keep_timeout:
            self._timeout_timer.cancel()
            self._timeout_timer = None
        if self._force_timer is not None:
            self._force_timer.cancel()
            self._force_timer = None
            self._reactor.unref()

    def _maybe_release(self) -> None:
        if self._exited and self._timeout_timer is None and self._force_timer is None:
            self._release()

    def _release(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.release()
        warden, self._warden = self._warden, None
        if warden is not None:
            _reap_later(warden.release())
        job, self.job = self.job, 0
        if job:
            from .._spawn import native  # Windows only (see _deliver_windows)

            native.close_handle(job)


def _reap_later(pid: int) -> None:
    """A released warden ends in a moment: the reaper thread reaps it."""
    if not pid:
        return
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        pidfd = -1
    from .exitwatch.reaper import orphan_reaper  # (see Lifecycle.watch)

    orphan_reaper().adopt(pid, pidfd)


def _raise(err: BaseException) -> None:
    raise err


def _nothing() -> None:
    pass


def _nothing_int(_signum: int) -> None:
    pass


# -- interpreter exit ------------------------------------------------------

def _ended_by_exception() -> bool:
    """True when the main module ended by an uncaught exception (Python
    records it in ``sys.last_exc``/``last_value`` before the at-exit
    handlers run; ``SystemExit`` is not recorded: a normal ending)."""
    return getattr(sys, "last_exc", None) is not None or getattr(sys, "last_value", None) is not None


def at_interpreter_exit(loop: PrivateLoop | None, handler: Callable[[], None]) -> None:
    """The main thread's keep-alive at interpreter exit (see the module doc);
    ``handler`` is the at-exit function that called it."""
    if loop is None or not loop.has_work() or _ended_by_exception():
        return
    try:
        loop.run_while_referenced()
    except KeyboardInterrupt:
        # Raised in an at-exit handler it would be printed and ignored, and
        # the process would end with status 0.  End as Python does for an
        # uncaught KeyboardInterrupt: by SIGINT, after flushing what we can.
        _flush_std()
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGINT)
        os._exit(130)  # SIGINT blocked: the shell's status for it
    except BaseException as exc:  # noqa: BLE001 - every ending is handled below
        _exit_as_uncaught(exc, handler)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


def _exit_as_uncaught(exc: BaseException, handler: Callable[[], None]) -> None:
    """A listener raised while the process waited at exit: end as if that had
    left the main module -- Node's uncaught throw exits 1 after printing it,
    its ``process.exit(n)`` (here ``sys.exit(n)``) exits n.  Python prints what
    an at-exit handler raises and ignores it (status 0), so the status is set
    by ``os._exit`` once the at-exit handlers still to come have run."""
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or isinstance(code, int):
            status = code or 0
        else:  # sys.exit('message'): printed, status 1, as Python does
            print(code, file=sys.stderr)
            status = 1
    else:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        status = 1
    del exc
    import atexit

    atexit.unregister(handler)
    run_rest = getattr(atexit, "_run_exitfuncs", None)
    if run_rest is not None:
        run_rest()  # the handlers registered before this one (it runs LIFO)
    _flush_std()
    os._exit(status & 0xFF)


_watch_exit_fn: Callable[[Reactor, int, int, Callable[[int], None]], ExitWatch] | None = None


def _watch_exit() -> Callable[[Reactor, int, int, Callable[[int], None]], ExitWatch]:
    """``exitwatch.watch_exit``, imported on the first spawn and kept: the
    at-exit policy here is imported by every process that uses a loop, a
    forked worker's channel too, and that must not cost it the exit watchers
    (threading, collections); an import statement per spawn would cost the
    import machinery each time."""
    global _watch_exit_fn
    if _watch_exit_fn is None:
        from .exitwatch import watch_exit

        _watch_exit_fn = watch_exit
    return _watch_exit_fn
