"""Multi-layer perceptrons, for 2-D (and other flat) data."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import ScoreHead, check_conditioning, one_hot, pack_samples, spectral_normalise


def _check_size(hidden: int, depth: int) -> None:
    if hidden < 1 or depth < 1:
        raise ConfigError(f"MLP sizes must be positive: got hidden={hidden}, depth={depth}.")


def _scale_buffer(module: nn.Module, scale: float) -> None:
    """`scale` as a buffer: it travels in the state dict, so whatever loads the weights (resume,
    gan_platform.sample) gets the units they were trained in."""
    if not float(scale) > 0:
        raise ConfigError(f"model.data_scale must be positive: got {scale}; use auto or the data's radius, e.g. 4.0.")
    module.register_buffer("scale", torch.tensor(float(scale)))


def _mlp(in_dim: int, hidden: int, depth: int, activation, batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(in_dim if i == 0 else hidden, hidden, bias=not batch_norm)
        layers += [linear, nn.BatchNorm1d(hidden), activation()] if batch_norm else [linear, activation()]
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G(z, y): [z, onehot(y)] -> `depth` hidden ReLU layers (BatchNorm before each ReLU with
    `batch_norm`, as in PacGAN's 2-D generator) -> a sample of `out_shape`, times `scale`.

    `scale` lets the network work in standardized units: grid25's modes reach +-4, while a fresh
    network's outputs are ~0.1 and its kinks lie within ~1 of the origin; at scale 4 the grid is
    [-1, 1]^2 to both networks."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 16, hidden: int = 128, depth: int = 3,
                 num_classes: int = 0, batch_norm: bool = False, scale: float = 1.0):
        super().__init__()
        _check_size(hidden, depth)
        _scale_buffer(self, scale)
        self.out_shape = tuple(out_shape)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.body = _mlp(z_dim + num_classes, hidden, depth, nn.ReLU, batch_norm)
        self.out = nn.Linear(hidden, math.prod(self.out_shape))

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        return (self.out(self.body(z)) * self.scale).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x, y): `depth` hidden LeakyReLU layers -> a score; options fight mode collapse
    (dropout, minibatch-std diversity feature, PacGAN packing); `spectral_norm` normalises every layer;
    `freeze` stops the first hidden layers from training (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], hidden: int = 128, depth: int = 3, num_classes: int = 0,
                 conditioning: str = "concat", dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1,
                 scale: float = 1.0, spectral_norm: bool = False, freeze: int = 0):
        super().__init__()
        _check_size(hidden, depth)
        _scale_buffer(self, scale)
        check_conditioning(num_classes, conditioning, pack)
        self.num_classes = num_classes
        self.concat = bool(num_classes) and conditioning == "concat"
        self.pack = pack
        in_dim = math.prod(in_shape) * pack + (num_classes if self.concat else 0)
        self.body = _mlp(in_dim, hidden, depth, lambda: nn.LeakyReLU(0.2))
        self.head = ScoreHead(hidden, num_classes, conditioning, dropout, minibatch_std)
        if spectral_norm:
            spectral_normalise(self)
        freeze_blocks([self.body[2 * i:2 * i + 2] for i in range(depth)], freeze, f"the MLP D of depth {depth}")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = pack_samples(x.flatten(1) / self.scale, self.pack)
        if self.concat:
            h = torch.cat([h, one_hot(y, self.num_classes, h)], dim=1)
        return self.head(self.body(h), y)
