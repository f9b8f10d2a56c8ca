"""``spawn()`` and ``fork()``: start a child and return its
:class:`ChildProcess` at once.

Node's ``child_process.spawn``: arguments are validated before anything is
spawned (``_options``); the child is created by the C core with the
parent's pipe ends non-blocking; events arrive on the loop of the calling
thread (``_loop``), starting with ``'spawn'`` on the next tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._child import ChildProcess
from ._spawn.options import normalize_fork, normalize_spawn
from ._spawn.optiontypes import Args, PathArg, options_doc

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from 3.11; only the checker needs it

    from ._spawn.optiontypes import ForkOptions, SpawnOptions

__all__ = ["spawn", "fork"]


def spawn(
    command: PathArg,
    args: Args | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Unpack[SpawnOptions],
) -> ChildProcess:
    """Start ``command`` with ``args``; returns the running ``ChildProcess``.

    ``cp.spawn('ls', ['-l'], cwd='/tmp')`` or, ported from Node,
    ``cp.spawn('ls', ['-l'], {'cwd': '/tmp'})``.  Runtime failures (a missing
    program, EACCES, EAGAIN, EMFILE) are emitted as ``'error'`` rather than
    raised; invalid arguments raise before anything happens.
    """
    plan = normalize_spawn("spawn", command, args, options, kwargs, sync=False)
    child = ChildProcess()
    child._spawn(plan)
    return child


def fork(
    module_path: PathArg,
    args: Args | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    /,
    **kwargs: Unpack[ForkOptions],
) -> ChildProcess:
    """Start a Python module (or, with ``exec_path='node'``, a Node script)
    with an IPC channel: Node's ``fork``.

    Runs ``exec_path`` (default ``sys.executable``) with ``exec_argv +
    [module_path] + args``; ``exec_argv`` defaults to this interpreter's
    options (``-O``, ``-X dev``, ``-W ...``), as Node passes
    ``process.execArgv``, unless ``exec_path`` names another program;
    stdio is ``[0, 1, 2, 'ipc']`` (``silent=True``: pipes) and the child finds the channel through ``NODE_CHANNEL_FD``, as
    a Node child does.  In a Python child, ``from childproc import process``
    gives ``process.send`` and ``process.on('message', ...)``.

    ``max_message_size`` (not Node's; default 64 MiB, ``math.inf`` for none)
    bounds one message this side receives: a bigger one is an ``'error'``
    (``ERR_IPC_BAD_MESSAGE``) and the messages after it still arrive.
    """
    plan = normalize_fork(module_path, args, options, kwargs)
    child = ChildProcess()
    child._spawn(plan)
    return child


# help(cp.spawn) lists the options, from the TypedDicts the checker reads.
spawn.__doc__ = (spawn.__doc__ or "") + options_doc("spawn")
fork.__doc__ = (fork.__doc__ or "") + options_doc("fork")
