"""2-D Gaussian mixtures: the standard mode-collapse benchmark (VEEGAN, PacGAN, Unrolled GAN).

- ring8: 8 modes evenly spaced on a circle of radius 1, sigma 0.01. Angles use
  ``endpoint=False``; sampling 8 angles from linspace(0, 2pi, 8) with the endpoint puts two
  modes on top of each other and yields 7 distinct modes.
- grid25: 25 modes on {-4, -2, 0, 2, 4}^2, sigma 0.05.

Samples are drawn fresh for every batch (infinite data); the label is the mode index.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from gan_platform.data.base import Evaluation, TensorDataset
from gan_platform.errors import ConfigError


def ring_means(modes: int = 8, radius: float = 1.0) -> Tensor:
    """Means of `modes` Gaussians evenly spaced on a circle (endpoint excluded)."""
    angles = np.linspace(0.0, 2.0 * np.pi, modes, endpoint=False)
    return torch.tensor(np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1), dtype=torch.float32)


def grid_means(side: int = 5, spacing: float = 2.0) -> Tensor:
    """Means on a side x side grid centred on the origin, `spacing` apart."""
    ticks = (np.arange(side) - (side - 1) / 2.0) * spacing
    xx, yy = np.meshgrid(ticks, ticks, indexing="ij")
    return torch.tensor(np.stack([xx.ravel(), yy.ravel()], 1), dtype=torch.float32)

# The VEEGAN/PacGAN protocol: 2,500 samples, modes covered against a fixed held-out draw of the mixture.
MIXTURE = Evaluation(features="identity", collapse="mixture", num_samples=2500, held_out=True, best_metric="collapse/modes")


class GaussianMixture(TensorDataset):
    """Equal-weight isotropic Gaussian mixture; `x` holds the means, samples are drawn fresh."""

    def __init__(self, name: str, means: Tensor, sigma: float, eval_size: int = 2500, seed: int = 1234):
        if sigma <= 0:
            raise ConfigError(f"dataset.sigma must be positive, got {sigma}: set dataset.sigma=0.01 or similar.")
        if eval_size < 2:
            raise ConfigError(f"dataset.eval_size must be at least 2, got {eval_size}.")
        self.means = means.float()
        self.sigma = float(sigma)
        g = torch.Generator().manual_seed(seed)
        held_out, held_labels = self._draw(eval_size, g, means.device)
        # The stored tensor is a fixed held-out draw: it serves `all()` (real statistics for metrics).
        super().__init__(name, held_out, held_labels, num_classes=len(means), kind="points", evaluation=MIXTURE)

    def _draw(self, n: int, generator: torch.Generator, device) -> tuple[Tensor, Tensor]:
        labels = torch.randint(len(self.means), (n,), generator=generator, device=device)
        noise = torch.randn((n, 2), generator=generator, device=device)
        return self.means.to(device)[labels] + self.sigma * noise, labels

    def to(self, device):
        self.means = self.means.to(device)
        return super().to(device)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Optional[Tensor]]:
        return self._draw(n, generator, self.device)


def ring8(modes: int = 8, radius: float = 1.0, sigma: float = 0.01, eval_size: int = 2500) -> GaussianMixture:
    """The ring: `modes` Gaussians on a circle of `radius`, std `sigma`."""
    if modes < 2:
        raise ConfigError(f"dataset.modes must be at least 2, got {modes}.")
    return GaussianMixture("ring8" if modes == 8 else f"ring{modes}", ring_means(modes, radius), sigma, eval_size)


def grid25(side: int = 5, spacing: float = 2.0, sigma: float = 0.05, eval_size: int = 2500) -> GaussianMixture:
    """The grid: side^2 Gaussians `spacing` apart, std `sigma`."""
    if side < 2:
        raise ConfigError(f"dataset.side must be at least 2, got {side}.")
    return GaussianMixture("grid25" if side == 5 else f"grid{side * side}", grid_means(side, spacing), sigma, eval_size)
