"""exec's C collector: output read straight into one C buffer (issue 4).

With ``max_buffer=inf`` (or in bytes mode) exec's streams read into an
``OutputBuffer`` instead of emitting a ``'data'`` event per chunk, and hand
what they hold to exec's own listener the moment anybody else wants the
chunks.  These tests check that nothing a user can see changes: the same
bytes and text as the chunked path (also for characters and invalid UTF-8
split across reads), a late ``'data'`` listener seeing only later chunks,
``set_encoding`` on one stream, max_buffer's exact cut, kills, timeouts and
destroyed streams -- and that the C memory is freed on every one of those
paths.  Node comparisons of the same paths are in ``test_exec.py``
(``collect-*`` cases); these need no node.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest

import childproc as cp
from childproc._spawn import native as _native

MiB = 1 << 20
INF = float("inf")

# A child that writes the file argv[1], then waits for a line on stdin,
# then writes the file argv[2] -- so a test can act between the parts.
_TWO_PARTS = (
    "import sys\n"
    "o = sys.stdout.buffer\n"
    "o.write(open(sys.argv[1], 'rb').read()); o.flush()\n"
    "sys.stdin.readline()\n"
    "o.write(open(sys.argv[2], 'rb').read()); o.flush()\n"
)

# A child that writes the file argv[1] in pieces cut at the offsets that
# follow, flushing and pausing between them, so that reads end where the
# pieces do.
_PIECES = (
    "import sys, time\n"
    "o = sys.stdout.buffer\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "last = 0\n"
    "for cut in [int(a) for a in sys.argv[2:]] + [len(data)]:\n"
    "    o.write(data[last:cut]); o.flush(); last = cut; time.sleep(0.01)\n"
)

# Characters split across pieces: one at the first 64 KiB boundary (the
# size of the first read), invalid bytes, a truncated sequence before an
# ASCII byte, a truncated sequence at EOF.
_TRICKY = (
    b"a" * 65535 + "\u20ac".encode()  # the euro sign straddles byte 65536
    + "\u4e2d\U0001f600\u00e9".encode() * 3000
    + b"\xff\xfe" + b"\xe2\x82" + b"x" + b"\xed\xa0\x80" + b"\xc0\xaf"
    + "\U0001f600".encode() * 5000
    + b"\xf0\x9f\x98"  # an incomplete 4-byte character at EOF: U+FFFD
)
_TRICKY_CUTS = [65536, 65537, 70001, 70002, 70003, 70004, len(_TRICKY) - 20002, len(_TRICKY) - 2]


pytestmark = pytest.mark.usefixtures("watchdog")


def _file(data: bytes) -> str:
    """A temporary file holding ``data`` (argv cannot carry MiBs), removed at exit."""
    import atexit
    import tempfile

    fd, path = tempfile.mkstemp(prefix="childproc-collect-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    atexit.register(os.unlink, path)
    return path


def _pieces(data: bytes, cuts: list[int], **options: Any) -> cp.ExecChildProcess:
    return cp.exec_file(sys.executable, ["-c", _PIECES, _file(data), *map(str, cuts)], **options)


def _two_parts(a: bytes, b: bytes, **options: Any) -> cp.ExecChildProcess:
    return cp.exec_file(sys.executable, ["-c", _TWO_PARTS, _file(a), _file(b)], **options)


def _drive(child: cp.ChildProcess, done: Callable[[], bool]) -> None:
    assert child._reactor.run_until(done, 20), "the condition never came true"


def _collected(stream: Any) -> int:
    return len(stream._collector) if stream._collector is not None else -1


def _count_data_events(stream: Any) -> list[int]:
    """Count the 'data' events ``stream`` emits (to anybody), from now on."""
    count = [0]
    emit = stream.emit

    def counting(event: Any, *args: Any) -> bool:
        if event == "data":
            count[0] += 1
        return emit(event, *args)

    stream.emit = counting
    return count


def _chunked(make: Callable[[], cp.ExecChildProcess]) -> cp.ExecResult:
    """The same exec through the chunk path: a user 'data' listener from the
    start keeps the collector from ever taking a byte."""
    child = make()
    child.stdout.on("data", lambda chunk: None)
    child.stderr.on("data", lambda chunk: None)
    return child.result(timeout=20)


_linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")


def _rss() -> int:
    # What malloc keeps for reuse is not a leak: hand it back first (glibc's
    # dynamic mmap threshold puts 8 MiB blocks on the heap after the first
    # few, and a loaded machine interleaves them differently).
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _assert_rss_flat(step: Callable[[], None]) -> None:
    """``step`` 30 times (after 3 to settle) leaves the RSS within 64 MiB."""
    for _ in range(3):
        step()
    gc.collect()
    before = _rss()
    for _ in range(30):
        step()
    gc.collect()
    assert _rss() - before < 64 * MiB, f"RSS grew by {(_rss() - before) / MiB:.0f} MiB"


# -- the fast path -------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_collects_without_data_events(encoding: str | None) -> None:
    child = cp.exec("seq 1 1000000; seq 1 50000 >&2", encoding=encoding, max_buffer=INF)
    out_events = _count_data_events(child.stdout)
    err_events = _count_data_events(child.stderr)
    result = child.result(timeout=20)
    expected_out = "".join(f"{i}\n" for i in range(1, 1000001))
    expected_err = "".join(f"{i}\n" for i in range(1, 50001))
    if encoding is None:
        assert result == (expected_out.encode(), expected_err.encode())
    else:
        assert result == (expected_out, expected_err)
    assert out_events == [0] and err_events == [0]
    assert child.stdout._collector is None and child.stderr._collector is None  # freed


def test_text_with_finite_max_buffer_stays_on_chunks() -> None:
    """exec's default (text, 1 MiB) counts UTF-8 lengths of decoded chunks: no collector."""
    child = cp.exec("printf 'h\\303\\251'")
    assert child.stdout._collector is None
    events = _count_data_events(child.stdout)
    assert child.result(timeout=20).stdout == "h\u00e9"
    assert events[0] >= 1


