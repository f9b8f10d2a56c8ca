"""The pool's own thread: it owns the workers and decides everything.

One thread runs a childproc private loop (``_loop.PrivateLoop``) and is the
only one that touches workers, the queue and the tasks in flight, so none
of that needs a lock.  Other threads hand work over through
:meth:`Scheduler.put` (a deque under a lock plus one wake-up of the loop
per batch) and :meth:`Scheduler.post` (any call, run on the loop).

Each worker is a ``cp.fork()`` child with its own channel and pidfd, so
the loop knows which tasks sit on which worker and learns of a death from
the pidfd at once:

* a crash fails (or, within ``retries``, requeues at the head) only the
  task that was running there; tasks prefetched behind it never started and
  go back to the head of the queue without spending an attempt;
* a timeout is a loop timer armed when the task becomes the one the worker
  runs; it fails the task, kills the worker's process group and starts a
  replacement at once, without waiting for the reap;
* recycling (count, RSS, age) happens between tasks and starts the
  replacement before the old worker is let go;
* three worker start failures in a row, with no task done in between,
  break the pool.

Nothing here ever raises out of the loop: listener errors go to the pool's
``'error'`` listeners or, without one, to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import InvalidStateError
from typing import TYPE_CHECKING, Any

from .._errors import AbortError
from .._runtime.loop import PrivateLoop, private_loop
from ._errors import PoolBrokenError, RemoteError, RemoteTraceback, TaskTimeoutError, WorkerCrashedError
from ._worker_proc import DEAD, KILLED, READY, RETIRING, STARTING, Worker, start_worker

if TYPE_CHECKING:
    from .._runtime.emitter import EventEmitter
    from ._config import PoolConfig
    from ._future import Task

__all__ = ["Scheduler"]

_START_FAILURES_TO_BREAK = 3


class Scheduler:
    def __init__(self, owner: EventEmitter, config: PoolConfig) -> None:
        self.owner = owner  # the ProcessPool: its events are emitted here
        self.config = config
        self.lock = threading.Lock()
        self.incoming: deque[Task] = deque()
        self.wake_pending = False
        self.waiting = 0  # tasks submitted and not yet sent to a worker (max_queue)
        self.closed = False  # no more submits (under lock)
        self.broken: BaseException | None = None  # set under lock
        self.queue: deque[Task] = deque()
        self.workers: list[Worker] = []
        self.closing = False
        self.stopped = False
        self.start_failures = 0
        self.needs_drain = False
        # Workers with nothing to do, for put()'s fast path (under lock).
        # Not with max_tasks_per_worker (counted by the loop) nor json workers.
        self.idle: list[Worker] = []
        self.direct = config.max_tasks_per_worker is None and not config.json
        self.reactor: PrivateLoop | None = None
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._main, name="childproc-pool", daemon=True)
        self.thread.start()
        self._started.wait()

    # -- the thread --------------------------------------------------------

    def _main(self) -> None:
        reactor = self.reactor = private_loop()
        # Other threads hand work over through call_soon_threadsafe: an
        # idle pool waits for that, and the loop must know it may.
        reactor.expect_wakeup()
        self._started.set()
        for _ in range(self.config.min_workers):
            self._spawn()
        while True:
            try:
                reactor.run_until(lambda: self.stopped)
                return
            except BaseException as exc:  # noqa: BLE001 - the loop must outlive a listener's error
                self._report(exc)

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def post(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the pool's thread."""
        reactor = self.reactor
        assert reactor is not None
        if self.on_loop_thread():
            reactor.call_soon(fn, *args)
        else:
            reactor.call_soon_threadsafe(fn, *args)

    def emit(self, event: str, *args: Any) -> None:
        try:
            self.owner.emit(event, *args)
        except BaseException as exc:  # noqa: BLE001
            self._report(exc)

    def _report(self, exc: BaseException) -> None:
        owner = self.owner
        if owner.listener_count("error"):
            try:
                owner.emit("error", exc)
                return
            except BaseException as again:  # noqa: BLE001
                exc = again
        import traceback

        # An 'error' nobody listens to never raises on the pool's thread.
        print("childproc ProcessPool: error on the pool's thread:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)

    # -- from other threads ------------------------------------------------

    def check_open(self) -> None:
        """Raise what ``submit`` raises on a broken or shut-down pool."""
        if self.broken is not None:
            raise self.broken
        if self.closed:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def put(self, task: Task) -> None:
        limit = self.config.max_queue
        with self.lock:
            if self.broken is not None:
                raise self.broken
            if self.closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self.idle and not self.waiting and task.timeout is None and task.signal is None:
                # The fast path: a worker is idle and nothing waits before
                # this task, so the calling thread writes it to that
                # worker's channel itself.  The round trip then crosses
                # threads once (the answer), not twice.  Only tasks that
                # need no timer of the loop take it.
                if self.idle.pop().send_direct(task):
                    return
            if limit is not None and self.waiting >= limit:
                from ._errors import QueueFullError

                raise QueueFullError(f"the pool's queue is full (max_queue={limit})")
            self.waiting += 1
            self.incoming.append(task)
            if self.wake_pending:
                return
            self.wake_pending = True
        self.post(self._take_incoming)

    def unidle(self, worker: Worker) -> None:
        """Take ``worker`` off the fast path before changing its state; a
        caller may have just given it a task (then it is busy)."""
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)

    def _take_incoming(self) -> None:
        with self.lock:
            batch = list(self.incoming)
            self.incoming.clear()
            self.wake_pending = False
        queue = self.queue
        for task in batch:
            if task.dropped:
                self._unwait(1)  # aborted before it got here
                continue
            if task.signal is not None:
                self._watch_signal(task)
            queue.append(task)
        self.dispatch()

    def _unwait(self, n: int) -> None:
        if n:
            with self.lock:
                self.waiting -= n

    # -- dispatch ----------------------------------------------------------

    def dispatch(self) -> None:
        queue = self.queue
        if queue:
            cap = self.config.prefetch
            limit = self.config.max_tasks_per_worker
            retire: list[Worker] = []
            # Under the lock: a caller's fast path must not pick a worker
            # this loop is writing to (see put()).
            with self.lock:
                idle = self.idle
                ready = [w for w in self.workers if w.state == READY and len(w.inflight) < cap]
                sent = 0
                while queue and ready:
                    worker = min(ready, key=Worker.load) if len(ready) > 1 else ready[0]
                    task = queue.popleft()
                    if not task.claimed:
                        task.claimed = True
                        if not task.future.set_running_or_notify_cancel():
                            sent += 1  # cancelled while queued: done, and counted by wait()
                            continue
                    elif task.dropped or task.future.done():
                        continue
                    sent += 1
                    if worker in idle:
                        idle.remove(worker)
                    self._send(worker, task)
                    if limit is not None and worker.sent >= limit:
                        worker.state = RETIRING  # no more tasks: let go once they are done
                        retire.append(worker)
                    if worker.state != READY or len(worker.inflight) >= cap:
                        ready.remove(worker)
                self.waiting -= sent
            for worker in retire:
                self._retired(worker)
            if queue:
                self._grow()
        if queue and not self.needs_drain:
            self.needs_drain = True
            self.emit("needsDrain")
        elif not queue and self.needs_drain:
            self.needs_drain = False
            self.emit("drain")
        if self.closing:
            self._maybe_finish()

    def _send(self, worker: Worker, task: Task) -> None:
        task.attempts += 1
        task.worker = worker
        future = task.future
        future.worker_pid = worker.pid
        future.attempts = task.attempts
        worker.inflight[task.id] = task
        worker.sent += 1
        if worker.idle_timer is not None:
            worker.idle_timer.cancel()
            worker.idle_timer = None
        if len(worker.inflight) == 1:
            self._running(worker, task)
        worker.send_task(task)

    def _running(self, worker: Worker, task: Task) -> None:
        """``task`` is the one ``worker`` runs now: its timeout starts."""
        if task.timeout is not None and not task.dropped:
            assert self.reactor is not None
            task.timer = self.reactor.call_later(task.timeout, self._timed_out, worker, task)

    def _grow(self) -> None:
        """Start workers for what waits, up to max_workers."""
        if len(self.workers) >= self.config.max_workers and all(w.state == READY for w in self.workers):
            return
        live = [w for w in self.workers if w.state in (STARTING, READY)]
        starting = sum(1 for w in live if w.state == STARTING)
        wanted = min(self.config.max_workers - len(live), len(self.queue) - starting)
        for _ in range(max(0, wanted)):
            self._spawn()

    def _spawn(self) -> Worker | None:
        if self.broken is not None:
            return None
        worker = start_worker(self, self.config)
        self.workers.append(worker)
        if worker.pid is not None:
            self.emit("workerCreate", worker.pid)
        return worker

    # -- what workers say (called by Worker) --------------------------------

    def worker_ready(self, worker: Worker) -> None:
        if worker.state != STARTING:
            return
        worker.state = READY
        worker.ready_at = time.monotonic()
        self.emit("workerReady", worker.pid)
        age = self.config.max_worker_age
        if age is not None:
            assert self.reactor is not None
            worker.age_timer = self.reactor.call_later(age, self._aged, worker)
        self.dispatch()
        if worker.state == READY and not worker.inflight:
            self._idle(worker)

    def task_answered(self, worker: Worker, tid: Any, outcome: int, value: Any, extra: Any = None) -> None:
        """``outcome``: 0 result, 1 exception (``extra`` its traceback text),
        2 a RemoteError (``value``)."""
        task = worker.inflight.pop(tid, None)
        if task is None:
            return
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None
        task.worker = None
        worker.done += 1
        self.start_failures = 0
        # The worker's next step first (its next task, or back on the fast
        # path), then the future: a caller woken by it finds the worker free.
        inflight = worker.inflight
        if inflight:
            self._running(worker, next(iter(inflight.values())))
            if self.queue and worker.state == READY:
                self._refill(worker)  # the slot this answer freed
        elif worker.state == RETIRING:
            worker.let_go()
        elif worker.state == READY:
            self._between_tasks(worker)
            if self.queue:
                self._refill(worker)
            if worker.state == READY and not worker.inflight:
                self._idle(worker)
        if not task.dropped:
            future = task.future
            try:
                if outcome == 0:
                    future.set_result(value)
                elif outcome == 1:
                    if isinstance(value, BaseException):
                        if extra:
                            value.__cause__ = RemoteTraceback(extra)
                        future.set_exception(value)
                    else:
                        future.set_exception(RemoteError(type(value).__name__, repr(value), extra or ""))
                else:
                    future.set_exception(value)
            except InvalidStateError:
                pass  # failed here meanwhile (an abort racing its answer)
        if task.signal is not None and task.on_abort is not None:
            task.signal.remove_event_listener("abort", task.on_abort)
        if self.closing or (self.needs_drain and not self.queue):
            self.dispatch()

    def _refill(self, worker: Worker) -> None:
        """Top up one worker from the queue: what an answer does in a
        busy pool (dispatch() without looking at every worker)."""
        queue = self.queue
        cap = self.config.prefetch
        limit = self.config.max_tasks_per_worker
        retiring = False
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)
            sent = 0
            while queue and len(worker.inflight) < cap:
                task = queue.popleft()
                if not task.claimed:
                    task.claimed = True
                    if not task.future.set_running_or_notify_cancel():
                        sent += 1
                        continue
                elif task.dropped:
                    continue
                sent += 1
                self._send(worker, task)
                if limit is not None and worker.sent >= limit:
                    worker.state = RETIRING
                    retiring = True
                    break
            self.waiting -= sent
        if retiring:
            self._retired(worker)
        if not queue and self.needs_drain:
            self.needs_drain = False
            self.emit("drain")

    def bad_answer(self, worker: Worker, error: BaseException) -> None:
        """An answer that did not unpickle here: it belongs to the task the
        worker was running (a worker answers in order)."""
        if not worker.inflight:
            return
        tid = next(iter(worker.inflight))
        cause = getattr(error, "__cause__", None) or error
        remote = RemoteError(type(cause).__name__, f"the worker's answer cannot be unpickled here: {cause}", "")
        self.task_answered(worker, tid, 2, remote)

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
            self._spawn()  # replaced, whether it was busy or idle
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
            self._spawn()

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
            pass
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

    def worker_gone(self, worker: Worker) -> None:
        """Its process has exited and it is out of the books."""
        if self.closing:
            self._maybe_finish()

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
