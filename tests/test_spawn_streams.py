"""A spawned child's stdio streams: stdin writes, backpressure, EPIPE, paused mode,
set_encoding, pipe(), pipelines with fd handover, iteration, lines(), read().

The Node-defined cases use the tracer and the one-node-process runner of
``test_spawn.py`` (its docstring says what is compared and why): each case is
written in JavaScript and in Python, traces are reduced to what is invariant
in Node -- the ChildProcess event sequence, each stream's own event sequence
with its data concatenated, and the values the case records -- and compared.
Values that depend on sizes Node and childproc choose differently (socket vs
pipe buffers, high-water marks: 16 KiB sockets in Node, 64 KiB here) are not
compared; what is compared is their consequence (write() said False, 'drain'
followed each False, every byte arrived).

The Python additions (iteration, ``lines()``, ``read()``) are checked against
what Node's closest equivalent gives (``for await``, ``readline``) where one
exists, else on their own.

Deliberate difference from Node, asserted as childproc's contract: a stream
handed to another child's ``stdio`` is closed in the parent and emits
``'close'``, so the ChildProcess that owned it still gets its ``'close'``
(Node keeps the stream open and that child's ``'close'`` never comes).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import pytest

import childproc as cp
from nodecmp import node_json, requires_node
from test_spawn import case, compare, run_node_cases, shape

WATCHDOG_SECONDS = 30
pytestmark = pytest.mark.usefixtures("watchdog")

CASES: dict = {}
SPLIT = r"printf 'a\342'; sleep 0.2; printf '\202\254b\n'"  # '€' = E2 82 AC, split across two writes
TRUNCATED = r"printf 'x\342\202'"  # ends inside a character
BIG_CHUNKS = 64  # x 64 KiB = 4 MiB through cat
CHUNK = 65536


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("stream_cases"))


@pytest.fixture(scope="module")
def node_traces(case_dir):
    return run_node_cases(CASES, case_dir)


def cmp(name, node_traces, case_dir):
    return compare(name, node_traces, case_dir, CASES)


# --------------------------------------------------------------------------
# stdin


@case("stdin_cat", """
    const T = trace('stdin_cat');
    const c = T.child(cp.spawn('cat'));
    T.set('w1', c.stdin.write('hello '));
    T.set('w2', c.stdin.write(Buffer.from('world\\n'), (err) => T.set('cb', {called: true, err})));
    c.stdin.end(() => T.set('end_cb', true));
    c.stdin.on('finish', () => T.set('finish_seen_exit_code', c.exitCode));
""", CASES)
def _stdin_cat(trace, d):
    T = trace("stdin_cat")
    c = T.child(cp.spawn("cat"))
    T.set("w1", c.stdin.write("hello "))
    T.set("w2", c.stdin.write(b"world\n", lambda err: T.set("cb", {"called": True, "err": err})))
    c.stdin.end(callback=lambda *_: T.set("end_cb", True))
    c.stdin.on("finish", lambda: T.set("finish_seen_exit_code", c.exit_code))


def test_stdin_to_cat_write_end_finish(node_traces, case_dir):
    node, py, _ = cmp("stdin_cat", node_traces, case_dir)
    p = shape(py["stdin_cat"])
    assert p["streams"]["stdin"] == [["finish"], ["close"]]
    assert p["streams"]["stdout"][0] == ["data", "hello world\n"]
    assert p["attrs"] == {"w1": True, "w2": True, "cb": {"called": True, "err": None}, "end_cb": True,
                          "finish_seen_exit_code": None}


@case("backpressure", f"""
    const T = trace('backpressure');
    const c = T.child(cp.spawn('cat'), false);
    let n = 0, falses = 0, drains = 0, got = 0, bad = 0, expect = 0;
    c.stdout.on('data', (d) => {{ for (const b of d) {{ if (b !== (Math.floor(expect / {CHUNK}) % 251)) bad++; expect++; }} got += d.length; }});
    c.stdin.on('drain', () => drains++);
    function pump() {{
      while (n < {BIG_CHUNKS}) {{
        const ok = c.stdin.write(Buffer.alloc({CHUNK}, n++ % 251));
        if (!ok) {{ falses++; c.stdin.once('drain', pump); return; }}
      }}
      c.stdin.end();
    }}
    pump();
    c.on('close', () => T.set('result', {{some_false: falses > 0, drains_equal_falses: drains === falses,
                                          got, bad}}));
