"""spawn_sync: behaviour compared with Node's spawnSync, plus Python-only contract.

Each parametrised case is written once (Python names, seconds) and run through
`node` and through childproc by the ``sync_compare`` fixture (tests/conftest.py);
the comparison covers status, signal, pid == 0, output layout, stdout/stderr,
error code/errno/syscall/path/spawnargs/message and what reached the parent's
stdout/stderr.
"""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import sys
import time

import pytest

import childproc as cp

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX behaviour")

PY = sys.executable
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
LINUX = sys.platform.startswith("linux")


def case(file, args=None, *, fn="spawn_sync", setup=None, collect=None, node_opts=None, ignore=(), **opts):
    return dict(
        fn=fn, file=file, args=args, opts=opts, node_opts=node_opts or {}, setup=setup, collect=collect,
        ignore=tuple(ignore),
    )


def open_fd(path, flags="w"):
    return {"$openfd": path, "flags": flags}


def params(**cases):
    return pytest.mark.parametrize("c", [pytest.param(v, id=k) for k, v in cases.items()])


def tmpfile(name):
    return lambda tmp: str(tmp / name)


def make_exe(tmp, rel, text, mode=0o755):
    p = tmp / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    p.chmod(mode)
    return p


# ---------------------------------------------------------------- exit codes


@params(
    out_err_exit3=case("sh", ["-c", "echo out; echo err >&2; exit 3"]),
    exit0=case("sh", ["-c", "exit 0"]),
    exit1=case("sh", ["-c", "exit 1"]),
    exit255=case("sh", ["-c", "exit 255"]),
    exit200=case("sh", ["-c", "exit 200"]),
    windows_hide_ignored=case("echo", ["x"], windows_hide=True),
    true_no_args=case("true"),
    false_no_args=case("false"),
    echo_args=case("echo", ["a", "b c", "", "$HOME", "*"]),
    echo_non_ascii=case("echo", ["héllo wörld €", "日本"]),
    python_exit42=case(PY, ["-c", "import sys; sys.stdout.write('x'); sys.exit(42)"]),
    empty_output=case("sh", ["-c", ":"]),
    binary_output=case("sh", ["-c", r"printf '\000\001\377\376'"]),
)
def test_exit_codes_and_output(sync_compare, c):
    sync_compare.check(c)


def test_result_fields_python(tmp_path):
    r = cp.spawn_sync("sh", ["-c", "echo out; echo err >&2; exit 3"])
    assert isinstance(r, cp.SpawnSyncResult)
    assert r.pid > 0 and r.pid != os.getpid()
    assert r.status == 3 and r.signal is None and r.error is None
    assert r.output == [None, b"out\n", b"err\n"]
    assert r.stdout == r.output[1] and r.stderr == r.output[2]
    assert type(r.stdout) is bytes


def test_options_positional_dict_and_kwargs():
    a = cp.spawn_sync("sh", ["-c", "printf %s $X"], {"env": {"X": "1"}, "encoding": "utf8"})
    b = cp.spawn_sync("sh", ["-c", "printf %s $X"], env={"X": "1"}, encoding="utf8")
    assert a.stdout == b.stdout == "1"


def test_unknown_option_raises_type_error():
    with pytest.raises(TypeError):
        cp.spawn_sync("true", [], no_such_option=1)
    with pytest.raises(TypeError):
        cp.spawn_sync("true", [], killSignal="SIGKILL")  # Node's spelling is not accepted


def test_bytes_and_pathlike_args():
    r = cp.spawn_sync(b"printf", [b"%s|%s", b"\xff\xfe", pathlib.Path("/a/b")])
    assert r.error is None, r.error
    assert r.stdout == b"\xff\xfe|/a/b"
    r = cp.spawn_sync(pathlib.Path("/bin/echo"), ("tuple", "args"))
    assert r.stdout == b"tuple args\n"
    assert cp.exec_file_sync(pathlib.Path("/bin/echo"), [b"raw\xff"]) == b"raw\xff\n"


def test_argv0_bytes():
    r = cp.spawn_sync("sh", ["-c", 'printf "%s" "$0"'], argv0=b"arg0-\xff")
    assert r.error is None, r.error
    assert r.stdout == b"arg0-\xff"


# ---------------------------------------------------------------- signals


