"""pytest-benchmark: spawn + wait of /bin/true, childproc against the stdlib.

    pytest benchmarks/bench_spawn.py                       # timed, compared in one table
    pytest benchmarks/bench_spawn.py --benchmark-disable   # each body once (CI)

The tests share one benchmark group, so pytest-benchmark prints them side by
side.  They assert what each call returned (exit status 0), never a time;
the cross-language comparison with C floors and Node is benchmarks/compare.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from _benchutil import need_childproc

TRUE = shutil.which("true", path="/bin:/usr/bin") or "/bin/true"
GROUP = "spawn + wait of /bin/true"


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_sync(benchmark):
    childproc = need_childproc()
    # Default options, exactly as a user writes it: stdio is three pipes.
    result = benchmark(childproc.spawn_sync, TRUE)
    assert result.status == 0
    assert result.pid > 0
    assert not result.stdout  # /bin/true prints nothing (b"" or None)


@pytest.mark.benchmark(group=GROUP)
def test_childproc_spawn_sync_inherit(benchmark):
    childproc = need_childproc()
    # No pipes: the same stdio situation as subprocess.run and posix_spawn below.
    result = benchmark(childproc.spawn_sync, TRUE, stdio="inherit")
    assert result.status == 0


@pytest.mark.benchmark(group=GROUP)
def test_subprocess_run(benchmark):
    result = benchmark(subprocess.run, [TRUE])
    assert result.returncode == 0


@pytest.mark.benchmark(group=GROUP)
def test_subprocess_run_capture(benchmark):
    # Three pipes, outputs collected: the stdio situation of spawn_sync's default.
    result = benchmark(subprocess.run, [TRUE], stdin=subprocess.PIPE, capture_output=True)
    assert result.returncode == 0
    assert result.stdout == b""


@pytest.mark.benchmark(group=GROUP)
def test_os_posix_spawn_waitpid(benchmark):
    def spawn_wait():
        pid = os.posix_spawn(TRUE, [TRUE], os.environ)
        return os.waitpid(pid, 0)

    pid, status = benchmark(spawn_wait)
    assert pid > 0
    assert os.waitstatus_to_exitcode(status) == 0
