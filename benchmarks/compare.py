#!/usr/bin/env python3
"""Side-by-side comparison runner: childproc against its peers, in one run.

    python benchmarks/compare.py            # full run, a few minutes
    python benchmarks/compare.py --quick    # CI-sized, seconds
    python benchmarks/compare.py --list     # workloads and peers

(`scripts/bench.sh` sets up .venv and runs this with its arguments.)

How a run goes.  Every workload has a list of peers; every peer is timed in
each parent state ("empty", and "held": the parent holds touched ballast
memory, 2 GiB by default).  One (peer, state) pair is a *cell*; one run of a
cell is a *batch*: a fresh process (a Python worker, `compare.py --worker`,
for the Python peers; node or a compiled C program for the others) that
allocates its ballast, does a few untimed warm-up ops, then times up to
--ops ops (stopping early once --batch-seconds have passed) and prints the
per-op samples as JSON.  A run is --rounds rounds; each round runs every cell
once, in a freshly shuffled order, so slow drift of the machine lands on all
peers alike.  A cell's figure is the median of its per-batch medians.

Peers that cannot run here (no node, no cc, childproc not importable) are
listed as skipped with the reason.  Nothing here asserts a time.

Results: a table on stdout (progress goes to stderr), and
benchmarks/results/compare.json plus compare.png (matplotlib, if installed).

Adding a workload: write the Python op factories (see `_op_*`), wrap them
and any external commands in `Peer`s, and `register(Workload(...))`.  An
external command gets the protocol arguments
    OPS MAX_MS WARMUP_OPS WARMUP_MS BALLAST_MIB PROGRAM
appended and must print one JSON line with "samples_ns" (and optionally
"rss_kib", "failures"); see floor_spawn.c and node_spawn.js.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
BUILD = HERE / ".build"
RESULTS = HERE / "results"

INHERIT = "inherit"
PIPES3 = "3 pipes"

# ---------------------------------------------------------------------------
# Python ops.  Each factory gets the workload's program and returns a
# zero-argument callable that does one op and returns 0 on success (the
# child's exit status).  They run inside a worker process only.


def _op_childproc_spawn_sync(program: str) -> Callable[[], int]:
    import childproc

    spawn_sync = childproc.spawn_sync

    def op() -> int:
        # Default options, exactly as a user writes it: stdio is three pipes.
        return spawn_sync(program).status

    return op


def _op_childproc_spawn_sync_inherit(program: str) -> Callable[[], int]:
    import childproc

    spawn_sync = childproc.spawn_sync

    def op() -> int:
        # No pipes: the stdio situation of subprocess.run and os.posix_spawn.
        return spawn_sync(program, stdio="inherit").status

    return op


def _op_subprocess_run(program: str) -> Callable[[], int]:
    import subprocess

    run = subprocess.run
    argv = [program]

    def op() -> int:
        return run(argv).returncode

    return op


def _op_subprocess_run_pipes(program: str) -> Callable[[], int]:
    import subprocess

    run, PIPE = subprocess.run, subprocess.PIPE
    argv = [program]

    def op() -> int:
        # Three pipes, outputs collected: the stdio situation of spawnSync's default.
        return run(argv, stdin=PIPE, stdout=PIPE, stderr=PIPE).returncode

    return op


def _op_posix_spawn(program: str) -> Callable[[], int]:
    posix_spawn, waitpid, environ = os.posix_spawn, os.waitpid, os.environ
    argv = [program]

    def op() -> int:
        pid = posix_spawn(program, argv, environ)
        return waitpid(pid, 0)[1]

    return op


# ---------------------------------------------------------------------------
# Registry


@dataclass
class Context:
    """What peers need to build their command line, found once per run."""

    python: str = sys.executable
    node: str | None = None
    cc: str | None = None
    binaries: dict[str, Path] = field(default_factory=dict)
    build_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Peer:
    name: str
    stdio: str  # INHERIT or PIPES3: what the child gets as stdio
    # Exactly one of these two:
    py_op: Callable[[str], Callable[[], int]] | None = None
    command: Callable[[Context], list[str]] | None = None
    # Returns why the peer cannot run here, or None.  Called before the probe.
    unavailable: Callable[[Context], str | None] | None = None
    floor: bool = False  # a C floor: the ratios are taken against these
    note: str = ""


@dataclass
class Workload:
    name: str
    title: str
    program: str
    peers: list[Peer]
    unit: str = "µs per op"
    # (numerator, denominator) pairs worth a line of their own under the table
    headline: list[tuple[str, str]] = field(default_factory=list)

    def peer(self, name: str) -> Peer:
        return next(p for p in self.peers if p.name == name)

    def floor_for(self, stdio: str) -> Peer | None:
        return next((p for p in self.peers if p.floor and p.stdio == stdio), None)

    def base_floor(self) -> Peer | None:
        return next((p for p in self.peers if p.floor), None)


WORKLOADS: dict[str, Workload] = {}


def register(w: Workload) -> Workload:
    WORKLOADS[w.name] = w
    return w


def _childproc_unavailable(ctx: Context) -> str | None:
    # Checked in a child (the real check is the probe); this one only turns
    # the common "not installed" case into a short reason.
    import subprocess

    r = subprocess.run(
        [ctx.python, "-c", "import childproc; childproc.spawn_sync"],
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    if r.returncode == 0:
        return None
    last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
    return f"childproc not importable by {ctx.python}: {last}"


def _node_unavailable(ctx: Context) -> str | None:
    return None if ctx.node else "no `node` on PATH"


def _binary_unavailable(name: str) -> Callable[[Context], str | None]:
    def check(ctx: Context) -> str | None:
        if name in ctx.binaries:
            return None
        return ctx.build_errors.get(name, f"{name} was not built")

    return check


def _python_peer(name: str, stdio: str, factory, **kw) -> Peer:
    return Peer(name=name, stdio=stdio, py_op=factory, **kw)


register(
    Workload(
        name="spawn_true",
        title="spawn + wait of /bin/true",
        program="/bin/true",
        unit="µs per spawn+wait",
        peers=[
            Peer(
                "C floor: posix_spawn+waitpid",
                INHERIT,
                command=lambda ctx: [str(ctx.binaries["floor_spawn"])],
                unavailable=_binary_unavailable("floor_spawn"),
                floor=True,
                note="benchmarks/floor_spawn.c",
            ),
            Peer(
                "C floor: posix_spawn, 3 pipes",
                PIPES3,
                command=lambda ctx: [str(ctx.binaries["floor_spawn_pipes"])],
                unavailable=_binary_unavailable("floor_spawn_pipes"),
                floor=True,
                note="floor_spawn.c -DWITH_PIPES: pipes, poll outputs to EOF, wait",
            ),
            _python_peer(
                "childproc.spawn_sync",
                PIPES3,
                _op_childproc_spawn_sync,
                unavailable=_childproc_unavailable,
                note="default options",
            ),
            _python_peer(
                "childproc.spawn_sync stdio=inherit",
                INHERIT,
                _op_childproc_spawn_sync_inherit,
                unavailable=_childproc_unavailable,
                note="like for like with subprocess.run",
            ),
            _python_peer("subprocess.run", INHERIT, _op_subprocess_run, note="default options"),
            _python_peer(
                "subprocess.run 3 pipes",
                PIPES3,
                _op_subprocess_run_pipes,
                note="stdin/stdout/stderr=PIPE: like for like with spawn_sync",
            ),
            _python_peer(
                "os.posix_spawn+waitpid",
                INHERIT,
                _op_posix_spawn,
                unavailable=lambda ctx: None
                if hasattr(os, "posix_spawn")
                else "os.posix_spawn missing on this platform",
            ),
            Peer(
                "node spawnSync",
                PIPES3,
                command=lambda ctx: [ctx.node, str(HERE / "node_spawn.js")],
                unavailable=_node_unavailable,
                note="benchmarks/node_spawn.js, default options",
            ),
        ],
        headline=[
            ("childproc.spawn_sync", "subprocess.run"),
            ("childproc.spawn_sync", "subprocess.run 3 pipes"),
            ("childproc.spawn_sync stdio=inherit", "subprocess.run"),
            ("childproc.spawn_sync", "node spawnSync"),
        ],
    )
)

# C programs compiled by the runner: name -> (source, extra cc flags)
C_PROGRAMS: dict[str, tuple[str, list[str]]] = {
    "floor_spawn": ("floor_spawn.c", []),
    "floor_spawn_pipes": ("floor_spawn.c", ["-DWITH_PIPES=1"]),
}

# ---------------------------------------------------------------------------
# Worker: one batch of one Python peer, in a fresh process.


def _rss_kib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def worker_main(argv: list[str]) -> int:
    workload, peer_name, ops, max_ms, warmup_ops, warmup_ms, ballast_mib, program = argv
    ops, warmup_ops, ballast_mib = int(ops), int(warmup_ops), int(ballast_mib)
    max_ns, warmup_ns = int(float(max_ms) * 1e6), int(float(warmup_ms) * 1e6)

    ballast = None
    if ballast_mib > 0:
        n = ballast_mib << 20
        ballast = bytearray(n)
        # Write one byte per page: every page becomes resident (a write fault
        # on a zero page allocates), like the memset in floor_spawn.c.
        ballast[::4096] = b"\x01" * len(range(0, n, 4096))

    op = WORKLOADS[workload].peer(peer_name).py_op(program)
    now = time.perf_counter_ns
    failures = 0
    warm_end = now() + warmup_ns
    for _ in range(warmup_ops):
        if now() >= warm_end:
            break
        if op() != 0:
            failures += 1

    samples: list[int] = []
    stop = now() + max_ns
    while len(samples) < max(1, ops):
        t0 = now()
        st = op()
        t1 = now()
        if st != 0:
            failures += 1
        samples.append(t1 - t0)
        if t1 >= stop:
            break

    out = {
        "samples_ns": samples,
        "rss_kib": _rss_kib(),
        "ballast_mib": ballast_mib,
        "failures": failures,
    }
    if ballast is not None:
        out["ballast_check"] = ballast[-4096]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 1 if failures else 0


# ---------------------------------------------------------------------------
# Runner


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_c(ctx: Context, names: set[str]) -> None:
    import subprocess

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    ctx.cc = cc
    for name in sorted(names):
        src, flags = C_PROGRAMS[name]
        out = BUILD / name
        src_path = HERE / src
        if out.exists() and out.stat().st_mtime >= src_path.stat().st_mtime:
            ctx.binaries[name] = out
            continue
        if not cc:
            ctx.build_errors[name] = "no C compiler (`cc`) on PATH to build it"
            continue
        BUILD.mkdir(exist_ok=True)
        tmp = out.with_name(f"{name}.{os.getpid()}.tmp")
        cmd = [cc, "-O2", *flags, "-o", str(tmp), str(src_path)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            os.replace(tmp, out)  # a concurrent run never sees half a binary
            ctx.binaries[name] = out
            log(f"built {out.relative_to(HERE.parent)}: {' '.join(cmd[:-3])} ...")
        else:
            tail = " ".join(r.stderr.strip().splitlines()[-2:])
            tmp.unlink(missing_ok=True)
            ctx.build_errors[name] = f"`{' '.join(cmd)}` failed: {tail}"


def peer_argv(ctx: Context, w: Workload, p: Peer) -> list[str]:
    if p.py_op is not None:
        return [ctx.python, str(Path(__file__).resolve()), "--worker", w.name, p.name]
    return list(p.command(ctx))


@dataclass
class Batch:
    ok: bool
    samples_ns: list[int] = field(default_factory=list)
    rss_kib: int = -1
    wall_s: float = 0.0
    error: str = ""

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)


def run_batch(
    ctx: Context, w: Workload, p: Peer, ops: int, max_ms: float, warmup_ops: int,
    warmup_ms: float, ballast_mib: int, timeout: float,
) -> Batch:
    import subprocess

    argv = peer_argv(ctx, w, p) + [
        str(ops), f"{max_ms:g}", str(warmup_ops), f"{warmup_ms:g}", str(ballast_mib), w.program,
    ]
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return Batch(False, wall_s=time.monotonic() - t0, error=f"no result within {timeout:g} s")
    wall = time.monotonic() - t0
    try:
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        return Batch(False, wall_s=wall, error=f"exit {r.returncode}, no JSON: {tail}")
    if r.returncode != 0 or data.get("failures"):
        tail = " | ".join(r.stderr.strip().splitlines()[-3:])
        return Batch(
            False, wall_s=wall,
            error=f"exit {r.returncode}, {data.get('failures', '?')} ops did not exit 0 {tail}".strip(),
        )
    samples = [int(s) for s in data["samples_ns"]]
    if not samples:
        return Batch(False, wall_s=wall, error="no samples")
    return Batch(True, samples, int(data.get("rss_kib", -1)), wall)


def fmt_mib(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib and mib % 1024 == 0 else f"{mib} MiB"


def fmt_us(us: float | None) -> str:
    if us is None:
        return "-"
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 100:
        return f"{r:.0f}x"
    if r < 0.1:
        return f"{r:.2g}x"
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def median_or_none(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(cell_batches: list[Batch]) -> dict:
    good = [b for b in cell_batches if b.ok]
    meds = [b.median_ns / 1e3 for b in good]
    out = {
        "median_us": median_or_none(meds),
        "batch_medians_us": [round(m, 2) for m in meds],
        "batches": len(good),
        "failed_batches": [b.error for b in cell_batches if not b.ok],
        "ops": sum(len(b.samples_ns) for b in good),
        "rss_kib": [b.rss_kib for b in good],
    }
    if meds:
        med = out["median_us"]
        # Interquartile range of the per-batch medians, relative to their
        # median: how much the figure moved between batches.
        if len(meds) >= 2 and med:
            q1, _, q3 = statistics.quantiles(meds, n=4, method="inclusive")
            out["iqr"] = (q3 - q1) / med
        else:
            out["iqr"] = None
        out["range_us"] = [round(min(meds), 2), round(max(meds), 2)]
        out["samples_us"] = [[round(s / 1e3, 1) for s in b.samples_ns] for b in good]
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_meta(ctx: Context) -> dict:
    import platform
    import subprocess

    def cmd_out(argv: list[str]) -> str | None:
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return None

    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    cpu = None
    for line in (read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    meta = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_executable": ctx.python,
        "libc": " ".join(platform.libc_ver()),
        "node": cmd_out([ctx.node, "--version"]) if ctx.node else None,
        "cc": cmd_out([ctx.cc, "--version"]) if ctx.cc else None,
        "transparent_hugepage": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "git_commit": cmd_out(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"]),
        "loadavg_start": _loadavg(),
    }
    r = subprocess.run(
        [ctx.python, "-c", "import childproc,sys; print(getattr(childproc,'__version__','?'), childproc.__file__)"],
        capture_output=True, text=True, cwd=HERE,
    )
    meta["childproc"] = r.stdout.strip() if r.returncode == 0 else None
    return meta


def render_table(w: Workload, res: dict, states: list[tuple[str, int]]) -> str:
    """Text table of one workload's results."""
    peers = res["peers"]
    held_label = fmt_mib(states[-1][1]) if len(states) > 1 else None
    header = ["peer", "stdio"]
    for key, mib in states:
        lbl = "empty" if mib == 0 else fmt_mib(mib)
        header += [f"{lbl} µs", "iqr", "x floor", "x same-stdio floor"]
    if len(states) > 1:
        header.append(f"{held_label}/empty")
    rows = []
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            continue
        row = [p.name, p.stdio]
        for key, _ in states:
            c = pr["states"].get(key, {})
            sp = c.get("iqr")
            row += [
                fmt_us(c.get("median_us")),
                f"{sp * 100:.0f}%" if sp is not None else "-",
                fmt_ratio(c.get("x_floor")),
                fmt_ratio(c.get("x_same_stdio_floor")),
            ]
        if len(states) > 1:
            row.append(fmt_ratio(pr.get("held_over_empty")))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        cells = [str(r[0]).ljust(widths[0]), str(r[1]).ljust(widths[1])]
        cells += [str(x).rjust(wd) for x, wd in zip(r[2:], widths[2:])]
        return "  ".join(cells)

    out = [line(header), line(["-" * wd for wd in widths])] + [line(r) for r in rows]
    base = w.base_floor()
    out.append("")
    out.append(
        f"x floor: against {base.name if base else 'the C floor'} in the same parent state; "
        "x same-stdio floor: against the C floor whose child gets the same stdio"
    )
    out.append("iqr: interquartile range of the per-batch medians / their median (noise between batches)")
    for a, b in w.headline:
        ra, rb = peers.get(a, {}), peers.get(b, {})
        if ra.get("skipped") or rb.get("skipped"):
            continue
        parts = []
        for key, mib in states:
            r_ = ratio(ra["states"].get(key, {}).get("median_us"), rb["states"].get(key, {}).get("median_us"))
            parts.append(f"{'empty' if mib == 0 else fmt_mib(mib)} {fmt_ratio(r_)}")
        out.append(f"{a} / {b}: " + ", ".join(parts))
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            out.append(f"SKIPPED {p.name}: {pr['skipped']}")
        for key, _ in states:
            rss = pr.get("states", {}).get(key, {}).get("rss_kib") or []
            mib = dict(states)[key]
            if mib and rss and min(rss) < mib * 1024 * 0.95:
                out.append(f"WARNING {p.name} [{key}]: RSS {min(rss) // 1024} MiB in a batch, "
                           f"less than the {fmt_mib(mib)} ballast")
            errs = pr.get("states", {}).get(key, {}).get("failed_batches") or []
            if errs:
                out.append(f"FAILED batches of {p.name} [{key}]: {len(errs)}, first: {errs[0]}")
    return "\n".join(out)


