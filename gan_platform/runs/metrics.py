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
                    "classes", "class_entropy", "preservation", "authpct")
HIGHER_IS_BETTER_EXACT = ("is",)  # the Inception Score (`eval/is`); a suffix rule would catch too much

# The headline metrics, in order of preference: a page or a summary leads with the first a run has, and the
# run page shows the first four as cards (sample quality, modes covered, class accuracy, label preservation first).
# Only measures of the samples: a training loss says how the two networks stand against each other, not how good
# the samples are (a WGAN's generator loss of -8 is neither good nor bad), so it is never a headline. Where no
# feature extractor fits the images (photos without Inception weights) the pixel-space precision/recall/density/
# coverage are the run's quality numbers; coverage leads them: of the four it is the one that does not reward a
# generator for reproducing a few real images well (Naeem et al. 2020).
PIXEL_QUALITY = ("eval/pixel_coverage", "eval/pixel_precision", "eval/pixel_recall", "eval/pixel_density")
HEADLINE = ("eval/fid", "eval/fd_dinov2", "eval/fd_clip", "collapse/modes", "eval/fid_a2b", "eval/class_accuracy", "eval/label_preservation", "eval/kid",
            "collapse/high_quality", "eval/precision", "eval/recall", "eval/density", "eval/coverage", "collapse/reverse_kl",
            "eval/fid_b2a", "eval/cycle_error", "eval/translation_error", "collapse/classes", "collapse/class_entropy",
            *PIXEL_QUALITY)


def headline_metrics(values: dict) -> list[str]:
    """The metrics a one-line account of a run shows (its closing console line): the first of
    `HEADLINE` it has, then modes covered and class accuracy where it has them."""
    lead = next((k for k in HEADLINE if k in values), None)
    names = [lead] if lead else []
    return names + [k for k in ("collapse/modes", "eval/class_accuracy") if k in values and k not in names]


def best_mode(metric: str) -> str:
    """`max` where more is better (modes, precision, accuracy, ...), `min` otherwise (fid, kid, kl, losses)."""
    name = metric.split("/")[-1]
    if name in HIGHER_IS_BETTER_EXACT:
        return "max"
    return "max" if any(name == h or name.endswith(h) for h in HIGHER_IS_BETTER) else "min"


# How dashboards (tracking/report/ and the W&B workspace, tracking/workspace.py) group the metrics:
# D's training-health signals, by name; every other `train/` key is an adversarial loss or score.
HEALTH = ("train/g_grad_norm", "train/d_grad_norm", "train/d_acc_real", "train/d_acc_fake", "train/augment_p",
          "train/augment_rt")
# Metrics that share one panel, so what they say together is visible: the tug of war of the two losses,
# the gap between D's scores on real and on fake data, the two gradient norms, D's two accuracies, and
# the evaluation metrics that come in pairs.
SHARED_PANELS = {"adversarial losses": ("train/d_loss", "train/g_loss"),
                 "D on real and on fake": ("train/d_real", "train/d_fake"),
                 "gradient norms": ("train/g_grad_norm", "train/d_grad_norm"),
                 "D accuracy on real and on fake": ("train/d_acc_real", "train/d_acc_fake"),
                 "precision and recall": ("eval/precision", "eval/recall"),
                 "density and coverage": ("eval/density", "eval/coverage"),
                 "FID, both directions": ("eval/fid_a2b", "eval/fid_b2a")}
# Per-class numbers (`eval/fid_class_3`): one bar chart per evaluation, not one curve per class.
PER_CLASS = r"^(?P<metric>.+)_class_(?P<cls>\d+)$"


def group(key: str) -> str:
    """`losses`, `health`, `quality` (eval/), `collapse` or `other`: the section a metric belongs to."""
    if key in HEALTH:
        return "health"
    if key.startswith(("train/", "perf/")):
        return "losses"
    if key.startswith("eval/"):
        return "quality"
    if key.startswith("collapse/"):
        return "collapse"
    return "other"
