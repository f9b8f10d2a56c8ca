"""A thread's private loop: the reactor for code that runs outside asyncio
(docs/architecture.md, "The loop").

It runs only while its thread blocks on childproc (``wait()``, iterating a
stream, ``cp.run()``) and, for the main thread, at interpreter exit.  It
follows libuv's order where Node's events depend on it: new fds are registered
at the next wait in the order added, the fds one wait returns are served in the
poller's order, then what they closed, the last first.
"""

from __future__ import annotations

import _thread
import itertools
import os
import select
import time
from _heapq import heappop, heappush

try:
    from _collections import deque
except ImportError:  # pragma: no cover - other Pythons
    from collections import deque

# The C modules above instead of threading, heapq, collections: a forked
# child imports this module before it can say hello, and those cost it
# milliseconds.

from .._spinning import MISSES, REST, REST_MAX, spin_setting
from .._spinning import spin_allowed as _spin_allowed  # (a name tests replace)
from .fdtable import FdTable
from .forksafe import replace_with_null, track
from .poller import HUP, NVAL, READ, WRITE, Poller, pipe_cloexec
from .reactor import Reactor, TimerHandle

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sized
    from typing import Any

    Callback = Callable[..., object]

__all__ = ["PrivateLoop"]

_INF = float("inf")
# epoll takes seconds, poll(2) (macOS) milliseconds.
_POLL_MS = Poller is not None and Poller is getattr(select, "poll", None)
_MAX_WAIT = 86400.0  # seconds, as asyncio caps its selector's wait


_SPIN_MAX = spin_setting()
_SPIN_MISSES, _SPIN_REST, _SPIN_REST_MAX = MISSES, REST, REST_MAX


_spin_wait: Callable[[int, int], int] | None = None


def _load_spin_wait() -> Callable[[int, int], int]:
    # On first use: a forked child that never spins never loads the C core for it.
    global _spin_wait
    from .._spawn.native import spin_wait

    _spin_wait = spin_wait
    return spin_wait


