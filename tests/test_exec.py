"""cp.exec / cp.exec_file: the callback, the errors and the promisified forms, compared with node.

Every case is one call of ``exec``/``execFile`` written once as data
(``CASES``): the function, the command (or file + args), options with Python
names, and optionally an AbortController (aborted before the call, or from
the first stdout ``'data'``), a ``kill()`` from the first stdout ``'data'``,
or a user ``set_encoding`` on stdout.  The same case runs

* through node: all cases concurrently in **one** ``node`` process (module
  fixture ``node_results``; options converted to Node's names, ``timeout``
  seconds -> ms), with the callback form or ``util.promisify``;
* through childproc, one at a time, with the callback form, ``child.result()``
  or ``await``.

What is compared (``observe``), identical on both sides:

* the callback's error reduced to its kind (``exec``: ``Command failed``,
  ``maxbuf``, ``abort``, ``spawn``) and the fields Node defines for that kind
  (Node's execFile): ``message, code, killed, signal, cmd`` for a failed
  command; ``message, code, cmd`` for maxBuffer (Node's RangeError has no
  ``killed``/``signal``); ``message, code, cmd, cause`` for an abort;
  ``message, code, errno, syscall, path, spawnargs, cmd`` for a spawn error;
* ``stdout`` and ``stderr`` with their type (``str``/``bytes``) and content
  (big ones by length and digest);
* the order of the user's ``'exit'`` listener, the callback and the user's
  ``'close'`` listener (the callback runs before user ``'close'`` listeners),
  with ``'exit'``/``'close'`` arguments and ``killed`` at ``'close'``;
* whether ``pid`` is set right after the call;
* for maxBuffer cases, whether both streams are destroyed when the callback
  runs;
* for the promisified forms, the resolved ``{stdout, stderr}`` or the rejected
  error with its ``stdout``/``stderr``.

On the Python side the error classes are also checked (``ExecError``,
``MaxBufferError``, ``AbortError``, ``SpawnError``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

import pytest

import childproc as cp
from nodecmp import assert_same_as_node, node_result, requires_node

WATCHDOG_SECONDS = 30
pytestmark = [
    requires_node,
    pytest.mark.usefixtures("watchdog"),
]

MiB = 1024 * 1024
# A fresh marker per test run, so parallel runs never see each other's children.
_TAG = f"{os.getpid()}"


# Valid UTF-8 with multi-byte characters, written in pieces (flushed apart)
# that end inside a character, one of them at the first 64 KiB boundary: the
# reads then split characters wherever the pieces do.
_PIECES = (
    "python3 -c 'import sys, time\n"
    "o = sys.stdout.buffer\n"
    "data = (\"a\" * 65535 + \"\u20ac\" + \"\u4e2d\U0001f600\u00e9\" * 40000).encode()\n"
    "for cut in (65536, 65537, 200001, 200002, 400003, len(data)):\n"
    "    o.write(data[:cut]); o.flush(); data = data[cut:]; time.sleep(0.01)\n'"
)


def C(id: str, fn: str, cmd: Any, args: list | None = None, **kw: Any) -> dict:
    """A case.  kw: opts, abort ('before'|'on_data'), reason, kill_on_data,
    user_encoding, promisified ('result'|'await'), check_destroyed, ignore."""
    case = {"id": id, "fn": fn, "cmd": cmd, "args": args, "opts": {}, "abort": None, "reason": None,
            "kill_on_data": None, "user_encoding": None, "promisified": None,
            "check_destroyed": False, "ignore": []}
    case.update(kw)
    return case


_CASES: list[dict] = [
    # -- success / failure -------------------------------------------------
    C("success", "exec", "echo out; echo err >&2"),
    C("failure-with-stderr", "exec", "echo out; echo err >&2; exit 3"),
    C("missing-command-via-shell", "exec", "does-not-exist-childproc-xyz --flag"),
    C("killed-by-own-signal", "exec", "kill -9 $$"),
    C("exec-file-success", "exec_file", "sh", ["-c", "echo out; echo err >&2"]),
    C("exec-file-failure", "exec_file", "sh", ["-c", "echo err >&2; exit 5"]),
    C("exec-file-no-args-failure", "exec_file", "false", []),
    C("exec-file-enoent", "exec_file", "nope-childproc-xyz", ["a"]),
    C("exec-file-enoent-no-args", "exec_file", "nope-childproc-xyz", []),
    C("exec-cwd", "exec", "pwd", opts={"cwd": "/"}),
    C("exec-env", "exec", "echo $HELLO", opts={"env": {"HELLO": "WORLD", "PATH": os.environ.get("PATH", "")}}),
    # Node validates argv0 for execFile and then drops it: $0 stays 'sh'.
    C("exec-file-argv0-ignored", "exec_file", "sh", ["-c", "echo $0"], opts={"argv0": "custom-argv0"}),
    C("exec-shell-string", "exec", "echo $0", opts={"shell": "/bin/bash"}),
    C("exec-file-shell-true", "exec_file", "echo", ["a", "b"], opts={"shell": True}),
    # -- kill() from a listener --------------------------------------------
    C("kill-sigint-from-data", "exec", "echo ready; exec sleep 5", kill_on_data="SIGINT"),
    # -- timeout -----------------------------------------------------------
    C("timeout", "exec", "exec sleep 5", opts={"timeout": 0.2}),
    C("timeout-kill-signal-sigkill", "exec", "exec sleep 5", opts={"timeout": 0.2, "kill_signal": "SIGKILL"}),
    C("timeout-trap-term-sigkill", "exec", "trap '' TERM; while :; do sleep 0.05; done",
      opts={"timeout": 0.3, "kill_signal": "SIGKILL"}),
    C("timeout-trap-term-exit-42", "exec", "trap 'exit 42' TERM; while :; do sleep 0.05; done",
      opts={"timeout": 0.3}),
    C("timeout-not-expired", "exec", "echo hi", opts={"timeout": 5}),
    C("exec-file-timeout", "exec_file", "sleep", ["5"], opts={"timeout": 0.2, "kill_signal": "SIGINT"}),
    # -- max_buffer --------------------------------------------------------
    C("max-buffer-stdout", "exec", "printf 0123456789; exec sleep 2", opts={"max_buffer": 4},
      check_destroyed=True),
    C("max-buffer-stderr", "exec", "printf 0123456789 >&2; exec sleep 2", opts={"max_buffer": 4},
      check_destroyed=True),
    C("max-buffer-stdout-buffer-encoding", "exec", "printf 0123456789; exec sleep 2",
      opts={"max_buffer": 4, "encoding": "buffer"}, check_destroyed=True),
    C("max-buffer-kill-signal", "exec", "printf 0123456789; exec sleep 2",
      opts={"max_buffer": 4, "kill_signal": "SIGKILL"}),
    C("max-buffer-exact-is-ok", "exec", "printf 0123456789", opts={"max_buffer": 10}),
    C("max-buffer-default-exact-1mib", "exec", f"head -c {MiB} /dev/zero | tr '\\0' a"),
    C("max-buffer-default-1mib-plus-1", "exec", f"head -c {MiB + 1} /dev/zero | tr '\\0' a; exec sleep 2",
      check_destroyed=True),
    C("max-buffer-default-1mib-plus-1-stderr", "exec",
      f"head -c {MiB + 1} /dev/zero | tr '\\0' a >&2; exec sleep 2", check_destroyed=True),
    C("max-buffer-zero", "exec", "printf 0123456789; exec sleep 2", opts={"max_buffer": 0},
      check_destroyed=True),
    C("max-buffer-zero-no-output", "exec", "true", opts={"max_buffer": 0}),
    C("max-buffer-infinity", "exec", f"head -c {MiB + 1} /dev/zero | tr '\\0' a",
      opts={"max_buffer": float("inf")}),
    # Node cuts the string with the byte budget in code units (a quirk of Node's execFile).
    C("max-buffer-unicode-3", "exec", "printf '中文测试\\n'; exec sleep 2", opts={"max_buffer": 3}),
    C("max-buffer-unicode-10", "exec", "printf '中文测试\\n'; exec sleep 2", opts={"max_buffer": 10}),
    C("exec-file-max-buffer", "exec_file", "sh", ["-c", "printf 0123456789; exec sleep 2"],
      opts={"max_buffer": 4}),
    # Text is counted in bytes of the stream's own encoding (Node's
    # Buffer.byteLength(chunk, encoding)): two hex digits, one latin1 or
    # ascii character, two bytes per UTF-16 unit, 3/4 of the base64 digits.
    C("max-buffer-hex-within", "exec", "printf abcdef", opts={"max_buffer": 6, "encoding": "hex"}),
    C("max-buffer-hex-over", "exec", "printf abcdef; exec sleep 2", opts={"max_buffer": 2, "encoding": "hex"}),
    C("max-buffer-latin1-within", "exec", "printf '\\351\\351\\351'", opts={"max_buffer": 3, "encoding": "latin1"}),
    C("max-buffer-latin1-over", "exec", "printf '\\351\\351\\351'; exec sleep 2",
      opts={"max_buffer": 2, "encoding": "latin1"}),
    C("max-buffer-ascii-within", "exec", "printf 'a\\351b'", opts={"max_buffer": 3, "encoding": "ascii"}),
    C("max-buffer-utf16le-within", "exec", "printf abcdef", opts={"max_buffer": 6, "encoding": "utf16le"}),
    C("max-buffer-utf16le-over", "exec", "printf abcdef; exec sleep 2", opts={"max_buffer": 5, "encoding": "utf16le"}),
    C("max-buffer-base64-within", "exec", "printf abcdefg", opts={"max_buffer": 7, "encoding": "base64"}),
    C("max-buffer-base64-over-at-end", "exec", "printf abcdefg", opts={"max_buffer": 6, "encoding": "base64"}),
    C("max-buffer-utf8-ascii-within", "exec", "printf abcdef", opts={"max_buffer": 6}),
    # -- encoding ----------------------------------------------------------
    C("encoding-buffer", "exec", "printf 'a\\377b'; printf 'e\\376' >&2", opts={"encoding": "buffer"}),
    C("encoding-none", "exec", "printf 'a\\377b'; printf 'e\\376' >&2", opts={"encoding": None}),
    C("encoding-utf8-multibyte", "exec", "printf 'héllo €uro 中文 😀\\n'; printf 'ö\\n' >&2"),
    C("encoding-utf8-alias", "exec", "printf 'é'", opts={"encoding": "utf8"}),
    C("encoding-latin1", "exec", "printf '\\351'", opts={"encoding": "latin1"}),
    C("exec-file-encoding-buffer", "exec_file", "printf", ["a\\377"], opts={"encoding": "buffer"}),
    # encoding 'buffer' and a user set_encoding on stdout only: stdout is
    # joined as a string, stderr stays a Buffer (Node checks each stream).
    C("user-set-encoding-stdout-only", "exec", "echo out; echo err >&2",
      opts={"encoding": "buffer"}, user_encoding="utf-8"),
    # -- the C collector: max_buffer=inf, or bytes ----
    # Output read straight into one C buffer, no 'data' per chunk; the
    # results must be Node's to the byte, whatever the read boundaries.
    C("collect-bytes-large", "exec", "seq 1 3000000; seq 1 1000 >&2",
      opts={"encoding": "buffer", "max_buffer": float("inf")}),
    C("collect-text-large", "exec", "seq 1 3000000; seq 1 1000 >&2", opts={"max_buffer": float("inf")}),
    C("collect-text-multibyte-pieces", "exec", _PIECES, opts={"max_buffer": float("inf")}),
    C("collect-bytes-multibyte-pieces", "exec", _PIECES, opts={"encoding": None, "max_buffer": float("inf")}),
    C("collect-text-truncated-char-at-eof", "exec", "printf 'ab\\342\\202'", opts={"max_buffer": float("inf")}),
    # All-ASCII text becomes the str without a decode; one byte that is not
    # ASCII (here the last) sends the whole output through the decoder.
    C("collect-text-large-non-ascii-at-end", "exec", "seq 1 3000000; printf '\\303'",
      opts={"max_buffer": float("inf")}),
    C("collect-latin1-large", "exec", "seq 1 3000000", opts={"encoding": "latin1", "max_buffer": float("inf")}),
    C("collect-ascii-large-top-bit", "exec", "seq 1 3000000; printf '\\351'",
      opts={"encoding": "ascii", "max_buffer": float("inf")}),
    C("collect-text-timeout-keeps-output", "exec", f"head -c {2 * MiB} /dev/zero | tr '\\0' b; exec sleep 5",
      opts={"max_buffer": float("inf"), "timeout": 2.0}),
    C("collect-bytes-max-buffer-stdout", "exec", f"head -c {3 * MiB} /dev/zero | tr '\\0' a; exec sleep 2",
      opts={"encoding": "buffer", "max_buffer": 2 * MiB + 1}, check_destroyed=True),
    C("collect-bytes-max-buffer-stderr", "exec", f"head -c {3 * MiB} /dev/zero | tr '\\0' a >&2; exec sleep 2",
      opts={"encoding": "buffer", "max_buffer": 2 * MiB + 1}, check_destroyed=True),
    C("collect-bytes-max-buffer-exact", "exec", f"head -c {3 * MiB} /dev/zero | tr '\\0' a",
      opts={"encoding": "buffer", "max_buffer": 3 * MiB}),
    C("collect-bytes-max-buffer-kill-signal", "exec", f"head -c {3 * MiB} /dev/zero; exec sleep 2",
      opts={"encoding": "buffer", "max_buffer": MiB, "kill_signal": "SIGKILL"}),
    # (2 s: both sides must have read the 2 MiB before it, even on a loaded machine)
    C("collect-timeout-keeps-output", "exec", f"head -c {2 * MiB} /dev/zero | tr '\\0' b; exec sleep 5",
      opts={"encoding": "buffer", "max_buffer": float("inf"), "timeout": 2.0}),
    C("collect-user-set-encoding-stdout-only", "exec", _PIECES + "; printf 'e\\377' >&2",
      opts={"encoding": "buffer", "max_buffer": float("inf")}, user_encoding="utf-8"),
    # -- abort -------------------------------------------------------------
    C("abort-before", "exec", "exec sleep 5", abort="before", reason="why"),
    C("abort-before-default-reason", "exec", "exec sleep 5", abort="before"),
    C("abort-on-data", "exec", "echo ready; exec sleep 5", abort="on_data", reason="later"),
    C("exec-file-abort-before", "exec_file", "sleep", ["5"], abort="before", reason="why"),
    C("exec-file-abort-on-data", "exec_file", "sh", ["-c", "echo ready; exec sleep 5"], abort="on_data",
      reason="later"),
    # -- promisified -------------------------------------------------------
    C("promisified-result-resolved", "exec", "echo out; echo err >&2", promisified="result"),
    C("promisified-await-resolved", "exec", "echo out; echo err >&2", promisified="await"),
    C("promisified-result-rejected", "exec", "echo out; echo err >&2; exit 3", promisified="result"),
    C("promisified-await-rejected", "exec", "echo out; echo err >&2; exit 3", promisified="await"),
    C("promisified-exec-file-resolved", "exec_file", "sh", ["-c", "echo out"], promisified="result"),
    C("promisified-exec-file-rejected", "exec_file", "sh", ["-c", "echo o; echo e >&2; exit 2"],
      promisified="await"),
    C("promisified-exec-file-enoent", "exec_file", "nope-childproc-xyz", ["a"], promisified="result"),
    C("promisified-timeout", "exec", "echo partial; exec sleep 5", opts={"timeout": 0.3},
      promisified="result"),
    C("promisified-max-buffer", "exec", "printf 0123456789; exec sleep 2", opts={"max_buffer": 4},
      promisified="result"),
    C("promisified-buffer-encoding", "exec", "printf 'a\\377'", opts={"encoding": "buffer"},
      promisified="await"),
    C("promisified-abort-before", "exec", "exec sleep 5", abort="before", reason="why",
      promisified="result"),
]
CASES = {c["id"]: c for c in _CASES}
assert len(CASES) == len(_CASES)


# --------------------------------------------------------------------------
# node side

_CAMEL = {"kill_signal": "killSignal", "max_buffer": "maxBuffer", "windows_hide": "windowsHide"}

_RUNNER_JS = r"""
'use strict';
const cp = require('child_process'), util = require('util'), crypto = require('crypto');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const results = {};
let pending = 0;

