"""The exec family: exec() capture of 100 MiB as bytes and as text, and of
1 KiB with default options, against the other ways to capture a command's
output.

Floor: floor_read.c -DKEEP (stdout and stderr read into growing buffers).
"""

from __future__ import annotations

from typing import Callable

import pyops

from ..model import Bar, Context, Peer, Sizes, Sizing, Workload
from ..peers import P, binary_unavailable, childproc_peer, node_peer, py_peer

C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_read_keep": ("floor_read.c", ["-DKEEP=1"]),
}

WORKLOADS: list[Workload] = []

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
                unavailable=binary_unavailable("floor_read_keep"), floor=True,
                note="floor_read.c -DKEEP: /bin/sh -c CMD, stdout+stderr pipes polled into growing buffers")


_EXEC_BIG = dict(kind_label="output", unit="ms",
                 ratio_to=[("x C", "C floor: read() into a buffer")],
                 full=Sizing(3, 0.6, 1), quick=Sizing(2, 0.1, 1))

WORKLOADS.append(
    Workload(
        name="exec_100m_bytes",
        title="exec capture, bytes: `head -c {exec_mib} MiB /dev/zero` through the shell",
        args=_exec_args("bytes"),
        bar="exec capture of 100 MiB as bytes at most check_output's time [C read loop 98 ms; check_output 102, "
            "Node exec (buffer) 208]",
        bars=[Bar("childproc exec().result()", "subprocess.check_output", 1.0)],
        peers=[
            _exec_floor(),
            childproc_peer("childproc exec().result()", "bytes", P(pyops.childproc_exec, mode="bytes"),
                           note="exec(cmd, encoding=None, max_buffer=inf).result()"),
            py_peer("subprocess.run capture_output", "bytes", P(pyops.subprocess_run_capture, mode="bytes"),
                    note="run(cmd, shell=True, capture_output=True)"),
            py_peer("subprocess.check_output", "bytes", P(pyops.subprocess_check_output, mode="bytes"),
                    note="check_output(cmd, shell=True)"),
            py_peer("asyncio communicate()", "bytes", P(pyops.asyncio_communicate, mode="bytes"),
                    note="create_subprocess_shell(stdout=PIPE, stderr=PIPE), communicate()"),
            node_peer("node exec (buffer)", "bytes", "exec-buffer",
                      note="exec(cmd, {encoding: 'buffer', maxBuffer: Infinity})"),
        ],
        headline=[("childproc exec().result()", "subprocess.check_output"),
                  ("childproc exec().result()", "node exec (buffer)")],
        **_EXEC_BIG,
    )
)

WORKLOADS.append(
    Workload(
        name="exec_100m_text",
        title="exec capture, text: `yes | head -c {exec_mib} MiB` through the shell, decoded",
        args=_exec_args("text"),
        bar="exec capture of 100 MiB as text within 1.15x of a C read loop [98 ms; Node exec (utf8) 334, "
            "subprocess text 358]",
        bars=[Bar("childproc exec().result()", "C floor: read() into a buffer", 1.15)],
        peers=[
            _exec_floor(),
            childproc_peer("childproc exec().result()", "str", P(pyops.childproc_exec, mode="text"),
                           note="exec(cmd, max_buffer=inf).result(): utf-8, the default"),
            py_peer("subprocess.run text=True", "str", P(pyops.subprocess_run_capture, mode="text"),
                    note="run(cmd, shell=True, capture_output=True, text=True)"),
            py_peer("subprocess.check_output text=True", "str", P(pyops.subprocess_check_output, mode="text"),
                    note="check_output(cmd, shell=True, text=True)"),
            py_peer("asyncio communicate() + decode", "str", P(pyops.asyncio_communicate, mode="text"),
                    note="communicate(), then stdout.decode()"),
            node_peer("node exec (utf8)", "str", "exec-utf8", note="exec(cmd, {maxBuffer: Infinity})"),
        ],
        headline=[("childproc exec().result()", "subprocess.run text=True"),
                  ("childproc exec().result()", "node exec (utf8)")],
        **_EXEC_BIG,
    )
)

WORKLOADS.append(
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
            childproc_peer("childproc exec().result()", "str", P(pyops.childproc_exec, mode="default"),
                           note="exec(cmd).result()"),
            childproc_peer("childproc spawn(shell=True) + wait", "unread", pyops.childproc_spawn_shell,
                           note="the async spawn of the same command that exec() stands on, output unread"),
            py_peer("subprocess.run capture_output", "bytes", P(pyops.subprocess_run_capture, mode="bytes")),
            py_peer("subprocess.check_output", "bytes", P(pyops.subprocess_check_output, mode="bytes")),
            py_peer("asyncio communicate()", "bytes", P(pyops.asyncio_communicate, mode="bytes")),
            node_peer("node exec", "str", "exec-utf8", note="exec(cmd) with its defaults"),
        ],
        headline=[("childproc exec().result()", "subprocess.run capture_output"),
                  ("childproc exec().result()", "node exec")],
    )
)

