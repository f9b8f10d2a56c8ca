"""The lifecycle policy (src/childproc/_runtime/lifecycle.py): no signal to a
recycled pid, the timeout of a kill_tree child belongs to its group, and
cancelling an asyncio task that awaits a child kills the child.

The pid-reuse cases run in a fresh pid namespace (``unshare --pid``, root
only), where ``/proc/sys/kernel/ns_last_pid`` picks the next pid without
another process of the machine taking it first; they skip elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import childproc as cp

pytestmark = pytest.mark.usefixtures("watchdog")
WATCHDOG_SECONDS = 60


def _alive(pid: int) -> bool:
    """A process that runs (a zombie waiting for init does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return not _alive(pid)


# -- no signal to a recycled pid ---------------------------------------------

_REUSE_PRELUDE = """
import json, os, subprocess, sys, time
import childproc as cp

def victim_at(pid):
    # A process (leading its own group, as a shell job would) that gets
    # `pid`, or None when the kernel would not hand that pid out now.
    for _ in range(3):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        v = subprocess.Popen(["sleep", "30"], start_new_session=True)
        if v.pid == pid:
            return v
        v.kill(); v.wait()
    return None

def victim_report(v):
    if v is None:
        return {"reused": False, "victim_alive": None}
    time.sleep(0.3)
    alive = v.poll() is None
    v.kill(); v.wait()
    return {"reused": True, "victim_alive": alive}
"""


def _run_in_pid_namespace(code: str, tmp_path) -> dict:
    if os.geteuid() != 0:
        pytest.skip("forcing pid reuse needs root (ns_last_pid)")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1)")
    probe = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no new pid namespace here: {probe.stderr.decode(errors='replace').strip()}")
    script = tmp_path / "reuse.py"
    script.write_text(textwrap.dedent(_REUSE_PRELUDE) + textwrap.dedent(code))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", sys.executable, str(script)],
                         capture_output=True, text=True, timeout=40, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_kill_after_reap_never_reaches_a_recycled_pid(tmp_path) -> None:
    # kill() from a 'disconnect' listener: the channel's last messages and
    # 'disconnect' come after the child was reaped and before 'exit'.
    (tmp_path / "quit.py").write_text("print('bye')\n")
    result = _run_in_pid_namespace("""
        child = cp.fork("quit.py")
        time.sleep(0.3)  # the exit and the channel's end are both ready at the first wait
        seen = {}
        def on_disconnect():
            v = victim_at(child.pid) if not os.path.exists(f"/proc/{child.pid}") else None
            seen["kill"] = child.kill()
            seen.update(victim_report(v))
        child.on("disconnect", on_disconnect)
        child.wait(10)
        print(json.dumps(seen))
    """, tmp_path)
    assert result["reused"] is True, result  # the case happened
    assert result["victim_alive"] is True
    assert result["kill"] is False


def test_force_kill_after_never_reaches_a_recycled_group(tmp_path) -> None:
    # kill_tree + force_kill_after: the group's SIGKILL comes after the
    # leader's exit; while it is pending the leader stays unreaped, so its
    # pid (the group's id) cannot be handed to anyone else.
    results = _run_in_pid_namespace("""
        runs = []
        for _ in range(3):
            child = cp.spawn("sleep", ["5"], kill_tree=True, force_kill_after=0.5)
            seen = {}
            def on_exit(code, sig, child=child, seen=seen):
                seen["victim"] = victim_at(child.pid)
            child.on("exit", on_exit)
            child.kill()
            child.wait(10)
            cp.run()  # until the force-kill timer has fired
            seen.update(victim_report(seen.pop("victim")))
            runs.append(seen)
        print(json.dumps({"runs": runs}))
    """, tmp_path)
    for run in results["runs"]:
        assert run["reused"] is False or run["victim_alive"] is True, results


# -- the timeout of a kill_tree child belongs to its group ---------------------

_LEADER_EXITS_FIRST = "sleep 20 & echo $!"


def test_spawn_timeout_kills_the_group_after_the_leader_exited() -> None:
    child = cp.spawn("sh", ["-c", _LEADER_EXITS_FIRST], timeout=1, kill_tree=True)
    out: list[bytes] = []
    assert child.stdout is not None
    child.stdout.on("data", out.append)
    child.wait(10)
    sleeper = int(b"".join(out))
    assert child.exit_code == 0  # sh itself ended on its own
    assert _gone_within(sleeper, 5)


