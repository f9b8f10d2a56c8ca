"""Task functions for pool_workloads.py (importable by name in every peer's workers)."""

import os
import time


def inc(x):
    return x + 1


def pid_then_sleep(path, seconds):
    """Say which worker runs it and when it started (CLOCK_MONOTONIC is
    system-wide on Linux), then run for ``seconds``."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()} {time.monotonic()!r}")
    os.rename(tmp, path)
    time.sleep(seconds)
    return os.getpid()
