"""fork() and the channel on Windows: a named pipe with libuv's IPC frames,
NODE_CHANNEL_FD naming a CRT fd, so Python and node.exe talk both ways."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

import childproc
from winnode import NODE, requires_node, run_node

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGE = {"text": "caf\u00e9 \u4e2d", "n": [1, 2.5, None, True], "nested": {"a": {"b": []}}}


def round_trip(child: Any) -> list[Any]:
    got: list[Any] = []

    def on_message(message: Any, handle: Any = None) -> None:
        got.append(message)
        if message == {"ready": True}:
            child.send(MESSAGE)
            child.send({"bye": True})

    child.on("message", on_message)
    child.wait()
    return got


def test_python_parent_python_child() -> None:
    child = childproc.fork(os.path.join(HERE, "fixtures", "echo_child.py"))
    got = round_trip(child)
    assert got == [{"ready": True}, {"echo": MESSAGE}, {"echo": {"bye": True}}]
    assert child.exit_code == 0


@requires_node
def test_python_parent_node_child() -> None:
    assert NODE is not None
    child = childproc.fork(os.path.join(HERE, "fixtures", "echo_child.js"), exec_path=NODE)
    got = round_trip(child)
    assert got == [{"ready": True}, {"echo": MESSAGE}, {"echo": {"bye": True}}]
    assert child.exit_code == 0


@requires_node
def test_node_parent_python_child() -> None:
    got = run_node(r"""
    const child = cp.fork(input.script, [], {execPath: input.py, stdio: ['pipe', 'pipe', 'pipe', 'ipc']});
    const got = [];
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    child.on('message', (m) => {
      got.push(m);
      if (m.ready) { child.send(input.message); child.send({bye: true}); }
    });
    child.on('close', (code) => out({got, code, err}));
    """, {"script": os.path.join(HERE, "fixtures", "echo_child.py"), "py": PY, "message": MESSAGE})
    assert got["err"] == ""
    assert got["got"] == [{"ready": True}, {"echo": MESSAGE}, {"echo": {"bye": True}}]
    assert got["code"] == 0


def test_many_messages_both_ways() -> None:
    child = childproc.fork(os.path.join(HERE, "fixtures", "echo_child.py"))
    got: list[Any] = []

    def on_message(message: Any, handle: Any = None) -> None:
        got.append(message)
        if message == {"ready": True}:
            for i in range(2000):
                child.send({"i": i, "pad": "x" * (i % 300)})
            child.send({"bye": True})

    child.on("message", on_message)
    child.wait()
    assert [m["echo"]["i"] for m in got[1:-1]] == list(range(2000))


def test_passing_a_handle_is_refused() -> None:
    import socket

    child = childproc.fork(os.path.join(HERE, "fixtures", "echo_child.py"))
    server = socket.socket()
    try:
        with pytest.raises(NotImplementedError):
            child.send({"x": 1}, server)
    finally:
        server.close()
        child.send({"bye": True})
        child.wait()
    assert child.exit_code == 0


def test_process_without_a_channel() -> None:
    out = childproc.exec_file_sync(PY, ["-c", "from childproc import process; print(process.connected, process.channel)"],
                                   encoding="utf-8")
    assert out == "False None\r\n"


def test_pickle_serialization_between_pythons() -> None:
    child = childproc.fork(os.path.join(HERE, "fixtures", "echo_child.py"), serialization="pickle")
    got: list[Any] = []

    def on_message(message: Any, handle: Any = None) -> None:
        got.append(message)
        if message == {"ready": True}:
            child.send({"tuple": (1, 2), "bytes": b"\x00\xff", "set": {3}})
            child.send({"bye": True})

    child.on("message", on_message)
    child.wait()
    assert got[1] == {"echo": {"tuple": (1, 2), "bytes": b"\x00\xff", "set": {3}}}
