"""Ask Windows ``node.exe`` what Node does, and put childproc's answer in
the same shape, so a test compares the two with ``==``.

``node.exe`` is ``$CHILDPROC_WIN_NODE`` or found on PATH; tests that need it
skip without it.  It is started through :mod:`subprocess` with explicit
pipes for all three stdio handles (Node 20 on Windows dies with ``EBADF``
when a std handle is missing), never through childproc, so the reference
does not depend on the code under test.

``run_node(script, data)`` runs ``script`` with ``data`` (JSON) in the
variable ``input`` and ``cp`` = ``child_process``; the script calls
``out(value)`` and ``run_node`` returns ``value``.

``node_sync(cases)`` runs many sync calls in one ``node.exe`` (its start-up
is ~0.3 s under wine); ``py_sync(cases)`` runs the same cases through
childproc.  A case is ``{"fn": "spawnSync" | "execSync" | "execFileSync",
"file": ..., "args": [...], "options": {...}}`` with Python option names
and seconds; both sides reduce what they got to ``shape``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

import pytest

NODE: str | None = os.environ.get("CHILDPROC_WIN_NODE") or shutil.which("node.exe")
if NODE is not None and not os.path.exists(NODE):
    NODE = None
requires_node = pytest.mark.skipif(NODE is None, reason="node.exe is not available")

_PRELUDE = r"""
const cp = require('child_process');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
let __out = null;
const out = (v) => { __out = v; };
"""

_EPILOGUE = r"""
;process.on('exit', () => process.stdout.write('\n' + JSON.stringify(__out)));
"""


def run_node(script: str, data: Any = None, timeout: float = 120) -> Any:
    if NODE is None:
        pytest.skip("node.exe is not available")
    proc = subprocess.run([NODE, "-e", _PRELUDE + script + _EPILOGUE], input=json.dumps(data).encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"node.exe failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return json.loads(proc.stdout.decode().rstrip("\r\n").rsplit("\n", 1)[-1])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _node_options(options: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in options.items():
        if key == "timeout":
            value = value * 1000
        if key == "input" and isinstance(value, bytes):
            value = {"$latin1": value.decode("latin-1")}  # a Buffer on the Node side
        result[_camel(key)] = value
    return result


_NODE_SYNC = r"""
const text = (b) => b == null ? null : (typeof b === 'string' ? b : b.toString('latin1'));
const result = {};
for (const [key, c] of Object.entries(input)) {
  if (c.options.input && c.options.input.$latin1 !== undefined)
    c.options.input = Buffer.from(c.options.input.$latin1, 'latin1');
  try {
    if (c.fn === 'spawnSync') {
      const r = cp.spawnSync(c.file, c.args, c.options);
      result[key] = {status: r.status, signal: r.signal, stdout: text(r.stdout), stderr: text(r.stderr),
                     error: r.error ? r.error.code : null, pid: r.pid > 0};
    } else if (c.fn === 'execSync') {
      result[key] = {stdout: text(cp.execSync(c.file, c.options))};
    } else {
      result[key] = {stdout: text(cp.execFileSync(c.file, c.args, c.options))};
    }
  } catch (e) {
    result[key] = {threw: {code: e.code === undefined ? null : e.code,
                           status: e.status === undefined ? null : e.status,
                           signal: e.signal === undefined ? null : e.signal,
                           message: e.message.split('\n')[0]}};
  }
}
out(result);
"""


def node_sync(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    js_cases = {}
    for key, case in cases.items():
        options = _node_options(case.get("options", {}))
        js_cases[key] = {"fn": case["fn"], "file": case["file"], "args": case.get("args", []),
                         "options": options}
    result = run_node(_NODE_SYNC, js_cases)
    for shape in result.values():
        for key in ("stdout", "stderr"):
            if isinstance(shape.get(key), str):
                shape[key] = _short(shape[key])
    return result  # type: ignore[no-any-return]


def _text(data: Any) -> Any:
    if data is None:
        return None
    text = data if isinstance(data, str) else data.decode("latin-1")
    return _short(text)


def _short(text: str) -> Any:
    # Long outputs are compared by length and ends: a failure stays readable.
    if len(text) <= 256:
        return text
    return {"length": len(text), "head": text[:32], "tail": text[-32:]}


def py_sync(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import childproc

    result: dict[str, Any] = {}
    for key, case in cases.items():
        fn, file, args, options = case["fn"], case["file"], case.get("args", []), case.get("options", {})
        try:
            if fn == "spawnSync":
                r = childproc.spawn_sync(file, args, **options)
                result[key] = {"status": r.status, "signal": r.signal, "stdout": _text(r.stdout),
                               "stderr": _text(r.stderr), "error": r.error.code if r.error else None,
                               "pid": r.pid > 0}
            elif fn == "execSync":
                result[key] = {"stdout": _text(childproc.exec_sync(file, **options))}
            else:
                result[key] = {"stdout": _text(childproc.exec_file_sync(file, args, **options))}
        except Exception as e:  # noqa: BLE001 - the shape of what was thrown is the result
            # An exit status in ``code`` is childproc's addition (the async
            # exec's shape, on every platform); the errno names are Node's.
            code = getattr(e, "code", None)
            result[key] = {"threw": {"code": code if isinstance(code, str) else None, "status": getattr(e, "status", None),
                                     "signal": getattr(e, "signal", None), "message": str(e).split("\n")[0]}}
    return result


def compare_sync(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run ``cases`` through node.exe and childproc; assert each case gives
    the same shape on both sides and return childproc's shapes."""
    node = node_sync(cases)
    ours = py_sync(cases)
    for key in cases:
        assert ours[key] == node[key], f"case {key!r}: childproc {ours[key]!r} != node {node[key]!r}"
    return ours
