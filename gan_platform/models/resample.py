"""Filtered (interpolative) resampling by a factor of two: bilinear up- and down-sampling written
as a fixed low-pass filter, the resampling of stylegan2 (`upfirdn2d`) and R3GAN.

R3GAN (Huang et al. 2024, Sec. 3) resamples between stages by "bilinear interpolation" rather than
transposed or strided convolutions, which leave checkerboard artifacts unless low-pass filtered. Its
filter is the binomial [1, 2, 1] convolved with the box [1, 1] of a factor-two step:

    f = [1, 3, 3, 1] / 8,    K = f f^T   (4 x 4, sums to 1)

- up:   zero-stuff x to twice its side, convolve with 4 K (each output pixel is 3/4 of its nearer
        and 1/4 of its farther input neighbour along each axis): exactly bilinear interpolation
        with half-pixel centres (align_corners=False);
- down: convolve x with K at stride 2 (each output pixel weighs the 4 x 4 inputs around its
        centre): the anti-aliased bilinear reduction.

Borders: the image is extended by replicating its edge pixels (as bilinear interpolation clamps
at the edge), so a constant image stays exactly constant. stylegan2's and R3GAN's code pad with
zeros instead, which darkens the outermost ring of pixels by a quarter; in the interior the two
are the same filter. The filter is a fixed buffer (not a parameter, not in the state dict) and
each channel is filtered alone, by one depthwise convolution (on the CPU about 5x faster than
filtering a batch of one-channel images, the double backward of R1 included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BILINEAR_TAPS = (1.0, 3.0, 3.0, 1.0)  # [1, 2, 1] (the paper's filter) convolved with [1, 1]


def lowpass_kernel(taps: tuple[float, ...] = BILINEAR_TAPS) -> Tensor:
    """The separable 2-D filter K = f f^T of the 1-D `taps`, normalised to sum to 1."""
    f = torch.tensor(taps, dtype=torch.float32)
    kernel = torch.outer(f, f)
    return kernel / kernel.sum()


class _Resample(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", lowpass_kernel(), persistent=False)

    def extra_repr(self) -> str:
        return f"taps={BILINEAR_TAPS}"


class Upsample2x(_Resample):
    """(N, C, H, W) -> (N, C, 2H, 2W) by bilinear interpolation (the module docstring's `up`)."""

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        kernel = (4 * self.kernel).to(x.dtype).expand(c, 1, 4, 4)
        # output o takes padded inputs j with o = 2 j - 3 + k: 3/4 of the nearer neighbour, 1/4 of the farther
        return F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2, padding=3, groups=c)


class Downsample2x(_Resample):
    """(N, C, H, W) -> (N, C, H/2, W/2) by the filter K at stride 2 (the module docstring's `down`)."""

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(c, 1, 4, 4)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2, groups=c)
