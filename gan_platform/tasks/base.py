"""The interface between the trainer and a task (GAN, conditional GAN, CycleGAN)."""

from __future__ import annotations

from typing import Any, Optional, Protocol

import torch
from torch import Tensor, nn


class Task(Protocol):
    """What the trainer needs of a task.

    d_step / g_step run one discriminator (critic) / generator update on a real batch and return
    their logs as 0-d tensors (kept on the device: the trainer syncs them only at its log cadence).
    """

    modules: dict[str, nn.Module]          # prepared networks by name ("generator", ...)
    optimizers: dict[str, torch.optim.Optimizer]
    generators: tuple[str, ...]            # the names in `modules` of the generators (averaged by trainer.ema)
    inference: dict[str, nn.Module]        # generator name -> the network that samples: itself or its average

    def d_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]: ...

    def g_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]: ...

    def sample_grid(self, fixed: dict[str, Tensor]) -> Tensor: ...

    def grid_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]: ...

    def extra_state(self) -> dict[str, Any]: ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...
