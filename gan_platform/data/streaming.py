"""An image folder larger than memory, streamed from disk: DataLoader workers decode ahead of the
training step, into pinned memory when the run is on a GPU.

Small sets stay in memory (base.TensorDataset: no workers, no copies, the fastest). This dataset
keeps only the file list and the labels. `sample(n, generator)` draws the batch's indices from the
trainer's generator exactly as the in-memory dataset does, so one seed trains on the same images in
the same order either way, and the sampler's whole state is still that generator's state: a resumed
run continues bit for bit. To read ahead, the DataLoader is fed a *plan*: the indices the coming
batches will draw, computed from a copy of the generator. Each batch the loader hands back is checked
against the indices actually drawn, and the plan restarts from the generator's current state
whenever they differ (the first batch, after a resume, a change of batch size), so reading ahead
never changes what is trained on.

An unreadable file is found only when a batch needs it: `on_corrupt=error` stops the run with one
sentence naming it; `skip` shows the next readable file of the folder in its place, with one warning
per file.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gan_platform.data.base import TensorDataset, decode_uint8
from gan_platform.data.images import load_images, stack_arrays, to_array
from gan_platform.errors import UserError

log = logging.getLogger(__name__)
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError)


def read_image(path: Path, resolution: int, channels: int) -> Optional[np.ndarray]:
    """One file as uint8 (C, R, R), the in-memory loader's conversion; None when it cannot be read."""
    try:
        with Image.open(path) as image:
            image.load()
            return to_array(image, resolution, channels)
    except UNREADABLE:
        return None


class _Files(Dataset):
    """index -> (index, image or None): what a DataLoader worker decodes."""

    def __init__(self, files: list[Path], resolution: int, channels: int):
        self.files, self.resolution, self.channels = files, resolution, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[int, Optional[np.ndarray]]:
        return i, read_image(self.files[i], self.resolution, self.channels)


def _collate(items: list[tuple[int, Optional[np.ndarray]]], shape: tuple[int, ...]) -> tuple[Tensor, Tensor, list[int]]:
    """(indices, images stacked as the in-memory set stacks them, positions of unreadable files)."""
    blank = np.zeros(shape, dtype=np.uint8)
    return (torch.tensor([i for i, _ in items]), stack_arrays([blank if a is None else a for _, a in items]),
            [k for k, (_, a) in enumerate(items) if a is None])


class _Plan:
    """The batches of stored indices the trainer's generator will draw, from a copy of its state."""

    def __init__(self, state: Tensor, n: int, pool: int, index: Optional[Tensor]):
        self.generator = torch.Generator().manual_seed(0)
        self.generator.set_state(state)
        self.n, self.pool, self.index = n, pool, index

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            idx = torch.randint(self.pool, (self.n,), generator=self.generator)
            yield (self.index[idx] if self.index is not None else idx).tolist()


class StreamingImages(TensorDataset):
    """An image folder read from disk batch by batch (see the module docstring). It shares the
    in-memory dataset's sampling rules (`shard`, `subset_indices`) but stores no pixels: indices
    are drawn on the CPU and batches are moved to the training device (`to`)."""

    def __init__(self, name: str, files: list[Path], labels: Optional[Tensor], num_classes: Optional[int],
                 class_names: Optional[list[str]], resolution: int, channels: int, on_corrupt: str = "skip",
                 workers: int = 4):
        if not files:
            raise UserError(f"Dataset '{name}' is empty: point it at a folder that holds images.")
        # TensorDataset's sampling rules need these attributes; its pixel tensor is not kept.
        self.name, self.kind, self.files = name, "images", list(files)
        self.labels = labels
        self.num_classes = num_classes if labels is not None else None
        self.class_names = class_names
        self.resolution, self.channels, self.on_corrupt, self.workers = resolution, channels, on_corrupt, int(workers)
        self.device = torch.device("cpu")   # where the sampler's generator and indices live
        self.target = torch.device("cpu")   # where batches go: the training device
        self._index: Optional[Tensor] = None
        self._loader: Optional[Iterator] = None
        self._plan_key: Optional[tuple[int, int]] = None
        self._warned: set[int] = set()

    # -- shape and placement -----------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.channels, self.resolution, self.resolution)

    def __len__(self) -> int:
        return len(self.files)

    def to(self, device: torch.device) -> "StreamingImages":
        """Batches go to `device`; indices stay on the CPU, where the files are."""
        self.target = torch.device(device)
        return self

    # -- reading ---------------------------------------------------------------------------
    def _start_from(self, state: Tensor, n: int) -> None:
        """(Re)start the loader on the plan of a generator in `state`, for batches of n."""
        pool = len(self) if self._index is None else len(self._index)
        self._loader = iter(DataLoader(_Files(self.files, self.resolution, self.channels),
                                       batch_sampler=_Plan(state, n, pool, self._index), collate_fn=partial(_collate, shape=self.sample_shape),
                                       num_workers=self.workers,
                                       pin_memory=self.target.type == "cuda", prefetch_factor=2 if self.workers else None,
                                       generator=torch.Generator().manual_seed(0)))  # never draws from the global RNG
        self._plan_key = (n, pool)

    def _readable(self, i: int) -> np.ndarray:
        """File i, or (on_corrupt=skip) the next readable file after it."""
        for step in range(len(self.files)):
            j = (i + step) % len(self.files)
            image = read_image(self.files[j], self.resolution, self.channels)
            if image is not None:
                return image
            if self.on_corrupt == "error":
                raise UserError(f"Cannot read image '{self.files[j]}': remove or replace it, "
                                "or set dataset.on_corrupt=skip to skip unreadable images.")
            if j not in self._warned:
                self._warned.add(j)
                log.warning("Unreadable image '%s': the next readable file of the folder is shown in its place.",
                            self.files[j])
        raise UserError(f"None of the {len(self.files)} files of dataset '{self.name}' can be read as an image.")

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Optional[Tensor]]:
        """A batch of n images drawn uniformly with replacement (the in-memory dataset's draw), with labels."""
        pool = len(self) if self._index is None else len(self._index)
        state = generator.get_state()
        idx = torch.randint(pool, (n,), generator=generator)
        if self._index is not None:
            idx = self._index[idx]
        if self._loader is None or self._plan_key != (n, pool):
            self._start_from(state, n)
        got, images, unreadable = next(self._loader)
        if not torch.equal(got, idx):  # someone else drew from the generator: plan again from here
            self._start_from(state, n)
            got, images, unreadable = next(self._loader)
        for k in unreadable:
            images[k] = torch.from_numpy(np.ascontiguousarray(self._readable(int(idx[k]))).copy())
        y = self.labels[idx].to(self.target) if self.labels is not None else None
        return decode_uint8(images.to(self.target, non_blocking=True)), y

    def all(self, limit: Optional[int] = None) -> tuple[Tensor, Optional[Tensor]]:
        """Every image (decoded), or the fixed seeded subset of `limit`, read now: evaluation's real set."""
        idx = self.subset_indices(limit)
        chosen = list(range(len(self))) if idx is None else idx.tolist()
        x, kept = load_images([self.files[i] for i in chosen], self.resolution, self.channels, self.on_corrupt,
                              desc=f"{self.name} (real statistics)")
        y = None if self.labels is None else self.labels[torch.tensor([chosen[k] for k in kept], dtype=torch.int64)]
        return decode_uint8(x), y

    def __getstate__(self) -> dict[str, Any]:  # a live loader iterator does not pickle
        return {**self.__dict__, "_loader": None, "_plan_key": None}
