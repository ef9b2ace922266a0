"""Memorisation checks: does G copy its training images? (copying.py: AuthPct, C_T, nn_ratio;
neighbours.py: exact nearest-neighbour search; picture.py: `nearest_neighbours.png`.)

`CopyCheck` holds what every check compares against, computed once: the training samples'
features and images (the real statistics' samples: the training set, or its fixed subset), each
training sample's distance to its nearest other one, and held-out real features when given. Its
`measure(features)` gives `memorization/authpct`, `memorization/nn_ratio` and, with held-out
images, `memorization/ct`; `neighbours(...)` the rows of the picture.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor

from gan_platform.evaluation.memorization.copying import authenticity_percent, data_copying_ct, nn_ratio
from gan_platform.evaluation.memorization.neighbours import nearest

CT_CELLS = 10  # eval.ct_cells: k-means cells of C_T


class CopyCheck:
    """AuthPct, C_T and nn_ratio of generated features against a fixed training set."""

    def __init__(self, train_features: Tensor, train_u8: Tensor, heldout_features: Optional[Tensor] = None,
                 cells: int = CT_CELLS, backend: str = "auto"):
        self.train, self.train_u8, self.heldout = train_features, train_u8, heldout_features
        self.cells, self.backend = int(cells), backend
        self.train_to_train = nearest(train_features, train_features, 1, exclude_self=True, backend=backend)[0][:, 0]
        self.reference: dict[str, float] = {}
        self.ct_used: dict[str, Any] = {}
        if heldout_features is not None:  # what unseen real images score: the level a generator is read against
            self.reference = {f"heldout_{k.split('/')[-1]}": v for k, v in self.measure(heldout_features, ct=False).items()}

    @torch.no_grad()
    def measure(self, features: Tensor, ct: bool = True) -> dict[str, float]:
        dist, idx = nearest(features, self.train, 1, backend=self.backend)
        out = {"memorization/authpct": authenticity_percent(dist[:, 0], idx[:, 0], self.train_to_train),
               "memorization/nn_ratio": nn_ratio(dist[:, 0], self.train_to_train)}
        if ct and self.heldout is not None:
            value, self.ct_used = data_copying_ct(self.train, self.heldout, features, self.cells)
            if value is not None:
                out["memorization/ct"] = value
        return out

    @torch.no_grad()
    def neighbours(self, features: Tensor, images_u8: Tensor, k: int, m: int = 3) -> dict[str, Any]:
        """The `k` generated samples nearest the training set (by feature distance), each with its `m`
        nearest training images in feature space and in pixel space: indices and distances."""
        m = min(m, len(self.train))
        first, _ = nearest(features, self.train, 1, backend=self.backend)
        chosen = first[:, 0].argsort()[: min(k, len(features))]
        by_features = nearest(features[chosen], self.train, m, backend=self.backend)
        pixels = lambda x: x.float().flatten(1) / 127.5 - 1  # noqa: E731 - [-1, 1], the generator's form
        shown = images_u8[chosen.to(images_u8.device)].cpu()
        by_pixels = nearest(pixels(shown), pixels(self.train_u8), m, backend=self.backend)
        return {"samples": chosen.cpu(), "images": shown,
                "features": tuple(t.cpu() for t in by_features), "pixels": tuple(t.cpu() for t in by_pixels)}

    def protocol(self) -> dict[str, Any]:
        out: dict[str, Any] = {"training_samples": len(self.train), "nn_search": self.backend,
                               "heldout_samples": None if self.heldout is None else len(self.heldout)}
        if self.heldout is None:
            out["ct"] = "not reported: C_T needs held-out real images (eval.heldout or --heldout)"
        else:
            out.update({"ct_cells": self.cells, **self.reference})
        return out


def neighbours_record(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The picture's rows as JSON: sample index, then [training index, distance] by features and by pixels."""
    rows = []
    for r, sample in enumerate(found["samples"].tolist()):
        rows.append({"sample": sample, **{space: [[int(i), float(d)] for d, i in zip(found[space][0][r], found[space][1][r])]
                                          for space in ("features", "pixels")}})
    return rows
