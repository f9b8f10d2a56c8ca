"""A failed spawn turned into its error: one place for the async and the sync
forms (docs/architecture.md, "Spawn failures").

The C core reports a failure as ``(errno, stage)``: where the child (or the
parent, preparing it) stopped -- making pipes, forking, setting up stdio, the
session, ``chdir``, the ids, or ``exec`` itself.  The message and ``.path``
are always Node's (``spawn ls ENOENT``, the program); ``.filename`` -- the
attribute :mod:`subprocess` users read -- names what was not found: the
program, or the ``cwd`` when changing into it failed.
"""

from __future__ import annotations

import errno as _errno
import os

from .._errors import SpawnError, spawn_error
from .native import STAGE_NAMES
from .options import SpawnPlan

__all__ = ["RUNTIME_SPAWN_ERRORS", "display", "spawn_failure"]

#: Errors that Node reports at run time -- an ``'error'`` event, or a sync
#: result's ``.error`` -- rather than throwing from ``spawn()``.
RUNTIME_SPAWN_ERRORS = frozenset({_errno.EACCES, _errno.EAGAIN, _errno.EMFILE, _errno.ENFILE, _errno.ENOENT})


def display(value: str | bytes) -> str:
    """A path or argument as text for a message (undecodable bytes escaped)."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def spawn_failure(plan: SpawnPlan, errno: int, stage: int, sync: bool) -> SpawnError:
    """The error for a spawn of ``plan`` that failed with ``errno`` at ``stage``.

    A failure Node throws from ``spawn()`` (not in
    :data:`RUNTIME_SPAWN_ERRORS`, async form) carries only the syscall, as
    Node's ``ErrnoException(err, 'spawn')``.
    """
    if not sync and errno not in RUNTIME_SPAWN_ERRORS:
        return spawn_error(errno, "spawn")
    syscall = f"{'spawnSync' if sync else 'spawn'} {display(plan.file)}"
    filename: str | bytes = plan.file
    if STAGE_NAMES.get(stage) == "chdir" and plan.cwd is not None:
        filename = os.fsdecode(plan.cwd)
    return spawn_error(errno, syscall, path=plan.file, spawnargs=list(plan.spawnargs[1:]), filename=filename)
