"""The README's tour, grown, as a user's typed script: ``mypy --strict``
must accept it (scripts/test.sh checks it), and every ``assert_type`` is a
promise of the typed API.  It is checked, never run."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
from typing import Any

from typing_extensions import assert_type

import childproc as cp

# -- the sync forms ---------------------------------------------------------
r = cp.spawn_sync("ls", ["-l", "/tmp"])
assert_type(r, cp.SpawnSyncResult[bytes])
assert_type(r.stdout, "bytes | None")
status: int | None = r.status
name: str | None = r.signal
pid: int = r.pid
error: cp.SpawnError | None = cp.spawn_sync("sleep", ["5"], timeout=0.2).error
assert_type(cp.spawn_sync("ls", encoding="utf8").stdout, "str | None")
assert_type(cp.spawn_sync("ls", ["-l"], {"cwd": "/tmp"}), cp.SpawnSyncResult[Any])

home = cp.exec_sync("echo $HOME", encoding="utf8")
assert_type(home, str)
assert_type(cp.exec_sync("echo hi"), bytes)
assert_type(cp.exec_sync("echo hi", encoding="buffer"), bytes)
assert_type(cp.exec_sync("echo hi", encoding=None, stdio="inherit"), "bytes | None")
assert_type(cp.exec_sync("echo hi", encoding="latin1", stdio="pipe"), "str | None")
assert_type(cp.exec_file_sync("git", ["status"], cwd=pathlib.Path("."), encoding="utf8"), str)
assert_type(cp.exec_file_sync("git", ["status"]), bytes)
cp.exec_sync("cat", input=b"data", timeout=1.5, kill_signal="SIGKILL", max_buffer=10 << 20)
cp.exec_sync("env", env={**os.environ, "N": 1}, shell="/bin/bash", uid=os.getuid())

try:
    cp.exec_sync("exit 3", stdio="pipe")
except subprocess.CalledProcessError as err:  # ExecError is one
    code: int = err.returncode
except TimeoutError:
    pass
try:
    cp.exec_sync("exit 3")
except cp.ExecError as err:
    node_code: int | str | None = err.code
    killed: bool = err.killed
    stdout: str | bytes | None = err.stdout

# -- async: events on this thread's loop -------------------------------------
child = cp.spawn("sh", ["-c", "echo out; echo err >&2; exit 3"], stdio="pipe", cwd=None)
child.on("exit", lambda code, signal: print("exit", code, signal))
assert child.stdout is not None
child.stdout.on("data", lambda chunk: print("stdout", chunk))
exit_code: int | None = child.wait()
returncode: int | None = child.returncode
if child.returncode is not None:
    print(child.signal_code, child.exit_code)

out = cp.spawn("ls").stdout
if out is not None:
    data: bytes | str = out.read()
    for line in out.lines(max_line=1 << 16):
        print(line)

result = cp.exec("git log -1", timeout=5).result()
assert_type(result, cp.ExecResult[str])
assert_type(result.stdout, str)
assert_type(cp.exec("git log -1", encoding=None).result().stdout, bytes)
assert_type(cp.exec("ls", {"cwd": "/"}), cp.ExecChildProcess[Any])
cp.exec("ls", lambda err, so, se: print(err, so.upper(), se))
cp.exec_file("ls", ["-l"], lambda err, so, se: print(so.splitlines()))
cp.exec_file("ls", lambda err, so, se: None)
try:
    cp.exec("sleep 5", timeout=0.2).result()
except cp.ExecTimeoutError as timed_out:
    print(timed_out.timeout, timed_out.returncode)
except cp.MaxBufferError as too_much:
    print(too_much.code)


async def main() -> None:
    r = await cp.exec("git status")
    assert_type(r, cp.ExecResult[str])
    text: str = r.stdout
    raw = await cp.exec_file("git", ["status"], encoding="buffer")
    assert_type(raw.stdout, bytes)
    code = await cp.spawn("true")
    assert_type(code, "int | None")
    c = cp.spawn("cat")
    if c.stdout is not None:
        whole: bytes | str = await c.stdout.aread()
        async for chunk in c.stdout:
            print(chunk)


asyncio.run(main())

# -- pipelines, fork and IPC -------------------------------------------------
a = cp.spawn("cat", ["big.log"])
b = cp.spawn("grep", ["ERROR"], stdio=[a.stdout, "pipe", "inherit"])
if b.stdout is not None:
    b.stdout.pipe(open("errors.txt", "wb"))

worker = cp.fork("worker.py", serialization="pickle", exec_argv=["-X", "dev"])
worker.on("message", lambda msg, handle: print(msg))
worker.send({"job": 1})
node_worker = cp.fork("worker.js", exec_path="node", silent=True)
controller = cp.AbortController()
cp.spawn("sleep", ["10"], signal=controller.signal)
controller.abort()

# -- beyond Node -------------------------------------------------------------
cp.exec("make -j8", timeout=60, kill_tree=True, force_kill_after=5)
cp.spawn("server", die_with_parent=True, stdio=["ignore", sys.stdout, 2])