""", CASES)
def _backpressure(trace, d):
    T = trace("backpressure")
    c = T.child(cp.spawn("cat"), data=False)
    st = {"n": 0, "falses": 0, "drains": 0, "got": 0, "bad": 0, "expect": 0, "max_len_when_false": 0}

    def on_data(chunk):
        # every byte is checked: chunk k of 64 KiB holds the byte k % 251
        pos = st["expect"]
        i = 0
        while i < len(chunk):
            k = (pos + i) // CHUNK
            run = min(len(chunk) - i, (k + 1) * CHUNK - (pos + i))
            if chunk[i:i + run] != bytes([k % 251]) * run:
                st["bad"] += 1
            i += run
        st["expect"] += len(chunk)
        st["got"] += len(chunk)

    c.stdout.on("data", on_data)
    c.stdin.on("drain", lambda: st.__setitem__("drains", st["drains"] + 1))

    def pump():
        while st["n"] < BIG_CHUNKS:
            ok = c.stdin.write(bytes([st["n"] % 251]) * CHUNK)
            st["n"] += 1
            if not ok:
                st["falses"] += 1
                st["max_len_when_false"] = max(st["max_len_when_false"], c.stdin.writable_length)
                c.stdin.once("drain", pump)
                return
        c.stdin.end()

    pump()
    c.on("close", lambda *_: T.set("result", {"some_false": st["falses"] > 0,
                                              "drains_equal_falses": st["drains"] == st["falses"],
                                              "got": st["got"], "bad": st["bad"]}))
    T.st = st


def test_large_data_through_cat_with_backpressure(node_traces, case_dir):
    node, py, tracers = cmp("backpressure", node_traces, case_dir)
    assert shape(py["backpressure"])["attrs"]["result"] == {
        "some_false": True, "drains_equal_falses": True, "got": BIG_CHUNKS * CHUNK, "bad": 0}
    # False means "at or above the high-water mark", never "the kernel refused"
    assert tracers["backpressure"].st["max_len_when_false"] <= 2 * 64 * 1024


@case("epipe", """
    const T = trace('epipe');
    const c = T.child(cp.spawn('sh', ['-c', 'exec 0<&-; echo closed; exec sleep 5']));
    c.stdout.once('data', () => {
      T.set('ret', c.stdin.write('x'.repeat(10), (err) => { T.set('cb', err); c.kill(); }));
    });
    c.stdin.on('error', () => c.kill());
""", CASES)
def _epipe(trace, d):
    T = trace("epipe")
    c = T.child(cp.spawn("sh", ["-c", "exec 0<&-; echo closed; exec sleep 5"]))

    def on_cb(err):
        T.set("cb", err)
        T.cb_err = err
        c.kill()

    c.stdout.once("data", lambda _: T.set("ret", c.stdin.write("x" * 10, on_cb)))
    c.stdin.on("error", lambda err: (setattr(T, "event_err", err), c.kill()))


def test_epipe_when_the_child_closed_stdin(node_traces, case_dir):
    node, py, tracers = cmp("epipe", node_traces, case_dir)
    p = shape(py["epipe"])
    epipe = {"message": "write EPIPE", "code": "EPIPE", "errno": 32, "syscall": "write"}
    assert p["streams"]["stdin"] == [["error", epipe], ["close"]]
    assert p["attrs"]["cb"] == epipe
    T = tracers["epipe"]
    # one error object for the callback and the event (Node's too), and a BrokenPipeError
    assert T.cb_err is T.event_err and isinstance(T.event_err, BrokenPipeError)


@case("write_after_exit", """
    const T = trace('write_after_exit');
    const c = T.child(cp.spawn('true'));
    c.on('exit', () => {
      T.set('destroyed', c.stdin.destroyed);
      T.set('ret', c.stdin.write('x', (err) => T.set('cb', err)));
    });
