"""cp.spawn(): ChildProcess events, attributes, kill, timeout, abort -- traced and compared with node.

Every case below is written twice, once in JavaScript and once in Python, as
the same few lines: spawn, attach a tracer, maybe call ``kill()`` or abort
from a listener.  All JavaScript cases run concurrently in **one** ``node``
process (module fixture ``node_traces``), which writes the traces when it
exits; each Python case runs on its own in the test that checks it.

A trace records, in order, every ChildProcess event (``'spawn'``, ``'error'``,
``'exit'``, ``'close'``, with their arguments and a snapshot of ``killed``,
``exit_code``, ``signal_code`` and whether ``pid`` is set) and every stdio
stream event (``stdout:data``, ``stdout:end``, ``stdout:close``,
``stdin:close``, ...), plus named values the case records (``T.set``).

What is compared, and why.  Node's relative order of ``'exit'`` and the stream
events varies between runs (Node's docs: "the relative order of 'exit' and
the stream 'end'/'close' events varies"), so whole traces are not compared.
What is invariant in Node is compared exactly (``shape()``):

* the sequence of ChildProcess events with their arguments and state
  snapshots (``spawn`` < ``exit`` < ``close``; ``spawn`` < ``error`` < ``exit`` <
  ``close`` for an abort; ``error`` < ``close`` for a spawn failure);
* per stdio stream, its own event sequence with the data concatenated
  (chunking is the kernel's business): e.g. stdout ``data* end close``,
  stdin ``close``;
* the recorded values (return values of ``kill()``, errors' fields ...).

Besides, ``check_invariants()`` asserts the cross-object orders that Node
guarantees, on both traces (so a wrong claim about Node fails on the node
side): ``'spawn'`` is the first event of all (before any stdio data),
``'close'`` is the last ChildProcess event and comes exactly once, after
``'exit'``/``'error'`` and after every ``'end'`` of stdout/stderr.  A stream's
own ``'close'`` may come after the child's ``'close'`` (the child's listener
runs first inside the last stream's ``'close'``), so that is
not constrained.

Errors are compared by their fields: ``message``, ``code``, ``errno`` (absolute
value: Node's is negative, Python's positive), ``syscall``, ``path``,
``spawnargs``, ``cause`` (an object cause by its ``name``); the class is a
deliberate difference (Node's ``TypeError`` for an unknown signal is a
``ValueError`` here) and is asserted separately on the Python side.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from typing import Any, Callable

import pytest

import childproc as cp
from nodecmp import need_node, run_node

CHILD_EVENTS = ("spawn", "error", "exit", "close")
STDIO_NAMES = ("stdin", "stdout", "stderr")
SIGNALS = ["SIGTERM", "SIGKILL", "SIGHUP", "SIGINT", "SIGQUIT", "SIGPIPE", "SIGUSR1", "SIGUSR2",
           "SIGALRM", "SIGABRT", "SIGSEGV", "SIGBUS", "SIGXCPU"]
EXIT_CODES = [0, 1, 2, 42, 126, 255, 256, 300]

WATCHDOG_SECONDS = 30
pytestmark = pytest.mark.usefixtures("watchdog")


# --------------------------------------------------------------------------
# the Python tracer (the JavaScript one, in _JS_PRELUDE, is the same thing)


def enc_err(e: Any) -> dict:
    out: dict = {}
    for key in ("message", "code", "errno", "syscall", "path", "spawnargs"):
        if key == "message":
            v = str(e)
        else:
            v = getattr(e, key, None)
        if v is None:
            continue
        if key == "errno":
            v = abs(v)
        if key == "path":
            v = os.fsdecode(v)
        if key == "spawnargs":
            v = [os.fsdecode(x) for x in v]
        out[key] = v
    cause = getattr(e, "cause", None)
    if cause is not None:
        out["cause"] = {"name": type(cause).__name__} if isinstance(cause, BaseException) else cause
    return out


def encv(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).decode("latin-1")}
    if isinstance(v, BaseException):
        return enc_err(v)
    if isinstance(v, (list, tuple)):
        return [encv(x) for x in v]
    return v


class Tracer:
    def __init__(self) -> None:
        self.events: list = []
        self.attrs: dict = {}
        self.times: dict = {}
        self.children: list = []
        self.t0 = time.monotonic()
        self.py_errors: list = []  # the raw Python error objects, for Python-only checks

    def set(self, key: str, value: Any) -> None:
        self.attrs[key] = encv(value)

    def threw(self, fn: Callable[[], Any]) -> Any:
        """What ``fn()`` raised, as compared (or ``{'returned': value}``)."""
        try:
            return {"returned": encv(fn())}
        except Exception as e:  # noqa: BLE001 - recorded and compared
            self.py_errors.append(e)
            return {"threw": enc_err(e)}

    def child(self, c: cp.ChildProcess, data: bool = True) -> cp.ChildProcess:
        """Trace ``c`` and its stdio streams; ``data=False`` attaches no ``'data'``
        listener (which would switch a stream to flowing mode, or keep ``pipe()``
        from handing it to the C pump)."""
        self.children.append(c)

        def state():
            return {"killed": c.killed, "exit_code": c.exit_code, "signal_code": c.signal_code,
                    "has_pid": c.pid is not None}

        def on_child(name):
            def listener(*args):
                self.times.setdefault(name, time.monotonic() - self.t0)
                if name == "error":
                    self.py_errors.append(args[0])
                self.events.append([name, encv(list(args)), state()])
            return listener

        for name in CHILD_EVENTS:
            c.on(name, on_child(name))
        for i, s in enumerate(c.stdio or []):
            if s is None:
                continue
            label = STDIO_NAMES[i] if i < 3 else f"fd{i}"
            names = ("finish", "close", "error") if i == 0 else ("data", "end", "close", "error")
            for n in names if data else [n for n in names if n != "data"]:
                s.on(n, lambda *a, ev=f"{label}:{n}": self.events.append([ev, *encv(list(a))]))
        return c

    def sync(self, c: cp.ChildProcess) -> None:
        """The attributes right after spawn() returned."""
        self.attrs["sync"] = {
            "has_pid": c.pid is not None,
            "spawnfile": os.fsdecode(c.spawnfile),
            "spawnargs": [os.fsdecode(a) for a in c.spawnargs],
            "stdio": None if c.stdio is None else [x is not None for x in c.stdio],
            "stdin": c.stdin is not None,
            "stdout": c.stdout is not None,
            "stderr": c.stderr is not None,
            "exit_code": c.exit_code,
            "signal_code": c.signal_code,
            "killed": c.killed,
            "connected": c.connected,
        }

    def dump(self) -> dict:
        return {"events": self.events, "attrs": self.attrs, "times": self.times, "traced": bool(self.children)}


_JS_PRELUDE = r"""
'use strict';
const cp = require('child_process'), fs = require('fs'), os = require('os');
const [DIR, RESULT] = process.argv.slice(2);
const R = {};
const now = () => Number(process.hrtime.bigint()) / 1e9;
function encErr(e) {
  const o = {};
  for (const k of ['message', 'code', 'errno', 'syscall', 'path', 'spawnargs'])
    if (e[k] !== undefined && e[k] !== null) o[k] = k === 'errno' ? Math.abs(e[k]) : e[k];
  if (e.cause !== undefined && e.cause !== null)
    o.cause = typeof e.cause === 'object' ? {name: e.cause.name} : e.cause;
  return o;
}
function encv(v) {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return {$bytes: v.toString('latin1')};
  if (v instanceof Error) return encErr(v);
  if (Array.isArray(v)) return v.map(encv);
  return v;
}
function trace(name) {
  const r = R[name] = {events: [], attrs: {}, times: {}, traced: false};
  const t0 = now();
  return {
    set(k, v) { r.attrs[k] = encv(v); },
    threw(fn) { try { return {returned: encv(fn())}; } catch (e) { return {threw: encErr(e)}; } },
    child(c, data = true) {
      r.traced = true;
      const st = () => ({killed: c.killed, exit_code: c.exitCode, signal_code: c.signalCode,
                         has_pid: typeof c.pid === 'number'});
      for (const n of ['spawn', 'error', 'exit', 'close'])
        c.on(n, (...a) => { if (!(n in r.times)) r.times[n] = now() - t0;
                            r.events.push([n, encv(a), st()]); });
      (c.stdio || []).forEach((s, i) => {
        if (!s) return;
        const lab = i < 3 ? ['stdin', 'stdout', 'stderr'][i] : 'fd' + i;
        const names = i === 0 ? ['finish', 'close', 'error'] : ['data', 'end', 'close', 'error'];
        for (const n of names) if (data || n !== 'data') s.on(n, (...a) => r.events.push([lab + ':' + n, ...encv(a)]));
      });
      return c;
    },
    sync(c) {
      r.attrs.sync = {has_pid: typeof c.pid === 'number', spawnfile: c.spawnfile, spawnargs: c.spawnargs,
        stdio: c.stdio ? c.stdio.map(x => x !== null && x !== undefined) : null,
        stdin: !!c.stdin, stdout: !!c.stdout, stderr: !!c.stderr, exit_code: c.exitCode,
        signal_code: c.signalCode, killed: c.killed, connected: c.connected};
    },
  };
}
function ps(pid, field) { return Number(cp.execSync(`ps -o ${field}= -p ${pid}`).toString().trim()); }
process.on('exit', () => fs.writeFileSync(RESULT, JSON.stringify(R)));
"""

CASES: dict[str, tuple[str, Callable]] = {}


def case(name: str, js: str, registry: dict | None = None):
    """Register the Python half (the decorated function) and the JavaScript half of a case."""

    def deco(fn):
        (CASES if registry is None else registry)[name] = (textwrap.dedent(js), fn)
        return fn

    return deco


# --------------------------------------------------------------------------
# the cases, JavaScript first, then the same in Python


@case("normal", """
    const T = trace('normal');
    const c = T.child(cp.spawn('sh', ['-c', 'echo out; echo err >&2; exit 3']));
    T.sync(c);
