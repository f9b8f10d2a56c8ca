"""Shared bits of tests/test_pool*.py."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "pool"
if str(FIX) not in sys.path:
    sys.path.insert(0, str(FIX))


def wait_until(predicate, limit=20.0, step=0.005):
    """Poll until ``predicate()`` is true; the bound only turns a hang into a failure."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {limit} s")
        time.sleep(step)


def gone(pid):
    """True once ``pid`` is no process (or only a zombie of someone else)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def reaped(pid):
    """True once ``pid`` is no process at all (not even a zombie)."""
    return not os.path.exists(f"/proc/{pid}")
