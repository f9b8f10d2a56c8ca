"""``spawn_sync``, ``exec_sync`` and ``exec_file_sync``: Node's synchronous
forms.

The whole run (spawn, feeding ``input``, collecting every output pipe, the
timeout and the combined ``max_buffer``, reaping) happens in one C call with
the GIL released (``csrc/run_sync.c``), so other Python threads keep running
and no Python code sits between the child's bytes and the result.

The result shapes are Node's spawnSync/execSync ones:

* ``spawn_sync`` never raises for what happens at run time: a missing
  executable, a timeout (ETIMEDOUT) or too much output (ENOBUFS) come back as
  ``result.error``.  Only invalid arguments raise, before anything is spawned.
* ``exec_sync`` and ``exec_file_sync`` return the child's stdout and raise:
  the ``SpawnError`` with every result field attached on a spawn-level
  failure, or an ``ExecError`` ('Command failed: ...') on a non-zero exit or
  a signal.  When ``stdio`` was not given they copy the captured stderr to the
  parent's ``sys.stderr`` once the child has finished, as Node does.
"""

from __future__ import annotations

import os
from errno import ENOBUFS as _ENOBUFS
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from . import native as _native

from . import options as _options
from .env import environ_path
from .failure import display, spawn_failure
from .._errors import ExecError, SpawnError, spawn_error
from .._messages import add_max_buffer_hint
from .options import SpawnPlan, decode_output, normalize_exec, normalize_exec_file, normalize_spawn
from .optiontypes import Args, PathArg, options_doc
from .signals import signal_name

if TYPE_CHECKING:
    from typing import Literal

    from typing_extensions import Unpack  # typing's own from 3.11; only the checker needs it

    from .optiontypes import ExecSyncCore, ExecSyncOptions, StdioArg, SpawnSyncOptions, SyncCore

__all__ = ["SpawnSyncResult", "spawn_sync", "exec_sync", "exec_file_sync"]

Output = bytes | str
#: ``bytes`` by default, ``str`` with an ``encoding``.
_T = TypeVar("_T", bytes, str)


@dataclass(slots=True)
class SpawnSyncResult(Generic[_T]):
    """What ``spawn_sync`` returns: Node's ``spawnSync`` object.

    ``pid`` is 0 and ``output``/``stdout``/``stderr`` are None when the child
    could not be started.  ``output[i]`` holds what the child wrote to stdio
    slot *i* when that slot was a pipe it writes (None for stdin and for
    non-pipe slots).  ``status`` is the exit code, None when a signal ended
    the child; ``signal`` is then its name ('SIGTERM').  ``error`` is a
    ``SpawnError`` (ENOENT, EACCES, ETIMEDOUT, ENOBUFS, ...) or None.
    """

    pid: int
    output: list[_T | None] | None
    stdout: _T | None
    stderr: _T | None
    status: int | None
    signal: str | None
    error: SpawnError | None = field(default=None)

    @property
    def returncode(self) -> int | None:
        """``subprocess``'s view of the outcome: the exit code, or minus the
        signal number that ended the child."""
        if self.status is not None:
            return self.status
        if self.signal is not None:
            from .signals import signal_number

            return -signal_number(self.signal)
        return None


def _result(request: _native.SyncRequest) -> SpawnSyncResult[Any]:
    pid, raw_output, exit_code, term_signal, errno, stage = request.run()
    plan = request.plan
    error: SpawnError | None = None
    if errno:
        error = spawn_failure(plan, errno, stage, sync=True)
        if errno == _ENOBUFS:
            add_max_buffer_hint(error, plan.max_buffer)
    if raw_output is None:
        return SpawnSyncResult(0, None, None, None, None, None, error)
    enc = plan.encoding
    output: list[Output | None]
    if enc is None:
        output = cast("list[Output | None]", raw_output)  # a new list every run: ours to hand out
    else:
        output = [None if data is None else decode_output(data, enc) for data in raw_output]
    n = len(output)
    return SpawnSyncResult(pid, output, output[1] if n > 1 else None, output[2] if n > 2 else None,
                           exit_code, signal_name(term_signal) if term_signal else None, error)


# -- prepared calls ------------------------------------------------------------
#
# A program that runs the same command over and over (a build step, a probe,
# a benchmark) makes the same call many times.  Validating the arguments and
# packing them for C is most of the Python a call pays before the child
# starts (spawn_sync('/bin/true'): about 16 us, against 6 us with a kept
# request, out of ~0.7 ms), and it gives the same answer every time when the
# answer depends only on the arguments.  So the plain call shapes keep their
# built request, by a key that holds everything their plan depends on:
#
# * ``command``/``file`` and ``args`` whose items are all exactly ``str``
#   (a subclass could compare equal and still encode differently),
# * keyword options from _KEYED_OPTIONS with ``str`` values, no options
#   mapping (a mapping could change under us after the call),
# * and the parent's PATH (plus, on Windows, ComSpec, which exec's shell
#   reads), the only state outside the call the plan reads.
#
# Everything else (env, input, timeouts, non-str values) is built afresh each
# time.  A key is stored only after its plan was built without error, so a
# call that should raise always goes through validation.  A request is taken
# out of the pool while it runs (dict.pop and item assignment are atomic), so
# two threads never share one.
_KEYED_OPTIONS = frozenset({"stdio", "encoding", "cwd", "argv0"})
_PREPARED_MAX = 64
_prepared: dict[tuple[Any, ...], _native.SyncRequest] = {}


