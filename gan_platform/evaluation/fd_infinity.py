"""FD at infinity (Chong and Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to
find them"): the Fréchet distance with the bias of a finite sample count extrapolated away.

The FID of N generated samples is biased upward, and the bias depends on the generator, so two
generators can swap places between N = 5,000 and N = 50,000. Its expectation is, to first order,
linear in 1/N:

    E[FD_N] = FD_inf + k / N.

So FD_N is measured at `points` counts N_1 < ... < N_P evenly spaced from a tenth of the samples to
all of them (the paper's 15 counts from 5,000 to 50,000 at 50,000 samples), each on a random subset
of the generated features (a fixed seed), a straight line is fitted by least squares to
(1/N_j, FD_{N_j}), and its value at 1/N = 0 is FD_inf. The real statistics are those of every FID.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from gan_platform.evaluation.reference import ReferenceStats, frechet_distance

POINTS = 15                # the paper's number of counts
SMALLEST_FRACTION = 0.1    # the smallest count as a share of the samples (5,000 of 50,000 in the paper)
SUBSET_SEED = 0            # the subsets are the same for the same samples


def fd_inf_counts(num_samples: int, points: int = POINTS) -> list[int]:
    """The sample counts FD_N is measured at: `points` whole numbers evenly spaced from a tenth of
    `num_samples` (at least 2) to `num_samples`, without repeats."""
    low = max(2, round(SMALLEST_FRACTION * num_samples))
    if points < 2 or num_samples <= low:
        raise ValueError(f"FD at infinity needs at least 2 counts and more than {low} samples, got {points} and {num_samples}")
    steps = torch.linspace(low, num_samples, points, dtype=torch.float64).round().long()
    return sorted({int(n) for n in steps})


def extrapolate(counts: list[int], values: list[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line through (1/N_j, values_j): the value at 1/N = 0."""
    x = 1.0 / torch.tensor(counts, dtype=torch.float64)
    y = torch.tensor(values, dtype=torch.float64)
    design = torch.stack([torch.ones_like(x), x], dim=1)
    intercept, slope = torch.linalg.lstsq(design, y[:, None]).solution[:, 0].tolist()
    return float(intercept), float(slope)


def fd_at_infinity(real: ReferenceStats, fake_features: Tensor, counts: list[int],
                   seed: int = SUBSET_SEED) -> tuple[float, list[float]]:
    """(FD_inf, FD_N at each count) of `fake_features` (N, d) against the real statistics."""
    if counts[-1] > len(fake_features):
        raise ValueError(f"FD at infinity's largest count {counts[-1]} exceeds the {len(fake_features)} samples")
    g = torch.Generator().manual_seed(seed)
    values = []
    for n in counts:
        rows = torch.randperm(len(fake_features), generator=g)[:n].to(fake_features.device)
        values.append(frechet_distance(real, ReferenceStats.of(fake_features[rows])))
    return extrapolate(counts, values)[0], values


def maybe_counts(enabled: bool, num_samples: int, points: int) -> Optional[list[int]]:
    """The counts when FD at infinity is on and the samples allow it, else None."""
    if not enabled:
        return None
    try:
        return fd_inf_counts(num_samples, points)
    except ValueError:
        return None
