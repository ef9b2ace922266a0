"""Precision, recall, density and coverage of generated samples against real ones, in feature space.

Precision and recall (Kynkäänniemi et al. 2019): a fake sample is "precise" if it falls inside the
k-NN ball of some real sample; a real sample is "recalled" if it falls inside the k-NN ball of some
fake sample. Density and coverage (Naeem et al. 2020): density counts how many real balls hold each
fake sample (divided by k; ~1 for a perfect generator, above 1 where fakes crowd dense regions);
coverage is the fraction of real samples whose ball holds at least one fake.

The same numbers as the `prdc` reference package (strict `<` against the k-th neighbour distance,
the sample itself excluded), but in torch and in row chunks: no N x M matrix is ever kept, so
10,000 x 10,000 points need a few tens of MB, on a CPU or a GPU.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _chunks(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def _squared_distances(a: Tensor, b: Tensor, a2: Tensor, b2: Tensor) -> Tensor:
    """||a_i - b_j||^2 = ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j, one matrix product; no square roots
    (the comparisons below are between squared distances)."""
    return torch.addmm(b2[None, :], a, b.T, alpha=-2.0).add_(a2[:, None]).clamp_(min=0)


def kth_neighbour_distance(x: Tensor, k: int, chunk: int = 256) -> Tensor:
    """Distance from each row of x to its k-th nearest other row (N,)."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k={k} samples, got {len(x)}")
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    x2 = (x * x).sum(1)
    for rows in _chunks(len(x), chunk):
        d2 = _squared_distances(x[rows], x, x2[rows], x2)
        # k + 1 smallest: the row itself (distance 0) is the first
        out[rows] = d2.topk(k + 1, dim=1, largest=False).values[:, k].sqrt()
    return out


def precision_recall_density_coverage(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 256,
                                      real_radii: Tensor | None = None) -> dict[str, float]:
    """The four manifold metrics of `fake` (M, d) against `real` (N, d) with k nearest neighbours.

    `real_radii` (the real samples' k-NN distances) may be passed in when the real set is fixed:
    they are the expensive half and need computing only once per run.
    """
    real, fake = real.flatten(1), fake.flatten(1).to(real.dtype)
    if real_radii is None:
        real_radii = kth_neighbour_distance(real, k, chunk)
    fake_radii = kth_neighbour_distance(fake, k, chunk)
    in_real_balls = torch.zeros(len(fake), dtype=torch.long, device=fake.device)  # per fake: how many real balls hold it
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    real2, fake2 = (real * real).sum(1), (fake * fake).sum(1)
    real_r2, fake_r2 = real_radii.to(real.dtype) ** 2, fake_radii ** 2
    for rows in _chunks(len(real), chunk):
        d2 = _squared_distances(real[rows], fake, real2[rows], fake2)     # (chunk, M)
        inside = d2 < real_r2[rows, None]
        in_real_balls += inside.sum(0)
        covered[rows] = inside.any(1)              # min_j d(real_i, fake_j) < r_i
        recalled[rows] = (d2 < fake_r2[None, :]).any(1)
    return {
        "precision": (in_real_balls > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": in_real_balls.double().mean().item() / k,
        "coverage": covered.double().mean().item(),
    }
