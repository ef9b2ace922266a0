"""HTML pieces shared by the run page and the sweep page: one self-contained file, no scripts,
no network; plots embedded as data URIs, sample grids linked relative to the page."""

from __future__ import annotations

import base64
import datetime as _dt
import html
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
.strip img{width:160px;height:auto;image-rendering:pixelated;border:1px solid #ddd}
img.plot{max-width:100%;border:1px solid #eee}img.latest{max-width:420px;image-rendering:pixelated;border:1px solid #ddd}
img.thumb{width:72px;image-rendering:pixelated}
pre{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto;max-height:480px}
"""


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


def table(header: list[str], rows: list[list[str]], row_classes: Optional[list[str]] = None) -> str:
    """Cells are HTML already (escape text with `esc` or `fmt`)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def document(title: str, body: str) -> str:
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n"
            f"<p class=\"muted\">Written {esc(when)} by gan_platform.tracking.report.</p></body></html>\n")
