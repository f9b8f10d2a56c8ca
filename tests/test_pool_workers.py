"""cp.ProcessPool: what happens to workers -- crashes, retries, timeouts,
recycling, start failures, and that nothing is left behind (docs/pool.md).

No timing is asserted: the bounds only turn a hang into a failure.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from childproc._pool import PoolBrokenError, ProcessPool, TaskTimeoutError, WorkerCrashedError
from pool_helpers import FIX, gone, reaped, wait_until

import pool_tasks as T  # noqa: E402

WATCHDOG_SECONDS = 90
pytestmark = pytest.mark.usefixtures("watchdog")


# ------------------------------------------------------------------ crashes


def test_crash_of_a_busy_worker_fails_only_its_task():
    with ProcessPool(2) as p:
        others = [p.submit(T.sleep_then, 0.05, i) for i in range(6)]
        doomed = p.submit(T.die, signal.SIGKILL)
        with pytest.raises(WorkerCrashedError) as info:
            doomed.result(30)
        err = info.value
        assert isinstance(err, cf.process.BrokenProcessPool)  # existing except clauses match
        assert err.signal_code == "SIGKILL" and err.exit_code is None
        assert err.pid == doomed.worker_pid and err.attempts == 1
        assert [f.result(30) for f in others] == list(range(6))
        assert p.submit(T.inc, 1).result(30) == 2  # not broken


def test_crash_reports_exit_code_and_stderr_tail():
    with ProcessPool(1) as p:
        with pytest.raises(WorkerCrashedError) as info:
            p.submit(T.say_and_exit, "last words before the end", 9).result(30)
        assert info.value.exit_code == 9 and info.value.signal_code is None
        assert "last words before the end" in info.value.stderr
        assert "last words before the end" in str(info.value)


def test_idle_worker_death_fails_nothing_and_is_replaced():
    exits = []
    with ProcessPool(2, min_workers=2) as p:
        p.on("workerExit", lambda pid, code, sig: exits.append((pid, sig)))
        wait_until(lambda: len(p.pids) == 2)
        first = p.submit(T.pid).result(30)
        victim = [pid for pid in p.pids][0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: (victim, "SIGKILL") in exits)
        wait_until(lambda: len(p.pids) == 2 and victim not in p.pids)
        assert [p.submit(T.inc, i).result(30) for i in range(4)] == [1, 2, 3, 4]
        assert first


def test_prefetched_tasks_requeue_without_spending_an_attempt():
    with ProcessPool(1, prefetch=4) as p:
        doomed = p.submit(T.die, signal.SIGKILL)
        behind = [p.submit(T.inc, i) for i in range(3)]
        with pytest.raises(WorkerCrashedError):
            doomed.result(30)
        assert [f.result(30) for f in behind] == [1, 2, 3]
        assert [f.attempts for f in behind] == [1, 1, 1]
        assert all(f.worker_pid != doomed.worker_pid for f in behind)


def test_retry_requeues_on_a_fresh_worker(tmp_path):
    retried = []
    with ProcessPool(1, max_retries=1) as p:
        p.on("taskRetry", lambda fut, err: retried.append(err))
        fut = p.submit(T.crash_once, str(tmp_path / "marker"))
        assert fut.result(30) == "second time"
        assert fut.attempts == 2
        assert len(retried) == 1 and isinstance(retried[0], WorkerCrashedError)


def test_retries_run_out():
    with ProcessPool(1, max_retries=2) as p:
        with pytest.raises(WorkerCrashedError) as info:
            p.submit(T.die, signal.SIGKILL).result(30)
        assert info.value.attempts == 3


# ------------------------------------------------------------------ timeouts


def test_timeout_kills_the_group_even_with_a_grandchild_holding_pipes(tmp_path):
    pidfile = tmp_path / "grandchild"
    timeouts = []
    with ProcessPool(1, task_timeout=0.5, force_kill_after=0.5) as p:
        p.on("taskTimeout", lambda fut, err: timeouts.append(err))
        fut = p.submit(T.grandchild_then_hang, str(pidfile))
        with pytest.raises(TaskTimeoutError) as info:
            fut.result(30)
        assert isinstance(info.value, TimeoutError)
        assert info.value.timeout == 0.5 and info.value.pid == fut.worker_pid
        assert len(timeouts) == 1
        wait_until(pidfile.exists)
        grandchild = int(pidfile.read_text())
        wait_until(lambda: gone(grandchild))  # its group was killed
        wait_until(lambda: gone(fut.worker_pid))
        # A replacement serves the next task; timeouts are not retried by default.
        assert fut.attempts == 1
        assert p.submit(T.inc, 1).result(30) == 2


def test_timeout_counts_from_the_start_in_the_worker_not_the_queue():
    with ProcessPool(1, task_timeout=1.0) as p:
        # Each task takes well under its timeout but the three queue up
        # longer than it: none may time out.
        futs = [p.submit(T.sleep_then, 0.4, i) for i in range(3)]
        assert [f.result(30) for f in futs] == [0, 1, 2]


def test_timeout_retry_when_asked(tmp_path):
    with ProcessPool(1) as p:
        view = p.options(timeout=0.3, retries=1, retry_timeouts=True)
        fut = view.submit(T.sleep_then, 60)
        with pytest.raises(TaskTimeoutError):
            fut.result(30)
        assert fut.attempts == 2


# ------------------------------------------------------------------ recycling


def test_gh_115634_many_tasks_with_max_tasks_per_worker():
    # cpython gh-115634: PPE hangs with max_tasks_per_child on 3.11.
    with ProcessPool(2, max_tasks_per_worker=50) as p:
        futs = [p.submit(T.pid) for _ in range(2000)]
        pids = [f.result(60) for f in futs]
    counts = {}
    for pid in pids:
        counts[pid] = counts.get(pid, 0) + 1
    assert len(pids) == 2000
    assert max(counts.values()) <= 50
    assert len(counts) >= 40


def test_recycle_by_memory():
    with ProcessPool(1, max_memory_per_worker=200 * 1024 * 1024) as p:
        small = p.submit(T.grow, 1024).result(30)
        assert p.submit(T.pid).result(30) == small  # under the limit: kept
        big = p.submit(T.grow, 300 * 1024 * 1024).result(30)
        assert big == small
        assert p.submit(T.pid).result(30) != big  # recycled between tasks


def test_recycle_by_age_starts_the_replacement_first():
    created = []
    with ProcessPool(1, max_worker_age=0.2) as p:
        p.on("workerCreate", created.append)
        first = p.submit(T.pid).result(30)
        wait_until(lambda: len(created) >= 2)
        assert p.submit(T.pid).result(30) != first


def test_idle_timeout_keeps_min_workers():
    with ProcessPool(3, min_workers=1, idle_timeout=0.1) as p:
        futs = [p.submit(T.sleep_then, 0.2, i) for i in range(3)]
        [f.result(30) for f in futs]
        wait_until(lambda: len(p.pids) == 1)
        assert p.submit(T.inc, 1).result(30) == 2


# ------------------------------------------------------------------ broken pool


def test_three_start_failures_break_the_pool():
    p = ProcessPool(1, exec_path="/nonexistent/python")
    fut = p.submit(T.inc, 1)
    with pytest.raises(PoolBrokenError) as info:
        fut.result(30)
    assert isinstance(info.value, cf.process.BrokenProcessPool)
    assert "3 workers in a row failed to start" in str(info.value)
    with pytest.raises(PoolBrokenError):
        p.submit(T.inc, 2)
    p.shutdown()


def test_failing_initializer_breaks_the_pool_with_its_stderr():
    p = ProcessPool(1, initializer=T.init_fail)
    with pytest.raises(PoolBrokenError) as info:
        p.submit(T.inc, 1).result(30)
    assert "initializer refuses" in info.value.stderr
    p.shutdown()


def test_terminate_workers_fails_pending_futures(tmp_path):
    p = ProcessPool(1)
    running = p.submit(T.wait_for_file, str(tmp_path / "never"))
    wait_until(running.running)
    queued = p.submit(T.inc, 1)
    pid = running.worker_pid
    p.terminate_workers()
    for f in (running, queued):
        with pytest.raises(cf.process.BrokenProcessPool):
            f.result(30)
    wait_until(lambda: reaped(pid))
    with pytest.raises(cf.process.BrokenProcessPool):
        p.submit(T.inc, 1)


# ------------------------------------------------------------------ nothing left behind


def test_nothing_left_after_shutdown():
    p = ProcessPool(3, min_workers=3)
    pids = {p.submit(T.pid).result(30)}
    wait_until(lambda: len(p.pids) == 3)
    pids |= set(p.pids)
    p.shutdown(wait=True)
    assert all(reaped(pid) for pid in pids)
    assert not p.pids


def _script(tmp_path, body):
    path = tmp_path / "main_script.py"
    path.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIX), *sys.path])}
    return path, env


def test_nothing_left_at_interpreter_exit_without_shutdown(tmp_path):
    path, env = _script(
        tmp_path,
        """
        from childproc._pool import ProcessPool
        import pool_tasks as T
        pool = ProcessPool(2, min_workers=2)
        pool.submit(T.inc, 1).result(30)
        print(" ".join(map(str, pool.pids)), flush=True)
        """,
    )
    out = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pids = [int(x) for x in out.stdout.split()]
    assert len(pids) == 2
    wait_until(lambda: all(gone(pid) for pid in pids))


def test_nothing_left_when_the_parent_is_sigkilled(tmp_path):
    path, env = _script(
        tmp_path,
        """
        import time
        from childproc._pool import ProcessPool
        import pool_tasks as T
        pool = ProcessPool(2, min_workers=2)
        pool.submit(T.inc, 1).result(30)
        while len(pool.pids) < 2:
            time.sleep(0.01)
        print(" ".join(map(str, pool.pids)), flush=True)
        time.sleep(60)
        """,
    )
    proc = subprocess.Popen([sys.executable, str(path)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in proc.stdout.readline().split()]
        assert len(pids) == 2
        proc.kill()
        proc.wait(30)
        wait_until(lambda: all(gone(pid) for pid in pids))
    finally:
        proc.kill()
        proc.stdout.close()


def test_functions_from_the_parents_main_script(tmp_path):
    path, env = _script(
        tmp_path,
        """
        from childproc._pool import ProcessPool

        print("module body ran", flush=True)

        def triple(x):
            return 3 * x

        class Box:
            def __init__(self, v):
                self.v = v

        def boxed(x):
            return Box(x)

        if __name__ == "__main__":
            with ProcessPool(2) as pool:
                print(list(pool.map(triple, [1, 2, 3])), pool.submit(boxed, 7).result(30).v, flush=True)
        """,
    )
    out = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The workers imported the script (its body ran there, printing to the
    # same stdout) without running its __main__ block.
    assert lines.count("[3, 6, 9] 7") == 1
    assert lines[0] == "module body ran"


def test_submit_from_many_threads():
    with ProcessPool(2, prefetch=8) as p:
        results = []
        lock = threading.Lock()

        def work(base):
            got = [p.submit(T.inc, base + i).result(30) for i in range(50)]
            with lock:
                results.extend(got)

        threads = [threading.Thread(target=work, args=(1000 * k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == sorted(1000 * k + i + 1 for k in range(4) for i in range(50))


def test_worker_reader_spins_then_rests_then_sleeps(monkeypatch):
    # The worker's channel reader (_worker._Reader): it polls for the next
    # task for a while after each one, rests after misses in a row, and
    # always gets what arrives, spinning or asleep.
    import socket

    from childproc._pool import _worker

    monkeypatch.setattr(_worker, "_SPIN", 0.0005)
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        reader = _worker._Reader(b.fileno())
        space = [memoryview(bytearray(64))]
        a.send(b"x")
        assert reader.readv(space) == 1 and reader.misses == 0
        for i in range(4):  # nothing comes while it spins: a miss each, then it sleeps until data
            threading.Timer(0.02, a.send, (b"y",)).start()
            assert reader.readv(space) == 1
        assert reader.rest == 64 and reader.rest_len == 128  # resting now
        a.send(b"z")
        assert reader.readv(space) == 1 and reader.rest == 63
        monkeypatch.setattr(_worker, "_SPIN", None)  # off: a plain read
        b.setblocking(True)
        a.send(b"w")
        assert reader.readv(space) == 1
    finally:
        a.close()
        b.close()