@params(
    term=case("sh", ["-c", "kill -TERM $$"]),
    kill=case("sh", ["-c", "echo before; kill -KILL $$; echo after"]),
    int_=case("sh", ["-c", "kill -INT $$"]),
    hup=case("sh", ["-c", "kill -HUP $$"]),
    usr1=case("sh", ["-c", "kill -USR1 $$"]),
    python_usr2=case(PY, ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGUSR2)"]),
)
def test_signals(sync_compare, c):
    sync_compare.check(c)


def test_signal_python_view():
    r = cp.spawn_sync("sh", ["-c", "kill -TERM $$"])
    assert r.status is None and r.signal == "SIGTERM" and r.error is None and r.pid > 0


# ---------------------------------------------------------------- spawn errors


def _noexec(tmp):
    make_exe(tmp, "plain.txt", "echo hi\n", mode=0o644)


def _noshebang(tmp):
    make_exe(tmp, "noshebang", 'echo "via sh: $0 $1"\n')


def _path_eacces(tmp):
    make_exe(tmp, "a/mytool", "#!/bin/sh\necho a\n", mode=0o644)
    (tmp / "b").mkdir(exist_ok=True)


def _path_eacces_then_ok(tmp):
    make_exe(tmp, "a/mytool", "#!/bin/sh\necho a\n", mode=0o644)
    make_exe(tmp, "b/mytool", "#!/bin/sh\necho b\n")


@params(
    enoent=case("nope-xyz", ["a"]),
    enoent_no_args=case("nope-xyz"),
    enoent_abs=case("/nonexistent/dir/prog", ["x", "y"]),
    enoent_missing_cwd=case("ls", [], cwd="/nonexistent-childproc-dir"),
    enoent_missing_cwd_abs_file=case("/bin/ls", ["-l"], cwd="/nonexistent-childproc-dir"),
    enoent_argv0=case("nope-xyz", ["a", "b"], argv0="zzz"),
    enoent_shell=case("exit 1", shell="bad_shell"),
    enoent_shell_args=case("echo", ["a", "b"], shell="/nonexistent/sh"),
    eacces_file=case(tmpfile("plain.txt"), ["x"], setup=_noexec),
    eacces_dir=case(lambda tmp: str(tmp), []),
    eacces_dir_tmp=case("/tmp"),
    eacces_in_path=case("mytool", env=lambda t: {"PATH": f"{t}/a:{t}/b"}, setup=_path_eacces),
    eacces_then_found_in_path=case("mytool", env=lambda t: {"PATH": f"{t}/a:{t}/b"}, setup=_path_eacces_then_ok),
    no_shebang_runs_via_sh=case(tmpfile("noshebang"), ["arg1"], setup=_noshebang),
    no_shebang_via_path=case("noshebang", ["arg1"], env=lambda t: {"PATH": str(t)}, setup=_noshebang),
)
def test_spawn_errors(sync_compare, c):
    sync_compare.check(c)


def test_spawn_error_python_view():
    r = cp.spawn_sync("nope-xyz", ["a"])
    assert r.pid == 0 and r.output is None and r.stdout is None and r.stderr is None
    assert r.status is None and r.signal is None
    e = r.error
    assert isinstance(e, cp.SpawnError) and isinstance(e, OSError)
    assert e.errno == errno.ENOENT
    assert e.code == "ENOENT"
    assert e.syscall == "spawnSync nope-xyz"
    assert e.path == "nope-xyz"
    assert list(e.spawnargs) == ["a"]
    assert str(e) == "spawnSync nope-xyz ENOENT"


def test_eacces_python_view(tmp_path):
    _noexec(tmp_path)
    r = cp.spawn_sync(str(tmp_path / "plain.txt"))
    assert r.error is not None and r.error.errno == errno.EACCES and r.error.code == "EACCES"
    assert r.pid == 0 and r.output is None


# ---------------------------------------------------------------- PATH lookup


def _mytool(tmp):
    make_exe(tmp, "bin/mytool", "#!/bin/sh\necho found mytool\n")


@params(
    child_env_path=case("mytool", env=lambda t: {"PATH": f"/nonexistent:{t}/bin"}, setup=_mytool),
    child_env_path_relative_entry_missing=case("mytool", env=lambda t: {"PATH": f":{t}/bin"}, setup=_mytool),
    empty_env_default_path_ls=case("ls", ["/"], env={}),
    empty_env_env=case("env", [], env={}),
    env_without_path_finds_sh=case("sh", ["-c", "echo $0 ok"], env={"A": "1"}),
    path_not_searched_with_slash=case("bin/mytool", cwd=lambda t: str(t), setup=_mytool),
)
def test_path_lookup(sync_compare, c):
    sync_compare.check(c)