def test_bytes_with_finite_max_buffer_collects() -> None:
    child = cp.exec("seq 1 100000", encoding=None)  # max_buffer: 1 MiB
    events = _count_data_events(child.stdout)
    assert child.result(timeout=20).stdout == "".join(f"{i}\n" for i in range(1, 100001)).encode()
    assert events == [0]


@pytest.mark.parametrize("encoding", [None, "utf-8", "latin-1", "utf-16-le", "hex", "base64"])
def test_same_output_as_chunk_path(encoding: str | None) -> None:
    """Reads split characters and invalid sequences anywhere: the collected
    result is what the chunks joined give, and what one decode of the whole gives."""

    def make() -> cp.ExecChildProcess:
        return _pieces(_TRICKY, _TRICKY_CUTS, encoding=encoding, max_buffer=INF)

    child = make()
    events = _count_data_events(child.stdout)
    fast = child.result(timeout=20)
    assert events == [0]
    slow = _chunked(make)
    assert fast == slow
    if encoding is None:
        assert fast.stdout == _TRICKY
    elif encoding == "hex":
        assert fast.stdout == _TRICKY.hex()
    elif encoding == "base64":
        assert fast.stdout == base64.b64encode(_TRICKY).decode()
    elif encoding == "utf-16-le":
        assert fast.stdout == _TRICKY[: len(_TRICKY) & ~1].decode("utf-16-le", "surrogatepass")
    else:
        assert fast.stdout == _TRICKY.decode(encoding, "replace")
    if encoding == "utf-8":
        assert fast.stdout.endswith("\U0001f600\ufffd") and "\u20ac" in fast.stdout


def test_large_output() -> None:
    """More than one pipe-full many times over, through pages moved into the result."""
    data = os.urandom(3 * MiB + 12345) * 7
    child = _pieces(data, [1, 4096, 65536, 5 * MiB + 1], encoding=None, max_buffer=INF)
    assert child.result(timeout=30).stdout == data
    text = "\u00e9\u4e2d\U0001f600 ascii\n" * 600000  # ~9 MiB of UTF-8
    child = _pieces(text.encode(), [65536, 65537, 3 * MiB - 1], max_buffer=INF)
    assert child.result(timeout=30).stdout == text


