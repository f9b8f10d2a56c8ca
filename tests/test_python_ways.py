"""What Python users reach for: subprocess's stdio constants, ``async with``,
``encoding=`` on spawn, ``input=`` on exec, and errors that say what to do.

These are Python additions (Node has no such constants or options), so they
are behaviour tests; where Node defines the neighbouring behaviour (a
negative number in ``stdio`` is a pipe) the test says so.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

import childproc as cp

WATCHDOG_SECONDS = 60
pytestmark = pytest.mark.usefixtures("watchdog")

BOTH = "echo out; echo err >&2"


# ---------------------------------------------------------------- stdio constants

def test_devnull_is_ignore_in_every_slot_sync_and_async():
    # The child reading stdin gets EOF at once; what it writes goes nowhere.
    r = cp.spawn_sync("sh", ["-c", "cat; " + BOTH], stdio=[subprocess.DEVNULL, "pipe", subprocess.DEVNULL])
    assert (r.status, r.stdout, r.stderr) == (0, b"out\n", None)
    child = cp.spawn("sh", ["-c", "cat; " + BOTH], stdio=[subprocess.DEVNULL, subprocess.DEVNULL, "pipe"])
    assert child.stdin is None and child.stdout is None
    assert child.stderr.read() == b"err\n" and child.wait() == 0


def test_stdout_in_the_stderr_slot_merges_into_the_stdout_pipe_sync():
    r = cp.spawn_sync("sh", ["-c", "echo 1; echo 2 >&2; echo 3"], stdio=["pipe", "pipe", subprocess.STDOUT])
    assert r.stdout == b"1\n2\n3\n" and r.stderr is None and r.output == [None, b"1\n2\n3\n", None]
    out = cp.exec_sync("echo a; echo b >&2", stdio=["pipe", "pipe", subprocess.STDOUT])
    assert out == b"a\nb\n"
    out = cp.exec_file_sync("sh", ["-c", "echo a >&2"], stdio=["pipe", "pipe", subprocess.STDOUT], encoding="utf8")
    assert out == "a\n"


def test_stdout_in_the_stderr_slot_merges_into_the_stdout_pipe_async():
    child = cp.spawn("sh", ["-c", "echo 1; echo 2 >&2; echo 3"], stdio=["pipe", "pipe", subprocess.STDOUT])
    assert child.stderr is None and child.stdio[2] is None
    assert child.stdout.read() == b"1\n2\n3\n" and child.wait() == 0


def test_stdout_in_the_stderr_slot_follows_whatever_stdout_is(tmp_path):
    target = tmp_path / "both.txt"
    with open(target, "wb") as f:
        r = cp.spawn_sync("sh", ["-c", BOTH], stdio=["ignore", f, subprocess.STDOUT])
    assert r.status == 0 and target.read_bytes() == b"out\nerr\n"
    # Into /dev/null when stdout is ignored; and an fd above 2 may take it too.
    r = cp.spawn_sync("sh", ["-c", "echo gone; echo gone >&2; echo three >&3"],
                      stdio=["ignore", "ignore", subprocess.STDOUT, subprocess.STDOUT])
    assert r.status == 0 and r.output == [None, None, None, None]


def test_stdout_below_index_2_is_refused_before_spawning():
    for stdio in ([subprocess.STDOUT], ["pipe", subprocess.STDOUT]):
        for call in (cp.spawn, cp.spawn_sync):
            with pytest.raises(ValueError) as info:
                call("true", stdio=stdio)
            assert info.value.code == "ERR_INVALID_ARG_VALUE"
            assert "subprocess.STDOUT" in str(info.value)


def test_other_negative_numbers_stay_pipes_as_in_node():
    from nodecmp import node_json

    # Node: a negative number in stdio is a pipe.  -1 is subprocess.PIPE too.
    node = node_json("out(cp.spawnSync('sh', ['-c', 'echo x'], {stdio: [-1, -4, -1]}).stdout.toString())")
    r = cp.spawn_sync("sh", ["-c", "echo x"], stdio=[subprocess.PIPE, -4, subprocess.PIPE])
    assert r.stdout.decode() == node == "x\n"


# ---------------------------------------------------------------- fork's interpreter options

FORK_FLAGS = r"""
import json, os, sys, tempfile
import childproc as cp
child_code = "import json, sys; print(json.dumps([sys.flags.optimize, sys.flags.dev_mode, sys.warnoptions]))"
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "child.py")
    with open(path, "w") as f:
        f.write(child_code)
    results = {}
    for name, kw in (("default", {}), ("explicit_empty", {"exec_argv": []}),
                     ("same_interpreter", {"exec_path": sys.executable})):
        c = cp.fork(path, silent=True, **kw)
        results[name] = [json.loads(c.stdout.read()), c.spawnargs[1:-1]]
        c.wait()
    if NODE:
        with open(os.path.join(d, "child.js"), "w") as f:
            f.write("console.log(JSON.stringify(process.execArgv)); process.disconnect();")
        c = cp.fork(os.path.join(d, "child.js"), exec_path=NODE, silent=True)
        results["node"] = [json.loads(c.stdout.read()), c.spawnargs[1:-1]]
        c.wait()
