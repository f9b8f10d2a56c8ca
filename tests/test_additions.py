"""The additions beyond Node: kill_tree, force_kill_after, die_with_parent.

Node has no such options, so these are plain behaviour tests.  Every process a
test starts carries a unique marker argument (``sleep 30.<pid><n>``), found
again by scanning ``/proc/*/cmdline``; whatever is still alive at the end of
a test is killed by pid in ``finally``, so neither a failure nor a parallel
run leaves anything behind or touches another run's processes.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import childproc as cp

WATCHDOG_SECONDS = 30
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PDEATHSIG"),
    pytest.mark.usefixtures("watchdog"),
]

_counter = itertools.count(1)


def marker() -> str:
    """A `sleep` duration no other test or run uses: 30.<pid><n> seconds."""
    return f"30.{os.getpid()}{next(_counter):03d}"


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def marked(tag: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``tag``."""
    me = os.getpid()
    pattern = re.compile(r"(?<![\d.])" + re.escape(tag) + r"(?!\d)")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        args = _cmdline(int(name))
        if args and any(pattern.search(a) for a in args) and not _is_zombie(int(name)):
            found.append(int(name))
    return found


def sleepers(tag: str) -> list[int]:
    """The ``sleep <tag>`` processes themselves (not the shells naming them)."""
    return [p for p in marked(tag) if (_cmdline(p) or [""])[0] == "sleep"]


def session_leader(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except ProcessLookupError:
        return False


def alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}") and not _is_zombie(pid)


def ignores_term(pid: int) -> bool:
    """Whether ``pid`` has SIGTERM ignored (its shell ran ``trap '' TERM``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def wait_until(cond, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def wait_gone(tag: str, timeout: float = 1.0) -> list[int]:
    """Wait up to ``timeout`` for every process marked ``tag`` to end; the survivors."""
    wait_until(lambda: not marked(tag), timeout)
    return marked(tag)


def cleanup(*tags: str) -> None:
    for tag in tags:
        for pid in marked(tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def tree_script(m: str) -> str:
    # a background grandchild and a foreground one, both holding stdout/stderr
    return f"sleep {m} & sleep {m}; echo x"


# --------------------------------------------------------------------------
# kill_tree


def test_exec_timeout_kill_tree_kills_grandchildren():
    m = marker()
    try:
        got = {}
        t0 = time.monotonic()
        child = cp.exec(tree_script(m), lambda e, out, err: got.update(e=e, out=out, err=err, t=time.monotonic()),
                        timeout=0.3, kill_tree=True)
        assert wait_until(lambda: len(sleepers(m)) >= 2, 2), "the grandchildren did not start"
        child.wait(timeout=5)
        assert got["t"] - t0 < 1.0, got["t"] - t0
        e = got["e"]
        assert isinstance(e, cp.ExecError)
        assert (e.code, e.killed, e.signal) == (None, True, "SIGTERM")
        assert (got["out"], got["err"]) == ("", "")
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_exec_result_kill_tree_under_a_second():
    m = marker()
    try:
        t0 = time.monotonic()
        with pytest.raises(cp.ExecError) as info:
            cp.exec(tree_script(m), timeout=0.3, kill_tree=True).result(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert info.value.killed is True
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_exec_timeout_without_kill_tree_leaves_grandchild():
    """Node's behaviour: only the shell is signalled, its children live on."""
    m = marker()
    try:
        t0 = time.monotonic()
        with pytest.raises(cp.ExecError) as info:
            cp.exec(tree_script(m), timeout=0.3).result(timeout=5)
        # exec destroyed the pipes before killing, so it still returns promptly
        assert time.monotonic() - t0 < 2.0
        assert info.value.killed is True and info.value.signal == "SIGTERM"
        time.sleep(0.2)
        survivors = marked(m)
        assert survivors, "without kill_tree the grandchildren should survive"
        assert all(_cmdline(p)[:2] == ["sleep", m] for p in survivors), [_cmdline(p) for p in survivors]
    finally:
        cleanup(m)
    assert wait_gone(m) == []


