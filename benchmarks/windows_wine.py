"""childproc against Windows node.exe, both on Windows CPython under wine:
spawn + wait of a do-nothing program and IPC round trips, interleaved rounds
in one run, medians and ratios (childproc's time over Node's: below 1 is
faster).  Run by scripts/windows-stage.sh:

    bash scripts/windows-stage.sh --python benchmarks/windows_wine.py

Under wine the figures say how the two compare on the same emulated
kernel, not what Windows itself would give.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import childproc

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = os.environ["CHILDPROC_WIN_NODE"]
TRUE_EXE = os.environ["CHILDPROC_WIN_TRUE"]
SPAWNS = 100
TRIPS = 2000
ROUNDS = 3

NODE_SCRIPT = r"""
const cp = require('child_process');
const [what, n, file] = [process.argv[1], +process.argv[2], process.argv[3]];
let t0 = process.hrtime.bigint();
const done = () => process.stdout.write(JSON.stringify(Number(process.hrtime.bigint() - t0) / 1e9));
if (what === 'spawnSync') {
  for (let i = 0; i < n; i++) cp.spawnSync(file);
  done();
} else if (what === 'spawn') {
  let left = n;
  const one = () => cp.spawn(file).on('close', () => (--left ? one() : done()));
  one();
} else {
  const child = cp.fork(file);
  let left = n;
  const t = {seq: 0, text: 'ping'};
  child.on('message', (m) => {
    // Timed from the first echo: the child's start-up is not a round trip.
    if (m.ready) { t0 = process.hrtime.bigint(); return child.send(t); }
    if (--left) child.send(t); else { child.disconnect(); done(); }
  });
  child.send({ready: 1});
}
"""


def node(what: str, n: int, file: str) -> float:
    proc = subprocess.run([NODE, "-e", NODE_SCRIPT, what, str(n), file], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode:
        raise RuntimeError(f"node.exe {what} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return float(json.loads(proc.stdout))


def ours_spawn_sync(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        childproc.spawn_sync(TRUE_EXE)
    return time.perf_counter() - t0


def ours_spawn(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        childproc.spawn(TRUE_EXE).wait()
    return time.perf_counter() - t0


def ours_ipc(n: int) -> float:
    child = childproc.fork(os.path.join(HERE, "ipc_pong.py"))
    left = [n]
    message = {"seq": 0, "text": "ping"}
    t0 = [0.0, 0.0]

    def on_message(m: object, _h: object = None) -> None:
        if m == {"ready": 1}:  # timed from the first echo, as Node's side
            t0[0] = time.perf_counter()
            child.send(message)
            return
        left[0] -= 1
        if left[0]:
            child.send(message)
        else:
            t0[1] = time.perf_counter() - t0[0]  # Node's side stops here too
            child.disconnect()

    child.on("message", on_message)
    child.send({"ready": 1})
    child.wait()
    return t0[1]


def main() -> None:
    pong_js = os.path.join(HERE, "ipc_pong.js")
    cases = [
        ("spawn_sync + wait", SPAWNS, ours_spawn_sync, lambda: node("spawnSync", SPAWNS, TRUE_EXE)),
        ("spawn + wait (events)", SPAWNS, ours_spawn, lambda: node("spawn", SPAWNS, TRUE_EXE)),
        ("IPC round trip (json)", TRIPS, ours_ipc, lambda: node("ipc", TRIPS, pong_js)),
    ]
    for name, n, ours, theirs in cases:
        mine: list[float] = []
        nodes: list[float] = []
        for _ in range(ROUNDS):
            mine.append(ours(n) / n)
            nodes.append(theirs() / n)
        a, b = statistics.median(mine), statistics.median(nodes)
        print(f"{name:24s} childproc {a * 1e6:9.0f} us   node.exe {b * 1e6:9.0f} us   ratio {a / b:5.2f}",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
