"""cp.ProcessPool: the Executor contract, results and errors, map, options,
cancel/abort and the asyncio entry points (docs/pool.md).

One pool is shared by the tests that only need a working pool; tests of a
setting, or that kill workers, make their own.  No timing is asserted: the
bounds only turn a hang into a failure (speed is benchmarks/pool_workloads.py's).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import os
import pickle
import signal
import threading

import pytest

import childproc as cp
from childproc._pool import PoolFuture, ProcessPool, QueueFullError, RemoteError
from pool_helpers import wait_until

import pool_tasks as T  # noqa: E402  (tests/fixtures/pool, put on sys.path by pool_helpers)

WATCHDOG_SECONDS = 60
pytestmark = pytest.mark.usefixtures("watchdog")


@pytest.fixture(scope="module")
def pool():
    p = ProcessPool(2)
    yield p
    p.shutdown()


def test_submit_result_and_future_type(pool):
    fut = pool.submit(T.inc, 41)
    assert isinstance(fut, PoolFuture) and isinstance(fut, cf.Future)
    assert fut.result(20) == 42
    assert fut.attempts == 1
    assert fut.worker_pid in pool.pids


def test_keywords_all_go_to_the_function(pool):
    # timeout= and retries= are the view's settings in options(); submit() forwards them.
    assert pool.submit(T.add, 1, b=2, timeout=3, retries=4).result(20) == (3, 3, 4)


def test_workers_get_the_parents_sys_path(pool):
    assert pool.submit(T.get_path).result(20) == list(__import__("sys").path)


def test_exception_crosses_with_remote_traceback(pool):
    fut = pool.submit(T.fail, "nope")
    with pytest.raises(ValueError, match="nope") as info:
        fut.result(20)
    assert "in fail" in str(info.value.__cause__)  # where it was raised, in the worker


def test_coroutine_function_runs_to_completion(pool):
    assert pool.submit(T.coro_inc, 1).result(20) == 2


def test_unpicklable_argument_fails_its_future_at_submit(pool):
    fut = pool.submit(T.inc, lambda: 1)
    assert fut.done()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        fut.result(0)
    assert pool.submit(T.inc, 1).result(20) == 2


def test_unpicklable_result_fails_only_its_future(pool):
    with pytest.raises(RemoteError, match="cannot be pickled") as info:
        pool.submit(T.return_unpicklable).result(20)
    assert info.value.type_name
    assert pool.submit(T.inc, 2).result(20) == 3


def test_exception_that_cannot_be_rebuilt_is_a_remote_error(pool):
    with pytest.raises(RemoteError) as info:
        pool.submit(T.raise_unpicklable).result(20)
    assert info.value.type_name.endswith("NeedsTwo")
    assert info.value.message == "x/y"
    assert "raise_unpicklable" in info.value.traceback_text


def test_result_that_cannot_be_unpickled_here_is_a_remote_error(pool):
    with pytest.raises(RemoteError, match="cannot be unpickled"):
        pool.submit(T.return_unloadable).result(20)
    assert pool.submit(T.inc, 3).result(20) == 4


def test_map_keeps_input_order(pool):
    xs = list(range(200))
    assert list(pool.map(T.sleep_then, [0.001 * (i % 3) for i in xs], xs)) == xs
    assert list(pool.map(T.inc, xs, chunksize=7)) == [x + 1 for x in xs]


def test_map_buffersize_bounds_what_is_submitted(pool):
    pulled = []

    def numbers():
        for i in itertools.count():
            pulled.append(i)
            yield i

    results = pool.map(T.inc, numbers(), buffersize=4)
    for k in range(20):
        assert next(results) == k + 1
        # at most buffersize items submitted and not yet yielded
        assert len(pulled) <= k + 1 + 4
    results.close()


def test_map_timeout_raises(pool):
    results = pool.map(T.sleep_then, [5], timeout=0.05)
    with pytest.raises(TimeoutError):
        next(results)


def test_run_in_executor(pool):
    async def main():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(pool, T.inc, i) for i in range(10)))

    assert asyncio.run(main()) == list(range(1, 11))


def test_await_run_from_loops_on_other_threads(pool):
    results = []

    def in_thread(n):
        async def main():
            return await pool.run(T.add, n, b=1)

        results.append(asyncio.run(main())[0])

    threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3, 4]


def test_options_view_is_an_executor(pool):
    view = pool.options(timeout=30, retries=2)
    assert isinstance(view, cf.Executor)
    assert view.submit(T.add, 1, timeout="kw").result(20) == (1, "kw", None)
    assert list(view.map(T.inc, [1, 2])) == [2, 3]
    view.shutdown()  # the view does not own the pool
    assert pool.submit(T.inc, 0).result(20) == 1


def test_validation_before_anything_starts():
    with pytest.raises(ValueError):
        ProcessPool(0)
    with pytest.raises(ValueError):
        ProcessPool(2, min_workers=3)
    with pytest.raises(ValueError):
        ProcessPool(2, serialization="json")  # needs module=
    with pytest.raises(TypeError):
        ProcessPool(2, task_timeout="1")
    with pytest.raises(ValueError):
        ProcessPool(2, kill_signal="SIGNOPE")


def test_cancel_is_the_executor_contract_and_abort_kills():
    with ProcessPool(1) as p:
        gate = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"cp-pool-gate-{os.getpid()}")
        try:
            running = p.submit(T.wait_for_file, gate, "ran")
            wait_until(lambda: running.running())
            queued = p.submit(T.inc, 1)
            assert queued.cancel() is True
            assert queued.cancelled()
            assert running.cancel() is False  # running: the Executor contract
            first_pid = running.worker_pid
            running.abort("stop")
            with pytest.raises(cp.AbortError) as info:
                running.result(20)
            assert info.value.cause == "stop"
            # The worker was killed and replaced: the pool goes on.
            after = p.submit(T.pid)
            assert after.result(20) != first_pid
            # cf.wait counts the cancelled one as done.
            done, not_done = cf.wait([queued, running, after], timeout=20)
            assert not not_done
        finally:
            if os.path.exists(gate):
                os.unlink(gate)


def test_abort_signal_through_options(tmp_path):
    controller = cp.AbortController()
    with ProcessPool(1) as p:
        view = p.options(signal=controller.signal)
        fut = view.submit(T.wait_for_file, str(tmp_path / "never"))
        wait_until(fut.running)
        queued = view.submit(T.inc, 1)
        controller.abort("enough")
        for f in (fut, queued):
            with pytest.raises(cp.AbortError):
                f.result(20)
        assert p.submit(T.inc, 1).result(20) == 2


def test_shutdown_cancel_futures_leaves_them_done(tmp_path):
    p = ProcessPool(1)
    blocker = p.submit(T.wait_for_file, str(tmp_path / "go"), "ok")
    wait_until(blocker.running)
    queued = [p.submit(T.inc, i) for i in range(5)]
    p.shutdown(wait=False, cancel_futures=True)
    wait_until(lambda: all(f.cancelled() for f in queued))
    (tmp_path / "go").touch()
    done, not_done = cf.wait(queued + [blocker], timeout=20)
    assert not not_done  # PPE's cancelled futures are never counted here
    assert blocker.result() == "ok"
    p.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        p.submit(T.inc, 1)


def test_queue_full_instead_of_blocking(tmp_path):
    with ProcessPool(1, max_queue=1) as p:
        blocker = p.submit(T.wait_for_file, str(tmp_path / "go"))
        wait_until(blocker.running)
        p.submit(T.inc, 1)
        with pytest.raises(QueueFullError):
            p.submit(T.inc, 2)
        (tmp_path / "go").touch()


def test_initializer_runs_in_each_worker():
    with ProcessPool(2, initializer=T.init_mark, initargs=("ready",)) as p:
        assert p.submit(T.initialized).result(20) == ["ready"]


def test_events_worker_create_and_exit():
    created, exited = [], []
    p = ProcessPool(1)
    p.on("workerCreate", created.append)
    p.on("workerExit", lambda pid, code, sig: exited.append((pid, code, sig)))
    pid = p.submit(T.pid).result(20)
    p.shutdown()
    assert created == [pid]
    assert exited == [(pid, 0, None)]


def test_listener_error_does_not_break_the_pool(capfd):
    p = ProcessPool(1)
    p.on("workerCreate", lambda pid: 1 / 0)
    assert p.submit(T.inc, 1).result(20) == 2
    p.shutdown()
    assert "ZeroDivisionError" in capfd.readouterr().err


def test_cancelled_tasks_leave_room_in_the_queue(tmp_path):
    with ProcessPool(1, max_queue=2) as p:
        blocker = p.submit(T.wait_for_file, str(tmp_path / "go"))
        wait_until(blocker.running)
        for _ in range(3):
            queued = [p.submit(T.inc, 1), p.submit(T.inc, 2)]
            assert all(f.cancel() for f in queued)
            wait_until(lambda: p._scheduler.waiting == 0)
        (tmp_path / "go").touch()
        assert blocker.result(20) is None
        assert [p.submit(T.inc, i).result(20) for i in range(3)] == [1, 2, 3]


def test_public_names():
    import childproc._pool as pool_pkg

    for name in ("ProcessPool", "PoolFuture", "PoolOptions", "WorkerCrashedError", "PoolBrokenError",
                 "TaskTimeoutError", "RemoteError", "QueueFullError"):
        assert getattr(cp, name) is getattr(pool_pkg, name)
        assert name in cp.__all__
    assert issubclass(cp.WorkerCrashedError, cf.process.BrokenProcessPool)
    assert issubclass(cp.TaskTimeoutError, TimeoutError)


def test_map_timeout_none_and_infinite_mean_no_deadline(pool):
    assert list(pool.map(T.inc, [1, 2], timeout=None)) == [2, 3]
    assert list(pool.map(T.inc, [1, 2], timeout=float("inf"))) == [2, 3]


def test_results_past_the_channels_default_message_limit_cross(pool):
    # The channel drops messages over 64 MiB by default; a pool's result is
    # the caller's own data, as with ProcessPoolExecutor.
    assert len(pool.submit(T.big, 70 * 1024 * 1024).result(60)) == 70 * 1024 * 1024


def test_pool_errors_pickle_round_trip():
    import pickle as _p

    for err in (cp.WorkerCrashedError("w", pid=1, exit_code=2, signal_code=None, attempts=3, stderr="tail"),
                cp.PoolBrokenError("b", stderr="x"), cp.TaskTimeoutError("t", timeout=1.0, pid=5),
                RemoteError("KeyError", "k", "tb"), QueueFullError("full")):
        back = _p.loads(_p.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__


# -- PoolFuture: lighter than Future() (a shared condition, lists made on use),
#    and still the whole Future contract for every way of waiting.


def test_result_timeout_on_a_pending_future_raises_timeout(pool):
    fut = pool.submit(T.sleep_then, 0.5, "late")
    with pytest.raises(cf.TimeoutError):
        fut.result(0.01)
    with pytest.raises(cf.TimeoutError):
        fut.exception(0)
    assert fut.result(20) == "late" and fut.exception(20) is None


def test_cancel_wakes_a_thread_waiting_in_result(tmp_path):
    with ProcessPool(1) as p:
        gate = str(tmp_path / "gate")
        running = p.submit(T.wait_for_file, gate, "ran")
        wait_until(lambda: running.running())
        queued = p.submit(T.inc, 1)
        outcome: list[object] = []

        def waiter() -> None:
            try:
                outcome.append(queued.result(30))
            except BaseException as exc:  # noqa: BLE001 - what result() raised is the point
                outcome.append(exc)

        t = threading.Thread(target=waiter)
        t.start()
        wait_until(lambda: queued._waiters)  # blocked in result()
        assert queued.cancel() is True
        t.join(20)
        assert not t.is_alive() and isinstance(outcome[0], cf.CancelledError)
        open(gate, "w").close()
        assert running.result(20) == "ran"


def test_each_waiter_wakes_for_its_own_future(pool):
    # Many threads each in result() of their own future, and wait()/as_completed()
    # over all of them: a pool's futures share one lock, never their wake-ups.
    futures = [pool.submit(T.sleep_then, 0.01 * (i % 5), i) for i in range(40)]
    got: dict[int, object] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, futures[i].result(30))) for i in range(40)]
    for t in threads:
        t.start()
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=30)) == list(range(40))
    done, not_done = cf.wait(futures, timeout=30, return_when=cf.ALL_COMPLETED)
    assert len(done) == 40 and not not_done
    for t in threads:
        t.join(20)
    assert got == {i: i for i in range(40)}


def test_done_callbacks_before_and_after_completion(pool):
    seen: list[object] = []
    fut = pool.submit(T.inc, 1)
    fut.add_done_callback(lambda f: seen.append(("before", f.result())))
    fut.result(20)
    wait_until(lambda: seen)
    fut.add_done_callback(lambda f: seen.append(("after", f.result())))
    assert seen == [("before", 2), ("after", 2)]


def test_a_done_future_is_freed_without_the_collector(pool):
    import gc
    import weakref

    fut = pool.submit(T.inc, 1)
    assert fut.result(20) == 2
    ref = weakref.ref(fut)
    gc.disable()
    try:
        del fut
        assert ref() is None  # no cycle through its task: reference counting frees it
    finally:
        gc.enable()


def test_a_standalone_pool_future_is_a_future():
    fut = PoolFuture()
    assert fut.set_running_or_notify_cancel() is True
    fut.set_result(5)
    assert fut.result() == 5 and fut.done() and not fut.cancelled()
    with pytest.raises(cf.InvalidStateError):
        fut.set_exception(ValueError("again"))
    failed = PoolFuture()
    failed.set_exception(KeyError("k"))
    assert isinstance(failed.exception(), KeyError)
    with pytest.raises(KeyError):
        failed.result()
    cancelled = PoolFuture()
    assert cancelled.cancel() and cancelled.set_running_or_notify_cancel() is False
    with pytest.raises(cf.CancelledError):
        cancelled.result(0)
