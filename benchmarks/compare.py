#!/usr/bin/env python3
"""Side-by-side comparison runner: childproc against its peers, in one run.

    python benchmarks/compare.py                  # every workload, about 8-10 minutes
    python benchmarks/compare.py --quick          # CI-sized, under a minute
    python benchmarks/compare.py --workload NAME  # one workload (repeatable)
    python benchmarks/compare.py --list           # workloads, bars and peers

(`scripts/bench.sh` sets up .venv and runs this with its arguments.)

How a run goes.  Every workload has a list of peers: childproc, the stdlib,
uvloop, Node and C floors that the runner compiles.  One (peer, parent
state) pair is a *cell*; the spawn workloads also run every peer in a
"held" state, with the parent holding touched ballast memory (2 GiB by
default).  One run of a cell is a *batch*: a fresh process (a Python worker,
`compare.py --worker`, for the Python peers; node or a compiled C program
for the others) that allocates its ballast, does a few untimed warm-up ops,
then times up to `ops` ops (stopping early once `batch_seconds` have
passed) and prints the per-op samples as JSON.  A run is --rounds rounds;
each round runs every cell once, in a freshly shuffled order, so slow drift
of the machine lands on all peers alike.  A cell's figure comes from the
median of its per-batch medians: a time (µs, ms) or a rate (GB/s, round
trips/s) computed from it.  Ratio columns divide a cell's figure by a named
floor's figure in the same parent state, so for rates 0.9x means 90% of the
floor's throughput, and for times 1.1x means 10% slower.

Peers that cannot run here (no node, no cc, no uvloop, childproc not
importable) are listed as skipped with the reason.  Nothing here asserts a
time; the bars of DESIGN.md §5 are printed with each table, met or missed.

Results: a table per workload on stdout (progress goes to stderr), and
benchmarks/results/compare.json plus compare.png (matplotlib, if installed).

Adding a workload: write the Python op factories in pyops.py, wrap them
and any external commands in `Peer`s, and `register(Workload(...))`.  An
external command gets the protocol arguments
    OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB
followed by the workload's arguments (its `args`, after the peer's `tail`
mapping), and must print one JSON line with "samples_ns" (and optionally
"rss_kib", "base_rss_kib", "hwm_kib", "failures"); see _floor_common.h and
node_peers.js.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shlex
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
BUILD = HERE / ".build"
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import pyops  # noqa: E402  (the Python peers' op factories)

INHERIT = "inherit"
PIPES3 = "3 pipes"

# ---------------------------------------------------------------------------
# Registry


@dataclass
class Sizes:
    """How big the workloads are (options of the same names)."""

    stream_mib: int = 1024  # stdout_data, pipe_fd: bytes through the pipe per op
    exec_mib: int = 100  # exec_100m_*: captured output per op
    latency_children: int = 200  # concurrent_latency
    scale_children: int = 1000  # concurrent_scale
    scale_sleep: float = 0.2  # concurrent_scale: how long each child sleeps
    roundtrips: int = 200  # ipc_roundtrip: round trips per op
    oneway_msgs: int = 10000  # ipc_oneway: messages per op


QUICK_SIZES = Sizes(stream_mib=128, exec_mib=16, latency_children=30, scale_children=100,
                    roundtrips=50, oneway_msgs=2000)
# The probe (one op per peer before the rounds) only checks that a peer works.
PROBE_SIZES = Sizes(stream_mib=2, exec_mib=1, latency_children=3, scale_children=3,
                    roundtrips=5, oneway_msgs=50)


@dataclass
class Context:
    """What peers need to build their command line, found once per run."""

    python: str = sys.executable
    node: str | None = None
    cc: str | None = None
    binaries: dict[str, Path] = field(default_factory=dict)
    build_errors: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str | None] = field(default_factory=dict)  # cached import checks


@dataclass
class Peer:
    name: str
    stdio: str  # the second column: the child's stdio, or the workload's "kind" of peer
    # Exactly one of these two:
    py_op: Callable[[list[str]], Callable[[], Any]] | None = None  # a pyops factory
    command: Callable[[Context], list[str]] | None = None  # an external program
    # Maps the workload's arguments to the ones this peer gets (default: as is).
    tail: Callable[[Context, list[str]], list[str]] | None = None
    # Returns why the peer cannot run here, or None.  Called before the probe.
    unavailable: Callable[[Context], str | None] | None = None
    floor: bool = False  # a floor (C, or the reference command): ratios are taken against these
    note: str = ""


@dataclass
class Sizing:
    ops: int  # timed ops per batch, at most
    batch_seconds: float  # a batch stops timing after this long
    warmup: int  # untimed ops first


@dataclass
class Bar:
    """One bar of DESIGN.md §5: `peer`'s figure over `against`'s is at most
    (or at least) `limit`.  With `extra`, that per-peer figure (e.g.
    max_threads) is compared with `limit` instead."""

    peer: str
    against: str | None
    limit: float
    at_least: bool = False
    state: str = "empty"
    against_state: str = "empty"
    extra: str | None = None


@dataclass
class Workload:
    name: str
    title: str  # str.format()ted with the Sizes
    args: Callable[[Sizes], list[str]]
    peers: list[Peer]
    bar: str = ""  # DESIGN.md §5, for the table header
    bars: list[Bar] = field(default_factory=list)
    kind_label: str = "stdio"  # header of the second column
    unit: str = "µs"  # of the figure: "µs", "ms", or a rate ("GB/s", "round trips/s")
    # Rates: how many units one op moves (bytes/1e9, round trips); None = a time.
    per_op: Callable[[Sizes], float] | None = None
    ratio_to: list[tuple[str, str]] = field(default_factory=list)  # (column, floor peer)
    same_kind: str | None = None  # column against the floor with the same `stdio`
    held: bool = False  # also run every peer in the held state
    watch: bool = False  # poll the batch process's thread count
    # Run each batch (and the children it forks) on one CPU.  For ping-pong
    # workloads on a small machine: unpinned, each batch lands either with
    # both processes on one CPU (direct switches) or on two (cross-CPU
    # wake-ups, 3-4x slower), and the median of 5 batches is a coin toss.
    pin_one_cpu: bool = False
    # The opposite, also deterministic: the batch on one CPU and the child it
    # talks to on another (BENCH_CHILD_CPU tells each child where to go), so
    # every message is a cross-CPU wake-up -- the case the IPC bar's figures
    # were measured in (a C ping-pong at 14.3k/s is wake-up latency, not work).
    split_cpus: bool = False
    extras: list[tuple[str, str]] = field(default_factory=list)  # (key, column)
    full: Sizing = field(default_factory=lambda: Sizing(200, 0.5, 5))
    quick: Sizing = field(default_factory=lambda: Sizing(20, 0.15, 2))
    max_rounds: int | None = None  # heavy workloads run fewer rounds than --rounds
    # (numerator, denominator) pairs worth a line of their own under the table
    headline: list[tuple[str, str]] = field(default_factory=list)

    def peer(self, name: str) -> Peer:
        return next(p for p in self.peers if p.name == name)

    def floor_for(self, stdio: str) -> Peer | None:
        return next((p for p in self.peers if p.floor and p.stdio == stdio), None)

    @property
    def is_rate(self) -> bool:
        return self.per_op is not None

    def value(self, median_ns: float, sizes: Sizes) -> float:
        """The figure of a median op time, in `unit`."""
        if self.per_op is not None:
            return self.per_op(sizes) / (median_ns / 1e9)
        return median_ns / (1e6 if self.unit == "ms" else 1e3)


WORKLOADS: dict[str, Workload] = {}


def register(w: Workload) -> Workload:
    WORKLOADS[w.name] = w
    return w


def _python_check(ctx: Context, code: str, reason: str) -> str | None:
    """Run `code` in ctx.python (cached): None if it works, else the reason."""
    if code not in ctx.checks:
        import subprocess

        r = subprocess.run([ctx.python, "-c", code], capture_output=True, text=True, cwd=HERE)
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        ctx.checks[code] = None if r.returncode == 0 else f"{reason}: {last}"
    return ctx.checks[code]


def _childproc_unavailable(ctx: Context) -> str | None:
    # Checked in a child (the real check is the probe); this one only turns
    # the common "not installed" case into a short reason.
    return _python_check(ctx, "import childproc; childproc.spawn_sync",
                         f"childproc not importable by {ctx.python}")


def _uvloop_unavailable(ctx: Context) -> str | None:
    return _python_check(ctx, "import uvloop",
                         f"uvloop not importable by {ctx.python} (pip install uvloop; "
                         "it is in the bench extra, not on every platform)")


def _node_unavailable(ctx: Context) -> str | None:
    return None if ctx.node else "no `node` on PATH"


def _binary_unavailable(name: str) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        if name in ctx.binaries:
            return None
        return ctx.build_errors.get(name, f"{name} was not built")

    return check


def _all(*checks) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        return next((r for c in checks if (r := c(ctx))), None)

    return check


def _py(name: str, stdio: str, factory, *, childproc: bool = False, uvloop: bool = False, **kw) -> Peer:
    checks = ([_childproc_unavailable] if childproc else []) + ([_uvloop_unavailable] if uvloop else [])
    if "unavailable" in kw:
        checks.append(kw.pop("unavailable"))
    return Peer(name=name, stdio=stdio, py_op=factory,
                unavailable=_all(*checks) if checks else None, **kw)


def _cp(name: str, stdio: str, factory, **kw) -> Peer:
    return _py(name, stdio, factory, childproc=True, **kw)


def _c(name: str, stdio: str, binary: str, **kw) -> Peer:
    return Peer(name, stdio, command=lambda ctx: [str(ctx.binaries[binary])],
                unavailable=_binary_unavailable(binary), **kw)


def _c_in_python(name: str, stdio: str, library: str, **kw) -> Peer:
    """A C floor's op, called through ctypes in a Python worker: the floor's
    syscalls from a process like the Python peers' (its size, its threads,
    its working set), to tell what a Python process costs from what the
    peer's own code costs.  Not a floor: the bars keep the standalone one."""
    return _py(name, stdio, pyops.c_floor, tail=lambda ctx, wargs: [str(ctx.binaries[library]), *wargs],
               unavailable=_binary_unavailable(library), **kw)


