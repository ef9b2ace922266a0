"""DCGAN-style convolutional networks for square images of side 8, 16, 32, 64, ...

G: z -> linear -> (width * 2^n, 4, 4) -> n x [ConvTranspose 4/2/1, BatchNorm, ReLU] -> conv 3x3 -> tanh.
D: n x [conv 4/2/1, norm, LeakyReLU(0.2)] down to 4 x 4 -> flatten -> ScoreHead.

The discriminator has no BatchNorm by default (``norm: none``): a gradient penalty is defined per
sample, which batch statistics break, and under DDP BatchNorm buffers diverge between ranks.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import ScoreHead, check_conditioning, image_input, one_hot, spectral_normalise
from gan_platform.models.shapes import image_network

D_NORMS = ("none", "batch", "layer", "instance", "spectral")


class DCGANGenerator(nn.Module):
    """G(z, y) for images of `out_shape` (C, R, R), values in [-1, 1]."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 64, width: int = 32, num_classes: int = 0):
        super().__init__()
        channels, resolution, n = image_network(out_shape, width, "dcgan", "generator")
        self.z_dim, self.num_classes, self.out_shape = z_dim, num_classes, tuple(out_shape)
        c0 = width * 2**n
        self.project = nn.Sequential(nn.Linear(z_dim + num_classes, c0 * 16), nn.BatchNorm1d(c0 * 16), nn.ReLU(True))
        self.c0 = c0
        blocks: list[nn.Module] = []
        for i in range(n):
            c = c0 // 2**i
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        blocks += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        return self.body(self.project(z).view(z.shape[0], self.c0, 4, 4))


def _d_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class DCGANDiscriminator(nn.Module):
    """D(x, y) for images of `in_shape` (C, R, R). `spectral_norm` normalises every layer, the head
    included; ``norm: spectral`` normalises the convolutions only. `freeze` stops the first blocks
    (each strided convolution with its norm and activation) from training (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], width: int = 32, norm: str = "none", num_classes: int = 0,
                 conditioning: str = "concat", dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1,
                 spectral_norm: bool = False, freeze: int = 0):
        super().__init__()
        channels, resolution, n = image_network(in_shape, width, "dcgan", "discriminator")
        check_conditioning(num_classes, conditioning, pack)
        if norm not in D_NORMS:
            raise ConfigError(f"Unknown model.discriminator.norm '{norm}': choose one of {', '.join(D_NORMS)}.")
        self.num_classes, self.pack = num_classes, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        c_in = channels * pack + (num_classes if self.concat else 0)
        layers: list[nn.Module] = []
        c = width
        for i in range(n):
            conv = nn.Conv2d(c_in if i == 0 else c // 2, c, 4, 2, 1)
            if norm == "spectral":
                conv = nn.utils.parametrizations.spectral_norm(conv)
            layers += [conv, _d_norm(norm if i else "none", c), nn.LeakyReLU(0.2, True)]
            c *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = ScoreHead((c // 2) * 16, num_classes, conditioning, dropout, minibatch_std)
        if spectral_norm:
            spectral_normalise(self)
        freeze_blocks([self.body[3 * i:3 * i + 3] for i in range(n)], freeze,
                      f"dcgan's D for {resolution} x {resolution} images")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        x = image_input(x, y, self.pack, self.num_classes, self.concat)
        return self.head(self.body(x), y)