def test_exec_max_buffer_kill_tree():
    m = marker()
    try:
        t0 = time.monotonic()
        with pytest.raises(cp.MaxBufferError):
            cp.exec(f"sleep {m} & printf 0123456789; sleep {m}", max_buffer=4, kill_tree=True).result(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_exec_abort_kill_tree():
    m = marker()
    try:
        ac = cp.AbortController()
        child = cp.exec(f"sleep {m} & echo ready; sleep {m}", kill_tree=True, signal=ac.signal)
        child.stdout.once("data", lambda *_: ac.abort("stop"))
        t0 = time.monotonic()
        with pytest.raises(cp.AbortError):
            child.result(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_spawn_kill_kill_tree():
    m = marker()
    try:
        child = cp.spawn("sh", ["-c", tree_script(m)], kill_tree=True)
        events = []
        child.on("close", lambda code, sig: events.append((code, sig)))
        assert wait_until(lambda: len(sleepers(m)) >= 2, 2)
        t0 = time.monotonic()
        assert child.kill() is True
        child.wait(timeout=5)
        assert time.monotonic() - t0 < 1.0
        assert events == [(None, "SIGTERM")]
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_spawn_timeout_kill_tree():
    m = marker()
    try:
        t0 = time.monotonic()
        child = cp.spawn("sh", ["-c", tree_script(m)], kill_tree=True, timeout=0.3)
        assert child.wait(timeout=5) is None
        assert time.monotonic() - t0 < 1.0
        assert child.signal_code == "SIGTERM" and child.killed
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_spawn_kill_tree_escaped_grandchild_close_is_bounded():
    """A descendant that left the group (setsid) keeps stdout open; 'close' still comes soon."""
    m = marker()
    try:
        child = cp.spawn("sh", ["-c", f"setsid sleep {m} & sleep {m}"], kill_tree=True)
        assert wait_until(lambda: len(sleepers(m)) == 2, 2), "the sleepers did not start"
        assert wait_until(lambda: any(session_leader(p) for p in sleepers(m)), 2), "setsid did not happen"
        t0 = time.monotonic()
        child.kill()
        child.wait(timeout=5)
        assert time.monotonic() - t0 < 1.5, time.monotonic() - t0
        # the escaped one is outside the group and is still there (cleaned up below)
        assert len(sleepers(m)) == 1
    finally:
        cleanup(m)


def test_spawn_sync_timeout_kill_tree():
    m = marker()
    try:
        t0 = time.monotonic()
        r = cp.spawn_sync("sh", ["-c", tree_script(m)], timeout=0.3, kill_tree=True)
        assert time.monotonic() - t0 < 1.0
        assert r.signal == "SIGTERM"
        assert isinstance(r.error, cp.SpawnError) and r.error.code == "ETIMEDOUT"
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_spawn_sync_timeout_kill_tree_leader_already_gone():
    """The child itself has exited; a grandchild in its group holds the
    pipes past the timeout.  The group still gets kill_signal, so the
    grandchild does not outlive the call (the child's own status stays)."""
    m = marker()
    try:
        t0 = time.monotonic()
        r = cp.spawn_sync("sh", ["-c", f"sleep {m} & exit 3"], timeout=0.3, kill_tree=True)
        assert time.monotonic() - t0 < 1.0
        assert (r.status, r.signal) == (3, None)
        assert isinstance(r.error, cp.SpawnError) and r.error.code == "ETIMEDOUT"
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_exec_sync_timeout_kill_tree():
    m = marker()
    try:
        t0 = time.monotonic()
        with pytest.raises(cp.SpawnError) as info:
            cp.exec_sync(tree_script(m), timeout=0.3, kill_tree=True, stdio="pipe")
        assert time.monotonic() - t0 < 1.0
        assert info.value.code == "ETIMEDOUT"
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_exec_file_sync_timeout_kill_tree():
    m = marker()
    try:
        t0 = time.monotonic()
        with pytest.raises(cp.SpawnError) as info:
            cp.exec_file_sync("sh", ["-c", tree_script(m)], timeout=0.3, kill_tree=True, stdio="pipe")
        assert time.monotonic() - t0 < 1.0
        assert info.value.code == "ETIMEDOUT"
        assert wait_gone(m) == []
    finally:
        cleanup(m)


def test_kill_tree_child_leads_its_own_group():
    child = cp.spawn("sleep", ["5"], kill_tree=True)
    try:
        assert os.getpgid(child.pid) == child.pid
    finally:
        child.kill("SIGKILL")
        child.wait(timeout=5)
    plain = cp.spawn("sleep", ["5"])
    try:
        assert os.getpgid(plain.pid) == os.getpgid(0)
    finally:
        plain.kill("SIGKILL")
        plain.wait(timeout=5)


# --------------------------------------------------------------------------
# force_kill_after

TRAP_TERM = "trap '' TERM; echo ready; while :; do sleep 0.05; done"


def test_spawn_force_kill_after():
    child = cp.spawn("sh", ["-c", TRAP_TERM], force_kill_after=0.3)
    try:
        events = []
        child.on("exit", lambda code, sig: events.append((code, sig, time.monotonic())))
        assert wait_until(lambda: ignores_term(child.pid), 5), "the child did not set its trap"
        t0 = time.monotonic()
        assert child.kill() is True
        child.wait(timeout=5)
        code, sig, t1 = events[0]
        assert (code, sig) == (None, "SIGKILL")
        assert 0.25 <= t1 - t0 < 1.0, t1 - t0
    finally:
        if child.exit_code is None and child.signal_code is None:
            child.kill("SIGKILL")
            child.wait(timeout=5)


def test_spawn_force_kill_after_not_needed():
    """The child ends on kill_signal: its own signal is reported, promptly."""
    child = cp.spawn("sleep", ["5"], force_kill_after=0.5)
    t0 = time.monotonic()
    child.kill()
    child.wait(timeout=5)
    assert child.signal_code == "SIGTERM"
    assert time.monotonic() - t0 < 0.4


def test_exec_timeout_force_kill_after():
    t0 = time.monotonic()
    with pytest.raises(cp.ExecError) as info:
        cp.exec(TRAP_TERM, timeout=0.2, force_kill_after=0.3).result(timeout=5)
    elapsed = time.monotonic() - t0
    assert (info.value.code, info.value.killed, info.value.signal) == (None, True, "SIGKILL")
    assert 0.45 <= elapsed < 1.3, elapsed


def test_spawn_sync_timeout_force_kill_after():
    t0 = time.monotonic()
    r = cp.spawn_sync("sh", ["-c", TRAP_TERM], timeout=0.2, force_kill_after=0.3)
    elapsed = time.monotonic() - t0
    assert r.signal == "SIGKILL"
    assert isinstance(r.error, cp.SpawnError) and r.error.code == "ETIMEDOUT"
    assert 0.45 <= elapsed < 1.3, elapsed


def test_exec_sync_timeout_force_kill_after():
    t0 = time.monotonic()
    with pytest.raises(cp.SpawnError) as info:
        cp.exec_sync(TRAP_TERM, timeout=0.2, force_kill_after=0.3, stdio="pipe")
    elapsed = time.monotonic() - t0
    assert info.value.code == "ETIMEDOUT" and info.value.signal == "SIGKILL"
    assert 0.45 <= elapsed < 1.3, elapsed


def test_force_kill_after_with_kill_tree():
    """Group members that ignore TERM are SIGKILLed too."""
    m = marker()
    try:
        script = f"trap '' TERM; sleep {m} & echo ready; while :; do sleep 0.05; done"
        t0 = time.monotonic()
        with pytest.raises(cp.ExecError) as info:
            cp.exec(script, timeout=0.2, kill_tree=True, force_kill_after=0.3).result(timeout=5)
        assert info.value.signal == "SIGKILL"
        assert time.monotonic() - t0 < 1.5
        assert wait_gone(m) == []
    finally:
        cleanup(m)


# --------------------------------------------------------------------------
# die_with_parent

_HELPER = r"""
import sys, threading, time
import childproc as cp
fn, marker, dwp = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
box = {}
def spawner():
    if fn == "spawn":
        child = cp.spawn("sleep", [marker], die_with_parent=dwp, stdio="ignore")
    elif fn == "exec":
        child = cp.exec("exec sleep " + marker, die_with_parent=dwp)
    elif fn == "exec_forking":  # the shell forks the command, as dash does here
        child = cp.exec("sleep " + marker + "; true", die_with_parent=dwp)
    elif fn == "shell_spawn":
        child = cp.spawn("sleep " + marker + "; true", shell=True, die_with_parent=dwp, stdio="ignore")
    else:  # kill_tree: a descendant in the background
        child = cp.spawn("sh", ["-c", "sleep " + marker + " & wait"], kill_tree=True,
                         die_with_parent=dwp, stdio="ignore")
    box["pid"] = child.pid
th = threading.Thread(target=spawner)
th.start()
th.join()                 # the spawning thread has exited
time.sleep(0.3)
print(box["pid"], flush=True)
time.sleep(60)
"""


def _start_helper(fn: str, m: str, dwp: bool) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    helper = subprocess.Popen([sys.executable, "-c", _HELPER, fn, m, "1" if dwp else "0"],
                              stdout=subprocess.PIPE, text=True, env=env)
    line = helper.stdout.readline()
    assert line.strip().isdigit(), f"helper failed: {line!r} rc={helper.poll()}"
    return helper, int(line)


@pytest.mark.parametrize("fn", ["spawn", "exec"])
def test_die_with_parent(fn):
    m = marker()
    helper = None
    try:
        helper, pid = _start_helper(fn, m, True)
        # the thread that spawned it is gone, the sleeper is not
        assert alive(pid) and _cmdline(pid)[-1] == m
        helper.kill()
        helper.wait(timeout=5)
        assert wait_until(lambda: not alive(pid), 1.5), "the sleeper outlived its parent"
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait(timeout=5)
        cleanup(m)


@pytest.mark.parametrize("fn", ["exec_forking", "shell_spawn", "kill_tree"])
def test_die_with_parent_covers_what_the_shell_runs(fn):
    # PDEATHSIG reaches only the shell; its group's warden kills the rest
    # (src/childproc/_runtime/lifecycle.py).
    m = marker()
    helper = None
    try:
        helper, _shell = _start_helper(fn, m, True)
        assert wait_until(lambda: [p for p in marked(m) if _cmdline(p) == ["sleep", m]] != [], 5)
        helper.kill()  # SIGKILL: nothing of the parent's runs any more
        helper.wait(timeout=5)
        assert wait_gone(m, 5) == [], "the command outlived its parent"
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait(timeout=5)
        cleanup(m)


@pytest.mark.parametrize("call", ["cp.exec_sync('sleep {m}; true', die_with_parent=True)",
                                  "cp.spawn_sync('sh', ['-c', 'sleep {m} & wait'], kill_tree=True, "
                                  "die_with_parent=True)"])
def test_die_with_parent_covers_what_a_sync_shell_runs(call):
    m = marker()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    helper = subprocess.Popen([sys.executable, "-c", "import childproc as cp\n" + call.format(m=m)], env=env)
    try:
        # (the helper's own command line holds the marker too)
        assert wait_until(lambda: [p for p in marked(m) if _cmdline(p) == ["sleep", m]] != [], 5)
        helper.kill()
        helper.wait(timeout=5)
        assert wait_gone(m, 5) == [], "the command outlived its parent"
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait(timeout=5)
        cleanup(m)


def test_die_with_parent_lets_a_finished_command_go():
    # The warden exits quietly once the child is done, and is reaped.
    before = set(os.listdir("/proc"))
    for _ in range(20):
        cp.exec("true", die_with_parent=True).result(10)
    cp.spawn("sh", ["-c", "exit 0"], kill_tree=True, die_with_parent=True).wait(10)
    for _ in range(5):
        cp.exec_sync("true", die_with_parent=True)

    def wardens() -> list[int]:
        # A zombie's cmdline is empty: it shows by its parent, us.
        return [int(p) for p in set(os.listdir("/proc")) - before
                if p.isdigit() and ("read x" in " ".join(_cmdline(int(p)) or [])
                                    or _is_zombie(int(p)) and _parent(int(p)) == os.getpid())]

    assert wait_until(lambda: wardens() == [], 5)  # gone, not even zombies (reaped)


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def test_without_die_with_parent_the_child_survives():
    m = marker()
    helper = None
    try:
        helper, pid = _start_helper("spawn", m, False)
        assert alive(pid)
        helper.kill()
        helper.wait(timeout=5)
        time.sleep(0.5)
        assert alive(pid) and _cmdline(pid)[-1] == m
    finally:
        if helper is not None and helper.poll() is None:
            helper.kill()
            helper.wait(timeout=5)
        cleanup(m)
    assert wait_gone(m) == []
