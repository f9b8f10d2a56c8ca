"""The loop model: when and where childproc's callbacks run.

A child, its streams and its channel belong to the thread that created
them, and every event they emit runs on that thread, one callback at a time:

* If that thread is running an asyncio event loop, the events are delivered
  on that loop (:class:`AsyncioReactor` registers the fds with it; on
  Linux it watches them in one epoll of its own, an fd asyncio polls), so
  childproc mixes with asyncio code and ``await`` just works.
* Otherwise the thread gets a private loop (:class:`PrivateLoop`).  It runs
  only while the thread blocks on childproc -- ``child.wait()``, iterating a
  stream, ``cp.run()`` -- and, for the main thread, at interpreter exit, where
  it runs until no ref'd child, stream or channel remains, the way Node keeps
  its process alive.  ``unref()`` opts a handle out.

Either way a listener attached right after ``spawn()`` returns never misses an
event: nothing is delivered before the creating code yields to the loop.

Both reactors offer the same small interface (:class:`Reactor`): fd readiness
callbacks, ``call_soon`` (libuv's next turn), ``next_tick`` (Node's
``process.nextTick``), ``call_closing`` (libuv's close phase), timers, a
thread-safe wake-up, and the ref count.  Child exits are fd readiness too (a
pidfd), so no SIGCHLD handler and no ``waitpid(-1)`` is ever involved.  The
private loop follows libuv's order where Node's events depend on it: new fds
are registered at the next wait in the order added, the fds one wait returns
are served in epoll's order, then what they closed, the last first.
"""

from __future__ import annotations

import _thread
import atexit
import os
import sys

from .forksafe import on_fork_in_child
from .lifecycle import at_interpreter_exit
from .private import PrivateLoop
from .reactor import Reactor, TimerHandle

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import weakref

    from .aio import AsyncioReactor

__all__ = ["PrivateLoop", "Reactor", "TimerHandle", "current_reactor", "private_loop", "run", "running_asyncio_loop"]


if sys.platform == "win32":
    # Windows pipes have completions, not readiness: the same loop on an I/O
    # completion port.
    from .iocp import IocpLoop as _PrivateLoop
else:
    _PrivateLoop = PrivateLoop

_local = _thread._local()
_asyncio_reactors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncioReactor] | None = None
_main_loop: PrivateLoop | None = None


def _on_main_thread() -> bool:
    threading = sys.modules.get("threading")
    if threading is None:
        # Nothing has imported threading, so no thread was started through
        # it: this is the main thread.
        return True
    return bool(threading.current_thread() is threading.main_thread())


class _ThreadExit:
    """Lives in a thread's local storage beside its loop; Python drops it
    when the thread ends.  Children that thread started and never waited
    for would stay zombies (nobody drives that loop again), so they are
    handed to one reaper thread that waits on their pidfds; then the loop's
    own fds (poller, wake-up pipe) are closed, or every thread that ever
    used the async API would leave them behind."""

    __slots__ = ("loop",)

    def __init__(self, loop: PrivateLoop) -> None:
        self.loop = loop

    def __del__(self) -> None:
        if self.loop._pid != os.getpid():
            return  # a forked copy dropping another thread's state: not its children
        watches = list(self.loop.exit_watches)
        self.loop.exit_watches.clear()
        for watch in watches:
            watch.hand_to_reaper()
        self.loop.close()


def private_loop() -> PrivateLoop:
    """This thread's private loop, created on first use."""
    loop: PrivateLoop | None = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = _PrivateLoop()
        if _on_main_thread():
            global _main_loop
            _main_loop = loop
        else:
            _local.exit_guard = _ThreadExit(loop)
    return loop


def running_asyncio_loop(what: str) -> asyncio.AbstractEventLoop:
    """The running asyncio loop, for awaiting ``what``; or a RuntimeError that
    says async support is asyncio's (under trio, say so by name).

    Why not trio/anyio's trio backend too: events are delivered by a reactor
    on the thread's loop, and trio's loop exposes no fd callbacks to build
    one on (only tasks awaiting readiness); a second loop driven from trio
    would block it.  anyio on its asyncio backend works as asyncio does."""
    import asyncio

    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    trio = sys.modules.get("trio")
    under_trio = False
    if trio is not None:
        try:
            trio.lowlevel.current_task()
            under_trio = True
        except RuntimeError:
            pass
    where = "under trio (or anyio's trio backend)" if under_trio else "outside a running asyncio loop"
    raise RuntimeError(
        f"cannot await {what} {where}: childproc's async support is asyncio's (asyncio.run, or anyio "
        "on its asyncio backend). Elsewhere use the blocking forms in a worker thread, e.g. "
        "await trio.to_thread.run_sync(lambda: cp.exec(...).result()), or the _sync functions."
    )


def current_reactor() -> Reactor:
    """The reactor a child created now belongs to (see the module doc)."""
    # No asyncio loop can be running unless asyncio was imported, and
    # importing it costs ~20 ms that a forked child need not pay.
    asyncio = sys.modules.get("asyncio")
    aloop = asyncio._get_running_loop() if asyncio is not None else None
    if aloop is None:
        return private_loop()
    global _asyncio_reactors
    if _asyncio_reactors is None:
        import weakref

        _asyncio_reactors = weakref.WeakKeyDictionary()
    reactor = _asyncio_reactors.get(aloop)
    if reactor is None:
        if sys.platform == "win32":
            if not hasattr(aloop, "_proactor"):
                # A selector loop selects sockets only on Windows: our pipes
                # would never be reported, and the await would hang.
                raise RuntimeError(
                    "childproc on Windows needs asyncio's ProactorEventLoop (the default event loop "
                    "there); this loop is a selector loop, which cannot watch pipes"
                )
            # ProactorEventLoop: completions, not readiness.
            from .proactor import ProactorReactor

            reactor = _asyncio_reactors[aloop] = ProactorReactor(aloop)
        else:
            from .aio import asyncio_reactor  # asyncio users only: a forked child never needs it

            reactor = _asyncio_reactors[aloop] = asyncio_reactor(aloop)
    return reactor


def run() -> None:
    """Run this thread's private loop until no ref'd child, stream or
    channel remains (what Node does before its process exits)."""
    private_loop().run_while_referenced()


def _forget_loops() -> None:
    # A forked copy starts afresh: its threads get new loops on first use
    # (the old ones are retired, see PrivateLoop._forget_after_fork).
    global _local, _main_loop, _asyncio_reactors
    _local = _thread._local()
    _main_loop = None
    _asyncio_reactors = None


on_fork_in_child(_forget_loops)


@atexit.register
def _run_main_loop_at_exit() -> None:
    # Node keeps its process alive while ref'd handles remain; so does the
    # main thread's private loop, at interpreter exit -- unless the program
    # ended by an uncaught exception: the lifecycle policy decides.
    at_interpreter_exit(_main_loop, _run_main_loop_at_exit)
