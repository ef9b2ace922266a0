"""BigGAN's networks (Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis") for square images of side 8, 16, 32, ..., 512.

G(z, y):  z = [z_0, z_1, ..., z_n]        hierarchical latents: n + 1 chunks, n = log2(R / 4) up blocks
          e = shared(y)                    one class embedding, shared by every block (`shared_dim`)
          h = linear(z_0) -> (C_0, 4, 4)
          h = UpBlock_i(h, c_i),  c_i = [e, z_i]     i = 1..n, self-attention after the block of side `attention`
          x = tanh(conv3x3(ReLU(BN(h))))
   UpBlock(h, c) = conv3x3(ReLU(cBN_2(conv3x3(up(ReLU(cBN_1(h, c)))), c))) + up(conv1x1(h))
   cBN(h, c)     = BN(h) * (1 + W_gain c) + W_bias c       (BN without affine parameters; W_gain, W_bias
                                                            linear maps without bias, one pair per cBN)
D(x, y):  residual down blocks (SNGAN's, models/resnet.Block), self-attention after the block whose
          output has side `attention`, ReLU, global sum pooling -> phi(x);
          score = w . phi(x) + b + embed(y) . phi(x)       (projection, Miyato & Koyama 2018)

Each chunk z_i reaches the output only through the two conditional BatchNorms of block i (z_0
through the 4 x 4 input): the latent acts at every scale. With `hierarchical_z: false` all of z
feeds the 4 x 4 input and the blocks see the class alone. Where z_dim does not divide into n + 1
chunks the first z_dim mod (n + 1) chunks are one larger (StudioGAN refuses such a z_dim,
BigGAN-PyTorch drops the remainder), so one z_dim serves every resolution.

Unconditional (num_classes 0, for unlabelled data): no class embedding; each block's BatchNorm gains
and biases come from its chunk of z alone (StudioGAN's big_resnet without a class), so the
hierarchical latents stay; with `hierarchical_z: false` too they are ordinary BatchNorms (learned
constant gains and biases). D then has a plain linear head.

Widths are multiples of `width` (the paper's ch). Up to 32 x 32 every block of G has 4 ch channels
and every block of D 2 ch, D halving the side down to 8 x 8 and then two blocks at 8 x 8; from 64 x 64
on, the paper's tables (G from 16 ch down to ch, D from ch up to 16 ch, down to 4 x 4 and one block
there). These are StudioGAN's big_resnet layouts; its CIFAR-10 setting is z 80, shared 128, width 96
in G and D, attention at 16 in both.

Spectral norm (`spectral_norm`, on by default in both) normalises every convolution and linear layer
of G and D and D's class embedding; G's shared embedding is a lookup table feeding linear layers that
are normalised, and is left alone, as in both public codes. Weights start orthogonal (Saxe et al.
2014), biases and the attention gains at zero. The 1x1 shortcut of an up block runs before the
nearest up-sampling (BigGAN-PyTorch runs it after): a 1x1 convolution acts on each pixel alone, so the
two are the same function, at a quarter of the cost.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import ScoreHead, check_conditioning, image_input, spectral_normalise
from gan_platform.models.resnet import Block
from gan_platform.models.self_attention import SelfAttention
from gan_platform.models.shapes import image_network

MAX_SIDE = 512
# From 64 x 64 on, multiples of `width`: G's channels into each up block and out of the last one;
# D's channels out of each block, every block halving the side but the last.
G_CHANNELS = {64: (16, 8, 4, 2, 1), 128: (16, 16, 8, 4, 2, 1), 256: (16, 16, 8, 8, 4, 2, 1),
              512: (16, 16, 8, 8, 4, 2, 1, 1)}
D_CHANNELS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16), 256: (1, 2, 4, 8, 8, 16, 16),
              512: (1, 1, 2, 4, 8, 8, 16, 16)}


def _image(shape: Sequence[int], width: int, part: str) -> tuple[int, int, int]:
    """(channels, side, doublings) for BigGAN's `part`, sides above 512 refused in one sentence."""
    channels, side, n = image_network(shape, width, "biggan", part)
    if side > MAX_SIDE:
        raise ConfigError(f"model=biggan has BigGAN's layouts for sides 8 to {MAX_SIDE}; got {side}: "
                          f"set dataset.resolution to {MAX_SIDE} or less.")
    return channels, side, n


