"""What a run shows: the text tables (stdout), compare.json and the chart.

Everything here reads the results dict that runner.run() fills; nothing
measures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .model import Sizes, Workload, ratio_columns, workload_states
from .stats import fmt_mib, fmt_ratio, fmt_val, ratio
from .workloads import WORKLOADS


def write_json(results: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "compare.json"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return json_path


def print_report(a: argparse.Namespace, workloads: list[Workload], results: dict,
                 states: list[tuple[str, int]], t_start: float) -> None:
    """The header, one table per workload, and the bars missed."""
    sizes = a.sizes
    print()
    m = results["meta"]
    print(f"childproc compare — {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, node {m['node'] or '-'}, "
          f"uvloop {m['uvloop'] or '-'}, {m['libc']}, THP {m['transparent_hugepage'] or '-'}")
    print(f"{a.rounds} rounds, interleaved and shuffled; each figure comes from the median of the per-batch "
          f"medians; took {time.monotonic() - t_start:.0f} s" + (" (--quick: small sizes)" if a.quick else ""))
    loads = [x[0] for x in (m["loadavg_start"], m["loadavg_end"]) if x]
    if loads and m["cpus"] and max(loads) > m["cpus"]:
        # The runner itself keeps about one CPU busy; more than that means
        # something else was running.
        print(f"WARNING: the machine was busy (1-minute load average up to {max(loads):.1f} on "
              f"{m['cpus']} CPUs): the figures are noisy, compare them with care (see iqr)")
    for w in workloads:
        wr = results["workloads"][w.name]
        print()
        held = (f"; '{fmt_mib(a.ballast_mib)}' = parent holding {fmt_mib(a.ballast_mib)} of touched memory"
                if a.ballast_mib and w.held else "")
        print(f"[{w.name}] {wr['title']}  ({w.unit}{held})")
        print(f"bar: {w.bar}")
        print()
        print(render_table(w, wr, states, sizes))
    missed = [(w.name, b) for w in workloads for b in results["workloads"][w.name]["bars"]
              if b["verdict"] == "MISSED"]
    verdicts = [b["verdict"] for w in workloads for b in results["workloads"][w.name]["bars"]]
    print()
    print(f"bars: {verdicts.count('met')} met, {len(missed)} missed, "
          f"{verdicts.count('n/a')} not measured (a peer skipped or failed)")
    for name, b in missed:
        print(f"  MISSED [{name}] {b['text']}")


def render_table(w: Workload, res: dict, states: list[tuple[str, int]], sizes: Sizes) -> str:
    """Text table of one workload's results."""
    peers = res["peers"]
    states = workload_states(w, states)
    held_label = fmt_mib(states[-1][1]) if len(states) > 1 else None
    rcols = ratio_columns(w)
    header = ["peer", w.kind_label]
    for key, mib in states:
        lbl = w.unit if len(states) == 1 else f"{'empty' if mib == 0 else fmt_mib(mib)} {w.unit}"
        header += [lbl, "iqr", *rcols]
    if len(states) > 1:
        header.append(f"{held_label}/empty")
    header += [label for _, label in w.extras]
    rows = []
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            continue
        row = [p.name, p.stdio]
        for key, _ in states:
            c = pr["states"].get(key, {})
            sp = c.get("iqr")
            row += [fmt_val(c.get("value")), f"{sp * 100:.0f}%" if sp is not None else "-"]
            row += [fmt_ratio((c.get("ratios") or {}).get(col)) for col in rcols]
        if len(states) > 1:
            row.append(fmt_ratio(pr.get("held_over_empty")))
        ex = pr["states"].get(states[0][0], {}).get("extras") or {}
        for key, _ in w.extras:
            v = ex.get(key)
            row.append("-" if v is None else (f"{v:.0f}" if key == "max_threads" else fmt_val(v)))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]

    def line(r):
        cells = [str(r[0]).ljust(widths[0]), str(r[1]).ljust(widths[1])]
        cells += [str(x).rjust(wd) for x, wd in zip(r[2:], widths[2:])]
        return "  ".join(cells)

    out = [line(header), line(["-" * wd for wd in widths])] + [line(r) for r in rows]
    out.append("")
    better = ("higher is better; a ratio is this peer's rate over the other's" if w.is_rate
              else "lower is better; a ratio is this peer's time over the other's")
    expl = [f"{label}: against {floor}" for label, floor in w.ratio_to]
    if w.same_kind:
        expl.append(f"{w.same_kind}: against the floor with the same {w.kind_label}")
    out.append(f"{w.unit}: {better}" + ("" if len(states) == 1 else ", in the same parent state"))
    out.append("; ".join(expl))
    out.append("iqr: interquartile range of the per-batch figures / their median (noise between batches)")
    if "max_threads" in dict(w.extras):
        out.append("threads: the most threads the parent process had at once (polled from outside); "
                   "KiB/child: (peak RSS - RSS before the first op) / children")
    for a, b in w.headline:
        ra, rb = peers.get(a, {}), peers.get(b, {})
        if ra.get("skipped") or rb.get("skipped") or not ra or not rb:
            continue
        parts = []
        for key, mib in states:
            r_ = ratio(ra["states"].get(key, {}).get("value"), rb["states"].get(key, {}).get("value"))
            parts.append(f"{'empty' if mib == 0 else fmt_mib(mib)} {fmt_ratio(r_)}" if len(states) > 1
                         else fmt_ratio(r_))
        out.append(f"{a} / {b}: " + ", ".join(parts))
    for b in res.get("bars", []):
        out.append(f"BAR {b['verdict']:6} {b['text']}")
    for p in w.peers:
        pr = peers[p.name]
        if pr.get("skipped"):
            out.append(f"SKIPPED {p.name}: {pr['skipped']}")
            continue
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
    # One row per workload: figures on the left, ratios on the right.
    fig, axes = plt.subplots(len(wls), 2, figsize=(2 * max(7, 1.1 * npeers + 2), 4.6 * len(wls)),
                             squeeze=False)
    colors = ["#4C72B0", "#DD8452"]
    for row, (name, r) in enumerate(wls):
        w = WORKLOADS[name]
        wstates = workload_states(w, states)
        peers = [p for p in w.peers if not r["peers"][p.name].get("skipped")]
        labels = [textwrap.fill(p.name, 18, break_long_words=False) + f"\n({p.stdio})" for p in peers]
        primary = w.same_kind or (w.ratio_to[0][0] if w.ratio_to else None)
        title = r["title"]
        for col, (metric, ylabel, ptitle) in enumerate([
            ("value", w.unit, textwrap.fill(f"[{name}] {title}", 90) + f"\n{w.unit}, "
             + ("higher is better" if w.is_rate else "lower is better")),
            ("ratio", primary, f"[{name}] {primary}"),
        ]):
            ax = axes[row][col]
            n = len(wstates)
            width = 0.8 / n

            def get(p, key):
                c = r["peers"][p.name]["states"].get(key, {})
                return c.get("value") if metric == "value" else (c.get("ratios") or {}).get(primary)

            for si, (key, mib) in enumerate(wstates):
                vals = [get(p, key) for p in peers]
                xs = [i + (si - (n - 1) / 2) * width for i in range(len(peers))]
                bars = ax.bar(
                    xs, [v or 0 for v in vals], width,
                    label="empty parent" if mib == 0 else f"parent holding {fmt_mib(mib)}",
                    color=colors[si % len(colors)],
                )
                for b, v in zip(bars, vals):
                    if v:
                        txt = fmt_ratio(v) if metric == "ratio" else fmt_val(v)
                        ax.annotate(txt, (b.get_x() + b.get_width() / 2, v), ha="center",
                                    va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
            ax.set_title(ptitle, fontsize=9)
            present = [v for p in peers for k, _ in wstates if (v := get(p, k))]
            if not present:
                ax.text(0.5, 0.5, "no figures (floor skipped?)", ha="center", transform=ax.transAxes)
                continue
            ratio_axis = metric == "ratio"
            if max(present) / min(present) > 5:  # log scale only where the range needs it
                ax.set_yscale("log")
                ylabel += " (log scale)"

                def tick(v, _pos, ratio_axis=ratio_axis):
                    lead = f"{v:.1e}"[0]
                    if v <= 0 or lead not in "125":
                        return ""
                    return f"{v:g}x" if ratio_axis else f"{v:,g}"

                ax.yaxis.set_major_formatter(FuncFormatter(tick))
                ax.yaxis.set_minor_formatter(FuncFormatter(tick))
            elif ratio_axis:
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}x"))
            ax.tick_params(axis="y", which="both", labelsize=7)
            if metric == "ratio":
                ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xticks(range(len(peers)))
            ax.set_xticklabels(labels, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=8)
            if n > 1:
                ax.legend(fontsize=7)
            ax.grid(axis="y", which="both", alpha=0.3)
            ax.margins(y=0.15)
    skipped = [
        f"{p}: {pr['skipped']}"
        for r in results["workloads"].values()
        for p, pr in r["peers"].items()
        if pr.get("skipped")
    ]
    skipped = sorted(set(skipped))
    if skipped:
        fig.text(0.01, 0.002, textwrap.fill("skipped: " + "; ".join(skipped), 250), fontsize=7,
                 ha="left", va="bottom")
    m = results["meta"]
    height = fig.get_size_inches()[1]
    fig.suptitle(
        f"childproc compare: {m.get('cpus')} CPUs, Python {m.get('python')}, node {m.get('node') or '-'}, "
        f"{results['settings']['rounds']} rounds, {m.get('date')}",
        fontsize=10, y=1 - 0.15 / height, va="top",
    )
    fig.tight_layout(rect=(0, (0.6 if skipped else 0.1) / height, 1, 1 - 0.5 / height))
    fig.savefig(path, dpi=80 if len(wls) > 4 else 110)
    plt.close(fig)
    return None