def _node(name: str, stdio: str, *mode: str, **kw) -> Peer:
    if not mode:  # the spawnSync peer has a file of its own
        cmd = lambda ctx: [ctx.node, str(HERE / "node_spawn.js")]  # noqa: E731
    else:
        cmd = lambda ctx: [ctx.node, str(HERE / "node_peers.js"), *mode]  # noqa: E731
    return Peer(name, stdio, command=cmd, unavailable=_node_unavailable, **kw)


def _sh(argv: list[str]) -> str:
    return shlex.join(argv)


P = functools.partial

# -- spawn_true ---------------------------------------------------------------

register(
    Workload(
        name="spawn_true",
        title="spawn + wait of /bin/true, synchronous",
        args=lambda s: ["/bin/true"],
        bar="spawn_sync within 1.05x of the C floor [C 0.69 ms; subprocess.run 1.15x, Node spawnSync 2.6x]; "
            "a parent holding 2 GiB: within 1.1x of the empty-parent figure [Node 100x: libuv forks]",
        bars=[
            Bar("childproc.spawn_sync", "C floor: posix_spawn, 3 pipes", 1.05),
            Bar("childproc.spawn_sync stdio=inherit", "C floor: posix_spawn+waitpid", 1.05),
            Bar("childproc.spawn_sync", "childproc.spawn_sync", 1.1, state="held"),
        ],
        held=True,
        ratio_to=[("x floor", "C floor: posix_spawn+waitpid")],
        same_kind="x same-stdio floor",
        full=Sizing(200, 0.5, 5),
        quick=Sizing(20, 0.15, 2),
        peers=[
            _c("C floor: posix_spawn+waitpid", INHERIT, "floor_spawn", floor=True,
               note="benchmarks/floor_spawn.c"),
            _c("C floor: posix_spawn, 3 pipes", PIPES3, "floor_spawn_pipes", floor=True,
               note="floor_spawn.c -DWITH_PIPES: pipes, poll outputs to EOF, wait"),
            _c_in_python("C floor in a Python process", INHERIT, "floor_spawn_lib",
                         note="floor_spawn.c's op through ctypes, inside a Python worker"),
            _c_in_python("C floor in a Python process, 3 pipes", PIPES3, "floor_spawn_pipes_lib",
                         note="the same -DWITH_PIPES"),
            _cp("childproc.spawn_sync", PIPES3, pyops.spawn_sync, note="default options"),
            _cp("childproc.spawn_sync stdio=inherit", INHERIT, P(pyops.spawn_sync, stdio="inherit"),
                note="like for like with subprocess.run"),
            _py("subprocess.run", INHERIT, pyops.subprocess_run, note="default options"),
            _py("subprocess.run 3 pipes", PIPES3, P(pyops.subprocess_run, pipes=True),
                note="stdin/stdout/stderr=PIPE: like for like with spawn_sync"),
            _py("os.posix_spawn+waitpid", INHERIT, pyops.posix_spawn,
                unavailable=lambda ctx: None if hasattr(os, "posix_spawn")
                else "os.posix_spawn missing on this platform"),
            _node("node spawnSync", PIPES3, note="benchmarks/node_spawn.js, default options"),
        ],
        headline=[
            ("childproc.spawn_sync", "C floor in a Python process, 3 pipes"),
            ("childproc.spawn_sync stdio=inherit", "C floor in a Python process"),
            ("childproc.spawn_sync", "subprocess.run"),
            ("childproc.spawn_sync", "subprocess.run 3 pipes"),
            ("childproc.spawn_sync stdio=inherit", "subprocess.run"),
            ("childproc.spawn_sync", "node spawnSync"),
        ],
    )
)

# -- spawn_async (issue 3) ------------------------------------------------------

register(
    Workload(
        name="spawn_async",
        title="spawn + exit of /bin/true, asynchronous (an event loop waits for the exit)",
        args=lambda s: ["/bin/true"],
        bar="async spawn within 1.15x of the C floor [asyncio 1.6x, Node spawn 2.3x, uvloop 4x]; "
            "a parent holding 2 GiB: within 1.1x of the empty-parent figure",
        bars=[
            Bar("childproc spawn+wait", "C floor: posix_spawn+pidfd, 3 pipes", 1.15),
            Bar("childproc spawn, await (asyncio)", "C floor: posix_spawn+pidfd, 3 pipes", 1.15),
            Bar("childproc spawn+wait stdio=inherit", "C floor: posix_spawn+pidfd", 1.15),
            Bar("childproc spawn+wait", "childproc spawn+wait", 1.1, state="held"),
        ],
        held=True,
        ratio_to=[("x floor", "C floor: posix_spawn+pidfd")],
        same_kind="x same-stdio floor",
        full=Sizing(200, 0.5, 5),
        quick=Sizing(20, 0.15, 2),
        peers=[
            _c("C floor: posix_spawn+pidfd", INHERIT, "floor_spawn_pidfd", floor=True,
               note="floor_spawn.c -DWITH_PIDFD: posix_spawn, pidfd_open, poll, waitpid"),
            _c("C floor: posix_spawn+pidfd, 3 pipes", PIPES3, "floor_spawn_pidfd_pipes", floor=True,
               note="-DWITH_PIDFD -DWITH_PIPES: poll the pidfd and both outputs to EOF, waitpid"),
            _c_in_python("C floor in a Python process", INHERIT, "floor_spawn_pidfd_lib",
                         note="floor_spawn.c -DWITH_PIDFD's op through ctypes, inside a Python worker"),
            _c_in_python("C floor in a Python process, 3 pipes", PIPES3, "floor_spawn_pidfd_pipes_lib",
                         note="the same -DWITH_PIPES"),
            _cp("childproc spawn+wait", PIPES3, pyops.childproc_spawn_wait,
                note="spawn(), wait(): the thread's private loop; default options"),
            _cp("childproc spawn+wait stdio=inherit", INHERIT,
                P(pyops.childproc_spawn_wait, stdio="inherit"), note="like for like with asyncio's default"),
            _cp("childproc spawn, await (asyncio)", PIPES3, pyops.childproc_spawn_await,
                note="await spawn(...) inside a coroutine; timed inside it"),
            _py("asyncio create_subprocess_exec", INHERIT, pyops.asyncio_spawn,
                note="default options, await proc.wait()"),
            _py("asyncio create_subprocess_exec 3 pipes", PIPES3, P(pyops.asyncio_spawn, pipes=True),
                note="stdin/stdout/stderr=PIPE, await proc.communicate()"),
            _py("uvloop create_subprocess_exec", INHERIT, P(pyops.asyncio_spawn, loop_kind="uvloop"),
                uvloop=True, note="default options on a uvloop loop"),
            _node("node spawn", PIPES3, "spawn", note="node_peers.js spawn: default options, wait for 'close'"),
        ],
        headline=[
            ("childproc spawn+wait", "C floor in a Python process, 3 pipes"),
            ("childproc spawn+wait stdio=inherit", "C floor in a Python process"),
            ("childproc spawn+wait", "asyncio create_subprocess_exec 3 pipes"),
            ("childproc spawn+wait stdio=inherit", "asyncio create_subprocess_exec"),
            ("childproc spawn, await (asyncio)", "asyncio create_subprocess_exec 3 pipes"),
            ("childproc spawn+wait", "node spawn"),
        ],
    )
)

# -- stdout_data: throughput into Python ----------------------------------------


def _head_args(s: Sizes) -> list[str]:
    n = str(s.stream_mib << 20)
    return [n, "head", "-c", n, "/dev/zero"]  # EXPECTED PROGRAM ARGS


