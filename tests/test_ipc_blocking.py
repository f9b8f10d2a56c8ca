"""Passing a socket from a thread that blocks (docs/architecture.md, "The
channel").

``child.send(msg, sock); sock.close()`` and then a blocking read on the
socket's peer: Node closes its copy of a sent socket when the peer's
``NODE_HANDLE_ACK`` arrives, and its loop always runs to read it.  Here the
thread's loop is not running, so ``send()`` from such a thread sends the
handle and reads the ACK itself (a ``NODE_HANDLE_NACK`` resends, as Node
does); the channel owns the fd it sends, so the user's ``close()`` never
touches it.  Children here are raw (they speak the wire on fd 3 with a plain
socket) so that each step of the protocol is in the test's hands.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap

import pytest

import childproc as cp
from childproc._runtime.loop import private_loop

pytestmark = pytest.mark.usefixtures("watchdog")

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))
ENV = {**os.environ, "PYTHONPATH": SRC}

# A peer on the raw wire: for each NODE_HANDLE, NACK the first ``nacks`` of
# them (dropping the fd it got), then ACK, write 'hello <n>' through the
# socket and close it; plain messages are echoed back with 'echo'.
RAW_PEER = """
import json, os, socket, struct
chan = socket.socket(fileno=3)
nacks, handles, buf, fds = {nacks}, 0, b'', []
def send(obj):
    chan.sendall((json.dumps(obj) + '\\n').encode())
