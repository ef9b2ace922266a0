"""What a step measures of D's decisions and of the gradients, shared by the GAN and CycleGAN steps:
the loss's decision threshold, D's accuracies on either side of it, the side of it each real image
lies on (ADA's evidence), and a network's gradient norm (the health signals, training/health.py)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

# The score at which D's loss says "real" rather than "fake": the sign of a logit or a hinge score,
# 1/2 between least squares' targets 0 and 1. A loss not listed (a critic) has no accuracy.
DECISION_THRESHOLDS = {"minimax": 0.0, "nonsaturating": 0.0, "hinge": 0.0, "least_squares": 0.5}


def real_side(loss: Any, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """Per real image, how far D's score lies on the "real" side of its decision: D(x) - D(G(z)) of
    its pair for a pairing loss (RpGAN: the sign R3GAN logs), D(x) minus the loss's threshold
    otherwise (0 for logits and hinge scores, 1/2 for least squares). ADA's r_t is E[sign(.)]."""
    if loss.d_pair is not None:
        return real_scores - fake_scores
    return real_scores - DECISION_THRESHOLDS.get(loss.name, 0.0)


def decision_accuracies(real_scores: Tensor, fake_scores: Tensor, threshold: float) -> dict[str, Tensor]:
    """D's accuracy on real and on fake samples: the share of each on its side of `threshold`."""
    return {"d_acc_real": (real_scores.detach().float() > threshold).float().mean(),
            "d_acc_fake": (fake_scores.detach().float() < threshold).float().mean()}


def gradient_norm(module: nn.Module, scale: float = 1.0) -> Tensor:
    """||grad|| over all parameters of `module` that have one (divided by a gradient scaler's scale), on the device."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))).float() / scale
