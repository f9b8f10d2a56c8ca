"""ChildProcess on Windows (the private loop on an I/O completion port):
events and their order, streams, exec with its limits, kill; compared with
node.exe where Node defines the behaviour."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

import childproc
from winnode import requires_node, run_node

PY = sys.executable


def events_of(cp: Any) -> list[Any]:
    """Record a child's events as Node's test scripts do."""
    seen: list[Any] = []
    cp.on("spawn", lambda: seen.append(["spawn"]))
    cp.on("exit", lambda code, sig: seen.append(["exit", code, sig]))
    cp.on("close", lambda code, sig: seen.append(["close", code, sig]))
    cp.on("error", lambda err: seen.append(["error", err.code]))
    return seen


NODE_EVENTS = r"""
const child = cp.spawn(input.file, input.args, input.options || {});
const seen = [];
let text = '';
child.on('spawn', () => seen.push(['spawn']));
child.on('exit', (c, s) => seen.push(['exit', c, s]));
child.on('close', (c, s) => { seen.push(['close', c, s]); done(); });
child.on('error', (e) => seen.push(['error', e.code]));
if (child.stdout) child.stdout.on('data', (d) => { text += d; });
if (input.kill) child.on('spawn', () => seen.push(['kill', child.kill(input.kill)]));
if (input.stdin !== undefined) child.stdin.end(input.stdin);
function done() { out({events: seen, stdout: text}); }
"""


def ours(file: str, args: list[str], options: dict[str, Any] | None = None, kill: str | None = None,
         stdin: str | None = None) -> dict[str, Any]:
    child = childproc.spawn(file, args, **(options or {}))
    seen = events_of(child)
    chunks: list[bytes] = []
    if child.stdout is not None:
        child.stdout.on("data", chunks.append)
    if kill:
        child.on("spawn", lambda: seen.append(["kill", child.kill(kill)]))
    if stdin is not None:
        child.stdin.end(stdin.encode())
    child.wait()
    childproc.run()
    return {"events": seen, "stdout": b"".join(chunks).decode()}


def compare(file: str, args: list[str], options: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    mine = ours(file, args, options, **extra)
    node = run_node(NODE_EVENTS, {"file": file, "args": args, "options": options or {}, **extra})
    assert mine == node
    return mine


@requires_node
def test_events_and_output() -> None:
    got = compare(PY, ["-c", "print('hello'); raise SystemExit(3)"])
    assert got["events"] == [["spawn"], ["exit", 3, None], ["close", 3, None]]


@requires_node
def test_stdin_round_trip() -> None:
    got = compare(PY, ["-c", "import sys; sys.stdout.write(sys.stdin.read()[::-1])"], stdin="abc def")
    assert got["stdout"] == "fed cba"


@requires_node
def test_missing_program_is_an_error_event() -> None:
    got = compare("no-such-program-here", [])
    assert got["events"][0] == ["error", "ENOENT"]


@requires_node
def test_kill_reports_sigterm() -> None:
    got = compare(PY, ["-c", "import time; time.sleep(30)"], kill="SIGTERM")
    assert got["events"][-1] == ["close", None, "SIGTERM"]


@requires_node
def test_unsigned_exit_code() -> None:
    got = compare(PY, ["-c", "import os; os._exit(-1073741819)"])
    assert got["events"][-1] == ["close", 3221225477, None]


def test_large_stdin_and_stdout_round_trip() -> None:
    # 8 MiB through a child that echoes it: needs both directions at once
    # (a blocking write would deadlock against the child's full stdout).
    data = os.urandom(1 << 20) * 8
    child = childproc.spawn(PY, ["-c", "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)"])
    chunks: list[bytes] = []
    child.stdout.on("data", chunks.append)
    child.stdin.end(data)
    assert child.wait() == 0
    childproc.run()
    assert b"".join(chunks) == data


def test_stream_iteration_and_stderr() -> None:
    child = childproc.spawn(PY, ["-c", "import sys; print('a'); print('b'); sys.stderr.write('err')"])
    lines = list(child.stdout)
    err = child.stderr.read()
    assert b"".join(lines).replace(b"\r\n", b"\n") == b"a\nb\n"
    assert err == b"err"
    assert child.wait() == 0


def test_exec_and_exec_file() -> None:
    result = childproc.exec_file(PY, ["-c", "print('out')"]).result()
    assert result.stdout == "out\r\n"
    shell = childproc.exec("echo from shell").result()
    assert shell.stdout == "from shell\r\n"


@requires_node
def test_exec_errors_like_node() -> None:
    node = run_node(r"""
    const results = {};
    let pending = 3;
    const fin = () => { if (--pending === 0) out(results); };
    cp.execFile(input.py, ['-c', 'import time; time.sleep(30)'], {timeout: 300}, (e) => {
      results.timeout = [e.killed, e.signal, e.code]; fin(); });
    cp.execFile(input.py, ['-c', 'print("x" * 1000)'], {maxBuffer: 10}, (e, so) => {
      results.maxbuf = [e.code, e.signal, so.length]; fin(); });
    cp.exec('exit 5', (e) => { results.fail = [e.code, e.killed, e.signal, e.message.split('\n')[0]]; fin(); });
    """, {"py": PY})
    results: dict[str, Any] = {}
    with pytest.raises(childproc.ExecError) as info:
        childproc.exec_file(PY, ["-c", "import time; time.sleep(30)"], timeout=0.3).result()
    e = info.value
    results["timeout"] = [e.killed, e.signal, e.code]
    with pytest.raises(childproc.MaxBufferError) as info2:
        childproc.exec_file(PY, ["-c", "print('x' * 1000)"], max_buffer=10).result()
    m: Any = info2.value
    results["maxbuf"] = [m.code, m.signal, len(m.stdout)]
    with pytest.raises(childproc.ExecError) as info3:
        childproc.exec("exit 5").result()
    f = info3.value
    results["fail"] = [f.code, f.killed, f.signal, str(f).split("\n")[0]]
    assert results == node


def test_many_children_at_once() -> None:
    # 50: more than WaitForMultipleObjects' 64 would matter on Windows, but
    # wine on a small machine starts failing python.exe children with
    # STATUS_DLL_INIT_FAILED (0xC0000142) at about 80 at once.
    children = [childproc.spawn(PY, ["-c", f"print({i})"]) for i in range(50)]
    outs = [c.stdout.read() for c in children]
    assert [c.wait() for c in children] == [0] * 50
    assert outs == [f"{i}\r\n".encode() for i in range(50)]


def test_extra_pipe_and_ignore_slots() -> None:
    # stdio[3] as a pipe: the child finds it as CRT fd 3, as on POSIX.
    child = childproc.spawn(PY, ["-c", "import os; os.write(3, b'on fd 3'); print('out')"],
                            stdio=["ignore", "pipe", "ignore", "pipe"])
    assert child.stdin is None and child.stderr is None
    extra = child.stdio[3]
    got = extra.read()
    assert child.wait() == 0
    assert got == b"on fd 3"


def test_pipe_one_child_into_another() -> None:
    producer = childproc.spawn(PY, ["-c", "print('through two children')"])
    consumer = childproc.spawn(PY, ["-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"])
    producer.stdout.pipe(consumer.stdin)
    out = consumer.stdout.read()
    assert producer.wait() == 0 and consumer.wait() == 0
    assert out == b"THROUGH TWO CHILDREN\r\n"


def test_inherit_writes_to_our_stdout() -> None:
    # 'inherit': the child writes to this process's stdout itself; what
    # matters here is that it runs and ends normally with that handle.
    child = childproc.spawn(PY, ["-c", "print('inherited')"], stdio="inherit")
    assert child.stdout is None
    assert child.wait() == 0


def test_children_of_several_threads() -> None:
    # Each thread gets its own completion-port loop.
    import threading

    results: list[Any] = []

    def worker(i: int) -> None:
        child = childproc.spawn(PY, ["-c", f"print({i})"])
        out = child.stdout.read()
        results.append((child.wait(), out))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted((0, f"{i}\r\n".encode()) for i in range(6))

