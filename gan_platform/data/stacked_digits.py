"""Stacked digits: three random digits as the three channels of one image, 1,000 modes.

The Stacked-MNIST protocol (Metz et al. 2017; VEEGAN; PacGAN) on scikit-learn's bundled digits:
each sample is (a, b, c), three digit images drawn independently, stacked as channels; its label
(mode) is 100a + 10b + c. A generator that covers the data makes all 1,000 combinations; counting
them with a digit classifier per channel measures collapse on images.

Training batches are fresh triples from the digit pool (each process draws from its own shard of
the pool); `all()` returns a fixed, seeded draw of `eval_size` triples for the real statistics.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from gan_platform.data.base import Evaluation, TensorDataset
from gan_platform.data.digits import load_digit_images
from gan_platform.errors import ConfigError


def stack_labels(labels: Tensor) -> Tensor:
    """(N, 3) digits -> mode 100a + 10b + c."""
    return labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]

# The Stacked-MNIST protocol: 1,000 modes read channel by channel by the digit classifier, 10,000 samples,
# against a fixed held-out draw of real triples.
STACKED = Evaluation(features="digits", collapse="stacked_digits", num_samples=10000, held_out=True,
                     best_metric="collapse/modes")


class StackedDigits(TensorDataset):
    """Three digits per image, one per channel; 1,000 classes."""

    def __init__(self, resolution: int = 16, eval_size: int = 10000, seed: int = 1234):
        if eval_size < 2:
            raise ConfigError(f"dataset.eval_size must be at least 2, got {eval_size}.")
        self.pool, self.pool_labels = load_digit_images(resolution)
        self._pool_index: Optional[Tensor] = None
        g = torch.Generator().manual_seed(seed)
        x, y = self._draw(eval_size, g)
        super().__init__("stacked_digits", x, y, num_classes=1000, kind="images",
                         class_names=[f"{i:03d}" for i in range(1000)], evaluation=STACKED)

    def _draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        pool = len(self.pool) if self._pool_index is None else len(self._pool_index)
        idx = torch.randint(pool, (n, 3), generator=generator, device=generator.device)
        if self._pool_index is not None:
            idx = self._pool_index[idx]
        x = self.pool[idx].squeeze(2)  # (n, 3, 1, R, R) -> (n, 3, R, R)
        return x, stack_labels(self.pool_labels[idx])

    def to(self, device):
        self.pool, self.pool_labels = self.pool.to(device), self.pool_labels.to(device)
        if self._pool_index is not None:
            self._pool_index = self._pool_index.to(device)
        return super().to(device)

    def shard(self, rank: int, world_size: int) -> "StackedDigits":
        """Each process composes its triples from its own shard of the digit pool."""
        if world_size > 1:
            self._pool_index = torch.arange(rank, len(self.pool), world_size, device=self.pool.device)
        return self

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Optional[Tensor]]:
        x, y = self._draw(n, generator)
        return self.decode(x), y


def stacked_digits(resolution: int = 16, eval_size: int = 10000) -> StackedDigits:
    """Stacked digits at `resolution` x `resolution`, with `eval_size` fixed real triples for metrics."""
    return StackedDigits(resolution, eval_size)