def test_async_exec_collects() -> None:
    async def main() -> tuple[cp.ExecResult, list[int]]:
        child = cp.exec("seq 1 500000", encoding=None, max_buffer=INF)
        events = _count_data_events(child.stdout)
        return await child, events

    result, events = asyncio.run(main())
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 500001)).encode()
    assert events == [0]


# -- leaving the fast path ------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "utf-8"])
def test_user_data_listener_mid_stream(encoding: str | None) -> None:
    """A listener added late sees the later chunks only (Node); exec's result is whole and in order."""
    a = b"x" * 100000 + b"\xe2\x82"  # ends inside the euro sign
    b = b"\xac" + b"y" * 300000 + "\u4e2d".encode()
    child = _two_parts(a, b, encoding=encoding, max_buffer=INF)
    _drive(child, lambda: _collected(child.stdout) == len(a))
    seen: list[Any] = []
    child.stdout.on("data", seen.append)
    child.stdin.write(b"go\n")
    result = child.result(timeout=20)
    if encoding is None:
        assert result.stdout == a + b
        assert b"".join(seen) == b
    else:
        assert result.stdout == (a + b).decode()
        # The decoder held the first two bytes of the euro sign back: the
        # listener's first chunk starts with the whole character.
        assert "".join(seen) == "\u20ac" + b[1:].decode()
    assert child.stdout._collector is None


def test_pause_and_resume_mid_stream() -> None:
    a, b = os.urandom(150000), os.urandom(400000)
    child = _two_parts(a, b, encoding=None, max_buffer=INF)
    _drive(child, lambda: _collected(child.stdout) == len(a))
    child.stdout.pause()
    child.stdin.write(b"go\n")
    _drive(child, lambda: child.stdout.readable_length > 0)
    child.stdout.resume()
    assert child.result(timeout=20).stdout == a + b


def test_iteration_mid_stream_gets_the_rest() -> None:
    """An iterator is Node's 'readable' consumer: it takes the later chunks
    (paused mode, so exec's listener gets none of them, as in Node)."""
    a, b = b"a" * 70000, b"b" * 200000
    child = _two_parts(a, b, encoding=None, max_buffer=INF)
    _drive(child, lambda: _collected(child.stdout) == len(a))
    child.stdin.write(b"go\n")
    assert b"".join(child.stdout) == b
    assert child.result(timeout=20).stdout == a


def test_user_set_encoding_on_one_stream() -> None:
    """Bytes exec, a user's set_encoding on stdout: stdout is text, stderr stays bytes (Node)."""
    text = "h\u00e9llo \u4e2d\U0001f600\n" * 50000
    script = (
        "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read()); "
        "sys.stderr.buffer.write(b'e\\xff')"
    )
    path = _file(text.encode())
    child = cp.exec_file(sys.executable, ["-c", script, path], encoding=None, max_buffer=INF)
    child.stdout.set_encoding("utf8")
    assert child.result(timeout=20) == (text, b"e\xff")

    child = cp.exec_file(sys.executable, ["-c", script, path], encoding=None, max_buffer=INF)
    child.stderr.set_encoding("latin1")
    assert child.result(timeout=20) == (text.encode(), "e\u00ff")


def test_stream_destroyed_by_user() -> None:
    """What was read before destroy() is the output, as with chunks; an
    incomplete character at the cut is dropped, as the chunk path's decoder
    never flushes it."""
    a, b = b"ab" * 40000 + b"\xe2\x82", b"\xac tail"

    def run(chunked: bool) -> Any:
        child = _two_parts(a, b, max_buffer=INF)
        if chunked:
            seen = [0]
            child.stdout.on("data", lambda chunk: seen.__setitem__(0, seen[0] + len(chunk)))
            _drive(child, lambda: seen[0] == 80000)
        else:
            _drive(child, lambda: _collected(child.stdout) == len(a))
        child.stdout.destroy()
        child.stdin.write(b"go\n")  # the child's next write gets EPIPE
        with pytest.raises(cp.ExecError) as info:
            child.result(timeout=20)
        assert child.stdout._collector is None
        return info.value.stdout

    assert run(chunked=False) == run(chunked=True) == "ab" * 40000


