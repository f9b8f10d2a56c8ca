"""exec_sync / exec_file_sync: compared with Node's execSync / execFileSync.

What is compared (see tests/conftest.py): returned value (bytes / str / None) or
the thrown error (ExecError 'Command failed: ...' vs SpawnError 'spawnSync ...',
its message, status, signal, pid == 0, output, stdout, stderr, and for spawn
errors code/errno/syscall/path/spawnargs), plus what reached the parent's
stdout and stderr (Node copies captured stderr there when `stdio` was not given).
"""

from __future__ import annotations

import errno
import io
import sys

import pytest

import childproc as cp

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX behaviour")

PY = sys.executable


def ex(command, **opts):
    return dict(fn="exec_sync", file=command, args=None, opts=opts, node_opts={}, setup=None, collect=None, ignore=())


def exf(file, args=None, **opts):
    return dict(fn="exec_file_sync", file=file, args=args, opts=opts, node_opts={}, setup=None, collect=None,
                ignore=())


def params(**cases):
    return pytest.mark.parametrize("c", [pytest.param(v, id=k) for k, v in cases.items()])


# ---------------------------------------------------------------- exec_sync


@params(
    echo=ex("echo hi"),
    utf8=ex("printf 'é€'", encoding="utf8"),
    latin1=ex(r"printf '\351'", encoding="latin1"),
    buffer=ex("printf x", encoding="buffer"),
    stderr_copied_on_success=ex("echo out; echo err >&2"),
    stderr_copied_utf8=ex("echo out; echo érr >&2", encoding="utf8"),
    stderr_not_copied_with_stdio_pipe=ex("echo out; echo err >&2", stdio="pipe"),
    stderr_not_copied_with_stdio_list=ex("echo out; echo err >&2", stdio=["pipe", "pipe", "pipe"]),
    stderr_inherited=ex("echo out; echo err >&2", stdio=["pipe", "pipe", "inherit"]),
    inherit_returns_none=ex("echo out; echo err >&2", stdio="inherit"),
    ignore_returns_none=ex("echo out", stdio="ignore"),
    nonzero_exit=ex("echo out; echo err >&2; exit 4"),
    nonzero_exit_no_stderr=ex("exit 2"),
    nonzero_exit_utf8=ex("echo out; echo err >&2; exit 4", encoding="utf8"),
    nonzero_exit_stdio_inherit=ex("echo out; echo err >&2; exit 4", stdio="inherit"),
    nonzero_exit_stdio_pipe=ex("echo err >&2; exit 4", stdio="pipe"),
    not_found_in_shell=ex("does-not-exist-xyz --flag"),
    signal_term=ex("kill -TERM $$"),
    signal_kill_with_stderr=ex("echo dying >&2; kill -KILL $$"),
    timeout=ex("sleep 5", timeout=0.1),
    timeout_kill_signal=ex("sleep 5", timeout=0.1, kill_signal="SIGKILL"),
    max_buffer=ex("printf 0123456789; exec sleep 5", max_buffer=4),
    max_buffer_exited_child=ex("(sleep 0.3; printf 0123456789) &", max_buffer=4),
    max_buffer_zero=ex("head -c 1500000 /dev/zero", max_buffer=0),
    default_max_buffer_exceeded=ex("head -c 1048577 /dev/zero; exec sleep 5"),
    bad_shell=ex("exit -1", shell="bad_shell"),
    shell_string=ex("echo $0", shell="/bin/bash"),
    shell_false_still_shell=ex("echo $0 | tr a-z A-Z", shell=False),
    input_str=ex("cat", input="from input é"),
    input_bytes=ex("cat; echo", input=b"\x00\xff"),
    cwd=ex("pwd", cwd="/usr"),
    cwd_missing=ex("pwd", cwd="/nonexistent-childproc-dir"),
    env=ex('printf "%s" "$X"', env={"X": "value é", "PATH": "/usr/bin:/bin"}),
    argv0=ex("echo $0", argv0="custom0"),
    stdio_given_stdin_only_differs=ex("echo out; echo err >&2", stdio=["inherit", "pipe", "pipe"]),
    stderr_invalid_utf8_copied=ex(r"echo ok; printf 'bad \377\376\n' >&2"),
    failure_message_invalid_utf8=ex(r"printf 'bad \377\n' >&2; exit 3"),
    failure_message_utf8=ex("printf 'érr\n' >&2; exit 3"),
    epipe_large_input_unread=ex("head -c 1", input=b"x" * (5 * 1024 * 1024)),
)
def test_exec_sync(sync_compare, c):
    sync_compare.check(c)


# ---------------------------------------------------------------- exec_file_sync