print(json.dumps(results))
"""


def test_fork_passes_the_interpreters_options_as_node_passes_exec_argv(tmp_path):
    from nodecmp import NODE

    env = dict(__import__("os").environ, PYTHONPATH=__import__("os").pathsep.join(p for p in sys.path if p))
    env.pop("PYTHONWARNINGS", None)
    env.pop("PYTHONDEVMODE", None)
    env.pop("PYTHONOPTIMIZE", None)
    proc = subprocess.run([sys.executable, "-O", "-X", "dev", "-W", "error::DeprecationWarning", "-c",
                           f"NODE = {NODE!r}\n" + FORK_FLAGS], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = __import__("json").loads(proc.stdout.splitlines()[-1])
    flags, argv = results["default"]
    assert flags[0] == 1 and flags[1] is True and "error::DeprecationWarning" in flags[2]
    assert "-O" in argv and argv[argv.index("-X") + 1] == "dev"
    assert results["same_interpreter"] == results["default"]
    assert results["explicit_empty"] == [[0, False, []], []]
    if NODE is not None:
        # A Node child never gets Python flags (its execArgv is empty).
        assert results["node"] == [[], []]


# ---------------------------------------------------------------- with / async with

def _reaped(pid: int) -> bool:
    import os

    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child any more: it was reaped
    return False


def test_async_with_kills_a_running_child_and_waits_for_close():
    async def main():
        async with cp.spawn("sleep", ["30"]) as child:
            assert child.pid
        # Left the block: killed, reaped, 'close' delivered.
        assert child.signal_code == "SIGTERM" and child.killed and _reaped(child.pid)
        assert child.stdout.closed
        async with cp.spawn("sh", ["-c", "exit 3"]) as done:
            await done
        assert done.exit_code == 3 and not done.killed  # nothing left to kill
        return child

    asyncio.run(main())


def test_await_child_adds_no_listener_and_returns_when_a_close_listener_raises():
    # `await child` is resolved by the child itself once 'close' has been
    # emitted: the user's listeners are all there is, and one that raises
    # (reported by the loop) does not leave the coroutine waiting.
    handled: list = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: handled.append(ctx))
        child = cp.spawn("sh", ["-c", "exit 4"])
        seen: list = []

        def boom(code, sig):
            seen.append(child.listener_count("close"))
            raise ValueError("listener failed")

        child.on("close", boom)
        waiter = asyncio.ensure_future(_await(child))
        await asyncio.sleep(0)
        assert child.listener_count("close") == 1  # boom only
        return await asyncio.wait_for(waiter, 30), seen

    async def _await(child):
        return await child

    code, seen = asyncio.run(main())
    assert code == 4 and seen == [1]
    assert [type(ctx.get("exception")) for ctx in handled] == [ValueError]


def test_with_inside_a_coroutine_reaps_before_it_returns():
    async def main():
        events: list = []
        with cp.spawn("sleep", ["30"]) as child:
            child.on("exit", lambda *args: events.append(("exit", args)))
            child.on("close", lambda *args: events.append(("close", args)))
        # The running loop could not turn inside the block, yet the child is
        # gone: reaped, and 'exit' delivered before the block returned.
        assert _reaped(child.pid) and events == [("exit", (None, "SIGTERM"))]
        await child  # 'close' once the loop has closed the streams
        assert events[-1] == ("close", (None, "SIGTERM"))

    asyncio.run(main())


def test_with_inside_a_coroutine_returns_when_the_group_leader_is_held():
    # kill_tree with a pending timeout holds the exited leader unreaped (its
    # pid names the group); the block must still return once 'exit' came,
    # not wait for a reap the policy defers.  Run apart: a regression spins.
    code = (
        "import asyncio, childproc as cp\n"
        "async def main():\n"
        "    events = []\n"
        "    with cp.spawn('sleep', ['30'], kill_tree=True, timeout=60) as child:\n"
        "        child.on('exit', lambda *a: events.append(a))\n"
        "    assert events == [(None, 'SIGTERM')], events\n"
        "    await child\n"
        "    print('ok')\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_async_with_a_child_spawned_outside_the_loop():
    child = cp.spawn("sleep", ["30"])

    async def main():
        async with child:
            pass

    asyncio.run(main())
    assert child.signal_code == "SIGTERM" and _reaped(child.pid)


# ---------------------------------------------------------------- encoding= on spawn, input= on exec

def test_spawn_encoding_makes_every_output_stream_text():
    child = cp.spawn("sh", ["-c", "printf 'h\\303\\251'; printf 'e\\342\\202\\254' >&2; printf x >&3"],
                     stdio=["pipe", "pipe", "pipe", "pipe"], encoding="utf8")
    assert child.stdout.readable_encoding == child.stderr.readable_encoding == child.stdio[3].readable_encoding
    chunks: list = []
    child.stderr.on("data", chunks.append)
    assert child.stdout.read() == "hé" and child.stdio[3].read() == "x"
    child.wait()
    assert "".join(chunks) == "e€"
    # Off by default: bytes, as in Node; None asks for bytes too.
    assert cp.spawn("echo", ["hi"]).stdout.read() == b"hi\n"
    assert cp.spawn("echo", ["hi"], encoding=None).stdout.read() == b"hi\n"
    assert cp.spawn("echo", ["hi"], {"encoding": "latin1"}).stdout.read() == "hi\n"
    with pytest.raises(ValueError):
        cp.spawn("echo", encoding="no-such-codec")


def test_exec_and_exec_file_input_is_written_then_ended():
    r = cp.exec("tr a-z A-Z", input="hello").result()
    assert r == ("HELLO", "")
    r = cp.exec_file("cat", input=b"\x00\xff", encoding="buffer").result()
    assert r.stdout == b"\x00\xff"

    async def main():
        return await cp.exec_file("wc", ["-c"], input="x" * 200_000)

    assert asyncio.run(main()).stdout.strip() == "200000"
    # A child that never reads: the EPIPE stays on stdin, the outcome is its exit.
    r = cp.exec("exit 0", input="x" * 1_000_000).result()
    assert r == ("", "")
    with pytest.raises(TypeError):
        cp.exec("cat", input=5)
    with pytest.raises(TypeError):
        cp.spawn("cat", input="x")  # spawn has stdin for that


# ---------------------------------------------------------------- errors that say what to do

def test_a_child_waited_for_from_another_thread_says_what_to_do():
    child = cp.spawn("sleep", ["0.1"])
    errors: list = []

    def other():
        try:
            child.wait()
        except RuntimeError as err:
            errors.append(str(err))

    t = threading.Thread(target=other, name="not-the-owner")
    t.start()
    t.join()
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith("a childproc loop can only be driven by the thread that owns it")
    assert repr(threading.current_thread().name) in message and "executor.submit" in message
    assert child.wait() == 0  # the owner still can


TRIO_SCRIPT = r"""
import json
import trio
import childproc as cp

