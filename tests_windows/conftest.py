"""The Windows suite: run by ``scripts/windows-stage.sh`` under Windows
CPython (wine64 here, a real Windows in the wheel workflow).

Children are ``python.exe`` (``sys.executable``) and ``cmd.exe``: Windows
has no ``sh``/``cat``, and wine's ``findstr``/``sort`` are stubs.  Node
comparisons run ``node.exe`` (``winnode.py``).  No ``fcntl``, ``resource``
or SIGALRM here: a hung test is ended by faulthandler's watchdog, which
dumps every thread's stack and exits, so the run fails instead of hanging.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Iterator

import pytest

if sys.platform != "win32":  # pragma: no cover - this suite is Windows-only
    collect_ignore_glob = ["test_*.py"]

WATCHDOG_SECONDS = float(os.environ.get("CHILDPROC_WIN_WATCHDOG", "120"))


@pytest.fixture(autouse=True)
def _watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture
def py() -> str:
    """The Windows Python running this suite, as a child program."""
    return sys.executable
