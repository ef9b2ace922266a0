"""Does G copy its training images? Three statistics in feature space.

- **AuthPct** (Alaa et al. 2022, "How Faithful is your Synthetic Data?", as Stein et al. 2023
  compute it): a generated sample g is *authentic* unless it lies closer to its nearest training
  sample t* than t*'s own nearest other training sample does,

      authentic(g)  <=>  d(t*, T \\ {t*}) < d(g, t*),     AuthPct = 100 * mean authentic.

  A copy (training image plus tiny noise) sits at d(g, t*) ~ 0: AuthPct ~ 0.
- **C_T** (Meehan et al. 2020, "A Non-Parametric Test to Detect Data-Copying in Generative
  Models"): the training set T is cut into cells (k-means on T's features, reduced to at most
  64 dimensions by PCA fitted on T, as Stein et al. do); in each cell, the distances to the nearest
  training sample of the cell's generated samples, L(Q), and of its held-out real samples, L(P),
  are compared by a Mann-Whitney U test turned into a z-score,

      Z = (U - m n / 2 + 1/2) / sqrt(m n (m + n + 1) / 12),   U = #{(q, p): L(q) > L(p)} (+ ties / 2),

  and C_T is the average of the cells' Z weighted by their share of held-out samples, over the
  cells holding more than `MIN_CELL_SAMPLES` generated samples. C_T << 0: generated samples sit
  closer to the training images than unseen real images do (copying); ~0: as close as real data;
  >> 0: farther (underfitting). It needs held-out real images (never trained on).
- **nn_ratio**: the median distance from a generated sample to its nearest training sample over
  the median distance from a training sample to its nearest other one. Fresh samples of the data's
  law score about 1; copies about 0.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from gan_platform.evaluation.memorization.neighbours import nearest

PCA_DIMENSIONS = 64        # Stein et al.: C_T on the first 64 principal components of wider features
MIN_CELL_SAMPLES = 20      # Meehan et al.'s tau = 20 / m: a cell counts with more than 20 generated samples
KMEANS_SEED = 0


def authenticity_percent(fake_to_train: Tensor, fake_nearest: Tensor, train_to_train: Tensor) -> float:
    """AuthPct from each generated sample's distance to (and index of) its nearest training sample
    and each training sample's distance to its nearest other training sample."""
    authentic = train_to_train[fake_nearest] < fake_to_train
    return 100.0 * float(authentic.double().mean())


def nn_ratio(fake_to_train: Tensor, train_to_train: Tensor) -> float:
    """median d(g, T) / median d(t, T \\ {t})."""
    return float(fake_to_train.double().median() / train_to_train.double().median().clamp_min(1e-12))


def mann_whitney_z(q: Tensor, p: Tensor) -> float:
    """The z-score of Mann-Whitney's U of q against p (average ranks for ties, continuity correction):
    negative where q's values are smaller than p's."""
    m, n = len(q), len(p)
    values = torch.cat([q, p]).double()
    order = values.argsort()
    ranks = torch.empty_like(values)
    _, inverse, counts = torch.unique_consecutive(values[order], return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2          # the average rank of each run of ties
    ranks[order] = mean_rank[inverse]
    u = float(ranks[:m].sum()) - m * (m + 1) / 2
    return (u - m * n / 2 + 0.5) / math.sqrt(m * n * (m + n + 1) / 12)


def principal_components(train: Tensor, dims: int = PCA_DIMENSIONS) -> tuple[Tensor, Optional[Tensor]]:
    """(mean, projection (d, dims)) of a PCA fitted on `train`; no projection where d <= dims."""
    x = train.double()
    mean = x.mean(0)
    if x.shape[1] <= dims:
        return mean, None
    centred = x - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    return mean, vectors[:, -dims:].flip(1)


def kmeans_cells(train: Tensor, cells: int) -> "object":
    """k-means on `train` (scikit-learn, seeded): the partition of C_T."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=cells, n_init=10, random_state=KMEANS_SEED).fit(train.cpu().numpy())


def data_copying_ct(train: Tensor, heldout: Tensor, fake: Tensor, cells: int) -> tuple[Optional[float], dict]:
    """(C_T, what it used) of generated features against training and held-out real features.
    None when no cell holds enough generated samples."""
    mean, projection = principal_components(train)
    reduce = (lambda x: (x.double() - mean) @ projection) if projection is not None else (lambda x: x.double() - mean)  # noqa: E731
    t, p, q = reduce(train).float(), reduce(heldout).float(), reduce(fake).float()
    cells = max(1, min(int(cells), len(t)))
    model = kmeans_cells(t, cells)
    cell_of = {name: torch.from_numpy(model.predict(x.cpu().numpy())).long() for name, x in (("t", t), ("p", p), ("q", q))}
    weights, scores = [], []
    for c in range(cells):
        t_c, p_c, q_c = (x[cell_of[name].to(x.device) == c] for name, x in (("t", t), ("p", p), ("q", q)))
        if len(q_c) <= MIN_CELL_SAMPLES or len(p_c) == 0 or len(t_c) == 0:
            continue
        l_q, _ = nearest(q_c, t_c, 1)
        l_p, _ = nearest(p_c, t_c, 1)
        weights.append(len(p_c) / len(p))
        scores.append(mann_whitney_z(l_q[:, 0], l_p[:, 0]))
    used = {"cells": cells, "cells_used": len(scores), "pca_dimensions": None if projection is None else projection.shape[1],
            "min_cell_samples": MIN_CELL_SAMPLES + 1}
    if not scores:
        return None, used
    return sum(w * z for w, z in zip(weights, scores)) / sum(weights), used