def _outside_state() -> object:
    if _options._WIN:
        return environ_path(True), os.environ.get("comspec")
    return environ_path(False)


def _shape_key(fn_name: str, command: Any, args: Any, options: Any,
               kwargs: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The prepared-call key of this call, or None when it has none."""
    if type(command) is not str or options is not None:
        return None
    if args is None:
        argv: tuple[str, ...] = ()
    elif type(args) is list or type(args) is tuple:
        for arg in args:
            if type(arg) is not str:
                return None
        argv = tuple(args)
    else:
        return None
    if kwargs:
        for name, value in kwargs.items():
            if type(value) is not str or name not in _KEYED_OPTIONS:
                return None
        return fn_name, command, argv, tuple(kwargs.items()), _outside_state()
    return fn_name, command, argv, (), _outside_state()


def _run_call(fn_name: str, command: Any, args: Any, options: Any, kwargs: Mapping[str, Any],
              build: Callable[[], SpawnPlan]) -> tuple[SpawnPlan, SpawnSyncResult[Any]]:
    """Run a call: with its kept request when its shape has one, else (and
    the first time) with the plan that ``build`` validates and makes."""
    key = _shape_key(fn_name, command, args, options, kwargs)
    if key is None:
        plan = build()
        return plan, _result(_native.SyncRequest(plan))
    request = _prepared.pop(key, None)
    if request is None:
        request = _native.SyncRequest(build())
    try:
        return request.plan, _result(request)
    finally:
        if len(_prepared) >= _PREPARED_MAX:
            _prepared.clear()  # atomic; the shapes in use come back at once
        _prepared[key] = request


@overload
def spawn_sync(  # type: ignore[overload-overlap]  # 'buffer' is a str too: this one is tried first
    command: PathArg,
    args: Args | None = None,
    options: None = None,
    /,
    *,
    encoding: Literal["buffer"] | None = None,
    stdio: StdioArg | None = None,
    **kwargs: Unpack[SyncCore],
) -> SpawnSyncResult[bytes]: ...
@overload
def spawn_sync(
    command: PathArg,
    args: Args | None = None,
    options: None = None,
    /,
    *,
    encoding: str,
    stdio: StdioArg | None = None,
    **kwargs: Unpack[SyncCore],
) -> SpawnSyncResult[str]: ...
@overload
def spawn_sync(  # Node's shape: the encoding is inside the mapping, out of the checker's sight
    command: PathArg,
    args: Args | Mapping[str, Any] | None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Unpack[SpawnSyncOptions],
) -> SpawnSyncResult[Any]: ...
def spawn_sync(
    command: PathArg,
    args: Args | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> SpawnSyncResult[Any]:
    """Run ``command`` with ``args`` and wait for it: Node's ``spawnSync``.

    ``spawn_sync('ls', ['-l'], cwd='/tmp')``; a Node-style options mapping as
    the third argument works too.  Outputs are ``bytes``, or ``str`` with an
    ``encoding``.  Only invalid arguments raise; what happens at run time (a
    missing program, ETIMEDOUT, ENOBUFS) is ``result.error``.
    """
    return _run_call("spawn_sync", command, args, options, kwargs,
                     lambda: normalize_spawn("spawn_sync", command, args, options, kwargs, sync=True))[1]


def _copy_stderr(stderr: Output | None) -> None:
    if not stderr:
        return
    stream = sys.stderr
    if stream is None:
        return
    if isinstance(stderr, bytes):
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()
            buffer.write(stderr)
            buffer.flush()
            return
        stderr = stderr.decode("utf-8", "replace")
    stream.write(stderr)
    stream.flush()


def _check(result: SpawnSyncResult[Any], cmd: str) -> None:
    """Node's checkExecSyncError: raise what exec_sync/exec_file_sync throw."""
    err: BaseException
    if result.error is not None:
        err = result.error
        for name in ("status", "signal", "output", "pid", "stdout", "stderr"):
            setattr(err, name, getattr(result, name))
        raise err
    if result.status != 0:
        message = f"Command failed: {cmd}"
        stderr = result.stderr
        if stderr:
            text = stderr if isinstance(stderr, str) else stderr.decode("utf-8", "replace")
            message += "\n" + text
        raise ExecError(
            message,
            code=result.status,
            killed=False,
            signal=result.signal,
            cmd=cmd,
            stdout=result.stdout,
            stderr=result.stderr,
            status=result.status,
            output=result.output,
            pid=result.pid,
        )


# exec_sync and exec_file_sync return the child's stdout: bytes, or str with
# an encoding; None only when ``stdio`` made stdout something other than a
# pipe, so the overloads that take ``stdio`` say ``| None``.
@overload
def exec_sync(  # type: ignore[overload-overlap]  # 'buffer' is a str too: this one is tried first
    command: PathArg, options: None = None, /, *, encoding: Literal["buffer"] | None = None,
    **kwargs: Unpack[ExecSyncCore],
) -> bytes: ...
@overload
def exec_sync(
    command: PathArg, options: None = None, /, *, encoding: str, **kwargs: Unpack[ExecSyncCore],
) -> str: ...
@overload
def exec_sync(  # type: ignore[overload-overlap]
    command: PathArg, options: None = None, /, *, encoding: Literal["buffer"] | None = None,
    stdio: StdioArg | None, **kwargs: Unpack[ExecSyncCore],
) -> bytes | None: ...
@overload
def exec_sync(
    command: PathArg, options: None = None, /, *, encoding: str, stdio: StdioArg | None,
    **kwargs: Unpack[ExecSyncCore],
) -> str | None: ...
@overload
def exec_sync(  # Node's shape: the encoding is inside the mapping, out of the checker's sight
    command: PathArg, options: Mapping[str, Any], /, **kwargs: Unpack[ExecSyncOptions],
) -> Any: ...
def exec_sync(
    command: PathArg,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> Any:
    """Run ``command`` through the shell and return its stdout: Node's
    ``execSync``.  ``bytes``, or ``str`` with an ``encoding``.  Raises
    ``ExecError`` (a ``subprocess.CalledProcessError``) on a non-zero exit or
    a signal, the ``SpawnError`` when it could not run or timed out
    (``ETIMEDOUT``: a ``TimeoutError``).  Unless ``stdio`` is given, the
    child's stderr is also copied to ``sys.stderr`` once it has finished
    (Node's behaviour); ``stdio='pipe'`` keeps it only in the error."""
    plan, result = _run_call("exec_sync", command, None, options, kwargs,
                             lambda: normalize_exec("exec_sync", command, options, None, kwargs, sync=True))
    if not plan.stdio_given:
        _copy_stderr(result.stderr)
    _check(result, plan.command_line())
    return result.stdout


@overload
def exec_file_sync(  # type: ignore[overload-overlap]  # 'buffer' is a str too: this one is tried first
    file: PathArg, args: Args | None = None, options: None = None, /, *,
    encoding: Literal["buffer"] | None = None, **kwargs: Unpack[ExecSyncCore],
) -> bytes: ...
@overload
def exec_file_sync(
    file: PathArg, args: Args | None = None, options: None = None, /, *, encoding: str,
    **kwargs: Unpack[ExecSyncCore],
) -> str: ...
@overload
def exec_file_sync(  # type: ignore[overload-overlap]
    file: PathArg, args: Args | None = None, options: None = None, /, *,
    encoding: Literal["buffer"] | None = None, stdio: StdioArg | None, **kwargs: Unpack[ExecSyncCore],
) -> bytes | None: ...
@overload
def exec_file_sync(
    file: PathArg, args: Args | None = None, options: None = None, /, *, encoding: str,
    stdio: StdioArg | None, **kwargs: Unpack[ExecSyncCore],
) -> str | None: ...
@overload
def exec_file_sync(  # Node's shape: the encoding is inside the mapping, out of the checker's sight
    file: PathArg, args: Args | Mapping[str, Any] | None, options: Mapping[str, Any] | None = None, /,
    **kwargs: Unpack[ExecSyncOptions],
) -> Any: ...
def exec_file_sync(
    file: PathArg,
    args: Args | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> Any:
    """Run ``file`` with ``args`` (no shell unless ``shell=``) and return its
    stdout: Node's ``execFileSync``.  Returns and raises like
    :func:`exec_sync`."""
    plan, result = _run_call(
        "exec_file_sync", file, args, options, kwargs,
        lambda: normalize_exec_file("exec_file_sync", file, args, options, None, kwargs, sync=True))
    if not plan.stdio_given:
        _copy_stderr(result.stderr)
    # Node: the message names [argv0 || file, ...args] joined by spaces.
    _check(result, plan.command_line())
    return result.stdout


# help(cp.spawn_sync) lists the options, from the TypedDicts the checker reads.
spawn_sync.__doc__ = (spawn_sync.__doc__ or "") + options_doc("spawn_sync")
exec_sync.__doc__ = (exec_sync.__doc__ or "") + options_doc("exec_sync")
exec_file_sync.__doc__ = (exec_file_sync.__doc__ or "") + options_doc("exec_file_sync")