""")
def _normal(trace, d):
    T = trace("normal")
    c = T.child(cp.spawn("sh", ["-c", "echo out; echo err >&2; exit 3"]))
    T.sync(c)


@case("enoent", """
    const T = trace('enoent');
    const c = T.child(cp.spawn('does-not-exist-xyz', ['a', 'b']));
    T.sync(c);
    c.on('close', () => { T.set('kill_after', c.kill()); T.set('killed', c.killed); });
""")
def _enoent(trace, d):
    # Not in the JavaScript half: kill() between a failed spawn and its 'error'.
    # Node's process handle then has pid 0 and kill() calls kill(0, SIGTERM),
    # which signals node's whole process group (found writing this test: it
    # killed pytest).  childproc returns False and signals nothing; asserted in
    # test_kill_right_after_a_failed_spawn_signals_nothing.
    T = trace("enoent")
    c = T.child(cp.spawn("does-not-exist-xyz", ["a", "b"]))
    T.sync(c)

    @c.on("close")
    def _(*_):
        T.set("kill_after", c.kill())
        T.set("killed", c.killed)


@case("bad_cwd", """
    const T = trace('bad_cwd');
    T.sync(T.child(cp.spawn('ls', [], {cwd: DIR + '/no-such-dir'})));
""")
def _bad_cwd(trace, d):
    T = trace("bad_cwd")
    T.sync(T.child(cp.spawn("ls", [], cwd=d + "/no-such-dir")))


@case("eacces_file", """
    const T = trace('eacces_file');
    T.sync(T.child(cp.spawn(DIR + '/not-executable', ['x'])));
