"""The base of the collapse metrics: torchmetrics' `Metric` protocol, the part they use.

A metric registers its tensors with `add_state(name, default)`; `update(...)` adds samples,
`compute()` reads the result, `reset()` restores every state to its default and `.to(device)` moves
them (they are non-persistent buffers). States are not reduced across processes: the evaluator
gathers the samples of every process before `update` (gan_evaluator.py), so each rank holds the
whole set, as torchmetrics' `sync_on_compute=False` would.

Why not torchmetrics' own class: importing torchmetrics costs a process about 3.5 s and pulls in
scipy.signal, torchvision and matplotlib, which a 2-D run, a sampling command or an error path
never uses. The platform imports torchmetrics only where its Inception network or Inception Score
is wanted (features.py, gan_evaluator.inception_score); FID and KID are computed by
reference.frechet_distance and kid.kernel_inception_distance, and tests check both against
torchmetrics.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Metric(torch.nn.Module):
    """Tensor states with defaults; subclasses define `update` and `compute`."""

    def __init__(self) -> None:
        super().__init__()
        self._defaults: dict[str, Tensor] = {}

    def add_state(self, name: str, default: Tensor) -> None:
        self._defaults[name] = default.detach().clone()
        self.register_buffer(name, default.detach().clone(), persistent=False)

    def reset(self) -> None:
        for name, default in self._defaults.items():
            setattr(self, name, default.clone().to(getattr(self, name).device))
