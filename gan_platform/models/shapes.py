"""The image shapes the convolutional networks accept: square images whose side is 4 doubled n >= 1
times (8, 16, 32, 64, ...), one rule for DCGAN and the ResNet networks."""

from __future__ import annotations

import math
from typing import Sequence

from gan_platform.errors import ConfigError


def square_image(shape: Sequence[int], model: str, fix: str = "use model=mlp") -> tuple[int, int]:
    """(channels, side) of samples of `shape` (C, H, H), refused in one sentence (ending with `fix`) otherwise."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"model={model} needs square images (C, H, H); this dataset gives samples of shape {tuple(shape)}: {fix}.")
    return int(shape[0]), int(shape[1])


def doublings(side: int, model: str) -> int:
    """n such that side = 4 * 2^n, n >= 1: how many times the networks double 4 x 4 up to the side."""
    n = int(round(math.log2(side / 4))) if side >= 8 else 0
    if side < 8 or 4 * 2**n != side:
        raise ConfigError(f"model={model} needs square images of side 8, 16, 32, 64, ...; got {side}: set dataset.resolution.")
    return n


def image_network(shape: Sequence[int], width: int, model: str, part: str) -> tuple[int, int, int]:
    """(channels, side, doublings) of `model`'s `part` (generator or discriminator) of `width`
    channels for samples of `shape`; each rule refused in one sentence."""
    channels, side = square_image(shape, model)
    if width < 1:
        raise ConfigError(f"model.{part}.width must be positive, got {width}.")
    return channels, side, doublings(side, model)
