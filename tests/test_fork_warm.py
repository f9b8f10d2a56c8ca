"""fork(..., warm_start=True): the child comes from the zygote
(src/childproc/_warm, docs/architecture.md "Warm start") and must be, to
what the user and the child can see, the child a cold fork would have made.

Most tests run one script both ways and compare what was observed.  The
script's first line records whether childproc was imported before the
script ran (``WARM``): the zygote imported it, a cold interpreter has not,
so each test also knows which path served it and checks that the warm run
was really warm (or, for the fallbacks, really cold).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import childproc as cp
from childproc._warm import client

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm start is Linux's"),
    pytest.mark.usefixtures("watchdog"),
]
WATCHDOG_SECONDS = 60

PROBE = "import sys as _s; WARM = 'childproc' in _s.modules; del _s\n"


def _ready_zygote() -> None:
    """Start this process's zygote and wait until it serves (the fork that
    starts it goes cold)."""
    if client.zygote_pid() is None:
        cp.fork(os.devnull, warm_start=True).wait()
    deadline = time.monotonic() + 30
    while True:
        zygote = client._zygote
        assert zygote is not None and not zygote.dead, "the zygote did not start"
        if zygote.ready or zygote.poll_ready():
            return
        assert time.monotonic() < deadline, "the zygote never said it was ready"
        time.sleep(0.01)


@pytest.fixture
def warm() -> None:
    _ready_zygote()


def _script(tmp_path: Path, body: str, name: str = "child.py") -> str:
    path = tmp_path / name
    path.write_text(PROBE + textwrap.dedent(body))
    return str(path)


def _run(script: str, warm_start: bool, args: list[str] | None = None, send: list[Any] | None = None,
         stdin: bytes | None = None, **options: Any) -> dict[str, Any]:
    """Fork ``script`` and collect everything observable: exit, signal,
    stdout, stderr, messages, the 'spawn'/'error' events."""
    options.setdefault("silent", True)
    child = cp.fork(script, args or [], warm_start=warm_start, **options)
    seen: dict[str, Any] = {"messages": [], "events": [], "stdout": b"", "stderr": b""}
    child.on("message", lambda m, _h=None: seen["messages"].append(m))
    child.on("spawn", lambda: seen["events"].append("spawn"))
    child.on("error", lambda e: seen["events"].append(("error", getattr(e, "code", None), e.syscall)))
    child.on("exit", lambda c, s: seen["events"].append(("exit", c, s)))
    if child.stdout is not None:
        child.stdout.on("data", lambda d: seen.__setitem__("stdout", seen["stdout"] + d))
    if child.stderr is not None:
        child.stderr.on("data", lambda d: seen.__setitem__("stderr", seen["stderr"] + d))
    for msg in send or ():
        child.send(msg)
    if stdin is not None and child.stdin is not None:
        child.stdin.end(stdin)
    seen["code"] = child.wait()
    seen["signal"] = child.signal_code
    seen["pid"] = child.pid
    return seen


def _both(script: str, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    _ready_zygote()
    return _run(script, True, **kw), _run(script, False, **kw)


def _report(seen: dict[str, Any]) -> dict[str, Any]:
    """The child's own report (its first message), minus the probe."""
    report = dict(seen["messages"][0])
    return report


# ---------------------------------------------------------------- exit codes

EXITS = {
    "end": "pass\n",
    "sys_exit_3": "import sys; sys.exit(3)\n",
    "sys_exit_text": "import sys; sys.exit('bye')\n",
    "uncaught": "def f():\n    raise ValueError('boom')\nf()\n",
    "syntax_error": "x = (\n",
    "sigterm_self": "import os, signal; os.kill(os.getpid(), signal.SIGTERM)\n",
    "raise_signal": "import signal; signal.raise_signal(signal.SIGUSR1)\n",
    "abort": "import os; os.abort()\n",
    "keyboard_interrupt": "import atexit; atexit.register(lambda: print('atexit ran', flush=True))\n"
                          "raise KeyboardInterrupt\n",
    "atexit": "import atexit, sys; atexit.register(lambda: print('atexit ran', flush=True)); sys.exit(4)\n",
}


@pytest.mark.parametrize("name", sorted(EXITS))
def test_exit_status_and_output_as_cold(tmp_path: Path, name: str) -> None:
    script = _script(tmp_path, EXITS[name])
    hot, cold = _both(script)
    for seen in (hot, cold):
        seen.pop("pid")
    assert hot == cold


