"""Colour transformations, the `c` of ADA's `bgc` pipeline, as one affine map per image.

Each acts on a pixel's (r, g, b) in [-1, 1] (0 is mid-grey), after its own coin of p, in this
order (the paper's magnitudes), with v = (1, 1, 1)/sqrt(3) the luma axis:

    brightness  + b to every channel, b ~ N(0, 0.2^2)
    contrast    x c about 0, c = 2^N(0, 0.5^2)
    lumaflip    the Householder reflection I - 2 v v^T (inverts the luma, keeps the chroma),
                after a fair coin as well (rate p/2)
    hue         rotation about v by theta ~ U(-pi, pi) (colour images)
    saturation  the chroma (the part orthogonal to v) x s, s = 2^N(0, 1) (colour images)

Each acts on the luma (the part along v) and the chroma (the part orthogonal to v) separately,
so the five compose in closed form, with f = 1 for a luma flip and 0 otherwise:

    x -> C x + t,  C = c [(-1)^f v v^T + s (cos theta (I - v v^T) + sin theta [v]x)],
                   t = (-1)^f c b (1, 1, 1)

A grey image is the colour image (g, g, g): its output is the mean of the three channels that
the map makes of it, g' = (-1)^f c (g + b). Hue and saturation leave grey alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan_platform.augment.blit import coin
from gan_platform.errors import UserError

BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0  # contrast and saturation: log2 std


def _drawn(n: int, p: Tensor, value: Tensor, identity: float) -> Tensor:
    """`value` where image i's coin of p came up, `identity` elsewhere."""
    return torch.where(coin(n, p, value.device), value, torch.full_like(value, identity))


def draw_colour(n: int, p: Tensor, names: set[str], device: torch.device) -> Tensor:
    """Per image, the map [C | t] (n, 3, 4) of brightness -> contrast -> lumaflip -> hue -> saturation,
    composed in closed form (module docstring)."""
    one, zero = torch.ones(n, device=device), torch.zeros(n, device=device)
    b = _drawn(n, p, torch.randn(n, device=device) * BRIGHTNESS_STD, 0.0) if "brightness" in names else zero
    c = _drawn(n, p, torch.exp2(torch.randn(n, device=device) * CONTRAST_STD), 1.0) if "contrast" in names else one
    f = _drawn(n, p, torch.randint(0, 2, (n,), device=device).float(), 0.0) if "lumaflip" in names else zero
    theta = _drawn(n, p, (torch.rand(n, device=device) * 2 - 1) * math.pi, 0.0) if "hue" in names else zero
    s = _drawn(n, p, torch.exp2(torch.randn(n, device=device) * SATURATION_STD), 1.0) if "saturation" in names else one
    k = 1 / math.sqrt(3)
    vv = torch.full((3, 3), 1 / 3, device=device)                                       # v v^T
    cross = torch.tensor([[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]], device=device)    # [v]x
    luma = ((1 - 2 * f) * c).view(n, 1, 1)
    chroma = (c * s).view(n, 1, 1)
    C = luma * vv + chroma * (theta.cos().view(n, 1, 1) * (torch.eye(3, device=device) - vv) + theta.sin().view(n, 1, 1) * cross)
    t = (luma * b.view(n, 1, 1)).expand(n, 3, 1)  # b (1, 1, 1) lies on the luma axis
    return torch.cat([C, t], dim=2)


def recolour(x: Tensor, C: Tensor) -> Tensor:
    """Every pixel of image i through [C | t][i]: RGB as (r, g, b, 1), grey as (g, g, g, 1) read back as the mean."""
    n, c, h, w = x.shape
    C = C.to(x.dtype)
    if c == 3:
        return (C[:, :, :3] @ x.reshape(n, 3, h * w) + C[:, :, 3:]).view(n, 3, h, w)
    if c == 1:
        row = C.mean(dim=1)
        return x * row[:, :3].sum(dim=1).view(n, 1, 1, 1) + row[:, 3].view(n, 1, 1, 1)
    raise UserError(f"ADA's colour transformations take grey (1 channel) or RGB (3 channel) images, and these have {c}: "
                    "remove brightness, contrast, lumaflip, hue and saturation from augment.transforms.")