""")
def _eacces_file(trace, d):
    T = trace("eacces_file")
    T.sync(T.child(cp.spawn(d + "/not-executable", ["x"])))


@case("eacces_dir", """
    const T = trace('eacces_dir');
    T.sync(T.child(cp.spawn(DIR)));
""")
def _eacces_dir(trace, d):
    T = trace("eacces_dir")
    T.sync(T.child(cp.spawn(d)))


@case("kill_term", """
    const T = trace('kill_term');
    const c = T.child(cp.spawn('sleep', ['5']));
    c.on('spawn', () => { T.set('ret', c.kill()); T.set('killed', c.killed); });
""")
def _kill_term(trace, d):
    T = trace("kill_term")
    c = T.child(cp.spawn("sleep", ["5"]))

    @c.on("spawn")
    def _():
        T.set("ret", c.kill())
        T.set("killed", c.killed)


@case("kill_sync", """
    const T = trace('kill_sync');
    const c = T.child(cp.spawn('sleep', ['5']));
    T.set('ret', c.kill('SIGKILL'));
    T.set('killed', c.killed);
""")
def _kill_sync(trace, d):
    T = trace("kill_sync")
    c = T.child(cp.spawn("sleep", ["5"]))
    T.set("ret", c.kill("SIGKILL"))
    T.set("killed", c.killed)


@case("kill_forms", """
    for (const sig of [9, 'sigkill', 'SIGUSR1', 2]) {
      const T = trace('kill_forms/' + sig);
      const c = T.child(cp.spawn('sleep', ['5']));
      c.on('spawn', () => T.set('ret', c.kill(sig)));
    }
""")
def _kill_forms(trace, d):
    for sig, py_sig in ((9, 9), ("sigkill", "sigkill"), ("SIGUSR1", signal.SIGUSR1), (2, 2)):
        T = trace(f"kill_forms/{sig}")
        c = T.child(cp.spawn("sleep", ["5"]))
        c.on("spawn", lambda c=c, T=T, s=py_sig: T.set("ret", c.kill(s)))


@case("kill_after_exit", """
    const T = trace('kill_after_exit');
    const c = T.child(cp.spawn('true'));
    c.on('exit', () => T.set('on_exit', c.kill()));
    c.on('close', () => { T.set('on_close', c.kill('SIGKILL')); T.set('killed', c.killed); });
""")
def _kill_after_exit(trace, d):
    T = trace("kill_after_exit")
    c = T.child(cp.spawn("true"))
    c.on("exit", lambda *_: T.set("on_exit", c.kill()))

    @c.on("close")
    def _(*_):
        T.set("on_close", c.kill("SIGKILL"))
        T.set("killed", c.killed)


@case("kill_zero", """
    const T = trace('kill_zero');
    const c = T.child(cp.spawn('sleep', ['5']));
    c.on('spawn', () => {
      T.set('k0', c.kill(0)); T.set('killed_after_k0', c.killed); T.set('kterm', c.kill());
    });
