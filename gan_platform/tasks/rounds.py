"""Gradient accumulation: one step's batch computed in rounds whose gradients add up.

`trainer.micro_batch` = m splits each step's batch of n into n / m rounds of m samples (m divides
n, and is a whole number of PacGAN packs: gan_build.check_micro_batch). Each round builds its own
graph, backpropagates and frees it before the next is built, so a step's activation memory is that
of m samples; the optimizer steps once, after the last round (`optim.descend`; under DDP every
round but the last skips the gradient all-reduce).

Every loss and penalty of the GAN step is a mean over samples (or packs), so weighting round r's
by its share m / n and adding the rounds' gradients gives the whole batch's gradient, to rounding.
For that to hold to the sample, the step's random draws are made once for the whole batch and
each round takes its share (`Rounds.drawn`): the latents, the wrong labels of the conditional
mismatch term, the gradient penalty's interpolation weights. Three things see a round rather than
the batch, as in stylegan2-ada's accumulation (its `batch_gpu`): networks with batch statistics
(BatchNorm, minibatch-std) compute them over the round; StyleGAN2's path length penalty draws its
own latents per round and updates its running mean a at each; an augmentation pipeline draws its
transformations per call. ADA's overfitting signal is taken over the whole batch's real images,
once per step.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor


def split(n: int, micro_batch: Optional[int]) -> list[slice]:
    """The rounds of a batch of `n`: one, or `micro_batch`-sized ones (the last may be smaller)."""
    m = micro_batch or n
    return [slice(i, min(i + m, n)) for i in range(0, n, m)]


class Rounds:
    """One step's rounds: which is being computed, the step-wide draws, and what the rounds leave
    (the weighted sums of their losses and logs, and tensors kept per round such as D's scores)."""

    def __init__(self, n: int, micro_batch: Optional[int]):
        self.n = n
        self.parts = split(n, micro_batch)
        self.part = self.parts[0]
        self.loss: Optional[Tensor] = None
        self.logs: dict[str, Tensor] = {}
        self.kept: dict[str, list[Tensor]] = {}
        self._draws: dict[str, Tensor] = {}

    def __len__(self) -> int:
        return len(self.parts)

    def each(self):
        """The rounds' slices in turn, `part` following them."""
        for part in self.parts:
            self.part = part
            yield part

    @property
    def last(self) -> bool:
        return self.part is self.parts[-1]

    @property
    def share(self) -> float:
        """The current round's share of the batch."""
        return (self.part.stop - self.part.start) / self.n

    def drawn(self, key: str, draw: Callable[[], Tensor], per: int = 1) -> Tensor:
        """The current round's share of a draw made once for the whole step (at its first use, so
        that an unsplit step draws exactly what it always drew). `per` > 1: the draw has one row per
        `per` samples (the gradient penalty's weights, per pack)."""
        if key not in self._draws:
            self._draws[key] = draw()
        return self._draws[key][self.part.start // per:self.part.stop // per]

    def add(self, loss: Tensor, logs: dict[str, Tensor]) -> Tensor:
        """Count the current round's loss and logs, weighted by its share; returns the weighted loss
        (the loss itself when the round is the whole batch: an unsplit step computes what it always did)."""
        weight = self.share
        if weight != 1.0:
            loss = loss * weight
            logs = {k: v * weight for k, v in logs.items()}
        total = loss.detach().float()
        self.loss = total if self.loss is None else self.loss + total
        for k, v in logs.items():
            self.logs[k] = v if k not in self.logs else self.logs[k] + v
        return loss

    def keep(self, **tensors: Tensor) -> None:
        for k, v in tensors.items():
            self.kept.setdefault(k, []).append(v)

    def cat(self, key: str) -> Tensor:
        """A kept tensor over the rounds so far (the whole batch once the last has been kept)."""
        parts = self.kept[key]
        return parts[0] if len(parts) == 1 else torch.cat(parts)