""", CASES)
def _write_after_exit(trace, d):
    T = trace("write_after_exit")
    c = T.child(cp.spawn("true"))

    @c.on("exit")
    def _(*_):
        T.set("destroyed", c.stdin.destroyed)
        T.set("ret", c.stdin.write("x", lambda err: T.set("cb", err)))


def test_stdin_is_destroyed_on_exit_and_later_writes_fail_in_the_callback(node_traces, case_dir):
    node, py, _ = cmp("write_after_exit", node_traces, case_dir)
    p = shape(py["write_after_exit"])
    assert p["attrs"] == {"destroyed": True, "ret": False, "cb": {
        "message": "Cannot call write after a stream was destroyed", "code": "ERR_STREAM_DESTROYED"}}
    assert p["streams"]["stdin"] == [["close"]]  # no 'error' event, no 'finish'


# --------------------------------------------------------------------------
# reading


@case("paused", """
    const T = trace('paused');
    const c = T.child(cp.spawn('head', ['-c', '3000000', '/dev/zero']), false);
    setTimeout(() => {
      T.set('blocked', {exit_code: c.exitCode, buffered: c.stdout.readableLength > 0,
                        flowing: c.stdout.readableFlowing});
      let n = 0;
      c.stdout.on('data', (d) => { n += d.length; });
      c.stdout.on('end', () => T.set('total', n));
    }, 500);
""", CASES)
def _paused(trace, d):
    T = trace("paused")
    c = T.child(cp.spawn("head", ["-c", "3000000", "/dev/zero"]), data=False)
    with pytest.raises(TimeoutError):
        c.wait(timeout=0.5)  # nobody reads: the child blocks in write()
    T.set("blocked", {"exit_code": c.exit_code, "buffered": c.stdout.readable_length > 0,
                      "flowing": c.stdout.readable_flowing})
    T.buffered = c.stdout.readable_length
    n = [0]
    c.stdout.on("data", lambda chunk: n.__setitem__(0, n[0] + len(chunk)))
    c.stdout.on("end", lambda: T.set("total", n[0]))


def test_paused_mode_blocks_the_child_until_a_data_listener(node_traces, case_dir):
    node, py, tracers = cmp("paused", node_traces, case_dir)
    assert shape(py["paused"])["attrs"] == {
        "blocked": {"exit_code": None, "buffered": True, "flowing": None}, "total": 3000000}
    # backpressure: what is buffered stays near the high-water mark, not the 3 MB
    assert tracers["paused"].buffered <= 2 * 1024 * 1024


@case("encoding", f"""
    for (const [key, script] of [['split', {json.dumps(SPLIT)}], ['truncated', {json.dumps(TRUNCATED)}]]) {{
      const T = trace('encoding/' + key);
      const c = T.child(cp.spawn('sh', ['-c', script]), false);
      c.stdout.setEncoding('utf8');
      const chunks = [];
      c.stdout.on('data', (s) => chunks.push(s));
      c.stdout.on('end', () => {{
        T.set('text', chunks.join(''));
        T.set('all_str', chunks.every((s) => typeof s === 'string'));
        T.set('empty_chunks', chunks.filter((s) => s.length === 0).length);
        T.set('encoding', c.stdout.readableEncoding);
      }});
    }}
