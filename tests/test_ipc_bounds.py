"""What a peer can make the channel's read side hold (docs/architecture.md,
"The channel"): a message over ``max_message_size`` is an ``'error'`` and
its bytes are dropped as they come (later messages still arrive), a line's
end is looked for only in the bytes each read adds, and fds sent without a
``NODE_HANDLE`` message are closed as they arrive.

Node has no message size bound; this one is a deliberate addition (README).
No timing is asserted: the figures (RSS and time for a 256 MiB line) are
measured by hand and reported, the tests check what is held and delivered.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
import sys
import textwrap

import pytest

import childproc as cp
from childproc._ipc.wire import BadMessage, Framer
from childproc._runtime.loop import private_loop

pytestmark = pytest.mark.usefixtures("watchdog")

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))
ENV = {**os.environ, "PYTHONPATH": SRC}
IPC_STDIO = ["inherit", "inherit", "inherit", "ipc"]


def spawn_raw(code: str, **options) -> cp.ChildProcess:
    """A child that talks raw bytes on fd 3 (the channel)."""
    return cp.spawn(sys.executable, ["-c", textwrap.dedent(code)], stdio=IPC_STDIO, env=ENV, **options)


def events_until_close(child: cp.ChildProcess) -> list:
    events: list = []
    child.on("message", lambda m, h: events.append(("message", m)))
    child.on("error", lambda e: events.append(("error", e.code, str(e))))
    closed: list = []
    child.on("close", lambda *a: closed.append(a))
    assert private_loop().run_until(lambda: bool(closed), 60), "no 'close'"
    assert closed == [(0, None)]
    return events


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# -------------------------------------------------------------- the framer


def test_an_unterminated_line_over_the_limit_is_dropped_as_it_arrives():
    framer = Framer(False, 1 << 20)
    assert framer.feed(b'{"before":1}\n"') == [{"before": 1}]
    chunk = b"x" * 65536
    got, held = [], 0
    for _ in range(160):  # 10 MiB of one line
        got += framer.feed(chunk)
        held = max(held, framer.pending)
    assert held <= (1 << 20) + len(chunk)  # never more than the limit and one read
    assert len(got) == 1 and isinstance(got[0], BadMessage) and got[0].too_large
    assert framer.pending == 0
    # The line's end, and what follows it, parse again.
    assert framer.feed(b'x"\n{"after":2}\n[3') == [{"after": 2}]
    assert framer.feed(b"]\n") == [[3]]


@pytest.mark.parametrize("size, ok", [(100, True), (101, False)])
def test_the_limit_counts_the_bytes_of_a_line(size, ok):
    # The line's UTF-8 bytes, without its newline; a complete line too (one
    # read) and one that comes in pieces.
    text = ('"' + "é" * ((size - 2) // 2) + "a" * ((size - 2) % 2) + '"').encode()
    assert len(text) == size
    for pieces in ([text + b"\n1\n"], [text[:50], text[50:] + b"\n1\n"]):
        framer = Framer(False, 100)
        got = [m for p in pieces for m in framer.feed(p)]
        if ok:
            assert got == [text.decode()[1:-1], 1]
        else:
            assert len(got) == 2 and isinstance(got[0], BadMessage) and got[1] == 1


def test_a_pickle_frame_over_the_limit_is_skipped_without_being_held():
    ok = pickle.dumps({"ok": 1})
    big = pickle.dumps(b"y" * 5000)
    after = pickle.dumps("after")
    wire = b"".join(struct.pack(">I", len(p)) + p for p in (ok, big, after))
    framer = Framer(True, 1000)
    got, held = [], 0
    for i in range(0, len(wire), 700):
        got += framer.feed(wire[i : i + 700])
        held = max(held, framer.pending)
    assert held < 1000 + 700
    assert got[0] == {"ok": 1} and got[1].too_large and got[2] == "after"
    assert len(got) == 3


# -------------------------------------------------------------- the channel

BIG_LINE_CHILD = """
    import os
    def write_all(b):
        while b:
            b = b[os.write(3, b):]
    write_all(b'{{"before":1}}\\n"')
    for _ in range({mib}):
        write_all(b'a' * (1 << 20))
    write_all(b'"\\n{{"after":2}}\\n')