def generator_channels(side: int, width: int) -> list[int]:
    """Channels into each of G's up blocks, then out of the last one (module docstring)."""
    n = side.bit_length() - 3  # side = 4 * 2^n
    return [width * m for m in G_CHANNELS.get(side, (4,) * (n + 1))]


def discriminator_blocks(side: int, width: int) -> list[tuple[int, bool]]:
    """(channels out, halves the side) of each of D's blocks (module docstring)."""
    if side in D_CHANNELS:
        mult = D_CHANNELS[side]
        return [(width * m, i < len(mult) - 1) for i, m in enumerate(mult)]
    downs = side.bit_length() - 4  # to 8 x 8
    return [(2 * width, i < downs) for i in range(max(downs, 1) + 2)]


def z_chunks(z_dim: int, n: int, side: int) -> list[int]:
    """z_dim split into n chunks as equal as possible, the first z_dim mod n one larger."""
    if z_dim < n:
        raise ConfigError(f"model.z_dim={z_dim} cannot give each of BigGAN's {n} latent chunks at side {side} "
                          f"a dimension: set model.z_dim to at least {n} or model.generator.hierarchical_z=false.")
    q, r = divmod(z_dim, n)
    return [q + 1] * r + [q] * (n - r)


def attention_index(sides: list[int], channels: list[int], attention: int, part: str, side: int) -> Optional[int]:
    """Index of the block after which self-attention sits (the first whose output has side
    `attention`), None for 0; a side the network does not have, or too few channels, refused."""
    if attention == 0:
        return None
    if attention not in sides:
        choices = ", ".join(str(s) for s in sorted(set(sides)))
        raise ConfigError(f"model.{part}.attention={attention} is not a side of BigGAN's {part} at {side} x {side}: "
                          f"choose one of {choices}, or 0 for none.")
    i = sides.index(attention)
    if channels[i] < 8:
        raise ConfigError(f"model.{part}.attention={attention} needs at least 8 channels there and the width gives "
                          f"{channels[i]}: raise model.{part}.width or set model.{part}.attention=0.")
    return i


@torch.no_grad()
def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights (Saxe et al. 2014) for every convolution, linear layer and embedding; zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            nn.init.orthogonal_(m.weight)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()


