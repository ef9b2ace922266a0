"""The sweep's leaderboard: trials ranked by the sweep metric, as JSON and as a page to look at.

`leaderboard.json` is the record; the page is the comparison dashboard of `gan_platform.tracking.report`
where that module is installed, else a plain HTML table written here.
"""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path
from typing import Any, Optional

from gan_platform.runs.rundir import atomic_write_bytes, atomic_write_json
from gan_platform.sweep.state import SweepState, metric_value

log = logging.getLogger(__name__)


def _goal(config: dict[str, Any]) -> tuple[Optional[str], str]:
    metric = config.get("metric") or {}
    return metric.get("name"), "max" if metric.get("goal") == "maximize" else "min"


def leaderboard(state: SweepState) -> dict[str, Any]:
    """Trials ranked by the metric's final value (best first; trials without a value last)."""
    name, mode = _goal(state.config)
    rows = []
    for trial in state.trials:
        summary = trial.summary(state.dir)
        final = summary.get("final") or {}
        values = [metric_value(r, name) for r in trial.history(state.dir)] if name else []
        values = [v for v in values + [metric_value(final, name) if name else None] if v is not None and math.isfinite(v)]
        rows.append({"trial": trial.id, "state": trial.state, "status": trial.status, "params": trial.params,
                     "metric": metric_value(final, name) if name else None,
                     "best_seen": (max(values) if mode == "max" else min(values)) if values else None,
                     "step": summary.get("step"), "steps": summary.get("steps"), "run_dir": trial.id})
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r["metric"] is None or not math.isfinite(r["metric"]),
                             sign * r["metric"] if r["metric"] is not None and math.isfinite(r["metric"]) else 0.0))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    best = rows[0]["trial"] if rows and rows[0]["metric"] is not None else None
    return {"sweep": state.dir.name, "source": state.source, "method": state.config["method"],
            "metric": {"name": name, "goal": "maximize" if mode == "max" else "minimize"},
            "best": best, "trials": rows}


def _html_table(board: dict[str, Any]) -> str:
    name = board["metric"]["name"] or "metric"
    params = sorted({k for r in board["trials"] for k in r["params"]})
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["rank", "trial", "state", name, "step", *params])
    body = []
    for r in board["trials"]:
        value = "" if r["metric"] is None else f"{r['metric']:.4g}"
        cells = [r["rank"], f'<a href="{html.escape(r["run_dir"])}/">{html.escape(r["trial"])}</a>', r["state"], value,
                 r["step"] if r["step"] is not None else "", *[html.escape(str(r["params"].get(p, ""))) for p in params]]
        style = ' style="background:#e8f5e9"' if r["trial"] == board["best"] else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    title = html.escape(f"Sweep {board['sweep']}: {board['method']} on {name} ({board['metric']['goal']})")
    return ("<!doctype html><meta charset='utf-8'><title>" + title + "</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style>"
            f"<h1>{title}</h1><p>source: {html.escape(board['source'])}</p><table><tr>{head}</tr>{''.join(body)}</table>\n")


def write_leaderboard(state: SweepState) -> dict[str, Path]:
    """Write leaderboard.json and the dashboard page; returns their paths."""
    board = leaderboard(state)
    out = {"json": state.dir / "leaderboard.json"}
    atomic_write_json(out["json"], board)
    name, mode = _goal(state.config)
    try:
        from gan_platform.tracking.report import write_comparison
    except ImportError:
        out["html"] = state.dir / "leaderboard.html"
        atomic_write_bytes(out["html"], _html_table(board).encode())
        return out
    try:
        out["html"] = Path(write_comparison(state.dir, name, mode))
    except Exception as e:  # noqa: BLE001 - a dashboard must never lose the sweep's results
        log.warning("The comparison dashboard failed (%s: %s); leaderboard.json is complete.", type(e).__name__, e)
    return out
