"""Readable/Writable: Node's stream contract on pipe fds, the C pump, iteration.

The streams are tested on their own, without ``cp.spawn``: on plain
``os.pipe2`` pairs and on children started with :mod:`subprocess`, whose pipe
fd is handed to the stream.  The private loop is driven with ``run_until``;
the asyncio tests run under ``asyncio.run`` with the AsyncioReactor.  Where
Node defines the behaviour (event orders, error codes and messages) the same
scenario runs under ``node`` and the traces are compared.

No assertion here depends on speed; waits are bounded only so that a bug
fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import io
import json
import os
import select
import signal
import subprocess
import sys

import pytest

from childproc._streams import readable as _readable
from childproc._runtime.emitter import EventEmitter
from childproc._runtime.loop import PrivateLoop, current_reactor
from childproc import LineTooLongError, Readable, StreamError, Writable

from nodecmp import node_result, requires_node

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
WAIT = 30.0  # seconds: only a broken implementation gets anywhere near it


# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def loop():
    lp = PrivateLoop()
    yield lp
    lp.close()


def run(lp: PrivateLoop, cond, timeout: float = WAIT) -> None:
    assert lp.run_until(cond, timeout), "condition not reached"


def settle(lp: PrivateLoop, seconds: float = 0.05) -> None:
    """Let the loop run for a moment (nothing asserted about the time)."""
    lp.run_until(lambda: False, seconds)


def poll(lp: PrivateLoop, cond, timeout: float = WAIT) -> None:
    """Like run(), for conditions no loop event announces (a C pump's progress)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        settle(lp, 0.002)


def pipe() -> tuple[int, int]:
    return os.pipe()  # close-on-exec (PEP 446); macOS has no os.pipe2


def nonblock(fd: int) -> int:
    os.set_blocking(fd, False)
    return fd


def child_out(args: list[str], **kw) -> tuple[subprocess.Popen, int]:
    """A child whose stdout is a pipe; the parent's end, non-blocking, is ours."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, **kw)
    fd = os.dup(proc.stdout.fileno())
    proc.stdout.close()
    return proc, nonblock(fd)


def child_in(args: list[str], **kw) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, **kw)
    fd = os.dup(proc.stdin.fileno())
    proc.stdin.close()
    return proc, nonblock(fd)


def fionread(fd: int) -> int:
    import termios

    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def recorder(stream: EventEmitter, events: tuple[str, ...], log: list) -> None:
    for ev in events:
        stream.on(ev, lambda *a, ev=ev: log.append(ev))


def collapse(log: list) -> list:
    """Consecutive 'data' entries as one: chunking is the kernel's business."""
    out: list = []
    for item in log:
        if not (out and item == "data" and out[-1] == "data"):
            out.append(item)
    return out


def node_log(script: str) -> object:
    """Run ``script`` under node; it fills the array ``log``, printed at exit."""
    prelude = (
        "const cp = require('child_process'); const stream = require('stream');\n"
        "const log = [];\n"
        "process.on('exit', () => process.stdout.write('\\n' + JSON.stringify(log)));\n"
    )
    return node_result(prelude + script)


PY = sys.executable


# --------------------------------------------------------------------------
# paused mode and backpressure


def test_paused_reads_ahead_to_high_water_mark_then_blocks_the_writer(loop):
    r, w = pipe()
    nonblock(w)
    hwm = 16 * 1024
    stream = Readable(nonblock(r), loop, high_water_mark=hwm)
    capacity = fcntl.fcntl(w, F_GETPIPE_SZ)
    written = 0
    for _ in range(5):  # fill the pipe, let the stream read, fill again ...
        while True:
            try:
                written += os.write(w, b"x" * 4096)
            except BlockingIOError:
                break
        settle(loop)
    # The stream stopped reading: what it holds plus the full pipe is all
    # the writer could put out (one read may overshoot the mark by a chunk).
    assert stream.readable_length >= hwm
    assert stream.readable_length <= hwm + capacity
    assert written == stream.readable_length + fionread(r)
    assert stream.readable_flowing is None and not stream.is_paused()
    # Consuming frees the writer.
    got = bytearray()
    stream.on("data", got.extend)
    run(loop, lambda: fionread(r) == 0)
    os.write(w, b"y")
    os.close(w)
    run(loop, lambda: stream.closed)
    assert len(got) == written + 1 and got.endswith(b"xy")
    assert loop.refs == 0


def test_child_blocks_until_resume(loop):
    # 3 MB and nobody reading: the child must stay blocked (Node §1.4).
    proc, fd = child_out([PY, "-c", "import sys; sys.stdout.buffer.write(b'z' * 3_000_000)"])
    stream = Readable(fd, loop)
    settle(loop, 0.3)
    assert proc.poll() is None, "the child should be blocked on a full pipe"
    assert 64 * 1024 <= stream.readable_length < 3_000_000
    total = [0]
    stream.on("data", lambda chunk: total.__setitem__(0, total[0] + len(chunk)))
    run(loop, lambda: stream.closed)
    assert proc.wait() == 0 and total[0] == 3_000_000


def test_pause_keeps_buffering_up_to_the_mark_and_resume_flows_again(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop, high_water_mark=1024)
    log: list = []
    recorder(stream, ("pause", "resume", "end", "close"), log)
    got = bytearray()
    stream.on("data", lambda c: (got.extend(c), log.append("data")))
    os.write(w, b"a" * 10)
    run(loop, lambda: len(got) == 10)
    stream.pause()
    assert stream.is_paused() and stream.readable_flowing is False
    os.write(w, b"b" * 5000)
    run(loop, lambda: stream.readable_length == 5000)
    assert len(got) == 10
    stream.resume()
    os.close(w)
    run(loop, lambda: stream.closed)
    assert bytes(got) == b"a" * 10 + b"b" * 5000
    assert collapse(log) == ["resume", "data", "pause", "resume", "data", "end", "close"]


@requires_node
def test_flowing_event_order_matches_node(loop):
    script = "printf abc; sleep 0.05; printf def"
    expected = node_log(
        f"const c = cp.spawn('sh', ['-c', {json.dumps(script)}]);"
        "for (const ev of ['pause','resume','end','close']) c.stdout.on(ev, () => log.push(ev));"
        "c.stdout.on('data', d => log.push('data'));"
    )
    proc, fd = child_out(["sh", "-c", script])
    stream = Readable(fd, loop)
    log: list = []
    recorder(stream, ("pause", "resume", "end", "close"), log)
    stream.on("data", lambda d: log.append("data"))
    run(loop, lambda: stream.closed)
    proc.wait()
    assert collapse(log) == collapse(expected) == ["resume", "data", "end", "close"]


@requires_node
def test_explicit_pause_then_data_listener_stays_paused_like_node(loop):
    script = "printf abc; sleep 0.6"
    expected = node_log(
        f"const c = cp.spawn('sh', ['-c', {json.dumps(script)}]);"
        "for (const ev of ['pause','resume','end','close']) c.stdout.on(ev, () => log.push(ev));"
        "c.stdout.pause(); c.stdout.on('data', d => log.push('data:' + d));"
        "setTimeout(() => { log.push('timer'); c.stdout.resume(); }, 200);"
    )
    proc, fd = child_out(["sh", "-c", script])
    stream = Readable(fd, loop)
    log: list = []
    recorder(stream, ("pause", "resume", "end", "close"), log)
    stream.pause()
    stream.on("data", lambda d: log.append("data:" + d.decode()))
    run(loop, lambda: stream.readable_length == 3)
    settle(loop, 0.1)
    log.append("timer")
    stream.resume()
    run(loop, lambda: stream.closed)
    proc.wait()
    assert log == expected == ["pause", "timer", "resume", "data:abc", "end", "close"]


@requires_node
def test_end_without_consumer_only_when_nothing_is_buffered(loop):
    expected = node_log(
        "const a = new stream.Readable({read() {}});"
        "const b = new stream.Readable({read() {}});"
        "for (const ev of ['end', 'close']) { a.on(ev, () => log.push('a ' + ev)); b.on(ev, () => log.push('b ' + ev)); }"
        "a.push(null); b.push('hi'); b.push(null);"
        "a.read(0); b.read(0);"  # what net.Socket (a child's stdout) does at creation
        "setTimeout(() => { log.push('timer'); b.resume(); }, 50);"
    )
    ra, wa = pipe()
    rb, wb = pipe()
    a, b = Readable(nonblock(ra), loop), Readable(nonblock(rb), loop)
    log: list = []
    for ev in ("end", "close"):
        a.on(ev, lambda ev=ev: log.append("a " + ev))
        b.on(ev, lambda ev=ev: log.append("b " + ev))
    os.close(wa)
    os.write(wb, b"hi")
    os.close(wb)
    run(loop, lambda: a.closed and b._eof)
    settle(loop)
    log.append("timer")
    b.resume()
    run(loop, lambda: b.closed)
    assert log == expected == ["a end", "a close", "timer", "b end", "b close"]


def test_data_listener_as_decorator_starts_flowing(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    got = []

    @stream.on("data")
    def ondata(chunk):
        got.append(chunk)

    assert stream.readable_flowing is True
    os.write(w, b"deco")
    os.close(w)
    run(loop, lambda: stream.closed)
    assert got == [b"deco"]


def test_resume_without_listener_discards_and_ends(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    os.write(w, b"lost")
    os.close(w)
    stream.resume()
    run(loop, lambda: stream.closed)
    assert stream.readable_ended and not stream.readable and stream.readable_length == 0


# --------------------------------------------------------------------------
# set_encoding

DECODE_CASES = [
    [[0xE2, 0x82], [0xAC]],
    [[0xE2], [0x82], [0xAC, 0x41]],
    [[0xF0, 0x9F], [0x98, 0x80, 0x41]],
    [[0xFF, 0x41]],
    [[0x41, 0xC3]],
    [[0xE2, 0x82], [0x78]],
    [[0xED, 0xA0, 0x80]],
    [[0xF4, 0x90, 0x80, 0x80]],
    [[0xC0, 0xAF]],
    [[0x41, 0xF0, 0x9F], [0x98]],
    [[0xE2, 0x41], [0x82]],
    [[0xF0], [0x9F], [0x41]],
]


def _decode_through_stream(loop, pieces, encoding="utf8") -> str:
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    stream.set_encoding(encoding)
    out: list[str] = []
    stream.on("data", out.append)
    for piece in pieces:
        os.write(w, bytes(piece))
        run(loop, lambda: fionread(r) == 0)  # read as its own chunk
        settle(loop, 0.001)
    os.close(w)
    run(loop, lambda: stream.closed)
    assert all(isinstance(s, str) for s in out)
    return "".join(out)


@requires_node
def test_set_encoding_utf8_split_and_invalid_like_node_string_decoder(loop):
    js = (
        "const {StringDecoder} = require('string_decoder');"
        f"const cases = {json.dumps(DECODE_CASES)};"
        "process.stdout.write(JSON.stringify(cases.map(c => { const d = new StringDecoder('utf8');"
        " let s = ''; for (const p of c) s += d.write(Buffer.from(p)); return s + d.end(); })));"
    )
    expected = node_result(js)
    got = [_decode_through_stream(loop, case) for case in DECODE_CASES]
    assert got == expected


def test_set_encoding_other_encodings_and_buffered_data(loop):
    assert _decode_through_stream(loop, [[1, 2], [3, 4]], "base64") == "AQIDBA=="
    assert _decode_through_stream(loop, [[0xFB, 0xFF], [0xFE, 4]], "base64url") == "-__-BA"
    assert _decode_through_stream(loop, [[0x3D], [0xD8, 0x41]], "hex") == "3dd841"
    assert _decode_through_stream(loop, [[0xE9, 0x41]], "latin1") == "\xe9A"
    assert _decode_through_stream(loop, [[0xE9, 0x41]], "ascii") == "iA"
    assert _decode_through_stream(loop, [[0x41, 0], [0x3D], [0xD8, 0, 0xDE]], "ucs2") == "A\U0001f600"
    assert _decode_through_stream(loop, [[0x82, 0xA0], [0x82]], "shift_jis") == "\u3042\ufffd"
    # set_encoding after data was buffered decodes the buffer too (Node does).
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    os.write(w, "héllo €".encode()[:-1])
    run(loop, lambda: stream.readable_length > 0 and fionread(r) == 0)
    stream.set_encoding("utf-8")
    assert stream.readable_length == len("héllo ") and stream.readable_encoding == "utf-8"
    os.write(w, "€".encode()[-1:])
    os.close(w)
    assert stream.read() == "héllo €"
    with pytest.raises(ValueError) as info:
        Readable(nonblock(pipe()[0]), loop).set_encoding("no-such-codec")
    assert info.value.code == "ERR_UNKNOWN_ENCODING"


# --------------------------------------------------------------------------
# destroy, errors, ref


def test_destroy_emits_error_then_close_and_releases_the_ref(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    assert loop.refs == 1
    log: list = []
    stream.on("error", lambda e: log.append(("error", str(e))))
    stream.on("close", lambda: log.append("close"))
    stream.on("end", lambda: log.append("end"))
    stream.destroy(ValueError("boom"))
    assert stream.destroyed and not stream.readable and stream.fileno() == -1
    run(loop, lambda: stream.closed)
    assert log == [("error", "boom"), "close"] and loop.refs == 0
    os.close(w)


def test_unref_and_ref(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    assert loop.refs == 1
    stream.unref()
    assert loop.refs == 0
    stream.ref()
    stream.ref()
    assert loop.refs == 1
    os.close(w)
    stream.resume()
    run(loop, lambda: stream.closed)
    assert loop.refs == 0


def test_pipe_grows_after_full_reads_and_survives_quota_refusal(loop, monkeypatch):
    # 1 MiB writes fill the pipe however fast the loop is, so the reads come
    # back full and the stream grows the pipe.
    proc, fd = child_out(["dd", "if=/dev/zero", "bs=1M", "count=20", "status=none"])
    stream = Readable(fd, loop)
    sizes = set()
    stream.on("data", lambda c: sizes.add(fcntl.fcntl(fd, F_GETPIPE_SZ)) if fd == stream.fileno() else None)
    run(loop, lambda: stream.closed)
    proc.wait()
    assert max(sizes) == 1 << 20 or not hasattr(fcntl, "F_SETPIPE_SZ")

    class Refusing:  # the per-user pipe quota is used up: EPERM
        @staticmethod
        def fcntl(*a):
            raise PermissionError(errno.EPERM, "quota")

    monkeypatch.setattr(_readable, "fcntl", Refusing)
    proc, fd = child_out(["head", "-c", "5M", "/dev/zero"])
    stream = Readable(fd, loop)
    assert len(stream.read()) == 5 << 20
    assert proc.wait() == 0


# --------------------------------------------------------------------------
# Node-style pipe()


class SlowSink(EventEmitter):
    """A pure-Python writable: accepts 2 chunks, then says False until drained."""

    def __init__(self, loop: PrivateLoop) -> None:
        super().__init__()
        self.loop = loop
        self.data = bytearray()
        self.pending = 0
        self.ended = False
        self.falses = 0

    def write(self, chunk):
        self.data.extend(chunk)
        self.pending += 1
        if self.pending >= 2:
            self.falses += 1
            self.loop.call_later(0.002, self._drain)
            return False
        return True

    def _drain(self):
        self.pending = 0
        self.emit("drain")

    def end(self):
        self.ended = True
        self.emit("finish")


def test_pipe_through_python_pauses_on_false_and_resumes_on_drain(loop):
    proc, fd = child_out([PY, "-c", "import sys\nfor i in range(200): sys.stdout.write(f'{i:08}' * 512)"])
    src = Readable(fd, loop, high_water_mark=4096)
    sink = SlowSink(loop)
    log: list = []
    recorder(src, ("pause", "resume", "end", "close"), log)
    sink.on("pipe", lambda s: log.append("pipe"))
    sink.on("unpipe", lambda s: log.append("unpipe"))
    assert src.pipe(sink) is sink
    run(loop, lambda: src.closed and sink.ended)
    proc.wait()
    assert bytes(sink.data) == b"".join(f"{i:08}".encode() * 512 for i in range(200))
    # One 'pause' per False, and one when the finished sink unpipes (Node's unpipe pauses).
    # (The last one is lost when the stream was already paused at the end.)
    assert sink.falses > 0 and sink.falses <= log.count("pause") <= sink.falses + 1
    assert log[:2] == ["pipe", "resume"]
    tail = log[log.index("end") :]
    assert [e for e in tail if e != "pause"] == ["end", "unpipe", "close"]


def test_pipe_with_data_listener_goes_through_python_to_a_slow_writable(loop):
    # A 'data' listener must see the bytes too, so no pump: write()/'drain'.
    proc, fd = child_out(["head", "-c", "3000000", "/dev/urandom"])
    src = Readable(fd, loop)
    seen = [0]
    src.on("data", lambda c: seen.__setitem__(0, seen[0] + len(c)))
    r, w = pipe()
    dest = Writable(nonblock(w), loop)
    log: list = []
    recorder(dest, ("drain", "finish", "close"), log)
    src.on("pause", lambda: log.append("src pause"))
    src.pipe(dest)
    assert src._pump is None
    got = bytearray()

    def slow_reader():
        try:
            got.extend(os.read(r, 16384))
        except BlockingIOError:
            pass
        if not dest.closed or fionread(r):
            loop.call_later(0.0005, slow_reader)

    nonblock(r)
    loop.call_later(0.01, slow_reader)
    run(loop, lambda: dest.closed and src.closed and fionread(r) == 0)
    while chunk := os.read(r, 1 << 20):
        got.extend(chunk)
    proc.wait()
    assert len(got) == seen[0] == 3000000
    assert "src pause" in log and "drain" in log
    assert [e for e in log if e in ("finish", "close")] == ["finish", "close"]
    os.close(r)


def test_pipe_to_object_without_events_or_fd(loop):
    r, w = pipe()
    src = Readable(nonblock(r), loop)
    sink = io.BytesIO()
    src.pipe(sink)
    os.write(w, b"into bytesio")
    os.close(w)
    run(loop, lambda: src.closed)
    assert sink.getvalue() == b"into bytesio" and not sink.closed


def test_unpipe_node_style_pauses_and_emits_unpipe(loop):
    r, w = pipe()
    src = Readable(nonblock(r), loop)
    sink = SlowSink(loop)
    src.on("data", lambda c: None)  # forces the Python road
    events: list = []
    sink.on("unpipe", lambda s: events.append(("unpipe", s is src)))
    src.pipe(sink)
    os.write(w, b"1")
    run(loop, lambda: sink.data == b"1")
    src.unpipe(sink)
    assert events == [("unpipe", True)] and src.is_paused()
    os.write(w, b"2")
    run(loop, lambda: src.readable_length == 1)
    assert sink.data == b"1" and not sink.ended
    os.close(w)
    src.destroy()


# --------------------------------------------------------------------------
# the C pump


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pump") / "100M"
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(100):
            chunk = block[i:] + block[:i]
            f.write(chunk)
            digest.update(chunk)
    return path, digest.hexdigest()


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def test_pump_pipe_to_writable_100mib(loop, big_file, tmp_path):
    path, digest = big_file
    src_proc, fd = child_out(["cat", str(path)])
    out = tmp_path / "out"
    with open(out, "wb") as sink_file:
        dst_proc, wfd = child_in(["cat"], stdout=sink_file)
    src, dest = Readable(fd, loop), Writable(wfd, loop)
    log: list = []
    recorder(src, ("resume", "end", "close"), log)
    recorder(dest, ("pipe", "unpipe", "finish", "close"), log)
    src.on("data", lambda c: log.append("data"))  # added after pipe(): pump stays
    src.off("data", src.listeners("data")[0])
    assert src.pipe(dest) is dest
    assert src._pump is not None, "both ends are fds: the C pump must serve"
    run(loop, lambda: src.closed and dest.closed)
    assert dst_proc.wait() == 0 and src_proc.wait() == 0
    assert sha256_of(out) == digest
    assert "data" not in log
    assert log.index("end") < log.index("close") and log.index("finish") < len(log)
    assert src.readable_ended and dest.writable_finished and loop.refs == 0


def test_pump_pipe_to_file_keeps_read_ahead_order_and_leaves_file_open(loop, tmp_path):
    r, w = pipe()
    src = Readable(nonblock(r), loop)
    os.write(w, b"read-ahead|")
    run(loop, lambda: src.readable_length == 11)
    f = open(tmp_path / "out", "wb")
    f.write(b"user-first|")  # still in the file object's buffer
    src.pipe(f)
    assert src._pump is not None and src.readable_length == 0
    writer = subprocess.Popen([PY, "-c", f"import os; os.write({w}, b'x' * 5_000_000)"], pass_fds=[w])
    os.close(w)
    run(loop, lambda: src.closed)
    writer.wait()
    assert not f.closed
    f.write(b"|after")
    f.close()
    data = (tmp_path / "out").read_bytes()
    assert data == b"user-first|read-ahead|" + b"x" * 5_000_000 + b"|after"


def test_pump_to_a_writable_with_queued_data_keeps_every_byte_in_order(loop):
    r, w = pipe()
    src = Readable(nonblock(r), loop)
    os.write(w, b"<read-ahead>")
    run(loop, lambda: src.readable_length == 12)
    dr, dw = pipe()
    dest = Writable(nonblock(dw), loop)
    capacity = fcntl.fcntl(dw, F_GETPIPE_SZ)
    dest.write(b"q" * (capacity + 100))  # the pipe is full: 100 bytes stay queued
    assert dest.writable_length == 100
    src.pipe(dest)
    dest.write(b"<user>")  # written while the pump holds the fd: goes out after it
    feeder = subprocess.Popen([PY, "-c", f"import os; os.write({w}, b'p' * 300_000)"], pass_fds=[w])
    os.close(w)
    got = bytearray()
    nonblock(dr)

    def drain() -> None:
        try:
            got.extend(os.read(dr, 1 << 20))
        except BlockingIOError:
            pass

    loop.add_reader(dr, drain)
    run(loop, lambda: dest.closed and src.closed)
    run(loop, lambda: len(got) == capacity + 100 + 12 + 300_000 + 6)
    loop.remove_reader(dr)
    feeder.wait()
    assert bytes(got) == b"q" * (capacity + 100) + b"<read-ahead>" + b"p" * 300_000 + b"<user>"
    os.close(dr)


def test_pump_to_a_socket(loop):
    import socket

    a, b = socket.socketpair()
    proc, fd = child_out(["head", "-c", "3000000", "/dev/urandom"])
    src = Readable(fd, loop)
    src.pipe(a)
    assert src._pump is not None
    got = bytearray()
    b.setblocking(False)

    def drain() -> None:
        try:
            while chunk := b.recv(1 << 20):
                got.extend(chunk)
        except BlockingIOError:
            pass

    loop.add_reader(b.fileno(), drain)
    run(loop, lambda: src.closed)
    a.close()  # ours to close: pipe() leaves raw objects open
    run(loop, lambda: len(got) == 3000000)
    loop.remove_reader(b.fileno())
    b.close()
    proc.wait()


def test_pump_cancel_by_unpipe_then_paused_reading(loop):
    r, w = pipe()
    src = Readable(nonblock(r), loop)
    dr, dw = pipe()
    dest = Writable(nonblock(dw), loop)
    events: list = []
    dest.on("unpipe", lambda s: events.append("unpipe"))
    src.on("pause", lambda: events.append("pause"))
    src.pipe(dest)
    os.write(w, b"A" * 1000)
    poll(loop, lambda: fionread(dr) == 1000)
    src.unpipe(dest)
    run(loop, lambda: "unpipe" in events)
    assert src._pump is None and src.is_paused() and not dest.writable_ended
    os.write(w, b"B" * 10)
    run(loop, lambda: src.readable_length == 10)
    assert fionread(dr) == 1000 and os.read(dr, 2000) == b"A" * 1000
    # The destination is usable again from Python, and so is the source.
    dest.end(b"tail")
    os.close(w)
    assert src.read() == b"B" * 10
    run(loop, lambda: dest.closed)
    assert os.read(dr, 100) == b"tail"
    os.close(dr)


def test_pump_cancel_mid_transfer_of_a_big_stream(loop, big_file, tmp_path):
    path, _ = big_file
    slow_cat = (
        "import sys, time\n"
        f"f = open({str(path)!r}, 'rb')\n"
        "while chunk := f.read(1 << 20):\n"
        "    sys.stdout.buffer.write(chunk); sys.stdout.flush(); time.sleep(0.005)\n"
    )
    proc, fd = child_out([PY, "-c", slow_cat], stderr=subprocess.DEVNULL)
    src = Readable(fd, loop)
    f = open(tmp_path / "partial", "wb")
    src.pipe(f)
    poll(loop, lambda: os.fstat(f.fileno()).st_size > 1 << 20)
    src.destroy()
    log: list = []
    src.on("close", lambda: log.append("close"))
    src.on("end", lambda: log.append("end"))
    run(loop, lambda: src.closed)
    assert log == ["close"] and src.fileno() == -1
    size = os.fstat(f.fileno()).st_size
    assert 0 < size < 100 << 20 and not f.closed
    f.close()
    proc.wait()  # cat died of SIGPIPE or finished writing: either way it is gone
    assert proc.returncode in (0, -signal.SIGPIPE, 1)
    assert (tmp_path / "partial").read_bytes() == path.read_bytes()[:size]


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="pipe capacities can be set on Linux only")
def test_pump_grows_backed_up_pipes_but_not_quiet_ones(loop):
    # A slow consumer: bytes pile up in both pipes, the pump grows them.
    proc, fd = child_out(["head", "-c", "50M", "/dev/zero"])
    slow = "import os, time\nwhile os.read(0, 65536): time.sleep(0.001)"
    consumer, wfd = child_in([PY, "-c", slow])
    src, dest = Readable(fd, loop), Writable(wfd, loop)
    src.pipe(dest)
    poll(loop, lambda: fcntl.fcntl(wfd, F_GETPIPE_SZ) == 1 << 20 or src.closed)
    assert fcntl.fcntl(wfd, F_GETPIPE_SZ) == 1 << 20 and fcntl.fcntl(fd, F_GETPIPE_SZ) == 1 << 20
    src.destroy()
    dest.destroy()
    run(loop, lambda: src.closed and dest.closed)
    proc.wait()
    consumer.wait()
    # A quiet stream keeps its small pipes (the per-user quota is shared).
    r, w = pipe()
    dr, dw = pipe()
    sizes = fcntl.fcntl(r, F_GETPIPE_SZ), fcntl.fcntl(dw, F_GETPIPE_SZ)
    src, dest = Readable(nonblock(r), loop), Writable(nonblock(dw), loop)
    src.pipe(dest)
    settle(loop, 0.2)
    os.write(w, b"ping")
    poll(loop, lambda: fionread(dr) == 4)
    assert (fcntl.fcntl(r, F_GETPIPE_SZ), fcntl.fcntl(dw, F_GETPIPE_SZ)) == sizes
    os.close(w)
    run(loop, lambda: src.closed and dest.closed)
    assert os.read(dr, 10) == b"ping"
    os.close(dr)


def test_pump_epipe_destroys_the_writable_and_pauses_the_source(loop):
    proc, fd = child_out(["yes"])
    src = Readable(fd, loop)
    dr, dw = pipe()
    dest = Writable(nonblock(dw), loop)
    errors: list = []
    dest.on("error", errors.append)
    src.pipe(dest)
    poll(loop, lambda: fionread(dr) > 0)
    os.close(dr)  # the reader goes away
    run(loop, lambda: dest.closed)
    assert len(errors) == 1 and errors[0].code == "EPIPE" and str(errors[0]) == "write EPIPE"
    assert isinstance(errors[0], BrokenPipeError) and errors[0].syscall == "write"
    assert not src.destroyed and src.is_paused()
    run(loop, lambda: src.readable_length >= 64 * 1024)
    src.destroy()
    proc.wait()
    run(loop, lambda: src.closed)


# --------------------------------------------------------------------------
# handing the fd to another child


def test_handover_keeps_off_the_fd_then_closes_it_when_nobody_consumes(loop):
    producer, fd = child_out(["yes"])
    stream = Readable(fd, loop)
    log: list = []
    stream.on("close", lambda: log.append("close"))
    consumer = subprocess.Popen(["head", "-c", "10"], stdin=stream._childproc_fd(), stdout=subprocess.PIPE)
    stream._handed_over()
    # The stream stays the parent's (Node) but reads nothing while borrowed.
    assert stream.used_as_stdio and not stream.destroyed and stream.fileno() == fd
    out = consumer.communicate()[0]
    assert out == b"y\ny\ny\ny\ny\n"
    assert stream.readable_length == 0 and os.get_blocking(fd)
    # The borrower exited (its ChildProcess says so) and nobody consumes the
    # stream: our read end is closed, so yes gets EPIPE/SIGPIPE and ends.
    stream._lend_ended()
    run(loop, lambda: stream.closed)
    assert producer.wait(timeout=WAIT) == -signal.SIGPIPE
    assert log == ["close"] and loop.refs == 0
    with pytest.raises(StreamError) as info:
        stream.read()
    assert info.value.code == "ERR_STREAM_PREMATURE_CLOSE"
    with pytest.raises(StreamError):
        stream._childproc_fd()


def test_handover_then_read_by_the_parent_once_the_borrower_is_done(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    fd = stream._childproc_fd()
    stream._handed_over()
    os.write(w, b"later")
    assert stream.readable_length == 0  # the borrower's input, not ours
    chunks: list = []
    stream.on("data", chunks.append)  # the parent consumes: it keeps the stream
    stream._lend_ended()
    run(loop, lambda: chunks)
    assert chunks == [b"later"] and not os.get_blocking(fd)
    os.close(w)
    run(loop, lambda: stream.closed)


def test_handover_back_to_a_stream_whose_writer_has_ended_keeps_it_for_the_drain(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    stream._owner_ended = lambda: True  # its child ended; the exit is not delivered yet
    stream._childproc_fd()
    stream._handed_over()
    os.write(w, b"left over")
    os.close(w)
    stream._lend_ended()
    settle(loop)
    assert not stream.destroyed  # not closed: the owner's drain after exit comes
    kept: list = []
    stream._drain_after_exit(lambda *_: kept.append("counted"))
    run(loop, lambda: kept)
    assert stream.read() == b"left over"


def test_handover_fd_is_blocking_for_the_child_and_reclaimed_if_the_spawn_fails(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    fd = stream._childproc_fd()
    assert os.get_blocking(fd)  # what the new child's stdin must be
    # ... the spawn failed: nobody calls _handed_over(); the stream lives on.
    os.write(w, b"still mine")
    os.close(w)
    assert stream.read() == b"still mine"
    r2, w2 = pipe()
    dest = Writable(nonblock(w2), loop)
    assert os.get_blocking(dest._childproc_fd())
    dest.write(b"x")
    assert not os.get_blocking(w2)
    dest.destroy()
    os.close(r2)


def test_handover_of_a_writable_stays_the_parents(loop):
    r, w = pipe()
    dest = Writable(nonblock(w), loop)
    # Lent twice (two children write into it), as Node's merge-stdouts-into-cat.
    one = subprocess.Popen(["sh", "-c", "echo one"], stdout=dest._childproc_fd())
    dest._handed_over()
    two = subprocess.Popen(["sh", "-c", "echo two"], stdout=dest._childproc_fd())
    dest._handed_over()
    assert not dest.destroyed and dest.fileno() == w
    one.wait()
    two.wait()
    dest.write(b"mine\n")  # waits while a borrower may still write
    assert dest.writable_length == 5
    dest._lend_ended()
    dest._lend_ended()
    closed = []
    dest.on("close", lambda: closed.append(True))
    dest.end()
    run(loop, lambda: dest.closed)
    got = b""
    while chunk := os.read(r, 100):  # EOF: every copy is closed
        got += chunk
    assert sorted(got.splitlines()) == [b"mine", b"one", b"two"] and got.endswith(b"mine\n")
    assert closed == [True] and dest.used_as_stdio
    os.close(r)


# --------------------------------------------------------------------------
# iteration, lines(), read()


def test_sync_iteration_and_early_break_keeps_the_stream(loop):
    proc, fd = child_out(["sh", "-c", "printf first; sleep 0.05; printf second; sleep 0.05; printf third"])
    stream = Readable(fd, loop)
    it = iter(stream)
    assert next(it) == b"first"
    it.close()  # like leaving a for loop with break
    assert not stream.destroyed and stream.is_paused()
    assert b"".join(stream) == b"secondthird"
    assert stream.closed and stream.readable_ended
    proc.wait()


def test_lines_sync(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    os.write(w, b"one\ntwo\n\nthr")
    os.write(w, b"ee\nno newline")
    os.close(w)
    assert list(stream.lines()) == [b"one\n", b"two\n", b"\n", b"three\n", b"no newline"]


def test_lines_with_encoding_and_line_split_over_many_reads(loop):
    proc, fd = child_out(
        [PY, "-c", "import sys,time\nfor i in range(5):\n sys.stdout.write('é' * 3000); sys.stdout.flush(); time.sleep(0.01)\nprint()\nprint('x')"]
    )
    stream = Readable(fd, loop)
    stream.set_encoding("utf8")
    lines = list(stream.lines(max_line=15000))
    assert lines == ["é" * 15000 + "\n", "x\n"]
    proc.wait()


def test_lines_max_line_raises_after_the_good_lines(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    os.write(w, b"ok\n" + b"L" * 100 + b"\nlater\n")
    os.close(w)
    got = []
    with pytest.raises(LineTooLongError) as info:
        for line in stream.lines(max_line=50):
            got.append(line)
    assert got == [b"ok\n"]
    assert isinstance(info.value, ValueError) and "max_line=50" in str(info.value)
    assert info.value.partial.startswith(b"L" * 51)
    # Exactly max_line is fine; an unterminated overlong tail is caught as it grows.
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    os.write(w, b"12345\n")
    proc_write = b"z" * 70000  # longer than one pipe read, no newline yet
    writer = subprocess.Popen([PY, "-c", f"import os; os.write({w}, b'z' * {len(proc_write)})"], pass_fds=[w])
    os.close(w)
    it = stream.lines(max_line=5)
    lines = iter(it)
    assert next(lines) == b"12345\n"
    with pytest.raises(LineTooLongError):
        next(lines)
    writer.wait()
    with pytest.raises(ValueError):
        stream.lines(max_line=0)


def test_read_bytes_str_empty_and_error(loop):
    proc, fd = child_out(["head", "-c", "300000", "/dev/zero"])
    assert Readable(fd, loop).read() == b"\0" * 300000
    proc.wait()
    proc, fd = child_out(["printf", "h\\303\\251"])
    assert Readable(fd, loop).set_encoding("utf8").read() == "hé"
    proc.wait()
    r, w = pipe()
    os.close(w)
    stream = Readable(nonblock(r), loop)
    assert stream.read() == b""
    assert stream.read() == b""  # after the end: nothing more, no error
    r, w = pipe()
    stream = Readable(nonblock(r), loop)
    loop.call_later(0.01, stream.destroy, OSError(errno.EIO, "boom"))
    with pytest.raises(OSError, match="boom"):
        stream.read()
    assert loop.refs == 0
    os.close(w)


def test_asyncio_iteration_lines_read_and_backpressure():
    async def main():
        reactor = current_reactor()
        # read()
        proc, fd = child_out(["seq", "1", "20000"])
        data = await Readable(fd, reactor).aread()
        assert data == b"".join(b"%d\n" % i for i in range(1, 20001))
        proc.wait()
        # async for over chunks and lines
        proc, fd = child_out(["sh", "-c", "printf 'a\\nb'; sleep 0.02; printf 'c\\nd'"])
        assert [line async for line in Readable(fd, reactor).lines()] == [b"a\n", b"bc\n", b"d"]
        proc.wait()
        # backpressure on the asyncio loop, then flowing via 'data'
        proc, fd = child_out([PY, "-c", "import sys; sys.stdout.buffer.write(b'q' * 2_000_000)"])
        stream = Readable(fd, reactor)
        await asyncio.sleep(0.3)
        assert proc.poll() is None and 64 * 1024 <= stream.readable_length < 2_000_000
        done = asyncio.get_running_loop().create_future()
        total = [0]
        stream.on("data", lambda c: total.__setitem__(0, total[0] + len(c)))
        stream.on("close", lambda: done.set_result(None))
        await done
        assert total[0] == 2_000_000 and proc.wait() == 0
        # errors reach the awaiting code
        r, w = pipe()
        stream = Readable(nonblock(r), reactor)
        asyncio.get_running_loop().call_later(0.01, stream.destroy, RuntimeError("async boom"))
        with pytest.raises(RuntimeError, match="async boom"):
            async for _ in stream:
                pass
        os.close(w)
        # a Writable on the asyncio loop
        proc, wfd = child_in(["cat"], stdout=subprocess.PIPE)
        dest = Writable(wfd, reactor)
        finished = asyncio.get_running_loop().create_future()
        dest.on("close", lambda: finished.set_result(None))
        dest.write(b"x" * 1_000_000)
        dest.end()
        out = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.read)
        await finished
        assert len(out) == 1_000_000 and proc.wait() == 0

    asyncio.run(main())


def test_async_for_on_a_private_loop_stream_is_refused(loop):
    r, w = pipe()
    stream = Readable(nonblock(r), loop)

    async def main():
        async for _ in stream:
            pass

    with pytest.raises(RuntimeError, match="private"):
        asyncio.run(main())
    stream.destroy()
    os.close(w)


# --------------------------------------------------------------------------
# Writable


def test_write_returns_false_at_the_mark_and_drains(loop):
    r, w = pipe()
    dest = Writable(nonblock(w), loop, high_water_mark=1000)
    log: list = []
    recorder(dest, ("drain", "finish", "close"), log)
    assert dest.write(b"a" * 10, lambda e: log.append(("cb1", e))) is True
    assert dest.write(b"b" * 1000, lambda e: log.append(("cb2", e))) is False  # Node: counted before the write
    run(loop, lambda: "drain" in log)
    assert log == [("cb1", None), ("cb2", None), "drain"]
    # Fill the pipe: what the kernel refuses is queued.
    capacity = fcntl.fcntl(w, F_GETPIPE_SZ)
    assert dest.write(b"c" * (capacity * 2)) is False
    assert dest.writable_length > 0 and dest.writable_need_drain
    got = bytearray()
    while len(got) < 1010 + capacity * 2:
        run(loop, lambda: fionread(r) > 0)
        got.extend(os.read(r, 1 << 20))
        settle(loop, 0.001)
    run(loop, lambda: log.count("drain") == 2)
    dest.end(b"!", lambda e: log.append(("end cb", e)))
    assert dest.writable_ended and not dest.writable
    run(loop, lambda: dest.closed)
    assert os.read(r, 10) == b"!" and os.read(r, 10) == b""
    assert log[-3:] == [("end cb", None), "finish", "close"]
    assert dest.writable_finished and loop.refs == 0
    os.close(r)


def test_write_accepts_str_and_buffers_and_copies_reused_buffers(loop):
    r, w = pipe()
    nonblock(r)
    dest = Writable(nonblock(w), loop)
    capacity = fcntl.fcntl(w, F_GETPIPE_SZ)
    dest.write(b"\0" * capacity)  # the pipe is full: what follows is queued
    buf = bytearray(b"mutable")
    dest.write(buf)
    buf[:] = b"CHANGED"
    dest.write("é")
    dest.write(memoryview(b"view"))
    with pytest.raises(TypeError) as info:
        dest.write(42)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    dest.end()
    got = bytearray()
    while not dest.closed or fionread(r):
        try:
            got.extend(os.read(r, 1 << 20))
        except BlockingIOError:
            settle(loop, 0.001)
    assert bytes(got[capacity:]) == b"mutable" + "é".encode() + b"view"
    os.close(r)


def _js_writable_case(body: str) -> str:
    return (
        "const c = cp.spawn('cat', [], {stdio: ['pipe', 'ignore', 'ignore']});"
        "const s = c.stdin;"
        "const cb = (n) => (e) => log.push([n, e ? e.code : null, e ? e.message : null]);"
        "for (const ev of ['error', 'finish', 'close', 'drain']) s.on(ev, (e) => log.push(ev === 'error' ? [ev, e.code, e.message] : ev));"
        + body
    )


def _py_writable_case(loop, body) -> list:
    proc, fd = child_in(["cat"], stdout=subprocess.DEVNULL)
    s = Writable(fd, loop)
    log: list = []

    def cb(n):
        return lambda e: log.append([n, getattr(e, "code", None), str(e) if e else None])

    for ev in ("error", "finish", "close", "drain"):
        s.on(ev, (lambda e, ev=ev: log.append([ev, e.code, str(e)])) if ev == "error" else (lambda ev=ev: log.append(ev)))
    body(s, cb, log)
    run(loop, lambda: s.closed)
    settle(loop, 0.01)
    proc.wait()
    return log


@requires_node
def test_write_after_end_matches_node(loop):
    expected = node_log(_js_writable_case("s.end('x', cb('end')); log.push(['write returned', s.write('y', cb('write'))]);"))

    def body(s, cb, log):
        s.end("x", cb("end"))
        log.append(["write returned", s.write("y", cb("write"))])

    got = _py_writable_case(loop, body)
    assert got == expected
    assert [e[1] for e in got if e[0] == "error"] == ["ERR_STREAM_WRITE_AFTER_END"]


@requires_node
def test_write_after_destroy_matches_node(loop):
    expected = node_log(
        _js_writable_case(
            "s.destroy(); log.push(['write returned', s.write('y', cb('write'))]); s.end(cb('end'));"
        )
    )

    def body(s, cb, log):
        s.destroy()
        log.append(["write returned", s.write("y", cb("write"))])
        s.end(callback=cb("end"))

    got = _py_writable_case(loop, body)
    # Deliberate difference: Node never calls end()'s callback on a stream
    # destroyed without an error; childproc reports ERR_STREAM_DESTROYED.
    got.remove(["end", "ERR_STREAM_DESTROYED", "Cannot call end after a stream was destroyed"])
    assert got == expected
    assert got[0] == ["write returned", False] and ["write", "ERR_STREAM_DESTROYED", "Cannot call write after a stream was destroyed"] in got


@requires_node
def test_normal_end_and_double_end_match_node(loop):
    expected = node_log(_js_writable_case("s.write('a', cb('w')); s.end('b', cb('end1')); s.end(cb('end2'));"))

    def body(s, cb, log):
        s.write("a", cb("w"))
        s.end("b", cb("end1"))
        s.end(callback=cb("end2"))

    assert _py_writable_case(loop, body) == expected
    # end() after 'finish': ERR_STREAM_ALREADY_FINISHED to the callback
    expected = node_log(_js_writable_case("s.end(); s.on('finish', () => s.end(cb('late')));"))

    def body2(s, cb, log):
        s.end()
        s.on("finish", lambda: s.end(callback=cb("late")))

    assert _py_writable_case(loop, body2) == expected


@requires_node
def test_epipe_shape_and_order(loop):
    expected = node_log(
        "const c = cp.spawn('sh', ['-c', 'exec 0<&-; sleep 0.3'], {stdio: ['pipe', 'ignore', 'ignore']});"
        "const s = c.stdin;"
        "s.on('error', e => log.push(['error', e.code, e.message, e.syscall, e.errno]));"
        "s.on('close', () => log.push('close'));"
        "setTimeout(() => { s.write(Buffer.alloc(10), e => log.push(['cb', e && e.code])); "
        "s.end(e => log.push(['end cb', e && e.code])); }, 100);"
    )
    proc, fd = child_in(["sh", "-c", "exec 0<&-; sleep 0.3"])
    s = Writable(fd, loop)
    log: list = []
    s.on("error", lambda e: log.append(["error", e.code, str(e), e.syscall, -e.errno]))
    s.on("close", lambda: log.append("close"))
    settle(loop, 0.1)
    s.write(bytes(10), lambda e: log.append(["cb", e and e.code]))
    s.end(callback=lambda e: log.append(["end cb", e and e.code]))
    run(loop, lambda: s.closed)
    proc.wait()
    assert log == expected == [
        ["cb", "EPIPE"],
        ["end cb", "EPIPE"],
        ["error", "EPIPE", "write EPIPE", "write", -errno.EPIPE],
        "close",
    ]


def test_epipe_on_queued_data_fails_every_callback(loop):
    proc, fd = child_in([PY, "-c", "import os, time; os.read(0, 10); os.close(0); time.sleep(0.2)"])
    s = Writable(fd, loop)
    errors: list = []
    cbs: list = []
    s.on("error", errors.append)
    for i in range(3):
        s.write(b"x" * 200_000, lambda e, i=i: cbs.append((i, getattr(e, "code", None))))
    run(loop, lambda: s.closed)
    proc.wait()
    assert [c for _, c in cbs] == ["EPIPE"] * 3 and [e.code for e in errors] == ["EPIPE"]
    assert isinstance(errors[0], BrokenPipeError) and errors[0].errno == errno.EPIPE


def test_writable_ref_only_while_writes_are_pending(loop):
    r, w = pipe()
    dest = Writable(nonblock(w), loop)
    assert loop.refs == 0
    dest.write(b"z" * (fcntl.fcntl(w, F_GETPIPE_SZ) + 10))
    assert loop.refs == 1
    dest.unref()
    assert loop.refs == 0
    dest.ref()
    assert loop.refs == 1
    nonblock(r)
    while dest.writable_length:
        try:
            os.read(r, 1 << 20)
        except BlockingIOError:
            pass
        settle(loop, 0.001)
    assert loop.refs == 0
    dest.destroy()
    run(loop, lambda: dest.closed)
    os.close(r)


def test_loop_registers_fds_at_its_next_wait(loop):
    """The private loop hands new fds to epoll at its next wait, in the order
    added (see PrivateLoop._update).  An fd added and removed before then
    costs nothing; one closed before then (with no removal) is dropped; one
    that cannot be polled is reported from the wait."""
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    loop.remove_reader(r)  # never given to epoll
    loop.add_reader(r, lambda: None)
    os.close(r)
    os.close(w)
    assert loop.run_until(lambda: False, timeout=0.02) is False
    if not hasattr(select, "epoll"):
        return  # poll(2) takes a regular file (always ready); epoll refuses it
    with open(__file__) as f:  # a regular file: epoll says EPERM
        loop.add_reader(f.fileno(), lambda: None)
        with pytest.raises(PermissionError):
            loop.run_until(lambda: False, timeout=0.02)
    assert loop.run_until(lambda: False, timeout=0.02) is False  # and it is forgotten