"""


def test_a_line_over_max_message_size_is_an_error_and_later_messages_arrive():
    child = spawn_raw(BIG_LINE_CHILD.format(mib=3), max_message_size=1 << 20)
    events = events_until_close(child)
    assert [e[:2] for e in events] == [("message", {"before": 1}), ("error", "ERR_IPC_BAD_MESSAGE"),
                                       ("message", {"after": 2})]
    assert "max_message_size (1048576 bytes)" in events[1][2]


def test_a_line_within_max_message_size_arrives_whole():
    child = spawn_raw(BIG_LINE_CHILD.format(mib=3), max_message_size=math.inf)
    events = events_until_close(child)
    assert [e[0] for e in events] == ["message"] * 3
    assert events[1][1] == "a" * (3 << 20)


def test_a_pickle_frame_over_max_message_size_is_an_error_and_later_messages_arrive():
    child = spawn_raw(
        """
        import os, pickle, struct
        def frame(v):
            p = pickle.dumps(v)
            return struct.pack('>I', len(p)) + p
        data = frame({'ok': 1}) + frame(b'z' * (3 << 20)) + frame('after')
        while data:
            data = data[os.write(3, data):]
        """,
        serialization="pickle",
        max_message_size=1 << 20,
    )
    events = events_until_close(child)
    assert [e[:2] for e in events] == [("message", {"ok": 1}), ("error", "ERR_IPC_BAD_MESSAGE"),
                                       ("message", "after")]


@pytest.mark.parametrize("value", [0, -1, math.nan])
def test_max_message_size_must_be_positive(value):
    with pytest.raises(ValueError) as ei:
        cp.fork("x.py", max_message_size=value)
    assert ei.value.code == "ERR_OUT_OF_RANGE"


@pytest.mark.parametrize("value", ["1", True, [1]])
def test_max_message_size_must_be_a_number(value):
    # The rule of max_buffer, which Node gives ERR_OUT_OF_RANGE for a wrong type too.
    with pytest.raises(TypeError) as ei:
        cp.fork("x.py", max_message_size=value)
    assert ei.value.code == "ERR_OUT_OF_RANGE"


def test_max_message_size_is_not_an_option_of_exec():
    with pytest.raises(TypeError):
        cp.exec_sync("true", max_message_size=10)


# -------------------------------------------------------------- stray fds

STRAY_FDS_CHILD = """
    import os, socket, struct
    chan = socket.socket(fileno=3)
    null = os.open('/dev/null', os.O_RDONLY)
    for i in range({n}):
        # an fd with a plain message, or with a bare newline: no NODE_HANDLE claims it
        data = b'{{"n":%d}}\\n' % i if i % 2 else b'\\n'
        chan.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('i', null))])
    # then a real handle, its message split over two writes after its fd
    a, b = socket.socketpair()
    msg = b'{{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{{"real":1}}}}\\n'
    chan.sendmsg([msg[:10]], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('i', b.fileno()))])
    chan.sendall(msg[10:])
    b.close()
    a.sendall(b'through the handle')
    a.close()
    chan.sendall(b'{{"end":1}}\\n')
    # wait for the parent's ACK before leaving, so the handle is claimed
    buf = b''
    while b'NODE_HANDLE_ACK' not in buf:
        buf += chan.recv(4096)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts fds in /proc")
def test_fds_sent_without_a_handle_message_are_closed_on_arrival():
    before = fd_count()
    child = spawn_raw(STRAY_FDS_CHILD.format(n=1100))
    peak = [0]
    handles: list = []
    events: list = []

    def on_message(m, h):
        peak[0] = max(peak[0], fd_count())
        events.append(m)
        if h is not None:
            handles.append(h)

    child.on("message", on_message)
    errors: list = []
    child.on("error", errors.append)
    closed: list = []
    child.on("close", lambda *a: closed.append(a))
    assert private_loop().run_until(lambda: bool(closed), 60)
    # 550 plain messages, the handle's message, the end; the bare newlines
    # are bad messages (JSON.parse('') throws).
    assert [m for m in events if "n" in m] == [{"n": i} for i in range(1, 1100, 2)]
    assert events[-2:] == [{"real": 1}, {"end": 1}]
    assert len(errors) == 550 and {e.code for e in errors} == {"ERR_IPC_BAD_MESSAGE"}
    # Held at most: the channel, the child's pidfd, the handle.  Before: 1,100 more.
    assert peak[0] <= before + 8
    (h,) = handles
    h.settimeout(10)
    assert h.recv(100) == b"through the handle"
    h.close()
    assert fd_count() <= before + 1