def _shell_pipe(ctx: Context, wargs: list[str]) -> list[str]:
    # EXPECTED head ... -> /bin/sh -c 'head ... | cat > /dev/null'
    return ["/bin/sh", "-c", f"{_sh(wargs[1:])} | cat > /dev/null"]


SHELL_PIPE = "shell: head | cat > /dev/null"


def _shell_peer(kind: str) -> Peer:
    return Peer(SHELL_PIPE, kind, command=lambda ctx: [str(ctx.binaries["floor_spawn"])],
                tail=_shell_pipe, unavailable=_binary_unavailable("floor_spawn"), floor=True,
                note="the bar's reference: /bin/sh -c 'head -c N /dev/zero | cat > /dev/null', timed by floor_spawn")


_STREAM_SIZING = dict(full=Sizing(3, 1.2, 0), quick=Sizing(1, 0.1, 0))

register(
    Workload(
        name="stdout_data",
        title="stdout throughput: head -c {stream_mib} MiB /dev/zero read by the parent",
        args=_head_args,
        bar="stdout into Python 'data' callbacks at least 0.9x a shell head | cat pipe "
            "[3.75 GB/s; Node 1.35, uvloop 1.23, asyncio 0.57]",
        bars=[Bar("childproc 'data'", SHELL_PIPE, 0.9, at_least=True)],
        kind_label="reader",
        unit="GB/s",
        per_op=lambda s: (s.stream_mib << 20) / 1e9,
        ratio_to=[("x shell pipe", SHELL_PIPE), ("x C read", "C floor: read() loop")],
        peers=[
            _shell_peer("cat"),
            _c("C floor: read() loop", "read() 1 MiB", "floor_read", floor=True,
               note="floor_read.c: posix_spawn with a stdout pipe, read() to EOF, waitpid"),
            _cp("childproc 'data'", "'data' events", pyops.childproc_data,
                note="spawn() default options, stdout.on('data') counts bytes, wait()"),
            _py("subprocess.Popen read()", "read(1 MiB)", pyops.subprocess_read,
                note="Popen(stdout=PIPE), stdout.read(1 << 20) to EOF"),
            _py("asyncio StreamReader.read", "read(1 MiB)", pyops.asyncio_read,
                note="create_subprocess_exec(stdout=PIPE), await stdout.read(1 << 20) to EOF"),
            _py("uvloop StreamReader.read", "read(1 MiB)", P(pyops.asyncio_read, loop_kind="uvloop"),
                uvloop=True, note="the same on a uvloop loop"),
            _node("node 'data'", "'data' events", "data", note="node_peers.js data: stdout.on('data')"),
        ],
        headline=[("childproc 'data'", "node 'data'"), ("childproc 'data'", "asyncio StreamReader.read")],
        **_STREAM_SIZING,
    )
)

# -- pipe_fd: readable.pipe() between fds -------------------------------------------

register(
    Workload(
        name="pipe_fd",
        title="fd -> fd pipe(): head -c {stream_mib} MiB /dev/zero moved by the parent (or handed over)",
        args=_head_args,
        bar="pipe() between two fds at least 0.95x of a shell head | cat pipe",
        bars=[
            Bar("childproc pipe() to /dev/null", SHELL_PIPE, 0.95, at_least=True),
            Bar("childproc pipe() to cat's stdin", SHELL_PIPE, 0.95, at_least=True),
        ],
        kind_label="destination",
        unit="GB/s",
        per_op=lambda s: (s.stream_mib << 20) / 1e9,
        ratio_to=[("x shell pipe", SHELL_PIPE)],
        same_kind="x same-dest floor",
        peers=[
            _shell_peer("cat (shared pipe)"),
            _c("C floor: splice() to /dev/null", "/dev/null", "floor_splice", floor=True,
               note="floor_splice.c: splice(2) loop from the child's stdout pipe"),
            _c("C floor: splice() to cat", "cat (parent pumps)", "floor_splice_cat", floor=True,
               note="floor_splice.c -DTO_CAT: splice(2) from head's pipe into cat's stdin pipe"),
            _cp("childproc pipe() to /dev/null", "/dev/null", pyops.childproc_pipe_devnull,
                note="a.stdout.pipe(open('/dev/null', 'wb')): the C splice pump"),
            _cp("childproc pipe() to cat's stdin", "cat (parent pumps)", pyops.childproc_pipe_child,
                note="a.stdout.pipe(b.stdin), b = spawn('cat')"),
            _cp("childproc stdio hand-over to cat", "cat (shared pipe)", pyops.childproc_handover,
                note="spawn('cat', stdio=[a.stdout, 'ignore', 'inherit']): no pump at all"),
        ],
        **_STREAM_SIZING,
    )
)

# -- concurrent children ------------------------------------------------------------------


def _concurrent_peers() -> list[Peer]:
    return [
        _c("C floor: posix_spawn + epoll on pidfds", "epoll", "floor_concurrent", floor=True,
           note="floor_concurrent.c: spawn all, one epoll set of pidfds, waitpid each"),
        _cp("childproc spawn+wait", "private loop", pyops.childproc_concurrent,
            note="spawn() x N with stdio='ignore', then wait() each"),
        _cp("childproc spawn, await (asyncio)", "asyncio", pyops.childproc_concurrent_await,
            note="spawn() x N inside a coroutine, asyncio.gather() of them"),
        _py("asyncio create_subprocess_exec", "asyncio", pyops.asyncio_concurrent,
            note="stdio DEVNULL, gather(proc.wait()); the interpreter's default child watcher"),
        _py("uvloop create_subprocess_exec", "uvloop", P(pyops.asyncio_concurrent, loop_kind="uvloop"),
            uvloop=True),
        _node("node spawn", "libuv", "concurrent", note="node_peers.js concurrent: stdio 'ignore', every 'exit'"),
    ]


_CONCURRENT = dict(
    kind_label="waits with",
    unit="ms",
    ratio_to=[("x C", "C floor: posix_spawn + epoll on pidfds")],
    watch=True,
    extras=[("max_threads", "threads"), ("kib_per_child", "KiB/child")],
)

register(
    Workload(
        name="concurrent_latency",
        title="{latency_children} concurrent `sleep 0.2`: start all, wait for all (wall time)",
        args=lambda s: [str(s.latency_children), "sleep", "0.2"],
        bar="200 concurrent sleep 0.2 within 1.1x of C [336 ms; asyncio 442, Node 470-530]",
        bars=[
            Bar("childproc spawn+wait", "C floor: posix_spawn + epoll on pidfds", 1.1),
            Bar("childproc spawn, await (asyncio)", "C floor: posix_spawn + epoll on pidfds", 1.1),
        ],
        full=Sizing(2, 1.0, 1),
        quick=Sizing(1, 0.1, 0),
        peers=_concurrent_peers(),
        headline=[("childproc spawn+wait", "asyncio create_subprocess_exec"),
                  ("childproc spawn+wait", "node spawn")],
        **_CONCURRENT,
    )
)

register(
    Workload(
        name="concurrent_scale",
        title="{scale_children} concurrent `sleep {scale_sleep:g}`: wall time, the parent's threads and memory",
        args=lambda s: [str(s.scale_children), "sleep", f"{s.scale_sleep:g}"],
        bar="1000 concurrent children with no thread per child",
        bars=[Bar("childproc spawn+wait", None, 8, extra="max_threads"),
              Bar("childproc spawn, await (asyncio)", None, 8, extra="max_threads")],
        full=Sizing(1, 1.0, 0),
        quick=Sizing(1, 0.1, 0),
        max_rounds=3,
        peers=_concurrent_peers(),
        **_CONCURRENT,
    )
)

# -- exec capture (issue 4) -----------------------------------------------------------


def _exec_args(mode: str) -> Callable[[Sizes], list[str]]:
    def args(s: Sizes) -> list[str]:
        n = s.exec_mib << 20
        src = "head -c {n} /dev/zero" if mode == "bytes" else "yes | head -c {n}"
        return [str(n), src.format(n=n)]  # EXPECTED COMMAND

    return args


def _sh_c(ctx: Context, wargs: list[str]) -> list[str]:
    return [wargs[0], "/bin/sh", "-c", wargs[1]]


def _exec_floor() -> Peer:
    return Peer("C floor: read() into a buffer", "bytes",
                command=lambda ctx: [str(ctx.binaries["floor_read_keep"])], tail=_sh_c,
                unavailable=_binary_unavailable("floor_read_keep"), floor=True,
                note="floor_read.c -DKEEP: /bin/sh -c CMD, stdout+stderr pipes polled into growing buffers")


_EXEC_BIG = dict(kind_label="output", unit="ms",
                 ratio_to=[("x C", "C floor: read() into a buffer")],
                 full=Sizing(3, 0.6, 1), quick=Sizing(2, 0.1, 1))