class PrivateLoop(FdTable, Reactor):
    """A per-thread loop on epoll (Linux) or poll(2), used directly: the
    ``selectors`` layer costs more per wake-up than the syscall itself.

    It runs only inside :meth:`run_until`.  An exception raised by a callback
    (for example an ``'error'`` event nobody listens to) propagates out of
    ``run_until``, so it surfaces from the call that drove the loop -- never
    silently; callbacks still queued run on the next drive.
    """

    def __init__(self) -> None:
        self.thread_id: int | None = _thread.get_ident()
        self._pid = os.getpid()
        self._init_fds(self._make_poller())
        # epoll has an fd of its own; poll(2) objects (macOS) and the Windows
        # port's poller have none to let go of after a fork.
        self._poller_fd: int = self._poller.fileno() if hasattr(self._poller, "fileno") else -1
        self._ready: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._ticks: deque[tuple[Callback, tuple[Any, ...]]] = deque()  # next_tick's, run first
        self._closing: list[tuple[Callback, tuple[Any, ...]]] = []  # call_closing's, run last
        self._timers: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        # Spinning before a wait (expect_soon): wanted (and for which peer),
        # the budget that adapts to hits and misses, the cached "may we".
        self._spin_wanted = False
        self._spin_for: int | None = None
        self._spin_budget = _SPIN_MAX
        self._spin_misses = 0
        self._spin_rest = 0
        self._spin_rest_len = _SPIN_REST
        self._spin_peer: int | None = -1
        self._spin_ok = False
        self._spin_checked = 0.0
        self._spin_recheck = 0
        self._refs = 0
        self._direct_fd = -1  # set_direct_read's fd and its read
        self._direct_read = None
        self._lock = _thread.allocate_lock()
        self._threadsafe: deque[tuple[Callback, tuple[Any, ...]]] = deque()
        self._awaited_wakeups = 0  # threads that will call call_soon_threadsafe
        self.closed = False
        self._depth = 0  # run_until calls in progress on the owning thread
        self.hangups = {}
        self.exit_watches: set[Any] = set()  # children still running, for _ThreadExit
        self._make_wakeup()
        track(self)

    # The two platform hooks (Windows' IocpLoop overrides both).

    def _make_poller(self) -> Any:
        if Poller is None:
            raise NotImplementedError("childproc's async API has no readiness poller on this platform")
        return Poller()

    def _make_wakeup(self) -> None:
        # Wake-up pipe for other threads (exit waiters without a pidfd, C
        # pumps finishing).  Close-on-exec and non-blocking from birth.
        self._wake_r, self._wake_w = pipe_cloexec()
        self._poller.register(self._wake_r, READ)
        self._callbacks[self._wake_r] = [self._drain_wakeups, None]

    def _forget_after_fork(self, null_fd: int) -> None:
        # In a forked copy (see forksafe): the epoll instance is the
        # parent's own (fork copies the fd, not the instance), so it is let
        # go before anything here can touch it, and the loop is retired.
        self.thread_id = None
        self.exit_watches.clear()
        self._direct_read = None
        self._ready.clear()
        self._ticks.clear()
        self._closing.clear()
        self._unregistered.clear()
        self._timers.clear()
        self._threadsafe.clear()
        if not self.closed:
            for fd in (self._poller_fd, self._wake_r, self._wake_w):
                replace_with_null(fd, null_fd)  # -1 (poll(2) has no fd) is skipped

    def _not_the_owner(self) -> RuntimeError:
        """What driving this loop from the wrong thread, or process, raises."""
        if self.closed:
            return RuntimeError("this childproc loop belonged to a thread that has ended")
        if self.thread_id is None:
            return RuntimeError(
                "this childproc loop belongs to the process this one was forked from "
                "(os.fork(), multiprocessing's 'fork'): its children and streams are not "
                "this process's to wait for"
            )
        import threading  # only on this error: a forked child side does not import it

        owner = next((t.name for t in threading.enumerate() if t.ident == self.thread_id), "an ended thread")
        return RuntimeError(
            "a childproc loop can only be driven by the thread that owns it: this child or stream "
            f"was started on thread {owner!r}, whose loop delivers its events and waits for it. "
            "Start the child on the thread that waits for it (in a worker: "
            "executor.submit(lambda: cp.spawn(...).wait()), or cp.spawn_sync/cp.exec_sync there), "
            "or wait on the owning thread and hand the results over (queue.Queue); under asyncio, "
            "spawn inside the coroutine that awaits it."
        )

    def set_direct_read(self, fd: int, read: Callback | None) -> None:
        if read is not None:
            self._direct_fd, self._direct_read = fd, read
        elif fd == self._direct_fd:
            self._direct_read = None

    # -- calls -------------------------------------------------------------

    def call_soon(self, callback: Callback, *args: Any) -> None:
        self._ready.append((callback, args))

    def next_tick(self, callback: Callback, *args: Any) -> None:
        self._ticks.append((callback, args))

    def call_closing(self, callback: Callback, *args: Any) -> None:
        self._closing.append((callback, args))

    def nothing_queued(self) -> bool:
        return not self._ready and not self._ticks and not self._closing

    def run_queues(self) -> tuple[Sized, Sized, Sized]:
        return self._ready, self._ticks, self._closing  # never replaced, only emptied

    tick: int = 0
    hangups: dict[int, int]

    def call_soon_threadsafe(self, callback: Callback, *args: Any) -> None:
        with self._lock:
            self._threadsafe.append((callback, args))
            # Under the lock: close() may end the loop meanwhile, and a
            # write to its old pipe number could reach an fd opened since.
            if self._wake_w >= 0:
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

    def adopt_exit_watch(self, watch: Any) -> None:
        self.exit_watches.add(watch)

    def drop_exit_watch(self, watch: Any) -> None:
        self.exit_watches.discard(watch)

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
        ran = False
        while True:
            # next_tick's callbacks first: Node runs its nextTick queue
            # after every callback, before anything else that waits.
            if ticks:
                callback, args = ticks.popleft()
            elif ready:
                callback, args = ready.popleft()
            elif closing:
                # libuv's close phase, once the rest has run: what closed
                # meanwhile, the last closed first.
                ready.extend(reversed(closing))
                closing.clear()
                continue
            else:
                # (done() was asked after the last callback, and nothing ran since)
                return False if ran else done()
            callback(*args)
            ran = True
            if done():
                while ticks:  # still part of the callback that finished the wait
                    callback, args = ticks.popleft()
                    callback(*args)
                return True

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
        # Capped: epoll and poll take at most INT_MAX milliseconds (a timer
        # days away would raise OverflowError); the loop just waits again.
        return None if wait is None else min(wait, _MAX_WAIT)

    def _run_timers(self) -> None:
        timers = self._timers
        if not timers:
            return
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, handle = heappop(timers)
            if not handle.cancelled:
                self._ready.append((handle.callback, handle.args))

    def idle_caller(self) -> bool:
        return self._depth == 0 and _thread.get_ident() == self.thread_id

    def run_until(self, done: Callable[[], bool], timeout: float | None = None) -> bool:
        if _thread.get_ident() != self.thread_id:
            raise self._not_the_owner()
        if timeout is not None:
            if timeout != timeout:
                # A deadline of NaN is never reached, nor passed: a busy
                # loop.  time.sleep(nan) refuses it too.
                raise ValueError("timeout must be a number of seconds, not NaN")
            if timeout == _INF:
                timeout = None
        self._depth += 1
        try:
            return self._run_until(done, timeout)
        finally:
            self._depth -= 1

    def _run_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        callbacks, poll = self._callbacks, self._poller.poll
        ready, ticks, closing = self._ready, self._ticks, self._closing
        check = True  # done() still to be asked
        while True:
            if (check or ready or ticks or closing) and self._run_ready(done):
                return True
            check = True
            wait = self._next_timeout(deadline) if self._timers or deadline is not None else None
            if (
                len(callbacks) == 1  # only the wake-up pipe
                and wait is None
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
                events = self._spin(wait) if self._spin_wanted and wait != 0 else None
                if events is not None:
                    pass  # what the spin saw
                elif wait is None and len(callbacks) == 2 and self._direct_read is not None and self._only_direct_fd():
                    # The fd of set_direct_read is all this thread waits
                    # for (a worker between two requests): its read sleeps
                    # until bytes come, one system call instead of two.
                    self.tick += 1
                    if self._spin_rest:
                        self._spin_rest -= 1
                        if not self._spin_rest:
                            self._spin_budget = _SPIN_MAX
                    if not self._direct_read(True):
                        # Nothing came: a signal cut the read short, or the
                        # socket was made non-blocking (its read would return
                        # at once, again and again): this fd's waits go
                        # through epoll from now on.
                        self._direct_read = None
                    if not (ready or ticks or closing):  # _run_ready's work, when there is none
                        if done():
                            return True
                        check = False
                    continue
                # epoll takes seconds (-1: forever), poll milliseconds.
                elif _POLL_MS:
                    events = poll(None if wait is None else wait * 1000.0)
                else:
                    events = poll(-1 if wait is None else wait)
            except InterruptedError:
                events = []
            if self._spin_rest:
                self._spin_rest -= 1
                if not self._spin_rest:
                    self._spin_budget = _SPIN_MAX  # spinning again
            self.tick += 1
            hangups = self.hangups
            if hangups:
                hangups.clear()
            if len(events) == 1 and deadline is None and not self._timers:
                # One fd ready and nothing else to run (a reply came; the
                # queues were emptied above): its reader now, without a
                # round through the queue.  (Timers and a deadline would be
                # looked at after it: not here.)
                fd, mask = events[0]
                entry = callbacks.get(fd)
                if entry is not None and mask == READ and entry[0] is not None:
                    entry[0]()
                    if done():
                        while ticks:  # still part of the callback that finished the wait
                            callback, args = ticks.popleft()
                            callback(*args)
                        return True
                    check = False  # (asked just now)
                    continue
            for fd, mask in events:
                entry = callbacks.get(fd)
                if entry is None:
                    continue
                if mask & NVAL:
                    # poll(2) only: closed while registered.  poll keeps
                    # reporting it at once, which would spin this loop.
                    del callbacks[fd]
                    self._poller.unregister(fd)
                    continue
                # A hang-up or error wakes whoever waits on the fd; their
                # read or write then reports it.
                if mask & (READ | HUP) and entry[0] is not None:
                    ready.append((entry[0], ()))
                    if mask & HUP:
                        hangups[fd] = mask
                if mask & (WRITE | HUP) and entry[1] is not None:
                    ready.append((entry[1], ()))
            if self._timers:
                self._run_timers()
            if deadline is not None and time.monotonic() >= deadline and self.nothing_queued():
                return done()

    def _only_direct_fd(self) -> bool:
        """Nothing but the reader of set_direct_read could wake this
        wait: the wake-up pipe and that fd are all it watches (the caller
        counted two), and no other thread owes it a call (a timer or
        deadline rules it out already)."""
        if self._awaited_wakeups or self._threadsafe or self.hangups:
            return False
        entry = self._callbacks.get(self._direct_fd)
        return entry is not None and entry[1] is None and entry[0] is not None

    # -- spinning before a wait ------------------------------------------

    def expect_soon(self, peer: int | None = None) -> None:
        """An event is likely within microseconds -- the reply to what was
        just sent, the next task of a caller that just got its answer --
        so the next wait may poll without sleeping for a little while.

        A thread that sleeps in epoll and is woken costs a wake-up that,
        on a virtual machine whose idle vCPUs halt, is tens of
        microseconds; a reply that arrives while we poll costs none
        (docs/architecture.md, "Spinning before a wait").  The spin is
        bounded (``CHILDPROC_SPIN_US``, 100 by default), stops for a while
        after misses in a row, and never happens where it would
        hold the only CPU ``peer`` (a pid) may run on.  Only a flag here:
        the hot paths that call it (every send) pay one attribute store --
        none while spinning was found not allowed a moment ago (see _spin)."""
        if self._spin_ok or self.tick >= self._spin_recheck or peer != self._spin_peer:
            self._spin_wanted = True
            self._spin_for = peer

    def _spin(self, wait: float | None) -> list[tuple[int, int]] | None:
        """Poll without sleeping for up to the budget (or until the next
        timer): the events, or None to go on to the sleeping wait."""
        self._spin_wanted = False
        budget = self._spin_budget
        if not budget or self._poller_fd < 0:  # poll(2) (macOS): no epoll fd to spin on
            return None
        now = time.monotonic()
        peer = self._spin_for
        if peer != self._spin_peer or now > self._spin_checked:
            self._spin_peer = peer
            self._spin_ok = _spin_allowed(peer)
            self._spin_checked = now + 1.0  # affinity can change: look again now and then
        if not self._spin_ok:
            # Asked again after 256 waits (and a second) at the earliest:
            # until then a loop on one CPU pays nothing here.
            self._spin_recheck = self.tick + 256
            return None
        span = budget if wait is None or wait > budget else wait
        spin_wait = _spin_wait or _load_spin_wait()
        # In C, without the GIL: the reply may need another thread of ours
        # (a pool's caller submitting its next task) to run first.
        if spin_wait(self._poller_fd, int(span * 1e9)) > 0:
            events = self._poller.poll(0)
            if events:
                self._spin_misses = 0  # a hit: keep spinning for what comes
                self._spin_rest_len = _SPIN_REST
                return events
        self._spin_misses += 1
        if self._spin_misses >= _SPIN_MISSES:
            # Misses in a row: no spin for a while, twice as long each time
            # the spins go on missing (a hit starts over).
            self._spin_misses = 0
            self._spin_budget = 0.0
            self._spin_rest = self._spin_rest_len
            self._spin_rest_len = min(2 * self._spin_rest_len, _SPIN_REST_MAX)
        return None

    def close(self) -> None:
        """Release the loop's own fds (its poller and wake-up pipe), once.
        Its thread has ended (``loop._ThreadExit``): nothing drives it again;
        objects of that thread may still remove their fds from it, which
        then only updates its tables."""
        if self.closed:
            return
        self.closed = True
        self.thread_id = None
        if self._poller_fd >= 0:  # poll(2) objects have no fd to close
            self._poller.close()
        self._poller_fd = -1
        with self._lock:
            fds = (self._wake_r, self._wake_w)
            self._wake_r = self._wake_w = -1
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def run_while_referenced(self) -> None:
        """Node's keep-alive: run until no ref'd handle remains."""
        self.run_until(lambda: self._refs <= 0 and self.nothing_queued())
