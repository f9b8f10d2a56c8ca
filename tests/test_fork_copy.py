"""A forked copy of the process (os.fork(), multiprocessing's 'fork') lets go
of childproc's fds, so it cannot hang the parent (see childproc._runtime.forksafe).

Each case runs as its own script: forking the pytest process itself would
copy the whole test run.  A script prints one JSON line with what it saw;
each wait in it is bounded, so a regression fails instead of hanging.
Without the fix every case here hangs until its bound (measured on the code
before it: stdin, disconnect and the parent's epoll all waited out their
timeouts, and the copy's exit waited for the parent's 2 s child).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import childproc as cp

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork() here")

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))

# A copy that outlives the parent's waits by far, then leaves without
# running anything of the parent's (as a multiprocessing worker does).
PRELUDE = """
import json, os, sys, time
import childproc as cp

def copy_that_lingers(seconds=6):
    pid = os.fork()
    if pid == 0:
        time.sleep(seconds)
        os._exit(0)
    return pid

def done(pid):
    os.kill(pid, 9)
    os.waitpid(pid, 0)
"""


ECHO_CHILD = "from childproc import process\nprocess.on('message', lambda m, h=None: process.send(m))\n"


def run(script: str, tmp_path: Path, timeout: float = 30) -> dict:
    path = tmp_path / "case.py"
    path.write_text(PRELUDE + textwrap.dedent(script))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stdin_end_reaches_the_child(tmp_path: Path) -> None:
    got = run(
        """
        child = cp.spawn("cat")
        out = []
        child.stdout.on("data", out.append)
        pid = copy_that_lingers()
        child.stdin.end(b"hi")
        t = time.monotonic()
        try:
            child.wait(timeout=3)
            result = {"waited": time.monotonic() - t, "out": b"".join(out).decode()}
        except TimeoutError:
            result = {"waited": None}
        done(pid)
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert got["waited"] is not None and got["waited"] < 3
    assert got["out"] == "hi"


def test_disconnect_reaches_a_forked_child(tmp_path: Path) -> None:
    (tmp_path / "child.py").write_text(ECHO_CHILD)
    got = run(
        """
        child = cp.fork("child.py")
        child.send({"n": 1})
        pid = copy_that_lingers()
        events = []
        child.on("exit", lambda *a: events.append("exit"))
        child.disconnect()
        try:
            code = child.wait(timeout=3)
            result = {"code": code, "events": events}
        except TimeoutError:
            result = {"code": "timeout"}
        done(pid)
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert got == {"code": 0, "events": ["exit"]}


@pytest.mark.parametrize("attached", [False, True], ids=["channel-untouched", "channel-in-use"])
def test_a_forked_childs_own_copy_does_not_hold_its_channel(tmp_path: Path, attached: bool) -> None:
    # The child side: a cp.fork() child forks a copy of itself (as its own
    # multiprocessing pool would), then disconnects.  The parent must see
    # the disconnect, whether or not the child had touched `process` before.
    (tmp_path / "child.py").write_text(
        textwrap.dedent(
            f"""
            import os, time
            from childproc import process
            if {attached}:
                process.send("hello")
            pid = os.fork()
            if pid == 0:
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 1)  # nor the test's output pipe
                os.dup2(null, 2)
                time.sleep(6)
                os._exit(0)
            process.disconnect()
            """
        )
    )
    got = run(
        """
        child = cp.fork("child.py")
        events = []
        child.on("message", lambda m, h=None: events.append(m))
        child.on("disconnect", lambda: events.append("disconnect"))
        t = time.monotonic()
        try:
            child.wait(timeout=4)
            result = {"events": events, "waited": time.monotonic() - t}
        except TimeoutError:
            result = {"events": events, "waited": None}
            child.kill()
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert got["waited"] is not None and got["waited"] < 4
    assert got["events"] == (["hello", "disconnect"] if attached else ["disconnect"])


