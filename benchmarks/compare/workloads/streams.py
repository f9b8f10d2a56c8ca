"""The streams family: stdout_data (the parent reads a child's stdout) and
pipe_fd (the parent moves it fd to fd, or hands the pipe over).

Floors: the shell pipe `head | cat` (the bars' reference, timed by
floor_spawn), floor_read.c and floor_splice.c.
"""

from __future__ import annotations

import pyops

from ..model import Bar, Context, Peer, Sizes, Sizing, Workload
from ..peers import P, binary_unavailable, c_peer, childproc_peer, node_peer, py_peer, sh

C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_read": ("floor_read.c", []),
    "floor_splice": ("floor_splice.c", []),
    "floor_splice_cat": ("floor_splice.c", ["-DTO_CAT=1"]),
}

WORKLOADS: list[Workload] = []

# -- stdout_data: throughput into Python ----------------------------------------


def _head_args(s: Sizes) -> list[str]:
    n = str(s.stream_mib << 20)
    return [n, "head", "-c", n, "/dev/zero"]  # EXPECTED PROGRAM ARGS


def _shell_pipe(ctx: Context, wargs: list[str]) -> list[str]:
    # EXPECTED head ... -> /bin/sh -c 'head ... | cat > /dev/null'
    return ["/bin/sh", "-c", f"{sh(wargs[1:])} | cat > /dev/null"]


SHELL_PIPE = "shell: head | cat > /dev/null"


def _shell_peer(kind: str) -> Peer:
    return Peer(SHELL_PIPE, kind, command=lambda ctx: [str(ctx.binaries["floor_spawn"])],
                tail=_shell_pipe, unavailable=binary_unavailable("floor_spawn"), floor=True,
                note="the bar's reference: /bin/sh -c 'head -c N /dev/zero | cat > /dev/null', timed by floor_spawn")


_STREAM_SIZING = dict(full=Sizing(3, 1.2, 0), quick=Sizing(1, 0.1, 0))

WORKLOADS.append(
    Workload(
        name="stdout_data",
        title="stdout throughput: head -c {stream_mib} MiB /dev/zero read by the parent",
        args=_head_args,
        bar="stdout into Python 'data' callbacks at least 1.0x a shell head | cat pipe "
            "[3.75 GB/s; Node 1.35, uvloop 1.23, asyncio 0.57]",
        bars=[Bar("childproc 'data'", SHELL_PIPE, 1.0, at_least=True)],
        kind_label="reader",
        unit="GB/s",
        per_op=lambda s: (s.stream_mib << 20) / 1e9,
        ratio_to=[("x shell pipe", SHELL_PIPE), ("x C read", "C floor: read() loop")],
        peers=[
            _shell_peer("cat"),
            c_peer("C floor: read() loop", "read() 1 MiB", "floor_read", floor=True,
                   note="floor_read.c: posix_spawn with a stdout pipe, read() to EOF, waitpid"),
            childproc_peer("childproc 'data'", "'data' events", pyops.childproc_data,
                           note="spawn() default options, stdout.on('data') counts bytes, wait()"),
            py_peer("subprocess.Popen read()", "read(1 MiB)", pyops.subprocess_read,
                    note="Popen(stdout=PIPE), stdout.read(1 << 20) to EOF"),
            py_peer("asyncio StreamReader.read", "read(1 MiB)", pyops.asyncio_read,
                    note="create_subprocess_exec(stdout=PIPE), await stdout.read(1 << 20) to EOF"),
            py_peer("uvloop StreamReader.read", "read(1 MiB)", P(pyops.asyncio_read, loop_kind="uvloop"),
                    uvloop=True, note="the same on a uvloop loop"),
            node_peer("node 'data'", "'data' events", "data", note="node_peers.js data: stdout.on('data')"),
        ],
        headline=[("childproc 'data'", "node 'data'"), ("childproc 'data'", "asyncio StreamReader.read")],
        **_STREAM_SIZING,
    )
)

# -- pipe_fd: readable.pipe() between fds -------------------------------------------

WORKLOADS.append(
    Workload(
        name="pipe_fd",
        title="fd -> fd pipe(): head -c {stream_mib} MiB /dev/zero moved by the parent (or handed over)",
        args=_head_args,
        bar="pipe() between two fds at least 0.95x the splice floor to the same destination "
            "(into another child's stdin that is two pipe hops: the one-hop shell pipe is not its reference)",
        bars=[
            Bar("childproc pipe() to /dev/null", "C floor: splice() to /dev/null", 0.95, at_least=True),
            Bar("childproc pipe() to cat's stdin", "C floor: splice() to cat", 0.95, at_least=True),
        ],
        kind_label="destination",
        unit="GB/s",
        per_op=lambda s: (s.stream_mib << 20) / 1e9,
        ratio_to=[("x shell pipe", SHELL_PIPE)],
        same_kind="x same-dest floor",
        peers=[
            _shell_peer("cat (shared pipe)"),
            c_peer("C floor: splice() to /dev/null", "/dev/null", "floor_splice", floor=True,
                   note="floor_splice.c: splice(2) loop from the child's stdout pipe"),
            c_peer("C floor: splice() to cat", "cat (parent pumps)", "floor_splice_cat", floor=True,
                   note="floor_splice.c -DTO_CAT: splice(2) from head's pipe into cat's stdin pipe"),
            childproc_peer("childproc pipe() to /dev/null", "/dev/null", pyops.childproc_pipe_devnull,
                           note="a.stdout.pipe(open('/dev/null', 'wb')): the C splice pump"),
            childproc_peer("childproc pipe() to cat's stdin", "cat (parent pumps)", pyops.childproc_pipe_child,
                           note="a.stdout.pipe(b.stdin), b = spawn('cat')"),
            childproc_peer("childproc stdio hand-over to cat", "cat (shared pipe)", pyops.childproc_handover,
                           note="spawn('cat', stdio=[a.stdout, 'ignore', 'inherit']): no pump at all"),
        ],
        **_STREAM_SIZING,
    )
)

