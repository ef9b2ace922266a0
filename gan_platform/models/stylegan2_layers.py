"""StyleGAN2's layers (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"):
equalised learning rate, modulated and demodulated convolution, FIR resampling, minibatch
standard deviation. The networks that use them are in stylegan2.py.

Equalised learning rate (Karras et al. 2018, ProGAN), with a learning-rate multiplier lambda:

    w = w_hat * lambda / sqrt(fan_in),      b = b_hat * lambda,      w_hat ~ N(0, 1 / lambda^2) at init

The weight used (w) starts at He's N(0, 1 / fan_in) in every layer, while the weight stored and
optimised (w_hat) has the same scale everywhere; Adam moves each stored weight by about lr a step
whatever its gradient's size, so each used weight moves by about lr * lambda / sqrt(fan_in): every
layer learns at the same relative speed, and lambda slows a layer down (0.01 in the mapping network,
StyleGAN's two orders of magnitude). With lambda = 1 the stored weights are N(0, 1). Storing
N(0, 1 / lambda^2) rather than N(0, 1) where lambda != 1 is what the authors' code does (their
FullyConnectedLayer): it keeps the used weights at He's scale at init.

Modulation and demodulation (StyleGAN2 eqs. 1 and 3): a style s (a scale per input channel, an
affine map of w) scales the weights, and each output channel's weights are renormalised,

    w'_ijk = s_i w_ijk,       w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps),

so that for inputs of unit variance every output channel has unit expected variance, whatever the
style. Computed as the paper's section 2.2 allows (and the authors' code does in training): scale
the input by s, convolve with w, scale the output by d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + eps);
the same numbers as per-sample weights, without a grouped convolution.

Resampling uses the low-pass filter [1, 3, 3, 1] (its outer product, normalised to sum 1):
up-sampling inserts zeros and filters with gain 4; a 3 x 3 convolution that doubles the side is a
transposed convolution of stride 2 followed by the filter; one that halves the side filters first
and convolves with stride 2. Leaky ReLU (slope 0.2) is multiplied by sqrt(2), He's gain, which keeps
a unit second moment.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATION_GAIN = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")  # per-layer noise: fresh N(0, 1), the layer's fixed draw, or none


def leaky_relu(x: Tensor) -> Tensor:
    """lrelu(x, 0.2) * sqrt(2)."""
    return F.leaky_relu(x, 0.2) * ACTIVATION_GAIN


def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the features of each row: z and the class embedding enter the mapping at unit scale."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _fir(x: Tensor, gain: float = 1.0) -> Tensor:
    """The [1, 3, 3, 1] filter, one per channel of `x`, summing to `gain`: (C, 1, 4, 4)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    f = torch.outer(f, f)
    return (f * (gain / f.sum())).expand(x.shape[1], 1, 4, 4)


def blur(x: Tensor, pad: int, gain: float = 1.0) -> Tensor:
    """x filtered by [1, 3, 3, 1] (times `gain`) with `pad` zeros on every side: side + 2 pad - 3."""
    return F.conv2d(x, _fir(x, gain), padding=pad, groups=x.shape[1])


def upsample2d(x: Tensor) -> Tensor:
    """Twice the side: zeros inserted, then the filter with gain 4 (the skip generator's image path)."""
    return F.conv_transpose2d(x, _fir(x, 4.0), stride=2, padding=1, groups=x.shape[1])


class EqualLinear(nn.Module):
    """A fully connected layer with equalised learning rate (module docstring), optionally followed by lrelu * sqrt(2)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier)) if bias else None
        self.weight_gain, self.bias_gain = lr_multiplier / math.sqrt(in_features), lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        b = self.bias * self.bias_gain if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, b)
        return leaky_relu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate, lrelu * sqrt(2) unless `activation` is false;
    `down` halves the side (filter, then stride 2). `gain` in forward scales the output (the
    residual D's sqrt(1/2))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down, self.pad = activation, down, kernel_size // 2

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        w = self.weight * self.weight_gain
        if self.down:
            x = F.conv2d(blur(x, self.pad + 1), w, self.bias, stride=2)
        else:
            x = F.conv2d(x, w, self.bias, padding=self.pad)
        x = leaky_relu(x) if self.activation else x
        return x * gain if gain != 1.0 else x


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False,
                     eps: float = 1e-8) -> Tensor:
    """conv(x, w'') for x (N, I, H, W), `weight` w (O, I, k, k) as used, `styles` s (N, I): modulated
    by s, demodulated unless `demodulate` is false (module docstring); `up` doubles the side."""
    n = x.shape[0]
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # side 2H + 1
        x = blur(x, 1, gain=4.0)                                     # side 2H
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:  # d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + eps), in float32
        d = (styles.float().square() @ weight.float().square().sum(dim=(2, 3)).t() + eps).rsqrt()
        x = x * d.to(x.dtype).reshape(n, -1, 1, 1)
    return x


class ModulatedConv(nn.Module):
    """One layer of the synthesis network: style s = A(w) (bias 1 at init), the modulated and
    demodulated 3 x 3 convolution, noise B * strength (a learned scalar, 0 at init), bias, lrelu * sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))  # the fixed draw of noise_mode "const"
        self.up, self.resolution = up, resolution

    def convolve(self, x: Tensor, w: Tensor) -> Tensor:
        """The modulated, demodulated convolution of x under the style of w: unit variance per channel for unit-variance x."""
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), up=self.up)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        x = self.convolve(x, w)
        if noise_mode == "random":
            x = x + torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return leaky_relu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1))


class ToRGB(nn.Module):
    """A modulated 1 x 1 convolution to image channels, not demodulated, plus a bias: one skip output."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=False)
        return x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)


class MinibatchStd(nn.Module):
    """The minibatch standard deviation feature (ProGAN; StyleGAN2's D): in groups of `group_size`
    samples (the whole batch if smaller; a batch that does not split evenly uses the greatest common
    divisor), the standard deviation of each feature over the group, averaged over `channels` slices
    of the channels and all pixels, appended as `channels` constant maps. It lets D see a batch
    whose samples are alike; it also makes each score depend on the group (tasks/speed.py reads
    `use_minibatch_std`)."""

    use_minibatch_std = True

    def __init__(self, group_size: int = 4, channels: int = 1):
        super().__init__()
        self.group_size, self.channels = group_size, channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = math.gcd(min(self.group_size, n), n)
        f = self.channels
        y = x.float().reshape(g, n // g, f, c // f, h, w)           # [group, n/g, F, c/F, H, W]
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()              # std over each group
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1)                # [n/g, F, 1, 1]
        y = y.repeat(g, 1, h, w).to(x.dtype)                          # back to every sample of its group
        return torch.cat([x, y], dim=1)


def check_noise_mode(mode: Optional[str]) -> str:
    """`mode` if it is a noise mode, else a ValueError naming them."""
    if mode not in NOISE_MODES:
        raise ValueError(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
    return mode
