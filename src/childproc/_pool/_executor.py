"""``cp.ProcessPool``: the public face of the pool.

A ``concurrent.futures.Executor`` (``submit``, ``map``, ``shutdown``,
``with``, ``loop.run_in_executor``) and an ``EventEmitter``; its work is
done by the pool's own thread (``_scheduler``), so every method here may be
called from any thread, and ``await pool.run(...)`` from any asyncio loop.
``submit`` pickles the call in the caller's thread: an argument that cannot
cross fails its future right there, and the pool's thread only moves bytes.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from functools import partial
from typing import Any

from .._runtime.emitter import EventEmitter
from .._ipc.wire import encode_json
from ._config import PICKLE_PROTOCOL, PoolConfig, make_config, positive
from ._errors import PoolBrokenError
from ._future import PoolFuture, Task
from ._scheduler import Scheduler
from ._worker import apply_chunk, task_frame

try:
    import _pickle as _pickle_c
except ImportError:  # pragma: no cover
    import pickle as _pickle_c  # type: ignore[no-redef]

__all__ = ["ProcessPool", "PoolOptions"]

_UNSET: Any = object()
_ids = itertools.count(1)


class _Submitter:
    """``submit``/``map``/``run``/``options`` over one set of per-call
    settings: the pool's own, or an ``options()`` view's."""

    _pool: ProcessPool
    _timeout: float | None
    _retries: int
    _retry_timeouts: bool
    _signal: Any

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> PoolFuture:
        """Run ``fn(*args, **kwargs)`` in a worker; every keyword goes to
        ``fn``.  Never blocks: past ``max_queue`` it raises ``QueueFullError``."""
        pool = self._pool
        scheduler = pool._scheduler
        scheduler.check_open()
        future = PoolFuture(scheduler.condition)
        if pool._config.json:
            if kwargs:
                raise TypeError("json workers take positional arguments only")
            if not isinstance(fn, str):
                raise TypeError(f"a json worker's function is named by a str, not {fn!r}")
            payload: Any = (fn, list(args))
            try:
                encode_json({"id": 0, "fn": fn, "args": payload[1]})
            except Exception as exc:  # noqa: BLE001 - fails its future, as an unpicklable argument does
                future.set_exception(exc)
                return future
            tid = next(_ids)
        else:
            tid = next(_ids)
            try:
                # The whole frame the worker reads (_worker.py): made once, here, where an
                # argument that cannot be pickled fails its own future.
                payload = task_frame(tid, _pickle_c.dumps((fn, args, kwargs), protocol=PICKLE_PROTOCOL))
            except Exception as exc:  # noqa: BLE001
                future.set_exception(exc)
                return future
        task = Task(tid, future, payload, self._timeout, self._retries, self._retry_timeouts, self._signal)
        future._scheduler = scheduler
        future._task = task
        scheduler.put(task)
        return future

    def map(
        self,
        fn: Any,
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """``fn`` over the zipped ``iterables``; results in input order.
        ``chunksize`` sends items in batches; ``buffersize`` bounds the
        tasks submitted and not yet yielded (so an endless iterable works)."""
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be an int >= 1")
        if buffersize is not None and (isinstance(buffersize, bool) or not isinstance(buffersize, int) or buffersize < 1):
            raise ValueError("buffersize must be None or an int >= 1")
        if chunksize > 1 and self._pool._config.json:
            raise ValueError("json workers take chunksize=1")
        limit = positive(timeout, "timeout", allow_zero=True)
        deadline = None if limit is None else time.monotonic() + limit
        items: Iterator[tuple[Any, ...]] = zip(*iterables)
        call: Any = fn
        if chunksize > 1:
            items = _chunks(items, chunksize)
            call = partial(apply_chunk, fn)
        if buffersize is None:
            futures = deque(self.submit(call, *args) for args in items)
        else:
            futures = deque(self.submit(call, *args) for args in itertools.islice(items, buffersize))
        return _results(self, futures, items, call, deadline, chunksize > 1, buffersize is not None)

    async def run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """``await pool.run(fn, ...)``: from any asyncio loop.  Cancelling
        the awaiting task aborts the task (its worker is killed if it runs)."""
        import asyncio

        future = self.submit(fn, *args, **kwargs)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.abort("the awaiting asyncio task was cancelled")
            raise

    def options(
        self,
        *,
        timeout: Any = _UNSET,
        retries: Any = _UNSET,
        signal: Any = _UNSET,
        retry_timeouts: Any = _UNSET,
    ) -> PoolOptions:
        """An Executor over the same pool with other per-task settings:
        ``timeout`` (seconds, None: none), ``retries`` after a crash,
        ``signal`` (an ``AbortSignal`` that aborts every task submitted
        through the view), ``retry_timeouts`` (a timed-out task is retried
        too, within ``retries``)."""
        return PoolOptions(
            self._pool,
            self._timeout if timeout is _UNSET else positive(timeout, "timeout"),
            self._retries if retries is _UNSET else _retries(retries),
            self._signal if signal is _UNSET else signal,
            self._retry_timeouts if retry_timeouts is _UNSET else bool(retry_timeouts),
        )


def _retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"retries must be an int >= 0, not {value!r}")
    return value


def _chunks(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[tuple[Any, ...]]:
    while chunk := tuple(itertools.islice(items, size)):
        yield (chunk,)


def _results(
    submitter: _Submitter,
    futures: deque[PoolFuture],
    items: Iterator[tuple[Any, ...]],
    call: Any,
    deadline: float | None,
    chunked: bool,
    buffered: bool,
) -> Iterator[Any]:
    try:
        while futures:
            future = futures.popleft()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            result = future.result(left)
            if buffered:
                nxt = next(items, None)
                if nxt is not None:
                    futures.append(submitter.submit(call, *nxt))
            if chunked:
                yield from result
            else:
                yield result
    finally:
        for future in futures:
            future.cancel()


class PoolOptions(_Submitter, Executor):
    """``pool.options(...)``: the same pool, other per-task settings.  It
    does not own the pool: its ``shutdown`` does nothing."""

    def __init__(self, pool: ProcessPool, timeout: float | None, retries: int, signal: Any, retry_timeouts: bool) -> None:
        self._pool = pool
        self._timeout = timeout
        self._retries = retries
        self._signal = signal
        self._retry_timeouts = retry_timeouts

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass

    def __repr__(self) -> str:
        return f"<PoolOptions timeout={self._timeout} retries={self._retries} of {self._pool!r}>"


class ProcessPool(_Submitter, EventEmitter, Executor):
    """A pool of worker processes on ``cp.fork()`` that survives crashes,
    times out tasks and recycles workers.  See docs/pool.md.

    Events (on the pool's thread): ``'workerCreate'(pid)``,
    ``'workerReady'(pid)``, ``'workerExit'(pid, exit_code, signal_code)``,
    ``'taskRetry'(future, error)``, ``'taskTimeout'(future, error)``,
    ``'needsDrain'`` (tasks wait for a worker), ``'drain'`` (none waits
    any more), ``'error'(exc)`` (a listener raised)."""

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        min_workers: int = 0,
        idle_timeout: float | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        task_timeout: float | None = None,
        kill_signal: str | int = "SIGTERM",
        force_kill_after: float | None = 2.0,
        max_retries: int = 0,
        max_tasks_per_worker: int | None = None,
        max_memory_per_worker: int | None = None,
        max_worker_age: float | None = None,
        prefetch: int = 1,
        max_queue: int | None = None,
        serialization: str = "pickle",
        module: Any = None,
        exec_path: Any = None,
        exec_argv: Iterable[str] = (),
        env: Any = None,
        cwd: Any = None,
        warm_start: bool = False,
    ) -> None:
        EventEmitter.__init__(self)
        config: PoolConfig = make_config(
            max_workers, min_workers, idle_timeout, initializer, initargs, task_timeout, kill_signal,
            force_kill_after, max_retries, max_tasks_per_worker, max_memory_per_worker, max_worker_age,
            prefetch, max_queue, serialization, module, exec_path, exec_argv, env, cwd, warm_start,
        )  # fmt: skip
        self._config = config
        self._pool = self
        self._timeout = config.task_timeout
        self._retries = config.max_retries
        self._retry_timeouts = False
        self._signal = None
        if not config.json:
            _alias_main()
        self._scheduler = Scheduler(self, config)
        _at_exit(self)

    @property
    def max_workers(self) -> int:
        return self._config.max_workers

    @property
    def pids(self) -> list[int]:
        """The pids of the workers alive now (starting, ready or retiring)."""
        return [w.pid for w in list(self._scheduler.workers) if w.pid is not None and w.state != "dead"]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what was submitted (unless ``cancel_futures``: queued tasks
        are cancelled, and done), then let every worker go.  ``wait``:
        return once every worker has exited."""
        scheduler = self._scheduler
        with scheduler.lock:
            already = scheduler.closed
            scheduler.closed = True
        if not (already and not cancel_futures):
            scheduler.post(scheduler.shutdown, cancel_futures)
        if wait and not scheduler.on_loop_thread():
            scheduler.thread.join()

    def terminate_workers(self) -> None:
        """Send every worker ``SIGTERM`` (their groups) and break the pool:
        pending futures fail with ``BrokenProcessPool``."""
        self._stop_workers("SIGTERM")

    def kill_workers(self) -> None:
        """``terminate_workers`` with ``SIGKILL``."""
        self._stop_workers("SIGKILL")

    def _stop_workers(self, sig: str) -> None:
        import signal as _signal

        scheduler = self._scheduler
        err = PoolBrokenError(f"the pool's workers were {'terminated' if sig == 'SIGTERM' else 'killed'}")
        scheduler.post(scheduler.break_pool, err, getattr(_signal, sig))
        if not scheduler.on_loop_thread():
            scheduler.thread.join()

    def __enter__(self) -> ProcessPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        s = self._scheduler
        state = "broken" if s.broken is not None else "shut down" if s.closed else "running"
        return f"<ProcessPool max_workers={self._config.max_workers} {state} workers={len(s.workers)}>"


def _alias_main() -> None:
    """Classes defined in the main script come back from workers as
    ``__mp_main__.X`` (the name the worker imported it under)."""
    import sys

    main = sys.modules.get("__main__")
    if main is not None:
        sys.modules.setdefault("__mp_main__", main)


_live: weakref.WeakSet[ProcessPool] = weakref.WeakSet()
_registered = False
_register_lock = threading.Lock()


def _at_exit(pool: ProcessPool) -> None:
    """At interpreter exit a pool nobody shut down is shut down (its work
    finished, its workers let go), before threads are joined -- as
    concurrent.futures does for its own executors."""
    global _registered
    _live.add(pool)
    with _register_lock:
        if _registered:
            return
        _registered = True
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_shutdown_all)
    else:  # pragma: no cover - Pythons without it
        import atexit

        atexit.register(_shutdown_all)


def _shutdown_all() -> None:
    for pool in list(_live):
        try:
            pool.shutdown(wait=True)
        except Exception:  # noqa: BLE001 - exit goes on
            pass
