"""Output nobody consumed when the child exited is kept, not lost.

Node's ``flushStdio`` resumes, on the tick after ``'exit'``, every output
stream nobody consumes, so that it reaches EOF and the child's ``'close'``
can come; the data goes to no listener.  Python code writes
``out = child.stdout.read(); err = child.stderr.read()``: while the first
``read()`` drives the loop the child exits, and stderr's data would be gone
before the second ``read()`` starts.  childproc's stream instead reads to EOF
and keeps what it reads (``Readable._drain_after_exit``, up to
``_readable.DRAIN_AFTER_EXIT_CAP``), closes its fd and is counted for the
child's ``'close'`` at once; its own ``'end'``/``'close'`` come after the kept
data has been consumed.

Checked here: sequential reads of several MiB on both pipes never lose a
byte; ``lines()`` and the other consumers after ``wait()``; a stream nobody
ever reads still lets ``'close'`` come (the ChildProcess events compared with
node's), keeps no loop alive and counts exactly once; the cap.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time

import pytest

import childproc as cp
from childproc._streams import readable as _readable
from test_spawn import check_invariants, run_node_cases, run_py, shape

WATCHDOG_SECONDS = 30
pytestmark = pytest.mark.usefixtures("watchdog")

MiB = 1 << 20
PY = sys.executable


def _pattern(tag: bytes, size: int) -> bytes:
    """``size`` bytes in which every 16-byte record names its offset: a lost,
    repeated or reordered chunk cannot go unnoticed."""
    n = size // 16 + 1
    return b"".join(b"%s%014d\n" % (tag, i * 16) for i in range(n))[:size]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("drain")
    out = {"out": _pattern(b"o", 5 * MiB), "err": _pattern(b"e", 4 * MiB + 12345), "small": _pattern(b"s", 100_000)}
    paths = {}
    for name, data in out.items():
        p = d / f"{name}.bin"
        p.write_bytes(data)
        paths[name] = str(p)
    return out, paths


def _events(c):
    ev = []
    for name in ("exit", "close"):
        c.on(name, lambda *a, name=name: ev.append(name))
    for label in ("stdout", "stderr"):
        s = getattr(c, label)
        for name in ("end", "close"):
            s.on(name, lambda *a, n=f"{label}:{name}": ev.append(n))
    return ev


# --------------------------------------------------------------------------
# sequential read() of both pipes


def test_sequential_reads_of_big_outputs_never_lose_a_byte(files):
    """``out = stdout.read(); err = stderr.read()``, 60 runs in three shapes:

    * ``held``: a background subshell writes 4 MiB to stderr after the child
      exited and holds stdout open until it is done, so ``stdout.read()``
      returns only once all of stderr was drained and kept, nobody reading;
    * ``joined``: the same without holding stdout: ``stderr.read()`` starts
      while the drain is under way and takes over from it;
    * ``small``: the child writes 100 KB to stderr (the pipe and read-ahead
      hold it) and then 5 MiB to stdout and exits: the race that lost stderr
      about one run in 15 when the drain discarded it.
    """
    data, paths = files
    shapes = {
        "held": (f"(cat {paths['err']} >&2; true) & exec cat {paths['out']}", data["err"]),
        "joined": (f"cat {paths['err']} >&2 & exec cat {paths['out']}", data["err"]),
        "small": (f"cat {paths['small']} >&2; exec cat {paths['out']}", data["small"]),
    }
    kept_whole = 0
    for i in range(60):
        kind = ("held", "joined", "small")[i % 3]
        script, expected_err = shapes[kind]
        c = cp.spawn("sh", ["-c", script])
        ev = _events(c)
        out = c.stdout.read()
        if kind == "held":
            kept_whole += c.stderr.fileno() == -1 and c.stderr.readable_length == len(expected_err)
        err = c.stderr.read()
        assert len(out) == len(data["out"]) and out == data["out"], (i, kind, len(out))
        assert len(err) == len(expected_err) and err == expected_err, (i, kind, len(err))
        assert c.stderr.discarded_after_exit == 0
        assert c.wait(timeout=20) == 0
        cp.run()
        assert ev.count("close") == 1 and ev.count("stderr:close") == 1 and ev.count("stdout:close") == 1, ev
        assert ev.index("exit") < ev.index("close"), ev
    assert kept_whole == 20  # the 'held' shape really kept all 4 MiB with nobody reading


def test_sequential_reads_with_an_encoding(files):
    data, paths = files
    c = cp.spawn("sh", ["-c", f"(cat {paths['err']} >&2; true) & exec cat {paths['small']}"])
    c.stderr.set_encoding("utf8")
    assert c.stdout.read() == data["small"]
    assert c.stderr.read() == data["err"].decode()
    assert c.wait(timeout=20) == 0


def test_sequential_awaited_reads(files):
    data, paths = files

    async def main():
        c = cp.spawn("sh", ["-c", f"(cat {paths['err']} >&2; true) & exec cat {paths['out']}"])
        out = await c.stdout.aread()
        err = await c.stderr.aread()
        assert await c == 0
        return out, err

    out, err = asyncio.run(main())
    assert out == data["out"] and err == data["err"]


# --------------------------------------------------------------------------
# every consumer gets the kept data after wait()


SCRIPT = "printf 'one\\ntwo\\n' >&2; echo out; printf 'three' >&2"
KEPT = b"one\ntwo\nthree"


def test_lines_after_wait():
    c = cp.spawn("sh", ["-c", SCRIPT])
    assert c.wait(timeout=10) == 0
    assert c.stderr.fileno() == -1  # the fd is closed: only the kept data is left
    assert c.stderr.readable and not c.stderr.closed
    assert c.stderr.readable_length == len(KEPT)
    assert list(c.stderr.lines()) == [b"one\n", b"two\n", b"three"]
    assert list(c.stdout.lines()) == [b"out\n"]
    assert c.stderr.closed and c.stdout.closed and c.stderr.readable_ended


def test_lines_after_wait_with_many_lines():
    c = cp.spawn(PY, ["-c", "import sys\nfor i in range(20000): print(i, file=sys.stderr)"])
    assert c.wait(timeout=20) == 0
    assert [int(x) for x in c.stderr.lines()] == list(range(20000))


@pytest.mark.parametrize("how", ["read", "iter", "data", "resume", "pipe_bytesio", "pipe_writable", "set_encoding"])
def test_every_consumer_gets_the_kept_data_then_end_and_close(how, tmp_path):
    c = cp.spawn("sh", ["-c", SCRIPT])
    ev = _events(c)
    assert c.wait(timeout=10) == 0
    assert ev == ["exit", "close"]  # the streams' 'end'/'close' wait for a consumer
    s = c.stderr
    got: list = []
    if how == "read":
        got.append(s.read())
    elif how == "iter":
        got.extend(s)
    elif how == "data":
        s.on("data", got.append)
    elif how == "resume":
        s.on("data", got.append)
        s.pause()
        assert s.readable_length == len(KEPT)
        s.resume()
    elif how == "pipe_bytesio":
        buf = io.BytesIO()
        s.pipe(buf)
        s.on("end", lambda: got.append(buf.getvalue()))
    elif how == "pipe_writable":
        # into another child's stdin (Node's pipe: the source's fd is closed already)
        cat = cp.spawn("cat")
        s.pipe(cat.stdin)
        got.append(cat.stdout.read())
        cat.wait(timeout=10)
    elif how == "set_encoding":
        s.set_encoding("utf8")
        got.append(s.read())
    cp.run()
    expected = KEPT.decode() if how == "set_encoding" else KEPT
    assert type(got[0]) is type(expected)
    assert expected[:0].join(got) == expected
    assert ev[-2:] == ["stderr:end", "stderr:close"], ev
    assert ev.count("close") == 1 and ev.count("stderr:close") == 1, ev
    assert s.closed and not s.readable


def test_data_listener_added_in_exit_is_nodes_resume():
    """A stream with a 'data' listener by the flush is resumed as Node does: no kept data."""
    c = cp.spawn("sh", ["-c", SCRIPT])
    got = []
    c.on("exit", lambda *_: c.stderr.on("data", got.append))
    ev = _events(c)
    assert c.wait(timeout=10) == 0
    cp.run()
    assert b"".join(got) == KEPT
    assert ev.index("stderr:end") < ev.index("close"), ev


def test_destroy_of_a_kept_stream_closes_once():
    c = cp.spawn("sh", ["-c", SCRIPT])
    ev = _events(c)
    assert c.wait(timeout=10) == 0
    c.stderr.destroy()
    cp.run()
    assert c.stderr.readable_length == 0 and c.stderr.closed
    assert ev.count("close") == 1 and ev.count("stderr:close") == 1 and "stderr:end" not in ev, ev


# --------------------------------------------------------------------------
# a stream nobody ever reads


DRAIN_CASES: dict = {}
UNREAD = "echo out; printf 'err1\\n' >&2; (sleep 0.3; printf 'late\\n' >&2) & exit 3"


def _register_node_case():
    js = """
    const T = trace('unread');
    T.child(cp.spawn('sh', ['-c', %s]), false);
    """ % repr(UNREAD)

    def py(trace, d):
        T = trace("unread")
        T.child(cp.spawn("sh", ["-c", UNREAD]), data=False)

    DRAIN_CASES["unread"] = (js, py)


_register_node_case()


def test_a_stream_nobody_reads_still_lets_close_come_as_in_node(tmp_path):
    """Nobody consumes stdout or stderr (no 'data' listener, no read()): the
    ChildProcess events are node's -- 'exit' then 'close', once, with the same
    arguments -- although a background process writes to stderr after the exit.
    The streams' own 'end'/'close' wait for a consumer (node: they come, after
    the data went to nobody); consuming later gives the data, then them."""
    node = run_node_cases(DRAIN_CASES, str(tmp_path))
    py, tracers = run_py("unread", str(tmp_path), DRAIN_CASES)
    check_invariants(node["unread"], "node")
    check_invariants(py["unread"], "childproc")
    n, p = shape(node["unread"]), shape(py["unread"])
    assert n["child"] == p["child"]
    assert [e[0] for e in p["child"]] == ["spawn", "exit", "close"]
    assert n["streams"]["stdout"] == n["streams"]["stderr"] == [["end"], ["close"]]
    assert p["streams"].get("stdout", []) == p["streams"].get("stderr", []) == []
    c = tracers["unread"].children[0]
    assert c.stdout.fileno() == -1 and c.stderr.fileno() == -1
    assert c.stderr.read() == b"err1\nlate\n" and c.stdout.read() == b"out\n"
    assert [e[0] for e in tracers["unread"].events[-4:]] == ["stderr:end", "stderr:close", "stdout:end", "stdout:close"]


def test_kept_stream_counts_once_while_another_stays_open():
    """stdout is kept and counted at its EOF; reading it later (its own 'close')
    must not count again while stderr is still open."""
    c = cp.spawn("sh", ["-c", "(sleep 0.5; printf 'late\\n' >&2) >/dev/null & echo out"])
    closes = []
    c.on("close", lambda *a: closes.append(a))
    c._reactor.run_until(lambda: c.exit_code is not None and c.stdout.fileno() == -1, 10)
    assert c.stdout.readable_length == 4 and not c.stdout.closed
    assert c.stdout.read() == b"out\n"
    assert c.stdout.closed and not closes  # stderr still open: no 'close' yet
    assert c.wait(timeout=10) == 0
    assert closes == [(0, None)]
    assert c.stderr.read() == b"late\n"
    cp.run()
    assert closes == [(0, None)]


def test_unread_kept_data_does_not_keep_the_interpreter_alive(tmp_path):
    """At exit childproc runs the loop until no ref'd child or stream is left:
    kept data nobody will read holds no ref (the fd is closed)."""
    script = tmp_path / "s.py"
    script.write_text(
        "import childproc as cp\n"
        "c = cp.spawn('sh', ['-c', 'head -c 300000 /dev/zero >&2 & echo out'])\n"
        "c.on('close', lambda code, sig: print('close', code, flush=True))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([PY, str(script)], capture_output=True, timeout=20, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"close 0\n"


def test_no_fd_left_behind():
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(20):
        c = cp.spawn("sh", ["-c", SCRIPT])
        c.wait(timeout=10)  # nobody reads: both fds are closed at EOF anyway
    after = set(os.listdir("/proc/self/fd"))
    assert len(after - before) <= 1, sorted(after - before)


# --------------------------------------------------------------------------
# the cap


def test_the_cap_keeps_a_prefix_and_counts_the_rest(monkeypatch, files):
    data, paths = files
    cap = 300_000  # above what paused read-ahead holds before the exit (64 KiB + a read)
    monkeypatch.setattr(_readable, "DRAIN_AFTER_EXIT_CAP", cap)
    c = cp.spawn("sh", ["-c", f"cat {paths['err']} >&2 & echo out"])
    ev = _events(c)
    assert c.wait(timeout=20) == 0  # 'close' comes: past the cap the drain discards
    assert ev == ["exit", "close"]
    s = c.stderr
    assert s.fileno() == -1
    assert s.readable_length == cap
    assert s.discarded_after_exit == len(data["err"]) - cap
    err = s.read()
    assert err == data["err"][:cap]  # a clean prefix: nothing missing inside it
    assert c.stdout.read() == b"out\n" and c.stdout.discarded_after_exit == 0


def test_the_cap_applies_only_to_data_nobody_consumes(monkeypatch, files):
    """Only what is buffered with nobody consuming counts against the cap: a
    'data' listener by the flush gets Node's resume(), and an iterator that
    joins the drain paces it with the high-water mark again, so a reader
    slower than the child loses nothing."""
    data, paths = files
    monkeypatch.setattr(_readable, "DRAIN_AFTER_EXIT_CAP", 300_000)
    c = cp.spawn("sh", ["-c", f"cat {paths['err']} >&2 & exec echo out"])
    got = []
    c.on("exit", lambda *_: c.stderr.on("data", got.append))  # consumed: Node's path
    assert c.wait(timeout=20) == 0
    assert b"".join(got) == data["err"] and c.stderr.discarded_after_exit == 0

    c = cp.spawn("sh", ["-c", f"cat {paths['err']} >&2 & exec echo out"])
    c._reactor.run_until(lambda: c.stderr._drain_cap is not None, 10)  # the drain has begun
    chunks = []
    for chunk in c.stderr:
        chunks.append(chunk)
        time.sleep(0.002)  # slower than cat: without pacing the drain would pass the cap
        assert c.stderr.readable_length < 300_000
    assert b"".join(chunks) == data["err"] and c.stderr.discarded_after_exit == 0
    assert c.wait(timeout=20) == 0


def test_an_iterator_left_early_does_not_stop_the_drain(monkeypatch, files):
    data, paths = files
    c = cp.spawn("sh", ["-c", f"cat {paths['err']} >&2 & exec echo out"])
    c._reactor.run_until(lambda: c.stderr._drain_cap is not None, 10)
    first = next(iter(c.stderr))  # paces the drain, then leaves
    assert c.wait(timeout=20) == 0  # the drain went on to EOF: 'close' came
    assert first + c.stderr.read() == data["err"]
