"""An exponential moving average of the generator's weights (`trainer.ema`), for samples and evaluation.

After every generator step, for each parameter p of G and its average p_ema:

    p_ema <- beta * p_ema + (1 - beta) * p          (so after k steps from p_0 with a constant beta:
                                                    p_ema = beta^k p_0 + sum_i (1 - beta) beta^(k-i) p_i)

and every buffer (BatchNorm running statistics, a data scale) is copied from G, as StudioGAN and
stylegan2-ada do: the average network normalises with the statistics the trained one has now.
beta is `trainer.ema.decay`, or 0.5 ** (images_per_step / half_life) with
`trainer.ema.half_life_images` (stylegan2-ada's ema_kimg * 1000; images_per_step counts every
process's batch). `trainer.ema.rampup` (stylegan2-ada's ema_rampup, e.g. 0.05) caps the half-life
at rampup * images seen so far, so that early weights, far from the final ones, are forgotten fast;
a decay is turned into its half-life for this. beta is a Python number and the update two foreach
kernels on the device: no host sync.

The average networks join the task's `modules` as `<name>_ema` (with the same constructor
arguments in `model_args`), so every checkpoint holds them, resume restores them, the divergence
check and the replica fingerprints see them, and a checkpoint alone rebuilds them
(runs/loading.py). Under several processes each rank averages the same DDP weights; buffers are
averaged over the ranks with the others before checkpoints and evaluations (distributed.py).
Unless `trainer.ema.raw_samples` is set, the task samples (grids, evaluation, hence
checkpoints/best) from the averages (`task.inference`).
"""

from __future__ import annotations

import copy
import math
from typing import Any, Optional

import torch

from gan_platform.errors import ConfigError
from gan_platform.runs.loading import AVERAGE_SUFFIX as SUFFIX


def ema_beta(decay: float, half_life_images: Optional[float], rampup: Optional[float], images_per_step: int,
             images_seen: int) -> float:
    """The averaging factor of one update (see the module docstring); 0 copies G."""
    if half_life_images is None and rampup is None:
        return float(decay)
    half_life = half_life_images if half_life_images is not None else images_per_step * math.log(0.5) / math.log(decay)
    if rampup is not None:
        half_life = min(half_life, images_seen * rampup)
    return 0.5 ** (images_per_step / max(half_life, 1e-8))


def check_ema(ema: Any) -> None:
    """The rules of `trainer.ema` (run with the other config checks, before any work)."""
    decay, half_life, rampup = float(ema["decay"]), ema.get("half_life_images"), ema.get("rampup")
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"trainer.ema.decay must be in [0, 1) (0 = off), got {decay}: set it to e.g. 0.999, or 0.")
    if half_life is not None and (decay > 0 or not float(half_life) > 0):
        raise ConfigError("trainer.ema.half_life_images is a positive alternative to trainer.ema.decay: "
                          "set one of them (the other 0 / null).")
    if rampup is not None and (not float(rampup) > 0 or (decay == 0 and half_life is None)):
        raise ConfigError(f"trainer.ema.rampup must be positive and needs trainer.ema.decay or half_life_images, got {rampup}.")


class GeneratorEMA:
    """The average of each generator of a task, updated by `update` after each generator step."""

    def __init__(self, task: Any, accelerator: Any, cfg: Any, images_per_step: int):
        """`cfg` is `trainer.ema`, checked with the other config rules before any work (check_ema)."""
        self.decay, self.images_per_step = float(cfg["decay"]), int(images_per_step)
        self.half_life = None if cfg.get("half_life_images") is None else float(cfg["half_life_images"])
        self.rampup = None if cfg.get("rampup") is None else float(cfg["rampup"])
        names = list(task.generators)
        self.trained = {n: accelerator.unwrap_model(task.modules[n]) for n in names}
        self.averages = {n: copy.deepcopy(m).requires_grad_(False) for n, m in self.trained.items()}
        self._params = [(list(self.averages[n].parameters()), list(self.trained[n].parameters())) for n in names]
        self._buffers = [(list(self.averages[n].buffers()), list(self.trained[n].buffers())) for n in names]
        for n, m in self.averages.items():
            task.modules[n + SUFFIX] = m
            if n in task.model_args:
                task.model_args[n + SUFFIX] = task.model_args[n]
        if not cfg.get("raw_samples", False):
            task.inference.update(self.averages)

    @staticmethod
    def enabled(cfg: Any) -> bool:
        return float(cfg["decay"]) > 0 or cfg.get("half_life_images") is not None

    @torch.no_grad()
    def update(self, updates_done: int) -> None:
        """One update after G's `updates_done + 1`-th step (`updates_done` counts the earlier ones)."""
        beta = ema_beta(self.decay, self.half_life, self.rampup, self.images_per_step,
                        updates_done * self.images_per_step)
        for averages, trained in self._params:
            torch._foreach_lerp_(averages, trained, 1.0 - beta)
        for averages, trained in self._buffers:
            if averages:
                torch._foreach_copy_(averages, trained)


def attach_ema(task: Any, accelerator: Any, cfg: Any, images_per_step: int) -> Optional[GeneratorEMA]:
    """The task's generator averages when `trainer.ema` turns them on, else None."""
    return GeneratorEMA(task, accelerator, cfg, images_per_step) if cfg and GeneratorEMA.enabled(cfg) else None

