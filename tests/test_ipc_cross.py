"""IPC between Python and Node: a childproc parent with a Node child, a Node parent
with a childproc child, each compared with Node-to-Node for the same scripts
(docs/architecture.md, "The channel").

* Event traces: ``fixtures/ipc/trace_parent.{js,py}`` x ``trace_child.{js,py}``
  run every scenario in all four pairings; every pairing must give Node-to-Node's
  traces (parent's and child's).  One allowance: when the *parent* calls
  ``disconnect()``, a Node parent never emits ``'close'`` (Node bug #19433), a
  childproc parent does (deliberately).
* Wire bytes: ``wire_sender.{js,py}`` make the same send() calls; what a raw
  recorder (``wire_recorder.py``, no childproc) receives must be byte-identical,
  including which read carried the file descriptor.  The other direction uses a
  raw Python parent (a socketpair, as Node's own tests do).
* Handles each way, 100,000 messages each way, and the death of the parent.

All of it needs ``node``; without it the module is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import childproc as cp
from childproc._runtime.loop import private_loop
from nodecmp import NODE
from nodecmp import node_result

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.usefixtures("watchdog"),
]

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures" / "ipc"
PY = sys.executable
SRC = os.path.dirname(os.path.dirname(os.path.abspath(cp.__file__)))
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([SRC] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])),
}


if str(FIX) not in sys.path:
    sys.path.insert(0, str(FIX))
from wire_recorder import record as record_wire  # noqa: E402 - the fixture child's own loop, in-process


def fx(name: str) -> str:
    return str(FIX / name)


def interpreter(kind: str) -> str:
    return NODE if kind == "node" else PY


def script(base: str, kind: str) -> str:
    return fx(f"{base}.{'js' if kind == 'node' else 'py'}")


def drive(cond, timeout: float = 30.0) -> None:
    if not private_loop().run_until(cond, timeout):
        raise AssertionError(f"condition not reached within {timeout} s")


def communicate_all(procs: dict, timeout: float = 30) -> dict:
    out = {}
    for key, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise AssertionError(f"{key}: timed out\n{stderr}")
        out[key] = (proc.returncode, stdout, stderr)
    return out


# --------------------------------------------------------------------------- event traces

PAIRS = [("node", "node"), ("python", "node"), ("node", "python"), ("python", "python")]

SCENARIOS = [
    "echo",
    "parent_disconnect",
    "disconnect_twice",
    "keep_alive",
    "internal",
    "late_listener",
    "send_after_disconnect",
    # the same, with the channel's EOF and the exit both ready at the first look
    "send_after_disconnect_late",
    "child_disconnect",
    "child_exit",
    "no_listener",
]
# Scenarios where the parent calls disconnect(): Node's parent then never emits 'close'.
BUG_19433 = {"parent_disconnect", "disconnect_twice", "keep_alive", "late_listener"}


def canonical(trace: list) -> list:
    """'exit' (pidfd/SIGCHLD) and the channel's EOF ('disconnect') come from two
    fds that turn ready together when the child dies; either order is Node's."""
    t = [list(e) for e in trace]
    for i in range(len(t) - 1):
        if t[i][0] == "exit" and t[i + 1][0] == "disconnect":
            t[i], t[i + 1] = t[i + 1], t[i]
    return t


