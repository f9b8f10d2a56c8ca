"""Errors Python code catches: ExecError is a CalledProcessError, an exec
killed by its timeout is a TimeoutError, ``returncode`` beside Node's fields,
every exception class exported, and reprs that say what an object is.

Node's fields (``code``, ``killed``, ``signal``, ``cmd``, the message) are
compared with a real ``node`` where Node defines them."""

from __future__ import annotations

import ast
import asyncio
import inspect
import pathlib
import pickle
import signal
import subprocess
import sys

import pytest

import childproc as cp
from childproc import _errors
from nodecmp import node_result

SRC = pathlib.Path(cp.__file__).parent


def _node_fields(err: BaseException) -> dict[str, object]:
    return {"message": str(err), "code": getattr(err, "code"), "killed": getattr(err, "killed"),
            "signal": getattr(err, "signal"), "cmd": getattr(err, "cmd")}


def _node_exec_error(call: str) -> object:
    """The fields of the error Node's exec callback gets for ``call``
    (``cp.exec(...)`` without its callback's closing parenthesis)."""
    return node_result("const cp = require('child_process');\n" + call + ", (e) => process.stdout.write("
                        "JSON.stringify(e && {message: e.message, code: e.code, killed: e.killed, "
                        "signal: e.signal, cmd: e.cmd})))")


def test_exec_sync_failure_is_a_called_process_error() -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        cp.exec_sync("echo out; echo err >&2; exit 3", stdio="pipe")
    err = info.value
    assert isinstance(err, cp.ExecError)
    assert (err.returncode, err.cmd, err.stdout, err.stderr) == (3, "echo out; echo err >&2; exit 3", b"out\n", b"err\n")
    # Node's fields stay: status, code, and output as Node's list (its field wins).
    assert (err.status, err.code, err.signal, err.killed) == (3, 3, None, False)
    assert err.output == [None, b"out\n", b"err\n"]
    assert str(err) == "Command failed: echo out; echo err >&2; exit 3\nerr\n"
    copy = pickle.loads(pickle.dumps(err))
    assert (type(copy), copy.returncode, copy.stdout, str(copy)) == (type(err), 3, b"out\n", str(err))


def test_exec_sync_signal_returncode_is_minus_the_signal() -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        cp.exec_sync("kill -KILL $$", stdio="pipe")
    assert info.value.returncode == -signal.SIGKILL
    assert (info.value.signal, info.value.status) == ("SIGKILL", None)  # type: ignore[attr-defined]


def test_exec_failure_fields_match_node_and_subprocess() -> None:
    command = "echo out; echo err >&2; exit 3"
    with pytest.raises(subprocess.CalledProcessError) as info:
        cp.exec(command).result()
    err = info.value
    assert isinstance(err, cp.ExecError)
    assert (err.returncode, err.cmd, err.output, err.stdout, err.stderr) == (3, command, "out\n", "out\n", "err\n")
    node = _node_exec_error(f"cp.exec({command!r}")
    assert _node_fields(err) == node


@pytest.mark.parametrize("form", ["result", "await"])
def test_exec_timeout_is_a_timeout_error(form: str) -> None:
    def run() -> None:
        if form == "result":
            cp.exec("sleep 5", timeout=0.2).result()
        else:
            async def main() -> None:
                await cp.exec("sleep 5", timeout=0.2)

            asyncio.run(main())

    with pytest.raises(TimeoutError) as info:
        run()
    err = info.value
    assert isinstance(err, cp.ExecTimeoutError) and isinstance(err, cp.ExecError)
    assert isinstance(err, subprocess.CalledProcessError) and isinstance(err, subprocess.TimeoutExpired)
    assert (err.returncode, err.timeout) == (-signal.SIGTERM, 0.2)
    node = _node_exec_error("cp.exec('sleep 5', {timeout: 200}")
    assert _node_fields(err) == node
    assert type(pickle.loads(pickle.dumps(err))) is type(err)


def test_exec_killed_by_hand_is_not_a_timeout() -> None:
    child = cp.exec("sleep 5")
    child.on("spawn", lambda: child.kill())
    with pytest.raises(cp.ExecError) as info:
        child.result()
    assert not isinstance(info.value, TimeoutError)
    assert info.value.returncode == -signal.SIGTERM


def test_exec_sync_timeout_is_a_timeout_error() -> None:
    with pytest.raises(TimeoutError) as info:
        cp.exec_sync("sleep 5", timeout=0.2, stdio="pipe")
    assert info.value.code == "ETIMEDOUT"  # type: ignore[attr-defined]  # Node's spawnSync error


def test_max_buffer_error_is_an_exec_error() -> None:
    with pytest.raises(cp.MaxBufferError) as info:
        cp.exec("head -c 100 /dev/zero", max_buffer=10).result()
    assert isinstance(info.value, subprocess.CalledProcessError)
    assert info.value.code == "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"


