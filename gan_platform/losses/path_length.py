"""StyleGAN2's path length regulariser (Karras et al. 2020, eq. 4), a pure function.

    L_pl = E_{w, y} (||J_w^T y||_2 - a)^2,      y ~ N(0, I) / sqrt(H W) image-shaped,

J_w = dg(w)/dw is the Jacobian of the synthesis network at w; J_w^T y, the gradient of <g(w), y>
with respect to w, needs no Jacobian (one backward). The penalty asks that a fixed-size step in W
move the image by a fixed amount, whatever the direction and the place: a smoother, better
conditioned G. a is the running mean of the lengths, a <- a + decay (mean_batch ||J_w^T y|| - a)
with decay 0.01, updated before the penalty (which is taken about the new a, whose graph it keeps,
as the authors' code does); the caller keeps a between steps.

When the synthesis network takes one w per layer (ws: (N, L, w_dim), copies of the same w), the
length is sqrt(mean_l ||J_{w_l}^T y||^2), the mean over layers of the squared norms of the
per-layer gradients, as stylegan2's code computes it (`square().sum(2).mean(1).sqrt()`); for one w
per sample (ws: (N, w_dim)) it is ||J_w^T y|| exactly. A G-regularisation phase calls it
on G's own images and ws, every k-th G step, and multiplies it by its weight times k.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor


def path_length_penalty(images: Tensor, ws: Tensor, mean: Tensor | float, decay: float = 0.01,
                        noise: Optional[Tensor] = None, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """(penalty, new mean): mean_i (||J_w^T y||_i - a')^2 and a' = a + decay (mean_i ||J_w^T y||_i - a).

    `images` (N, C, H, W) must have been computed from `ws` (N, w_dim) or (N, L, w_dim) with the graph
    kept (`ws` a leaf that requires grad or an intermediate result, e.g. the mapping network's
    output); `mean` is a, the running mean (0 at the start); `noise` is y (default: a fresh
    N(0, I) / sqrt(H W)). The penalty keeps its graph (create_graph), so its backward reaches G's
    parameters; the new mean is detached. Under fp16 pass the gradient scaler's `scale`: the
    gradient is taken of the scaled product and unscaled before the norm (as gradient_penalty does).
    """
    if noise is None:
        noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum() * scale, ws, create_graph=True)
    grad = grad.float() / scale
    lengths = grad.square().reshape(ws.shape[0], -1, ws.shape[-1]).sum(dim=2).mean(dim=1).sqrt()
    mean = torch.as_tensor(mean, dtype=lengths.dtype, device=lengths.device)
    new_mean = mean + decay * (lengths.mean() - mean)
    return (lengths - new_mean).square().mean(), new_mean.detach()
