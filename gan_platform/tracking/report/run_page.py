"""The run dashboard: `<run_dir>/report.html`, rebuilt from the run dir's own files.

Loss curves, evaluation and mode-collapse metrics over steps, the sample grids (or, for 2-D data,
scatters over the real modes) as a strip over time, the summary and the config. `ReportWriter`
refreshes it from the trainer's "eval" and "end" events and keeps its own cost small: it skips an
intermediate refresh whenever the dashboard has already taken more than `max_fraction` of the
run's time so far (the page at the end is always written).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Optional

from gan_platform.tracking.report import page
from gan_platform.tracking.report.plots import series_from_records, small_multiples
from gan_platform.runs.rundir import RunDir, atomic_write_bytes, read_metrics

REPORT_NAME = "report.html"
STRIP_LENGTH = 24
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


def run_body(run_dir: Path, config: Optional[dict[str, Any]] = None) -> tuple[str, str]:
    """(title, HTML body) of a run's dashboard."""
    rd = RunDir(run_dir)
    summary = rd.read_summary()
    series = series_from_records(list(read_metrics(rd.metrics_path)))
    train_keys = [k for k in series if k.startswith(("train/", "perf/"))]
    eval_keys = sorted(k for k in series if not k.startswith(("train/", "perf/")))
    name = summary.get("experiment") or (config or {}).get("name") or "run"
    title = f"{name} · {run_dir.resolve().name}"
    status = str(summary.get("status", "unknown"))
    parts = [f"<h1>{page.esc(title)}</h1>",
             f'<p><span class="status {page.esc(status)}">{page.esc(status)}</span> '
             f'step {page.fmt(summary.get("step"))} of {page.fmt(summary.get("steps"))}'
             + (f' · <span class="muted">{page.esc(summary["error"])}</span>' if summary.get("error") else "")
             + ' · <a href="metrics.jsonl">metrics.jsonl</a> · <a href="summary.json">summary.json</a></p>',
             "<h2>Summary</h2>", _key_numbers(summary),
             "<h2>Training curves</h2>", page.plot_img(small_multiples(series, train_keys), "training curves"),
             "<h2>Evaluation and mode collapse</h2>",
             page.plot_img(small_multiples(series, eval_keys), "evaluation metrics")]
    pictures = sample_pictures(run_dir)
    parts.append("<h2>Samples over training</h2>")
    if pictures:
        step, latest = pictures[-1]
        rel = lambda p: p.relative_to(run_dir).as_posix()  # noqa: E731
        parts.append(f'<p>Latest (step {step}):<br><img class="latest" alt="samples at step {step}" src="{page.esc(rel(latest))}"></p>')
        figures = "".join(f'<figure><img alt="samples at step {s}" src="{page.esc(rel(p))}"><figcaption>step {s}</figcaption></figure>'
                          for s, p in spread(pictures, STRIP_LENGTH))
        parts.append(f'<div class="strip">{figures}</div>')
    else:
        parts.append('<p class="muted">No sample grids yet (trainer.sample_every=0 writes none).</p>')
    parts += ["<h2>Config</h2>", f"<pre>{page.esc(config_text(run_dir, config))}</pre>"]
    return title, "\n".join(parts)


def write_run_report(run_dir: str | Path, config: Optional[dict[str, Any]] = None) -> Path:
    """Write `<run_dir>/report.html` from the run dir's files; returns its path."""
    run_dir = Path(run_dir)
    title, body = run_body(run_dir, config)
    path = run_dir / REPORT_NAME
    atomic_write_bytes(path, page.document(title, body).encode("utf-8"))
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
