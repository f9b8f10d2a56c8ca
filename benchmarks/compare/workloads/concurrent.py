"""The concurrent family: many `sleep` children at once, started together
and waited for together: wall time, and at scale the parent's threads and
memory per child.

Floor: floor_concurrent.c (posix_spawn all, their pidfds in one epoll set).
"""

from __future__ import annotations

import pyops

from ..model import Bar, Peer, Sizing, Workload
from ..peers import P, c_peer, childproc_peer, node_peer, py_peer

C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_concurrent": ("floor_concurrent.c", []),
}

WORKLOADS: list[Workload] = []

# -- concurrent children ------------------------------------------------------------------


def _concurrent_peers() -> list[Peer]:
    return [
        c_peer("C floor: posix_spawn + epoll on pidfds", "epoll", "floor_concurrent", floor=True,
               note="floor_concurrent.c: spawn all, one epoll set of pidfds, waitpid each"),
        childproc_peer("childproc spawn+wait", "private loop", pyops.childproc_concurrent,
                       note="spawn() x N with stdio='ignore', then wait() each"),
        childproc_peer("childproc spawn, await (asyncio)", "asyncio", pyops.childproc_concurrent_await,
                       note="spawn() x N inside a coroutine, asyncio.gather() of them"),
        py_peer("asyncio create_subprocess_exec", "asyncio", pyops.asyncio_concurrent,
                note="stdio DEVNULL, gather(proc.wait()); the interpreter's default child watcher"),
        py_peer("uvloop create_subprocess_exec", "uvloop", P(pyops.asyncio_concurrent, loop_kind="uvloop"),
                uvloop=True),
        node_peer("node spawn", "libuv", "concurrent", note="node_peers.js concurrent: stdio 'ignore', every 'exit'"),
    ]


_CONCURRENT = dict(
    kind_label="waits with",
    unit="ms",
    ratio_to=[("x C", "C floor: posix_spawn + epoll on pidfds")],
    watch=True,
    extras=[("max_threads", "threads"), ("kib_per_child", "KiB/child")],
)

WORKLOADS.append(
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

WORKLOADS.append(
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

