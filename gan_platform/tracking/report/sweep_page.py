"""Comparison pages: a sweep's `<sweep_dir>/report.html`, or one page for any run dirs
(`write_runs_comparison`), one row per run, best first.

A sweep dir holds one run dir per trial (each with .hydra/overrides.yaml, summary.json and
metrics.jsonl). Trials are ranked by the metric's final value (summary.json's `final`, as the
sweep's leaderboard and W&B's sweep engine rank them), with the best value seen during the run
beside it; the parameters that differ between trials are the swept ones, shown as columns and
plotted against the metric and drawn as parallel coordinates coloured by it; each row shows the
run's sample grid at its best step. Runs given one by one are told apart by their configs
(`.hydra/config.yaml`, the keys whose values differ). A warning heads the page when the runs'
evaluation protocols differ (`COMPARABLE`: the real data's SHA-256, the extractor and its weights'
hash, the sample counts), since their numbers then measure different things.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Optional

import yaml

from gan_platform.errors import UserError
from gan_platform.runs.metrics import HEADLINE, best_mode
from gan_platform.runs.rundir import RunDir, atomic_write_bytes, read_metrics
from gan_platform.tracking.report import page
from gan_platform.tracking.report.parallel import parallel_coordinates
from gan_platform.tracking.report.plots import metric_against_parameters, metric_over_steps, series_from_records
from gan_platform.tracking.report.run_page import REPORT_NAME, best_value, is_run_dir, sample_pictures

COMPARISON_NAME = "comparison.html"
MAX_PARAMETERS_PLOTTED = 12  # the first parameters that differ, plotted against the metric
MAX_SHARED_SHOWN = 30  # the overrides every run shares, listed under the leaderboard when there are few
# The protocol entries (summary.json's "protocol") that must agree for two runs' numbers to be comparable.
COMPARABLE = ("real_sha256", "extractor", "weights_sha256", "num_real", "num_fake", "samples_a", "samples_b",
              "real_split", "resize")

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


def config_parameters(run_dir: Path) -> dict[str, Any]:
    """{dotted key: value} of the run's .hydra/config.yaml: what tells arbitrary runs apart."""
    path = run_dir / ".hydra" / "config.yaml"
    try:
        tree = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except yaml.YAMLError:
        return {}
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = json.dumps(node) if isinstance(node, (list, dict)) else node

    walk(tree or {}, "")
    return out


def collect(runs: list[Path], metric: Optional[str], mode: str,
            parameters: Callable[[Path], dict[str, Any]] = read_overrides) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        summary = RunDir(run).read_summary()
        series = series_from_records(list(read_metrics(run / "metrics.jsonl")))
        steps, values = series.get(metric, ([], [])) if metric else ([], [])
        final = _number((summary.get("final") or {}).get(metric)) if metric else None
        if final is None and values:
            final = _number(values[-1])
        seen = [v for v in values + ([final] if final is not None else []) if math.isfinite(v)]
        best = best_value(metric, series) if metric else None  # (value, step) over metrics.jsonl
        rows.append({"run": run, "summary": summary, "params": parameters(run), "metric": final,
                     "best_seen": (max(seen) if mode == "max" else min(seen)) if seen else None,
                     "best_step": best[1] if best else None,
                     "curve": (steps, values), "keys": set(series) | set(summary.get("final") or {})})
    sign = -1.0 if mode == "max" else 1.0
    rows.sort(key=lambda r: (r["metric"] is None, sign * r["metric"] if r["metric"] is not None else 0.0, r["run"].name))
    return rows


ABSENT = "absent"  # how a key that a run's config lacks is shown (runs of different groups have different keys)


