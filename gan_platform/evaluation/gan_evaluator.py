"""The GAN evaluator: quality, diversity and collapse of G's samples, every `eval.every` steps.

Built before training (so a missing Inception file stops the run before any work), it computes the
real statistics once (from every stored sample, or a fixed seeded subset of `num_real`, whose
SHA-256 the protocol records as `real_sha256`): the real features' mean and covariance (FID), the
features themselves (KID) and their k-NN radii (precision/recall/density/coverage) are kept. At each
evaluation every process draws its share of `num_samples` (its own noise stream), the shares are
gathered, and every process computes the same metrics from the whole set. Real features of an extractor with weights
come from the cache of real features (reference.py) when a run on the same data made them before.
`gan_platform.evaluate` uses the same evaluator on samples it draws itself, or on any image set
(`extract` + `measure`), optionally against a reference statistics file instead of the real data.

    eval/fid, eval/kid, eval/kid_std                         on the chosen features (reference.py, kid.py);
                                                              eval/fd_dinov2, eval/kd_dinov2 (and _clip) on DINOv2 / CLIP's
    eval/fd_inf                                               FD at infinity (fd_infinity.py; eval.fd_inf)
    eval/is, eval/is_std                                      Inception features only (inception_score.py)
    eval/pixel_precision, ..._recall, _density, _coverage     where the features do not fit the data
                                                              (features.fid_applies): no FID then
    eval/precision, eval/recall, eval/density, eval/coverage  k-NN manifolds (manifold.py)
    collapse/modes, collapse/high_quality, collapse/reverse_kl     2-D mixtures (VEEGAN/PacGAN)
    collapse/modes, collapse/reverse_kl, collapse/high_quality  stacked digits (out of 1,000; samples read surely)
    collapse/argmax_modes, collapse/argmax_reverse_kl           the same, every sample by its argmax (the papers' count)
    collapse/classes, collapse/class_entropy                    any digit run: generated class histogram
    eval/class_accuracy, eval/fid_class_<c>, eval/fid_class_mean  conditional digit runs
    collapse/class_mode_accuracy                                conditional mixtures
    memorization/authpct, /nn_ratio, /ct                        image runs with eval.memorization (memorization/)
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from contextlib import contextmanager
from typing import Any, Optional

import torch
from torch import Tensor

from gan_platform.data.base import evaluation_of
from gan_platform.data.base import REAL_SUBSET_SEED, TensorDataset
from gan_platform.evaluation.collapse import (STACKED_CONFIDENCE, MixtureCollapse, class_mode_accuracy,
                                              digit_collapse_metrics, real_stacked_scores)
from gan_platform.evaluation.evaluator import Evaluator, Samples
from gan_platform.evaluation.fd_infinity import fd_at_infinity, maybe_counts
from gan_platform.evaluation.features import DigitFeatures, FeatureExtractor, IdentityFeatures, InceptionFeatures
from gan_platform.evaluation.image_sets import check_shape, read_image_set, to_uint8
from gan_platform.evaluation.inception_score import Precomputed, inception_score  # noqa: F401 - Precomputed: public here
from gan_platform.evaluation.kid import kernel_inception_distance
from gan_platform.evaluation.manifold import kth_neighbour_distance, precision_recall_density_coverage
from gan_platform.evaluation.memorization import CopyCheck
from gan_platform.evaluation.options import BeyondFID
from gan_platform.evaluation.reference import ReferenceStats, cached_real_features, frechet_distance

log = logging.getLogger(__name__)
KID_SCALE = "unscaled MMD^2, as torchmetrics and torch-fidelity give it (papers often print KID x 1000)"
PRDC_COUNTS = ("k-NN radii shrink as the sample counts grow: precision, recall, density and coverage compare only "
               "at equal num_fake_used, num_real and prdc_k")


@contextmanager
def seeded_cpu_rng(seed: int = 0):
    """The global CPU generator at `seed` inside, restored after: KID's subsets are drawn from it,
    so the same samples give the same numbers in any process and at any time."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def stores_training_set(dataset: Any) -> bool:
    """Whether training batches are drawn from the dataset's stored samples (not composed afresh,
    as 2-D mixtures and stacked digits are): only then is there a training image to copy."""
    return dataset.kind == "images" and isinstance(dataset, TensorDataset) and type(dataset).sample is TensorDataset.sample


