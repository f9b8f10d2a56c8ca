"""childproc: Node.js's ``child_process`` for Python, on a small C core.

The public names are re-exported here; everything else lives in private
modules, one concern each (see DESIGN.md §1).  The re-exports resolve on
first use (PEP 562), so ``from childproc import process`` in a forked child
loads only the channel's modules and the child starts about as fast as a
bare interpreter.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # the eager view, for type checkers and IDEs
    from ._abort import AbortController, AbortSignal
    from ._child import ChildProcess
    from ._emitter import EventEmitter
    from ._errors import AbortError, ExecError, IPCError, MaxBufferError, SpawnError
    from ._exec import ExecChildProcess, ExecResult, exec, exec_file
    from ._ipc import IPCWarning
    from ._loop import run
    from ._process import process
    from ._readable import Readable
    from ._spawn import fork, spawn
    from ._sync import SpawnSyncResult, exec_file_sync, exec_sync, spawn_sync
    from ._writable import LineTooLongError, StreamError, StreamSystemError, Writable

_EXPORTS = {
    "AbortController": "_abort",
    "AbortSignal": "_abort",
    "ChildProcess": "_child",
    "EventEmitter": "_emitter",
    "AbortError": "_errors",
    "ExecError": "_errors",
    "IPCError": "_errors",
    "MaxBufferError": "_errors",
    "SpawnError": "_errors",
    "ExecChildProcess": "_exec",
    "ExecResult": "_exec",
    "exec": "_exec",
    "exec_file": "_exec",
    "IPCWarning": "_ipc",
    "run": "_loop",
    "process": "_process",
    "Readable": "_readable",
    "fork": "_spawn",
    "spawn": "_spawn",
    "LineTooLongError": "_writable",
    "SpawnSyncResult": "_sync",
    "exec_file_sync": "_sync",
    "exec_sync": "_sync",
    "spawn_sync": "_sync",
    "StreamError": "_writable",
    "StreamSystemError": "_writable",
    "Writable": "_writable",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'childproc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
