"""The Python side of cp.spawn(): wait(), ``with``, ``await``, asyncio streams, threads,
cp.run(), unref() at interpreter exit, unheard 'error's, leaks, 1000 children.

docs/architecture.md, "The loop": a ChildProcess belongs to the thread that created it; under a
running asyncio loop its events are delivered on that loop, otherwise on the
thread's private loop, which runs while the thread blocks on childproc
(``wait()``, iteration, ``cp.run()``) and, for the main thread, at interpreter
exit until no ref'd child or stream remains (Node's keep-alive).

Bounds on time are generous ("under a few seconds"), only there so that a
hang or a serialisation fails instead of passing slowly.  The keep-alive
cases run as ``python -c`` children (and, for the Node-defined part, the same
script under ``node``).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import sys
import threading
import time

import pytest

import childproc as cp
from nodecmp import NODE, start_node

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))

pytestmark = pytest.mark.usefixtures("watchdog")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def my_zombies() -> list[int]:
    """Pids of this process's children that are zombies (from /proc/*/stat)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0] == b"Z" and int(fields[1]) == me:
            found.append(int(entry))
    return found


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def python_child(code: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------
# wait()


def test_wait_returns_the_exit_code_and_runs_the_events_on_this_thread():
    c = cp.spawn("sh", ["-c", "echo hi; exit 7"])
    seen = []
    c.on("exit", lambda code, sig: seen.append(("exit", code, sig, threading.get_ident())))
    c.stdout.on("data", lambda d: seen.append(("data", d, threading.get_ident())))
    assert c.wait() == 7
    me = threading.get_ident()
    assert ("exit", 7, None, me) in seen and ("data", b"hi\n", me) in seen
    assert c.wait() == 7  # again: already closed


def test_wait_timeout_raises_timeout_error_and_the_child_keeps_running():
    c = cp.spawn("sleep", ["5"])
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        c.wait(timeout=0.2)
    assert time.monotonic() - t0 < 1.5
    assert c.exit_code is None and alive(c.pid)
    assert c.kill() is True
    assert c.wait(timeout=10) is None  # a signalled child has no exit code
    assert c.signal_code == "SIGTERM"


def test_wait_returns_negative_errno_for_a_spawn_failure_with_a_listener():
    c = cp.spawn("does-not-exist-xyz")
    errors = []
    c.on("error", errors.append)
    assert c.wait(timeout=10) == -2
    assert [e.code for e in errors] == ["ENOENT"]


def test_unheard_error_raises_from_wait_and_close_still_comes():
    c = cp.spawn("does-not-exist-xyz", ["a"])
    closes = []
    c.on("close", lambda *a: closes.append(a))
    with pytest.raises(cp.SpawnError) as info:
        c.wait(timeout=10)
    assert info.value.code == "ENOENT" and isinstance(info.value, FileNotFoundError)
    assert c.wait(timeout=10) == -2  # the child's state stayed whole
    assert closes == [(-2, None)]


def test_unheard_abort_error_raises_from_wait():
    c = cp.spawn("sleep", ["5"], signal=cp.AbortSignal.abort("why"))
    with pytest.raises(cp.AbortError) as info:
        c.wait(timeout=10)
    assert info.value.code == "ABORT_ERR" and info.value.cause == "why"
    assert c.wait(timeout=10) is None and c.signal_code == "SIGTERM"


# --------------------------------------------------------------------------
# with


def test_with_kills_a_running_child_and_waits_for_it():
    t0 = time.monotonic()
    with cp.spawn("sleep", ["5"]) as c:
        assert c.pid is not None and alive(c.pid)
    assert time.monotonic() - t0 < 3
    assert c.killed and c.signal_code == "SIGTERM"
    assert not alive(c.pid)  # reaped, not a zombie
    assert c.pid not in my_zombies()


def test_with_leaves_a_finished_child_alone():
    with cp.spawn("sh", ["-c", "exit 3"]) as c:
        assert c.wait(timeout=10) == 3
    assert not c.killed and c.exit_code == 3


def test_with_kills_on_an_exception_and_the_exception_propagates():
    with pytest.raises(KeyError):
        with cp.spawn("sleep", ["5"]) as c:
            raise KeyError("boom")
    assert c.killed and c.signal_code == "SIGTERM" and not alive(c.pid)


# --------------------------------------------------------------------------
# asyncio


def test_await_child_delivers_events_on_the_running_loop():
    async def main():
        loop = asyncio.get_running_loop()
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        c = cp.spawn("sh", ["-c", "sleep 0.3; echo out; exit 4"])
        seen = []
        for name in ("spawn", "exit", "close"):
            c.on(name, lambda *a, name=name: seen.append(
                (name, a, asyncio.get_running_loop() is loop, threading.get_ident())))
        c.stdout.on("data", lambda d: seen.append(("data", d)))
        code = await c
        stop = True
        await tick_task
        return code, seen, ticks, c

    code, seen, ticks, c = asyncio.run(main())
    me = threading.get_ident()
    assert code == 4
    assert [s[0] for s in seen if s[0] != "data"] == ["spawn", "exit", "close"]
    assert all(s[2] is True and s[3] == me for s in seen if s[0] != "data")
    assert ("data", b"out\n") in seen
    assert ticks >= 5  # the loop kept running other tasks while the child ran
    with pytest.raises(RuntimeError):
        c.wait()  # the loop that owned it is gone; never a silent hang
        raise RuntimeError("wait() returned")  # pragma: no cover


def test_await_many_children_concurrently():
    async def main():
        children = [cp.spawn("sh", ["-c", f"sleep 0.3; exit {i % 5}"]) for i in range(40)]
        t0 = time.monotonic()
        codes = await asyncio.gather(*children)
        return codes, time.monotonic() - t0

    codes, took = asyncio.run(main())
    assert codes == [i % 5 for i in range(40)]
    assert took < 5  # concurrent, not 40 x 0.3 s


def test_async_stream_iteration_lines_and_read():
    async def main():
        c = cp.spawn("sh", ["-c", "echo one; sleep 0.1; echo two; printf three"])
        chunks = [chunk async for chunk in c.stdout]
        code1 = await c
        d = cp.spawn("sh", ["-c", "printf 'a\\nb'; sleep 0.1; printf 'b\\nccc'"])
        lines = [line async for line in d.stdout.lines()]
        await d
        e = cp.spawn("sh", ["-c", "head -c 1000000 /dev/zero; echo err >&2"])
        err = []
        e.stderr.on("data", err.append)
        out = await e.stdout.aread()
        code3 = await e
        return chunks, code1, lines, out, b"".join(err), code3

    chunks, code1, lines, out, err, code3 = asyncio.run(main())
    assert b"".join(chunks) == b"one\ntwo\nthree" and all(isinstance(c, bytes) for c in chunks)
    assert code1 == 0 and code3 == 0
    assert lines == [b"a\n", b"bb\n", b"ccc"]
    assert out == bytes(1000000) and err == b"err\n"


def test_async_stdin_write_and_drain():
    async def main():
        c = cp.spawn("cat")
        drained = asyncio.Event()
        c.stdin.on("drain", drained.set)
        falses = 0

        async def reader():  # cat's output must be read meanwhile, or both sides block
            return sum([len(chunk) async for chunk in c.stdout])

        read_task = asyncio.create_task(reader())
        for i in range(64):
            if not c.stdin.write(bytes([i]) * 65536):
                falses += 1
                await drained.wait()
                drained.clear()
        c.stdin.end()
        return await read_task, await c, falses > 0

    assert asyncio.run(main()) == (64 * 65536, 0, True)


def test_await_a_child_spawned_outside_the_loop_is_refused_clearly():
    c = cp.spawn("true")

    async def main():
        return await c

    with pytest.raises(RuntimeError, match="outside the running asyncio loop"):
        asyncio.run(main())
    assert c.wait(timeout=10) == 0


# --------------------------------------------------------------------------
# threads


def test_spawning_from_several_threads_each_thread_owns_its_children():
    results: dict = {}
    errors: list = []
    barrier = threading.Barrier(8)

    def worker(n):
        try:
            barrier.wait()
            me = threading.get_ident()
            out = []
            for i in range(15):
                c = cp.spawn("sh", ["-c", 'echo "$0"; exit $1', f"t{n}-{i}", str(i % 3)])
                got = []
                c.stdout.on("data", lambda d, got=got: got.append((d, threading.get_ident())))
                c.on("exit", lambda *a, got=got: got.append(("exit", threading.get_ident())))
                code = c.wait(timeout=20)
                assert all(tid == me for _, tid in got), "an event ran on another thread"
                out.append((code, b"".join(d for d, _ in got if d != "exit")))
            results[n] = out
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append((n, e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for n in range(8):
        assert results[n] == [(i % 3, f"t{n}-{i}\n".encode()) for i in range(15)]


def test_a_child_cannot_be_waited_from_another_thread():
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("c", cp.spawn("sleep", ["0.2"])))
    t.start()
    t.join()
    c = box["c"]
    with pytest.raises(RuntimeError):
        c.wait(timeout=5)
    # The owning thread is gone, so the child's events cannot be delivered
    # (nobody runs that loop), but it must not become a zombie: childproc's
    # orphan reaper takes it over when the thread ends (tests/test_orphans.py).
    os.kill(c.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{c.pid}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{c.pid}")


# --------------------------------------------------------------------------
# cp.run()


def test_run_drives_the_loop_until_nothing_is_referenced():
    seen = []
    for i in range(5):
        c = cp.spawn("sh", ["-c", f"sleep 0.{i}; echo {i}"])
        c.stdout.on("data", lambda d: seen.append(d))
        c.on("close", lambda code, sig, i=i: seen.append(("close", i, code)))
    t0 = time.monotonic()
    cp.run()
    assert time.monotonic() - t0 < 5
    assert sorted(x for x in seen if isinstance(x, bytes)) == [f"{i}\n".encode() for i in range(5)]
    assert sorted(x for x in seen if isinstance(x, tuple)) == [("close", i, 0) for i in range(5)]


def test_run_with_nothing_to_do_returns_at_once():
    t0 = time.monotonic()
    cp.run()
    assert time.monotonic() - t0 < 1


def test_run_returns_with_an_unrefd_child_still_running():
    c = cp.spawn("sleep", ["5"], stdio="ignore")
    c.unref()
    t0 = time.monotonic()
    cp.run()
    assert time.monotonic() - t0 < 1
    assert alive(c.pid)
    c.ref()
    c.kill()
    cp.run()  # ref'd again: run() now waits for it
    assert c.signal_code == "SIGTERM"


# --------------------------------------------------------------------------
# keep-alive at interpreter exit, compared with node


_KEEPALIVE = {
    # name: (python, javascript, node/childproc should wait for the child)
    "ignore_unref": ("c = cp.spawn('sleep', ['5'], stdio='ignore'); c.unref()",
                     "const c = cp.spawn('sleep', ['5'], {stdio: 'ignore'}); c.unref();", False),
    "detached_unref": ("c = cp.spawn('sleep', ['5'], stdio='ignore', detached=True); c.unref()",
                       "const c = cp.spawn('sleep', ['5'], {stdio: 'ignore', detached: true}); c.unref();",
                       False),
    "ignore_ref": ("c = cp.spawn('sleep', ['2'], stdio='ignore')",
                   "const c = cp.spawn('sleep', ['2'], {stdio: 'ignore'});", True),
    # Node: unref() does not unref the stdio pipes, so the parent still waits
    "pipes_unref": ("c = cp.spawn('sleep', ['2']); c.unref()",
                    "const c = cp.spawn('sleep', ['2']); c.unref();", True),
}


def test_unref_lets_the_interpreter_exit_like_node():
    procs = {}
    for name, (py, js, _) in _KEEPALIVE.items():
        procs[("py", name)] = (time.monotonic(), python_child(
            f"import childproc as cp, sys\n{py}\nprint(c.pid, flush=True)"))
        if NODE is not None:
            procs[("node", name)] = (time.monotonic(), start_node(
                f"const cp = require('child_process');\n{js}\nconsole.log(c.pid);",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    took, pids = {}, {}
    for key, (t0, p) in procs.items():
        out, err = p.communicate(timeout=30)
        took[key] = time.monotonic() - t0
        assert p.returncode == 0, (key, err)
        pids[key] = int(out.split()[0])
    leftovers = [pid for pid in pids.values() if alive(pid)]
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    results = {}
    for (side, name), t in took.items():
        waited = t >= 1.8  # the 2 s sleep was waited for (5 s ones: a parent waiting would take 5)
        results.setdefault(name, {})[side] = waited
        if not _KEEPALIVE[name][2]:
            # an unref'd child is not killed when the parent exits, nor waited for
            assert t < 3, (side, name, t)
            assert pids[(side, name)] in leftovers, f"{side} {name}: the child died with its parent"
    problems = {name: r for name, r in results.items()
                if r["py"] != _KEEPALIVE[name][2] or r.get("node", _KEEPALIVE[name][2]) != _KEEPALIVE[name][2]}
    assert not problems, f"waited for the child? expected {({n: v[2] for n, v in _KEEPALIVE.items()})}, got {results}"


# --------------------------------------------------------------------------
# leaks and scale


@pytest.fixture
def nofile(request):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_no_fd_or_zombie_leak_after_2000_async_spawns():
    cp.run()
    base_fds = set(os.listdir("/proc/self/fd"))
    base_zombies = set(my_zombies())  # left by an earlier failing test, if any
    done = 0
    for batch in range(40):
        children = [cp.spawn("true") for _ in range(50)]
        for c in children:
            assert c.wait(timeout=20) == 0
            done += 1
        if batch == 0:
            assert set(my_zombies()) <= base_zombies
    assert done == 2000
    cp.run()
    leaked = set(os.listdir("/proc/self/fd")) - base_fds
    assert len(leaked) <= 1, {fd: _readlink(fd) for fd in leaked}  # listdir's own fd may differ
    assert set(my_zombies()) <= base_zombies


def test_no_fd_or_zombie_leak_with_streams_errors_and_kills():
    """A mix: read output, write stdin, kill, spawn failures, handover pipelines."""
    cp.run()
    base_fds = set(os.listdir("/proc/self/fd"))
    base_zombies = set(my_zombies())
    for i in range(60):
        a = cp.spawn("sh", ["-c", "echo x; cat"])
        a.stdin.write(b"data\n")
        a.stdin.end()
        b = cp.spawn("cat", stdio=[a.stdout, "pipe", "pipe"])
        k = cp.spawn("sleep", ["5"])
        k.kill("SIGKILL")
        e = cp.spawn("does-not-exist-xyz")
        e.on("error", lambda err: None)
        assert b.stdout.read() == b"x\ndata\n"
        for c in (a, b, k, e):
            c.wait(timeout=20)
    cp.run()
    leaked = set(os.listdir("/proc/self/fd")) - base_fds
    assert len(leaked) <= 1, {fd: _readlink(fd) for fd in leaked}
    assert set(my_zombies()) <= base_zombies


def _readlink(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def test_1000_concurrent_children_without_a_thread_per_child(nofile):
    cp.run()
    base_zombies = set(my_zombies())
    threads_before = threading.active_count()
    t0 = time.monotonic()
    children = [cp.spawn("sleep", ["0.5"]) for _ in range(1000)]
    spawned = time.monotonic() - t0
    peak = threading.active_count()
    running = sum(1 for c in children if c.exit_code is None)
    codes = []
    for i, c in enumerate(children):
        codes.append(c.wait(timeout=30))
        if i == 10:
            peak = max(peak, threading.active_count())
    took = time.monotonic() - t0
    assert codes == [0] * 1000
    assert peak <= threads_before + 2, (threads_before, peak)  # flat: no thread per child
    assert running > 900  # they really ran at the same time
    assert spawned < 20 and took < 30, (spawned, took)
    assert set(my_zombies()) <= base_zombies
