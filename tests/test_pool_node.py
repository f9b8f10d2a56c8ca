"""cp.ProcessPool with json workers: Node workers serving a Python pool, a
Python json worker, a Node parent driving that Python worker over the same
protocol, and the same user code on Dask (docs/pool.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from childproc._pool import ProcessPool, RemoteError, TaskTimeoutError, WorkerCrashedError
from nodecmp import NODE, requires_node
from pool_helpers import FIX

import pool_tasks as T  # noqa: E402

WATCHDOG_SECONDS = 60
pytestmark = pytest.mark.usefixtures("watchdog")
WORKER_JS = str(FIX / "worker.js")
WORKER_PY = str(FIX / "json_worker.py")


@pytest.fixture(scope="module")
def node_pool():
    if NODE is None:
        pytest.skip("node is not installed")
    p = ProcessPool(2, module=WORKER_JS, exec_path=NODE, serialization="json")
    yield p
    p.shutdown()


@requires_node
def test_node_worker_answers(node_pool):
    assert node_pool.submit("inc", 41).result(30) == 42
    assert node_pool.submit("add", "a", "b").result(30) == "ab"
    assert list(node_pool.map("inc", range(50))) == list(range(1, 51))


@requires_node
def test_node_worker_awaits_promises(node_pool):
    assert node_pool.submit("later", 21).result(30) == 42


@requires_node
def test_node_error_is_a_remote_error_with_message_and_stack(node_pool):
    with pytest.raises(RemoteError) as info:
        node_pool.submit("fail", "out of range").result(30)
    err = info.value
    assert (err.type_name, err.message) == ("RangeError", "out of range")
    assert "worker.js" in err.traceback_text
    with pytest.raises(RemoteError, match="not a function"):
        node_pool.submit("nope").result(30)


@requires_node
def test_node_worker_timeout_and_crash():
    with ProcessPool(1, module=WORKER_JS, exec_path=NODE, serialization="json", task_timeout=0.3) as p:
        with pytest.raises(TaskTimeoutError):
            p.submit("hang").result(30)
        with pytest.raises(WorkerCrashedError) as info:
            p.submit("crash").result(30)
        assert info.value.exit_code == 7
        assert p.submit("inc", 1).result(30) == 2


def test_json_mode_refuses_what_it_cannot_carry():
    with pytest.raises(ValueError):
        ProcessPool(1, module=WORKER_PY)  # module= is for json workers
    with ProcessPool(1, module=WORKER_PY, serialization="json") as p:
        with pytest.raises(TypeError):
            p.submit("inc", x=1)
        fut = p.submit("inc", object())
        assert fut.done() and isinstance(fut.exception(), TypeError)


def test_python_json_worker():
    with ProcessPool(2, module=WORKER_PY, serialization="json") as p:
        assert p.submit("inc", 1).result(30) == 2
        with pytest.raises(RemoteError) as info:
            p.submit("fail", "k").result(30)
        assert info.value.type_name == "KeyError"
        assert "in fail" in info.value.traceback_text


@requires_node
def test_node_parent_drives_python_worker():
    # The worker's own protocol, from Node's child_process.fork.
    script = f"""
    const cp = require('child_process');
    const child = cp.fork('childproc-pool-worker', [{json.dumps(WORKER_PY)}], {{
      execPath: {json.dumps(sys.executable)},
      execArgv: ['-c', 'from childproc._pool._worker import main; main()'],
      serialization: 'json',
    }});
    const got = [];
    child.on('message', (m) => {{
      got.push(m);
      if (m.ready) {{ child.send({{id: 1, fn: 'inc', args: [41]}}); child.send({{id: 2, fn: 'fail', args: ['x']}}); }}
      if (got.length === 3) {{ console.log(JSON.stringify(got.slice(1).map((r) => r.result ?? r.error.name))); child.disconnect(); }}
    }});
    """
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [42, "KeyError"]


def test_same_code_on_dask():
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, dashboard_address=None) as client:
        executor = client.get_executor()
        assert list(executor.map(T.inc, [1, 2, 3])) == [2, 3, 4]
        assert executor.submit(T.inc, 41).result(60) == 42
    with ProcessPool(2) as executor:  # the same calls on the pool
        assert list(executor.map(T.inc, [1, 2, 3])) == [2, 3, 4]
        assert executor.submit(T.inc, 41).result(60) == 42