@params(
    echo=exf("echo", ["a b", "c"]),
    no_args=exf("true"),
    args_none=exf("echo", None),
    utf8=exf("echo", ["é"], encoding="utf8"),
    stderr_copied=exf("sh", ["-c", "echo out; echo err >&2"]),
    nonzero=exf("sh", ["-c", "echo err >&2; exit 5"]),
    nonzero_no_stderr=exf("false"),
    signal=exf("sh", ["-c", "kill -TERM $$"]),
    enoent=exf("nope-xyz", ["a"]),
    enoent_abs=exf("/nonexistent/prog"),
    eacces_dir=exf("/tmp"),
    timeout=exf("sleep", ["5"], timeout=0.1),
    max_buffer=exf("sh", ["-c", "printf 0123456789; exec sleep 5"], max_buffer=4),
    argv0=exf("sh", ["-c", "echo $0"], argv0="custom"),
    argv0_in_failure_message=exf("sh", ["-c", "echo bad >&2; exit 3"], argv0="custom"),
    shell_true=exf("echo", ["$0", "a  b"], shell=True),
    shell_true_failure_message=exf("echo x >&2; exit", ["7"], shell=True),
    stdio_inherit=exf("echo", ["inherited"], stdio="inherit"),
    input=exf("cat", [], input=bytearray(b"abc")),
    detached=exf(PY, ["-c", "import os; print(os.getsid(0) == os.getpid())"], detached=True),
    missing_cwd=exf("ls", [], cwd="/nonexistent-childproc-dir"),
    epipe_large_input_unread=exf("head", ["-c", "1"], input=b"x" * (5 * 1024 * 1024)),
    args_tuple=exf("echo", ("a", "b")),
)
def test_exec_file_sync(sync_compare, c):
    sync_compare.check(c)


# ---------------------------------------------------------------- Python view


def test_exec_sync_returns_bytes_and_str():
    assert cp.exec_sync("echo hi") == b"hi\n"
    assert cp.exec_sync("echo hi", encoding="utf8") == "hi\n"
    assert cp.exec_file_sync("echo", ["hi"]) == b"hi\n"
    assert cp.exec_file_sync("echo", ["hi"], encoding="utf-8") == "hi\n"
    assert cp.exec_file_sync("echo", ["hi"], {"encoding": "utf8"}) == "hi\n"
    assert cp.exec_sync("echo hi", {"encoding": "utf8"}) == "hi\n"


def test_exec_sync_error_attributes():
    with pytest.raises(cp.ExecError) as ei:
        cp.exec_sync("echo out; echo err >&2; exit 4", stdio="pipe")
    e = ei.value
    assert str(e) == "Command failed: echo out; echo err >&2; exit 4\nerr\n"
    assert e.status == 4 and e.signal is None
    assert e.stdout == b"out\n" and e.stderr == b"err\n"
    assert e.output == [None, b"out\n", b"err\n"]
    assert isinstance(e.pid, int) and e.pid > 0


def test_exec_sync_signal_error():
    with pytest.raises(cp.ExecError) as ei:
        cp.exec_sync("kill -TERM $$", stdio="pipe")
    assert str(ei.value) == "Command failed: kill -TERM $$"
    assert ei.value.status is None and ei.value.signal == "SIGTERM"


def test_exec_file_sync_spawn_error_attributes():
    with pytest.raises(cp.SpawnError) as ei:
        cp.exec_file_sync("nope-xyz", ["a"])
    e = ei.value
    assert isinstance(e, OSError)
    assert e.errno == errno.ENOENT and e.code == "ENOENT"
    assert e.syscall == "spawnSync nope-xyz" and e.path == "nope-xyz" and list(e.spawnargs) == ["a"]
    assert str(e) == "spawnSync nope-xyz ENOENT"
    assert e.pid == 0 and e.output is None and e.stdout is None and e.stderr is None
    assert e.status is None and e.signal is None


def test_exec_sync_timeout_error_attributes():
    with pytest.raises(cp.SpawnError) as ei:
        cp.exec_sync("echo partial; exec sleep 5", timeout=0.2)
    e = ei.value
    assert e.code == "ETIMEDOUT" and e.errno == errno.ETIMEDOUT
    assert e.syscall == "spawnSync /bin/sh" and e.path == "/bin/sh"
    assert list(e.spawnargs) == ["-c", "echo partial; exec sleep 5"]
    assert e.signal == "SIGTERM" and e.status is None and e.pid > 0
    assert e.stdout == b"partial\n"


def test_exec_sync_max_buffer_error_attributes():
    with pytest.raises(cp.SpawnError) as ei:
        cp.exec_sync("printf 0123456789; exec sleep 5", max_buffer=4)
    assert ei.value.code == "ENOBUFS" and ei.value.stdout == b"0123456789"


def test_stderr_copied_to_sys_stderr(capsys):
    # capsys replaces sys.stderr only (not fd 2): the copy must go through sys.stderr
    out = cp.exec_sync("echo out; echo err >&2")
    assert out == b"out\n"
    captured = capsys.readouterr()
    assert captured.err == "err\n"
    assert captured.out == ""


def test_stderr_copied_on_failure_to_sys_stderr(capsys):
    with pytest.raises(cp.ExecError):
        cp.exec_file_sync("sh", ["-c", "echo bad >&2; exit 1"])
    assert capsys.readouterr().err == "bad\n"


def test_stderr_copied_when_sys_stderr_is_replaced(monkeypatch):
    # a user who swaps sys.stderr for an in-memory stream still gets the copy there
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    cp.exec_sync("echo err >&2")
    assert buf.getvalue() == "err\n"


def test_stderr_not_copied_when_stdio_given(capsys):
    assert cp.exec_sync("echo out; echo err >&2", stdio="pipe") == b"out\n"
    assert capsys.readouterr().err == ""


def test_inherit_returns_none(capfd):
    assert cp.exec_sync("echo to-parent", stdio="inherit") is None
    assert cp.exec_file_sync("echo", ["to-parent-2"], stdio="inherit") is None
    assert capfd.readouterr().out == "to-parent\nto-parent-2\n"


def test_exec_file_sync_does_not_use_shell():
    assert cp.exec_file_sync("echo", ["$HOME", "a;b"]) == b"$HOME a;b\n"
