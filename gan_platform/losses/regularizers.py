"""Discriminator regularisers, as pure functions: WGAN's weight clipping and gradient penalty, and
the zero-centred R1 / R2 penalties (Mescheder et al. 2018; R3GAN, Huang et al. 2024).

R1 = gamma/2 E_x[||grad_x D(x)||^2] on real data, R2 = gamma/2 E_z[||grad_x D(x)|_{x=G(z)}||^2] on
fakes; `squared_gradient_norm` is the expectation, the task multiplies gamma/2 (and, under lazy
regularisation, the interval k: stylegan2 applies it every k-th D step, scaled by k).

Each is applied in the critic step (tasks/gan.py, tasks/cyclegan.py), beside the objective of
objectives.py, and knows nothing of models or tasks: a critic is any callable from samples (and
a condition) to scores.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn


def gradient_penalty(critic: Callable[..., Tensor], real: Tensor, fake: Tensor, *cond: Tensor,
                     scale: float = 1.0, pack: int = 1, eps: Optional[Tensor] = None) -> Tensor:
    """WGAN-GP: E[(||grad f(x_hat)||_2 - 1)^2] on x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per critic input.

    A critic input is one sample, or with PacGAN packing (`pack` > 1, the critic judging `pack`
    consecutive samples as one) one pack: eps is drawn once per pack and the norm is taken over the
    whole packed input, so the penalty is that of the critic on packs. The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into the critic's parameters.
    Extra arguments (a class label) are passed to the critic unchanged. Under fp16 pass the gradient
    scaler's current `scale`: the input gradient is taken of the scaled mean score (so it does not
    underflow; the mean, as in PyTorch's AMP recipe, keeps the scaler's initial 2^16 from
    overflowing fp16 at the critic's output) and unscaled before the norm. Critic inputs must be
    independent (no batch statistics: no BatchNorm, no minibatch-std feature), so m * grad(mean)
    over the m inputs is each input's own gradient. `eps` (m, 1, ...) gives the interpolation
    weights (default: fresh draws; gradient accumulation passes its round's share of the step's).
    """
    n = real.shape[0]
    if pack < 1 or n % pack:
        raise ValueError(f"gradient_penalty: {n} samples cannot be split into packs of {pack}")
    m = n // pack
    if eps is None:
        eps = gp_weights(m, real)
    eps = eps.repeat_interleave(pack, dim=0)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat, *cond)
    if scores.shape[0] != m:
        raise ValueError(f"gradient_penalty: the critic gave {scores.shape[0]} scores for {n} samples; "
                         f"pass its pack size (pack={n // max(scores.shape[0], 1)}?)")
    (grad,) = torch.autograd.grad(scores.float().mean() * scale, x_hat, create_graph=True)
    norms = (grad.float() * (m / scale)).reshape(m, -1).norm(2, dim=1)
    return (norms - 1.0).pow(2).mean()


def gp_weights(m: int, like: Tensor) -> Tensor:
    """The gradient penalty's interpolation weights eps ~ U[0, 1] for m critic inputs shaped like `like`."""
    return torch.rand((m,) + (1,) * (like.dim() - 1), device=like.device, dtype=like.dtype)


def squared_gradient_norm(scores: Tensor, inputs: Tensor, scale: float = 1.0) -> Tensor:
    """E_i[||grad_{x_i} D(x_i)||_2^2]: the mean over samples of the squared input-gradient norm.

    `scores` must have been computed from `inputs` (which requires grad), so that the D step's own
    forward pass serves the penalty; the graph is kept (``create_graph=True``) for D's parameters.
    Samples are independent, so the gradient of the mean score times the number of scores is each
    sample's own gradient. When D judges samples in packs (PacGAN) a score belongs to a pack, and the
    norm is that of the packed input (as for `gradient_penalty`): the mean is over scores. Under fp16
    pass the gradient scaler's `scale` (as for `gradient_penalty`).
    """
    (grad,) = torch.autograd.grad(scores.float().mean() * scale, inputs, create_graph=True)
    grad = grad.float() * (scores.numel() / scale)
    return grad.pow(2).sum() / scores.numel()


def r1_penalty(critic: Callable[..., Tensor], real: Tensor, *cond: Tensor, scale: float = 1.0) -> Tensor:
    """R1 without its gamma/2: E_x[||grad_x D(x)||^2] on real samples (judged under their label `cond`)."""
    x = real.detach().requires_grad_(True)
    return squared_gradient_norm(critic(x, *cond), x, scale)


def r2_penalty(critic: Callable[..., Tensor], fake: Tensor, *cond: Tensor, scale: float = 1.0) -> Tensor:
    """R2 without its gamma/2: E_z[||grad_x D(x)||^2] at x = G(z) (G gets no gradient from it)."""
    return r1_penalty(critic, fake, *cond, scale=scale)


@torch.no_grad()
def clip_weights(module: nn.Module, clip_value: float) -> None:
    """WGAN weight clipping: every parameter of the critic that trains into [-c, c], after each critic
    step (a frozen block, models/freeze.py, keeps its weights)."""
    for p in module.parameters():
        if p.requires_grad:
            p.clamp_(-clip_value, clip_value)
