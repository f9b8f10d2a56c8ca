"""The peer constructors the workloads use, and their availability checks.

``py_peer`` wraps a pyops factory (run in a worker), ``childproc_peer`` the
same for childproc's own peers, ``c_peer`` a compiled floor, ``c_in_python``
a floor's op called through ctypes in a worker, ``node_peer`` a Node script.
Each peer's ``unavailable`` says why it cannot run here (checked before the
probe), so a missing tool shows as a skipped peer with its reason.
"""

from __future__ import annotations

import functools
import shlex
import subprocess
from typing import Any, Callable

import pyops  # the Python peers' op factories (benchmarks/ is on sys.path)

from .model import HERE, Context, Peer


def python_check(ctx: Context, code: str, reason: str) -> str | None:
    """Run `code` in ctx.python (cached): None if it works, else the reason."""
    if code not in ctx.checks:
        r = subprocess.run([ctx.python, "-c", code], capture_output=True, text=True, cwd=HERE)
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        ctx.checks[code] = None if r.returncode == 0 else f"{reason}: {last}"
    return ctx.checks[code]


def childproc_unavailable(ctx: Context) -> str | None:
    # Checked in a child (the real check is the probe); this one only turns
    # the common "not installed" case into a short reason.
    return python_check(ctx, "import childproc; childproc.spawn_sync",
                        f"childproc not importable by {ctx.python}")


def uvloop_unavailable(ctx: Context) -> str | None:
    return python_check(ctx, "import uvloop",
                        f"uvloop not importable by {ctx.python} (pip install uvloop; "
                        "it is in the bench extra, not on every platform)")


def node_unavailable(ctx: Context) -> str | None:
    return None if ctx.node else "no `node` on PATH"


def binary_unavailable(name: str) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        if name in ctx.binaries:
            return None
        return ctx.build_errors.get(name, f"{name} was not built")

    return check


def all_of(*checks) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        return next((r for c in checks if (r := c(ctx))), None)

    return check


def py_peer(name: str, stdio: str, factory, *, childproc: bool = False, uvloop: bool = False, **kw) -> Peer:
    checks = ([childproc_unavailable] if childproc else []) + ([uvloop_unavailable] if uvloop else [])
    if "unavailable" in kw:
        checks.append(kw.pop("unavailable"))
    return Peer(name=name, stdio=stdio, py_op=factory,
                unavailable=all_of(*checks) if checks else None, **kw)


def childproc_peer(name: str, stdio: str, factory, **kw) -> Peer:
    return py_peer(name, stdio, factory, childproc=True, **kw)


def c_peer(name: str, stdio: str, binary: str, **kw) -> Peer:
    return Peer(name, stdio, command=lambda ctx: [str(ctx.binaries[binary])],
                unavailable=binary_unavailable(binary), **kw)


def c_in_python(name: str, stdio: str, library: str, **kw) -> Peer:
    """A C floor's op, called through ctypes in a Python worker: the floor's
    syscalls from a process like the Python peers' (its size, its threads,
    its working set), to tell what a Python process costs from what the
    peer's own code costs.  Not a floor: the bars keep the standalone one."""
    return py_peer(name, stdio, pyops.c_floor, tail=lambda ctx, wargs: [str(ctx.binaries[library]), *wargs],
                   unavailable=binary_unavailable(library), **kw)


def node_peer(name: str, stdio: str, *mode: str, **kw) -> Peer:
    if not mode:  # the spawnSync peer has a file of its own
        cmd = lambda ctx: [ctx.node, str(HERE / "node_spawn.js")]  # noqa: E731
    else:
        cmd = lambda ctx: [ctx.node, str(HERE / "node_peers.js"), *mode]  # noqa: E731
    return Peer(name, stdio, command=cmd, unavailable=node_unavailable, **kw)


def sh(argv: list[str]) -> str:
    return shlex.join(argv)


P = functools.partial