""", CASES)
def _encoding(trace, d):
    for key, script in (("split", SPLIT), ("truncated", TRUNCATED)):
        T = trace(f"encoding/{key}")
        c = T.child(cp.spawn("sh", ["-c", script]), data=False)
        c.stdout.set_encoding("utf8")
        chunks: list = []
        c.stdout.on("data", chunks.append)

        def on_end(chunks=chunks, T=T, c=c):
            T.set("text", "".join(chunks))
            T.set("all_str", all(isinstance(s, str) for s in chunks))
            T.set("empty_chunks", sum(1 for s in chunks if len(s) == 0))
            T.set("encoding", {"utf-8": "utf8"}.get(c.stdout.readable_encoding, c.stdout.readable_encoding))

        c.stdout.on("end", on_end)


def test_set_encoding_holds_back_a_split_character(node_traces, case_dir):
    node, py, _ = cmp("encoding", node_traces, case_dir)
    assert shape(py["encoding/split"])["attrs"]["text"] == "a\u20acb\n"
    assert shape(py["encoding/truncated"])["attrs"]["text"] == "x\ufffd"


# --------------------------------------------------------------------------
# pipe() and handover


@case("pipe_cc", """
    const T = trace('pipe_cc/a'), U = trace('pipe_cc/b');
    const a = T.child(cp.spawn('sh', ['-c', 'printf "b\\\\na\\\\nc\\\\n"']), false);
    const b = U.child(cp.spawn('sort'));
    U.set('returns_dest', a.stdout.pipe(b.stdin) === b.stdin);
""", CASES)
def _pipe_cc(trace, d):
    T, U = trace("pipe_cc/a"), trace("pipe_cc/b")
    a = T.child(cp.spawn("sh", ["-c", 'printf "b\\na\\nc\\n"']), data=False)
    b = U.child(cp.spawn("sort"))
    U.set("returns_dest", a.stdout.pipe(b.stdin) is b.stdin)


def test_pipe_child_to_child(node_traces, case_dir):
    node, py, _ = cmp("pipe_cc", node_traces, case_dir)
    b = shape(py["pipe_cc/b"])
    assert b["streams"]["stdout"][0] == ["data", "a\nb\nc\n"]
    assert b["streams"]["stdin"] == [["finish"], ["close"]]  # end=True ends the destination
    assert shape(py["pipe_cc/a"])["streams"]["stdout"] == [["end"], ["close"]]


@case("pipe_big", """
    const T = trace('pipe_big/a'), U = trace('pipe_big/b');
    const a = T.child(cp.spawn('seq', ['1', '1500000']), false);
    const b = U.child(cp.spawn('wc', ['-c']));
    a.stdout.pipe(b.stdin);
""", CASES)
def _pipe_big(trace, d):
    T, U = trace("pipe_big/a"), trace("pipe_big/b")
    a = T.child(cp.spawn("seq", ["1", "1500000"]), data=False)
    b = U.child(cp.spawn("wc", ["-c"]))
    a.stdout.pipe(b.stdin)


def test_pipe_child_to_child_10_mb(node_traces, case_dir):
    node, py, _ = cmp("pipe_big", node_traces, case_dir)
    out = shape(py["pipe_big/b"])["streams"]["stdout"][0][1]
    assert int(out) == sum(len(str(i)) + 1 for i in range(1, 1500001))


@case("pipeline", """
    const A = trace('pipeline/a'), B = trace('pipeline/b'), C = trace('pipeline/c');
    const a = cp.spawn('sh', ['-c', 'printf "3\\\\n1\\\\n2\\\\n"']);
    const b = cp.spawn('sort', [], {stdio: [a.stdout, 'pipe', 'inherit']});
    const c = C.child(cp.spawn('tr', ['1', 'X'], {stdio: [b.stdout, 'pipe', 'inherit']}));
    B.set('stdio', b.stdio.map((x) => x !== null));
    C.set('stdio', c.stdio.map((x) => x !== null));
    // a and b are not traced: Node keeps a.stdout/b.stdout open (read-stopped), so
    // their 'close' never comes (the deliberate difference); only 'exit' is compared.
    for (const [T, x] of [[A, a], [B, b]]) x.on('exit', (...args) => T.set('exit', args));
