"""Ask the real ``node`` what it does, for tests that compare with Node.

Two calls, both skipping the calling test (``pytest.skip``) when ``node`` is
not on PATH:

``node_json(script)``
    Runs ``script`` with ``node -e``.  ``cp`` (``child_process``), ``util``
    and ``os`` are already required, and ``out(value)`` prints ``value`` as
    JSON; ``node_json`` returns what was passed to ``out`` (the last call
    wins).  Example::

        node_json("out(cp.spawnSync('echo', ['hi']).stdout.toString())")  # 'hi\\n'

``node_errors({'key': js_code, ...})``
    Runs every snippet in one ``node`` process (so dozens of cases cost one
    start-up) and returns ``{'key': None}`` for a snippet that did not
    throw, else ``{'key': {'name': 'TypeError', 'code': 'ERR_...',
    'message': '...'}}``.  Each snippet is a function body with ``cp``,
    ``util`` and ``os`` in scope: ``"cp.spawn('ec\\\\0ho')"``.  Note that a
    snippet that does not throw really runs (spawns) what it says.

``requires_node`` is a ``pytest.mark.skipif`` marker for whole tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest

NODE: str | None = shutil.which("node")
requires_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

_PRELUDE = """
const cp = require('child_process'), util = require('util'), os = require('os');
let __out;
const out = (v) => { __out = v; };
"""


def _run(script: str, stdin: str = "", timeout: float = 60) -> Any:
    if NODE is None:
        pytest.skip("node is not installed")
    proc = subprocess.run([NODE, "-e", script], input=stdin.encode(), capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"node failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    # The JSON is the last line; snippets may print their own output before it.
    return json.loads(proc.stdout.decode().rstrip("\n").rsplit("\n", 1)[-1])


def node_json(script: str, timeout: float = 60) -> Any:
    """Run ``script`` under node and return the value it passed to ``out()``."""
    wrapped = _PRELUDE + script + "\n;process.stdout.write('\\n' + JSON.stringify(__out === undefined ? null : __out));"
    return _run(wrapped, timeout=timeout)


def node_errors(cases: Mapping[str, str], timeout: float = 120) -> dict[str, dict[str, Any] | None]:
    """Run each snippet of ``cases`` in one node process; report what each threw."""
    script = _PRELUDE + """
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
    return _run(script, stdin=json.dumps(dict(cases)), timeout=timeout)