def test_exec_timeout_kills_the_group_after_the_leader_exited() -> None:
    child = cp.exec(_LEADER_EXITS_FIRST, timeout=1, kill_tree=True)
    stdout, _ = child.result(10)
    assert _gone_within(int(stdout), 5)


def test_the_group_timeout_with_force_kill_after() -> None:
    # A descendant that ignores kill_signal: the group's SIGKILL follows.
    child = cp.spawn("sh", ["-c", "(trap '' TERM; exec sleep 20) & echo $!"], timeout=0.5,
                     kill_tree=True, force_kill_after=0.5)
    out: list[bytes] = []
    assert child.stdout is not None
    child.stdout.on("data", out.append)
    child.wait(10)  # 'close': the pipe was given up a moment after the group's SIGTERM
    cp.run()  # the force-kill timer keeps the loop alive until it has fired
    assert _gone_within(int(b"".join(out)), 5)


def test_wait_timeout_message_says_what_is_open() -> None:
    child = cp.spawn("sh", ["-c", "sleep 2 & exit 0"])
    with pytest.raises(TimeoutError) as info:
        child.wait(0.5)
    assert "still running" not in str(info.value)
    assert "output is still open" in str(info.value)
    child.wait(10)


def test_a_plain_exit_is_reaped_at_once_with_kill_tree() -> None:
    # No timer pending: the leader is not held.
    child = cp.spawn("true", kill_tree=True)
    child.wait(10)
    assert child.kill() is False
    assert not os.path.exists(f"/proc/{child.pid}") or not _alive(child.pid)


# -- asyncio: errors reach the awaiting coroutine; cancellation kills -------------

def _run_async(coro_fn) -> list[dict]:
    """Run ``coro_fn()`` on a new loop; what reached the loop's exception
    handler comes back (it must stay empty)."""
    handled: list[dict] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: handled.append(ctx))
        await coro_fn()

    asyncio.run(main())
    return handled


def test_await_spawn_raises_the_spawn_error() -> None:
    async def go() -> None:
        with pytest.raises(cp.SpawnError) as info:
            await cp.spawn("no-such-program-childproc")
        assert info.value.code == "ENOENT"

    assert _run_async(go) == []


def test_await_a_child_whose_spawn_failed_earlier() -> None:
    async def go() -> None:
        child = cp.spawn("no-such-program-childproc")
        child.on("error", lambda err: None)
        await asyncio.sleep(0.05)
        with pytest.raises(cp.SpawnError):
            await child

    assert _run_async(go) == []


def test_cancelling_the_await_kills_the_child() -> None:
    async def go() -> None:
        child = cp.spawn("sleep", ["30"])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(child, 0.2)
        await asyncio.shield(child)  # its 'close', after the kill
        assert child.signal_code == "SIGTERM"
        assert child.killed

    assert _run_async(go) == []


def test_cancelling_kills_with_kill_signal_then_force_kill_after() -> None:
    async def go() -> None:
        child = cp.spawn("sh", ["-c", "trap '' TERM; echo ready; sleep 30 & wait"], kill_signal="SIGTERM",
                         force_kill_after=0.3)
        assert child.stdout is not None
        ready = asyncio.get_running_loop().create_future()
        child.stdout.once("data", lambda chunk: ready.set_result(chunk))
        await ready
        task = asyncio.ensure_future(child)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        while child.exit_code is None and child.signal_code is None:
            await asyncio.sleep(0.02)
        assert child.signal_code == "SIGKILL"

    assert _run_async(go) == []


def test_cancelling_kills_the_group_with_kill_tree() -> None:
    async def go() -> None:
        child = cp.spawn("sh", ["-c", "sleep 30 & echo $!; wait"], kill_tree=True)
        assert child.stdout is not None
        first = asyncio.get_running_loop().create_future()
        child.stdout.once("data", lambda chunk: first.set_result(chunk))
        sleeper = int(await first)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(child, 0.2)
        await asyncio.wait_for(asyncio.shield(child), 10)
        assert child.killed and child.signal_code == "SIGTERM"
        assert _gone_within(sleeper, 5)

    assert _run_async(go) == []


def test_cancelling_await_exec_kills_the_command() -> None:
    async def go() -> None:
        child = cp.exec("sleep 30")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(child, 0.2)
        with pytest.raises(cp.ExecError) as info:
            await asyncio.shield(child)
        assert info.value.signal == "SIGTERM"

    assert _run_async(go) == []


def test_shield_opts_out_of_the_kill() -> None:
    async def go() -> None:
        child = cp.spawn("sleep", ["0.5"])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(child), 0.1)
        assert await child == 0
        assert not child.killed

    assert _run_async(go) == []
