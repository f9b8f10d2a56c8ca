"""Side-by-side comparison runner: childproc against its peers, in one run.

The command line: `python -m compare [options]` from benchmarks/ (what
scripts/bench.sh runs), and `python -m compare --worker ...`, one batch of a
Python peer (see batch.py).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import fields, replace
from pathlib import Path

from .batch import worker_main
from .model import HERE, QUICK_SIZES, RESULTS, Sizes, log
from .report import draw_chart, print_report, write_json
from .runner import parent_states, rounds_for, run, sizing_for
from .workloads import WORKLOADS


def _size_help(name: str) -> str:
    f = next(f for f in fields(Sizes) if f.name == name)
    meta, default = f.metadata, f.default
    if meta["note"]:
        return f"{meta['help']} (default {default:g}; {meta['note']})"
    return f"{meta['help']} (default {default}, quick {getattr(QUICK_SIZES, name)})"


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI-sized run: 2 rounds, small batches and sizes, 256 MiB ballast (unless given)")
    ap.add_argument("--rounds", type=int, help="rounds over all cells (default 5, quick 2)")
    ap.add_argument("--ops", type=int, help="max timed ops per batch, for every workload "
                    "(default: each workload's own, see --list)")
    ap.add_argument("--batch-seconds", type=float,
                    help="a batch stops timing after this long, for every workload (default: each workload's own)")
    ap.add_argument("--warmup", type=int, help="untimed ops per batch, for every workload (default: each workload's own)")
    ap.add_argument("--ballast-mib", type=int,
                    help="memory the parent holds in the 'held' state of the spawn workloads "
                    "(default 2048, quick 256); 0 skips that state")
    for f in fields(Sizes):  # --stream-mib, --exec-mib, ...: one per size
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), help=_size_help(f.name))
    ap.add_argument("--workload", action="append", help="run only these workloads (repeatable; see --list)")
    ap.add_argument("--peer", action="append",
                    help="run only peers whose name contains this (repeatable; floors always run)")
    ap.add_argument("--seed", type=int, help="seed for the shuffles")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="directory for compare.json and compare.png (a relative one is taken from the repo root)")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--list", action="store_true", help="list workloads, bars and peers, then exit")
    a = ap.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (2 if q else 5)
    a.ballast_mib = a.ballast_mib if a.ballast_mib is not None else (256 if q else 2048)
    a.out = HERE.parent / a.out  # an absolute --out stays as given
    base = QUICK_SIZES if q else Sizes()
    a.sizes = replace(base, **{k: v for k in vars(base) if (v := getattr(a, k)) is not None})
    return a


def list_workloads(a: argparse.Namespace) -> None:
    for w in WORKLOADS.values():
        s = sizing_for(w, a)
        print(f"{w.name}: {w.title.format(**vars(a.sizes))}")
        print(f"  bar: {w.bar}")
        print(f"  {w.unit}; per batch up to {s.ops} ops or {s.batch_seconds:g} s after {s.warmup} "
              f"warm-up ops; {rounds_for(w, a)} rounds{'; empty and held parent' if w.held else ''}; "
              f"arguments: {shlex.join(w.args(a.sizes))}")
        for p in w.peers:
            print(f"    {p.name:40} {w.kind_label}: {p.stdio:18} {'[floor] ' if p.floor else ''}{p.note}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    a = parse_args(argv)
    if a.list:
        list_workloads(a)
        print(f"{POOL}: the worker pools (pool of 2, task x+1): round trip, throughput at prefetch 1 and 64, "
              "crash detection, timeout lateness, replacement ready; benchmarks/pool_workloads.py")
        return 0

    names = a.workload or [*WORKLOADS, POOL]
    unknown = [n for n in names if n not in WORKLOADS and n != POOL]
    if unknown:
        log(f"unknown workload(s): {', '.join(unknown)}; have {', '.join([*WORKLOADS, POOL])}")
        return 2
    workloads = [WORKLOADS[n] for n in dict.fromkeys(names) if n != POOL]
    if workloads:
        states = parent_states(a)
        results, t_start = run(a, workloads)
        json_path = write_json(results, a.out)
        print_report(a, workloads, results, states, t_start)
        print()
        print(f"wrote {json_path}")
        if not a.no_chart:
            png = a.out / "compare.png"
            err = draw_chart(png, results, states)
            print(err or f"wrote {png}")
    if POOL in names:
        _run_pools(a)
    return 0


POOL = "pool"


def _run_pools(a: argparse.Namespace) -> None:
    """The pool family: its cells run in fresh processes of their own (a pool
    owns threads and workers), so it has its own runner; its table and bars
    come last, and its figures go to pool.json beside compare.json."""
    import json

    import pool_workloads  # benchmarks/ is on sys.path (see __init__)

    rounds = 1 if a.quick else min(a.rounds, 3)  # a full pool round takes minutes (fresh processes per cell)
    result = pool_workloads.run(rounds=rounds, mode="quick" if a.quick else "full")
    print()
    print("== pool: worker pools, pool of 2, task x+1 (benchmarks/pool_workloads.py)")
    print(pool_workloads.format_table(result))
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "pool.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {path}")
    if not a.no_chart:
        png = a.out / "pool.png"
        print(pool_workloads.draw_chart(png, result) or f"wrote {png}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
