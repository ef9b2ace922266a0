"""StyleGAN2's networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", configs E/F: skip generator, residual discriminator), as stylegan2-ada's code builds them.

G(z, y) = synthesis(mapping(z, y)):
  mapping:   z -> normalise -> [concat normalise(embed(one-hot y))] -> `mapping_layers` fully
             connected layers (lrelu, learning rate x `mapping_lr`, 0.01) -> w in W (`w_dim`); the
             average of w is tracked in training forwards, w_avg <- w_avg + (1 - 0.995)(mean_batch(w) - w_avg)
  synthesis: a learned 4 x 4 constant, then per side 4, 8, ..., R: [3 x 3 modulated conv, doubling]
             and 3 x 3 modulated conv, each with its noise input; each side's ToRGB output added to the
             up-sampled image so far (the skip architecture). Every layer takes its own copy of w
             (ws: (N, num_ws, w_dim), num_ws = 2 log2(R / 4) + 2), which is what style mixing and
             truncation act on.
D(x, y): FromRGB at side R, then per side R, ..., 8 a block [3 x 3 conv, 3 x 3 conv halving the side]
  with (`architecture: resnet`) a 1 x 1 halving shortcut, both paths times sqrt(1/2); at 4 x 4 the
  minibatch-std feature, a 3 x 3 conv, a fully connected layer and the output. Conditional D projects
  its output (cmap_dim features) on a mapped class embedding: score = <out(x), cmap(y)> / sqrt(cmap_dim).
Channels at side r: min(channel_base // r, channel_max) (stylegan2-ada-pytorch's convention; the
TensorFlow code's fmap_base 16384 gives the same widths as channel_base 32768). Every weight has
equalised learning rate (stylegan2_layers.py).

Truncation in W (`truncate`): w' = w_avg + psi (w - w_avg); psi = 1 leaves w alone, psi = 0 gives
w_avg, the "average image", for every z. Style mixing (`forward`'s `mix_z`, `cutoff`): layers before
the cutoff take w from z, the others from mix_z. Noise inputs are fresh in training forwards and the
layers' fixed draw (`eval_noise: const`) in eval forwards, so that a latent gives the same image in
every sample grid, evaluation and `gan_platform.sample`.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import check_conditioning, image_input, one_hot
from gan_platform.models.shapes import doublings, square_image
from gan_platform.models.stylegan2_layers import (NOISE_MODES, EqualConv2d, EqualLinear, MinibatchStd, ModulatedConv,
                                                  ToRGB, check_noise_mode, normalize_2nd_moment, upsample2d)

ARCHITECTURES = ("resnet", "orig")  # D: residual blocks (StyleGAN2's choice), or plain ones (stylegan2-ada's CIFAR-10)


def channel_widths(side: int, base: int, maximum: int, part: str) -> dict[int, int]:
    """{r: min(base // r, maximum)} for r = 4, 8, ..., side; refused in one sentence when a side gets no channel."""
    if maximum < 1 or base // side < 1:
        raise ConfigError(f"model.{part}.channel_base={base} and channel_max={maximum} leave no channels at {side} x {side}: "
                          f"set channel_base to at least {side} and channel_max to at least 1.")
    return {4 * 2**i: min(base // (4 * 2**i), maximum) for i in range(doublings(side, "stylegan2") + 1)}


class MappingNetwork(nn.Module):
    """z (N, z_dim) and classes y -> w (N, w_dim); with `w_avg_decay` the running average of w is
    the buffer `w_avg`, updated by training forwards (`update_average`). With z_dim = 0 it maps
    classes alone (the conditional D's cmap)."""

    def __init__(self, z_dim: int, num_classes: int, w_dim: int, layers: int = 8, lr_multiplier: float = 0.01,
                 w_avg_decay: Optional[float] = 0.995):
        super().__init__()
        self.z_dim, self.num_classes, self.w_dim, self.w_avg_decay = z_dim, num_classes, w_dim, w_avg_decay
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        dims = [z_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.layers = nn.Sequential(*(EqualLinear(a, b, lr_multiplier=lr_multiplier, activation=True)
                                      for a, b in zip(dims, dims[1:])))
        if w_avg_decay is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Optional[Tensor], y: Optional[Tensor] = None, update_average: bool = True) -> Tensor:
        parts = [normalize_2nd_moment(z)] if self.z_dim else []
        if self.embed is not None:
            parts.append(normalize_2nd_moment(self.embed(one_hot(y, self.num_classes, self.embed.weight))))
        w = self.layers(torch.cat(parts, dim=1))
        if self.training and update_average and self.w_avg_decay is not None:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.w_avg_decay)
        return w


class SynthesisBlock(nn.Module):
    """One side r: (the constant, or a doubling modulated conv), a modulated conv, ToRGB. Uses
    num_conv + 1 consecutive ws; its ToRGB shares its w with the next block's first conv."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int):
        super().__init__()
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = ModulatedConv(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = ModulatedConv(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: Optional[Tensor], img: Optional[Tensor], ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        if self.num_conv == 1:
            x = self.const.to(ws.dtype).expand(ws.shape[0], *self.const.shape)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        return x, (y if img is None else upsample2d(img) + y)


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> images (N, C, R, R), the sum of every side's ToRGB output."""

    def __init__(self, w_dim: int, side: int, img_channels: int, widths: dict[int, int]):
        super().__init__()
        sides = sorted(widths)
        self.blocks = nn.ModuleList(SynthesisBlock(widths[r // 2] if r > 4 else 0, widths[r], w_dim, r, img_channels)
                                    for r in sides)
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        x = img = None
        first = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, first:first + block.num_conv + 1], noise_mode)
            first += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """G(z, y) for images of `out_shape` (C, R, R), R = 8, 16, 32, ...: the mapping network to W,
    the skip synthesis network (module docstring). Images are not squashed (no tanh), as in the paper."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 512, num_classes: int = 0, w_dim: int = 512,
                 mapping_layers: int = 8, mapping_lr: float = 0.01, w_avg_decay: float = 0.995,
                 channel_base: int = 32768, channel_max: int = 512, style_mixing: float = 0.9, eval_noise: str = "const"):
        super().__init__()
        channels, side = square_image(out_shape, "stylegan2")
        _check_mapping(mapping_layers, mapping_lr, "generator")
        if not 0.0 <= w_avg_decay < 1.0 or not 0.0 <= style_mixing <= 1.0:
            raise ConfigError(f"model.generator.w_avg_decay must be in [0, 1) and style_mixing in [0, 1], got {w_avg_decay} and {style_mixing}.")
        if eval_noise not in NOISE_MODES:
            raise ConfigError(f"Unknown model.generator.eval_noise '{eval_noise}': choose one of {', '.join(NOISE_MODES)}.")
        widths = channel_widths(side, channel_base, channel_max, "generator")
        self.z_dim, self.num_classes, self.w_dim, self.out_shape = z_dim, num_classes, w_dim, tuple(out_shape)
        self.style_mixing, self.eval_noise = float(style_mixing), eval_noise
        self.synthesis = SynthesisNetwork(w_dim, side, channels, widths)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, num_classes, w_dim, mapping_layers, mapping_lr, w_avg_decay)

    def forward(self, z: Tensor, y: Optional[Tensor] = None, mix_z: Optional[Tensor] = None,
                cutoff: Optional[int | Tensor] = None, psi: float = 1.0, noise: Optional[str] = None) -> Tensor:
        """Images of latents z (N, z_dim) and classes y. `mix_z` with `cutoff` k: layers 0..k-1 take
        w from z, layers k.. from mix_z (k an int, or a tensor broadcastable to (N, 1, 1)). `psi`:
        truncation toward w_avg. `noise`: random, const or none (default: random in training, else `eval_noise`)."""
        ws = self.mapping(z, y).unsqueeze(1).expand(-1, self.num_ws, -1)
        if mix_z is not None:
            if cutoff is None:
                raise ValueError("style mixing needs a cutoff: the first layer that takes w from mix_z")
            mixed = self.mapping(mix_z, y, update_average=False).unsqueeze(1).expand(-1, self.num_ws, -1)
            layer = torch.arange(self.num_ws, device=ws.device).reshape(1, -1, 1)
            ws = torch.where(layer < torch.as_tensor(cutoff, device=ws.device), ws, mixed)
        ws = self.truncate(ws, psi)
        mode = noise if noise is not None else ("random" if self.training else self.eval_noise)
        return self.synthesis(ws, check_noise_mode(mode))

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """w_avg + psi (w - w_avg) for w (..., w_dim): psi = 1 returns w itself, psi = 0 the average w."""
        if psi == 1:
            return w
        avg = self.mapping.w_avg.to(w.dtype)
        return avg + psi * (w - avg)

    def style_mixing_inputs(self, z: Tensor) -> tuple[Optional[Tensor], Optional[Tensor]]:
        """(mix_z, cutoff) for a training batch of latents z, as stylegan2's mixing regularisation draws
        them: a second latent per sample and, with probability `style_mixing`, one cutoff for the
        batch uniform in 1..num_ws-1 (else num_ws: no layer mixed); (None, None) when style_mixing is 0.
        Drawn on z's device, without a host sync."""
        if self.style_mixing == 0:
            return None, None
        cutoff = torch.randint(1, self.num_ws, (), device=z.device)
        mixes = torch.rand((), device=z.device) < self.style_mixing
        return torch.randn_like(z), torch.where(mixes, cutoff, torch.full_like(cutoff, self.num_ws))


def _check_mapping(layers: int, lr: float, part: str) -> None:
    if layers < 1 or not lr > 0:
        raise ConfigError(f"model.{part}.mapping_layers must be at least 1 and mapping_lr positive, got {layers} and {lr}.")


class DiscriminatorBlock(nn.Module):
    """Side r -> r / 2: (FromRGB in the first block) conv 3 x 3, conv 3 x 3 halving; `resnet` adds
    a 1 x 1 halving shortcut and scales both paths by sqrt(1/2), keeping the variance of their sum."""

    def __init__(self, img_channels: int, in_channels: int, mid_channels: int, out_channels: int, architecture: str):
        super().__init__()
        self.fromrgb = EqualConv2d(img_channels, mid_channels, 1) if in_channels == 0 else None
        self.conv0 = EqualConv2d(mid_channels, mid_channels, 3)
        self.conv1 = EqualConv2d(mid_channels, out_channels, 3, down=True)
        self.skip = EqualConv2d(mid_channels, out_channels, 1, bias=False, activation=False, down=True) \
            if architecture == "resnet" else None

    def forward(self, x: Optional[Tensor], img: Tensor) -> Tensor:
        if self.fromrgb is not None:
            x = self.fromrgb(img)
        if self.skip is None:
            return self.conv1(self.conv0(x))
        return self.skip(x, gain=math.sqrt(0.5)) + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class StyleGAN2Discriminator(nn.Module):
    """D(x, y) for images of `in_shape` (C, R, R): scores (N,), or (N / pack,) when packed (module docstring).

    Of the platform's D options: `minibatch_std` is StyleGAN2's own feature (groups of
    `mbstd_group_size`, `mbstd_channels` maps); `pack` and `dropout` (before the output layer) work
    as in the other networks; conditioning is the projection on a mapped class embedding
    (`mapping_layers`, learning rate x `mapping_lr`); spectral norm is refused (equalised learning
    rate scales every weight instead); `freeze` stops the first resolution blocks from training
    (FreezeD, freeze.py; the 4 x 4 epilogue always trains).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int = 0, conditioning: str = "projection",
                 architecture: str = "resnet", channel_base: int = 32768, channel_max: int = 512,
                 mapping_layers: int = 8, mapping_lr: float = 0.01, minibatch_std: bool = True, mbstd_group_size: int = 4,
                 mbstd_channels: int = 1, dropout: float = 0.0, pack: int = 1, spectral_norm: bool = False,
                 freeze: int = 0):
        super().__init__()
        channels, side = square_image(in_shape, "stylegan2")
        _check_discriminator(num_classes, conditioning, pack, architecture, spectral_norm, dropout,
                             mbstd_group_size, mbstd_channels)
        _check_mapping(mapping_layers, mapping_lr, "discriminator")
        widths = channel_widths(side, channel_base, channel_max, "discriminator")
        self.num_classes, self.pack = num_classes, pack
        sides = sorted(widths, reverse=True)[:-1]  # R, ..., 8
        self.blocks = nn.ModuleList(DiscriminatorBlock(channels * pack, widths[r] if r < side else 0, widths[r],
                                                       widths[r // 2], architecture) for r in sides)
        c = widths[4]
        if minibatch_std and widths[4] % mbstd_channels:
            raise ConfigError(f"model.discriminator.mbstd_channels={mbstd_channels} must divide D's {c} channels at 4 x 4.")
        self.mbstd = MinibatchStd(mbstd_group_size, mbstd_channels) if minibatch_std else None
        self.conv = EqualConv2d(c + (mbstd_channels if minibatch_std else 0), c, 3)
        self.fc = EqualLinear(c * 16, c, activation=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.cmap_dim = c if num_classes else 0
        self.out = EqualLinear(c, self.cmap_dim or 1)
        self.mapping = MappingNetwork(0, num_classes, c, mapping_layers, mapping_lr, None) if num_classes else None
        freeze_blocks(list(self.blocks), freeze, f"stylegan2's D for {side} x {side} images")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        img = image_input(x, y, self.pack, self.num_classes, concat=False)
        h = None
        for block in self.blocks:
            h = block(h, img)
        if self.mbstd is not None:
            h = self.mbstd(h)
        out = self.out(self.dropout(self.fc(self.conv(h).flatten(1))))
        if self.mapping is None:
            return out.squeeze(1)
        return (out * self.mapping(None, y)).sum(dim=1) / math.sqrt(self.cmap_dim)


def _check_discriminator(num_classes: int, conditioning: str, pack: int, architecture: str, spectral_norm: bool,
                         dropout: float, group_size: int, mbstd_channels: int) -> None:
    """D's options that StyleGAN2's D cannot take, each refused in one sentence."""
    check_conditioning(num_classes, conditioning, pack)
    if num_classes and conditioning != "projection":
        raise ConfigError("model=stylegan2's D conditions by projecting its output on a mapped class embedding: "
                          "set model.conditioning=projection.")
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"Unknown model.discriminator.architecture '{architecture}': choose one of {', '.join(ARCHITECTURES)}.")
    if spectral_norm:
        raise ConfigError("model=stylegan2's D scales every weight by equalised learning rate, not spectral norm: "
                          "set model.discriminator.spectral_norm=false.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.discriminator.dropout must be in [0, 1), got {dropout}.")
    if group_size < 1 or mbstd_channels < 1:
        raise ConfigError(f"model.discriminator.mbstd_group_size and mbstd_channels must be at least 1, got {group_size} and {mbstd_channels}.")