""", CASES)
def _pipeline(trace, d):
    A, B, C = trace("pipeline/a"), trace("pipeline/b"), trace("pipeline/c")
    a = cp.spawn("sh", ["-c", 'printf "3\\n1\\n2\\n"'])
    b = cp.spawn("sort", [], stdio=[a.stdout, "pipe", "inherit"])
    c = C.child(cp.spawn("tr", ["1", "X"], stdio=[b.stdout, "pipe", "inherit"]))
    B.set("stdio", [x is not None for x in b.stdio])
    C.set("stdio", [x is not None for x in c.stdio])
    events: list = []
    for T, x, label in ((A, a, "a"), (B, b, "b")):
        x.on("exit", lambda *args, T=T: T.set("exit", list(args)))
        x.on("close", lambda *args, label=label: events.append((label, "close", args)))
        x.stdout.on("close", lambda label=label: events.append((label, "stdout close")))
        x.stdout.on("data", lambda chunk, label=label: events.append((label, "data", chunk)))
    # a and b are not traced (their traces are incomplete in Node by design), so wait here
    for x in (a, b):
        x.wait(timeout=20)
    C.extra = {"a": a, "b": b, "events": events}


def test_pipeline_of_three_hands_the_fds_over(node_traces, case_dir):
    node, py, tracers = cmp("pipeline", node_traces, case_dir)
    c = shape(py["pipeline/c"])
    assert c["streams"]["stdout"][0] == ["data", "X\n2\n3\n"]
    assert shape(py["pipeline/b"])["attrs"] == {"stdio": [False, True, False], "exit": [0, None]}
    assert c["attrs"] == {"stdio": [False, True, False]}
    # childproc's deliberate difference: the handed-over streams are closed in the
    # parent at once (no data ever went through Python), so a and b 'close' too.
    extra = tracers["pipeline/c"].extra
    ev = extra["events"]
    assert ("a", "stdout close") in ev and ("b", "stdout close") in ev
    assert ("a", "close", (0, None)) in ev and ("b", "close", (0, None)) in ev
    assert not [e for e in ev if e[1] == "data"]
    assert extra["a"].stdout.destroyed and extra["a"].stdout.fileno() == -1


@case("pipe_file", """
    const T = trace('pipe_file');
    const c = T.child(cp.spawn('seq', ['1', '20000']), false);
    const f = fs.createWriteStream(DIR + '/node.txt');
    T.set('returns_dest', c.stdout.pipe(f) === f);
    f.on('finish', () => T.set('content', fs.readFileSync(DIR + '/node.txt', 'latin1')));
""", CASES)
def _pipe_file(trace, d):
    T = trace("pipe_file")
    c = T.child(cp.spawn("seq", ["1", "20000"]), data=False)
    with open(d + "/py.txt", "wb") as f:
        f.write(b"")
        T.set("returns_dest", c.stdout.pipe(f) is f)
        c.wait(timeout=20)
        T.file_closed_by_pipe = f.closed
    with open(d + "/py.txt", "rb") as f:
        T.set("content", f.read().decode("latin-1"))


def test_pipe_to_a_file(node_traces, case_dir):
    node, py, tracers = cmp("pipe_file", node_traces, case_dir)
    assert shape(py["pipe_file"])["attrs"]["content"] == "".join(f"{i}\n" for i in range(1, 20001))
    assert tracers["pipe_file"].file_closed_by_pipe is False  # a raw file stays the caller's


# --------------------------------------------------------------------------
# iteration, lines(), read(): Python additions


@case("iterate", """
    const T = trace('iterate');
    const c = T.child(cp.spawn('sh', ['-c', 'echo one; sleep 0.1; echo two; printf three']), false);
    (async () => {
      const chunks = [];
      for await (const ch of c.stdout) chunks.push(ch);
      T.set('joined', Buffer.concat(chunks));
    })();
