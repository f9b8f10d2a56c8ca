"""The sync API on Windows, compared with node.exe's spawnSync / execSync /
execFileSync where Node defines the behaviour."""

from __future__ import annotations

import errno
import json
import os
import sys

import pytest

import childproc
from winnode import compare_sync, py_sync, requires_node, run_node

PY = sys.executable
ECHO_ARGV = "import sys, json; sys.stdout.write(json.dumps(sys.argv[1:]))"


def pycase(code: str, *args: str, fn: str = "spawnSync", **options: object) -> dict[str, object]:
    return {"fn": fn, "file": PY, "args": ["-c", code, *args], "options": options}


@requires_node
def test_output_status_and_input() -> None:
    compare_sync({
        "stdout": pycase("print('hello')"),
        "stderr": pycase("import sys; sys.stderr.write('oops'); sys.exit(2)"),
        "input": pycase("import sys; sys.stdout.write(sys.stdin.read().upper())", input=b"abc\x00\xff"),
        "text": pycase("print('caf\\u00e9')", encoding="utf-8"),
        "exit3": pycase("raise SystemExit(3)"),
        "exit255": pycase("import os; os._exit(255)"),
        "exit_big": pycase("import os; os._exit(65536)"),
    })


@requires_node
def test_exit_status_is_unsigned_32_bit() -> None:
    # 0xC0000005, an access violation's status: Node reports 3221225477.
    ours = compare_sync({"av": pycase("import os; os._exit(-1073741819)")})
    assert ours["av"]["status"] == 0xC0000005


@requires_node
def test_timeout_and_max_buffer_errors() -> None:
    ours = compare_sync({
        "timeout": pycase("import time; time.sleep(60)", timeout=0.5),
        "max_buffer": pycase("import sys; sys.stdout.write('x' * 100000); sys.stdout.flush()", max_buffer=100),
        "exec_timeout": pycase("import time; time.sleep(60)", fn="execFileSync", timeout=0.5),
    })
    assert ours["timeout"]["error"] == "ETIMEDOUT"
    assert ours["timeout"]["signal"] == "SIGTERM"
    assert ours["max_buffer"]["error"] == "ENOBUFS"
    assert ours["exec_timeout"]["threw"]["code"] == "ETIMEDOUT"


def test_timeout_error_is_a_timeout_error() -> None:
    r = childproc.spawn_sync(PY, ["-c", "import time; time.sleep(60)"], timeout=0.3)
    assert isinstance(r.error, TimeoutError)
    assert r.error.code == "ETIMEDOUT"
    assert str(r.error) == f"spawnSync {PY} ETIMEDOUT"


@requires_node
def test_missing_program() -> None:
    ours = compare_sync({
        "spawn": {"fn": "spawnSync", "file": "no-such-program-here", "args": []},
        "exec_file": {"fn": "execFileSync", "file": "no-such-program-here", "args": ["a"]},
        "bad_cwd": pycase("pass", cwd="C:\\no\\such\\dir"),
    })
    assert ours["spawn"]["error"] == "ENOENT"
    with pytest.raises(FileNotFoundError):
        childproc.exec_file_sync("no-such-program-here")


@requires_node
def test_cwd_and_env(tmp_path: os.PathLike[str]) -> None:
    where = str(tmp_path)
    show_env = "import os, sys; sys.stdout.write(os.environ.get('CP_VAR', '-') + ' ' + str('SYSTEMROOT' in os.environ))"
    compare_sync({
        "cwd": pycase("import os, sys; sys.stdout.write(os.getcwd())", cwd=where),
        "env": pycase(show_env, env={"CP_VAR": "value with spaces"}),
        "env_inherited": pycase(show_env),
        "env_unicode": pycase("import os, sys; sys.stdout.write(ascii(os.environ['CP_VAR']))",
                              env={"CP_VAR": "\u00e9\u4e2d\U0001f600"}),
    })


@requires_node
def test_shell_is_cmd_exe() -> None:
    compare_sync({
        "echo": {"fn": "execSync", "file": "echo hello"},
        "quoted": {"fn": "execSync", "file": f'"{PY}" -c "print(6 * 7)"'},
        "env_expansion": {"fn": "spawnSync", "file": "echo %CP_VAR%", "args": [],
                          "options": {"shell": True, "env": {**os.environ, "CP_VAR": "expanded"}}},
        "args_joined": {"fn": "spawnSync", "file": "echo", "args": ["a", "b c"], "options": {"shell": True}},
        "exit_code": {"fn": "spawnSync", "file": "exit 7", "args": [], "options": {"shell": True}},
        "failing": {"fn": "execSync", "file": "exit 4"},
        "pipe": {"fn": "execSync", "file": f'echo piped| "{PY}" -c "import sys; print(sys.stdin.read().strip()[::-1])"'},
    })