seen = []

async def main():
    for make in (lambda: cp.exec("echo hi"), lambda: cp.spawn("true")):
        child = make()
        try:
            await child
        except RuntimeError as err:
            seen.append(str(err))
        child.wait()
    # What the message suggests works.
    seen.append(await trio.to_thread.run_sync(lambda: cp.exec("echo hi").result()))

trio.run(main)
print(json.dumps(seen))
"""


def test_under_trio_await_says_async_support_is_asyncios(py_helper):
    pytest.importorskip("trio")
    # In a fresh interpreter: trio's worker threads outlive trio.run, each
    # with the private loop of the exec it ran.
    proc = py_helper(TRIO_SCRIPT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = __import__("json").loads(proc.stdout)
    assert len(seen) == 3
    for message in seen[:2]:
        assert "under trio" in message and "async support is asyncio's" in message
        assert "trio.to_thread.run_sync" in message
    assert seen[2] == ["hi\n", ""]


def test_outside_any_loop_await_says_so():
    child = cp.spawn("true")
    with pytest.raises(RuntimeError, match="outside a running asyncio loop"):
        child.__await__().send(None)
    child.wait()


def test_max_buffer_errors_keep_nodes_message_and_name_the_limit_and_the_option():
    from nodecmp import node_json

    node_message = node_json("try { cp.execSync('head -c 2000000 /dev/zero') } catch (e) { out(e.message) }")
    with pytest.raises(OSError) as info:
        cp.exec_sync("head -c 2000000 /dev/zero")
    err = info.value
    assert str(err) == node_message and err.code == "ENOBUFS"  # the message stays Node's
    assert err.max_buffer == 1024 * 1024
    (note,) = err.__notes__  # shown under the traceback (3.11+)
    assert "max_buffer=1048576" in note and "math.inf" in note
    with pytest.raises(cp.MaxBufferError) as info:
        cp.exec("head -c 300 /dev/zero", max_buffer=100, encoding=None).result()
    err = info.value
    assert str(err) == "stdout maxBuffer length exceeded" and err.code == "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
    assert err.max_buffer == 100 and "max_buffer=100 " in err.__notes__[0]
    # Under the limit nothing changes; inf lifts it.
    assert len(cp.exec_sync("head -c 2000000 /dev/zero", max_buffer=float("inf"))) == 2_000_000


def test_with_inside_a_coroutine_where_os_has_no_waitid(monkeypatch):
    import os

    monkeypatch.delattr(os, "waitid", raising=False)  # macOS before Python 3.13

    async def main():
        with cp.spawn("sleep", ["30"]) as child:
            pass
        assert child.signal_code == "SIGTERM" and _reaped(child.pid)
        await child

    asyncio.run(main())
