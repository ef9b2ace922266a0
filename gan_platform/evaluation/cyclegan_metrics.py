"""CycleGAN's metrics: FID in each direction, cycle error, label preservation, error against the truth.

On evaluation images (testA/testB, or the held-out digits) with G1: A -> B and G2: B -> A:

    eval/fid_a2b                 FID(real B, G1(A)); eval/fid_b2a: FID(real A, G2(B))  (reference.frechet_distance)
    eval/cycle_error             mean |G2(G1(a)) - a| and |G1(G2(b)) - b| over pixels (in [-1, 1] units),
                                 averaged over both ways; eval/cycle_error_a, eval/cycle_error_b each way
    eval/label_preservation      digits only: share of images whose digit classifier label survives
                                 translation, averaged over both ways (_a2b, _b2a each way)
    eval/translation_error       embedded pair only: mean |G1(a) - T(a)| (a2b) and |T(G2(b)) - b|
                                 (b2a: does the translation map back onto b under the true mapping T?)
    eval/identity_error          the same errors for doing nothing (G = identity): the bar to beat

FID features come from evaluation/features.py, the GAN evaluator's own: `eval.features` is
``inception``, ``digits`` or ``identity``, and ``auto`` resolves as it does for a GAN run (digits for
digit images such as the digit styles, Inception for other images when its weights are on disk,
else the pixels with a warning). Where the features do not fit the images (`features.fid_applies`:
photos without the Inception file), no `eval/fid_a2b` / `eval/fid_b2a` is reported; the protocol's
`fid` says what is needed, and the cycle and translation errors, which hold, are kept. The Inception file is found, downloaded, checked and hashed there, so a
missing or wrong file stops a CycleGAN run before training with the same sentence as a GAN run, and
`protocol()` names the extractor and its weights' SHA-256 under the same keys (`extractor`,
`num_features`, `weights_sha256`, ...). Real features of both styles are extracted once, up front.

Digit features and label preservation on the digit styles: the classifier reads grey bright-on-dark
digits, so each style is shown to it through its known view (`digit_styles.view_a`: the grey
channel; `view_b`: untint, uninvert, erode), one 64-d block an image. A label survives when the
classifier's label of the translation equals its label of the source.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor

from gan_platform.errors import ConfigError
from gan_platform.evaluation.evaluator import Evaluator, Translates
from gan_platform.evaluation.features import (FD_NAMES, DigitFeatures, FeatureExtractor, build_extractor, fid_applies,
                                              fid_missing_reason, resolve_extractor_name)
from gan_platform.evaluation.reference import ReferenceStats, frechet_distance

STYLES = ("a", "b")


class CycleGANEvaluator(Evaluator):
    """`evaluate(task, step)` -> the metrics above; `protocol()` says how they were measured."""

    def __init__(self, dataset: Any, device: torch.device, extractor: FeatureExtractor, num_samples: int = 1000,
                 labeller: Optional[DigitFeatures] = None, batch_size: int = 500, fid_note: Optional[str] = None):
        self.dataset, self.device, self.num_samples, self.batch_size = dataset, device, int(num_samples), int(batch_size)
        self.fid_note = fid_note  # set: the features do not fit these images, so no FID
        self.extractor = extractor.to(device).eval()
        views: Optional[dict[str, Callable[[Tensor], Tensor]]] = getattr(dataset, "digit_view", None)
        self.views = views
        # digit features read each style through its view; other extractors see the images as they are
        self.feature_views = views if isinstance(extractor, DigitFeatures) and views is not None else None
        self.labeller = labeller.to(device).eval() if labeller is not None and views is not None else None
        real = {s: dataset.test_images(s, self.num_samples).to(device) for s in STYLES}
        self.real_stats = {} if fid_note else {s: ReferenceStats.of(self._features(real[s], s)) for s in STYLES}  # into s
        self._protocol: dict[str, Any] = {
            **self.extractor.protocol(), "samples_a": len(real["a"]), "samples_b": len(real["b"]),
            "images": "train (no testA/testB)" if dataset.test_from_train else "test",
            "error_units": "mean absolute pixel difference, images in [-1, 1]"}
        if fid_note:
            self._protocol["fid"] = fid_note
        if self.feature_views is not None:
            self._protocol["style_views"] = "digit_styles.view_a / view_b: each style as grey digits"
        if self.labeller is not None and self.labeller is not self.extractor:
            self._protocol["label_classifier_sha256"] = self.labeller.sha256

    @classmethod
    def from_config(cls, cfg: Any, dataset: Any, acc: Any) -> "CycleGANEvaluator":
        """Resolve and build the extractor with features.py (errors stop the run here, before training)."""
        ev = cfg.eval
        name = resolve_extractor_name(str(ev.get("features", "auto")), dataset, ev.get("inception_weights"), ev)
        if name in FD_NAMES:  # their distances have names of their own; eval/fid_a2b would misname them
            raise ConfigError(f"eval.features={name} measures GAN runs; a CycleGAN reports eval/fid_a2b and eval/fid_b2a on "
                              "Inception or digit features: set eval.features=inception or digits.")
        grey = (1, dataset.resolution, dataset.resolution)  # what a style view shows the digit classifier
        views = getattr(dataset, "digit_view", None)
        extractor = build_extractor(name, grey if name == "digits" and views is not None else dataset.sample_shape, ev)
        labeller = None
        if views is not None:
            labeller = extractor if isinstance(extractor, DigitFeatures) else build_extractor("digits", grey, ev)
        num_samples = ev.get("num_samples", "auto")
        batch_size = ev.get("batch_size", 500)
        note = None if fid_applies(name, dataset, ev) else fid_missing_reason(dataset)
        return cls(dataset, acc.device, extractor, 1000 if num_samples in ("auto", None) else int(num_samples),
                   labeller=labeller, batch_size=500 if batch_size in ("auto", None) else int(batch_size), fid_note=note)

    def protocol(self) -> dict[str, Any]:
        return dict(self._protocol)

    # -- pieces ----------------------------------------------------------------------------
    def _features(self, images: Tensor, style: str) -> Tensor:
        """Features of images of `style` (in [-1, 1]), through the style's view for digit features."""
        if self.feature_views is not None:
            images = self.feature_views[style](images)
        return self.extractor(images, self.batch_size)

    def _fid(self, fake: Tensor, style: str) -> float:
        """FID of translations into `style` against that style's real images (every process evaluates
        the whole set itself: no sync across ranks)."""
        return frechet_distance(self.real_stats[style], ReferenceStats.of(self._features(fake, style)))

    def _labels(self, x: Tensor, style: str) -> Tensor:
        return self.labeller.predict(self.views[style](x))[:, 0]

    @torch.no_grad()
    def evaluate(self, task: Translates, step: int) -> dict[str, float]:
        """All metrics on the evaluation images (every process computes the same numbers)."""
        a = self.dataset.test_images("a", self.num_samples).to(self.device)
        b = self.dataset.test_images("b", self.num_samples).to(self.device)
        a2b, b2a = task.translate(a, "a2b"), task.translate(b, "b2a")
        back_a, back_b = task.translate(a2b, "b2a"), task.translate(b2a, "a2b")
        m: dict[str, float] = {"eval/cycle_error_a": (back_a - a).abs().mean().item(),
                               "eval/cycle_error_b": (back_b - b).abs().mean().item()}
        m["eval/cycle_error"] = (m["eval/cycle_error_a"] + m["eval/cycle_error_b"]) / 2
        if self.real_stats:
            m["eval/fid_a2b"] = self._fid(a2b, "b")
            m["eval/fid_b2a"] = self._fid(b2a, "a")
        if self.labeller is not None:
            m["eval/label_preservation_a2b"] = (self._labels(a2b, "b") == self._labels(a, "a")).float().mean().item()
            m["eval/label_preservation_b2a"] = (self._labels(b2a, "a") == self._labels(b, "b")).float().mean().item()
            m["eval/label_preservation"] = (m["eval/label_preservation_a2b"] + m["eval/label_preservation_b2a"]) / 2
        true_a2b = getattr(self.dataset, "true_a2b", None)
        if true_a2b is not None:
            m["eval/translation_error_a2b"] = (a2b - true_a2b(a)).abs().mean().item()
            m["eval/translation_error_b2a"] = (true_a2b(b2a) - b).abs().mean().item()
            m["eval/identity_error_a2b"] = (a - true_a2b(a)).abs().mean().item()
            m["eval/identity_error_b2a"] = (true_a2b(b) - b).abs().mean().item()
            for key in ("translation_error", "identity_error"):
                m[f"eval/{key}"] = (m[f"eval/{key}_a2b"] + m[f"eval/{key}_b2a"]) / 2
        return m


def build_cyclegan_evaluator(cfg: Any, dataset: Any, task: Any, accelerator: Any) -> CycleGANEvaluator:
    """conf/task/cyclegan.yaml's `evaluator._target_`; fills in `eval.best_metric: auto` (the
    trainer and summary.json see the resolved value)."""
    from gan_platform.evaluation.build import resolve_best_metric

    evaluator = CycleGANEvaluator.from_config(cfg, dataset, accelerator)
    resolve_best_metric(cfg.eval, getattr(evaluator, "default_best_metric", None))
    return evaluator
