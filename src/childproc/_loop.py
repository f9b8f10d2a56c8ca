"""The loop model: when and where childproc's callbacks run (DESIGN.md §3).

A child, its streams and its channel belong to the thread that created
them, and every event they emit runs on that thread, one callback at a time:

* If that thread is running an asyncio event loop, the events are delivered
  on that loop (:class:`AsyncioReactor` registers the fds with it), so
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
import itertools
import os
import select
import sys
import time
from _heapq import heappop, heappush
from errno import EBADF as _EBADF

try:
    from _collections import deque
except ImportError:  # pragma: no cover - other Pythons
    from collections import deque

# The C modules above instead of threading, heapq, collections, weakref:
# a forked child imports this module before it can say hello, and those
# cost it milliseconds.

from ._forksafe import on_fork_in_child, replace_with_null, track

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import weakref
    from collections.abc import Callable
    from typing import Any

    Callback = Callable[..., object]

# Readiness masks: epoll's where there is epoll (Linux), poll's elsewhere.
_Poller: Any  # select.epoll, select.poll, or None (Windows)
if hasattr(select, "epoll"):
    _Poller = select.epoll
    _READ, _WRITE = select.EPOLLIN, select.EPOLLOUT
    _HUP = select.EPOLLHUP | select.EPOLLERR
elif hasattr(select, "poll"):  # macOS, the BSDs
    _Poller = select.poll
    _READ, _WRITE = select.POLLIN, select.POLLOUT
    _HUP = select.POLLHUP | select.POLLERR
else:  # Windows: pipes are not pollable there; its loop (IOCP) is still to come
    _Poller = None
    _READ, _WRITE, _HUP = 1, 4, 8

__all__ = ["Reactor", "PrivateLoop", "AsyncioReactor", "TimerHandle", "current_reactor", "run"]


class TimerHandle:
    """A scheduled call; ``cancel()`` stops it if it has not run yet."""

    __slots__ = ("when", "callback", "args", "cancelled", "_inner")

    def __init__(self, when: float, callback: Callback, args: tuple[Any, ...]) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._inner: Any = None  # asyncio's own handle, when there is one

    def cancel(self) -> None:
        self.cancelled = True
        if self._inner is not None:
            self._inner.cancel()


class Reactor:
    """What childproc needs from a loop.  Two implementations below."""

    thread_id: int | None  # None: retired in a forked copy (see _forksafe)
    # Counts the loop's turns (one per wait for events), so that a caller can
    # tell "earlier in this turn" from "in an earlier turn"; None where the
    # loop does not say (asyncio).
    tick: int | None = None
    # The fds the last wait for events found hung up (every writer gone);
    # None where the loop does not say (asyncio).  A reader whose read came
    # back short on one reads on to its EOF at once, as libuv does on
    # POLLHUP (where the loop does not say, it tries one more read).
    hangups: set[int] | None = None

    def add_reader(self, fd: int, callback: Callback) -> None:
        raise NotImplementedError

    def remove_reader(self, fd: int) -> None:
        raise NotImplementedError

    def add_writer(self, fd: int, callback: Callback) -> None:
        raise NotImplementedError

    def remove_writer(self, fd: int) -> None:
        raise NotImplementedError

    def call_soon(self, callback: Callback, *args: Any) -> None:
        raise NotImplementedError

    def next_tick(self, callback: Callback, *args: Any) -> None:
        """Node's ``process.nextTick``: run ``callback`` as soon as the
        callback running now returns, ahead of everything already queued
        (an fd that turned ready in the same turn, a call_soon)."""
        raise NotImplementedError

    def call_closing(self, callback: Callback, *args: Any) -> None:
        """Run ``callback`` for a handle closed now: in libuv's close phase,
        after the other callbacks of this turn, the last closed first (how
        Node orders two streams' ``'close'`` events); ``call_soon`` where
        the loop has no such phase (asyncio)."""
        self.call_soon(callback, *args)

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        raise NotImplementedError

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        raise NotImplementedError

    def nothing_queued(self) -> bool:
        """True when no callback waits to run: then running one now, from
        the callback that is running, keeps the order call_soon would give
        (and saves a round through the queue).  False when unknown."""
        return False

    def ref(self) -> None:
        """A handle that keeps the loop (and, for the main thread, the
        interpreter at exit) alive has started."""

    def unref(self) -> None:
        """Such a handle has ended or was unref()'d."""

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        """Run callbacks until ``done()`` is true; False on timeout."""
        raise NotImplementedError


class PrivateLoop(Reactor):
    """A per-thread loop on epoll (Linux) or poll(2), used directly: the
    ``selectors`` layer costs more per wake-up than the syscall itself.

    It runs only inside :meth:`run_until`.  An exception raised by a callback
    (for example an ``'error'`` event nobody listens to) propagates out of
    ``run_until``, so it surfaces from the call that drove the loop -- never
    silently; callbacks still queued run on the next drive.
    """

    def __init__(self) -> None:
        if _Poller is None:
            raise NotImplementedError(
                "childproc's async API (spawn, exec, fork) has no Windows loop yet; "
                "the sync forms (spawn_sync, exec_sync, exec_file_sync) work there"
            )
        self.thread_id: int | None = _thread.get_ident()
        self._pid = os.getpid()
        self._poller = _Poller()
        self._callbacks: dict[int, list[Callback | None]] = {}  # fd -> [reader, writer]
        self._unregistered: dict[int, None] = {}  # fds in _callbacks not yet given to the poller, in order
        self._ready: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._ticks: deque[tuple[Callback, tuple[Any, ...]]] = deque()  # next_tick's, run first
        self._closing: list[tuple[Callback, tuple[Any, ...]]] = []  # call_closing's, run last
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._refs = 0
        self._lock = _thread.allocate_lock()
        self._threadsafe: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._awaited_wakeups = 0  # threads that will call call_soon_threadsafe
        self.hangups = set()
        self.exit_watches: set[Any] = set()  # children still running, for _ThreadExit
        # Wake-up pipe for other threads (exit waiters without a pidfd, C
        # pumps finishing).  Close-on-exec and non-blocking from birth.
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK) if hasattr(os, "pipe2") else _pipe_cloexec()
        self._poller.register(self._wake_r, _READ)
        self._callbacks[self._wake_r] = [self._drain_wakeups, None]
        track(self)

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see _forksafe): the epoll instance is the
        # parent's own (fork copies the fd, not the instance), so it is let
        # go before anything here can touch it, and the loop is retired.
        self.thread_id = None
        self.exit_watches.clear()
        self._ready.clear()
        self._ticks.clear()
        self._closing.clear()
        self._unregistered.clear()
        self._timers.clear()
        self._threadsafe.clear()
        for fd in (self._poller.fileno(), self._wake_r, self._wake_w):
            replace_with_null(fd, null_fd)

    def _not_the_owner(self) -> RuntimeError:
        """What driving this loop from the wrong thread, or process, raises."""
        if self.thread_id is None:
            return RuntimeError(
                "this childproc loop belongs to the process this one was forked from "
                "(os.fork(), multiprocessing's 'fork'): its children and streams are not "
                "this process's to wait for"
            )
        return RuntimeError("a childproc loop can only be driven by the thread that owns it")

    # -- fds ---------------------------------------------------------------

    def _update(self, fd: int, slot: int, callback: Callback | None) -> None:
        entry = self._callbacks.get(fd)
        if entry is None:
            if callback is None:
                return
            entry = [None, None]
            entry[slot] = callback
            self._callbacks[fd] = entry
            # Registered at the next wait, in the order added (libuv's watcher
            # queue): fds that are all ready by then (a child that wrote,
            # exited and closed its pipes while this thread was busy) are
            # reported in that order -- stdout, stderr, then the exit -- as
            # Node's are.  Removals stay immediate (see below).
            self._unregistered[fd] = None
            return
        entry[slot] = callback
        mask = (_READ if entry[0] else 0) | (_WRITE if entry[1] else 0)
        if fd in self._unregistered:
            if not mask:
                del self._callbacks[fd]
                del self._unregistered[fd]
            return
        if mask:
            self._poller.modify(fd, mask)
        else:
            # At once, before the owner closes the fd: a registration
            # outlives the close while another process holds the same file
            # (a pipe handed to a child) and would go on reporting it.
            del self._callbacks[fd]
            try:
                self._poller.unregister(fd)
            except (OSError, ValueError, KeyError):
                pass  # closed already: the kernel dropped it from epoll

    def _register_added(self) -> None:
        callbacks, poller = self._callbacks, self._poller
        added, self._unregistered = self._unregistered, {}
        failed: OSError | None = None
        for fd in added:
            entry = callbacks[fd]
            try:
                poller.register(fd, (_READ if entry[0] else 0) | (_WRITE if entry[1] else 0))
            except OSError as exc:
                del callbacks[fd]
                if exc.errno != _EBADF:  # EBADF: closed before the wait, nothing to watch
                    failed = failed or exc  # not pollable: its owner hears of it here
        if failed is not None:
            raise failed

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._update(fd, 0, callback)

    def remove_reader(self, fd: int) -> None:
        self._update(fd, 0, None)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._update(fd, 1, callback)

    def remove_writer(self, fd: int) -> None:
        self._update(fd, 1, None)

    # -- calls -------------------------------------------------------------

    def call_soon(self, callback: Callback, *args: Any) -> None:
        self._ready.append((callback, args))

    def next_tick(self, callback: Callback, *args: Any) -> None:
        self._ticks.append((callback, args))

    def call_closing(self, callback: Callback, *args: Any) -> None:
        self._closing.append((callback, args))

    def nothing_queued(self) -> bool:
        return not self._ready and not self._ticks and not self._closing

    tick: int = 0
    hangups: set[int]

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        with self._lock:
            self._threadsafe.append((callback, args))
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            self._ready.extend(self._threadsafe)
            self._threadsafe.clear()

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback, args)
        heappush(self._timers, (handle.when, next(self._seq), handle))
        return handle

    def expect_wakeup(self) -> None:
        """Another thread will call :meth:`call_soon_threadsafe` later (an
        exit waiter where there is no pidfd); blocking is then not hopeless."""
        self._awaited_wakeups += 1

    def wakeup_arrived(self) -> None:
        self._awaited_wakeups -= 1

    def ref(self) -> None:
        self._refs += 1

    def unref(self) -> None:
        self._refs -= 1

    @property
    def refs(self) -> int:
        return self._refs

    def has_work(self) -> bool:
        """Ref'd handles remain, or callbacks are queued (which may ref more)."""
        return self._refs > 0 or bool(self._ready) or bool(self._ticks) or bool(self._closing)

    # -- running -----------------------------------------------------------

    def _run_ready(self, done: Callable[[], bool]) -> bool:
        ready, ticks, closing = self._ready, self._ticks, self._closing
        while ready or ticks or closing:
            if not (ready or ticks):
                # libuv's close phase, once the rest has run: what closed
                # meanwhile, the last closed first.
                ready.extend(reversed(closing))
                closing.clear()
            # next_tick's callbacks first: Node runs its nextTick queue
            # after every callback, before anything else that waits.
            callback, args = (ticks or ready).popleft()
            callback(*args)
            if done():
                while ticks:  # still part of the callback that finished the wait
                    callback, args = ticks.popleft()
                    callback(*args)
                return True
        return done()

    def _next_timeout(self, deadline: float | None) -> float | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heappop(timers)
        if not timers and deadline is None:
            return None  # block; no clock read needed
        wait: float | None = None
        now = time.monotonic()
        if timers:
            wait = max(0.0, timers[0][0] - now)
        if deadline is not None:
            left = max(0.0, deadline - now)
            wait = left if wait is None else min(wait, left)
        return wait

    def _run_timers(self) -> None:
        timers = self._timers
        if not timers:
            return
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, handle = heappop(timers)
            if not handle.cancelled:
                self._ready.append((handle.callback, handle.args))

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        if _thread.get_ident() != self.thread_id:
            raise self._not_the_owner()
        deadline = None if timeout is None else time.monotonic() + timeout
        callbacks = self._callbacks
        while True:
            if self._run_ready(done):
                return True
            wait = self._next_timeout(deadline) if self._timers or deadline is not None else None
            if (
                wait is None
                and len(callbacks) == 1  # only the wake-up pipe
                and not self._timers
                and self._awaited_wakeups == 0
                and not self._threadsafe
            ):
                # Nothing could ever make progress: no fd, no timer, no
                # thread that owes us a wake-up.
                raise RuntimeError("childproc: waiting for an event that can never come")
            if self._unregistered:
                self._register_added()
            try:
                # epoll takes seconds (-1: forever), poll milliseconds.
                if _Poller is select.poll:
                    events = self._poller.poll(None if wait is None else wait * 1000.0)
                else:
                    events = self._poller.poll(-1 if wait is None else wait)
            except InterruptedError:
                events = []
            self.tick += 1
            ready, hangups = self._ready, self.hangups
            if hangups:
                hangups.clear()
            for fd, mask in events:
                entry = callbacks.get(fd)
                if entry is None:
                    continue
                # A hang-up or error wakes whoever waits on the fd; their
                # read or write then reports it.
                if mask & (_READ | _HUP) and entry[0] is not None:
                    ready.append((entry[0], ()))
                    if mask & _HUP:
                        hangups.add(fd)
                if mask & (_WRITE | _HUP) and entry[1] is not None:
                    ready.append((entry[1], ()))
            if self._timers:
                self._run_timers()
            if deadline is not None and time.monotonic() >= deadline and self.nothing_queued():
                return done()

    def close(self) -> None:
        """Release the loop's own fds (its poller and wake-up pipe)."""
        self._poller.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def run_while_referenced(self) -> None:
        """Node's keep-alive: run until no ref'd handle remains."""
        self.run_until(lambda: self._refs <= 0 and self.nothing_queued())


