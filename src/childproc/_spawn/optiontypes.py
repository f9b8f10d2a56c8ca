"""The options of each entry point, as ``TypedDict``s: the one source of truth.

A type checker reads them through ``**kwargs: Unpack[SpawnOptions]`` (so a
misspelt option or ``timeout="5"`` is caught before run time), and
:mod:`.options` builds its run-time table of which function takes which
option from their keys (:data:`ALLOWED`), so the two cannot drift apart.
``help(cp.spawn)`` lists the options with their types and a line each
(:func:`options_doc`, appended to each entry point's docstring).

Families: every function takes :class:`CommonOptions`; ``spawn``,
``fork``, ``exec``/``exec_file`` and the three sync functions add their own.
The sync and exec families split off ``encoding`` (and, for the exec_sync
pair, ``stdio``) into a ``...Core`` dict, because the entry points take those
as explicit keywords: the result type depends on them (``encoding='utf8'``
gives ``str``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypedDict

from .._abort import AbortSignal

__all__ = [
    "PathArg", "ArgItem", "Args", "EnvArg", "StdioItem", "StdioArg", "SignalArg", "InputArg",
    "CommonOptions", "SpawnOptions", "ForkOptions", "ExecCore", "ExecOptions", "SyncCore",
    "SpawnSyncOptions", "ExecSyncCore", "ExecSyncOptions", "ALLOWED", "DOCS", "options_doc",
]


class HasFileno(Protocol):
    """Anything with a ``fileno()``: a file, a socket, a childproc stream."""

    def fileno(self) -> int: ...


PathArg = str | bytes | os.PathLike[str] | os.PathLike[bytes]
#: An argument: strings, bytes and paths as they are; numbers are written out, as Node does.
ArgItem = str | bytes | os.PathLike[str] | os.PathLike[bytes] | int | float
Args = Sequence[ArgItem]
#: Values are written out (``str(value)``) as Node does; bytes keys and values are OS strings.
EnvArg = Mapping[str, object] | Mapping[bytes, object]
#: ``'pipe'``, ``'ignore'``, ``'inherit'``, ``'ipc'``, ``'overlapped'``, a descriptor, ``None``
#: (Node's default for the slot) or an object with ``fileno()`` (a file, a childproc stream).
StdioItem = str | int | None | HasFileno
StdioArg = str | Sequence[StdioItem]
SignalArg = str | int
InputArg = str | bytes | bytearray | memoryview


class CommonOptions(TypedDict, total=False):
    """What every entry point takes."""

    cwd: PathArg | None
    env: EnvArg | None
    argv0: PathArg | None
    uid: int | None
    gid: int | None
    timeout: float | None
    kill_signal: SignalArg | None
    windows_hide: bool
    windows_verbatim_arguments: bool
    kill_tree: bool
    force_kill_after: float | None
    die_with_parent: bool


class SpawnOptions(CommonOptions, total=False):
    """``spawn``'s options."""

    stdio: StdioArg | None
    detached: bool
    shell: bool | PathArg
    signal: AbortSignal | None
    serialization: Literal["json", "pickle"] | None
    encoding: str | None
    max_message_size: float | None


class ForkOptions(CommonOptions, total=False):
    """``fork``'s options."""

    stdio: StdioArg | None
    detached: bool
    signal: AbortSignal | None
    serialization: Literal["json", "pickle"] | None
    exec_path: PathArg | None
    exec_argv: Args | None
    silent: bool
    max_message_size: float | None
    warm_start: bool


class ExecCore(CommonOptions, total=False):
    """``exec``/``exec_file``'s options but ``encoding`` (an explicit keyword)."""

    shell: bool | PathArg
    signal: AbortSignal | None
    max_buffer: float
    input: InputArg | None


class ExecOptions(ExecCore, total=False):
    """``exec``'s and ``exec_file``'s options."""

    encoding: str | None


class SyncCore(CommonOptions, total=False):
    """The sync functions' options but ``encoding`` and ``stdio``."""

    detached: bool
    shell: bool | PathArg
    max_buffer: float
    input: InputArg | None


class ExecSyncCore(SyncCore, total=False):
    """``exec_sync``/``exec_file_sync``'s options but ``encoding`` and ``stdio``."""