""", CASES)
def _iterate(trace, d):
    T = trace("iterate")
    c = T.child(cp.spawn("sh", ["-c", "echo one; sleep 0.1; echo two; printf three"]), data=False)
    chunks = list(c.stdout)
    T.types = {type(ch) for ch in chunks}
    T.set("joined", b"".join(chunks))


def test_iteration_yields_every_chunk(node_traces, case_dir):
    node, py, tracers = cmp("iterate", node_traces, case_dir)
    assert shape(py["iterate"])["attrs"]["joined"] == {"$bytes": "one\ntwo\nthree"}
    assert tracers["iterate"].types == {bytes}


@case("lines", """
    const T = trace('lines');
    const c = T.child(cp.spawn('sh', ['-c', 'printf "a\\\\n\\\\nbb\\\\n"; sleep 0.1; printf "cc"; sleep 0.1; printf "c\\\\nlast"']), false);
    const rl = require('readline').createInterface({input: c.stdout});
    const lines = [];
    rl.on('line', (l) => lines.push(l));
    rl.on('close', () => T.set('lines', lines));
""", CASES)
def _lines(trace, d):
    T = trace("lines")
    script = 'printf "a\\n\\nbb\\n"; sleep 0.1; printf "cc"; sleep 0.1; printf "c\\nlast"'
    c = T.child(cp.spawn("sh", ["-c", script]), data=False)
    lines = list(c.stdout.lines())
    T.raw = lines
    T.set("lines", [ln.rstrip(b"\n").decode() for ln in lines])


def test_lines_match_readline(node_traces, case_dir):
    node, py, tracers = cmp("lines", node_traces, case_dir)
    # with their newlines (the last line has none): nothing is lost or added
    assert tracers["lines"].raw == [b"a\n", b"\n", b"bb\n", b"ccc\n", b"last"]


def test_lines_str_once_an_encoding_is_set():
    c = cp.spawn("sh", ["-c", r"printf 'caf\303'; sleep 0.1; printf '\251\nna\303\257ve\n'"])
    c.stdout.set_encoding("utf-8")
    assert list(c.stdout.lines()) == ["café\n", "naïve\n"]
    assert c.wait(timeout=10) == 0


def test_lines_max_line_too_long_raises_after_the_good_lines():
    from childproc import LineTooLongError

    c = cp.spawn("sh", ["-c", "printf 'ok\\n'; head -c 5000 /dev/zero | tr '\\0' x; printf '\\nafter\\n'"])
    got = []
    with pytest.raises(LineTooLongError) as info:
        for line in c.stdout.lines(max_line=1000):
            got.append(line)
    assert got == [b"ok\n"]
    err = info.value
    assert isinstance(err, ValueError) and err.max_line == 1000
    assert "max_line=1000" in str(err)
    assert len(err.partial) >= 1001 and set(err.partial) == {ord("x")}
    # the child is not left hanging: it finishes and 'close' comes
    assert c.wait(timeout=10) == 0


def test_lines_long_line_within_max_line():
    c = cp.spawn("sh", ["-c", "head -c 300000 /dev/zero | tr '\\0' y; echo; echo end"])
    lines = list(c.stdout.lines(max_line=400000))
    assert lines == [b"y" * 300000 + b"\n", b"end\n"]
    assert c.wait(timeout=10) == 0


def test_read_returns_everything():
    c = cp.spawn("sh", ["-c", "echo out; sleep 0.1; printf 'more'; echo err >&2"])
    err = []
    c.stderr.on("data", err.append)  # a listener sees stderr as it comes (see the next test)
    assert c.stdout.read() == b"out\nmore"
    assert c.wait(timeout=10) == 0
    assert b"".join(err) == b"err\n"

    c = cp.spawn("sh", ["-c", r"printf '\342\202'; sleep 0.1; printf '\254'"])
    c.stdout.set_encoding("utf8")
    assert c.stdout.read() == "\u20ac"
    c.wait(timeout=10)

    c = cp.spawn("true")
    assert c.stdout.read() == b""
    assert c.wait(timeout=10) == 0


def test_unread_output_is_kept_after_exit():
    """Node's flushStdio resumes a stream nobody consumes after 'exit', and its data goes
    to no listener.  childproc keeps it instead (tests/test_streams_drain.py has the
    details): 'close' still comes without a reader, and a later read() gets the data."""
    c = cp.spawn("sh", ["-c", "echo err >&2"])
    assert c.wait(timeout=10) == 0
    assert c.stderr.read() == b"err\n" and c.stdout.read() == b""


def test_read_of_a_big_output():
    c = cp.spawn("head", ["-c", str(20 * 1024 * 1024), "/dev/zero"])
    t0 = time.monotonic()
    data = c.stdout.read()
    assert len(data) == 20 * 1024 * 1024 and data.count(0) == len(data)
    assert c.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 20


# --------------------------------------------------------------------------
# a parent busy while the child finishes: every fd is ready at the first look


BUSY_COMMANDS = {
    "stdout": "echo hi",
    "both": "echo out; echo err >&2",
    "stderr-then-exit-code": "echo err >&2; exit 3",
    "silent": "exit 0",
}


@requires_node
@pytest.mark.parametrize("command", list(BUSY_COMMANDS.values()), ids=list(BUSY_COMMANDS))
def test_whole_event_order_when_everything_is_ready_at_the_first_look(command):
    """The general traces above compare what is invariant in Node.  When the
    parent is busy until the child has written, exited and closed its pipes
    (each side waits for the child to become a zombie before its loop runs),
    Node's whole order is fixed as well: libuv reads each pipe to its EOF in
    one callback (POLLHUP after a short read), 'end' is a nextTick, the exit
    (SIGCHLD) comes after the pipes, the pipes were registered with epoll
    in the order their reads started, and the streams' 'close' events come
    in the close phase, the last closed first.  Compared in full."""
    js = f"""
        const ev = [];
        const c = cp.spawn('sh', ['-c', {json.dumps(command)}]);
        for (const n of ['stdout', 'stderr']) {{
            c[n].on('data', (d) => ev.push(n + ':data:' + d));
            c[n].on('end', () => ev.push(n + ':end'));
            c[n].on('close', () => ev.push(n + ':close'));
        }}
        c.on('exit', (code, sig) => ev.push('exit:' + code));
        c.on('close', (code, sig) => ev.push('close:' + code));
        // Busy until the child is a zombie: it has written, exited and
        // closed its pipes before the loop first looks.
        const stat = '/proc/' + c.pid + '/stat';
        for (const until = Date.now() + 10000; Date.now() < until;) {{
            const st = require('fs').readFileSync(stat, 'utf8');
            if (st.slice(st.lastIndexOf(')') + 2).startsWith('Z')) break;
        }}
        // After every event (a stream's 'close' may follow the child's).
        process.on('exit', () => process.stdout.write('\\n' + JSON.stringify(ev)));
    """
    expected = node_json(js)
    assert _busy_parent_trace(command, wait=True) == expected
    assert asyncio.run(_busy_parent_trace_async(command)) == expected


def _busy_parent_trace(command: str, wait: bool) -> list[str]:
    ev: list[str] = []
    c = cp.spawn("sh", ["-c", command])
    for n in ("stdout", "stderr"):
        stream = getattr(c, n)
        stream.on("data", lambda d, n=n: ev.append(f"{n}:data:{d.decode()}"))
        stream.on("end", lambda n=n: ev.append(f"{n}:end"))
        stream.on("close", lambda *_, n=n: ev.append(f"{n}:close"))
    c.on("exit", lambda code, sig: ev.append(f"exit:{code}"))
    c.on("close", lambda code, sig: ev.append(f"close:{code}"))
    # Blocked until the child has exited (not reaped): it has written and
    # closed its pipes before the loop first looks.
    _wait_exited_unreaped(c.pid)
    if wait:
        c.wait(timeout=10)
    return ev


def _wait_exited_unreaped(pid: int) -> None:
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return
    import select  # macOS: no waitid, but a kqueue's process-exit event

    kq = select.kqueue()
    try:
        kq.control([select.kevent(pid, select.KQ_FILTER_PROC, select.KQ_EV_ADD | select.KQ_EV_ONESHOT,
                                  select.KQ_NOTE_EXIT)], 0, 0)
        select.select([kq.fileno()], [], [])  # readable once the event is pending
    except ProcessLookupError:
        pass  # exited already
    finally:
        kq.close()


async def _busy_parent_trace_async(command: str) -> list[str]:
    ev = _busy_parent_trace(command, wait=False)
    await asyncio.sleep(0.5)  # every event, a stream's 'close' after the child's included
    return ev


def test_every_case_is_checked():
    import inspect
    import sys

    src = inspect.getsource(sys.modules[__name__])
    for name in CASES:
        assert f'cmp("{name}"' in src, name


def test_no_fd_left_behind_by_this_module():
    """The streams of every child above were closed (by 'close' or handover)."""
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(20):
        a = cp.spawn("sh", ["-c", "echo x"])
        b = cp.spawn("cat", stdio=[a.stdout, "pipe", "pipe"])
        assert b.stdout.read() == b"x\n"
        a.wait(timeout=10)
        b.wait(timeout=10)
    after = set(os.listdir("/proc/self/fd"))
    assert len(after - before) <= 1, sorted(after - before)  # the listing's own fd may differ


@pytest.mark.skipif(sys.platform == "win32", reason="O_NONBLOCK is POSIX's")
def test_our_pipe_ends_are_non_blocking_and_the_childs_are_not() -> None:
    # O_NONBLOCK is on the open file description: set on our ends (after
    # the spawn, by the C core), never on the child's, which a program
    # expects blocking.
    probe = "import os, sys; sys.stdout.write(repr([os.get_blocking(i) for i in (0, 1, 2, 3)]))"
    child = cp.spawn(sys.executable, ["-c", probe], stdio=["pipe", "pipe", "pipe", "ipc"])
    ours = [stream.fileno() for stream in (child.stdin, child.stdout, child.stderr)]
    assert [os.get_blocking(fd) for fd in ours] == [False, False, False]
    # (The channel's socket is the exception: blocking, with MSG_DONTWAIT on
    # every call but the read a worker's loop sleeps in; see _ipc/channel.py.)
    out = []
    child.stdout.on("data", out.append)
    child.stdin.end()
    child.disconnect()
    assert child.wait() == 0
    assert b"".join(out) == b"[True, True, True, True]"


def test_output_of_a_child_gone_before_the_first_wait_arrives_whole() -> None:
    # By the first wait the pipes are hung up, stdout still holding data
    # and stderr empty: the loop reads stdout's data before its EOF, and
    # takes stderr's hang-up (no data) for its EOF.
    child = cp.spawn("sh", ["-c", "printf 'abc%.0s' $(seq 1000)"])
    out: list[bytes] = []
    ends: list[str] = []
    child.stdout.on("data", out.append)
    child.stdout.on("end", lambda: ends.append("stdout"))
    child.stderr.on("end", lambda: ends.append("stderr"))
    if hasattr(os, "waitid"):
        while not child._process_ended():  # exited, nothing read yet (no timing asserted)
            time.sleep(0.01)
    else:  # (macOS before 3.13, the portable-POSIX run) no way to ask: give it time
        time.sleep(0.5)
    assert child.wait() == 0
    assert b"".join(out) == b"abc" * 1000
    assert sorted(ends) == ["stderr", "stdout"]
