"""The pool's exceptions.

Each says which task it is about and, where a process was involved, which
worker: a crash carries the worker's pid, how it ended and the tail of its
stderr, so the reason is readable from the exception alone.
``WorkerCrashedError`` is a ``BrokenProcessPool`` so that code written for
``ProcessPoolExecutor`` (``except BrokenProcessPool``) keeps matching;
``TaskTimeoutError`` is a builtin ``TimeoutError`` for the same reason.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .._errors import AbortError

__all__ = [
    "AbortError",
    "PoolBrokenError",
    "QueueFullError",
    "RemoteError",
    "RemoteTraceback",
    "TaskTimeoutError",
    "WorkerCrashedError",
]


class WorkerCrashedError(BrokenProcessPool):
    """The worker running the task died (a signal, ``os._exit``, a
    segfault, the OOM killer).  Only that task fails; the pool goes on.

    ``pid``, ``exit_code``, ``signal_code`` (a name such as ``'SIGKILL'``)
    and ``attempts`` (how many times the task was started) describe what
    happened; ``stderr`` is the last few KiB the worker wrote there."""

    def __init__(
        self,
        message: str,
        *,
        pid: int | None = None,
        exit_code: int | None = None,
        signal_code: str | None = None,
        attempts: int = 0,
        stderr: str = "",
    ) -> None:
        super().__init__(message)
        self.pid = pid
        self.exit_code = exit_code
        self.signal_code = signal_code
        self.attempts = attempts
        self.stderr = stderr

    def __str__(self) -> str:
        text = str(self.args[0]) if self.args else "worker crashed"
        if self.stderr:
            text += "\n--- worker stderr (tail) ---\n" + self.stderr.rstrip("\n")
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args[0] if self.args else ""), self.__dict__)


class PoolBrokenError(WorkerCrashedError):
    """The pool cannot run tasks any more: workers failed to start three
    times in a row with no task done in between, or the workers were
    terminated (``terminate_workers``/``kill_workers``).  Every pending
    future gets it, and so does every later ``submit``."""


class TaskTimeoutError(TimeoutError):
    """The task ran longer than its timeout; its worker was killed.
    ``timeout`` is the limit in seconds, ``pid`` the worker."""

    def __init__(self, message: str, *, timeout: float | None = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.pid = pid

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args[0] if self.args else ""), self.__dict__)


class RemoteError(Exception):
    """What crossed back could not be rebuilt here: an exception or a
    result that cannot be pickled (or unpickled), or an error thrown by a
    Node worker.  ``type_name``, ``message`` and ``traceback_text`` are the
    remote side's own words."""

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(type_name, message, traceback_text)
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        text = f"{self.type_name}: {self.message}" if self.message else self.type_name
        if self.traceback_text:
            text += "\n--- remote traceback ---\n" + self.traceback_text.rstrip("\n")
        return text


class RemoteTraceback(Exception):
    """Attached as ``__cause__`` to an exception raised in a worker, so the
    traceback printed here shows where it was raised there."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip("\n")


class QueueFullError(RuntimeError):
    """``submit`` past ``max_queue``: the pool never blocks the caller,
    it refuses instead (Piscina's "Task queue is at limit")."""


def _rebuild(cls: type[BaseException], message: str) -> BaseException:
    return cls.__new__(cls, message)
