"""scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes): no download needed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_platform.data.base import DIGITS, TensorDataset
from gan_platform.errors import ConfigError


def load_digit_images(resolution: int = 16) -> tuple[Tensor, Tensor]:
    """All 1797 digits as uint8 (N, 1, resolution, resolution), ink bright on dark, and labels (N,)."""
    from sklearn.datasets import load_digits

    if resolution < 8 or resolution & (resolution - 1):
        raise ConfigError(f"dataset.resolution must be a power of two of at least 8, got {resolution}.")
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x, torch.tensor(bunch.target, dtype=torch.int64)


def digits(resolution: int = 16, fraction: float = 1.0) -> TensorDataset:
    """The digits dataset at `resolution` x `resolution` (bilinear upsampling from 8x8); `fraction` < 1
    keeps the first round(fraction * n_c) images of each class c (0.1: 180 images, a small dataset for
    augmentation studies), the same images in every run."""
    x, y = load_digit_images(resolution)
    if not 0 < fraction <= 1:
        raise ConfigError(f"dataset.fraction must be in (0, 1], got {fraction}: 1 keeps all 1797 digits.")
    if fraction < 1:
        keep = torch.cat([torch.nonzero(y == c).flatten()[:max(1, round(fraction * int((y == c).sum())))]
                          for c in range(10)]).sort().values
        x, y = x[keep], y[keep]
    return TensorDataset("digits", x, y, num_classes=10, kind="images", class_names=[str(i) for i in range(10)],
                         evaluation=DIGITS)