class ConditionalBatchNorm(nn.Module):
    """cBN(h, c) = BN(h) * (1 + W_gain c) + W_bias c; with no condition (`cond_dim` 0) an ordinary
    BatchNorm with learned gain and bias."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        self.gain = nn.Linear(cond_dim, channels, bias=False) if cond_dim else None
        self.bias = nn.Linear(cond_dim, channels, bias=False) if cond_dim else None

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        h = self.bn(h)
        if self.gain is None:
            return h
        return h * (1 + self.gain(c))[:, :, None, None] + self.bias(c)[:, :, None, None]


class UpBlock(nn.Module):
    """G's residual block, conditioned on c through both BatchNorms: doubles the side."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.bn1, self.conv1 = ConditionalBatchNorm(c_in, cond_dim), nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.bn2, self.conv2 = ConditionalBatchNorm(c_out, cond_dim), nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class BigGANGenerator(nn.Module):
    """G(z, y) for images of `out_shape` (C, R, R), values in [-1, 1]; conditional when `num_classes` > 0."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 120, width: int = 8, num_classes: int = 0,
                 shared_dim: int = 128, attention: int = 8, hierarchical_z: bool = True, spectral_norm: bool = True):
        super().__init__()
        channels, side, n = _image(out_shape, width, "generator")
        if num_classes and shared_dim < 1:
            raise ConfigError(f"model.generator.shared_dim must be positive for a conditional run, got {shared_dim}.")
        self.z_dim, self.num_classes, self.out_shape, self.num_blocks = z_dim, num_classes, tuple(out_shape), n
        self.chunks = z_chunks(z_dim, n + 1, side) if hierarchical_z else None
        self.shared = nn.Embedding(num_classes, shared_dim) if num_classes else None
        chans = generator_channels(side, width)
        attend = attention_index([8 * 2**i for i in range(n)], chans[1:], attention, "generator", side)
        embedded = shared_dim if num_classes else 0
        self.project = nn.Linear(self.chunks[0] if self.chunks else z_dim, chans[0] * 16)
        blocks: list[nn.Module] = []
        for i in range(n):
            blocks.append(UpBlock(chans[i], chans[i + 1], embedded + (self.chunks[i + 1] if self.chunks else 0)))
            if i == attend:
                blocks.append(SelfAttention(chans[i + 1]))
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], channels, 3, 1, 1), nn.Tanh())
        orthogonal_init(self)
        if spectral_norm:
            for part in (self.project, self.blocks, self.out):  # not the shared embedding (module docstring)
                spectral_normalise(part)

    def latents(self, z: Tensor, y: Optional[Tensor] = None) -> tuple[Tensor, list[Tensor]]:
        """The input of the 4 x 4 projection and the condition c_i of each up block: [e, z_i]."""
        if self.chunks:
            first, *rest = torch.split(z, self.chunks, dim=1)
        else:
            first, rest = z, [z[:, :0]] * self.num_blocks
        if self.shared is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass class labels y")
            e = self.shared(y.long())
            rest = [torch.cat([e, r], dim=1) for r in rest]
        return first, list(rest)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        first, conds = self.latents(z, y)
        h = self.project(first).view(z.shape[0], -1, 4, 4)
        cond = iter(conds)
        for block in self.blocks:
            h = block(h) if isinstance(block, SelfAttention) else block(h, next(cond))
        return self.out(h)


class BigGANDiscriminator(nn.Module):
    """D(x, y) for images of `in_shape` (C, R, R): scores (N,), or (N / pack,) when packed; `freeze`
    stops the first residual blocks (with the self-attention after one) from training (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], width: int = 8, num_classes: int = 0, conditioning: str = "projection",
                 attention: int = 8, dropout: float = 0.0, minibatch_std: bool = False, pack: int = 1,
                 spectral_norm: bool = True, freeze: int = 0):
        super().__init__()
        channels, side, _ = _image(in_shape, width, "discriminator")
        check_conditioning(num_classes, conditioning, pack)
        layout = discriminator_blocks(side, width)
        sides = [side >> sum(down for _, down in layout[:i + 1]) for i in range(len(layout))]
        attend = attention_index(sides, [c for c, _ in layout], attention, "discriminator", side)
        self.num_classes, self.pack = num_classes, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        c = channels * pack + (num_classes if self.concat else 0)
        groups: list[list[nn.Module]] = []  # each residual block, with the self-attention after it (FreezeD's blocks)
        for i, (c_out, down) in enumerate(layout):
            groups.append([Block(c, c_out, down=down, first=i == 0)])
            c = c_out
            if i == attend:
                groups[-1].append(SelfAttention(c))
        self.blocks = nn.Sequential(*(m for group in groups for m in group))
        self.head = ScoreHead(c, num_classes, conditioning, dropout, minibatch_std)
        orthogonal_init(self)
        if spectral_norm:
            spectral_normalise(self)
        freeze_blocks(groups, freeze, f"biggan's D for {side} x {side} images")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        x = image_input(x, y, self.pack, self.num_classes, self.concat)
        features = F.relu(self.blocks(x)).sum(dim=(2, 3))  # global sum pooling
        return self.head(features, y)
