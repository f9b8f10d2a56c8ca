"""The IPC family: round trips (on one CPU and across two), one-way
messages, and fork() to the first message.

Floors: floor_ipc.c (newline-framed bytes over a socketpair; with epoll for
the round trips) and `python -c pass` timed by floor_spawn.
"""

from __future__ import annotations

import os
from typing import Any

import pyops

from ..model import Bar, Context, Peer, Sizing, Workload
from ..peers import P, all_of, binary_unavailable, childproc_peer, node_peer, py_peer

C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_ipc": ("floor_ipc.c", []),
}

WORKLOADS: list[Workload] = []

# -- IPC (issue 5) ------------------------------------------------------------------------

_IPC_FLOOR = "C floor: socketpair"
_IPC_LOOP_FLOOR = "C floor: socketpair, epoll"


def _ipc_peers(mode: str) -> list[Peer]:
    roundtrip = mode == "roundtrip"
    cp_op = pyops.childproc_roundtrip if roundtrip else pyops.childproc_oneway
    peers = [
        Peer(_IPC_FLOOR, "raw lines", command=lambda ctx: [str(ctx.binaries["floor_ipc"]), mode],
             unavailable=binary_unavailable("floor_ipc"), floor=True,
             note=f"floor_ipc.c {mode}: newline-framed bytes over a socketpair to a forked child"),
        childproc_peer("childproc fork json", "json", P(cp_op, serialization="json"),
                       note="fork(ipc_pong.py)" if roundtrip else "fork(ipc_sink.py)"),
    ]
    if roundtrip:
        # What any event loop pays on top of the floor: each side waits in
        # epoll_wait() before its read(), as libuv, asyncio and childproc do.
        peers.insert(1, Peer(_IPC_LOOP_FLOOR, "raw lines",
                             command=lambda ctx: [str(ctx.binaries["floor_ipc"]), "roundtrip-epoll"],
                             unavailable=binary_unavailable("floor_ipc"),
                             note="floor_ipc.c roundtrip-epoll: the same, each read() after an epoll_wait()"))
        peers.append(childproc_peer("childproc fork json, asyncio", "json",
                                    P(pyops.childproc_roundtrip_await, serialization="json"),
                                    note="the same on an asyncio loop, awaiting a future per burst"))
    peers += [
        childproc_peer("childproc fork pickle", "pickle", P(cp_op, serialization="pickle")),
        py_peer("multiprocessing Pipe", "pickle", pyops.mp_roundtrip if roundtrip else pyops.mp_oneway,
                note="Process + Connection.send/recv (the default start method)"),
        node_peer("node fork", "json", f"ipc-{mode}",
                  note="node_peers.js: Node parent, Node child " + ("ipc_pong.js" if roundtrip else "ipc_sink.js")),
    ]
    return peers


_IPC_SIZING = dict(full=Sizing(20, 0.4, 2), quick=Sizing(5, 0.05, 1), pin_one_cpu=True)

def _two_cpus_unavailable(ctx: Context) -> str | None:
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs"
    return None


def _on_two_cpus(peers: list[Peer]) -> list[Peer]:
    for p in peers:
        checks = [c for c in (p.unavailable, _two_cpus_unavailable) if c is not None]
        p.unavailable = all_of(*checks)
    return peers


def _roundtrip(name: str, where: str, peers: list[Peer], vs_pipe: float, **placement: Any) -> Workload:
    """The ping-pong workload; the two differ only in where the processes run
    (and in the bar: ``vs_pipe`` times multiprocessing's Pipe, at least)."""
    return Workload(
        name=name,
        title="IPC round trips: ping-pong of a small dict, {roundtrips} per op (parent and child on " + where + ")",
        args=lambda s: [str(s.roundtrips)],
        bar=f"IPC round trips, json and pickle, at least {vs_pipe:.1f}x multiprocessing.Pipe "
            "[one CPU: json 42.7-43.2k/s, pickle 44.9-45.6k, mp.Pipe 43.6-43.8k; two CPUs: json 34-37k, mp.Pipe 32-35k]",
        bars=[Bar("childproc fork json", "multiprocessing Pipe", vs_pipe, at_least=True),
              Bar("childproc fork pickle", "multiprocessing Pipe", vs_pipe, at_least=True)],
        kind_label="serialization",
        unit="round trips/s",
        per_op=lambda s: s.roundtrips,
        ratio_to=[("x C", _IPC_FLOOR), ("x node", "node fork")],
        peers=peers,
        headline=[("childproc fork json", "multiprocessing Pipe"), ("childproc fork pickle", "multiprocessing Pipe"),
                  ("childproc fork json", _IPC_LOOP_FLOOR), (_IPC_LOOP_FLOOR, _IPC_FLOOR)],
        **placement,
    )


WORKLOADS.append(_roundtrip("ipc_roundtrip", "one CPU", _ipc_peers("roundtrip"), 1.1, **_IPC_SIZING))
WORKLOADS.append(_roundtrip("ipc_roundtrip_2cpu", "two CPUs", _on_two_cpus(_ipc_peers("roundtrip")), 1.0,
                            **dict(_IPC_SIZING, pin_one_cpu=False, split_cpus=True)))

WORKLOADS.append(
    Workload(
        name="ipc_oneway",
        title="IPC one-way: {oneway_msgs} small dicts per op to a counting child, then 'end' "
              "(parent and child on one CPU)",
        args=lambda s: [str(s.oneway_msgs)],
        bar="IPC json one-way at least 2.5x Node, stable over runs [Node 146-159k msgs/s, mp.Pipe 148k]",
        bars=[Bar("childproc fork json", "node fork", 2.5, at_least=True)],
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

WORKLOADS.append(
    Workload(
        name="fork_first",
        title="fork() to the first message: start a child that sends one message at once",
        args=lambda s: [],
        bar="fork(warm_start=True) to the first message ahead of multiprocessing's forkserver "
            "(both from a warm interpreter started on first use) "
            "[python -c 10 ms; Node fork 65 ms, multiprocessing spawn 44 ms]",
        bars=[Bar("childproc fork warm", "multiprocessing forkserver", 1.0)],
        kind_label="child",
        unit="ms",
        ratio_to=[("x python -c pass", BARE_PYTHON)],
        full=Sizing(10, 0.6, 2),
        quick=Sizing(3, 0.1, 1),
        peers=[
            Peer(BARE_PYTHON, "python", command=lambda ctx: [str(ctx.binaries["floor_spawn"])],
                 tail=lambda ctx, wargs: [ctx.python, "-c", "pass"],
                 unavailable=binary_unavailable("floor_spawn"), floor=True,
                 note="the reference: start to exit of the same interpreter, timed by floor_spawn"),
            childproc_peer("childproc fork", "python", pyops.childproc_fork_first,
                           note="fork(ipc_first.py) to its first 'message' (its exit is not timed)"),
            childproc_peer("childproc fork warm", "python", P(pyops.childproc_fork_first, warm_start=True),
                           note="fork(ipc_first.py, warm_start=True): cloned from the zygote, which the "
                                "first (untimed) fork starts"),
            py_peer("multiprocessing spawn", "python", P(pyops.mp_fork_first, method="spawn"),
                    note="get_context('spawn').Process, to the first Connection.recv()"),
            py_peer("multiprocessing forkserver", "python", P(pyops.mp_fork_first, method="forkserver"),
                    note="get_context('forkserver').Process, to the first recv()"),
            node_peer("node fork", "node", "fork-first", note="node_peers.js: fork(ipc_first.js) to its 'message'"),
        ],
        headline=[("childproc fork", "multiprocessing spawn"), ("childproc fork", "node fork")],
    )
)

