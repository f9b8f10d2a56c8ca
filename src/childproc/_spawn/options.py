"""Argument normalisation and validation shared by all seven entry points.

Each public function (``spawn``, ``spawn_sync``, ``exec``, ``exec_sync``,
``exec_file``, ``exec_file_sync``, ``fork``) passes its raw arguments to a
``normalize_*`` function here and gets a :class:`SpawnPlan` back: the file,
argv and environment blobs the C core reads, the stdio slots, and every
option resolved to a plain value.  Nothing is spawned before the whole call
is valid.  The rules are Node's (``normalizeSpawnArguments``,
``normalizeExecArgs``, ``normalizeExecFileArgs``, ``fork``,
``getValidStdio``, ``spawnSync``; v20) with Node's codes and messages.
Options come as keyword arguments and/or a Node-style mapping in the options
slot (camelCase names allowed there; keywords win; ``None`` means "not
given"); an option the function does not take is a ``TypeError`` where Node
would ignore it.

Deliberate differences from Node, each marked where it is made: seconds for
timeouts; unknown encodings refused before spawning; ``str`` input with encoding
``'buffer'`` is UTF-8; unknown stdio strings refused in sync calls and
``'overlapped'`` accepted there; ``env`` must be a mapping; arguments that
Node's positional shifting would silently drop are refused; a stale
``NODE_CHANNEL_*`` pair in a given env is replaced, not duplicated.

Speed: ``spawn_sync('/bin/true')`` must stay within a few percent of a C
``posix_spawn`` loop, so the default call shape takes a fast path (a few
type checks, one encode, shared stdio slots; tables built at import).

This module owns the options and the positional arguments and builds the
plan; the pieces with rules of their own live next to it: :mod:`._stdio`
(the ``stdio`` slots), :mod:`._env` (the env blob and its PATH) and
:mod:`._encoding` (Node's encoding names, ``input``, OS strings).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .encoding import (
    NUL_MESSAGE, decode_output, encode_input, fs_bytes, fs_text, input_bytes,
    normalize_encoding,
)
from .._abort import AbortSignal
from .env import env_block, environ_path
from .._errors import ArgValueError
from .._messages import invalid_arg_type, invalid_arg_value, out_of_range
from .optiontypes import ALLOWED
from .signals import SIGTERM, signal_number
from .stdio import DEFAULT_STDIO as _DEFAULT_STDIO
from .stdio import SHORTCUTS as _STDIO_SHORTCUTS
from .stdio import StdioSlot, fork_stdio, normalize_stdio

# StdioSlot (from _stdio) and normalize_encoding, decode_output and
# encode_input (from _encoding) are re-exported for existing imports.
__all__ = ["StdioSlot", "SpawnPlan", "MAX_BUFFER", "normalize_spawn", "normalize_exec",
           "normalize_exec_file", "normalize_fork", "normalize_encoding", "decode_output",
           "encode_input"]

MAX_BUFFER = 1024 * 1024
_WIN = sys.platform == "win32"  # the platform switch, passed on to _env (the tests flip it)
_ANDROID = hasattr(sys, "getandroidapilevel")
_PATH_NUL = "must be a string, Uint8Array, or URL without null bytes"
_PATH_TYPES = ("string", "Buffer", "URL")


@dataclass(slots=True)
class SpawnPlan:
    """Everything needed to start one child, validated and resolved.

    ``file`` and ``spawnargs`` (argv including argv[0]) keep the user's
    types -- str stays str, bytes stays bytes -- and are what
    ``ChildProcess.spawnfile``/``spawnargs`` show.  ``file_bytes``,
    ``argv_blob`` (each entry NUL-terminated, back to back) and ``env_blob``
    (``KEY=VALUE\\0`` entries) are what C reads.  ``env_blob is None`` means
    "the parent's own environ" -- test with ``is None``: an empty env is
    ``b''``.  ``path`` is the PATH the exec search uses (None: the C
    default list), ``cwd`` None means "stay".  ``timeout`` and
    ``force_kill_after`` are seconds or None; ``max_buffer`` is a byte
    count (``math.inf`` allowed; 0 means "no limit" in sync calls and "fail
    on the first byte" in ``exec``, as in Node); ``encoding`` is None for
    bytes or a name :func:`decode_output` understands.  ``command`` and
    ``args`` are the user's file/command and arguments before the shell
    rewrite, for :meth:`command_line`.
    """

    fn_name: str
    file: str | bytes
    spawnargs: list[str | bytes]
    file_bytes: bytes
    argv_blob: bytes
    argc: int
    stdio: list[StdioSlot]
    path: bytes | None = None
    env_blob: bytes | None = None
    envc: int = 0
    cwd: bytes | None = None
    ipc_fd: int = -1
    stdio_given: bool = False
    detached: bool = False
    uid: int | None = None
    gid: int | None = None
    timeout: float | None = None
    kill_signal: int = SIGTERM
    max_buffer: float = MAX_BUFFER
    encoding: str | None = None
    input: bytes | None = None
    shell: bool | str | bytes = False
    windows_hide: bool = False
    windows_verbatim_arguments: bool = False
    serialization: str = "json"
    signal: Any = None
    kill_tree: bool = False
    force_kill_after: float | None = None
    die_with_parent: bool = False
    exec_path: str | bytes | None = None
    exec_argv: list[str | bytes] | None = None
    callback: Callable[..., Any] | None = None
    command: str | bytes = ""
    args: list[str | bytes] | None = None
    argv0: str | bytes | None = None
    max_message_size: float | None = None  # None: the channel's default
    warm_start: bool = False  # fork: from the zygote where it can serve (childproc._warm)

    @property
    def group_guarded(self) -> bool:
        """die_with_parent covers the child's process group (a warden kills
        it, _spawn/warden.py): for a shell command, which forks what it
        runs, and with kill_tree; on Linux, not with detached (a session of
        its own, which the warden cannot join)."""
        return (self.die_with_parent and not self.detached and sys.platform.startswith("linux")
                and (bool(self.shell) or self.kill_tree))

    def command_line(self) -> str:
        """The ``cmd`` Node puts in exec errors: the raw command for
        ``exec``/``exec_sync``; ``[argv0 || file, ...args].join(' ')`` for
        ``exec_file_sync``; ``file`` plus the arguments otherwise."""
        if self.fn_name in ("exec", "exec_sync"):
            return fs_text(self.command)
        head = self.argv0 if self.fn_name == "exec_file_sync" and self.argv0 else self.command
        return " ".join(fs_text(part) for part in (head, *(self.args or ())))


# ---------------------------------------------------------------- options

# Which options each function reads (Node v20's, checked against Node's
# source: argv0 is honoured by execSync and fork too, and only validated by
# exec/execFile; windowsVerbatimArguments is read everywhere): the keys of
# the TypedDicts in .optiontypes, which the type checker reads too.
# Python additions, off by default: ``encoding`` on spawn (its output
# streams in text mode) and ``input`` on exec/exec_file (written to stdin,
# then end).
_ALLOWED = ALLOWED
_CAMEL = {"killSignal": "kill_signal", "maxBuffer": "max_buffer", "windowsHide": "windows_hide",
          "windowsVerbatimArguments": "windows_verbatim_arguments", "execPath": "exec_path",
          "execArgv": "exec_argv"}
_SNAKE_TO_CAMEL = {v: k for k, v in _CAMEL.items()}


def _unexpected(fn_name: str, key: Any) -> TypeError:
    hint = f" (did you mean {_CAMEL[key]!r}?)" if key in _CAMEL else ""
    return TypeError(f"{fn_name}() got an unexpected keyword argument {key!r}{hint}")


def _collect(fn_name: str, options: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the options mapping (camelCase allowed) and keyword arguments
    into one dict of Python names, dropping ``None`` values -- except for
    ``encoding``, where an explicit None asks for bytes (for ``exec`` too,
    whose default is text; Node's ``encoding: null`` also gives Buffers)."""
    allowed = _ALLOWED[fn_name]
    opts: dict[str, Any] = {}
    if options:
        for key, value in options.items():
            name = _CAMEL.get(key, key) if type(key) is str else key
            if name not in allowed:
                raise TypeError(f"{fn_name}() got an unexpected keyword argument {key!r}")
            if value is not None or name == "encoding":
                if name in opts:
                    raise TypeError(f"{fn_name}() got option {name!r} twice (as {key!r} "
                                    f"and {_SNAKE_TO_CAMEL.get(name, name)!r})")
                opts[name] = value
    if kwargs:
        if not allowed.issuperset(kwargs):
            raise _unexpected(fn_name, next(k for k in kwargs if k not in allowed))
        for key, value in kwargs.items():
            if value is not None or key == "encoding":
                opts[key] = value
    return opts