def test_path_comes_from_child_env_not_parent(sync_compare, tmp_path, monkeypatch):
    # mytool is on the parent's PATH but not on the child's: not found (Node: ENOENT)
    _mytool(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}/bin:{os.environ['PATH']}")
    sync_compare.check(case("mytool", env={"PATH": "/usr/bin:/bin"}))
    # and with env={} the default list is used, not the parent's PATH
    sync_compare.check(case("mytool", env={}))


def test_parent_path_used_without_env(sync_compare, tmp_path, monkeypatch):
    _mytool(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}/bin:{os.environ['PATH']}")
    sync_compare.check(case("mytool"))


# ---------------------------------------------------------------- env


@params(
    only_given=case("env", [], env={"A": "1", "B": "two words"}),
    non_ascii=case("sh", ["-c", 'printf "%s|%s" "$X" "$Y"'], env={"X": "héllo €", "Y": "日本語"}),
    equals_in_value=case("sh", ["-c", 'printf "%s" "$X"'], env={"X": "a=b=c"}),
    empty_value=case("sh", ["-c", 'printf "[%s]" "${X-unset}"'], env={"X": ""}),
    newline_in_value=case("sh", ["-c", 'printf "[%s]" "$X"'], env={"X": "line1\nline2"}),
    env_none_inherits=case("sh", ["-c", 'printf "%s" "${HOME:+home-set}"'], env=None),
    case_sensitive_dupes=case("sh", ["-c", 'printf "%s %s" "$dup" "$DUP"'], env={"dup": "lo", "DUP": "up"}),
)
def test_env(sync_compare, c):
    sync_compare.check(c)


def test_env_inherited_from_os_environ(sync_compare, monkeypatch):
    # os.environ changes made by Python are what the child gets (Node: process.env)
    monkeypatch.setenv("CHILDPROC_T_VAR", "from parent é")
    sync_compare.check(case("sh", ["-c", 'printf "%s" "$CHILDPROC_T_VAR"']))
    monkeypatch.delenv("CHILDPROC_T_VAR")
    sync_compare.check(case("sh", ["-c", 'printf "%s" "${CHILDPROC_T_VAR-unset}"']))


def test_env_bytes_keys_and_values():
    r = cp.spawn_sync("sh", ["-c", 'printf "%s|%s" "$BK" "$SK"'], env={b"BK": b"\xff\xfe raw", "SK": "str"})
    assert r.error is None, r.error
    assert r.stdout == b"\xff\xfe raw|str"


def test_env_non_ascii_bytes_exact():
    r = cp.spawn_sync("sh", ["-c", 'printf "%s" "$X"'], env={"X": "é€"})
    assert r.stdout == "é€".encode()


# ---------------------------------------------------------------- cwd


@params(
    str_=case("pwd", cwd=lambda t: str(t)),
    bytes_=case("pwd", cwd=lambda t: os.fsencode(t)),
    pathlike=case("pwd", cwd=lambda t: t),
    none_means_none=case("pwd", cwd=None),
    relative_to_parent_cwd=case("pwd", cwd=".."),
    relative_file_after_chdir=case("./hello.sh", cwd=lambda t: str(t),
                                   setup=lambda t: make_exe(t, "hello.sh", "#!/bin/sh\necho rel\n")),
    cwd_is_a_file=case("pwd", cwd=tmpfile("plain.txt"), setup=_noexec),
)
def test_cwd(sync_compare, c):
    sync_compare.check(c)


def test_cwd_python_view(tmp_path):
    for cwd in (str(tmp_path), os.fsencode(tmp_path), tmp_path):
        r = cp.spawn_sync("pwd", cwd=cwd)
        assert r.stdout == os.fsencode(tmp_path) + b"\n", cwd


# ---------------------------------------------------------------- argv0 / shell


@params(
    argv0=case("sh", ["-c", "echo $0"], argv0="custom"),
    argv0_python=case(PY, ["-c", "import sys; print(sys.argv)"], argv0="py-custom"),
    argv0_with_shell=case("echo $0", shell=True, argv0="x"),
    shell_true_no_escaping=case("echo", ["$HOME", '"quoted arg"', "a b"], shell=True),
    shell_true_pipeline=case("echo abc | tr a-c x-z", shell=True),
    shell_true_dollar0=case("echo $0", shell=True),
    shell_string=case("echo $0; echo $1", ["ignored?"], shell="/bin/bash"),
    shell_string_dash=case('printf "%s" "$0"', shell="/bin/sh"),
    shell_false_is_literal=case("echo", ["$HOME"], shell=False),
)
def test_argv0_and_shell(sync_compare, c):
    sync_compare.check(c)