def run_traces(scenario: str, tmp_path: Path) -> dict:
    procs = {}
    for parent, child in PAIRS:
        child_trace = tmp_path / f"{parent}-{child}.jsonl"
        procs[(parent, child)] = subprocess.Popen(
            [interpreter(parent), script("trace_parent", parent), script("trace_child", child),
             interpreter(child), scenario, str(child_trace)],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    results = {}
    for key, (rc, stdout, stderr) in communicate_all(procs).items():
        assert rc == 0, f"{key} parent failed ({rc}):\n{stderr}"
        lines = stdout.strip().splitlines()
        assert lines, f"{key}: the parent printed no trace\n{stderr}"
        child_trace = tmp_path / f"{key[0]}-{key[1]}.jsonl"
        child_lines = child_trace.read_text().splitlines() if child_trace.exists() else []
        results[key] = (json.loads(lines[-1]), [json.loads(x) for x in child_lines], stderr)
    return results


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_event_traces_match_node_to_node(scenario, tmp_path):
    results = run_traces(scenario, tmp_path)
    node_parent, node_child, _ = results[("node", "node")]
    assert node_parent[0] == ["spawn"], node_parent  # sanity of the reference run
    for (parent, child), (ptrace, ctrace, stderr) in results.items():
        expected = canonical(node_parent)
        if parent == "python" and scenario in BUG_19433:
            # Deliberate difference: 'close' still comes after the parent's disconnect().
            assert not any(e[0] == "close" for e in node_parent)
            exit_event = [e for e in node_parent if e[0] == "exit"][0]
            expected = expected + [["close", *exit_event[1:]]]
        assert canonical(ptrace) == expected, f"parent trace, {parent} parent / {child} child\n{stderr}"
        assert ctrace == node_child, f"child trace, {parent} parent / {child} child\n{stderr}"


_ASYNCIO_LATE_PARENT = '''
import asyncio, json, sys, time
import childproc as cp

events = []
trace = lambda *ev: events.append(list(ev))

async def main():
    child = cp.fork(sys.argv[1], ["send_after_disconnect_late", sys.argv[3]], exec_path=sys.argv[2])
    child.on("spawn", lambda: trace("spawn"))
    child.on("disconnect", lambda: trace("disconnect", child.connected, child.channel is None))
    child.on("exit", lambda code, sig: trace("exit", code, sig))
    child.on("close", lambda code, sig: trace("close", code, sig))
    child.on("error", lambda e: trace("error", e.code, str(e)))

    @child.on("disconnect")
    def _():
        trace("send", child.send("late", callback=lambda err: trace("send_cb", err and err.code)))
        trace("send", child.send("late2"))

    time.sleep(0.5)  # the channel's EOF and the exit both wait when the loop first looks
    await child

asyncio.run(main())
print(json.dumps(events))
'''


def test_send_after_disconnect_late_under_asyncio(tmp_path):
    """The race of send_after_disconnect_late on an asyncio loop: the
    send errors are next-tick callbacks there too, so they still come
    before 'exit', as in Node."""
    results = run_traces("send_after_disconnect_late", tmp_path)
    node_parent = results[("node", "node")][0]
    proc = subprocess.run(
        [PY, "-c", _ASYNCIO_LATE_PARENT, script("trace_child", "node"), NODE, str(tmp_path / "asyncio.jsonl")],
        env=ENV, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert canonical(json.loads(proc.stdout.strip().splitlines()[-1])) == canonical(node_parent), proc.stderr


# --------------------------------------------------------------------------- bytes on the wire

# Markers: {"$nan":1} {"$inf":1} {"$ninf":1} {"$date": ms} {"$buf": [...]}; "handle": server|socket|udp
WIRE_SPECS = {
    "typical": [
        {"m": {"a": 1, "b": [True, None], "s": 'é\n"q"'}},
        {"m": "str"},
        {"m": 123},
        {"m": False},
        {"m": None},
        {"m": {"n": {"$nan": 1}, "i": {"$inf": 1}, "ni": {"$ninf": 1}, "d": {"$date": 0},
               "d2": {"$date": 1577934245678}, "buf": {"$buf": [0, 1, 255]}}},
        {"m": {"x": {"y": {"z": [[], {}]}}, "e": {}, "l": []}},
        {"m": "U+2028 \u2028 U+2029 \u2029 😀 ctl \u0001\u001f\u007f tab\t nul \u0000 bs \\ quote \" é"},
        {"m": [1.5, -7, 0.1, 9007199254740991, -0.5, 1e300, 123456.789, 2.5e-3, 1e21, 1.7976931348623157e308]},
        {"m": ""},
        {"m": {"cmd": "NODE_CUSTOM", "x": 1}},
        {"m": {"big": "x" * 100000, "ss": "ß" * 50000, "emoji": "😀" * 1000}},
        {"m": {"withHandle": True}, "handle": "server"},
        {"m": "after-handle"},
        {"m": {"sock": 1}, "handle": "socket"},
        {"m": {"udp": 1}, "handle": "udp"},
        {"m": "last"},
    ],
    # Floats that are not integers but that repr() writes otherwise than JS:
    # JSON.stringify(1e-7) is '1e-7' (Python: '1e-07'), 0.000001 is '0.000001' (Python: '1e-06').
    "floats-exponent": [{"m": [1e-7, 0.000001, 1.5e-10, 1e-300, 1.23e-5]}, {"m": "last"}],
    # Integral floats: JSON.stringify(2) is '2' (Python 2.0: '2.0'), -0 is '0', 1e16 is '10000000000000000'.
    "floats-integral": [{"m": [2.0, -0.0, 1e16, 1e20, 100.0]}, {"m": "last"}],
    # A lone surrogate: JSON.stringify escapes only it ('"é\\ud800"'); the rest stays UTF-8.
    "lone-surrogate": [{"m": {"s": "é\ud800 ok"}}, {"m": "last"}],
}

def decode_record(path: Path) -> tuple[bytes, list, list]:
    rec = json.loads(path.read_text())
    return base64.b64decode(rec["data"]), rec["fd_chunks"], rec["env"]


def check_fd_chunks(data: bytes, fd_chunks: list) -> None:
    """Each fd came with the read that holds the start of a NODE_HANDLE line."""
    starts = [i + 1 for i in range(len(data)) if data[i : i + 1] == b"\n"]
    starts = [0] + starts
    handle_lines = [s for s in starts if data.startswith(b'{"cmd":"NODE_HANDLE"', s)]
    assert len(fd_chunks) == len(handle_lines)
    for (start, end, nfds), line in zip(fd_chunks, handle_lines):
        assert nfds == 1
        assert start <= line < end


@pytest.mark.parametrize("spec", list(WIRE_SPECS))
def test_python_child_receives_the_same_bytes_from_node_and_python_parents(spec, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(WIRE_SPECS[spec]))
    procs = {
        kind: subprocess.Popen(
            [interpreter(kind), script("wire_sender", kind), str(spec_file), "parent",
             fx("wire_recorder.py"), PY, str(tmp_path / f"{kind}.json")],
            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for kind in ("node", "python")
    }
    for kind, (rc, _out, err) in communicate_all(procs).items():
        assert rc == 0, f"{kind} sender failed:\n{err}"
    node_data, node_fds, node_env = decode_record(tmp_path / "node.json")
    py_data, py_fds, py_env = decode_record(tmp_path / "python.json")
    assert node_env == py_env == ["3", "json"]
    assert node_data.endswith(b'"last"\n')
    if py_data != node_data:
        node_lines, py_lines = node_data.split(b"\n"), py_data.split(b"\n")
        diff = [(n[:200], p[:200]) for n, p in zip(node_lines, py_lines) if n != p]
        raise AssertionError(f"bytes differ (node, childproc): {diff}")
    check_fd_chunks(node_data, node_fds)
    check_fd_chunks(py_data, py_fds)


def record_child(argv: list[str], timeout: float = 30) -> tuple[bytes, list]:
    """Run ``argv`` as an IPC child of a raw Python parent; return what it sent."""
    parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = child_end.fileno()
    proc = subprocess.Popen(
        argv,
        env={**ENV, "NODE_CHANNEL_FD": str(fd), "NODE_CHANNEL_SERIALIZATION_MODE": "json"},
        pass_fds=(fd,),
        stderr=subprocess.PIPE,
    )
    child_end.close()
    parent_end.settimeout(timeout)
    try:
        data, fd_chunks = record_wire(parent_end)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode(errors="replace")
    finally:
        parent_end.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return data, fd_chunks


@pytest.mark.parametrize("spec", ["typical"])
def test_parent_receives_the_same_bytes_from_node_and_python_children(spec, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(WIRE_SPECS[spec]))
    node_data, node_fds = record_child([NODE, fx("wire_sender.js"), str(spec_file), "child"])
    py_data, py_fds = record_child([PY, fx("wire_sender.py"), str(spec_file), "child"])
    assert node_data.endswith(b'"last"\n')
    if py_data != node_data:
        diff = [(n[:200], p[:200]) for n, p in zip(node_data.split(b"\n"), py_data.split(b"\n")) if n != p]
        raise AssertionError(f"bytes differ (node, childproc): {diff}")
    check_fd_chunks(node_data, node_fds)
    check_fd_chunks(py_data, py_fds)


# --------------------------------------------------------------------------- handles

def read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    chunks = []
    while True:
        b = sock.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def test_python_parent_passes_handles_to_a_node_child():
    child = cp.fork(fx("handle_child.js"), exec_path=NODE, env=ENV)
    messages, handles, errors, events = [], [], [], []
    child.on("message", lambda m, h: (messages.append(m), handles.append(h)))
    child.on("error", errors.append)
    child.on("exit", lambda *a: events.append(("exit", *a)))
    child.on("close", lambda *a: events.append(("close", *a)))

    def done(kind):
        return lambda: any(isinstance(m, dict) and m.get("done") == kind for m in messages)

    try:
        # A connected socket (one end of a socketpair): Node makes it a net.Socket.
        a, b = socket.socketpair()
        child.send({"kind": "stream", "tag": "pair"}, b)
        assert read_all(a) == b"from node pair"  # Node's end(): a FIN, whoever holds copies
        a.close()  # Node's socket closes on our FIN
        drive(done("stream"))

        # A listening TCP socket: Node makes it a net.Server and accepts on it.
        srv = socket.create_server(("127.0.0.1", 0))
        addr = srv.getsockname()
        child.send({"kind": "server"}, srv)
        client = socket.create_connection(addr)
        drive(done("server"))
        assert read_all(client) == b"accepted by node"
        client.close()
        if srv.fileno() != -1:
            srv.close()

        # A UDP socket: a dgram.Socket in Node.
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        uaddr = udp.getsockname()
        child.send({"kind": "udp"}, udp)
        drive(lambda: len(messages) >= 2)  # the child listens once the handle is bound
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.settimeout(10)
        deadline = time.monotonic() + 10
        reply = None
        while reply is None and time.monotonic() < deadline:
            peer.sendto(b"ping", uaddr)
            try:
                peer.settimeout(0.3)
                reply = peer.recvfrom(100)[0]
            except socket.timeout:
                drive(lambda: True, 0.1)
        peer.close()
        assert reply == b"echo:ping"
        drive(done("udp"))
        if udp.fileno() != -1:
            udp.close()

        # The Node child passes a connected net.Socket to us; we write on it.
        @child.on("message")
        def _(m, h):
            if m == {"for": "parent"}:
                h.sendall(b"hi node\n")
                h.close()

        child.send({"kind": "give"})
        drive(done("give"))
        i = messages.index({"for": "parent"})
        assert isinstance(handles[i], socket.socket)

        child.send("report")
        drive(lambda: any(isinstance(m, dict) and "got" in m for m in messages))
        report = [m for m in messages if isinstance(m, dict) and "got" in m][0]
        assert report["envelopes"] == [
            {"cmd": "NODE_HANDLE", "type": "net.Socket"},
            {"cmd": "NODE_HANDLE", "type": "net.Server"},
            {"cmd": "NODE_HANDLE", "type": "dgram.Socket", "dgramType": "udp4"},
        ]
        assert report["got"][:3] == [["stream", "Socket"], ["server", "Server"], ["udp", "Socket"]]
        assert ["from parent", "hi node"] in report["got"]
        child.send("bye")
        drive(lambda: any(e[0] == "close" for e in events))
        assert events == [("exit", 0, None), ("close", 0, None)]
        assert errors == []
    finally:
        if child.exit_code is None and child.signal_code is None:
            child.kill("SIGKILL")
            child.wait(10)


def run_handle_parent(child_kind: str) -> dict:
    return node_result(
        file=fx("handle_parent.js"), args=[script("handle_child", child_kind), interpreter(child_kind)],
        env=ENV, timeout=30,
    )


def test_node_parent_passes_handles_to_a_python_child():
    py = run_handle_parent("python")
    node = run_handle_parent("node")  # the same parent with a Node child, for reference
    assert py["exit"] == node["exit"] == [0, None]
    assert py.get("socketData") == "from child socket" and node["socketData"] == "from node socket"
    assert py.get("serverData") == "accepted by child" and node["serverData"] == "accepted by node"
    assert py.get("udpData") == node["udpData"] == "echo:ping"
    py_report = [m for m in py["messages"] if isinstance(m, dict) and "got" in m][0]
    node_report = [m for m in node["messages"] if isinstance(m, dict) and "got" in m][0]

    def shape(envs):  # the accepted socket's key names the server ("4:127.0.0.1:<port>")
        return [{k: (v.rsplit(":", 1)[0] if k == "key" else v) for k, v in e.items()} for e in envs]

    # The Python child saw the very envelopes a Node child sees.
    assert shape(py_report["envelopes"]) == shape(node_report["envelopes"])
    assert [e["type"] for e in py_report["envelopes"]] == ["net.Socket", "net.Server", "dgram.Socket"]
    # The Python child passed a socket to the Node parent, which wrote on it.
    assert ["from parent", "hi python"] in py_report["got"]
    assert py["handles"][py["messages"].index({"for": "parent"})] == "Socket"
    # What the Node parent saw internally: the ACKs (and, from the Node child, the
    # NODE_SOCKET_ALL_CLOSED answer checked in the next test).
    acks = lambda r: [m["cmd"] for m in r["internal"] if m["cmd"].startswith("NODE_HANDLE")]  # noqa: E731
    assert acks(py) == acks(node)


def test_node_server_getconnections_and_close_after_sending_a_socket_to_a_python_child():
    """A Node server that sent an accepted socket to a child asks that child for
    its count (NODE_SOCKET_GET_COUNT -> NODE_SOCKET_COUNT) in getConnections() and
    waits for NODE_SOCKET_ALL_CLOSED before server.close() completes (reference
    §4.4).  A Node child answers both at once; a Python child must too."""
    results = {}
    for kind in ("node", "python"):
        results[kind] = node_result(
            file=fx("server_close_parent.js"), args=[script("handle_child", kind), interpreter(kind)],
            env=ENV, timeout=30,
        )
    assert results["node"] == {"count": 0, "closed": True, "gaveUp": False, "exit": [0, None]}
    assert results["python"] == results["node"]


# --------------------------------------------------------------------------- 100,000 messages

N = 100_000


def test_100k_messages_each_way_python_parent_node_child():
    child = cp.fork(fx("count_child.js"), [str(N)], exec_path=NODE, env=ENV)
    state = {"report": None, "count": 0, "bad": 0, "sum": 0, "end": False}
    errors, events = [], []
    child.on("error", errors.append)
    child.on("close", lambda *a: events.append(("close", *a)))

    @child.on("message")
    def _(m, h):
        if state["report"] is None:
            state["report"] = m
        elif m == "END":
            state["end"] = True
            child.disconnect()
        else:
            c = state["count"]
            if m != [c, "y" * (c % 7)]:
                state["bad"] += 1
            state["sum"] = (state["sum"] + m[0] * (len(m[1]) + 1)) % 4294967296
            state["count"] = c + 1

    calls = []
    try:
        for i in range(N):
            child.send([i, "x" * (i % 13)], callback=None if i % 1000 else calls.append)
        child.send("END")
        drive(lambda: events or errors or any(c is not None for c in calls), 45)
        assert errors == [] and all(c is None for c in calls)
        expected_in = sum(i * (i % 13 + 1) for i in range(N)) % 4294967296
        expected_out = sum(i * (i % 7 + 1) for i in range(N)) % 4294967296
        assert state["report"] == {"count": N, "bad": 0, "sum": expected_in}
        assert (state["count"], state["bad"], state["sum"], state["end"]) == (N, 0, expected_out, True)
        assert events == [("close", 0, None)]
    finally:
        if child.exit_code is None and child.signal_code is None:
            child.kill("SIGKILL")  # else the loop at interpreter exit would wait for it
            child.wait(10)


def test_100k_messages_each_way_node_parent_python_child():
    result = node_result(file=fx("count_parent.js"), args=[fx("count_child.py"), PY, str(N)], env=ENV, timeout=45)
    expected_in = sum(i * (i % 13 + 1) for i in range(N)) % 4294967296
    expected_out = sum(i * (i % 7 + 1) for i in range(N)) % 4294967296
    assert result["errors"] == []
    assert result["report"] == {"count": N, "bad": 0, "sum": expected_in}
    assert (result["count"], result["bad"], result["sum"], result.get("end")) == (N, 0, expected_out, True)
    assert result["exit"] == [0, None]


# --------------------------------------------------------------------------- the parent dies

def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 :].split()[0] == b"Z"


@pytest.mark.parametrize("parent_kind", ["node", "python"])
def test_parent_death_child_disconnects_and_exits_by_itself(parent_kind, tmp_path):
    """Kill the parent: the child gets 'disconnect' (connected false), its ppid
    changes (to 1, or the nearest subreaper), and it leaves by itself, as a Node
    child does."""
    runs = {}
    for child_kind in ("node", "python"):
        record = tmp_path / f"{child_kind}.jsonl"
        proc = subprocess.Popen(
            [interpreter(parent_kind), script("orphan_parent", parent_kind), script("orphan_child", child_kind),
             interpreter(child_kind), str(record)],
            env=ENV, stdout=subprocess.PIPE, text=True,
        )
        runs[child_kind] = (proc, record)
    pids = {}
    try:
        for child_kind, (proc, _record) in runs.items():
            line = proc.stdout.readline()
            assert line.strip().isdigit(), f"{child_kind}: parent printed {line!r}"
            pids[child_kind] = int(line)
        for proc, _record in runs.values():
            proc.kill()
            proc.wait()
        records = {}
        for child_kind, (_proc, record) in runs.items():
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not _gone(pids[child_kind]):
                time.sleep(0.05)
            assert _gone(pids[child_kind]), f"the {child_kind} child did not leave by itself"
            records[child_kind] = [json.loads(x) for x in record.read_text().splitlines()] if record.exists() else []
        node_rec, py_rec = records["node"], records["python"]
        assert node_rec[-1] == {"event": "exit", "code": 0}  # the reference behaves as documented
        node_disc = [r for r in node_rec if r["event"] == "disconnect"]
        py_disc = [r for r in py_rec if r["event"] == "disconnect"]
        assert len(node_disc) == 1 and node_disc[0]["connected"] is False and node_disc[0]["ppidChanged"]
        assert py_disc == node_disc
    finally:
        for child_kind, pid in pids.items():
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        for proc, _record in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
