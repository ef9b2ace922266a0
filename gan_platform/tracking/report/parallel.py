"""The sweep's parallel-coordinates view as inline SVG: one vertical axis per swept parameter and a
last one for the metric, one line per run, coloured by the metric (viridis, yellow = best). Numbers
sit on a linear axis (a log one when they span 10x or more), choices are spread evenly; a run
without a value for a parameter leaves that axis out of its line. No script, no network."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from gan_platform.tracking.report.page import esc, fmt

WIDTH, HEIGHT, TOP, BOTTOM, SIDE = 900, 320, 30, 40, 60


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _axis(values: Sequence[Any]) -> tuple[Any, list[tuple[float, str]]]:
    """(value -> position in [0, 1] or None, [(position, tick label)]) for one axis."""
    present = [v for v in values if v is not None and v != ""]
    if present and all(_is_number(v) for v in present):
        lo, hi = min(present), max(present)
        log = lo > 0 and hi / lo >= 10
        f = (lambda v: math.log10(v)) if log else float
        span = (f(hi) - f(lo)) or 1.0
        where = lambda v: (f(v) - f(lo)) / span if _is_number(v) else None  # noqa: E731
        return where, [(0.0, fmt(lo)), (1.0, fmt(hi))] if hi != lo else [(0.0, fmt(lo))]
    labels = sorted({str(v) for v in present})
    pos = {label: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, label in enumerate(labels)}
    return (lambda v: pos.get(str(v)) if v is not None and v != "" else None), [(p, esc(k)) for k, p in pos.items()]


def _viridis(t: float) -> str:
    import matplotlib

    r, g, b, _ = matplotlib.colormaps["viridis"](max(0.0, min(1.0, t)))
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def parallel_coordinates(rows: Sequence[dict[str, Any]], params: Sequence[str], metric: str, mode: str) -> Optional[str]:
    """An <svg> of the runs (`rows` hold "run", "params" and "metric") over `params` and the metric."""
    rows = [r for r in rows if _is_number(r.get("metric"))]
    if not rows or not params:
        return None
    names = [*params, metric]
    columns = [[r["params"].get(p) for r in rows] for p in params] + [[r["metric"] for r in rows]]
    axes = [_axis(c) for c in columns]
    metric_at = axes[-1][0]
    x = lambda i: SIDE + i * (WIDTH - 2 * SIDE) / max(1, len(names) - 1)  # noqa: E731
    y = lambda t: TOP + (1 - t) * (HEIGHT - TOP - BOTTOM)  # noqa: E731
    parts = [f'<svg class="parallel" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="parallel coordinates of {esc(metric)}">']
    order = sorted(rows, key=lambda r: metric_at(r["metric"]) * (1 if mode == "max" else -1))  # best drawn last, on top
    for r in order:
        t = metric_at(r["metric"])
        colour = _viridis(t if mode == "max" else 1 - t)
        points = [(x(i), y(pos)) for i, (where, _) in enumerate(axes)
                  if (pos := where(r["metric"] if i == len(params) else r["params"].get(names[i]))) is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline class="run" data-metric="{r["metric"]!r}" points="{path}" fill="none" stroke="{colour}" '
                     f'stroke-width="1.6" stroke-opacity="0.85"><title>{esc(r["run"].name)}: {esc(metric)} {fmt(r["metric"])}</title></polyline>')
    for i, (name, (_, ticks)) in enumerate(zip(names, axes)):
        parts.append(f'<line x1="{x(i):.1f}" y1="{y(1):.1f}" x2="{x(i):.1f}" y2="{y(0):.1f}" stroke="#333"/>')
        parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 12}" font-size="12" text-anchor="middle" font-weight="600">{esc(name)}</text>')
        for pos, label in ticks:
            parts.append(f'<text x="{x(i) + 4:.1f}" y="{y(pos) + 4:.1f}" font-size="10" fill="#555">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