def test_child_returncode_and_wait() -> None:
    child = cp.spawn("sh", ["-c", "kill -TERM $$"])
    assert child.returncode is None
    assert child.wait() is None  # Node's exit_code: None for a signal
    assert (child.signal_code, child.returncode) == ("SIGTERM", -signal.SIGTERM)
    child = cp.spawn("sh", ["-c", "exit 7"])
    assert (child.wait(), child.returncode) == (7, 7)
    doc = cp.ChildProcess.wait.__doc__ or ""
    assert "Returns ``exit_code``" in doc and "None\n        when a signal ended the child" in doc


def test_failed_spawn_repr_and_returncode() -> None:
    child = cp.spawn("childproc-no-such-program")
    errors: list[BaseException] = []
    child.on("error", errors.append)
    child.wait()
    assert repr(child) == ("<ChildProcess pid=None 'childproc-no-such-program' "
                           "spawn failed: spawn childproc-no-such-program ENOENT>")
    assert child.returncode == child.exit_code == -2 and len(errors) == 1


def test_reprs_say_what_each_object_is() -> None:
    child = cp.spawn("cat")
    assert repr(child).startswith(f"<ChildProcess pid={child.pid} 'cat' running")
    assert child.stdout is not None and child.stdin is not None
    assert repr(child.stdout) == f"<Readable fd={child.stdout.fileno()} not flowing yet, 0 buffered>"
    assert repr(child.stdin) == f"<Writable fd={child.stdin.fileno()} open, 0 queued>"
    child.stdout.set_encoding("utf8")
    child.stdin.end(b"hi")
    # The two bytes went into the empty pipe at once; 'finish' comes on the next turn.
    assert repr(child.stdin) == f"<Writable fd={child.stdin.fileno()} ending, 0 queued>"
    child.stdout.read()
    child.wait()
    assert repr(child.stdout) == "<Readable fd=-1 closed, 0 buffered, encoding='utf-8'>"
    assert repr(child.stdin) == "<Writable fd=-1 closed, 0 queued>"
    assert repr(child) == f"<ChildProcess pid={child.pid} 'cat' exit_code=0>"
    controller = cp.AbortController()
    assert repr(controller) == "<AbortController signal=<AbortSignal not aborted, 0 listener(s)>>"
    controller.abort("why")
    assert repr(controller.signal) == "<AbortSignal aborted, reason='why'>"


def test_process_repr_in_parent_and_forked_child(tmp_path: pathlib.Path) -> None:
    assert repr(cp.process).startswith("<childproc.process pid=") and "no channel" in repr(cp.process)
    script = tmp_path / "w.py"
    script.write_text("from childproc import process\nprocess.send(repr(process))\nprocess.disconnect()\n")
    child = cp.fork(str(script))
    got: list[object] = []
    child.on("message", lambda message, _handle: got.append(message))
    child.wait()
    assert got == [f"<childproc.process pid={child.pid} connected>"]


def _exception_classes_defined_in(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = {ast.unparse(b) for b in node.bases}
            if any(b.endswith(("Error", "Exception", "Warning", "Expired", "ExitEvent", "Event")) for b in bases) \
                    or node.name.endswith(("Error", "Warning", "Event")):
                names.add(node.name)
    return names


def test_every_exception_class_lives_in_errors_and_is_exported() -> None:
    homes = {path.relative_to(SRC).as_posix(): _exception_classes_defined_in(path) for path in SRC.rglob("*.py")}
    outside = {home: names for home, names in homes.items() if names and home != "_errors.py"}
    assert outside == {}
    public = homes["_errors.py"]
    assert public <= set(cp.__all__), public - set(cp.__all__)
    for name in public:
        assert isinstance(getattr(cp, name), type) and issubclass(getattr(cp, name), BaseException)


def test_all_is_a_literal_and_complete() -> None:
    tree = ast.parse((SRC / "__init__.py").read_text())
    literal = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets))
    assert isinstance(literal, ast.List) and all(isinstance(e, ast.Constant) for e in literal.elts)
    assert sorted(cp.__all__) == sorted(cp._HOMES)
    for name in cp.__all__:
        getattr(cp, name)


def test_lazy_exec_errors_agree_with_what_the_checker_reads() -> None:
    # The classes the type checker reads (under TYPE_CHECKING) and the ones
    # made at run time must have the same bases.
    tree = ast.parse((SRC / "_errors.py").read_text())
    declared = {n.name: [ast.unparse(b) for b in n.bases] for n in ast.walk(tree)
                if isinstance(n, ast.ClassDef) and n.name in _errors._LAZY}
    assert set(declared) == set(_errors._LAZY)
    for name, bases in declared.items():
        runtime = [b.__name__ for b in getattr(_errors, name).__bases__]
        assert runtime == bases, name


def test_forked_child_does_not_import_subprocess() -> None:
    # The reason the exec errors are made lazily: a forked child's start-up.
    out = subprocess.run([sys.executable, "-c", "import sys; from childproc import process; "
                          "process.connected; print('subprocess' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_exec_error_constructor_is_documented() -> None:
    assert "CalledProcessError" in (cp.ExecError.__doc__ or "")
    assert "returncode" in inspect.signature(cp.ExecError).parameters
    assert _errors._ExecErrorFields.__annotations__["returncode"] == "int"
