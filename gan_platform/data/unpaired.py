"""Unpaired two-domain datasets for CycleGAN: `sample(n, generator)` returns `(a_batch, b_batch)`.

The trainer calls ``x, y = dataset.sample(batch_size, generator)``; for an unpaired dataset ``x`` is
a batch of style-A images and ``y`` an independent batch of style-B images (not labels), both
float in [-1, 1] of the same shape. No pairing exists: the two batches are drawn separately.

`unpaired_folders` reads CycleGAN's own layout, so the public sets (horse2zebra, monet2photo,
summer2winter_yosemite, ...) work as downloaded and unzipped::

    ROOT/trainA/*.jpg  ROOT/trainB/*.jpg  [ROOT/testA/  ROOT/testB/]

Training images are stored at `load_size` and cropped to `resolution` when sampled (``crop:
random``, with optional horizontal flips: the paper's 286 -> 256 jitter) or once at load time
(``crop: center``). The test folders (or, without them, the training images) serve evaluation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor

from gan_platform.data.base import TensorDataset, decode_uint8
from gan_platform.data.images import check_folder, list_images, load_images
from gan_platform.errors import ConfigError, UserError

CROPS = ("center", "random")


class UnpairedDataset:
    """Two image domains A and B kept as uint8 tensors on one device, sampled independently.

    train_a/train_b: what training samples; test_a/test_b: what evaluation translates.
    `true_a2b` (when known, as for `digit_styles`) is the exact style-A -> style-B mapping on
    [-1, 1] images, and `labels_*` the digit classes of the test images, for exact scoring.
    """

    unpaired = True
    kind = "images"
    labelled = False
    num_classes = None
    # domain -> function mapping [-1, 1] images of that style to (N, 1, R, R) grey digits with bright
    # ink on dark, the form the digit classifier reads; None where the images are not digits.
    digit_view: Optional[dict[str, Callable[[Tensor], Tensor]]] = None

    def __init__(self, name: str, train_a: Tensor, train_b: Tensor, test_a: Tensor, test_b: Tensor, *,
                 resolution: Optional[int] = None, crop: str = "center", flip: bool = False,
                 true_a2b: Optional[Callable[[Tensor], Tensor]] = None,
                 test_labels_a: Optional[Tensor] = None, test_labels_b: Optional[Tensor] = None,
                 test_from_train: bool = False):
        if crop not in CROPS:
            raise ConfigError(f"dataset.crop must be one of {', '.join(CROPS)}, got '{crop}'.")
        if train_a.shape[1] != train_b.shape[1]:
            raise ConfigError(f"Dataset '{name}' has {train_a.shape[1]}-channel A and {train_b.shape[1]}-channel B images: set dataset.channels.")
        self.name = name
        self.domains = {"a": TensorDataset(f"{name}/A", train_a), "b": TensorDataset(f"{name}/B", train_b)}
        self.test = {"a": test_a, "b": test_b}
        self.test_labels = {"a": test_labels_a, "b": test_labels_b}
        self.resolution = int(resolution or train_a.shape[-1])
        self.crop, self.flip = crop, bool(flip)
        self.true_a2b = true_a2b
        self.test_from_train = test_from_train
        self.device = train_a.device

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """(C, resolution, resolution): the shape of one training sample of either domain."""
        return (int(self.domains["a"].x.shape[1]), self.resolution, self.resolution)

    def __len__(self) -> int:
        return max(len(d) for d in self.domains.values())

    def to(self, device: torch.device) -> "UnpairedDataset":
        for d in self.domains.values():
            d.to(device)
        self.test = {k: v.to(device) for k, v in self.test.items()}
        self.test_labels = {k: (v.to(device) if v is not None else None) for k, v in self.test_labels.items()}
        self.device = torch.device(device)
        return self

    def shard(self, rank: int, world_size: int) -> "UnpairedDataset":
        """Disjoint training images per process, in each domain."""
        for d in self.domains.values():
            d.shard(rank, world_size)
        return self

    def _augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Random crop to `resolution` and random horizontal flip, per sample (uint8 in, uint8 out)."""
        n, r, size = len(x), self.resolution, x.shape[-1]
        if self.crop == "random" and size > r:
            offsets = torch.randint(size - r + 1, (n, 2), generator=generator, device=x.device).tolist()
            x = torch.stack([img[:, i:i + r, j:j + r] for img, (i, j) in zip(x, offsets)])
        elif size > r:
            start = (size - r) // 2
            x = x[:, :, start:start + r, start:start + r]
        if self.flip:
            mirror = torch.rand(n, generator=generator, device=x.device) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x

    def _draw(self, domain: str, n: int, generator: torch.Generator) -> Tensor:
        d = self.domains[domain]
        pool = len(d) if d._index is None else len(d._index)
        idx = torch.randint(pool, (n,), generator=generator, device=self.device)
        if d._index is not None:
            idx = d._index[idx]
        return d.decode(self._augment(d.x[idx], generator))

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """(a_batch, b_batch): n style-A and n style-B images in [-1, 1], drawn independently."""
        return self._draw("a", n, generator), self._draw("b", n, generator)

    def test_images(self, domain: str, limit: Optional[int] = None) -> Tensor:
        """Up to `limit` evaluation images of `domain` ("a" or "b"), in order, in [-1, 1]."""
        x = self.test[domain]
        x = x[: limit] if limit is not None else x
        return decode_uint8(x)


