"""What a workload is made of: sizes, peers, bars, the workload itself.

Plain data, imported by every other module of the runner; it imports none
of them.  The peer constructors (``py_peer``, ``c_peer``, ...) are in
``peers.py``, the workloads themselves in ``workloads/``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent.parent  # benchmarks/: the C sources, scripts and pyops.py
BUILD = HERE / ".build"
RESULTS = HERE / "results"

INHERIT = "inherit"
PIPES3 = "3 pipes"


def log(msg: str) -> None:
    """Progress goes to stderr; stdout carries only the tables."""
    print(msg, file=sys.stderr, flush=True)


def _size(default: float, help: str, quick: float | None = None, probe: float | None = None,
          note: str = "") -> Any:
    # The metadata makes the command-line option (--NAME, its help) and the
    # --quick and probe sizes, so a new size is one field below.
    return field(default=default, metadata={"help": help, "quick": quick, "probe": probe, "note": note})


@dataclass
class Sizes:
    """How big the workloads are (options of the same names)."""

    stream_mib: int = _size(1024, "MiB through the pipe per op in stdout_data and pipe_fd", quick=128, probe=2)
    exec_mib: int = _size(100, "MiB captured per op in exec_100m_*", quick=16, probe=1)
    latency_children: int = _size(200, "children in concurrent_latency", quick=30, probe=3)
    scale_children: int = _size(1000, "children in concurrent_scale", quick=100, probe=3)
    scale_sleep: float = _size(0.2, "seconds each child of concurrent_scale sleeps",
                               note="spawning 1000 takes longer than 0.2 s, so raise it to have all "
                               "of them alive at once")
    roundtrips: int = _size(200, "round trips per op in ipc_roundtrip", quick=50, probe=5)
    oneway_msgs: int = _size(10000, "messages per op in ipc_oneway", quick=2000, probe=50)


def _sizes_from(key: str) -> Sizes:
    return Sizes(**{f.name: f.metadata[key] for f in fields(Sizes) if f.metadata[key] is not None})


QUICK_SIZES = _sizes_from("quick")
# The probe (one op per peer before the rounds) only checks that a peer works.
PROBE_SIZES = _sizes_from("probe")


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
    """One bar, a goal of the workload: `peer`'s figure over `against`'s is at most
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
    bar: str = ""  # the goals in words, for the table header
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


def workload_states(w: Workload, states: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return states if w.held else states[:1]


def ratio_columns(w: Workload) -> list[str]:
    return [label for label, _ in w.ratio_to] + ([w.same_kind] if w.same_kind else [])
