"""The interface of an augmentation pipeline, and the pipeline that changes nothing."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NoAugment(nn.Module):
    """`augment=none`: D sees the images as they are. Also the interface every pipeline follows."""

    def forward(self, images: Tensor) -> Tensor:
        return images

    def observe(self, real_scores: Tensor, num_images: int) -> None:
        """D's raw scores on the (augmented) real batch of one D step; adaptive pipelines learn from them."""

    def logs(self) -> dict[str, Tensor]:
        """0-d tensors for the trainer's log (kept on the device)."""
        return {}


def uniform(n: int, like: Tensor) -> Tensor:
    """n draws from U[0, 1) on `like`'s device, from torch's global generator (restored on resume)."""
    return torch.rand(n, device=like.device, dtype=torch.float32)
