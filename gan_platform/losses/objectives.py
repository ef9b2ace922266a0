"""Adversarial objectives, as pure functions.

Every objective gives both players a loss of the discriminator's raw scores on a real and a fake
batch (logits for the probabilistic losses, critic values for the Wasserstein loss):
D minimises ``d(D(x), D(G(z)))`` and G minimises ``g(D(x), D(G(z)))``.

Most objectives are *separable*: a triple of functions of one score tensor each,

    d_real(scores)  the discriminator's loss on real samples
    d_fake(scores)  the discriminator's loss on fake samples (and, for a conditional GAN, on real
                    samples shown with the wrong label)
    g_fake(scores)  the generator's loss on its own samples

with ``d = d_real(D(x)) + d_fake(D(G(z)))`` and ``g = g_fake(D(G(z)))`` (G's loss ignores D(x)).
A *pairing* objective instead scores each real sample against a fake one of the same batch
(``d_pair``, ``g_pair``), and G's step then needs D(x) as well. With D(x) = sigmoid(s):

- ``minimax``: D maximises E[log D(x)] + E[log(1 - D(G(z)))]; G *minimises the same*, i.e.
  E[log(1 - D(G(z)))] = -E[softplus(s)]. This is the saturating loss of the original paper: when D
  confidently rejects fakes (s << 0) its gradient vanishes.
- ``nonsaturating``: G maximises E[log D(G(z))], i.e. minimises E[softplus(-s)]; the gradient is
  largest exactly where the minimax one vanishes.
- ``wasserstein``: the critic maximises E[f(x)] - E[f(G(z))] (earth mover's distance, dual form);
  G minimises -E[f(G(z))]. Needs a Lipschitz critic: ``clip_weights`` or ``gradient_penalty`` (regularizers.py).
- ``hinge``: D minimises E[relu(1 - f(x))] + E[relu(1 + f(G(z)))]; G minimises -E[f(G(z))].
- ``least_squares``: D minimises 1/2 E[(f(x) - 1)^2] + 1/2 E[f(G(z))^2]; G 1/2 E[(f(G(z)) - 1)^2]
  (Mao et al. 2017, eq. 2 with a = 0, b = c = 1: the 1/2 on both sides).
- ``relativistic`` (RpGAN, Jolicoeur-Martineau 2018; the loss of R3GAN, Huang et al. 2024): on the
  paired difference d_i = f(x_i) - f(G(z_i)), D minimises E[softplus(-d)] and G minimises
  E[softplus(d)] = E[softplus(-(f(G(z)) - f(x)))]: each fake only has to look more real than its
  partner, which R3GAN pairs with the R1 and R2 penalties (regularizers.py) for a stable, well
  covering GAN.

CycleGAN (Zhu et al. 2017, eq. 1 and the authors' code) weighs its least-squares generator term
without the 1/2, E[(f(G(x)) - 1)^2], against the cycle loss's lambda; its discriminator keeps the
1/2. `cyclegan_objective` gives the CycleGAN task that form; the GAN task uses the objectives as above.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch.nn.functional as F
from torch import Tensor

Scores = Callable[[Tensor], Tensor]
Pair = Callable[[Tensor, Tensor], Tensor]


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


def g_least_squares_cyclegan(scores: Tensor) -> Tensor:
    """E[(f(G(x)) - 1)^2]: CycleGAN's generator term (Zhu et al. 2017), twice LSGAN's."""
    return (scores - 1.0).pow(2).mean()


# -- relativistic pairing (RpGAN) ----------------------------------------------------------------
def d_relativistic(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[softplus(-(f(x) - f(G(z))))], pairs taken within the batch."""
    return F.softplus(fake_scores - real_scores).mean()


def g_relativistic(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """E[softplus(-(f(G(z)) - f(x)))], pairs taken within the batch."""
    return F.softplus(real_scores - fake_scores).mean()


@dataclass(frozen=True)
class AdversarialLoss:
    """A named objective (see the module docstring): separable (`d_real`, `d_fake`, `g_fake`) or
    pairing (`d_pair`, `g_pair`); `d` and `g` are the players' losses either way."""

    name: str
    d_real: Optional[Scores] = None
    d_fake: Optional[Scores] = None
    g_fake: Optional[Scores] = None
    d_pair: Optional[Pair] = None
    g_pair: Optional[Pair] = None

    @property
    def g_uses_real(self) -> bool:
        """True for a pairing objective: G's loss looks at D(x) of a real batch too."""
        return self.g_pair is not None

    def d(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        """The discriminator's loss: d_pair(D(x), D(G(z))), or d_real(D(x)) + d_fake(D(G(z)))."""
        if self.d_pair is not None:
            return self.d_pair(real_scores, fake_scores)
        return self.d_real(real_scores) + self.d_fake(fake_scores)

    def g(self, real_scores: Optional[Tensor], fake_scores: Tensor) -> Tensor:
        """The generator's loss: g_pair(D(x), D(G(z))), or g_fake(D(G(z))) (real_scores may be None)."""
        if self.g_pair is not None:
            return self.g_pair(real_scores, fake_scores)
        return self.g_fake(fake_scores)

    def d_wrong_label(self, real_scores: Tensor, wrong_scores: Tensor) -> Tensor:
        """D's loss for rejecting real samples shown with a wrong label: scored as fakes (a pairing
        objective pairs each with the same sample under its true label)."""
        if self.d_pair is not None:
            return self.d_pair(real_scores, wrong_scores)
        return self.d_fake(wrong_scores)


LOSSES: dict[str, AdversarialLoss] = {
    loss.name: loss
    for loss in (
        AdversarialLoss("minimax", d_minimax_real, d_minimax_fake, g_minimax),
        AdversarialLoss("nonsaturating", d_minimax_real, d_minimax_fake, g_nonsaturating),
        AdversarialLoss("wasserstein", d_wasserstein_real, d_wasserstein_fake, g_wasserstein),
        AdversarialLoss("hinge", d_hinge_real, d_hinge_fake, g_wasserstein),
        AdversarialLoss("least_squares", d_least_squares_real, d_least_squares_fake, g_least_squares),
        AdversarialLoss("relativistic", d_pair=d_relativistic, g_pair=g_relativistic),
    )
}


def get_loss(name: str) -> AdversarialLoss:
    """The objective called `name`; a clear error lists the known ones."""
    from gan_platform.errors import ConfigError

    if name not in LOSSES:
        raise ConfigError(f"Unknown loss '{name}': choose one of {', '.join(sorted(LOSSES))}.")
    return LOSSES[name]


def cyclegan_objective(loss: AdversarialLoss) -> AdversarialLoss:
    """`loss` as CycleGAN weighs it: least squares with G's term E[(f(G(x)) - 1)^2] (the paper's),
    every other objective unchanged."""
    return replace(loss, g_fake=g_least_squares_cyclegan) if loss.name == "least_squares" else loss