# ---------------------------------------------------------------- stdio

_FDCHECK = 'for i in 3 4 5; do if [ -e /proc/$$/fd/$i ]; then echo "$i open"; else echo "$i closed"; fi; done'


@params(
    pipe_string=case("sh", ["-c", "echo o; echo e >&2"], stdio="pipe"),
    ignore_string=case("sh", ["-c", "echo o; echo e >&2"], stdio="ignore"),
    inherit_string=case("sh", ["-c", "echo o; echo e >&2"], stdio="inherit"),
    list_mixed=case("sh", ["-c", "echo o; echo e >&2"], stdio=["pipe", "inherit", "ignore"]),
    list_none_is_pipe=case("sh", ["-c", "echo o; echo e >&2"], stdio=[None, None, None]),
    list_short_padded=case("sh", ["-c", "echo o; echo e >&2"], stdio=["ignore"]),
    fd_ints_inherit=case("sh", ["-c", "echo o; echo e >&2"], stdio=[0, 1, 2]),
    stderr_to_stdout_fd=case("sh", ["-c", "echo o; echo e >&2"], stdio=["pipe", "pipe", 1]),
    file_object=case(
        "sh", ["-c", "echo to-file; echo e >&2"],
        stdio=["ignore", lambda t: open(t / "out.txt", "wb"), "pipe"],
        collect=lambda t: (t / "out.txt").read_bytes().decode(),
    ),
    int_fd=case(
        "sh", ["-c", "echo to-fd; echo e >&2"],
        stdio=["ignore", "pipe", open_fd(tmpfile("err.txt"))],
        collect=lambda t: (t / "err.txt").read_bytes().decode(),
    ),
    file_as_stdin=case(
        "cat", stdio=[open_fd(tmpfile("in.txt"), "r"), "pipe", "pipe"],
        setup=lambda t: (t / "in.txt").write_text("from file\n"),
    ),
    extra_pipe_fd3=case("sh", ["-c", "echo three >&3; echo four >&4"], stdio=["pipe", "pipe", "pipe", "pipe", "pipe"]),
    extra_pipe_fd3_only=case("sh", ["-c", "echo three >&3"], stdio=["ignore", "ignore", "ignore", "pipe"]),
    ignore_at_3_is_closed=case("sh", ["-c", _FDCHECK], stdio=["pipe", "pipe", "pipe", "ignore", "ignore"]),
    none_at_3_is_closed=case("sh", ["-c", _FDCHECK], stdio=["pipe", "pipe", "pipe", None, "pipe"]),
    default_no_extra_fds=case("sh", ["-c", _FDCHECK]),
    ignore_stdin_is_devnull=case("sh", ["-c", "readlink /proc/$$/fd/0; cat; echo rc=$?"], stdio=["ignore", "pipe", "pipe"]),
    ten_pipes=case("sh", ["-c", "echo nine >&9; echo five >&5"], stdio=["pipe"] * 10),
    extra_fd_file=case(
        "sh", ["-c", "echo via3 >&3"], stdio=["pipe", "pipe", "pipe", open_fd(tmpfile("three.txt"))],
        collect=lambda t: (t / "three.txt").read_text(),
    ),
)
def test_stdio(sync_compare, c):
    sync_compare.check(c)


@pytest.mark.skipif(not LINUX, reason="/proc")
def test_stdio_ignore_at_index_3_python_view():
    r = cp.spawn_sync("sh", ["-c", _FDCHECK], stdio=["pipe", "pipe", "pipe", "ignore", "pipe"])
    assert r.error is None, r.error
    assert r.stdout == b"3 closed\n4 open\n5 closed\n"
    assert r.output[3] is None
    assert r.output[4] == b""


def test_stdio_file_object_python(tmp_path):
    with open(tmp_path / "o.txt", "wb") as f:
        r = cp.spawn_sync("echo", ["hi"], stdio=["ignore", f, "pipe"])
    assert r.output == [None, None, b""] and r.stdout is None
    assert (tmp_path / "o.txt").read_bytes() == b"hi\n"


