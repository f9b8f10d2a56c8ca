"""What happens to workers and tasks outside the happy path: exits and
crashes, start failures, timeouts, aborts and cancels, recycling, idle
workers, shutdown and breaking the pool.

A mixin of :class:`_scheduler.Scheduler` (it runs on the pool's thread,
with the scheduler's state); split out so each module reads as one
concern.  The rules are the module doc of ``_scheduler``.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import AbortError
from ._errors import PoolBrokenError, TaskTimeoutError, WorkerCrashedError
from ._worker_proc import DEAD, KILLED, READY, RETIRING, STARTING, Worker

if TYPE_CHECKING:
    from .._runtime.private import PrivateLoop
    from ._config import PoolConfig
    from ._future import Task

__all__ = ["Lifecycle"]

_START_FAILURES_TO_BREAK = 3


class Lifecycle:
    # The scheduler's state and calls this mixin uses (see _scheduler).
    config: PoolConfig
    lock: threading.Lock
    incoming: deque[Task]
    wake_pending: bool
    waiting: int
    closed: bool
    broken: BaseException | None
    queue: deque[Task]
    workers: list[Worker]
    idle: list[Worker]
    direct: bool
    closing: bool
    stopped: bool
    start_failures: int
    reactor: PrivateLoop | None

    def dispatch(self) -> None:
        raise NotImplementedError

    def emit(self, event: str, *args: Any) -> None:
        raise NotImplementedError

    def post(self, fn: Any, *args: Any) -> None:
        raise NotImplementedError

    def unidle(self, worker: Worker) -> None:
        raise NotImplementedError

    def _spawn(self) -> Worker | None:
        raise NotImplementedError

    def spawn_replacement(self) -> None:
        raise NotImplementedError

    def _unwait(self, n: int) -> None:
        raise NotImplementedError

    def worker_exited(self, worker: Worker, code: int | None, signal: str | None) -> None:
        self.unidle(worker)
        prev = worker.state
        worker.state = DEAD
        worker.cancel_timers()
        stderr = worker.finish_stderr()
        if worker in self.workers:
            self.workers.remove(worker)
        if prev == STARTING:
            self.emit("workerExit", worker.pid, code, signal)
            self._start_failed(worker, code, signal, stderr)
            return
        inflight = list(worker.inflight.values())
        worker.inflight.clear()
        if inflight:
            head, rest = inflight[0], inflight[1:]
            how = f"signal {signal}" if signal else f"exit code {code}"
            err = WorkerCrashedError(
                f"worker {worker.pid} died ({how}) while running a task (attempt {head.attempts})",
                pid=worker.pid,
                exit_code=code,
                signal_code=signal,
                attempts=head.attempts,
                stderr=stderr,
            )
            requeue = self._unstarted(rest)
            if head.timer is not None:
                head.timer.cancel()
                head.timer = None
            head.worker = None
            if not head.dropped and not head.future.done():
                if head.attempts <= head.retries and not self.closed_hard():
                    requeue.insert(0, head)
                    self.emit("taskRetry", head.future, err)
                else:
                    head.future.set_exception(err)
            self._requeue(requeue)
        self.emit("workerExit", worker.pid, code, signal)  # after the futures: they are what callers wait on
        if prev == READY and not self.closing:
            # Replaced, whether it was busy or idle -- after the loop's next
            # wait for events: starting a worker holds this thread (and the
            # GIL) for a while, and a caller woken by the failed future
            # should not wait for that.
            assert self.reactor is not None
            self.reactor.call_later(0, self.spawn_replacement)
        self.dispatch()

    def closed_hard(self) -> bool:
        return self.broken is not None

    def _unstarted(self, tasks: list[Task]) -> list[Task]:
        """Prefetched tasks a dead worker never started: they go back
        without spending an attempt."""
        back = []
        for task in tasks:
            task.worker = None
            if task.dropped or task.future.done():
                continue
            task.attempts -= 1
            task.future.attempts = task.attempts
            back.append(task)
        return back

    def _requeue(self, tasks: list[Task]) -> None:
        if tasks:
            self.queue.extendleft(reversed(tasks))
            with self.lock:
                self.waiting += len(tasks)

    def _start_failed(self, worker: Worker, code: int | None, signal: str | None, stderr: str) -> None:
        self.start_failures += 1
        how = worker.spawn_error or (f"signal {signal}" if signal else f"exit code {code}")
        if self.start_failures >= _START_FAILURES_TO_BREAK:
            self.break_pool(
                PoolBrokenError(
                    f"the pool is broken: {self.start_failures} workers in a row failed to start "
                    f"(the last: {how})",
                    pid=worker.pid,
                    exit_code=code,
                    signal_code=signal,
                    stderr=stderr,
                )
            )
            return
        if self.queue or len([w for w in self.workers if w.state in (STARTING, READY)]) < self.config.min_workers:
            self._spawn()
        self.dispatch()

    # -- timeouts, aborts, recycling ---------------------------------------

    def _timed_out(self, worker: Worker, task: Task) -> None:
        task.timer = None
        if task.worker is not worker or task.future.done():
            return
        err = TaskTimeoutError(
            f"the task ran longer than {task.timeout:g} s; its worker {worker.pid} was killed",
            timeout=task.timeout,
            pid=worker.pid,
        )
        self.emit("taskTimeout", task.future, err)
        retry = task.retry_timeouts and task.attempts <= task.retries
        self._kill(worker, keep_head=retry)
        if retry:
            self.emit("taskRetry", task.future, err)
        else:
            task.future.set_exception(err)
        self.dispatch()

    def _kill(self, worker: Worker, keep_head: bool = False) -> None:
        """Kill ``worker`` (its group) for a task's sake and replace it
        now; its other tasks go back to the queue."""
        self.unidle(worker)
        tasks = list(worker.inflight.values())
        worker.inflight.clear()
        worker.state = KILLED
        worker.cancel_timers()
        worker.kill()
        if tasks:
            head = tasks[0]
            head.worker = None
            back = self._unstarted(tasks[1:])
            if keep_head:
                back.insert(0, head)
            self._requeue(back)
        if not self.closing or self.queue:
            # At once, not after the reap -- but after the loop's next wait,
            # so the caller of the future failed now is not held up by it.
            assert self.reactor is not None
            self.reactor.call_later(0, self.spawn_replacement)

    def abort_task(self, task: Task, reason: Any) -> None:
        future = task.future
        if future.done():
            return
        err = AbortError(cause=reason)
        worker = task.worker
        if worker is None:
            try:
                self.queue.remove(task)
                self._unwait(1)
            except ValueError:
                pass  # still in the hand-over deque: skipped when taken
            task.dropped = True
            task.claimed = True
            future.set_exception(err)
        elif next(iter(worker.inflight)) == task.id:
            self._kill(worker)  # running: only killing its worker stops it
            future.set_exception(err)
        else:
            task.dropped = True  # sent, not started: its answer will be ignored
            future.set_exception(err)
        self.dispatch()

    def drop_cancelled(self, task: Task) -> None:
        if task.claimed:
            return
        task.claimed = True
        try:
            self.queue.remove(task)
            self._unwait(1)
        except ValueError:
            task.dropped = True  # still being handed over: let go when it arrives
        task.future.set_running_or_notify_cancel()  # counted as done by wait()/as_completed()
        self.dispatch()

    def _watch_signal(self, task: Task) -> None:
        signal = task.signal
        assert signal is not None
        if signal.aborted:
            self.post(self.abort_task, task, signal.reason)
            return

        def on_abort(*_: Any) -> None:
            self.post(self.abort_task, task, signal.reason)

        task.on_abort = on_abort
        signal.add_event_listener("abort", on_abort, once=True)

    def _between_tasks(self, worker: Worker) -> None:
        limit = self.config.max_memory_per_worker
        if limit is not None and worker.rss() > limit:
            self._retire(worker)

    def _aged(self, worker: Worker) -> None:
        worker.age_timer = None
        if worker.state == READY:
            self._retire(worker)

    def _retire(self, worker: Worker) -> None:
        """Let ``worker`` go once its tasks are done; its replacement
        starts now, so capacity never dips."""
        self.unidle(worker)
        if worker.state != READY:
            return
        worker.state = RETIRING
        self._retired(worker)

    def _retired(self, worker: Worker) -> None:
        worker.cancel_timers()
        if not self.closing or self.queue:
            self._spawn()
        if not worker.inflight:
            worker.let_go()

    def _idle(self, worker: Worker) -> None:
        """``worker`` has nothing to do: callers may hand it a task
        directly, and its idle timer starts."""
        if self.direct and not self.closing:
            with self.lock:
                if worker not in self.idle:
                    self.idle.append(worker)
        timeout = self.config.idle_timeout
        if timeout is None or worker.idle_timer is not None or self.closing:
            return
        assert self.reactor is not None
        worker.idle_timer = self.reactor.call_later(timeout, self._idle_expired, worker)

    def _idle_expired(self, worker: Worker) -> None:
        worker.idle_timer = None
        self.unidle(worker)
        live = [w for w in self.workers if w.state in (STARTING, READY)]
        if worker.state == READY and not worker.inflight and len(live) > self.config.min_workers:
            worker.state = RETIRING
            worker.cancel_timers()
            worker.let_go()
        elif worker.state == READY and not worker.inflight:
            self._idle(worker)

    # -- the end -----------------------------------------------------------

    def shutdown(self, cancel_futures: bool) -> None:
        self.closing = True
        if cancel_futures:
            self._take_incoming_for_shutdown()
            keep: deque[Task] = deque()
            cancelled = 0
            for task in self.queue:
                if not task.claimed and task.future.cancel():
                    task.claimed = True
                    task.future.set_running_or_notify_cancel()  # done, and counted by wait()
                    cancelled += 1
                else:
                    keep.append(task)
            self.queue = keep
            self._unwait(cancelled)
        self.dispatch()
        self._maybe_finish()

    def _take_incoming_for_shutdown(self) -> None:
        with self.lock:
            batch = list(self.incoming)
            self.incoming.clear()
            self.wake_pending = False
        self.queue.extend(t for t in batch if not t.future.done())

    def _maybe_finish(self) -> None:
        with self.lock:
            self.idle.clear()  # closing: no fast path any more (put() refuses anyway)
        if self.queue or self.incoming or any(w.inflight for w in self.workers):
            return
        for worker in list(self.workers):
            if worker.state in (READY, STARTING):
                worker.state = RETIRING
                worker.cancel_timers()
                worker.let_go()
        if not self.workers:
            self.stopped = True

    def break_pool(self, err: BaseException, kill_signal: int | None = None) -> None:
        with self.lock:
            if self.broken is None:
                self.broken = err
            self.closed = True
            batch = list(self.incoming)
            self.incoming.clear()
        self.closing = True
        with self.lock:
            self.idle.clear()
        tasks = batch + list(self.queue)
        self.queue.clear()
        for worker in list(self.workers):
            tasks.extend(worker.inflight.values())
            worker.inflight.clear()
            worker.cancel_timers()
            worker.state = KILLED
            worker.kill(kill_signal)
        for task in tasks:
            if task.timer is not None:
                task.timer.cancel()
            future = task.future
            if not task.claimed:
                task.claimed = True
                if not future.set_running_or_notify_cancel():
                    continue
            if not future.done():
                future.set_exception(err)
        with self.lock:
            self.waiting = 0
        self._maybe_finish()
