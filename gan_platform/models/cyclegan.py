"""CycleGAN's networks (Zhu et al. 2017): a ResNet generator and a PatchGAN discriminator.

Generator, image -> image of the same size (the paper's c7s1-64, d128, d256, R256 x 9, u128,
u64, c7s1-3 is ``width=64, downsample=2, blocks=9``):

    reflect-pad 3, conv 7x7 -> `downsample` x [conv 3x3 stride 2]  (channels double each time)
    -> `blocks` x residual block [reflect-pad, conv 3x3, IN, ReLU, reflect-pad, conv 3x3, IN] + skip
    -> `downsample` x [transposed conv 3x3 stride 2]  (channels halve) -> reflect-pad 3, conv 7x7 -> tanh

with instance norm and ReLU after every inner convolution. Discriminator (the paper's 70x70
PatchGAN C64-C128-C256-C512 is ``width=64, layers=3``): `layers` x [conv 4x4 stride 2, IN,
LeakyReLU(0.2)] (no norm on the first), conv 4x4 stride 1, IN, LeakyReLU, conv 4x4 stride 1 -> one
score per overlapping patch, (N, 1, h, w). The losses average over patches.

Weights start from N(0, 0.02) as in the paper's code.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import spectral_normalise
from gan_platform.models.shapes import square_image


# Both networks translate images: square ones, cropped to `dataset.resolution` by the folders' loader.
SQUARE_FIX = "give both styles image datasets cropped square (dataset.resolution)"


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """N(0, std) weights and zero biases for every convolution (the paper's initialisation)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResidualBlock(nn.Module):
    """x + [pad, conv 3x3, IN, ReLU, pad, conv 3x3, IN](x)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """G: images of `in_shape` (C, R, R) in [-1, 1] -> images of `out_shape` (default the same)."""

    def __init__(self, in_shape: Sequence[int], out_shape: Optional[Sequence[int]] = None, width: int = 16,
                 blocks: int = 3, downsample: int = 2):
        super().__init__()
        c_in, resolution = square_image(in_shape, "cyclegan", SQUARE_FIX)
        c_out = square_image(out_shape, "cyclegan", SQUARE_FIX)[0] if out_shape is not None else c_in
        if width < 1 or blocks < 0 or downsample < 0:
            raise ConfigError("model.generator.width must be positive and blocks, downsample zero or more.")
        if resolution % 2**downsample or resolution // 2**downsample < 2:
            raise ConfigError(f"model.generator.downsample={downsample} halves {resolution}-pixel images too often: "
                              f"use at most {max(0, (resolution // 2).bit_length() - 1)} for this resolution.")
        if resolution <= 3:
            raise ConfigError(f"model=cyclegan needs images of at least 4 pixels a side, got {resolution}.")
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, width, 7), nn.InstanceNorm2d(width), nn.ReLU(True)]
        c = width
        for _ in range(downsample):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), nn.InstanceNorm2d(2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResidualBlock(c) for _ in range(blocks)]
        for _ in range(downsample):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, c_out, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class PatchDiscriminator(nn.Module):
    """D: images of `in_shape` (C, R, R) -> a map of patch scores (N, 1, h, w); `spectral_norm`
    normalises every convolution (models/heads.py); `freeze` stops the first `freeze` of its
    `layers` + 1 convolutions before the last (each with its norm and activation) from training
    (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], width: int = 16, layers: int = 2, spectral_norm: bool = False,
                 freeze: int = 0):
        super().__init__()
        channels, resolution = square_image(in_shape, "cyclegan", SQUARE_FIX)
        if width < 1 or layers < 1:
            raise ConfigError("model.discriminator.width and model.discriminator.layers must be positive.")
        if resolution // 2**layers < 3:
            raise ConfigError(f"model.discriminator.layers={layers} shrinks {resolution}-pixel images below one patch: "
                              "lower model.discriminator.layers.")
        body: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(layers - 1):
            body += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.InstanceNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c *= 2
        body += [nn.Conv2d(c, 2 * c, 4, 1, 1), nn.InstanceNorm2d(2 * c), nn.LeakyReLU(0.2, True),
                 nn.Conv2d(2 * c, 1, 4, 1, 1)]
        self.body = nn.Sequential(*body)
        init_normal(self)
        if spectral_norm:
            spectral_normalise(self)
        starts = [0, *range(2, 3 * layers + 2, 3)]  # [conv, act], then layers x [conv, IN, act]; the last conv scores
        freeze_blocks([self.body[a:b] for a, b in zip(starts, starts[1:] + [len(self.body) - 1])], freeze,
                      f"cyclegan's PatchGAN D of {layers} layers")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)
