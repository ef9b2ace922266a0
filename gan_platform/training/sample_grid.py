"""A run dir's sample grid at one step: samples/step_NNNNNN.png and the raw samples behind it.

The .pt holds the generated samples and the grid's fixed inputs except the noise (labels, or the
real images a translation starts from), for checks outside the platform. The picture is an image
grid (rows as the task lays them out: one per class, each named in a margin on its left) or, for
2-D points, a scatter plot over the real data with the mixture's means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gan_platform.runs.rundir import RunDir
from gan_platform.tracking.pictures import image_grid, label_rows, save_png, scatter_plot, upscale


def write_sample_grid(run_dir: RunDir, step: int, samples: torch.Tensor, fixed: dict[str, torch.Tensor],
                      task: Any, dataset: Any) -> np.ndarray:
    """Write the step's .pt and .png; returns the picture (uint8 H x W x 3) for the trackers."""
    raw = {"samples": samples.cpu(), **{k: v.cpu() for k, v in fixed.items() if k != "z"}}
    run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
    torch.save(raw, run_dir.sample_path(step, ".pt"))
    if dataset.kind == "points":
        real, _ = dataset.all(2500)
        picture = scatter_plot(samples, real, getattr(dataset, "means", None), title=f"step {step}")
    else:
        rows = task.grid_rows(fixed)
        picture = upscale(image_grid(samples, rows=rows))
        names = getattr(dataset, "class_names", None)
        if rows and "labels" in fixed and names:  # one row per class: each row says which
            picture = label_rows(picture, [str(names[int(c)]) for c in fixed["labels"].reshape(rows, -1)[:, 0]])
    save_png(picture, run_dir.sample_path(step, ".png"))
    return picture
