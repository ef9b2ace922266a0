"""The one dataset shape the platform trains on: tensors in memory, sampled by index.

Why not a `DataLoader`: every dataset a GAN run here uses (2-D mixtures, digits, MNIST, CIFAR-10,
CycleGAN's few thousand images) fits in memory as uint8, so keeping it as one tensor on the
training device and drawing random indices from a seeded generator is faster than a loader (no
worker processes, no host-to-device copy per step), exactly reproducible, and trivially resumable:
the sampler's whole state is one generator state. Ranks of a multi-process run draw from disjoint
shards of the index space (`shard`).

Images are stored as uint8 (N, C, H, W) and handed out as float in [-1, 1]; 2-D points are stored
as float (N, 2) in their own coordinates. A dataset whose samples are generated (the Gaussian
mixtures, stacked digits) overrides `sample`.

Mirroring (`mirror=True`, stylegan2-ada's `--mirror`) doubles an image set with its x-flips: the
sampler draws from 2N indices, index N + i being stored image i flipped left to right, so every
image is also trained on mirrored and the draw is still one `randint` from the same generator.
The stored set (`len`, `all`, the real statistics) stays the N images as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor

from gan_platform.errors import ConfigError

REAL_SUBSET_SEED = 0  # the real statistics' subset is the same in every run, whatever the run's seed


@dataclass(frozen=True)
class Evaluation:
    """How a dataset is measured, declared by the dataset: the evaluators read it and match no names.

    features     what `eval.features=auto` picks: "identity" (the samples themselves, for points),
                 "digits" (the shipped digit classifier, for digit images), "inception" (other images)
    collapse     the mode-collapse count it supports: None, "mixture" (the modes of a Gaussian mixture:
                 the dataset has `means` and `sigma`) or "stacked_digits" (1,000 modes read channel by channel)
    num_samples  generated samples per evaluation for `eval.num_samples=auto`
    held_out     the real statistics come from a fixed seeded draw beside the training stream (generated
                 data) rather than the stored training set
    best_metric  `eval.best_metric=auto`'s choice where it is not the FID of the features
    """

    features: str = "inception"
    collapse: Optional[str] = None
    num_samples: int = 2000
    held_out: bool = False
    best_metric: Optional[str] = None


POINTS = Evaluation(features="identity", num_samples=2500)  # the VEEGAN/PacGAN protocol: 2,500 samples
DIGITS = Evaluation(features="digits")


def evaluation_of(dataset: Any) -> Evaluation:
    """The dataset's declared `evaluation`, or the default for its kind (a dataset of one's own, built
    by `_target_`, need not declare one)."""
    declared = getattr(dataset, "evaluation", None)
    if isinstance(declared, Evaluation):
        return declared
    return POINTS if getattr(dataset, "kind", "images") == "points" else Evaluation()


def decode_uint8(x: Tensor) -> Tensor:
    """uint8 images to float32 in [-1, 1], the same bits on every device. CUDA divides a tensor by a
    scalar as a product with the scalar's reciprocal, one ulp away from the CPU's division for some
    pixels; multiplying by the float32 reciprocal everywhere makes real_sha256 name the same images
    on a CPU and a GPU (an H100's real_sha256 of a test folder, decoded by division, was this
    product's on the CPU)."""
    return x.float().mul_(1.0 / 127.5).sub_(1.0)


def check_mirror(name: str, kind: str, mirror: bool) -> None:
    """Only images mirror: one sentence for anything else."""
    if mirror and kind != "images":
        raise ConfigError(f"dataset.mirror flips images left to right, and dataset '{name}' holds {kind}: "
                          "set dataset.mirror=false.")


class TensorDataset:
    """Samples (x, y) batches from tensors kept on one device.

    kind: "points" (x is float (N, D)) or "images" (x is uint8 (N, C, H, W), returned in [-1, 1]).
    labels: int64 (N,) or None for unlabelled data; `num_classes` is then None.
    source: where a packed set came from (packed/build.py), whose `protocol()` names the file and its
    SHA-256 for the evaluation's protocol; None for the rest.
    """

    source: Any = None

    def __init__(
        self,
        name: str,
        x: Tensor,
        labels: Optional[Tensor] = None,
        num_classes: Optional[int] = None,
        kind: str = "images",
        class_names: Optional[list[str]] = None,
        mirror: bool = False,
        evaluation: Optional[Evaluation] = None,
    ):
        if len(x) == 0:
            raise ConfigError(f"Dataset '{name}' is empty: point it at a folder or file that holds samples.")
        check_mirror(name, kind, mirror)
        self.name = name
        self.kind = kind
        self.x = x
        self.labels = labels
        self.num_classes = num_classes if labels is not None else None
        self.class_names = class_names
        self.device = x.device
        self.mirror = bool(mirror)
        self.evaluation = evaluation or (POINTS if kind == "points" else Evaluation())  # how it is measured
        self._index: Optional[Tensor] = None  # this rank's shard of the sample indices

    # -- shape -----------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (2,) for points or (1, 16, 16) for images."""
        return tuple(self.x.shape[1:])

    def protocol(self) -> dict[str, Any]:
        """What names this data in an evaluation's protocol beyond its pixels: a packed set's file and
        content SHA-256 (computed once, when first asked); {} for the rest."""
        return self.source.protocol() if self.source is not None else {}

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        return len(self.x)

    @property
    def pool_size(self) -> int:
        """How many samples the sampler draws from (before sharding): 2N with `mirror`, else N."""
        return len(self) * (2 if self.mirror else 1)

    # -- placement -------------------------------------------------------------------------
    def to(self, device: torch.device) -> "TensorDataset":
        """Move the stored tensors to `device` (the training device)."""
        self.x = self.x.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        if self._index is not None:
            self._index = self._index.to(device)
        self.device = torch.device(device)
        return self

    def shard(self, rank: int, world_size: int) -> "TensorDataset":
        """Restrict sampling to indices rank, rank + world_size, ...: disjoint data per process."""
        if world_size > 1:
            if self.pool_size < world_size:
                raise ConfigError(
                    f"Dataset '{self.name}' has {len(self)} samples, fewer than the {world_size} processes: "
                    "use more data or fewer processes."
                )
            self._index = torch.arange(rank, self.pool_size, world_size, device=self.device)
        return self

    # -- sampling --------------------------------------------------------------------------
    def decode(self, x: Tensor) -> Tensor:
        """Stored form -> training form: uint8 images to float in [-1, 1]; points unchanged."""
        if x.dtype == torch.uint8:
            return decode_uint8(x)
        return x.float()

    def draw(self, n: int, generator: torch.Generator) -> Tensor:
        """n sample indices in [0, pool_size), uniform with replacement over this rank's shard."""
        pool = self.pool_size if self._index is None else len(self._index)
        idx = torch.randint(pool, (n,), generator=generator, device=self.device)
        return self._index[idx] if self._index is not None else idx

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Optional[Tensor]]:
        """A batch of n samples drawn uniformly with replacement, with labels (or None)."""
        idx = self.draw(n, generator)
        stored = idx % len(self) if self.mirror else idx
        y = self.labels[stored] if self.labels is not None else None
        x = self.x[stored]
        if self.mirror:
            x = torch.where((idx >= len(self)).view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
        return self.decode(x), y

    def subset_indices(self, limit: Optional[int] = None) -> Optional[Tensor]:
        """`limit` distinct stored indices in stored order, drawn with a fixed seed (REAL_SUBSET_SEED):
        the same in every run and spread over the whole set (an image folder is stored class by
        class, so its first files are one class); None when `limit` takes every sample."""
        if limit is None or limit >= len(self):
            return None
        g = torch.Generator().manual_seed(REAL_SUBSET_SEED)
        return torch.randperm(len(self), generator=g)[:limit].sort().values.to(self.device)

    def all(self, limit: Optional[int] = None) -> tuple[Tensor, Optional[Tensor]]:
        """Every stored sample (decoded), or a fixed seeded subset of `limit` (`subset_indices`), for
        evaluation's real statistics."""
        idx = self.subset_indices(limit)
        x = self.x if idx is None else self.x[idx]
        y = self.labels if self.labels is None or idx is None else self.labels[idx]
        return self.decode(x), y
