"""General geometric transformations, the `g` of ADA's `bgc` pipeline, and their resampling.

In centred pixel coordinates each image is, in this order (the paper's magnitudes, each after
its own coin of p):

    scale    isotropic scaling by s = 2^N(0, 0.2^2)
    rotate   rotation by theta ~ U(-pi, pi), drawn twice, before and after `aniso`, each with
             probability 1 - sqrt(1 - p), so that one happens or both with probability p
    aniso    anisotropic scaling diag(s, 1/s), s = 2^N(0, 0.2^2)
    xfrac    translation by N(0, (0.125 side)^2) pixels along each axis

They compose into one affine map per image, kept as its inverse M (output -> input coordinates,
a 3 x 3 homogeneous matrix). Resampling (`resample`) follows the paper's recipe with code of its
own: the image, padded by reflection, is upsampled 2x with an orthogonal low-pass filter, sampled
bilinearly at M's input points, and downsampled 2x with the same filter. The filter is Daubechies'
least asymmetric wavelet with 6 vanishing moments (sym6, 12 taps). Orthogonality makes down(up(x))
= x, so an image whose draw is the identity comes out as it went in (to float rounding), and the
2x detour keeps bilinear sampling from aliasing where the map shrinks the image. The filter is not
symmetric: the upsampled samples are placed at its centroid (a delay of 5.1 taps, not 5.5), so
that a mirrored or turned image lands where the map puts it. The up- and downsampling are each
two small matrix products (reflection padding folded in), and every step is linear in the pixels:
gradients flow to the input, also through a double backward (R1 on images before augmentation).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_platform.augment.blit import coin, reflect

SCALE_STD, ANISO_STD, XFRAC_STD = 0.2, 0.2, 0.125  # log2 std of the scalings; translation std / side

# Daubechies' least asymmetric scaling filter with 6 vanishing moments (sym6; "Ten Lectures on
# Wavelets", 1992), here scaled to sum 1. tests/test_augment_pipeline.py checks that it is one:
# orthogonal to its even shifts, with 6 vanishing moments of the matching high-pass filter.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
TAPS = len(SYM6)
OFFSET = TAPS // 2 - 1  # y[n] = sum_k 2 h[n - 2k + OFFSET] x[k]
# the filter's centroid (its delay), sum_k k h[k] / sum_k h[k]: a number known before any tensor exists,
# so that resampling reads nothing back from the device
CENTRE = sum(k * c for k, c in enumerate(SYM6)) / sum(SYM6)


def lowpass(device: torch.device, dtype: torch.dtype) -> Tensor:
    h = torch.tensor(SYM6, device=device, dtype=torch.float64)
    return (h / h.sum()).to(dtype)


def _matrices(n: int, device: torch.device) -> Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)


def _scaling(sx: Tensor, sy: Tensor) -> Tensor:
    m = _matrices(len(sx), sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotation(theta: Tensor) -> Tensor:
    m = _matrices(len(theta), theta.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = theta.cos(), -theta.sin(), theta.sin(), theta.cos()
    return m


def _translation(t: Tensor) -> Tensor:
    m = _matrices(len(t), t.device)
    m[:, :2, 2] = t
    return m


def _random_rotation(n: int, probability: Tensor, device: torch.device) -> Tensor:
    """The inverse of a rotation by U(-pi, pi), or the identity, per image."""
    theta = (torch.rand(n, device=device) * 2 - 1) * math.pi
    return _rotation(-torch.where(coin(n, probability, device), theta, torch.zeros_like(theta)))


def draw_geometric(n: int, p: Tensor, names: set[str], size: tuple[int, int], device: torch.device) -> Tensor:
    """Per image, the inverse M (n, 3, 3) of scale -> rotate -> aniso -> rotate -> xfrac (module docstring)."""
    h, w = size
    M = _matrices(n, device)
    one = torch.ones(n, device=device)
    if "scale" in names:
        s = torch.where(coin(n, p, device), torch.exp2(torch.randn(n, device=device) * SCALE_STD), one)
        M = M @ _scaling(1 / s, 1 / s)
    p_rotate = 1 - torch.sqrt((1 - p).clamp(0, 1))  # P(before or after) = 1 - (1 - p_rotate)^2 = p
    if "rotate" in names:
        M = M @ _random_rotation(n, p_rotate, device)
    if "aniso" in names:
        s = torch.where(coin(n, p, device), torch.exp2(torch.randn(n, device=device) * ANISO_STD), one)
        M = M @ _scaling(1 / s, s)
    if "rotate" in names:
        M = M @ _random_rotation(n, p_rotate, device)
    if "xfrac" in names:
        t = torch.randn(n, 2, device=device) * XFRAC_STD * torch.tensor([w, h], device=device)
        M = M @ _translation(-torch.where(coin(n, p, device).unsqueeze(1), t, torch.zeros_like(t)))
    return M


def upsampling_matrix(size: int, pad: int, h: Tensor) -> Tensor:
    """U (2 (size + 2 pad), size): the image padded by `pad` reflected pixels each side, then 2x
    upsampled, y[n] = sum_k 2 h[n - 2k + OFFSET] x_padded[k]; as one matrix, so that a pass is a matmul."""
    k = torch.arange(size + 2 * pad, device=h.device)
    n = torch.arange(2 * (size + 2 * pad), device=h.device)
    tap = n.view(-1, 1) - 2 * k.view(1, -1) + OFFSET
    W = torch.where((tap >= 0) & (tap < TAPS), 2 * h[tap.clamp(0, TAPS - 1)], torch.zeros((), dtype=h.dtype, device=h.device))
    R = torch.zeros(size + 2 * pad, size, dtype=h.dtype, device=h.device)
    R[k, reflect(k - pad, size)] = 1.0
    return W @ R


def downsampling_matrix(size: int, h: Tensor) -> Tensor:
    """D (size, 2 size + TAPS - 2): z[m] = sum_j h[j - 2m] window[j], the adjoint of the upsampling
    (window sample j is y[j - OFFSET]): D U = I on the image."""
    j = torch.arange(2 * size + TAPS - 2, device=h.device)
    tap = j.view(1, -1) - 2 * torch.arange(size, device=h.device).view(-1, 1)
    return torch.where((tap >= 0) & (tap < TAPS), h[tap.clamp(0, TAPS - 1)], torch.zeros((), dtype=h.dtype, device=h.device))


def _affine(scale: tuple[float, float], shift: tuple[float, float], device: torch.device) -> Tensor:
    """The 3 x 3 map (x, y) -> (scale_x x + shift_x, scale_y y + shift_y)."""
    return torch.tensor([[scale[0], 0.0, shift[0]], [0.0, scale[1], shift[1]], [0.0, 0.0, 1.0]], device=device)


def _grid(M: Tensor, size: tuple[int, int], pad: tuple[int, int], centre: float, dtype: torch.dtype) -> Tensor:
    """grid_sample's coordinates of every 2x sample of the output window, in the upsampled padded input.
    Window sample j lies at output position (j - centre)/2 (pixels); input position x lies at
    upsampled index 2 (x + pad) + centre - OFFSET. All the steps are affine: one matrix per image."""
    (h, w), (ph, pw) = size, pad
    win_h, win_w = 2 * h + TAPS - 2, 2 * w + TAPS - 2
    up_h, up_w = 2 * (h + 2 * ph), 2 * (w + 2 * pw)
    device = M.device
    window = _affine((win_w / 2, win_h / 2), ((win_w - 1) / 2, (win_h - 1) / 2), device)   # affine_grid's [-1, 1] -> j
    to_centred = _affine((0.5, 0.5), (-centre / 2 - (w - 1) / 2, -centre / 2 - (h - 1) / 2), device)
    to_index = _affine((2.0, 2.0), (w - 1 + 2 * pw + centre - OFFSET, h - 1 + 2 * ph + centre - OFFSET), device)
    to_unit = _affine((2 / up_w, 2 / up_h), (1 / up_w - 1, 1 / up_h - 1), device)        # index -> grid_sample's [-1, 1]
    theta = to_unit @ to_index @ M @ to_centred @ window
    return F.affine_grid(theta[:, :2].to(dtype), [M.shape[0], 1, win_h, win_w], align_corners=False)


@functools.lru_cache(maxsize=32)
def _filters(h: int, w: int, pad: tuple[int, int], device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """The up- and downsampling matrices of an h x w image, made once per shape
    (outside inference mode, so that training can use them whenever they were first made)."""
    with torch.inference_mode(False), torch.no_grad():
        f = lowpass(device, torch.float64)
        up = [upsampling_matrix(s, p, f).to(dtype) for s, p in ((h, pad[0]), (w, pad[1]))]
        down = [downsampling_matrix(s, f).to(dtype) for s in (h, w)]
    return up[0], up[1].T.contiguous(), down[0], down[1].T.contiguous()


def resample(x: Tensor, M: Tensor) -> Tensor:
    """Image i warped by the affine map whose inverse is M[i] (module docstring: reflect, 2x up, bilinear, 2x down).
    The upsampled image holds half the image reflected on each side; a map that reaches further
    finds grid_sample's reflection of that."""
    _, _, h, w = x.shape
    pad = (h // 2 + TAPS // 4, w // 2 + TAPS // 4)
    up_h, up_w_t, down_h, down_w_t = _filters(h, w, pad, x.device, x.dtype)
    grid = _grid(M, (h, w), pad, CENTRE, x.dtype)
    sampled = F.grid_sample(up_h @ x @ up_w_t, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return down_h @ sampled @ down_w_t