def _center(x: Tensor, r: int) -> Tensor:
    """The central r x r crop of square images."""
    start = (x.shape[-1] - r) // 2
    return x[:, :, start:start + r, start:start + r].contiguous()


def _load_domain(root: Path, sub: str, size: int, channels: int, on_corrupt: str, required: bool) -> Optional[Tensor]:
    folder = root / sub
    if not folder.is_dir():
        if required:
            raise UserError(f"The CycleGAN dataset '{root}' has no {sub}/ folder: put the style-{sub[-1]} training "
                            "images in ROOT/trainA/ and ROOT/trainB/ (the layout of the public CycleGAN sets).")
        return None
    paths = list_images(folder)
    if not paths:
        raise UserError(f"The folder '{folder}' holds no images (.png, .jpg, ...): add images or remove the folder.")
    x, _ = load_images(paths, size, channels, on_corrupt, desc=f"{root.name}/{sub}")
    if len(x) == 0:
        raise UserError(f"None of the {len(paths)} files in '{folder}' could be read as an image: replace them.")
    return x


def unpaired_folders(root: str = "datasets/horse2zebra", resolution: int = 64, load_size: Optional[int] = None,
                     crop: str = "center", flip: bool = False, channels: int = 3, on_corrupt: str = "skip",
                     max_images: int = 0) -> UnpairedDataset:
    """CycleGAN's trainA/trainB[/testA/testB] folders at `resolution` (see the module docstring).

    load_size: short side the training images are resized to before cropping (default
    `resolution`); max_images: keep at most this many images a domain (0 = all).
    """
    base = check_folder(root)
    load = int(load_size or resolution)
    if load < resolution:
        raise ConfigError(f"dataset.load_size ({load}) must be at least dataset.resolution ({resolution}).")
    train = {d: _load_domain(base, f"train{d.upper()}", load, channels, on_corrupt, True) for d in "ab"}
    test = {d: _load_domain(base, f"test{d.upper()}", resolution, channels, on_corrupt, False) for d in "ab"}
    if max_images > 0:
        train = {d: x[:max_images] for d, x in train.items()}
        test = {d: (x[:max_images] if x is not None else None) for d, x in test.items()}
    from_train = any(x is None for x in test.values())
    if from_train:  # no test folders: evaluate on the training images, centre-cropped
        test = {d: _center(train[d], resolution) for d in "ab"}
    return UnpairedDataset(base.name, train["a"], train["b"], test["a"], test["b"], resolution=resolution,
                           crop=crop, flip=flip, test_from_train=from_train)
