"""The best evaluation so far and early stopping.

`eval.best_metric` (minimised or maximised by `eval.best_mode`) decides which evaluation is the
best: the trainer saves checkpoints/best there and reports it in summary.json. After
`eval.early_stop_patience` evaluations in a row without improvement the run stops early (0: never).
An evaluation without the metric, or with a NaN/inf value, is not judged.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


class EarlyStopping:
    """The best record (`{"step", <metric>: value, "metrics": {...}}`) and the evaluations since it."""

    def __init__(self, eval_cfg: Any):
        self.eval_cfg = eval_cfg  # best_metric, best_mode, early_stop_patience
        self.best: dict[str, Any] = {}
        self.bad_evals = 0

    def update(self, metrics: dict[str, float], step: int) -> Optional[bool]:
        """True: a new best; False: no improvement; None: the metric is absent or not finite."""
        key, mode = self.eval_cfg.best_metric, self.eval_cfg.best_mode
        if not key or key not in metrics or not np.isfinite(metrics[key]):
            return None
        old = self.best.get(key)
        improved = old is None or (metrics[key] < old if mode == "min" else metrics[key] > old)
        if improved:
            self.best = {"step": step, key: metrics[key], "metrics": dict(metrics)}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return improved

    @property
    def patience_exhausted(self) -> bool:
        """`early_stop_patience` evaluations in a row without improvement (never when patience is 0)."""
        patience = self.eval_cfg.early_stop_patience
        return bool(patience and self.bad_evals >= patience)
