"""``spawn_sync``, ``exec_sync`` and ``exec_file_sync``: Node's synchronous
forms.

The whole run (spawn, feeding ``input``, collecting every output pipe, the
timeout and the combined ``max_buffer``, reaping) happens in one C call with
the GIL released (``csrc/run_sync.c``), so other Python threads keep running
and no Python code sits between the child's bytes and the result.

The result shapes are Node's (reference §1.7):

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

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _native
from ._errors import ExecError, SpawnError, spawn_error
from ._options import SpawnPlan, decode_output, normalize_exec, normalize_exec_file, normalize_spawn
from ._signals import signal_name

__all__ = ["SpawnSyncResult", "spawn_sync", "exec_sync", "exec_file_sync"]

Output = bytes | str


@dataclass(slots=True)
class SpawnSyncResult:
    """What ``spawn_sync`` returns: Node's ``spawnSync`` object.

    ``pid`` is 0 and ``output``/``stdout``/``stderr`` are None when the child
    could not be started.  ``output[i]`` holds what the child wrote to stdio
    slot *i* when that slot was a pipe it writes (None for stdin and for
    non-pipe slots).  ``status`` is the exit code, None when a signal ended
    the child; ``signal`` is then its name ('SIGTERM').  ``error`` is a
    ``SpawnError`` (ENOENT, EACCES, ETIMEDOUT, ENOBUFS, ...) or None.
    """

    pid: int
    output: list[Output | None] | None
    stdout: Output | None
    stderr: Output | None
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
            from ._signals import signal_number

            return -signal_number(self.signal)
        return None


def _run(plan: SpawnPlan) -> SpawnSyncResult:
    raw = _native.run_sync(plan)
    error: SpawnError | None = None
    if raw.error:
        error = spawn_error(
            raw.error,
            f"spawnSync {_display(plan.file)}",
            path=plan.file,
            spawnargs=list(plan.spawnargs[1:]),
        )
    if not raw.spawned:
        return SpawnSyncResult(0, None, None, None, None, None, error)

    enc = plan.encoding
    output: list[Output | None] = list(raw.outputs) if enc is None else [
        None if data is None else decode_output(data, enc) for data in raw.outputs
    ]
    return SpawnSyncResult(
        pid=raw.pid,
        output=output,
        stdout=output[1] if len(output) > 1 else None,
        stderr=output[2] if len(output) > 2 else None,
        status=raw.exit_code,
        signal=signal_name(raw.term_signal) if raw.term_signal else None,
        error=error,
    )


def _display(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def spawn_sync(
    command: Any,
    args: Any = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> SpawnSyncResult:
    """Run ``command`` with ``args`` and wait for it: Node's ``spawnSync``.

    ``spawn_sync('ls', ['-l'], cwd='/tmp')``; a Node-style options mapping as
    the third argument works too.  See the module docstring for what raises
    and what is reported in the result.
    """
    plan = normalize_spawn("spawn_sync", command, args, options, kwargs, sync=True)
    return _run(plan)


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


def _check(result: SpawnSyncResult, cmd: str) -> None:
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


def exec_sync(
    command: Any,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> Output | None:
    """Run ``command`` through the shell and return its stdout: Node's
    ``execSync``.  Raises ``ExecError`` on a non-zero exit or a signal."""
    plan = normalize_exec("exec_sync", command, options, None, kwargs, sync=True)
    result = _run(plan)
    if not plan.stdio_given:
        _copy_stderr(result.stderr)
    _check(result, plan.command_line())
    return result.stdout


def exec_file_sync(
    file: Any,
    args: Any = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Any,
) -> Output | None:
    """Run ``file`` with ``args`` (no shell unless ``shell=``) and return its
    stdout: Node's ``execFileSync``.  Raises like ``exec_sync``."""
    plan = normalize_exec_file("exec_file_sync", file, args, options, None, kwargs, sync=True)
    result = _run(plan)
    if not plan.stdio_given:
        _copy_stderr(result.stderr)
    # Node: the message names [argv0 || file, ...args] joined by spaces.
    _check(result, plan.command_line())
    return result.stdout
