"""The evaluator: called by the trainer every `eval.every` steps and at the end.

`evaluate(task, step)` runs on every process (so samples can be gathered from all ranks) and
returns the same flat dict of floats on each, keyed by metric name (`eval/fid`,
`collapse/modes`, ...). `protocol()` says how the numbers were measured, for summary.json.
"""

from __future__ import annotations

from typing import Any


class Evaluator:
    """The evaluator with no metrics: the seam the trainer calls."""

    def evaluate(self, task: Any, step: int) -> dict[str, float]:
        return {}

    def protocol(self) -> dict[str, Any]:
        return {}