register(
    Workload(
        name="exec_100m_bytes",
        title="exec capture, bytes: `head -c {exec_mib} MiB /dev/zero` through the shell",
        args=_exec_args("bytes"),
        bar="exec capture of 100 MiB within 1.3x of a C read loop [98 ms; check_output 102, "
            "Node exec (buffer) 208]",
        bars=[Bar("childproc exec().result()", "C floor: read() into a buffer", 1.3)],
        peers=[
            _exec_floor(),
            _cp("childproc exec().result()", "bytes", P(pyops.childproc_exec, mode="bytes"),
                note="exec(cmd, encoding=None, max_buffer=inf).result()"),
            _py("subprocess.run capture_output", "bytes", P(pyops.subprocess_run_capture, mode="bytes"),
                note="run(cmd, shell=True, capture_output=True)"),
            _py("subprocess.check_output", "bytes", P(pyops.subprocess_check_output, mode="bytes"),
                note="check_output(cmd, shell=True)"),
            _py("asyncio communicate()", "bytes", P(pyops.asyncio_communicate, mode="bytes"),
                note="create_subprocess_shell(stdout=PIPE, stderr=PIPE), communicate()"),
            _node("node exec (buffer)", "bytes", "exec-buffer",
                  note="exec(cmd, {encoding: 'buffer', maxBuffer: Infinity})"),
        ],
        headline=[("childproc exec().result()", "subprocess.check_output"),
                  ("childproc exec().result()", "node exec (buffer)")],
        **_EXEC_BIG,
    )
)

register(
    Workload(
        name="exec_100m_text",
        title="exec capture, text: `yes | head -c {exec_mib} MiB` through the shell, decoded",
        args=_exec_args("text"),
        bar="exec capture of 100 MiB within 1.3x of a C read loop [98 ms; Node exec (utf8) 334, "
            "subprocess text 358]",
        bars=[Bar("childproc exec().result()", "C floor: read() into a buffer", 1.3)],
        peers=[
            _exec_floor(),
            _cp("childproc exec().result()", "str", P(pyops.childproc_exec, mode="text"),
                note="exec(cmd, max_buffer=inf).result(): utf-8, the default"),
            _py("subprocess.run text=True", "str", P(pyops.subprocess_run_capture, mode="text"),
                note="run(cmd, shell=True, capture_output=True, text=True)"),
            _py("subprocess.check_output text=True", "str", P(pyops.subprocess_check_output, mode="text"),
                note="check_output(cmd, shell=True, text=True)"),
            _py("asyncio communicate() + decode", "str", P(pyops.asyncio_communicate, mode="text"),
                note="communicate(), then stdout.decode()"),
            _node("node exec (utf8)", "str", "exec-utf8", note="exec(cmd, {maxBuffer: Infinity})"),
        ],
        headline=[("childproc exec().result()", "subprocess.run text=True"),
                  ("childproc exec().result()", "node exec (utf8)")],
        **_EXEC_BIG,
    )
)

register(
    Workload(
        name="exec_1k",
        title="exec capture, 1 KiB: `head -c 1024 /dev/zero` through the shell, default options",
        args=lambda s: ["1024", "head -c 1024 /dev/zero"],
        bar="exec of 1 KB within 1.2x of async spawn [of the same command: what exec adds]",
        bars=[Bar("childproc exec().result()", "childproc spawn(shell=True) + wait", 1.2)],
        kind_label="output",
        unit="µs",
        ratio_to=[("x C", "C floor: read() into a buffer")],
        full=Sizing(100, 0.3, 5),
        quick=Sizing(10, 0.05, 1),
        peers=[
            _exec_floor(),
            _cp("childproc exec().result()", "str", P(pyops.childproc_exec, mode="default"),
                note="exec(cmd).result()"),
            _cp("childproc spawn(shell=True) + wait", "unread", pyops.childproc_spawn_shell,
                note="the async spawn of the same command that exec() stands on, output unread"),
            _py("subprocess.run capture_output", "bytes", P(pyops.subprocess_run_capture, mode="bytes")),
            _py("subprocess.check_output", "bytes", P(pyops.subprocess_check_output, mode="bytes")),
            _py("asyncio communicate()", "bytes", P(pyops.asyncio_communicate, mode="bytes")),
            _node("node exec", "str", "exec-utf8", note="exec(cmd) with its defaults"),
        ],
        headline=[("childproc exec().result()", "subprocess.run capture_output"),
                  ("childproc exec().result()", "node exec")],
    )
)

# -- IPC (issue 5) ------------------------------------------------------------------------

_IPC_FLOOR = "C floor: socketpair"
_IPC_LOOP_FLOOR = "C floor: socketpair, epoll"


def _ipc_peers(mode: str) -> list[Peer]:
    roundtrip = mode == "roundtrip"
    cp_op = pyops.childproc_roundtrip if roundtrip else pyops.childproc_oneway
    peers = [
        Peer(_IPC_FLOOR, "raw lines", command=lambda ctx: [str(ctx.binaries["floor_ipc"]), mode],
             unavailable=_binary_unavailable("floor_ipc"), floor=True,
             note=f"floor_ipc.c {mode}: newline-framed bytes over a socketpair to a forked child"),
        _cp("childproc fork json", "json", P(cp_op, serialization="json"),
            note="fork(ipc_pong.py)" if roundtrip else "fork(ipc_sink.py)"),
    ]
    if roundtrip:
        # What any event loop pays on top of the floor: each side waits in
        # epoll_wait() before its read(), as libuv, asyncio and childproc do.
        peers.insert(1, Peer(_IPC_LOOP_FLOOR, "raw lines",
                             command=lambda ctx: [str(ctx.binaries["floor_ipc"]), "roundtrip-epoll"],
                             unavailable=_binary_unavailable("floor_ipc"),
                             note="floor_ipc.c roundtrip-epoll: the same, each read() after an epoll_wait()"))
        peers.append(_cp("childproc fork json, asyncio", "json",
                         P(pyops.childproc_roundtrip_await, serialization="json"),
                         note="the same on an asyncio loop, awaiting a future per burst"))
    peers += [
        _cp("childproc fork pickle", "pickle", P(cp_op, serialization="pickle")),
        _py("multiprocessing Pipe", "pickle", pyops.mp_roundtrip if roundtrip else pyops.mp_oneway,
            note="Process + Connection.send/recv (the default start method)"),
        _node("node fork", "json", f"ipc-{mode}",
              note="node_peers.js: Node parent, Node child " + ("ipc_pong.js" if roundtrip else "ipc_sink.js")),
    ]
    return peers


_IPC_SIZING = dict(full=Sizing(20, 0.4, 2), quick=Sizing(5, 0.05, 1), pin_one_cpu=True)

register(
    Workload(
        name="ipc_roundtrip",
        title="IPC round trips: ping-pong of a small dict, {roundtrips} per op (parent and child on one CPU)",
        args=lambda s: [str(s.roundtrips)],
        bar="IPC json round trips at least 0.85x a C socketpair ping-pong [14.3k/s; mp.Pipe 11.4k, Node fork 6.8k]",
        bars=[Bar("childproc fork json", _IPC_FLOOR, 0.85, at_least=True)],
        kind_label="serialization",
        unit="round trips/s",
        per_op=lambda s: s.roundtrips,
        ratio_to=[("x C", _IPC_FLOOR), ("x node", "node fork")],
        peers=_ipc_peers("roundtrip"),
        headline=[("childproc fork json", "multiprocessing Pipe"), ("childproc fork pickle", "multiprocessing Pipe"),
                  ("childproc fork json", _IPC_LOOP_FLOOR), (_IPC_LOOP_FLOOR, _IPC_FLOOR)],
        **_IPC_SIZING,
    )
)

def _two_cpus_unavailable(ctx: Context) -> str | None:
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs"
    return None


def _on_two_cpus(peers: list[Peer]) -> list[Peer]:
    for p in peers:
        checks = [c for c in (p.unavailable, _two_cpus_unavailable) if c is not None]
        p.unavailable = _all(*checks)
    return peers


register(
    Workload(
        name="ipc_roundtrip_2cpu",
        title="IPC round trips: ping-pong of a small dict, {roundtrips} per op (parent and child on two CPUs)",
        args=lambda s: [str(s.roundtrips)],
        bar="IPC json round trips at least 0.85x a C socketpair ping-pong [14.3k/s; mp.Pipe 11.4k, Node fork 6.8k]",
        bars=[Bar("childproc fork json", _IPC_FLOOR, 0.85, at_least=True)],
        kind_label="serialization",
        unit="round trips/s",
        per_op=lambda s: s.roundtrips,
        ratio_to=[("x C", _IPC_FLOOR), ("x node", "node fork")],
        peers=_on_two_cpus(_ipc_peers("roundtrip")),
        headline=[("childproc fork json", "multiprocessing Pipe"), ("childproc fork pickle", "multiprocessing Pipe"),
                  ("childproc fork json", _IPC_LOOP_FLOOR), (_IPC_LOOP_FLOOR, _IPC_FLOOR)],
        **dict(_IPC_SIZING, pin_one_cpu=False, split_cpus=True),
    )
)

