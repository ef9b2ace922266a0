"""Kernel Inception Distance (Bińkowski et al. 2018) on precomputed features.

KID is the unbiased squared MMD between real and generated features under the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3, averaged over `subsets` random subsets of `subset_size` samples of
each side; the standard deviation over the subsets comes with it. This is torchmetrics'
`KernelInceptionDistance.compute`, step for step (the subsets are drawn with `torch.randperm` from
the global CPU generator, so under the same seed both give the same numbers; tests check it), as a
function of two feature tensors: the evaluator keeps the real features itself.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def polynomial_mmd(real: Tensor, fake: Tensor, degree: int = 3, gamma: Optional[float] = None,
                   coef: float = 1.0) -> Tensor:
    """Unbiased MMD^2 of two (m, d) sets under (gamma x.y + coef)^degree (gamma = 1/d by default)."""
    gamma = 1.0 / real.shape[1] if gamma is None else gamma
    k_rr = (real @ real.T * gamma + coef) ** degree
    k_ff = (fake @ fake.T * gamma + coef) ** degree
    k_rf = (real @ fake.T * gamma + coef) ** degree
    m = k_rr.shape[0]
    within = (k_rr.sum() - k_rr.diag().sum()) + (k_ff.sum() - k_ff.diag().sum())
    return within / (m * (m - 1)) - 2 * k_rf.sum() / m ** 2


def kernel_inception_distance(real: Tensor, fake: Tensor, subsets: int, subset_size: int) -> tuple[float, float]:
    """(mean, population std) of the MMD^2 over `subsets` draws of `subset_size` samples per side."""
    if min(len(real), len(fake)) < subset_size:
        raise ValueError(f"KID's subset size {subset_size} exceeds the samples ({len(real)} real, {len(fake)} fake)")
    scores = []
    for _ in range(int(subsets)):
        r = real[torch.randperm(len(real))[:subset_size]]
        f = fake[torch.randperm(len(fake))[:subset_size]]
        scores.append(polynomial_mmd(r, f))
    stacked = torch.stack(scores)
    return float(stacked.mean()), float(stacked.std(unbiased=False))