def test_stdio_extra_output_python():
    r = cp.spawn_sync("sh", ["-c", "echo three >&3"], stdio=["pipe", "pipe", "pipe", "pipe"])
    assert r.output == [None, b"", b"", b"three\n"]


# ---------------------------------------------------------------- input


@params(
    str_=case("cat", input="hello é\n"),
    bytes_=case("cat", input=b"\x00\x01\xffbytes"),
    bytearray_=case("cat", input=bytearray(b"from bytearray")),
    memoryview_=case("cat", input=memoryview(b"from memoryview")),
    str_with_utf8_encoding=case("cat", input="héllo", encoding="utf8"),
    empty_str_ignored=case("cat", input=""),
    input_wc=case("wc", ["-c"], input=b"x" * 100000),
    # the child exits / closes stdin while 5 MiB are still unwritten: Node reports EPIPE in result.error
    child_exits_before_reading_input=case("head", ["-c", "1"], input=b"x" * (5 * 1024 * 1024)),
    child_closes_stdin_keeps_running=case("sh", ["-c", "exec 0<&-; sleep 0.2; echo done"],
                                          input=b"x" * (5 * 1024 * 1024)),
    input_with_stdin_inherit=case("sh", ["-c", "echo x"], input="abc", stdio=["inherit", "pipe", "pipe"]),
    input_with_stdin_ignore=case("sh", ["-c", "cat; echo rc=$?"], input="x", stdio=["ignore", "pipe", "pipe"]),
    input_ignored_when_stdin_is_a_file=case(
        "cat", input="abc", stdio=[open_fd(tmpfile("in.txt"), "r"), "pipe", "pipe"],
        setup=lambda t: (t / "in.txt").write_text("file content\n"),
    ),
    input_extra_stdio_list=case("cat", input="abc", stdio=["pipe", "pipe", "pipe", "pipe"]),
)
def test_input(sync_compare, c):
    sync_compare.check(c)


def test_input_str_with_buffer_encoding_is_utf8():
    # deliberate difference: Node throws ERR_UNKNOWN_ENCODING here
    r = cp.spawn_sync("cat", input="é", encoding="buffer")
    assert r.stdout == "é".encode()


def test_large_input_and_output_no_deadlock():
    data = os.urandom(6 * 1024 * 1024)
    r = cp.spawn_sync("cat", input=data, max_buffer=0)
    assert r.error is None, r.error
    assert r.status == 0
    assert len(r.stdout) == len(data) and r.stdout == data


def test_large_stdout_and_stderr_at_once_no_deadlock():
    code = (
        "import sys, threading\n"
        "def err():\n"
        "    sys.stderr.buffer.write(b'e' * (3 << 20)); sys.stderr.flush()\n"
        "t = threading.Thread(target=err); t.start()\n"
        "sys.stdout.buffer.write(b'o' * (3 << 20)); sys.stdout.flush()\n"
        "t.join()\n"
    )
    r = cp.spawn_sync(PY, ["-c", code], max_buffer=0)
    assert r.error is None, r.error
    assert r.stdout == b"o" * (3 << 20) and r.stderr == b"e" * (3 << 20)


def test_stdio_socket_object():
    import socket

    a, b = socket.socketpair()
    with a, b:
        r = cp.spawn_sync("echo", ["via socket"], stdio=["ignore", a, "pipe"])
        assert r.error is None, r.error
        assert r.output == [None, None, b""]
        b.settimeout(5)
        assert b.recv(100) == b"via socket\n"


def test_large_input_with_stderr_traffic():
    # the child writes to stdout and stderr while we still feed stdin
    code = (
        "import sys\n"
        "n = 0\n"
        "while True:\n"
        "    b = sys.stdin.buffer.read(65536)\n"
        "    if not b: break\n"
        "    n += len(b)\n"
        "    sys.stdout.buffer.write(b); sys.stderr.buffer.write(b[:1000])\n"
        "sys.stderr.buffer.write(b'total=%d' % n)\n"
    )
    data = b"z" * (4 * 1024 * 1024)
    r = cp.spawn_sync(PY, ["-c", code], input=data, max_buffer=0)
    assert r.error is None, r.error
    assert r.stdout == data
    assert r.stderr.endswith(b"total=%d" % len(data))


# ---------------------------------------------------------------- encoding