register(
    Workload(
        name="ipc_oneway",
        title="IPC one-way: {oneway_msgs} small dicts per op to a counting child, then 'end' "
              "(parent and child on one CPU)",
        args=lambda s: [str(s.oneway_msgs)],
        bar="IPC json one-way at least 2x Node [Node 159k msgs/s, mp.Pipe 148k]",
        bars=[Bar("childproc fork json", "node fork", 2.0, at_least=True)],
        kind_label="serialization",
        unit="msgs/s",
        per_op=lambda s: s.oneway_msgs,
        ratio_to=[("x C", _IPC_FLOOR), ("x node", "node fork")],
        peers=_ipc_peers("oneway"),
        headline=[("childproc fork json", "multiprocessing Pipe")],
        **_IPC_SIZING,
    )
)

BARE_PYTHON = "python -c pass"

register(
    Workload(
        name="fork_first",
        title="fork() to the first message: start a child that sends one message at once",
        args=lambda s: [],
        bar="fork() to the first message within 1.5x of a bare interpreter start "
            "[python -c 10 ms; Node fork 65 ms, multiprocessing spawn 44 ms]",
        bars=[Bar("childproc fork", BARE_PYTHON, 1.5)],
        kind_label="child",
        unit="ms",
        ratio_to=[("x python -c pass", BARE_PYTHON)],
        full=Sizing(10, 0.6, 2),
        quick=Sizing(3, 0.1, 1),
        peers=[
            Peer(BARE_PYTHON, "python", command=lambda ctx: [str(ctx.binaries["floor_spawn"])],
                 tail=lambda ctx, wargs: [ctx.python, "-c", "pass"],
                 unavailable=_binary_unavailable("floor_spawn"), floor=True,
                 note="the reference: start to exit of the same interpreter, timed by floor_spawn"),
            _cp("childproc fork", "python", pyops.childproc_fork_first,
                note="fork(ipc_first.py) to its first 'message' (its exit is not timed)"),
            _py("multiprocessing spawn", "python", P(pyops.mp_fork_first, method="spawn"),
                note="get_context('spawn').Process, to the first Connection.recv()"),
            _py("multiprocessing forkserver", "python", P(pyops.mp_fork_first, method="forkserver"),
                note="get_context('forkserver').Process, to the first recv()"),
            _node("node fork", "node", "fork-first", note="node_peers.js: fork(ipc_first.js) to its 'message'"),
        ],
        headline=[("childproc fork", "multiprocessing spawn"), ("childproc fork", "node fork")],
    )
)

_LIB = ["-shared", "-fPIC", "-DFLOOR_LIBRARY=1"]

# C programs compiled by the runner: name -> (source, extra cc flags)
C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_spawn": ("floor_spawn.c", []),
    "floor_spawn_pipes": ("floor_spawn.c", ["-DWITH_PIPES=1"]),
    "floor_spawn_pidfd": ("floor_spawn.c", ["-DWITH_PIDFD=1"]),
    "floor_spawn_pidfd_pipes": ("floor_spawn.c", ["-DWITH_PIDFD=1", "-DWITH_PIPES=1"]),
    # The same ops as shared libraries, called in a Python worker (_c_in_python)
    "floor_spawn_lib": ("floor_spawn.c", _LIB),
    "floor_spawn_pipes_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIPES=1"]),
    "floor_spawn_pidfd_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIDFD=1"]),
    "floor_spawn_pidfd_pipes_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIDFD=1", "-DWITH_PIPES=1"]),
    "floor_read": ("floor_read.c", []),
    "floor_read_keep": ("floor_read.c", ["-DKEEP=1"]),
    "floor_splice": ("floor_splice.c", []),
    "floor_splice_cat": ("floor_splice.c", ["-DTO_CAT=1"]),
    "floor_concurrent": ("floor_concurrent.c", []),
    "floor_ipc": ("floor_ipc.c", []),
}
C_HEADERS = ["_floor_common.h"]

# ---------------------------------------------------------------------------
# Worker: one batch of one Python peer, in a fresh process.


