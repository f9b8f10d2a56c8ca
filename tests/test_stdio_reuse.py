"""A stream handed to another child's stdio stays the parent's.

Node's own tests define it: ``test-child-process-stdio-merge-stdouts-into-cat.js``
(one ``p3.stdin`` given as stdout to two children, then written and ended by the
parent) and ``test-child-process-stdio-reuse-readable-stdio.js`` (``p1.stdout``
given to ``head``, then read by the parent once ``head`` has exited).  Each is
run here as JS under ``node`` and as the same Python, and the outputs compared.

What childproc adds where Node's tests say nothing (README, "Where childproc
differs from Node on purpose"): the parent keeps off a lent fd while a borrower
runs; a lent readable nobody consumes once its borrowers have exited is closed,
so a writer whose reader died gets EPIPE, and its child's ``'close'`` comes.
"""

from __future__ import annotations

import pytest

import childproc as cp
from nodecmp import assert_same_as_node, node_result

WATCHDOG_SECONDS = 60
pytestmark = pytest.mark.usefixtures("watchdog")
WAIT = 20

MERGE_JS = r"""
const cp = require('child_process');
const log = [];
const p3 = cp.spawn('cat', { stdio: ['pipe', 'pipe', 'inherit'] });
const p1 = cp.spawn('cat', { stdio: ['pipe', p3.stdin, 'inherit'] });
const p2 = cp.spawn('cat', { stdio: ['pipe', p3.stdin, 'inherit'] });
p3.stdout.setEncoding('utf8');
p1.stdin.end('hello\n');
p3.stdout.once('data', (chunk) => {
  log.push(chunk);
  p2.stdin.end('world\n');
  p3.stdout.once('data', (chunk) => {
    log.push(chunk);
    p3.stdin.end('foobar\n');
    p3.stdout.once('data', (chunk) => log.push(chunk));
  });
});
for (const [name, p] of [['p1', p1], ['p2', p2], ['p3', p3]])
  p.on('close', (code, signal) => log.push([name + ' close', code, signal]));
process.on('exit', () => console.log(JSON.stringify(log)));
"""

REUSE_JS = r"""
const cp = require('child_process');
const log = [];
const p1 = cp.spawn('cat', { stdio: ['pipe', 'pipe', 'inherit'] });
const p2 = cp.spawn('head', ['-n1'], { stdio: [p1.stdout, 'pipe', 'inherit'] });
p1.stdin.write('hello\n');
p2.stdout.setEncoding('utf8');
p2.stdout.on('data', (chunk) => log.push(['p2 data', chunk]));
p2.on('exit', (code, signal) => {
  log.push(['p2 exit', code, signal]);
  p1.stdin.end('world\n');
  p1.stdout.setEncoding('utf8');
  p1.stdout.on('data', (chunk) => log.push(['p1 data', chunk]));
});
p2.on('close', (code, signal) => log.push(['p2 close', code, signal]));
p1.on('close', (code, signal) => log.push(['p1 close', code, signal]));
process.on('exit', () => console.log(JSON.stringify(log)));
"""


def run_node(script: str) -> list:
    return node_result(script=script, timeout=WAIT)


def merge_py() -> list:
    log: list = []
    p3 = cp.spawn("cat", stdio=["pipe", "pipe", "inherit"])
    p1 = cp.spawn("cat", stdio=["pipe", p3.stdin, "inherit"])
    p2 = cp.spawn("cat", stdio=["pipe", p3.stdin, "inherit"])
    p3.stdout.set_encoding("utf8")
    p1.stdin.end("hello\n")

    def third(chunk):
        log.append(chunk)

    def second(chunk):
        log.append(chunk)
        p3.stdin.end("foobar\n")
        p3.stdout.once("data", third)

    def first(chunk):
        log.append(chunk)
        p2.stdin.end("world\n")
        p3.stdout.once("data", second)

    p3.stdout.once("data", first)
    for name, p in (("p1", p1), ("p2", p2), ("p3", p3)):
        p.on("close", lambda code, sig, name=name: log.append([name + " close", code, sig]))
    for p in (p1, p2, p3):
        p.wait(timeout=WAIT)
    return log


def reuse_py() -> list:
    log: list = []
    p1 = cp.spawn("cat", stdio=["pipe", "pipe", "inherit"])
    p2 = cp.spawn("head", ["-n1"], stdio=[p1.stdout, "pipe", "inherit"])
    p1.stdin.write("hello\n")
    p2.stdout.set_encoding("utf8")
    p2.stdout.on("data", lambda chunk: log.append(["p2 data", chunk]))

    def on_exit(code, sig):
        log.append(["p2 exit", code, sig])
        p1.stdin.end("world\n")
        p1.stdout.set_encoding("utf8")
        p1.stdout.on("data", lambda chunk: log.append(["p1 data", chunk]))

    p2.on("exit", on_exit)
    p2.on("close", lambda code, sig: log.append(["p2 close", code, sig]))
    p1.on("close", lambda code, sig: log.append(["p1 close", code, sig]))
    for p in (p2, p1):
        p.wait(timeout=WAIT)
    return log