""")
def _kill_zero(trace, d):
    T = trace("kill_zero")
    c = T.child(cp.spawn("sleep", ["5"]))

    @c.on("spawn")
    def _():
        T.set("k0", c.kill(0))
        T.set("killed_after_k0", c.killed)
        T.set("kterm", c.kill())


@case("unknown_signal", """
    const T = trace('unknown_signal');
    const c = T.child(cp.spawn('true'));
    T.set('before', T.threw(() => c.kill('SIGBOGUS')));
    T.set('realtime', T.threw(() => c.kill(64)));
    c.on('close', () => {
      T.set('after', T.threw(() => c.kill('SIGBOGUS')));
      T.set('after_num', T.threw(() => c.kill(12345)));
      T.set('killed', c.killed);
    });
""")
def _unknown_signal(trace, d):
    T = trace("unknown_signal")
    c = T.child(cp.spawn("true"))
    T.set("before", T.threw(lambda: c.kill("SIGBOGUS")))
    T.set("realtime", T.threw(lambda: c.kill(64)))

    @c.on("close")
    def _(*_):
        T.set("after", T.threw(lambda: c.kill("SIGBOGUS")))
        T.set("after_num", T.threw(lambda: c.kill(12345)))
        T.set("killed", c.killed)


@case("timeout_kill_signal", """
    const T = trace('timeout_kill_signal');
    T.child(cp.spawn('sleep', ['5'], {timeout: 100, killSignal: 'SIGINT'}));
""")
def _timeout_kill_signal(trace, d):
    T = trace("timeout_kill_signal")
    T.child(cp.spawn("sleep", ["5"], timeout=0.1, kill_signal="SIGINT"))


@case("timeout_default", """
    const T = trace('timeout_default');
    T.child(cp.spawn('sleep', ['5'], {timeout: 100}));
""")
def _timeout_default(trace, d):
    T = trace("timeout_default")
    T.child(cp.spawn("sleep", ["5"], timeout=0.1))


@case("timeout_not_reached", """
    const T = trace('timeout_not_reached');
    T.child(cp.spawn('true', [], {timeout: 20000, killSignal: 'SIGKILL'}));
""")
def _timeout_not_reached(trace, d):
    T = trace("timeout_not_reached")
    T.child(cp.spawn("true", [], timeout=20, kill_signal="SIGKILL"))


@case("abort_pre", """
    const T = trace('abort_pre');
    const c = T.child(cp.spawn('sleep', ['5'], {signal: AbortSignal.abort('why')}));
    T.sync(c);
""")
def _abort_pre(trace, d):
    T = trace("abort_pre")
    c = T.child(cp.spawn("sleep", ["5"], signal=cp.AbortSignal.abort("why")))
    T.sync(c)


@case("abort_later", """
    const T = trace('abort_later');
    const ac = new AbortController();
    const c = T.child(cp.spawn('sh', ['-c', 'echo ready; exec sleep 5'], {signal: ac.signal}));
    c.stdout.on('data', () => ac.abort('later'));
""")
def _abort_later(trace, d):
    T = trace("abort_later")
    ac = cp.AbortController()
    c = T.child(cp.spawn("sh", ["-c", "echo ready; exec sleep 5"], signal=ac.signal))
    c.stdout.on("data", lambda _: ac.abort("later"))


@case("abort_default_reason", """
    const T = trace('abort_default_reason');
    const ac = new AbortController();
    const c = T.child(cp.spawn('sleep', ['5'], {signal: ac.signal, killSignal: 'SIGKILL'}));
    c.on('spawn', () => ac.abort());
""")
def _abort_default_reason(trace, d):
    T = trace("abort_default_reason")
    ac = cp.AbortController()
    c = T.child(cp.spawn("sleep", ["5"], signal=ac.signal, kill_signal="SIGKILL"))
    c.on("spawn", lambda: ac.abort())


@case("abort_after_exit", """
    for (const when of ['exit', 'close']) {
      const T = trace('abort_after_exit/' + when);
      const ac = new AbortController();
      const c = T.child(cp.spawn('true', [], {signal: ac.signal}));
      c.on(when, () => { ac.abort('late'); T.set('killed', c.killed); });
    }
""")
def _abort_after_exit(trace, d):
    for when in ("exit", "close"):
        T = trace(f"abort_after_exit/{when}")
        ac = cp.AbortController()
        c = T.child(cp.spawn("true", [], signal=ac.signal))

        def later(*_, ac=ac, T=T, c=c):
            ac.abort("late")
            T.set("killed", c.killed)

        c.on(when, later)


@case("grandchild", """
    const T = trace('grandchild');
    T.child(cp.spawn('sh', ['-c', 'sleep 1 & echo started']));
