"""kill_tree, die_with_parent and force_kill_after on Windows: job objects."""

from __future__ import annotations

import _winapi
import sys

import childproc

PY = sys.executable
SYNCHRONIZE = 0x00100000
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

# A child that starts a grandchild sharing its stdout, prints the
# grandchild's pid and then sleeps too.
PARENT = (
    "import subprocess, sys, time\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print(g.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def first_chunk(child: childproc.ChildProcess) -> int:
    for chunk in child.stdout:  # the pid comes in one write
        return int(chunk)
    raise AssertionError("no output")


def alive(pid: int) -> bool:
    try:
        handle = _winapi.OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    except OSError:
        return False
    try:
        return _winapi.WaitForSingleObject(handle, 0) != _winapi.WAIT_OBJECT_0
    finally:
        _winapi.CloseHandle(handle)


def test_kill_tree_ends_the_grandchild() -> None:
    child = childproc.spawn(PY, ["-c", PARENT], kill_tree=True)
    grandchild = first_chunk(child)
    assert alive(grandchild)
    assert child.kill()
    child.wait()
    assert (child.exit_code, child.signal_code) == (None, "SIGTERM")
    assert not alive(grandchild)


def test_without_kill_tree_only_the_child_dies() -> None:
    child = childproc.spawn(PY, ["-c", PARENT], stdio=["ignore", "pipe", "ignore"])
    grandchild = first_chunk(child)
    child.kill()
    child.stdout.destroy()  # the grandchild still holds the pipe
    child.wait()
    try:
        assert alive(grandchild)  # Node's (and libuv's) behaviour: the direct child only
    finally:
        handle = _winapi.OpenProcess(1, False, grandchild)  # PROCESS_TERMINATE
        _winapi.TerminateProcess(handle, 1)
        _winapi.CloseHandle(handle)


def test_sync_timeout_with_kill_tree_returns_with_the_tree_gone() -> None:
    r = childproc.spawn_sync(PY, ["-c", PARENT], timeout=1, kill_tree=True)
    assert r.error is not None and r.error.code == "ETIMEDOUT"
    assert r.signal == "SIGTERM"
    assert not alive(int(r.stdout))


def test_exec_timeout_with_kill_tree() -> None:
    try:
        childproc.exec_file(PY, ["-c", PARENT], timeout=1, kill_tree=True).result()
    except childproc.ExecError as e:
        assert (e.killed, e.signal) == (True, "SIGTERM")
        assert not alive(int(e.stdout))
    else:
        raise AssertionError("the exec did not time out")


def test_force_kill_after_is_accepted() -> None:
    # TerminateProcess cannot be refused, so the forced kill finds nothing.
    child = childproc.spawn(PY, ["-c", "import time; time.sleep(60)"], force_kill_after=0.2)
    child.kill()
    child.wait()
    assert child.signal_code == "SIGTERM"


def test_die_with_parent_child_dies_with_us() -> None:
    # A middle python spawns a sleeper with die_with_parent and exits hard:
    # the sleeper must go with it.
    middle = (
        "import childproc, os, sys\n"
        "c = childproc.spawn(sys.executable, ['-c', 'import time; time.sleep(60)'], die_with_parent=True,"
        " stdio='ignore')\n"
        "print(c.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = childproc.exec_file_sync(PY, ["-c", middle], encoding="utf-8")
    pid = int(out)
    for _ in range(100):
        if not alive(pid):
            break
        import time

        time.sleep(0.05)
    assert not alive(pid)
