"""Pixel blitting, the `b` of ADA's `bgc` pipeline: transformations that move whole pixels.

In centred pixel coordinates u = (x - (W - 1)/2, y - (H - 1)/2) each image is, in this order,

    xflip     mirrored left-right: u_x -> -u_x, after a coin of p and then a fair coin (rate p/2)
    rotate90  rotated by k x 90 degrees, k uniform in {0, 1, 2, 3} after a coin of p (rate 3p/4)
    xint      shifted by t = round(U(-1/8, 1/8) x side) pixels along each axis, after a coin of p

The mirror and the turn together are one of the square's 8 symmetries, executed by one gather
from a table of the 8 pixel permutations; the shift by one gather per axis. Both are exact (no
interpolation) and differentiable (the gradient of an output pixel flows to the one input pixel
it shows). Pixels shifted in from outside the image are its reflection about the border pixels.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

XINT_MAX = 0.125  # the largest integer shift, as a share of the side (the paper's)



def reflect(index: Tensor, size: int) -> Tensor:
    """Indices folded back into [0, size) by mirroring about the first and the last pixel."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * size - 2
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def coin(n: int, probability: Tensor, device: torch.device) -> Tensor:
    """n independent Bernoulli(probability) draws (a bool per image); `probability` may live on the device."""
    return torch.rand(n, device=device) < probability


def draw_blit(n: int, p: Tensor, names: set[str], size: tuple[int, int],
              device: torch.device) -> tuple[Optional[Tensor], Optional[Tensor]]:
    """Per image, which of the 8 mirrorings and quarter turns (n,: 4 flip + k) and the integer shift
    (n, 2) as (x, y) pixels; None for a part none of whose transformations is chosen."""
    h, w = size
    symmetry = shift = None
    if "xflip" in names or "rotate90" in names:
        symmetry = torch.zeros(n, dtype=torch.long, device=device)
        if "xflip" in names:
            symmetry += 4 * torch.randint(0, 2, (n,), device=device) * coin(n, p, device)
        if "rotate90" in names:
            symmetry += torch.randint(0, 4, (n,), device=device) * coin(n, p, device)
    if "xint" in names:
        t = ((torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX * torch.tensor([w, h], device=device)).round().long()
        shift = torch.where(coin(n, p, device).unsqueeze(1), t, torch.zeros_like(t))
    return symmetry, shift


def _symmetries(h: int, w: int, device: torch.device) -> Tensor:
    """(8, h w): for mirroring f then k quarter turns (index 4 f + k), the input pixel each output pixel shows."""
    pixels = torch.arange(h * w, device=device).view(h, w)
    if h != w:  # only the mirror maps a rectangle onto itself
        return torch.stack([pixels, pixels, pixels, pixels] + [pixels.flip(1)] * 4).view(8, h * w)
    return torch.stack([torch.rot90(m, k) for m in (pixels, pixels.flip(1)) for k in range(4)]).view(8, h * w)


def blit(x: Tensor, symmetry: Optional[Tensor], shift: Optional[Tensor]) -> Tensor:
    """Image i mirrored and turned as `symmetry[i]` says, then shifted by `shift[i]` = (x, y) pixels,
    the border reflected in; pixels are gathered, never interpolated."""
    n, c, h, w = x.shape
    if symmetry is not None:
        index = _symmetries(h, w, x.device)[symmetry].view(n, 1, h * w).expand(n, c, h * w)
        x = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    if shift is not None:
        rows = reflect(torch.arange(h, device=x.device).view(1, h) - shift[:, 1:], h)
        cols = reflect(torch.arange(w, device=x.device).view(1, w) - shift[:, :1], w)
        x = x.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w)).gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
    return x


def translate_reflect(x: Tensor, ty: Tensor, tx: Tensor) -> Tensor:
    """Shift image i by (ty[i], tx[i]) whole pixels, the border reflected in."""
    shift = torch.stack([tx, ty], dim=1).to(device=x.device, dtype=torch.long)
    return blit(x, None, shift)