def _split(log: list) -> tuple[list, list]:
    """Data in order; 'close' events as a sorted list (their place among the
    data is a race in both runtimes: a child's exit and its reader's data)."""
    data = [e for e in log if isinstance(e, str) or "close" not in e[0]]
    closes = sorted(e for e in log if not isinstance(e, str) and "close" in e[0])
    return data, closes


def test_merge_stdouts_into_cat_as_node():
    node, py = run_node(MERGE_JS), merge_py()
    assert_same_as_node(_split(node), _split(py))
    # What Node's test asserts (mustCall on each chunk, in this order).
    assert _split(py)[0] == ["hello\n", "world\n", "foobar\n"]
    assert _split(py)[1] == [["p1 close", 0, None], ["p2 close", 0, None], ["p3 close", 0, None]]


def test_reuse_readable_stdio_as_node():
    node, py = run_node(REUSE_JS), reuse_py()
    # Node's test: 'hello' reaches head, 'world' reaches the parent through
    # p1.stdout once head has exited.
    expected_by_nodes_test = [["p2 data", "hello\n"], ["p2 exit", 0, None], ["p1 data", "world\n"]]
    data, closes = _split(py)
    assert data == expected_by_nodes_test
    assert closes == [["p1 close", 0, None], ["p2 close", 0, None]]
    if ["p1 data", "world\n"] in node:
        assert_same_as_node(_split(node), _split(py))
    else:
        # Node 20 fails its own later test here: it leaves p1.stdout paused
        # for good (readableFlowing = false), so 'world' and p1's 'close'
        # never come.  Everything else is the same.
        assert _split(node) == ([e for e in data if e[0] != "p1 data"], [["p2 close", 0, None]])


def test_a_writer_whose_reader_died_gets_epipe_and_both_close():
    # yes | head -c 10: nobody in the parent reads yes's stdout once head is
    # gone, so the parent's copy of the pipe is closed and yes ends by SIGPIPE.
    yes = cp.spawn("yes")
    head = cp.spawn("head", ["-c", "10"], stdio=[yes.stdout, "pipe", "inherit"])
    assert head.stdout.read() == b"y\n" * 5
    assert head.wait(timeout=WAIT) == 0
    yes.wait(timeout=WAIT)
    assert yes.signal_code == "SIGPIPE" and yes.stdout.destroyed


def test_the_owners_close_waits_for_the_borrower_not_for_a_reader():
    # The owner exits first; its lent stdout is drained once the borrower is
    # done, so the owner's 'close' comes without anyone reading it.
    a = cp.spawn("sh", ["-c", "echo one; echo two"])
    # b ends only once the parent has reaped a (a zombie answers kill -0), so
    # a's exit is the parent's news before b's, as this case needs.
    b = cp.spawn("sh", ["-c", f"read x; echo got $x; while kill -0 {a.pid} 2>/dev/null; do sleep 0.01; done"],
                 stdio=[a.stdout, "pipe", "inherit"])
    closes: list = []
    a.on("close", lambda *args: closes.append("a"))
    assert b.stdout.read() == b"got one\n"
    a.wait(timeout=WAIT)
    b.wait(timeout=WAIT)
    assert closes == ["a"]
    # What b left in the pipe is kept for the parent (as after any exit).
    assert a.stdout.read() == b"two\n"


def test_writes_to_a_lent_writable_wait_for_its_borrowers():
    sink = cp.spawn("cat")
    writer = cp.spawn("sh", ["-c", "echo from-child"], stdio=["ignore", sink.stdin, "inherit"])
    sink.stdin.write("from-parent\n")  # queued while the child may still write
    writer.wait(timeout=WAIT)
    sink.stdin.end()
    assert sink.stdout.read() == b"from-child\nfrom-parent\n"
    assert sink.wait(timeout=WAIT) == 0


def test_a_lent_stream_is_refused_once_destroyed():
    a = cp.spawn("sh", ["-c", "echo x"])
    a.stdout.destroy()
    with pytest.raises(Exception) as info:
        cp.spawn("cat", stdio=[a.stdout, "pipe", "pipe"])
    assert getattr(info.value, "code", None) == "ERR_STREAM_DESTROYED"
    a.wait(timeout=WAIT)
