"""Shared fixtures for the sync-API and reliability suites.

The main piece is ``sync_compare``: a Node-defined behaviour is written once as a
``SyncCase`` (function, file/command, args, options with Python names) and run
both through ``node`` (spawnSync / execSync / execFileSync, options converted to
Node's names and units) and through childproc; what a user can see is reduced to
the same plain structure on both sides and compared with ``==``.

Values in a case may be callables taking ``tmp_path``; they are resolved per
side, so a case can refer to files created by its ``setup``.  The conversion to
Node is generic:

* ``timeout`` seconds -> ms, ``snake_case`` -> ``camelCase``;
* ``bytes`` -> Buffer, ``bytearray`` -> Uint8Array, ``memoryview`` -> DataView;
* ``os.PathLike`` -> string; ``signal.Signals`` -> number;
* a file object in ``stdio`` -> ``{fd}`` of the same file opened by node;
* ``{"$openfd": path, "flags": "w"}`` -> an int fd on both sides (os.open / fs.openSync).

Cases are plain dicts (keys of ``SyncCase``), so test modules need not import
this file.

Node is found, started and compared with through ``tests/nodecmp.py``, the
suite's one Node-comparison harness.  The runner script below is this
fixture's own because these cases also need Buffers/TypedArrays/fds passed in,
node's own stdout and stderr captured apart from the result (stdio 'inherit',
the stderr copy of execSync), and the result of one call encoded byte-exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
from typing import Any, Callable

import pytest

from nodecmp import NODE, assert_same_as_node, need_node, run_node, start_node

# Outputs bigger than this are compared by length and digest, not by content.
_BIG = 64 * 1024


@pytest.fixture
def watchdog(request):
    """A hung test fails (SIGALRM raises in the main thread) instead of
    hanging the run.  A module sets ``WATCHDOG_SECONDS`` (default 60) and
    uses it with ``pytest.mark.usefixtures("watchdog")``."""
    seconds = getattr(request.module, "WATCHDOG_SECONDS", 60)

    def boom(*_):
        raise TimeoutError(f"test did not finish within {seconds} s (watchdog)")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "reliability: long-ish leak/robustness checks (run in CI by default, ~10 s)",
    )


# --------------------------------------------------------------------------
# case description


@dataclasses.dataclass
class SyncCase:
    fn: str  # 'spawn_sync' | 'exec_sync' | 'exec_file_sync'
    file: Any  # file (spawn/exec_file) or command (exec)
    args: Any = None  # None: the argument is not passed at all
    opts: dict = dataclasses.field(default_factory=dict)
    # options given to node *instead of* the converted Python ones (same key, Node name)
    node_opts: dict = dataclasses.field(default_factory=dict)
    setup: Callable | None = None  # setup(tmp_path) before each side runs
    collect: Callable | None = None  # collect(tmp_path) -> extra JSON-able data to compare
    ignore: tuple = ()  # normalised keys not compared (documented per case)


_CAMEL = {
    "kill_signal": "killSignal",
    "max_buffer": "maxBuffer",
    "windows_hide": "windowsHide",
    "windows_verbatim_arguments": "windowsVerbatimArguments",
}

_NODE_FN = {
    "spawn_sync": "spawnSync",
    "exec_sync": "execSync",
    "exec_file_sync": "execFileSync",
}


def _resolve(value, tmp):
    """Resolve callables (recursively)."""
    if callable(value) and not isinstance(value, type):
        value = value(tmp)
    if isinstance(value, list):
        return [_resolve(v, tmp) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve(v, tmp) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, tmp) for k, v in value.items()}
    return value


def _to_node(value):
    """Python option value -> JSON understood by the node runner's revive()."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, signal.Signals):
        return int(value)
    if isinstance(value, (int, float)):
        if value == float("inf"):
            return {"$inf": 1}
        return value
    if isinstance(value, bytes):
        return {"$buf": base64.b64encode(value).decode(), "kind": "Buffer"}
    if isinstance(value, bytearray):
        return {"$buf": base64.b64encode(bytes(value)).decode(), "kind": "Uint8Array"}
    if isinstance(value, memoryview):
        return {"$buf": base64.b64encode(value.tobytes()).decode(), "kind": "DataView"}
    if _is_openfd(value):
        return {"$openfd": os.fsdecode(value["$openfd"]), "flags": value.get("flags", "w")}
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    if hasattr(value, "fileno") and hasattr(value, "name"):
        mode = getattr(value, "mode", "w")
        return {"$openobj": os.fsdecode(value.name), "flags": "r" if "r" in mode and "+" not in mode else "w"}
    if isinstance(value, (list, tuple)):
        return [_to_node(v) for v in value]
    if isinstance(value, dict):
        return {os.fsdecode(k): _to_node(v) for k, v in value.items()}
    raise TypeError(f"cannot convert {value!r} for node")