def draw_chart(path: Path, results: dict, states: list[tuple[str, int]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError as e:
        return f"no chart: matplotlib not importable ({e})"

    import textwrap

    wls = [(name, r) for name, r in results["workloads"].items()]
    npeers = max((sum(not pr.get("skipped") for pr in r["peers"].values()) for _, r in wls), default=1)
    # One row per panel (medians, then ratios), wide enough for the peers.
    fig, axes = plt.subplots(2 * len(wls), 1, figsize=(max(10, 1.5 * npeers + 2), 5.2 * 2 * len(wls)),
                             squeeze=False)
    colors = ["#4C72B0", "#DD8452"]
    for row, (name, r) in enumerate(wls):
        w = WORKLOADS[name]
        peers = [p for p in w.peers if not r["peers"][p.name].get("skipped")]
        labels = [textwrap.fill(p.name, 22, break_long_words=False) + f"\n({p.stdio})" for p in peers]
        for col, (metric, ylabel, title) in enumerate([
            ("median_us", f"{w.unit} (median, log scale)", f"{w.title}: median time"),
            ("x_same_stdio_floor", "x C floor with the same stdio (log scale)",
             f"{w.title}: ratio to the C floor"),
        ]):
            ax = axes[2 * row + col][0]
            n = len(states)
            width = 0.8 / n
            for si, (key, mib) in enumerate(states):
                vals = [r["peers"][p.name]["states"].get(key, {}).get(metric) for p in peers]
                xs = [i + (si - (n - 1) / 2) * width for i in range(len(peers))]
                bars = ax.bar(
                    xs, [v or 0 for v in vals], width,
                    label="empty parent" if mib == 0 else f"parent holding {fmt_mib(mib)}",
                    color=colors[si % len(colors)],
                )
                for b, v in zip(bars, vals):
                    if v:
                        txt = fmt_ratio(v) if metric.startswith("x_") else fmt_us(v)
                        ax.annotate(txt, (b.get_x() + b.get_width() / 2, v), ha="center",
                                    va="bottom", fontsize=7.5, xytext=(0, 2), textcoords="offset points")
            if not any(r["peers"][p.name]["states"].get(k, {}).get(metric) for p in peers for k, _ in states):
                ax.text(0.5, 0.5, "no figures (C floor skipped?)", ha="center", transform=ax.transAxes)
                ax.set_title(title, fontsize=11)
                continue
            ax.set_yscale("log")

            def tick(v, _pos, ratio_axis=metric.startswith("x_")):
                lead = f"{v:.1e}"[0]
                if v <= 0 or lead not in "125":
                    return ""
                return f"{v:g}x" if ratio_axis else f"{v:,.0f}"

            ax.yaxis.set_major_formatter(FuncFormatter(tick))
            ax.yaxis.set_minor_formatter(FuncFormatter(tick))
            ax.tick_params(axis="y", which="both", labelsize=8)
            if metric.startswith("x_"):
                ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(peers)))
            ax.set_xticklabels(labels, fontsize=8)
            ax.set_ylabel(ylabel)
            ax.set_title(title, fontsize=11)
            ax.legend(fontsize=8)
            ax.grid(axis="y", which="both", alpha=0.3)
            ax.margins(y=0.15)
    skipped = [
        f"{p}: {pr['skipped']}"
        for r in results["workloads"].values()
        for p, pr in r["peers"].items()
        if pr.get("skipped")
    ]
    if skipped:
        fig.text(0.01, 0.005, "skipped: " + "; ".join(skipped), fontsize=7, ha="left", va="bottom", wrap=True)
    m = results["meta"]
    fig.suptitle(
        f"childproc compare: {m.get('cpus')} CPUs, Python {m.get('python')}, node {m.get('node') or '-'}, "
        f"{results['settings']['rounds']} rounds, {m.get('date')}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04 if skipped else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI-sized run: 2 rounds, small batches, 256 MiB ballast (unless given)")
    ap.add_argument("--rounds", type=int, help="rounds over all cells (default 5, quick 2)")
    ap.add_argument("--ops", type=int, help="max timed ops per batch (default 500, quick 20)")
    ap.add_argument("--batch-seconds", type=float,
                    help="a batch stops timing after this long (default 1.0, quick 0.15)")
    ap.add_argument("--warmup", type=int, help="untimed ops per batch (default 10, quick 2)")
    ap.add_argument("--ballast-mib", type=int,
                    help="memory the parent holds in the 'held' state (default 2048, quick 256); 0 skips that state")
    ap.add_argument("--workload", action="append", help="run only these workloads (repeatable)")
    ap.add_argument("--peer", action="append",
                    help="run only peers whose name contains this (repeatable; floors always run)")
    ap.add_argument("--seed", type=int, help="seed for the shuffles")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for compare.json and compare.png")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--list", action="store_true", help="list workloads and peers, then exit")
    a = ap.parse_args(argv)
    q = a.quick
    a.rounds = a.rounds or (2 if q else 5)
    a.ops = a.ops or (20 if q else 500)
    a.batch_seconds = a.batch_seconds if a.batch_seconds is not None else (0.15 if q else 1.0)
    a.warmup = a.warmup if a.warmup is not None else (2 if q else 10)
    a.ballast_mib = a.ballast_mib if a.ballast_mib is not None else (256 if q else 2048)
    return a


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        return worker_main(argv[1:])
    a = parse_args(argv)
    if a.list:
        for w in WORKLOADS.values():
            print(f"{w.name}: {w.title}")
            for p in w.peers:
                print(f"  {p.name:36} stdio: {p.stdio:8} {'[floor] ' if p.floor else ''}{p.note}")
        return 0

    names = a.workload or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        log(f"unknown workload(s): {', '.join(unknown)}; have {', '.join(WORKLOADS)}")
        return 2
    workloads = [WORKLOADS[n] for n in names]
    states = [("empty", 0)] + ([("held", a.ballast_mib)] if a.ballast_mib > 0 else [])
    warmup_ms = max(50.0, a.batch_seconds * 250)  # warm-up gets a quarter of a batch's time
    timeout = 60 + a.batch_seconds * 4 + a.ballast_mib / 64  # generous; only catches hangs

    ctx = Context(node=shutil.which("node"))
    build_c(ctx, set(C_PROGRAMS))

    def wanted(p: Peer) -> bool:
        return p.floor or not a.peer or any(s.lower() in p.name.lower() for s in a.peer)

    results: dict = {
        "meta": machine_meta(ctx),
        "settings": {
            "rounds": a.rounds, "ops_per_batch": a.ops, "batch_seconds": a.batch_seconds,
            "warmup_ops": a.warmup, "warmup_ms": warmup_ms, "ballast_mib": a.ballast_mib,
            "quick": a.quick, "states": {k: m for k, m in states},
        },
        "workloads": {},
    }

    # Probe every peer once (one op, empty parent): skip it with the reason
    # if it cannot run here.
    cells: list[tuple[Workload, Peer, str, int]] = []
    for w in workloads:
        wr = results["workloads"][w.name] = {"title": w.title, "unit": w.unit, "program": w.program, "peers": {}}
        log(f"== {w.title}: checking peers")
        for p in w.peers:
            pr = wr["peers"][p.name] = {"stdio": p.stdio, "floor": p.floor, "note": p.note}
            if not wanted(p):
                pr["skipped"] = "not selected (--peer)"
                continue
            reason = p.unavailable(ctx) if p.unavailable else None
            if reason is None:
                b = run_batch(ctx, w, p, 1, 0, 0, 0, 0, timeout)
                if not b.ok:
                    reason = f"probe failed: {b.error}"
            if reason:
                pr["skipped"] = reason
                log(f"   skipped {p.name}: {reason}")
                continue
            pr["skipped"] = None
            pr["argv"] = peer_argv(ctx, w, p)
            log(f"   ok      {p.name}")
            for key, mib in states:
                cells.append((w, p, key, mib))

    rng = random.Random(a.seed)
    batches: dict[tuple[str, str, str], list[Batch]] = {}
    t_start = time.monotonic()
    total = a.rounds * len(cells)
    done = 0
    log(f"== {len(cells)} cells x {a.rounds} rounds; each batch up to {a.ops} ops or "
        f"{a.batch_seconds:g} s after {a.warmup} warm-up ops; "
        + (f"held state = {fmt_mib(a.ballast_mib)}" if a.ballast_mib else "no held state"))
    for rnd in range(1, a.rounds + 1):
        order = cells[:]
        rng.shuffle(order)
        for w, p, key, mib in order:
            done += 1
            b = run_batch(ctx, w, p, a.ops, a.batch_seconds * 1000, a.warmup, warmup_ms, mib, timeout)
            batches.setdefault((w.name, p.name, key), []).append(b)
            elapsed = time.monotonic() - t_start
            eta = elapsed / done * (total - done)
            state = "empty" if mib == 0 else fmt_mib(mib)
            what = (f"{fmt_us(b.median_ns / 1e3)} µs median of {len(b.samples_ns)} ops"
                    if b.ok else f"FAILED: {b.error}")
            log(f"[round {rnd}/{a.rounds}  {done}/{total}  eta {eta:4.0f}s] "
                f"{p.name} @ {state}: {what} ({b.wall_s:.1f} s)")

    # Summaries and ratios
    for w in workloads:
        wr = results["workloads"][w.name]
        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            pr["states"] = {key: summarize(batches.get((w.name, p.name, key), [])) for key, _ in states}
        base = w.base_floor()
        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            same = w.floor_for(p.stdio)
            for key, _ in states:
                c = pr["states"][key]

                def floor_med(f: Peer | None) -> float | None:
                    if f is None or wr["peers"][f.name].get("skipped"):
                        return None
                    return wr["peers"][f.name]["states"][key]["median_us"]

                c["x_floor"] = ratio(c["median_us"], floor_med(base))
                c["x_same_stdio_floor"] = ratio(c["median_us"], floor_med(same))
            if len(states) > 1:
                pr["held_over_empty"] = ratio(pr["states"]["held"]["median_us"], pr["states"]["empty"]["median_us"])
        wr["headline"] = {
            f"{x} / {y}": {
                key: ratio(
                    (wr["peers"][x].get("states") or {}).get(key, {}).get("median_us"),
                    (wr["peers"][y].get("states") or {}).get(key, {}).get("median_us"),
                )
                for key, _ in states
            }
            for x, y in w.headline
        }

    results["meta"]["loadavg_end"] = _loadavg()
    a.out.mkdir(parents=True, exist_ok=True)
    json_path = a.out / "compare.json"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")

    print()
    m = results["meta"]
    print(f"childproc compare — {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, node {m['node'] or '-'}, "
          f"{m['libc']}, THP {m['transparent_hugepage'] or '-'}")
    print(f"{a.rounds} rounds, interleaved and shuffled; each figure is the median of the per-batch medians; "
          f"took {time.monotonic() - t_start:.0f} s")
    loads = [x[0] for x in (m["loadavg_start"], m["loadavg_end"]) if x]
    if loads and m["cpus"] and max(loads) > m["cpus"]:
        # The runner itself keeps about one CPU busy; more than that means
        # something else was running.
        print(f"WARNING: the machine was busy (1-minute load average up to {max(loads):.1f} on "
              f"{m['cpus']} CPUs): the figures are noisy, compare them with care (see iqr)")
    for w in workloads:
        print()
        held = f"; '{fmt_mib(a.ballast_mib)}' = parent holding {fmt_mib(a.ballast_mib)} of touched memory" if a.ballast_mib else ""
        print(f"{w.title}  ({w.unit}{held})")
        print()
        print(render_table(w, results["workloads"][w.name], states))
    print()
    print(f"wrote {json_path}")
    if not a.no_chart:
        png = a.out / "compare.png"
        err = draw_chart(png, results, states)
        print(err or f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