@params(
    utf8=case("sh", ["-c", "printf 'é€'; printf 'ö' >&2"], encoding="utf8"),
    utf_8_dash=case("sh", ["-c", "printf 'é€'"], encoding="utf-8"),
    latin1=case("sh", ["-c", r"printf '\351\377'"], encoding="latin1"),
    buffer=case("sh", ["-c", "printf 'é'"], encoding="buffer"),
    none=case("sh", ["-c", "printf 'é'"], encoding=None),
    utf8_extra_slot=case("sh", ["-c", "printf 'x3' >&3"], stdio=["pipe", "pipe", "pipe", "pipe"], encoding="utf8"),
    utf8_invalid_bytes_replaced=case("sh", ["-c", r"printf 'a\377\376b'"], encoding="utf8"),
    utf16le=case("sh", ["-c", r"printf 'a\000b\000'"], encoding="utf-16-le", node_opts={"encoding": "utf16le"}),
    utf8_with_error=case("nope-xyz", encoding="utf8"),
)
def test_encoding(sync_compare, c):
    sync_compare.check(c)


def test_encoding_python_types():
    r = cp.spawn_sync("sh", ["-c", "printf o; printf e >&2"], encoding="utf8")
    assert r.output == [None, "o", "e"]
    assert type(r.stdout) is str and type(r.stderr) is str
    r = cp.spawn_sync("sh", ["-c", "printf o"], encoding="buffer")
    assert type(r.stdout) is bytes


# ---------------------------------------------------------------- timeout