def _status_kib(key: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def worker_main(argv: list[str]) -> int:
    workload, peer_name, ops, max_ms, warmup_ops, warmup_ms, ballast_mib, *wargs = argv
    ops, warmup_ops, ballast_mib = int(ops), int(warmup_ops), int(ballast_mib)
    max_ns, warmup_ns = int(float(max_ms) * 1e6), int(float(warmup_ms) * 1e6)

    ballast = None
    if ballast_mib > 0:
        n = ballast_mib << 20
        ballast = bytearray(n)
        # Write one byte per page: every page becomes resident (a write fault
        # on a zero page allocates), like the memset in floor_spawn.c.
        ballast[::4096] = b"\x01" * len(range(0, n, 4096))

    op = WORKLOADS[workload].peer(peer_name).py_op(wargs)
    base_rss = _status_kib("VmRSS")
    now = time.perf_counter_ns
    failures = 0

    def timed() -> tuple[int, int]:
        t0 = now()
        r = op()
        t1 = now()
        return r if isinstance(r, tuple) else (r, t1 - t0)

    warm_end = now() + warmup_ns
    for _ in range(warmup_ops):
        if now() >= warm_end:
            break
        if timed()[0] != 0:
            failures += 1

    samples: list[int] = []
    stop = now() + max_ns
    while len(samples) < max(1, ops):
        st, dt = timed()
        if st != 0:
            failures += 1
        samples.append(dt)
        if now() >= stop:
            break
    close = getattr(op, "close", None)
    if close is not None:
        close()

    out = {
        "samples_ns": samples,
        "rss_kib": _status_kib("VmRSS"),
        "base_rss_kib": base_rss,
        "hwm_kib": _status_kib("VmHWM"),
        "ballast_mib": ballast_mib,
        "failures": failures,
    }
    if ballast is not None:
        out["ballast_check"] = ballast[-4096]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 1 if failures else 0


# ---------------------------------------------------------------------------
# Runner


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_c(ctx: Context, names: set[str]) -> None:
    import subprocess

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    ctx.cc = cc
    newest_header = max((HERE / h).stat().st_mtime for h in C_HEADERS)
    for name in sorted(names):
        src, flags = C_PROGRAMS[name]
        out = BUILD / name
        src_path = HERE / src
        if out.exists() and out.stat().st_mtime >= max(src_path.stat().st_mtime, newest_header):
            ctx.binaries[name] = out
            continue
        if not cc:
            ctx.build_errors[name] = "no C compiler (`cc`) on PATH to build it"
            continue
        BUILD.mkdir(exist_ok=True)
        tmp = out.with_name(f"{name}.{os.getpid()}.tmp")
        cmd = [cc, "-O2", *flags, "-o", str(tmp), str(src_path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            os.replace(tmp, out)  # a concurrent run never sees half a binary
            ctx.binaries[name] = out
            log(f"built {out.relative_to(HERE.parent)}: {' '.join(cmd[:-3])} ...")
        else:
            tail = " ".join(r.stderr.strip().splitlines()[-2:])
            tmp.unlink(missing_ok=True)
            ctx.build_errors[name] = f"`{' '.join(cmd)}` failed: {tail}"


def peer_argv(ctx: Context, w: Workload, p: Peer) -> list[str]:
    if p.py_op is not None:
        return [ctx.python, str(Path(__file__).resolve()), "--worker", w.name, p.name]
    return list(p.command(ctx))


def peer_tail(ctx: Context, p: Peer, wargs: list[str]) -> list[str]:
    return list(p.tail(ctx, wargs)) if p.tail else list(wargs)


@dataclass
class Batch:
    ok: bool
    samples_ns: list[int] = field(default_factory=list)
    rss_kib: int = -1
    wall_s: float = 0.0
    error: str = ""
    data: dict = field(default_factory=dict)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)


class ThreadWatch:
    """Polls /proc/PID/status of a running batch: its most threads at once."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.path = f"/proc/{pid}/status"
        self.interval = interval
        self.max_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open(self.path) as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            self.max_threads = max(self.max_threads, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.max_threads


def run_batch(
    ctx: Context, w: Workload, p: Peer, wargs: list[str], ops: int, max_ms: float, warmup_ops: int,
    warmup_ms: float, ballast_mib: int, timeout: float,
) -> Batch:
    import subprocess

    argv = peer_argv(ctx, w, p) + [
        str(ops), f"{max_ms:g}", str(warmup_ops), f"{warmup_ms:g}", str(ballast_mib),
    ] + peer_tail(ctx, p, wargs)
    pin = None
    env = None
    if (w.pin_one_cpu or w.split_cpus) and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[-1]
        pin = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731  (inherited by its children)
        if w.split_cpus:
            env = dict(os.environ, BENCH_CHILD_CPU=str(cpus[-2]))
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE, preexec_fn=pin, env=env)
    watch = ThreadWatch(proc.pid) if w.watch else None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Batch(False, wall_s=time.monotonic() - t0, error=f"no result within {timeout:g} s")
    finally:
        max_threads = watch.stop() if watch else None
    wall = time.monotonic() - t0
    try:
        data = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join((stderr or stdout).strip().splitlines()[-3:])
        return Batch(False, wall_s=wall, error=f"exit {proc.returncode}, no JSON: {tail}")
    if proc.returncode != 0 or data.get("failures"):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return Batch(
            False, wall_s=wall,
            error=f"exit {proc.returncode}, {data.get('failures', '?')} ops failed {tail}".strip(),
        )
    samples = [int(s) for s in data["samples_ns"]]
    if not samples:
        return Batch(False, wall_s=wall, error="no samples")
    if max_threads is not None:
        data["max_threads"] = max_threads
    data.pop("samples_ns", None)
    return Batch(True, samples, int(data.get("rss_kib", -1)), wall, data=data)


def fmt_mib(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib and mib % 1024 == 0 else f"{mib} MiB"


def fmt_val(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"



def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}x"
    if r < 0.1:
        return f"{r:.2g}x"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def median_or_none(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def batch_extra(w: Workload, key: str, b: Batch, sizes: Sizes) -> float | None:
    d = b.data
    if key == "max_threads":
        return d.get("max_threads")
    if key == "kib_per_child":
        base, hwm = d.get("base_rss_kib", -1), d.get("hwm_kib", -1)
        count = int(w.args(sizes)[0])
        return max(0, hwm - base) / count if base >= 0 and hwm >= 0 and count else None
    return d.get(key)


def summarize(w: Workload, cell_batches: list[Batch], sizes: Sizes) -> dict:
    good = [b for b in cell_batches if b.ok]
    meds = [b.median_ns / 1e3 for b in good]
    vals = [w.value(b.median_ns, sizes) for b in good]
    out = {
        "median_us": median_or_none(meds),
        "value": median_or_none(vals),
        "unit": w.unit,
        "batch_medians_us": [round(m, 2) for m in meds],
        "batch_values": [round(v, 4) for v in vals],
        "batches": len(good),
        "failed_batches": [b.error for b in cell_batches if not b.ok],
        "ops": sum(len(b.samples_ns) for b in good),
        "rss_kib": [b.rss_kib for b in good],
    }
    if vals:
        med = out["value"]
        # Interquartile range of the per-batch figures, relative to their
        # median: how much the figure moved between batches.
        if len(vals) >= 2 and med:
            q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
            out["iqr"] = (q3 - q1) / med
        else:
            out["iqr"] = None
        out["range_us"] = [round(min(meds), 2), round(max(meds), 2)]
        out["samples_us"] = [[round(s / 1e3, 1) for s in b.samples_ns] for b in good]
    extras = {}
    for key, _label in w.extras:
        xs = [x for b in good if (x := batch_extra(w, key, b, sizes)) is not None]
        # threads: the most seen in any batch; others: the median batch
        extras[key] = (max(xs) if key == "max_threads" else statistics.median(xs)) if xs else None
    if extras:
        out["extras"] = extras
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_meta(ctx: Context) -> dict:
    import platform
    import subprocess

    def cmd_out(argv: list[str]) -> str | None:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return None

    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    cpu = None
    for line in (read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": ctx.python,
        "libc": " ".join(platform.libc_ver()),
        "node": cmd_out([ctx.node, "--version"]) if ctx.node else None,
        "cc": cmd_out([ctx.cc, "--version"]) if ctx.cc else None,
        "transparent_hugepage": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "pipe_max_size": read("/proc/sys/fs/pipe-max-size"),
        "git_commit": cmd_out(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"]),
        "loadavg_start": _loadavg(),
    }
    r = subprocess.run(
        [ctx.python, "-c", "import childproc,sys; print(getattr(childproc,'__version__','?'), childproc.__file__)"],
        capture_output=True, text=True, cwd=HERE,
    )
    meta["childproc"] = r.stdout.strip() if r.returncode == 0 else None
    r = subprocess.run([ctx.python, "-c", "import uvloop; print(uvloop.__version__)"],
                       capture_output=True, text=True, cwd=HERE)
    meta["uvloop"] = r.stdout.strip() if r.returncode == 0 else None
    return meta


def workload_states(w: Workload, states: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return states if w.held else states[:1]


def ratio_columns(w: Workload) -> list[str]:
    return [label for label, _ in w.ratio_to] + ([w.same_kind] if w.same_kind else [])


def eval_bars(w: Workload, res: dict) -> list[dict]:
    """Each bar of the workload with its measured ratio (or figure) and verdict."""
    peers = res["peers"]
    out = []
    for bar in w.bars:
        pr = peers.get(bar.peer, {})
        cell = (pr.get("states") or {}).get(bar.state, {})
        if bar.extra:
            value = (cell.get("extras") or {}).get(bar.extra)
            shown = "-" if value is None else f"{value:.0f}" if bar.extra == "max_threads" else fmt_val(value)
            what = f"{bar.peer}: {bar.extra} {shown}"
            limit = f"{bar.limit:g}"
        else:
            other = (peers.get(bar.against, {}).get("states") or {}).get(bar.against_state, {})
            value = ratio(cell.get("value"), other.get("value"))
            if bar.against == bar.peer:
                what = f"{bar.peer}: {bar.state} / {bar.against_state} = {fmt_ratio(value)}"
            else:
                sfx = "" if bar.state == "empty" else f" [{bar.state}]"
                what = f"{bar.peer}{sfx} / {bar.against} = {fmt_ratio(value)}"
            limit = f"{bar.limit:g}x"
        if value is None:
            verdict = "n/a"
        else:
            verdict = "met" if (value >= bar.limit if bar.at_least else value <= bar.limit) else "MISSED"
        rel = "at least" if bar.at_least else "at most"
        unit = f" ({w.unit})" if w.is_rate and not bar.extra else ""
        out.append({"text": f"{what}{unit}, bar {rel} {limit}", "value": value, "limit": bar.limit,
                    "at_least": bar.at_least, "verdict": verdict})
    return out


def render_table(w: Workload, res: dict, states: list[tuple[str, int]], sizes: Sizes) -> str:
    """Text table of one workload's results."""
    peers = res["peers"]
    states = workload_states(w, states)
    held_label = fmt_mib(states[-1][1]) if len(states) > 1 else None
    rcols = ratio_columns(w)
    header = ["peer", w.kind_label]
    for key, mib in states:
        lbl = w.unit if len(states) == 1 else f"{'empty' if mib == 0 else fmt_mib(mib)} {w.unit}"
        header += [lbl, "iqr", *rcols]
    if len(states) > 1:
        header.append(f"{held_label}/empty")
    header += [label for _, label in w.extras]
    rows = []
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            continue
        row = [p.name, p.stdio]
        for key, _ in states:
            c = pr["states"].get(key, {})
            sp = c.get("iqr")
            row += [fmt_val(c.get("value")), f"{sp * 100:.0f}%" if sp is not None else "-"]
            row += [fmt_ratio((c.get("ratios") or {}).get(col)) for col in rcols]
        if len(states) > 1:
            row.append(fmt_ratio(pr.get("held_over_empty")))
        ex = pr["states"].get(states[0][0], {}).get("extras") or {}
        for key, _ in w.extras:
            v = ex.get(key)
            row.append("-" if v is None else (f"{v:.0f}" if key == "max_threads" else fmt_val(v)))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        cells = [str(r[0]).ljust(widths[0]), str(r[1]).ljust(widths[1])]
        cells += [str(x).rjust(wd) for x, wd in zip(r[2:], widths[2:])]
        return "  ".join(cells)

    out = [line(header), line(["-" * wd for wd in widths])] + [line(r) for r in rows]
    out.append("")
    better = ("higher is better; a ratio is this peer's rate over the other's" if w.is_rate
              else "lower is better; a ratio is this peer's time over the other's")
    expl = [f"{label}: against {floor}" for label, floor in w.ratio_to]
    if w.same_kind:
        expl.append(f"{w.same_kind}: against the floor with the same {w.kind_label}")
    out.append(f"{w.unit}: {better}" + ("" if len(states) == 1 else ", in the same parent state"))
    out.append("; ".join(expl))
    out.append("iqr: interquartile range of the per-batch figures / their median (noise between batches)")
    if "max_threads" in dict(w.extras):
        out.append("threads: the most threads the parent process had at once (polled from outside); "
                   "KiB/child: (peak RSS - RSS before the first op) / children")
    for a, b in w.headline:
        ra, rb = peers.get(a, {}), peers.get(b, {})
        if ra.get("skipped") or rb.get("skipped") or not ra or not rb:
            continue
        parts = []
        for key, mib in states:
            r_ = ratio(ra["states"].get(key, {}).get("value"), rb["states"].get(key, {}).get("value"))
            parts.append(f"{'empty' if mib == 0 else fmt_mib(mib)} {fmt_ratio(r_)}" if len(states) > 1
                         else fmt_ratio(r_))
        out.append(f"{a} / {b}: " + ", ".join(parts))
    for b in res.get("bars", []):
        out.append(f"BAR {b['verdict']:6} {b['text']}")
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            out.append(f"SKIPPED {p.name}: {pr['skipped']}")
            continue
        for key, _ in states:
            rss = pr.get("states", {}).get(key, {}).get("rss_kib") or []
            mib = dict(states)[key]
            if mib and rss and min(rss) < mib * 1024 * 0.95:
                out.append(f"WARNING {p.name} [{key}]: RSS {min(rss) // 1024} MiB in a batch, "
                           f"less than the {fmt_mib(mib)} ballast")
            errs = pr.get("states", {}).get(key, {}).get("failed_batches") or []
            if errs:
                out.append(f"FAILED batches of {p.name} [{key}]: {len(errs)}, first: {errs[0]}")
    return "\n".join(out)


def draw_chart(path: Path, results: dict, states: list[tuple[str, int]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        return f"no chart: matplotlib not importable ({e})"

    import textwrap

    wls = [(name, r) for name, r in results["workloads"].items()]
    npeers = max((sum(not pr.get("skipped") for pr in r["peers"].values()) for _, r in wls), default=1)
    # One row per workload: figures on the left, ratios on the right.
    fig, axes = plt.subplots(len(wls), 2, figsize=(2 * max(7, 1.1 * npeers + 2), 4.6 * len(wls)),
                             squeeze=False)
    colors = ["#4C72B0", "#DD8452"]
    for row, (name, r) in enumerate(wls):
        w = WORKLOADS[name]
        wstates = workload_states(w, states)
        peers = [p for p in w.peers if not r["peers"][p.name].get("skipped")]
        labels = [textwrap.fill(p.name, 18, break_long_words=False) + f"\n({p.stdio})" for p in peers]
        primary = w.same_kind or (w.ratio_to[0][0] if w.ratio_to else None)
        title = r["title"]
        for col, (metric, ylabel, ptitle) in enumerate([
            ("value", w.unit, textwrap.fill(f"[{name}] {title}", 90) + f"\n{w.unit}, "
             + ("higher is better" if w.is_rate else "lower is better")),
            ("ratio", primary, f"[{name}] {primary}"),
        ]):
            ax = axes[row][col]
            n = len(wstates)
            width = 0.8 / n

            def get(p, key):
                c = r["peers"][p.name]["states"].get(key, {})
                return c.get("value") if metric == "value" else (c.get("ratios") or {}).get(primary)

            for si, (key, mib) in enumerate(wstates):
                vals = [get(p, key) for p in peers]
                xs = [i + (si - (n - 1) / 2) * width for i in range(len(peers))]
                bars = ax.bar(
                    xs, [v or 0 for v in vals], width,
                    label="empty parent" if mib == 0 else f"parent holding {fmt_mib(mib)}",
                    color=colors[si % len(colors)],
                )
                for b, v in zip(bars, vals):
                    if v:
                        txt = fmt_ratio(v) if metric == "ratio" else fmt_val(v)
                        ax.annotate(txt, (b.get_x() + b.get_width() / 2, v), ha="center",
                                    va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
            ax.set_title(ptitle, fontsize=9)
            present = [v for p in peers for k, _ in wstates if (v := get(p, k))]
            if not present:
                ax.text(0.5, 0.5, "no figures (floor skipped?)", ha="center", transform=ax.transAxes)
                continue
            ratio_axis = metric == "ratio"
            if max(present) / min(present) > 5:  # log scale only where the range needs it
                ax.set_yscale("log")
                ylabel += " (log scale)"

                def tick(v, _pos, ratio_axis=ratio_axis):
                    lead = f"{v:.1e}"[0]
                    if v <= 0 or lead not in "125":
                        return ""
                    return f"{v:g}x" if ratio_axis else f"{v:,g}"

                ax.yaxis.set_major_formatter(FuncFormatter(tick))
                ax.yaxis.set_minor_formatter(FuncFormatter(tick))
            elif ratio_axis:
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}x"))
            ax.tick_params(axis="y", which="both", labelsize=7)
            if metric == "ratio":
                ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(peers)))
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=8)
            if n > 1:
                ax.legend(fontsize=7)
            ax.grid(axis="y", which="both", alpha=0.3)
            ax.margins(y=0.15)
    skipped = [
        f"{p}: {pr['skipped']}"
        for r in results["workloads"].values()
        for p, pr in r["peers"].items()
        if pr.get("skipped")
    ]
    skipped = sorted(set(skipped))
    if skipped:
        fig.text(0.01, 0.002, textwrap.fill("skipped: " + "; ".join(skipped), 250), fontsize=7,
                 ha="left", va="bottom")
    m = results["meta"]
    height = fig.get_size_inches()[1]
    fig.suptitle(
        f"childproc compare: {m.get('cpus')} CPUs, Python {m.get('python')}, node {m.get('node') or '-'}, "
        f"{results['settings']['rounds']} rounds, {m.get('date')}",
        fontsize=10, y=1 - 0.15 / height, va="top",
    )
    fig.tight_layout(rect=(0, (0.6 if skipped else 0.1) / height, 1, 1 - 0.5 / height))
    fig.savefig(path, dpi=80 if len(wls) > 4 else 110)
    plt.close(fig)
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Sizes()
    ap.add_argument("--quick", action="store_true",
                    help="CI-sized run: 2 rounds, small batches and sizes, 256 MiB ballast (unless given)")
    ap.add_argument("--rounds", type=int, help="rounds over all cells (default 5, quick 2)")
    ap.add_argument("--ops", type=int, help="max timed ops per batch, for every workload "
                    "(default: each workload's own, see --list)")
    ap.add_argument("--batch-seconds", type=float,
                    help="a batch stops timing after this long, for every workload (default: each workload's own)")
    ap.add_argument("--warmup", type=int, help="untimed ops per batch, for every workload (default: each workload's own)")
    ap.add_argument("--ballast-mib", type=int,
                    help="memory the parent holds in the 'held' state of the spawn workloads "
                    "(default 2048, quick 256); 0 skips that state")
    ap.add_argument("--stream-mib", type=int,
                    help=f"MiB through the pipe per op in stdout_data and pipe_fd (default {d.stream_mib}, "
                    f"quick {QUICK_SIZES.stream_mib})")
    ap.add_argument("--exec-mib", type=int,
                    help=f"MiB captured per op in exec_100m_* (default {d.exec_mib}, quick {QUICK_SIZES.exec_mib})")
    ap.add_argument("--latency-children", type=int,
                    help=f"children in concurrent_latency (default {d.latency_children}, "
                    f"quick {QUICK_SIZES.latency_children})")
    ap.add_argument("--scale-children", type=int,
                    help=f"children in concurrent_scale (default {d.scale_children}, quick {QUICK_SIZES.scale_children})")
    ap.add_argument("--scale-sleep", type=float,
                    help=f"seconds each child of concurrent_scale sleeps (default {d.scale_sleep:g}; spawning "
                    "1000 takes longer than 0.2 s, so raise it to have all of them alive at once)")
    ap.add_argument("--roundtrips", type=int,
                    help=f"round trips per op in ipc_roundtrip (default {d.roundtrips}, quick {QUICK_SIZES.roundtrips})")
    ap.add_argument("--oneway-msgs", type=int,
                    help=f"messages per op in ipc_oneway (default {d.oneway_msgs}, quick {QUICK_SIZES.oneway_msgs})")
    ap.add_argument("--workload", action="append", help="run only these workloads (repeatable; see --list)")
    ap.add_argument("--peer", action="append",
                    help="run only peers whose name contains this (repeatable; floors always run)")
    ap.add_argument("--seed", type=int, help="seed for the shuffles")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for compare.json and compare.png")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--list", action="store_true", help="list workloads, bars and peers, then exit")
    a = ap.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (2 if q else 5)
    a.ballast_mib = a.ballast_mib if a.ballast_mib is not None else (256 if q else 2048)
    base = QUICK_SIZES if q else Sizes()
    a.sizes = replace(base, **{k: v for k in vars(base) if (v := getattr(a, k)) is not None})
    return a