def _pipe_cloexec() -> tuple[int, int]:
    r, w = os.pipe()  # Python makes both non-inheritable (PEP 446)
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


class AsyncioReactor(Reactor):
    """Delivers events on a running asyncio loop (uvloop works too).

    asyncio has no queue that runs between two callbacks, so next_tick's
    is ours: every callback childproc gives the loop goes through
    :meth:`_run`, which runs the ticks it queued before returning.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread_id = _thread.get_ident()
        self._ticks: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._closing: list[tuple[Callback, tuple[Any, ...]]] = []
        self._adding: dict[tuple[int, int], Callback] = {}  # (fd, 0 read / 1 write) -> callback

    def _run(self, callback: Callback, args: tuple[Any, ...]) -> None:
        callback(*args)
        if self._ticks:
            self._run_ticks()

    def _run_ticks(self) -> None:
        # Also called on its own (next_tick schedules it), for ticks queued
        # outside our callbacks (user code in a coroutine) or left behind by
        # a callback that raised.
        ticks = self._ticks
        while ticks:
            callback, args = ticks.popleft()
            callback(*args)

    # New fds go to asyncio in one callback of the next turn, in the order
    # added, as the private loop gives them to epoll at its next wait (see
    # PrivateLoop._update): fds that are all ready by then come back in
    # that order, as Node's do.
    def _add(self, fd: int, slot: int, callback: Callback) -> None:
        if not self._adding:
            self.loop.call_soon(self._register_added)
        self._adding[(fd, slot)] = callback

    def _register_added(self) -> None:
        adding, self._adding = self._adding, {}
        failed: OSError | None = None
        for (fd, slot), callback in adding.items():
            try:
                (self.loop.add_writer if slot else self.loop.add_reader)(fd, self._run, callback, ())
            except OSError as exc:
                if exc.errno != _EBADF:  # EBADF: closed meanwhile, nothing to watch
                    failed = failed or exc
        if failed is not None:
            raise failed

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._add(fd, 0, callback)

    def remove_reader(self, fd: int) -> None:
        self._adding.pop((fd, 0), None)
        self.loop.remove_reader(fd)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._add(fd, 1, callback)

    def remove_writer(self, fd: int) -> None:
        self._adding.pop((fd, 1), None)
        self.loop.remove_writer(fd)

    def call_soon(self, callback: Callback, *args: Any) -> None:
        self.loop.call_soon(self._run, callback, args)

    def next_tick(self, callback: Callback, *args: Any) -> None:
        if not self._ticks:
            self.loop.call_soon(self._run_ticks)
        self._ticks.append((callback, args))

    def call_closing(self, callback: Callback, *args: Any) -> None:
        # One asyncio callback for the handles closed in this turn: it runs
        # after the turn's other callbacks, and runs them the last first.
        if not self._closing:
            self.loop.call_soon(self._run, self._run_closing, ())
        self._closing.append((callback, args))

    def _run_closing(self) -> None:
        batch = self._closing[::-1]
        self._closing = []
        for i, (callback, args) in enumerate(batch):
            try:
                callback(*args)
            except BaseException:
                for rest in reversed(batch[i + 1 :]):  # not lost: queued again
                    self.call_closing(rest[0], *rest[1])
                raise
            if self._ticks:
                self._run_ticks()

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        self.loop.call_soon_threadsafe(self._run, callback, args)

    def call_later(self, delay: float, callback: Callback, *args: Any) -> TimerHandle:
        handle = TimerHandle(self.loop.time() + delay, callback, args)
        handle._inner = self.loop.call_later(delay, self._run, callback, args)
        return handle

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        if done():
            return True
        raise RuntimeError(
            "this child belongs to a running asyncio loop: blocking would stop it from "
            "delivering events; use 'await child' (or await the stream) instead"
        )


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
    handed to one reaper thread that waits on their pidfds."""

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


def private_loop() -> PrivateLoop:
    """This thread's private loop, created on first use."""
    loop: PrivateLoop | None = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = PrivateLoop()
        if _on_main_thread():
            global _main_loop
            _main_loop = loop
        else:
            _local.exit_guard = _ThreadExit(loop)
    return loop


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
        reactor = _asyncio_reactors[aloop] = AsyncioReactor(aloop)
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
    # main thread's private loop, at interpreter exit.
    loop = _main_loop
    if loop is not None and loop.has_work():
        loop.run_while_referenced()
