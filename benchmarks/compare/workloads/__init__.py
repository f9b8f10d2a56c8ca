"""The workload registry: every workload the runner knows, by family.

A family is one module of this package that defines

    WORKLOADS: list[Workload]                         # in the order they run and print
    C_PROGRAMS: dict[str, tuple[str, list[str]]]      # optional: floors it compiles,
                                                      # name -> (source in benchmarks/, cc flags)

and is named once in FAMILIES below.  Adding a family is that module plus
its line here: the runner, the worker, --list, the tables, the JSON and the
chart find its workloads through WORKLOADS.  Programs of every family are
built before a run (a family may use another's binaries: the shell-pipe and
`python -c pass` references are timed by the spawn family's floor_spawn).
"""

from __future__ import annotations

import importlib

from ..model import Workload

FAMILIES = (
    "spawn",  # spawn_true, spawn_async
    "streams",  # stdout_data, pipe_fd
    "concurrent",  # concurrent_latency, concurrent_scale
    "exec_capture",  # exec_100m_bytes, exec_100m_text, exec_1k
    "ipc",  # ipc_roundtrip, ipc_roundtrip_2cpu, ipc_oneway, fork_first
)

WORKLOADS: dict[str, Workload] = {}
C_PROGRAMS: dict[str, tuple[str, list[str]]] = {}

for _family in FAMILIES:
    _module = importlib.import_module(f"{__name__}.{_family}")
    for _w in _module.WORKLOADS:
        if _w.name in WORKLOADS:
            raise ValueError(f"workload {_w.name!r} of family {_family!r} is already registered")
        WORKLOADS[_w.name] = _w
    for _name, _program in getattr(_module, "C_PROGRAMS", {}).items():
        if C_PROGRAMS.setdefault(_name, _program) != _program:
            raise ValueError(f"C program {_name!r} of family {_family!r} differs from an earlier one")
