"""Multi-layer perceptrons, for 2-D (and other flat) data."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.heads import ScoreHead, check_conditioning, one_hot, pack_samples


def _check_size(hidden: int, depth: int) -> None:
    if hidden < 1 or depth < 1:
        raise ConfigError(f"MLP sizes must be positive: got hidden={hidden}, depth={depth}.")


def _check_scale(scale: float) -> None:
    if not scale > 0:
        raise ConfigError(f"model.data_scale must be positive: got {scale}; use the data's spread, e.g. 1.0 or 4.0.")


def _mlp(in_dim: int, hidden: int, depth: int, activation, batch_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(in_dim if i == 0 else hidden, hidden, bias=not batch_norm)
        layers += [linear, nn.BatchNorm1d(hidden), activation()] if batch_norm else [linear, activation()]
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G(z, y): [z, onehot(y)] -> `depth` hidden ReLU layers (BatchNorm before each ReLU with
    `batch_norm`, as in PacGAN's 2-D generator) -> a sample of `out_shape`, times `scale`.

    `scale` lets the network work in standardized units: grid25 spans +-4, so its points are
    4 network units per data unit apart in a network whose initial outputs are ~0.1."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 16, hidden: int = 128, depth: int = 3,
                 num_classes: int = 0, batch_norm: bool = False, scale: float = 1.0):
        super().__init__()
        _check_size(hidden, depth)
        _check_scale(scale)
        self.out_shape = tuple(out_shape)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.scale = float(scale)
        self.body = _mlp(z_dim + num_classes, hidden, depth, nn.ReLU, batch_norm)
        self.out = nn.Linear(hidden, math.prod(self.out_shape))

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        x = self.out(self.body(z))
        if self.scale != 1.0:
            x = x * self.scale
        return x.view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x, y): `depth` hidden LeakyReLU layers -> a score; options fight mode collapse
    (dropout, minibatch-std diversity feature, PacGAN packing)."""

    def __init__(self, in_shape: Sequence[int], hidden: int = 128, depth: int = 3, num_classes: int = 0,
                 conditioning: str = "concat", dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1,
                 scale: float = 1.0):
        super().__init__()
        _check_size(hidden, depth)
        _check_scale(scale)
        self.scale = float(scale)
        check_conditioning(num_classes, conditioning, pack)
        self.num_classes = num_classes
        self.concat = bool(num_classes) and conditioning == "concat"
        self.pack = pack
        in_dim = math.prod(in_shape) * pack + (num_classes if self.concat else 0)
        self.body = _mlp(in_dim, hidden, depth, lambda: nn.LeakyReLU(0.2))
        self.head = ScoreHead(hidden, num_classes, conditioning, dropout, minibatch_std)

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = x.flatten(1)
        if self.scale != 1.0:
            h = h / self.scale
        h = pack_samples(h, self.pack)
        if self.concat:
            h = torch.cat([h, one_hot(y, self.num_classes, h)], dim=1)
        return self.head(self.body(h), y)