def test_a_missing_script_is_pythons_own_message_and_exit_2(tmp_path: Path) -> None:
    script = str(tmp_path / "missing.py")
    hot, cold = _both(script)
    assert hot["code"] == cold["code"] == 2
    assert hot["stderr"] == cold["stderr"]
    assert b"can't open file" in hot["stderr"]


def test_warm_children_really_are_warm_and_cold_ones_cold(tmp_path: Path) -> None:
    script = _script(tmp_path, "from childproc import process; process.send(WARM)\n")
    hot, cold = _both(script)
    assert hot["messages"] == [True] and cold["messages"] == [False]


# ------------------------------------------------------------ stdio and streams

def test_stdout_stderr_and_stdin_through_pipes(tmp_path: Path) -> None:
    script = _script(tmp_path, """
        import sys
        data = sys.stdin.read()
        print('got', len(data), data[:5])
        sys.stdout.write('x' * 300000)
        print('to stderr', file=sys.stderr)
        print(sys.stdout.encoding, sys.stdout.errors, sys.stdout.line_buffering, sys.stdout.isatty(),
              sys.stderr.line_buffering, sys.stdin.encoding, sys.stdin.errors, file=sys.stderr)
        print(sys.stdout.buffer.__class__.__name__, sys.stdout.name, sys.stdin.name, file=sys.stderr)
    """)
    hot, cold = _both(script, stdin=b"hello world" * 1000)
    for seen in (hot, cold):
        seen.pop("pid")
    assert hot == cold
    assert hot["stdout"].startswith(b"got 11000 hello")


