"""The evaluator: called by the trainer every `eval.every` steps and at the end.

`evaluate(task, step)` runs on every process (so samples can be gathered from all ranks) and
returns the same flat dict of floats on each, keyed by metric name (`eval/fid`,
`collapse/modes`, ...). `protocol()` says how the numbers were measured, for summary.json.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Samples(Protocol):
    """What the GAN evaluator needs of the task it measures: its latent size, classes and samples
    (by its `inference` networks) for given latents and labels."""

    z_dim: int
    num_classes: int

    def sample(self, n: int, labels: Optional[Tensor] = None, z: Optional[Tensor] = None) -> Tensor: ...


@runtime_checkable
class Translates(Protocol):
    """What the CycleGAN evaluator needs of the task it measures: translation either way."""

    def translate(self, x: Tensor, direction: str = "a2b") -> Tensor: ...


class Evaluator:
    """The evaluator with no metrics: the seam the trainer calls."""

    def evaluate(self, task: Any, step: int) -> dict[str, float]:
        return {}

    def protocol(self) -> dict[str, Any]:
        return {}
