"""The dashboard's plots, drawn with matplotlib (Agg) and returned as PNG bytes.

Small multiples, one panel a metric (the scales of a loss, an FID and a mode count have nothing in
common), except the metrics that belong together (`runs.metrics.SHARED_PANELS`): the two
adversarial losses, whose tug of war is visible only side by side, D's mean output on real and on
fake data, whose gap is what D has learnt to tell apart, the two gradient norms and D's two
accuracies. Per-class numbers (`eval/fid_class_<c>`) are one bar chart per evaluation.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any, Optional, Sequence

from gan_platform.runs.metrics import PER_CLASS, SHARED_PANELS

Series = dict[str, tuple[list[int], list[float]]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return buf.getvalue()


LEFT_IN, RIGHT_IN = 0.62, 0.12  # inches of margin: room for a tick label such as 0.0655 or 1.2e+03 at 7 pt


def _layout(fig, rows: int, bottom: float = 0.14) -> None:
    """Fixed margins (matplotlib's tight_layout costs more than drawing these small figures), the side
    ones in inches: as a fraction of the width, a one-panel figure cut its tick labels ('065' for 0.065)."""
    width = fig.get_size_inches()[0]
    fig.subplots_adjust(left=LEFT_IN / width, right=1 - RIGHT_IN / width, top=1 - 0.08 / rows, bottom=bottom / rows,
                        wspace=0.38, hspace=0.55)


def series_from_records(records: Sequence[dict[str, Any]]) -> Series:
    """metrics.jsonl records -> {key: (steps, values)}; text such as "nan" becomes NaN."""
    out: Series = {}
    for r in records:
        step = r.get("step")
        if not isinstance(step, (int, float)):
            continue
        for key, value in r.items():
            if key == "step":
                continue
            if isinstance(value, bool):
                continue
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    continue
            if not isinstance(value, (int, float)):
                continue
            steps, values = out.setdefault(key, ([], []))
            steps.append(int(step))
            values.append(float(value))
    return out


def panels_for(series: Series, keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(title, keys) of each panel: the shared panels first, then every other key alone."""
    keys = [k for k in keys if k in series]
    panels: list[tuple[str, list[str]]] = []
    for title, members in SHARED_PANELS.items():
        present = [k for k in members if k in keys]
        if len(present) == len(members):
            panels.append((title, present))
    shared = {k for _, members in panels for k in members}
    panels += [(k, [k]) for k in keys if k not in shared]
    return panels


def small_multiples(series: Series, keys: Sequence[str], cols: int = 3) -> Optional[bytes]:
    """One panel per metric (losses paired) against the step; None when there is nothing to plot."""
    panels = panels_for(series, keys)
    if not panels:
        return None
    plt = _pyplot()
    cols = min(cols, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), dpi=80, squeeze=False)
    for ax, (title, panel) in zip(axes.flat, panels):
        for key in panel:
            steps, values = series[key]
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, linewidth=1.3,
                    label=key.split("/", 1)[-1])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(panel) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    _layout(fig, rows)
    return _png(fig)


def per_class(series: Series) -> dict[str, dict[int, dict[int, float]]]:
    """{metric: {step: {class: value}}} of the per-class keys (`eval/fid_class_3` -> `eval/fid`, class 3)."""
    out: dict[str, dict[int, dict[int, float]]] = {}
    for key, (steps, values) in series.items():
        m = re.match(PER_CLASS, key)
        if not m:
            continue
        by_step = out.setdefault(m.group("metric"), {})
        for step, value in zip(steps, values):
            by_step.setdefault(step, {})[int(m.group("cls"))] = value
    return out


def per_class_bars(by_step: dict[int, dict[int, float]], metric: str, cols: int = 4) -> Optional[bytes]:
    """One bar chart per evaluation: the metric of each class at that step, on a shared y axis."""
    if not by_step:
        return None
    plt = _pyplot()
    steps = sorted(by_step)
    cols = min(cols, len(steps))
    rows = math.ceil(len(steps) / cols)
    top = max((v for s in steps for v in by_step[s].values() if math.isfinite(v)), default=1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.4 * rows), dpi=80, squeeze=False)
    for ax, step in zip(axes.flat, steps):
        classes = sorted(by_step[step])
        ax.bar(classes, [by_step[step][c] for c in classes], color="tab:purple")
        ax.set_xticks(classes)
        ax.set_ylim(0, top * 1.05 if top > 0 else 1.0)
        ax.set_title(f"{metric} per class, step {step}", fontsize=9)
        ax.set_xlabel("class", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(steps):]:
        ax.axis("off")
    _layout(fig, rows)
    return _png(fig)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_against_parameters(rows: Sequence[dict[str, Any]], params: Sequence[str], metric: str,
                              cols: int = 3) -> Optional[bytes]:
    """The sweep metric against each swept parameter: numbers on a (log, if they span 10x) axis,
    choices as categories. `rows` hold "metric" and "params" ({name: value})."""
    rows = [r for r in rows if _is_number(r.get("metric")) and math.isfinite(r["metric"])]
    if not rows or not params:
        return None
    plt = _pyplot()
    cols = min(cols, len(params))
    nrows = math.ceil(len(params) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 2.8 * nrows), dpi=80, squeeze=False)
    for ax, name in zip(axes.flat, params):
        points = [(r["params"].get(name), r["metric"]) for r in rows if name in r["params"]]
        if points and all(_is_number(x) for x, _ in points):
            xs = [float(x) for x, _ in points]
            ax.scatter(xs, [y for _, y in points], s=22, color="tab:blue")
            if min(xs) > 0 and max(xs) / min(xs) >= 10:
                ax.set_xscale("log")
        else:
            labels = sorted({str(x) for x, _ in points})
            where = {label: i for i, label in enumerate(labels)}
            ax.scatter([where[str(x)] for x, _ in points], [y for _, y in points], s=22, color="tab:orange")
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.axis("off")
    _layout(fig, nrows, bottom=0.22)
    return _png(fig)


def metric_over_steps(curves: dict[str, tuple[list[int], list[float]]], metric: str) -> Optional[bytes]:
    """The sweep metric over training, one line per trial."""
    curves = {k: v for k, v in curves.items() if v[0]}
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4), dpi=80)
    for name, (steps, values) in curves.items():
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3, linewidth=1.2, label=name)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(curves) <= 12:
        ax.legend(fontsize=7, loc="best")
    fig.subplots_adjust(left=LEFT_IN / fig.get_size_inches()[0], right=0.98, top=0.95, bottom=0.15)
    return _png(fig)
