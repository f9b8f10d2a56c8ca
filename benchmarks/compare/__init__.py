"""Side-by-side comparison runner: childproc against its peers, in one run.

    cd benchmarks && python -m compare                  # every workload, about 8-10 minutes
    cd benchmarks && python -m compare --quick          # CI-sized, under a minute
    cd benchmarks && python -m compare --workload NAME  # one workload (repeatable)
    cd benchmarks && python -m compare --list           # workloads, bars and peers

(`scripts/bench.sh` sets up .venv and runs this with its arguments.)

How a run goes.  Every workload has a list of peers: childproc, the stdlib,
uvloop, Node and C floors that the runner compiles.  One (peer, parent
state) pair is a *cell*; the spawn workloads also run every peer in a
"held" state, with the parent holding touched ballast memory (2 GiB by
default).  One run of a cell is a *batch*: a fresh process (a Python worker,
`python -m compare --worker`, for the Python peers; node or a compiled C
program for the others) that allocates its ballast, does a few untimed
warm-up ops, then times up to `ops` ops (stopping early once
`batch_seconds` have passed) and prints the per-op samples as JSON.  A run
is --rounds rounds; each round runs every cell once, in a freshly shuffled
order, so slow drift of the machine lands on all peers alike.  A cell's
figure comes from the median of its per-batch medians: a time (µs, ms) or a
rate (GB/s, round trips/s) computed from it.  Ratio columns divide a cell's
figure by a named floor's figure in the same parent state, so for rates
0.9x means 90% of the floor's throughput, and for times 1.1x means 10%
slower.

Peers that cannot run here (no node, no cc, no uvloop, childproc not
importable) are listed as skipped with the reason.  Nothing here asserts a
time; each workload's bars (childproc's goals there, as a ratio to a floor
or a peer) are printed with its table, met or missed.

Results: a table per workload on stdout (progress goes to stderr), and
benchmarks/results/compare.json plus compare.png (matplotlib, if installed).

The modules, each importing only those above it:

    model.py       sizes, Peer, Bar, Workload: plain data
    peers.py       the peer constructors and their availability checks
    workloads/     the registry (workloads/__init__.py) and one module per family
    batch.py       one batch: the Python worker, and starting any peer's process
    machine.py     the C floors' builds, the machine's description
    stats.py       batches -> figures, ratios, bar verdicts
    runner.py      probes and the interleaved rounds
    report.py      the tables, compare.json, compare.png
    __main__.py    the command line

Adding a workload: see workloads/__init__.py and benchmarks/README.md.
"""

import sys
from pathlib import Path

# pyops.py (the Python peers' op factories) lives in benchmarks/, beside
# this package; `python -m compare` run from there finds it anyway, this
# makes any other way of importing the package find it too.
_BENCHMARKS = str(Path(__file__).resolve().parent.parent)
if _BENCHMARKS not in sys.path:
    sys.path.insert(0, _BENCHMARKS)
