"""The contract between the trainer and a task (GAN, conditional GAN, CycleGAN, or one of your own).

Everything the trainer, the checkpoints and the run's builder use of a task is declared here, and
nothing else is used: a task that has these attributes and methods trains through the trainer, is
checkpointed and resumed, and is sampled for the grids (tests/test_task_contract.py writes a third
task from this contract alone and trains it). What an evaluator needs of the task it measures is
declared beside the evaluators (evaluation/evaluator.py: `Samples` for a generator, `Translates`
for an image-to-image pair), since that layer may not import this one.

Steps return their logs as 0-d tensors kept on the device: the trainer syncs them only at its log
cadence. `measure_health` is set by the trainer for the steps whose health signals it logs (the
last iteration of a log window); a task adds `d_grad_norm`, `g_grad_norm` and D's accuracies to
those steps' logs (training/health.py reads them).
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class Task(Protocol):
    """What one training step means, as the trainer sees it."""

    modules: dict[str, nn.Module]                # prepared networks by name ("generator", ...): checkpointed, checked finite
    optimizers: dict[str, torch.optim.Optimizer]  # by side ("generator", "discriminator"): checkpointed, scheduled
    generators: tuple[str, ...]                  # the names in `modules` of the generators (averaged by trainer.ema)
    inference: dict[str, nn.Module]              # generator name -> the network that samples: itself or its average
    model_args: dict[str, dict[str, Any]]        # each network's constructor arguments: a checkpoint alone rebuilds it
    num_classes: int                             # 0 for an unconditional task
    measure_health: bool                         # set by the trainer: measure the health signals in this iteration

    def d_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        """One discriminator (critic) update on a real batch; its logs."""

    def g_step(self, real: Tensor, labels: Optional[Tensor]) -> dict[str, Tensor]:
        """One generator update (the real batch for losses that pair real and fake); its logs."""

    def grid_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """The fixed inputs of the sample grids (the same at every step; kept in checkpoints)."""

    def sample_grid(self, fixed: dict[str, Tensor]) -> Tensor:
        """The grid's samples from `fixed`, by the `inference` networks."""

    def grid_rows(self, fixed: dict[str, Tensor]) -> int:
        """Rows of the grid picture (one per class for a conditional task); 0 lets the picture choose."""

    def extra_state(self) -> dict[str, Any]:
        """The task's own state shared by every process (counters, augmentation), saved in checkpoints."""

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `extra_state`."""

    def process_state(self) -> dict[str, Any]:
        """This process's own state (CycleGAN: its image pools), saved per rank; {} when there is none."""

    def load_process_state(self, state: dict[str, Any]) -> None:
        """Restore this rank's `process_state`."""
