"""Argument validation and normalisation (childproc._options, _errors, _signals).

Where Node defines an error, the same case is run through ``node`` (one
process for the whole table, see nodecmp.py) and the code and message are
compared: identical text where the two languages print the same thing, and
for type errors identical text up to the "Received ..." tail, whose JS type
names are translated to Python's by ``_python_received`` below.  The
deliberate differences (seconds instead of milliseconds, Python's
serialization choices) are compared with the difference spelled out.
"""

from __future__ import annotations

import array
import errno
import math
import os
import pathlib
import pickle
import re
import signal
import subprocess
import sys
from typing import Any, Callable

import pytest
from nodecmp import NODE, node_errors, node_json

from childproc import _errors as E
from childproc import _messages as M
from childproc._spawn import options as O
from childproc._spawn import signals as S


def spawn_sync(command: Any, args: Any = None, options: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_spawn("spawn_sync", command, args, options, kw, sync=True)


def spawn(command: Any, args: Any = None, options: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_spawn("spawn", command, args, options, kw, sync=False)


def exec_file(file: Any, args: Any = None, options: Any = None, callback: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_exec_file("exec_file", file, args, options, callback, kw, sync=False)


def exec_file_sync(file: Any, args: Any = None, options: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_exec_file("exec_file_sync", file, args, options, None, kw, sync=True)


def exec_(command: Any, options: Any = None, callback: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_exec("exec", command, options, callback, kw, sync=False)


def exec_sync(command: Any, options: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_exec("exec_sync", command, options, None, kw, sync=True)


def fork(module: Any, args: Any = None, options: Any = None, **kw: Any) -> O.SpawnPlan:
    return O.normalize_fork(module, args, options, kw)


class Sig:
    """An object that only looks like an AbortSignal."""

    aborted = False

    def add_event_listener(self, *a: Any) -> None:
        pass


def _abort_signal() -> Any:
    from childproc._abort import AbortController

    return AbortController().signal


# --------------------------------------------------------------------------
# The table compared with node.  kind: 'same' -> identical message;
# 'type' -> identical up to the translated Received tail; 'seconds' ->
# Node's "an unsigned integer" is our "a non-negative number".
# --------------------------------------------------------------------------

NUL_LONG = "a" * 200 + "\0"
CASES: dict[str, tuple[str, Callable[[], Any], str]] = {
    # NUL bytes: every place that reaches execve
    "nul_file": ("cp.spawn('ec\\0ho')", lambda: spawn("ec\0ho"), "same"),
    "nul_file_sync": ("cp.spawnSync('ec\\0ho')", lambda: spawn_sync("ec\0ho"), "same"),
    "nul_args": ("cp.spawn('echo',['a','b\\0c'])", lambda: spawn("echo", ["a", "b\0c"]), "same"),
    "nul_env_key": ("cp.spawn('echo',[],{env:{'A\\0B':'1'}})", lambda: spawn("echo", [], env={"A\0B": "1"}), "same"),
    "nul_env_value": ("cp.spawn('echo',[],{env:{A:'x\\0y'}})", lambda: spawn("echo", [], env={"A": "x\0y"}), "same"),
    "nul_argv0": ("cp.spawnSync('echo',[],{argv0:'a\\0'})", lambda: spawn_sync("echo", argv0="a\0"), "same"),
    "nul_shell": ("cp.spawnSync('echo',[],{shell:'/bin/sh\\0'})", lambda: spawn_sync("echo", shell="/bin/sh\0"), "same"),
    "nul_cwd": ("cp.spawnSync('echo',[],{cwd:'/tmp\\0'})", lambda: spawn_sync("echo", cwd="/tmp\0"), "same"),
    "nul_exec": ("cp.exec('echo \\0')", lambda: exec_("echo \0"), "same"),
    "nul_exec_sync": ("cp.execSync('echo \\0')", lambda: exec_sync("echo \0"), "same"),
    "nul_exec_file": ("cp.execFile('ec\\0ho')", lambda: exec_file("ec\0ho"), "same"),
    "nul_exec_file_sync_args": ("cp.execFileSync('echo',['\\0'])", lambda: exec_file_sync("echo", ["\0"]), "same"),
    "nul_exec_path": ("cp.fork('x.js',[],{execPath:'no\\0de'})", lambda: fork("x.js", [], {"execPath": "no\0de"}), "same"),
    "nul_exec_argv": ("cp.fork('x.js',[],{execArgv:['--a\\0']})", lambda: fork("x.js", exec_argv=["--a\0"]), "same"),
    "nul_fork_args_index": ("cp.fork('x.js',['a','b\\0'],{execArgv:[]})", lambda: fork("x.js", ["a", "b\0"], exec_argv=[]), "same"),
    "nul_module_path": ("cp.fork('x\\0')", lambda: fork("x\0"), "same"),
    "nul_long": (f"cp.spawn('{'a' * 200}\\0')", lambda: spawn(NUL_LONG), "same"),
    "nul_quotes": ("cp.spawnSync('echo',['a','it\\'s \"x\"\\0'])", lambda: spawn_sync("echo", ["a", "it's \"x\"\0"]), "same"),
    "nul_quote_single": ("cp.spawnSync('echo',[\"it's\\0\"])", lambda: spawn_sync("echo", ["it's\0"]), "same"),
    "nul_controls": ("cp.spawnSync('echo',['\\t\\x1b\\x7f\\x85\\\\\\0'])", lambda: spawn_sync("echo", ["\t\x1b\x7f\x85\\\0"]), "same"),
    # empty file / command
    "empty_file": ("cp.spawn('')", lambda: spawn(""), "same"),
    "empty_exec": ("cp.exec('')", lambda: exec_(""), "same"),
    "empty_exec_sync": ("cp.execSync('')", lambda: exec_sync(""), "same"),
    # types of the positional arguments
    "file_int": ("cp.spawn(42)", lambda: spawn(42), "type"),
    "file_neg": ("cp.spawn(-3)", lambda: spawn(-3), "type"),
    "file_float": ("cp.spawn(1.5)", lambda: spawn(1.5), "type"),
    "file_null": ("cp.spawn(null)", lambda: spawn(None), "type"),
    "file_array": ("cp.spawn(['a'])", lambda: spawn(["a"]), "type"),
    "file_object": ("cp.spawnSync({})", lambda: spawn_sync({}), "type"),
    "file_bool": ("cp.spawnSync(true)", lambda: spawn_sync(True), "type"),
    "args_str": ("cp.spawn('echo','hello')", lambda: spawn("echo", "hello"), "type"),
    "args_num": ("cp.spawnSync('echo',5)", lambda: spawn_sync("echo", 5), "type"),
    "options_str": ("cp.spawn('echo',[],'opts')", lambda: spawn("echo", [], "opts"), "type"),
    "options_array": ("cp.spawnSync('echo',[],[])", lambda: spawn_sync("echo", [], []), "type"),
    "exec_int": ("cp.exec(5)", lambda: exec_(5), "type"),
    "exec_file_args_str": ("cp.execFileSync('echo','x')", lambda: exec_file_sync("echo", "x"), "type"),
    "callback_str": ("cp.execFile('echo',[],{},'notfn')", lambda: exec_file("echo", [], {}, "notfn"), "type"),
    "fork_args_str": ("cp.fork('x.js','a')", lambda: fork("x.js", "a"), "type"),
    "fork_module_int": ("cp.fork(5)", lambda: fork(5), "type"),
    # option types
    "cwd_int": ("cp.spawnSync('echo',[],{cwd:5})", lambda: spawn_sync("echo", cwd=5), "type"),
    "detached_str": ("cp.spawnSync('echo',[],{detached:'x'})", lambda: spawn_sync("echo", detached="x"), "type"),
    "uid_str": ("cp.spawnSync('echo',[],{uid:'0'})", lambda: spawn_sync("echo", uid="0"), "type"),
    "uid_float": ("cp.spawnSync('echo',[],{uid:1.5})", lambda: spawn_sync("echo", uid=1.5), "type"),
    "uid_big": ("cp.spawnSync('echo',[],{uid:2**31})", lambda: spawn_sync("echo", uid=2**31), "type"),
    "gid_str_long": ("cp.spawnSync('echo',[],{gid:'a very long string exceeding 28 chars'})",
                     lambda: spawn_sync("echo", gid="a very long string exceeding 28 chars"), "type"),
    "gid_str_quote": ("cp.spawnSync('echo',[],{gid:\"it's a very long string exceeding 28\"})",
                      lambda: spawn_sync("echo", gid="it's a very long string exceeding 28"), "type"),
    "shell_int": ("cp.spawnSync('echo',[],{shell:5})", lambda: spawn_sync("echo", shell=5), "type"),
    "argv0_int": ("cp.spawnSync('echo',[],{argv0:5})", lambda: spawn_sync("echo", argv0=5), "type"),
    "windows_hide": ("cp.spawnSync('echo',[],{windowsHide:5})", lambda: spawn_sync("echo", windows_hide=5), "type"),
    "windows_verbatim": ("cp.spawnSync('echo',[],{windowsVerbatimArguments:5})",
                         lambda: spawn_sync("echo", {"windowsVerbatimArguments": 5}), "type"),
    "kill_signal_bool": ("cp.spawnSync('echo',[],{killSignal:true})", lambda: spawn_sync("echo", kill_signal=True), "type"),
    "kill_signal_obj": ("cp.spawnSync('echo',[],{killSignal:{}})", lambda: spawn_sync("echo", kill_signal={}), "type"),
    "abort_signal_obj": ("cp.spawn('echo',[],{signal:{}})", lambda: spawn("echo", signal={}), "type"),
    "input_int": ("cp.spawnSync('cat',[],{input:5})", lambda: spawn_sync("cat", input=5), "type"),
    "input_obj": ("cp.spawnSync('cat',[],{input:{a:1}})", lambda: spawn_sync("cat", input={"a": 1}), "type"),
    # values
    "timeout_neg": ("cp.spawnSync('echo',[],{timeout:-1})", lambda: spawn_sync("echo", timeout=-1), "seconds"),
    "timeout_huge_neg": ("cp.spawn('echo',[],{timeout:-(2**40)})", lambda: spawn("echo", timeout=-(2**40)), "seconds"),
    "exec_timeout_neg": ("cp.exec('echo',{timeout:-1})", lambda: exec_("echo", timeout=-1), "seconds"),
    "max_buffer_neg": ("cp.execFile('echo',[],{maxBuffer:-1})", lambda: exec_file("echo", [], max_buffer=-1), "same"),
    "max_buffer_sync_neg": ("cp.spawnSync('echo',[],{maxBuffer:-1})", lambda: spawn_sync("echo", {"maxBuffer": -1}), "same"),
    "max_buffer_nan": ("cp.spawnSync('echo',[],{maxBuffer:NaN})", lambda: spawn_sync("echo", max_buffer=math.nan), "nan"),
    # wrong types where Node says "out of range" (ours are TypeErrors too)
    "timeout_str": ("cp.spawnSync('echo',[],{timeout:'1'})", lambda: spawn_sync("echo", timeout="1"), "seconds"),
    "timeout_str_async": ("cp.spawn('echo',[],{timeout:'1'})", lambda: spawn("echo", timeout="1"), "seconds"),
    "exec_timeout_str": ("cp.execFile('echo',{timeout:'1'})", lambda: exec_file("echo", timeout="1"), "seconds"),
    "max_buffer_str": ("cp.spawnSync('echo',[],{maxBuffer:'1'})", lambda: spawn_sync("echo", max_buffer="1"), "same"),
    "max_buffer_bool": ("cp.execFile('echo',[],{maxBuffer:true})", lambda: exec_file("echo", [], max_buffer=True), "bool"),
    "max_buffer_obj": ("cp.exec('echo',{maxBuffer:{}})", lambda: exec_("echo", max_buffer={}), "same"),
    # bytes or a string in an async stdio slot
    "stdio_async_str": ("cp.spawn('echo',[],{stdio:['x']})", lambda: spawn("echo", stdio=["x"]), "same"),
    "stdio_async_str_2": ("cp.spawn('echo',[],{stdio:['pipe','pipe','bogus']})",
                          lambda: spawn("echo", stdio=["pipe", "pipe", "bogus"]), "same"),
    "fork_stdio_str": ("cp.fork('x.js',{stdio:['x','pipe','pipe','ipc']})",
                       lambda: fork("x.js", {"stdio": ["x", "pipe", "pipe", "ipc"]}), "same"),
    "stdio_async_bytes": ("cp.spawn('echo',[],{stdio:[Buffer.from('x')]})", lambda: spawn("echo", stdio=[b"x"]), "inspect"),
    "stdio_async_bytearray": ("cp.spawn('echo',[],{stdio:[new Uint8Array(1)]})",
                              lambda: spawn("echo", stdio=[bytearray(1)]), "inspect"),
    "signal_name": ("cp.spawnSync('echo',[],{killSignal:'SIGNOPE'})", lambda: spawn_sync("echo", kill_signal="SIGNOPE"), "same"),
    "signal_lower": ("cp.spawnSync('echo',[],{killSignal:'sigfoo'})", lambda: spawn_sync("echo", kill_signal="sigfoo"), "same"),
    "signal_999": ("cp.spawnSync('echo',[],{killSignal:999})", lambda: spawn_sync("echo", kill_signal=999), "same"),
    "signal_0": ("cp.spawnSync('echo',[],{killSignal:0})", lambda: spawn_sync("echo", kill_signal=0), "same"),
    "signal_64": ("cp.spawnSync('echo',[],{killSignal:64})", lambda: spawn_sync("echo", kill_signal=64), "same"),
    "signal_neg": ("cp.spawnSync('echo',[],{killSignal:-1})", lambda: spawn_sync("echo", kill_signal=-1), "same"),
    "signal_float": ("cp.spawnSync('echo',[],{killSignal:1.5})", lambda: spawn_sync("echo", kill_signal=1.5), "same"),
    "signal_exec": ("cp.exec('echo',{killSignal:'SIGNOPE'})", lambda: exec_("echo", kill_signal="SIGNOPE"), "same"),
    "stdio_int": ("cp.spawnSync('echo',[],{stdio:1})", lambda: spawn_sync("echo", stdio=1), "same"),
    "stdio_bogus": ("cp.spawnSync('echo',[],{stdio:'bogus'})", lambda: spawn_sync("echo", stdio="bogus"), "same"),
    "stdio_ipc_str": ("cp.spawnSync('echo',[],{stdio:'ipc'})", lambda: spawn_sync("echo", stdio="ipc"), "same"),
    "stdio_obj": ("cp.spawnSync('echo',[],{stdio:[{}]})", lambda: spawn_sync("echo", stdio=[{}]), "same"),
    "stdio_bool": ("cp.spawnSync('echo',{stdio:[true]})", lambda: spawn_sync("echo", {"stdio": [True]}), "bool"),
    "ipc_sync": ("cp.spawnSync('echo',[],{stdio:['pipe','pipe','pipe','ipc']})",
                 lambda: spawn_sync("echo", stdio=["pipe", "pipe", "pipe", "ipc"]), "same"),
    "ipc_exec_sync": ("cp.execSync('echo',{stdio:['pipe','pipe','pipe','ipc']})",
                      lambda: exec_sync("echo", stdio=["pipe", "pipe", "pipe", "ipc"]), "same"),
    "ipc_twice": ("cp.spawn('echo',[],{stdio:['ipc','ipc']})", lambda: spawn("echo", stdio=["ipc", "ipc"]), "same"),
    "fork_ipc_twice": ("cp.fork('x.js',{stdio:['ipc','ipc']})", lambda: fork("x.js", {"stdio": ["ipc", "ipc"]}), "same"),
    "fork_no_ipc": ("cp.fork('x.js',[],{stdio:['pipe','pipe','pipe']})",
                    lambda: fork("x.js", [], stdio=["pipe", "pipe", "pipe"]), "same"),
    "fork_stdio_bogus": ("cp.fork('x.js',[],{stdio:'bogus'})", lambda: fork("x.js", stdio="bogus"), "same"),
    "encoding_unknown": ("cp.execSync('echo',{encoding:'xyz'})", lambda: exec_sync("echo", encoding="xyz"), "same"),
    # Encodings that cannot decode any output: Node does not know them; Python
    # knows them, but they would lose the child's result after it ran.
    "encoding_nul": ("cp.execSync('echo',{encoding:'utf\\u00008'})", lambda: exec_sync("echo", encoding="utf\x008"),
                     "same"),
    "encoding_idna": ("cp.execSync('echo',{encoding:'idna'})", lambda: exec_sync("echo", encoding="idna"), "same"),
    "encoding_undefined": ("cp.spawnSync('echo',[],{encoding:'undefined'})",
                           lambda: spawn_sync("echo", encoding="undefined"), "same"),
    "encoding_utf16_bomless": ("cp.execFileSync('echo',[],{encoding:'utf-16'})",
                               lambda: exec_file_sync("echo", [], encoding="utf-16"), "same"),
    "serialization": ("cp.spawn('echo',[],{serialization:'xml'})", lambda: spawn("echo", serialization="xml"), "serialization"),
}

_JS_TO_PY_TYPES = [
    (re.compile(r"^(?:null|undefined)$"), lambda m, v: "None"),
    (re.compile(r"^type number \((.*)\)$"), lambda m, v: f"type {type(v).__name__} ({m.group(1)})"),
    (re.compile(r"^type string \((.*)\)$", re.S), lambda m, v: f"type str ({m.group(1)})"),
    (re.compile(r"^type boolean \((true|false)\)$"), lambda m, v: f"type bool ({m.group(1).capitalize()})"),
    (re.compile(r"^an instance of Object$"), lambda m, v: "an instance of dict"),
    (re.compile(r"^an instance of Array$"), lambda m, v: "an instance of list"),
]


def _python_received(node_tail: str, value: Any) -> str:
    """Translate Node's ``Received ...`` description into the Python one:
    the same words with Python's type names."""
    for pattern, make in _JS_TO_PY_TYPES:
        m = pattern.match(node_tail)
        if m:
            return make(m, value)
    raise AssertionError(f"no translation for {node_tail!r}")


WRONG_TYPE_OUT_OF_RANGE = {"timeout_str", "timeout_str_async", "exec_timeout_str", "max_buffer_str", "max_buffer_bool",
                           "max_buffer_obj"}


def _received_value(case: str) -> Any:
    # The Python value each 'type' case passes, to pick int vs float names.
    return {"file_int": 42, "file_neg": -3, "file_float": 1.5, "args_num": 5, "exec_int": 5, "fork_module_int": 5,
            "cwd_int": 5, "uid_float": 1.5, "uid_big": 2**31, "shell_int": 5, "argv0_int": 5, "windows_hide": 5,
            "windows_verbatim": 5, "input_int": 5}.get(case)


@pytest.fixture(scope="module")
def node_results() -> dict[str, Any]:
    return node_errors({key: js for key, (js, _, _) in CASES.items()})


@pytest.mark.parametrize("case", list(CASES))
def test_matches_node(case: str, node_results: dict[str, Any]) -> None:
    _, call, kind = CASES[case]
    expected = node_results[case]
    assert expected is not None, f"node did not throw for {case}"
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    err = info.value
    assert getattr(err, "code", None) == expected["code"]
    message = str(err)
    node_message = expected["message"]
    if kind == "same":
        assert message == node_message
    elif kind == "type":
        head, sep, tail = node_message.partition(". Received ")
        assert sep
        assert message == head + sep + _python_received(tail, _received_value(case))
        assert isinstance(err, TypeError)
    elif kind == "seconds":
        assert message == node_message.replace("an unsigned integer", "a non-negative number")
    elif kind == "nan":
        assert message == node_message.replace("Received NaN", "Received nan")
    elif kind == "bool":
        assert message == node_message.replace("Received true", "Received True")
    elif kind == "inspect":
        # The same message up to the value, which each side shows its own way
        # (Node: <Buffer 78>; Python: b'x').
        head, sep, _ = node_message.partition(": ")
        assert sep and message.startswith(head + sep)
    elif kind == "serialization":
        assert message == node_message.replace("undefined, 'json', 'advanced'", "None, 'json', 'pickle'")
    else:
        raise AssertionError(kind)
    # Node's classes are TypeError/RangeError/Error; ours are TypeError for
    # wrong types and ValueError for everything else.
    expected_class = TypeError if expected["code"] in ("ERR_INVALID_ARG_TYPE", "ERR_INVALID_SYNC_FORK_INPUT") else ValueError
    assert isinstance(err, expected_class)
    if case in WRONG_TYPE_OUT_OF_RANGE:
        assert expected["code"] == "ERR_OUT_OF_RANGE"
        assert isinstance(err, TypeError)  # a wrong type: Node's code, Python's class as well


# --------------------------------------------------------------------------
# Formatting helpers against util.inspect
# --------------------------------------------------------------------------

INSPECT_STRINGS = ["plain", "it's", "it's \"q\"", "it's \"q\" `b`", "\x00\x07\b\t\n\x0b\f\r\x1b", "\x7f\x85\x9f\xa0",
                   "back\\slash", "\u200b\u00e9\U0001F600", "x" * 200, "line\n" * 40, "line\n" * 20 + "end",
                   "a\n" + "b" * 74, "a\n" + "b" * 75, "\n" * 77, "a" * 100 + "\n",
                   "y" * 10005, "ab\udc80cd", "${x} it's \"q\""]


def test_format_value_matches_util_inspect() -> None:
    got = node_json(f"out(JSON.parse({json_str(INSPECT_STRINGS)}).map((s) => util.inspect(s)))")
    for text, node_text in zip(INSPECT_STRINGS, got):
        assert M.format_value(text) == node_text, text


def json_str(value: Any) -> str:
    import json
    return json.dumps(json.dumps(value))


def test_describe_received() -> None:
    assert M.describe_received(None) == "None"
    assert M.describe_received(42) == "type int (42)"
    assert M.describe_received(True) == "type bool (True)"
    assert M.describe_received(b"ab") == "type bytes (b'ab')"
    assert M.describe_received([1]) == "an instance of list"
    assert M.describe_received(len) == "function len"
    assert M.describe_received(signal.SIGTERM) == "type Signals (15)"


# --------------------------------------------------------------------------
# Option names, the mapping and positional shifting
# --------------------------------------------------------------------------

@pytest.mark.parametrize("fn, call", [
    ("spawn_sync", lambda: spawn_sync("true", foo=1)),
    ("spawn_sync", lambda: spawn_sync("true", [], {"foo": 1})),
    ("spawn_sync", lambda: spawn_sync("true", signal=Sig())),  # signal is async-only
    ("spawn", lambda: spawn("true", input=b"x")),
    ("exec_file", lambda: exec_file("true", stdio="pipe")),
    ("exec", lambda: exec_("true", detached=True)),
    ("fork", lambda: fork("x.py", shell=True)),
    ("exec_sync", lambda: exec_sync("true", serialization="json")),
])
def test_unknown_option(fn: str, call: Callable[[], Any]) -> None:
    with pytest.raises(TypeError, match=rf"^{fn}\(\) got an unexpected keyword argument '\w+'"):
        call()


def test_camel_case_only_in_mapping() -> None:
    assert spawn_sync("true", [], {"killSignal": "SIGKILL", "maxBuffer": 5}).kill_signal == 9
    with pytest.raises(TypeError, match="did you mean 'kill_signal'"):
        spawn_sync("true", killSignal="SIGKILL")
    with pytest.raises(TypeError, match="twice"):
        spawn_sync("true", [], {"killSignal": 9, "kill_signal": 9})


def test_kwargs_win_and_none_is_not_given() -> None:
    plan = spawn_sync("true", [], {"timeout": 5, "cwd": "/tmp"}, timeout=2, cwd=None)
    assert plan.timeout == 2 and plan.cwd == b"/tmp"
    plan = spawn_sync("true", [], {"timeout": None, "killSignal": None, "env": None})
    assert plan.timeout is None and plan.kill_signal == signal.SIGTERM and plan.env_blob is None


def test_positional_shifting_spawn() -> None:
    plan = spawn_sync("echo", {"cwd": "/tmp"})  # args given as a mapping is the options
    assert plan.spawnargs == ["echo"] and plan.cwd == b"/tmp"
    with pytest.raises(TypeError, match="options twice"):
        spawn_sync("echo", {"cwd": "/tmp"}, {"cwd": "/"})
    assert spawn_sync("echo", ("a", "b")).spawnargs == ["echo", "a", "b"]
    assert spawn_sync("echo", iter(["a"])).spawnargs == ["echo", "a"]
    assert spawn("echo", None).spawnargs == ["echo"]


def test_positional_shifting_exec_file() -> None:
    cb = lambda *a: None  # noqa: E731
    assert exec_file("echo", cb).callback is cb
    plan = exec_file("echo", {"cwd": "/tmp"}, cb)
    assert plan.callback is cb and plan.cwd == b"/tmp"
    plan = exec_file("echo", ["a"], cb)
    assert plan.callback is cb and plan.spawnargs == ["echo", "a"]
    assert exec_file("echo", ["a"], {}, cb).callback is cb
    assert exec_file("echo", callback=cb).callback is cb
    with pytest.raises(TypeError, match="last argument"):
        exec_file("echo", cb, {"cwd": "/"})  # Node would silently drop the options
    with pytest.raises(TypeError) as info:
        exec_file_sync("echo", cb)  # sync calls take no callback
    assert getattr(info.value, "code", None) == "ERR_INVALID_ARG_TYPE"
    with pytest.raises(TypeError, match="options twice"):
        exec_file_sync("echo", {"cwd": "/"}, {"cwd": "/tmp"})


def test_positional_shifting_exec_and_fork() -> None:
    cb = lambda *a: None  # noqa: E731
    assert exec_("echo", cb).callback is cb
    assert exec_("echo", {"cwd": "/tmp"}, cb).callback is cb
    with pytest.raises(TypeError, match="options"):
        exec_sync("echo", cb)
    plan = fork("w.py", {"silent": True})
    # (exec_argv defaults to this interpreter's options, Node's process.execArgv)
    flags = subprocess._args_from_interpreter_flags()
    assert plan.spawnargs == [sys.executable, *flags, "w.py"] and plan.stdio[0].kind == "pipe"


# --------------------------------------------------------------------------
# Plan contents
# --------------------------------------------------------------------------

def test_default_plan() -> None:
    plan = spawn_sync("/bin/true")
    assert plan.file == "/bin/true" and plan.spawnargs == ["/bin/true"]
    assert plan.argv_blob == b"/bin/true\0" and plan.argc == 1 and plan.file_bytes == b"/bin/true"
    assert plan.env_blob is None and plan.path == os.environb.get(b"PATH")
    assert [s.kind for s in plan.stdio] == ["pipe"] * 3
    assert plan.timeout is None and plan.kill_signal == signal.SIGTERM and plan.max_buffer == 1024 * 1024
    assert plan.encoding is None and plan.input is None and plan.cwd is None


def test_argv_types() -> None:
    plan = spawn_sync(b"echo", ["s", b"\xff\xfe", pathlib.Path("/p"), 1, 2.5])
    assert plan.spawnargs == [b"echo", "s", b"\xff\xfe", "/p", "1", "2.5"]
    assert plan.argv_blob == b"echo\0s\0\xff\xfe\0/p\0" + b"1\0" + b"2.5\0" and plan.argc == 6
    with pytest.raises(TypeError) as info:
        spawn_sync("echo", ["a", True])
    assert str(info.value) == 'The "args[1]" argument must be of type string. Received type bool (True)'
    with pytest.raises(ValueError, match=r"'args\[0\]' must be a string without null bytes. Received b'a\\x00'"):
        spawn_sync("echo", [b"a\0"])


def test_shell_rewrite() -> None:
    plan = spawn("echo", ["$HOME", '"quoted arg"', "a b"], shell=True)
    assert plan.file == "/bin/sh" and plan.spawnargs == ["/bin/sh", "-c", 'echo $HOME "quoted arg" a b']
    plan = spawn_sync("echo", ["x"], shell=True, argv0="x")
    assert plan.spawnargs == ["x", "-c", "echo x"] and plan.file == "/bin/sh"
    plan = spawn_sync("echo", ["hi"], shell="/bin/bash")
    assert plan.file == "/bin/bash" and plan.spawnargs == ["/bin/bash", "-c", "echo hi"]
    plan = spawn_sync("echo", [b"\xff"], shell=True)
    assert plan.spawnargs == ["/bin/sh", "-c", b"echo \xff"]
    assert spawn_sync("echo", shell="").spawnargs == ["echo"]  # '' is falsy: no shell, as in Node


def test_exec_plans() -> None:
    plan = exec_("echo ok")
    assert plan.file == "/bin/sh" and plan.spawnargs == ["/bin/sh", "-c", "echo ok"]
    assert plan.encoding == "utf-8" and plan.timeout is None and plan.shell is True
    assert exec_("echo", shell=False).shell is True  # Node forces it on
    assert exec_("echo", shell="/bin/bash").file == "/bin/bash"
    assert exec_("echo", encoding=None).encoding is None  # explicit None: bytes
    assert exec_("echo", encoding="buffer").encoding is None
    assert exec_sync("echo").encoding is None
    assert exec_sync("echo $0", argv0="custom").spawnargs == ["custom", "-c", "echo $0"]
    assert exec_("echo hi").command_line() == "echo hi"


def test_exec_file_argv0() -> None:
    # execFile validates argv0 and drops it; execFileSync honours it (Node v20 does the same)
    assert exec_file("sh", ["-c", "echo $0"], argv0="custom").spawnargs[0] == "sh"
    plan = exec_file_sync("sh", ["-c", "echo $0"], argv0="custom")
    assert plan.spawnargs[0] == "custom"
    assert plan.command_line() == "custom -c echo $0"
    assert exec_file("sh", ["-c", "x"], shell=True).command_line() == "sh -c x"
    with pytest.raises(ValueError):
        exec_file("sh", argv0="a\0")


def test_env_blob() -> None:
    plan = spawn_sync("env", env={"A": "1", "N": 42, "SKIP": None, b"B": b"\xff", "PATH": "/x:/y"})
    assert plan.env_blob == b"A=1\0N=42\0B=\xff\0PATH=/x:/y\0" and plan.envc == 4
    assert plan.path == b"/x:/y"
    plan = spawn_sync("env", env={})
    assert plan.env_blob == b"" and plan.envc == 0 and plan.path is None
    with pytest.raises(TypeError) as info:
        spawn_sync("env", env=["A=1"])
    assert info.value.code == "ERR_INVALID_ARG_TYPE"  # type: ignore[attr-defined]


def test_cwd() -> None:
    assert spawn_sync("true", cwd="").cwd is None
    assert spawn_sync("true", cwd=pathlib.Path("/tmp")).cwd == b"/tmp"
    assert spawn_sync("true", cwd=b"/tmp").cwd == b"/tmp"
    with pytest.raises(ValueError, match=r"Received b'/t\\x00'"):
        spawn_sync("true", cwd=b"/t\0")


@pytest.mark.parametrize("stdio, kinds, fds", [
    ("pipe", ["pipe"] * 3, [-1] * 3),
    ("overlapped", ["pipe"] * 3, [-1] * 3),
    ("ignore", ["ignore"] * 3, [-1] * 3),
    ("inherit", ["fd"] * 3, [0, 1, 2]),
    ([None], ["pipe"] * 3, [-1] * 3),
    (["ignore", "inherit"], ["ignore", "fd", "pipe"], [-1, 1, -1]),
    ([-1, 2, 1, None, "pipe", "inherit"], ["pipe", "fd", "fd", "ignore", "pipe", "fd"], [-1, 2, 1, -1, -1, 5]),
    (("pipe", "pipe", "pipe", None), ["pipe", "pipe", "pipe", "ignore"], [-1] * 4),
])
def test_stdio_mapping(stdio: Any, kinds: list[str], fds: list[int]) -> None:
    plan = spawn_sync("true", stdio=stdio)
    assert [s.kind for s in plan.stdio] == kinds
    assert [s.fd for s in plan.stdio] == fds
    assert plan.stdio_given


def test_stdio_objects(tmp_path: pathlib.Path) -> None:
    with open(tmp_path / "f", "wb") as f:
        plan = spawn_sync("true", stdio=["ignore", f, sys.stderr])
        assert plan.stdio[1] == O.StdioSlot("fd", f.fileno(), f)
        assert plan.stdio[2].fd == sys.stderr.fileno()
    import io
    with pytest.raises(ValueError) as info:
        spawn_sync("true", stdio=[io.BytesIO()])
    assert info.value.code == "ERR_INVALID_ARG_VALUE"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="Received 'bogus'"):  # Node drops it in sync mode
        spawn_sync("true", stdio=["pipe", "pipe", "pipe", "bogus"])
    with pytest.raises(ValueError, match="Received b'x'"):
        spawn_sync("true", stdio=[b"x"])

    class Stream:
        def _childproc_fd(self) -> int:
            return 0
    assert spawn("true", stdio=[Stream()]).stdio[0].kind == "stream"
    with pytest.raises(ValueError):
        spawn_sync("true", stdio=[Stream()])


def test_spawn_ipc_env() -> None:
    plan = spawn("node", stdio=["pipe", "pipe", "pipe", "ipc"], env={"A": "1", "NODE_CHANNEL_FD": "9"})
    assert plan.ipc_fd == 3 and plan.stdio[3].kind == "ipc"
    assert plan.env_blob == b"A=1\0NODE_CHANNEL_FD=3\0NODE_CHANNEL_SERIALIZATION_MODE=json\0"


def test_fork_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CP_TEST_VAR", "v")
    plan = fork("w.py", ["a", 1], exec_argv=["-u"])
    assert plan.file == sys.executable
    assert plan.spawnargs == [sys.executable, "-u", "w.py", "a", "1"]
    assert [s.kind for s in plan.stdio] == ["fd", "fd", "fd", "ipc"] and plan.ipc_fd == 3
    assert plan.shell is False and plan.exec_argv == ["-u"] and plan.args == ["a", "1"]
    entries = plan.env_blob.split(b"\0")[:-1]  # type: ignore[union-attr]
    assert b"CP_TEST_VAR=v" in entries
    assert entries[-2:] == [b"NODE_CHANNEL_FD=3", b"NODE_CHANNEL_SERIALIZATION_MODE=json"]
    assert plan.envc == len(entries)
    plan = fork("w.py", stdio="ignore", serialization="pickle", exec_path="python3")
    assert [s.kind for s in plan.stdio] == ["ignore"] * 3 + ["ipc"]
    assert plan.file == "python3" and plan.env_blob.endswith(b"NODE_CHANNEL_SERIALIZATION_MODE=pickle\0")  # type: ignore[union-attr]
    plan = fork("w.py", stdio=["pipe", "ipc", "inherit"], env={"A": "b"})
    assert plan.ipc_fd == 1 and plan.env_blob == b"A=b\0NODE_CHANNEL_FD=1\0NODE_CHANNEL_SERIALIZATION_MODE=json\0"
    inherit = fork("w.py", stdio="inherit").stdio  # Node: [0, 1, 2, 'ipc']
    assert [(s.kind, s.fd) for s in inherit] == [("fd", 0), ("fd", 1), ("fd", 2), ("ipc", -1)]


def test_fork_serialization() -> None:
    with pytest.raises(ValueError, match="'pickle'") as info:
        fork("w.py", serialization="advanced")
    assert info.value.code == "ERR_INVALID_ARG_VALUE"  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        fork("w.py", serialization="xml")
    with pytest.raises(TypeError, match="execArgv"):
        fork("w.py", exec_argv="-u")


# --------------------------------------------------------------------------
# Numbers, signals, encodings, input
# --------------------------------------------------------------------------

def test_timeout_and_max_buffer() -> None:
    assert spawn_sync("true", timeout=0).timeout is None
    assert spawn_sync("true", timeout=math.inf).timeout is None
    assert spawn_sync("true", timeout=1.5).timeout == 1.5
    assert spawn_sync("true", max_buffer=math.inf).max_buffer == math.inf
    assert spawn_sync("true", max_buffer=0).max_buffer == 0
    for bad in ("1", True, [], None.__class__):
        for kw in ({"timeout": bad}, {"max_buffer": bad}, {"force_kill_after": bad}):
            with pytest.raises(TypeError) as info:  # Node's ERR_OUT_OF_RANGE, a TypeError too
                spawn_sync("true", **kw)
            assert info.value.code == "ERR_OUT_OF_RANGE" and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="out of range"):
        spawn_sync("true", timeout=math.nan)
    assert spawn_sync("true", force_kill_after=0).force_kill_after == 0.0
    with pytest.raises(ValueError):
        spawn_sync("true", force_kill_after=-1)


@pytest.mark.parametrize("value, number", [
    ("SIGTERM", 15), ("sigterm", 15), ("SigKill", 9), (9, 9), (9.0, 9), (signal.SIGINT, 2), ("SIGIOT", 6), ("SIGPOLL", 29),
])
def test_signal_number(value: Any, number: int) -> None:
    assert S.signal_number(value) == number


@pytest.mark.parametrize("value", ["SIGCLD", "SIGRTMIN", 0, 64, 34, -1, 1.5, "", "TERM"])
def test_unknown_signals(value: Any) -> None:
    with pytest.raises(ValueError) as info:
        S.signal_number(value)
    assert info.value.code == "ERR_UNKNOWN_SIGNAL"  # type: ignore[attr-defined]
    assert str(info.value) == f"Unknown signal: {value}"


def test_signal_names_match_node() -> None:
    assert S.signal_name(6) == "SIGABRT" and S.signal_name(29) == "SIGIO" and S.signal_name(64) is None
    if sys.platform.startswith("linux"):
        assert dict(S.SIGNALS) == node_json("out(os.constants.signals)")


def test_signal_type_errors() -> None:
    for bad in (True, None, [], b"SIGTERM"):
        with pytest.raises(TypeError) as info:
            S.signal_number(bad, "options.killSignal")
        assert str(info.value).startswith('The "options.killSignal" property must be one of type string or number.')


@pytest.mark.parametrize("name, expected", [
    ("utf8", "utf-8"), ("UTF-8", "utf-8"), ("latin1", "latin-1"), ("binary", "latin-1"), ("ucs2", "utf-16-le"),
    ("utf16le", "utf-16-le"), ("hex", "hex"), ("base64url", "base64url"), ("buffer", None), (None, None),
    ("cp1252", "cp1252"), ("shift_jis", "shift_jis"),
])
def test_encoding_names(name: Any, expected: str | None) -> None:
    assert O.normalize_encoding(name) == expected


@pytest.mark.parametrize("name", ["xyz", "zlib", "rot13"])
def test_unknown_encoding(name: str) -> None:
    with pytest.raises(ValueError, match=f"^Unknown encoding: {name}$"):
        spawn_sync("true", encoding=name)


DECODE_BYTES = [0x61, 0xE2, 0x82, 0x41, 0xF0, 0x9F, 0x98, 0xE9, 0xFF, 0x00, 0x7F, 0x80, 0xFB]


@pytest.mark.parametrize("enc", ["utf8", "latin1", "ascii", "hex", "base64", "base64url", "ucs2"])
def test_decode_output_matches_buffer_tostring(enc: str) -> None:
    expected = node_json(f"out(Buffer.from({DECODE_BYTES}).toString('{enc}'))")
    assert O.decode_output(bytes(DECODE_BYTES), O.normalize_encoding(enc)) == expected
    assert O.decode_output(b"abc", None) == b"abc"


@pytest.mark.parametrize("text, enc", [
    ("héllo €", "utf8"), ("é€", "latin1"), ("é€", "ascii"), ("zz61", "hex"), ("61g62", "hex"), ("6162", "hex"),
    ("YW-_Jj", "base64"), ("YWJj", "base64url"), ("YWJjZA", "base64"), ("ab\u20ac", "ucs2"),
])
def test_encode_input_matches_buffer_from(text: str, enc: str) -> None:
    import json
    expected = node_json(f"out([...Buffer.from({json.dumps(text)}, '{enc}')])")
    assert list(O.encode_input(text, O.normalize_encoding(enc))) == expected


def test_input_forms() -> None:
    assert spawn_sync("cat", input="é").input == "é".encode()
    assert spawn_sync("cat", input="6869", encoding="hex").input == b"hi"
    assert spawn_sync("cat", input="x", encoding="buffer").input == b"x"  # Node throws here
    assert spawn_sync("cat", input=bytearray(b"ab")).input == b"ab"
    assert spawn_sync("cat", input=memoryview(b"abc")[1:]).input == b"bc"
    assert spawn_sync("cat", input=array.array("B", [1, 2])).input == b"\x01\x02"
    assert spawn_sync("cat", input="").input is None and spawn_sync("cat", input=b"").input is None
    assert spawn_sync("cat", input=os.fsdecode(b"\xff")).input == b"\xff"  # surrogateescape round trip


def test_uid_gid() -> None:
    plan = spawn_sync("true", uid=0, gid=-1)
    assert plan.uid == 0 and plan.gid == -1
    assert spawn_sync("true", uid=1000.0).uid == 1000
    with pytest.raises(TypeError):
        spawn_sync("true", uid=True)


def test_booleans() -> None:
    for opt in ("detached", "windows_hide", "kill_tree", "die_with_parent"):
        assert getattr(spawn_sync("true", **{opt: True}), opt) is True
        with pytest.raises(TypeError, match="must be of type boolean"):
            spawn_sync("true", **{opt: 1})


def test_abort_signal_accepted() -> None:
    sig = _abort_signal()
    assert spawn("true", signal=sig).signal is sig
    assert exec_("true", signal=sig).signal is sig


# --------------------------------------------------------------------------
# Error classes
# --------------------------------------------------------------------------

@pytest.mark.parametrize("code, builtin", [
    (errno.ENOENT, FileNotFoundError), (errno.EACCES, PermissionError), (errno.EPERM, PermissionError),
    (errno.ETIMEDOUT, TimeoutError), (errno.EAGAIN, BlockingIOError), (errno.ECHILD, ChildProcessError),
])
def test_spawn_error_classes(code: int, builtin: type) -> None:
    err = E.spawn_error(-code, "spawnSync ls", "ls", ["-l"])
    assert isinstance(err, builtin) and isinstance(err, E.SpawnError)
    assert err.errno == code and err.code == errno.errorcode[code]
    assert str(err) == f"spawnSync ls {errno.errorcode[code]}"
    assert err.syscall == "spawnSync ls" and err.path == "ls" and err.spawnargs == ["-l"]
    err.status = None
    err.output = [None, b"", b""]
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err) and str(copy) == str(err) and copy.output == err.output


def test_spawn_error_plain() -> None:
    err = E.spawn_error(errno.ENOBUFS, "spawnSync sh")
    assert type(err) is E.SpawnError and str(err) == "spawnSync sh ENOBUFS"
    assert str(E.spawn_error(errno.EPERM, "spawn")) == "spawn EPERM"


def test_exec_errors() -> None:
    err = E.ExecError("Command failed: x\nerr\n", code=3, cmd="x", stderr="err\n")
    assert str(err) == "Command failed: x\nerr\n" and err.code == 3 and err.killed is False and err.signal is None
    assert err.status is None and err.pid is None
    assert pickle.loads(pickle.dumps(err)).cmd == "x"
    mb = E.MaxBufferError("stderr", killed=True, cmd="y")
    assert str(mb) == "stderr maxBuffer length exceeded" and mb.code == "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
    assert isinstance(mb, E.ExecError) and mb.killed and mb.cmd == "y"
    assert str(pickle.loads(pickle.dumps(mb))) == str(mb)
    ab = E.AbortError(cause="why")
    assert str(ab) == "The operation was aborted" and ab.code == "ABORT_ERR" and ab.cause == "why"
    ipc = E.IPCError("Channel closed", "ERR_IPC_CHANNEL_CLOSED")
    assert ipc.code == "ERR_IPC_CHANNEL_CLOSED" and pickle.loads(pickle.dumps(ipc)).code == ipc.code


def test_validation_error_classes() -> None:
    assert isinstance(M.invalid_arg_type("x", "string", 1), TypeError)
    assert M.ipc_one_pipe().code == "ERR_IPC_ONE_PIPE"
    assert str(M.child_process_ipc_required()) == (
        "Forked processes must have an IPC channel, missing value 'ipc' in options.stdio")
    assert str(M.invalid_arg_type("options.signal", "AbortSignal", [])) == (
        'The "options.signal" property must be an instance of AbortSignal. Received an instance of list')
    assert NODE is None or NODE  # nodecmp is importable either way


def test_windows_branches(monkeypatch: pytest.MonkeyPatch) -> None:
    # The win32 code paths, exercised here by flipping the platform switch.
    monkeypatch.setattr(O, "_WIN", True)
    monkeypatch.delenv("comspec", raising=False)
    plan = exec_("echo hi")
    assert plan.file == "cmd.exe" and plan.spawnargs == ["cmd.exe", "/d", "/s", "/c", '"echo hi"']
    assert plan.windows_verbatim_arguments is True
    plan = spawn_sync("x", ["a"], shell="C:\\Tools\\bash.exe")
    assert plan.spawnargs == ["C:\\Tools\\bash.exe", "-c", "x a"] and not plan.windows_verbatim_arguments
    assert spawn_sync("x", shell="C:\\Windows\\System32\\CMD.EXE").windows_verbatim_arguments is True
    # keys are case-insensitive: the first in sorted order wins, as in Node
    assert spawn_sync("x", env={"b": "1", "B": "2", "a": "3"}).env_blob == b"B=2\0a=3\0"


# --------------------------------------------------------------------------
# Bad input that once escaped without a code (OverflowError,
# UnicodeEncodeError, a ValueError without .code) or took a Python value
# where Node has its own
# --------------------------------------------------------------------------

def test_a_stdio_fd_beyond_a_c_int_is_invalid_arg_value() -> None:
    # Deliberate: Node wraps the number to 32 bits and runs the child with
    # some other fd; an fd is a C int, so this is refused before anything runs.
    for fd in (2**31, 2**40):
        with pytest.raises(ValueError) as info:
            spawn_sync("true", stdio=["pipe", "pipe", fd])
        assert info.value.code == "ERR_INVALID_ARG_VALUE"
        assert str(info.value) == f"The argument 'stdio' is invalid. Received {fd}"

    class Huge:
        def fileno(self) -> int:
            return 2**40

    with pytest.raises(ValueError) as info:
        spawn("true", stdio=["pipe", Huge(), "pipe"])
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
    assert spawn_sync("true", stdio=["pipe", "pipe", 2**31 - 1]).stdio[2].fd == 2**31 - 1


@pytest.mark.parametrize("args", [{"b", "a"}, frozenset({"a"})], ids=["set", "frozenset"])
def test_a_set_is_not_an_args_list(args: Any) -> None:
    # Deliberate: a set has no order.  (Node takes a Set in that slot for the
    # options object: no error, and the child gets no arguments.)
    for call in (lambda: spawn_sync("echo", args), lambda: exec_file("echo", args), lambda: fork("x.py", args)):
        with pytest.raises(TypeError) as info:
            call()
        assert info.value.code == "ERR_INVALID_ARG_TYPE"
    assert spawn_sync("echo", iter(["a", "b"])).spawnargs == ["echo", "a", "b"]  # ordered iterables still work
    assert spawn_sync("echo", {"x": 1}.keys()).spawnargs == ["echo", "x"]


def _child_bytes(result: Any) -> str:
    assert result.error is None, result.error
    return result.stdout.decode()


# The child's $1, $X, $Y and its real argv[0], in hex.
_SHOW = ("{ printf '%s|%s|%s|' \"$1\" \"$X\" \"$Y\"; tr '\\000' '\\n' < /proc/$$/cmdline | head -n1; }"
         " | od -An -tx1 | tr -d ' \\n'")


@pytest.mark.skipif(NODE is None or not sys.platform.startswith("linux"), reason="needs node and /proc")
def test_env_values_and_lone_surrogates_are_what_node_passes() -> None:
    # What the child receives: argv[0] (argv0), an argument, two env values.
    # Booleans are written as JavaScript writes them; a lone surrogate is
    # U+FFFD in UTF-8 (Node converts JS strings so), while a surrogate-escaped
    # character still stands for its byte (os.fsencode's rule).
    import json

    import childproc as cp

    cases = [
        ("bools", "a0", "a1", True, False),
        ("high", "\ud800", "x\ud800y", "\udbff", "ok"),
        ("low", "\udc00", "\udfff", "z\udc7fz", "ok"),
    ]
    node_cases = [[argv0, arg, x, y] for _, argv0, arg, x, y in cases]
    expected = node_json(
        f"out(JSON.parse({json.dumps(json.dumps(node_cases, ensure_ascii=True))}).map(([a0, a1, x, y]) =>"
        f" cp.spawnSync('sh', ['-c', {json.dumps(_SHOW)}, 'name', a1], {{argv0: a0, env: {{X: x, Y: y}}}})"
        ".stdout.toString()))"
    )
    assert expected[0] == "a1|true|false|a0\n".encode().hex()
    for (name, argv0, arg, x, y), want in zip(cases, expected):
        r = cp.spawn_sync("sh", ["-c", _SHOW, "name", arg], argv0=argv0, env={"X": x, "Y": y})
        assert _child_bytes(r) == want, name
    # A surrogate-escaped byte is not Node's to define: it stays its byte.
    r = cp.spawn_sync("sh", ["-c", _SHOW, "name", "\udcff"], env={"X": "\udc80", "Y": ""})
    assert _child_bytes(r) == b"\xff|\x80||sh\n".hex()


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_a_lone_surrogate_in_cwd_is_the_path_node_tries() -> None:
    import childproc as cp

    expected = node_json("const r = cp.spawnSync('pwd', [], {cwd: '/nonexistent-\\ud800'});"
                         " out([r.status, r.error && r.error.code])")
    r = cp.spawn_sync("pwd", cwd="/nonexistent-\ud800")
    assert [r.status, r.error and r.error.code] == expected == [None, "ENOENT"]
    assert r.error.filename == "/nonexistent-\ufffd"  # the path that was tried