# -- max_buffer, kill, timeout ---------------------------------------------------


@pytest.mark.parametrize("which", ["stdout", "stderr"])
@pytest.mark.parametrize("limit", [2 * MiB + 123, 1000.5, 0])
def test_max_buffer_cuts_exactly(which: str, limit: float) -> None:
    data = os.urandom(3 * MiB + 7)
    script = (
        f"import sys, time; sys.{which}.buffer.write(open(sys.argv[1], 'rb').read()); "
        f"sys.{which}.flush(); time.sleep(5)"
    )
    got: list[Any] = []
    child = cp.exec_file(
        sys.executable, ["-c", script, _file(data)], lambda e, out, err: got.append((e, out, err)),
        encoding=None, max_buffer=limit, kill_signal="SIGKILL",
    )
    destroyed: list[bool] = []
    child.on("close", lambda *_: destroyed.extend([child.stdout.destroyed, child.stderr.destroyed]))
    child.wait(timeout=20)
    (err, out, errout), = got
    assert isinstance(err, cp.MaxBufferError) and str(err) == f"{which} maxBuffer length exceeded"
    captured = out if which == "stdout" else errout
    assert captured == data[: int(limit)]
    assert (errout if which == "stdout" else out) == b""
    assert destroyed == [True, True]
    assert child.signal_code == "SIGKILL"
    assert child.stdout._collector is None and child.stderr._collector is None


def test_max_buffer_exact_size_is_fine() -> None:
    data = os.urandom(2 * MiB + 1)
    child = _pieces(data, [65536, MiB], encoding=None, max_buffer=len(data))
    assert child.result(timeout=20).stdout == data


@_linux_only
def test_kill_while_collecting_keeps_output_and_frees_memory() -> None:
    """Killed children, many times: the output so far is in the error, and no
    C buffer stays behind (8 MiB each: a leak would show hundreds of MiB)."""

    def once() -> None:
        child = cp.exec(f"head -c {8 * MiB} /dev/zero; exec sleep 5", encoding=None, max_buffer=INF)
        _drive(child, lambda: _collected(child.stdout) == 8 * MiB)
        child.kill()
        with pytest.raises(cp.ExecError) as info:
            child.result(timeout=20)
        assert info.value.signal == "SIGTERM" and len(info.value.stdout) == 8 * MiB
        assert child.stdout._collector is None

    _assert_rss_flat(once)


def test_timeout_while_collecting() -> None:
    child = cp.exec(f"head -c {3 * MiB} /dev/zero | tr '\\0' z; exec sleep 5", max_buffer=INF, timeout=0.5)
    with pytest.raises(cp.ExecError) as info:
        child.result(timeout=20)
    assert info.value.killed is True and info.value.signal == "SIGTERM"
    assert info.value.stdout == "z" * (3 * MiB)
    assert child.stdout._collector is None


