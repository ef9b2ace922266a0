"""The interface of an augmentation pipeline, and the pipeline that changes nothing."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NoAugment(nn.Module):
    """`augment=none`: D sees the images as they are. Also the interface every pipeline follows."""

    def forward(self, images: Tensor) -> Tensor:
        return images

    def observe(self, evidence: Tensor, num_images: int) -> None:
        """Per real image of one D step, a number whose sign says on which side of its decision D
        put the (augmented) image: positive for "real". The task derives it from D's scores and the
        loss (tasks/signals.py, `real_side`); adaptive pipelines steer by it (ada.py)."""

    def logs(self) -> dict[str, Tensor]:
        """0-d tensors for the trainer's log (kept on the device)."""
        return {}


def uniform(n: int, like: Tensor) -> Tensor:
    """n draws from U[0, 1) on `like`'s device, from torch's global generator (restored on resume)."""
    return torch.rand(n, device=like.device, dtype=torch.float32)
