"""A pool task and the future the caller holds for it.

``PoolFuture`` is a ``concurrent.futures.Future`` (so ``wait``,
``as_completed``, ``asyncio.wrap_future`` and ``run_in_executor`` take it)
with ``abort()``, ``worker_pid`` and ``attempts``.  Its ``cancel()`` keeps
the Executor contract -- True only while the task is still queued -- and
also tells the pool, so a cancelled task leaves the queue at once and is
counted as done by ``wait``/``as_completed``.
"""

from __future__ import annotations

from concurrent.futures import Future
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
        self.payload = payload  # the pickled (fn, args, kwargs), or a json task's (fn, args)
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


class PoolFuture(Future[Any]):
    """The result of ``ProcessPool.submit``.

    ``worker_pid`` is the pid of the worker the task was last sent to
    (None while queued), ``attempts`` how many times it was started.
    ``abort(reason)`` ends the task whatever its state: a queued task
    leaves the queue, a running one has its worker killed (and replaced);
    the future fails with ``AbortError``."""

    def __init__(self) -> None:
        super().__init__()
        self.worker_pid: int | None = None
        self.attempts = 0
        self._scheduler: Scheduler | None = None
        self._task: Task | None = None

    def cancel(self) -> bool:
        cancelled = super().cancel()
        scheduler, task = self._scheduler, self._task
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