class SpawnSyncOptions(SyncCore, total=False):
    """``spawn_sync``'s options."""

    stdio: StdioArg | None
    encoding: str | None


class ExecSyncOptions(ExecSyncCore, total=False):
    """``exec_sync``'s and ``exec_file_sync``'s options."""

    stdio: StdioArg | None
    encoding: str | None


_FAMILIES: dict[str, type[Any]] = {
    "spawn": SpawnOptions,
    "spawn_sync": SpawnSyncOptions,
    "exec": ExecOptions,
    "exec_file": ExecOptions,
    "exec_sync": ExecSyncOptions,
    "exec_file_sync": ExecSyncOptions,
    "fork": ForkOptions,
}

#: Which options each function reads: the keys of its TypedDict.
ALLOWED: dict[str, frozenset[str]] = {
    name: frozenset(family.__required_keys__ | family.__optional_keys__) for name, family in _FAMILIES.items()
}

#: One line per option, for ``help()`` (tests/test_typing.py checks every key has one).
DOCS: dict[str, str] = {
    "cwd": "working directory of the child ('' or None: the parent's)",
    "env": "the child's whole environment (default: os.environ)",
    "argv0": "argv[0] the child sees (default: the command)",
    "uid": "user id to run as",
    "gid": "group id to run as",
    "timeout": "seconds before the child is sent kill_signal (None/0: never)",
    "kill_signal": "signal for timeout, max_buffer, abort and kill() (default 'SIGTERM')",
    "windows_hide": "Windows: no console window",
    "windows_verbatim_arguments": "Windows: no quoting of arguments",
    "kill_tree": "signal the child's whole process group (implies a new group)",
    "force_kill_after": "seconds after kill_signal before SIGKILL (None: never)",
    "die_with_parent": "the child gets SIGKILL when this process dies (Linux)",
    "stdio": "'pipe' | 'ignore' | 'inherit' or a list, one item per child fd",
    "detached": "the child leads a new session (process group)",
    "shell": "run through /bin/sh (True) or the given shell",
    "signal": "an AbortSignal that kills the child when aborted",
    "serialization": "the IPC channel's format: 'json' (Node's) or 'pickle'",
    "exec_path": "the interpreter to run (default: sys.executable)",
    "exec_argv": "arguments for the interpreter, before the module",
    "silent": "pipe the child's stdio to the parent instead of inheriting it",
    "max_message_size": "bytes of one IPC message received (default 64 MiB, inf: no limit; "
                        "not Node's); over it an 'error' and the message is dropped",
    "warm_start": "Linux: start the child from a warm interpreter (a zygote) when it can be "
                  "one; else as usual (not Node's; docs/architecture.md, 'Warm start')",
    "max_buffer": "bytes of output allowed (exec: per stream, 1 MiB by default; "
                  "sync: all outputs together); over it the child is killed",
    "encoding": "decode output as this encoding (None or 'buffer': bytes)",
    "input": "bytes (or text) written to the child's stdin, then closed",
}


# The aliases spelt out for help(), where their names would mean nothing.
_SPELT = {"PathArg": "str | bytes | os.PathLike", "EnvArg": "Mapping[str, object]",
          "StdioArg": "str | Sequence[str | int | None | file]", "SignalArg": "str | int",
          "InputArg": "str | bytes | bytearray | memoryview", "Args": "Sequence[str | bytes | os.PathLike | int]"}


def _type_text(family: type[Any], key: str) -> str:
    annotation = family.__annotations__[key]
    text = str(getattr(annotation, "__forward_arg__", None) or getattr(annotation, "__name__", annotation))
    for alias, spelt in _SPELT.items():
        text = text.replace(alias, spelt)
    return text


def options_doc(function: str, indent: str = "    ") -> str:
    """The options section of ``function``'s docstring: name, type, one line
    each, indented like the docstring it is appended to."""
    family = _FAMILIES[function]
    lines = [f"\n\n{indent}Options (keywords, or a Node-style mapping -- camelCase allowed -- "
             f"as the options argument; type checkers read them as ``{family.__name__}``)::\n\n"]
    for key in sorted(ALLOWED[function]):
        lines.append(f"{indent}    {key}: {_type_text(family, key)}\n{indent}        {DOCS[key]}\n")
    return "".join(lines)
