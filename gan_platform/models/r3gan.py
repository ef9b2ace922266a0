"""R3GAN's networks (Huang et al. 2024, "The GAN is dead; long live the GAN! A Modern GAN
Baseline", NeurIPS 2024, Config E): a modern ResNet for G and D, no normalisation layer, no tricks.

Both networks are stages of residual blocks, one stage a resolution from 4 x 4 to the image side R:

    G: z' = [z, embed(y)] -> basis B * (W z') (w_4, 4, 4) -> [blocks] -> (up, [blocks]) x log2(R/4)
       -> 1 x 1 convolution to the image's channels            (linear output, no tanh, as the paper)
    D: x -> 1 x 1 convolution -> ([blocks], down) x log2(R/4) -> [blocks] at 4 x 4
       -> 4 x 4 depthwise convolution -> linear -> score, or embed(y) . h (projection)

A block is x + W3 phi(W2 phi(W1 x)) with a grouped 3 x 3 W2 (ResNeXt) and an inverted bottleneck
(expansion e > 1); every W3 starts at zero, so every block starts as the identity (fix-up
initialisation; r3gan_blocks.py has the layers and the initialisation's formulas). Between stages
a transition resamples by bilinear interpolation (resample.py) and changes the width by a 1 x 1
convolution where it differs.

Stages are configured as the paper's Table 9 lists them, one entry a stage from the highest
resolution down to 4 x 4: `widths` (channels of the stem), `blocks` (residual blocks), `cardinality`
(groups of the 3 x 3 convolution), and one `expansion` factor. A network for side R uses the last
log2(R/4) + 1 entries, so one set of lists serves every resolution up to its first stage (the
paper's FFHQ-64 networks are its FFHQ-256 ones without the two highest stages); a single number
stands for every stage. The paper's CIFAR-10 networks: widths 768 x 4, blocks 2 x 4, cardinality
96 x 4, expansion 2, z 64 (conf/model/r3gan.yaml; tests/test_r3gan_model.py counts them).

Conditioning (the paper's, after stylegan2-ada): G concatenates a learned class embedding (of
`embed_dim` entries, default z_dim) to z; D projects (`conditioning: projection`) with an embedding
of `embed_dim` entries (default the 4 x 4 width), or takes the one-hot class as extra input channels
(`concat`). D takes PacGAN packing, dropout and the diversity feature like the other networks;
spectral norm is refused: it would divide D's zero-initialised layers by their zero norm.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from gan_platform.errors import ConfigError
from gan_platform.models.freeze import freeze_blocks
from gan_platform.models.heads import check_conditioning, check_dropout, image_input
from gan_platform.models.r3gan_blocks import (
    DiscriminativeHead, DownTransition, GenerativeBasis, ResidualBlock, UpTransition, pointwise,
)
from gan_platform.models.shapes import square_image

STAGE_KEYS = ("widths", "blocks", "cardinality")
CIFAR10 = {"widths": (768,) * 4, "blocks": (2,) * 4, "cardinality": (96,) * 4, "expansion": 2}  # Table 9


@dataclass(frozen=True)
class Stage:
    side: int
    width: int
    blocks: int
    cardinality: int


def stage_count(side: int) -> int:
    """log2(side / 4) + 1: the stages from 4 x 4 up to `side`, refused unless side is a power of two >= 4."""
    if side < 4 or side & (side - 1):
        raise ConfigError(f"model=r3gan needs square images whose side is a power of two of at least 4 "
                          f"(4, 8, 16, 32, ...); got {side}: set dataset.resolution.")
    return int(math.log2(side)) - 1


def _entries(value: Any, key: str, part: str) -> tuple[list[int], bool]:
    """(the entries of one per-stage key, whether it was a list)."""
    listed = isinstance(value, SequenceABC) and not isinstance(value, str)
    items = list(value) if listed else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise ConfigError(f"model.{part}.{key} must hold positive whole numbers, one a stage or one for every stage; "
                          f"got {OmegaConf.to_container(value) if OmegaConf.is_config(value) else value!r}.")
    return items, listed


def _check_groups(stages: list[Stage], expansion: int, part: str) -> None:
    for s in stages:
        inner = s.width * expansion
        if inner % s.cardinality:
            raise ConfigError(f"model.{part}.cardinality {s.cardinality} at {s.side} x {s.side} does not divide the "
                              f"{inner} channels of its grouped convolution (width {s.width} x expansion {expansion}): "
                              "choose widths and cardinality so that it does (the paper: width 768, cardinality 96).")


def stage_plan(widths: Any, blocks: Any, cardinality: Any, expansion: Any, part: str,
               side: Optional[int] = None) -> list[Stage]:
    """The stages, highest resolution first, of the `part` network for side x side images; each rule
    refused in one sentence. With `side` None (no data at hand) every listed stage is checked."""
    parsed = {k: _entries(v, k, part) for k, v in zip(STAGE_KEYS, (widths, blocks, cardinality))}
    if isinstance(expansion, bool) or not isinstance(expansion, int) or expansion < 1:
        raise ConfigError(f"model.{part}.expansion must be a positive whole number, got {expansion!r}.")
    lengths = {k: len(items) for k, (items, listed) in parsed.items() if listed}
    if len(set(lengths.values())) > 1:
        counts = ", ".join(map(str, lengths.values()))
        raise ConfigError(f"model.{part}.{', '.join(lengths)} list {counts} stages: give each one entry a stage, "
                          "from the highest resolution down to 4 x 4 (or one number for every stage).")
    needed = stage_count(side) if side is not None else None
    count = next(iter(lengths.values()), needed or 1)
    if needed is not None and needed > count:
        top = 4 * 2 ** (count - 1)
        raise ConfigError(f"model.{part}.{next(iter(lengths))} lists {count} stages, enough for images up to {top} x {top}, "
                          f"and these are {side} x {side}: list one entry a stage from {side} x {side} down to 4 x 4.")
    column = {k: items if listed else items * count for k, (items, listed) in parsed.items()}
    stages = [Stage(4 * 2 ** (count - 1 - i), column["widths"][i], column["blocks"][i], column["cardinality"][i])
              for i in range(count)]
    _check_groups(stages, expansion, part)
    return stages[count - needed:] if needed is not None else stages


def check_spectral_norm(spectral_norm: bool) -> None:
    if spectral_norm:
        raise ConfigError("model=r3gan starts every residual branch of D at zero (fix-up initialisation), which spectral "
                          "normalisation would divide by its zero norm: set model.discriminator.spectral_norm=false "
                          "(R3GAN keeps D in check with the R1 and R2 penalties).")


def _blocks(stage: Stage, expansion: int, total: int) -> list[nn.Module]:
    return [ResidualBlock(stage.width, stage.cardinality, expansion, total) for _ in range(stage.blocks)]


class R3GANGenerator(nn.Module):
    """G(z, y) for images of `out_shape` (C, R, R); a linear output (module docstring)."""

    def __init__(self, out_shape: Sequence[int], z_dim: int = 64, widths: Any = CIFAR10["widths"],
                 blocks: Any = CIFAR10["blocks"], cardinality: Any = CIFAR10["cardinality"], expansion: int = 2,
                 num_classes: int = 0, embed_dim: Optional[int] = None):
        super().__init__()
        channels, side = square_image(out_shape, "r3gan")
        stages = stage_plan(widths, blocks, cardinality, expansion, "generator", side)[::-1]  # 4 x 4 first
        check_conditioning(num_classes, "concat")
        self.z_dim, self.num_classes, self.out_shape = z_dim, num_classes, tuple(out_shape)
        embed_dim = z_dim if embed_dim is None else embed_dim
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None  # N(0, 1), as z
        self.basis = GenerativeBasis(z_dim + (embed_dim if num_classes else 0), stages[0].width)
        total = sum(s.blocks for s in stages)
        self.stages = nn.ModuleList(
            nn.Sequential(*([UpTransition(stages[i - 1].width, s.width)] if i else []), *_blocks(s, expansion, total))
            for i, s in enumerate(stages))
        self.out = pointwise(stages[-1].width, channels)

    def forward(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is conditional: pass class labels y")
            z = torch.cat([z, self.embed(y.long()).to(z.dtype)], dim=1)
        x = self.basis(z)
        for stage in self.stages:
            x = stage(x)
        return self.out(x)


class R3GANDiscriminator(nn.Module):
    """D(x, y) for images of `in_shape` (C, R, R): scores (N,), or (N / pack,) when packed; `freeze`
    stops the first stages (the first with the input convolution) from training (FreezeD, freeze.py)."""

    def __init__(self, in_shape: Sequence[int], widths: Any = CIFAR10["widths"], blocks: Any = CIFAR10["blocks"],
                 cardinality: Any = CIFAR10["cardinality"], expansion: int = 2, num_classes: int = 0,
                 conditioning: str = "projection", embed_dim: Optional[int] = None, dropout: float = 0.0,
                 minibatch_std: bool = False, pack: int = 1, spectral_norm: bool = False, freeze: int = 0):
        super().__init__()
        channels, side = square_image(in_shape, "r3gan")
        stages = stage_plan(widths, blocks, cardinality, expansion, "discriminator", side)
        check_conditioning(num_classes, conditioning, pack)
        check_dropout(dropout)
        check_spectral_norm(spectral_norm)
        self.num_classes, self.pack = num_classes, pack
        self.concat = bool(num_classes) and conditioning == "concat"
        projection = bool(num_classes) and conditioning == "projection"
        self.extract = pointwise(channels * pack + (num_classes if self.concat else 0), stages[0].width)
        total = sum(s.blocks for s in stages)
        self.stages = nn.ModuleList(
            nn.Sequential(*_blocks(s, expansion, total), *([DownTransition(s.width, stages[i + 1].width)]
                                                             if i + 1 < len(stages) else []))
            for i, s in enumerate(stages))
        width = stages[-1].width
        out = (width if embed_dim is None else embed_dim) if projection else 1
        self.head = DiscriminativeHead(width, out, num_classes if projection else 0, dropout, minibatch_std)
        freeze_blocks([[self.extract, self.stages[0]], *self.stages[1:]], freeze, f"r3gan's D for {side} x {side} images")

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        x = self.extract(image_input(x, y, self.pack, self.num_classes, self.concat))
        for stage in self.stages:
            x = stage(x)
        return self.head(x, y)


def _arguments(cls: type, node: Any) -> dict[str, Any]:
    """The constructor arguments a config node gives `cls`, its defaults filled in."""
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items() if p.default is not p.empty}
    return {**defaults, **OmegaConf.to_container(node, resolve=True)}


def check(cfg: Any) -> None:
    """model=r3gan's rules that need no data, run with the other config checks before any run dir
    exists (config/checks.py `check_parts`): the per-stage lists, the cardinality, D's spectral
    norm and, where the dataset names its resolution, the image side. The networks' constructors
    apply the same rules to the shapes the data gives."""
    side = OmegaConf.select(cfg, "dataset.resolution")
    side = side if isinstance(side, int) and not isinstance(side, bool) else None
    for part, cls in (("generator", R3GANGenerator), ("discriminator", R3GANDiscriminator)):
        node = OmegaConf.select(cfg, f"model.{part}")
        if node is None or str(node.get("_target_", "")).rsplit(".", 1)[-1] != cls.__name__:
            continue
        args = _arguments(cls, node)
        stage_plan(args["widths"], args["blocks"], args["cardinality"], args["expansion"], part, side)
        if part == "discriminator":
            check_spectral_norm(bool(args["spectral_norm"]))