@_linux_only
def test_abandoned_collectors_free_their_memory() -> None:
    """An OutputBuffer nobody takes from frees its C memory when collected."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    chunk = b"q" * MiB
    try:

        def fill_and_drop() -> None:
            buffer = _native.OutputBuffer()
            while len(buffer) < 8 * MiB:
                os.write(w, chunk[: 64 * 1024])
                assert buffer.fill(r, 1 << 20) > 0
            del buffer

        _assert_rss_flat(fill_and_drop)
    finally:
        os.close(r)
        os.close(w)


# -- OutputBuffer itself -----------------------------------------------------------


def test_output_buffer_fill_results() -> None:
    import errno

    r, w = os.pipe()
    os.set_blocking(r, False)
    buffer = _native.OutputBuffer()
    try:
        assert buffer.fill(r, 4096) == -errno.EAGAIN
        os.write(w, b"hello")
        assert buffer.fill(r, 4096) == 5 and len(buffer) == 5
        os.close(w)
        assert buffer.fill(r, 4096) == 0  # EOF
        buffer.truncate(3)
        assert buffer.take_bytes() == b"hel" and len(buffer) == 0
        assert buffer.fill(-1, 4096) == -errno.EBADF
        buffer.close()
        buffer.close()  # idempotent
    finally:
        os.close(r)


@pytest.mark.parametrize("page_offset", [None, 0, 7])
def test_take_bytes_moves_or_copies_the_same(page_offset: int | None) -> None:
    """Large buffers hand their pages over when the page offsets match and
    copy when they do not (offset forced off): the bytes are the same, also
    around the partial pages at both ends and after truncation."""
    data = os.urandom(5 * MiB + 4097)
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        for cut in (None, 3 * MiB + 5):
            buffer = _native.OutputBuffer()
            if page_offset is not None:
                buffer._c.page_offset = page_offset
            view = memoryview(data)
            while view:
                sent = os.write(w, view[: 64 * 1024])
                view = view[sent:]
                while buffer.fill(r, 1 << 20) > 0:
                    pass
            c = buffer._c
            # Pages put in place ahead of the reads (Linux), never past the buffer.
            assert c.ready == 0 or len(buffer) <= c.ready <= c.cap
            if cut is not None:
                buffer.truncate(cut)
            out = buffer.take_bytes()
            assert out == data[:cut] and len(buffer) == 0
            assert out == bytes(out)  # a well-formed bytes object (hash, compare, copy)
            assert hash(out) == hash(data[:cut])
    finally:
        os.close(r)
        os.close(w)


def test_decode_utf8_final_and_not() -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        for final, expected in ((True, "a\u20ac\ufffd"), (False, "a\u20ac")):
            buffer = _native.OutputBuffer()
            os.write(w, b"a\xe2\x82\xac\xe2\x82")
            assert buffer.fill(r, 4096) == 6
            assert buffer.decode_utf8(final) == expected and len(buffer) == 0
    finally:
        os.close(r)
        os.close(w)


def _filled(data: bytes, text: bool = True, page_offset: int | None = None) -> Any:
    """An OutputBuffer holding ``data``, read from a pipe in pieces."""
    buffer = _native.OutputBuffer(text=text)
    if page_offset is not None:
        buffer._c.page_offset = page_offset
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        view = memoryview(data)
        while view:
            sent = os.write(w, view[: 64 * 1024])
            view = view[sent:]
            while buffer.fill(r, 1 << 20) > 0:
                pass
    finally:
        os.close(r)
        os.close(w)
    return buffer


@pytest.mark.parametrize("page_offset", [None, 0, 7])
@pytest.mark.parametrize("size", [5 * MiB + 4097, 33 * MiB + 4097])
def test_ascii_text_taken_without_decoding_is_a_sound_str(page_offset: int | None, size: int) -> None:
    """A large all-ASCII buffer becomes its str by moving pages (or copying,
    the offset forced off; from 32 MiB on the str is always a mapping of its
    own, where the pages do move): the same characters as a decode, also
    around the partial pages at both ends and after truncation, and a str
    like any other (hash, compare, slices, encode, reference count)."""
    data = bytes(b % 128 for b in os.urandom(size // 64)) * 64 + b"z" * (size % 64)  # NULs included
    for cut in (None, size // 2 + 5):
        buffer = _filled(data, page_offset=page_offset)
        if cut is not None:
            buffer.truncate(cut)
        text = buffer.decode_utf8(True)
        expected = data[:cut].decode("ascii")
        assert type(text) is str and text == expected and len(buffer) == 0
        assert hash(text) == hash(expected) and text.isascii()
        assert text[-3:] == expected[-3:] and text.encode("utf-8") == data[:cut]
        assert sys.getrefcount(text) == sys.getrefcount(expected)  # no reference leaked or lost


@pytest.mark.parametrize("where", [0, 4096, 5 * MiB - 1])
def test_one_non_ascii_byte_decodes_the_whole(where: int) -> None:
    """One byte above 0x7f anywhere: take_ascii declines and leaves the buffer
    whole, and decode_utf8 decodes it as a fresh UTF-8 decoder would."""
    data = bytearray(b"x" * (5 * MiB))
    data[where] = 0xE9
    buffer = _filled(bytes(data))
    assert buffer.take_ascii() is None and len(buffer) == len(data)
    text = buffer.decode_utf8(True)
    assert text == bytes(data).decode("utf-8", "replace") and text[where] == "\ufffd"


def test_ascii_prefix_around_the_blocks() -> None:
    """cp_collector_ascii checks 64 bytes at a time, then byte by byte:
    the first byte above 0x7f is found wherever it is."""
    ascii_prefix = _native.lib.cp_collector_ascii
    assert ascii_prefix(_native.OutputBuffer()._c) == 0
    for size in (1, 63, 64, 65, 127, 128, 200):
        assert ascii_prefix(_filled(b"\x7f" * size)._c) == size
        for where in {w for w in (0, size // 2, 63, 64, size - 1) if w < size}:
            data = bytearray(b"a" * size)
            data[where] = 0x80 if where % 2 else 0xFF
            assert ascii_prefix(_filled(bytes(data))._c) == where


def test_small_and_empty_buffers_are_decoded() -> None:
    """Below a page-moving size there is nothing to gain: decoded as before."""
    buffer = _filled(b"abc" * 1000)
    assert buffer.take_ascii() is None and buffer.decode_utf8(True) == "abc" * 1000
    assert _native.OutputBuffer(text=True).decode_utf8(True) == ""


@_linux_only
def test_ascii_strs_taken_free_their_memory() -> None:
    """The strs made for ASCII output are freed like any other (nothing
    holds a reference to them or to the pages moved into them)."""
    chunk = b"q" * (8 * MiB)

    def take_and_drop() -> None:
        text = _filled(chunk).decode_utf8(True)
        assert len(text) == len(chunk)
        del text

    _assert_rss_flat(take_and_drop)


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "ascii"])
@pytest.mark.parametrize("last", [b"", b"\xe9", b"\xc3"])
def test_large_ascii_output_same_as_chunk_path(encoding: str, last: bytes) -> None:
    """Large ASCII output, then maybe one byte that is not ASCII (a whole
    Latin-1 character, a UTF-8 lead byte cut off by EOF): the text the
    chunks joined give, whichever way the collector takes it."""
    data = b"".join(b"%d\n" % i for i in range(700000)) + last

    def make() -> cp.ExecChildProcess:
        return _pieces(data, [65536, 3 * MiB + 1], encoding=encoding, max_buffer=INF)

    child = make()
    events = _count_data_events(child.stdout)
    fast = child.result(timeout=30)
    assert events == [0]
    assert fast == _chunked(make)
    if encoding != "ascii":
        assert fast.stdout == data.decode(encoding, "replace")


_SPLIT_CHAR = "printf 'ab\\303'; sleep 0.3; printf '\\251cd'"


def test_set_encoding_after_bytes_chunks_keeps_them() -> None:
    """Bytes exec, a user's set_encoding on the first chunk: the bytes
    chunks before it are in the text result, each decoded on its own as
    UTF-8 (Node joins Buffers and strings with ``join('')``), so a character
    split across the switch becomes two U+FFFD.  Compared with node."""
    child = cp.exec(_SPLIT_CHAR, encoding=None)
    child.stdout.once("data", lambda chunk: child.stdout.set_encoding("utf8"))
    got = child.result(timeout=20).stdout
    assert got == "ab\ufffd\ufffdcd"
    from nodecmp import node_result

    script = (
        "const c = require('child_process').exec(process.argv[1], {encoding: 'buffer'},"
        " (e, o) => process.stdout.write(JSON.stringify(o)));"
        "c.stdout.once('data', () => c.stdout.setEncoding('utf8'));"
    )
    assert node_result(script, args=[_SPLIT_CHAR]) == got
