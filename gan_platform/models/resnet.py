"""SNGAN's ResNet networks for square images of side 8, 16, 32, 64, ... (Miyato et al. 2018,
"Spectral Normalization for Generative Adversarial Networks", the CIFAR-10 ResNet of its appendix,
as Mimicry and StudioGAN build it).

G: z -> linear -> (width, 4, 4) -> n x UpBlock -> BN, ReLU, conv 3x3 -> tanh, n = log2(R / 4);
   UpBlock(x) = conv3x3(ReLU(BN(conv3x3(up(ReLU(BN(x))))))) + conv1x1(up(x)), up: nearest x 2.
D: FirstBlock -> DownBlocks to 8 x 8 -> two Blocks at 8 x 8 -> ReLU -> sum over H, W -> ScoreHead;
   Block(x) = conv3x3(ReLU(conv3x3(ReLU(x)))) + x, or with a 1x1 convolution on the shortcut and
   both paths average-pooled 2 x 2 when it down-samples (DownBlock);
   FirstBlock(x) = pool(conv3x3(ReLU(conv3x3(x)))) + conv1x1(pool(x)): no ReLU on the image
   (SNGAN's "optimized" block; it does not pool at side 8).
At 32 x 32 that is SNGAN's layout: three up-sampling blocks in G; in D the first block (32 -> 16),
one down-sampling block (16 -> 8) and two blocks at 8 x 8. The width (channels) is the same in every
block (SNGAN: 256 in G, 128 in D). D has no normalisation layer: spectral norm (`spectral_norm`,
every layer, the head included) keeps it Lipschitz. Weights start Glorot-uniform, with gain sqrt(2)
on the residual convolutions, as in SNGAN's code. Conditioning, packing and the diversity feature
are the DCGAN's (heads.py): G appends the one-hot class to z; D appends it to its input as
channels (`concat`) or projects it onto the pooled features (`projection`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import ScoreHead, check_conditioning, image_input, one_hot, spectral_normalise
from gan_platform.models.shapes import image_network


def _conv(c_in: int, c_out: int, k: int, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, 1, k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


class UpBlock(nn.Module):
    """G's residual block: doubles the side."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), _conv(c_in, c_out, 3, math.sqrt(2))
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Block(nn.Module):
    """D's residual block, pre-activation; `down` halves the side. `first` is SNGAN's optimized
    first block: no ReLU on the image, the shortcut pools before its convolution."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = _conv(c_in, c_out, 3, math.sqrt(2)), _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1) if (down or first or c_in != c_out) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        s = x
        if self.first:
            s = self.shortcut(F.avg_pool2d(s, 2) if self.down else s)
        elif self.shortcut is not None:
            s = self.shortcut(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return (F.avg_pool2d(h, 2) if self.down else h) + s


class ResNetGenerator(nn.Module):
    """G(z, y) for images of `out_shape` (C, R, R), values in [-1, 1]."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 128, width: int = 256, num_classes: int = 0):
        super().__init__()
        channels, side, n = image_network(out_shape, width, "resnet", "generator")
        self.z_dim, self.num_classes, self.out_shape, self.width = z_dim, num_classes, tuple(out_shape), width
        self.project = nn.Linear(z_dim + num_classes, width * 16)
        nn.init.xavier_uniform_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.blocks = nn.Sequential(*(UpBlock(width, width) for _ in range(n)))
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), _conv(width, channels, 3), nn.Tanh())

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, one_hot(y, self.num_classes, z)], dim=1)
        return self.out(self.blocks(self.project(z).view(z.shape[0], self.width, 4, 4)))


class ResNetDiscriminator(nn.Module):
    """D(x, y) for images of `in_shape` (C, R, R): scores (N,), or (N / pack,) when packed; `freeze`
    stops the first residual blocks from training (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], width: int = 128, num_classes: int = 0, conditioning: str = "concat",
                 dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1, spectral_norm: bool = False,
                 freeze: int = 0):
        super().__init__()
        channels, side, doublings = image_network(in_shape, width, "resnet", "discriminator")
        check_conditioning(num_classes, conditioning, pack)
        downs = doublings - 1  # to 8 x 8
        self.num_classes, self.pack = num_classes, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        c_in = channels * pack + (num_classes if self.concat else 0)
        blocks = [Block(c_in, width, down=downs > 0, first=True)]
        blocks += [Block(width, width, down=True) for _ in range(downs - 1)]
        blocks += [Block(width, width, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = ScoreHead(width, num_classes, conditioning, dropout, minibatch_std)
        nn.init.xavier_uniform_(self.head.linear.weight)
        if spectral_norm:
            spectral_normalise(self)
        freeze_blocks(list(self.blocks), freeze, f"resnet's D for {side} x {side} images")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        x = image_input(x, y, self.pack, self.num_classes, self.concat)
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.head(features, y)
