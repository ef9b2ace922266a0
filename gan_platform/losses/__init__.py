"""Adversarial objectives (objectives.py), discriminator regularisers (regularizers.py) and the
regularisers of G: StyleGAN2's path length (path_length.py) and BigGAN's orthogonal regularisation
(orthogonal.py), pure functions.

A new GAN variant is an objective here (three functions, or two for a pairing one, and a line in `LOSSES`) and a config file
(conf/loss/), not a new loop. Models know nothing of losses and losses know nothing of models: the
tasks join them.
"""

from gan_platform.losses.objectives import (
    LOSSES, AdversarialLoss, get_loss, cyclegan_objective, d_minimax_real, d_minimax_fake, g_minimax, g_nonsaturating,
    d_wasserstein_real, d_wasserstein_fake, g_wasserstein, d_hinge_real, d_hinge_fake,
    d_least_squares_real, d_least_squares_fake, g_least_squares, g_least_squares_cyclegan, d_relativistic,
    g_relativistic,
)
from gan_platform.losses.orthogonal import off_diagonal_gram, orthogonal_regularisation, orthogonal_weights
from gan_platform.losses.path_length import path_length_penalty
from gan_platform.losses.regularizers import (clip_weights, gp_weights, gradient_penalty, r1_penalty, r2_penalty,
                                              squared_gradient_norm)

__all__ = [
    "LOSSES", "AdversarialLoss", "get_loss", "cyclegan_objective", "clip_weights", "gp_weights", "gradient_penalty", "r1_penalty",
    "r2_penalty", "squared_gradient_norm", "d_minimax_real", "d_minimax_fake", "g_minimax", "g_nonsaturating",
    "d_wasserstein_real", "d_wasserstein_fake", "g_wasserstein", "d_hinge_real", "d_hinge_fake", "d_least_squares_real",
    "d_least_squares_fake", "g_least_squares", "g_least_squares_cyclegan", "d_relativistic", "g_relativistic",
    "path_length_penalty", "off_diagonal_gram", "orthogonal_regularisation", "orthogonal_weights",
]
