"""Adversarial objectives and discriminator regularisers, as pure functions.

Every objective is a triple of functions on the discriminator's raw scores (logits for the
probabilistic losses, critic values for the Wasserstein loss):

    d_real(scores)  the discriminator's loss on real samples
    d_fake(scores)  the discriminator's loss on fake samples (and, for a conditional GAN, on real
                    samples shown with the wrong label)
    g(scores)       the generator's loss on its own samples

so that the discriminator minimises ``d_real(D(x)) + d_fake(D(G(z)))`` and the generator minimises
``g(D(G(z)))``. With D(x) = sigmoid(s):

- ``minimax``: D maximises E[log D(x)] + E[log(1 - D(G(z)))]; G *minimises the same*, i.e.
  E[log(1 - D(G(z)))] = -E[softplus(s)]. This is the saturating loss of the original paper: when D
  confidently rejects fakes (s << 0) its gradient vanishes.
- ``nonsaturating``: G maximises E[log D(G(z))], i.e. minimises E[softplus(-s)]; the gradient is
  largest exactly where the minimax one vanishes.
- ``wasserstein``: the critic maximises E[f(x)] - E[f(G(z))] (earth mover's distance, dual form);
  G minimises -E[f(G(z))]. Needs a Lipschitz critic: ``clip_weights`` or ``gradient_penalty``.
- ``hinge``: D minimises E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]; G minimises -E[f(G(z))].
- ``least_squares``: D minimises 1/2 E[(f(x) - 1)^2] + 1/2 E[f(G(z))^2]; G 1/2 E[(f(G(z)) - 1)^2].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Scores = Callable[[Tensor], Tensor]


# -- minimax (the original, saturating GAN) ---------------------------------------------------
def d_minimax_real(scores: Tensor) -> Tensor:
    """-E[log D(x)]."""
    return F.softplus(-scores).mean()


def d_minimax_fake(scores: Tensor) -> Tensor:
    """-E[log(1 - D(G(z)))]."""
    return F.softplus(scores).mean()


def g_minimax(scores: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))], which G minimises: the saturating form."""
    return -F.softplus(scores).mean()


# -- non-saturating ----------------------------------------------------------------------------
def g_nonsaturating(scores: Tensor) -> Tensor:
    """-E[log D(G(z))]: G maximises log D(G(z)) instead."""
    return F.softplus(-scores).mean()


# -- Wasserstein --------------------------------------------------------------------------------
def d_wasserstein_real(scores: Tensor) -> Tensor:
    """-E[f(x)]."""
    return -scores.mean()


def d_wasserstein_fake(scores: Tensor) -> Tensor:
    """E[f(G(z))]."""
    return scores.mean()


def g_wasserstein(scores: Tensor) -> Tensor:
    """-E[f(G(z))]."""
    return -scores.mean()


# -- hinge --------------------------------------------------------------------------------------
def d_hinge_real(scores: Tensor) -> Tensor:
    """E[relu(1 - f(x))]."""
    return F.relu(1.0 - scores).mean()


def d_hinge_fake(scores: Tensor) -> Tensor:
    """E[relu(1 + f(G(z)))]."""
    return F.relu(1.0 + scores).mean()


# -- least squares ------------------------------------------------------------------------------
def d_least_squares_real(scores: Tensor) -> Tensor:
    """1/2 E[(f(x) - 1)^2]."""
    return 0.5 * (scores - 1.0).pow(2).mean()


def d_least_squares_fake(scores: Tensor) -> Tensor:
    """1/2 E[f(G(z))^2]."""
    return 0.5 * scores.pow(2).mean()


def g_least_squares(scores: Tensor) -> Tensor:
    """1/2 E[(f(G(z)) - 1)^2]."""
    return 0.5 * (scores - 1.0).pow(2).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """A named pair of D and G objectives (see the module docstring)."""

    name: str
    d_real: Scores
    d_fake: Scores
    g: Scores

    def d(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """The discriminator's loss: d_real(D(x)) + d_fake(D(G(z)))."""
        return self.d_real(real_scores) + self.d_fake(fake_scores)


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss("minimax", d_minimax_real, d_minimax_fake, g_minimax),
        AdversarialLoss("nonsaturating", d_minimax_real, d_minimax_fake, g_nonsaturating),
        AdversarialLoss("wasserstein", d_wasserstein_real, d_wasserstein_fake, g_wasserstein),
        AdversarialLoss("hinge", d_hinge_real, d_hinge_fake, g_wasserstein),
        AdversarialLoss("least_squares", d_least_squares_real, d_least_squares_fake, g_least_squares),
    )
}


def get_loss(name: str) -> AdversarialLoss:
    """The objective called `name`; a clear error lists the known ones."""
    from gan_platform.errors import ConfigError

    if name not in LOSSES:
        raise ConfigError(f"Unknown loss '{name}': choose one of {', '.join(sorted(LOSSES))}.")
    return LOSSES[name]


# -- discriminator regularisers ------------------------------------------------------------------
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
