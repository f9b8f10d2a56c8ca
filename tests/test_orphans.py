"""A child whose owning thread ends without waiting for it is still reaped.

The child's events belong to its thread's private loop; once that thread
has ended nothing drives the loop, so childproc hands the child to an
orphan-reaper thread instead of leaving a zombie (found by the spawn
tests: a thread that returned while its child ran left one behind).
"""

from __future__ import annotations

import os
import threading
import time

import childproc as cp


def _zombies_of(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == ppid:
            found.append(int(entry))
    return found


def test_children_of_an_ended_thread_are_reaped() -> None:
    pids: list[int] = []

    def worker() -> None:
        for _ in range(5):
            child = cp.spawn("sleep", ["0.2"], stdio="ignore")
            assert child.pid is not None
            pids.append(child.pid)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [p for p in pids if os.path.exists(f"/proc/{p}")]
        if not left:
            break
        time.sleep(0.05)
    assert [p for p in pids if os.path.exists(f"/proc/{p}")] == []
    assert not set(_zombies_of(os.getpid())) & set(pids)
