"""HTML pieces shared by the run page and the comparison pages: one self-contained file, no
network; plots embedded as data URIs, sample grids linked relative to the page. The only script is
the sample-grid slider's few inline lines (`SLIDER_SCRIPT`); a page of a running run reloads itself
(`document(refresh=...)`)."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from typing import Any, Optional

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#777;font-size:13px}.status{display:inline-block;padding:2px 8px;border-radius:10px;font-size:13px;background:#eee}
.status.finished,.status.early_stopped{background:#d8f0dc}.status.running{background:#dbe8fb}
.status.failed,.status.diverged{background:#f8d7d7}.status.interrupted,.status.stopped_by_sweep{background:#fbefd0}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:middle}
th{background:#f6f6f6}tr.best{background:#eef8ee}
.strip{display:flex;flex-wrap:wrap;gap:10px}.strip figure{margin:0;text-align:center;font-size:12px;color:#555}
.strip img{height:160px;width:auto;max-width:240px;image-rendering:pixelated;border:1px solid #ddd}
img.plot{max-width:100%;border:1px solid #eee}img.latest{max-width:420px;image-rendering:pixelated;border:1px solid #ddd}

pre{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto;max-height:480px}
.lead{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.lead .cards{flex-direction:column}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}.card{border:1px solid #ddd;border-radius:8px;padding:8px 14px;min-width:140px}
.card .name{font-size:12px;color:#555}.card .value{font-size:26px;font-weight:600}.card.headline .value{font-size:34px;color:#174ea6}
.card .note{font-size:12px;color:#777}
.warnings{background:#fff4d6;border:1px solid #e8c766;border-radius:6px;padding:6px 14px;margin:10px 0}
.viewer img{max-width:min(560px,90vw);max-height:560px;min-width:280px;image-rendering:pixelated;border:1px solid #ddd;display:block}
.viewer{min-width:280px}
.viewer input{width:min(560px,90vw)}
img.thumb{max-width:120px;max-height:120px;image-rendering:pixelated}
"""

# The sample-grid slider: every <div class="viewer"> holds an <img>, an <input type=range> and its grids as
# JSON in data-grids ([[step, src], ...]); moving the slider shows that step's grid.
SLIDER_SCRIPT = """<script>
document.querySelectorAll(".viewer").forEach(function (v) {
  var grids = JSON.parse(v.dataset.grids), img = v.querySelector("img"), range = v.querySelector("input"),
      label = v.querySelector(".step");
  range.addEventListener("input", function () {
    var g = grids[Number(range.value)];
    img.src = g[1]; img.alt = "samples at step " + g[0]; label.textContent = g[0];
  });
});
</script>"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def plot_img(png: Optional[bytes], alt: str) -> str:
    if png is None:
        return f'<p class="muted">No {esc(alt)} yet.</p>'
    return f'<img class="plot" alt="{esc(alt)}" src="{png_data_uri(png)}">'


def fmt(value: Any) -> str:
    """A number short enough for a table cell."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return esc(value)


def slider(grids: list[tuple[int, str]], caption: str = "") -> str:
    """The latest of `grids` ([(step, src)], in step order) shown large, with a step slider over all of them."""
    step, src = grids[-1]
    data = esc(json.dumps([[s, g] for s, g in grids]))
    return (f'<div class="viewer" data-grids="{data}"><img id="grid" alt="samples at step {step}" src="{esc(src)}">'
            f'<input type="range" min="0" max="{len(grids) - 1}" value="{len(grids) - 1}" step="1" '
            f'aria-label="step of the sample grid"><div>step <b class="step">{step}</b>{esc(caption)}</div></div>')


def card(name: str, value: str, note: str = "", headline: bool = False) -> str:
    cls = "card headline" if headline else "card"
    return (f'<div class="{cls}" data-metric="{esc(name)}"><div class="name">{esc(name)}</div>'
            f'<div class="value">{value}</div><div class="note">{note}</div></div>')


def warnings(items: list[str]) -> str:
    if not items:
        return ""
    return '<div class="warnings"><b>Warnings</b><ul>' + "".join(f"<li>{esc(w)}</li>" for w in items) + "</ul></div>"


def table(header: list[str], rows: list[list[str]], row_classes: Optional[list[str]] = None) -> str:
    """Cells are HTML already (escape text with `esc` or `fmt`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def document(title: str, body: str, refresh: Optional[int] = None) -> str:
    """The whole page; `refresh` (seconds) makes the browser reload it, for a run still going."""
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    reload = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    script = SLIDER_SCRIPT if 'class="viewer"' in body else ""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{reload}<title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n{script}\n"
            f"<p class=\"muted\">Written {esc(when)} by gan_platform.tracking.report.</p></body></html>\n")
