"""childproc: Node.js's ``child_process`` for Python, on a small C core.

The public names are re-exported here; everything else lives in private
modules, one concern each (see DESIGN.md §1).
"""

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
from ._writable import Writable

__all__ = [
    "AbortController",
    "AbortError",
    "AbortSignal",
    "ChildProcess",
    "EventEmitter",
    "ExecChildProcess",
    "ExecError",
    "ExecResult",
    "IPCWarning",
    "IPCError",
    "MaxBufferError",
    "Readable",
    "SpawnError",
    "SpawnSyncResult",
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
