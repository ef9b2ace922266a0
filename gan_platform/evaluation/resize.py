"""How images reach Inception's 299x299: `eval.resize`.

- `torchmetrics`: TF-1 compatible bilinear without antialiasing, done inside torchmetrics'
  Inception (torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x`): the classic FID numbers.
- `clean`: PIL bicubic with antialiasing, each channel in float, as clean-fid (Parmar et al. 2022,
  "On Aliased Resizing and Surprising Subtleties in GAN Evaluation"); done here, before the network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

RESIZE_MODES = ("torchmetrics", "clean")


def check_resize(mode: str) -> str:
    """`mode` if it is one of RESIZE_MODES; else the one-sentence error."""
    from gan_platform.errors import ConfigError

    if mode not in RESIZE_MODES:
        raise ConfigError(f"eval.resize must be one of {', '.join(RESIZE_MODES)}, got '{mode}'.")
    return mode


def resize_clean(u8: Tensor, size: int) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size) by PIL bicubic with antialiasing, each channel
    resized in float ("F" mode) as clean-fid does, then rounded."""
    from PIL import Image

    if u8.shape[-2:] == (size, size):
        return u8
    arr = u8.cpu().numpy().astype(np.float32)
    out = np.empty((*arr.shape[:2], size, size), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            out[i, c] = np.asarray(Image.fromarray(arr[i, c], mode="F").resize((size, size), Image.BICUBIC))
    return torch.from_numpy(out.clip(0, 255).round().astype(np.uint8)).to(u8.device)
