"""The layers of R3GAN's networks (models/r3gan.py): the residual block with its fix-up
initialisation, the transitions between stages, G's 4 x 4 basis and D's 4 x 4 head.

Residual block (Huang et al. 2024, Sec. 3, Config E: a ResNeXt block with an inverted bottleneck),
for a stem of C channels, expansion e and cardinality g:

    B(x) = x + W3 phi(W2 phi(W1 x + b1) + b2),    phi = leaky ReLU (slope 0.2)

W1 a 1 x 1 convolution C -> eC, W2 a 3 x 3 convolution eC -> eC in g groups, W3 a 1 x 1
convolution eC -> C without bias. No normalisation layer: the variance is kept by the
initialisation instead (fix-up, Zhang et al. 2019). With L residual blocks in the network and
m = 3 layers in each branch:

    W3 = 0                                      (every branch is zero: each block is the identity)
    W1, W2 ~ N(0, (a L^(-1/(2m-2)) / sqrt(fan_in))^2),   a = sqrt(2 / (1 + 0.2^2)),   L^(-1/4) for m = 3

a is He's gain for the leaky ReLU; the factor L^(-1/4) keeps the sum of L branches from growing
the variance once W3 leaves zero. Every other layer (transitions, basis, head, G's output) starts
He-normal with gain 1, N(0, 1 / fan_in), and biases at zero, as in the authors' code.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from gan_platform.models.heads import minibatch_std
from gan_platform.models.resample import Downsample2x, Upsample2x

LEAKY_SLOPE = 0.2
LEAKY_GAIN = math.sqrt(2.0 / (1.0 + LEAKY_SLOPE**2))  # He's gain for the leaky ReLU
BRANCH_LAYERS = 3  # m: the convolutions of a residual branch


def he_normal_(weight: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, (gain / sqrt(fan_in))^2), fan_in = the inputs of one output unit (for a grouped
    convolution, those of its group)."""
    with torch.no_grad():
        return weight.normal_(0.0, gain / math.sqrt(weight[0].numel()))


def fixup_gain(total_blocks: int) -> float:
    """The initial gain a L^(-1/(2m-2)) of a branch's first two layers in a network of L blocks."""
    return LEAKY_GAIN * total_blocks ** (-1.0 / (2 * BRANCH_LAYERS - 2))


def pointwise(c_in: int, c_out: int) -> nn.Conv2d:
    """A 1 x 1 convolution without bias, He-normal with gain 1."""
    conv = nn.Conv2d(c_in, c_out, 1, bias=False)
    he_normal_(conv.weight)
    return conv


class ResidualBlock(nn.Module):
    """x + W3 phi(W2 phi(W1 x)) at a constant width (the module docstring)."""

    def __init__(self, width: int, cardinality: int, expansion: int, total_blocks: int):
        super().__init__()
        inner = width * expansion
        self.expand = nn.Conv2d(width, inner, 1)
        self.grouped = nn.Conv2d(inner, inner, 3, padding=1, groups=cardinality)
        self.project = nn.Conv2d(inner, width, 1, bias=False)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        gain = fixup_gain(total_blocks)
        for conv in (self.expand, self.grouped):
            he_normal_(conv.weight, gain)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.project.weight)

    def branch(self, x: Tensor) -> Tensor:
        return self.project(self.act(self.grouped(self.act(self.expand(x)))))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class UpTransition(nn.Sequential):
    """G between stages: a 1 x 1 convolution where the width changes, then bilinear up-sampling."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(*([pointwise(c_in, c_out)] if c_in != c_out else []), Upsample2x())


class DownTransition(nn.Sequential):
    """D between stages: bilinear down-sampling, then a 1 x 1 convolution where the width changes."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(Downsample2x(), *([pointwise(c_in, c_out)] if c_in != c_out else []))


class GenerativeBasis(nn.Module):
    """G's first stage input: learned 4 x 4 maps B (width, 4, 4), each scaled by a linear function
    of the latent, B * (W z)."""

    def __init__(self, in_features: int, width: int):
        super().__init__()
        self.basis = nn.Parameter(torch.randn(width, 4, 4))
        self.linear = nn.Linear(in_features, width, bias=False)
        he_normal_(self.linear.weight)

    def forward(self, z: Tensor) -> Tensor:
        return self.basis[None] * self.linear(z)[:, :, None, None]


class DiscriminativeHead(nn.Module):
    """D's last layer: a 4 x 4 depthwise convolution to one feature a channel, then a linear map to
    the score (`out_features` = 1) or, for a projection D, to the class embedding's space, where the
    score is embed(y) . h (Miyato & Koyama 2018). Optional diversity feature and dropout before the
    linear map."""

    def __init__(self, width: int, out_features: int = 1, num_classes: int = 0, dropout: float = 0.0,
                 use_minibatch_std: bool = False):
        super().__init__()
        self.use_minibatch_std = use_minibatch_std  # speed.judges_samples_alone reads it
        self.spatial = nn.Conv2d(width, width, 4, groups=width, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.linear = nn.Linear(width + (1 if use_minibatch_std else 0), out_features, bias=False)
        for layer in (self.spatial, self.linear):
            he_normal_(layer.weight)
        self.embed: Optional[nn.Embedding] = None
        if num_classes:
            self.embed = nn.Embedding(num_classes, out_features)
            nn.init.normal_(self.embed.weight, 0.0, out_features ** -0.5)  # embed(y) . h: a mean over h's entries

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        h = self.spatial(x).flatten(1)
        if self.use_minibatch_std:
            h = minibatch_std(h)
        h = self.linear(self.dropout(h))
        if self.embed is None:
            return h.squeeze(1)
        if y is None:
            raise ValueError("this discriminator is conditional: pass class labels y")
        return (self.embed(y.long()) * h).sum(dim=1)