while True:
    data, anc, flags, addr = chan.recvmsg(65536, socket.CMSG_SPACE(16))
    for level, kind, payload in anc:
        fds += struct.unpack('%di' % (len(payload) // 4), payload)
    if not data:
        break
    buf += data
    while b'\\n' in buf:
        line, buf = buf.split(b'\\n', 1)
        m = json.loads(line)
        if isinstance(m, dict) and m.get('cmd') == 'NODE_HANDLE':
            fd = fds.pop(0)
            if nacks:
                nacks -= 1
                os.close(fd)
                send({{'cmd': 'NODE_HANDLE_NACK'}})
                continue
            handles += 1
            send({{'cmd': 'NODE_HANDLE_ACK'}})
            s = socket.socket(fileno=fd)
            s.sendall(b'hello %d' % handles)
            s.close()
        elif m == 'bye':
            raise SystemExit(0)
        else:
            send({{'echo': m}})
"""


def raw_peer(nacks: int = 0) -> cp.ChildProcess:
    return cp.spawn(sys.executable, ["-c", textwrap.dedent(RAW_PEER.format(nacks=nacks))],
                    stdio=["inherit", "inherit", "inherit", "ipc"], env=ENV)


def read_to_eof(sock: socket.socket) -> bytes:
    sock.settimeout(15)  # a hang becomes a failure
    chunks = []
    while True:
        try:
            b = sock.recv(4096)
        except socket.timeout:
            return b"".join(chunks) + b" <no EOF: the sender's copy is still open>"
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def finish(child: cp.ChildProcess) -> list:
    messages: list = []
    child.on("message", lambda m, h: messages.append(m))
    child.send("bye")
    child.wait(20)
    return messages


@pytest.mark.parametrize("nacks", [0, 2], ids=["acked", "nacked-twice-then-acked"])
def test_send_close_then_blocking_read_from_a_thread_that_blocks(nacks):
    child = raw_peer(nacks)
    got = []
    for i in range(3):
        if i == 1:
            child.send({"plain": 1})  # plain messages in between keep their order
        a, b = socket.socketpair()
        child.send({"greet": "py"}, b)
        b.close()  # the user's copy; the channel sent its own
        got.append(read_to_eof(a))
        a.close()
    assert got == [b"hello 1", b"hello 2", b"hello 3"]
    assert finish(child) == [{"echo": {"plain": 1}}]


def test_blocking_send_of_a_socket_detaches_it_as_node_does():
    # Node takes a sent net.Socket's handle from the socket object at once.
    child = raw_peer()
    a, b = socket.socketpair()
    child.send({"x": 1}, b)
    assert b.fileno() == -1
    b.close()  # harmless
    assert read_to_eof(a) == b"hello 1"
    finish(child)


def test_keep_open_leaves_the_users_socket_open_and_the_channel_closes_its_copy():
    child = raw_peer()
    a, b = socket.socketpair()
    child.send({"x": 1}, b, keep_open=True)
    assert b.fileno() >= 0
    a.settimeout(15)
    assert a.recv(100) == b"hello 1"
    b.sendall(b"still mine")
    assert a.recv(100) == b"still mine"
    b.close()  # the last copy in this process: the peer's is closed too
    assert read_to_eof(a) == b""
    finish(child)


def test_inside_the_loop_a_nack_resends_and_the_copy_closes_on_the_ack():
    # From a listener (the loop runs): the send returns at once, the loop
    # reads the NACK, resends, and closes the channel's copy on the ACK.
    child = raw_peer(nacks=1)
    a, b = socket.socketpair()
    internal: list = []
    child.on("internalMessage", lambda m, h: internal.append(m.get("cmd")))
    child.on("spawn", lambda: child.send({"x": 1}, b))
    assert private_loop().run_until(lambda: "NODE_HANDLE_ACK" in internal, 20)
    assert internal == ["NODE_HANDLE_NACK", "NODE_HANDLE_ACK"]
    assert read_to_eof(a) == b"hello 1"
    finish(child)


def test_a_socket_closed_while_its_send_waits_for_an_ack_still_travels():
    # Inside the loop the second handle waits for the first one's ACK; the
    # user closes it meanwhile.  The channel's own fd is what travels, never
    # a number the user's close freed (and an open() may have reused).
    child = raw_peer()
    pairs = [socket.socketpair() for _ in range(2)]

    def on_spawn() -> None:
        for _a, b in pairs:
            child.send({"x": 1}, b)
            b.close()
        # Reuse the numbers the user's close() freed.
        decoys.extend(os.open(os.devnull, os.O_RDONLY) for _ in range(2))

    decoys: list = []
    child.on("spawn", on_spawn)
    internal: list = []
    child.on("internalMessage", lambda m, h: internal.append(m.get("cmd")))
    assert private_loop().run_until(lambda: internal.count("NODE_HANDLE_ACK") == 2, 20)
    assert [read_to_eof(a) for a, _b in pairs] == [b"hello 1", b"hello 2"]
    for fd in decoys:
        os.close(fd)
    finish(child)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts fds in /proc")
def test_a_peer_that_exits_without_acking_releases_the_blocking_send():
    child = cp.spawn(sys.executable, ["-c", "import socket; s = socket.socket(fileno=3); s.recv(100)"],
                     stdio=["inherit", "inherit", "inherit", "ipc"], env=ENV)
    before = len(os.listdir("/proc/self/fd"))
    a, b = socket.socketpair()
    child.send({"x": 1}, b)  # returns once the peer has gone
    assert read_to_eof(a) == b""  # no copy of b is left here
    child.wait(20)
    a.close()
    assert len(os.listdir("/proc/self/fd")) <= before - 2


def test_pickle_channel_too():
    # The same rule on a pickle channel (the handle's envelope is a pickle there).
    code = textwrap.dedent(
        """
        from childproc import process
        def on(m, h):
            if h is not None:
                h.sendall(b'pickled ' + str(m['n']).encode())
                h.close()
            elif m == 'bye':
                process.disconnect()
        process.on('message', on)
        """
    )
    child = cp.fork("-c", [code], exec_argv=[], serialization="pickle", env=ENV)
    got = []
    for n in range(2):
        a, b = socket.socketpair()
        child.send({"n": n}, b)
        b.close()
        got.append(read_to_eof(a))
    child.send("bye")
    child.wait(20)
    assert got == [b"pickled 0", b"pickled 1"]
