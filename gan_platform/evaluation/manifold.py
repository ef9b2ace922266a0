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


def kth_neighbour_distance(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Distance from each row of x to its k-th nearest other row (N,)."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k={k} samples, got {len(x)}")
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for rows in _chunks(len(x), chunk):
        d = torch.cdist(x[rows], x)
        # k + 1 smallest: the row itself (distance 0) is the first
        out[rows] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def precision_recall_density_coverage(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 1024,
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
    for rows in _chunks(len(real), chunk):
        d = torch.cdist(real[rows], fake)                      # (chunk, M)
        inside = d < real_radii[rows, None]
        in_real_balls += inside.sum(0)
        recalled[rows] = (d < fake_radii[None, :]).any(1)
        covered[rows] = d.min(1).values < real_radii[rows]
    return {
        "precision": (in_real_balls > 0).double().mean().item(),
        "recall": recalled.double().mean().item(),
        "density": in_real_balls.double().mean().item() / k,
        "coverage": covered.double().mean().item(),
    }