function val(x) {
  if (x === undefined) return {t: 'undefined'};
  if (x === null) return null;
  let t, b;
  if (Buffer.isBuffer(x)) { t = 'bytes'; b = x; }
  else if (typeof x === 'string') { t = 'str'; b = Buffer.from(x, 'utf8'); }
  else return {t: typeof x, v: String(x)};
  if (b.length > 4096) return {t, len: b.length, sha: crypto.createHash('sha256').update(b).digest('hex')};
  return {t, v: t === 'str' ? x : b.toString('latin1')};
}
function cause(c) {
  if (c === undefined) return {t: 'undefined'};
  if (c === null || typeof c !== 'object') return {v: c};
  return {name: c.name, message: c.message};
}
const FIELDS = {
  exec: ['message', 'code', 'killed', 'signal', 'cmd'],
  maxbuf: ['message', 'code', 'cmd'],
  abort: ['message', 'code', 'cmd', 'cause'],
  spawn: ['message', 'code', 'errno', 'syscall', 'path', 'spawnargs', 'cmd'],
  other: ['message', 'code'],
};
function err(e, withOutput) {
  if (e === null || e === undefined) return null;
  let kind;
  if (e.code === 'ABORT_ERR') kind = 'abort';
  else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') kind = 'maxbuf';
  else if (e.syscall !== undefined) kind = 'spawn';
  else if (String(e.message).startsWith('Command failed')) kind = 'exec';
  else kind = 'other';
  const o = {kind};
  if (kind === 'other') o.name = e.name;
  for (const k of FIELDS[kind]) {
    let v = e[k];
    if (k === 'cause') v = cause(v);
    else if (k === 'errno' && typeof v === 'number') v = Math.abs(v);
    else if (v === undefined) v = {t: 'undefined'};
    o[k] = v;
  }
  if (withOutput) { o.stdout = val(e.stdout); o.stderr = val(e.stderr); }
  return o;
}
function nodeOpts(c) {
  const o = {};
  for (const [k, v] of Object.entries(c.opts)) {
    const name = {kill_signal: 'killSignal', max_buffer: 'maxBuffer'}[k] || k;
    if (k === 'timeout') o[name] = Math.round(v * 1000);
    else if (v && typeof v === 'object' && '$inf' in v) o[name] = Infinity;
    else o[name] = v;
  }
  return o;
}
function done(id, r) { results[id] = r; if (--pending === 0) process.stdout.write(JSON.stringify(results)); }