""")
def _grandchild(trace, d):
    T = trace("grandchild")
    T.child(cp.spawn("sh", ["-c", "sleep 1 & echo started"]))


@case("groups", """
    for (const detached of [true, false]) {
      const T = trace('groups/' + detached);
      const c = T.child(cp.spawn('sleep', ['5'], {detached}));
      c.on('spawn', () => {
        const pgid = ps(c.pid, 'pgid'), sid = ps(c.pid, 'sid');
        T.set('ids', {pgid_is_pid: pgid === c.pid, sid_is_pid: sid === c.pid,
                      pgid_is_parents: pgid === ps(process.pid, 'pgid')});
        c.kill();
      });
    }
""")
def _groups(trace, d):
    for detached in (True, False):
        T = trace(f"groups/{'true' if detached else 'false'}")
        c = T.child(cp.spawn("sleep", ["5"], detached=detached))

        def on_spawn(c=c, T=T):
            pgid, sid = os.getpgid(c.pid), os.getsid(c.pid)
            T.set("ids", {"pgid_is_pid": pgid == c.pid, "sid_is_pid": sid == c.pid,
                          "pgid_is_parents": pgid == os.getpgrp()})
            c.kill()

        c.on("spawn", on_spawn)


@case("exit_codes", f"""
    for (const code of {json.dumps(EXIT_CODES)}) trace('exit_codes/' + code).child(cp.spawn('sh', ['-c', 'exit ' + code]));
    trace('exit_codes/missing').child(cp.spawn('sh', ['-c', 'no-such-command-xyz 2>/dev/null']));
""")
def _exit_codes(trace, d):
    for code in EXIT_CODES:
        trace(f"exit_codes/{code}").child(cp.spawn("sh", ["-c", f"exit {code}"]))
    trace("exit_codes/missing").child(cp.spawn("sh", ["-c", "no-such-command-xyz 2>/dev/null"]))


@case("signals", f"""
    for (const name of {json.dumps(SIGNALS)})
      trace('signals/' + name).child(
        cp.spawn('sh', ['-c', 'ulimit -c 0; kill -' + os.constants.signals[name] + ' $$; exit 99']));
""")
def _signals(trace, d):
    for name in SIGNALS:
        num = int(signal.Signals[name])
        trace(f"signals/{name}").child(cp.spawn("sh", ["-c", f"ulimit -c 0; kill -{num} $$; exit 99"]))


@case("stdio_ignore", """
    const T = trace('stdio_ignore');
    T.sync(T.child(cp.spawn('sh', ['-c', 'echo out; echo err >&2'], {stdio: 'ignore'})));
    const U = trace('stdio_mixed');
    U.sync(U.child(cp.spawn('sh', ['-c', 'echo out; echo err >&2; exit 5'], {stdio: ['ignore', 'pipe', 'ignore']})));
