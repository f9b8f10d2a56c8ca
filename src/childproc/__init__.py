"""childproc: Node.js's ``child_process`` for Python, on a small C core.

This module only re-exports; each name lives in the subpackage that owns its
concern (docs/architecture.md maps them).  The re-exports resolve on first use
(PEP 562), so ``from childproc import process`` in a forked child loads only
the channel's modules and the child starts about as fast as a bare
interpreter.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:  # the eager view, for type checkers and IDEs
    from ._abort import AbortController, AbortSignal
    from ._child import ChildProcess
    from ._errors import (
        AbortError,
        ArgRangeTypeError,
        ArgTypeError,
        ArgValueError,
        ExecError,
        ExecTimeoutError,
        IPCError,
        IPCWarning,
        LineTooLongError,
        MaxBufferError,
        MaxListenersExceededWarning,
        SpawnError,
        StreamError,
        StreamSystemError,
        UnhandledErrorEvent,
    )
    from ._errors import PoolBrokenError, QueueFullError, RemoteError, TaskTimeoutError, WorkerCrashedError
    from ._exec import ExecChildProcess, ExecResult, exec, exec_file
    from ._ipc.process import process
    from ._launch import fork, spawn
    from ._pool._executor import PoolOptions, ProcessPool
    from ._pool._future import PoolFuture
    from ._runtime.emitter import EventEmitter
    from ._runtime.loop import run
    from ._spawn.sync import SpawnSyncResult, exec_file_sync, exec_sync, spawn_sync
    from ._streams.readable import Readable
    from ._streams.writable import Writable

__all__ = [
    "AbortController",
    "AbortError",
    "AbortSignal",
    "ArgRangeTypeError",
    "ArgTypeError",
    "ArgValueError",
    "ChildProcess",
    "EventEmitter",
    "ExecChildProcess",
    "ExecError",
    "ExecResult",
    "ExecTimeoutError",
    "IPCError",
    "IPCWarning",
    "LineTooLongError",
    "MaxBufferError",
    "MaxListenersExceededWarning",
    "PoolBrokenError",
    "PoolFuture",
    "PoolOptions",
    "ProcessPool",
    "QueueFullError",
    "Readable",
    "RemoteError",
    "SpawnError",
    "SpawnSyncResult",
    "StreamError",
    "StreamSystemError",
    "TaskTimeoutError",
    "UnhandledErrorEvent",
    "WorkerCrashedError",
    "Writable",
    "exec",
    "exec_file",
    "exec_file_sync",
    "exec_sync",
    "fork",
    "process",
    "run",
    "spawn",
    "spawn_sync",
]

# Where each public name lives (the lazy half of the re-export).
_HOMES = {
    "AbortController": "_abort",
    "AbortSignal": "_abort",
    "ChildProcess": "_child",
    "AbortError": "_errors",
    "ArgRangeTypeError": "_errors",
    "ArgTypeError": "_errors",
    "ArgValueError": "_errors",
    "ExecTimeoutError": "_errors",
    "IPCWarning": "_errors",
    "MaxListenersExceededWarning": "_errors",
    "UnhandledErrorEvent": "_errors",
    "ExecError": "_errors",
    "IPCError": "_errors",
    "LineTooLongError": "_errors",
    "MaxBufferError": "_errors",
    "SpawnError": "_errors",
    "StreamError": "_errors",
    "StreamSystemError": "_errors",
    "ExecChildProcess": "_exec",
    "ExecResult": "_exec",
    "exec": "_exec",
    "exec_file": "_exec",
    "process": "_ipc.process",
    "fork": "_launch",
    "spawn": "_launch",
    "PoolBrokenError": "_errors",
    "QueueFullError": "_errors",
    "RemoteError": "_errors",
    "TaskTimeoutError": "_errors",
    "WorkerCrashedError": "_errors",
    "PoolOptions": "_pool._executor",
    "ProcessPool": "_pool._executor",
    "PoolFuture": "_pool._future",
    "EventEmitter": "_runtime.emitter",
    "run": "_runtime.loop",
    "SpawnSyncResult": "_spawn.sync",
    "exec_file_sync": "_spawn.sync",
    "exec_sync": "_spawn.sync",
    "spawn_sync": "_spawn.sync",
    "Readable": "_streams.readable",
    "Writable": "_streams.writable",
}


def __getattr__(name: str) -> object:
    module = _HOMES.get(name)
    if module is None:
        raise AttributeError(f"module 'childproc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
