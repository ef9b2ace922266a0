"""Schedules: config values a recipe moves during training, as functions of the images seen.

Papers give their schedules in images seen (kimg), not in steps: R3GAN's CIFAR-10 recipe moves the
learning rate from 2e-4 to 5e-5, gamma from 0.05 to 0.005, Adam's beta2 from 0.9 to 0.99, G's EMA
half-life from 0 to 5M images and the augmentation probability from 0 to 0.55, each by a cosine
over the first 20M images (Huang et al. 2024; brownvc/R3GAN, train.py). In a config they read like
the paper's table, under the key of the value they move:

    schedules:
      optimizer:
        lr:    {shape: cosine, start: 2.0e-4, end: 5.0e-5, kimg: 20000}
      loss:
        gamma: {shape: cosine, start: 0.05, end: 0.005, kimg: 20000}

value(images) = start before `from_kimg` (default 0), `end` after `kimg`, and between them
    linear:  start + t (end - start)
    cosine:  start + (1 - cos(pi t)) / 2 (end - start)        (R3GAN's cosine_decay_with_warmup)
with t = (images - from) / (to - from). Images seen = iterations x the batch of all processes, the
count stylegan2-ada and R3GAN keep (cur_nimg). The trainer sets every scheduled value before each
iteration from the images seen so far: nothing of a schedule needs saving, so a resumed run sets
the same values at the same step. It logs each at the log cadence as `schedule/<key>`.

What can move (`SCHEDULABLE`): the learning rates and Adam's beta2 (both sides, or one), the
regularisers' weights (phases: loss.r1_gamma, loss.r2_gamma, loss.gamma for both, loss.gradient_penalty,
loss.path_length, loss.orthogonal), G's EMA half-life in images, and the augmentation probability
(a fixed pipeline: ADA with augment.speed_images=0, so that the heuristic does not move p too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from gan_platform.errors import ConfigError

SHAPES = ("linear", "cosine")


def _set_lr(sides):
    def apply(trainer: Any, value: float) -> None:
        for side in sides:
            for group in trainer.task.optimizers[side].param_groups:
                group["lr"] = value
    return apply


def _set_beta2(sides):
    def apply(trainer: Any, value: float) -> None:
        for side in sides:
            for group in trainer.task.optimizers[side].param_groups:
                group["betas"] = (group["betas"][0], value)
    return apply


def _set_phase(*names):
    def apply(trainer: Any, value: float) -> None:
        for name in names:
            trainer.task.phases.set_weight(name, value)
    return apply


def _set_ema_half_life(trainer: Any, value: float) -> None:
    trainer.ema.half_life = value


def _set_augment_p(trainer: Any, value: float) -> None:
    trainer.task.augment.p.fill_(value)


BOTH = ("generator", "discriminator")
SCHEDULABLE: dict[str, Callable[[Any, float], None]] = {
    "optimizer.lr": _set_lr(BOTH), "optimizer.generator.lr": _set_lr(("generator",)),
    "optimizer.discriminator.lr": _set_lr(("discriminator",)),
    "optimizer.beta2": _set_beta2(BOTH), "optimizer.generator.beta2": _set_beta2(("generator",)),
    "optimizer.discriminator.beta2": _set_beta2(("discriminator",)),
    "loss.gamma": _set_phase("r1", "r2"), "loss.r1_gamma": _set_phase("r1"), "loss.r2_gamma": _set_phase("r2"),
    "loss.gradient_penalty": _set_phase("gradient_penalty"), "loss.path_length": _set_phase("path_length"),
    "loss.orthogonal": _set_phase("orthogonal"),
    "trainer.ema.half_life_images": _set_ema_half_life, "augment.p": _set_augment_p,
}


@dataclass(frozen=True)
class Schedule:
    """One value's path: from `start` to `end` over the images from `from_images` to `to_images`."""

    key: str
    shape: str
    start: float
    end: float
    from_images: float
    to_images: float

    def value(self, images: float) -> float:
        t = min(1.0, max(0.0, (images - self.from_images) / (self.to_images - self.from_images)))
        if self.shape == "cosine":
            t = 0.5 * (1.0 - math.cos(math.pi * t))
        return self.start + t * (self.end - self.start)