class GANEvaluator(Evaluator):
    """FID/KID, IS, precision/recall/density/coverage and the collapse metrics of a GAN task."""

    def __init__(self, *, accelerator: Any, dataset: Any, extractor: FeatureExtractor, num_classes: int,
                 num_samples: int, num_real: Optional[int] = None, num_real_auto: bool = False, kid_subsets: int = 20, kid_subset_size: int = 1000,
                 prdc_k: int = 5, mode_threshold: float = 0.2, batch_size: int = 500, per_class_fid: bool = True,
                 fid_applies: bool = True, fid_note: Optional[str] = None, is_splits: int = 10,
                 reference: Optional[ReferenceStats] = None, cache_real: bool = True, options: Optional[BeyondFID] = None):
        setup_start = time.perf_counter()
        self.acc = accelerator
        self.device = accelerator.device
        self.extractor = extractor.to(self.device).eval()
        self.fd, self.kd = extractor.fd_name, extractor.kid_name  # fid/kid, or fd_dinov2/kd_dinov2, fd_clip/kd_clip
        self.options = options or BeyondFID()
        self.num_classes = int(num_classes or 0)
        self.num_samples, self.k, self.batch_size = int(num_samples), int(prdc_k), int(batch_size)
        self.dataset_name, self.kind = dataset.name, dataset.kind
        self.evaluations = 0
        self.num_fake_used = 0
        self.fid_applies, self.fid_note = bool(fid_applies), fid_note
        self.inception = isinstance(self.extractor, InceptionFeatures)
        self.is_splits = int(is_splits)
        self.reference = reference
        self.digits = isinstance(self.extractor, DigitFeatures)
        declared = evaluation_of(dataset)  # what the dataset says it is measured by (data/base.Evaluation)
        self.stacked = self.digits and declared.collapse == "stacked_digits"
        self.held_out = declared.held_out
        self.mixture: Optional[MixtureCollapse] = None
        if declared.collapse == "mixture":
            self.mixture = MixtureCollapse(dataset.means, dataset.sigma, mode_threshold).to(self.device)
        self.class_stats: dict[int, ReferenceStats] = {}  # per-class real statistics (conditional runs)
        self.real_stats: Optional[ReferenceStats] = reference
        self.real_features: Optional[Tensor] = None
        self.real_radii: Optional[Tensor] = None
        self.real_stats_source = "reference file" if reference is not None else "computed"
        self.kid_subsets, self.kid_subset_size = int(kid_subsets), int(kid_subset_size)
        self.num_real_auto = num_real_auto
        self.fd_inf_counts = maybe_counts(self.options.fd_inf and self.fid_applies, self.num_samples, self.options.fd_inf_points)
        self.fd_inf_values: list[float] = []
        self.copy_check: Optional[CopyCheck] = None
        self.memorization_note: Optional[str] = None
        # what real triples score at this sample count: the floor of KL a perfect generator reaches
        self.real_scores = (real_stacked_scores(dataset, self.extractor, self.num_samples, self.batch_size)
                            if self.stacked and hasattr(dataset, "sample") else None)
        self.data_protocol: dict[str, Any] = {}
        if reference is not None:  # FID against the file; no real features, so no KID, PRDC or per-class FID
            self.num_real, self.num_stored, self.real_sha256 = reference.num_samples, None, reference.protocol.get("real_sha256")
            self.seconds = time.perf_counter() - setup_start
            return
        self._real_statistics(dataset, num_real, cache_real, per_class_fid)
        self.seconds = time.perf_counter() - setup_start  # real statistics count as evaluation time

    def _real_statistics(self, dataset: Any, num_real: Optional[int], cache_real: bool, per_class_fid: bool) -> None:
        """The real features (from the cache where a run on the same data made them), their statistics,
        k-NN radii and per-class statistics, and the memorisation checks' training set."""
        real, real_labels = dataset.all(num_real)  # every sample, or a fixed seeded subset of num_real
        self.num_real, self.num_stored = len(real), len(dataset)
        self.real_sha256 = hashlib.sha256(real.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        # a packed set names its file and content hash (data/packed): recorded, and part of the cache key
        self.data_protocol = dataset.protocol() if hasattr(dataset, "protocol") else {}
        packed_sha256 = self.data_protocol.get("dataset_sha256")
        real_key = f"{self.real_sha256}|{packed_sha256}" if packed_sha256 else self.real_sha256
        compute = lambda: self.extractor(real.to(self.device), self.batch_size)  # noqa: E731
        if cache_real:
            feats, hit = cached_real_features(self.extractor.protocol(), real_key, compute)
            self.real_stats_source = "cache" if hit else "computed"
            self.real_features = feats.to(self.device)
        else:
            self.real_features = compute()
        self.real_stats = ReferenceStats.of(self.real_features)
        self.kid_subset_size = max(2, min(self.kid_subset_size, self.num_real, self.num_samples))
        # A tiny dataset (or sample count) has fewer than k+1 points: use the largest k it supports
        # (recorded in the protocol), and no precision/recall at all below 2 points.
        k_max = min(self.num_real, self.num_samples) - 1
        if k_max < self.k:
            log.warning("eval.prdc_k=%d needs more than %d samples; precision/recall use k=%d here.", self.k, self.k, max(k_max, 0))
            self.k = max(k_max, 0)
        self.real_radii = kth_neighbour_distance(self.real_features, self.k) if self.k >= 1 else None
        if self.options.memorization:
            self.copy_check, self.memorization_note = self._copy_check(dataset, real)
        if self.fid_applies and per_class_fid and self.num_classes and self.num_classes <= 10 and real_labels is not None:
            for c in range(self.num_classes):
                mask = real_labels.to(self.device) == c
                if mask.sum() >= 2 and self.num_samples // self.num_classes >= 2:
                    self.class_stats[c] = ReferenceStats.of(self.real_features[mask])

    def _copy_check(self, dataset: Any, real: Tensor) -> tuple[Optional[CopyCheck], Optional[str]]:
        """The memorisation checks against the real statistics' samples (the training set, or its
        fixed subset), with held-out features from `eval.heldout`; or why there are none."""
        if not stores_training_set(dataset):
            return None, (f"not reported: the training samples of '{dataset.name}' are drawn afresh, not from a stored "
                          "set of images, so there is no training image to copy")
        heldout = None
        if self.options.heldout:
            found = read_image_set(self.options.heldout)
            check_shape(found, dataset.sample_shape, f"the run's data ('{dataset.name}')")
            heldout = self.extractor(found.decoded().to(self.device), self.batch_size)
        return CopyCheck(self.real_features, to_uint8(real).cpu(), heldout, self.options.ct_cells, self.options.nn_search), None

    # -- samples ---------------------------------------------------------------------------
    def generate(self, task: Any) -> tuple[Tensor, Optional[Tensor]]:
        """`num_samples` samples from all processes together (each draws its share), and their labels."""
        world, rank = self.acc.num_processes, self.acc.process_index
        share = math.ceil(self.num_samples / world)
        g = torch.Generator(device=self.device).manual_seed((torch.initial_seed() + 104729 * rank) % (2 ** 62))
        labels = None
        if self.num_classes:  # balanced classes: sample i has class i mod C
            labels = (torch.arange(rank * share, (rank + 1) * share, device=self.device) % self.num_classes)
        z = torch.randn(share, task.z_dim, device=self.device, generator=g)
        fake = task.sample(share, labels, z).float()
        if world > 1:
            fake = self.acc.gather(fake.contiguous())
            labels = self.acc.gather(labels) if labels is not None else None
        fake = fake[: self.num_samples]
        return fake, (labels[: self.num_samples] if labels is not None else None)

    # -- metrics ---------------------------------------------------------------------------
    def extract(self, fake: Tensor) -> dict[str, Tensor]:
        """What the metrics need of a batch of samples: features, and the digits of every channel
        (digit features), the Inception logits (Inception features) or the points (mixtures)."""
        parts: dict[str, Tensor] = {}
        if self.digits:
            parts["features"], parts["digits"], parts["confidence"] = self.extractor.features_digits_and_confidence(
                fake, self.batch_size)
        elif self.inception:
            parts["features"], parts["logits"] = self.extractor.features_and_logits(fake, self.batch_size)
        else:
            parts["features"] = self.extractor(fake, self.batch_size)
        if self.mixture is not None:
            parts["samples"] = fake.flatten(1).float()
        return parts

    @torch.no_grad()
    def evaluate(self, task: Samples, step: int) -> dict[str, float]:
        start = time.perf_counter()
        fake, labels = self.generate(task)
        if not torch.isfinite(fake).all():
            return {"eval/finite": 0.0}
        out = self.measure(self.extract(fake), labels)
        self.seconds += time.perf_counter() - start
        self.evaluations += 1
        out["perf/eval_seconds"] = time.perf_counter() - start
        return out

    @torch.no_grad()
    def measure(self, parts: dict[str, Tensor], labels: Optional[Tensor],
                metrics: Optional[set[str]] = None) -> dict[str, float]:
        """The metrics of one sample set from `extract`'s parts; `metrics` picks groups (fid, fd_inf,
        kid, is, prdc, collapse, class_accuracy, memorization; None: all that apply)."""
        want = (lambda name: metrics is None or name in metrics)  # noqa: E731
        feats = parts["features"]
        out: dict[str, float] = {}
        self.num_fake_used = len(feats)  # after the gather: all processes' samples
        if self.fid_applies and want("fid"):
            out[f"eval/{self.fd}"] = frechet_distance(self.real_stats, ReferenceStats.of(feats))
        if self.fid_applies and want("fd_inf") and self.fd_inf_counts and len(feats) >= self.fd_inf_counts[-1]:
            name = "eval/fd_inf" if self.fd == "fid" else f"eval/{self.fd}_inf"
            out[name], self.fd_inf_values = fd_at_infinity(self.real_stats, feats, self.fd_inf_counts)
        if self.fid_applies and want("kid") and self.real_features is not None:
            with seeded_cpu_rng():  # the subsets: the same for the same samples
                out[f"eval/{self.kd}"], out[f"eval/{self.kd}_std"] = kernel_inception_distance(
                    self.real_features, feats, self.kid_subsets, self.kid_subset_size)
        if self.inception and self.fid_applies and want("is"):
            out["eval/is"], out["eval/is_std"] = inception_score(parts["logits"], self.is_splits)
        # features that do not fit the data: precision/recall only on pixels, under their own names
        prefix = "eval/" if self.fid_applies else "eval/pixel_" if isinstance(self.extractor, IdentityFeatures) else None
        if self.real_radii is not None and prefix and want("prdc"):
            prdc = precision_recall_density_coverage(self.real_features, feats, self.k, real_radii=self.real_radii)
            out.update({f"{prefix}{k}": v for k, v in prdc.items()})
        if self.mixture is not None and want("collapse"):
            out.update(self._mixture_metrics(parts["samples"], labels))
        if self.digits and self.fid_applies and (want("collapse") or want("class_accuracy")):
            digit_metrics = digit_collapse_metrics(parts["digits"], parts["confidence"], labels, self.stacked)
            out.update({k: v for k, v in digit_metrics.items()
                        if want("class_accuracy" if k == "eval/class_accuracy" else "collapse")})
        if want("fid"):
            for c, stats in self.class_stats.items():
                out[f"eval/{self.fd}_class_{c}"] = frechet_distance(stats, ReferenceStats.of(feats[labels == c]))
            if self.class_stats:
                out[f"eval/{self.fd}_class_mean"] = sum(out[f"eval/{self.fd}_class_{c}"] for c in self.class_stats) / len(self.class_stats)
        if self.copy_check is not None and want("memorization"):
            out.update(self.copy_check.measure(feats))
        return out

    def _mixture_metrics(self, fake: Tensor, labels: Optional[Tensor]) -> dict[str, float]:
        self.mixture.reset()
        self.mixture.update(fake)
        out = {f"collapse/{k}": v for k, v in self.mixture.compute().items()}
        if labels is not None and self.num_classes == len(self.mixture.means):
            out["collapse/class_mode_accuracy"] = class_mode_accuracy(fake, labels, self.mixture.means, self.mixture.sigma)
        return out

    def protocol(self) -> dict[str, Any]:
        out = {**self.extractor.protocol(), "num_fake": self.num_samples,
               "num_fake_used": self.num_fake_used, "num_real": self.num_real,
               "real_split": self.real_split(), "real_sha256": self.real_sha256, "real_statistics": self.real_stats_source,
               "prdc_k": self.k, "prdc_counts": PRDC_COUNTS, "kid_subsets": self.kid_subsets,
               "kid_subset_size": self.kid_subset_size, "kid_scale": KID_SCALE, "num_processes": self.acc.num_processes,
               "evaluations": self.evaluations, "eval_seconds": round(self.seconds, 3),
               **({"mode_confidence": STACKED_CONFIDENCE, "real_data_scores": self.real_scores} if self.stacked else {}),
               **self.data_protocol}
        if self.reference is not None:  # FID only, against the file: no real features, so no KID or k-NN
            for key in ("prdc_k", "prdc_counts", "kid_subsets", "kid_subset_size", "kid_scale"):
                out.pop(key)
        if self.inception:
            out.update(is_splits=self.is_splits, is_std="population std over the splits (torch-fidelity's)")
        if self.fd_inf_counts:
            out.update(fd_inf_counts=self.fd_inf_counts, fd_inf_fit="least squares in 1/N through FD_N of seeded random subsets")
        if self.options.memorization:
            out["memorization"] = self.copy_check.protocol() if self.copy_check is not None else self.memorization_note
        if not self.fid_applies:
            out["fid"] = self.fid_note or "not reported: the features do not fit the data"
        return out

    def real_split(self) -> str:
        if self.reference is not None:
            return "reference statistics file" + (f" of {self.num_real} samples" if self.num_real else "")
        if self.held_out:
            return f"{self.dataset_name}: fixed held-out draw of {self.num_real} (seeded, not the training stream)"
        if self.num_real == self.num_stored:
            return f"{self.dataset_name}: all {self.num_real} stored samples (the training set)"
        why = " (eval.num_real=auto, capped by eval.num_real_cap for Inception)" if self.num_real_auto else ""
        return (f"{self.dataset_name}: {self.num_real} of {self.num_stored} stored samples (the training set), a fixed "
                f"subset drawn with seed {REAL_SUBSET_SEED}, the same in every run{why}")
