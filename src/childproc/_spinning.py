"""How long a waiting side may spin before it sleeps, and how spinning
backs off: shared by the private loop (``_runtime/private.py``) and the
pool's worker (``_pool/_worker.py``), which must not import the runtime to
learn it (docs/architecture.md, "Spinning before a wait"), and whether a
spin would take the CPU the peer needs."""

from __future__ import annotations

import os

__all__ = ["MISSES", "REST", "REST_MAX", "spin_allowed", "spin_setting"]

MISSES = 4  # misses in a row before a rest
REST = 64  # waits without spinning after them; doubled on each rest that follows, up to:
REST_MAX = 4096


def spin_setting() -> float:
    """The longest spin before a wait, in seconds: ``CHILDPROC_SPIN_US``
    (microseconds; default 100, capped at 10 ms; 0 turns spinning off).
    Never on Windows, whose loop waits on IOCP."""
    raw = os.environ.get("CHILDPROC_SPIN_US", "")
    try:
        us = float(raw) if raw.strip() else 100.0
    except ValueError:
        us = 100.0
    if not us > 0 or os.name == "nt":
        return 0.0
    return min(us, 10_000.0) / 1e6


def spin_allowed(peer: int | None) -> bool:
    """Whether spinning here leaves a CPU for the process we wait for: not
    when this thread may only run on one CPU and the peer only on that one."""
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # no affinity API (macOS): count CPUs
        return (os.cpu_count() or 1) > 1
    if len(mine) > 1:
        return True
    if peer is None:
        return False
    try:
        return bool(os.sched_getaffinity(peer) - mine)
    except OSError:
        return False