def _node_options(opts: dict) -> dict:
    out = {}
    for key, value in opts.items():
        name = _CAMEL.get(key, key)
        if key == "timeout" and value:
            out[name] = int(round(value * 1000))
        else:
            out[name] = _to_node(value)
    return out


def _is_openfd(value) -> bool:
    return isinstance(value, dict) and "$openfd" in value


def open_fd(path, flags="w") -> dict:
    """Marker: an int fd opened on each side (os.open / fs.openSync); path may be a callable."""
    return {"$openfd": path, "flags": flags}


def _close_file_objects(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            _close_file_objects(v)
    elif isinstance(value, dict):
        for v in value.values():
            _close_file_objects(v)
    elif hasattr(value, "fileno") and hasattr(value, "close"):
        value.close()


def _open_for_python(value, closers):
    """OpenFd markers -> real fds for the Python side."""
    if _is_openfd(value):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC if value.get("flags", "w") == "w" else os.O_RDONLY
        fd = os.open(value["$openfd"], flags, 0o644)
        closers.append(lambda: os.close(fd))
        return fd
    if isinstance(value, list):
        return [_open_for_python(v, closers) for v in value]
    if hasattr(value, "fileno") and hasattr(value, "close") and not isinstance(value, int):
        closers.append(value.close)
    return value


# --------------------------------------------------------------------------
# normalisation: both sides end up as the same plain structure


def _val(x):
    """bytes/str/None -> comparable form; big ones by length + digest."""
    if x is None:
        return None
    if isinstance(x, (bytes, bytearray, memoryview)):
        b = bytes(x)
        if len(b) > _BIG:
            return {"bytes_len": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        return {"bytes": b}
    if isinstance(x, str):
        if len(x) > _BIG:
            return {"str_len": len(x), "sha256": hashlib.sha256(x.encode("utf-8", "surrogatepass")).hexdigest()}
        return {"str": x}
    return {"other": repr(x)}


def _node_val(x):
    if x is None:
        return None
    if "$b" in x:
        return _val(base64.b64decode(x["$b"]))
    if "$s" in x:
        return _val(x["$s"])
    if "$undef" in x:
        return {"undefined": True}
    return {"other": x.get("$other")}


def _out_list(xs, conv):
    return None if xs is None else [conv(x) for x in xs]


def _spawnargs(xs):
    if xs is None:
        return None
    return [os.fsdecode(x) if isinstance(x, (bytes, os.PathLike)) else str(x) for x in xs]


def _py_err(e, with_result: bool) -> dict:
    import childproc as cp

    d: dict = {}
    if isinstance(e, cp.SpawnError):
        d["etype"] = "spawn"
        d["code"] = e.code
        d["errno"] = abs(e.errno) if isinstance(e.errno, int) else e.errno
        d["syscall"] = e.syscall
        d["path"] = os.fsdecode(e.path) if e.path is not None else None
        d["spawnargs"] = _spawnargs(e.spawnargs)
        d["message"] = str(e)
    elif isinstance(e, cp.ExecError):
        d["etype"] = "exec"
        d["message"] = str(e)
    else:
        d["etype"] = "other"
        d["pyclass"] = type(e).__name__
        d["code"] = getattr(e, "code", None)
        return d
    if with_result:
        d["status"] = getattr(e, "status", "<missing>")
        d["signal"] = getattr(e, "signal", "<missing>")
        pid = getattr(e, "pid", "<missing>")
        d["pid0"] = pid == 0 if isinstance(pid, int) else pid
        for name in ("output", "stdout", "stderr"):
            if not hasattr(e, name):
                d[name] = "<missing>"
            elif name == "output":
                d[name] = _out_list(e.output, _val)
            else:
                d[name] = _val(getattr(e, name))
    return d


def _node_err(e: dict, with_result: bool) -> dict:
    d: dict = {}
    if e.get("syscall") is not None:
        d["etype"] = "spawn"
        d["code"] = e.get("code")
        d["errno"] = abs(e["errno"]) if isinstance(e.get("errno"), int) else e.get("errno")
        d["syscall"] = e.get("syscall")
        d["path"] = e.get("path")
        d["spawnargs"] = e.get("spawnargs")
        d["message"] = e.get("message")
    elif str(e.get("message", "")).startswith("Command failed"):
        d["etype"] = "exec"
        d["message"] = e.get("message")
    else:
        d["etype"] = "other"
        d["pyclass"] = e.get("name")
        d["code"] = e.get("code")
        return d
    if with_result:
        d["status"] = e.get("status")
        d["signal"] = e.get("signal")
        d["pid0"] = e.get("pid") == 0
        d["output"] = _out_list(e.get("output"), _node_val)
        d["stdout"] = _node_val(e.get("stdout"))
        d["stderr"] = _node_val(e.get("stderr"))
    return d


def normalise_py_result(r) -> dict:
    """A childproc SpawnSyncResult -> comparable dict."""
    return {
        "kind": "returned",
        "status": r.status,
        "signal": r.signal,
        "pid0": r.pid == 0,
        "output": _out_list(r.output, _val),
        "stdout": _val(r.stdout),
        "stderr": _val(r.stderr),
        "error": None if r.error is None else _py_err(r.error, with_result=False),
    }


# --------------------------------------------------------------------------
# the node side

_RUNNER_JS = r"""
'use strict';
const cp = require('child_process');
const fs = require('fs');

function enc(x) {
  if (x === null) return null;
  if (x === undefined) return {$undef: 1};
  if (Buffer.isBuffer(x)) return {$b: x.toString('base64')};
  if (typeof x === 'string') return {$s: x};
  return {$other: String(x)};
}
function encErr(e) {
  const o = {name: e && e.name, message: e && e.message, code: e && e.code, errno: e && e.errno,
             syscall: e && e.syscall, path: e && e.path, spawnargs: e && e.spawnargs};
  if (e && typeof e === 'object' && 'status' in e) {
    o.status = e.status; o.signal = e.signal; o.pid = e.pid;
    o.output = e.output ? e.output.map(enc) : e.output;
    o.stdout = enc(e.stdout); o.stderr = enc(e.stderr);
  }
  return o;
}

function runCase(c) {
  const opened = [];
  function revive(v) {
    if (Array.isArray(v)) return v.map(revive);
    if (v && typeof v === 'object') {
      if ('$buf' in v) {
        const b = Buffer.from(v.$buf, 'base64');
        if (v.kind === 'Uint8Array') return new Uint8Array(b.buffer, b.byteOffset, b.length);
        if (v.kind === 'DataView') return new DataView(b.buffer, b.byteOffset, b.length);
        return b;
      }
      if ('$inf' in v) return Infinity;
      if ('$openfd' in v) { const fd = fs.openSync(v.$openfd, v.flags); opened.push(fd); return fd; }
      if ('$openobj' in v) { const fd = fs.openSync(v.$openobj, v.flags); opened.push(fd); return {fd}; }
      const o = {};
      for (const k of Object.keys(v)) o[k] = revive(v[k]);
      return o;
    }
    return v;
  }
  let res;
  try {
    const fn = cp[c.fn];
    const opts = revive(c.opts);
    let r;
    if (c.fn === 'execSync' || c.args === null) r = fn(c.file, opts);
    else r = fn(c.file, revive(c.args), opts);
    if (c.fn === 'spawnSync') {
      res = {kind: 'returned', status: r.status, signal: r.signal, pid: r.pid,
             output: r.output ? r.output.map(enc) : r.output,
             stdout: enc(r.stdout), stderr: enc(r.stderr),
             error: r.error ? encErr(r.error) : null};
    } else {
      res = {kind: 'returned', value: enc(r)};
    }
  } catch (e) {
    res = {kind: 'thrown', err: encErr(e)};
  }
  for (const fd of opened) fs.closeSync(fd);
  return res;
}

if (process.argv[2] === '--worker') {
  // one case per line on stdin: {case, env, cwd, result}; answers 'done' per case
  const rl = require('readline').createInterface({input: process.stdin});
  rl.on('line', (line) => {
    const m = JSON.parse(line);
    for (const k of Object.keys(process.env)) if (!(k in m.env)) delete process.env[k];
    Object.assign(process.env, m.env);
    process.chdir(m.cwd);
    fs.writeFileSync(m.result, JSON.stringify(runCase(m.case)));
    process.stdout.write('done\n');
  });
} else {
  const [caseFile, resultFile] = process.argv.slice(2);
  fs.writeFileSync(resultFile, JSON.stringify(runCase(JSON.parse(fs.readFileSync(caseFile, 'utf8')))));
}
"""


class _NodeWorker:
    """One long-lived node running cases that cannot touch node's own stdio.

    Saves a node start-up (~60-100 ms) per case.  Cases whose child may write to
    the parent's stdout/stderr (stdio 'inherit' or fds 0-2) or read its stdin,
    and exec_* without `stdio` (node copies stderr to its own), run in a node
    of their own instead so that its stdout/stderr can be captured.
    """

    def __init__(self, runner: str, errlog: str):
        self.errlog = errlog
        self._err = open(errlog, "wb")
        self.proc = start_node(
            file=runner, args=["--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
        )

    def run(self, payload: dict, result: str, timeout: float = 120) -> None:
        import select

        msg = {"case": payload, "env": dict(os.environ), "cwd": os.getcwd(), "result": result}
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if line != b"done\n":
            self.close()
            with open(self.errlog, "rb") as f:
                err = f.read().decode("utf-8", "replace")
            raise AssertionError(f"node worker failed or hung: {line!r}\n{err}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.proc.kill()
                self.proc.wait()
        self._err.close()


def _needs_own_node(case, opts: dict) -> bool:
    if case.fn != "spawn_sync" and "stdio" not in opts:
        return True  # execSync/execFileSync copy stderr to node's stderr
    stdio = opts.get("stdio", "pipe")
    if stdio == "inherit":
        return True
    if isinstance(stdio, (list, tuple)):
        for v in stdio:
            if v == "inherit" or (type(v) is int and v in (0, 1, 2)):
                return True
    return False


@pytest.fixture(scope="session")
def _sync_node_worker(tmp_path_factory):
    if NODE is None:
        yield None
        return
    d = tmp_path_factory.mktemp("nodeworker")
    (d / "runner.js").write_text(_RUNNER_JS)
    holder = {"dir": d, "worker": None}
    yield holder
    if holder["worker"] is not None:
        holder["worker"].close()


class SyncComparer:
    """Runs a SyncCase through node and childproc and returns both normalised."""

    def __init__(self, tmp_path, capfd, worker_holder):
        self.tmp = tmp_path
        self.capfd = capfd
        self.holder = worker_holder
        self.work = tmp_path / "_nodecmp"
        self.work.mkdir(exist_ok=True)
        self.runner = self.work / "runner.js"
        self.runner.write_text(_RUNNER_JS)

    def _worker(self) -> _NodeWorker:
        w = self.holder["worker"]
        if w is None or not w.alive():
            d = self.holder["dir"]
            w = self.holder["worker"] = _NodeWorker(str(d / "runner.js"), str(d / "worker.err"))
        return w

    # -- node --------------------------------------------------------------
    def node(self, case) -> dict:
        if isinstance(case, dict):
            case = SyncCase(**case)
        need_node()
        if case.setup:
            case.setup(self.tmp)
        file = _resolve(case.file, self.tmp)
        args = _resolve(case.args, self.tmp)
        opts = _resolve(case.opts, self.tmp)
        nopts = _node_options(opts)
        _close_file_objects(opts)
        nopts.update(_resolve(case.node_opts, self.tmp))
        payload = {
            "fn": _NODE_FN[case.fn],
            "file": os.fsdecode(file),
            "args": None if args is None else _to_node(list(args)),
            "opts": nopts,
        }
        cfile = self.work / "case.json"
        rfile = self.work / "result.json"
        if rfile.exists():
            rfile.unlink()
        if _needs_own_node(case, opts) or self.holder is None:
            cfile.write_text(json.dumps(payload))
            # check=False: the result file says what happened, whatever node's exit
            proc = run_node(file=self.runner, args=[cfile, rfile], env=os.environ, timeout=120, check=False)
            assert rfile.exists(), f"node runner failed: {proc.returncode} {proc.stderr!r}"
            parent_out = proc.stdout.decode("utf-8", "replace")
            parent_err = proc.stderr.decode("utf-8", "replace")
        else:
            # the child cannot reach node's stdio here: nothing can show up there
            self._worker().run(payload, str(rfile))
            parent_out = parent_err = ""
        raw = json.loads(rfile.read_text())
        out = self._normalise_node(case, raw)
        out["parent_out"] = parent_out
        out["parent_err"] = parent_err
        if case.collect:
            out["collected"] = case.collect(self.tmp)
        for k in case.ignore:
            out.pop(k, None)
        return out

    @staticmethod
    def _normalise_node(case, raw) -> dict:
        if raw["kind"] == "thrown":
            return {"kind": "thrown", **_node_err(raw["err"], with_result=case.fn != "spawn_sync")}
        if case.fn == "spawn_sync":
            return {
                "kind": "returned",
                "status": raw["status"],
                "signal": raw["signal"],
                "pid0": raw["pid"] == 0,
                "output": _out_list(raw["output"], _node_val),
                "stdout": _node_val(raw["stdout"]),
                "stderr": _node_val(raw["stderr"]),
                "error": None if raw["error"] is None else _node_err(raw["error"], with_result=False),
            }
        return {"kind": "returned", "value": _node_val(raw["value"])}

    # -- childproc ---------------------------------------------------------
    def py(self, case, *, raw: bool = False):
        import childproc as cp

        if isinstance(case, dict):
            case = SyncCase(**case)
        if case.setup:
            case.setup(self.tmp)
        file = _resolve(case.file, self.tmp)
        args = _resolve(case.args, self.tmp)
        opts = _resolve(case.opts, self.tmp)
        closers: list = []
        opts = {k: (_open_for_python(v, closers) if k == "stdio" else v) for k, v in opts.items()}
        fn = getattr(cp, case.fn)
        self.capfd.readouterr()
        result = exc = None
        try:
            if case.fn == "exec_sync":
                result = fn(file, **opts)
            elif args is None:
                result = fn(file, **opts)
            else:
                result = fn(file, args, **opts)
        except Exception as e:  # noqa: BLE001 - compared below
            exc = e
        finally:
            for c in closers:
                c()
        sys.stdout.flush()
        sys.stderr.flush()
        cap = self.capfd.readouterr()
        if exc is not None:
            out = {"kind": "thrown", **_py_err(exc, with_result=case.fn != "spawn_sync")}
            if out["etype"] == "other":
                # an unexpected Python exception: show it in full in the diff
                out["repr"] = repr(exc)
        elif case.fn == "spawn_sync":
            out = normalise_py_result(result)
            if result.error is not None:
                # Python conventions on top of Node's: positive errno, an OSError
                assert isinstance(result.error, OSError), type(result.error)
                assert result.error.errno > 0, result.error.errno
        else:
            out = {"kind": "returned", "value": _val(result)}
        out["parent_out"] = cap.out
        out["parent_err"] = cap.err
        if case.collect:
            out["collected"] = case.collect(self.tmp)
        for k in case.ignore:
            out.pop(k, None)
        if raw:
            return out, result, exc
        return out

    def both(self, case):
        """(node, childproc) normalised results; node first."""
        if isinstance(case, dict):
            case = SyncCase(**case)
        n = self.node(case)
        p = self.py(case)
        return n, p

    def check(self, case):
        """Node's result and ours must agree, and so must our second run of
        the same call: a repeated call shape runs from a kept request
        (``_sync``'s prepared calls), which must behave as the first."""
        if isinstance(case, dict):
            case = SyncCase(**case)
        n, p = self.both(case)
        assert_same_as_node(n, p)
        again = self.py(case)
        assert_same_as_node(n, again, "on the second run")
        return p


@pytest.fixture
def sync_compare(tmp_path, capfd, _sync_node_worker):
    return SyncComparer(tmp_path, capfd, _sync_node_worker)


@pytest.fixture(scope="session")
def node_bin():
    return need_node()


def run_python_helper(code: str, *, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that can import childproc (same sys.path)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


@pytest.fixture
def py_helper():
    return run_python_helper
