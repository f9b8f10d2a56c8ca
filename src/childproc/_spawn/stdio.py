"""The ``stdio`` option: what the child gets at each descriptor index.

Node's ``getValidStdio`` (and ``stdioStringToArray`` for ``fork``), v20.
The option is a string shortcut or a list with one item per descriptor of
the child, index 0 being its stdin; each item becomes a :class:`StdioSlot`:

* ``'pipe'``, ``None`` (below index 3) or a negative number: a pipe, the
  child's input at index 0 and an output everywhere else (Node's rule);
* ``subprocess.DEVNULL`` (-3): ``'ignore'``; ``subprocess.STDOUT`` (-2)
  from index 2 on: whatever the child gets at index 1 (``2>&1``: into the
  stdout pipe when that is one).  Python additions: Node reads both as
  "a negative number", a pipe, which no ``subprocess`` user means;
* ``'ignore'``, ``None`` from index 3 on: ``/dev/null`` for 0-2, closed
  above;
* ``'inherit'``: the parent's descriptor of the same index;
* a non-negative int, or an object whose ``fileno()`` gives one: that
  descriptor of the parent, dup'd into place;
* a childproc stream (anything with ``_childproc_fd``): its descriptor,
  handed over at spawn time -- async calls only;
* ``'ipc'``: the message channel, at most once and async calls only;
* ``'overlapped'``: Windows overlapped I/O, a plain pipe elsewhere.

A string shortcut ``s`` means ``[s, s, s]``; ``fork`` appends ``'ipc'``
(and ``'inherit'`` becomes ``[0, 1, 2, 'ipc']``).  A list shorter than
three is padded with pipes.

Deliberate differences from Node: an unknown string item is
``ERR_INVALID_ARG_VALUE`` in sync calls (sync Node drops it silently,
shifting the later indexes; in async calls it is Node's
``ERR_INVALID_SYNC_FORK_INPUT``, as bytes are);
``'overlapped'`` is accepted in sync calls;
a stream in a sync call is an error (Node aborts the process); ``fork`` with
a ``stdio`` that is neither a string nor a list is refused instead of
falling back to ``silent``'s choice.

Speed: the slots are frozen, and the slots of the shortcuts -- the default
``'pipe'`` above all -- are built once at import and shared between plans,
so the common call shapes allocate nothing here but the list.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from .._messages import (
    child_process_ipc_required, invalid_arg_value, invalid_sync_fork_input, ipc_one_pipe, ipc_sync_fork,
)

__all__ = ["StdioSlot", "DEFAULT_STDIO", "SHORTCUTS", "normalize_stdio", "fork_stdio"]


@dataclass(slots=True, frozen=True)
class StdioSlot:
    """What goes at one stdio index of the child.

    ``kind`` is ``'pipe'`` (index 0 is the child's input, every other pipe
    an output, as in Node), ``'ignore'`` (``/dev/null`` for 0-2, closed
    above), ``'dup'`` (what the child gets at the lower index ``fd``:
    ``subprocess.STDOUT``), ``'fd'`` (the parent's descriptor ``fd``, dup'd into place;
    ``'inherit'`` is ``'fd'`` with ``fd == index``), ``'ipc'`` (the message
    channel) or ``'stream'`` (a childproc stream object, ``source``, whose
    ``_childproc_fd()`` hands over its descriptor at spawn time).  ``source``
    is what the user gave, for messages.  Frozen because the default slots
    are shared between plans.
    """

    kind: str
    fd: int = -1
    source: object = None


_FD_MAX = 2**31 - 1
_PIPE = StdioSlot("pipe", -1, "pipe")
_OVERLAPPED = StdioSlot("pipe", -1, "overlapped")
_IGNORE = StdioSlot("ignore", -1, "ignore")
_IPC = StdioSlot("ipc", -1, "ipc")
_STDOUT = StdioSlot("dup", 1, subprocess.STDOUT)
_INHERIT = (StdioSlot("fd", 0, "inherit"), StdioSlot("fd", 1, "inherit"), StdioSlot("fd", 2, "inherit"))
SHORTCUTS: dict[str, tuple[StdioSlot, ...]] = {
    "pipe": (_PIPE,) * 3, "overlapped": (_OVERLAPPED,) * 3, "ignore": (_IGNORE,) * 3, "inherit": _INHERIT,
}
DEFAULT_STDIO = SHORTCUTS["pipe"]


def _stdio_item(item: Any, index: int, sync: bool) -> StdioSlot:
    if item is None:
        return _PIPE if index < 3 else _IGNORE
    if isinstance(item, str):
        if item == "pipe":
            return _PIPE
        if item == "ignore":
            return _IGNORE
        if item == "inherit":
            return _INHERIT[index] if index < 3 else StdioSlot("fd", index, "inherit")
        if item == "overlapped":  # Windows overlapped I/O; a plain pipe elsewhere
            return _OVERLAPPED
        if not sync:
            raise invalid_sync_fork_input(item)  # Node: a string is input, for sync calls only
        # Deliberate: sync Node silently drops unknown strings (shifting later indexes).
        raise invalid_arg_value("stdio", item)
    if isinstance(item, (bytes, bytearray, memoryview)) and not sync:
        raise invalid_sync_fork_input(item)
    if isinstance(item, int) and not isinstance(item, bool):
        if item == subprocess.DEVNULL:
            return _IGNORE
        if item == subprocess.STDOUT:
            if index < 2:
                raise invalid_arg_value(f"stdio[{index}]", item, "is subprocess.STDOUT, which only "
                                        "index 2 and above take (2>&1)")
            return _STDOUT
        if item > _FD_MAX:  # an fd is a C int (Node wraps it to 32 bits)
            raise invalid_arg_value("stdio", item)
        return _PIPE if item < 0 else StdioSlot("fd", int(item), item)
    if hasattr(item, "_childproc_fd"):
        if sync:  # Node aborts the whole process on a stream in spawnSync
            raise invalid_arg_value("stdio", item, "cannot use a stream in a synchronous call")
        return StdioSlot("stream", -1, item)
    fileno = getattr(item, "fileno", None)
    if callable(fileno):
        try:
            fd = fileno()
        except (OSError, ValueError):  # io.UnsupportedOperation is both; closed files raise ValueError
            raise invalid_arg_value("stdio", item) from None
        if isinstance(fd, int) and 0 <= fd <= _FD_MAX:
            return StdioSlot("fd", fd, item)
    raise invalid_arg_value("stdio", item)


def normalize_stdio(value: Any, sync: bool) -> tuple[list[StdioSlot], int]:
    """Node's ``getValidStdio``: the slots and the IPC index (or -1).
    ``None`` (not given) is the default, three pipes."""
    if value is None:
        return list(DEFAULT_STDIO), -1
    if isinstance(value, str):
        shortcut = SHORTCUTS.get(value)
        if shortcut is None:
            raise invalid_arg_value("stdio", value)
        return list(shortcut), -1
    if not isinstance(value, (list, tuple)):
        raise invalid_arg_value("stdio", value)
    slots: list[StdioSlot] = []
    ipc_fd = -1
    for index, item in enumerate(value):
        if isinstance(item, str) and item == "ipc":
            if sync:
                raise ipc_sync_fork()
            if ipc_fd >= 0:
                raise ipc_one_pipe()
            ipc_fd = index
            slots.append(_IPC)
        else:
            slots.append(_stdio_item(item, index, sync))
    while len(slots) < 3:
        slots.append(_PIPE)
    return slots, ipc_fd


def fork_stdio(value: Any, silent: bool) -> Any:
    """``fork``'s stdio before :func:`normalize_stdio`: none gives
    ``silent``'s choice, a string ``s`` gives ``[s, s, s, 'ipc']``
    (``'inherit'``: ``[0, 1, 2, 'ipc']``), a list must hold ``'ipc'``."""
    if value is None:
        return ["pipe", "pipe", "pipe", "ipc"] if silent else [0, 1, 2, "ipc"]
    if isinstance(value, str):
        if value not in SHORTCUTS:
            raise invalid_arg_value("stdio", value)
        return [0, 1, 2, "ipc"] if value == "inherit" else [value, value, value, "ipc"]
    if not isinstance(value, (list, tuple)):
        raise invalid_arg_value("stdio", value)  # Deliberate: Node falls back to `silent`
    if not any(isinstance(s, str) and s == "ipc" for s in value):
        raise child_process_ipc_required("options.stdio")
    return value
