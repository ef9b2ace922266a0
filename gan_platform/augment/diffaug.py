"""DiffAugment (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", 2020).

Three differentiable transformations, each applied to every image with its own random draw:

    color        brightness + U(-0.5, 0.5); saturation: channels about their mean * U(0, 2);
                 contrast: pixels about the image mean * U(0.5, 1.5)
    translation  an integer shift of up to 1/8 of the side in each direction, zeros shifted in
    cutout       a square of half the side at a random place set to zero

The formulas and constants are those of the paper's reference code (DiffAugment_pytorch.py).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_platform.augment.base import NoAugment
from gan_platform.errors import ConfigError


def color(x: Tensor) -> Tensor:
    """Random brightness, saturation and contrast per image."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by whole pixels, up to `ratio` of its side each way; zeros come in."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy + ty + 1, 0, h + 1)
    gx = torch.clamp(gx + tx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero a square of `ratio` of the side at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    b, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                               torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, device=x.device, dtype=x.dtype)
    mask[b, gy, gx] = 0
    return x * mask.unsqueeze(1)


OPERATIONS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment(NoAugment):
    """`augment=diffaug`: the `policy`'s transformations, in order, on every image D sees."""

    def __init__(self, policy: Sequence[str] = ("color", "translation", "cutout")):
        super().__init__()
        unknown = [p for p in policy if p not in OPERATIONS]
        if unknown:
            raise ConfigError(f"augment.policy has unknown entries {unknown}: choose from {', '.join(OPERATIONS)}.")
        self.policy = list(policy)

    def forward(self, images: Tensor) -> Tensor:
        for name in self.policy:
            images = OPERATIONS[name](images)
        return images
