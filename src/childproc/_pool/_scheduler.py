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

import sys
import threading
import time
from collections import deque
from concurrent.futures import InvalidStateError
from typing import TYPE_CHECKING, Any

from .._runtime.loop import PrivateLoop, private_loop
from ._errors import RemoteError, _RemoteTraceback
from ._lifecycle import Lifecycle
from ._worker_proc import READY, RETIRING, STARTING, Worker, start_worker

if TYPE_CHECKING:
    from .._runtime.emitter import EventEmitter
    from ._config import PoolConfig
    from ._future import Task

__all__ = ["Scheduler"]


class Scheduler(Lifecycle):
    def __init__(self, owner: EventEmitter, config: PoolConfig) -> None:
        self.owner = owner  # the ProcessPool: its events are emitted here
        self.config = config
        self.lock = threading.Lock()
        self.condition = threading.Condition()  # the lock every future of this pool shares (_future.PoolFuture)
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
        if self.reactor is None:
            raise RuntimeError("the pool's thread could not start its loop")

    # -- the thread --------------------------------------------------------

    def _main(self) -> None:
        try:
            reactor = self.reactor = private_loop()
            # Other threads hand work over through call_soon_threadsafe: an
            # idle pool waits for that, and the loop must know it may.
            reactor.expect_wakeup()
        finally:
            self._started.set()  # the constructor reports a loop that could not start
        for _ in range(self.config.min_workers):
            self._spawn()
        while True:
            try:
                reactor.run_until(lambda: self.stopped)
                break
            except BaseException as exc:  # noqa: BLE001 - the loop must outlive a listener's error
                self._report(exc)
        # Every worker has exited.  A killed one's lifecycle may still hold a
        # timer -- the SIGKILL for its group after force_kill_after, then the
        # release of its group's warden -- and only this loop runs it.
        grace = (self.config.force_kill_after or 0.0) + 2.0
        try:
            reactor.run_until(lambda: reactor.refs <= 0 and reactor.nothing_queued(), grace)
        except BaseException as exc:  # noqa: BLE001
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
            # The frames go out after the lock is let go: by then every
            # worker written to is off the fast path, this loop its only writer.
            frames: dict[Worker, list[bytes]] = {}
            with self.lock:
                idle = self.idle
                ready = [w for w in self.workers if w.state == READY and len(w.inflight) < cap]
                sent = 0
                while queue and ready:
                    worker = min(ready, key=Worker.load) if len(ready) > 1 else ready[0]
                    task = queue.popleft()
                    sent += 1  # it leaves the queue, whatever comes next
                    if not task.claimed:
                        task.claimed = True
                        if not task.future.set_running_or_notify_cancel():
                            continue  # cancelled while queued: done, and counted by wait()
                    elif task.dropped or task.future.done():
                        continue
                    if worker in idle:
                        idle.remove(worker)
                    self._send(worker, task, None if worker.json else frames.setdefault(worker, []))
                    if limit is not None and worker.sent >= limit:
                        worker.state = RETIRING  # no more tasks: let go once they are done
                        retire.append(worker)
                    if worker.state != READY or len(worker.inflight) >= cap:
                        ready.remove(worker)
                self.waiting -= sent
            for worker, out in frames.items():
                if out:
                    worker.send_frames(out)
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

    def _send(self, worker: Worker, task: Task, frames: list[bytes] | None = None) -> None:
        """Give ``task`` to ``worker``; with ``frames`` (a pickle pool's
        top-up), its frame joins the list the caller writes in one go."""
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
        if frames is not None:
            frames.append(task.payload)
        else:
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

    def spawn_replacement(self) -> None:
        """A worker was lost (crash, timeout, abort): start another unless
        the pool filled up meanwhile or is winding down with nothing to do."""
        if self.closing and not self.queue:
            return
        live = sum(1 for w in self.workers if w.state in (STARTING, READY))
        if live < self.config.max_workers:
            self._spawn()

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
                if worker.reading:
                    worker.refill = True  # read_answers tops it up after the batch
                else:
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
                            value.__cause__ = _RemoteTraceback(extra)
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

    def refill(self, worker: Worker) -> None:
        """After a batch of answers: top ``worker`` up if it still can take work."""
        if self.queue and worker.state == READY:
            self._refill(worker)

    def _refill(self, worker: Worker) -> None:
        """Top up one worker from the queue: what an answer does in a
        busy pool (dispatch() without looking at every worker)."""
        queue = self.queue
        cap = self.config.prefetch
        limit = self.config.max_tasks_per_worker
        retiring = False
        # Off the callers' fast path first (under the lock); then this loop
        # is the worker's only writer, and callers' submits need not wait
        # for the sends below (the queue and the workers are this thread's).
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)
        sent = 0
        frames: list[bytes] | None = None if worker.json else []
        while queue and len(worker.inflight) < cap:
            task = queue.popleft()
            sent += 1
            if not task.claimed:
                task.claimed = True
                if not task.future.set_running_or_notify_cancel():
                    continue
            elif task.dropped or task.future.done():
                continue
            self._send(worker, task, frames)
            if limit is not None and worker.sent >= limit:
                worker.state = RETIRING
                retiring = True
                break
        if frames:
            worker.send_frames(frames)  # one write for the lot
        # Counted as waiting until now: a caller's fast path never overtakes them.
        self._unwait(sent)
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
