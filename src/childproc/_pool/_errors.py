"""The pool's exceptions, as the pool's modules use them.

The classes live in ``childproc._errors`` with every other exception
(``WorkerCrashedError`` and ``PoolBrokenError`` are made there on first
use: their base, ``BrokenProcessPool``, costs an import of multiprocessing
that a forked child must not pay).  Only the pool's parent side imports
this module.
"""

from __future__ import annotations

# (WorkerCrashedError and PoolBrokenError come through _errors' PEP 562 __getattr__.)
from .._errors import AbortError, PoolBrokenError, QueueFullError, RemoteError, TaskTimeoutError, WorkerCrashedError

__all__ = [
    "AbortError",
    "PoolBrokenError",
    "QueueFullError",
    "RemoteError",
    "TaskTimeoutError",
    "WorkerCrashedError",
]


class _RemoteTraceback(Exception):
    """Attached as ``__cause__`` to an exception raised in a worker, so the
    traceback printed here shows where it was raised there."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip("\n")