@requires_node
def test_batch_files_need_a_shell(tmp_path: os.PathLike[str]) -> None:
    bat = os.path.join(tmp_path, "hello.bat")
    cmd = os.path.join(tmp_path, "HELLO2.CMD")
    for path in (bat, cmd):
        with open(path, "w") as f:
            f.write("@echo off\r\necho batch %1\r\n")
    ours = compare_sync({
        "bat": {"fn": "spawnSync", "file": bat, "args": ["x"]},
        "cmd_upper": {"fn": "spawnSync", "file": cmd, "args": ["x"]},
        "bat_trailing_dot": {"fn": "spawnSync", "file": bat + ". .", "args": []},
        "exec_file": {"fn": "execFileSync", "file": bat, "args": []},
        "shell": {"fn": "spawnSync", "file": f'"{bat}"', "args": ["arg"], "options": {"shell": True}},
    })
    assert ours["bat"]["error"] == "EINVAL"
    assert ours["shell"]["stdout"] == "batch arg\r\n"


TRICKY_ARGS = [
    "", "plain", "with space", "two  spaces", 'quote"inside', '"quoted"', "back\\slash",
    "trailing\\", "trailing\\\\", 'slash\\"quote', "tab\there", "\\\\server\\share\\", "a&b|c<d>e^f",
    "%PATH%", "caf\u00e9 \u4e2d", "", " ", "\\\"\\\\\"", "end\\ ",
]


@requires_node
def test_argument_quoting_round_trips() -> None:
    ours = compare_sync({"args": pycase(ECHO_ARGV, *TRICKY_ARGS, encoding="utf-8")})
    assert json.loads(ours["args"]["stdout"]) == TRICKY_ARGS


@pytest.mark.parametrize("arg", TRICKY_ARGS)
def test_each_argument_round_trips(arg: str) -> None:
    out = childproc.exec_file_sync(PY, ["-c", ECHO_ARGV, arg, "next"], encoding="utf-8")
    assert json.loads(out) == [arg, "next"]


@requires_node
def test_windows_verbatim_arguments() -> None:
    compare_sync({
        "verbatim": pycase(ECHO_ARGV, '"a b"', "c\\\"d", windows_verbatim_arguments=True),
        "quoted": pycase(ECHO_ARGV, '"a b"', "c\\\"d"),
    })


def test_windows_hide_and_ignore() -> None:
    r = childproc.spawn_sync(PY, ["-c", "print('x')"], windows_hide=True, stdio=["ignore", "pipe", "ignore"])
    assert (r.status, r.stdout, r.stderr) == (0, b"x\r\n", None)


def test_stdio_to_a_file(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "out.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        r = childproc.spawn_sync(PY, ["-c", "import sys; sys.stdout.write('to file'); sys.stderr.write('err')"],
                                 stdio=["ignore", fd, "pipe"])
    finally:
        os.close(fd)
    assert r.status == 0 and r.stderr == b"err"
    with open(path) as f:
        assert f.read() == "to file"


def test_extra_stdio_fd_reaches_the_child_as_crt_fd_3(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "fd3.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        r = childproc.spawn_sync(PY, ["-c", "import os; os.write(3, b'three')"], stdio=["ignore", "pipe", "pipe", fd])
    finally:
        os.close(fd)
    assert r.status == 0, r.stderr
    with open(path, "rb") as f:
        assert f.read() == b"three"


def test_large_output_and_input() -> None:
    data = os.urandom(3 << 20)
    r = childproc.spawn_sync(PY, ["-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"], input=data,
                             max_buffer=10 << 20)
    assert r.error is None and r.stdout == data


def test_error_codes_drop_the_winsock_prefix() -> None:
    from childproc._errnos import errno_code

    assert errno_code(errno.ETIMEDOUT) == "ETIMEDOUT"
    assert errno_code(errno.ENOBUFS) == "ENOBUFS"
    assert errno_code(errno.ECONNRESET) == "ECONNRESET"
    assert errno_code(errno.ENOENT) == "ENOENT"


def test_every_module_imports() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(childproc.__path__, "childproc."):
        if info.name == "childproc._build":
            continue  # the build script, not part of the installed package
        importlib.import_module(info.name)


def test_results_match_between_calls() -> None:
    # A prepared (repeated) call shape gives the same result as a fresh one.
    cases = {str(i): pycase("print('again')") for i in range(3)}
    ours = py_sync(cases)
    assert len({json.dumps(v, sort_keys=True) for v in ours.values()}) == 1


@requires_node
def test_node_error_numbers_are_libuvs() -> None:
    from childproc._errnos import _UV_WINDOWS

    node = run_node("const m = require('util').getSystemErrorMap(); const o = {};"
                    "for (const [k, v] of m) o[v[0]] = -k; out(o);")
    assert {name: node.get(name) for name in _UV_WINDOWS} == _UV_WINDOWS
