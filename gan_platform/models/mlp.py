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


def _mlp(in_dim: int, hidden: int, depth: int, activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), activation()]
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G(z, y): [z, onehot(y)] -> `depth` hidden ReLU layers -> a sample of `out_shape`."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 16, hidden: int = 128, depth: int = 3,
                 num_classes: int = 0):
        super().__init__()
        _check_size(hidden, depth)
        self.out_shape = tuple(out_shape)
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.body = _mlp(z_dim + num_classes, hidden, depth, nn.ReLU)
        self.out = nn.Linear(hidden, math.prod(self.out_shape))

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        return self.out(self.body(z)).view(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x, y): `depth` hidden LeakyReLU layers -> a score; options fight mode collapse
    (dropout, minibatch-std diversity feature, PacGAN packing)."""

    def __init__(self, in_shape: Sequence[int], hidden: int = 128, depth: int = 3, num_classes: int = 0,
                 conditioning: str = "concat", dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1):
        super().__init__()
        _check_size(hidden, depth)
        check_conditioning(num_classes, conditioning, pack)
        self.num_classes = num_classes
        self.concat = bool(num_classes) and conditioning == "concat"
        self.pack = pack
        in_dim = math.prod(in_shape) * pack + (num_classes if self.concat else 0)
        self.body = _mlp(in_dim, hidden, depth, lambda: nn.LeakyReLU(0.2))
        self.head = ScoreHead(hidden, num_classes, conditioning, dropout, minibatch_std)

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = pack_samples(x.flatten(1), self.pack)
        if self.concat:
            h = torch.cat([h, one_hot(y, self.num_classes, h)], dim=1)
        return self.head(self.body(h), y)
