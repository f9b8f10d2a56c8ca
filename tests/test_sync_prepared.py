"""Prepared calls: a repeated ``*_sync`` call shape runs from the request
kept from its first run (``childproc._sync``), and must behave exactly as a
first run would.

Every Node-compared case in ``test_sync.py`` and ``test_sync_exec.py`` already
runs twice on our side (``sync_compare.check``), the second time from a kept
request when the call has a key.  This module covers what those cannot: state
that changes between the runs (PATH, the current directory), results that
must not share objects, threads that run one shape at once, calls that must
raise every time, and the bound on what is kept.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

import childproc as cp
from childproc._spawn import sync as _sync

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX commands")


def _tool(directory: Path, says: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / "cp-prepared-tool"
    tool.write_text(f"#!/bin/sh\necho {says}\n")
    tool.chmod(0o755)


def test_the_parents_path_is_read_at_every_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Node looks the file up on process.env.PATH as it is at each call.
    _tool(tmp_path / "a", "a")
    _tool(tmp_path / "b", "b")
    seen = []
    for directory in ("a", "b", "a"):
        monkeypatch.setenv("PATH", f"{tmp_path / directory}:/usr/bin:/bin")
        seen.append(cp.spawn_sync("cp-prepared-tool", encoding="utf-8").stdout)
        seen.append(cp.exec_file_sync("cp-prepared-tool", encoding="utf-8"))
        seen.append(cp.exec_sync("cp-prepared-tool", encoding="utf-8"))
    assert seen == ["a\n"] * 3 + ["b\n"] * 3 + ["a\n"] * 3
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    r = cp.spawn_sync("cp-prepared-tool")
    assert r.error is not None and r.error.code == "ENOENT"


def test_a_relative_cwd_follows_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # cwd='sub' means the child's chdir('sub'), from wherever the parent is.
    for name in ("one", "two"):
        (tmp_path / name / "sub").mkdir(parents=True)
    seen = []
    for name in ("one", "two", "one"):
        monkeypatch.chdir(tmp_path / name)
        seen.append(cp.spawn_sync("pwd", cwd="sub", encoding="utf-8").stdout)
    assert seen == [f"{tmp_path / name / 'sub'}\n" for name in ("one", "two", "one")]


def test_each_result_is_its_own(capfd: pytest.CaptureFixture[str]) -> None:
    for kwargs in ({}, {"encoding": "utf-8"}):
        silent = [cp.spawn_sync("true", **kwargs) for _ in range(3)]
        assert len({id(r.output) for r in silent}) == 3
        silent[0].output[1] = "changed"  # type: ignore[index]
        assert silent[1].output == silent[2].output == [None, "" if kwargs else b"", "" if kwargs else b""]
        loud = [cp.spawn_sync("echo", ["x"], **kwargs) for _ in range(3)]
        assert [r.stdout for r in loud] == ["x\n" if kwargs else b"x\n"] * 3
        assert len({r.pid for r in loud}) == 3
    failed = [cp.spawn_sync("cp-no-such-tool-xyz", ["a"]) for _ in range(2)]
    assert failed[0].error is not failed[1].error
    for r in failed:
        assert r.pid == 0 and r.output is None and r.error is not None
        assert r.error.code == "ENOENT" and r.error.spawnargs == ["a"]
        assert str(r.error) == "spawnSync cp-no-such-tool-xyz ENOENT"


def test_exec_sync_copies_stderr_and_raises_on_every_run(capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    for _ in range(3):
        with pytest.raises(cp.ExecError) as info:
            cp.exec_sync("echo oops >&2; exit 4")
        assert info.value.status == 4
    assert capfd.readouterr().err == "oops\n" * 3


@pytest.mark.parametrize(
    "call",
    [
        lambda: cp.spawn_sync("echo", ["a\0b"]),
        lambda: cp.spawn_sync("echo\0", []),
        lambda: cp.spawn_sync("echo", ["x"], encoding="no-such-codec"),
        lambda: cp.spawn_sync("echo", ["x"], stdio="nonsense"),
        lambda: cp.exec_file_sync("", ["x"]),
        lambda: cp.exec_sync("echo", stdio="ipc"),
    ],
    ids=["nul-in-arg", "nul-in-file", "bad-encoding", "bad-stdio", "empty-file", "ipc-in-sync"],
)
def test_a_call_that_raises_raises_every_time(call) -> None:  # type: ignore[no-untyped-def]
    kept = dict(_sync._prepared)
    first = pytest.raises((TypeError, ValueError), call).value
    second = pytest.raises((TypeError, ValueError), call).value
    assert type(first) is type(second) and str(first) == str(second)
    assert _sync._prepared.keys() == kept.keys()


def test_only_exact_str_shapes_are_kept() -> None:
    class Text(str):
        pass

    _sync._prepared.clear()
    cp.spawn_sync("echo", [Text("x")])
    cp.spawn_sync("echo", [b"x"])
    cp.spawn_sync("echo", ["x"], {"encoding": "utf-8"})
    cp.spawn_sync("echo", ["x"], env={"A": "1"})
    cp.spawn_sync("echo", ["x"], timeout=5)
    assert not _sync._prepared
    cp.spawn_sync("echo", ("x",), encoding="utf-8")
    assert len(_sync._prepared) == 1


def pid_mixups_in_threads(threads: int, calls: int) -> list[str]:
    """Run ``sh -c 'echo $$'`` ``calls`` times in each of ``threads``
    threads started at once; every child prints its own pid, so a result
    that shows another pid (or none) reveals state two runs shared."""
    errors: list[str] = []
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for _ in range(calls):
            r = cp.spawn_sync("sh", ["-c", "echo $$"], encoding="utf-8")
            if r.stdout != f"{r.pid}\n" or r.status != 0:
                errors.append(f"pid {r.pid} printed {r.stdout!r}, status {r.status}")

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_threads_running_one_shape_at_once_each_get_their_own_child() -> None:
    # A request shared by two runs at once would mix their results up.
    assert pid_mixups_in_threads(6, 25) == []


def test_what_is_kept_stays_bounded() -> None:
    for i in range(3 * _sync._PREPARED_MAX):
        assert cp.spawn_sync("true", [str(i)]).status == 0
        assert len(_sync._prepared) <= _sync._PREPARED_MAX
    assert cp.spawn_sync("true", ["0"]).status == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork() here")
def test_a_kept_request_runs_in_a_forked_copy() -> None:
    for _ in range(2):
        assert cp.spawn_sync("echo", ["kept"]).stdout == b"kept\n"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: run the kept shape, report, leave at once
        try:
            os.write(write_end, cp.spawn_sync("echo", ["kept"]).stdout or b"none")
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as got:
        assert got.read() == b"kept\n"
    assert os.waitpid(pid, 0)[1] == 0
    assert cp.spawn_sync("echo", ["kept"]).stdout == b"kept\n"