@params(
    sleep=case("sleep", ["5"], timeout=0.2),
    with_output_before=case("sh", ["-c", "echo early; exec sleep 5"], timeout=0.3),
    kill_signal_sigkill_name=case("sleep", ["5"], timeout=0.2, kill_signal="SIGKILL"),
    kill_signal_lowercase=case("sleep", ["5"], timeout=0.2, kill_signal="sigkill"),
    kill_signal_number=case("sleep", ["5"], timeout=0.2, kill_signal=9),
    kill_signal_enum=case("sleep", ["5"], timeout=0.2, kill_signal=signal.SIGINT),
    kill_signal_ignored_term=case(PY, ["-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                          "print('ready', flush=True); time.sleep(5)"],
                                  timeout=1.0, kill_signal="SIGKILL"),
    not_reached=case("sh", ["-c", "echo fast"], timeout=5),
    child_traps_term_and_exits_7=case("sh", ["-c", 'trap "exit 7" TERM; sleep 5 & wait'], timeout=0.3),
    fractional_seconds=case("sh", ["-c", "echo x; exec sleep 5"], timeout=0.25),
    zero_means_none=case("sh", ["-c", "sleep 0.2; echo done"], timeout=0),
    none_means_none=case("sh", ["-c", "echo done"], timeout=None),
    grandchild_holds_pipe=case("sh", ["-c", "sleep 2 & echo hi"], timeout=0.3),
    timeout_with_input=case("sh", ["-c", "sleep 5"], timeout=0.2, input=b"x" * 300000),
    # every pipe done long before the exit: the deadline still bounds the wait
    pipes_closed_early=case("sh", ["-c", "exec >&- 2>&-; exec sleep 5"], timeout=0.3),
    no_pipes_at_all=case("sleep", ["5"], timeout=0.2, stdio="inherit"),
    no_pipes_exits_in_time=case("sh", ["-c", "sleep 0.1; exit 3"], timeout=5, stdio="ignore"),
)
def test_timeout(sync_compare, c):
    sync_compare.check(c)


def test_timeout_returns_early():
    t0 = time.monotonic()
    r = cp.spawn_sync("sleep", ["10"], timeout=0.2)
    elapsed = time.monotonic() - t0
    assert r.error is not None and r.error.code == "ETIMEDOUT" and r.error.errno == errno.ETIMEDOUT
    assert str(r.error) == "spawnSync sleep ETIMEDOUT"
    assert r.signal == "SIGTERM" and r.status is None
    assert r.pid > 0
    assert elapsed < 5, elapsed  # returns long before the child would have finished


def test_timeout_grandchild_holding_pipe_returns_on_time():
    # the direct child exits at once; a grandchild keeps stdout open for 30 s.
    # Node: returns after the timeout with status 0, signal None, error ETIMEDOUT.
    t0 = time.monotonic()
    r = cp.spawn_sync("sh", ["-c", "sleep 30 & echo $!"], timeout=0.3)
    elapsed = time.monotonic() - t0
    try:
        assert elapsed < 10, elapsed  # not the grandchild's 30 s
        assert r.status == 0 and r.signal is None
        assert r.error is not None and r.error.code == "ETIMEDOUT"
    finally:
        if r.stdout and r.stdout.strip().isdigit():
            try:
                os.kill(int(r.stdout), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_timeout_unblocks_stuck_input_writer():
    # the child never reads stdin; a large input must not make spawn_sync hang
    t0 = time.monotonic()
    r = cp.spawn_sync("sleep", ["30"], input=b"x" * (8 * 1024 * 1024), timeout=0.3)
    assert time.monotonic() - t0 < 10
    assert r.error is not None and r.error.code == "ETIMEDOUT"


# ---------------------------------------------------------------- max_buffer

_WRITE_AND_SLEEP = (
    "import sys, time\n"
    "sys.stdout.buffer.write(b'x' * int(sys.argv[1])); sys.stdout.flush()\n"
    "sys.stderr.buffer.write(b'y' * int(sys.argv[2])); sys.stderr.flush()\n"
    "time.sleep(float(sys.argv[3]))\n"
)


@params(
    combined_stdout_stderr=case(PY, ["-c", _WRITE_AND_SLEEP, "3", "3", "5"], max_buffer=4),
    per_stream_under=case(PY, ["-c", _WRITE_AND_SLEEP, "3", "3", "0"], max_buffer=6),
    not_truncated=case("sh", ["-c", "printf 0123456789; exec sleep 5"], max_buffer=4),
    exact_limit_ok=case(PY, ["-c", _WRITE_AND_SLEEP, "10", "0", "0"], max_buffer=10),
    zero_is_unlimited=case("head", ["-c", "2000000", "/dev/zero"], max_buffer=0),
    default_boundary_exact=case(PY, ["-c", _WRITE_AND_SLEEP, str(1024 * 1024), "0", "0"]),
    default_boundary_plus_one=case(PY, ["-c", _WRITE_AND_SLEEP, str(1024 * 1024 + 1), "0", "5"]),
    default_boundary_split=case(PY, ["-c", _WRITE_AND_SLEEP, str(1024 * 1024 - 10), "11", "5"]),
    explicit_larger=case("head", ["-c", "1500000", "/dev/zero"], max_buffer=2 * 1024 * 1024),
    inf=case("head", ["-c", "1500000", "/dev/zero"], max_buffer=float("inf")),
    already_exited_keeps_status=case("sh", ["-c", "(sleep 0.3; printf 0123456789) &"], max_buffer=4),
    kill_signal_used=case("sh", ["-c", "printf 0123456789; exec sleep 5"], max_buffer=4, kill_signal="SIGKILL"),
    with_encoding=case("sh", ["-c", "printf 'é€0123'; exec sleep 5"], max_buffer=4, encoding="utf8"),
    extra_slot_counts=case(PY, ["-c", "import os, time; os.write(3, b'abcdef'); time.sleep(5)"],
                           stdio=["pipe", "pipe", "pipe", "pipe"], max_buffer=4),
)
def test_max_buffer(sync_compare, c):
    sync_compare.check(c)


def test_max_buffer_python_view():
    r = cp.spawn_sync("sh", ["-c", "printf 0123456789; exec sleep 5"], max_buffer=4)
    assert r.error is not None
    assert r.error.code == "ENOBUFS" and r.error.errno == errno.ENOBUFS
    assert str(r.error) == "spawnSync sh ENOBUFS"
    assert r.stdout == b"0123456789"  # not truncated
    assert r.signal == "SIGTERM" and r.status is None


def test_max_buffer_zero_large_output():
    r = cp.spawn_sync("head", ["-c", str(5 * 1024 * 1024), "/dev/zero"], max_buffer=0)
    assert r.error is None and r.status == 0 and len(r.stdout) == 5 * 1024 * 1024


# ---------------------------------------------------------------- detached

_SID = "import os; print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())"


@params(
    detached=case(PY, ["-c", _SID], detached=True),
    not_detached=case(PY, ["-c", _SID], detached=False),
    default=case(PY, ["-c", _SID]),
)
def test_detached(sync_compare, c):
    sync_compare.check(c)


@pytest.mark.skipif(not LINUX, reason="ps/proc")
def test_detached_session_leader_via_ps():
    r = cp.spawn_sync("sh", ["-c", "echo $$; ps -o sid= -p $$; ps -o pgid= -p $$"], detached=True)
    assert r.error is None, r.error
    pid, sid, pgid = (int(x) for x in r.stdout.split())
    assert pid == r.pid == sid == pgid
    r = cp.spawn_sync("sh", ["-c", "echo $$; ps -o sid= -p $$"])
    pid, sid = (int(x) for x in r.stdout.split())
    assert sid == os.getsid(0) and sid != pid


# ---------------------------------------------------------------- uid / gid

NOBODY = 65534


@pytest.mark.skipif(not IS_ROOT, reason="switching uid/gid needs root")
@params(
    uid_gid=case("id", [], uid=NOBODY, gid=NOBODY),
    uid_only=case("id", [], uid=NOBODY),
    gid_only=case("id", [], gid=NOBODY),
    uid_u=case("id", ["-u"], uid=NOBODY, gid=NOBODY),
    groups=case("id", ["-G"], uid=NOBODY, gid=NOBODY),
    uid_root_noop=case("id", ["-u"], uid=0),
)
def test_uid_gid_as_root(sync_compare, c):
    sync_compare.check(c)


@pytest.mark.skipif(not IS_ROOT, reason="switching uid/gid needs root")
def test_uid_gid_python_view():
    r = cp.spawn_sync("id", ["-u"], uid=NOBODY, gid=NOBODY)
    assert r.error is None, r.error
    assert r.stdout == b"65534\n"
    r = cp.spawn_sync("id", ["-g"], uid=NOBODY, gid=NOBODY)
    assert r.stdout == b"65534\n"


_DROP = (
    "import os, json, sys\n"
    "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
)


def _eperm_node_and_python(py_helper, node_bin):
    js = (
        "const cp=require('child_process');"
        "const out=[];"
        "for (const o of [{uid:0},{gid:0},{uid:0,gid:0}]) {"
        " const r=cp.spawnSync('echo',['a'],o);"
        " out.push({status:r.status,signal:r.signal,pid0:r.pid===0,output:r.output,"
        "  code:r.error&&r.error.code,errno:r.error&&-r.error.errno,syscall:r.error&&r.error.syscall,"
        "  path:r.error&&r.error.path,spawnargs:r.error&&r.error.spawnargs,message:r.error&&r.error.message});"
        "}"
        "console.log(JSON.stringify(out));"
    )
    node = py_helper(_DROP + f"os.execv({node_bin!r}, [{node_bin!r}, '-e', {js!r}])\n", cwd="/")
    assert node.returncode == 0, node.stderr
    pycode = _DROP + (
        "import childproc as cp\n"
        "out = []\n"
        "for o in ({'uid': 0}, {'gid': 0}, {'uid': 0, 'gid': 0}):\n"
        "    r = cp.spawn_sync('echo', ['a'], **o)\n"
        "    e = r.error\n"
        "    out.append(dict(status=r.status, signal=r.signal, pid0=r.pid == 0, output=r.output,\n"
        "        code=e and e.code, errno=e and e.errno, syscall=e and e.syscall, path=e and e.path,\n"
        "        spawnargs=e and list(e.spawnargs), message=e and str(e)))\n"
        "r = cp.spawn_sync('echo', ['after'])\n"
        "out.append(r.stdout.decode())\n"
        "print(json.dumps(out))\n"
    )
    # import and use childproc *before* dropping privileges: its files (and the
    # stdlib under /root) may be unreadable for nobody
    pycode = "import childproc, json\nchildproc.spawn_sync('true', encoding='utf8')\n" + pycode
    py = py_helper(pycode, cwd="/")
    return node, py


@pytest.mark.skipif(not IS_ROOT, reason="the helper drops root to nobody; as non-root see test_bad_uid_non_root")
def test_bad_uid_eperm_as_non_root(py_helper, node_bin):
    import json

    node, py = _eperm_node_and_python(py_helper, node_bin)
    assert py.returncode == 0, py.stderr
    n = json.loads(node.stdout)
    p = json.loads(py.stdout)
    assert p[-1] == "after\n"  # the library still works afterwards
    assert p[:-1] == n
    assert n[0]["code"] == "EPERM"


@pytest.mark.skipif(IS_ROOT or sys.platform == "win32", reason="runs as non-root only")
def test_bad_uid_non_root():
    r = cp.spawn_sync("echo", ["a"], uid=0)
    assert r.pid == 0 and r.output is None and r.status is None
    assert r.error.code == "EPERM" and r.error.errno == errno.EPERM
    assert r.error.syscall == "spawnSync echo" and str(r.error) == "spawnSync echo EPERM"