def leaves(node: Mapping[str, Any], prefix: str = "") -> dict[str, Mapping[str, Any]]:
    """{"optimizer.lr": {shape, start, ...}} of the nested `schedules` node."""
    out: dict[str, Mapping[str, Any]] = {}
    for key, value in (node or {}).items():
        if isinstance(value, Mapping) and "start" not in value:
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parse(key: str, spec: Any) -> Schedule:
    """One schedule from its config entry, or one sentence naming what is wrong."""
    if key not in SCHEDULABLE:
        raise ConfigError(f"Unknown schedule key '{key}': a schedule can move {', '.join(SCHEDULABLE)}.")
    if not isinstance(spec, Mapping) or not {"start", "end", "kimg"} <= set(spec):
        raise ConfigError(f"schedules.{key} needs start, end and kimg (and optionally shape: linear|cosine, from_kimg), "
                          f"got {dict(spec) if isinstance(spec, Mapping) else spec!r}.")
    unknown = sorted(set(spec) - {"shape", "start", "end", "kimg", "from_kimg"})
    if unknown:
        raise ConfigError(f"schedules.{key} has unknown field(s) {', '.join(unknown)}: use shape, start, end, kimg, from_kimg.")
    shape = str(spec.get("shape", "cosine"))
    if shape not in SHAPES:
        raise ConfigError(f"schedules.{key}.shape must be one of {', '.join(SHAPES)}, got '{shape}'.")
    begin, end = float(spec.get("from_kimg", 0)), float(spec["kimg"])
    if not end > begin:
        raise ConfigError(f"schedules.{key} ends (kimg {end:g}) before it starts (from_kimg {begin:g}): make kimg larger than from_kimg.")
    return Schedule(key, shape, float(spec["start"]), float(spec["end"]), begin * 1000, end * 1000)


class Schedules:
    """A run's schedules: set before each iteration (`apply`), logged at the log cadence (`values`)."""

    def __init__(self, node: Optional[Mapping[str, Any]] = None):
        self.items = [parse(k, v) for k, v in leaves(node or {}).items()]
        self.current: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self.items)

    def apply(self, images: float, trainer: Any) -> None:
        for s in self.items:
            self.current[s.key] = value = s.value(images)
            SCHEDULABLE[s.key](trainer, value)

    def owned_settings(self) -> dict[str, set[str]]:
        """{side: {"lr", "betas"}}: the optimizer settings these schedules set (a resume leaves them to them)."""
        owned: dict[str, set[str]] = {"generator": set(), "discriminator": set()}
        for s in self.items:
            parts = s.key.split(".")
            if parts[0] == "optimizer":
                setting = {"lr": "lr", "beta2": "betas"}[parts[-1]]
                for side in (parts[1],) if len(parts) == 3 else BOTH:
                    owned[side].add(setting)
        return owned

    def values(self) -> dict[str, float]:
        """`schedule/<key>`: the values set for the last iteration."""
        return {f"schedule/{k}": v for k, v in self.current.items()}


def check_schedules(cfg: Any) -> None:
    """The schedules' rules, before any work: each entry well formed, and nothing else moving the same value."""
    from omegaconf import OmegaConf

    node = cfg.get("schedules")
    node = OmegaConf.to_container(node, resolve=True) if node is not None else {}
    keys = {s.key for s in Schedules(node).items}
    if keys & {"optimizer.lr", "optimizer.generator.lr", "optimizer.discriminator.lr"} and cfg.trainer.lr_decay != "none":
        raise ConfigError(f"The learning rate has a schedule and trainer.lr_decay={cfg.trainer.lr_decay} moves it too: "
                          "set trainer.lr_decay=none, or drop the schedule.")
    if "trainer.ema.half_life_images" in keys and cfg.trainer.ema.get("half_life_images") is None:
        raise ConfigError("schedules.trainer.ema.half_life_images moves G's average, which is off: set "
                          "trainer.ema.half_life_images (to the schedule's end value, say) to turn it on.")
    if "augment.p" in keys:
        augment = cfg.get("augment") or {}
        if "speed_images" not in augment or float(augment.get("speed_images") or 0) != 0:
            raise ConfigError("schedules.augment.p sets the augmentation probability, which needs augment=ada with "
                              "augment.speed_images=0 (no overfitting heuristic moving p as well).")
    phased = keys & {k for k in SCHEDULABLE if k.startswith("loss.")}
    if phased and "phases" not in (cfg.get("task") or {}):
        raise ConfigError(f"schedules.{sorted(phased)[0]} moves a regulariser of the GAN step, and this task has none: "
                          "drop the schedule.")