def _options_arg(options: Any) -> Mapping[str, Any] | None:
    if options is None or isinstance(options, Mapping):
        return options
    raise invalid_arg_type("options", "object", options)


def _bool(opts: dict[str, Any], key: str, node_name: str) -> bool:
    value = opts.get(key, False)
    if type(value) is not bool:
        raise invalid_arg_type(node_name, "boolean", value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _non_negative(value: Any, name: str, range_name: str, desc: str = "a non-negative number") -> Any:
    if not _is_number(value):
        # Node's ERR_OUT_OF_RANGE ('1', true, {}); the error is a TypeError too.
        raise out_of_range(range_name, desc, value, wrong_type=True)
    if not value >= 0:  # also refuses NaN
        raise out_of_range(range_name, desc, value)
    return value


def _seconds(value: Any, name: str, range_name: str) -> float | None:
    """A non-negative number of seconds; 0 and inf mean "none".  (Node's
    message says "an unsigned integer": milliseconds; ours are seconds.)"""
    value = _non_negative(value, name, range_name)
    return None if value == 0 or value == math.inf else float(value)


def _int32(value: Any, name: str) -> int:
    # Node's isInt32: value === (value | 0), so 1000.0 passes and 1.5 does not.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31:
        return int(value)
    raise invalid_arg_type(name, "int32", value)


# ------------------------------------------------------------ path checks

def _path(value: Any, name: str, expected: Any = "string", nul: str = NUL_MESSAGE) -> str | bytes:
    """A str, bytes or os.PathLike without NUL, returned as str or bytes."""
    if not isinstance(value, (str, bytes)):
        if not isinstance(value, os.PathLike):
            raise invalid_arg_type(name, expected, value)
        value = os.fspath(value)
    if ("\0" if isinstance(value, str) else b"\0") in value:
        raise invalid_arg_value(name, value, nul)
    return value


def _argv_item(value: Any, name: str) -> str | bytes:
    cls = type(value)
    if cls is str:
        if "\0" in value:
            raise invalid_arg_value(name, value, NUL_MESSAGE)
        return value
    if cls is int or cls is float:
        return str(value)  # Node stringifies numbers: spawn('echo', [1, 2])
    if _is_number(value):
        return str(int(value)) if isinstance(value, int) else repr(float(value))
    return _path(value, name)


def _argv_list(values: Any, name: str) -> list[str | bytes]:
    return [_argv_item(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _is_arg_sequence(value: Any) -> bool:
    cls = type(value)
    if cls is list or cls is tuple:
        return True
    # Not a set: its order is arbitrary (Node takes a Set in that slot for
    # the options, which would be as surprising).
    return (not isinstance(value, (str, bytes, bytearray, memoryview, Mapping, set, frozenset))
            and not callable(value) and hasattr(value, "__iter__"))


# ------------------------------------------------------------ AbortSignal

def _check_abort_signal(value: Any) -> Any:
    """Accept a :class:`childproc.AbortSignal` (Node's check is the same class test)."""
    if not isinstance(value, AbortSignal):
        raise invalid_arg_type("options.signal", "AbortSignal", value)
    return value


# ------------------------------------------------------------------ build

def _join_command(parts: list[str | bytes]) -> str | bytes:
    if all(isinstance(p, str) for p in parts):
        return " ".join(parts)  # type: ignore[arg-type]
    return b" ".join(fs_bytes(p) for p in parts)


def _shell_rewrite(file: str | bytes, args: list[str | bytes], shell: Any) -> tuple[Any, list[Any], bool]:
    """Node's shell mode: ``/bin/sh -c 'file args...'`` joined by spaces with
    no quoting; on Windows ``cmd.exe /d /s /c "..."`` with verbatim args."""
    command = _join_command([file, *args])
    if _WIN:
        file = shell if isinstance(shell, (str, bytes)) else (os.environ.get("comspec") or "cmd.exe")
        base = fs_text(file).rsplit("\\", 1)[-1].lower()  # /^(?:.*\\)?cmd(?:\.exe)?$/i
        if base in ("cmd", "cmd.exe"):
            quoted = f'"{command}"' if isinstance(command, str) else b'"' + command + b'"'
            return file, ["/d", "/s", "/c", quoted], True
        return file, ["-c", command], False
    if isinstance(shell, (str, bytes)):
        file = shell
    else:
        file = "/system/bin/sh" if _ANDROID else "/bin/sh"
    return file, ["-c", command], False


def _build(fn_name: str, file: str | bytes, args: list[str | bytes], opts: dict[str, Any], *,
           sync: bool, kind: str, stdio_value: Any = None) -> SpawnPlan:
    """The shared tail: options in Node's order, shell, argv, env, stdio."""
    get = opts.get
    if (cwd := get("cwd")) is not None:
        cwd = _path(cwd, "options.cwd", _PATH_TYPES, _PATH_NUL)
        cwd = fs_bytes(cwd) if cwd else None  # '' means "do not chdir", as in Node
    detached = _bool(opts, "detached", "options.detached")
    uid = None if (uid := get("uid")) is None else _int32(uid, "options.uid")
    gid = None if (gid := get("gid")) is None else _int32(gid, "options.gid")
    shell = get("shell", False)
    if type(shell) is not bool:
        if isinstance(shell, os.PathLike):
            shell = os.fspath(shell)
        if not isinstance(shell, (str, bytes)):
            raise invalid_arg_type("options.shell", ["boolean", "string"], shell)
        if shell:
            _path(shell, "options.shell")
    argv0 = None if (argv0 := get("argv0")) is None else _path(argv0, "options.argv0")
    windows_hide = _bool(opts, "windows_hide", "options.windowsHide")
    verbatim = _bool(opts, "windows_verbatim_arguments", "options.windowsVerbatimArguments")

    command, user_args = file, args
    if shell:
        file, args, forced = _shell_rewrite(file, args, shell)
        verbatim = verbatim or forced
    if kind in ("exec", "exec_file") and not sync:
        argv0 = None  # execFile validates argv0 and then does not pass it on (Node)
    spawnargs = [argv0 if argv0 is not None else file, *args]

    timeout = None if (timeout := get("timeout")) is None else _seconds(timeout, "options.timeout", "timeout")
    if (max_buffer := get("max_buffer", MAX_BUFFER)) is not MAX_BUFFER:
        _non_negative(max_buffer, "options.maxBuffer", "options.maxBuffer", "a positive number")
    kill_signal = get("kill_signal")
    kill_signal = SIGTERM if kill_signal is None else signal_number(kill_signal, "options.killSignal")
    signal = None if (signal := get("signal")) is None else _check_abort_signal(signal)

    stdio, ipc_fd = normalize_stdio(get("stdio") if stdio_value is None else stdio_value, sync)
    if (serialization := get("serialization")) is None:
        serialization = "json"
    elif serialization == "advanced" and isinstance(serialization, str):
        raise ArgValueError("The property 'options.serialization' 'advanced' (V8's format) is not "
                            "supported: use 'pickle' for Python-to-Python channels. Received 'advanced'")
    elif not (isinstance(serialization, str) and serialization in ("json", "pickle")):
        raise invalid_arg_value("options.serialization", serialization, "must be one of: None, 'json', 'pickle'")

    if (max_message_size := get("max_message_size")) is not None:
        # Not Node's (it has no bound): bytes of one received IPC message; inf for none.
        name = "options.max_message_size"
        if not _non_negative(max_message_size, name, name, "a positive number") > 0:
            raise out_of_range(name, "a positive number", max_message_size)

    encoding = normalize_encoding(get("encoding", "utf-8" if kind in ("exec", "exec_file") and not sync else None))
    data = None if (data := get("input")) is None else input_bytes(data, encoding)

    kill_tree = _bool(opts, "kill_tree", "options.kill_tree")
    die_with_parent = _bool(opts, "die_with_parent", "options.die_with_parent")
    if (force_kill_after := get("force_kill_after")) is not None:
        name = "options.force_kill_after"
        # 0 is meaningful here (SIGKILL right after kill_signal); inf means never.
        force_kill_after = None if _non_negative(force_kill_after, name, name) == math.inf else float(force_kill_after)

    env_blob, envc, path = env_block(get("env"), ipc_fd, serialization, _WIN)

    encoded = [fs_bytes(a) for a in spawnargs]
    return SpawnPlan(
        fn_name, file, spawnargs, fs_bytes(file), b"\0".join(encoded) + b"\0", len(encoded), stdio,
        path, env_blob, envc, cwd, ipc_fd, "stdio" in opts, detached, uid, gid, timeout,
        kill_signal, max_buffer, encoding, data, shell, windows_hide, verbatim, serialization,
        signal, kill_tree, force_kill_after, die_with_parent,
        command=command, args=user_args, argv0=argv0, max_message_size=max_message_size,
    )


def normalize_spawn(fn_name: str, command: Any, args: Any, options: Any, kwargs: Mapping[str, Any], *,
                    sync: bool) -> SpawnPlan:
    """``spawn``/``spawn_sync(command, args=(), options=None, /, **kwargs)``.

    ``args`` may be a sequence, None, or the options mapping itself (Node's
    shifting); a str/bytes ``args`` is ``ERR_INVALID_ARG_TYPE``."""
    if type(command) is str and options is None and (
            args is None or (type(args) in (tuple, list) and not args)) and command and "\0" not in command:
        # The common call shapes (spawn_sync('/bin/true'), and with only a
        # stdio shortcut such as stdio='inherit'): nothing to merge, no env
        # to build, shared stdio slots.
        slots: tuple[StdioSlot, ...] | None
        if not kwargs:
            slots = _DEFAULT_STDIO
        elif len(kwargs) == 1 and type(shortcut := kwargs.get("stdio")) is str:
            slots = _STDIO_SHORTCUTS.get(shortcut)
        else:
            slots = None
        if slots is not None:
            fb = fs_bytes(command)
            return SpawnPlan(fn_name, command, [command], fb, fb + b"\0", 1, list(slots),
                             environ_path(_WIN), stdio_given=bool(kwargs), command=command, args=[])
    file = _nonempty(_path(command, "file"))
    args, options = _shift(fn_name, args, options, "object")
    opts = _collect(fn_name, _options_arg(options), kwargs)
    return _build(fn_name, file, _argv_list(args, "args"), opts, sync=sync, kind="spawn")


def _nonempty(file: str | bytes, name: str = "file") -> str | bytes:
    if not file:
        raise invalid_arg_value(name, file, "cannot be empty")
    return file


def _shift(fn_name: str, args: Any, options: Any, expected: str) -> tuple[Any, Any]:
    """``args`` may be None, a sequence, or the options mapping itself."""
    if args is None:
        return [], options
    if isinstance(args, Mapping):
        if options is not None:  # Node silently drops the third argument
            raise TypeError(f"{fn_name}() got options twice: as 'args' and as 'options'")
        return [], args
    if not _is_arg_sequence(args):
        raise invalid_arg_type("args", expected, args)
    return args, options


def _pop_callback(fn_name: str, callback: Any, kwargs: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any]]:
    if "callback" in kwargs:
        if callback is not None:
            raise TypeError(f"{fn_name}() got multiple values for argument 'callback'")
        kwargs = dict(kwargs)
        callback = kwargs.pop("callback")
    return callback, kwargs


def _check_callback(callback: Any) -> Any:
    if callback is not None and not callable(callback):
        raise invalid_arg_type("callback", "function", callback)
    return callback


def normalize_exec_file(fn_name: str, file: Any, args: Any, options: Any, callback: Any,
                        kwargs: Mapping[str, Any], *, sync: bool) -> SpawnPlan:
    """``exec_file(file, args=None, options=None, callback=None, /, **kw)``
    and ``exec_file_sync(file, args=None, options=None, /, **kw)``.

    Node's ``normalizeExecFileArgs`` shifting: a mapping in the ``args``
    slot is the options (and the next slot the callback), a callable in the
    ``args`` or ``options`` slot is the callback.  Where Node would silently
    drop an argument because of that shifting, a ``TypeError`` is raised;
    sync calls take no callback at all."""
    if not sync:
        callback, kwargs = _pop_callback(fn_name, callback, kwargs)
    if args is None:
        args = []
    elif isinstance(args, Mapping):
        if callback is not None or (sync and options is not None):
            raise TypeError(f"{fn_name}() got options twice: as 'args' and as 'options'")
        args, options, callback = [], args, options
    elif callable(args) and not sync:
        if options is not None or callback is not None:
            raise TypeError(f"{fn_name}(): the callback must be the last argument")
        args, callback = [], args
    elif not _is_arg_sequence(args):
        raise invalid_arg_type("args", "object", args)
    if callable(options) and not isinstance(options, Mapping) and not sync:
        if callback is not None:
            raise TypeError(f"{fn_name}(): the callback must be the last argument")
        options, callback = None, options
    opts = _collect(fn_name, _options_arg(options), kwargs)
    callback = _check_callback(callback)
    if (argv0 := opts.get("argv0")) is not None:
        _path(argv0, "options.argv0")
    plan = _build(fn_name, _nonempty(_path(file, "file")), _argv_list(args, "args"), opts, sync=sync, kind="exec_file")
    plan.callback = callback
    return plan


def normalize_exec(fn_name: str, command: Any, options: Any, callback: Any, kwargs: Mapping[str, Any], *,
                   sync: bool) -> SpawnPlan:
    """``exec(command, options=None, callback=None, /, **kw)`` and
    ``exec_sync(command, options=None, /, **kw)``: the command runs through
    the shell -- ``shell`` is kept when it is a str (or bytes/path), and is
    ``True`` in every other case, ``shell=False`` included (Node)."""
    cmd = _path(command, "command")
    if not sync:
        callback, kwargs = _pop_callback(fn_name, callback, kwargs)
        if callable(options) and not isinstance(options, Mapping):
            if callback is not None:
                raise TypeError(f"{fn_name}(): the callback must be the last argument")
            options, callback = None, options
    opts = _collect(fn_name, _options_arg(options), kwargs)
    callback = _check_callback(callback)
    shell = opts.get("shell")
    opts["shell"] = shell if isinstance(shell, (str, bytes, os.PathLike)) else True
    plan = _build(fn_name, _nonempty(cmd), [], opts, sync=sync, kind="exec")
    plan.callback = callback
    return plan


def normalize_fork(module_path: Any, args: Any, options: Any, kwargs: Mapping[str, Any]) -> SpawnPlan:
    """``fork(module_path, args=None, options=None, /, **kwargs)``.

    Runs ``exec_path`` (default :data:`sys.executable`) with
    ``[*exec_argv, module_path, *args]``; ``exec_argv`` defaults to the
    parent's interpreter options (``sys.flags``, ``sys.warnoptions``,
    ``sys._xoptions``; Node's ``process.execArgv``) when ``exec_path`` is
    this interpreter, else to ``[]``.
    stdio: a string ``s`` gives ``[s, s, s, 'ipc']`` (``'inherit'`` gives
    ``[0, 1, 2, 'ipc']``), none gives ``silent``'s choice, a list must hold
    ``'ipc'``.  ``NODE_CHANNEL_FD`` and ``NODE_CHANNEL_SERIALIZATION_MODE``
    are appended to the environment (built from :data:`os.environ` when no
    ``env`` is given).  ``shell`` is not an option of fork."""
    module = _path(module_path, "modulePath", _PATH_TYPES, _PATH_NUL)
    args, options = _shift("fork", args, options, "Array")
    opts = _collect("fork", _options_arg(options), kwargs)
    given_path = opts.pop("exec_path", None)
    exec_path = given_path or sys.executable
    if isinstance(exec_path, os.PathLike) or not isinstance(exec_path, (str, bytes)):
        exec_path = _path(exec_path, "options.execPath")
    elif "\0" in exec_path if isinstance(exec_path, str) else b"\0" in exec_path:
        raise invalid_arg_value("options.execPath", exec_path, NUL_MESSAGE)
    if (exec_argv := opts.pop("exec_argv", None)) is not None and not _is_arg_sequence(exec_argv):
        raise invalid_arg_type("options.execArgv", "Array", exec_argv)
    if exec_argv is None and (not given_path or given_path == sys.executable):
        # Node's default is process.execArgv: the parent's own interpreter
        # options (-O, -X dev, -W ..., as multiprocessing passes them on).
        # Only to our own interpreter: a Node child never gets Python flags.
        exec_argv = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    exec_argv = _argv_list(exec_argv or [], "options.execArgv")
    silent = _bool(opts, "silent", "options.silent")
    warm_start = _bool(opts, "warm_start", "options.warm_start")  # not Node's
    stdio = fork_stdio(opts.get("stdio"), silent)
    # Node validates the joined list, so a NUL in args[0] is reported as args[len(execArgv) + 1].
    argv = _argv_list([*exec_argv, module, *args], "args")
    plan = _build("fork", exec_path, argv, opts, sync=False, kind="fork", stdio_value=stdio)
    plan.exec_path = exec_path
    plan.exec_argv = exec_argv
    plan.command = module
    plan.args = argv[len(exec_argv) + 1:]
    plan.warm_start = warm_start
    return plan
