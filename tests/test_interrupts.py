"""Ctrl-C and the interpreter's exit (src/childproc/_runtime/lifecycle.py,
csrc/run_sync.c): each case runs a script in a fresh interpreter.

* A sync run interrupted by SIGINT kills and reaps its child and raises
  ``KeyboardInterrupt`` at once, as ``subprocess.run`` does, also when the
  child leads its own group (``kill_tree``, ``detached``), where a terminal's
  Ctrl-C never reaches it.
* At interpreter exit ref'd children keep the process alive (Node's rule)
  when the script simply ends or calls ``sys.exit()``; an uncaught exception
  or ``KeyboardInterrupt`` ends it at once and leaves the child running, as
  Node's uncaught throw does; Ctrl-C during the wait never ends with 0; a
  listener raising during the wait exits 1 (``sys.exit(n)``: n), as in Node.

Bounds on ``communicate`` only stop a hang from hanging the suite; nothing
here asserts a duration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.usefixtures("watchdog")
WATCHDOG_SECONDS = 90


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _start(code: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # SIGINT as Python sets it up in a terminal (a background job of a
    # non-interactive shell would inherit it ignored).
    script = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line, "the script ended early"
    return line.strip()


# -- Ctrl-C during a sync run ------------------------------------------------

# The child says its pid on stderr (inherited) once it runs, then becomes
# `sleep 30` (exec: the same pid), so SIGINT comes while C waits for it.
_CHILD = "echo $$ >&2; exec sleep 30"


@pytest.mark.parametrize("call", [
    "cp.spawn_sync('sh', ['-c', CHILD], stdio=['pipe', 'pipe', 'inherit'])",
    "cp.spawn_sync('sh', ['-c', CHILD], stdio='inherit')",
    "cp.spawn_sync('sh', ['-c', CHILD], stdio=['pipe', 'pipe', 'inherit'], kill_tree=True)",
    "cp.spawn_sync('sh', ['-c', CHILD], stdio=['pipe', 'pipe', 'inherit'], detached=True)",
    "cp.exec_sync(CHILD, stdio=['pipe', 'pipe', 'inherit'], kill_tree=True)",
    "cp.exec_file_sync('sh', ['-c', CHILD], stdio=['pipe', 'pipe', 'inherit'], timeout=60)",
], ids=["pipes", "inherit", "kill_tree", "detached", "exec_sync", "exec_file_sync_timed"])
def test_ctrl_c_interrupts_a_sync_run(call: str) -> None:
    proc = _start(textwrap.dedent(f"""
        import childproc as cp
        CHILD = {_CHILD!r}
        try:
            {call}
            print("returned")
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """))
    child = int(_line(proc))
    time.sleep(0.1)  # into the C wait
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert out.strip() == "KeyboardInterrupt", err
    assert not _alive(child)  # killed, and reaped (not a zombie of ours either)
    assert proc.returncode == 0


def test_a_handler_that_does_not_raise_lets_the_run_go_on() -> None:
    proc = _start(textwrap.dedent("""
        import signal
        import childproc as cp
        seen = []
        signal.signal(signal.SIGINT, lambda *_: seen.append(1))
        r = cp.spawn_sync('sh', ['-c', 'echo go >&2; sleep 0.5; echo done'], stdio=['pipe', 'pipe', 'inherit'])
        print(r.stdout.decode().strip(), len(seen))
    """))
    assert _line(proc) == "go"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert out.split() == ["done", "1"], err


# -- interpreter exit ----------------------------------------------------------

_SLEEPER = textwrap.dedent("""
    import sys
    import childproc as cp
    child = cp.spawn('sleep', ['100'])
    print(child.pid, file=sys.stderr, flush=True)
