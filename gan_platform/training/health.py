"""Training-health warnings: known GAN failures recognised in the signals the loop already logs.

The task measures the signals on the last iteration of each log window (`task.measure_health`,
tasks/gan.py: `train/g_grad_norm`, `train/d_grad_norm`, `train/d_acc_real`, `train/d_acc_fake`),
so no step pays for them but that one and nothing syncs the host between log steps. Two failures
are recognised:

- `d_wins`: D wins outright, train/d_loss < D_LOSS_FLOOR and G's gradient vanishes
  (train/g_grad_norm < GRAD_FLOOR): the saturating generator loss log(1 - D(G(z))) has no
  gradient left (Goodfellow et al. 2014); switch to the non-saturating loss or weaken D.
- `collapse`: between two evaluations the modes covered (`collapse/modes`) or the entropy of the
  generated classes (`collapse/class_entropy`) falls by more than DROP of its previous value.

Each kind is logged once, with the step it was first seen, and kept in summary.json's `warnings`
(count and last step updated while it recurs), which the dashboard shows.
"""

from __future__ import annotations

from typing import Any, Optional

D_LOSS_FLOOR = 0.05
GRAD_FLOOR = 1e-3
DROP = 0.10
COLLAPSE_KEYS = ("collapse/modes", "collapse/class_entropy")


def training_failures(logs: dict[str, float]) -> list[tuple[str, str]]:
    """(kind, sentence) of each failure the logged training signals show."""
    d_loss, g_grad = logs.get("train/d_loss"), logs.get("train/g_grad_norm")
    if d_loss is None or g_grad is None or "train/d_acc_real" not in logs:  # no accuracies: a critic, not a classifier
        return []
    if d_loss < D_LOSS_FLOOR and g_grad < GRAD_FLOOR:
        return [("d_wins", f"D wins outright: d_loss {d_loss:.3g} and G's gradient norm {g_grad:.2g} have vanished; "
                           "use the non-saturating loss (loss=nonsaturating), a slower D (optimizer.discriminator.lr) "
                           "or a Lipschitz D (model.discriminator.spectral_norm=true).")]
    return []


def evaluation_failures(previous: dict[str, float], now: dict[str, float]) -> list[tuple[str, str]]:
    """(kind, sentence) when a mode-collapse measure fell by more than DROP since the last evaluation."""
    out = []
    for key in COLLAPSE_KEYS:
        before, after = previous.get(key), now.get(key)
        if before is not None and after is not None and before > 0 and after < (1 - DROP) * before:
            out.append(("collapse", f"Mode collapse: {key} fell from {before:.3g} to {after:.3g} since the last "
                                    "evaluation; checkpoints/best keeps the better generator."))
    return out


class HealthLog:
    """The warnings of a run: each kind once, with its first and last step and how often it was seen."""

    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def record(self, found: list[tuple[str, str]], step: int) -> list[str]:
        """Add `found` at `step`; returns the sentences seen for the first time (to be logged)."""
        new = []
        for kind, message in found:
            seen: Optional[dict[str, Any]] = next((w for w in self.warnings if w["kind"] == kind), None)
            if seen is None:
                self.warnings.append({"kind": kind, "step": step, "last_step": step, "count": 1, "message": message})
                new.append(message)
            else:
                seen["last_step"], seen["count"] = step, seen["count"] + 1
        return new
