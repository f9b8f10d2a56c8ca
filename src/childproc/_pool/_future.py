"""A pool task and the future the caller holds for it.

``PoolFuture`` is a ``concurrent.futures.Future`` (so ``wait``,
``as_completed``, ``asyncio.wrap_future`` and ``run_in_executor`` take it)
with ``abort()``, ``worker_pid`` and ``attempts``.  Its ``cancel()`` keeps
the Executor contract -- True only while the task is still queued -- and
also tells the pool, so a cancelled task leaves the queue at once and is
counted as done by ``wait``/``as_completed``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import InvalidStateError
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, LOGGER, PENDING, RUNNING
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .._abort import AbortSignal


class Scheduler(Protocol):
    """What a future asks of the pool's scheduler (``_scheduler``, which
    imports this module)."""

    def post(self, fn: Any, *args: Any) -> None: ...

    def drop_cancelled(self, task: Task) -> None: ...

    def abort_task(self, task: Task, reason: Any) -> None: ...

__all__ = ["PoolFuture", "Task"]


class Task:
    """What the scheduler knows about one submitted call."""

    __slots__ = (
        "id",
        "future",
        "payload",
        "timeout",
        "retries",
        "retry_timeouts",
        "attempts",
        "worker",
        "timer",
        "dropped",
        "signal",
        "on_abort",
        "claimed",
    )

    def __init__(
        self,
        tid: int,
        future: PoolFuture,
        payload: Any,
        timeout: float | None,
        retries: int,
        retry_timeouts: bool,
        signal: AbortSignal | None,
    ) -> None:
        self.id = tid
        self.future = future
        self.payload = payload  # the frame a pickle worker reads (_worker.task_frame), or a json task's (fn, args)
        self.timeout = timeout
        self.retries = retries
        self.retry_timeouts = retry_timeouts
        self.attempts = 0
        self.worker: Any = None  # the Worker it was sent to, while it is there
        self.timer: Any = None  # its timeout, while it runs
        self.dropped = False  # failed here while the worker still has it: ignore its answer
        self.signal = signal
        self.on_abort: Any = None
        self.claimed = False  # set_running_or_notify_cancel() was called (it must be, once)


_DONE = (FINISHED, CANCELLED, CANCELLED_AND_NOTIFIED)


class _Wake:
    """One ``result()``/``exception()`` call waiting for one future: it is
    in that future's ``_waiters`` (as ``concurrent.futures.wait``'s waiters
    are), so finishing a future wakes only the threads waiting for it."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()

    def wake(self, _future: Any = None) -> None:
        if self.lock.locked():  # called under the futures' condition: no race
            self.lock.release()

    add_result = add_exception = add_cancelled = wake


class _LazyList:
    """A list made on first use, in the instance's ``__dict__`` (then the
    instance's own attribute shadows this descriptor).  Most futures
    never get a waiter or a callback."""

    name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        value: list[Any] = []
        obj.__dict__[self.name] = value  # every use of it is under the future's condition
        return value


class PoolFuture(Future[Any]):
    """The result of ``ProcessPool.submit``.

    ``worker_pid`` is the pid of the worker the task was last sent to
    (None while queued), ``attempts`` how many times it was started.
    ``abort(reason)`` ends the task whatever its state: a queued task
    leaves the queue, a running one has its worker killed (and replaced);
    the future fails with ``AbortError``.

    Lighter than ``Future()`` by construction: a pool's futures share one
    ``threading.Condition`` (the pool's), ``_waiters`` and
    ``_done_callbacks`` are made when first used, and the link to the task
    goes when the future is done (no reference cycle left for the
    collector).  ``Future.__init__``'s own Condition is an RLock, a deque
    and five bound methods: garbage-collected objects that made ``submit``
    in a busy pool cost three times its own work in collector passes
    (docs/architecture.md, "The worker pool").  What waits, waits for one
    future: ``result()``/``exception()`` through a waiter in its
    ``_waiters``, like ``wait()`` and ``as_completed()``; the shared
    condition only orders state changes and nobody waits on it."""

    _waiters = _LazyList()
    _done_callbacks = _LazyList()

    def __init__(self, condition: threading.Condition | None = None) -> None:
        # Future.__init__'s fields but the two lists, with the shared condition.
        if condition is None:
            condition = threading.Condition()
        self._condition = condition
        # Its lock, taken directly where this class changes state: the same
        # lock, without Condition.__enter__'s Python-level call.
        self._lock = condition._lock  # type: ignore[attr-defined]
        self._state = PENDING
        self._result = None
        self._exception: BaseException | None = None
        self.worker_pid: int | None = None
        self.attempts = 0
        self._scheduler: Scheduler | None = None
        self._task: Task | None = None

    # -- waiting -------------------------------------------------------------

    def _wait(self, timeout: float | None) -> None:
        with self._lock:
            if self._state in _DONE:
                return
            waiter = _Wake()
            self._waiters.append(waiter)
        try:
            if timeout is None:
                waiter.lock.acquire()
            elif timeout > 0:
                waiter.lock.acquire(True, timeout)
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def result(self, timeout: float | None = None) -> Any:
        if self._state not in _DONE:
            self._wait(timeout)
        if self._state == FINISHED and self._exception is None:
            return self._result  # set before the state, and never again
        return super().result(0)  # its exception, CancelledError or TimeoutError

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state not in _DONE:
            self._wait(timeout)
        return super().exception(0)

    # -- finishing (Future's, without the lists nobody made) -----------------

    def set_running_or_notify_cancel(self) -> bool:
        with self._lock:
            if self._state == PENDING:
                self._state = RUNNING
                return True
        return super().set_running_or_notify_cancel()  # cancelled: its waiters are told

    def set_result(self, result: Any) -> None:
        self._finish(result, None)

    def set_exception(self, exception: BaseException | None) -> None:
        self._finish(None, exception)

    def _finish(self, result: Any, exception: BaseException | None) -> None:
        with self._lock:
            if self._state in _DONE:
                raise InvalidStateError(f"{self._state}: {self!r}")
            self._result = result
            self._exception = exception
            self._state = FINISHED
            waiters = self.__dict__.get("_waiters")
            if waiters:
                for waiter in waiters:
                    if exception is None:
                        waiter.add_result(self)
                    else:
                        waiter.add_exception(self)
        self._invoke_callbacks()

    def _invoke_callbacks(self) -> None:
        self._task = None  # done: nothing to cancel or abort, and no cycle through the task
        callbacks = self.__dict__.get("_done_callbacks")
        if callbacks:
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:
                    LOGGER.exception("exception calling callback for %r", self)

    def cancel(self) -> bool:
        scheduler, task = self._scheduler, self._task  # before cancelling lets go of the task
        cancelled = super().cancel()
        if cancelled:
            with self._lock:  # Future.cancel() wakes waiters through notify_all: ours wait apart
                for waiter in self.__dict__.get("_waiters", ()):
                    if type(waiter) is _Wake:
                        waiter.wake()
        if cancelled and scheduler is not None and task is not None:
            scheduler.post(scheduler.drop_cancelled, task)
        return cancelled

    def abort(self, reason: Any = None) -> None:
        """Fail the task with ``AbortError`` (``cause=reason``), killing its
        worker if it is running.  Nothing happens once the future is done."""
        scheduler, task = self._scheduler, self._task
        if self.done() or scheduler is None or task is None:
            return
        scheduler.post(scheduler.abort_task, task, reason)