for (const c of Object.values(cases)) {
  pending++;
  const opts = nodeOpts(c);
  let ac = null;
  if (c.abort) {
    ac = new AbortController();
    if (c.abort === 'before') c.reason === null ? ac.abort() : ac.abort(c.reason);
    opts.signal = ac.signal;
  }
  if (c.promisified) {
    const f = util.promisify(c.fn === 'exec' ? cp.exec : cp.execFile);
    const p = c.fn === 'exec' ? f(c.cmd, opts) : f(c.cmd, c.args, opts);
    p.then((r) => done(c.id, {resolved: {stdout: val(r.stdout), stderr: val(r.stderr)}}),
           (e) => done(c.id, {rejected: err(e, true)}));
    continue;
  }
  const events = [];
  const r = {events};
  let child;
  const cb = (e, stdout, stderr) => {
    const ev = {ev: 'callback', error: err(e, false), stdout: val(stdout), stderr: val(stderr)};
    if (c.check_destroyed) ev.destroyed = [child.stdout.destroyed, child.stderr.destroyed];
    events.push(ev);
  };
  child = c.fn === 'exec' ? cp.exec(c.cmd, opts, cb) : cp.execFile(c.cmd, c.args, opts, cb);
  r.pid_set = typeof child.pid === 'number';
  if (c.user_encoding) child.stdout.setEncoding(c.user_encoding);
  if (c.abort === 'on_data') child.stdout.once('data', () => ac.abort(c.reason === null ? undefined : c.reason));
  if (c.kill_on_data) child.stdout.once('data', () => { r.kill_returned = child.kill(c.kill_on_data); });
  child.on('exit', (code, sig) => events.push({ev: 'exit', args: [code, sig]}));
  child.on('close', (code, sig) => {
    events.push({ev: 'close', args: [code, sig], killed: child.killed});
    // let anything that would come after 'close' show up
    setTimeout(() => done(c.id, r), 50);
  });
}
"""


def _node_case(case: dict) -> dict:
    c = dict(case)
    opts = {}
    for k, v in case["opts"].items():
        opts[k] = {"$inf": 1} if v == float("inf") else v
    c["opts"] = opts
    return c


@pytest.fixture(scope="module")
def node_results(tmp_path_factory) -> dict:
    runner = tmp_path_factory.mktemp("exec_node") / "runner.js"
    runner.write_text(_RUNNER_JS)
    payload = json.dumps({cid: _node_case(c) for cid, c in CASES.items()})
    results: dict = node_result(file=runner, stdin=payload)
    return results


# --------------------------------------------------------------------------
# childproc side


def _val(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, (bytes, bytearray)):
        t, b = "bytes", bytes(x)
    elif isinstance(x, str):
        t, b = "str", x.encode("utf-8", "surrogatepass")
    else:
        return {"t": type(x).__name__, "v": repr(x)}
    if len(b) > 4096:
        return {"t": t, "len": len(b), "sha": hashlib.sha256(b).hexdigest()}
    return {"t": t, "v": x if t == "str" else b.decode("latin1")}


def _cause(c: Any) -> dict:
    if isinstance(c, BaseException):
        return {"name": type(c).__name__, "message": str(c)}
    return {"v": c}


_FIELDS = {
    "exec": ["message", "code", "killed", "signal", "cmd"],
    "maxbuf": ["message", "code", "cmd"],
    "abort": ["message", "code", "cmd", "cause"],
    "spawn": ["message", "code", "errno", "syscall", "path", "spawnargs", "cmd"],
    "other": ["message", "code"],
}


def _err(e: BaseException | None, with_output: bool) -> dict | None:
    if e is None:
        return None
    if isinstance(e, cp.AbortError):
        kind = "abort"
    elif isinstance(e, cp.MaxBufferError):
        kind = "maxbuf"
    elif isinstance(e, cp.SpawnError):
        kind = "spawn"
    elif isinstance(e, cp.ExecError):
        kind = "exec"
    else:
        kind = "other"
    out: dict = {"kind": kind}
    if kind == "other":
        out["name"] = type(e).__name__
        out["repr"] = repr(e)
    for k in _FIELDS[kind]:
        if k == "message":
            v = str(e)
        elif k == "cause":
            v = _cause(getattr(e, "cause", None)) if hasattr(e, "cause") else {"t": "undefined"}
        elif not hasattr(e, k):
            v = {"t": "undefined"}
        else:
            v = getattr(e, k)
            if k == "errno" and isinstance(v, int):
                v = abs(v)
            elif k in ("path", "cmd") and isinstance(v, (bytes, os.PathLike)):
                v = os.fsdecode(v)
            elif k == "spawnargs" and v is not None:
                v = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else a for a in v]
        out[k] = v
    if with_output:
        out["stdout"] = _val(getattr(e, "stdout", None)) if hasattr(e, "stdout") else {"t": "undefined"}
        out["stderr"] = _val(getattr(e, "stderr", None)) if hasattr(e, "stderr") else {"t": "undefined"}
    return out


def _call(case: dict, callback=None, **extra):
    opts = dict(case["opts"], **extra)
    if case["fn"] == "exec":
        return cp.exec(case["cmd"], callback, **opts) if callback else cp.exec(case["cmd"], **opts)
    if callback:
        return cp.exec_file(case["cmd"], case["args"], callback, **opts)
    return cp.exec_file(case["cmd"], case["args"], **opts)


def _controller(case: dict):
    if not case["abort"]:
        return None, {}
    ac = cp.AbortController()
    if case["abort"] == "before":
        ac.abort() if case["reason"] is None else ac.abort(case["reason"])
    return ac, {"signal": ac.signal}


def py_observe(case: dict) -> dict:
    ac, extra = _controller(case)
    if case["promisified"] == "result":
        child = _call(case, **extra)
        try:
            r = child.result(timeout=20)
        except BaseException as e:  # noqa: BLE001 - compared
            # result()'s own wait timing out is not an outcome to compare;
            # an exec killed by its timeout (an ExecError) is.
            if isinstance(e, TimeoutError) and not isinstance(e, (cp.SpawnError, cp.ExecError)):
                raise
            return {"rejected": _err(e, True)}
        assert isinstance(r, cp.ExecResult), type(r)
        return {"resolved": {"stdout": _val(r.stdout), "stderr": _val(r.stderr)}}
    if case["promisified"] == "await":

        async def main():
            child = _call(case, **extra)
            try:
                r = await asyncio.wait_for(asyncio.ensure_future(_awaitable(child)), 20)
            except asyncio.TimeoutError as e:
                if not isinstance(e, cp.ExecError):  # wait_for's, not the command's timeout
                    raise
                return {"rejected": _err(e, True)}
            except BaseException as e:  # noqa: BLE001 - compared
                return {"rejected": _err(e, True)}
            assert isinstance(r, cp.ExecResult), type(r)
            return {"resolved": {"stdout": _val(r.stdout), "stderr": _val(r.stderr)}}

        return asyncio.run(main())

    events: list = []
    r: dict = {"events": events}
    holder: dict = {}

    def cb(e, stdout, stderr):
        ev = {"ev": "callback", "error": _err(e, False), "stdout": _val(stdout), "stderr": _val(stderr)}
        if case["check_destroyed"]:
            child = holder["child"]
            ev["destroyed"] = [child.stdout.destroyed, child.stderr.destroyed]
        events.append(ev)

    child = _call(case, cb, **extra)
    holder["child"] = child
    r["pid_set"] = isinstance(child.pid, int)
    if case["user_encoding"]:
        child.stdout.set_encoding(case["user_encoding"])
    if case["abort"] == "on_data":
        child.stdout.once("data", lambda *_: ac.abort(case["reason"]))
    if case["kill_on_data"]:
        child.stdout.once("data", lambda *_: r.__setitem__("kill_returned", child.kill(case["kill_on_data"])))
    child.on("exit", lambda code, sig: events.append({"ev": "exit", "args": [code, sig]}))
    child.on("close", lambda code, sig: events.append({"ev": "close", "args": [code, sig], "killed": child.killed}))
    child.wait(timeout=20)
    return r


async def _awaitable(child):
    return await child


@pytest.mark.parametrize("cid", list(CASES))
def test_exec_matches_node(cid, node_results):
    case = CASES[cid]
    n = node_results[cid]
    p = py_observe(case)
    for key in case["ignore"]:
        n.pop(key, None)
        p.pop(key, None)
    assert_same_as_node(n, p)


# --------------------------------------------------------------------------
# Python-side details that have no JSON twin


def test_error_classes():
    """The classes behind the kinds above."""
    assert issubclass(cp.MaxBufferError, cp.ExecError)
    got: dict = {}

    def keep(name):
        return lambda e, out, err: got.__setitem__(name, e)

    cp.exec("exit 3", keep("exec")).wait(10)
    cp.exec("printf 0123; exec sleep 2", keep("maxbuf"), max_buffer=1).wait(10)
    ac = cp.AbortController()
    ac.abort("why")
    cp.exec("exec sleep 2", keep("abort"), signal=ac.signal).wait(10)
    cp.exec_file("nope-childproc-xyz", ["a"], keep("spawn")).wait(10)
    assert type(got["exec"]) is cp.ExecError and got["exec"].code == 3
    assert isinstance(got["maxbuf"], cp.MaxBufferError)
    assert got["maxbuf"].code == "ERR_CHILD_PROCESS_STDIO_MAXBUFFER"
    assert isinstance(got["abort"], cp.AbortError) and got["abort"].code == "ABORT_ERR"
    assert got["abort"].cause == "why"
    assert isinstance(got["spawn"], cp.SpawnError) and isinstance(got["spawn"], FileNotFoundError)
    assert got["spawn"].code == "ENOENT" and got["spawn"].cmd == "nope-childproc-xyz a"


def test_result_blocking_timeout_then_result():
    """``result(timeout)`` raises the builtin TimeoutError while the command runs; a later call gets it."""
    child = cp.exec("sleep 0.3; echo done")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        child.result(timeout=0.05)
    assert time.monotonic() - t0 < 0.25
    assert child.result(timeout=10) == cp.ExecResult("done\n", "")


def test_exec_result_is_tuple():
    r = cp.exec("printf a; printf b >&2").result(timeout=10)
    stdout, stderr = r
    assert (stdout, stderr) == ("a", "b") and r.stdout == "a" and r.stderr == "b"


def test_timeout_returns_on_time():
    """exec's timeout kills after about that long (seconds, not ms)."""
    t0 = time.monotonic()
    with pytest.raises(cp.ExecError) as info:
        cp.exec("exec sleep 5", timeout=0.2).result(timeout=10)
    elapsed = time.monotonic() - t0
    assert 0.15 <= elapsed < 1.5, elapsed
    assert info.value.killed is True and info.value.signal == "SIGTERM"


def test_byte_length_is_nodes():
    """What max_buffer counts for a text chunk: Node's Buffer.byteLength(text,
    encoding), for text of every kind a stream decodes to (ASCII, Latin-1,
    CJK, astral characters, U+FFFD, base64 padding, odd hex)."""
    from childproc._streams.decode import byte_length

    texts = ["", "abc", "h\u00e9llo", "\u4e2d\u6587", "\U0001f600x", "\ufffd\ufffd", "YWJjZA==", "YWJjZGU=",
             "Zw", "=", "==", "61626", "\u00ff\u0080"]
    pairs = [("utf8", "utf-8"), ("latin1", "latin-1"), ("ascii", "ascii"), ("utf16le", "utf-16-le"),
             ("hex", "hex"), ("base64", "base64"), ("base64url", "base64url")]
    script = ("const [texts, encs] = JSON.parse(process.argv[1]);"
              "console.log(JSON.stringify(encs.map(e => texts.map(t => Buffer.byteLength(t, e)))));")
    expected = node_result(script, args=[json.dumps([texts, [node for node, _ in pairs]])])
    assert [[byte_length(t, ours) for t in texts] for _, ours in pairs] == expected