def sizing_for(w: Workload, a: argparse.Namespace) -> Sizing:
    s = w.quick if a.quick else w.full
    return Sizing(
        ops=a.ops if a.ops is not None else s.ops,
        batch_seconds=a.batch_seconds if a.batch_seconds is not None else s.batch_seconds,
        warmup=a.warmup if a.warmup is not None else s.warmup,
    )


def rounds_for(w: Workload, a: argparse.Namespace) -> int:
    return min(a.rounds, w.max_rounds) if w.max_rounds and not a.quick else a.rounds


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    a = parse_args(argv)
    if a.list:
        for w in WORKLOADS.values():
            s = sizing_for(w, a)
            print(f"{w.name}: {w.title.format(**vars(a.sizes))}")
            print(f"  bar: {w.bar}")
            print(f"  {w.unit}; per batch up to {s.ops} ops or {s.batch_seconds:g} s after {s.warmup} "
                  f"warm-up ops; {rounds_for(w, a)} rounds{'; empty and held parent' if w.held else ''}; "
                  f"arguments: {shlex.join(w.args(a.sizes))}")
            for p in w.peers:
                print(f"    {p.name:40} {w.kind_label}: {p.stdio:18} {'[floor] ' if p.floor else ''}{p.note}")
        return 0

    names = a.workload or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        log(f"unknown workload(s): {', '.join(unknown)}; have {', '.join(WORKLOADS)}")
        return 2
    workloads = [WORKLOADS[n] for n in dict.fromkeys(names)]
    states = [("empty", 0)] + ([("held", a.ballast_mib)] if a.ballast_mib > 0 else [])
    sizes = a.sizes

    ctx = Context(node=shutil.which("node"))
    build_c(ctx, set(C_PROGRAMS))

    def wanted(p: Peer) -> bool:
        return p.floor or not a.peer or any(s.lower() in p.name.lower() for s in a.peer)

    def timeout_for(s: Sizing, mib: int) -> float:
        return 30 + s.batch_seconds * 10 + mib / 64  # generous; only catches hangs

    results: dict = {
        "meta": machine_meta(ctx),
        "settings": {
            "rounds": a.rounds, "ballast_mib": a.ballast_mib, "quick": a.quick,
            "states": {k: m for k, m in states}, "sizes": vars(sizes), "workloads": {},
        },
        "workloads": {},
    }

    # Probe every peer once (one small op, empty parent): skip it with the
    # reason if it cannot run here.  Probes are not timed, so two run at once.
    from concurrent.futures import ThreadPoolExecutor

    def probe(w: Workload, p: Peer) -> str | None:
        if not wanted(p):
            return "not selected (--peer)"
        reason = p.unavailable(ctx) if p.unavailable else None
        if reason is None:
            b = run_batch(ctx, w, p, w.args(PROBE_SIZES), 1, 0, 0, 0, 0, timeout_for(sizing_for(w, a), 0))
            if not b.ok:
                reason = f"probe failed: {b.error}"
        return reason

    cells: list[tuple[Workload, Peer, str, int, int]] = []  # (.., state, mib, rounds)
    t_start = time.monotonic()
    for p in (p for w in workloads for p in w.peers):
        if p.unavailable and wanted(p):
            p.unavailable(ctx)  # fill the import-check cache before the threads start
    with ThreadPoolExecutor(max_workers=2) as pool:
        probes = {(w.name, p.name): pool.submit(probe, w, p) for w in workloads for p in w.peers}
        for w in workloads:
            s = sizing_for(w, a)
            wargs = w.args(sizes)
            results["settings"]["workloads"][w.name] = {
                "ops_per_batch": s.ops, "batch_seconds": s.batch_seconds, "warmup_ops": s.warmup,
                "rounds": rounds_for(w, a), "args": wargs,
            }
            wr = results["workloads"][w.name] = {
                "title": w.title.format(**vars(sizes)), "bar": w.bar, "unit": w.unit, "rate": w.is_rate,
                "kind_label": w.kind_label, "args": wargs, "peers": {},
            }
            log(f"== {wr['title']}: checking peers")
            for p in w.peers:
                pr = wr["peers"][p.name] = {"stdio": p.stdio, "floor": p.floor, "note": p.note}
                reason = probes[(w.name, p.name)].result()
                if reason:
                    pr["skipped"] = reason
                    log(f"   skipped {p.name}: {reason}")
                    continue
                pr["skipped"] = None
                pr["argv"] = peer_argv(ctx, w, p) + ["OPS", "MAX_MS", "WARMUP_OPS", "WARMUP_MS", "BALLAST_MIB"] \
                    + peer_tail(ctx, p, wargs)
                log(f"   ok      {p.name}")
                for key, mib in workload_states(w, states):
                    cells.append((w, p, key, mib, rounds_for(w, a)))

    rng = random.Random(a.seed)
    batches: dict[tuple[str, str, str], list[Batch]] = {}
    t_rounds = time.monotonic()
    total = sum(c[4] for c in cells)
    done = 0
    log(f"== {len(cells)} cells, {a.rounds} rounds ({total} batches), interleaved across workloads; "
        + (f"held state = {fmt_mib(a.ballast_mib)}" if a.ballast_mib else "no held state")
        + f"; probes took {t_rounds - t_start:.0f} s")
    for rnd in range(1, a.rounds + 1):
        order = [c for c in cells if c[4] >= rnd]
        rng.shuffle(order)
        for w, p, key, mib, _ in order:
            done += 1
            s = sizing_for(w, a)
            warmup_ms = max(50.0, s.batch_seconds * 250)  # warm-up gets a quarter of a batch's time
            b = run_batch(ctx, w, p, w.args(sizes), s.ops, s.batch_seconds * 1000, s.warmup, warmup_ms,
                          mib, timeout_for(s, mib))
            batches.setdefault((w.name, p.name, key), []).append(b)
            elapsed = time.monotonic() - t_rounds
            eta = elapsed / done * (total - done)
            state = "" if mib == 0 else f" @ {fmt_mib(mib)}"
            what = (f"{fmt_val(w.value(b.median_ns, sizes))} {w.unit} median of {len(b.samples_ns)} ops"
                    if b.ok else f"FAILED: {b.error}")
            log(f"[round {rnd}/{a.rounds}  {done}/{total}  eta {eta:4.0f}s] "
                f"{w.name}: {p.name}{state}: {what} ({b.wall_s:.1f} s)")

    # Summaries and ratios
    for w in workloads:
        wr = results["workloads"][w.name]
        wstates = workload_states(w, states)
        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            pr["states"] = {key: summarize(w, batches.get((w.name, p.name, key), []), sizes)
                            for key, _ in wstates}

        def value_of(name: str | None, key: str) -> float | None:
            if name is None or name not in wr["peers"] or wr["peers"][name].get("skipped"):
                return None
            return wr["peers"][name]["states"][key]["value"]

        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            same = w.floor_for(p.stdio)
            for key, _ in wstates:
                c = pr["states"][key]
                c["ratios"] = {label: ratio(c["value"], value_of(floor, key)) for label, floor in w.ratio_to}
                if w.same_kind:
                    c["ratios"][w.same_kind] = ratio(c["value"], value_of(same.name if same else None, key))
                # The names the spawn_true JSON always had:
                c["x_floor"] = c["ratios"][w.ratio_to[0][0]] if w.ratio_to else None
                if w.same_kind:
                    c["x_same_stdio_floor"] = c["ratios"][w.same_kind]
            if len(wstates) > 1:
                pr["held_over_empty"] = ratio(pr["states"]["held"]["value"], pr["states"]["empty"]["value"])
        wr["headline"] = {
            f"{x} / {y}": {key: ratio(value_of(x, key), value_of(y, key)) for key, _ in wstates}
            for x, y in w.headline
        }
        wr["bars"] = eval_bars(w, wr)

    results["meta"]["loadavg_end"] = _loadavg()
    results["meta"]["took_s"] = round(time.monotonic() - t_start)
    a.out.mkdir(parents=True, exist_ok=True)
    json_path = a.out / "compare.json"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")

    print()
    m = results["meta"]
    print(f"childproc compare — {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, node {m['node'] or '-'}, "
          f"uvloop {m['uvloop'] or '-'}, {m['libc']}, THP {m['transparent_hugepage'] or '-'}")
    print(f"{a.rounds} rounds, interleaved and shuffled; each figure comes from the median of the per-batch "
          f"medians; took {time.monotonic() - t_start:.0f} s" + (" (--quick: small sizes)" if a.quick else ""))
    loads = [x[0] for x in (m["loadavg_start"], m["loadavg_end"]) if x]
    if loads and m["cpus"] and max(loads) > m["cpus"]:
        # The runner itself keeps about one CPU busy; more than that means
        # something else was running.
        print(f"WARNING: the machine was busy (1-minute load average up to {max(loads):.1f} on "
              f"{m['cpus']} CPUs): the figures are noisy, compare them with care (see iqr)")
    for w in workloads:
        wr = results["workloads"][w.name]
        print()
        held = (f"; '{fmt_mib(a.ballast_mib)}' = parent holding {fmt_mib(a.ballast_mib)} of touched memory"
                if a.ballast_mib and w.held else "")
        print(f"[{w.name}] {wr['title']}  ({w.unit}{held})")
        print(f"bar (DESIGN §5): {w.bar}")
        print()
        print(render_table(w, wr, states, sizes))
    missed = [(w.name, b) for w in workloads for b in results["workloads"][w.name]["bars"]
              if b["verdict"] == "MISSED"]
    verdicts = [b["verdict"] for w in workloads for b in results["workloads"][w.name]["bars"]]
    print()
    print(f"bars of DESIGN §5: {verdicts.count('met')} met, {len(missed)} missed, "
          f"{verdicts.count('n/a')} not measured (a peer skipped or failed)")
    for name, b in missed:
        print(f"  MISSED [{name}] {b['text']}")
    print()
    print(f"wrote {json_path}")
    if not a.no_chart:
        png = a.out / "compare.png"
        err = draw_chart(png, results, states)
        print(err or f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
