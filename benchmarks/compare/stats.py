"""From batches to figures: a cell's summary, ratios, the bars' verdicts,
and how figures and ratios print.

A cell's figure comes from the median of its per-batch medians; its iqr is
the interquartile range of the per-batch figures over their median.
"""

from __future__ import annotations

import statistics

from .batch import Batch
from .model import Sizes, Workload, workload_states


def fmt_mib(mib: int) -> str:
    return f"{mib // 1024} GiB" if mib and mib % 1024 == 0 else f"{mib} MiB"


def fmt_val(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


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


def batch_extra(w: Workload, key: str, b: Batch, sizes: Sizes) -> float | None:
    d = b.data
    if key == "max_threads":
        return d.get("max_threads")
    if key == "kib_per_child":
        base, hwm = d.get("base_rss_kib", -1), d.get("hwm_kib", -1)
        count = int(w.args(sizes)[0])
        return max(0, hwm - base) / count if base >= 0 and hwm >= 0 and count else None
    return d.get(key)


def summarize(w: Workload, cell_batches: list[Batch], sizes: Sizes) -> dict:
    good = [b for b in cell_batches if b.ok]
    meds = [b.median_ns / 1e3 for b in good]
    vals = [w.value(b.median_ns, sizes) for b in good]
    out = {
        "median_us": median_or_none(meds),
        "value": median_or_none(vals),
        "unit": w.unit,
        "batch_medians_us": [round(m, 2) for m in meds],
        "batch_values": [round(v, 4) for v in vals],
        "batches": len(good),
        "failed_batches": [b.error for b in cell_batches if not b.ok],
        "ops": sum(len(b.samples_ns) for b in good),
        "rss_kib": [b.rss_kib for b in good],
    }
    if vals:
        med = out["value"]
        # Interquartile range of the per-batch figures, relative to their
        # median: how much the figure moved between batches.
        if len(vals) >= 2 and med:
            q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
            out["iqr"] = (q3 - q1) / med
        else:
            out["iqr"] = None
        out["range_us"] = [round(min(meds), 2), round(max(meds), 2)]
        out["samples_us"] = [[round(s / 1e3, 1) for s in b.samples_ns] for b in good]
    extras = {}
    for key, _label in w.extras:
        xs = [x for b in good if (x := batch_extra(w, key, b, sizes)) is not None]
        # threads: the most seen in any batch; others: the median batch
        extras[key] = (max(xs) if key == "max_threads" else statistics.median(xs)) if xs else None
    if extras:
        out["extras"] = extras
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def eval_bars(w: Workload, res: dict) -> list[dict]:
    """Each bar of the workload with its measured ratio (or figure) and verdict."""
    peers = res["peers"]
    out = []
    for bar in w.bars:
        pr = peers.get(bar.peer, {})
        cell = (pr.get("states") or {}).get(bar.state, {})
        if bar.extra:
            value = (cell.get("extras") or {}).get(bar.extra)
            shown = "-" if value is None else f"{value:.0f}" if bar.extra == "max_threads" else fmt_val(value)
            what = f"{bar.peer}: {bar.extra} {shown}"
            limit = f"{bar.limit:g}"
        else:
            other = (peers.get(bar.against, {}).get("states") or {}).get(bar.against_state, {})
            value = ratio(cell.get("value"), other.get("value"))
            if bar.against == bar.peer:
                what = f"{bar.peer}: {bar.state} / {bar.against_state} = {fmt_ratio(value)}"
            else:
                sfx = "" if bar.state == "empty" else f" [{bar.state}]"
                what = f"{bar.peer}{sfx} / {bar.against} = {fmt_ratio(value)}"
            limit = f"{bar.limit:g}x"
        if value is None:
            verdict = "n/a"
        else:
            verdict = "met" if (value >= bar.limit if bar.at_least else value <= bar.limit) else "MISSED"
        rel = "at least" if bar.at_least else "at most"
        unit = f" ({w.unit})" if w.is_rate and not bar.extra else ""
        out.append({"text": f"{what}{unit}, bar {rel} {limit}", "value": value, "limit": bar.limit,
                    "at_least": bar.at_least, "verdict": verdict})
    return out


def add_summaries(results: dict, workloads: list[Workload], batches: dict[tuple[str, str, str], list[Batch]],
                  states: list[tuple[str, int]], sizes: Sizes) -> None:
    """Every cell's figures, ratios, headline pairs and bar verdicts, into `results`."""
    for w in workloads:
        wr = results["workloads"][w.name]
        wstates = workload_states(w, states)
        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            pr["states"] = {key: summarize(w, batches.get((w.name, p.name, key), []), sizes)
                            for key, _ in wstates}

        def value_of(name: str | None, key: str) -> float | None:
            if name is None or name not in wr["peers"] or wr["peers"][name].get("skipped"):
                return None
            return wr["peers"][name]["states"][key]["value"]

        for p in w.peers:
            pr = wr["peers"][p.name]
            if pr.get("skipped"):
                continue
            same = w.floor_for(p.stdio)
            for key, _ in wstates:
                c = pr["states"][key]
                c["ratios"] = {label: ratio(c["value"], value_of(floor, key)) for label, floor in w.ratio_to}
                if w.same_kind:
                    c["ratios"][w.same_kind] = ratio(c["value"], value_of(same.name if same else None, key))
                # The names the spawn_true JSON always had:
                c["x_floor"] = c["ratios"][w.ratio_to[0][0]] if w.ratio_to else None
                if w.same_kind:
                    c["x_same_stdio_floor"] = c["ratios"][w.same_kind]
            if len(wstates) > 1:
                pr["held_over_empty"] = ratio(pr["states"]["held"]["value"], pr["states"]["empty"]["value"])
        wr["headline"] = {
            f"{x} / {y}": {key: ratio(value_of(x, key), value_of(y, key)) for key, _ in wstates}
            for x, y in w.headline
        }
        wr["bars"] = eval_bars(w, wr)
