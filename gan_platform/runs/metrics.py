"""The metric names of the run-dir contract (metrics.jsonl, summary.json and W&B keys alike) and,
for each, which way is better: one rule, read by early stopping and best checkpoints
(evaluation/build.py), the tracker's summary (tracking/wandb.py) and the sweep pages
(tracking/report/sweep_page.py).

A metric is better higher when its last path part is, or ends with, one of `HIGHER_IS_BETTER`
(`collapse/modes`, `eval/precision`, `eval/class_accuracy`, `eval/label_preservation`, ...) or is
`eval/is`, and
better lower otherwise (`eval/fid`, `eval/fid_class_3`, `eval/kid`, `collapse/reverse_kl`,
`eval/cycle_error`, losses).
"""

from __future__ import annotations

HIGHER_IS_BETTER = ("modes", "high_quality", "precision", "recall", "density", "coverage", "accuracy",
                    "classes", "class_entropy", "preservation")
HIGHER_IS_BETTER_EXACT = ("is",)  # the Inception Score (`eval/is`); a suffix rule would catch too much

# The headline metrics, in order of preference: a page or a summary leads with the first a run has.
HEADLINE = ("eval/fid", "collapse/modes", "eval/kid", "eval/fid_a2b", "collapse/high_quality", "eval/class_accuracy",
            "eval/precision", "eval/recall", "eval/density", "eval/coverage", "collapse/reverse_kl", "eval/fid_b2a",
            "eval/cycle_error", "eval/translation_error", "eval/label_preservation", "train/g_loss")


def best_mode(metric: str) -> str:
    """`max` where more is better (modes, precision, accuracy, ...), `min` otherwise (fid, kid, kl, losses)."""
    name = metric.split("/")[-1]
    if name in HIGHER_IS_BETTER_EXACT:
        return "max"
    return "max" if any(name == h or name.endswith(h) for h in HIGHER_IS_BETTER) else "min"
