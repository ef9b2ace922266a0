"""The run page's "Evaluations after training" section: every `eval_<name>.json` that
`gan_platform.evaluate` left in the run dir, newest first, with its headline numbers (mean and
standard deviation over the sample sets), what was measured (generator and step, or the image set),
and its nearest-neighbour picture (memorisation), linked relative to the page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gan_platform.runs.metrics import HEADLINE
from gan_platform.tracking.report import page

SHOWN = ("eval/fd_inf", "eval/fd_dinov2", "eval/fd_clip", "eval/is", "memorization/ct", "memorization/authpct",
         "memorization/nn_ratio")


def _records(run_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(run_dir.glob("eval_*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            found.append((path, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):  # a file being written, or not ours: the page still renders
            continue
    return found


def _what(protocol: dict[str, Any]) -> str:
    if protocol.get("fake"):
        return f"images {page.esc(protocol['fake'])}"
    return (f"{page.esc(protocol.get('generator', '?'))} at step {page.fmt(protocol.get('step'))}, "
            f"{page.fmt(protocol.get('sample_sets'))} x {page.fmt(protocol.get('num_samples'))} samples")


def _numbers(metrics: dict[str, Any]) -> str:
    lead = [k for k in HEADLINE if k in metrics and not k.startswith("train/")][:4]
    keys = list(dict.fromkeys(lead + [k for k in SHOWN if k in metrics]))
    return "<br>".join(f"{page.esc(k)} {page.fmt(metrics[k].get('mean'))} ± {page.fmt(metrics[k].get('std'))}" for k in keys)


def evaluations_section(run_dir: Path) -> list[str]:
    """The section's HTML parts (none when the run has no evaluation record)."""
    records = _records(run_dir)
    if not records:
        return []
    rows = []
    for path, record in records:
        protocol, metrics = record.get("protocol") or {}, record.get("metrics") or {}
        rows.append([f'<a href="{page.esc(path.name)}">{page.esc(path.name)}</a>', _what(protocol),
                     page.esc(protocol.get("extractor", "")), _numbers(metrics)])
    parts = ["<h2>Evaluations after training</h2>", page.table(["record", "measured", "features", "numbers"], rows)]
    for path, record in records:
        picture = (record.get("nearest_neighbours") or {}).get("picture")
        if picture and (run_dir / picture).is_file():
            parts += [f"<h3>Nearest training images: {page.esc(path.name)}</h3>",
                      f'<img class="latest" alt="nearest neighbours of {page.esc(path.name)}" src="{page.esc(picture)}">']
    return parts
