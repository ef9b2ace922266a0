"""The sweep comparison page: `<sweep_dir>/report.html`, one row per run, best first.

A sweep dir holds one run dir per trial (each with .hydra/overrides.yaml, summary.json and
metrics.jsonl). Trials are ranked by the metric's final value (summary.json's `final`, as the
sweep's leaderboard and W&B's sweep engine rank them), with the best value seen during the run
beside it; the parameters that differ between trials are the swept ones, shown as columns and
plotted against the metric.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import yaml

from gan_platform.errors import UserError
from gan_platform.tracking.report import page
from gan_platform.tracking.report.plots import metric_against_parameters, metric_over_steps, series_from_records
from gan_platform.tracking.report.run_page import REPORT_NAME, is_run_dir, sample_pictures
from gan_platform.runs.metrics import HEADLINE, best_mode
from gan_platform.runs.rundir import RunDir, atomic_write_bytes, read_metrics

def find_runs(sweep_dir: Path) -> list[Path]:
    """The run dirs in a sweep dir: its sub-folders that are runs (one level deeper if none are)."""
    runs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and is_run_dir(p))
    if not runs:
        runs = sorted(q for p in sweep_dir.iterdir() if p.is_dir() for q in p.iterdir() if q.is_dir() and is_run_dir(q))
    return runs


def parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_overrides(run_dir: Path) -> dict[str, Any]:
    """{key: value} from the run's .hydra/overrides.yaml (`+`/`++` dropped)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if sep and not key.startswith("~") and not key.startswith("hydra."):
            out[key.lstrip("+")] = parse_value(value)
    return out


def _sweep_goal(sweep_dir: Path) -> tuple[Optional[str], Optional[str]]:
    """The metric and direction the sweep itself names in sweep.json, if there is one."""
    try:
        config = json.loads((sweep_dir / "sweep.json").read_text()).get("config") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None, None
    metric = config.get("metric") or {}
    goal = metric.get("goal")
    return metric.get("name"), ("max" if goal == "maximize" else "min" if goal == "minimize" else None)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def collect(runs: list[Path], metric: Optional[str], mode: str) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        summary = RunDir(run).read_summary()
        series = series_from_records(list(read_metrics(run / "metrics.jsonl")))
        steps, values = series.get(metric, ([], [])) if metric else ([], [])
        final = _number((summary.get("final") or {}).get(metric)) if metric else None
        if final is None and values:
            final = _number(values[-1])
        seen = [v for v in values + ([final] if final is not None else []) if math.isfinite(v)]
        rows.append({"run": run, "summary": summary, "params": read_overrides(run), "metric": final,
                     "best_seen": (max(seen) if mode == "max" else min(seen)) if seen else None,
                     "curve": (steps, values), "keys": set(series) | set(summary.get("final") or {})})
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r["metric"] is None, sign * r["metric"] if r["metric"] is not None else 0.0, r["run"].name))
    return rows


def swept_parameters(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """(keys whose value differs between runs, the overrides every run shares)."""
    keys = sorted({k for r in rows for k in r["params"]})
    swept, common = [], {}
    for key in keys:
        values = {json.dumps(r["params"].get(key), sort_keys=True, default=str) for r in rows}
        if len(values) > 1 or len(rows) == 1:
            swept.append(key)
        else:
            common[key] = rows[0]["params"][key]
    return swept, common


def default_metric(rows: list[dict[str, Any]]) -> Optional[str]:
    present = set().union(*(r["keys"] for r in rows)) if rows else set()
    return next((k for k in HEADLINE if k in present), None)


def write_comparison(sweep_dir: str | Path, metric: Optional[str] = None, mode: Optional[str] = None) -> Path:
    """Write `<sweep_dir>/report.html` comparing its runs by `metric` (`mode` min or max; by default
    the sweep's own metric from sweep.json, else the first known metric the runs have); returns its path."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"No sweep dir at '{sweep_dir}': pass a folder holding one run dir per trial.")
    runs = find_runs(sweep_dir)
    if not runs:
        raise UserError(f"'{sweep_dir}' holds no run dirs (folders with summary.json or metrics.jsonl): pass a sweep dir or a run dir.")
    sweep_metric, sweep_mode = _sweep_goal(sweep_dir)
    metric = metric or sweep_metric or default_metric(collect(runs, None, "min"))
    if mode is None:
        mode = sweep_mode if (metric == sweep_metric and sweep_mode) else best_mode(metric or "")
    if mode not in ("min", "max"):
        raise UserError(f"The comparison mode must be min or max, got '{mode}'.")
    rows = collect(runs, metric, mode)
    swept, common = swept_parameters(rows)
    label = metric or "metric"
    header = ["rank", "run", f"{label} (final)", f"{label} (best seen)", "status", "step", *swept, "samples"]
    cells, classes = [], []
    for rank, r in enumerate(rows, 1):
        run, summary = r["run"], r["summary"]
        rel = run.relative_to(sweep_dir).as_posix()
        link = f"{rel}/{REPORT_NAME}" if (run / REPORT_NAME).is_file() else f"{rel}/"
        pictures = sample_pictures(run)
        thumb = (f'<a href="{page.esc(rel)}/{page.esc(pictures[-1][1].relative_to(run).as_posix())}">'
                 f'<img class="thumb" alt="samples of {page.esc(rel)}" src="{page.esc(rel)}/'
                 f'{page.esc(pictures[-1][1].relative_to(run).as_posix())}"></a>') if pictures else ""
        cells.append([str(rank), f'<a href="{page.esc(link)}">{page.esc(rel)}</a>', page.fmt(r["metric"]),
                      page.fmt(r["best_seen"]), page.esc(summary.get("status", "")), page.fmt(summary.get("step")),
                      *[page.fmt(r["params"].get(k, "")) for k in swept], thumb])
        classes.append("best" if rank == 1 and r["metric"] is not None else "")
    direction = "lower is better" if mode == "min" else "higher is better"
    body = [f"<h1>Sweep {page.esc(sweep_dir.resolve().name)}</h1>",
            f'<p>{len(rows)} runs ranked by <b>{page.esc(label)}</b> ({direction}); '
            f"runs without a value come last.</p>", page.table(header, cells, classes)]
    if common:
        body.append('<p class="muted">Shared by every run: ' + page.esc(" ".join(f"{k}={v}" for k, v in common.items())) + "</p>")
    body += [f"<h2>{page.esc(label)} against each swept parameter</h2>",
             page.plot_img(metric_against_parameters(rows, swept, label), f"{label} values against swept parameters"),
             f"<h2>{page.esc(label)} over training</h2>",
             page.plot_img(metric_over_steps({r["run"].name: r["curve"] for r in rows}, label), f"{label} curves")]
    path = sweep_dir / REPORT_NAME
    atomic_write_bytes(path, page.document(f"Sweep {sweep_dir.resolve().name}", "\n".join(body)).encode("utf-8"))
    return path
