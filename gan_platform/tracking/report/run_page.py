"""The run dashboard: `<run_dir>/report.html`, rebuilt from the run dir's own files.

It leads with what a GAN researcher looks at first: the status, any warnings, the latest sample
grid (or, for 2-D data, the scatter over the real modes) large, with a slider over every step's
grid, and the headline metrics (`runs.metrics.HEADLINE`: FID, modes covered, class accuracy, label
preservation, whichever the run has) with their best value and step. Then the grouped curves: the
adversarial losses with D's scores on real and fake, the training-health signals where logged,
the evaluation metrics (per-class numbers as one bar chart per evaluation), then the evaluation
protocol, every final number and the config. While the run is going (status `running`) the page
reloads itself every `REFRESH_S` seconds. `ReportWriter`
refreshes it from the trainer's "eval" and "end" events and keeps its own cost small: it skips an
intermediate refresh whenever the dashboard has already taken more than `max_fraction` of the
run's time so far (the page at the end is always written).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Optional

from gan_platform.runs.metrics import HEADLINE, PER_CLASS, best_mode, group
from gan_platform.runs.rundir import RunDir, atomic_write_bytes, read_metrics
from gan_platform.tracking.report import page
from gan_platform.tracking.report.evaluations import evaluations_section
from gan_platform.tracking.report.plots import Series, per_class, per_class_bars, series_from_records, small_multiples

REPORT_NAME = "report.html"
STRIP_LENGTH = 24
HEADLINE_CARDS = 4  # headline metrics shown as cards beside the samples
PER_CLASS_EVALUATIONS = 12  # per-class bar charts drawn, evenly spread over the evaluations
REFRESH_S = 30  # a running run's page reloads itself this often
_STEP = re.compile(r"step_(\d+)\.png$")


def is_run_dir(path: Path) -> bool:
    return (path / "summary.json").is_file() or (path / "metrics.jsonl").is_file()


def sample_pictures(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of the run's sample PNGs, in step order."""
    found = []
    for p in (run_dir / "samples").glob("step_*.png"):
        m = _STEP.search(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def spread(items: list, n: int) -> list:
    """At most n items, evenly spaced, always keeping the first and the last."""
    if len(items) <= n:
        return list(items)
    idx = sorted({round(i * (len(items) - 1) / (n - 1)) for i in range(n)})
    return [items[i] for i in idx]


def config_text(run_dir: Path, config: Optional[dict[str, Any]]) -> str:
    if config is not None:
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(OmegaConf.create(config))
    hydra_config = run_dir / ".hydra" / "config.yaml"
    return hydra_config.read_text() if hydra_config.is_file() else "(no .hydra/config.yaml in this run dir)"


def _key_numbers(summary: dict[str, Any]) -> str:
    final, best = summary.get("final") or {}, summary.get("best") or {}
    best_metrics = {k: v for k, v in best.items() if k not in ("step", "metrics")}
    rows = [[page.esc(k), page.fmt(v), ""] for k, v in final.items()]
    rows += [[page.esc(k), page.fmt(v), f"best, at step {page.fmt(best.get('step'))}"] for k, v in best_metrics.items()]
    return page.table(["metric", "value", "note"], rows) if rows else '<p class="muted">No values yet.</p>'


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def headline_keys(series: Series, summary: dict[str, Any], n: int = HEADLINE_CARDS) -> list[str]:
    """The first `n` of `runs.metrics.HEADLINE` the run has (none before its first evaluation: a loss is
    no measure of the samples)."""
    present = set(series) | set(summary.get("final") or {})
    return [k for k in HEADLINE if k in present][:n]


def best_value(key: str, series: Series) -> Optional[tuple[float, int]]:
    """(best value, its step) of a metric over the run, by `runs.metrics.best_mode`; the earliest of ties."""
    steps, values = series.get(key, ([], []))
    points = [(v, s) for s, v in zip(steps, values) if math.isfinite(v)]
    if not points:
        return None
    sign = -1.0 if best_mode(key) == "max" else 1.0
    return min(points, key=lambda p: (sign * p[0], p[1]))


def headline_cards(series: Series, summary: dict[str, Any]) -> str:
    """A card per headline metric: its last value (summary.json's `final`; metrics.jsonl's newest while the run
    is going, since summary.json is rewritten only at checkpoints), its best value and step."""
    cards = []
    for i, key in enumerate(headline_keys(series, summary)):
        logged = [_finite(v) for v in series.get(key, ([], []))[1][-1:]]
        final = [_finite((summary.get("final") or {}).get(key))]
        last = next((v for v in (logged + final if summary.get("status") == "running" else final + logged) if v is not None), None)
        best = best_value(key, series)
        direction = "higher is better" if best_mode(key) == "max" else "lower is better"
        note = (f"best {page.fmt(best[0])} at step {best[1]} · " if best else "") + direction
        value = f'<span data-value="{last!r}">{page.fmt(last)}</span>' if last is not None else "–"
        cards.append(page.card(key, value, note, headline=i == 0))
    return f'<div class="cards">{"".join(cards)}</div>' if cards else '<p class="muted">No evaluation yet.</p>'


def curves(series: Series) -> list[str]:
    """The grouped curves: losses and D's scores, training health (where logged), evaluation."""
    keys = {name: [k for k in series if group(k) == name] for name in ("losses", "health", "quality", "collapse", "other")}
    by_class = per_class(series)
    evaluation = sorted(k for k in keys["quality"] + keys["collapse"] + keys["other"] if not re.match(PER_CLASS, k))
    parts = ["<h2>Adversarial losses and D's scores on real and fake</h2>",
             page.plot_img(small_multiples(series, keys["losses"]), "training curves")]
    if keys["health"]:
        parts += ["<h2>Training health</h2>", page.plot_img(small_multiples(series, keys["health"]), "training-health curves")]
    parts += ["<h2>Evaluation and mode collapse</h2>", page.plot_img(small_multiples(series, evaluation), "evaluation metrics")]
    for metric, by_step in by_class.items():
        shown = {s: by_step[s] for s in spread(sorted(by_step), PER_CLASS_EVALUATIONS)}
        note = "" if len(shown) == len(by_step) else f" ({len(shown)} of {len(by_step)} evaluations)"
        parts += [f"<h3>{page.esc(metric)} per class{note}</h3>", page.plot_img(per_class_bars(shown, metric), f"{metric} per class")]
    return parts


def protocol_table(summary: dict[str, Any]) -> str:
    protocol = summary.get("protocol") or {}
    if not protocol:
        return '<p class="muted">No evaluation protocol recorded yet.</p>'
    return page.table(["protocol", "value"], [[page.esc(k), page.fmt(v)] for k, v in protocol.items()])


def run_body(run_dir: Path, config: Optional[dict[str, Any]] = None) -> tuple[str, str]:
    """(title, HTML body, seconds between reloads or None) of a run's dashboard."""
    rd = RunDir(run_dir)
    summary = rd.read_summary()
    series = series_from_records(list(read_metrics(rd.metrics_path)))
    name = summary.get("experiment") or (config or {}).get("name") or "run"
    title = f"{name} · {run_dir.resolve().name}"
    status = str(summary.get("status", "unknown"))
    parts = [f"<h1>{page.esc(title)}</h1>",
             f'<p><span class="status {page.esc(status)}">{page.esc(status)}</span> '
             f'step {page.fmt(summary.get("step"))} of {page.fmt(summary.get("steps"))}'
             + (f' · <span class="muted">{page.esc(summary["error"])}</span>' if summary.get("error") else "")
             + ' · <a href="metrics.jsonl">metrics.jsonl</a> · <a href="summary.json">summary.json</a>'
             + (f' · <span class="muted">this page reloads every {REFRESH_S} s while the run is going</span>' if status == "running" else "")
             + "</p>", page.warnings([str(w) for w in summary.get("warnings") or []])]
    pictures = sample_pictures(run_dir)
    rel = lambda p: p.relative_to(run_dir).as_posix()  # noqa: E731
    lead = (page.slider([(s, rel(p)) for s, p in pictures]) if pictures
            else '<p class="muted">No sample grids yet (trainer.sample_every=0 writes none).</p>')
    parts.append(f'<div class="lead"><div>{lead}</div><div>{headline_cards(series, summary)}</div></div>')
    if pictures:
        figures = "".join(f'<figure><img alt="samples at step {s}" src="{page.esc(rel(p))}" loading="lazy"><figcaption>step {s}</figcaption></figure>'
                          for s, p in spread(pictures, STRIP_LENGTH))
        parts += ["<h2>Samples over training</h2>", f'<div class="strip">{figures}</div>']
    parts += curves(series)
    parts += evaluations_section(run_dir)
    parts += ["<h2>Evaluation protocol</h2>", protocol_table(summary),
              "<h2>Summary</h2>", f"<details><summary>every final and best number</summary>{_key_numbers(summary)}</details>",
              "<h2>Config</h2>", f"<pre>{page.esc(config_text(run_dir, config))}</pre>"]
    return title, "\n".join(parts), (REFRESH_S if status == "running" else None)


def write_run_report(run_dir: str | Path, config: Optional[dict[str, Any]] = None) -> Path:
    """Write `<run_dir>/report.html` from the run dir's files; returns its path."""
    run_dir = Path(run_dir)
    title, body, refresh = run_body(run_dir, config)
    path = run_dir / REPORT_NAME
    atomic_write_bytes(path, page.document(title, body, refresh).encode("utf-8"))
    return path


class ReportWriter:
    """Trainer callback: refresh report.html at each evaluation and at the end of the run."""

    def __init__(self, max_fraction: float = 0.05):
        self.max_fraction = max_fraction
        self.started = time.perf_counter()
        self.spent = 0.0
        self.writes = 0

    def __call__(self, event: str, trainer: Any) -> None:
        if event not in ("eval", "end"):
            return
        elapsed = time.perf_counter() - self.started
        if event != "end" and self.writes and self.spent > self.max_fraction * elapsed:
            return
        t0 = time.perf_counter()
        write_run_report(trainer.run_dir.root, config=getattr(trainer, "config", None))
        self.spent += time.perf_counter() - t0
        self.writes += 1
