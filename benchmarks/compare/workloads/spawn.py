"""The spawn family: spawn_true (synchronous) and spawn_async (an event loop
waits), each in an empty parent and in one holding touched ballast.

Floors: floor_spawn.c, standalone and as a shared library whose op a Python
worker calls through ctypes (``c_in_python``).
"""

from __future__ import annotations

import os

import pyops

from ..model import INHERIT, PIPES3, Bar, Sizing, Workload
from ..peers import P, c_in_python, c_peer, childproc_peer, node_peer, py_peer

_LIB = ["-shared", "-fPIC", "-DFLOOR_LIBRARY=1"]

# C programs compiled by the runner: name -> (source, extra cc flags).
# floor_spawn also times the shell pipe (streams) and `python -c pass` (ipc).
C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_spawn": ("floor_spawn.c", []),
    "floor_spawn_pipes": ("floor_spawn.c", ["-DWITH_PIPES=1"]),
    "floor_spawn_pidfd": ("floor_spawn.c", ["-DWITH_PIDFD=1"]),
    "floor_spawn_pidfd_pipes": ("floor_spawn.c", ["-DWITH_PIDFD=1", "-DWITH_PIPES=1"]),
    # The same ops as shared libraries, called in a Python worker (c_in_python)
    "floor_spawn_lib": ("floor_spawn.c", _LIB),
    "floor_spawn_pipes_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIPES=1"]),
    "floor_spawn_pidfd_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIDFD=1"]),
    "floor_spawn_pidfd_pipes_lib": ("floor_spawn.c", _LIB + ["-DWITH_PIDFD=1", "-DWITH_PIPES=1"]),
}

WORKLOADS: list[Workload] = []

# -- spawn_true ---------------------------------------------------------------

WORKLOADS.append(
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
            c_peer("C floor: posix_spawn+waitpid", INHERIT, "floor_spawn", floor=True,
                   note="benchmarks/floor_spawn.c"),
            c_peer("C floor: posix_spawn, 3 pipes", PIPES3, "floor_spawn_pipes", floor=True,
                   note="floor_spawn.c -DWITH_PIPES: pipes, poll outputs to EOF, wait"),
            c_in_python("C floor in a Python process", INHERIT, "floor_spawn_lib",
                        note="floor_spawn.c's op through ctypes, inside a Python worker"),
            c_in_python("C floor in a Python process, 3 pipes", PIPES3, "floor_spawn_pipes_lib",
                        note="the same -DWITH_PIPES"),
            childproc_peer("childproc.spawn_sync", PIPES3, pyops.spawn_sync, note="default options"),
            childproc_peer("childproc.spawn_sync stdio=inherit", INHERIT, P(pyops.spawn_sync, stdio="inherit"),
                           note="like for like with subprocess.run"),
            py_peer("subprocess.run", INHERIT, pyops.subprocess_run, note="default options"),
            py_peer("subprocess.run 3 pipes", PIPES3, P(pyops.subprocess_run, pipes=True),
                    note="stdin/stdout/stderr=PIPE: like for like with spawn_sync"),
            py_peer("os.posix_spawn+waitpid", INHERIT, pyops.posix_spawn,
                    unavailable=lambda ctx: None if hasattr(os, "posix_spawn")
                    else "os.posix_spawn missing on this platform"),
            node_peer("node spawnSync", PIPES3, note="benchmarks/node_spawn.js, default options"),
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

WORKLOADS.append(
    Workload(
        name="spawn_async",
        title="spawn + exit of /bin/true, asynchronous (an event loop waits for the exit)",
        args=lambda s: ["/bin/true"],
        bar="async spawn within 1.10x of the C floor [asyncio 1.6x, Node spawn 2.3x, uvloop 4x]; "
            "a parent holding 2 GiB: within 1.1x of the empty-parent figure",
        bars=[
            Bar("childproc spawn+wait", "C floor: posix_spawn+pidfd, 3 pipes", 1.10),
            Bar("childproc spawn, await (asyncio)", "C floor: posix_spawn+pidfd, 3 pipes", 1.10),
            Bar("childproc spawn+wait stdio=inherit", "C floor: posix_spawn+pidfd", 1.10),
            Bar("childproc spawn+wait", "childproc spawn+wait", 1.1, state="held"),
        ],
        held=True,
        ratio_to=[("x floor", "C floor: posix_spawn+pidfd")],
        same_kind="x same-stdio floor",
        full=Sizing(200, 0.5, 5),
        quick=Sizing(20, 0.15, 2),
        peers=[
            c_peer("C floor: posix_spawn+pidfd", INHERIT, "floor_spawn_pidfd", floor=True,
                   note="floor_spawn.c -DWITH_PIDFD: posix_spawn, pidfd_open, poll, waitpid"),
            c_peer("C floor: posix_spawn+pidfd, 3 pipes", PIPES3, "floor_spawn_pidfd_pipes", floor=True,
                   note="-DWITH_PIDFD -DWITH_PIPES: poll the pidfd and both outputs to EOF, waitpid"),
            c_in_python("C floor in a Python process", INHERIT, "floor_spawn_pidfd_lib",
                        note="floor_spawn.c -DWITH_PIDFD's op through ctypes, inside a Python worker"),
            c_in_python("C floor in a Python process, 3 pipes", PIPES3, "floor_spawn_pidfd_pipes_lib",
                        note="the same -DWITH_PIPES"),
            childproc_peer("childproc spawn+wait", PIPES3, pyops.childproc_spawn_wait,
                           note="spawn(), wait(): the thread's private loop; default options"),
            childproc_peer("childproc spawn+wait stdio=inherit", INHERIT,
                           P(pyops.childproc_spawn_wait, stdio="inherit"), note="like for like with asyncio's default"),
            childproc_peer("childproc spawn, await (asyncio)", PIPES3, pyops.childproc_spawn_await,
                           note="await spawn(...) inside a coroutine; timed inside it"),
            py_peer("asyncio create_subprocess_exec", INHERIT, pyops.asyncio_spawn,
                    note="default options, await proc.wait()"),
            py_peer("asyncio create_subprocess_exec 3 pipes", PIPES3, P(pyops.asyncio_spawn, pipes=True),
                    note="stdin/stdout/stderr=PIPE, await proc.communicate()"),
            py_peer("uvloop create_subprocess_exec", INHERIT, P(pyops.asyncio_spawn, loop_kind="uvloop"),
                    uvloop=True, note="default options on a uvloop loop"),
            node_peer("node spawn", PIPES3, "spawn", note="node_peers.js spawn: default options, wait for 'close'"),
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