def swept_parameters(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """(keys whose value differs between runs, the overrides every run shares). A key one run lacks
    differs from any value, null included: it is shown as `ABSENT` in that run's cell."""
    keys = sorted({k for r in rows for k in r["params"]})
    swept, common = [], {}
    for key in keys:
        values = {json.dumps(r["params"][key], sort_keys=True, default=str) if key in r["params"] else ABSENT
                  for r in rows}
        if len(values) > 1 or len(rows) == 1:
            swept.append(key)
        else:
            common[key] = rows[0]["params"][key]
    return swept, common


def default_metric(rows: list[dict[str, Any]]) -> Optional[str]:
    """The first quality metric (`HEADLINE`, never a loss) that every run has; else the first any run has."""
    if not rows:
        return None
    every = set.intersection(*(set(r["keys"]) for r in rows))
    anyone = set().union(*(r["keys"] for r in rows))
    return next((k for k in HEADLINE if k in every), None) or next((k for k in HEADLINE if k in anyone), None)


def _wins(rows: list[dict[str, Any]]) -> bool:
    """Does the first-ranked run beat the second (a tie, 0 against 0, has no winner)?"""
    if not rows or rows[0]["metric"] is None:
        return False
    return len(rows) == 1 or rows[1]["metric"] is None or rows[1]["metric"] != rows[0]["metric"]


def protocol_warnings(rows: list[dict[str, Any]], names: dict[Path, str]) -> list[str]:
    """One sentence per protocol entry (`COMPARABLE`) whose value differs between the runs' summary.json."""
    protocols = {names[r["run"]]: r["summary"].get("protocol") or {} for r in rows}
    out = []
    missing = [n for n, p in protocols.items() if not p]
    if missing and len(missing) < len(protocols):
        out.append(f"{len(missing)} run(s) record no evaluation protocol ({', '.join(missing[:5])}): "
                   "their numbers cannot be checked against the others'.")
    for key in COMPARABLE:
        values = {n: p.get(key) for n, p in protocols.items() if p and key in p}
        if len({json.dumps(v, default=str) for v in values.values()}) > 1:
            shown = ", ".join(f"{n}: {str(v)[:16]}" for n, v in list(values.items())[:6])
            out.append(f"The evaluation protocols differ in {key} ({shown}): "
                       "numbers measured differently are not comparable.")
    return out


def best_grid(run: Path, best_step: Optional[int]) -> Optional[tuple[int, Path]]:
    """The run's sample grid at its best step (the last one at or before it), else its latest."""
    pictures = sample_pictures(run)
    if not pictures:
        return None
    if best_step is not None:
        before = [p for p in pictures if p[0] <= best_step]
        if before:
            return before[-1]
    return pictures[-1]


def comparison_body(rows: list[dict[str, Any]], base: Path, metric: Optional[str], mode: str,
                    heading: str) -> str:
    """The leaderboard (each run's best sample grid beside its numbers), the protocol check, the metric
    against each parameter that differs, a parallel-coordinates view and every run's metric over steps.
    Links are relative to `base`, the page's folder."""
    names = {r["run"]: Path(os.path.relpath(r["run"], base)).as_posix() for r in rows}
    swept, common = swept_parameters(rows)
    label = metric or "metric"
    header = ["rank", "run", f"{label} (final)", f"{label} (best seen)", "best at step", "status", "step", *swept,
              "samples at the best step"]
    cells, classes = [], []
    for rank, r in enumerate(rows, 1):
        run, summary, rel = r["run"], r["summary"], names[r["run"]]
        link = f"{rel}/{REPORT_NAME}" if (run / REPORT_NAME).is_file() else f"{rel}/"
        grid = best_grid(run, r["best_step"])
        thumb = ""
        if grid:
            src = page.esc(f"{rel}/{grid[1].relative_to(run).as_posix()}")
            thumb = f'<a href="{src}"><img class="thumb" alt="samples of {page.esc(rel)} at step {grid[0]}" src="{src}" loading="lazy"></a>'
        cells.append([str(rank), f'<a href="{page.esc(link)}">{page.esc(rel)}</a>', page.fmt(r["metric"]),
                      page.fmt(r["best_seen"]), page.fmt(r["best_step"]), page.esc(summary.get("status", "")),
                      page.fmt(summary.get("step")), *[page.fmt(r["params"][k]) if k in r["params"] else ABSENT for k in swept], thumb])
        classes.append("best" if rank == 1 and _wins(rows) else "")
    direction = "lower is better" if mode == "min" else "higher is better"
    body = [f"<h1>{page.esc(heading)}</h1>",
            f'<p>{len(rows)} runs ranked by <b>{page.esc(label)}</b> ({direction}); '
            f"runs without a value come last.</p>", page.warnings(protocol_warnings(rows, names)),
            page.table(header, cells, classes)]
    if common and len(common) <= MAX_SHARED_SHOWN:
        body.append('<p class="muted">Shared by every run: ' + page.esc(" ".join(f"{k}={v}" for k, v in common.items())) + "</p>")
    plotted = swept[:MAX_PARAMETERS_PLOTTED]
    svg = parallel_coordinates(rows, plotted, label, mode)
    body += [f"<h2>{page.esc(label)} against each parameter that differs</h2>",
             page.plot_img(metric_against_parameters(rows, plotted, label), f"{label} values against swept parameters"),
             f"<h2>Parallel coordinates, coloured by {page.esc(label)} (yellow is best)</h2>",
             svg or '<p class="muted">No parameters differ between these runs.</p>',
             f"<h2>{page.esc(label)} over training</h2>",
             page.plot_img(metric_over_steps({names[r["run"]]: r["curve"] for r in rows}, label), f"{label} curves")]
    return "\n".join(body)


def _goal(rows_of: Callable[..., list[dict[str, Any]]], metric: Optional[str], mode: Optional[str],
          sweep_metric: Optional[str] = None, sweep_mode: Optional[str] = None) -> tuple[Optional[str], str]:
    metric = metric or sweep_metric or default_metric(rows_of(None, "min"))
    if mode is None:
        mode = sweep_mode if (metric == sweep_metric and sweep_mode) else best_mode(metric or "")
    if mode not in ("min", "max"):
        raise UserError(f"The comparison mode must be min or max, got '{mode}'.")
    return metric, mode


def write_comparison(sweep_dir: str | Path, metric: Optional[str] = None, mode: Optional[str] = None) -> Path:
    """Write `<sweep_dir>/report.html` comparing its runs by `metric` (`mode` min or max; by default
    the sweep's own metric from sweep.json, else the first known metric the runs have); returns its path."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise UserError(f"No sweep dir at '{sweep_dir}': pass a folder holding one run dir per trial.")
    runs = find_runs(sweep_dir)
    if not runs:
        raise UserError(f"'{sweep_dir}' holds no run dirs (folders with summary.json or metrics.jsonl): pass a sweep dir or a run dir.")
    metric, mode = _goal(lambda m, d: collect(runs, m, d), metric, mode, *_sweep_goal(sweep_dir))
    rows = collect(runs, metric, mode)
    body = comparison_body(rows, sweep_dir, metric, mode, f"Sweep {sweep_dir.resolve().name}")
    path = sweep_dir / REPORT_NAME
    atomic_write_bytes(path, page.document(f"Sweep {sweep_dir.resolve().name}", body).encode("utf-8"))
    return path


def write_runs_comparison(runs: list[str | Path], out: Optional[str | Path] = None, metric: Optional[str] = None,
                          mode: Optional[str] = None) -> Path:
    """Write one page comparing arbitrary run dirs (by default `comparison.html` in their closest common
    folder), the parameters that differ read from their configs; returns its path."""
    runs = [Path(r) for r in runs]
    not_runs = [str(r) for r in runs if not (r.is_dir() and is_run_dir(r))]
    if not_runs:
        raise UserError(f"'{not_runs[0]}' is not a run dir (no summary.json or metrics.jsonl): pass run dirs to compare.")
    out = Path(out) if out else Path(os.path.commonpath([r.resolve() for r in runs])) / COMPARISON_NAME
    metric, mode = _goal(lambda m, d: collect(runs, m, d, config_parameters), metric, mode)
    rows = collect(runs, metric, mode, config_parameters)
    body = comparison_body(rows, out.resolve().parent, metric, mode, f"Comparison of {len(runs)} runs")
    atomic_write_bytes(out, page.document(f"Comparison of {len(runs)} runs", body).encode("utf-8"))
    return out
