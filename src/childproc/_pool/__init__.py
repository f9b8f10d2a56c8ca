"""The worker pool: ``cp.ProcessPool`` (docs/pool.md).

The names resolve on first use (PEP 562): a worker process imports
``childproc._pool._worker`` through this package, and must not pay for the
parent side's imports (threading, concurrent.futures).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._errors import PoolBrokenError, QueueFullError, RemoteError, TaskTimeoutError, WorkerCrashedError
    from ._executor import PoolOptions, ProcessPool
    from ._future import PoolFuture

_EXPORTS = {
    "ProcessPool": "_executor",
    "PoolOptions": "_executor",
    "PoolFuture": "_future",
    "PoolBrokenError": "_errors",
    "QueueFullError": "_errors",
    "RemoteError": "_errors",
    "TaskTimeoutError": "_errors",
    "WorkerCrashedError": "_errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
