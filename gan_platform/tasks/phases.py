"""The named phases of a GAN step: each side's main loss and its regularisers, as stylegan2-ada's
loss names them (Dmain, Dreg, Gmain, Greg), each due on its own interval.

    D step k:   L_D = main_D + sum over the D phases due at k of  every * coefficient * term
    G step k:   L_G = main_G + sum over the G phases due at k of  every * coefficient * term

    phase             side  term (tasks/gan.py computes it; losses/ holds the math)           coefficient
    r1                D     E||grad_x D(x)||^2 on the real batch, before augmentation              gamma/2
    r2                D     the same on the fakes                                                gamma/2
    gradient_penalty  D     E[(||grad D(x_hat)|| - 1)^2] on interpolates (WGAN-GP)                lambda
    path_length       G     E(||J_w^T y|| - a)^2 (StyleGAN2; a generator with W)                  weight
    orthogonal        G     sum_W ||W^T W (1 - I)||_F^2 over G's weights (BigGAN)                  beta

A phase is due at the k-th step of its side when its weight is not 0 and k is a multiple of its
`every` (lazy regularisation, stylegan2-ada: the term every `every` steps, multiplied by `every`,
so that its gradient per step is the same in expectation as every step's). Here a due term joins
its side's main loss: one backward and one optimizer step per side (stylegan2-ada runs Dreg/Greg
as steps of their own, with the optimizer's rate and betas corrected for the interval; the sum is
the simpler form of the same expected update, and for every = 1 it is the regularised loss itself).

The phases live in the composed config as `task.phases` (name: {weight, every}); their weights
default to the `loss.*` keys the papers' notation uses (loss.r1_gamma, loss.gradient_penalty,
loss.path_length, ...), which is what to set. `main` phases are always due. A due phase's term is
logged under its name (`train/r1_penalty`, ...), and the trainer logs the phases at the start.
Schedules (training/schedules.py) move a phase's weight through `set_weight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from gan_platform.errors import ConfigError

SIDES = {"r1": "D", "r2": "D", "gradient_penalty": "D", "path_length": "G", "orthogonal": "G"}
LOG_NAMES = {"r1": "r1_penalty", "r2": "r2_penalty", "gradient_penalty": "grad_penalty",
             "path_length": "path_length_penalty", "orthogonal": "orthogonal_penalty"}
COEFFICIENTS = {"r1": 0.5, "r2": 0.5, "gradient_penalty": 1.0, "path_length": 1.0, "orthogonal": 1.0}


@dataclass
class Phase:
    """One regulariser of one side: its weight (0 = off) and its interval in steps of that side."""

    name: str
    weight: float
    every: int = 1

    @property
    def side(self) -> str:
        return SIDES[self.name]

    def due(self, k: int) -> bool:
        """Is the phase due at the k-th step of its side (k counts from 1)?"""
        return self.weight != 0 and k % self.every == 0

    @property
    def factor(self) -> float:
        """What the term is multiplied by when due: its coefficient times its weight, times its interval."""
        return COEFFICIENTS[self.name] * self.weight * self.every


class Phases:
    """The regularising phases of a task's two steps, in the order of `SIDES` (the order the terms join the loss)."""

    def __init__(self, phases: Iterable[Phase] = ()):
        given = {p.name: p for p in phases}
        unknown = sorted(set(given) - set(SIDES))
        if unknown:
            raise ConfigError(f"Unknown phase(s) {', '.join(unknown)} in task.phases: the phases are {', '.join(SIDES)}.")
        for p in given.values():
            if isinstance(p.every, bool) or not isinstance(p.every, int) or p.every < 1:
                raise ConfigError(f"task.phases.{p.name}.every must be a whole number of steps of at least 1, got {p.every!r}.")
            if p.weight < 0:
                raise ConfigError(f"task.phases.{p.name}.weight must be 0 (off) or positive, got {p.weight}.")
        self.by_name = {name: given.get(name, Phase(name, 0.0)) for name in SIDES}

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> "Phases":
        """`task.phases` (name: {weight, every})."""
        return cls(Phase(str(name), float(v.get("weight", 0.0) or 0.0), v.get("every", 1)) for name, v in (node or {}).items())

    def due(self, side: str, k: int) -> list[Phase]:
        """The phases of `side` ("D" or "G") due at its k-th step, in their order."""
        return [p for p in self.by_name.values() if p.side == side and p.due(k)]

    def on(self, name: str) -> bool:
        return self.by_name[name].weight != 0

    def set_weight(self, name: str, weight: float) -> None:
        self.by_name[name].weight = float(weight)

    def describe(self) -> str:
        """`D: main, r1 (weight 0.1, every 16); G: main` for the log."""
        sides = []
        for side in ("D", "G"):
            on = [f"{p.name} (weight {p.weight:g}, every {p.every})" for p in self.by_name.values() if p.side == side and p.weight]
            sides.append(f"{side}: " + ", ".join(["main", *on]))
        return "; ".join(sides)
