"""childproc: Node.js's ``child_process`` for Python, on a small C core.

The public names are re-exported here; everything else lives in private
modules, one concern each (see DESIGN.md §1).
"""

from ._errors import AbortError, ExecError, IPCError, MaxBufferError, SpawnError
from ._sync import SpawnSyncResult, exec_file_sync, exec_sync, spawn_sync

__all__ = [
    "AbortError",
    "ExecError",
    "IPCError",
    "MaxBufferError",
    "SpawnError",
    "SpawnSyncResult",
    "exec_file_sync",
    "exec_sync",
    "spawn_sync",
]
