"""An unpaired pair of digit styles with a known true mapping: CycleGAN's offline test bench.

Style A: scikit-learn's bundled digits, grey ink bright on a dark ground (as RGB, three equal
channels). Style B: `to_style_b(A)`, the same kind of digit *inverted* (dark ink on a light ground),
*thickened* (3x3 dilation: every stroke one pixel wider a side) and *tinted* (navy ink on cream).
The 1797 digits are shuffled with a fixed seed and split in two disjoint halves: A images come from
one half and B images from the other, so no digit ever appears in both styles and no pair is seen.
Each half keeps `test_fraction` of its images out of training for evaluation.

Because the mapping is known, translation is scored exactly: A -> B against `to_style_b(a)`, and
B -> A by whether the translation maps back onto the B image, `to_style_b(G2(b))` against `b` (thinning
is not a function, dilation is). `digit_view` turns either style into the grey bright-on-dark digits
the digit classifier reads: A by averaging the channels, B by projecting each pixel onto the
ground-to-ink colour line (undoing the tint and inversion) and eroding 3x3 (undoing most of the
thickening: an erosion after a dilation is a closing, which keeps a digit's shape).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_platform.data.digits import load_digit_images
from gan_platform.data.unpaired import UnpairedDataset
from gan_platform.errors import ConfigError

GROUND = (0.96, 0.90, 0.70)  # cream, RGB in [0, 1]
INK = (0.10, 0.15, 0.55)     # navy
SPLIT_SEED = 2017


def _colours(x: Tensor) -> tuple[Tensor, Tensor]:
    ground = torch.tensor(GROUND, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    ink = torch.tensor(INK, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
    return ground, ink


def to_style_b(a: Tensor) -> Tensor:
    """The true A -> B mapping on [-1, 1] images (N, C, R, R): invert, thicken, tint; RGB out."""
    ink_amount = (a.float().mean(1, keepdim=True) + 1) / 2
    thick = F.max_pool2d(ink_amount, 3, 1, 1)
    ground, ink = _colours(a)
    return (ground + thick * (ink - ground)) * 2 - 1


def view_a(x: Tensor) -> Tensor:
    """Style-A images -> (N, 1, R, R) grey digits in [-1, 1]."""
    return x.float().mean(1, keepdim=True)


def view_b(x: Tensor) -> Tensor:
    """Style-B images -> (N, 1, R, R) grey digits in [-1, 1]: untint, uninvert, erode 3x3."""
    ground, ink = _colours(x)
    direction = ink - ground
    amount = (((x.float() + 1) / 2 - ground) * direction).sum(1, keepdim=True) / direction.pow(2).sum()
    thin = -F.max_pool2d(-amount.clamp(0, 1), 3, 1, 1)
    return thin * 2 - 1


def _u8(x: Tensor) -> Tensor:
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def digit_styles(resolution: int = 16, test_fraction: float = 0.2) -> UnpairedDataset:
    """The embedded digit-style pair (see the module docstring) at `resolution`."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"dataset.test_fraction must be between 0 and 1, got {test_fraction}.")
    grey, labels = load_digit_images(resolution)
    a_all = (grey.float() / 127.5 - 1).expand(-1, 3, -1, -1)
    perm = torch.randperm(len(grey), generator=torch.Generator().manual_seed(SPLIT_SEED))
    half_a, half_b = perm[: len(perm) // 2], perm[len(perm) // 2:]

    def split(idx: Tensor) -> tuple[Tensor, Tensor]:
        cut = len(idx) - max(2, int(round(test_fraction * len(idx))))
        return idx[:cut], idx[cut:]

    (train_a, test_a), (train_b, test_b) = split(half_a), split(half_b)
    styled_b = to_style_b(a_all[half_b])
    b_u8 = dict(zip(half_b.tolist(), _u8(styled_b)))
    b_of = lambda idx: torch.stack([b_u8[i] for i in idx.tolist()])  # noqa: E731
    ds = UnpairedDataset("digit_styles", _u8(a_all[train_a]), b_of(train_b), _u8(a_all[test_a]), b_of(test_b),
                         true_a2b=to_style_b, test_labels_a=labels[test_a], test_labels_b=labels[test_b])
    ds.digit_view = {"a": view_a, "b": view_b}
    ds.source_indices = {"train_a": train_a, "test_a": test_a, "train_b": train_b, "test_b": test_b}
    return ds
