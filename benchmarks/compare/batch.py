"""One batch: one peer's ops timed in a fresh process, and what it reported.

The protocol every peer speaks: the runner starts the peer's command with

    OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB  [the workload's arguments]

and reads one JSON line from its stdout: {"samples_ns": [...], "rss_kib": N,
"failures": 0} (optionally "base_rss_kib", "hwm_kib").  C floors speak it
through _floor_common.h, the Node peers through node_peers.js, and the
Python peers through ``worker_main`` here (``python -m compare --worker``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .model import HERE, Context, Peer, Workload
from .workloads import WORKLOADS

# ---------------------------------------------------------------------------
# The worker: one batch of one Python peer, in a fresh process.


def _status_kib(key: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def worker_main(argv: list[str]) -> int:
    workload, peer_name, ops, max_ms, warmup_ops, warmup_ms, ballast_mib, *wargs = argv
    ops, warmup_ops, ballast_mib = int(ops), int(warmup_ops), int(ballast_mib)
    max_ns, warmup_ns = int(float(max_ms) * 1e6), int(float(warmup_ms) * 1e6)

    ballast = None
    if ballast_mib > 0:
        n = ballast_mib << 20
        ballast = bytearray(n)
        # Write one byte per page: every page becomes resident (a write fault
        # on a zero page allocates), like the memset in floor_spawn.c.
        ballast[::4096] = b"\x01" * len(range(0, n, 4096))

    op = WORKLOADS[workload].peer(peer_name).py_op(wargs)
    base_rss = _status_kib("VmRSS")
    now = time.perf_counter_ns
    failures = 0

    def timed() -> tuple[int, int]:
        t0 = now()
        r = op()
        t1 = now()
        return r if isinstance(r, tuple) else (r, t1 - t0)

    warm_end = now() + warmup_ns
    for _ in range(warmup_ops):
        if now() >= warm_end:
            break
        if timed()[0] != 0:
            failures += 1

    samples: list[int] = []
    stop = now() + max_ns
    while len(samples) < max(1, ops):
        st, dt = timed()
        if st != 0:
            failures += 1
        samples.append(dt)
        if now() >= stop:
            break
    close = getattr(op, "close", None)
    if close is not None:
        close()

    out = {
        "samples_ns": samples,
        "rss_kib": _status_kib("VmRSS"),
        "base_rss_kib": base_rss,
        "hwm_kib": _status_kib("VmHWM"),
        "ballast_mib": ballast_mib,
        "failures": failures,
    }
    if ballast is not None:
        out["ballast_check"] = ballast[-4096]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 1 if failures else 0


# ---------------------------------------------------------------------------
# The runner's side: start a batch of any peer, read its result.


def peer_argv(ctx: Context, w: Workload, p: Peer) -> list[str]:
    if p.py_op is not None:
        # cwd is benchmarks/ (run_batch), where `-m compare` finds this package
        return [ctx.python, "-m", __package__, "--worker", w.name, p.name]
    return list(p.command(ctx))


def peer_tail(ctx: Context, p: Peer, wargs: list[str]) -> list[str]:
    return list(p.tail(ctx, wargs)) if p.tail else list(wargs)


@dataclass
class Batch:
    ok: bool
    samples_ns: list[int] = field(default_factory=list)
    rss_kib: int = -1
    wall_s: float = 0.0
    error: str = ""
    data: dict = field(default_factory=dict)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)


class ThreadWatch:
    """Polls /proc/PID/status of a running batch: its most threads at once."""

    def __init__(self, pid: int, interval: float = 0.002) -> None:
        self.path = f"/proc/{pid}/status"
        self.interval = interval
        self.max_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with open(self.path) as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            self.max_threads = max(self.max_threads, int(line.split()[1]))
                            break
            except (OSError, ValueError):
                pass
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.max_threads


def run_batch(
    ctx: Context, w: Workload, p: Peer, wargs: list[str], ops: int, max_ms: float, warmup_ops: int,
    warmup_ms: float, ballast_mib: int, timeout: float,
) -> Batch:
    argv = peer_argv(ctx, w, p) + [
        str(ops), f"{max_ms:g}", str(warmup_ops), f"{warmup_ms:g}", str(ballast_mib),
    ] + peer_tail(ctx, p, wargs)
    pin = None
    env = None
    if (w.pin_one_cpu or w.split_cpus) and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        cpu = cpus[-1]
        pin = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731  (inherited by its children)
        if w.split_cpus:
            env = dict(os.environ, BENCH_CHILD_CPU=str(cpus[-2]))
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE, preexec_fn=pin, env=env)
    watch = ThreadWatch(proc.pid) if w.watch else None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return Batch(False, wall_s=time.monotonic() - t0, error=f"no result within {timeout:g} s")
    finally:
        max_threads = watch.stop() if watch else None
    wall = time.monotonic() - t0
    try:
        data = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join((stderr or stdout).strip().splitlines()[-3:])
        return Batch(False, wall_s=wall, error=f"exit {proc.returncode}, no JSON: {tail}")
    if proc.returncode != 0 or data.get("failures"):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return Batch(
            False, wall_s=wall,
            error=f"exit {proc.returncode}, {data.get('failures', '?')} ops failed {tail}".strip(),
        )
    samples = [int(s) for s in data["samples_ns"]]
    if not samples:
        return Batch(False, wall_s=wall, error="no samples")
    if max_threads is not None:
        data["max_threads"] = max_threads
    data.pop("samples_ns", None)
    return Batch(True, samples, int(data.get("rss_kib", -1)), wall, data=data)

