"""Discriminator regularisers, as pure functions: WGAN's weight clipping and gradient penalty.

Each is applied in the critic step (tasks/gan.py, tasks/cyclegan.py), beside the objective of
objectives.py, and knows nothing of models or tasks: a critic is any callable from samples (and
a condition) to scores.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor, *cond: Tensor,
                     scale: float = 1.0) -> Tensor:
    """WGAN-GP: E[(||grad_x f(x_hat)||_2 - 1)^2] on x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per sample.

    The norm is taken per sample over all non-batch dimensions. The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into the critic's parameters.
    Extra arguments (a class label) are passed to the critic unchanged. Under fp16 pass the gradient
    scaler's current `scale`: the input gradient is taken of the scaled mean score (so it does not
    underflow; the mean, as in PyTorch's AMP recipe, keeps the scaler's initial 2^16 from
    overflowing fp16 at the critic's output) and unscaled before the norm. Samples are
    independent, so n * grad(mean) is the per-sample gradient.
    """
    n = real.shape[0]
    eps_shape = (n,) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat, *cond)
    (grad,) = torch.autograd.grad(scores.float().mean() * scale, x_hat, create_graph=True)
    norms = (grad.float() * (n / scale)).flatten(1).norm(2, dim=1)
    return (norms - 1.0).pow(2).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, clip_value: float) -> None:
    """WGAN weight clipping: every parameter of the critic into [-c, c], after each critic step."""
    for p in module.parameters():
        p.clamp_(-clip_value, clip_value)
