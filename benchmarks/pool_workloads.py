#!/usr/bin/env python3
"""The worker-pool workloads: cp.ProcessPool against ProcessPoolExecutor,
multiprocessing.Pool, loky and Piscina, in one run.

    python benchmarks/pool_workloads.py            # about 3-5 minutes
    python benchmarks/pool_workloads.py --quick    # under a minute
    python benchmarks/pool_workloads.py --rounds 5 --workload rt

Every workload uses a pool of 2 and the task ``x + 1`` (``_pool_tasks.py``;
Piscina: ``pool_piscina_worker.js``).  One (workload, peer) pair is a
*cell*; each run of a cell is a fresh process (``--cell``), so no peer
shares an interpreter, threads or workers with another.  A run is
``--rounds`` rounds, each running every cell once in a freshly shuffled
order, so drift of a busy machine lands on all peers alike.  A cell's
figure is the median of its per-run figures.

Workloads (their bars are printed with the table, met or missed):

* ``rt``       round trip: ``submit(inc, i).result()`` one at a time, µs per task
* ``thr1``     throughput: submit a batch, wait for all; tasks/s (childproc prefetch=1)
* ``thr64``    the same with childproc at prefetch=64 (the peers as in thr1)
* ``crash``    a busy worker is SIGKILLed: ms until its future fails
               (multiprocessing.Pool never fails it: shown as "hang")
* ``timeout``  a task with a 1 s timeout that runs for 10 s: ms it fails late
               by, counted from its start in the worker (only childproc has
               per-task timeouts)
* ``ready``    an idle worker is SIGKILLed: ms until its replacement says it
               is ready (only childproc reports a worker's readiness)
* ``start``    the same replacements, from their spawn ('workerCreate') to
               'workerReady': what a worker's start costs by itself

Peers that cannot run here (loky not installed, no node or no piscina) are
listed as skipped with the reason.  Nothing here asserts a time.
``main()`` prints the table; ``run()`` returns the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PEERS = ["childproc", "mp.Pool", "PPE", "loky", "Piscina"]
WORKLOADS: dict[str, dict[str, Any]] = {
    "rt": {"title": "round trip, pool of 2, x+1", "unit": "µs", "lower": True, "peers": PEERS},
    "thr1": {"title": "throughput, prefetch=1", "unit": "tasks/s", "lower": False, "peers": PEERS},
    "thr64": {"title": "throughput, childproc prefetch=64", "unit": "tasks/s", "lower": False, "peers": PEERS},
    "crash": {"title": "busy worker SIGKILLed: future fails after", "unit": "ms", "lower": True,
              "peers": ["childproc", "mp.Pool", "PPE", "loky"]},
    "timeout": {"title": "1 s task timeout: late by", "unit": "ms", "lower": True, "peers": ["childproc"]},
    "ready": {"title": "idle worker SIGKILLed: replacement ready after", "unit": "ms", "lower": True,
              "peers": ["childproc", "childproc warm"]},
    "start": {"title": "worker start: spawn to ready", "unit": "ms", "lower": True,
              "peers": ["childproc", "childproc warm"]},
}
SIZES = {"full": {"rt": 1000, "thr": 5000, "batches": 3, "crash": 4, "timeout": 2, "ready": 5},
         "quick": {"rt": 300, "thr": 2000, "batches": 2, "crash": 2, "timeout": 1, "ready": 3}}


# ---------------------------------------------------------------------------
# the cells (run in a fresh process each)


class _MpPool:
    """multiprocessing.Pool with the Executor calls the cells use."""

    def __init__(self) -> None:
        import multiprocessing

        self.pool = multiprocessing.Pool(2)

    def submit(self, fn: Any, *args: Any) -> Any:
        res = self.pool.apply_async(fn, args)
        res.result = res.get  # type: ignore[attr-defined]
        return res

    def shutdown(self) -> None:
        self.pool.terminate()
        self.pool.join()


def _make(peer: str, prefetch: int = 1, **options: Any) -> Any:
    if peer in ("childproc", "childproc warm"):
        from childproc._pool import ProcessPool

        if peer == "childproc warm":  # workers cloned from the zygote (Linux; else as cold)
            options["warm_start"] = True
        return ProcessPool(2, prefetch=prefetch, **options)
    if peer == "PPE":
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(2)
    if peer == "loky":
        import loky

        return loky.ProcessPoolExecutor(2)
    if peer == "mp.Pool":
        return _MpPool()
    raise ValueError(peer)


def _shutdown(pool: Any) -> None:
    try:
        pool.shutdown()
    except Exception:  # noqa: BLE001 - a broken peer pool
        pass


def _warm(pool: Any) -> None:
    from _pool_tasks import inc

    for _ in range(3):
        [f.result() for f in [pool.submit(inc, i) for i in range(50)]]


def cell_rt(peer: str, size: dict[str, int]) -> list[float]:
    from _pool_tasks import inc

    pool = _make(peer)
    _warm(pool)
    clock = time.perf_counter_ns
    out = []
    for _ in range(size["batches"]):
        each = []
        for i in range(size["rt"]):
            t = clock()
            pool.submit(inc, i).result()
            each.append((clock() - t) / 1000)
        out.append(statistics.median(each))
    _shutdown(pool)
    return out


def cell_thr(peer: str, size: dict[str, int], prefetch: int) -> list[float]:
    from _pool_tasks import inc

    pool = _make(peer, prefetch=prefetch)
    _warm(pool)
    out = []
    n = size["thr"]
    for _ in range(size["batches"]):
        t = time.perf_counter()
        futures = [pool.submit(inc, i) for i in range(n)]
        for f in futures:
            f.result()
        out.append(n / (time.perf_counter() - t))
    _shutdown(pool)
    return out


def _started(path: str) -> tuple[int, float]:
    while not os.path.exists(path):
        time.sleep(0.0005)
    with open(path) as f:
        pid, when = f.read().split()
    os.unlink(path)
    return int(pid), float(when)


def cell_crash(peer: str, size: dict[str, int]) -> list[float | None]:
    from _pool_tasks import pid_then_sleep

    tmp = tempfile.mkdtemp(prefix="cp-pool-bench-")
    out: list[float | None] = []
    pool = None
    for k in range(size["crash"]):
        if pool is None:
            pool = _make(peer)
            _warm(pool)
        path = os.path.join(tmp, f"s{k}")
        fut = pool.submit(pid_then_sleep, path, 30)
        pid, _ = _started(path)
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        try:
            fut.result(timeout=3)
            out.append(None)
        except Exception as exc:  # noqa: BLE001 - what each peer raises differs
            if type(exc).__name__ == "TimeoutError" and peer == "mp.Pool":
                out.append(None)  # it never fails the future: a hang
            else:
                out.append((time.perf_counter() - t0) * 1000)
        if peer != "childproc":  # the others are broken (or stalled) now
            _shutdown(pool)
            pool = None
    if pool is not None:
        _shutdown(pool)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def cell_timeout(peer: str, size: dict[str, int]) -> list[float]:
    from _pool_tasks import pid_then_sleep

    tmp = tempfile.mkdtemp(prefix="cp-pool-bench-")
    pool = _make(peer, task_timeout=1.0)
    _warm(pool)
    out = []
    for k in range(size["timeout"]):
        path = os.path.join(tmp, f"t{k}")
        fut = pool.submit(pid_then_sleep, path, 10)
        _, started = _started(path)
        try:
            fut.result(timeout=10)
        except TimeoutError:
            out.append((time.monotonic() - (started + 1.0)) * 1000)
    _shutdown(pool)
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def cell_ready(peer: str, size: dict[str, int], since_spawn: bool = False) -> list[float]:
    import threading

    from _pool_tasks import inc

    pool = _make(peer, min_workers=2)
    ready: list[tuple[int, float]] = []
    created: dict[int, float] = {}
    cond = threading.Condition()

    def on_ready(pid: int) -> None:
        with cond:
            ready.append((pid, time.perf_counter()))
            cond.notify_all()

    pool.on("workerCreate", lambda pid: created.__setitem__(pid, time.perf_counter()))
    pool.on("workerReady", on_ready)
    _warm(pool)
    with cond:
        cond.wait_for(lambda: len(ready) >= 2, 10)
    out = []
    for _ in range(size["ready"]):
        victim = pool.pids[0]
        seen = len(ready)
        t0 = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        with cond:
            cond.wait_for(lambda: len(ready) > seen, 10)
        pid, t1 = ready[seen]
        out.append((t1 - (created[pid] if since_spawn else t0)) * 1000)
        pool.submit(inc, 1).result()
    _shutdown(pool)
    return out


def run_cell(workload: str, peer: str, size: dict[str, int]) -> list[Any]:
    if workload == "rt":
        return cell_rt(peer, size)
    if workload in ("thr1", "thr64"):
        return cell_thr(peer, size, 64 if workload == "thr64" and peer == "childproc" else 1)
    if workload == "crash":
        return cell_crash(peer, size)
    if workload == "timeout":
        return cell_timeout(peer, size)
    if workload in ("ready", "start"):
        return cell_ready(peer, size, since_spawn=workload == "start")
    raise ValueError(workload)


# ---------------------------------------------------------------------------
# the runner


def _skip_reason(peer: str) -> str | None:
    if peer == "loky":
        try:
            import loky  # noqa: F401
        except ImportError:
            return "loky is not installed (pip install loky)"
    if peer == "Piscina":
        node = shutil.which("node")
        if node is None:
            return "node is not installed"
        probe = subprocess.run([node, "-e", f"require.resolve(process.env.PISCINA_PATH || 'piscina')"],
                               cwd=HERE, capture_output=True, env=_node_env())
        if probe.returncode != 0:
            return "piscina is not installed (npm install piscina)"
    return None


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    local = HERE / ".build" / "pool-node" / "node_modules"
    if local.is_dir():  # where `npm install --prefix benchmarks/.build/pool-node piscina` puts it
        env["NODE_PATH"] = os.pathsep.join(filter(None, [str(local), env.get("NODE_PATH")]))
    return env


def _run_one(workload: str, peer: str, mode: str) -> list[Any]:
    size = SIZES[mode]
    if peer == "Piscina":
        kind = "rt" if workload == "rt" else "thr"
        ops = size["rt"] if kind == "rt" else size["thr"]
        cmd = ["node", str(HERE / "pool_piscina.js"), kind, str(ops), str(size["batches"])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_node_env(), cwd=HERE)
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", workload, peer, "--mode", mode]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload}/{peer} failed:\n{proc.stderr[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return list(data["samples"])


def _figure(samples: list[Any]) -> float | None:
    real = [s for s in samples if s is not None]
    if not real or len(real) < len(samples) / 2:
        return None  # mostly hangs
    return float(statistics.median(real))


def _bars(fig: dict[str, dict[str, float | None]]) -> list[tuple[str, bool | None, str]]:
    def get(w: str, p: str) -> float | None:
        return fig.get(w, {}).get(p)

    bars: list[tuple[str, bool | None, str]] = []

    def bar(name: str, ours: float | None, limit: float | None, lower: bool, how: str) -> None:
        if ours is None or limit is None:
            bars.append((name, None, "not measured"))
            return
        ok = ours <= limit if lower else ours >= limit
        bars.append((name, ok, f"{ours:,.1f} vs {how} {limit:,.1f}"))

    cp_rt, mp_rt, ppe_rt = get("rt", "childproc"), get("rt", "mp.Pool"), get("rt", "PPE")
    bar("round trip <= mp.Pool's", cp_rt, mp_rt, True, "mp.Pool")
    bar("round trip <= 0.3x PPE's", cp_rt, None if ppe_rt is None else 0.3 * ppe_rt, True, "0.3x PPE")
    bar("throughput prefetch=1 >= mp.Pool apply_async", get("thr1", "childproc"), get("thr1", "mp.Pool"), False, "mp.Pool")
    ppe_thr = get("thr64", "PPE")
    bar("throughput prefetch=64 >= 10x PPE's", get("thr64", "childproc"),
        None if ppe_thr is None else 10 * ppe_thr, False, "10x PPE")
    bar("crash detected <= 5 ms", get("crash", "childproc"), 5.0, True, "bar")
    bar("1 s timeout late by <= 20 ms", get("timeout", "childproc"), 20.0, True, "bar")
    bar("replacement ready <= 15 ms (from the kill)", get("ready", "childproc"), 15.0, True, "bar")
    bar("replacement ready <= 15 ms (from its spawn)", get("start", "childproc"), 15.0, True, "bar")
    return bars


def _limits(fig: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Each workload's bar for childproc as one figure (the strictest when
    two bars apply), for the chart's dashed line."""
    def get(w: str, p: str) -> float | None:
        return fig.get(w, {}).get(p)

    out: dict[str, float] = {"crash": 5.0, "timeout": 20.0, "ready": 15.0, "start": 15.0}
    rt = [v for v in (get("rt", "mp.Pool"), None if get("rt", "PPE") is None else 0.3 * get("rt", "PPE")) if v]
    if rt:
        out["rt"] = min(rt)
    if get("thr1", "mp.Pool"):
        out["thr1"] = get("thr1", "mp.Pool")  # type: ignore[assignment]
    if get("thr64", "PPE"):
        out["thr64"] = 10 * get("thr64", "PPE")  # type: ignore[operator]
    return out