def test_a_stream_closed_in_the_copy_stays_open_in_the_parent(tmp_path: Path) -> None:
    # fork copies the epoll fd, not the instance: unguarded, the copy's
    # destroy() removed the parent's pipe from the parent's own epoll.
    got = run(
        """
        child = cp.spawn("sh", ["-c", "sleep 0.3; echo done"])
        out = []
        child.stdout.on("data", out.append)
        pid = os.fork()
        if pid == 0:
            child.stdout.destroy()
            os._exit(0)
        os.waitpid(pid, 0)
        try:
            child.wait(timeout=3)
            result = {"out": b"".join(out).decode()}
        except TimeoutError:
            result = {"out": None}
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert got == {"out": "done\n"}


def test_the_copy_exits_without_waiting_for_the_parents_children(tmp_path: Path) -> None:
    got = run(
        """
        child = cp.spawn("sleep", ["2"])
        t = time.monotonic()
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a normal exit: atexit runs, the keep-alive loop with it
        os.waitpid(pid, 0)
        result = {"copy_exit": time.monotonic() - t}
        child.kill()
        child.wait()
        print(json.dumps(result))
        """,
        tmp_path,
    )
    assert got["copy_exit"] < 1.5


def test_the_copy_gets_a_clear_error_and_a_loop_of_its_own(tmp_path: Path) -> None:
    got = run(
        """
        child = cp.spawn("sleep", ["2"])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            seen = {}
            try:
                child.wait(timeout=1)
                seen["wait"] = "returned"
            except RuntimeError as exc:
                seen["wait"] = str(exc)
            own = cp.spawn("echo", ["mine"])
            out = []
            own.stdout.on("data", out.append)
            seen["own_code"] = own.wait(timeout=5)
            seen["own_out"] = b"".join(out).decode()
            os.write(w, json.dumps(seen).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        seen = json.loads(os.read(r, 65536))
        child.kill()
        seen["parent_code"] = child.wait(timeout=5)
        seen["parent_signal"] = child.signal_code
        print(json.dumps(seen))
        """,
        tmp_path,
    )
    assert "forked" in got["wait"]
    assert got["own_code"] == 0 and got["own_out"] == "mine\n"
    assert got["parent_signal"] == "SIGTERM"


def test_a_closed_loop_leaves_its_old_fd_numbers_alone_in_the_copy(tmp_path: Path) -> None:
    # A closed loop is still known to the fork handling until it is
    # collected; the pipe made after close() takes its old fd numbers, and
    # the copy must neither point them at /dev/null nor trip over the
    # closed poller.
    got = run(
        """
        from childproc._runtime.private import PrivateLoop
        loop = PrivateLoop()
        loop.close()
        r, w = os.pipe()
        problems = []
        sys.unraisablehook = lambda u: problems.append(repr(u.exc_value))
        pid = os.fork()
        if pid == 0:
            try:
                os.write(w, json.dumps({"problems": problems}).encode())
            finally:
                os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        print(os.read(r, 65536).decode() or "{}")
        """,
        tmp_path,
    )
    assert got == {"problems": []}


def test_multiprocessing_fork_workers_do_not_hold_the_channel(tmp_path: Path) -> None:
    # How this was found: a benchmark started a multiprocessing Pipe peer
    # after a cp.fork() child, and the child's disconnect never arrived.
    (tmp_path / "child.py").write_text(ECHO_CHILD)
    got = run(
        """
        import multiprocessing
        child = cp.fork("child.py")
        worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(6,))
        worker.start()
        child.disconnect()
        try:
            code = child.wait(timeout=3)
        except TimeoutError:
            code = "timeout"
        worker.kill()
        worker.join()
        print(json.dumps({"code": code}))
        """,
        tmp_path,
    )
    assert got == {"code": 0}


def test_a_fork_in_another_thread_during_spawn_sync(tmp_path: Path) -> None:
    # The pipes of a *_sync run live in C: held there, and closed in the
    # copy by an atfork handler (csrc/pipe_posix.c).  Unguarded, the copy
    # held the child's stdin open, and the run waited out its timeout.
    got = run(
        """
        import threading
        copies = []

        def forker():
            time.sleep(0.15)  # while the parent is still writing the input
            copies.append(copy_that_lingers())

        thread = threading.Thread(target=forker)
        thread.start()
        t = time.monotonic()
        r = cp.spawn_sync("sh", ["-c", "sleep 0.4; cat >/dev/null; echo done"],
                          input=b"x" * (4 << 20), timeout=3)
        took = time.monotonic() - t
        thread.join()
        for pid in copies:
            done(pid)
        print(json.dumps({"took": took, "copies": len(copies),
                          "error": r.error and r.error.code, "stdout": r.stdout.decode()}))
        """,
        tmp_path,
    )
    assert got["copies"] == 1
    assert got["error"] is None and got["stdout"] == "done\n"
    assert got["took"] < 2.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="die_with_parent's spawner thread is Linux's")
def test_die_with_parent_spawns_in_the_copy_after_the_parent_made_its_spawner_thread(tmp_path: Path) -> None:
    # The parent's spawner thread (it creates die_with_parent children) does
    # not exist in the copy: the copy must start its own, not queue its
    # spawn for a thread that will never take it.
    got = run(
        """
        assert cp.spawn("true", die_with_parent=True).wait() == 0
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = cp.spawn("true", die_with_parent=True).wait()
            os.write(w, str(code).encode())
            os._exit(0)
        os.close(w)
        answer = os.read(r, 16)
        os.waitpid(pid, 0)
        print(json.dumps({"copy": answer.decode()}))
        """,
        tmp_path,
        timeout=20,
    )
    assert got == {"copy": "0"}
