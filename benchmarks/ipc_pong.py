"""Forked by compare / bench_ipc.py (IPC round trips): echoes every message.

The channel's serialization (json or pickle) is the parent's choice; the
child learns it from the environment, as a Node child does.
"""

import os

if os.environ.get("BENCH_CHILD_CPU"):  # compare's two-CPU workloads: the child's own CPU
    os.sched_setaffinity(0, {int(os.environ["BENCH_CHILD_CPU"])})

from childproc import process

process.on("message", lambda message, _handle=None: process.send(message))