""")


def _ends_leaving_child(proc: subprocess.Popen[str]) -> tuple[int, str]:
    child = int(_line(proc))
    try:
        proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()  # (what readline already buffered included)
        assert _alive(child)  # Node leaves it running too
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, err


def test_uncaught_exception_exits_at_once() -> None:
    code, err = _ends_leaving_child(_start(_SLEEPER + "raise RuntimeError('boom')\n"))
    assert code == 1
    assert "RuntimeError: boom" in err


def test_uncaught_keyboard_interrupt_exits_at_once() -> None:
    proc = _start(_SLEEPER + "import time\ntime.sleep(60)\n")
    child = int(_line(proc))
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    finally:
        os.kill(child, signal.SIGKILL)
    assert proc.returncode == -signal.SIGINT


@pytest.mark.parametrize("ending", ["", "sys.exit(3)\n", "raise SystemExit(3)\n"])
def test_a_normal_ending_waits_for_ref_d_children(ending: str) -> None:
    # sys.exit(main()) is how Python programs end normally: it waits too.
    proc = _start(textwrap.dedent("""
        import sys
        import childproc as cp
        child = cp.spawn('sleep', ['0.5'])
        child.on('exit', lambda code, sig: print('exit', code, sig))
    """) + ending)
    out, err = proc.communicate(timeout=30)
    assert out.strip() == "exit 0 None", err
    assert proc.returncode == (3 if ending else 0)


def test_ctrl_c_during_the_exit_wait_is_not_a_success() -> None:
    proc = _start(_SLEEPER + "print('ending', file=sys.stderr, flush=True)\n")
    child = int(_line(proc))
    assert _line(proc) == "ending"
    time.sleep(0.2)  # into the at-exit wait
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    finally:
        os.kill(child, signal.SIGKILL)
    assert proc.returncode == -signal.SIGINT


# A listener that raises (or exits) while the process waits at exit ends it as
# if that had left the main module; Python alone would print it and exit 0.
_LATE_ENDINGS = {
    "raise": ("raise RuntimeError('late boom')", "throw new Error('late boom')"),
    "exit5": ("sys.exit(5)", "process.exit(5)"),
}


def _late_parent_py(child: str) -> str:
    return textwrap.dedent(f"""
        import sys
        import childproc as cp
        c = cp.fork({child!r}, silent=True)
        err, out = [], []
        c.stderr.on('data', err.append)
        c.stdout.on('data', out.append)
        c.on('close', lambda code, sig: print(code, sig, b''.join(err).decode().count('late boom'),
                                             b''.join(out).decode().count('earlier handler ran')))
        c.send('go')
    """)


@pytest.mark.parametrize("ending", sorted(_LATE_ENDINGS))
def test_a_listener_raising_during_the_exit_wait_ends_like_node(ending: str, tmp_path) -> None:
    from nodecmp import need_node, run_node

    py_body, js_body = _LATE_ENDINGS[ending]
    py_child = tmp_path / "late.py"
    py_child.write_text(textwrap.dedent(f"""
        import atexit, sys
        atexit.register(print, 'earlier handler ran', flush=True)  # runs after the keep-alive's
        import childproc
        from childproc import process
        def on(message, handle=None):
            {py_body}
        process.on('message', on)
    """))
    proc = _start(_late_parent_py(str(py_child)))
    out, err = proc.communicate(timeout=30)
    code, sig, booms, earlier = out.split()
    assert earlier == '1', err  # the at-exit handlers still to come ran, once
    need_node()
    js_child = tmp_path / "late.js"
    js_child.write_text(f"process.on('message', () => {{ {js_body} }})\n")
    node = run_node(f"""
        const c = require('child_process').fork({str(js_child)!r}, {{silent: true}});
        let err = '';
        c.stderr.on('data', (d) => {{ err += d; }});
        c.on('close', (code, sig) => console.log(code, sig, err.split('late boom').length - 1));
        c.send('go');
    """).stdout.decode().split()
    assert [code, sig] == [node[0], "None" if node[1] == "null" else node[1]], err
    assert (int(booms) > 0) == (int(node[2]) > 0)  # the traceback printed, as Node prints its stack