""")
def _stdio_ignore(trace, d):
    T = trace("stdio_ignore")
    T.sync(T.child(cp.spawn("sh", ["-c", "echo out; echo err >&2"], stdio="ignore")))
    U = trace("stdio_mixed")
    U.sync(U.child(cp.spawn("sh", ["-c", "echo out; echo err >&2; exit 5"], stdio=["ignore", "pipe", "ignore"])))


# --------------------------------------------------------------------------
# running both sides


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("spawn_cases")
    f = d / "not-executable"
    f.write_text("#!/bin/sh\necho should not run\n")
    f.chmod(0o644)
    return str(d)


def run_node_cases(cases: dict, case_dir: str) -> dict:
    """All JavaScript halves of ``cases``, concurrently, in one node process.

    The answer comes in a file: the cases' children use node's own stdio."""
    need_node()
    script = _JS_PRELUDE + "\n".join(f"{{ // {name}\n{js}\n}}" for name, (js, _) in cases.items())
    js_file = os.path.join(case_dir, "cases.js")
    result = os.path.join(case_dir, "node_result.json")
    with open(js_file, "w") as f:
        f.write(script)
    run_node(file=js_file, args=[case_dir, result])
    with open(result) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def node_traces(case_dir):
    return run_node_cases(CASES, case_dir)


def run_py(name: str, case_dir: str, cases: dict | None = None) -> tuple[dict, dict]:
    """Run the Python half of case ``name``; its traces (dumped) and tracers."""
    tracers: dict[str, Tracer] = {}

    def trace(tname):
        t = tracers[tname] = Tracer()
        return t

    (CASES if cases is None else cases)[name][1](trace, case_dir)
    for t in tracers.values():
        for c in t.children:
            c.wait(timeout=20)
    cp.run()  # whatever is still queued (stdin 'close', listeners on the last stream)
    return {k: t.dump() for k, t in tracers.items()}, tracers


def shape(tr: dict) -> dict:
    """The parts of a trace that are invariant in Node (see the module docstring)."""
    child = [e for e in tr["events"] if e[0] in CHILD_EVENTS]
    streams: dict = {}
    for e in tr["events"]:
        if ":" not in e[0]:
            continue
        label, ev = e[0].split(":")
        seq = streams.setdefault(label, [])
        if ev == "data":
            if seq and seq[-1][0] == "data":
                seq[-1][1] += e[1]["$bytes"]
            else:
                seq.append(["data", e[1]["$bytes"]])
        elif ev == "close":
            # net.Socket passes hadError (false here); childproc's pipe streams emit
            # Readable's argument-less 'close'.  Not compared: the event is.
            seq.append(["close"])
        else:
            seq.append([ev, *e[1:]])
    return {"child": child, "streams": streams, "attrs": tr["attrs"]}


def check_invariants(tr: dict, side: str) -> None:
    if not tr["traced"]:
        assert not tr["events"], side  # a trace holding only recorded values
        return
    names = [e[0] for e in tr["events"]]
    where = f"{side}: {names}"
    child = [n for n in names if n in CHILD_EVENTS]
    assert names, where
    if "spawn" in names:
        assert names[0] == "spawn", f"'spawn' is not the first event; {where}"
    assert child.count("close") == 1, f"'close' not exactly once; {where}"
    assert child[-1] == "close", f"'close' is not the last ChildProcess event; {where}"
    close_at = names.index("close")
    for i, n in enumerate(names):
        if n.split(":")[-1] in ("data", "end") and n.split(":")[0] != "stdin":
            assert i < close_at, f"{n} after 'close'; {where}"
    if "exit" in names:
        assert names.index("exit") < close_at, where


def compare(name: str, node_traces: dict, case_dir: str, cases: dict | None = None) -> tuple[dict, dict, dict]:
    """Run case ``name`` in Python; compare every trace it made with node's. Returns
    (node traces, python traces, python tracers)."""
    py, tracers = run_py(name, case_dir, cases)
    expected = {k for k in node_traces if k == name or k.startswith(name + "/")}
    assert expected <= set(py), f"node made traces {sorted(expected)}, childproc {sorted(py)}"
    node = {k: node_traces[k] for k in py}
    problems = []
    for key in sorted(node):
        check_invariants(node[key], f"node {key}")
        check_invariants(py[key], f"childproc {key}")
        n, p = shape(node[key]), shape(py[key])
        if n != p:
            problems.append(_diff(key, n, p))
    assert not problems, "\n\n".join(problems)
    return node, py, tracers


def _diff(key: str, n: dict, p: dict) -> str:
    lines = [f"[{key}] childproc differs from node:"]
    for part in ("child", "streams", "attrs"):
        if n[part] != p[part]:
            if isinstance(n[part], dict):
                for k in sorted(set(n[part]) | set(p[part])):
                    if n[part].get(k, "<absent>") != p[part].get(k, "<absent>"):
                        lines.append(f"  {part}.{k}:\n    node      = {n[part].get(k, '<absent>')!r}\n"
                                     f"    childproc = {p[part].get(k, '<absent>')!r}")
            else:
                lines.append(f"  {part}:\n    node      = {n[part]!r}\n    childproc = {p[part]!r}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the tests


def test_normal_exit_with_stdout_and_stderr(node_traces, case_dir):
    node, py, _ = compare("normal", node_traces, case_dir)
    p = shape(py["normal"])
    assert p["child"][0][0] == "spawn"
    assert p["child"][1][:2] == ["exit", [3, None]]
    assert p["child"][2][:2] == ["close", [3, None]]
    assert p["streams"]["stdout"] == [["data", "out\n"], ["end"], ["close"]]
    assert p["streams"]["stderr"] == [["data", "err\n"], ["end"], ["close"]]
    assert p["attrs"]["sync"]["spawnargs"] == ["sh", "-c", "echo out; echo err >&2; exit 3"]


def test_enoent_error_then_close_minus_2(node_traces, case_dir):
    node, py, tracers = compare("enoent", node_traces, case_dir)
    p = shape(py["enoent"])
    # no 'spawn', no 'exit'; 'error' with Node's shape; 'close'(-2, None)
    assert [e[0] for e in p["child"]] == ["error", "close"]
    assert p["child"][0][1][0] == {
        "message": "spawn does-not-exist-xyz ENOENT", "code": "ENOENT", "errno": 2,
        "syscall": "spawn does-not-exist-xyz", "path": "does-not-exist-xyz", "spawnargs": ["a", "b"]}
    assert p["child"][1][1] == [-2, None]
    sync = p["attrs"]["sync"]
    assert sync["has_pid"] is False and sync["stdio"] == [True, True, True]
    # Python additions on top of Node's shape: an OSError with a positive errno,
    # caught by `except FileNotFoundError` like subprocess's.
    err = tracers["enoent"].py_errors[0]
    assert isinstance(err, cp.SpawnError) and isinstance(err, FileNotFoundError) and err.errno == 2
    assert tracers["enoent"].children[0].pid is None


def test_kill_right_after_a_failed_spawn_signals_nothing():
    """Deliberately not compared with node: Node's kill() here is kill(0, SIGTERM) on its
    own process group (see _enoent).  childproc: False, nothing signalled, no 'error'."""
    got = []
    old = signal.signal(signal.SIGTERM, lambda *_: got.append("SIGTERM reached the test process"))
    try:
        c = cp.spawn("does-not-exist-xyz")
        errors = []
        c.on("error", errors.append)
        assert c.kill() is False and c.kill("SIGKILL") is False and c.kill(0) is False
        assert c.killed is False
        assert c.wait(timeout=10) == -2
        assert [e.code for e in errors] == ["ENOENT"]
    finally:
        signal.signal(signal.SIGTERM, old)
    assert got == []


def test_bad_cwd_is_enoent_for_the_command(node_traces, case_dir):
    node, py, _ = compare("bad_cwd", node_traces, case_dir)
    err = shape(py["bad_cwd"])["child"][0]
    assert err[0] == "error" and err[1][0]["message"] == "spawn ls ENOENT" and err[1][0]["spawnargs"] == []


def test_eacces_on_a_file(node_traces, case_dir):
    node, py, tracers = compare("eacces_file", node_traces, case_dir)
    ev = shape(py["eacces_file"])["child"]
    assert [e[0] for e in ev] == ["error", "close"] and ev[1][1] == [-13, None]
    assert ev[0][1][0]["code"] == "EACCES"
    assert isinstance(tracers["eacces_file"].py_errors[0], PermissionError)


def test_eacces_on_a_directory(node_traces, case_dir):
    node, py, _ = compare("eacces_dir", node_traces, case_dir)
    ev = shape(py["eacces_dir"])["child"]
    assert ev[0][1][0]["message"] == f"spawn {case_dir} EACCES" and ev[1][1] == [-13, None]


def test_kill_sigterm_after_spawn(node_traces, case_dir):
    node, py, _ = compare("kill_term", node_traces, case_dir)
    p = shape(py["kill_term"])
    assert p["attrs"] == {"ret": True, "killed": True}
    assert p["child"][1][:2] == ["exit", [None, "SIGTERM"]]


def test_kill_right_after_spawn(node_traces, case_dir):
    node, py, _ = compare("kill_sync", node_traces, case_dir)
    p = shape(py["kill_sync"])
    assert p["attrs"] == {"ret": True, "killed": True}
    assert p["child"][0] == ["spawn", [], {"killed": True, "exit_code": None, "signal_code": None, "has_pid": True}]
    assert p["child"][1][:2] == ["exit", [None, "SIGKILL"]]


def test_kill_accepts_numbers_and_lower_case_names(node_traces, case_dir):
    node, py, _ = compare("kill_forms", node_traces, case_dir)
    assert {k: shape(v)["child"][1][1] for k, v in py.items()} == {
        "kill_forms/9": [None, "SIGKILL"], "kill_forms/sigkill": [None, "SIGKILL"],
        "kill_forms/SIGUSR1": [None, "SIGUSR1"], "kill_forms/2": [None, "SIGINT"]}


def test_kill_after_exit_returns_false(node_traces, case_dir):
    node, py, _ = compare("kill_after_exit", node_traces, case_dir)
    assert shape(py["kill_after_exit"])["attrs"] == {"on_exit": False, "on_close": False, "killed": False}


def test_kill_zero_probes_and_sets_killed(node_traces, case_dir):
    node, py, _ = compare("kill_zero", node_traces, case_dir)
    assert shape(py["kill_zero"])["attrs"] == {"k0": True, "killed_after_k0": True, "kterm": True}


def test_unknown_signal_raises_even_after_exit(node_traces, case_dir):
    node, py, tracers = compare("unknown_signal", node_traces, case_dir)
    attrs = shape(py["unknown_signal"])["attrs"]
    assert attrs["after"] == {"threw": {"message": "Unknown signal: SIGBOGUS", "code": "ERR_UNKNOWN_SIGNAL"}}
    assert attrs["killed"] is False
    # Deliberate difference: ValueError (Node: TypeError).
    errors = tracers["unknown_signal"].py_errors
    assert len(errors) == 4 and all(isinstance(e, ValueError) for e in errors)


def test_timeout_with_kill_signal(node_traces, case_dir):
    node, py, tracers = compare("timeout_kill_signal", node_traces, case_dir)
    ev = shape(py["timeout_kill_signal"])["child"]
    assert ev[1] == ["exit", [None, "SIGINT"], {"killed": True, "exit_code": None, "signal_code": "SIGINT",
                                                  "has_pid": True}]
    assert py["timeout_kill_signal"]["times"]["exit"] < 4  # killed, not the 5 s sleep


def test_timeout_default_signal_is_sigterm(node_traces, case_dir):
    node, py, _ = compare("timeout_default", node_traces, case_dir)
    assert shape(py["timeout_default"])["child"][1][1] == [None, "SIGTERM"]


def test_timeout_not_reached_does_not_hold_the_loop(node_traces, case_dir):
    t0 = time.monotonic()
    node, py, _ = compare("timeout_not_reached", node_traces, case_dir)
    assert shape(py["timeout_not_reached"])["child"][1][1:] == [
        [0, None], {"killed": False, "exit_code": 0, "signal_code": None, "has_pid": True}]
    # cp.run() inside compare() returned: the cancelled 20 s timer keeps nothing alive.
    assert time.monotonic() - t0 < 10


def test_abort_with_an_already_aborted_signal(node_traces, case_dir):
    node, py, tracers = compare("abort_pre", node_traces, case_dir)
    ev = shape(py["abort_pre"])["child"]
    assert [e[0] for e in ev] == ["spawn", "error", "exit", "close"]
    assert ev[1][1] == [{"message": "The operation was aborted", "code": "ABORT_ERR", "cause": "why"}]
    assert ev[2][1] == [None, "SIGTERM"]
    err = tracers["abort_pre"].py_errors[0]
    assert isinstance(err, cp.AbortError) and err.cause == "why"


def test_abort_later(node_traces, case_dir):
    node, py, _ = compare("abort_later", node_traces, case_dir)
    ev = shape(py["abort_later"])["child"]
    assert [e[0] for e in ev] == ["spawn", "error", "exit", "close"]
    assert ev[1][1][0]["cause"] == "later" and ev[1][2]["killed"] is True


def test_abort_default_reason_and_kill_signal(node_traces, case_dir):
    node, py, tracers = compare("abort_default_reason", node_traces, case_dir)
    ev = shape(py["abort_default_reason"])["child"]
    assert ev[1][1][0] == {"message": "The operation was aborted", "code": "ABORT_ERR",
                           "cause": {"name": "AbortError"}}
    assert ev[2][1] == [None, "SIGKILL"]
    err = tracers["abort_default_reason"].py_errors[0]
    assert isinstance(err.cause, cp.AbortError) and err.__cause__ is err.cause


def test_abort_after_the_child_exited_emits_nothing(node_traces, case_dir):
    node, py, _ = compare("abort_after_exit", node_traces, case_dir)
    for key in ("abort_after_exit/exit", "abort_after_exit/close"):
        p = shape(py[key])
        assert [e[0] for e in p["child"]] == ["spawn", "exit", "close"]
        assert p["attrs"] == {"killed": False}


def test_grandchild_holding_the_pipe_delays_close(node_traces, case_dir):
    node, py, _ = compare("grandchild", node_traces, case_dir)
    assert shape(py["grandchild"])["streams"]["stdout"][0] == ["data", "started\n"]
    for side, tr in (("node", node["grandchild"]), ("childproc", py["grandchild"])):
        t = tr["times"]
        # 'exit' as soon as sh is done; 'close' only when `sleep 1` lets go of stdout.
        # The exit is timed from 'spawn': on a loaded machine node itself took
        # 0.25 s to get there (three suites at once), and its exit came at 0.92 s.
        assert t["exit"] - t["spawn"] < 0.9, (side, t)
        assert t["close"] >= 0.95, (side, t)


def test_detached_child_leads_its_own_session_and_group(node_traces, case_dir):
    node, py, _ = compare("groups", node_traces, case_dir)
    assert shape(py["groups/true"])["attrs"]["ids"] == {"pgid_is_pid": True, "sid_is_pid": True,
                                                        "pgid_is_parents": False}
    assert shape(py["groups/false"])["attrs"]["ids"] == {"pgid_is_pid": False, "sid_is_pid": False,
                                                         "pgid_is_parents": True}


def test_exit_codes(node_traces, case_dir):
    node, py, _ = compare("exit_codes", node_traces, case_dir)
    got = {k.split("/")[1]: shape(v)["child"][-1][1] for k, v in py.items()}
    assert got == {"0": [0, None], "1": [1, None], "2": [2, None], "42": [42, None], "126": [126, None],
                   "255": [255, None], "256": [0, None], "300": [44, None], "missing": [127, None]}
    # 'spawn' is emitted even when the program fails inside (sh: not found, 127)
    assert shape(py["exit_codes/missing"])["child"][0][0] == "spawn"


def test_signal_names(node_traces, case_dir):
    node, py, _ = compare("signals", node_traces, case_dir)
    got = {k.split("/")[1]: shape(v)["child"][-1][1] for k, v in py.items()}
    assert got == {name: [None, name] for name in SIGNALS}


def test_stdio_ignore_and_mixed_close_counting(node_traces, case_dir):
    node, py, _ = compare("stdio_ignore", node_traces, case_dir)
    assert shape(py["stdio_ignore"])["attrs"]["sync"]["stdio"] == [False, False, False]
    m = shape(py["stdio_mixed"])
    assert m["attrs"]["sync"]["stdio"] == [False, True, False]
    assert m["streams"] == {"stdout": [["data", "out\n"], ["end"], ["close"]]}
    assert m["child"][-1][1] == [5, None]


def test_every_case_is_checked():
    """Each registered case has a test calling compare() with its name (no silent orphans)."""
    import inspect
    import sys

    src = inspect.getsource(sys.modules[__name__])
    for name in CASES:
        assert f'compare("{name}"' in src, name
