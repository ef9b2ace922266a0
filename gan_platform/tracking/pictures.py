"""Pictures of samples: image grids (rows = classes for conditional runs) and 2-D scatter plots.

Both return the picture as a uint8 (H, W, 3) array too, the form trackers want.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from torch import Tensor


def image_grid(images: Tensor, rows: int = 0, padding: int = 2) -> np.ndarray:
    """Images in [-1, 1], (N, C, H, W) -> one uint8 (H', W', 3) grid; `rows` rows if given."""
    from torchvision.utils import make_grid

    images = images.detach().float().cpu().clamp(-1, 1)
    n = images.shape[0]
    if images.shape[1] not in (1, 3):  # e.g. stacked digits with 3 channels are already RGB
        images = images[:, :3] if images.shape[1] > 3 else images[:, :1]
    nrow = max(1, n // rows) if rows else max(1, int(np.ceil(np.sqrt(n))))
    grid = make_grid((images + 1) / 2, nrow=nrow, padding=padding, pad_value=0.5)
    if grid.shape[0] == 1:
        grid = grid.expand(3, -1, -1)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def upscale(picture: np.ndarray, min_side: int = 256) -> np.ndarray:
    """Nearest-neighbour enlarge a small picture so an 8x8-pixel digit can be seen."""
    factor = max(1, int(np.ceil(min_side / max(1, min(picture.shape[:2])))))
    return picture.repeat(factor, 0).repeat(factor, 1) if factor > 1 else picture


def label_rows(picture: np.ndarray, names: list[str], pad: int = 6) -> np.ndarray:
    """`picture` (a grid of len(names) equal rows) with each row's name written in a white margin on its
    left: a conditional grid says which class each row is."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(10, min(24, picture.shape[0] // max(1, len(names)) // 2)))
    widths = [ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), n, font=font)[2] for n in names]
    margin = max(widths, default=0) + 2 * pad
    canvas = Image.new("RGB", (picture.shape[1] + margin, picture.shape[0]), "white")
    canvas.paste(Image.fromarray(picture), (margin, 0))
    draw, band = ImageDraw.Draw(canvas), picture.shape[0] / max(1, len(names))
    for i, (name, width) in enumerate(zip(names, widths)):
        draw.text((margin - pad - width, (i + 0.5) * band), name, fill="black", font=font, anchor="lm")
    return np.asarray(canvas)


def scatter_plot(points: Tensor, real: Optional[Tensor] = None, means: Optional[Tensor] = None,
                 title: str = "") -> np.ndarray:
    """2-D samples (orange) over real samples (blue) and the mixture's means (black crosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        r = real.detach().float().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=3, c="tab:blue", alpha=0.3, label="real")
    if means is not None:
        m = means.detach().float().cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], marker="+", c="black", s=20, linewidths=0.6, label="modes")
        lo, hi = m.min(0), m.max(0)
        pad = 0.5 * max(1e-3, float((hi - lo).max()))
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
    p = points.detach().float().cpu().numpy()
    ax.scatter(p[:, 0], p[:, 1], s=2, c="tab:orange", alpha=0.5, label="generated")  # on top
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def save_png(picture: np.ndarray, path: Path) -> None:
    """Save a uint8 (H, W, 3) array as PNG, atomically."""
    from gan_platform.runs.rundir import atomic_write_bytes

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
