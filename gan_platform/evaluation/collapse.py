"""Mode-collapse metrics, as torchmetrics-style metrics (`update(...)`, `compute()`, tensor state; metric.py).

- `MixtureCollapse` (VEEGAN/PacGAN protocol on 2-D Gaussian mixtures): each sample goes to its
  nearest mode; it is high-quality if within 3 sigma of that mode (a perfect sampler scores
  1 - exp(-9/2) = 98.9% in 2-D). A mode is covered when it holds at least `threshold` x its fair
  share (n / K) of the high-quality samples (PacGAN's 20-of-100 rule for 2,500 samples on 25 modes
  is threshold 0.2). Reverse KL: KL(q || uniform) = sum_k q_k log(K q_k) for the histogram q of the
  high-quality samples over modes; log K (the worst) when none is high-quality.
- `ModeHistogram`: labels from a classifier (digits) -> modes seen (at least `min_count` samples),
  KL(q || uniform) and the entropy of q.
- `StackedDigitModes`: the Stacked-MNIST count (Metz et al. 2017; VEEGAN; PacGAN) of modes
  100a + 10b + c, where a sample counts only when the classifier is sure of every channel (its
  probability for the digit it reads at least `confidence`, 0.95). Counting every argmax would let
  the classifier's own misreadings (0.8% of the bundled digits, 1.5% of its held-out third) invent
  modes: 10,000 samples of 3 modes made of real digits read as 29 to 38 modes (5 with the rule, 99.6%
  of the sure samples in the 3 true modes).
  High quality: % of samples counted. The papers' own count (every sample by its argmax, the
  protocol behind the published rows) is kept beside it as `argmax_modes` / `argmax_reverse_kl`,
  so a table can be read against theirs; the sure count stays the headline.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from gan_platform.evaluation.metric import Metric


def kl_to_uniform(counts: Tensor) -> float:
    """KL(q || uniform over len(counts) bins) for the histogram `counts`; log K when empty."""
    k = len(counts)
    total = counts.sum()
    if total <= 0:
        return math.log(k)
    q = counts.double() / total
    nz = q[q > 0]
    return float((nz * torch.log(nz * k)).sum())


def entropy(counts: Tensor) -> float:
    total = counts.sum()
    if total <= 0:
        return 0.0
    q = counts.double() / total
    nz = q[q > 0]
    return float(-(nz * torch.log(nz)).sum())


class MixtureCollapse(Metric):
    """Modes covered, % high-quality samples and reverse KL of 2-D samples against a mixture."""

    def __init__(self, means: Tensor, sigma: float, threshold: float = 0.2):
        super().__init__()
        self.register_buffer("means", means.float().clone(), persistent=False)
        self.sigma, self.threshold = float(sigma), float(threshold)
        self.add_state("mode_counts", torch.zeros(len(means), dtype=torch.long))
        self.add_state("total", torch.tensor(0, dtype=torch.long))

    def assign(self, samples: Tensor) -> tuple[Tensor, Tensor]:
        """(nearest mode index, is high-quality) for each sample."""
        d = torch.cdist(samples.float().flatten(1), self.means.to(samples.device))
        dist, mode = d.min(1)
        return mode, dist <= 3.0 * self.sigma

    def update(self, samples: Tensor) -> None:
        mode, good = self.assign(samples)
        self.mode_counts += torch.bincount(mode[good], minlength=len(self.means))
        self.total += len(samples)

    def compute(self) -> dict[str, float]:
        counts, n, k = self.mode_counts, int(self.total), len(self.means)
        need = self.threshold * n / k
        return {"modes": float((counts.double() >= max(need, 1.0)).sum()),
                "high_quality": 100.0 * float(counts.sum()) / max(n, 1),
                "reverse_kl": kl_to_uniform(counts)}


class ModeHistogram(Metric):
    """Histogram of discrete modes (class labels): modes seen, KL to uniform, entropy."""

    def __init__(self, num_modes: int, min_count: int = 1):
        super().__init__()
        self.num_modes, self.min_count = int(num_modes), int(min_count)
        self.add_state("counts", torch.zeros(self.num_modes, dtype=torch.long))

    def update(self, labels: Tensor) -> None:
        self.counts += torch.bincount(labels.long().flatten(), minlength=self.num_modes)[: self.num_modes]

    def compute(self) -> dict[str, float]:
        return {"modes": float((self.counts >= self.min_count).sum()), "reverse_kl": kl_to_uniform(self.counts),
                "entropy": entropy(self.counts)}


STACKED_CONFIDENCE = 0.95  # no misread bundled digit reaches it; 6.7% of correct readings fall below


class StackedDigitModes(ModeHistogram):
    """Modes covered of stacked digits (out of 1,000), counting only samples read surely on every channel."""

    def __init__(self, confidence: float = STACKED_CONFIDENCE):
        super().__init__(1000)
        self.confidence = float(confidence)
        self.add_state("sure", torch.tensor(0, dtype=torch.long))
        self.add_state("total", torch.tensor(0, dtype=torch.long))
        self.add_state("argmax_counts", torch.zeros(1000, dtype=torch.long))  # every sample, sure or not

    def update(self, channel_digits: Tensor, channel_confidence: Tensor) -> None:
        sure = (channel_confidence >= self.confidence).all(1)
        modes = stacked_modes(channel_digits)
        super().update(modes[sure])
        self.argmax_counts += torch.bincount(modes.long(), minlength=1000)
        self.sure += sure.sum()
        self.total += len(sure)

    def compute(self) -> dict[str, float]:
        return {**super().compute(), "high_quality": 100.0 * float(self.sure) / max(int(self.total), 1),
                "argmax_modes": float((self.argmax_counts >= self.min_count).sum()),
                "argmax_reverse_kl": kl_to_uniform(self.argmax_counts)}


def stacked_modes(channel_digits: Tensor) -> Tensor:
    """(N, 3) digits per channel -> mode index 100a + 10b + c."""
    return channel_digits[:, 0] * 100 + channel_digits[:, 1] * 10 + channel_digits[:, 2]


def class_mode_accuracy(samples: Tensor, labels: Tensor, means: Tensor, sigma: Optional[float] = None) -> float:
    """Conditional mixtures: the fraction of class-c samples whose nearest mode is c (and, with
    `sigma`, lies within 3 sigma of it)."""
    d = torch.cdist(samples.float().flatten(1), means.float().to(samples.device))
    dist, mode = d.min(1)
    hit = mode == labels.to(mode.device)
    if sigma is not None:
        hit &= dist <= 3.0 * sigma
    return float(hit.double().mean())


def digit_collapse_metrics(digits: Tensor, confidence: Tensor, labels: Optional[Tensor], stacked: bool) -> dict[str, float]:
    """Collapse and class accuracy from the digit read in every channel (N, C) and the classifier's
    probability for it (N, C): the stacked-digit modes (stacked digits), the class histogram, and
    the share of samples that show their label (conditional runs; stacked: all three digits)."""
    out: dict[str, float] = {}
    if stacked and digits.shape[1] == 3:
        stack = StackedDigitModes().to(digits.device)
        stack.update(digits, confidence)
        res = stack.compute()
        out.update({f"collapse/{k}": res[k] for k in ("modes", "reverse_kl", "high_quality", "argmax_modes", "argmax_reverse_kl")})
    hist = ModeHistogram(10).to(digits.device)
    hist.update(digits)
    res = hist.compute()
    out["collapse/classes"], out["collapse/class_entropy"] = res["modes"], res["entropy"]
    if not stacked:
        out["collapse/reverse_kl"] = res["reverse_kl"]
    if labels is not None:
        target = torch.stack([labels // 100, labels // 10 % 10, labels % 10], 1) if stacked else labels[:, None]
        out["eval/class_accuracy"] = float((digits == target.to(digits.device)).all(1).double().mean())
    return out


REAL_SCORES_SEED = 1  # the real triples a perfect generator is read against: the same in every run


def real_stacked_scores(dataset, extractor, num_samples: int, batch_size: int = 500) -> dict[str, float]:
    """The stacked-digit metrics of `num_samples` fresh real triples read as samples are: the floor
    of KL and the ceiling of modes a perfect generator reaches at this count (the KL of a finite
    sample of a uniform law is not 0: about 0.05 at 10,000 samples, 0.02 at 26,000)."""
    g = torch.Generator(device=getattr(dataset, "device", "cpu")).manual_seed(REAL_SCORES_SEED)
    real, _ = dataset.sample(num_samples, g)
    _, digits, confidence = extractor.features_digits_and_confidence(real.to(next(extractor.parameters()).device), batch_size)
    scores = digit_collapse_metrics(digits, confidence, None, stacked=True)
    keep = ("collapse/modes", "collapse/reverse_kl", "collapse/high_quality", "collapse/argmax_modes", "collapse/argmax_reverse_kl")
    return {"num_samples": num_samples, **{k: round(scores[k], 6) for k in keep}}
