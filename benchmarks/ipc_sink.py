"""Forked by compare / bench_ipc.py (IPC one-way): counts messages; the
message 'end' is answered with the count since the previous 'end'."""

import os

if os.environ.get("BENCH_CHILD_CPU"):  # compare's two-CPU workloads: the child's own CPU
    os.sched_setaffinity(0, {int(os.environ["BENCH_CHILD_CPU"])})

from childproc import process

count = 0


def on_message(message, _handle=None):
    global count
    if message == "end":
        process.send(count)
        count = 0
    else:
        count += 1


process.on("message", on_message)
