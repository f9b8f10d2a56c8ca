"""A run: build the floors, probe every peer, then the rounds of batches.

A *cell* is one peer in one parent state (empty, or holding the ballast).
Before the rounds every peer is probed once with one small op; one that
cannot run is skipped with its reason, never silently dropped.  Each round
runs every cell once as a fresh process (a *batch*), in a new random order
across all workloads, so drift of the machine lands on every peer alike.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from .batch import Batch, peer_argv, peer_tail, run_batch
from .machine import build_c, loadavg, machine_meta
from .model import PROBE_SIZES, Context, Peer, Sizing, Workload, log, workload_states
from .stats import add_summaries, fmt_mib, fmt_val
from .workloads import C_PROGRAMS


def sizing_for(w: Workload, a: argparse.Namespace) -> Sizing:
    s = w.quick if a.quick else w.full
    return Sizing(
        ops=a.ops if a.ops is not None else s.ops,
        batch_seconds=a.batch_seconds if a.batch_seconds is not None else s.batch_seconds,
        warmup=a.warmup if a.warmup is not None else s.warmup,
    )


def rounds_for(w: Workload, a: argparse.Namespace) -> int:
    return min(a.rounds, w.max_rounds) if w.max_rounds and not a.quick else a.rounds


def parent_states(a: argparse.Namespace) -> list[tuple[str, int]]:
    """(state, ballast MiB): empty, and held unless --ballast-mib 0."""
    return [("empty", 0)] + ([("held", a.ballast_mib)] if a.ballast_mib > 0 else [])


def run(a: argparse.Namespace, workloads: list[Workload]) -> tuple[dict, float]:
    """Measure `workloads`; returns the results (as compare.json holds them)
    and the monotonic time the probes started."""
    states = parent_states(a)
    sizes = a.sizes

    ctx = Context(node=shutil.which("node"))
    build_c(ctx, set(C_PROGRAMS))

    def wanted(p: Peer) -> bool:
        return p.floor or not a.peer or any(s.lower() in p.name.lower() for s in a.peer)

    def timeout_for(s: Sizing, mib: int) -> float:
        return 30 + s.batch_seconds * 10 + mib / 64  # generous; only catches hangs

    results: dict = {
        "meta": machine_meta(ctx),
        "settings": {
            "rounds": a.rounds, "ballast_mib": a.ballast_mib, "quick": a.quick,
            "states": {k: m for k, m in states}, "sizes": vars(sizes), "workloads": {},
        },
        "workloads": {},
    }

    # Probe every peer once (one small op, empty parent): skip it with the
    # reason if it cannot run here.  Probes are not timed, so two run at once.
    def probe(w: Workload, p: Peer) -> str | None:
        if not wanted(p):
            return "not selected (--peer)"
        reason = p.unavailable(ctx) if p.unavailable else None
        if reason is None:
            b = run_batch(ctx, w, p, w.args(PROBE_SIZES), 1, 0, 0, 0, 0, timeout_for(sizing_for(w, a), 0))
            if not b.ok:
                reason = f"probe failed: {b.error}"
        return reason

    cells: list[tuple[Workload, Peer, str, int, int]] = []  # (.., state, mib, rounds)
    t_start = time.monotonic()
    for p in (p for w in workloads for p in w.peers):
        if p.unavailable and wanted(p):
            p.unavailable(ctx)  # fill the import-check cache before the threads start
    with ThreadPoolExecutor(max_workers=2) as pool:
        probes = {(w.name, p.name): pool.submit(probe, w, p) for w in workloads for p in w.peers}
        for w in workloads:
            s = sizing_for(w, a)
            wargs = w.args(sizes)
            results["settings"]["workloads"][w.name] = {
                "ops_per_batch": s.ops, "batch_seconds": s.batch_seconds, "warmup_ops": s.warmup,
                "rounds": rounds_for(w, a), "args": wargs,
            }
            wr = results["workloads"][w.name] = {
                "title": w.title.format(**vars(sizes)), "bar": w.bar, "unit": w.unit, "rate": w.is_rate,
                "kind_label": w.kind_label, "args": wargs, "peers": {},
            }
            log(f"== {wr['title']}: checking peers")
            for p in w.peers:
                pr = wr["peers"][p.name] = {"stdio": p.stdio, "floor": p.floor, "note": p.note}
                reason = probes[(w.name, p.name)].result()
                if reason:
                    pr["skipped"] = reason
                    log(f"   skipped {p.name}: {reason}")
                    continue
                pr["skipped"] = None
                pr["argv"] = peer_argv(ctx, w, p) + ["OPS", "MAX_MS", "WARMUP_OPS", "WARMUP_MS", "BALLAST_MIB"] \
                    + peer_tail(ctx, p, wargs)
                log(f"   ok      {p.name}")
                for key, mib in workload_states(w, states):
                    cells.append((w, p, key, mib, rounds_for(w, a)))

    rng = random.Random(a.seed)
    batches: dict[tuple[str, str, str], list[Batch]] = {}
    t_rounds = time.monotonic()
    total = sum(c[4] for c in cells)
    done = 0
    log(f"== {len(cells)} cells, {a.rounds} rounds ({total} batches), interleaved across workloads; "
        + (f"held state = {fmt_mib(a.ballast_mib)}" if a.ballast_mib else "no held state")
        + f"; probes took {t_rounds - t_start:.0f} s")
    for rnd in range(1, a.rounds + 1):
        order = [c for c in cells if c[4] >= rnd]
        rng.shuffle(order)
        for w, p, key, mib, _ in order:
            done += 1
            s = sizing_for(w, a)
            warmup_ms = max(50.0, s.batch_seconds * 250)  # warm-up gets a quarter of a batch's time
            b = run_batch(ctx, w, p, w.args(sizes), s.ops, s.batch_seconds * 1000, s.warmup, warmup_ms,
                          mib, timeout_for(s, mib))
            batches.setdefault((w.name, p.name, key), []).append(b)
            elapsed = time.monotonic() - t_rounds
            eta = elapsed / done * (total - done)
            state = "" if mib == 0 else f" @ {fmt_mib(mib)}"
            what = (f"{fmt_val(w.value(b.median_ns, sizes))} {w.unit} median of {len(b.samples_ns)} ops"
                    if b.ok else f"FAILED: {b.error}")
            log(f"[round {rnd}/{a.rounds}  {done}/{total}  eta {eta:4.0f}s] "
                f"{w.name}: {p.name}{state}: {what} ({b.wall_s:.1f} s)")

    add_summaries(results, workloads, batches, states, sizes)
    results["meta"]["loadavg_end"] = loadavg()
    results["meta"]["took_s"] = round(time.monotonic() - t_start)
    return results, t_start