def draw_chart(path: Path, result: dict[str, Any]) -> str | None:
    """pool.png: one panel per workload, a bar per peer, childproc's bar as
    a dashed line.  Returns why not, or None once written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed"
    names = [w for w in WORKLOADS if w in result["figures"]]
    if not names:
        return "no chart: no pool workload ran"
    limits = _limits(result["figures"])
    cols = 2
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows), squeeze=False)
    colors = {"childproc": "#2b7bba", "mp.Pool": "#999999", "PPE": "#c44e52", "loky": "#dd8452", "Piscina": "#55a868"}
    for ax, w in zip([a for row in axes for a in row], names):
        spec = WORKLOADS[w]
        peers = [p for p in spec["peers"] if p not in result["skipped"]]
        values = [result["figures"][w].get(p) for p in peers]
        heights = [v if v is not None else 0.0 for v in values]
        bars = ax.bar(peers, heights, color=[colors.get(p, "#777777") for p in peers])
        for b, v in zip(bars, values):
            label = "hang" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
            ax.annotate(label, (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
        if w in limits:
            ax.axhline(limits[w], color="#2b7bba", linestyle="--", linewidth=1)
            ax.annotate(f"bar {limits[w]:,.1f}", (-0.45, limits[w]), ha="left", va="bottom",
                        fontsize=7, color="#2b7bba")
        better = "lower is better" if spec["lower"] else "higher is better"
        ax.set_title(f"{spec['title']} ({spec['unit']}; {better})", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in [a for row in axes for a in row][len(names):]:
        ax.set_visible(False)
    fig.suptitle("worker pools: pool of 2, task x+1 (benchmarks/pool_workloads.py)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def run(rounds: int = 3, mode: str = "full", workloads: list[str] | None = None,
        log: Any = sys.stderr) -> dict[str, Any]:
    """Run the cells; returns {"figures": {workload: {peer: figure|None}}, "skipped": {...}, "bars": [...]}."""
    names = workloads or list(WORKLOADS)
    skipped = {p: r for p in PEERS if (r := _skip_reason(p)) is not None}
    cells = [(w, p) for w in names for p in WORKLOADS[w]["peers"] if p not in skipped]
    runs: dict[tuple[str, str], list[float | None]] = {c: [] for c in cells}
    for r in range(rounds):
        random.shuffle(cells)
        for w, p in cells:
            print(f"round {r + 1}/{rounds}: {w} {p}", file=log, flush=True)
            samples = _run_one(w, p, mode)
            runs[(w, p)].append(_figure(samples))
    figures: dict[str, dict[str, float | None]] = {w: {} for w in names}
    for (w, p), values in runs.items():
        figures[w][p] = _figure(values)
    return {"figures": figures, "skipped": skipped, "bars": _bars(figures), "rounds": rounds, "mode": mode}


def format_table(result: dict[str, Any]) -> str:
    lines = []
    peers = [*PEERS, "childproc warm"]  # the warm column: the worker-start rows only
    head = f"{'workload':<48}" + "".join(f"{p:>15}" for p in peers)
    lines += [head, "-" * len(head)]
    for w, spec in WORKLOADS.items():
        if w not in result["figures"]:
            continue
        row = f"{spec['title'] + ' (' + spec['unit'] + ')':<48}"
        for p in peers:
            if p in result["skipped"]:
                cell = "skipped"
            elif p not in spec["peers"]:
                cell = "n/a"
            else:
                v = result["figures"][w].get(p)
                cell = "hang" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"
            row += f"{cell:>15}"
        lines.append(row)
    lines.append("")
    for name, ok, text in result["bars"]:
        mark = "met" if ok else "MISSED" if ok is False else "n/a"
        lines.append(f"  BAR {mark:<7} {name}: {text}")
    for p, why in result["skipped"].items():
        lines.append(f"  skipped: {p}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workload", action="append", choices=list(WORKLOADS))
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--chart", help="also draw the chart here (a .png)")
    ap.add_argument("--cell", nargs=2, metavar=("WORKLOAD", "PEER"), help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="full", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cell:
        samples = run_cell(args.cell[0], args.cell[1], SIZES[args.mode])
        print(json.dumps({"samples": samples}))
        return 0
    result = run(rounds=1 if args.quick and args.rounds == 3 else args.rounds,
                 mode="quick" if args.quick else "full", workloads=args.workload)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    if args.chart:
        print(draw_chart(Path(args.chart), result) or f"wrote {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
