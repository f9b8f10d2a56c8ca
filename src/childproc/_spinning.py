"""How long a waiting side may spin before it sleeps, and how spinning
backs off: shared by the private loop (``_runtime/private.py``) and the
pool's worker (``_pool/_worker.py``), which must not import the runtime to
learn it (docs/architecture.md, "Spinning before a wait")."""

from __future__ import annotations

import os

__all__ = ["MISSES", "REST", "REST_MAX", "spin_setting"]

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
