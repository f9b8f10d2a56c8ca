"""The Node-comparison harness: every test that asks the real ``node`` goes through here.

Node is the reference: a test of Node-defined behaviour runs the same case
through ``node`` and through childproc and compares.  This module is the one
place that finds ``node``, skips when it is absent, starts it, and reads its
answer; the tests keep only their JavaScript and their assertions.

Finding node
    ``NODE`` is its path or None; ``requires_node`` is a ``skipif`` marker for
    whole tests or modules; ``need_node()`` skips the calling test (or fixture)
    when node is absent and returns the path otherwise.

Running node to its end
    ``run_node(script=..., file=..., args=..., stdin=..., env=..., cwd=...)``
    runs ``node -e SCRIPT`` or ``node FILE`` with those arguments, feeds it
    ``stdin`` and returns the finished process (stdout and stderr as bytes).
    A non-zero exit fails the test with node's stderr, unless ``check=False``
    (for a caller that looks at what node printed, or at a file it wrote,
    whatever its exit status).

Getting a JSON answer
    ``node_result(...)``: the same arguments; returns the JSON value on the
    last line of node's stdout (a script may print other lines before it).
    ``node_json(script)``: ``script`` runs with ``cp`` (child_process), ``util``
    and ``os`` required and ``out(value)`` to give the answer (the last call
    wins)::

        node_json("out(cp.spawnSync('echo', ['hi']).stdout.toString())")  # 'hi\\n'

    ``node_cases(runner_js, cases)``: many cases in one node start-up.  The
    runner reads ``cases`` (JSON) on its stdin and prints its JSON answer.
    ``node_errors({'key': js_body, ...})`` is such a runner: each body is a
    function body with ``cp``, ``util`` and ``os`` in scope, and the answer is
    ``{'key': None}`` for a body that did not throw, else ``{'key': {'name':
    'TypeError', 'code': 'ERR_...', 'message': '...'}}``.  Note that a body
    that does not throw really runs (spawns) what it says.

A node that keeps running
    ``start_node(...)``: the same arguments; returns the ``subprocess.Popen``
    (extra keywords go to it), for tests that watch node while it runs or
    talk to a long-lived node.

Comparing
    ``assert_same_as_node(node, ours)``: ``node == ours``, or an
    ``AssertionError`` naming what differs (per key for dicts, per index for
    lists): the standard last line of a comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

NODE: str | None = shutil.which("node")
requires_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

StrPath = str | os.PathLike[str]


def need_node() -> str:
    """node's path; skips the calling test when node is not installed."""
    if NODE is None:
        pytest.skip("node is not installed: cannot compare with the reference")
    return NODE


def _argv(script: str | None, file: StrPath | None, args: Sequence[StrPath]) -> list[str]:
    if script is not None and file is None:
        head = ["-e", script]
    elif file is not None and script is None:
        head = [os.fspath(file)]
    else:
        raise TypeError("give node either a script or a file")
    return [need_node(), *head, *(os.fspath(a) for a in args)]


def run_node(
    script: str | None = None,
    *,
    file: StrPath | None = None,
    args: Sequence[StrPath] = (),
    stdin: str | bytes = b"",
    env: Mapping[str, str] | None = None,
    cwd: StrPath | None = None,
    timeout: float = 60,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run node on ``script`` (``-e``) or ``file`` to its end."""
    proc = subprocess.run(
        _argv(script, file, args),
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        env=None if env is None else dict(env),
        cwd=os.getcwd() if cwd is None else cwd,  # see _as_this_process
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"node failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return proc


def node_result(script: str | None = None, **kw: Any) -> Any:
    """Run node (as ``run_node``) and return the JSON on the last line of its stdout."""
    out = run_node(script, **kw).stdout.decode()
    return json.loads(out.rstrip("\n").rsplit("\n", 1)[-1])


def start_node(
    script: str | None = None, *, file: StrPath | None = None, args: Sequence[StrPath] = (), **popen: Any
) -> subprocess.Popen[Any]:
    """Start node on ``script`` or ``file`` and return it still running."""
    return subprocess.Popen(_argv(script, file, args), **_as_this_process(popen))


def _as_this_process(popen: dict[str, Any]) -> dict[str, Any]:
    """Node starts in this process's exact signal state.  From Python 3.13
    on, subprocess uses posix_spawn when it can, and glibc's posix_spawn
    leaves its two internal real-time signals (32 and 33) ignored in the
    child; Node keeps ignored real-time signals for its own children, so
    they would show up there.  A working directory that is named takes
    subprocess's fork_exec path, which changes no disposition."""
    if popen.get("cwd") is None:
        popen["cwd"] = os.getcwd()
    return popen


_PRELUDE = """
const cp = require('child_process'), util = require('util'), os = require('os');
let __out;
const out = (v) => { __out = v; };
"""


def node_json(script: str, timeout: float = 60) -> Any:
    """Run ``script`` under node and return the value it passed to ``out()``."""
    wrapped = _PRELUDE + script + "\n;process.stdout.write('\\n' + JSON.stringify(__out === undefined ? null : __out));"
    return node_result(wrapped, timeout=timeout)


def node_cases(runner_js: str, cases: Any, timeout: float = 120) -> Any:
    """Run ``runner_js`` with ``cases`` as JSON on its stdin; return its JSON answer."""
    return node_result(runner_js, stdin=json.dumps(cases), timeout=timeout)


_ERRORS_RUNNER = _PRELUDE + """
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const result = {};
for (const [key, body] of Object.entries(cases)) {
  try {
    new Function('cp', 'util', 'os', 'require', body)(cp, util, os, require);
    result[key] = null;
  } catch (e) {
    result[key] = { name: e.name, code: e.code === undefined ? null : e.code, message: e.message };
  }
}
process.stdout.write('\\n' + JSON.stringify(result));
"""


def node_errors(cases: Mapping[str, str], timeout: float = 120) -> dict[str, dict[str, Any] | None]:
    """Run each snippet of ``cases`` in one node process; report what each threw."""
    result: dict[str, dict[str, Any] | None] = node_cases(_ERRORS_RUNNER, dict(cases), timeout=timeout)
    return result


def _differences(node: Any, ours: Any) -> list[str]:
    if isinstance(node, dict) and isinstance(ours, dict):
        return [
            f"  {k}: node={node.get(k, '<absent>')!r}  childproc={ours.get(k, '<absent>')!r}"
            for k in sorted(set(node) | set(ours), key=str)
            if node.get(k, "<absent>") != ours.get(k, "<absent>")
        ]
    if isinstance(node, list) and isinstance(ours, list) and len(node) == len(ours):
        return [f"  [{i}]: node={n!r}  childproc={o!r}" for i, (n, o) in enumerate(zip(node, ours)) if n != o]
    return [f"  node={node!r}\n  childproc={ours!r}"]


def assert_same_as_node(node: Any, ours: Any, what: str = "") -> None:
    """``node == ours``, or an AssertionError that names what differs."""
    if node != ours:
        head = f"{what}: " if what else ""
        raise AssertionError("\n".join([f"{head}childproc differs from node:", *_differences(node, ours)]))
