"""Pieces shared by every discriminator: class conditioning, packing, diversity features, spectral norm."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_platform.errors import ConfigError

CONDITIONINGS = ("concat", "projection")


def check_conditioning(num_classes: int, conditioning: str, pack: int = 1) -> None:
    """Refuse impossible model options with a clear sentence."""
    if num_classes < 0:
        raise ConfigError(f"The number of classes must be non-negative, got {num_classes}.")
    if conditioning not in CONDITIONINGS:
        raise ConfigError(f"Unknown model.conditioning '{conditioning}': choose one of {', '.join(CONDITIONINGS)}.")
    if pack < 1:
        raise ConfigError(f"model.discriminator.pack must be at least 1, got {pack}.")
    if pack > 1 and num_classes:
        raise ConfigError("Packing (pack > 1) is for unconditional GANs: set model.discriminator.pack=1 for a conditional run.")


def check_dropout(dropout: float) -> None:
    """Refuse a dropout rate outside [0, 1) with a clear sentence."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.discriminator.dropout must be in [0, 1), got {dropout}.")


def spectral_normalise(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) of every linear, convolution and embedding layer of
    `module`: W / sigma(W), sigma estimated by one power iteration per training forward. The
    iteration's vectors u, v are buffers, so checkpoints hold them and resume continues them
    exactly. Layers already normalised are left alone. Returns `module`."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.Embedding)) and not nn.utils.parametrize.is_parametrized(layer, "weight"):
            nn.utils.parametrizations.spectral_norm(layer)
    return module


def one_hot(y: Optional[Tensor], num_classes: int, like: Tensor) -> Tensor:
    """One-hot float codes of `y` with the dtype and device of `like`."""
    if y is None:
        raise ValueError("this model is conditional: pass class labels y")
    return F.one_hot(y.long(), num_classes).to(dtype=like.dtype, device=like.device)


def pack_samples(x: Tensor, pack: int) -> Tensor:
    """PacGAN: (N, ...) -> (N / pack, pack * first_dim, ...), `pack` samples judged as one."""
    if pack == 1:
        return x
    if x.shape[0] % pack:  # the config check (trainer.batch_size a multiple of the pack) rules this out for training
        raise ValueError(f"pack_samples: {x.shape[0]} samples do not split into packs of {pack}")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


def image_input(x: Tensor, y: Optional[Tensor], pack: int, num_classes: int, concat: bool) -> Tensor:
    """What a convolutional D sees: its images packed (PacGAN), then with `concat` the one-hot class
    appended as constant channels."""
    x = pack_samples(x, pack)
    if concat:
        code = one_hot(y, num_classes, x)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        x = torch.cat([x, code], dim=1)
    return x


def minibatch_std(features: Tensor) -> Tensor:
    """Diversity feature (ProGAN's minibatch standard deviation): append the mean per-feature std over
    the batch, so that D can see a batch whose samples are all alike (a collapsed G)."""
    std = features.float().std(dim=0, unbiased=False).mean().to(features.dtype)
    return torch.cat([features, std.expand(features.shape[0], 1)], dim=1)


class ScoreHead(nn.Module):
    """Features (N, F) -> scores (N,): optional diversity feature, dropout, and class projection.

    With ``projection`` conditioning (Miyato & Koyama 2018) the score is
    ``w . phi(x) + embed(y) . phi(x)``; with ``concat`` conditioning the class was already appended
    to D's input and the head is a plain linear layer.
    """

    def __init__(self, features: int, num_classes: int = 0, conditioning: str = "concat",
                 dropout: float = 0.0, minibatch_std: bool = False):
        super().__init__()
        check_dropout(dropout)
        self.use_minibatch_std = minibatch_std
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        width = features + (1 if minibatch_std else 0)
        self.linear = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width) if (num_classes and conditioning == "projection") else None

    def forward(self, h: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.use_minibatch_std:
            h = minibatch_std(h)
        h = self.dropout(h)
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            if y is None:
                raise ValueError("this discriminator is conditional: pass class labels y")
            out = out + (self.embed(y.long()) * h).sum(dim=1)
        return out