def test_inherited_stdio_and_ignored_stdio(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    script = _script(tmp_path, """
        import os, sys
        from childproc import process
        print('line', flush=True)
        process.send([os.path.exists('/proc/self/fd/0'), sys.stdin.read()])
    """)
    with open(out, "wb") as f:
        hot, cold = _both(script, stdio=["ignore", f, "ignore", "ipc"], silent=False)
    assert hot["messages"] == cold["messages"] == [[True, ""]]
    assert out.read_bytes() == b"line\nline\n"


# ---------------------------------------------------------------- messages

@pytest.mark.parametrize("serialization", ["json", "pickle"])
def test_messages_both_ways(tmp_path: Path, serialization: str) -> None:
    script = _script(tmp_path, """
        from childproc import process
        def echo(msg, _handle=None):
            process.send(['echo', msg])
            if msg == 'last':
                process.disconnect()
        process.on('message', echo)
        process.send('first')
    """)
    hot, cold = _both(script, send=[{"a": [1, 2.5, None]}, "last"], serialization=serialization)
    assert hot["messages"] == cold["messages"] == ["first", ["echo", {"a": [1, 2.5, None]}], ["echo", "last"]]
    assert hot["code"] == cold["code"] == 0


# ------------------------------------------------------ what the child is

REPORT = """
    import os, sys, random
    from childproc import process
    process.send({
        'argv': sys.argv, 'path0': sys.path[0], 'name': __name__, 'file': __file__,
        'cwd': os.getcwd(), 'foo': os.environ.get('WARM_TEST_FOO'),
        'channel_env': [k for k in os.environ if k.startswith('NODE_CHANNEL')],
        'ppid': os.getppid(), 'pid': os.getpid(), 'pgid': os.getpgid(0), 'sid': os.getsid(0),
        'fds': sorted(int(f) for f in os.listdir('/proc/self/fd')),
        'random': random.random(), 'main_keys': sorted(k for k in globals() if k != 'WARM'),
        'sigint': str(__import__('signal').getsignal(2)),
        'sigmask': sorted(int(s) for s in __import__('signal').pthread_sigmask(0, [])),
        'orig_argv_tail': sys.orig_argv[-3:], 'executable': sys.executable,
        'environ': list(os.environ.items()),
        'c_environ': sorted(__import__('subprocess').run(['env', '-0'], capture_output=True).stdout.split(b'\\0')),
    })
"""


def _child_report(tmp_path: Path, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    script = _script(tmp_path, REPORT)
    hot, cold = _both(script, **kw)
    assert hot["code"] == cold["code"] == 0, (hot["stderr"], cold["stderr"])
    return _report(hot), _report(cold)


def _same_but(hot: dict[str, Any], cold: dict[str, Any], *differ: str) -> None:
    for key in ("pid", "random", "pgid", "sid", *differ):
        hot.pop(key), cold.pop(key)
    assert hot == cold


def test_the_channel_env_stays_until_the_script_asks_for_process(tmp_path: Path) -> None:
    # A script that reads NODE_CHANNEL_FD itself (as the pool's worker does)
    # finds it, warm or cold; `from childproc import process` then claims it.
    script = _script(tmp_path, """
        import os
        had = os.environ.get('NODE_CHANNEL_SERIALIZATION_MODE')
        from childproc import process
        process.send([had, 'NODE_CHANNEL_FD' in os.environ, WARM])
    """)
    hot, cold = _both(script, serialization="pickle")
    assert hot["messages"] == [["pickle", False, True]] and cold["messages"] == [["pickle", False, False]]


def test_argv_env_cwd_path_and_main_as_cold(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    hot, cold = _child_report(tmp_path, args=["a", "b c"], cwd=str(sub),
                              env={**os.environ, "WARM_TEST_FOO": "bar"})
    assert hot["argv"][1:] == ["a", "b c"] and hot["cwd"] == str(sub) and hot["foo"] == "bar"
    assert hot["ppid"] == os.getpid() and hot["channel_env"] == []
    assert hot["fds"] == cold["fds"] and hot["pgid"] == cold["pgid"] == os.getpgid(0)
    _same_but(hot, cold)


def test_a_relative_cwd_is_taken_from_the_parents_cwd(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "rel").mkdir()
    monkeypatch.chdir(tmp_path)
    hot, cold = _child_report(tmp_path, cwd="rel")
    assert hot["cwd"] == cold["cwd"] == str(tmp_path / "rel")


def test_script_reached_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    _script(real, REPORT)
    (tmp_path / "link.py").symlink_to(real / "child.py")
    hot, cold = _both(str(tmp_path / "link.py"))
    a, b = _report(hot), _report(cold)
    assert a["path0"] == b["path0"] == str(real)
    _same_but(a, b)


def test_detached_child_leads_its_own_session(tmp_path: Path) -> None:
    hot, cold = _child_report(tmp_path, detached=True)
    assert hot["sid"] == hot["pid"] and cold["sid"] == cold["pid"]
    assert hot["pgid"] == hot["pid"]


def test_kill_tree_child_leads_its_own_group(tmp_path: Path) -> None:
    hot, _cold = _child_report(tmp_path, kill_tree=True)
    assert hot["pgid"] == hot["pid"] and hot["sid"] == os.getsid(0)


def test_die_with_parent_and_kill_tree_together(tmp_path: Path) -> None:
    # die_with_parent over a group: the warden joins the child's group after
    # the spawn, as for a cold child.
    hot, _cold = _child_report(tmp_path, kill_tree=True, die_with_parent=True)
    assert hot["pgid"] == hot["pid"]


def test_a_warm_child_forks_spawns_starts_threads_and_signals_itself(tmp_path: Path) -> None:
    # What relies on glibc's view of the process (a raw clone skips glibc's
    # fork bookkeeping): fork, posix_spawn, threads, raise/kill/pthread_kill
    # on itself.
    script = _script(tmp_path, """
        import os, subprocess, threading, signal
        from childproc import process
        out = {}
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        out['fork'] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        out['subprocess'] = subprocess.run(['true']).returncode
        tids = []
        t = threading.Thread(target=lambda: tids.append(threading.get_native_id()))
        t.start(); t.join()
        out['thread'] = tids[0] not in (os.getpid(), 0)
        out['main_tid'] = threading.get_native_id() == os.getpid()
        hits = []
        signal.signal(signal.SIGUSR2, lambda *a: hits.append(1))
        signal.raise_signal(signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGUSR2)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR2)
        out['signals'] = len(hits)
        out['warm'] = WARM
        process.send(out)
    """)
    hot, cold = _both(script)
    assert hot["messages"][0].pop("warm") and not cold["messages"][0].pop("warm")
    assert hot["messages"] == cold["messages"] == [
        {"fork": 7, "subprocess": 0, "thread": True, "main_tid": True, "signals": 3}]


def test_two_warm_children_have_different_random_state(tmp_path: Path) -> None:
    script = _script(tmp_path, REPORT)
    _ready_zygote()
    a, b = (_report(_run(script, True)) for _ in range(2))
    assert a["random"] != b["random"] and a["pid"] != b["pid"]


def test_a_missing_cwd_is_an_error_event_as_cold(tmp_path: Path) -> None:
    script = _script(tmp_path, "pass\n")
    hot, cold = _both(script, cwd=str(tmp_path / "nowhere"))
    assert hot["events"] == cold["events"]
    assert hot["events"][0][:2] == ("error", "ENOENT") and hot["pid"] is None


# --------------------------------------------------- the child is our child

def test_kill_reaches_the_warm_child_through_its_pidfd(tmp_path: Path) -> None:
    _ready_zygote()
    script = _script(tmp_path, "from childproc import process; import time; process.send('up'); time.sleep(60)\n")
    child = cp.fork(script, warm_start=True)
    got: list[Any] = []
    child.on("message", lambda m, _h=None: (got.append(m), child.kill()))
    assert child.wait() is None and child.signal_code == "SIGTERM" and got == ["up"]
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid or -1, os.WNOHANG)  # reaped by us, no zombie left


def test_a_warm_child_under_asyncio(tmp_path: Path) -> None:
    import asyncio

    script = _script(tmp_path, "import sys\nfrom childproc import process\nprocess.send(WARM)\nsys.exit(5)\n")
    _ready_zygote()

    async def main() -> tuple[int | None, list[Any]]:
        got: list[Any] = []
        child = cp.fork(script, warm_start=True)
        child.on("message", lambda m, _h=None: got.append(m))
        return await child, got

    assert asyncio.run(main()) == (5, [True])


def test_no_fd_leaks_in_the_parent(tmp_path: Path) -> None:
    script = _script(tmp_path, "print('x')\n")
    _ready_zygote()
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert _run(script, True)["code"] == 0
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_several_threads_fork_warm_at_once(tmp_path: Path) -> None:
    script = _script(tmp_path, "import sys\nfrom childproc import process\nprocess.send([WARM, sys.argv[1]])\n")
    _ready_zygote()
    results: list[Any] = []

    def worker(i: int) -> None:
        results.append(_run(script, True, args=[str(i)])["messages"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r[0][1] for r in results) == ["0", "1", "2", "3"]
    assert all(r[0][0] for r in results)


# ------------------------------------------------------------ the fallbacks

@pytest.mark.parametrize("options", [
    {"exec_argv": ["-X", "dev"]},
    {"env": {**os.environ, "PYTHONHASHSEED": "123"}},
    {"env": {**os.environ, "LC_ALL": "C"}},
    {"argv0": "other-name"},
    {},
])
def test_options_a_warm_interpreter_cannot_serve_go_cold(tmp_path: Path, options: dict[str, Any]) -> None:
    # (stdout, not the channel: with argv0 a venv's python does not find its
    # site-packages, so childproc may not be importable in a cold child)
    script = _script(tmp_path, "print(WARM)\n")
    _ready_zygote()
    seen = _run(script, True, **options)
    assert seen["stdout"] == (b"True\n" if not options else b"False\n"), seen


def test_a_dead_zygote_means_a_cold_fork_then_a_new_zygote(tmp_path: Path) -> None:
    script = _script(tmp_path, "from childproc import process; process.send(WARM)\n")
    _ready_zygote()
    old = client.zygote_pid()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    time.sleep(0.1)
    assert _run(script, True)["messages"] == [False]  # noticed: cold, and no zombie left
    with pytest.raises(ChildProcessError):
        os.waitpid(old, os.WNOHANG)
    _ready_zygote()
    assert client.zygote_pid() not in (None, old)
    assert _run(script, True)["messages"] == [True]


def test_a_forked_copy_gets_a_zygote_of_its_own(tmp_path: Path) -> None:
    script = _script(tmp_path, "import os\nfrom childproc import process\nprocess.send([WARM, os.getppid()])\n")
    _ready_zygote()
    parent_zygote = client.zygote_pid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: its warm forks must be its own children
        try:
            os.close(r)
            _ready_zygote()
            seen = _run(script, True)
            ok = client.zygote_pid() != parent_zygote and seen["messages"] == [[True, os.getpid()]]
            os.write(w, b"ok" if ok else json.dumps(seen, default=repr).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read()
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert client.zygote_pid() == parent_zygote


def test_warm_start_must_be_a_boolean() -> None:
    with pytest.raises(TypeError) as info:
        cp.fork("x.py", warm_start="yes")  # type: ignore[typeddict-item]
    assert info.value.code == "ERR_INVALID_ARG_TYPE"  # type: ignore[attr-defined]
    assert "options.warm_start" in str(info.value)


def test_a_zygote_killed_from_outside_is_reaped_without_another_fork() -> None:
    _ready_zygote()
    pid = client.zygote_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # its pid is ours until reaped: no recycled pid here
    for _ in range(200):  # the reaper thread reaps it; no warm fork comes to notice
        try:
            with open(f"/proc/{pid}/stat") as f:
                gone = f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a new process took the pid
        except OSError:  # ENOENT, or ESRCH when the reap comes between the open and the read
            gone = True
        if gone:
            break
        time.sleep(0.05)
    assert gone, "the dead zygote stayed a zombie"
    client.stop()


def test_stop_ends_the_zygote_and_leaves_no_zombie() -> None:
    _ready_zygote()
    pid = client.zygote_pid()
    assert pid is not None
    client.stop()
    assert client.zygote_pid() is None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------- the pool

def test_pool_workers_are_cloned_warm_and_run_tasks() -> None:
    _ready_zygote()
    with cp.ProcessPool(1, max_tasks_per_worker=1, warm_start=True) as pool:
        warm = [pool.submit(eval, "'childproc._warm.server' in __import__('sys').modules").result()
                for _ in range(3)]
        parents = {pool.submit(os.getppid).result() for _ in range(3)}
        crash = pool.submit(os._exit, 3)
        with pytest.raises(cp.WorkerCrashedError):
            crash.result()
        assert pool.submit(sum, [1, 2]).result() == 3
    assert all(warm) and parents == {os.getpid()}


def test_pool_warm_start_must_be_a_bool() -> None:
    with pytest.raises(TypeError):
        cp.ProcessPool(1, warm_start=1)  # type: ignore[arg-type]


def test_a_zygote_that_cannot_start_is_not_started_forever(tmp_path: Path, monkeypatch: Any) -> None:
    script = _script(tmp_path, "print(WARM)\n")
    client.stop()
    monkeypatch.setattr(client, "_CODE", "raise SystemExit(1)")  # dies before it says it is ready
    monkeypatch.setattr(client, "_failed_starts", 0)
    pids = set()
    for _ in range(12):
        assert _run(script, True)["stdout"] == b"False\n"  # every fork served, cold
        pid = client.zygote_pid()
        if pid is not None:
            pids.add(pid)
        time.sleep(0.05)
    assert client._failed_starts == client._MAX_FAILED_STARTS and len(pids) == client._MAX_FAILED_STARTS
    assert client.zygote_pid() is None
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # each one reaped


PARENT = """
import os, sys, time
import childproc as cp
from childproc._warm import client
cp.fork(os.devnull, warm_start=True).wait()
while not (client._zygote.ready or client._zygote.poll_ready()):
    time.sleep(0.01)
child = cp.fork(sys.argv[1], die_with_parent=True, warm_start=True)
child.unref()
child.channel.unref()  # (a channel keeps the parent alive on its own, as in Node)
print(client.zygote_pid(), child.pid, flush=True)
time.sleep(float(sys.argv[2]))
"""


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # ended; its parent (gone too) is not there to reap it
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("how", ["exits", "killed"])
def test_the_zygote_and_die_with_parent_children_end_with_the_parent(tmp_path: Path, how: str) -> None:
    import subprocess

    sleeper = _script(tmp_path, "import time; time.sleep(60)\n", "sleeper.py")
    parent = tmp_path / "parent.py"
    parent.write_text(PARENT)
    proc = subprocess.Popen([sys.executable, str(parent), sleeper, "0" if how == "exits" else "60"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    zygote, child = (int(x) for x in proc.stdout.readline().split())
    if how == "killed":
        proc.kill()
    proc.wait(30)
    # The zygote never keeps its parent alive and ends with it; the warm
    # child, die_with_parent, ends with it too (the parent that exits kills
    # nothing of its own: PR_SET_PDEATHSIG does).
    assert _gone(zygote) and _gone(child)


def test_a_parent_with_an_unclaimed_channel_of_its_own(tmp_path: Path) -> None:
    # A parent forked by someone else, which has not imported childproc's
    # process, still holds NODE_CHANNEL_FD: the zygote must not be started
    # with it (its own import of the channel module would claim fd 3, its
    # request socket, and its children would fail).
    import subprocess

    child = _script(tmp_path, "import os\nfrom childproc import process\nprocess.send([WARM, os.getppid()])\n")
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import os, sys, time
        import childproc as cp
        from childproc._warm import client
        cp.fork(os.devnull, warm_start=True).wait()
        while not (client._zygote.ready or client._zygote.poll_ready()):
            time.sleep(0.01)
        got = []
        c = cp.fork({child!r}, warm_start=True)
        c.on("message", lambda m, h=None: got.append(m))
        print(c.wait(), got == [[True, os.getpid()]], "NODE_CHANNEL_FD" in os.environ)
    """))
    env = {**os.environ, "NODE_CHANNEL_FD": "3", "NODE_CHANNEL_SERIALIZATION_MODE": "json"}
    out = subprocess.run([sys.executable, str(parent)], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["0", "True", "True"], out.stderr
